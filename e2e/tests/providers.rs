//! The AWS and GCP stores against their peers on loopback, started by the tests: moto behind a
//! counting proxy, and the project's Secret Manager fake. Calls are counted at the wire.
//!
//! Needs the peers' virtualenv (`scripts/install-peers`) and, for moto, the static test
//! credentials that `scripts/test` exports (`AWS_ACCESS_KEY_ID=testing`, ...).

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use ramlet::providers::ErrorKind;
use ramlet::providers::stores::{Due, Stores};
use ramlet::providers::{Limits, connector};
use ramlet_e2e::peers::{Aws, GCP_PROJECT, Gcp};
use ramlet_specs::Catalog;

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("ramlet-providers-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("specs")).unwrap();
    dir
}

/// A catalog with one store and one container per secret reference (`name[@version]` for GCP,
/// `name` or `name~STAGE` for AWS).
fn catalog(dir: &Path, store: &str, references: &[&str]) -> Catalog {
    let mut text = format!(
        "apiVersion: ramlet.dev/v1alpha1\nkind: SecretStore\nmetadata: {{name: s}}\nspec: {{{store}}}\n"
    );
    for (i, reference) in references.iter().enumerate() {
        let secret = match (reference.split_once('@'), reference.split_once('~')) {
            (Some((name, version)), _) => {
                format!("{{store: s, name: {name}, version: \"{version}\"}}")
            }
            (_, Some((name, stage))) => {
                format!("{{store: s, name: {name}, versionStage: {stage}}}")
            }
            _ => format!("{{store: s, name: {reference}}}"),
        };
        write!(
            text,
            "---\napiVersion: ramlet.dev/v1alpha1\nkind: Container\nmetadata: {{name: c{i}}}\nspec:\n  image: localhost/busybox\n  volumes:\n    - name: v\n      mountPath: /run/v\n      files:\n        - path: f\n          secret: {secret}\n"
        )
        .unwrap();
    }
    std::fs::write(dir.join("specs/all.yaml"), text).unwrap();
    let catalog =
        ramlet_specs::load_dir_with(&dir.join("specs"), &ramlet_e2e::peers::loopback_policy())
            .unwrap();
    assert!(catalog.errors.is_empty(), "{:?}", catalog.errors);
    catalog
}

async fn refresh(stores: &mut Stores, catalog: &Catalog, due: Due) {
    let references = catalog
        .containers
        .values()
        .flat_map(|c| &c.volumes)
        .flat_map(|v| &v.files)
        .flat_map(ramlet_specs::model::VolumeFile::references);
    stores.refresh(&catalog.stores, references, due).await;
}

/// The value and version the stores hold for container `c<i>`'s secret, or the error kind.
fn value(stores: &Stores, catalog: &Catalog, i: usize) -> Result<(String, String), ErrorKind> {
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
        .map_err(|e| e.kind())
}

fn aws_credentials() {
    assert!(
        std::env::var_os("AWS_ACCESS_KEY_ID").is_some(),
        "set AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing for moto (scripts/test does)"
    );
}

async fn aws_client(aws: &Aws) -> aws_sdk_secretsmanager::Client {
    let config = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new("eu-west-1"))
        .endpoint_url(format!("http://127.0.0.1:{}", aws.moto.port))
        .load()
        .await;
    aws_sdk_secretsmanager::Client::new(&config)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[allow(clippy::too_many_lines)] // one story: a secret's life against the peer, step by step
