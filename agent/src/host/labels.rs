//! SELinux labels for what ramlet writes in a volume.
//!
//! Podman's `:Z` relabels a volume's folder, at each container start, with the container's
//! private context (`container_file_t` plus its own MCS categories, such as `s0:c12,c34`). A file
//! ramlet creates later, at a rotation with `reload` or `none`, would get ramlet's own level
//! instead (no categories): readable by any container, not private to this one. So when SELinux
//! is on, every folder, file and link ramlet creates in a volume gets the volume folder's context,
//! as Podman would have given it. With SELinux off (Debian's default) nothing is asked of it.
//!
//! Folders start with the policy's own context for container files (`file` in its
//! `lxc_contexts`, as Podman reads it: `container_file_t:s0` under Debian's policy):
//! the volume root when ramlet mounts it, and each folder ramlet creates below it. Podman may
//! relabel only from types its policy lets it, and a folder created by a service otherwise gets
//! that service's runtime type (`initrc_runtime_t` under Debian's policy), which Podman may not
//! touch, so `:Z` fails and the container never starts.
//!
//! Checked on a booted Debian 13 guest with its reference policy enforcing (`e2e/hosts/`,
//! `trixie-selinux`): `ls -Z /run/ramlet/volumes/<spec>/<volume>/..data/` shows the same context
//! as `ls -dZ /run/ramlet/volumes/<spec>/<volume>`, the container's own categories, before and
//! after a rotation; the container can read the files and a second container cannot.

use std::ffi::{CStr, CString};
use std::os::fd::AsRawFd;
use std::path::Path;
use std::sync::OnceLock;

use selinux::{KernelSupport, SELinuxMode, SecurityContext};

pub use crate::drivers::SelinuxMode as Mode;

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

    /// The context the host's policy gives container files (`None`: SELinux is off, or the
    /// policy names none: it has no container module).
    #[must_use]
    pub fn of_container_files(mode: Mode) -> Option<Self> {
        static CONTEXT: OnceLock<Option<CString>> = OnceLock::new();
        if !mode.labels() {
            return None;
        }
        let context = CONTEXT.get_or_init(|| {
            let path = selinux::path::lxc_contexts().ok()?;
            let text = std::fs::read_to_string(path).ok()?;
            container_file_context(&text)
        });
        context
            .as_deref()
            .map(|c: &'static CStr| Self(SecurityContext::from_c_str(c, false)))
    }

    /// The context of the folder at `path` (`Ok(None)`: it has none, or SELinux is off).
    pub fn of_path(mode: Mode, path: &Path) -> std::io::Result<Option<Self>> {
        if !mode.labels() {
            return Ok(None);
        }
        SecurityContext::of_path(path, true, true)
            .map(|context| context.map(Self))
            .map_err(std::io::Error::other)
    }

    /// Gives the file, folder or link at `path` (not what a link points at) this context, in
    /// the format it was read in (raw from a file, as written in `lxc_contexts`).
    pub fn apply_to_path(&self, path: &Path) -> std::io::Result<()> {
        self.0
            .set_for_path(path, false, self.0.is_raw_format())
            .map_err(std::io::Error::other)
    }

    /// Gives the object open as `fd` this context.
    pub fn apply(&self, fd: &impl AsRawFd) -> std::io::Result<()> {
        self.0.set_for_file(fd).map_err(std::io::Error::other)
    }
}

/// The `file` entry of an `lxc_contexts` file (`file = "system_u:object_r:container_file_t:s0"`).
fn container_file_context(text: &str) -> Option<CString> {
    text.lines().find_map(|line| {
        let (key, value) = line.split_once('=')?;
        if key.trim() != "file" {
            return None;
        }
        let value = value.trim().trim_matches('"');
        (!value.is_empty())
            .then(|| CString::new(value).ok())
            .flatten()
    })
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

    #[test]
    fn reads_the_container_file_context_as_podman_does() {
        // Debian 13's /etc/selinux/default/contexts/lxc_contexts.
        let text = "process = \"system_u:system_r:container_t:s0\"\n\
                    content = \"system_u:object_r:virt_var_lib_t:s0\"\n\
                    file = \"system_u:object_r:container_file_t:s0\"\n\
                    ro_file = \"system_u:object_r:container_ro_file_t:s0\"\n";
        assert_eq!(
            container_file_context(text).unwrap().to_str().unwrap(),
            "system_u:object_r:container_file_t:s0"
        );
        assert!(container_file_context("process = \"x\"\n").is_none());
    }

    #[test]
    fn with_selinux_off_no_container_context_is_asked_for() {
        assert!(Label::of_container_files(Mode::Off).is_none());
    }
}
