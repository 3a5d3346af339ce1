//! An `openbao` store whose mount is a database secrets engine: each credential of its
//! settings is created (`GET <mount>/creds/<role>`: a new database user, under a lease) at the
//! first fetch that asks for it. The lease is renewed (`sys/leases/renew`) at about two thirds
//! of each grant (62-72 %, jittered so a fleet does not renew in lockstep) while the server
//! grants a whole TTL; once a renewal comes back shorter (the lease's maximum TTL is near) or
//! the lease cannot be renewed, new credentials are created when about a third of the first
//! grant is left, so the rollout to the consumers has that third to pass before the old user
//! ends. A lease the server no longer knows is replaced at once.
//!
//! The value is a JSON object `{"username": ..., "password": ...}` copied from the answer as
//! JSON text (never decoded into memory that is not wiped); its version is the lease ID, its
//! end the lease's current end (a renewal moves it: [`Fetched::Renewed`]).
//!
//! A lease is never revoked here: the reconciler's plan revokes one no container runs with
//! any more ([`super::OpenbaoProvider`]'s `revoke`), after the rollout of its successor passed
//! or its spec was removed.
//!
//! Each lease is also kept in the kernel's keyring ([`crate::host::keyring`]: RAM that is never
//! swapped, gone at the lease's end), with its value, under a name of the server, namespace and
//! mount. A new client (ramlet restarted, even by `SIGKILL`) finds them there: the newest lease
//! of each credential is adopted (renewed, which also proves the server still knows it) instead
//! of creating a new user, so nothing restarts; the others are held, not current, for the plan
//! to revoke once no container runs with them.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::{Arc, Mutex};

use ramlet_specs::model::DatabaseCredential;
use serde::Deserialize;
use serde_json::value::RawValue;
use zeroize::Zeroizing;

use crate::host::keyring::Keep;
use crate::providers::{ErrorKind, Fetched, Lease, ProviderError, Request};
use crate::secrets::{Secret, SecretBytes};

/// The leased credentials one database mount creates, and the leases this client holds.
#[derive(Debug)]
pub(super) struct Leaser {
    mount: String,
    credentials: BTreeMap<String, DatabaseCredential>,
    /// Whether it creates credentials (`ramlet plan`'s does not).
    creates: bool,
    /// By lease ID: what this client holds.
    held: Mutex<BTreeMap<String, Held>>,
    /// Where leases are kept across restarts, and the prefix of their names there.
    keep: Arc<dyn Keep>,
    prefix: String,
    /// By credential name: the lease a restarted ramlet found kept, not adopted yet.
    adoptable: Mutex<BTreeMap<String, String>>,
}

/// A lease as kept across restarts: its value, and what its schedule needs.
#[derive(Deserialize)]
struct Kept<'a> {
    name: String,
    ttl: u64,
    ends: u64,
    #[serde(borrow)]
    value: &'a RawValue,
}

/// One lease this client holds.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Held {
    /// The credential's name in the store's settings.
    name: String,
    /// The first grant, in seconds: the role's TTL, what each renewal asks for.
    ttl: u64,
    /// When it ends (Unix seconds), as the last grant said.
    ends: u64,
    /// When the next step is due (Unix seconds).
    due: u64,
    /// What that step is.
    next: Next,
}

/// What is due for a lease.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Next {
    /// Renew it.
    Renew,
    /// Create new credentials: it cannot be renewed for a whole TTL any more.
    Replace,
}

/// What to ask the server for a request.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Ask {
    /// Nothing: the held lease is not due.
    Nothing,
    /// Create credentials: `GET <path>`.
    Create(String),
    /// Renew a lease: `POST sys/leases/renew` with this body.
    Renew(String, Zeroizing<Vec<u8>>),
    /// Adopt a lease kept by an earlier ramlet: renew it (the server still knows it), then
    /// serve its kept value.
    Adopt(String, Zeroizing<Vec<u8>>),
}

