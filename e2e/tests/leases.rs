//! Leased database credentials on a real host (the sandbox's systemd user manager, Quadlet and
//! rootless Podman) from a real OpenBao server's database engine (`bao server -dev`) creating
//! users in a real PostgreSQL: a container logs in with the user ramlet leased (a connection
//! URL rendered from it into a noswap tmpfs); `ramlet plan` creates nothing; a ramlet killed by `SIGKILL`
//! and a new one create no new user and restart nothing (the lease is adopted from the kernel
//! keyring); before the lease's maximum TTL a new user is created, the container restarted with
//! it behind its health check, and the old user revoked (it can no longer log in) well before
//! its lease would have ended; with the server out of reach the container is stopped before
//! its lease ends (`SecretExpiring`) and started with a new user once the server is back;
//! removing the spec revokes the last lease.
//!
//! `#[ignore]`d in a plain `cargo test`; `scripts/test` runs it in the sandbox.

use std::time::{Duration, Instant};

mod common;

use common::*;
use ramlet_e2e::postgres::Postgres;

/// The role's TTL and maximum TTL, in seconds: renewed at about 30 s and 60 s, replaced when
/// 12-17 s of the 90 are left.
const TTL: u64 = 45;
const MAX_TTL: u64 = 90;

/// The host's policy (the server named, the token's folder listed, host networking allowed so
/// the container reaches PostgreSQL on loopback) and the `db` store: a token that may only
/// lease `app` credentials and renew and revoke leases.
fn database_store(agent: &Agent, bao: &ramlet_e2e::openbao::Bao, postgres: &Postgres) -> String {
    let keys = openbao_policy_with(agent, "  allowHostNetwork: true\n");
    bao.database_role(
        "db",
        "app",
        postgres,
        &format!("{TTL}s"),
        &format!("{MAX_TTL}s"),
    );
    bao.leaser_policy("leaser", "db", "app");
    let token = keys.join("bao-token");
    ramlet_e2e::openbao::write_private(&token, &bao.token("leaser", "1h"));
    agent.chown();
    format!(
        "apiVersion: ramlet.dev/v1alpha1\nkind: SecretStore\nmetadata: {{name: db}}\nspec:\n  refreshInterval: 10s\n  openbao:\n    address: \"{}\"\n    mount: db\n    auth:\n      token: {{file: {}}}\n    database:\n      credentials:\n        app: {{role: app}}\n",
        bao.address(),
        token.display()
    )
}

/// A psql container that logs in every second with the URL in its volume and prints `LOGIN
/// <user>` (or `REFUSED`), its rotations gated on a login.
fn client(name: &str, port: u16) -> String {
    format!(
        "apiVersion: ramlet.dev/v1alpha1\nkind: Container\nmetadata: {{name: {name}}}\nspec:\n  image: localhost/psql:latest\n  network: host\n  exec:\n    - sh\n    - -c\n    - >-\n      trap 'exit 0' TERM;\n      echo \"MOUNT $(grep ' /run/db ' /proc/self/mountinfo)\";\n      while true; do\n      if who=$(psql -X -w -tAc 'select current_user' \"$(cat /run/db/url)\" 2>&1); then echo \"LOGIN $who\"; else echo \"REFUSED $who\"; fi;\n      sleep 1 & wait $!;\n      done\n  volumes:\n    - name: db\n      mountPath: /run/db\n      sizeLimit: 64Ki\n      files:\n        - path: url\n          mode: 0444\n          template:\n            inputs:\n              db: {{store: db, name: app}}\n            text: \"postgresql://{{{{ db.username }}}}:{{{{ db.password | urlencode }}}}@127.0.0.1:{port}/postgres?connect_timeout=5\"\n  rotation:\n    strategy: restart\n    healthCheck:\n      command: [sh, -c, \"psql -X -w -tAc 'select 1' \\\"$(cat /run/db/url)\\\"\"]\n      deadline: 30s\n      interval: 1s\n"
    )
}

/// The user `name`'s container last logged in as.
fn logged_in(scope: &Scope, name: &str) -> Option<String> {
    let logs = scope.logs(name);
    let run = logs.rsplit("MOUNT ").next()?;
    let last = run
        .lines()
        .rev()
        .find(|l| l.starts_with("LOGIN ") || l.starts_with("REFUSED "))?;
    last.strip_prefix("LOGIN ").map(str::to_owned)
}

/// The user and password in `name`'s volume (read from the RAM volume, as root).
fn login_in_volume(scope: &Scope, name: &str) -> (String, String) {
    let url = std::fs::read_to_string(scope.volume_root().join(name).join("db/url")).unwrap();
    let rest = url.strip_prefix("postgresql://").unwrap();
    let (user, rest) = rest.split_once(':').unwrap();
    let (password, _) = rest.split_once('@').unwrap();
    // OpenBao's passwords are letters, digits and `-`: nothing `urlencode` changed.
    (user.to_owned(), password.to_owned())
}

/// The `db/app` entry of spec `name` in status: its version, the lease ID.
fn lease_in_status(agent: &Agent, name: &str) -> String {
    agent.status()["specs"][name]["secrets"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|s| s["store"] == "db" && s["name"] == "app")
        .and_then(|s| s["version"].as_str())
        .unwrap_or_default()
        .to_owned()
}

