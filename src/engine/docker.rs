//! [`Engine`] on a real Docker engine, through bollard.
//!
//! Each method translates a plan type into one or two API calls and the engine's answers into
//! [`EngineError`] cases; the quirks it works around are listed in the module docs of
//! [`crate::engine`]. Option builders come from `bollard::query_parameters`, bodies from
//! `bollard::models`.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use bollard::errors::Error as BollardError;
use bollard::exec::{CreateExecOptions, StartExecResults};
use bollard::models::{
    BuildInfo, ContainerCreateBody, ContainerSummary, DeviceMapping, EndpointIpamConfig,
    EndpointSettings, HostConfig, Ipam, IpamConfig, Mount as DockerMount, MountType, Network,
    NetworkCreateRequest, NetworkingConfig, PortBinding as DockerPortBinding, PortMap, PortSummary,
    PortSummaryTypeEnum, RestartPolicy, RestartPolicyNameEnum, VolumeCreateRequest,
};
use bollard::query_parameters::{
    BuildImageOptionsBuilder, CreateContainerOptions, CreateImageOptionsBuilder,
    DownloadFromContainerOptionsBuilder, ListContainersOptionsBuilder, ListNetworksOptionsBuilder,
    ListVolumesOptionsBuilder, LogsOptionsBuilder, RemoveContainerOptionsBuilder,
    RemoveVolumeOptionsBuilder,
};
use bollard::Docker;
use futures_util::{Stream, StreamExt};

use super::{
    busy_address, check_new_network, is_port_conflict, ContainerState, Engine, EngineError,
    ExecOutput, ImageInfo, LabelFilter, Labels, ObservedContainer, ObservedNetwork, ObservedVolume,
};
use crate::lab::Proto;
use crate::plan::{
    ContainerSpec, ImageSpec, MountKind, NetworkSpec, PortBinding, VolumeSpec, LABEL_CONTEXT_HASH,
};

/// Where bollard connects when DOCKER_HOST is unset.
const DEFAULT_ENDPOINT: &str = "unix:///var/run/docker.sock";
/// Seconds the engine waits after SIGTERM on `docker stop`. Short because lab's containers hold
/// no state worth a graceful stop (a node's disk is written by QEMU synchronously), and PID 1s
/// like ipmi_sim or a shell ignore SIGTERM and would cost the full default of 10 s.
const STOP_TIMEOUT_SECS: i64 = 2;
/// Lines of build output kept for a [`EngineError::BuildFailed`] message.
const BUILD_TAIL_LINES: usize = 30;
/// Label of the short-lived container [`Engine::copy_from_image`] creates (value: the path
/// copied), so that one left behind by a killed `lab` can be recognised.
pub const LABEL_COPY_FROM_IMAGE: &str = "io.metal-lab.copy-from-image";

/// A connection to a Docker engine.
#[derive(Debug, Clone)]
pub struct DockerEngine {
    docker: Docker,
    /// For messages: where we tried to connect.
    endpoint: String,
}

impl DockerEngine {
    /// Connects as the `docker` CLI would (DOCKER_HOST, else the local socket) and agrees on an
    /// API version; fails with [`EngineError::Unreachable`] if no engine answers.
    pub async fn connect() -> Result<DockerEngine, EngineError> {
        let endpoint =
            std::env::var("DOCKER_HOST").unwrap_or_else(|_| DEFAULT_ENDPOINT.to_string());
        let unreachable = |e: BollardError| EngineError::Unreachable {
            endpoint: endpoint.clone(),
            reason: e.to_string(),
        };
        let docker = Docker::connect_with_defaults().map_err(unreachable)?;
        // bollard sends unversioned paths, so an old engine answers at its own version anyway;
        // negotiating keeps request bodies within what that version understands.
        let docker = docker.negotiate_version().await.map_err(unreachable)?;
        Ok(DockerEngine { docker, endpoint })
    }

    /// Turns a bollard error into an [`EngineError`], naming what was being done to which object.
    fn error(&self, err: BollardError, action: &str, object: &str) -> EngineError {
        match err {
            BollardError::DockerResponseServerError {
                status_code,
                message,
            } => EngineError::api(action, object, Some(status_code), message),
            BollardError::SocketNotFoundError(_)
            | BollardError::HyperLegacyError { .. }
            | BollardError::RequestTimeoutError => EngineError::Unreachable {
                endpoint: self.endpoint.clone(),
                reason: err.to_string(),
            },
            other => EngineError::api(action, object, None, other.to_string()),
        }
    }

