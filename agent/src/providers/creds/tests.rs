//! The `creds` store against Debian's own `systemd-creds` and the host's key: values sealed by
//! the tool are read back, a re-seal is a new version, and each way a credential cannot be opened
//! (another host's key, a damaged file, another name, no TPM2) is a clear `undecryptable` error
//! that names the file and never the value. Needs root (the host key is root's); as another user
//! each test says it was skipped.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use super::*;

fn scratch(name: &str) -> Option<PathBuf> {
    if !nix::unistd::Uid::effective().is_root() {
        eprintln!(
            "skipped: the host key of systemd-creds is root's (scripts/test runs this as root)"
        );
        return None;
    }
    let dir = std::env::temp_dir().join(format!("ramlet-creds-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    Some(dir)
}

/// Seals `value` with the tool itself (not ramlet's code), with extra environment.
fn seal_with_tool(value: &str, name: &str, out: &Path, env: &[(&str, &Path)]) {
    let mut child = Command::new("systemd-creds")
        .args(["encrypt", "--with-key=host", &format!("--name={name}"), "-"])
        .arg(out)
        .envs(env.iter().copied())
        .stdin(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(value.as_bytes())
        .unwrap();
    assert!(child.wait().unwrap().success(), "systemd-creds encrypt");
}

fn ask(name: &str, known: Option<String>) -> Request {
    Request {
        name: name.into(),
        version: SecretVersion::Latest,
        known,
    }
}

use ramlet_specs::model::SecretVersion;

#[tokio::test]
async fn reads_what_systemd_creds_sealed_and_a_reseal_is_a_new_version() {
    let Some(dir) = scratch("read") else { return };
    std::fs::create_dir_all(dir.join("prod")).unwrap();
    seal_with_tool("hunter2", "db", &dir.join("prod/db"), &[]);
    let store = CredsProvider::new(dir.clone());
    let got = store
        .fetch(&[ask("prod/db", None)], Limits::default())
        .await;
    let [Ok(Fetched::New(first))] = got.as_slice() else {
        panic!("{got:?}")
    };
    assert_eq!(first.bytes.expose(), b"hunter2");
    let again = store
        .fetch(
            &[ask("prod/db", Some(first.version.clone()))],
            Limits::default(),
        )
        .await;
    assert_eq!(again, [Ok(Fetched::Unchanged)]);
    // ramlet's own sealing (what `ramlet seal` runs) is read back the same way, as a rotation.
    encrypt(b"rotated", "db", WithKey::Host, &dir.join("prod/db")).unwrap();
    let got = store
        .fetch(
            &[ask("prod/db", Some(first.version.clone()))],
            Limits::default(),
        )
        .await;
    let [Ok(Fetched::New(second))] = got.as_slice() else {
        panic!("{got:?}")
    };
    assert_eq!(second.bytes.expose(), b"rotated");
    assert_ne!(second.version, first.version);
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test]
async fn a_credential_this_host_cannot_open_is_a_clear_error_that_never_shows_the_value() {
    let Some(dir) = scratch("bad") else { return };
    // Sealed with another host's key: systemd-creds takes the key's path from the environment.
    let other_host = dir.join("other-host.secret");
    seal_with_tool(
        "other-host-value",
        "foreign",
        &dir.join("foreign"),
        &[("SYSTEMD_CREDENTIAL_SECRET", &other_host)],
    );
    // Sealed under another name than the secret's.
    seal_with_tool("renamed-value", "somebody-else", &dir.join("renamed"), &[]);
    // Damaged: the first 60 bytes of a good one.
    seal_with_tool("truncated-value", "truncated", &dir.join("whole"), &[]);
    let whole = std::fs::read(dir.join("whole")).unwrap();
    std::fs::write(dir.join("truncated"), &whole[..60]).unwrap();
    // Not a credential at all.
    std::fs::write(dir.join("plain"), b"plain-value").unwrap();

    let store = CredsProvider::new(dir.clone());
    let names = ["foreign", "renamed", "truncated", "plain", "missing"];
    let asked: Vec<Request> = names.iter().map(|n| ask(n, None)).collect();
    let answers = store.fetch(&asked, Limits::default()).await;
    for (name, answer) in names.iter().zip(&answers) {
        let error = answer.clone().expect_err(name);
        let text = error.to_string();
        assert!(!text.contains("-value"), "{name}: the value leaked: {text}");
        if *name == "missing" {
            assert_eq!(error.kind(), ErrorKind::NotFound, "{text}");
            continue;
        }
        assert_eq!(error.kind(), ErrorKind::Undecryptable, "{name}: {text}");
        assert!(
            text.contains(&dir.join(name).display().to_string()),
            "{text}"
        );
    }
    let text = |i: usize| answers[i].clone().unwrap_err().to_string();
    assert!(text(0).contains("another host's key"), "{}", text(0));
    assert!(
        text(1).contains("'somebody-else' does not match") && text(1).contains("ramlet seal"),
        "{}",
        text(1)
    );
    let _ = std::fs::remove_dir_all(dir);
}

/// On a host without a TPM2 (this one, and CI's), sealing to it fails with systemd's reason and
/// writes nothing; the booted-host tier seals to a real (software) TPM2.
#[test]
fn sealing_to_an_absent_tpm2_says_so_and_writes_nothing() {
    let Some(dir) = scratch("tpm") else { return };
    let has_tpm = Command::new("systemd-creds")
        .arg("has-tpm2")
        .stdout(Stdio::null())
        .status()
        .unwrap()
        .success();
    if has_tpm {
        eprintln!("skipped: this host has a TPM2");
        return;
    }
    let out = dir.join("sealed");
    let error = encrypt(b"tpm-value", "sealed", WithKey::Tpm2, &out).unwrap_err();
    let text = error.to_string();
    assert!(text.contains("TPM2"), "{text}");
    assert!(!text.contains("tpm-value"), "{text}");
    assert!(!out.exists());
    assert_eq!(
        std::fs::read_dir(&dir).unwrap().count(),
        0,
        "no temporary file left"
    );
    let _ = std::fs::remove_dir_all(dir);
}

/// A credential still at the version ramlet holds is not decrypted again: garbage at the held
/// version is `Unchanged` (no `systemd-creds` run, so no root needed), the same file asked
/// without a version is refused as undecryptable.
#[tokio::test]
async fn a_credential_at_the_held_version_is_not_decrypted_again() {
    let dir = std::env::temp_dir().join(format!("ramlet-creds-held-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("db"), b"not a credential").unwrap();
    let held = super::file_version(&std::fs::metadata(dir.join("db")).unwrap());
    let provider = CredsProvider::new(dir.clone());
    let answers = provider
        .fetch(&[ask("db", Some(held)), ask("db", None)], Limits::default())
        .await;
    assert_eq!(answers[0], Ok(Fetched::Unchanged));
    assert!(answers[1].is_err(), "{:?}", answers[1]);
    let _ = std::fs::remove_dir_all(dir);
}
