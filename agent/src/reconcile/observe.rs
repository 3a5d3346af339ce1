//! Observe: every fact a decision is made from, gathered in one step into [`Facts`]: the specs
//! as loaded (and their errors), the secrets the stores hold after the refreshes that are due,
//! ramlet's unit files, each selected spec's facts ([`super::desire`]), the volumes, the units'
//! states (one batched systemd call) and the work earlier reconciles still owe. Nothing here
//! decides what to do, and nothing changes the host.
//!
//! A unit's details (its invocation ID, and why it failed) cost a few calls each, so they are
//! asked only where they can have changed: a unit whose active or sub state moved since the
//! last look, one never seen, one with owed work (its settlement compares invocations). The
//! others keep the details seen last: an idle reconcile of N units is one systemd call.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::Arc;

use ramlet_specs::Catalog;
use ramlet_specs::model::Container;

use super::desire::Payload;
use super::facts::{Facts, NameCheck, Problem};
use super::{HostError, LOAD_DEADLINE, Reconciler, Stop, service};
use crate::drivers::{ActiveState, Listing, SystemdError, UnitState};
use crate::providers::stores::Due;
use crate::status::Reason;

mod gate_facts;

/// What one observation found: the facts, and what only the apply needs.
pub(super) struct Observed {
    /// Everything the decision is made from.
    pub facts: Facts,
    /// The secret bytes the apply may write or hold.
    pub payload: Payload,
    /// The `file` and `creds` stores' directories, to watch.
    pub watch: BTreeSet<PathBuf>,
}

/// A spec whose escape hatch names the unit of a spec whose name is taken on this host (by a
/// unit ramlet does not own) would start, stop or pull in that other unit: it is refused too,
/// naming it (issue 33: a decoy spec named after a host unit made that unit nameable).
fn refuse_taken_references(facts: &mut Facts, selected: &[&Container]) {
    let taken: BTreeSet<String> = facts
        .specs
        .iter()
        .filter(|s| !matches!(s.name_check, NameCheck::Ours | NameCheck::Free))
        .map(|s| super::service(&s.name))
        .collect();
    if taken.is_empty() {
        return;
    }
    for (spec, container) in facts.specs.iter_mut().zip(selected) {
        let references = ramlet_specs::policy::baseline::unit_references(container);
        if let Some(unit) = references.into_iter().find(|u| taken.contains(*u)) {
            spec.wants = Err(Problem {
                reason: Reason::UnitNameTaken,
                message: format!(
                    "spec.quadlet names {unit}, which is not ramlet's on this host (a unit of the host's has that name); rename that spec, or remove the reference"
                ),
                versions: Vec::new(),
            });
        }
    }
}

/// How often a reconcile looks for unit files of the host's that take a name of ramlet's.
const SHADOW_CHECK: std::time::Duration = std::time::Duration::from_mins(1);

/// Why observe runs: before a reconcile that applies its plan, or for `ramlet plan`. Either
/// reads only; `ramlet plan` also takes a health check it cannot run as passed on what a
/// container runs now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Intent {
    /// A reconcile.
    Apply,
    /// `ramlet plan`.
    Preview,
}

