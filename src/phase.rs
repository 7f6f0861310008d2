//! Boot phases, as a provisioning server tracks machines, derived from what really happened:
//! the BMC's power state, the node container's log (each VM power-on, and each reset QEMU
//! reports), dnsmasq's log (the lease) and the web service's access log (boot script, kernel,
//! cloud-config, phone-home).
//!
//! The node container's log also carries what the node itself put on the wire (`lab: wire: ...`
//! lines, [`crate::wire`]): its DHCP lease, TFTP and HTTP fetches and its report, whoever answered
//! them, so phases hold with any provisioner. Both sources give the node's fetches;
//! a phase seen in either counts.
//!
//! Pure: the caller fetches the logs (with the engine's timestamps) and the power state.

use std::borrow::Cow;
use std::fmt;

use serde::Serialize;

use crate::observe::PowerState;

/// Where a node is in its life, in the order a booting server goes through them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Phase {
    /// The BMC reports power off.
    Off,
    /// Powered on, no DHCP lease yet.
    Firmware,
    /// dnsmasq acknowledged a lease to its MAC.
    Dhcp,
    /// Its iPXE boot script was fetched.
    Pxe,
    /// Its kernel or initrd was fetched.
    Kernel,
    /// One of its cloud-configs was fetched.
    Provisioning,
    /// The OS reported in.
    Up,
}

impl Phase {
    pub const ALL: [Phase; 7] = [
        Phase::Off,
        Phase::Firmware,
        Phase::Dhcp,
        Phase::Pxe,
        Phase::Kernel,
        Phase::Provisioning,
        Phase::Up,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Off => "off",
            Phase::Firmware => "firmware",
            Phase::Dhcp => "dhcp",
            Phase::Pxe => "pxe",
            Phase::Kernel => "kernel",
            Phase::Provisioning => "provisioning",
            Phase::Up => "up",
        }
    }
}

impl fmt::Display for Phase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What identifies a node's traffic in the logs.
#[derive(Debug, Clone)]
pub struct NodeTraffic {
    pub name: String,
    /// `00:aa:bb:cc:dd:ee`
    pub mac: String,
    /// The reserved (boot) address.
    pub ip: String,
    /// URL paths of its profile's kernel and initrd (`/rancheros/vmlinuz`); empty if unknown.
    pub boot_files: Vec<String>,
}

/// What the node image logs each time a boot starts: the BMC powers the VM on (lab-vm), the BMC
/// resets it (lab-bmc.c, before it answers, so a `wait` right after `lab power reset` sees it),
/// or QEMU reports a reset (lab-qmp: the guest rebooted, or the BMC reset it).
const BOOT_MARKERS: [&str; 4] = [
    "lab: power on",
    "lab: bmc: power on",
    "lab: bmc: power reset",
    "lab: vm: reset",
];

/// The BMC's power on (or cycle), logged before it answers: lab-vm's `lab: power on` lines that
/// follow (lab-node's "power on sent", then QEMU's start, however long the start takes) belong to
/// the same boot.
const BMC_POWER_ON: &str = "lab: bmc: power on";
const QEMU_START: &str = "lab: power on: qemu";

/// What lab-node logs first when its container starts: boots count from there.
const CONTAINER_START: &str = "lab: node ";

/// Boot markers closer than this to the one before are the same boot: the BMC's reset line and
/// QEMU's, and the reset SeaBIOS does itself right after a warm reset (it cannot run its POST
/// again in place), which QEMU reports as the guest's. The first reset of such a group is the one
/// that counts, for `last_event` too.
const SAME_BOOT_SECS: f64 = 2.0;

/// Nothing a boot puts on the wire comes within its first second (the firmware alone takes
/// longer), while the engine stamps each container's lines when it reads them: an OS that reports
/// and reboots at once (an installer) can have its report stamped a few microseconds after the
/// reset that ends its boot. Lines of the service logs count for a boot from a second after its
/// marker on.
const FIRST_SECOND: f64 = 1.0;

/// What QEMU reported last about the VM (a `lab: vm: EVENT by=WHO ...` line of lab-qmp).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VmEvent {
    /// `reset`, `shutdown`, `powerdown` (the ACPI power button) or `panic`.
    pub event: String,
    /// `guest` or `bmc`.
    pub by: String,
    /// The engine's time of the line.
    pub at: String,
    /// QEMU's reason (`guest-reset`, `host-qmp-system-reset`, `guest-shutdown`, ...).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// For a panic: what QEMU did (`run`: nothing, the guest decides).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub action: Option<String>,
}

/// The VM's history since its container started, from the node container's log.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct VmHistory {
    /// Power ons and resets, each counted once.
    pub boots: u32,
    /// The engine's time of the current boot's last marker: its phases count from there.
    pub boot_at: Option<(String, f64)>,
    pub last_event: Option<VmEvent>,
}

/// Boots and QEMU's last event, from the node container's log (with the engine's timestamps).
pub fn history(node_log: &str) -> VmHistory {
    let mut h = VmHistory::default();
    let mut last_reset = f64::MIN;
    // A BMC power on was logged and QEMU's start (lab-vm's line) has not followed yet.
    let mut bmc_power_on = false;
    for ((ts, t), line) in lines(node_log) {
        if line.starts_with(CONTAINER_START) {
            h = VmHistory::default();
        }
        if BOOT_MARKERS.iter().any(|m| line.contains(m)) {
            let started_by_bmc = bmc_power_on && line.contains("lab: power on");
            if !started_by_bmc
                && h.boot_at
                    .as_ref()
                    .is_none_or(|(_, at)| t - at >= SAME_BOOT_SECS)
            {
                h.boots += 1;
            }
            h.boot_at = Some((ts.to_string(), t));
            bmc_power_on =
                line.contains(BMC_POWER_ON) || (started_by_bmc && !line.contains(QEMU_START));
        }
        if let Some(event) = line.split_once("lab: vm: ").map(|(_, e)| vm_event(ts, e)) {
            if event.event == "reset" {
                let again = t - last_reset < SAME_BOOT_SECS;
                last_reset = t;
                if again {
                    continue;
                }
            }
            h.last_event = Some(event);
        }
    }
    h
}

