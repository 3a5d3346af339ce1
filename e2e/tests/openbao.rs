//! The `openbao` store against a real OpenBao server (`bao server -dev` from the virtualenv
//! `scripts/install-peers` makes), set up with its own CLI as an admin would: KV v2 reads with
//! one metadata call when nothing moved, pinned versions, token, AppRole and certificate logins
//! with sealed credentials, renewal, a token revoked behind ramlet's back, a sealed server, a
//! policy that does not grant the path. Requests are counted by the server's audit log. Tests
//! that seal credentials with the host key need root (`scripts/test` runs them as root).

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use ramlet::providers::ErrorKind;
use ramlet::providers::stores::{Due, Stores};
use ramlet::providers::{Limits, connector};
use ramlet_e2e::openbao::{Bao, openssl, seal_with_host_key, write_private};
use ramlet_specs::Catalog;

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("ramlet-openbao-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("specs")).unwrap();
    std::fs::create_dir_all(dir.join("keys")).unwrap();
    dir
}

fn root() -> bool {
    let root = nix_is_root();
    if !root {
        eprintln!(
            "skipped: sealing with the host key of systemd-creds needs root (scripts/test runs this as root)"
        );
    }
    root
}

fn nix_is_root() -> bool {
    std::fs::metadata("/proc/self").is_ok_and(|m| std::os::unix::fs::MetadataExt::uid(&m) == 0)
}

/// The host's policy: the server's address named, the credentials' folder listed.
fn policy(bao: &Bao, dir: &Path) -> ramlet_specs::Policy {
    ramlet_specs::Policy {
        endpoints: vec![bao.address()],
        identity_directories: vec![dir.join("keys")],
        ..ramlet_specs::Policy::default()
    }
}

/// A catalog with one `openbao` store (`store` is its body under `openbao:`) and one container
/// per reference (`path[@version]`, property `password`).
fn catalog(bao: &Bao, dir: &Path, store: &str, references: &[&str]) -> Catalog {
    let mut text = format!(
        "apiVersion: ramlet.dev/v1alpha1\nkind: SecretStore\nmetadata: {{name: bao}}\nspec:\n  openbao:\n    address: \"{}\"\n    mount: secret\n{store}",
        bao.address()
    );
    for (i, reference) in references.iter().enumerate() {
        let (name, version) = reference.split_once('@').unwrap_or((reference, "latest"));
        let _ = write!(
            text,
            "---\napiVersion: ramlet.dev/v1alpha1\nkind: Container\nmetadata: {{name: c{i}}}\nspec:\n  image: localhost/busybox\n  volumes:\n    - name: v\n      mountPath: /run/v\n      files:\n        - path: f\n          secret: {{store: bao, name: {name}, version: \"{version}\", property: password}}\n"
        );
    }
    std::fs::write(dir.join("specs/all.yaml"), text).unwrap();
    let catalog = ramlet_specs::load_dir_with(&dir.join("specs"), &policy(bao, dir)).unwrap();
    assert!(catalog.errors.is_empty(), "{:?}", catalog.errors);
    catalog
}

fn new_stores() -> Stores {
    Stores::new(
        connector(PathBuf::from("/nonexistent")),
        Limits {
            concurrency: 8,
            timeout: Duration::from_secs(5),
        },
    )
}

async fn refresh(stores: &mut Stores, catalog: &Catalog) {
    let references = catalog
        .containers
        .values()
        .flat_map(|c| &c.volumes)
        .flat_map(|v| &v.files)
        .flat_map(ramlet_specs::model::VolumeFile::references);
    stores.refresh(&catalog.stores, references, Due::All).await;
}

/// Container `c<i>`'s secret as the stores hold it: (value, version), or the error.
fn value(
    stores: &Stores,
    catalog: &Catalog,
    i: usize,
) -> Result<(String, String), (ErrorKind, String)> {
    let container = catalog
        .containers
        .values()
        .find(|c| c.name.as_str() == format!("c{i}"))
        .unwrap();
    let reference = &container.volumes[0].files[0].secret().unwrap();
    stores
        .get(
            &ramlet::secrets::SecretId::of(reference),
            &reference.version,
        )
        .map(|s| {
            (
                String::from_utf8_lossy(s.bytes.expose()).into_owned(),
                s.version.clone(),
            )
        })
        .map_err(|e| (e.kind(), e.to_string()))
}

