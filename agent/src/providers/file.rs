//! The `file` store: one file per secret under a directory (`prod/db` is `<directory>/prod/db`).
//! Its version is the file's modification time and size, so a rewrite is a rotation.

use std::io::Read as _;
use std::os::unix::fs::MetadataExt as _;
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
        let file = std::fs::File::open(&path).map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => ProviderError::not_found(name),
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
            return Err(ProviderError::not_found(name));
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
}