async fn aws_checks_with_one_describe_and_reads_only_what_changed() {
    aws_credentials();
    let dir = scratch("aws");
    let aws = Aws::start(&dir);
    let sm = aws_client(&aws).await;
    for (name, value) in [
        ("prod/db", r#"{"password":"one"}"#),
        ("a", "a1"),
        ("b", "b1"),
        ("c", "c1"),
    ] {
        sm.create_secret()
            .name(name)
            .secret_string(value)
            .send()
            .await
            .unwrap();
    }
    sm.create_secret()
        .name("bin")
        .secret_binary(aws_sdk_secretsmanager::primitives::Blob::new(vec![
            0u8, 159, 255,
        ]))
        .send()
        .await
        .unwrap();
    let store = format!(
        "aws: {{region: eu-west-1, endpoint: \"{}\"}}",
        aws.endpoint()
    );
    let mut stores = Stores::new(
        connector(std::path::PathBuf::from("/nonexistent")),
        Limits::default(),
    );

    // 50 specs share one secret: one DescribeSecret and one GetSecretValue.
    let shared = catalog(&dir, &store, &["prod/db"; 50]);
    aws.proxy.clear_calls();
    refresh(&mut stores, &shared, Due::All).await;
    assert_eq!(
        aws.proxy.count("DescribeSecret"),
        1,
        "{:?}",
        aws.proxy.calls()
    );
    assert_eq!(
        aws.proxy.count("GetSecretValue"),
        1,
        "{:?}",
        aws.proxy.calls()
    );
    let (first, first_version) = value(&stores, &shared, 49).unwrap();
    assert_eq!(first, r#"{"password":"one"}"#);

    // Unchanged: one DescribeSecret, no read.
    aws.proxy.clear_calls();
    refresh(&mut stores, &shared, Due::All).await;
    assert_eq!(aws.proxy.calls(), ["secretsmanager.DescribeSecret"]);

    // A new version: described, then read once.
    sm.put_secret_value()
        .secret_id("prod/db")
        .secret_string(r#"{"password":"two"}"#)
        .send()
        .await
        .unwrap();
    aws.proxy.clear_calls();
    refresh(&mut stores, &shared, Due::All).await;
    assert_eq!(
        aws.proxy.count("GetSecretValue"),
        1,
        "{:?}",
        aws.proxy.calls()
    );
    let (second, second_version) = value(&stores, &shared, 0).unwrap();
    assert_eq!(second, r#"{"password":"two"}"#);
    assert_ne!(first_version, second_version);

    // Several changed secrets: one BatchGetSecretValue; a stage; a binary secret; a missing one.
    let many = catalog(
        &dir,
        &store,
        &["a", "b", "c", "prod/db~AWSPREVIOUS", "bin", "nope"],
    );
    aws.proxy.clear_calls();
    refresh(&mut stores, &many, Due::All).await;
    assert_eq!(
        aws.proxy.count("BatchGetSecretValue"),
        1,
        "{:?}",
        aws.proxy.calls()
    );
    assert_eq!(
        aws.proxy.count("DescribeSecret"),
        6,
        "{:?}",
        aws.proxy.calls()
    );
    for (i, want) in ["a1", "b1", "c1", r#"{"password":"one"}"#]
        .iter()
        .enumerate()
    {
        assert_eq!(value(&stores, &many, i).unwrap().0, *want);
    }
    let c4 = &many
        .containers
        .values()
        .find(|c| c.name.as_str() == "c4")
        .unwrap()
        .volumes[0]
        .files[0]
        .secret()
        .unwrap();
    let binary = stores
        .get(&ramlet::secrets::SecretId::of(c4), &c4.version)
        .unwrap();
    assert_eq!(binary.bytes.expose(), [0, 159, 255]);
    assert_eq!(value(&stores, &many, 5), Err(ErrorKind::NotFound));

    // A throttled batch (its quota is far below GetSecretValue's): each secret is read on its
    // own, nothing fails.
    for name in ["a", "b", "c"] {
        sm.put_secret_value()
            .secret_id(name)
            .secret_string(format!("{name}2"))
            .send()
            .await
            .unwrap();
    }
    aws.throttle("secretsmanager.BatchGetSecretValue");
    aws.proxy.clear_calls();
    refresh(&mut stores, &many, Due::All).await;
    aws.throttle("");
    assert!(
        aws.proxy.count("BatchGetSecretValue") >= 1
            && aws.proxy.count("secretsmanager.GetSecretValue") == 3,
        "{:?}",
        aws.proxy.calls()
    );
    for (i, want) in ["a2", "b2", "c2"].iter().enumerate() {
        assert_eq!(value(&stores, &many, i).unwrap().0, *want);
    }

    // The peer goes away: the last good values stay, the error is transient.
    aws.proxy.clear_calls();
    let mut aws = aws;
    aws.proxy.stop();
    refresh(&mut stores, &many, Due::All).await;
    assert_eq!(value(&stores, &many, 0), Err(ErrorKind::Unavailable));
    let status = stores.status();
    assert!(!status["s"].healthy);
    assert_eq!(status["s"].error_kind, "unavailable");
    aws.proxy.start();
    refresh(&mut stores, &many, Due::All).await;
    assert_eq!(value(&stores, &many, 0).unwrap().0, "a2");
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gcp_reads_latest_numbers_and_aliases_and_says_why_a_version_fails() {
    let dir = scratch("gcp");
    let gcp = Gcp::start(&dir);
    gcp.create("tls-key");
    assert_eq!(gcp.add_version("tls-key", b"key-1"), 1);
    assert_eq!(gcp.add_version("tls-key", b"key-2"), 2);
    gcp.alias("tls-key", "prod", 1);
    gcp.create("gone");
    gcp.add_version("gone", b"x");
    gcp.version_action("gone", 1, "destroy");
    gcp.create("off");
    gcp.add_version("off", b"x");
    gcp.version_action("off", 1, "disable");
    gcp.create("denied");
    gcp.add_version("denied", b"x");
    let (status, _) = gcp.call("POST", "/fake/deny?secret=denied", "");
    assert_eq!(status, 200);

    let store = format!(
        "gcp: {{project: {}, endpoint: \"{}\"}}",
        GCP_PROJECT.0,
        gcp.endpoint()
    );
    let mut stores = Stores::new(
        connector(std::path::PathBuf::from("/nonexistent")),
        Limits::default(),
    );
    let refs = ["tls-key"; 20]
        .into_iter()
        .chain([
            "tls-key@1",
            "tls-key@prod",
            "gone",
            "off",
            "denied",
            "missing",
        ])
        .collect::<Vec<_>>();
    let all = catalog(&dir, &store, &refs);
    gcp.fake.clear_calls();
    refresh(&mut stores, &all, Due::All).await;
    // 20 specs share `latest`: one access for them, one for each other reference.
    assert_eq!(gcp.fake.count(":access"), 7, "{:?}", gcp.fake.calls());
    assert_eq!(gcp.fake.count("tls-key/versions/latest:access"), 1);
    assert_eq!(
        value(&stores, &all, 19).unwrap(),
        ("key-2".into(), "2".into())
    );
    assert_eq!(
        value(&stores, &all, 20).unwrap(),
        ("key-1".into(), "1".into())
    );
    assert_eq!(
        value(&stores, &all, 21).unwrap(),
        ("key-1".into(), "1".into())
    );
    assert_eq!(value(&stores, &all, 22), Err(ErrorKind::VersionDestroyed));
    assert_eq!(value(&stores, &all, 23), Err(ErrorKind::VersionDisabled));
    assert_eq!(value(&stores, &all, 24), Err(ErrorKind::PermissionDenied));
    assert_eq!(value(&stores, &all, 25), Err(ErrorKind::NotFound));
    let message = stores.status()["s"].message.clone();
    assert!(!message.is_empty());

    // A new version reaches `latest` at the next refresh; the others stay as they are.
    gcp.add_version("tls-key", b"key-3");
    refresh(&mut stores, &all, Due::All).await;
    assert_eq!(
        value(&stores, &all, 0).unwrap(),
        ("key-3".into(), "3".into())
    );
    assert_eq!(value(&stores, &all, 21).unwrap().0, "key-1");

    // Not due: a timer wake-up before the refresh interval asks nothing.
    gcp.fake.clear_calls();
    refresh(&mut stores, &all, Due::Timers).await;
    assert_eq!(gcp.fake.calls(), Vec::<String>::new());

    // A fixed permission heals at the next due refresh without anybody.
    let _ = gcp.call("POST", "/fake/deny?secret=", "");
    refresh(&mut stores, &all, Due::All).await;
    assert_eq!(value(&stores, &all, 24).unwrap().0, "x");

    // A payload that does not match its CRC32C is refused, never handed on; it heals too.
    let (status, _) = gcp.call("POST", "/fake/corrupt?secret=tls-key", "");
    assert_eq!(status, 200);
    gcp.add_version("tls-key", b"key-4");
    refresh(&mut stores, &all, Due::All).await;
    assert_eq!(value(&stores, &all, 0), Err(ErrorKind::Corrupt));
    let c0 = all
        .containers
        .values()
        .find(|c| c.name.as_str() == "c0")
        .unwrap();
    let reference = &c0.volumes[0].files[0].secret().unwrap();
    let message = stores
        .get(
            &ramlet::secrets::SecretId::of(reference),
            &reference.version,
        )
        .unwrap_err()
        .to_string();
    assert!(message.contains("CRC32C"), "{message}");
    let _ = gcp.call("POST", "/fake/corrupt?secret=", "");
    refresh(&mut stores, &all, Due::All).await;
    assert_eq!(
        value(&stores, &all, 0).unwrap(),
        ("key-4".into(), "4".into())
    );
    let _ = std::fs::remove_dir_all(dir);
}
