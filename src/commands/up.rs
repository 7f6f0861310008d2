//! `lab up`: render, plan, check host ports, build images, create the network and volumes, apply
//! container actions, then wait until every service and BMC answers.

use std::net::{IpAddr, SocketAddr, TcpListener, UdpSocket};
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};

use crate::apply::{self, Summary};
use crate::engine::{DockerEngine, Engine, ObservedContainer};
use crate::lab::{Lab, Power, Proto, IPMI_PORT};
use crate::plan::{
    self, Action, ContainerSpec, Current, Desired, Host, Inputs, Role, LABEL_CONFIG_HASH,
};
use crate::ready::Probe;
use crate::render::{self, RenderedFile};
use crate::ui::Progress;

pub struct Options {
    pub dry_run: bool,
    pub no_wait: bool,
    pub timeout: Duration,
    pub names: Vec<String>,
}

pub async fn run(file: &Path, opts: Options) -> anyhow::Result<()> {
    let lab = super::load(file)?;
    super::check_names(&lab, &opts.names)?;
    let files = render::render(&lab)
        .with_context(|| format!("generating the configs of lab `{}`", lab.name))?;
    let desired = desired(&lab, &files);
    if opts.dry_run {
        return dry_run(&lab, &desired, &files, &opts.names).await;
    }
    let engine = DockerEngine::connect().await?;
    let ui = Progress::auto();
    up(&engine, &lab, &files, &desired, &opts, &ui).await
}

pub fn desired(lab: &Lab, files: &[RenderedFile]) -> Desired {
    let state_dir = lab.state_dir();
    let hash = |prefix: &str| render::hash_files(files, Path::new(prefix));
    let host = Host {
        kvm_device: Path::new("/dev/kvm").exists(),
    };
    plan::desired(
        lab,
        &Inputs {
            state_dir: &state_dir,
            files_hash: &hash,
            host,
        },
    )
}

/// The lab's containers as the engine reports them.
pub async fn current<E: Engine>(engine: &E, lab: &str) -> anyhow::Result<Vec<ObservedContainer>> {
    let filter = crate::engine::LabelFilter::lab(lab);
    Ok(engine
        .list_containers(&filter)
        .await
        .with_context(|| format!("listing the containers of lab `{lab}`"))?)
}

fn to_current(observed: &[ObservedContainer]) -> Vec<Current> {
    observed
        .iter()
        .map(|c| Current {
            name: c.name.clone(),
            id: c.id.clone(),
            config_hash: c.labels.get(LABEL_CONFIG_HASH).cloned(),
            running: c.running,
        })
        .collect()
}

pub async fn up<E: Engine>(
    engine: &E,
    lab: &Lab,
    files: &[RenderedFile],
    desired: &Desired,
    opts: &Options,
    ui: &Progress,
) -> anyhow::Result<()> {
    let observed = current(engine, &lab.name).await?;
    let actions = plan::diff(&desired.containers, &to_current(&observed), &opts.names);
    check_host_ports(desired, &observed, &actions)?;

    let state_dir = lab.state_dir();
    render::write(lab, files)
        .with_context(|| format!("writing generated files under {}", state_dir.display()))?;
    // Nodes that boot an asset not fetched yet come up anyway and stay in firmware/pxe; say how
    // to fetch it rather than failing halfway.
    for missing in crate::assets::missing_assets(lab) {
        ui.println(&format!("warning: {missing}"));
    }
    crate::smoke::ensure_smoke_os(engine, lab, ui).await?;
    let mut summary = Summary::default();
    let needed: Vec<_> = desired
        .images
        .iter()
        .filter(|i| {
            actions.iter().any(|a| {
                !matches!(a, Action::Remove { .. })
                    && desired
                        .containers
                        .iter()
                        .any(|c| c.name == a.name() && c.image == i.tag)
            })
        })
        .cloned()
        .collect();
    // Only images that may be built need their context on disk.
    for image in &needed {
        let name = image
            .context
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default();
        crate::images::write_context(&state_dir.join("images"), name)
            .with_context(|| format!("writing the build context of {}", image.tag))?;
    }
    // A node (re)started now must reach the power state its file asks for; one that was kept
    // stays as the user last left it through its BMC.
    let fresh: Vec<&str> = actions
        .iter()
        .filter(|a| !matches!(a, Action::Keep { .. } | Action::Remove { .. }))
        .map(Action::name)
        .collect();
    // Each container's readiness is checked as soon as it has started, while the engine still
    // starts the others (on a busy host it spends seconds on a few containers).
    let (started_tx, started) = tokio::sync::watch::channel(Started::default());
    let mut ready = Ok(());
    let interrupted = tokio::select! {
        r = async {
            apply::images(engine, &needed, ui, &mut summary).await?;
            apply::network_and_volumes(engine, desired, ui).await?;
            let on_started = |name: &str| started_tx.send_modify(|s| s.names.push(name.to_string()));
            let apply = async {
                apply::containers(engine, desired, &actions, ui, &mut summary, &on_started).await;
                let failed = !summary.failed.is_empty();
                started_tx.send_modify(|s| (s.done, s.failed) = (true, failed));
            };
            if opts.no_wait {
                apply.await;
            } else {
                let wait = wait_ready(engine, lab, desired, &opts.names, &fresh, opts.timeout, ui, &started);
                ready = tokio::join!(apply, wait).1;
            }
            Ok::<_, crate::engine::EngineError>(())
        } => { r.map_err(anyhow::Error::from).with_context(|| report(lab, &summary))?; false }
        _ = tokio::signal::ctrl_c() => true,
    };
    if interrupted {
        bail!("interrupted. {}\nwhat was made carries lab `{}`'s labels: run `lab up` again to finish, or `lab down` to remove it", report(lab, &summary), lab.name);
    }
    if !summary.failed.is_empty() {
        let list: Vec<String> = summary
            .failed
            .iter()
            .map(|(o, e)| format!("  {o}: {e}"))
            .collect();
        bail!(
            "{} step(s) failed:\n{}\n{}",
            summary.failed.len(),
            list.join("\n"),
            report(lab, &summary)
        );
    }
    if summary.changed() {
        ui.println(&format!("lab `{}`: {}", lab.name, summary.describe()));
    } else {
        ui.println(&format!(
            "lab `{}` is up to date: nothing changed ({} containers)",
            lab.name,
            summary.kept.len()
        ));
    }
    ready?;
    if !opts.no_wait {
        ui.println(&format!("lab `{}` is ready", lab.name));
    }
    Ok(())
}

