//! Command implementations, one module per command group.

mod deploy;

use std::process::ExitCode;

use crate::args::{Cli, Command};

/// Runs the parsed command; `Err` is an operational failure (printed by `main`), while a command
/// that ran and found problems returns its own exit code.
pub fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Deploy(args) => deploy::run(args),
    }
}
