//! The observed model of a lab, built once per look: its containers as the engine reports them,
//! each node's power as its BMC reports it, each node's boot phase from the logs, and the
//! endpoints a user can paste. `status`, `wait`, `console` and `up`'s readiness read it; `plan`
//! reads the engine-side [`Snapshot`].
//!
//! An [`Observer`] keeps what it read of the logs between looks, so `lab wait` asks the engine
//! only for the lines written since its last poll instead of whole logs every second.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;

use futures_util::future::join_all;
use serde::{Serialize, Serializer};

use crate::engine::{
    ContainerState, Engine, EngineError, ImageInfo, LabelFilter, ObservedContainer,
};
use crate::lab::{Lab, Proto, ServiceKind, IPMI_PORT};
use crate::phase::{self, BootSource, GuestReport, NodeTraffic, Phase, VmEvent};
use crate::plan::{
    ContainerSpec, Desired, PortBinding, Role, LABEL_BMC_USER, LABEL_BOOT_IP, LABEL_KIND,
    LABEL_MAC, LABEL_MODEL, LABEL_NAME, LABEL_NICS, LABEL_ROLE, LABEL_SERIAL, LABEL_UUID,
    LABEL_VENDOR,
};

/// A node's power as its BMC reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum PowerState {
    On,
    Off,
    /// The BMC cannot be asked: its container is not running, or it does not answer.
    Unknown,
}

impl fmt::Display for PowerState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            PowerState::On => "on",
            PowerState::Off => "off",
            PowerState::Unknown => "unknown",
        })
    }
}

/// What a lab member is: a service of some kind, or a node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Service(ServiceKind),
    Node,
}

impl Kind {
    pub fn role(self) -> Role {
        match self {
            Kind::Service(_) => Role::Service,
            Kind::Node => Role::Node,
        }
    }

    /// From the kind label lab put on a container; a kind this version does not know is shown
    /// as a plain container.
    fn from_label(role: Role, kind: Option<&str>) -> Kind {
        match role {
            Role::Node => Kind::Node,
            Role::Service => Kind::Service(
                kind.and_then(|k| k.parse().ok())
                    .unwrap_or(ServiceKind::Container),
            ),
        }
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Kind::Service(k) => k.fmt(f),
            Kind::Node => f.write_str("node"),
        }
    }
}

impl Serialize for Kind {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// One service or node of the lab, as observed.
#[derive(Debug, Clone, Serialize)]
pub struct Member {
    pub name: String,
    pub kind: Kind,
    pub container: String,
    /// The container's state; `None` (shown as `absent`) when it does not exist.
    #[serde(serialize_with = "state_or_absent")]
    pub state: Option<ContainerState>,
    pub ip: Option<Ipv4Addr>,
    pub ports: Vec<PortBinding>,
    /// How a user reaches it: `ssh -p 2222 root@127.0.0.1`, `vnc://127.0.0.1:5901`, ...
    pub endpoints: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mac: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub boot_ip: Option<String>,
    /// Nodes with more than one NIC: each NIC's MAC and DHCP reservation, the first NIC first.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub nics: Option<Vec<Nic>>,
    /// Nodes: power as the BMC reports it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub power: Option<PowerState>,
    /// Nodes: the boot phase and the engine's time of the event that set it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub phase: Option<Phase>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub phase_since: Option<String>,
    /// Nodes: the device the current boot came from (pxe, http, disk, cd), once it can be told
    /// (see [`phase::boot_source`]).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub boot_source: Option<BootSource>,
    /// Nodes: boots (power ons and resets) since the node's container started.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub boots: Option<u32>,
    /// Nodes: what QEMU reported last (reset, shutdown, powerdown, panic), by whom, when.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_event: Option<VmEvent>,
    /// Nodes: why the node cannot get further (e.g. an asset is missing).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub problem: Option<String>,
    /// Nodes: the hardware identity the node is given (SMBIOS, FRU, IPMI GUIDs).
    #[serde(flatten)]
    pub identity: Identity,
    /// Nodes: what its OS saw of the machine in its last report (see [`GuestReport`]).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub guest: Option<GuestReport>,
    /// Nodes: the SHA-256 fingerprint of the certificate the BMC's Redfish service presents.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub redfish_cert_sha256: Option<String>,
}

/// One NIC of a node: its MAC and its DHCP reservation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Nic {
    pub mac: String,
    pub ip: String,
}

