//! The `openbao` store in the spec language: what a store may say (one login method, credentials
//! as plain or sealed files, safe paths), and what the host's policy decides for it: the server's
//! address must be in `policy.endpoints` (an OpenBao server has no public name), plain `http://`
//! only on loopback, and every credential file in `policy.identityDirectories`. Refusals are at
//! their line and field, and touch only their store.

use std::path::PathBuf;

use ramlet_specs::model::{HostKey, OpenbaoAuth, Provider, SecretVersion};
use ramlet_specs::{ErrorKind, Policy, load_texts_with};

fn store(name: &str, body: &str) -> String {
    format!(
        "---\napiVersion: ramlet.dev/v1alpha1\nkind: SecretStore\nmetadata: {{name: {name}}}\nspec:\n  openbao:\n{body}"
    )
}

fn consumer(store: &str, secret: &str, version: &str) -> String {
    format!(
        "---\napiVersion: ramlet.dev/v1alpha1\nkind: Container\nmetadata: {{name: c-{store}}}\nspec:\n  image: localhost/busybox\n  volumes:\n    - name: v\n      mountPath: /run/v\n      files:\n        - path: f\n          secret: {{store: {store}, name: \"{secret}\", version: \"{version}\", property: password}}\n"
    )
}

fn host_policy() -> Policy {
    Policy {
        endpoints: vec![
            "https://bao.internal:8200".to_owned(),
            "http://127.0.0.1".to_owned(),
        ],
        identity_directories: vec![PathBuf::from("/etc/ramlet/keys")],
        ..Policy::default()
    }
}

fn load(text: &str, policy: &Policy) -> ramlet_specs::Catalog {
    load_texts_with([(PathBuf::from("bao.yaml"), text.to_owned())], policy)
}

fn errors(catalog: &ramlet_specs::Catalog) -> Vec<String> {
    catalog.errors.iter().map(ToString::to_string).collect()
}

#[test]
fn each_login_method_loads_with_its_credentials_plain_or_sealed() {
    let text = [
        store(
            "token",
            "    address: https://bao.internal:8200\n    mount: secret\n    namespace: team-a/apps\n    auth:\n      token: {file: /etc/ramlet/keys/bao-token}\n",
        ),
        store(
            "approle",
            "    address: https://bao.internal:8200/\n    mount: kv\n    caFile: /etc/ramlet/bao-ca.pem\n    auth:\n      appRole: {roleId: 3f1c-9a, secretId: {credential: /etc/ramlet/keys/bao-secret-id}}\n",
        ),
        store(
            "cert",
            "    address: http://127.0.0.1:8200\n    mount: secret\n    auth:\n      cert: {mount: tls, role: web, certificate: /etc/ramlet/bao-client.pem, key: {credential: /etc/ramlet/keys/bao-client-key}}\n",
        ),
        consumer("token", "app/db", "latest"),
        consumer("approle", "app/db", "3"),
    ]
    .concat();
    let catalog = load(&text, &host_policy());
    assert!(catalog.errors.is_empty(), "{:#?}", errors(&catalog));
    let provider = |name: &str| {
        let store = catalog.stores.values().find(|s| s.name.as_str() == name);
        match &store.unwrap().provider {
            Provider::Openbao(openbao) => (**openbao).clone(),
            other => panic!("{other:?}"),
        }
    };
    let token = provider("token");
    assert_eq!(token.namespace.as_deref(), Some("team-a/apps"));
    assert_eq!(
        token.auth,
        OpenbaoAuth::Token(HostKey::File("/etc/ramlet/keys/bao-token".into()))
    );
    let approle = provider("approle");
    assert_eq!(approle.address, "https://bao.internal:8200");
    assert!(matches!(
        approle.auth,
        OpenbaoAuth::AppRole { ref mount, secret_id: HostKey::Credential(_), .. } if mount == "approle"
    ));
    assert!(matches!(
        provider("cert").auth,
        OpenbaoAuth::Cert { ref mount, role: Some(_), .. } if mount == "tls"
    ));
    let pinned = catalog
        .containers
        .values()
        .find(|c| c.name.as_str() == "c-approle")
        .unwrap();
    assert_eq!(
        pinned.volumes[0].files[0].secret().unwrap().version,
        SecretVersion::Number(3)
    );
}

