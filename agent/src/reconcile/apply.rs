//! Applying a plan: each action through the host traits, in the plan's order, with the owed
//! work journaled before the first change and cleared job by job as each succeeds. The starts,
//! restarts and reloads after the daemon-reload run concurrently (bounded), so a secret shared
//! by 20 containers restarts them together, not one after another.
//!
//! A failed action fails its spec only: that spec's later actions are skipped (a unit whose
//! volume could not be written is not restarted; a unit that did not stop keeps its file and
//! volumes), every other spec goes on. A failed daemon-reload fails every spec's jobs; they stay
//! owed.

use std::collections::{BTreeMap, BTreeSet};

use futures_util::StreamExt as _;

use super::owed::{Journal, Owed};
use super::plan::{self, Action, Desired, Observed};
use super::{Reconciler, service};
use crate::drivers::FileContent;
use crate::drivers::VolumeSpec;
use crate::drivers::{Job, SystemdError, UnitManager, UnitState};

/// How many unit jobs run at once. systemd queues them all anyway; the bound keeps a host with
/// hundreds of specs from starting hundreds of Podman processes in the same second.
pub(super) const JOBS_AT_ONCE: usize = 32;

/// The specs that failed, and why.
pub(super) type Failures = BTreeMap<String, String>;

impl Reconciler {
    /// Applies `actions`; returns the specs that failed and why.
    pub(super) async fn apply(
        &mut self,
        actions: &[Action],
        desired: &[Desired],
        writes: &mut BTreeMap<String, Vec<(VolumeSpec, Vec<FileContent>)>>,
        observed: &Observed,
        keep: &BTreeSet<String>,
    ) -> Failures {
        let mut failed = Failures::new();
        let mut owed = plan::owed_by(actions, observed, keep);
        if let Err(error) = record(&self.journal, &mut self.owed, &owed) {
            // Without the journal a crash could lose a restart: change nothing this time.
            for d in desired {
                failed.insert(
                    d.name.clone(),
                    format!("cannot write the owed-work journal, so nothing was changed: {error}"),
                );
            }
            return failed;
        }
        let text = |name: &str| {
            desired
                .iter()
                .find(|d| d.name == name)
                .map(|d| d.unit_text.as_str())
                .unwrap_or_default()
        };
        // Why each job runs, for its log line (worked out before anything changes).
        let causes: BTreeMap<String, &'static str> = actions
            .iter()
            .filter_map(|a| match a {
                Action::Job(job, name) => {
                    Some((name.clone(), plan::cause(*job, name, desired, observed)))
                }
                _ => None,
            })
            .collect();
        let why = |action: &Action| reason(action, &causes);
        // Starts, restarts and reloads (contiguous, after the daemon-reload) run together.
        let mut batch: Vec<(Job, String)> = Vec::new();
        for action in actions {
            if action.spec().is_some_and(|name| failed.contains_key(name)) {
                continue;
            }
            if let Action::Job(job @ (Job::Start | Job::Restart | Job::Reload), name) = action {
                batch.push((*job, name.clone()));
                continue;
            }
            self.run_jobs(std::mem::take(&mut batch), &causes, &mut owed, &mut failed)
                .await;
            let result: Result<(), String> = match action {
                Action::WriteVolumes(name) => writes
                    .remove(name)
                    .unwrap_or_default()
                    .iter()
                    .try_for_each(|(spec, files)| self.volumes.write(spec, files))
                    .map_err(|e| e.to_string()),
                Action::WriteUnit(name) => self.unit_dir.write(name, text(name)).map_err(|e| {
                    format!(
                        "cannot write {}/{name}.container: {e}",
                        self.unit_dir.path().display()
                    )
                }),
                Action::RemoveUnit(name) => self.unit_dir.remove(name).map_err(|e| {
                    format!(
                        "cannot remove {}/{name}.container: {e}",
                        self.unit_dir.path().display()
                    )
                }),
                Action::DaemonReload => self.units.daemon_reload().await.map_err(|e| e.to_string()),
                Action::Job(job, name) => self
                    .units
                    .job(*job, &service(name))
                    .await
                    .map_err(|e| e.to_string()),
                Action::RemoveVolumes(name) => {
                    self.volumes.remove_spec(name).map_err(|e| e.to_string())
                }
            };
            match result {
                Ok(()) => {
                    log_applied(action, why(action), None);
                    if settle(action, &mut owed) {
                        let _ = record(&self.journal, &mut self.owed, &owed);
                    }
                }
                Err(error) => {
                    log_applied(action, why(action), Some(&error));
                    match action.spec() {
                        Some(name) => {
                            failed.entry(name.to_owned()).or_insert(error);
                        }
                        None => {
                            // No daemon-reload: no unit may run its new file yet.
                            for d in desired {
                                failed
                                    .entry(d.name.clone())
                                    .or_insert_with(|| format!("daemon-reload failed: {error}"));
                            }
                        }
                    }
                }
            }
        }
        self.run_jobs(batch, &causes, &mut owed, &mut failed).await;
        failed
    }

    /// Runs `batch` concurrently, at most [`JOBS_AT_ONCE`] at a time, each awaited on its own
    /// result: a slow or failing unit never holds back the others. Each success is cleared
    /// from the journal as it lands.
    async fn run_jobs(
        &mut self,
        batch: Vec<(Job, String)>,
        causes: &BTreeMap<String, &'static str>,
        owed: &mut Owed,
        failed: &mut Failures,
    ) {
        if batch.is_empty() {
            return;
        }
        let units = &*self.units;
        let jobs: Vec<_> = batch
            .into_iter()
            .map(|(job, name)| async move {
                let result = run_job(units, job, &name).await;
                (job, name, result)
            })
            .collect();
        let mut running = futures_util::stream::iter(jobs).buffer_unordered(JOBS_AT_ONCE);
        while let Some((job, name, result)) = running.next().await {
            let action = Action::Job(job, name);
            match result {
                Ok(()) => {
                    log_applied(&action, reason(&action, causes), None);
                    if settle(&action, owed) {
                        let _ = record(&self.journal, &mut self.owed, owed);
                    }
                }
                Err(error) => {
                    log_applied(&action, reason(&action, causes), Some(&error));
                    if let Action::Job(_, name) = action {
                        failed.entry(name).or_insert(error);
                    }
                }
            }
        }
    }
}

