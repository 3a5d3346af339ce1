//! Everything that touches the host, each behind a narrow trait of [`crate::drivers`] where the
//! reconciler drives it (so unit tests use in-memory fakes and `e2e/` tests the real ones).
//!
//! - [`systemd`]: systemd over D-Bus (jobs, unit states);
//! - [`unit_dir`]: ramlet's own folder of Quadlet units;
//! - [`volumes`], [`atomic`]: RAM volumes and kubelet-style atomic updates in them;
//!   [`idmap`]: files a rootless container sees with an owner other than its root;
//!   [`labels`]: their SELinux contexts;
//! - [`podman`]: which Podman and Quadlet this host has;
//! - [`notify`]: `sd_notify`; [`pidfile`]: the agent's locked pid file and `ramlet sync`;
//! - [`journald`]: ramlet's lines in the journal, with the fields `journalctl -u` looks for;
//! - [`keyring`]: leased credentials kept in the kernel's keyring across ramlet's restarts.

pub mod atomic;
pub mod idmap;
pub mod journald;
pub mod keyring;
pub mod labels;
pub mod notify;
pub mod pidfile;
pub mod podman;
pub mod systemd;
pub mod unit_dir;
pub mod volumes;
