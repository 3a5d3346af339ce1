//! The files a health-gated rotation puts back if it fails, kept past the ramlet that started
//! the rotation: sealed to the host with `systemd-creds` (the host's key) in the state
//! directory's `previous/` while the rotation is under way, removed when it ends. So a SIGKILL
//! between a rotation and its rollback loses nothing, whatever the store (a `file`, `creds` or
//! `age` store keeps one version, and cannot give the previous one again). Nothing is on disk in
//! plain text: the files are encoded into zeroized memory and reach `systemd-creds` through a
//! pipe. Where the host's key is not ramlet's (user scope before systemd 256) sealing fails, and
//! a later ramlet falls back to fetching AWS and GCP versions again by their IDs.

use std::io::Read as _;
use std::path::{Path, PathBuf};

use ramlet_specs::model::Medium;
use zeroize::Zeroizing;

use super::desire::Changed;
use crate::drivers::{FileContent, VolumeSpec};
use crate::providers::creds::{WithKey, decrypt, encrypt};
use crate::providers::{ErrorKind, ProviderError};
use crate::secrets::SecretBytes;

/// The folder in the state directory.
pub const PREVIOUS_DIR: &str = "previous";
/// What the encoding starts with.
const MAGIC: &[u8; 4] = b"RLP1";

/// The sealed previous files of the specs whose rotation is under way.
#[derive(Debug, Clone)]
pub struct SealedPrevious {
    dir: PathBuf,
}

impl SealedPrevious {
    /// The folder `previous/` of `state_dir`.
    #[must_use]
    pub fn new(state_dir: &Path) -> Self {
        Self {
            dir: state_dir.join(PREVIOUS_DIR),
        }
    }

    fn path(&self, spec: &str) -> PathBuf {
        self.dir.join(format!("{spec}.cred"))
    }

    /// Seals `files` for `spec`, replacing what was there.
    ///
    /// # Errors
    /// When the folder cannot be made or `systemd-creds` cannot seal (no host key of ours).
    pub fn save(&self, spec: &str, files: &Changed) -> Result<(), ProviderError> {
        std::fs::create_dir_all(&self.dir).map_err(|e| {
            ProviderError::new(
                ErrorKind::Misconfigured,
                format!("cannot create {}: {e}", self.dir.display()),
            )
        })?;
        let encoded = encode(files);
        encrypt(&encoded, spec, WithKey::Host, &self.path(spec))
    }

    /// What was sealed for `spec`, if anything could be read back.
    #[must_use]
    pub fn load(&self, spec: &str) -> Option<Changed> {
        let path = self.path(spec);
        let file = std::fs::File::open(&path).ok()?;
        match decrypt(file, &path, spec) {
            Ok(plain) => decode(&plain),
            Err(error) => {
                tracing::warn!(spec, %error, "cannot open the sealed previous files");
                None
            }
        }
    }

    /// The specs whose files lie sealed here.
    #[must_use]
    pub fn list(&self) -> std::collections::BTreeSet<String> {
        let Ok(entries) = std::fs::read_dir(&self.dir) else {
            return std::collections::BTreeSet::new();
        };
        entries
            .flatten()
            .filter_map(|entry| {
                let name = entry.file_name();
                Some(name.to_str()?.strip_suffix(".cred")?.to_owned())
            })
            .collect()
    }

    /// Removes `spec`'s sealed files.
    ///
    /// # Errors
    /// When they are there and cannot be removed.
    pub fn remove(&self, spec: &str) -> std::io::Result<()> {
        crate::statefile::remove(&self.path(spec))
    }
}

/// `files` as bytes, in zeroized memory: per volume its spec, name, medium and size, then per
/// file its path, mode, owner and content; numbers little-endian, strings and contents after
/// their lengths.
fn encode(files: &Changed) -> Zeroizing<Vec<u8>> {
    let mut out = Zeroizing::new(Vec::new());
    out.extend_from_slice(MAGIC);
    push_len(&mut out, files.len());
    for (volume, contents) in files {
        push_str(&mut out, &volume.spec);
        push_str(&mut out, &volume.volume);
        out.push(u8::from(volume.medium == Medium::Ramfs));
        out.extend_from_slice(&volume.size.to_le_bytes());
        push_len(&mut out, contents.len());
        for file in contents {
            push_str(&mut out, &file.path);
            out.extend_from_slice(&file.mode.to_le_bytes());
            for id in [file.uid, file.gid] {
                out.extend_from_slice(&id.map_or(-1, i64::from).to_le_bytes());
            }
            let bytes = file.bytes.expose();
            out.extend_from_slice(&(bytes.len() as u64).to_le_bytes());
            out.extend_from_slice(bytes);
        }
    }
    out
}

fn push_len(out: &mut Vec<u8>, len: usize) {
    out.extend_from_slice(&u32::try_from(len).unwrap_or(u32::MAX).to_le_bytes());
}

