//! A host's policy: a `file` store outside the allowed folders, a forbidden escape-hatch key and
//! an endpoint that would receive the host's credentials are refused at their line, and nothing
//! else is.

use std::fmt::Write as _;
use std::path::PathBuf;

use ramlet_specs::{ErrorKind, Policy, load_texts_with};

const STORES: &str = "apiVersion: ramlet.dev/v1alpha1
kind: SecretStore
metadata: {name: inside}
spec:
  file: {directory: /srv/secrets/app}
---
apiVersion: ramlet.dev/v1alpha1
kind: SecretStore
metadata: {name: outside}
spec:
  file:
    directory: /srv/secrets-other
";

/// The catalog's errors of kind `policy`, as printed.
fn policy_errors(catalog: &ramlet_specs::Catalog) -> Vec<String> {
    catalog
        .errors
        .iter()
        .filter(|e| e.kind == ErrorKind::Policy)
        .map(ToString::to_string)
        .collect()
}

fn container(name: &str, store: &str, quadlet: &str) -> String {
    format!(
        "apiVersion: ramlet.dev/v1alpha1
kind: Container
metadata: {{name: {name}}}
spec:
  image: localhost/busybox
  volumes:
    - name: v
      mountPath: /run/v
      files:
        - path: f
          secret: {{store: {store}, name: x}}
{quadlet}"
    )
}

#[test]
fn what_the_policy_forbids_is_refused_at_its_line_and_nothing_else() {
    let policy = Policy {
        store_directories: vec![PathBuf::from("/srv/secrets")],
        forbidden_keys: ["Container.AddDevice".to_owned()].into(),
        ..Policy::default()
    };
    let texts = [
        ("stores.yaml", STORES.to_owned()),
        ("fine.yaml", container("fine", "inside", "")),
        ("orphan.yaml", container("orphan", "outside", "")),
        (
            "device.yaml",
            container(
                "device",
                "inside",
                "  quadlet:\n    Container:\n      AddDevice: /dev/fuse\n",
            ),
        ),
    ]
    .map(|(file, text)| (PathBuf::from(file), text));
    let catalog = load_texts_with(texts, &policy);
    let names: Vec<&str> = catalog
        .containers
        .keys()
        .map(ramlet_specs::model::Name::as_str)
        .collect();
    assert_eq!(names, ["fine"]);
    assert_eq!(
        catalog.stores.len(),
        1,
        "only the store inside /srv/secrets"
    );
    let policy_errors = policy_errors(&catalog);
    assert_eq!(policy_errors.len(), 2, "{policy_errors:#?}");
    assert!(
        policy_errors[0].starts_with("device.yaml:14:18:")
            && policy_errors[0].contains("spec.quadlet.Container.AddDevice"),
        "{}",
        policy_errors[0]
    );
    assert!(
        policy_errors[1].starts_with("stores.yaml:12:")
            && policy_errors[1].contains("spec.file.directory")
            && policy_errors[1].contains("/srv/secrets-other"),
        "{}",
        policy_errors[1]
    );
    // The container of the refused store is refused too, at its store reference.
    assert!(
        catalog
            .errors
            .iter()
            .any(|e| e.file.ends_with("orphan.yaml") && e.field.contains("store")),
        "{:#?}",
        catalog.errors
    );
}

