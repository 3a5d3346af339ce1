//! Loads and validates a directory of 1,000 generated spec files (100 stores, 900 containers
//! with two volumes each). Side by side in the same run, interleaved: reading the same files,
//! and reading plus a bare `serde_yaml` parse on one thread (the floor any serde_yaml-based loader
//! pays), so the ratio says what ramlet's two-core load and validation cost against that floor.
//!
//! Run with `cargo bench -p ramlet-specs --bench load`; the figures go into BENCHMARKS.md.

use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

const FILES: usize = 1000;
const STORES: usize = 100;
const ROUNDS: usize = 15;

fn store(i: usize) -> String {
    format!(
        "apiVersion: ramlet.dev/v1alpha1\nkind: SecretStore\nmetadata: {{name: store-{i}}}\nspec:\n  refreshInterval: 5m\n  aws: {{region: eu-west-1}}\n"
    )
}

fn container(i: usize) -> String {
    let s = i % STORES;
    let mut text = format!(
        "apiVersion: ramlet.dev/v1alpha1
kind: Container
metadata:
  name: app-{i}
  labels: {{app: app-{i}, tier: backend}}
spec:
  hostSelector:
    matchLabels: {{role: app}}
  image: registry.example.com/acme/app-{i}:1.{i}.0
  exec: [\"--listen\", \"0.0.0.0:8080\", \"--config\", \"/etc/app/config.yaml\"]
  environment: {{TZ: UTC, LOG_LEVEL: info, APP_ID: \"{i}\"}}
  publishPorts: [\"127.0.0.1:{port}:8080\"]
  user: \"1000:1000\"
  volumes:
",
        port = 10000 + i
    );
    for (v, mount) in ["db", "tls"].iter().enumerate() {
        let _ = write!(
            text,
            "    - name: {mount}
      mountPath: /run/secrets/{mount}
      sizeLimit: 64Ki
      files:
        - path: username
          mode: 0440
          secret: {{store: store-{s}, name: prod/app-{i}/{v}, property: username}}
        - path: password
          mode: 0400
          secret: {{store: store-{s}, name: prod/app-{i}/{v}, property: password}}
"
        );
    }
    text.push_str("  rotation: {strategy: reload, signal: SIGHUP}\n  quadlet:\n    Service: {Restart: always}\n");
    text
}

fn generate(dir: &Path) {
    let _ = fs::remove_dir_all(dir);
    for i in 0..FILES {
        let sub = dir.join(format!("team-{}", i % 10));
        fs::create_dir_all(&sub).unwrap();
        let text = if i < STORES { store(i) } else { container(i) };
        fs::write(sub.join(format!("spec-{i}.yaml")), text).unwrap();
    }
}

fn read_only(dir: &Path) -> usize {
    let mut bytes = 0;
    for team in fs::read_dir(dir).unwrap() {
        for file in fs::read_dir(team.unwrap().path()).unwrap() {
            bytes += fs::read_to_string(file.unwrap().path()).unwrap().len();
        }
    }
    bytes
}

/// The floor: `serde_yaml` parsing every document into `IgnoredAny`, on one thread.
fn parse_only(dir: &Path) {
    for team in fs::read_dir(dir).unwrap() {
        for file in fs::read_dir(team.unwrap().path()).unwrap() {
            let text = fs::read_to_string(file.unwrap().path()).unwrap();
            for document in serde_yaml::Deserializer::from_str(&text) {
                let _: serde::de::IgnoredAny = serde::Deserialize::deserialize(document).unwrap();
            }
        }
    }
}

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

fn main() {
    let dir: PathBuf = std::env::temp_dir().join(format!("ramlet-bench-{}", std::process::id()));
    generate(&dir);
    let (mut load, mut read, mut parse) = (Vec::new(), Vec::new(), Vec::new());
    let mut bytes = 0;
    // Interleave the two measurements so machine noise hits both alike.
    for _ in 0..ROUNDS {
        let started = Instant::now();
        parse_only(&dir);
        parse.push(started.elapsed());
        let started = Instant::now();
        bytes = std::hint::black_box(read_only(&dir));
        read.push(started.elapsed());
        let started = Instant::now();
        let catalog = std::hint::black_box(ramlet_specs::load_dir(&dir).unwrap());
        load.push(started.elapsed());
        assert!(catalog.errors.is_empty(), "{:?}", catalog.errors.first());
        assert_eq!(catalog.containers.len() + catalog.stores.len(), FILES);
    }
    let (load, read, parse) = (median(load), median(read), median(parse));
    println!(
        "load_dir: {FILES} files ({} KiB), median of {ROUNDS} rounds",
        bytes / 1024
    );
    println!("| what | median |");
    println!("| --- | --- |");
    println!(
        "| read the files only | {:.1} ms |",
        read.as_secs_f64() * 1000.0
    );
    println!(
        "| read and parse only (serde_yaml, IgnoredAny, 1 thread) | {:.1} ms |",
        parse.as_secs_f64() * 1000.0
    );
    println!(
        "| load and validate (ramlet_specs::load_dir) | {:.1} ms |",
        load.as_secs_f64() * 1000.0
    );
    println!(
        "| load / parse-only ratio | {:.2} |",
        load.as_secs_f64() / parse.as_secs_f64()
    );
    let _ = fs::remove_dir_all(&dir);
    hostile();
}

/// Issue 33, finding 4: one spec file of thousands of bad documents, and thousands of copies of
/// one name, each loaded beside 100 good files (median of `ROUNDS`); before the fix the first
/// took longer than the agent's 30 s load deadline and the second 64 s.
fn hostile() {
    let dir: PathBuf =
        std::env::temp_dir().join(format!("ramlet-bench-hostile-{}", std::process::id()));
    let invalid = |count: usize| {
        let mut text = String::new();
        for i in 0..count {
            let _ = write!(
                text,
                "---\napiVersion: ramlet.dev/v1alpha1\nkind: Container\nmetadata: {{name: bad-{i}}}\nspec: {{image: x, nope: 1}}\n"
            );
        }
        text
    };
    let cases: [(&str, String); 3] = [
        ("2,500 invalid documents in one file", invalid(2_500)),
        (
            "500 invalid documents in one file (the most a file may hold)",
            invalid(500),
        ),
        ("500 copies of one store name in one file", {
            let mut text = String::new();
            for _ in 0..500 {
                text.push_str("---\n");
                text.push_str(&store(0));
            }
            text
        }),
    ];
    println!();
    println!("hostile spec files, each beside {STORES} good files (median of {ROUNDS} rounds)");
    println!("| file | bytes | errors | median |");
    println!("| --- | --- | --- | --- |");
    for (what, text) in cases {
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        for i in 1..=STORES {
            fs::write(dir.join(format!("good-{i}.yaml")), store(i)).unwrap();
        }
        fs::write(dir.join("hostile.yaml"), &text).unwrap();
        let mut samples = Vec::new();
        let mut errors = 0;
        for _ in 0..ROUNDS {
            let started = Instant::now();
            let catalog = std::hint::black_box(ramlet_specs::load_dir(&dir).unwrap());
            samples.push(started.elapsed());
            errors = catalog.errors.len();
            assert!(catalog.stores.len() >= STORES, "the good files load");
        }
        println!(
            "| {what} | {} | {errors} | {:.1} ms |",
            text.len(),
            median(samples).as_secs_f64() * 1000.0
        );
    }
    let _ = fs::remove_dir_all(&dir);
}
