//! `ramlet run`: the control loop. File events (specs and local stores, debounced; a file in a
//! `file` or `creds` store's folder marks just its secret due), refresh
//! timers, SIGHUP, `ramlet sync` and the stores' change events all become one stream of
//! wake-ups; each wake-up runs one reconcile. Errors are retried with capped exponential backoff ([`Pacing`]). SIGTERM and
//! SIGINT end the loop within 5 s and leave the containers running. [`control_loop`] takes its
//! wake-ups as a channel and its reconciler as a trait, so its timing is tested on tokio's
//! paused clock.

use std::collections::BTreeSet;
use std::future::Future;
use std::time::Duration;

use anyhow::{Context as _, Result};
use tokio::signal::unix::{Signal, SignalKind, signal};
use tokio::sync::mpsc;
use tokio::time::Instant;

use crate::config::Config;
use crate::host::systemd::DbusManager;
use crate::host::unit_dir::UnitDir;
use crate::host::volumes::RamVolumes;
use crate::providers::events::Notice;
use crate::providers::stores::{Due, Settle};
use crate::reconcile::{Outcome, Reconciler, Settings};
use crate::retry::ErrorPolicy;

pub use crate::host::pidfile::{PID_FILE, sync};

/// Why the loop woke up.
#[derive(Debug)]
pub enum Wake {
    /// Spec or secret files changed and are finished (closed after writing, moved in, removed):
    /// these paths (none when the watcher lost track, as on an inotify overflow).
    Files(Vec<std::path::PathBuf>),
    /// Files being written: their close (a [`Wake::Files`]) is expected next.
    Writing(Vec<std::path::PathBuf>),
    /// SIGHUP or `ramlet sync`.
    Sync,
    /// A store's listener: a change event, or its health.
    Store(Notice),
}

/// Which secret stores `wake` must refresh beyond those that are due, and how long to wait
/// for more first; `None` when it needs no reconcile (an event for a secret no spec uses).
fn wake_due<R: Reconcile>(reconciler: &mut R, wake: Wake) -> Option<(Due, Settle)> {
    match wake {
        Wake::Files(paths) => Some(reconciler.files_changed(&paths)),
        Wake::Writing(paths) => Some((reconciler.files_changed(&paths).0, Settle::Burst)),
        Wake::Sync => Some((Due::All, Settle::Now)),
        // The event marked its secrets due in the stores; it names one version of one secret.
        Wake::Store(notice) => reconciler
            .notice(notice)
            .then_some((Due::Secrets, Settle::Now)),
    }
}

const BACKOFF_MIN: Duration = Duration::from_secs(1);
const BACKOFF_MAX: Duration = Duration::from_mins(1);
const DEFAULT_REFRESH: Duration = Duration::from_mins(5);
/// How long a reconcile may go on after SIGTERM: ramlet exits within 5 s.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(3);

/// The signals the agent answers, registered as the process starts (a signal that arrives
/// before its handler exists would end the process).
pub struct Signals {
    term: Signal,
    int: Signal,
    hup: Signal,
}

impl Signals {
    /// Registers SIGTERM, SIGINT and SIGHUP; call inside the runtime, before anything else.
    ///
    /// # Errors
    /// When the runtime cannot register a handler.
    pub fn install() -> std::io::Result<Self> {
        Ok(Self {
            term: signal(SignalKind::terminate())?,
            int: signal(SignalKind::interrupt())?,
            hup: signal(SignalKind::hangup())?,
        })
    }
}

/// A reconciler wired to this host: its RAM volumes, systemd over D-Bus and the real secret
/// providers. `agent`: for `ramlet run` (checks that ramlet shares systemd's mount namespace
/// when it mounts volumes itself); `ramlet plan` makes one too, and changes nothing with it.
///
/// # Errors
/// When the Podman version cannot be told, the volume root is not RAM, or systemd is out of
/// reach.
pub async fn reconciler(config: &Config, agent: bool) -> Result<Reconciler> {
    // Every command that builds a reconciler fetches secrets (`run`, `plan`): protect them first.
    protect_memory();
    let target = match config.podman_version {
        Some(version) => version,
        None => crate::host::podman::detect_version()?,
    };
    let volumes = RamVolumes::new(config.layout.volume_root.clone(), config.layout.scope)?;
    let units = DbusManager::connect(&config.bus, config.job_timeout)
        .await
        .context("cannot reach systemd")?;
    if agent && volumes.mounts_per_volume() {
        same_mounts_as_systemd(&units, &config.layout.volume_root).await?;
    }
    let settings = Settings {
        spec_dir: config.spec_dir.clone(),
        layout: config.layout.clone(),
        host_labels: config.host_labels.clone(),
        target,
        state_dir: config.state_dir.clone(),
        policy: config.policy.clone(),
        metrics_file: if agent {
            config.metrics_file.clone()
        } else {
            None
        },
    };
    if agent {
        tracing::info!(scope = ?config.layout.scope, spec_dir = %config.spec_dir.display(), unit_dir = %config.layout.unit_dir.display(), podman = %target, "ramlet starting");
    }
    Ok(Reconciler::new(
        settings,
        Box::new(volumes),
        Box::new(units),
        Box::new(UnitDir::new(config.layout.unit_dir.clone())),
        crate::providers::connector_for(
            config.spec_dir.clone(),
            if agent {
                crate::providers::Issue::Yes
            } else {
                crate::providers::Issue::No
            },
        ),
    ))
}

