//! The `file` store: one file per secret under a directory (`prod/db` is `<directory>/prod/db`).
//! Its version is the file's modification time and inode, so a rewrite is a rotation, and a
//! file whose version is the one ramlet holds is not read again (a refresh of an idle store is
//! an open and a `stat` per secret).
//!
//! The path is walked one component at a time from `/`, each folder opened with `O_NOFOLLOW`:
//! a symbolic link anywhere on it (a linked folder inside the store, or the store's own folder)
//! is refused, so a store reads only what lies beneath its directory (issue 19).

use std::io::Read as _;
use std::os::fd::OwnedFd;
use std::os::unix::fs::MetadataExt as _;
use std::path::{Component, Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::{OFlag, openat};
use nix::sys::stat::Mode;

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

    /// The secret `name`, unless its version is `known`.
    fn read(&self, name: &str, known: Option<&str>) -> Result<Fetched, ProviderError> {
        // `name` is validated relative, without `..` (ramlet_specs::fspath).
        let path = self.directory.join(name);
        let (file, meta) = open_regular(&path, name, "file")?;
        let version = file_version(&meta);
        if known == Some(version.as_str()) {
            return Ok(Fetched::Unchanged);
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
        Ok(Fetched::New(Secret {
            bytes: SecretBytes::new(std::mem::take(&mut *bytes)),
            version,
            expires: None,
        }))
    }
}

/// Opens the regular file at `path` for the secret `name` of a `kind` store (`file`, `creds`,
/// `age`), refusing links on the way and anything but a regular file, with an error that says
/// which.
pub(super) fn open_regular(
    path: &Path,
    name: &str,
    kind: &str,
) -> Result<(std::fs::File, std::fs::Metadata), ProviderError> {
    let file = std::fs::File::from(open_beneath(path).map_err(|e| match e {
        Walk::Link(at) => ProviderError::new(
            super::ErrorKind::NotFound,
            format!(
                "{} is a symbolic link (or not a folder) on the way to {}; a {kind} store follows no link and reads only regular files",
                at.display(),
                path.display()
            ),
        ),
        Walk::Errno(Errno::ENOENT, _) => ProviderError::not_found(name),
        Walk::Errno(Errno::EACCES, at) => ProviderError::new(
            super::ErrorKind::PermissionDenied,
            format!(
                "cannot read {}: permission denied at {}; let ramlet's user read it",
                path.display(),
                at.display()
            ),
        ),
        Walk::Errno(errno, at) => ProviderError::unavailable(format!(
            "cannot read {}: {} at {}",
            path.display(),
            errno.desc(),
            at.display()
        )),
    })?);
    let meta = file
        .metadata()
        .map_err(|e| ProviderError::unavailable(e.to_string()))?;
    if !meta.is_file() {
        return Err(ProviderError::new(
            super::ErrorKind::NotFound,
            format!(
                "{} is not a regular file; a {kind} store reads only regular files",
                path.display()
            ),
        ));
    }
    Ok((file, meta))
}

/// A file's version for stores whose files are rewritten to rotate (`file`, `creds`): its
/// modification time and inode. Not its size: status files show versions, and a size says
/// something about a secret. A rewrite changes the mtime; a rename over it, the inode.
pub(super) fn file_version(meta: &std::fs::Metadata) -> String {
    format!(
        "mtime:{}.{:09}/inode:{}",
        meta.mtime(),
        meta.mtime_nsec(),
        meta.ino()
    )
}

/// Why a walk stopped: a link (or a non-folder) where a folder was wanted, or an error, with the
/// path walked so far.
enum Walk {
    Link(PathBuf),
    Errno(Errno, PathBuf),
}

/// Opens the regular file at `path` (absolute, no `..`) for reading, walking from `/` one
/// component at a time without following any link: folders with `O_PATH | O_DIRECTORY |
/// O_NOFOLLOW` (a link there is `ENOTDIR`), the file with `O_NOFOLLOW | O_NONBLOCK` (a link is
/// `ELOOP`; a FIFO or device opens without blocking and the caller's type check refuses it).
fn open_beneath(path: &Path) -> Result<OwnedFd, Walk> {
    if !path.is_absolute() || path.components().any(|c| c == Component::ParentDir) {
        return Err(Walk::Errno(Errno::EINVAL, path.to_owned()));
    }
    let mut walked = PathBuf::from("/");
    let mut dir = nix::fcntl::open(
        "/",
        OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| Walk::Errno(e, walked.clone()))?;
    let names: Vec<&std::ffi::OsStr> = path
        .components()
        .filter_map(|c| match c {
            Component::Normal(name) => Some(name),
            _ => None,
        })
        .collect();
    let Some((last, folders)) = names.split_last() else {
        return Err(Walk::Errno(Errno::EISDIR, walked));
    };
    for name in folders {
        walked.push(name);
        dir = openat(
            &dir,
            *name,
            OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| match e {
            Errno::ENOTDIR | Errno::ELOOP => Walk::Link(walked.clone()),
            e => Walk::Errno(e, walked.clone()),
        })?;
    }
    walked.push(last);
    openat(
        &dir,
        *last,
        OFlag::O_RDONLY | OFlag::O_NOFOLLOW | OFlag::O_NONBLOCK | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| match e {
        Errno::ELOOP => Walk::Link(walked),
        e => Walk::Errno(e, walked),
    })
}

/// What a `file` store can do: one plain-text value per file in `directory`, on this host.
#[must_use]
pub fn capabilities(directory: &std::path::Path) -> super::Capabilities {
    super::capabilities::folder_store(directory, true)
}

impl SecretProvider for FileProvider {
    fn capabilities(&self) -> super::Capabilities {
        capabilities(&self.directory)
    }
    fn fetch<'a>(
        &'a self,
        requests: &'a [Request],
        limits: Limits,
    ) -> BoxFuture<'a, Vec<Result<Fetched, ProviderError>>> {
        let provider = self.clone();
        fetch_each(
            requests,
            limits,
            ("file", READS_PER_TASK),
            move |name, known| provider.read(name, known),
        )
    }
}

