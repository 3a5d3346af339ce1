//! Loading a spec directory: find the files, read them within limits, parse them (`parse`, on
//! every core), validate each document, and check names and store references across documents.
//!
//! Nothing here stops at the first problem: each file, each document and each field is checked,
//! every problem becomes a [`SpecError`], and a bad document only takes itself out (plus, for a
//! store, the containers that need it).

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::error::{ErrorKind, Location, SpecError, file_error};
use crate::locate::locate;
use crate::model::{Container, Name, Origin, SecretStore};
use crate::parse::{Doc, Parsed, parse_file};
use crate::path::FieldPath;
use crate::policy::Policy;
use crate::validate::container::{StoreStatus, Stores};
use crate::validate::{self, Findings};

/// The largest spec file ramlet reads.
pub const MAX_FILE_BYTES: u64 = 1024 * 1024;

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
    load_dir_with(dir, &Policy::default())
}

/// [`load_dir`], rejecting what this host's `policy` forbids.
pub fn load_dir_with(dir: &Path, policy: &Policy) -> Result<Catalog, LoadError> {
    let (files, errors) = list(dir)?;
    Ok(load_files(files, errors, policy))
}

/// The spec files below `dir`, sorted, and the problems met finding them.
fn list(dir: &Path) -> Result<(Vec<PathBuf>, Vec<SpecError>), LoadError> {
    let mut errors = Vec::new();
    let mut files = Vec::new();
    fs::read_dir(dir).map_err(|source| LoadError {
        path: dir.to_owned(),
        source,
    })?;
    // The directory's real root: git-sync publishes the whole tree through one top-level link.
    let root = fs::canonicalize(dir).map_err(|source| LoadError {
        path: dir.to_owned(),
        source,
    })?;
    discover(&root, &root, &mut files, &mut errors, &mut BTreeSet::new());
    files.sort();
    Ok((files, errors))
}

/// Loads a spec directory again and again, as the agent does at every reconcile, but reads and
/// parses it only when something in it changed: a file added, removed or renamed, or a file
/// whose size, modification time, change time or inode moved (a git checkout or git-sync swap
/// changes them all). Otherwise the last catalog is handed out again, unparsed.
#[derive(Debug, Default)]
pub struct Loader {
    last: Option<Snapshot>,
    parses: u64,
}

/// What the last load saw, and what it made of it.
#[derive(Debug)]
struct Snapshot {
    dir: PathBuf,
    policy: Policy,
    stamps: Vec<(PathBuf, Option<Stamp>)>,
    errors: Vec<SpecError>,
    catalog: Arc<Catalog>,
}

/// What tells one version of a file from another without reading it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Stamp {
    len: u64,
    modified: (i64, i64),
    changed: (i64, i64),
    inode: (u64, u64),
}

impl Stamp {
    fn of(path: &Path) -> Option<Self> {
        use std::os::unix::fs::MetadataExt as _;
        let meta = fs::metadata(path).ok()?;
        Some(Self {
            len: meta.len(),
            modified: (meta.mtime(), meta.mtime_nsec()),
            changed: (meta.ctime(), meta.ctime_nsec()),
            inode: (meta.dev(), meta.ino()),
        })
    }
}

impl Loader {
    /// How many loads read and parsed the files (the others handed out the last catalog).
    #[must_use]
    pub fn parses(&self) -> u64 {
        self.parses
    }

    /// The last catalog loaded from `dir` with `policy`, without looking at the files (for a
    /// caller that knows none changed since).
    #[must_use]
    pub fn last(&self, dir: &Path, policy: &Policy) -> Option<Arc<Catalog>> {
        self.last
            .as_ref()
            .filter(|last| last.dir == dir && last.policy == *policy)
            .map(|last| Arc::clone(&last.catalog))
    }

