//! The committed JSON Schema (`specs/schema/ramlet.schema.json`) must be what the types generate:
//! editors read the committed file, so a stale one would flag valid specs or miss bad ones.
//! `RAMLET_BLESS=1 cargo test -p ramlet-specs --test schema` rewrites it.

use std::path::Path;

#[test]
fn committed_schema_is_up_to_date() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("schema/ramlet.schema.json");
    let generated = ramlet_specs::schema::json();
    if std::env::var_os("RAMLET_BLESS").is_some() {
        std::fs::write(&path, &generated).unwrap();
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == generated,
        "{} is stale: run `RAMLET_BLESS=1 cargo test -p ramlet-specs --test schema` and commit it",
        path.display()
    );
}

#[test]
fn schema_knows_both_kinds_and_the_escape_hatch() {
    let schema: serde_json::Value = serde_json::from_str(&ramlet_specs::schema::json()).unwrap();
    let definitions = schema["definitions"].as_object().unwrap();
    for name in [
        "SecretStoreSpec",
        "ContainerSpec",
        "Volume",
        "VolumeFile",
        "SecretRef",
        "QuadletValue",
    ] {
        assert!(
            definitions.contains_key(name),
            "{name} missing from the schema"
        );
    }
    let container = &definitions["ContainerSpec"];
    assert_eq!(
        container["additionalProperties"], false,
        "unknown fields must be refused"
    );
    assert!(
        container["required"]
            .as_array()
            .unwrap()
            .contains(&"image".into())
    );
    assert_eq!(schema["oneOf"].as_array().unwrap().len(), 2);
}
