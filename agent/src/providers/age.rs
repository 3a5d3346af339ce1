//! The `age` store: secrets committed encrypted beside the specs, as age files (X25519
//! recipients, binary or armored): the secret `prod/db` is `<spec dir>/<directory>/prod/db.age`.
//! The host's identity is a file only ramlet's user can read, or better one sealed with
//! `systemd-creds` (then no plain key is on the disk either); either is read again at every
//! fetch, so replacing it needs no restart of ramlet.
//!
//! The spec directory is resolved to its real path first (git-sync publishes it through a link),
//! then the file is reached without following any link, as the `file` store does.
//!
//! A secret's version is an HMAC-SHA256 of its value, keyed by a hash of the identity: the same
//! value re-encrypted to a new set of recipients keeps its version (no restart), and the version
//! in status says nothing about the value to anyone without the identity. A new identity (even
//! with the same values) changes every version once.

use std::fmt::Write as _;
use std::io::Read as _;
use std::path::{Path, PathBuf};

use hmac::{Hmac, Mac as _};
use ramlet_specs::model::HostKey;
use sha2::{Digest as _, Sha256};
use zeroize::Zeroizing;

use super::file::open_regular;
use super::{
    BoxFuture, ErrorKind, Fetched, Limits, MAX_SECRET_BYTES, ProviderError, Request, SecretProvider,
};
use crate::secrets::{Secret, SecretBytes};

/// The largest age file read: the largest value, plus age's header, tags and armor.
const MAX_AGE_FILE_BYTES: u64 = MAX_SECRET_BYTES * 2 + 64 * 1024;

/// The largest age header read (the recipients' stanzas): a file for a whole fleet fits.
const MAX_HEADER_BYTES: usize = 64 * 1024;

/// The most recipients' stanzas an age file may carry: each costs a key agreement to try, and
/// 50,000 of them made one file time out its whole store (issue 33, finding 9).
pub const MAX_STANZAS: usize = 256;

/// Reads age files beside the specs with the host's identity.
#[derive(Debug, Clone)]
pub struct AgeProvider {
    spec_dir: PathBuf,
    directory: PathBuf,
    identity: HostKey,
}

/// The host's identities, and the key of the versions they give.
pub struct Identities {
    identities: Vec<Box<dyn age::Identity>>,
    version_key: Zeroizing<[u8; 32]>,
}

impl AgeProvider {
    /// A provider for `directory` (relative to `spec_dir`) opened with `identity`.
    #[must_use]
    pub fn new(spec_dir: PathBuf, directory: PathBuf, identity: HostKey) -> Self {
        Self {
            spec_dir,
            directory,
            identity,
        }
    }

    /// The file that holds the secret `name`.
    ///
    /// # Errors
    /// When the spec directory cannot be resolved.
    pub fn path_of(&self, name: &str) -> Result<PathBuf, ProviderError> {
        Ok(self.folder()?.join(format!("{name}.age")))
    }

    /// The store's folder, inside the spec directory's real path (resolved anew: git-sync
    /// swaps the link).
    fn folder(&self) -> Result<PathBuf, ProviderError> {
        let real = std::fs::canonicalize(&self.spec_dir).map_err(|e| {
            ProviderError::unavailable(format!(
                "cannot resolve the spec directory {}: {e}",
                self.spec_dir.display()
            ))
        })?;
        Ok(real.join(&self.directory))
    }

    fn read(&self, names: &[String]) -> Vec<Result<Secret, ProviderError>> {
        let (identities, folder) =
            match load_identities(&self.identity).and_then(|i| Ok((i, self.folder()?))) {
                Ok(both) => both,
                Err(e) => return names.iter().map(|_| Err(e.clone())).collect(),
            };
        names
            .iter()
            .map(|name| {
                let path = folder.join(format!("{name}.age"));
                let (file, meta) = open_regular(&path, name, "age")?;
                if meta.len() > MAX_AGE_FILE_BYTES {
                    return Err(ProviderError::too_large(name, meta.len()));
                }
                check_header(&file, &path)?;
                decrypt_file(file, &path, name, &identities)
            })
            .collect()
    }
}

/// Reads the host's identity: a plain file readable by its owner alone, or a credential sealed
/// with `systemd-creds` under the name of its file.
///
/// # Errors
/// `undecryptable` when it holds no identity or cannot be unsealed; `permission-denied` when
/// others may read the plain file.
pub fn load_identities(identity: &HostKey) -> Result<Identities, ProviderError> {
    let text = super::host_key::read(identity, "the age identity", "age")?;
    parse_identities(&text, identity.path())
}