#[test]
fn a_store_that_says_too_little_or_too_much_is_refused_at_its_field() {
    let text = [
        store(
            "two-methods",
            "    address: https://bao.internal:8200\n    mount: secret\n    auth:\n      token: {file: /etc/ramlet/keys/t}\n      cert: {certificate: /etc/ramlet/c.pem, key: {file: /etc/ramlet/keys/k}}\n",
        ),
        store(
            "no-method",
            "    address: https://bao.internal:8200\n    mount: secret\n    auth: {}\n",
        ),
        store(
            "climbing-mount",
            "    address: https://bao.internal:8200\n    mount: ../sys\n    auth:\n      token: {file: /etc/ramlet/keys/t}\n",
        ),
        store(
            "address-with-path",
            "    address: https://bao.internal:8200/v1/secret\n    mount: secret\n    auth:\n      token: {file: /etc/ramlet/keys/t}\n",
        ),
        store(
            "both-files",
            "    address: https://bao.internal:8200\n    mount: secret\n    auth:\n      token: {file: /etc/ramlet/keys/t, credential: /etc/ramlet/keys/t.cred}\n",
        ),
        store(
            "good",
            "    address: https://bao.internal:8200\n    mount: secret\n    auth:\n      token: {file: /etc/ramlet/keys/t}\n",
        ),
        consumer("good", "app/../../sys/raw", "latest"),
    ]
    .concat();
    let catalog = load(&text, &host_policy());
    let said = errors(&catalog);
    let names: Vec<&str> = catalog
        .stores
        .keys()
        .map(ramlet_specs::model::Name::as_str)
        .collect();
    assert_eq!(names, ["good"], "{said:#?}");
    for (field, why) in [
        ("spec.openbao.auth.cert", "one login method"),
        ("spec.openbao.auth", "token, appRole or cert"),
        ("spec.openbao.mount", "mount path"),
        ("spec.openbao.address", "name the server alone"),
        ("spec.openbao.auth.token.credential", "not both"),
        (
            "spec.volumes[0].files[0].secret.name",
            "OpenBao secret path",
        ),
    ] {
        assert!(
            said.iter().any(|e| e.contains(field) && e.contains(why)),
            "no error at {field} saying {why:?}: {said:#?}"
        );
    }
}

/// The trust boundary: a spec author cannot send the host's token to a server of their
/// choosing, over plain HTTP to another machine, or read a file of the host's as a credential.
#[test]
fn the_address_and_the_credentials_are_the_host_policys_to_allow() {
    let text = [
        store(
            "attacker",
            "    address: https://attacker.example\n    mount: secret\n    auth:\n      token: {file: /etc/ramlet/keys/bao-token}\n",
        ),
        store(
            "cleartext",
            "    address: http://bao.internal:8200\n    mount: secret\n    auth:\n      token: {file: /etc/ramlet/keys/bao-token}\n",
        ),
        store(
            "host-file",
            "    address: https://bao.internal:8200\n    mount: secret\n    auth:\n      appRole: {roleId: r, secretId: {file: /etc/ramlet/config.yaml}}\n",
        ),
        store(
            "allowed",
            "    address: https://bao.internal:8200\n    mount: secret\n    auth:\n      token: {credential: /etc/ramlet/keys/bao-token}\n",
        ),
    ]
    .concat();
    let catalog = load(&text, &host_policy());
    let said = errors(&catalog);
    let names: Vec<&str> = catalog
        .stores
        .keys()
        .map(ramlet_specs::model::Name::as_str)
        .collect();
    assert_eq!(names, ["allowed"], "{said:#?}");
    assert_eq!(said.len(), 3, "{said:#?}");
    assert!(catalog.errors.iter().all(|e| e.kind == ErrorKind::Policy));
    assert!(said[0].starts_with("bao.yaml:7:") && said[0].contains("spec.openbao.address"));
    assert!(said[0].contains("no public name") && said[0].contains("policy.endpoints"));
    assert!(said[1].contains("spec.openbao.address") && said[1].contains("plain http://"));
    assert!(
        said[2].contains("spec.openbao.auth.appRole.secretId.file")
            && said[2].contains("identityDirectories")
    );

    // With no identityDirectories, no openbao store logs in; with no endpoints, none is named.
    let catalog = load(&text, &Policy::default());
    assert!(catalog.stores.is_empty());
    let said = errors(&catalog);
    assert!(
        said.iter()
            .any(|e| e.contains("names none") && e.contains("identityDirectories")),
        "{said:#?}"
    );

    // A file store may not deliver the folder the credentials live in (the policy keeps the
    // host's keys apart; the loader would refuse it even without).
    let text = [
        text,
        "---\napiVersion: ramlet.dev/v1alpha1\nkind: SecretStore\nmetadata: {name: files}\nspec:\n  file: {directory: /etc/ramlet/keys}\n".to_owned(),
    ]
    .concat();
    let catalog = load(&text, &host_policy());
    assert!(
        errors(&catalog)
            .iter()
            .any(|e| e.contains("spec.file.directory") && e.ends_with("[policy]")),
        "{:#?}",
        errors(&catalog)
    );
}

