//! `--format`: how the commands that print something print it.

use clap::ValueEnum;

/// Output formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// For people: one line per error, like a compiler.
    Text,
    /// For tools: one JSON object.
    Json,
}
