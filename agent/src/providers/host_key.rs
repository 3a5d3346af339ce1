//! The host's own secrets that stores log in or decrypt with (an `age` store's identity, an
//! `openbao` store's token, secret ID or client key): a plain file readable by its owner alone,
//! or a file sealed with `systemd-creds` under the name of the file. Read afresh at each use,
//! held in zeroized memory, and never quoted in an error.

use std::io::Read as _;
use std::os::unix::fs::PermissionsExt as _;

use ramlet_specs::model::HostKey;
use zeroize::Zeroizing;

use super::{ErrorKind, ProviderError};

/// The largest key file ramlet reads.
pub const MAX_KEY_BYTES: u64 = 64 * 1024;

/// Reads `key`, described as `what` in errors (`the age identity`, `the OpenBao token`); `store`
/// is the store kind that reads it, and `sealed` the field that would name it sealed.
///
/// # Errors
/// `permission-denied` when others may read a plain file; `too-large` past [`MAX_KEY_BYTES`];
/// `undecryptable` when a sealed file cannot be unsealed; `not-found` or `unavailable` when it
/// cannot be read.
pub fn read(key: &HostKey, what: &str, store: &str) -> Result<Zeroizing<Vec<u8>>, ProviderError> {
    let path = key.path();
    let shown = path.display();
    let (file, meta) = super::file::open_regular(path, &shown.to_string(), store)?;
    if meta.len() > MAX_KEY_BYTES {
        return Err(ProviderError::new(
            ErrorKind::TooLarge,
            format!("{what} {shown} is over {MAX_KEY_BYTES} bytes"),
        ));
    }
    match key {
        HostKey::File(_) => {
            let mode = meta.permissions().mode() & 0o7777;
            if mode & 0o077 != 0 {
                return Err(ProviderError::new(
                    ErrorKind::PermissionDenied,
                    format!(
                        "{what} {shown} may be read by others (mode {mode:04o}); make it 0400 or 0600 (`chmod 0400`), or seal it with systemd-creds and name it as a credential"
                    ),
                ));
            }
            let mut text = Zeroizing::new(Vec::new());
            file.take(MAX_KEY_BYTES)
                .read_to_end(&mut text)
                .map_err(|e| ProviderError::unavailable(format!("cannot read {shown}: {e}")))?;
            Ok(text)
        }
        HostKey::Credential(_) => {
            let name = path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            super::creds::decrypt(file, path, &name)
        }
    }
}
