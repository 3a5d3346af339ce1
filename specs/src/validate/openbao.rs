//! Validation of an `openbao` store: the server's address, the engine's mount (KV v2, PKI with
//! the certificates it issues, or database with the credentials it leases), the namespace, and one login method whose credentials are files
//! of the host's (plain or sealed). Where the address and the credential files may be is the
//! host's policy's to say (`policy.rs`).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use crate::error::{Check, ErrorKind};
use crate::fspath;
use crate::model::{Certificate, DatabaseCredential, HostKey, Openbao, OpenbaoAuth, Provider};
use crate::path::FieldPath;
use crate::raw;
use crate::text;

use super::Findings;

/// The longest secret path, mount, namespace or role ramlet accepts.
const MAX_PATH: usize = 512;

/// The most certificates one store issues, or credentials it leases.
const MAX_MADE: usize = 64;
/// The longest life a certificate may ask for: 398 days, the most browsers take.
const MAX_TTL: Duration = Duration::from_hours(398 * 24);
/// The longest DNS name.
const MAX_DNS_NAME: usize = 253;

/// An `openbao` store; `refresh` is its refresh interval, when valid (a certificate must live
/// at least three of them).
pub(super) fn store(
    findings: &mut Findings,
    path: &FieldPath,
    raw: &raw::OpenbaoStore,
    refresh: Option<Duration>,
) -> Option<Provider> {
    let address = findings.check(&path.key("address"), address(&raw.address));
    let mount = findings.check(&path.key("mount"), segments(&raw.mount, "a mount path"));
    let namespace = findings.optional(&path.key("namespace"), raw.namespace.as_deref(), |n| {
        segments(n, "a namespace")
    });
    let ca_file = findings.optional(&path.key("caFile"), raw.ca_file.as_deref(), host_file);
    let auth = auth(findings, &path.key("auth"), &raw.auth);
    let pki = raw
        .pki
        .as_ref()
        .map(|pki| certificates(findings, &path.key("pki").key("certificates"), pki, refresh))
        .map_or(Some(None), |c| c.map(Some));
    let database = raw
        .database
        .as_ref()
        .map(|database| credentials(findings, &path.key("database").key("credentials"), database))
        .map_or(Some(None), |c| c.map(Some));
    if raw.pki.is_some() && raw.database.is_some() {
        findings.push(
            &path.key("database"),
            ErrorKind::InvalidValue,
            "a mount is one engine: `pki` or `database`, not both (make two stores)",
        );
        return None;
    }
    Some(Provider::Openbao(Box::new(Openbao {
        address: address?,
        mount: mount?,
        namespace: namespace.ok()?,
        ca_file: ca_file.ok()?.map(PathBuf::from),
        auth: auth?,
        pki: pki?,
        database: database?,
    })))
}

/// How many things a store makes: 1 to [`MAX_MADE`].
fn how_many(findings: &mut Findings, path: &FieldPath, count: usize, what: &str) -> bool {
    if count == 0 || count > MAX_MADE {
        findings.push(
            path,
            ErrorKind::InvalidValue,
            format!("name 1 to {MAX_MADE} {what} (this store names {count})"),
        );
        return false;
    }
    true
}

/// A database engine's credentials: each named as an identifier, created by a role.
fn credentials(
    findings: &mut Findings,
    path: &FieldPath,
    raw: &raw::DatabaseEngine,
) -> Option<BTreeMap<String, DatabaseCredential>> {
    if !how_many(findings, path, raw.credentials.len(), "credentials") {
        return None;
    }
    let before = findings.0.len();
    let mut valid = BTreeMap::new();
    for (name, raw) in &raw.credentials {
        let path = path.key(name);
        if let Err(why) = identifier(name, "a credential's name") {
            findings.push(&path, why.0, why.1);
            continue;
        }
        if let Some(role) =
            findings.check(&path.key("role"), identifier(&raw.role, "a database role"))
        {
            valid.insert(name.clone(), DatabaseCredential { role });
        }
    }
    (findings.0.len() == before).then_some(valid)
}

