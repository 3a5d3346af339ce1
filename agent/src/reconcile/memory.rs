//! What the reconciler remembers from one reconcile to the next, as one value: the work the
//! journal holds, the units as last seen, the files a failed rotation puts back, what health
//! checks said, what the shadow search found, the last renders (units and templates) and the
//! last status. Observe
//! reads it and records what it saw (states, renders, unsealed files, checks' answers); apply
//! records what it did (the journal, the files held); the status step records the status.
//! Nothing else keeps state across reconciles, so a test can tell what carries over.

use std::collections::BTreeMap;
use std::path::PathBuf;

use super::desire::Changed;
use super::facts::Health;
use super::owed::Owed;
use crate::drivers::UnitState;
use crate::status::{SecretInUse, Status};

/// The reconciler's memory (see the module).
#[derive(Default)]
pub struct Memory {
    /// What the journal holds: work owed by earlier reconciles (or an earlier run).
    pub owed: Owed,
    /// Each unit's state with its details as last seen, by spec name (see `observe`).
    pub seen: BTreeMap<String, UnitState>,
    /// Each health-checked spec's files while no rotation of it is under way: what a failed
    /// rotation puts back (zeroized when dropped; on disk only sealed, see
    /// [`super::previous`]).
    pub previous: BTreeMap<String, Changed>,
    /// What each health-checked spec's check said of the versions it ran then (see
    /// `Facts::baseline`).
    pub baselines: BTreeMap<String, (Vec<SecretInUse>, Health)>,
    /// When the unit folders were last searched for files of the host's that take a name of
    /// ramlet's, and what that search found: the specs whose unit name such a file takes.
    pub shadows: Shadows,
    /// Each spec's unit file as last rendered, with the spec it came from and its digest.
    pub(super) rendered: super::desire::Renders,
    /// Each template file's last rendering, with what it was made from (see
    /// [`crate::secrets::template::Renderings`]).
    pub renderings: crate::secrets::template::Renderings,
    /// The specs whose wants are taken as they were while nothing they are made of moves.
    pub settled: super::settled::Settled,
    /// Whether the last look at the spec directory read it well (a wake-up for secrets only
    /// then takes its catalog as it was).
    pub specs_read: bool,
    /// The last status (written or not).
    pub status: Status,
    /// When the status file was last written (`None`: not yet by this process).
    pub status_written: Option<std::time::Instant>,
}

/// The last search for unit files of the host's that take a name of ramlet's.
#[derive(Debug, Default)]
pub struct Shadows {
    /// When it ran (`None`: not yet).
    pub searched: Option<tokio::time::Instant>,
    /// What it found, by spec: the file of the host's.
    pub found: BTreeMap<String, PathBuf>,
}
