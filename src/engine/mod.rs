//! The only module that speaks to Docker.
//!
//! It owns three things:
//! - the [`Engine`] trait: the handful of engine operations `lab` needs, phrased in the plan's
//!   terms ([`ContainerSpec`], [`NetworkSpec`], ...), so planning and apply logic can run against
//!   [`fake::FakeEngine`] in unit tests and against [`docker::DockerEngine`] for real;
//! - the observed-state types the engine reports back ([`ObservedContainer`], ...), which the plan
//!   diffs against its desired state;
//! - [`EngineError`], whose cases are the failures a caller must tell apart and explain to the
//!   user (no engine, missing base image, subnet overlap, busy host port, failed build, ...).
//!
//! Engine quirks are absorbed here rather than in callers: networks are looked up before they are
//! created (the engine allows duplicate names and does not say which network a subnet overlaps),
//! a base image is checked before a build (the engine would try a registry), a container that
//! cannot start is removed (the engine leaves it half-made in `Created`), and removal kills
//! rather than waiting out a stop grace period.

pub mod docker;
pub mod export;
#[cfg(test)]
pub mod fake;

use std::collections::BTreeMap;
use std::future::Future;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

use ipnet::Ipv4Net;
use serde::Serialize;

use crate::plan::{ContainerSpec, ImageSpec, NetworkSpec, PortBinding, VolumeSpec};

pub use docker::DockerEngine;
#[cfg(test)]
pub use fake::FakeEngine;

/// Labels as the engine stores them; sorted so that output and snapshots are stable.
pub type Labels = BTreeMap<String, String>;

/// A container's lifecycle state as the engine reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ContainerState {
    Created,
    Running,
    Paused,
    Restarting,
    Removing,
    Exited,
    Dead,
    /// A state this version of lab does not know (newer engines add some).
    Unknown,
}

impl ContainerState {
    /// Parses the engine's word for a state; unknown words are kept as [`ContainerState::Unknown`]
    /// rather than failing a whole listing.
    pub fn from_engine(word: &str) -> ContainerState {
        match word {
            "created" => ContainerState::Created,
            "running" => ContainerState::Running,
            "paused" => ContainerState::Paused,
            "restarting" => ContainerState::Restarting,
            "removing" => ContainerState::Removing,
            "exited" => ContainerState::Exited,
            "dead" => ContainerState::Dead,
            _ => ContainerState::Unknown,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            ContainerState::Created => "created",
            ContainerState::Running => "running",
            ContainerState::Paused => "paused",
            ContainerState::Restarting => "restarting",
            ContainerState::Removing => "removing",
            ContainerState::Exited => "exited",
            ContainerState::Dead => "dead",
            ContainerState::Unknown => "unknown",
        }
    }
}

impl std::fmt::Display for ContainerState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A container as the engine lists it (stopped ones included).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ObservedContainer {
    pub id: String,
    /// Name without the engine's leading `/`.
    pub name: String,
    pub image: String,
    pub labels: Labels,
    pub state: ContainerState,
    /// True only in state `running`; kept as a field so callers need not match on `state`.
    pub running: bool,
    /// The network the container is attached to (lab containers have exactly one); the first by
    /// name if there are several.
    pub network: Option<String>,
    /// Its address on [`Self::network`]; `None` until it runs.
    pub ip: Option<Ipv4Addr>,
    /// Host ports currently published (the engine reports them only while the container runs).
    pub ports: Vec<PortBinding>,
}

/// A network as the engine lists it. Names are not unique on the engine, so ids matter.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ObservedNetwork {
    pub id: String,
    pub name: String,
    /// IPAM subnets in CIDR notation, as the engine reports them.
    pub subnets: Vec<String>,
    pub labels: Labels,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ObservedVolume {
    pub name: String,
    pub labels: Labels,
}

