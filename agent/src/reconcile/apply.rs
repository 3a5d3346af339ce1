//! Applying a plan: each action through the host traits, in the plan's order, with the owed
//! work journaled before the first change and cleared job by job as each succeeds. The starts,
//! restarts and reloads after the daemon-reload run concurrently (bounded), so a secret shared
//! by 20 containers restarts them together, not one after another.
//!
//! A failed action fails its spec only: that spec's later actions are skipped (a unit whose
//! volume could not be written is not restarted; a unit that did not stop keeps its file and
//! volumes), every other spec goes on. A failed daemon-reload fails every spec's jobs; they stay
//! owed.

use std::collections::BTreeMap;
use std::sync::Arc;

use futures_util::StreamExt as _;

use super::desire::{Changed, Payload};
use super::facts::Facts;
use super::owed::{Journal, Owed};
use super::plan::{Action, Cause, Plan};
use super::{Reconciler, service};
use crate::drivers::{Job, VolumeError, VolumeManager};
use error::failure;
pub use error::{ApplyError, ApplyErrorKind};
use job::run_job;

mod error;
mod job;

/// How many restarts, reloads and stops run at once, in a rolling window: a secret read by
/// hundreds of containers restarts them so that most keep serving meanwhile.
pub const JOBS_AT_ONCE: usize = 32;

/// How many starts run at once, in a rolling window of their own: nothing serves yet, so as
/// many as keep the host busy (at N = 100 the window of 32 cost a fifth of a cold start against
/// systemd taking all at once). Not all: a job's time limit counts from its queueing, and 500
/// starts queued at once on 2 cores left the last ones over 90 s in systemd's queue
/// (`BENCHMARKS.md`, issue 37).
pub const STARTS_AT_ONCE: usize = 128;

/// What the apply did: the specs whose actions failed, and why (each spec's first failure).
#[derive(Debug, Default)]
pub struct Applied {
    /// Each failed spec's first failure.
    pub failures: BTreeMap<String, ApplyError>,
}

impl Reconciler {
    /// Applies `plan` (made from `facts`; `payload` holds the files of the volumes it writes
    /// and of those it holds): the journal first, then each action in order. A failed action
    /// fails its spec only: that spec's later actions are skipped, every other spec goes on.
    pub(super) async fn apply(&mut self, plan: &Plan, facts: &Facts, payload: Payload) -> Applied {
        let Payload {
            changed: mut payload,
            full,
        } = payload;
        let mut failed = BTreeMap::new();
        let mut owed = plan.owed.clone();
        self.stamp(plan, &mut owed).await;
        if let Err(error) = record(&self.journal, &mut self.memory.owed, &owed) {
            // Without the journal a crash could lose a restart: change nothing this time.
            for name in applied_specs(plan) {
                failed.insert(
                    name.to_owned(),
                    failure(
                        ApplyErrorKind::Journal,
                        format!(
                            "cannot write the owed-work journal, so nothing was changed: {error}"
                        ),
                    ),
                );
            }
            return Applied { failures: failed };
        }
        self.hold(plan, facts, full);
        self.checks.retain(&plan.checks);
        let texts = unit_texts(facts);
        // Starts, restarts and reloads (contiguous, after the daemon-reload) run together.
        let mut batch: Vec<(Job, String)> = Vec::new();
        for action in &plan.actions {
            if action.spec().is_some_and(|name| failed.contains_key(name)) {
                continue;
            }
            if let Action::Job(job @ (Job::Start | Job::Restart | Job::Reload), name) = action {
                batch.push((*job, name.clone()));
                continue;
            }
            self.run_jobs(std::mem::take(&mut batch), plan, &mut owed, &mut failed)
                .await;
            if action.is_upkeep() {
                self.upkeep(action, facts).await;
                continue;
            }
            let result = self.run_one(action, &texts, &mut payload).await;
            let cause = action.spec().and_then(|n| plan.causes.get(n).copied());
            match result {
                Ok(()) => {
                    log_applied(action, cause, None);
                    if pay(action, &mut owed) {
                        let _ = record(&self.journal, &mut self.memory.owed, &owed);
                    }
                }
                Err(error) => {
                    log_applied(action, cause, Some(&error));
                    if let Some(name) = action.spec() {
                        failed.entry(name.to_owned()).or_insert(error);
                    } else {
                        // No daemon-reload: no unit may run its new file yet.
                        for name in applied_specs(plan) {
                            failed.entry(name.to_owned()).or_insert_with(|| {
                                failure(
                                    ApplyErrorKind::DaemonReload,
                                    format!("daemon-reload failed: {}", error.message),
                                )
                            });
                        }
                    }
                }
            }
        }
        self.run_jobs(batch, plan, &mut owed, &mut failed).await;
        Applied { failures: failed }
    }

