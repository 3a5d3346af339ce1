//! Secret values in memory: zeroized when dropped, never printed, and shaped for a file (JSON
//! property, base64).

pub mod memlock;
pub mod template;

use std::fmt;

use base64::Engine as _;
use ramlet_specs::model::{Encoding, SecretRef};
use zeroize::Zeroizing;

/// A secret's bytes. `Debug` shows the length only; while they live their pages are locked in
/// One secret, wherever ramlet names it (status, journal, metrics, logs, the store cache): its
/// store and its name in that store. Written `store/name` (a store's name has no `/`; a
/// secret's may: `aws/prod/db` is `prod/db` of store `aws`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SecretId {
    /// The store.
    pub store: String,
    /// The secret's name in the store.
    pub name: String,
}

impl SecretId {
    /// `name` of `store`.
    #[must_use]
    pub fn new(store: impl Into<String>, name: impl Into<String>) -> Self {
        Self {
            store: store.into(),
            name: name.into(),
        }
    }

    /// The secret a spec's reference names.
    #[must_use]
    pub fn of(reference: &SecretRef) -> Self {
        Self::new(reference.store.as_str(), reference.name.clone())
    }
}

impl fmt::Display for SecretId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.store, self.name)
    }
}

impl std::str::FromStr for SecretId {
    type Err = String;

    /// `store/name`, split at the first `/`.
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text.split_once('/') {
            Some((store, name)) if !store.is_empty() && !name.is_empty() => {
                Ok(Self::new(store, name))
            }
            _ => Err(format!("{text:?} is not store/name")),
        }
    }
}

impl serde::Serialize for SecretId {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for SecretId {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// RAM and left out of core dumps ([`memlock`]), and they are wiped when dropped.
#[derive(PartialEq, Eq)]
pub struct SecretBytes(Zeroizing<Vec<u8>>);

impl SecretBytes {
    /// Takes over `bytes` (the same buffer: no copy is left behind).
    #[must_use]
    pub fn new(bytes: Vec<u8>) -> Self {
        memlock::lock(&bytes);
        Self(Zeroizing::new(bytes))
    }

    /// The bytes.
    #[must_use]
    pub fn expose(&self) -> &[u8] {
        &self.0
    }
}

impl Clone for SecretBytes {
    fn clone(&self) -> Self {
        Self::new(self.0.to_vec())
    }
}

impl Drop for SecretBytes {
    fn drop(&mut self) {
        // Wiped before its pages may be swapped again (Zeroizing wipes once more, harmlessly).
        zeroize::Zeroize::zeroize(&mut self.0[..]);
        memlock::unlock(&self.0);
    }
}

impl fmt::Debug for SecretBytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SecretBytes({} bytes)", self.0.len())
    }
}

/// One version of a secret, as a provider returned it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Secret {
    /// The content.
    pub bytes: SecretBytes,
    /// The provider's version identifier (a GCP version number, an AWS version ID, a file's
    /// modification time): shown in status; never derived from the value.
    pub version: String,
    /// When the value stops being valid (Unix seconds): a certificate's end. `None`: it does
    /// not expire.
    pub expires: Option<u64>,
}

/// Why a secret's content cannot become a file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ShapeError {
    /// `property` was asked for, but the secret is not a JSON object.
    #[error("secret is not a JSON object, so property {0:?} cannot be taken from it")]
    NotJsonObject(String),
    /// The JSON object has no such key.
    #[error("secret has no property {0:?}")]
    MissingProperty(String),
    /// `encoding: base64`, but the content is not base64.
    #[error("secret is not valid base64")]
    NotBase64,
}

