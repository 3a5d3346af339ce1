//! The `ramlet` binary: parses arguments and hands over to the library.

use std::process::ExitCode;

use clap::Parser;
use ramlet::cli::Cli;

fn main() -> ExitCode {
    // ramlet's own helper (see `ramlet::host::idmap`), before the documented command line.
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    if let Some(code) = ramlet::host::idmap::helper_main(&args) {
        return code;
    }
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(error) => {
            let usage = error.use_stderr();
            let _ = error.print();
            return if usage {
                ExitCode::from(ramlet::EX_USAGE)
            } else {
                ExitCode::SUCCESS
            };
        }
    };
    ramlet::cli::run(cli)
}
