//! The `creds` store: credentials sealed with `systemd-creds encrypt` (to the host's key, its
//! TPM2, or both), one file per secret; and the two calls to systemd's own tool that ramlet
//! makes, [`decrypt`] and [`encrypt`], which the `age` store (a sealed identity) and
//! `ramlet seal` use too.
//!
//! The format is systemd's, and so is the decryption: the file is handed to `systemd-creds
//! decrypt` as its standard input and the plain value read back from its standard output, a
//! pipe, into memory that is zeroized on drop. The value is never in a file, a temporary file,
//! an argument or an environment variable. (systemd 257's Varlink service
//! `io.systemd.Credentials` would save the process; Debian 12 has 252, so the pipe is the one
//! path.) systemd checks the name embedded in the credential against the one ramlet passes: the
//! last part of the secret's name (`prod/db` is sealed as `db`).
//!
//! What each systemd gives: 250+ decrypts host-key, TPM2 and host+TPM2 credentials, reading the
//! host key (`/var/lib/systemd/credential.secret`) and the TPM as root only, so a user-scope
//! ramlet gets "permission denied" before 256, whose per-user credentials this store does not
//! use yet.
//!
//! Its version is the file's, as with the `file` store: writing a new sealed file rotates, and
//! a file still at the version ramlet holds is not decrypted again.

use std::io::{Read as _, Write as _};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use zeroize::Zeroizing;

use super::file::{file_version, open_regular};
use super::{
    BoxFuture, ErrorKind, Fetched, Limits, MAX_SECRET_BYTES, ProviderError, Request, SecretProvider,
};
use crate::secrets::{Secret, SecretBytes};

/// systemd's tool, found on this `PATH` only: ramlet clears the rest of its environment, so
/// nothing (`SYSTEMD_CREDENTIAL_SECRET`, `SYSTEMD_CREDENTIAL_VALIDATE_NAME`) changes what it
/// decrypts with or whether it checks the name.
const TOOL: &str = "systemd-creds";
const TOOL_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// The largest sealed file read: the largest value, plus systemd's header, tag and base64.
const MAX_SEALED_BYTES: u64 = MAX_SECRET_BYTES * 2 + 64 * 1024;

/// Reads credentials sealed with `systemd-creds` from a directory.
#[derive(Debug, Clone)]
pub struct CredsProvider {
    directory: PathBuf,
}

impl CredsProvider {
    /// A provider for `directory`.
    #[must_use]
    pub fn new(directory: PathBuf) -> Self {
        Self { directory }
    }

    /// The secret `name`, unless its version is `known` (then nothing is decrypted).
    fn read(&self, name: &str, known: Option<&str>) -> Result<Fetched, ProviderError> {
        // `name` is validated relative, without `..` (ramlet_specs::fspath).
        let path = self.directory.join(name);
        let (file, meta) = open_regular(&path, name, "creds")?;
        let version = file_version(&meta);
        if known == Some(version.as_str()) {
            return Ok(Fetched::Unchanged);
        }
        if meta.len() > MAX_SEALED_BYTES {
            return Err(ProviderError::too_large(name, meta.len()));
        }
        let value = decrypt(file, &path, embedded_name(name))?;
        Ok(Fetched::New(Secret {
            bytes: SecretBytes::new(value.to_vec()),
            version,
            expires: None,
        }))
    }
}

/// The name a secret's credential carries: the last part of its name (`prod/db`: `db`).
#[must_use]
pub fn embedded_name(secret: &str) -> &str {
    secret.rsplit('/').next().unwrap_or(secret)
}

/// Decrypts the credential `sealed` (read from `path`, for messages) that must carry the name
/// `name`, with `systemd-creds decrypt`.
///
/// # Errors
/// `undecryptable` with systemd's own reason (another host's key, no TPM, a name that does not
/// match, a corrupt file); `misconfigured` when the tool is missing; `too-large` past
/// [`MAX_SECRET_BYTES`].
pub fn decrypt(
    sealed: std::fs::File,
    path: &Path,
    name: &str,
) -> Result<Zeroizing<Vec<u8>>, ProviderError> {
    let mut child = tool()
        .args([
            "decrypt",
            &format!("--name={name}"),
            "--newline=no",
            "-",
            "-",
        ])
        .stdin(Stdio::from(sealed))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(missing_tool)?;
    let mut value = Zeroizing::new(Vec::new());
    let read = child
        .stdout
        .take()
        .map(|out| out.take(MAX_SECRET_BYTES + 1).read_to_end(&mut value));
    let said = stderr_of(&mut child);
    let status = child
        .wait()
        .map_err(|e| ProviderError::unavailable(format!("{TOOL}: {e}")))?;
    if !status.success() {
        return Err(ProviderError::new(
            ErrorKind::Undecryptable,
            format!(
                "cannot decrypt {}: {TOOL} says: {}{}",
                path.display(),
                said,
                hint(&said)
            ),
        ));
    }
    if let Some(Err(e)) = read {
        return Err(ProviderError::unavailable(format!(
            "cannot read what {TOOL} decrypted from {}: {e}",
            path.display()
        )));
    }
    if value.len() as u64 > MAX_SECRET_BYTES {
        return Err(ProviderError::too_large(name, value.len() as u64));
    }
    Ok(value)
}