    /// [`load_dir_with`], or the last catalog again when nothing in `dir` changed since.
    pub fn load(&mut self, dir: &Path, policy: &Policy) -> Result<Arc<Catalog>, LoadError> {
        let (files, errors) = list(dir)?;
        // Stamped before reading: a file that changes while it is read is read again next time.
        let stamps: Vec<(PathBuf, Option<Stamp>)> = files
            .iter()
            .map(|path| (path.clone(), Stamp::of(path)))
            .collect();
        if let Some(last) = &self.last
            && last.dir == dir
            && last.policy == *policy
            && last.stamps == stamps
            && last.errors == errors
        {
            return Ok(Arc::clone(&last.catalog));
        }
        let catalog = Arc::new(load_files(files, errors.clone(), policy));
        self.parses += 1;
        self.last = Some(Snapshot {
            dir: dir.to_owned(),
            policy: policy.clone(),
            stamps,
            errors,
            catalog: Arc::clone(&catalog),
        });
        Ok(catalog)
    }
}

/// Reads, parses and validates `files`; `errors`: the problems met finding them.
fn load_files(files: Vec<PathBuf>, errors: Vec<SpecError>, policy: &Policy) -> Catalog {
    let texts = par_map(&files, |_, path| read(path));
    let sources: Vec<(PathBuf, Result<String, SpecError>)> = files.into_iter().zip(texts).collect();
    let mut catalog = build(sources, policy);
    catalog.errors.extend(errors);
    catalog
        .errors
        .sort_by(|a, b| (&a.file, a.location).cmp(&(&b.file, b.location)));
    catalog
}

/// Loads spec texts that are already in memory (tests, benchmarks).
pub fn load_texts(texts: impl IntoIterator<Item = (PathBuf, String)>) -> Catalog {
    load_texts_with(texts, &Policy::default())
}

/// [`load_texts`], rejecting what this host's `policy` forbids.
pub fn load_texts_with(
    texts: impl IntoIterator<Item = (PathBuf, String)>,
    policy: &Policy,
) -> Catalog {
    let mut catalog = build(
        texts
            .into_iter()
            .map(|(path, text)| (path, Ok(text)))
            .collect(),
        policy,
    );
    catalog
        .errors
        .sort_by(|a, b| (&a.file, a.location).cmp(&(&b.file, b.location)));
    catalog
}

/// Lists the spec files below `dir`. Links are followed only when they stay below `root` (the
/// spec directory's real path): a link out of it (a git repository can hold a link to
/// `/etc/shadow` or `/run/initctl`) is an error of that link, its target never opened. Only
/// regular files are listed: a FIFO, socket or device named `*.yaml` is an error, never opened.
fn discover(
    root: &Path,
    dir: &Path,
    files: &mut Vec<PathBuf>,
    errors: &mut Vec<SpecError>,
    seen: &mut BTreeSet<PathBuf>,
) {
    // Linked folders inside the tree are followed, but never in a loop.
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
        let (path, file_type) = match entry.and_then(|e| Ok((e.path(), e.file_type()?))) {
            Ok(found) => found,
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
        let spec_name = path.extension().is_some_and(|e| e == "yaml" || e == "yml");
        let (target, file_type) = if file_type.is_symlink() {
            match fs::canonicalize(&path) {
                Ok(real) if real.starts_with(root) => match fs::metadata(&real) {
                    Ok(meta) => (real, meta.file_type()),
                    Err(_) => continue,
                },
                Ok(_) if spec_name || fs::metadata(&path).is_ok_and(|m| m.is_dir()) => {
                    errors.push(file_error(
                        &path,
                        ErrorKind::InvalidPath,
                        "is a symbolic link out of the spec directory; ramlet follows links only within it, and did not open it".into(),
                    ));
                    continue;
                }
                Err(_) if spec_name => {
                    errors.push(file_error(
                        &path,
                        ErrorKind::Io,
                        "is a symbolic link to nothing".into(),
                    ));
                    continue;
                }
                // A link out of the tree or to nothing that is no spec file: not ramlet's.
                Ok(_) | Err(_) => continue,
            }
        } else {
            (path.clone(), file_type)
        };
        if file_type.is_dir() {
            discover(root, &target, files, errors, seen);
        } else if spec_name && file_type.is_file() {
            files.push(target);
        } else if spec_name {
            errors.push(file_error(
                &path,
                ErrorKind::Io,
                "is not a regular file (a FIFO, socket or device); ramlet reads only regular files, and did not open it".into(),
            ));
        }
    }
}

