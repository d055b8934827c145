//! `time-cli`: parses the command line, runs it, and exits with a code scripts can trust
//! (`time_cli::exit`).

use std::process::ExitCode;

use clap::Parser;
use clap::error::ErrorKind;
use time_cli::cli::Cli;
use time_cli::exit;

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            // Clap exits 2 on a usage error; here 2 means "node unreachable", so usage is 1.
            return match e.kind() {
                ErrorKind::DisplayHelp | ErrorKind::DisplayVersion => ExitCode::SUCCESS,
                _ => ExitCode::from(exit::USAGE),
            };
        }
    };
    match time_cli::run(cli) {
        Ok(()) => ExitCode::from(exit::OK),
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(exit::code_of(&e))
        }
    }
}