/// What `up` has started so far, for [`wait_ready`] to begin with each container at once.
#[derive(Debug, Default)]
pub struct Started {
    /// Containers (names) running as planned.
    names: Vec<String>,
    /// Every container was started, or failed to.
    done: bool,
    /// Some failed: up reports that, and readiness no longer matters.
    failed: bool,
}

fn report(lab: &Lab, s: &Summary) -> String {
    let done = s.describe();
    format!(
        "lab `{}` so far: {}",
        lab.name,
        if done.is_empty() {
            "nothing changed".into()
        } else {
            done
        }
    )
}

/// Fails before anything is made if a host port the lab would publish is taken by someone else.
/// Ports this lab's own containers already publish are theirs and skipped.
fn check_host_ports(
    desired: &Desired,
    observed: &[ObservedContainer],
    actions: &[Action],
) -> anyhow::Result<()> {
    let ours = |ip: IpAddr, port: u16, proto: Proto| {
        observed.iter().any(|c| {
            c.ports.iter().any(|p| {
                p.host_port == port
                    && p.protocol == proto
                    && (p.host_ip == ip || p.host_ip.is_unspecified())
            })
        })
    };
    let mut busy = Vec::new();
    for c in desired.containers.iter().filter(|c| {
        actions
            .iter()
            .any(|a| a.name() == c.name && !matches!(a, Action::Keep { .. }))
    }) {
        for p in c
            .ports
            .iter()
            .filter(|p| !ours(p.host_ip, p.host_port, p.protocol))
        {
            let addr = SocketAddr::new(p.host_ip, p.host_port);
            let free = match p.protocol {
                Proto::Tcp => TcpListener::bind(addr).map(drop),
                Proto::Udp => UdpSocket::bind(addr).map(drop),
            };
            if let Err(e) = free {
                let what = if c.role == Role::Node {
                    "node"
                } else {
                    "service"
                };
                busy.push(format!(
                    "  host port {}/{} on {} for {what} `{}` is not available: {e}",
                    p.host_port,
                    p.protocol.as_str(),
                    p.host_ip,
                    c.lab_name
                ));
            }
        }
    }
    if busy.is_empty() {
        return Ok(());
    }
    bail!("{}\nnothing was created: free those ports, or change them in the lab file (ports, vnc_port, ipmi_port) or lab.publish", busy.join("\n"))
}