/// Runs `job` on the unit of spec `name`. A start or restart that fails says why, from
/// systemd (`Result=`, the main process's exit status); one that failed only because systemd
/// lost its readiness notification is started again at once (see [`lost_ready`]).
async fn run_job(units: &dyn UnitManager, job: Job, name: &str) -> Result<(), String> {
    let unit = service(name);
    let mut result = units.job(job, &unit).await;
    let mut why = failed_start(units, job, &unit, &result).await;
    if why.as_ref().is_some_and(lost_ready) {
        tracing::info!(spec = %name, %unit, "the unit failed because systemd never saw its READY=1 (Podman's `podman run -d` exited before systemd read it); starting it again at once");
        result = units.job(Job::Start, &unit).await;
        why = failed_start(units, Job::Start, &unit, &result).await;
    }
    result.map_err(|error| match why {
        Some(state) if !state.result.is_empty() => format!(
            "{error} (Result={}, main process exit status {})",
            state.result, state.exec_main_status
        ),
        _ => error.to_string(),
    })
}

/// What systemd says of `unit` after `job` failed, when it was a start or restart.
async fn failed_start(
    units: &dyn UnitManager,
    job: Job,
    unit: &str,
    result: &Result<(), SystemdError>,
) -> Option<UnitState> {
    let failed = matches!(result, Err(SystemdError::Job { result, .. }) if result == "failed");
    if !failed || !matches!(job, Job::Start | Job::Restart) {
        return None;
    }
    units.details(&[unit.to_owned()]).await.ok()?.remove(unit)
}

/// Whether a start failed only because systemd lost its readiness notification:
/// `Result=protocol` with the main process exited 0. Podman's `podman run -d
/// --sdnotify=conmon` sends `MAINPID=` and `READY=1` and exits at once; a systemd that finds a
/// notification's unit through the sender's `/proc/<pid>/cgroup` (systemd 252, Debian 12) drops
/// it when the sender is gone by the time it reads it, which happens when several units start
/// at once. Such a start is worth one more try straight away, not a backoff.
fn lost_ready(state: &UnitState) -> bool {
    state.result == "protocol" && state.exec_main_status == 0
}

/// Why `action` runs, in words: a job's cause (see [`plan::cause`]), or what an action on files
/// is for.
fn reason(action: &Action, causes: &BTreeMap<String, &'static str>) -> &'static str {
    match action {
        Action::WriteVolumes(_) => "new secret versions",
        Action::WriteUnit(_) => "its unit file is new or changed",
        Action::RemoveUnit(_) | Action::RemoveVolumes(_) => "its spec is gone",
        Action::DaemonReload => "unit files changed",
        Action::Job(_, name) => match causes.get(name).copied().unwrap_or("owed") {
            "removed" => "its spec is gone",
            "spec" => "its unit file is new or changed",
            "rotation" => "its secrets changed",
            "remount" => "a volume's medium or size changed",
            "down" => "the unit was not running",
            _ => "an earlier reconcile owed it",
        },
    }
}

/// One line per action, said for people (`web: restart web.service (its secrets changed)`),
/// with the spec, its unit, the action and the reason as fields (in the journal:
/// `RAMLET_SPEC=`, `RAMLET_UNIT=`, `RAMLET_ACTION=`, `RAMLET_REASON=`). A failure's line ends
/// in `action failed: <error>`.
fn log_applied(action: &Action, reason: &str, error: Option<&str>) {
    let verb = action.verb();
    let what = match action {
        Action::Job(_, name) => format!("{name}: {verb} {}", service(name)),
        Action::WriteUnit(name) | Action::RemoveUnit(name) => {
            format!("{name}: {verb} {name}.container")
        }
        Action::WriteVolumes(name) | Action::RemoveVolumes(name) => format!("{name}: {verb}"),
        Action::DaemonReload => verb.to_owned(),
    };
    match (action.spec(), error) {
        (Some(spec), None) => {
            tracing::info!(spec, unit = %service(spec), action = verb, reason, "{what} ({reason})");
        }
        (Some(spec), Some(error)) => {
            tracing::warn!(spec, unit = %service(spec), action = verb, reason, error, "{what} ({reason}): action failed: {error}");
        }
        // The daemon-reload is no spec's.
        (None, None) => tracing::info!(action = verb, reason, "{what} ({reason})"),
        (None, Some(error)) => {
            tracing::warn!(
                action = verb,
                reason,
                error,
                "{what} ({reason}): action failed: {error}"
            );
        }
    }
}

/// Writes `owed` to `journal` when it differs from `journaled` (what the journal holds).
fn record(journal: &Journal, journaled: &mut Owed, owed: &Owed) -> std::io::Result<()> {
    if owed != journaled {
        journal.write(owed)?;
        journaled.clone_from(owed);
    }
    Ok(())
}

/// Clears what a successful `action` paid off; returns whether anything was cleared.
fn settle(action: &Action, owed: &mut Owed) -> bool {
    match action {
        Action::DaemonReload => std::mem::take(&mut owed.daemon_reload),
        Action::Job(Job::Start | Job::Restart | Job::Reload, name) => {
            owed.jobs.remove(name).is_some()
        }
        _ => false,
    }
}