/// `reset by=guest reason=guest-reset` at `ts`.
fn vm_event(ts: &str, text: &str) -> VmEvent {
    let mut words = text.split_whitespace();
    let mut e = VmEvent {
        event: words.next().unwrap_or_default().to_string(),
        by: String::new(),
        at: ts.to_string(),
        reason: None,
        action: None,
    };
    for (key, value) in words.filter_map(|w| w.split_once('=')) {
        match key {
            "by" => e.by = value.to_string(),
            "reason" => e.reason = Some(value.to_string()),
            "action" => e.action = Some(value.to_string()),
            _ => {}
        }
    }
    e
}

/// The node's phase and since when (the engine's timestamp of the event that set it).
pub fn derive(
    node: &NodeTraffic,
    power: PowerState,
    node_log: &str,
    dhcp_log: &str,
    web_log: &str,
) -> (Phase, Option<String>) {
    if power == PowerState::Off {
        return (Phase::Off, None);
    }
    let boot = history(node_log).boot_at;
    let t0 = boot.as_ref().map_or(f64::MIN, |(_, t)| *t + FIRST_SECOND);
    let mut best = (Phase::Firmware, boot.map(|(ts, _)| ts));
    for (phase, ts) in phases_seen(node, node_log, dhcp_log, web_log) {
        if ts.1 >= t0 && phase >= best.0 {
            best = (phase, Some(ts.0.to_string()));
        }
    }
    best
}

/// Every sign of a phase in the logs, in time order: a DHCP ack to the node's MAC (dnsmasq's log
/// or the node's wire), and what its fetches show (see `Paths::phase`), from lab's web log or the
/// node's own wire, whoever answered them.
pub fn phases_seen<'a>(
    node: &NodeTraffic,
    node_log: &'a str,
    dhcp_log: &'a str,
    web_log: &'a str,
) -> Vec<(Phase, (&'a str, f64))> {
    let mac = node.mac.to_ascii_lowercase();
    let mut out: Vec<(Phase, (&str, f64))> = lines(dhcp_log)
        .filter(|(_, line)| line.contains("DHCPACK") && line.to_ascii_lowercase().contains(&mac))
        .map(|(ts, _)| (Phase::Dhcp, ts))
        .collect();
    for (ts, text) in lines(node_log) {
        if let Some(crate::wire::Line::Dhcp {
            kind: "ack",
            mac: m,
        }) = crate::wire::Line::parse(text)
        {
            if m == mac {
                out.push((Phase::Dhcp, ts));
            }
        }
    }
    let paths = Paths::of(node);
    out.extend(
        fetches(node, node_log, web_log)
            .iter()
            .filter_map(|f| Some((paths.phase(node, f)?, f.at))),
    );
    out.sort_by(|a, b| a.1 .1.total_cmp(&b.1 .1));
    out
}

/// The node's paths on a lab web service (its report, boot script and cloud-configs).
struct Paths {
    report: String,
    script: String,
    configs: String,
}

impl Paths {
    fn of(node: &NodeTraffic) -> Paths {
        let hyph = node.mac.to_ascii_lowercase().replace(':', "-");
        Paths {
            report: format!("/lab/report/{hyph}"),
            script: format!("/lab/nodes/{hyph}.ipxe"),
            configs: format!("/lab/nodes/{}/", node.name),
        }
    }

    /// The phase a fetch shows: its report is `up` (`provisioning` for an installer's report that
    /// it wrote the disk), its cloud-configs `provisioning`, a kernel or initrd (a profile's boot
    /// file, or a name such as `vmlinuz`) `kernel`, its boot script or anything else the node
    /// itself fetched (a boot loader) `pxe`.
    fn phase(&self, node: &NodeTraffic, f: &Fetch) -> Option<Phase> {
        let path = f.path.as_ref();
        if path == self.report {
            Some(if reports_installed(f.query) {
                Phase::Provisioning
            } else {
                Phase::Up
            })
        } else if path.starts_with(&self.configs) {
            Some(Phase::Provisioning)
        } else if path == self.script {
            Some(Phase::Pxe)
        } else if !f.by_node {
            None
        } else if node.boot_files.iter().any(|b| b == path) || is_kernel_or_initrd(path) {
            Some(Phase::Kernel)
        } else {
            Some(Phase::Pxe)
        }
    }
}

/// Where a fetch was seen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Via {
    /// lab's web service's access log.
    Web,
    /// An HTTP request on the node's own wire, answered 2xx by whatever server.
    WireHttp,
    /// A TFTP read on the node's own wire, answered with data.
    WireTftp,
}

/// A file a node asked for and got, from the web service's log or its own wire.
#[derive(Debug)]
struct Fetch<'a> {
    at: (&'a str, f64),
    /// From the root (`/smoke/vmlinuz`; a TFTP file name gets its `/`).
    path: Cow<'a, str>,
    query: &'a str,
    /// Asked by the node itself (its address in the web log; always on its own wire), not for it
    /// by another host (a proxy, a package cache).
    by_node: bool,
    via: Via,
}

