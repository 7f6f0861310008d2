//! An in-memory [`Engine`] for unit tests of planning and apply logic.
//!
//! It keeps containers, networks, volumes and images in maps, applies the same rules as the real
//! engine where lab depends on them (names unique, subnets must not overlap, a busy host port
//! fails at start and the container is removed, removals are idempotent, exec needs a running
//! container), and records every call as one line (`"create_container demo-dhcp"`) so tests can
//! assert what apply did and in which order. [`FakeEngine::fail`] makes a chosen call fail.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

use super::{
    check_new_network, ContainerState, Engine, EngineError, ExecOutput, ImageInfo, LabelFilter,
    Labels, ObservedContainer, ObservedNetwork, ObservedVolume,
};
use crate::plan::{
    ContainerSpec, ImageSpec, MountKind, NetworkSpec, PortBinding, VolumeSpec, LABEL_CONTEXT_HASH,
};

/// A failure to inject: calls named `op` (e.g. `"start_container"`) on `object` (or on any
/// object if `None`) fail with `error`, every time until [`FakeEngine::clear_failures`].
#[derive(Debug, Clone)]
struct Failure {
    op: String,
    object: Option<String>,
    error: EngineError,
}

#[derive(Debug, Clone)]
struct FakeContainer {
    id: String,
    spec: ContainerSpec,
    state: ContainerState,
}

/// Files in an image below a path: (relative path, contents).
type ImageFiles = Vec<(String, Vec<u8>)>;

#[derive(Debug, Default)]
struct State {
    calls: Vec<String>,
    failures: Vec<Failure>,
    next_id: u64,
    /// By name.
    containers: BTreeMap<String, FakeContainer>,
    /// By id.
    networks: BTreeMap<String, ObservedNetwork>,
    volumes: BTreeMap<String, ObservedVolume>,
    /// By tag.
    images: BTreeMap<String, ImageInfo>,
    /// Images a registry would give [`Engine::pull_image`].
    pullable: std::collections::BTreeSet<String>,
    logs: BTreeMap<String, String>,
    exec_outputs: BTreeMap<String, ExecOutput>,
    /// What [`Engine::read_file`] finds, by (container, path).
    container_files: BTreeMap<(String, String), Vec<u8>>,
    /// What [`Engine::copy_from_image`] finds, by (image tag, path): (relative path, contents).
    image_files: BTreeMap<(String, String), ImageFiles>,
}

impl State {
    fn new_id(&mut self, kind: &str) -> String {
        self.next_id += 1;
        format!("fake-{kind}-{}", self.next_id)
    }

    fn observed(&self, c: &FakeContainer) -> ObservedContainer {
        let running = c.state == ContainerState::Running;
        ObservedContainer {
            id: c.id.clone(),
            name: c.spec.name.clone(),
            image: c.spec.image.clone(),
            labels: c.spec.labels.clone(),
            state: c.state,
            running,
            network: Some(c.spec.network.clone()),
            ip: running.then_some(c.spec.ip),
            ports: if running {
                c.spec.ports.clone()
            } else {
                Vec::new()
            },
        }
    }

    /// Containers are addressed by name or id, as on the engine.
    fn container_key(&self, name_or_id: &str) -> Option<String> {
        if self.containers.contains_key(name_or_id) {
            return Some(name_or_id.to_string());
        }
        self.containers
            .values()
            .find(|c| c.id == name_or_id)
            .map(|c| c.spec.name.clone())
    }

    /// The running container (other than `except`) publishing the same host port, if any.
    fn port_holder(&self, port: &PortBinding, except: &str) -> Option<&FakeContainer> {
        let clash = |other: &PortBinding| {
            other.host_port == port.host_port
                && other.protocol == port.protocol
                && (other.host_ip == port.host_ip
                    || other.host_ip.is_unspecified()
                    || port.host_ip.is_unspecified())
        };
        self.containers
            .values()
            .filter(|c| c.spec.name != except && c.state == ContainerState::Running)
            .find(|c| c.spec.ports.iter().any(clash))
    }
}