    /// Runs one action that is not a start, restart or reload (those run in batches).
    async fn run_one(
        &self,
        action: &Action,
        texts: &BTreeMap<&str, &str>,
        payload: &mut BTreeMap<String, Changed>,
    ) -> Result<(), ApplyError> {
        let dir = self.unit_dir.path().display().to_string();
        match action {
            Action::WriteVolumes(name) => {
                self.write_volumes(payload.remove(name).unwrap_or_default())
                    .await
            }
            Action::WriteUnit(name) => self
                .unit_dir
                .write(name, texts.get(name.as_str()).copied().unwrap_or_default())
                .map_err(|e| {
                    failure(
                        ApplyErrorKind::UnitFile,
                        format!("cannot write {dir}/{name}.container: {e}"),
                    )
                }),
            Action::RemoveUnit(name) => self.unit_dir.remove(name).map_err(|e| {
                failure(
                    ApplyErrorKind::UnitFile,
                    format!("cannot remove {dir}/{name}.container: {e}"),
                )
            }),
            Action::DaemonReload => self
                .units
                .daemon_reload()
                .await
                .map_err(|e| failure(ApplyErrorKind::DaemonReload, e.to_string())),
            Action::Job(job, name) => self
                .units
                .job(*job, &service(name))
                .await
                .map_err(|e| failure(ApplyErrorKind::Job(e.kind()), e.to_string())),
            Action::RemoveVolumes(name) => {
                let name = name.clone();
                self.on_volumes(move |volumes| volumes.remove_spec(&name))
                    .await
            }
            Action::RestoreVolumes(name) => {
                let previous = self.memory.previous.get(name).ok_or_else(|| {
                    failure(
                        ApplyErrorKind::Volume,
                        "the previous files are no longer held in memory",
                    )
                })?;
                self.write_volumes(previous.clone()).await
            }
            Action::ConsumeRetry(_)
            | Action::SealPrevious(_)
            | Action::ForgetSealed(_)
            | Action::Check(_)
            | Action::Revoke(..) => Ok(()),
        }
    }

    /// Writes each volume of `changed`, in order, off the runtime's thread.
    async fn write_volumes(&self, changed: Changed) -> Result<(), ApplyError> {
        self.on_volumes(move |volumes| {
            changed
                .iter()
                .try_for_each(|(spec, files)| volumes.write(spec, files))
        })
        .await
    }

    /// Runs `work` on the volumes on a thread of its own: in user scope a volume with
    /// subordinate owners waits on the rootless helper's pipes, and nothing else of the agent
    /// (D-Bus signals, change events, the health checks) waits with it.
    async fn on_volumes(
        &self,
        work: impl FnOnce(&dyn VolumeManager) -> Result<(), VolumeError> + Send + 'static,
    ) -> Result<(), ApplyError> {
        let volumes = Arc::clone(&self.volumes);
        match tokio::task::spawn_blocking(move || work(volumes.as_ref())).await {
            Ok(done) => done.map_err(|e| failure(ApplyErrorKind::Volume, e.to_string())),
            Err(e) => Err(failure(
                ApplyErrorKind::Volume,
                format!("the volume work did not finish: {e}"),
            )),
        }
    }

    /// The previous files as `plan` leaves them: those of specs it holds are now what they
    /// run (`full`), those of specs no longer selected go.
    fn hold(&mut self, plan: &Plan, facts: &Facts, mut full: BTreeMap<String, Changed>) {
        let names: std::collections::BTreeSet<&str> =
            facts.specs.iter().map(|s| s.name.as_str()).collect();
        let previous = &mut self.memory.previous;
        previous.retain(|name, _| names.contains(name.as_str()));
        for name in &plan.hold {
            if let Some(files) = full.remove(name) {
                previous.insert(name.clone(), files);
            }
        }
    }

