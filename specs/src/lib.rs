//! ramlet's spec language: the YAML documents a `GitOps` repo holds, how they are loaded, and the
//! validated model the agent works from. No IO beyond reading the spec files.
//!
//! ```no_run
//! let catalog = ramlet_specs::load_dir("examples/web-tls-gcp".as_ref())?;
//! for error in &catalog.errors {
//!     eprintln!("{error}");
//! }
//! # Ok::<(), ramlet_specs::LoadError>(())
//! ```
//!
//! # Layout
//! - [`load`]: find spec files, read them within limits, parse, validate, check names across files;
//! - [`raw`]: serde types mirroring the YAML (also the source of the JSON Schema);
//! - [`model`]: the validated types the agent trusts;
//! - `validate`: raw to model, one module per kind;
//! - [`error`]: [`SpecError`] with file, line, column, field path and a stable kind;
//! - `parse`: one file's documents, in one pass (two for files that can hold aliases);
//! - `document`: reads one document, its spec typed by its kind, in a single pass;
//! - `probe`: first pass over a file: documents, YAML errors, alias-bomb budget, kinds;
//! - `locate`: finds the line and column of a field path;
//! - `text`, `name`, `fspath`, `mode`, `quantity`, `ports`: checks for single values;
//! - [`hatch`]: the Quadlet escape hatch's allowed sections and keys;
//! - [`policy`]: a host's own limits (allowed store folders, forbidden escape-hatch keys);
//! - [`schema`]: the JSON Schema for editors;
//! - [`template`]: the template language of rendered files, and its checks.

pub mod error;
pub mod hatch;
pub mod load;
pub mod model;
pub mod policy;
pub mod raw;
pub mod scalar;
pub mod schema;
pub mod template;

mod document;
mod fspath;
mod locate;
mod mode;
mod name;
mod parse;

mod path;
mod ports;
mod probe;
mod quantity;
mod text;
mod validate;

pub use error::{API_VERSION, ErrorKind, Location, SpecError};
pub use load::{
    Catalog, LoadError, Loader, MAX_FILE_BYTES, load_dir, load_dir_with, load_texts,
    load_texts_with,
};
pub use mode::DEFAULT_FILE_MODE;
pub use name::parse_host_labels;
pub use parse::MAX_DOCUMENTS_PER_FILE;
pub use policy::Policy;
pub use quantity::{
    DEFAULT_HOST_BYTES, DEFAULT_REFRESH, DEFAULT_VOLUME_BYTES, MAX_REFRESH, MAX_SPEC_BYTES,
    MAX_VOLUME_BYTES, MIN_REFRESH, MIN_VOLUME_BYTES,
};
pub use text::MAX_STRING_BYTES;
pub use validate::container::{SIGNALS, check_secret_name};
