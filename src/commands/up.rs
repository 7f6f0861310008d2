//! `lab up`: load, plan against what exists, apply, wait until ready.

use std::path::Path;
use std::time::Duration;

use anyhow::Context;

use crate::apply::{self, Summary};
use crate::engine::DockerEngine;
use crate::error::{Error, Result};
use crate::lab::Lab;
use crate::observe::{self, Snapshot};
use crate::plan::{self, Desired, Host, Plan};
use crate::ready::Running;
use crate::ui::Progress;

pub struct Options {
    pub dry_run: bool,
    pub no_wait: bool,
    /// Leave missing assets missing (warn) instead of fetching them.
    pub no_fetch: bool,
    pub timeout: Duration,
    pub names: Vec<String>,
}

pub async fn run(file: &Path, opts: Options) -> Result<()> {
    let lab = super::load(file)?;
    super::check_names(&lab, &opts.names)?;
    let files = crate::render::render(&lab)
        .with_context(|| format!("generating the configs of lab `{}`", lab.name()))?;
    let desired = plan::desired(&lab, files, Host::detect());
    if opts.dry_run {
        return dry_run(&lab, &desired, &opts.names).await;
    }
    // One writer per lab: another `lab up`, `down` or `power` of it finishes first, and this
    // one then plans against what that one left.
    let _lock = super::lock(lab.name(), opts.timeout)?;
    let engine = super::engine().await?;
    let plan = plan::plan(
        &desired,
        &observe::snapshot(&engine, &desired).await?,
        &opts.names,
    );
    apply::check_host_ports(&plan)?;
    let ui = Progress::auto();
    fetch_assets(&lab, &desired, &plan, opts.no_fetch, &ui);
    let (summary, ready) = apply_and_wait(&engine, &lab, &desired, &plan, &opts, &ui).await?;
    if summary.changed() {
        ui.println(&format!("lab `{}`: {}", lab.name(), summary.describe()));
    } else {
        ui.println(&format!(
            "lab `{}` is up to date: nothing changed ({} containers)",
            lab.name(),
            summary.kept.len()
        ));
    }
    ready.map_err(Error::NotReady)?;
    if !opts.no_wait {
        ui.println(&format!("lab `{}` is ready", lab.name()));
    }
    Ok(())
}

/// Applies the plan and, unless `--no-wait`, checks each container's readiness as soon as it
/// runs, while the engine still starts the others; all of it unless Ctrl-C comes first. Says
/// what was done either way.
async fn apply_and_wait(
    engine: &DockerEngine,
    lab: &Lab,
    desired: &Desired,
    plan: &Plan,
    opts: &Options,
    ui: &Progress,
) -> Result<(Summary, std::result::Result<(), String>)> {
    let mut summary = Summary::default();
    let (tx, rx) = tokio::sync::watch::channel(Running::default());
    let started = plan.started();
    let outcome = {
        let on_running = |name: &str| tx.send_modify(|r| r.names.push(name.to_string()));
        let apply = async {
            let r =
                apply::apply_reporting(engine, desired, plan, ui, &mut summary, &on_running).await;
            tx.send_modify(|r| r.done = true);
            r
        };
        let both = async {
            if opts.no_wait {
                (apply.await, Ok(()))
            } else {
                let wait = crate::ready::wait(
                    engine,
                    lab,
                    desired,
                    &opts.names,
                    &started,
                    &rx,
                    opts.timeout,
                    ui,
                );
                tokio::join!(apply, wait)
            }
        };
        tokio::select! {
            r = both => Some(r),
            _ = tokio::signal::ctrl_c() => None,
        }
    };
    let so_far = || match summary.describe() {
        d if d.is_empty() => format!("lab `{}`: nothing was made yet", lab.name()),
        d => format!("lab `{}` so far: {d}", lab.name()),
    };
    match outcome {
        None => Err(Error::Interrupted(so_far())),
        Some((Err(e), _)) => Err(Error::from(e.context(so_far()))),
        Some((Ok(()), _)) if !summary.failed.is_empty() => {
            let list: Vec<String> = summary
                .failed
                .iter()
                .map(|(o, e)| format!("  {o}: {e}"))
                .collect();
            Err(Error::Failed(anyhow::anyhow!(
                "{} step(s) failed:\n{}\n{}",
                summary.failed.len(),
                list.join("\n"),
                so_far()
            )))
        }
        Some((Ok(()), ready)) => Ok((summary, ready)),
    }
}

/// Fetches the missing assets that nodes about to start boot (as compose pulls images), with the
/// verification of `lab fetch-assets`. A node whose asset stays missing (`--no-fetch`, offline,
/// a failed download) comes up anyway and stays in firmware/pxe: each such asset gets one
/// warning with the command that fetches it, and `up` carries on.
fn fetch_assets(lab: &Lab, desired: &Desired, plan: &Plan, no_fetch: bool, ui: &Progress) {
    let started = plan.started();
    let starts = |node: &String| {
        desired
            .containers
            .iter()
            .any(|c| &c.lab_name == node && started.contains(&c.name.as_str()))
    };
    let missing = crate::assets::missing_assets(lab);
    let wanted: Vec<&crate::lab::Asset> = missing
        .iter()
        .filter(|m| !no_fetch && m.nodes.iter().any(starts))
        .filter_map(|m| lab.assets().get(&m.asset))
        .collect();
    if wanted.is_empty() {
        for m in &missing {
            ui.println(&format!("warning: {m}"));
        }
        return;
    }
    let opts = crate::assets::Options {
        mirror: std::env::var("LAB_ASSET_MIRROR")
            .ok()
            .and_then(|m| crate::assets::parse_mirror(&m).ok()),
        attempts: 2,
        ..crate::assets::Options::default()
    };
    // The download runs on threads of its own; this task waits for it.
    let fetched = tokio::task::block_in_place(|| crate::assets::fetch(&wanted, &opts, ui));
    if let Err(e) = fetched {
        ui.println(&format!("warning: cannot fetch the lab's assets: {e}"));
    }
    // What is still missing (not wanted, or its download failed): say so once per asset.
    for m in crate::assets::missing_assets(lab) {
        ui.println(&format!("warning: {m}"));
    }
}

/// Prints the plan; against a reachable engine it shows what would change, without one
/// everything is new.
async fn dry_run(lab: &Lab, desired: &Desired, only: &[String]) -> Result<()> {
    let snapshot = match DockerEngine::connect().await {
        Ok(engine) => Some(observe::snapshot(&engine, desired).await?),
        Err(e) => {
            eprintln!(
                "(no Docker engine answers, so everything is shown as new: {})",
                e.to_string().lines().next().unwrap_or_default()
            );
            None
        }
    };
    let plan = plan::plan(desired, &snapshot.unwrap_or_else(Snapshot::default), only);
    print!("{}", crate::report::plan(lab, desired, &plan, only));
    Ok(())
}
