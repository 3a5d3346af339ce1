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

use serde::de::DeserializeSeed as _;

use crate::document::{AnyDocument, Kind, Outcome, Spec};
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
    let texts = par_map(&files, |_, path| read(path));
    let sources: Vec<(PathBuf, Result<String, SpecError>)> = files.into_iter().zip(texts).collect();
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
    if let Ok(real) = fs::canonicalize(dir)
        && !seen.insert(real)
    {
        return;
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

fn build(sources: Vec<(PathBuf, Result<String, SpecError>)>) -> Catalog {
    let mut catalog = Catalog::default();
    let mut texts = Vec::with_capacity(sources.len());
    for (path, text) in sources {
        match text {
            Ok(text) => texts.push(Some(text)),
            Err(error) => {
                catalog.errors.push(error);
                texts.push(None);
            }
        }
        catalog.files.push(path);
    }
    let docs = parse_all(&catalog.files, &texts, &mut catalog.errors);
    let texts: Vec<String> = texts.into_iter().map(Option::unwrap_or_default).collect();
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

/// Maps `f` over `items` on the machine's cores, keeping order. YAML parsing is most of the
/// loader's time and files are independent, so files are spread over threads.
fn par_map<T: Sync, R: Send>(items: &[T], f: impl Fn(usize, &T) -> R + Sync) -> Vec<R> {
    let threads = std::thread::available_parallelism()
        .map_or(1, usize::from)
        .min(8);
    let chunk = items.len().div_ceil(threads).max(16);
    let f = &f;
    std::thread::scope(|scope| {
        let handles: Vec<_> = items
            .chunks(chunk)
            .enumerate()
            .map(|(n, part)| {
                scope.spawn(move || {
                    part.iter()
                        .enumerate()
                        .map(|(i, item)| f(n * chunk + i, item))
                        .collect::<Vec<R>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| {
                h.join()
                    .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
            })
            .collect()
    })
}

/// Parses every file, merging documents and errors in file order.
fn parse_all(paths: &[PathBuf], texts: &[Option<String>], errors: &mut Vec<SpecError>) -> Vec<Doc> {
    let results = par_map(texts, |file, text| {
        let (mut docs, mut errors) = (Vec::new(), Vec::new());
        if let Some(text) = text {
            parse_file(file, &paths[file], text, &mut docs, &mut errors);
        }
        (docs, errors)
    });
    let mut docs = Vec::new();
    for (d, e) in results {
        docs.extend(d);
        errors.extend(e);
    }
    docs
}

/// Parses the documents of one file into `docs`, reporting problems into `errors`.
fn parse_file(
    file: usize,
    path: &Path,
    text: &str,
    docs: &mut Vec<Doc>,
    errors: &mut Vec<SpecError>,
) {
    let parser = FileParser { file, path, text };
    // Only aliases (`*name`) can make a document expand past its size. A file without `*` cannot
    // hold one and is read in a single pass; any other file is probed first, within a budget.
    let probed = text.contains('*').then(|| parser.probe_documents(errors));
    let mut documents = 0;
    let mut had_error = probed.as_ref().is_some_and(|p| p.had_error);
    for (index, document) in serde_yaml::Deserializer::from_str(text).enumerate() {
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
                errors.push(error);
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
        SpecError {
            file: self.path.to_owned(),
            location: locate(self.text, index, &field.0).unwrap_or_default(),
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