    /// Like [`Self::error`], but a 404 becomes [`EngineError::NotFound`].
    fn error_or_missing(
        &self,
        err: BollardError,
        action: &str,
        kind: &'static str,
        name: &str,
    ) -> EngineError {
        match self.error(err, action, name) {
            EngineError::Api {
                status: Some(404), ..
            } => EngineError::NotFound {
                kind,
                name: name.to_string(),
            },
            other => other,
        }
    }

    /// Removes a container that failed to start; the start error is what the caller needs, so
    /// a failure here is only noted in it.
    async fn discard(&self, container: &str, start_error: EngineError) -> EngineError {
        match self.remove_container(container).await {
            Ok(()) => start_error,
            Err(e) => EngineError::api(
                "starting container",
                container,
                None,
                format!("{start_error}; removing it then failed too: {e}"),
            ),
        }
    }

    /// Fails with [`EngineError::ImageMissing`] unless the build's base image is local: the engine
    /// would otherwise try a registry (even with pull=false) and fail with a DNS error offline.
    async fn require_base_image(&self, spec: &ImageSpec) -> Result<(), EngineError> {
        if spec.base_image.is_empty() {
            return Ok(());
        }
        match self.image_info(&spec.base_image).await? {
            Some(_) => Ok(()),
            None => Err(EngineError::base_image_missing(&spec.base_image, &spec.tag)),
        }
    }
}

impl Engine for DockerEngine {
    async fn list_containers(
        &self,
        filter: &LabelFilter,
    ) -> Result<Vec<ObservedContainer>, EngineError> {
        let filters = HashMap::from([("label", filter.to_engine())]);
        let options = ListContainersOptionsBuilder::new()
            .all(true)
            .filters(&filters)
            .build();
        let summaries = self
            .docker
            .list_containers(Some(options))
            .await
            .map_err(|e| self.error(e, "listing containers with labels", &filter.to_string()))?;
        Ok(summaries.into_iter().map(observed_container).collect())
    }

    async fn container_pid(&self, container: &str) -> Result<Option<(String, u32)>, EngineError> {
        let inspect = self
            .docker
            .inspect_container(container, None)
            .await
            .map_err(|e| {
                self.error_or_missing(e, "inspecting container", "container", container)
            })?;
        let pid = inspect.state.and_then(|s| s.pid);
        Ok(inspect
            .id
            .zip(pid.and_then(|p| u32::try_from(p).ok()).filter(|p| *p > 0)))
    }

    async fn create_container(&self, spec: &ContainerSpec) -> Result<String, EngineError> {
        let options = bollard::query_parameters::CreateContainerOptionsBuilder::new()
            .name(&spec.name)
            .build();
        match self
            .docker
            .create_container(Some(options), container_body(spec))
            .await
        {
            Ok(created) => Ok(created.id),
            Err(e) => Err(match self.error(e, "creating container", &spec.name) {
                EngineError::Api {
                    status: Some(404),
                    message,
                    ..
                } if message.contains("image") => {
                    EngineError::container_image_missing(&spec.image, &spec.name)
                }
                other => other,
            }),
        }
    }

    async fn start_container(&self, container: &str) -> Result<(), EngineError> {
        let err = match self.docker.start_container(container, None).await {
            Ok(()) => return Ok(()),
            Err(e) => self.error_or_missing(e, "starting container", "container", container),
        };
        let err = match err {
            EngineError::Api { message, .. } if is_port_conflict(&message) => {
                let busy = busy_address(&message);
                EngineError::PortAllocated {
                    container: container.to_string(),
                    host_ip: busy.as_ref().map(|(ip, _)| ip.clone()),
                    host_port: busy.map(|(_, port)| port),
                    detail: message,
                }
            }
            EngineError::NotFound { .. } | EngineError::Unreachable { .. } => return Err(err),
            other => other,
        };
        Err(self.discard(container, err).await)
    }

    async fn remove_container(&self, container: &str) -> Result<(), EngineError> {
        // force: the engine SIGKILLs a running container instead of stopping it with a grace period.
        let options = RemoveContainerOptionsBuilder::new()
            .force(true)
            .v(false)
            .build();
        match self.docker.remove_container(container, Some(options)).await {
            Ok(()) => Ok(()),
            Err(e) => {
                match self.error_or_missing(e, "removing container", "container", container) {
                    EngineError::NotFound { .. } => Ok(()),
                    // A concurrent removal of the same container (e.g. an auto-removed one).
                    EngineError::Api {
                        status: Some(409),
                        message,
                        ..
                    } if message.contains("already in progress") => Ok(()),
                    other => Err(other),
                }
            }
        }
    }

