//! What wakes a store before its timer: change events (a listener per store with an event
//! source, each event held until the fetch it asked for answered) and files that changed in a
//! local store's folder (just the secret stored there is read again).

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use ramlet_specs::model::{EventSource, SecretStore};
use tokio::time::Instant;

use super::record::jitter;
use super::{Key, Stores};
use crate::providers::events::{self, Event, Notice, Sink};

/// A running listener and what it reported.
pub(super) struct Listener {
    pub(super) source: EventSource,
    pub(super) fallback: Duration,
    pub(super) task: tokio::task::JoinHandle<()>,
    /// Why it cannot receive; `None` while it receives (or has not said yet).
    pub(super) error: Option<String>,
    /// Events that made ramlet fetch a secret.
    pub(super) fetched: u64,
    /// Events for secrets no spec here uses.
    pub(super) unused: u64,
}

impl Drop for Listener {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Stores {
    /// From now on, starts a listener with `spawn` (the real one is [`events::spawn`]),
    /// sending to `sink`, for every store that names an event source.
    pub fn listen_with(&mut self, sink: Sink, spawn: events::Spawn) {
        self.sink = Some(sink);
        self.spawn = spawn;
    }

    /// Takes a listener's notice. An event for secrets in use marks them due and is held until
    /// they are fetched; one for secrets no spec uses is acknowledged at once. Returns whether
    /// a reconcile should follow.
    pub fn notice(&mut self, notice: Notice) -> bool {
        match notice {
            Notice::Health { store, error } => {
                let Some(store) = self.by_name.get_mut(&store) else {
                    return false;
                };
                let Some(listener) = store.listener.as_mut() else {
                    return false;
                };
                if error.is_some() {
                    // Polling takes over: the next refresh is at most `fallback` away.
                    let fallback = Instant::now() + jitter(listener.fallback);
                    store.next_due = store.next_due.min(fallback);
                }
                listener.error = error;
                true
            }
            Notice::Event(event) => self.event(event),
        }
    }

    fn event(&mut self, event: Event) -> bool {
        let Some(store) = self.by_name.get_mut(&event.store) else {
            event.ack.ack();
            return false;
        };
        let used: BTreeSet<String> = store
            .entries
            .keys()
            .map(|(name, _)| name)
            .filter(|name| event.names.contains(name))
            .cloned()
            .collect();
        if let Some(listener) = store.listener.as_mut() {
            let count = if used.is_empty() {
                &mut listener.unused
            } else {
                &mut listener.fetched
            };
            *count += 1;
        }
        if used.is_empty() {
            tracing::debug!(store = %event.store, secret = ?event.names, what = %event.what, "change event for a secret no spec here uses");
            event.ack.ack();
            return false;
        }
        tracing::info!(store = %event.store, secret = ?used, what = %event.what, "{}: change event {} for {used:?}", event.store, event.what);
        store.marked.extend(used);
        // A newer event for the same secret stands for the older ones.
        self.held
            .extract_if(.., |held| {
                held.store == event.store && held.names == event.names
            })
            .for_each(|older| older.ack.ack());
        self.held.push(event);
        true
    }

    /// Takes the paths a file event names: a path in a `file` or `creds` store's folder marks
    /// the secret stored there due (or, for any other path in that folder, such as a swapped
    /// `..data` link, every secret of that store), so that one rotated file costs one read, not
    /// a read of every local secret. Returns false when some path is in no such folder (a
    /// spec, an `age` file, an event without paths): then every local store must be read.
    pub fn files_changed(&mut self, paths: &[std::path::PathBuf]) -> bool {
        if paths.is_empty() {
            return false;
        }
        for path in paths {
            let Some((store, dir)) = self.by_name.values_mut().find_map(|store| {
                let dir = store.can.folder.clone()?;
                path.starts_with(&dir).then_some((store, dir))
            }) else {
                return false;
            };
            let relative = path
                .strip_prefix(&dir)
                .ok()
                .and_then(std::path::Path::to_str)
                .unwrap_or_default();
            let names = store.entries.keys().map(|(name, _)| name);
            if names.clone().any(|name| name == relative) {
                store.marked.insert(relative.to_owned());
            } else {
                store.marked.extend(names.cloned());
            }
        }
        true
    }

    /// Acknowledges the held events whose secrets were fetched since (or are no longer used);
    /// an event whose fetch failed stays held for the next try.
    pub fn ack_fetched(&mut self) {
        let by_name = &self.by_name;
        let done = |event: &mut Event| {
            by_name.get(&event.store).is_none_or(|store| {
                !store.entries.iter().any(|((name, _), entry)| {
                    event.names.contains(name)
                        && (store.marked.contains(name) || entry.error.is_some())
                })
            })
        };
        self.held
            .extract_if(.., done)
            .for_each(|event| event.ack.ack());
    }

    /// Starts the listener of every store with an event source that has none (or one for
    /// another source), and stops those of stores without one.
    pub(super) fn listen(&mut self, wanted: &BTreeMap<String, (&SecretStore, BTreeSet<Key>)>) {
        let Some(sink) = &self.sink else {
            return;
        };
        for (name, (spec, _)) in wanted {
            let Some(store) = self.by_name.get_mut(name) else {
                continue;
            };
            match &spec.events {
                None => store.listener = None,
                Some(wanted) => match &mut store.listener {
                    Some(listener) if listener.source == wanted.source => {
                        listener.fallback = wanted.fallback_interval;
                    }
                    _ => {
                        store.listener = Some(Listener {
                            source: wanted.source.clone(),
                            fallback: wanted.fallback_interval,
                            task: (self.spawn)(name, &wanted.source, sink.clone()),
                            error: None,
                            fetched: 0,
                            unused: 0,
                        });
                    }
                },
            }
        }
    }
}
