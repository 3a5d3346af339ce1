//! `ramlet run`'s configuration: an optional YAML file, then command-line flags on top, then
//! per-scope defaults. A bad configuration exits 64 with a message that names the problem.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use ramlet_quadlet::PodmanVersion;
use serde::Deserialize;

use crate::host::systemd::Bus;
use crate::layout::{Layout, Scope};

/// The configuration file (`--config`); every field is optional and a flag overrides it.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct File {
    /// The spec directory.
    pub spec_dir: Option<PathBuf>,
    /// `system` or `user`.
    pub scope: Option<String>,
    /// ramlet's unit folder.
    pub unit_dir: Option<PathBuf>,
    /// The RAM volume root.
    pub volume_root: Option<PathBuf>,
    /// Where the status file goes.
    pub state_dir: Option<PathBuf>,
    /// `system`, `session`, or a D-Bus address.
    pub bus: Option<String>,
    /// This host's labels.
    #[serde(default)]
    pub host_labels: BTreeMap<String, String>,
    /// The Podman version to render for.
    pub podman_version: Option<String>,
    /// This host's limits on what specs may do; no spec can lift them.
    #[serde(default)]
    pub policy: ramlet_specs::Policy,
    /// Where to write metrics in Prometheus' text format after each reconcile.
    pub metrics_file: Option<PathBuf>,
}

/// The settled configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// The spec directory.
    pub spec_dir: PathBuf,
    /// Units and volumes.
    pub layout: Layout,
    /// Where the status file and pid file go.
    pub state_dir: PathBuf,
    /// How to reach systemd.
    pub bus: Bus,
    /// This host's labels.
    pub host_labels: BTreeMap<String, String>,
    /// The Podman version to render for (`None`: detect).
    pub podman_version: Option<PodmanVersion>,
    /// The longest a debounce waits for more wake-ups before a reconcile (`agent::debounce`).
    pub debounce: Duration,
    /// How long a systemd job may take.
    pub job_timeout: Duration,
    /// This host's limits on what specs may do.
    pub policy: ramlet_specs::Policy,
    /// Where to write metrics after each reconcile (`None`: nowhere).
    pub metrics_file: Option<PathBuf>,
}

/// The command-line overrides (from `ramlet run`'s flags).
#[derive(Debug, Clone, Default)]
pub struct Flags {
    /// `--config`.
    pub config: Option<PathBuf>,
    /// `--spec-dir`.
    pub spec_dir: Option<PathBuf>,
    /// `--scope`.
    pub scope: Option<Scope>,
    /// `--unit-dir`.
    pub unit_dir: Option<PathBuf>,
    /// `--volume-root`.
    pub volume_root: Option<PathBuf>,
    /// `--state-dir`.
    pub state_dir: Option<PathBuf>,
    /// `--bus`.
    pub bus: Option<String>,
    /// `--host-labels`.
    pub host_labels: Option<BTreeMap<String, String>>,
    /// `--podman-version`.
    pub podman_version: Option<PodmanVersion>,
    /// `--metrics-file`.
    pub metrics_file: Option<PathBuf>,
}

/// A configuration problem (exit 64).
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file cannot be read.
    #[error("cannot read config {}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The file does not parse.
    #[error("config {}: {message}", path.display())]
    Parse {
        /// The file.
        path: PathBuf,
        /// serde's message, with line and column.
        message: String,
    },
    /// A value is wrong.
    #[error("{0}")]
    Invalid(String),
}

impl File {
    /// Reads and parses a configuration file.
    pub fn read(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        // A file of comments only (the shipped default) is an empty configuration.
        let file: Self = serde_yaml::from_str::<Option<Self>>(&text)
            .map_err(|e| ConfigError::Parse {
                path: path.to_owned(),
                message: e.to_string(),
            })?
            .unwrap_or_default();
        for dir in &file.policy.store_directories {
            if !dir.is_absolute() {
                return Err(ConfigError::Invalid(format!(
                    "config {}: policy.storeDirectories: {} is not an absolute path",
                    path.display(),
                    dir.display()
                )));
            }
        }
        if let Some(problem) = file.policy.problems().into_iter().next() {
            return Err(ConfigError::Invalid(format!(
                "config {}: {problem}",
                path.display()
            )));
        }
        Ok(file)
    }
}

