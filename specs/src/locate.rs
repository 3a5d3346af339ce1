//! Finds the line and column of a field path in YAML text.
//!
//! `serde_yaml` does not expose node positions, but it stamps every error raised inside a visitor
//! with the position of the node being visited. The locator walks one document along the path
//! with a `DeserializeSeed`, skipping siblings, and raises an error at the target node: the
//! error's location is the field's location. When the path does not exist in the text (a missing
//! optional field), the error is raised at the deepest mapping or sequence that does, which is
//! where a user would add the field. It runs only for documents that have errors.

use std::fmt;

use serde::de::{self, DeserializeSeed, IgnoredAny, MapAccess, SeqAccess, Visitor};

use crate::error::Location;
use crate::path::Seg;
use crate::scalar::Scalar;

/// The location of `path` in document `doc_index` (from 0) of `text`, or of its deepest existing
/// ancestor. `None` only when the document cannot be parsed at all.
pub(crate) fn locate(text: &str, doc_index: usize, path: &[Seg]) -> Option<Location> {
    let document = serde_yaml::Deserializer::from_str(text).nth(doc_index)?;
    match Seek(path).deserialize(document) {
        Ok(()) => None,
        Err(error) => error.location().map(Location::from),
    }
}

const HERE: &str = "ramlet-locate";

struct Seek<'p>(&'p [Seg]);

impl<'de> DeserializeSeed<'de> for Seek<'_> {
    type Value = ();

    fn deserialize<D: de::Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        match self.0.first() {
            None => deserializer.deserialize_any(Here),
            Some(Seg::Key(_)) => deserializer.deserialize_map(self),
            Some(Seg::Index(_)) => deserializer.deserialize_seq(self),
        }
    }
}

impl<'de> Visitor<'de> for Seek<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a mapping or sequence")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let Some((Seg::Key(wanted), rest)) = self.0.split_first() else {
            return Err(de::Error::custom(HERE));
        };
        while let Some(key) = map.next_key::<Scalar>()? {
            if key.as_str() == wanted {
                return map.next_value_seed(Seek(rest));
            }
            map.next_value::<IgnoredAny>()?;
        }
        Err(de::Error::custom(HERE))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let Some((Seg::Index(wanted), rest)) = self.0.split_first() else {
            return Err(de::Error::custom(HERE));
        };
        for _ in 0..*wanted {
            if seq.next_element::<IgnoredAny>()?.is_none() {
                return Err(de::Error::custom(HERE));
            }
        }
        // Either the element raised the locating error (and `?` returns it), or the sequence is
        // too short and the sequence itself is as deep as the path goes.
        seq.next_element_seed(Seek(rest))?;
        Err(de::Error::custom(HERE))
    }

    // Any other node on the way (a scalar where a mapping was expected) is as deep as we get.
    fn visit_str<E: de::Error>(self, _: &str) -> Result<(), E> {
        Err(E::custom(HERE))
    }
    fn visit_bool<E: de::Error>(self, _: bool) -> Result<(), E> {
        Err(E::custom(HERE))
    }
    fn visit_i64<E: de::Error>(self, _: i64) -> Result<(), E> {
        Err(E::custom(HERE))
    }
    fn visit_u64<E: de::Error>(self, _: u64) -> Result<(), E> {
        Err(E::custom(HERE))
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> Result<(), E> {
        Err(E::custom(HERE))
    }
    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        Err(E::custom(HERE))
    }
    fn visit_none<E: de::Error>(self) -> Result<(), E> {
        Err(E::custom(HERE))
    }
}

/// Raises the locating error on whatever node it is given.
struct Here;

impl<'de> Visitor<'de> for Here {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any node")
    }
    fn visit_map<A: MapAccess<'de>>(self, _: A) -> Result<(), A::Error> {
        Err(de::Error::custom(HERE))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, _: A) -> Result<(), A::Error> {
        Err(de::Error::custom(HERE))
    }
    fn visit_str<E: de::Error>(self, _: &str) -> Result<(), E> {
        Err(E::custom(HERE))
    }
    fn visit_bool<E: de::Error>(self, _: bool) -> Result<(), E> {
        Err(E::custom(HERE))
    }
    fn visit_i64<E: de::Error>(self, _: i64) -> Result<(), E> {
        Err(E::custom(HERE))
    }
    fn visit_u64<E: de::Error>(self, _: u64) -> Result<(), E> {
        Err(E::custom(HERE))
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> Result<(), E> {
        Err(E::custom(HERE))
    }
    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        Err(E::custom(HERE))
    }
    fn visit_none<E: de::Error>(self) -> Result<(), E> {
        Err(E::custom(HERE))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::path::FieldPath;

    const TEXT: &str = "\
kind: Container
spec:
  image: nginx
  volumes:
    - name: tls
      files:
        - path: a
        - path: /etc/b
---
kind: Second
spec: {image: x}
";

    fn at(doc: usize, path: &FieldPath) -> (usize, usize) {
        let l = locate(TEXT, doc, &path.0).expect("located");
        (l.line, l.column)
    }

    #[test]
    fn finds_a_nested_scalar() {
        let path = FieldPath::of(&["spec", "volumes"])
            .index(0)
            .key("files")
            .index(1)
            .key("path");
        assert_eq!(at(0, &path), (8, 17));
    }

    #[test]
    fn falls_back_to_the_deepest_existing_node() {
        let path = FieldPath::of(&["spec", "volumes"])
            .index(0)
            .key("mountPath");
        assert_eq!(at(0, &path), (5, 7));
    }

    #[test]
    fn finds_fields_in_later_documents() {
        assert_eq!(at(1, &FieldPath::of(&["spec", "image"])), (11, 15));
    }
}
