//! Where ramlet puts things on a host: the scope it runs in, its unit folder and volume root,
//! and the one rule for a volume's folder and a unit's file name. Shared by the units ramlet
//! renders ([`crate::units`]) and the volumes it writes ([`crate::host::volumes`]), so neither
//! reaches into the other.

use std::path::{Path, PathBuf};

use ramlet_specs::model::Container;

/// Which systemd instance ramlet drives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Scope {
    /// The system manager, as root: `/run/containers/systemd/ramlet/`.
    System,
    /// A user's manager, as that user: `$XDG_RUNTIME_DIR/containers/systemd/ramlet/`.
    User,
}

/// Where units and volumes live on this host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layout {
    /// The scope.
    pub scope: Scope,
    /// ramlet's own subfolder of the Quadlet runtime directory.
    pub unit_dir: PathBuf,
    /// The folder holding one folder per spec, one per volume below it.
    pub volume_root: PathBuf,
}

impl Layout {
    /// The defaults for `scope`, for the user with `uid` and runtime directory `runtime_dir`
    /// (`$XDG_RUNTIME_DIR`) in user scope.
    #[must_use]
    pub fn defaults(scope: Scope, uid: u32, runtime_dir: Option<&Path>) -> Self {
        match scope {
            Scope::System => Self {
                scope,
                unit_dir: "/run/containers/systemd/ramlet".into(),
                volume_root: "/run/ramlet/volumes".into(),
            },
            Scope::User => {
                let runtime = user_runtime_dir(uid, runtime_dir);
                Self {
                    scope,
                    unit_dir: runtime.join("containers/systemd/ramlet"),
                    volume_root: PathBuf::from(format!("/run/ramlet/users/{uid}")),
                }
            }
        }
    }

    /// The unit file of a container.
    #[must_use]
    pub fn unit_path(&self, container: &Container) -> PathBuf {
        self.unit_dir.join(unit_file_name(container))
    }

    /// The host folder of one volume.
    #[must_use]
    pub fn volume_dir(&self, container: &Container, volume: &str) -> PathBuf {
        volume_path(&self.volume_root, container.name.as_str(), volume)
    }
}

/// The user's runtime directory: `$XDG_RUNTIME_DIR`, or `/run/user/<uid>` when it is unset.
#[must_use]
pub fn user_runtime_dir(uid: u32, runtime_dir: Option<&Path>) -> PathBuf {
    runtime_dir.map_or_else(|| PathBuf::from(format!("/run/user/{uid}")), Path::to_owned)
}

/// `<volume root>/<spec>/<volume>`: the one place that says where a volume lives, for the unit's
/// `Volume=` and for the writer alike.
#[must_use]
pub fn volume_path(root: &Path, spec: &str, volume: &str) -> PathBuf {
    root.join(spec).join(volume)
}

/// `<name>.container`; systemd calls the service `<name>.service`.
#[must_use]
pub fn unit_file_name(container: &Container) -> String {
    format!("{}.container", container.name)
}
