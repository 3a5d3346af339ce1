//! The agent on a real host: ramlet runs against a real systemd user manager, the real Quadlet
//! generator and real Podman, in the sandbox `e2e/sandbox/sandbox.sh` sets up. User scope runs
//! ramlet as the unprivileged test user (rootless Podman); system scope runs it as root against
//! root's own user manager (rootful Podman).
//!
//! These tests are `#[ignore]`d in a plain `cargo test` (there is no systemd there);
//! `scripts/test` runs them inside the sandbox:
//! `e2e/sandbox/sandbox.sh cargo test -p ramlet-e2e --test agent -- --ignored --test-threads=1`.

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::os::unix::fs::MetadataExt as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

mod common;

use common::*;

#[test]
#[ignore = "needs the e2e sandbox (scripts/test runs it)"]
// One scenario, step by step, as an operator lives it: splitting it would restart the agent and
// the containers between steps, which is what several steps check does not happen.
#[allow(clippy::too_many_lines)]
fn user_scope_runs_rotates_edits_adopts_and_removes() {
    let scope = Scope::user();
    let mut agent = Agent::new(scope.clone(), "user");
    agent.secret("x", "alpha");
    agent.secret("y", "beta");
    agent.spec(
        "a",
        &container(
            "e2e-a",
            &[("x", "0440", "x"), ("y", "0400", "y")],
            "restart",
            "one",
        ),
    );
    agent.spec(
        "b",
        &container("e2e-b", &[("y", "0400", "y")], "restart", "one"),
    );
    agent.start();

    // New spec: the container reads its secrets from a noswap tmpfs, with the modes asked for.
    // The script prints DIR last, so once it is in the journal every line before it is too.
    let logs = agent.wait("e2e-a to print its files", Duration::from_mins(1), || {
        let logs = scope.logs("e2e-a");
        logs.contains("DIR ").then_some(logs)
    });
    assert!(logs.contains("FILE /run/s/x 440 alpha"), "{logs}");
    assert!(logs.contains("FILE /run/s/y 400 beta"), "{logs}");
    let mount = mount_line(&logs).expect("a MOUNT line");
    assert!(
        mount.contains(" - tmpfs ") && mount.contains("noswap"),
        "{mount}"
    );
    assert!(
        mount.contains(" ro,") || mount.contains(" ro "),
        "read-only mount: {mount}"
    );
    assert!(logs.contains("DIR 700"), "{logs}");
    // Both settled (systemd 252 can lose a start's READY=1 under load; ramlet starts such a
    // unit again, so an invocation read before that would be the lost one).
    let settled = |names: &[&str]| {
        let status = agent.status();
        names
            .iter()
            .all(|n| status["specs"][*n]["phase"] == "Ready" && scope.active(n) == "active")
            .then_some(())
    };
    agent.wait("e2e-a and e2e-b Ready", Duration::from_mins(1), || {
        settled(&["e2e-a", "e2e-b"])
    });
    let b_id = scope.invocation("e2e-b");
    let a_id = scope.invocation("e2e-a");
    assert!(!a_id.is_empty() && !b_id.is_empty());
    assert!(
        !std::fs::read_to_string(scope.unit_dir().join("e2e-a.container"))
            .unwrap()
            .contains("alpha"),
        "no secret in the unit file"
    );

    // Rotation of x: only e2e-a restarts, and reads the new value.
    let rotated = Instant::now();
    agent.secret("x", "alpha2");
    agent.wait(
        "e2e-a to read the rotated secret",
        Duration::from_mins(1),
        || {
            scope
                .logs("e2e-a")
                .contains("FILE /run/s/x 440 alpha2")
                .then_some(())
        },
    );
    let rotation_latency = rotated.elapsed();
    assert_ne!(scope.invocation("e2e-a"), a_id, "e2e-a restarted");
    let log = agent.log();
    let lines: Vec<&str> = log.lines().collect();
    let tail = &lines[lines.len().saturating_sub(30)..];
    assert_eq!(
        scope.invocation("e2e-b"),
        b_id,
        "e2e-b does not use x and keeps running: {tail:#?}"
    );

    // For comparison, in the same run: a bare restart of the same unit.
    let bare = Instant::now();
    let restart = scope.run("systemctl", &["--user", "restart", "e2e-a.service"]);
    let bare_restart = bare.elapsed();
    let bare_note = if restart.status.success() {
        String::new()
    } else {
        // systemd 252 lost the restart's READY=1 (what ramlet retries at once); by hand, the
        // unit is started again so the test goes on, and the figure is no comparison.
        let again = scope.run("systemctl", &["--user", "start", "e2e-a.service"]);
        assert!(again.status.success(), "{again:?}");
        " (it failed: systemd lost its READY=1; no comparison)".to_owned()
    };
    let figures = format!(
        "rotation (secret file written -> container printed new value): {rotation_latency:?}\nbare `systemctl --user restart` of the same unit: {bare_restart:?}{bare_note}\n"
    );
    println!("{figures}");
    let _ = std::fs::write(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/e2e-figures.txt"),
        &figures,
    );

    // Spec edit: the environment changes, so the unit restarts.
    let a_id = scope.invocation("e2e-a");
    agent.spec(
        "a",
        &container(
            "e2e-a",
            &[("x", "0440", "x"), ("y", "0400", "y")],
            "restart",
            "two",
        ),
    );
    agent.wait(
        "e2e-a to restart with MARK two",
        Duration::from_mins(1),
        || scope.logs("e2e-a").contains("MARK two").then_some(()),
    );
    agent.wait("e2e-a Ready again", Duration::from_mins(1), || {
        settled(&["e2e-a"])
    });
    assert_ne!(scope.invocation("e2e-a"), a_id);
    assert_eq!(scope.invocation("e2e-b"), b_id);

    // A restart of ramlet adopts both units and restarts neither.
    let a_id = scope.invocation("e2e-a");
    agent.restart(|| {
        assert_eq!(
            scope.active("e2e-a"),
            "active",
            "stopping ramlet leaves containers running"
        );
    });
    // (Seen once on a loaded host: e2e-a restarted here. The agent's log says by which action.)
    let log = agent.log();
    let lines: Vec<&str> = log.lines().collect();
    let tail = &lines[lines.len().saturating_sub(30)..];
    assert_eq!(scope.invocation("e2e-a"), a_id, "{tail:#?}");
    assert_eq!(scope.invocation("e2e-b"), b_id, "{tail:#?}");

    // A broken spec and a missing secret: reported where they are, the others keep running.
    agent.spec("broken", "apiVersion: ramlet.dev/v1alpha1\nkind: Container\nmetadata: {name: broken}\nspec: {image: [\n");
    agent.spec(
        "c",
        &container("e2e-c", &[("z", "0400", "missing")], "restart", "one"),
    );
    let status = agent.wait("errors in the status", Duration::from_mins(1), || {
        let status = agent.status();
        (status["specs"]["e2e-c"]["reason"] == "SecretNotFound").then_some(status)
    });
    let errors = status["errors"].to_string();
    assert!(errors.contains("broken.yaml:5:1"), "{errors}");
    assert_eq!(status["specs"]["e2e-c"]["phase"], "Failed");
    assert_eq!(scope.invocation("e2e-a"), a_id);
    assert_eq!(scope.invocation("e2e-b"), b_id);
    let text = scope.run(
        ramlet_binary().to_str().unwrap(),
        &[
            "status",
            "--scope",
            "user",
            "--state-dir",
            agent.dir.join("state").to_str().unwrap(),
        ],
    );
    let text_out = String::from_utf8_lossy(&text.stdout);
    assert_eq!(text.status.code(), Some(1), "{text_out}");
    assert!(
        text_out.contains("e2e-c")
            && text_out.contains("Failed")
            && text_out.contains("broken.yaml:5:1"),
        "{text_out}"
    );

    // Removal: the unit stops, its file goes, its volume is wiped.
    // (The volume goes last, after the daemon-reload that forgets the unit: wait for all three.)
    agent.remove_spec("b");
    agent.wait("e2e-b to go", Duration::from_mins(1), || {
        (!scope.unit_dir().join("e2e-b.container").exists()
            && scope.active("e2e-b") != "active"
            && !scope.volume_root().join("e2e-b").exists())
        .then_some(())
    });
    assert_eq!(scope.active("e2e-a"), "active");
}

#[test]
#[ignore = "needs the e2e sandbox (scripts/test runs it)"]
fn user_scope_multi_file_volume_is_never_seen_half_updated() {
    let scope = Scope::user();
    let mut agent = Agent::new(scope.clone(), "atomic");
    agent.secret("pair", r#"{"a":"0","b":"0"}"#);
    // Reads both files through one resolution of ..data; prints TORN if they ever differ.
    let spec = "apiVersion: ramlet.dev/v1alpha1\nkind: Container\nmetadata: {name: e2e-pair}\nspec:\n  image: localhost/busybox:latest\n  network: none\n  exec:\n    - sh\n    - -c\n    - >-\n      trap 'exit 0' TERM; last=;\n      while true; do\n      if cd /run/s/..data 2>/dev/null; then a=$(cat a 2>/dev/null); b=$(cat b 2>/dev/null); cd /;\n      if [ -n \"$a\" ] && [ -n \"$b\" ]; then [ \"$a\" != \"$b\" ] && echo \"TORN $a $b\"; [ \"$a\" != \"$last\" ] && echo \"GEN $a\" && last=$a; fi; fi;\n      done\n  volumes:\n    - name: s\n      mountPath: /run/s\n      files:\n        - {path: a, secret: {store: local, name: pair, property: a}}\n        - {path: b, secret: {store: local, name: pair, property: b}}\n  rotation: {strategy: none}\n";
    agent.spec("pair", spec);
    agent.start();
    agent.wait("generation 0", Duration::from_mins(1), || {
        scope.logs("e2e-pair").contains("GEN 0").then_some(())
    });
    let id = scope.invocation("e2e-pair");
    for generation in 1..=15 {
        agent.secret(
            "pair",
            &format!(r#"{{"a":"{generation}","b":"{generation}"}}"#),
        );
        std::thread::sleep(Duration::from_millis(300));
    }
    agent.wait("generation 15", Duration::from_mins(1), || {
        scope.logs("e2e-pair").contains("GEN 15").then_some(())
    });
    let logs = scope.logs("e2e-pair");
    assert!(!logs.contains("TORN"), "{logs}");
    let log = agent.log();
    let jobs: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("e2e-pair") && !l.contains("write-volumes"))
        .collect();
    assert_eq!(
        scope.invocation("e2e-pair"),
        id,
        "rotation: none leaves the container running; ramlet's lines about it: {jobs:#?}"
    );
}

#[test]
#[ignore = "needs the e2e sandbox (scripts/test runs it)"]
#[allow(clippy::too_many_lines)] // one story, step by step: each step builds on the last
fn system_scope_mounts_noswap_tmpfs_per_volume_and_unmounts_on_removal() {
    let scope = Scope::system();
    let mut agent = Agent::new(scope.clone(), "system");
    agent.secret("x", "root-secret");
    agent.secret("y", "other");
    agent.spec(
        "s",
        &container("e2e-sys", &[("x", "0400", "x")], "restart", "one"),
    );
    agent.spec(
        "t",
        &container("e2e-sib", &[("y", "0440", "y")], "restart", "one"),
    );
    agent.start();
    let logs = agent.wait(
        "e2e-sys to print its files",
        Duration::from_secs(90),
        || {
            let logs = scope.logs("e2e-sys");
            logs.contains("DIR ").then_some(logs)
        },
    );
    assert!(logs.contains("FILE /run/s/x 400 root-secret"), "{logs}");
    assert!(logs.contains("DIR 700"), "{logs}");
    let mount = mount_line(&logs).expect("a MOUNT line");
    assert!(
        // Twice sizeLimit: room for the old and new files during a rotation's swap.
        mount.contains(" - tmpfs ") && mount.contains("noswap") && mount.contains("size=128k"),
        "{mount}"
    );
    let volume = scope.volume_root().join("e2e-sys/s");
    let host_mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(
        host_mounts
            .lines()
            .any(|l| l.contains(&format!(" {} ", volume.display())) && l.contains("noswap")),
        "ramlet mounted {}",
        volume.display()
    );
    agent.wait("e2e-sib to run", Duration::from_mins(1), || {
        scope
            .logs("e2e-sib")
            .contains("FILE /run/s/y 440 other")
            .then_some(())
    });

    // Rotation: only the user of x restarts.
    let (id, sibling) = (scope.invocation("e2e-sys"), scope.invocation("e2e-sib"));
    agent.secret("x", "root-secret-2");
    agent.wait("the rotated secret", Duration::from_mins(1), || {
        scope
            .logs("e2e-sys")
            .contains("root-secret-2")
            .then_some(())
    });
    assert_ne!(scope.invocation("e2e-sys"), id);
    assert_eq!(scope.invocation("e2e-sib"), sibling);

    // An image edit restarts that unit, and only it.
    let id = scope.invocation("e2e-sys");
    agent.spec(
        "t",
        &container("e2e-sib", &[("y", "0440", "y")], "restart", "one")
            .replace("busybox:latest", "busybox:v2"),
    );
    agent.wait("e2e-sib on the new image", Duration::from_mins(1), || {
        (scope.invocation("e2e-sib") != sibling && scope.active("e2e-sib") == "active")
            .then_some(())
    });
    assert_eq!(scope.invocation("e2e-sys"), id);
    let unit = std::fs::read_to_string(scope.unit_dir().join("e2e-sib.container")).unwrap();
    assert!(unit.contains("Image=localhost/busybox:v2"), "{unit}");

    // A sizeLimit edit mounts a new volume, which the container sees after a restart; at the
    // smallest size (4Ki: one page, twice for the swap) a 100-byte secret still rotates.
    let sys = |extra: &str| {
        container("e2e-sys", &[("x", "0400", "x")], "restart", "one")
            .replace("sizeLimit: 64Ki", &format!("sizeLimit: 4Ki{extra}"))
    };
    let (id, sib) = (scope.invocation("e2e-sys"), scope.invocation("e2e-sib"));
    agent.spec("s", &sys(""));
    agent.wait("e2e-sys on a 4Ki volume", Duration::from_mins(1), || {
        let mount = mount_line(&scope.logs("e2e-sys"))?;
        (scope.invocation("e2e-sys") != id && mount.contains("size=8k")).then_some(())
    });
    assert_eq!(scope.invocation("e2e-sib"), sib, "only e2e-sys restarts");
    let hundred = "r".repeat(100);
    agent.secret("x", &hundred);
    agent.wait(
        "a rotation in the 4Ki volume",
        Duration::from_mins(1),
        || scope.logs("e2e-sys").contains(&hundred).then_some(()),
    );
    // A medium edit: ramfs from the next start on.
    let id = scope.invocation("e2e-sys");
    agent.spec("s", &sys("\n      medium: ramfs"));
    agent.wait("e2e-sys on ramfs", Duration::from_mins(1), || {
        let mount = mount_line(&scope.logs("e2e-sys"))?;
        (scope.invocation("e2e-sys") != id && mount.contains(" - ramfs ")).then_some(())
    });
    assert!(
        scope
            .logs("e2e-sys")
            .contains(&format!("FILE /run/s/x 400 {hundred}")),
        "{}",
        scope.logs("e2e-sys")
    );

    // A restarted ramlet restarts nothing.
    let (id, sibling) = (scope.invocation("e2e-sys"), scope.invocation("e2e-sib"));
    agent.restart(|| ());
    assert_eq!(
        (scope.invocation("e2e-sys"), scope.invocation("e2e-sib")),
        (id, sibling)
    );

    // Removal unmounts.
    agent.remove_spec("s");
    agent.wait("e2e-sys to go", Duration::from_mins(1), || {
        (!volume.exists() && scope.active("e2e-sys") != "active").then_some(())
    });
    let host_mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(
        !host_mounts.contains(&format!(" {} ", volume.display())),
        "the volume is unmounted"
    );
    assert_eq!(scope.active("e2e-sib"), "active");
}

/// A root agent and a container that can write its volume: whatever the container leaves at
/// the names ramlet uses (a FIFO, links out of the volume, a folder at the temporary link's
/// name, a data folder swapped for a link) never makes the agent read, write or wait outside
/// the volume, and every rotation still lands at once.
#[test]
#[ignore = "needs the e2e sandbox (scripts/test runs it)"]
fn system_scope_a_writable_volume_cannot_steer_the_agent() {
    let scope = Scope::system();
    let mut agent = Agent::new(scope.clone(), "writable");
    agent.secret("x", "w1");
    let spec = container("e2e-w", &[("x", "0400", "x")], "none", "one")
        .replace(
            "      mountPath: /run/s\n",
            "      mountPath: /run/s\n      readOnly: false\n",
        )
        // The smallest volume: each rotation below holds two copies for a moment.
        .replace("sizeLimit: 64Ki", "sizeLimit: 4Ki");
    agent.spec("w", &spec);
    agent.start();
    agent.wait("e2e-w to print its file", Duration::from_mins(1), || {
        scope
            .logs("e2e-w")
            .contains("FILE /run/s/x 400 w1")
            .then_some(())
    });
    let volume = scope.volume_root().join("e2e-w/s");
    // What the container aims at: a folder on the host, outside every volume.
    let outside = agent.dir.join("outside");
    std::fs::create_dir_all(&outside).unwrap();
    std::fs::write(outside.join("x"), "host file").unwrap();
    let snapshot = || {
        let mut seen: Vec<(String, String)> = std::fs::read_dir(&outside)
            .unwrap()
            .map(|e| {
                let e = e.unwrap();
                let content = std::fs::read_to_string(e.path()).unwrap_or_default();
                (e.file_name().to_string_lossy().into_owned(), content)
            })
            .collect();
        seen.sort();
        seen
    };
    let before = snapshot();
    let out = outside.display();
    let attacks = [
        (
            "a FIFO in the data folder",
            "mkfifo /run/s/..data/fifo".to_owned(),
        ),
        (
            "..data linked out of the volume",
            format!("ln -sfn {out} /run/s/..data"),
        ),
        (
            "a folder at the temporary link's name",
            "mkdir /run/s/..data_tmp && touch /run/s/..data_tmp/keep".to_owned(),
        ),
        (
            "a file's name linked out of the volume",
            format!("ln -sfn {out}/x /run/s/x"),
        ),
        (
            "the data folder swapped for a link out",
            format!(
                "d=$(readlink /run/s/..data) && mv /run/s/$d /run/s/..moved && ln -s {out} /run/s/$d"
            ),
        ),
    ];
    let mut slowest = Duration::ZERO;
    for (round, (what, script)) in attacks.iter().enumerate() {
        let done = scope.run("podman", &["exec", "ramlet-e2e-w", "sh", "-c", script]);
        assert!(
            done.status.success(),
            "{what}: {}",
            String::from_utf8_lossy(&done.stderr)
        );
        let value = format!("w{}", round + 2);
        let start = Instant::now();
        agent.secret("x", &value);
        agent.wait(
            &format!("the rotation after {what}"),
            Duration::from_secs(30),
            || (std::fs::read_to_string(volume.join("x")).ok()? == value).then_some(()),
        );
        let took = start.elapsed();
        println!(
            "{what}: the next rotation landed in {} ms",
            took.as_millis()
        );
        slowest = slowest.max(took);
        assert_eq!(
            snapshot(),
            before,
            "{what}: something outside the volume changed"
        );
    }
    // Nothing hung: the agent still answers, and says the spec is fine.
    assert_eq!(
        agent.status()["specs"]["e2e-w"]["phase"],
        "Ready",
        "{}",
        agent.status()
    );
    assert!(
        slowest < Duration::from_secs(1),
        "a rotation took {} ms after a container's tampering (bound: 1 s)",
        slowest.as_millis()
    );
}

/// A random lowercase hex string of `len` characters.
fn random_hex(len: usize) -> String {
    use std::hash::{BuildHasher as _, Hasher as _};
    let mut out = String::new();
    while out.len() < len {
        let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
        hasher.write_usize(out.len());
        let _ = write!(out, "{:016x}", hasher.finish());
    }
    out.truncate(len);
    out
}

/// Every regular file below `root` that lies on persistent storage: RAM and pseudo filesystems
/// (by mount point), the paths in `skip` and cache folders (marked with `CACHEDIR.TAG`, as
/// cargo's target folders are) are left out, and links are not followed.
fn persistent_files(root: &Path, ram: &[PathBuf], skip: &[PathBuf], out: &mut Vec<PathBuf>) {
    if root.join("CACHEDIR.TAG").exists() {
        return;
    }
    let Ok(entries) = std::fs::read_dir(root) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if ram.contains(&path) || skip.iter().any(|s| path.starts_with(s)) {
            continue;
        }
        match entry.file_type() {
            Ok(kind) if kind.is_dir() => persistent_files(&path, ram, skip, out),
            Ok(kind) if kind.is_file() => out.push(path),
            _ => {}
        }
    }
}

