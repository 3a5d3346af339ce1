//! Never past the end: a spec with `rotation.onExpiry: stop` whose container would run on a
//! secret (a certificate, a leased credential) that ends within [`EXPIRY_MARGIN`] unrenewed is
//! stopped, with its reason, and the loop wakes when the next such end nears.

use std::time::Duration;

use super::super::facts::{Facts, NameCheck, SpecFacts};
use super::super::plan::Verdict;
use crate::status::{Phase, Reason};

/// How long before a secret's end a container that runs on it unrenewed is stopped
/// (`rotation.onExpiry: stop`): a renewal falls well before (a third of the life or of the
/// lease's TTL is left), so this is reached only when renewing failed.
pub const EXPIRY_MARGIN: Duration = Duration::from_secs(10);

/// The versions `spec`'s container runs with once this plan is applied: what it asks for, or,
/// when that cannot be had now, what it runs.
fn after_plan(spec: &SpecFacts) -> &[crate::status::SecretInUse] {
    match &spec.wants {
        Ok(wants) => &wants.versions,
        Err(_) => &spec.live,
    }
}

/// The verdict of a spec to stop because a secret it would run with ends within
/// [`EXPIRY_MARGIN`] of now unrenewed (with `rotation.onExpiry: stop`), if it is one.
pub(super) fn expired(spec: &SpecFacts, facts: &Facts) -> Option<Verdict> {
    if !spec.stop_before_end || !matches!(spec.name_check, NameCheck::Ours | NameCheck::Free) {
        return None;
    }
    let versions = after_plan(spec);
    let secret = versions
        .iter()
        .filter(|v| {
            v.expires
                .is_some_and(|end| end.saturating_mul(1000) <= facts.now + margin_ms())
        })
        .min_by_key(|v| v.expires)?;
    let end = secret.expires.unwrap_or_default();
    let when = if end.saturating_mul(1000) <= facts.now {
        "ended"
    } else {
        "ends"
    };
    Some(Verdict {
        phase: Phase::Degraded,
        reason: Reason::SecretExpiring,
        message: format!(
            "{} (version {}) {when} at {} and its store has not renewed it: the container is stopped until a valid one comes (rotation.onExpiry: stop; `ramlet status` says why the store fails)",
            secret.id,
            secret.version,
            crate::util::rfc3339(end)
        ),
        versions: versions.to_vec(),
    })
}

fn margin_ms() -> u64 {
    u64::try_from(EXPIRY_MARGIN.as_millis()).unwrap_or(u64::MAX)
}

/// How long until the next secret a stopping spec would run with comes within
/// [`EXPIRY_MARGIN`] of its end: the loop looks again then, whatever else it waits for.
pub(super) fn next_end(facts: &Facts) -> Option<Duration> {
    facts
        .specs
        .iter()
        .filter(|s| s.stop_before_end)
        .flat_map(after_plan)
        .filter_map(|v| v.expires)
        .map(|end| end.saturating_mul(1000).saturating_sub(margin_ms()))
        .filter(|at| *at > facts.now)
        .min()
        .map(|at| Duration::from_millis(at - facts.now))
}
