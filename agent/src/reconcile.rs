//! One reconcile, in three steps: **observe** every fact (the specs as loaded, the secrets the
//! stores hold, ramlet's unit files, the units' states, the volumes, the owed-work journal, the
//! health checks that ended, the `ramlet sync --retry` requests) into one
//! [`Facts`](facts::Facts), changing nothing on the host; **decide** in one pure function
//! ([`decide::decide`]) the [`Plan`](plan::Plan): every action with its typed cause (the health
//! gate's rollouts and rollbacks, the checks to start, the previous files to seal), each spec's
//! phase and reason, the work it owes and when to come back ([`Requeue`]); **apply** the plan
//! through the host traits of [`crate::drivers`] and return typed outcomes. The status file
//! and the metrics are written from the plan and the outcomes. `ramlet plan` is observe and
//! decide, and nothing else.
//!
//! ```text
//!   specs, stores, unit folder, systemd, volumes, journal, checks, --retry requests
//!        |
//!     observe  (observe.rs, desire.rs: facts of each spec;       -> Facts (+ the secret bytes)
//!        |      observe/gate_facts.rs: what the gate needs)
//!     decide   (decide.rs, gate.rs: the health gate,              -> Plan (actions, verdicts,
//!        |      decide/upkeep.rs: checks, seals, retries; pure)      owed work, Requeue)
//!     apply    (apply.rs, owed.rs: the journal, checks.rs)        -> Applied (failures by spec)
//!        |
//!     status   (status.rs: settle each verdict with what systemd says now), metrics
//! ```
//!
//! What carries over from one reconcile to the next is one value, [`memory::Memory`].
//!
//! Failure policy: a spec whose file is broken, whose secrets cannot be fetched or whose unit
//! cannot be rendered is left exactly as it runs now (`Degraded`), or not created (`Failed`);
//! every other spec goes on. Such a spec is a fact of that spec, not a failure of the host:
//! the loop comes back with backoff ([`crate::retry::error_policy`]) only for what failed.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use ramlet_quadlet::PodmanVersion;
use ramlet_specs::Loader;
use tokio::sync::watch;

use crate::clock::Clock;
use crate::drivers::{Job, SystemdError, UnitFiles, UnitManager, VolumeManager};
use crate::layout::Layout;
use crate::providers::stores::{Due, Settle, Stores};
use crate::providers::{Connector, Limits};
use crate::retry::{Requeue, Transient, error_policy};
use crate::status::{Phase, Status};
use owed::Journal;
use plan::{Action, Cause};

pub mod apply;
mod checks;
pub mod decide;
mod desire;
pub mod facts;
pub mod gate;
pub mod memory;
mod observe;
pub mod owed;
pub mod plan;
pub mod preview;
pub mod previous;
mod settled;
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
    /// When to come back: the plan's own (a health check due), the error policy's for what
    /// failed (a job, a unit file write, systemd not answering, the spec directory
    /// unreadable), a unit still on its way up (looked at again with backoff, so a start
    /// that hangs or fails later is seen), and the stores' next refresh, as one value.
    pub requeue: Requeue,
    /// Something failed (for the logs and the metrics; `requeue` says what to do about it).
    /// A spec that cannot be applied as it is written is not such a failure (its status says
    /// why).
    pub failed: bool,
    /// The reconcile stopped early for shutdown, before changing anything.
    pub stopped: bool,
    /// The `file` stores' directories, to watch.
    pub watch: BTreeSet<PathBuf>,
    /// The actions applied.
    pub actions: Vec<Action>,
}

/// How long a load of the spec directory may take before it is given up (see `load`).
const LOAD_DEADLINE: Duration = Duration::from_secs(30);