/// Issue 19, finding 1: a spec could point `gcp.endpoint` (and the event endpoints, and AWS's) at
/// any server and the host's bearer token or SigV4-signed requests went there. With the empty
/// policy only the providers' own endpoints load; anything else is a `policy` error at its line
/// until the host's `policy.endpoints` names it.
#[test]
fn regression_19_credentials_go_only_to_endpoints_the_host_allows() {
    let store = |name: &str, provider: &str| {
        format!(
            "---\napiVersion: ramlet.dev/v1alpha1\nkind: SecretStore\nmetadata: {{name: {name}}}\nspec:\n{provider}"
        )
    };
    let text = [
        store("gcp-public", "  gcp: {project: my-project}\n"),
        store(
            "aws-fips",
            "  aws: {region: us-east-1, endpoint: \"https://secretsmanager-fips.us-east-1.amazonaws.com\"}\n",
        ),
        store(
            "gcp-attacker",
            "  gcp: {project: my-project, endpoint: \"https://attacker.example\"}\n",
        ),
        store(
            "aws-attacker",
            "  aws: {region: eu-west-1, endpoint: \"https://secretsmanager.eu-west-1.amazonaws.com@attacker.example\"}\n",
        ),
        store(
            "sqs-attacker",
            "  aws:\n    region: eu-west-1\n    events: {queue: \"https://attacker.example/123456789012/q\"}\n",
        ),
        store(
            "pubsub-loopback",
            "  gcp:\n    project: my-project\n    events: {subscription: projects/my-project/subscriptions/sub1, endpoint: \"http://127.0.0.1:8085\"}\n",
        ),
    ]
    .concat();
    let load = |policy: &Policy| {
        let catalog = load_texts_with([(PathBuf::from("stores.yaml"), text.clone())], policy);
        let stores: Vec<String> = catalog
            .stores
            .keys()
            .map(|n| n.as_str().to_owned())
            .collect();
        let errors = policy_errors(&catalog);
        (stores, errors)
    };

    let (stores, errors) = load(&Policy::default());
    assert_eq!(stores, ["aws-fips", "gcp-public"]);
    assert_eq!(errors.len(), 4, "{errors:#?}");
    for (error, at) in errors.iter().zip([
        "stores.yaml:18:",
        "stores.yaml:24:",
        "stores.yaml:32:",
        "stores.yaml:40:",
    ]) {
        assert!(error.starts_with(at), "{error} is not at {at}");
        assert!(error.ends_with("[policy]"), "{error}");
    }
    assert!(
        errors[0].contains("spec.gcp.endpoint")
            && errors[0].contains("https://attacker.example")
            && errors[0].contains("policy.endpoints")
    );
    // The user information is seen for what it is: the request would go to attacker.example.
    assert!(errors[1].contains("spec.aws.endpoint") && errors[1].contains("user information"));
    assert!(errors[2].contains("spec.aws.events.queue"));
    assert!(errors[3].contains("spec.gcp.events.endpoint"));

    // The host's admin names the loopback peer: that store loads, the others stay refused.
    let policy = Policy {
        endpoints: vec!["http://127.0.0.1".to_owned()],
        ..Policy::default()
    };
    let (stores, errors) = load(&policy);
    assert_eq!(stores, ["aws-fips", "gcp-public", "pubsub-loopback"]);
    assert_eq!(errors.len(), 3, "{errors:#?}");
}

/// A `policy.endpoints` entry that would send credentials in clear, or is no origin, is a
/// problem of the host's config, named by its index.
#[test]
fn a_bad_endpoints_entry_is_a_config_problem() {
    let policy = Policy {
        endpoints: vec![
            "https://vpce.example:8443".to_owned(),
            "http://proxy.example".to_owned(),
            "https://proxy.example/path".to_owned(),
        ],
        ..Policy::default()
    };
    let problems = policy.problems();
    assert_eq!(problems.len(), 2, "{problems:#?}");
    assert!(problems[0].starts_with("policy.endpoints[1]: ") && problems[0].contains("loopback"));
    assert!(problems[1].starts_with("policy.endpoints[2]: ") && problems[1].contains("path"));
}

