//! `[Install]`: Quadlet honours only `Alias=`, `WantedBy=`, `RequiredBy=` and `UpheldBy=`.
//!
//! ramlet's own units leave it empty: ramlet starts each unit itself once its secrets are in
//! place, and the runtime unit directory is empty after a reboot anyway.

use crate::entry::Entry;

/// The `[Install]` section.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct InstallSection {
    /// Converts to `WantedBy=`, one line per target.
    pub wanted_by: Vec<String>,
}

impl InstallSection {
    /// The section's lines.
    #[must_use]
    pub fn entries(&self) -> Vec<Entry> {
        self.wanted_by
            .iter()
            .map(|t| Entry::raw("WantedBy", t.clone()))
            .collect()
    }
}
