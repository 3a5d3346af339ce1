//! The reconciler against in-memory fakes of systemd, the volumes and a secret provider: what
//! changes on the host for each event a user cares about. The real drivers are tested in `e2e/`.

mod fakes;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use fakes::World;
use ramlet::drivers::{ActiveState, Job, SystemdError};
use ramlet::providers::ProviderError;
use ramlet::providers::stores::{Due, Settle};
use ramlet::reconcile::Reconciler;
use ramlet::reconcile::plan::Action;
use ramlet::status::{Phase, Reason};

/// An administrator's policy refuses the spec that breaks it, naming file, line, field and the
/// policy; every other spec runs. A spec repository cannot lift it.
#[tokio::test]
async fn the_host_policy_refuses_only_the_spec_that_breaks_it() {
    let world = World::new("policy");
    world.container("a", "x", "restart");
    world.container("b", "x", "restart");
    let b = std::fs::read_to_string(world.dir.join("specs/b.yaml")).unwrap();
    world.spec(
        "b",
        &format!("{b}  quadlet:\n    Container:\n      AddCapability: NET_BIND_SERVICE\n"),
    );
    world.secret("x", Ok("one"));
    let policy = ramlet_specs::Policy {
        forbidden_keys: ["AddCapability".to_owned()].into(),
        ..Default::default()
    };
    let mut reconciler = world.reconciler_with(policy);
    let outcome = reconciler.reconcile(Due::All).await;
    assert!(
        !outcome.failed,
        "a spec that cannot load is that spec's problem"
    );
    let status = reconciler.status();
    assert_eq!(status.specs["a"].phase, Phase::Ready);
    assert!(!world.unit_file("b").exists(), "b is never created");
    let error = status.errors.join("\n");
    assert!(
        error.contains("b.yaml:")
            && error.contains("spec.quadlet.Container.AddCapability")
            && error.contains("[policy]"),
        "{error}"
    );
    // Without the policy, b is fine.
    let mut reconciler = world.reconciler();
    assert!(!reconciler.reconcile(Due::All).await.failed);
    assert!(world.unit_file("b").exists());
}

/// In user scope ramlet gives owners through rootless Podman's default ID mapping; a container
/// that sets its own (`UserNS=`) may have files only root owns there: the spec with an owner
/// fails, naming the key, and the same spec with root's files runs.
#[tokio::test]
async fn in_user_scope_an_owner_under_a_containers_own_id_mapping_is_refused() {
    let world = World::new("userns");
    let spec = |uid: u32| {
        format!(
            "apiVersion: ramlet.dev/v1alpha1\nkind: Container\nmetadata: {{name: a}}\nspec:\n  image: localhost/busybox\n  \
             volumes:\n    - name: v\n      mountPath: /run/v\n      files:\n        - path: f\n          uid: {uid}\n          secret: {{store: s, name: x}}\n  \
             quadlet:\n    Container:\n      UserNS: keep-id\n"
        )
    };
    world.spec("a", &spec(101));
    world.secret("x", Ok("one"));
    let mut reconciler =
        world.reconciler_in(ramlet::layout::Scope::User, ramlet_specs::Policy::default());
    reconciler.reconcile(Due::All).await;
    let status = reconciler.status();
    assert_eq!(status.specs["a"].phase, Phase::Failed);
    assert!(
        status.specs["a"].message.contains("[Container] UserNS="),
        "{}",
        status.specs["a"].message
    );
    assert!(!world.unit_file("a").exists());
    world.spec("a", &spec(0));
    assert!(!reconciler.reconcile(Due::All).await.failed);
    assert_eq!(reconciler.status().specs["a"].phase, Phase::Ready);
}

/// An idle reconcile asks systemd once (one list of all units) and writes nothing; a unit that
/// changed behind ramlet's back is asked about in detail, and only it.
#[tokio::test]
async fn an_idle_reconcile_is_one_systemd_call_and_changes_nothing() {
    let world = World::new("idle");
    for i in 0..50 {
        world.container(&format!("c{i}"), "x", "restart");
    }
    world.secret("x", Ok("one"));
    let mut reconciler = world.reconciler();
    assert!(!reconciler.reconcile(Due::All).await.failed);
    world.take_log();
    world.host.lock().unwrap().bus_calls = 0;
    let status_file = world.dir.join("state/status.json");
    // Written by a rename into place: a rewrite is a new inode.
    let inode = |path: &std::path::Path| {
        std::os::unix::fs::MetadataExt::ino(&std::fs::metadata(path).unwrap())
    };
    let written = inode(&status_file);
    // A timer wake-up.
    let outcome = reconciler.reconcile(Due::Timers).await;
    assert!(outcome.actions.is_empty(), "{:?}", outcome.actions);
    assert!(world.take_log().is_empty());
    assert_eq!(world.host.lock().unwrap().bus_calls, 1);
    assert_eq!(
        inode(&status_file),
        written,
        "nothing but timestamps changed: the status file is not rewritten"
    );
    // `ramlet sync` asks for a reconcile: the status file says it happened.
    reconciler.reconcile(Due::All).await;
    assert_ne!(
        inode(&status_file),
        written,
        "a sync rewrites the status file"
    );
    // c7 failed meanwhile: its details are read (why it failed), and it is started again.
    world
        .host
        .lock()
        .unwrap()
        .units
        .get_mut("c7.service")
        .unwrap()
        .active_state = "failed".into();
    world.host.lock().unwrap().bus_calls = 0;
    reconciler.reconcile(Due::All).await;
    assert_eq!(world.take_log(), ["start c7.service"]);
    // The list, c7's details, its exact state before the journal, and after its job.
    assert_eq!(world.host.lock().unwrap().bus_calls, 1 + 2 + 2 + 2);
}

