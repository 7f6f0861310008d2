//! The `lab` binary: parse arguments, run the subcommand, map errors to exit codes in one place.

use std::process::ExitCode;

use clap::Parser;
use metal_lab::cli::{Cli, Command};
use metal_lab::commands::{self, EXIT_FAILURE, EXIT_INVALID};
use metal_lab::lab::Diagnostics;

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            if let Some(diags) = err.downcast_ref::<Diagnostics>() {
                eprintln!("{diags}");
                return ExitCode::from(EXIT_INVALID);
            }
            eprintln!("error: {err:#}");
            ExitCode::from(EXIT_FAILURE)
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Validate => commands::config::validate(&cli.file),
        Command::Config { json } => commands::config::config(&cli.file, json),
        other => anyhow::bail!("`{}` is not built yet", format!("{other:?}").to_lowercase()),
    }
}
