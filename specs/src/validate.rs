//! Turns raw documents into the validated [`crate::model`], collecting every finding.
//!
//! Layout:
//! - [`store`]: `SecretStore` documents;
//! - [`container`]: `Container` documents, given the stores that exist;
//! - `template`: a file's template (its inputs, and its text by [`crate::template::check`]);
//! - this file: the finding collector and the checks shared by both kinds (metadata).
//!
//! Validation is pure: it sees one document (and, for containers, the index of valid stores)
//! and returns the model or the list of findings, each with its field path. The loader adds the
//! file, line and column.

pub(crate) mod container;
mod openbao;
pub(crate) mod store;
mod template;

use std::collections::BTreeMap;

use crate::error::{Check, ErrorKind, Finding};
use crate::name::{self, Name};
use crate::path::FieldPath;
use crate::raw;
use crate::text;

/// Collects findings for one document.
#[derive(Debug, Default)]
pub(crate) struct Findings(pub(crate) Vec<Finding>);

impl Findings {
    /// Records a finding.
    pub(crate) fn push(&mut self, field: &FieldPath, kind: ErrorKind, message: impl Into<String>) {
        self.0.push(Finding {
            field: field.clone(),
            kind,
            message: message.into(),
            within: None,
        });
    }

    /// Records a finding at `line` and `column` of the text `field` holds.
    pub(crate) fn push_within(
        &mut self,
        field: &FieldPath,
        (line, column): (usize, usize),
        kind: ErrorKind,
        message: impl Into<String>,
    ) {
        self.0.push(Finding {
            field: field.clone(),
            kind,
            message: message.into(),
            within: Some((line, column)),
        });
    }

    /// Records the problem of a failed check, and passes a good value through.
    pub(crate) fn check<T>(&mut self, field: &FieldPath, result: Check<T>) -> Option<T> {
        result
            .map_err(|(kind, message)| self.push(field, kind, message))
            .ok()
    }

    /// Checks an optional string with `check`: `Ok(None)` when absent, `Err(Rejected)` when
    /// present and bad (the finding is recorded).
    pub(crate) fn optional<'a, T>(
        &mut self,
        field: &FieldPath,
        value: Option<&'a str>,
        check: impl FnOnce(&'a str) -> Check<T>,
    ) -> Result<Option<T>, Rejected> {
        match value {
            None => Ok(None),
            Some(value) => self.check(field, check(value)).map(Some).ok_or(Rejected),
        }
    }
}

/// A value was present and failed its check; the finding is already recorded.
#[derive(Debug)]
pub(crate) struct Rejected;

/// Checks `metadata`: the name, label keys and values, annotation keys and values.
pub(crate) fn metadata(findings: &mut Findings, metadata: &raw::Metadata) -> Option<Name> {
    let path = FieldPath::of(&["metadata"]);
    let name = findings.check(&path.key("name"), name::name(&metadata.name));
    labels(findings, &path.key("labels"), &metadata.labels);
    for (key, value) in &metadata.annotations {
        let field = path.key("annotations").key(key);
        findings.check(&field, text::single_line(key));
        findings.check(&field, text::single_line(value));
    }
    name
}

/// Checks a map of label keys to label values.
pub(crate) fn labels(findings: &mut Findings, path: &FieldPath, labels: &BTreeMap<String, String>) {
    for (key, value) in labels {
        let field = path.key(key);
        findings
            .check(
                &field,
                text::single_line(key).and_then(|_| name::label_key(key)),
            )
            .and_then(|()| {
                findings.check(
                    &field,
                    text::single_line(value).and_then(|_| name::label_value_check(value)),
                )
            });
    }
}

/// Checks that `url` is a plain `http://` or `https://` URL with a host.
pub(crate) fn endpoint(url: &str) -> Check<String> {
    text::word(url)?;
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"));
    match rest {
        Some(rest) if !rest.is_empty() && !rest.starts_with('/') => Ok(url.to_owned()),
        _ => Err((
            ErrorKind::InvalidValue,
            format!("{url:?} is not an http:// or https:// URL with a host"),
        )),
    }
}
