//! `mailmig`: the command-line front end of `mailmig-core`.
//!
//! Thin by design: `args` holds the clap types, `commands/` one module per command, `report` the
//! human-readable rendering of errors. This file only maps results to exit codes (sysexits).
#![forbid(unsafe_code)]

mod args;
mod commands;
mod defaults;
mod exit;
mod generate;
mod output;
mod report;
mod version;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = match args::Cli::try_parse() {
        Ok(cli) => cli,
        Err(err) => {
            let code = if err.use_stderr() {
                exit::USAGE
            } else {
                exit::OK
            };
            // Nothing useful can be done if the terminal is gone.
            let _ = err.print();
            return ExitCode::from(code);
        }
    };
    match commands::run(cli) {
        Ok(code) => ExitCode::from(code),
        Err(failure) => {
            output::stderr_line(&failure.message);
            ExitCode::from(failure.code)
        }
    }
}