/// A file of a container reading `secret` (a YAML flow mapping) as `f`.
fn reader(name: &str, secret: &str) -> String {
    format!(
        "---\napiVersion: ramlet.dev/v1alpha1\nkind: Container\nmetadata: {{name: {name}}}\nspec:\n  image: localhost/busybox\n  volumes:\n    - name: v\n      mountPath: /run/v\n      files:\n        - path: f\n          secret: {secret}\n"
    )
}

const PKI: &str = "  refreshInterval: 1m\n  openbao:\n    address: https://bao.internal:8200\n    mount: pki\n    auth:\n      token: {file: /etc/ramlet/keys/t}\n    pki:\n      certificates:\n";

fn pki_store(name: &str, certificates: &str) -> String {
    format!(
        "---\napiVersion: ramlet.dev/v1alpha1\nkind: SecretStore\nmetadata: {{name: {name}}}\nspec:\n{PKI}{certificates}"
    )
}

/// Issue 39: a PKI store lists the certificates its engine issues; a volume file reads one by
/// name and takes a part of it with `property`.
#[test]
fn a_pki_store_lists_its_certificates_and_files_take_their_parts() {
    let text = [
        pki_store(
            "tls",
            "        web: {role: web, commonName: App.Example.com, altNames: [www.example.com, '*.api.example.com'], ipSans: ['10.0.0.7', '::1'], ttl: 72h}\n",
        ),
        reader("c-key", "{store: tls, name: web, property: private_key}"),
        reader("c-whole", "{store: tls, name: web}"),
    ]
    .concat();
    let catalog = load(&text, &host_policy());
    assert!(catalog.errors.is_empty(), "{:#?}", errors(&catalog));
    let Provider::Openbao(openbao) = &catalog.stores.values().next().unwrap().provider else {
        panic!("an openbao store")
    };
    let web = &openbao.pki.as_ref().unwrap()["web"];
    assert_eq!(web.common_name, "app.example.com");
    assert_eq!(web.alt_names, ["www.example.com", "*.api.example.com"]);
    assert_eq!(web.ip_sans.len(), 2);
    assert_eq!(web.ttl, std::time::Duration::from_hours(72));
}

