//! Certificates on a real host (the sandbox's systemd user manager, Quadlet and rootless Podman)
//! from a real OpenBao server's PKI engine (`bao server -dev`): a container gets a certificate
//! with a 2-minute life, its key and the issuing CA in a noswap tmpfs, and is restarted with the
//! next certificate (a new serial and key) before the first one ends; status and the running
//! container agree on the serial; a restarted ramlet issues nothing new and restarts nothing.
//!
//! `#[ignore]`d in a plain `cargo test`; `scripts/test` runs it in the sandbox.

use std::time::{Duration, Instant};

mod common;

use common::*;
use ramlet_e2e::openbao::openssl;

/// The policy and the `tls` store: the server named in the host's policy, a token that may only
/// issue `web` certificates in a 0600 file of the host's, a 2-minute certificate checked every
/// 10 s.
fn pki_store(agent: &Agent, bao: &ramlet_e2e::openbao::Bao) -> String {
    let keys = openbao_policy(agent);
    bao.pki_role("tls", "web", "example.com");
    bao.issuer_policy("issuer", "tls", "web");
    let token = keys.join("bao-token");
    ramlet_e2e::openbao::write_private(&token, &bao.token("issuer", "1h"));
    agent.chown();
    format!(
        "apiVersion: ramlet.dev/v1alpha1\nkind: SecretStore\nmetadata: {{name: tls}}\nspec:\n  refreshInterval: 10s\n  openbao:\n    address: \"{}\"\n    mount: tls\n    auth:\n      token: {{file: {}}}\n    pki:\n      certificates:\n        web: {{role: web, commonName: app.example.com, altNames: [www.example.com], ttl: 2m}}\n",
        bao.address(),
        token.display()
    )
}

/// A busybox container that prints its mount, its certificate between `CERT` and `CERTDONE`, and
/// the key's checksum, then waits.
fn server(name: &str) -> String {
    format!(
        "apiVersion: ramlet.dev/v1alpha1\nkind: Container\nmetadata: {{name: {name}}}\nspec:\n  image: localhost/busybox:latest\n  network: none\n  exec:\n    - sh\n    - -c\n    - >-\n      trap 'exit 0' TERM;\n      echo \"MOUNT $(grep ' /run/tls ' /proc/self/mountinfo)\";\n      echo CERT; cat /run/tls/tls.crt; echo; echo CERTDONE;\n      echo \"KEYSUM $(md5sum < /run/tls/tls.key)\";\n      while true; do sleep 1 & wait $!; done\n  volumes:\n    - name: tls\n      mountPath: /run/tls\n      sizeLimit: 64Ki\n      files:\n        - path: tls.crt\n          mode: 0444\n          secret: {{store: tls, name: web, property: certificate}}\n        - path: tls.key\n          mode: 0400\n          secret: {{store: tls, name: web, property: private_key}}\n        - path: ca.crt\n          mode: 0444\n          secret: {{store: tls, name: web, property: issuing_ca}}\n  rotation:\n    strategy: restart\n"
    )
}

/// The certificate (PEM) and key checksum `name`'s container printed in its last run.
fn served(scope: &Scope, name: &str) -> Option<(String, String)> {
    let logs = scope.logs(name);
    let run = logs.rsplit("MOUNT ").next()?;
    let pem = run.split("CERT\n").nth(1)?.split("CERTDONE").next()?.trim();
    let sum = run
        .lines()
        .find_map(|l| l.strip_prefix("KEYSUM "))?
        .to_owned();
    pem.starts_with("-----BEGIN CERTIFICATE-----")
        .then(|| (pem.to_owned(), sum))
}

/// A certificate's serial (`1a:2b:...`, as OpenBao and status write it) and end (Unix seconds).
fn serial_and_end(pem: &str) -> (String, u64) {
    let serial = openssl(&["x509", "-noout", "-serial"], pem);
    let hex = serial.trim_start_matches("serial=").to_ascii_lowercase();
    let pairs: Vec<String> = hex
        .as_bytes()
        .chunks(2)
        .map(|c| String::from_utf8_lossy(c).into_owned())
        .collect();
    let end = openssl(&["x509", "-noout", "-enddate"], pem);
    let end = end.trim_start_matches("notAfter=");
    let output = std::process::Command::new("date")
        .args(["-u", "-d", end, "+%s"])
        .output()
        .unwrap();
    let end: u64 = String::from_utf8_lossy(&output.stdout)
        .trim()
        .parse()
        .unwrap();
    (pairs.join(":"), end)
}

/// The `tls/web` entry of spec `name` in status: (version, expires).
fn in_status(agent: &Agent, name: &str) -> (String, String) {
    let secrets = agent.status()["specs"][name]["secrets"].clone();
    let entry = secrets
        .as_array()
        .into_iter()
        .flatten()
        .find(|s| s["store"] == "tls" && s["name"] == "web")
        .cloned()
        .unwrap_or_default();
    (
        entry["version"].as_str().unwrap_or_default().to_owned(),
        entry["expires"].as_str().unwrap_or_default().to_owned(),
    )
}

