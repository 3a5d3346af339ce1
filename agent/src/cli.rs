//! The command line: argument types and dispatch.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::cmd::format::Format;
use ramlet_quadlet::PodmanVersion;

use anyhow::Context as _;

use crate::config::{Config, ConfigError, Flags};
use crate::layout::{Layout, Scope};

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
        #[arg(long, value_name = "LABELS", value_parser = crate::cmd::args::parse_labels)]
        host_labels: Option<std::collections::BTreeMap<String, String>>,
        /// A host's ramlet configuration: also check the specs against its `policy`.
        #[arg(long, value_name = "FILE")]
        config: Option<PathBuf>,
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
    /// Run the agent: keep this host converged with the spec directory.
    Run(RunArgs),
    /// Show what the running agent reports: per spec, phase, unit state and reason.
    Status {
        /// Output format.
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
        /// Which agent: the same options as `ramlet run` pick its state directory.
        #[command(flatten)]
        agent: RunArgs,
    },
    /// Show what a reconcile would do on this host now, and why, without doing it: units written
    /// (with their diff), started, restarted, reloaded, stopped. Exit 0 when nothing would
    /// change, 2 when something would.
    Plan {
        /// Output format.
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
        /// Which host setup: the same options as `ramlet run`.
        #[command(flatten)]
        agent: RunArgs,
    },
    /// Seal a new value of a secret into a `creds` or `age` store: the value is read from
    /// standard input (never a flag), sealed with systemd-creds (creds: on this host) or
    /// encrypted to the store's recipients (age: beside the specs, for a commit). The running
    /// agent sees it as a new version. Exit 0 when sealed, 1 when sealing failed, 64 for a
    /// store or a name that cannot take it.
    Seal {
        /// The store: `metadata.name` of a `SecretStore` in the spec directory.
        store: String,
        /// The secret's name, as specs name it (`prod/db`).
        secret: String,
        /// creds: which key seals it (systemd-creds `--with-key`).
        #[arg(long, value_enum, default_value_t = crate::providers::creds::WithKey::Auto)]
        with_key: crate::providers::creds::WithKey,
        /// age: write the ASCII-armored form instead of binary.
        #[arg(long)]
        armor: bool,
        /// The spec directory (default: the config file's `specDir`, else /etc/ramlet/specs).
        #[arg(long, value_name = "DIR")]
        spec_dir: Option<PathBuf>,
        /// A host's ramlet configuration: its `specDir` and `policy`.
        #[arg(long, value_name = "FILE")]
        config: Option<PathBuf>,
    },
    /// Ask the running agent to reconcile now (sends it SIGHUP).
    Sync {
        /// Let SPEC try again the versions its health check rolled back (a version that failed
        /// once is otherwise left alone until a newer one comes). Repeat for several specs.
        #[arg(long, value_name = "SPEC")]
        retry: Vec<String>,
        /// Which agent: the same options as `ramlet run` pick its state directory.
        #[command(flatten)]
        agent: RunArgs,
    },
    /// Make a volume root RAM that cannot swap, in this mount namespace (root;
    /// `dist/ramlet-volume-root.service` runs it before ramlet, and
    /// `ramlet-user-volume-root@UID.service` for a user's ramlet): a noswap tmpfs, or a ramfs on
    /// a kernel without tmpfs `noswap` (before Linux 6.4). A noswap tmpfs or ramfs already there
    /// is kept; any other mount there is refused (exit 1).
    MountVolumeRoot {
        /// The volume root.
        #[arg(long, value_name = "DIR", default_value = "/run/ramlet/volumes")]
        volume_root: PathBuf,
        /// The tmpfs's size, in tmpfs's own syntax (a ramfs has none).
        #[arg(long, value_name = "SIZE", default_value = "256m", value_parser = crate::cmd::args::tmpfs_size)]
        size: String,
        /// Give the root to this user (a name or uid) and their primary group: the volume root
        /// of that user's ramlet, in user scope (`/run/ramlet/users/<uid>`).
        #[arg(long, value_name = "USER", value_parser = crate::cmd::args::volume_owner)]
        owner: Option<crate::host::volumes::Owner>,
    },
}

