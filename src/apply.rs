//! Carries out a [`Plan`] on an engine, and takes a lab down.
//!
//! [`apply`] writes the generated files, builds images, creates the network and volumes, exports
//! built assets, then runs the container actions concurrently where they are independent,
//! reporting each step to [`Progress`]. Every object it makes carries the lab's labels before it
//! exists, so a failure at any point leaves only what the next `lab up` converges or
//! [`teardown`] removes. Per-container failures are collected, not fatal to the others.

use std::fmt::Write as _;

use anyhow::Context;
use futures_util::future::join_all;

use crate::engine::{Engine, EngineError, LabelFilter};
use crate::plan::{Action, BuiltAsset, ContainerSpec, Desired, ImagePull, ImageSpec, Plan};
use crate::ui::Progress;
/// What `up` did to containers, by container name.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Summary {
    pub images_pulled: Vec<String>,
    pub images_built: Vec<String>,
    /// Directories built assets were copied into.
    pub exported: Vec<String>,
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
        !(self.images_pulled.is_empty()
            && self.images_built.is_empty()
            && self.exported.is_empty()
            && self.created.is_empty()
            && self.recreated.is_empty()
            && self.started.is_empty()
            && self.removed.is_empty())
    }

    pub fn describe(&self) -> String {
        let mut s = String::new();
        for (label, list) in [
            ("pulled", &self.images_pulled),
            ("built", &self.images_built),
            ("exported", &self.exported),
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

/// Carries out `plan` (made from `desired`): files, images, network, volumes, assets, then
/// containers. Stops at the first failure of a shared step (the network, an image, an asset),
/// since the containers depend on it; container failures are recorded in `summary`.
pub async fn apply<E: Engine>(
    engine: &E,
    desired: &Desired,
    plan: &Plan,
    ui: &Progress,
    summary: &mut Summary,
) -> anyhow::Result<()> {
    apply_reporting(engine, desired, plan, ui, summary, &|_| {}).await
}

/// [`apply`], telling `running` of each container running as planned (started now, or kept) as
/// soon as it is, so that its readiness can be checked while the engine starts the others.
pub async fn apply_reporting<E: Engine>(
    engine: &E,
    desired: &Desired,
    plan: &Plan,
    ui: &Progress,
    summary: &mut Summary,
    running: &(dyn Fn(&str) + Sync),
) -> anyhow::Result<()> {
    crate::render::write_under(&desired.state_dir, &desired.files).with_context(|| {
        format!(
            "writing generated files under {}",
            desired.state_dir.display()
        )
    })?;
    // Only images that are built need their context on disk.
    for image in plan.images_to_build.iter().filter(|i| i.builtin) {
        let name = image
            .context
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default();
        crate::images::write_context(&desired.state_dir.join("images"), name)
            .with_context(|| format!("writing the build context of {}", image.tag))?;
    }
    pulls(engine, &plan.images_to_pull, ui, summary).await?;
    // Images built FROM another image of this plan (a user's build FROM metal-lab/smoke) wait
    // for it; the rest are built at once.
    let (after, first): (Vec<ImageSpec>, Vec<ImageSpec>) = plan
        .images_to_build
        .iter()
        .cloned()
        .partition(|i| plan.images_to_build.iter().any(|b| b.tag == i.base_image));
    images(engine, &first, ui, summary).await?;
    images(engine, &after, ui, summary).await?;
    network_and_volumes(engine, desired, plan, ui).await?;
    for asset in &plan.exports {
        export(engine, asset, ui, summary).await?;
    }
    containers(engine, desired, &plan.actions, ui, summary, running).await;
    Ok(())
}

/// Pulls missing images concurrently, each with its own progress line (a bar on a terminal).
async fn pulls<E: Engine>(
    engine: &E,
    pulls: &[ImagePull],
    ui: &Progress,
    summary: &mut Summary,
) -> Result<(), EngineError> {
    let results = join_all(pulls.iter().map(|p| pull(engine, p, ui))).await;
    let names = pulls.iter().map(|p| p.image.clone());
    record(
        names,
        results,
        &mut summary.images_pulled,
        &mut summary.failed,
    )
}

/// Records the outcome of one step per image (`names` in order): the successes in `done`, the
/// failures in `failed`; returns the first failure.
fn record(
    names: impl Iterator<Item = String>,
    results: Vec<Result<(), EngineError>>,
    done: &mut Vec<String>,
    failed: &mut Vec<(String, String)>,
) -> Result<(), EngineError> {
    let mut first_err = None;
    for (name, r) in names.zip(results) {
        match r {
            Ok(()) => done.push(name),
            Err(e) => {
                failed.push((format!("image {name}"), e.to_string()));
                first_err.get_or_insert(e);
            }
        }
    }
    first_err.map_or(Ok(()), Err)
}

async fn pull<E: Engine>(engine: &E, p: &ImagePull, ui: &Progress) -> Result<(), EngineError> {
    let key = format!("image {}", p.image);
    ui.start(&key, "pulling");
    let result = engine
        .pull_image(&p.image, |status| ui.status(&key, status))
        .await
        .map_err(|e| match e {
            // The engine knows the image; the plan knows who needs it.
            EngineError::PullFailed { image, reason, .. } => EngineError::PullFailed {
                image,
                needed_by: p.needed_by.clone(),
                reason,
                base: p.base,
            },
            other => other,
        });
    match &result {
        Ok(()) => ui.finish(&key, true, "pulled"),
        Err(e) => ui.finish(&key, false, &first_line(&e.to_string())),
    }
    result
}

/// Builds images concurrently.
async fn images<E: Engine>(
    engine: &E,
    images: &[ImageSpec],
    ui: &Progress,
    summary: &mut Summary,
) -> Result<(), EngineError> {
    let results = join_all(images.iter().map(|spec| image(engine, spec, ui))).await;
    let names = images.iter().map(|i| i.tag.clone());
    record(
        names,
        results,
        &mut summary.images_built,
        &mut summary.failed,
    )
}

async fn image<E: Engine>(engine: &E, spec: &ImageSpec, ui: &Progress) -> Result<(), EngineError> {
    let key = format!("image {}", spec.tag);
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
    result.map(drop)
}

/// Creates or reuses the lab's network, and creates its missing volumes.
async fn network_and_volumes<E: Engine>(
    engine: &E,
    desired: &Desired,
    plan: &Plan,
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
    for v in &plan.volumes_to_create {
        engine.create_volume(v).await?;
    }
    Ok(())
}

/// Copies a built asset's files out of its (just built or current) image.
async fn export<E: Engine>(
    engine: &E,
    asset: &BuiltAsset,
    ui: &Progress,
    summary: &mut Summary,
) -> anyhow::Result<()> {
    let image = engine.image_info(&asset.image).await?.with_context(|| {
        format!(
            "image {} is gone right after it was checked or built; run `lab up` again",
            asset.image
        )
    })?;
    let key = format!("{} {}", asset.name, asset.dest.display());
    ui.start(
        &key,
        &format!("copying {} from {}", asset.files.join(" and "), asset.image),
    );
    let copied = crate::smoke::export(engine, asset, &image.id).await;
    match &copied {
        Ok(()) => {
            ui.finish(
                &key,
                true,
                &format!("{} from {}", asset.files.join(" and "), asset.image),
            );
            summary.exported.push(asset.dest.display().to_string());
        }
        Err(e) => ui.finish(&key, false, &format!("{e:#}")),
    }
    copied.with_context(|| format!("for profile `{}`", asset.users.join("`, `")))
}

/// Applies container actions: removals first, then every creation and start concurrently.
/// A container whose old copy could not be removed is not made again (it would only fail
/// with "name in use"): its removal failure is reported once.
async fn containers<E: Engine>(
    engine: &E,
    desired: &Desired,
    actions: &[Action],
    ui: &Progress,
    summary: &mut Summary,
    running: &(dyn Fn(&str) + Sync),
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
        if gone || r.is_err() {
            let done = if r.is_ok() {
                "removed"
            } else {
                "could not remove"
            };
            ui.finish(&key, r.is_ok(), done);
        }
        (name.clone(), gone, r)
    }))
    .await;
    let mut stuck = Vec::new();
    for (name, gone, r) in results {
        match r {
            Ok(()) if gone => summary.removed.push(name),
            Ok(()) => {}
            Err(e) => {
                summary.failed.push((
                    format!("container {name}"),
                    format!("removing it failed: {e}"),
                ));
                stuck.push(name);
            }
        }
    }
    // Services and nodes start together: a VM spends seconds in firmware before it asks for
    // DHCP, and iPXE retries, so nodes need not wait for the services to be up.
    let group: Vec<(&Action, &ContainerSpec)> = actions
        .iter()
        .filter(|a| !stuck.iter().any(|s| s == a.name()))
        .filter_map(|a| spec(a.name()).map(|s| (a, s)))
        .collect();
    let results = join_all(group.iter().map(|(a, s)| async move {
        let r = container(engine, a, s, ui).await;
        if r.is_ok() {
            running(&s.name);
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
            create_or_replace(engine, spec).await?;
        }
        match engine.start_container(&spec.name).await {
            // Gone since it was made or seen: an interrupted `lab up`'s create that the engine
            // rolled back late. Make it again, once.
            Err(EngineError::NotFound { .. }) => {
                create_or_replace(engine, spec).await?;
                engine.start_container(&spec.name).await
            }
            r => r,
        }
    }
    .await;
    match &result {
        Ok(()) => ui.finish(&key, true, &format!("running at {}", spec.ip)),
        Err(e) => ui.finish(&key, false, &first_line(&e.to_string())),
    }
    result
}

/// Creates the container. One of that name made since the snapshot (a killed `lab up`'s create
/// that the engine was still serving: the name is `<lab>-<name>`, so it is the lab's) is removed
/// and made again as planned, rather than failing with "name already in use".
async fn create_or_replace<E: Engine>(engine: &E, spec: &ContainerSpec) -> Result<(), EngineError> {
    match engine.create_container(spec).await {
        Err(EngineError::Api {
            status: Some(409),
            message,
            ..
        }) if message.contains("already in use") => {
            engine.remove_container(&spec.name).await?;
            engine.create_container(spec).await.map(drop)
        }
        r => r.map(drop),
    }
}

fn short(id: &str) -> &str {
    let id = id.strip_prefix("sha256:").unwrap_or(id);
    &id[..id.len().min(12)]
}

fn first_line(s: &str) -> String {
    s.lines().next().unwrap_or_default().to_string()
}

/// What [`teardown`] removed, and what it could not.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Teardown {
    pub removed: Vec<String>,
    pub errors: Vec<String>,
}