/// Polls every service and BMC until it answers, concurrently, each from the moment its container
/// has started, for at most `limit`; on timeout names the ones that did not answer and shows
/// their last log lines. Once a container failed to start, `up` reports that and stops waiting.
#[allow(clippy::too_many_arguments)]
pub async fn wait_ready<E: Engine>(
    engine: &E,
    lab: &Lab,
    desired: &Desired,
    only: &[String],
    fresh: &[&str],
    limit: Duration,
    ui: &Progress,
    started: &tokio::sync::watch::Receiver<Started>,
) -> anyhow::Result<()> {
    let probes: Vec<(&ContainerSpec, Probe)> = desired
        .containers
        .iter()
        .filter(|c| only.is_empty() || only.contains(&c.lab_name))
        .map(|c| (c, probe(lab, c, fresh.contains(&c.name.as_str()))))
        .collect();
    let results = futures_util::future::join_all(probes.iter().map(|(c, p)| async move {
        let mut started = started.clone();
        let up = started
            .wait_for(|s| s.done || s.names.contains(&c.name))
            .await
            .is_ok_and(|s| s.names.contains(&c.name));
        if !up {
            return Ok(());
        }
        let deadline = Instant::now() + limit;
        let key = format!("ready {}", c.lab_name);
        ui.start(&key, &format!("waiting: {}", p.describe()));
        loop {
            let last = match p.check(engine, &c.name).await {
                Ok(()) => {
                    ui.finish(&key, true, &p.describe());
                    return Ok(());
                }
                Err(e) => e,
            };
            if started.borrow().failed {
                ui.finish(&key, false, "not waited for (a container failed to start)");
                return Ok(());
            }
            if Instant::now() >= deadline {
                ui.finish(&key, false, &last);
                return Err((c.name.clone(), p.describe(), last));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }))
    .await;
    let mut failures = Vec::new();
    for (name, what, why) in results.into_iter().filter_map(Result::err) {
        let logs = engine
            .logs(&name, Some(15))
            .await
            .unwrap_or_else(|e| format!("(no logs: {e})"));
        failures.push(format!("container {name} is not ready after {}s (wanted: {what}; last: {why})\n--- last log lines of {name} ---\n{}", limit.as_secs(), logs.trim_end()));
    }
    if failures.is_empty() {
        return Ok(());
    }
    bail!(
        "{}\nsee `lab status`; raise --timeout if the machine is slow",
        failures.join("\n")
    )
}

fn probe(lab: &Lab, c: &ContainerSpec, fresh: bool) -> Probe {
    match c.role {
        Role::Node => {
            let node = lab.node(&c.lab_name);
            Probe::Ipmi {
                ip: c.ip,
                port: IPMI_PORT,
                power_on: fresh && node.is_some_and(|n| n.power == Power::On),
                credentials: node.map(|n| (n.bmc_user.clone(), n.bmc_password.clone())),
            }
        }
        Role::Service => lab
            .service(&c.lab_name)
            .map_or(Probe::Running, |s| Probe::for_service(s.kind, s.ip)),
    }
}

async fn dry_run(
    lab: &Lab,
    desired: &Desired,
    files: &[RenderedFile],
    only: &[String],
) -> anyhow::Result<()> {
    println!("lab `{}` (dry run: nothing is changed)", lab.name);
    println!(
        "\nnetwork {} subnet {} gateway {}",
        desired.network.name, desired.network.subnet, desired.network.gateway
    );
    println!(
        "\nimages (built from lab's own Dockerfiles, FROM {}):",
        lab.base_image
    );
    for i in &desired.images {
        println!("  {} context-hash {}", i.tag, &i.context_hash[..12]);
    }
    println!("\nvolumes:");
    for v in &desired.volumes {
        println!("  {}", v.name);
    }
    // Against a reachable engine, show what would change; without one, everything is new.
    let actions = match DockerEngine::connect().await {
        Ok(engine) => Some(plan::diff(
            &desired.containers,
            &to_current(&current(&engine, &lab.name).await?),
            only,
        )),
        Err(e) => {
            println!(
                "\n(no Docker engine answers, so every container is shown as new: {})",
                e.to_string().lines().next().unwrap_or_default()
            );
            None
        }
    };
    println!("\ncontainers:");
    for c in desired
        .containers
        .iter()
        .filter(|c| only.is_empty() || only.contains(&c.lab_name))
    {
        let action = actions
            .as_ref()
            .and_then(|a| a.iter().find(|a| a.name() == c.name))
            .map_or("create", action_word);
        println!(
            "  {action} {} ({}) image {} ip {}",
            c.name,
            if c.role == Role::Node {
                "node"
            } else {
                "service"
            },
            c.image,
            c.ip
        );
        let ports: Vec<String> = c
            .ports
            .iter()
            .map(|p| {
                format!(
                    "{}:{}->{}/{}",
                    p.host_ip,
                    p.host_port,
                    p.container_port,
                    p.protocol.as_str()
                )
            })
            .collect();
        print_list("ports", &ports);
        print_list("devices", &c.devices);
        print_list("caps", &c.cap_add);
        let mounts: Vec<String> = c
            .mounts
            .iter()
            .map(|m| {
                format!(
                    "{}:{}{}",
                    m.source,
                    m.target,
                    if m.read_only { ":ro" } else { "" }
                )
            })
            .collect();
        print_list("mounts", &mounts);
        let labels: Vec<String> = c.labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
        print_list("labels", &labels);
    }
    for a in actions
        .iter()
        .flatten()
        .filter(|a| matches!(a, Action::Remove { .. }))
    {
        println!("  remove {} (not in the lab file any more)", a.name());
    }
    println!("\nfiles (under {}):", lab.state_dir().display());
    for f in files {
        println!("  {}", f.path.display());
    }
    Ok(())
}

fn action_word(a: &Action) -> &'static str {
    match a {
        Action::Create { .. } => "create",
        Action::Recreate { .. } => "recreate",
        Action::Start { .. } => "start",
        Action::Keep { .. } => "keep",
        Action::Remove { .. } => "remove",
    }
}

fn print_list(what: &str, items: &[String]) {
    if !items.is_empty() {
        println!("      {what:<8} {}", items.join(", "));
    }
}
