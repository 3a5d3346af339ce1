//! Issue 33, finding 4: one spec file could starve the host. 2,500 invalid documents in one
//! 256 KB file made every reconcile take longer than its deadline (each error re-read the file
//! up to its document, and duplicate-name messages named every other copy). Now a file holds at
//! most `MAX_DOCUMENTS_PER_FILE` documents, reports at most `MAX_ERRORS_PER_FILE` errors, and a
//! duplicate's message names a few places; the bad file affects only itself. (How long such a
//! load takes is measured in `cargo bench -p ramlet-specs --bench load`, not here.)

use std::fmt::Write as _;
use std::path::PathBuf;

use ramlet_specs::load::MAX_ERRORS_PER_FILE;
use ramlet_specs::{ErrorKind, MAX_DOCUMENTS_PER_FILE, load_texts};

const GOOD: &str = "apiVersion: ramlet.dev/v1alpha1\nkind: SecretStore\nmetadata: {name: good}\nspec:\n  file: {directory: /srv/secrets}\n";

fn invalid_documents(count: usize) -> String {
    let mut text = String::new();
    for i in 0..count {
        let _ = write!(
            text,
            "---\napiVersion: ramlet.dev/v1alpha1\nkind: Container\nmetadata: {{name: bad-{i}}}\nspec: {{image: x, nope: 1}}\n"
        );
    }
    text
}

#[test]
fn regression_33_a_file_of_thousands_of_documents_is_refused_whole_and_alone() {
    let text = invalid_documents(2_500);
    assert!(text.len() < 256 * 1024);
    let catalog = load_texts([
        (PathBuf::from("bomb.yaml"), text),
        (PathBuf::from("good.yaml"), GOOD.to_owned()),
    ]);
    assert_eq!(catalog.errors.len(), 1, "{:#?}", &catalog.errors[..3]);
    let error = &catalog.errors[0];
    assert!(error.file.ends_with("bomb.yaml") && error.kind == ErrorKind::TooLarge);
    assert!(
        error
            .message
            .contains(&format!("more than {MAX_DOCUMENTS_PER_FILE} documents")),
        "{error}"
    );
    assert_eq!(catalog.stores.len(), 1, "the other file still loads");
}

#[test]
fn regression_33_errors_per_file_are_bounded_and_the_rest_counted() {
    let catalog = load_texts([
        (
            PathBuf::from("many.yaml"),
            invalid_documents(MAX_DOCUMENTS_PER_FILE),
        ),
        (PathBuf::from("good.yaml"), GOOD.to_owned()),
    ]);
    assert_eq!(catalog.errors.len(), MAX_ERRORS_PER_FILE + 1);
    let last = catalog
        .errors
        .iter()
        .find(|e| e.message.contains("not shown"))
        .unwrap();
    assert!(
        last.message.starts_with(&format!(
            "{} more errors",
            MAX_DOCUMENTS_PER_FILE - MAX_ERRORS_PER_FILE
        )),
        "{last}"
    );
    assert_eq!(catalog.stores.len(), 1);
}

#[test]
fn regression_33_thousands_of_duplicates_cost_short_messages() {
    let files = (0..2_000).map(|i| {
        (
            PathBuf::from(format!("copy-{i}.yaml")),
            GOOD.replace("/srv/secrets", &format!("/srv/secrets/{i}")),
        )
    });
    let catalog = load_texts(files.chain([(
        PathBuf::from("other.yaml"),
        GOOD.replace("name: good", "name: other"),
    )]));
    assert_eq!(catalog.errors.len(), 2_000);
    assert!(
        catalog
            .errors
            .iter()
            .all(|e| e.kind == ErrorKind::DuplicateName
                && e.message.len() < 300
                && e.message.contains("and 1996 more places"))
    );
    let names: Vec<&str> = catalog
        .stores
        .keys()
        .map(ramlet_specs::model::Name::as_str)
        .collect();
    assert_eq!(names, ["other"]);
}
