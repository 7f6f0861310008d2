//! `lab status`: every service and node of a lab, with state, addresses, endpoints a user can
//! paste, and power as the node's BMC reports it.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::Path;

use futures_util::future::join_all;
use serde::Serialize;

use crate::engine::{DockerEngine, Engine, ObservedContainer};
use crate::lab::{Lab, Proto};
use crate::phase::{derive, NodeTraffic, Phase};
use crate::plan::{
    ContainerSpec, PortBinding, Role, LABEL_BMC_USER, LABEL_BOOT_IP, LABEL_KIND, LABEL_MAC,
    LABEL_NAME, LABEL_ROLE,
};

#[derive(Debug, Serialize)]
pub struct Report {
    pub lab: String,
    pub services: Vec<Entry>,
    pub nodes: Vec<Entry>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Entry {
    pub name: String,
    pub kind: String,
    pub container: String,
    /// `running`, `exited`, ... or `absent`.
    pub state: String,
    pub ip: Option<String>,
    pub ports: Vec<PortBinding>,
    /// How a user reaches it: `ssh -p 2222 root@127.0.0.1`, `vnc://127.0.0.1:5901`, ...
    pub endpoints: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mac: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub boot_ip: Option<String>,
    /// Nodes: `on`, `off`, or `unknown` when the BMC does not answer; absent for services.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub power: Option<String>,
    /// Nodes: the boot phase (`off`, `firmware`, `dhcp`, `pxe`, `kernel`, `provisioning`, `up`)
    /// and the engine's time of the event that set it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub phase: Option<Phase>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub phase_since: Option<String>,
    /// Nodes: why the node cannot get further (e.g. an asset is missing).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub problem: Option<String>,
    /// URL paths of the node's kernel and initrd, to recognise their download.
    #[serde(skip)]
    pub boot_files: Vec<String>,
}

pub async fn run(file: &Path, json: bool, name: Option<String>) -> anyhow::Result<()> {
    // With a file, list what it defines (absent ones too); with --name, what the labels say.
    let (lab_name, planned, boot, creds, missing) = match name {
        Some(n) => (n, Vec::new(), BTreeMap::new(), BTreeMap::new(), Vec::new()),
        None => {
            let lab = super::load(file)?;
            // Names, addresses and ports are all status needs: no rendering (a broken
            // cloud-config template is `up`'s to report).
            let desired = super::up::desired(&lab, &[]);
            let missing = crate::assets::missing_assets(&lab);
            (
                lab.name.clone(),
                desired.containers,
                boot_files(&lab),
                bmc_credentials(&lab),
                missing,
            )
        }
    };
    let engine = DockerEngine::connect().await?;
    let mut report = report(&engine, &lab_name, &planned, &boot, &creds).await?;
    for m in &missing {
        for n in report
            .nodes
            .iter_mut()
            .filter(|n| m.nodes.contains(&n.name))
        {
            n.problem = Some(format!(
                "asset `{}` is missing ({}): run `{}`",
                m.asset,
                m.files.join(", "),
                m.command
            ));
        }
    }
    if json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", table(&report));
    }
    Ok(())
}

/// Node name -> its BMC's user and password (from the lab file), to ask the BMC directly.
pub fn bmc_credentials(lab: &Lab) -> BTreeMap<String, (String, String)> {
    lab.nodes
        .iter()
        .map(|n| (n.name.clone(), (n.bmc_user.clone(), n.bmc_password.clone())))
        .collect()
}

/// `boot_files`: node name -> URL paths of its kernel and initrd (from the lab file, if any).
/// Each node's kernel and initrd as URL paths on the web service (absolute URLs are elsewhere).
pub fn boot_files(lab: &Lab) -> BTreeMap<String, Vec<String>> {
    lab.nodes
        .iter()
        .map(|n| {
            let profile = n.profile.as_ref().and_then(|p| lab.profiles.get(p));
            let files = profile
                .into_iter()
                .flat_map(|p| p.kernel.iter().chain(p.initrd.iter()))
                .filter_map(|f| crate::lab::web_path(f))
                .map(|p| format!("/{p}"))
                .collect();
            (n.name.clone(), files)
        })
        .collect()
}

