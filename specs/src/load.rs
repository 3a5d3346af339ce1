//! Loading a spec directory: find the files, read them within limits, parse every document in two
//! passes (probe, then typed), validate, and check names across documents.
//!
//! Nothing here stops at the first problem: each file, each document and each field is checked,
//! every problem becomes a [`SpecError`], and a bad document only takes itself out (plus, for a
//! store, the containers that need it).

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};

use crate::error::{ErrorKind, Location, SpecError, bare_yaml_message, classify_serde_message};
use crate::locate::locate;
use crate::model::{Container, Name, Origin, SecretStore};
use crate::path::FieldPath;
use crate::probe::{self, Probe};
use crate::raw;
use crate::validate::container::{StoreStatus, Stores};
use crate::validate::{self, Findings};

/// The largest spec file ramlet reads.
pub const MAX_FILE_BYTES: u64 = 1024 * 1024;

/// The `apiVersion` of this release's documents.
pub const API_VERSION: &str = "ramlet.dev/v1alpha1";

/// The spec directory itself could not be read; problems inside it are [`SpecError`]s instead.
#[derive(Debug, thiserror::Error)]
#[error("cannot read spec directory {}: {source}", path.display())]
pub struct LoadError {
    /// The directory.
    pub path: PathBuf,
    /// Why.
    #[source]
    pub source: std::io::Error,
}

/// Everything a spec directory declares: the valid documents, and the errors of the others.
#[derive(Debug, Default)]
pub struct Catalog {
    /// The spec files read, in order.
    pub files: Vec<PathBuf>,
    /// Valid stores, by name.
    pub stores: BTreeMap<Name, SecretStore>,
    /// Valid containers, by name.
    pub containers: BTreeMap<Name, Container>,
    /// Every problem, sorted by file, line and column.
    pub errors: Vec<SpecError>,
}

impl Catalog {
    /// Whether every document was valid.
    #[must_use]
    pub fn is_valid(&self) -> bool {
        self.errors.is_empty()
    }

    /// The valid containers whose host selector matches `host_labels`.
    pub fn selected<'a>(
        &'a self,
        host_labels: &'a BTreeMap<String, String>,
    ) -> impl Iterator<Item = &'a Container> + 'a {
        self.containers
            .values()
            .filter(|c| c.host_selector.matches(host_labels))
    }
}

/// Loads every `*.yaml` and `*.yml` file below `dir`, recursively, skipping hidden files and
/// folders (such as `.git`).
pub fn load_dir(dir: &Path) -> Result<Catalog, LoadError> {
    let mut errors = Vec::new();
    let mut files = Vec::new();
    fs::read_dir(dir).map_err(|source| LoadError {
        path: dir.to_owned(),
        source,
    })?;
    discover(dir, &mut files, &mut errors, &mut BTreeSet::new());
    files.sort();
    let sources: Vec<(PathBuf, Result<String, SpecError>)> = files
        .into_iter()
        .map(|path| {
            let text = read(&path);
            (path, text)
        })
        .collect();
    let mut catalog = build(sources);
    catalog.errors.extend(errors);
    catalog
        .errors
        .sort_by(|a, b| (&a.file, a.location).cmp(&(&b.file, b.location)));
    Ok(catalog)
}

/// Loads spec texts that are already in memory (tests, benchmarks, `validate -`).
pub fn load_texts(texts: impl IntoIterator<Item = (PathBuf, String)>) -> Catalog {
    let mut catalog = build(
        texts
            .into_iter()
            .map(|(path, text)| (path, Ok(text)))
            .collect(),
    );
    catalog
        .errors
        .sort_by(|a, b| (&a.file, a.location).cmp(&(&b.file, b.location)));
    catalog
}

