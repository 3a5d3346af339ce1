//! Scalars read as the text the user wrote, and escape-hatch values.
//!
//! YAML would turn `version: 1.10` into the float 1.1 and `mode: 0o400` into 256. Fields whose
//! meaning depends on the exact spelling are read as [`Scalar`], which asks `serde_yaml` for the
//! scalar's source text, so `1.10` stays `1.10` and a mode can be told apart from a decimal.

use std::borrow::Cow;
use std::fmt;

use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::de::{self, Deserialize, Deserializer, SeqAccess, Visitor};

/// The source text of a YAML scalar (string, number or boolean).
#[derive(Debug, Clone, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct Scalar(pub String);

impl Scalar {
    /// The text as written.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl<'de> Deserialize<'de> for Scalar {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_str(ScalarVisitor).map(Scalar)
    }
}

struct ScalarVisitor;

impl Visitor<'_> for ScalarVisitor {
    type Value = String;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string, number or boolean")
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<String, E> {
        Ok(v.to_owned())
    }
    fn visit_bool<E: de::Error>(self, v: bool) -> Result<String, E> {
        Ok(v.to_string())
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<String, E> {
        Ok(v.to_string())
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<String, E> {
        Ok(v.to_string())
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<String, E> {
        Ok(v.to_string())
    }
}

impl JsonSchema for Scalar {
    fn schema_name() -> Cow<'static, str> {
        "Scalar".into()
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({ "type": ["string", "number", "boolean"] })
    }
}

/// The value of one Quadlet escape-hatch key: one scalar, or a list for a key that repeats.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuadletValue(pub Vec<Scalar>);

impl<'de> Deserialize<'de> for QuadletValue {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(QuadletValueVisitor)
    }
}

struct QuadletValueVisitor;

impl<'de> Visitor<'de> for QuadletValueVisitor {
    type Value = QuadletValue;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string, number, boolean, or a list of them")
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        Ok(QuadletValue(vec![Scalar(v.to_owned())]))
    }
    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Self::Value, E> {
        self.visit_str(&v.to_string())
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
        self.visit_str(&v.to_string())
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
        self.visit_str(&v.to_string())
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
        self.visit_str(&v.to_string())
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut values = Vec::new();
        while let Some(value) = seq.next_element::<Scalar>()? {
            values.push(value);
        }
        Ok(QuadletValue(values))
    }
}

impl JsonSchema for QuadletValue {
    fn schema_name() -> Cow<'static, str> {
        "QuadletValue".into()
    }
    fn json_schema(generator: &mut SchemaGenerator) -> Schema {
        let scalar = generator.subschema_for::<Scalar>();
        json_schema!({ "anyOf": [scalar, { "type": "array", "items": scalar }] })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_spelling_of_numbers() {
        let v: Vec<Scalar> = serde_yaml::from_str("[1.10, 0o400, 0400, true, x]").unwrap();
        let texts: Vec<&str> = v.iter().map(Scalar::as_str).collect();
        assert_eq!(texts, ["1.10", "0o400", "0400", "true", "x"]);
    }

    #[test]
    fn quadlet_values_take_one_or_many() {
        let v: QuadletValue = serde_yaml::from_str("always").unwrap();
        assert_eq!(v.0, [Scalar("always".into())]);
        let v: QuadletValue = serde_yaml::from_str("[a, 2]").unwrap();
        assert_eq!(v.0, [Scalar("a".into()), Scalar("2".into())]);
    }
}
