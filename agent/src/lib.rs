//! ramlet: a per-host agent that keeps Podman containers fed with secrets that never touch a
//! disk. This library holds everything the `ramlet` binary does, so tests can reach it.
//!
//! # Layout
//! - [`cli`]: the command line (clap types) and dispatch to the commands;
//! - [`validate`]: `ramlet validate`, for a GitOps repo's own CI;
//! - [`units`]: from a `Container` spec to its Quadlet unit (scopes, layout, precedence);
//! - [`render`]: `ramlet render`, the units for a spec file or directory;
//! - [`podman`]: which Podman and Quadlet this host has;
//! - [`config`]: `ramlet run`'s configuration (file, flags, per-scope defaults);
//! - [`agent`]: the control loop (timers, signals) around the reconciler; [`watch`]: what it
//!   watches (the spec directory through symlink swaps, `file` stores);
//! - [`reconcile`]: one reconcile: specs, secrets, units, observe, plan ([`reconcile::plan`], pure), apply, status;
//! - [`providers`]: secret providers (`file`, `aws`, `gcp`) and the stores' timers and backoff;
//! - [`secrets`]: secret bytes (zeroized) and their shaping (JSON property, base64);
//! - [`volumes`], [`atomic`]: RAM volumes and kubelet-style atomic updates; [`idmap`]: files a
//!   rootless container sees with an owner other than its root (a helper in Podman's ID mapping);
//! - [`systemd`]: systemd over D-Bus; [`unit_dir`]: ramlet's unit folder;
//! - [`status`]: the status file and `ramlet status`; [`notify`]: `sd_notify`; [`pidfile`]: the
//!   agent's locked pid file and `ramlet sync`; [`statefile`]: replacing ramlet's own small files
//!   in one rename, following no link.

pub mod agent;
pub mod atomic;
pub mod cli;
pub mod config;
pub mod idmap;
pub mod labels;
pub mod memlock;
pub mod metrics;
pub mod notify;
pub mod pidfile;
pub mod podman;
pub mod providers;
pub mod reconcile;
pub mod render;
pub mod secrets;
pub mod statefile;
pub mod status;
pub mod systemd;
pub mod unit_dir;
pub mod units;
pub mod validate;
pub mod volumes;
pub mod watch;

/// Exit status for bad usage or configuration (sysexits' `EX_USAGE`).
pub const EX_USAGE: u8 = 64;
