//! The units' states: one `ListUnitsByNames` call for all of them, and, where asked, each
//! loaded unit's invocation ID, result and exit status.

use std::fmt::Write as _;

use super::{DbusManager, ManagerProxy, ServiceProxy, UnitProxy};
use crate::drivers::{ActiveState, SystemdError, UnitState, UnitStates};

impl DbusManager {
    /// The states of `units` in one `ListUnitsByNames` call; with `details`, each loaded unit's
    /// invocation ID too, and a failed one's `Result` and exit status.
    pub(super) async fn list(
        &self,
        units: &[String],
        details: bool,
    ) -> Result<UnitStates, SystemdError> {
        let (connection, listed) = self
            .call(
                || "list units".into(),
                |connection| async move {
                    let names: Vec<&str> = units.iter().map(String::as_str).collect();
                    let manager = ManagerProxy::new(&connection).await?;
                    Ok((connection, manager.list_units_by_names(&names).await?))
                },
            )
            .await?;
        let mut states = UnitStates::new();
        for (name, _, load, active, sub, _, path, job, job_type, _) in listed {
            let mut state = UnitState {
                active_state: if load == "not-found" {
                    ActiveState::NotLoaded
                } else if job != 0 && active != "active" {
                    // A job is on its way (somebody's `systemctl restart`, or a job of ramlet's
                    // that outlived its wait): the unit is in transition, not down. Starting it
                    // now would replace that job; the next reconcile sees where it landed.
                    tracing::debug!(unit = %name, job = %job_type, "a job is pending; taken as on its way");
                    ActiveState::Activating
                } else {
                    ActiveState::from(active)
                },
                sub_state: sub,
                pending_job: job != 0,
                ..UnitState::default()
            };
            // The invocation and why it stopped (only when it failed): the few properties the
            // list does not carry, asked only for `details` (each a plain Get, no caching).
            if details && load != "not-found" {
                let is_failed = state.active_state == ActiveState::Failed;
                let asked = self
                    .call(
                        || format!("state of {name}"),
                        |connection| async move {
                            let unit = UnitProxy::builder(&connection)
                                .path(path.clone())?
                                .cache_properties(zbus::proxy::CacheProperties::No)
                                .build()
                                .await?;
                            let invocation = unit.invocation_id().await?;
                            let failed = if is_failed {
                                let service = ServiceProxy::builder(&connection)
                                    .path(path)?
                                    .cache_properties(zbus::proxy::CacheProperties::No)
                                    .build()
                                    .await?;
                                Some((
                                    service.result().await.unwrap_or_default(),
                                    service.exec_main_status().await.unwrap_or_default(),
                                ))
                            } else {
                                None
                            };
                            Ok((invocation, failed))
                        },
                    )
                    .await;
                let Ok((invocation, failed)) = asked else {
                    continue;
                };
                state.invocation_id = hex(&invocation);
                if let Some((result, status)) = failed {
                    state.result = result.into();
                    state.exec_main_status = status;
                }
            }
            states.insert(name, state);
        }
        drop(connection);
        Ok(states)
    }
}

/// Bytes as lowercase hex (an invocation ID as `systemctl show` prints it).
fn hex(bytes: &[u8]) -> String {
    bytes.iter().fold(String::new(), |mut hex, b| {
        let _ = write!(hex, "{b:02x}");
        hex
    })
}
