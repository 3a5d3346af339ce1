//! What the agent's end-to-end tests and the sandbox benchmarks share: who runs ramlet and
//! against which manager ([`Scope`]), a spec directory with a running ramlet ([`Agent`]), a
//! busybox container spec, and invocation sampling.
#![allow(dead_code)] // each test crate uses its own part

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

pub(crate) const SANDBOX: &str = "needs the e2e sandbox: e2e/sandbox/sandbox.sh cargo test -p ramlet-e2e --test agent -- --ignored";

/// Who runs ramlet, and against which manager.
#[derive(Debug, Clone)]
pub(crate) struct Scope {
    pub(crate) system: bool,
    pub(crate) user: String,
    pub(crate) bus: String,
    pub(crate) runtime: PathBuf,
    pub(crate) volumes: Option<PathBuf>,
    pub(crate) containers_conf: Option<String>,
}

pub(crate) fn var(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| panic!("{name} is not set: these tests {SANDBOX}"))
}

impl Scope {
    pub(crate) fn user() -> Self {
        Self {
            system: false,
            user: var("RAMLET_E2E_USER"),
            bus: var("RAMLET_E2E_USER_BUS"),
            runtime: var("RAMLET_E2E_USER_RUNTIME").into(),
            volumes: Some(var("RAMLET_E2E_USER_VOLUMES").into()),
            containers_conf: None,
        }
    }

    pub(crate) fn system() -> Self {
        Self {
            system: true,
            user: "root".into(),
            bus: var("RAMLET_E2E_ROOT_BUS"),
            runtime: var("RAMLET_E2E_ROOT_RUNTIME").into(),
            // Not under the sandbox's /run/ramlet, which is a noswap tmpfs: on a plain folder,
            // ramlet mounts a tmpfs per volume, and these tests check those mounts. (The
            // dist-unit test covers the other way, folders in an admin-mounted tmpfs.)
            volumes: Some("/srv/ramlet-e2e-volumes".into()),
            containers_conf: Some(var("RAMLET_E2E_CONTAINERS_CONF")),
        }
    }

    /// A command run as this scope's user, with its manager's environment.
    pub(crate) fn command(&self, program: &str) -> Command {
        let mut command = if self.system {
            Command::new(program)
        } else {
            let mut c = Command::new("runuser");
            c.args(["-u", &self.user, "--", program]);
            c
        };
        command
            .current_dir("/tmp")
            .env("XDG_RUNTIME_DIR", &self.runtime)
            .env("DBUS_SESSION_BUS_ADDRESS", &self.bus)
            .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin");
        if let Some(conf) = &self.containers_conf {
            command.env("CONTAINERS_CONF", conf);
        }
        command
    }

    pub(crate) fn run(&self, program: &str, args: &[&str]) -> Output {
        self.command(program).args(args).output().unwrap()
    }

    pub(crate) fn systemctl(&self, args: &[&str]) -> String {
        let mut all = vec!["--user"];
        all.extend_from_slice(args);
        String::from_utf8_lossy(&self.run("systemctl", &all).stdout)
            .trim()
            .to_owned()
    }

    pub(crate) fn invocation(&self, unit: &str) -> String {
        self.systemctl(&[
            "show",
            "-p",
            "InvocationID",
            "--value",
            &format!("{unit}.service"),
        ])
    }

    pub(crate) fn active(&self, unit: &str) -> String {
        self.systemctl(&[
            "show",
            "-p",
            "ActiveState",
            "--value",
            &format!("{unit}.service"),
        ])
    }

    pub(crate) fn logs(&self, name: &str) -> String {
        let output = self.run("podman", &["logs", &format!("ramlet-{name}")]);
        String::from_utf8_lossy(&output.stdout).into_owned()
    }

    pub(crate) fn unit_dir(&self) -> PathBuf {
        self.runtime.join("containers/systemd/ramlet")
    }

    pub(crate) fn volume_root(&self) -> PathBuf {
        self.volumes
            .clone()
            .unwrap_or_else(|| PathBuf::from("/run/ramlet/volumes"))
    }
}

/// A spec directory, a secrets directory and a running ramlet.
pub(crate) struct Agent {
    pub(crate) scope: Scope,
    pub(crate) dir: PathBuf,
    pub(crate) child: Option<Child>,
    /// More `ramlet run` arguments.
    pub(crate) args: Vec<String>,
    /// More environment for `ramlet run`.
    pub(crate) envs: Vec<(String, String)>,
}

