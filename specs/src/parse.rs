//! Parsing one spec file: its documents, each read once with its spec typed by its kind
//! (`document`), with the alias budget probe first for files that can hold aliases (`probe`),
//! and every YAML, header and field error located.

use std::collections::BTreeSet;
use std::path::Path;

use serde::de::DeserializeSeed as _;

use crate::document::{AnyDocument, Kind, Outcome, Spec};
use crate::error::{API_VERSION, file_error};
use crate::error::{ErrorKind, Location, SpecError, bare_yaml_message, classify_serde_message};
use crate::locate::locate;
use crate::path::FieldPath;
use crate::probe::{self, Probe};
use crate::raw;

/// A document that passed the typed pass.
pub(crate) enum Parsed {
    /// A `SecretStore`.
    Store(Box<raw::SecretStoreDocument>),
    /// A `Container`.
    Container(Box<raw::ContainerDocument>),
}

pub(crate) struct Doc {
    /// Which file (index into the loader's list).
    pub(crate) file: usize,
    /// Which document of the file, from 0.
    pub(crate) index: usize,
    /// The document.
    pub(crate) parsed: Parsed,
}

/// The most documents one spec file may hold: each costs a parse, and a file of thousands of
/// tiny invalid documents must not make every reconcile of the host slow.
pub const MAX_DOCUMENTS_PER_FILE: usize = 500;

/// Parses the documents of one file into `docs`, reporting problems into `errors`: at most
/// `max_errors` of its documents' errors are explained (each costs another read of the file up
/// to its document); returns how many more documents were rejected without a word.
pub(crate) fn parse_file(
    file: usize,
    path: &Path,
    text: &str,
    docs: &mut Vec<Doc>,
    errors: &mut Vec<SpecError>,
    max_errors: usize,
) -> usize {
    let parser = FileParser {
        file,
        path,
        text,
        quiet: std::cell::Cell::new(false),
    };
    let mut unexplained = 0;
    // Only aliases (`*name`) can make a document expand past its size. A file without `*` cannot
    // hold one and is read in a single pass; any other file is probed first, within a budget.
    let probed = text.contains('*').then(|| parser.probe_documents(errors));
    let mut documents = 0;
    let mut had_error = probed.as_ref().is_some_and(|p| p.had_error);
    let (docs_before, errors_before) = (docs.len(), errors.len());
    for (index, document) in serde_yaml::Deserializer::from_str(text).enumerate() {
        if index >= MAX_DOCUMENTS_PER_FILE {
            // The whole file is refused: half of it would be a state nobody wrote.
            docs.truncate(docs_before);
            errors.truncate(errors_before);
            errors.push(file_error(
                path,
                ErrorKind::TooLarge,
                format!(
                    "file holds more than {MAX_DOCUMENTS_PER_FILE} documents; split it into several files (none of its documents was loaded)"
                ),
            ));
            return 0;
        }
        if let Some(probed) = &probed {
            if index >= probed.readable {
                break;
            }
            if !probed.passed.contains(&index) {
                continue;
            }
        }
        match parser.document(index, document, None) {
            Step::Empty => {}
            Step::Parsed(doc) => {
                documents += 1;
                docs.push(doc);
            }
            Step::Rejected(error) => {
                documents += 1;
                had_error = true;
                let fatal = error.kind == ErrorKind::Syntax;
                if parser.quiet.get() {
                    unexplained += 1;
                } else {
                    errors.push(error);
                    parser.quiet.set(errors.len() - errors_before >= max_errors);
                }
                if fatal {
                    // The parser cannot resynchronise after a syntax error: the rest of the
                    // stream is unreadable, and every further document would repeat it.
                    break;
                }
            }
        }
    }
    if documents == 0 && !had_error {
        errors.push(file_error(
            path,
            ErrorKind::Empty,
            "file holds no spec documents; remove it or add one".into(),
        ));
    }
    unexplained
}

/// What became of one document.
enum Step {
    Empty,
    Parsed(Doc),
    Rejected(SpecError),
}

/// What the budget probe found in a file that may hold aliases.
struct Probed {
    /// Indices of the documents that passed.
    passed: BTreeSet<usize>,
    /// Documents from this index on are unreadable (after a syntax error).
    readable: usize,
    /// Whether any document failed.
    had_error: bool,
}

/// One file's text, and the error constructors that know its path.
struct FileParser<'a> {
    file: usize,
    path: &'a Path,
    text: &'a str,
    /// Past the file's error budget: errors are counted, not located or explained.
    quiet: std::cell::Cell<bool>,
}