    /// Carries out a piece of bookkeeping (see [`Action::is_upkeep`]); a failure is logged
    /// and fails nothing.
    async fn upkeep(&mut self, action: &Action, facts: &Facts) {
        match action {
            Action::ConsumeRetry(name) => {
                match super::owed::consume_retry(&self.settings.state_dir, name) {
                    Ok(()) => {
                        tracing::info!(spec = %name, action = action.verb(), "{name}: the versions its health check refused may be tried again (ramlet sync --retry)");
                    }
                    Err(error) => {
                        tracing::warn!(spec = %name, action = action.verb(), %error, "{name}: cannot take the `ramlet sync --retry` request; the next reconcile does");
                    }
                }
            }
            Action::SealPrevious(name) => {
                let Some(files) = self.memory.previous.get(name).cloned() else {
                    return;
                };
                let (sealed, spec) = (self.sealed.clone(), name.clone());
                let saved = tokio::task::spawn_blocking(move || sealed.save(&spec, &files)).await;
                if let Ok(Err(error)) = saved {
                    tracing::info!(spec = %name, %error, "{name}: the previous files are held in memory only (they cannot be sealed to this host)");
                }
            }
            Action::ForgetSealed(name) => {
                if let Err(error) = self.sealed.remove(name) {
                    tracing::warn!(spec = %name, %error, "{name}: cannot remove the sealed previous files of a rotation that ended");
                }
            }
            Action::Revoke(id, lease) => match self.stores.revoke(id, lease).await {
                Ok(()) => {
                    tracing::info!(store = %id.store, secret = %id.name, %lease, action = action.verb(), "{id}: lease {lease} revoked ({})", action.why(None));
                }
                Err(error) => {
                    tracing::warn!(store = %id.store, secret = %id.name, %lease, action = action.verb(), kind = error.kind().as_str(), %error, "{id}: cannot revoke lease {lease}; the next reconcile tries again: {error}");
                }
            },
            Action::Check(name) => {
                let Some(check) = facts.checked.get(name) else {
                    return;
                };
                // What it checks: the versions its container runs now.
                let running = facts
                    .specs
                    .iter()
                    .find(|s| &s.name == name)
                    .map(|s| s.live.clone())
                    .unwrap_or_default();
                tracing::debug!(spec = %name, "{name}: health check started");
                self.checks
                    .start(&self.units, name, check, running, facts.now);
            }
            _ => {}
        }
    }

    /// Makes the journal's witnesses exact: each unit about to get a start, restart or reload
    /// is owed since the invocation it runs under right now (the states observed may be a
    /// refresh old). Units systemd does not answer for keep what was observed. This is the
    /// apply reading what it records, not deciding: the plan's jobs are what they are.
    async fn stamp(&self, plan: &Plan, owed: &mut Owed) {
        let units: Vec<String> = plan
            .actions
            .iter()
            .filter_map(|a| match a {
                Action::Job(Job::Start | Job::Restart | Job::Reload, name) => Some(service(name)),
                _ => None,
            })
            .collect();
        if units.is_empty() {
            return;
        }
        let exact = super::observe::by_spec(self.units.details(&units).await.unwrap_or_default());
        for (name, state) in exact {
            // (Only units of this plan's jobs were asked about.)
            if let Some(job) = owed.jobs.get_mut(&name) {
                job.since = state.invocation_id;
            }
        }
    }

    /// Runs `batch` concurrently (at most [`STARTS_AT_ONCE`] starts and [`JOBS_AT_ONCE`] other
    /// jobs at a time), each awaited on its own result: a slow or failing unit never holds back
    /// the others. Each success is cleared from the journal as it lands.
    async fn run_jobs(
        &mut self,
        batch: Vec<(Job, String)>,
        plan: &Plan,
        owed: &mut Owed,
        failed: &mut BTreeMap<String, ApplyError>,
    ) {
        if batch.is_empty() {
            return;
        }
        let units = &*self.units;
        let (starts, others) = (
            tokio::sync::Semaphore::new(STARTS_AT_ONCE),
            tokio::sync::Semaphore::new(JOBS_AT_ONCE),
        );
        let (starts, others) = (&starts, &others);
        let mut running: futures_util::stream::FuturesUnordered<_> = batch
            .into_iter()
            .map(|(job, name)| async move {
                let window = if job == Job::Start { starts } else { others };
                let _turn = window.acquire().await.ok();
                let result = run_job(units, job, &name).await;
                (job, name, result)
            })
            .collect();
        while let Some((job, name, result)) = running.next().await {
            let cause = plan.causes.get(&name).copied();
            let action = Action::Job(job, name);
            match result {
                Ok(()) => {
                    log_applied(&action, cause, None);
                    if pay(&action, owed) {
                        let _ = record(&self.journal, &mut self.memory.owed, owed);
                    }
                }
                Err(error) => {
                    log_applied(&action, cause, Some(&error));
                    if let Action::Job(_, name) = action {
                        failed.entry(name).or_insert(error);
                    }
                }
            }
        }
    }
}