/// Removes the lab's containers (at once, never waiting out a stop grace period), its network
/// and, with `volumes`, its volumes, all found by the lab's label. Running it again is a no-op.
pub async fn teardown<E: Engine>(
    engine: &E,
    lab: &str,
    volumes: bool,
) -> Result<Teardown, EngineError> {
    let filter = LabelFilter::lab(lab);
    let containers = crate::observe::containers(engine, lab).await?;
    let results = join_all(containers.iter().map(|c| engine.remove_container(&c.id))).await;
    let mut done = Teardown::default();
    for (c, r) in containers.iter().zip(results) {
        match r {
            Ok(()) => done.removed.push(format!("container {}", c.name)),
            Err(e) => done.errors.push(format!("container {}: {e}", c.name)),
        }
    }
    let networks = engine.find_networks(&filter).await?;
    for n in &networks {
        match engine.remove_network(&n.id).await {
            Ok(()) => done.removed.push(format!("network {}", n.name)),
            Err(e) => done.errors.push(format!("network {}: {e}", n.name)),
        }
    }
    if volumes {
        for v in engine.list_volumes(&filter).await? {
            match engine.remove_volume(&v.name).await {
                Ok(()) => done.removed.push(format!("volume {}", v.name)),
                Err(e) => done.errors.push(format!("volume {}: {e}", v.name)),
            }
        }
    }
    Ok(done)
}

