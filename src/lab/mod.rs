//! The validated lab: every count expanded, every address and port allocated and checked.
//!
//! A [`Lab`] is only ever built by [`load`] / [`from_str`] (see `validate.rs`), so code downstream
//! (rendering, planning, commands) may trust it and never re-checks. The raw file types live in
//! [`crate::config`]; this split follows ripgrep's low-level/high-level argument types: parsing is
//! allowed to be sloppy, the model is not.

mod diag;
mod validate;

pub use diag::{Diag, Diagnostics, Source};
pub use validate::{from_str, load};

use std::collections::BTreeMap;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};

use ipnet::Ipv4Net;
use serde::Serialize;

#[derive(Debug, Clone, Serialize)]
/// Fields are private: only validation (a child module) builds a `Lab`, so every value here has
/// been checked, and code downstream reads it through the accessors below.
pub struct Lab {
    name: String,
    /// The lab file, as given.
    #[serde(skip)]
    file: PathBuf,
    /// Directory of the lab file: relative paths in the file are relative to it.
    #[serde(skip)]
    dir: PathBuf,
    /// Host address that published ports bind to.
    publish: IpAddr,
    /// Image that lab's own images are built from.
    base_image: String,
    network: Network,
    vars: BTreeMap<String, String>,
    services: Vec<Service>,
    nodes: Vec<Node>,
    profiles: BTreeMap<String, Profile>,
    /// What `lab fetch-assets` downloads, by name.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    assets: BTreeMap<String, Asset>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Network {
    pub subnet: Ipv4Net,
    pub gateway: Ipv4Addr,
    pub dns: Vec<Ipv4Addr>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ServiceKind {
    Dnsmasq,
    Httpd,
    Sshd,
    Rancher,
    Container,
}

impl ServiceKind {
    pub const ALL: [ServiceKind; 5] = [
        ServiceKind::Dnsmasq,
        ServiceKind::Httpd,
        ServiceKind::Sshd,
        ServiceKind::Rancher,
        ServiceKind::Container,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ServiceKind::Dnsmasq => "dnsmasq",
            ServiceKind::Httpd => "httpd",
            ServiceKind::Sshd => "sshd",
            ServiceKind::Rancher => "rancher",
            ServiceKind::Container => "container",
        }
    }

    /// The image lab builds for this kind from `images/<name>/`, if it builds one.
    pub fn built_image(self) -> Option<&'static str> {
        match self {
            ServiceKind::Dnsmasq => Some("dnsmasq"),
            ServiceKind::Httpd => Some("httpd"),
            ServiceKind::Sshd => Some("sshd"),
            ServiceKind::Rancher | ServiceKind::Container => None,
        }
    }
}

impl fmt::Display for ServiceKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for ServiceKind {
    type Err = String;

    fn from_str(s: &str) -> Result<ServiceKind, String> {
        ServiceKind::ALL
            .into_iter()
            .find(|k| k.as_str() == s)
            .ok_or_else(|| format!("unknown service kind `{s}`"))
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Service {
    pub name: String,
    pub ip: Ipv4Addr,
    pub ports: Vec<PortMap>,
    pub env: BTreeMap<String, String>,
    pub volumes: Vec<VolumeMount>,
    pub command: Option<Vec<String>>,
    /// The kind and its own settings; serialized flat, as `kind` beside them.
    #[serde(flatten)]
    pub config: ServiceConfig,
}

/// What a service is, with the settings only that kind has: a dnsmasq service always has its
/// DHCP range, an httpd service its web root, a container its image.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum ServiceConfig {
    Dnsmasq {
        dhcp: Dhcp,
        /// Extra directory served over TFTP (absolute).
        tftp_root: Option<PathBuf>,
    },
    Httpd {
        /// The directory served at `/` (absolute).
        root: PathBuf,
    },
    Sshd {
        /// Root password.
        password: String,
        /// Authorized keys file (absolute).
        authorized_keys: Option<PathBuf>,
    },
    Rancher {
        image: String,
    },
    Container {
        /// The image to run: the user's, or the tag lab builds from `build`.
        image: String,
        /// A build context of the user's, which lab builds into `image`.
        build: Option<Build>,
        cap_add: Vec<String>,
    },
}

/// A `container` service's own build context (`build = "DIR"`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Build {
    /// The context directory (absolute), holding a `Dockerfile`.
    pub dir: PathBuf,
    /// Hash of the directory's files, paths and modes: a change rebuilds the image.
    pub hash: String,
    /// The image the Dockerfile's first `FROM` names (empty when it is `scratch` or a variable):
    /// checked to be local before a build, as lab does for its own images.
    pub from: String,
}

