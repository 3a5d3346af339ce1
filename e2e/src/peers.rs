//! The secret-manager peers on loopback, started by the tests themselves:
//! - AWS: moto's server (from the virtualenv `scripts/install-peers` makes) behind
//!   `peers/counting_proxy.py`, which logs every call's `X-Amz-Target`;
//! - GCP: `peers/gcp_secret_manager.py`, which logs every API call;
//! - change events: SQS in the same moto behind a second counting proxy (stopping it takes the
//!   event source away, not Secrets Manager), and `peers/pubsub.py`, the project's Pub/Sub fake.
//!
//! Calls are counted from those logs, at the wire. Every peer is killed when dropped.

use std::net::{TcpListener, TcpStream};

use base64::Engine as _;
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

/// The host policy the tests' agents run under: the peers listen on plain http on 127.0.0.1,
/// which no spec may name unless the host's `policy.endpoints` does.
#[must_use]
pub fn loopback_policy() -> ramlet_specs::Policy {
    ramlet_specs::Policy {
        endpoints: vec![LOOPBACK_ENDPOINTS.to_owned()],
        ..ramlet_specs::Policy::default()
    }
}

/// `loopback_policy`'s one entry, for a config file.
pub const LOOPBACK_ENDPOINTS: &str = "http://127.0.0.1";

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

/// Stands for the port in a peer's arguments.
const PORT: &str = "{port}";

/// One peer process, restartable on the same port.
#[derive(Debug)]
pub struct Peer {
    program: PathBuf,
    /// Arguments; [`PORT`] stands for the port.
    args: Vec<String>,
    /// Its port on 127.0.0.1.
    pub port: u16,
    child: Option<Child>,
    /// What it printed (stdout and stderr), where its "listening" line is looked for.
    output: PathBuf,
    log: Option<PathBuf>,
}

impl Peer {
    /// Starts `program` on a free port. Another test may take the port between the look-up
    /// and the peer's bind: a peer that exits before it says it listens gets another port.
    pub(crate) fn spawn(
        program: PathBuf,
        args: Vec<String>,
        output: PathBuf,
        log: Option<PathBuf>,
    ) -> Self {
        let mut peer = Self {
            program,
            args,
            port: 0,
            child: None,
            output,
            log,
        };
        for _ in 0..5 {
            peer.port = free_port();
            if peer.try_start() {
                return peer;
            }
        }
        panic!("{} found no free port in 5 tries", peer.program.display())
    }

    /// Starts it again on its port.
    ///
    /// # Panics
    /// When it cannot be started or does not listen within 30 s.
    pub fn start(&mut self) {
        assert!(
            self.try_start(),
            "{} exited before listening on {}",
            self.program.display(),
            self.port
        );
    }