/// A PKI engine's certificates: each named as an identifier, issued by a role, for names that
/// are DNS names and addresses that are IP addresses, for a life between three refreshes and
/// [`MAX_TTL`].
fn certificates(
    findings: &mut Findings,
    path: &FieldPath,
    raw: &raw::PkiEngine,
    refresh: Option<Duration>,
) -> Option<BTreeMap<String, Certificate>> {
    if !how_many(findings, path, raw.certificates.len(), "certificates") {
        return None;
    }
    let before = findings.0.len();
    let mut valid = BTreeMap::new();
    for (name, raw) in &raw.certificates {
        let path = path.key(name);
        if let Err(why) = identifier(name, "a certificate's name") {
            findings.push(&path, why.0, why.1);
            continue;
        }
        let role = findings.check(&path.key("role"), identifier(&raw.role, "a PKI role"));
        let common_name = findings.check(&path.key("commonName"), dns_name(&raw.common_name));
        let alt_names: Vec<Option<String>> = raw
            .alt_names
            .iter()
            .flatten()
            .enumerate()
            .map(|(i, n)| findings.check(&path.key("altNames").index(i), dns_name(n)))
            .collect();
        let ip_sans: Vec<Option<std::net::IpAddr>> = raw
            .ip_sans
            .iter()
            .flatten()
            .enumerate()
            .map(|(i, ip)| {
                findings.check(
                    &path.key("ipSans").index(i),
                    ip.parse().map_err(|_| {
                        (
                            ErrorKind::InvalidValue,
                            format!("{ip:?} is not an IP address such as `10.0.0.7` or `::1`"),
                        )
                    }),
                )
            })
            .collect();
        let ttl = findings.check(
            &path.key("ttl"),
            crate::quantity::duration(&raw.ttl, Duration::from_secs(1), MAX_TTL).and_then(
                |ttl| match refresh {
                    Some(refresh) if ttl < refresh * 3 => Err((
                        ErrorKind::InvalidValue,
                        format!(
                            "{:?} is shorter than three refreshes of this store ({} s each): renewal at two thirds of its life is checked at each refresh; lengthen the ttl or shorten refreshInterval",
                            raw.ttl,
                            refresh.as_secs()
                        ),
                    )),
                    _ => Ok(ttl),
                },
            ),
        );
        if let (Some(role), Some(common_name), Some(alt_names), Some(ip_sans), Some(ttl)) = (
            role,
            common_name,
            alt_names.into_iter().collect::<Option<Vec<_>>>(),
            ip_sans.into_iter().collect::<Option<Vec<_>>>(),
            ttl,
        ) {
            valid.insert(
                name.clone(),
                Certificate {
                    role,
                    common_name,
                    alt_names,
                    ip_sans,
                    ttl,
                },
            );
        }
    }
    (findings.0.len() == before).then_some(valid)
}

/// A DNS name for a certificate (a `*.` wildcard first is the role's to allow): dot-separated
/// labels of letters, digits and `-`, at most [`MAX_DNS_NAME`] characters. No comma: OpenBao
/// takes alternative names as one comma-separated list.
fn dns_name(value: &str) -> Check<String> {
    let bare = value.strip_prefix("*.").unwrap_or(value);
    let ok = (1..=MAX_DNS_NAME).contains(&value.len())
        && bare.split('.').all(|label| {
            (1..=63).contains(&label.len())
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        });
    if ok {
        Ok(value.to_ascii_lowercase())
    } else {
        Err((
            ErrorKind::InvalidValue,
            format!(
                "{value:?} is not a DNS name such as `app.example.com`: dot-separated labels of letters, digits and `-`"
            ),
        ))
    }
}

/// Exactly one login method.
fn auth(findings: &mut Findings, path: &FieldPath, raw: &raw::OpenbaoAuth) -> Option<OpenbaoAuth> {
    let set: Vec<&str> = [
        ("token", raw.token.is_some()),
        ("appRole", raw.app_role.is_some()),
        ("cert", raw.cert.is_some()),
    ]
    .into_iter()
    .filter_map(|(name, set)| set.then_some(name))
    .collect();
    match set.as_slice() {
        [] => {
            findings.push(
                path,
                ErrorKind::MissingField,
                "set one login method: token, appRole or cert",
            );
            return None;
        }
        [_] => {}
        [_, second, ..] => {
            findings.push(
                &path.key(second),
                ErrorKind::InvalidValue,
                format!(
                    "set one login method; this store sets {}",
                    set.join(" and ")
                ),
            );
            return None;
        }
    }
    if let Some(token) = &raw.token {
        return credential(findings, &path.key("token"), token).map(OpenbaoAuth::Token);
    }
    if let Some(role) = &raw.app_role {
        let path = path.key("appRole");
        let mount = auth_mount(findings, &path, role.mount.as_deref(), "approle");
        let role_id = findings.check(&path.key("roleId"), identifier(&role.role_id, "a role ID"));
        let secret_id = credential(findings, &path.key("secretId"), &role.secret_id);
        return Some(OpenbaoAuth::AppRole {
            mount: mount?,
            role_id: role_id?,
            secret_id: secret_id?,
        });
    }
    let cert = raw.cert.as_ref()?;
    let path = path.key("cert");
    let mount = auth_mount(findings, &path, cert.mount.as_deref(), "cert");
    let role = findings.optional(&path.key("role"), cert.role.as_deref(), |r| {
        identifier(r, "a certificate role")
    });
    let certificate = findings.check(&path.key("certificate"), host_file(&cert.certificate));
    let key = credential(findings, &path.key("key"), &cert.key);
    Some(OpenbaoAuth::Cert {
        mount: mount?,
        role: role.ok()?,
        certificate: PathBuf::from(certificate?),
        key: key?,
    })
}

