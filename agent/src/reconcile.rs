//! One reconcile: read the specs, fetch the secrets, render the units, observe the host, plan,
//! apply, and record the status. Side effects go through the [`VolumeManager`],
//! [`UnitManager`] and [`SecretProvider`](crate::providers::SecretProvider) traits; the plan itself is [`plan`].
//!
//! Layout: this file runs the steps in order; `desire` works out what one container should be
//! (its secrets shaped, its unit rendered); `observe` gathers the host's facts; [`plan`] (pure)
//! turns desire and facts into actions; `apply` runs them, with [`owed`] journaling the jobs
//! they owe; `status` writes each spec's phase, reason and unit state.
//!
//! Failure policy: a spec whose file is broken, whose secrets cannot be fetched or whose unit
//! cannot be rendered is left exactly as it runs now (`Degraded`), or not created (`Failed`);
//! every other spec goes on.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use ramlet_quadlet::PodmanVersion;
use ramlet_specs::model::{Container, Provider};
use ramlet_specs::{Catalog, Loader};
use tokio::sync::watch;

use crate::drivers::FileContent;
use crate::drivers::{Job, UnitFiles, UnitManager, UnitState};
use crate::drivers::{VolumeManager, VolumeSpec};
use crate::layout::Layout;
use crate::providers::stores::{Due, Stores};
use crate::providers::{Connector, Limits};
use crate::status::{Phase, Reason, Status};
use owed::{Journal, Owed};
use plan::Action;

mod apply;
mod desire;
mod observe;
pub mod owed;
pub mod plan;
pub mod preview;
mod status;