/// See the module docs. Cheap to create; share it by reference (or `Arc`) between tasks.
#[derive(Debug, Default)]
pub struct FakeEngine {
    state: Mutex<State>,
}

impl FakeEngine {
    /// An empty engine: no images, networks, volumes or containers.
    pub fn new() -> FakeEngine {
        FakeEngine::default()
    }

    /// An engine that already has image `tag` (e.g. the base image) with `labels`.
    pub fn with_image(self, tag: &str, labels: Labels) -> FakeEngine {
        self.add_image(tag, labels);
        self
    }

    pub fn add_image(&self, tag: &str, labels: Labels) {
        let mut state = self.lock();
        let id = state.new_id("image");
        state
            .images
            .insert(tag.to_string(), ImageInfo { id, labels });
    }

    /// Lets [`Engine::pull_image`] of `image` succeed (as if a registry had it).
    pub fn pullable(self, image: &str) -> FakeEngine {
        self.lock().pullable.insert(image.to_string());
        self
    }

    /// Every call so far, one line each: `"<method> <object>"`.
    pub fn calls(&self) -> Vec<String> {
        self.lock().calls.clone()
    }

    /// The calls so far, forgetting them (to assert on the next step alone).
    pub fn take_calls(&self) -> Vec<String> {
        std::mem::take(&mut self.lock().calls)
    }

    /// Makes calls `op` (a method name, e.g. `"start_container"`) on `object` (or any object if
    /// `None`) fail with `error`. A failed start still removes the container, as on the engine.
    pub fn fail(&self, op: &str, object: Option<&str>, error: EngineError) {
        let failure = Failure {
            op: op.to_string(),
            object: object.map(str::to_string),
            error,
        };
        self.lock().failures.push(failure);
    }

    pub fn clear_failures(&self) {
        self.lock().failures.clear();
    }

    /// The logs of `container`, as the engine keeps them: lines of `TIMESTAMP text`, the
    /// timestamp in RFC 3339 (`2026-11-21T01:00:00.5Z`). Replaces what was there.
    pub fn set_logs(&self, container: &str, text: &str) {
        self.lock()
            .logs
            .insert(container.to_string(), text.to_string());
    }

    /// Appends lines (`TIMESTAMP text`) to the logs of `container`.
    pub fn add_logs(&self, container: &str, text: &str) {
        self.lock()
            .logs
            .entry(container.to_string())
            .or_default()
            .push_str(text);
    }

    /// A container that exists in `state`, made outside lab (no spec but its name), e.g. one
    /// whose console log a test reads.
    pub fn add_container(&self, name: &str, state: ContainerState) {
        let mut s = self.lock();
        let id = s.new_id("container");
        let spec = ContainerSpec {
            name: name.to_string(),
            lab_name: name.to_string(),
            role: crate::plan::Role::Service,
            image: String::new(),
            hostname: name.to_string(),
            network: String::new(),
            ip: std::net::Ipv4Addr::UNSPECIFIED,
            ports: Vec::new(),
            devices: Vec::new(),
            cap_add: Vec::new(),
            mounts: Vec::new(),
            env: Vec::new(),
            command: None,
            restart: false,
            init: true,
            labels: Labels::new(),
        };
        s.containers
            .insert(name.to_string(), FakeContainer { id, spec, state });
    }

    /// What [`Engine::exec`] returns in `container` (default: exit 0, no output).
    pub fn set_exec_output(&self, container: &str, output: ExecOutput) {
        self.lock()
            .exec_outputs
            .insert(container.to_string(), output);
    }

    /// The output set for `container` by [`FakeEngine::set_exec_output`]; exec needs it running.
    fn canned_exec(
        &self,
        op: &str,
        container: &str,
        argv: &[String],
    ) -> Result<ExecOutput, EngineError> {
        let state = self.begin(op, &format!("{container} {}", argv.join(" ")))?;
        let key = state
            .container_key(container)
            .ok_or_else(|| not_found("container", container))?;
        if state.containers[&key].state != ContainerState::Running {
            return Err(EngineError::NotRunning {
                container: container.to_string(),
            });
        }
        Ok(state.exec_outputs.get(&key).cloned().unwrap_or_default())
    }