/// Turns a fetched secret into the file content the spec asks for: the JSON property if one is
/// named (a string is written unescaped, any other value as its JSON text, as the secret writes
/// it), then base64-decoded if asked. Errors never quote the content. Copies are kept to what
/// cannot be avoided, and each is wiped: the other properties of a JSON secret are skipped, not
/// parsed into strings; the property is copied once, from the input straight into a buffer sized
/// up front, and so is base64's decoding (no reallocation leaves a copy behind).
///
/// What ramlet cannot wipe: the buffers inside the providers' SDKs and HTTP stacks that held a
/// response before ramlet took the value (see docs/ARCHITECTURE.md).
pub fn shape(secret: &SecretBytes, reference: &SecretRef) -> Result<SecretBytes, ShapeError> {
    let selected = match &reference.property {
        None => secret.clone(),
        Some(property) => property_of(secret.expose(), property)?,
    };
    match reference.encoding {
        Encoding::Raw => Ok(selected),
        Encoding::Base64 => {
            let text: Zeroizing<Vec<u8>> = Zeroizing::new(
                selected
                    .expose()
                    .iter()
                    .copied()
                    .filter(|b| !b.is_ascii_whitespace())
                    .collect(),
            );
            let mut out =
                Zeroizing::new(Vec::with_capacity(base64::decoded_len_estimate(text.len())));
            base64::engine::general_purpose::STANDARD
                .decode_vec(&*text, &mut out)
                .map_err(|_| ShapeError::NotBase64)?;
            Ok(SecretBytes::new(std::mem::take(&mut *out)))
        }
    }
}

/// The value of `property` in a JSON object, without keeping the other values: they are
/// skipped by the parser, never turned into strings that would outlive this call unwiped.
fn property_of(json: &[u8], property: &str) -> Result<SecretBytes, ShapeError> {
    use serde::de::{Deserializer as _, Error as _, IgnoredAny, MapAccess, Visitor};

    struct Pick<'p>(&'p str);

    impl<'de> Visitor<'de> for Pick<'_> {
        type Value = Option<SecretBytes>;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a JSON object")
        }

        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
            let mut found = None;
            while let Some(key) = map.next_key::<std::borrow::Cow<'de, str>>()? {
                if key == self.0 && found.is_none() {
                    // A slice of the input, validated but not copied; then one copy of exactly
                    // the value, straight into the buffer that is wiped.
                    let raw: &'de serde_json::value::RawValue = map.next_value()?;
                    let raw = raw.get();
                    found = Some(if raw.starts_with('"') {
                        unescape(raw).ok_or_else(|| A::Error::custom("a bad string"))?
                    } else {
                        SecretBytes::new(raw.as_bytes().to_vec())
                    });
                } else {
                    map.next_value::<IgnoredAny>()?;
                }
            }
            Ok(found)
        }
    }

    let mut parser = serde_json::Deserializer::from_slice(json);
    let found = parser
        .deserialize_map(Pick(property))
        .and_then(|found| parser.end().map(|()| found))
        .map_err(|_| ShapeError::NotJsonObject(property.to_owned()))?;
    found.ok_or_else(|| ShapeError::MissingProperty(property.to_owned()))
}