/// Fails before anything is made if a host port the plan would publish is taken by someone
/// else (the plan leaves out ports the lab's own containers hold).
pub fn check_host_ports(plan: &Plan) -> anyhow::Result<()> {
    use std::net::{SocketAddr, TcpListener, UdpSocket};

    use crate::lab::Proto;
    let mut busy = Vec::new();
    for c in &plan.ports_to_check {
        let p = &c.binding;
        let addr = SocketAddr::new(p.host_ip, p.host_port);
        let free = match p.protocol {
            Proto::Tcp => TcpListener::bind(addr).map(drop),
            Proto::Udp => UdpSocket::bind(addr).map(drop),
        };
        if let Err(e) = free {
            busy.push(format!(
                "  host port {}/{} on {} for {} `{}` is not available: {e}",
                p.host_port, p.protocol, p.host_ip, c.role, c.owner
            ));
        }
    }
    if busy.is_empty() {
        return Ok(());
    }
    anyhow::bail!("{}\nnothing was created: free those ports, or change them in the lab file (ports, vnc_port, ipmi_port, redfish_port) or lab.publish (bmc_publish: an address of this host)", busy.join("\n"))
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::engine::{ContainerState, FakeEngine};
    use crate::lab::Lab;
    use crate::observe;
    use crate::plan::{self, Host};

    const BASE: &str = "debian:bookworm-slim";

    fn lab(dir: &Path, extra: &str) -> Lab {
        std::fs::create_dir_all(dir.join("webroot")).unwrap();
        let text = format!(
            r#"
[lab]
name = "t"
[network]
subnet = "10.1.2.0/24"
[services.dhcp]
kind = "dnsmasq"
dhcp_range = ["10.1.2.100", "10.1.2.150"]
[services.web]
kind = "httpd"
root = "webroot"
[services.ssh]
kind = "sshd"
ports = ["2222:22"]
[nodes.n]
count = 2
mac = "02:00:00:00:00:01"
ipmi_port = 623
{extra}
"#
        );
        crate::lab::from_str(&dir.join("lab.toml"), &text, &|_| None).expect("valid lab")
    }

    fn desired(lab: &Lab) -> Desired {
        let files = crate::render::render(lab).expect("render");
        plan::desired(lab, files, Host::default())
    }

    /// Plans `desired` against what `engine` holds (as `lab up` does) and applies it.
    async fn up(engine: &FakeEngine, desired: &Desired, only: &[String]) -> (Plan, Summary) {
        let snapshot = observe::snapshot(engine, desired).await.expect("snapshot");
        let plan = plan::plan(desired, &snapshot, only);
        let mut summary = Summary::default();
        apply(engine, desired, &plan, &Progress::quiet(), &mut summary)
            .await
            .expect("apply");
        (plan, summary)
    }

    fn engine() -> FakeEngine {
        FakeEngine::new().with_image(BASE, Default::default())
    }

    #[tokio::test]
    async fn missing_service_and_base_images_are_pulled_before_anything_is_built() {
        let dir = tempfile::tempdir().unwrap();
        let extra = "[services.reg]\nkind = \"container\"\nimage = \"registry:2\"\n";
        let d = desired(&lab(dir.path(), extra));
        let engine = FakeEngine::new().pullable(BASE).pullable("registry:2");
        let snapshot = observe::snapshot(&engine, &d).await.expect("snapshot");
        let p = plan::plan(&d, &snapshot, &[]);
        let pulls: Vec<_> = p
            .images_to_pull
            .iter()
            .map(|p| (p.image.as_str(), p.needed_by.as_str(), p.base))
            .collect();
        assert_eq!(
            pulls,
            [
                ("registry:2", "by service reg", false),
                (BASE, "as the base of metal-lab/dnsmasq:latest", true)
            ]
        );
        let (_, s) = up(&engine, &d, &[]).await;
        assert_eq!(s.images_pulled, ["registry:2", BASE]);
        assert!(s.failed.is_empty(), "{s:?}");
        let calls = engine.take_calls();
        let first_build = calls
            .iter()
            .position(|c| c.starts_with("build_image"))
            .unwrap();
        let last_pull = calls
            .iter()
            .rposition(|c| c.starts_with("pull_image"))
            .unwrap();
        assert!(last_pull < first_build, "{calls:?}");
        // Present now: a second up pulls nothing.
        let (p, _) = up(&engine, &d, &[]).await;
        assert!(p.images_to_pull.is_empty(), "{:?}", p.images_to_pull);
        assert!(!engine
            .take_calls()
            .iter()
            .any(|c| c.starts_with("pull_image")));
    }

    #[tokio::test]
    async fn an_image_no_registry_has_fails_naming_it_and_the_ways_out() {
        let dir = tempfile::tempdir().unwrap();
        let d = desired(&lab(dir.path(), ""));
        let bare = FakeEngine::new();
        let snapshot = observe::snapshot(&bare, &d).await.expect("snapshot");
        let p = plan::plan(&d, &snapshot, &[]);
        let mut summary = Summary::default();
        let err = apply(&bare, &d, &p, &Progress::quiet(), &mut summary)
            .await
            .expect_err("the base cannot be pulled");
        let text = format!("{err:#}");
        assert!(
            text.contains(&format!("cannot pull image {BASE} (needed as the base of")),
            "{text}"
        );
        assert!(text.contains(&format!("`docker pull {BASE}`")), "{text}");
        assert!(text.contains(".ci/make-base-image"), "{text}");
        // Nothing was built or made after the failed pull.
        let calls = bare.take_calls();
        assert!(
            !calls
                .iter()
                .any(|c| c.starts_with("build_image") || c.starts_with("create_")),
            "{calls:?}"
        );

        // A service image: the same, without the base-image way out.
        let extra = "[services.reg]\nkind = \"container\"\nimage = \"registry:2\"\n";
        let d = desired(&lab(dir.path(), extra));
        let engine = engine();
        let snapshot = observe::snapshot(&engine, &d).await.expect("snapshot");
        let p = plan::plan(&d, &snapshot, &[]);
        let err = apply(&engine, &d, &p, &Progress::quiet(), &mut Summary::default())
            .await
            .expect_err("registry:2 cannot be pulled");
        let text = format!("{err:#}");
        assert!(
            text.contains("cannot pull image registry:2 (needed by service reg)"),
            "{text}"
        );
        assert!(text.contains("`docker pull registry:2`"), "{text}");
        assert!(!text.contains("make-base-image"), "{text}");
    }

    #[tokio::test]
    async fn a_lab_is_made_once_and_a_second_up_changes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let d = desired(&lab(dir.path(), ""));
        let engine = engine();
        let (_, s) = up(&engine, &d, &[]).await;
        assert_eq!(s.images_built.len(), 4, "{s:?}");
        assert_eq!(s.created, ["t-dhcp", "t-web", "t-ssh", "t-n-1", "t-n-2"]);
        assert!(s.failed.is_empty(), "{s:?}");
        assert_eq!(
            engine.container_names(),
            ["t-dhcp", "t-n-1", "t-n-2", "t-ssh", "t-web"]
        );
        assert_eq!(
            engine.volume_names(),
            ["metal-lab-host", "t-n-1-disk", "t-n-2-disk"]
        );
        assert!(dir.path().join(".lab/t/dnsmasq/dnsmasq.conf").is_file());
        engine.take_calls();
        let (plan, s) = up(&engine, &d, &[]).await;
        assert!(plan
            .actions
            .iter()
            .all(|a| matches!(a, Action::Keep { .. })));
        assert!(!s.changed(), "{s:?}");
        let calls = engine.take_calls();
        assert!(
            !calls.iter().any(|c| c.starts_with("build_image")
                || c.starts_with("create_container")
                || c.starts_with("create_volume")
                || c.starts_with("remove_")
                || c.starts_with("start_")),
            "{calls:?}"
        );
    }

    /// A killed `lab up` can leave a create the engine finishes after the next `up` looked:
    /// that `up` replaces the container instead of failing with "name already in use".
    #[tokio::test]
    async fn a_container_made_since_the_snapshot_is_replaced_not_a_failure() {
        let dir = tempfile::tempdir().unwrap();
        let d = desired(&lab(dir.path(), ""));
        let engine = engine();
        up(&engine, &d, &[]).await;
        engine.remove_container("t-web").await.unwrap();
        let snapshot = observe::snapshot(&engine, &d).await.expect("snapshot");
        let plan = plan::plan(&d, &snapshot, &[]);
        // The engine makes t-web now, from an earlier run's request.
        engine.create_container(&d.containers[1]).await.unwrap();
        let mut s = Summary::default();
        apply(&engine, &d, &plan, &Progress::quiet(), &mut s)
            .await
            .expect("apply");
        assert!(s.failed.is_empty(), "{s:?}");
        assert_eq!(s.created, ["t-web"], "{s:?}");
        assert_eq!(engine.container_names().len(), 5);
    }

    #[tokio::test]
    async fn a_changed_container_is_removed_before_it_is_made_again_and_others_are_kept() {
        let dir = tempfile::tempdir().unwrap();
        let engine = engine();
        let first = desired(&lab(dir.path(), ""));
        up(&engine, &first, &[]).await;
        let old = observe::snapshot(&engine, &first).await.unwrap().containers;
        let old_id = &old.iter().find(|c| c.name == "t-n-1").unwrap().id;
        engine.take_calls();
        let changed = desired(&lab(dir.path(), "memory = \"1G\""));
        let (_, s) = up(&engine, &changed, &[]).await;
        assert_eq!(s.recreated, ["t-n-1", "t-n-2"]);
        assert_eq!(s.kept, ["t-dhcp", "t-web", "t-ssh"]);
        let calls = engine.take_calls();
        let at = |what: &str| {
            calls
                .iter()
                .position(|c| c == what)
                .unwrap_or_else(|| panic!("no {what} in {calls:?}"))
        };
        assert!(at(&format!("remove_container {old_id}")) < at("create_container t-n-1"));
        assert!(at("create_container t-n-1") < at("start_container t-n-1"));
        assert_eq!(
            engine.container_spec("t-n-1").unwrap().env,
            changed.containers[3].env
        );
    }

    #[tokio::test]
    async fn one_container_failing_to_start_leaves_the_others_running() {
        let dir = tempfile::tempdir().unwrap();
        let engine = engine();
        engine.fail(
            "start_container",
            Some("t-web"),
            EngineError::api("starting container", "t-web", Some(500), "boom"),
        );
        let (_, s) = up(&engine, &desired(&lab(dir.path(), "")), &[]).await;
        assert_eq!(s.failed.len(), 1, "{s:?}");
        assert_eq!(s.failed[0].0, "container t-web");
        assert!(s.failed[0].1.contains("boom"), "{s:?}");
        assert_eq!(s.created, ["t-dhcp", "t-ssh", "t-n-1", "t-n-2"]);
        // The engine removes a container that cannot start; the next up makes it again.
        engine.clear_failures();
        let (_, s) = up(&engine, &desired(&lab(dir.path(), "")), &[]).await;
        assert_eq!(s.created, ["t-web"]);
        assert_eq!(s.kept.len(), 4);
    }

    #[tokio::test]
    async fn a_failed_removal_before_a_recreate_is_reported_once_and_nothing_is_made_in_its_place()
    {
        let dir = tempfile::tempdir().unwrap();
        let engine = engine();
        up(&engine, &desired(&lab(dir.path(), "")), &[]).await;
        let snapshot = observe::snapshot(&engine, &desired(&lab(dir.path(), "")))
            .await
            .unwrap();
        let old = snapshot
            .containers
            .iter()
            .find(|c| c.name == "t-n-1")
            .unwrap()
            .id
            .clone();
        engine.fail(
            "remove_container",
            Some(&old),
            EngineError::api("removing container", &old, Some(500), "device busy"),
        );
        engine.take_calls();
        let (_, s) = up(&engine, &desired(&lab(dir.path(), "memory = \"1G\"")), &[]).await;
        assert_eq!(
            s.failed,
            [(
                "container t-n-1".to_string(),
                format!("removing it failed: removing container {old}: engine answered 500: device busy")
            )]
        );
        assert_eq!(s.recreated, ["t-n-2"]);
        assert!(!engine
            .take_calls()
            .iter()
            .any(|c| c == "create_container t-n-1"));
    }

    #[tokio::test]
    async fn containers_no_longer_in_the_file_are_removed_and_up_name_touches_only_that_name() {
        let dir = tempfile::tempdir().unwrap();
        let engine = engine();
        let full = desired(&lab(dir.path(), ""));
        // `up web` on an empty engine: the web service alone, with its image only.
        let (plan, s) = up(&engine, &full, &["web".to_string()]).await;
        assert_eq!(s.created, ["t-web"]);
        assert_eq!(s.images_built, ["metal-lab/httpd:latest"]);
        assert_eq!(plan.actions.len(), 1);
        up(&engine, &full, &[]).await;
        // A lab file without the nodes: they go, and with `up NAME` nothing else is removed.
        let mut smaller = full.clone();
        smaller
            .containers
            .retain(|c| c.role == crate::plan::Role::Service);
        let (_, s) = up(&engine, &smaller, &["ssh".to_string()]).await;
        assert!(s.removed.is_empty(), "{s:?}");
        let (_, s) = up(&engine, &smaller, &[]).await;
        assert_eq!(s.removed, ["t-n-1", "t-n-2"]);
        assert_eq!(engine.container_names(), ["t-dhcp", "t-ssh", "t-web"]);
    }

    #[tokio::test]
    async fn teardown_removes_everything_of_the_lab_and_twice_is_a_no_op() {
        let dir = tempfile::tempdir().unwrap();
        let engine = engine();
        up(&engine, &desired(&lab(dir.path(), "")), &[]).await;
        engine.add_container("not-ours", ContainerState::Running);
        let done = teardown(&engine, "t", false).await.unwrap();
        assert!(done.errors.is_empty(), "{done:?}");
        assert_eq!(done.removed.len(), 6, "{done:?}");
        assert!(done.removed.contains(&"network t-net".to_string()));
        assert_eq!(engine.container_names(), ["not-ours"]);
        assert_eq!(
            engine.volume_names().len(),
            3,
            "volumes stay without --volumes"
        );
        let again = teardown(&engine, "t", true).await.unwrap();
        assert_eq!(again.removed, ["volume t-n-1-disk", "volume t-n-2-disk"]);
        // The volume every lab on the engine shares is not this lab's to remove.
        assert_eq!(engine.volume_names(), ["metal-lab-host"]);
        assert_eq!(
            teardown(&engine, "t", true).await.unwrap(),
            Teardown::default()
        );
    }

    #[tokio::test]
    async fn the_smoke_os_is_built_once_exported_once_and_again_when_its_image_changes() {
        let dir = tempfile::tempdir().unwrap();
        let l = lab(
            dir.path(),
            "profile = \"smoke\"\n[profiles.smoke]\nkernel = \"smoke/vmlinuz\"\ninitrd = \"smoke/initrd\"",
        );
        let d = desired(&l);
        let engine = engine();
        engine.set_image_files(
            "metal-lab/smoke:latest",
            "/out",
            &[
                ("vmlinuz", b"kernel"),
                ("initrd", b"ramfs"),
                ("smoke.iso", b"cd"),
                ("disk.img.gz", b"disk"),
            ],
        );
        let (_, s) = up(&engine, &d, &[]).await;
        assert!(s
            .images_built
            .contains(&"metal-lab/smoke:latest".to_string()));
        let web = dir.path().join("webroot/smoke");
        assert_eq!(s.exported, [web.display().to_string()]);
        assert_eq!(std::fs::read(web.join("vmlinuz")).unwrap(), b"kernel");
        assert_eq!(std::fs::read(web.join("initrd")).unwrap(), b"ramfs");
        assert!(dir.path().join(".lab/t/images/smoke/Dockerfile").is_file());

        let (plan, s) = up(&engine, &d, &[]).await;
        assert!(plan.exports.is_empty() && !s.changed(), "{plan:?} {s:?}");

        // A deleted file is copied again, without a build.
        std::fs::remove_file(web.join("initrd")).unwrap();
        let (_, s) = up(&engine, &d, &[]).await;
        assert!(s.images_built.is_empty() && s.exported.len() == 1, "{s:?}");

        // Another image (same context hash, another id: rebuilt by hand) replaces the files.
        let snapshot = observe::snapshot(&engine, &d).await.unwrap();
        let labels = snapshot.images["metal-lab/smoke:latest"].labels.clone();
        engine.add_image("metal-lab/smoke:latest", labels);
        let (_, s) = up(&engine, &d, &[]).await;
        assert!(s.images_built.is_empty() && s.exported.len() == 1, "{s:?}");
    }

    #[tokio::test]
    async fn an_image_without_the_smoke_files_fails_and_the_half_copy_is_not_marked_current() {
        let dir = tempfile::tempdir().unwrap();
        let l = lab(
            dir.path(),
            "profile = \"smoke\"\n[profiles.smoke]\nkernel = \"smoke/vmlinuz\"\ninitrd = \"smoke/initrd\"",
        );
        let d = desired(&l);
        let engine = engine();
        engine.set_image_files("metal-lab/smoke:latest", "/out", &[("vmlinuz", b"kernel")]);
        let snapshot = observe::snapshot(&engine, &d).await.unwrap();
        let plan = plan::plan(&d, &snapshot, &[]);
        let mut summary = Summary::default();
        let err = apply(&engine, &d, &plan, &Progress::quiet(), &mut summary)
            .await
            .unwrap_err();
        assert!(format!("{err:#}").contains("has no /out/initrd"), "{err:#}");
        assert!(d.assets[0].exported_from().is_none());
        // Nothing was started on top of a failed shared step.
        assert!(engine.container_names().is_empty());
    }
}
