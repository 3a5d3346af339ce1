//! What users read: the wording of the errors that matter most, and that all errors of all
//! documents come out of one run.

use std::path::PathBuf;

use ramlet_specs::{ErrorKind, load_texts};

const STORE: &str = "apiVersion: ramlet.dev/v1alpha1
kind: SecretStore
metadata: {name: local}
spec:
  file: {directory: /etc/ramlet/secrets}
";

fn container(name: &str, mode: &str) -> String {
    format!(
        "apiVersion: ramlet.dev/v1alpha1
kind: Container
metadata: {{name: {name}}}
spec:
  image: localhost/busybox
  volumes:
    - name: s
      mountPath: /run/s
      files:
        - path: a
          mode: {mode}
          secret: {{store: local, name: a}}
"
    )
}

#[test]
fn a_decimal_mode_suggests_the_octal_spelling() {
    let catalog = load_texts([(
        "a.yaml".into(),
        format!("{STORE}---\n{}", container("app", "400")),
    )]);
    let error = &catalog.errors[0];
    assert_eq!(error.kind, ErrorKind::InvalidMode);
    assert_eq!(
        error.to_string(),
        "a.yaml:17:17: spec.volumes[0].files[0].mode: \"400\" is not an octal mode such as \
         `0400`; if you meant octal, write `0400` [invalid-mode]"
    );
}

#[test]
fn octal_spellings_all_mean_the_same_mode() {
    for mode in ["0440", "0o440", "\"0440\""] {
        let catalog = load_texts([(
            "a.yaml".into(),
            format!("{STORE}---\n{}", container("app", mode)),
        )]);
        assert!(catalog.errors.is_empty(), "{mode}: {:?}", catalog.errors);
        let app = catalog.containers.values().next().unwrap();
        assert_eq!(app.volumes[0].files[0].mode, 0o440, "{mode}");
    }
}

#[test]
fn a_duplicate_name_names_both_files() {
    let catalog = load_texts([
        (
            PathBuf::from("a.yaml"),
            format!("{STORE}---\n{}", container("app", "0400")),
        ),
        (PathBuf::from("b.yaml"), container("app", "0400")),
    ]);
    let messages: Vec<String> = catalog.errors.iter().map(ToString::to_string).collect();
    assert_eq!(messages.len(), 2, "{messages:#?}");
    assert!(
        messages[0].starts_with("a.yaml:9:18: metadata.name:")
            && messages[0].contains("b.yaml:3:18"),
        "{}",
        messages[0]
    );
    assert!(
        messages[1].starts_with("b.yaml:3:18: metadata.name:")
            && messages[1].contains("a.yaml:9:18"),
        "{}",
        messages[1]
    );
    assert!(catalog.containers.is_empty());
}

#[test]
fn every_error_of_every_file_comes_out_of_one_run() {
    let bad = container("app", "0999")
        .replace("/run/s", "run/s")
        .replace("path: a", "path: ../a");
    let catalog = load_texts([
        (PathBuf::from("a.yaml"), format!("{STORE}---\n{bad}")),
        (PathBuf::from("b.yaml"), "kind: [".into()),
        (PathBuf::from("c.yaml"), container("good", "0400")),
    ]);
    let kinds: Vec<(String, ErrorKind)> = catalog
        .errors
        .iter()
        .map(|e| (e.file.display().to_string(), e.kind))
        .collect();
    assert_eq!(
        kinds,
        [
            ("a.yaml".into(), ErrorKind::InvalidPath),
            ("a.yaml".into(), ErrorKind::InvalidPath),
            ("a.yaml".into(), ErrorKind::InvalidMode),
            ("b.yaml".into(), ErrorKind::Syntax),
        ]
    );
    assert_eq!(
        catalog
            .containers
            .keys()
            .map(ramlet_specs::model::Name::as_str)
            .collect::<Vec<_>>(),
        ["good"]
    );
}

#[test]
fn a_store_may_come_after_the_containers_that_use_it() {
    let catalog = load_texts([
        (PathBuf::from("a.yaml"), container("app", "0400")),
        (PathBuf::from("z.yaml"), STORE.into()),
    ]);
    assert!(catalog.errors.is_empty(), "{:?}", catalog.errors);
}

#[test]
fn spec_before_kind_is_read_all_the_same() {
    let text = "metadata: {name: local}\nspec:\n  file: {directory: /srv/s}\nkind: SecretStore\napiVersion: ramlet.dev/v1alpha1\n";
    let catalog = load_texts([("a.yaml".into(), text.into())]);
    assert!(catalog.errors.is_empty(), "{:?}", catalog.errors);
    assert_eq!(catalog.stores.len(), 1);
}

#[test]
fn a_bad_event_source_is_named_at_its_line_and_refuses_only_its_store() {
    let text = "apiVersion: ramlet.dev/v1alpha1
kind: SecretStore
metadata: {name: gcp}
spec:
  gcp:
    project: my-project
    events:
      subscription: projects/my-project/topics/secret-events
---
apiVersion: ramlet.dev/v1alpha1
kind: SecretStore
metadata: {name: aws}
spec:
  aws:
    region: eu-west-1
    events: {queue: 'https://sqs.eu-west-1.amazonaws.com/123456789012/ramlet', fallbackInterval: 2s}
---
apiVersion: ramlet.dev/v1alpha1
kind: SecretStore
metadata: {name: fine}
spec:
  aws:
    region: eu-west-1
    events: {queue: 'https://sqs.eu-west-1.amazonaws.com/123456789012/ramlet'}
";
    let catalog = load_texts([("stores.yaml".into(), text.to_owned())]);
    let errors: Vec<String> = catalog.errors.iter().map(ToString::to_string).collect();
    assert_eq!(errors.len(), 2, "{errors:#?}");
    assert!(
        errors[0].starts_with(
            "stores.yaml:8:21: spec.gcp.events.subscription: \"projects/my-project/topics/secret-events\" is not a Pub/Sub subscription"
        ),
        "{}",
        errors[0]
    );
    assert!(errors[1].starts_with("stores.yaml:16:"), "{}", errors[1]);
    assert!(
        errors[1].contains("spec.aws.events.fallbackInterval"),
        "{}",
        errors[1]
    );
    let fine = &catalog.stores.values().next().unwrap();
    let events = fine.events.as_ref().unwrap();
    assert_eq!(events.fallback_interval.as_secs(), 300, "default 5m");
    assert_eq!(events.source.kind(), "sqs");
}