pub async fn report<E: Engine>(
    engine: &E,
    lab: &str,
    planned: &[ContainerSpec],
    boot_files: &BTreeMap<String, Vec<String>>,
    bmc_credentials: &BTreeMap<String, (String, String)>,
) -> anyhow::Result<Report> {
    let observed = super::up::current(engine, lab).await?;
    let mut entries: Vec<(Role, Entry)> = planned
        .iter()
        .map(|c| {
            (
                c.role,
                planned_entry(c, observed.iter().find(|o| o.name == c.name)),
            )
        })
        .collect();
    for o in observed
        .iter()
        .filter(|o| !planned.iter().any(|c| c.name == o.name))
    {
        entries.push(observed_entry(o));
    }
    let powers = join_all(entries.iter().map(|(role, e)| async move {
        match (role, e.state.as_str()) {
            (Role::Node, "running") => {
                let bmc =
                    e.ip.as_deref()
                        .and_then(|ip| ip.parse::<std::net::Ipv4Addr>().ok());
                let bmc = bmc.map(|ip| std::net::SocketAddr::from((ip, crate::lab::IPMI_PORT)));
                let creds = bmc_credentials.get(&e.name);
                Some(crate::ready::power_state(engine, &e.container, bmc, creds).await)
            }
            (Role::Node, _) => Some("off".to_string()),
            _ => None,
        }
    }))
    .await;
    let mut report = Report {
        lab: lab.to_string(),
        services: Vec::new(),
        nodes: Vec::new(),
    };
    for ((role, mut e), p) in entries.into_iter().zip(powers) {
        e.power = p;
        e.boot_files = boot_files.get(&e.name).cloned().unwrap_or_default();
        match role {
            Role::Service => report.services.push(e),
            Role::Node => report.nodes.push(e),
        }
    }
    add_phases(engine, &mut report).await;
    Ok(report)
}

/// Reads the dnsmasq and web logs once, each node's own log, and derives every node's phase.
async fn add_phases<E: Engine>(engine: &E, report: &mut Report) {
    let log_of = |kind: &str| {
        report
            .services
            .iter()
            .find(|s| s.kind == kind && s.state == "running")
            .map(|s| s.container.clone())
    };
    let (dhcp, web) = (log_of("dnsmasq"), log_of("httpd"));
    let read = |c: Option<String>| async move {
        match c {
            Some(c) => engine.logs_timestamped(&c).await.unwrap_or_default(),
            None => String::new(),
        }
    };
    let (dhcp_log, web_log) = futures_util::join!(read(dhcp), read(web));
    let node_logs = join_all(
        report
            .nodes
            .iter()
            // A node its BMC reports off is `off` whatever its log says: no need to read it.
            .map(|n| {
                let needed = n.state == "running" && n.power.as_deref() != Some("off");
                read(needed.then(|| n.container.clone()))
            }),
    )
    .await;
    for (n, log) in report.nodes.iter_mut().zip(node_logs) {
        if n.state != "running" {
            n.phase = Some(Phase::Off);
            continue;
        }
        let traffic = NodeTraffic {
            name: n.name.clone(),
            mac: n.mac.clone().unwrap_or_default(),
            ip: n.boot_ip.clone().unwrap_or_default(),
            boot_files: n.boot_files.clone(),
        };
        let powered = match n.power.as_deref() {
            Some("on") => Some(true),
            Some("off") => Some(false),
            _ => None,
        };
        let (phase, since) = derive(&traffic, powered, &log, &dhcp_log, &web_log);
        n.phase = Some(phase);
        n.phase_since = since;
    }
}

fn planned_entry(c: &ContainerSpec, o: Option<&ObservedContainer>) -> Entry {
    let ports = match o {
        Some(o) if o.running => o.ports.clone(),
        _ => c.ports.clone(),
    };
    Entry {
        name: c.lab_name.clone(),
        kind: c.labels.get(LABEL_KIND).cloned().unwrap_or_default(),
        container: c.name.clone(),
        state: o.map_or("absent".to_string(), |o| o.state.to_string()),
        ip: Some(c.ip.to_string()),
        endpoints: endpoints(&c.labels, &ports),
        ports,
        mac: c.labels.get(LABEL_MAC).cloned(),
        boot_ip: c.labels.get(LABEL_BOOT_IP).cloned(),
        power: None,
        phase: None,
        phase_since: None,
        problem: None,
        boot_files: Vec::new(),
    }
}

