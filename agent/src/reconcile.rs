//! One reconcile, in three steps: **observe** every fact (the specs as loaded, the secrets the
//! stores hold, ramlet's unit files, the units' states, the volumes, the owed-work journal) into
//! one [`Facts`](facts::Facts); **decide** in one pure function ([`decide::decide`]) the
//! [`Plan`](plan::Plan): every action with its typed cause, each spec's phase and reason, the
//! work it owes and whether to come back soon; **apply** the plan through the host traits of
//! [`crate::drivers`] and return typed outcomes. The status file and the metrics are written
//! from the plan and the outcomes.
//!
//! ```text
//!   specs, stores, unit folder, systemd, volumes, journal
//!        |
//!     observe  (observe.rs, desire.rs: facts of each spec)   -> Facts (+ the secret bytes)
//!        |
//!     decide   (decide.rs, pure)                             -> Plan
//!        |
//!     apply    (apply.rs, owed.rs: the journal)              -> Applied (failures by spec)
//!        |
//!     status   (status.rs: settle each verdict with what systemd says now), metrics
//! ```
//!
//! Failure policy: a spec whose file is broken, whose secrets cannot be fetched or whose unit
//! cannot be rendered is left exactly as it runs now (`Degraded`), or not created (`Failed`);
//! every other spec goes on. Such a spec is a fact of that spec, not a failure of the host:
//! the loop comes back soon ([`plan::Retry::Soon`]) only for what may pass by itself.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::time::Duration;

use ramlet_quadlet::PodmanVersion;
use ramlet_specs::Loader;
use ramlet_specs::model::Container;
use tokio::sync::watch;

use crate::drivers::{Job, SystemdError, UnitFiles, UnitManager, UnitState, VolumeManager};
use crate::layout::Layout;
use crate::providers::stores::{Due, Stores};
use crate::providers::{Connector, Limits};
use crate::status::{Phase, Status};
use owed::{Journal, Owed};
use plan::{Action, Cause, Retry};

pub mod apply;
pub mod decide;
mod desire;
pub mod facts;
pub mod gate;
mod observe;
pub mod owed;
pub mod plan;
pub mod preview;
pub mod previous;
mod status;

/// What a reconcile needs to know about this host.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The spec directory.
    pub spec_dir: PathBuf,
    /// Units and volumes.
    pub layout: Layout,
    /// This host's labels.
    pub host_labels: BTreeMap<String, String>,
    /// The Podman version units are rendered for.
    pub target: PodmanVersion,
    /// Where the status file goes.
    pub state_dir: PathBuf,
    /// This host's limits on what specs may do.
    pub policy: ramlet_specs::Policy,
    /// Where to write metrics after each reconcile (`None`: nowhere).
    pub metrics_file: Option<PathBuf>,
}

/// What the agent loop needs after a reconcile.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Outcome {
    /// Something failed that may pass by itself (a job, a unit file write, systemd not
    /// answering, the spec directory unreadable): the loop retries with backoff. A spec that
    /// cannot be applied as it is written is not such a failure (its status says why).
    pub failed: bool,
    /// When the first store is due for its next refresh.
    pub refresh: Option<Duration>,
    /// The reconcile stopped early for shutdown, before changing anything.
    pub stopped: bool,
    /// The `file` stores' directories, to watch.
    pub watch: BTreeSet<PathBuf>,
    /// The actions applied.
    pub actions: Vec<Action>,
    /// Some unit was still on its way up (or systemd did not say) when the reconcile ended:
    /// the loop looks again soon, so a start that hangs or fails later is seen and retried.
    pub settling: bool,
}

/// How long a load of the spec directory may take before it is given up (see `load`).
const LOAD_DEADLINE: Duration = Duration::from_secs(30);

/// The reconciler and its side-effect drivers.
pub struct Reconciler {
    settings: Settings,
    volumes: Box<dyn VolumeManager>,
    units: std::sync::Arc<dyn UnitManager>,
    unit_dir: Box<dyn UnitFiles>,
    stores: Stores,
    status: Status,
    stopping: Option<watch::Receiver<bool>>,
    journal: Journal,
    /// What the journal holds: work owed by earlier reconciles (or an earlier run).
    owed: Owed,
    /// Each unit's state with its details as last seen, by spec name (see `observe`).
    seen: BTreeMap<String, UnitState>,
    /// The spec directory's loader, which keeps the last catalog.
    loader: Loader,
    /// When the status file was last written (`None`: not yet by this process).
    status_written: Option<std::time::Instant>,
    /// What the metrics file says.
    metrics: crate::metrics::Metrics,
    /// Each spec's unit file as last rendered, with the spec it came from.
    rendered: std::sync::Mutex<BTreeMap<String, (Container, String)>>,
    /// Each health-checked spec's files while no rotation of it is under way: what a failed
    /// rotation puts back (zeroized when dropped; on disk only sealed, see [`previous`]).
    previous: BTreeMap<String, desire::Changed>,
    /// The same, sealed to the host, for the rotations under way: for the next ramlet.
    sealed: previous::SealedPrevious,
    /// Health checks still running, by spec, each with the versions its container ran when it
    /// started: they run beside the reconciles, never in them.
    checks: BTreeMap<
        String,
        (
            Vec<crate::status::SecretInUse>,
            tokio::task::JoinHandle<facts::Health>,
        ),
    >,
    /// What each health-checked spec's check said of the versions it ran then (see
    /// `facts.baseline`).
    baselines: BTreeMap<String, (Vec<crate::status::SecretInUse>, facts::Health)>,
    /// When the unit folders were last searched for files of the host's that take a name of
    /// ramlet's (see `observe`).
    shadows_checked: Option<tokio::time::Instant>,
    /// What that search found: the specs whose unit name a file of the host's takes.
    shadowed: BTreeMap<String, std::path::PathBuf>,
}

