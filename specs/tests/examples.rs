//! Every folder under `examples/` is a spec directory a user may copy: it must load with no
//! errors, and declare what its README line promises.

use std::path::{Path, PathBuf};

use ramlet_specs::model::{OpenbaoAuth, Provider, Rotation, SecretVersion};
use ramlet_specs::{Catalog, Policy, load_dir_with};

/// The host policy an example needs (its `config.yaml.host`), or none.
fn host_policy(dir: &Path) -> Policy {
    #[derive(serde::Deserialize)]
    struct Config {
        policy: Policy,
    }
    std::fs::read_to_string(dir.join("config.yaml.host")).map_or_else(
        |_| Policy::default(),
        |text| serde_yaml::from_str::<Config>(&text).unwrap().policy,
    )
}

fn example(name: &str) -> Catalog {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../examples")
        .join(name);
    let catalog = load_dir_with(&dir, &host_policy(&dir)).unwrap();
    assert!(catalog.errors.is_empty(), "{name}: {:#?}", catalog.errors);
    catalog
}

#[test]
fn every_example_is_valid() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples");
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(root)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    dirs.sort();
    assert!(dirs.len() >= 3);
    for dir in dirs {
        let catalog = example(dir.file_name().unwrap().to_str().unwrap());
        assert!(!catalog.containers.is_empty(), "{}", dir.display());
    }
}

#[test]
fn web_tls_gcp_reloads_nginx_with_sighup() {
    let catalog = example("web-tls-gcp");
    let web = &catalog.containers.values().next().unwrap();
    assert_eq!(
        web.rotation,
        Rotation::Reload {
            signal: "SIGHUP".into()
        }
    );
    let key = &web.volumes[0].files[0];
    assert_eq!(
        (key.path.as_str(), key.mode, key.uid),
        ("tls.key", 0o400, 101)
    );
    let store = &catalog.stores[&key.secret().unwrap().store];
    assert!(matches!(store.provider, Provider::Gcp { .. }));
}

#[test]
fn app_db_aws_takes_json_keys_and_pins_the_previous_key() {
    let catalog = example("app-db-aws");
    let api = catalog.containers.values().next().unwrap();
    let db = &api.volumes[0];
    let props: Vec<_> = db
        .files
        .iter()
        .map(|f| f.secret().unwrap().property.as_deref())
        .collect();
    assert_eq!(props, [Some("username"), Some("password")]);
    assert_eq!(db.size_limit, 64 * 1024);
    let previous = &api.volumes[1].files[1].secret().unwrap();
    assert_eq!(previous.version, SecretVersion::Stage("AWSPREVIOUS".into()));
    let edge = [("role".to_owned(), "edge".to_owned())].into();
    let app = [("role".to_owned(), "app".to_owned())].into();
    assert_eq!(catalog.selected(&edge).count(), 0);
    assert_eq!(catalog.selected(&app).count(), 1);
}

#[test]
fn local_file_reads_from_a_directory() {
    let catalog = example("local-file");
    let store = catalog.stores.values().next().unwrap();
    assert_eq!(
        store.provider,
        Provider::File {
            directory: "/etc/ramlet/secrets".into()
        }
    );
    assert_eq!(store.refresh_interval.as_secs(), 30);
}

#[test]
fn local_creds_reads_sealed_credentials() {
    let catalog = example("local-creds");
    let store = catalog.stores.values().next().unwrap();
    assert_eq!(
        store.provider,
        Provider::Creds {
            directory: "/etc/ramlet/creds".into()
        }
    );
    assert!(!store.provider.plain_at_rest());
}

#[test]
fn app_openbao_logs_in_with_a_sealed_approle_secret_id_and_only_by_the_hosts_leave() {
    let catalog = example("app-openbao");
    let store = catalog.stores.values().next().unwrap();
    let Provider::Openbao(openbao) = &store.provider else {
        panic!("{:?}", store.provider)
    };
    assert!(matches!(
        &openbao.auth,
        OpenbaoAuth::AppRole {
            secret_id: ramlet_specs::model::HostKey::Credential(_),
            ..
        }
    ));
    let orders = catalog.containers.values().next().unwrap();
    assert!(orders.health_check.is_some());
    // Without the host's consent (its config.yaml.host), the store is refused.
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/app-openbao");
    let refused = ramlet_specs::load_dir(&dir).unwrap();
    assert!(refused.stores.is_empty());
    assert!(
        refused
            .errors
            .iter()
            .any(|e| e.kind == ramlet_specs::ErrorKind::Policy)
    );
}

#[test]
fn app_template_renders_one_env_file_from_two_secrets() {
    let catalog = example("app-template");
    let app = catalog.containers.values().next().unwrap();
    let file = &app.volumes[0].files[0];
    assert_eq!(file.path, "app.env");
    let ramlet_specs::model::Content::Template(template) = &file.content else {
        panic!("app.env is a template");
    };
    let inputs: Vec<(&str, &str)> = template
        .inputs
        .iter()
        .map(|(name, r)| (name.as_str(), r.name.as_str()))
        .collect();
    assert_eq!(inputs, [("db", "app/db"), ("token", "app/api-token")]);
    assert!(template.text.contains("{{ db.password | urlencode }}"));
    assert!(app.health_check.is_some());
}

#[test]
fn web_tls_openbao_has_its_certificate_issued_and_reloads_nginx() {
    let catalog = example("web-tls-openbao");
    let store = catalog.stores.values().next().unwrap();
    let Provider::Openbao(openbao) = &store.provider else {
        panic!("an openbao store")
    };
    let certificates = openbao.pki.as_ref().expect("a PKI engine");
    let web = &certificates["web"];
    assert_eq!(
        (web.role.as_str(), web.common_name.as_str()),
        ("web", "shop.example.com")
    );
    assert_eq!(web.ttl, std::time::Duration::from_hours(72));
    let shop = catalog.containers.values().next().unwrap();
    let key = &shop.volumes[0].files[0];
    assert_eq!(
        key.secret().unwrap().property.as_deref(),
        Some("private_key")
    );
    assert!(matches!(shop.rotation, Rotation::Reload { .. }));
    assert!(shop.health_check.is_some());
}

#[test]
fn app_db_openbao_leases_a_database_user_and_renders_its_url() {
    let catalog = example("app-db-openbao");
    let store = catalog.stores.values().next().unwrap();
    let Provider::Openbao(openbao) = &store.provider else {
        panic!("an openbao store")
    };
    let credentials = openbao.database.as_ref().expect("a database engine");
    assert_eq!(credentials["app"].role, "app");
    let app = catalog.containers.values().next().unwrap();
    let ramlet_specs::model::Content::Template(template) = &app.volumes[0].files[0].content else {
        panic!("a template")
    };
    assert_eq!(template.inputs["db"].name, "app");
    assert!(template.text.contains("{{ db.password | urlencode }}"));
    assert!(app.health_check.is_some());
}
