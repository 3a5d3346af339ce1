//! ramlet: a per-host agent that keeps Podman containers fed with secrets that never touch a
//! disk. This library holds everything the `ramlet` binary does, so tests can reach it.
//!
//! # Layout
//! - [`cli`]: the command line (clap types) and dispatch to the commands;
//! - [`validate`]: `ramlet validate`, for a GitOps repo's own CI;
//! - [`units`]: from a `Container` spec to its Quadlet unit (scopes, layout, precedence);
//! - [`render`]: `ramlet render`, the units for a spec file or directory;
//! - [`podman`]: which Podman and Quadlet this host has.

pub mod cli;
pub mod podman;
pub mod render;
pub mod units;
pub mod validate;

/// Exit status for bad usage or configuration (sysexits' `EX_USAGE`).
pub const EX_USAGE: u8 = 64;
