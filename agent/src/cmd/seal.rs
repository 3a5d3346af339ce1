//! `ramlet seal STORE SECRET`: puts a new value of a secret, read from standard input, into a
//! `creds` store (sealed with `systemd-creds`, on this host) or an `age` store (encrypted to the
//! store's recipients, beside the specs, for a commit). The one step of a rotation by hand: the
//! running agent sees the new file as a new version.
//!
//! The value is read from standard input only, never a flag (a flag is in `/proc/*/cmdline` and
//! the shell's history), into memory that is zeroized on drop; it reaches `systemd-creds`
//! through a pipe. Its bytes are taken as they are: `printf %s` leaves no newline, `echo` adds one.

use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use ramlet_specs::model::{Provider, SecretStore};
use zeroize::Zeroizing;

use crate::providers::MAX_SECRET_BYTES;
use crate::providers::creds::WithKey;

/// What `ramlet seal` is asked to do.
#[derive(Debug)]
pub struct Request<'a> {
    /// The spec directory that declares the store.
    pub spec_dir: &'a Path,
    /// The host's policy (from `--config`).
    pub policy: &'a ramlet_specs::Policy,
    /// The store's name.
    pub store: &'a str,
    /// The secret's name, as specs name it.
    pub secret: &'a str,
    /// How a `creds` store seals it.
    pub with_key: WithKey,
    /// Whether an `age` file is armored.
    pub armor: bool,
}

/// Runs `ramlet seal`: 0 when sealed, 1 when sealing failed, 64 for a store or name that cannot
/// take it.
#[must_use]
pub fn run(request: &Request<'_>, input: &mut dyn std::io::Read) -> ExitCode {
    match seal(request, input) {
        Ok(path) => {
            eprintln!(
                "ramlet: sealed {} into store {} ({})",
                request.secret,
                request.store,
                path.display()
            );
            ExitCode::SUCCESS
        }
        Err(Failure::Usage(why)) => {
            eprintln!("ramlet: {why}");
            ExitCode::from(crate::EX_USAGE)
        }
        Err(Failure::Seal(why)) => {
            eprintln!("ramlet: {why}");
            ExitCode::FAILURE
        }
    }
}

#[derive(Debug)]
enum Failure {
    Usage(String),
    Seal(String),
}

fn seal(request: &Request<'_>, input: &mut dyn std::io::Read) -> Result<PathBuf, Failure> {
    let store = find_store(request)?;
    ramlet_specs::check_secret_name(&store.provider, request.secret)
        .map_err(|why| Failure::Usage(format!("secret name {why}")))?;
    let value = read_value(input)?;
    let seal_error = |e: crate::providers::ProviderError| Failure::Seal(e.to_string());
    match &store.provider {
        Provider::Creds { directory } => {
            let out = directory.join(request.secret);
            make_parent(&out, 0o700, directory)?;
            let name = crate::providers::creds::embedded_name(request.secret);
            crate::providers::creds::encrypt(&value, name, request.with_key, &out)
                .map_err(seal_error)?;
            Ok(out)
        }
        Provider::Age {
            directory,
            identity,
            recipients,
        } => {
            if recipients.is_empty() {
                return Err(Failure::Usage(format!(
                    "store {} lists no recipients: add the host's public key (`age-keygen -y` of its identity) to spec.age.recipients",
                    request.store
                )));
            }
            let provider = crate::providers::age::AgeProvider::new(
                request.spec_dir.to_owned(),
                directory.clone(),
                identity.clone(),
            );
            let out = provider.path_of(request.secret).map_err(seal_error)?;
            let sealed = crate::providers::age::encrypt(&value, recipients, request.armor)
                .map_err(seal_error)?;
            make_parent(&out, 0o755, request.spec_dir)?;
            crate::statefile::replace(&out, &sealed, 0o644, true)
                .map_err(|e| Failure::Seal(format!("cannot write {}: {e}", out.display())))?;
            Ok(out)
        }
        Provider::Openbao(openbao) if openbao.pki.is_some() => Err(Failure::Usage(format!(
            "store {} is an openbao PKI store: its certificates are issued by the server, nothing is sealed into it",
            request.store
        ))),
        Provider::Openbao(openbao) => Err(Failure::Usage(format!(
            "store {} is an openbao store: write the secret into the server itself, as `bao kv put -mount={} {} <key>=<value>` (from a file: `<key>=@file`); ramlet picks the new version up at its next check",
            request.store, openbao.mount, request.secret
        ))),
        other => Err(Failure::Usage(format!(
            "store {} is a {} store; ramlet seals into creds and age stores only",
            request.store,
            other.kind()
        ))),
    }
}

