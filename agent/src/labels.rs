//! SELinux labels for what ramlet writes in a volume.
//!
//! Podman's `:Z` relabels a volume's folder, at each container start, with the container's
//! private context (`container_file_t` plus its own MCS categories, such as `s0:c12,c34`). A file
//! ramlet creates later, at a rotation with `reload` or `none`, would get ramlet's own level
//! instead (no categories): readable by any container, not private to this one. So when SELinux
//! is on, every folder, file and link ramlet creates in a volume gets the volume folder's context,
//! as Podman would have given it. With SELinux off (Debian's default) nothing is asked of it.
//!
//! Check on a Fedora host (enforcing): `ls -Z /run/ramlet/volumes/<spec>/<volume>/..data/`
//! shows the same context as `ls -dZ /run/ramlet/volumes/<spec>/<volume>`, before and after a
//! rotation, and `podman exec` can read the files.

use std::os::fd::AsRawFd;
use std::path::Path;

use selinux::{KernelSupport, SELinuxMode, SecurityContext};

/// How SELinux runs on this host.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Not in the kernel, or disabled.
    #[default]
    Off,
    /// Policy loaded, denials only logged.
    Permissive,
    /// Policy loaded and enforced.
    Enforcing,
}

impl Mode {
    /// The mode of this host.
    #[must_use]
    pub fn of_host() -> Self {
        if selinux::kernel_support() == KernelSupport::Unsupported {
            return Self::Off;
        }
        match selinux::current_mode() {
            SELinuxMode::Enforcing => Self::Enforcing,
            SELinuxMode::Permissive => Self::Permissive,
            _ => Self::Off,
        }
    }

    /// Whether files ramlet creates in volumes must be labelled. Permissive too: a host
    /// switched to enforcing later must not find mislabelled files.
    #[must_use]
    pub fn labels(self) -> bool {
        self != Self::Off
    }

    /// As shown in status.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Off => "off",
            Self::Permissive => "permissive",
            Self::Enforcing => "enforcing",
        }
    }
}

/// The context to give what ramlet creates in one volume folder.
pub struct Label(SecurityContext<'static>);

impl std::fmt::Debug for Label {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let text = self.0.to_c_string().ok().flatten();
        write!(f, "Label({text:?})")
    }
}

impl Label {
    /// The context of the folder open as `dir` (`Ok(None)`: it has none, or SELinux is off).
    pub fn of_folder(mode: Mode, dir: &impl AsRawFd) -> std::io::Result<Option<Self>> {
        if !mode.labels() {
            return Ok(None);
        }
        SecurityContext::of_file(dir, true)
            .map(|context| context.map(Self))
            .map_err(std::io::Error::other)
    }

    /// Gives the object open as `fd` this context.
    pub fn apply(&self, fd: &impl AsRawFd) -> std::io::Result<()> {
        self.0.set_for_file(fd).map_err(std::io::Error::other)
    }

    /// Gives the link at `path` (not what it points at) this context.
    pub fn apply_to_link(&self, path: &Path) -> std::io::Result<()> {
        self.0
            .set_for_path(path, false, true)
            .map_err(std::io::Error::other)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_running_selinux_asks_for_labels() {
        assert!(!Mode::Off.labels());
        assert!(Mode::Permissive.labels());
        assert!(Mode::Enforcing.labels());
        assert_eq!(Mode::Enforcing.as_str(), "enforcing");
    }

    #[test]
    fn with_selinux_off_no_label_is_read() {
        let dir = std::fs::File::open(std::env::temp_dir()).unwrap();
        assert!(Label::of_folder(Mode::Off, &dir).unwrap().is_none());
    }
}