/// Every mistake in a certificate's settings or in a file that reads one is refused at its
/// field, alone: the store with a bad certificate, the containers that misread a good one.
#[test]
fn a_certificate_or_a_reader_that_is_wrong_is_refused_at_its_field() {
    let text = [
        pki_store(
            "bad",
            "        web: {role: web, commonName: 'app.example.com,evil.org', ttl: 2m}\n        api: {role: 'a/b', commonName: api.example.com, ipSans: [10.0.0.300], ttl: 1h}\n",
        ),
        pki_store(
            "short",
            "        web: {role: web, commonName: app.example.com, ttl: 2m}\n",
        ),
        pki_store(
            "tls",
            "        web: {role: web, commonName: app.example.com, ttl: 1h}\n",
        ),
        reader("c-unknown", "{store: tls, name: api}"),
        reader("c-pinned", "{store: tls, name: web, version: \"3\"}"),
        reader("c-part", "{store: tls, name: web, property: password}"),
        reader("c-good", "{store: tls, name: web, property: certificate}"),
    ]
    .concat();
    let catalog = load(&text, &host_policy());
    let said = errors(&catalog);
    let stores: Vec<&str> = catalog
        .stores
        .keys()
        .map(ramlet_specs::model::Name::as_str)
        .collect();
    assert_eq!(stores, ["tls"], "{said:#?}");
    let containers: Vec<&str> = catalog
        .containers
        .keys()
        .map(ramlet_specs::model::Name::as_str)
        .collect();
    assert_eq!(containers, ["c-good"], "{said:#?}");
    for (field, why) in [
        (
            "spec.openbao.pki.certificates.web.commonName",
            "not a DNS name",
        ),
        ("spec.openbao.pki.certificates.api.role", "not a PKI role"),
        (
            "spec.openbao.pki.certificates.api.ipSans[0]",
            "not an IP address",
        ),
        (
            "spec.openbao.pki.certificates.web.ttl",
            "three refreshes of this store (60 s each)",
        ),
        (
            "spec.volumes[0].files[0].secret.name",
            "its pki.certificates are web",
        ),
        (
            "spec.volumes[0].files[0].secret.version",
            "a certificate has one version",
        ),
        (
            "spec.volumes[0].files[0].secret.property",
            "not a part of a certificate",
        ),
    ] {
        assert!(
            said.iter().any(|e| e.contains(field) && e.contains(why)),
            "no error at {field} saying {why:?}: {said:#?}"
        );
    }
    // Each at its own line of the file.
    let line = |needle: &str| error_line(&said, needle);
    let text_line = |needle: &str| text_line(&text, needle);
    assert_eq!(line("not a PKI role"), text_line("role: 'a/b'"));
    assert_eq!(
        line("not a part of a certificate"),
        text_line("property: password")
    );
}

/// A PKI store is an `openbao` store to the host's policy: a spec author cannot have the host's
/// token issue certificates at a server the policy does not name, nor log in with a file
/// outside `identityDirectories`.
#[test]
fn a_pki_store_is_held_to_the_host_policy_like_any_openbao_store() {
    let text = pki_store(
        "tls",
        "        web: {role: web, commonName: app.example.com, ttl: 1h}\n",
    )
    .replace("https://bao.internal:8200", "https://attacker.example")
        + &pki_store(
            "keyed",
            "        web: {role: web, commonName: app.example.com, ttl: 1h}\n",
        )
        .replace("/etc/ramlet/keys/t", "/etc/shadow");
    refused_for_address_and_token_file(&text);
}

/// The line the first error that says `needle` is at.
fn error_line(said: &[String], needle: &str) -> usize {
    said.iter()
        .find(|e| e.contains(needle))
        .and_then(|e| e.split(':').nth(1))
        .and_then(|l| l.parse::<usize>().ok())
        .unwrap()
}

/// The line of `text` that holds `needle` (1-based).
fn text_line(text: &str, needle: &str) -> usize {
    text.lines().position(|l| l.contains(needle)).unwrap() + 1
}

fn database_store(name: &str, credentials: &str) -> String {
    format!(
        "---\napiVersion: ramlet.dev/v1alpha1\nkind: SecretStore\nmetadata: {{name: {name}}}\nspec:\n  refreshInterval: 1m\n  openbao:\n    address: https://bao.internal:8200\n    mount: database\n    auth:\n      token: {{file: /etc/ramlet/keys/t}}\n    database:\n      credentials:\n{credentials}"
    )
}

