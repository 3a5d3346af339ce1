//! The stable `MESSAGE_ID`s of ramlet's journal events (a `message_id` field of an event; the
//! journald layer, [`crate::host::journald`], sends it as `MESSAGE_ID=`). Each is explained by
//! the journal catalog the packages install (`dist/ramlet.catalog`): `journalctl -x` prints
//! what happened and what to do, `journalctl MESSAGE_ID=<id>` finds every event of a kind.

/// A store has a new version of a secret.
pub const NEW_VERSION: &str = "7c4a1f0e9b2d4e6a8f3c5d7e9a1b2c40";
/// A volume's files were written (a new version, a new spec).
pub const VOLUME_WRITTEN: &str = "7c4a1f0e9b2d4e6a8f3c5d7e9a1b2c41";
/// A unit was restarted or reloaded so that it reads new versions.
pub const RESTARTED: &str = "7c4a1f0e9b2d4e6a8f3c5d7e9a1b2c42";
/// A rotation's health check failed.
pub const CHECK_FAILED: &str = "7c4a1f0e9b2d4e6a8f3c5d7e9a1b2c43";
/// A failed rotation's previous files are back.
pub const ROLLED_BACK: &str = "7c4a1f0e9b2d4e6a8f3c5d7e9a1b2c44";
/// A spec could not be applied (its message says why).
pub const NOT_APPLIED: &str = "7c4a1f0e9b2d4e6a8f3c5d7e9a1b2c45";