use status::spec_status;

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
    /// Whether anything failed (the loop retries with backoff).
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
    units: Box<dyn UnitManager>,
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
            units,
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
    pub fn with_events(mut self, sink: crate::providers::events::Sink) -> Self {
        self.stores
            .listen_with(sink, crate::providers::events::spawn);
        self
    }

    /// Takes a listener's notice (see [`Stores::notice`]); true when a reconcile should follow.
    pub fn notice(&mut self, notice: crate::providers::events::Notice) -> bool {
        self.stores.notice(notice)
    }

    /// The last status written.
    #[must_use]
    pub fn status(&self) -> &Status {
        &self.status
    }

    /// Loads the spec directory (off the runtime's thread), with this host's policy; parsed
    /// again only when a file in it changed (see [`Loader`]). A load that takes longer than
    /// [`LOAD_DEADLINE`] (a file system that hangs) is given up: its thread is left behind, not
    /// waited for, so neither reconciles nor shutdown hang with it.
    async fn load(&mut self) -> Result<Arc<Catalog>, String> {
        let dir = self.settings.spec_dir.clone();
        let policy = self.settings.policy.clone();
        let mut loader = std::mem::take(&mut self.loader);
        let loaded = tokio::task::spawn_blocking(move || {
            let (sender, answer) = std::sync::mpsc::channel();
            std::thread::spawn(move || {
                let loaded = loader.load(&dir, &policy);
                let _ = sender.send((loader, loaded));
            });
            answer.recv_timeout(LOAD_DEADLINE).ok()
        })
        .await
        .map_err(|e| e.to_string())?;
        let Some((loader, loaded)) = loaded else {
            return Err(format!(
                "reading the spec directory {} took longer than {} s (a file system that does not answer?); the last specs stay in force",
                self.settings.spec_dir.display(),
                LOAD_DEADLINE.as_secs()
            ));
        };
        self.loader = loader;
        let catalog = loaded.map_err(|e| e.to_string())?;
        // Forget the renders of specs that are gone.
        if let Ok(mut rendered) = self.rendered.lock() {
            let names: BTreeSet<&str> = catalog
                .containers
                .keys()
                .map(ramlet_specs::model::Name::as_str)
                .collect();
            rendered.retain(|name, _| names.contains(name.as_str()));
        }
        Ok(catalog)
    }

    /// Runs one reconcile; `due` says which stores must be asked even if their timers have
    /// not fired.
    pub async fn reconcile(&mut self, due: Due) -> Outcome {
        let started = std::time::Instant::now();
        let Gathered {
            mut next,
            mut outcome,
            desired,
            mut writes,
            keep,
            mut observed,
            actions,
        } = match self.gather(due).await {
            Ok(gathered) => gathered,
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
        self.exact_states(&actions, &mut observed).await;
        let failures = self
            .apply(&actions, &desired, &mut writes, &observed, &keep)
            .await;
        outcome.failed |= !failures.is_empty();

        self.settle_status(&mut next, &failures, &actions, &observed)
            .await;
        let jobs: Vec<(Job, &'static str)> = actions
            .iter()
            .filter_map(|a| match a {
                Action::Job(job, name) => {
                    Some((*job, plan::cause(*job, name, &desired, &observed)))
                }
                _ => None,
            })
            .collect();
        // The events that asked for this reconcile's fetches are done with.
        self.stores.settle();
        outcome.actions = actions;
        outcome.refresh = self.stores.next_due();
        outcome.settling = next.specs.values().any(|s| s.phase == Phase::Progressing);
        // Asked for (`ramlet sync`, SIGHUP, a start): the status file says so, changed or not.
        self.keep_status(next, due == Due::All);
        self.count(started, outcome.failed, &jobs);
        outcome
    }

    /// Counts a reconcile in the metrics and writes the metrics file, if there is one.
    fn count(&mut self, started: std::time::Instant, failed: bool, jobs: &[(Job, &'static str)]) {
        self.metrics.reconciled(started.elapsed(), failed, jobs);
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
        let previous = self.status.clone();
        match self.gather(due).await {
            Ok(gathered) => Ok(preview::Preview::new(&gathered, &previous)),
            Err(Stop::Failed(error)) => Err(error),
            Err(Stop::Shutdown) => Err("interrupted".into()),
        }
    }

    /// The first half of a reconcile, which changes nothing on the host: load the specs,
    /// refresh the secrets that are due, work out what each selected spec wants, observe the
    /// host and plan.
    async fn gather(&mut self, due: Due) -> Result<Gathered, Stop> {
        let catalog = self.load().await.map_err(Stop::Failed)?;
        let now = crate::util::now_rfc3339();
        let mut next = Status {
            updated: now.clone(),
            errors: catalog.errors.iter().map(ToString::to_string).collect(),
            selinux: self.volumes.selinux(),
            volumes: self.volumes.medium(),
            ..Status::default()
        };
        let mut outcome = Outcome {
            failed: !catalog.errors.is_empty(),
            ..Outcome::default()
        };
        let listing = self.unit_dir.list().await.map_err(|error| {
            Stop::Failed(format!(
                "cannot list {}: {error}",
                self.unit_dir.path().display()
            ))
        })?;
        let labels = self.settings.host_labels.clone();
        let selected: Vec<&Container> = catalog.selected(&labels).collect();
        if self
            .refresh_secrets(&catalog, &selected, due, &mut outcome)
            .await
        {
            return Err(Stop::Shutdown);
        }
        next.stores = self.stores.status();
        let mut desired = Vec::new();
        let mut writes: BTreeMap<String, Vec<(VolumeSpec, Vec<FileContent>)>> = BTreeMap::new();
        let mut keep = BTreeSet::new();
        let ours: BTreeSet<String> = listing.ours.keys().cloned().collect();
        for container in &selected {
            let name = container.name.to_string();
            let kept = listing.ours.contains_key(&name);
            match self
                .desire(container, &catalog, &listing.foreign, &ours)
                .await
            {
                Ok((want, changed, versions)) => {
                    desired.push(want);
                    writes.insert(name.clone(), changed);
                    next.specs.insert(
                        name,
                        spec_status(
                            container,
                            &now,
                            Phase::Progressing,
                            Reason::Applied,
                            String::new(),
                            versions,
                        ),
                    );
                }
                Err((reason, message, versions)) => {
                    outcome.failed = true;
                    // Said once, when it starts or changes (not at every retry).
                    if self
                        .status
                        .specs
                        .get(&name)
                        .is_none_or(|s| s.reason != reason || s.message != message)
                    {
                        tracing::warn!(spec = %name, unit = %service(&name), reason = ?reason, %message, "{name}: spec not applied ({reason:?}): {message}");
                    }
                    // A spec that runs already keeps running as it is; a new one is not created.
                    let phase = if kept && reason != Reason::UnitNameTaken {
                        keep.insert(name.clone());
                        Phase::Degraded
                    } else if reason == Reason::SystemdUnavailable {
                        // Not refused: it waits for systemd to answer.
                        Phase::Degraded
                    } else {
                        Phase::Failed
                    };
                    next.specs.insert(
                        name,
                        spec_status(container, &now, phase, reason, message, versions),
                    );
                }
            }
        }
        self.keep_broken(&catalog, &listing.ours, &mut keep, &mut next, &now);
        let observed = self
            .observe(listing.ours, &desired)
            .await
            .map_err(|error| {
                Stop::Failed(format!("cannot ask systemd for the units' states: {error}"))
            })?;
        let actions = plan::plan(&desired, &observed, &keep);
        Ok(Gathered {
            next,
            outcome,
            desired,
            writes,
            keep,
            observed,
            actions,
        })
    }

    /// Refreshes what is due of the secrets `selected` uses and notes the `file` stores to
    /// watch; returns true when shutdown cut the wait on the providers short.
    async fn refresh_secrets(
        &mut self,
        catalog: &Catalog,
        selected: &[&Container],
        due: Due,
        outcome: &mut Outcome,
    ) -> bool {
        let references: Vec<_> = selected
            .iter()
            .flat_map(|c| &c.volumes)
            .flat_map(|v| &v.files)
            .map(|f| &f.secret)
            .collect();
        for reference in &references {
            if let Some(Provider::File { directory }) =
                catalog.stores.get(&reference.store).map(|s| &s.provider)
            {
                outcome.watch.insert(directory.clone());
            }
        }
        let refresh = self
            .stores
            .refresh(&catalog.stores, references.iter().copied(), due);
        if let Some(mut stopping) = self.stopping.clone() {
            tokio::select! {
                () = refresh => {}
                _ = stopping.wait_for(|s| *s) => return true,
            }
        } else {
            refresh.await;
        }
        false
    }

    fn fail_all(&mut self, message: &str) -> Outcome {
        tracing::error!(%message, "reconcile failed");
        self.status.errors = vec![message.to_owned()];
        self.status.updated = crate::util::now_rfc3339();
        let _ = self.status.write(&self.settings.state_dir);
        Outcome {
            failed: true,
            ..Outcome::default()
        }
    }
}

/// What [`Reconciler::gather`] found and planned.
struct Gathered {
    /// The status this reconcile will leave (phases settled after the apply).
    next: Status,
    outcome: Outcome,
    desired: Vec<plan::Desired>,
    /// Per spec, the volumes whose content changes.
    writes: BTreeMap<String, Vec<(VolumeSpec, Vec<FileContent>)>>,
    /// Specs left exactly as they are.
    keep: BTreeSet<String>,
    observed: plan::Observed,
    actions: Vec<Action>,
}

/// Why a reconcile stopped before its plan.
enum Stop {
    /// The spec or unit directory could not be read, or systemd did not say how the units are.
    Failed(String),
    /// SIGTERM during the wait on the providers.
    Shutdown,
}

/// The service systemd makes of a spec's unit.
#[must_use]
pub fn service(name: &str) -> String {
    format!("{name}.service")
}
