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

use notify::{RecursiveMode, Watcher as _};

/// The watches the loop keeps.
pub struct Watches {
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
            spec_dir,
            target: None,
            holders: BTreeSet::new(),
            stores: BTreeSet::new(),
        }
    }

    /// Moves the watches to where the spec directory is now, and to the `file` stores in
    /// `stores`. Failures are logged: the refresh timers still bring changes in.
    pub fn update(&mut self, watcher: &mut notify::RecommendedWatcher, stores: &BTreeSet<PathBuf>) {
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
        let holders = holders(&self.spec_dir);
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
                }
                Err(error) => {
                    tracing::warn!(dir = %dir.display(), %error, "cannot watch a file store; it is refreshed on its interval");
                }
            }
        }
    }
}

/// The folders to watch, not recursively, for `spec_dir` to be followed: the one holding each
/// symlink on its path, and its own parent (so that its creation or removal is seen).
fn holders(spec_dir: &Path) -> BTreeSet<PathBuf> {
    let mut dirs = BTreeSet::new();
    if let Some(parent) = spec_dir.parent().filter(|p| p.is_dir()) {
        dirs.insert(parent.to_owned());
    }
    for ancestor in spec_dir.ancestors() {
        let is_link = std::fs::symlink_metadata(ancestor).is_ok_and(|m| m.file_type().is_symlink());
        if is_link && let Some(parent) = ancestor.parent().filter(|p| p.is_dir()) {
            dirs.insert(parent.to_owned());
        }
    }
    dirs
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_folders_holding_each_link_are_watched() {
        let root = std::env::temp_dir().join(format!("ramlet-watch-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        std::fs::create_dir_all(root.join("git/rev-1/specs")).unwrap();
        std::os::unix::fs::symlink("rev-1", root.join("git/current")).unwrap();
        let spec_dir = root.join("git/current/specs");
        let found = holders(&spec_dir);
        assert!(found.contains(&root.join("git")), "{found:?}");
        assert!(found.contains(&root.join("git/current")), "{found:?}");
        let plain = holders(&root.join("git/rev-1/specs"));
        assert_eq!(plain, [root.join("git/rev-1")].into());
        let _ = std::fs::remove_dir_all(root);
    }
}
