//! One condition in the shape Kubernetes gives them (`metav1.Condition`): the value the status
//! file's specs and stores carry (how they are worked out: [`crate::status::conditions`]).

use serde::{Deserialize, Serialize};

/// One condition.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Condition {
    /// `Ready`, `Progressing` or `Degraded`.
    #[serde(rename = "type")]
    pub kind: String,
    /// `True`, `False` or `Unknown`.
    pub status: String,
    /// Why, in one CamelCase word (the status reason: `Applied`, `RolledBack`, ...).
    pub reason: String,
    /// For people.
    pub message: String,
    /// When `status` last changed (RFC 3339, UTC).
    pub last_transition_time: String,
    /// The spec's generation it was worked out for (a store's: 0).
    pub observed_generation: u64,
}
