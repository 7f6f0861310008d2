//! The one place that decides what `lab up` does.
//!
//! [`desired`] is a pure function of a [`Lab`] and its rendered files: the network, images,
//! volumes, containers, generated files and built assets (the smoke OS), each carrying lab's
//! labels and a hash of everything that defines it. [`plan`] compares that with a
//! [`Snapshot`] of what exists and yields a [`Plan`]: the images to build, the volumes to make,
//! the assets to export, the host ports to check and one [`Action`] per container. Neither touches
//! Docker, so both are unit-tested without one; `lab up --dry-run` prints the plan and
//! [`crate::apply`] carries it out.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};

use ipnet::Ipv4Net;
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::lab::{
    Accel, Lab, Node, PortMap, Proto, Service, ServiceConfig, ServiceKind, VolumeMount,
};
use crate::observe::Snapshot;
use crate::render::{self, RenderedFile};

/// The lab an object belongs to. Every label lab sets starts with `io.metal-lab.`, so `down` and
/// `status` find lab's objects by label alone.
pub const LABEL_LAB: &str = "io.metal-lab.lab";
/// The service or node name inside the lab.
pub const LABEL_NAME: &str = "io.metal-lab.name";
/// `service` or `node`.
pub const LABEL_ROLE: &str = "io.metal-lab.role";
/// Service kind (`dnsmasq`, ...) or `node`.
pub const LABEL_KIND: &str = "io.metal-lab.kind";
/// Hash of everything that defines a container (spec, image context, mounted config contents).
pub const LABEL_CONFIG_HASH: &str = "io.metal-lab.config-hash";
/// A node's MAC, reserved (boot) address and BMC user, so `status --name` can show them
/// without the lab file.
pub const LABEL_MAC: &str = "io.metal-lab.mac";
pub const LABEL_BOOT_IP: &str = "io.metal-lab.boot-ip";
pub const LABEL_BMC_USER: &str = "io.metal-lab.bmc-user";
/// A node with more than one NIC: every NIC's MAC and reservation, `MAC=IP` joined by spaces.
pub const LABEL_NICS: &str = "io.metal-lab.nics";
/// A node's hardware identity (vendor, model, serial number, system UUID), for `status`.
pub const LABEL_VENDOR: &str = "io.metal-lab.vendor";
pub const LABEL_MODEL: &str = "io.metal-lab.model";
pub const LABEL_SERIAL: &str = "io.metal-lab.serial";
pub const LABEL_UUID: &str = "io.metal-lab.uuid";
/// Hash of an image's build context (Dockerfile and files beside it, and the base image name).
pub const LABEL_CONTEXT_HASH: &str = "io.metal-lab.context-hash";
/// Marks an object shared by every lab on the engine (value `host`). Such an object carries no
/// [`LABEL_LAB`], so no lab's `down --volumes` removes it.
pub const LABEL_SHARED: &str = "io.metal-lab.shared";
/// The volume every node container mounts at [`HOST_STATE_DIR`]: facts about the engine's host
/// kept across labs, such as whether KVM works (probed once per host boot, see `lab-accel`).
pub const HOST_VOLUME: &str = "metal-lab-host";
pub const HOST_STATE_DIR: &str = "/var/lib/lab-host";

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NetworkSpec {
    pub name: String,
    pub subnet: Ipv4Net,
    pub gateway: Ipv4Addr,
    pub labels: BTreeMap<String, String>,
}