    async fn find_networks(
        &self,
        filter: &LabelFilter,
    ) -> Result<Vec<ObservedNetwork>, EngineError> {
        let filters = HashMap::from([("label", filter.to_engine())]);
        let options = ListNetworksOptionsBuilder::new().filters(&filters).build();
        let networks = self
            .docker
            .list_networks(Some(options))
            .await
            .map_err(|e| self.error(e, "listing networks with labels", &filter.to_string()))?;
        Ok(networks.into_iter().map(observed_network).collect())
    }

    async fn create_network(&self, spec: &NetworkSpec) -> Result<String, EngineError> {
        let all = self.find_networks(&LabelFilter::new()).await?;
        if let Some(id) = check_new_network(spec, &all)? {
            return Ok(id);
        }
        match self.docker.create_network(network_body(spec)).await {
            Ok(created) => Ok(created.id),
            Err(e) => self.network_create_error(spec, e).await,
        }
    }

    async fn remove_network(&self, id_or_name: &str) -> Result<(), EngineError> {
        match self.docker.remove_network(id_or_name).await {
            Ok(()) => Ok(()),
            Err(e) => match self.error_or_missing(e, "removing network", "network", id_or_name) {
                EngineError::NotFound { .. } => Ok(()),
                other => Err(other),
            },
        }
    }

    async fn list_volumes(&self, filter: &LabelFilter) -> Result<Vec<ObservedVolume>, EngineError> {
        let filters = HashMap::from([("label", filter.to_engine())]);
        let options = ListVolumesOptionsBuilder::new().filters(&filters).build();
        let list = self
            .docker
            .list_volumes(Some(options))
            .await
            .map_err(|e| self.error(e, "listing volumes with labels", &filter.to_string()))?;
        let volumes = list.volumes.unwrap_or_default().into_iter();
        Ok(volumes
            .map(|v| ObservedVolume {
                name: v.name,
                labels: v.labels.into_iter().collect(),
            })
            .collect())
    }

    async fn create_volume(&self, spec: &VolumeSpec) -> Result<(), EngineError> {
        let body = VolumeCreateRequest {
            name: Some(spec.name.clone()),
            labels: Some(to_hash_map(&spec.labels)),
            ..Default::default()
        };
        self.docker
            .create_volume(body)
            .await
            .map_err(|e| self.error(e, "creating volume", &spec.name))?;
        Ok(())
    }

    async fn remove_volume(&self, name: &str) -> Result<(), EngineError> {
        let options = RemoveVolumeOptionsBuilder::new().force(false).build();
        match self.docker.remove_volume(name, Some(options)).await {
            Ok(()) => Ok(()),
            Err(e) => match self.error_or_missing(e, "removing volume", "volume", name) {
                EngineError::NotFound { .. } => Ok(()),
                other => Err(other),
            },
        }
    }

    async fn image_info(&self, tag: &str) -> Result<Option<ImageInfo>, EngineError> {
        match self.docker.inspect_image(tag).await {
            Ok(image) => Ok(Some(ImageInfo {
                id: image.id.unwrap_or_default(),
                labels: image
                    .config
                    .and_then(|c| c.labels)
                    .unwrap_or_default()
                    .into_iter()
                    .collect(),
            })),
            Err(e) => match self.error_or_missing(e, "inspecting image", "image", tag) {
                EngineError::NotFound { .. } => Ok(None),
                other => Err(other),
            },
        }
    }

    async fn pull_image<F>(&self, image: &str, mut progress: F) -> Result<(), EngineError>
    where
        F: FnMut(&str) + Send,
    {
        let (name, tag) = split_tag(image);
        let options = CreateImageOptionsBuilder::new()
            .from_image(name)
            .tag(tag)
            .build();
        let failed = |reason: String| EngineError::PullFailed {
            image: image.to_string(),
            needed_by: String::new(),
            reason,
            base: false,
        };
        let mut stream = std::pin::pin!(self.docker.create_image(Some(options), None, None));
        let mut last = String::new();
        while let Some(item) = stream.next().await {
            let info = match item {
                Ok(info) => info,
                Err(BollardError::DockerStreamError { error }) => return Err(failed(error)),
                Err(BollardError::DockerResponseServerError { message, .. }) => {
                    return Err(failed(message))
                }
                Err(e) => return Err(failed(e.to_string())),
            };
            if let Some(detail) = info.error_detail.and_then(|d| d.message) {
                return Err(failed(detail));
            }
            let line = match (info.id, info.status) {
                (Some(id), Some(status)) => format!("{id}: {status}"),
                (None, Some(status)) => status,
                _ => continue,
            };
            // Byte counts arrive many times a second; a status change is what is worth showing.
            if line != last {
                progress(&line);
                last = line;
            }
        }
        match self.image_info(image).await? {
            Some(_) => Ok(()),
            None => Err(failed("the pull ended but left no image".into())),
        }
    }

