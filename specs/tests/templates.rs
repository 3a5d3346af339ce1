//! A file's `template` in the spec language: its inputs are secret references checked as a
//! file's `secret` is, its text parses, reads only its inputs and reads each one; every refusal
//! is at the spec file's line and column (inside the text too) and touches only its spec.

use std::path::PathBuf;

use ramlet_specs::model::{Content, SecretVersion};
use ramlet_specs::{ErrorKind, load_texts};

const STORE: &str = "---\napiVersion: ramlet.dev/v1alpha1\nkind: SecretStore\nmetadata: {name: local}\nspec:\n  file: {directory: /run/ramlet-test/secrets}\n";

fn container(name: &str, file: &str) -> String {
    format!(
        "---\napiVersion: ramlet.dev/v1alpha1\nkind: Container\nmetadata: {{name: {name}}}\nspec:\n  image: localhost/busybox\n  volumes:\n    - name: v\n      mountPath: /run/v\n      files:\n        - path: app.env\n{file}"
    )
}

fn load(texts: &[String]) -> ramlet_specs::Catalog {
    load_texts([(PathBuf::from("app.yaml"), texts.concat())])
}

const GOOD: &str = "          template:
            inputs:
              db: {store: local, name: db.json}
              api: {store: local, name: api, version: latest}
            text: |
              DATABASE_URL=postgres://{{ db.user }}:{{ db.password | urlencode }}@db:5432/app
              API_TOKEN={{ api }}
";

#[test]
fn a_template_loads_with_its_inputs_and_text() {
    let catalog = load(&[STORE.to_owned(), container("app", GOOD)]);
    assert!(catalog.errors.is_empty(), "{:?}", catalog.errors);
    let app = catalog.containers.values().next().unwrap();
    let file = &app.volumes[0].files[0];
    let Content::Template(template) = &file.content else {
        panic!("not a template: {file:?}");
    };
    assert_eq!(
        template.inputs.keys().collect::<Vec<_>>(),
        ["api", "db"],
        "inputs by name"
    );
    assert_eq!(template.inputs["db"].version, SecretVersion::Latest);
    assert!(template.text.ends_with("API_TOKEN={{ api }}\n"));
    let names: Vec<&str> = file.references().map(|r| r.name.as_str()).collect();
    assert_eq!(names, ["api", "db.json"]);
}

#[test]
fn a_name_that_is_not_an_input_is_refused_at_its_line_and_column() {
    let file = GOOD.replace("{{ api }}", "{{ api }}{{ dbx }}");
    let whole = [STORE.to_owned(), container("app", &file)].concat();
    let catalog = load(&[STORE.to_owned(), container("app", &file)]);
    let errors: Vec<String> = catalog.errors.iter().map(ToString::to_string).collect();
    assert_eq!(errors.len(), 1, "{errors:?}");
    let error = &catalog.errors[0];
    assert_eq!(error.field, "spec.volumes[0].files[0].template.text");
    let (line, text) = whole
        .lines()
        .enumerate()
        .find(|(_, l)| l.contains("dbx"))
        .unwrap();
    assert_eq!(
        (error.location.line, error.location.column),
        (line + 1, text.find("dbx").unwrap() + 1),
        "{errors:?}"
    );
    assert!(
        error
            .message
            .contains("dbx is not an input of this template (inputs: api, db)"),
        "{errors:?}"
    );
    assert!(catalog.containers.is_empty());
}

#[test]
fn every_mistake_is_named_and_only_its_spec_is_refused() {
    let cases = [
        (
            "          secret: {store: local, name: x}\n          template: {inputs: {a: {store: local, name: a}}, text: \"{{ a }}\"}\n",
            "template",
            "either secret: (one secret's value) or template:",
        ),
        (
            "          mode: 0400\n",
            "spec.volumes[0].files[0]",
            "a file needs secret: (one secret's value) or template:",
        ),
        (
            "          template: {inputs: {1db: {store: local, name: a}}, text: \"{{ a }}\"}\n",
            "template.inputs.1db",
            "is not a template variable name",
        ),
        (
            "          template: {inputs: {a: {store: nowhere, name: a}}, text: \"{{ a }}\"}\n",
            "template.inputs.a.store",
            "no SecretStore named \"nowhere\"",
        ),
        (
            "          template: {inputs: {a: {store: local, name: a}, b: {store: local, name: b}}, text: \"{{ a }}\"}\n",
            "template.text",
            "input b is not used by the text",
        ),
        (
            "          template: {inputs: {a: {store: local, name: a}}, text: \"{{ a | nosuch }}\"}\n",
            "template.text",
            "no filter named nosuch",
        ),
        (
            "          template: {inputs: {a: {store: local, name: a}}, text: \"{% if a %}\"}\n",
            "template.text",
            "the template does not parse",
        ),
        (
            "          template: {inputs: {a: {store: local, name: a}}, text: \"{{ a }}\\u0007\"}\n",
            "template.text",
            "a control character (U+0007)",
        ),
        (
            "          template: {inputs: {}, text: \"plain\"}\n",
            "template.inputs",
            "at least one input",
        ),
    ];
    for (file, field, message) in cases {
        let catalog = load(&[
            STORE.to_owned(),
            container("bad", file),
            container("good", GOOD),
        ]);
        let names: Vec<&str> = catalog
            .containers
            .keys()
            .map(ramlet_specs::model::Name::as_str)
            .collect();
        assert_eq!(names, ["good"], "{file}: {:?}", catalog.errors);
        let error = catalog
            .errors
            .iter()
            .find(|e| e.message.contains(message))
            .unwrap_or_else(|| panic!("{file}: no {message:?} in {:?}", catalog.errors));
        assert!(error.field.ends_with(field), "{error}");
        assert!(error.location.line > 0, "{error}");
    }
}

#[test]
fn a_text_over_the_limit_is_refused_as_too_large() {
    let big = "x".repeat(ramlet_specs::template::MAX_TEXT_BYTES);
    let file = format!(
        "          template: {{inputs: {{a: {{store: local, name: a}}}}, text: \"{{{{ a }}}}{big}\"}}\n"
    );
    let catalog = load(&[STORE.to_owned(), container("app", &file)]);
    assert_eq!(
        catalog.errors.first().map(|e| e.kind),
        Some(ErrorKind::TooLarge),
        "{:?}",
        catalog.errors.first()
    );
}

/// A template reaches no further than a `secret:` would: an input of a store the host's policy
/// refuses is refused with its spec, and the host's other specs load.
#[test]
fn an_input_from_a_store_the_policy_refuses_is_refused() {
    let policy = ramlet_specs::Policy {
        store_directories: vec![PathBuf::from("/etc/ramlet/secrets")],
        ..ramlet_specs::Policy::default()
    };
    let catalog = ramlet_specs::load_texts_with(
        [(
            PathBuf::from("app.yaml"),
            [STORE.to_owned(), container("app", GOOD)].concat(),
        )],
        &policy,
    );
    assert!(catalog.containers.is_empty(), "{:?}", catalog.containers);
    let messages: Vec<String> = catalog.errors.iter().map(ToString::to_string).collect();
    assert!(
        messages.iter().any(|m| m.contains("[policy]")),
        "the store is refused by the policy: {messages:?}"
    );
    assert!(
        messages
            .iter()
            .any(|m| m.contains("template.inputs.db.store") && m.contains("declared but invalid")),
        "the template's input names the refused store: {messages:?}"
    );
}
