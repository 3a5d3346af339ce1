//! `[Service]`: passed to systemd unchanged by Quadlet, which adds its own keys (`ExecStart=`,
//! `Type=notify`, `KillMode=mixed`, ...).

use crate::entry::Entry;

/// The `[Service]` section.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ServiceSection {
    /// Converts to `ExecReload=`: the command `systemctl reload` runs, one word per argument.
    pub exec_reload: Vec<String>,
    /// Further keys (from the spec's escape hatch), in order; one line per value.
    pub extra: Vec<(String, String)>,
}

impl ServiceSection {
    /// The section's lines.
    #[must_use]
    pub fn entries(&self) -> Vec<Entry> {
        let mut entries = Vec::new();
        if !self.exec_reload.is_empty() {
            entries.push(Entry::words("ExecReload", self.exec_reload.iter().cloned()));
        }
        entries.extend(self.extra.iter().map(|(k, v)| Entry::raw(k, v.clone())));
        entries
    }
}
