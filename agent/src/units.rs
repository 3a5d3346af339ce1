//! From a validated `Container` spec to the Quadlet unit ramlet writes for it.
//!
//! What ramlet sets, and what the escape hatch may add (the hatch can never override a key
//! ramlet owns; `ramlet_specs::hatch` refuses those):
//! - `[Unit]`: `Description=ramlet: <name>` unless the hatch sets `Description`; hatch keys;
//! - `[Container]`: `Image`, `ContainerName=ramlet-<name>`, `Entrypoint`, `Exec`, `Environment`,
//!   one `Volume=<volume root>/<spec>/<volume>:<mountPath>:<Z|z>[,ro]` per volume, `PublishPort`,
//!   `Network`, `User`/`Group`, `Label=ramlet.dev/spec=<name>`, the reload signal, hatch keys;
//! - `[Service]`: for `rotation: reload` on Podman older than 5.5, `ExecReload=podman kill
//!   --signal <signal> ramlet-<name>` (5.5 and later get `ReloadSignal=` instead); hatch keys;
//! - `[Install]`: nothing, in both scopes: ramlet starts each unit itself once its secrets are in
//!   place, and its unit directory is a runtime directory that a reboot empties.

use std::path::{Path, PathBuf};

use ramlet_quadlet::{PodmanVersion, UnitFile};
use ramlet_specs::model::{Container, Rotation, SelinuxLabel};

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

/// The name Podman knows the container by.
#[must_use]
pub fn container_name(container: &Container) -> String {
    format!("ramlet-{}", container.name)
}

/// The Podman version from which `ReloadSignal=` exists.
const RELOAD_SIGNAL: PodmanVersion = PodmanVersion::new(5, 5);

/// Builds the unit model for `container`.
#[must_use]
pub fn unit(container: &Container, layout: &Layout, target: PodmanVersion) -> UnitFile {
    let mut unit = UnitFile {
        spec: container.name.to_string(),
        ..UnitFile::default()
    };
    let hatch = |section: &str| -> Vec<(String, String)> {
        container
            .quadlet
            .get(section)
            .into_iter()
            .flatten()
            .flat_map(|(key, values)| values.iter().map(move |v| (key.clone(), v.clone())))
            .collect()
    };

    unit.unit.extra = hatch("Unit");
    if !unit.unit.extra.iter().any(|(k, _)| k == "Description") {
        unit.unit.description = Some(format!("ramlet: {}", container.name));
    }

    let c = &mut unit.container;
    c.image.clone_from(&container.image);
    c.container_name = Some(container_name(container));
    c.entrypoint.clone_from(&container.entrypoint);
    c.exec.clone_from(&container.exec);
    c.environment.clone_from(&container.environment);
    c.volumes = container
        .volumes
        .iter()
        .map(|v| {
            let source = layout.volume_dir(container, v.name.as_str());
            let mut options = Vec::new();
            match v.selinux {
                SelinuxLabel::Private => options.push("Z"),
                SelinuxLabel::Shared => options.push("z"),
                SelinuxLabel::None => {}
            }
            if v.read_only {
                options.push("ro");
            }
            let options = if options.is_empty() {
                String::new()
            } else {
                format!(":{}", options.join(","))
            };
            format!("{}:{}{options}", source.display(), v.mount_path)
        })
        .collect();
    c.publish_ports.clone_from(&container.publish_ports);
    c.network.clone_from(&container.network);
    if let Some(user) = &container.user {
        let (user, group) = match user.split_once(':') {
            Some((u, g)) => (u.to_owned(), Some(g.to_owned())),
            None => (user.clone(), None),
        };
        c.user = Some(user);
        c.group = group;
    }
    c.labels
        .insert("ramlet.dev/spec".into(), container.name.to_string());
    if let Rotation::Reload { signal } = &container.rotation {
        if target >= RELOAD_SIGNAL {
            c.reload_signal = Some(signal.clone());
        } else {
            unit.service.exec_reload = [
                "/usr/bin/podman",
                "kill",
                "--signal",
                signal,
                &container_name(container),
            ]
            .map(str::to_owned)
            .to_vec();
        }
    }
    unit.container.extra = hatch("Container");
    unit.service.extra = hatch("Service");
    unit
}
