//! An `openbao` store whose mount is a PKI engine: each certificate of its settings is issued
//! (`POST <mount>/issue/<role>`) at the first fetch that asks for it, and issued again, a new
//! key with it, once about two thirds of its life are gone (jittered between 62 % and 72 %, so
//! a fleet does not renew in lockstep). A fetch before that answers `Unchanged`: the held
//! certificate is the current version.
//!
//! The value is a JSON object of PEM texts, `certificate`, `private_key`, `issuing_ca` and
//! `ca_chain` (the chain's certificates one after the other), and the `serial_number`, so a
//! volume's files pick their part with `property` and are written in one swap; its version is
//! the serial number and its end is the certificate's `expiration`. The PEM texts are copied
//! from the answer as JSON text, never decoded into memory that is not wiped.
//!
//! Each certificate issued is also kept in the kernel's keyring ([`crate::host::keyring`]: RAM
//! that is never swapped, gone at the certificate's end) with its settings and renewal time, so
//! a new client (ramlet restarted, even by `SIGKILL`) serves the one it finds there, while its
//! settings are the same and it is not due, instead of issuing another and restarting its
//! consumers. Changed settings issue anew.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::{Arc, Mutex};

use ramlet_specs::model::Certificate;
use serde::Deserialize;
use serde_json::value::RawValue;
use zeroize::Zeroizing;

use crate::host::keyring::Keep;
use crate::providers::{ErrorKind, Fetched, ProviderError, Request};
use crate::secrets::{Secret, SecretBytes};

/// The certificates one PKI mount issues, and what this client issued of them.
#[derive(Debug)]
pub(super) struct Issuer {
    mount: String,
    certificates: BTreeMap<String, Certificate>,
    /// Whether it has certificates issued (`ramlet plan`'s does not).
    issues: bool,
    /// By serial number: when each certificate this client issued is due again, and when it
    /// ends (Unix seconds).
    due: Mutex<BTreeMap<String, (u64, u64)>>,
    /// Where certificates are kept across restarts, and the prefix of their names there.
    keep: Arc<dyn Keep>,
    prefix: String,
    /// By certificate name: the serial of the last one issued (or found kept).
    last: Mutex<BTreeMap<String, String>>,
}

/// A certificate as kept across restarts.
#[derive(Deserialize)]
struct Kept<'a> {
    name: String,
    settings: serde_json::Value,
    due: u64,
    ends: u64,
    #[serde(borrow)]
    value: &'a RawValue,
}

/// What to do for a request.
#[derive(Debug)]
pub(super) enum Ask {
    /// Nothing: the held certificate is not due.
    Nothing,
    /// Serve the certificate an earlier ramlet kept.
    Kept(Fetched),
    /// Issue one.
    Issue(IssueCall),
}

/// The call that issues a certificate: its path and its JSON body.
pub(super) type IssueCall = (String, Zeroizing<Vec<u8>>);

/// `<mount>/issue/<role>`'s answer, the part ramlet reads; PEM texts as the JSON text they
/// came as.
#[derive(Deserialize)]
struct Issued<'a> {
    #[serde(borrow)]
    data: IssuedData<'a>,
}

#[derive(Deserialize)]
struct IssuedData<'a> {
    #[serde(borrow)]
    certificate: &'a RawValue,
    #[serde(borrow)]
    private_key: &'a RawValue,
    #[serde(borrow)]
    issuing_ca: &'a RawValue,
    #[serde(borrow, default)]
    ca_chain: Vec<&'a RawValue>,
    serial_number: String,
    expiration: u64,
}

impl Issuer {
    /// The issuer of `certificates` from the PKI engine at `mount` of the server and namespace
    /// `scope`, keeping what it issues in `keep`; one that `issues` nothing (`ramlet plan`'s)
    /// answers every fetch with an error that says so.
    pub(super) fn new(
        mount: String,
        certificates: BTreeMap<String, Certificate>,
        issues: bool,
        scope: &str,
        keep: Arc<dyn Keep>,
    ) -> Self {
        let prefix = format!("ramlet:certificate:{scope}|{mount}:");
        Self {
            mount,
            certificates,
            issues,
            due: Mutex::new(BTreeMap::new()),
            keep,
            prefix,
            last: Mutex::new(BTreeMap::new()),
        }
    }