    async fn build_image<F>(&self, spec: &ImageSpec, mut progress: F) -> Result<String, EngineError>
    where
        F: FnMut(&str) + Send,
    {
        self.require_base_image(spec).await?;
        let context = context_tar(spec).await?;
        let stream = self.docker.build_image(
            build_options(spec),
            None,
            Some(bollard::body_full(context.into())),
        );
        follow_build(stream, &mut progress)
            .await
            .map_err(|e| match e {
                BuildError::Step(message, output) => EngineError::BuildFailed {
                    tag: spec.tag.clone(),
                    message,
                    output,
                },
                BuildError::Api(e) => self.error(e, "building image", &spec.tag),
            })?;
        match self.image_info(&spec.tag).await? {
            Some(image) => Ok(image.id),
            None => Err(EngineError::api(
                "building image",
                &spec.tag,
                None,
                "the build ended but left no image",
            )),
        }
    }

    async fn copy_from_image(
        &self,
        image: &str,
        path: &str,
        dest: &Path,
    ) -> Result<Vec<PathBuf>, EngineError> {
        let body = ContainerCreateBody {
            image: Some(image.to_string()),
            // Never run: it only has to exist, so any command will do, even in a `FROM scratch` image.
            cmd: Some(vec!["lab-copy-from-image".to_string()]),
            labels: Some(HashMap::from([(
                LABEL_COPY_FROM_IMAGE.to_string(),
                path.to_string(),
            )])),
            network_disabled: Some(true),
            ..Default::default()
        };
        let created = match self
            .docker
            .create_container(None::<CreateContainerOptions>, body)
            .await
        {
            Ok(created) => created,
            Err(e) => {
                return Err(
                    match self.error(e, "creating a container to copy from image", image) {
                        EngineError::Api {
                            status: Some(404), ..
                        } => EngineError::export_image_missing(image, path),
                        other => other,
                    },
                )
            }
        };
        let archive = self
            .download(&created.id, path, &format!("{path} in image {image}"))
            .await;
        let removed = self.remove_container(&created.id).await;
        let archive = archive?;
        removed?;
        let dest_dir = dest.to_path_buf();
        let unpacked =
            tokio::task::spawn_blocking(move || super::export::unpack_files(&archive, &dest_dir))
                .await;
        let what = format!("{} (copied from {path} in image {image})", dest.display());
        match unpacked {
            Ok(Ok(files)) => Ok(files),
            Ok(Err(e)) => Err(EngineError::api("writing", &what, None, e.to_string())),
            Err(e) => Err(EngineError::api(
                "writing",
                &what,
                None,
                format!("the copy panicked: {e}"),
            )),
        }
    }

    async fn logs(&self, container: &str, tail: Option<usize>) -> Result<String, EngineError> {
        let tail = tail
            .map(|n| n.to_string())
            .unwrap_or_else(|| "all".to_string());
        let options = LogsOptionsBuilder::new()
            .stdout(true)
            .stderr(true)
            .tail(&tail)
            .build();
        self.read_logs(container, options).await
    }

