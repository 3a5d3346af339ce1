//! What the agent watches for changes: the spec directory, followed through symlink swaps
//! (git-sync replaces a `current` symlink atomically), and the folders of `file` stores.
//!
//! inotify watches inodes, not paths: a watch on a symlinked spec directory stays on the old
//! target after a swap. So the folder that holds each symlink on the way to the spec directory
//! is watched too (not recursively), and after every wake-up the spec directory's real path is
//! compared with the one watched; when it moved, the watch moves with it. A spec directory that
//! is missing is not an error here: its parent is watched so that its arrival wakes the loop.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use notify::{RecursiveMode, Watcher as _};

/// Which changed paths wake the loop: anything in the spec directory or a `file` store, but in
/// the folders watched only because they hold a link on the way (or the spec directory), only
/// that link or the spec directory itself: ramlet's own log or state beside the spec directory
/// must not wake it again and again.
#[derive(Debug, Clone, Default)]
pub struct Relevant(Arc<RwLock<Paths>>);

#[derive(Debug, Default)]
struct Paths {
    /// Everything below these.
    trees: Vec<PathBuf>,
    /// Exactly these.
    exact: BTreeSet<PathBuf>,
}

impl Relevant {
    /// Whether an event on `paths` should wake the loop (one without paths, such as an
    /// overflow, always does).
    #[must_use]
    pub fn wakes(&self, paths: &[PathBuf]) -> bool {
        paths.is_empty() || !self.within(paths).is_empty()
    }

    /// The paths of an event that are in what ramlet watches for: a file moved in from
    /// elsewhere (`mv /tmp/new /etc/ramlet/secrets/db`) names its old place too, which must
    /// not make the loop read every store.
    #[must_use]
    pub fn within(&self, paths: &[PathBuf]) -> Vec<PathBuf> {
        let Ok(known) = self.0.read() else {
            return paths.to_vec();
        };
        paths
            .iter()
            .filter(|p| known.exact.contains(*p) || known.trees.iter().any(|t| p.starts_with(t)))
            .cloned()
            .collect()
    }
}

/// The watches the loop keeps.
pub struct Watches {
    relevant: Relevant,
    spec_dir: PathBuf,
    /// The spec directory's real path, watched recursively.
    target: Option<PathBuf>,
    /// Folders watched (not recursively) because they hold a link to, or the spec directory.
    holders: BTreeSet<PathBuf>,
    /// `file` stores' folders, watched recursively.
    stores: BTreeSet<PathBuf>,
}

impl Watches {
    /// Nothing watched yet; [`Watches::update`] sets the watches up.
    #[must_use]
    pub fn new(spec_dir: PathBuf) -> Self {
        Self {
            relevant: Relevant::default(),
            spec_dir,
            target: None,
            holders: BTreeSet::new(),
            stores: BTreeSet::new(),
        }
    }

    /// The filter for the watcher's events, kept current by [`Watches::update`].
    #[must_use]
    pub fn relevant(&self) -> Relevant {
        self.relevant.clone()
    }