    fn last(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, String>> {
        crate::util::lock(&self.last)
    }

    /// The certificate `name` an earlier ramlet kept, if its settings are still these and it
    /// is not due: remembered as held, and served as a new value.
    fn kept(&self, name: &str, certificate: &Certificate, now: u64) -> Option<Fetched> {
        let settings = serde_json::to_value(certificate).ok()?;
        let kept = self.keep.load(&format!("{}{name}:", self.prefix));
        let (key, payload) = kept
            .iter()
            .max_by_key(|(_, p)| serde_json::from_slice::<Kept>(p).map_or(0, |k| k.ends))?;
        let found = serde_json::from_slice::<Kept>(payload).ok()?;
        // The name is `<prefix><name>:<serial>`; a serial has colons of its own.
        let serial = key
            .strip_prefix(&format!("{}{name}:", self.prefix))?
            .to_owned();
        if found.name != name || found.settings != settings || now >= found.due {
            return None;
        }
        crate::util::lock(&self.due).insert(serial.clone(), (found.due, found.ends));
        self.last().insert(name.to_owned(), serial.clone());
        tracing::info!(certificate = %name, serial = %serial, expires = %crate::util::rfc3339(found.ends), "certificate kept by an earlier ramlet taken up: no new one issued");
        Some(Fetched::New(Secret {
            bytes: SecretBytes::new(found.value.get().as_bytes().to_vec()),
            version: serial,
            expires: Some(found.ends),
        }))
    }

    /// What to do for `request`: nothing (the held certificate is not due), serve a kept one,
    /// or issue one.
    pub(super) fn ask(&self, request: &Request) -> Result<Ask, ProviderError> {
        let name = &request.name;
        let certificate = super::made::one_of(
            &self.certificates,
            request,
            "pki.certificates name no such certificate",
            "a certificate has one version, the one issued last",
        )?;
        let now = crate::util::unix_now();
        if let Some(serial) = &request.known
            && crate::util::lock(&self.due)
                .get(serial)
                .is_some_and(|(due, _)| now < *due)
        {
            return Ok(Ask::Nothing);
        }
        if request.known.is_none()
            && self.issues
            && let Some(kept) = self.kept(name, certificate, now)
        {
            return Ok(Ask::Kept(kept));
        }
        if !self.issues {
            return Err(ProviderError::new(
                ErrorKind::Unavailable,
                format!(
                    "{name}: a certificate is issued by the running agent, never by `ramlet plan` (`ramlet status` shows the serial in use)"
                ),
            ));
        }
        let join = |items: Vec<String>| items.join(",");
        let body = serde_json::json!({
            "common_name": certificate.common_name,
            "alt_names": join(certificate.alt_names.clone()),
            "ip_sans": join(certificate.ip_sans.iter().map(ToString::to_string).collect()),
            "ttl": format!("{}s", certificate.ttl.as_secs()),
            "format": "pem",
            "private_key_format": "pem",
        });
        let path = format!("{}/issue/{}", self.mount, certificate.role);
        Ok(Ask::Issue((
            path,
            Zeroizing::new(body.to_string().into_bytes()),
        )))
    }

    /// The certificate `name` in `answer` to the issue call at `path`, as a secret; remembers
    /// when it is due again, and keeps it across restarts.
    pub(super) fn issued(
        &self,
        name: &str,
        answer: &[u8],
        path: &str,
    ) -> Result<Fetched, ProviderError> {
        let data = super::parse::<Issued>(answer, path)?.data;
        let mut value = value_of(&data);
        let now = crate::util::unix_now();
        let life = data.expiration.saturating_sub(now);
        #[allow(
            clippy::cast_possible_truncation,
            clippy::cast_sign_loss,
            clippy::cast_precision_loss
        )] // a life in seconds, well within f64's exact integers
        let due = now + (life as f64 * renewal_fraction()) as u64;
        let mut held = crate::util::lock(&self.due);
        // Forget certificates that have ended: nothing holds them any more.
        held.retain(|_, (_, ends)| *ends > now);
        held.insert(data.serial_number.clone(), (due, data.expiration));
        drop(held);
        self.keep_issued(name, &data.serial_number, &value, due, data.expiration);
        tracing::info!(
            certificate = path,
            serial = %data.serial_number,
            expires = %crate::util::rfc3339(data.expiration),
            renew_after = %crate::util::rfc3339(due),
            "certificate issued"
        );
        Ok(Fetched::New(Secret {
            bytes: SecretBytes::new(std::mem::take(&mut *value).into_bytes()),
            version: data.serial_number,
            expires: Some(data.expiration),
        }))
    }
}

impl Issuer {
    /// When the first certificate this client holds is due again (Unix seconds).
    pub(super) fn next_step(&self) -> Option<u64> {
        let now = crate::util::unix_now();
        crate::util::lock(&self.due)
            .values()
            .filter(|(_, ends)| *ends > now)
            .map(|(due, _)| *due)
            .min()
    }
}