    async fn logs_since(&self, container: &str, since: Option<i64>) -> Result<String, EngineError> {
        let since = since.map_or(0, |s| i32::try_from(s).unwrap_or(i32::MAX));
        let options = LogsOptionsBuilder::new()
            .stdout(true)
            .stderr(true)
            .timestamps(true)
            .since(since)
            .build();
        self.read_logs(container, options).await
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
        let tail = tail
            .map(|n| n.to_string())
            .unwrap_or_else(|| "all".to_string());
        let options = LogsOptionsBuilder::new()
            .stdout(true)
            .stderr(true)
            .follow(true)
            .tail(&tail)
            .build();
        let mut stream = self.docker.logs(container, Some(options));
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(|e| {
                self.error_or_missing(e, "following logs of", "container", container)
            })?;
            each(&String::from_utf8_lossy(&chunk.into_bytes()));
        }
        Ok(())
    }

    async fn exec(&self, container: &str, argv: &[String]) -> Result<ExecOutput, EngineError> {
        let mut output = String::new();
        let exit_code = self
            .run_exec(container, argv, None, |bytes| {
                output.push_str(&String::from_utf8_lossy(bytes))
            })
            .await?;
        Ok(ExecOutput { exit_code, output })
    }

    async fn exec_attached<F>(
        &self,
        container: &str,
        argv: &[String],
        input: tokio::sync::mpsc::Receiver<Vec<u8>>,
        each: F,
    ) -> Result<i64, EngineError>
    where
        F: FnMut(&[u8]) + Send,
    {
        self.run_exec(container, argv, Some(input), each).await
    }

    async fn read_file(&self, container: &str, path: &str) -> Result<Vec<u8>, EngineError> {
        let what = format!("{path} in container {container}");
        let archive = self.download(container, path, &what).await?;
        super::export::first_file(&archive)
            .map_err(|e| EngineError::api("unpacking", &what, None, e.to_string()))?
            .ok_or(EngineError::NotFound {
                kind: "file",
                name: what,
            })
    }
}

impl DockerEngine {
    /// What a failed network create means. "Pool overlaps" names no network: something made
    /// one since we looked. If that is this very network (same name and subnet, made by another
    /// `lab up` of the same lab, e.g. one not holding the lab lock such as an older lab), it is
    /// reused; otherwise the error names the other network.
    async fn network_create_error(
        &self,
        spec: &NetworkSpec,
        err: BollardError,
    ) -> Result<String, EngineError> {
        let err = self.error(err, "creating network", &spec.name);
        let EngineError::Api { message, .. } = &err else {
            return Err(err);
        };
        if !message.contains("overlaps") {
            return Err(err);
        }
        // The network that overlaps may be one being made right now (another `lab up` of this
        // lab, or one killed mid-way whose create the engine still finishes): it is not listed
        // yet, or its pool is freed a moment later. Look again, and create again, for a while.
        for _ in 0..15 {
            match self.find_networks(&LabelFilter::new()).await {
                Ok(all) => match check_new_network(spec, &all) {
                    Ok(Some(id)) => return Ok(id),
                    Err(named) => return Err(named),
                    Ok(None) => {}
                },
                Err(_) => return Err(err),
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
            if let Ok(created) = self.docker.create_network(network_body(spec)).await {
                return Ok(created.id);
            }
        }
        Err(err)
    }

    /// The engine's tar archive of `path` in a container (created, running or stopped), in
    /// memory: lab copies small files this way (kernels, initramfs images, console logs). `what`
    /// names the path for messages; a missing path is [`EngineError::NotFound`].
    async fn download(
        &self,
        container: &str,
        path: &str,
        what: &str,
    ) -> Result<Vec<u8>, EngineError> {
        let options = DownloadFromContainerOptionsBuilder::new()
            .path(path)
            .build();
        let mut stream = self
            .docker
            .download_from_container(container, Some(options));
        let mut archive = Vec::new();
        while let Some(chunk) = stream.next().await {
            let bytes = chunk.map_err(|e| self.error_or_missing(e, "copying", "path", what))?;
            archive.extend_from_slice(&bytes);
        }
        Ok(archive)
    }

    /// The container's logs with `options`, read to the end.
    async fn read_logs(
        &self,
        container: &str,
        options: bollard::query_parameters::LogsOptions,
    ) -> Result<String, EngineError> {
        let mut stream = self.docker.logs(container, Some(options));
        let mut text = String::new();
        while let Some(chunk) = stream.next().await {
            let chunk = chunk
                .map_err(|e| self.error_or_missing(e, "reading logs of", "container", container))?;
            text.push_str(&String::from_utf8_lossy(&chunk.into_bytes()));
        }
        Ok(text)
    }

    /// Runs `argv` in a running container, its output to `each`; with `input`, attached to its
    /// stdin, which is closed when `input` closes. Returns the exit code.
    async fn run_exec<F>(
        &self,
        container: &str,
        argv: &[String],
        input: Option<tokio::sync::mpsc::Receiver<Vec<u8>>>,
        mut each: F,
    ) -> Result<i64, EngineError>
    where
        F: FnMut(&[u8]) + Send,
    {
        use tokio::io::AsyncWriteExt;
        let id = self.create_exec(container, argv, input.is_some()).await?;
        let what = format!("{} in container {container}", argv.join(" "));
        let started = self
            .docker
            .start_exec(&id, None)
            .await
            .map_err(|e| self.error(e, "running", &what))?;
        let StartExecResults::Attached {
            output: mut stream,
            input: mut stdin,
        } = started
        else {
            return Err(EngineError::api(
                "attaching to",
                &what,
                None,
                "the engine ran it detached",
            ));
        };
        // Feeds stdin until `input` closes, then closes it (the command sees end of file).
        let feeder = input.map(|mut input| {
            tokio::spawn(async move {
                while let Some(bytes) = input.recv().await {
                    if stdin.write_all(&bytes).await.is_err() || stdin.flush().await.is_err() {
                        return;
                    }
                }
                let _ = stdin.shutdown().await;
            })
        });
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(|e| self.error(e, "reading the output of", &what))?;
            each(&chunk.into_bytes());
        }
        if let Some(feeder) = feeder {
            feeder.abort();
        }
        self.exec_exit_code(&id, &what).await
    }

