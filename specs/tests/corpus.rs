//! The bad-input corpus: every case under `tests/fixtures/bad/` must fail, with exactly the
//! errors (kind, file, line, column, field) its `expected.txt` lists, and must still load the
//! documents that are valid (listed there as `valid ...` lines).
//!
//! After a deliberate change, `RAMLET_BLESS=1 cargo test -p ramlet-specs --test corpus` rewrites
//! the expectations; review the diff before committing it.

use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};

use ramlet_specs::{Catalog, ErrorKind, MAX_FILE_BYTES, load_dir};

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/bad")
}

/// One line per error, then the valid documents, with paths relative to the case.
fn render(case: &Path, catalog: &Catalog) -> String {
    let mut out = String::new();
    for e in &catalog.errors {
        let file = e
            .file
            .strip_prefix(case)
            .unwrap_or(&e.file)
            .display()
            .to_string();
        let field = if e.field.is_empty() { "-" } else { &e.field };
        let _ = writeln!(out, "{file}:{} {} {field}", e.location, e.kind);
    }
    let names = |it: Vec<&str>| {
        if it.is_empty() {
            "-".to_owned()
        } else {
            it.join(",")
        }
    };
    let _ = writeln!(
        out,
        "valid stores: {}",
        names(
            catalog
                .stores
                .keys()
                .map(ramlet_specs::model::Name::as_str)
                .collect()
        )
    );
    let _ = writeln!(
        out,
        "valid containers: {}",
        names(
            catalog
                .containers
                .keys()
                .map(ramlet_specs::model::Name::as_str)
                .collect()
        )
    );
    out
}

#[test]
fn every_corpus_case_fails_with_the_expected_errors() {
    let bless = std::env::var_os("RAMLET_BLESS").is_some();
    let mut cases: Vec<PathBuf> = fs::read_dir(fixtures())
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    cases.sort();
    assert!(
        cases.len() >= 40,
        "the corpus has {} cases; the issue asks for at least 40",
        cases.len()
    );
    let mut failures = Vec::new();
    for case in &cases {
        let catalog = load_dir(case).unwrap();
        let name = case.file_name().unwrap().to_string_lossy();
        assert!(!catalog.errors.is_empty(), "{name}: loaded without errors");
        let actual = render(case, &catalog);
        let expected_path = case.join("expected.txt");
        if bless {
            fs::write(&expected_path, &actual).unwrap();
            continue;
        }
        let expected = fs::read_to_string(&expected_path).unwrap_or_default();
        if actual != expected {
            failures.push(format!(
                "--- {name}\nexpected:\n{expected}actual:\n{actual}"
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} cases differ:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// A file over the limit is refused without being read whole.
#[test]
fn refuses_a_file_over_one_mebibyte() {
    let dir = tempdir("too-large");
    let mut text = String::from("apiVersion: ramlet.dev/v1alpha1\nkind: SecretStore\n");
    while text.len() as u64 <= MAX_FILE_BYTES {
        text.push_str("# padding padding padding padding padding padding padding padding\n");
    }
    fs::write(dir.join("big.yaml"), text).unwrap();
    let catalog = load_dir(&dir).unwrap();
    assert_eq!(catalog.errors.len(), 1);
    assert_eq!(catalog.errors[0].kind, ErrorKind::TooLarge);
    assert!(catalog.errors[0].file.ends_with("big.yaml"));
}

/// A file under 1 MiB that aliases one 100 kB string 180,000 times would expand to 18 GB; it
/// must fail in the probe, before anything is materialised (a materialising loader would
/// exhaust the machine's memory here).
#[test]
fn refuses_a_string_expansion_bomb_quickly() {
    let dir = tempdir("string-bomb");
    let mut text = format!(
        "apiVersion: ramlet.dev/v1alpha1\nkind: Container\nmetadata: {{name: a}}\nspec:\n  image: &big \"{}\"\n  exec: [",
        "x".repeat(100_000)
    );
    while text.len() < 900_000 {
        text.push_str("*big,");
    }
    text.push_str("*big]\n");
    fs::write(dir.join("bomb.yaml"), text).unwrap();
    let catalog = load_dir(&dir).unwrap();
    assert_eq!(catalog.errors.len(), 1, "{:?}", catalog.errors);
    assert_eq!(catalog.errors[0].kind, ErrorKind::TooComplex);
}

fn tempdir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("ramlet-specs-{name}-{}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).unwrap();
    dir
}