/// Parses identity lines (`AGE-SECRET-KEY-1...`, `#` comments).
///
/// # Errors
/// `undecryptable` when the text holds no identity ramlet can use. The message never quotes the
/// text.
pub fn parse_identities(text: &[u8], path: &Path) -> Result<Identities, ProviderError> {
    let refuse = |why: &str| {
        ProviderError::new(
            ErrorKind::Undecryptable,
            format!(
                "{} holds no age identity ramlet can use ({why}); `age-keygen` makes one",
                path.display()
            ),
        )
    };
    let file = age::IdentityFile::from_buffer(text).map_err(|_| refuse("not an identity file"))?;
    let identities = file
        .into_identities()
        .map_err(|_| refuse("an identity of a kind ramlet does not take: X25519 only"))?;
    if identities.is_empty() {
        return Err(refuse("no identity in it"));
    }
    let mut version_key = Zeroizing::new([0_u8; 32]);
    let mut hash = Sha256::new();
    hash.update(b"ramlet age version key v1\0");
    hash.update(text);
    version_key.copy_from_slice(&hash.finalize());
    Ok(Identities {
        identities,
        version_key,
    })
}

/// Refuses an age file whose header is larger than [`MAX_HEADER_BYTES`] or names more than
/// [`MAX_STANZAS`] recipients, before age tries the identity on each of them: one hostile file
/// then costs a bounded read, and fails alone. Leaves the file at its start.
fn check_header(file: &std::fs::File, path: &Path) -> Result<(), ProviderError> {
    use std::io::{Seek as _, SeekFrom};
    let mut head = Vec::new();
    let armored = age::armor::ArmoredReader::new(std::io::BufReader::new(file));
    // A file whose armor does not decode is left to the decryptor, which says why.
    let read = armored
        .take(MAX_HEADER_BYTES as u64 + 1)
        .read_to_end(&mut head);
    let mut rewind = file;
    rewind
        .seek(SeekFrom::Start(0))
        .map_err(|e| ProviderError::unavailable(format!("cannot read {}: {e}", path.display())))?;
    if read.is_err() {
        return Ok(());
    }
    let end = head
        .windows(5)
        .position(|w| w == b"\n--- ")
        .unwrap_or(head.len());
    let stanzas = head[..end]
        .split(|&b| b == b'\n')
        .filter(|line| line.starts_with(b"-> "))
        .count();
    let refuse = |why: String| {
        Err(ProviderError::new(
            ErrorKind::TooLarge,
            format!("refused {}: {why}", path.display()),
        ))
    };
    if end > MAX_HEADER_BYTES {
        return refuse(format!(
            "its header is larger than {} KiB (ramlet reads age files for at most {MAX_STANZAS} recipients)",
            MAX_HEADER_BYTES / 1024
        ));
    }
    if stanzas > MAX_STANZAS {
        return refuse(format!(
            "it is encrypted to {stanzas} recipients; ramlet reads age files for at most {MAX_STANZAS}"
        ));
    }
    Ok(())
}

/// Decrypts the age file `file` (read from `path`) holding the secret `name`.
fn decrypt_file(
    file: std::fs::File,
    path: &Path,
    name: &str,
    identities: &Identities,
) -> Result<Secret, ProviderError> {
    let undecryptable = |why: String| {
        ProviderError::new(
            ErrorKind::Undecryptable,
            format!("cannot decrypt {}: {why}", path.display()),
        )
    };
    let input = std::io::BufReader::new(file.take(MAX_AGE_FILE_BYTES));
    let decryptor = age::Decryptor::new_buffered(age::armor::ArmoredReader::new(input))
        .map_err(|e| undecryptable(describe(&e)))?;
    let reader = decryptor
        .decrypt(identities.identities.iter().map(AsRef::as_ref))
        .map_err(|e| undecryptable(describe(&e)))?;
    let mut value = Zeroizing::new(Vec::new());
    reader
        .take(MAX_SECRET_BYTES + 1)
        .read_to_end(&mut value)
        .map_err(|e| undecryptable(format!("{e} (a truncated or altered file)")))?;
    if value.len() as u64 > MAX_SECRET_BYTES {
        return Err(ProviderError::too_large(name, value.len() as u64));
    }
    let version = version_of(&value, identities);
    Ok(Secret {
        bytes: SecretBytes::new(value.to_vec()),
        version,
        expires: None,
    })
}

