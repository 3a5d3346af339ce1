//! Every key ramlet may write, with its section, the Podman version that introduced it and how
//! Quadlet reads its value.
//!
//! Versions come from Podman's release history (Quadlet appeared in 4.4); Quadlet skips a whole
//! unit that holds a key it does not know, so rendering refuses such keys instead (see
//! [`crate::file`]).

use crate::version::PodmanVersion;

/// A unit file section.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Section {
    /// `[Unit]`, passed to systemd unchanged.
    Unit,
    /// `[Container]`, read by Quadlet.
    Container,
    /// `[Service]`, passed to systemd unchanged.
    Service,
    /// `[Install]`.
    Install,
}

impl Section {
    /// All sections, in the order they are written.
    pub const ALL: [Self; 4] = [Self::Unit, Self::Container, Self::Service, Self::Install];

    /// The section's name, as in `[Unit]`.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Self::Unit => "Unit",
            Self::Container => "Container",
            Self::Service => "Service",
            Self::Install => "Install",
        }
    }

    /// The section called `name`.
    #[must_use]
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.name() == name)
    }
}

/// How a key's value is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    /// One value, taken as written (Quadlet's `LookupLast`, or a systemd setting). `dollar`: the
    /// value ends up on a command line, where systemd expands `$`, so `$` is written `$$`.
    Raw {
        /// Whether `$` must be doubled.
        dollar: bool,
    },
    /// A list of words, split and unquoted the systemd way (`Exec=`, `Environment=`, ...), that
    /// ends up on a command line.
    Words,
}

/// One key ramlet knows.
#[derive(Debug, Clone, Copy)]
pub struct Key {
    /// The section.
    pub section: Section,
    /// The key.
    pub name: &'static str,
    /// The first Podman whose Quadlet reads it.
    pub since: PodmanVersion,
    /// How its value is read.
    pub shape: Shape,
}

const fn v(major: u16, minor: u16) -> PodmanVersion {
    PodmanVersion::new(major, minor)
}

const C: Shape = Shape::Raw { dollar: true };
const W: Shape = Shape::Words;
const S: Shape = Shape::Raw { dollar: false };

macro_rules! keys {
    ($section:ident: $($name:literal $since:expr, $shape:expr;)*) => {
        [$(Key { section: Section::$section, name: $name, since: $since, shape: $shape }),*]
    };
}

const CONTAINER: &[Key] = &keys! { Container:
    "AddCapability" v(4, 4), W; "AddDevice" v(4, 4), C; "Annotation" v(4, 4), W;
    "ContainerName" v(4, 4), C; "DropCapability" v(4, 4), W; "Environment" v(4, 4), W;
    "EnvironmentFile" v(4, 4), C; "EnvironmentHost" v(4, 4), C; "Exec" v(4, 4), W;
    "ExposeHostPort" v(4, 4), C; "Group" v(4, 4), C; "HealthCmd" v(4, 4), C; "Image" v(4, 4), C;
    "Label" v(4, 4), W; "Network" v(4, 4), C; "NoNewPrivileges" v(4, 4), C; "Notify" v(4, 4), C;
    "PodmanArgs" v(4, 4), W; "PublishPort" v(4, 4), C; "ReadOnly" v(4, 4), C;
    "RunInit" v(4, 4), C; "SeccompProfile" v(4, 4), C; "SecurityLabelDisable" v(4, 4), C;
    "SecurityLabelFileType" v(4, 4), C; "SecurityLabelLevel" v(4, 4), C;
    "SecurityLabelType" v(4, 4), C; "Timezone" v(4, 4), C; "User" v(4, 4), C;
    "Volume" v(4, 4), C;
    "HealthInterval" v(4, 5), C; "HealthOnFailure" v(4, 5), C; "HealthRetries" v(4, 5), C;
    "HealthStartPeriod" v(4, 5), C; "HealthStartupCmd" v(4, 5), C;
    "HealthStartupInterval" v(4, 5), C; "HealthStartupRetries" v(4, 5), C;
    "HealthStartupSuccess" v(4, 5), C; "HealthStartupTimeout" v(4, 5), C;
    "HealthTimeout" v(4, 5), C; "IP" v(4, 5), C; "IP6" v(4, 5), C; "LogDriver" v(4, 5), C;
    "Mount" v(4, 5), C; "Rootfs" v(4, 5), C; "Secret" v(4, 5), C; "Tmpfs" v(4, 5), C;
    "UserNS" v(4, 5), C;
    "AutoUpdate" v(4, 6), C; "HostName" v(4, 6), C; "Mask" v(4, 6), C; "Pull" v(4, 6), C;
    "SecurityLabelNested" v(4, 6), C; "Sysctl" v(4, 6), W; "Unmask" v(4, 6), C;
    "WorkingDir" v(4, 6), C;
    "DNS" v(4, 7), C; "DNSOption" v(4, 7), C; "DNSSearch" v(4, 7), C; "PidsLimit" v(4, 7), C;
    "ShmSize" v(4, 7), C; "Ulimit" v(4, 7), C;
    "GIDMap" v(4, 8), C; "ReadOnlyTmpfs" v(4, 8), C; "SubGIDMap" v(4, 8), C;
    "SubUIDMap" v(4, 8), C; "UIDMap" v(4, 8), C;
    "Entrypoint" v(5, 0), C; "StopTimeout" v(5, 0), C;
    "GroupAdd" v(5, 2), C; "LogOpt" v(5, 2), C; "NetworkAlias" v(5, 2), C;
    "StopSignal" v(5, 2), C;
    "AddHost" v(5, 4), C; "CgroupsMode" v(5, 4), C; "HealthLogDestination" v(5, 4), C;
    "HealthMaxLogCount" v(5, 4), C; "HealthMaxLogSize" v(5, 4), C; "ServiceName" v(5, 4), C;
    "StartWithPod" v(5, 4), C;
    "ReloadSignal" v(5, 5), C;
};

