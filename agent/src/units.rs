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
//!   the host's `policy.denyAddresses` as `IPAddressDeny=` ([`deny_addresses`]);
//! - `[Install]`: nothing, in both scopes: ramlet starts each unit itself once its secrets are in
//!   place, and its unit directory is a runtime directory that a reboot empties.

use ramlet_quadlet::{PodmanVersion, UnitFile};
use ramlet_specs::model::{Container, Rotation, SelinuxLabel};

use crate::layout::Layout;

/// The name Podman knows the container by.
#[must_use]
pub fn container_name(container: &Container) -> String {
    format!("ramlet-{}", container.name)
}

/// The Podman version from which `ReloadSignal=` exists.
const RELOAD_SIGNAL: PodmanVersion = PodmanVersion::new(5, 5);

/// Adds the host's `policy.denyAddresses` to `unit`: systemd's `IPAddressDeny=`, a filter on
/// the service's cgroup that holds for the container's processes and for Podman's user-mode
/// network helpers alike, whatever the network mode. A spec cannot lift it (`IPAddressAllow=`
/// is no escape-hatch key).
pub fn deny_addresses(unit: &mut UnitFile, addresses: &[String]) {
    if !addresses.is_empty() {
        unit.service
            .extra
            .push(("IPAddressDeny".to_owned(), addresses.join(" ")));
    }
}

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
