//! Metrics in Prometheus' text format, written after each reconcile to a file that
//! `node_exporter`'s textfile collector reads (`--metrics-file`, off by default: ramlet opens no
//! socket). The file is replaced in one rename, so the collector never reads half of it.
//!
//! What they say: reconciles and how long they take, the last successful one, each spec's
//! phase, the jobs run on units and why, each store's answers (changed, unchanged, or the kind
//! of error), when each certificate in use ends, and the work still owed. No secret value or
//! version is ever a label (a certificate's name in its store is).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;
use std::time::Duration;

use crate::drivers::Job;
use crate::status::{Phase, Status};

/// Upper bounds of the reconcile duration histogram, in seconds.
const BUCKETS: [f64; 8] = [0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 30.0, 120.0];

/// Upper bounds of the rotation duration histogram, in seconds: a restart by hand takes about
/// half a second; a polled store adds up to its refresh interval, a health gate its deadline.
const ROTATION_BUCKETS: [f64; 10] = [0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 3600.0];

/// The phases, as labels (every spec gets each, 1 for its phase and 0 for the others).
const PHASES: [(Phase, &str); 4] = [
    (Phase::Progressing, "Progressing"),
    (Phase::Ready, "Ready"),
    (Phase::Degraded, "Degraded"),
    (Phase::Failed, "Failed"),
];

/// Durations in Prometheus' histogram shape: how many at or under each bound, how many in all,
/// and their sum.
#[derive(Debug)]
struct Histogram<const N: usize> {
    bounds: [f64; N],
    buckets: [u64; N],
    count: u64,
    seconds: f64,
}

impl<const N: usize> Histogram<N> {
    fn new(bounds: [f64; N]) -> Self {
        Self {
            bounds,
            buckets: [0; N],
            count: 0,
            seconds: 0.0,
        }
    }

    fn observe(&mut self, took: Duration) {
        let seconds = took.as_secs_f64();
        for (bound, count) in self.bounds.iter().zip(&mut self.buckets) {
            if seconds <= *bound {
                *count += 1;
            }
        }
        self.count += 1;
        self.seconds += seconds;
    }

    fn render(&self, out: &mut String, name: &str, help: &str) {
        let name = head(out, name, "histogram", help);
        for (bound, count) in self.bounds.iter().zip(self.buckets) {
            line(out, &format!("{name}_bucket{{le=\"{bound}\"}} {count}"));
        }
        line(out, &format!("{name}_bucket{{le=\"+Inf\"}} {}", self.count));
        line(out, &format!("{name}_sum {}", self.seconds));
        line(out, &format!("{name}_count {}", self.count));
    }
}

/// What the agent counted since it started.
#[derive(Debug)]
pub struct Metrics {
    successes: u64,
    failures: u64,
    /// How long reconciles took.
    reconciles: Histogram<{ BUCKETS.len() }>,
    last_success: Option<f64>,
    /// Jobs issued, by job and cause.
    jobs: BTreeMap<(&'static str, &'static str), u64>,
    /// How long finished rotations took.
    rotations: Histogram<{ ROTATION_BUCKETS.len() }>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self {
            successes: 0,
            failures: 0,
            reconciles: Histogram::new(BUCKETS),
            last_success: None,
            jobs: BTreeMap::new(),
            rotations: Histogram::new(ROTATION_BUCKETS),
        }
    }
}

