//! Live: `lab up` / `status` / `down` of the RancherOS topology on a real Docker engine, checked
//! with the engine API and with real clients (TCP, HTTP, ipmitool, VNC).

mod common;

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::Command;
use std::time::Duration;

use common::*;
use metal_lab::engine::{DockerEngine, Engine, LabelFilter};
use metal_lab::plan::LABEL_LAB;

/// The RancherOS topology (dhcp, web, ssh, master + 2 workers), on this test's own subnet and ports.
fn topology(u: &Unique, master_memory: &str) -> String {
    let p = u.prefix();
    let b = u.port_base;
    format!(
        r#"
[lab]
name = "{name}"

[network]
subnet = "{subnet}"

[services.dhcp]
kind = "dnsmasq"
ip = "{p}.2"
dhcp_range = ["{p}.100", "{p}.200"]

[services.web]
kind = "httpd"
ip = "{p}.3"
root = "webroot"

[services.ssh]
kind = "sshd"
ip = "{p}.4"
ports = ["{ssh}:22"]

[node_defaults]
memory = "256M"
disk = "1G"
accel = "tcg"

[nodes.master]
mac = "02:aa:bb:cc:dd:ee"
ip = "{p}.100"
bmc_ip = "{p}.6"
vnc_port = {vnc}
ipmi_port = {ipmi}
memory = "{master_memory}"

[nodes.worker]
count = 2
mac = "02:aa:bb:cc:dd:ef"
ip = "{p}.101"
bmc_ip = "{p}.7"
vnc_port = {vnc1}
ipmi_port = {ipmi1}
"#,
        name = u.name,
        subnet = u.subnet(),
        ssh = b,
        vnc = b + 1,
        vnc1 = b + 2,
        ipmi = b + 10,
        ipmi1 = b + 11,
    )
}

