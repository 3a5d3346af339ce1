//! In-memory fakes of systemd, the volumes and a secret provider, and a `World` that holds a
//! spec directory and a reconciler wired to them: shared by the reconciler tests and the
//! benchmarks (`benches/reconcile.rs`). Every call a real driver would make is counted.
#![allow(dead_code, unreachable_pub)] // each user takes what it needs

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use ramlet::drivers::{
    ActiveState, FileContent, Job, SystemdError, UnitManager, UnitState, VolumeError,
    VolumeManager, VolumeSpec,
};
use ramlet::host::unit_dir::UnitDir;
use ramlet::layout::{Layout, Scope};
use ramlet::providers::{Connector, Fetched, Limits, ProviderError, Request, SecretProvider};
use ramlet::reconcile::{Reconciler, Settings};
use ramlet::secrets::{Secret, SecretBytes};
use ramlet::util::BoxFuture;
use ramlet_quadlet::PodmanVersion;

#[derive(Default)]
pub struct Host {
    pub volumes: BTreeMap<(String, String), Vec<FileContent>>,
    /// How many times each volume was written: its data folder's name, as the real volumes'
    /// `..data` names a new folder at each write.
    pub writes: BTreeMap<(String, String), u64>,
    /// Jobs under way now, and the most that were at once (with `side_by_side`: jobs that
    /// take a turn of the runtime before they land).
    pub side_by_side: bool,
    pub jobs_running: usize,
    pub most_jobs_at_once: usize,
    pub units: BTreeMap<String, UnitState>,
    pub log: Vec<String>,
    pub secrets: BTreeMap<String, Result<String, ProviderError>>,
    pub invocations: u32,
    pub foreign_units: BTreeSet<String>,
    /// Calls a real systemd would have answered: lists, and property reads for details.
    pub bus_calls: u32,
    /// Every secret the provider was asked for, in order.
    pub asked: Vec<String>,
    /// The same, with when (tokio's clock: paused in the loop's tests).
    pub asked_at: Vec<(String, tokio::time::Instant)>,
    /// How many clients were built.
    pub connects: u32,
    /// Calls (`restart a.service`, `daemon-reload`, `state a.service`) that fail once: the
    /// error, and whether the job happened anyway (systemd finished it, ramlet lost track).
    pub faults: BTreeMap<String, (SystemdError, bool)>,
    /// ramlet's unit folder: the units systemd loaded from it at the last daemon-reload are
    /// `inactive` until started; any other unit is `not-loaded`, as systemd answers.
    pub unit_dir: PathBuf,
    /// Services loaded by the last daemon-reload.
    pub loaded: BTreeSet<String>,
    /// Services with a job of somebody's on its way: listed `activating` with a pending job.
    pub pending: BTreeSet<String>,
    /// Containers (`ramlet-<spec>`) whose health check fails.
    pub unhealthy: BTreeSet<String>,
    /// Containers whose health check never returns.
    pub hanging: BTreeSet<String>,
    /// Values a container's health check fails on: the first file of its volume `v`.
    pub bad_values: BTreeSet<String>,
    /// The manager's unit path (folders of unit files), as `UnitPath` says.
    pub unit_path: Vec<PathBuf>,
    /// Every call made to the fakes of systemd, the volumes and the provider, by the trait
    /// method's name (`states`, `write`, `job`, `fetch`...), reads and changes alike.
    pub calls: Vec<&'static str>,
}

pub type Shared = Arc<Mutex<Host>>;

