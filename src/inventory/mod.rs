//! `lab inventory`: what a provisioner needs to enrol the lab's nodes, from the lab file alone.
//!
//! [`Inventory`] is lab's own view (the `json` format, whose field names the README documents and
//! keeps stable): per node its NICs, CPUs, memory, disks, identity and BMC endpoints, both as the
//! lab network sees them (the BMC's address, IPMI on 623/udp, Redfish on 443/tcp) and as the host
//! does (`lab.publish` and the node's published `ipmi_port`/`redfish_port`). The other formats
//! are that view in another tool's words: [`ironic`] (node JSON for `baremetal create`),
//! [`kube`] (Metal3 `BareMetalHost`, Tinkerbell `Hardware` and rufio `Machine`, each with its
//! `Secret`) and [`maas`] (`maas PROFILE machines create` commands). Nothing here asks the
//! running lab: every value is in the validated [`Lab`].

mod ironic;
mod kube;
mod maas;
mod yaml;

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use clap::ValueEnum;
use serde::Serialize;

use crate::lab::{BootDevice, Firmware, Lab, Mac, Node, Power, IPMI_PORT, REDFISH_PORT};

/// The Redfish ComputerSystem of every node's BMC (lab-bmcd serves one system, `Systems/1`).
pub const REDFISH_SYSTEM: &str = "/redfish/v1/Systems/1";

/// The CPU architecture of every node (QEMU's x86_64 machine).
pub const ARCH: &str = "x86_64";

/// What `lab inventory` prints.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// lab's own JSON (both BMC protocols, both viewpoints).
    Json,
    /// Ironic/bifrost node JSON for `baremetal create FILE.json`.
    Ironic,
    /// Metal3 BareMetalHost and Secret YAML.
    Metal3,
    /// Tinkerbell Hardware, rufio Machine and Secret YAML.
    Tinkerbell,
    /// MAAS CLI commands (`maas "$PROFILE" machines create ...`), one per node.
    Maas,
}

/// The BMC protocol the provisioner drives the nodes with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, ValueEnum)]
pub enum Driver {
    /// IPMI over LAN (lanplus), 623/udp on the lab network.
    #[default]
    Ipmi,
    /// Redfish over HTTPS (self-signed certificate), 443/tcp on the lab network.
    Redfish,
}

/// Where the provisioner reaches the BMCs from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, ValueEnum)]
pub enum Side {
    /// The lab network: each BMC's own address, 623/udp and 443/tcp. Every node has them, a
    /// provisioner running as a lab service reaches them, and so does the engine's Linux host.
    #[default]
    Lab,
    /// The host: `lab.publish` with the node's published `ipmi_port` / `redfish_port`.
    Host,
}

impl Side {
    fn as_str(self) -> &'static str {
        match self {
            Side::Lab => "lab",
            Side::Host => "host",
        }
    }
}

/// The command line's choices; `None` where the user chose nothing.
#[derive(Debug, Clone, Default)]
pub struct Options {
    pub format: Option<Format>,
    pub driver: Option<Driver>,
    pub from: Option<Side>,
    pub namespace: Option<String>,
    /// Only these nodes (default: all).
    pub nodes: Vec<String>,
}

/// Why an inventory cannot be printed: the message and what to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub message: String,
    pub help: String,
}

fn problem(message: impl Into<String>, help: impl Into<String>) -> Problem {
    Problem {
        message: message.into(),
        help: help.into(),
    }
}

/// The inventory in the format asked for, ready to print.
pub fn render(lab: &Lab, opts: &Options) -> Result<String, Problem> {
    let format = opts.format.unwrap_or(Format::Json);
    check_options(format, opts)?;
    let inv = Inventory::of(lab, &opts.nodes)?;
    let driver = opts.driver.unwrap_or_default();
    let side = opts.from.unwrap_or_default();
    if format != Format::Json {
        check_reachable(lab, &inv, driver, side)?;
    }
    let namespace = opts.namespace.as_deref().unwrap_or("default");
    Ok(match format {
        Format::Json => {
            let mut text = serde_json::to_string_pretty(&inv).expect("plain data serializes");
            text.push('\n');
            text
        }
        Format::Ironic => ironic::render(&inv, driver, side),
        Format::Metal3 => kube::metal3(&inv, driver, side, namespace),
        Format::Tinkerbell => kube::tinkerbell(&inv, driver, side, namespace),
        Format::Maas => maas::render(&inv, driver, side),
    })
}

/// Options that mean nothing for the format are refused rather than ignored.
fn check_options(format: Format, opts: &Options) -> Result<(), Problem> {
    let name = format.to_possible_value().map(|v| v.get_name().to_string());
    let name = name.unwrap_or_default();
    if format == Format::Json && (opts.driver.is_some() || opts.from.is_some()) {
        return Err(problem(
            "--driver and --from do not apply to --format json",
            "the JSON lists both protocols (ipmi and redfish) as seen from the lab network and \
             from the host; pick one with --format ironic|metal3|tinkerbell|maas",
        ));
    }
    if let Some(ns) = &opts.namespace {
        if !matches!(format, Format::Metal3 | Format::Tinkerbell) {
            return Err(problem(
                format!("--namespace does not apply to --format {name}"),
                "only the Kubernetes formats (metal3, tinkerbell) have a namespace",
            ));
        }
        if !is_dns_label(ns) {
            return Err(problem(
                format!("--namespace `{ns}` is not a Kubernetes namespace name"),
                "use at most 63 lowercase letters, digits and `-`, starting and ending with a \
                 letter or digit (e.g. `metal3` or `tink-system`)",
            ));
        }
    }
    Ok(())
}

