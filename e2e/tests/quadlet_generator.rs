//! Every unit ramlet renders goes through the real Quadlet generator (`quadlet -dryrun`, system
//! and `-user`): it must exit 0, warn about nothing, and the generated `ExecStart=`, split with
//! systemd's rules, must hold exactly the podman arguments the spec asked for.
//!
//! Needs `/usr/libexec/podman/quadlet` 5.4.2: `scripts/install-quadlet` (run by `scripts/test`).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use ramlet::layout::{self, Layout, Scope};
use ramlet::units;
use ramlet_quadlet::PodmanVersion;
use ramlet_quadlet::value::{split_words, unescape};
use ramlet_specs::model::{Container, Rotation, SelinuxLabel};

const QUADLET: &str = "/usr/libexec/podman/quadlet";

fn repo(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(path)
}

fn spec_dirs() -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(repo("examples"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    dirs.push(repo("agent/tests/fixtures/hostile"));
    dirs.sort();
    dirs
}

/// The generated services by name, and the generator's stderr.
fn generate(dir: &Path, user: bool) -> (BTreeMap<String, String>, String) {
    let mut command = Command::new(QUADLET);
    command.arg("-dryrun").env("QUADLET_UNIT_DIRS", dir);
    if user {
        command.arg("-user");
    }
    let output = command
        .output()
        .unwrap_or_else(|e| panic!("cannot run {QUADLET} (run scripts/install-quadlet): {e}"));
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert!(output.status.success(), "quadlet failed: {stderr}");
    let stdout = String::from_utf8(output.stdout).unwrap();
    let mut services = BTreeMap::new();
    let mut current: Option<(String, String)> = None;
    for line in stdout.lines() {
        if let Some(name) = line.strip_prefix("---").and_then(|l| l.strip_suffix("---")) {
            services.extend(current.take());
            current = Some((name.to_owned(), String::new()));
        } else if let Some((_, text)) = &mut current {
            text.push_str(line);
            text.push('\n');
        }
    }
    services.extend(current);
    (services, stderr)
}

/// `ExecStart=` split and unescaped the way systemd runs it: specifiers (`%%`), then words
/// (quotes, C escapes), then `$$`.
fn exec_start(service: &str) -> Vec<String> {
    let line = service
        .lines()
        .find_map(|l| l.strip_prefix("ExecStart="))
        .expect("an ExecStart= line");
    split_words(&expand_specifiers(line))
        .unwrap()
        .iter()
        .map(|w| expand_variables(w))
        .collect()
}

/// systemd's `$` handling in a command's word: `$$` is `$`, and `$NAME` or `${NAME}` would be
/// replaced by a variable, which ramlet must never let happen.
fn expand_variables(word: &str) -> String {
    let mut out = String::new();
    let mut chars = word.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '$' {
            match chars.peek() {
                Some('$') => {
                    chars.next();
                }
                Some(n) if n.is_ascii_alphabetic() || *n == '_' || *n == '{' => {
                    panic!("unescaped variable in {word:?}")
                }
                _ => {}
            }
        }
        out.push(c);
    }
    out
}

/// systemd's specifier expansion, for the specifiers Quadlet itself writes; any other `%x`
/// would be a specifier ramlet failed to escape.
fn expand_specifiers(line: &str) -> String {
    let mut out = String::new();
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('%') => out.push('%'),
            Some('N') => out.push_str("<unit>"),
            Some('n') => out.push_str("<unit>.service"),
            Some('t') => out.push_str("<runtime>"),
            other => panic!("unescaped specifier %{other:?} in {line}"),
        }
    }
    out
}

/// The podman arguments the spec asks for, as (flag, value) pairs.
fn expected_pairs(container: &Container, layout: &Layout) -> Vec<(String, String)> {
    let mut pairs = vec![("--name".to_owned(), units::container_name(container))];
    for volume in &container.volumes {
        let mut options = Vec::new();
        match volume.selinux {
            SelinuxLabel::Private => options.push("Z"),
            SelinuxLabel::Shared => options.push("z"),
            SelinuxLabel::None => {}
        }
        if volume.read_only {
            options.push("ro");
        }
        let source = layout
            .volume_dir(container, volume.name.as_str())
            .display()
            .to_string();
        let opts = if options.is_empty() {
            String::new()
        } else {
            format!(":{}", options.join(","))
        };
        pairs.push(("-v".into(), format!("{source}:{}{opts}", volume.mount_path)));
    }
    for (k, v) in &container.environment {
        pairs.push(("--env".into(), format!("{k}={v}")));
    }
    for port in &container.publish_ports {
        pairs.push(("--publish".into(), port.clone()));
    }
    if let Some(network) = &container.network {
        pairs.push(("--network".into(), network.clone()));
    }
    if let Some(user) = &container.user {
        pairs.push(("--user".into(), user.clone()));
    }
    pairs.push((
        "--label".into(),
        format!("ramlet.dev/spec={}", container.name),
    ));
    for cmd in container
        .quadlet
        .get("Container")
        .and_then(|c| c.get("HealthCmd"))
        .into_iter()
        .flatten()
    {
        pairs.push(("--health-cmd".into(), cmd.clone()));
    }
    pairs
}