/// The mount points of RAM and pseudo filesystems, which persistent-storage searches leave out.
fn ram_mounts() -> Vec<PathBuf> {
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    mountinfo
        .lines()
        .filter_map(|line| {
            let fields: Vec<&str> = line.split(' ').collect();
            let sep = fields.iter().position(|f| *f == "-")?;
            let persistent = !matches!(
                fields[sep + 1],
                "tmpfs"
                    | "ramfs"
                    | "proc"
                    | "sysfs"
                    | "devtmpfs"
                    | "devpts"
                    | "mqueue"
                    | "cgroup"
                    | "cgroup2"
                    | "securityfs"
                    | "debugfs"
                    | "tracefs"
                    | "fusectl"
                    | "configfs"
                    | "bpf"
                    | "pstore"
                    | "hugetlbfs"
                    | "binfmt_misc"
                    | "nsfs"
            );
            (!persistent).then(|| PathBuf::from(fields[4]))
        })
        .collect()
}

/// The folders a persistent-storage search walks: the system's, the test's and the manager's.
const SEARCHED_ROOTS: [&str; 10] = [
    "/etc",
    "/var",
    "/root",
    "/home",
    "/tmp",
    "/srv",
    "/opt",
    "/run",
    "/usr/local",
    "/work",
];

/// Every file on persistent storage below [`SEARCHED_ROOTS`] and `more` roots, sorted, without
/// `skip` and Rust's own toolchain and package caches (written by rustup and cargo, never by
/// ramlet).
fn searched_files(more: &[PathBuf], skip: &[PathBuf]) -> Vec<PathBuf> {
    let ram = ram_mounts();
    let home = |var: &str, default: &str| std::env::var(var).unwrap_or_else(|_| default.into());
    let mut skip = skip.to_vec();
    skip.push(PathBuf::from(home("CARGO_HOME", "/root/.cargo")));
    skip.push(PathBuf::from(home("RUSTUP_HOME", "/root/.rustup")));
    let mut files = Vec::new();
    for root in SEARCHED_ROOTS
        .iter()
        .map(PathBuf::from)
        .chain(more.iter().cloned())
    {
        persistent_files(&root, &ram, &skip, &mut files);
    }
    files.sort();
    files.dedup();
    files
}

/// The files among `files` that hold any of `patterns` (grep, fixed strings, binary as text).
fn files_holding(files: &[PathBuf], patterns: &Path) -> Vec<String> {
    let mut hits = Vec::new();
    for chunk in files.chunks(500) {
        let output = Command::new("grep")
            .args(["-lF", "--binary-files=text", "--no-messages", "-f"])
            .arg(patterns)
            .arg("--")
            .args(chunk)
            .output()
            .unwrap();
        hits.extend(
            String::from_utf8_lossy(&output.stdout)
                .lines()
                .map(str::to_owned),
        );
    }
    hits
}

/// How many processes' command lines and environments were searched for `patterns`; fails
/// the test at the first that holds one.
fn no_process_holds(patterns: &[String]) -> usize {
    let mut processes = 0;
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        if !entry
            .file_name()
            .to_string_lossy()
            .bytes()
            .all(|b| b.is_ascii_digit())
        {
            continue;
        }
        for what in ["cmdline", "environ"] {
            let Ok(bytes) = std::fs::read(entry.path().join(what)) else {
                continue;
            };
            processes += usize::from(what == "cmdline");
            let text = String::from_utf8_lossy(&bytes);
            let found = patterns.iter().any(|p| text.contains(p.as_str()));
            assert!(!found, "{}/{what} holds a secret", entry.path().display());
        }
    }
    processes
}