    /// Moves the watches to where the spec directory is now, and to the `file` stores in
    /// `stores`. Failures are logged: the refresh timers still bring changes in. Returns the
    /// stores' folders watched from now on that were not before: a file written in one of them
    /// between the reconcile that read it and this call made no event, so the caller reads
    /// those stores once more.
    pub fn update(
        &mut self,
        watcher: &mut notify::RecommendedWatcher,
        stores: &BTreeSet<PathBuf>,
    ) -> Vec<PathBuf> {
        let mut added = Vec::new();
        let target = std::fs::canonicalize(&self.spec_dir).ok();
        if target != self.target {
            // The links on the way may point elsewhere now: watch their folders afresh.
            for dir in std::mem::take(&mut self.holders) {
                let _ = watcher.unwatch(&dir);
            }
            if let Some(old) = self.target.take() {
                let _ = watcher.unwatch(&old);
            }
            if let Some(new) = &target {
                match watcher.watch(new, RecursiveMode::Recursive) {
                    Ok(()) => {
                        tracing::info!(spec_dir = %self.spec_dir.display(), target = %new.display(), "watching the spec directory");
                        self.target = Some(new.clone());
                    }
                    Err(error) => {
                        tracing::warn!(dir = %new.display(), %error, "cannot watch the spec directory; it is read on every wake-up");
                    }
                }
            }
        }
        let followed = followed(&self.spec_dir);
        let holders = holders(&followed);
        for gone in self.holders.difference(&holders) {
            let _ = watcher.unwatch(gone);
        }
        let mut kept = BTreeSet::new();
        for dir in holders {
            if self.holders.contains(&dir)
                || watcher.watch(&dir, RecursiveMode::NonRecursive).is_ok()
            {
                kept.insert(dir);
            }
        }
        self.holders = kept;

        for dir in self.stores.difference(stores).cloned().collect::<Vec<_>>() {
            let _ = watcher.unwatch(&dir);
            self.stores.remove(&dir);
        }
        for dir in stores.difference(&self.stores.clone()) {
            match watcher.watch(dir, RecursiveMode::Recursive) {
                Ok(()) => {
                    self.stores.insert(dir.clone());
                    added.push(dir.clone());
                }
                Err(error) => {
                    tracing::warn!(dir = %dir.display(), %error, "cannot watch a file store; it is refreshed on its interval");
                }
            }
        }
        if let Ok(mut known) = self.relevant.0.write() {
            known.trees = self
                .target
                .iter()
                .chain(&self.stores)
                .cloned()
                .chain(std::iter::once(self.spec_dir.clone()))
                .collect();
            known.exact = followed.into_iter().collect();
        }
        added
    }
}

/// The paths whose change moves the spec directory: itself, and each symlink on its way.
fn followed(spec_dir: &Path) -> Vec<PathBuf> {
    spec_dir
        .ancestors()
        .filter(|a| {
            *a == spec_dir || std::fs::symlink_metadata(a).is_ok_and(|m| m.file_type().is_symlink())
        })
        .map(Path::to_path_buf)
        .collect()
}

/// The folders to watch, not recursively, for `spec_dir` to be followed: the ones that hold
/// the paths of [`followed`].
fn holders(followed: &[PathBuf]) -> BTreeSet<PathBuf> {
    followed
        .iter()
        .filter_map(|path| path.parent().filter(|p| p.is_dir()))
        .map(Path::to_path_buf)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_spec_directory_and_its_links_wake_from_the_folders_beside_them() {
        let root = std::env::temp_dir().join(format!("ramlet-relevant-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        std::fs::create_dir_all(root.join("rev-1")).unwrap();
        std::os::unix::fs::symlink("rev-1", root.join("specs")).unwrap();
        let mut watches = Watches::new(root.join("specs"));
        let mut watcher = notify::recommended_watcher(|_| {}).unwrap();
        watches.update(&mut watcher, &BTreeSet::new());
        let relevant = watches.relevant();
        let real = std::fs::canonicalize(root.join("rev-1")).unwrap();
        assert!(relevant.wakes(&[real.join("web.yaml")]));
        assert!(relevant.wakes(&[root.join("specs")]), "the link swapped");
        assert!(
            !relevant.wakes(&[root.join("ramlet.log")]),
            "a log beside the specs"
        );
        assert!(!relevant.wakes(&[root.join("state/status.json")]));
        assert!(relevant.wakes(&[]));
        assert_eq!(
            relevant.within(&[root.join(".web.tmp"), real.join("web.yaml")]),
            [real.join("web.yaml")],
            "a file moved in names where it came from too"
        );
        let _ = std::fs::remove_dir_all(root);
    }

    #[test]
    fn the_folders_holding_each_link_are_watched() {
        let root = std::env::temp_dir().join(format!("ramlet-watch-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        std::fs::create_dir_all(root.join("git/rev-1/specs")).unwrap();
        std::os::unix::fs::symlink("rev-1", root.join("git/current")).unwrap();
        let spec_dir = root.join("git/current/specs");
        let found = holders(&followed(&spec_dir));
        assert!(found.contains(&root.join("git")), "{found:?}");
        assert!(found.contains(&root.join("git/current")), "{found:?}");
        let plain = holders(&followed(&root.join("git/rev-1/specs")));
        assert_eq!(plain, [root.join("git/rev-1")].into());
        let _ = std::fs::remove_dir_all(root);
    }
}