pub struct Volumes(Shared);
impl VolumeManager for Volumes {
    fn prepare(&self, v: &VolumeSpec) -> Result<PathBuf, VolumeError> {
        self.0.lock().unwrap().calls.push("prepare");
        Ok(PathBuf::from(format!("/fake/{}/{}", v.spec, v.volume)))
    }
    fn differs(&self, v: &VolumeSpec, files: &[FileContent]) -> Result<bool, VolumeError> {
        self.0.lock().unwrap().calls.push("differs");
        Ok(self
            .0
            .lock()
            .unwrap()
            .volumes
            .get(&(v.spec.clone(), v.volume.clone()))
            != Some(&files.to_vec()))
    }
    fn data_folder(&self, v: &VolumeSpec) -> Option<String> {
        let mut host = self.0.lock().unwrap();
        host.calls.push("data_folder");
        let key = (v.spec.clone(), v.volume.clone());
        host.volumes
            .contains_key(&key)
            .then(|| format!("..{}", host.writes.get(&key).copied().unwrap_or_default()))
    }
    fn write(&self, v: &VolumeSpec, files: &[FileContent]) -> Result<(), VolumeError> {
        let mut host = self.0.lock().unwrap();
        host.calls.push("write");
        host.log.push(format!("write {}/{}", v.spec, v.volume));
        host.volumes
            .insert((v.spec.clone(), v.volume.clone()), files.to_vec());
        *host
            .writes
            .entry((v.spec.clone(), v.volume.clone()))
            .or_default() += 1;
        Ok(())
    }
    fn remove_spec(&self, spec: &str) -> Result<(), VolumeError> {
        let mut host = self.0.lock().unwrap();
        host.calls.push("remove_spec");
        host.log.push(format!("wipe {spec}"));
        host.volumes.retain(|(s, _), _| s != spec);
        Ok(())
    }
    fn specs(&self) -> Result<BTreeSet<String>, VolumeError> {
        self.0.lock().unwrap().calls.push("specs");
        Ok(self
            .0
            .lock()
            .unwrap()
            .volumes
            .keys()
            .map(|(s, _)| s.clone())
            .collect())
    }
}

pub struct Units(Shared);
impl Units {
    /// Runs `job` on `unit`, or fails as a fault says (once).
    fn act(&self, job: Job, unit: &str) -> Result<(), SystemdError> {
        let mut host = self.0.lock().unwrap();
        host.calls.push("job");
        let call = format!("{job} {unit}");
        let fault = host.faults.remove(&call);
        host.log.push(call);
        if let Some((error, false)) = fault {
            return Err(error);
        }
        host.invocations += 1;
        let id = format!("{:04}", host.invocations);
        match job {
            Job::Start | Job::Restart => {
                host.units.insert(
                    unit.into(),
                    UnitState {
                        active_state: ActiveState::Active,
                        sub_state: "running".into(),
                        invocation_id: id,
                        ..UnitState::default()
                    },
                );
            }
            Job::Stop => {
                host.units.remove(unit);
            }
            Job::Reload => {}
        }
        match fault {
            Some((error, _)) => Err(error),
            None => Ok(()),
        }
    }
}
impl UnitManager for Units {
    fn daemon_reload(&self) -> BoxFuture<'_, Result<(), SystemdError>> {
        Box::pin(async move {
            let mut host = self.0.lock().unwrap();
            host.calls.push("daemon_reload");
            host.log.push("daemon-reload".into());
            if let Some((error, _)) = host.faults.remove("daemon-reload") {
                return Err(error);
            }
            host.loaded = std::fs::read_dir(&host.unit_dir)
                .into_iter()
                .flatten()
                .flatten()
                .filter_map(|e| {
                    let name = e.file_name().to_string_lossy().into_owned();
                    name.strip_suffix(".container")
                        .map(|n| format!("{n}.service"))
                })
                .collect();
            Ok(())
        })
    }
    /// With `side_by_side`, a job takes a turn of the runtime before it lands, so that jobs
    /// run side by side as they do on systemd; the most that ran at once is kept.
    fn job<'a>(&'a self, job: Job, unit: &'a str) -> BoxFuture<'a, Result<(), SystemdError>> {
        Box::pin(async move {
            let side_by_side = {
                let mut host = self.0.lock().unwrap();
                host.jobs_running += 1;
                host.most_jobs_at_once = host.most_jobs_at_once.max(host.jobs_running);
                host.side_by_side
            };
            if side_by_side {
                tokio::task::yield_now().await;
            }
            self.0.lock().unwrap().jobs_running -= 1;
            self.act(job, unit)
        })
    }
    fn load_state<'a>(
        &'a self,
        unit: &'a str,
    ) -> BoxFuture<'a, Result<ramlet::drivers::LoadState, SystemdError>> {
        Box::pin(async move {
            self.0.lock().unwrap().calls.push("load_state");
            Ok(self.loaded(unit).as_str().into())
        })
    }
    /// A health check: passes unless the container is unhealthy.
    fn check<'a>(
        &'a self,
        container: &'a str,
        _command: &'a [String],
        _timeout: std::time::Duration,
    ) -> BoxFuture<'a, Result<bool, SystemdError>> {
        Box::pin(async move {
            let hangs = {
                let mut host = self.0.lock().unwrap();
                host.calls.push("check");
                host.log.push(format!("check {container}"));
                if !host.hanging.contains(container) {
                    let spec = container.strip_prefix("ramlet-").unwrap_or(container);
                    let bad_value = host
                        .volumes
                        .get(&(spec.to_owned(), "v".to_owned()))
                        .and_then(|files| files.first())
                        .is_some_and(|f| {
                            host.bad_values
                                .contains(String::from_utf8_lossy(f.bytes.expose()).as_ref())
                        });
                    return Ok(!host.unhealthy.contains(container) && !bad_value);
                }
                true
            };
            if hangs {
                std::future::pending::<()>().await;
            }
            Ok(false)
        })
    }
    fn unit_path(&self) -> BoxFuture<'_, Result<Vec<PathBuf>, SystemdError>> {
        Box::pin(async move {
            let mut host = self.0.lock().unwrap();
            host.calls.push("unit_path");
            Ok(host.unit_path.clone())
        })
    }
    fn states<'a>(
        &'a self,
        units: &'a [String],
    ) -> BoxFuture<'a, Result<BTreeMap<String, UnitState>, SystemdError>> {
        Box::pin(async move {
            self.0.lock().unwrap().calls.push("states");
            self.answer(units, false)
        })
    }
    fn details<'a>(
        &'a self,
        units: &'a [String],
    ) -> BoxFuture<'a, Result<BTreeMap<String, UnitState>, SystemdError>> {
        Box::pin(async move {
            self.0.lock().unwrap().calls.push("details");
            self.answer(units, true)
        })
    }
}