    async fn create_exec(
        &self,
        container: &str,
        argv: &[String],
        stdin: bool,
    ) -> Result<String, EngineError> {
        let options = CreateExecOptions {
            attach_stdin: Some(stdin),
            attach_stdout: Some(true),
            attach_stderr: Some(true),
            cmd: Some(argv.to_vec()),
            ..Default::default()
        };
        match self.docker.create_exec(container, options).await {
            Ok(created) => Ok(created.id),
            Err(e) => Err(
                match self.error_or_missing(e, "starting a command in", "container", container) {
                    EngineError::Api {
                        status: Some(409), ..
                    } => EngineError::NotRunning {
                        container: container.to_string(),
                    },
                    other => other,
                },
            ),
        }
    }

    /// The exit code of a finished exec. The output stream can end a moment before the engine
    /// records the exit, so a still-`running` exec is asked again briefly.
    async fn exec_exit_code(&self, id: &str, what: &str) -> Result<i64, EngineError> {
        for _ in 0..50 {
            let inspect = self
                .docker
                .inspect_exec(id)
                .await
                .map_err(|e| self.error(e, "inspecting", what))?;
            match (inspect.running, inspect.exit_code) {
                (Some(true), _) | (_, None) => tokio::time::sleep(Duration::from_millis(20)).await,
                (_, Some(code)) => return Ok(code),
            }
        }
        Err(EngineError::api(
            "waiting for",
            what,
            None,
            "the command's output ended but it did not exit within 1 s",
        ))
    }
}

fn observed_container(summary: ContainerSummary) -> ObservedContainer {
    let state = summary
        .state
        .map(|s| ContainerState::from_engine(s.as_ref()))
        .unwrap_or(ContainerState::Unknown);
    let mut networks: BTreeMap<String, EndpointSettings> = summary
        .network_settings
        .and_then(|s| s.networks)
        .unwrap_or_default()
        .into_iter()
        .collect();
    let network = networks.keys().next().cloned();
    let ip = network
        .as_ref()
        .and_then(|n| networks.remove(n))
        .and_then(|e| e.ip_address)
        .and_then(|ip| ip.parse().ok());
    let mut ports: Vec<PortBinding> = summary
        .ports
        .unwrap_or_default()
        .iter()
        .filter_map(published_port)
        .collect();
    ports.sort_by_key(|p| (p.host_ip, p.host_port, p.container_port, p.protocol));
    ports.dedup();
    let name = summary
        .names
        .unwrap_or_default()
        .into_iter()
        .next()
        .unwrap_or_default();
    ObservedContainer {
        id: summary.id.unwrap_or_default(),
        name: name.trim_start_matches('/').to_string(),
        image: summary.image.unwrap_or_default(),
        labels: summary.labels.unwrap_or_default().into_iter().collect(),
        running: state == ContainerState::Running,
        state,
        network,
        ip,
        ports,
    }
}

/// A port the engine reports as published on the host; unpublished (exposed only) ports and
/// protocols lab never uses are skipped.
fn published_port(port: &PortSummary) -> Option<PortBinding> {
    let protocol = match port.typ {
        Some(PortSummaryTypeEnum::TCP) => Proto::Tcp,
        Some(PortSummaryTypeEnum::UDP) => Proto::Udp,
        _ => return None,
    };
    Some(PortBinding {
        host_ip: port.ip.as_deref()?.parse::<IpAddr>().ok()?,
        host_port: port.public_port?,
        container_port: port.private_port,
        protocol,
    })
}