/// A token store: the admin's token for ramlet in a 0600 file.
fn token_store(bao: &Bao, dir: &Path, policy: &str, ttl: &str) -> (String, String) {
    let token = bao.token(policy, ttl);
    let file = dir.join("keys/token");
    write_private(&file, &token);
    let store = format!("    auth:\n      token: {{file: {}}}\n", file.display());
    (store, token)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_version_is_checked_with_one_metadata_read_and_fetched_only_when_it_moved() {
    let dir = scratch("kv");
    let bao = Bao::start(&dir.join("server"));
    bao.reader_policy("app", &["app/db", "app/other"]);
    let (store, token) = token_store(&bao, &dir, "app", "1h");
    let v1 = bao.put("app/db", &[("password", "one"), ("user", "app")]);
    // 20 consumers of one secret, and one that pins version 1.
    let mut refs = vec!["app/db"; 20];
    refs.push("app/db@1");
    let catalog = catalog(&bao, &dir, &store, &refs);
    let mut stores = new_stores();

    refresh(&mut stores, &catalog).await;
    let (first, version) = value(&stores, &catalog, 0).unwrap();
    assert_eq!(first, r#"{"password":"one","user":"app"}"#);
    assert_eq!(version, v1.to_string());
    // One metadata read for the 20, one data read at that version, one for the pin.
    assert_eq!(bao.requests("secret/metadata/app/db"), 1);
    assert_eq!(bao.requests("secret/data/app/db"), 2);

    // Nothing moved: one metadata read, no data read.
    refresh(&mut stores, &catalog).await;
    assert_eq!(bao.requests("secret/metadata/app/db"), 2);
    assert_eq!(bao.requests("secret/data/app/db"), 2);

    // `bao kv put`: the next refresh reads the new version once; the pin stays on version 1.
    let v2 = bao.put("app/db", &[("password", "two"), ("user", "app")]);
    refresh(&mut stores, &catalog).await;
    assert_eq!(
        value(&stores, &catalog, 3).unwrap(),
        (
            r#"{"password":"two","user":"app"}"#.to_owned(),
            v2.to_string()
        )
    );
    assert_eq!(value(&stores, &catalog, 20).unwrap().1, v1.to_string());
    assert_eq!(bao.requests("secret/data/app/db"), 3);

    // A pinned version that does not exist.
    let unknown = catalog_one(&bao, &dir, &store, "app/db@9");
    refresh(&mut stores, &unknown).await;
    let (kind, message) = value(&stores, &unknown, 0).unwrap_err();
    assert_eq!(kind, ErrorKind::NotFound, "{message}");
    assert!(message.contains("version 9"), "{message}");

    // No such path, and a path the policy does not grant: errors that say what to do, with
    // neither the token nor a value in them.
    let missing = catalog_one(&bao, &dir, &store, "app/other");
    refresh(&mut stores, &missing).await;
    let (kind, message) = value(&stores, &missing, 0).unwrap_err();
    assert_eq!(kind, ErrorKind::NotFound, "{message}");
    let denied = catalog_one(&bao, &dir, &store, "ops/root");
    refresh(&mut stores, &denied).await;
    let (kind, message) = value(&stores, &denied, 0).unwrap_err();
    assert_eq!(kind, ErrorKind::PermissionDenied, "{message}");
    assert!(
        message.contains("secret/data/ops/root") && message.contains("secret/metadata/ops/root"),
        "{message}"
    );
    assert!(
        !message.contains(&token) && !message.contains("two"),
        "{message}"
    );
}

fn catalog_one(bao: &Bao, dir: &Path, store: &str, reference: &str) -> Catalog {
    catalog(bao, dir, store, &[reference])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn approle_with_a_sealed_secret_id_logs_in_renews_and_logs_in_again_after_a_revocation() {
    if !root() {
        return;
    }
    let dir = scratch("approle");
    let bao = Bao::start(&dir.join("server"));
    bao.reader_policy("app", &["app/db"]);
    // Tokens that live 3 s: renewed at 2 s.
    let (role_id, secret_id) = bao.approle("host", "app", "3s");
    let sealed = dir.join("keys/bao-secret-id");
    seal_with_host_key(&secret_id, &sealed);
    let store = format!(
        "    auth:\n      appRole: {{roleId: {role_id}, secretId: {{credential: {}}}}}\n",
        sealed.display()
    );
    bao.put("app/db", &[("password", "one")]);
    let catalog = catalog_one(&bao, &dir, &store, "app/db");
    let mut stores = new_stores();
    refresh(&mut stores, &catalog).await;
    assert_eq!(
        value(&stores, &catalog, 0).unwrap().0,
        r#"{"password":"one"}"#
    );
    assert_eq!(bao.requests("auth/approle/login"), 1);

    // Past two TTLs: renewed by ramlet's own task, and still good.
    tokio::time::sleep(Duration::from_secs(7)).await;
    assert!(
        bao.requests("auth/token/renew-self") >= 2,
        "renewals: {}",
        bao.requests("auth/token/renew-self")
    );
    bao.put("app/db", &[("password", "two")]);
    refresh(&mut stores, &catalog).await;
    assert_eq!(
        value(&stores, &catalog, 0).unwrap().0,
        r#"{"password":"two"}"#
    );
    assert_eq!(bao.requests("auth/approle/login"), 1);

    // Every token AppRole issued, revoked behind ramlet's back: the next read is refused, the
    // token is found dead, and a new login reads the new version.
    bao.run(&["token", "revoke", "-mode=path", "auth/approle/"]);
    bao.put("app/db", &[("password", "three")]);
    refresh(&mut stores, &catalog).await;
    assert_eq!(
        value(&stores, &catalog, 0).unwrap().0,
        r#"{"password":"three"}"#
    );
    assert_eq!(bao.requests("auth/approle/login"), 2);
    // The secret ID is in no message the server wrote (its audit log hashes what it logs).
    assert!(!bao.written().contains(&secret_id));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cert_auth_with_a_sealed_key_logs_in_over_tls() {
    if !root() {
        return;
    }
    let dir = scratch("cert");
    let bao = Bao::start_tls(&dir.join("server"));
    bao.reader_policy("app", &["app/db"]);
    // Tokens that live 3 s: renewed at 2 s.
    let (certificate, plain_key) = bao.client_certificate(&dir.join("keys"), "app", "3s");
    let sealed = dir.join("keys/bao-client-key");
    seal_with_host_key(&std::fs::read_to_string(&plain_key).unwrap(), &sealed);
    std::fs::remove_file(&plain_key).unwrap();
    let store = format!(
        "    caFile: {}\n    auth:\n      cert: {{certificate: {}, key: {{credential: {}}}}}\n",
        bao.ca_file().display(),
        certificate.display(),
        sealed.display()
    );
    bao.put("app/db", &[("password", "over-tls")]);
    let catalog = catalog_one(&bao, &dir, &store, "app/db");
    let mut stores = new_stores();
    refresh(&mut stores, &catalog).await;
    assert_eq!(
        value(&stores, &catalog, 0).unwrap().0,
        r#"{"password":"over-tls"}"#
    );
    assert_eq!(bao.requests("auth/cert/login"), 1);
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert!(bao.requests("auth/token/renew-self") >= 1);
    bao.put("app/db", &[("password", "renewed")]);
    refresh(&mut stores, &catalog).await;
    assert_eq!(
        value(&stores, &catalog, 0).unwrap().0,
        r#"{"password":"renewed"}"#
    );
    assert_eq!(bao.requests("auth/cert/login"), 1);

    // Without the caFile the server's certificate is not trusted: a TLS error that says so.
    let untrusted = store.replace(&format!("    caFile: {}\n", bao.ca_file().display()), "");
    let catalog = catalog_one(&bao, &dir, &untrusted, "app/db");
    let mut fresh = new_stores();
    refresh(&mut fresh, &catalog).await;
    let (kind, message) = value(&fresh, &catalog, 0).unwrap_err();
    assert_eq!(kind, ErrorKind::Unavailable, "{message}");
    assert!(message.contains("caFile"), "{message}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sealed_server_keeps_the_last_good_value_and_says_why() {
    let dir = scratch("sealed");
    let bao = Bao::start(&dir.join("server"));
    bao.reader_policy("app", &["app/db"]);
    let (store, token) = token_store(&bao, &dir, "app", "1h");
    bao.put("app/db", &[("password", "one")]);
    let catalog = catalog_one(&bao, &dir, &store, "app/db");
    let mut stores = new_stores();
    refresh(&mut stores, &catalog).await;
    let good = value(&stores, &catalog, 0).unwrap();

    bao.seal();
    refresh(&mut stores, &catalog).await;
    let (kind, message) = value(&stores, &catalog, 0).unwrap_err();
    assert_eq!(kind, ErrorKind::Unavailable, "{message}");
    assert!(message.contains("sealed"), "{message}");
    assert!(!message.contains(&token));
    let held = stores.status();
    assert!(
        serde_json::to_string(&held).unwrap().contains("sealed"),
        "{held:?}"
    );

    bao.unseal();
    refresh(&mut stores, &catalog).await;
    assert_eq!(value(&stores, &catalog, 0).unwrap(), good);

    // Hung (SIGSTOP: connections accepted, never answered): cut off at the store's timeout,
    // and back as soon as it answers again.
    bao.server.freeze(true);
    refresh(&mut stores, &catalog).await;
    let (kind, message) = value(&stores, &catalog, 0).unwrap_err();
    bao.server.freeze(false);
    assert_eq!(kind, ErrorKind::Timeout, "{message}");
    refresh(&mut stores, &catalog).await;
    assert_eq!(value(&stores, &catalog, 0).unwrap(), good);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_namespace_is_where_every_request_goes() {
    let dir = scratch("namespace");
    let bao = Bao::start(&dir.join("server"));
    // The same path in the root namespace and in `team-a`, with different values.
    bao.put("app/db", &[("password", "root-one")]);
    let ns = "-namespace=team-a";
    bao.run(&["namespace", "create", "team-a"]);
    bao.run(&["secrets", "enable", ns, "-path=secret", "kv-v2"]);
    bao.run(&[
        "kv",
        "put",
        ns,
        "-mount=secret",
        "app/db",
        "password=team-one",
    ]);
    let hcl = dir.join("team-read.hcl");
    std::fs::write(
        &hcl,
        "path \"secret/data/app/db\" { capabilities = [\"read\"] }\npath \"secret/metadata/app/db\" { capabilities = [\"read\"] }\n",
    )
    .unwrap();
    bao.run(&["policy", "write", ns, "app", &hcl.display().to_string()]);
    // A token of the namespace's own: it means nothing outside it.
    let token = bao.cli(&[
        "token",
        "create",
        ns,
        "-policy=app",
        "-ttl=1h",
        "-field=token",
    ]);
    let file = dir.join("keys/token");
    write_private(&file, token.trim());
    let store = format!(
        "    namespace: team-a\n    auth:\n      token: {{file: {}}}\n",
        file.display()
    );
    let catalog = catalog_one(&bao, &dir, &store, "app/db");
    let mut stores = new_stores();
    refresh(&mut stores, &catalog).await;
    assert_eq!(
        value(&stores, &catalog, 0).unwrap().0,
        r#"{"password":"team-one"}"#
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rate_limit_is_throttling_and_transient() {
    let dir = scratch("quota");
    let bao = Bao::start(&dir.join("server"));
    bao.reader_policy("app", &["app/db"]);
    let (store, _) = token_store(&bao, &dir, "app", "1h");
    bao.put("app/db", &[("password", "one")]);
    let catalog = catalog_one(&bao, &dir, &store, "app/db");
    let mut stores = new_stores();
    refresh(&mut stores, &catalog).await;
    assert!(value(&stores, &catalog, 0).is_ok());
    // The server's own rate-limit quota: one request per minute under secret/.
    bao.run(&[
        "write",
        "sys/quotas/rate-limit/ramlet",
        "path=secret/",
        "rate=1",
        "interval=1m",
    ]);
    for _ in 0..2 {
        refresh(&mut stores, &catalog).await;
    }
    let (kind, message) = value(&stores, &catalog, 0).unwrap_err();
    assert_eq!(kind, ErrorKind::Throttled, "{message}");
    assert!(
        kind.is_transient() && message.contains("rate limit"),
        "{message}"
    );
}

#[test]
fn a_plain_credential_others_may_read_is_refused() {
    let dir = scratch("mode");
    let bao = Bao::start(&dir.join("server"));
    bao.reader_policy("app", &["app/db"]);
    let (store, _) = token_store(&bao, &dir, "app", "1h");
    std::fs::set_permissions(
        dir.join("keys/token"),
        std::os::unix::fs::PermissionsExt::from_mode(0o644),
    )
    .unwrap();
    bao.put("app/db", &[("password", "one")]);
    let catalog = catalog_one(&bao, &dir, &store, "app/db");
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let mut stores = new_stores();
    runtime.block_on(refresh(&mut stores, &catalog));
    let (kind, message) = value(&stores, &catalog, 0).unwrap_err();
    assert_eq!(kind, ErrorKind::PermissionDenied, "{message}");
    assert!(message.contains("may be read by others"), "{message}");
    assert_eq!(bao.requests("secret/metadata/app/db"), 0);
}

/// A spec author's traps among the files a store reads: a FIFO named as the CA bundle (opening
/// it for reading would wait for a writer forever) and a link as the token. Each is refused at
/// once, for its own store.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fifo_or_a_link_among_the_stores_files_hangs_nothing() {
    let dir = scratch("traps");
    let bao = Bao::start(&dir.join("server"));
    bao.reader_policy("app", &["app/db"]);
    let (store, _) = token_store(&bao, &dir, "app", "1h");
    bao.put("app/db", &[("password", "one")]);
    let fifo = dir.join("ca.pem");
    assert!(
        std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap()
            .success()
    );
    let with_fifo = format!("    caFile: {}\n{store}", fifo.display());
    let catalog = catalog_one(&bao, &dir, &with_fifo, "app/db");
    let mut stores = new_stores();
    let started = std::time::Instant::now();
    refresh(&mut stores, &catalog).await;
    let (kind, message) = value(&stores, &catalog, 0).unwrap_err();
    assert_eq!(kind, ErrorKind::Misconfigured, "{message}");
    assert!(
        message.contains("caFile") && message.contains("not a regular file"),
        "{message}"
    );
    assert!(started.elapsed() < Duration::from_secs(3));

    std::os::unix::fs::symlink(dir.join("keys/token"), dir.join("keys/link")).unwrap();
    let linked = store.replace("keys/token", "keys/link");
    let catalog = catalog_one(&bao, &dir, &linked, "app/db");
    let mut stores = new_stores();
    refresh(&mut stores, &catalog).await;
    let (_, message) = value(&stores, &catalog, 0).unwrap_err();
    assert!(message.contains("symbolic link"), "{message}");
    assert_eq!(bao.requests("auth/token/lookup-self"), 0);
}

/// A catalog with one `openbao` PKI store at `tls` (`auth` and `certificates` are its YAML under
/// `openbao:` and `pki: {certificates: ...}`), refreshed every 10 s, and one container per name
/// in `names` reading that certificate whole.
fn pki_catalog(bao: &Bao, dir: &Path, auth: &str, certificates: &str, names: &[&str]) -> Catalog {
    let mut text = format!(
        "apiVersion: ramlet.dev/v1alpha1\nkind: SecretStore\nmetadata: {{name: bao}}\nspec:\n  refreshInterval: 10s\n  openbao:\n    address: \"{}\"\n    mount: tls\n{auth}    pki:\n      certificates:\n{certificates}",
        bao.address()
    );
    for (i, name) in names.iter().enumerate() {
        let _ = write!(
            text,
            "---\napiVersion: ramlet.dev/v1alpha1\nkind: Container\nmetadata: {{name: c{i}}}\nspec:\n  image: localhost/busybox\n  volumes:\n    - name: v\n      mountPath: /run/v\n      files:\n        - path: f\n          secret: {{store: bao, name: {name}}}\n"
        );
    }
    std::fs::write(dir.join("specs/all.yaml"), text).unwrap();
    let catalog = ramlet_specs::load_dir_with(&dir.join("specs"), &policy(bao, dir)).unwrap();
    assert!(catalog.errors.is_empty(), "{:?}", catalog.errors);
    catalog
}

/// Issue 39: a PKI store has the server issue the certificate its settings describe (subject,
/// DNS and IP names as asked, the key matching it, the chain), holds it while less than two
/// thirds of its life are gone (a refresh then costs no call; a restarted ramlet serves it from
/// the kernel keyring), then has the next one issued (a
/// new serial, a new key). A name the role does not allow and a token without `update` on the
/// issue path are errors that say so, with no key in them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pki_store_issues_a_certificate_holds_it_and_issues_the_next_before_its_end() {
    let dir = scratch("pki");
    let bao = Bao::start(&dir.join("server"));
    bao.pki_role("tls", "web", "example.com");
    bao.issuer_policy("issuer", "tls", "web");
    let (auth, token) = token_store(&bao, &dir, "issuer", "1h");
    let certificates = "        web:\n          role: web\n          commonName: app.example.com\n          altNames: [www.example.com]\n          ipSans: [127.0.0.1]\n          ttl: 30s\n";
    let catalog = pki_catalog(&bao, &dir, &auth, certificates, &["web", "web"]);
    let mut stores = new_stores();

    let issued_at = std::time::Instant::now();
    refresh(&mut stores, &catalog).await;
    let (issued, serial) = value(&stores, &catalog, 0).unwrap();
    let json: serde_json::Value = serde_json::from_str(&issued).unwrap();
    let certificate = json["certificate"].as_str().unwrap();
    let text = openssl(&["x509", "-noout", "-text", "-serial"], certificate);
    assert!(text.contains("CN = app.example.com"), "{text}");
    assert!(
        text.contains("DNS:www.example.com") && text.contains("IP Address:127.0.0.1"),
        "{text}"
    );
    // The version is the serial number, as OpenBao writes it (`1a:2b:...`).
    assert_eq!(
        text.lines()
            .find_map(|l| l.strip_prefix("serial="))
            .unwrap()
            .to_ascii_lowercase(),
        serial.replace(':', "")
    );
    let key = json["private_key"].as_str().unwrap();
    assert_eq!(
        openssl(&["x509", "-noout", "-pubkey"], certificate),
        openssl(&["pkey", "-pubout"], key),
        "the key is the certificate's"
    );
    assert!(
        json["ca_chain"]
            .as_str()
            .unwrap()
            .contains("BEGIN CERTIFICATE")
    );
    // Two consumers of one certificate: one issue call.
    assert_eq!(bao.requests("tls/issue/web"), 1);
    assert_eq!(value(&stores, &catalog, 1).unwrap().1, serial);

    // Held: a refresh issues nothing.
    refresh(&mut stores, &catalog).await;
    assert_eq!(value(&stores, &catalog, 0).unwrap().1, serial);
    assert_eq!(bao.requests("tls/issue/web"), 1);
    // A restarted ramlet (new clients) serves the certificate kept in the kernel keyring: the
    // same serial and key, no issue call.
    let mut restarted = new_stores();
    refresh(&mut restarted, &catalog).await;
    assert_eq!(
        value(&restarted, &catalog, 0).unwrap(),
        (issued.clone(), serial.clone())
    );
    assert_eq!(bao.requests("tls/issue/web"), 1);
    drop(restarted);

    // Past 72 % of its 30 s: the next one, with a new key.
    tokio::time::sleep(Duration::from_secs(22).saturating_sub(issued_at.elapsed())).await;
    refresh(&mut stores, &catalog).await;
    let (renewed, next) = value(&stores, &catalog, 0).unwrap();
    assert_ne!(next, serial);
    assert_eq!(bao.requests("tls/issue/web"), 2);
    let renewed: serde_json::Value = serde_json::from_str(&renewed).unwrap();
    assert_ne!(renewed["private_key"], json["private_key"]);
    assert!(
        issued_at.elapsed() < Duration::from_secs(30),
        "renewed after its end"
    );

    // A name the role does not allow: the server's reason, as a misconfiguration.
    let outside = "        web:\n          role: web\n          commonName: app.example.org\n          ttl: 1h\n";
    let refused = pki_catalog(&bao, &dir, &auth, outside, &["web"]);
    let mut fresh = new_stores();
    refresh(&mut fresh, &refused).await;
    let (kind, message) = value(&fresh, &refused, 0).unwrap_err();
    assert_eq!(kind, ErrorKind::Misconfigured, "{message}");
    assert!(message.contains("app.example.org"), "{message}");

    // A token whose policy does not grant the issue path.
    bao.reader_policy("reader", &["app/db"]);
    let (auth, other) = token_store(&bao, &dir, "reader", "1h");
    // (Other settings: the certificate kept for these would be served without a call.)
    let other_settings = certificates.replace("ttl: 30s", "ttl: 40s");
    let denied = pki_catalog(&bao, &dir, &auth, &other_settings, &["web"]);
    let mut fresh = new_stores();
    refresh(&mut fresh, &denied).await;
    let (kind, message) = value(&fresh, &denied, 0).unwrap_err();
    assert_eq!(kind, ErrorKind::PermissionDenied, "{message}");
    assert!(message.contains("tls/issue/web"), "{message}");
    for leak in [token.as_str(), other.as_str(), key] {
        assert!(!message.contains(leak), "{message}");
    }
}

/// A catalog of one `database` store (mount `db`, credential `app` of role `app`) read by one
/// container (`c0`), or by none.
fn database_catalog(bao: &Bao, dir: &Path, auth: &str, read: bool) -> Catalog {
    let mut text = format!(
        "apiVersion: ramlet.dev/v1alpha1\nkind: SecretStore\nmetadata: {{name: bao}}\nspec:\n  refreshInterval: 10s\n  openbao:\n    address: \"{}\"\n    mount: db\n{auth}    database:\n      credentials:\n        app: {{role: app}}\n",
        bao.address()
    );
    if read {
        text.push_str("---\napiVersion: ramlet.dev/v1alpha1\nkind: Container\nmetadata: {name: c0}\nspec:\n  image: localhost/busybox\n  volumes:\n    - name: v\n      mountPath: /run/v\n      files:\n        - path: f\n          secret: {store: bao, name: app}\n");
    }
    std::fs::write(dir.join("specs/all.yaml"), text).unwrap();
    let catalog = ramlet_specs::load_dir_with(&dir.join("specs"), &policy(bao, dir)).unwrap();
    assert!(catalog.errors.is_empty(), "{:?}", catalog.errors);
    catalog
}

/// A value's username and password.
fn login_of(value: &str) -> (String, String) {
    let json: serde_json::Value = serde_json::from_str(value).unwrap();
    (
        json["username"].as_str().unwrap().to_owned(),
        json["password"].as_str().unwrap().to_owned(),
    )
}

/// Issue 39: a database store has OpenBao create a PostgreSQL user under a lease (the user logs
/// in; a restarted ramlet adopts it from the kernel keyring instead of creating another), renews the lease at two thirds of each grant (same user, a later end), creates the next
/// user before the lease's maximum TTL (the old one still logs in: nothing is revoked by the
/// store itself), and revokes a lease when told (the user is dropped), also one of a store no
/// spec uses any more. A token without the path is an error that names it, no password in it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_store_leases_a_user_renews_it_replaces_it_before_its_end_and_revokes_when_told()
{
    let dir = scratch("database");
    let postgres = ramlet_e2e::postgres::Postgres::start("database");
    let bao = Bao::start(&dir.join("server"));
    bao.database_role("db", "app", &postgres, "12s", "30s");
    bao.leaser_policy("leaser", "db", "app");
    let (auth, token) = token_store(&bao, &dir, "leaser", "1h");
    let catalog = database_catalog(&bao, &dir, &auth, true);
    let mut stores = new_stores();

    let created_at = std::time::Instant::now();
    refresh(&mut stores, &catalog).await;
    let (first, lease) = value(&stores, &catalog, 0).unwrap();
    let (user, password) = login_of(&first);
    assert_eq!(postgres.login(&user, &password).unwrap(), user);
    assert!(lease.starts_with("db/creds/app/"), "{lease}");
    assert_eq!(bao.leases("db/creds/app/"), [lease.as_str()]);
    let held = stores.leases();
    assert_eq!(held.len(), 1);
    assert!(held[0].current && held[0].lease == lease);

    // A restarted ramlet (new clients) adopts the lease kept in the kernel's keyring: the same
    // user, no new one created.
    let mut restarted = new_stores();
    refresh(&mut restarted, &catalog).await;
    assert_eq!(
        value(&restarted, &catalog, 0).unwrap(),
        (first.clone(), lease.clone())
    );
    assert_eq!(bao.requests("db/creds/app"), 1);
    drop(restarted);

    // Refreshed every second: renewed (same lease, a later end) until the maximum TTL nears,
    // then a new user, before the first lease's end at 30 s.
    let id = ramlet::secrets::SecretId::new("bao", "app");
    let ends = |stores: &Stores| {
        stores
            .get(&id, &ramlet_specs::model::SecretVersion::Latest)
            .unwrap()
            .expires
            .unwrap()
    };
    let first_end = ends(&stores);
    let mut renewed_end = first_end;
    let next = loop {
        tokio::time::sleep(Duration::from_secs(1)).await;
        refresh(&mut stores, &catalog).await;
        let (_, version) = value(&stores, &catalog, 0).unwrap();
        if version != lease {
            break version;
        }
        renewed_end = renewed_end.max(ends(&stores));
        assert!(
            created_at.elapsed() < Duration::from_secs(30),
            "never replaced"
        );
    };
    assert!(
        created_at.elapsed() < Duration::from_secs(30),
        "replaced after its end"
    );
    assert!(renewed_end > first_end, "the lease's end never moved");
    assert!(bao.requests("sys/leases/renew") >= 1);
    assert_eq!(bao.requests("db/creds/app"), 2);
    let (next_user, next_password) = login_of(&value(&stores, &catalog, 0).unwrap().0);
    assert_ne!(next_user, user);
    assert_eq!(
        postgres.login(&next_user, &next_password).unwrap(),
        next_user
    );
    assert_eq!(
        postgres.login(&user, &password).unwrap(),
        user,
        "the old user was revoked before anyone said so"
    );
    let held: Vec<(String, bool)> = stores
        .leases()
        .into_iter()
        .map(|l| (l.lease, l.current))
        .collect();
    assert!(held.contains(&(lease.clone(), false)) && held.contains(&(next.clone(), true)));

    // Revoked: the user is dropped, the server forgets the lease.
    stores.revoke(&id, &lease).await.unwrap();
    assert!(postgres.login(&user, &password).is_err());
    assert!(!postgres.roles("v-").contains(&user));
    assert_eq!(bao.leases("db/creds/app/"), [next.as_str()]);

    // No spec reads the store any more: its client is kept with its lease until revoked.
    let unread = database_catalog(&bao, &dir, &auth, false);
    refresh(&mut stores, &unread).await;
    let held = stores.leases();
    assert_eq!(held.len(), 1);
    assert!(!held[0].current && held[0].lease == next);
    stores.revoke(&id, &next).await.unwrap();
    assert!(stores.leases().is_empty());
    assert!(postgres.login(&next_user, &next_password).is_err());
    assert!(bao.leases("db/creds/app/").is_empty());

    // A token whose policy does not grant the creds path.
    bao.reader_policy("reader", &["app/db"]);
    let (auth, other) = token_store(&bao, &dir, "reader", "1h");
    let denied = database_catalog(&bao, &dir, &auth, true);
    let mut fresh = new_stores();
    refresh(&mut fresh, &denied).await;
    let (kind, message) = value(&fresh, &denied, 0).unwrap_err();
    assert_eq!(kind, ErrorKind::PermissionDenied, "{message}");
    assert!(message.contains("db/creds/app"), "{message}");
    for leak in [token.as_str(), other.as_str(), &password, &next_password] {
        assert!(!message.contains(leak), "{message}");
    }
}