impl Units {
    /// What systemd would answer: one list call (a `list units` fault fails it whole), plus
    /// one call per unit for details (whose invocation IDs the list alone does not carry).
    fn answer(
        &self,
        units: &[String],
        details: bool,
    ) -> Result<BTreeMap<String, UnitState>, SystemdError> {
        let mut host = self.0.lock().unwrap();
        host.bus_calls += 1;
        if let Some((error, _)) = host.faults.remove("list units") {
            return Err(error);
        }
        let mut states = BTreeMap::new();
        for unit in units {
            // A faulted unit is one systemd did not answer for: left out.
            if host.faults.remove(&format!("state {unit}")).is_some() {
                continue;
            }
            let mut state = host.units.get(unit).cloned().unwrap_or_else(|| UnitState {
                active_state: if host.loaded.contains(unit) {
                    ActiveState::Inactive
                } else {
                    ActiveState::NotLoaded
                },
                ..UnitState::default()
            });
            if host.pending.contains(unit) {
                // As DbusManager lists a unit with a job on its way.
                state.pending_job = true;
                if state.active_state != ActiveState::Active {
                    state.active_state = ActiveState::Activating;
                }
            }
            if details {
                host.bus_calls += 1;
            } else {
                state.invocation_id.clear();
                state.result = ramlet::drivers::UnitResult::Unknown;
                state.exec_main_status = 0;
            }
            states.insert(unit.clone(), state);
        }
        Ok(states)
    }
}

impl Units {
    fn loaded(&self, unit: &str) -> String {
        let host = self.0.lock().unwrap();
        if host.units.contains_key(unit)
            || host.foreign_units.contains(unit)
            || host.loaded.contains(unit)
        {
            "loaded".into()
        } else {
            "not-found".into()
        }
    }
}

/// A store of the kind its settings name, answering from the host's secrets.
pub struct Provider(Shared, ramlet::providers::Capabilities);
impl SecretProvider for Provider {
    fn capabilities(&self) -> ramlet::providers::Capabilities {
        self.1.clone()
    }
    fn fetch<'a>(
        &'a self,
        requests: &'a [Request],
        _: Limits,
    ) -> BoxFuture<'a, Vec<Result<Fetched, ProviderError>>> {
        Box::pin(async move {
            let mut host = self.0.lock().unwrap();
            host.calls.push("fetch");
            let mut answers = Vec::new();
            for request in requests {
                host.asked.push(request.name.clone());
                host.asked_at
                    .push((request.name.clone(), tokio::time::Instant::now()));
                answers.push(match host.secrets.get(&request.name) {
                    Some(Ok(value)) => {
                        let version = format!("v-{value}");
                        if request.known.as_ref() == Some(&version) {
                            Ok(Fetched::Unchanged)
                        } else {
                            Ok(Fetched::New(Secret {
                                bytes: SecretBytes::new(value.clone().into_bytes()),
                                version,
                                expires: None,
                            }))
                        }
                    }
                    Some(Err(error)) => Err(error.clone()),
                    None => Err(ProviderError::not_found(&request.name)),
                });
            }
            answers
        })
    }
}