#[test]
#[ignore = "needs the e2e sandbox (scripts/test runs it)"]
#[allow(clippy::too_many_lines)] // one story: lease, plan, kill, rotate, revoke, expire, remove
fn user_scope_a_leased_database_user_is_adopted_rotated_before_its_end_and_revoked() {
    let scope = Scope::user();
    let mut agent = Agent::new(scope.clone(), "leases");
    let postgres = Postgres::start("leases");
    let bao = ramlet_e2e::openbao::Bao::start(&agent.dir.join("bao"));
    agent.spec("db", &database_store(&agent, &bao, &postgres));
    let name = "e2e-lease-app";
    agent.spec("app", &client(name, postgres.port));
    agent.start();
    let user = agent.wait("the first login", Duration::from_mins(1), || {
        std::thread::sleep(Duration::from_millis(500));
        (spec_field(&agent, name, "phase") == "Ready")
            .then(|| logged_in(&scope, name))
            .flatten()
    });
    let created = Instant::now();
    assert!(user.starts_with("v-"), "{user}");
    let (volume_user, password) = login_in_volume(&scope, name);
    assert_eq!(volume_user, user);
    let lease = lease_in_status(&agent, name);
    assert!(lease.starts_with("db/creds/app/"), "{lease}");
    assert_eq!(bao.leases("db/creds/app/"), [lease.as_str()]);
    let mount = mount_line(&scope.logs(name)).unwrap();
    assert!(
        mount.contains(" - tmpfs ") && mount.contains("noswap"),
        "{mount}"
    );
    let unit = std::fs::read_to_string(scope.unit_dir().join(format!("{name}.container"))).unwrap();
    assert!(!unit.contains(&password), "{unit}");

    // `ramlet plan` creates no credentials, and says so.
    let plan = agent.command("plan").output().unwrap();
    let said = String::from_utf8_lossy(&plan.stdout);
    assert!(said.contains("never by `ramlet plan`"), "{said}");
    assert_eq!(bao.requests("db/creds/app"), 1);

    // SIGKILL of ramlet (by its pid file: the test's child is runuser) and a new one: the lease
    // is adopted from the keyring, no new user, no restart.
    let running = invocations(&scope, &[name.to_owned()]);
    agent.kill();
    agent.restart(|| {});
    agent.wait(
        "the adopted lease in status",
        Duration::from_secs(30),
        || {
            (spec_field(&agent, name, "phase") == "Ready" && lease_in_status(&agent, name) == lease)
                .then_some(())
        },
    );
    assert!(agent.log().contains("lease adopted"), "{}", agent.log());
    assert_eq!(
        bao.requests("db/creds/app"),
        1,
        "new credentials after a restart"
    );
    assert_eq!(invocations(&scope, &[name.to_owned()]), running);

    // Before the maximum TTL: a new user, the container restarted with it (its check passed),
    // then the old user revoked, well before its lease would have ended.
    let next = agent.wait(
        "a login as the next user",
        Duration::from_secs(MAX_TTL),
        || {
            std::thread::sleep(Duration::from_secs(1));
            logged_in(&scope, name).filter(|u| *u != user)
        },
    );
    assert!(
        created.elapsed() < Duration::from_secs(MAX_TTL),
        "the next user came after the first one's end"
    );
    assert!(bao.requests("sys/leases/renew") >= 2, "never renewed");
    agent.wait("the old user revoked", Duration::from_secs(30), || {
        (!bao.leases("db/creds/app/").contains(&lease)).then_some(())
    });
    let revoked_at = created.elapsed();
    assert!(
        revoked_at < Duration::from_secs(MAX_TTL - 3),
        "revoked at {revoked_at:?}, not before the lease's own end"
    );
    let refused = postgres.login(&user, &password).unwrap_err();
    assert!(refused.contains("authentication failed"), "{refused}");
    assert!(!postgres.roles("v-").contains(&user));
    let next_lease = lease_in_status(&agent, name);
    assert_ne!(next_lease, lease);
    assert_eq!(bao.leases("db/creds/app/"), [next_lease.as_str()]);
    let (next_user, next_password) = login_in_volume(&scope, name);
    assert_eq!(next_user, next);
    assert_eq!(
        postgres.login(&next_user, &next_password).unwrap(),
        next_user
    );

    // The server out of reach (frozen): the lease cannot be renewed, so the container is
    // stopped shortly before it ends, with the reason, never run on a dropped user; once the
    // server answers again, a new user comes and the container starts with it.
    bao.server.freeze(true);
    let frozen = Instant::now();
    agent.wait(
        "the container stopped before its lease ends",
        Duration::from_secs(TTL + 15),
        || {
            std::thread::sleep(Duration::from_millis(500));
            (spec_field(&agent, name, "reason") == "SecretExpiring"
                && scope.active(name) != "active")
                .then_some(())
        },
    );
    let message = spec_field(&agent, name, "message");
    assert!(
        message.contains("db/app") && message.contains("onExpiry"),
        "{message}"
    );
    assert!(
        frozen.elapsed() < Duration::from_secs(TTL),
        "stopped {:?} after the server froze: past the lease's end",
        frozen.elapsed()
    );
    bao.server.freeze(false);
    let again = agent.wait(
        "a login after the server came back",
        Duration::from_mins(1),
        || {
            std::thread::sleep(Duration::from_secs(1));
            (scope.active(name) == "active")
                .then(|| logged_in(&scope, name))
                .flatten()
                .filter(|u| *u != next)
        },
    );
    let (next_user, next_password) = login_in_volume(&scope, name);
    assert_eq!(next_user, again);

    // The spec removed: its container goes, and so does its lease.
    agent.remove_spec("app");
    agent.wait("the last lease revoked", Duration::from_mins(1), || {
        bao.leases("db/creds/app/").is_empty().then_some(())
    });
    assert!(postgres.login(&next_user, &next_password).is_err());
    agent.stop();
}
