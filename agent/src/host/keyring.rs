//! What ramlet keeps across its own restarts without a disk: a leased credential's value, in
//! the kernel's keyring of ramlet's user (`keyrings(7)`). A key's payload lives in kernel
//! memory, which is never swapped, and is wiped when the key goes; each key times out at the
//! end of its lease, so what a dead ramlet left behind goes away by itself. The user keyring
//! outlives the process (a `SIGKILL`, a `systemctl restart`), not a reboot.
//!
//! Only ramlet's user may read its keys (possessor and user permissions; nothing for group or
//! others); a rootless container runs in a user namespace with a keyring register of its own,
//! and Podman's seccomp profile refuses the keyring calls anyway.
//!
//! [`Keep`] is the seam: [`Keyring`] is the kernel's, [`Memory`] a fake for unit tests.

use std::collections::BTreeMap;
use std::sync::Mutex;

use linux_keyutils::{KeyPermissionsBuilder, KeyRing, KeyRingIdentifier, Permission};
use zeroize::Zeroizing;

/// Where values that must outlive ramlet's process are kept, in RAM.
pub trait Keep: Send + Sync + std::fmt::Debug {
    /// Keeps `payload` under `name` until `ends` (Unix seconds), replacing what was there.
    ///
    /// # Errors
    /// Why it cannot (the user's key quota is full, no keyring).
    fn put(&self, name: &str, payload: &[u8], ends: u64) -> Result<(), String>;

    /// Moves the end of what is kept under `name`.
    fn extend(&self, name: &str, ends: u64);

    /// Everything kept under a name that starts with `prefix`, by name.
    fn load(&self, prefix: &str) -> Vec<(String, Zeroizing<Vec<u8>>)>;

    /// Drops what is kept under `name` (its payload wiped).
    fn forget(&self, name: &str);
}

/// The kernel keyring of ramlet's user.
#[derive(Debug, Default, Clone, Copy)]
pub struct Keyring;

/// The most keys listed from the user keyring.
const MAX_KEYS: usize = 4096;

impl Keyring {
    fn ring() -> Result<KeyRing, String> {
        KeyRing::from_special_id(KeyRingIdentifier::User, true)
            .map_err(|e| format!("no user keyring: {e:?}"))
    }

    fn seconds_until(ends: u64) -> usize {
        usize::try_from(ends.saturating_sub(crate::util::unix_now()).max(1)).unwrap_or(usize::MAX)
    }
}

impl Keep for Keyring {
    fn put(&self, name: &str, payload: &[u8], ends: u64) -> Result<(), String> {
        let key = Self::ring()?
            .add_key(name, payload)
            .map_err(|e| format!("cannot add a key: {e:?}"))?;
        let perms = KeyPermissionsBuilder::builder()
            .posessor(Permission::ALL)
            .user(Permission::ALL)
            .build();
        let kept = key
            .set_perms(perms)
            .and_then(|()| key.set_timeout(Self::seconds_until(ends)));
        if let Err(e) = kept {
            let _ = key.invalidate();
            return Err(format!("cannot set the key's permissions and end: {e:?}"));
        }
        Ok(())
    }

    fn extend(&self, name: &str, ends: u64) {
        if let Ok(key) = Self::ring().and_then(|r| r.search(name).map_err(|e| format!("{e:?}"))) {
            let _ = key.set_timeout(Self::seconds_until(ends));
        }
    }

    fn load(&self, prefix: &str) -> Vec<(String, Zeroizing<Vec<u8>>)> {
        let Ok(links) =
            Self::ring().and_then(|r| r.get_links(MAX_KEYS).map_err(|e| format!("{e:?}")))
        else {
            return Vec::new();
        };
        links
            .iter()
            .filter_map(linux_keyutils::LinkNode::as_key)
            .filter_map(|key| {
                let name = key.metadata().ok()?.get_description().to_owned();
                if !name.starts_with(prefix) {
                    return None;
                }
                let payload = Zeroizing::new(key.read_to_vec().ok()?);
                Some((name, payload))
            })
            .collect()
    }

    fn forget(&self, name: &str) {
        if let Ok(key) = Self::ring().and_then(|r| r.search(name).map_err(|e| format!("{e:?}"))) {
            let _ = key.invalidate();
        }
    }
}

/// Payloads by name, each with its end.
type Payloads = BTreeMap<String, (Zeroizing<Vec<u8>>, u64)>;

/// An in-memory [`Keep`] for tests: what a restarted ramlet would find, without the kernel's.
#[derive(Debug, Default)]
pub struct Memory {
    kept: Mutex<Payloads>,
}

impl Memory {
    fn kept(&self) -> std::sync::MutexGuard<'_, Payloads> {
        crate::util::lock(&self.kept)
    }

    /// When what is kept under `name` ends, if anything is.
    #[must_use]
    pub fn ends(&self, name: &str) -> Option<u64> {
        self.kept().get(name).map(|(_, ends)| *ends)
    }
}

impl Keep for Memory {
    fn put(&self, name: &str, payload: &[u8], ends: u64) -> Result<(), String> {
        self.kept()
            .insert(name.to_owned(), (Zeroizing::new(payload.to_vec()), ends));
        Ok(())
    }

    fn extend(&self, name: &str, ends: u64) {
        if let Some(kept) = self.kept().get_mut(name) {
            kept.1 = ends;
        }
    }

    fn load(&self, prefix: &str) -> Vec<(String, Zeroizing<Vec<u8>>)> {
        let now = crate::util::unix_now();
        self.kept()
            .iter()
            .filter(|(name, (_, ends))| name.starts_with(prefix) && *ends > now)
            .map(|(name, (payload, _))| (name.clone(), payload.clone()))
            .collect()
    }

    fn forget(&self, name: &str) {
        self.kept().remove(name);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The kernel's keyring keeps a payload under its name, lists it by prefix, moves its end
    /// and forgets it.
    #[test]
    fn the_kernel_keyring_keeps_lists_and_forgets() {
        let prefix = format!("ramlet-test:{}:", std::process::id());
        let name = format!("{prefix}one");
        let ends = crate::util::unix_now() + 60;
        if let Err(e) = Keyring.put(&name, b"{\"password\":\"p\"}", ends) {
            eprintln!("skipped: no keyring here ({e})");
            return;
        }
        let loaded = Keyring.load(&prefix);
        assert_eq!(loaded.len(), 1);
        assert_eq!(loaded[0].0, name);
        assert_eq!(loaded[0].1.as_slice(), b"{\"password\":\"p\"}");
        Keyring.extend(&name, ends + 60);
        Keyring.forget(&name);
        assert!(Keyring.load(&prefix).is_empty());
    }
}
