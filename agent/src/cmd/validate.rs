//! `ramlet validate DIR`: loads a spec directory the way the agent would and reports every error,
//! so a `GitOps` repo can refuse a bad spec before it reaches a host.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;
use std::process::ExitCode;

use ramlet_specs::{Catalog, SpecError};
use serde::Serialize;

use crate::cmd::format::Format;

/// What `validate` found, in the shape `--format json` prints.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Report<'a> {
    /// Whether every document is valid.
    pub valid: bool,
    /// The spec files read.
    pub files: Vec<String>,
    /// Names of the valid stores.
    pub stores: Vec<&'a str>,
    /// Names of the valid containers.
    pub containers: Vec<&'a str>,
    /// Every error.
    pub errors: &'a [SpecError],
    /// What is valid but unwise: a `file` store keeps its secrets in plain text at rest.
    pub warnings: Vec<String>,
    /// With `--host-labels`: what this host would run.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub host: Option<HostReport<'a>>,
}

/// Which valid containers a host with the given labels would run.
#[derive(Debug, Serialize)]
pub struct HostReport<'a> {
    /// The host's labels.
    pub labels: &'a BTreeMap<String, String>,
    /// Containers whose selector matches.
    pub selected: Vec<&'a str>,
    /// Containers whose selector does not.
    pub skipped: Vec<&'a str>,
}

impl<'a> Report<'a> {
    /// Builds the report of a loaded catalog.
    #[must_use]
    pub fn new(catalog: &'a Catalog, host_labels: Option<&'a BTreeMap<String, String>>) -> Self {
        let host = host_labels.map(|labels| {
            let (selected, skipped) = catalog
                .containers
                .values()
                .partition::<Vec<_>, _>(|c| c.host_selector.matches(labels));
            HostReport {
                labels,
                selected: selected.iter().map(|c| c.name.as_str()).collect(),
                skipped: skipped.iter().map(|c| c.name.as_str()).collect(),
            }
        });
        Self {
            valid: catalog.is_valid(),
            files: catalog
                .files
                .iter()
                .map(|f| f.display().to_string())
                .collect(),
            stores: catalog
                .stores
                .keys()
                .map(ramlet_specs::model::Name::as_str)
                .collect(),
            containers: catalog
                .containers
                .keys()
                .map(ramlet_specs::model::Name::as_str)
                .collect(),
            errors: &catalog.errors,
            warnings: catalog
                .stores
                .values()
                .filter_map(|store| {
                    let can = crate::providers::capabilities(&store.provider);
                    let folder = can.folder.filter(|_| can.plain_at_rest)?;
                    Some(format!(
                        "{}: store {}: warning: plain text at rest: its secrets lie unencrypted in {}, and in any backup of it; a creds store (systemd-creds) or an age store keeps them sealed",
                        store.origin.file.display(),
                        store.name.as_str(),
                        folder.display()
                    ))
                })
                .collect(),
            host,
        }
    }

    /// The human-readable form.
    #[must_use]
    pub fn text(&self) -> String {
        use std::fmt::Write as _;
        let mut out = String::new();
        for error in self.errors {
            let _ = writeln!(out, "{error}");
        }
        for warning in &self.warnings {
            let _ = writeln!(out, "{warning}");
        }
        let plural = |n: usize, word: &str| format!("{n} {word}{}", if n == 1 { "" } else { "s" });
        let verdict = if self.valid {
            "valid".to_owned()
        } else {
            plural(self.errors.len(), "error")
        };
        let _ = writeln!(
            out,
            "{}, {}, {}: {verdict}",
            plural(self.files.len(), "file"),
            plural(self.stores.len(), "valid store"),
            plural(self.containers.len(), "valid container"),
        );
        if let Some(host) = &self.host {
            let labels: Vec<String> = host
                .labels
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect();
            let list = |names: &[&str]| {
                if names.is_empty() {
                    "nothing".to_owned()
                } else {
                    names.join(", ")
                }
            };
            let _ = writeln!(
                out,
                "host [{}] runs: {}",
                labels.join(","),
                list(&host.selected)
            );
            let _ = writeln!(
                out,
                "host [{}] skips: {}",
                labels.join(","),
                list(&host.skipped)
            );
        }
        out
    }
}

/// Runs `ramlet validate`: 0 when valid, 1 when not, 64 when the directory cannot be read.
#[must_use]
pub fn run(
    dir: &Path,
    format: Format,
    host_labels: Option<&BTreeMap<String, String>>,
    config: Option<&Path>,
) -> ExitCode {
    let policy = match config.map(crate::config::File::read).transpose() {
        Ok(file) => ramlet_specs::Policy {
            host_labels: host_labels.cloned(),
            ..file.map(|f| f.policy).unwrap_or_default()
        },
        Err(error) => {
            eprintln!("ramlet: {error}");
            return ExitCode::from(crate::EX_USAGE);
        }
    };
    let catalog = match ramlet_specs::load_dir_with(dir, &policy) {
        Ok(catalog) => catalog,
        Err(error) => {
            eprintln!("ramlet: {error}");
            return ExitCode::from(crate::EX_USAGE);
        }
    };
    let report = Report::new(&catalog, host_labels);
    let text = match format {
        Format::Text => report.text(),
        Format::Json => serde_json::to_string_pretty(&report).unwrap_or_default() + "\n",
    };
    // A closed stdout (`ramlet validate | head`) is not worth a panic.
    let _ = std::io::stdout().write_all(text.as_bytes());
    if report.valid {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