/// The specs `plan` applies (the others are left as they are, or not created).
fn applied_specs(plan: &Plan) -> impl Iterator<Item = &str> {
    plan.specs
        .iter()
        .filter(|(_, v)| v.phase == crate::status::Phase::Progressing)
        .map(|(name, _)| name.as_str())
}

/// The unit file each spec wants, by name.
fn unit_texts(facts: &Facts) -> BTreeMap<&str, &str> {
    facts
        .specs
        .iter()
        .filter_map(|s| {
            let wants = s.wants.as_ref().ok()?;
            Some((s.name.as_str(), wants.unit_text.as_str()))
        })
        .collect()
}

/// One line per action, said for people (`web: restart web.service (its secrets changed)`),
/// with the spec, its unit, the action and the reason as fields (in the journal:
/// `RAMLET_SPEC=`, `RAMLET_UNIT=`, `RAMLET_ACTION=`, `RAMLET_REASON=`). A failure's line ends
/// in `action failed: <error>`.
fn log_applied(action: &Action, cause: Option<Cause>, error: Option<&ApplyError>) {
    let reason = action.why(cause);
    let verb = action.verb();
    let what = match action {
        Action::Job(_, name) => format!("{name}: {verb} {}", service(name)),
        Action::WriteUnit(name) | Action::RemoveUnit(name) => {
            format!("{name}: {verb} {name}.container")
        }
        Action::WriteVolumes(name)
        | Action::RemoveVolumes(name)
        | Action::RestoreVolumes(name)
        | Action::ConsumeRetry(name)
        | Action::SealPrevious(name)
        | Action::ForgetSealed(name)
        | Action::Check(name) => format!("{name}: {verb}"),
        Action::DaemonReload => verb.to_owned(),
        Action::Revoke(id, lease) => format!("{id}: {verb} {lease}"),
    };
    // What the journal catalog explains (`journalctl -x`), and `journalctl MESSAGE_ID=` finds.
    let id = match action {
        Action::WriteVolumes(_) => Some(crate::message_ids::VOLUME_WRITTEN),
        Action::Job(Job::Restart | Job::Reload, _) => Some(crate::message_ids::RESTARTED),
        Action::RestoreVolumes(_) => Some(crate::message_ids::ROLLED_BACK),
        _ => None,
    };
    match (action.spec(), error) {
        (Some(spec), None) => match id {
            Some(message_id) => {
                tracing::info!(spec, unit = %service(spec), action = verb, reason, message_id, "{what} ({reason})");
            }
            None => {
                tracing::info!(spec, unit = %service(spec), action = verb, reason, "{what} ({reason})");
            }
        },
        (Some(spec), Some(error)) => {
            let kind = error.kind().as_str();
            tracing::warn!(spec, unit = %service(spec), action = verb, reason, error = %error.message, kind, "{what} ({reason}): action failed: {error}");
        }
        // The daemon-reload is no spec's.
        (None, None) => tracing::info!(action = verb, reason, "{what} ({reason})"),
        (None, Some(error)) => {
            tracing::warn!(
                action = verb,
                reason,
                error = %error.message,
                kind = error.kind().as_str(),
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
fn pay(action: &Action, owed: &mut Owed) -> bool {
    match action {
        Action::DaemonReload => std::mem::take(&mut owed.daemon_reload),
        Action::Job(Job::Start | Job::Restart | Job::Reload, name) => {
            owed.jobs.remove(name).is_some()
        }
        _ => false,
    }
}