/// Runs the agent until SIGTERM or SIGINT.
pub async fn run(config: Config, signals: Signals) -> Result<()> {
    let Signals {
        mut term,
        mut int,
        mut hup,
    } = signals;
    let shutdown = async move {
        tokio::select! {
            _ = term.recv() => {}
            _ = int.recv() => {}
        }
    };
    // (The reconciler protects the process's memory before it fetches anything.)
    // First the claim on the state directory: a second agent stops here, before it touches
    // anything.
    std::fs::create_dir_all(&config.state_dir)
        .with_context(|| format!("cannot create {}", config.state_dir.display()))?;
    let pid_file = crate::host::pidfile::PidFile::claim(&config.state_dir)?;
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let (tx, rx) = mpsc::unbounded_channel();
    let notices = tx.clone();
    let mut reconciler = reconciler(&config, true)
        .await?
        .with_shutdown(stop_rx)
        .with_events(std::sync::Arc::new(move |notice| {
            let _ = notices.send(Wake::Store(notice));
        }));

    let events = tx.clone();
    let mut watches = crate::watch::Watches::new(config.spec_dir.clone());
    let relevant = watches.relevant();
    let mut watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
        let Ok(event) = event else { return };
        if !relevant.wakes(&event.paths) {
            return;
        }
        let paths = relevant.within(&event.paths);
        let _ = events.send(match event.kind {
            // Created or written to, not closed yet: its close follows. Removed or moved away:
            // often about to come back (an editor's save, a file moved aside, then a new one in).
            notify::EventKind::Create(notify::event::CreateKind::File)
            | notify::EventKind::Modify(
                notify::event::ModifyKind::Data(_)
                | notify::event::ModifyKind::Name(notify::event::RenameMode::From),
            )
            | notify::EventKind::Remove(_) => Wake::Writing(paths),
            notify::EventKind::Access(notify::event::AccessKind::Close(
                notify::event::AccessMode::Write,
            ))
            | notify::EventKind::Any
            | notify::EventKind::Create(_)
            | notify::EventKind::Modify(_)
            | notify::EventKind::Other => Wake::Files(paths),
            notify::EventKind::Access(_) => return,
        });
    })
    .context("cannot watch files")?;
    watches.update(&mut watcher, &BTreeSet::new());
    let watched = tx.clone();
    let sync = tx.clone();
    // A reload (SIGHUP) begins: systemd hears RELOADING=1 at once, and READY=1 after the first
    // reconcile that started after it (`Type=notify-reload`: `systemctl reload` waits for it).
    let reload_asked: std::sync::Arc<std::sync::Mutex<Option<Instant>>> = std::sync::Arc::default();
    let asked = reload_asked.clone();
    tokio::spawn(async move {
        while hup.recv().await.is_some() {
            crate::host::notify::notify(&crate::host::notify::reloading());
            if let Ok(mut pending) = asked.lock() {
                pending.get_or_insert_with(Instant::now);
            }
            let _ = sync.send(Wake::Sync);
        }
    });

    let mut ready = false;
    let result = control_loop(
        &mut reconciler,
        rx,
        shutdown,
        &stop_tx,
        config.debounce,
        crate::host::notify::watchdog_interval(),
        |reconciler: &Reconciler, outcome: &Outcome, started: Instant| {
            let added = watches.update(&mut watcher, &outcome.watch);
            if !added.is_empty() {
                // Read once more what changed before these folders were watched.
                let _ = watched.send(Wake::Files(added));
            }
            let reloaded = reload_asked
                .lock()
                .is_ok_and(|mut pending| pending.take_if(|asked| *asked <= started).is_some());
            let message = format!("STATUS={}", reconciler.status().summary());
            crate::host::notify::notify(&if ready && !reloaded {
                message
            } else {
                format!("READY=1\n{message}")
            });
            ready = true;
        },
    )
    .await;
    drop(pid_file);
    crate::host::notify::notify("STOPPING=1");
    tracing::info!("ramlet stopped; containers keep running");
    result
}