/// Reads one file, refusing files over [`MAX_FILE_BYTES`] without reading them whole, and files
/// that are not UTF-8. Opened without following a link and without blocking, and read only if
/// `fstat` says it is a regular file: what was listed may have been swapped since.
fn read(path: &Path) -> Result<String, SpecError> {
    use std::os::unix::fs::OpenOptionsExt as _;
    let io = |error: std::io::Error| {
        file_error(path, ErrorKind::Io, format!("cannot read file: {error}"))
    };
    let file = fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_CLOEXEC)
        .open(path)
        .map_err(io)?;
    if !file.metadata().map_err(io)?.is_file() {
        return Err(file_error(
            path,
            ErrorKind::Io,
            "is not a regular file; ramlet reads only regular files".into(),
        ));
    }
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

fn build(sources: Vec<(PathBuf, Result<String, SpecError>)>, policy: &Policy) -> Catalog {
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
    let (docs, reported) = parse_all(&catalog.files, &texts, &mut catalog.errors);
    let texts: Vec<String> = texts.into_iter().map(Option::unwrap_or_default).collect();
    let ctx = Ctx {
        paths: &catalog.files,
        texts: &texts,
        reported: std::cell::RefCell::new(reported),
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
        let result = validate::store::validate(raw, ctx.origin(doc)).and_then(|store| {
            let findings = policy.check_store(&store);
            if findings.0.is_empty() {
                Ok(store)
            } else {
                Err(findings)
            }
        });
        match result {
            Ok(store) if !duplicates.contains(name) => valid_stores.push(store),
            Ok(_) => {}
            Err(findings) => ctx.report(doc, findings, &mut catalog.errors),
        }
        stores.insert(name, StoreStatus::Rejected);
    }
    let (valid_stores, keys_within) = apart_from_identities(valid_stores);
    for (store, identity) in &keys_within {
        if let Some(doc) = store_docs.iter().find(|d| matches!(&d.parsed, Parsed::Store(raw) if raw.metadata.name.as_str() == store.name.as_str())) {
            let mut findings = Findings::default();
            let field = match store.provider {
                crate::model::Provider::Creds { .. } => ["spec", "creds", "directory"],
                _ => ["spec", "file", "directory"],
            };
            findings.push(
                &FieldPath::of(&field),
                ErrorKind::Policy,
                format!(
                    "holds {identity}; no store may deliver a file another store uses as its key: keep identities in a folder of their own (policy.identityDirectories)"
                ),
            );
            ctx.report(doc, findings, &mut catalog.errors);
        }
    }
    for store in &valid_stores {
        stores.insert(store.name.as_str(), StoreStatus::Valid(&store.provider));
    }

    let duplicates = duplicate_names(&ctx, &container_docs, "Container", &mut catalog.errors);
    let mut candidates: Vec<(&Doc, Container)> = Vec::new();
    for doc in &container_docs {
        let Parsed::Container(raw) = &doc.parsed else {
            continue;
        };
        match validate::container::validate(raw, ctx.origin(doc), &stores) {
            Ok(c) if !duplicates.contains(raw.metadata.name.as_str()) => candidates.push((doc, c)),
            Ok(_) => {}
            Err(findings) => ctx.report(doc, findings, &mut catalog.errors),
        }
    }
    let candidates = within_budget(&ctx, candidates, policy, &mut catalog.errors);
    for (doc, container, findings) in referable(candidates, policy) {
        if findings.0.is_empty() {
            catalog.containers.insert(container.name.clone(), container);
        } else {
            ctx.report(doc, findings, &mut catalog.errors);
        }
    }
    ctx.overflow(&mut catalog.errors);
    drop(stores);
    catalog.stores = valid_stores
        .into_iter()
        .map(|s| (s.name.clone(), s))
        .collect();
    for error in &mut catalog.errors {
        // (A file that could not be read has no text here: its errors keep their places.)
        if let Some(i) = catalog.files.iter().position(|f| *f == error.file)
            && !texts[i].is_empty()
        {
            error.location = within(error.location, &texts[i]);
        }
    }
    catalog
}