/// A JSON string literal's value (`raw` is the literal with its quotes, already validated by
/// the parser), decoded into a buffer sized up front: it never grows, so no reallocation leaves
/// a copy behind, as a parser's scratch buffer or a `String` that grows would.
fn unescape(raw: &str) -> Option<SecretBytes> {
    let inner = raw.strip_prefix('"')?.strip_suffix('"')?.as_bytes();
    // The value is never longer than its literal.
    let mut out = Zeroizing::new(Vec::with_capacity(inner.len()));
    let mut i = 0;
    while i < inner.len() {
        let byte = inner[i];
        i += 1;
        if byte != b'\\' {
            out.push(byte);
            continue;
        }
        let escape = *inner.get(i)?;
        i += 1;
        let simple = match escape {
            b'"' => Some(b'"'),
            b'\\' => Some(b'\\'),
            b'/' => Some(b'/'),
            b'b' => Some(0x08),
            b'f' => Some(0x0c),
            b'n' => Some(b'\n'),
            b'r' => Some(b'\r'),
            b't' => Some(b'\t'),
            b'u' => None,
            _ => return None,
        };
        if let Some(byte) = simple {
            out.push(byte);
            continue;
        }
        let hex = |at: usize| {
            let digits = std::str::from_utf8(inner.get(at..at + 4)?).ok()?;
            u32::from_str_radix(digits, 16).ok()
        };
        let mut code = hex(i)?;
        i += 4;
        if (0xD800..0xDC00).contains(&code) {
            // A high surrogate: its low half follows as another \u escape.
            if inner.get(i..i + 2) != Some(b"\\u") {
                return None;
            }
            let low = hex(i + 2)?;
            if !(0xDC00..0xE000).contains(&low) {
                return None;
            }
            code = 0x10000 + ((code - 0xD800) << 10) + (low - 0xDC00);
            i += 6;
        }
        let mut utf8 = [0; 4];
        out.extend_from_slice(char::from_u32(code)?.encode_utf8(&mut utf8).as_bytes());
        zeroize::Zeroize::zeroize(&mut utf8);
    }
    Some(SecretBytes::new(std::mem::take(&mut *out)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use ramlet_specs::model::{Name, SecretVersion};

    fn reference(property: Option<&str>, encoding: Encoding) -> SecretRef {
        SecretRef {
            store: Name::parse("s").unwrap(),
            name: "n".into(),
            version: SecretVersion::Latest,
            property: property.map(str::to_owned),
            encoding,
        }
    }

    #[test]
    fn takes_json_properties() {
        let secret =
            SecretBytes::new(br#"{"username":"app","password":"p@ss","port":5432}"#.to_vec());
        let got = shape(&secret, &reference(Some("password"), Encoding::Raw)).unwrap();
        assert_eq!(got.expose(), b"p@ss");
        let got = shape(&secret, &reference(Some("port"), Encoding::Raw)).unwrap();
        assert_eq!(got.expose(), b"5432");
        let err = shape(&secret, &reference(Some("host"), Encoding::Raw)).unwrap_err();
        assert_eq!(err, ShapeError::MissingProperty("host".into()));
    }

    #[test]
    fn a_property_is_found_among_escaped_and_nested_values_and_nothing_else_is_needed() {
        let secret = SecretBytes::new(
            br#"{"a":{"deep":["x",1]},"password":"p\"w\u00e9","b":"other"}"#.to_vec(),
        );
        let got = shape(&secret, &reference(Some("password"), Encoding::Raw)).unwrap();
        assert_eq!(got.expose(), "p\"w\u{e9}".as_bytes());
        let got = shape(&secret, &reference(Some("a"), Encoding::Raw)).unwrap();
        assert_eq!(got.expose(), br#"{"deep":["x",1]}"#);
        for not_an_object in [&b"[1,2]"[..], b"\"text\"", b"{\"a\":1} trailing"] {
            let err = shape(
                &SecretBytes::new(not_an_object.to_vec()),
                &reference(Some("a"), Encoding::Raw),
            )
            .unwrap_err();
            assert_eq!(err, ShapeError::NotJsonObject("a".into()));
        }
    }

    /// Every escape JSON has, against `serde_json`'s own decoding of the same literals.
    #[test]
    fn a_string_property_is_unescaped_as_serde_json_does() {
        for literal in [
            r#""plain""#,
            r#""q\"b\\s\/l""#,
            r#""\b\f\n\r\t""#,
            r#""\u00e9\u4e2d\ud83d\ude00""#,
            "\"caf\u{e9} \u{1f600}\"",
            r#""""#,
        ] {
            let json = format!(r#"{{"p":{literal}}}"#);
            let want: String = serde_json::from_str(literal).unwrap();
            let got = shape(
                &SecretBytes::new(json.into_bytes()),
                &reference(Some("p"), Encoding::Raw),
            )
            .unwrap();
            assert_eq!(got.expose(), want.as_bytes(), "{literal}");
        }
        for bad in [r#""\ud83d""#, r#""\ud83dx""#, r#""\x""#] {
            assert_eq!(unescape(bad), None, "{bad}");
        }
    }

    #[test]
    fn decodes_base64_and_keeps_binary() {
        let secret = SecretBytes::new(b"AAEC/w==\n".to_vec());
        assert_eq!(
            shape(&secret, &reference(None, Encoding::Base64))
                .unwrap()
                .expose(),
            [0, 1, 2, 255]
        );
        let binary = SecretBytes::new(vec![0, 159, 146, 150]);
        assert_eq!(
            shape(&binary, &reference(None, Encoding::Raw)).unwrap(),
            binary
        );
        assert_eq!(
            shape(&binary, &reference(None, Encoding::Base64)).unwrap_err(),
            ShapeError::NotBase64
        );
    }

    #[test]
    fn debug_never_shows_the_value() {
        let secret = SecretBytes::new(b"hunter2".to_vec());
        assert_eq!(format!("{secret:?}"), "SecretBytes(7 bytes)");
        let err = shape(&secret, &reference(Some("x"), Encoding::Raw))
            .unwrap_err()
            .to_string();
        assert!(!err.contains("hunter2"));
    }
}
