//! Live: the Docker [`Engine`] implementation against a real engine.
//!
//! Each test uses its own names (`lt-<pid>-<random>-...`), labels, a subnet in 10.214.x.0/24 and
//! high host ports on 127.0.0.1, so tests run side by side (and beside other live tests). A
//! [`Cleanup`] guard removes what a test made even when it fails. Without an engine the tests fail
//! with a clear message, unless `LAB_SKIP_LIVE=1`, in which case they say so and pass.

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, TcpListener, UdpSocket};
use std::path::Path;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use bollard::query_parameters::RemoveImageOptionsBuilder;
use metal_lab::engine::{ContainerState, DockerEngine, Engine, EngineError, LabelFilter};
use metal_lab::lab::Proto;
use metal_lab::plan::{
    ContainerSpec, ImageSpec, Mount, MountKind, NetworkSpec, PortBinding, Role, VolumeSpec,
    LABEL_CONTEXT_HASH, LABEL_LAB,
};

/// A connected engine, or `None` (after saying so) when `LAB_SKIP_LIVE=1` and none answers.
async fn engine_or_skip(test: &str) -> Option<DockerEngine> {
    match DockerEngine::connect().await {
        Ok(engine) => Some(engine),
        Err(err) if std::env::var("LAB_SKIP_LIVE").as_deref() == Ok("1") => {
            eprintln!("{test}: skipped (LAB_SKIP_LIVE=1 and no engine answers: {err})");
            None
        }
        Err(err) => panic!(
            "{test}: this live test needs a Docker engine and none answers:\n{err}\n\
             (set LAB_SKIP_LIVE=1 to skip live tests)"
        ),
    }
}

/// A pseudo-random number without a crate: the std hasher is randomly keyed per process.
fn random() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        Instant::now().elapsed().as_nanos()
            ^ std::time::SystemTime::UNIX_EPOCH
                .elapsed()
                .map(|d| d.as_nanos())
                .unwrap_or(0),
    );
    h.finish()
}

/// Names, labels and cleanup of one test.
struct Test {
    prefix: String,
    cleanup: Cleanup,
}

impl Test {
    fn new(what: &str) -> Test {
        let prefix = format!(
            "lt-{}-{:06x}-{what}",
            std::process::id(),
            random() % 0xff_ffff
        );
        Test {
            prefix,
            cleanup: Cleanup::default(),
        }
    }

    fn name(&self, what: &str) -> String {
        format!("{}-{what}", self.prefix)
    }

    /// Every object a test makes carries these, so a leftover is easy to find and attribute.
    fn labels(&self) -> BTreeMap<String, String> {
        BTreeMap::from([
            (LABEL_LAB.to_string(), self.prefix.clone()),
            ("io.metal-lab.test".to_string(), "engine-live".to_string()),
        ])
    }

    fn filter(&self) -> LabelFilter {
        LabelFilter::new().with(LABEL_LAB, &self.prefix)
    }

    /// Creates a network on a free 10.214.x.0/24 (others may hold some of them).
    async fn network(&self, engine: &DockerEngine, what: &str) -> (NetworkSpec, String) {
        for _ in 0..60 {
            let x = (random() % 256) as u8;
            let spec = NetworkSpec {
                name: self.name(what),
                subnet: format!("10.214.{x}.0/24").parse().expect("subnet"),
                gateway: Ipv4Addr::new(10, 214, x, 1),
                labels: self.labels(),
            };
            match engine.create_network(&spec).await {
                Ok(id) => {
                    self.cleanup.add(&self.cleanup.networks, &id);
                    return (spec, id);
                }
                Err(EngineError::SubnetOverlap { .. }) => continue,
                Err(e) => panic!("creating network {}: {e}", spec.name),
            }
        }
        panic!("no free 10.214.x.0/24 subnet found in 60 tries");
    }

    /// A container spec on `net` with one published TCP port, running `sleep infinity` under init.
    fn container(&self, what: &str, net: &NetworkSpec, host: u8, port: u16) -> ContainerSpec {
        let name = self.name(what);
        self.cleanup.add(&self.cleanup.containers, &name);
        ContainerSpec {
            name: name.clone(),
            lab_name: what.to_string(),
            role: Role::Service,
            image: "debian:bookworm-slim".to_string(),
            hostname: what.to_string(),
            network: net.name.clone(),
            ip: host_ip(net, host),
            ports: vec![binding(port, 8080, Proto::Tcp)],
            devices: vec![],
            cap_add: vec![],
            mounts: vec![],
            env: vec![],
            command: Some(argv(&["sleep", "infinity"])),
            restart: false,
            init: true,
            labels: self.labels(),
        }
    }
}