impl Config {
    /// Settles flags, file and defaults. `uid` and `runtime_dir` pick the user-scope defaults.
    pub fn resolve(
        flags: Flags,
        uid: u32,
        runtime_dir: Option<&Path>,
    ) -> Result<Self, ConfigError> {
        let file = match &flags.config {
            None => File::default(),
            Some(path) => File::read(path)?,
        };
        let scope = match (flags.scope, file.scope.as_deref()) {
            (Some(scope), _) => scope,
            (None, None) => {
                if uid == 0 {
                    Scope::System
                } else {
                    Scope::User
                }
            }
            (None, Some("system")) => Scope::System,
            (None, Some("user")) => Scope::User,
            (None, Some(other)) => {
                return Err(ConfigError::Invalid(format!(
                    "scope {other:?} is not `system` or `user`"
                )));
            }
        };
        let mut layout = Layout::defaults(scope, uid, runtime_dir);
        if let Some(dir) = flags.unit_dir.or(file.unit_dir) {
            layout.unit_dir = dir;
        }
        if let Some(root) = flags.volume_root.or(file.volume_root) {
            layout.volume_root = root;
        }
        let spec_dir = flags
            .spec_dir
            .or(file.spec_dir)
            .unwrap_or_else(|| PathBuf::from("/etc/ramlet/specs"));
        let state_dir = flags
            .state_dir
            .or(file.state_dir)
            .unwrap_or_else(|| match scope {
                Scope::System => PathBuf::from("/run/ramlet/state"),
                Scope::User => crate::layout::user_runtime_dir(uid, runtime_dir).join("ramlet"),
            });
        let bus = parse_bus(flags.bus.or(file.bus).as_deref(), scope)?;
        let host_labels = if let Some(labels) = flags.host_labels {
            labels
        } else {
            for (k, v) in &file.host_labels {
                ramlet_specs::parse_host_labels(&format!("{k}={v}"))
                    .map_err(ConfigError::Invalid)?;
            }
            file.host_labels
        };
        let podman_version = match (flags.podman_version, file.podman_version) {
            (Some(v), _) => Some(v),
            (None, Some(text)) => Some(
                text.parse()
                    .map_err(|e| ConfigError::Invalid(format!("podmanVersion: {e}")))?,
            ),
            (None, None) => None,
        };
        check_paths(&spec_dir, &layout, &state_dir)?;
        if scope == Scope::User && !file.policy.deny_addresses.is_empty() {
            return Err(ConfigError::Invalid(
                "policy.denyAddresses is for system scope: it is systemd's IPAddressDeny=, which a user manager cannot enforce; set it on the host's system-scope agent, or block the addresses in the host's firewall".into(),
            ));
        }
        let metrics_file = flags.metrics_file.or(file.metrics_file);
        if let Some(path) = metrics_file.as_ref().filter(|p| !p.is_absolute()) {
            return Err(ConfigError::Invalid(format!(
                "metricsFile {} must be an absolute path",
                path.display()
            )));
        }
        Ok(Self {
            spec_dir,
            layout,
            state_dir,
            bus,
            host_labels: host_labels.clone(),
            podman_version,
            debounce: Duration::from_millis(200),
            job_timeout: Duration::from_secs(90),
            policy: ramlet_specs::Policy {
                host_labels: Some(host_labels),
                ..file.policy
            },
            metrics_file,
        })
    }
}

