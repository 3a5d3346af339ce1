//! `[Container]`: what Quadlet turns into the `podman run` command line.

use std::collections::BTreeMap;

use crate::entry::{Entry, push_opt};

/// The `[Container]` section. Lines come out in the order of the fields below, then `extra`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ContainerSection {
    /// Converts to `Image=`.
    pub image: String,
    /// Converts to `ContainerName=`.
    pub container_name: Option<String>,
    /// Converts to `Entrypoint=` (Podman 5.0).
    pub entrypoint: Option<String>,
    /// Converts to `Exec=`: one word per argument.
    pub exec: Vec<String>,
    /// Converts to `Environment=`, one line per variable.
    pub environment: BTreeMap<String, String>,
    /// Converts to `Volume=`, one line each (`SRC:DST[:OPTS]`).
    pub volumes: Vec<String>,
    /// Converts to `Mount=`, one line each (Podman 4.5).
    pub mounts: Vec<String>,
    /// Converts to `PublishPort=`, one line each.
    pub publish_ports: Vec<String>,
    /// Converts to `Network=`.
    pub network: Option<String>,
    /// Converts to `User=`.
    pub user: Option<String>,
    /// Converts to `Group=`.
    pub group: Option<String>,
    /// Converts to `UserNS=` (Podman 4.5).
    pub user_ns: Option<String>,
    /// Converts to `ReadOnly=`.
    pub read_only: Option<bool>,
    /// Converts to `Label=`, one line per label.
    pub labels: BTreeMap<String, String>,
    /// Converts to `Annotation=`, one line per annotation.
    pub annotations: BTreeMap<String, String>,
    /// Converts to `PodmanArgs=`: one word per argument.
    pub podman_args: Vec<String>,
    /// Converts to `HealthCmd=`.
    pub health_cmd: Option<String>,
    /// Converts to `HealthInterval=` (Podman 4.5).
    pub health_interval: Option<String>,
    /// Converts to `HealthRetries=` (Podman 4.5).
    pub health_retries: Option<u32>,
    /// Converts to `HealthTimeout=` (Podman 4.5).
    pub health_timeout: Option<String>,
    /// Converts to `StopSignal=` (Podman 5.2).
    pub stop_signal: Option<String>,
    /// Converts to `ReloadSignal=` (Podman 5.5).
    pub reload_signal: Option<String>,
    /// Converts to `StopTimeout=` (Podman 5.0).
    pub stop_timeout: Option<u32>,
    /// Further keys (from the spec's escape hatch), in order; one line per value.
    pub extra: Vec<(String, String)>,
}

impl ContainerSection {
    /// The section's lines.
    #[must_use]
    pub fn entries(&self) -> Vec<Entry> {
        let mut e = vec![Entry::raw("Image", self.image.clone())];
        push_opt(&mut e, "ContainerName", self.container_name.as_ref());
        push_opt(&mut e, "Entrypoint", self.entrypoint.as_ref());
        if !self.exec.is_empty() {
            e.push(Entry::words("Exec", self.exec.iter().cloned()));
        }
        for (k, v) in &self.environment {
            e.push(Entry::words("Environment", [format!("{k}={v}")]));
        }
        e.extend(self.volumes.iter().map(|v| Entry::raw("Volume", v.clone())));
        e.extend(self.mounts.iter().map(|v| Entry::raw("Mount", v.clone())));
        e.extend(
            self.publish_ports
                .iter()
                .map(|v| Entry::raw("PublishPort", v.clone())),
        );
        push_opt(&mut e, "Network", self.network.as_ref());
        push_opt(&mut e, "User", self.user.as_ref());
        push_opt(&mut e, "Group", self.group.as_ref());
        push_opt(&mut e, "UserNS", self.user_ns.as_ref());
        if let Some(read_only) = self.read_only {
            e.push(Entry::raw("ReadOnly", read_only.to_string()));
        }
        for (k, v) in &self.labels {
            e.push(Entry::words("Label", [format!("{k}={v}")]));
        }
        for (k, v) in &self.annotations {
            e.push(Entry::words("Annotation", [format!("{k}={v}")]));
        }
        if !self.podman_args.is_empty() {
            e.push(Entry::words("PodmanArgs", self.podman_args.iter().cloned()));
        }
        push_opt(&mut e, "HealthCmd", self.health_cmd.as_ref());
        push_opt(&mut e, "HealthInterval", self.health_interval.as_ref());
        push_opt(
            &mut e,
            "HealthRetries",
            self.health_retries.map(|n| n.to_string()).as_ref(),
        );
        push_opt(&mut e, "HealthTimeout", self.health_timeout.as_ref());
        push_opt(&mut e, "StopSignal", self.stop_signal.as_ref());
        push_opt(&mut e, "ReloadSignal", self.reload_signal.as_ref());
        push_opt(
            &mut e,
            "StopTimeout",
            self.stop_timeout.map(|n| n.to_string()).as_ref(),
        );
        e.extend(self.extra.iter().map(|(k, v)| Entry::raw(k, v.clone())));
        e
    }
}