    /// What [`Engine::read_file`] returns for `path` in `container`.
    pub fn set_container_file(&self, container: &str, path: &str, contents: &[u8]) {
        self.lock()
            .container_files
            .insert((container.to_string(), path.to_string()), contents.to_vec());
    }

    /// Files that [`Engine::copy_from_image`] finds at `path` (a directory) in image `tag`:
    /// (path below it, contents). The image itself must exist too (`add_image`, or a build).
    pub fn set_image_files(&self, tag: &str, path: &str, files: &[(&str, &[u8])]) {
        let files = files
            .iter()
            .map(|(name, data)| (name.to_string(), data.to_vec()))
            .collect();
        self.lock()
            .image_files
            .insert((tag.to_string(), path.to_string()), files);
    }

    /// Changes a container's state behind lab's back (e.g. it exited, or someone stopped it).
    pub fn set_state(&self, container: &str, state: ContainerState) {
        if let Some(c) = self.lock().containers.get_mut(container) {
            c.state = state;
        }
    }

    /// The spec a container was created from, without recording a call.
    pub fn container_spec(&self, name: &str) -> Option<ContainerSpec> {
        self.lock().containers.get(name).map(|c| c.spec.clone())
    }

    /// Names of all containers, without recording a call.
    pub fn container_names(&self) -> Vec<String> {
        self.lock().containers.keys().cloned().collect()
    }

    /// All networks, without recording a call.
    pub fn networks(&self) -> Vec<ObservedNetwork> {
        self.lock().networks.values().cloned().collect()
    }

    /// Names of all volumes, without recording a call.
    pub fn volume_names(&self) -> Vec<String> {
        self.lock().volumes.keys().cloned().collect()
    }

    /// The lock is never held across an await, and a panic in one test must not poison others'
    /// view of the fake.
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Records the call and returns the state, or the injected failure for it.
    fn begin(&self, op: &str, object: &str) -> Result<MutexGuard<'_, State>, EngineError> {
        let mut state = self.lock();
        state
            .calls
            .push(format!("{op} {object}").trim_end().to_string());
        let hit = state
            .failures
            .iter()
            .find(|f| f.op == op && f.object.as_deref().is_none_or(|o| o == object));
        match hit {
            Some(failure) => Err(failure.error.clone()),
            None => Ok(state),
        }
    }
}

impl Engine for FakeEngine {
    async fn list_containers(
        &self,
        filter: &LabelFilter,
    ) -> Result<Vec<ObservedContainer>, EngineError> {
        let state = self.begin("list_containers", &filter.to_string())?;
        let matching = state
            .containers
            .values()
            .filter(|c| filter.matches(&c.spec.labels));
        Ok(matching.map(|c| state.observed(c)).collect())
    }

    async fn create_container(&self, spec: &ContainerSpec) -> Result<String, EngineError> {
        let mut state = self.begin("create_container", &spec.name)?;
        if state.containers.contains_key(&spec.name) {
            let message = format!(
                "Conflict. The container name \"/{}\" is already in use",
                spec.name
            );
            return Err(EngineError::api(
                "creating container",
                &spec.name,
                Some(409),
                message,
            ));
        }
        if !state.images.contains_key(&spec.image) {
            return Err(EngineError::container_image_missing(
                &spec.image,
                &spec.name,
            ));
        }
        if !state.networks.values().any(|n| n.name == spec.network) {
            return Err(not_found("network", &spec.network));
        }
        let id = state.new_id("container");
        let container = FakeContainer {
            id: id.clone(),
            spec: spec.clone(),
            state: ContainerState::Created,
        };
        state.containers.insert(spec.name.clone(), container);
        Ok(id)
    }