/// Why a local store (`kind`: `file`, `creds`, `age`) cannot answer `request`: it pins a
/// version, and such a store keeps one.
pub(super) fn pinned(request: &Request, kind: &str) -> Option<ProviderError> {
    (request.version != SecretVersion::Latest).then(|| {
        ProviderError::new(
            super::ErrorKind::NotFound,
            format!(
                "secret {:?} has no version {}: {kind} stores keep one",
                request.name, request.version
            ),
        )
    })
}

/// How many secrets of a `file` store one blocking task reads: a refresh of 500 files is 32
/// tasks, not 500 (each a hop to the blocking pool and back).
const READS_PER_TASK: usize = 16;

/// A local store's answers (`file`, `creds`): each request's `read`, in batches of `per_task` on
/// the blocking pool, each batch bounded by `limits` as one call (so a batch's reads share its
/// timeout: a store whose reads are slow takes batches of one). `read` gets the version ramlet
/// holds and answers [`Fetched::Unchanged`] when the file still has it. Such a store keeps one
/// version.
pub(super) fn fetch_each<'a, R>(
    requests: &'a [Request],
    limits: Limits,
    (kind, per_task): (&'static str, usize),
    read: R,
) -> BoxFuture<'a, Vec<Result<Fetched, ProviderError>>>
where
    R: Fn(&str, Option<&str>) -> Result<Fetched, ProviderError> + Clone + Send + Sync + 'static,
{
    let batches = requests.chunks(per_task.max(1)).map(move |batch| {
        let read = read.clone();
        let asked: Vec<(String, Option<String>, Option<ProviderError>)> = batch
            .iter()
            .map(|r| (r.name.clone(), r.known.clone(), pinned(r, kind)))
            .collect();
        async move {
            tokio::task::spawn_blocking(move || {
                asked
                    .into_iter()
                    .map(|(name, known, pinned)| match pinned {
                        Some(error) => Err(error),
                        None => read(&name, known.as_deref()),
                    })
                    .collect::<Vec<_>>()
            })
            .await
            .map_err(|e| ProviderError::unavailable(e.to_string()))
        }
    });
    Box::pin(async move {
        let answers = super::each_bounded(limits, batches.collect()).await;
        answers
            .into_iter()
            .zip(requests.chunks(per_task.max(1)))
            .flat_map(|(answer, batch)| match answer {
                Ok(each) => each,
                Err(error) => batch.iter().map(|_| Err(error.clone())).collect(),
            })
            .collect()
    })
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

    /// An idle refresh opens and `stat`s a file still at the version ramlet holds, and reads
    /// none of it: a file over the size limit at the held version is `Unchanged`, not an error
    /// (the same file asked without a version is refused by its size), in one batch among 40
    /// others (more than one blocking task's worth), answered in the requests' order.
    #[tokio::test]
    async fn a_file_at_the_held_version_is_not_read_again() {
        let dir = std::env::temp_dir().join(format!("ramlet-file-held-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let big = std::fs::File::create(dir.join("big")).unwrap();
        big.set_len(MAX_SECRET_BYTES + 1).unwrap();
        let held = file_version(&big.metadata().unwrap());
        for i in 0..40 {
            std::fs::write(dir.join(format!("s{i}")), format!("value-{i}")).unwrap();
        }
        let ask = |name: &str, known: Option<String>| Request {
            name: name.into(),
            version: SecretVersion::Latest,
            known,
        };
        let provider = FileProvider::new(dir.clone());
        let mut requests: Vec<Request> = (0..40).map(|i| ask(&format!("s{i}"), None)).collect();
        requests.insert(20, ask("big", Some(held)));
        requests.push(ask("big", None));
        let answers = provider.fetch(&requests, Limits::default()).await;
        assert_eq!(answers.len(), 42);
        assert_eq!(answers[20], Ok(Fetched::Unchanged));
        assert_eq!(
            answers[41].as_ref().unwrap_err().kind(),
            super::super::ErrorKind::TooLarge
        );
        let Ok(Fetched::New(last)) = &answers[40] else {
            panic!("s39 was not read: {:?}", answers[40])
        };
        assert_eq!(last.bytes.expose(), b"value-39");
        let _ = std::fs::remove_dir_all(dir);
    }

    /// Issue 19, finding 2: only the last component was opened with `O_NOFOLLOW`, so a linked
    /// folder inside an allowed store directory read any file outside it.
    #[tokio::test]
    async fn regression_19_a_linked_folder_never_leads_out_of_the_store() {
        let base = std::env::temp_dir().join(format!("ramlet-file-escape-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&base);
        std::fs::create_dir_all(base.join("store/real")).unwrap();
        std::fs::create_dir_all(base.join("outside")).unwrap();
        std::fs::write(base.join("outside/shadow"), b"root:secret-hash").unwrap();
        std::fs::write(base.join("store/real/ok"), b"fine").unwrap();
        std::os::unix::fs::symlink(base.join("outside"), base.join("store/escape")).unwrap();
        std::os::unix::fs::symlink(base.join("store"), base.join("linked-store")).unwrap();
        let ask = |name: &str| Request {
            name: name.into(),
            version: SecretVersion::Latest,
            known: None,
        };
        let store = FileProvider::new(base.join("store"));
        let mut answers = store
            .fetch(&[ask("escape/shadow"), ask("real/ok")], Limits::default())
            .await;
        let Ok(Fetched::New(ok)) = answers.remove(1) else {
            panic!("real/ok was not read")
        };
        assert_eq!(ok.bytes.expose(), b"fine");
        let error = answers.remove(0).unwrap_err().to_string();
        assert!(error.contains("follows no link"), "{error}");
        assert!(!error.contains("secret-hash"), "{error}");
        // A store whose own folder is reached through a link is refused the same way.
        let linked = FileProvider::new(base.join("linked-store"));
        let error = linked.fetch(&[ask("real/ok")], Limits::default()).await[0]
            .clone()
            .unwrap_err()
            .to_string();
        assert!(error.contains("linked-store is a symbolic link"), "{error}");
        let _ = std::fs::remove_dir_all(base);
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
