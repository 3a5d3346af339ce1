//! A health check: a transient oneshot service of the manager running `podman exec` in the
//! container, with a time limit, waited for like any job; killed by systemd at its limit.

use std::time::Duration;

use super::{DbusManager, ManagerProxy};
use crate::drivers::{JobResult, SystemdError};

/// How long past a health check's limit ramlet waits for systemd to say it was killed.
const CHECK_GRACE: Duration = Duration::from_secs(5);

impl DbusManager {
    /// Runs `command` in `container` once (`podman exec`) as a transient oneshot service of the
    /// manager (outside ramlet's own sandbox, as the manager's user), killed after `timeout`;
    /// true when it exited 0.
    pub(super) async fn run_check(
        &self,
        container: &str,
        command: &[String],
        timeout: Duration,
    ) -> Result<bool, SystemdError> {
        let program = crate::host::podman::binary();
        let mut argv = vec![program.clone(), "exec".to_owned(), container.to_owned()];
        argv.extend(command.iter().cloned());
        let name = format!(
            "ramlet-check-{}-{}",
            container.strip_prefix("ramlet-").unwrap_or(container),
            crate::util::since_epoch().as_nanos()
        );
        let unit = format!("{name}.service");
        let what = format!("run {unit}");
        let queued = unit.clone();
        let result = self
            .queue_and_wait(
                || what.clone(),
                timeout + CHECK_GRACE,
                |manager| async move {
                    use zbus::zvariant::Value;
                    // ExecStartEx with no-env-expand: a `$` in the command reaches it as is.
                    let exec = vec![(program, argv, vec!["no-env-expand".to_owned()])];
                    let timeout_us = u64::try_from(timeout.as_micros()).unwrap_or(u64::MAX);
                    // A oneshot service is still starting while its command runs: systemd
                    // ignores RuntimeMaxUSec= then, and only TimeoutStartUSec= kills it
                    // (issue 33: a check that hung outlived every reconcile).
                    let properties = [
                        ("Description", Value::from("ramlet health check")),
                        ("Type", Value::from("oneshot")),
                        ("ExecStartEx", Value::from(exec)),
                        ("TimeoutStartUSec", Value::from(timeout_us)),
                        ("RuntimeMaxUSec", Value::from(timeout_us)),
                        ("CollectMode", Value::from("inactive-or-failed")),
                    ];
                    manager
                        .start_transient_unit(&queued, "fail", &properties, &[])
                        .await
                },
            )
            .await;
        let result = match result {
            Err(error @ SystemdError::Timeout { .. }) => {
                // systemd should have killed it by now; make sure nothing outlives the check.
                let stopping = unit.clone();
                let stop = self
                    .call(
                        || format!("stop {unit}"),
                        |connection| async move {
                            ManagerProxy::new(&connection)
                                .await?
                                .stop_unit(&stopping, "replace")
                                .await?;
                            Ok(())
                        },
                    )
                    .await;
                if let Err(stop) = stop {
                    tracing::warn!(unit = %unit, "cannot stop a health check past its limit: {stop}");
                }
                return Err(error);
            }
            other => other?,
        };
        match result {
            JobResult::Done => Ok(true),
            // Killed at its limit: as unhealthy as a failure.
            JobResult::Failed => Ok(false),
            JobResult::Other(other) if other == "timeout" => Ok(false),
            JobResult::Other(other) => Err(SystemdError::Bus(format!(
                "the health check's job ended {other}"
            ))),
        }
    }
}
