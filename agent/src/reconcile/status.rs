//! Status: what each spec's entry in `status.json` says after a reconcile. The decision's
//! verdict (phase, reason, message) settled with what the apply and systemd say after it, by
//! one pure function ([`settle`]): a unit that runs makes an applied spec `Ready`, a failed
//! unit or action makes it `Failed` with systemd's own words and where its log is.

use std::collections::{BTreeMap, BTreeSet};

use super::apply::{Applied, ApplyError};
use super::facts::Facts;
use super::plan::{Action, Plan, Verdict};
use super::{Reconciler, service};
use crate::drivers::{ActiveState, UnitResult, UnitState};
use crate::layout::Scope;
use crate::status::{Phase, Reason, SpecStatus, Status, conditions};

/// Gives `spec` its digest and generation: the one `before` had while the digest is the same,
/// one more when the spec changed (1 for a spec never seen); a spec not observed now (gone, its
/// file broken) keeps what it had.
fn generation(spec: &mut SpecStatus, before: Option<&SpecStatus>, digest: Option<&&str>) {
    let (digest, generation) = match (digest, before) {
        (Some(digest), Some(b)) if b.spec_digest == **digest => {
            ((*digest).to_owned(), b.observed_generation)
        }
        (Some(digest), b) => (
            (*digest).to_owned(),
            b.map_or(0, |b| b.observed_generation) + 1,
        ),
        (None, Some(b)) => (b.spec_digest.clone(), b.observed_generation),
        (None, None) => (String::new(), 0),
    };
    spec.spec_digest = digest;
    spec.observed_generation = generation;
}

/// How old the status file may get while nothing in it changes.
const STATUS_HEARTBEAT: std::time::Duration = std::time::Duration::from_mins(1);

impl Reconciler {
    /// Says each spec's problem once, when it starts or changes (not at every retry).
    pub(super) fn say_verdicts(&self, plan: &Plan) {
        for (name, verdict) in &plan.specs {
            if verdict.message.is_empty() || verdict.reason == Reason::InvalidSpec {
                continue;
            }
            let said = self
                .memory
                .status
                .specs
                .get(name)
                .is_some_and(|s| s.reason == verdict.reason && s.message == verdict.message);
            if !said {
                let (reason, message) = (verdict.reason, &verdict.message);
                tracing::warn!(spec = %name, unit = %service(name), reason = ?reason, %message, message_id = crate::message_ids::NOT_APPLIED, "{name}: spec not applied ({reason:?}): {message}");
            }
        }
    }

    /// The status this reconcile leaves: each verdict of `plan` settled with the apply's
    /// failures and the units' states. Units a job touched, and units whose state was
    /// unknown, are asked again; the others keep the state observed before the apply.
    pub(super) async fn settle_status(
        &mut self,
        facts: &Facts,
        plan: &Plan,
        applied: &Applied,
    ) -> Status {
        let touched: BTreeSet<&str> = plan
            .actions
            .iter()
            .filter_map(|a| match a {
                Action::Job(_, n) => Some(n.as_str()),
                _ => None,
            })
            .collect();
        let ask: Vec<String> = plan
            .specs
            .keys()
            .filter(|n| touched.contains(n.as_str()) || !facts.states.contains_key(*n))
            .map(|n| service(n))
            .collect();
        let asked = if ask.is_empty() {
            BTreeMap::new()
        } else {
            // Unanswered, each spec keeps the state observed.
            super::observe::by_spec(self.units.details(&ask).await.unwrap_or_default())
        };
        let mut seen = facts.states.clone();
        seen.extend(asked.clone());
        self.memory.seen = seen;
        let now = crate::util::now_rfc3339();
        let scope = self.settings.layout.scope;
        let files: BTreeMap<&str, &std::path::PathBuf> = facts
            .specs
            .iter()
            .map(|s| (s.name.as_str(), &s.file))
            .collect();
        let digests: BTreeMap<&str, &str> = facts
            .specs
            .iter()
            .map(|s| (s.name.as_str(), s.digest.as_str()))
            .collect();
        let before = &self.memory.status;
        let specs = plan
            .specs
            .iter()
            .map(|(name, verdict)| {
                let state = asked.get(name).or_else(|| facts.states.get(name));
                let file = files.get(name.as_str()).map(|f| (*f).clone());
                let last = facts.last.get(name);
                let mut spec = settle(name, verdict, applied.failures.get(name), state, scope);
                spec.file = file
                    .or_else(|| last.map(|l| l.file.clone()))
                    .unwrap_or_default();
                if plan.keep.contains(name) && state.is_none() {
                    // Kept as it runs, and systemd said nothing new: what was known stays.
                    spec.unit = last.map(|l| l.unit.clone()).unwrap_or_default();
                }
                spec.last_reconcile.clone_from(&now);
                generation(
                    &mut spec,
                    before.specs.get(name),
                    digests.get(name.as_str()),
                );
                spec.conditions = conditions::of_spec(&spec, spec.observed_generation);
                let was = before.specs.get(name).map_or(&[][..], |b| &b.conditions);
                conditions::carry(&mut spec.conditions, was, &now);
                (name.clone(), spec)
            })
            .collect();
        let mut stores = self.stores.status();
        for (name, store) in &mut stores {
            store.conditions = conditions::of_store(store);
            let was = before.stores.get(name).map_or(&[][..], |b| &b.conditions);
            conditions::carry(&mut store.conditions, was, &now);
        }
        Status {
            updated: now,
            specs,
            errors: facts.errors.clone(),
            stores,
            selinux: self.volumes.selinux(),
            volumes: self.volumes.medium(),
        }
    }