/// `system`, `session`, or an address; the scope's bus when absent.
fn parse_bus(text: Option<&str>, scope: Scope) -> Result<Bus, ConfigError> {
    Ok(match text {
        None => match scope {
            Scope::System => Bus::System,
            Scope::User => Bus::Session,
        },
        Some("system") => Bus::System,
        Some("session") => Bus::Session,
        Some(address) if address.contains(':') => Bus::Address(address.to_owned()),
        Some(other) => {
            return Err(ConfigError::Invalid(format!(
                "bus {other:?} is not `system`, `session` or an address such as unix:path=/run/user/1000/bus"
            )));
        }
    })
}

/// Every path is absolute, and safe in a unit file's `Volume=`.
fn check_paths(spec_dir: &Path, layout: &Layout, state_dir: &Path) -> Result<(), ConfigError> {
    let paths = [
        ("specDir", spec_dir),
        ("unitDir", &layout.unit_dir),
        ("volumeRoot", &layout.volume_root),
        ("stateDir", state_dir),
    ];
    for (what, path) in paths {
        if !path.is_absolute() {
            return Err(ConfigError::Invalid(format!(
                "{what} {} must be an absolute path",
                path.display()
            )));
        }
        if path.to_string_lossy().contains([':', ',', '\n']) {
            return Err(ConfigError::Invalid(format!(
                "{what} {} must not contain ':', ',' or a newline",
                path.display()
            )));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_scope_defaults() {
        let config = Config::resolve(
            Flags {
                spec_dir: Some("/srv/specs".into()),
                ..Flags::default()
            },
            1000,
            Some(Path::new("/run/user/1000")),
        )
        .unwrap();
        assert_eq!(config.layout.scope, Scope::User);
        assert_eq!(
            config.layout.unit_dir,
            Path::new("/run/user/1000/containers/systemd/ramlet")
        );
        assert_eq!(
            config.layout.volume_root,
            Path::new("/run/ramlet/users/1000")
        );
        assert_eq!(config.state_dir, Path::new("/run/user/1000/ramlet"));
        assert_eq!(config.bus, Bus::Session);
    }

    /// The shipped `dist/config.yaml` is all comments: every default, no error.
    #[test]
    fn the_shipped_config_is_every_default() {
        let shipped = Path::new(env!("CARGO_MANIFEST_DIR")).join("../dist/config.yaml");
        let file = File::read(&shipped).unwrap();
        assert!(file.spec_dir.is_none() && file.policy.is_empty() && file.metrics_file.is_none());
        let config = Config::resolve(
            Flags {
                config: Some(shipped),
                ..Flags::default()
            },
            0,
            None,
        )
        .unwrap();
        assert_eq!(config.spec_dir, Path::new("/etc/ramlet/specs"));
    }

    #[test]
    fn flags_override_the_file_and_bad_values_are_refused() {
        let dir = std::env::temp_dir().join(format!("ramlet-config-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("config.yaml");
        std::fs::write(
            &file,
            "specDir: /srv/a\nscope: system\nbus: unix:path=/run/x\nhostLabels: {role: edge}\n",
        )
        .unwrap();
        let flags = Flags {
            config: Some(file.clone()),
            spec_dir: Some("/srv/b".into()),
            ..Flags::default()
        };
        let config = Config::resolve(flags, 0, None).unwrap();
        assert_eq!(config.spec_dir, Path::new("/srv/b"));
        assert_eq!(config.bus, Bus::Address("unix:path=/run/x".into()));
        assert_eq!(config.host_labels["role"], "edge");

        std::fs::write(&file, "specDirectory: /srv/a\n").unwrap();
        let err = Config::resolve(
            Flags {
                config: Some(file.clone()),
                ..Flags::default()
            },
            0,
            None,
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("unknown field `specDirectory`") && err.contains("config.yaml"),
            "{err}"
        );
        let err = Config::resolve(
            Flags {
                spec_dir: Some("relative".into()),
                ..Flags::default()
            },
            0,
            None,
        )
        .unwrap_err();
        assert!(err.to_string().contains("absolute"));
        let _ = std::fs::remove_dir_all(dir);
    }
}