/// Every fetch of the node, in the order of their times: the web log's answered (2xx) requests,
/// and from the node's own wire lines (in its container's log), its HTTP requests answered 2xx
/// and its TFTP reads answered with data. An absolute URI (through a proxy) is read from its path.
fn fetches<'a>(node: &NodeTraffic, node_log: &'a str, web_log: &'a str) -> Vec<Fetch<'a>> {
    use crate::wire::Line;
    let mac = node.mac.to_ascii_lowercase();
    let mut out: Vec<Fetch> = lines(web_log)
        .filter_map(|(at, line)| {
            let hit = Access::parse(line).filter(Access::ok)?;
            let (path, query) = hit.uri.split_once('?').unwrap_or((hit.uri, ""));
            Some(Fetch {
                at,
                path: Cow::Borrowed(path),
                query,
                by_node: hit.client == node.ip,
                via: Via::Web,
            })
        })
        .collect();
    for (at, text) in lines(node_log) {
        let (uri, via) = match Line::parse(text) {
            Some(Line::TftpOk { file, mac: m }) if m == mac => (file, Via::WireTftp),
            Some(Line::HttpReply {
                status,
                uri,
                mac: m,
            }) if m == mac && (200..300).contains(&status) => (uri, Via::WireHttp),
            _ => continue,
        };
        let (path, query) = uri.split_once('?').unwrap_or((uri, ""));
        let path = match path.split_once("://") {
            Some((_, rest)) => Cow::Borrowed(rest.find('/').map_or("/", |i| &rest[i..])),
            None if !path.starts_with('/') => Cow::Owned(format!("/{path}")),
            None => Cow::Borrowed(path),
        };
        out.push(Fetch {
            at,
            path,
            query,
            by_node: true,
            via,
        });
    }
    out.sort_by(|a, b| a.at.1.total_cmp(&b.at.1));
    out
}

/// Whether a fetched file's name says it is a kernel or an initrd (`vmlinuz`, `bzImage`,
/// `linux`, `initrd.img`, `initramfs-6.1.img`, ...), as provisioners name them.
fn is_kernel_or_initrd(path: &str) -> bool {
    let name = path
        .rsplit('/')
        .next()
        .unwrap_or_default()
        .to_ascii_lowercase();
    [
        "vmlinuz",
        "vmlinux",
        "bzimage",
        "kernel",
        "linux",
        "initrd",
        "initramfs",
    ]
    .iter()
    .any(|k| name.starts_with(k))
}

/// An installer's report that it wrote the disk, before it reboots into the installed system
/// (`?phase=installed`: labs/debian.toml, the RancherOS templates; `?installed=DISK`: the smoke
/// OS's installer), is still provisioning: `up` is the report of the system it installed.
fn reports_installed(query: &str) -> bool {
    query
        .split('&')
        .any(|kv| kv == "phase=installed" || kv.starts_with("installed="))
}

/// The device a node's current boot came from, as a provisioning server tells it: the
/// network (`pxe`: DHCP/TFTP/iPXE; `http`: UEFI HTTP boot), its disk, or its CD-ROM drive.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum BootSource {
    Pxe,
    Http,
    Disk,
    Cd,
}

impl BootSource {
    pub fn as_str(self) -> &'static str {
        match self {
            BootSource::Pxe => "pxe",
            BootSource::Http => "http",
            BootSource::Disk => "disk",
            BootSource::Cd => "cd",
        }
    }

    fn parse(word: &str) -> Option<BootSource> {
        match word {
            "pxe" => Some(BootSource::Pxe),
            "http" => Some(BootSource::Http),
            "disk" => Some(BootSource::Disk),
            "cd" | "cdrom" => Some(BootSource::Cd),
            _ => None,
        }
    }
}

impl fmt::Display for BootSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The boot device a report's query names (`boot=disk`; the smoke OS percent-encodes values).
fn reported_boot(query: &str) -> Option<BootSource> {
    let value = query.split('&').find_map(|kv| kv.strip_prefix("boot="))?;
    BootSource::parse(&percent_decode(value))
}

/// Where the node's current boot came from, if that can be told yet. In this order: what the
/// booted OS said in a report of this boot (`boot=disk`, as the smoke OS's boot loaders on a disk
/// or CD tell it); a network boot seen in this boot (the firmware's HTTP boot fetch of the EFI
/// iPXE: `http`; an iPXE or TFTP fetch of the boot loader or boot script: `pxe`); else, once the
/// OS showed up (a report or a cloud-config fetch) without any network boot, the first device of
/// the VM's boot order at its power on (lab-vm's `boot=disk|cdrom`). Unknown (None) before that,
/// or when the order put the network first and the network was not used.
pub fn boot_source(
    node: &NodeTraffic,
    node_log: &str,
    dhcp_log: &str,
    web_log: &str,
) -> Option<BootSource> {
    let t0 = history(node_log)
        .boot_at
        .map_or(f64::MIN, |(_, t)| t + FIRST_SECOND);
    let paths = Paths::of(node);
    let mut network = None;
    let mut said = None;
    let mut os_seen = false;
    for f in fetches(node, node_log, web_log)
        .into_iter()
        .filter(|f| f.at.1 >= t0)
    {
        let path = f.path.as_ref();
        if f.via == Via::WireTftp {
            network.get_or_insert(BootSource::Pxe);
        } else if f.by_node && path.starts_with("/lab/ipxe/") {
            network = Some(BootSource::Http);
        } else if path == paths.script || (f.by_node && path == "/lab/boot.ipxe") {
            network.get_or_insert(BootSource::Pxe);
        } else if path == paths.report {
            os_seen = true;
            said = reported_boot(f.query).or(said);
        } else if path.starts_with(&paths.configs) {
            os_seen = true;
        }
    }
    // dnsmasq's TFTP: `dnsmasq-tftp[1]: sent /srv/tftp/undionly.kpxe to 10.0.0.100`.
    let tftp_to = format!(" to {}", node.ip);
    if lines(dhcp_log)
        .filter(|((_, t), _)| *t >= t0)
        .any(|(_, l)| l.contains("dnsmasq-tftp") && l.contains(" sent ") && l.ends_with(&tftp_to))
    {
        network.get_or_insert(BootSource::Pxe);
    }
    said.or(network).or_else(|| {
        let first = node_log
            .lines()
            .rev()
            .find(|l| l.contains(QEMU_START))?
            .split_whitespace()
            .find_map(|w| w.strip_prefix("boot="))?;
        match first {
            "disk" if os_seen => Some(BootSource::Disk),
            "cdrom" if os_seen => Some(BootSource::Cd),
            _ => None,
        }
    })
}