fn host_ip(net: &NetworkSpec, host: u8) -> Ipv4Addr {
    let [a, b, c, _] = net.subnet.network().octets();
    Ipv4Addr::new(a, b, c, host)
}

fn binding(host_port: u16, container_port: u16, protocol: Proto) -> PortBinding {
    PortBinding {
        host_ip: "127.0.0.1".parse().expect("ip"),
        host_port,
        container_port,
        protocol,
    }
}

fn argv(words: &[&str]) -> Vec<String> {
    words.iter().map(|w| w.to_string()).collect()
}

/// A block of `n` consecutive ports free for TCP and UDP on 127.0.0.1, from 20000 up.
fn free_ports(n: u16) -> u16 {
    loop {
        let base = 20000 + (random() % 40000) as u16;
        let free = (base..base + n).all(|p| {
            TcpListener::bind(("127.0.0.1", p)).is_ok() && UdpSocket::bind(("127.0.0.1", p)).is_ok()
        });
        if free {
            return base;
        }
    }
}

/// Removes what a test made, in dependency order, when the test ends however it ends. Drop runs
/// inside the test's runtime, so it uses a thread with a runtime of its own.
#[derive(Default)]
struct Cleanup {
    containers: Mutex<Vec<String>>,
    networks: Mutex<Vec<String>>,
    volumes: Mutex<Vec<String>>,
    images: Mutex<Vec<String>>,
}

impl Cleanup {
    fn add(&self, list: &Mutex<Vec<String>>, name: &str) {
        list.lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(name.to_string());
    }

    fn take(list: &Mutex<Vec<String>>) -> Vec<String> {
        std::mem::take(&mut *list.lock().unwrap_or_else(|p| p.into_inner()))
    }
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        let (containers, networks) = (
            Cleanup::take(&self.containers),
            Cleanup::take(&self.networks),
        );
        let (volumes, images) = (Cleanup::take(&self.volumes), Cleanup::take(&self.images));
        let work = move || {
            let rt = tokio::runtime::Runtime::new().expect("cleanup runtime");
            rt.block_on(async {
                let Ok(engine) = DockerEngine::connect().await else {
                    return;
                };
                for c in &containers {
                    report(engine.remove_container(c).await, c);
                }
                for n in &networks {
                    report(engine.remove_network(n).await, n);
                }
                for v in &volumes {
                    report(engine.remove_volume(v).await, v);
                }
                let options = RemoveImageOptionsBuilder::new().force(true).build();
                let Ok(docker) = bollard::Docker::connect_with_defaults() else {
                    return;
                };
                for i in &images {
                    let _ = docker.remove_image(i, Some(options.clone()), None).await;
                }
            });
        };
        let _ = std::thread::spawn(work).join();
    }
}

fn report(result: Result<(), EngineError>, what: &str) {
    if let Err(e) = result {
        eprintln!("cleanup of {what} failed: {e}");
    }
}

