//! The manual (`docs/manual`): its spec reference is generated from the JSON Schema, so a field
//! the language has and the reference lacks fails here (`RAMLET_BLESS=1 cargo test -p
//! ramlet-specs --test manual` writes it again); every relative link and anchor of its pages
//! (and of the README) points at something that exists; and every page is in its table of
//! contents. `scripts/test` also builds it with mdBook.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use serde_json::Value;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

const REFERENCE: &str = "docs/manual/src/reference/spec.md";

/// A definition's name from a `$ref`.
fn ref_name(reference: &str) -> &str {
    reference.rsplit('/').next().unwrap_or(reference)
}

/// The anchor mdBook gives a heading: lower case, spaces to `-`, other punctuation dropped.
fn anchor(heading: &str) -> String {
    heading
        .trim()
        .to_lowercase()
        .chars()
        .filter_map(|c| match c {
            ' ' => Some('-'),
            c if c.is_alphanumeric() || c == '-' || c == '_' => Some(c),
            _ => None,
        })
        .collect()
}

/// A schema's type, in words, with definitions linked.
fn type_of(schema: &Value) -> String {
    if let Some(reference) = schema.get("$ref").and_then(Value::as_str) {
        let name = ref_name(reference);
        return format!("[{name}](#{})", anchor(name));
    }
    for key in ["allOf", "anyOf", "oneOf"] {
        if let Some(options) = schema.get(key).and_then(Value::as_array) {
            let words: Vec<String> = options
                .iter()
                .filter(|o| o.get("type").and_then(Value::as_str) != Some("null"))
                .map(type_of)
                .collect();
            return words.join(" or ");
        }
    }
    if let Some(values) = schema.get("enum").and_then(Value::as_array) {
        let words: Vec<String> = values
            .iter()
            .map(|v| format!("`{}`", v.as_str().unwrap_or_default()))
            .collect();
        return words.join(", ");
    }
    if let Some(value) = schema.get("const") {
        return format!("`{}`", value.as_str().unwrap_or_default());
    }
    let types: Vec<&str> = match schema.get("type") {
        Some(Value::String(t)) => vec![t.as_str()],
        Some(Value::Array(ts)) => ts
            .iter()
            .filter_map(Value::as_str)
            .filter(|t| *t != "null")
            .collect(),
        _ => vec![],
    };
    let words: Vec<String> = types
        .iter()
        .map(|t| match *t {
            "array" => format!(
                "list of {}",
                schema
                    .get("items")
                    .map_or_else(|| "values".to_owned(), type_of)
            ),
            "object" => match schema.get("additionalProperties") {
                Some(Value::Bool(false)) | None => "object".to_owned(),
                Some(values) => format!("map of string to {}", type_of(values)),
            },
            other => other.to_owned(),
        })
        .collect();
    if words.is_empty() {
        "any".to_owned()
    } else {
        words.join(" or ")
    }
}

/// One line of a description, safe in a table cell.
fn cell(text: &str) -> String {
    text.split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .replace('|', "\\|")
}

/// The definitions in the order a reader meets them: from the two documents, breadth first.
fn order(definitions: &serde_json::Map<String, Value>, roots: &[&str]) -> Vec<String> {
    let mut seen: Vec<String> = Vec::new();
    let mut queue: std::collections::VecDeque<String> =
        roots.iter().map(|r| (*r).to_owned()).collect();
    while let Some(name) = queue.pop_front() {
        if seen.contains(&name) {
            continue;
        }
        seen.push(name.clone());
        let text = definitions[&name].to_string();
        for part in text.split("\"#/definitions/").skip(1) {
            let referenced = part.split('"').next().unwrap_or_default().to_owned();
            if !seen.contains(&referenced) {
                queue.push_back(referenced);
            }
        }
    }
    seen
}

/// The reference page, from the schema.
fn reference() -> String {
    let schema: Value = serde_json::from_str(&ramlet_specs::schema::json()).unwrap();
    let definitions = schema["definitions"].as_object().unwrap();
    let roots: Vec<&str> = schema["oneOf"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|r| r["$ref"].as_str().map(ref_name))
        .collect();
    let mut out = String::from(
        "# Spec reference\n\nEvery field of the two kinds of documents, generated from ramlet's JSON Schema \
         (`specs/schema/ramlet.schema.json`, installed as `/usr/share/ramlet/ramlet.schema.json`) by \
         `specs/tests/manual.rs`, which fails when this page lags behind the language. The \
         [Specs](../specs.md) chapter explains them; `ramlet validate` is stricter than the schema \
         (names, paths, versions, policy).\n",
    );
    for name in order(definitions, &roots) {
        let definition = &definitions[&name];
        let _ = write!(out, "\n## {name}\n\n");
        if let Some(description) = definition.get("description").and_then(Value::as_str) {
            let _ = writeln!(out, "{}\n", cell(description));
        }
        if let Some(properties) = definition.get("properties").and_then(Value::as_object) {
            let required: BTreeSet<&str> = definition
                .get("required")
                .and_then(Value::as_array)
                .map(|r| r.iter().filter_map(Value::as_str).collect())
                .unwrap_or_default();
            out.push_str("| Field | Type | Required | Description |\n| --- | --- | --- | --- |\n");
            for (field, property) in properties {
                let _ = writeln!(
                    out,
                    "| `{field}` | {} | {} | {} |",
                    type_of(property),
                    if required.contains(field.as_str()) {
                        "yes"
                    } else {
                        "no"
                    },
                    cell(
                        property
                            .get("description")
                            .and_then(Value::as_str)
                            .unwrap_or("")
                    )
                );
            }
        } else if let Some(options) = definition.get("oneOf").and_then(Value::as_array) {
            out.push_str("One of:\n\n");
            for option in options {
                let _ = writeln!(
                    out,
                    "- {}: {}",
                    type_of(option),
                    cell(
                        option
                            .get("description")
                            .and_then(Value::as_str)
                            .unwrap_or("")
                    )
                );
            }
        } else {
            let _ = writeln!(out, "A {}.", type_of(definition));
        }
    }
    out
}

