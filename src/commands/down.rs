//! `lab down`: removes everything of a lab, found by its labels alone.

use std::path::Path;

use anyhow::Context;
use futures_util::future::join_all;

use crate::engine::{DockerEngine, Engine, LabelFilter, NetworkQuery};

pub async fn run(file: &Path, volumes: bool, name: Option<String>) -> anyhow::Result<()> {
    let (lab, state_dir) = match name {
        Some(n) => (n, None),
        None => {
            let lab = super::load(file)
                .context("finding which lab to take down (or name it with --name LAB)")?;
            let dir = lab.state_dir();
            (lab.name, Some(dir))
        }
    };
    let engine = DockerEngine::connect().await?;
    let removed = down(&engine, &lab, volumes).await?;
    if volumes {
        if let Some(dir) = state_dir.filter(|d| d.exists()) {
            std::fs::remove_dir_all(&dir)
                .with_context(|| format!("removing generated files in {}", dir.display()))?;
        }
    }
    if removed.is_empty() {
        println!("lab `{lab}` is not up: nothing to remove");
    } else {
        println!("lab `{lab}` is down: removed {}", removed.join(", "));
    }
    Ok(())
}

/// Removes the lab's containers (at once, never waiting out a stop grace period), its network
/// and, with `volumes`, its volumes. Returns what it removed.
pub async fn down<E: Engine>(engine: &E, lab: &str, volumes: bool) -> anyhow::Result<Vec<String>> {
    let filter = LabelFilter::lab(lab);
    let containers = super::up::current(engine, lab).await?;
    let results = join_all(containers.iter().map(|c| engine.remove_container(&c.id))).await;
    let mut removed = Vec::new();
    let mut errors = Vec::new();
    for (c, r) in containers.iter().zip(results) {
        match r {
            Ok(()) => removed.push(format!("container {}", c.name)),
            Err(e) => errors.push(format!("container {}: {e}", c.name)),
        }
    }
    let networks = engine
        .find_networks(&NetworkQuery::Labels(filter.clone()))
        .await?;
    for n in &networks {
        match engine.remove_network(&n.id).await {
            Ok(()) => removed.push(format!("network {}", n.name)),
            Err(e) => errors.push(format!("network {}: {e}", n.name)),
        }
    }
    if volumes {
        for v in engine.list_volumes(&filter).await? {
            match engine.remove_volume(&v.name).await {
                Ok(()) => removed.push(format!("volume {}", v.name)),
                Err(e) => errors.push(format!("volume {}: {e}", v.name)),
            }
        }
    }
    if !errors.is_empty() {
        anyhow::bail!("could not remove everything of lab `{lab}`:\n  {}\nrun `lab down` again once the cause is fixed", errors.join("\n  "));
    }
    Ok(removed)
}
