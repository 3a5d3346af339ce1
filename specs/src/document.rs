//! Reads one spec document in a single pass: `apiVersion`, `kind`, `metadata` and a `spec`
//! deserialized as the type its `kind` names.
//!
//! serde needs the kind before it can pick the spec's type. Kubernetes-shaped documents give
//! `kind` first, so the visitor reads the keys in order and deserializes `spec` as soon as it
//! meets it. When `spec` comes before `kind`, it is skipped and [`Outcome::Document`] says so; the
//! loader then reads the document again with the kind as a hint. Reading once matters: YAML
//! parsing is most of the loader's time.

use std::fmt;

use serde::Deserialize;
use serde::de::{self, DeserializeSeed, IgnoredAny, MapAccess, SeqAccess, Visitor};

use crate::raw::{ContainerSpec, Metadata, SecretStoreSpec};
use crate::scalar::Scalar;

/// The kinds this release knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// `SecretStore`
    Store,
    /// `Container`
    Container,
}

impl Kind {
    fn from_name(name: &str) -> Option<Self> {
        match name {
            "SecretStore" => Some(Self::Store),
            "Container" => Some(Self::Container),
            _ => None,
        }
    }
}

/// A spec of a known kind.
#[derive(Debug)]
pub(crate) enum Spec {
    /// A `SecretStore`'s spec.
    Store(Box<SecretStoreSpec>),
    /// A `Container`'s spec.
    Container(Box<ContainerSpec>),
    /// The kind was unknown (reported from the header), or not known yet when `spec` came.
    Skipped,
}

/// What one document holds.
#[derive(Debug)]
pub(crate) enum Outcome {
    /// An empty document: skipped.
    Empty,
    /// Not a mapping.
    NotMapping,
    /// A mapping with the four fields.
    Document {
        /// The `apiVersion` text.
        api_version: String,
        /// The `kind` text.
        kind: String,
        /// `metadata`.
        metadata: Metadata,
        /// `spec`, typed by `kind`.
        spec: Spec,
    },
}

/// The fields of a document; serde refuses any other key at the key itself.
#[derive(Deserialize)]
#[serde(field_identifier, rename_all = "camelCase")]
enum Field {
    ApiVersion,
    Kind,
    Metadata,
    Spec,
}

/// Deserializes one document; `hint` is the kind to use when `spec` comes before `kind`.
pub(crate) struct AnyDocument {
    pub(crate) hint: Option<Kind>,
}

impl<'de> DeserializeSeed<'de> for AnyDocument {
    type Value = Outcome;
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Outcome, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for AnyDocument {
    type Value = Outcome;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a spec document (a mapping with apiVersion, kind, metadata and spec)")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Outcome, A::Error> {
        let (mut api_version, mut kind, mut metadata, mut spec) = (None, None, None, None);
        while let Some(key) = map.next_key::<Field>()? {
            match key {
                Field::ApiVersion => {
                    set(
                        &mut api_version,
                        "apiVersion",
                        map.next_value::<Scalar>()?.0,
                    )?;
                }
                Field::Kind => set(&mut kind, "kind", map.next_value::<Scalar>()?.0)?,
                Field::Metadata => set(&mut metadata, "metadata", map.next_value::<Metadata>()?)?,
                Field::Spec => {
                    let known = kind.as_deref().map_or(self.hint, Kind::from_name);
                    let value = match known {
                        Some(Kind::Store) => Spec::Store(map.next_value()?),
                        Some(Kind::Container) => Spec::Container(map.next_value()?),
                        None => {
                            map.next_value::<IgnoredAny>()?;
                            Spec::Skipped
                        }
                    };
                    set(&mut spec, "spec", value)?;
                }
            }
        }
        // A document with a bad header is reported from the header, whatever else it lacks.
        let (Some(api_version), Some(kind)) = (api_version, kind) else {
            return Err(de::Error::missing_field("apiVersion` and `kind"));
        };
        Ok(Outcome::Document {
            api_version,
            kind,
            metadata: metadata.ok_or_else(|| de::Error::missing_field("metadata"))?,
            spec: spec.ok_or_else(|| de::Error::missing_field("spec"))?,
        })
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Outcome, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(Outcome::NotMapping)
    }
    fn visit_unit<E: de::Error>(self) -> Result<Outcome, E> {
        Ok(Outcome::Empty)
    }
    fn visit_none<E: de::Error>(self) -> Result<Outcome, E> {
        Ok(Outcome::Empty)
    }
    fn visit_str<E: de::Error>(self, _: &str) -> Result<Outcome, E> {
        Ok(Outcome::NotMapping)
    }
    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Outcome, E> {
        Ok(Outcome::NotMapping)
    }
    fn visit_i64<E: de::Error>(self, _: i64) -> Result<Outcome, E> {
        Ok(Outcome::NotMapping)
    }
    fn visit_u64<E: de::Error>(self, _: u64) -> Result<Outcome, E> {
        Ok(Outcome::NotMapping)
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Outcome, E> {
        Ok(Outcome::NotMapping)
    }
}

fn set<T, E: de::Error>(slot: &mut Option<T>, field: &'static str, value: T) -> Result<(), E> {
    if slot.is_some() {
        return Err(E::duplicate_field(field));
    }
    *slot = Some(value);
    Ok(())
}