impl Reconciler {
    /// Observes the host and the specs, changing nothing on the host (it records in memory
    /// what it saw: states, renders, unsealed files, what the checks said). Stops when the
    /// spec directory or the unit folder cannot be read or systemd does not say how the units
    /// are (no plan is made without them), and at shutdown during the wait on the providers.
    pub(super) async fn observe(&mut self, due: Due, intent: Intent) -> Result<Observed, Stop> {
        let mut phases = Phases::start();
        let parses = self.loader.parses();
        // A wake-up for secrets only: the spec directory is as it was when last read well
        // (its own file events, the timers and `ramlet sync` look at it).
        let unchanged = (due == Due::Secrets && self.memory.specs_read)
            .then(|| {
                self.loader
                    .last(&self.settings.spec_dir, &self.settings.policy)
            })
            .flatten();
        let catalog = if let Some(catalog) = unchanged {
            catalog
        } else {
            self.memory.specs_read = false;
            let catalog = self.load().await.map_err(Stop::Failed)?;
            self.memory.specs_read = true;
            catalog
        };
        phases.lap(if self.loader.parses() == parses {
            "specs"
        } else {
            "specs (parsed)"
        });
        let listing = self.unit_dir.list().await.map_err(|source| {
            Stop::Failed(HostError::UnitDir {
                path: self.unit_dir.path().to_owned(),
                source,
            })
        })?;
        phases.lap("unit files");
        let labels = self.settings.host_labels.clone();
        let selected: Vec<&Container> = catalog.selected(&labels).collect();
        let watch = watched(&catalog, &selected);
        self.unseal_previous(&selected).await;
        let pinned = self.pinned(&selected, &catalog);
        let asked: Vec<&Container> = selected.iter().copied().chain(&pinned).collect();
        if self.refresh_secrets(&catalog, &asked, due).await {
            return Err(Stop::Shutdown);
        }
        for container in &pinned {
            if let Some(files) = self.files(container, &catalog) {
                self.memory
                    .previous
                    .insert(container.name.to_string(), files);
            }
        }
        phases.lap("fetch");
        let chosen: BTreeSet<&str> = selected.iter().map(|c| c.name.as_str()).collect();
        let mut facts = Facts {
            errors: catalog.errors.iter().map(ToString::to_string).collect(),
            broken_files: catalog.errors.iter().map(|e| e.file.clone()).collect(),
            unselected: catalog
                .containers
                .keys()
                .map(ToString::to_string)
                .filter(|name| !chosen.contains(name.as_str()))
                .collect(),
            owed: self.memory.owed.clone(),
            // Only what a decision can need: the last entries of running specs that are not
            // selected now (gone, deselected, or their file broke).
            last: self
                .memory
                .status
                .specs
                .iter()
                .filter(|(name, _)| {
                    listing.ours.contains_key(*name) && !chosen.contains(name.as_str())
                })
                .map(|(name, spec)| (name.clone(), spec.clone()))
                .collect(),
            ..Facts::default()
        };
        self.search_shadows(due, &listing).await;
        let payload = self
            .each_spec(&selected, &catalog, &listing, &mut facts)
            .await;
        refuse_taken_references(&mut facts, &selected);
        facts.leases = self.stores.leases();
        self.gate_facts(&mut facts, &catalog, &selected, intent);
        phases.lap("shape");
        facts.units = listing.ours;
        facts.volume_specs = self.volumes.specs().unwrap_or_default();
        let names: BTreeSet<String> = facts
            .specs
            .iter()
            .map(|s| s.name.clone())
            .chain(facts.units.keys().cloned())
            .collect();
        facts.states = self
            .unit_states(&names, &facts.owed)
            .await
            .map_err(|e| Stop::Failed(HostError::Systemd(e)))?;
        phases.lap("states");
        phases.log(facts.specs.len());
        Ok(Observed {
            facts,
            payload,
            watch,
        })
    }

    /// The facts of each selected spec, into `facts`; the bytes the apply needs, returned.
    async fn each_spec(
        &mut self,
        selected: &[&Container],
        catalog: &Arc<Catalog>,
        listing: &Listing,
        facts: &mut Facts,
    ) -> Payload {
        let mut payload = Payload::default();
        let mut rendered = std::mem::take(&mut self.memory.rendered);
        let mut renderings = std::mem::take(&mut self.memory.renderings);
        let mut settled = std::mem::take(&mut self.memory.settled);
        settled.of(catalog);
        for container in selected {
            let (spec, found) = self
                .spec_facts(
                    container,
                    catalog,
                    listing,
                    &mut rendered,
                    &mut renderings,
                    &mut settled,
                )
                .await;
            if let Some(changed) = found.changed {
                payload.changed.insert(spec.name.clone(), changed);
            }
            if let Some(full) = found.full {
                facts.holdable.insert(spec.name.clone());
                payload.full.insert(spec.name.clone(), full);
            }
            facts.specs.push(spec);
        }
        self.memory.rendered = rendered;
        self.memory.renderings = renderings;
        self.memory.settled = settled;
        payload
    }