/// `ramlet plan`: what a reconcile would do and why, while nothing is done; after the
/// reconcile, nothing more would change.
#[tokio::test]
async fn a_preview_says_what_and_why_and_does_nothing() {
    let world = World::new("preview");
    world.container("a", "x", "restart");
    world.container("b", "y", "reload");
    world.secret("x", Ok("one"));
    world.secret("y", Ok("one"));
    let mut reconciler = world.reconciler();
    assert!(!reconciler.reconcile(Due::All).await.failed);
    world.take_log();
    assert!(reconciler.preview(Due::All).await.unwrap().is_empty());

    world.secret("x", Ok("two"));
    let edited = std::fs::read_to_string(world.dir.join("specs/b.yaml"))
        .unwrap()
        .replace("localhost/busybox", "localhost/busybox:v2");
    world.spec("b", &edited);
    let preview = reconciler.preview(Due::All).await.unwrap();
    assert!(world.take_log().is_empty(), "a preview does nothing");
    assert_eq!(preview.changes["a"].actions, ["write volumes", "restart"]);
    assert_eq!(
        preview.changes["a"].why,
        [
            "secret rotated: s/x v-one -> v-two",
            "its secrets changed (rotation)"
        ]
    );
    assert_eq!(preview.changes["b"].actions, ["write unit", "restart"]);
    let diff = preview.changes["b"].diff.clone().unwrap();
    assert!(
        diff.contains("- Image=localhost/busybox\n")
            && diff.contains("+ Image=localhost/busybox:v2\n"),
        "{diff}"
    );
    assert!(preview.daemon_reload);
    let text = preview.text();
    assert!(text.contains("2 spec(s) would change"), "{text}");

    reconciler.reconcile(Due::All).await;
    assert!(reconciler.preview(Due::All).await.unwrap().is_empty());
}

#[tokio::test]
async fn a_new_spec_is_created_in_order_and_then_left_alone() {
    let world = World::new("new");
    world.container("a", "x", "restart");
    world.secret("x", Ok("one"));
    let mut reconciler = world.reconciler();
    let outcome = reconciler.reconcile(Due::All).await;
    assert!(!outcome.failed, "{:?}", reconciler.status());
    assert_eq!(
        world.take_log(),
        ["write a/v", "daemon-reload", "start a.service"]
    );
    assert!(world.unit_file("a").exists());
    assert_eq!(reconciler.status().specs["a"].phase, Phase::Ready);
    assert_eq!(reconciler.status().specs["a"].secrets[0].version, "v-one");
    reconciler.reconcile(Due::All).await;
    assert!(
        world.take_log().is_empty(),
        "a second reconcile changes nothing"
    );
}

/// How long the loop waits after a file event for more (`agent::debounce`): a spec file
/// closed or moved into place waits as briefly as a secret read beside another (git writes its
/// next file well within it); events the watcher lost are a burst.
#[tokio::test]
async fn a_finished_spec_file_waits_only_for_its_sibling() {
    let world = World::new("settle");
    world.container("a", "x", "restart");
    world.secret("x", Ok("one"));
    let mut reconciler = world.reconciler();
    assert_eq!(
        reconciler.files_changed(&[world.dir.join("specs/a.yaml")]),
        (Due::Files, Settle::Siblings)
    );
    assert_eq!(reconciler.files_changed(&[]), (Due::Files, Settle::Burst));
}

#[tokio::test]
async fn a_rotation_touches_only_the_containers_that_use_the_secret() {
    let world = World::new("rotation");
    world.container("a", "x", "restart");
    world.container("b", "y", "restart");
    world.container("c", "x", "reload");
    world.container("d", "x", "none");
    world.secret("x", Ok("one"));
    world.secret("y", Ok("other"));
    let mut reconciler = world.reconciler();
    reconciler.reconcile(Due::All).await;
    world.take_log();
    let b_before = world.invocation("b.service");

    world.secret("x", Ok("two"));
    let outcome = reconciler.reconcile(Due::All).await;
    assert_eq!(
        world.take_log(),
        [
            "write a/v",
            "write c/v",
            "write d/v",
            "restart a.service",
            "reload c.service"
        ]
    );
    assert!(
        outcome
            .actions
            .contains(&Action::Job(Job::Restart, "a".into()))
    );
    assert_eq!(world.invocation("b.service"), b_before, "b does not use x");
    // The metrics file counts the jobs with their cause.
    let metrics = std::fs::read_to_string(world.dir.join("metrics.prom")).unwrap();
    for line in [
        "ramlet_unit_jobs_total{job=\"start\",cause=\"spec\"} 4",
        "ramlet_unit_jobs_total{job=\"restart\",cause=\"rotation\"} 1",
        "ramlet_unit_jobs_total{job=\"reload\",cause=\"rotation\"} 1",
        "ramlet_reconciles_total{result=\"success\"} 2",
        "ramlet_spec_phase{spec=\"a\",phase=\"Ready\"} 1",
        "ramlet_secret_fetches_total{store=\"s\",kind=\"file\",result=\"changed\"} 3",
        // a restarted and c reloaded for the rotation, well within a second on fakes.
        "ramlet_rotation_duration_seconds_count 2",
        "ramlet_rotation_duration_seconds_bucket{le=\"0.5\"} 2",
    ] {
        assert!(metrics.lines().any(|l| l == line), "{line}:\n{metrics}");
    }
}

#[tokio::test]
async fn a_provider_outage_keeps_the_last_good_secret_and_the_container() {
    let world = World::new("outage");
    world.container("a", "x", "restart");
    world.container("b", "y", "restart");
    world.secret("x", Ok("one"));
    world.secret("y", Ok("other"));
    let mut reconciler = world.reconciler();
    reconciler.reconcile(Due::All).await;
    world.take_log();

    world.secret("x", Err(ProviderError::unavailable("connection refused")));
    world.container("b", "y", "none");
    let outcome = reconciler.reconcile(Due::All).await;
    // The store retries on its own backoff (1 s, with jitter), not the whole host.
    assert!(!outcome.failed);
    assert!(
        outcome
            .requeue
            .by()
            .is_some_and(|r| r <= std::time::Duration::from_secs(2)),
        "{:?}",
        outcome.requeue
    );
    let log = world.take_log();
    assert!(
        log.iter()
            .all(|l| !l.contains("a.service") && !l.contains("a/v") && l != "wipe a"),
        "{log:?}"
    );
    let a = &reconciler.status().specs["a"];
    assert_eq!(
        (a.phase, a.reason.as_str()),
        (Phase::Degraded, "ProviderUnavailable")
    );
    assert!(a.message.contains("connection refused"));
    assert_eq!(reconciler.status().specs["b"].phase, Phase::Ready);
}

#[tokio::test]
async fn a_restarted_agent_adopts_what_runs_and_restarts_nothing() {
    let world = World::new("adopt");
    world.container("a", "x", "restart");
    world.secret("x", Ok("one"));
    world.reconciler().reconcile(Due::All).await;
    world.take_log();
    let mut fresh = world.reconciler();
    let outcome = fresh.reconcile(Due::All).await;
    assert!(outcome.actions.is_empty(), "{:?}", outcome.actions);
    assert!(world.take_log().is_empty());
}

