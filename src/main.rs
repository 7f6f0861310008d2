//! The `lab` binary: parse arguments, run the subcommand, map errors to exit codes in one place.

use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use metal_lab::cli::{Cli, Command};
use metal_lab::commands::{self, up, EXIT_FAILURE, EXIT_INVALID};
use metal_lab::lab::Diagnostics;

fn main() -> ExitCode {
    restore_sigpipe();
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

/// Rust ignores SIGPIPE, so printing into a closed pipe (`lab status | head -1`) would be an
/// error at every print; like other Unix tools, lab just ends quietly instead.
fn restore_sigpipe() {
    #[cfg(unix)]
    // SAFETY: called first in main, before any thread exists; SIG_DFL is a valid disposition.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}

fn run(cli: Cli) -> anyhow::Result<()> {
    let file = cli.file;
    match cli.command {
        Command::Validate => commands::config::validate(&file),
        Command::Config { json } => commands::config::config(&file, json),
        Command::Up {
            dry_run,
            no_wait,
            timeout,
            names,
        } => {
            let opts = up::Options {
                dry_run,
                no_wait,
                timeout: Duration::from_secs(timeout),
                names,
            };
            runtime()?.block_on(up::run(&file, opts))
        }
        Command::Down { volumes, name } => {
            runtime()?.block_on(commands::down::run(&file, volumes, name))
        }
        Command::Status { json, name } => {
            runtime()?.block_on(commands::status::run(&file, json, name))
        }
        Command::Power { all, words } => {
            runtime()?.block_on(commands::nodes::power(&file, all, &words))
        }
        Command::Wait {
            nodes,
            phase,
            timeout,
        } => runtime()?.block_on(commands::nodes::wait(
            &file,
            &nodes,
            &phase,
            Duration::from_secs(timeout),
        )),
        Command::Console {
            node,
            lines,
            no_follow,
        } => runtime()?.block_on(commands::console::run(
            &file,
            commands::console::Options {
                node,
                lines,
                no_follow,
            },
        )),
        Command::Logs { name, follow, tail } => {
            runtime()?.block_on(commands::logs::run(&file, name, follow, tail))
        }
        Command::FetchAssets {
            names,
            mirror,
            check,
        } => commands::fetch_assets::run(
            &file,
            commands::fetch_assets::Options {
                names,
                mirror,
                check,
            },
        ),
    }
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?)
}
