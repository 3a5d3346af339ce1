//! What the reconciler itself costs at scale: N = 100 and 1,000 container specs (each with a
//! secret of its own, a tenth of them sharing one more), reconciled against the in-memory fakes
//! of systemd, the volumes and a secret provider that the tests use (`tests/fakes`): no Podman,
//! no D-Bus, so these figures are ramlet's own work, and the calls it would make are counted.
//! The real sandbox figures (N = 10 and 100 containers) come from `scripts/bench`.
//!
//! `cargo bench -p ramlet --bench reconcile` prints one table; BENCHMARKS.md keeps it.

#[path = "../tests/fakes/mod.rs"]
mod fakes;

use std::time::{Duration, Instant};

use fakes::World;
use ramlet::providers::stores::Due;
use ramlet::reconcile::Reconciler;

/// CPU time of this process so far (user + system).
fn cpu() -> Duration {
    let usage = nix::sys::resource::getrusage(nix::sys::resource::UsageWho::RUSAGE_SELF).unwrap();
    let time = |t: nix::sys::time::TimeVal| {
        Duration::from_secs(u64::try_from(t.tv_sec()).unwrap_or(0))
            + Duration::from_micros(u64::try_from(t.tv_usec()).unwrap_or(0))
    };
    time(usage.user_time()) + time(usage.system_time())
}

/// Resident memory of this process, in MiB.
fn rss_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let kib: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0.0);
    kib / 1024.0
}

/// One measured reconcile: wall, CPU, and what it asked of the host.
struct Cost {
    wall: Duration,
    cpu: Duration,
    writes: usize,
    reloads: usize,
    jobs: usize,
    bus_calls: u32,
    provider_calls: usize,
}

async fn measure(world: &World, reconciler: &mut Reconciler, due: Due) -> Cost {
    world.take_log();
    let asked_before = {
        let mut host = world.host.lock().unwrap();
        host.bus_calls = 0;
        host.asked.len()
    };
    let (wall, cpu_before) = (Instant::now(), cpu());
    let outcome = reconciler.reconcile(due).await;
    let (wall, cpu) = (wall.elapsed(), cpu().saturating_sub(cpu_before));
    assert!(!outcome.failed, "{:?}", reconciler.status().errors);
    let log = world.take_log();
    let host = world.host.lock().unwrap();
    Cost {
        wall,
        cpu,
        writes: log.iter().filter(|l| l.starts_with("write")).count()
            + outcome
                .actions
                .iter()
                .filter(|a| matches!(a, ramlet::reconcile::plan::Action::WriteUnit(_)))
                .count(),
        reloads: log.iter().filter(|l| *l == "daemon-reload").count(),
        jobs: log.iter().filter(|l| l.ends_with(".service")).count(),
        bus_calls: host.bus_calls,
        provider_calls: host.asked.len() - asked_before,
    }
}

fn row(n: usize, what: &str, cost: &Cost) {
    println!(
        "| {n} | {what} | {:.1} | {:.1} | {} | {} | {} | {} | {} |",
        cost.wall.as_secs_f64() * 1000.0,
        cost.cpu.as_secs_f64() * 1000.0,
        cost.writes,
        cost.reloads,
        cost.jobs,
        cost.bus_calls,
        cost.provider_calls
    );
}

/// The median (by CPU) of `runs` no-op reconciles.
async fn median_noop(world: &World, reconciler: &mut Reconciler, due: Due, runs: usize) -> Cost {
    let mut costs = Vec::new();
    for _ in 0..runs {
        costs.push(measure(world, reconciler, due).await);
    }
    costs.sort_by_key(|c| c.cpu);
    costs.swap_remove(runs / 2)
}

async fn scale(n: usize) {
    let world = World::new(&format!("bench-{n}"));
    for i in 0..n {
        world.container(&format!("c{i}"), &format!("s{i}"), "restart");
        world.secret(&format!("s{i}"), Ok("one"));
    }
    let mut reconciler = world.reconciler_with(budget());
    let cold = measure(&world, &mut reconciler, Due::All).await;
    // Every spec, or the figures are of fewer than N.
    assert_eq!(cold.jobs, n, "{:?}", reconciler.status().errors);
    row(n, "cold apply", &cold);
    // An idle wake-up (nothing due) and a refresh (every store asked).
    let idle = median_noop(&world, &mut reconciler, Due::Timers, 11).await;
    row(n, "no-op, nothing due (median of 11)", &idle);
    let refresh = median_noop(&world, &mut reconciler, Due::All, 11).await;
    row(n, "no-op, every store refreshed (median of 11)", &refresh);
    world.secret("s7", Ok("two"));
    let rotation = measure(&world, &mut reconciler, Due::All).await;
    row(n, "one secret rotated", &rotation);
    world.container("c8", "s8", "reload");
    let edit = measure(&world, &mut reconciler, Due::All).await;
    row(n, "one spec edited", &edit);
    println!(
        "| {n} | RSS after these | {:.1} MiB | | | | | | |",
        rss_mib()
    );
}

/// A host budget of secret bytes that N = 1,000 specs fit in (each volume asks for 1 MiB;
/// the default budget, 256 MiB, would leave all but 256 of them unapplied).
fn budget() -> ramlet_specs::Policy {
    ramlet_specs::Policy {
        max_secret_bytes: Some("2Gi".into()),
        ..ramlet_specs::Policy::default()
    }
}

/// `RAMLET_BENCH_PROFILE=1`: only 200 no-op reconciles at N = 1,000, for `perf record`.
async fn profile() {
    let world = World::new("bench-profile");
    for i in 0..1000 {
        world.container(&format!("c{i}"), &format!("s{i}"), "restart");
        world.secret(&format!("s{i}"), Ok("one"));
    }
    let mut reconciler = world.reconciler_with(budget());
    reconciler.reconcile(Due::All).await;
    for _ in 0..200 {
        reconciler.reconcile(Due::Timers).await;
    }
}

fn main() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    if std::env::var_os("RAMLET_BENCH_PROFILE").is_some() {
        runtime.block_on(profile());
        return;
    }
    println!(
        "| N | reconcile | wall ms | CPU ms | files written | daemon-reloads | jobs | systemd calls | provider requests |"
    );
    println!("| --- | --- | --- | --- | --- | --- | --- | --- | --- |");
    for n in [100, 1000] {
        runtime.block_on(scale(n));
    }
}
