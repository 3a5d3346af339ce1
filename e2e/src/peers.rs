//! The secret-manager peers on loopback, started by the tests themselves:
//! - AWS: moto's server (from the virtualenv `scripts/install-peers` makes) behind
//!   `peers/counting_proxy.py`, which logs every call's `X-Amz-Target`;
//! - GCP: `peers/gcp_secret_manager.py`, which logs every API call.
//!
//! Calls are counted from those logs, at the wire. Every peer is killed when dropped.

use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The GCP project ID the fake knows, and its number.
pub const GCP_PROJECT: (&str, &str) = ("ramlet-e2e", "424242424242");

/// The folder that holds `peers/`.
fn e2e_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The virtualenv with moto: `RAMLET_PEERS_VENV`, or `target/peers-venv`.
#[must_use]
pub fn venv() -> PathBuf {
    std::env::var_os("RAMLET_PEERS_VENV")
        .map_or_else(|| e2e_dir().join("../target/peers-venv"), PathBuf::from)
}

/// A free port on 127.0.0.1.
///
/// # Panics
/// When the loopback has no free port.
#[must_use]
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

/// One peer process, restartable on the same port.
#[derive(Debug)]
pub struct Peer {
    program: PathBuf,
    args: Vec<String>,
    /// Its port on 127.0.0.1.
    pub port: u16,
    child: Option<Child>,
    log: Option<PathBuf>,
}

impl Peer {
    fn spawn(program: PathBuf, args: Vec<String>, port: u16, log: Option<PathBuf>) -> Self {
        let mut peer = Self {
            program,
            args,
            port,
            child: None,
            log,
        };
        peer.start();
        peer
    }

    /// Starts it (again) and waits until it accepts connections.
    ///
    /// # Panics
    /// When it cannot be started or does not listen within 30 s.
    pub fn start(&mut self) {
        assert!(
            self.program.exists(),
            "{} is missing: run scripts/install-peers (scripts/test does)",
            self.program.display()
        );
        let child = Command::new(&self.program)
            .args(&self.args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", self.program.display()));
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(30);
        while TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "{} does not listen on {}",
                self.program.display(),
                self.port
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Kills it: connections are refused until [`Peer::start`].
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Freezes it (SIGSTOP): connections are accepted and never answered, a hung peer.
    pub fn freeze(&self, frozen: bool) {
        if let Some(child) = &self.child {
            let signal = if frozen { "-STOP" } else { "-CONT" };
            let _ = Command::new("kill")
                .args([signal, &child.id().to_string()])
                .status();
        }
    }

    /// The calls it logged so far, one line each.
    #[must_use]
    pub fn calls(&self) -> Vec<String> {
        self.log
            .as_deref()
            .and_then(|p| std::fs::read_to_string(p).ok())
            .unwrap_or_default()
            .lines()
            .map(str::to_owned)
            .collect()
    }

    /// How many logged calls contain `what`.
    #[must_use]
    pub fn count(&self, what: &str) -> usize {
        self.calls().iter().filter(|c| c.contains(what)).count()
    }

    /// Forgets the calls logged so far.
    pub fn clear_calls(&self) {
        if let Some(log) = &self.log {
            let _ = std::fs::write(log, "");
        }
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        self.freeze(false);
        self.stop();
    }
}

/// moto behind the counting proxy.
#[derive(Debug)]
pub struct Aws {
    /// moto's server.
    pub moto: Peer,
    /// The counting proxy ramlet talks to; stop it to take the peer away.
    pub proxy: Peer,
}

impl Aws {
    /// Starts moto and its proxy; their logs go to `dir`.
    #[must_use]
    pub fn start(dir: &Path) -> Self {
        let moto_port = free_port();
        let moto = Peer::spawn(
            venv().join("bin/moto_server"),
            vec![
                "-H".into(),
                "127.0.0.1".into(),
                "-p".into(),
                moto_port.to_string(),
            ],
            moto_port,
            None,
        );
        let port = free_port();
        let log = dir.join("aws-calls.log");
        let proxy = Peer::spawn(
            python(),
            vec![
                e2e_dir()
                    .join("peers/counting_proxy.py")
                    .display()
                    .to_string(),
                "--port".into(),
                port.to_string(),
                "--to".into(),
                moto_port.to_string(),
                "--log".into(),
                log.display().to_string(),
            ],
            port,
            Some(log),
        );
        Self { moto, proxy }
    }

    /// The endpoint for a store's `aws.endpoint`.
    #[must_use]
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.proxy.port)
    }
}