fn observed_network(network: Network) -> ObservedNetwork {
    let configs = network
        .ipam
        .and_then(|ipam| ipam.config)
        .unwrap_or_default();
    ObservedNetwork {
        id: network.id.unwrap_or_default(),
        name: network.name.unwrap_or_default(),
        subnets: configs.into_iter().filter_map(|c| c.subnet).collect(),
        labels: network.labels.unwrap_or_default().into_iter().collect(),
    }
}

fn network_body(spec: &NetworkSpec) -> NetworkCreateRequest {
    let ipam = IpamConfig {
        subnet: Some(spec.subnet.to_string()),
        gateway: Some(spec.gateway.to_string()),
        ..Default::default()
    };
    NetworkCreateRequest {
        name: spec.name.clone(),
        driver: Some("bridge".to_string()),
        ipam: Some(Ipam {
            driver: Some("default".to_string()),
            config: Some(vec![ipam]),
            options: None,
        }),
        labels: Some(to_hash_map(&spec.labels)),
        ..Default::default()
    }
}

fn container_body(spec: &ContainerSpec) -> ContainerCreateBody {
    let exposed = spec
        .ports
        .iter()
        .map(port_key)
        .collect::<std::collections::BTreeSet<_>>();
    ContainerCreateBody {
        image: Some(spec.image.clone()),
        hostname: Some(spec.hostname.clone()),
        env: Some(spec.env.clone()),
        cmd: spec.command.clone(),
        labels: Some(to_hash_map(&spec.labels)),
        exposed_ports: Some(exposed.into_iter().collect()),
        stop_timeout: Some(STOP_TIMEOUT_SECS),
        host_config: Some(host_config(spec)),
        networking_config: Some(networking_config(spec)),
        ..Default::default()
    }
}

fn host_config(spec: &ContainerSpec) -> HostConfig {
    let restart = if spec.restart {
        RestartPolicyNameEnum::UNLESS_STOPPED
    } else {
        RestartPolicyNameEnum::NO
    };
    HostConfig {
        network_mode: Some(spec.network.clone()),
        port_bindings: Some(port_map(spec)),
        devices: Some(spec.devices.iter().map(|d| device(d)).collect()),
        cap_add: Some(spec.cap_add.clone()),
        mounts: Some(spec.mounts.iter().map(mount).collect()),
        init: Some(spec.init),
        restart_policy: Some(RestartPolicy {
            name: Some(restart),
            maximum_retry_count: None,
        }),
        ..Default::default()
    }
}

/// A static address needs the endpoint's IPAM config, not just `network_mode`.
fn networking_config(spec: &ContainerSpec) -> NetworkingConfig {
    let endpoint = EndpointSettings {
        ipam_config: Some(EndpointIpamConfig {
            ipv4_address: Some(spec.ip.to_string()),
            ..Default::default()
        }),
        ..Default::default()
    };
    NetworkingConfig {
        endpoints_config: Some(HashMap::from([(spec.network.clone(), endpoint)])),
    }
}

fn port_key(port: &PortBinding) -> String {
    format!("{}/{}", port.container_port, port.protocol.as_str())
}

/// Several host ports may forward to one container port, so bindings are grouped by it.
fn port_map(spec: &ContainerSpec) -> PortMap {
    let mut map: PortMap = HashMap::new();
    for port in &spec.ports {
        let binding = DockerPortBinding {
            host_ip: Some(port.host_ip.to_string()),
            host_port: Some(port.host_port.to_string()),
        };
        map.entry(port_key(port))
            .or_insert_with(|| Some(Vec::new()))
            .get_or_insert_with(Vec::new)
            .push(binding);
    }
    map
}

fn device(path: &str) -> DeviceMapping {
    DeviceMapping {
        path_on_host: Some(path.to_string()),
        path_in_container: Some(path.to_string()),
        cgroup_permissions: Some("rwm".to_string()),
    }
}

/// Mounts rather than binds: a missing host path is an error instead of a silently created
/// empty directory.
fn mount(m: &crate::plan::Mount) -> DockerMount {
    let typ = match m.kind {
        MountKind::Bind => MountType::BIND,
        MountKind::Volume => MountType::VOLUME,
    };
    DockerMount {
        typ: Some(typ),
        source: Some(m.source.clone()),
        target: Some(m.target.clone()),
        read_only: Some(m.read_only),
        ..Default::default()
    }
}