/// Issue 39: a database store lists the credentials its engine leases; a volume file reads a
/// username or a password with `property`. A wrong role, name, part or pinned version is
/// refused at its field and line, alone; a mount that claims both engines is refused.
#[test]
fn a_database_store_lists_its_credentials_and_files_take_a_username_or_a_password() {
    let text = [
        database_store("db", "        app: {role: app-rw}\n"),
        database_store("bad", "        app: {role: 'app rw'}\n"),
        database_store("both", "        app: {role: app}\n")
            .replace("    database:\n", "    pki:\n      certificates:\n        web: {role: web, commonName: a.example.com, ttl: 1h}\n    database:\n"),
        database_store("none", "        {}\n").replace("credentials:\n        {}", "credentials: {}"),
        reader("c-user", "{store: db, name: app, property: username}"),
        reader("c-password", "{store: db, name: app, property: password}"),
        reader("c-unknown", "{store: db, name: ro}"),
        reader("c-pinned", "{store: db, name: app, version: \"2\"}"),
        reader("c-part", "{store: db, name: app, property: private_key}"),
    ]
    .concat();
    let catalog = load(&text, &host_policy());
    let said = errors(&catalog);
    let names = |keys: Vec<&str>| keys.join(" ");
    assert_eq!(
        names(
            catalog
                .stores
                .keys()
                .map(ramlet_specs::model::Name::as_str)
                .collect()
        ),
        "db",
        "{said:#?}"
    );
    assert_eq!(
        names(
            catalog
                .containers
                .keys()
                .map(ramlet_specs::model::Name::as_str)
                .collect()
        ),
        "c-password c-user",
        "{said:#?}"
    );
    let Provider::Openbao(openbao) = &catalog.stores.values().next().unwrap().provider else {
        panic!("an openbao store")
    };
    assert_eq!(openbao.database.as_ref().unwrap()["app"].role, "app-rw");
    for (field, why) in [
        (
            "spec.openbao.database.credentials.app.role",
            "not a database role",
        ),
        ("spec.openbao.database:", "`pki` or `database`, not both"),
        (
            "spec.openbao.database.credentials:",
            "name 1 to 64 credentials (this store names 0)",
        ),
        (
            "spec.volumes[0].files[0].secret.name",
            "its database.credentials are app",
        ),
        (
            "spec.volumes[0].files[0].secret.version",
            "a leased credential has one version",
        ),
        (
            "spec.volumes[0].files[0].secret.property",
            "not a part of a credential; take one of username, password",
        ),
    ] {
        assert!(
            said.iter().any(|e| e.contains(field) && e.contains(why)),
            "no error at {field} saying {why:?}: {said:#?}"
        );
    }
    let line = |needle: &str| error_line(&said, needle);
    let text_line = |needle: &str| text_line(&text, needle);
    assert_eq!(line("not a database role"), text_line("role: 'app rw'"));
    assert_eq!(
        line("not a part of a credential"),
        text_line("property: private_key")
    );
}

/// A database store is an `openbao` store to the host's policy, like a PKI one: a spec author
/// cannot have the host's token lease users at a server the policy does not name, nor log in
/// with a file outside `identityDirectories`.
#[test]
fn a_database_store_is_held_to_the_host_policy_like_any_openbao_store() {
    let text = database_store("db", "        app: {role: app}\n")
        .replace("https://bao.internal:8200", "https://attacker.example")
        + &database_store("keyed", "        app: {role: app}\n")
            .replace("/etc/ramlet/keys/t", "/srv/team-b/bao-token");
    refused_for_address_and_token_file(&text);
}

/// Both stores of `text` (one at an address the host policy does not name, one with a token
/// file outside its `identityDirectories`) are refused as policy errors at those fields.
fn refused_for_address_and_token_file(text: &str) {
    let catalog = load(text, &host_policy());
    assert!(catalog.stores.is_empty(), "{:#?}", errors(&catalog));
    let said = errors(&catalog);
    assert!(
        catalog.errors.iter().all(|e| e.kind == ErrorKind::Policy),
        "{said:#?}"
    );
    assert!(
        said.iter().any(|e| e.contains("spec.openbao.address")),
        "{said:#?}"
    );
    assert!(
        said.iter()
            .any(|e| e.contains("spec.openbao.auth.token.file")),
        "{said:#?}"
    );
}