fn observed_entry(o: &ObservedContainer) -> (Role, Entry) {
    let role = if o.labels.get(LABEL_ROLE).map(String::as_str) == Some("node") {
        Role::Node
    } else {
        Role::Service
    };
    let entry = Entry {
        name: o
            .labels
            .get(LABEL_NAME)
            .cloned()
            .unwrap_or_else(|| o.name.clone()),
        kind: o.labels.get(LABEL_KIND).cloned().unwrap_or_default(),
        container: o.name.clone(),
        state: o.state.to_string(),
        ip: o.ip.map(|ip| ip.to_string()),
        endpoints: endpoints(&o.labels, &o.ports),
        ports: o.ports.clone(),
        mac: o.labels.get(LABEL_MAC).cloned(),
        boot_ip: o.labels.get(LABEL_BOOT_IP).cloned(),
        power: None,
        phase: None,
        phase_since: None,
        problem: None,
        boot_files: Vec::new(),
    };
    (role, entry)
}

/// A published address as a client would dial it: the wildcard is reached on loopback.
fn host(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) if v4.is_unspecified() => "127.0.0.1".into(),
        IpAddr::V6(v6) if v6.is_unspecified() => "[::1]".into(),
        IpAddr::V6(v6) => format!("[{v6}]"),
        other => other.to_string(),
    }
}

fn endpoints(labels: &crate::engine::Labels, ports: &[PortBinding]) -> Vec<String> {
    let kind = labels
        .get(LABEL_KIND)
        .map(String::as_str)
        .unwrap_or_default();
    let user = labels
        .get(LABEL_BMC_USER)
        .cloned()
        .unwrap_or_else(|| "admin".into());
    ports
        .iter()
        .map(|p| {
            let h = host(p.host_ip);
            match (kind, p.container_port, p.protocol) {
                ("sshd", 22, Proto::Tcp) => format!("ssh -p {} root@{h}", p.host_port),
                ("node", 5901, Proto::Tcp) => format!("vnc://{h}:{}", p.host_port),
                ("node", _, Proto::Udp) => format!(
                    "ipmitool -I lanplus -H {h} -p {} -U {user} -P <password>",
                    p.host_port
                ),
                (_, 443, Proto::Tcp) => format!("https://{h}:{}/", p.host_port),
                (_, 80, Proto::Tcp) => format!("http://{h}:{}/", p.host_port),
                (_, _, proto) => format!("{h}:{}/{}", p.host_port, proto.as_str()),
            }
        })
        .collect()
}

/// The plain-text table `lab status` prints.
pub fn table(r: &Report) -> String {
    let mut rows = vec![vec![
        "SERVICE".to_string(),
        "KIND".into(),
        "STATE".into(),
        "IP".into(),
        "ENDPOINTS".into(),
    ]];
    for e in &r.services {
        rows.push(vec![
            e.name.clone(),
            e.kind.clone(),
            e.state.clone(),
            e.ip.clone().unwrap_or_default(),
            e.endpoints.join("  "),
        ]);
    }
    let mut out = format!("lab {}\n\n{}", r.lab, columns(&rows));
    if !r.nodes.is_empty() {
        let mut rows = vec![vec![
            "NODE".to_string(),
            "STATE".into(),
            "POWER".into(),
            "PHASE".into(),
            "MAC".into(),
            "BOOT IP".into(),
            "BMC IP".into(),
            "ENDPOINTS".into(),
        ]];
        for e in &r.nodes {
            let phase = match (&e.phase, &e.phase_since, &e.problem) {
                (_, _, Some(problem)) => format!("stuck: {problem}"),
                (Some(p), Some(t), None) => format!("{p} since {}", short_time(t)),
                (Some(p), None, None) => p.to_string(),
                (None, _, None) => String::new(),
            };
            rows.push(vec![
                e.name.clone(),
                e.state.clone(),
                e.power.clone().unwrap_or_default(),
                phase,
                e.mac.clone().unwrap_or_default(),
                e.boot_ip.clone().unwrap_or_default(),
                e.ip.clone().unwrap_or_default(),
                e.endpoints.join("  "),
            ]);
        }
        out.push('\n');
        out.push_str(&columns(&rows));
    }
    out
}

/// `2026-11-21T01:02:03.456Z` -> `01:02:03`.
fn short_time(ts: &str) -> &str {
    ts.split_once('T')
        .map_or(ts, |(_, t)| t.get(..8).unwrap_or(t))
}

fn columns(rows: &[Vec<String>]) -> String {
    let n = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..n)
        .map(|i| {
            rows.iter()
                .map(|r| r.get(i).map_or(0, |c| c.chars().count()))
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    for r in rows {
        let cells: Vec<String> = r
            .iter()
            .enumerate()
            .map(|(i, c)| {
                if i + 1 == r.len() {
                    c.clone()
                } else {
                    format!("{c:<w$}", w = widths[i])
                }
            })
            .collect();
        out.push_str(cells.join("  ").trim_end());
        out.push('\n');
    }
    out
}