impl Issuer {
    /// Keeps certificate `name` (its `value`) in the keyring until it ends, in place of the one
    /// before.
    fn keep_issued(&self, name: &str, serial: &str, value: &str, due: u64, ends: u64) {
        let Some(settings) = self
            .certificates
            .get(name)
            .and_then(|c| serde_json::to_string(c).ok())
        else {
            return;
        };
        let mut kept = Zeroizing::new(String::new());
        let _ = write!(
            kept,
            "{{\"name\":{},\"settings\":{settings},\"due\":{due},\"ends\":{ends},\"value\":{value}}}",
            serde_json::Value::String(name.to_owned()),
        );
        if let Err(error) = self.keep.put(
            &format!("{}{name}:{serial}", self.prefix),
            kept.as_bytes(),
            ends,
        ) {
            tracing::warn!(certificate = %name, %error, "the certificate is not kept across a restart of ramlet: a new ramlet issues another");
        }
        if let Some(before) = self.last().insert(name.to_owned(), serial.to_owned())
            && before != serial
        {
            self.keep.forget(&format!("{}{name}:{before}", self.prefix));
        }
    }
}

/// The value: a JSON object of the PEM texts (copied as JSON text) and the serial number.
fn value_of(data: &IssuedData<'_>) -> Zeroizing<String> {
    let mut text = Zeroizing::new(String::new());
    let _ = write!(
        text,
        "{{\"certificate\":{},\"private_key\":{},\"issuing_ca\":{},\"ca_chain\":",
        data.certificate.get(),
        data.private_key.get(),
        data.issuing_ca.get()
    );
    // One JSON string of the chain's PEM texts, a line break between them: each element is a
    // JSON string literal, so its inside is valid string content.
    text.push('"');
    for (i, pem) in data.ca_chain.iter().enumerate() {
        if i > 0 {
            text.push_str("\\n");
        }
        text.push_str(pem.get().trim_matches('"'));
    }
    text.push('"');
    let _ = write!(
        text,
        ",\"serial_number\":{}}}",
        serde_json::Value::String(data.serial_number.clone())
    );
    text
}