pub fn connector(host: Shared) -> Connector {
    Arc::new(move |settings| {
        host.lock().unwrap().connects += 1;
        let can = ramlet::providers::capabilities(settings);
        let provider: Arc<dyn SecretProvider> = Arc::new(Provider(host.clone(), can));
        Box::pin(async move { Ok(provider) })
    })
}

pub struct World {
    pub dir: PathBuf,
    pub host: Shared,
    /// The reconcilers' clock: health checks' deadlines pass when a test moves it.
    pub clock: std::sync::Arc<FakeClock>,
}

/// A wall clock that moves only when told.
pub struct FakeClock(std::sync::atomic::AtomicU64);

impl FakeClock {
    /// Moves it `by` forward.
    #[allow(dead_code)] // not every test binary moves it
    pub fn advance(&self, by: std::time::Duration) {
        let millis = u64::try_from(by.as_millis()).unwrap_or(u64::MAX);
        self.0
            .fetch_add(millis, std::sync::atomic::Ordering::SeqCst);
    }
}

impl ramlet::clock::Clock for FakeClock {
    fn now_millis(&self) -> u64 {
        self.0.load(std::sync::atomic::Ordering::SeqCst)
    }
}

impl World {
    pub fn new(name: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("ramlet-fakes-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("specs")).unwrap();
        let world = Self {
            host: Shared::default(),
            dir,
            clock: std::sync::Arc::new(FakeClock(std::sync::atomic::AtomicU64::new(
                1_800_000_000_000,
            ))),
        };
        world.host.lock().unwrap().unit_dir = world.dir.join("units");
        world.spec("store", "apiVersion: ramlet.dev/v1alpha1\nkind: SecretStore\nmetadata: {name: s}\nspec: {file: {directory: /unused}}\n");
        world
    }

    pub fn spec(&self, file: &str, text: &str) {
        std::fs::write(self.dir.join("specs").join(format!("{file}.yaml")), text).unwrap();
    }

    pub fn container(&self, name: &str, secret: &str, rotation: &str) {
        self.spec(
            name,
            &format!(
                "apiVersion: ramlet.dev/v1alpha1\nkind: Container\nmetadata: {{name: {name}}}\nspec:\n  image: localhost/busybox\n  \
                 volumes:\n    - name: v\n      mountPath: /run/v\n      files:\n        - path: f\n          secret: {{store: s, name: {secret}}}\n  \
                 rotation: {{strategy: {rotation}}}\n"
            ),
        );
    }

    pub fn secret(&self, name: &str, value: Result<&str, ProviderError>) {
        self.host
            .lock()
            .unwrap()
            .secrets
            .insert(name.into(), value.map(str::to_owned));
    }

    pub fn reconciler(&self) -> Reconciler {
        self.reconciler_with(ramlet_specs::Policy::default())
    }

    pub fn reconciler_with(&self, policy: ramlet_specs::Policy) -> Reconciler {
        self.reconciler_in(Scope::System, policy)
    }

    pub fn reconciler_in(&self, scope: Scope, policy: ramlet_specs::Policy) -> Reconciler {
        let settings = Settings {
            spec_dir: self.dir.join("specs"),
            layout: Layout {
                scope,
                unit_dir: self.dir.join("units"),
                volume_root: "/fake".into(),
            },
            host_labels: BTreeMap::new(),
            target: PodmanVersion::V5_4,
            state_dir: self.dir.join("state"),
            policy,
            metrics_file: Some(self.dir.join("metrics.prom")),
        };
        Reconciler::new(
            settings,
            Box::new(Volumes(self.host.clone())),
            Box::new(Units(self.host.clone())),
            Box::new(UnitDir::new(self.dir.join("units"))),
            connector(self.host.clone()),
        )
        .with_clock(self.clock.clone())
    }

    pub fn take_log(&self) -> Vec<String> {
        std::mem::take(&mut self.host.lock().unwrap().log)
    }

    pub fn invocation(&self, unit: &str) -> String {
        self.host.lock().unwrap().units[unit].invocation_id.clone()
    }

    pub fn unit_file(&self, name: &str) -> PathBuf {
        self.dir.join("units").join(format!("{name}.container"))
    }
}

impl Drop for World {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