/// `<mount>/creds/<role>`'s answer, the part ramlet reads; the username and password as the
/// JSON text they came as.
#[derive(Deserialize)]
struct Created<'a> {
    lease_id: String,
    lease_duration: u64,
    renewable: bool,
    #[serde(borrow)]
    data: CreatedData<'a>,
}

#[derive(Deserialize)]
struct CreatedData<'a> {
    #[serde(borrow)]
    username: &'a RawValue,
    #[serde(borrow)]
    password: &'a RawValue,
}

/// `sys/leases/renew`'s answer.
#[derive(Deserialize)]
struct Renewed {
    lease_duration: u64,
    renewable: bool,
}

/// The path a renewal posts to.
pub(super) const RENEW: &str = "sys/leases/renew";
/// The path a revocation posts to.
pub(super) const REVOKE: &str = "sys/leases/revoke";

impl Leaser {
    /// The leaser of `credentials` from the database engine at `mount` of the server and
    /// namespace `scope`, keeping its leases in `keep`. One that `creates` (the agent's) takes
    /// up the leases an earlier ramlet kept there; one that does not (`ramlet plan`'s) answers
    /// a fetch of what it does not hold with an error that says so.
    pub(super) fn new(
        mount: String,
        credentials: BTreeMap<String, DatabaseCredential>,
        creates: bool,
        scope: &str,
        keep: Arc<dyn Keep>,
    ) -> Self {
        let prefix = format!("ramlet:lease:{scope}|{mount}:");
        let leaser = Self {
            mount,
            credentials,
            creates,
            held: Mutex::new(BTreeMap::new()),
            keep,
            prefix,
            adoptable: Mutex::new(BTreeMap::new()),
        };
        if creates {
            leaser.take_up();
        }
        leaser
    }

    /// Holds the leases an earlier ramlet kept, the newest of each credential adoptable.
    fn take_up(&self) {
        let now = crate::util::unix_now();
        let mut held = self.held();
        let mut adoptable = self.adoptable();
        for (name, payload) in self.keep.load(&self.prefix) {
            let Some(id) = name.strip_prefix(&self.prefix) else {
                continue;
            };
            let Ok(kept) = serde_json::from_slice::<Kept>(&payload) else {
                continue;
            };
            if kept.ends <= now || !self.credentials.contains_key(&kept.name) {
                continue;
            }
            let newest = adoptable
                .get(&kept.name)
                .and_then(|other| held.get(other))
                .is_none_or(|other| other.ends < kept.ends);
            if newest {
                adoptable.insert(kept.name.clone(), id.to_owned());
            }
            tracing::info!(lease = %id, credential = %kept.name, expires = %crate::util::rfc3339(kept.ends), "a lease kept by an earlier ramlet found");
            held.insert(
                id.to_owned(),
                Held {
                    name: kept.name,
                    ttl: kept.ttl,
                    ends: kept.ends,
                    due: now,
                    next: Next::Renew,
                },
            );
        }
    }