#[tokio::test]
async fn a_broken_spec_keeps_running_and_a_removed_one_is_torn_down() {
    let world = World::new("broken");
    world.container("a", "x", "restart");
    world.container("b", "x", "restart");
    world.secret("x", Ok("one"));
    let mut reconciler = world.reconciler();
    reconciler.reconcile(Due::All).await;
    world.take_log();

    world.spec(
        "a",
        "apiVersion: ramlet.dev/v1alpha1\nkind: Container\nmetadata: {name: a}\nspec: [\n",
    );
    std::fs::remove_file(world.dir.join("specs/b.yaml")).unwrap();
    reconciler.reconcile(Due::All).await;
    assert_eq!(
        world.take_log(),
        ["stop b.service", "daemon-reload", "wipe b"]
    );
    assert!(world.unit_file("a").exists() && !world.unit_file("b").exists());
    let a = &reconciler.status().specs["a"];
    assert_eq!(
        (a.phase, a.reason.as_str()),
        (Phase::Degraded, "InvalidSpec")
    );
    assert!(
        reconciler.status().errors[0].contains("a.yaml:5:1"),
        "{:?}",
        reconciler.status().errors
    );
}

#[tokio::test]
async fn a_unit_ramlet_does_not_own_is_never_touched() {
    let world = World::new("foreign");
    world.container("a", "x", "restart");
    world.secret("x", Ok("one"));
    std::fs::create_dir_all(world.dir.join("units")).unwrap();
    std::fs::write(world.unit_file("a"), "[Container]\nImage=mine\n").unwrap();
    let mut reconciler = world.reconciler();
    reconciler.reconcile(Due::All).await;
    assert!(world.take_log().is_empty());
    assert_eq!(
        std::fs::read_to_string(world.unit_file("a")).unwrap(),
        "[Container]\nImage=mine\n"
    );
    assert_eq!(
        reconciler.status().specs["a"].reason.as_str(),
        "UnitNameTaken"
    );
    assert!(Path::new(&world.unit_file("a")).exists());
}

#[tokio::test]
async fn a_spec_whose_unit_name_is_taken_elsewhere_on_the_host_is_refused() {
    let world = World::new("taken");
    world.container("a", "x", "restart");
    world.container("b", "x", "restart");
    world.secret("x", Ok("one"));
    world
        .host
        .lock()
        .unwrap()
        .foreign_units
        .insert("a.service".into());
    let mut reconciler = world.reconciler();
    reconciler.reconcile(Due::All).await;
    assert_eq!(
        world.take_log(),
        ["write b/v", "daemon-reload", "start b.service"]
    );
    assert!(!world.unit_file("a").exists());
    let a = &reconciler.status().specs["a"];
    assert_eq!(
        (a.phase, a.reason.as_str()),
        (Phase::Failed, "UnitNameTaken")
    );
    assert!(
        a.message.contains("a.service already exists"),
        "{}",
        a.message
    );
}

/// What a rotation of `x` does on [`World::running`]'s host: both its volumes written, `a`
/// restarted, `c` reloaded (`b` uses `y`).
const X_ROTATED: [&str; 4] = [
    "write a/v",
    "write c/v",
    "restart a.service",
    "reload c.service",
];

impl World {
    /// Makes `call` fail once with `error`; `happened`: the job is done anyway.
    fn fault(&self, call: &str, error: SystemdError, happened: bool) {
        self.host
            .lock()
            .unwrap()
            .faults
            .insert(call.into(), (error, happened));
    }

    /// Three containers on secret `x` (restart, reload) and `y`, all running.
    async fn running(&self) -> Reconciler {
        self.container("a", "x", "restart");
        self.container("b", "y", "restart");
        self.container("c", "x", "reload");
        self.secret("x", Ok("one"));
        self.secret("y", Ok("other"));
        let mut reconciler = self.reconciler();
        reconciler.reconcile(Due::All).await;
        self.take_log();
        reconciler
    }
}

fn job_failed(job: Job, unit: &str) -> SystemdError {
    SystemdError::Job {
        job,
        unit: unit.into(),
        result: "failed".into(),
    }
}

#[tokio::test]
async fn a_failed_restart_or_reload_is_issued_again_and_then_never() {
    let world = World::new("failed-job");
    let mut reconciler = world.running().await;
    world.fault(
        "restart a.service",
        job_failed(Job::Restart, "a.service"),
        false,
    );
    world.fault(
        "reload c.service",
        job_failed(Job::Reload, "c.service"),
        false,
    );
    world.secret("x", Ok("two"));
    let outcome = reconciler.reconcile(Due::All).await;
    assert!(outcome.failed);
    assert_eq!(world.take_log(), X_ROTATED);
    let a = &reconciler.status().specs["a"];
    assert_eq!(a.phase, Phase::Failed);
    assert!(
        a.message.contains("restart a.service: job failed"),
        "{}",
        a.message
    );

    // Nothing differs on disk any more; the restart and the reload are still owed.
    reconciler.reconcile(Due::Timers).await;
    assert_eq!(world.take_log(), ["restart a.service", "reload c.service"]);
    reconciler.reconcile(Due::Timers).await;
    assert_eq!(
        world.take_log(),
        Vec::<String>::new(),
        "paid once, never again"
    );
}

#[tokio::test]
async fn a_failed_daemon_reload_is_issued_again_with_the_restart_it_holds_back() {
    let world = World::new("failed-reload");
    let mut reconciler = world.running().await;
    world.fault(
        "daemon-reload",
        SystemdError::Bus("Connection reset".into()),
        false,
    );
    world.container("b", "y", "reload");
    reconciler.reconcile(Due::Timers).await;
    assert_eq!(world.take_log(), ["daemon-reload"]);
    assert!(world.unit_file("b").exists());
    reconciler.reconcile(Due::Timers).await;
    assert_eq!(world.take_log(), ["daemon-reload", "restart b.service"]);
    reconciler.reconcile(Due::Timers).await;
    assert_eq!(world.take_log(), Vec::<String>::new());
}

#[tokio::test]
async fn a_restart_owed_when_ramlet_died_is_done_by_the_next_ramlet() {
    let world = World::new("owed-across-runs");
    let mut reconciler = world.running().await;
    let b = world.invocation("b.service");
    // The restart never happens (ramlet is killed before it, as far as the host can tell).
    world.fault(
        "restart a.service",
        SystemdError::Bus("Connection reset".into()),
        false,
    );
    world.secret("x", Ok("two"));
    reconciler.reconcile(Due::All).await;
    world.take_log();
    drop(reconciler);

    let mut next = world.reconciler();
    next.reconcile(Due::All).await;
    assert_eq!(
        world.take_log(),
        ["restart a.service"],
        "c's reload was done"
    );
    next.reconcile(Due::All).await;
    assert_eq!(world.take_log(), Vec::<String>::new());
    assert_eq!(
        world.invocation("b.service"),
        b,
        "b's content never changed"
    );
}

