//! Subcommands: each loads the lab, plans, applies or observes, and reports; nothing more.

pub mod config;
pub mod console;
pub mod down;
pub mod fetch_assets;
pub mod inventory;
pub mod logs;
pub mod power;
pub mod status;
pub mod up;
pub mod wait;

use std::path::Path;
use std::time::Duration;

use crate::cli::{Cli, Command};
use crate::engine::DockerEngine;
use crate::error::{Error, Result};
use crate::lab::{self, Diag, Diagnostics, Lab};

/// Runs the command the user asked for.
pub fn run(cli: Cli) -> Result<()> {
    let file = cli.file;
    match cli.command {
        Command::Validate => config::validate(&file),
        Command::Config { json } => config::config(&file, json),
        Command::FetchAssets {
            names,
            mirror,
            check,
        } => fetch_assets::run(
            &file,
            fetch_assets::Options {
                names,
                mirror,
                check,
            },
        ),
        Command::Up {
            dry_run,
            no_wait,
            no_fetch,
            timeout,
            names,
        } => {
            let opts = up::Options {
                dry_run,
                no_wait,
                no_fetch,
                timeout: Duration::from_secs(timeout),
                names,
            };
            block_on(up::run(&file, opts))
        }
        Command::Down {
            volumes,
            name,
            timeout,
        } => block_on(down::run(
            &file,
            volumes,
            name,
            Duration::from_secs(timeout),
        )),
        Command::Status { json, name } => block_on(status::run(&file, json, name)),
        Command::Power {
            all,
            words,
            timeout,
        } => block_on(power::run(&file, all, &words, Duration::from_secs(timeout))),
        Command::Wait {
            nodes,
            phase,
            boot_source,
            timeout,
        } => block_on(wait::run(
            &file,
            &nodes,
            wait::Target { phase, boot_source },
            Duration::from_secs(timeout),
        )),
        Command::Console {
            node,
            lines,
            no_follow,
        } => block_on(console::run(
            &file,
            console::Options {
                node,
                lines,
                no_follow,
            },
        )),
        Command::Logs { name, follow, tail } => block_on(logs::run(&file, name, follow, tail)),
        Command::Inventory {
            nodes,
            format,
            driver,
            from,
            namespace,
        } => inventory::run(
            &file,
            &crate::inventory::Options {
                format,
                driver,
                from,
                namespace,
                nodes,
            },
        ),
    }
}

fn block_on<F: std::future::Future<Output = Result<()>>>(f: F) -> Result<()> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(f)
}

/// Loads and validates the lab file.
pub fn load(file: &Path) -> Result<Lab> {
    Ok(lab::load(file)?)
}

/// The Docker engine, as the `docker` CLI would find it.
pub async fn engine() -> Result<DockerEngine> {
    Ok(DockerEngine::connect().await?)
}

/// Takes lab `name`'s lock (see [`crate::lock`]) for a command that changes the lab, saying on
/// stderr whom it waits for.
pub fn lock(name: &str, timeout: Duration) -> Result<crate::lock::LabLock> {
    crate::lock::acquire(name, timeout, |m| eprintln!("{m}")).map_err(Error::Failed)
}

/// Fails unless every name is a service or node of the lab, listing the ones it has.
pub fn check_names(lab: &Lab, names: &[String]) -> Result<()> {
    for n in names {
        if lab.service(n).is_none() && lab.node(n).is_none() {
            return Err(unknown_name(
                lab,
                format!("lab `{}` has no service or node named `{n}`", lab.name()),
                &lab.member_names(),
            ));
        }
    }
    Ok(())
}

/// Fails unless `name` is a node of the lab.
pub fn check_node(lab: &Lab, name: &str) -> Result<()> {
    if lab.node(name).is_some() {
        return Ok(());
    }
    let names: Vec<&str> = lab.nodes().iter().map(|n| n.name.as_str()).collect();
    Err(unknown_name(
        lab,
        format!("lab `{}` has no node `{name}`", lab.name()),
        &names,
    ))
}

/// A name the lab file does not define, with the names it does.
fn unknown_name(lab: &Lab, message: String, names: &[&str]) -> Error {
    Diagnostics(vec![Diag::file_level(
        lab.file(),
        message,
        Some(format!("use one of: {}", names.join(", "))),
    )])
    .into()
}
