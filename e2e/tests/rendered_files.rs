//! Templates on a real host (the sandbox's systemd user manager, Quadlet and rootless Podman):
//! a container reads its `app.env`, rendered from a JSON secret and a plain one into a noswap
//! tmpfs; rotating one input restarts exactly that file's consumers, two inputs rotated
//! together restart it once; a key the JSON lacks leaves the spec Degraded alone with its last
//! good file; `ramlet plan` names the inputs that moved, never a value; and a health-gated
//! rotation whose rendering fails its check gets the previous rendering back.
//!
//! `#[ignore]`d in a plain `cargo test`; `scripts/test` runs it in the sandbox.

use std::time::{Duration, Instant};

mod common;

use common::*;

/// A busybox container that prints its mount and each line of `/run/s/app.env` (`ENV ...`),
/// then `READ`, then waits. Its `app.env` is rendered from `inputs` (YAML flow mapping) by
/// `text` (a YAML double-quoted string's content).
fn templated(name: &str, inputs: &str, text: &str, rotation: &str) -> String {
    format!(
        "apiVersion: ramlet.dev/v1alpha1\nkind: Container\nmetadata: {{name: {name}}}\nspec:\n  image: localhost/busybox:latest\n  network: none\n  exec:\n    - sh\n    - -c\n    - >-\n      trap 'exit 0' TERM;\n      echo \"MOUNT $(grep ' /run/s ' /proc/self/mountinfo)\";\n      echo \"MODE $(stat -L -c %a /run/s/app.env)\";\n      while read -r l; do echo \"ENV $l\"; done < /run/s/app.env;\n      echo READ;\n      while true; do sleep 1 & wait $!; done\n  volumes:\n    - name: s\n      mountPath: /run/s\n      sizeLimit: 64Ki\n      files:\n        - path: app.env\n          mode: 0440\n          template:\n            inputs: {inputs}\n            text: \"{text}\"\n  rotation:\n{rotation}"
    )
}

const APP_TEXT: &str = "DATABASE_URL=postgres://{{ db.user }}:{{ db.password | urlencode }}@db:5432/app\\nAPI_TOKEN={{ api }}\\n";

/// The `ENV` lines `name`'s container printed in its last run.
fn last_env(scope: &Scope, name: &str) -> Vec<String> {
    let logs = scope.logs(name);
    let runs: Vec<&str> = logs.split("MOUNT ").collect();
    runs.last()
        .unwrap_or(&"")
        .lines()
        .filter_map(|l| l.strip_prefix("ENV "))
        .map(str::to_owned)
        .collect()
}

