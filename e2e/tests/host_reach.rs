//! What a spec can make a container reach on the host, with the real Quadlet generator and
//! rootful Podman in the sandbox (system scope) as the oracle (issue 33).
//!
//! The escape hatch's list values: each value goes through `quadlet -dryrun` and `podman create`,
//! and whenever Podman would grant something that reaches the host (a capability of
//! `HOST_CAPABILITIES`, a log file at a host path), ramlet's baseline must refuse the value.
//!
//! Each network mode: the question behind `policy.allowHostNetwork`. A cloud's
//! metadata service (`169.254.169.254`) is not reachable from CI, so a service of the host's
//! own, bound to loopback, stands in for "something only the host should reach": the host's
//! network namespace (`network: host`) reaches it, and so does `slirp4netns` with
//! `allow_host_loopback=true` (through `10.0.2.2`): both are refused by ramlet's policy unless
//! the host allows them. Plain `slirp4netns` and `none`, which ramlet allows, do not.
//!
//! `#[ignore]`d in a plain `cargo test`; `scripts/test` runs it in the sandbox.

use std::io::{Read as _, Write as _};
use std::net::TcpListener;
use std::time::Duration;

mod common;

use common::*;

/// A one-answer-at-a-time HTTP server on the host's loopback, on a free port, answering
/// `host-only` to anything, until the test ends.
fn host_only_service() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let mut stream = stream;
            let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
            let mut request = [0_u8; 1024];
            let _ = stream.read(&mut request);
            let _ = stream.write_all(
                b"HTTP/1.0 200 OK\r\nContent-Length: 9\r\nConnection: close\r\n\r\nhost-only",
            );
        }
    });
    port
}