/// An image lab builds: one of its own from `images/<name>/`, or a `container` service's
/// `build` directory.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ImageSpec {
    /// Tag, e.g. `metal-lab/node:latest` or `metal-lab/<lab>-<service>:latest`.
    pub tag: String,
    /// Build context directory (absolute).
    pub context: PathBuf,
    /// One of lab's own images, whose context lab writes into the state directory before the
    /// build (a service's `build` directory is the user's and is sent as it is).
    pub builtin: bool,
    /// The image the Dockerfile starts `FROM` (lab's own: build argument `BASE_IMAGE`); empty
    /// when unknown (`scratch`, a variable).
    pub base_image: String,
    pub context_hash: String,
    pub labels: BTreeMap<String, String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VolumeSpec {
    pub name: String,
    pub labels: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Service,
    Node,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Service => "service",
            Role::Node => "node",
        }
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PortBinding {
    pub host_ip: IpAddr,
    pub host_port: u16,
    pub container_port: u16,
    pub protocol: Proto,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum MountKind {
    Bind,
    Volume,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Mount {
    pub kind: MountKind,
    /// Absolute host path for binds; volume name for volumes.
    pub source: String,
    pub target: String,
    pub read_only: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ContainerSpec {
    /// Docker container name: `<lab>-<name>`.
    pub name: String,
    /// Service or node name inside the lab.
    pub lab_name: String,
    pub role: Role,
    pub image: String,
    /// Also the container's hostname.
    pub hostname: String,
    pub network: String,
    pub ip: Ipv4Addr,
    pub ports: Vec<PortBinding>,
    /// Host device paths passed through at the same path (`/dev/net/tun`, `/dev/kvm`).
    pub devices: Vec<String>,
    pub cap_add: Vec<String>,
    pub mounts: Vec<Mount>,
    /// `KEY=VALUE`
    pub env: Vec<String>,
    pub command: Option<Vec<String>>,
    /// Restart unless stopped: services, and nodes too (their BMC is the always-on part of a
    /// server; the VM's power after a restart follows the node's power restore policy).
    pub restart: bool,
    /// Run an init process as PID 1 so that a stop is immediate.
    pub init: bool,
    pub labels: BTreeMap<String, String>,
}

/// Files an image makes that lab copies out of it into a directory of the host (the smoke OS's
/// kernel and initrd into the web root). A marker file in that directory names the image they
/// came from, so files from another build are replaced.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BuiltAsset {
    /// What it is, for messages: `smoke OS`.
    pub name: String,
    /// The image that makes it (one of [`Desired::images`]).
    pub image: String,
    /// The directory inside the image that holds the files.
    pub path: String,
    pub files: Vec<String>,
    /// Where they go (absolute).
    pub dest: PathBuf,
    /// The profiles that boot it, for messages.
    pub users: Vec<String>,
}

impl BuiltAsset {
    /// The file in [`Self::dest`] naming the image the files were copied from.
    pub const MARKER: &'static str = ".lab-image";

    /// The id of the image the files in `dest` were copied from, if they are all there.
    pub fn exported_from(&self) -> Option<String> {
        let marker = std::fs::read_to_string(self.dest.join(Self::MARKER)).ok()?;
        let complete = self.files.iter().all(|f| {
            self.dest
                .join(f)
                .metadata()
                .is_ok_and(|m| m.is_file() && m.len() > 0)
        });
        complete.then(|| marker.trim().to_string())
    }
}

/// Everything `lab up` makes exist for a lab.
#[derive(Debug, Clone, Serialize)]
pub struct Desired {
    /// The lab's name: everything below carries it in [`LABEL_LAB`].
    pub lab: String,
    /// Where generated files and image contexts go: `.lab/<name>/` beside the lab file.
    pub state_dir: PathBuf,
    pub network: NetworkSpec,
    pub images: Vec<ImageSpec>,
    pub volumes: Vec<VolumeSpec>,
    pub containers: Vec<ContainerSpec>,
    /// Generated files, relative to [`Self::state_dir`].
    #[serde(skip)]
    pub files: Vec<RenderedFile>,
    pub assets: Vec<BuiltAsset>,
}

/// Facts about the host that shape the plan.
#[derive(Debug, Clone, Copy, Default)]
pub struct Host {
    /// `/dev/kvm` exists (whether KVM really works is decided inside the node container).
    pub kvm_device: bool,
}

impl Host {
    /// This host, as lab runs on it.
    pub fn detect() -> Host {
        Host {
            kvm_device: Path::new("/dev/kvm").exists(),
        }
    }
}

/// Where generated files and image contexts live, and the hash of the generated files under a
/// state-dir prefix (`dnsmasq/`, `nodes/<name>/`), so that a changed config recreates exactly the
/// containers that mount it.
struct Inputs<'a> {
    state_dir: &'a std::path::Path,
    files_hash: &'a dyn Fn(&str) -> String,
    host: Host,
}

pub fn labels(lab: &str) -> BTreeMap<String, String> {
    BTreeMap::from([(LABEL_LAB.to_string(), lab.to_string())])
}

/// The desired state of a lab with its rendered `files` (none for a look that needs only names,
/// addresses and ports). Pure: the same lab, files and host always give the same result.
pub fn desired(lab: &Lab, files: Vec<RenderedFile>, host: Host) -> Desired {
    let state_dir = lab.state_dir();
    let hash = |prefix: &str| render::hash_files(&files, Path::new(prefix));
    let mut d = desired_with(
        lab,
        &Inputs {
            state_dir: &state_dir,
            files_hash: &hash,
            host,
        },
    );
    d.files = files;
    d
}

fn desired_with(lab: &Lab, inputs: &Inputs) -> Desired {
    let network = NetworkSpec {
        name: lab.network_name(),
        subnet: lab.network().subnet,
        gateway: lab.network().gateway,
        labels: labels(lab.name()),
    };
    let mut images: Vec<ImageSpec> = Vec::new();
    let mut volumes: Vec<VolumeSpec> = Vec::new();
    let mut containers = Vec::new();
    let mut image = |name: &str| -> (String, String) {
        let spec = image_spec(lab, name, inputs.state_dir);
        let found = (spec.tag.clone(), spec.context_hash.clone());
        if !images.iter().any(|i| i.tag == spec.tag) {
            images.push(spec);
        }
        found
    };
    let mut user_images = Vec::new();
    for s in lab.services() {
        let (img, img_hash) = match (s.kind().built_image(), s.image(), &s.config) {
            (Some(name), _, _) => image(name),
            (
                None,
                _,
                ServiceConfig::Container {
                    image: tag,
                    build: Some(b),
                    ..
                },
            ) => {
                // A build FROM one of lab's images (the smoke OS's, for its boot files) has
                // that image built first, and is built again when it changes.
                let base = crate::images::own_image(&b.from).map(&mut image);
                let spec = user_image_spec(lab, tag, b, base);
                let hash = spec.context_hash.clone();
                user_images.push(spec);
                (tag.clone(), hash)
            }
            (None, image, _) => (image.unwrap_or_default().to_string(), String::new()),
        };
        let spec = service_container(lab, s, img, inputs.state_dir, &mut volumes);
        containers.push(finish(
            lab,
            spec,
            &s.kind().to_string(),
            &img_hash,
            &service_files_hash(s.kind(), inputs),
        ));
    }
    for n in lab.nodes() {
        let (img, img_hash) = image("node");
        let vol = format!("{}-{}-disk", lab.name(), n.name);
        volumes.push(VolumeSpec {
            name: vol.clone(),
            labels: volume_labels(lab, &n.name),
        });
        let spec = node_container(lab, n, img, vol, inputs);
        let files = (inputs.files_hash)(&render::node_dir(&n.name).to_string_lossy());
        containers.push(finish(lab, spec, "node", &img_hash, &files));
    }
    if !lab.nodes().is_empty() {
        volumes.push(VolumeSpec {
            name: HOST_VOLUME.into(),
            labels: BTreeMap::from([(LABEL_SHARED.to_string(), "host".to_string())]),
        });
    }
    let assets: Vec<BuiltAsset> = crate::smoke::ALL
        .iter()
        .filter_map(|os| {
            let a = crate::smoke::built(lab, os)?;
            image(os.image);
            Some(a)
        })
        .collect();
    images.extend(user_images);
    Desired {
        lab: lab.name().to_string(),
        state_dir: inputs.state_dir.to_path_buf(),
        network,
        images,
        volumes,
        containers,
        files: Vec::new(),
        assets,
    }
}

/// One of lab's own images (`images/<name>/`), built from `<state dir>/images/<name>` on the
/// lab's base image and labelled with its context hash.
pub fn image_spec(lab: &Lab, name: &str, state_dir: &std::path::Path) -> ImageSpec {
    let context_hash = crate::images::context_hash(name, lab.base_image());
    ImageSpec {
        tag: crate::images::tag(name),
        context: state_dir.join("images").join(name),
        builtin: true,
        base_image: lab.base_image().to_string(),
        labels: BTreeMap::from([(LABEL_CONTEXT_HASH.to_string(), context_hash.clone())]),
        context_hash,
    }
}

/// A `container` service's `build` directory, built into its lab-scoped tag and labelled with
/// the directory's hash (and the lab, so `down --volumes` could find it).
/// `base` is lab's own image it is built from (tag, context hash), if it is.
fn user_image_spec(
    lab: &Lab,
    tag: &str,
    b: &crate::lab::Build,
    base: Option<(String, String)>,
) -> ImageSpec {
    let (base_image, context_hash) = match base {
        Some((base_tag, base_hash)) => {
            let both = Sha256::digest(format!("{}\n{base_hash}", b.hash));
            (base_tag, hex::encode(both))
        }
        None => (b.from.clone(), b.hash.clone()),
    };
    let mut labels = labels(lab.name());
    labels.insert(LABEL_CONTEXT_HASH.to_string(), context_hash.clone());
    ImageSpec {
        tag: tag.to_string(),
        context: b.dir.clone(),
        builtin: false,
        base_image,
        context_hash,
        labels,
    }
}

fn service_files_hash(kind: ServiceKind, inputs: &Inputs) -> String {
    match kind {
        // dnsmasq reads its config once at start; web files are served live and need no restart.
        ServiceKind::Dnsmasq => (inputs.files_hash)(render::DNSMASQ_DIR),
        _ => String::new(),
    }
}

fn volume_labels(lab: &Lab, owner: &str) -> BTreeMap<String, String> {
    let mut l = labels(lab.name());
    l.insert(LABEL_NAME.to_string(), owner.to_string());
    l
}

fn bind(source: &std::path::Path, target: &str, read_only: bool) -> Mount {
    Mount {
        kind: MountKind::Bind,
        source: source.to_string_lossy().into_owned(),
        target: target.into(),
        read_only,
    }
}

fn ports(lab: &Lab, ports: &[PortMap]) -> Vec<PortBinding> {
    ports
        .iter()
        .map(|p| PortBinding {
            host_ip: p.host_ip.map_or(lab.publish(), IpAddr::V4),
            host_port: p.host,
            container_port: p.container,
            protocol: p.protocol,
        })
        .collect()
}

fn base(
    lab: &Lab,
    name: &str,
    role: Role,
    image: String,
    ip: Ipv4Addr,
    published: &[PortMap],
) -> ContainerSpec {
    ContainerSpec {
        name: lab.container_name(name),
        lab_name: name.to_string(),
        role,
        image,
        hostname: name.to_string(),
        network: lab.network_name(),
        ip,
        ports: ports(lab, published),
        devices: Vec::new(),
        cap_add: Vec::new(),
        mounts: Vec::new(),
        env: Vec::new(),
        command: None,
        restart: true,
        init: true,
        labels: BTreeMap::new(),
    }
}

fn service_container(
    lab: &Lab,
    s: &Service,
    image: String,
    state: &std::path::Path,
    volumes: &mut Vec<VolumeSpec>,
) -> ContainerSpec {
    let mut c = base(lab, &s.name, Role::Service, image, s.ip, &s.ports);
    c.env = s.env.iter().map(|(k, v)| format!("{k}={v}")).collect();
    c.command = s.command.clone();
    match &s.config {
        ServiceConfig::Dnsmasq { tftp_root, .. } => {
            c.cap_add = vec!["NET_ADMIN".into(), "NET_RAW".into()];
            c.mounts.push(bind(
                &state.join(render::DNSMASQ_CONF),
                "/etc/lab/dnsmasq.conf",
                true,
            ));
            if let Some(t) = tftp_root {
                c.mounts.push(bind(t, "/srv/tftp/local", true));
            }
        }
        ServiceConfig::Httpd { root } => {
            c.mounts.push(bind(root, "/srv/www", true));
            c.mounts
                .push(bind(&state.join(render::WEB_DIR), "/srv/lab", true));
        }
        ServiceConfig::Sshd {
            password,
            authorized_keys,
        } => {
            c.env.push(format!("ROOT_PASSWORD={password}"));
            if let Some(k) = authorized_keys {
                c.mounts.push(bind(k, "/etc/lab/authorized_keys", true));
            }
        }
        ServiceConfig::Container { cap_add, .. } => c.cap_add.clone_from(cap_add),
        ServiceConfig::Rancher { .. } => {}
    }
    for v in &s.volumes {
        c.mounts.push(match v {
            VolumeMount::Bind {
                source,
                target,
                read_only,
            } => bind(source, target, *read_only),
            VolumeMount::Volume {
                name,
                target,
                read_only,
            } => {
                let full = format!("{}-{name}", lab.name());
                if !volumes.iter().any(|x| x.name == full) {
                    volumes.push(VolumeSpec {
                        name: full.clone(),
                        labels: volume_labels(lab, &s.name),
                    });
                }
                Mount {
                    kind: MountKind::Volume,
                    source: full,
                    target: target.clone(),
                    read_only: *read_only,
                }
            }
        });
    }
    c
}

fn node_container(
    lab: &Lab,
    n: &Node,
    image: String,
    disk_volume: String,
    inputs: &Inputs,
) -> ContainerSpec {
    let mut c = base(lab, &n.name, Role::Node, image, n.bmc_ip, &n.ports());
    c.cap_add = vec!["NET_ADMIN".into()];
    c.devices.push("/dev/net/tun".into());
    if n.accel != Accel::Tcg && inputs.host.kvm_device {
        c.devices.push("/dev/kvm".into());
    }
    c.mounts.push(bind(
        &inputs.state_dir.join(render::node_dir(&n.name)),
        "/etc/lab/node",
        true,
    ));
    c.mounts.push(Mount {
        kind: MountKind::Volume,
        source: disk_volume,
        target: "/var/lib/lab".into(),
        read_only: false,
    });
    c.mounts.push(Mount {
        kind: MountKind::Volume,
        source: HOST_VOLUME.into(),
        target: HOST_STATE_DIR.into(),
        read_only: false,
    });
    c.labels.insert(LABEL_MAC.into(), n.mac.to_string());
    c.labels.insert(LABEL_BOOT_IP.into(), n.ip.to_string());
    c.labels.insert(LABEL_BMC_USER.into(), n.bmc_user.clone());
    if n.nic_macs.len() > 1 {
        let nics: Vec<String> = n
            .nic_macs
            .iter()
            .zip(&n.nic_ips)
            .map(|(m, ip)| format!("{m}={ip}"))
            .collect();
        c.labels.insert(LABEL_NICS.into(), nics.join(" "));
    }
    for (label, value) in [
        (LABEL_VENDOR, &n.vendor),
        (LABEL_MODEL, &n.model),
        (LABEL_SERIAL, &n.serial),
        (LABEL_UUID, &n.uuid),
    ] {
        c.labels.insert(label.into(), value.clone());
    }
    c
}

/// Adds the labels, including the hash of the spec itself, its image and its mounted configs:
/// any change to one of them makes the container differ from the one running.
fn finish(
    lab: &Lab,
    mut c: ContainerSpec,
    kind: &str,
    image_hash: &str,
    files_hash: &str,
) -> ContainerSpec {
    let mut l = std::mem::take(&mut c.labels);
    l.extend(labels(lab.name()));
    l.insert(LABEL_NAME.into(), c.lab_name.clone());
    l.insert(LABEL_ROLE.into(), c.role.as_str().into());
    l.insert(LABEL_KIND.into(), kind.into());
    c.labels = l;
    let mut h = Sha256::new();
    h.update(serde_json::to_vec(&c).unwrap_or_default());
    h.update(image_hash.as_bytes());
    h.update(files_hash.as_bytes());
    c.labels.insert(
        LABEL_CONFIG_HASH.into(),
        hex::encode(h.finalize())[..16].to_string(),
    );
    c
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "action", rename_all = "lowercase")]
pub enum Action {
    /// Make it: it does not exist.
    Create { name: String },
    /// Remove and make again: what defines it changed.
    Recreate { name: String, id: String },
    /// Start it again: it exists as planned but is not running (died, or stopped by hand).
    Start { name: String, id: String },
    /// Nothing to do.
    Keep { name: String, id: String },
    /// Remove it: the lab file no longer has it.
    Remove { name: String, id: String },
}