/// Splits off the `file` and `creds` stores whose folder holds another store's key (an `age`
/// identity, an `openbao` credential: the host's own secrets), each with what it holds: they
/// would hand that key to a container.
fn apart_from_identities(
    stores: Vec<SecretStore>,
) -> (Vec<SecretStore>, Vec<(SecretStore, String)>) {
    use crate::model::Provider;
    let identities: Vec<(String, PathBuf)> = stores
        .iter()
        .flat_map(|s| {
            s.provider
                .host_keys()
                .into_iter()
                .map(|key| (s.name.as_str().to_owned(), key.path().to_owned()))
        })
        .collect();
    let mut kept = Vec::new();
    let mut refused = Vec::new();
    for store in stores {
        let held = match &store.provider {
            Provider::File { directory } | Provider::Creds { directory } => identities
                .iter()
                .find(|(_, key)| key.starts_with(directory)),
            _ => None,
        };
        match held {
            Some((name, key)) => {
                let what = format!("{}, a key of store {name}", key.display());
                refused.push((store, what));
            }
            None => kept.push(store),
        }
    }
    (kept, refused)
}

/// The containers whose volumes fit in the host's budget of secret bytes
/// ([`Policy::host_bytes`]), taken by name among those this host runs; each of the others is
/// refused at its `spec.volumes`, saying so.
fn within_budget<'d>(
    ctx: &Ctx<'_>,
    candidates: Vec<(&'d Doc, Container)>,
    policy: &Policy,
    errors: &mut Vec<SpecError>,
) -> Vec<(&'d Doc, Container)> {
    let budget = policy.host_bytes();
    let mut total = 0u64;
    let mut kept = Vec::with_capacity(candidates.len());
    let mut sorted = candidates;
    sorted.sort_by(|a, b| a.1.name.cmp(&b.1.name));
    for (doc, container) in sorted {
        let selected = policy
            .host_labels
            .as_ref()
            .is_none_or(|labels| container.host_selector.matches(labels));
        let size: u64 = container.volumes.iter().map(|v| v.size_limit).sum();
        if !selected || total + size <= budget {
            total += if selected { size } else { 0 };
            kept.push((doc, container));
            continue;
        }
        let mut findings = Findings::default();
        findings.push(
            &FieldPath::of(&["spec", "volumes"]),
            ErrorKind::Policy,
            format!(
                "its volumes ({} MiB) do not fit in what is left of this host's budget for secrets ({} of {} MiB; the specs before it by name hold the rest); its admin can raise `policy.maxSecretBytes`",
                size.div_ceil(1 << 20),
                (budget - total) >> 20,
                budget >> 20
            ),
        );
        ctx.report(doc, findings, errors);
    }
    kept
}

/// Checks each valid container against the policy, where the units its `quadlet:` keys may
/// start, stop or pull in are those of the containers that are themselves valid, allowed by
/// the policy and selected for this host ([`Policy::host_labels`]): never a decoy document that
/// is invalid or runs elsewhere, whose unit name would then be free for a vendor unit
/// (`systemd-reboot.service`). Refusing one container can make another's reference dangling,
/// so this runs until nothing more is refused (at most once per container; in practice twice).
fn referable<'d>(
    mut candidates: Vec<(&'d Doc, Container)>,
    policy: &Policy,
) -> Vec<(&'d Doc, Container, Findings)> {
    let mut refused = Vec::new();
    loop {
        let managed: BTreeSet<String> = candidates
            .iter()
            .filter(|(_, c)| {
                policy
                    .host_labels
                    .as_ref()
                    .is_none_or(|labels| c.host_selector.matches(labels))
            })
            .map(|(_, c)| format!("{}.service", c.name.as_str()))
            .collect();
        let (passed, failed): (Vec<_>, Vec<_>) = candidates
            .into_iter()
            .map(|(doc, c)| {
                let findings = policy.check_container(&c, &managed);
                (doc, c, findings)
            })
            .partition(|(_, _, findings)| findings.0.is_empty());
        let done = failed.is_empty();
        refused.extend(failed);
        if done {
            refused.extend(passed);
            return refused;
        }
        candidates = passed.into_iter().map(|(doc, c, _)| (doc, c)).collect();
    }
}

/// `location`, or the end of `text` if it lies past it: the YAML parser places an error at the
/// end of a file without a final line break on the line after it, which no editor shows.
fn within(location: Location, text: &str) -> Location {
    // Lines as YAML counts them: a CR, an LF or a CR LF ends one.
    let normalized = text.replace("\r\n", "\n").replace('\r', "\n");
    let last_line = normalized.matches('\n').count() + 1;
    if location.line <= last_line {
        return location;
    }
    let last = normalized.rsplit('\n').next().unwrap_or_default();
    Location {
        line: last_line,
        column: last.chars().count() + 1,
    }
}