    /// Keeps `next` as the status, and writes the status file when something in it changed
    /// besides its timestamps, when the reconcile was asked for (`always`), or when the file is
    /// a minute old (so `updated` never lags more): an idle agent does not rewrite it at every
    /// refresh.
    pub(super) fn keep_status(&mut self, next: Status, always: bool) {
        let stale = self
            .memory
            .status_written
            .is_none_or(|at| at.elapsed() >= STATUS_HEARTBEAT);
        if always || stale || !next.same_but_for_timestamps(&self.memory.status) {
            match next.write(&self.settings.state_dir) {
                Ok(()) => self.memory.status_written = Some(std::time::Instant::now()),
                Err(error) => tracing::warn!(%error, "cannot write the status file"),
            }
        }
        self.memory.status = next;
    }
}

/// One spec's status entry: its `verdict` settled with the apply's `failure` (if any) and the
/// unit's `state` after the apply (`None`: systemd did not say). Pure.
#[must_use]
pub(super) fn settle(
    name: &str,
    verdict: &Verdict,
    failure: Option<&ApplyError>,
    state: Option<&UnitState>,
    scope: Scope,
) -> SpecStatus {
    let mut spec = SpecStatus {
        phase: verdict.phase,
        reason: verdict.reason,
        message: verdict.message.clone(),
        secrets: verdict.versions.clone(),
        ..SpecStatus::default()
    };
    if let Some(error) = failure {
        spec.phase = Phase::Failed;
        spec.reason = Reason::ApplyFailed;
        spec.message.clone_from(&error.message);
    }
    if let Some(state) = state {
        // A rotation waiting on its health check or on a canary is not Ready yet, running or not.
        let gated = matches!(
            verdict.reason,
            Reason::HealthChecking | Reason::AwaitingCanary
        );
        if spec.phase == Phase::Progressing && state.active_state == ActiveState::Active && !gated {
            spec.phase = Phase::Ready;
        }
        if state.active_state == ActiveState::Failed || failure.is_some() {
            if spec.phase == Phase::Progressing {
                spec.phase = Phase::Failed;
                spec.reason = Reason::UnitFailed;
            }
            let why = why_failed(name, state, scope);
            spec.message = if spec.message.is_empty() {
                why
            } else {
                format!("{}; {why}", spec.message)
            };
        }
        spec.unit = state.clone();
    }
    spec
}

/// What systemd says about a failed unit, and where its log is.
fn why_failed(name: &str, state: &UnitState, scope: Scope) -> String {
    let user = if scope == Scope::User { "--user " } else { "" };
    let result = match &state.result {
        UnitResult::Unknown | UnitResult::Success => String::new(),
        UnitResult::ExitCode => format!(
            "the container exited with status {} (Result=exit-code); ",
            state.exec_main_status
        ),
        UnitResult::Signal | UnitResult::CoreDump => format!(
            "the container was killed by signal {} (Result={}); ",
            state.exec_main_status, state.result
        ),
        other => format!("Result={other}; "),
    };
    format!("{result}its log: journalctl {user}-u {}", service(name))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reconcile::apply::ApplyErrorKind;

    fn verdict(phase: Phase, reason: Reason) -> Verdict {
        Verdict {
            phase,
            reason,
            message: String::new(),
            versions: Vec::new(),
        }
    }

    fn unit(active: ActiveState, result: &str, status: i32) -> UnitState {
        UnitState {
            active_state: active,
            result: result.into(),
            exec_main_status: status,
            ..UnitState::default()
        }
    }

    #[test]
    fn an_applied_spec_is_ready_once_its_unit_runs_and_progressing_before() {
        let applied = verdict(Phase::Progressing, Reason::Applied);
        let ready = settle(
            "a",
            &applied,
            None,
            Some(&unit(ActiveState::Active, "", 0)),
            Scope::System,
        );
        assert_eq!((ready.phase, ready.reason), (Phase::Ready, Reason::Applied));
        let starting = settle(
            "a",
            &applied,
            None,
            Some(&unit(ActiveState::Activating, "", 0)),
            Scope::System,
        );
        assert_eq!(starting.phase, Phase::Progressing);
        let unknown = settle("a", &applied, None, None, Scope::System);
        assert_eq!(unknown.phase, Phase::Progressing);
    }

    #[test]
    fn a_failed_unit_says_why_and_where_its_log_is() {
        let applied = verdict(Phase::Progressing, Reason::Applied);
        let spec = settle(
            "web",
            &applied,
            None,
            Some(&unit(ActiveState::Failed, "exit-code", 3)),
            Scope::User,
        );
        assert_eq!(
            (spec.phase, spec.reason),
            (Phase::Failed, Reason::UnitFailed)
        );
        assert_eq!(
            spec.message,
            "the container exited with status 3 (Result=exit-code); its log: journalctl --user -u web.service"
        );
    }

    #[test]
    fn a_failed_action_fails_the_spec_with_its_message() {
        let applied = verdict(Phase::Progressing, Reason::Applied);
        let error = ApplyError {
            kind: ApplyErrorKind::UnitFile,
            message: "cannot write".into(),
        };
        let spec = settle("a", &applied, Some(&error), None, Scope::System);
        assert_eq!(
            (spec.phase, spec.reason),
            (Phase::Failed, Reason::ApplyFailed)
        );
        assert_eq!(spec.message, "cannot write");
    }

    #[test]
    fn a_degraded_spec_stays_degraded_whatever_its_unit_does() {
        let mut kept = verdict(Phase::Degraded, Reason::ProviderUnavailable);
        kept.message = "store down".into();
        let spec = settle(
            "a",
            &kept,
            None,
            Some(&unit(ActiveState::Active, "", 0)),
            Scope::System,
        );
        assert_eq!(
            (spec.phase, spec.reason),
            (Phase::Degraded, Reason::ProviderUnavailable)
        );
        assert_eq!(spec.message, "store down");
    }
}