fn db(user: &str, password: &str) -> String {
    format!(r#"{{"user": "{user}", "password": "{password}", "host": "db"}}"#)
}

#[test]
#[ignore = "needs the e2e sandbox (scripts/test runs it)"]
#[allow(clippy::too_many_lines)] // one story, step by step
fn user_scope_a_template_renders_into_ram_and_rotates_exactly_its_consumers() {
    let scope = Scope::user();
    let mut agent = Agent::new(scope.clone(), "templates");
    agent.secret("db", &db("app", "pa/ss:1"));
    agent.secret("api", "tok-1");
    agent.secret("other", "o-1");
    let restart = "    strategy: restart\n";
    agent.spec(
        "app",
        &templated(
            "e2e-tpl-app",
            "{db: {store: local, name: db}, api: {store: local, name: api}}",
            APP_TEXT,
            restart,
        ),
    );
    agent.spec(
        "other",
        &templated(
            "e2e-tpl-other",
            "{o: {store: local, name: other}}",
            "OTHER={{ o }}\\n",
            restart,
        ),
    );
    agent.start();
    let names = ["e2e-tpl-app".to_owned(), "e2e-tpl-other".to_owned()];
    let ready = |agent: &Agent| {
        names
            .iter()
            .all(|n| spec_field(agent, n, "phase") == "Ready" && scope.active(n) == "active")
    };
    agent.wait("both read their files", Duration::from_mins(1), || {
        (ready(&agent) && scope.logs("e2e-tpl-other").contains("READ")).then_some(())
    });
    assert_eq!(
        last_env(&scope, "e2e-tpl-app"),
        [
            "DATABASE_URL=postgres://app:pa%2Fss%3A1@db:5432/app",
            "API_TOKEN=tok-1"
        ]
    );
    let logs = scope.logs("e2e-tpl-app");
    let mount = mount_line(&logs).unwrap();
    assert!(
        mount.contains(" - tmpfs ") && mount.contains("noswap"),
        "{mount}"
    );
    assert!(logs.contains("MODE 440"), "{logs}");
    let unit = std::fs::read_to_string(scope.unit_dir().join("e2e-tpl-app.container")).unwrap();
    assert!(!unit.contains("pa/ss") && !unit.contains("tok-1"), "{unit}");
    // The status lists each input's version, as for a plain secret.
    let secrets = agent.status()["specs"]["e2e-tpl-app"]["secrets"].clone();
    let ids: Vec<String> = secrets
        .as_array()
        .unwrap()
        .iter()
        .map(|s| format!("{}/{}", s["store"], s["name"]).replace('"', ""))
        .collect();
    assert_eq!(ids, ["local/api", "local/db"], "{secrets}");

    // One input rotates: the file is rendered again, and only its consumer restarts.
    let before = invocations(&scope, &names);
    let sampler = Invocations::watch(&scope, &names, &before);
    let written = Instant::now();
    agent.secret("db", &db("app", "pa/ss:2"));
    agent.wait("the new rendering", Duration::from_mins(1), || {
        last_env(&scope, "e2e-tpl-app")
            .first()
            .is_some_and(|l| l.ends_with("pa%2Fss%3A2@db:5432/app"))
            .then_some(())
    });
    let one_input = written.elapsed();

    // Two inputs rotate together: one restart.
    std::thread::sleep(Duration::from_secs(2));
    let written = Instant::now();
    agent.secret("db", &db("app2", "pa/ss:3"));
    agent.secret("api", "tok-2");
    agent.wait("both inputs rendered", Duration::from_mins(1), || {
        (last_env(&scope, "e2e-tpl-app")
            == [
                "DATABASE_URL=postgres://app2:pa%2Fss%3A3@db:5432/app",
                "API_TOKEN=tok-2",
            ])
        .then_some(())
    });
    let two_inputs = written.elapsed();
    agent.wait("Ready again", Duration::from_secs(30), || {
        ready(&agent).then_some(())
    });
    std::thread::sleep(Duration::from_secs(2));
    let seen = sampler.finish();
    assert_eq!(
        seen["e2e-tpl-app"].len(),
        3,
        "the first run, one restart for db, one for db and api together: {seen:?}"
    );
    assert_eq!(
        seen["e2e-tpl-other"].len(),
        1,
        "the other template's consumer never restarted: {seen:?}"
    );

    // A key the JSON lacks: the spec is Degraded alone, and keeps running its last good file.
    let running = scope.invocation("e2e-tpl-app");
    agent.secret("db", r#"{"user": "app2", "pass": "pa/ss:4"}"#);
    agent.wait("Degraded", Duration::from_mins(1), || {
        (spec_field(&agent, "e2e-tpl-app", "phase") == "Degraded").then_some(())
    });
    let message = spec_field(&agent, "e2e-tpl-app", "message");
    assert_eq!(
        spec_field(&agent, "e2e-tpl-app", "reason"),
        "SecretUnavailable"
    );
    assert!(
        message.contains("app.env: line 1: input db has no key \"password\""),
        "{message}"
    );
    assert!(!message.contains("pa/ss"), "{message}");
    assert_eq!(spec_field(&agent, "e2e-tpl-other", "phase"), "Ready");
    assert_eq!(scope.invocation("e2e-tpl-app"), running, "not restarted");
    let file = scope.volume_root().join("e2e-tpl-app/s/app.env");
    let on_disk = std::fs::read_to_string(&file).unwrap();
    assert!(on_disk.contains("pa%2Fss%3A3"), "the last good file stays");

    // `ramlet plan` (the agent stopped) says which input moved and which inputs feed the
    // file, never a value; the unit it would write is the one it wrote.
    agent.stop();
    agent.secret("db", &db("app2", "pa/ss:5"));
    let plan = agent.command("plan").output().unwrap();
    let out = String::from_utf8_lossy(&plan.stdout).into_owned();
    assert_eq!(plan.status.code(), Some(2), "{out}");
    assert!(
        out.contains("template s/app.env: rendered again, its input moved: db ")
            && out.contains("(inputs: api (local/api), db (local/db))"),
        "{out}"
    );
    assert!(
        !out.contains("pa/ss") && !out.contains("pa%2Fss") && !out.contains("tok-2"),
        "{out}"
    );
    let render = scope
        .command(ramlet_binary().to_str().unwrap())
        .args(["render", "--scope", "user", "--volume-root"])
        .arg(scope.volume_root())
        .arg(agent.dir.join("specs/app.yaml"))
        .output()
        .unwrap();
    assert!(render.status.success(), "{render:?}");
    let rendered = String::from_utf8_lossy(&render.stdout);
    let volume = unit.lines().find(|l| l.starts_with("Volume=")).unwrap();
    assert!(
        rendered.contains(volume) && !rendered.contains("pa/ss") && !rendered.contains("{{"),
        "ramlet render shows the unit's volume, and nothing of the template: {rendered}"
    );
    agent.start();
    agent.wait(
        "back to Ready on the fixed input",
        Duration::from_mins(1),
        || {
            (spec_field(&agent, "e2e-tpl-app", "phase") == "Ready"
                && last_env(&scope, "e2e-tpl-app")
                    .first()
                    .is_some_and(|l| l.contains("pa%2Fss%3A5")))
            .then_some(())
        },
    );
    println!(
        "template rotation: one input -> the new rendering in the container after {} ms; two inputs together after {} ms (one restart)",
        one_input.as_millis(),
        two_inputs.as_millis()
    );
}

#[test]
#[ignore = "needs the e2e sandbox (scripts/test runs it)"]
fn user_scope_a_template_rotation_that_fails_its_check_gets_the_previous_rendering_back() {
    let scope = Scope::user();
    let mut agent = Agent::new(scope.clone(), "template-gate");
    agent.secret("mode", "good");
    agent.secret("pw", "pw-1");
    // Healthy while the rendered file does not say MODE=bad.
    let gated = "    strategy: restart\n    healthCheck:\n      command: [sh, -c, '! grep -q MODE=bad /run/s/app.env']\n      deadline: 8s\n      interval: 1s\n";
    agent.spec(
        "gated",
        &templated(
            "e2e-tpl-gated",
            "{mode: {store: local, name: mode}, pw: {store: local, name: pw}}",
            "MODE={{ mode }}\\nPW={{ pw }}\\n",
            gated,
        ),
    );
    agent.start();
    agent.wait("running on good", Duration::from_mins(1), || {
        (spec_field(&agent, "e2e-tpl-gated", "phase") == "Ready"
            && last_env(&scope, "e2e-tpl-gated") == ["MODE=good", "PW=pw-1"])
        .then_some(())
    });
    let written = Instant::now();
    agent.secret("mode", "bad");
    agent.wait("the bad rendering", Duration::from_secs(30), || {
        (last_env(&scope, "e2e-tpl-gated") == ["MODE=bad", "PW=pw-1"]).then_some(())
    });
    agent.wait("rolled back", Duration::from_mins(1), || {
        (spec_field(&agent, "e2e-tpl-gated", "reason") == "RolledBack"
            && scope.active("e2e-tpl-gated") == "active"
            && last_env(&scope, "e2e-tpl-gated") == ["MODE=good", "PW=pw-1"])
        .then_some(())
    });
    let rolled_back = written.elapsed();
    let on_disk =
        std::fs::read_to_string(scope.volume_root().join("e2e-tpl-gated/s/app.env")).unwrap();
    assert_eq!(on_disk, "MODE=good\nPW=pw-1\n", "the previous rendering");
    // A good version of either input goes through.
    agent.secret("pw", "pw-2");
    agent.secret("mode", "good");
    agent.wait("the next good rendering", Duration::from_mins(1), || {
        (spec_field(&agent, "e2e-tpl-gated", "phase") == "Ready"
            && last_env(&scope, "e2e-tpl-gated") == ["MODE=good", "PW=pw-2"])
        .then_some(())
    });
    println!(
        "a template rendering that fails its health check: rolled back to the previous rendering {} ms after the bad input was written",
        rolled_back.as_millis()
    );
}