/// How a new value is sealed: systemd-creds' `--with-key=`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum WithKey {
    /// The host's key in `/var/lib/systemd/credential.secret`: any copy of that file decrypts.
    Host,
    /// The TPM2 chip: only this machine decrypts.
    Tpm2,
    /// Both: the host's key and this machine's TPM2.
    #[value(name = "host+tpm2")]
    HostTpm2,
    /// systemd's choice: host+tpm2 where a TPM2 is present, else the host's key.
    Auto,
}

impl WithKey {
    fn as_str(self) -> &'static str {
        match self {
            Self::Host => "host",
            Self::Tpm2 => "tpm2",
            Self::HostTpm2 => "host+tpm2",
            Self::Auto => "auto",
        }
    }
}

/// Seals `value` under `name` with `key` and writes it to `out`, mode 0600, replaced in one
/// rename. The value reaches the tool through a pipe; the sealed bytes come back through one.
///
/// # Errors
/// The tool's own reason when it refuses (no TPM2, no host key and no root), or the I/O error.
pub fn encrypt(value: &[u8], name: &str, key: WithKey, out: &Path) -> Result<(), ProviderError> {
    let mut child = tool()
        .args([
            "encrypt",
            &format!("--name={name}"),
            &format!("--with-key={}", key.as_str()),
            "-",
            "-",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(missing_tool)?;
    let input = child.stdin.take();
    let mut sealed = Vec::new();
    // The value is written from a second thread while this one reads the sealed bytes: a value
    // larger than a pipe's buffer would otherwise block both sides.
    let wrote = std::thread::scope(|scope| {
        let writer = scope.spawn(move || input.map(|mut input| input.write_all(value)));
        if let Some(out) = child.stdout.as_mut() {
            let _ = out.read_to_end(&mut sealed);
        }
        writer.join().ok().flatten()
    });
    let said = stderr_of(&mut child);
    let status = child
        .wait()
        .map_err(|e| ProviderError::unavailable(format!("{TOOL}: {e}")))?;
    if !status.success() || !matches!(wrote, Some(Ok(()))) || sealed.is_empty() {
        return Err(ProviderError::new(
            ErrorKind::Undecryptable,
            format!(
                "cannot seal {}: {TOOL} says: {said}{}",
                out.display(),
                hint(&said)
            ),
        ));
    }
    crate::statefile::replace(out, &sealed, 0o600, true)
        .map_err(|e| ProviderError::unavailable(format!("cannot write {}: {e}", out.display())))
}

fn tool() -> Command {
    let mut command = Command::new(TOOL);
    command
        .env_clear()
        .env("PATH", TOOL_PATH)
        .env("LANG", "C.UTF-8")
        .current_dir("/");
    command
}

#[allow(clippy::needless_pass_by_value)] // the shape map_err hands it
fn missing_tool(e: std::io::Error) -> ProviderError {
    ProviderError::new(
        ErrorKind::Misconfigured,
        format!("cannot run {TOOL} (systemd 250 or newer; Debian's package systemd): {e}"),
    )
}

/// What the tool wrote to standard error, its own lines only: without the warning every call
/// prints on a host whose `/var/lib/systemd` is not on encrypted media.
fn stderr_of(child: &mut std::process::Child) -> String {
    let mut said = String::new();
    if let Some(err) = child.stderr.take() {
        let _ = err.take(16 * 1024).read_to_string(&mut said);
    }
    let lines: Vec<&str> = said
        .lines()
        .filter(|l| !l.contains("not located on encrypted media"))
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    if lines.is_empty() {
        "nothing (it failed without a reason)".to_owned()
    } else {
        lines.join("; ")
    }
}

/// What to do about the tool's most common refusals.
fn hint(said: &str) -> &'static str {
    if said.contains("credential.secret") && said.contains("ermission denied") {
        " (the host's key is root's: before systemd 256 only a system-scope ramlet, run as root, decrypts host-key credentials)"
    } else if said.contains("incorrect key") {
        " (it was sealed with another host's key or TPM2: seal it again on this host with `ramlet seal`)"
    } else if said.contains("does not match") {
        " (seal it again with `ramlet seal`, which names it after the secret)"
    } else if said.to_ascii_lowercase().contains("tpm") {
        " (a TPM2-sealed credential needs this machine's TPM2: `systemd-creds has-tpm2`)"
    } else {
        ""
    }
}

/// What a `creds` store can do: one sealed value per file in `directory`, on this host.
#[must_use]
pub fn capabilities(directory: &std::path::Path) -> super::Capabilities {
    super::capabilities::folder_store(directory, false)
}

impl SecretProvider for CredsProvider {
    fn capabilities(&self) -> super::Capabilities {
        capabilities(&self.directory)
    }
    fn fetch<'a>(
        &'a self,
        requests: &'a [Request],
        limits: Limits,
    ) -> BoxFuture<'a, Vec<Result<Fetched, ProviderError>>> {
        let provider = self.clone();
        // One read per task: each new value is a `systemd-creds` process (a TPM2 one can
        // take a second), and each has the store's whole timeout.
        super::file::fetch_each(requests, limits, ("creds", 1), move |name, known| {
            provider.read(name, known)
        })
    }
}

#[cfg(test)]
mod tests;