/// Issue 19, finding 4: the escape hatch let a spec stop the agent (`Conflicts=ramlet.service`),
/// reboot the host, turn off seccomp, unmask /proc, have Podman write to a host path, take host
/// devices or `SYS_ADMIN`. With an empty policy each is a `policy` error at its line; what stays
/// within the spec's own containers (and ordinary targets) loads; `allowKeys` lifts a key.
#[test]
fn regression_19_the_escape_hatch_cannot_reach_the_host() {
    let hatch = |name: &str, section: &str, key: &str, value: &str| {
        (
            PathBuf::from(format!("{name}.yaml")),
            container(
                name,
                "inside",
                &format!("  quadlet:\n    {section}:\n      {key}: {value:?}\n"),
            ),
        )
    };
    let texts = vec![
        (PathBuf::from("stores.yaml"), STORES.to_owned()),
        hatch("stops-agent", "Unit", "Conflicts", "ramlet.service"),
        hatch("reboots", "Unit", "StartLimitAction", "reboot-force"),
        hatch("pulls-reboot", "Unit", "Wants", "reboot.target"),
        hatch("unconfined", "Container", "SeccompProfile", "unconfined"),
        hatch("unmasks", "Container", "Unmask", "ALL"),
        hatch("writes-host", "Container", "LogOpt", "path=/etc/cron.d/job"),
        hatch("device", "Container", "AddDevice", "/dev/sda"),
        hatch("admin", "Container", "AddCapability", "SYS_ADMIN"),
        // Within its own bounds: these load.
        hatch("waits", "Unit", "Wants", "network-online.target"),
        hatch("sibling", "Unit", "OnFailure", "waits.service"),
        hatch("binds", "Container", "AddCapability", "NET_BIND_SERVICE"),
    ];
    let load = |policy: &Policy| {
        let catalog = load_texts_with(texts.clone(), policy);
        let loaded: Vec<String> = catalog
            .containers
            .keys()
            .map(|n| n.as_str().to_owned())
            .collect();
        let errors = policy_errors(&catalog);
        (loaded, errors)
    };
    let (loaded, errors) = load(&Policy::default());
    assert_eq!(loaded, ["binds", "sibling", "waits"], "{errors:#?}");
    assert_eq!(errors.len(), 8, "{errors:#?}");
    for error in &errors {
        assert!(
            error.contains(":14:") && error.contains("policy.allowKeys"),
            "{error}"
        );
    }
    assert!(errors.iter().any(|e| e.starts_with("stops-agent.yaml:14:")
        && e.contains("spec.quadlet.Unit.Conflicts")
        && e.contains("ramlet.service")));

    let policy = Policy {
        allow_keys: ["Container.AddDevice".to_owned()].into(),
        ..Policy::default()
    };
    let (loaded, errors) = load(&policy);
    assert!(loaded.contains(&"device".to_owned()));
    assert_eq!(errors.len(), 7, "{errors:#?}");
}

/// A forbidden or allowed key that is no escape-hatch key (the README's old example,
/// `Service.OnFailure`, was one: `OnFailure` is a `[Unit]` key) is a config problem, not a
/// silent no-op.
#[test]
fn regression_19_a_misspelt_policy_key_is_a_config_problem() {
    let policy = Policy {
        forbidden_keys: ["AddCapability".to_owned(), "Service.OnFailure".to_owned()].into(),
        allow_keys: ["AddDevcie".to_owned()].into(),
        ..Policy::default()
    };
    let problems = policy.problems();
    assert_eq!(problems.len(), 2, "{problems:#?}");
    assert!(problems[0].starts_with("policy.forbiddenKeys: \"Service.OnFailure\""));
    assert!(problems[1].starts_with("policy.allowKeys: \"AddDevcie\""));
}

/// The sealed stores read host files too: a `creds` store's folder and an `age` store's identity
/// obey `storeDirectories` as a `file` store's folder does, at their own field.
#[test]
fn sealed_stores_read_only_where_the_policy_lets_stores_read() {
    let policy = Policy {
        store_directories: vec![PathBuf::from("/etc/ramlet")],
        ..Policy::default()
    };
    let text = "apiVersion: ramlet.dev/v1alpha1
kind: SecretStore
metadata: {name: creds-in}
spec:
  creds: {directory: /etc/ramlet/creds}
---
apiVersion: ramlet.dev/v1alpha1
kind: SecretStore
metadata: {name: creds-out}
spec:
  creds: {directory: /srv/other-team/creds}
---
apiVersion: ramlet.dev/v1alpha1
kind: SecretStore
metadata: {name: age-out}
spec:
  age:
    directory: secrets
    identity: /srv/other-team/age.key
---
apiVersion: ramlet.dev/v1alpha1
kind: SecretStore
metadata: {name: age-sealed-out}
spec:
  age:
    directory: secrets
    identityCredential: /srv/other-team/age.cred
---
apiVersion: ramlet.dev/v1alpha1
kind: SecretStore
metadata: {name: age-in}
spec:
  age:
    directory: secrets
    identityCredential: /etc/ramlet/age-identity
";
    let catalog = load_texts_with([(PathBuf::from("stores.yaml"), text.to_owned())], &policy);
    let names: Vec<&str> = catalog
        .stores
        .keys()
        .map(ramlet_specs::model::Name::as_str)
        .collect();
    assert_eq!(names, ["age-in", "creds-in"]);
    let errors = policy_errors(&catalog);
    assert_eq!(errors.len(), 3, "{errors:#?}");
    assert!(
        errors[0].starts_with("stores.yaml:11:") && errors[0].contains("spec.creds.directory"),
        "{}",
        errors[0]
    );
    assert!(
        errors[1].starts_with("stores.yaml:19:") && errors[1].contains("spec.age.identity"),
        "{}",
        errors[1]
    );
    assert!(
        errors[2].starts_with("stores.yaml:27:")
            && errors[2].contains("spec.age.identityCredential"),
        "{}",
        errors[2]
    );
}

