//! The commands that print something and exit, one module each; `cli` parses the command line
//! and calls them. `ramlet run` is the agent ([`crate::agent`]), not here.
//!
//! - [`validate`]: `ramlet validate`, for a GitOps repo's own CI;
//! - [`render`]: `ramlet render`, the units for a spec file or directory;
//! - [`plan`]: `ramlet plan`, what a reconcile would do now;
//! - [`status`]: `ramlet status`, what the agent last wrote;
//! - [`format`](mod@format): `--format text|json`.

pub mod args;
pub mod format;
pub mod plan;
pub mod render;
pub mod seal;
pub mod status;
pub mod validate;

use std::process::ExitCode;

/// ramlet's one runtime: a single thread (blocking work goes to tokio's blocking pool).
pub(crate) fn runtime() -> Result<tokio::runtime::Runtime, ExitCode> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|error| {
            eprintln!("ramlet: cannot start the runtime: {error}");
            ExitCode::FAILURE
        })
}
