//! The JSON Schema of spec documents, for editors (yaml-language-server) and CI linters.
//!
//! Generated from [`crate::raw`]; the committed copy is `specs/schema/ramlet.schema.json`, and a
//! test fails when it is stale (`RAMLET_BLESS=1 cargo test -p ramlet-specs` rewrites it). The
//! schema describes shapes and the documented formats; ramlet's own validation is stricter.

use schemars::generate::SchemaSettings;
use schemars::json_schema;

use crate::raw::{ContainerDocument, SecretStoreDocument};

/// The schema as pretty-printed JSON, with a trailing newline.
#[must_use]
pub fn json() -> String {
    let mut generator = SchemaSettings::draft07().into_generator();
    let store = generator.subschema_for::<SecretStoreDocument>();
    let container = generator.subschema_for::<ContainerDocument>();
    let mut schema = json_schema!({
        "$schema": "http://json-schema.org/draft-07/schema#",
        "$id": "https://ramlet.dev/schema/v1alpha1/ramlet.schema.json",
        "title": "ramlet spec document",
        "description": "A ramlet SecretStore or Container document (apiVersion ramlet.dev/v1alpha1).",
        "oneOf": [store, container],
    });
    let definitions = generator.take_definitions(true);
    schema.insert("definitions".into(), serde_json::Value::Object(definitions));
    let mut text = serde_json::to_string_pretty(&schema).unwrap_or_default();
    text.push('\n');
    text
}