/// What a node's OS saw of its machine, from the query of its last report
/// (`/lab/report/<mac>?vendor=...&serial=...&hypervisor=0`, as the smoke OS sends it): the DMI
/// identity and whether a hypervisor showed. Fields the report did not carry are left out.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct GuestReport {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub vendor: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub product: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub serial: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub uuid: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bios_vendor: Option<String>,
    /// How many NICs it found.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub nics: Option<u32>,
    /// The CPUID hypervisor bit.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hypervisor: Option<bool>,
    /// The SMBIOS "VM" bit (BIOS characteristics extension byte 2, bit 4).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub smbios_vm: Option<bool>,
    /// The firmware it booted through (`bios` or `uefi`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub firmware: Option<String>,
    /// Where it says it booted from (its boot loader told it).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub boot: Option<BootSource>,
    /// An installer: the disk it wrote (`sda`), or the step that failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub installed: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub install_failed: Option<String>,
}

/// The identity in the node's last report answered 2xx that carried one, as lab's web service
/// logged it or as the node's own wire saw it (for labs whose web service is not lab's).
pub fn guest_report(node: &NodeTraffic, node_log: &str, web_log: &str) -> Option<GuestReport> {
    let report = Paths::of(node).report;
    fetches(node, node_log, web_log)
        .iter()
        .rev()
        .filter(|f| f.path == report)
        .find_map(|f| parse_report(f.query))
}

fn parse_report(query: &str) -> Option<GuestReport> {
    let mut r = GuestReport::default();
    let flag = |v: &str| match v {
        "1" => Some(true),
        "0" => Some(false),
        _ => None,
    };
    for pair in query.split('&') {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        let v = percent_decode(v);
        match k {
            "vendor" => r.vendor = Some(v),
            "product" => r.product = Some(v),
            "serial" => r.serial = Some(v),
            "uuid" => r.uuid = Some(v.to_ascii_lowercase()),
            "bios_vendor" => r.bios_vendor = Some(v),
            "nics" => r.nics = v.trim().parse().ok(),
            "hypervisor" => r.hypervisor = flag(&v),
            "smbios_vm" => r.smbios_vm = flag(&v),
            "firmware" => r.firmware = Some(v),
            "boot" => r.boot = BootSource::parse(&v),
            "installed" => r.installed = Some(v),
            "install_failed" => r.install_failed = Some(v),
            _ => {}
        }
    }
    (r != GuestReport::default()).then_some(r)
}

/// `%XX` decoded (a malformed escape is kept as written), trailing whitespace and NULs trimmed:
/// DMI strings are read from sysfs files that end in a newline.
fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = b
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (b[i], hex) {
            (b'%', Some(v)) => {
                out.push(v);
                i += 3;
            }
            (c, _) => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out)
        .trim_end_matches(|c: char| c.is_whitespace() || c == '\0')
        .to_string()
}

/// One line of the web service's access log: `CLIENT TIME METHOD STATUS BYTES URI`.
struct Access<'a> {
    client: &'a str,
    status: u16,
    uri: &'a str,
}