/// The most errors located and reported per file; the rest are counted in one more error.
/// Locating an error re-reads its file up to its document, so this also bounds that cost.
pub const MAX_ERRORS_PER_FILE: usize = 50;

struct Ctx<'a> {
    paths: &'a [PathBuf],
    texts: &'a [String],
    /// Errors reported so far, per file.
    reported: std::cell::RefCell<Vec<usize>>,
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

    /// Whether one more error of `file` is to be located and reported (or only counted).
    fn budget(&self, file: usize) -> bool {
        let mut reported = self.reported.borrow_mut();
        reported[file] += 1;
        reported[file] <= MAX_ERRORS_PER_FILE
    }

    /// One error per file that went past [`MAX_ERRORS_PER_FILE`], saying how many were left out.
    fn overflow(&self, errors: &mut Vec<SpecError>) {
        for (file, &count) in self.reported.borrow().iter().enumerate() {
            if count > MAX_ERRORS_PER_FILE {
                errors.push(file_error(
                    &self.paths[file],
                    ErrorKind::TooComplex,
                    format!(
                        "{} more errors in this file are not shown (ramlet reports the first {MAX_ERRORS_PER_FILE} per file)",
                        count - MAX_ERRORS_PER_FILE
                    ),
                ));
            }
        }
    }

    fn report(&self, doc: &Doc, findings: Findings, errors: &mut Vec<SpecError>) {
        for finding in findings.0 {
            if !self.budget(doc.file) {
                continue;
            }
            let field = self.locate(doc, &finding.field);
            let location = match finding.within {
                None => field,
                Some(at) => in_text(&self.texts[doc.file], field, at),
            };
            errors.push(SpecError {
                file: self.paths[doc.file].clone(),
                location,
                field: finding.field.to_string(),
                kind: finding.kind,
                message: finding.message,
            });
        }
    }
}

/// Where `line` and `column` of the text held by the scalar at `field` are in the file: after
/// a block scalar's `|` or `>` the text starts on the next line, at its indentation; a quoted
/// or plain scalar starts where it stands.
fn in_text(text: &str, field: Location, (line, column): (usize, usize)) -> Location {
    let lines: Vec<&str> = text.lines().collect();
    let Some(start) = field.line.checked_sub(1).and_then(|i| lines.get(i)) else {
        return field;
    };
    let rest = start.get(field.column.saturating_sub(1)..).unwrap_or("");
    if rest.starts_with(['|', '>']) {
        let indent = lines
            .iter()
            .skip(field.line)
            .find(|l| !l.trim().is_empty())
            .map_or(0, |l| l.len() - l.trim_start().len());
        Location {
            line: field.line + line,
            column: indent + column,
        }
    } else {
        let quoted = usize::from(rest.starts_with(['"', '\'']));
        Location {
            line: field.line + line - 1,
            column: if line == 1 {
                field.column + quoted + column - 1
            } else {
                column
            },
        }
    }
}