    /// Searches the manager's unit folders (generators' and transient units' left out) for a
    /// file of the host's that takes the name of a unit of ramlet's, at a `ramlet sync` and
    /// otherwise at most once every [`SHADOW_CHECK`]: a package that installs a unit by a
    /// spec's name is noticed within that. What it finds holds until the next search. Kept as
    /// it was when systemd does not say.
    async fn search_shadows(&mut self, due: Due, listing: &Listing) {
        let now = tokio::time::Instant::now();
        let due = due == Due::All
            || self
                .memory
                .shadows
                .searched
                .is_none_or(|at| now.duration_since(at) >= SHADOW_CHECK);
        if !due {
            return;
        }
        let Ok(folders) = self.units.unit_path().await else {
            return;
        };
        self.memory.shadows.searched = Some(now);
        let folders: Vec<PathBuf> = folders
            .into_iter()
            .filter(|dir| {
                dir.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| !n.starts_with("generator") && n != "transient")
            })
            .collect();
        // One listing per folder, not a `stat` per unit and folder: a user manager has a
        // dozen folders, so 500 units were 6,000 calls.
        let entries: Vec<(&PathBuf, BTreeSet<std::ffi::OsString>)> = folders
            .iter()
            .filter_map(|dir| {
                let names = std::fs::read_dir(dir).ok()?;
                Some((
                    dir,
                    names.filter_map(|e| Some(e.ok()?.file_name())).collect(),
                ))
            })
            .collect();
        self.memory.shadows.found = listing
            .ours
            .keys()
            .filter_map(|name| {
                let unit = std::ffi::OsString::from(service(name));
                let (dir, _) = entries.iter().find(|(_, names)| names.contains(&unit))?;
                Some((name.clone(), dir.join(unit)))
            })
            .collect();
    }

    /// Loads the spec directory (off the runtime's thread), with this host's policy; parsed
    /// again only when a file in it changed (see [`Loader`]). A load that takes longer than
    /// [`LOAD_DEADLINE`] (a file system that hangs) is given up: its thread is left behind, not
    /// waited for, so neither reconciles nor shutdown hang with it.
    async fn load(&mut self) -> Result<Arc<Catalog>, HostError> {
        let dir = self.settings.spec_dir.clone();
        let policy = self.settings.policy.clone();
        let mut loader = std::mem::take(&mut self.loader);
        let loaded = tokio::task::spawn_blocking(move || {
            let (sender, answer) = std::sync::mpsc::channel();
            std::thread::spawn(move || {
                let loaded = loader.load(&dir, &policy);
                let _ = sender.send((loader, loaded));
            });
            answer.recv_timeout(LOAD_DEADLINE).ok()
        })
        .await
        .ok()
        .flatten();
        let Some((loader, loaded)) = loaded else {
            return Err(HostError::SpecDirHung {
                dir: self.settings.spec_dir.clone(),
            });
        };
        self.loader = loader;
        let catalog = loaded?;
        // Forget the renders of specs that are gone.
        let names: BTreeSet<&str> = catalog
            .containers
            .keys()
            .map(ramlet_specs::model::Name::as_str)
            .collect();
        self.memory
            .rendered
            .retain(|name, _| names.contains(name.as_str()));
        self.memory.renderings.retain(|name| names.contains(name));
        self.memory.settled.retain(|name| names.contains(name));
        Ok(catalog)
    }

    /// Refreshes what is due of the secrets `selected` uses; returns true when shutdown cut the wait on the providers short.
    async fn refresh_secrets(
        &mut self,
        catalog: &Catalog,
        selected: &[&Container],
        due: Due,
    ) -> bool {
        let references: Vec<_> = selected
            .iter()
            .flat_map(|c| &c.volumes)
            .flat_map(|v| &v.files)
            .flat_map(ramlet_specs::model::VolumeFile::references)
            .collect();
        self.stores.read_together(selected.iter().map(|c| {
            c.volumes
                .iter()
                .flat_map(|v| &v.files)
                .flat_map(ramlet_specs::model::VolumeFile::references)
        }));
        let refresh = self
            .stores
            .refresh(&catalog.stores, references.iter().copied(), due);
        if let Some(mut stopping) = self.stopping.clone() {
            tokio::select! {
                () = refresh => {}
                _ = stopping.wait_for(|s| *s) => return true,
            }
        } else {
            refresh.await;
        }
        false
    }

    /// The states of the units of `names`: an error when systemd does not answer the list.
    async fn unit_states(
        &self,
        names: &BTreeSet<String>,
        owed: &super::owed::Owed,
    ) -> Result<BTreeMap<String, UnitState>, SystemdError> {
        let services: Vec<String> = names.iter().map(|n| service(n)).collect();
        let listed = by_spec(self.units.states(&services).await?);
        let stale: Vec<String> = listed
            .iter()
            .filter(|(name, now)| {
                now.active_state != ActiveState::NotLoaded
                    && (owed.jobs.contains_key(*name)
                        || self.memory.seen.get(*name).is_none_or(|seen| {
                            seen.active_state != now.active_state || seen.sub_state != now.sub_state
                        }))
            })
            .map(|(name, _)| service(name))
            .collect();
        let mut fresh = if stale.is_empty() {
            BTreeMap::new()
        } else {
            // Details that systemd does not give leave those units unknown, below.
            by_spec(self.units.details(&stale).await.unwrap_or_default())
        };
        Ok(listed
            .into_iter()
            .filter_map(|(name, now)| {
                let state = if now.active_state == ActiveState::NotLoaded {
                    now
                } else if let Some(fresh) = fresh.remove(&name) {
                    fresh
                } else if stale.contains(&service(&name)) {
                    // Asked, but systemd did not answer for it: unknown.
                    return None;
                } else {
                    self.memory.seen.get(&name).cloned().unwrap_or(now)
                };
                Some((name, state))
            })
            .collect())
    }
}