impl<'a> Access<'a> {
    fn parse(line: &'a str) -> Option<Access<'a>> {
        let mut f = line.split_whitespace();
        let client = f.next()?;
        let _time = f.next()?;
        let _method = f.next()?;
        let status = f.next()?.parse().ok()?;
        let _bytes = f.next()?;
        let uri = f.next()?;
        Some(Access {
            client,
            status,
            uri,
        })
    }

    fn ok(&self) -> bool {
        (200..300).contains(&self.status)
    }
}

/// Log lines split into (timestamp text, seconds) and the rest; lines without a timestamp are skipped.
fn lines(log: &str) -> impl Iterator<Item = ((&str, f64), &str)> {
    log.lines().filter_map(|l| {
        let (ts, rest) = l.split_once(' ')?;
        Some(((ts, rfc3339_seconds(ts)?), rest))
    })
}

/// Seconds since the epoch of an RFC 3339 UTC time as the engine writes it
/// (`2026-11-21T01:02:03.123456789Z`).
pub fn rfc3339_seconds(ts: &str) -> Option<f64> {
    let ts = ts.strip_suffix('Z')?;
    let (date, time) = ts.split_once('T')?;
    let mut d = date.splitn(3, '-').map(|x| x.parse::<i64>().ok());
    let (y, m, day) = (d.next()??, d.next()??, d.next()??);
    let mut t = time.splitn(3, ':');
    let (h, min) = (
        t.next()?.parse::<i64>().ok()?,
        t.next()?.parse::<i64>().ok()?,
    );
    let sec: f64 = t.next()?.parse().ok()?;
    // Days from civil (Howard Hinnant's algorithm).
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some((days * 86_400 + h * 3600 + min * 60) as f64 + sec)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node() -> NodeTraffic {
        NodeTraffic {
            name: "master".into(),
            mac: "00:aa:bb:cc:dd:ee".into(),
            ip: "10.0.0.100".into(),
            boot_files: vec!["/smoke/vmlinuz".into(), "/smoke/initrd".into()],
        }
    }

    const NODE_LOG: &str = "2026-11-21T01:00:00.5Z lab: node master: mac 00:aa:bb:cc:dd:ee\n2026-11-21T01:00:01Z lab: power on: qemu accel=tcg\n";
    const DHCP: &str = "2026-11-21T01:00:05.1Z dnsmasq-dhcp[1]: DHCPACK(eth0) 10.0.0.100 00:aa:bb:cc:dd:ee master\n2026-11-21T01:00:05.2Z dnsmasq-dhcp[1]: DHCPACK(eth0) 10.0.0.101 00:aa:bb:cc:dd:ef worker-1\n";

    #[test]
    fn parses_engine_timestamps() {
        assert_eq!(rfc3339_seconds("1970-01-01T00:00:00Z"), Some(0.0));
        assert_eq!(
            rfc3339_seconds("2000-03-01T00:00:01.5Z"),
            Some(951_868_801.5)
        );
        assert_eq!(rfc3339_seconds("garbage"), None);
    }

    #[test]
    fn walks_through_the_phases_in_order() {
        let n = node();
        assert_eq!(
            derive(&n, PowerState::Off, NODE_LOG, DHCP, ""),
            (Phase::Off, None)
        );
        assert_eq!(
            derive(&n, PowerState::On, NODE_LOG, "", "").0,
            Phase::Firmware
        );
        assert_eq!(
            derive(&n, PowerState::On, NODE_LOG, DHCP, ""),
            (Phase::Dhcp, Some("2026-11-21T01:00:05.1Z".into()))
        );
        let mut web = String::from("2026-11-21T01:00:07Z 10.0.0.100 2026-11-21T01:00:07+00:00 GET 200 301 /lab/nodes/00-aa-bb-cc-dd-ee.ipxe\n");
        assert_eq!(
            derive(&n, PowerState::On, NODE_LOG, DHCP, &web).0,
            Phase::Pxe
        );
        web.push_str("2026-11-21T01:00:08Z 10.0.0.101 x GET 200 9 /smoke/vmlinuz\n");
        assert_eq!(
            derive(&n, PowerState::On, NODE_LOG, DHCP, &web).0,
            Phase::Pxe,
            "another node's kernel download"
        );
        web.push_str("2026-11-21T01:00:09Z 10.0.0.100 x GET 200 9 /smoke/initrd\n");
        assert_eq!(
            derive(&n, PowerState::On, NODE_LOG, DHCP, &web).0,
            Phase::Kernel
        );
        web.push_str(
            "2026-11-21T01:00:10Z 10.0.0.100 x GET 404 9 /lab/nodes/master/cloud-config.yaml\n",
        );
        assert_eq!(
            derive(&n, PowerState::On, NODE_LOG, DHCP, &web).0,
            Phase::Kernel,
            "a failed fetch is not progress"
        );
        web.push_str(
            "2026-11-21T01:00:11Z 10.0.0.100 x GET 200 9 /lab/nodes/master/cloud-config.yaml\n",
        );
        assert_eq!(
            derive(&n, PowerState::On, NODE_LOG, DHCP, &web).0,
            Phase::Provisioning
        );
        web.push_str(
            "2026-11-21T01:00:11.5Z 10.0.0.100 x GET 204 0 /lab/report/00-aa-bb-cc-dd-ee?phase=installed\n",
        );
        assert_eq!(
            derive(&n, PowerState::On, NODE_LOG, DHCP, &web),
            (Phase::Provisioning, Some("2026-11-21T01:00:11.5Z".into())),
            "an installer's report is not the installed system's"
        );
        web.push_str(
            "2026-11-21T01:00:12Z 10.0.0.100 x GET 204 0 /lab/report/00-aa-bb-cc-dd-ee?phase=up\n",
        );
        assert_eq!(
            derive(&n, PowerState::On, NODE_LOG, DHCP, &web),
            (Phase::Up, Some("2026-11-21T01:00:12Z".into()))
        );
    }

    #[test]
    fn the_last_report_tells_what_the_guest_saw() {
        let web = "2026-11-21T01:00:12Z 10.0.0.100 x GET 204 0 /lab/report/00-aa-bb-cc-dd-ee?vendor=%4d%65%74%61%6c%20%4c%61%62%0a&serial=LAB1&uuid=ABCD&hypervisor=1&smbios_vm=1\n\
2026-11-21T01:00:13Z 10.0.0.101 x GET 204 0 /lab/report/00-aa-bb-cc-dd-ef?serial=OTHER&hypervisor=1\n\
2026-11-21T01:01:12Z 10.0.0.100 x GET 204 0 /lab/report/00-aa-bb-cc-dd-ee?serial=LAB2&nics=2&hypervisor=0&smbios_vm=x&bad=%zz\n\
2026-11-21T01:02:12Z 10.0.0.100 x GET 204 0 /lab/report/00-aa-bb-cc-dd-ee\n";
        let first = web.lines().next().unwrap().to_string() + "\n";
        assert_eq!(
            guest_report(&node(), "", &first),
            Some(GuestReport {
                vendor: Some("Metal Lab".into()),
                serial: Some("LAB1".into()),
                uuid: Some("abcd".into()),
                hypervisor: Some(true),
                smbios_vm: Some(true),
                ..GuestReport::default()
            })
        );
        // The last report with an identity wins; a bare report (iPXE's) carries none.
        assert_eq!(
            guest_report(&node(), "", web),
            Some(GuestReport {
                serial: Some("LAB2".into()),
                nics: Some(2),
                hypervisor: Some(false),
                ..GuestReport::default()
            })
        );
        let other = NodeTraffic {
            mac: "00:aa:bb:cc:dd:01".into(),
            ..node()
        };
        assert_eq!(guest_report(&other, "", web), None);
        assert_eq!(percent_decode("a%2"), "a%2");
    }

    #[test]
    fn a_reset_through_the_bmc_starts_the_phases_again() {
        let web = "2026-11-21T01:00:12Z 10.0.0.100 x GET 204 0 /lab/report/00-aa-bb-cc-dd-ee\n";
        let reset =
            format!("{NODE_LOG}2026-11-21T01:03:00Z lab: bmc: power reset: the VM restarts\n");
        assert_eq!(
            derive(&node(), PowerState::On, &reset, DHCP, web),
            (Phase::Firmware, Some("2026-11-21T01:03:00Z".into()))
        );
    }

    #[test]
    fn a_power_on_through_the_bmc_is_a_new_boot_before_qemu_starts_and_one_boot_after() {
        let web = "2026-11-21T01:00:12Z 10.0.0.100 x GET 204 0 /lab/report/00-aa-bb-cc-dd-ee\n";
        // The BMC's line comes before its answer; lab-vm's comes when QEMU starts, here 5 s later.
        let asked = format!(
            "{NODE_LOG}2026-11-21T01:02:00Z lab: vm: shutdown by=guest reason=guest-shutdown\n\
             2026-11-21T01:03:00Z lab: bmc: power on: the VM starts\n"
        );
        assert_eq!(
            derive(&node(), PowerState::On, &asked, DHCP, web),
            (Phase::Firmware, Some("2026-11-21T01:03:00Z".into())),
            "the last boot's report is not this boot's"
        );
        assert_eq!(history(&asked).boots, 2);
        let started =
            format!("{asked}2026-11-21T01:03:05Z lab: power on: qemu accel=tcg boot=disk\n");
        assert_eq!(history(&started).boots, 2, "QEMU's start is the same boot");
        let again = format!("{started}2026-11-21T01:03:09Z lab: power on: qemu accel=tcg\n");
        assert_eq!(
            history(&again).boots,
            3,
            "a second start without the BMC's line is not"
        );
    }

    #[test]
    fn a_reboot_of_the_guest_starts_the_phases_again_and_is_one_boot() {
        let web = "2026-11-21T01:00:12Z 10.0.0.100 x GET 204 0 /lab/report/00-aa-bb-cc-dd-ee\n";
        // QEMU reports two resets for one reboot: the kernel's, then SeaBIOS's own right after.
        let rebooted = format!(
            "{NODE_LOG}2026-11-21T01:04:00.1Z lab: vm: reset by=guest reason=guest-reset\n\
             2026-11-21T01:04:00.2Z lab: vm: reset by=guest reason=guest-reset\n"
        );
        assert_eq!(
            derive(&node(), PowerState::On, &rebooted, DHCP, web),
            (Phase::Firmware, Some("2026-11-21T01:04:00.2Z".into()))
        );
        let h = history(&rebooted);
        assert_eq!(h.boots, 2, "the power on and the reboot");
        assert_eq!(
            h.last_event,
            Some(VmEvent {
                event: "reset".into(),
                by: "guest".into(),
                at: "2026-11-21T01:04:00.1Z".into(),
                reason: Some("guest-reset".into()),
                action: None,
            })
        );
        // After the new boot's report, `up` again, since then.
        let web = format!(
            "{web}2026-11-21T01:04:30Z 10.0.0.100 x GET 204 0 /lab/report/00-aa-bb-cc-dd-ee\n"
        );
        assert_eq!(
            derive(&node(), PowerState::On, &rebooted, DHCP, &web),
            (Phase::Up, Some("2026-11-21T01:04:30Z".into()))
        );
    }

    #[test]
    fn boots_count_power_ons_and_resets_since_the_container_started() {
        let log = "2026-11-21T00:00:00Z lab: node master: mac 00:aa:bb:cc:dd:ee\n\
                   2026-11-21T00:00:01Z lab: power on: qemu accel=tcg\n\
                   2026-11-21T00:00:50Z lab: vm: reset by=guest reason=guest-reset\n\
                   2026-11-21T01:00:00.5Z lab: node master: mac 00:aa:bb:cc:dd:ee\n\
                   2026-11-21T01:00:01Z lab: power on: qemu accel=tcg\n\
                   2026-11-21T01:03:00Z lab: vm: reset by=bmc reason=host-qmp-system-reset\n\
                   2026-11-21T01:03:00.01Z lab: bmc: power reset: the VM restarts\n\
                   2026-11-21T01:03:00.14Z lab: vm: reset by=guest reason=guest-reset\n\
                   2026-11-21T01:03:00.15Z lab: vm: reset by=guest reason=guest-reset\n";
        let h = history(log);
        assert_eq!(
            h.boots, 2,
            "this container's power on and the BMC's reset, once"
        );
        assert_eq!(
            h.boot_at,
            Some(("2026-11-21T01:03:00.15Z".into(), 1_795_222_980.15))
        );
        let e = h.last_event.unwrap();
        assert_eq!(
            (e.event.as_str(), e.by.as_str(), e.at.as_str()),
            ("reset", "bmc", "2026-11-21T01:03:00Z"),
            "SeaBIOS's own resets after a warm reset are part of the BMC's"
        );
        let log = format!(
            "{log}2026-11-21T01:05:00Z lab: vm: powerdown by=bmc\n\
             2026-11-21T01:05:02Z lab: vm: shutdown by=guest reason=guest-shutdown\n"
        );
        let h = history(&log);
        assert_eq!(h.boots, 2);
        let e = h.last_event.unwrap();
        assert_eq!(
            (e.event.as_str(), e.by.as_str(), e.reason.as_deref()),
            ("shutdown", "guest", Some("guest-shutdown"))
        );
        assert_eq!(history("").boots, 0);
        let panic = history("2026-11-21T01:00:00Z lab: vm: panic by=guest action=run\n");
        assert_eq!(panic.last_event.unwrap().action.as_deref(), Some("run"));
        assert_eq!(panic.boots, 0, "a panic alone is no new boot");
    }

    #[test]
    fn the_nodes_own_wire_gives_the_phases_without_lab_services() {
        let n = node();
        let mut log = String::from(NODE_LOG);
        let mut step = |line: &str| {
            log.push_str(line);
            log.push('\n');
            derive(&n, PowerState::On, &log, "", "")
        };
        let m = "mac=00:aa:bb:cc:dd:ee";
        assert_eq!(step(&format!("2026-11-21T01:00:02Z lab: wire: dhcp discover {m} vendor=PXEClient:Arch:00000:UNDI:002001 arch=0")).0, Phase::Firmware);
        assert_eq!(
            step("2026-11-21T01:00:03Z lab: wire: dhcp ack mac=00:aa:bb:cc:dd:ef ip=10.0.0.101").0,
            Phase::Firmware,
            "another node's lease"
        );
        assert_eq!(
            step(&format!(
                "2026-11-21T01:00:04Z lab: wire: dhcp ack {m} ip=10.0.0.100 server=10.0.0.9"
            )),
            (Phase::Dhcp, Some("2026-11-21T01:00:04Z".into()))
        );
        assert_eq!(
            step(&format!(
                "2026-11-21T01:00:05Z lab: wire: tftp read boot.ipxe {m} server=10.0.0.9"
            ))
            .0,
            Phase::Dhcp,
            "asked, not answered yet"
        );
        assert_eq!(step(&format!("2026-11-21T01:00:05Z lab: wire: tftp error pxelinux.0 {m} server=10.0.0.9 code=1 message=x")).0, Phase::Dhcp);
        assert_eq!(
            step(&format!(
                "2026-11-21T01:00:06Z lab: wire: tftp ok boot.ipxe {m} server=10.0.0.9"
            ))
            .0,
            Phase::Pxe
        );
        assert_eq!(step(&format!("2026-11-21T01:00:07Z lab: wire: http reply 404 GET /boot/vmlinuz {m} server=10.0.0.9:80")).0, Phase::Pxe, "a failed fetch is not progress");
        assert_eq!(step(&format!("2026-11-21T01:00:08Z lab: wire: http reply 200 GET /boot/vmlinuz {m} server=10.0.0.9:80")).0, Phase::Kernel);
        assert_eq!(
            step(&format!(
                "2026-11-21T01:00:20Z lab: wire: dhcp ack {m} ip=10.0.0.100"
            ))
            .0,
            Phase::Kernel,
            "the OS's own lease is no step back"
        );
        assert_eq!(
            step(&format!("2026-11-21T01:00:21Z lab: wire: http reply 204 GET /lab/report/00-aa-bb-cc-dd-ee?serial=LAB9&hypervisor=1 {m} server=10.0.0.9:80")),
            (Phase::Up, Some("2026-11-21T01:00:21Z".into()))
        );
        // A new boot starts over, wire or not.
        assert_eq!(
            step("2026-11-21T01:01:00Z lab: vm: reset by=guest reason=guest-reset").0,
            Phase::Firmware
        );
        assert_eq!(
            guest_report(
                &NodeTraffic {
                    mac: "00:AA:BB:CC:DD:EE".into(),
                    ..node()
                },
                &log,
                ""
            ),
            Some(GuestReport {
                serial: Some("LAB9".into()),
                hypervisor: Some(true),
                ..GuestReport::default()
            })
        );
        assert!(
            is_kernel_or_initrd("/images/initramfs-6.1.img") && is_kernel_or_initrd("/bzImage")
        );
        assert!(!is_kernel_or_initrd("/boot.ipxe") && !is_kernel_or_initrd("/undionly.kpxe"));
    }

    #[test]
    fn the_boot_source_of_a_boot_through_another_provisioner_comes_from_the_wire() {
        let n = node();
        let m = "mac=00:aa:bb:cc:dd:ee";
        let mut log = String::from(
            "2026-11-21T01:00:00.5Z lab: node master: mac 00:aa:bb:cc:dd:ee\n\
             2026-11-21T01:00:01Z lab: power on: qemu accel=tcg firmware=bios boot=disk (the node's boot setting) mac=x\n",
        );
        log.push_str("2026-11-21T01:00:04Z lab: wire: tftp ok boot.ipxe mac=00:aa:bb:cc:dd:ef server=10.0.0.9\n");
        assert_eq!(boot_source(&n, &log, "", ""), None, "another node's read");
        log.push_str(&format!(
            "2026-11-21T01:00:05Z lab: wire: tftp ok boot.ipxe {m} server=10.0.0.9\n"
        ));
        assert_eq!(boot_source(&n, &log, "", ""), Some(BootSource::Pxe));
        log.push_str("2026-11-21T01:00:40Z lab: vm: reset by=guest reason=guest-reset\n");
        assert_eq!(boot_source(&n, &log, "", ""), None, "a new boot");
        log.push_str(&format!("2026-11-21T01:00:50Z lab: wire: http reply 404 GET /lab/report/00-aa-bb-cc-dd-ee?boot=disk {m} server=10.0.0.9:80\n"));
        assert_eq!(boot_source(&n, &log, "", ""), None, "an unanswered report");
        log.push_str(&format!("2026-11-21T01:00:51Z lab: wire: http reply 204 GET /lab/report/00-aa-bb-cc-dd-ee?boot=disk {m} server=10.0.0.9:80\n"));
        assert_eq!(boot_source(&n, &log, "", ""), Some(BootSource::Disk));
    }

    #[test]
    fn the_boot_source_is_what_the_guest_says_else_what_was_seen_in_this_boot() {
        let n = node();
        let on_disk = "2026-11-21T01:00:00.5Z lab: node master: mac 00:aa:bb:cc:dd:ee\n\
                       2026-11-21T01:00:01Z lab: power on: qemu accel=tcg firmware=bios boot=disk (the node's boot setting) mac=x\n";
        assert_eq!(boot_source(&n, on_disk, "", ""), None, "nothing seen yet");
        // The empty disk fell through to the network: SeaBIOS's iPXE fetched the boot script.
        let tftp =
            "2026-11-21T01:00:04Z dnsmasq-tftp[1]: sent /srv/tftp/undionly.kpxe to 10.0.0.100\n";
        assert_eq!(boot_source(&n, on_disk, tftp, ""), Some(BootSource::Pxe));
        let other =
            "2026-11-21T01:00:04Z dnsmasq-tftp[1]: sent /srv/tftp/undionly.kpxe to 10.0.0.1001\n";
        assert_eq!(boot_source(&n, on_disk, other, ""), None, "another address");
        let mut web = String::from(
            "2026-11-21T01:00:07Z 10.0.0.100 x GET 200 301 /lab/nodes/00-aa-bb-cc-dd-ee.ipxe\n\
             2026-11-21T01:00:30Z 10.0.0.100 x GET 200 9 /smoke/disk.img.gz\n\
             2026-11-21T01:00:40Z 10.0.0.100 x GET 204 0 /lab/report/00-aa-bb-cc-dd-ee?serial=S&firmware=bios&installed=sda\n",
        );
        assert_eq!(boot_source(&n, on_disk, "", &web), Some(BootSource::Pxe));
        // The installer rebooted: a new boot, nothing seen of it yet.
        let rebooted =
            format!("{on_disk}2026-11-21T01:00:41Z lab: vm: reset by=guest reason=guest-reset\n");
        assert_eq!(boot_source(&n, &rebooted, tftp, &web), None);
        // The installed OS says where it came from (the smoke OS encodes every byte).
        web.push_str("2026-11-21T01:00:55Z 10.0.0.100 x GET 204 0 /lab/report/00-aa-bb-cc-dd-ee?serial=S&firmware=bios&boot=%64%69%73%6b\n");
        assert_eq!(
            boot_source(&n, &rebooted, tftp, &web),
            Some(BootSource::Disk)
        );
        let cd_said = web.replace("boot=%64%69%73%6b", "boot=cd");
        assert_eq!(
            boot_source(&n, &rebooted, tftp, &cd_said),
            Some(BootSource::Cd),
            "what the OS says wins over the boot order"
        );
        let g = guest_report(&n, "", &web).unwrap();
        assert_eq!(
            (g.firmware.as_deref(), g.boot, g.installed),
            (Some("bios"), Some(BootSource::Disk), None)
        );
        let first = web.lines().nth(2).unwrap();
        assert_eq!(
            guest_report(&n, "", first).unwrap().installed.as_deref(),
            Some("sda")
        );
        // An OS that does not say: the first device of the boot order, once the OS showed up
        // without a network boot; nothing when the network came first.
        let quiet = "2026-11-21T01:00:55Z 10.0.0.100 x GET 204 0 /lab/report/00-aa-bb-cc-dd-ee\n";
        assert_eq!(
            boot_source(&n, &rebooted, "", quiet),
            Some(BootSource::Disk)
        );
        let cd = on_disk.replace("boot=disk", "boot=cdrom");
        assert_eq!(boot_source(&n, &cd, "", quiet), Some(BootSource::Cd));
        let pxe_first = on_disk.replace("boot=disk", "boot=pxe");
        assert_eq!(boot_source(&n, &pxe_first, "", quiet), None);
        // UEFI HTTP boot: the firmware fetched the EFI iPXE itself, then iPXE the scripts.
        let http = "2026-11-21T01:00:05Z 10.0.0.100 x GET 200 999 /lab/ipxe/ipxe.efi\n\
                    2026-11-21T01:00:07Z 10.0.0.100 x GET 200 99 /lab/boot.ipxe\n";
        assert_eq!(
            boot_source(&n, &pxe_first, "", http),
            Some(BootSource::Http)
        );
    }

    #[test]
    fn a_report_stamped_just_after_the_reboot_it_precedes_belongs_to_the_boot_before() {
        // Seen live: the installer's report, then `reboot -f` at once; the web log's line was
        // stamped 40 microseconds after the node log's reset.
        let log = format!(
            "{NODE_LOG}2026-11-21T01:04:00.000100Z lab: vm: reset by=guest reason=guest-reset\n"
        );
        let web = "2026-11-21T01:03:50Z 10.0.0.100 x GET 200 301 /lab/nodes/00-aa-bb-cc-dd-ee.ipxe\n\
                   2026-11-21T01:04:00.000140Z 10.0.0.100 x GET 204 0 /lab/report/00-aa-bb-cc-dd-ee?installed=sda\n";
        assert_eq!(
            derive(&node(), PowerState::On, &log, DHCP, web),
            (Phase::Firmware, Some("2026-11-21T01:04:00.000100Z".into()))
        );
        assert_eq!(boot_source(&node(), &log, "", web), None);
    }

    #[test]
    fn a_reboot_goes_through_the_phases_again() {
        let web = "2026-11-21T01:00:12Z 10.0.0.100 x GET 204 0 /lab/report/00-aa-bb-cc-dd-ee\n";
        let rebooted = format!("{NODE_LOG}2026-11-21T01:05:00Z lab: power on: qemu accel=tcg\n");
        assert_eq!(
            derive(&node(), PowerState::On, &rebooted, DHCP, web),
            (Phase::Firmware, Some("2026-11-21T01:05:00Z".into()))
        );
    }
}