/// Canary secrets from four stores (a file, moto's Secrets Manager as a JSON property, the GCP
/// fake, a real OpenBao server's KV, the key of a certificate its PKI engine issued, and the
/// password of a PostgreSQL user its database engine leased), through
/// a start, a rotation and a crash, with
/// `RAMLET_LOG=trace`: no canary and not the OpenBao token, in clear or in base64, shows up in ramlet's log, its state and status files, the unit files,
/// ramlet's or the container's environment, ramlet's command line, `podman inspect`, a core
/// dump, or any file on
/// persistent storage (everything but RAM mounts, the cargo target folder and the file store's
/// own input folder, where the test puts the secret ramlet reads).
#[test]
#[ignore = "needs the e2e sandbox (scripts/test runs it)"]
#[allow(clippy::too_many_lines)] // one story, step by step
fn system_scope_no_secret_leaks_at_trace_level() {
    use base64::Engine as _;
    use std::os::unix::process::ExitStatusExt as _;
    let scope = Scope::system();
    let mut agent = Agent::new(scope.clone(), "leak");
    agent.envs.push(("RAMLET_LOG".into(), "trace".into()));
    // The SDKs' own switches for logging what they send and receive (issue 19, finding 5):
    // ramlet must not let them print a secret either.
    agent
        .envs
        .push(("GOOGLE_CLOUD_RUST_LOGGING".into(), "true".into()));
    agent
        .envs
        .push(("LOG_SENSITIVE_BODIES".into(), "true".into()));
    let aws = ramlet_e2e::peers::Aws::start(&agent.dir);
    let gcp = ramlet_e2e::peers::Gcp::start(&agent.dir);
    // Issue 35: an OpenBao store too, logged in with a token the agent holds in memory.
    let bao = ramlet_e2e::openbao::Bao::start(&agent.dir.join("bao"));
    let bao_store = openbao_store(&agent, &bao, &["app/bao"]);
    let bao_token = std::fs::read_to_string(agent.dir.join("keys/bao-token")).unwrap();
    // And one logging in with AppRole: its secret ID in a 0600 file of the host's.
    let (role_id, secret_id) = bao.approle("leak", "host", "1h");
    ramlet_e2e::openbao::write_private(&agent.dir.join("keys/bao-secret-id"), &secret_id);
    let approle_store = format!(
        "apiVersion: ramlet.dev/v1alpha1\nkind: SecretStore\nmetadata: {{name: bao-approle}}\nspec:\n  refreshInterval: 10s\n  openbao:\n    address: \"{}\"\n    mount: secret\n    auth:\n      appRole: {{roleId: {role_id}, secretId: {{file: {}}}}}\n",
        bao.address(),
        agent.dir.join("keys/bao-secret-id").display()
    );
    // Issue 39: a certificate OpenBao's PKI engine issues; its key (known once issued, read
    // from the volume) is searched for too.
    bao.pki_role("tls", "leak", "example.com");
    bao.issuer_policy("issuer", "tls", "leak");
    ramlet_e2e::openbao::write_private(
        &agent.dir.join("keys/bao-pki-token"),
        &bao.token("issuer", "1h"),
    );
    let pki_store = format!(
        "apiVersion: ramlet.dev/v1alpha1\nkind: SecretStore\nmetadata: {{name: bao-pki}}\nspec:\n  refreshInterval: 10s\n  openbao:\n    address: \"{}\"\n    mount: tls\n    auth:\n      token: {{file: {}}}\n    pki:\n      certificates:\n        leak: {{role: leak, commonName: leak.example.com, ttl: 1h}}\n",
        bao.address(),
        agent.dir.join("keys/bao-pki-token").display()
    );
    // And a PostgreSQL user its database engine leases; its password (known once created, read
    // from the volume) is searched for too.
    let postgres = ramlet_e2e::postgres::Postgres::start("leak");
    bao.database_role("db", "leak", &postgres, "1h", "2h");
    bao.leaser_policy("leaser", "db", "leak");
    ramlet_e2e::openbao::write_private(
        &agent.dir.join("keys/bao-db-token"),
        &bao.token("leaser", "1h"),
    );
    let db_store = format!(
        "apiVersion: ramlet.dev/v1alpha1\nkind: SecretStore\nmetadata: {{name: bao-db}}\nspec:\n  refreshInterval: 10s\n  openbao:\n    address: \"{}\"\n    mount: db\n    auth:\n      token: {{file: {}}}\n    database:\n      credentials:\n        leak: {{role: leak}}\n",
        bao.address(),
        agent.dir.join("keys/bao-db-token").display()
    );
    // The metrics file is searched too (it is in the agent's folder).
    agent.args = vec![
        "--metrics-file".into(),
        agent.dir.join("metrics.prom").display().to_string(),
    ];
    // Distinct lengths, so the container can show which version it has without printing it.
    let canary = |len: usize| format!("LEAKCANARY{}", random_hex(len - 10));
    let (file1, file2, aws1, aws2, gcp1, gcp2) = (
        canary(32),
        canary(40),
        canary(33),
        canary(41),
        canary(34),
        canary(42),
    );
    let (bao1, bao2) = (canary(35), canary(43));
    bao.put("app/bao", &[("password", &bao1)]);
    agent.secret("x", &file1);
    moto(
        &aws,
        &[
            "create_secret",
            "Name=app/db",
            &format!("SecretString={{\"password\": \"{aws1}\"}}"),
        ],
    );
    gcp.create("tls-key");
    gcp.add_version("tls-key", gcp1.as_bytes());
    agent.spec("stores", &cloud_store_specs(&aws, &gcp));
    agent.spec("bao", &bao_store);
    agent.spec("bao-approle", &approle_store);
    agent.spec("bao-pki", &pki_store);
    agent.spec("bao-db", &db_store);
    // The container shows each file's first ten bytes (LEAKCANARY) and its length, never more.
    let spec = container(
        "e2e-leak",
        &[
            ("x", "0400", "x"),
            ("db", "0400", "db"),
            ("tls", "0400", "tls"),
            ("bao", "0400", "bao"),
            ("role", "0400", "role"),
            ("key", "0400", "key"),
            ("pw", "0400", "pw"),
        ],
        "restart",
        "leak",
    )
    .replace(
        "{store: local, name: db}",
        "{store: aws, name: app/db, property: password}",
    )
    .replace("{store: local, name: tls}", "{store: gcp, name: tls-key}")
    .replace(
        "{store: local, name: bao}",
        "{store: bao, name: app/bao, property: password}",
    )
    .replace(
        "{store: local, name: role}",
        "{store: bao-approle, name: app/bao, property: password}",
    )
    .replace(
        "{store: local, name: key}",
        "{store: bao-pki, name: leak, property: private_key}",
    )
    // (Through a template that puts LEAKCANARY first: the container prints a file's first ten
    // bytes.)
    .replace(
        "          secret: {store: local, name: pw}\n",
        "          template:\n            inputs: {lease: {store: bao-db, name: leak}}\n            text: \"LEAKCANARY{{ lease.password }}\"\n",
    )
    .replace(
        "$(stat -L -c %a $f) $(cat $f)",
        "$(head -c 10 $f) $(wc -c < $f)",
    )
    // Issue 36: a template rendered from the file store's and AWS's canaries.
    .replace(
        "  rotation: {strategy: restart}",
        "        - path: env\n          template:\n            inputs: {x: {store: local, name: x}, db: {store: aws, name: app/db}}\n            text: \"{{ x }}{{ db.password }}\"\n  rotation: {strategy: restart}",
    );
    agent.spec("leak", &spec);
    // And a template that reads a key its JSON lacks: its error goes to the log and status.
    let missing = spec
        .replace("e2e-leak", "e2e-leak-missing")
        .replace("{{ db.password }}", "{{ db.nokey }}");
    agent.spec("leak-missing", &missing);
    agent.start();
    // Every file, the AppRole store's too: its refresh is its own, and a restart for it after
    // the others would race the container's environment read below (CI saw that).
    let shows = |lengths: [usize; 4]| {
        let logs = scope.logs("e2e-leak");
        let [x, db, tls, bao] = lengths;
        (logs.contains(&format!("/run/s/env LEAKCANARY {}", x + db))
            && logs.contains(&format!("/run/s/x LEAKCANARY {x}"))
            && logs.contains(&format!("/run/s/db LEAKCANARY {db}"))
            && logs.contains(&format!("/run/s/tls LEAKCANARY {tls}"))
            && logs.contains(&format!("/run/s/bao LEAKCANARY {bao}"))
            && logs.contains(&format!("/run/s/role LEAKCANARY {bao}"))
            && logs.contains("/run/s/key -----BEGIN")
            && logs.contains("/run/s/pw LEAKCANARY"))
        .then_some(())
    };
    agent.wait(
        "the canaries in the container",
        Duration::from_mins(2),
        || shows([32, 33, 34, 35]),
    );
    // A rotation of all three.
    agent.secret("x", &file2);
    moto(
        &aws,
        &[
            "put_secret_value",
            "SecretId=app/db",
            &format!("SecretString={{\"password\": \"{aws2}\"}}"),
        ],
    );
    gcp.add_version("tls-key", gcp2.as_bytes());
    bao.put("app/bao", &[("password", &bao2)]);
    agent.wait("the rotated canaries", Duration::from_mins(1), || {
        shows([40, 41, 42, 43])
    });
    agent.wait("Ready", Duration::from_secs(30), || {
        (agent.status()["specs"]["e2e-leak"]["phase"] == "Ready").then_some(())
    });
    let refused = agent.status()["specs"]["e2e-leak-missing"]["message"].clone();
    assert!(
        refused
            .as_str()
            .is_some_and(|m| m.contains("env: line 1: input db has no key \"nokey\"")),
        "{refused}"
    );

    // What to look for: each canary's random part, and the canaries and the AWS secret string
    // in base64 (as a provider's wire format or a careless log would hold them).
    let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
    let mut patterns = Vec::new();
    for c in [&file1, &file2, &aws1, &aws2, &gcp1, &gcp2, &bao1, &bao2] {
        patterns.push(c["LEAKCANARY".len()..].to_owned());
        patterns.push(b64(c));
    }
    // The OpenBao token and the AppRole secret ID, as sent and in base64.
    let bao_token = bao_token.trim();
    for credential in [bao_token, secret_id.as_str()] {
        patterns.push(credential.to_owned());
        patterns.push(b64(credential));
    }
    for c in [&aws1, &aws2] {
        patterns.push(b64(&format!("{{\"password\": \"{c}\"}}")));
    }
    // The certificate's key: each line of its base64 body.
    let volume = scope.volume_root().join("e2e-leak/s");
    let key = std::fs::read_to_string(volume.join("key")).unwrap();
    let key_lines: Vec<&str> = key
        .lines()
        .filter(|l| !l.starts_with("-----") && l.len() >= 40)
        .collect();
    assert!(
        key_lines.len() > 10,
        "a private key in the volume: {} lines",
        key_lines.len()
    );
    patterns.extend(key_lines.iter().map(|l| (*l).to_owned()));
    // The leased password, as sent and in base64.
    let password = std::fs::read_to_string(volume.join("pw")).unwrap();
    let password = password.trim_start_matches("LEAKCANARY").to_owned();
    assert!(password.len() >= 16, "a leased password in the volume");
    patterns.push(password.clone());
    patterns.push(b64(&password));
    let pattern_file = agent.dir.join("patterns");
    std::fs::write(&pattern_file, patterns.join("\n") + "\n").unwrap();
    let leaks = |what: &str, text: &str| {
        let found: Vec<&String> = patterns
            .iter()
            .filter(|p| text.contains(p.as_str()))
            .collect();
        assert!(found.is_empty(), "{what} holds a canary");
    };

    // `ramlet plan` fetches every secret too, at the same log level and switches.
    let plan = agent.command("plan").output().unwrap();
    assert!(
        plan.status.code().is_some_and(|c| c == 0 || c == 2),
        "{}",
        String::from_utf8_lossy(&plan.stderr)
    );
    leaks(
        "ramlet plan's output",
        &String::from_utf8_lossy(&plan.stdout),
    );
    leaks("ramlet plan's log", &String::from_utf8_lossy(&plan.stderr));

    // Process environments and podman's view of the container.
    let pid = agent.child.as_ref().unwrap().id();
    let environ = std::fs::read(format!("/proc/{pid}/environ")).unwrap();
    leaks("ramlet's environment", &String::from_utf8_lossy(&environ));
    let processes = no_process_holds(&patterns);
    let inspect = scope.run("podman", &["inspect", "ramlet-e2e-leak"]);
    let inspect = String::from_utf8_lossy(&inspect.stdout).into_owned();
    assert!(inspect.contains("ramlet-e2e-leak"), "{inspect}");
    leaks("podman inspect", &inspect);
    let container_pid = scope.run(
        "podman",
        &["inspect", "-f", "{{.State.Pid}}", "ramlet-e2e-leak"],
    );
    let container_pid = String::from_utf8_lossy(&container_pid.stdout)
        .trim()
        .to_owned();
    let environ = std::fs::read(format!("/proc/{container_pid}/environ")).unwrap();
    leaks(
        "the container's environment",
        &String::from_utf8_lossy(&environ),
    );

    // A crash (SIGABRT: its default action dumps core; Rust handles SIGSEGV itself): no core
    // dump is written.
    // The level was on: ramlet's own TRACE lines are there. Other crates' DEBUG and TRACE
    // events never are, whatever RAMLET_LOG and the SDKs' switches say (issue 19, finding 5).
    // A line is `<time> <LEVEL> <target>: <message>`.
    let log = agent.log();
    let verbose: Vec<(&str, &str)> = log
        .lines()
        .filter_map(|l| {
            let mut fields = l.split_whitespace().skip(1);
            let level = fields.next()?;
            let target = fields.next()?;
            matches!(level, "TRACE" | "DEBUG").then_some((level, target))
        })
        .collect();
    let trace_lines = verbose
        .iter()
        .filter(|(level, target)| *level == "TRACE" && target.starts_with("ramlet"))
        .count();
    assert!(
        trace_lines > 0,
        "ramlet logged at trace level ({trace_lines} lines)"
    );
    let verbose_others: Vec<&(&str, &str)> = verbose
        .iter()
        .filter(|(_, target)| !target.starts_with("ramlet"))
        .take(3)
        .collect();
    assert!(
        verbose_others.is_empty(),
        "other crates logged below INFO: {verbose_others:?}"
    );
    assert!(
        Command::new("kill")
            .args(["-ABRT", &pid.to_string()])
            .status()
            .unwrap()
            .success()
    );
    let status = agent.child.take().unwrap().wait().unwrap();
    assert_eq!(status.signal(), Some(6), "{status:?}");
    assert!(
        !status.core_dumped(),
        "the kernel wrote a core dump of ramlet"
    );

    // Logs, state, units, and every file on persistent storage.
    let files = searched_files(
        &[agent.dir.clone(), scope.runtime.clone()],
        // (Not where the test keeps its inputs: the file store's folder, the OpenBao token the
        // admin wrote, the OpenBao server's own files.)
        &[
            agent.dir.join("secrets"),
            agent.dir.join("keys"),
            agent.dir.join("bao"),
            pattern_file.clone(),
        ],
    );
    for must in [
        agent.dir.join("ramlet.log"),
        agent.dir.join("state/status.json"),
        agent.dir.join("metrics.prom"),
    ] {
        assert!(files.contains(&must), "{} is searched", must.display());
    }
    let hits = files_holding(&files, &pattern_file);
    println!(
        "leak search: {} patterns in {} files on persistent storage (and in ramlet's log: {trace_lines} TRACE lines, the metrics file), {processes} processes' command lines and environments, and podman inspect: {} hits",
        patterns.len(),
        files.len(),
        hits.len()
    );
    assert!(hits.is_empty(), "canaries found in {hits:#?}");
    // The container did get them: the search would find them where they are.
    let volume_hits = files_holding(
        &[
            volume.join("x"),
            volume.join("env"),
            volume.join("key"),
            volume.join("pw"),
        ],
        &pattern_file,
    );
    assert_eq!(
        volume_hits.len(),
        4,
        "the search finds a canary where it is"
    );
}

/// `ramlet plan` against the real manager: nothing to do once the agent converged (exit 0); a
/// spec edit made while the agent is stopped shows up with its action and diff (exit 2) and
/// changes nothing; once the agent applied it, nothing is left to do (exit 0).
#[test]
#[ignore = "needs the e2e sandbox (scripts/test runs it)"]
fn user_scope_plan_shows_an_edit_before_it_lands() {
    let scope = Scope::user();
    let mut agent = Agent::new(scope.clone(), "plan");
    let metrics = agent.dir.join("metrics.prom");
    agent.args = vec!["--metrics-file".into(), metrics.display().to_string()];
    agent.secret("x", "p1");
    agent.spec(
        "p",
        &container("e2e-plan", &[("x", "0400", "x")], "restart", "one"),
    );
    agent.start();
    agent.wait("Ready", Duration::from_mins(1), || {
        (agent.status()["specs"]["e2e-plan"]["phase"] == "Ready").then_some(())
    });
    let plan = |agent: &Agent| {
        let output = agent.command("plan").output().unwrap();
        (
            output.status.code(),
            String::from_utf8_lossy(&output.stdout).into_owned(),
        )
    };
    let (code, text) = plan(&agent);
    assert_eq!(code, Some(0), "{text}");
    assert!(text.contains("nothing would change"), "{text}");

    agent.stop();
    let id = scope.invocation("e2e-plan");
    agent.spec(
        "p",
        &container("e2e-plan", &[("x", "0400", "x")], "restart", "two"),
    );
    let (code, text) = plan(&agent);
    assert_eq!(code, Some(2), "{text}");
    assert!(text.contains("e2e-plan: write unit, restart"), "{text}");
    assert!(
        text.contains("- Environment=MARK=one") && text.contains("+ Environment=MARK=two"),
        "{text}"
    );
    assert_eq!(scope.invocation("e2e-plan"), id, "a plan changes nothing");

    agent.start();
    agent.wait("the edit applied", Duration::from_mins(1), || {
        (scope.invocation("e2e-plan") != id && scope.active("e2e-plan") == "active").then_some(())
    });
    agent.wait("Ready", Duration::from_mins(1), || {
        (agent.status()["specs"]["e2e-plan"]["phase"] == "Ready").then_some(())
    });
    let (code, text) = plan(&agent);
    assert_eq!(code, Some(0), "{text}");

    // A rotation: the metrics file counts the restart with its cause.
    let id = scope.invocation("e2e-plan");
    agent.secret("x", "p2");
    agent.wait("the rotation", Duration::from_mins(1), || {
        (scope.invocation("e2e-plan") != id && scope.active("e2e-plan") == "active").then_some(())
    });
    let text = agent.wait(
        "the restart in the metrics",
        Duration::from_secs(30),
        || {
            let text = std::fs::read_to_string(&metrics).ok()?;
            text.contains("ramlet_unit_jobs_total{job=\"restart\",cause=\"rotation\"} 1")
                .then_some(text)
        },
    );
    assert!(
        text.contains("ramlet_unit_jobs_total{job=\"restart\",cause=\"spec\"} 1"),
        "{text}"
    );
}

#[test]
#[ignore = "needs the e2e sandbox (scripts/test runs it)"]
fn user_scope_refuses_a_spec_whose_unit_name_another_unit_has() {
    let scope = Scope::user();
    // A unit the user wrote by hand, in the manager's own configuration folder.
    let units = scope.runtime.join("e2e-config/systemd/user");
    std::fs::write(
        units.join("e2e-taken.service"),
        "[Service]\nExecStart=/bin/sleep 600\n",
    )
    .unwrap();
    assert!(
        scope
            .run("systemctl", &["--user", "daemon-reload"])
            .status
            .success()
    );
    let mut agent = Agent::new(scope.clone(), "taken");
    agent.secret("x", "value");
    agent.spec(
        "t",
        &container("e2e-taken", &[("x", "0400", "x")], "restart", "one"),
    );
    agent.spec(
        "ok",
        &container("e2e-fine", &[("x", "0400", "x")], "restart", "one"),
    );
    agent.start();
    let status = agent.wait("the refusal", Duration::from_mins(1), || {
        let status = agent.status();
        (status["specs"]["e2e-fine"]["phase"] == "Ready").then_some(status)
    });
    assert_eq!(
        status["specs"]["e2e-taken"]["reason"], "UnitNameTaken",
        "{status}"
    );
    assert!(!scope.unit_dir().join("e2e-taken.container").exists());
    assert_eq!(
        scope.active("e2e-taken"),
        "inactive",
        "ramlet never started someone else's unit"
    );
    std::fs::remove_file(units.join("e2e-taken.service")).unwrap();
    assert!(
        scope
            .run("systemctl", &["--user", "daemon-reload"])
            .status
            .success()
    );
}

