//! `ferry`: the command-line client of Ferry. This file only parses arguments, runs the
//! command on a small runtime and turns failures into one-line messages and exit codes (one per
//! kind of outcome: [`exit`]).

mod args;
mod client;
mod commands;
mod complete;
mod config;
mod device;
mod error;
mod exit;
mod files;
mod github;
mod output;
mod progress;
mod sse;
mod watch;

use std::process::ExitCode;

use clap::CommandFactory as _;
use clap::Parser as _;

fn main() -> ExitCode {
    // Under `COMPLETE=<shell>` the shell asks for completions (see `complete`): answer and exit.
    clap_complete::CompleteEnv::with_factory(args::Cli::command).complete();
    let cli = match args::Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            // Help and version print to stdout and succeed; a usage error is exit code 1.
            let code = if e.use_stderr() {
                exit::USAGE
            } else {
                exit::SUCCESS
            };
            let _ = e.print();
            return ExitCode::from(code);
        }
    };
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(exit::USAGE);
        }
    };
    match runtime.block_on(commands::run(cli)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            match e.downcast_ref::<error::ApiError>() {
                Some(api) => ExitCode::from(api.exit_code()),
                None => ExitCode::from(exit::USAGE),
            }
        }
    }
}