/// What lab needs to know about a local image: whether it exists, and its labels (the context
/// hash label tells whether it must be rebuilt).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ImageInfo {
    pub id: String,
    pub labels: Labels,
}

/// The result of [`Engine::exec`]: stdout and stderr interleaved as they arrived.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ExecOutput {
    pub exit_code: i64,
    pub output: String,
}

/// Labels an object must carry to be listed: each `key=value`, or `key` alone for any value.
/// An empty filter matches everything.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LabelFilter {
    pub labels: Vec<(String, Option<String>)>,
}

impl LabelFilter {
    pub fn new() -> LabelFilter {
        LabelFilter::default()
    }

    /// Requires `key=value`.
    /// Everything lab made for the lab named `lab`.
    pub fn lab(lab: &str) -> LabelFilter {
        LabelFilter::new().with(crate::plan::LABEL_LAB, lab)
    }

    pub fn with(mut self, key: impl Into<String>, value: impl Into<String>) -> LabelFilter {
        self.labels.push((key.into(), Some(value.into())));
        self
    }

    /// Requires `key` with any value.
    pub fn has(mut self, key: impl Into<String>) -> LabelFilter {
        self.labels.push((key.into(), None));
        self
    }

    /// Whether `labels` satisfy every condition (the fake uses this; the engine filters itself).
    pub fn matches(&self, labels: &Labels) -> bool {
        self.labels
            .iter()
            .all(|(key, value)| match (labels.get(key), value) {
                (Some(have), Some(want)) => have == want,
                (Some(_), None) => true,
                (None, _) => false,
            })
    }

    /// The engine's `label` filter values: `key=value` or `key`.
    pub fn to_engine(&self) -> Vec<String> {
        let one = |(key, value): &(String, Option<String>)| match value {
            Some(value) => format!("{key}={value}"),
            None => key.clone(),
        };
        self.labels.iter().map(one).collect()
    }
}

impl std::fmt::Display for LabelFilter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.to_engine().join(","))
    }
}

/// The failures a caller must tell apart. Every message says what failed, on which object, and
/// what to do about it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EngineError {
    #[error(
        "cannot reach a Docker engine at {endpoint}: {reason}\n  \
         start one (`dockerd &` or `systemctl start docker`), or point DOCKER_HOST at a running engine"
    )]
    Unreachable { endpoint: String, reason: String },

    #[error("image {image} is not on this Docker engine (needed {needed_by}); {hint}")]
    ImageMissing {
        image: String,
        needed_by: String,
        hint: String,
    },

    #[error(
        "cannot pull image {image} (needed {needed_by}): {reason}\n  \
         where a registry is reachable, run `docker pull {image}` (or set DOCKER_HOST to an engine that reaches one){}",
        if *base { "; offline, make lab's base image with `.ci/make-base-image` (BASE_IMAGE=... for another one)" } else { "; offline, load it with `docker load -i FILE` from a machine that has it" }
    )]
    PullFailed {
        image: String,
        needed_by: String,
        reason: String,
        /// The base image of a build: `.ci/make-base-image` can make it offline.
        base: bool,
    },

    #[error(
        "cannot create network {network}: its subnet {subnet} overlaps network {other} ({other_subnet}); \
         choose another subnet in the lab file, or remove {other} if it is left over"
    )]
    SubnetOverlap {
        network: String,
        subnet: String,
        other: String,
        other_subnet: String,
    },

    #[error(
        "network {name} already exists with subnet {existing}, not {wanted}; \
         remove it (`docker network rm {name}`) or give the lab another subnet or name"
    )]
    NetworkNameTaken {
        name: String,
        existing: String,
        wanted: String,
    },

    #[error(
        "cannot start container {container}: host port {} is already in use ({detail}); \
         free it or change the lab's ports. The container was removed.",
        busy_port_text(host_ip, *host_port)
    )]
    PortAllocated {
        container: String,
        host_ip: Option<String>,
        host_port: Option<u16>,
        detail: String,
    },

    #[error(
        "building image {tag} failed: {message}\n--- last lines of the build ---\n{}",
        output.join("\n")
    )]
    BuildFailed {
        tag: String,
        message: String,
        output: Vec<String>,
    },

    #[error("{kind} {name} does not exist on this Docker engine")]
    NotFound { kind: &'static str, name: String },

    #[error("container {container} is not running; start the lab with `lab up`")]
    NotRunning { container: String },

    #[error("{action} {object}: {}{message}", status.map(|s| format!("engine answered {s}: ")).unwrap_or_default())]
    Api {
        action: String,
        object: String,
        status: Option<u16>,
        message: String,
    },
}