/// A container that reads one secret from AWS (moto) and one from GCP (the fake), both stores
/// refreshed every 10 s: each new version reaches the container within one refresh; a peer
/// that goes away leaves the container running and the spec `Degraded` with the reason, and
/// its return heals it unaided; a hung peer does not hold back SIGTERM.
#[allow(clippy::too_many_lines)] // one story, step by step: each step builds on the last
fn cloud_stores(scope: Scope, name: &str) {
    let mut agent = Agent::new(scope, name);
    let mut aws = ramlet_e2e::peers::Aws::start(&agent.dir);
    let gcp = ramlet_e2e::peers::Gcp::start(&agent.dir);
    let moto = |args: &[&str]| moto(&aws, args);
    moto(&[
        "create_secret",
        "Name=app/db",
        "SecretString={\"password\": \"aws-one\"}",
    ]);
    gcp.create("tls-key");
    gcp.add_version("tls-key", b"gcp-one");
    agent.spec("stores", &cloud_store_specs(&aws, &gcp));
    agent.spec(name, &cloud_container(name, "cloud"));
    agent.start();
    let shows = |agent: &Agent, db: &str, tls: &str| shows_cloud_secrets(agent, name, db, tls);
    agent.wait(
        "both cloud secrets in the container",
        Duration::from_mins(2),
        || shows(&agent, "aws-one", "gcp-one"),
    );
    // The container prints before ramlet writes the status of the reconcile that started it.
    let first = agent.wait("Ready", Duration::from_secs(30), || {
        let status = agent.status();
        (status["specs"][name]["phase"] == "Ready")
            .then(|| status["specs"][name]["secrets"].clone())
    });

    // New versions upstream reach the container within one refresh interval (10 s).
    moto(&[
        "put_secret_value",
        "SecretId=app/db",
        "SecretString={\"password\": \"aws-two\"}",
    ]);
    gcp.add_version("tls-key", b"gcp-two");
    let rotated = Instant::now();
    agent.wait(
        "the new versions in the container",
        Duration::from_secs(40),
        || shows(&agent, "aws-two", "gcp-two"),
    );
    println!(
        "cloud rotation ({name}): new versions reached the container in {} ms",
        rotated.elapsed().as_millis()
    );
    // The two stores may see their new versions one refresh apart: the container can print
    // both after the first restart while the second is still to come. Ready with no old
    // version left means ramlet has nothing more to do for this rotation.
    agent.wait(
        "Ready on both new versions",
        Duration::from_secs(40),
        || {
            let status = agent.status();
            let spec = &status["specs"][name];
            let versions = spec["secrets"].as_array()?;
            let old = first.as_array()?;
            (spec["phase"] == "Ready" && versions.iter().all(|v| !old.contains(v))).then_some(())
        },
    );
    let calls = aws.proxy.calls();
    assert!(
        calls.iter().any(|c| c.ends_with("DescribeSecret")),
        "{calls:?}"
    );

    // The AWS peer goes away: the container keeps running; the spec says why.
    let invocation = agent.scope.invocation(name);
    aws.proxy.stop();
    let status = agent.wait(
        "Degraded with the provider's reason",
        Duration::from_secs(40),
        || {
            let status = agent.status();
            (status["specs"][name]["phase"] == "Degraded").then_some(status)
        },
    );
    assert_eq!(
        status["specs"][name]["reason"], "ProviderUnavailable",
        "{status}"
    );
    assert_eq!(status["stores"]["aws"]["healthy"], false, "{status}");
    assert_eq!(status["stores"]["gcp"]["healthy"], true, "{status}");
    assert_eq!(agent.scope.active(name), "active");
    assert_eq!(
        agent.scope.invocation(name),
        invocation,
        "an outage restarted the container"
    );
    aws.proxy.start();
    agent.wait(
        "Ready again without anybody",
        Duration::from_mins(1),
        || (agent.status()["specs"][name]["phase"] == "Ready").then_some(()),
    );
    assert_eq!(
        agent.scope.invocation(name),
        invocation,
        "recovery restarted an unchanged container"
    );

    // A hung peer: `ramlet sync` makes ramlet wait on it; SIGTERM still ends ramlet in 5 s.
    gcp.fake.freeze(true);
    ramlet::agent::sync(&agent.dir.join("state")).unwrap();
    std::thread::sleep(Duration::from_millis(1500));
    let took = time_to_stop(&mut agent);
    gcp.fake.freeze(false);
    println!(
        "SIGTERM with a hung GCP peer ({name}): ramlet exited in {} ms",
        took.as_millis()
    );
    assert!(
        took < Duration::from_secs(5),
        "ramlet took {took:?} to stop\n{}",
        agent.log()
    );
    assert_eq!(
        agent.scope.active(name),
        "active",
        "stopping ramlet stopped the container"
    );
    drop(agent);
}

#[test]
#[ignore = "needs the e2e sandbox (scripts/test runs it)"]
fn user_scope_cloud_stores_rotate_and_survive_outages() {
    cloud_stores(Scope::user(), "e2e-cloud-u");
}

#[test]
#[ignore = "needs the e2e sandbox (scripts/test runs it)"]
fn system_scope_cloud_stores_rotate_and_survive_outages() {
    cloud_stores(Scope::system(), "e2e-cloud-s");
}

/// The host's cloud credentials go only where the host's policy lets them (issue 19, finding 1:
/// a spec that named its own HTTPS server got the host's bearer token). The Secret Manager fake
/// serves HTTPS with a certificate from a CA of the test's own, which ramlet trusts through
/// `SSL_CERT_FILE`, and ramlet holds a real service account key: a store whose endpoint the
/// policy does not name is refused at its line, and the server sees no request at all, from
/// `run` or from `plan`. Once the policy names it, `plan` reaches it with
/// `authorization: Bearer`: the refusal, nothing else, kept the token home.
#[test]
#[ignore = "needs the e2e sandbox (scripts/test runs it)"]
fn user_scope_a_spec_cannot_send_the_host_token_to_its_own_server() {
    let mut agent = Agent::new(Scope::user(), "e2e-token");
    let ca = ramlet_e2e::peers::TestCa::make(&agent.dir.join("tls"));
    let server = ramlet_e2e::peers::Gcp::start_tls(&agent.dir, &ca);
    for (key, path) in [
        ("SSL_CERT_FILE", ca.ca_cert()),
        ("GOOGLE_APPLICATION_CREDENTIALS", ca.service_account()),
    ] {
        agent.envs.push((key.into(), path.display().to_string()));
    }
    agent.spec(
        "stores",
        &format!(
            "apiVersion: ramlet.dev/v1alpha1\nkind: SecretStore\nmetadata: {{name: gcp}}\nspec:\n  gcp:\n    project: {}\n    endpoint: \"{}\"\n",
            ramlet_e2e::peers::GCP_PROJECT.0,
            server.endpoint()
        ),
    );
    agent.spec(
        "e2e-token",
        &container("e2e-token", &[("key", "0400", "x")], "restart", "one")
            .replace("{store: local, name: x}", "{store: gcp, name: tls-key}"),
    );
    agent.start();
    let errors = agent.wait("the refusal", Duration::from_mins(1), || {
        let errors = agent.status()["errors"].to_string();
        errors.contains("policy.endpoints").then_some(errors)
    });
    assert!(
        errors.contains("stores.yaml:7:") && errors.contains(&server.endpoint()),
        "the refusal names the file, line and endpoint: {errors}"
    );
    let plan = agent.command("plan").output().unwrap();
    assert!(
        String::from_utf8_lossy(&plan.stdout).contains("policy.endpoints")
            || String::from_utf8_lossy(&plan.stderr).contains("policy.endpoints"),
        "{plan:?}"
    );
    agent.stop();
    assert_eq!(
        server.fake.calls(),
        Vec::<String>::new(),
        "a refused endpoint got requests"
    );

    // The same store, with the host's consent: the token does travel, so the check above
    // could have failed.
    std::fs::write(
        agent.dir.join("config.yaml"),
        format!(
            "policy:\n  endpoints: [\"{}\", \"{}\"]\n",
            ramlet_e2e::peers::LOOPBACK_ENDPOINTS,
            server.endpoint()
        ),
    )
    .unwrap();
    agent.chown();
    let plan = agent.command("plan").output().unwrap();
    let calls = server.fake.calls();
    assert!(
        calls
            .iter()
            .any(|c| c.ends_with("tls-key/versions/latest:access authorization=Bearer")),
        "an allowed endpoint got no bearer token: {calls:?}\n{plan:?}"
    );
}

/// A container (restarted on rotation) with the AWS secret `app/db`'s `password` as `db` and
/// the GCP secret `tls-key` as `tls`.
fn cloud_container(name: &str, mark: &str) -> String {
    container(
        name,
        &[("db", "0400", "x"), ("tls", "0400", "y")],
        "restart",
        mark,
    )
    .replace(
        "{store: local, name: x}",
        "{store: aws, name: app/db, property: password}",
    )
    .replace("{store: local, name: y}", "{store: gcp, name: tls-key}")
}

/// Whether the container `name` (see [`cloud_container`]) printed `db` and `tls`.
fn shows_cloud_secrets(agent: &Agent, name: &str, db: &str, tls: &str) -> Option<()> {
    let logs = agent.scope.logs(name);
    (logs.contains(&format!("/run/s/db 400 {db}"))
        && logs.contains(&format!("/run/s/tls 400 {tls}")))
    .then_some(())
}

/// Calls moto's Secrets Manager (eu-west-1) directly, as an operator would with the AWS CLI:
/// `moto(&aws, &["put_secret_value", "SecretId=app/db", "SecretString=..."])`.
/// The `aws` and `gcp` stores, pointed at the test's peers, refreshed every 10 s.
fn cloud_store_specs(aws: &ramlet_e2e::peers::Aws, gcp: &ramlet_e2e::peers::Gcp) -> String {
    format!(
        "apiVersion: ramlet.dev/v1alpha1\nkind: SecretStore\nmetadata: {{name: aws}}\nspec:\n  refreshInterval: 10s\n  aws: {{region: eu-west-1, endpoint: \"{}\"}}\n---\n\
         apiVersion: ramlet.dev/v1alpha1\nkind: SecretStore\nmetadata: {{name: gcp}}\nspec:\n  refreshInterval: 10s\n  gcp: {{project: {}, endpoint: \"{}\"}}\n",
        aws.endpoint(),
        ramlet_e2e::peers::GCP_PROJECT.0,
        gcp.endpoint()
    )
}

/// The documents of `examples/<name>/*.yaml`, by file stem.
fn example(name: &str) -> Vec<(String, serde_yaml::Value)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../examples")
        .join(name);
    let mut docs: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .map(|p| {
            let text = std::fs::read_to_string(&p).unwrap();
            let stem = p.file_stem().unwrap().to_string_lossy().into_owned();
            (stem, serde_yaml::from_str(&text).unwrap())
        })
        .collect();
    docs.sort_by(|a, b| a.0.cmp(&b.0));
    docs
}

/// Points an example at this sandbox: each store at its peer (the GCP fake knows one project),
/// each container at the local busybox running `script` (no registry here) with no network
/// (the sandbox has none, so published ports go). Everything else stays as the example says.
fn localize(doc: &mut serde_yaml::Value, aws: &str, gcp: &str, script: &str) {
    let spec = &mut doc["spec"];
    if let Some(store) = spec.get_mut("aws") {
        store["endpoint"] = aws.into();
    } else if let Some(store) = spec.get_mut("gcp") {
        store["endpoint"] = gcp.into();
        store["project"] = ramlet_e2e::peers::GCP_PROJECT.0.into();
    } else if spec.get("image").is_some() {
        spec["image"] = "localhost/busybox:latest".into();
        spec["exec"] = serde_yaml::Value::Sequence(vec![
            "sh".into(),
            "-c".into(),
            format!("trap 'exit 0' TERM; {script}; while true; do sleep 1 & wait $!; done").into(),
        ]);
        spec["network"] = "none".into();
        spec.as_mapping_mut().unwrap().remove("publishPorts");
    }
}

/// The repository's cloud examples, as written, against the peers (see `localize` for the
/// little that changes). On a host labelled `role=edge`, `web-tls-gcp` runs and a renewed
/// certificate reaches the container by SIGHUP, without a restart. Relabelled `role=app`, the
/// host drops it and runs `app-db-aws` as user 1000: the database fields (group-readable) and
/// the signing key's `AWSCURRENT` and `AWSPREVIOUS` versions all move on a rotation.
#[allow(clippy::too_many_lines)] // one story, step by step
fn cloud_examples(scope: Scope, name: &str) {
    let mut agent = Agent::new(scope, name);
    let aws = ramlet_e2e::peers::Aws::start(&agent.dir);
    let gcp = ramlet_e2e::peers::Gcp::start(&agent.dir);
    let show = |files: &[&str]| {
        files
            .iter()
            .map(|f| format!("echo \"FILE {f} $(stat -L -c '%a %u' {f}) $(cat {f})\""))
            .collect::<Vec<_>>()
            .join("; ")
    };
    let tls = show(&["/etc/nginx/tls/tls.key", "/etc/nginx/tls/tls.crt"]);
    let web_script = format!("show() {{ {tls}; }}; trap 'echo RELOAD; show' HUP; show");
    let db = show(&[
        "/run/secrets/db/username",
        "/run/secrets/db/password",
        "/run/secrets/signing/jwt.key",
        "/run/secrets/signing/jwt-previous.key",
    ]);
    let api_script = format!("echo \"ID $(id -u):$(id -g)\"; {db}");
    for (example_name, script) in [("web-tls-gcp", &web_script), ("app-db-aws", &api_script)] {
        for (stem, mut doc) in example(example_name) {
            localize(&mut doc, &aws.endpoint(), &gcp.endpoint(), script);
            agent.spec(
                &format!("{example_name}-{stem}"),
                &serde_yaml::to_string(&doc).unwrap(),
            );
        }
    }
    gcp.create("nginx-tls-key");
    gcp.add_version("nginx-tls-key", b"key-1");
    gcp.create("nginx-tls-cert");
    gcp.add_version("nginx-tls-cert", b"cert-1");
    agent.args = vec!["--host-labels".into(), "role=edge".into()];
    agent.start();
    let logs_show = |agent: &Agent, unit: &str, lines: &[&str]| {
        let logs = agent.scope.logs(unit);
        lines.iter().all(|l| logs.contains(l)).then_some(logs)
    };
    agent.wait("web's TLS files", Duration::from_mins(2), || {
        logs_show(
            &agent,
            "web",
            &[
                "FILE /etc/nginx/tls/tls.key 400 101 key-1",
                "FILE /etc/nginx/tls/tls.crt 444 0 cert-1",
            ],
        )
    });
    let status = agent.wait("web Ready", Duration::from_secs(30), || {
        let status = agent.status();
        (status["specs"]["web"]["phase"] == "Ready").then_some(status)
    });
    assert!(
        status["specs"].get("api").is_none(),
        "api is not for role=edge: {status}"
    );

    // A renewed certificate: SIGHUP, the same invocation.
    let invocation = agent.scope.invocation("web");
    gcp.add_version("nginx-tls-cert", b"cert-2");
    ramlet::agent::sync(&agent.dir.join("state")).unwrap();
    agent.wait(
        "web reloaded with the new certificate",
        Duration::from_secs(40),
        || {
            logs_show(
                &agent,
                "web",
                &["RELOAD", "FILE /etc/nginx/tls/tls.crt 444 0 cert-2"],
            )
        },
    );
    assert_eq!(
        agent.scope.invocation("web"),
        invocation,
        "a reload restarted web"
    );

    // The host becomes an app server: web goes, api comes.
    let moto = |args: &[&str]| moto(&aws, args);
    let b64 = |s: &str| {
        use base64::Engine as _;
        base64::engine::general_purpose::STANDARD.encode(s)
    };
    moto(&[
        "create_secret",
        "Name=prod/db",
        r#"SecretString={"username": "app", "password": "pw-1", "host": "db.internal"}"#,
    ]);
    moto(&[
        "create_secret",
        "Name=prod/jwt-signing-key",
        &format!("SecretString={}", b64("jwt-1")),
    ]);
    moto(&[
        "put_secret_value",
        "SecretId=prod/jwt-signing-key",
        &format!("SecretString={}", b64("jwt-2")),
    ]);
    agent.args = vec!["--host-labels".into(), "role=app".into()];
    agent.restart(|| {});
    let api_files = |password: &str, current: &str, previous: &str| {
        [
            "ID 1000:1000".to_owned(),
            "FILE /run/secrets/db/username 440 0 app".to_owned(),
            format!("FILE /run/secrets/db/password 440 0 {password}"),
            format!("FILE /run/secrets/signing/jwt.key 400 1000 {current}"),
            format!("FILE /run/secrets/signing/jwt-previous.key 400 1000 {previous}"),
        ]
    };
    let wanted = api_files("pw-1", "jwt-2", "jwt-1");
    agent.wait(
        "api's files, read as user 1000",
        Duration::from_mins(2),
        || {
            logs_show(
                &agent,
                "api",
                &wanted.iter().map(String::as_str).collect::<Vec<_>>(),
            )
        },
    );
    agent.wait(
        "web stopped and its unit gone",
        Duration::from_secs(30),
        || {
            (!agent.scope.unit_dir().join("web.container").exists()
                && agent.scope.active("web") != "active")
                .then_some(())
        },
    );
    let status = agent.wait("api Ready", Duration::from_secs(30), || {
        let status = agent.status();
        (status["specs"]["api"]["phase"] == "Ready").then_some(status)
    });
    assert!(status["specs"].get("web").is_none(), "{status}");

    // A rotation: every file moves, the previous key included.
    let invocation = agent.scope.invocation("api");
    moto(&[
        "put_secret_value",
        "SecretId=prod/db",
        r#"SecretString={"username": "app", "password": "pw-2", "host": "db.internal"}"#,
    ]);
    moto(&[
        "put_secret_value",
        "SecretId=prod/jwt-signing-key",
        &format!("SecretString={}", b64("jwt-3")),
    ]);
    ramlet::agent::sync(&agent.dir.join("state")).unwrap();
    let wanted = api_files("pw-2", "jwt-3", "jwt-2");
    agent.wait(
        "api restarted with the rotated values",
        Duration::from_secs(40),
        || {
            logs_show(
                &agent,
                "api",
                &wanted.iter().map(String::as_str).collect::<Vec<_>>(),
            )
        },
    );
    assert_ne!(agent.scope.invocation("api"), invocation);
    drop(agent);
}