fn to_hash_map(labels: &Labels) -> HashMap<String, String> {
    labels.iter().map(|(k, v)| (k.clone(), v.clone())).collect()
}

/// Build options: tag, `BASE_IMAGE`, labels (with the context hash, so a later `image_info` can
/// tell whether the image is current), and intermediate containers removed even when a step fails.
fn build_options(spec: &ImageSpec) -> bollard::query_parameters::BuildImageOptions {
    let mut labels = to_hash_map(&spec.labels);
    labels
        .entry(LABEL_CONTEXT_HASH.to_string())
        .or_insert_with(|| spec.context_hash.clone());
    // Lab's own Dockerfiles take their base as an argument; a user's names its own.
    let args = if spec.builtin {
        HashMap::from([("BASE_IMAGE".to_string(), spec.base_image.clone())])
    } else {
        HashMap::new()
    };
    BuildImageOptionsBuilder::new()
        .dockerfile("Dockerfile")
        .t(&spec.tag)
        .buildargs(&args)
        .labels(&labels)
        .rm(true)
        .forcerm(true)
        .build()
}

/// `NAME[:TAG]` as the pull API wants it: the name, and the tag (`latest` when none). A `:` in
/// a registry's `host:port` is not a tag; a digest (`@sha256:...`) stays in the name.
fn split_tag(image: &str) -> (&str, &str) {
    if image.contains('@') {
        return (image, "");
    }
    match image.rsplit_once(':') {
        Some((name, tag)) if !tag.contains('/') => (name, tag),
        _ => (image, "latest"),
    }
}

/// The build context as an in-memory tar, made off the async threads since it reads files.
async fn context_tar(spec: &ImageSpec) -> Result<Vec<u8>, EngineError> {
    let dir = spec.context.clone();
    let failed = |message: String| EngineError::BuildFailed {
        tag: spec.tag.clone(),
        message,
        output: Vec::new(),
    };
    match tokio::task::spawn_blocking(move || tar_dir(dir)).await {
        Ok(Ok(bytes)) => Ok(bytes),
        Ok(Err(e)) => Err(failed(format!(
            "cannot read build context {}: {e}",
            spec.context.display()
        ))),
        Err(e) => Err(failed(format!(
            "packing build context {} panicked: {e}",
            spec.context.display()
        ))),
    }
}

fn tar_dir(dir: PathBuf) -> std::io::Result<Vec<u8>> {
    if !dir.is_dir() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::NotFound,
            "not a directory",
        ));
    }
    let mut builder = tar::Builder::new(Vec::new());
    builder.follow_symlinks(true);
    builder.append_dir_all(".", &dir)?;
    builder.into_inner()
}

enum BuildError {
    /// A step failed: the engine's message and the last lines of output.
    Step(String, Vec<String>),
    Api(BollardError),
}

/// Follows the build stream, passing each output line to `progress` and keeping the last ones.
/// A failing step arrives as an error item (bollard turns `errorDetail` into `DockerStreamError`).
async fn follow_build<S, F>(stream: S, progress: &mut F) -> Result<(), BuildError>
where
    S: Stream<Item = Result<BuildInfo, BollardError>>,
    F: FnMut(&str) + Send,
{
    let mut stream = std::pin::pin!(stream);
    let mut tail: VecDeque<String> = VecDeque::with_capacity(BUILD_TAIL_LINES);
    while let Some(item) = stream.next().await {
        let info = match item {
            Ok(info) => info,
            Err(BollardError::DockerStreamError { error }) => {
                return Err(BuildError::Step(error, tail.into()))
            }
            Err(e) => return Err(BuildError::Api(e)),
        };
        for line in build_lines(&info) {
            progress(&line);
            if tail.len() == BUILD_TAIL_LINES {
                tail.pop_front();
            }
            tail.push_back(line);
        }
    }
    Ok(())
}

/// The human-readable lines of one build stream item (`stream` text, or a pull `status`).
fn build_lines(info: &BuildInfo) -> Vec<String> {
    let text = info
        .stream
        .as_deref()
        .or(info.status.as_deref())
        .unwrap_or("");
    text.lines()
        .map(str::trim_end)
        .filter(|l| !l.is_empty())
        .map(str::to_string)
        .collect()
}
