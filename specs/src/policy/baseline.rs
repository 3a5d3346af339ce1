//! The escape hatch's baseline: what no spec may set through `spec.quadlet` on a host whose
//! policy says nothing, because it lets a spec author act on the host beyond their own container.
//! The host's `policy.allowKeys` lifts it key by key (`Key` or `Section.Key`);
//! `policy.forbiddenKeys` narrows further. Key by key, and why:
//!
//! - `[Unit] Conflicts=`, `OnFailure=`, `OnSuccess=`: start or stop another unit; only units of
//!   this spec directory's containers (`<name>.service`), so a spec cannot stop `ramlet.service`
//!   or `sshd.service`, or start anything on failure.
//! - `[Unit] Wants=`, `Requires=`, `Requisite=`, `BindsTo=`, `Upholds=`: pull other units in; only
//!   this directory's containers and the ordinary targets a service waits for
//!   ([`ORDINARY_TARGETS`]), never `reboot.target` or `emergency.target`. (`After=`, `Before=`
//!   and `PartOf=` only order or follow, and stay free.)
//! - `[Unit] StartLimitAction=`: only `none`; the others reboot or power off the host.
//! - `[Container] SeccompProfile=`: `unconfined` turns off the system call filter, and a
//!   profile anywhere but the admin's own folders (`/etc/containers/`, `/usr/share/containers/`)
//!   may be an allow-all profile the spec wrote itself (into its own RAM volume, from a secret).
//! - `[Container] Unmask=`: exposes `/proc` and `/sys` paths the runtime masks.
//! - `[Container] LogOpt=`: only `max-size=` and `tag=` (Podman lowercases the key, so
//!   `Path=/etc/cron.d/x` is `path=`: Podman, root in system scope, writes the container's
//!   output to any host path).
//! - `[Container] Annotation=` with a key the runtime acts on (`run.oci.`, `org.systemd.`,
//!   `io.podman.`, `io.containers.`, `org.opencontainers.`): crun's `run.oci.hooks.stdout`
//!   creates a host file as root, `org.systemd.property.*` sets properties of the container's
//!   systemd scope, `io.containers.trace-syscall` runs a hook.
//! - `[Container] AddDevice=`: host devices.
//! - `[Container] AddCapability=`: only capabilities Linux has, named plainly, each word split
//!   the way Podman splits them (on whitespace and on commas: `NET_BIND_SERVICE,SYS_ADMIN` is
//!   two), and none that reaches the host: `ALL`, `SYS_ADMIN`,
//!   `SYS_MODULE`, `SYS_RAWIO`, `SYS_PTRACE`, `SYS_BOOT`, `SYS_TIME`, `NET_ADMIN`,
//!   `DAC_READ_SEARCH`, `BPF`, `PERFMON`, `SYSLOG`, `MAC_ADMIN`, `MAC_OVERRIDE`,
//!   `LINUX_IMMUTABLE`, `SYS_RESOURCE`, `AUDIT_CONTROL`, `SETFCAP`, `MKNOD`, `IPC_OWNER`,
//!   `WAKE_ALARM`, `BLOCK_SUSPEND`, `CHECKPOINT_RESTORE`, `SYS_PACCT`.

use std::collections::BTreeSet;

/// Targets any service may want or require: they only say the host is up to a point.
pub const ORDINARY_TARGETS: &[&str] = &[
    "local-fs.target",
    "network-online.target",
    "network.target",
    "nss-lookup.target",
    "remote-fs.target",
    "time-set.target",
    "time-sync.target",
];

/// Capabilities that let a container act on the host (see the module's docs).
pub const HOST_CAPABILITIES: &[&str] = &[
    "ALL",
    "AUDIT_CONTROL",
    "BLOCK_SUSPEND",
    "BPF",
    "CHECKPOINT_RESTORE",
    "DAC_READ_SEARCH",
    "IPC_OWNER",
    "LINUX_IMMUTABLE",
    "MAC_ADMIN",
    "MAC_OVERRIDE",
    "MKNOD",
    "NET_ADMIN",
    "PERFMON",
    "SETFCAP",
    "SYSLOG",
    "SYS_ADMIN",
    "SYS_BOOT",
    "SYS_MODULE",
    "SYS_PACCT",
    "SYS_PTRACE",
    "SYS_RAWIO",
    "SYS_RESOURCE",
    "SYS_TIME",
    "WAKE_ALARM",
];