#[test]
#[ignore = "needs the e2e sandbox (scripts/test runs it)"]
fn system_scope_runs_the_cloud_examples_against_the_peers() {
    cloud_examples(Scope::system(), "e2e-examples");
}

/// Every unit's invocation IDs seen while the closure ran, sampled every 100 ms from one
/// `systemctl show` call; a restart takes far longer than that, so none is missed.
/// A tiny deterministic random source (the seed is printed, so a failure can be replayed).
struct Lcg(u64);

impl Lcg {
    fn below(&mut self, n: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (self.0 >> 33) % n
    }
}

/// SIGKILL at random points of reconciles (cold apply, rotation, spec edit, removal), 32
/// times: after each restart the host converges with no leaked mount, no orphan or duplicate
/// unit, every owed restart done exactly once and no unchanged container restarted.
#[test]
#[ignore = "needs the e2e sandbox (scripts/test runs it)"]
#[allow(clippy::too_many_lines)] // one loop: change, kill, restart, check
fn system_scope_sigkill_at_random_points_loses_no_work_and_repeats_none() {
    let scope = Scope::system();
    let mut agent = Agent::new(scope.clone(), "crash");
    let seed = std::env::var("RAMLET_E2E_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| u64::from(std::process::id()));
    let mut random = Lcg(seed);
    // name -> (secret, mark)
    let mut specs: std::collections::BTreeMap<String, (String, u32)> =
        std::collections::BTreeMap::new();
    let mut values: std::collections::BTreeMap<String, String> = std::collections::BTreeMap::new();
    let write = |agent: &Agent, name: &str, secret: &str, mark: u32| {
        agent.spec(
            name,
            &container(
                name,
                &[("x", "0400", secret)],
                "restart",
                &format!("m{mark}"),
            ),
        );
    };
    for (secret, value) in [("s1", "v0"), ("s2", "w0")] {
        agent.secret(secret, value);
        values.insert(secret.into(), value.into());
    }
    for (name, secret) in [("e2e-k1", "s1"), ("e2e-k2", "s2"), ("e2e-k3", "s1")] {
        write(&agent, name, secret, 0);
        specs.insert(name.into(), (secret.into(), 0));
    }
    agent.start();
    let converged = |agent: &Agent,
                     specs: &std::collections::BTreeMap<String, (String, u32)>,
                     values: &std::collections::BTreeMap<String, String>| {
        let status = agent.status();
        let all_ready = specs.keys().all(|n| status["specs"][n]["phase"] == "Ready")
            && status["specs"]
                .as_object()
                .is_some_and(|o| o.len() == specs.len());
        all_ready
            && specs.iter().all(|(name, (secret, mark))| {
                let logs = agent.scope.logs(name);
                logs.contains(&format!("FILE /run/s/x 400 {}", values[secret]))
                    && logs.contains(&format!("MARK m{mark}"))
            })
    };
    agent.wait("the first apply", Duration::from_mins(2), || {
        converged(&agent, &specs, &values).then_some(())
    });

    let rounds = 32;
    let mut next_spec = 4;
    for round in 0..rounds {
        let watched: Vec<String> = specs.keys().cloned().collect();
        let now = invocations(&scope, &watched);
        let before: std::collections::BTreeMap<String, String> = now.iter().cloned().collect();
        let sampler = Invocations::watch(&scope, &watched, &now);
        // What changes, and which containers must restart.
        let (what, changed): (&str, BTreeSet<String>) = match round % 4 {
            0 => {
                let name = format!("e2e-k{next_spec}");
                next_spec += 1;
                write(&agent, &name, "s2", 0);
                specs.insert(name.clone(), ("s2".into(), 0));
                ("cold apply", [name].into())
            }
            1 => {
                let value = format!("v{round}");
                agent.secret("s1", &value);
                values.insert("s1".into(), value);
                let users = specs
                    .iter()
                    .filter(|(_, (s, _))| s == "s1")
                    .map(|(n, _)| n.clone())
                    .collect();
                ("rotation", users)
            }
            2 => {
                let names: Vec<String> = specs.keys().cloned().collect();
                let name =
                    names[usize::try_from(random.below(names.len() as u64)).unwrap()].clone();
                let entry = specs.get_mut(&name).unwrap();
                entry.1 += 1;
                write(&agent, &name, &entry.0.clone(), entry.1);
                ("spec edit", [name].into())
            }
            _ => {
                let name = specs
                    .keys()
                    .rev()
                    .find(|n| *n != "e2e-k1" && *n != "e2e-k2" && *n != "e2e-k3")
                    .cloned();
                match name {
                    Some(name) => {
                        agent.remove_spec(&name);
                        specs.remove(&name);
                        ("removal", BTreeSet::new())
                    }
                    None => ("nothing", BTreeSet::new()),
                }
            }
        };
        // Kill somewhere in the debounce (200 ms), the fetch, the writes or the jobs.
        let delay = Duration::from_millis(random.below(1500));
        std::thread::sleep(delay);
        let pid = std::fs::read_to_string(agent.dir.join("state/ramlet.pid")).unwrap_or_default();
        let _ = Command::new("kill").args(["-KILL", pid.trim()]).status();
        if let Some(mut child) = agent.child.take() {
            let _ = child.wait();
        }
        agent.start();
        agent.wait(
            &format!("round {round} ({what}, killed after {delay:?}) to converge"),
            Duration::from_mins(2),
            || converged(&agent, &specs, &values).then_some(()),
        );
        // One more full reconcile: nothing is left to do, nothing is done twice.
        let updated = agent.status()["updated"].clone();
        std::thread::sleep(Duration::from_millis(1100));
        ramlet::agent::sync(&agent.dir.join("state")).unwrap();
        agent.wait("a fresh status", Duration::from_mins(1), || {
            (agent.status()["updated"] != updated).then_some(())
        });
        let seen = sampler.finish();
        for name in &watched {
            let ids = seen.get(name).cloned().unwrap_or_default();
            let Some((_, _)) = specs.get(name) else {
                continue;
            };
            if changed.contains(name) {
                assert_eq!(
                    ids.len(),
                    2,
                    "round {round} ({what}, killed after {delay:?}, seed {seed}): {name} must restart exactly once: {ids:?}"
                );
            } else {
                assert_eq!(
                    ids,
                    before.get(name).into_iter().cloned().collect(),
                    "round {round} ({what}, killed after {delay:?}, seed {seed}): {name} did not change and must not restart"
                );
            }
        }
        // No orphan or duplicate unit, no leaked mount.
        let mut files: Vec<String> = std::fs::read_dir(scope.unit_dir())
            .unwrap()
            .map(|e| {
                e.unwrap()
                    .file_name()
                    .to_string_lossy()
                    .trim_end_matches(".container")
                    .to_owned()
            })
            .collect();
        files.sort();
        assert_eq!(
            files,
            specs.keys().cloned().collect::<Vec<_>>(),
            "round {round}: unit files"
        );
        let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
        let root = scope.volume_root();
        let mut mounted: Vec<String> = mounts
            .lines()
            .filter_map(|l| l.split(' ').nth(4))
            .filter_map(|p| Path::new(p).strip_prefix(&root).ok().map(Path::to_path_buf))
            .filter_map(|p| {
                p.components()
                    .next()
                    .map(|c| c.as_os_str().to_string_lossy().into_owned())
            })
            .filter(|n| n.starts_with("e2e-k"))
            .collect();
        mounted.sort();
        assert_eq!(mounted, files, "round {round}: mounted volumes");
        for gone in watched.iter().filter(|n| !specs.contains_key(*n)) {
            assert_ne!(
                scope.active(gone),
                "active",
                "round {round}: {gone} was removed"
            );
        }
    }
    println!(
        "crash test: ramlet killed with SIGKILL {rounds} times at random points (seed {seed}); the host converged every time"
    );
    drop(agent);
}

/// Faults a host meets: an image that cannot start (that spec `Failed` with systemd's result
/// and where its log is, the others fine); the user manager's `daemon-reexec` mid-run (the
/// next rotation still lands); a symlinked spec directory swapped the way git-sync does it
/// (followed at once, with a 1 h refresh), then removed outright (nothing stops) and restored.
#[test]
#[ignore = "needs the e2e sandbox (scripts/test runs it)"]
#[allow(clippy::too_many_lines)] // one story, step by step
fn user_scope_survives_a_bad_image_a_reexec_and_a_swapped_spec_directory() {
    let scope = Scope::user();
    let mut agent = Agent::new(scope.clone(), "faults");
    // The spec directory becomes a link to a revision, as git-sync makes it.
    let specs = agent.dir.join("specs");
    let root = agent.dir.clone();
    let rev = |n: u32| root.join(format!("rev-{n}"));
    std::fs::rename(&specs, rev(1)).unwrap();
    std::os::unix::fs::symlink("rev-1", &specs).unwrap();
    agent.secret("x", "one");
    agent.spec(
        "good",
        &container("e2e-good", &[("x", "0400", "x")], "restart", "one"),
    );
    agent.spec(
        "bad",
        &container("e2e-bad", &[("x", "0400", "x")], "restart", "one")
            .replace("localhost/busybox:latest", "localhost/no-such-image:latest"),
    );
    agent.start();
    let status = agent.wait(
        "e2e-bad Failed with its reason",
        Duration::from_mins(2),
        || {
            let status = agent.status();
            (status["specs"]["e2e-bad"]["phase"] == "Failed"
                && status["specs"]["e2e-good"]["phase"] == "Ready")
                .then_some(status)
        },
    );
    let message = status["specs"]["e2e-bad"]["message"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    println!("a unit that cannot start: {message}");
    assert!(
        message.contains("exit") && message.contains("journalctl --user -u e2e-bad.service"),
        "{status}"
    );
    assert_ne!(
        status["specs"]["e2e-bad"]["unit"]["result"], "success",
        "{status}"
    );
    agent.remove_spec("bad");
    agent.wait("e2e-bad gone", Duration::from_mins(1), || {
        agent.status()["specs"]
            .get("e2e-bad")
            .is_none()
            .then_some(())
    });

    // daemon-reexec: systemd forgets its D-Bus subscribers; the next rotation still lands.
    let output = scope.run("systemctl", &["--user", "daemon-reexec"]);
    assert!(output.status.success(), "{output:?}");
    std::thread::sleep(Duration::from_secs(1));
    let before = scope.invocation("e2e-good");
    agent.secret("x", "two");
    let asked = Instant::now();
    agent.wait(
        "the rotation after daemon-reexec",
        Duration::from_mins(1),
        || {
            scope
                .logs("e2e-good")
                .contains("FILE /run/s/x 400 two")
                .then_some(())
        },
    );
    println!(
        "rotation after daemon-reexec reached the container in {} ms",
        asked.elapsed().as_millis()
    );
    assert_ne!(scope.invocation("e2e-good"), before);
    agent.wait("Ready after the rotation", Duration::from_secs(30), || {
        (agent.status()["specs"]["e2e-good"]["phase"] == "Ready").then_some(())
    });

    // git-sync's swap: a new revision beside the old one, then the link replaced by rename.
    std::fs::create_dir(rev(2)).unwrap();
    for entry in std::fs::read_dir(rev(1)).unwrap() {
        let path = entry.unwrap().path();
        std::fs::copy(&path, rev(2).join(path.file_name().unwrap())).unwrap();
    }
    std::fs::write(
        rev(2).join("good.yaml"),
        container("e2e-good", &[("x", "0400", "x")], "restart", "swapped"),
    )
    .unwrap();
    agent.chown();
    let link = agent.dir.join(".specs-link");
    std::os::unix::fs::symlink("rev-2", &link).unwrap();
    let swapped = Instant::now();
    std::fs::rename(&link, &specs).unwrap();
    agent.wait(
        "the swapped revision applied",
        Duration::from_secs(20),
        || {
            scope
                .logs("e2e-good")
                .contains("MARK swapped")
                .then_some(())
        },
    );
    let took = swapped.elapsed();
    println!(
        "spec directory swapped by symlink: applied in {} ms (refresh 1 h)",
        took.as_millis()
    );
    assert!(
        took < Duration::from_secs(10),
        "{took:?}: the swap was not seen by the watch"
    );

    // The spec directory removed outright: nothing stops; status says why; back again, nothing
    // restarts.
    let running = scope.invocation("e2e-good");
    std::fs::remove_file(&specs).unwrap();
    let status = agent.wait(
        "status to say the specs are missing",
        Duration::from_secs(20),
        || {
            let status = agent.status();
            status["errors"]
                .as_array()
                .is_some_and(|e| {
                    e.iter()
                        .any(|m| m.as_str().is_some_and(|m| m.contains("specs")))
                })
                .then_some(status)
        },
    );
    println!("spec directory removed: {}", status["errors"]);
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(
        scope.invocation("e2e-good"),
        running,
        "a missing spec directory stopped a container"
    );
    assert!(scope.unit_dir().join("e2e-good.container").exists());
    std::os::unix::fs::symlink("rev-2", &specs).unwrap();
    agent.chown();
    agent.wait("errors cleared", Duration::from_secs(20), || {
        agent.status()["errors"]
            .as_array()
            .is_some_and(Vec::is_empty)
            .then_some(())
    });
    assert_eq!(scope.invocation("e2e-good"), running);
    // Drop removes `specs`: make it a plain folder again for the clean-up.
    std::fs::remove_file(&specs).unwrap();
    std::fs::create_dir(&specs).unwrap();
    drop(agent);
}

/// A secret shared by 20 containers (each with one of its own too): a rotation restarts all 20
/// together and the others' secrets stay; the time is printed side by side with one bare
/// `systemctl --user restart` of the same 20 units, in the same run (a figure, not a check).
#[test]
#[ignore = "needs the e2e sandbox (scripts/test runs it)"]
fn user_scope_a_shared_secret_restarts_its_twenty_consumers_together() {
    const N: usize = 20;
    let scope = Scope::user();
    let mut agent = Agent::new(scope.clone(), "shared");
    let names: Vec<String> = (0..N).map(|i| format!("e2e-sh{i:02}")).collect();
    consumers(&agent, &names);
    let cold = Instant::now();
    agent.start();
    let before = agent.wait("all 20 running", Duration::from_mins(4), || {
        let ids = invocations(&scope, &names);
        (ids.len() == N
            && ids.iter().all(|(_, id)| !id.is_empty())
            && names.iter().all(|n| scope.active(n) == "active"))
        .then_some(ids)
    });
    println!(
        "cold apply of {N} specs: all active in {} ms",
        cold.elapsed().as_millis()
    );
    agent.wait("Ready", Duration::from_mins(1), || {
        let status = agent.status();
        names
            .iter()
            .all(|n| status["specs"][n]["phase"] == "Ready")
            .then_some(())
    });

    let sampler = Invocations::watch(&scope, &names, &before);
    let rotated = Instant::now();
    agent.secret("shared", "two");
    agent.wait("all 20 restarted", Duration::from_mins(3), || {
        let now = invocations(&scope, &names);
        (now.iter()
            .zip(&before)
            .all(|((_, a), (_, b))| a != b && !a.is_empty())
            && agent.status()["specs"]
                .as_object()
                .is_some_and(|s| names.iter().all(|n| s[n]["phase"] == "Ready")))
        .then_some(())
    });
    let ramlet = rotated.elapsed();
    let seen = sampler.finish();
    // Each restarted; a second start only when Podman failed a start under the load of 20
    // at once in the sandbox (then ramlet starts it again): counted, not hidden.
    let again = names.iter().filter(|n| seen[*n].len() > 2).count();
    for (i, name) in names.iter().enumerate() {
        assert!(
            seen[name].len() >= 2,
            "{name} was not restarted: {:?}",
            seen[name]
        );
        // Active comes before the container's first line of output.
        agent.wait(
            &format!("{name} to print its files"),
            Duration::from_secs(30),
            || {
                let logs = scope.logs(name);
                (logs.contains("FILE /run/s/s 400 two")
                    && logs.contains(&format!("FILE /run/s/o 400 own-{i}")))
                .then_some(())
            },
        );
    }
    let units: Vec<String> = names.iter().map(|n| format!("{n}.service")).collect();
    let mut args = vec!["--user", "restart"];
    args.extend(units.iter().map(String::as_str));
    // systemd refuses a unit's 6th start within 10 s (`Result=start-limit-hit`); a unit whose
    // starts ramlet had to make again is near that: let the window pass first.
    std::thread::sleep(Duration::from_secs(11));
    let bare = Instant::now();
    let output = scope.run("systemctl", &args);
    let bare = bare.elapsed();
    // The comparison is systemd's own; when one of its 20 jobs fails (rootless Podman under
    // load in the sandbox), its time is no yardstick: say so instead of a ratio.
    let verdict = if output.status.success() {
        format!("ratio {:.2}", ramlet.as_secs_f64() / bare.as_secs_f64())
    } else {
        format!(
            "the bare restart failed, no ratio: {}",
            String::from_utf8_lossy(&output.stderr).trim()
        )
    };
    println!(
        "shared secret rotated, {N} consumers restarted and active: ramlet {} ms ({again} needed a second start); one bare `systemctl --user restart` of the {N} units: {} ms ({verdict})",
        ramlet.as_millis(),
        bare.as_millis(),
    );
    drop(agent);
}

/// ramlet run the way users run it: through the units in `dist/`, in the sandbox's managers
/// (root's for system scope, the test user's for user scope). The unit files are used as
/// shipped, hardening and all; only what points at this sandbox changes: `ExecStart=` (the
/// binary under test, the test's folders and bus), `ReadWritePaths=` for those folders, and in
/// system scope the volume root that the shipped `ramlet-volume-root.service` mounts, which the
/// agent's unit requires (and the status must say it is a noswap tmpfs). The container must read its secret, and a rotation
/// must reach it: with the old unit (`PrivateTmp=` and a tmpfs mounted by ramlet in its own
/// namespace), the container saw an empty folder.
#[allow(clippy::too_many_lines)] // one story: install the unit, start it, check, stop it
fn through_dist_unit(scope: &Scope, name: &str) {
    let base = PathBuf::from(format!("/srv/ramlet-e2e-{name}"));
    std::fs::create_dir_all(&base).unwrap();
    if scope.system {
        // The CI host is itself a container: mounts it inherited are locked, and systemd cannot
        // make a path on them writable in a service's namespace (226/NAMESPACE). A tmpfs made
        // here is not locked, so the test's folders live on one. Not under /run: the sandbox's
        // /run is no mount point, so a service with `ProtectProc=` gets an empty one.
        let status = Command::new("mount")
            .args(["-t", "tmpfs", "-o", "size=1g,mode=0755", "tmpfs"])
            .arg(&base)
            .status()
            .unwrap();
        assert!(status.success(), "mount the test's base");
    }
    // The unit's private /tmp hides a checkout under /tmp (CI's may be): the binary under test
    // runs from the test's own folder.
    // (Both units have PrivateTmp=.)
    let binary = base.join("ramlet");
    std::fs::copy(ramlet_binary(), &binary).unwrap();
    let agent = Agent::new_in(scope.clone(), name, &base);
    // System scope: `ramlet-volume-root.service` makes the root.
    let volumes = if scope.system {
        agent.dir.join("volumes")
    } else {
        scope.volume_root()
    };
    agent.secret("x", "through-the-unit");
    agent.spec(
        name,
        &container(name, &[("x", "0400", "x")], "restart", "dist"),
    );
    // User scope: a file owned by the container's uid 101, which only a helper inside Podman's
    // ID mapping can give it (the unit's sandbox maps the user alone).
    let owned = format!("{name}-owned");
    if !scope.system {
        agent.spec(&owned, &owned_container(&owned, "x", 101));
    }
    let shipped = if scope.system {
        "ramlet.service"
    } else {
        "ramlet-user.service"
    };
    let text = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../dist")
            .join(shipped),
    )
    .unwrap();
    let exec = format!(
        "ExecStart={} run --scope {} --spec-dir {} --state-dir {} --bus {} --unit-dir {} --volume-root {}",
        binary.display(),
        if scope.system { "system" } else { "user" },
        agent.dir.join("specs").display(),
        agent.dir.join("state").display(),
        scope.bus,
        scope.unit_dir().display(),
        volumes.display()
    );
    // System scope: the shipped ramlet-volume-root.service, on the test's volume root, which
    // the agent's unit requires as the shipped one does.
    let root_unit = format!("{name}-volume-root.service");
    let root_unit_text = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../dist/ramlet-volume-root.service"),
    )
    .unwrap()
    .replace(
        "ExecStart=/usr/bin/ramlet mount-volume-root --volume-root /run/ramlet/volumes",
        &format!(
            "ExecStart={} mount-volume-root --volume-root {} --size 16m",
            binary.display(),
            volumes.display()
        ),
    )
    .replace(
        "Before=ramlet.service",
        &format!("Before={name}-agent.service"),
    );
    // The sandbox runs inside a container that may not remount /proc/sys or /dev/kmsg: those
    // two settings (and only they) fail there with 226/NAMESPACE, so they are left out here.
    let sandbox_cannot = ["ProtectKernelTunables=", "ProtectKernelLogs="];
    let unit: String = text
        .lines()
        .filter(|l| !sandbox_cannot.iter().any(|c| l.starts_with(c)))
        .map(|l| {
            if l.starts_with("Requires=ramlet-volume-root.service")
                || l.starts_with("After=network-online.target ramlet-volume-root.service")
            {
                l.replace("ramlet-volume-root.service", &root_unit)
            } else if l.starts_with("ExecStart=") {
                // And ramlet's log where the test's failure messages look for it. The sandbox's
                // /run is no mount point, so a namespaced service gets an empty one (a host's
                // /run is a mount and stays): the manager's bus and notify sockets are bound in.
                let bus = if scope.system {
                    format!(
                        "\nBindPaths={} {}",
                        scope.runtime.join("bus").display(),
                        scope.runtime.join("systemd/notify").display()
                    )
                } else {
                    String::new()
                };
                format!(
                    "{exec}\nStandardError=append:{}{bus}",
                    agent.dir.join("ramlet.log").display()
                )
            } else if l.starts_with("ReadWritePaths=") {
                // The user unit's `%t` is the runtime folder, where ramlet makes its unit folder;
                // the system unit's RuntimeDirectory= makes it first.
                let units = if scope.system {
                    scope.unit_dir()
                } else {
                    scope.runtime.clone()
                };
                format!(
                    "ReadWritePaths={} {} {}",
                    agent.dir.join("state").display(),
                    units.display(),
                    volumes.display()
                )
            } else {
                l.to_owned()
            }
        })
        .collect::<Vec<_>>()
        .join("\n");
    let unit_name = format!("{name}-agent.service");
    let units = scope.runtime.join("systemd/user");
    std::fs::create_dir_all(&units).unwrap();
    std::fs::write(units.join(&unit_name), unit + "\n").unwrap();
    if scope.system {
        std::fs::write(units.join(&root_unit), &root_unit_text).unwrap();
    }
    agent.chown();
    if !scope.system {
        let _ = Command::new("chown")
            .args(["-R", &scope.user])
            .arg(scope.runtime.join("systemd"))
            .status();
    }
    assert!(
        scope
            .run("systemctl", &["--user", "daemon-reload"])
            .status
            .success()
    );
    let started = scope.run("systemctl", &["--user", "start", &unit_name]);
    let journal = || {
        String::from_utf8_lossy(
            &scope
                .run(
                    "systemctl",
                    &["--user", "status", "--no-pager", "-l", &unit_name],
                )
                .stdout,
        )
        .into_owned()
    };
    assert!(
        started.status.success(),
        "{started:?}\n{}\nramlet log:\n{}",
        journal(),
        agent.log()
    );
    agent.wait(
        "the container to read its secret through the dist unit",
        Duration::from_mins(2),
        || {
            scope
                .logs(name)
                .contains("FILE /run/s/x 400 through-the-unit")
                .then_some(())
        },
    );
    if !scope.system {
        agent.wait(
            "the rootless uid 101 to read its 0400 file through the dist unit",
            Duration::from_mins(2),
            || {
                scope
                    .logs(&owned)
                    .contains("OWNED /run/s/key 400 101:101 through-the-unit")
                    .then_some(())
            },
        );
    }
    agent.secret("x", "rotated-under-the-unit");
    agent.wait(
        "the rotation through the dist unit",
        Duration::from_mins(1),
        || {
            scope
                .logs(name)
                .contains("FILE /run/s/x 400 rotated-under-the-unit")
                .then_some(())
        },
    );
    if !scope.system {
        agent.wait(
            "the rotation of the file owned by uid 101 through the dist unit",
            Duration::from_mins(1),
            || {
                scope
                    .logs(&owned)
                    .contains("OWNED /run/s/key 400 101:101 rotated-under-the-unit")
                    .then_some(())
            },
        );
    }
    // Idle means idle: ramlet's own log and state beside the specs wake nothing.
    let reconciles = || agent.log().matches("reconciled").count();
    let before = reconciles();
    std::thread::sleep(Duration::from_secs(3));
    assert!(
        reconciles() <= before + 1,
        "an idle agent reconciled {} times in 3 s",
        reconciles() - before
    );
    if scope.system {
        let medium = agent.status()["volumes"].clone();
        assert_eq!(
            medium,
            format!("a noswap tmpfs (size=16384k) at {}", volumes.display()),
            "the unit made the volume root RAM before ramlet started"
        );
    }
    println!("{shipped} ({name}): the container read its secret and its rotation");
    let stopped = scope.run("systemctl", &["--user", "stop", &unit_name]);
    assert!(stopped.status.success(), "{stopped:?}\n{}", journal());
    let running = agent.wait(
        "the container still running after ramlet's unit stopped",
        Duration::from_secs(10),
        || {
            let state = scope.active(name);
            (state == "active").then_some(state)
        },
    );
    assert_eq!(running, "active");
    let _ = std::fs::remove_file(units.join(&unit_name));
    if scope.system {
        let _ = scope.run("systemctl", &["--user", "stop", &root_unit]);
        let _ = std::fs::remove_file(units.join(&root_unit));
    }
    let _ = scope.run("systemctl", &["--user", "daemon-reload"]);
    // Drop's clean-up runs ramlet directly; the volumes stay on the test's tmpfs till it goes.
    drop(agent);
    if scope.system {
        let _ = Command::new("umount").arg("-l").arg(&volumes).status();
        let _ = Command::new("umount").arg("-l").arg(&base).status();
    }
    let _ = std::fs::remove_dir(&base);
}