/// Issue 33, finding 1: the units a spec's `quadlet:` keys may name were every Container
/// document's, decoys included: an invalid document named `systemd-reboot`, one that runs on
/// no host named `ramlet`, one the policy refuses named `mail`. Only containers that are valid,
/// allowed and selected for this host count; a spec naming any other unit is refused.
#[test]
fn regression_33_decoy_documents_do_not_widen_the_escape_hatch() {
    let store = "apiVersion: ramlet.dev/v1alpha1\nkind: SecretStore\nmetadata: {name: s}\nspec:\n  file: {directory: /srv/secrets}\n";
    let decoy_invalid = "apiVersion: ramlet.dev/v1alpha1\nkind: Container\nmetadata: {name: systemd-reboot}\nspec: {}\n";
    let decoy_elsewhere = container("nginx", "s", "").replace(
        "spec:\n",
        "spec:\n  hostSelector: {matchLabels: {role: nowhere}}\n",
    );
    let decoy_refused = container(
        "mail",
        "s",
        "  quadlet:\n    Container:\n      AddDevice: /dev/sda\n",
    );
    let attacker = |name: &str, key: &str, unit: &str| {
        container(
            name,
            "s",
            &format!("  quadlet:\n    Unit:\n      {key}: {unit}\n"),
        )
    };
    let texts = [
        ("a.yaml", store.to_owned()),
        ("b.yaml", decoy_invalid.to_owned()),
        ("c.yaml", decoy_elsewhere),
        ("d.yaml", decoy_refused),
        (
            "e.yaml",
            attacker("reboots", "Wants", "systemd-reboot.service"),
        ),
        (
            "f.yaml",
            attacker("stops-other", "Conflicts", "nginx.service"),
        ),
        (
            "g.yaml",
            attacker("on-failure", "OnFailure", "mail.service"),
        ),
        ("h.yaml", attacker("chained", "Wants", "on-failure.service")),
        ("i.yaml", attacker("fine", "Wants", "chained-ok.service")),
        ("j.yaml", container("chained-ok", "s", "")),
    ]
    .map(|(file, text)| (PathBuf::from(file), text));
    let policy = Policy {
        host_labels: Some([("role".to_owned(), "edge".to_owned())].into()),
        ..Policy::default()
    };
    let catalog = load_texts_with(texts, &policy);
    let names: Vec<&str> = catalog
        .containers
        .keys()
        .map(ramlet_specs::model::Name::as_str)
        .collect();
    assert_eq!(
        names,
        ["chained-ok", "fine", "nginx"],
        "{:#?}",
        catalog.errors
    );
    for (file, unit) in [
        ("e.yaml", "systemd-reboot.service"),
        ("f.yaml", "nginx.service"),
        ("g.yaml", "mail.service"),
        // Refused because the unit it names was refused in turn.
        ("h.yaml", "on-failure.service"),
    ] {
        assert!(
            catalog.errors.iter().any(|e| e.file.ends_with(file)
                && e.kind == ErrorKind::Policy
                && e.field.starts_with("spec.quadlet.Unit")
                && e.message.contains(unit)),
            "{file}: {:#?}",
            catalog.errors
        );
    }
}