impl Reconciler {
    /// A reconciler; the last status (if any) tells which file each running spec came from.
    #[must_use]
    pub fn new(
        settings: Settings,
        volumes: Box<dyn VolumeManager>,
        units: Box<dyn UnitManager>,
        unit_dir: Box<dyn UnitFiles>,
        connector: Connector,
    ) -> Self {
        let status = Status::read(&settings.state_dir).unwrap_or_default();
        let journal = Journal::new(&settings.state_dir);
        let sealed = previous::SealedPrevious::new(&settings.state_dir);
        let owed = journal.read();
        if !owed.is_empty() {
            tracing::info!(
                jobs = owed.jobs.len(),
                daemon_reload = owed.daemon_reload,
                "work owed by the last run is done first"
            );
        }
        Self {
            settings,
            volumes,
            units: units.into(),
            unit_dir,
            stores: Stores::new(connector, Limits::default()),
            status,
            stopping: None,
            journal,
            owed,
            seen: BTreeMap::new(),
            loader: Loader::default(),
            status_written: None,
            metrics: crate::metrics::Metrics::default(),
            rendered: std::sync::Mutex::default(),
            previous: BTreeMap::new(),
            sealed,
            checks: BTreeMap::new(),
            baselines: BTreeMap::new(),
            shadows_checked: None,
            shadowed: BTreeMap::new(),
        }
    }

    /// Stops waiting for secret providers as soon as `stopping` turns true: a hung provider
    /// never delays shutdown. Nothing has been changed on the host at that point.
    #[must_use]
    pub fn with_shutdown(mut self, stopping: watch::Receiver<bool>) -> Self {
        self.stopping = Some(stopping);
        self
    }

    /// Starts a change-event listener for every store with an event source; they send to
    /// `sink` (see [`Reconciler::notice`]).
    #[must_use]
    pub fn with_events(self, sink: crate::providers::events::Sink) -> Self {
        self.with_listeners(sink, crate::providers::events::spawn)
    }

    /// [`Reconciler::with_events`] with listeners that `spawn` starts (tests start ones that
    /// only the test speaks through).
    #[must_use]
    pub fn with_listeners(
        mut self,
        sink: crate::providers::events::Sink,
        spawn: crate::providers::events::Spawn,
    ) -> Self {
        self.stores.listen_with(sink, spawn);
        self
    }

    /// Takes a listener's notice (see [`Stores::notice`]); true when a reconcile should follow.
    pub fn notice(&mut self, notice: crate::providers::events::Notice) -> bool {
        self.stores.notice(notice)
    }

    /// Takes the paths of a file event (see [`Stores::files_changed`]); says what the next
    /// reconcile must refresh.
    pub fn files_changed(&mut self, paths: &[PathBuf]) -> Due {
        tracing::debug!(?paths, "files changed");
        if self.stores.files_changed(paths) {
            Due::Timers
        } else {
            Due::Files
        }
    }

    /// The last status written.
    #[must_use]
    pub fn status(&self) -> &Status {
        &self.status
    }

    /// Runs one reconcile; `due` says which stores must be asked even if their timers have
    /// not fired.
    pub async fn reconcile(&mut self, due: Due) -> Outcome {
        let started = std::time::Instant::now();
        let observed = match self.observe(due, observe::Intent::Apply).await {
            Ok(observed) => observed,
            Err(Stop::Failed(error)) => {
                let outcome = self.fail_all(&error);
                self.count(started, true, &[]);
                return outcome;
            }
            Err(Stop::Shutdown) => {
                return Outcome {
                    stopped: true,
                    ..Outcome::default()
                };
            }
        };
        let observe::Observed {
            facts,
            mut payload,
            gated,
            watch,
        } = observed;
        let plan = decide::decide(&facts);
        self.keep_previous(&plan, gated).await;
        self.say_verdicts(&plan);
        let applied = self.apply(&plan, &facts, &mut payload).await;
        let next = self.settle_status(&facts, &plan, &applied).await;
        // The events that asked for this reconcile's fetches are done with.
        self.stores.ack_fetched();
        let outcome = Outcome {
            failed: !applied.failures.is_empty() || plan.retry == Retry::Soon,
            refresh: match (self.stores.next_due(), plan.recheck) {
                (Some(due), Some(recheck)) => Some(due.min(recheck)),
                (due, recheck) => due.or(recheck),
            },
            stopped: false,
            watch,
            actions: plan.actions.clone(),
            settling: next.specs.values().any(|s| s.phase == Phase::Progressing),
        };
        // Asked for (`ramlet sync`, SIGHUP, a start): the status file says so, changed or not.
        self.keep_status(next, due == Due::All);
        self.count(started, outcome.failed, &plan.jobs());
        outcome
    }