fn is_dns_label(s: &str) -> bool {
    let ok_char = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit();
    !s.is_empty()
        && s.len() <= 63
        && s.chars().all(|c| ok_char(c) || c == '-')
        && s.starts_with(ok_char)
        && s.ends_with(ok_char)
}

/// From the host, a node is reachable only through the port it publishes for that protocol.
fn check_reachable(lab: &Lab, inv: &Inventory, driver: Driver, side: Side) -> Result<(), Problem> {
    if side == Side::Lab {
        return Ok(());
    }
    let (key, container) = match driver {
        Driver::Ipmi => ("ipmi_port", "623/udp"),
        Driver::Redfish => ("redfish_port", "443/tcp"),
    };
    let missing: Vec<&NodeEntry> = inv
        .nodes
        .iter()
        .filter(|n| n.bmc.endpoint(side).port(driver).is_none())
        .collect();
    let Some(first) = missing.first() else {
        return Ok(());
    };
    let names: Vec<&str> = missing.iter().map(|n| n.name.as_str()).collect();
    Err(problem(
        format!(
            "{}: --from host needs each node's published {key}, and node(s) {} publish none",
            lab.file().display(),
            names.join(", ")
        ),
        format!(
            "set `{key}` (the host port for the BMC's {container}) in [nodes.{}] of {}, or use \
             --from lab (the BMC's own address on the lab network, e.g. {}:{})",
            first.group,
            lab.file().display(),
            first.bmc.lab.address,
            first.bmc.lab.port(driver).unwrap_or_default()
        ),
    ))
}

/// lab's own inventory: the `json` format.
#[derive(Debug, Clone, Serialize)]
pub struct Inventory {
    /// The lab's name.
    pub lab: String,
    pub network: NetworkEntry,
    pub nodes: Vec<NodeEntry>,
}

#[derive(Debug, Clone, Serialize)]
pub struct NetworkEntry {
    pub subnet: String,
    pub netmask: Ipv4Addr,
    pub gateway: Ipv4Addr,
    pub dns: Vec<Ipv4Addr>,
}

#[derive(Debug, Clone, Serialize)]
pub struct NodeEntry {
    pub name: String,
    /// The `[nodes.GROUP]` table of the lab file it comes from.
    pub group: String,
    /// The NIC that network-boots and has the DHCP reservation `ip`.
    pub boot_mac: Mac,
    /// Every NIC's MAC, in order, `boot_mac` first.
    pub macs: Vec<Mac>,
    /// The boot NIC's reserved address on the lab network.
    pub ip: Ipv4Addr,
    /// Every NIC's reserved address, in the order of `macs`, `ip` first.
    pub ips: Vec<Ipv4Addr>,
    pub arch: &'static str,
    pub cpus: u32,
    pub memory_mb: u64,
    /// In order; the first is the boot disk.
    pub disks: Vec<DiskEntry>,
    pub firmware: Firmware,
    /// What the node boots from first (its lab file `boot`).
    pub boot: BootDevice,
    /// The power `lab up` gives it.
    pub power: Power,
    pub identity: Identity,
    pub bmc: BmcEntry,
}

