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

use crate::lab::Proto;

/// Every label lab sets starts with this, so `down` and `status` find lab's objects by label alone.
pub const LABEL_PREFIX: &str = "io.metal-lab.";
/// The lab an object belongs to.
pub const LABEL_LAB: &str = "io.metal-lab.lab";
/// The service or node name inside the lab.
pub const LABEL_NAME: &str = "io.metal-lab.name";
/// `service` or `node`.
pub const LABEL_ROLE: &str = "io.metal-lab.role";
/// Service kind (`dnsmasq`, ...) or `node`.
pub const LABEL_KIND: &str = "io.metal-lab.kind";
/// Hash of everything that defines a container (spec, image context, mounted config contents).
pub const LABEL_CONFIG_HASH: &str = "io.metal-lab.config-hash";
/// Hash of an image's build context (Dockerfile and files beside it, and the base image name).
pub const LABEL_CONTEXT_HASH: &str = "io.metal-lab.context-hash";

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