#[tokio::test]
async fn a_restart_that_finished_while_ramlet_lost_track_is_not_done_twice() {
    let world = World::new("lost-track");
    let mut reconciler = world.running().await;
    world.fault(
        "restart a.service",
        SystemdError::Timeout {
            what: "restart a.service".into(),
            timeout: std::time::Duration::from_secs(90),
        },
        true,
    );
    world.secret("y", Ok("two"));
    world.container("a", "y", "restart");
    reconciler.reconcile(Due::All).await;
    world.take_log();
    reconciler.reconcile(Due::All).await;
    assert_eq!(world.take_log(), Vec::<String>::new());
}

#[tokio::test]
async fn a_state_systemd_did_not_answer_never_loses_a_rotation() {
    let world = World::new("state-error");
    let mut reconciler = world.running().await;
    world.fault(
        "state a.service",
        SystemdError::Bus("Connection reset".into()),
        false,
    );
    world.fault(
        "state b.service",
        SystemdError::Bus("Connection reset".into()),
        false,
    );
    world.secret("x", Ok("two"));
    reconciler.reconcile(Due::All).await;
    let log = world.take_log();
    assert!(log.contains(&"restart a.service".to_owned()), "{log:?}");
    assert!(!log.contains(&"restart b.service".to_owned()), "{log:?}");
}

/// A restart that failed with `Result=protocol`, main process exit 0 (systemd lost Podman's
/// READY=1) is started again at once, in the same reconcile; any other failure waits for the
/// next one.
#[tokio::test]
async fn a_start_whose_readiness_was_lost_is_started_again_at_once() {
    for (result, retried) in [("protocol", true), ("exit-code", false)] {
        let world = World::new(&format!("lost-ready-{result}"));
        let mut reconciler = world.running().await;
        world.fault(
            "restart a.service",
            job_failed(Job::Restart, "a.service"),
            false,
        );
        // The `Result` systemd gives after that failed restart (the fake keeps a unit's state
        // until a job on it succeeds).
        world
            .host
            .lock()
            .unwrap()
            .units
            .get_mut("a.service")
            .unwrap()
            .result = result.into();
        world.secret("x", Ok("two"));
        let outcome = reconciler.reconcile(Due::All).await;
        let log = world.take_log();
        if retried {
            assert!(!outcome.failed, "{result}: {log:?}");
            assert!(log.contains(&"start a.service".to_owned()), "{log:?}");
            assert_eq!(
                reconciler.status().specs["a"].phase,
                Phase::Ready,
                "{log:?}"
            );
        } else {
            assert!(outcome.failed, "{result}");
            assert!(!log.contains(&"start a.service".to_owned()), "{log:?}");
        }
    }
}

/// When systemd does not answer for the units' states, nothing is known of them: the reconcile
/// fails (and is retried with backoff) without touching a unit, where taking every unit for
/// down would start or restart every spec; `ramlet plan` says it cannot tell (exit 1) instead
/// of "nothing would change".
#[tokio::test]
async fn no_answer_from_systemd_touches_no_unit_and_plans_nothing() {
    let world = World::new("no-answer");
    let mut reconciler = world.running().await;
    world.secret("x", Ok("two"));
    let no_answer = || SystemdError::Timeout {
        what: "list units".into(),
        timeout: std::time::Duration::from_secs(25),
    };
    world.fault("list units", no_answer(), false);
    let outcome = reconciler.reconcile(Due::All).await;
    assert!(outcome.failed);
    assert_eq!(world.take_log(), Vec::<String>::new());
    let errors = reconciler.status().errors.join("\n");
    assert!(
        errors.contains("cannot ask systemd for the units' states") && errors.contains("no answer"),
        "{errors}"
    );
    assert_eq!(reconciler.status().specs["b"].phase, Phase::Ready);

    world.fault("list units", no_answer(), false);
    let preview = reconciler.preview(Due::All).await;
    assert!(
        preview
            .as_ref()
            .is_err_and(|e| e.to_string().contains("cannot ask systemd")),
        "{:?}",
        preview.map(|p| p.text())
    );

    // systemd answers again: the rotation lands, and only where it belongs.
    reconciler.reconcile(Due::All).await;
    assert_eq!(world.take_log(), X_ROTATED);
}

/// Issue 21: one bad spec put the whole host on failure backoff and counted a failed
/// reconcile every round, forever ("reconciled: 0 actions, some failed" while only one spec
/// was bad). A spec that cannot load, or whose secret is missing, is a fact of that spec: the
/// others are applied, the loop is not asked to come back sooner, and no reconcile counts as
/// failed.
#[tokio::test]
async fn a_bad_spec_is_not_a_failure_of_the_host() {
    let world = World::new("bad-spec");
    world.container("good", "x", "restart");
    world.container("missing", "nope", "restart");
    world.spec("broken", "apiVersion: ramlet.dev/v1alpha1\nkind: Container\nmetadata: {name: broken}\nspec: {image: [\n");
    world.secret("x", Ok("one"));
    world.secret("nope", Err(ProviderError::not_found("no such secret")));
    let mut reconciler = world.reconciler();
    for _ in 0..3 {
        let outcome = reconciler.reconcile(Due::All).await;
        assert!(!outcome.failed);
        assert!(
            !outcome.requeue.failed(),
            "nothing to come back for soon: {:?}",
            outcome.requeue
        );
    }
    let status = reconciler.status();
    assert_eq!(status.specs["good"].phase, Phase::Ready);
    assert_eq!(status.specs["missing"].phase, Phase::Failed);
    assert_eq!(status.specs["missing"].reason.as_str(), "SecretNotFound");
    assert!(
        status.errors.join("\n").contains("broken.yaml:5:1"),
        "{:?}",
        status.errors
    );
    let metrics = std::fs::read_to_string(world.dir.join("metrics.prom")).unwrap();
    assert!(
        metrics.contains("ramlet_reconciles_total{result=\"failure\"} 0")
            && metrics.contains("ramlet_reconciles_total{result=\"success\"} 3"),
        "{metrics}"
    );
}

