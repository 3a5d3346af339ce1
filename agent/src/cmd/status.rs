//! `ramlet status`: what the running agent last wrote in its status file.

use std::process::ExitCode;

use crate::cmd::format::Format;

/// `ramlet status`: the status file, printed; 0 when every spec is `Ready` and nothing failed.
#[must_use]
pub fn run(state_dir: &std::path::Path, format: Format) -> ExitCode {
    match crate::status::Status::read(state_dir) {
        Ok(status) => {
            let text = match format {
                Format::Text => status.text(),
                Format::Json => serde_json::to_string_pretty(&status).unwrap_or_default() + "\n",
            };
            print!("{text}");
            let healthy = status.errors.is_empty()
                && status
                    .specs
                    .values()
                    .all(|s| s.phase == crate::status::Phase::Ready);
            if healthy {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            }
        }
        Err(error) => {
            eprintln!("ramlet: no status in {}: {error}", state_dir.display());
            ExitCode::FAILURE
        }
    }
}