/// The version of `value`: `hmac:` and 32 hex digits of its HMAC under the identity's key.
fn version_of(value: &[u8], identities: &Identities) -> String {
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(&*identities.version_key) else {
        unreachable!("HMAC takes a key of any length")
    };
    mac.update(value);
    let digest = mac.finalize().into_bytes();
    let hex = digest[..16]
        .iter()
        .fold(String::with_capacity(32), |mut hex, b| {
            let _ = write!(hex, "{b:02x}");
            hex
        });
    format!("hmac:{hex}")
}

/// Encrypts `value` to `recipients` (`age1...`), armored or binary: what `ramlet seal` commits.
///
/// # Errors
/// `misconfigured` when a recipient is not an X25519 public key or there is none.
pub fn encrypt(value: &[u8], recipients: &[String], armor: bool) -> Result<Vec<u8>, ProviderError> {
    use std::io::Write as _;
    let parsed = recipients
        .iter()
        .map(|r| {
            r.parse::<age::x25519::Recipient>().map_err(|why| {
                ProviderError::new(
                    ErrorKind::Misconfigured,
                    format!("{r:?} is not an age X25519 recipient: {why}"),
                )
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    let encryptor =
        age::Encryptor::with_recipients(parsed.iter().map(|r| r as &dyn age::Recipient))
            .map_err(|e| ProviderError::new(ErrorKind::Misconfigured, e.to_string()))?;
    let format = if armor {
        age::armor::Format::AsciiArmor
    } else {
        age::armor::Format::Binary
    };
    let io = |e: std::io::Error| ProviderError::unavailable(format!("cannot encrypt: {e}"));
    let mut sealed = Vec::new();
    let armored = age::armor::ArmoredWriter::wrap_output(&mut sealed, format).map_err(io)?;
    let mut writer = encryptor.wrap_output(armored).map_err(io)?;
    writer.write_all(value).map_err(io)?;
    writer
        .finish()
        .and_then(age::armor::ArmoredWriter::finish)
        .map_err(io)?;
    Ok(sealed)
}

/// age's reason, with what it means for the operator.
fn describe(error: &age::DecryptError) -> String {
    match error {
        age::DecryptError::NoMatchingKeys => {
            "it was not encrypted to this host's identity (re-encrypt it to the host's recipient, `age-keygen -y` of its identity)".to_owned()
        }
        age::DecryptError::InvalidHeader | age::DecryptError::UnknownFormat => {
            "not an age file, or its header is damaged".to_owned()
        }
        age::DecryptError::InvalidMac | age::DecryptError::DecryptionFailed => {
            "it is damaged or was altered".to_owned()
        }
        other => other.to_string(),
    }
}

/// What an `age` store can do: one sealed value per file beside the specs (whose folder the
/// agent watches already), on this host.
pub const CAPABILITIES: super::Capabilities = super::Capabilities {
    versions: super::Versions::One,
    folder: None,
    local: true,
    plain_at_rest: false,
    events: false,
};

impl SecretProvider for AgeProvider {
    fn capabilities(&self) -> super::Capabilities {
        CAPABILITIES
    }
    fn fetch<'a>(
        &'a self,
        requests: &'a [Request],
        limits: Limits,
    ) -> BoxFuture<'a, Vec<Result<Fetched, ProviderError>>> {
        // One identity read for the whole batch: a sealed identity costs a systemd-creds call.
        let provider = self.clone();
        Box::pin(async move {
            let mut answers = Vec::with_capacity(requests.len());
            let asked: Vec<String> = requests
                .iter()
                .filter(|r| super::file::pinned(r, "age").is_none())
                .map(|r| r.name.clone())
                .collect();
            let read = super::bounded(limits, async move {
                tokio::task::spawn_blocking(move || provider.read(&asked))
                    .await
                    .map_err(|e| ProviderError::unavailable(e.to_string()))
            })
            .await;
            let mut read = match read {
                Ok(read) => read.into_iter(),
                Err(e) => {
                    return requests.iter().map(|_| Err(e.clone())).collect();
                }
            };
            for request in requests {
                if let Some(error) = super::file::pinned(request, "age") {
                    answers.push(Err(error));
                    continue;
                }
                answers.push(match read.next() {
                    Some(Ok(secret)) if request.known.as_ref() == Some(&secret.version) => {
                        Ok(Fetched::Unchanged)
                    }
                    Some(Ok(secret)) => Ok(Fetched::New(secret)),
                    Some(Err(e)) => Err(e),
                    None => Err(ProviderError::unavailable("no answer")),
                });
            }
            answers
        })
    }
}

#[cfg(test)]
mod tests;
