//! A template file's render (issue 36): its inputs' values, shaped as a plain file's are, read
//! by the template language of [`ramlet_specs::template`], written into zeroized memory.
//!
//! An input is text (UTF-8; a binary value is refused, never rendered). One whose text is a
//! JSON object or array is read by key (`{{ db.user }}`, `{{ hosts[0] }}`); any other is a
//! string. The rendering grows in buffers that are wiped when they are outgrown or dropped, and
//! the parsed JSON is wiped when the render ends.
//!
//! What is not wiped: the strings minijinja makes while it renders (each value it reads or a
//! filter returns is copied into its own reference-counted strings) and `serde_json`'s scratch
//! buffer for escaped strings. They live for one render, and are freed, not wiped, at its end.
//!
//! Errors name the input, the key and the line, never a value: a key the text computes from a
//! value (`db[api]`) is not named either.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::{Arc, Mutex};

use minijinja::value::{Enumerator, Object, ObjectRepr, Value};
use ramlet_specs::model::Template;
use ramlet_specs::template::MAX_OUTPUT_BYTES;
use zeroize::{Zeroize, Zeroizing};

use super::SecretBytes;

/// Why a template cannot be rendered. Never carries a value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RenderError {
    /// An input's value is not UTF-8.
    #[error(
        "input {input} is not UTF-8 text, and a template renders text (give a binary secret a file of its own)"
    )]
    Binary {
        /// The input.
        input: String,
    },
    /// The text reads a key that an input's JSON does not have.
    #[error("line {line}: input {path} has no key {key}")]
    MissingKey {
        /// The input, and the keys on the way (`db.primary`).
        path: String,
        /// The key, quoted, or `(a key the text computes)`.
        key: String,
        /// The line of the text.
        line: usize,
    },
    /// Anything else the engine refused: its kind and line only.
    #[error("line {line}: {what}")]
    Engine {
        /// The engine's words for the kind of problem (`undefined value`, `invalid operation`).
        what: String,
        /// The line of the text.
        line: usize,
    },
    /// The render took more than its budget ([`ramlet_specs::template::FUEL`]).
    #[error(
        "line {line}: the template took more than its budget of {} steps; it loops too much or builds too long a string",
        ramlet_specs::template::FUEL
    )]
    OutOfFuel {
        /// Where it was when it ran out.
        line: usize,
    },
    /// The rendering is longer than [`MAX_OUTPUT_BYTES`].
    #[error("the rendering is longer than {MAX_OUTPUT_BYTES} bytes")]
    TooLarge,
}

/// Renders `template` from its inputs' shaped values (by input name).
///
/// # Errors
/// A [`RenderError`], which names what is wrong and never a value.
pub fn render(
    template: &Template,
    inputs: &BTreeMap<String, SecretBytes>,
) -> Result<SecretBytes, RenderError> {
    let misses = Misses::default();
    let mut context = BTreeMap::new();
    for (name, bytes) in inputs {
        let Ok(text) = std::str::from_utf8(bytes.expose()) else {
            return Err(RenderError::Binary {
                input: name.clone(),
            });
        };
        context.insert(name.clone(), input_value(name, text, &misses));
    }
    let env = ramlet_specs::template::environment();
    let compiled = env
        .template_from_str(&template.text)
        .map_err(|e| engine_error(&e))?;
    let mut sink = Sink::default();
    let rendered = compiled.render_captured_to(Value::from(context), &mut sink);
    match rendered {
        Ok(_) => Ok(SecretBytes::new(std::mem::take(&mut *sink.out))),
        Err(_) if sink.overflowed => Err(RenderError::TooLarge),
        Err(error) => Err(explain(&error, &misses, &template.text)),
    }
}

/// Where a template file is: its spec, volume and path.
pub type FileKey = (String, String, String);

/// The last rendering of each template file, with the template and its inputs' versions it was
/// made from: a file whose template and inputs' versions have not moved is not rendered again
/// (its rendered version is its inputs' versions). Wiped when dropped.
#[derive(Default)]
pub struct Renderings {
    last: BTreeMap<FileKey, (Template, Vec<String>, SecretBytes)>,
}

impl Renderings {
    /// The rendering of the file at `key` from `template` with its inputs at `versions` (in
    /// input order): the last one if it was made from the same, else `render()`'s, kept.
    /// `render` does all the work of a new rendering (shaping the inputs too), so a file whose
    /// inputs have not moved costs a comparison.
    ///
    /// # Errors
    /// `render()`'s error (nothing is kept then).
    pub fn get_or_render<E>(
        &mut self,
        key: FileKey,
        template: &Template,
        versions: Vec<String>,
        render: impl FnOnce() -> Result<SecretBytes, E>,
    ) -> Result<SecretBytes, E> {
        if let Some((known, at, bytes)) = self.last.get(&key)
            && known == template
            && *at == versions
        {
            return Ok(bytes.clone());
        }
        let bytes = render()?;
        self.last
            .insert(key, (template.clone(), versions, bytes.clone()));
        Ok(bytes)
    }

    /// Forgets the renderings of specs `keep` says no to.
    pub fn retain(&mut self, keep: impl Fn(&str) -> bool) {
        self.last.retain(|(spec, _, _), _| keep(spec));
    }
}

/// The value the text sees for an input: a JSON object or array as an object read by key,
/// anything else as a string.
fn input_value(name: &str, text: &str, misses: &Misses) -> Value {
    let trimmed = text.trim_start();
    if (trimmed.starts_with('{') || trimmed.starts_with('['))
        && let Ok(json) = serde_json::from_str::<serde_json::Value>(text)
    {
        return structured(name.to_owned(), json, misses);
    }
    Value::from(text)
}

