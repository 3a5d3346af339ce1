//! Exact-string golden tests for the units ramlet renders: every example, both scopes, two
//! Podman targets, and a hostile spec full of characters systemd and Quadlet would change.
//!
//! `RAMLET_BLESS=1 cargo test -p ramlet --test render_golden` rewrites `tests/golden/`; review
//! the diff before committing it. The real generator reads the same units in `e2e/`.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use ramlet::cmd::render::render;
use ramlet::layout::{Layout, Scope};
use ramlet_quadlet::PodmanVersion;

fn repo(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(path)
}

fn check(name: &str, spec: &str, scope: Scope, target: PodmanVersion) {
    let layout = Layout::defaults(scope, 1000, Some(Path::new("/run/user/1000")));
    let rendered = render(&repo(spec), &layout, target).unwrap();
    assert!(rendered.errors.is_empty(), "{name}: {:?}", rendered.errors);
    let mut text = String::new();
    for (path, unit) in &rendered.units {
        let _ = write!(text, "==> {} <==\n{unit}", path.display());
    }
    let golden = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden")
        .join(format!("{name}.txt"));
    if std::env::var_os("RAMLET_BLESS").is_some() {
        std::fs::write(&golden, &text).unwrap();
    }
    let expected = std::fs::read_to_string(&golden).unwrap_or_default();
    assert!(
        text == expected,
        "{name} differs from {}:\n{text}",
        golden.display()
    );
}

#[test]
fn web_tls_gcp_system_scope() {
    check(
        "web-tls-gcp.system.5.4",
        "examples/web-tls-gcp",
        Scope::System,
        PodmanVersion::V5_4,
    );
}

#[test]
fn web_tls_gcp_reload_signal_on_podman_5_5() {
    check(
        "web-tls-gcp.system.5.5",
        "examples/web-tls-gcp",
        Scope::System,
        PodmanVersion::new(5, 5),
    );
}

#[test]
fn app_db_aws_user_scope() {
    check(
        "app-db-aws.user.5.4",
        "examples/app-db-aws",
        Scope::User,
        PodmanVersion::V5_4,
    );
}

#[test]
fn local_file_both_scopes() {
    check(
        "local-file.system.5.4",
        "examples/local-file",
        Scope::System,
        PodmanVersion::V5_4,
    );
    check(
        "local-file.user.4.4",
        "examples/local-file",
        Scope::User,
        PodmanVersion::V4_4,
    );
}

#[test]
fn hostile_values_are_escaped() {
    check(
        "hostile.system.5.4",
        "agent/tests/fixtures/hostile",
        Scope::System,
        PodmanVersion::V5_4,
    );
}

#[test]
fn a_key_newer_than_the_target_is_refused_not_skipped() {
    let layout = Layout::defaults(Scope::System, 0, None);
    // StopTimeout and the web example's keys are fine on 5.0, but `Entrypoint=` is 5.0 only.
    let dir = std::env::temp_dir().join(format!("ramlet-gate-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("a.yaml"),
        "apiVersion: ramlet.dev/v1alpha1\nkind: SecretStore\nmetadata: {name: s}\nspec: {file: {directory: /s}}\n---\n\
         apiVersion: ramlet.dev/v1alpha1\nkind: Container\nmetadata: {name: a}\nspec:\n  image: localhost/a\n  entrypoint: /init\n  quadlet: {Container: {StopSignal: SIGINT}}\n",
    )
    .unwrap();
    let old = render(&dir, &layout, PodmanVersion::new(4, 9)).unwrap();
    assert!(old.units.is_empty());
    assert_eq!(old.errors.len(), 1);
    assert!(old.errors[0].contains("[Container] Entrypoint= needs Podman 5.0.0; this host's Podman is 4.9.0 [unsupported-key]"), "{}", old.errors[0]);
    let newer = render(&dir, &layout, PodmanVersion::new(5, 1)).unwrap();
    assert!(
        newer.errors[0].contains("StopSignal= needs Podman 5.2.0"),
        "{:?}",
        newer.errors
    );
    let current = render(&dir, &layout, PodmanVersion::new(5, 2)).unwrap();
    assert!(current.errors.is_empty(), "{:?}", current.errors);
    let _ = std::fs::remove_dir_all(dir);
}
