//! `ramlet render PATH`: prints the units ramlet would write for a spec file or directory.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use ramlet_quadlet::PodmanVersion;
use ramlet_specs::load_dir;

use crate::layout::Layout;
use crate::units;

/// What `render` produced: the units, by path, and every error.
#[derive(Debug, Default)]
pub struct Rendered {
    /// Unit path to content.
    pub units: BTreeMap<PathBuf, String>,
    /// One line per spec error or unit that could not be rendered.
    pub errors: Vec<String>,
}

/// Renders the containers declared in `path` (a spec file, or a directory). For a file, the
/// stores come from the rest of its directory, as the agent would see them.
pub fn render(path: &Path, layout: &Layout, target: PodmanVersion) -> Result<Rendered, String> {
    if !path.exists() {
        return Err(format!("{} does not exist", path.display()));
    }
    let (dir, only) = if path.is_dir() {
        (path.to_owned(), None)
    } else {
        let dir = path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        (dir.to_owned(), Some(path.to_owned()))
    };
    let catalog = load_dir(&dir).map_err(|e| e.to_string())?;
    let mut rendered = Rendered::default();
    let in_scope = |file: &Path| only.as_ref().is_none_or(|o| same_file(o, file));
    rendered.errors.extend(
        catalog
            .errors
            .iter()
            .filter(|e| in_scope(&e.file))
            .map(ToString::to_string),
    );
    if only
        .as_ref()
        .is_some_and(|o| !catalog.files.iter().any(|f| same_file(o, f)))
    {
        return Err(format!(
            "{} is not a spec file (*.yaml or *.yml, not hidden)",
            path.display()
        ));
    }
    for container in catalog
        .containers
        .values()
        .filter(|c| in_scope(&c.origin.file))
    {
        match units::unit(container, layout, target).render(target) {
            Ok(text) => {
                rendered.units.insert(layout.unit_path(container), text);
            }
            Err(error) => rendered.errors.push(format!(
                "{}: Container {:?}: {error} [{}]",
                container.origin.file.display(),
                container.name.as_str(),
                error.kind()
            )),
        }
    }
    Ok(rendered)
}

fn same_file(a: &Path, b: &Path) -> bool {
    a == b || std::fs::canonicalize(a).ok() == std::fs::canonicalize(b).ok()
}

/// Runs `ramlet render`: units on stdout, errors on stderr; exit 0, 1 if anything failed, 64 for
/// bad usage.
#[must_use]
pub fn run(path: &Path, layout: &Layout, target: PodmanVersion) -> ExitCode {
    let rendered = match render(path, layout, target) {
        Ok(rendered) => rendered,
        Err(error) => {
            eprintln!("ramlet: {error}");
            return ExitCode::from(crate::EX_USAGE);
        }
    };
    let mut out = String::new();
    for (i, (path, text)) in rendered.units.iter().enumerate() {
        if i > 0 {
            out.push('\n');
        }
        let _ = writeln!(out, "==> {} <==\n{text}", path.display());
    }
    let _ = std::io::stdout().write_all(out.as_bytes());
    for error in &rendered.errors {
        eprintln!("{error}");
    }
    if rendered.errors.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