/// Every capability Linux has (capability.h), as Podman names them without `CAP_`.
pub const CAPABILITIES: &[&str] = &[
    "AUDIT_CONTROL",
    "AUDIT_READ",
    "AUDIT_WRITE",
    "BLOCK_SUSPEND",
    "BPF",
    "CHECKPOINT_RESTORE",
    "CHOWN",
    "DAC_OVERRIDE",
    "DAC_READ_SEARCH",
    "FOWNER",
    "FSETID",
    "IPC_LOCK",
    "IPC_OWNER",
    "KILL",
    "LEASE",
    "LINUX_IMMUTABLE",
    "MAC_ADMIN",
    "MAC_OVERRIDE",
    "MKNOD",
    "NET_ADMIN",
    "NET_BIND_SERVICE",
    "NET_BROADCAST",
    "NET_RAW",
    "PERFMON",
    "SETFCAP",
    "SETGID",
    "SETPCAP",
    "SETUID",
    "SYSLOG",
    "SYS_ADMIN",
    "SYS_BOOT",
    "SYS_CHROOT",
    "SYS_MODULE",
    "SYS_NICE",
    "SYS_PACCT",
    "SYS_PTRACE",
    "SYS_RAWIO",
    "SYS_RESOURCE",
    "SYS_TIME",
    "SYS_TTY_CONFIG",
    "WAKE_ALARM",
];

/// Folders whose seccomp profiles are the admin's (a package's or their own).
pub const SECCOMP_FOLDERS: &[&str] = &["/etc/containers/", "/usr/share/containers/"];

/// `LogOpt=` keys a spec may set (Podman's others: `path`, which writes to the host).
pub const LOG_OPTIONS: &[&str] = &["max-size", "tag"];

/// Annotation key prefixes the container runtime, Podman or systemd act on.
pub const RUNTIME_ANNOTATIONS: &[&str] = &[
    "io.containers.",
    "io.podman.",
    "org.opencontainers.",
    "org.systemd.",
    "run.oci.",
];

/// `[Unit]` keys that start, stop or pull in the units they name.
pub const UNIT_DEPENDENCY_KEYS: &[&str] = &[
    "BindsTo",
    "Conflicts",
    "OnFailure",
    "OnSuccess",
    "Requires",
    "Requisite",
    "Upholds",
    "Wants",
];

/// The units `container`'s escape hatch starts, stops or pulls in (`Wants=web.service` ...):
/// the agent checks at run time that each one that is a spec's unit is ramlet's on the host.
#[must_use]
pub fn unit_references(container: &crate::model::Container) -> Vec<&str> {
    container
        .quadlet
        .get("Unit")
        .into_iter()
        .flatten()
        .filter(|(key, _)| UNIT_DEPENDENCY_KEYS.contains(&key.as_str()))
        .flat_map(|(_, values)| values.iter().flat_map(|v| v.split_whitespace()))
        .collect()
}

