//! The first pass over a file: split it into documents, catch YAML-level errors, and read each
//! document's `apiVersion` and `kind` so the second pass knows which type to deserialize.
//!
//! The probe walks every node, alias expansions included, without building anything, and charges
//! each node against a budget. A document that would expand past [`EXPANSION_BUDGET`] (an alias
//! bomb: a few kilobytes that expand to gigabytes) fails here, quickly and in bounded memory,
//! before the typed pass could materialise it.

use std::cell::Cell;
use std::fmt;

use serde::de::{self, DeserializeSeed, MapAccess, SeqAccess, Visitor};

/// How much one document may expand to, counted as bytes of scalar text plus 16 per node.
pub(crate) const EXPANSION_BUDGET: usize = 8 * 1024 * 1024;

/// What the probe learnt about one document.
#[derive(Debug)]
pub(crate) enum Probe {
    /// An empty document (`---` with nothing after it, or a file of comments): skipped.
    Empty,
    /// A document whose root is not a mapping.
    NotMapping,
    /// A mapping, with the text of its `apiVersion` and `kind` if they are scalars.
    Mapping {
        api_version: Option<String>,
        kind: Option<String>,
    },
}

const OVER_BUDGET: &str = "document expands past the loader's budget through YAML aliases \
(an alias bomb?); ramlet refuses specs that expand to more than 8 MiB";

/// Probes one document.
pub(crate) fn probe(document: serde_yaml::Deserializer<'_>) -> Result<Probe, serde_yaml::Error> {
    let budget = Cell::new(EXPANSION_BUDGET);
    de::DeserializeSeed::deserialize(Top { budget: &budget }, document)
}

/// Whether `error` came from the expansion budget.
pub(crate) fn is_over_budget(message: &str) -> bool {
    message.starts_with(OVER_BUDGET)
}

fn charge<E: de::Error>(budget: &Cell<usize>, bytes: usize) -> Result<(), E> {
    match budget.get().checked_sub(16 + bytes) {
        Some(left) => {
            budget.set(left);
            Ok(())
        }
        None => Err(E::custom(OVER_BUDGET)),
    }
}

struct Top<'b> {
    budget: &'b Cell<usize>,
}

impl<'de> DeserializeSeed<'de> for Top<'_> {
    type Value = Probe;
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Probe, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Top<'_> {
    type Value = Probe;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a spec document (a mapping)")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Probe, A::Error> {
        let (mut api_version, mut kind) = (None, None);
        while let Some(key) = map.next_key_seed(Walk {
            budget: self.budget,
        })? {
            let value = map.next_value_seed(Walk {
                budget: self.budget,
            })?;
            match key.as_deref() {
                Some("apiVersion") => api_version = value,
                Some("kind") => kind = value,
                _ => {}
            }
        }
        Ok(Probe::Mapping { api_version, kind })
    }

    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Probe, A::Error> {
        Walk {
            budget: self.budget,
        }
        .visit_seq(seq)?;
        Ok(Probe::NotMapping)
    }
    fn visit_unit<E: de::Error>(self) -> Result<Probe, E> {
        Ok(Probe::Empty)
    }
    fn visit_none<E: de::Error>(self) -> Result<Probe, E> {
        Ok(Probe::Empty)
    }
    fn visit_str<E: de::Error>(self, _: &str) -> Result<Probe, E> {
        Ok(Probe::NotMapping)
    }
    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Probe, E> {
        Ok(Probe::NotMapping)
    }
    fn visit_i64<E: de::Error>(self, _: i64) -> Result<Probe, E> {
        Ok(Probe::NotMapping)
    }
    fn visit_u64<E: de::Error>(self, _: u64) -> Result<Probe, E> {
        Ok(Probe::NotMapping)
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Probe, E> {
        Ok(Probe::NotMapping)
    }
}

/// Walks any node, charging the budget; yields the text of a string scalar.
struct Walk<'b> {
    budget: &'b Cell<usize>,
}

impl<'de> DeserializeSeed<'de> for Walk<'_> {
    type Value = Option<String>;
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Walk<'_> {
    type Value = Option<String>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any YAML node")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        charge(self.budget, 0)?;
        while map
            .next_key_seed(Walk {
                budget: self.budget,
            })?
            .is_some()
        {
            map.next_value_seed(Walk {
                budget: self.budget,
            })?;
        }
        Ok(None)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        charge(self.budget, 0)?;
        while seq
            .next_element_seed(Walk {
                budget: self.budget,
            })?
            .is_some()
        {}
        Ok(None)
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        charge(self.budget, v.len())?;
        Ok(Some(v.to_owned()))
    }
    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
        charge(self.budget, 0).map(|()| None)
    }
    fn visit_i64<E: de::Error>(self, _: i64) -> Result<Self::Value, E> {
        charge(self.budget, 0).map(|()| None)
    }
    fn visit_u64<E: de::Error>(self, _: u64) -> Result<Self::Value, E> {
        charge(self.budget, 0).map(|()| None)
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Self::Value, E> {
        charge(self.budget, 0).map(|()| None)
    }
    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        charge(self.budget, 0).map(|()| None)
    }
    fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
        charge(self.budget, 0).map(|()| None)
    }
}