fn ipmitool(port: u16, args: &[&str]) -> String {
    let out = Command::new("ipmitool")
        .args([
            "-I",
            "lanplus",
            "-C",
            "3",
            "-H",
            "127.0.0.1",
            "-p",
            &port.to_string(),
            "-U",
            "admin",
            "-P",
            "admin",
        ])
        .args(args)
        .output()
        .expect("ipmitool must be installed for the live tests (apt-get install ipmitool)");
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn read_banner(addr: SocketAddr, len: usize) -> String {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    let mut buf = vec![0u8; len];
    let mut got = 0;
    while got < len {
        match s.read(&mut buf[got..]) {
            Ok(0) | Err(_) => break,
            Ok(n) => got += n,
        }
    }
    String::from_utf8_lossy(&buf[..got]).into_owned()
}

fn http_get(addr: SocketAddr, path: &str) -> String {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    write!(s, "GET {path} HTTP/1.0\r\nHost: lab\r\n\r\n").expect("send");
    let mut body = String::new();
    let _ = s.read_to_string(&mut body);
    body
}

fn container_ids(engine: &DockerEngine, lab: &str) -> BTreeMap<String, String> {
    let rt = tokio::runtime::Runtime::new().expect("rt");
    let list = rt
        .block_on(engine.list_containers(&LabelFilter::lab(lab)))
        .expect("list");
    list.into_iter().map(|c| (c.name, c.id)).collect()
}

fn wait_for(what: &str, mut f: impl FnMut() -> bool) {
    for _ in 0..60 {
        if f() {
            return;
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    panic!("timed out waiting for {what}");
}

#[test]
fn rancheros_topology_comes_up_converges_and_goes_away() {
    let Some(engine) = engine_or_skip("rancheros_topology") else {
        return;
    };
    let u = unique("up");
    let lab = TestLab::new(&u.name, &topology(&u, "256M"));
    let b = u.port_base;

    let out = lab.lab(&["up", "--timeout", "300"]);
    assert!(out.status.success(), "lab up failed: {}", stderr(&out));
    assert!(stdout(&out).contains("is ready"), "{}", stdout(&out));

    // What the engine says: one container per service and node, with planned addresses, ports,
    // devices, caps and labels.
    let docker = bollard::Docker::connect_with_defaults().expect("docker");
    let rt = tokio::runtime::Runtime::new().expect("rt");
    let ids = container_ids(&engine, &u.name);
    let names: Vec<&str> = ids.keys().map(String::as_str).collect();
    let want: Vec<String> = ["dhcp", "master", "ssh", "web", "worker-1", "worker-2"]
        .iter()
        .map(|n| format!("{}-{n}", u.name))
        .collect();
    assert_eq!(names, want.iter().map(String::as_str).collect::<Vec<_>>());
    for (name, ip, ports) in [
        // IPMI is published on the same port inside: the BMC listens there too, for SOL.
        (
            "master",
            6,
            vec![
                (b + 1, "5901/tcp".to_string()),
                (b + 10, format!("{}/udp", b + 10)),
            ],
        ),
        (
            "worker-2",
            8,
            vec![
                (b + 3, "5901/tcp".to_string()),
                (b + 12, format!("{}/udp", b + 12)),
            ],
        ),
        ("ssh", 4, vec![(b, "22/tcp".to_string())]),
    ] {
        let full = format!("{}-{name}", u.name);
        let info = rt
            .block_on(docker.inspect_container(
                &full,
                None::<bollard::query_parameters::InspectContainerOptions>,
            ))
            .expect("inspect");
        let endpoint = info
            .network_settings
            .as_ref()
            .and_then(|n| n.networks.as_ref())
            .and_then(|n| n.get(&format!("{}-net", u.name)))
            .cloned()
            .expect("on the lab network");
        assert_eq!(
            endpoint.ip_address.as_deref(),
            Some(u.ip(ip).to_string().as_str()),
            "{full} address"
        );
        let host = info.host_config.clone().expect("host config");
        let bindings = host.port_bindings.clone().unwrap_or_default();
        for (host_port, container_port) in ports {
            let b = bindings
                .get(&container_port)
                .cloned()
                .flatten()
                .unwrap_or_default();
            assert!(
                b.iter().any(
                    |x| x.host_port.as_deref() == Some(host_port.to_string().as_str())
                        && x.host_ip.as_deref() == Some("127.0.0.1")
                ),
                "{full} {container_port}: {b:?}"
            );
        }
        assert_eq!(host.init, Some(true), "{full} runs an init");
        assert_ne!(host.privileged, Some(true), "{full} must not be privileged");
        let labels = info
            .config
            .as_ref()
            .and_then(|c| c.labels.clone())
            .unwrap_or_default();
        assert_eq!(labels.get(LABEL_LAB), Some(&u.name));
        assert_eq!(
            labels.get("io.metal-lab.name").map(String::as_str),
            Some(name)
        );
        if name != "ssh" {
            assert_eq!(
                host.cap_add.clone().unwrap_or_default(),
                ["NET_ADMIN"],
                "{full} caps"
            );
            let devices: Vec<String> = host
                .devices
                .clone()
                .unwrap_or_default()
                .into_iter()
                .filter_map(|d| d.path_on_host)
                .collect();
            assert!(
                devices.contains(&"/dev/net/tun".to_string()),
                "{full}: {devices:?}"
            );
        }
    }

    // Real clients: SSH banner on the published port, boot script over HTTP from the web
    // service's address, VNC banner, ipmitool on every BMC.
    let banner = read_banner(SocketAddr::from(([127, 0, 0, 1], b)), 8);
    assert!(banner.starts_with("SSH-2.0"), "ssh banner: {banner:?}");
    let boot = http_get(SocketAddr::from((u.ip(3), 80)), "/lab/boot.ipxe");
    assert!(
        boot.starts_with("HTTP/1.1 200") && boot.contains("#!ipxe"),
        "boot script: {boot}"
    );
    let hello = http_get(SocketAddr::from((u.ip(3), 80)), "/hello.txt");
    assert!(hello.contains("hello from the lab web root"), "{hello}");
    for port in [b + 10, b + 11, b + 12] {
        let s = ipmitool(port, &["power", "status"]);
        assert!(s.contains("Chassis Power is on"), "ipmi port {port}: {s}");
    }
    wait_for("VNC on the master", || {
        read_banner(SocketAddr::from(([127, 0, 0, 1], b + 1)), 12).starts_with("RFB 003.008")
    });
    let off = ipmitool(b + 11, &["power", "off"]);
    assert!(off.contains("Down/Off"), "{off}");
    wait_for("worker-1 off", || {
        ipmitool(b + 11, &["power", "status"]).contains("is off")
    });
    let status = lab.lab(&["status", "--json"]);
    assert!(status.status.success());
    let json: serde_json::Value = serde_json::from_slice(&status.stdout).expect("status json");
    assert_eq!(json["lab"], u.name.as_str());
    assert_eq!(json["services"].as_array().map(Vec::len), Some(3));
    let nodes = json["nodes"].as_array().expect("nodes");
    let w1 = nodes
        .iter()
        .find(|n| n["name"] == "worker-1")
        .expect("worker-1");
    assert_eq!(w1["power"], "off");
    assert_eq!(w1["mac"], "02:aa:bb:cc:dd:ef");
    assert_eq!(w1["boot_ip"], u.ip(101).to_string().as_str());
    assert_eq!(w1["state"], "running");
    assert_eq!(w1["ports"][1]["host_port"], b + 11);
    let master = nodes
        .iter()
        .find(|n| n["name"] == "master")
        .expect("master");
    assert_eq!(master["power"], "on");
    let on = ipmitool(b + 11, &["power", "on"]);
    assert!(on.contains("Up/On"), "{on}");
    let table = stdout(&lab.lab(&["status"]));
    assert!(
        table.contains(&format!("ssh -p {b} root@127.0.0.1")),
        "{table}"
    );
    assert!(
        table.contains(&format!("vnc://127.0.0.1:{}", b + 1)),
        "{table}"
    );
    assert!(
        table.contains(&format!(
            "ipmitool -I lanplus -H 127.0.0.1 -p {} -U admin",
            b + 10
        )),
        "{table}"
    );
    // No redfish_port in the file: Redfish is published on the IPMI port's number over TCP.
    assert!(
        table.contains(&format!(
            "curl -k -u admin:<password> https://127.0.0.1:{}/redfish/v1/Systems/1",
            b + 10
        )),
        "{table}"
    );

    // Boot phases come from what happened: the nodes (no profile) fetch their boot script.
    let waited = lab.lab(&["wait", "--phase", "pxe", "--timeout", "180"]);
    assert!(waited.status.success(), "{}", stderr(&waited));
    let json: serde_json::Value =
        serde_json::from_slice(&lab.lab(&["status", "--json"]).stdout).expect("status json");
    for n in json["nodes"].as_array().expect("nodes") {
        assert!(
            ["pxe", "kernel"].contains(&n["phase"].as_str().unwrap_or_default()),
            "{n}"
        );
        assert!(
            n["phase_since"].as_str().is_some_and(|t| t.ends_with('Z')),
            "{n}"
        );
    }
    let off = lab.lab(&["power", "worker-2", "off"]);
    assert!(stdout(&off).contains("Down/Off"), "{}", stdout(&off));
    assert!(lab
        .lab(&["wait", "worker-2", "--phase", "off", "--timeout", "30"])
        .status
        .success());
    let timeout = lab.lab(&["wait", "worker-2", "--phase", "up", "--timeout", "1"]);
    assert_eq!(timeout.status.code(), Some(1));
    assert!(
        stderr(&timeout).contains("worker-2: off"),
        "{}",
        stderr(&timeout)
    );
    assert!(lab.lab(&["power", "--all", "on"]).status.success());

    // A second up changes nothing and says so.
    let again = lab.lab(&["up"]);
    assert!(again.status.success());
    assert!(
        stdout(&again).contains("nothing changed"),
        "{}",
        stdout(&again)
    );
    assert_eq!(container_ids(&engine, &u.name), ids);

    // Editing one node recreates only that node.
    lab.write(&topology(&u, "320M"));
    assert!(lab.lab(&["up"]).status.success());
    let after = container_ids(&engine, &u.name);
    let changed: Vec<&String> = after
        .iter()
        .filter(|(n, id)| ids.get(*n) != Some(id))
        .map(|(n, _)| n)
        .collect();
    assert_eq!(changed, [&format!("{}-master", u.name)]);

    // A container killed by hand is brought back.
    let victim = format!("{}-web", u.name);
    rt.block_on(docker.kill_container(
        &victim,
        None::<bollard::query_parameters::KillContainerOptions>,
    ))
    .expect("kill");
    assert!(lab.lab(&["up"]).status.success());
    let web = rt
        .block_on(docker.inspect_container(
            &victim,
            None::<bollard::query_parameters::InspectContainerOptions>,
        ))
        .expect("inspect");
    assert_eq!(web.state.and_then(|s| s.running), Some(true));

    // down removes everything, quickly, and a second down is a no-op.
    let t = std::time::Instant::now();
    let down = lab.lab(&["down", "--volumes"]);
    assert!(down.status.success(), "{}", stderr(&down));
    eprintln!("lab down took {:?}", t.elapsed());
    assert_eq!(leftovers(&engine, &u.name), (0, 0, 0));
    let again = lab.lab(&["down"]);
    assert!(again.status.success() && stdout(&again).contains("nothing to remove"));
    let gone = lab.lab(&["status", "--json"]);
    let json: serde_json::Value = serde_json::from_slice(&gone.stdout).expect("status json");
    assert!(json["nodes"]
        .as_array()
        .expect("nodes")
        .iter()
        .all(|n| n["state"] == "absent"));
}

fn small_lab(u: &Unique, ssh_port: u16) -> String {
    let p = u.prefix();
    format!(
        r#"
[lab]
name = "{name}"
[network]
subnet = "{subnet}"
[services.web]
kind = "httpd"
ip = "{p}.3"
root = "webroot"
[services.ssh]
kind = "sshd"
ip = "{p}.4"
ports = ["{ssh_port}:22"]
"#,
        name = u.name,
        subnet = u.subnet()
    )
}

#[test]
fn two_labs_run_side_by_side_and_status_works_without_the_file() {
    let Some(engine) = engine_or_skip("two_labs") else {
        return;
    };
    let (a, b) = (unique("sa"), unique("sb"));
    let la = TestLab::new(&a.name, &small_lab(&a, a.port_base));
    let lb = TestLab::new(&b.name, &small_lab(&b, b.port_base + 1));
    assert!(la.lab(&["up"]).status.success());
    assert!(lb.lab(&["up"]).status.success());
    for u in [&a, &b] {
        let banner = read_banner(
            SocketAddr::from((
                [127, 0, 0, 1],
                if u.name == a.name {
                    a.port_base
                } else {
                    b.port_base + 1
                },
            )),
            8,
        );
        assert!(banner.starts_with("SSH-2.0"), "{}: {banner}", u.name);
    }
    std::fs::remove_file(la.file()).expect("remove file");
    let out = lab_in(
        la.dir.path(),
        &la.file(),
        &["status", "--json", "--name", &a.name],
    );
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    let names: Vec<&str> = json["services"]
        .as_array()
        .expect("services")
        .iter()
        .filter_map(|s| s["name"].as_str())
        .collect();
    assert_eq!(names.len(), 2, "{json}");
    assert!(json["services"]
        .as_array()
        .unwrap()
        .iter()
        .all(|s| s["state"] == "running"));
    let out = lab_in(la.dir.path(), &la.file(), &["down", "--name", &a.name]);
    assert!(out.status.success());
    assert_eq!(leftovers(&engine, &a.name).0, 0);
    assert_eq!(
        leftovers(&engine, &b.name).0,
        2,
        "the other lab is untouched"
    );
}

#[test]
fn taken_host_port_fails_before_anything_is_created() {
    let Some(engine) = engine_or_skip("taken_port") else {
        return;
    };
    let u = unique("tp");
    let _holder = TcpListener::bind(("127.0.0.1", u.port_base)).expect("hold the port");
    let lab = TestLab::new(&u.name, &small_lab(&u, u.port_base));
    let out = lab.lab(&["up"]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(
        err.contains(&format!(
            "host port {}/tcp on 127.0.0.1 for service `ssh`",
            u.port_base
        )),
        "{err}"
    );
    assert!(err.contains("nothing was created"), "{err}");
    assert_eq!(leftovers(&engine, &u.name), (0, 0, 0));
}

#[test]
fn overlapping_subnet_names_the_other_network() {
    let Some(engine) = engine_or_skip("overlap") else {
        return;
    };
    let a = unique("oa");
    let la = TestLab::new(&a.name, &small_lab(&a, a.port_base));
    assert!(la.lab(&["up", "--no-wait"]).status.success());
    // Picked once a's ports are taken, so b's are others: only the subnet may clash.
    let mut b = unique("ob");
    b.net = a.net;
    let lb = TestLab::new(
        &b.name,
        &small_lab(&b, b.port_base + 1).replace(".0/24\"", ".0/25\""),
    );
    let out = lb.lab(&["up"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains(&format!("{}-net", a.name)),
        "{}",
        stderr(&out)
    );
    assert_eq!(leftovers(&engine, &b.name).0, 0);
}

/// Ctrl-C during `lab up` ends it with exit code 130 and says what was made; the next `lab up`
/// finishes the lab in one run.
#[test]
fn an_interrupted_up_exits_130_and_the_next_up_converges() {
    let Some(engine) = engine_or_skip("interrupted_up") else {
        return;
    };
    let u = unique("ir");
    let lab = TestLab::new(&u.name, &small_lab(&u, u.port_base));
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_lab"))
        .current_dir(lab.dir.path())
        .arg("-f")
        .arg(lab.file())
        .arg("up")
        .env("CI", "true")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run lab up");
    // Interrupt once it has started making things (its first progress line).
    let mut stdout = child.stdout.take().expect("stdout");
    let mut first = [0u8; 1];
    stdout.read_exact(&mut first).expect("a progress line");
    let pid = child.id() as i32;
    // SAFETY: kill(2) on our own child's pid with a valid signal number.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGINT) }, 0);
    let mut rest = String::new();
    let _ = stdout.read_to_string(&mut rest);
    let mut err = String::new();
    child
        .stderr
        .take()
        .expect("stderr")
        .read_to_string(&mut err)
        .expect("stderr");
    let status = child.wait().expect("wait for lab up");
    // It may have finished before the signal arrived on a fast machine; then it succeeded.
    match status
        .code()
        .unwrap_or_else(|| panic!("lab up died by a signal: {status:?}"))
    {
        130 => {
            assert!(
                err.starts_with(&format!("error: interrupted: lab `{}`", u.name)),
                "{err}"
            );
            assert!(
                err.contains("help: what was made carries the lab's labels: run `lab up` again to finish, or `lab down` to remove it"),
                "{err}"
            );
        }
        0 => eprintln!("lab up finished before the interrupt: {rest}"),
        code => panic!("lab up exited {code}: {err}"),
    }
    let again = lab.lab(&["up"]);
    assert!(again.status.success(), "{}", stderr(&again));
    let banner = read_banner(SocketAddr::from(([127, 0, 0, 1], u.port_base)), 8);
    assert!(banner.starts_with("SSH-2.0"), "{banner}");
    assert_eq!(leftovers(&engine, &u.name).0, 2);
}

/// Removes an image the test made (lab's `down` leaves images), even when the test fails.
struct RemoveImage(String);

impl Drop for RemoveImage {
    fn drop(&mut self) {
        let _ = Command::new("docker").args(["rmi", "-f", &self.0]).output();
    }
}

#[test]
fn a_service_built_from_a_directory_is_rebuilt_and_recreated_when_it_changes() {
    let Some(engine) = engine_or_skip("service_build") else {
        return;
    };
    let u = unique("bd");
    let toml = format!(
        "[lab]\nname = \"{}\"\n[network]\nsubnet = \"{}\"\n[services.app]\nkind = \"container\"\nbuild = \"app\"\ncap_add = [\"NET_ADMIN\"]\n",
        u.name,
        u.subnet()
    );
    let lab = TestLab::new(&u.name, &toml);
    let tag = format!("metal-lab/{}-app:latest", u.name);
    let _image = RemoveImage(tag.clone());
    let app = lab.dir.path().join("app");
    std::fs::create_dir_all(&app).expect("app dir");
    std::fs::write(
        app.join("Dockerfile"),
        "FROM debian:bookworm-slim\nCOPY msg.txt /msg.txt\nRUN cp /msg.txt /built.txt\nCMD [\"sh\", \"-c\", \"cat /built.txt; exec sleep infinity\"]\n",
    )
    .expect("Dockerfile");
    std::fs::write(app.join("msg.txt"), "built-one\n").expect("msg");
    let container = format!("{}-app", u.name);
    let logs = |want: &str| {
        wait_for(want, || {
            stdout(&lab.lab(&["logs", "app", "--tail", "5"])).contains(want)
        })
    };

    let out = lab.lab(&["up", "--no-wait"]);
    assert!(out.status.success(), "{}", stderr(&out));
    logs("built-one");
    let first = container_ids(&engine, &u.name)[&container].clone();
    let rt = tokio::runtime::Runtime::new().expect("rt");
    let image = rt
        .block_on(engine.image_info(&tag))
        .expect("inspect")
        .expect("the service's image exists");
    assert_eq!(
        image.labels.get(LABEL_LAB).map(String::as_str),
        Some(u.name.as_str())
    );
    let caps = Command::new("docker")
        .args(["inspect", "-f", "{{.HostConfig.CapAdd}}", &container])
        .output()
        .expect("docker inspect");
    assert!(
        String::from_utf8_lossy(&caps.stdout).contains("NET_ADMIN"),
        "cap_add reaches the container: {caps:?}"
    );

    // Unchanged: nothing is built or recreated.
    let out = lab.lab(&["up", "--no-wait"]);
    assert!(out.status.success());
    assert_eq!(container_ids(&engine, &u.name)[&container], first);

    // A changed file rebuilds the image and recreates the container; the dry run says so.
    std::fs::write(app.join("msg.txt"), "built-two\n").expect("msg");
    let dry = stdout(&lab.lab(&["up", "--dry-run"]));
    assert!(
        dry.contains(&format!(
            "build {tag} from {}",
            app.canonicalize().unwrap().display()
        )),
        "{dry}"
    );
    let out = lab.lab(&["up", "--no-wait"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out) + &stderr(&out);
    assert!(text.contains(&tag), "the build is reported: {text}");
    logs("built-two");
    assert_ne!(container_ids(&engine, &u.name)[&container], first);
    let image2 = rt
        .block_on(engine.image_info(&tag))
        .expect("inspect")
        .expect("image");
    assert_ne!(image2.id, image.id);
}

#[test]
fn an_image_that_cannot_be_pulled_fails_naming_it_and_the_ways_out() {
    let Some(engine) = engine_or_skip("pull_offline") else {
        return;
    };
    let u = unique("pl");
    let image = format!("metal-lab-test/{}-missing:v0", u.name);
    let toml = format!(
        "[lab]\nname = \"{}\"\n[network]\nsubnet = \"{}\"\n[services.app]\nkind = \"container\"\nimage = \"{image}\"\n",
        u.name,
        u.subnet()
    );
    let lab = TestLab::new(&u.name, &toml);
    let out = lab.lab(&["up", "--dry-run"]);
    assert!(out.status.success());
    assert!(
        stdout(&out).contains(&format!("pull {image} (missing; needed by service app)")),
        "{}",
        stdout(&out)
    );
    let out = lab.lab(&["up", "--no-wait"]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(
        err.contains(&format!(
            "cannot pull image {image} (needed by service app)"
        )),
        "{err}"
    );
    assert!(err.contains(&format!("`docker pull {image}`")), "{err}");
    assert_eq!(leftovers(&engine, &u.name).0, 0, "no container was made");

    // A base image no registry answers for: the same, and `.ci/make-base-image` offline.
    let base = format!("metal-lab-test/{}-base:v0", u.name);
    lab.write(&format!(
        "[lab]\nname = \"{}\"\nbase_image = \"{base}\"\n[network]\nsubnet = \"{}\"\n[services.web]\nkind = \"httpd\"\nroot = \"webroot\"\n",
        u.name,
        u.subnet()
    ));
    let out = lab.lab(&["up", "--no-wait"]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(
        err.contains(&format!(
            "cannot pull image {base} (needed as the base of metal-lab/httpd:latest)"
        )),
        "{err}"
    );
    assert!(err.contains(&format!("`docker pull {base}`")), "{err}");
    assert!(err.contains(".ci/make-base-image"), "{err}");
    assert_eq!(leftovers(&engine, &u.name).0, 0, "no container was made");
}

/// Serves `body` at any path over HTTP on 127.0.0.1 until the test ends; returns the port.
fn serve_file(body: &'static [u8]) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    std::thread::spawn(move || {
        for conn in listener.incoming().flatten() {
            let mut conn = conn;
            let mut req = [0u8; 2048];
            let _ = conn.read(&mut req);
            let head = format!(
                "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                body.len()
            );
            let _ = conn.write_all(head.as_bytes());
            let _ = conn.write_all(body);
        }
    });
    port
}

/// `lab up` downloads (and verifies) the missing asset a node it starts boots, as compose pulls
/// images; with `--no-fetch` it only warns, and the node is started anyway.
#[test]
fn up_fetches_the_missing_assets_of_the_nodes_it_starts() {
    let Some(_engine) = engine_or_skip("up_fetches_assets") else {
        return;
    };
    const KERNEL: &[u8] = b"not really a kernel, but its bytes are pinned\n";
    let port = serve_file(KERNEL);
    let sha = {
        use sha2::Digest;
        hex::encode(sha2::Sha256::digest(KERNEL))
    };
    let u = unique("af");
    let p = u.prefix();
    let text = format!(
        r#"
[lab]
name = "{name}"
[network]
subnet = "{subnet}"
[services.dhcp]
kind = "dnsmasq"
ip = "{p}.2"
dhcp_range = ["{p}.100", "{p}.150"]
[services.web]
kind = "httpd"
ip = "{p}.3"
root = "webroot"
[assets.os]
base_url = "http://127.0.0.1:{port}/rel"
files = ["vmlinuz"]
sha256 = {{ vmlinuz = "{sha}" }}
dest = "webroot/os"
[profiles.os]
kernel = "os/vmlinuz"
[nodes.n]
profile = "os"
power = "off"
memory = "256M"
disk = "1G"
accel = "tcg"
"#,
        name = u.name,
        subnet = u.subnet()
    );
    let lab = TestLab::new(&u.name, &text);
    let kernel = lab.dir.path().join("webroot/os/vmlinuz");

    let out = lab.lab(&["up", "--no-wait", "--no-fetch"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("warning: asset `os` is not downloaded yet (vmlinuz missing)"),
        "{}",
        stdout(&out)
    );
    assert!(stdout(&out).contains(&format!("created {}-dhcp", u.name)));
    assert!(!kernel.exists(), "--no-fetch fetches nothing");

    // The node is started again (after a down): now its asset comes first.
    assert!(lab.lab(&["down"]).status.success());
    let out = lab.lab(&["up", "--no-wait"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(std::fs::read(&kernel).expect("fetched"), KERNEL);
    assert!(
        !stdout(&out).contains("not downloaded yet"),
        "{}",
        stdout(&out)
    );
}
