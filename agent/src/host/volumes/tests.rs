//! Unit tests of `volumes`.

use super::*;
use ramlet_specs::model::Medium;

const MOUNTINFO: &str = "\
22 1 252:0 / / rw,relatime shared:1 - ext4 /dev/vda rw
70 22 0:40 / /run/ramlet rw,relatime shared:12 - tmpfs tmpfs rw,mode=755,noswap
72 70 0:42 / /run/ramlet/users/1001 rw,relatime shared:14 - tmpfs tmpfs rw,size=65536k,mode=700,uid=1001,noswap
80 22 0:50 / /run/user/1001 rw - tmpfs tmpfs rw,size=1024k,mode=700
81 22 0:51 / /srv/ram\\040disk rw - ramfs ramfs rw
";

#[test]
fn accepts_noswap_tmpfs_and_ramfs() {
    assert!(check_ram(Path::new("/run/ramlet/users/1001"), MOUNTINFO).is_ok());
    assert!(check_ram(Path::new("/run/ramlet/users/1001/web"), MOUNTINFO).is_ok());
    assert!(check_ram(Path::new("/srv/ram disk"), MOUNTINFO).is_ok());
}

/// What `ramlet status` says the volumes are on, from the mount that holds them.
#[test]
fn names_the_medium_and_its_size() {
    let of = |path: &str| medium_of(&check_ram(Path::new(path), MOUNTINFO).unwrap());
    assert_eq!(of("/run/ramlet/users/1001"), "a noswap tmpfs (size=65536k)");
    assert_eq!(of("/run/ramlet"), "a noswap tmpfs");
    assert_eq!(of("/srv/ram disk/x"), "a ramfs");
}

#[test]
fn refuses_swappable_or_persistent_roots() {
    let err = check_ram(Path::new("/run/user/1001/ramlet"), MOUNTINFO)
        .unwrap_err()
        .to_string();
    assert!(err.contains("tmpfs") && err.contains("noswap"), "{err}");
    let err = check_ram(Path::new("/var/lib/ramlet"), MOUNTINFO)
        .unwrap_err()
        .to_string();
    assert!(err.contains("ext4"), "{err}");
}

fn file(mode: u32, uid: Option<u32>, gid: Option<u32>) -> FileContent {
    FileContent {
        path: "f".into(),
        mode,
        uid,
        gid,
        bytes: crate::secrets::SecretBytes::new(b"x".to_vec()),
    }
}

#[test]
fn folders_let_exactly_the_readers_of_the_files_through() {
    // PostgreSQL's key: root's, readable by group 70.
    assert_eq!(
        folder_access(&[file(0o440, Some(0), Some(70))]),
        (0o710, (Some(0), Some(70)))
    );
    assert_eq!(
        folder_access(&[file(0o400, Some(1000), None), file(0o600, Some(1000), None)]),
        (0o700, (Some(1000), None))
    );
    assert_eq!(folder_access(&[file(0o444, None, None)]).0, 0o701);
    assert_eq!(folder_access(&[file(0o440, Some(0), Some(0))]).0, 0o700);
    assert_eq!(
        folder_access(&[file(0o400, Some(101), Some(101)), file(0o444, None, None)]),
        (0o711, (None, None))
    );
}

/// Volumes as folders under `root` (no mounts, no SELinux).
fn folders(root: &Path) -> RamVolumes {
    RamVolumes {
        root: root.to_owned(),
        noswap: true,
        mounts: false,
        written: Mutex::default(),
        mounted: Mutex::default(),
        selinux: labels::Mode::Off,
        medium: String::new(),
        ids: None,
        helper: idmap::Helper::new(root.to_owned()),
    }
}

#[test]
fn only_folders_ramlet_marked_are_collected() {
    let root = std::env::temp_dir().join(format!("ramlet-gc-{}", std::process::id()));
    let _ = fs::remove_dir_all(&root);
    fs::create_dir_all(root.join("not-ramlet/vol")).unwrap();
    fs::write(root.join("not-ramlet/vol/keep"), b"mine").unwrap();
    fs::create_dir_all(root.join("web/tls")).unwrap();
    fs::write(root.join("web").join(OWNED_MARKER), b"").unwrap();
    fs::write(root.join("web/tls/key"), b"x").unwrap();
    let volumes = folders(&root);
    assert_eq!(volumes.specs().unwrap(), ["web".to_owned()].into());
    volumes.remove_spec("not-ramlet").unwrap();
    assert_eq!(fs::read(root.join("not-ramlet/vol/keep")).unwrap(), b"mine");
    volumes.remove_spec("web").unwrap();
    assert!(!root.join("web").exists());
    let _ = fs::remove_dir_all(root);
}

