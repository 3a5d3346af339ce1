//! systemd over D-Bus: daemon-reload, unit jobs (start, restart, reload, stop) and unit state.
//! Behind [`UnitManager`], so the reconciler can be tested with an in-memory fake;
//! [`DbusManager`] is the real one, tested in `e2e/`.
//!
//! Every job is waited for: one listener per connection hears every `JobRemoved` (`jobs`), a
//! job says it is coming before it is queued, then waits for its result, with a timeout. Every
//! other call has a timeout too. A lost bus is not fatal: the connection is dropped on a bus
//! error and made again by the next call (the agent's backoff paces the attempts). `Subscribe` is called before every job (systemd sends its
//! signals to subscribers; a manager that was re-executed may have dropped ours); a job whose
//! result is never seen times out and stays owed. A health check is a job too: a transient
//! oneshot service running `podman exec`, waited for the same way (`check`). The units'
//! states come from one `ListUnitsByNames` call (`states`).

use std::future::Future;
use std::sync::Mutex;
use std::time::Duration;

use zbus::zvariant::{ObjectPath, OwnedObjectPath};

use crate::drivers::{Job, JobResult, SystemdError, UnitManager, UnitStates};
use crate::util::BoxFuture;

mod check;
mod jobs;
mod states;

use jobs::Jobs;

/// How long one D-Bus method call may take.
pub const CALL_TIMEOUT: Duration = Duration::from_secs(10);