/// Why `[section] key=value` reaches past the spec's own container; `None` when it does not.
/// `managed` holds the unit names of this spec directory's containers (`web.service`).
pub(crate) fn refusal(
    section: &str,
    key: &str,
    value: &str,
    managed: &BTreeSet<String>,
) -> Option<String> {
    let words = || value.split_whitespace();
    let outside = |allow_targets: bool| {
        words()
            .filter(|unit| {
                let free =
                    managed.contains(*unit) || (allow_targets && ORDINARY_TARGETS.contains(unit));
                !free
            })
            .collect::<Vec<_>>()
    };
    let why = match (section, key) {
        ("Unit", "Conflicts" | "OnFailure" | "OnSuccess") => {
            let units = outside(false);
            if units.is_empty() {
                return None;
            }
            format!(
                "names {}, which ramlet does not manage here; a spec may start or stop only this directory's containers",
                units.join(", ")
            )
        }
        ("Unit", "Wants" | "Requires" | "Requisite" | "BindsTo" | "Upholds") => {
            let units = outside(true);
            if units.is_empty() {
                return None;
            }
            format!(
                "pulls in {}, which ramlet does not manage here; a spec may pull in only this directory's containers and {}",
                units.join(", "),
                ORDINARY_TARGETS.join(", ")
            )
        }
        ("Unit", "StartLimitAction") if value.trim() != "none" => {
            "acts on the whole host (reboot or power off); only `none` is allowed".to_owned()
        }
        ("Container", "SeccompProfile") => seccomp(value)?,
        ("Container", "Unmask") => {
            "exposes /proc and /sys paths the container runtime masks".to_owned()
        }
        ("Container", "LogOpt") => log_option(value)?,
        ("Container", "Annotation") => annotation(value)?,
        ("Container", "AddDevice") => "gives the container a host device".to_owned(),
        ("Container", "AddCapability") => capabilities(value)?,
        _ => return None,
    };
    Some(format!(
        "[{section}] {key}={value}: {why}; a host's admin can allow it with `policy.allowKeys: [{section}.{key}]`"
    ))
}

/// The words of a list value as Podman will see them: Quadlet splits on whitespace, Podman
/// splits `--cap-add` and friends on commas.
fn podman_words(value: &str) -> impl Iterator<Item = &str> {
    value
        .split(|c: char| c.is_whitespace() || c == ',')
        .filter(|w| !w.is_empty())
}

fn capabilities(value: &str) -> Option<String> {
    let mut host = Vec::new();
    let mut unknown = Vec::new();
    for word in podman_words(value) {
        let upper = word.to_ascii_uppercase();
        let name = upper.strip_prefix("CAP_").unwrap_or(&upper);
        if HOST_CAPABILITIES.contains(&name) {
            host.push(name.to_owned());
        } else if !CAPABILITIES.contains(&name) {
            unknown.push(word.to_owned());
        }
    }
    if !unknown.is_empty() {
        return Some(format!(
            "{} is not a capability name (write plain names such as NET_BIND_SERVICE, separated by spaces)",
            unknown.join(", ")
        ));
    }
    (!host.is_empty()).then(|| format!("adds {}, which reaches the host", host.join(", ")))
}

fn seccomp(value: &str) -> Option<String> {
    if value.eq_ignore_ascii_case("unconfined") {
        return Some("turns off the container's system call filter".to_owned());
    }
    let admins = value.starts_with('/')
        && !value.split('/').any(|s| s == ".." || s == ".")
        && !value.contains(|c: char| c.is_whitespace() || c == '"' || c == '\\' || c == '%')
        && SECCOMP_FOLDERS.iter().any(|f| value.starts_with(f));
    (!admins).then(|| {
        format!(
            "loads a profile from outside {}, which may be one the spec wrote itself (an allow-all profile in its own volume)",
            SECCOMP_FOLDERS.join(" and ")
        )
    })
}

fn log_option(value: &str) -> Option<String> {
    let key = value
        .split_once('=')
        .map_or(value, |(k, _)| k)
        .trim()
        .to_ascii_lowercase();
    let others = podman_words(value).skip(1).any(|w| {
        w.split_once('=')
            .is_some_and(|(k, _)| k.trim_matches(['"', '\'']).eq_ignore_ascii_case("path"))
    });
    if LOG_OPTIONS.contains(&key.as_str()) && !others {
        return None;
    }
    Some(format!(
        "only {} may be set (Podman's `path=` writes the container's output to a host path, whatever its case)",
        LOG_OPTIONS
            .iter()
            .map(|k| format!("`{k}=`"))
            .collect::<Vec<_>>()
            .join(" and ")
    ))
}