fn busy_port_text(host_ip: &Option<String>, host_port: Option<u16>) -> String {
    match (host_ip, host_port) {
        (Some(ip), Some(port)) => format!("{ip}:{port}"),
        (None, Some(port)) => port.to_string(),
        _ => "(unknown)".to_string(),
    }
}

impl EngineError {
    /// A build's base image is missing at build time (`lab up` pulls it first, so this is a
    /// base image removed meanwhile, or a build run on its own): say how to get it.
    pub fn base_image_missing(base: &str, tag: &str) -> EngineError {
        EngineError::ImageMissing {
            image: base.to_string(),
            needed_by: format!("as the base of {tag}"),
            hint: format!(
                "`lab up` pulls it when missing. Where a registry is reachable run `docker pull {base}`; \
                 offline, make lab's base image with `.ci/make-base-image`"
            ),
        }
    }

    /// The image [`Engine::copy_from_image`] reads is missing.
    pub fn export_image_missing(image: &str, path: &str) -> EngineError {
        EngineError::ImageMissing {
            image: image.to_string(),
            needed_by: format!("to copy {path} out of it"),
            hint: "build it first (`lab up` builds lab's own images)".to_string(),
        }
    }

    /// A container's image is missing: lab's own images come from `lab up`.
    pub fn container_image_missing(image: &str, container: &str) -> EngineError {
        EngineError::ImageMissing {
            image: image.to_string(),
            needed_by: format!("by container {container}"),
            hint: format!("run `lab up` to build lab's images, or `docker pull {image}` for one lab does not build"),
        }
    }

    pub(crate) fn api(
        action: &str,
        object: &str,
        status: Option<u16>,
        message: impl Into<String>,
    ) -> EngineError {
        EngineError::Api {
            action: action.to_string(),
            object: object.to_string(),
            status,
            message: message.into(),
        }
    }
}

/// The engine operations lab needs. Implemented by [`DockerEngine`] and [`FakeEngine`].
///
/// Callers use it as a generic bound (`E: Engine`). Every future is `Send`, so apply may run many
/// at once (`join_all`, `tokio::join!`, or spawned tasks holding an `Arc<E>`).
///
/// Removals are idempotent: removing an object that is already gone succeeds, so `lab down` can
/// be re-run after a partial failure.
pub trait Engine: Send + Sync {
    /// Containers carrying `filter`'s labels, stopped ones included.
    fn list_containers(
        &self,
        filter: &LabelFilter,
    ) -> impl Future<Output = Result<Vec<ObservedContainer>, EngineError>> + Send;

    /// The container's full id and the engine host's PID of its first process while it runs
    /// (`None` when it does not run, or when the engine cannot tell).
    fn container_pid(
        &self,
        _container: &str,
    ) -> impl Future<Output = Result<Option<(String, u32)>, EngineError>> + Send {
        async { Ok(None) }
    }

    /// Creates (does not start) the container `spec` describes; returns its id.
    fn create_container(
        &self,
        spec: &ContainerSpec,
    ) -> impl Future<Output = Result<String, EngineError>> + Send;

    /// Starts a created or stopped container. A container that cannot start is removed (the
    /// engine would leave it `Created`, half-made); a busy host port is [`EngineError::PortAllocated`].
    fn start_container(
        &self,
        container: &str,
    ) -> impl Future<Output = Result<(), EngineError>> + Send;