impl Action {
    pub fn name(&self) -> &str {
        match self {
            Action::Create { name }
            | Action::Recreate { name, .. }
            | Action::Start { name, .. }
            | Action::Keep { name, .. }
            | Action::Remove { name, .. } => name,
        }
    }
}

impl Action {
    /// What `lab up` prints for it.
    pub fn verb(&self) -> &'static str {
        match self {
            Action::Create { .. } => "create",
            Action::Recreate { .. } => "recreate",
            Action::Start { .. } => "start",
            Action::Keep { .. } => "keep",
            Action::Remove { .. } => "remove",
        }
    }

    /// Whether the container is (re)made or started: it then needs its image and host ports,
    /// and must come up as the file says (a node powers on if `power = "on"`).
    pub fn starts(&self) -> bool {
        matches!(
            self,
            Action::Create { .. } | Action::Recreate { .. } | Action::Start { .. }
        )
    }
}

/// A host port a container will publish: checked free before anything is made.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PortCheck {
    pub binding: PortBinding,
    /// The container's service or node name and role, for the message.
    pub owner: String,
    pub role: Role,
}

/// An image lab pulls because it is missing locally: a service's `image`, or the base image of
/// a build.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ImagePull {
    pub image: String,
    /// For messages: `by service registry`, `as the base of metal-lab/node:latest`.
    pub needed_by: String,
    /// The base of a build (offline, `.ci/make-base-image` makes lab's).
    pub base: bool,
}