#[test]
#[ignore = "needs the e2e sandbox (scripts/test runs it)"]
fn user_scope_gives_files_the_owners_the_container_sees() {
    let scope = Scope::user();
    let mut agent = Agent::new(scope.clone(), "owners");
    agent.secret("k", "first-key");
    agent.spec("o", &owned_container("e2e-owned", "k", 101));
    // Outside the test user's 65536 subordinate IDs: that spec fails, on its own.
    agent.spec("far", &owned_container("e2e-far", "k", 70000));
    agent.start();
    let logs = agent.wait(
        "the rootless uid 101 to read its 0400 file",
        Duration::from_mins(1),
        || {
            let logs = scope.logs("e2e-owned");
            logs.contains("OWNED /run/s/key").then_some(logs)
        },
    );
    assert!(logs.contains("ID 101:101"), "{logs}");
    assert!(
        logs.contains("OWNED /run/s/key 400 101:101 first-key"),
        "{logs}"
    );
    // On the host the file belongs to the user's 101st subordinate ID, as `podman unshare
    // chown 101:101` would make it.
    let start = subordinate_start(&scope.user);
    let data = scope.volume_root().join("e2e-owned/s/..data/key");
    let meta = std::fs::metadata(&data).unwrap();
    assert_eq!(
        (meta.uid(), meta.gid(), meta.mode() & 0o7777),
        (start + 100, start + 100, 0o400),
        "{}",
        data.display()
    );
    let status = agent.wait(
        "the spec out of range to fail",
        Duration::from_secs(30),
        || {
            let status = agent.status();
            (status["specs"]["e2e-far"]["phase"] == "Failed").then_some(status)
        },
    );
    let message = status["specs"]["e2e-far"]["message"].to_string();
    assert!(
        message.contains("owner 70000:70000 is outside") && message.contains("uids 0 to 65536"),
        "{status}"
    );
    assert_eq!(status["specs"]["e2e-owned"]["phase"], "Ready", "{status}");

    // A rotation keeps the owner.
    let rotate = |value: &str| {
        agent.secret("k", value);
        let owned = format!("OWNED /run/s/key 400 101:101 {value}");
        agent.wait(
            "the rotated file, owner kept",
            Duration::from_mins(1),
            || scope.logs("e2e-owned").contains(&owned).then_some(()),
        );
    };
    let before = scope.invocation("e2e-owned");
    rotate("second-key");
    let rotated = scope.invocation("e2e-owned");
    assert_ne!(rotated, before, "a restart rotation restarted it");

    // One helper served both writes (issue 37: started once, kept); killed, the next write
    // starts another, and the rotation lands all the same.
    let first = volume_helpers(&scope);
    assert_eq!(first.len(), 1, "one helper, kept: {first:?}");
    let killed = scope.run(
        "systemctl",
        &["--user", "kill", "--signal=SIGKILL", &first[0]],
    );
    assert!(killed.status.success(), "{killed:?}");
    agent.wait("the helper gone", Duration::from_secs(10), || {
        volume_helpers(&scope).is_empty().then_some(())
    });
    rotate("third-key");
    let second = volume_helpers(&scope);
    assert!(
        second.len() == 1 && second != first,
        "a new helper: {first:?} then {second:?}\n{}",
        agent.log()
    );
    let rotated = scope.invocation("e2e-owned");

    // A restart of ramlet reads the volume back (inside the mapping: ramlet cannot as itself)
    // and finds nothing to do: the container keeps running.
    agent.restart(|| {});
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(
        scope.invocation("e2e-owned"),
        rotated,
        "not restarted after ramlet's restart\n{}",
        agent.log()
    );
    assert_eq!(agent.status()["specs"]["e2e-owned"]["phase"], "Ready");

    // Removing the spec removes its volume, subordinate owners and all.
    agent.remove_spec("o");
    let folder = scope.volume_root().join("e2e-owned");
    agent.wait("the volume removed", Duration::from_mins(1), || {
        (!folder.exists()).then_some(())
    });
}