#[test]
fn the_spec_reference_is_generated_from_the_schema() {
    let path = root().join(REFERENCE);
    let wanted = reference();
    if std::env::var_os("RAMLET_BLESS").is_some() {
        std::fs::write(&path, &wanted).unwrap();
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == wanted,
        "{REFERENCE} is stale: RAMLET_BLESS=1 cargo test -p ramlet-specs --test manual writes it again"
    );
    // Every field of every definition is in it, as a row of its table.
    let schema: Value = serde_json::from_str(&ramlet_specs::schema::json()).unwrap();
    for (name, definition) in schema["definitions"].as_object().unwrap() {
        for field in definition
            .get("properties")
            .and_then(Value::as_object)
            .into_iter()
            .flat_map(|p| p.keys())
        {
            assert!(
                committed.contains(&format!("| `{field}` |")),
                "{name}.{field} is missing from {REFERENCE}"
            );
        }
    }
}

/// Every markdown file under `dir`.
fn pages(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            found.extend(pages(&path));
        } else if path.extension().is_some_and(|e| e == "md") {
            found.push(path);
        }
    }
    found.sort();
    found
}

/// A markdown text's lines outside code blocks (the fences left out too).
fn prose(text: &str) -> impl Iterator<Item = &str> {
    let mut fence = false;
    text.lines().filter(move |line| {
        if line.starts_with("```") {
            fence = !fence;
            return false;
        }
        !fence
    })
}

/// The anchors of a page's headings (outside code blocks).
fn anchors(text: &str) -> BTreeSet<String> {
    prose(text)
        .filter(|line| line.starts_with('#'))
        .map(|line| anchor(line.trim_start_matches('#')))
        .collect()
}

/// The relative links of a markdown text (`[text](target)`), outside code blocks and spans.
fn links(text: &str) -> Vec<String> {
    let mut found = Vec::new();
    for line in prose(text) {
        // Code spans hold no links.
        let plain: String = line.split('`').step_by(2).collect::<Vec<_>>().join(" ");
        for part in plain.split("](").skip(1) {
            let target = part.split(')').next().unwrap_or_default();
            if !target.contains("://") && !target.starts_with("mailto:") {
                found.push(target.to_owned());
            }
        }
    }
    found
}

#[test]
fn every_link_of_the_manual_and_the_readme_points_somewhere() {
    let src = root().join("docs/manual/src");
    let mut files = pages(&src);
    files.push(root().join("README.md"));
    let mut texts: BTreeMap<PathBuf, String> = BTreeMap::new();
    for file in &files {
        texts.insert(file.clone(), std::fs::read_to_string(file).unwrap());
    }
    let mut broken = Vec::new();
    for (file, text) in &texts {
        for link in links(text) {
            let (target, fragment) = link.split_once('#').unwrap_or((link.as_str(), ""));
            let page = if target.is_empty() {
                file.clone()
            } else {
                file.parent().unwrap().join(target)
            };
            let Ok(page) = page.canonicalize() else {
                broken.push(format!("{}: {link}: no such file", file.display()));
                continue;
            };
            if fragment.is_empty() {
                continue;
            }
            let known = texts
                .iter()
                .find(|(f, _)| f.canonicalize().ok().as_ref() == Some(&page))
                .map(|(_, t)| anchors(t));
            if !known.is_some_and(|a| a.contains(fragment)) {
                broken.push(format!("{}: {link}: no such heading", file.display()));
            }
        }
    }
    assert!(broken.is_empty(), "broken links:\n{}", broken.join("\n"));
}

#[test]
fn every_page_is_in_the_table_of_contents() {
    let src = root().join("docs/manual/src");
    let summary = std::fs::read_to_string(src.join("SUMMARY.md")).unwrap();
    let listed: BTreeSet<String> = links(&summary).into_iter().collect();
    for page in pages(&src) {
        let relative = page
            .strip_prefix(&src)
            .unwrap()
            .to_string_lossy()
            .into_owned();
        if relative == "SUMMARY.md" {
            continue;
        }
        assert!(
            listed.contains(&relative),
            "{relative} is not in SUMMARY.md"
        );
    }
}