fn push_str(out: &mut Vec<u8>, text: &str) {
    push_len(out, text.len());
    out.extend_from_slice(text.as_bytes());
}

/// [`encode`] read back; `None` when the bytes are not one.
fn decode(bytes: &[u8]) -> Option<Changed> {
    let mut input = bytes;
    let mut magic = [0; 4];
    input.read_exact(&mut magic).ok()?;
    if &magic != MAGIC {
        return None;
    }
    let mut files = Vec::new();
    for _ in 0..read_u32(&mut input)? {
        let spec = read_str(&mut input)?;
        let volume = read_str(&mut input)?;
        let medium = if read_n::<1>(&mut input)?[0] == 1 {
            Medium::Ramfs
        } else {
            Medium::Tmpfs
        };
        let size = u64::from_le_bytes(read_n(&mut input)?);
        let mut contents = Vec::new();
        for _ in 0..read_u32(&mut input)? {
            let path = read_str(&mut input)?;
            let mode = read_u32(&mut input)?;
            let mut ids = [None, None];
            for id in &mut ids {
                *id = u32::try_from(i64::from_le_bytes(read_n(&mut input)?)).ok();
            }
            let len = usize::try_from(u64::from_le_bytes(read_n(&mut input)?)).ok()?;
            let data = input.get(..len)?.to_vec();
            input = &input[len..];
            contents.push(FileContent {
                path,
                mode,
                uid: ids[0],
                gid: ids[1],
                bytes: SecretBytes::new(data),
            });
        }
        files.push((
            VolumeSpec {
                spec,
                volume,
                medium,
                size,
            },
            contents,
        ));
    }
    input.is_empty().then_some(files)
}

fn read_n<const N: usize>(input: &mut &[u8]) -> Option<[u8; N]> {
    let mut buffer = [0; N];
    input.read_exact(&mut buffer).ok()?;
    Some(buffer)
}

fn read_u32(input: &mut &[u8]) -> Option<u32> {
    read_n(input).map(u32::from_le_bytes)
}

fn read_str(input: &mut &[u8]) -> Option<String> {
    let len = usize::try_from(read_u32(input)?).ok()?;
    let text = String::from_utf8(input.get(..len)?.to_vec()).ok()?;
    *input = &input[len..];
    Some(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn files() -> Changed {
        vec![(
            VolumeSpec {
                spec: "web".into(),
                volume: "tls".into(),
                medium: Medium::Tmpfs,
                size: 65536,
            },
            vec![
                FileContent {
                    path: "tls.crt".into(),
                    mode: 0o444,
                    uid: None,
                    gid: None,
                    bytes: SecretBytes::new(b"certificate".to_vec()),
                },
                FileContent {
                    path: "keys/tls.key".into(),
                    mode: 0o400,
                    uid: Some(101),
                    gid: Some(0),
                    bytes: SecretBytes::new(vec![0, 1, 2, 255]),
                },
            ],
        )]
    }

    #[test]
    fn the_encoding_reads_back_and_refuses_anything_else() {
        let encoded = encode(&files());
        assert_eq!(decode(&encoded), Some(files()));
        assert_eq!(decode(&encoded[..encoded.len() - 1]), None, "cut short");
        assert_eq!(decode(b"RLP2"), None);
        let mut longer = encoded.to_vec();
        longer.push(0);
        assert_eq!(decode(&longer), None, "trailing bytes");
    }

    #[test]
    fn sealed_to_the_host_they_come_back_and_nothing_plain_is_on_disk() {
        if !nix::unistd::Uid::effective().is_root() {
            eprintln!("skipped: the host key of systemd-creds is root's");
            return;
        }
        let state = std::env::temp_dir().join(format!("ramlet-previous-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&state);
        let sealed = SealedPrevious::new(&state);
        sealed.save("web", &files()).unwrap();
        sealed.save("api", &files()).unwrap();
        let on_disk = std::fs::read(state.join("previous/web.cred")).unwrap();
        assert!(
            !on_disk.windows(11).any(|w| w == b"certificate"),
            "the value is sealed"
        );
        assert_eq!(sealed.load("web"), Some(files()));
        // Sealed under the spec's name: another spec's file does not open as this one.
        std::fs::copy(
            state.join("previous/web.cred"),
            state.join("previous/other.cred"),
        )
        .unwrap();
        assert_eq!(sealed.load("other"), None);
        assert_eq!(
            sealed.list(),
            ["api", "other", "web"].map(String::from).into()
        );
        sealed.remove("web").unwrap();
        sealed.remove("other").unwrap();
        assert_eq!(sealed.list(), ["api"].map(String::from).into());
        assert_eq!(sealed.load("web"), None);
        assert!(sealed.load("api").is_some());
        let _ = std::fs::remove_dir_all(state);
    }
}