/// The store, valid, from the spec directory.
fn find_store(request: &Request<'_>) -> Result<SecretStore, Failure> {
    let catalog = ramlet_specs::load_dir_with(request.spec_dir, request.policy)
        .map_err(|e| Failure::Usage(e.to_string()))?;
    if let Some(store) = catalog
        .stores
        .values()
        .find(|s| s.name.as_str() == request.store)
    {
        return Ok(store.clone());
    }
    let errors: Vec<String> = catalog
        .errors
        .iter()
        .filter(|e| e.message.contains(request.store) || e.field.starts_with("spec."))
        .map(ToString::to_string)
        .collect();
    let known: Vec<&str> = catalog
        .stores
        .keys()
        .map(ramlet_specs::model::Name::as_str)
        .collect();
    Err(Failure::Usage(format!(
        "no valid store {} in {} (valid stores: {}){}{}",
        request.store,
        request.spec_dir.display(),
        if known.is_empty() {
            "none".to_owned()
        } else {
            known.join(", ")
        },
        if errors.is_empty() { "" } else { "; errors:\n" },
        errors.join("\n")
    )))
}

/// The value from standard input, at most [`MAX_SECRET_BYTES`].
fn read_value(input: &mut dyn std::io::Read) -> Result<Zeroizing<Vec<u8>>, Failure> {
    let mut value = Zeroizing::new(Vec::new());
    input
        .take(MAX_SECRET_BYTES + 1)
        .read_to_end(&mut value)
        .map_err(|e| Failure::Seal(format!("cannot read the value from standard input: {e}")))?;
    if value.is_empty() {
        return Err(Failure::Usage(
            "standard input was empty: pipe the value in, such as `printf %s \"$value\" | ramlet seal STORE SECRET`".to_owned(),
        ));
    }
    if value.len() as u64 > MAX_SECRET_BYTES {
        return Err(Failure::Usage(format!(
            "the value is over {MAX_SECRET_BYTES} bytes, the largest a volume holds"
        )));
    }
    Ok(value)
}

/// Creates the folders above `path` that are missing, with `mode`.
fn make_parent(path: &Path, mode: u32, within: &Path) -> Result<(), Failure> {
    use std::os::unix::fs::DirBuilderExt as _;
    let fail = |why: String| Failure::Seal(why);
    // The store's own folder (the host policy's to allow) is made as before when missing.
    if !within.exists() {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(mode)
            .create(within)
            .map_err(|e| fail(format!("cannot create {}: {e}", within.display())))?;
    }
    let root = std::fs::canonicalize(within)
        .map_err(|e| fail(format!("cannot resolve {}: {e}", within.display())))?;
    let below = path
        .strip_prefix(within)
        .or_else(|_| path.strip_prefix(&root))
        .map_err(|_| {
            fail(format!(
                "{} is not inside {}",
                path.display(),
                within.display()
            ))
        })?;
    // Walk down from the real root one component at a time, following no link: a link in the
    // spec directory (anyone who merges a spec can add one) must not carry the write elsewhere.
    let mut at = root;
    let components: Vec<_> = below.components().collect();
    for (i, component) in components.iter().enumerate() {
        let std::path::Component::Normal(part) = component else {
            return Err(fail(format!("{} is not a plain path", path.display())));
        };
        at.push(part);
        let last = i + 1 == components.len();
        match std::fs::symlink_metadata(&at) {
            Ok(meta) if meta.file_type().is_symlink() => {
                return Err(fail(format!(
                    "{} is a symbolic link; ramlet seal writes only to real folders and files inside {}, and wrote nothing",
                    at.display(),
                    within.display()
                )));
            }
            Ok(meta) if !last && !meta.is_dir() => {
                return Err(fail(format!("{} is not a folder", at.display())));
            }
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && !last => {
                std::fs::DirBuilder::new()
                    .mode(mode)
                    .create(&at)
                    .map_err(|e| fail(format!("cannot create {}: {e}", at.display())))?;
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(fail(format!("cannot read {}: {e}", at.display()))),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Issue 33, finding 12: `ramlet seal` created the file's folders with `create_dir_all` and
    /// wrote through them, so a link in the spec directory (`secrets -> /etc`) carried the
    /// write outside it.
    #[test]
    fn regression_33_seal_follows_no_link_out_of_the_spec_directory() {
        let base = std::env::temp_dir().join(format!("ramlet-seal-link-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&base);
        let (specs, outside) = (base.join("specs"), base.join("outside"));
        std::fs::create_dir_all(&specs).unwrap();
        std::fs::create_dir_all(&outside).unwrap();
        std::os::unix::fs::symlink(&outside, specs.join("secrets")).unwrap();

        let Err(Failure::Seal(why)) = make_parent(&specs.join("secrets/app/db.age"), 0o755, &specs)
        else {
            panic!("a link in the spec directory was followed");
        };
        assert!(why.contains("is a symbolic link"), "{why}");
        assert!(!outside.join("app").exists(), "nothing was created outside");

        // A link as the file itself is refused as well; real folders are made as before.
        std::os::unix::fs::symlink(outside.join("x"), specs.join("db.age")).unwrap();
        assert!(make_parent(&specs.join("db.age"), 0o755, &specs).is_err());
        make_parent(&specs.join("sealed/app/db.age"), 0o755, &specs).unwrap();
        assert!(specs.join("sealed/app").is_dir());
        // A store folder that does not exist yet is made, as before.
        let fresh = base.join("creds");
        make_parent(&fresh.join("db"), 0o700, &fresh).unwrap();
        assert!(fresh.is_dir());
        std::fs::remove_dir_all(&base).unwrap();
    }
}
