//! The man pages and shell completions in `dist/` are generated from the CLI definition
//! (`clap_mangen`, `clap_complete`), and this test fails when they are stale:
//! `RAMLET_BLESS=1 cargo test -p ramlet --test cli_docs` writes them again.

use std::path::{Path, PathBuf};

use clap::CommandFactory as _;
use clap_complete::Shell;
use ramlet::cli::Cli;

fn dist() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../dist")
}

/// Every generated file: its path under `dist/` and its content.
fn generated() -> Vec<(PathBuf, Vec<u8>)> {
    let mut files = Vec::new();
    let command = Cli::command();
    let mut page = Vec::new();
    clap_mangen::Man::new(command.clone())
        .render(&mut page)
        .unwrap();
    files.push((PathBuf::from("man/ramlet.1"), page));
    for sub in command.get_subcommands() {
        let name = format!("ramlet-{}", sub.get_name());
        let mut page = Vec::new();
        // clap takes a page's name as a static string; a test may leak a few.
        let title: &'static str = Box::leak(name.clone().into_boxed_str());
        let sub = sub
            .clone()
            .name(title)
            .bin_name(format!("ramlet {}", sub.get_name()));
        clap_mangen::Man::new(sub).render(&mut page).unwrap();
        files.push((PathBuf::from(format!("man/{name}.1")), page));
    }
    for (shell, file) in [
        (Shell::Bash, "completions/ramlet.bash"),
        (Shell::Zsh, "completions/_ramlet"),
        (Shell::Fish, "completions/ramlet.fish"),
    ] {
        let mut script = Vec::new();
        clap_complete::generate(shell, &mut Cli::command(), "ramlet", &mut script);
        files.push((PathBuf::from(file), script));
    }
    files
}

#[test]
fn man_pages_and_completions_are_current() {
    let bless = std::env::var_os("RAMLET_BLESS").is_some();
    let mut stale = Vec::new();
    for (path, content) in generated() {
        let path = dist().join(path);
        if bless {
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(&path, &content).unwrap();
        } else if std::fs::read(&path).ok().as_deref() != Some(content.as_slice()) {
            stale.push(path.display().to_string());
        }
    }
    assert!(
        stale.is_empty(),
        "stale (RAMLET_BLESS=1 cargo test -p ramlet --test cli_docs writes them): {stale:#?}"
    );
}

#[test]
fn the_man_page_names_every_command() {
    let page = String::from_utf8(generated().remove(0).1).unwrap();
    for command in ["validate", "render", "run", "status", "plan", "sync"] {
        assert!(page.contains(command), "{command} is not in ramlet.1");
    }
}
