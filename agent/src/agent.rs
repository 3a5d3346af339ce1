//! `ramlet run`: the control loop. File events (specs and `file` stores, debounced), refresh
//! timers, SIGHUP and `ramlet sync` all become one stream of wake-ups; each wake-up runs one
//! reconcile. Errors are retried with capped exponential backoff. SIGTERM and SIGINT end the loop
//! and leave the containers running.

use std::collections::BTreeSet;
use std::future::Future;
use std::path::Path;
use std::time::Duration;

use anyhow::{Context as _, Result};
use tokio::signal::unix::{Signal, SignalKind, signal};
use tokio::sync::mpsc;
use tokio::time::Instant;

use crate::config::Config;
use crate::providers::stores::Due;
use crate::reconcile::{Reconciler, Settings};
use crate::systemd::DbusManager;
use crate::volumes::RamVolumes;

/// The pid file's name in the state directory (`ramlet sync` signals that process).
pub const PID_FILE: &str = "ramlet.pid";

/// Why the loop woke up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wake {
    /// A spec or secret file changed.
    Files,
    /// SIGHUP or `ramlet sync`.
    Sync,
}

impl Wake {
    /// Which secret stores this wake-up must refresh beyond those that are due.
    fn due(self) -> Due {
        match self {
            Self::Files => Due::Files,
            Self::Sync => Due::All,
        }
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
    let target = match config.podman_version {
        Some(version) => version,
        None => crate::podman::detect_version()?,
    };
    let volumes = RamVolumes::new(config.layout.volume_root.clone(), config.layout.scope)?;
    let units = DbusManager::connect(&config.bus, config.job_timeout)
        .await
        .context("cannot reach systemd")?;
    std::fs::create_dir_all(&config.state_dir)
        .with_context(|| format!("cannot create {}", config.state_dir.display()))?;
    let pid_file = config.state_dir.join(PID_FILE);
    std::fs::write(&pid_file, format!("{}\n", std::process::id()))
        .with_context(|| format!("cannot write {}", pid_file.display()))?;
    let settings = Settings {
        spec_dir: config.spec_dir.clone(),
        layout: config.layout.clone(),
        host_labels: config.host_labels.clone(),
        target,
        state_dir: config.state_dir.clone(),
    };
    tracing::info!(scope = ?config.layout.scope, spec_dir = %config.spec_dir.display(), unit_dir = %config.layout.unit_dir.display(), podman = %target, "ramlet starting");
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let mut reconciler = Reconciler::new(
        settings,
        Box::new(volumes),
        Box::new(units),
        crate::providers::connector(),
    )
    .with_shutdown(stop_rx);

    let (tx, rx) = mpsc::unbounded_channel();
    let events = tx.clone();
    let mut watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
        if event.is_ok_and(|e| !e.kind.is_access()) {
            let _ = events.send(Wake::Files);
        }
    })
    .context("cannot watch files")?;
    let mut watches = crate::watch::Watches::new(config.spec_dir.clone());
    watches.update(&mut watcher, &BTreeSet::new());
    let sync = tx.clone();
    tokio::spawn(async move {
        while hup.recv().await.is_some() {
            let _ = sync.send(Wake::Sync);
        }
    });

    let result = control_loop(
        &config,
        &mut reconciler,
        &mut watcher,
        &mut watches,
        rx,
        shutdown,
        &stop_tx,
    )
    .await;
    let _ = std::fs::remove_file(&pid_file);
    crate::notify::notify("STOPPING=1");
    tracing::info!("ramlet stopped; containers keep running");
    result
}

async fn control_loop(
    config: &Config,
    reconciler: &mut Reconciler,
    watcher: &mut notify::RecommendedWatcher,
    watches: &mut crate::watch::Watches,
    mut rx: mpsc::UnboundedReceiver<Wake>,
    shutdown: impl Future<Output = ()>,
    stop: &tokio::sync::watch::Sender<bool>,
) -> Result<()> {
    tokio::pin!(shutdown);
    let mut due = Due::Timers;
    let mut backoff = BACKOFF_MIN;
    let mut ready = false;
    loop {
        let started = Instant::now();
        let outcome = {
            let reconcile = reconciler.reconcile(due);
            tokio::pin!(reconcile);
            tokio::select! {
                outcome = &mut reconcile => outcome,
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
        };
        tracing::info!(
            actions = outcome.actions.len(),
            failed = outcome.failed,
            took_ms = started.elapsed().as_millis(),
            "reconciled"
        );
        watches.update(watcher, &outcome.watch);
        let status = reconciler.status();
        let ready_count = status
            .specs
            .values()
            .filter(|s| s.phase == crate::status::Phase::Ready)
            .count();
        let message = format!(
            "STATUS={ready_count}/{} specs ready, {} spec errors",
            status.specs.len(),
            status.errors.len()
        );
        crate::notify::notify(&if ready {
            message
        } else {
            format!("READY=1\n{message}")
        });
        ready = true;

        let wait = if outcome.failed {
            let wait = backoff;
            backoff = (backoff * 2).min(BACKOFF_MAX);
            wait.min(outcome.refresh.unwrap_or(DEFAULT_REFRESH))
        } else {
            backoff = BACKOFF_MIN;
            outcome.refresh.unwrap_or(DEFAULT_REFRESH)
        };
        tokio::select! {
            () = &mut shutdown => return Ok(()),
            wake = rx.recv() => {
                let Some(wake) = wake else {
                    return Ok(());
                };
                due = wake.due();
                // Debounce: an editor or git-sync writes several files at once.
                tokio::time::sleep(config.debounce).await;
                while let Ok(more) = rx.try_recv() {
                    if more == Wake::Sync {
                        due = Due::All;
                    }
                }
            }
            () = tokio::time::sleep(wait) => due = Due::Timers,
        }
    }
}

/// Sends SIGHUP to the running agent whose state directory is `state_dir` (`ramlet sync`).
pub fn sync(state_dir: &Path) -> Result<()> {
    let pid_file = state_dir.join(PID_FILE);
    let text = std::fs::read_to_string(&pid_file)
        .with_context(|| format!("no running ramlet: cannot read {}", pid_file.display()))?;
    let pid: i32 = text
        .trim()
        .parse()
        .with_context(|| format!("{} holds no pid", pid_file.display()))?;
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid),
        nix::sys::signal::Signal::SIGHUP,
    )
    .with_context(|| format!("cannot signal ramlet (pid {pid})"))?;
    Ok(())
}