/// How many other places a duplicate name's error names.
const DUPLICATES_NAMED: usize = 3;

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
        // Each place is located once, and a message names at most a few others: a file of
        // thousands of copies must cost thousands of errors, not millions of words.
        let shown: Vec<(usize, String)> = group
            .iter()
            .enumerate()
            .take(DUPLICATES_NAMED + 1)
            .map(|(i, d)| {
                (
                    i,
                    format!("{}:{}", ctx.paths[d.file].display(), ctx.locate(d, &field)),
                )
            })
            .collect();
        for (i, doc) in group.iter().enumerate() {
            if !ctx.budget(doc.file) {
                continue;
            }
            let others: Vec<&str> = shown
                .iter()
                .filter(|(j, _)| *j != i)
                .take(DUPLICATES_NAMED)
                .map(|(_, p)| p.as_str())
                .collect();
            let more = group.len() - 1 - others.len();
            let more = if more > 0 {
                format!(" and {more} more places")
            } else {
                String::new()
            };
            errors.push(SpecError {
                file: ctx.paths[doc.file].clone(),
                location: ctx.locate(doc, &field),
                field: field.to_string(),
                kind: ErrorKind::DuplicateName,
                message: format!(
                    "{kind} {name:?} is also defined at {}{more}; all are rejected",
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
/// Parses every file; returns the documents and, per file, how many of its documents were
/// rejected past its error budget without being explained.
fn parse_all(
    paths: &[PathBuf],
    texts: &[Option<String>],
    errors: &mut Vec<SpecError>,
) -> (Vec<Doc>, Vec<usize>) {
    let results = par_map(texts, |file, text| {
        let (mut docs, mut errors, mut unexplained) = (Vec::new(), Vec::new(), 0);
        if let Some(text) = text {
            // The YAML library panics on some malformed inputs (found by fuzzing: an
            // unterminated flow sequence among aliases). That costs this file only.
            let parsed = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                unexplained = parse_file(
                    file,
                    &paths[file],
                    text,
                    &mut docs,
                    &mut errors,
                    MAX_ERRORS_PER_FILE,
                );
            }));
            if parsed.is_err() {
                docs.clear();
                errors = vec![file_error(
                    &paths[file],
                    ErrorKind::Syntax,
                    "the YAML parser gave up on this file (malformed YAML, often an unclosed \
                     bracket among anchors and aliases); check its syntax"
                        .into(),
                )];
            }
        }
        (docs, errors, unexplained)
    });
    let mut docs = Vec::new();
    let mut counts = Vec::new();
    for (d, e, unexplained) in results {
        docs.extend(d);
        counts.push(e.len() + unexplained);
        errors.extend(e);
    }
    (docs, counts)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Issue 19, finding 3: a `*.yaml` FIFO in the spec directory, or a link to one, blocked
    /// the loader for good (`File::open` waits for a writer), and links out of the directory
    /// were followed as root with the target's values echoed into errors. Now: each is an error
    /// of its own file, nothing is opened, the load returns at once and the rest loads.
    #[test]
    fn regression_19_fifos_and_links_out_of_the_spec_directory_never_block_or_leak() {
        let base = std::env::temp_dir().join(format!("ramlet-loader-fifo-{}", std::process::id()));
        let _ = fs::remove_dir_all(&base);
        let specs = base.join("specs");
        fs::create_dir_all(specs.join("real")).unwrap();
        fs::write(
            specs.join("real/good.yaml"),
            "apiVersion: ramlet.dev/v1alpha1\nkind: SecretStore\nmetadata: {name: a}\nspec:\n  file: {directory: /srv/s}\n",
        )
        .unwrap();
        let fifo = |path: &Path| {
            let made = std::process::Command::new("mkfifo")
                .arg(path)
                .status()
                .unwrap();
            assert!(made.success());
        };
        fifo(&specs.join("pipe.yaml"));
        fifo(&base.join("outside-pipe"));
        fs::write(base.join("outside.yaml"), "password: hunter2-canary\n").unwrap();
        std::os::unix::fs::symlink(specs.join("pipe.yaml"), specs.join("to-pipe.yaml")).unwrap();
        std::os::unix::fs::symlink(base.join("outside-pipe"), specs.join("out-pipe.yaml")).unwrap();
        std::os::unix::fs::symlink(base.join("outside.yaml"), specs.join("leak.yaml")).unwrap();
        std::os::unix::fs::symlink(specs.join("real"), specs.join("linked")).unwrap();
        // The directory itself through a link, as git-sync publishes it.
        std::os::unix::fs::symlink(&specs, base.join("current")).unwrap();

        let (sender, answer) = std::sync::mpsc::channel();
        let dir = base.join("current");
        std::thread::spawn(move || sender.send(load_dir(&dir)).unwrap());
        let catalog = answer
            .recv_timeout(std::time::Duration::from_secs(5))
            .expect("the loader blocked on a FIFO")
            .unwrap();
        assert_eq!(catalog.stores.len(), 1, "{:#?}", catalog.errors);
        let errors: Vec<String> = catalog.errors.iter().map(ToString::to_string).collect();
        let about = |name: &str| errors.iter().filter(|e| e.contains(name)).count();
        assert_eq!(errors.len(), 4, "{errors:#?}");
        assert_eq!(about("pipe.yaml: is not a regular file"), 2, "{errors:#?}");
        assert_eq!(
            about("out-pipe.yaml: is a symbolic link out of the spec directory"),
            1
        );
        assert_eq!(
            about("leak.yaml: is a symbolic link out of the spec directory"),
            1
        );
        assert!(!errors.iter().any(|e| e.contains("hunter2")), "{errors:#?}");
        let _ = fs::remove_dir_all(&base);
    }

    #[test]
    fn the_loader_parses_again_only_what_changed() {
        let dir = std::env::temp_dir().join(format!("ramlet-loader-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        let store = |name: &str| {
            format!(
                "apiVersion: ramlet.dev/v1alpha1\nkind: SecretStore\nmetadata: {{name: {name}}}\nspec:\n  file: {{directory: /srv/s}}\n"
            )
        };
        fs::write(dir.join("a.yaml"), store("a")).unwrap();
        let mut loader = Loader::default();
        let policy = Policy::default();
        let first = loader.load(&dir, &policy).unwrap();
        let again = loader.load(&dir, &policy).unwrap();
        assert!(
            Arc::ptr_eq(&first, &again),
            "nothing changed: not parsed again"
        );
        // An edit (here of the same length, in place) is seen.
        fs::write(dir.join("a.yaml"), store("b")).unwrap();
        let edited = loader.load(&dir, &policy).unwrap();
        assert!(!Arc::ptr_eq(&first, &edited));
        assert!(edited.stores.keys().any(|n| n.as_str() == "b"));
        // A new file, and a removed one.
        fs::write(dir.join("c.yaml"), store("c")).unwrap();
        assert_eq!(loader.load(&dir, &policy).unwrap().stores.len(), 2);
        fs::remove_file(dir.join("c.yaml")).unwrap();
        assert_eq!(loader.load(&dir, &policy).unwrap().stores.len(), 1);
        // Another policy is another load.
        let strict = Policy {
            store_directories: vec![PathBuf::from("/etc")],
            ..Policy::default()
        };
        assert_eq!(loader.load(&dir, &strict).unwrap().stores.len(), 0);
        let _ = fs::remove_dir_all(dir);
    }

    /// Found by the `load_specs` fuzz target: `serde_yaml_ng` panics ("unexpected end of
    /// sequence") on this; only its file is refused, and the other file loads.
    #[test]
    fn a_panic_in_the_yaml_library_costs_one_file() {
        let bad = include_str!("../tests/fixtures/panics/unexpected-end-of-sequence.yaml");
        let good = "apiVersion: ramlet.dev/v1alpha1\nkind: SecretStore\nmetadata: {name: a}\nspec:\n  file: {directory: /srv/s}\n";
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(|_| {}));
        let catalog = load_texts([
            (PathBuf::from("bad.yaml"), bad.to_owned()),
            (PathBuf::from("good.yaml"), good.to_owned()),
        ]);
        std::panic::set_hook(previous);
        assert_eq!(catalog.stores.len(), 1);
        assert_eq!(catalog.errors.len(), 1, "{:?}", catalog.errors);
        assert!(catalog.errors[0].file.ends_with("bad.yaml"));
        assert_eq!(catalog.errors[0].kind, ErrorKind::Syntax);
        assert!(
            catalog.errors[0].message.contains("gave up"),
            "{}",
            catalog.errors[0]
        );
    }

    /// Found by the `load_specs` fuzz target: an unclosed flow mapping on the last line of a
    /// file without a final line break was reported on line 6 of a 5-line file.
    #[test]
    fn an_error_at_the_end_of_a_file_is_placed_on_its_last_line() {
        let text = "apiVersion: ramlet.dev/v1alpha1\nkind: SecretStore\nmetadata: {name: a}\nspec:\n  file: {directory: /srv";
        let catalog = load_texts([(PathBuf::from("f.yaml"), text.to_owned())]);
        let error = &catalog.errors[0];
        assert_eq!(
            (error.location.line, error.location.column),
            (5, 25),
            "{error}"
        );
        assert_eq!(
            within(Location { line: 3, column: 1 }, "a\r\nb\rc"),
            Location { line: 3, column: 1 }
        );
        assert_eq!(
            within(Location { line: 4, column: 1 }, "a\r\nb\rc"),
            Location { line: 3, column: 2 }
        );
    }
}
