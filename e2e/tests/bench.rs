//! ramlet against real systemd, the real Quadlet generator and real Podman (user scope, rootless,
//! in the sandbox), side by side with systemd doing the same work by hand in the same run:
//! cold apply, an idle agent, one secret rotated, a change event, a secret shared by every
//! container rotated, a spec edited. N busybox containers, each reading a secret of its own and
//! one they all share (the `file` store, refreshed every 10 s), and one more reading a secret of
//! the GCP fake whose store listens to the Pub/Sub fake (refresh 1 h: only the event brings a
//! new version). N = 20, 100 and 500 (`RAMLET_BENCH_SIZES=20,100,500`).
//!
//! Fair pairs: each measure waits until the host is quiet (no `podman` process of the test user:
//! the clean-up of the last restart is not on the next one's bill), and ramlet and the work by
//! hand take turns going first, round by round.
//!
//! Not part of `scripts/test`: `scripts/bench` runs it (release build) and prints the table that
//! BENCHMARKS.md keeps.

mod common;

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use common::{Agent, Scope, consumer, consumers, container, invocations};

/// The agent's own process (not runuser's): from its pid file.
fn ramlet_pid(agent: &Agent) -> u32 {
    std::fs::read_to_string(agent.dir.join("state/ramlet.pid"))
        .ok()
        .and_then(|t| t.trim().parse().ok())
        .expect("ramlet's pid file")
}

/// CPU time (user + system) `pid` used so far, in ms.
fn cpu_ms(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    // Fields after the command (which is in parentheses and may hold spaces).
    let rest = &stat[stat.rfind(')').unwrap() + 2..];
    let fields: Vec<&str> = rest.split(' ').collect();
    let ticks: f64 = fields[11].parse::<f64>().unwrap() + fields[12].parse::<f64>().unwrap();
    ticks * 10.0 // USER_HZ is 100 on Linux
}

fn rss_mib(pid: u32) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let kib: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0.0);
    kib / 1024.0
}

/// Those of `names` not yet active under an invocation other than in `before`.
fn pending<'a>(agent: &Agent, names: &'a [String], before: &[(String, String)]) -> Vec<&'a String> {
    let now = invocations(&agent.scope, names);
    names
        .iter()
        .filter(|n| {
            !now.iter().any(|(unit, id)| {
                unit == *n && !id.is_empty() && before.iter().all(|(u, b)| u != unit || b != id)
            })
        })
        .collect()
}

/// Waits until every one of `names` is active under an invocation other than in `before`.
fn restarted(agent: &Agent, names: &[String], before: &[(String, String)], what: &str) {
    // A second a unit, at least 5 minutes: 500 restarts together once took over 5 minutes.
    let timeout = Duration::from_secs(u64::try_from(names.len()).unwrap_or(u64::MAX))
        .max(Duration::from_mins(5));
    agent.wait(what, timeout, || {
        pending(agent, names, before).is_empty().then_some(())
    });
}

