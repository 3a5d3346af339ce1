//! The `file` store: one file per secret under a directory (`prod/db` is `<directory>/prod/db`).
//! Its version is the file's modification time and inode, so a rewrite is a rotation.

use std::io::Read as _;
use std::os::unix::fs::{MetadataExt as _, OpenOptionsExt as _};
use std::path::PathBuf;

use ramlet_specs::model::SecretVersion;

use super::{BoxFuture, Fetched, Limits, MAX_SECRET_BYTES, ProviderError, Request, SecretProvider};
use crate::secrets::{Secret, SecretBytes};

/// Reads secrets from a directory.
#[derive(Debug, Clone)]
pub struct FileProvider {
    directory: PathBuf,
}

impl FileProvider {
    /// A provider for `directory`.
    #[must_use]
    pub fn new(directory: PathBuf) -> Self {
        Self { directory }
    }

    fn read(&self, name: &str) -> Result<Secret, ProviderError> {
        // `name` is validated relative, without `..` (ramlet_specs::fspath).
        let path = self.directory.join(name);
        // Only a regular file is read: no link is followed at the last step (ELOOP), and a FIFO
        // or device opens without blocking and is refused by the type check below.
        let flags = nix::fcntl::OFlag::O_NOFOLLOW | nix::fcntl::OFlag::O_NONBLOCK;
        let file = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(flags.bits())
            .open(&path)
            .map_err(|e| match e.kind() {
                std::io::ErrorKind::NotFound => ProviderError::not_found(name),
                _ if e.raw_os_error() == Some(nix::libc::ELOOP) => ProviderError::new(
                    super::ErrorKind::NotFound,
                    format!(
                        "{} is a symbolic link; a file store reads only regular files",
                        path.display()
                    ),
                ),
                std::io::ErrorKind::PermissionDenied => ProviderError::new(
                    super::ErrorKind::PermissionDenied,
                    format!(
                        "cannot read {}: {e}; let ramlet's user read it",
                        path.display()
                    ),
                ),
                _ => ProviderError::unavailable(format!("cannot read {}: {e}", path.display())),
            })?;
        let meta = file
            .metadata()
            .map_err(|e| ProviderError::unavailable(e.to_string()))?;
        if !meta.is_file() {
            return Err(ProviderError::new(
                super::ErrorKind::NotFound,
                format!(
                    "{} is not a regular file; a file store reads only regular files",
                    path.display()
                ),
            ));
        }
        if meta.len() > MAX_SECRET_BYTES {
            return Err(ProviderError::too_large(name, meta.len()));
        }
        let mut bytes =
            zeroize::Zeroizing::new(Vec::with_capacity(usize::try_from(meta.len()).unwrap_or(0)));
        file.take(MAX_SECRET_BYTES + 1)
            .read_to_end(&mut bytes)
            .map_err(|e| {
                ProviderError::unavailable(format!("cannot read {}: {e}", path.display()))
            })?;
        Ok(Secret {
            bytes: SecretBytes::new(std::mem::take(&mut *bytes)),
            // Not the size: status files show versions, and a size says something about a
            // secret. A rewrite changes the mtime; a rename over it, the inode.
            version: format!(
                "mtime:{}.{:09}/inode:{}",
                meta.mtime(),
                meta.mtime_nsec(),
                meta.ino()
            ),
        })
    }
}

impl SecretProvider for FileProvider {
    fn fetch<'a>(
        &'a self,
        requests: &'a [Request],
        limits: Limits,
    ) -> BoxFuture<'a, Vec<Result<Fetched, ProviderError>>> {
        let calls = requests.iter().map(move |request| {
            let provider = self.clone();
            async move {
                if request.version != SecretVersion::Latest {
                    return Err(ProviderError::not_found(&format!(
                        "{}@{}",
                        request.name, request.version
                    )));
                }
                let name = request.name.clone();
                let secret = tokio::task::spawn_blocking(move || provider.read(&name))
                    .await
                    .map_err(|e| ProviderError::unavailable(e.to_string()))??;
                Ok(if request.known.as_ref() == Some(&secret.version) {
                    Fetched::Unchanged
                } else {
                    Fetched::New(secret)
                })
            }
        });
        Box::pin(super::each_bounded(limits, calls.collect()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn reads_secrets_and_reports_missing_ones() {
        let dir = std::env::temp_dir().join(format!("ramlet-file-store-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("prod")).unwrap();
        std::fs::write(dir.join("prod/db"), b"s3cret").unwrap();
        let provider = FileProvider::new(dir.clone());
        let ask = |name: &str, known: Option<String>| Request {
            name: name.into(),
            version: SecretVersion::Latest,
            known,
        };
        let mut got = provider
            .fetch(
                &[ask("prod/db", None), ask("nope", None)],
                Limits::default(),
            )
            .await;
        let Ok(Fetched::New(secret)) = got.remove(0) else {
            panic!("prod/db was not read")
        };
        assert_eq!(secret.bytes.expose(), b"s3cret");
        assert!(secret.version.starts_with("mtime:"));
        assert!(!secret.version.contains("s3cret"));
        assert_eq!(got[0], Err(ProviderError::not_found("nope")));
        let again = provider
            .fetch(&[ask("prod/db", Some(secret.version))], Limits::default())
            .await;
        assert_eq!(again, [Ok(Fetched::Unchanged)]);
        let _ = std::fs::remove_dir_all(dir);
    }

    #[tokio::test]
    async fn a_fifo_or_a_link_is_refused_at_once_never_waited_on() {
        let dir = std::env::temp_dir().join(format!("ramlet-file-fifo-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        nix::unistd::mkfifo(&dir.join("fifo"), nix::sys::stat::Mode::S_IRWXU).unwrap();
        std::fs::write(dir.join("real"), b"x").unwrap();
        std::os::unix::fs::symlink(dir.join("real"), dir.join("link")).unwrap();
        let provider = FileProvider::new(dir.clone());
        let ask = |name: &str| Request {
            name: name.into(),
            version: SecretVersion::Latest,
            known: None,
        };
        let answers = tokio::time::timeout(
            std::time::Duration::from_secs(5),
            provider.fetch(&[ask("fifo"), ask("link")], Limits::default()),
        )
        .await
        .expect("a FIFO must not block the store");
        for answer in answers {
            let error = answer.unwrap_err().to_string();
            assert!(error.contains("only regular files"), "{error}");
        }
        let _ = std::fs::remove_dir_all(dir);
    }
}