/// Issue 19, through the real reconciler: a restart that outlived ramlet's wait is still a job
/// on its way in systemd (listed `activating` with a pending job). The restart stays owed but
/// is not issued again while that job runs (issuing it would replace the job, and a container
/// slower to start than the wait would never run); once the job lands under a new invocation,
/// the debt is paid without a second restart.
#[tokio::test]
async fn a_restart_still_on_its_way_is_waited_for_not_replaced() {
    let world = World::new("pending");
    let mut reconciler = world.running().await;
    world.fault(
        "restart a.service",
        SystemdError::Timeout {
            what: "restart a.service".into(),
            timeout: std::time::Duration::from_secs(90),
        },
        false,
    );
    world.secret("x", Ok("two"));
    reconciler.reconcile(Due::All).await;
    assert!(
        world.take_log().contains(&"restart a.service".to_owned()),
        "the rotation's restart was issued"
    );
    {
        // systemd's view while the restart runs on: activating, a job pending.
        let mut host = world.host.lock().unwrap();
        host.pending.insert("a.service".into());
        host.units.get_mut("a.service").unwrap().active_state = ActiveState::Activating;
    }
    for _ in 0..3 {
        let outcome = reconciler.reconcile(Due::All).await;
        assert!(
            outcome.requeue.failed(),
            "a unit on its way keeps the loop looking: {:?}",
            outcome.requeue
        );
        assert_eq!(
            world.take_log(),
            Vec::<String>::new(),
            "its job is not replaced"
        );
    }
    // The job lands: a new invocation, active.
    {
        let mut host = world.host.lock().unwrap();
        host.pending.clear();
        let state = host.units.get_mut("a.service").unwrap();
        state.active_state = ActiveState::Active;
        state.invocation_id = "9999".into();
    }
    reconciler.reconcile(Due::All).await;
    assert_eq!(
        world.take_log(),
        Vec::<String>::new(),
        "paid without a second restart"
    );
    assert_eq!(reconciler.status().specs["a"].phase, Phase::Ready);
}

/// A consumer of secret `x` whose health check fails while `ramlet-<name>` is unhealthy or
/// its file holds one of the host's `bad_values`.
fn gated(world: &World, name: &str) {
    world.spec(
        name,
        &format!(
            "apiVersion: ramlet.dev/v1alpha1\nkind: Container\nmetadata: {{name: {name}}}\nspec:\n  image: localhost/busybox\n  \
             volumes:\n    - name: v\n      mountPath: /run/v\n      files:\n        - path: f\n          secret: {{store: s, name: x}}\n  \
             rotation:\n    strategy: restart\n    healthCheck: {{command: [check], deadline: 1s, interval: 1s}}\n"
        ),
    );
}

fn volume_text(world: &World, spec: &str) -> String {
    let host = world.host.lock().unwrap();
    let files = &host.volumes[&(spec.to_owned(), "v".to_owned())];
    String::from_utf8_lossy(files[0].bytes.expose()).into_owned()
}

#[tokio::test]
async fn a_rotation_that_fails_its_health_check_puts_the_previous_files_back() {
    let world = World::new("gate");
    gated(&world, "a");
    gated(&world, "b");
    world.secret("x", Ok("one"));
    let mut reconciler = world.reconciler();
    reconciler.reconcile(Due::All).await;
    let b = world.invocation("b.service");
    world.take_log();

    world.host.lock().unwrap().bad_values.insert("bad".into());
    world.secret("x", Ok("bad"));
    reconciler.reconcile(Due::All).await;
    checks_end().await;
    assert_eq!(
        world.take_log(),
        ["check ramlet-a", "check ramlet-b"],
        "each checked on what it runs first (the plan starts the checks, the apply runs them)"
    );
    reconciler.reconcile(Due::Timers).await;
    assert_eq!(
        world.take_log(),
        ["write a/v", "restart a.service"],
        "then the canary alone"
    );
    assert_eq!(volume_text(&world, "a"), "bad");
    let a = &reconciler.status().specs["a"];
    assert_eq!(
        (a.phase, a.reason),
        (Phase::Progressing, Reason::HealthChecking)
    );
    assert_eq!(
        reconciler.status().specs["b"].reason,
        Reason::AwaitingCanary
    );

    // Checked every interval until the deadline (whole seconds) has passed.
    reconciler.reconcile(Due::Timers).await;
    checks_end().await;
    assert_eq!(world.take_log(), ["check ramlet-a"]);
    reconciler.reconcile(Due::Timers).await;
    checks_end().await;
    assert_eq!(
        reconciler.status().specs["a"].reason,
        Reason::HealthChecking,
        "a failed check before the deadline is waited past"
    );
    assert_eq!(
        world.take_log(),
        Vec::<String>::new(),
        "and not run again within its interval"
    );
    world.clock.advance(Duration::from_millis(2100));
    reconciler.reconcile(Due::Timers).await;
    assert_eq!(world.take_log(), ["write a/v", "restart a.service"]);
    assert_eq!(volume_text(&world, "a"), "one", "the previous file is back");
    let a = &reconciler.status().specs["a"];
    assert_eq!((a.phase, a.reason), (Phase::Degraded, Reason::RolledBack));

    // Settled: nothing more, and b never took the refused version.
    reconciler.reconcile(Due::Timers).await;
    assert_eq!(world.take_log(), Vec::<String>::new());
    assert_eq!(world.invocation("b.service"), b);
    assert_eq!(volume_text(&world, "b"), "one");

    // A newer version passes on the canary, and then reaches b.
    world.secret("x", Ok("two"));
    // `ramlet plan` says which consumer takes it first, and under what gate.
    let preview = reconciler.preview(Due::All).await.unwrap().text();
    assert!(
        preview.contains("a: write volumes, restart")
            && preview.contains("health-gated: s/x")
            && preview.contains("(first on a); its check must pass within 1 s")
            && preview.contains("b: left as it is: version"),
        "{preview}"
    );
    world.take_log();
    reconciler.reconcile(Due::All).await;
    assert_eq!(world.take_log(), ["write a/v", "restart a.service"]);
    reconciler.reconcile(Due::Timers).await;
    checks_end().await;
    assert_eq!(world.take_log(), ["check ramlet-a"]);
    reconciler.reconcile(Due::Timers).await;
    assert_eq!(world.take_log(), ["write b/v", "restart b.service"]);
    assert_eq!(volume_text(&world, "b"), "two");
}

/// Lets the health checks the last reconcile started run (they run beside the reconciles, on
/// the test's runtime; the fakes answer at once).
async fn checks_end() {
    for _ in 0..10 {
        tokio::task::yield_now().await;
    }
}

/// Every file under `dir` with its bytes: what a preview must leave exactly as it found it.
fn snapshot(dir: &std::path::Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut files = BTreeMap::new();
    let mut folders = vec![dir.to_owned()];
    while let Some(folder) = folders.pop() {
        for entry in std::fs::read_dir(&folder).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() {
                folders.push(path);
            } else {
                files.insert(path.clone(), std::fs::read(&path).unwrap_or_default());
            }
        }
    }
    files
}

