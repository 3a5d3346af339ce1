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
//! What this client issued lives in its memory only: a new client (an agent restart, a store
//! whose settings changed) issues anew.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;

use ramlet_specs::model::{Certificate, SecretVersion};
use serde::Deserialize;
use serde_json::value::RawValue;
use zeroize::Zeroizing;

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
    /// The issuer of `certificates` from the PKI engine at `mount`; one that `issues` nothing
    /// answers every fetch with an error that says so.
    pub(super) fn new(
        mount: String,
        certificates: BTreeMap<String, Certificate>,
        issues: bool,
    ) -> Self {
        Self {
            mount,
            certificates,
            issues,
            due: Mutex::new(BTreeMap::new()),
        }
    }

    /// What to ask the server for `request`: nothing (`Ok(None)`: the held certificate is not
    /// due), or the issue call.
    pub(super) fn ask(&self, request: &Request) -> Result<Option<IssueCall>, ProviderError> {
        let name = &request.name;
        let Some(certificate) = self.certificates.get(name) else {
            return Err(ProviderError::new(
                ErrorKind::NotFound,
                format!("{name}: this store's pki.certificates name no such certificate"),
            ));
        };
        if request.version != SecretVersion::Latest {
            return Err(ProviderError::new(
                ErrorKind::Misconfigured,
                format!("{name}: a certificate has one version, the one issued last"),
            ));
        }
        let now = crate::util::unix_now();
        if let Some(serial) = &request.known
            && self
                .due
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .get(serial)
                .is_some_and(|(due, _)| now < *due)
        {
            return Ok(None);
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
        Ok(Some((path, Zeroizing::new(body.to_string().into_bytes()))))
    }

    /// The certificate in `answer` to the issue call at `path`, as a secret; remembers when it
    /// is due again.
    pub(super) fn issued(&self, answer: &[u8], path: &str) -> Result<Fetched, ProviderError> {
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
        let mut held = self
            .due
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        // Forget certificates that have ended: nothing holds them any more.
        held.retain(|_, (_, ends)| *ends > now);
        held.insert(data.serial_number.clone(), (due, data.expiration));
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
        self.due
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .values()
            .filter(|(_, ends)| *ends > now)
            .map(|(due, _)| *due)
            .min()
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

    fn issuer() -> Issuer {
        let certificate = Certificate {
            role: "web".into(),
            common_name: "app.example.com".into(),
            alt_names: vec!["www.example.com".into()],
            ip_sans: vec!["127.0.0.1".parse().unwrap()],
            ttl: std::time::Duration::from_mins(2),
        };
        Issuer::new(
            "pki".into(),
            BTreeMap::from([("web".into(), certificate)]),
            true,
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
        let (path, body) = issuer().ask(&ask("web", None)).unwrap().unwrap();
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
            .issued(answer("1a:2b", now + 3000).as_bytes(), "pki/issue/web")
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
        assert!(issuer.ask(&ask("web", Some("1a:2b"))).unwrap().is_none());
        // Another serial (a client restarted, a store changed) is issued anew.
        assert!(issuer.ask(&ask("web", Some("ff:ff"))).unwrap().is_some());
        let (due, _) = issuer.due.lock().unwrap()["1a:2b"];
        assert!((now + 1860..now + 2160).contains(&due), "{}", due - now);
        // Past the due time, it is issued again.
        issuer
            .due
            .lock()
            .unwrap()
            .insert("1a:2b".into(), (now, now + 3000));
        assert!(issuer.ask(&ask("web", Some("1a:2b"))).unwrap().is_some());
    }

    #[test]
    fn an_answer_that_is_not_a_certificate_says_where_and_never_what() {
        let error = issuer()
            .issued(br#"{"data": {"private_key": "SECRET"}}"#, "pki/issue/web")
            .unwrap_err();
        assert!(error.to_string().contains("pki/issue/web"), "{error}");
        assert!(!error.to_string().contains("SECRET"), "{error}");
    }
}
