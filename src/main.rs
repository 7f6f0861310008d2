//! The `lab` binary: parse arguments, run the command, exit with the code its outcome maps to
//! (see [`metal_lab::error`]).

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    restore_sigpipe();
    match metal_lab::commands::run(metal_lab::cli::Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("{err}");
            ExitCode::from(err.exit_code())
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