#[tokio::test]
async fn engine_network_create_find_conflicts_and_remove() {
    let Some(engine) = engine_or_skip("engine_network_create_find_conflicts_and_remove").await
    else {
        return;
    };
    let t = Test::new("net");
    let (spec, id) = t.network(&engine, "a").await;

    let by_name: Vec<_> = engine
        .find_networks(&LabelFilter::new())
        .await
        .expect("find all")
        .into_iter()
        .filter(|n| n.name == spec.name)
        .collect();
    assert_eq!(by_name.len(), 1);
    assert_eq!(
        (by_name[0].id.as_str(), by_name[0].subnets.clone()),
        (id.as_str(), vec![spec.subnet.to_string()])
    );
    assert_eq!(by_name[0].labels, t.labels());
    let by_labels = engine
        .find_networks(&t.filter())
        .await
        .expect("find by labels");
    assert_eq!(by_labels.len(), 1);

    // The same network again: reused, not duplicated (the engine itself would make a second one).
    assert_eq!(
        engine.create_network(&spec).await.expect("create again"),
        id
    );
    assert_eq!(
        engine
            .find_networks(&LabelFilter::new())
            .await
            .expect("find")
            .iter()
            .filter(|n| n.name == spec.name)
            .count(),
        1
    );

    let x = spec.subnet.network().octets()[2];
    let moved = NetworkSpec {
        subnet: format!("10.214.{}.0/24", x.wrapping_add(1))
            .parse()
            .expect("subnet"),
        ..spec.clone()
    };
    let err = engine
        .create_network(&moved)
        .await
        .expect_err("same name, other subnet");
    assert_eq!(
        err,
        EngineError::NetworkNameTaken {
            name: spec.name.clone(),
            existing: spec.subnet.to_string(),
            wanted: moved.subnet.to_string()
        }
    );

    let overlapping = NetworkSpec {
        name: t.name("b"),
        subnet: format!("10.214.{x}.128/25").parse().expect("subnet"),
        gateway: Ipv4Addr::new(10, 214, x, 129),
        labels: t.labels(),
    };
    t.cleanup.add(&t.cleanup.networks, &overlapping.name);
    let err = engine
        .create_network(&overlapping)
        .await
        .expect_err("overlap");
    assert_eq!(
        err,
        EngineError::SubnetOverlap {
            network: overlapping.name.clone(),
            subnet: overlapping.subnet.to_string(),
            other: spec.name.clone(),
            other_subnet: spec.subnet.to_string(),
        }
    );
    eprintln!("overlap error as the user sees it: {err}");

    engine.remove_network(&id).await.expect("remove");
    engine
        .remove_network(&id)
        .await
        .expect("remove again is fine");
    assert!(engine
        .find_networks(&t.filter())
        .await
        .expect("find")
        .is_empty());
}

/// Writes a build context with `dockerfile` and a file `hello.txt` beside it.
fn context(dockerfile: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("Dockerfile"), dockerfile).expect("write Dockerfile");
    std::fs::write(
        dir.path().join("hello.txt"),
        "hello from the build context\n",
    )
    .expect("write hello.txt");
    dir
}

fn image_spec(t: &Test, what: &str, context: &Path, base: &str) -> ImageSpec {
    let tag = format!("{}/{what}:latest", t.prefix);
    t.cleanup.add(&t.cleanup.images, &tag);
    ImageSpec {
        tag,
        context: context.to_path_buf(),
        builtin: true,
        base_image: base.to_string(),
        context_hash: format!("hash-{}", t.prefix),
        labels: t.labels(),
    }
}

#[tokio::test]
async fn engine_build_image_with_label_and_context_file() {
    let Some(engine) = engine_or_skip("engine_build_image_with_label_and_context_file").await
    else {
        return;
    };
    let t = Test::new("build");
    let dir = context(
        "ARG BASE_IMAGE\nFROM ${BASE_IMAGE}\nLABEL from.dockerfile=yes\n\
         COPY hello.txt /hello.txt\nRUN grep -q 'build context' /hello.txt && echo context-file-ok\n",
    );
    let spec = image_spec(&t, "tiny", dir.path(), "debian:bookworm-slim");
    let mut lines = Vec::new();
    let id = engine
        .build_image(&spec, |line| lines.push(line.to_string()))
        .await
        .expect("build");
    assert!(
        lines.iter().any(|l| l.contains("context-file-ok")),
        "progress lines: {lines:#?}"
    );
    assert!(
        lines.iter().any(|l| l.starts_with("Step 1/")),
        "progress lines: {lines:#?}"
    );

    let image = engine
        .image_info(&spec.tag)
        .await
        .expect("inspect")
        .expect("image exists");
    assert_eq!(image.id, id);
    assert_eq!(image.labels.get(LABEL_LAB), Some(&t.prefix));
    assert_eq!(
        image.labels.get(LABEL_CONTEXT_HASH),
        Some(&spec.context_hash)
    );
    assert_eq!(
        image.labels.get("from.dockerfile").map(String::as_str),
        Some("yes")
    );
    assert_eq!(
        engine
            .image_info(&format!("{}/absent:latest", t.prefix))
            .await
            .expect("inspect"),
        None
    );
}