/// The volume helpers running in the user's manager (their unit names).
fn volume_helpers(scope: &Scope) -> Vec<String> {
    let listed = scope.run(
        "systemctl",
        &[
            "--user",
            "list-units",
            "--plain",
            "--no-legend",
            "--state=active",
            "ramlet-volume-helper-*",
        ],
    );
    String::from_utf8_lossy(&listed.stdout)
        .lines()
        .filter_map(|l| l.split_whitespace().next().map(str::to_owned))
        .collect()
}

/// The first subordinate uid of `user`, from `/etc/subuid`.
fn subordinate_start(user: &str) -> u32 {
    std::fs::read_to_string("/etc/subuid")
        .unwrap()
        .lines()
        .find_map(|l| {
            l.strip_prefix(&format!("{user}:"))?
                .split(':')
                .next()?
                .parse()
                .ok()
        })
        .expect("the test user's range in /etc/subuid")
}

#[test]
#[ignore = "needs the e2e sandbox (scripts/test runs it)"]
fn system_scope_runs_through_the_shipped_unit() {
    through_dist_unit(&Scope::system(), "e2e-dist-s");
}

/// Sends the running agent SIGTERM and says how long it took to exit (killed after 20 s).
fn time_to_stop(agent: &mut Agent) -> Duration {
    let mut child = agent.child.take().unwrap();
    let asked = Instant::now();
    terminate(child.id()).unwrap();
    while child.try_wait().unwrap().is_none() && asked.elapsed() < Duration::from_secs(20) {
        std::thread::sleep(Duration::from_millis(20));
    }
    let took = asked.elapsed();
    let _ = child.kill();
    let _ = child.wait();
    took
}

/// Issue 19, finding 3: a `*.yaml` FIFO in the spec directory (or a link to one) hung the
/// running agent for good: reconciles stopped, SIGTERM did nothing. Now each is an error of its
/// own file, reconciles go on (a rotation still lands), `ramlet validate` returns, and SIGTERM
/// ends the agent within 5 s.
#[test]
#[ignore = "needs the e2e sandbox (scripts/test runs it)"]
fn user_scope_a_fifo_in_the_spec_directory_hangs_nothing() {
    let scope = Scope::user();
    let mut agent = Agent::new(scope.clone(), "fifo");
    agent.secret("x", "before-the-fifo");
    agent.spec(
        "e2e-fifo",
        &container("e2e-fifo", &[("x", "0400", "x")], "restart", "fifo"),
    );
    agent.start();
    agent.wait("the first value", Duration::from_mins(1), || {
        scope
            .logs("e2e-fifo")
            .contains("FILE /run/s/x 400 before-the-fifo")
            .then_some(())
    });
    let specs = agent.dir.join("specs");
    let made = Command::new("mkfifo")
        .arg(specs.join("pipe.yaml"))
        .status()
        .unwrap();
    assert!(made.success());
    std::os::unix::fs::symlink(specs.join("pipe.yaml"), specs.join("link.yaml")).unwrap();
    agent.chown();
    agent.secret("x", "after-the-fifo");
    agent.wait("a rotation past the FIFO", Duration::from_mins(1), || {
        scope
            .logs("e2e-fifo")
            .contains("FILE /run/s/x 400 after-the-fifo")
            .then_some(())
    });
    agent.wait("the FIFO named in status", Duration::from_secs(30), || {
        let errors = agent.status()["errors"].to_string();
        (errors.contains("pipe.yaml") && errors.contains("link.yaml")).then_some(())
    });
    let validate = Command::new(ramlet_binary())
        .arg("validate")
        .arg(&specs)
        .output()
        .unwrap();
    assert_eq!(validate.status.code(), Some(1), "{validate:?}");
    let took = time_to_stop(&mut agent);
    println!(
        "FIFO in the spec directory: rotation landed, SIGTERM ended ramlet in {} ms",
        took.as_millis()
    );
    assert!(
        took < Duration::from_secs(5),
        "ramlet took {took:?} to stop\n{}",
        agent.log()
    );
}

#[test]
#[ignore = "needs the e2e sandbox (scripts/test runs it)"]
fn user_scope_runs_through_the_shipped_unit() {
    through_dist_unit(&Scope::user(), "e2e-dist-u");
}

