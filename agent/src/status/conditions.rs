//! Conditions in the shape Kubernetes gives them (`metav1.Condition`): each spec and store says
//! `Ready`, `Progressing` and `Degraded`, each `True`, `False` or `Unknown`, with a CamelCase
//! reason, a message, when it last changed (`lastTransitionTime`, kept across agent restarts:
//! it moves only when the condition's status does) and the spec's generation it was worked out
//! for (`observedGeneration`). Tooling that reads `kubectl get -o json` reads these.

pub use crate::condition::Condition;

use super::{Phase, Reason, SpecStatus};
use crate::providers::stores::StoreStatus;

/// One condition, its transition time left empty (see [`carry`]).
fn condition(kind: &str, yes: bool, reason: &str, message: &str, generation: u64) -> Condition {
    Condition {
        kind: kind.to_owned(),
        status: if yes { "True" } else { "False" }.to_owned(),
        reason: reason.to_owned(),
        message: message.to_owned(),
        last_transition_time: String::new(),
        observed_generation: generation,
    }
}

/// A spec's conditions, as its phase and reason say (times left empty: see [`carry`]).
#[must_use]
pub fn of_spec(spec: &SpecStatus, generation: u64) -> Vec<Condition> {
    let reason = spec.reason.as_str().to_owned();
    let condition = |kind: &str, yes: bool, reason: &str, message: &str| {
        condition(kind, yes, reason, message, generation)
    };
    let ready = spec.phase == Phase::Ready;
    let progressing = spec.phase == Phase::Progressing;
    let degraded = matches!(spec.phase, Phase::Degraded | Phase::Failed);
    let said = |yes: bool| if yes { spec.message.as_str() } else { "" };
    vec![
        condition(
            "Ready",
            ready,
            if ready { "Applied" } else { &reason },
            &spec.message,
        ),
        condition(
            "Progressing",
            progressing,
            if progressing { &reason } else { "Settled" },
            said(progressing),
        ),
        condition(
            "Degraded",
            degraded,
            if degraded { &reason } else { "AsAsked" },
            said(degraded),
        ),
    ]
}

/// A store's conditions: `Ready` while its last refresh answered every secret, `Degraded`
/// when it did not (the reason is its error kind in CamelCase); a store is never
/// `Progressing` (it is asked again at its next refresh).
#[must_use]
pub fn of_store(store: &StoreStatus) -> Vec<Condition> {
    let reason = if store.healthy {
        "Healthy".to_owned()
    } else {
        camel(&store.error_kind)
    };
    let condition = |kind: &str, yes: bool, reason: &str, message: &str| {
        condition(kind, yes, reason, message, 0)
    };
    vec![
        condition("Ready", store.healthy, &reason, &store.message),
        condition("Progressing", false, "Settled", ""),
        condition(
            "Degraded",
            !store.healthy,
            &reason,
            if store.healthy { "" } else { &store.message },
        ),
    ]
}

/// `permission-denied` as `PermissionDenied` (empty: `Unknown`).
fn camel(kebab: &str) -> String {
    let word: String = kebab
        .split(['-', '_', ' '])
        .filter(|w| !w.is_empty())
        .map(|w| {
            let mut chars = w.chars();
            chars.next().map_or_else(String::new, |c| {
                c.to_ascii_uppercase().to_string() + chars.as_str()
            })
        })
        .collect();
    if word.is_empty() {
        Reason::Unknown.as_str().to_owned()
    } else {
        word
    }
}

/// Gives each of `conditions` its `lastTransitionTime`: the one `before` had for the same type
/// while the status is the same, else `now`.
pub fn carry(conditions: &mut [Condition], before: &[Condition], now: &str) {
    for condition in conditions {
        condition.last_transition_time = before
            .iter()
            .find(|b| b.kind == condition.kind && b.status == condition.status)
            .map_or_else(|| now.to_owned(), |b| b.last_transition_time.clone());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(phase: Phase, reason: Reason) -> SpecStatus {
        SpecStatus {
            phase,
            reason,
            message: "the message".into(),
            ..SpecStatus::default()
        }
    }

    #[test]
    fn each_phase_is_one_true_condition() {
        for (phase, reason, on) in [
            (Phase::Ready, Reason::Applied, "Ready"),
            (Phase::Progressing, Reason::HealthChecking, "Progressing"),
            (Phase::Degraded, Reason::RolledBack, "Degraded"),
            (Phase::Failed, Reason::SecretNotFound, "Degraded"),
        ] {
            let conditions = of_spec(&spec(phase, reason), 3);
            let kinds: Vec<&str> = conditions.iter().map(|c| c.kind.as_str()).collect();
            assert_eq!(kinds, ["Ready", "Progressing", "Degraded"]);
            for c in &conditions {
                assert_eq!(c.status == "True", c.kind == on, "{phase:?}: {c:?}");
                assert_eq!(c.observed_generation, 3);
                assert!(!c.reason.is_empty());
            }
            let on = conditions.iter().find(|c| c.status == "True").unwrap();
            if on.kind != "Ready" {
                assert_eq!(on.reason, reason.as_str());
                assert_eq!(on.message, "the message");
            }
        }
    }

    #[test]
    fn a_transition_time_moves_only_with_the_status() {
        let mut before = of_spec(&spec(Phase::Ready, Reason::Applied), 1);
        carry(&mut before, &[], "2026-01-01T00:00:00Z");
        let mut same = of_spec(&spec(Phase::Ready, Reason::Applied), 2);
        carry(&mut same, &before, "2026-01-02T00:00:00Z");
        assert!(
            same.iter()
                .all(|c| c.last_transition_time == "2026-01-01T00:00:00Z")
        );
        let mut moved = of_spec(&spec(Phase::Degraded, Reason::RolledBack), 2);
        carry(&mut moved, &same, "2026-01-03T00:00:00Z");
        let at = |kind: &str| {
            moved
                .iter()
                .find(|c| c.kind == kind)
                .unwrap()
                .last_transition_time
                .clone()
        };
        assert_eq!(at("Ready"), "2026-01-03T00:00:00Z");
        assert_eq!(at("Degraded"), "2026-01-03T00:00:00Z");
        assert_eq!(at("Progressing"), "2026-01-01T00:00:00Z");
    }

    #[test]
    fn store_reasons_are_camel_case() {
        assert_eq!(camel("permission-denied"), "PermissionDenied");
        assert_eq!(camel(""), "Unknown");
    }
}