/// The NICs a node container's label lists (`MAC=IP` joined by spaces).
fn nics_of(labels: &crate::engine::Labels) -> Option<Vec<Nic>> {
    let list = labels.get(LABEL_NICS)?;
    Some(
        list.split_whitespace()
            .filter_map(|e| e.split_once('='))
            .map(|(mac, ip)| Nic {
                mac: mac.to_string(),
                ip: ip.to_string(),
            })
            .collect(),
    )
}

/// A node's vendor, model, serial number and system UUID, from its container's labels.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Identity {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub vendor: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub serial: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub uuid: Option<String>,
}

impl Identity {
    fn from_labels(labels: &crate::engine::Labels) -> Identity {
        let get = |k: &str| labels.get(k).cloned();
        Identity {
            vendor: get(LABEL_VENDOR),
            model: get(LABEL_MODEL),
            serial: get(LABEL_SERIAL),
            uuid: get(LABEL_UUID),
        }
    }
}

impl Member {
    pub fn running(&self) -> bool {
        self.state == Some(ContainerState::Running)
    }
}

fn state_or_absent<S: Serializer>(state: &Option<ContainerState>, s: S) -> Result<S::Ok, S::Error> {
    match state {
        Some(state) => state.serialize(s),
        None => s.serialize_str("absent"),
    }
}

/// The lab as observed: what `lab status --json` prints.
#[derive(Debug, Clone, Serialize)]
pub struct Observed {
    pub lab: String,
    pub services: Vec<Member>,
    pub nodes: Vec<Member>,
}

/// What the lab file says about a node that its container's labels do not: how to recognise
/// its downloads, how to log in to its BMC, and what keeps it from booting.
#[derive(Debug, Clone, Default)]
pub struct NodeFacts {
    /// URL paths of its kernel and initrd on the web service.
    pub boot_files: Vec<String>,
    pub credentials: Option<(String, String)>,
    pub problem: Option<String>,
}

/// What a look at the lab expects: the containers of the lab file (so absent ones are listed),
/// or nothing but the lab's name (`--name`: whatever the labels say).
#[derive(Debug, Clone, Default)]
pub struct Expected {
    pub lab: String,
    pub containers: Vec<ContainerSpec>,
    pub nodes: BTreeMap<String, NodeFacts>,
}

impl Expected {
    pub fn from_lab(lab: &Lab, desired: &Desired) -> Expected {
        let missing = crate::assets::missing_assets(lab);
        let nodes = lab
            .nodes()
            .iter()
            .map(|n| {
                let problem = missing.iter().find(|m| m.nodes.contains(&n.name)).map(|m| {
                    format!(
                        "asset `{}` is missing ({}): run `{}`",
                        m.asset,
                        m.files.join(", "),
                        m.command
                    )
                });
                let facts = NodeFacts {
                    boot_files: lab.boot_files(n),
                    credentials: Some((n.bmc_user.clone(), n.bmc_password.clone())),
                    problem,
                };
                (n.name.clone(), facts)
            })
            .collect();
        Expected {
            lab: lab.name().to_string(),
            containers: desired.containers.clone(),
            nodes,
        }
    }

    /// A lab known by name only.
    pub fn named(lab: &str) -> Expected {
        Expected {
            lab: lab.to_string(),
            ..Expected::default()
        }
    }
}

/// The lab's containers as the engine reports them, stopped ones included.
pub async fn containers<E: Engine>(
    engine: &E,
    lab: &str,
) -> Result<Vec<ObservedContainer>, EngineError> {
    engine.list_containers(&LabelFilter::lab(lab)).await
}

/// What the engine (and the host) hold of a lab's desired objects: what [`crate::plan::plan`]
/// compares the desired state with.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    pub containers: Vec<ObservedContainer>,
    /// Local images among the desired ones and those they need (services' images, bases of
    /// builds), by tag.
    pub images: BTreeMap<String, ImageInfo>,
    /// Names of the lab's volumes that exist.
    pub volumes: Vec<String>,
    /// For each built asset's directory: the id of the image its files were copied from, when
    /// they are all there.
    pub exported: BTreeMap<PathBuf, String>,
}