impl FileParser<'_> {
    fn yaml_error(&self, error: &serde_yaml::Error, field: String, kind: ErrorKind) -> SpecError {
        SpecError {
            file: self.path.to_owned(),
            location: error.location().map(Location::from).unwrap_or_default(),
            field,
            kind,
            message: bare_yaml_message(error),
        }
    }

    fn located(
        &self,
        index: usize,
        field: &FieldPath,
        kind: ErrorKind,
        message: String,
    ) -> SpecError {
        let location = if self.quiet.get() {
            Location::default()
        } else {
            locate(self.text, index, &field.0).unwrap_or_default()
        };
        SpecError {
            file: self.path.to_owned(),
            location,
            field: field.to_string(),
            kind,
            message,
        }
    }

    /// Reads document `index` as the type its kind names.
    fn document(
        &self,
        index: usize,
        document: serde_yaml::Deserializer<'_>,
        hint: Option<Kind>,
    ) -> Step {
        let mut track = serde_path_to_error::Track::new();
        let tracked = serde_path_to_error::Deserializer::new(document, &mut track);
        let outcome = AnyDocument { hint }
            .deserialize(tracked)
            .map_err(|error| serde_path_to_error::Error::new(track.path(), error));
        let (api_version, kind, metadata, spec) = match outcome {
            Ok(Outcome::Empty) => return Step::Empty,
            Ok(Outcome::NotMapping) => {
                return Step::Rejected(self.located(index, &FieldPath::default(), ErrorKind::InvalidType,
                    "a spec document must be a mapping with apiVersion, kind, metadata and spec".into()));
            }
            Ok(Outcome::Document {
                api_version,
                kind,
                metadata,
                spec,
            }) => (api_version, kind, metadata, spec),
            Err(error) => return Step::Rejected(self.explain(index, error)),
        };
        let kind = match self.header(index, Some(&api_version), Some(&kind)) {
            Ok(kind) => kind,
            Err(error) => return Step::Rejected(error),
        };
        let parsed = match spec {
            Spec::Store(spec) => Parsed::Store(Box::new(raw::Document {
                api_version: raw::ApiVersion::V1alpha1,
                kind: raw::SecretStoreKind::SecretStore,
                metadata,
                spec: *spec,
            })),
            Spec::Container(spec) => Parsed::Container(Box::new(raw::Document {
                api_version: raw::ApiVersion::V1alpha1,
                kind: raw::ContainerKind::Container,
                metadata,
                spec: *spec,
            })),
            Spec::Skipped => {
                // `spec` came before `kind`: read the document again, now that the kind is known.
                let Some(again) = serde_yaml::Deserializer::from_str(self.text).nth(index) else {
                    return Step::Empty;
                };
                return self.document(index, again, Some(kind));
            }
        };
        Step::Parsed(Doc {
            file: self.file,
            index,
            parsed,
        })
    }

    /// Turns a failed read into the error a user should see. The document is probed again to
    /// tell a YAML error or a bad header (reported as such) from an error in a field.
    fn explain(
        &self,
        index: usize,
        error: serde_path_to_error::Error<serde_yaml::Error>,
    ) -> SpecError {
        if self.quiet.get() {
            return self.yaml_error(error.inner(), String::new(), ErrorKind::InvalidType);
        }
        let probe = serde_yaml::Deserializer::from_str(self.text)
            .nth(index)
            .map(probe::probe);
        match probe {
            Some(Err(yaml)) => return self.probe_error(index, &yaml),
            Some(Ok(Probe::Mapping { api_version, kind })) => {
                if let Err(header) = self.header(index, api_version.as_deref(), kind.as_deref()) {
                    return header;
                }
            }
            _ => {}
        }
        let field = error.path().to_string();
        let field = if field == "." { String::new() } else { field };
        let inner = error.into_inner();
        let kind = classify_serde_message(&bare_yaml_message(&inner));
        self.yaml_error(&inner, field, kind)
    }

    /// The budget probe over every document of a file that may hold aliases.
    fn probe_documents(&self, errors: &mut Vec<SpecError>) -> Probed {
        let mut probed = Probed {
            passed: BTreeSet::new(),
            readable: usize::MAX,
            had_error: false,
        };
        for (index, document) in serde_yaml::Deserializer::from_str(self.text).enumerate() {
            match probe::probe(document) {
                Ok(_) => {
                    probed.passed.insert(index);
                }
                Err(error) => {
                    probed.had_error = true;
                    let error = self.probe_error(index, &error);
                    let fatal = error.kind == ErrorKind::Syntax;
                    errors.push(error);
                    if fatal {
                        probed.readable = index;
                        break;
                    }
                }
            }
        }
        probed
    }

    /// A YAML-level error from the probe, classified and located.
    fn probe_error(&self, index: usize, error: &serde_yaml::Error) -> SpecError {
        let message = bare_yaml_message(error);
        let over_budget = probe::is_over_budget(&message);
        let kind = match classify_serde_message(&message) {
            _ if over_budget => ErrorKind::TooComplex,
            kind @ (ErrorKind::TooComplex | ErrorKind::DuplicateKey) => kind,
            _ => ErrorKind::Syntax,
        };
        let mut error = self.yaml_error(error, String::new(), kind);
        if kind == ErrorKind::TooComplex && !over_budget {
            error.message = format!(
                "{message}: the document nests or repeats through YAML aliases past what ramlet \
                 reads (an alias bomb?)"
            );
        }
        if error.location.line == 0 {
            // Limits raised while replaying aliases carry no position: point at the document.
            error.location = locate(self.text, index, &[]).unwrap_or_default();
        }
        error
    }

    /// Checks `apiVersion` and `kind`.
    fn header(
        &self,
        index: usize,
        api_version: Option<&str>,
        kind: Option<&str>,
    ) -> Result<Kind, SpecError> {
        if api_version != Some(API_VERSION) {
            let message = match api_version {
                None => {
                    format!("missing apiVersion; this release reads `apiVersion: {API_VERSION}`")
                }
                Some(v) => format!("unknown apiVersion {v:?}; this release reads `{API_VERSION}`"),
            };
            return Err(self.located(
                index,
                &FieldPath::of(&["apiVersion"]),
                ErrorKind::ApiVersion,
                message,
            ));
        }
        match kind {
            Some("SecretStore") => Ok(Kind::Store),
            Some("Container") => Ok(Kind::Container),
            other => {
                let message = match other {
                    None => "missing kind; use SecretStore or Container".to_owned(),
                    Some(k) => format!("unknown kind {k:?}; use SecretStore or Container"),
                };
                Err(self.located(
                    index,
                    &FieldPath::of(&["kind"]),
                    ErrorKind::UnknownKind,
                    message,
                ))
            }
        }
    }
}