/// What Secret Manager publishes when version `n` of `id` is added.
fn version_added(id: &str, n: u64) -> google_cloud_pubsub::model::Message {
    let number = ramlet_e2e::peers::GCP_PROJECT.1;
    let version = format!("projects/{number}/secrets/{id}/versions/{n}");
    google_cloud_pubsub::model::Message::new()
        .set_data(format!(r#"{{"name": "{version}", "state": "ENABLED"}}"#))
        .set_attributes([
            ("eventType".to_owned(), "SECRET_VERSION_ADD".to_owned()),
            (
                "secretId".to_owned(),
                format!("projects/{number}/secrets/{id}"),
            ),
            ("versionId".to_owned(), version),
            ("dataFormat".to_owned(), "JSON_API_V1".to_owned()),
        ])
}

/// Change events with the refresh interval at 1 h: a new version plus its event (SQS from
/// moto, Pub/Sub from the project's fake) reaches the container in seconds; an event for a
/// secret no spec uses costs no call; with the event peers gone, status names the listeners'
/// errors and the stores are polled at their fallback interval.
#[allow(clippy::too_many_lines)] // one story, step by step: each step builds on the last
fn change_events(scope: Scope, name: &str) {
    let mut agent = Agent::new(scope, name);
    let aws = ramlet_e2e::peers::Aws::start(&agent.dir);
    let mut sqs_proxy = aws.events_proxy(&agent.dir);
    let gcp = ramlet_e2e::peers::Gcp::start(&agent.dir);
    let (project, _) = ramlet_e2e::peers::GCP_PROJECT;
    let subscription = format!("projects/{project}/subscriptions/ramlet");
    let topic = format!("projects/{project}/topics/secret-events");
    let mut pubsub = ramlet_e2e::peers::PubSub::start(&agent.dir, &[(&subscription, &topic)]);
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let moto_url = format!("http://127.0.0.1:{}", aws.moto.port);
    let (secrets, sqs, queue, publisher) = runtime.block_on(async {
        let config = aws_config::defaults(aws_config::BehaviorVersion::latest())
            .region(aws_config::Region::new("eu-west-1"))
            .endpoint_url(&moto_url)
            .credentials_provider(aws_sdk_sqs::config::Credentials::new(
                "testing", "testing", None, None, "moto",
            ))
            .load()
            .await;
        let sqs = aws_sdk_sqs::Client::new(&config);
        let queue = sqs
            .create_queue()
            .queue_name("ramlet-events")
            .send()
            .await
            .unwrap()
            .queue_url
            .unwrap();
        let publisher = google_cloud_pubsub::client::Publisher::builder(topic.clone())
            .with_endpoint(pubsub.endpoint())
            .with_credentials(google_cloud_auth::credentials::anonymous::Builder::new().build())
            .build()
            .await
            .unwrap();
        (
            aws_sdk_secretsmanager::Client::new(&config),
            sqs,
            queue,
            publisher,
        )
    });
    let create = |name: &str, value: &str| {
        runtime.block_on(async {
            let out = secrets
                .create_secret()
                .name(name)
                .secret_string(value)
                .send()
                .await
                .unwrap();
            out.arn.unwrap()
        })
    };
    let db = create("app/db", r#"{"password": "aws-one"}"#);
    let unused = create("not/used", "x");
    gcp.create("tls-key");
    gcp.add_version("tls-key", b"gcp-one");
    gcp.create("unused-key");
    gcp.add_version("unused-key", b"x");
    let queue_path = queue
        .split_once("://")
        .unwrap()
        .1
        .split_once('/')
        .unwrap()
        .1;
    agent.spec(
        "stores",
        &format!(
            "apiVersion: ramlet.dev/v1alpha1\nkind: SecretStore\nmetadata: {{name: aws}}\nspec:\n  refreshInterval: 1h\n  aws:\n    region: eu-west-1\n    endpoint: \"{}\"\n    events: {{queue: \"http://127.0.0.1:{}/{queue_path}\", fallbackInterval: 10s}}\n---\n\
             apiVersion: ramlet.dev/v1alpha1\nkind: SecretStore\nmetadata: {{name: gcp}}\nspec:\n  refreshInterval: 1h\n  gcp:\n    project: {project}\n    endpoint: \"{}\"\n    events: {{subscription: \"{subscription}\", endpoint: \"{}\", fallbackInterval: 10s}}\n",
            aws.endpoint(),
            sqs_proxy.port,
            gcp.endpoint(),
            pubsub.endpoint()
        ),
    );
    agent.spec(name, &cloud_container(name, "events"));
    agent.start();
    let shows = |agent: &Agent, db: &str, tls: &str| shows_cloud_secrets(agent, name, db, tls);
    agent.wait(
        "both cloud secrets in the container",
        Duration::from_mins(2),
        || shows(&agent, "aws-one", "gcp-one"),
    );
    let events = |agent: &Agent, store: &str| agent.status()["stores"][store]["events"].clone();
    agent.wait(
        "Ready, both listeners listening",
        Duration::from_secs(30),
        || {
            (agent.status()["specs"][name]["phase"] == "Ready"
                && events(&agent, "aws")["listening"] == true
                && events(&agent, "gcp")["listening"] == true)
                .then_some(())
        },
    );

    // AWS: a new version, then its event on the queue.
    runtime.block_on(async {
        secrets
            .put_secret_value()
            .secret_id("app/db")
            .secret_string(r#"{"password": "aws-two"}"#)
            .send()
            .await
            .unwrap();
    });
    let sent = Instant::now();
    runtime.block_on(async {
        sqs.send_message()
            .queue_url(&queue)
            .message_body(ramlet_e2e::peers::put_secret_value_event(&db))
            .send()
            .await
            .unwrap();
    });
    agent.wait(
        "the AWS version in the container",
        Duration::from_secs(30),
        || shows(&agent, "aws-two", "gcp-one"),
    );
    let aws_took = sent.elapsed();

    // GCP: a new version, then its message.
    let n = gcp.add_version("tls-key", b"gcp-two");
    let published = Instant::now();
    runtime.block_on(async {
        publisher
            .publish(version_added("tls-key", n))
            .await
            .unwrap()
    });
    agent.wait(
        "the GCP version in the container",
        Duration::from_secs(30),
        || shows(&agent, "aws-two", "gcp-two"),
    );
    let gcp_took = published.elapsed();
    println!(
        "change events ({name}, refresh 1h): a new version reached the container {} ms after its SQS event, {} ms after its Pub/Sub message",
        aws_took.as_millis(),
        gcp_took.as_millis()
    );
    // Seconds, not the hour of the refresh: the event brought it. (The figures above are what
    // to compare; this bound only has to hold on a loaded CI host: 2 s was missed by 9 ms there.)
    assert!(aws_took < Duration::from_secs(5), "{aws_took:?}");
    assert!(gcp_took < Duration::from_secs(5), "{gcp_took:?}");

    // Events for secrets no spec uses: each is settled with its source (deleted from the queue,
    // acknowledged), and no call reaches either secret manager. (No reconcile either: the
    // status file counts them at its next write.)
    aws.proxy.clear_calls();
    gcp.fake.clear_calls();
    let deleted = sqs_proxy.count("DeleteMessage");
    let acknowledged = pubsub.fake.count("Acknowledge");
    runtime.block_on(async {
        sqs.send_message()
            .queue_url(&queue)
            .message_body(ramlet_e2e::peers::put_secret_value_event(&unused))
            .send()
            .await
            .unwrap();
        publisher
            .publish(version_added("unused-key", 2))
            .await
            .unwrap();
    });
    agent.wait(
        "both unused events settled",
        Duration::from_secs(30),
        || {
            (sqs_proxy.count("DeleteMessage") > deleted
                && pubsub.fake.count("Acknowledge") > acknowledged)
                .then_some(())
        },
    );
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(
        aws.proxy.calls(),
        Vec::<String>::new(),
        "AWS calls for an unused secret"
    );
    assert_eq!(
        gcp.fake.calls(),
        Vec::<String>::new(),
        "GCP calls for an unused secret"
    );

    // The event peers go away: status names each listener's error; polling takes over at the
    // fallback interval (10 s), so new versions still arrive without events.
    sqs_proxy.stop();
    pubsub.fake.stop();
    let status = agent.wait("both listeners failing", Duration::from_mins(1), || {
        let status = agent.status();
        (status["stores"]["aws"]["events"]["listening"] == false
            && status["stores"]["gcp"]["events"]["listening"] == false)
            .then_some(status)
    });
    for store in ["aws", "gcp"] {
        let error = status["stores"][store]["events"]["error"].as_str().unwrap();
        assert!(error.contains("Connection refused"), "{store}: {error}");
        println!("{store} listener down: status says {error:?}");
    }
    assert_eq!(status["specs"][name]["phase"], "Ready", "{status}");
    runtime.block_on(async {
        secrets
            .put_secret_value()
            .secret_id("app/db")
            .secret_string(r#"{"password": "aws-three"}"#)
            .send()
            .await
            .unwrap();
    });
    gcp.add_version("tls-key", b"gcp-three");
    let rotated = Instant::now();
    agent.wait(
        "new versions by polling, without events",
        Duration::from_secs(40),
        || shows(&agent, "aws-three", "gcp-three"),
    );
    println!(
        "change events ({name}): with the event peers down, polling brought the new versions in {} ms (fallbackInterval 10s)",
        rotated.elapsed().as_millis()
    );
    drop(agent);
}

#[test]
#[ignore = "needs the e2e sandbox (scripts/test runs it)"]
fn user_scope_change_events_bring_new_versions_in_seconds() {
    change_events(Scope::user(), "e2e-events-u");
}

/// Runs `ramlet seal` for `agent`'s spec directory, the value on standard input.
fn seal(agent: &Agent, store: &str, secret: &str, value: &str, extra: &[&str]) {
    use std::io::Write as _;
    let mut child = agent
        .scope
        .command(ramlet_binary().to_str().unwrap())
        .arg("seal")
        .arg("--spec-dir")
        .arg(agent.dir.join("specs"))
        .arg("--config")
        .arg(agent.dir.join("config.yaml"))
        .args(extra)
        .args([store, secret])
        .stdin(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(value.as_bytes())
        .unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(
        output.status.success(),
        "ramlet seal {store} {secret}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// Issue 22: a `creds` store (sealed with systemd-creds to the host key, by `ramlet seal`) and an
/// `age` store (files beside the specs; the host's identity itself sealed with systemd-creds, so
/// no plain key is on the disk) feed one container; both rotate by a new sealed file; an age file
/// encrypted again to more recipients restarts nothing; a credential sealed for another host is
/// `SecretUndecryptable` on its spec while the container keeps its last good value. After all
/// that and a SIGKILL of ramlet, no value is on any persistent file system, in any process's
/// command line or environment.
#[test]
#[ignore = "needs the e2e sandbox (scripts/test runs it)"]
#[allow(clippy::too_many_lines)] // one story, step by step
fn system_scope_sealed_stores_rotate_and_leave_no_plain_text() {
    let scope = Scope::system();
    let mut agent = Agent::new(scope.clone(), "sealed");
    let dir = agent.dir.clone();
    // The host's age identity, sealed with systemd-creds; the plain key is gone before ramlet starts.
    let plain_key = dir.join("age.key");
    let keygen = Command::new("age-keygen")
        .arg("-o")
        .arg(&plain_key)
        .output()
        .expect("age-keygen (scripts/install-build-deps installs Debian's age)");
    let recipient = String::from_utf8_lossy(&keygen.stderr)
        .split_whitespace()
        .find(|w| w.starts_with("age1"))
        .unwrap()
        .to_owned();
    let sealed_identity = dir.join("age-identity");
    let status = Command::new("systemd-creds")
        .args(["encrypt", "--with-key=host", "--name=age-identity"])
        .arg(&plain_key)
        .arg(&sealed_identity)
        .status()
        .unwrap();
    assert!(status.success());
    std::fs::remove_file(&plain_key).unwrap();
    agent.spec(
        "sealed-stores",
        &format!(
            "apiVersion: ramlet.dev/v1alpha1\nkind: SecretStore\nmetadata: {{name: sealed}}\nspec:\n  creds: {{directory: {}}}\n---\n\
             apiVersion: ramlet.dev/v1alpha1\nkind: SecretStore\nmetadata: {{name: repo}}\nspec:\n  age:\n    directory: committed\n    identityCredential: {}\n    recipients: [{recipient}]\n",
            dir.join("creds").display(),
            sealed_identity.display()
        ),
    );
    let canary = |len: usize| format!("SEALCANARY{}", random_hex(len - 10));
    let (creds1, creds2, age1, age2) = (canary(32), canary(40), canary(33), canary(41));
    seal(&agent, "sealed", "x", &creds1, &["--with-key", "host"]);
    seal(&agent, "repo", "app/y", &age1, &[]);
    assert!(dir.join("specs/committed/app/y.age").exists());
    let spec = container(
        "e2e-sealed",
        &[("x", "0400", "x"), ("y", "0400", "y")],
        "restart",
        "one",
    )
    .replace("{store: local, name: x}", "{store: sealed, name: x}")
    .replace("{store: local, name: y}", "{store: repo, name: app/y}")
    .replace(
        "$(stat -L -c %a $f) $(cat $f)",
        "$(head -c 10 $f) $(wc -c < $f)",
    );
    agent.spec("e2e-sealed", &spec);
    agent.start();
    let shows = |x: usize, y: usize| {
        let logs = scope.logs("e2e-sealed");
        (logs.contains(&format!("/run/s/x SEALCANARY {x}"))
            && logs.contains(&format!("/run/s/y SEALCANARY {y}")))
        .then_some(())
    };
    agent.wait(
        "the sealed values in the container",
        Duration::from_mins(1),
        || shows(32, 33),
    );

    // A rotation of each: a new sealed file.
    let started = Instant::now();
    seal(&agent, "sealed", "x", &creds2, &["--with-key", "host"]);
    seal(&agent, "repo", "app/y", &age2, &["--armor"]);
    agent.wait("the rotated values", Duration::from_mins(1), || {
        shows(40, 41)
    });
    println!(
        "sealed rotation (e2e-sealed): both new values reached the container in {} ms",
        started.elapsed().as_millis()
    );
    agent.wait("Ready", Duration::from_secs(30), || {
        (agent.status()["specs"]["e2e-sealed"]["phase"] == "Ready").then_some(())
    });
    let id = scope.invocation("e2e-sealed");

    // The age file encrypted again, same value, to one more recipient (a new host): no restart.
    let other = Command::new("age-keygen").output().unwrap();
    let other = String::from_utf8_lossy(&other.stderr)
        .split_whitespace()
        .find(|w| w.starts_with("age1"))
        .unwrap()
        .to_owned();
    let again = {
        use std::io::Write as _;
        let mut child = Command::new("age")
            .args(["-e", "-r", &recipient, "-r", &other])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(age2.as_bytes())
            .unwrap();
        child.wait_with_output().unwrap().stdout
    };
    let y_file = dir.join("specs/committed/app/y.age");
    let before = std::fs::read(&y_file).unwrap();
    std::fs::write(dir.join(".y.age.tmp"), &again).unwrap();
    std::fs::rename(dir.join(".y.age.tmp"), &y_file).unwrap();
    assert_ne!(before, again);
    // A sync makes ramlet read every store at once; a fresh status says it has.
    let updated = agent.status()["updated"].clone();
    std::thread::sleep(Duration::from_millis(1100));
    assert!(agent.command("sync").status().unwrap().success());
    agent.wait(
        "a reconcile after the re-encryption",
        Duration::from_secs(30),
        || (agent.status()["updated"] != updated).then_some(()),
    );
    assert_eq!(
        scope.invocation("e2e-sealed"),
        id,
        "a re-encryption restarted the container"
    );

    // A credential sealed for another host: that spec says why, the container keeps its value.
    let other_host = dir.join("other-host.secret");
    let status = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "printf %s \"$1\" | SYSTEMD_CREDENTIAL_SECRET={} systemd-creds encrypt --with-key=host --name=x - {}/.x.tmp 2>/dev/null && mv {}/.x.tmp {}/x",
            other_host.display(),
            dir.join("creds").display(),
            dir.join("creds").display(),
            dir.join("creds").display()
        ))
        .args(["sh", &canary(36)])
        .status()
        .unwrap();
    assert!(status.success());
    let spec_status = agent.wait("SecretUndecryptable", Duration::from_secs(30), || {
        let status = agent.status();
        let spec = &status["specs"]["e2e-sealed"];
        (spec["reason"] == "SecretUndecryptable").then(|| spec.clone())
    });
    assert_eq!(spec_status["phase"], "Degraded", "{spec_status}");
    let message = spec_status["message"].as_str().unwrap_or_default();
    assert!(message.contains("another host's key"), "{message}");
    assert_eq!(
        scope.invocation("e2e-sealed"),
        id,
        "a bad credential restarted the container"
    );
    assert!(shows(40, 41).is_some());

    // No value in any process's command line or environment (ramlet's, systemd-creds', the
    // container's, everybody's).
    let patterns: Vec<String> = [&creds1, &creds2, &age1, &age2]
        .iter()
        .map(|c| c["SEALCANARY".len()..].to_owned())
        .collect();
    let pattern_file = dir.join("patterns");
    std::fs::write(&pattern_file, patterns.join("\n") + "\n").unwrap();
    let processes = no_process_holds(&patterns);

    // SIGKILL: nothing ramlet had in memory reaches a disk on the way down.
    let pid = agent.child.as_ref().unwrap().id();
    assert!(
        Command::new("kill")
            .args(["-KILL", &pid.to_string()])
            .status()
            .unwrap()
            .success()
    );
    let _ = agent.child.take().unwrap().wait();
    let files = searched_files(
        &[dir.clone(), scope.runtime.clone()],
        std::slice::from_ref(&pattern_file),
    );
    for must in [dir.join("creds/x"), y_file.clone(), dir.join("ramlet.log")] {
        assert!(files.contains(&must), "{} is searched", must.display());
    }
    let hits = files_holding(&files, &pattern_file);
    println!(
        "sealed leak search: {} values in {} files on persistent storage and {processes} processes' command lines and environments: {} hits",
        patterns.len(),
        files.len(),
        hits.len()
    );
    assert!(hits.is_empty(), "sealed values found in {hits:#?}");
    let volume_hits = files_holding(&[scope.volume_root().join("e2e-sealed/s/x")], &pattern_file);
    assert_eq!(volume_hits.len(), 1, "the search finds a value where it is");
}

/// Issue 35 on a real host, against a real OpenBao server: a KV v2 secret reaches its
/// containers; `bao kv put` of a new version reaches exactly its consumers within one refresh
/// (the other container never restarts); a sealed server keeps every container on its last good
/// value while status says why; a store naming an address the host's policy does not allow is
/// refused by `ramlet validate` and by the running agent, and the server sees nothing of it; the
/// token is in no log, status or state file.
#[test]
#[ignore = "needs the e2e sandbox (scripts/test runs it)"]
#[allow(clippy::too_many_lines)] // one story: read, rotate, seal, refuse
fn user_scope_openbao_rotates_exactly_its_consumers_and_survives_a_sealed_server() {
    let scope = Scope::user();
    let mut agent = Agent::new(scope.clone(), "e2e-bao");
    let bao = ramlet_e2e::openbao::Bao::start(&agent.dir.join("bao"));
    agent.spec("bao", &openbao_store(&agent, &bao, &["app/db", "app/api"]));
    let token = std::fs::read_to_string(agent.dir.join("keys/bao-token")).unwrap();
    bao.put("app/db", &[("password", "db-one"), ("user", "app")]);
    bao.put("app/api", &[("password", "api-one")]);
    let names = ["e2e-bao-a", "e2e-bao-b", "e2e-bao-c"];
    for (name, path) in names.iter().zip(["app/db", "app/db", "app/api"]) {
        agent.spec(
            name,
            &container(name, &[("k", "0400", "x")], "restart", "bao").replace(
                "{store: local, name: x}",
                &format!("{{store: bao, name: {path}, property: password}}"),
            ),
        );
    }
    agent.start();
    let shows = |name: &str, value: &str| {
        scope
            .logs(name)
            .contains(&format!("FILE /run/s/k 400 {value}"))
    };
    agent.wait(
        "the KV values in the containers",
        Duration::from_mins(2),
        || {
            (shows(names[0], "db-one") && shows(names[1], "db-one") && shows(names[2], "api-one"))
                .then_some(())
        },
    );
    let owned: Vec<String> = names.iter().map(|n| (*n).to_owned()).collect();
    agent.wait("Ready", Duration::from_secs(30), || {
        let status = agent.status();
        owned
            .iter()
            .all(|n| status["specs"][n]["phase"] == "Ready")
            .then_some(())
    });
    let before = invocations(&scope, &owned);

    // A new version of app/db: its two consumers restart on it within one refresh (10 s);
    // app/api's consumer does not.
    bao.put("app/db", &[("password", "db-two"), ("user", "app")]);
    let rotated = Instant::now();
    agent.wait(
        "app/db's consumers on db-two",
        Duration::from_secs(25),
        || (shows(names[0], "db-two") && shows(names[1], "db-two")).then_some(()),
    );
    println!(
        "openbao rotation: `bao kv put` reached both consumers in {} ms (refresh 10 s)",
        rotated.elapsed().as_millis()
    );
    agent.wait("Ready on the new version", Duration::from_secs(30), || {
        let status = agent.status();
        owned[..2]
            .iter()
            .all(|n| status["specs"][n]["phase"] == "Ready")
            .then_some(())
    });
    let after = invocations(&scope, &owned);
    assert_ne!(after[0], before[0]);
    assert_ne!(after[1], before[1]);
    assert_eq!(after[2], before[2], "app/api's consumer was restarted");

    // Sealed: every container keeps its value; status says why, at the store and the specs.
    bao.seal();
    let status = agent.wait("the store unhealthy", Duration::from_secs(40), || {
        let status = agent.status();
        (status["stores"]["bao"]["healthy"] == false
            && status["specs"][names[2]]["phase"] == "Degraded")
            .then_some(status)
    });
    let said = status["stores"]["bao"]["message"]
        .as_str()
        .unwrap_or_default();
    assert!(said.contains("sealed"), "{status}");
    assert_eq!(
        invocations(&scope, &owned),
        after,
        "a sealed server restarted a container"
    );
    bao.unseal();
    agent.wait("Ready again", Duration::from_mins(1), || {
        let status = agent.status();
        owned
            .iter()
            .all(|n| status["specs"][n]["phase"] == "Ready")
            .then_some(())
    });
    assert_eq!(invocations(&scope, &owned), after);

    // A store that would send the host's token elsewhere: refused by `validate` and by the
    // running agent, at its line; the other specs run on.
    let attacker = ramlet_e2e::openbao::Bao::start(&agent.dir.join("attacker"));
    agent.spec(
        "stolen",
        &format!(
            "apiVersion: ramlet.dev/v1alpha1\nkind: SecretStore\nmetadata: {{name: stolen}}\nspec:\n  openbao:\n    address: \"{}\"\n    mount: secret\n    auth:\n      token: {{file: {}}}\n",
            attacker.address().replace("127.0.0.1", "localhost"),
            agent.dir.join("keys/bao-token").display()
        ),
    );
    let validate = Command::new(ramlet_binary())
        .arg("validate")
        .arg("--config")
        .arg(agent.dir.join("config.yaml"))
        .arg(agent.dir.join("specs"))
        .output()
        .unwrap();
    assert_eq!(validate.status.code(), Some(1), "{validate:?}");
    assert!(
        String::from_utf8_lossy(&validate.stdout).contains("stolen.yaml:6:")
            || String::from_utf8_lossy(&validate.stderr).contains("stolen.yaml:6:"),
        "{validate:?}"
    );
    agent.wait("the refusal in status", Duration::from_secs(30), || {
        let errors = agent.status()["errors"].to_string();
        (errors.contains("stolen.yaml:6:") && errors.contains("policy.endpoints")).then_some(())
    });
    assert_eq!(attacker.requests("auth/token/lookup-self"), 0);
    assert_eq!(invocations(&scope, &owned), after);

    // The token: in no log line, status or state file.
    agent.stop();
    let token = token.trim();
    let mut files = vec![agent.dir.join("ramlet.log")];
    for entry in std::fs::read_dir(agent.dir.join("state")).unwrap() {
        files.push(entry.unwrap().path());
    }
    for file in files.iter().filter(|f| f.is_file()) {
        let text = std::fs::read(file).unwrap();
        assert!(
            !text.windows(token.len()).any(|w| w == token.as_bytes()),
            "the token is in {}",
            file.display()
        );
    }
}