impl ServiceConfig {
    pub fn kind(&self) -> ServiceKind {
        match self {
            ServiceConfig::Dnsmasq { .. } => ServiceKind::Dnsmasq,
            ServiceConfig::Httpd { .. } => ServiceKind::Httpd,
            ServiceConfig::Sshd { .. } => ServiceKind::Sshd,
            ServiceConfig::Rancher { .. } => ServiceKind::Rancher,
            ServiceConfig::Container { .. } => ServiceKind::Container,
        }
    }
}

impl Service {
    /// The service's kind, for code that needs no kind-specific settings.
    pub fn kind(&self) -> ServiceKind {
        self.config.kind()
    }
    /// The image a `container` or `rancher` service runs (lab builds the others' images).
    pub fn image(&self) -> Option<&str> {
        match &self.config {
            ServiceConfig::Rancher { image } | ServiceConfig::Container { image, .. } => {
                Some(image)
            }
            _ => None,
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Dhcp {
    pub range: (Ipv4Addr, Ipv4Addr),
    pub lease_time: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Proto {
    Tcp,
    Udp,
}

impl Proto {
    pub fn as_str(self) -> &'static str {
        match self {
            Proto::Tcp => "tcp",
            Proto::Udp => "udp",
        }
    }
}

impl fmt::Display for Proto {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A published port: `host` on `lab.publish` (or on `host_ip`) forwards to `container` inside.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct PortMap {
    pub host: u16,
    pub container: u16,
    pub protocol: Proto,
    /// The host address, when not `lab.publish`: a node's `bmc_publish`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub host_ip: Option<Ipv4Addr>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum VolumeMount {
    /// A host path (absolute) mounted at `target`.
    Bind {
        source: PathBuf,
        target: String,
        read_only: bool,
    },
    /// A named Docker volume, scoped to the lab (`<lab>-<name>`).
    Volume {
        name: String,
        target: String,
        read_only: bool,
    },
}

/// A MAC address; serialized as `00:aa:bb:cc:dd:ee`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Mac(pub [u8; 6]);

impl Serialize for Mac {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl Mac {
    pub fn to_u64(self) -> u64 {
        self.0
            .iter()
            .fold(0u64, |acc, b| (acc << 8) | u64::from(*b))
    }
    pub fn from_u64(v: u64) -> Mac {
        let b = v.to_be_bytes();
        Mac([b[2], b[3], b[4], b[5], b[6], b[7]])
    }
    /// `00-aa-bb-cc-dd-ee`: the form iPXE's `${mac:hexhyp}` prints, used in file names.
    pub fn hyphenated(self) -> String {
        self.to_string().replace(':', "-")
    }
}

impl fmt::Display for Mac {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let b = self.0;
        write!(
            f,
            "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
            b[0], b[1], b[2], b[3], b[4], b[5]
        )
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum BootDevice {
    Pxe,
    Disk,
    /// UEFI HTTP boot (firmware `uefi` only).
    Http,
}

/// The node's firmware: SeaBIOS, or OVMF (UEFI) with an NVRAM file in the node's volume.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Firmware {
    Bios,
    Uefi,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Power {
    On,
    Off,
}

/// The power restore policy of a node's BMC: the VM's power after its container restarts (an
/// engine restart), as a real server's after a power loss. The BMC keeps it in the node's volume,
/// so `ipmitool chassis policy` changes it until the volume is removed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum PowerRestore {
    /// The power asked for last (over IPMI or at first start).
    Previous,
    On,
    Off,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Accel {
    Auto,
    Kvm,
    Tcg,
}

/// One of a node's disks: a qcow2 file in the node's volume, an AHCI disk with its own serial.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Disk {
    pub bytes: u64,
    /// The disk's serial number (at most 20 characters, as ATA allows).
    pub serial: String,
}

/// The most NICs a node has.
pub const MAX_NICS: i64 = 8;

/// The most disks a node has: the AHCI controller's six ports.
pub const MAX_DISKS: usize = 5;

/// One virtual server: a node container holding its BMC, VNC and the QEMU VM.
#[derive(Debug, Clone, Serialize)]
pub struct Node {
    pub name: String,
    /// The `[nodes.<group>]` table it came from (differs from `name` when `count` > 1).
    pub group: String,
    /// The first NIC's MAC: the one that PXE-boots and has the DHCP reservation `ip`.
    pub mac: Mac,
    /// Every NIC's MAC, in order, `mac` first; the others are consecutive after it.
    pub nic_macs: Vec<Mac>,
    /// The VM's DHCP reservation (its first NIC's).
    pub ip: Ipv4Addr,
    /// Every NIC's DHCP reservation, in the order of `nic_macs`, `ip` first: consecutive from
    /// `ip` when the file gives one, else each allocated.
    pub nic_ips: Vec<Ipv4Addr>,
    /// The node container's address: BMC (IPMI) and VNC live here.
    pub bmc_ip: Ipv4Addr,
    pub vnc_port: Option<u16>,
    pub ipmi_port: Option<u16>,
    /// Host port of the BMC's Redfish service (HTTPS, 443 inside).
    pub redfish_port: Option<u16>,
    /// The host address the BMC's IPMI and Redfish ports are published on, instead of
    /// `lab.publish` (`bmc_publish`): one address per BMC, as in a rack.
    pub bmc_publish: Option<Ipv4Addr>,
    pub cpus: u32,
    pub memory_mb: u64,
    /// Its disks, in order (the first is /dev/sda, the boot disk).
    pub disks: Vec<Disk>,
    pub boot: BootDevice,
    pub power: Power,
    pub power_restore: PowerRestore,
    pub profile: Option<String>,
    pub bmc_user: String,
    pub bmc_password: String,
    pub accel: Accel,
    /// Manufacturer, as SMBIOS (system, board, chassis, BIOS) and the FRU name it.
    pub vendor: String,
    /// Product name (SMBIOS system product, FRU product and board name).
    pub model: String,
    /// Serial number of system, board and chassis: unique in the lab.
    pub serial: String,
    /// System UUID (lowercase, hyphenated): SMBIOS, `-uuid`, IPMI System and Device GUID.
    pub uuid: String,
    pub asset_tag: String,
    /// The guest sees no hypervisor: no CPUID bit, no SMBIOS VM bit, no QEMU strings where QEMU
    /// lets them be changed.
    pub hide_hypervisor: bool,
    pub firmware: Firmware,
}

impl Node {
    /// Published ports of the node container: VNC on 5901/tcp inside, IPMI on the same
    /// port inside as on the host, Redfish on 443/tcp inside; IPMI and Redfish on
    /// `bmc_publish` when the node has one. The BMC answers on 623 (the lab network's port) and on the
    /// published port, because an SOL session must run on the port the client used, and the
    /// BMC names its own port when it activates one (see images/node/lab-bmc.c).
    pub fn ports(&self) -> Vec<PortMap> {
        let mut ports = Vec::new();
        if let Some(host) = self.vnc_port {
            ports.push(PortMap {
                host,
                container: VNC_PORT,
                protocol: Proto::Tcp,
                host_ip: None,
            });
        }
        if let Some(host) = self.ipmi_port {
            ports.push(PortMap {
                host,
                container: host,
                protocol: Proto::Udp,
                host_ip: self.bmc_publish,
            });
        }
        if let Some(host) = self.redfish_port {
            ports.push(PortMap {
                host,
                container: REDFISH_PORT,
                protocol: Proto::Tcp,
                host_ip: self.bmc_publish,
            });
        }
        ports
    }
}

/// A profile's `kernel` or `initrd` as a path below the web root (a leading `./` or `/`
/// dropped), or `None` for an absolute http(s) URL, which nodes fetch from elsewhere.
pub fn web_path(path: &str) -> Option<&str> {
    let lower = path.to_ascii_lowercase();
    if lower.starts_with("http://") || lower.starts_with("https://") {
        None
    } else {
        Some(path.trim_start_matches("./").trim_start_matches('/'))
    }
}

/// Port QEMU's VNC server listens on inside a node container (`-vnc :1`).
pub const VNC_PORT: u16 = 5901;
/// Port the BMC answers IPMI on at its address on the lab network.
pub const IPMI_PORT: u16 = 623;
/// Port the BMC's Redfish service (lab-bmcd) listens on inside a node container.
pub const REDFISH_PORT: u16 = crate::redfish::REDFISH_PORT;

impl Node {
    /// UDP ports the BMC listens on inside the node container: 623, and the published port.
    pub fn bmc_ports(&self) -> Vec<u16> {
        let mut ports = vec![IPMI_PORT];
        ports.extend(self.ipmi_port.filter(|p| *p != IPMI_PORT));
        ports
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Profile {
    pub name: String,
    pub kernel: Option<String>,
    pub initrd: Option<String>,
    pub cmdline: String,
    /// Cloud-config templates, relative to the web root.
    pub cloud_configs: Vec<String>,
    /// Custom iPXE template, relative to the web root.
    pub ipxe: Option<String>,
}

impl Profile {
    /// Each cloud-config template with the file it renders to: its file name without `.j2`.
    /// Validation made sure no two templates of a profile render to the same file.
    pub fn cloud_config_outputs(&self) -> Vec<(&str, String)> {
        self.cloud_configs
            .iter()
            .map(|t| (t.as_str(), cloud_config_output(t)))
            .collect()
    }
}

/// The file a cloud-config template renders to: its file name without `.j2`.
pub(crate) fn cloud_config_output(template: &str) -> String {
    let file = Path::new(template)
        .file_name()
        .map(|f| f.to_string_lossy().into_owned())
        .unwrap_or_default();
    file.strip_suffix(".j2").unwrap_or(&file).to_string()
}

/// Files downloaded from `base_url` into `dest` and verified by SHA-256 (`[assets.NAME]`).
#[derive(Debug, Clone, Serialize)]
pub struct Asset {
    pub name: String,
    /// Directory URL without a trailing `/`: a file is fetched from `base_url/<file>`.
    pub base_url: String,
    /// Plain file names (no `/`), unique within the asset.
    pub files: Vec<String>,
    /// A file under `base_url` listing SHA-256 hashes, for files without a pinned hash.
    pub checksums: Option<String>,
    /// Pinned hashes (64 lowercase hex digits) by file name; every key is one of `files`.
    pub sha256: BTreeMap<String, String>,
    /// Where the files are stored (absolute).
    pub dest: PathBuf,
}

impl Asset {
    /// Where a file of this asset is stored.
    pub fn path(&self, file: &str) -> PathBuf {
        self.dest.join(file)
    }
}

impl Lab {
    /// The lab's name: it scopes every Docker object lab makes.
    pub fn name(&self) -> &str {
        &self.name
    }
    /// The lab file, as given.
    pub fn file(&self) -> &Path {
        &self.file
    }
    /// The lab file's directory: relative paths in the file are relative to it.
    pub fn dir(&self) -> &Path {
        &self.dir
    }
    /// Host address that published ports bind to.
    pub fn publish(&self) -> IpAddr {
        self.publish
    }
    /// Image that lab's own images are built from.
    pub fn base_image(&self) -> &str {
        &self.base_image
    }
    pub fn network(&self) -> &Network {
        &self.network
    }
    pub fn vars(&self) -> &BTreeMap<String, String> {
        &self.vars
    }
    pub fn services(&self) -> &[Service] {
        &self.services
    }
    pub fn nodes(&self) -> &[Node] {
        &self.nodes
    }
    pub fn profiles(&self) -> &BTreeMap<String, Profile> {
        &self.profiles
    }
    pub fn assets(&self) -> &BTreeMap<String, Asset> {
        &self.assets
    }
    /// The profile a node boots, `None` only for a node without one: validation made sure every
    /// node's profile names a profile of the lab.
    pub fn profile_of(&self, node: &Node) -> Option<&Profile> {
        node.profile.as_ref().and_then(|p| self.profiles.get(p))
    }
    /// URL paths of a node's kernel and initrd on the web service (absolute URLs are fetched
    /// from elsewhere), to recognise their download in the web log.
    pub fn boot_files(&self, node: &Node) -> Vec<String> {
        self.profile_of(node)
            .into_iter()
            .flat_map(|p| p.kernel.iter().chain(p.initrd.iter()))
            .filter_map(|f| web_path(f))
            .map(|p| format!("/{p}"))
            .collect()
    }
    /// The names of every service, then every node.
    pub fn member_names(&self) -> Vec<&str> {
        self.services
            .iter()
            .map(|s| s.name.as_str())
            .chain(self.nodes.iter().map(|n| n.name.as_str()))
            .collect()
    }
    pub fn service(&self, name: &str) -> Option<&Service> {
        self.services.iter().find(|s| s.name == name)
    }
    pub fn node(&self, name: &str) -> Option<&Node> {
        self.nodes.iter().find(|n| n.name == name)
    }
    /// The first service of a kind (the one nodes boot from, for dnsmasq and httpd).
    pub fn first_of(&self, kind: ServiceKind) -> Option<&Service> {
        self.services.iter().find(|s| s.kind() == kind)
    }
    /// The web root of the first httpd service: where nodes' kernels, initrds and templates are.
    pub fn web_root(&self) -> Option<&Path> {
        self.services.iter().find_map(|s| match &s.config {
            ServiceConfig::Httpd { root } => Some(root.as_path()),
            _ => None,
        })
    }
    /// Where lab writes what it generates for this lab: `.lab/<name>/` beside the file.
    pub fn state_dir(&self) -> PathBuf {
        self.dir.join(".lab").join(&self.name)
    }
    /// Docker names: every object is scoped by the lab name.
    pub fn container_name(&self, name: &str) -> String {
        format!("{}-{}", self.name, name)
    }
    pub fn network_name(&self) -> String {
        format!("{}-net", self.name)
    }
}

#[cfg(test)]
mod tests {
    use super::{cloud_config_output, web_path};

    #[test]
    fn cloud_config_outputs_drop_j2_and_the_directory() {
        assert_eq!(cloud_config_output("t/a.yaml.j2"), "a.yaml");
        assert_eq!(cloud_config_output("b.yaml"), "b.yaml");
        assert_eq!(cloud_config_output("./c.j2"), "c");
    }

    #[test]
    fn web_paths_drop_leading_dot_and_slash_and_leave_urls_alone() {
        assert_eq!(web_path("os/vmlinuz"), Some("os/vmlinuz"));
        assert_eq!(web_path("/os/vmlinuz"), Some("os/vmlinuz"));
        assert_eq!(web_path("./os/initrd"), Some("os/initrd"));
        assert_eq!(web_path("http://example.org/vmlinuz"), None);
        assert_eq!(web_path("HTTPS://example.org/initrd"), None);
    }
}