#[tokio::test]
async fn engine_failing_run_is_build_failed_with_its_output() {
    let Some(engine) = engine_or_skip("engine_failing_run_is_build_failed_with_its_output").await
    else {
        return;
    };
    let t = Test::new("buildfail");
    let dir = context("ARG BASE_IMAGE\nFROM ${BASE_IMAGE}\nRUN echo about-to-fail && exit 3\n");
    let spec = image_spec(&t, "broken", dir.path(), "debian:bookworm-slim");
    let err = engine
        .build_image(&spec, |_| {})
        .await
        .expect_err("RUN exits 3");
    let EngineError::BuildFailed {
        tag,
        message,
        output,
    } = &err
    else {
        panic!("expected BuildFailed, got {err}")
    };
    assert_eq!(tag, &spec.tag);
    assert!(message.contains("returned a non-zero code: 3"), "{message}");
    assert!(output.iter().any(|l| l == "about-to-fail"), "{output:#?}");
    eprintln!("build failure as the user sees it:\n{err}");
    assert_eq!(engine.image_info(&spec.tag).await.expect("inspect"), None);
}

#[tokio::test]
async fn engine_missing_base_image_is_typed_and_never_reaches_for_a_registry() {
    let Some(engine) =
        engine_or_skip("engine_missing_base_image_is_typed_and_never_reaches_for_a_registry").await
    else {
        return;
    };
    let t = Test::new("nobase");
    let dir = context("ARG BASE_IMAGE\nFROM ${BASE_IMAGE}\n");
    let base = format!("{}/no-such-base:1", t.prefix);
    let spec = image_spec(&t, "orphan", dir.path(), &base);
    let started = Instant::now();
    let err = engine
        .build_image(&spec, |line| panic!("no build should start, got {line}"))
        .await
        .expect_err("missing base");
    assert_eq!(err, EngineError::base_image_missing(&base, &spec.tag));
    let text = err.to_string();
    assert!(
        text.contains(&base) && text.contains(".ci/make-base-image"),
        "{text}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "took {:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn engine_container_is_created_as_specified_and_can_exec_log_and_be_removed_fast() {
    let Some(engine) = engine_or_skip("container_is_created_as_specified").await else {
        return;
    };
    let t = Test::new("ctr");
    let (net, _) = t.network(&engine, "net").await;
    let volume = VolumeSpec {
        name: t.name("data"),
        labels: t.labels(),
    };
    t.cleanup.add(&t.cleanup.volumes, &volume.name);
    engine.create_volume(&volume).await.expect("volume");
    let host_dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(host_dir.path().join("file"), "read-only content\n").expect("write");

    let port = free_ports(2);
    let mut spec = t.container("web", &net, 10, port);
    spec.ports.push(binding(port + 1, 623, Proto::Udp));
    spec.env = vec!["FOO=bar baz".to_string()];
    spec.cap_add = vec!["NET_ADMIN".to_string()];
    if Path::new("/dev/net/tun").exists() {
        spec.devices = vec!["/dev/net/tun".to_string()];
    }
    spec.restart = true;
    spec.mounts = vec![
        Mount {
            kind: MountKind::Bind,
            source: host_dir.path().display().to_string(),
            target: "/mnt/ro".into(),
            read_only: true,
        },
        Mount {
            kind: MountKind::Volume,
            source: volume.name.clone(),
            target: "/data".into(),
            read_only: false,
        },
    ];
    spec.command = Some(argv(&[
        "sh",
        "-c",
        "echo hello-out; echo hello-err >&2; exec sleep infinity",
    ]));

    let id = engine.create_container(&spec).await.expect("create");
    let err = engine
        .exec(&spec.name, &argv(&["true"]))
        .await
        .expect_err("not started yet");
    assert_eq!(
        err,
        EngineError::NotRunning {
            container: spec.name.clone()
        }
    );
    assert_eq!(
        engine.container_pid(&spec.name).await.expect("pid"),
        None,
        "not started yet"
    );
    engine.start_container(&spec.name).await.expect("start");
    check_pid(&engine, &spec, &id).await;

    check_inspect(&spec, &id).await;
    check_listing(&engine, &t, &spec).await;
    check_exec_and_logs(&engine, &spec).await;

    // The volume is in use: removing it is refused, with context.
    let err = engine
        .remove_volume(&volume.name)
        .await
        .expect_err("volume in use");
    assert!(
        matches!(
            err,
            EngineError::Api {
                status: Some(409),
                ..
            }
        ),
        "{err}"
    );

    let started = Instant::now();
    engine.remove_container(&spec.name).await.expect("remove");
    let took = started.elapsed();
    eprintln!("removing a running container took {took:?}");
    assert!(took < Duration::from_secs(2), "remove took {took:?}");
    assert!(engine
        .list_containers(&t.filter())
        .await
        .expect("list")
        .is_empty());
    engine
        .remove_container(&spec.name)
        .await
        .expect("removing again is fine");
    let err = engine.start_container(&spec.name).await.expect_err("gone");
    assert!(
        matches!(
            err,
            EngineError::NotFound {
                kind: "container",
                ..
            }
        ),
        "{err}"
    );
}

/// Everything in the spec, as the engine recorded it.
async fn check_inspect(spec: &ContainerSpec, id: &str) {
    use bollard::models::{MountType, RestartPolicyNameEnum};
    let docker = bollard::Docker::connect_with_defaults().expect("bollard client");
    let inspect = docker
        .inspect_container(&spec.name, None)
        .await
        .expect("inspect");
    assert_eq!(inspect.id.as_deref(), Some(id));
    let state = inspect.state.expect("state");
    assert_eq!(state.running, Some(true));
    let config = inspect.config.expect("config");
    assert_eq!(config.hostname.as_deref(), Some("web"));
    assert!(config
        .env
        .unwrap_or_default()
        .contains(&"FOO=bar baz".to_string()));
    assert_eq!(
        config
            .labels
            .unwrap_or_default()
            .into_iter()
            .collect::<BTreeMap<_, _>>(),
        spec.labels
    );
    assert_eq!(config.cmd.as_ref(), spec.command.as_ref());
    assert_eq!(config.stop_timeout, Some(2));

    let host = inspect.host_config.expect("host config");
    assert_eq!(host.init, Some(true));
    assert_eq!(
        host.restart_policy.and_then(|r| r.name),
        Some(RestartPolicyNameEnum::UNLESS_STOPPED)
    );
    assert_eq!(host.cap_add, Some(vec!["NET_ADMIN".to_string()]));
    let devices = host.devices.unwrap_or_default();
    let paths: Vec<_> = devices
        .iter()
        .map(|d| {
            (
                d.path_on_host.clone().unwrap_or_default(),
                d.path_in_container.clone().unwrap_or_default(),
            )
        })
        .collect();
    assert_eq!(
        paths,
        spec.devices
            .iter()
            .map(|d| (d.clone(), d.clone()))
            .collect::<Vec<_>>()
    );
    let bindings = host.port_bindings.expect("port bindings");
    for p in &spec.ports {
        let key = format!("{}/{}", p.container_port, p.protocol.as_str());
        let b = bindings.get(&key).cloned().flatten().unwrap_or_default();
        assert_eq!(b.len(), 1, "{key}: {b:?}");
        assert_eq!(
            (b[0].host_ip.as_deref(), b[0].host_port.clone()),
            (Some("127.0.0.1"), Some(p.host_port.to_string()))
        );
    }
    let mounts = host.mounts.unwrap_or_default();
    assert_eq!(mounts.len(), 2);
    // The engine omits `ReadOnly: false`.
    let ro = |m: &bollard::models::Mount| m.read_only.unwrap_or(false);
    assert_eq!(
        (mounts[0].typ, mounts[0].target.as_deref(), ro(&mounts[0])),
        (Some(MountType::BIND), Some("/mnt/ro"), true)
    );
    assert_eq!(
        (mounts[1].typ, mounts[1].source.as_deref(), ro(&mounts[1])),
        (
            Some(MountType::VOLUME),
            Some(spec.mounts[1].source.as_str()),
            false
        )
    );

    let networks = inspect
        .network_settings
        .and_then(|s| s.networks)
        .unwrap_or_default();
    let endpoint = networks
        .get(&spec.network)
        .expect("attached to the lab network");
    assert_eq!(
        endpoint.ip_address.as_deref(),
        Some(spec.ip.to_string().as_str())
    );
    assert_eq!(networks.len(), 1);
}

async fn check_listing(engine: &DockerEngine, t: &Test, spec: &ContainerSpec) {
    let listed = engine.list_containers(&t.filter()).await.expect("list");
    assert_eq!(listed.len(), 1);
    let c = &listed[0];
    assert_eq!(
        (c.name.as_str(), c.state, c.running),
        (spec.name.as_str(), ContainerState::Running, true)
    );
    assert_eq!(
        (c.network.as_deref(), c.ip),
        (Some(spec.network.as_str()), Some(spec.ip))
    );
    let mut want = spec.ports.clone();
    want.sort_by_key(|p| p.host_port);
    assert_eq!(c.ports, want);
    assert_eq!(c.labels, spec.labels);
}

/// The engine reports the container's id and its first process; on the engine's own host (a
/// local socket) that PID's cgroup names the container and its /proc shows the container's
/// sockets, which the DHCP readiness probe reads instead of a docker exec.
async fn check_pid(engine: &DockerEngine, spec: &ContainerSpec, id: &str) {
    let (full_id, pid) = engine
        .container_pid(&spec.name)
        .await
        .expect("pid")
        .expect("a running container has a pid");
    assert_eq!(full_id, id);
    assert!(pid > 1, "{pid}");
    let local = std::env::var("DOCKER_HOST").map_or(true, |h| h.starts_with("unix://"));
    if local {
        let cgroup = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).expect("cgroup");
        assert!(cgroup.contains(id), "{cgroup}");
        let udp = std::fs::read_to_string(format!("/proc/{pid}/net/udp")).expect("net/udp");
        assert!(udp.trim_start().starts_with("sl"), "{udp}");
    }
}

async fn check_exec_and_logs(engine: &DockerEngine, spec: &ContainerSpec) {
    let env = engine
        .exec(&spec.name, &argv(&["printenv", "FOO"]))
        .await
        .expect("exec");
    assert_eq!((env.exit_code, env.output.as_str()), (0, "bar baz\n"));
    let read = engine
        .exec(&spec.name, &argv(&["cat", "/mnt/ro/file"]))
        .await
        .expect("exec");
    assert_eq!(
        (read.exit_code, read.output.as_str()),
        (0, "read-only content\n")
    );
    let write = engine
        .exec(&spec.name, &argv(&["sh", "-c", "echo x > /mnt/ro/new"]))
        .await
        .expect("exec");
    assert_ne!(
        write.exit_code, 0,
        "the bind mount must be read-only: {write:?}"
    );
    assert!(write.output.contains("Read-only file system"), "{write:?}");
    let volume = engine
        .exec(
            &spec.name,
            &argv(&["sh", "-c", "echo y > /data/f && cat /data/f"]),
        )
        .await
        .expect("exec");
    assert_eq!((volume.exit_code, volume.output.as_str()), (0, "y\n"));
    let code = engine
        .exec(
            &spec.name,
            &argv(&["sh", "-c", "echo to-stderr >&2; exit 7"]),
        )
        .await
        .expect("exec");
    assert_eq!((code.exit_code, code.output.as_str()), (7, "to-stderr\n"));

    let logs = wait_for_logs(engine, &spec.name, "hello-err").await;
    assert!(
        logs.contains("hello-out\n") && logs.contains("hello-err\n"),
        "{logs:?}"
    );
    let last = engine.logs(&spec.name, Some(1)).await.expect("logs");
    assert_eq!(last.lines().count(), 1, "{last:?}");
}

/// The container's first output may lag its start by a moment.
async fn wait_for_logs(engine: &DockerEngine, container: &str, needle: &str) -> String {
    let mut logs = String::new();
    for _ in 0..50 {
        logs = engine.logs(container, None).await.expect("logs");
        if logs.contains(needle) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    logs
}

#[tokio::test]
async fn engine_busy_host_port_names_the_port_and_leaves_nothing_behind() {
    let Some(engine) =
        engine_or_skip("engine_busy_host_port_names_the_port_and_leaves_nothing_behind").await
    else {
        return;
    };
    let t = Test::new("port");
    let (net, _) = t.network(&engine, "net").await;
    let port = free_ports(2);

    // Held by another container: the engine says "port is already allocated".
    let first = t.container("first", &net, 10, port);
    engine.create_container(&first).await.expect("create first");
    engine
        .start_container(&first.name)
        .await
        .expect("start first");
    let second = t.container("second", &net, 11, port);
    engine
        .create_container(&second)
        .await
        .expect("create second (the engine checks ports at start)");
    let err = engine
        .start_container(&second.name)
        .await
        .expect_err("port taken");
    assert_port_error(&err, &second.name, port);
    eprintln!("port conflict as the user sees it: {err}");

    // Held by a host process: the engine says "address already in use".
    let _listener = TcpListener::bind(("127.0.0.1", port + 1)).expect("hold a port");
    let third = t.container("third", &net, 12, port + 1);
    engine.create_container(&third).await.expect("create third");
    let err = engine
        .start_container(&third.name)
        .await
        .expect_err("port held by a host process");
    assert_port_error(&err, &third.name, port + 1);

    let left: Vec<String> = engine
        .list_containers(&t.filter())
        .await
        .expect("list")
        .into_iter()
        .map(|c| c.name)
        .collect();
    assert_eq!(
        left,
        vec![first.name.clone()],
        "the containers that could not start were removed"
    );

    // A container whose image is missing fails at create, naming the image.
    let mut orphan = t.container("orphan", &net, 13, port + 2);
    orphan.image = format!("{}/absent:latest", t.prefix);
    let err = engine
        .create_container(&orphan)
        .await
        .expect_err("image missing");
    assert!(
        matches!(&err, EngineError::ImageMissing { image, .. } if image == &orphan.image),
        "{err}"
    );
}

fn assert_port_error(err: &EngineError, container: &str, port: u16) {
    match err {
        EngineError::PortAllocated {
            container: c,
            host_ip,
            host_port,
            ..
        } => {
            assert_eq!(
                (c.as_str(), host_ip.as_deref(), *host_port),
                (container, Some("127.0.0.1"), Some(port)),
                "{err}"
            );
        }
        other => panic!("expected PortAllocated, got {other}"),
    }
    assert!(
        err.to_string().contains(&format!("127.0.0.1:{port}")),
        "{err}"
    );
}

#[tokio::test]
async fn engine_remove_is_fast_even_when_pid1_ignores_sigterm() {
    let Some(engine) = engine_or_skip("engine_remove_is_fast_even_when_pid1_ignores_sigterm").await
    else {
        return;
    };
    let t = Test::new("fastrm");
    let (net, _) = t.network(&engine, "net").await;
    let mut spec = t.container("stubborn", &net, 10, free_ports(1));
    spec.init = false;
    spec.command = Some(argv(&[
        "sh",
        "-c",
        "trap '' TERM; while :; do sleep 1; done",
    ]));
    engine.create_container(&spec).await.expect("create");
    engine.start_container(&spec.name).await.expect("start");
    let started = Instant::now();
    engine.remove_container(&spec.name).await.expect("remove");
    let took = started.elapsed();
    eprintln!("removing a running container whose PID 1 ignores SIGTERM took {took:?}");
    assert!(took < Duration::from_secs(2), "remove took {took:?}");
}

#[tokio::test]
async fn engine_volumes_are_created_listed_by_label_and_removed() {
    let Some(engine) =
        engine_or_skip("engine_volumes_are_created_listed_by_label_and_removed").await
    else {
        return;
    };
    let t = Test::new("vol");
    let spec = VolumeSpec {
        name: t.name("v"),
        labels: t.labels(),
    };
    t.cleanup.add(&t.cleanup.volumes, &spec.name);
    engine.create_volume(&spec).await.expect("create");
    engine
        .create_volume(&spec)
        .await
        .expect("creating it again is fine");
    let listed = engine.list_volumes(&t.filter()).await.expect("list");
    assert_eq!(listed.len(), 1);
    assert_eq!(
        (listed[0].name.as_str(), &listed[0].labels),
        (spec.name.as_str(), &spec.labels)
    );
    engine.remove_volume(&spec.name).await.expect("remove");
    engine
        .remove_volume(&spec.name)
        .await
        .expect("removing again is fine");
    assert!(engine
        .list_volumes(&t.filter())
        .await
        .expect("list")
        .is_empty());
}