pub(crate) fn ramlet_binary() -> PathBuf {
    // target/debug/deps/agent-<hash> -> target/debug/ramlet
    let exe = std::env::current_exe().unwrap();
    let bin = exe.parent().and_then(Path::parent).unwrap().join("ramlet");
    assert!(
        bin.exists(),
        "{} is missing: build it with cargo build -p ramlet",
        bin.display()
    );
    bin
}

impl Agent {
    pub(crate) fn new(scope: Scope, name: &str) -> Self {
        Self::new_in(scope, name, Path::new("/tmp"))
    }

    /// An agent whose folders are under `base` (a unit with `PrivateTmp=` cannot see /tmp).
    pub(crate) fn new_in(scope: Scope, name: &str, base: &Path) -> Self {
        let dir = base.join(format!("ramlet-e2e-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        for sub in ["specs", "secrets", "state"] {
            std::fs::create_dir_all(dir.join(sub)).unwrap();
        }
        // The host's policy lets specs name the loopback peers the cloud tests start.
        std::fs::write(
            dir.join("config.yaml"),
            format!(
                "policy:\n  endpoints: [\"{}\"]\n",
                ramlet_e2e::peers::LOOPBACK_ENDPOINTS
            ),
        )
        .unwrap();
        let agent = Self {
            scope,
            dir,
            child: None,
            args: Vec::new(),
            envs: Vec::new(),
        };
        agent.chown();
        agent.spec(
            "store",
            &format!(
                "apiVersion: ramlet.dev/v1alpha1\nkind: SecretStore\nmetadata: {{name: local}}\nspec:\n  refreshInterval: 1h\n  file: {{directory: {}}}\n",
                agent.dir.join("secrets").display()
            ),
        );
        agent
    }

    pub(crate) fn chown(&self) {
        if !self.scope.system {
            let status = Command::new("chown")
                .args(["-R", &self.scope.user])
                .arg(&self.dir)
                .status()
                .unwrap();
            assert!(status.success());
        }
    }

    /// Gives `path` alone to the test user (in user scope). Not the whole folder: a `chown -R`
    /// touches every spec's change time, so ramlet would see (and parse) every spec anew, which
    /// is no user's rotation.
    fn chown_one(&self, path: &Path) {
        if !self.scope.system {
            let status = Command::new("chown")
                .arg(&self.scope.user)
                .arg(path)
                .status()
                .unwrap();
            assert!(status.success());
        }
    }

    pub(crate) fn spec(&self, name: &str, text: &str) {
        let path = self.dir.join("specs").join(format!("{name}.yaml"));
        let tmp = self.dir.join(format!(".{name}.tmp"));
        std::fs::write(&tmp, text).unwrap();
        self.chown_one(&tmp);
        std::fs::rename(tmp, path).unwrap();
    }

    pub(crate) fn remove_spec(&self, name: &str) {
        std::fs::remove_file(self.dir.join("specs").join(format!("{name}.yaml"))).unwrap();
    }

    pub(crate) fn secret(&self, name: &str, value: &str) {
        let tmp = self.dir.join(format!(".{name}.secret.tmp"));
        std::fs::write(&tmp, value).unwrap();
        self.chown_one(&tmp);
        std::fs::rename(tmp, self.dir.join("secrets").join(name)).unwrap();
    }

    pub(crate) fn start(&mut self) {
        let mut command = self.command("run");
        command
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(self.dir.join("ramlet.log")).unwrap());
        self.child = Some(command.spawn().unwrap());
    }

    /// `ramlet <subcommand>` run as this scope's user, with the options `start` gives `run`.
    pub(crate) fn command(&self, subcommand: &str) -> Command {
        let mut command = self.scope.command(ramlet_binary().to_str().unwrap());
        command
            .arg(subcommand)
            .arg("--config")
            .arg(self.dir.join("config.yaml"))
            .arg("--spec-dir")
            .arg(self.dir.join("specs"))
            .arg("--state-dir")
            .arg(self.dir.join("state"))
            .arg("--bus")
            .arg(&self.scope.bus)
            .arg("--scope")
            .arg(if self.scope.system { "system" } else { "user" })
            .arg("--unit-dir")
            .arg(self.scope.unit_dir())
            .arg("--volume-root")
            .arg(self.scope.volume_root())
            .args(&self.args)
            .envs(self.envs.iter().map(|(k, v)| (k, v)))
            // moto checks no signature; these keys only reach the test's own loopback peer.
            .env("AWS_ACCESS_KEY_ID", "testing")
            .env("AWS_SECRET_ACCESS_KEY", "testing")
            .env("AWS_EC2_METADATA_DISABLED", "true");
        command
    }

