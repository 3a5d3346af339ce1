//! A host's policy: a `file` store outside the allowed folders and a forbidden escape-hatch key
//! are refused at their line, and nothing else is.

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
    let policy_errors: Vec<String> = catalog
        .errors
        .iter()
        .filter(|e| e.kind == ErrorKind::Policy)
        .map(ToString::to_string)
        .collect();
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