#[derive(Debug, Clone, Serialize)]
pub struct DiskEntry {
    /// The Linux device name the guest sees (AHCI disks in order: /dev/sda, /dev/sdb, ...).
    pub device: String,
    pub bytes: u64,
    pub serial: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct Identity {
    pub vendor: String,
    pub model: String,
    pub serial: String,
    pub uuid: String,
    pub asset_tag: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct BmcEntry {
    pub username: String,
    pub password: String,
    /// The Redfish ComputerSystem path.
    pub redfish_system: &'static str,
    /// As seen from the lab network.
    pub lab: Endpoint,
    /// As seen from the host: the node's `bmc_publish` or else `lab.publish`, and the published
    /// ports (`null` when not published).
    pub host: Endpoint,
}

impl BmcEntry {
    pub fn endpoint(&self, side: Side) -> &Endpoint {
        match side {
            Side::Lab => &self.lab,
            Side::Host => &self.host,
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Endpoint {
    pub address: IpAddr,
    /// IPMI over LAN, UDP.
    pub ipmi_port: Option<u16>,
    /// Redfish over HTTPS, TCP.
    pub redfish_port: Option<u16>,
    /// `https://ADDRESS:PORT/redfish/v1/Systems/1` when Redfish is reachable from here.
    pub redfish_url: Option<String>,
}

impl Endpoint {
    fn new(address: IpAddr, ipmi_port: Option<u16>, redfish_port: Option<u16>) -> Endpoint {
        let redfish_url =
            redfish_port.map(|p| format!("https://{}{REDFISH_SYSTEM}", authority(address, p)));
        Endpoint {
            address,
            ipmi_port,
            redfish_port,
            redfish_url,
        }
    }

    pub fn port(&self, driver: Driver) -> Option<u16> {
        match driver {
            Driver::Ipmi => self.ipmi_port,
            Driver::Redfish => self.redfish_port,
        }
    }

    /// `ADDRESS:PORT` for the protocol (IPv6 in brackets), once checked to be reachable.
    pub fn authority(&self, driver: Driver) -> String {
        authority(self.address, self.port(driver).unwrap_or_default())
    }
}

/// `HOST:PORT` as URLs and freeipmi write it: an IPv6 address in brackets.
pub fn authority(address: IpAddr, port: u16) -> String {
    match address {
        IpAddr::V4(a) => format!("{a}:{port}"),
        IpAddr::V6(a) => format!("[{a}]:{port}"),
    }
}

/// The address a client on the host uses for ports published on `publish`: the address itself,
/// or loopback when they are published on every address (0.0.0.0, ::).
fn host_address(publish: IpAddr) -> IpAddr {
    match publish {
        IpAddr::V4(a) if a.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(a) if a.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        a => a,
    }
}

impl Inventory {
    /// The inventory of the lab's nodes, or only of `names` (in the lab's order).
    pub fn of(lab: &Lab, names: &[String]) -> Result<Inventory, Problem> {
        let known: Vec<&str> = lab.nodes().iter().map(|n| n.name.as_str()).collect();
        if known.is_empty() {
            return Err(problem(
                format!(
                    "{}: lab `{}` has no nodes: there is nothing to enrol",
                    lab.file().display(),
                    lab.name()
                ),
                "add a [nodes.NAME] table to the lab file",
            ));
        }
        for n in names {
            if !known.contains(&n.as_str()) {
                return Err(problem(
                    format!("lab `{}` has no node `{n}`", lab.name()),
                    format!("use one of: {}", known.join(", ")),
                ));
            }
        }
        let net = lab.network();
        Ok(Inventory {
            lab: lab.name().to_string(),
            network: NetworkEntry {
                subnet: net.subnet.to_string(),
                netmask: net.subnet.netmask(),
                gateway: net.gateway,
                dns: net.dns.clone(),
            },
            nodes: lab
                .nodes()
                .iter()
                .filter(|n| names.is_empty() || names.contains(&n.name))
                .map(|n| {
                    // A node with `bmc_publish` has its BMC's ports on that address alone.
                    let publish = n.bmc_publish.map(IpAddr::V4).unwrap_or(lab.publish());
                    node_entry(n, host_address(publish))
                })
                .collect(),
        })
    }
}

fn node_entry(n: &Node, host: IpAddr) -> NodeEntry {
    NodeEntry {
        name: n.name.clone(),
        group: n.group.clone(),
        boot_mac: n.mac,
        macs: n.nic_macs.clone(),
        ip: n.ip,
        ips: n.nic_ips.clone(),
        arch: ARCH,
        cpus: n.cpus,
        memory_mb: n.memory_mb,
        disks: n
            .disks
            .iter()
            .enumerate()
            .map(|(i, d)| DiskEntry {
                device: disk_device(i),
                bytes: d.bytes,
                serial: d.serial.clone(),
            })
            .collect(),
        firmware: n.firmware,
        boot: n.boot,
        power: n.power,
        identity: Identity {
            vendor: n.vendor.clone(),
            model: n.model.clone(),
            serial: n.serial.clone(),
            uuid: n.uuid.clone(),
            asset_tag: n.asset_tag.clone(),
        },
        bmc: BmcEntry {
            username: n.bmc_user.clone(),
            password: n.bmc_password.clone(),
            redfish_system: REDFISH_SYSTEM,
            lab: Endpoint::new(IpAddr::V4(n.bmc_ip), Some(IPMI_PORT), Some(REDFISH_PORT)),
            host: Endpoint::new(host, n.ipmi_port, n.redfish_port),
        },
    }
}

/// `/dev/sda`, `/dev/sdb`, ...: the node's AHCI disks in order (at most [`crate::lab::MAX_DISKS`]).
fn disk_device(index: usize) -> String {
    let letter = (b'a' + (index % 26) as u8) as char;
    format!("/dev/sd{letter}")
}

/// A line saying where the output came from, for formats that have comments.
fn origin(inv: &Inventory, driver: Driver, side: Side) -> String {
    let driver = match driver {
        Driver::Ipmi => "IPMI",
        Driver::Redfish => "Redfish",
    };
    format!(
        "lab `{}`: {} node(s), {driver} BMC endpoints as seen from the {} (lab inventory --from {})",
        inv.lab,
        inv.nodes.len(),
        match side {
            Side::Lab => "lab network",
            Side::Host => "host",
        },
        side.as_str()
    )
}

#[cfg(test)]
mod tests;