fn discover(
    dir: &Path,
    files: &mut Vec<PathBuf>,
    errors: &mut Vec<SpecError>,
    seen: &mut BTreeSet<PathBuf>,
) {
    // Follow symlinked folders (git-sync publishes through one) but never loop.
    if let Ok(real) = fs::canonicalize(dir) {
        if !seen.insert(real) {
            return;
        }
    }
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(error) => {
            return errors.push(file_error(
                dir,
                ErrorKind::Io,
                format!("cannot read folder: {error}"),
            ));
        }
    };
    for entry in entries {
        let path = match entry {
            Ok(entry) => entry.path(),
            Err(error) => {
                errors.push(file_error(
                    dir,
                    ErrorKind::Io,
                    format!("cannot list folder: {error}"),
                ));
                continue;
            }
        };
        if path
            .file_name()
            .is_some_and(|n| n.as_encoded_bytes().starts_with(b"."))
        {
            continue;
        }
        if path.is_dir() {
            discover(&path, files, errors, seen);
        } else if path.extension().is_some_and(|e| e == "yaml" || e == "yml") {
            files.push(path);
        }
    }
}

fn file_error(file: &Path, kind: ErrorKind, message: String) -> SpecError {
    SpecError {
        file: file.to_owned(),
        location: Location::default(),
        field: String::new(),
        kind,
        message,
    }
}

/// Reads one file, refusing files over [`MAX_FILE_BYTES`] without reading them whole, and files
/// that are not UTF-8.
fn read(path: &Path) -> Result<String, SpecError> {
    let io = |error: std::io::Error| {
        file_error(path, ErrorKind::Io, format!("cannot read file: {error}"))
    };
    let file = fs::File::open(path).map_err(io)?;
    let mut bytes = Vec::new();
    file.take(MAX_FILE_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(io)?;
    if bytes.len() as u64 > MAX_FILE_BYTES {
        return Err(file_error(
            path,
            ErrorKind::TooLarge,
            format!("file is larger than {MAX_FILE_BYTES} bytes; split it into several files"),
        ));
    }
    decode(path, bytes)
}

fn decode(path: &Path, bytes: Vec<u8>) -> Result<String, SpecError> {
    match String::from_utf8(bytes) {
        Ok(text) => Ok(text
            .strip_prefix('\u{feff}')
            .map(str::to_owned)
            .unwrap_or(text)),
        Err(error) => {
            let valid = &error.as_bytes()[..error.utf8_error().valid_up_to()];
            let line = valid.iter().filter(|&&b| b == b'\n').count() + 1;
            let line_start = valid.iter().rposition(|&b| b == b'\n').map_or(0, |p| p + 1);
            let column = String::from_utf8_lossy(&valid[line_start..])
                .chars()
                .count()
                + 1;
            Err(SpecError {
                file: path.to_owned(),
                location: Location { line, column },
                field: String::new(),
                kind: ErrorKind::NotUtf8,
                message: "file is not valid UTF-8; save it as UTF-8".into(),
            })
        }
    }
}

/// A document that passed the typed pass.
enum Parsed {
    Store(Box<raw::SecretStoreDocument>),
    Container(Box<raw::ContainerDocument>),
}

struct Doc {
    file: usize,
    index: usize,
    parsed: Parsed,
}

/// The kinds this release knows.
#[derive(Clone, Copy)]
enum Kind {
    Store,
    Container,
}

fn build(sources: Vec<(PathBuf, Result<String, SpecError>)>) -> Catalog {
    let mut catalog = Catalog::default();
    let mut texts = Vec::with_capacity(sources.len());
    let mut docs = Vec::new();
    for (file, (path, text)) in sources.into_iter().enumerate() {
        match text {
            Ok(text) => {
                parse_file(file, &path, &text, &mut docs, &mut catalog.errors);
                texts.push(text);
            }
            Err(error) => {
                catalog.errors.push(error);
                texts.push(String::new());
            }
        }
        catalog.files.push(path);
    }
    let ctx = Ctx {
        paths: &catalog.files,
        texts: &texts,
    };

    // Stores first: containers are checked against the stores that survived.
    let (store_docs, container_docs): (Vec<&Doc>, Vec<&Doc>) = docs
        .iter()
        .partition(|d| matches!(d.parsed, Parsed::Store(_)));
    let duplicates = duplicate_names(&ctx, &store_docs, "SecretStore", &mut catalog.errors);
    let mut stores: Stores<'_> = Stores::new();
    let mut valid_stores = Vec::new();
    for doc in &store_docs {
        let Parsed::Store(raw) = &doc.parsed else {
            continue;
        };
        let name = raw.metadata.name.as_str();
        let result = validate::store::validate(raw, ctx.origin(doc));
        match result {
            Ok(store) if !duplicates.contains(name) => valid_stores.push(store),
            Ok(_) => {}
            Err(findings) => ctx.report(doc, findings, &mut catalog.errors),
        }
        stores.insert(name, StoreStatus::Rejected);
    }
    for store in &valid_stores {
        stores.insert(store.name.as_str(), StoreStatus::Valid(&store.provider));
    }

    let duplicates = duplicate_names(&ctx, &container_docs, "Container", &mut catalog.errors);
    for doc in &container_docs {
        let Parsed::Container(raw) = &doc.parsed else {
            continue;
        };
        match validate::container::validate(raw, ctx.origin(doc), &stores) {
            Ok(c) if !duplicates.contains(raw.metadata.name.as_str()) => {
                catalog.containers.insert(c.name.clone(), c);
            }
            Ok(_) => {}
            Err(findings) => ctx.report(doc, findings, &mut catalog.errors),
        }
    }
    drop(stores);
    catalog.stores = valid_stores
        .into_iter()
        .map(|s| (s.name.clone(), s))
        .collect();
    catalog
}

struct Ctx<'a> {
    paths: &'a [PathBuf],
    texts: &'a [String],
}