impl Metrics {
    /// Counts one reconcile: how long it took, whether it failed, the jobs it issued (with why).
    pub fn reconciled(&mut self, took: Duration, failed: bool, jobs: &[(Job, &'static str)]) {
        if failed {
            self.failures += 1;
        } else {
            self.successes += 1;
            self.last_success = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .ok()
                .map(|d| d.as_secs_f64());
        }
        self.reconciles.observe(took);
        for (job, cause) in jobs {
            *self.jobs.entry((job.as_str(), cause)).or_default() += 1;
        }
    }

    /// Counts finished rotations, each the time from its new version seen to its consumer's
    /// restart or reload done.
    pub fn rotated(&mut self, took: &[Duration]) {
        for took in took {
            self.rotations.observe(*took);
        }
    }

    /// The text file: these counters, plus what `status`, `answers` (per store: name, kind,
    /// result, count) and `owed` (jobs owed) say now; `leasing` names the stores whose
    /// expiring secrets are leased credentials rather than certificates.
    #[must_use]
    pub fn render(
        &self,
        status: &Status,
        answers: &[(String, &'static str, &'static str, u64)],
        owed: usize,
        leasing: &std::collections::BTreeSet<String>,
    ) -> String {
        let mut out = String::new();
        let name = head(
            &mut out,
            "ramlet_build_info",
            "gauge",
            "Which ramlet this is: 1, with its version as a label.",
        );
        line(
            &mut out,
            &format!("{name}{{version=\"{}\"}} 1", env!("CARGO_PKG_VERSION")),
        );

        self.rotations.render(
            &mut out,
            "ramlet_rotation_duration_seconds",
            "How long rotations take: from a new secret version seen to its consumer restarted or reloaded.",
        );

        let name = head(
            &mut out,
            "ramlet_reconciles_total",
            "counter",
            "Reconciles run, by result.",
        );
        line(
            &mut out,
            &format!("{name}{{result=\"success\"}} {}", self.successes),
        );
        line(
            &mut out,
            &format!("{name}{{result=\"failure\"}} {}", self.failures),
        );

        self.reconciles.render(
            &mut out,
            "ramlet_reconcile_duration_seconds",
            "How long reconciles take.",
        );

        let name = head(
            &mut out,
            "ramlet_last_success_timestamp_seconds",
            "gauge",
            "When the last reconcile without a failure ended (Unix time; 0: none yet).",
        );
        line(
            &mut out,
            &format!("{name} {}", self.last_success.unwrap_or(0.0)),
        );

        let name = head(
            &mut out,
            "ramlet_unit_jobs_total",
            "counter",
            "Jobs issued on container units, by job and cause (spec: its unit file changed; rotation: its secrets changed; remount: a volume's medium or size changed; down: it was not running; owed: an earlier reconcile did not finish it; removed: its spec is gone; rollback: its new secret versions failed the health check).",
        );
        for ((job, cause), count) in &self.jobs {
            line(
                &mut out,
                &format!("{name}{{job=\"{job}\",cause=\"{cause}\"}} {count}"),
            );
        }

        render_state(&mut out, status, answers, owed, leasing);
        out
    }
}

/// Each spec's phase and reason, and when what it runs with ends.
fn render_specs(out: &mut String, status: &Status, leasing: &std::collections::BTreeSet<String>) {
    let name = head(
        out,
        "ramlet_spec_phase",
        "gauge",
        "Each spec's phase: 1 for the phase it is in, 0 for the others.",
    );
    for (spec, state) in &status.specs {
        for (phase, label) in PHASES {
            let on = u8::from(state.phase == phase);
            line(
                out,
                &format!("{name}{{spec=\"{}\",phase=\"{label}\"}} {on}", escape(spec)),
            );
        }
    }

    let name = head(
        out,
        "ramlet_spec_reason",
        "gauge",
        "Each spec's reason (RolledBack, HealthChecking, SecretUnavailable, ...): 1 for the reason it has now.",
    );
    for (spec, state) in &status.specs {
        line(
            out,
            &format!(
                "{name}{{spec=\"{}\",reason=\"{}\"}} 1",
                escape(spec),
                state.reason.as_str()
            ),
        );
    }

    for (family, label, help, leased) in [
        (
            "ramlet_certificate_expiry_timestamp_seconds",
            "certificate",
            "When each certificate a spec's container runs with ends (Unix seconds); ramlet issues the next at about two thirds of its life.",
            false,
        ),
        (
            "ramlet_lease_expiry_timestamp_seconds",
            "credential",
            "When the lease of each leased credential a spec's container runs with ends (Unix seconds); ramlet renews it at about two thirds of each grant, and replaces it before its maximum TTL.",
            true,
        ),
    ] {
        let name = head(out, family, "gauge", help);
        for (spec, state) in &status.specs {
            for secret in &state.secrets {
                if let Some(expires) = secret.expires
                    && leasing.contains(&secret.id.store) == leased
                {
                    line(
                        out,
                        &format!(
                            "{name}{{spec=\"{}\",store=\"{}\",{label}=\"{}\"}} {expires}",
                            escape(spec),
                            escape(&secret.id.store),
                            escape(&secret.id.name)
                        ),
                    );
                }
            }
        }
    }
}

/// The families that say how things are now: phases, spec errors, store answers and health,
/// and owed work.
fn render_state(
    out: &mut String,
    status: &Status,
    answers: &[(String, &'static str, &'static str, u64)],
    owed: usize,
    leasing: &std::collections::BTreeSet<String>,
) {
    render_specs(out, status, leasing);

    let name = head(
        out,
        "ramlet_spec_errors",
        "gauge",
        "Spec documents that do not load (see `ramlet status`).",
    );
    line(out, &format!("{name} {}", status.errors.len()));

    let name = head(
        out,
        "ramlet_secret_fetches_total",
        "counter",
        "Secret store answers, by store and result (changed, unchanged, or the error kind).",
    );
    for (store, kind, result, count) in answers {
        line(
            out,
            &format!(
                "{name}{{store=\"{}\",kind=\"{kind}\",result=\"{result}\"}} {count}",
                escape(store)
            ),
        );
    }

    let name = head(
        out,
        "ramlet_store_healthy",
        "gauge",
        "Whether each store's last refresh answered every secret (1) or not (0).",
    );
    for (store, state) in &status.stores {
        line(
            out,
            &format!(
                "{name}{{store=\"{}\"}} {}",
                escape(store),
                u8::from(state.healthy)
            ),
        );
    }

    let name = head(
        out,
        "ramlet_store_events_listening",
        "gauge",
        "Whether each store's change-event listener receives (1) or not (0; the store is polled at its fallbackInterval).",
    );
    let listeners: Vec<_> = status
        .stores
        .iter()
        .filter_map(|(store, state)| state.events.as_ref().map(|e| (store, e)))
        .collect();
    for (store, events) in &listeners {
        line(
            out,
            &format!(
                "{name}{{store=\"{}\",source=\"{}\"}} {}",
                escape(store),
                events.source,
                u8::from(events.listening)
            ),
        );
    }
    let name = head(
        out,
        "ramlet_store_events_total",
        "counter",
        "Change events received, by store and what they cost: fetched (a fetch of the secret) or unused (no spec here uses it: no fetch).",
    );
    for (store, events) in &listeners {
        for (result, count) in [("fetched", events.fetched), ("unused", events.unused)] {
            line(
                out,
                &format!(
                    "{name}{{store=\"{}\",result=\"{result}\"}} {count}",
                    escape(store)
                ),
            );
        }
    }

    let name = head(
        out,
        "ramlet_owed_jobs",
        "gauge",
        "Jobs owed by earlier reconciles that have not succeeded yet.",
    );
    line(out, &format!("{name} {owed}"));
}

/// A family's `HELP` and `TYPE` lines; returns its name.
fn head(out: &mut String, name: &str, kind: &str, help: &str) -> String {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
    name.to_owned()
}

fn line(out: &mut String, line: &str) {
    out.push_str(line);
    out.push('\n');
}

/// A label value as the text format wants it.
fn escape(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// Replaces `path` with `text` in one rename (a temporary file beside it, 0644: the collector
/// runs as another user, and nothing here is secret).
///
/// # Errors
/// When the folder is not writable.
pub fn write(path: &Path, text: &str) -> std::io::Result<()> {
    crate::statefile::replace(path, text.as_bytes(), 0o644, false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_text_format_holds_counters_phases_and_causes() {
        let mut metrics = Metrics::default();
        metrics.reconciled(
            Duration::from_millis(30),
            false,
            &[(Job::Restart, "rotation"), (Job::Start, "down")],
        );
        metrics.reconciled(Duration::from_secs(2), true, &[(Job::Restart, "rotation")]);
        metrics.rotated(&[Duration::from_millis(700), Duration::from_secs(12)]);
        let mut status = Status::default();
        status.specs.insert(
            "web".into(),
            crate::status::SpecStatus {
                phase: Phase::Ready,
                secrets: vec![
                    crate::status::SecretInUse {
                        id: crate::secrets::SecretId::new("tls", "web"),
                        version: "1a:2b".into(),
                        expires: Some(1_795_872_000),
                    },
                    crate::status::SecretInUse {
                        id: crate::secrets::SecretId::new("aws", "db"),
                        version: "v1".into(),
                        expires: None,
                    },
                    crate::status::SecretInUse {
                        id: crate::secrets::SecretId::new("bao-db", "app"),
                        version: "db/creds/app/x1".into(),
                        expires: Some(1_795_800_000),
                    },
                ],
                ..crate::status::SpecStatus::default()
            },
        );
        status.stores.insert(
            "aws".into(),
            crate::providers::stores::StoreStatus {
                kind: "aws".into(),
                plain_text_at_rest: false,
                healthy: true,
                error_kind: String::new(),
                message: String::new(),
                secrets: 2,
                last_refresh: String::new(),
                next_refresh_secs: 10,
                events: Some(crate::providers::stores::EventsStatus {
                    source: "sqs".into(),
                    from: "https://sqs.eu-west-1.amazonaws.com/123456789012/ramlet".into(),
                    listening: false,
                    error: "cannot reach SQS".into(),
                    fetched: 4,
                    unused: 2,
                }),
                conditions: Vec::new(),
            },
        );
        let answers = [("gcp".to_owned(), "gcp", "permission-denied", 3_u64)];
        let text = metrics.render(&status, &answers, 1, &["bao-db".to_owned()].into());
        for line in [
            "ramlet_reconciles_total{result=\"success\"} 1",
            "ramlet_reconciles_total{result=\"failure\"} 1",
            "ramlet_reconcile_duration_seconds_bucket{le=\"0.05\"} 1",
            "ramlet_reconcile_duration_seconds_bucket{le=\"5\"} 2",
            "ramlet_reconcile_duration_seconds_count 2",
            "ramlet_spec_phase{spec=\"web\",phase=\"Ready\"} 1",
            "ramlet_spec_phase{spec=\"web\",phase=\"Failed\"} 0",
            "ramlet_unit_jobs_total{job=\"restart\",cause=\"rotation\"} 2",
            "ramlet_unit_jobs_total{job=\"start\",cause=\"down\"} 1",
            "ramlet_secret_fetches_total{store=\"gcp\",kind=\"gcp\",result=\"permission-denied\"} 3",
            "ramlet_owed_jobs 1",
            "ramlet_certificate_expiry_timestamp_seconds{spec=\"web\",store=\"tls\",certificate=\"web\"} 1795872000",
            "ramlet_lease_expiry_timestamp_seconds{spec=\"web\",store=\"bao-db\",credential=\"app\"} 1795800000",
            "ramlet_store_events_listening{store=\"aws\",source=\"sqs\"} 0",
            "ramlet_store_events_total{store=\"aws\",result=\"fetched\"} 4",
            "ramlet_store_events_total{store=\"aws\",result=\"unused\"} 2",
            &format!(
                "ramlet_build_info{{version=\"{}\"}} 1",
                env!("CARGO_PKG_VERSION")
            ),
            "ramlet_rotation_duration_seconds_bucket{le=\"0.5\"} 0",
            "ramlet_rotation_duration_seconds_bucket{le=\"1\"} 1",
            "ramlet_rotation_duration_seconds_bucket{le=\"30\"} 2",
            "ramlet_rotation_duration_seconds_bucket{le=\"+Inf\"} 2",
            "ramlet_rotation_duration_seconds_count 2",
        ] {
            assert!(
                text.lines().any(|l| l == line),
                "{line} is missing:\n{text}"
            );
        }
        assert!(text.contains("# TYPE ramlet_reconcile_duration_seconds histogram"));
        // A secret that does not expire has no expiry line.
        assert!(!text.contains("certificate=\"db\""), "{text}");
        // A leased credential is not a certificate.
        assert!(!text.contains("certificate=\"app\""), "{text}");
        assert_eq!(escape("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
    }
}
