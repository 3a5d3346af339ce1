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
            make_parent(&out, 0o700)?;
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
            make_parent(&out, 0o755)?;
            crate::statefile::replace(&out, &sealed, 0o644, true)
                .map_err(|e| Failure::Seal(format!("cannot write {}: {e}", out.display())))?;
            Ok(out)
        }
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
fn make_parent(path: &Path, mode: u32) -> Result<(), Failure> {
    use std::os::unix::fs::DirBuilderExt as _;
    let Some(parent) = path.parent() else {
        return Ok(());
    };
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(mode)
        .create(parent)
        .map_err(|e| Failure::Seal(format!("cannot create {}: {e}", parent.display())))
}