    fn adoptable(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, String>> {
        crate::util::lock(&self.adoptable)
    }

    /// The lease's name in the keep.
    fn kept_name(&self, id: &str) -> String {
        format!("{}{id}", self.prefix)
    }

    fn held(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, Held>> {
        crate::util::lock(&self.held)
    }

    /// What to ask the server for `request`.
    pub(super) fn ask(&self, request: &Request) -> Result<Ask, ProviderError> {
        let name = &request.name;
        let credential = super::made::one_of(
            &self.credentials,
            request,
            "database.credentials name no such credential",
            "a leased credential has one version, the one created last",
        )?;
        let now = crate::util::unix_now();
        let held = request
            .known
            .as_ref()
            .and_then(|id| Some((id, self.held().get(id)?.clone())));
        match held {
            Some((_, held)) if now < held.due => return Ok(Ask::Nothing),
            Some((id, held)) if held.next == Next::Renew => {
                let body = serde_json::json!({"lease_id": id, "increment": held.ttl});
                return Ok(Ask::Renew(
                    id.clone(),
                    Zeroizing::new(body.to_string().into_bytes()),
                ));
            }
            _ => {}
        }
        if let Some(id) = self.adoptable().get(name) {
            let body = serde_json::json!({"lease_id": id, "increment": self.held().get(id).map_or(0, |h| h.ttl)});
            return Ok(Ask::Adopt(
                id.clone(),
                Zeroizing::new(body.to_string().into_bytes()),
            ));
        }
        if !self.creates {
            return Err(ProviderError::new(
                ErrorKind::Unavailable,
                format!(
                    "{name}: a leased credential is created by the running agent, never by `ramlet plan` (`ramlet status` shows the lease in use)"
                ),
            ));
        }
        Ok(Ask::Create(self.create_path(credential)))
    }

    fn create_path(&self, credential: &DatabaseCredential) -> String {
        format!("{}/creds/{}", self.mount, credential.role)
    }

    /// The path that creates `name`'s credentials.
    pub(super) fn path_of(&self, name: &str) -> Option<String> {
        self.credentials.get(name).map(|c| self.create_path(c))
    }

    /// The credentials in `answer` to the call at `path`, made for `name`, as a secret;
    /// remembers the lease.
    pub(super) fn created(
        &self,
        name: &str,
        answer: &[u8],
        path: &str,
    ) -> Result<Fetched, ProviderError> {
        let created = super::parse::<Created>(answer, path)?;
        if created.lease_id.is_empty() {
            return Err(ProviderError::unavailable(format!(
                "{path}: the answer has no lease (is the mount a database engine?)"
            )));
        }
        let mut value = Zeroizing::new(String::new());
        let _ = write!(
            value,
            "{{\"username\":{},\"password\":{}}}",
            created.data.username.get(),
            created.data.password.get()
        );
        let now = crate::util::unix_now();
        let ttl = created.lease_duration;
        let (due, next) = schedule(now, ttl, ttl, created.renewable);
        let ends = now + ttl;
        let mut kept = Zeroizing::new(String::new());
        let _ = write!(
            kept,
            "{{\"name\":{},\"ttl\":{ttl},\"ends\":{ends},\"value\":{}}}",
            serde_json::Value::String(name.to_owned()),
            value.as_str()
        );
        if let Err(error) = self
            .keep
            .put(&self.kept_name(&created.lease_id), kept.as_bytes(), ends)
        {
            tracing::warn!(lease = %created.lease_id, %error, "the lease is not kept across a restart of ramlet: a new ramlet creates new credentials");
        }
        let mut held = self.held();
        // Forget leases that have ended: the server has revoked them.
        held.retain(|_, lease| lease.ends > now);
        held.insert(
            created.lease_id.clone(),
            Held {
                name: name.to_owned(),
                ttl,
                ends,
                due,
                next,
            },
        );
        tracing::info!(
            credential = path,
            lease = %created.lease_id,
            expires = %crate::util::rfc3339(ends),
            next = ?next,
            at = %crate::util::rfc3339(due),
            "leased credential created"
        );
        Ok(Fetched::New(Secret {
            bytes: SecretBytes::new(std::mem::take(&mut *value).into_bytes()),
            version: created.lease_id,
            expires: Some(ends),
        }))
    }

    /// The renewal of lease `id` answered `answer`: its new end.
    pub(super) fn renewed(&self, id: &str, answer: &[u8]) -> Result<Fetched, ProviderError> {
        let renewed = super::parse::<Renewed>(answer, RENEW)?;
        let now = crate::util::unix_now();
        let mut held = self.held();
        let Some(lease) = held.get_mut(id) else {
            // Revoked while the renewal was under way: nothing holds it.
            return Ok(Fetched::Unchanged);
        };
        let (due, next) = schedule(now, lease.ttl, renewed.lease_duration, renewed.renewable);
        lease.ends = now + renewed.lease_duration;
        lease.due = due;
        lease.next = next;
        self.keep.extend(&self.kept_name(id), lease.ends);
        tracing::info!(
            lease = %id,
            expires = %crate::util::rfc3339(lease.ends),
            next = ?next,
            at = %crate::util::rfc3339(due),
            "lease renewed"
        );
        Ok(Fetched::Renewed(lease.ends))
    }

    /// The renewal of lease `id`, kept by an earlier ramlet, answered `answer`: its kept value,
    /// as the secret it is again.
    pub(super) fn adopted(&self, id: &str, answer: &[u8]) -> Result<Fetched, ProviderError> {
        let Fetched::Renewed(ends) = self.renewed(id, answer)? else {
            return Err(ProviderError::unavailable(format!(
                "{id}: the lease was revoked while it was adopted"
            )));
        };
        let name = self.kept_name(id);
        let payload = self
            .keep
            .load(&name)
            .into_iter()
            .find(|(kept, _)| *kept == name)
            .map(|(_, payload)| payload);
        let kept = payload
            .as_deref()
            .and_then(|p| serde_json::from_slice::<Kept>(p).ok());
        let Some(kept) = kept else {
            self.lost(id);
            return Err(ProviderError::unavailable(format!(
                "{id}: the kept lease's value is gone; new credentials come at the next refresh"
            )));
        };
        self.adoptable().remove(&kept.name);
        tracing::info!(lease = %id, credential = %kept.name, expires = %crate::util::rfc3339(ends), "lease adopted: the credentials in use stay");
        Ok(Fetched::New(Secret {
            bytes: SecretBytes::new(kept.value.get().as_bytes().to_vec()),
            version: id.to_owned(),
            expires: Some(ends),
        }))
    }

    /// The server no longer knows lease `id` (revoked, ended): forgets it.
    pub(super) fn lost(&self, id: &str) {
        self.adoptable().retain(|_, lease| lease != id);
        self.keep.forget(&self.kept_name(id));
        if self.held().remove(id).is_some() {
            tracing::warn!(lease = %id, "the server no longer knows the lease; creating new credentials");
        }
    }

    /// Forgets lease `id`: revoked.
    pub(super) fn revoked(&self, id: &str) {
        self.adoptable().retain(|_, lease| lease != id);
        self.keep.forget(&self.kept_name(id));
        self.held().remove(id);
    }

    /// When the first held lease's next step is due (Unix seconds).
    pub(super) fn next_step(&self) -> Option<u64> {
        self.held().values().map(|lease| lease.due).min()
    }

    /// The leases this client holds.
    pub(super) fn leases(&self) -> Vec<Lease> {
        self.held()
            .iter()
            .map(|(id, held)| Lease {
                name: held.name.clone(),
                id: id.clone(),
                ends: held.ends,
            })
            .collect()
    }
}

/// When the next step for a lease granted `grant` seconds now is due, and what it is: a
/// renewal at two thirds of the grant while the server grants the whole `ttl`, else new
/// credentials when about a third of `ttl` is left (at once if less is).
fn schedule(now: u64, ttl: u64, grant: u64, renewable: bool) -> (u64, Next) {
    #[allow(
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        clippy::cast_precision_loss
    )] // lives in seconds, well within f64's exact integers
    let part = |seconds: u64, fraction: f64| (seconds as f64 * fraction) as u64;
    let fraction = 0.62 + 0.10 * crate::util::random_unit();
    if renewable && grant >= ttl {
        (now + part(grant, fraction), Next::Renew)
    } else {
        let left = part(ttl, 1.0 - fraction);
        (now + grant.saturating_sub(left), Next::Replace)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::host::keyring::Memory;
    use ramlet_specs::model::SecretVersion;

    fn leaser(creates: bool) -> Leaser {
        kept_in(creates, Arc::new(Memory::default()))
    }

    fn kept_in(creates: bool, keep: Arc<Memory>) -> Leaser {
        Leaser::new(
            "database".into(),
            BTreeMap::from([(
                "app".into(),
                DatabaseCredential {
                    role: "app-rw".into(),
                },
            )]),
            creates,
            "http://127.0.0.1:8200|",
            keep,
        )
    }

    fn ask(name: &str, known: Option<&str>) -> Request {
        Request {
            name: name.into(),
            version: SecretVersion::Latest,
            known: known.map(Into::into),
        }
    }

    /// An answer shaped as OpenBao's.
    fn created(lease: &str, ttl: u64, renewable: bool) -> String {
        serde_json::json!({
            "request_id": "r",
            "lease_id": lease,
            "lease_duration": ttl,
            "renewable": renewable,
            "data": {"username": "v-token-app-rw-xyz", "password": "pa\"ss\\word"},
        })
        .to_string()
    }

    fn new_secret(fetched: Fetched) -> Secret {
        let Fetched::New(secret) = fetched else {
            panic!("not new: {fetched:?}")
        };
        secret
    }

    /// Created credentials are the username and password as sent (escapes intact), the lease
    /// ID their version, the lease's end their end; held until two thirds of the grant, then
    /// renewed for the whole TTL, with the new end reported.
    #[test]
    fn credentials_are_held_and_their_lease_renewed_at_two_thirds() {
        let leaser = leaser(true);
        assert_eq!(
            leaser.ask(&ask("app", None)).unwrap(),
            Ask::Create("database/creds/app-rw".into())
        );
        let now = crate::util::unix_now();
        let secret = new_secret(
            leaser
                .created(
                    "app",
                    created("database/creds/app-rw/L1", 3000, true).as_bytes(),
                    "database/creds/app-rw",
                )
                .unwrap(),
        );
        assert_eq!(secret.version, "database/creds/app-rw/L1");
        assert!(
            secret
                .expires
                .is_some_and(|e| (now + 3000..now + 3002).contains(&e))
        );
        let value: serde_json::Value = serde_json::from_slice(secret.bytes.expose()).unwrap();
        assert_eq!(value["username"], "v-token-app-rw-xyz");
        assert_eq!(value["password"], "pa\"ss\\word");
        assert_eq!(
            leaser
                .ask(&ask("app", Some("database/creds/app-rw/L1")))
                .unwrap(),
            Ask::Nothing
        );
        let held = leaser.held()["database/creds/app-rw/L1"].clone();
        assert_eq!(held.next, Next::Renew);
        assert!(
            (now + 1860..now + 2162).contains(&held.due),
            "{}",
            held.due - now
        );
        // Due: a renewal for the whole TTL.
        leaser
            .held()
            .get_mut("database/creds/app-rw/L1")
            .unwrap()
            .due = now;
        let Ask::Renew(id, body) = leaser
            .ask(&ask("app", Some("database/creds/app-rw/L1")))
            .unwrap()
        else {
            panic!("no renewal")
        };
        assert_eq!(id, "database/creds/app-rw/L1");
        let body: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(body["increment"], 3000);
        let renewed = leaser
            .renewed(&id, br#"{"lease_id": "database/creds/app-rw/L1", "lease_duration": 3000, "renewable": true}"#)
            .unwrap();
        assert!(matches!(renewed, Fetched::Renewed(e) if e >= now + 3000));
        assert_eq!(leaser.leases().len(), 1);
    }

    /// A renewal the maximum TTL cuts short, or a lease that cannot be renewed, schedules new
    /// credentials when about a third of the TTL is left; a lease the server lost is created
    /// anew at once; an unknown lease (another client's) too.
    #[test]
    fn credentials_are_replaced_before_their_lease_cannot_be_renewed() {
        let leaser = leaser(true);
        let now = crate::util::unix_now();
        leaser
            .created("app", created("L1", 3000, true).as_bytes(), "p")
            .unwrap();
        leaser.held().get_mut("L1").unwrap().due = now;
        leaser
            .renewed("L1", br#"{"lease_duration": 2000, "renewable": true}"#)
            .unwrap();
        let held = leaser.held()["L1"].clone();
        assert_eq!(held.next, Next::Replace);
        // A third of the TTL (840-1140 s) before the end at now + 2000.
        assert!(
            (now + 860..now + 1162).contains(&held.due),
            "{}",
            held.due - now
        );
        leaser.held().get_mut("L1").unwrap().due = now;
        assert!(matches!(
            leaser.ask(&ask("app", Some("L1"))).unwrap(),
            Ask::Create(_)
        ));
        // Not renewable: replaced, never renewed.
        leaser
            .created("app", created("L2", 300, false).as_bytes(), "p")
            .unwrap();
        assert_eq!(leaser.held()["L2"].next, Next::Replace);
        leaser.lost("L2");
        assert!(matches!(
            leaser.ask(&ask("app", Some("L2"))).unwrap(),
            Ask::Create(_)
        ));
        assert!(matches!(
            leaser.ask(&ask("app", Some("L9"))).unwrap(),
            Ask::Create(_)
        ));
    }

    /// `ramlet plan` creates nothing; an unknown name or a pinned version is refused; an
    /// answer that is not credentials says where, never what.
    #[test]
    fn a_plan_creates_nothing_and_a_bad_answer_never_shows_the_password() {
        let error = leaser(false).ask(&ask("app", None)).unwrap_err();
        assert!(
            error.to_string().contains("never by `ramlet plan`"),
            "{error}"
        );
        let error = leaser(true).ask(&ask("ro", None)).unwrap_err();
        assert_eq!(error.kind(), ErrorKind::NotFound);
        let mut pinned = ask("app", None);
        pinned.version = SecretVersion::Number(2);
        assert_eq!(
            leaser(true).ask(&pinned).unwrap_err().kind(),
            ErrorKind::Misconfigured
        );
        let error = leaser(true)
            .created(
                "app",
                br#"{"lease_id": "L", "data": {"password": "SECRET"}}"#,
                "database/creds/app-rw",
            )
            .unwrap_err();
        assert!(
            error.to_string().contains("database/creds/app-rw"),
            "{error}"
        );
        assert!(!error.to_string().contains("SECRET"), "{error}");
    }

    /// A new client finds the leases an earlier one kept: the newest of a credential is adopted
    /// (renewed, then served with its kept value and lease as version, so nothing restarts),
    /// an older one is held, not adoptable, for the plan to revoke; a revoked or lost lease is
    /// no longer kept; `ramlet plan`'s client takes up nothing.
    #[test]
    fn a_new_client_adopts_the_newest_kept_lease_and_holds_the_others() {
        let keep = Arc::new(Memory::default());
        let first = kept_in(true, Arc::clone(&keep));
        first
            .created("app", created("L1", 300, true).as_bytes(), "p")
            .unwrap();
        first
            .created("app", created("L2", 600, true).as_bytes(), "p")
            .unwrap();
        assert!(
            keep.ends("ramlet:lease:http://127.0.0.1:8200||database:L2")
                .is_some()
        );
        drop(first);

        assert!(kept_in(false, Arc::clone(&keep)).leases().is_empty());
        let second = kept_in(true, Arc::clone(&keep));
        assert_eq!(second.leases().len(), 2);
        let Ask::Adopt(id, body) = second.ask(&ask("app", None)).unwrap() else {
            panic!("not adopted")
        };
        assert_eq!(id, "L2");
        let body: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(body["increment"], 600);
        let secret = new_secret(
            second
                .adopted("L2", br#"{"lease_duration": 600, "renewable": true}"#)
                .unwrap(),
        );
        assert_eq!(secret.version, "L2");
        let value: serde_json::Value = serde_json::from_slice(secret.bytes.expose()).unwrap();
        assert_eq!(value["password"], "pa\"ss\\word");
        // Adopted: held and renewed on schedule, not adopted again.
        assert_eq!(second.ask(&ask("app", Some("L2"))).unwrap(), Ask::Nothing);
        assert!(matches!(
            second.ask(&ask("app", None)).unwrap(),
            Ask::Create(_)
        ));
        second.revoked("L1");
        assert!(
            keep.ends("ramlet:lease:http://127.0.0.1:8200||database:L1")
                .is_none()
        );
        second.lost("L2");
        assert!(second.leases().is_empty());
        assert!(kept_in(true, keep).leases().is_empty());
    }
}
