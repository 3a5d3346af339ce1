//! One `Key=value` line of a section, before rendering; every section turns into a list of these.

use crate::value::Value;

/// One key and its value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// The key.
    pub key: String,
    /// The value.
    pub value: Value,
}

impl Entry {
    /// A single-value entry.
    pub fn raw(key: &str, value: impl Into<String>) -> Self {
        Self {
            key: key.to_owned(),
            value: Value::Raw(value.into()),
        }
    }

    /// A word-list entry.
    pub fn words(key: &str, words: impl IntoIterator<Item = impl Into<String>>) -> Self {
        Self {
            key: key.to_owned(),
            value: Value::Words(words.into_iter().map(Into::into).collect()),
        }
    }
}

/// Pushes `key=value` when `value` is set.
pub(crate) fn push_opt(entries: &mut Vec<Entry>, key: &str, value: Option<&String>) {
    if let Some(value) = value {
        entries.push(Entry::raw(key, value.clone()));
    }
}