/// The folders of the `file` and `creds` stores the `selected` specs use, to watch (an `age`
/// store's folder is inside the spec directory, watched already).
fn watched(catalog: &Catalog, selected: &[&Container]) -> BTreeSet<PathBuf> {
    selected
        .iter()
        .flat_map(|c| &c.volumes)
        .flat_map(|v| &v.files)
        .flat_map(ramlet_specs::model::VolumeFile::references)
        .filter_map(|reference| {
            let store = catalog.stores.get(&reference.store)?;
            crate::providers::capabilities(&store.provider).folder
        })
        .collect()
}

/// How long each step of an observation took, logged at debug level: where a reconcile's time
/// goes on a host with many specs, without a profiler.
struct Phases {
    at: std::time::Instant,
    laps: Vec<(&'static str, std::time::Duration)>,
}

impl Phases {
    fn start() -> Self {
        Self {
            at: std::time::Instant::now(),
            laps: Vec::new(),
        }
    }

    /// Ends the step `name` (the time since the last lap).
    fn lap(&mut self, name: &'static str) {
        let now = std::time::Instant::now();
        self.laps.push((name, now.duration_since(self.at)));
        self.at = now;
    }

    fn log(&self, specs: usize) {
        let laps: Vec<String> = self
            .laps
            .iter()
            .map(|(name, took)| format!("{name} {:.1} ms", took.as_secs_f64() * 1000.0))
            .collect();
        tracing::debug!(specs, "observed: {}", laps.join(", "));
    }
}

/// States keyed by spec name (the unit's name without `.service`).
pub(super) fn by_spec(states: BTreeMap<String, UnitState>) -> BTreeMap<String, UnitState> {
    states
        .into_iter()
        .filter_map(|(unit, state)| {
            unit.strip_suffix(".service")
                .map(|name| (name.to_owned(), state))
        })
        .collect()
}