/// `ramlet run`'s options; each overrides the config file.
#[derive(Debug, Clone, clap::Args)]
pub struct RunArgs {
    /// A YAML config file with the same settings (specDir, scope, unitDir, volumeRoot, stateDir,
    /// bus, hostLabels, podmanVersion).
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// The spec directory (default /etc/ramlet/specs).
    #[arg(long, value_name = "DIR")]
    pub spec_dir: Option<PathBuf>,
    /// system (root, system bus) or user (a limited user, session bus); default: by user.
    #[arg(long, value_enum)]
    pub scope: Option<Scope>,
    /// ramlet's unit folder (default: the scope's Quadlet runtime directory + /ramlet).
    #[arg(long, value_name = "DIR")]
    pub unit_dir: Option<PathBuf>,
    /// The RAM volume root (default /run/ramlet/volumes, or /run/ramlet/users/UID).
    #[arg(long, value_name = "DIR")]
    pub volume_root: Option<PathBuf>,
    /// Where the status and pid files go (default /run/ramlet/state, or `$XDG_RUNTIME_DIR/ramlet`).
    #[arg(long, value_name = "DIR")]
    pub state_dir: Option<PathBuf>,
    /// system, session, or a D-Bus address such as unix:path=/run/user/1000/bus.
    #[arg(long, value_name = "BUS")]
    pub bus: Option<String>,
    /// This host's labels, `key=value,...`.
    #[arg(long, value_name = "LABELS", value_parser = crate::cmd::args::parse_labels)]
    pub host_labels: Option<std::collections::BTreeMap<String, String>>,
    /// The Podman version to render for (default: detected).
    #[arg(long, value_name = "X.Y")]
    pub podman_version: Option<PodmanVersion>,
    /// Write metrics in Prometheus' text format to this file after each reconcile (for
    /// the textfile collector of Prometheus' node exporter; off by default).
    #[arg(long, value_name = "FILE")]
    pub metrics_file: Option<PathBuf>,
}

impl RunArgs {
    fn config(self) -> Result<Config, ConfigError> {
        let flags = Flags {
            config: self.config,
            spec_dir: self.spec_dir,
            scope: self.scope,
            unit_dir: self.unit_dir,
            volume_root: self.volume_root,
            state_dir: self.state_dir,
            bus: self.bus,
            host_labels: self.host_labels,
            podman_version: self.podman_version,
            metrics_file: self.metrics_file,
        };
        let runtime_dir = std::env::var_os("XDG_RUNTIME_DIR").map(PathBuf::from);
        Config::resolve(flags, current_uid(), runtime_dir.as_deref())
    }
}

/// Runs a parsed command line.
#[must_use]
pub fn run(cli: Cli) -> ExitCode {
    match cli.command {
        Command::Validate {
            dir,
            format,
            host_labels,
            config,
        } => crate::cmd::validate::run(&dir, format, host_labels.as_ref(), config.as_deref()),
        Command::Render {
            path,
            scope,
            podman_version,
            volume_root,
        } => {
            let target = match podman_version.map_or_else(crate::host::podman::detect_version, Ok) {
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
            crate::cmd::render::run(&path, &layout, target)
        }
        Command::Run(args) => match args.config() {
            Ok(config) => run_agent(config),
            Err(error) => usage(&error),
        },
        Command::Status { format, agent } => match agent.config() {
            Ok(config) => crate::cmd::status::run(&config.state_dir, format),
            Err(error) => usage(&error),
        },
        Command::Plan { format, agent } => match agent.config() {
            Ok(config) => crate::cmd::plan::run(&config, format),
            Err(error) => usage(&error),
        },
        Command::MountVolumeRoot {
            volume_root,
            size,
            owner,
        } => match crate::host::volumes::mount_root(&volume_root, &size, owner) {
            Ok(done) => {
                println!("{}: {done}", volume_root.display());
                ExitCode::SUCCESS
            }
            Err(error) => {
                eprintln!("ramlet: {error}");
                ExitCode::FAILURE
            }
        },
        Command::Seal {
            store,
            secret,
            with_key,
            armor,
            spec_dir,
            config,
        } => {
            let file = match config.as_deref().map(crate::config::File::read).transpose() {
                Ok(file) => file.unwrap_or_default(),
                Err(error) => return usage(&error),
            };
            let spec_dir = spec_dir
                .or(file.spec_dir)
                .unwrap_or_else(|| PathBuf::from("/etc/ramlet/specs"));
            let request = crate::cmd::seal::Request {
                spec_dir: &spec_dir,
                policy: &file.policy,
                store: &store,
                secret: &secret,
                with_key,
                armor,
            };
            crate::cmd::seal::run(&request, &mut std::io::stdin().lock())
        }
        Command::Sync { agent, retry } => match agent.config() {
            Ok(config) => match crate::reconcile::owed::ask_retry(&config.state_dir, &retry)
                .map_err(anyhow::Error::from)
                .and_then(|()| crate::agent::sync(&config.state_dir))
            {
                Ok(()) => ExitCode::SUCCESS,
                Err(error) => {
                    eprintln!("ramlet: {error:#}");
                    ExitCode::FAILURE
                }
            },
            Err(error) => usage(&error),
        },
    }
}

fn usage(error: &dyn std::fmt::Display) -> ExitCode {
    eprintln!("ramlet: {error}");
    ExitCode::from(crate::EX_USAGE)
}

fn run_agent(config: Config) -> ExitCode {
    init_tracing(config.layout.scope);
    let runtime = match crate::cmd::runtime() {
        Ok(runtime) => runtime,
        Err(code) => return code,
    };
    let result = runtime.block_on(async {
        // First of all: a SIGTERM, SIGINT or SIGHUP that arrives while ramlet starts or runs its
        // first reconcile is handled, not fatal.
        let signals = crate::agent::Signals::install().context("cannot handle signals")?;
        crate::agent::run(config, signals).await
    });
    // A blocking task still running (a spec load given up on a file system that hangs) must not
    // hold the exit: dropping the runtime would wait for it.
    runtime.shutdown_timeout(std::time::Duration::from_secs(1));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!("{error:#}");
            eprintln!("ramlet: {error:#}");
            ExitCode::FAILURE
        }
    }
}