    /// Starts it and waits until it prints that it listens on its port (its own bind, not
    /// somebody else's socket); false when it exits first.
    fn try_start(&mut self) -> bool {
        assert!(
            self.program.exists(),
            "{} is missing: run scripts/install-peers (scripts/test does)",
            self.program.display()
        );
        let output = std::fs::File::create(&self.output).expect("the peer's output file");
        let port = self.port.to_string();
        let child = Command::new(&self.program)
            .args(self.args.iter().map(|a| a.replace(PORT, &port)))
            .stdin(Stdio::null())
            .stdout(output.try_clone().expect("the peer's output file"))
            .stderr(output)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", self.program.display()));
        let child = self.child.insert(child);
        // moto (werkzeug) says "Running on http://127.0.0.1:PORT", our peers "listening on
        // 127.0.0.1:PORT".
        let listening = format!("127.0.0.1:{port}");
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let printed = std::fs::read_to_string(&self.output).unwrap_or_default();
            if printed.contains(&listening) && TcpStream::connect(("127.0.0.1", self.port)).is_ok()
            {
                return true;
            }
            if child.try_wait().ok().flatten().is_some() {
                self.child = None;
                return false;
            }
            assert!(
                Instant::now() < deadline,
                "{} does not listen on {}:\n{printed}",
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
        let moto = Peer::spawn(
            venv().join("bin/moto_server"),
            vec!["-H".into(), "127.0.0.1".into(), "-p".into(), PORT.into()],
            dir.join("moto.out"),
            None,
        );
        let proxy = counting_proxy(moto.port, dir, "aws-calls.log", "proxy.out");
        Self { moto, proxy }
    }

    /// A second counting proxy to moto, for SQS: queue URLs that name its port reach moto's
    /// queues through it, so stopping it takes the event source away and leaves Secrets Manager.
    #[must_use]
    pub fn events_proxy(&self, dir: &Path) -> Peer {
        counting_proxy(self.moto.port, dir, "sqs-calls.log", "sqs-proxy.out")
    }
}

/// A counting proxy to moto's `port`, logging calls to `dir/log` and its output to `dir/out`.
fn counting_proxy(port: u16, dir: &Path, log: &str, out: &str) -> Peer {
    let log = dir.join(log);
    Peer::spawn(
        python(),
        vec![
            e2e_dir()
                .join("peers/counting_proxy.py")
                .display()
                .to_string(),
            "--port".into(),
            PORT.into(),
            "--to".into(),
            port.to_string(),
            "--log".into(),
            log.display().to_string(),
        ],
        dir.join(out),
        Some(log),
    )
}

/// An EventBridge event for Secrets Manager's `PutSecretValue` on `arn`, as a rule delivers it
/// to SQS.
#[must_use]
pub fn put_secret_value_event(arn: &str) -> String {
    format!(
        r#"{{"version": "0", "id": "6a7e8feb-b491-4cf7-a9f1-bf3703467718", "detail-type": "AWS API Call via CloudTrail", "source": "aws.secretsmanager", "account": "123456789012", "time": "2026-11-28T12:00:00Z", "region": "eu-west-1", "resources": [], "detail": {{"eventVersion": "1.08", "eventSource": "secretsmanager.amazonaws.com", "eventName": "PutSecretValue", "awsRegion": "eu-west-1", "requestParameters": {{"secretId": "{arn}", "clientRequestToken": "t-1"}}, "responseElements": {{"arn": "{arn}"}}}}}}"#
    )
}

impl Aws {
    /// The endpoint for a store's `aws.endpoint`.
    #[must_use]
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.proxy.port)
    }

    /// Makes the proxy answer every call of `operation` (`secretsmanager.BatchGetSecretValue`)
    /// with AWS's `ThrottlingException`, as a spent quota does; `""` ends it.
    ///
    /// # Panics
    /// When the proxy cannot be reached.
    pub fn throttle(&self, operation: &str) {
        use std::io::{Read as _, Write as _};
        let mut stream = TcpStream::connect(("127.0.0.1", self.proxy.port)).expect("the proxy");
        write!(
            stream,
            "POST /fake/throttle?target={operation} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
        )
        .unwrap();
        let mut answer = String::new();
        stream.read_to_string(&mut answer).unwrap();
        assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    }
}

/// The Secret Manager fake.
#[derive(Debug)]
pub struct Gcp {
    /// The fake's process.
    pub fake: Peer,
    /// `http`, or `https` for [`Gcp::start_tls`].
    scheme: &'static str,
}

impl Gcp {
    /// Starts the fake on plain HTTP; its call log goes to `dir`.
    #[must_use]
    pub fn start(dir: &Path) -> Self {
        Self::spawn(dir, None)
    }

    /// Starts the fake on HTTPS with `ca`'s server certificate: only a client that trusts `ca`
    /// gets past the handshake. The test sets it up through a plain [`Gcp`] it starts beside
    /// it, if it needs secrets at all: [`Gcp::call`] speaks plain HTTP.
    #[must_use]
    pub fn start_tls(dir: &Path, ca: &TestCa) -> Self {
        Self::spawn(dir, Some(ca))
    }

