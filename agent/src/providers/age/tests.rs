//! The `age` store against Debian's `age` CLI (not ours): files it encrypted (binary and armored)
//! are read, what ramlet encrypts it decrypts, a re-encryption to new recipients is not a new
//! version while a new value is, and a wrong identity, a damaged file or an identity others may
//! read is a clear error that never shows the value. `scripts/install-build-deps` installs the
//! CLI.

use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use ramlet_specs::model::SecretVersion;

use super::*;

struct Repo {
    base: PathBuf,
    /// The spec directory, reached through a link as git-sync publishes it.
    spec_link: PathBuf,
    identity: PathBuf,
    recipient: String,
}

fn age_cli(args: &[&str], input: &[u8]) -> Vec<u8> {
    use std::io::Write as _;
    let mut child = Command::new(args[0])
        .args(&args[1..])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| {
            panic!(
                "{}: {e}; scripts/install-build-deps installs Debian's age",
                args[0]
            )
        });
    child.stdin.take().unwrap().write_all(input).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

fn keygen(path: &Path) -> String {
    let _ = std::fs::remove_file(path);
    let out = Command::new("age-keygen")
        .arg("-o")
        .arg(path)
        .output()
        .expect("age-keygen (Debian's age)");
    assert!(out.status.success());
    let said = String::from_utf8_lossy(&out.stderr);
    said.split_whitespace()
        .find(|w| w.starts_with("age1"))
        .unwrap()
        .to_owned()
}

impl Repo {
    fn new(name: &str) -> Self {
        let base = std::env::temp_dir().join(format!("ramlet-age-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&base);
        std::fs::create_dir_all(base.join("checkout/secrets/prod")).unwrap();
        let spec_link = base.join("specs");
        std::os::unix::fs::symlink(base.join("checkout"), &spec_link).unwrap();
        let identity = base.join("host.key");
        let recipient = keygen(&identity);
        std::fs::set_permissions(&identity, std::fs::Permissions::from_mode(0o600)).unwrap();
        Self {
            base,
            spec_link,
            identity,
            recipient,
        }
    }

    fn store(&self) -> AgeProvider {
        AgeProvider::new(
            self.spec_link.clone(),
            PathBuf::from("secrets"),
            HostKey::File(self.identity.clone()),
        )
    }

    fn file(&self, name: &str) -> PathBuf {
        self.base
            .join("checkout/secrets")
            .join(format!("{name}.age"))
    }

    /// Encrypts `value` for `name` with the age CLI.
    fn commit(&self, name: &str, value: &str, recipients: &[&str], armor: bool) {
        let mut args = vec!["age", "-e"];
        if armor {
            args.push("-a");
        }
        for r in recipients {
            args.extend(["-r", r]);
        }
        std::fs::write(self.file(name), age_cli(&args, value.as_bytes())).unwrap();
    }
}

impl Drop for Repo {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.base);
    }
}

fn ask(name: &str, known: Option<String>) -> Request {
    Request {
        name: name.into(),
        version: SecretVersion::Latest,
        known,
    }
}

#[tokio::test]
async fn reads_what_the_age_cli_encrypted_binary_or_armored() {
    let repo = Repo::new("read");
    repo.commit("prod/db", "binary-value", &[&repo.recipient], false);
    repo.commit("prod/api", "armored-value", &[&repo.recipient], true);
    let got = repo
        .store()
        .fetch(
            &[ask("prod/db", None), ask("prod/api", None)],
            Limits::default(),
        )
        .await;
    let [Ok(Fetched::New(db)), Ok(Fetched::New(api))] = got.as_slice() else {
        panic!("{got:?}")
    };
    assert_eq!(db.bytes.expose(), b"binary-value");
    assert_eq!(api.bytes.expose(), b"armored-value");
    assert!(
        db.version.starts_with("hmac:") && db.version.len() == 37,
        "{}",
        db.version
    );
}

#[test]
fn the_age_cli_decrypts_what_ramlet_encrypts() {
    let repo = Repo::new("write");
    for armor in [false, true] {
        let sealed = encrypt(b"from-ramlet", std::slice::from_ref(&repo.recipient), armor).unwrap();
        assert_eq!(
            sealed.starts_with(b"-----BEGIN AGE ENCRYPTED FILE-----"),
            armor
        );
        let identity = repo.identity.to_str().unwrap();
        assert_eq!(
            age_cli(&["age", "-d", "-i", identity], &sealed),
            b"from-ramlet"
        );
    }
}

#[tokio::test]
async fn a_reencryption_to_new_recipients_is_not_a_rotation_and_a_new_value_is() {
    let repo = Repo::new("versions");
    repo.commit("prod/db", "same-value", &[&repo.recipient], false);
    let store = repo.store();
    let got = store
        .fetch(&[ask("prod/db", None)], Limits::default())
        .await;
    let [Ok(Fetched::New(first))] = got.as_slice() else {
        panic!("{got:?}")
    };
    // A second host joins: the file is encrypted again to both, its bytes all new.
    let other = keygen(&repo.base.join("other.key"));
    let before = std::fs::read(repo.file("prod/db")).unwrap();
    repo.commit("prod/db", "same-value", &[&repo.recipient, &other], true);
    assert_ne!(before, std::fs::read(repo.file("prod/db")).unwrap());
    let again = store
        .fetch(
            &[ask("prod/db", Some(first.version.clone()))],
            Limits::default(),
        )
        .await;
    assert_eq!(again, [Ok(Fetched::Unchanged)]);
    repo.commit("prod/db", "new-value", &[&repo.recipient], false);
    let got = store
        .fetch(
            &[ask("prod/db", Some(first.version.clone()))],
            Limits::default(),
        )
        .await;
    let [Ok(Fetched::New(second))] = got.as_slice() else {
        panic!("{got:?}")
    };
    assert_eq!(second.bytes.expose(), b"new-value");
    assert_ne!(second.version, first.version);
}