/// Issue 33, finding 3: a health check that never returned held every reconcile for the job
/// timeout (90 s): another spec's rotation landed minutes late. Checks run beside the
/// reconciles: the hanging one is started once, and the other spec's rotation is not held.
#[tokio::test]
async fn regression_33_a_health_check_that_never_returns_delays_no_other_spec() {
    let world = World::new("hanging-check");
    gated(&world, "a");
    world.container("c", "y", "restart");
    world.secret("x", Ok("one"));
    world.secret("y", Ok("one"));
    let mut reconciler = world.reconciler();
    reconciler.reconcile(Due::All).await;
    world.take_log();
    world.secret("x", Ok("two"));
    reconciler.reconcile(Due::All).await;
    checks_end().await;
    reconciler.reconcile(Due::Timers).await;
    assert_eq!(
        world.take_log(),
        ["check ramlet-a", "write a/v", "restart a.service"],
        "checked on what it ran, then the new version"
    );
    world.host.lock().unwrap().hanging.insert("ramlet-a".into());

    // The check is started and never answers; the reconciles go on without it.
    let bound = Duration::from_secs(10);
    for _ in 0..3 {
        tokio::time::timeout(bound, reconciler.reconcile(Due::Timers))
            .await
            .expect("a reconcile waited for a hanging health check");
        checks_end().await;
    }
    world.secret("y", Ok("two"));
    tokio::time::timeout(bound, reconciler.reconcile(Due::All))
        .await
        .expect("a rotation waited for another spec's hanging health check");
    assert_eq!(
        world.take_log(),
        ["check ramlet-a", "write c/v", "restart c.service"],
        "one check, still running, and c's rotation at once"
    );
    let a = &reconciler.status().specs["a"];
    assert_eq!(a.reason, Reason::HealthChecking);
}

/// Issue 33, finding 11, and issue 34: `ramlet plan` ran the same observe as a reconcile, which
/// consumed `ramlet sync --retry` requests and started health checks. Now it is observe and
/// decide, nothing else: with a retry pending, a rollout under way and its check due, every
/// call it makes to the fakes (which record every call) only reads, and the state directory is
/// byte for byte as it was. The agent's next reconcile then takes the request and starts the
/// check, as actions of its plan.
#[tokio::test]
async fn regression_33_plan_changes_nothing() {
    let world = World::new("plan-read-only");
    gated(&world, "a");
    gated(&world, "b");
    world.secret("x", Ok("one"));
    let mut reconciler = world.reconciler();
    reconciler.reconcile(Due::All).await;
    // A refused version, so that a retry request means something...
    world.host.lock().unwrap().bad_values.insert("bad".into());
    world.secret("x", Ok("bad"));
    for due in [Due::All, Due::Timers, Due::Timers] {
        reconciler.reconcile(due).await;
        checks_end().await;
    }
    world.clock.advance(Duration::from_millis(2100));
    reconciler.reconcile(Due::Timers).await;
    assert_eq!(reconciler.status().specs["a"].reason, Reason::RolledBack);
    // ...and a new rotation under way on the canary, its check due...
    world.secret("x", Ok("three"));
    reconciler.reconcile(Due::All).await;
    assert_eq!(
        reconciler.status().specs["a"].reason,
        Reason::HealthChecking
    );
    world.take_log();
    // ...and a retry request waiting for the agent.
    ramlet::reconcile::owed::ask_retry(&world.dir.join("state"), &["b".to_owned()]).unwrap();

    let before = snapshot(&world.dir.join("state"));
    assert!(before.keys().any(|p| p.ends_with("retry/b")), "{before:?}");
    world.host.lock().unwrap().calls.clear();
    let preview = reconciler.preview(Due::All).await.unwrap();
    let calls = std::mem::take(&mut world.host.lock().unwrap().calls);
    let reads = [
        "differs",
        "data_folder",
        "specs",
        "states",
        "details",
        "load_state",
        "unit_path",
        "fetch",
    ];
    assert!(!calls.is_empty());
    assert!(
        calls.iter().all(|call| reads.contains(call)),
        "a call that changes something: {calls:?}"
    );
    assert_eq!(
        world.take_log(),
        Vec::<String>::new(),
        "no check, no write, no job"
    );
    assert_eq!(snapshot(&world.dir.join("state")), before);
    let text = preview.text();
    assert!(
        text.contains("a: health check") && text.contains("b: retry refused versions"),
        "{text}"
    );

    // The agent then takes the request and starts the check: actions of its plan.
    let outcome = reconciler.reconcile(Due::All).await;
    assert!(
        outcome.actions.contains(&Action::ConsumeRetry("b".into()))
            && outcome.actions.contains(&Action::Check("a".into())),
        "{:?}",
        outcome.actions
    );
    checks_end().await;
    assert!(world.take_log().contains(&"check ramlet-a".to_owned()));
    assert!(!world.dir.join("state/retry/b").exists());
}

/// Issue 33, finding 10: a vendor unit installed after ramlet's under the same name was hidden
/// by ramlet's without a word. At the next `ramlet sync` (or within a minute), the spec says
/// `UnitNameTaken` naming the file; the running container is kept as it runs, not stopped.
/// Files in the generators' folders (where Quadlet puts ramlet's own units) do not count.
#[tokio::test]
async fn regression_33_a_unit_of_the_hosts_that_appears_later_is_said() {
    let world = World::new("shadowed");
    let (vendor, generator) = (world.dir.join("vendor"), world.dir.join("generator"));
    for dir in [&vendor, &generator] {
        std::fs::create_dir_all(dir).unwrap();
    }
    world.host.lock().unwrap().unit_path = vec![vendor.clone(), generator.clone()];
    world.container("a", "x", "restart");
    world.secret("x", Ok("one"));
    let mut reconciler = world.reconciler();
    reconciler.reconcile(Due::All).await;
    world.take_log();
    std::fs::write(generator.join("a.service"), "[Service]\n").unwrap();
    reconciler.reconcile(Due::All).await;
    assert_eq!(reconciler.status().specs["a"].phase, Phase::Ready);

    std::fs::write(vendor.join("a.service"), "[Service]\nExecStart=/bin/true\n").unwrap();
    reconciler.reconcile(Due::All).await;
    let a = &reconciler.status().specs["a"];
    assert_eq!(
        (a.phase, a.reason.as_str()),
        (Phase::Degraded, "UnitNameTaken")
    );
    assert!(
        a.message
            .contains(&vendor.join("a.service").display().to_string()),
        "{}",
        a.message
    );
    assert_eq!(world.take_log(), Vec::<String>::new(), "kept as it runs");
    assert!(world.unit_file("a").exists());
    // Said until the next search, not only at the reconcile that searched.
    reconciler.reconcile(Due::Timers).await;
    assert_eq!(
        reconciler.status().specs["a"].reason.as_str(),
        "UnitNameTaken"
    );
}