    /// Kills and removes a container at once (never waits out a stop grace period).
    fn remove_container(
        &self,
        container: &str,
    ) -> impl Future<Output = Result<(), EngineError>> + Send;

    /// Networks carrying `filter`'s labels (an empty filter: all networks).
    fn find_networks(
        &self,
        filter: &LabelFilter,
    ) -> impl Future<Output = Result<Vec<ObservedNetwork>, EngineError>> + Send;

    /// Creates a bridge network; returns its id. A network with the same name and subnet is
    /// reused (its id returned); a different subnet under that name is
    /// [`EngineError::NetworkNameTaken`], an overlap with another network [`EngineError::SubnetOverlap`].
    fn create_network(
        &self,
        spec: &NetworkSpec,
    ) -> impl Future<Output = Result<String, EngineError>> + Send;

    /// Removes a network by id (preferred: names are not unique) or name.
    fn remove_network(
        &self,
        id_or_name: &str,
    ) -> impl Future<Output = Result<(), EngineError>> + Send;

    fn list_volumes(
        &self,
        filter: &LabelFilter,
    ) -> impl Future<Output = Result<Vec<ObservedVolume>, EngineError>> + Send;

    fn create_volume(
        &self,
        spec: &VolumeSpec,
    ) -> impl Future<Output = Result<(), EngineError>> + Send;

    fn remove_volume(&self, name: &str) -> impl Future<Output = Result<(), EngineError>> + Send;

    /// The local image `tag`, or `None` if there is none.
    fn image_info(
        &self,
        tag: &str,
    ) -> impl Future<Output = Result<Option<ImageInfo>, EngineError>> + Send;

    /// Pulls `image` (`NAME[:TAG]`, `latest` when no tag) from its registry, through the
    /// engine (so `DOCKER_HOST` and the engine's registry settings apply). Each status change
    /// (`Downloading`, `Pull complete`, ...) is passed to `progress`. Failing, it is
    /// [`EngineError::PullFailed`], naming the image and the ways out.
    fn pull_image<F>(
        &self,
        image: &str,
        progress: F,
    ) -> impl Future<Output = Result<(), EngineError>> + Send
    where
        F: FnMut(&str) + Send;

    /// Builds `spec.context` into `spec.tag` with build argument `BASE_IMAGE`, labelled with
    /// `spec.labels` (and the context hash); returns the image id. Each line of build output is
    /// passed to `progress` as it arrives. A missing base image fails up front with
    /// [`EngineError::ImageMissing`]; a failing step with [`EngineError::BuildFailed`].
    fn build_image<F>(
        &self,
        spec: &ImageSpec,
        progress: F,
    ) -> impl Future<Output = Result<String, EngineError>> + Send
    where
        F: FnMut(&str) + Send;

    /// Copies the files at `path` inside image `image` (a directory, or one file) into the host
    /// directory `dest`, keeping their paths below `path`, and returns those relative paths.
    /// Works through a container created from the image and never started (so an image without
    /// a shell or command, `FROM scratch`, will do), removed afterwards whatever happened. Each
    /// file is written under a temporary name and renamed into place. A missing image is
    /// [`EngineError::ImageMissing`], a missing path [`EngineError::NotFound`].
    fn copy_from_image(
        &self,
        image: &str,
        path: &str,
        dest: &Path,
    ) -> impl Future<Output = Result<Vec<PathBuf>, EngineError>> + Send;

    /// The container's stdout and stderr, interleaved; the last `tail` lines, or all of them.
    fn logs(
        &self,
        container: &str,
        tail: Option<usize>,
    ) -> impl Future<Output = Result<String, EngineError>> + Send;