    async fn start_container(&self, container: &str) -> Result<(), EngineError> {
        let injected = self.begin("start_container", container).err();
        let mut state = self.lock();
        let key = state
            .container_key(container)
            .ok_or_else(|| not_found("container", container))?;
        let error = injected.or_else(|| port_conflict(&state, &key));
        if let Some(error) = error {
            state.containers.remove(&key);
            return Err(error);
        }
        if let Some(c) = state.containers.get_mut(&key) {
            c.state = ContainerState::Running;
        }
        Ok(())
    }

    async fn remove_container(&self, container: &str) -> Result<(), EngineError> {
        let mut state = self.begin("remove_container", container)?;
        if let Some(key) = state.container_key(container) {
            state.containers.remove(&key);
        }
        Ok(())
    }

    async fn find_networks(
        &self,
        filter: &LabelFilter,
    ) -> Result<Vec<ObservedNetwork>, EngineError> {
        let state = self.begin("find_networks", &filter.to_string())?;
        let matches = |n: &&ObservedNetwork| filter.matches(&n.labels);
        Ok(state.networks.values().filter(matches).cloned().collect())
    }

    async fn create_network(&self, spec: &NetworkSpec) -> Result<String, EngineError> {
        let mut state = self.begin("create_network", &spec.name)?;
        let existing: Vec<ObservedNetwork> = state.networks.values().cloned().collect();
        if let Some(id) = check_new_network(spec, &existing)? {
            return Ok(id);
        }
        let id = state.new_id("network");
        let network = ObservedNetwork {
            id: id.clone(),
            name: spec.name.clone(),
            subnets: vec![spec.subnet.to_string()],
            labels: spec.labels.clone(),
        };
        state.networks.insert(id.clone(), network);
        Ok(id)
    }

    async fn remove_network(&self, id_or_name: &str) -> Result<(), EngineError> {
        let mut state = self.begin("remove_network", id_or_name)?;
        let Some(network) = state
            .networks
            .values()
            .find(|n| n.id == id_or_name || n.name == id_or_name)
            .cloned()
        else {
            return Ok(());
        };
        let in_use = state
            .containers
            .values()
            .any(|c| c.spec.network == network.name && c.state == ContainerState::Running);
        if in_use {
            let message = format!(
                "error while removing network: network {} id {} has active endpoints",
                network.name, network.id
            );
            return Err(EngineError::api(
                "removing network",
                id_or_name,
                Some(403),
                message,
            ));
        }
        state.networks.remove(&network.id);
        Ok(())
    }

    async fn list_volumes(&self, filter: &LabelFilter) -> Result<Vec<ObservedVolume>, EngineError> {
        let state = self.begin("list_volumes", &filter.to_string())?;
        Ok(state
            .volumes
            .values()
            .filter(|v| filter.matches(&v.labels))
            .cloned()
            .collect())
    }

    async fn create_volume(&self, spec: &VolumeSpec) -> Result<(), EngineError> {
        let mut state = self.begin("create_volume", &spec.name)?;
        // The engine keeps an existing volume as it is, labels included.
        let volume = ObservedVolume {
            name: spec.name.clone(),
            labels: spec.labels.clone(),
        };
        state.volumes.entry(spec.name.clone()).or_insert(volume);
        Ok(())
    }

    async fn remove_volume(&self, name: &str) -> Result<(), EngineError> {
        let mut state = self.begin("remove_volume", name)?;
        let uses = |c: &FakeContainer| {
            c.spec
                .mounts
                .iter()
                .any(|m| m.kind == MountKind::Volume && m.source == name)
        };
        if let Some(user) = state.containers.values().find(|c| uses(c)) {
            let message = format!("remove {name}: volume is in use - [{}]", user.id);
            return Err(EngineError::api(
                "removing volume",
                name,
                Some(409),
                message,
            ));
        }
        state.volumes.remove(name);
        Ok(())
    }

    async fn image_info(&self, tag: &str) -> Result<Option<ImageInfo>, EngineError> {
        let state = self.begin("image_info", tag)?;
        Ok(state.images.get(tag).cloned())
    }

