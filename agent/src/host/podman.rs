//! Finding out which Podman (and Quadlet) this host has.

use std::process::Command;

use anyhow::{Context as _, Result};
use ramlet_quadlet::PodmanVersion;

/// Where Debian and Fedora install the Quadlet generator.
pub const QUADLET: &str = "/usr/libexec/podman/quadlet";

/// Podman's absolute path, for commands systemd runs for ramlet (a transient unit's
/// `ExecStart` takes no search path): the first `podman` on `PATH`, else `/usr/bin/podman`.
#[must_use]
pub fn binary() -> String {
    std::env::var_os("PATH")
        .iter()
        .flat_map(std::env::split_paths)
        .map(|dir| dir.join("podman"))
        .find(|path| path.is_file())
        .and_then(|path| path.to_str().map(str::to_owned))
        .unwrap_or_else(|| "/usr/bin/podman".to_owned())
}

/// The version to render units for: the Quadlet generator's own (`quadlet -version`), since it
/// is what reads the units, or else `podman --version`.
pub fn detect_version() -> Result<PodmanVersion> {
    let run = |program: &str, arg: &str| -> Result<PodmanVersion> {
        let output = Command::new(program)
            .arg(arg)
            .output()
            .with_context(|| format!("cannot run {program}"))?;
        anyhow::ensure!(
            output.status.success(),
            "{program} {arg} failed: {}",
            output.status
        );
        Ok(PodmanVersion::from_version_output(
            &String::from_utf8_lossy(&output.stdout),
        )?)
    };
    run(QUADLET, "-version")
        .or_else(|quadlet| run("podman", "--version").map_err(|podman| podman.context(quadlet)))
        .context("cannot tell the Podman version; pass --podman-version")
}
