//! `ferry`: the command-line client of Ferry. This file only parses arguments, runs the
//! command on a small runtime and turns failures into one-line messages and exit codes: 0 for
//! success, 3 when the application is busy with another deployment, 1 for anything else.

mod args;
mod client;
mod commands;
mod config;
mod error;
mod files;
mod output;
mod progress;
mod sse;
mod watch;

use std::process::ExitCode;

use clap::Parser as _;

fn main() -> ExitCode {
    let cli = args::Cli::parse();
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(commands::run(cli)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            match e.downcast_ref::<error::ApiError>() {
                Some(api) => ExitCode::from(api.exit_code()),
                None => ExitCode::FAILURE,
            }
        }
    }
}