/// Looks once at everything `desired` names.
pub async fn snapshot<E: Engine>(engine: &E, desired: &Desired) -> Result<Snapshot, EngineError> {
    let filter = LabelFilter::lab(&desired.lab);
    let shared = LabelFilter::new().with(crate::plan::LABEL_SHARED, "host");
    let (containers, volumes, shared) = futures_util::join!(
        containers(engine, &desired.lab),
        engine.list_volumes(&filter),
        engine.list_volumes(&shared)
    );
    let volumes = volumes.and_then(|mut v| {
        v.extend(shared?);
        Ok(v)
    });
    let mut tags: Vec<String> = desired.images.iter().map(|i| i.tag.clone()).collect();
    tags.extend(desired.pull_candidates());
    let infos = join_all(tags.iter().map(|t| engine.image_info(t))).await;
    let mut images = BTreeMap::new();
    for (tag, info) in tags.into_iter().zip(infos) {
        if let Some(info) = info? {
            images.insert(tag, info);
        }
    }
    let exported = desired
        .assets
        .iter()
        .filter_map(|a| a.exported_from().map(|id| (a.dest.clone(), id)))
        .collect();
    Ok(Snapshot {
        containers: containers?,
        images,
        volumes: volumes?.into_iter().map(|v| v.name).collect(),
        exported,
    })
}

/// A container's log as read so far, and where the next read starts.
#[derive(Debug, Default)]
struct LogBuf {
    text: String,
    /// Seconds (engine time) of the last line kept; the next read asks from this second on.
    last: Option<f64>,
    /// The lines of that last second, so a second read of it keeps none twice.
    last_lines: Vec<String>,
}

impl LogBuf {
    /// The engine's `since` for the next read: the second of the last line kept.
    fn since(&self) -> Option<i64> {
        self.last.map(|t| t.floor() as i64)
    }

    /// Appends the lines of `chunk` that are new: later than the last kept, or in its second
    /// and not seen yet.
    fn append(&mut self, chunk: &str) {
        for line in chunk.lines() {
            let Some(t) = line
                .split_once(' ')
                .and_then(|(ts, _)| phase::rfc3339_seconds(ts))
            else {
                continue;
            };
            match self.last {
                Some(last) if t < last => continue,
                Some(last) if t == last && self.last_lines.iter().any(|l| l == line) => continue,
                Some(last) if t == last => {}
                _ => self.last_lines.clear(),
            }
            self.last = Some(t);
            self.last_lines.push(line.to_string());
            self.text.push_str(line);
            self.text.push('\n');
        }
    }
}

/// Looks at a lab, once ([`Observer::observe`]) or repeatedly, reading only new log lines.
pub struct Observer<'e, E> {
    engine: &'e E,
    expected: Expected,
    logs: HashMap<String, LogBuf>,
    /// Each node container's Redfish certificate fingerprint, once read (it stays in the volume).
    fingerprints: HashMap<String, String>,
}

