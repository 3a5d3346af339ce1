//! The `file` store: one file per secret under a directory (`prod/db` is `<directory>/prod/db`).
//! Its version is the file's modification time and size, so a rewrite is a rotation.

use std::io::Read as _;
use std::os::unix::fs::MetadataExt as _;
use std::path::PathBuf;

use ramlet_specs::model::SecretVersion;

use super::{BoxFuture, ProviderError, SecretProvider};
use crate::secrets::{Secret, SecretBytes};

/// The largest secret the file store reads: the largest volume.
pub const MAX_SECRET_BYTES: u64 = ramlet_specs::MAX_VOLUME_BYTES;

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
        let file = std::fs::File::open(&path).map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => ProviderError::NotFound {
                name: name.to_owned(),
            },
            _ => ProviderError::Unavailable(format!("cannot read {}: {e}", path.display())),
        })?;
        let meta = file
            .metadata()
            .map_err(|e| ProviderError::Unavailable(e.to_string()))?;
        if !meta.is_file() {
            return Err(ProviderError::NotFound {
                name: name.to_owned(),
            });
        }
        if meta.len() > MAX_SECRET_BYTES {
            return Err(ProviderError::TooLarge {
                name: name.to_owned(),
                size: meta.len(),
                limit: MAX_SECRET_BYTES,
            });
        }
        let mut bytes =
            zeroize::Zeroizing::new(Vec::with_capacity(usize::try_from(meta.len()).unwrap_or(0)));
        file.take(MAX_SECRET_BYTES + 1)
            .read_to_end(&mut bytes)
            .map_err(|e| {
                ProviderError::Unavailable(format!("cannot read {}: {e}", path.display()))
            })?;
        Ok(Secret {
            bytes: SecretBytes::new(std::mem::take(&mut *bytes)),
            version: format!(
                "mtime:{}.{:09}/size:{}",
                meta.mtime(),
                meta.mtime_nsec(),
                meta.len()
            ),
        })
    }
}

impl SecretProvider for FileProvider {
    fn fetch<'a>(
        &'a self,
        name: &'a str,
        version: &'a SecretVersion,
    ) -> BoxFuture<'a, Result<Secret, ProviderError>> {
        Box::pin(async move {
            if let SecretVersion::Pinned(v) = version {
                return Err(ProviderError::NotFound {
                    name: format!("{name}@{v}"),
                });
            }
            let provider = self.clone();
            let name = name.to_owned();
            tokio::task::spawn_blocking(move || provider.read(&name))
                .await
                .map_err(|e| ProviderError::Unavailable(e.to_string()))?
        })
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
        let secret = provider
            .fetch("prod/db", &SecretVersion::Latest)
            .await
            .unwrap();
        assert_eq!(secret.bytes.expose(), b"s3cret");
        assert!(secret.version.starts_with("mtime:"));
        assert!(!secret.version.contains("s3cret"));
        let missing = provider
            .fetch("nope", &SecretVersion::Latest)
            .await
            .unwrap_err();
        assert_eq!(
            missing,
            ProviderError::NotFound {
                name: "nope".into()
            }
        );
        let _ = std::fs::remove_dir_all(dir);
    }
}
