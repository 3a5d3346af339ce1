//! A typed model of Podman Quadlet `.container` units, their one renderer, and a parser that
//! reads back what the renderer wrote. No IO at all.
//!
//! ```
//! use ramlet_quadlet::{PodmanVersion, UnitFile};
//!
//! let mut unit = UnitFile { spec: "web".into(), ..UnitFile::default() };
//! unit.container.image = "docker.io/library/nginx:1.27".into();
//! unit.container.exec = vec!["nginx".into(), "-g".into(), "daemon off;".into()];
//! let text = unit.render(PodmanVersion::V5_4)?;
//! assert!(text.contains("Exec=nginx -g \"daemon off;\"\n"));
//! # Ok::<(), ramlet_quadlet::Error>(())
//! ```
//!
//! # Layout
//! - [`file`](mod@file): the whole file: header (spec name, content hash), sections, the renderer;
//! - [`unit`](mod@unit), [`container`], [`service`], [`install`]: one typed section each;
//! - [`keys`]: every key ramlet writes, its section, the Podman version that introduced it and
//!   how its value is read (gating);
//! - [`value`]: escaping and quoting, and the systemd word splitter that reads them back;
//! - [`parse`](mod@parse): reading a unit back (adoption, drift detection);
//! - [`version`]: Podman versions.

pub mod container;
pub mod entry;
pub mod error;
pub mod file;
pub mod install;
pub mod keys;
pub mod parse;
pub mod service;
pub mod unit;
pub mod value;
pub mod version;

pub use container::ContainerSection;
pub use entry::Entry;
pub use error::{Error, Result};
pub use file::{MANAGED_MARKER, UnitFile};
pub use install::InstallSection;
pub use keys::Section;
pub use parse::{ParsedUnit, parse};
pub use service::ServiceSection;
pub use unit::UnitSection;
pub use value::Value;
pub use version::PodmanVersion;