/// Issue 33, finding 7, through the reconciler: `aaa` (whose check always fails) and `bbb` share
/// a secret. `aaa` sorted first and its check refused every version, so `bbb` never got one.
/// Now each is checked on what it runs; `aaa` is no canary, `bbb` takes the version, passes,
/// and `aaa` follows; nothing is refused.
#[tokio::test]
async fn regression_33_one_specs_broken_check_blocks_no_one_elses_rotation() {
    let world = World::new("broken-check");
    gated(&world, "aaa");
    gated(&world, "bbb");
    world.secret("x", Ok("one"));
    let mut reconciler = world.reconciler();
    reconciler.reconcile(Due::All).await;
    world
        .host
        .lock()
        .unwrap()
        .unhealthy
        .insert("ramlet-aaa".into());
    world.take_log();

    world.secret("x", Ok("two"));
    reconciler.reconcile(Due::All).await;
    checks_end().await;
    reconciler.reconcile(Due::Timers).await;
    assert_eq!(
        world.take_log(),
        [
            "check ramlet-aaa",
            "check ramlet-bbb",
            "write bbb/v",
            "restart bbb.service"
        ]
    );
    let aaa = &reconciler.status().specs["aaa"];
    assert!(aaa.message.contains("goes to bbb first"), "{}", aaa.message);
    reconciler.reconcile(Due::Timers).await;
    checks_end().await;
    reconciler.reconcile(Due::Timers).await;
    assert_eq!(
        world.take_log(),
        ["check ramlet-bbb", "write aaa/v", "restart aaa.service"]
    );
    assert_eq!(volume_text(&world, "aaa"), "two");
    assert_eq!(volume_text(&world, "bbb"), "two");
    assert_eq!(reconciler.status().specs["bbb"].phase, Phase::Ready);
}

/// Issue 33 ("also seen"): on a Debian host with SELinux enforcing and without the local module,
/// the generator could not read the unit folder and status said only `NoSuchUnit: Unit
/// hello.service not found`. It now names the cause and the fix.
#[tokio::test]
async fn regression_33_a_unit_the_generator_did_not_make_says_why_and_what_to_do() {
    let world = World::new("not-generated");
    world.container("a", "x", "restart");
    world.secret("x", Ok("one"));
    world.fault(
        "start a.service",
        SystemdError::Bus("org.freedesktop.systemd1.NoSuchUnit: Unit a.service not found.".into()),
        false,
    );
    let mut reconciler = world.reconciler();
    reconciler.reconcile(Due::All).await;
    let a = &reconciler.status().specs["a"];
    assert!(
        a.message
            .contains("the Quadlet generator did not make it from a.container")
            && a.message.contains("quadlet -dryrun")
            && a.message
                .contains("semodule -i /usr/share/ramlet/selinux/ramlet.cil"),
        "{}",
        a.message
    );
}

/// Issue 33, finding 1, at run time: a valid spec named after a unit the host has (`nginx`, a
/// vendor `nginx.service`) is refused for its name; a spec whose escape hatch names that unit
/// (`Wants=nginx.service`) would pull in the host's unit, so it is refused too, naming it.
#[tokio::test]
async fn regression_33_a_spec_may_not_name_a_unit_the_host_owns() {
    let world = World::new("taken-reference");
    world.container("nginx", "x", "restart");
    world.container("app", "x", "restart");
    let app = std::fs::read_to_string(world.dir.join("specs/app.yaml")).unwrap()
        + "  quadlet:\n    Unit:\n      Wants: nginx.service\n";
    world.spec("app", &app);
    world.secret("x", Ok("one"));
    world
        .host
        .lock()
        .unwrap()
        .foreign_units
        .insert("nginx.service".into());
    let mut reconciler = world.reconciler();
    reconciler.reconcile(Due::All).await;
    assert_eq!(world.take_log(), Vec::<String>::new(), "neither starts");
    let app = &reconciler.status().specs["app"];
    assert_eq!(app.reason.as_str(), "UnitNameTaken");
    assert!(
        app.message
            .contains("names nginx.service, which is not ramlet's"),
        "{}",
        app.message
    );
}

/// `ramlet plan` is a fresh process: it knows no check's answer on what runs now, and runs no
/// check. It shows the gated rotation as it goes if that check passes.
#[tokio::test]
async fn a_fresh_plan_shows_a_gated_rotation_and_runs_no_check() {
    let world = World::new("fresh-plan");
    gated(&world, "a");
    gated(&world, "b");
    world.secret("x", Ok("one"));
    world.reconciler().reconcile(Due::All).await;
    world.secret("x", Ok("two"));
    world.take_log();
    let preview = world.reconciler().preview(Due::All).await.unwrap().text();
    assert!(
        preview.contains("a: write volumes, restart")
            && preview.contains("(first on a)")
            && preview.contains("b: left as it is"),
        "{preview}"
    );
    assert_eq!(world.take_log(), Vec::<String>::new());
}