/// The Secret Manager fake.
#[derive(Debug)]
pub struct Gcp {
    /// The fake's process.
    pub fake: Peer,
}

impl Gcp {
    /// Starts the fake; its call log goes to `dir`.
    #[must_use]
    pub fn start(dir: &Path) -> Self {
        let port = free_port();
        let log = dir.join("gcp-calls.log");
        let fake = Peer::spawn(
            python(),
            vec![
                e2e_dir()
                    .join("peers/gcp_secret_manager.py")
                    .display()
                    .to_string(),
                "--port".into(),
                port.to_string(),
                "--project".into(),
                format!("{}={}", GCP_PROJECT.0, GCP_PROJECT.1),
                "--log".into(),
                log.display().to_string(),
            ],
            port,
            Some(log),
        );
        Self { fake }
    }

    /// The endpoint for a store's `gcp.endpoint`.
    #[must_use]
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.fake.port)
    }
}

/// The Python that runs the peers: the virtualenv's.
fn python() -> PathBuf {
    venv().join("bin/python3")
}

impl Gcp {
    /// One call to the fake's REST API (or its `/fake/` controls): the status and body.
    ///
    /// # Panics
    /// When the fake cannot be reached.
    #[must_use]
    pub fn call(&self, method: &str, path: &str, body: &str) -> (u16, String) {
        use std::io::{Read as _, Write as _};
        let mut stream = TcpStream::connect(("127.0.0.1", self.fake.port)).expect("the GCP fake");
        write!(
            stream,
            "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )
        .unwrap();
        let mut answer = String::new();
        stream.read_to_string(&mut answer).unwrap();
        let status = answer
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        let body = answer
            .split_once("\r\n\r\n")
            .map(|(_, b)| b.to_owned())
            .unwrap_or_default();
        (status, body)
    }

    /// Creates secret `id` in the project.
    ///
    /// # Panics
    /// When the fake refuses.
    pub fn create(&self, id: &str) {
        let (status, body) = self.call(
            "POST",
            &format!("/v1/projects/{}/secrets?secretId={id}", GCP_PROJECT.0),
            r#"{"replication": {"automatic": {}}}"#,
        );
        assert_eq!(status, 200, "{body}");
    }

    /// Adds a version holding `data` to secret `id`; returns its number.
    ///
    /// # Panics
    /// When the fake refuses.
    pub fn add_version(&self, id: &str, data: &[u8]) -> u64 {
        let (status, body) = self.call(
            "POST",
            &format!("/v1/projects/{}/secrets/{id}:addVersion", GCP_PROJECT.0),
            &format!(r#"{{"payload": {{"data": "{}"}}}}"#, base64(data)),
        );
        assert_eq!(status, 200, "{body}");
        let name = body.split("/versions/").nth(1).unwrap_or_default();
        name.chars()
            .take_while(char::is_ascii_digit)
            .collect::<String>()
            .parse()
            .unwrap()
    }

    /// `enable`, `disable` or `destroy` version `n` of secret `id`.
    ///
    /// # Panics
    /// When the fake refuses.
    pub fn version_action(&self, id: &str, n: u64, action: &str) {
        let (status, body) = self.call(
            "POST",
            &format!(
                "/v1/projects/{}/secrets/{id}/versions/{n}:{action}",
                GCP_PROJECT.0
            ),
            "{}",
        );
        assert_eq!(status, 200, "{body}");
    }

    /// Points alias `alias` of secret `id` at version `n`.
    ///
    /// # Panics
    /// When the fake refuses.
    pub fn alias(&self, id: &str, alias: &str, n: u64) {
        let (status, body) = self.call(
            "PATCH",
            &format!(
                "/v1/projects/{}/secrets/{id}?updateMask=versionAliases",
                GCP_PROJECT.0
            ),
            &format!(r#"{{"versionAliases": {{"{alias}": "{n}"}}}}"#),
        );
        assert_eq!(status, 200, "{body}");
    }
}

/// Standard base64 with padding.
fn base64(data: &[u8]) -> String {
    const ABC: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in data.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ABC[(n >> (18 - 6 * i)) as usize & 63] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}