    /// The container's log lines from the second `since` (seconds since the epoch, engine time)
    /// on, or all of them, each prefixed with the engine's RFC 3339 timestamp and a space (what
    /// boot phases are derived from).
    fn logs_since(
        &self,
        container: &str,
        since: Option<i64>,
    ) -> impl Future<Output = Result<String, EngineError>> + Send;

    /// Streams the container's logs to `each` (the last `tail` lines, then new ones as they come)
    /// until the container stops.
    fn follow_logs<F>(
        &self,
        container: &str,
        tail: Option<usize>,
        each: F,
    ) -> impl Future<Output = Result<(), EngineError>> + Send
    where
        F: FnMut(&str) + Send;

    /// Runs `argv` in a running container and waits for it; a non-zero exit is not an error.
    fn exec(
        &self,
        container: &str,
        argv: &[String],
    ) -> impl Future<Output = Result<ExecOutput, EngineError>> + Send;

    /// Runs `argv` in a running container, attached: what arrives on `input` goes to its stdin,
    /// which is closed when `input` closes; its output goes to `each` as it comes. Returns its
    /// exit code once it has exited (a non-zero exit is not an error).
    fn exec_attached<F>(
        &self,
        container: &str,
        argv: &[String],
        input: tokio::sync::mpsc::Receiver<Vec<u8>>,
        each: F,
    ) -> impl Future<Output = Result<i64, EngineError>> + Send
    where
        F: FnMut(&[u8]) + Send;

    /// The contents of the file `path` in a container, running or stopped (a node's console
    /// log outlives its VM and its container's process). A missing file is
    /// [`EngineError::NotFound`].
    fn read_file(
        &self,
        container: &str,
        path: &str,
    ) -> impl Future<Output = Result<Vec<u8>, EngineError>> + Send;
}

/// Decides whether `spec` may be created among `existing` networks: `Ok(Some(id))` if an
/// identical one exists (reuse it), `Ok(None)` to create it, or the typed conflict. Pure, so the
/// Docker engine and the fake apply the same rule.
pub fn check_new_network(
    spec: &NetworkSpec,
    existing: &[ObservedNetwork],
) -> Result<Option<String>, EngineError> {
    let wanted = spec.subnet.to_string();
    if let Some(same) = existing.iter().find(|n| n.name == spec.name) {
        if same.subnets.iter().any(|s| same_subnet(s, spec.subnet)) {
            return Ok(Some(same.id.clone()));
        }
        let existing = if same.subnets.is_empty() {
            "(none)".to_string()
        } else {
            same.subnets.join(", ")
        };
        return Err(EngineError::NetworkNameTaken {
            name: spec.name.clone(),
            existing,
            wanted,
        });
    }
    for other in existing {
        if let Some(subnet) = other.subnets.iter().find(|s| overlaps(s, spec.subnet)) {
            return Err(EngineError::SubnetOverlap {
                network: spec.name.clone(),
                subnet: wanted,
                other: other.name.clone(),
                other_subnet: subnet.clone(),
            });
        }
    }
    Ok(None)
}

fn same_subnet(text: &str, subnet: Ipv4Net) -> bool {
    text.parse::<Ipv4Net>()
        .map(|s| s.trunc() == subnet.trunc())
        .unwrap_or(false)
}

/// IPv6 or unparsable subnets never overlap an IPv4 lab subnet.
fn overlaps(text: &str, subnet: Ipv4Net) -> bool {
    match text.parse::<Ipv4Net>() {
        Ok(other) => other.contains(&subnet.network()) || subnet.contains(&other.network()),
        Err(_) => false,
    }
}