/// Issue 33, "not reproduced": `network: host` (and a path to a network namespace, and the
/// user-mode networks' ways to the host's loopback) gave a container what the host reaches,
/// the cloud metadata service among it. Refused unless `policy.allowHostNetwork`.
#[test]
fn regression_33_the_host_network_needs_the_hosts_consent() {
    let store = "apiVersion: ramlet.dev/v1alpha1\nkind: SecretStore\nmetadata: {name: s}\nspec:\n  file: {directory: /srv/secrets}\n";
    let with = |name: &str, network: &str| {
        container(name, "s", "").replace("spec:\n", &format!("spec:\n  network: {network}\n"))
    };
    let texts = || {
        [
            ("a.yaml", store.to_owned()),
            ("b.yaml", with("host-net", "host")),
            ("c.yaml", with("ns-path", "\"ns:/proc/1/ns/net\"")),
            (
                "d.yaml",
                with("slirp", "\"slirp4netns:allow_host_loopback=true\""),
            ),
            ("e.yaml", with("pasta-map", "\"pasta:--map-gw\"")),
            ("f.yaml", with("none-net", "none")),
            ("g.yaml", with("bridge", "private")),
        ]
        .map(|(file, text)| (PathBuf::from(file), text))
    };
    let catalog = load_texts_with(texts(), &Policy::default());
    let names: Vec<&str> = catalog
        .containers
        .keys()
        .map(ramlet_specs::model::Name::as_str)
        .collect();
    assert_eq!(names, ["bridge", "none-net"], "{:#?}", catalog.errors);
    let errors = policy_errors(&catalog);
    assert_eq!(errors.len(), 4, "{errors:#?}");
    assert!(
        errors[0].starts_with("b.yaml:5:12: spec.network:")
            && errors[0].contains("allowHostNetwork"),
        "{}",
        errors[0]
    );
    let allowed = Policy {
        allow_host_network: true,
        ..Policy::default()
    };
    assert_eq!(load_texts_with(texts(), &allowed).containers.len(), 6);
}

/// Issue 33, finding 6: with `storeDirectories: [/etc/ramlet/secrets]` an age store's identity had
/// to sit in that folder, so a `creds` or `file` store on it delivered the host's age identity to
/// a container. Identities have a list of their own, no data store may overlap it, and whatever
/// the policy a data store whose folder holds another store's identity is refused.
#[test]
fn regression_33_no_store_delivers_another_stores_key() {
    let stores = |creds_dir: &str, identity: &str| {
        format!(
            "apiVersion: ramlet.dev/v1alpha1\nkind: SecretStore\nmetadata: {{name: data}}\nspec:\n  creds: {{directory: {creds_dir}}}\n---\napiVersion: ramlet.dev/v1alpha1\nkind: SecretStore\nmetadata: {{name: repo}}\nspec:\n  age:\n    directory: secrets\n    identityCredential: {identity}\n"
        )
    };
    let load = |text: String, policy: &Policy| {
        let catalog = load_texts_with([(PathBuf::from("stores.yaml"), text)], policy);
        let names: Vec<String> = catalog
            .stores
            .keys()
            .map(|n| n.as_str().to_owned())
            .collect();
        (names, policy_errors(&catalog))
    };

    // No policy at all: the data store holding the identity is refused, at its folder.
    let (names, errors) = load(
        stores("/etc/ramlet/secrets", "/etc/ramlet/secrets/age-identity"),
        &Policy::default(),
    );
    assert_eq!(names, ["repo"]);
    assert!(
        errors.len() == 1
            && errors[0].starts_with("stores.yaml:5:")
            && errors[0].contains("spec.creds.directory")
            && errors[0].contains("a key of store repo"),
        "{errors:#?}"
    );

    // With identityDirectories: identities only there, data stores never in or above it.
    let policy = Policy {
        store_directories: vec![PathBuf::from("/etc/ramlet")],
        identity_directories: vec![PathBuf::from("/etc/ramlet/keys")],
        ..Policy::default()
    };
    let (names, errors) = load(
        stores("/etc/ramlet/secrets", "/etc/ramlet/keys/age"),
        &policy,
    );
    assert_eq!(names, ["data", "repo"], "{errors:#?}");
    let (names, errors) = load(stores("/etc/ramlet", "/etc/ramlet/secrets/age"), &policy);
    assert!(names.is_empty(), "{names:?}");
    assert!(
        errors
            .iter()
            .any(|e| e.contains("spec.creds.directory") && e.contains("/etc/ramlet/keys")),
        "{errors:#?}"
    );
    assert!(errors.iter().any(|e| e.contains("spec.age.identityCredential") && e.contains("identityDirectories")), "{errors:#?}");
    // The two lists overlapping is the host's configuration's own problem.
    assert_eq!(policy.problems().len(), 1, "{:?}", policy.problems());
}

