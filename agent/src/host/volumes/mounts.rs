//! What `/proc/self/mountinfo` says, read for the volumes: which mount holds a path, whether
//! it is RAM that cannot swap (a noswap tmpfs or a ramfs), and what the running kernel can mount.

use std::fs;
use std::path::Path;

use crate::drivers::VolumeError;

/// A RAM mount's medium, for people: `a noswap tmpfs (size=...)` or `a ramfs`.
pub(super) fn medium_of(mount: &MountInfo<'_>) -> String {
    if mount.fstype == "ramfs" {
        return "a ramfs".to_owned();
    }
    let size = mount
        .super_options
        .split(',')
        .find_map(|o| o.strip_prefix("size="))
        .map(|s| format!(" (size={s})"))
        .unwrap_or_default();
    format!("a noswap {}{size}", mount.fstype)
}

/// The running kernel's release (`6.1.0-28-amd64`).
pub(super) fn kernel_release() -> String {
    fs::read_to_string("/proc/sys/kernel/osrelease")
        .unwrap_or_default()
        .trim()
        .to_owned()
}

/// Whether the kernel supports tmpfs `noswap` (Linux 6.4).
pub(super) fn kernel_has_noswap() -> bool {
    let release = kernel_release();
    let mut parts = release
        .trim()
        .split(['.', '-'])
        .map(|p| p.parse::<u32>().unwrap_or(0));
    let (major, minor) = (parts.next().unwrap_or(0), parts.next().unwrap_or(0));
    (major, minor) >= (6, 4)
}

/// The mount that holds `path` exactly (its mount point is `path`), from mountinfo text.
pub(super) fn mount_point<'a>(path: &Path, mountinfo: &'a str) -> Option<MountInfo<'a>> {
    mounts(mountinfo)
        .filter(|m| Path::new(&m.mount_point) == path)
        .last()
}

/// One line of `/proc/self/mountinfo`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct MountInfo<'a> {
    pub(super) mount_point: String,
    pub(super) fstype: &'a str,
    pub(super) super_options: &'a str,
}

impl MountInfo<'_> {
    /// Its filesystem type, and for tmpfs its size in bytes (mountinfo shows `size=` in KiB).
    pub(super) fn kind(&self) -> (String, Option<u64>) {
        let size = self
            .super_options
            .split(',')
            .find_map(|o| o.strip_prefix("size="))
            .and_then(|k| k.strip_suffix('k'))
            .and_then(|k| k.parse::<u64>().ok())
            .map(|k| k * 1024);
        let size = if self.fstype == "tmpfs" { size } else { None };
        (self.fstype.to_owned(), size)
    }
}

pub(super) fn mounts(mountinfo: &str) -> impl Iterator<Item = MountInfo<'_>> {
    mountinfo.lines().filter_map(|line| {
        let fields: Vec<&str> = line.split(' ').collect();
        let sep = fields.iter().position(|f| *f == "-")?;
        Some(MountInfo {
            mount_point: unescape_octal(fields.get(4)?),
            fstype: fields.get(sep + 1)?,
            super_options: fields.get(sep + 3)?,
        })
    })
}

pub(super) fn unescape_octal(field: &str) -> String {
    let mut out = String::new();
    let mut chars = field.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            let code: String = chars.by_ref().take(3).collect();
            out.push(u8::from_str_radix(&code, 8).map_or('?', char::from));
        } else {
            out.push(c);
        }
    }
    out
}

/// Checks that `root` lies on a noswap tmpfs or a ramfs (the deepest mount that holds it), and
/// returns that mount.
pub(super) fn check_ram<'a>(root: &Path, mountinfo: &'a str) -> Result<MountInfo<'a>, VolumeError> {
    let holder = mounts(mountinfo)
        .filter(|m| root.starts_with(&m.mount_point))
        .max_by_key(|m| m.mount_point.len())
        .ok_or_else(|| VolumeError::NotRam {
            path: root.to_owned(),
            why: "no mount holds it".into(),
        })?;
    let ok = match holder.fstype {
        "ramfs" => true,
        "tmpfs" => holder.super_options.split(',').any(|o| o == "noswap"),
        _ => false,
    };
    if ok {
        Ok(holder)
    } else {
        Err(VolumeError::NotRam {
            path: root.to_owned(),
            why: format!(
                "it is on {} ({}) mounted at {}, which can reach a disk; mount a tmpfs with noswap \
                 (or a ramfs) there first: `ramlet mount-volume-root` does, as root \
                 (ramlet-volume-root.service); for a user, `--owner UID` (ramlet-user-volume-root@UID.service)",
                holder.fstype, holder.super_options, holder.mount_point
            ),
        })
    }
}