#[test]
fn the_real_generator_accepts_every_rendered_unit_and_runs_what_the_spec_asked() {
    let target = PodmanVersion::V5_4;
    let mut checked = 0;
    for scope in [Scope::System, Scope::User] {
        for dir in spec_dirs() {
            let layout = Layout::defaults(scope, 1000, Some(Path::new("/run/user/1000")));
            let catalog =
                ramlet_specs::load_dir_with(&dir, &ramlet_e2e::example_policy(&dir)).unwrap();
            assert!(
                catalog.errors.is_empty(),
                "{}: {:?}",
                dir.display(),
                catalog.errors
            );
            let units_dir = std::env::temp_dir()
                .join(format!("ramlet-quadlet-{}-{checked}", std::process::id()));
            std::fs::create_dir_all(&units_dir).unwrap();
            for container in catalog.containers.values() {
                let text = units::unit(container, &layout, target)
                    .render(target)
                    .unwrap();
                std::fs::write(units_dir.join(layout::unit_file_name(container)), text).unwrap();
            }
            let (services, stderr) = generate(&units_dir, scope == Scope::User);
            for line in stderr.lines() {
                assert!(
                    line.contains("Loading source unit file"),
                    "{}: generator said: {line}",
                    dir.display()
                );
            }
            for container in catalog.containers.values() {
                let service = services
                    .get(&format!("{}.service", container.name))
                    .unwrap_or_else(|| {
                        panic!(
                            "{}: no service for {} in {services:?}",
                            dir.display(),
                            container.name
                        )
                    });
                let args = exec_start(service);
                let image = args
                    .iter()
                    .position(|a| *a == container.image)
                    .expect("the image in ExecStart");
                let tail = &args[image + 1..];
                if let Some(entrypoint) = &container.entrypoint {
                    assert!(
                        args[..image]
                            .iter()
                            .any(|a| a.ends_with(entrypoint.as_str())),
                        "{args:?}"
                    );
                }
                assert_eq!(
                    tail, container.exec,
                    "{}: arguments after the image",
                    container.name
                );
                for (flag, value) in expected_pairs(container, &layout) {
                    let found = args[..image]
                        .windows(2)
                        .any(|w| w[0] == flag && w[1] == value);
                    assert!(
                        found,
                        "{}: `{flag} {value}` missing from {args:?}",
                        container.name
                    );
                }
                if let Rotation::Reload { signal } = &container.rotation {
                    let reload = service
                        .lines()
                        .find_map(|l| l.strip_prefix("ExecReload="))
                        .expect("ExecReload=");
                    assert_eq!(
                        split_words(reload).unwrap(),
                        [
                            "/usr/bin/podman",
                            "kill",
                            "--signal",
                            signal.as_str(),
                            &units::container_name(container)
                        ]
                    );
                }
                checked += 1;
            }
            let _ = std::fs::remove_dir_all(&units_dir);
        }
    }
    assert!(checked >= 8, "checked {checked} units");
}

#[test]
fn a_description_with_specifiers_reaches_systemd_literally() {
    let dir = repo("agent/tests/fixtures/hostile");
    let layout = Layout::defaults(Scope::System, 0, None);
    let catalog = ramlet_specs::load_dir(&dir).unwrap();
    let container = catalog.containers.values().next().unwrap();
    let units_dir =
        std::env::temp_dir().join(format!("ramlet-quadlet-desc-{}", std::process::id()));
    std::fs::create_dir_all(&units_dir).unwrap();
    let text = units::unit(container, &layout, PodmanVersion::V5_4)
        .render(PodmanVersion::V5_4)
        .unwrap();
    std::fs::write(units_dir.join("hostile.container"), text).unwrap();
    let (services, _) = generate(&units_dir, false);
    let service = &services["hostile.service"];
    let description = service
        .lines()
        .find_map(|l| l.strip_prefix("Description="))
        .unwrap();
    assert_eq!(
        unescape(description, false),
        r#"100% "hostile" $HOME \ unit ☃"#
    );
    let _ = std::fs::remove_dir_all(units_dir);
}
