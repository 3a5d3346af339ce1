//! ramlet: a per-host agent that keeps Podman containers fed with secrets that never touch a
//! disk. This library holds everything the `ramlet` binary does, so tests can reach it.
//!
//! # Layout
//! Arrows point down: a module uses only those below it (`scripts/modgraph --check`).
//! - the face and the loop: [`cli`] (the command line, dispatch), [`cmd`] (the commands that
//!   print and exit: `validate`, `render`, `plan`, `status`, `seal`, and the command line's
//!   values), [`agent`] (`ramlet run`: timers, signals, the loop around the reconciler),
//!   [`config`], [`watch`] (what the loop watches);
//! - [`reconcile`]: one reconcile: observe every fact (reading only), decide (pure: the plan,
//!   the health gate, the bookkeeping around it), apply, status; its memory is one value;
//! - [`providers`]: secret stores (`file`, `creds`, `age`, `aws`, `gcp`), what each can do
//!   ([`providers::Capabilities`]), their change events, and the store cache with its timers
//!   and backoff;
//! - [`host`]: everything that touches the host (systemd, the unit folder, RAM volumes,
//!   Podman, `sd_notify`, the journal, the pid file), behind the traits of [`drivers`];
//! - neutral ground, used from above: [`drivers`] (the traits the reconciler drives the host
//!   through, and the values they carry), [`units`] (a spec to its Quadlet unit), [`layout`]
//!   (scope, unit folder, volume root), [`status`] (the status file), [`metrics`],
//!   [`secrets`] (zeroized bytes, their shaping, and [`secrets::SecretId`], a secret's one
//!   name), [`retry`] (when to come back: [`retry::Requeue`], the error policy), [`clock`],
//!   [`diff`], [`statefile`] (ramlet's own small files, replaced in one rename), [`util`],
//!   [`message_ids`] (the journal's `MESSAGE_ID`s of ramlet's events), [`condition`] (a
//!   Kubernetes-style condition).

pub mod agent;
pub mod cli;
pub mod clock;
pub mod cmd;
pub mod condition;
pub mod config;
pub mod diff;
pub mod drivers;
pub mod host;
pub mod layout;
pub mod message_ids;
pub mod metrics;
pub mod providers;
pub mod reconcile;
pub mod retry;
pub mod secrets;
pub mod statefile;
pub mod status;
pub mod units;
pub mod util;
pub mod watch;

/// Exit status for bad usage or configuration (sysexits' `EX_USAGE`).
pub const EX_USAGE: u8 = 64;
