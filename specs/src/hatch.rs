//! The Quadlet escape hatch: which sections and keys a spec may set directly.
//!
//! A spec's `quadlet:` field passes keys the spec language does not model straight into the unit.
//! Only keys from the lists below are accepted. Keys that ramlet must own (the image, the volume
//! mounts, the command, the environment, the container's name, `SELinux` separation) are refused
//! with a pointer to the spec field that sets them: letting a spec override them would let it
//! mount a disk path over a secret volume, pass secrets through the environment (which Podman
//! keeps on disk) or turn off the isolation `:Z` relies on. `[Install]` is ramlet's too: it starts
//! units itself, after their secrets are in place.

use crate::error::{Check, ErrorKind};

/// The sections a spec may extend.
pub const SECTIONS: &[&str] = &["Unit", "Container", "Service"];

/// `[Unit]` keys a spec may set.
pub const UNIT_KEYS: &[&str] = &[
    "After",
    "AssertPathExists",
    "Before",
    "BindsTo",
    "ConditionHost",
    "ConditionPathExists",
    "ConditionPathIsDirectory",
    "Conflicts",
    "Description",
    "Documentation",
    "JobTimeoutSec",
    "OnFailure",
    "OnSuccess",
    "PartOf",
    "Requires",
    "Requisite",
    "StartLimitAction",
    "StartLimitBurst",
    "StartLimitIntervalSec",
    "Upholds",
    "Wants",
];

/// `[Container]` keys a spec may set (Quadlet keys not modelled by the spec).
pub const CONTAINER_KEYS: &[&str] = &[
    "AddCapability",
    "AddDevice",
    "AddHost",
    "Annotation",
    "AutoUpdate",
    "DNS",
    "DNSOption",
    "DNSSearch",
    "DropCapability",
    "ExposeHostPort",
    "GIDMap",
    "GroupAdd",
    "HealthCmd",
    "HealthInterval",
    "HealthOnFailure",
    "HealthRetries",
    "HealthStartPeriod",
    "HealthStartupCmd",
    "HealthStartupInterval",
    "HealthStartupRetries",
    "HealthStartupSuccess",
    "HealthStartupTimeout",
    "HealthTimeout",
    "HostName",
    "IP",
    "IP6",
    "Label",
    "LogDriver",
    "LogOpt",
    "Mask",
    "NetworkAlias",
    "NoNewPrivileges",
    "Notify",
    "PidsLimit",
    "Pull",
    "ReadOnly",
    "ReadOnlyTmpfs",
    "RunInit",
    "SeccompProfile",
    "ShmSize",
    "StopSignal",
    "StopTimeout",
    "SubGIDMap",
    "SubUIDMap",
    "Sysctl",
    "Timezone",
    "Tmpfs",
    "UIDMap",
    "Ulimit",
    "Unmask",
    "UserNS",
    "WorkingDir",
];

/// `[Service]` keys a spec may set.
pub const SERVICE_KEYS: &[&str] = &[
    "CPUQuota",
    "CPUWeight",
    "IOWeight",
    "LimitNOFILE",
    "LimitNPROC",
    "MemoryHigh",
    "MemoryMax",
    "Nice",
    "OOMPolicy",
    "OOMScoreAdjust",
    "Restart",
    "RestartForceExitStatus",
    "RestartMaxDelaySec",
    "RestartPreventExitStatus",
    "RestartSec",
    "RestartSteps",
    "SuccessExitStatus",
    "TasksMax",
    "TimeoutSec",
    "TimeoutStartSec",
    "TimeoutStopSec",
    "WatchdogSec",
];

/// Keys ramlet owns, with the spec field to use instead.
const OWNED: &[(&str, &str, &str)] = &[
    ("Container", "Image", "spec.image"),
    ("Container", "Exec", "spec.exec"),
    ("Container", "Entrypoint", "spec.entrypoint"),
    ("Container", "Environment", "spec.environment"),
    ("Container", "EnvironmentFile", "spec.environment"),
    ("Container", "EnvironmentHost", "spec.environment"),
    ("Container", "PublishPort", "spec.publishPorts"),
    ("Container", "Network", "spec.network"),
    ("Container", "User", "spec.user"),
    ("Container", "Group", "spec.user"),
    ("Container", "Volume", "spec.volumes"),
    ("Container", "Mount", "spec.volumes"),
    ("Container", "Secret", "spec.volumes"),
    ("Container", "Rootfs", "spec.image"),
    ("Container", "ContainerName", "metadata.name"),
    ("Container", "ReloadSignal", "spec.rotation"),
    ("Container", "ReloadCmd", "spec.rotation"),
    ("Container", "PodmanArgs", "the spec's own fields"),
    (
        "Container",
        "SecurityLabelDisable",
        "spec.volumes[].selinux",
    ),
    ("Container", "SecurityLabelType", "spec.volumes[].selinux"),
    ("Container", "SecurityLabelLevel", "spec.volumes[].selinux"),
    (
        "Container",
        "SecurityLabelFileType",
        "spec.volumes[].selinux",
    ),
    ("Container", "SecurityLabelNested", "spec.volumes[].selinux"),
    ("Service", "ExecStart", "spec.exec"),
    ("Service", "ExecStartPre", "spec.exec"),
    ("Service", "ExecStartPost", "spec.exec"),
    ("Service", "ExecStop", "spec.rotation"),
    ("Service", "ExecStopPost", "spec.rotation"),
    ("Service", "ExecReload", "spec.rotation"),
    ("Service", "Environment", "spec.environment"),
    ("Service", "EnvironmentFile", "spec.environment"),
    ("Service", "Type", "ramlet's unit policy"),
    ("Service", "KillMode", "ramlet's unit policy"),
    ("Service", "User", "spec.user"),
    ("Service", "Group", "spec.user"),
];