    fn spawn(dir: &Path, tls: Option<&TestCa>) -> Self {
        let name = if tls.is_some() { "gcp-tls" } else { "gcp" };
        let log = dir.join(format!("{name}-calls.log"));
        let mut args = vec![
            e2e_dir()
                .join("peers/gcp_secret_manager.py")
                .display()
                .to_string(),
            "--port".into(),
            PORT.into(),
            "--project".into(),
            format!("{}={}", GCP_PROJECT.0, GCP_PROJECT.1),
            "--log".into(),
            log.display().to_string(),
        ];
        if let Some(ca) = tls {
            args.push("--tls".into());
            args.push(ca.server_cert().display().to_string());
            args.push(ca.server_key().display().to_string());
        }
        let fake = Peer::spawn(python(), args, dir.join(format!("{name}.out")), Some(log));
        Self {
            fake,
            scheme: if tls.is_some() { "https" } else { "http" },
        }
    }

    /// The endpoint for a store's `gcp.endpoint`.
    #[must_use]
    pub fn endpoint(&self) -> String {
        format!("{}://127.0.0.1:{}", self.scheme, self.fake.port)
    }
}

/// Key material made by `peers/test_ca.py` for one test, trusted by nothing else: a certificate
/// authority of its own, a server certificate for 127.0.0.1 it signed, and a Google service
/// account key file with a fresh RSA key (Google's libraries sign their bearer tokens with it
/// offline, so a test sees a real `Authorization: Bearer` header without any Google service).
#[derive(Debug, Clone)]
pub struct TestCa {
    dir: PathBuf,
}

impl TestCa {
    /// Makes the material in `dir` (created if missing).
    ///
    /// # Panics
    /// When the virtualenv's Python cannot make it.
    #[must_use]
    pub fn make(dir: &Path) -> Self {
        std::fs::create_dir_all(dir).expect("the key material's folder");
        let status = Command::new(python())
            .arg(e2e_dir().join("peers/test_ca.py"))
            .arg(dir)
            .status()
            .expect("peers/test_ca.py");
        assert!(status.success(), "peers/test_ca.py failed: {status}");
        Self {
            dir: dir.to_owned(),
        }
    }

    /// The authority's certificate (PEM), for `SSL_CERT_FILE`.
    #[must_use]
    pub fn ca_cert(&self) -> PathBuf {
        self.dir.join("ca.pem")
    }

    /// The server's certificate (PEM).
    #[must_use]
    pub fn server_cert(&self) -> PathBuf {
        self.dir.join("server.pem")
    }

    /// The server's private key (PEM).
    #[must_use]
    pub fn server_key(&self) -> PathBuf {
        self.dir.join("server-key.pem")
    }

    /// A service account key file, for `GOOGLE_APPLICATION_CREDENTIALS`.
    #[must_use]
    pub fn service_account(&self) -> PathBuf {
        self.dir.join("service-account.json")
    }
}

/// The Pub/Sub fake, with the subscriptions it was started with.
#[derive(Debug)]
pub struct PubSub {
    /// The fake's process.
    pub fake: Peer,
}

impl PubSub {
    /// Starts the fake with `subscriptions` (subscription, topic; full names); its call log
    /// goes to `dir`.
    #[must_use]
    pub fn start(dir: &Path, subscriptions: &[(&str, &str)]) -> Self {
        let log = dir.join("pubsub-calls.log");
        let mut args = vec![
            e2e_dir().join("peers/pubsub.py").display().to_string(),
            "--port".into(),
            PORT.into(),
            "--log".into(),
            log.display().to_string(),
        ];
        for (subscription, topic) in subscriptions {
            args.push("--subscription".into());
            args.push(format!("{subscription}={topic}"));
        }
        let fake = Peer::spawn(python(), args, dir.join("pubsub.out"), Some(log));
        Self { fake }
    }

    /// The endpoint for a store's `gcp.events.endpoint`.
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
        assert_eq!(
            self.scheme, "http",
            "set up secrets through a plain HTTP fake"
        );
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
            &format!(
                r#"{{"payload": {{"data": "{}"}}}}"#,
                base64::engine::general_purpose::STANDARD.encode(data)
            ),
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
