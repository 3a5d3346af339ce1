//! Status: what each spec's entry in `status.json` says after a reconcile: its phase and
//! reason, the unit's state, and for a failed unit why (systemd's result) and where its log is;
//! specs whose file broke keep their last entry.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use ramlet_specs::Catalog;
use ramlet_specs::model::Container;

use super::plan::{Action, Observed};
use super::{Reconciler, service};
use crate::drivers::UnitState;
use crate::status::{Phase, Reason, SecretVersion, SpecStatus, Status};

/// How old the status file may get while nothing in it changes.
const STATUS_HEARTBEAT: std::time::Duration = std::time::Duration::from_mins(1);

impl Reconciler {
    /// Fills in the outcome of the apply and the units' states.
    /// Units no action touched keep the state observed before the apply; only the others are
    /// asked again.
    /// Keeps `next` as the status, and writes the status file when something in it changed
    /// besides its timestamps, when the reconcile was asked for (`always`), or when the file is
    /// a minute old (so `updated` never lags more): an idle agent does not rewrite it at every
    /// refresh.
    pub(super) fn keep_status(&mut self, next: Status, always: bool) {
        let stale = self
            .status_written
            .is_none_or(|at| at.elapsed() >= STATUS_HEARTBEAT);
        if always || stale || !next.same_but_for_timestamps(&self.status) {
            match next.write(&self.settings.state_dir) {
                Ok(()) => self.status_written = Some(std::time::Instant::now()),
                Err(error) => tracing::warn!(%error, "cannot write the status file"),
            }
        }
        self.status = next;
    }

    pub(super) async fn settle_status(
        &mut self,
        next: &mut Status,
        failures: &BTreeMap<String, String>,
        actions: &[Action],
        observed: &Observed,
    ) {
        let touched: BTreeSet<&str> = actions
            .iter()
            .filter_map(|a| match a {
                Action::Job(_, n) => Some(n.as_str()),
                _ => None,
            })
            .collect();
        let ask: Vec<String> = next
            .specs
            .keys()
            .filter(|n| touched.contains(n.as_str()) || !observed.states.contains_key(*n))
            .map(|n| service(n))
            .collect();
        let asked = if ask.is_empty() {
            BTreeMap::new()
        } else {
            // Unanswered, each spec keeps the state observe saw.
            self.units.details(&ask).await.unwrap_or_default()
        };
        let mut seen = observed.states.clone();
        seen.extend(super::observe::by_spec(asked.clone()));
        self.seen = seen;
        for (name, spec) in &mut next.specs {
            if let Some(error) = failures.get(name) {
                spec.phase = Phase::Failed;
                spec.reason = Reason::ApplyFailed;
                spec.message.clone_from(error);
            }
            let state = asked
                .get(&service(name))
                .or_else(|| observed.states.get(name))
                .cloned();
            if let Some(state) = state {
                if spec.phase == Phase::Progressing && state.active_state == "active" {
                    spec.phase = Phase::Ready;
                }
                if state.active_state == "failed" || failures.contains_key(name) {
                    if spec.phase == Phase::Progressing {
                        spec.phase = Phase::Failed;
                        spec.reason = Reason::UnitFailed;
                    }
                    let why = self.why_failed(name, &state);
                    spec.message = if spec.message.is_empty() {
                        why
                    } else {
                        format!("{}; {why}", spec.message)
                    };
                }
                spec.unit = state;
            }
        }
    }

    /// What systemd says about a failed unit, and where its log is.
    pub(super) fn why_failed(&self, name: &str, state: &UnitState) -> String {
        let user = if self.settings.layout.scope == crate::layout::Scope::User {
            "--user "
        } else {
            ""
        };
        let result = match state.result.as_str() {
            "" | "success" => String::new(),
            "exit-code" => format!(
                "the container exited with status {} (Result=exit-code); ",
                state.exec_main_status
            ),
            "signal" | "core-dump" => format!(
                "the container was killed by signal {} (Result={}); ",
                state.exec_main_status, state.result
            ),
            other => format!("Result={other}; "),
        };
        format!("{result}its log: journalctl {user}-u {}", service(name))
    }

    /// Running specs whose spec file is broken now are kept as they are.
    pub(super) fn keep_broken(
        &self,
        catalog: &Catalog,
        ours: &BTreeMap<String, String>,
        keep: &mut BTreeSet<String>,
        next: &mut Status,
        now: &str,
    ) {
        let broken: BTreeSet<&PathBuf> = catalog.errors.iter().map(|e| &e.file).collect();
        for name in ours.keys() {
            if next.specs.contains_key(name)
                || catalog.containers.keys().any(|n| n.as_str() == name)
            {
                continue;
            }
            let last = self.status.specs.get(name);
            let file_broken = match last {
                Some(spec) => broken.contains(&spec.file),
                // No record of where it came from: keep it while any file is broken.
                None => !broken.is_empty(),
            };
            if file_broken {
                keep.insert(name.clone());
                let mut spec = last.cloned().unwrap_or_else(|| SpecStatus {
                    phase: Phase::Degraded,
                    reason: Reason::InvalidSpec,
                    message: String::new(),
                    file: PathBuf::new(),
                    last_reconcile: String::new(),
                    secrets: Vec::new(),
                    unit: UnitState::default(),
                });
                spec.phase = Phase::Degraded;
                spec.reason = Reason::InvalidSpec;
                spec.message =
                    "its spec file has errors; the last applied version keeps running".into();
                now.clone_into(&mut spec.last_reconcile);
                next.specs.insert(name.clone(), spec);
            }
        }
    }
}

pub(super) fn spec_status(
    container: &Container,
    now: &str,
    phase: Phase,
    reason: Reason,
    message: String,
    secrets: Vec<SecretVersion>,
) -> SpecStatus {
    SpecStatus {
        phase,
        reason,
        message,
        file: container.origin.file.clone(),
        last_reconcile: now.to_owned(),
        secrets,
        unit: UnitState::default(),
    }
}
