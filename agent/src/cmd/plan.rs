//! `ramlet plan`: what a reconcile would do now, printed, with nothing done.

use std::process::ExitCode;

use crate::cmd::format::Format;
use crate::config::Config;

/// `ramlet plan`: 0 when nothing would change, 2 when something would, 1 when it cannot tell.
#[must_use]
pub fn run(config: &Config, format: Format) -> ExitCode {
    let runtime = match crate::cmd::runtime() {
        Ok(runtime) => runtime,
        Err(code) => return code,
    };
    let preview = runtime.block_on(async {
        let mut reconciler = crate::agent::reconciler(config, false).await?;
        reconciler
            .preview(crate::providers::stores::Due::All)
            .await
            .map_err(anyhow::Error::msg)
    });
    match preview {
        Ok(preview) => {
            let text = match format {
                Format::Text => preview.text(),
                Format::Json => serde_json::to_string_pretty(&preview).unwrap_or_default() + "\n",
            };
            print!("{text}");
            if preview.is_empty() {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(2)
            }
        }
        Err(error) => {
            eprintln!("ramlet: {error:#}");
            ExitCode::FAILURE
        }
    }
}