impl From<zbus::Error> for SystemdError {
    /// An error of the connection itself (IO on the socket, the handshake, the peer gone) is
    /// [`SystemdError::Lost`]; anything systemd or the bus answered is [`SystemdError::Bus`].
    fn from(error: zbus::Error) -> Self {
        match &error {
            zbus::Error::InputOutput(_)
            | zbus::Error::Connection(..)
            | zbus::Error::Handshake(_)
            | zbus::Error::Address(_)
            | zbus::Error::Failure(_) => Self::Lost(error.to_string()),
            zbus::Error::MethodError(name, ..)
                if name.as_str() == "org.freedesktop.DBus.Error.Disconnected" =>
            {
                Self::Lost(error.to_string())
            }
            _ => Self::Bus(error.to_string()),
        }
    }
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
    #[allow(clippy::type_complexity)] // systemd's own signature: ssa(sv)a(sa(sv))
    fn start_transient_unit(
        &self,
        name: &str,
        mode: &str,
        properties: &[(&str, zbus::zvariant::Value<'_>)],
        aux: &[(&str, Vec<(&str, zbus::zvariant::Value<'_>)>)],
    ) -> zbus::Result<OwnedObjectPath>;
    fn load_unit(&self, name: &str) -> zbus::Result<OwnedObjectPath>;
    #[zbus(property)]
    fn unit_path(&self) -> zbus::Result<Vec<String>>;
    #[allow(clippy::type_complexity)] // systemd's own signature: a(ssssssouso)
    fn list_units_by_names(
        &self,
        names: &[&str],
    ) -> zbus::Result<
        Vec<(
            String,
            String,
            String,
            String,
            String,
            String,
            OwnedObjectPath,
            u32,
            String,
            OwnedObjectPath,
        )>,
    >;
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

#[zbus::proxy(
    interface = "org.freedesktop.systemd1.Service",
    default_service = "org.freedesktop.systemd1"
)]
trait Service {
    #[zbus(property)]
    fn result(&self) -> zbus::Result<String>;
    #[zbus(property)]
    fn exec_main_status(&self) -> zbus::Result<i32>;
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
#[derive(Debug)]
pub struct DbusManager {
    bus: Bus,
    /// The connection and its jobs' listener, made again after a bus error.
    connection: Mutex<Option<Link>>,
    job_timeout: Duration,
}

/// A connection to systemd, and the one listener of its jobs' results.
#[derive(Debug, Clone)]
struct Link {
    connection: zbus::Connection,
    jobs: std::sync::Arc<Jobs>,
}

/// Runs `call` with [`CALL_TIMEOUT`].
async fn timed<T>(
    what: impl FnOnce() -> String,
    call: impl Future<Output = Result<T, SystemdError>>,
) -> Result<T, SystemdError> {
    tokio::time::timeout(CALL_TIMEOUT, call)
        .await
        .map_err(|_| SystemdError::Timeout {
            what: what(),
            timeout: CALL_TIMEOUT,
        })?
}

impl DbusManager {
    /// Connects to systemd on `bus` (fails when it cannot: ramlet does not start without
    /// systemd).
    pub async fn connect(bus: &Bus, job_timeout: Duration) -> Result<Self, SystemdError> {
        let manager = Self {
            bus: bus.clone(),
            connection: Mutex::new(None),
            job_timeout,
        };
        let _connection = manager.connection().await?;
        Ok(manager)
    }

    /// The process ID of the systemd manager on the bus.
    ///
    /// # Errors
    /// When the bus does not say.
    pub async fn manager_pid(&self) -> Result<u32, SystemdError> {
        self.call(
            || "the manager's pid".into(),
            |connection| async move {
                // On a bus, ask the bus who owns systemd's name; on systemd's own socket (no
                // bus in between, as `unix:path=/run/user/UID/systemd/private`), the peer is
                // systemd itself.
                if connection.unique_name().is_some() {
                    let bus = zbus::fdo::DBusProxy::new(&connection).await?;
                    let name = zbus::names::BusName::try_from("org.freedesktop.systemd1")
                        .map_err(|e| SystemdError::Bus(e.to_string()))?;
                    if let Ok(pid) = bus.get_connection_unix_process_id(name).await {
                        return Ok(pid);
                    }
                }
                connection
                    .peer_creds()
                    .await
                    .map_err(|e| SystemdError::Bus(e.to_string()))?
                    .process_id()
                    .ok_or_else(|| SystemdError::Bus("the peer's credentials carry no pid".into()))
            },
        )
        .await
    }

    /// The live connection, or a new one.
    async fn connection(&self) -> Result<zbus::Connection, SystemdError> {
        Ok(self.link().await?.connection)
    }

    /// The live connection and its jobs' listener, or new ones.
    async fn link(&self) -> Result<Link, SystemdError> {
        if let Some(link) = crate::util::lock(&self.connection).clone() {
            return Ok(link);
        }
        let connect = async {
            Ok::<_, SystemdError>(match &self.bus {
                Bus::System => zbus::Connection::system().await?,
                Bus::Session => zbus::Connection::session().await?,
                Bus::Address(address) => {
                    zbus::connection::Builder::address(address.as_str())?
                        .build()
                        .await?
                }
            })
        };
        let link = timed(|| "connect to the bus".into(), async {
            let connection = connect.await?;
            let jobs = Jobs::listen(&connection).await?;
            Ok(Link { connection, jobs })
        })
        .await?;
        tracing::info!(bus = ?self.bus, "connected to systemd");
        *crate::util::lock(&self.connection) = Some(link.clone());
        Ok(link)
    }

    /// Forgets the connection: the next call makes a new one.
    fn disconnect(&self) {
        tracing::warn!("the bus connection is lost; the next call connects again");
        *crate::util::lock(&self.connection) = None;
    }

    /// Runs `call` on the connection; a bus error or a timeout drops the connection, so the
    /// next call makes a new one.
    async fn call<T, F>(
        &self,
        what: impl FnOnce() -> String,
        call: impl FnOnce(zbus::Connection) -> F,
    ) -> Result<T, SystemdError>
    where
        F: Future<Output = Result<T, SystemdError>>,
    {
        self.call_on_link(what, |link| call(link.connection)).await
    }

    /// As [`Self::call`], with the connection's jobs' listener too.
    async fn call_on_link<T, F>(
        &self,
        what: impl FnOnce() -> String,
        call: impl FnOnce(Link) -> F,
    ) -> Result<T, SystemdError>
    where
        F: Future<Output = Result<T, SystemdError>>,
    {
        let link = self.link().await?;
        let result = timed(what, call(link)).await;
        if result.as_ref().is_err_and(|e| e.kind().is_transient()) {
            self.disconnect();
        }
        result
    }

    async fn run_job(&self, job: Job, unit: &str) -> Result<(), SystemdError> {
        let result = self
            .queue_and_wait(
                || format!("{job} {unit}"),
                self.job_timeout,
                |manager| async move {
                    match job {
                        Job::Start => manager.start_unit(unit, "replace").await,
                        Job::Restart => manager.restart_unit(unit, "replace").await,
                        Job::Reload => manager.reload_unit(unit, "replace").await,
                        Job::Stop => manager.stop_unit(unit, "replace").await,
                    }
                },
            )
            .await?;
        if result == JobResult::Done {
            Ok(())
        } else {
            Err(SystemdError::Job {
                job,
                unit: unit.to_owned(),
                result,
            })
        }
    }

    /// Queues a job with `queue` and waits for its result (see the module's notes).
    async fn queue_and_wait<F>(
        &self,
        what: impl Fn() -> String,
        wait_for: Duration,
        queue: impl FnOnce(ManagerProxy<'static>) -> F,
    ) -> Result<JobResult, SystemdError>
    where
        F: Future<Output = zbus::Result<OwnedObjectPath>>,
    {
        let (jobs, queued, result) = self
            .call_on_link(&what, |link| async move {
                let manager = ManagerProxy::new(&link.connection).await?;
                // Subscribe each time: a re-executed manager may have dropped the subscription.
                match manager.subscribe().await {
                    Ok(()) => {}
                    Err(zbus::Error::MethodError(name, _, _))
                        if name.as_str() == "org.freedesktop.systemd1.AlreadySubscribed" => {}
                    Err(error) => return Err(error.into()),
                }
                // Said before the call, so a result that comes before its answer is kept.
                let queuing = link.jobs.queuing().ok_or_else(closed)?;
                let queued = queue(manager).await?;
                let result = link.jobs.result_of(queuing, queued.as_str());
                Ok((link.jobs, queued, result))
            })
            .await?;
        match tokio::time::timeout(wait_for, result).await {
            Ok(Ok(result)) => Ok(result),
            Ok(Err(_)) => {
                // The listener ended with its connection: the next call connects again.
                let mut slot = crate::util::lock(&self.connection);
                if slot
                    .as_ref()
                    .is_some_and(|link| std::sync::Arc::ptr_eq(&link.jobs, &jobs))
                {
                    *slot = None;
                }
                Err(closed())
            }
            Err(_) => {
                jobs.forget(queued.as_str());
                Err(SystemdError::Timeout {
                    what: what(),
                    timeout: wait_for,
                })
            }
        }
    }
}

/// The error of a job whose connection closed before its result came.
fn closed() -> SystemdError {
    SystemdError::Lost("the bus closed".into())
}

impl UnitManager for DbusManager {
    fn daemon_reload(&self) -> BoxFuture<'_, Result<(), SystemdError>> {
        Box::pin(self.call(
            || "daemon-reload".into(),
            |connection| async move { Ok(ManagerProxy::new(&connection).await?.reload().await?) },
        ))
    }
    fn job<'a>(&'a self, job: Job, unit: &'a str) -> BoxFuture<'a, Result<(), SystemdError>> {
        Box::pin(self.run_job(job, unit))
    }
    fn states<'a>(
        &'a self,
        units: &'a [String],
    ) -> BoxFuture<'a, Result<UnitStates, SystemdError>> {
        Box::pin(self.list(units, false))
    }
    fn details<'a>(
        &'a self,
        units: &'a [String],
    ) -> BoxFuture<'a, Result<UnitStates, SystemdError>> {
        Box::pin(self.list(units, true))
    }
    fn check<'a>(
        &'a self,
        container: &'a str,
        command: &'a [String],
        timeout: Duration,
    ) -> BoxFuture<'a, Result<bool, SystemdError>> {
        Box::pin(self.run_check(container, command, timeout))
    }
    fn unit_path(&self) -> BoxFuture<'_, Result<Vec<std::path::PathBuf>, SystemdError>> {
        Box::pin(self.call(
            || "read the manager's unit path".into(),
            |connection| async move {
                let manager = ManagerProxy::builder(&connection)
                    .cache_properties(zbus::proxy::CacheProperties::No)
                    .build()
                    .await?;
                Ok(manager
                    .unit_path()
                    .await?
                    .into_iter()
                    .map(std::path::PathBuf::from)
                    .collect())
            },
        ))
    }
    fn load_state<'a>(
        &'a self,
        unit: &'a str,
    ) -> BoxFuture<'a, Result<crate::drivers::LoadState, SystemdError>> {
        Box::pin(self.call(
            move || format!("load state of {unit}"),
            move |connection| async move {
                let path = ManagerProxy::new(&connection)
                    .await?
                    .load_unit(unit)
                    .await?;
                let unit = UnitProxy::builder(&connection)
                    .path(path)?
                    .cache_properties(zbus::proxy::CacheProperties::No)
                    .build()
                    .await?;
                Ok(crate::drivers::LoadState::from(
                    unit.load_state().await?.as_str(),
                ))
            },
        ))
    }
}
