//! Rendering: JSON inputs by key, filters, strict undefined, binary inputs, limits, and no
//! value in any error.

use std::collections::BTreeMap;

use ramlet_specs::model::{Content, Template};

use super::{RenderError, render};
use crate::secrets::SecretBytes;

/// A template of a loaded spec (so its text has passed validation), with `inputs` as the
/// values of the inputs it names.
fn template(text: &str, inputs: &[&str]) -> Template {
    let store = "---\napiVersion: ramlet.dev/v1alpha1\nkind: SecretStore\nmetadata: {name: local}\nspec:\n  file: {directory: /run/ramlet-test}\n";
    let refs: Vec<String> = inputs
        .iter()
        .map(|name| format!("{name}: {{store: local, name: {name}}}"))
        .collect();
    let spec = format!(
        "---\napiVersion: ramlet.dev/v1alpha1\nkind: Container\nmetadata: {{name: app}}\nspec:\n  image: localhost/busybox\n  volumes:\n    - name: v\n      mountPath: /run/v\n      files:\n        - path: f\n          template:\n            inputs: {{{}}}\n            text: {}\n",
        refs.join(", "),
        serde_json::to_string(text).unwrap()
    );
    let catalog = ramlet_specs::load_texts([("t.yaml".into(), format!("{store}{spec}"))]);
    assert!(catalog.errors.is_empty(), "{:?}", catalog.errors);
    let container = catalog.containers.into_values().next().unwrap();
    let file = container.volumes[0].files[0].clone();
    match file.content {
        Content::Template(template) => template,
        Content::Secret(_) => unreachable!(),
    }
}

fn values(pairs: &[(&str, &[u8])]) -> BTreeMap<String, SecretBytes> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), SecretBytes::new(v.to_vec())))
        .collect()
}

fn rendered(text: &str, pairs: &[(&str, &[u8])]) -> Result<String, RenderError> {
    let names: Vec<&str> = pairs.iter().map(|(k, _)| *k).collect();
    render(&template(text, &names), &values(pairs))
        .map(|bytes| String::from_utf8(bytes.expose().to_vec()).unwrap())
}

const DB: &[u8] = br#"{"user": "app", "password": "p@ss/w:rd", "port": 5432, "replicas": ["r1", "r2"], "tls": {"mode": "verify-full"}}"#;

#[test]
fn a_json_input_is_read_by_key_and_a_plain_one_is_a_string() {
    let text = "DATABASE_URL=postgres://{{ db.user }}:{{ db.password | urlencode }}@db:{{ db.port }}/app?sslmode={{ db.tls.mode }}\nREPLICA={{ db.replicas[1] }}\nAPI_TOKEN={{ api }}\n";
    let out = rendered(text, &[("db", DB), ("api", b"tok-123")]).unwrap();
    assert_eq!(
        out,
        "DATABASE_URL=postgres://app:p%40ss%2Fw%3Ard@db:5432/app?sslmode=verify-full\nREPLICA=r2\nAPI_TOKEN=tok-123\n"
    );
    // A value that only looks like JSON stays a string; a number secret too.
    let out = rendered("{{ a }}|{{ n }}", &[("a", b"{not json"), ("n", b"0042")]).unwrap();
    assert_eq!(out, "{not json|0042");
}

#[test]
fn filters_for_configuration_files_and_loops_over_keys() {
    let out = rendered(
        "{{ db.password | tojson }} {{ db.password | toyaml }} {{ (db.user ~ ':' ~ db.password) | base64 }} {{ enc | b64decode }}\n{% for k in db | sort %}{{ k }},{% endfor %}",
        &[("db", DB), ("enc", b"aGVsbG8=")],
    )
    .unwrap();
    assert_eq!(
        out,
        "\"p@ss/w:rd\" \"p@ss/w:rd\" YXBwOnBAc3MvdzpyZA== hello\npassword,port,replicas,tls,user,"
    );
}