    pub(crate) fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            // runuser forwards SIGTERM to ramlet.
            let _ = terminate(child.id());
            let deadline = Instant::now() + Duration::from_secs(20);
            while child.try_wait().unwrap().is_none() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Kills ramlet with `SIGKILL` (by the pid in its pid file: in user scope the test's child
    /// is runuser) and waits until it is gone.
    pub(crate) fn kill(&mut self) {
        let pid = std::fs::read_to_string(self.dir.join("state/ramlet.pid")).unwrap();
        let pid = pid.trim().to_owned();
        assert!(
            Command::new("kill")
                .args(["-KILL", &pid])
                .status()
                .unwrap()
                .success()
        );
        // (Reaped by its parent: the test in system scope, runuser in user scope.)
        self.stop();
        self.wait("the agent gone", Duration::from_secs(10), || {
            (!Path::new(&format!("/proc/{pid}")).exists()).then_some(())
        });
    }

    /// Stops ramlet, runs `while_stopped`, starts it again and waits for its first reconcile.
    pub(crate) fn restart(&mut self, while_stopped: impl FnOnce()) {
        let updated = self.status()["updated"].clone();
        self.stop();
        while_stopped();
        // The status timestamp has a resolution of one second.
        std::thread::sleep(Duration::from_millis(1100));
        self.start();
        self.wait("a fresh status", Duration::from_mins(1), || {
            (self.status()["updated"] != updated).then_some(())
        });
    }

    pub(crate) fn status(&self) -> serde_json::Value {
        std::fs::read_to_string(self.dir.join("state/status.json"))
            .ok()
            .and_then(|t| serde_json::from_str(&t).ok())
            .unwrap_or_default()
    }

    pub(crate) fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("ramlet.log")).unwrap_or_default()
    }

    /// Waits until `check` holds, or fails the test with what ramlet logged.
    pub(crate) fn wait<T>(
        &self,
        what: &str,
        timeout: Duration,
        mut check: impl FnMut() -> Option<T>,
    ) -> T {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(value) = check() {
                return value;
            }
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {what}\nstatus: {}\nramlet log:\n{}",
                self.status(),
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        self.stop();
        // Leave the manager clean for the next test: every spec away, one last reconcile.
        let _ = std::fs::remove_dir_all(self.dir.join("specs"));
        std::fs::create_dir_all(self.dir.join("specs")).unwrap();
        self.chown();
        self.start();
        // Not `wait`: a panic here, while a failed test unwinds, would abort the run.
        let deadline = Instant::now() + Duration::from_mins(1);
        while std::fs::read_dir(self.scope.unit_dir()).map_or(0, Iterator::count) > 0
            && Instant::now() < deadline
        {
            std::thread::sleep(Duration::from_millis(100));
        }
        self.stop();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

pub(crate) fn terminate(pid: u32) -> std::io::Result<()> {
    let status = Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()?;
    if status.success() {
        Ok(())
    } else {
        Err(std::io::Error::other("kill failed"))
    }
}

/// A busybox container that prints its mount, each file's mode and content, then waits; it
/// exits at once on SIGTERM.
pub(crate) fn container(
    name: &str,
    files: &[(&str, &str, &str)],
    rotation: &str,
    env: &str,
) -> String {
    let mut spec = format!(
        "apiVersion: ramlet.dev/v1alpha1\nkind: Container\nmetadata: {{name: {name}}}\nspec:\n  image: localhost/busybox:latest\n  network: none\n  \
         environment: {{MARK: \"{env}\"}}\n  exec:\n    - sh\n    - -c\n    - >-\n      trap 'exit 0' TERM;\n      echo \"MOUNT $(grep ' /run/s ' /proc/self/mountinfo)\";\n      \
         echo \"MARK $MARK\";\n      for f in /run/s/*; do echo \"FILE $f $(stat -L -c %a $f) $(cat $f)\"; done;\n      \
         echo \"DIR $(stat -c %a /run/s/..data/)\";\n      while true; do sleep 1 & wait $!; done\n  volumes:\n    - name: s\n      mountPath: /run/s\n      sizeLimit: 64Ki\n      files:\n"
    );
    for (path, mode, secret) in files {
        let _ = write!(
            spec,
            "        - path: {path}\n          mode: {mode}\n          secret: {{store: local, name: {secret}}}\n"
        );
    }
    let _ = writeln!(spec, "  rotation: {{strategy: {rotation}}}");
    spec
}

/// A busybox container running as uid and gid 101 (a rootless nginx's), reading `key`: owned
/// by 101:101, mode 0400, from secret `secret`. It prints its IDs, then each file's mode, owner and
/// content, then waits; it exits at once on SIGTERM.
pub(crate) fn owned_container(name: &str, secret: &str, uid: u32) -> String {
    format!(
        "apiVersion: ramlet.dev/v1alpha1\nkind: Container\nmetadata: {{name: {name}}}\nspec:\n  image: localhost/busybox:latest\n  network: none\n  user: \"101:101\"\n  exec:\n    - sh\n    - -c\n    - >-\n      trap 'exit 0' TERM;\n      echo \"ID $(id -u):$(id -g)\";\n      \
         for f in /run/s/*; do echo \"OWNED $f $(stat -L -c '%a %u:%g' $f) $(cat $f)\"; done;\n      \
         while true; do sleep 1 & wait $!; done\n  volumes:\n    - name: s\n      mountPath: /run/s\n      sizeLimit: 64Ki\n      files:\n        - path: key\n          mode: 0400\n          uid: {uid}\n          gid: {uid}\n          secret: {{store: local, name: {secret}}}\n  rotation: {{strategy: restart}}\n"
    )
}

/// One `MOUNT` line: fstype and super options of the volume as the container sees it.
pub(crate) fn mount_line(logs: &str) -> Option<String> {
    logs.lines()
        .find(|l| l.starts_with("MOUNT ") && l.len() > 6)
        .map(str::to_owned)
}

pub(crate) struct Invocations {
    pub(crate) scope: Scope,
    pub(crate) units: Vec<String>,
    pub(crate) seen:
        std::sync::Arc<std::sync::Mutex<std::collections::BTreeMap<String, BTreeSet<String>>>>,
    pub(crate) stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    pub(crate) thread: Option<std::thread::JoinHandle<()>>,
}

impl Invocations {
    /// Samples `units`, starting from the invocations they run under now (taken by the caller
    /// before it changes anything: the first sample may come after a restart began).
    pub(crate) fn watch(scope: &Scope, units: &[String], now: &[(String, String)]) -> Self {
        let initial: std::collections::BTreeMap<String, BTreeSet<String>> = now
            .iter()
            .filter(|(_, id)| !id.is_empty())
            .map(|(unit, id)| (unit.clone(), [id.clone()].into()))
            .collect();
        let seen = std::sync::Arc::new(std::sync::Mutex::new(initial));
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (sampled_scope, sampled_units) = (scope.clone(), units.to_vec());
        let (scope, units) = (scope.clone(), units.to_vec());
        let (seen2, stop2) = (seen.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            while !stop2.load(std::sync::atomic::Ordering::Relaxed) {
                for (unit, id) in invocations(&scope, &units) {
                    if !id.is_empty() {
                        seen2
                            .lock()
                            .unwrap()
                            .entry(unit)
                            .or_insert_with(BTreeSet::new)
                            .insert(id);
                    }
                }
                std::thread::sleep(Duration::from_millis(100));
            }
        });
        Self {
            scope: sampled_scope,
            units: sampled_units,
            seen,
            stop,
            thread: Some(thread),
        }
    }

    /// Stops sampling and returns what was seen, with one last sample: the caller may just
    /// have seen a state the sampler's last round came too early for.
    pub(crate) fn finish(mut self) -> std::collections::BTreeMap<String, BTreeSet<String>> {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            thread.join().unwrap();
        }
        let mut seen = self.seen.lock().unwrap().clone();
        for (unit, id) in invocations(&self.scope, &self.units) {
            if !id.is_empty() {
                seen.entry(unit).or_default().insert(id);
            }
        }
        seen
    }
}

