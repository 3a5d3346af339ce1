//! `ramlet validate` as a GitOps repo's CI runs it: exit codes, output formats, host labels.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn ramlet(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_ramlet"))
        .args(args)
        .output()
        .unwrap()
}

fn repo(path: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join(path)
        .display()
        .to_string()
}

fn stdout(output: &Output) -> String {
    String::from_utf8(output.stdout.clone()).unwrap()
}

#[test]
fn every_example_validates_with_exit_0() {
    let examples = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples");
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(examples)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    dirs.sort();
    for dir in dirs {
        // An example that needs the host's consent carries it (`config.yaml.host`).
        let config = dir.join("config.yaml.host");
        let output = if config.exists() {
            ramlet(&[
                "validate",
                "--config",
                &config.display().to_string(),
                &dir.display().to_string(),
            ])
        } else {
            ramlet(&["validate", &dir.display().to_string()])
        };
        assert_eq!(
            output.status.code(),
            Some(0),
            "{}: {}",
            dir.display(),
            stdout(&output)
        );
        assert!(
            stdout(&output).ends_with(": valid\n"),
            "{}",
            stdout(&output)
        );
    }
}

#[test]
fn an_invalid_directory_exits_1_and_names_file_line_and_field() {
    let output = ramlet(&["validate", &repo("specs/tests/fixtures/bad/mode-decimal")]);
    assert_eq!(output.status.code(), Some(1));
    let text = stdout(&output);
    assert!(
        text.contains("mode-decimal/spec.yaml:18:17: spec.volumes[0].files[0].mode: "),
        "{text}"
    );
    assert!(text.contains("write `0400`"), "{text}");
    assert!(text.ends_with("1 error\n"), "{text}");
}

#[test]
fn json_output_is_machine_readable() {
    let output = ramlet(&[
        "validate",
        "--format",
        "json",
        &repo("specs/tests/fixtures/bad/one-bad-document-does-not-hide-another"),
    ]);
    assert_eq!(output.status.code(), Some(1));
    let report: serde_json::Value = serde_json::from_str(&stdout(&output)).unwrap();
    assert_eq!(report["valid"], false);
    assert_eq!(report["containers"], serde_json::json!(["good"]));
    let errors = report["errors"].as_array().unwrap();
    assert_eq!(errors.len(), 2);
    assert_eq!(errors[0]["kind"], "invalid-value");
    assert_eq!(errors[0]["line"], 12);
    assert_eq!(errors[0]["field"], "spec.image");
    assert_eq!(errors[1]["kind"], "invalid-path");
}

#[test]
fn host_labels_say_what_the_host_would_run() {
    let dir = repo("examples/app-db-aws");
    let output = ramlet(&["validate", &dir, "--host-labels", "role=canary,zone=eu-1"]);
    assert_eq!(output.status.code(), Some(0));
    assert!(
        stdout(&output).contains("host [role=canary,zone=eu-1] runs: api\n"),
        "{}",
        stdout(&output)
    );
    let output = ramlet(&[
        "validate",
        &dir,
        "--host-labels",
        "role=app,maintenance=true",
        "--format",
        "json",
    ]);
    let report: serde_json::Value = serde_json::from_str(&stdout(&output)).unwrap();
    assert_eq!(report["host"]["selected"], serde_json::json!([]));
    assert_eq!(report["host"]["skipped"], serde_json::json!(["api"]));
}

/// `--config` checks the specs against a host's policy, as the agent there would load them.
#[test]
fn a_hosts_policy_is_checked_with_config() {
    let config = std::env::temp_dir().join(format!("ramlet-policy-{}.yaml", std::process::id()));
    std::fs::write(
        &config,
        "policy:\n  storeDirectories: [/srv/secrets]\n  forbiddenKeys: [AddCapability]\n",
    )
    .unwrap();
    let dir = repo("examples/local-file");
    assert_eq!(ramlet(&["validate", &dir]).status.code(), Some(0));
    let output = ramlet(&["validate", &dir, "--config", config.to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(1));
    assert!(
        stdout(&output).contains("ramlet.yaml:11:")
            && stdout(&output).contains("/etc/ramlet/secrets is not allowed on this host")
            && stdout(&output).contains("[policy]"),
        "{}",
        stdout(&output)
    );
    std::fs::write(&config, "policy:\n  storeDirectorys: [/srv]\n").unwrap();
    let output = ramlet(&["validate", &dir, "--config", config.to_str().unwrap()]);
    assert_eq!(
        output.status.code(),
        Some(64),
        "a bad config is a usage error"
    );
    let _ = std::fs::remove_file(config);
}

#[test]
fn usage_errors_exit_64() {
    for args in [
        vec!["validate"],
        vec!["validate", "/nonexistent/ramlet-specs"],
        vec!["validate", ".", "--format", "yaml"],
        vec!["validate", ".", "--host-labels", "not a label"],
        vec!["frobnicate"],
    ] {
        let output = ramlet(&args);
        assert_eq!(
            output.status.code(),
            Some(64),
            "{args:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        assert!(!output.stderr.is_empty(), "{args:?} printed no reason");
    }
}

#[test]
fn help_exits_0() {
    let output = ramlet(&["validate", "--help"]);
    assert_eq!(output.status.code(), Some(0));
    assert!(stdout(&output).contains("--host-labels"));
}

/// Issue 19, finding 3: `ramlet validate` hung for good on a `*.yaml` FIFO (or a link to one)
/// in the spec directory. It now returns at once, exit 1, naming each such file.
#[test]
fn regression_19_validate_returns_on_a_fifo_in_the_spec_directory() {
    let dir = std::env::temp_dir().join(format!("ramlet-validate-fifo-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let made = Command::new("mkfifo")
        .arg(dir.join("pipe.yaml"))
        .status()
        .unwrap();
    assert!(made.success());
    std::os::unix::fs::symlink(dir.join("pipe.yaml"), dir.join("link.yaml")).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_ramlet"))
        .args(["validate", &dir.display().to_string()])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while child.try_wait().unwrap().is_none() {
        if std::time::Instant::now() > deadline {
            child.kill().unwrap();
            panic!("ramlet validate blocked on a FIFO");
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let output = child.wait_with_output().unwrap();
    let text = stdout(&output);
    assert_eq!(output.status.code(), Some(1), "{text}");
    assert!(
        text.contains("pipe.yaml")
            && text.contains("link.yaml")
            && text.contains("not a regular file"),
        "{text}"
    );
    let _ = std::fs::remove_dir_all(dir);
}