fn auth_mount(
    findings: &mut Findings,
    path: &FieldPath,
    mount: Option<&str>,
    default: &str,
) -> Option<String> {
    findings
        .optional(&path.key("mount"), mount, |m| segments(m, "a mount path"))
        .ok()
        .map(|m| m.unwrap_or_else(|| default.to_owned()))
}

/// A [`HostKey`] named by one of two fields under `path`: `file` (plain) or `credential`
/// (sealed), exactly one of them; `missing` says what to set when neither is.
pub(super) fn host_key(
    findings: &mut Findings,
    path: &FieldPath,
    file: (&str, Option<&str>),
    credential: (&str, Option<&str>),
    missing: &str,
) -> Option<HostKey> {
    match (file.1, credential.1) {
        (Some(plain), None) => findings
            .check(&path.key(file.0), host_file(plain))
            .map(|p| HostKey::File(PathBuf::from(p))),
        (None, Some(sealed)) => findings
            .check(&path.key(credential.0), host_file(sealed))
            .map(|p| HostKey::Credential(PathBuf::from(p))),
        (None, None) => {
            findings.push(path, ErrorKind::MissingField, missing);
            None
        }
        (Some(_), Some(_)) => {
            findings.push(
                &path.key(credential.0),
                ErrorKind::InvalidValue,
                format!("set `{}` or `{}`, not both", file.0, credential.0),
            );
            None
        }
    }
}

/// A credential's `file` or `credential`.
fn credential(
    findings: &mut Findings,
    path: &FieldPath,
    raw: &raw::HostKeyFile,
) -> Option<HostKey> {
    host_key(
        findings,
        path,
        ("file", raw.file.as_deref()),
        ("credential", raw.credential.as_deref()),
        "set `file` (readable by ramlet's user alone) or `credential` (sealed with systemd-creds)",
    )
}

/// An absolute file on the host, by the rules of a store's directory.
fn host_file(value: &str) -> Check<String> {
    text::single_line(value).and_then(fspath::host_directory)
}

/// The server: `scheme://host[:port]`, nothing after it.
fn address(url: &str) -> Check<String> {
    let url = super::endpoint(url)?;
    let after = url.split_once("://").map_or("", |(_, rest)| rest);
    let after = after.strip_suffix('/').unwrap_or(after);
    if after.contains(['/', '?', '#', '@']) {
        return Err((
            ErrorKind::InvalidValue,
            format!(
                "{url:?}: name the server alone, as `https://bao.example.com:8200` (ramlet adds /v1/...)"
            ),
        ));
    }
    Ok(url.trim_end_matches('/').to_owned())
}

/// A path of OpenBao's (a mount, a namespace, a secret): `/`-separated segments of letters,
/// digits, `.`, `_` and `-`, none empty, `.` or `..`.
fn segments(value: &str, what: &str) -> Check<String> {
    let ok = (1..=MAX_PATH).contains(&value.len())
        && value.split('/').all(|segment| {
            !segment.is_empty()
                && segment != "."
                && segment != ".."
                && segment
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
        });
    if ok {
        Ok(value.to_owned())
    } else {
        Err((
            ErrorKind::InvalidValue,
            format!(
                "{value:?} is not {what}: `/`-separated parts of letters, digits, `.`, `_` and `-`, at most {MAX_PATH} characters"
            ),
        ))
    }
}

/// A secret's path in an `openbao` store.
pub(super) fn secret_path(name: &str) -> Check<String> {
    segments(name, "an OpenBao secret path such as `app/db`")
}

/// One word of letters, digits, `.`, `_` and `-`.
fn identifier(value: &str, what: &str) -> Check<String> {
    if (1..=MAX_PATH).contains(&value.len())
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
    {
        Ok(value.to_owned())
    } else {
        Err((
            ErrorKind::InvalidValue,
            format!("{value:?} is not {what}: letters, digits, `.`, `_` and `-`"),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_address_is_a_server_and_nothing_after_it() {
        assert_eq!(
            address("https://bao.example.com:8200/").unwrap(),
            "https://bao.example.com:8200"
        );
        assert!(address("http://127.0.0.1:8200").is_ok());
        for bad in [
            "bao.example.com:8200",
            "https://bao.example.com/v1",
            "https://user@bao.example.com",
            "https://bao.example.com?x=1",
            "ftp://bao.example.com",
        ] {
            assert!(address(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn paths_cannot_climb_or_carry_what_a_url_would_read() {
        for good in ["secret", "team/kv", "app/db", "a.b_c-d/e"] {
            assert!(segments(good, "x").is_ok(), "{good}");
        }
        for bad in [
            "",
            "/secret",
            "secret/",
            "a//b",
            "a/../b",
            "./a",
            "a b",
            "a?version=1",
            "a%2Fb",
            "a\nb",
        ] {
            assert!(segments(bad, "x").is_err(), "{bad:?}");
        }
    }
}