impl Desired {
    /// Images the lab runs or builds from but does not build itself: what may need a pull.
    pub fn pull_candidates(&self) -> Vec<String> {
        let built = |tag: &str| self.images.iter().any(|i| i.tag == tag);
        let mut out: Vec<String> = Vec::new();
        let services = self.containers.iter().map(|c| c.image.as_str());
        let bases = self.images.iter().map(|i| i.base_image.as_str());
        for image in services.chain(bases) {
            if !image.is_empty() && !built(image) && !out.iter().any(|o| o == image) {
                out.push(image.to_string());
            }
        }
        out
    }
}

/// What `lab up` does, in the order [`crate::apply`] does it.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Plan {
    /// Images missing locally that a container being made runs or an image being built starts
    /// `FROM`: pulled before anything is built.
    pub images_to_pull: Vec<ImagePull>,
    /// Lab's own images that are missing or whose build context changed, and that a container
    /// being made or an asset being exported needs.
    pub images_to_build: Vec<ImageSpec>,
    pub volumes_to_create: Vec<VolumeSpec>,
    /// Built assets whose files are missing or come from another image.
    pub exports: Vec<BuiltAsset>,
    /// Host ports that containers being made publish and no container of the lab holds or
    /// exists to hold (see [`plan`]).
    pub ports_to_check: Vec<PortCheck>,
    /// One per container in scope, and one removal per container the file no longer has.
    pub actions: Vec<Action>,
}

impl Plan {
    /// Names of the containers this plan (re)makes or starts.
    pub fn started(&self) -> Vec<&str> {
        self.actions
            .iter()
            .filter(|a| a.starts())
            .map(Action::name)
            .collect()
    }
}