/// Finds the host address in an engine port-conflict message, e.g.
/// `Bind for 127.0.0.1:20001 failed: port is already allocated` (another container holds it) or
/// `listen tcp4 127.0.0.1:20001: bind: address already in use` (a host process holds it).
pub fn busy_address(message: &str) -> Option<(String, u16)> {
    let address = if let Some((_, rest)) = message.split_once("Bind for ") {
        rest.split(" failed").next()?
    } else {
        let (_, rest) = message.split_once("listen ")?;
        let (_proto, rest) = rest.split_once(' ')?;
        rest.split(": ").next()?
    };
    let (ip, port) = address.rsplit_once(':')?;
    let ip = ip.trim_start_matches('[').trim_end_matches(']');
    Some((ip.to_string(), port.parse().ok()?))
}

/// Whether an engine message says a host port is taken.
pub fn is_port_conflict(message: &str) -> bool {
    message.contains("port is already allocated") || message.contains("address already in use")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn net(name: &str, subnet: &str) -> ObservedNetwork {
        ObservedNetwork {
            id: format!("id-{name}"),
            name: name.into(),
            subnets: vec![subnet.into()],
            labels: Labels::new(),
        }
    }

    fn spec(name: &str, subnet: &str) -> NetworkSpec {
        let subnet: Ipv4Net = subnet.parse().expect("test subnet");
        NetworkSpec {
            name: name.into(),
            subnet,
            gateway: subnet.hosts().next().expect("host"),
            labels: Labels::new(),
        }
    }

    #[test]
    fn overlap_names_the_other_network() {
        let existing = [
            net("bridge", "172.17.0.0/16"),
            net("old-lab", "10.214.5.0/24"),
        ];
        let err = check_new_network(&spec("lab", "10.214.5.128/25"), &existing).unwrap_err();
        assert_eq!(
            err,
            EngineError::SubnetOverlap {
                network: "lab".into(),
                subnet: "10.214.5.128/25".into(),
                other: "old-lab".into(),
                other_subnet: "10.214.5.0/24".into(),
            }
        );
        assert!(err
            .to_string()
            .contains("overlaps network old-lab (10.214.5.0/24)"));
    }

    #[test]
    fn same_name_same_subnet_is_reused_and_different_subnet_is_refused() {
        let existing = [net("lab", "10.214.5.0/24")];
        assert_eq!(
            check_new_network(&spec("lab", "10.214.5.0/24"), &existing),
            Ok(Some("id-lab".into()))
        );
        let err = check_new_network(&spec("lab", "10.214.6.0/24"), &existing).unwrap_err();
        assert!(
            matches!(err, EngineError::NetworkNameTaken { ref existing, .. } if existing == "10.214.5.0/24")
        );
        assert_eq!(
            check_new_network(&spec("lab2", "10.214.6.0/24"), &existing),
            Ok(None)
        );
    }

    #[test]
    fn busy_address_reads_both_engine_messages() {
        let allocated = "driver failed programming external connectivity on endpoint x (abc): \
                         Bind for 127.0.0.1:20001 failed: port is already allocated";
        assert_eq!(busy_address(allocated), Some(("127.0.0.1".into(), 20001)));
        let in_use =
            "driver failed programming external connectivity on endpoint x (abc): Error starting \
                      userland proxy: listen tcp4 127.0.0.1:20002: bind: address already in use";
        assert_eq!(busy_address(in_use), Some(("127.0.0.1".into(), 20002)));
        assert_eq!(
            busy_address("listen udp6 [::1]:623: bind: address already in use"),
            Some(("::1".into(), 623))
        );
        assert_eq!(busy_address("something else"), None);
    }

    #[test]
    fn label_filter_matches_key_only_and_key_value() {
        let labels: Labels = [("a".to_string(), "1".to_string())].into();
        assert!(LabelFilter::new().matches(&labels));
        assert!(LabelFilter::new().has("a").matches(&labels));
        assert!(LabelFilter::new().with("a", "1").matches(&labels));
        assert!(!LabelFilter::new().with("a", "2").matches(&labels));
        assert!(!LabelFilter::new().has("b").matches(&labels));
        assert_eq!(
            LabelFilter::new().with("a", "1").has("b").to_engine(),
            vec!["a=1", "b"]
        );
    }
}