/// Issue 33, finding 8: one spec with 8 volumes of 60 MiB each took the agent past a gigabyte.
/// A spec's volumes may hold 64 MiB together, and the specs a host runs `policy.maxSecretBytes`
/// (256 MiB unless the host says otherwise), taken by name; what does not fit is refused.
#[test]
fn regression_33_secret_bytes_are_bounded_per_spec_and_per_host() {
    let store = "apiVersion: ramlet.dev/v1alpha1\nkind: SecretStore\nmetadata: {name: s}\nspec:\n  file: {directory: /srv/secrets}\n";
    let sized = |name: &str, sizes: &[&str], selector: &str| {
        let mut text = format!(
            "apiVersion: ramlet.dev/v1alpha1\nkind: Container\nmetadata: {{name: {name}}}\nspec:\n{selector}  image: localhost/busybox\n  volumes:\n"
        );
        for (i, size) in sizes.iter().enumerate() {
            let _ = write!(
                text,
                "    - name: v{i}\n      mountPath: /run/v{i}\n      sizeLimit: {size}\n      files:\n        - path: f\n          secret: {{store: s, name: x}}\n"
            );
        }
        text
    };
    let texts = [
        ("a.yaml", store.to_owned()),
        (
            "big.yaml",
            sized("big", &["40Mi", "20Mi", "8Mi", "1Mi"], ""),
        ),
        ("h1.yaml", sized("h1", &["40Mi"], "")),
        ("h2.yaml", sized("h2", &["40Mi"], "")),
        ("h3.yaml", sized("h3", &["40Mi"], "")),
        (
            "h4.yaml",
            sized(
                "h4",
                &["40Mi"],
                "  hostSelector: {matchLabels: {role: db}}\n",
            ),
        ),
    ]
    .map(|(file, text)| (PathBuf::from(file), text));
    let policy = Policy {
        max_secret_bytes: Some("100Mi".to_owned()),
        host_labels: Some([("role".to_owned(), "web".to_owned())].into()),
        ..Policy::default()
    };
    let catalog = load_texts_with(texts, &policy);
    let names: Vec<&str> = catalog
        .containers
        .keys()
        .map(ramlet_specs::model::Name::as_str)
        .collect();
    // h4 runs elsewhere: it costs this host nothing.
    assert_eq!(names, ["h1", "h2", "h4"], "{:#?}", catalog.errors);
    let big = catalog
        .errors
        .iter()
        .find(|e| e.file.ends_with("big.yaml"))
        .unwrap();
    assert_eq!(big.field, "spec.volumes[2].sizeLimit", "{big}");
    assert!(big.message.contains("at most 64 MiB"), "{big}");
    let h3 = catalog
        .errors
        .iter()
        .find(|e| e.file.ends_with("h3.yaml"))
        .unwrap();
    assert!(
        h3.kind == ErrorKind::Policy
            && h3.field == "spec.volumes"
            && h3.message.contains("policy.maxSecretBytes")
            && h3.message.contains("(20 of 100 MiB"),
        "{h3}"
    );
    assert_eq!(
        Policy {
            max_secret_bytes: Some("lots".into()),
            ..Policy::default()
        }
        .problems()
        .len(),
        1
    );
}

/// `policy.denyAddresses` takes IP addresses and prefixes; anything else is the config's own
/// problem, named by its index.
#[test]
fn deny_addresses_are_addresses() {
    let policy = Policy {
        deny_addresses: vec![
            "169.254.169.254".into(),
            "fd00:ec2::254/128".into(),
            "10.0.0.0/33".into(),
            "metadata.google.internal".into(),
        ],
        ..Policy::default()
    };
    let problems = policy.problems();
    assert_eq!(problems.len(), 2, "{problems:#?}");
    assert!(problems[0].starts_with("policy.denyAddresses[2]: "));
    assert!(problems[1].starts_with("policy.denyAddresses[3]: "));
}