/// The reconciler: the host behind its traits, the stores, and its memory.
pub struct Reconciler {
    settings: Settings,
    volumes: Arc<dyn VolumeManager>,
    units: Arc<dyn UnitManager>,
    unit_dir: Box<dyn UnitFiles>,
    stores: Stores,
    stopping: Option<watch::Receiver<bool>>,
    journal: Journal,
    /// The sealed copies of the previous files of the rotations under way.
    sealed: previous::SealedPrevious,
    /// The health checks running beside the reconciles.
    checks: checks::Checks,
    /// The spec directory's loader, which keeps the last catalog.
    loader: Loader,
    /// What the metrics file says.
    metrics: crate::metrics::Metrics,
    /// What time it is (health checks' deadlines).
    clock: Arc<dyn Clock>,
    /// What carries over from one reconcile to the next.
    memory: memory::Memory,
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
        let journal = Journal::new(&settings.state_dir);
        let sealed = previous::SealedPrevious::new(&settings.state_dir);
        let memory = memory::Memory {
            status: Status::read(&settings.state_dir).unwrap_or_default(),
            owed: journal.read(),
            ..memory::Memory::default()
        };
        if !memory.owed.is_empty() {
            tracing::info!(
                jobs = memory.owed.jobs.len(),
                daemon_reload = memory.owed.daemon_reload,
                "work owed by the last run is done first"
            );
        }
        Self {
            settings,
            volumes: volumes.into(),
            units: units.into(),
            unit_dir,
            stores: Stores::new(connector, Limits::default()),
            stopping: None,
            journal,
            sealed,
            checks: checks::Checks::default(),
            loader: Loader::default(),
            metrics: crate::metrics::Metrics::default(),
            clock: Arc::new(crate::clock::SystemClock),
            memory,
        }
    }

    /// Stops waiting for secret providers as soon as `stopping` turns true: a hung provider
    /// never delays shutdown. Nothing has been changed on the host at that point.
    #[must_use]
    pub fn with_shutdown(mut self, stopping: watch::Receiver<bool>) -> Self {
        self.stopping = Some(stopping);
        self
    }

    /// Reads the time from `clock` (tests move it by hand).
    #[must_use]
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
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

    /// Takes the paths of a finished file event (see [`Stores::files_changed`]); says what
    /// the next reconcile must refresh, and how long it waits for more. A spec file closed
    /// after a write or moved into place waits as a paired secret does ([`Settle::Siblings`]):
    /// git writes the next file of a pull well within it, and its removal or creation before
    /// the write is a burst of its own. A lost track of events (no paths) is a burst.
    pub fn files_changed(&mut self, paths: &[PathBuf]) -> (Due, Settle) {
        tracing::debug!(?paths, "files changed");
        match self.stores.files_changed(paths) {
            Some(settle) => (Due::Secrets, settle),
            None if paths.is_empty() => (Due::Files, Settle::Burst),
            None => (Due::Files, Settle::Siblings),
        }
    }

    /// The last status written.
    #[must_use]
    pub fn status(&self) -> &Status {
        &self.memory.status
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
            payload,
            watch,
        } = observed;
        let plan = decide::decide(&facts);
        self.say_verdicts(&plan);
        let applied = self.apply(&plan, &facts, payload).await;
        let next = self.settle_status(&facts, &plan, &applied).await;
        // The events that asked for this reconcile's fetches are done with.
        self.stores.ack_fetched();
        let settling = next.specs.values().any(|s| s.phase == Phase::Progressing);
        let mut requeue = applied
            .failures
            .values()
            .fold(plan.requeue, |r, e| r.and(error_policy(e)));
        if settling {
            // A unit on its way up is looked at again with backoff: a start that hangs or
            // fails later is seen and retried.
            requeue = requeue.and(Requeue::Backoff {
                transient: true,
                within: None,
            });
        }
        if let Some(due) = self.stores.next_due() {
            requeue = requeue.and(Requeue::After(due));
        }
        let outcome = Outcome {
            failed: !applied.failures.is_empty() || plan.requeue.failed(),
            requeue,
            stopped: false,
            watch,
            actions: plan.actions.clone(),
        };
        // Asked for (`ramlet sync`, SIGHUP, a start): the status file says so, changed or not.
        self.keep_status(next, due == Due::All);
        let rotated = self.rotations(&facts, &plan, &applied);
        self.metrics.rotated(&rotated);
        self.count(started, outcome.failed, &plan.jobs());
        outcome
    }

    /// How long each rotation this reconcile finished took: from the first new version its
    /// consumer now reads to that consumer's restart or reload done (a job for a rotation that
    /// did not fail).
    fn rotations(
        &self,
        facts: &facts::Facts,
        plan: &plan::Plan,
        applied: &apply::Applied,
    ) -> Vec<std::time::Duration> {
        let now = tokio::time::Instant::now();
        plan.jobs_with_names()
            .into_iter()
            .filter(|(name, job, cause)| {
                *cause == Cause::Rotation
                    && matches!(job, Job::Restart | Job::Reload)
                    && !applied.failures.contains_key(*name)
            })
            .filter_map(|(name, _, _)| {
                let spec = facts.specs.iter().find(|s| s.name == name)?;
                let wants = spec.wants.as_ref().ok()?;
                wants
                    .versions
                    .iter()
                    .filter(|v| !spec.live.contains(v))
                    .filter_map(|v| self.stores.seen(&v.id))
                    .min()
                    .map(|seen| now.duration_since(seen))
            })
            .collect()
    }

    /// Counts a reconcile in the metrics and writes the metrics file, if there is one.
    fn count(&mut self, started: std::time::Instant, failed: bool, jobs: &[(Job, Cause)]) {
        let jobs: Vec<(Job, &'static str)> = jobs.iter().map(|(j, c)| (*j, c.as_str())).collect();
        self.metrics.reconciled(started.elapsed(), failed, &jobs);
        if let Some(path) = &self.settings.metrics_file {
            let text = self.metrics.render(
                &self.memory.status,
                &self.stores.answers(),
                self.memory.owed.jobs.len(),
                &self.stores.leasing(),
            );
            if let Err(error) = crate::metrics::write(path, &text) {
                tracing::warn!(path = %path.display(), %error, "cannot write the metrics file");
            }
        }
    }

    /// What a reconcile would do now, without doing any of it (`ramlet plan`): observe and
    /// decide, nothing else. Secrets are fetched to compare versions; nothing is written,
    /// started, stopped, sealed or taken on the host.
    ///
    /// # Errors
    /// When the spec directory or the unit folder cannot be read, systemd does not say how
    /// the units are, or shutdown cut the wait on the providers short.
    pub async fn preview(&mut self, due: Due) -> Result<preview::Preview, HostError> {
        match self.observe(due, observe::Intent::Preview).await {
            Ok(observed) => {
                let plan = decide::decide(&observed.facts);
                Ok(preview::Preview::new(
                    &observed.facts,
                    &plan,
                    &self.memory.status,
                ))
            }
            Err(Stop::Failed(error)) => Err(error),
            Err(Stop::Shutdown) => Err(HostError::Interrupted),
        }
    }

    fn fail_all(&mut self, error: &HostError) -> Outcome {
        tracing::error!(kind = error.kind(), %error, "reconcile failed");
        let status = &mut self.memory.status;
        status.errors = vec![error.to_string()];
        status.updated = crate::util::now_rfc3339();
        let _ = status.write(&self.settings.state_dir);
        Outcome {
            failed: true,
            requeue: error_policy(error),
            ..Outcome::default()
        }
    }
}