#[tokio::test]
async fn what_this_host_cannot_open_is_a_clear_error_that_never_shows_the_value() {
    let repo = Repo::new("bad");
    let stranger = keygen(&repo.base.join("stranger.key"));
    repo.commit("foreign", "foreign-value", &[&stranger], false);
    repo.commit("whole", "truncated-value", &[&repo.recipient], false);
    let whole = std::fs::read(repo.file("whole")).unwrap();
    std::fs::write(repo.file("truncated"), &whole[..whole.len() - 20]).unwrap();
    let mut flipped = whole.clone();
    let last = flipped.len() - 1;
    flipped[last] ^= 1;
    std::fs::write(repo.file("altered"), &flipped).unwrap();
    std::fs::write(repo.file("plain"), b"plain-value").unwrap();
    // A link inside the folder is refused, even to a good file.
    std::os::unix::fs::symlink(repo.file("whole"), repo.file("linked")).unwrap();

    let names = [
        "foreign",
        "truncated",
        "altered",
        "plain",
        "linked",
        "missing",
    ];
    let asked: Vec<Request> = names.iter().map(|n| ask(n, None)).collect();
    let answers = repo.store().fetch(&asked, Limits::default()).await;
    for (name, answer) in names.iter().zip(&answers) {
        let error = answer.clone().expect_err(name);
        let text = error.to_string();
        assert!(!text.contains("-value"), "{name}: the value leaked: {text}");
        let kind = match *name {
            "linked" | "missing" => ErrorKind::NotFound,
            _ => ErrorKind::Undecryptable,
        };
        assert_eq!(error.kind(), kind, "{name}: {text}");
    }
    let text = |i: usize| answers[i].clone().unwrap_err().to_string();
    assert!(
        text(0).contains("not encrypted to this host's identity"),
        "{}",
        text(0)
    );
    assert!(text(4).contains("follows no link"), "{}", text(4));

    // An identity others may read is refused, for every secret, before any is decrypted.
    std::fs::set_permissions(&repo.identity, std::fs::Permissions::from_mode(0o644)).unwrap();
    let answers = repo
        .store()
        .fetch(&[ask("whole", None)], Limits::default())
        .await;
    let error = answers[0].clone().unwrap_err();
    assert_eq!(error.kind(), ErrorKind::PermissionDenied);
    assert!(error.to_string().contains("chmod 0400"), "{error}");
    // Not an identity at all: said without quoting the file.
    std::fs::write(&repo.identity, b"password=hunter2\n").unwrap();
    std::fs::set_permissions(&repo.identity, std::fs::Permissions::from_mode(0o600)).unwrap();
    let answers = repo
        .store()
        .fetch(&[ask("whole", None)], Limits::default())
        .await;
    let text = answers[0].clone().unwrap_err().to_string();
    assert!(text.contains("holds no age identity"), "{text}");
    assert!(!text.contains("hunter2"), "{text}");
}

/// The identity itself sealed with systemd-creds: no plain key on the disk at all (root: the
/// host key is root's).
#[tokio::test]
async fn an_identity_sealed_with_systemd_creds_opens_the_store() {
    if !nix::unistd::Uid::effective().is_root() {
        eprintln!(
            "skipped: the host key of systemd-creds is root's (scripts/test runs this as root)"
        );
        return;
    }
    let repo = Repo::new("sealed-identity");
    repo.commit("prod/db", "sealed-id-value", &[&repo.recipient], false);
    let plain = std::fs::read(&repo.identity).unwrap();
    let sealed = repo.base.join("age-identity");
    crate::providers::creds::encrypt(
        &plain,
        "age-identity",
        crate::providers::creds::WithKey::Host,
        &sealed,
    )
    .unwrap();
    std::fs::remove_file(&repo.identity).unwrap();
    let store = AgeProvider::new(
        repo.spec_link.clone(),
        PathBuf::from("secrets"),
        HostKey::Credential(sealed),
    );
    let got = store
        .fetch(&[ask("prod/db", None)], Limits::default())
        .await;
    let [Ok(Fetched::New(db))] = got.as_slice() else {
        panic!("{got:?}")
    };
    assert_eq!(db.bytes.expose(), b"sealed-id-value");
}

/// Issue 33, finding 9: a 4.9 MB age file with 50,000 recipients' stanzas beside a valid one made
/// age try the host's identity on every stanza; the whole store timed out. A file for more than
/// `MAX_STANZAS` recipients is refused before any is tried, and the valid file beside it reads.
#[tokio::test]
async fn regression_33_an_age_file_for_thousands_of_recipients_fails_alone() {
    let repo = Repo::new("stanzas");
    repo.commit("prod/db", "good-value", &[&repo.recipient], false);
    let many: Vec<String> = (0..=MAX_STANZAS)
        .map(|_| age::x25519::Identity::generate().to_public().to_string())
        .chain([repo.recipient.clone()])
        .collect();
    for armor in [false, true] {
        std::fs::write(repo.file("prod/many"), encrypt(b"x", &many, armor).unwrap()).unwrap();
        let got = repo
            .store()
            .fetch(
                &[ask("prod/many", None), ask("prod/db", None)],
                Limits::default(),
            )
            .await;
        let [Err(error), Ok(Fetched::New(db))] = got.as_slice() else {
            panic!("{got:?}")
        };
        assert_eq!(error.kind(), ErrorKind::TooLarge);
        assert!(
            error.to_string().contains(&format!(
                "recipients; ramlet reads age files for at most {MAX_STANZAS}"
            )),
            "{error}"
        );
        assert_eq!(db.bytes.expose(), b"good-value");
    }
}
