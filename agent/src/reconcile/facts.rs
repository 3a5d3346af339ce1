//! Facts: everything a decision is made from, gathered by `observe` in one value, so
//! that [`super::decide`] is a function of it alone (and tests build it by hand).
//!
//! Facts say what is, never what to do: a spec's secrets could not be shaped (and why), its
//! unit name is someone else's, its unit file differs, systemd said nothing about a unit. The
//! secret bytes themselves are not facts: they go from `observe` to `apply` beside the plan.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use super::owed::Owed;
use super::plan::OnRotation;
use crate::drivers::UnitState;
use crate::status::{Reason, SecretInUse, SpecStatus};

/// What the host and the specs are now.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Facts {
    /// Each spec selected for this host, with what was found for it.
    pub specs: Vec<SpecFacts>,
    /// The spec directory's errors, one line each (`file:line:column: field: message [kind]`).
    pub errors: Vec<String>,
    /// The files those errors are in.
    pub broken_files: BTreeSet<PathBuf>,
    /// Specs of the catalog that this host's labels do not select.
    pub unselected: BTreeSet<String>,
    /// ramlet's unit files, by spec name: their text.
    pub units: BTreeMap<String, String>,
    /// Unit states, by spec name. A unit systemd did not say anything about is absent:
    /// unknown, not down.
    pub states: BTreeMap<String, UnitState>,
    /// Specs that have volumes on the host.
    pub volume_specs: BTreeSet<String>,
    /// What earlier reconciles (or an earlier ramlet) left owed.
    pub owed: Owed,
    /// What the last status said of each running spec that is not selected now: which file it
    /// came from (to tell whether it is gone or its file only broke) and its last entry.
    pub last: BTreeMap<String, SpecStatus>,
    /// Now, in milliseconds since the epoch (health checks' deadlines).
    pub now: u64,
    /// What the health check said of each spec whose rotation waits on it.
    pub health: BTreeMap<String, Health>,
    /// Specs whose previous files ramlet holds in memory: a failed rotation can put them back.
    pub restorable: BTreeSet<String>,
    /// Health-checked specs whose files, as they ask for them now, observe has at hand (the
    /// plan may hold them as what their next rotation puts back).
    pub holdable: BTreeSet<String>,
    /// Specs whose previous files lie sealed in the state directory (see
    /// [`super::previous`]).
    pub sealed: BTreeSet<String>,
    /// Selected specs with a `rotation.healthCheck`, with the command it runs.
    pub checked: BTreeMap<String, CheckCommand>,
    /// Specs whose health check is running now.
    pub checks_running: BTreeSet<String>,
    /// When each spec's health check last started (milliseconds since the epoch, as `now`).
    pub checks_started: BTreeMap<String, u64>,
    /// Specs `ramlet sync --retry` named: the versions their check refused may be tried again.
    pub retries: BTreeSet<String>,
    /// Each store's `rollout.canary`: how many health-checked consumers take a version first.
    pub canary: BTreeMap<String, u32>,
    /// For each store with a `rollout.canarySelector`: the specs it lets be canaries (a store
    /// not named lets any health-checked consumer be one).
    pub canary_eligible: BTreeMap<String, BTreeSet<String>>,
    /// What each health-checked spec's check said of the versions it runs now, where ramlet
    /// has asked it (before a new version goes to a canary): a spec whose check fails on them
    /// is no canary, and not gated, since its check says nothing about a new version.
    pub baseline: BTreeMap<String, Health>,
    /// The leases the stores' clients hold (a database engine's credentials): the plan
    /// revokes those no container runs with or may go back to.
    pub leases: Vec<crate::providers::stores::HeldLease>,
}

/// What one run of a spec's health check said.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Health {
    /// It exited 0.
    Healthy,
    /// It failed (exit status, or killed at its timeout).
    Unhealthy,
    /// It could not be run: no verdict.
    Unknown(Unrun),
}

/// Why a health check could not be run.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Unrun {
    /// systemd did not run its transient service.
    #[error("{0}")]
    Systemd(#[from] crate::drivers::SystemdError),
    /// The task that waited for it ended without its answer (a panic, the runtime shutting
    /// down).
    #[error("the check's task ended without an answer")]
    Lost,
}

