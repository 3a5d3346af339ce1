//! One start, restart, reload or stop on a spec's unit, and why it failed, from systemd: its
//! `Result=`, the main process's exit status, or that the generator made no unit. A start that
//! failed only because systemd lost the readiness notification is tried again at once: that is
//! part of carrying out the job, not a decision (the plan's job stays what it is).

use super::super::service;
use super::error::{ApplyError, ApplyErrorKind, failure};
use crate::drivers::{Job, JobResult, SystemdError, UnitManager, UnitResult, UnitState};

/// Runs `job` on the unit of spec `name`. A start or restart that fails says why, from
/// systemd (`Result=`, the main process's exit status); one that failed only because systemd
/// lost its readiness notification is started again at once (see [`lost_ready`]).
pub(super) async fn run_job(
    units: &dyn UnitManager,
    job: Job,
    name: &str,
) -> Result<(), ApplyError> {
    let unit = service(name);
    let mut result = units.job(job, &unit).await;
    let mut why = failed_start(units, job, &unit, &result).await;
    if why.as_ref().is_some_and(lost_ready) {
        tracing::info!(spec = %name, %unit, "the unit failed because systemd never saw its READY=1 (Podman's `podman run -d` exited before systemd read it); starting it again at once");
        result = units.job(Job::Start, &unit).await;
        why = failed_start(units, Job::Start, &unit, &result).await;
    }
    result.map_err(|error| {
        let message = match why {
            Some(state) if state.result != UnitResult::Unknown => format!(
                "{error} (Result={}, main process exit status {})",
                state.result, state.exec_main_status
            ),
            _ if matches!(job, Job::Start | Job::Restart) && not_generated(&error) => format!(
                "{error}: systemd has no {unit} after the daemon-reload, so the Quadlet generator did not make it from {name}.container; `/usr/libexec/podman/quadlet -dryrun` (with `-user` in user scope) says why. On a host with SELinux enforcing and Debian's policy the generator may not read /run/containers: load the module ramlet's package ships (`semodule -i /usr/share/ramlet/selinux/ramlet.cil`)"
            ),
            _ => error.to_string(),
        };
        failure(ApplyErrorKind::Job(error.kind()), message)
    })
}

/// Whether systemd refused a job because it has no such unit: the generator made none.
fn not_generated(error: &SystemdError) -> bool {
    error.to_string().contains("NoSuchUnit")
}

/// What systemd says of `unit` after `job` failed, when it was a start or restart.
async fn failed_start(
    units: &dyn UnitManager,
    job: Job,
    unit: &str,
    result: &Result<(), SystemdError>,
) -> Option<UnitState> {
    let failed = matches!(
        result,
        Err(SystemdError::Job {
            result: JobResult::Failed,
            ..
        })
    );
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
    state.result == UnitResult::Protocol && state.exec_main_status == 0
}
