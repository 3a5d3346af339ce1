//! The command line: argument types and dispatch.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};

/// Keeps Podman containers fed with secrets that never touch a disk.
#[derive(Debug, Parser)]
#[command(name = "ramlet", version, about)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Check a spec directory: exit 0 if every document is valid, 1 if any is not.
    Validate {
        /// The spec directory (every *.yaml and *.yml below it, hidden paths skipped).
        dir: PathBuf,
        /// Output format.
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
        /// This host's labels, `key=value,...`: also say which containers the host would run.
        #[arg(long, value_name = "LABELS", value_parser = parse_labels)]
        host_labels: Option<std::collections::BTreeMap<String, String>>,
    },
}

/// Output formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// For people: one line per error, like a compiler.
    Text,
    /// For tools: one JSON object.
    Json,
}

fn parse_labels(text: &str) -> Result<std::collections::BTreeMap<String, String>, String> {
    ramlet_specs::parse_host_labels(text)
}

/// Runs a parsed command line.
#[must_use]
pub fn run(cli: Cli) -> ExitCode {
    match cli.command {
        Command::Validate {
            dir,
            format,
            host_labels,
        } => crate::validate::run(&dir, format, host_labels.as_ref()),
    }
}