/// The invocation ID of each unit (`<name>.service`) that is active, from one `systemctl
/// show`: an invocation whose start never got the container running is not a restart anybody
/// would see (empty then).
pub(crate) fn invocations(scope: &Scope, units: &[String]) -> Vec<(String, String)> {
    let mut args = vec![
        "show",
        "-p",
        "Id",
        "-p",
        "InvocationID",
        "-p",
        "ActiveState",
    ];
    let services: Vec<String> = units.iter().map(|u| format!("{u}.service")).collect();
    args.extend(services.iter().map(String::as_str));
    let text = scope.systemctl(&args);
    text.split("\n\n")
        .filter_map(|block| {
            let field = |key: &str| {
                block
                    .lines()
                    .find_map(|l| l.strip_prefix(key))
                    .map(str::to_owned)
            };
            let id = field("Id=")?;
            let active = field("ActiveState=").is_some_and(|a| a == "active");
            Some((
                id.trim_end_matches(".service").to_owned(),
                if active {
                    field("InvocationID=")?
                } else {
                    String::new()
                },
            ))
        })
        .collect()
}

/// The spec of consumer `i` of a shared secret: a busybox container reading `shared` and a
/// secret of its own (`own<i>`), restarted on rotation; `mark` goes into its environment.
pub(crate) fn consumer(name: &str, i: usize, mark: &str) -> String {
    container(
        name,
        &[("s", "0400", "shared"), ("o", "0400", &format!("own{i}"))],
        "restart",
        mark,
    )
}

