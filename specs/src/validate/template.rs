//! A file's `template`: its inputs (each a secret reference, checked as a file's `secret` is)
//! and its text (by [`crate::template::check`], each problem placed at its line and column in
//! the spec file).

use std::collections::BTreeSet;

use crate::error::ErrorKind;
use crate::model::Template;
use crate::path::FieldPath;
use crate::raw;
use crate::template::{self, MAX_INPUTS, MAX_TEXT_BYTES};

use super::Findings;
use super::container::{Stores, secret_ref};

/// The template, or `None` when anything about it is wrong (each problem recorded).
pub(super) fn template(
    f: &mut Findings,
    path: &FieldPath,
    raw: &raw::Template,
    stores: &Stores<'_>,
) -> Option<Template> {
    let errors = f.0.len();
    let inputs_path = path.key("inputs");
    if raw.inputs.is_empty() {
        f.push(
            &inputs_path,
            ErrorKind::MissingField,
            "a template needs at least one input (a file with no secret in it is not ramlet's to write)",
        );
    }
    if raw.inputs.len() > MAX_INPUTS {
        f.push(
            &inputs_path,
            ErrorKind::TooLarge,
            format!(
                "{} inputs; a template reads at most {MAX_INPUTS}",
                raw.inputs.len()
            ),
        );
    }
    let mut inputs = std::collections::BTreeMap::new();
    for (name, reference) in &raw.inputs {
        let field = inputs_path.key(name);
        if f.check(&field, template::input_name(name)).is_none() {
            continue;
        }
        if let Some(reference) = secret_ref(f, &field, reference, stores) {
            inputs.insert(name.clone(), reference);
        }
    }
    let text_path = path.key("text");
    if let Some((line, column, what)) = control_character(&raw.text) {
        f.push_within(
            &text_path,
            (line, column),
            ErrorKind::UnsafeString,
            format!("the text holds {what}; a template may hold line breaks and tabs, no other control characters"),
        );
    } else if raw.text.len() > MAX_TEXT_BYTES {
        f.push(
            &text_path,
            ErrorKind::TooLarge,
            format!(
                "the text is {} bytes; a template holds at most {MAX_TEXT_BYTES}",
                raw.text.len()
            ),
        );
    } else {
        let names: BTreeSet<&str> = raw.inputs.keys().map(String::as_str).collect();
        for problem in template::check(&raw.text, &names) {
            f.push_within(
                &text_path,
                (problem.line, problem.column),
                problem.kind,
                problem.message,
            );
        }
    }
    (f.0.len() == errors).then(|| Template {
        inputs,
        text: raw.text.clone(),
    })
}

/// The first control character other than a line break or tab: its line, column and name.
fn control_character(text: &str) -> Option<(usize, usize, String)> {
    text.lines().enumerate().find_map(|(i, line)| {
        line.chars()
            .enumerate()
            .find(|(_, c)| c.is_control() && *c != '\t' && *c != '\r')
            .map(|(j, c)| {
                let what = if c == '\0' {
                    "a NUL character".to_owned()
                } else {
                    format!("a control character (U+{:04X})", u32::from(c))
                };
                (i + 1, j + 1, what)
            })
    })
}