/// A no-op reconcile compares against what ramlet wrote, not against the files: only a moved
/// `..data` (or a start, with nothing recorded) makes it read the volume back.
#[test]
fn a_known_volume_is_not_read_back_until_its_data_link_moves() {
    let root = std::env::temp_dir().join(format!("ramlet-known-{}", std::process::id()));
    let _ = fs::remove_dir_all(&root);
    let volumes = folders(&root);
    let spec = VolumeSpec {
        spec: "web".into(),
        volume: "tls".into(),
        medium: Medium::Tmpfs,
        size: 65536,
    };
    let dir = volumes.dir(&spec);
    fs::create_dir_all(&dir).unwrap();
    let mut wanted = file(0o400, None, None);
    wanted.bytes = crate::secrets::SecretBytes::new(b"v1".to_vec());
    let wanted = [wanted];
    atomic::write(
        &dir,
        &wanted,
        0o700,
        (None, None),
        crate::host::labels::Mode::Off,
    )
    .unwrap();
    // Not known yet (as after a start): read back once, then recorded.
    assert!(!volumes.differs(&spec, &wanted).unwrap());
    // Changed in place behind ramlet's back, `..data` unmoved: not read, so not seen.
    let data = atomic::data_name(&dir).unwrap().unwrap();
    // (The file is 0400: made writable first, so the test needs no root's override.)
    let edited = dir.join(&data).join("f");
    fs::set_permissions(&edited, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    fs::write(&edited, "edited").unwrap();
    assert!(!volumes.differs(&spec, &wanted).unwrap());
    // `..data` moved: read back, and the edit is seen.
    fs::rename(dir.join(&data), dir.join("..moved")).unwrap();
    fs::remove_file(dir.join(atomic::DATA_LINK)).unwrap();
    std::os::unix::fs::symlink("..moved", dir.join(atomic::DATA_LINK)).unwrap();
    assert!(volumes.differs(&spec, &wanted).unwrap());
    let _ = fs::remove_dir_all(root);
}

#[test]
fn sizes_count_whole_pages_and_leave_room_for_the_swap() {
    let sized = |len: usize| FileContent {
        bytes: crate::secrets::SecretBytes::new(vec![b'x'; len]),
        ..file(0o400, None, None)
    };
    assert_eq!(crate::drivers::footprint(&[sized(100)]), 4096);
    assert_eq!(
        crate::drivers::footprint(&[sized(100), sized(4097), sized(0)]),
        4096 * 3
    );
    // 4Ki, the smallest sizeLimit, holds a 100-byte secret, and the mount holds it twice.
    assert_eq!(mount_size(4096), 8192);
    assert_eq!(mount_size(5000), 4 * 4096);
    let line = "99 30 0:50 / /srv/v/web/tls rw - tmpfs ramlet rw,size=8k,mode=700,noswap";
    let mount = mounts::mounts(line).next().unwrap();
    assert_eq!(mount.kind(), ("tmpfs".to_owned(), Some(8192)));
    let line = "99 30 0:50 / /srv/v/web/tls rw - ramfs ramlet rw,mode=700";
    assert_eq!(
        mounts::mounts(line).next().unwrap().kind(),
        ("ramfs".to_owned(), None)
    );
}

#[test]
fn a_volume_root_owner_is_a_user_by_name_or_uid() {
    let root = Owner { uid: 0, gid: 0 };
    assert_eq!(Owner::of_user("root").unwrap(), root);
    assert_eq!(Owner::of_user("0").unwrap(), root);
    let error = Owner::of_user("no-such-user-here").unwrap_err();
    assert_eq!(
        error.to_string(),
        "no user \"no-such-user-here\" on this host"
    );
}

#[test]
fn parents_of_a_volume_root_can_be_passed_through_the_root_cannot() {
    use std::os::unix::fs::PermissionsExt as _;
    let base = std::env::temp_dir().join(format!("ramlet-parents-{}", std::process::id()));
    let root = base.join("users/1000");
    root::create_with_parents_context(&root, 0o700, labels::Mode::Off).unwrap();
    let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&root), 0o700);
    // Anyone may pass through (0755 under the usual umask).
    assert_eq!(mode(&base.join("users")) & 0o711, 0o711);
    fs::remove_dir_all(&base).unwrap();
}

#[test]
fn finds_exact_mount_points() {
    assert!(mount_point(Path::new("/run/ramlet/users/1001"), MOUNTINFO).is_some());
    assert!(mount_point(Path::new("/run/ramlet/users"), MOUNTINFO).is_none());
}
