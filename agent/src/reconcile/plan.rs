//! What a reconcile decided ([`super::decide`]): the actions in the order they must run, each
//! job with its typed [`Cause`], each spec's verdict (phase, reason, message), the specs left
//! exactly as they are, the work the plan owes once it starts, and whether the loop should try
//! again sooner than the next refresh. Plain data, no IO.
//!
//! Order: take the `ramlet sync --retry` requests and seal the previous files of the rotations
//! starting (both after the journal that records them), fill volumes, write unit files, stop
//! and unlink units whose spec is gone, one daemon-reload for the whole batch, start / restart
//! / reload units, unmount and wipe the volumes of removed specs, then forget the sealed files
//! of rotations that ended and start the health checks that are due.

use std::collections::{BTreeMap, BTreeSet};

use super::owed::Owed;
use crate::drivers::Job;
use crate::retry::Requeue;
use crate::status::{Phase, Reason, SecretInUse};

/// How a container takes a secret rotation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnRotation {
    /// Restart the unit.
    Restart,
    /// Reload the unit (sends the spec's signal).
    Reload,
    /// Leave the unit alone.
    Nothing,
}

/// One step of a plan.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Action {
    /// Write the volumes of a spec.
    WriteVolumes(String),
    /// Write the unit file of a spec.
    WriteUnit(String),
    /// Delete a removed spec's unit file (after its unit stopped).
    RemoveUnit(String),
    /// One daemon-reload.
    DaemonReload,
    /// A job on a spec's unit: stop (removed spec), start, restart or reload.
    Job(Job, String),
    /// Unmount and wipe a removed spec's volumes.
    RemoveVolumes(String),
    /// Put back the files a spec ran with before a rotation that failed its health check.
    RestoreVolumes(String),
    /// Take (delete) the `ramlet sync --retry` request of a spec: the journal written before
    /// it no longer refuses that spec's versions.
    ConsumeRetry(String),
    /// Seal the files a spec runs with now to the host, before its rotation starts: what a
    /// ramlet killed before the health check passed puts back (see [`super::previous`]).
    SealPrevious(String),
    /// Remove the sealed previous files of a spec whose rotation is over.
    ForgetSealed(String),
    /// Start a spec's health check (it runs beside the reconciles; a later one reads it).
    Check(String),
    /// Revoke a lease of a secret (its version): no container runs with it any more.
    Revoke(crate::secrets::SecretId, String),
}

impl Action {
    /// What it does, as one word (`write-volumes`, `restart`, ...): logs and metrics.
    #[must_use]
    pub fn verb(&self) -> &'static str {
        match self {
            Self::WriteVolumes(_) => "write-volumes",
            Self::WriteUnit(_) => "write-unit",
            Self::RemoveUnit(_) => "remove-unit",
            Self::DaemonReload => "daemon-reload",
            Self::Job(job, _) => job.as_str(),
            Self::RemoveVolumes(_) => "remove-volumes",
            Self::RestoreVolumes(_) => "restore-volumes",
            Self::ConsumeRetry(_) => "consume-retry",
            Self::SealPrevious(_) => "seal-previous",
            Self::ForgetSealed(_) => "forget-sealed",
            Self::Check(_) => "health-check",
            Self::Revoke(..) => "revoke-lease",
        }
    }

    /// The spec it is about (none for the daemon-reload).
    #[must_use]
    pub fn spec(&self) -> Option<&str> {
        match self {
            Self::DaemonReload | Self::Revoke(..) => None,
            Self::WriteVolumes(name)
            | Self::WriteUnit(name)
            | Self::RemoveUnit(name)
            | Self::Job(_, name)
            | Self::RemoveVolumes(name)
            | Self::RestoreVolumes(name)
            | Self::ConsumeRetry(name)
            | Self::SealPrevious(name)
            | Self::ForgetSealed(name)
            | Self::Check(name) => Some(name),
        }
    }

    /// Why it runs, in words, for its log line; a job's words come from its [`Cause`].
    #[must_use]
    pub fn why(&self, cause: Option<Cause>) -> &'static str {
        match self {
            Self::WriteVolumes(_) => "new secret versions",
            Self::WriteUnit(_) => "its unit file is new or changed",
            Self::RemoveUnit(_) | Self::RemoveVolumes(_) => "its spec is gone",
            Self::RestoreVolumes(_) => "the new versions failed the health check",
            Self::DaemonReload => "unit files changed",
            Self::Job(..) => cause.unwrap_or(Cause::Owed).why(),
            Self::ConsumeRetry(_) => {
                "`ramlet sync --retry` asked to try its refused versions again"
            }
            Self::SealPrevious(_) => "a health-gated rotation starts",
            Self::ForgetSealed(_) => "its rotation is over",
            Self::Check(_) => "a rotation waits on what its health check says",
            Self::Revoke(..) => "no container runs with it any more",
        }
    }

    /// Whether it is bookkeeping around a spec rather than a change to it: its failure is
    /// logged and fails nothing (a `--retry` request left in place is taken next time; files
    /// not sealed are still held in memory; a check not started is started next time).
    #[must_use]
    pub fn is_upkeep(&self) -> bool {
        matches!(
            self,
            Self::ConsumeRetry(_)
                | Self::SealPrevious(_)
                | Self::ForgetSealed(_)
                | Self::Check(_)
                | Self::Revoke(..)
        )
    }
}