/// Why a reconcile stopped before its plan: something of the host's, not of a spec.
#[derive(Debug, thiserror::Error)]
pub enum HostError {
    /// The spec directory could not be read.
    #[error(transparent)]
    SpecDir(#[from] ramlet_specs::LoadError),
    /// Reading the spec directory took longer than its deadline (30 s).
    #[error("reading the spec directory {} took longer than {} s (a file system that does not answer?); the last specs stay in force", .dir.display(), LOAD_DEADLINE.as_secs())]
    SpecDirHung {
        /// The spec directory.
        dir: PathBuf,
    },
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
    /// Shutdown cut the wait on the providers short.
    #[error("interrupted")]
    Interrupted,
}

/// A reconcile that stops before its plan is tried again with a doubling backoff: the spec
/// directory (a GitOps sync half done, a file system that hangs), the unit folder and systemd
/// (a manager still starting, a bus that comes back) may all pass by themselves, and nothing
/// else would wake the loop when they do.
impl Transient for HostError {
    fn is_transient(&self) -> bool {
        match self {
            Self::SpecDir(_)
            | Self::SpecDirHung { .. }
            | Self::UnitDir { .. }
            | Self::Systemd(_)
            | Self::Interrupted => true,
        }
    }
}

impl HostError {
    /// One stable word for logs and metrics: `spec-dir`, `unit-dir`, `systemd`.
    #[must_use]
    pub fn kind(&self) -> &'static str {
        match self {
            Self::SpecDir(_) | Self::SpecDirHung { .. } => "spec-dir",
            Self::UnitDir { .. } => "unit-dir",
            Self::Systemd(_) => "systemd",
            Self::Interrupted => "interrupted",
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
