//! The command line: argument types and dispatch.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};
use ramlet_quadlet::PodmanVersion;

use crate::units::{Layout, Scope};

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
    /// Print the Quadlet units ramlet would write for a spec file or directory.
    Render {
        /// A spec file (its directory supplies the stores) or a spec directory.
        path: PathBuf,
        /// Which systemd instance the units are for.
        #[arg(long, value_enum, default_value_t = Scope::System)]
        scope: Scope,
        /// The Podman version to render for (default: the installed Quadlet's, else Podman's).
        #[arg(long, value_name = "X.Y")]
        podman_version: Option<PodmanVersion>,
        /// Where RAM volumes are mounted (default: /run/ramlet/volumes, or
        /// /run/ramlet/users/UID in user scope).
        #[arg(long, value_name = "DIR")]
        volume_root: Option<PathBuf>,
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
        Command::Render {
            path,
            scope,
            podman_version,
            volume_root,
        } => {
            let target = match podman_version.map_or_else(crate::podman::detect_version, Ok) {
                Ok(target) => target,
                Err(error) => {
                    eprintln!("ramlet: {error:#}");
                    return ExitCode::from(crate::EX_USAGE);
                }
            };
            let runtime_dir = std::env::var_os("XDG_RUNTIME_DIR").map(PathBuf::from);
            let mut layout = Layout::defaults(scope, current_uid(), runtime_dir.as_deref());
            if let Some(root) = volume_root {
                layout.volume_root = root;
            }
            crate::render::run(&path, &layout, target)
        }
    }
}

/// The real user ID of this process.
fn current_uid() -> u32 {
    use std::os::unix::fs::MetadataExt as _;
    std::fs::metadata("/proc/self").map_or(0, |m| m.uid())
}
