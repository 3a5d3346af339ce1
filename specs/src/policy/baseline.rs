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
//! - `[Container] SeccompProfile=unconfined`: turns off the system call filter.
//! - `[Container] Unmask=`: exposes `/proc` and `/sys` paths the runtime masks.
//! - `[Container] LogOpt=path=`: Podman (root, in system scope) writes the container's output to
//!   any host path.
//! - `[Container] AddDevice=`: host devices.
//! - `[Container] AddCapability=` with a capability that reaches the host: `ALL`, `SYS_ADMIN`,
//!   `SYS_MODULE`, `SYS_RAWIO`, `SYS_PTRACE`, `SYS_BOOT`, `SYS_TIME`, `NET_ADMIN`,
//!   `DAC_READ_SEARCH`, `BPF`, `PERFMON`, `SYSLOG`, `MAC_ADMIN`, `MAC_OVERRIDE`,
//!   `LINUX_IMMUTABLE`, `SYS_RESOURCE`, `AUDIT_CONTROL`, `SETFCAP`, `MKNOD`, `IPC_OWNER`,
//!   `WAKE_ALARM`, `BLOCK_SUSPEND`, `CHECKPOINT_RESTORE`.

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
    "SYS_PTRACE",
    "SYS_RAWIO",
    "SYS_RESOURCE",
    "SYS_TIME",
    "WAKE_ALARM",
];

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
        ("Container", "SeccompProfile") if value.trim() == "unconfined" => {
            "turns off the container's system call filter".to_owned()
        }
        ("Container", "Unmask") => {
            "exposes /proc and /sys paths the container runtime masks".to_owned()
        }
        ("Container", "LogOpt") if words().any(|o| o.starts_with("path=")) => {
            "makes Podman write the container's output to a path on the host".to_owned()
        }
        ("Container", "AddDevice") => "gives the container a host device".to_owned(),
        ("Container", "AddCapability") => {
            let caps: Vec<String> = words()
                .map(|c| c.to_ascii_uppercase().trim_start_matches("CAP_").to_owned())
                .filter(|c| HOST_CAPABILITIES.contains(&c.as_str()))
                .collect();
            if caps.is_empty() {
                return None;
            }
            format!("adds {}, which reaches the host", caps.join(", "))
        }
        _ => return None,
    };
    Some(format!(
        "[{section}] {key}={value}: {why}; a host's admin can allow it with `policy.allowKeys: [{section}.{key}]`"
    ))
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
}