/// Compares the desired state with what exists. With `only` (names inside the lab), just those
/// containers are considered and nothing else is removed.
pub fn plan(desired: &Desired, observed: &Snapshot, only: &[String]) -> Plan {
    let actions = diff(desired, observed, only);
    let starting = |c: &ContainerSpec| actions.iter().any(|a| a.starts() && a.name() == c.name);
    let image_current = |tag: &str, hash: &str| {
        observed
            .images
            .get(tag)
            .is_some_and(|i| i.labels.get(LABEL_CONTEXT_HASH).map(String::as_str) == Some(hash))
    };
    let exports: Vec<BuiltAsset> = desired
        .assets
        .iter()
        .filter(|a| {
            let spec = desired.images.iter().find(|i| i.tag == a.image);
            let rebuilt = spec.is_some_and(|i| !image_current(&i.tag, &i.context_hash));
            let from = observed.images.get(&a.image).map(|i| i.id.as_str());
            rebuilt || from.is_none() || observed.exported.get(&a.dest).map(String::as_str) != from
        })
        .cloned()
        .collect();
    let images_to_build: Vec<ImageSpec> = desired
        .images
        .iter()
        .filter(|i| {
            let used = desired
                .containers
                .iter()
                .any(|c| c.image == i.tag && starting(c))
                || exports.iter().any(|a| a.image == i.tag);
            used && !image_current(&i.tag, &i.context_hash)
        })
        .cloned()
        .collect();
    // Lab's images that an image being built starts FROM, when they are missing or changed.
    let bases: Vec<ImageSpec> = desired
        .images
        .iter()
        .filter(|i| {
            images_to_build.iter().any(|b| b.base_image == i.tag)
                && !images_to_build.iter().any(|b| b.tag == i.tag)
                && !image_current(&i.tag, &i.context_hash)
        })
        .cloned()
        .collect();
    let images_to_build: Vec<ImageSpec> = bases.into_iter().chain(images_to_build).collect();
    let candidates = desired.pull_candidates();
    let mut images_to_pull: Vec<ImagePull> = Vec::new();
    let mut pull = |image: &str, needed_by: String, base: bool| {
        let wanted = candidates.iter().any(|c| c == image)
            && !observed.images.contains_key(image)
            && !images_to_pull.iter().any(|p| p.image == image);
        if wanted {
            images_to_pull.push(ImagePull {
                image: image.to_string(),
                needed_by,
                base,
            });
        }
    };
    for c in desired.containers.iter().filter(|c| starting(c)) {
        pull(
            &c.image,
            format!("by {} {}", c.role.as_str(), c.lab_name),
            false,
        );
    }
    for i in &images_to_build {
        pull(&i.base_image, format!("as the base of {}", i.tag), true);
    }
    let volumes_to_create = desired
        .volumes
        .iter()
        .filter(|v| !observed.volumes.contains(&v.name))
        .cloned()
        .collect();
    let held = |p: &PortBinding| {
        observed.containers.iter().any(|c| {
            c.ports.iter().any(|o| {
                o.host_port == p.host_port
                    && o.protocol == p.protocol
                    && (o.host_ip == p.host_ip || o.host_ip.is_unspecified())
            })
        })
    };
    // A lab container that exists in any state (created, restarting, exited: e.g. left by a
    // killed `lab up` while the engine was still starting it) holds or is about to hold its own
    // ports, which the engine reports only once it runs. The plan starts or recreates that very
    // container, so its ports are the lab's, not someone else's. (A recreate whose file changed
    // a port to one another program holds then fails at start, naming the port, instead of
    // before anything is made: the price of converging after a crash in one run.)
    let exists = |name: &str| observed.containers.iter().any(|o| o.name == name);
    let ports_to_check = desired
        .containers
        .iter()
        .filter(|c| starting(c) && !exists(&c.name))
        .flat_map(|c| {
            c.ports.iter().filter(|p| !held(p)).map(|p| PortCheck {
                binding: p.clone(),
                owner: c.lab_name.clone(),
                role: c.role,
            })
        })
        .collect();
    Plan {
        images_to_pull,
        images_to_build,
        volumes_to_create,
        exports,
        ports_to_check,
        actions,
    }
}