#[test]
fn a_missing_key_names_the_input_and_key_and_never_a_value() {
    let error = rendered("a\nURL={{ db.host }}:{{ db.password }}", &[("db", DB)]).unwrap_err();
    assert_eq!(
        error,
        RenderError::MissingKey {
            path: "db".into(),
            key: "\"host\"".into(),
            line: 2
        }
    );
    assert_eq!(error.to_string(), "line 2: input db has no key \"host\"");
    // Through a filter too: none turns a missing key into text.
    let filtered = rendered("{{ db.pass | urlencode }}", &[("db", DB)]).unwrap_err();
    assert_eq!(filtered.to_string(), "line 1: input db has no key \"pass\"");
    let nested = rendered("{{ db.tls.ca }}", &[("db", DB)]).unwrap_err();
    assert_eq!(nested.to_string(), "line 1: input db.tls has no key \"ca\"");
    // A key computed from another secret's value is not named.
    let computed = rendered("{{ db[api] }}", &[("db", DB), ("api", b"sekrit-key")]).unwrap_err();
    assert_eq!(
        computed.to_string(),
        "line 1: input db has no key (a key the text computes)"
    );
    // A default for what may be missing is fine.
    assert_eq!(
        rendered("{{ db.host | default('localhost') }}", &[("db", DB)]).unwrap(),
        "localhost"
    );
}

#[test]
fn no_error_carries_a_value() {
    let secret = "p@ss/w:rd";
    for (text, inputs) in [
        ("{{ db.password | int }}", &[("db", DB)][..]),
        ("{{ db.password + 1 }}", &[("db", DB)][..]),
        ("{{ db.password.x }}", &[("db", DB)][..]),
        ("{{ db.password | b64decode }}", &[("db", DB)][..]),
        ("{{ db.password[99] }}", &[("db", DB)][..]),
        ("{{ db.password | attr('x') }}", &[("db", DB)][..]),
    ] {
        let error = rendered(text, inputs).unwrap_err().to_string();
        assert!(!error.contains(secret), "{text}: {error}");
        assert!(!error.contains("p@ss"), "{text}: {error}");
        assert!(error.starts_with("line 1: "), "{text}: {error}");
    }
}

#[test]
fn a_binary_input_is_refused_as_text() {
    let error = rendered("{{ key }}", &[("key", &[0xff, 0x00, 0xfe])]).unwrap_err();
    assert_eq!(
        error,
        RenderError::Binary {
            input: "key".into()
        }
    );
}

#[test]
fn limits_on_time_and_size() {
    let slow = rendered(
        "{% for i in range(1000) %}{% for j in range(1000) %}{{ a }}{% endfor %}{% endfor %}",
        &[("a", b"x")],
    )
    .unwrap_err();
    assert!(matches!(slow, RenderError::OutOfFuel { line: 1 }), "{slow}");
    let big = vec![b'x'; 600 * 1024];
    let error = rendered("{{ a }}{{ a }}", &[("a", &big)]).unwrap_err();
    assert_eq!(error, RenderError::TooLarge);
    let fine = rendered("{{ a }}", &[("a", &big)]).unwrap();
    assert_eq!(fine.len(), big.len());
}

#[test]
fn a_rendering_is_made_again_only_when_an_input_moves_or_the_template_changes() {
    let mut renderings = super::Renderings::default();
    let template = template("{{ a }}-{{ b }}", &["a", "b"]);
    let key = || ("app".to_owned(), "v".to_owned(), "f".to_owned());
    let renders = std::cell::Cell::new(0);
    let at = |renderings: &mut super::Renderings, versions: &[&str], a: &[u8]| {
        let values = values(&[("a", a), ("b", b"b1")]);
        let versions = versions.iter().map(|v| (*v).to_owned()).collect();
        renderings
            .get_or_render(key(), &template, versions, || {
                renders.set(renders.get() + 1);
                render(&template, &values)
            })
            .map(|bytes| bytes.expose().to_vec())
            .unwrap()
    };
    assert_eq!(at(&mut renderings, &["1", "1"], b"a1"), b"a1-b1");
    assert_eq!(at(&mut renderings, &["1", "1"], b"a1"), b"a1-b1");
    assert_eq!(renders.get(), 1, "unchanged inputs: no render");
    assert_eq!(at(&mut renderings, &["2", "1"], b"a2"), b"a2-b1");
    assert_eq!(renders.get(), 2, "one input moved: rendered again");
    renderings.retain(|spec| spec != "app");
    assert_eq!(at(&mut renderings, &["2", "1"], b"a2"), b"a2-b1");
    assert_eq!(renders.get(), 3, "a forgotten spec is rendered again");
}