/// How a spec's health check runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckCommand {
    /// The command run in the container (`podman exec`), with its arguments.
    pub command: Vec<String>,
    /// How long it may run before it counts as failed.
    pub timeout: std::time::Duration,
    /// How often it runs while a rotation waits on it.
    pub interval: std::time::Duration,
}

/// A spec's health gate: its check's deadline and interval.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Gate {
    /// How long after the rotation's restart the check must have passed.
    pub deadline: std::time::Duration,
    /// How often it runs until then.
    pub interval: std::time::Duration,
}

/// One selected spec.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpecFacts {
    /// Its name; the unit is `<name>.container` / `<name>.service`.
    pub name: String,
    /// The file it came from.
    pub file: PathBuf,
    /// Whether its unit name can be ramlet's.
    pub name_check: NameCheck,
    /// What it wants on the host, or why that cannot be worked out now (not looked at when
    /// the name is not ramlet's to take).
    pub wants: Result<Wants, Problem>,
    /// The secret versions its volumes hold now, as the last status said (empty: not known).
    pub live: Vec<SecretInUse>,
    /// A digest of the spec's content (never of a secret): its generation moves when this does.
    pub digest: String,
    /// Whether it is stopped shortly before a secret it runs with ends unrenewed
    /// (`rotation.onExpiry: stop`).
    pub stop_before_end: bool,
}

/// Whether a spec's unit name can be ramlet's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NameCheck {
    /// ramlet's unit file is there already.
    Ours,
    /// A new spec, and systemd knows no unit by that name.
    Free,
    /// systemd has a unit by that name that is not ramlet's (`LoadState=` as it said).
    TakenBySystemd(crate::drivers::LoadState),
    /// A `.container` file by that name that is not ramlet's lies in ramlet's unit folder
    /// (this one).
    TakenInUnitDir(PathBuf),
    /// ramlet's unit is there, but a unit file of the host's by the same name appeared since
    /// (this one): ramlet's hides it, or it hides ramlet's.
    Shadows(PathBuf),
    /// systemd did not answer whether the name is free (the error).
    Unknown(String),
}

/// What a spec wants on the host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Wants {
    /// Its rendered unit file.
    pub unit_text: String,
    /// Whether any of its volumes differs from what it should hold.
    pub volumes_changed: bool,
    /// Whether a volume gets a new mount (its medium or size changed): the container only sees
    /// it after a restart, whatever the rotation strategy.
    pub remount: bool,
    /// What a secret rotation does to the container.
    pub on_rotation: OnRotation,
    /// The secret versions it asks for.
    pub versions: Vec<SecretInUse>,
    /// Its health gate, if it has a health check.
    pub gate: Option<Gate>,
    /// Its template files, each with the inputs that feed it (for `ramlet plan`).
    pub templates: Vec<Feed>,
}

/// A template file and the secrets that feed it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Feed {
    /// `volume/path`.
    pub file: String,
    /// Each input's name in the text, and the secret it reads.
    pub inputs: Vec<(String, crate::secrets::SecretId)>,
}

impl Feed {
    /// `container`'s template files, each with the secrets that feed it.
    #[must_use]
    pub fn all_of(container: &ramlet_specs::model::Container) -> Vec<Self> {
        container
            .volumes
            .iter()
            .flat_map(|v| v.files.iter().map(move |f| (v, f)))
            .filter_map(|(volume, file)| {
                let ramlet_specs::model::Content::Template(template) = &file.content else {
                    return None;
                };
                Some(Self {
                    file: format!("{}/{}", volume.name, file.path),
                    inputs: template
                        .inputs
                        .iter()
                        .map(|(name, reference)| {
                            (name.clone(), crate::secrets::SecretId::of(reference))
                        })
                        .collect(),
                })
            })
            .collect()
    }
}

/// Why a spec's wants could not be worked out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// The status reason.
    pub reason: Reason,
    /// For people: which file, which store, what went wrong.
    pub message: String,
    /// The secret versions known so far.
    pub versions: Vec<SecretInUse>,
}