    async fn pull_image<F>(&self, image: &str, mut progress: F) -> Result<(), EngineError>
    where
        F: FnMut(&str) + Send,
    {
        let mut state = self.begin("pull_image", image)?;
        if !state.pullable.contains(image) {
            return Err(EngineError::PullFailed {
                image: image.to_string(),
                needed_by: String::new(),
                reason: "no registry knows it (fake engine)".into(),
                base: false,
            });
        }
        let id = state.new_id("image");
        state.images.insert(
            image.to_string(),
            ImageInfo {
                id,
                labels: Labels::new(),
            },
        );
        drop(state);
        progress("Pull complete");
        Ok(())
    }

    async fn build_image<F>(&self, spec: &ImageSpec, mut progress: F) -> Result<String, EngineError>
    where
        F: FnMut(&str) + Send,
    {
        let mut state = self.begin("build_image", &spec.tag)?;
        if !spec.base_image.is_empty() && !state.images.contains_key(&spec.base_image) {
            return Err(EngineError::base_image_missing(&spec.base_image, &spec.tag));
        }
        let mut labels = spec.labels.clone();
        labels
            .entry(LABEL_CONTEXT_HASH.to_string())
            .or_insert_with(|| spec.context_hash.clone());
        let id = state.new_id("image");
        state.images.insert(
            spec.tag.clone(),
            ImageInfo {
                id: id.clone(),
                labels,
            },
        );
        drop(state);
        progress(&format!("Step 1/1 : FROM {}", spec.base_image));
        progress(&format!("Successfully tagged {}", spec.tag));
        Ok(id)
    }

    /// Unpacks the files set with `set_image_files` as the real engine's archive would hold them.
    async fn copy_from_image(
        &self,
        image: &str,
        path: &str,
        dest: &Path,
    ) -> Result<Vec<PathBuf>, EngineError> {
        let files = {
            let state = self.begin("copy_from_image", &format!("{image}:{path}"))?;
            if !state.images.contains_key(image) {
                return Err(EngineError::export_image_missing(image, path));
            }
            let key = (image.to_string(), path.to_string());
            state
                .image_files
                .get(&key)
                .cloned()
                .ok_or_else(|| not_found("path", &format!("{path} in image {image}")))?
        };
        let what = format!("{} (copied from {path} in image {image})", dest.display());
        let failed = |e: std::io::Error| EngineError::api("writing", &what, None, e.to_string());
        let archive = super::export::archive(path, &files).map_err(failed)?;
        super::export::unpack_files(&archive, dest).map_err(failed)
    }

    async fn logs(&self, container: &str, tail: Option<usize>) -> Result<String, EngineError> {
        let state = self.begin("logs", container)?;
        let key = state
            .container_key(container)
            .ok_or_else(|| not_found("container", container))?;
        // Logs are kept as the engine keeps them, with timestamps; plain reads drop them.
        let text: String = state
            .logs
            .get(&key)
            .map(|l| {
                l.lines()
                    .map(|line| format!("{}\n", stamped(line).map_or(line, |(_, rest)| rest)))
                    .collect()
            })
            .unwrap_or_default();
        Ok(match tail {
            Some(n) => last_lines(&text, n),
            None => text,
        })
    }

    /// The lines set by `set_logs` (each `TIMESTAMP text`) from the second `since` on.
    async fn logs_since(&self, container: &str, since: Option<i64>) -> Result<String, EngineError> {
        let since_text = since.map_or("all".to_string(), |s| format!("since={s}"));
        let state = self.begin("logs_since", &format!("{container} {since_text}"))?;
        let key = state
            .container_key(container)
            .ok_or_else(|| not_found("container", container))?;
        let text = state.logs.get(&key).cloned().unwrap_or_default();
        let from = since.map_or(f64::MIN, |s| s as f64);
        Ok(text
            .lines()
            .filter(|l| stamped(l).is_some_and(|(t, _)| t >= from))
            .map(|l| format!("{l}\n"))
            .collect())
    }