/// Writes the secrets and specs of the consumers `names` of one shared secret.
pub(crate) fn consumers(agent: &Agent, names: &[String]) {
    agent.secret("shared", "one");
    for (i, name) in names.iter().enumerate() {
        agent.secret(&format!("own{i}"), &format!("own-{i}"));
        agent.spec(name, &consumer(name, i, "one"));
    }
}

/// Calls moto's Secrets Manager through boto3 (`create_secret`, `put_secret_value`, ...).
pub(crate) fn moto(aws: &ramlet_e2e::peers::Aws, args: &[&str]) {
    let status = Command::new(ramlet_e2e::peers::venv().join("bin/python3"))
        .args(["-c", "import boto3, sys; c = boto3.client('secretsmanager', region_name='eu-west-1', endpoint_url=sys.argv[1], aws_access_key_id='testing', aws_secret_access_key='testing'); getattr(c, sys.argv[2])(**dict(a.split('=', 1) for a in sys.argv[3:]))"])
        .arg(format!("http://127.0.0.1:{}", aws.moto.port))
        .args(args)
        .status()
        .unwrap();
    assert!(status.success(), "moto {args:?}");
}

/// The host's policy an `openbao` store needs: the loopback peers named, and the agent's
/// `keys/` folder (made here) for its credentials; returns that folder.
pub(crate) fn openbao_policy(agent: &Agent) -> PathBuf {
    openbao_policy_with(agent, "")
}

/// As [`openbao_policy`], with `more` lines of policy (each `  key: value\n`).
pub(crate) fn openbao_policy_with(agent: &Agent, more: &str) -> PathBuf {
    let keys = agent.dir.join("keys");
    std::fs::create_dir_all(&keys).unwrap();
    std::fs::write(
        agent.dir.join("config.yaml"),
        format!(
            "policy:\n  endpoints: [\"{}\"]\n  identityDirectories: [\"{}\"]\n{more}",
            ramlet_e2e::peers::LOOPBACK_ENDPOINTS,
            keys.display()
        ),
    )
    .unwrap();
    keys
}

/// Lets `agent` use the OpenBao server `bao` as the store `bao`: the host's policy names the
/// server and the credentials' folder (`keys/`), and a token reading `paths` (renewable, 1 h)
/// lies there, 0600 and the scope's user's. Returns the store's spec.
pub(crate) fn openbao_store(
    agent: &Agent,
    bao: &ramlet_e2e::openbao::Bao,
    paths: &[&str],
) -> String {
    let keys = openbao_policy(agent);
    bao.reader_policy("host", paths);
    let token = keys.join("bao-token");
    ramlet_e2e::openbao::write_private(&token, &bao.token("host", "1h"));
    agent.chown();
    format!(
        "apiVersion: ramlet.dev/v1alpha1\nkind: SecretStore\nmetadata: {{name: bao}}\nspec:\n  refreshInterval: 10s\n  openbao:\n    address: \"{}\"\n    mount: secret\n    auth:\n      token: {{file: {}}}\n",
        bao.address(),
        token.display()
    )
}

/// A field of spec `name` in the agent's status file (`phase`, `reason`, `message`); empty
/// when it is not there.
pub(crate) fn spec_field(agent: &Agent, name: &str, field: &str) -> String {
    agent.status()["specs"][name][field]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}
