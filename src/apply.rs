//! Carries out a plan on an engine: images, network, volumes, then containers, concurrently where
//! they are independent, reporting each step to [`Progress`]. Every object it makes carries the
//! lab's labels before it exists, so a failure at any point leaves only what the next `lab up`
//! converges or `lab down` removes.

use std::fmt::Write as _;

use futures_util::future::join_all;

use crate::engine::{Engine, EngineError};
use crate::plan::{Action, ContainerSpec, Desired, ImageSpec, LABEL_CONTEXT_HASH};
use crate::ui::Progress;

/// What `up` did to containers, by container name.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Summary {
    pub images_built: Vec<String>,
    pub created: Vec<String>,
    pub recreated: Vec<String>,
    pub started: Vec<String>,
    pub kept: Vec<String>,
    pub removed: Vec<String>,
    /// Steps that failed: (object, error).
    pub failed: Vec<(String, String)>,
}

impl Summary {
    pub fn changed(&self) -> bool {
        !(self.images_built.is_empty()
            && self.created.is_empty()
            && self.recreated.is_empty()
            && self.started.is_empty()
            && self.removed.is_empty())
    }

    pub fn describe(&self) -> String {
        let mut s = String::new();
        for (label, list) in [
            ("built", &self.images_built),
            ("created", &self.created),
            ("recreated", &self.recreated),
            ("started", &self.started),
            ("removed", &self.removed),
            ("unchanged", &self.kept),
        ] {
            if !list.is_empty() {
                let _ = write!(
                    s,
                    "{}{label} {}",
                    if s.is_empty() { "" } else { "; " },
                    list.join(", ")
                );
            }
        }
        s
    }
}

/// Builds the images whose context changed or that are missing, concurrently.
pub async fn images<E: Engine>(
    engine: &E,
    images: &[ImageSpec],
    ui: &Progress,
    summary: &mut Summary,
) -> Result<(), EngineError> {
    let results = join_all(images.iter().map(|spec| image(engine, spec, ui))).await;
    let mut first_err = None;
    for (spec, r) in images.iter().zip(results) {
        match r {
            Ok(true) => summary.images_built.push(spec.tag.clone()),
            Ok(false) => {}
            Err(e) => {
                summary
                    .failed
                    .push((format!("image {}", spec.tag), e.to_string()));
                first_err.get_or_insert(e);
            }
        }
    }
    first_err.map_or(Ok(()), Err)
}

async fn image<E: Engine>(
    engine: &E,
    spec: &ImageSpec,
    ui: &Progress,
) -> Result<bool, EngineError> {
    let key = format!("image {}", spec.tag);
    if let Some(info) = engine.image_info(&spec.tag).await? {
        if info.labels.get(LABEL_CONTEXT_HASH) == Some(&spec.context_hash) {
            return Ok(false);
        }
    }
    ui.start(&key, "building");
    let result = engine
        .build_image(spec, |line| {
            let line = line.trim();
            if line.starts_with("Step ") || line.starts_with("lab:") {
                ui.update(&key, line);
            }
        })
        .await;
    match &result {
        Ok(id) => ui.finish(&key, true, &format!("built {}", short(id))),
        Err(e) => ui.finish(&key, false, &first_line(&e.to_string())),
    }
    result.map(|_| true)
}

/// Creates or reuses the lab's network and its volumes.
pub async fn network_and_volumes<E: Engine>(
    engine: &E,
    desired: &Desired,
    ui: &Progress,
) -> Result<(), EngineError> {
    let key = format!("network {}", desired.network.name);
    let id = engine
        .create_network(&desired.network)
        .await
        .inspect_err(|e| ui.finish(&key, false, &first_line(&e.to_string())))?;
    ui.update(
        &key,
        &format!("ready ({} {})", desired.network.subnet, short(&id)),
    );
    let existing = engine
        .list_volumes(&crate::engine::LabelFilter::lab(&desired.lab))
        .await?;
    for v in desired
        .volumes
        .iter()
        .filter(|v| !existing.iter().any(|e| e.name == v.name))
    {
        engine.create_volume(v).await?;
    }
    Ok(())
}