/// A JSON value as the template sees it: objects and arrays as [`Json`], the rest as values.
fn structured(path: String, json: serde_json::Value, misses: &Misses) -> Value {
    match json {
        serde_json::Value::Object(_) | serde_json::Value::Array(_) => Value::from_object(Json {
            path,
            value: json,
            misses: misses.clone(),
        }),
        serde_json::Value::String(mut s) => {
            let value = Value::from(s.as_str());
            s.zeroize();
            value
        }
        serde_json::Value::Number(n) => n
            .as_i64()
            .map(Value::from)
            .or_else(|| n.as_f64().map(Value::from))
            .unwrap_or_else(|| Value::from(n.to_string())),
        serde_json::Value::Bool(b) => Value::from(b),
        serde_json::Value::Null => Value::from(()),
    }
}

/// The last key the text asked of an input's JSON that was not there: (the path to it, the
/// key). A strict-undefined error right after it is about that key.
#[derive(Debug, Clone, Default)]
struct Misses(Arc<Mutex<Option<(String, String)>>>);

impl Misses {
    fn record(&self, path: &str, key: String) {
        if let Ok(mut last) = self.0.lock() {
            *last = Some((path.to_owned(), key));
        }
    }

    fn last(&self) -> Option<(String, String)> {
        self.0.lock().ok().and_then(|last| last.clone())
    }
}

/// A JSON object or array of an input, read by key or index; wiped when the render drops it.
struct Json {
    /// The input and the keys on the way here, for errors.
    path: String,
    value: serde_json::Value,
    misses: Misses,
}

impl fmt::Debug for Json {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Json({})", self.path)
    }
}

impl Object for Json {
    fn repr(self: &Arc<Self>) -> ObjectRepr {
        if self.value.is_array() {
            ObjectRepr::Seq
        } else {
            ObjectRepr::Map
        }
    }

    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        let (found, name) = match &self.value {
            serde_json::Value::Object(map) => {
                let name = key
                    .as_str()
                    .map_or_else(|| key.to_string(), ToOwned::to_owned);
                (map.get(&name).cloned(), name)
            }
            serde_json::Value::Array(items) => (
                key.as_usize().and_then(|i| items.get(i)).cloned(),
                key.to_string(),
            ),
            _ => (None, String::new()),
        };
        if let Some(child) = found {
            return Some(structured(
                format!("{}.{name}", self.path),
                child,
                &self.misses,
            ));
        }
        self.misses.record(&self.path, name);
        None
    }

    fn enumerate(self: &Arc<Self>) -> Enumerator {
        match &self.value {
            serde_json::Value::Object(map) => {
                Enumerator::Values(map.keys().map(|k| Value::from(k.as_str())).collect())
            }
            serde_json::Value::Array(items) => Enumerator::Seq(items.len()),
            _ => Enumerator::Empty,
        }
    }
}

impl Drop for Json {
    fn drop(&mut self) {
        wipe(&mut self.value);
    }
}

/// Wipes every string of `value`, keys too.
fn wipe(value: &mut serde_json::Value) {
    match value {
        serde_json::Value::String(s) => s.zeroize(),
        serde_json::Value::Array(items) => items.iter_mut().for_each(wipe),
        serde_json::Value::Object(map) => {
            for (mut key, mut child) in std::mem::take(map) {
                key.zeroize();
                wipe(&mut child);
            }
        }
        _ => {}
    }
}

/// The rendering, in memory that is wiped when it is outgrown or dropped, up to
/// [`MAX_OUTPUT_BYTES`].
#[derive(Default)]
struct Sink {
    out: Zeroizing<Vec<u8>>,
    overflowed: bool,
}

impl std::io::Write for Sink {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let need = self.out.len() + buf.len();
        if need > MAX_OUTPUT_BYTES {
            self.overflowed = true;
            return Err(std::io::Error::other("the rendering is too long"));
        }
        if need > self.out.capacity() {
            // Grown by hand: a reallocation would leave the old bytes behind unwiped.
            let mut bigger = Zeroizing::new(Vec::with_capacity(
                need.max(self.out.capacity() * 2).max(256),
            ));
            bigger.extend_from_slice(&self.out);
            self.out = bigger;
        }
        self.out.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The error a failed render says: a missing key by input and name (when the text names that
/// key itself), otherwise the engine's kind and the line. The engine's detail is left out: it
/// can quote a value.
fn explain(error: &minijinja::Error, misses: &Misses, text: &str) -> RenderError {
    let line = error.line().unwrap_or(0);
    if error.kind() == minijinja::ErrorKind::UndefinedError
        && let Some((path, key)) = misses.last()
    {
        let literal = |part: &str| !part.is_empty() && text.contains(part);
        let path = path
            .split('.')
            .map(|part| if literal(part) { part } else { "[...]" })
            .collect::<Vec<_>>()
            .join(".");
        let key = if literal(&key) {
            format!("{key:?}")
        } else {
            "(a key the text computes)".to_owned()
        };
        return RenderError::MissingKey { path, key, line };
    }
    engine_error(error)
}

fn engine_error(error: &minijinja::Error) -> RenderError {
    let line = error.line().unwrap_or(0);
    match error.kind() {
        minijinja::ErrorKind::OutOfFuel => RenderError::OutOfFuel { line },
        kind => {
            // The kind's own words (`undefined value`, ...), from its Display, without detail.
            let what = minijinja::Error::from(kind).to_string();
            RenderError::Engine { what, line }
        }
    }
}

#[cfg(test)]
mod tests;