/// Checks that `section` may be extended.
pub(crate) fn section(section: &str) -> Check<&'static [&'static str]> {
    match section {
        "Unit" => Ok(UNIT_KEYS),
        "Container" => Ok(CONTAINER_KEYS),
        "Service" => Ok(SERVICE_KEYS),
        "Install" => Err((
            ErrorKind::QuadletKey,
            "[Install] is ramlet's: it starts each unit itself once its secrets are in place"
                .into(),
        )),
        other => Err((
            ErrorKind::QuadletKey,
            format!(
                "unknown section {other:?}; use one of {}",
                SECTIONS.join(", ")
            ),
        )),
    }
}

/// Checks an escape-hatch value the way the unit renderer will (`ramlet_quadlet`'s raw values),
/// so that `ramlet validate` refuses what rendering would: an empty value, whitespace at either
/// end (systemd trims it), a trailing backslash (systemd continues the line with the next one)
/// and a double quote at either end (Quadlet strips it).
pub(crate) fn value(value: &str) -> Check<&str> {
    let fail = |why: &str| Err((ErrorKind::InvalidValue, format!("{value:?}: {why}")));
    if value.is_empty() {
        return fail("an empty value sets nothing; remove the key");
    }
    if value.trim() != value {
        return fail("systemd trims whitespace at either end; remove it");
    }
    if value.ends_with('\\') {
        return fail("a trailing backslash makes systemd continue the line with the next one");
    }
    if value.starts_with('"') || value.ends_with('"') {
        return fail("Quadlet strips a double quote at either end; quote inside the value");
    }
    Ok(value)
}

/// Checks that `key` may be set in `section` (whose allowed keys are `allowed`).
pub(crate) fn key(section: &str, allowed: &[&str], key: &str) -> Check<()> {
    if allowed.contains(&key) {
        return Ok(());
    }
    if let Some((_, _, instead)) = OWNED.iter().find(|(s, k, _)| *s == section && *k == key) {
        return Err((
            ErrorKind::QuadletKey,
            format!("[{section}] {key}= is set by ramlet; use {instead}"),
        ));
    }
    Err((
        ErrorKind::QuadletKey,
        format!(
            "[{section}] {key}= is not a key the escape hatch allows (the manual's chapter \"The Quadlet escape hatch\" lists them)"
        ),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_are_sorted_and_disjoint_from_owned_keys() {
        for list in [UNIT_KEYS, CONTAINER_KEYS, SERVICE_KEYS] {
            assert!(
                list.windows(2).all(|w| w[0] < w[1]),
                "{list:?} is not sorted"
            );
        }
        for (section, owned, _) in OWNED {
            let allowed = self::section(section).unwrap();
            assert!(
                !allowed.contains(owned),
                "{section}.{owned} is both owned and allowed"
            );
        }
    }

    /// Issue 19: `validate` accepted a `HealthCmd` ending in a backslash that rendering then
    /// refused, so a spec that validated failed on the host.
    #[test]
    fn regression_19_values_rendering_refuses_are_refused_here() {
        for bad in ["", " x", "x ", "/bin/check \\", "\"quoted\""] {
            assert!(value(bad).is_err(), "{bad:?} was accepted");
        }
        assert_eq!(value("/bin/check --fast"), Ok("/bin/check --fast"));
    }

    #[test]
    fn owned_keys_point_to_the_spec_field() {
        let (kind, message) = key("Container", CONTAINER_KEYS, "Volume").unwrap_err();
        assert_eq!(kind, ErrorKind::QuadletKey);
        assert!(message.contains("spec.volumes"), "{message}");
        assert!(key("Service", SERVICE_KEYS, "Restart").is_ok());
        assert!(section("Install").is_err());
    }
}