const UNIT: &[Key] = &keys! { Unit:
    "After" v(4, 4), S; "AssertPathExists" v(4, 4), S; "Before" v(4, 4), S;
    "BindsTo" v(4, 4), S; "ConditionHost" v(4, 4), S; "ConditionPathExists" v(4, 4), S;
    "ConditionPathIsDirectory" v(4, 4), S; "Conflicts" v(4, 4), S; "Description" v(4, 4), S;
    "Documentation" v(4, 4), S; "JobTimeoutSec" v(4, 4), S; "OnFailure" v(4, 4), S;
    "OnSuccess" v(4, 4), S; "PartOf" v(4, 4), S; "Requires" v(4, 4), S;
    "Requisite" v(4, 4), S; "StartLimitAction" v(4, 4), S; "StartLimitBurst" v(4, 4), S;
    "StartLimitIntervalSec" v(4, 4), S; "Upholds" v(4, 4), S; "Wants" v(4, 4), S;
    "RequiresMountsFor" v(4, 4), S;
};

const SERVICE: &[Key] = &keys! { Service:
    "CPUQuota" v(4, 4), S; "CPUWeight" v(4, 4), S; "IOWeight" v(4, 4), S;
    "LimitNOFILE" v(4, 4), S; "LimitNPROC" v(4, 4), S; "MemoryHigh" v(4, 4), S;
    "MemoryMax" v(4, 4), S; "Nice" v(4, 4), S; "OOMPolicy" v(4, 4), S;
    "OOMScoreAdjust" v(4, 4), S; "Restart" v(4, 4), S; "RestartForceExitStatus" v(4, 4), S;
    "RestartMaxDelaySec" v(4, 4), S; "RestartPreventExitStatus" v(4, 4), S;
    "RestartSec" v(4, 4), S; "RestartSteps" v(4, 4), S; "SuccessExitStatus" v(4, 4), S;
    "TasksMax" v(4, 4), S; "TimeoutSec" v(4, 4), S; "TimeoutStartSec" v(4, 4), S;
    "TimeoutStopSec" v(4, 4), S; "WatchdogSec" v(4, 4), S; "ExecReload" v(4, 4), W;
    "IPAddressDeny" v(4, 4), S;
};

const INSTALL: &[Key] = &keys! { Install:
    "Alias" v(4, 4), S; "RequiredBy" v(4, 4), S; "UpheldBy" v(4, 4), S; "WantedBy" v(4, 4), S;
};

/// Looks up `name` in `section`.
#[must_use]
pub fn lookup(section: Section, name: &str) -> Option<&'static Key> {
    let table: &'static [Key] = match section {
        Section::Unit => UNIT,
        Section::Container => CONTAINER,
        Section::Service => SERVICE,
        Section::Install => INSTALL,
    };
    table.iter().find(|k| k.name == name)
}

/// Every key ramlet knows.
pub fn all() -> impl Iterator<Item = &'static Key> {
    UNIT.iter().chain(CONTAINER).chain(SERVICE).chain(INSTALL)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_unique_per_section() {
        let mut seen = std::collections::BTreeSet::new();
        for key in all() {
            assert!(seen.insert((key.section, key.name)), "{} twice", key.name);
        }
    }

    #[test]
    fn gates_match_the_documented_versions() {
        let since = |name| lookup(Section::Container, name).unwrap().since;
        assert_eq!(since("Image"), PodmanVersion::V4_4);
        assert_eq!(since("StopSignal"), v(5, 2));
        assert_eq!(since("AddHost"), v(5, 4));
        assert_eq!(since("ReloadSignal"), v(5, 5));
        assert!(lookup(Section::Container, "X-Custom").is_none());
    }
}
