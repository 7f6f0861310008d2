//! `lab status`: every service and node of a lab, with state, addresses, endpoints a user can
//! paste, and power as the node's BMC reports it.

use std::net::IpAddr;
use std::path::Path;

use futures_util::future::join_all;
use serde::Serialize;

use crate::engine::{DockerEngine, Engine, ObservedContainer};
use crate::lab::Proto;
use crate::plan::{ContainerSpec, PortBinding, Role, LABEL_BMC_USER, LABEL_BOOT_IP, LABEL_KIND, LABEL_MAC, LABEL_NAME, LABEL_ROLE};

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
}

pub async fn run(file: &Path, json: bool, name: Option<String>) -> anyhow::Result<()> {
    // With a file, list what it defines (absent ones too); with --name, what the labels say.
    let (lab_name, planned) = match name {
        Some(n) => (n, Vec::new()),
        None => {
            let lab = super::load(file)?;
            let files = crate::render::render(&lab)?;
            let desired = super::up::desired(&lab, &files);
            (lab.name.clone(), desired.containers)
        }
    };
    let engine = DockerEngine::connect().await?;
    let report = report(&engine, &lab_name, &planned).await?;
    if json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", table(&report));
    }
    Ok(())
}

pub async fn report<E: Engine>(engine: &E, lab: &str, planned: &[ContainerSpec]) -> anyhow::Result<Report> {
    let observed = super::up::current(engine, lab).await?;
    let mut entries: Vec<(Role, Entry)> = planned.iter().map(|c| (c.role, planned_entry(c, observed.iter().find(|o| o.name == c.name)))).collect();
    for o in observed.iter().filter(|o| !planned.iter().any(|c| c.name == o.name)) {
        entries.push(observed_entry(o));
    }
    let powers = join_all(entries.iter().map(|(role, e)| async move {
        match (role, e.state.as_str()) {
            (Role::Node, "running") => Some(power(engine, &e.container).await),
            (Role::Node, _) => Some("off".to_string()),
            _ => None,
        }
    }))
    .await;
    let mut report = Report { lab: lab.to_string(), services: Vec::new(), nodes: Vec::new() };
    for ((role, mut e), p) in entries.into_iter().zip(powers) {
        e.power = p;
        match role {
            Role::Service => report.services.push(e),
            Role::Node => report.nodes.push(e),
        }
    }
    Ok(report)
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
    }
}

fn observed_entry(o: &ObservedContainer) -> (Role, Entry) {
    let role = if o.labels.get(LABEL_ROLE).map(String::as_str) == Some("node") { Role::Node } else { Role::Service };
    let entry = Entry {
        name: o.labels.get(LABEL_NAME).cloned().unwrap_or_else(|| o.name.clone()),
        kind: o.labels.get(LABEL_KIND).cloned().unwrap_or_default(),
        container: o.name.clone(),
        state: o.state.to_string(),
        ip: o.ip.map(|ip| ip.to_string()),
        endpoints: endpoints(&o.labels, &o.ports),
        ports: o.ports.clone(),
        mac: o.labels.get(LABEL_MAC).cloned(),
        boot_ip: o.labels.get(LABEL_BOOT_IP).cloned(),
        power: None,
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
    let kind = labels.get(LABEL_KIND).map(String::as_str).unwrap_or_default();
    let user = labels.get(LABEL_BMC_USER).cloned().unwrap_or_else(|| "admin".into());
    ports
        .iter()
        .map(|p| {
            let h = host(p.host_ip);
            match (kind, p.container_port, p.protocol) {
                ("sshd", 22, Proto::Tcp) => format!("ssh -p {} root@{h}", p.host_port),
                ("node", 5901, Proto::Tcp) => format!("vnc://{h}:{}", p.host_port),
                ("node", 623, Proto::Udp) => format!("ipmitool -I lanplus -H {h} -p {} -U {user} -P <password>", p.host_port),
                (_, 443, Proto::Tcp) => format!("https://{h}:{}/", p.host_port),
                (_, 80, Proto::Tcp) => format!("http://{h}:{}/", p.host_port),
                (_, _, proto) => format!("{h}:{}/{}", p.host_port, proto.as_str()),
            }
        })
        .collect()
}

/// Asks the node's BMC, over IPMI inside the node container, as `ipmitool` would.
async fn power<E: Engine>(engine: &E, container: &str) -> String {
    let script = "u=$(sed -n 's/^BMC_USER=//p' /etc/lab/node/node.env); p=$(sed -n 's/^BMC_PASSWORD=//p' /etc/lab/node/node.env); \
                  exec ipmitool -I lanplus -C 3 -H 127.0.0.1 -U \"$u\" -P \"$p\" power status";
    let argv = vec!["sh".to_string(), "-c".to_string(), script.to_string()];
    match engine.exec(container, &argv).await {
        Ok(out) if out.output.contains("is on") => "on".into(),
        Ok(out) if out.output.contains("is off") => "off".into(),
        _ => "unknown".into(),
    }
}

/// The plain-text table `lab status` prints.
pub fn table(r: &Report) -> String {
    let mut rows = vec![vec!["SERVICE".to_string(), "KIND".into(), "STATE".into(), "IP".into(), "ENDPOINTS".into()]];
    for e in &r.services {
        rows.push(vec![e.name.clone(), e.kind.clone(), e.state.clone(), e.ip.clone().unwrap_or_default(), e.endpoints.join("  ")]);
    }
    let mut out = format!("lab {}\n\n{}", r.lab, columns(&rows));
    if !r.nodes.is_empty() {
        let mut rows = vec![vec!["NODE".to_string(), "STATE".into(), "POWER".into(), "MAC".into(), "BOOT IP".into(), "BMC IP".into(), "ENDPOINTS".into()]];
        for e in &r.nodes {
            rows.push(vec![
                e.name.clone(),
                e.state.clone(),
                e.power.clone().unwrap_or_default(),
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

fn columns(rows: &[Vec<String>]) -> String {
    let n = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..n).map(|i| rows.iter().map(|r| r.get(i).map_or(0, |c| c.chars().count())).max().unwrap_or(0)).collect();
    let mut out = String::new();
    for r in rows {
        let cells: Vec<String> = r.iter().enumerate().map(|(i, c)| if i + 1 == r.len() { c.clone() } else { format!("{c:<w$}", w = widths[i]) }).collect();
        out.push_str(cells.join("  ").trim_end());
        out.push('\n');
    }
    out
}