/// Keeps the secrets in this process's memory out of core dumps and away from other processes
/// of the same user: not dumpable (no core file, no ptrace by peers, `/proc/<pid>/mem` and
/// `environ` root's) and a core size limit of 0. Failures are logged: they only weaken a second
/// line of defence.
fn protect_memory() {
    if let Err(error) = nix::sys::prctl::set_dumpable(false) {
        tracing::warn!(%error, "cannot make ramlet non-dumpable");
    }
    if let Err(error) =
        nix::sys::resource::setrlimit(nix::sys::resource::Resource::RLIMIT_CORE, 0, 0)
    {
        tracing::warn!(%error, "cannot set ramlet's core size limit to 0");
    }
}

/// Checks that the tmpfs ramlet mounts per volume will be seen by the systemd manager (and the
/// Podman it starts): both must share one mount namespace. A hardened unit (`PrivateTmp=`,
/// `ProtectSystem=`, ...) gives ramlet a namespace of its own, where each mount would be
/// ramlet's alone and every container would see an empty folder.
async fn same_mounts_as_systemd(units: &DbusManager, root: &std::path::Path) -> Result<()> {
    let fix = format!(
        "make {} RAM first (`ramlet mount-volume-root` as root in the host's mount namespace; dist/ramlet-volume-root.service does it), so that ramlet only makes folders in it, or run ramlet in the host's mount namespace",
        root.display()
    );
    let pid = units
        .manager_pid()
        .await
        .with_context(|| format!("cannot tell which systemd manager ramlet talks to; {fix}"))?;
    let ours = std::fs::read_link("/proc/self/ns/mnt").context("cannot read /proc/self/ns/mnt")?;
    let theirs = std::fs::read_link(format!("/proc/{pid}/ns/mnt"))
        .with_context(|| format!("cannot see the mount namespace of systemd (pid {pid}); {fix}"))?;
    anyhow::ensure!(
        ours == theirs,
        "ramlet would mount a tmpfs per volume under {}, but it runs in a mount namespace of its own ({} against systemd's {}): Podman would never see those mounts; {fix}",
        root.display(),
        ours.display(),
        theirs.display()
    );
    Ok(())
}

/// What the loop drives: [`Reconciler`], or a fake in tests.
pub trait Reconcile {
    /// Runs one reconcile.
    fn reconcile(&mut self, due: Due) -> impl Future<Output = Outcome>;

    /// Takes a store listener's notice; true when a reconcile should follow.
    fn notice(&mut self, notice: Notice) -> bool;

    /// Takes the paths of a file event; says what the next reconcile must refresh, and how
    /// long to wait for more first.
    fn files_changed(&mut self, paths: &[std::path::PathBuf]) -> (Due, Settle);
}

impl Reconcile for Reconciler {
    fn reconcile(&mut self, due: Due) -> impl Future<Output = Outcome> {
        Reconciler::reconcile(self, due)
    }

    fn notice(&mut self, notice: Notice) -> bool {
        Reconciler::notice(self, notice)
    }

    fn files_changed(&mut self, paths: &[std::path::PathBuf]) -> (Due, Settle) {
        Reconciler::files_changed(self, paths)
    }
}

/// When to reconcile again after `outcome`: the next store refresh, or sooner by the
/// [`ErrorPolicy`] (1 s doubling to 1 min) while something failed that may pass by itself, or
/// units are still on their way up.
#[derive(Debug)]
pub struct Pacing {
    errors: ErrorPolicy,
}

impl Default for Pacing {
    fn default() -> Self {
        Self {
            errors: ErrorPolicy::new(BACKOFF_MIN, BACKOFF_MAX),
        }
    }
}

impl Pacing {
    /// How long to wait, if nothing wakes the loop sooner.
    pub fn wait(&mut self, outcome: &Outcome) -> Duration {
        outcome.requeue.wait(&mut self.errors, DEFAULT_REFRESH)
    }
}

/// A reconcile that has run this long is stuck: the loop stops feeding systemd's watchdog, and
/// systemd restarts ramlet (the containers keep running; owed work is journaled). Longer than
/// any honest reconcile: a start job's timeout (90 s) plus the spec load's deadline.
const STUCK_AFTER: Duration = Duration::from_mins(5);