    async fn follow_logs<F>(
        &self,
        container: &str,
        tail: Option<usize>,
        mut each: F,
    ) -> Result<(), EngineError>
    where
        F: FnMut(&str) + Send,
    {
        let text = {
            let state = self.begin("follow_logs", container)?;
            let key = state
                .container_key(container)
                .ok_or_else(|| not_found("container", container))?;
            state.logs.get(&key).cloned().unwrap_or_default()
        };
        each(&match tail {
            Some(n) => last_lines(&text, n),
            None => text,
        });
        Ok(())
    }

    async fn exec(&self, container: &str, argv: &[String]) -> Result<ExecOutput, EngineError> {
        self.canned_exec("exec", container, argv)
    }

    /// Takes all of `input`, then hands the container's canned exec output to `each`.
    async fn exec_attached<F>(
        &self,
        container: &str,
        argv: &[String],
        mut input: tokio::sync::mpsc::Receiver<Vec<u8>>,
        mut each: F,
    ) -> Result<i64, EngineError>
    where
        F: FnMut(&[u8]) + Send,
    {
        let output = self.canned_exec("exec_attached", container, argv)?;
        while input.recv().await.is_some() {}
        each(output.output.as_bytes());
        Ok(output.exit_code)
    }

    async fn read_file(&self, container: &str, path: &str) -> Result<Vec<u8>, EngineError> {
        let state = self.begin("read_file", &format!("{container} {path}"))?;
        let key = state
            .container_key(container)
            .ok_or_else(|| not_found("container", container))?;
        state
            .container_files
            .get(&(key, path.to_string()))
            .cloned()
            .ok_or_else(|| not_found("path", &format!("{path} in container {container}")))
    }
}

fn not_found(kind: &'static str, name: &str) -> EngineError {
    EngineError::NotFound {
        kind,
        name: name.to_string(),
    }
}

/// The error the engine gives when another running container publishes one of `key`'s ports.
fn port_conflict(state: &State, key: &str) -> Option<EngineError> {
    let spec = &state.containers[key].spec;
    let port = spec
        .ports
        .iter()
        .find(|p| state.port_holder(p, key).is_some())?;
    let address = format!("{}:{}", port.host_ip, port.host_port);
    Some(EngineError::PortAllocated {
        container: key.to_string(),
        host_ip: Some(port.host_ip.to_string()),
        host_port: Some(port.host_port),
        detail: format!("Bind for {address} failed: port is already allocated"),
    })
}

/// A log line's engine timestamp (seconds) and the text after it.
fn stamped(line: &str) -> Option<(f64, &str)> {
    let (ts, rest) = line.split_once(' ')?;
    Some((crate::phase::rfc3339_seconds(ts)?, rest))
}