fn diff(desired: &Desired, observed: &Snapshot, only: &[String]) -> Vec<Action> {
    let wanted = |c: &ContainerSpec| only.is_empty() || only.contains(&c.lab_name);
    let mut actions = Vec::new();
    for d in desired.containers.iter().filter(|d| wanted(d)) {
        let hash = d.labels.get(LABEL_CONFIG_HASH);
        actions.push(
            match observed.containers.iter().find(|c| c.name == d.name) {
                None => Action::Create {
                    name: d.name.clone(),
                },
                Some(c) if c.labels.get(LABEL_CONFIG_HASH) != hash => Action::Recreate {
                    name: d.name.clone(),
                    id: c.id.clone(),
                },
                Some(c) if !c.running => Action::Start {
                    name: d.name.clone(),
                    id: c.id.clone(),
                },
                Some(c) => Action::Keep {
                    name: d.name.clone(),
                    id: c.id.clone(),
                },
            },
        );
    }
    if only.is_empty() {
        for c in observed
            .containers
            .iter()
            .filter(|c| !desired.containers.iter().any(|d| d.name == c.name))
        {
            actions.push(Action::Remove {
                name: c.name.clone(),
                id: c.id.clone(),
            });
        }
    }
    actions
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::engine::{ContainerState, ImageInfo, ObservedContainer};

    const LAB: &str = r#"
[lab]
name = "t"
[network]
subnet = "10.1.2.0/24"
[services.dhcp]
kind = "dnsmasq"
dhcp_range = ["10.1.2.100", "10.1.2.150"]
[services.web]
kind = "httpd"
root = "."
[services.ssh]
kind = "sshd"
ports = ["2222:22"]
[nodes.n]
count = 2
mac = "02:00:00:00:00:01"
vnc_port = 5901
ipmi_port = 623
"#;

    fn lab(text: &str) -> Lab {
        let dir = std::env::temp_dir();
        crate::lab::from_str(&dir.join("plan-test.toml"), text, &|_| None).expect("valid lab")
    }

    fn desire(lab: &Lab, files: &str, kvm: bool) -> Desired {
        let hash = |prefix: &str| format!("{prefix}:{files}");
        desired_with(
            lab,
            &Inputs {
                state_dir: Path::new("/state"),
                files_hash: &hash,
                host: Host { kvm_device: kvm },
            },
        )
    }

    fn observed(name: &str, config_hash: Option<&str>, running: bool) -> ObservedContainer {
        let mut labels = crate::engine::Labels::new();
        if let Some(h) = config_hash {
            labels.insert(LABEL_CONFIG_HASH.into(), h.into());
        }
        ObservedContainer {
            id: format!("id-{name}"),
            name: name.into(),
            image: String::new(),
            labels,
            state: if running {
                ContainerState::Running
            } else {
                ContainerState::Exited
            },
            running,
            network: None,
            ip: None,
            ports: Vec::new(),
        }
    }

    /// What exists once `d` was applied: its containers running, its images built, its
    /// volumes made.
    fn current(d: &Desired) -> Snapshot {
        Snapshot {
            containers: d
                .containers
                .iter()
                .map(|c| {
                    let mut o = observed(
                        &c.name,
                        c.labels.get(LABEL_CONFIG_HASH).map(String::as_str),
                        true,
                    );
                    o.ports = c.ports.clone();
                    o
                })
                .collect(),
            images: d
                .images
                .iter()
                .map(|i| {
                    let info = ImageInfo {
                        id: format!("img-{}", i.tag),
                        labels: i.labels.clone(),
                    };
                    (i.tag.clone(), info)
                })
                .collect(),
            volumes: d.volumes.iter().map(|v| v.name.clone()).collect(),
            exported: d
                .assets
                .iter()
                .map(|a| (a.dest.clone(), format!("img-{}", a.image)))
                .collect(),
        }
    }

    #[test]
    fn plans_one_container_per_service_and_node_with_labels() {
        let d = desire(&lab(LAB), "a", false);
        let names: Vec<_> = d.containers.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names, ["t-dhcp", "t-web", "t-ssh", "t-n-1", "t-n-2"]);
        assert_eq!(d.network.name, "t-net");
        assert_eq!(
            d.images.iter().map(|i| i.tag.as_str()).collect::<Vec<_>>(),
            [
                "metal-lab/dnsmasq:latest",
                "metal-lab/httpd:latest",
                "metal-lab/sshd:latest",
                "metal-lab/node:latest"
            ]
        );
        assert_eq!(
            d.volumes
                .iter()
                .map(|v| v.name.as_str())
                .collect::<Vec<_>>(),
            ["t-n-1-disk", "t-n-2-disk", "metal-lab-host"]
        );
        let n2 = &d.containers[4];
        assert_eq!(n2.labels[LABEL_LAB], "t");
        assert_eq!(n2.labels[LABEL_NAME], "n-2");
        assert_eq!(n2.labels[LABEL_ROLE], "node");
        // services take .2-.4; then each node its BMC address and its reservation in turn
        assert_eq!(n2.ip, "10.1.2.7".parse::<Ipv4Addr>().unwrap());
        assert_eq!(n2.cap_add, ["NET_ADMIN"]);
        assert_eq!(n2.devices, ["/dev/net/tun"]);
        assert!(
            n2.restart && n2.init,
            "nodes come back with the engine like services"
        );
        let ports: Vec<_> = n2
            .ports
            .iter()
            .map(|p| (p.host_port, p.container_port, p.protocol))
            .collect();
        // Redfish takes the IPMI port's number over TCP (redfish_port is left out).
        assert_eq!(
            ports,
            [
                (5902, 5901, Proto::Tcp),
                (624, 624, Proto::Udp),
                (624, 443, Proto::Tcp)
            ]
        );
        assert!(n2
            .mounts
            .iter()
            .any(|m| m.source == "/state/nodes/n-2" && m.target == "/etc/lab/node" && m.read_only));
        assert!(n2
            .mounts
            .iter()
            .any(|m| m.kind == MountKind::Volume && m.source == "t-n-2-disk"));
        let dhcp = &d.containers[0];
        assert!(dhcp.restart && dhcp.cap_add.contains(&"NET_ADMIN".to_string()));
        assert!(dhcp
            .mounts
            .iter()
            .any(|m| m.source == "/state/dnsmasq/dnsmasq.conf" && m.read_only));
        assert_eq!(d.containers[2].env, ["ROOT_PASSWORD=labpassword"]);
    }

    #[test]
    fn nodes_mount_the_host_volume_shared_by_all_labs() {
        let d = desire(&lab(LAB), "a", false);
        for n in d.containers.iter().filter(|c| c.role == Role::Node) {
            assert!(
                n.mounts.contains(&Mount {
                    kind: MountKind::Volume,
                    source: HOST_VOLUME.into(),
                    target: HOST_STATE_DIR.into(),
                    read_only: false,
                }),
                "{:?}",
                n.mounts
            );
        }
        let shared: Vec<_> = d.volumes.iter().filter(|v| v.name == HOST_VOLUME).collect();
        assert_eq!(shared.len(), 1);
        // Not the lab's: `down --volumes` of one lab leaves it to the others.
        assert_eq!(
            shared[0].labels,
            BTreeMap::from([(LABEL_SHARED.to_string(), "host".to_string())])
        );
        // A lab without nodes has no use for it.
        let services_only = lab(&LAB[..LAB.find("[nodes.n]").unwrap()]);
        assert!(desire(&services_only, "a", false)
            .volumes
            .iter()
            .all(|v| v.name != HOST_VOLUME));
    }

    #[test]
    fn kvm_device_is_passed_only_when_present_and_not_forced_to_tcg() {
        let l = lab(LAB);
        assert!(desire(&l, "a", true).containers[3]
            .devices
            .contains(&"/dev/kvm".to_string()));
        let tcg = lab(&LAB.replace("count = 2", "count = 2\naccel = \"tcg\""));
        assert!(!desire(&tcg, "a", true).containers[3]
            .devices
            .contains(&"/dev/kvm".to_string()));
    }

    #[test]
    fn unchanged_lab_keeps_everything() {
        let d = desire(&lab(LAB), "a", false);
        let actions = plan(&d, &current(&d), &[]).actions;
        assert!(
            actions.iter().all(|a| matches!(a, Action::Keep { .. })),
            "{actions:?}"
        );
        assert_eq!(actions.len(), 5);
    }

    #[test]
    fn changed_node_config_recreates_only_that_node() {
        let before = desire(&lab(LAB), "a", false);
        let after = desire(
            &lab(&LAB.replace("vnc_port = 5901", "vnc_port = 6901")),
            "a",
            false,
        );
        let actions = plan(&after, &current(&before), &[]).actions;
        let changed: Vec<_> = actions
            .iter()
            .filter(|a| !matches!(a, Action::Keep { .. }))
            .collect();
        assert_eq!(
            changed,
            [
                &Action::Recreate {
                    name: "t-n-1".into(),
                    id: "id-t-n-1".into()
                },
                &Action::Recreate {
                    name: "t-n-2".into(),
                    id: "id-t-n-2".into()
                }
            ]
        );
    }

    #[test]
    fn changed_generated_files_recreate_the_containers_that_mount_them() {
        let before = desire(&lab(LAB), "a", false);
        let after = desire(&lab(LAB), "b", false);
        let recreated: Vec<_> = plan(&after, &current(&before), &[])
            .actions
            .into_iter()
            .filter(|a| matches!(a, Action::Recreate { .. }))
            .map(|a| a.name().to_string())
            .collect();
        assert_eq!(recreated, ["t-dhcp", "t-n-1", "t-n-2"]);
    }

    #[test]
    fn missing_stopped_and_removed_containers() {
        let d = desire(&lab(LAB), "a", false);
        let mut cur = current(&d);
        cur.containers.retain(|c| c.name != "t-web");
        cur.containers[0].running = false;
        cur.containers.push(observed("t-old", None, true));
        let p = plan(&d, &cur, &[]);
        assert!(p.actions.contains(&Action::Create {
            name: "t-web".into()
        }));
        assert!(p.actions.contains(&Action::Start {
            name: "t-dhcp".into(),
            id: "id-t-dhcp".into()
        }));
        assert!(p.actions.contains(&Action::Remove {
            name: "t-old".into(),
            id: "id-t-old".into()
        }));
        assert_eq!(p.started(), ["t-dhcp", "t-web"]);
        // Nothing to build: every image is current.
        assert!(p.images_to_build.is_empty(), "{:?}", p.images_to_build);
    }

    #[test]
    fn only_named_containers_are_considered_and_nothing_is_removed() {
        let d = desire(&lab(LAB), "a", false);
        let cur = Snapshot {
            containers: vec![observed("t-old", None, true)],
            ..Snapshot::default()
        };
        let p = plan(&d, &cur, &["web".to_string()]);
        assert_eq!(
            p.actions,
            [Action::Create {
                name: "t-web".into()
            }]
        );
        // Only the image the web service needs is built.
        let tags: Vec<_> = p.images_to_build.iter().map(|i| i.tag.as_str()).collect();
        assert_eq!(tags, ["metal-lab/httpd:latest"]);
    }

    /// LAB with a `container` service built from `dir` (a Dockerfile context) with a capability.
    fn built_lab(dir: &Path) -> Lab {
        let text = format!(
            "{LAB}[services.app]\nkind = \"container\"\nbuild = \"{}\"\ncap_add = [\"NET_ADMIN\"]\n",
            dir.display()
        );
        lab(&text)
    }

    #[test]
    fn a_build_from_a_lab_image_builds_that_image_first_and_follows_its_changes() {
        let dir = tempfile::tempdir().unwrap();
        let dockerfile = "FROM metal-lab/smoke:latest AS smoke\nFROM debian:bookworm-slim\nCOPY --from=smoke /out/vmlinuz /srv/\n";
        std::fs::write(dir.path().join("Dockerfile"), dockerfile).unwrap();
        let d = desire(&built_lab(dir.path()), "a", false);
        let app = d
            .images
            .iter()
            .find(|i| i.tag == "metal-lab/t-app:latest")
            .unwrap();
        let smoke = d
            .images
            .iter()
            .find(|i| i.tag == "metal-lab/smoke:latest")
            .unwrap();
        assert_eq!(app.base_image, smoke.tag);
        let dir_hash = crate::images::dir_hash(dir.path()).unwrap();
        assert_ne!(app.context_hash, dir_hash, "the base's hash is part of it");
        let p = plan(&d, &Snapshot::default(), &[]);
        let tags: Vec<_> = p.images_to_build.iter().map(|i| i.tag.as_str()).collect();
        assert!(
            tags.contains(&"metal-lab/smoke:latest") && tags.contains(&"metal-lab/t-app:latest"),
            "{tags:?}"
        );
        assert!(
            p.images_to_pull.iter().all(|i| i.image != smoke.tag),
            "built, not pulled"
        );
        // Both current: nothing to build.
        let mut cur = current(&d);
        assert!(plan(&d, &cur, &[]).images_to_build.is_empty());
        let stale = |cur: &mut Snapshot, tag: &str| {
            let labels = &mut cur.images.get_mut(tag).unwrap().labels;
            labels.insert(LABEL_CONTEXT_HASH.into(), "old".into());
        };
        let tags = |cur: &Snapshot| -> Vec<String> {
            let p = plan(&d, cur, &[]);
            p.images_to_build.iter().map(|i| i.tag.clone()).collect()
        };
        // (no containers yet: every one is created, so every image it runs must be current)
        cur.containers.clear();
        stale(&mut cur, &smoke.tag);
        assert!(
            tags(&cur).is_empty(),
            "a built app does not need its base again"
        );
        stale(&mut cur, &app.tag);
        assert_eq!(
            tags(&cur),
            ["metal-lab/smoke:latest", "metal-lab/t-app:latest"]
        );
    }

    #[test]
    fn a_service_build_dir_is_built_to_a_lab_scoped_tag_and_rebuilt_when_it_changes() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("Dockerfile"), "FROM debian:bookworm-slim\n").unwrap();
        let d = desire(&built_lab(dir.path()), "a", false);
        let spec = d
            .images
            .iter()
            .find(|i| i.tag == "metal-lab/t-app:latest")
            .expect("the service's image");
        assert!(!spec.builtin);
        assert_eq!(spec.context, dir.path().canonicalize().unwrap());
        assert_eq!(spec.base_image, "debian:bookworm-slim");
        assert_eq!(spec.labels[LABEL_LAB], "t");
        assert_eq!(spec.labels[LABEL_CONTEXT_HASH], spec.context_hash);
        let app = d.containers.iter().find(|c| c.name == "t-app").unwrap();
        assert_eq!(app.image, "metal-lab/t-app:latest");
        assert_eq!(app.cap_add, ["NET_ADMIN"]);
        let first = plan(&d, &Snapshot::default(), &[]);
        assert!(first.images_to_build.iter().any(|i| i.tag == spec.tag));

        // Built and running: kept.
        let cur = current(&d);
        let same = plan(&d, &cur, &[]);
        assert!(same.images_to_build.is_empty());
        assert!(same
            .actions
            .iter()
            .all(|a| matches!(a, Action::Keep { .. })));

        // A changed file (or mode) rebuilds the image and recreates the container, only that one.
        std::fs::write(dir.path().join("hello.txt"), "hi\n").unwrap();
        let d2 = desire(&built_lab(dir.path()), "a", false);
        let changed = plan(&d2, &cur, &[]);
        let tags: Vec<_> = changed
            .images_to_build
            .iter()
            .map(|i| i.tag.as_str())
            .collect();
        assert_eq!(tags, ["metal-lab/t-app:latest"]);
        let remade: Vec<_> = changed
            .actions
            .iter()
            .filter(|a| !matches!(a, Action::Keep { .. }))
            .collect();
        assert!(
            matches!(remade[..], [Action::Recreate { ref name, .. }] if name == "t-app"),
            "{remade:?}"
        );
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let hello = dir.path().join("hello.txt");
            std::fs::set_permissions(&hello, std::fs::Permissions::from_mode(0o755)).unwrap();
            let d3 = desire(&built_lab(dir.path()), "a", false);
            assert_ne!(d3.images, d2.images, "a mode change is a change");
        }
    }

    #[test]
    fn images_are_built_when_missing_or_changed_and_needed() {
        let d = desire(&lab(LAB), "a", false);
        let empty = plan(&d, &Snapshot::default(), &[]);
        assert_eq!(empty.images_to_build.len(), 4);
        assert_eq!(empty.volumes_to_create.len(), 3);
        let mut cur = current(&d);
        // The node image was built from another context: running nodes keep it.
        let node_image = cur.images.get_mut("metal-lab/node:latest").unwrap();
        node_image
            .labels
            .insert(LABEL_CONTEXT_HASH.into(), "old".into());
        assert!(plan(&d, &cur, &[]).images_to_build.is_empty());
        // A node to be made needs it rebuilt; `up web` does not.
        cur.containers.retain(|c| c.name != "t-n-2");
        let tags =
            |p: Plan| -> Vec<String> { p.images_to_build.into_iter().map(|i| i.tag).collect() };
        assert_eq!(tags(plan(&d, &cur, &[])), ["metal-lab/node:latest"]);
        assert!(tags(plan(&d, &cur, &["web".to_string()])).is_empty());
    }

    #[test]
    fn host_ports_are_checked_only_for_containers_started_and_not_held_by_the_lab() {
        let d = desire(&lab(LAB), "a", false);
        let p = plan(&d, &Snapshot::default(), &[]);
        let ports: Vec<_> = p
            .ports_to_check
            .iter()
            .map(|c| (c.owner.as_str(), c.binding.host_port))
            .collect();
        assert_eq!(
            ports,
            [
                ("ssh", 2222),
                ("n-1", 5901),
                ("n-1", 623),
                ("n-1", 623),
                ("n-2", 5902),
                ("n-2", 624),
                ("n-2", 624)
            ]
        );
        // The running lab holds them itself: a recreate of its ssh needs no check of 2222.
        let mut cur = current(&d);
        cur.containers[2]
            .labels
            .insert(LABEL_CONFIG_HASH.into(), "old".into());
        let p = plan(&d, &cur, &[]);
        assert_eq!(p.started(), ["t-ssh"]);
        assert!(p.ports_to_check.is_empty(), "{:?}", p.ports_to_check);
    }

    /// A killed `lab up` leaves containers the engine is still starting: created (no published
    /// ports reported yet) or exited. Their ports are the lab's own; only a container that does
    /// not exist at all needs its ports checked.
    #[test]
    fn ports_of_lab_containers_in_any_state_are_not_checked() {
        let d = desire(&lab(LAB), "a", false);
        let mut cur = current(&d);
        for c in &mut cur.containers {
            c.ports.clear();
        }
        cur.containers[2].state = ContainerState::Created;
        cur.containers[2].running = false;
        cur.containers[3].state = ContainerState::Restarting;
        cur.containers[3].running = false;
        cur.containers[4]
            .labels
            .insert(LABEL_CONFIG_HASH.into(), "old".into());
        cur.containers[4].running = false;
        let p = plan(&d, &cur, &[]);
        assert_eq!(p.started(), ["t-ssh", "t-n-1", "t-n-2"]);
        assert!(p.ports_to_check.is_empty(), "{:?}", p.ports_to_check);
        // n-2 does not exist: its ports are checked, the others' still not.
        cur.containers.truncate(4);
        let p = plan(&d, &cur, &[]);
        let ports: Vec<_> = p
            .ports_to_check
            .iter()
            .map(|c| (c.owner.as_str(), c.binding.host_port))
            .collect();
        assert_eq!(ports, [("n-2", 5902), ("n-2", 624), ("n-2", 624)]);
    }

    #[test]
    fn the_smoke_os_is_planned_built_and_exported_like_any_other_step() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("webroot")).unwrap();
        let text = LAB.replace("root = \".\"", "root = \"webroot\"")
            + "profile = \"smoke\"\n[profiles.smoke]\nkernel = \"smoke/vmlinuz\"\ninitrd = \"smoke/initrd\"\n";
        let l = crate::lab::from_str(&dir.path().join("lab.toml"), &text, &|_| None)
            .expect("valid lab");
        let d = desire(&l, "a", false);
        assert_eq!(d.assets.len(), 1);
        let smoke = &d.assets[0];
        assert_eq!(smoke.image, "metal-lab/smoke:latest");
        assert_eq!(smoke.dest, dir.path().join("webroot/smoke"));
        assert!(d.images.iter().any(|i| i.tag == smoke.image));
        // Nothing there yet: build the image and export the files.
        let p = plan(&d, &Snapshot::default(), &[]);
        assert!(p.images_to_build.iter().any(|i| i.tag == smoke.image));
        assert_eq!(p.exports, std::slice::from_ref(smoke));
        // Exported from the current image: nothing to do.
        let cur = current(&d);
        let p = plan(&d, &cur, &[]);
        assert!(p.exports.is_empty() && p.images_to_build.is_empty());
        // Files from another build of the image are replaced, without a build.
        let mut other = cur.clone();
        other
            .exported
            .insert(smoke.dest.clone(), "img-older".into());
        let p = plan(&d, &other, &[]);
        assert_eq!(p.exports.len(), 1);
        assert!(p.images_to_build.is_empty());
    }

    #[test]
    fn plan_is_deterministic() {
        let a = serde_json::to_string(&desire(&lab(LAB), "a", false)).unwrap();
        let b = serde_json::to_string(&desire(&lab(LAB), "a", false)).unwrap();
        assert_eq!(a, b);
    }
}
