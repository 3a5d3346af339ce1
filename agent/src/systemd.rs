//! systemd over D-Bus: daemon-reload, start, restart, reload, stop, and unit state. Behind
//! [`UnitManager`], so the reconciler can be tested with an in-memory fake; [`DbusManager`] is
//! the real one, tested in `e2e/`.
//!
//! Every job is waited for: ramlet subscribes to `JobRemoved` before it queues the job, then waits
//! for that job's result, with a timeout.

use std::fmt::Write as _;
use std::time::Duration;

use futures_lite::StreamExt as _;
use zbus::zvariant::{ObjectPath, OwnedObjectPath};

use crate::providers::BoxFuture;

/// Why a systemd call failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SystemdError {
    /// D-Bus itself failed (no bus, permission, unknown unit, ...).
    #[error("D-Bus: {0}")]
    Bus(String),
    /// The job finished with a result other than `done`.
    #[error("{verb} {unit}: job {result}")]
    Job {
        /// What was asked.
        verb: &'static str,
        /// The unit.
        unit: String,
        /// systemd's result: `failed`, `timeout`, `dependency`, `canceled`, ...
        result: String,
    },
    /// The job did not finish in time.
    #[error("{verb} {unit}: no result after {0:?}", .timeout)]
    Timeout {
        /// What was asked.
        verb: &'static str,
        /// The unit.
        unit: String,
        /// How long ramlet waited.
        timeout: Duration,
    },
}

impl From<zbus::Error> for SystemdError {
    fn from(error: zbus::Error) -> Self {
        Self::Bus(error.to_string())
    }
}

/// What systemd says about a unit.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UnitState {
    /// `active`, `inactive`, `failed`, `activating`, ...; `not-loaded` when systemd has no such
    /// unit.
    pub active_state: String,
    /// `running`, `dead`, `exited`, ...
    pub sub_state: String,
    /// The invocation ID (changes on every start), in hex; empty when never started.
    pub invocation_id: String,
}

impl UnitState {
    /// Whether the unit is running or on its way there.
    #[must_use]
    pub fn is_up(&self) -> bool {
        matches!(
            self.active_state.as_str(),
            "active" | "activating" | "reloading"
        )
    }
}

/// Drives systemd units.
pub trait UnitManager: Send + Sync {
    /// `daemon-reload`: regenerates Quadlet units.
    fn daemon_reload(&self) -> BoxFuture<'_, Result<(), SystemdError>>;
    /// Starts `unit` and waits for the job.
    fn start<'a>(&'a self, unit: &'a str) -> BoxFuture<'a, Result<(), SystemdError>>;
    /// Restarts `unit` and waits for the job.
    fn restart<'a>(&'a self, unit: &'a str) -> BoxFuture<'a, Result<(), SystemdError>>;
    /// Reloads `unit` (`ExecReload=`/`ReloadSignal=`) and waits for the job.
    fn reload<'a>(&'a self, unit: &'a str) -> BoxFuture<'a, Result<(), SystemdError>>;
    /// Stops `unit` and waits for the job.
    fn stop<'a>(&'a self, unit: &'a str) -> BoxFuture<'a, Result<(), SystemdError>>;
    /// The unit's state.
    fn state<'a>(&'a self, unit: &'a str) -> BoxFuture<'a, Result<UnitState, SystemdError>>;
    /// Whether systemd has a unit file for `unit` anywhere (`LoadState` after `LoadUnit`):
    /// `loaded`, `masked`, ... or `not-found`.
    fn load_state<'a>(&'a self, unit: &'a str) -> BoxFuture<'a, Result<String, SystemdError>>;
}

#[zbus::proxy(
    interface = "org.freedesktop.systemd1.Manager",
    default_service = "org.freedesktop.systemd1",
    default_path = "/org/freedesktop/systemd1"
)]
trait Manager {
    fn reload(&self) -> zbus::Result<()>;
    fn subscribe(&self) -> zbus::Result<()>;
    fn start_unit(&self, name: &str, mode: &str) -> zbus::Result<OwnedObjectPath>;
    fn restart_unit(&self, name: &str, mode: &str) -> zbus::Result<OwnedObjectPath>;
    fn reload_unit(&self, name: &str, mode: &str) -> zbus::Result<OwnedObjectPath>;
    fn stop_unit(&self, name: &str, mode: &str) -> zbus::Result<OwnedObjectPath>;
    fn get_unit(&self, name: &str) -> zbus::Result<OwnedObjectPath>;
    fn load_unit(&self, name: &str) -> zbus::Result<OwnedObjectPath>;
    #[zbus(signal)]
    fn job_removed(
        &self,
        id: u32,
        job: ObjectPath<'_>,
        unit: &str,
        result: &str,
    ) -> zbus::Result<()>;
}

