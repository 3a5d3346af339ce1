//! `[Unit]`: passed to systemd unchanged by Quadlet.

use crate::entry::{Entry, push_opt};

/// The `[Unit]` section.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UnitSection {
    /// Converts to `Description=`.
    pub description: Option<String>,
    /// Further keys (from the spec's escape hatch), in order; one line per value.
    pub extra: Vec<(String, String)>,
}

impl UnitSection {
    /// The section's lines.
    #[must_use]
    pub fn entries(&self) -> Vec<Entry> {
        let mut entries = Vec::new();
        push_opt(&mut entries, "Description", self.description.as_ref());
        entries.extend(self.extra.iter().map(|(k, v)| Entry::raw(k, v.clone())));
        entries
    }
}
