//! Subcommands: each loads the lab, plans, applies and reports, and nothing more.

pub mod config;
pub mod console;
pub mod down;
pub mod fetch_assets;
pub mod logs;
pub mod nodes;
pub mod status;
pub mod up;

use std::path::Path;

use crate::lab::{self, Lab};

/// Exit code for a runtime failure (engine, network, a service that does not come up).
pub const EXIT_FAILURE: u8 = 1;
/// Exit code for an invalid lab file or invalid usage.
pub const EXIT_INVALID: u8 = 2;

/// Loads and validates the lab file; the error is a [`lab::Diagnostics`] (exit code 2).
pub fn load(file: &Path) -> anyhow::Result<Lab> {
    Ok(lab::load(file)?)
}

/// Fails (exit code 2) unless every name is a service or node of the lab, listing the ones it has.
pub fn check_names(lab: &Lab, names: &[String]) -> anyhow::Result<()> {
    for n in names {
        if lab.service(n).is_none() && lab.node(n).is_none() {
            let all: Vec<&str> = lab
                .services
                .iter()
                .map(|s| s.name.as_str())
                .chain(lab.nodes.iter().map(|n| n.name.as_str()))
                .collect();
            return Err(unknown_name(
                lab,
                format!("lab `{}` has no service or node named `{n}`", lab.name),
                &all,
            ));
        }
    }
    Ok(())
}

/// A name the lab file does not define (exit code 2), with the names it does.
pub(crate) fn unknown_name(lab: &Lab, message: String, names: &[&str]) -> anyhow::Error {
    crate::lab::Diagnostics(vec![crate::lab::Diag::file_level(
        &lab.file,
        message,
        Some(format!("use one of: {}", names.join(", "))),
    )])
    .into()
}