/// Units the work by hand started a second time after systemd lost their READY=1, as ramlet
/// does (see `by_hand`).
static BY_HAND_AGAIN: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// Times one `systemctl --user <verb>` of `units`, measured the way ramlet's are: the jobs are
/// queued (`--no-block`) and the units watched until each is active under a new invocation
/// (for `stop`: until the command returns). A unit that fails only because systemd lost its
/// READY=1 (`Result=protocol`, exit 0: Podman 4.3 with systemd 252 when several start at once)
/// is started once more at once, as ramlet does, so both sides pay for that the same way.
fn by_hand(agent: &Agent, verb: &str, names: &[String]) -> Result<Duration, String> {
    let before = invocations(&agent.scope, names);
    let mut args = vec!["--user", verb];
    if verb != "stop" {
        args.push("--no-block");
    }
    let units: Vec<String> = names.iter().map(|n| format!("{n}.service")).collect();
    args.extend(units.iter().map(String::as_str));
    let start = Instant::now();
    let output = agent.scope.run("systemctl", &args);
    if !output.status.success() {
        return Err(String::from_utf8_lossy(&output.stderr).trim().to_owned());
    }
    if verb == "stop" {
        return Ok(start.elapsed());
    }
    // As `restarted`, but a unit that fails otherwise ends the wait with its name. A second a
    // unit at least (500 restarts together took ramlet 218-259 s), never under 2 minutes.
    let deadline = Instant::now()
        + Duration::from_secs(1)
            .saturating_mul(u32::try_from(names.len()).unwrap_or(u32::MAX))
            .max(Duration::from_mins(2));
    let mut again = BTreeSet::new();
    loop {
        let pending = pending(agent, names, &before);
        if pending.is_empty() {
            return Ok(start.elapsed());
        }
        for failed in pending.iter().filter(|n| agent.scope.active(n) == "failed") {
            let unit = format!("{failed}.service");
            let why =
                agent
                    .scope
                    .systemctl(&["show", "-p", "Result,ExecMainCode,ExecMainStatus", &unit]);
            let lost_ready = why.contains("Result=protocol") && why.contains("ExecMainStatus=0");
            if lost_ready && again.insert(unit.clone()) {
                BY_HAND_AGAIN.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                agent
                    .scope
                    .run("systemctl", &["--user", "start", "--no-block", &unit]);
                // Until systemd has taken the job up, the unit still reads `failed`.
                let queued = Instant::now();
                while agent.scope.active(failed) == "failed"
                    && queued.elapsed() < Duration::from_secs(5)
                {
                    std::thread::sleep(Duration::from_millis(20));
                }
                continue;
            }
            return Err(format!("{unit} failed ({})", why.replace('\n', " ")));
        }
        if Instant::now() > deadline {
            return Err(format!(
                "{} not up after {} s",
                pending.len(),
                (deadline - start).as_secs()
            ));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A spec edit's twin by hand, with ramlet stopped: the same change made to the unit file
/// ramlet generated for `name` (`from` to `to`), then `systemctl daemon-reload` (the Quadlet
/// generator over every unit file) and a restart of that unit, timed from the edit until it is
/// active under a new invocation.
fn by_hand_edit(agent: &Agent, name: &str, from: &str, to: &str) -> Result<Duration, String> {
    let file = agent.scope.unit_dir().join(format!("{name}.container"));
    let text = std::fs::read_to_string(&file).map_err(|e| format!("{}: {e}", file.display()))?;
    let edited = text.replace(from, to);
    if edited == text {
        return Err(format!("{from} is not in {}", file.display()));
    }
    let start = Instant::now();
    std::fs::write(&file, edited).map_err(|e| e.to_string())?;
    let reload = agent.scope.run("systemctl", &["--user", "daemon-reload"]);
    if !reload.status.success() {
        return Err(String::from_utf8_lossy(&reload.stderr).trim().to_owned());
    }
    by_hand(agent, "restart", &[name.to_owned()])?;
    Ok(start.elapsed())
}

/// Until every one of `names` is `Ready` in ramlet's status (the round before is settled).
fn ready(agent: &Agent, names: &[String]) {
    agent.wait("Ready", Duration::from_mins(2), || {
        let status = agent.status();
        names
            .iter()
            .all(|n| status["specs"][n]["phase"] == "Ready")
            .then_some(())
    });
}

/// Median and range of rounds, ramlet beside by hand; a round whose by-hand jobs failed is
/// counted, not hidden.
fn rows(n: usize, what: &str, ramlet: &[Duration], bare: &[Result<Duration, String>]) {
    // `RAMLET_BENCH_ROUNDS=0`: no row for what was not measured.
    if ramlet.is_empty() {
        return;
    }
    let ms = |d: &Duration| d.as_secs_f64() * 1000.0;
    let stats = |mut v: Vec<f64>| {
        v.sort_by(f64::total_cmp);
        let median = v.get(v.len() / 2).copied().unwrap_or(0.0);
        (
            median,
            v.first().copied().unwrap_or(0.0),
            v.last().copied().unwrap_or(0.0),
        )
    };
    let (r, r_min, r_max) = stats(ramlet.iter().map(ms).collect());
    let ok: Vec<f64> = bare
        .iter()
        .filter_map(|b| b.as_ref().ok())
        .map(ms)
        .collect();
    let failed = bare.len() - ok.len();
    let (b, b_min, b_max) = stats(ok);
    let failed = match bare.iter().find_map(|b| b.as_ref().err()) {
        None => String::new(),
        Some(first) => format!("; {failed} of {} failed, first: {first}", bare.len()),
    };
    println!(
        "| {n} | {what}, median of {} rounds | {r:.0} ({r_min:.0}-{r_max:.0}) | {b:.0} ({b_min:.0}-{b_max:.0}{failed}) | {:.2} |",
        ramlet.len(),
        r / b
    );
}

fn row(n: usize, what: &str, ramlet: Duration, bare: &Result<Duration, String>) {
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    let (bare, ratio) = match bare {
        Ok(b) => (
            format!("{:.0}", ms(*b)),
            format!("{:.2}", ms(ramlet) / ms(*b)),
        ),
        Err(e) => (format!("failed: {e}"), "-".into()),
    };
    println!("| {n} | {what} | {:.0} | {bare} | {ratio} |", ms(ramlet));
}

/// What one size measures, round by round: ramlet's times and the same work's by hand.
#[derive(Default)]
struct Series {
    single: Vec<Duration>,
    single_bare: Vec<Result<Duration, String>>,
    event: Vec<Duration>,
    event_bare: Vec<Result<Duration, String>>,
    shared: Vec<Duration>,
    shared_bare: Vec<Result<Duration, String>>,
}

/// Rotation rounds: one secret rotated (its one consumer restarts; by hand: a restart of that
/// unit), a change event (the GCP version added and announced on Pub/Sub; by hand: a restart of
/// its unit), the shared secret rotated (every consumer restarts; by hand: one restart of all).
fn rotations(agent: &Agent, names: &[String], events: &Events, rounds: usize) -> Series {
    let mut series = Series::default();
    let all: Vec<String> = names.iter().cloned().chain([events.name.clone()]).collect();
    for round in 0..rounds {
        // Each round starts a unit up to 4 times; systemd refuses a 6th start within 10 s
        // (StartLimitBurst=5, StartLimitIntervalSec=10s: `Result=start-limit-hit`), a guard
        // against crash loops that back-to-back rounds would trip. Rounds start 11 s apart.
        let round_started = Instant::now();
        let (r, b) = pair(
            agent,
            round,
            &mut || {
                let before = invocations(&agent.scope, names);
                let start = Instant::now();
                agent.secret("own0", &format!("own-0-{round}"));
                restarted(agent, &names[..1], &before, "the one consumer restarted");
                let took = start.elapsed();
                ready(agent, &all);
                took
            },
            &mut || by_hand(agent, "restart", &names[..1]),
        );
        series.single.push(r);
        series.single_bare.push(b);

        let (r, b) = pair(
            agent,
            round,
            &mut || {
                let unit = std::slice::from_ref(&events.name);
                let before = invocations(&agent.scope, unit);
                let start = Instant::now();
                events.announce(&format!("event-{round}"));
                restarted(agent, unit, &before, "the event's consumer restarted");
                let took = start.elapsed();
                ready(agent, &all);
                took
            },
            &mut || by_hand(agent, "restart", std::slice::from_ref(&events.name)),
        );
        series.event.push(r);
        series.event_bare.push(b);

        let (r, b) = pair(
            agent,
            round,
            &mut || {
                let before = invocations(&agent.scope, names);
                let start = Instant::now();
                agent.secret("shared", &format!("shared-{round}"));
                restarted(agent, names, &before, "every consumer restarted");
                let took = start.elapsed();
                ready(agent, &all);
                took
            },
            &mut || by_hand(agent, "restart", names),
        );
        series.shared.push(r);
        series.shared_bare.push(b);
        std::thread::sleep(START_LIMIT_INTERVAL.saturating_sub(round_started.elapsed()));
    }
    series
}

/// The GCP fake and the Pub/Sub fake, and the container that reads their secret.
struct Events {
    name: String,
    gcp: ramlet_e2e::peers::Gcp,
    _pubsub: ramlet_e2e::peers::PubSub,
    runtime: tokio::runtime::Runtime,
    publisher: google_cloud_pubsub::client::Publisher,
}

impl Events {
    const SECRET: &str = "bench-event";

    fn start(agent: &Agent, name: String) -> Self {
        let gcp = ramlet_e2e::peers::Gcp::start(&agent.dir);
        let (project, _) = ramlet_e2e::peers::GCP_PROJECT;
        let subscription = format!("projects/{project}/subscriptions/ramlet");
        let topic = format!("projects/{project}/topics/secret-events");
        let pubsub = ramlet_e2e::peers::PubSub::start(&agent.dir, &[(&subscription, &topic)]);
        let runtime = tokio::runtime::Runtime::new().unwrap();
        let publisher = runtime.block_on(async {
            google_cloud_pubsub::client::Publisher::builder(topic.clone())
                .with_endpoint(pubsub.endpoint())
                .with_credentials(google_cloud_auth::credentials::anonymous::Builder::new().build())
                .build()
                .await
                .unwrap()
        });
        gcp.create(Self::SECRET);
        gcp.add_version(Self::SECRET, b"event-first");
        agent.spec(
            "gcp-store",
            &format!(
                "apiVersion: ramlet.dev/v1alpha1\nkind: SecretStore\nmetadata: {{name: gcp}}\nspec:\n  refreshInterval: 1h\n  gcp:\n    project: {project}\n    endpoint: \"{}\"\n    events: {{subscription: \"{subscription}\", endpoint: \"{}\", fallbackInterval: 1h}}\n",
                gcp.endpoint(),
                pubsub.endpoint()
            ),
        );
        agent.spec(
            &name,
            &container(&name, &[("e", "0400", "e")], "restart", "one").replace(
                "{store: local, name: e}",
                &format!("{{store: gcp, name: {}}}", Self::SECRET),
            ),
        );
        Self {
            name,
            gcp,
            _pubsub: pubsub,
            runtime,
            publisher,
        }
    }

    /// A new version of the secret, then its Pub/Sub message, as Secret Manager sends it.
    fn announce(&self, value: &str) {
        let n = self.gcp.add_version(Self::SECRET, value.as_bytes());
        let number = ramlet_e2e::peers::GCP_PROJECT.1;
        let version = format!("projects/{number}/secrets/{}/versions/{n}", Self::SECRET);
        let message = google_cloud_pubsub::model::Message::new()
            .set_data(format!(r#"{{"name": "{version}", "state": "ENABLED"}}"#))
            .set_attributes([
                ("eventType".to_owned(), "SECRET_VERSION_ADD".to_owned()),
                (
                    "secretId".to_owned(),
                    format!("projects/{number}/secrets/{}", Self::SECRET),
                ),
                ("versionId".to_owned(), version),
                ("dataFormat".to_owned(), "JSON_API_V1".to_owned()),
            ]);
        self.runtime
            .block_on(async { self.publisher.publish(message).await.unwrap() });
    }
}

/// ramlet's own account of the long rounds: starts it made again at once after systemd lost a
/// READY=1, and actions that failed all the same.
fn log_account(agent: &Agent, n: usize) {
    let log = agent.log();
    let retried = log
        .lines()
        .filter(|l| l.contains("starting it again at once"))
        .count();
    let failed: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("action failed"))
        .collect();
    println!(
        "\nN = {n}, ramlet's log: {retried} starts made again at once after a lost READY=1; {} actions failed. By hand: {} starts made again the same way",
        failed.len(),
        BY_HAND_AGAIN.swap(0, std::sync::atomic::Ordering::Relaxed)
    );
    for line in failed.iter().take(5) {
        println!("    {line}");
    }
}

/// A measure over 5 s: prints what ramlet logged meanwhile (from line `log_before` on), for
/// whoever reads the bench's output.
fn explain_slow(agent: &Agent, n: usize, what: &str, took: Duration, log_before: usize) {
    if took > Duration::from_secs(5) {
        println!("N = {n}: {what} took {took:?}; ramlet's log meanwhile:");
        for line in agent.log().lines().skip(log_before).take(40) {
            println!("    {line}");
        }
    }
}

/// Removes every container of the scope's Podman and waits (up to 10 minutes) until none is
/// left: the bench before this one removes its hundreds as its agent goes, and a cold apply
/// among their clean-up measures that clean-up.
fn no_containers(agent: &Agent) {
    // An earlier run's containers (a bench interrupted, or a sandbox ended before its units
    // were stopped) would otherwise be replaced one by one inside the measure (`--replace`).
    let _ = agent
        .scope
        .run("podman", &["rm", "--all", "--force", "--time", "0"]);
    let start = Instant::now();
    while start.elapsed() < Duration::from_mins(10) {
        let listed = agent.scope.run("podman", &["ps", "-aq"]);
        if listed.status.success() && listed.stdout.iter().all(u8::is_ascii_whitespace) {
            return;
        }
        std::thread::sleep(Duration::from_secs(1));
    }
    println!("(containers were still there after 10 minutes; the cold apply shares the host)");
}

/// The quiet time before each measure, once no `podman` process of the test user is left.
const PAUSE: Duration = Duration::from_secs(1);

/// Waits until no `podman` process of the scope's user runs (the `podman rm` and `podman
/// container cleanup` that follow a restart, which take longer the more containers there are;
/// not ramlet's volume helper), then `PAUSE`; returns how long it waited.
fn quiet(agent: &Agent) -> Duration {
    let uid = std::process::Command::new("id")
        .args(["-u", &agent.scope.user])
        .output()
        .ok()
        .and_then(|o| {
            String::from_utf8_lossy(&o.stdout)
                .trim()
                .parse::<u32>()
                .ok()
        })
        .unwrap_or(0);
    let busy = || {
        std::fs::read_dir("/proc")
            .into_iter()
            .flatten()
            .flatten()
            .any(|entry| {
                let path = entry.path();
                std::fs::read_to_string(path.join("comm")).is_ok_and(|c| c.trim() == "podman")
                    // ramlet's volume helper (`podman unshare ramlet volume-helper serve`)
                    // stays for the agent's life: it is not a clean-up.
                    && !is_volume_helper(&path)
                    && std::fs::read_to_string(path.join("status")).is_ok_and(|s| {
                        s.lines()
                            .find_map(|l| l.strip_prefix("Uid:"))
                            .and_then(|l| l.split_whitespace().next()?.parse::<u32>().ok())
                            == Some(uid)
                    })
            })
    };
    let start = Instant::now();
    while busy() && start.elapsed() < Duration::from_mins(2) {
        std::thread::sleep(Duration::from_millis(100));
    }
    std::thread::sleep(PAUSE);
    start.elapsed()
}

/// One measure of ramlet and its twin by hand, each after [`quiet`], in the order `round`
/// picks (even: ramlet first): neither side always follows the other's clean-up.
fn pair(
    agent: &Agent,
    round: usize,
    ramlet: &mut dyn FnMut() -> Duration,
    by_hand: &mut dyn FnMut() -> Result<Duration, String>,
) -> (Duration, Result<Duration, String>) {
    if round.is_multiple_of(2) {
        quiet(agent);
        let r = ramlet();
        quiet(agent);
        (r, by_hand())
    } else {
        quiet(agent);
        let b = by_hand();
        quiet(agent);
        (ramlet(), b)
    }
}

/// systemd's default `StartLimitIntervalSec=`, and a second more.
const START_LIMIT_INTERVAL: Duration = Duration::from_secs(11);

/// Rootless Podman's crun gives each container a session keyring, and the kernel lets a user
/// other than root hold 200 keys (`kernel.keys.maxkeys`): the user's 99th container fails with
/// `create keyring ...: Disk quota exceeded` (exit 126). The bench's user turns those keyrings
/// off in its own containers.conf (docs/OPERATIONS.md says the same for a real host), at every
/// N, so all sizes run alike.
fn no_keyrings(scope: &Scope) {
    let folder = scope.runtime.join("e2e-config/containers");
    std::fs::create_dir_all(&folder).unwrap();
    std::fs::write(
        folder.join("containers.conf"),
        "[containers]\nkeyring = false\n",
    )
    .unwrap();
    let status = std::process::Command::new("chown")
        .args(["-R", &scope.user])
        .arg(&folder)
        .status()
        .unwrap();
    assert!(status.success());
}

#[allow(clippy::too_many_lines)] // one bench, measure after measure
fn run(n: usize) {
    let scope = Scope::user();
    no_keyrings(&scope);
    let mut agent = Agent::new(scope, &format!("bench{n}"));
    agent.spec(
        "store",
        &format!(
            "apiVersion: ramlet.dev/v1alpha1\nkind: SecretStore\nmetadata: {{name: local}}\nspec:\n  refreshInterval: 10s\n  file: {{directory: {}}}\n",
            agent.dir.join("secrets").display()
        ),
    );
    let names: Vec<String> = (0..n).map(|i| format!("b{n}-{i:03}")).collect();
    consumers(&agent, &names);
    let events = Events::start(&agent, format!("b{n}-evt"));
    let all: Vec<String> = names.iter().cloned().chain([events.name.clone()]).collect();

    // Cold apply: every unit written and started, from nothing, from a quiet host with no
    // container left of an earlier bench.
    no_containers(&agent);
    quiet(&agent);
    let cold = Instant::now();
    agent.start();
    restarted(&agent, &all, &[], "every container up");
    let cold = cold.elapsed();
    let pid = ramlet_pid(&agent);
    let cold_cpu = cpu_ms(pid);
    ready(&agent, &all);

    // Idle: two refreshes of the store, nothing changes, from a quiet host.
    quiet(&agent);
    let log_before = agent.log().lines().count();
    let (cpu_before, idle) = (cpu_ms(pid), Instant::now());
    std::thread::sleep(Duration::from_secs(25));
    let idle_cpu = cpu_ms(pid) - cpu_before;
    let idle_secs = idle.elapsed().as_secs_f64();
    let log = agent.log();
    let took: Vec<u64> = log
        .lines()
        .skip(log_before)
        // The loop's line: `reconciled: 0 actions, 3 ms actions=0 failed=false took_ms=3`.
        .filter(|l| l.contains("reconciled: 0 actions"))
        .filter_map(|l| l.split("took_ms=").nth(1)?.trim().parse().ok())
        .collect();
    let rss = rss_mib(pid);

    // Rotations, in alternating rounds beside the same restarts by hand (Podman's start times
    // on this shared host vary a lot from one moment to the next: medians, and every round).
    let rounds: usize = std::env::var("RAMLET_BENCH_ROUNDS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(5);
    // Fewer rounds at N = 500: a shared restart there takes minutes.
    let rounds = if n >= 500 { rounds.min(3) } else { rounds };
    let series = rotations(&agent, &names, &events, rounds);

    // A spec edited, in rounds: that container restarts (its 60 ms quiet time included).
    let edited = std::slice::from_ref(&names[2 % n]);
    let mut edits = Vec::new();
    let mut mark = "one".to_owned();
    for round in 0..rounds.max(1) {
        // systemd refuses a sixth start of a unit within 10 s.
        std::thread::sleep(START_LIMIT_INTERVAL);
        quiet(&agent);
        mark = format!("edit{round}");
        let before = invocations(&agent.scope, edited);
        let log_before = agent.log().lines().count();
        let edit = Instant::now();
        agent.spec(&edited[0], &consumer(&edited[0], 2 % n, &mark));
        restarted(&agent, edited, &before, "the edited container");
        let edit = edit.elapsed();
        explain_slow(&agent, n, "the spec edit", edit, log_before);
        edits.push(edit);
        ready(&agent, edited);
    }

    // Cold start by hand: ramlet stopped (the containers keep running), every unit stopped,
    // then one `systemctl start` of them all. First the spec edit's twins by hand, as many, on
    // the unit ramlet generated.
    agent.stop();
    let mut edits_bare = Vec::new();
    for round in 0..edits.len() {
        std::thread::sleep(START_LIMIT_INTERVAL);
        quiet(&agent);
        let next = format!("hand{round}");
        edits_bare.push(by_hand_edit(
            &agent,
            &edited[0],
            &format!("MARK={mark}"),
            &format!("MARK={next}"),
        ));
        mark = next;
    }
    quiet(&agent);
    let _ = by_hand(&agent, "stop", &all);
    quiet(&agent);
    let start_bare = by_hand(&agent, "start", &all);

    row(
        n,
        "cold apply: all N + 1 active (vs one `systemctl start` of the generated units)",
        cold,
        &start_bare,
    );
    rows(
        n,
        "one secret rotated: its consumer restarted (vs a restart of it by hand)",
        &series.single,
        &series.single_bare,
    );
    rows(
        n,
        "change event (Pub/Sub): its consumer restarted (vs a restart of it by hand)",
        &series.event,
        &series.event_bare,
    );
    rows(
        n,
        &format!("shared secret rotated: all {n} restarted (vs one `systemctl restart` of all)"),
        &series.shared,
        &series.shared_bare,
    );
    rows(
        n,
        "spec edited: its container restarted (vs the same edit to its unit file, `systemctl daemon-reload` and a restart by hand)",
        &edits,
        &edits_bare,
    );
    let median = |mut v: Vec<u64>| {
        v.sort_unstable();
        v.get(v.len() / 2).copied().unwrap_or(0)
    };
    println!(
        "| {n} | idle: {} no-op reconciles in {idle_secs:.0} s, median {} ms wall each; agent CPU {:.0} ms in all; RSS {rss:.1} MiB; CPU for the cold apply {cold_cpu:.0} ms | | | |",
        took.len(),
        median(took.clone()),
        idle_cpu
    );
    log_account(&agent, n);
}

#[test]
#[ignore = "a benchmark: scripts/bench runs it in the sandbox"]
fn sandbox_benchmark() {
    let sizes = std::env::var("RAMLET_BENCH_SIZES").unwrap_or_else(|_| "20,100,500".into());
    println!("| N | measure | ramlet ms | systemd by hand ms | ratio |");
    println!("| --- | --- | --- | --- | --- |");
    for n in sizes.split(',').filter_map(|s| s.trim().parse().ok()) {
        run(n);
    }
}

/// What a restart costs right after a restart of every unit, beside the same restart once the
/// host is quiet: the first is what a bench that pauses a fixed 2 s measures (the clean-up of the
/// last mass restart, a `podman rm` and a `podman container cleanup` per container, is still
/// running), the second what a quiet host gives. No ramlet in the measures: it only writes the
/// units, then stops (the containers run on). `RAMLET_BENCH_SIZES` as above (default 100).
#[test]
#[ignore = "a benchmark: run it in the sandbox by hand (BENCHMARKS.md says how)"]
fn restart_right_after_a_mass_restart() {
    let n = first_size();
    no_keyrings(&Scope::user());
    let mut agent = Agent::new(Scope::user(), &format!("cleanup{n}"));
    let names: Vec<String> = (0..n).map(|i| format!("c{n}-{i:03}")).collect();
    consumers(&agent, &names);
    agent.start();
    restarted(&agent, &names, &[], "every container up");
    ready(&agent, &names);
    agent.stop();
    println!(
        "| N | round | one restart 2 s after a restart of all {n}, ms | the same once no podman process is left, ms | waited for quiet, ms |"
    );
    println!("| --- | --- | --- | --- | --- |");
    for round in 1..=3 {
        quiet(&agent);
        let _ = by_hand(&agent, "restart", &names);
        std::thread::sleep(Duration::from_secs(2));
        let busy = by_hand(&agent, "restart", &names[1..2]);
        std::thread::sleep(START_LIMIT_INTERVAL);
        let waited = quiet(&agent);
        let calm = by_hand(&agent, "restart", &names[1..2]);
        let ms = |r: &Result<Duration, String>| {
            r.as_ref()
                .map_or_else(|e| format!("failed: {e}"), |d| format!("{}", d.as_millis()))
        };
        println!(
            "| {n} | {round} | {} | {} | {} |",
            ms(&busy),
            ms(&calm),
            waited.as_millis()
        );
        std::thread::sleep(START_LIMIT_INTERVAL);
    }
}

/// The probes' N: the first of `RAMLET_BENCH_SIZES`, else 100.
fn first_size() -> usize {
    std::env::var("RAMLET_BENCH_SIZES")
        .ok()
        .and_then(|s| s.split(',').next()?.trim().parse().ok())
        .unwrap_or(100)
}

/// Seconds since midnight (UTC) of a log line's RFC 3339 timestamp (`2026-12-03T13:31:29.075789Z`).
fn log_time(line: &str) -> Option<f64> {
    let time = line
        .split_whitespace()
        .next()?
        .split('T')
        .nth(1)?
        .trim_end_matches('Z');
    let mut parts = time.split(':');
    let h: f64 = parts.next()?.parse().ok()?;
    let m: f64 = parts.next()?.parse().ok()?;
    let s: f64 = parts.next()?.parse().ok()?;
    Some(h * 3600.0 + m * 60.0 + s)
}

/// Now, as seconds since midnight UTC (the log's clock).
fn now_of_day() -> f64 {
    let since = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap();
    f64::from(u32::try_from(since.as_secs() % 86_400).unwrap_or(0))
        + f64::from(since.subsec_micros()) / 1e6
}

/// A probe's agent, started: `n` consumers (`<letter><n>-<i>`) of a `file` store refreshed every
/// `refresh`, with ramlet's debug log (the reconcile's own steps, "observed: specs .. ms, ...",
/// are logged at debug level); returns once every one is up and `Ready`.
fn probe_agent(tag: &str, letter: char, n: usize, refresh: &str) -> (Agent, Vec<String>) {
    no_keyrings(&Scope::user());
    let mut agent = Agent::new(Scope::user(), &format!("{tag}{n}"));
    agent
        .envs
        .push(("RAMLET_LOG".into(), "ramlet=debug".into()));
    agent.spec(
        "store",
        &format!(
            "apiVersion: ramlet.dev/v1alpha1\nkind: SecretStore\nmetadata: {{name: local}}\nspec:\n  refreshInterval: {refresh}\n  file: {{directory: {}}}\n",
            agent.dir.join("secrets").display()
        ),
    );
    let names: Vec<String> = (0..n).map(|i| format!("{letter}{n}-{i:03}")).collect();
    consumers(&agent, &names);
    agent.start();
    restarted(&agent, &names, &[], "every container up");
    ready(&agent, &names);
    (agent, names)
}

/// Where one rotation's time goes inside ramlet, from its own log: the file written -> the new
/// version read (the watcher's debounce and the refresh) -> the volume written (the rest of the
/// reconcile before the jobs) -> the restart job done -> the reconcile's end.
#[test]
#[ignore = "a benchmark: run it in the sandbox by hand (BENCHMARKS.md says how)"]
fn where_a_rotation_spends_its_time() {
    let n = first_size();
    let (agent, names) = probe_agent("spend", 't', n, "1h");
    println!(
        "| N | round | read ms | volume written ms | restart done ms | reconcile ended ms | container active ms |"
    );
    println!("| --- | --- | --- | --- | --- | --- | --- |");
    for round in 0..5 {
        quiet(&agent);
        let lines_before = agent.log().lines().count();
        let before = invocations(&agent.scope, &names[..1]);
        let written = now_of_day();
        let start = Instant::now();
        agent.secret("own0", &format!("spend-{round}"));
        restarted(&agent, &names[..1], &before, "the consumer restarted");
        let active = start.elapsed();
        std::thread::sleep(Duration::from_millis(500));
        let log = agent.log();
        let after: Vec<&str> = log.lines().skip(lines_before).collect();
        let at = |needle: &str| {
            after
                .iter()
                .find(|l| l.contains(needle))
                .and_then(|l| log_time(l))
                .map_or_else(
                    || "-".to_owned(),
                    |t| format!("{:.0}", (t - written) * 1000.0),
                )
        };
        println!(
            "| {n} | {round} | {} | {} | {} | {} | {} |",
            at("new secret version"),
            at("write-volumes"),
            at("restart "),
            at("reconciled:"),
            active.as_millis()
        );
        if let Some(line) = after.iter().find(|l| l.contains("observed:")) {
            println!(
                "|   | {}",
                line.split("observed:").nth(1).unwrap_or_default().trim()
            );
        }
        // What the file event made ramlet read: one secret, or every local one.
        if let Some(line) = after.iter().find(|l| l.contains("asking the stores")) {
            println!(
                "|   | {}",
                line.split("asking the stores")
                    .nth(1)
                    .unwrap_or_default()
                    .trim()
            );
        }
        ready(&agent, &names);
    }
}

/// Where an idle agent's time goes at N (`RAMLET_BENCH_SIZES`, first size, default 100): N
/// consumers of a `file` store refreshed every 10 s, started, then 25 s of a quiet host with
/// ramlet's debug log, printing each reconcile's steps ("observed: specs .. ms, ...") and its
/// length, the agent's CPU in the window and its RSS after.
#[test]
#[ignore = "a benchmark: run it in the sandbox by hand (BENCHMARKS.md says how)"]
fn where_an_idle_agent_spends_its_time() {
    let n = first_size();
    let (agent, _names) = probe_agent("idle", 'i', n, "10s");
    let pid = ramlet_pid(&agent);
    quiet(&agent);
    let log_before = agent.log().lines().count();
    let cpu_before = cpu_ms(pid);
    std::thread::sleep(Duration::from_secs(25));
    let cpu = cpu_ms(pid) - cpu_before;
    let rss = rss_mib(pid);
    let log = agent.log();
    for line in log.lines().skip(log_before) {
        for needle in ["observed:", "reconciled:", "asking the stores"] {
            if let Some(rest) = line.split(needle).nth(1) {
                println!("| {n} | {needle} {}", rest.trim());
            }
        }
    }
    println!("| {n} | idle 25 s: agent CPU {cpu:.0} ms, RSS {rss:.1} MiB");
}

/// Issue 35: the `openbao` store against a real OpenBao server (`bao server -dev`), N = 20 and
/// 100 (`RAMLET_BENCH_SIZES`): N busybox containers, each reading a KV secret of its own and one
/// they all share, refresh 10 s (the shortest). A rotation is timed from `bao kv put` to the
/// consumers active under a new invocation, so it holds the wait for the next metadata check
/// (0 to 10 s, OpenBao has no change events), beside the same restart by hand; and once with
/// `ramlet sync` right after the write, which skips that wait. Then the calls an
/// idle host makes: every request the server served in 60 s, from its audit log, per secret
/// and hour.
#[test]
#[ignore = "a benchmark: scripts/bench runs it in the sandbox"]
fn openbao_benchmark() {
    let sizes = std::env::var("RAMLET_BENCH_SIZES").unwrap_or_else(|_| "20,100".into());
    println!(
        "| N | measure (openbao store, refresh 10 s) | ramlet ms | systemd by hand ms | ratio |"
    );
    println!("| --- | --- | --- | --- | --- |");
    for n in sizes
        .split(',')
        .filter_map(|s| s.trim().parse().ok())
        .filter(|n| *n <= 100)
    {
        run_openbao(n);
    }
}

fn run_openbao(n: usize) {
    let scope = Scope::user();
    no_keyrings(&scope);
    let mut agent = Agent::new(scope, &format!("bao{n}"));
    let bao = ramlet_e2e::openbao::Bao::start(&agent.dir.join("bao"));
    agent.spec("bao", &common::openbao_store(&agent, &bao, &["bench/*"]));
    bao.put("bench/shared", &[("v", "shared-initial")]);
    let names: Vec<String> = (0..n).map(|i| format!("o{n}-{i:03}")).collect();
    for (i, name) in names.iter().enumerate() {
        bao.put(&format!("bench/own{i}"), &[("v", &format!("own-{i}"))]);
        agent.spec(
            name,
            &consumer(name, i, "one")
                .replace(
                    "{store: local, name: shared}",
                    "{store: bao, name: bench/shared, property: v}",
                )
                .replace(
                    &format!("{{store: local, name: own{i}}}"),
                    &format!("{{store: bao, name: bench/own{i}, property: v}}"),
                ),
        );
    }
    agent.start();
    restarted(&agent, &names, &[], "every container up");
    ready(&agent, &names);

    // Idle: what the server serves in 60 s, per secret and hour.
    let requests = || {
        let log = std::fs::read_to_string(agent.dir.join("bao/audit.log")).unwrap_or_default();
        let count = |what: &str| {
            log.lines()
                .filter(|l| {
                    l.contains("\"type\":\"request\"")
                        && l.contains(what)
                        && !l.contains("\"policies\":[\"root\"]")
                })
                .count()
        };
        (
            count("\"path\":\"secret/metadata/"),
            count("\"path\":\"secret/data/"),
            count("\"path\":\"auth/"),
        )
    };
    let (meta0, data0, auth0) = requests();
    let idle = Instant::now();
    std::thread::sleep(Duration::from_mins(1));
    let (meta1, data1, auth1) = requests();
    let idle = idle.elapsed().as_secs_f64();
    #[allow(clippy::cast_precision_loss)]
    let per_hour = |calls: usize| calls as f64 / (n + 1) as f64 * 3600.0 / idle;

    let rounds: usize = std::env::var("RAMLET_BENCH_ROUNDS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(5);
    let mut series = Series::default();
    // One write (and what follows it) timed until `affected` restarted, beside their restart by
    // hand, in `round`'s order.
    let measure = |round: usize, write: &dyn Fn(), affected: &[String]| {
        pair(
            &agent,
            round,
            &mut || {
                let before = invocations(&agent.scope, &names);
                let start = Instant::now();
                write();
                restarted(
                    &agent,
                    affected,
                    &before,
                    "the written secret's consumers restarted",
                );
                let took = start.elapsed();
                ready(&agent, &names);
                took
            },
            &mut || by_hand(&agent, "restart", affected),
        )
    };
    for round in 0..rounds {
        let round_started = Instant::now();
        let (r, b) = measure(
            round,
            &|| {
                bao.put("bench/own0", &[("v", &format!("own-0-{round}"))]);
            },
            &names[..1],
        );
        series.single.push(r);
        series.single_bare.push(b);
        // The same, told at once: `bao kv put` then `ramlet sync` (what the job that writes the
        // secret can do instead of waiting for the next check).
        let (r, b) = measure(
            round,
            &|| {
                bao.put("bench/own1", &[("v", &format!("own-1-{round}"))]);
                ramlet::agent::sync(&agent.dir.join("state")).unwrap();
            },
            &names[1..2],
        );
        series.event.push(r);
        series.event_bare.push(b);
        let (r, b) = measure(
            round,
            &|| {
                bao.put("bench/shared", &[("v", &format!("shared-{round}"))]);
            },
            &names,
        );
        series.shared.push(r);
        series.shared_bare.push(b);
        std::thread::sleep(START_LIMIT_INTERVAL.saturating_sub(round_started.elapsed()));
    }
    agent.stop();
    rows(
        n,
        "`bao kv put` of one secret: its consumer restarted (vs a restart of it by hand)",
        &series.single,
        &series.single_bare,
    );
    rows(
        n,
        "`bao kv put` of one secret, then `ramlet sync`: its consumer restarted (vs a restart of it by hand)",
        &series.event,
        &series.event_bare,
    );
    rows(
        n,
        &format!(
            "`bao kv put` of the shared secret: all {n} restarted (vs one `systemctl restart` of all)"
        ),
        &series.shared,
        &series.shared_bare,
    );
    println!(
        "| {n} | idle, {} secrets for {:.0} s: {} metadata reads, {} data reads, {} auth calls: {:.0} calls per secret per hour | | | |",
        n + 1,
        idle,
        meta1 - meta0,
        data1 - data0,
        auth1 - auth0,
        per_hour(meta1 - meta0 + data1 - data0 + auth1 - auth0),
    );
}

/// Issue 36: a rotation through a template beside a plain secret's, at N consumers of one
/// store (`RAMLET_BENCH_SIZES`, default 100; `RAMLET_BENCH_ROUNDS`, default 5). Consumer 0
/// reads `own0` as a plain file, consumer 1 reads `own1` through a template (`{{ own }}`); each
/// round rotates both in turn (the order alternating) and times each until its consumer
/// restarted. The ratio is template over plain.
#[test]
#[ignore = "a benchmark: scripts/bench runs it in the sandbox"]
fn template_benchmark() {
    beside(
        "tpl",
        "one secret rotated: its consumer restarted, through a template (vs a plain secret file)",
        "          template: {inputs: {own: {store: local, name: own1}}, text: \"{{ own }}\"}\n",
    );
}

/// Issue 37: a rotation of a file with a subordinate owner (`uid: 101`, written by the rootless
/// helper inside Podman's ID mapping) beside a plain one's, as `template_benchmark` measures
/// (consumer 1's `own1` belongs to the container's uid 101). The ratio is owned over plain.
#[test]
#[ignore = "a benchmark: scripts/bench runs it in the sandbox"]
fn owners_benchmark() {
    beside(
        "own",
        "one secret rotated: its consumer restarted, its file owned by the container's uid 101 (vs root's)",
        "          uid: 101\n          gid: 101\n          secret: {store: local, name: own1}\n",
    );
}

/// Times rotations of consumer 1's `own1`, read as `file` says, beside consumer 0's plain
/// `own0`, at each N of `RAMLET_BENCH_SIZES` (default 100).
fn beside(tag: &str, what: &str, file: &str) {
    let sizes = std::env::var("RAMLET_BENCH_SIZES").unwrap_or_else(|_| "100".into());
    println!("| N | measure (file store) | this ms | plain secret ms | ratio |");
    println!("| --- | --- | --- | --- | --- |");
    for n in sizes
        .split(',')
        .filter_map(|s| s.trim().parse().ok())
        .filter(|n| *n >= 2)
    {
        run_beside(n, tag, what, file);
    }
}

fn run_beside(n: usize, tag: &str, what: &str, file: &str) {
    let scope = Scope::user();
    no_keyrings(&scope);
    let mut agent = Agent::new(scope, &format!("{tag}{n}"));
    let names: Vec<String> = (0..n).map(|i| format!("{}{n}-{i:03}", &tag[..1])).collect();
    consumers(&agent, &names);
    agent.spec(
        &names[1],
        &consumer(&names[1], 1, "one")
            .replace("          secret: {store: local, name: own1}\n", file),
    );
    agent.start();
    restarted(&agent, &names, &[], "every container up");
    ready(&agent, &names);
    let rounds: usize = std::env::var("RAMLET_BENCH_ROUNDS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(5);
    let rotate = |i: usize, round: usize| {
        quiet(&agent);
        let before = invocations(&agent.scope, &names);
        let start = Instant::now();
        agent.secret(&format!("own{i}"), &format!("own-{i}-{round}"));
        restarted(&agent, &names[i..=i], &before, "its consumer restarted");
        let took = start.elapsed();
        ready(&agent, &names);
        took
    };
    let (mut this, mut plain) = (Vec::new(), Vec::new());
    let rounds_from = now_of_day();
    for round in 0..rounds {
        if round.is_multiple_of(2) {
            this.push(rotate(1, round));
            plain.push(Ok(rotate(0, round)));
        } else {
            plain.push(Ok(rotate(0, round)));
            this.push(rotate(1, round));
        }
    }
    rows(n, what, &this, &plain);
    // From ramlet's log: a new version seen -> its consumer's restart done, in the rounds.
    let log = agent.log();
    for i in [1, 0] {
        let mut part = own_part(
            &log,
            &format!("local/own{i}: new secret version"),
            rounds_from,
        );
        part.sort_by(f64::total_cmp);
        println!("N = {n}: own{i}, new version seen -> restart done, ms: {part:.1?}");
    }
    let (count, rss, pss) = helper_memory();
    if count > 0 {
        println!(
            "N = {n}: the volume helper's {count} processes (systemd-run, podman unshare, ramlet): {rss:.1} MiB RSS, {pss:.1} MiB PSS"
        );
    }
}

/// For each line of `log` with `seen` after `from` (seconds since midnight UTC), ms to the next
/// restart logged (`restart ... (its secrets changed)`, logged once the job is done).
fn own_part(log: &str, seen: &str, from: f64) -> Vec<f64> {
    let mut lines = log.lines();
    let mut part = Vec::new();
    while let Some(line) = lines.next() {
        if !line.contains(seen) || log_time(line).is_none_or(|t| t < from) {
            continue;
        }
        let restart = lines
            .by_ref()
            .find(|l| l.contains(": restart ") && l.contains("(its secrets changed)"));
        if let (Some(from), Some(to)) = (log_time(line), restart.and_then(log_time)) {
            part.push((to - from) * 1000.0);
        }
    }
    part
}

/// Whether the process at `/proc/<pid>` is part of ramlet's volume helper (`volume-helper` in
/// its command line).
fn is_volume_helper(proc: &std::path::Path) -> bool {
    std::fs::read(proc.join("cmdline")).is_ok_and(|c| c.windows(13).any(|w| w == b"volume-helper"))
}

/// The processes of ramlet's volume helper (`volume-helper` in their command line): how many,
/// and their RSS and PSS summed, in MiB.
fn helper_memory() -> (usize, f64, f64) {
    let field = |rollup: &str, name: &str| {
        rollup
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|l| l.split_whitespace().next()?.parse::<f64>().ok())
            .unwrap_or(0.0)
            / 1024.0
    };
    std::fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .flatten()
        .filter(|entry| is_volume_helper(&entry.path()))
        .filter_map(|entry| std::fs::read_to_string(entry.path().join("smaps_rollup")).ok())
        .fold((0, 0.0, 0.0), |(count, rss, pss), rollup| {
            (
                count + 1,
                rss + field(&rollup, "Rss:"),
                pss + field(&rollup, "Pss:"),
            )
        })
}