/// Applies container actions: removals first, then every creation and start concurrently.
/// Failures are collected, not fatal to the others. `started` hears of each container running
/// as planned (started now, or kept) as soon as it is.
pub async fn containers<E: Engine>(
    engine: &E,
    desired: &Desired,
    actions: &[Action],
    ui: &Progress,
    summary: &mut Summary,
    started: &(dyn Fn(&str) + Sync),
) {
    let spec = |name: &str| desired.containers.iter().find(|c| c.name == name);
    let removals = actions.iter().filter_map(|a| match a {
        Action::Remove { name, id } | Action::Recreate { name, id } => {
            Some((name, id, matches!(a, Action::Remove { .. })))
        }
        _ => None,
    });
    let results = join_all(removals.map(|(name, id, gone)| async move {
        let key = format!("container {name}");
        if gone {
            ui.start(&key, "removing (no longer in the lab file)");
        }
        let r = engine.remove_container(id).await;
        if gone {
            ui.finish(
                &key,
                r.is_ok(),
                if r.is_ok() {
                    "removed"
                } else {
                    "could not remove"
                },
            );
        }
        (name.clone(), gone, r)
    }))
    .await;
    for (name, gone, r) in results {
        match r {
            Ok(()) if gone => summary.removed.push(name),
            Ok(()) => {}
            Err(e) => summary
                .failed
                .push((format!("container {name}"), e.to_string())),
        }
    }
    // Services and nodes start together: a VM spends seconds in firmware before it asks for
    // DHCP, and iPXE retries, so nodes need not wait for the services to be up.
    let group: Vec<(&Action, &ContainerSpec)> = actions
        .iter()
        .filter_map(|a| spec(a.name()).map(|s| (a, s)))
        .collect();
    let results = join_all(group.iter().map(|(a, s)| async move {
        let r = container(engine, a, s, ui).await;
        if r.is_ok() {
            started(&s.name);
        }
        r
    }))
    .await;
    for ((a, _), r) in group.iter().zip(results) {
        let name = a.name().to_string();
        match (a, r) {
            (_, Err(e)) => summary
                .failed
                .push((format!("container {name}"), e.to_string())),
            (Action::Create { .. }, Ok(())) => summary.created.push(name),
            (Action::Recreate { .. }, Ok(())) => summary.recreated.push(name),
            (Action::Start { .. }, Ok(())) => summary.started.push(name),
            (Action::Keep { .. }, Ok(())) => summary.kept.push(name),
            (Action::Remove { .. }, Ok(())) => {}
        }
    }
}

async fn container<E: Engine>(
    engine: &E,
    action: &Action,
    spec: &ContainerSpec,
    ui: &Progress,
) -> Result<(), EngineError> {
    let key = format!("container {}", spec.name);
    let (verb, create) = match action {
        Action::Create { .. } => ("creating", true),
        Action::Recreate { .. } => ("recreating (its configuration changed)", true),
        Action::Start { .. } => ("starting (it was not running)", false),
        Action::Keep { .. } | Action::Remove { .. } => return Ok(()),
    };
    ui.start(&key, verb);
    let result = async {
        if create {
            engine.create_container(spec).await?;
        }
        engine.start_container(&spec.name).await
    }
    .await;
    match &result {
        Ok(()) => ui.finish(&key, true, &format!("running at {}", spec.ip)),
        Err(e) => ui.finish(&key, false, &first_line(&e.to_string())),
    }
    result
}

fn short(id: &str) -> &str {
    let id = id.strip_prefix("sha256:").unwrap_or(id);
    &id[..id.len().min(12)]
}

fn first_line(s: &str) -> String {
    s.lines().next().unwrap_or_default().to_string()
}