impl<'e, E: Engine> Observer<'e, E> {
    pub fn new(engine: &'e E, expected: Expected) -> Observer<'e, E> {
        Observer {
            engine,
            expected,
            logs: HashMap::new(),
            fingerprints: HashMap::new(),
        }
    }

    /// Each running node's Redfish certificate fingerprint, as lab-bmcd logged it when it
    /// started (the last such line: a new certificate comes with a new start); a TLS handshake
    /// with the BMC's address on the lab network, once per container, for a node whose log has
    /// no such line (an image older than that line).
    async fn add_fingerprints(&mut self, nodes: &mut [Member]) {
        for n in nodes.iter_mut().filter(|n| n.running()) {
            n.redfish_cert_sha256 = self
                .logs
                .get(&n.container)
                .and_then(|l| logged_fingerprint(&l.text));
        }
        let ask: Vec<(String, SocketAddr)> = nodes
            .iter()
            .filter(|n| n.running() && n.redfish_cert_sha256.is_none())
            .filter(|n| !self.fingerprints.contains_key(&n.container))
            .filter_map(|n| {
                Some((
                    n.container.clone(),
                    SocketAddr::from((n.ip?, crate::lab::REDFISH_PORT)),
                ))
            })
            .collect();
        let found = join_all(
            ask.iter()
                .map(|(_, at)| crate::redfish::server::peer_fingerprint(*at)),
        )
        .await;
        for ((c, _), f) in ask.into_iter().zip(found) {
            if let Ok(f) = f {
                self.fingerprints.insert(c, f);
            }
        }
        for n in nodes.iter_mut().filter(|n| n.running()) {
            if n.redfish_cert_sha256.is_none() {
                n.redfish_cert_sha256 = self.fingerprints.get(&n.container).cloned();
            }
        }
    }

    pub fn lab(&self) -> &str {
        &self.expected.lab
    }

    /// Containers, power and phases, now.
    pub async fn observe(&mut self) -> Result<Observed, EngineError> {
        let found = containers(self.engine, &self.expected.lab).await?;
        let mut members: Vec<Member> = self
            .expected
            .containers
            .iter()
            .map(|c| expected_member(c, found.iter().find(|o| o.name == c.name)))
            .collect();
        for o in found
            .iter()
            .filter(|o| !self.expected.containers.iter().any(|c| c.name == o.name))
        {
            members.push(found_member(o));
        }
        let (services, mut nodes): (Vec<Member>, Vec<Member>) =
            members.into_iter().partition(|m| m.kind != Kind::Node);
        let facts = &self.expected.nodes;
        let powers = join_all(nodes.iter().map(|n| {
            let creds = facts.get(&n.name).and_then(|f| f.credentials.as_ref());
            node_power(self.engine, n, creds)
        }))
        .await;
        for (n, p) in nodes.iter_mut().zip(powers) {
            n.power = Some(p);
            n.problem = facts.get(&n.name).and_then(|f| f.problem.clone());
        }
        self.add_phases(&services, &mut nodes).await;
        self.add_fingerprints(&mut nodes).await;
        Ok(Observed {
            lab: self.expected.lab.clone(),
            services,
            nodes,
        })
    }

    /// Reads what is new in the dnsmasq and web logs and each powered node's log, and derives
    /// every node's phase from all that was read.
    async fn add_phases(&mut self, services: &[Member], nodes: &mut [Member]) {
        let running_of = |kind: ServiceKind| {
            services
                .iter()
                .find(|s| s.kind == Kind::Service(kind) && s.running())
                .map(|s| s.container.clone())
        };
        let mut wanted: Vec<String> = [ServiceKind::Dnsmasq, ServiceKind::Httpd]
            .into_iter()
            .filter_map(running_of)
            .collect();
        // Every running node's log, off ones too: QEMU's last event (a shutdown) and the boots.
        wanted.extend(
            nodes
                .iter()
                .filter(|n| n.running())
                .map(|n| n.container.clone()),
        );
        let engine = self.engine;
        let reads = join_all(wanted.iter().map(|c| {
            let since = self.logs.get(c).and_then(LogBuf::since);
            async move { engine.logs_since(c, since).await.unwrap_or_default() }
        }))
        .await;
        for (c, chunk) in wanted.iter().zip(reads) {
            self.logs.entry(c.clone()).or_default().append(&chunk);
        }
        let text = |c: Option<String>| {
            c.and_then(|c| self.logs.get(&c))
                .map_or("", |l| l.text.as_str())
        };
        let dhcp_log = text(running_of(ServiceKind::Dnsmasq));
        let web_log = text(running_of(ServiceKind::Httpd));
        for n in nodes.iter_mut() {
            if !n.running() {
                n.phase = Some(Phase::Off);
                continue;
            }
            let traffic = NodeTraffic {
                name: n.name.clone(),
                mac: n.mac.clone().unwrap_or_default(),
                ip: n.boot_ip.clone().unwrap_or_default(),
                boot_files: self
                    .expected
                    .nodes
                    .get(&n.name)
                    .map(|f| f.boot_files.clone())
                    .unwrap_or_default(),
            };
            let node_log = self.logs.get(&n.container).map_or("", |l| l.text.as_str());
            let history = phase::history(node_log);
            n.boots = Some(history.boots);
            n.last_event = history.last_event;
            let power = n.power.unwrap_or(PowerState::Unknown);
            let (phase, since) = phase::derive(&traffic, power, node_log, dhcp_log, web_log);
            n.phase = Some(phase);
            n.phase_since = since;
            if phase != Phase::Off {
                n.boot_source = phase::boot_source(&traffic, node_log, dhcp_log, web_log);
            }
            n.guest = phase::guest_report(&traffic, node_log, web_log);
        }
    }
}

/// The certificate fingerprint in the last line lab-bmcd logs when it starts
/// (`lab: redfish: https on ... certificate SHA-256 AB:CD:...`).
fn logged_fingerprint(log: &str) -> Option<String> {
    log.lines().rev().find_map(|l| {
        let (_, rest) = l.split_once("lab: redfish: https on ")?;
        let (_, f) = rest.split_once("certificate SHA-256 ")?;
        let f = f.split_whitespace().next()?;
        let hex = f
            .split(':')
            .all(|b| b.len() == 2 && b.chars().all(|c| c.is_ascii_hexdigit()));
        (hex && f.len() == 95).then(|| f.to_string())
    })
}

/// A node's power: `unknown` unless its container runs; else its BMC's answer.
async fn node_power<E: Engine>(
    engine: &E,
    n: &Member,
    credentials: Option<&(String, String)>,
) -> PowerState {
    if !n.running() {
        return PowerState::Unknown;
    }
    let at = n.ip.map(|ip| SocketAddr::from((ip, IPMI_PORT)));
    bmc_power(engine, &n.container, at, credentials).await
}

/// The node's power from its BMC: asked over IPMI at `bmc` when the credentials are known
/// (milliseconds), else (or if that fails) by `ipmitool` in the node container (a `docker exec`).
pub async fn bmc_power<E: Engine>(
    engine: &E,
    container: &str,
    bmc: Option<SocketAddr>,
    credentials: Option<&(String, String)>,
) -> PowerState {
    if let (Some(at), Some((user, password))) = (bmc, credentials) {
        if let Ok(on) = crate::ipmi::power_is_on(at, user, password).await {
            return if on { PowerState::On } else { PowerState::Off };
        }
    }
    let script = "u=$(sed -n 's/^BMC_USER=//p' /etc/lab/node/node.env); p=$(sed -n 's/^BMC_PASSWORD=//p' /etc/lab/node/node.env); \
                  exec ipmitool -I lanplus -C 3 -H 127.0.0.1 -U \"$u\" -P \"$p\" power status";
    let argv = vec!["sh".to_string(), "-c".to_string(), script.to_string()];
    match engine.exec(container, &argv).await {
        Ok(out) if out.output.contains("is on") => PowerState::On,
        Ok(out) if out.output.contains("is off") => PowerState::Off,
        _ => PowerState::Unknown,
    }
}

/// Where QEMU keeps the node's console log, in the node's volume.
pub const CONSOLE_LOG: &str = "/var/lib/lab/console.log";

/// A node's console log, running or not: the log lives in the node's volume, so a stopped
/// container still has it. `lines` = 0 gives all of it.
pub async fn console_log<E: Engine>(
    engine: &E,
    container: &str,
    lines: usize,
) -> Result<Vec<u8>, EngineError> {
    let log = engine.read_file(container, CONSOLE_LOG).await?;
    Ok(last_lines(&log, lines))
}

/// The last `n` lines of `text` (all of it for 0).
pub fn last_lines(text: &[u8], n: usize) -> Vec<u8> {
    if n == 0 {
        return text.to_vec();
    }
    let body = text.strip_suffix(b"\n").unwrap_or(text);
    let start = body
        .iter()
        .enumerate()
        .rev()
        .filter(|(_, b)| **b == b'\n')
        .nth(n - 1)
        .map(|(i, _)| i + 1)
        .unwrap_or(0);
    text[start..].to_vec()
}

fn expected_member(c: &ContainerSpec, o: Option<&ObservedContainer>) -> Member {
    let ports = match o {
        Some(o) if o.running => o.ports.clone(),
        _ => c.ports.clone(),
    };
    let kind = Kind::from_label(c.role, c.labels.get(LABEL_KIND).map(String::as_str));
    Member {
        name: c.lab_name.clone(),
        kind,
        container: c.name.clone(),
        state: o.map(|o| o.state),
        ip: Some(c.ip),
        endpoints: endpoints(kind, &c.labels, &ports),
        ports,
        mac: c.labels.get(LABEL_MAC).cloned(),
        boot_ip: c.labels.get(LABEL_BOOT_IP).cloned(),
        nics: nics_of(&c.labels),
        power: None,
        phase: None,
        phase_since: None,
        boot_source: None,
        boots: None,
        last_event: None,
        problem: None,
        identity: Identity::from_labels(&c.labels),
        guest: None,
        redfish_cert_sha256: None,
    }
}

fn found_member(o: &ObservedContainer) -> Member {
    let role = if o.labels.get(LABEL_ROLE).map(String::as_str) == Some(Role::Node.as_str()) {
        Role::Node
    } else {
        Role::Service
    };
    let kind = Kind::from_label(role, o.labels.get(LABEL_KIND).map(String::as_str));
    Member {
        name: o
            .labels
            .get(LABEL_NAME)
            .cloned()
            .unwrap_or_else(|| o.name.clone()),
        kind,
        container: o.name.clone(),
        state: Some(o.state),
        ip: o.ip,
        endpoints: endpoints(kind, &o.labels, &o.ports),
        ports: o.ports.clone(),
        mac: o.labels.get(LABEL_MAC).cloned(),
        boot_ip: o.labels.get(LABEL_BOOT_IP).cloned(),
        nics: nics_of(&o.labels),
        power: None,
        phase: None,
        phase_since: None,
        boot_source: None,
        boots: None,
        last_event: None,
        problem: None,
        identity: Identity::from_labels(&o.labels),
        guest: None,
        redfish_cert_sha256: None,
    }
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

fn endpoints(kind: Kind, labels: &crate::engine::Labels, ports: &[PortBinding]) -> Vec<String> {
    let user = labels
        .get(LABEL_BMC_USER)
        .cloned()
        .unwrap_or_else(|| "admin".into());
    ports
        .iter()
        .map(|p| {
            let h = host(p.host_ip);
            match (kind, p.container_port, p.protocol) {
                (Kind::Service(ServiceKind::Sshd), 22, Proto::Tcp) => {
                    format!("ssh -p {} root@{h}", p.host_port)
                }
                (Kind::Node, crate::lab::VNC_PORT, Proto::Tcp) => {
                    format!("vnc://{h}:{}", p.host_port)
                }
                (Kind::Node, _, Proto::Udp) => format!(
                    "ipmitool -I lanplus -H {h} -p {} -U {user} -P <password>",
                    p.host_port
                ),
                (Kind::Node, crate::lab::REDFISH_PORT, Proto::Tcp) => format!(
                    "curl -k -u {user}:<password> https://{h}:{}/redfish/v1/Systems/1",
                    p.host_port
                ),
                (_, 443, Proto::Tcp) => format!("https://{h}:{}/", p.host_port),
                (_, 80, Proto::Tcp) => format!("http://{h}:{}/", p.host_port),
                (_, _, proto) => format!("{h}:{}/{proto}", p.host_port),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_fingerprint_is_the_one_lab_bmcd_logged_last() {
        let start = |f: &str| {
            format!("2026-11-21T01:00:00Z lab: redfish: https on 0.0.0.0:443 (BMC 127.0.0.1:623), certificate SHA-256 {f}\n")
        };
        assert_eq!(
            logged_fingerprint("2026-11-21T01:00:00Z lab: bmc: power on\n"),
            None
        );
        let one = start("AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB");
        assert_eq!(logged_fingerprint(&one).as_deref(), Some("AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB"));
        // A new certificate comes with a new start of lab-bmcd: the last line counts.
        let two = one.clone() + "2026-11-21T01:00:05Z lab: vm: power on\n" + &start("0C:0C:0C:0C:0C:0C:0C:0C:0C:0C:0C:0C:0C:0C:0C:0C:0C:0C:0C:0C:0C:0C:0C:0C:0C:0C:0C:0C:0C:0C:0C:0C");
        assert_eq!(logged_fingerprint(&two).as_deref(), Some("0C:0C:0C:0C:0C:0C:0C:0C:0C:0C:0C:0C:0C:0C:0C:0C:0C:0C:0C:0C:0C:0C:0C:0C:0C:0C:0C:0C:0C:0C:0C:0C"));
        // A cut-off line is not a fingerprint.
        assert_eq!(logged_fingerprint(&start("AB:CD")), None);
    }

    #[test]
    fn log_reads_since_the_last_line_keep_each_line_once() {
        let mut buf = LogBuf::default();
        assert_eq!(buf.since(), None);
        buf.append("2026-11-21T01:00:00.5Z a\n2026-11-21T01:00:01.25Z b\nno timestamp\n");
        assert_eq!(buf.since(), Some(1_795_222_801), "2026-11-21T01:00:01Z");
        // The engine's `since` is whole seconds: the next read repeats b's second.
        buf.append(
            "2026-11-21T01:00:01.25Z b\n2026-11-21T01:00:01.75Z c\n2026-11-21T01:00:03Z d\n",
        );
        buf.append("2026-11-21T01:00:03Z d\n");
        assert_eq!(
            buf.text,
            "2026-11-21T01:00:00.5Z a\n2026-11-21T01:00:01.25Z b\n2026-11-21T01:00:01.75Z c\n2026-11-21T01:00:03Z d\n"
        );
        // Two identical lines at one instant in one read are both kept.
        let mut twice = LogBuf::default();
        twice.append("2026-11-21T01:00:00Z x\n2026-11-21T01:00:00Z y\n");
        twice.append("2026-11-21T01:00:00Z x\n2026-11-21T01:00:00Z y\n2026-11-21T01:00:00Z z\n");
        assert_eq!(twice.text.lines().count(), 3);
    }

    #[test]
    fn last_lines_counts_from_the_end() {
        let log = b"one\ntwo\nthree\n";
        assert_eq!(last_lines(log, 2), b"two\nthree\n");
        assert_eq!(last_lines(log, 3), log);
        assert_eq!(last_lines(log, 9), log);
        assert_eq!(last_lines(log, 0), log);
        assert_eq!(last_lines(b"a\nno newline", 1), b"no newline");
        assert_eq!(last_lines(b"", 5), b"");
    }
}

#[cfg(test)]
mod fake_tests {
    use super::*;
    use crate::engine::{ExecOutput, FakeEngine};
    use crate::plan::{self, Host};

    const LAB: &str = r#"
[lab]
name = "o"
[network]
subnet = "10.1.3.0/24"
[services.dhcp]
kind = "dnsmasq"
ip = "10.1.3.2"
dhcp_range = ["10.1.3.100", "10.1.3.150"]
[services.web]
kind = "httpd"
ip = "10.1.3.3"
root = "webroot"
[nodes.n]
mac = "02:00:00:00:00:01"
ip = "10.1.3.100"
bmc_ip = "10.1.3.10"
ipmi_port = 30623
"#;

    /// A lab applied on a fake engine, and what a look at it expects, without BMC credentials
    /// (the BMC is then asked through `ipmitool` in the node container, which the fake answers).
    async fn lab_on_fake(dir: &std::path::Path) -> (FakeEngine, Expected) {
        std::fs::create_dir_all(dir.join("webroot")).unwrap();
        let lab = crate::lab::from_str(&dir.join("lab.toml"), LAB, &|_| None).unwrap();
        let d = plan::desired(&lab, crate::render::render(&lab).unwrap(), Host::default());
        let engine = FakeEngine::new().with_image("debian:bookworm-slim", Default::default());
        let snapshot = snapshot(&engine, &d).await.unwrap();
        let p = plan::plan(&d, &snapshot, &[]);
        let mut summary = crate::apply::Summary::default();
        crate::apply::apply(&engine, &d, &p, &crate::ui::Progress::quiet(), &mut summary)
            .await
            .unwrap();
        let mut expected = Expected::from_lab(&lab, &d);
        for f in expected.nodes.values_mut() {
            f.credentials = None;
        }
        (engine, expected)
    }

    fn power(engine: &FakeEngine, on: bool) {
        let word = if on { "on" } else { "off" };
        engine.set_exec_output(
            "o-n",
            ExecOutput {
                exit_code: 0,
                output: format!("Chassis Power is {word}\n"),
            },
        );
    }

    #[tokio::test]
    async fn phases_come_from_the_logs_and_power_from_the_bmc() {
        let dir = tempfile::tempdir().unwrap();
        let (engine, expected) = lab_on_fake(dir.path()).await;
        power(&engine, true);
        engine.set_logs(
            "o-n",
            "2026-11-21T01:00:01Z lab: power on: qemu accel=tcg\n",
        );
        let mut observer = Observer::new(&engine, expected);
        let o = observer.observe().await.unwrap();
        let n = &o.nodes[0];
        assert_eq!(
            (n.power, n.phase),
            (Some(PowerState::On), Some(Phase::Firmware))
        );
        assert_eq!(
            n.endpoints,
            [
                "ipmitool -I lanplus -H 127.0.0.1 -p 30623 -U admin -P <password>",
                "curl -k -u admin:<password> https://127.0.0.1:30623/redfish/v1/Systems/1"
            ]
        );
        assert_eq!(
            o.services
                .iter()
                .map(|s| s.kind.to_string())
                .collect::<Vec<_>>(),
            ["dnsmasq", "httpd"]
        );

        engine.add_logs(
            "o-dhcp",
            "2026-11-21T01:00:05Z dnsmasq-dhcp[1]: DHCPACK(eth0) 10.1.3.100 02:00:00:00:00:01 n\n",
        );
        engine.add_logs(
            "o-web",
            "2026-11-21T01:00:09Z 10.1.3.100 x GET 204 0 /lab/report/02-00-00-00-00-01\n",
        );
        engine.take_calls();
        let o = observer.observe().await.unwrap();
        assert_eq!(o.nodes[0].phase, Some(Phase::Up));
        assert_eq!(
            o.nodes[0].phase_since.as_deref(),
            Some("2026-11-21T01:00:09Z")
        );
        // The second look asks only for what is new: from the second of the last line read.
        let calls = engine.take_calls();
        assert!(
            calls.contains(&"logs_since o-n since=1795222801".to_string()),
            "{calls:?}"
        );
        assert!(
            calls.contains(&"logs_since o-dhcp all".to_string()),
            "{calls:?}"
        );

        // A reset: a new power-on, later than the report, starts the phases again.
        engine.add_logs(
            "o-n",
            "2026-11-21T01:02:00Z lab: power on: qemu accel=tcg\n",
        );
        let o = observer.observe().await.unwrap();
        assert_eq!(o.nodes[0].phase, Some(Phase::Firmware));
        assert_eq!(
            o.nodes[0].phase_since.as_deref(),
            Some("2026-11-21T01:02:00Z")
        );
        assert_eq!(o.nodes[0].boots, Some(2));

        // The guest reboots: QEMU's reset, read incrementally, is a third boot and the last event.
        engine.add_logs(
            "o-n",
            "2026-11-21T01:03:00Z lab: vm: reset by=guest reason=guest-reset\n",
        );
        let o = observer.observe().await.unwrap();
        assert_eq!(
            o.nodes[0].phase_since.as_deref(),
            Some("2026-11-21T01:03:00Z")
        );
        let json = serde_json::to_value(&o).unwrap();
        assert_eq!(json["nodes"][0]["boots"], 3);
        assert_eq!(
            json["nodes"][0]["last_event"],
            serde_json::json!({"event": "reset", "by": "guest", "at": "2026-11-21T01:03:00Z", "reason": "guest-reset"})
        );
        assert!(json["services"][0].get("boots").is_none());
    }

    #[tokio::test]
    async fn a_node_off_is_off_and_a_stopped_one_is_unknown() {
        let dir = tempfile::tempdir().unwrap();
        let (engine, expected) = lab_on_fake(dir.path()).await;
        power(&engine, false);
        engine.set_logs(
            "o-n",
            "2026-11-21T01:00:01Z lab: power on: qemu accel=tcg\n",
        );
        let mut observer = Observer::new(&engine, expected.clone());
        let o = observer.observe().await.unwrap();
        assert_eq!(
            (o.nodes[0].power, o.nodes[0].phase),
            (Some(PowerState::Off), Some(Phase::Off))
        );
        // A node its BMC reports off is still log-read (its last event, its boots).
        assert_eq!(o.nodes[0].boots, Some(1));

        engine.set_state("o-n", ContainerState::Exited);
        let o = Observer::new(&engine, expected).observe().await.unwrap();
        let n = &o.nodes[0];
        assert_eq!(
            (n.state, n.power, n.phase),
            (
                Some(ContainerState::Exited),
                Some(PowerState::Unknown),
                Some(Phase::Off)
            )
        );
        let json = serde_json::to_value(&o).unwrap();
        assert_eq!(json["nodes"][0]["power"], "unknown");
        assert_eq!(json["nodes"][0]["state"], "exited");
    }

    #[tokio::test]
    async fn absent_containers_are_listed_from_the_file_and_unknown_ones_from_their_labels() {
        let dir = tempfile::tempdir().unwrap();
        let (engine, expected) = lab_on_fake(dir.path()).await;
        power(&engine, true);
        let found = containers(&engine, "o").await.unwrap();
        let web_id = found.iter().find(|c| c.name == "o-web").unwrap().id.clone();
        engine.remove_container(&web_id).await.unwrap();
        let o = Observer::new(&engine, expected).observe().await.unwrap();
        let web = o.services.iter().find(|s| s.name == "web").unwrap();
        assert_eq!(web.state, None);
        assert_eq!(serde_json::to_value(web).unwrap()["state"], "absent");
        // Without the file (`status --name`), what the labels say.
        let o = Observer::new(&engine, Expected::named("o"))
            .observe()
            .await
            .unwrap();
        let names: Vec<_> = o
            .services
            .iter()
            .chain(&o.nodes)
            .map(|m| m.name.as_str())
            .collect();
        assert_eq!(names, ["dhcp", "n"]);
        assert_eq!(o.nodes[0].mac.as_deref(), Some("02:00:00:00:00:01"));
        assert_eq!(o.nodes[0].power, Some(PowerState::On));
    }
}
