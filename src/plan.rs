//! What `lab up` should make exist, and what it must do to get there.
//!
//! [`desired`] is a pure function of a [`Lab`] and its rendered files: the network, images,
//! volumes and containers, each carrying lab's labels and a hash of everything that defines it.
//! [`diff`] compares that with what the engine reports and yields [`Action`]s. Neither touches
//! Docker, so both are unit-tested without one; `lab up --dry-run` prints them.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;

use ipnet::Ipv4Net;
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::lab::{Accel, Lab, Node, PortMap, Proto, Service, ServiceKind, VolumeMount};
use crate::render;

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

/// An image lab builds from `images/<name>/`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ImageSpec {
    /// Tag, e.g. `metal-lab/node:latest`.
    pub tag: String,
    /// Build context directory (absolute).
    pub context: PathBuf,
    /// Build argument `BASE_IMAGE`: the image the Dockerfile starts `FROM`.
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
    /// Restart unless stopped (services); nodes are not restarted behind their BMC's back.
    pub restart: bool,
    /// Run an init process as PID 1 so that a stop is immediate.
    pub init: bool,
    pub labels: BTreeMap<String, String>,
}

/// Everything `lab up` makes exist for a lab.
#[derive(Debug, Clone, Serialize)]
pub struct Desired {
    /// The lab's name: everything below carries it in [`LABEL_LAB`], except the volume shared
    /// by all labs ([`HOST_VOLUME`]).
    pub lab: String,
    pub network: NetworkSpec,
    pub images: Vec<ImageSpec>,
    pub volumes: Vec<VolumeSpec>,
    pub containers: Vec<ContainerSpec>,
}

/// Facts about the host that shape the plan.
#[derive(Debug, Clone, Copy, Default)]
pub struct Host {
    /// `/dev/kvm` exists (whether KVM really works is decided inside the node container).
    pub kvm_device: bool,
}

/// Where generated files and image contexts live, and the hash of the generated files under a
/// state-dir prefix (`dnsmasq/`, `nodes/<name>/`), so that a changed config recreates exactly the
/// containers that mount it.
pub struct Inputs<'a> {
    pub state_dir: &'a std::path::Path,
    pub files_hash: &'a dyn Fn(&str) -> String,
    pub host: Host,
}

pub fn labels(lab: &str) -> BTreeMap<String, String> {
    BTreeMap::from([(LABEL_LAB.to_string(), lab.to_string())])
}