#[zbus::proxy(
    interface = "org.freedesktop.systemd1.Unit",
    default_service = "org.freedesktop.systemd1"
)]
trait Unit {
    #[zbus(property)]
    fn active_state(&self) -> zbus::Result<String>;
    #[zbus(property)]
    fn sub_state(&self) -> zbus::Result<String>;
    #[zbus(property)]
    fn load_state(&self) -> zbus::Result<String>;
    #[zbus(property, name = "InvocationID")]
    fn invocation_id(&self) -> zbus::Result<Vec<u8>>;
}

/// Which bus to reach systemd on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Bus {
    /// The system bus (system scope).
    System,
    /// The session bus of `DBUS_SESSION_BUS_ADDRESS` (user scope).
    Session,
    /// An explicit address, such as `unix:path=/run/user/1000/bus`.
    Address(String),
}

/// systemd's manager over D-Bus.
#[derive(Debug, Clone)]
pub struct DbusManager {
    connection: zbus::Connection,
    job_timeout: Duration,
}

impl DbusManager {
    /// Connects to systemd on `bus` and subscribes to job signals.
    pub async fn connect(bus: &Bus, job_timeout: Duration) -> Result<Self, SystemdError> {
        let connection = match bus {
            Bus::System => zbus::Connection::system().await?,
            Bus::Session => zbus::Connection::session().await?,
            Bus::Address(address) => {
                zbus::connection::Builder::address(address.as_str())?
                    .build()
                    .await?
            }
        };
        ManagerProxy::new(&connection).await?.subscribe().await?;
        Ok(Self {
            connection,
            job_timeout,
        })
    }

    async fn job(&self, verb: &'static str, unit: &str) -> Result<(), SystemdError> {
        let manager = ManagerProxy::new(&self.connection).await?;
        // Subscribe first, so the job cannot finish unseen.
        let mut removed = manager.receive_job_removed().await?;
        let job = match verb {
            "start" => manager.start_unit(unit, "replace").await?,
            "restart" => manager.restart_unit(unit, "replace").await?,
            "reload" => manager.reload_unit(unit, "replace").await?,
            _ => manager.stop_unit(unit, "replace").await?,
        };
        let wait = async {
            while let Some(signal) = removed.next().await {
                let args = signal.args()?;
                if args.job.as_str() == job.as_str() {
                    return Ok(args.result.to_owned());
                }
            }
            Err(SystemdError::Bus("the bus closed".into()))
        };
        let result = tokio::time::timeout(self.job_timeout, wait)
            .await
            .map_err(|_| SystemdError::Timeout {
                verb,
                unit: unit.to_owned(),
                timeout: self.job_timeout,
            })??;
        if result == "done" {
            Ok(())
        } else {
            Err(SystemdError::Job {
                verb,
                unit: unit.to_owned(),
                result,
            })
        }
    }
}

impl UnitManager for DbusManager {
    fn daemon_reload(&self) -> BoxFuture<'_, Result<(), SystemdError>> {
        Box::pin(async move { Ok(ManagerProxy::new(&self.connection).await?.reload().await?) })
    }
    fn start<'a>(&'a self, unit: &'a str) -> BoxFuture<'a, Result<(), SystemdError>> {
        Box::pin(self.job("start", unit))
    }
    fn restart<'a>(&'a self, unit: &'a str) -> BoxFuture<'a, Result<(), SystemdError>> {
        Box::pin(self.job("restart", unit))
    }
    fn reload<'a>(&'a self, unit: &'a str) -> BoxFuture<'a, Result<(), SystemdError>> {
        Box::pin(self.job("reload", unit))
    }
    fn stop<'a>(&'a self, unit: &'a str) -> BoxFuture<'a, Result<(), SystemdError>> {
        Box::pin(self.job("stop", unit))
    }
    fn state<'a>(&'a self, unit: &'a str) -> BoxFuture<'a, Result<UnitState, SystemdError>> {
        Box::pin(async move {
            let manager = ManagerProxy::new(&self.connection).await?;
            let path = match manager.get_unit(unit).await {
                Ok(path) => path,
                Err(zbus::Error::MethodError(name, _, _))
                    if name.as_str() == "org.freedesktop.systemd1.NoSuchUnit" =>
                {
                    return Ok(UnitState {
                        active_state: "not-loaded".into(),
                        ..UnitState::default()
                    });
                }
                Err(error) => return Err(error.into()),
            };
            let unit = UnitProxy::builder(&self.connection)
                .path(path)?
                .build()
                .await?;
            let invocation = unit.invocation_id().await?;
            Ok(UnitState {
                active_state: unit.active_state().await?,
                sub_state: unit.sub_state().await?,
                invocation_id: invocation.iter().fold(String::new(), |mut hex, b| {
                    let _ = write!(hex, "{b:02x}");
                    hex
                }),
            })
        })
    }
    fn load_state<'a>(&'a self, unit: &'a str) -> BoxFuture<'a, Result<String, SystemdError>> {
        Box::pin(async move {
            let path = ManagerProxy::new(&self.connection)
                .await?
                .load_unit(unit)
                .await?;
            let unit = UnitProxy::builder(&self.connection)
                .path(path)?
                .build()
                .await?;
            Ok(unit.load_state().await?)
        })
    }
}
