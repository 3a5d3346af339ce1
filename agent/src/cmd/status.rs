//! `ramlet status`: what the running agent last wrote in its status file.

use std::process::ExitCode;

use std::fmt::Write as _;

use crate::cmd::format::Format;
use crate::status::Status;

/// `ramlet status`: the status file, printed; 0 when every spec is `Ready` and nothing failed.
#[must_use]
pub fn run(state_dir: &std::path::Path, format: Format) -> ExitCode {
    match crate::status::Status::read(state_dir) {
        Ok(status) => {
            let text = match format {
                Format::Text => text(&status),
                Format::Json => serde_json::to_string_pretty(&status).unwrap_or_default() + "\n",
            };
            print!("{text}");
            let healthy = status.errors.is_empty()
                && status
                    .specs
                    .values()
                    .all(|s| s.phase == crate::status::Phase::Ready);
            if healthy {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            }
        }
        Err(error) => {
            eprintln!("ramlet: no status in {}: {error}", state_dir.display());
            ExitCode::FAILURE
        }
    }
}

/// The human-readable form of `ramlet status`.
#[must_use]
pub fn text(status: &Status) -> String {
    let mut out = format!(
        "updated {}  selinux {}\n",
        status.updated,
        status.selinux.as_str()
    );
    if !status.volumes.is_empty() {
        let _ = writeln!(out, "volumes on {}", status.volumes);
    }
    let width = status
        .specs
        .keys()
        .map(String::len)
        .max()
        .unwrap_or(4)
        .max(4);
    let _ = writeln!(
        out,
        "{:width$}  {:11}  {:10}  {:18}  MESSAGE",
        "SPEC", "PHASE", "UNIT", "REASON"
    );
    for (name, spec) in &status.specs {
        let _ = writeln!(
            out,
            "{name:width$}  {:11}  {:10}  {:18}  {}",
            format!("{:?}", spec.phase),
            spec.unit.active_state,
            spec.reason,
            spec.message
        );
    }
    if !status.stores.is_empty() {
        let width = status
            .stores
            .keys()
            .map(String::len)
            .max()
            .unwrap_or(5)
            .max(5);
        let _ = writeln!(
            out,
            "\n{:width$}  {:5}  {:9}  {:8}  {:16}  MESSAGE",
            "STORE", "KIND", "HEALTHY", "NEXT", "EVENTS"
        );
        for (name, store) in &status.stores {
            let (events, message) = match &store.events {
                None => ("-".to_owned(), store.message.clone()),
                Some(e) if e.listening => {
                    (format!("{} listening", e.source), store.message.clone())
                }
                Some(e) if store.message.is_empty() => {
                    (format!("{} down", e.source), format!("events: {}", e.error))
                }
                Some(e) => (
                    format!("{} down", e.source),
                    format!("{}; events: {}", store.message, e.error),
                ),
            };
            let message = match (store.plain_text_at_rest, message.is_empty()) {
                (false, _) => message,
                (true, true) => PLAIN_AT_REST.to_owned(),
                (true, false) => format!("{message}; {PLAIN_AT_REST}"),
            };
            let _ = writeln!(
                out,
                "{name:width$}  {:5}  {:9}  {:8}  {events:16}  {message}",
                store.kind,
                if store.healthy { "yes" } else { "no" },
                format!("{}s", store.next_refresh_secs),
            );
        }
    }
    for error in &status.errors {
        let _ = writeln!(out, "error: {error}");
    }
    out
}

/// What `ramlet status` says of a `file` store, as `ramlet validate` does.
pub const PLAIN_AT_REST: &str =
    "warning: plain text at rest (a creds or age store keeps secrets sealed)";
