//! Unit tests of `atomic`.

use super::*;
use std::os::unix::fs::PermissionsExt as _;

/// Whether `wanted` differs from what `dir` holds, as the volume manager asks it.
fn differs(dir: &Path, wanted: &[FileContent]) -> io::Result<bool> {
    Ok(read_trusted(dir)?.is_none_or(|current| current.differs(wanted)))
}

fn file(path: &str, content: &str, mode: u32) -> FileContent {
    FileContent {
        path: path.into(),
        mode,
        uid: None,
        gid: None,
        bytes: SecretBytes::new(content.as_bytes().to_vec()),
    }
}

fn tempdir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("ramlet-atomic-{name}-{}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn writes_swaps_and_cleans_up() {
    let dir = tempdir("swap");
    let v1 = [
        file("user", "app", 0o440),
        file("certs/tls.crt", "c1", 0o444),
    ];
    assert!(differs(&dir, &v1).unwrap());
    write(&dir, &v1, 0o711, (None, None), labels::Mode::Off).unwrap();
    assert_eq!(fs::read_to_string(dir.join("user")).unwrap(), "app");
    assert_eq!(fs::read_to_string(dir.join("certs/tls.crt")).unwrap(), "c1");
    assert_eq!(
        fs::metadata(dir.join("user")).unwrap().permissions().mode() & 0o777,
        0o440
    );
    assert!(!differs(&dir, &v1).unwrap());

    let v2 = [file("user", "app2", 0o440)];
    assert!(differs(&dir, &v2).unwrap());
    write(&dir, &v2, 0o711, (None, None), labels::Mode::Off).unwrap();
    assert_eq!(fs::read_to_string(dir.join("user")).unwrap(), "app2");
    assert!(
        fs::symlink_metadata(dir.join("certs")).is_err(),
        "a removed file's link must go"
    );
    let leftovers: Vec<String> = fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("..") && n != DATA_LINK)
        .collect();
    assert_eq!(
        leftovers.len(),
        1,
        "only the current data folder stays: {leftovers:?}"
    );
    let _ = fs::remove_dir_all(dir);
}

#[test]
fn an_owner_change_is_a_change() {
    let dir = tempdir("owner");
    let me = fs::metadata(&dir).unwrap().uid();
    let mut f = file("a", "x", 0o400);
    f.uid = Some(me);
    write(
        &dir,
        std::slice::from_ref(&f),
        0o700,
        (None, None),
        labels::Mode::Off,
    )
    .unwrap();
    assert!(!differs(&dir, std::slice::from_ref(&f)).unwrap());
    f.uid = Some(me + 1);
    assert!(differs(&dir, &[f]).unwrap());
    let _ = fs::remove_dir_all(dir);
}

#[test]
fn a_mode_change_is_a_change() {
    let dir = tempdir("mode");
    write(
        &dir,
        &[file("a", "x", 0o400)],
        0o700,
        (None, None),
        labels::Mode::Off,
    )
    .unwrap();
    assert!(differs(&dir, &[file("a", "x", 0o440)]).unwrap());
    let _ = fs::remove_dir_all(dir);
}

#[test]
fn what_a_container_swaps_in_is_never_followed_nor_waited_on() {
    let dir = tempdir("strange");
    let files = [file("a", "x", 0o400)];
    write(&dir, &files, 0o700, (None, None), labels::Mode::Off).unwrap();
    let data = fs::read_link(dir.join(DATA_LINK)).unwrap();
    // A FIFO in the data folder: answered at once, "differs".
    nix::unistd::mkfifo(&dir.join(&data).join("b"), nix::sys::stat::Mode::S_IRWXU).unwrap();
    assert!(differs(&dir, &files).unwrap());
    fs::remove_file(dir.join(&data).join("b")).unwrap();
    // A file swapped for a link to the host's files.
    fs::remove_file(dir.join(&data).join("a")).unwrap();
    std::os::unix::fs::symlink("/etc/hostname", dir.join(&data).join("a")).unwrap();
    assert!(differs(&dir, &files).unwrap());
    // `..data` pointed at the host's root.
    fs::remove_file(dir.join(DATA_LINK)).unwrap();
    std::os::unix::fs::symlink("/", dir.join(DATA_LINK)).unwrap();
    assert!(differs(&dir, &files).unwrap());
    // A rewrite puts it right.
    write(&dir, &files, 0o700, (None, None), labels::Mode::Off).unwrap();
    assert!(!differs(&dir, &files).unwrap());
    let _ = fs::remove_dir_all(dir);
}

/// What a container with a writable volume can leave at the names ramlet uses, aimed at a
/// folder outside the volume: every write still lands inside, and the outside is untouched.
#[test]
fn what_a_container_leaves_at_ramlets_names_never_redirects_a_write() {
    let dir = tempdir("redirect");
    let outside = tempdir("redirect-outside");
    fs::write(outside.join("a"), "host file").unwrap();
    let files = [file("a", "x", 0o400), file("sub/b", "y", 0o440)];
    write(&dir, &files, 0o700, (None, None), labels::Mode::Off).unwrap();
    let link = |target: &Path, name: &str| {
        let _ = fs::remove_file(dir.join(name));
        std::os::unix::fs::symlink(target, dir.join(name)).unwrap();
    };
    // The temporary link name as a folder with something in it, a top-level name as a link
    // out, `..data` pointed out, and a `..`-named link out (as if an old data folder).
    fs::create_dir(dir.join(DATA_LINK_TMP)).unwrap();
    fs::write(dir.join(DATA_LINK_TMP).join("keep"), "k").unwrap();
    link(&outside, "sub");
    link(&outside.join("a"), "a");
    link(&outside, DATA_LINK);
    link(&outside, "..old");
    assert!(differs(&dir, &files).unwrap());
    let v2 = [file("a", "x2", 0o400), file("sub/b", "y2", 0o440)];
    write(&dir, &v2, 0o700, (None, None), labels::Mode::Off).unwrap();
    assert_eq!(fs::read_to_string(dir.join("a")).unwrap(), "x2");
    assert_eq!(fs::read_to_string(dir.join("sub/b")).unwrap(), "y2");
    assert!(!differs(&dir, &v2).unwrap());
    let outside_now: Vec<String> = fs::read_dir(&outside)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(outside_now, ["a"]);
    assert_eq!(fs::read_to_string(outside.join("a")).unwrap(), "host file");
    assert!(fs::symlink_metadata(dir.join(DATA_LINK_TMP)).is_err());
    let _ = fs::remove_dir_all(dir);
    let _ = fs::remove_dir_all(outside);
}

#[test]
fn files_get_their_owner_and_mode_and_folders_theirs() {
    let dir = tempdir("modes");
    let me = nix::unistd::geteuid().as_raw();
    let group = nix::unistd::getegid().as_raw();
    let mut f = file("deep/er/key", "k", 0o440);
    f.uid = Some(me);
    f.gid = Some(group);
    write(
        &dir,
        &[f],
        0o750,
        (Some(me), Some(group)),
        labels::Mode::Off,
    )
    .unwrap();
    let meta = fs::metadata(dir.join("deep/er/key")).unwrap();
    assert_eq!(
        (meta.mode() & 0o7777, meta.uid(), meta.gid()),
        (0o440, me, group)
    );
    for folder in ["deep", "deep/er", DATA_LINK] {
        let meta = fs::metadata(dir.join(folder)).unwrap();
        assert_eq!(meta.mode() & 0o7777, 0o750, "{folder}");
    }
    let _ = fs::remove_dir_all(dir);
}
