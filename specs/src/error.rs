//! Spec errors: what went wrong, in which file, at which line and column, and in which field.
//!
//! Every problem the loader finds becomes one [`SpecError`]. Errors are collected, never thrown: a
//! run reports every error of every file, and a bad document never hides another.

use std::fmt;
use std::path::{Path, PathBuf};

/// The `apiVersion` of this release's documents.
pub const API_VERSION: &str = "ramlet.dev/v1alpha1";

/// An error about a whole file (no line or field: it could not be read, or holds no document).
pub(crate) fn file_error(file: &Path, kind: ErrorKind, message: String) -> SpecError {
    SpecError {
        file: file.to_owned(),
        location: Location::default(),
        field: String::new(),
        kind,
        message,
    }
}

/// A problem with one spec file or document, located the way a compiler would locate it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file}{location}{field_display}{message} [{kind}]", file = self.file.display(), location = LocationPrefix(self.location), field_display = FieldPrefix(&self.field))]
pub struct SpecError {
    /// The file the problem is in.
    pub file: PathBuf,
    /// Where in the file (1-based line and column); `0:0` when the whole file is at fault.
    pub location: Location,
    /// The field path, such as `spec.volumes[1].files[0].path`; empty for file-level problems.
    pub field: String,
    /// What kind of problem this is; stable, for logs, status and tests.
    pub kind: ErrorKind,
    /// What is wrong and, where it helps, how to fix it.
    pub message: String,
}

/// A 1-based line and column in a spec file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default, serde::Serialize)]
pub struct Location {
    /// Line, counting from 1; 0 when unknown.
    pub line: usize,
    /// Column, counting from 1; 0 when unknown.
    pub column: usize,
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.line, self.column)
    }
}

impl From<serde_yaml::Location> for Location {
    fn from(location: serde_yaml::Location) -> Self {
        Self {
            line: location.line(),
            column: location.column(),
        }
    }
}

/// `line:column: `, or nothing for file-level problems (`file: message`, as compilers print).
struct LocationPrefix(Location);

impl fmt::Display for LocationPrefix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.line == 0 {
            f.write_str(": ")
        } else {
            write!(f, ":{}: ", self.0)
        }
    }
}

struct FieldPrefix<'a>(&'a str);

impl fmt::Display for FieldPrefix<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            Ok(())
        } else {
            write!(f, "{}: ", self.0)
        }
    }
}

/// The kinds of spec problems. [`ErrorKind::as_str`] gives the stable name used in output.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ErrorKind {
    /// The file or directory could not be read.
    Io,
    /// The file is larger than [`crate::MAX_FILE_BYTES`], or holds more than
    /// [`crate::MAX_DOCUMENTS_PER_FILE`] documents.
    TooLarge,
    /// The file is not UTF-8.
    NotUtf8,
    /// The file holds no documents.
    Empty,
    /// The YAML itself is malformed.
    Syntax,
    /// The YAML expands past the loader's budget (an alias bomb) or nests too deep.
    TooComplex,
    /// A mapping has the same key twice.
    DuplicateKey,
    /// `apiVersion` is missing or not one ramlet knows.
    ApiVersion,
    /// `kind` is missing or not one ramlet knows.
    UnknownKind,
    /// A field that the kind does not have.
    UnknownField,
    /// A required field is absent.
    MissingField,
    /// A value of the wrong YAML type, or not one of the allowed words.
    InvalidType,
    /// A name that is not a DNS-1123 label (or, for labels, not a valid label key or value).
    InvalidName,
    /// Two documents of one kind share a name.
    DuplicateName,
    /// A secret refers to a store that no valid `SecretStore` provides.
    UnknownStore,
    /// A file or mount path that is absolute where it must be relative, or the other way round,
    /// or that holds `..`, empty segments or forbidden characters.
    InvalidPath,
    /// Two files of a volume, or two volumes of a container, share a path or a name.
    DuplicatePath,
    /// A file mode that is not octal, or above 0777.
    InvalidMode,
    /// A size such as `sizeLimit` that does not parse or is out of bounds.
    InvalidSize,
    /// A duration such as `refreshInterval` that does not parse or is out of bounds.
    InvalidDuration,
    /// A string holds a newline, NUL or other control character, or is too long.
    UnsafeString,
    /// A Quadlet escape-hatch section or key that ramlet does not allow.
    QuadletKey,
    /// A value that has the right type but is not acceptable (ports, versions, signals, ...).
    InvalidValue,
    /// Valid, but this host's policy (ramlet's configuration) forbids it.
    Policy,
}

