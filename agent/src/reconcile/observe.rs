//! Observe: the facts a plan is made from, gathered in one step: ramlet's unit files (listed
//! by the caller), the units' states (one batched systemd call), the specs that have volumes,
//! and the work earlier reconciles still owe.

use std::collections::{BTreeMap, BTreeSet};

use super::plan::{Desired, Observed};
use super::{Reconciler, service};

impl Reconciler {
    /// What the host holds: ramlet's units, their states, the specs with volumes.
    pub(super) async fn observe(
        &self,
        units: BTreeMap<String, String>,
        desired: &[Desired],
    ) -> Observed {
        let mut observed = Observed {
            units,
            owed: self.owed.clone(),
            ..Observed::default()
        };
        observed.volume_specs = self.volumes.specs().unwrap_or_default();
        let names: BTreeSet<String> = desired
            .iter()
            .map(|d| d.name.clone())
            .chain(observed.units.keys().cloned())
            .collect();
        let services: Vec<String> = names.iter().map(|n| service(n)).collect();
        observed.states = self
            .units
            .states(&services)
            .await
            .into_iter()
            .filter_map(|(unit, state)| {
                unit.strip_suffix(".service")
                    .map(|name| (name.to_owned(), state))
            })
            .collect();
        observed
    }
}