impl Ctx<'_> {
    fn origin(&self, doc: &Doc) -> Origin {
        Origin {
            file: self.paths[doc.file].clone(),
            document: doc.index,
        }
    }

    fn locate(&self, doc: &Doc, field: &FieldPath) -> Location {
        locate(&self.texts[doc.file], doc.index, &field.0).unwrap_or_default()
    }

    fn report(&self, doc: &Doc, findings: Findings, errors: &mut Vec<SpecError>) {
        for finding in findings.0 {
            errors.push(SpecError {
                file: self.paths[doc.file].clone(),
                location: self.locate(doc, &finding.field),
                field: finding.field.to_string(),
                kind: finding.kind,
                message: finding.message,
            });
        }
    }
}

/// Reports every document whose `metadata.name` another document of the same kind also uses,
/// naming the other places; returns the duplicated names, whose documents are all rejected.
fn duplicate_names<'a>(
    ctx: &Ctx<'_>,
    docs: &[&'a Doc],
    kind: &str,
    errors: &mut Vec<SpecError>,
) -> BTreeSet<&'a str> {
    let mut by_name: BTreeMap<&str, Vec<&Doc>> = BTreeMap::new();
    for doc in docs {
        let name = match &doc.parsed {
            Parsed::Store(d) => d.metadata.name.as_str(),
            Parsed::Container(d) => d.metadata.name.as_str(),
        };
        by_name.entry(name).or_default().push(doc);
    }
    let field = FieldPath::of(&["metadata", "name"]);
    let mut duplicated = BTreeSet::new();
    for (name, group) in by_name.into_iter().filter(|(_, g)| g.len() > 1) {
        duplicated.insert(name);
        let places: Vec<String> = group
            .iter()
            .map(|d| format!("{}:{}", ctx.paths[d.file].display(), ctx.locate(d, &field)))
            .collect();
        for (i, doc) in group.iter().enumerate() {
            let others: Vec<&str> = places
                .iter()
                .enumerate()
                .filter(|(j, _)| *j != i)
                .map(|(_, p)| p.as_str())
                .collect();
            errors.push(SpecError {
                file: ctx.paths[doc.file].clone(),
                location: ctx.locate(doc, &field),
                field: field.to_string(),
                kind: ErrorKind::DuplicateName,
                message: format!(
                    "{kind} {name:?} is also defined at {}; both are rejected",
                    others.join(", ")
                ),
            });
        }
    }
    duplicated
}