/// Logs go to the journal natively when stderr is the journal (systemd says so in
/// `JOURNAL_STREAM`), with each event's fields as journal fields under the `RAMLET_` prefix
/// (`RAMLET_SPEC=`, `RAMLET_UNIT=`, `RAMLET_STORE=`, `RAMLET_ACTION=`, `RAMLET_REASON=`), the
/// unit an event is about as `OBJECT_SYSTEMD_UNIT=` (or `OBJECT_SYSTEMD_USER_UNIT=` in user
/// scope) and its `MESSAGE_ID=` (see [`crate::host::journald`]), so that `journalctl -u
/// ramlet RAMLET_SPEC=web` tells one spec's story and `journalctl -u web.service` shows
/// ramlet's lines about web; as plain text otherwise. Whatever `RAMLET_LOG` says, other
/// crates' events are capped ([`within_cap`]).
fn init_tracing(scope: Scope) {
    use tracing_subscriber::layer::SubscriberExt as _;
    use tracing_subscriber::util::SubscriberInitExt as _;
    let filter = || {
        tracing_subscriber::EnvFilter::try_from_env("RAMLET_LOG")
            .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"))
    };
    let cap = tracing_subscriber::filter::filter_fn(within_cap);
    if stderr_is_the_journal()
        && let Ok(journal) =
            crate::host::journald::Journald::new(crate::host::journald::SOCKET, scope)
    {
        let _ = tracing_subscriber::registry()
            .with(filter())
            .with(cap)
            .with(journal)
            .try_init();
        return;
    }
    let filter = filter();
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(ansi)
        .with_writer(std::io::stderr)
        .finish()
        .with(cap)
        .try_init();
}

/// Whether an event or span of another crate may be logged at all: up to `INFO`, and the cloud
/// SDKs' (`google_cloud_*`, `aws_*`) up to `WARN`, whatever `RAMLET_LOG` asks for. Their
/// `DEBUG` and `TRACE` events can carry request and response bodies, that is, secret values
/// (the AWS SDK's with `LOG_SENSITIVE_BODIES=true`; the Google client's `#[instrument(ret)]`
/// spans, at `INFO`, with `GOOGLE_CLOUD_RUST_LOGGING=true`), so no environment turns them on.
fn within_cap(meta: &tracing::Metadata<'_>) -> bool {
    let target = meta.target();
    if target == "ramlet" || target.starts_with("ramlet::") || target.starts_with("ramlet_") {
        return true;
    }
    let cap = if target.starts_with("google_cloud") || target.starts_with("aws_") {
        tracing::Level::WARN
    } else {
        tracing::Level::INFO
    };
    *meta.level() <= cap
}

/// The prefix of ramlet's own journal fields (an event's `spec` field becomes `RAMLET_SPEC`).
pub const JOURNAL_FIELD_PREFIX: &str = crate::host::journald::FIELD_PREFIX;

/// Whether stderr is the stream systemd connected to the journal: `JOURNAL_STREAM` holds its
/// device and inode (`DEV:INO`), which must be stderr's own (a child of a journald-logged
/// process inherits the variable, not the stream).
fn stderr_is_the_journal() -> bool {
    let Some(stream) = std::env::var_os("JOURNAL_STREAM") else {
        return false;
    };
    let Ok(stat) = nix::sys::stat::fstat(std::io::stderr()) else {
        return false;
    };
    stream.to_string_lossy() == format!("{}:{}", stat.st_dev, stat.st_ino)
}

/// The real user ID of this process (not `/proc/self`'s owner: that is root once the agent
/// makes itself non-dumpable).
fn current_uid() -> u32 {
    nix::unistd::getuid().as_raw()
}