/// How often the first reconcile pushes systemd's start timeout back, and by how much.
const EXTEND_EVERY: Duration = Duration::from_secs(10);
const EXTEND_BY: Duration = Duration::from_secs(30);

/// Ticks every `watchdog`, or never when systemd asked for no watchdog.
async fn beat(watchdog: &mut Option<tokio::time::Interval>) {
    match watchdog {
        Some(interval) => {
            interval.tick().await;
        }
        None => std::future::pending().await,
    }
}

/// Reconciles, then waits for a wake-up (debounced), the next refresh or the backoff, until
/// `shutdown`; `after` sees each outcome (watches, `sd_notify`). systemd's watchdog is fed
/// every `watchdog` by this loop itself, while it waits and while a reconcile is younger than
/// `STUCK_AFTER` (5 minutes): a blocked runtime thread or a reconcile that never ends starves it.
pub async fn control_loop<R: Reconcile>(
    reconciler: &mut R,
    mut rx: mpsc::UnboundedReceiver<Wake>,
    shutdown: impl Future<Output = ()>,
    stop: &tokio::sync::watch::Sender<bool>,
    debounce: Duration,
    watchdog: Option<Duration>,
    mut after: impl FnMut(&R, &Outcome, Instant),
) -> Result<()> {
    tokio::pin!(shutdown);
    let mut due = Due::Timers;
    let mut pacing = Pacing::default();
    let mut watchdog = watchdog.map(tokio::time::interval);
    // While the first reconcile runs (a large host's first fetch and starts), systemd's start
    // timeout is pushed back: it is not ready yet, and not stuck either.
    let mut first = Some(tokio::time::interval(EXTEND_EVERY));
    loop {
        let started = Instant::now();
        tracing::trace!(?due, "reconciling");
        let outcome = {
            let reconcile = reconciler.reconcile(due);
            tokio::pin!(reconcile);
            loop {
                tokio::select! {
                    outcome = &mut reconcile => break outcome,
                    () = beat(&mut first) => {
                        crate::host::notify::notify(&format!(
                            "EXTEND_TIMEOUT_USEC={}\nSTATUS=first reconcile: fetching secrets and starting containers ({} s)",
                            EXTEND_BY.as_micros(),
                            started.elapsed().as_secs()
                        ));
                    }
                    () = beat(&mut watchdog) => {
                        if started.elapsed() < STUCK_AFTER {
                            crate::host::notify::notify("WATCHDOG=1");
                        } else {
                            tracing::error!(running_s = started.elapsed().as_secs(), "a reconcile is stuck; no longer feeding systemd's watchdog, so that systemd restarts ramlet");
                        }
                    }
                    () = &mut shutdown => {
                        // Waiting on a provider ends at once; an apply under way gets a moment to
                        // finish, then is dropped: what it owed is in the journal, and the next
                        // start does it (a job already queued runs on in systemd regardless).
                        let _ = stop.send(true);
                        if let Ok(outcome) = tokio::time::timeout(SHUTDOWN_GRACE, reconcile).await {
                            tracing::info!(stopped_early = outcome.stopped, "shutdown during a reconcile");
                        } else {
                            tracing::info!("shutdown cut a reconcile short; its owed work is journaled for the next start");
                        }
                        return Ok(());
                    }
                }
            }
        };
        let (actions, took_ms) = (outcome.actions.len(), started.elapsed().as_millis());
        let failed = if outcome.failed { ", some failed" } else { "" };
        tracing::info!(
            actions,
            failed = outcome.failed,
            took_ms,
            "reconciled: {actions} actions{failed}, {took_ms} ms"
        );
        first = None;
        after(reconciler, &outcome, started);
        let deadline = Instant::now() + pacing.wait(&outcome);
        due = loop {
            tokio::select! {
                () = &mut shutdown => return Ok(()),
                wake = rx.recv() => {
                    let Some(wake) = wake else {
                        return Ok(());
                    };
                    let Some(first) = wake_due(reconciler, wake) else {
                        continue;
                    };
                    let Some(due) = debounce::debounced(reconciler, &mut rx, first, debounce).await else {
                        return Ok(());
                    };
                    break due;
                }
                () = tokio::time::sleep_until(deadline) => break Due::Timers,
                () = beat(&mut watchdog) => crate::host::notify::notify("WATCHDOG=1"),
            }
        };
    }
}

mod debounce;
#[cfg(test)]
mod tests;