/// Issue 36: a template file is rendered from its inputs; a new version of one input renders it
/// again and restarts its consumer alone; unchanged inputs change nothing; a key the JSON lacks
/// leaves the spec Degraded on its last file, naming the input and key, never a value.
#[tokio::test]
async fn a_template_is_rendered_again_only_when_an_input_moves() {
    let world = World::new("template");
    world.spec(
        "t",
        "apiVersion: ramlet.dev/v1alpha1\nkind: Container\nmetadata: {name: t}\nspec:\n  image: localhost/busybox\n  \
         volumes:\n    - name: v\n      mountPath: /run/v\n      files:\n        - path: app.env\n          template:\n            \
         inputs: {db: {store: s, name: db}, api: {store: s, name: api}}\n            \
         text: \"URL=pg://{{ db.user }}:{{ db.password | urlencode }}@db\\nTOKEN={{ api }}\\n\"\n",
    );
    world.container("p", "other", "restart");
    world.secret("db", Ok(r#"{"user": "app", "password": "s3/cr:t"}"#));
    world.secret("api", Ok("tok-1"));
    world.secret("other", Ok("o"));
    let mut reconciler = world.reconciler();
    assert!(!reconciler.reconcile(Due::All).await.failed);
    let file = |world: &World| {
        let host = world.host.lock().unwrap();
        let files = &host.volumes[&("t".to_owned(), "v".to_owned())];
        String::from_utf8(files[0].bytes.expose().to_vec()).unwrap()
    };
    assert_eq!(file(&world), "URL=pg://app:s3%2Fcr%3At@db\nTOKEN=tok-1\n");
    let status = reconciler.status();
    let inputs: Vec<String> = status.specs["t"]
        .secrets
        .iter()
        .map(|s| s.id.to_string())
        .collect();
    assert_eq!(inputs, ["s/api", "s/db"]);
    world.take_log();

    // Nothing moved: nothing written, nothing restarted.
    let outcome = reconciler.reconcile(Due::All).await;
    assert!(outcome.actions.is_empty(), "{:?}", outcome.actions);
    assert!(world.take_log().is_empty());

    // One input moves: that file alone is rendered again, its consumer alone restarts.
    world.secret("api", Ok("tok-2"));
    reconciler.reconcile(Due::All).await;
    assert_eq!(world.take_log(), ["write t/v", "restart t.service"]);
    assert_eq!(file(&world), "URL=pg://app:s3%2Fcr%3At@db\nTOKEN=tok-2\n");

    // A key the JSON lacks: Degraded, the last file stays, p is untouched.
    world.secret("db", Ok(r#"{"user": "app", "pass": "s3/cr:t-2"}"#));
    reconciler.reconcile(Due::All).await;
    assert!(world.take_log().is_empty());
    let status = reconciler.status();
    assert_eq!(status.specs["t"].phase, Phase::Degraded);
    assert_eq!(status.specs["t"].reason, Reason::SecretUnavailable);
    assert_eq!(
        status.specs["t"].message,
        "app.env: line 1: input db has no key \"password\""
    );
    assert_eq!(status.specs["p"].phase, Phase::Ready);
    assert_eq!(file(&world), "URL=pg://app:s3%2Fcr%3At@db\nTOKEN=tok-2\n");
}

/// A rotation of one secret among several specs works out that spec alone: the others are
/// settled (no secret version they read and no volume moved), so their secrets are not shaped
/// and their volumes not compared. A spec edited works every spec out again.
#[tokio::test]
async fn a_rotation_works_out_only_the_spec_it_moves() {
    let world = World::new("settled");
    for i in 0..5 {
        world.container(&format!("c{i}"), &format!("s{i}"), "restart");
        world.secret(&format!("s{i}"), Ok("one"));
    }
    let mut reconciler = world.reconciler();
    reconciler.reconcile(Due::All).await;
    reconciler.reconcile(Due::All).await;
    world.take_log();
    let compared = |world: &World| {
        let mut host = world.host.lock().unwrap();
        let n = host.calls.iter().filter(|c| **c == "differs").count();
        host.calls.clear();
        n
    };
    compared(&world);

    world.secret("s3", Ok("two"));
    reconciler.reconcile(Due::All).await;
    assert_eq!(world.take_log(), ["write c3/v", "restart c3.service"]);
    assert_eq!(compared(&world), 1, "only c3's volume is compared");
    // c3 settles again (its new volume compared once), then nothing is compared.
    reconciler.reconcile(Due::All).await;
    assert_eq!(compared(&world), 1);
    reconciler.reconcile(Due::All).await;
    assert_eq!(compared(&world), 0);
    assert!(world.take_log().is_empty());

    // A spec edited: another catalog, every spec worked out again; only c1 changes.
    world.secret("new", Ok("fresh"));
    world.container("c1", "new", "restart");
    reconciler.reconcile(Due::All).await;
    assert_eq!(compared(&world), 5);
    assert_eq!(world.take_log(), ["write c1/v", "restart c1.service"]);
    let host = world.host.lock().unwrap();
    assert_eq!(
        host.volumes[&("c1".to_owned(), "v".to_owned())][0]
            .bytes
            .expose(),
        b"fresh"
    );
}

/// 40 units start all at once (nothing serves yet; the starts' window is wider), and a secret
/// that 40 running containers read restarts them at most 32 at a time (a rolling restart: most
/// keep serving meanwhile). Every one lands.
#[tokio::test]
async fn starts_go_at_once_and_restarts_run_in_a_window() {
    let world = World::new("window");
    for i in 0..40 {
        world.container(&format!("c{i:02}"), "shared", "restart");
    }
    world.secret("shared", Ok("one"));
    world.host.lock().unwrap().side_by_side = true;
    let mut reconciler = world.reconciler();
    assert!(!reconciler.reconcile(Due::All).await.failed);
    let most = |world: &World| std::mem::take(&mut world.host.lock().unwrap().most_jobs_at_once);
    assert_eq!(most(&world), 40, "the cold start");
    world.take_log();

    world.secret("shared", Ok("two"));
    assert!(!reconciler.reconcile(Due::All).await.failed);
    assert_eq!(most(&world), ramlet::reconcile::apply::JOBS_AT_ONCE);
    let restarts = world
        .take_log()
        .iter()
        .filter(|l| l.starts_with("restart "))
        .count();
    assert_eq!(restarts, 40);
}

/// A wake-up for secrets only (a file in a store's folder, a change event) takes the specs as
/// last read: a spec edited meanwhile is picked up by its own file event (or the next timer),
/// not read again at every rotation.
#[tokio::test]
async fn a_wake_up_for_secrets_only_does_not_read_the_specs_again() {
    let world = World::new("secrets-only");
    world.container("a", "x", "restart");
    world.secret("x", Ok("one"));
    let mut reconciler = world.reconciler();
    reconciler.reconcile(Due::All).await;
    world.take_log();

    world.container("a", "x", "reload");
    world.secret("x", Ok("two"));
    // A change event names x.
    assert!(reconciler.notice(ramlet::providers::events::Notice::Event(
        ramlet::providers::events::Event {
            store: "s".into(),
            names: vec!["x".into()],
            what: "PutSecretValue".into(),
            ack: ramlet::providers::events::Ack::new(|| {}),
        }
    )));
    reconciler.reconcile(Due::Secrets).await;
    assert_eq!(
        world.take_log(),
        ["write a/v", "restart a.service"],
        "the rotation, under the spec as last read"
    );
    reconciler.reconcile(Due::Files).await;
    let log = world.take_log();
    assert!(
        log.iter().any(|l| l == "daemon-reload"),
        "the edit, at its own file event: {log:?}"
    );
}