/// Why a job runs on a unit: worked out once, with the job, by [`super::decide`]; the metrics,
/// the logs and `ramlet plan` all say this one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Cause {
    /// A new spec, or its unit file changes.
    Spec,
    /// Its secrets changed (a rotation).
    Rotation,
    /// A volume's medium or size changes: a new mount, seen only after a restart.
    Remount,
    /// The unit is not running.
    Down,
    /// An earlier reconcile (or an earlier ramlet) did not finish it.
    Owed,
    /// systemd did not say how the unit is; a start does nothing to a running unit.
    Unknown,
    /// A stop: its spec is gone, or this host is no longer selected.
    Removed,
    /// The new versions failed the health check: the previous files are back.
    Rollback,
    /// A stop: a secret it runs with ends within seconds and was not renewed.
    Expiring,
}

impl Cause {
    /// One stable word (metrics' `cause` label).
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Spec => "spec",
            Self::Rotation => "rotation",
            Self::Remount => "remount",
            Self::Down => "down",
            Self::Owed => "owed",
            Self::Unknown => "unknown",
            Self::Removed => "removed",
            Self::Rollback => "rollback",
            Self::Expiring => "expiring",
        }
    }

    /// In words, for a log line (`web: restart web.service (its secrets changed)`).
    #[must_use]
    pub fn why(self) -> &'static str {
        match self {
            Self::Spec => "its unit file is new or changed",
            Self::Rotation => "its secrets changed",
            Self::Remount => "a volume's medium or size changed",
            Self::Down => "the unit was not running",
            Self::Owed => "an earlier reconcile owed it",
            Self::Unknown => "systemd did not say how the unit is",
            Self::Removed => "its spec is gone",
            Self::Rollback => "the new versions failed the health check",
            Self::Expiring => "a secret it runs with ends within seconds and was not renewed",
        }
    }
}

/// What the decision says of one spec before anything is applied: its phase, why, for people,
/// and the secret versions it asks for. The status step settles it with what the apply and
/// systemd say after.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    /// `Progressing` for a spec to apply; `Degraded` or `Failed` for one that cannot be.
    pub phase: Phase,
    /// Why.
    pub reason: Reason,
    /// For people (empty when applied).
    pub message: String,
    /// The secret versions it runs with, as far as they are known.
    pub versions: Vec<SecretInUse>,
}

/// One reconcile's decision.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Plan {
    /// The actions, in the order they run.
    pub actions: Vec<Action>,
    /// Each job's cause, by spec name (a plan has at most one job per spec).
    pub causes: BTreeMap<String, Cause>,
    /// Each selected spec's verdict, and each running spec whose file broke, by name.
    pub specs: BTreeMap<String, Verdict>,
    /// Specs left exactly as they run (their spec or secrets have a problem now).
    pub keep: BTreeSet<String>,
    /// What the journal must hold before the first action: every start, restart and reload of
    /// the plan (their `since` is filled by the apply with the invocation each unit runs under
    /// then), the daemon-reload, and the debts of specs left alone this time.
    pub owed: Owed,
    /// The health-checked specs whose files this plan leaves at what they ask for, outside
    /// any rotation: held from now on as what their next rotation puts back if it fails.
    pub hold: BTreeSet<String>,
    /// The specs whose health check is due (running or started by this plan); a running
    /// check of any other spec is no longer wanted.
    pub checks: BTreeSet<String>,
    /// When the loop comes back: only for a change ([`Requeue::AwaitChange`]), when a
    /// rollout's health check is due ([`Requeue::After`]), or with backoff when something
    /// may pass by itself (systemd did not answer).
    pub requeue: Requeue,
}

impl Plan {
    /// Every job of the plan with its cause, in order (metrics).
    #[must_use]
    pub fn jobs(&self) -> Vec<(Job, Cause)> {
        self.jobs_with_names()
            .into_iter()
            .map(|(_, job, cause)| (job, cause))
            .collect()
    }

    /// Every job of the plan with its spec and cause, in order.
    #[must_use]
    pub fn jobs_with_names(&self) -> Vec<(&str, Job, Cause)> {
        self.actions
            .iter()
            .filter_map(|a| match a {
                Action::Job(job, name) => Some((
                    name.as_str(),
                    *job,
                    self.causes.get(name).copied().unwrap_or(Cause::Owed),
                )),
                _ => None,
            })
            .collect()
    }
}
