//! A real PostgreSQL server on loopback for OpenBao's database engine to create users in: a
//! throwaway cluster of Debian's `postgresql` package (`initdb`, `pg_ctl`; run as the
//! `postgres` user when the tests run as root, since PostgreSQL refuses root), password logins
//! only, and `psql` to ask it who can log in. Stopped and removed when dropped.

use std::path::{Path, PathBuf};
use std::process::Command;

/// The cluster's superuser, whose login OpenBao creates users with.
pub const ADMIN: &str = "ramlet_admin";
/// Its password: a test's, never ramlet's.
pub const ADMIN_PASSWORD: &str = "ramlet-e2e-admin";

/// One running cluster.
#[derive(Debug)]
pub struct Postgres {
    dir: PathBuf,
    bin: PathBuf,
    /// Its port on 127.0.0.1.
    pub port: u16,
}

/// The newest installed PostgreSQL's programs.
fn bin() -> PathBuf {
    let mut found: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .expect("Debian's postgresql package (scripts/install-peers installs it)")
        .filter_map(|e| Some(e.ok()?.path().join("bin")))
        .filter(|b| b.join("initdb").exists())
        .collect();
    found.sort_by_key(|b| {
        b.parent()
            .and_then(Path::file_name)
            .and_then(|v| v.to_str()?.parse::<u32>().ok())
            .unwrap_or(0)
    });
    found.pop().expect("an initdb under /usr/lib/postgresql")
}

/// Whether the tests run as root (`/proc/self` is owned by the process's user).
fn as_root() -> bool {
    std::fs::metadata("/proc/self").is_ok_and(|m| std::os::unix::fs::MetadataExt::uid(&m) == 0)
}

impl Postgres {
    /// A new cluster in a fresh folder named after `name`, started on a free port.
    ///
    /// # Panics
    /// When PostgreSQL is not installed or does not start.
    #[must_use]
    pub fn start(name: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("ramlet-pg-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("the cluster's folder");
        if as_root() {
            let status = Command::new("chown")
                .args(["postgres:postgres", &dir.display().to_string()])
                .status()
                .expect("chown");
            assert!(status.success(), "chown postgres {}", dir.display());
        }
        let postgres = Self {
            dir,
            bin: bin(),
            port: crate::peers::free_port(),
        };
        let password = postgres.dir.join("admin-password");
        postgres.run(
            "sh",
            &[
                "-c",
                &format!(
                    "umask 077 && printf %s '{ADMIN_PASSWORD}' > '{}'",
                    password.display()
                ),
            ],
        );
        let data = postgres.dir.join("data").display().to_string();
        postgres.program(
            "initdb",
            &[
                "-D",
                &data,
                "-U",
                ADMIN,
                "--auth=scram-sha-256",
                &format!("--pwfile={}", password.display()),
                "--no-sync",
            ],
        );
        postgres.program(
            "pg_ctl",
            &[
                "-D",
                &data,
                "-l",
                &postgres.dir.join("server.log").display().to_string(),
                "-w",
                "-o",
                &format!(
                    "-p {} -c listen_addresses=127.0.0.1 -k {} -c fsync=off",
                    postgres.port,
                    postgres.dir.display()
                ),
                "start",
            ],
        );
        postgres
    }

    /// Runs `program` with `args` as the cluster's owner.
    fn run(&self, program: &str, args: &[&str]) -> String {
        let mut command = if as_root() {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--", program]);
            c
        } else {
            Command::new(program)
        };
        let out = command
            .args(args)
            .current_dir(&self.dir)
            .output()
            .unwrap_or_else(|e| panic!("{program}: {e}"));
        assert!(
            out.status.success(),
            "{program} {}: {}{}",
            args.join(" "),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn program(&self, name: &str, args: &[&str]) -> String {
        self.run(&self.bin.join(name).display().to_string(), args)
    }

    /// The connection URL OpenBao's `postgresql-database-plugin` fills in with the admin's
    /// login.
    #[must_use]
    pub fn url_template(&self) -> String {
        format!(
            "postgresql://{{{{username}}}}:{{{{password}}}}@127.0.0.1:{}/postgres?sslmode=disable",
            self.port
        )
    }

    /// Runs `query` as `user` with `password` over TCP: its output, trimmed, or what `psql`
    /// said.
    fn query(&self, user: &str, password: &str, query: &str) -> Result<String, String> {
        let out = Command::new(self.bin.join("psql"))
            .args(["-h", "127.0.0.1", "-p", &self.port.to_string(), "-U", user])
            .args(["-d", "postgres", "-w", "-tAc", query])
            .env("PGPASSWORD", password)
            .env("PGCONNECT_TIMEOUT", "5")
            .output()
            .map_err(|e| e.to_string())?;
        if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
        } else {
            Err(String::from_utf8_lossy(&out.stderr).into_owned())
        }
    }

    /// Logs in as `user` with `password` over TCP and asks who it is: `Ok(user)` when the
    /// server let it in, else what `psql` said.
    ///
    /// # Errors
    /// The refusal.
    pub fn login(&self, user: &str, password: &str) -> Result<String, String> {
        self.query(user, password, "select current_user")
    }

    /// The roles whose name starts with `prefix` (OpenBao names its users `v-<token>-<role>-...`).
    ///
    /// # Panics
    /// When the admin cannot ask.
    #[must_use]
    pub fn roles(&self, prefix: &str) -> Vec<String> {
        self.query(
            ADMIN,
            ADMIN_PASSWORD,
            &format!("select rolname from pg_roles where rolname like '{prefix}%' order by 1"),
        )
        .unwrap_or_else(|e| panic!("the admin cannot list roles: {e}"))
        .lines()
        .map(str::to_owned)
        .collect()
    }

    /// The psql program, for a container image or a test.
    #[must_use]
    pub fn psql(&self) -> PathBuf {
        self.bin.join("psql")
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        let data = self.dir.join("data").display().to_string();
        let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            self.program("pg_ctl", &["-D", &data, "-m", "immediate", "stop"]);
        }));
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