#[test]
#[ignore = "needs the e2e sandbox (scripts/test runs it)"]
fn user_scope_a_certificate_is_renewed_and_its_container_restarted_before_it_ends() {
    let scope = Scope::user();
    let mut agent = Agent::new(scope.clone(), "certs");
    let bao = ramlet_e2e::openbao::Bao::start(&agent.dir.join("bao"));
    agent.spec("tls", &pki_store(&agent, &bao));
    let name = "e2e-cert-web";
    agent.spec("web", &server(name));
    agent.start();
    let (pem, key_sum) = agent.wait(
        "the first certificate served",
        Duration::from_mins(1),
        || {
            (spec_field(&agent, name, "phase") == "Ready")
                .then(|| served(&scope, name))
                .flatten()
        },
    );
    let issued = Instant::now();
    let logs = scope.logs(name);
    let mount = mount_line(&logs).unwrap();
    assert!(
        mount.contains(" - tmpfs ") && mount.contains("noswap"),
        "{mount}"
    );
    let subject = openssl(
        &["x509", "-noout", "-subject", "-ext", "subjectAltName"],
        &pem,
    );
    assert!(
        subject.contains("app.example.com") && subject.contains("DNS:www.example.com"),
        "{subject}"
    );
    let (serial, end) = serial_and_end(&pem);
    // Status names the serial the container runs with, and its end.
    let (version, expires) = in_status(&agent, name);
    assert_eq!(version, serial);
    assert_eq!(expires, rfc3339(end), "status: {expires}");
    // The key in the volume is the certificate's.
    let key = std::fs::read_to_string(scope.volume_root().join(name).join("tls/tls.key")).unwrap();
    assert_eq!(
        openssl(&["pkey", "-pubout"], &key),
        openssl(&["x509", "-noout", "-pubkey"], &pem)
    );
    let unit = std::fs::read_to_string(scope.unit_dir().join(format!("{name}.container"))).unwrap();
    assert!(!unit.contains("PRIVATE KEY"), "{unit}");
    // `ramlet plan` changes nothing anywhere: it has no certificate issued, and says so.
    let issued_before = bao.requests("tls/issue/web");
    let plan = agent.command("plan").output().unwrap();
    let said = String::from_utf8_lossy(&plan.stdout);
    println!("ramlet plan (exit {:?}):\n{said}", plan.status.code());
    assert_eq!(bao.requests("tls/issue/web"), issued_before);
    assert!(said.contains("never by `ramlet plan`"), "{said}");
    // A restarted ramlet serves the certificate it kept in the kernel keyring: no new one
    // issued, nothing restarted.
    let running = invocations(&scope, &[name.to_owned()]);
    agent.restart(|| {});
    agent.wait("Ready after the restart", Duration::from_secs(30), || {
        (spec_field(&agent, name, "phase") == "Ready").then_some(())
    });
    assert_eq!(bao.requests("tls/issue/web"), issued_before);
    assert_eq!(in_status(&agent, name).0, serial);
    assert_eq!(invocations(&scope, &[name.to_owned()]), running);

    // At about two thirds of its 2 minutes, the next one: the container restarts with it (a
    // new serial, a new key) while the first one is still valid.
    let before = invocations(&scope, &[name.to_owned()]);
    let (next_pem, next_sum) = agent.wait(
        "the next certificate served",
        Duration::from_mins(2),
        || {
            // `podman logs` once a second, not at the wait's pace.
            std::thread::sleep(Duration::from_secs(1));
            served(&scope, name).filter(|(p, _)| *p != pem)
        },
    );
    let renewed_at = unix_now();
    let (next_serial, next_end) = serial_and_end(&next_pem);
    assert_ne!(next_serial, serial);
    assert_ne!(next_sum, key_sum, "a new key with the new certificate");
    assert!(
        renewed_at < end,
        "served the next certificate at {renewed_at}, after the first ended at {end}"
    );
    assert!(
        issued.elapsed() > Duration::from_mins(1),
        "renewed after {:?}, before half its life",
        issued.elapsed()
    );
    assert!(next_end > end);
    assert_ne!(invocations(&scope, &[name.to_owned()]), before);
    agent.wait(
        "status has the next serial",
        Duration::from_secs(30),
        || (in_status(&agent, name).0 == next_serial).then_some(()),
    );
    agent.stop();
}

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// Unix seconds as the status file writes them (`2026-12-07T16:40:00Z`).
fn rfc3339(secs: u64) -> String {
    let output = std::process::Command::new("date")
        .args(["-u", "-d", &format!("@{secs}"), "+%Y-%m-%dT%H:%M:%SZ"])
        .output()
        .unwrap();
    String::from_utf8_lossy(&output.stdout).trim().to_owned()
}