/// The desired state of a lab. Pure: the same lab and inputs always give the same plan.
pub fn desired(lab: &Lab, inputs: &Inputs) -> Desired {
    let network = NetworkSpec {
        name: lab.network_name(),
        subnet: lab.network.subnet,
        gateway: lab.network.gateway,
        labels: labels(&lab.name),
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
    for s in &lab.services {
        let (img, img_hash) = match s.kind.built_image() {
            Some(name) => image(name),
            None => (s.image.clone().unwrap_or_default(), String::new()),
        };
        let spec = service_container(lab, s, img, inputs.state_dir, &mut volumes);
        containers.push(finish(
            lab,
            spec,
            &s.kind.to_string(),
            &img_hash,
            &service_files_hash(s.kind, inputs),
        ));
    }
    for n in &lab.nodes {
        let (img, img_hash) = image("node");
        let vol = format!("{}-{}-disk", lab.name, n.name);
        volumes.push(VolumeSpec {
            name: vol.clone(),
            labels: volume_labels(lab, &n.name),
        });
        let spec = node_container(lab, n, img, vol, inputs);
        let files = (inputs.files_hash)(&render::node_dir(&n.name).to_string_lossy());
        containers.push(finish(lab, spec, "node", &img_hash, &files));
    }
    if !lab.nodes.is_empty() {
        // Created like the lab's volumes; the engine keeps an existing one as it is.
        volumes.push(VolumeSpec {
            name: HOST_VOLUME.into(),
            labels: BTreeMap::from([(LABEL_SHARED.to_string(), "host".to_string())]),
        });
    }
    Desired {
        lab: lab.name.clone(),
        network,
        images,
        volumes,
        containers,
    }
}

/// One of lab's own images (`images/<name>/`), built from `<state dir>/images/<name>` on the
/// lab's base image and labelled with its context hash.
pub fn image_spec(lab: &Lab, name: &str, state_dir: &std::path::Path) -> ImageSpec {
    let context_hash = crate::images::context_hash(name, &lab.base_image);
    ImageSpec {
        tag: crate::images::tag(name),
        context: state_dir.join("images").join(name),
        base_image: lab.base_image.clone(),
        labels: BTreeMap::from([(LABEL_CONTEXT_HASH.to_string(), context_hash.clone())]),
        context_hash,
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
    let mut l = labels(&lab.name);
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
            host_ip: lab.publish,
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
        restart: role == Role::Service,
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
    match s.kind {
        ServiceKind::Dnsmasq => {
            c.cap_add = vec!["NET_ADMIN".into(), "NET_RAW".into()];
            c.mounts.push(bind(
                &state.join(render::DNSMASQ_CONF),
                "/etc/lab/dnsmasq.conf",
                true,
            ));
            if let Some(t) = &s.tftp_root {
                c.mounts.push(bind(t, "/srv/tftp/local", true));
            }
        }
        ServiceKind::Httpd => {
            if let Some(root) = &s.root {
                c.mounts.push(bind(root, "/srv/www", true));
            }
            c.mounts
                .push(bind(&state.join(render::WEB_DIR), "/srv/lab", true));
        }
        ServiceKind::Sshd => {
            if let Some(p) = &s.password {
                c.env.push(format!("ROOT_PASSWORD={p}"));
            }
            if let Some(k) = &s.authorized_keys {
                c.mounts.push(bind(k, "/etc/lab/authorized_keys", true));
            }
        }
        ServiceKind::Rancher | ServiceKind::Container => {}
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
                let full = format!("{}-{name}", lab.name);
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
    let role = match c.role {
        Role::Service => "service",
        Role::Node => "node",
    };
    let mut l = std::mem::take(&mut c.labels);
    l.extend(labels(&lab.name));
    l.insert(LABEL_NAME.into(), c.lab_name.clone());
    l.insert(LABEL_ROLE.into(), role.into());
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

/// A container as the engine reports it, reduced to what the diff needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Current {
    pub name: String,
    pub id: String,
    pub config_hash: Option<String>,
    pub running: bool,
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

/// Compares desired containers with the lab's current ones. With `only` (names inside the lab),
/// just those are considered and nothing else is removed.
pub fn diff(desired: &[ContainerSpec], current: &[Current], only: &[String]) -> Vec<Action> {
    let wanted = |c: &ContainerSpec| only.is_empty() || only.contains(&c.lab_name);
    let mut actions = Vec::new();
    for d in desired.iter().filter(|d| wanted(d)) {
        let hash = d.labels.get(LABEL_CONFIG_HASH);
        actions.push(match current.iter().find(|c| c.name == d.name) {
            None => Action::Create {
                name: d.name.clone(),
            },
            Some(c) if c.config_hash.as_ref() != hash => Action::Recreate {
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
        });
    }
    if only.is_empty() {
        for c in current
            .iter()
            .filter(|c| !desired.iter().any(|d| d.name == c.name))
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

    fn plan(lab: &Lab, files: &str, kvm: bool) -> Desired {
        let hash = |prefix: &str| format!("{prefix}:{files}");
        desired(
            lab,
            &Inputs {
                state_dir: Path::new("/state"),
                files_hash: &hash,
                host: Host { kvm_device: kvm },
            },
        )
    }

    fn current(d: &Desired) -> Vec<Current> {
        d.containers
            .iter()
            .map(|c| Current {
                name: c.name.clone(),
                id: format!("id-{}", c.name),
                config_hash: c.labels.get(LABEL_CONFIG_HASH).cloned(),
                running: true,
            })
            .collect()
    }

    #[test]
    fn plans_one_container_per_service_and_node_with_labels() {
        let d = plan(&lab(LAB), "a", false);
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
        assert!(!n2.restart && n2.init);
        let ports: Vec<_> = n2
            .ports
            .iter()
            .map(|p| (p.host_port, p.container_port, p.protocol))
            .collect();
        assert_eq!(ports, [(5902, 5901, Proto::Tcp), (624, 624, Proto::Udp)]);
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
        let d = plan(&lab(LAB), "a", false);
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
        assert!(plan(&services_only, "a", false)
            .volumes
            .iter()
            .all(|v| v.name != HOST_VOLUME));
    }

    #[test]
    fn kvm_device_is_passed_only_when_present_and_not_forced_to_tcg() {
        let l = lab(LAB);
        assert!(plan(&l, "a", true).containers[3]
            .devices
            .contains(&"/dev/kvm".to_string()));
        let tcg = lab(&LAB.replace("count = 2", "count = 2\naccel = \"tcg\""));
        assert!(!plan(&tcg, "a", true).containers[3]
            .devices
            .contains(&"/dev/kvm".to_string()));
    }

    #[test]
    fn unchanged_lab_keeps_everything() {
        let d = plan(&lab(LAB), "a", false);
        let actions = diff(&d.containers, &current(&d), &[]);
        assert!(
            actions.iter().all(|a| matches!(a, Action::Keep { .. })),
            "{actions:?}"
        );
        assert_eq!(actions.len(), 5);
    }

    #[test]
    fn changed_node_config_recreates_only_that_node() {
        let before = plan(&lab(LAB), "a", false);
        let after = plan(
            &lab(&LAB.replace("vnc_port = 5901", "vnc_port = 6901")),
            "a",
            false,
        );
        let actions = diff(&after.containers, &current(&before), &[]);
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
        let before = plan(&lab(LAB), "a", false);
        let after = plan(&lab(LAB), "b", false);
        let recreated: Vec<_> = diff(&after.containers, &current(&before), &[])
            .into_iter()
            .filter(|a| matches!(a, Action::Recreate { .. }))
            .map(|a| a.name().to_string())
            .collect();
        assert_eq!(recreated, ["t-dhcp", "t-n-1", "t-n-2"]);
    }

    #[test]
    fn missing_stopped_and_removed_containers() {
        let d = plan(&lab(LAB), "a", false);
        let mut cur = current(&d);
        cur.retain(|c| c.name != "t-web");
        cur[0].running = false;
        cur.push(Current {
            name: "t-old".into(),
            id: "id-old".into(),
            config_hash: None,
            running: true,
        });
        let actions = diff(&d.containers, &cur, &[]);
        assert!(actions.contains(&Action::Create {
            name: "t-web".into()
        }));
        assert!(actions.contains(&Action::Start {
            name: "t-dhcp".into(),
            id: "id-t-dhcp".into()
        }));
        assert!(actions.contains(&Action::Remove {
            name: "t-old".into(),
            id: "id-old".into()
        }));
    }

    #[test]
    fn only_named_containers_are_considered_and_nothing_is_removed() {
        let d = plan(&lab(LAB), "a", false);
        let cur = vec![Current {
            name: "t-old".into(),
            id: "x".into(),
            config_hash: None,
            running: true,
        }];
        let actions = diff(&d.containers, &cur, &["web".to_string()]);
        assert_eq!(
            actions,
            [Action::Create {
                name: "t-web".into()
            }]
        );
    }

    #[test]
    fn plan_is_deterministic() {
        let a = serde_json::to_string(&plan(&lab(LAB), "a", false)).unwrap();
        let b = serde_json::to_string(&plan(&lab(LAB), "a", false)).unwrap();
        assert_eq!(a, b);
    }
}