fn last_lines(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    let start = lines.len().saturating_sub(n);
    lines[start..].iter().map(|l| format!("{l}\n")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lab::Proto;
    use crate::plan::Role;

    fn network() -> NetworkSpec {
        NetworkSpec {
            name: "demo".into(),
            subnet: "10.214.1.0/24".parse().expect("subnet"),
            gateway: Ipv4Addr::new(10, 214, 1, 1),
            labels: Labels::new(),
        }
    }

    fn container(name: &str, host_port: u16) -> ContainerSpec {
        ContainerSpec {
            name: name.into(),
            lab_name: name.into(),
            role: Role::Service,
            image: "img".into(),
            hostname: name.into(),
            network: "demo".into(),
            ip: Ipv4Addr::new(10, 214, 1, 10),
            ports: vec![PortBinding {
                host_ip: "127.0.0.1".parse().expect("ip"),
                host_port,
                container_port: 80,
                protocol: Proto::Tcp,
            }],
            devices: vec![],
            cap_add: vec![],
            mounts: vec![],
            env: vec![],
            command: None,
            restart: true,
            init: true,
            labels: [("io.metal-lab.lab".to_string(), "demo".to_string())].into(),
        }
    }

    async fn engine_with_network() -> FakeEngine {
        let engine = FakeEngine::new().with_image("img", Labels::new());
        engine.create_network(&network()).await.expect("network");
        engine
    }

    #[tokio::test]
    async fn busy_port_fails_at_start_and_removes_the_container() {
        let engine = engine_with_network().await;
        engine
            .create_container(&container("a", 8080))
            .await
            .expect("create a");
        engine.start_container("a").await.expect("start a");
        engine
            .create_container(&container("b", 8080))
            .await
            .expect("create b");
        let err = engine.start_container("b").await.unwrap_err();
        assert!(
            matches!(
                err,
                EngineError::PortAllocated {
                    host_port: Some(8080),
                    ..
                }
            ),
            "{err}"
        );
        assert_eq!(engine.container_names(), vec!["a"]);
    }

    #[tokio::test]
    async fn injected_start_failure_is_returned_and_recorded() {
        let engine = engine_with_network().await;
        engine.fail(
            "start_container",
            Some("a"),
            EngineError::api("starting container", "a", Some(500), "boom"),
        );
        engine
            .create_container(&container("a", 8080))
            .await
            .expect("create");
        assert!(engine.start_container("a").await.is_err());
        assert_eq!(
            engine.calls(),
            [
                "create_network demo",
                "create_container a",
                "start_container a"
            ]
        );
        assert!(engine.container_names().is_empty());
    }

    #[tokio::test]
    async fn listing_reports_address_and_ports_only_while_running() {
        let engine = engine_with_network().await;
        engine
            .create_container(&container("a", 8080))
            .await
            .expect("create");
        let filter = LabelFilter::new().with("io.metal-lab.lab", "demo");
        let created = engine.list_containers(&filter).await.expect("list");
        assert_eq!(
            (created[0].state, created[0].ip, created[0].ports.len()),
            (ContainerState::Created, None, 0)
        );
        engine.start_container("a").await.expect("start");
        let running = engine.list_containers(&filter).await.expect("list");
        assert_eq!(running[0].ip, Some(Ipv4Addr::new(10, 214, 1, 10)));
        assert!(engine
            .list_containers(&LabelFilter::new().with("io.metal-lab.lab", "other"))
            .await
            .expect("list")
            .is_empty());
    }

    /// Apply runs engine calls concurrently: on one task with `join_all`, or spawned (which needs
    /// the futures to be `Send`, checked here by a generic caller as apply will be).
    #[tokio::test]
    async fn calls_run_concurrently_and_spawned() {
        async fn start_all<E: Engine + 'static>(engine: std::sync::Arc<E>, names: Vec<String>) {
            let tasks: Vec<_> = names
                .into_iter()
                .map(|n| {
                    let engine = engine.clone();
                    tokio::spawn(async move { engine.start_container(&n).await })
                })
                .collect();
            for task in tasks {
                task.await.expect("task").expect("start");
            }
        }
        let engine = std::sync::Arc::new(engine_with_network().await);
        let specs: Vec<_> = (0..3)
            .map(|i| container(&format!("c{i}"), 8080 + i))
            .collect();
        let created =
            futures_util::future::join_all(specs.iter().map(|s| engine.create_container(s))).await;
        assert!(created.iter().all(Result::is_ok));
        start_all(engine.clone(), vec!["c0".into(), "c1".into(), "c2".into()]).await;
        let running = engine
            .list_containers(&LabelFilter::new())
            .await
            .expect("list");
        assert_eq!(running.iter().filter(|c| c.running).count(), 3);
    }

    #[tokio::test]
    async fn removals_are_idempotent_and_exec_needs_a_running_container() {
        let engine = engine_with_network().await;
        engine
            .create_container(&container("a", 8080))
            .await
            .expect("create");
        let err = engine.exec("a", &["true".to_string()]).await.unwrap_err();
        assert_eq!(
            err,
            EngineError::NotRunning {
                container: "a".into()
            }
        );
        engine.remove_container("a").await.expect("remove");
        engine.remove_container("a").await.expect("remove again");
        engine.remove_network("demo").await.expect("remove network");
        engine
            .remove_network("demo")
            .await
            .expect("remove network again");
        assert!(engine.networks().is_empty());
    }
}