fn annotation(value: &str) -> Option<String> {
    let acted_on: Vec<String> = value
        .split_whitespace()
        .map(|w| {
            w.split_once('=')
                .map_or(w, |(k, _)| k)
                .trim_matches(['"', '\''])
                .to_ascii_lowercase()
        })
        .filter(|k| RUNTIME_ANNOTATIONS.iter().any(|p| k.starts_with(p)))
        .collect();
    (!acted_on.is_empty()).then(|| {
        format!(
            "sets {}, which the container runtime, Podman or systemd act on (keys starting with {} are theirs)",
            acted_on.join(", "),
            RUNTIME_ANNOTATIONS.join(", ")
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_reaches_the_host_is_refused_and_the_rest_passes() {
        let managed: BTreeSet<String> = ["db.service".to_owned()].into();
        let refused = |section, key, value| refusal(section, key, value, &managed).is_some();
        assert!(refused("Unit", "Conflicts", "ramlet.service"));
        assert!(refused("Unit", "OnFailure", "db.service reboot.target"));
        assert!(refused("Unit", "Wants", "reboot.target"));
        assert!(refused("Unit", "StartLimitAction", "reboot-force"));
        assert!(refused("Container", "SeccompProfile", "unconfined"));
        assert!(refused("Container", "Unmask", "ALL"));
        assert!(refused("Container", "LogOpt", "path=/etc/cron.d/x"));
        assert!(refused("Container", "AddDevice", "/dev/sda"));
        assert!(refused(
            "Container",
            "AddCapability",
            "NET_BIND_SERVICE cap_sys_admin"
        ));

        assert!(!refused("Unit", "OnFailure", "db.service"));
        assert!(!refused(
            "Unit",
            "Wants",
            "network-online.target db.service"
        ));
        assert!(!refused("Unit", "After", "anything.service"));
        assert!(!refused("Unit", "StartLimitAction", "none"));
        assert!(!refused(
            "Container",
            "SeccompProfile",
            "/etc/containers/seccomp.json"
        ));
        assert!(!refused("Container", "LogOpt", "max-size=10mb"));
        assert!(!refused("Container", "AddCapability", "NET_BIND_SERVICE"));
    }

    /// Issue 33, finding 2: list-valued keys were checked word by word on whitespace only and
    /// case-sensitively, while Podman splits `--cap-add` on commas and lowercases log option
    /// keys; a seccomp profile could be any path, one in the spec's own volume included.
    #[test]
    fn regression_33_values_are_checked_the_way_podman_parses_them() {
        let managed = BTreeSet::new();
        let refused = |key, value| refusal("Container", key, value, &managed).is_some();
        assert!(refused(
            "AddCapability",
            "NET_BIND_SERVICE,SYS_ADMIN,SYS_MODULE"
        ));
        assert!(refused("AddCapability", "NET_BIND_SERVICE, cap_sys_admin"));
        assert!(refused("AddCapability", "NET_RAW \"SYS_ADMIN\" CHOWN"));
        assert!(refused("AddCapability", "SYS_PACCT"));
        assert!(refused("LogOpt", "Path=/etc/cron.d/pwn"));
        assert!(refused("LogOpt", "PATH=/etc/cron.d/pwn"));
        assert!(refused("LogOpt", "tag=x path=/etc/x"));
        assert!(refused("LogOpt", "label=x"));
        assert!(refused(
            "SeccompProfile",
            "/run/ramlet/volumes/web/tls/..data/allow-all.json"
        ));
        assert!(refused("SeccompProfile", "Unconfined"));
        assert!(refused(
            "SeccompProfile",
            "/etc/containers/../../run/x.json"
        ));
        assert!(refused("Annotation", "run.oci.hooks.stdout=/etc/nologin"));
        assert!(refused(
            "Annotation",
            "a=b Org.Systemd.Property.ExecStopPost=/x"
        ));
        assert!(refused(
            "Annotation",
            "io.containers.trace-syscall=of:/etc/x"
        ));

        assert!(!refused("AddCapability", "NET_BIND_SERVICE,CHOWN NET_RAW"));
        assert!(!refused("LogOpt", "max-size=10mb"));
        assert!(!refused("LogOpt", "Tag=web"));
        assert!(!refused(
            "SeccompProfile",
            "/usr/share/containers/seccomp.json"
        ));
        assert!(!refused("Annotation", "com.example.team=payments"));
    }
}
