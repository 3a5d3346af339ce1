//! Spec loading never panics on any input, and every error it reports names one of the files
//! it was given, at a line inside that file. The input is split into up to eight files at each
//! 0xFF byte (so store references across files and duplicates are reached). Run:
//! `cd specs && cargo fuzz run --sanitizer none load_specs fuzz/seeds/load_specs`.
#![no_main]

use std::path::PathBuf;

use libfuzzer_sys::fuzz_target;

fuzz_target!(
    init: {
        // The loader catches the YAML library's own panics (they cost one file, see load.rs);
        // libfuzzer's hook would abort on them. A panic that escapes still fails the run.
        drop(std::panic::take_hook());
    },
    |data: &[u8]| {
    let texts: Vec<(PathBuf, String)> = data
        .split(|b| *b == 0xFF)
        .take(8)
        .enumerate()
        .map(|(i, bytes)| {
            (
                PathBuf::from(format!("specs/f{i}.yaml")),
                String::from_utf8_lossy(bytes).into_owned(),
            )
        })
        .collect();
    let catalog = ramlet_specs::load_texts(texts.clone());
    for error in &catalog.errors {
        let text = texts
            .iter()
            .find(|(path, _)| *path == error.file)
            .map(|(_, text)| text)
            .unwrap_or_else(|| panic!("an error names a file it was not given: {error}"));
        // Lines as YAML counts them (a lone CR breaks a line too), plus the end of the stream.
        let lines = text.replace("\r\n", "\n").matches(['\n', '\r']).count() + 1;
        assert!(
            error.location.line <= lines,
            "line {} is past the end of {} ({lines} lines): {error}",
            error.location.line,
            error.file.display()
        );
    }
    // What loads is consistent: every container's stores exist.
    for container in catalog.containers.values() {
        for volume in &container.volumes {
            for file in &volume.files {
                assert!(
                    catalog.stores.contains_key(&file.secret.store),
                    "a loaded container names a store that did not load"
                );
            }
        }
    }
    }
);