    /// Holds the files of each health-checked spec that this plan leaves at (or takes to) what
    /// it asks for, outside any rotation: what its next rotation puts back if it fails. A spec
    /// held, waiting on its check or rolling back keeps the files held before.
    /// A rotation this plan starts gets them sealed to the host first (see [`previous`]), so
    /// that a ramlet killed before its check can still roll it back; the sealed files of
    /// rotations that ended go.
    async fn keep_previous(&mut self, plan: &plan::Plan, gated: BTreeMap<String, desire::Changed>) {
        for (name, files) in gated {
            if !plan.keep.contains(&name) && !plan.owed.rollouts.contains_key(&name) {
                self.previous.insert(name, files);
            }
        }
        let starting: Vec<(String, desire::Changed)> = plan
            .owed
            .rollouts
            .keys()
            .filter(|name| !self.owed.rollouts.contains_key(*name))
            .filter_map(|name| Some((name.clone(), self.previous.get(name)?.clone())))
            .collect();
        // An idle reconcile (no rollout starting or ending) touches no file.
        if starting.is_empty() && plan.owed.rollouts.keys().eq(self.owed.rollouts.keys()) {
            return;
        }
        let sealed = self.sealed.clone();
        let under_way: Vec<String> = plan.owed.rollouts.keys().cloned().collect();
        let _ = tokio::task::spawn_blocking(move || {
            for (name, files) in starting {
                if let Err(error) = sealed.save(&name, &files) {
                    tracing::info!(spec = %name, %error, "{name}: the previous files are held in memory only (they cannot be sealed to this host)");
                }
            }
            sealed.retain(|spec| under_way.iter().any(|n| n == spec));
        })
        .await;
    }

    /// Counts a reconcile in the metrics and writes the metrics file, if there is one.
    fn count(&mut self, started: std::time::Instant, failed: bool, jobs: &[(Job, Cause)]) {
        let jobs: Vec<(Job, &'static str)> = jobs.iter().map(|(j, c)| (*j, c.as_str())).collect();
        self.metrics.reconciled(started.elapsed(), failed, &jobs);
        if let Some(path) = &self.settings.metrics_file {
            let text =
                self.metrics
                    .render(&self.status, &self.stores.answers(), self.owed.jobs.len());
            if let Err(error) = crate::metrics::write(path, &text) {
                tracing::warn!(path = %path.display(), %error, "cannot write the metrics file");
            }
        }
    }

    /// What a reconcile would do now, without doing any of it (`ramlet plan`): secrets are
    /// fetched to compare versions, nothing is written, started or stopped.
    pub async fn preview(&mut self, due: Due) -> Result<preview::Preview, String> {
        match self.observe(due, observe::Intent::Preview).await {
            Ok(observed) => {
                let plan = decide::decide(&observed.facts);
                Ok(preview::Preview::new(&observed.facts, &plan, &self.status))
            }
            Err(Stop::Failed(error)) => Err(error.to_string()),
            Err(Stop::Shutdown) => Err("interrupted".into()),
        }
    }

    fn fail_all(&mut self, error: &HostError) -> Outcome {
        tracing::error!(kind = error.kind(), %error, "reconcile failed");
        self.status.errors = vec![error.to_string()];
        self.status.updated = crate::util::now_rfc3339();
        let _ = self.status.write(&self.settings.state_dir);
        Outcome {
            failed: true,
            ..Outcome::default()
        }
    }
}

/// Why a reconcile stopped before its plan: something of the host's, not of a spec.
#[derive(Debug, thiserror::Error)]
pub enum HostError {
    /// The spec directory could not be read (or reading it hung).
    #[error("{0}")]
    SpecDir(String),
    /// ramlet's unit folder could not be listed.
    #[error("cannot list {path}: {source}")]
    UnitDir {
        /// The folder.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// systemd did not say how the units are: no plan is made without it.
    #[error("cannot ask systemd for the units' states: {0}")]
    Systemd(#[source] SystemdError),
}

impl HostError {
    /// One stable word for logs and metrics: `spec-dir`, `unit-dir`, `systemd`.
    #[must_use]
    pub fn kind(&self) -> &'static str {
        match self {
            Self::SpecDir(_) => "spec-dir",
            Self::UnitDir { .. } => "unit-dir",
            Self::Systemd(_) => "systemd",
        }
    }
}

/// Why a reconcile stopped before its plan.
enum Stop {
    /// The spec or unit directory could not be read, or systemd did not say how the units are.
    Failed(HostError),
    /// SIGTERM during the wait on the providers.
    Shutdown,
}

/// The service systemd makes of a spec's unit.
#[must_use]
pub fn service(name: &str) -> String {
    format!("{name}.service")
}
