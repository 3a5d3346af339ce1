//! What wakes a store before its timer: change events (a listener per store with an event
//! source, each event held until the fetch it asked for answered) and files that changed in a
//! local store's folder (just the secret stored there is read again).

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use ramlet_specs::model::{EventSource, SecretRef, SecretStore};
use tokio::time::Instant;

use super::record::jitter;
use super::{Key, Stores};
use crate::providers::events::{self, Event, Notice, Sink};

/// How long a wake-up waits for more before the reconcile it asks for (the loop's debounce:
/// `crate::agent`). The rule: wait only where a change that belongs with this one may follow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Settle {
    /// Nothing that belongs with it can follow: a change event, `ramlet sync`, a local
    /// folder's `..data` swapped (every file at once), a finished write of a secret whose
    /// consumers read nothing else from its store.
    Now,
    /// A finished write of a secret that a consumer reads beside another from the same store
    /// (a certificate and its key, written one after the other), or of a spec file (the next
    /// of a git pull): a short wait for the other.
    Siblings,
    /// A write still under way (its close follows), a file removed or moved away (its
    /// successor follows), events lost: wait until quiet.
    Burst,
}

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

    /// Takes the paths of a finished file change (written and closed, moved in, removed): a
    /// path in a `file` or `creds` store's folder marks the secret stored there due (or, for
    /// any other path in that folder, such as a swapped `..data` link, every secret of that
    /// store), so that one rotated file costs one read, not a read of every local secret.
    /// Returns how long to wait for more ([`Settle`], of the last path), or `None` when some
    /// path is in no such folder (a spec, an `age` file, an event without paths): then every
    /// local store must be read.
    pub fn files_changed(&mut self, paths: &[std::path::PathBuf]) -> Option<Settle> {
        let mut settle = None;
        for path in paths {
            let (store, dir) = self.by_name.iter_mut().find_map(|(name, store)| {
                let dir = store.can.folder.clone()?;
                path.starts_with(&dir).then_some(((name, store), dir))
            })?;
            let relative = path
                .strip_prefix(&dir)
                .ok()
                .and_then(std::path::Path::to_str)
                .unwrap_or_default();
            let (name, store) = store;
            let names = store.entries.keys().map(|(name, _)| name);
            settle = Some(if names.clone().any(|name| name == relative) {
                store.marked.insert(relative.to_owned());
                let paired = self.paired.get(name).is_some_and(|p| p.contains(relative));
                if paired {
                    Settle::Siblings
                } else {
                    Settle::Now
                }
            } else {
                store.marked.extend(names.cloned());
                // `..data` swapped: every file at once. Anything else (a temporary file
                // closed, a new data folder) comes before the rename that finishes it.
                if relative == "..data" {
                    Settle::Now
                } else {
                    Settle::Siblings
                }
            });
        }
        settle
    }

    /// Takes what each consumer reads (one iterator per spec): a secret read beside another
    /// of the same store by one consumer is *paired* (a certificate and its key), and a file
    /// change to it waits [`Settle::Siblings`] for the other.
    pub fn read_together<'a, C>(&mut self, consumers: impl IntoIterator<Item = C>)
    where
        C: IntoIterator<Item = &'a SecretRef>,
    {
        self.paired.clear();
        for consumer in consumers {
            let mut by_store: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
            for reference in consumer {
                by_store
                    .entry(reference.store.as_str())
                    .or_default()
                    .insert(reference.name.as_str());
            }
            for (store, names) in by_store.into_iter().filter(|(_, n)| n.len() > 1) {
                self.paired
                    .entry(store.to_owned())
                    .or_default()
                    .extend(names.into_iter().map(str::to_owned));
            }
        }
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