/// Parses the documents of one file into `docs`, reporting problems into `errors`.
fn parse_file(
    file: usize,
    path: &Path,
    text: &str,
    docs: &mut Vec<Doc>,
    errors: &mut Vec<SpecError>,
) {
    let yaml_error = |error: &serde_yaml::Error, field: String, kind: ErrorKind| SpecError {
        file: path.to_owned(),
        location: error.location().map(Location::from).unwrap_or_default(),
        field,
        kind,
        message: bare_yaml_message(error),
    };
    let locate_error =
        |index: usize, field: &FieldPath, kind: ErrorKind, message: String| SpecError {
            file: path.to_owned(),
            location: locate(text, index, &field.0).unwrap_or_default(),
            field: field.to_string(),
            kind,
            message,
        };

    // Pass 1: probe each document for YAML errors, its apiVersion and its kind.
    let mut plan: Vec<(usize, Kind)> = Vec::new();
    let mut documents = 0;
    let mut had_error = false;
    for (index, document) in serde_yaml::Deserializer::from_str(text).enumerate() {
        let probe = match probe::probe(document) {
            Ok(probe) => probe,
            Err(error) => {
                had_error = true;
                let message = bare_yaml_message(&error);
                let kind = match classify_serde_message(&message) {
                    _ if probe::is_over_budget(&message) => ErrorKind::TooComplex,
                    kind @ (ErrorKind::TooComplex | ErrorKind::DuplicateKey) => kind,
                    _ => ErrorKind::Syntax,
                };
                let mut error = yaml_error(&error, String::new(), kind);
                if kind == ErrorKind::TooComplex && !probe::is_over_budget(&message) {
                    error.message = format!(
                        "{message}: the document nests or repeats through YAML aliases past what \
                         ramlet reads (an alias bomb?)"
                    );
                }
                if error.location.line == 0 {
                    // Limits raised while replaying aliases carry no position: point at the
                    // document instead.
                    error.location = locate(text, index, &[]).unwrap_or_default();
                }
                errors.push(error);
                if kind == ErrorKind::Syntax {
                    // The parser cannot resynchronise after a syntax error: the rest of the
                    // stream is unreadable, and every further document would repeat this error.
                    break;
                }
                continue;
            }
        };
        let (api_version, kind) = match probe {
            Probe::Empty => continue,
            Probe::NotMapping => {
                documents += 1;
                errors.push(locate_error(
                    index,
                    &FieldPath::default(),
                    ErrorKind::InvalidType,
                    "a spec document must be a mapping with apiVersion, kind, metadata and spec"
                        .into(),
                ));
                continue;
            }
            Probe::Mapping { api_version, kind } => (api_version, kind),
        };
        documents += 1;
        if api_version.as_deref() != Some(API_VERSION) {
            let message = match api_version {
                None => {
                    format!("missing apiVersion; this release reads `apiVersion: {API_VERSION}`")
                }
                Some(v) => format!("unknown apiVersion {v:?}; this release reads `{API_VERSION}`"),
            };
            errors.push(locate_error(
                index,
                &FieldPath::of(&["apiVersion"]),
                ErrorKind::ApiVersion,
                message,
            ));
            continue;
        }
        let kind = match kind.as_deref() {
            Some("SecretStore") => Kind::Store,
            Some("Container") => Kind::Container,
            other => {
                let message = match other {
                    None => "missing kind; use SecretStore or Container".to_owned(),
                    Some(k) => format!("unknown kind {k:?}; use SecretStore or Container"),
                };
                errors.push(locate_error(
                    index,
                    &FieldPath::of(&["kind"]),
                    ErrorKind::UnknownKind,
                    message,
                ));
                continue;
            }
        };
        plan.push((index, kind));
    }
    if documents == 0 && !had_error {
        errors.push(file_error(
            path,
            ErrorKind::Empty,
            "file holds no spec documents; remove it or add one".into(),
        ));
        return;
    }

    // Pass 2: typed deserialization of the documents the probe accepted.
    let mut plan = plan.into_iter().peekable();
    for (index, document) in serde_yaml::Deserializer::from_str(text).enumerate() {
        let Some(&(wanted, kind)) = plan.peek() else {
            break;
        };
        if index != wanted {
            continue;
        }
        plan.next();
        let parsed = match kind {
            Kind::Store => {
                serde_path_to_error::deserialize(document).map(|d| Parsed::Store(Box::new(d)))
            }
            Kind::Container => {
                serde_path_to_error::deserialize(document).map(|d| Parsed::Container(Box::new(d)))
            }
        };
        match parsed {
            Ok(parsed) => docs.push(Doc {
                file,
                index,
                parsed,
            }),
            Err(error) => {
                let field = error.path().to_string();
                let field = if field == "." { String::new() } else { field };
                let inner = error.into_inner();
                let kind = classify_serde_message(&bare_yaml_message(&inner));
                errors.push(yaml_error(&inner, field, kind));
            }
        }
    }
}