impl ErrorKind {
    /// The stable, kebab-case name of this kind.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Io => "io",
            Self::TooLarge => "too-large",
            Self::NotUtf8 => "not-utf8",
            Self::Empty => "empty",
            Self::Syntax => "syntax",
            Self::TooComplex => "too-complex",
            Self::DuplicateKey => "duplicate-key",
            Self::ApiVersion => "api-version",
            Self::UnknownKind => "unknown-kind",
            Self::UnknownField => "unknown-field",
            Self::MissingField => "missing-field",
            Self::InvalidType => "invalid-type",
            Self::InvalidName => "invalid-name",
            Self::DuplicateName => "duplicate-name",
            Self::UnknownStore => "unknown-store",
            Self::InvalidPath => "invalid-path",
            Self::DuplicatePath => "duplicate-path",
            Self::InvalidMode => "invalid-mode",
            Self::InvalidSize => "invalid-size",
            Self::InvalidDuration => "invalid-duration",
            Self::UnsafeString => "unsafe-string",
            Self::QuadletKey => "quadlet-key",
            Self::InvalidValue => "invalid-value",
            Self::Policy => "policy",
        }
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl serde::Serialize for ErrorKind {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl serde::Serialize for SpecError {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let mut s = serializer.serialize_struct("SpecError", 6)?;
        s.serialize_field("file", &self.file.display().to_string())?;
        s.serialize_field("line", &self.location.line)?;
        s.serialize_field("column", &self.location.column)?;
        s.serialize_field("field", &self.field)?;
        s.serialize_field("kind", &self.kind)?;
        s.serialize_field("message", &self.message)?;
        s.end()
    }
}

/// A problem found while validating one document, before it is given a location.
///
/// Validation code produces these; the loader turns each into a [`SpecError`] by looking up where
/// its field sits in the YAML text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Finding {
    pub(crate) field: crate::path::FieldPath,
    pub(crate) kind: ErrorKind,
    pub(crate) message: String,
    /// Where in the field's text the problem is (1-based line and column), for a field that
    /// holds a text of its own (a template); `None`: the field itself.
    pub(crate) within: Option<(usize, usize)>,
}

/// Classifies a serde error message from typed deserialization.
///
/// serde's own messages are stable: `unknown field`, `missing field`, `duplicate field`,
/// `invalid type`, `invalid value`, `unknown variant`.
pub(crate) fn classify_serde_message(message: &str) -> ErrorKind {
    if message.starts_with("unknown field") {
        ErrorKind::UnknownField
    } else if message.starts_with("missing field") {
        ErrorKind::MissingField
    } else if message.starts_with("duplicate field") || message.starts_with("duplicate entry") {
        ErrorKind::DuplicateKey
    } else if message.contains("recursion limit exceeded")
        || message.contains("repetition limit exceeded")
    {
        ErrorKind::TooComplex
    } else if message.starts_with("invalid type")
        || message.starts_with("invalid value")
        || message.starts_with("invalid length")
        || message.starts_with("unknown variant")
    {
        ErrorKind::InvalidType
    } else {
        ErrorKind::Syntax
    }
}

/// The message of a `serde_yaml` error without the ` at line L column C` that its `Display` adds:
/// ramlet prints the location itself, in front.
/// `serde_yaml` also puts the field path in front (`spec.image: invalid type: ...`); ramlet prints
/// the path in its own column, so that goes too.
pub(crate) fn bare_yaml_message(error: &serde_yaml::Error) -> String {
    let text = error.to_string();
    let text = match error.location() {
        Some(at) => text.replacen(
            &format!(" at line {} column {}", at.line(), at.column()),
            "",
            1,
        ),
        None => text,
    };
    match text.split_once(": ") {
        Some((path, rest)) if !path.contains(' ') => rest.to_owned(),
        _ => text,
    }
}

/// The result of checking one value: the parsed value, or the kind and message of the problem.
pub(crate) type Check<T> = Result<T, (ErrorKind, String)>;