/// How far into its life a certificate is issued again: two thirds, give or take 5 %.
fn renewal_fraction() -> f64 {
    0.62 + 0.10 * crate::util::random_unit()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::host::keyring::Memory;
    use ramlet_specs::model::SecretVersion;

    fn settings() -> Certificate {
        Certificate {
            role: "web".into(),
            common_name: "app.example.com".into(),
            alt_names: vec!["www.example.com".into()],
            ip_sans: vec!["127.0.0.1".parse().unwrap()],
            ttl: std::time::Duration::from_mins(2),
        }
    }

    fn issuer() -> Issuer {
        kept_in(Arc::new(Memory::default()), settings())
    }

    fn kept_in(keep: Arc<Memory>, certificate: Certificate) -> Issuer {
        Issuer::new(
            "pki".into(),
            BTreeMap::from([("web".into(), certificate)]),
            true,
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

    /// An answer shaped as OpenBao's, escapes and all.
    fn answer(serial: &str, expiration: u64) -> String {
        serde_json::json!({
            "lease_id": "",
            "data": {
                "certificate": "-----BEGIN CERTIFICATE-----\nLEAF\n-----END CERTIFICATE-----",
                "private_key": "-----BEGIN RSA PRIVATE KEY-----\nKEY\"x\n-----END RSA PRIVATE KEY-----",
                "private_key_type": "rsa",
                "issuing_ca": "-----BEGIN CERTIFICATE-----\nCA\n-----END CERTIFICATE-----",
                "ca_chain": ["-----BEGIN CERTIFICATE-----\nINT\n-----END CERTIFICATE-----", "-----BEGIN CERTIFICATE-----\nCA\n-----END CERTIFICATE-----"],
                "serial_number": serial,
                "expiration": expiration,
            }
        })
        .to_string()
    }

    #[test]
    fn the_issue_call_names_the_role_and_the_settings() {
        let Ask::Issue((path, body)) = issuer().ask(&ask("web", None)).unwrap() else {
            panic!("no issue call")
        };
        assert_eq!(path, "pki/issue/web");
        let body: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(body["common_name"], "app.example.com");
        assert_eq!(body["alt_names"], "www.example.com");
        assert_eq!(body["ip_sans"], "127.0.0.1");
        assert_eq!(body["ttl"], "120s");
        let error = issuer().ask(&ask("api", None)).unwrap_err();
        assert_eq!(error.kind(), ErrorKind::NotFound);
    }

    /// The value is JSON whose parts read back as the PEM texts the server sent (escapes
    /// kept intact), the chain joined; the version is the serial number, the end its
    /// expiration; a fetch naming it as held answers nothing new until it is due.
    #[test]
    fn an_issued_certificate_is_held_until_two_thirds_of_its_life() {
        let issuer = issuer();
        let now = crate::util::unix_now();
        let Fetched::New(secret) = issuer
            .issued(
                "web",
                answer("1a:2b", now + 3000).as_bytes(),
                "pki/issue/web",
            )
            .unwrap()
        else {
            panic!("not new")
        };
        assert_eq!(secret.version, "1a:2b");
        assert_eq!(secret.expires, Some(now + 3000));
        let value: serde_json::Value = serde_json::from_slice(secret.bytes.expose()).unwrap();
        assert_eq!(
            value["private_key"],
            "-----BEGIN RSA PRIVATE KEY-----\nKEY\"x\n-----END RSA PRIVATE KEY-----"
        );
        assert_eq!(
            value["ca_chain"],
            "-----BEGIN CERTIFICATE-----\nINT\n-----END CERTIFICATE-----\n-----BEGIN CERTIFICATE-----\nCA\n-----END CERTIFICATE-----"
        );
        assert_eq!(value["serial_number"], "1a:2b");
        assert!(matches!(
            issuer.ask(&ask("web", Some("1a:2b"))).unwrap(),
            Ask::Nothing
        ));
        // Another serial (a store changed) is issued anew.
        assert!(matches!(
            issuer.ask(&ask("web", Some("ff:ff"))).unwrap(),
            Ask::Issue(_)
        ));
        let (due, _) = issuer.due.lock().unwrap()["1a:2b"];
        assert!((now + 1860..now + 2160).contains(&due), "{}", due - now);
        // Past the due time, it is issued again.
        issuer
            .due
            .lock()
            .unwrap()
            .insert("1a:2b".into(), (now, now + 3000));
        assert!(matches!(
            issuer.ask(&ask("web", Some("1a:2b"))).unwrap(),
            Ask::Issue(_)
        ));
    }

    #[test]
    fn an_answer_that_is_not_a_certificate_says_where_and_never_what() {
        let error = issuer()
            .issued(
                "web",
                br#"{"data": {"private_key": "SECRET"}}"#,
                "pki/issue/web",
            )
            .unwrap_err();
        assert!(error.to_string().contains("pki/issue/web"), "{error}");
        assert!(!error.to_string().contains("SECRET"), "{error}");
    }

    /// A new client serves the certificate an earlier one kept (same serial, value and end: no
    /// issue call, so nothing restarts) while its settings are the same and it is not due; a
    /// newer one replaces it in the keep; other settings, or past its renewal time, issue anew.
    #[test]
    fn a_new_client_serves_the_kept_certificate_while_its_settings_hold() {
        let keep = Arc::new(Memory::default());
        let now = crate::util::unix_now();
        let first = kept_in(Arc::clone(&keep), settings());
        first
            .issued("web", answer("1a:2b", now + 3000).as_bytes(), "p")
            .unwrap();
        first
            .issued("web", answer("3c:4d", now + 3000).as_bytes(), "p")
            .unwrap();
        assert!(
            keep.ends("ramlet:certificate:http://127.0.0.1:8200||pki:web:1a:2b")
                .is_none()
        );

        let second = kept_in(Arc::clone(&keep), settings());
        let Ask::Kept(Fetched::New(secret)) = second.ask(&ask("web", None)).unwrap() else {
            panic!("not served from the keep")
        };
        assert_eq!(secret.version, "3c:4d");
        assert_eq!(secret.expires, Some(now + 3000));
        let value: serde_json::Value = serde_json::from_slice(secret.bytes.expose()).unwrap();
        assert_eq!(value["serial_number"], "3c:4d");
        assert!(matches!(
            second.ask(&ask("web", Some("3c:4d"))).unwrap(),
            Ask::Nothing
        ));
        // Other settings: issued anew.
        let mut other = settings();
        other.common_name = "api.example.com".into();
        let third = kept_in(Arc::clone(&keep), other);
        assert!(matches!(
            third.ask(&ask("web", None)).unwrap(),
            Ask::Issue(_)
        ));
        // `ramlet plan`'s client serves nothing kept either.
        let plan = Issuer::new(
            "pki".into(),
            BTreeMap::from([("web".into(), settings())]),
            false,
            "http://127.0.0.1:8200|",
            keep,
        );
        assert!(plan.ask(&ask("web", None)).is_err());
    }
}