/// Whether a busybox container on `network` gets the service's answer from `host`:`port`
/// (`nc`, 5 s; the static busybox's `wget` crashes resolving even an address).
fn reaches(scope: &Scope, network: &str, host: &str, port: u16) -> bool {
    let script = format!("printf 'GET / HTTP/1.0\\r\\n\\r\\n' | busybox nc -w 5 {host} {port}");
    let output = scope.run(
        "podman",
        &[
            "run",
            "--rm",
            "--network",
            network,
            "localhost/busybox:latest",
            "sh",
            "-c",
            &script,
        ],
    );
    let reached = String::from_utf8_lossy(&output.stdout).contains("host-only");
    if !reached {
        println!(
            "podman run --network {network} ... nc {host} {port}: {}",
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    reached
}

#[test]
#[ignore = "needs the e2e sandbox (scripts/test runs it)"]
fn system_scope_what_each_network_mode_reaches_on_the_host() {
    let scope = Scope::system();
    let port = host_only_service();
    let seen = [
        ("host", reaches(&scope, "host", "127.0.0.1", port)),
        ("none", reaches(&scope, "none", "127.0.0.1", port)),
        (
            "slirp4netns",
            reaches(&scope, "slirp4netns", "10.0.2.2", port),
        ),
        (
            "slirp4netns:allow_host_loopback=true",
            reaches(
                &scope,
                "slirp4netns:allow_host_loopback=true",
                "10.0.2.2",
                port,
            ),
        ),
    ];
    for (network, reached) in &seen {
        println!("network {network}: reaches a service on the host's loopback: {reached}");
    }
    assert_eq!(
        seen.map(|(_, reached)| reached),
        [true, false, false, true],
        "host and allow_host_loopback reach the host's own services (ramlet refuses them without policy.allowHostNetwork); none and plain slirp4netns do not"
    );
}

const QUADLET: &str = "/usr/libexec/podman/quadlet";

/// The arguments of `flag` (`--cap-add`, `--log-opt`) in the `podman run` that the real
/// generator makes of a unit setting `key=value`.
fn podman_args(key: &str, value: &str, flag: &str) -> Vec<String> {
    let dir = std::env::temp_dir().join(format!("ramlet-oracle-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("oracle.container"),
        format!("[Container]\nImage=localhost/busybox:latest\n{key}={value}\n"),
    )
    .unwrap();
    let output = std::process::Command::new(QUADLET)
        .arg("-dryrun")
        .env("QUADLET_UNIT_DIRS", &dir)
        .output()
        .unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    let stdout = String::from_utf8_lossy(&output.stdout);
    let exec = stdout
        .lines()
        .find_map(|l| l.strip_prefix("ExecStart="))
        .unwrap_or_else(|| panic!("quadlet made no service of {key}={value}: {stdout}"));
    let words: Vec<&str> = exec.split_whitespace().collect();
    let mut args = Vec::new();
    for (i, word) in words.iter().enumerate() {
        if *word == flag {
            args.extend([flag.to_owned(), words[i + 1].to_owned()]);
        } else if let Some(v) = word.strip_prefix(&format!("{flag}=")) {
            args.extend([flag.to_owned(), v.to_owned()]);
        }
    }
    args
}

/// What Podman makes of `args` on a created (never started) container: `inspect --format`.
fn podman_made(scope: &Scope, args: &[String], format: &str) -> Option<String> {
    let name = "ramlet-oracle";
    let _ = scope.run("podman", &["rm", "-f", name]);
    let mut create = vec!["create", "--name", name];
    create.extend(args.iter().map(String::as_str));
    create.extend(["localhost/busybox:latest", "true"]);
    let created = scope.run("podman", &create);
    if !created.status.success() {
        return None;
    }
    let inspected = scope.run("podman", &["inspect", "--format", format, name]);
    let _ = scope.run("podman", &["rm", "-f", name]);
    Some(String::from_utf8_lossy(&inspected.stdout).trim().to_owned())
}

/// Whether ramlet's spec loader refuses a spec setting `[Container] key=value`.
fn ramlet_refuses(key: &str, value: &str) -> bool {
    let text = format!(
        "apiVersion: ramlet.dev/v1alpha1\nkind: SecretStore\nmetadata: {{name: s}}\nspec: {{file: {{directory: /srv/secrets}}}}\n---\n\
         apiVersion: ramlet.dev/v1alpha1\nkind: Container\nmetadata: {{name: oracle}}\nspec:\n  image: localhost/busybox\n  \
         volumes:\n    - name: v\n      mountPath: /run/v\n      files:\n        - path: f\n          secret: {{store: s, name: x}}\n  \
         quadlet:\n    Container:\n      {key}: {value:?}\n"
    );
    let catalog = ramlet_specs::load_texts([(std::path::PathBuf::from("oracle.yaml"), text)]);
    !catalog.containers.keys().any(|n| n.as_str() == "oracle")
}

#[test]
#[ignore = "needs the e2e sandbox (scripts/test runs it)"]
fn system_scope_podman_is_the_oracle_for_the_escape_hatchs_list_values() {
    let scope = Scope::system();
    let host_caps = ramlet_specs::policy::baseline::HOST_CAPABILITIES;
    // What Podman grants with no key at all (its containers.conf's defaults): only what a
    // value adds counts.
    let defaults = podman_made(&scope, &[], "{{.EffectiveCaps}}").expect("podman create works");
    let mut checked = 0;
    for value in [
        "NET_BIND_SERVICE",
        "CHOWN NET_RAW",
        "net_raw,chown",
        "NET_BIND_SERVICE,SYS_ADMIN",
        "NET_BIND_SERVICE,SYS_ADMIN,SYS_MODULE",
        "cap_sys_module",
        "CHOWN,CAP_SYS_PTRACE",
    ] {
        let args = podman_args("AddCapability", value, "--cap-add");
        let caps = podman_made(&scope, &args, "{{.EffectiveCaps}}").unwrap_or_default();
        let reaches = caps
            .trim_matches(['[', ']'])
            .split_whitespace()
            .filter(|c| {
                !defaults
                    .split_whitespace()
                    .any(|d| d.trim_matches(['[', ']']) == *c)
            })
            .any(|c| host_caps.contains(&c.trim_start_matches("CAP_")));
        let refused = ramlet_refuses("AddCapability", value);
        println!("AddCapability={value}: Podman grants {caps}; ramlet refuses: {refused}");
        assert!(
            !reaches || refused,
            "AddCapability={value} reaches the host ({caps}) and ramlet let it through"
        );
        checked += usize::from(reaches);
    }
    for value in [
        "max-size=10mb",
        "tag=web",
        "Path=/tmp/ramlet-oracle-log",
        "PATH=/tmp/ramlet-oracle-log",
        "path=/tmp/ramlet-oracle-log",
    ] {
        let args = podman_args("LogOpt", value, "--log-opt");
        let path = podman_made(&scope, &args, "{{.HostConfig.LogConfig.Path}}").unwrap_or_default();
        let reaches = path.starts_with("/tmp/ramlet-oracle-log");
        let refused = ramlet_refuses("LogOpt", value);
        println!("LogOpt={value}: Podman logs to {path:?}; ramlet refuses: {refused}");
        assert!(
            !reaches || refused,
            "LogOpt={value} writes to {path} and ramlet let it through"
        );
        checked += usize::from(reaches);
    }
    assert!(!ramlet_refuses("AddCapability", "NET_BIND_SERVICE"));
    assert!(!ramlet_refuses("LogOpt", "max-size=10mb"));
    assert!(
        checked >= 5,
        "the oracle saw {checked} values reach the host: is Podman there?"
    );
}

/// `policy.denyAddresses` (issue 33: "give the admin a way to block the metadata addresses for
/// containers"): the agent writes systemd's `IPAddressDeny=` into each unit, and a container
/// that would reach the address (here on the host's own network, the widest way there is) does
/// not. The address is the host-only service's loopback one, standing in for
/// `169.254.169.254`, which no host here has.
#[test]
#[ignore = "needs the e2e sandbox (scripts/test runs it)"]
fn system_scope_deny_addresses_keeps_containers_from_the_metadata_service() {
    let scope = Scope::system();
    let port = host_only_service();
    let mut agent = Agent::new(scope.clone(), "deny");
    std::fs::write(
        agent.dir.join("config.yaml"),
        "policy:\n  allowHostNetwork: true\n  denyAddresses: [127.0.0.1, \"::1/128\"]\n",
    )
    .unwrap();
    agent.secret("pw", "x");
    let probe = |name: &str| {
        format!(
            "apiVersion: ramlet.dev/v1alpha1\nkind: Container\nmetadata: {{name: {name}}}\nspec:\n  image: localhost/busybox:latest\n  network: host\n  exec:\n    - sh\n    - -c\n    - >-\n      trap 'exit 0' TERM;\n      printf 'GET / HTTP/1.0\\r\\n\\r\\n' | busybox nc -w 3 127.0.0.1 {port} | tail -n 1 | sed 's/^/GOT /';\n      echo DONE;\n      while true; do sleep 1 & wait $!; done\n  volumes:\n    - name: s\n      mountPath: /run/s\n      files:\n        - path: pw\n          secret: {{store: local, name: pw}}\n"
        )
    };
    agent.spec("e2e-deny", &probe("e2e-deny"));
    agent.start();
    let logs = agent.wait("the probe ran", Duration::from_mins(2), || {
        let logs = scope.logs("e2e-deny");
        logs.contains("DONE").then_some(logs)
    });
    let unit = std::fs::read_to_string(scope.unit_dir().join("e2e-deny.container")).unwrap();
    assert!(unit.contains("IPAddressDeny=127.0.0.1 ::1/128"), "{unit}");
    assert!(
        !logs.contains("GOT host-only"),
        "the container reached the denied address: {logs}"
    );
    println!(
        "denyAddresses: the container on the host's network could not reach 127.0.0.1:{port} (IPAddressDeny= in its unit)"
    );
    drop(agent);
}
