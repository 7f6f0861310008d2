//! Live: OpenStack Ironic itself drives a lab's BMCs, with both hardware types its users pick:
//! `ipmi` (ipmitool, as Ironic runs it) and `redfish` (sushy). Ironic runs standalone as a child
//! of this test (the all-in-one `ironic` command: API and conductor in one process, no Keystone,
//! no message bus, sqlite), the nodes are enrolled from `lab inventory --format ironic --from
//! host`, and every result is read back from Ironic and from the node (ipmitool, Redfish, `lab
//! status`, the console log): validate, manage, power on/off/soft off/reboot, NMI, boot device and
//! boot mode, out-of-band inspection (redfish) and virtual media booted to `up`.
//!
//! `.ci/run` installs Ironic and python-ironicclient into the venv LAB_IRONIC_VENV (default
//! /opt/lab-ironic-venv). Without it the test says so and passes, except under CI=true.

mod common;

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use serde_json::{json, Value};

const PASSWORD: &str = "ir-secret";
/// Ironic's newest API version here (39.0.0); virtual media needs 1.89 (attach) and 1.93 (get).
const API_VERSION: &str = "1.115";

/// The venv with Ironic, or None (skip) when it is missing outside CI.
fn ironic_venv() -> Option<PathBuf> {
    let venv = PathBuf::from(
        std::env::var("LAB_IRONIC_VENV").unwrap_or_else(|_| "/opt/lab-ironic-venv".into()),
    );
    if venv.join("bin/ironic").exists() && venv.join("bin/baremetal").exists() {
        return Some(venv);
    }
    let msg = format!(
        "{} has no ironic and baremetal: `.ci/run` installs them (set LAB_IRONIC_VENV to use another venv)",
        venv.display()
    );
    if std::env::var("CI").as_deref() == Ok("true") {
        panic!("{msg}");
    }
    eprintln!("ironic: skipped: {msg}");
    None
}

/// Two nodes on BMC addresses of their own (as in a rack, so Ironic paces each BMC on its own):
/// `ni` for the ipmi hardware type, `nr` (2 CPUs, 2 NICs, 1 GiB, 5 GiB disk: Ironic's Redfish
/// inspection counts memory in whole GiB and disks from 4 GiB up) for redfish. Both start off
/// and boot the smoke OS from the network (their disks are empty).
fn lab_file(u: &Unique) -> String {
    let p = u.prefix();
    let [a, b] = u.net;
    lab_with_services(u)
        + SMOKE_PROFILE
        + &format!(
            r#"
[node_defaults]
memory = "256M"
disk = "1G"
accel = "tcg"
boot = "disk"
power = "off"
profile = "smoke"
bmc_password = "{PASSWORD}"

[nodes.ni]
mac = "02:1c:{a:02x}:{b:02x}:00:01"
ip = "{p}.100"
bmc_ip = "{p}.6"
bmc_publish = "127.{a}.{b}.10"
ipmi_port = {ipmi}
redfish_port = {redfish}

[nodes.nr]
mac = "02:1c:{a:02x}:{b:02x}:00:10"
nics = 2
ip = "{p}.110"
bmc_ip = "{p}.7"
bmc_publish = "127.{a}.{b}.11"
ipmi_port = {ipmi}
redfish_port = {redfish}
cpus = 2
memory = "1G"
disk = "5G"
"#,
            ipmi = u.port_base,
            redfish = u.port_base + 1,
        )
}

/// A standalone Ironic, killed with its workers when dropped.
struct Ironic {
    child: Child,
    venv: PathBuf,
    dir: tempfile::TempDir,
    endpoint: String,
    agent: ureq::Agent,
}

impl Ironic {
    /// Writes its configuration, creates its database and starts `ironic` on 127.0.0.1:`port`.
    /// Images for virtual media are served by the lab's web service: Ironic puts them into the
    /// lab's web root (`http_root`) and hands the BMC their URL there (`http_url`).
    fn start(venv: &Path, port: u16, webroot: &Path, web_url: &str) -> Ironic {
        let dir = tempfile::tempdir().expect("tempdir");
        let d = dir.path().display();
        let conf = format!(
            r#"[DEFAULT]
auth_strategy = noauth
rpc_transport = none
host = lab-ironic-test
enabled_hardware_types = ipmi,redfish
enabled_power_interfaces = ipmitool,redfish
enabled_management_interfaces = ipmitool,redfish
enabled_boot_interfaces = pxe,redfish-virtual-media
enabled_deploy_interfaces = direct,ramdisk
enabled_inspect_interfaces = redfish,no-inspect
default_inspect_interface = no-inspect
enabled_network_interfaces = noop
enabled_console_interfaces = no-console
enabled_vendor_interfaces = ipmitool,redfish,no-vendor
enabled_bios_interfaces = no-bios
enabled_raid_interfaces = no-raid
enabled_firmware_interfaces = no-firmware
log_dir = {d}
log_file = ironic.log
debug = true
tempdir = {d}/tmp
state_path = {d}/state

[api]
host_ip = 127.0.0.1
port = {port}

[database]
connection = sqlite:///{d}/ironic.sqlite

[dhcp]
dhcp_provider = none

[conductor]
automated_clean = false

[ipmi]
# Ironic waits 5 s between two commands to one BMC by default (for BMCs that choke on more).
min_command_interval = 1

[pxe]
tftp_root = {d}/tftp
tftp_master_path = {d}/tftp/master

[deploy]
http_root = {webroot}
http_url = {web_url}

[oslo_concurrency]
lock_path = {d}/locks
"#,
            webroot = webroot.display(),
        );
        for sub in ["tmp", "state", "tftp", "locks"] {
            std::fs::create_dir_all(dir.path().join(sub)).expect("ironic dirs");
        }
        let file = dir.path().join("ironic.conf");
        std::fs::write(&file, conf).expect("ironic.conf");
        let out = Command::new(venv.join("bin/ironic-dbsync"))
            .arg("--config-file")
            .arg(&file)
            .arg("create_schema")
            .output()
            .expect("ironic-dbsync");
        assert!(
            out.status.success(),
            "ironic-dbsync create_schema: {}",
            stderr(&out)
        );
        let log = std::fs::File::create(dir.path().join("stdout.log")).expect("log");
        let child = Command::new(venv.join("bin/ironic"))
            .arg("--config-file")
            .arg(&file)
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .stdin(Stdio::null())
            .process_group(0)
            .spawn()
            .expect("start ironic");
        Ironic {
            child,
            venv: venv.to_path_buf(),
            dir,
            endpoint: format!("http://127.0.0.1:{port}"),
            agent: ureq::Agent::config_builder()
                .http_status_as_error(false)
                .timeout_global(Some(Duration::from_secs(60)))
                .build()
                .new_agent(),
        }
    }

    /// Waits for the API to answer; panics with Ironic's output when it does not.
    fn wait_ready(&mut self, within: Duration) {
        let start = Instant::now();
        loop {
            if self.agent.get(&self.endpoint).call().is_ok() {
                eprintln!("ironic answers after {:.1}s", start.elapsed().as_secs_f64());
                return;
            }
            let exited = self.child.try_wait().ok().flatten();
            if exited.is_some() || start.elapsed() > within {
                panic!(
                    "ironic did not answer on {} ({exited:?}): {}",
                    self.endpoint,
                    self.tail()
                );
            }
            std::thread::sleep(Duration::from_millis(500));
        }
    }

    fn tail(&self) -> String {
        let mut s = String::new();
        for f in ["stdout.log", "ironic.log"] {
            let text = std::fs::read_to_string(self.dir.path().join(f)).unwrap_or_default();
            let lines: Vec<&str> = text.lines().filter(|l| !l.contains(" DEBUG ")).collect();
            s += &format!(
                "--- {f}\n{}\n",
                lines[lines.len().saturating_sub(40)..].join("\n")
            );
        }
        s
    }

    /// `baremetal ARGS` (python-ironicclient's CLI, no auth); its stdout. Panics when it fails.
    fn baremetal(&self, args: &[&str]) -> String {
        let start = Instant::now();
        let out = Command::new(self.venv.join("bin/baremetal"))
            .args(args)
            .env("OS_ENDPOINT", &self.endpoint)
            .env("OS_AUTH_TYPE", "none")
            .output()
            .expect("baremetal");
        eprintln!(
            "$ baremetal {} ({:.1}s)\n{}{}",
            args.join(" "),
            start.elapsed().as_secs_f64(),
            stdout(&out),
            stderr(&out)
        );
        assert!(
            out.status.success(),
            "baremetal {}: {}{}\n{}",
            args.join(" "),
            stdout(&out),
            stderr(&out),
            self.tail()
        );
        stdout(&out)
    }

    /// A REST call to Ironic's API (for what the CLI has no command for: virtual media).
    fn api(&self, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
        let url = format!("{}{path}", self.endpoint);
        let resp = match body {
            Some(b) => self
                .agent
                .post(&url)
                .header("X-OpenStack-Ironic-API-Version", API_VERSION)
                .header("Content-Type", "application/json")
                .send(b.to_string().as_bytes()),
            None if method == "DELETE" => self
                .agent
                .delete(&url)
                .header("X-OpenStack-Ironic-API-Version", API_VERSION)
                .call(),
            None => self
                .agent
                .get(&url)
                .header("X-OpenStack-Ironic-API-Version", API_VERSION)
                .call(),
        };
        let mut resp = resp.unwrap_or_else(|e| panic!("{method} {url}: {e}"));
        let status = resp.status().as_u16();
        let text = resp.body_mut().read_to_string().unwrap_or_default();
        eprintln!("{method} {path}: {status} {text}");
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    fn node(&self, name: &str) -> Value {
        let mut resp = self
            .agent
            .get(&format!("{}/v1/nodes/{name}", self.endpoint))
            .header("X-OpenStack-Ironic-API-Version", API_VERSION)
            .call()
            .unwrap_or_else(|e| panic!("GET node {name}: {e}"));
        let status = resp.status().as_u16();
        let text = resp.body_mut().read_to_string().unwrap_or_default();
        assert_eq!(status, 200, "GET node {name}: {text}");
        serde_json::from_str(&text).expect("node JSON")
    }

    /// Waits until `f` holds for node `name` as Ironic shows it.
    fn wait_node(&self, name: &str, what: &str, within: Duration, f: impl Fn(&Value) -> bool) {
        let start = Instant::now();
        loop {
            let n = self.node(name);
            if f(&n) {
                return;
            }
            assert!(
                start.elapsed() < within,
                "node {name}: not {what} within {within:?}: power {} provision {} last_error {}\n{}",
                n["power_state"],
                n["provision_state"],
                n["last_error"],
                self.tail()
            );
            std::thread::sleep(Duration::from_millis(500));
        }
    }
}

impl Ironic {
    /// `baremetal node power ARGS NODE` (or `node reboot`), then waits until Ironic has it in
    /// `want` with nothing pending; the seconds from the request to that.
    fn power(&self, args: &[&str], node: &str, want: &str) -> f64 {
        let start = Instant::now();
        let mut all = args.to_vec();
        all.extend([node, "--power-timeout", "120"]);
        self.baremetal(&all);
        self.wait_node(node, want, Duration::from_secs(150), |n| {
            n["power_state"] == want && n["target_power_state"].is_null()
        });
        let n = self.node(node);
        assert!(n["last_error"].is_null(), "{node}: {}", n["last_error"]);
        start.elapsed().as_secs_f64()
    }
}

impl Drop for Ironic {
    fn drop(&mut self) {
        // The launcher forks its service into a worker: end the whole process group.
        let pgid = self.child.id() as i32;
        unsafe { libc::kill(-pgid, libc::SIGTERM) };
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(10) {
            if let Ok(Some(_)) = self.child.try_wait() {
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        unsafe { libc::kill(-pgid, libc::SIGKILL) };
        let _ = self.child.wait();
    }
}

fn ipmi_at(addr: &str, port: u16, args: &[&str]) -> String {
    let out = Command::new("ipmitool")
        .args([
            "-I",
            "lanplus",
            "-C",
            "3",
            "-H",
            addr,
            "-p",
            &port.to_string(),
        ])
        .args(["-U", "admin", "-P", PASSWORD, "-R", "3", "-N", "2"])
        .args(args)
        .output()
        .expect("ipmitool");
    assert!(
        out.status.success(),
        "ipmitool {}: {}",
        args.join(" "),
        stderr(&out)
    );
    stdout(&out)
}

fn redfish_get(addr: &str, port: u16, path: &str) -> Value {
    let mut resp = bmc_agent(Duration::from_secs(30))
        .get(&format!("https://{addr}:{port}{path}"))
        .header("Authorization", &format!("Basic {}", basic()))
        .call()
        .expect("redfish GET");
    assert_eq!(resp.status().as_u16(), 200, "GET {path}");
    serde_json::from_str(&resp.body_mut().read_to_string().expect("body")).expect("JSON")
}

fn basic() -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(format!("admin:{PASSWORD}"))
}

fn status_of(t: &TestLab, node: &str) -> Value {
    let out = t.lab(&["status", "--json"]);
    assert!(out.status.success(), "lab status: {}", stderr(&out));
    let v: Value = serde_json::from_str(&stdout(&out)).expect("status JSON");
    v["nodes"]
        .as_array()
        .and_then(|n| n.iter().find(|n| n["name"] == node).cloned())
        .unwrap_or_else(|| panic!("no node {node} in lab status"))
}

fn console(u: &Unique, node: &str) -> String {
    stdout(&docker(&[
        "exec",
        &format!("{}-{node}", u.name),
        "cat",
        "/var/lib/lab/console.log",
    ]))
}

fn wait_console(u: &Unique, node: &str, want: &str, within: Duration) {
    let start = Instant::now();
    while !console(u, node).contains(want) {
        assert!(
            start.elapsed() < within,
            "{node}'s console did not show {want:?} within {within:?}: ...{}",
            console(u, node)
                .chars()
                .rev()
                .take(1500)
                .collect::<String>()
                .chars()
                .rev()
                .collect::<String>()
        );
        std::thread::sleep(Duration::from_millis(500));
    }
}

fn lab_wait(t: &TestLab, args: &[&str]) -> f64 {
    let start = Instant::now();
    let mut all = vec!["wait"];
    all.extend(args);
    all.extend(["--timeout", "300"]);
    let out = t.lab(&all);
    assert!(
        out.status.success(),
        "lab {}: {}",
        all.join(" "),
        stderr(&out)
    );
    start.elapsed().as_secs_f64()
}

/// The interfaces Ironic's validation (`baremetal node validate`) passed.
fn validated(ironic: &Ironic, node: &str) -> Vec<String> {
    let (_, v) = ironic.api("GET", &format!("/v1/nodes/{node}/validate"), None);
    v.as_object()
        .expect("an object")
        .iter()
        .filter(|(_, r)| r["result"] == true)
        .map(|(i, _)| i.clone())
        .collect()
}

/// A node's boot device as Ironic reads it from the BMC (`baremetal node boot device show`).
fn boot_device(ironic: &Ironic, node: &str) -> Value {
    let (_, v) = ironic.api(
        "GET",
        &format!("/v1/nodes/{node}/management/boot_device"),
        None,
    );
    v
}

/// The MACs of a node's ports, sorted.
fn port_macs(ironic: &Ironic, node: &str) -> Vec<(String, String)> {
    let (_, v) = ironic.api("GET", &format!("/v1/ports?node={node}"), None);
    let mut ports: Vec<(String, String)> = v["ports"]
        .as_array()
        .expect("ports")
        .iter()
        .map(|p| {
            let s = |k: &str| p[k].as_str().unwrap_or_default().to_string();
            (s("address"), s("uuid"))
        })
        .collect();
    ports.sort();
    ports
}

#[test]
fn ironic_enrols_inspects_and_drives_lab_nodes_over_ipmi_and_redfish() {
    if engine_or_skip("ironic").is_none() {
        return;
    }
    let Some(venv) = ironic_venv() else {
        return;
    };
    let test_start = Instant::now();
    let u = unique("ironic");
    let t = TestLab::new(&u.name, &lab_file(&u));
    let [a, b] = u.net;
    let (ni_bmc, nr_bmc) = (format!("127.{a}.{b}.10"), format!("127.{a}.{b}.11"));
    let (ipmi_port, redfish_port) = (u.port_base, u.port_base + 1);
    let p = u.prefix();

    // Ironic starts (its database made, ~20 s) while lab builds and starts the lab.
    let webroot = t.dir.path().join("webroot");
    let mut ironic = Ironic::start(&venv, u.port_base + 5, &webroot, &format!("http://{p}.3"));
    let out = t.lab(&["up", "--timeout", "300"]);
    assert!(out.status.success(), "lab up: {}", stderr(&out));
    ironic.wait_ready(Duration::from_secs(120));

    // Enrol from `lab inventory`: each node's BMC is on its own host address.
    let inv = |node: &str, driver: &str| {
        let out = t.lab(&[
            "inventory",
            node,
            "--format",
            "ironic",
            "--from",
            "host",
            "--driver",
            driver,
        ]);
        assert!(out.status.success(), "lab inventory: {}", stderr(&out));
        let path = t.dir.path().join(format!("{node}.json"));
        std::fs::write(&path, stdout(&out)).expect("write");
        (
            path,
            serde_json::from_str::<Value>(&stdout(&out)).expect("JSON"),
        )
    };
    let (ni_file, ni_inv) = inv("ni", "ipmi");
    let (nr_file, nr_inv) = inv("nr", "redfish");
    assert_eq!(ni_inv["nodes"][0]["driver_info"]["ipmi_address"], ni_bmc);
    assert_eq!(
        nr_inv["nodes"][0]["driver_info"]["redfish_address"],
        format!("https://{nr_bmc}:{redfish_port}")
    );
    ironic.baremetal(&[
        "create",
        &ni_file.display().to_string(),
        &nr_file.display().to_string(),
    ]);
    for node in ["ni", "nr"] {
        let ok = validated(&ironic, node);
        for iface in ["power", "management"] {
            assert!(
                ok.contains(&iface.to_string()),
                "{node}: {iface} not valid: {ok:?}"
            );
        }
    }
    // `manage` has the conductor check the power credentials with the BMC.
    for node in ["ni", "nr"] {
        ironic.baremetal(&["node", "manage", node, "--wait", "120"]);
        let n = ironic.node(node);
        assert_eq!(
            (n["provision_state"].as_str(), n["power_state"].as_str()),
            (Some("manageable"), Some("power off")),
            "{node}: {n}"
        );
    }

    // ipmi: power on, measured from the request to Ironic's confirmation; the VM really runs.
    let ni_on = ironic.power(&["node", "power", "on"], "ni", "power on");
    assert_eq!(
        ipmi_at(&ni_bmc, ipmi_port, &["power", "status"]).trim(),
        "Chassis Power is on"
    );

    // redfish: out-of-band inspection finds the node's hardware as the lab file defines it.
    // Ports and the sizes lab inventory filled in go first, so what is found is inspection's.
    for (_, uuid) in port_macs(&ironic, "nr") {
        let (status, v) = ironic.api("DELETE", &format!("/v1/ports/{uuid}"), None);
        assert_eq!(status, 204, "{v}");
    }
    ironic.baremetal(&[
        "node",
        "unset",
        "nr",
        "--property",
        "cpus",
        "--property",
        "memory_mb",
        "--property",
        "local_gb",
    ]);
    ironic.baremetal(&["node", "set", "nr", "--inspect-interface", "redfish"]);
    let start = Instant::now();
    ironic.baremetal(&["node", "inspect", "nr", "--wait", "180"]);
    let inspect_secs = start.elapsed().as_secs_f64();
    let nr = ironic.node("nr");
    let props = &nr["properties"];
    // (Ironic 39 no longer sets `cpus`: the count is in the inventory, below.)
    assert_eq!(props["memory_mb"], 1024, "{props}");
    // Ironic's convention: the disk's whole GiB less one (5 GiB disk).
    assert_eq!(props["local_gb"], 4, "{props}");
    assert_eq!(props["cpu_arch"], "x86_64", "{props}");
    let lab_nr = &nr_inv["nodes"][0];
    let mut macs: Vec<String> = lab_nr["ports"]
        .as_array()
        .expect("ports")
        .iter()
        .map(|p| p["address"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(macs.len(), 2, "nr has 2 NICs: {lab_nr}");
    macs.sort();
    let found: Vec<String> = port_macs(&ironic, "nr")
        .into_iter()
        .map(|(m, _)| m)
        .collect();
    assert_eq!(found, macs, "inspection made a port per NIC");
    let (_, inventory) = ironic.api("GET", "/v1/nodes/nr/inventory", None);
    let hw = &inventory["inventory"];
    assert_eq!(hw["cpu"]["count"], 2, "{hw}");
    assert_eq!(hw["memory"]["physical_mb"], 1024, "{hw}");
    assert_eq!(hw["disks"].as_array().map(Vec::len), Some(1), "{hw}");
    assert_eq!(hw["disks"][0]["size"], 5u64 << 30, "{hw}");
    assert_eq!(
        hw["disks"][0]["serial"], lab_nr["properties"]["root_device"]["serial"],
        "the disk's serial, which lab inventory gives as the root device hint: {hw}"
    );
    let mut nics: Vec<&str> = hw["interfaces"]
        .as_array()
        .expect("interfaces")
        .iter()
        .map(|i| i["mac_address"].as_str().unwrap())
        .collect();
    nics.sort();
    assert_eq!(nics, macs, "{hw}");
    let vendor = &hw["system_vendor"];
    let extra = &lab_nr["extra"];
    assert_eq!(
        (
            &vendor["manufacturer"],
            &vendor["product_name"],
            &vendor["serial_number"],
            &vendor["system_uuid"]
        ),
        (
            &extra["vendor"],
            &extra["model"],
            &extra["serial"],
            &extra["system_uuid"]
        ),
        "{hw}"
    );
    assert_eq!(hw["boot"]["current_boot_mode"], "bios", "{hw}");

    // redfish: boot mode and device, read back from Ironic and from the BMC (Redfish and IPMI).
    ironic.baremetal(&["node", "boot", "mode", "set", "nr", "uefi"]);
    ironic.wait_node("nr", "in UEFI boot mode", Duration::from_secs(60), |n| {
        n["boot_mode"] == "uefi"
    });
    let system = redfish_get(&nr_bmc, redfish_port, "/redfish/v1/Systems/1");
    assert_eq!(system["Boot"]["BootSourceOverrideMode"], "UEFI", "{system}");
    assert!(
        ipmi_at(&nr_bmc, ipmi_port, &["chassis", "bootparam", "get", "5"])
            .contains("BIOS EFI boot")
    );
    ironic.baremetal(&["node", "boot", "mode", "set", "nr", "bios"]);
    ironic.wait_node("nr", "in BIOS boot mode", Duration::from_secs(60), |n| {
        n["boot_mode"] == "bios"
    });
    ironic.baremetal(&["node", "boot", "device", "set", "nr", "pxe", "--persistent"]);
    assert_eq!(
        boot_device(&ironic, "nr"),
        json!({"boot_device": "pxe", "persistent": true})
    );
    let system = redfish_get(&nr_bmc, redfish_port, "/redfish/v1/Systems/1");
    assert_eq!(
        (
            &system["Boot"]["BootSourceOverrideTarget"],
            &system["Boot"]["BootSourceOverrideEnabled"],
            &system["Boot"]["BootSourceOverrideMode"]
        ),
        (&json!("Pxe"), &json!("Continuous"), &json!("Legacy"))
    );

    // redfish: Ironic's virtual media API puts the smoke ISO into the BMC's CD drive (Ironic
    // fetches it from the web service and publishes it there under redfish/), and the node boots it.
    let (status, v) = ironic.api(
        "POST",
        "/v1/nodes/nr/vmedia",
        Some(json!({"device_type": "cdrom", "image_url": format!("http://{p}.3/smoke/smoke.iso")})),
    );
    assert_eq!(status, 204, "{v}");
    let start = Instant::now();
    let image = loop {
        let (_, v) = ironic.api("GET", "/v1/nodes/nr/vmedia", None);
        let cd = v
            .as_array()
            .and_then(|l| {
                l.iter()
                    .find(|d| d["media_types"].to_string().contains("CD"))
            })
            .cloned()
            .unwrap_or(Value::Null);
        if cd["inserted"] == true {
            break cd["image"].as_str().unwrap_or_default().to_string();
        }
        let n = ironic.node("nr");
        assert!(
            n["last_error"].is_null() && start.elapsed() < Duration::from_secs(120),
            "virtual media not attached: {v} {}",
            n["last_error"]
        );
        std::thread::sleep(Duration::from_secs(1));
    };
    assert!(
        image.starts_with(&format!("http://{p}.3/redfish/")),
        "{image}"
    );
    let cd = redfish_get(
        &nr_bmc,
        redfish_port,
        "/redfish/v1/Systems/1/VirtualMedia/CD",
    );
    assert_eq!(
        (&cd["Inserted"], &cd["Image"]),
        (&json!(true), &json!(image)),
        "{cd}"
    );
    ironic.baremetal(&["node", "boot", "device", "set", "nr", "cdrom"]);
    assert_eq!(
        boot_device(&ironic, "nr"),
        json!({"boot_device": "cdrom", "persistent": false})
    );
    ironic.power(&["node", "power", "on"], "nr", "power on");

    // ipmi, while nr boots: the smoke OS came up; an NMI reaches its kernel.
    let ni_up = lab_wait(&t, &["ni", "--phase", "up"]);
    ironic.baremetal(&["node", "inject", "nmi", "ni"]);
    wait_console(&u, "ni", "NMI received", Duration::from_secs(30));

    // ipmi: boot device, persistent or once, and the UEFI bit Ironic sets for a UEFI node.
    let bootparam = || ipmi_at(&ni_bmc, ipmi_port, &["chassis", "bootparam", "get", "5"]);
    ironic.baremetal(&["node", "boot", "device", "set", "ni", "pxe", "--persistent"]);
    assert_eq!(
        boot_device(&ironic, "ni"),
        json!({"boot_device": "pxe", "persistent": true})
    );
    let flags = bootparam();
    assert!(
        flags.contains("Force PXE") && flags.contains("Options apply to all future boots"),
        "{flags}"
    );
    ironic.baremetal(&[
        "node",
        "set",
        "ni",
        "--property",
        "capabilities=boot_mode:uefi",
    ]);
    ironic.baremetal(&["node", "boot", "device", "set", "ni", "disk"]);
    assert_eq!(
        boot_device(&ironic, "ni"),
        json!({"boot_device": "disk", "persistent": false})
    );
    let flags = bootparam();
    assert!(
        flags.contains("Force Boot from default Hard-Drive")
            && flags.contains("BIOS EFI boot")
            && !flags.contains("Options apply to all future boots"),
        "{flags}"
    );
    ironic.baremetal(&[
        "node",
        "set",
        "ni",
        "--property",
        "capabilities=boot_mode:bios",
    ]);
    ironic.baremetal(&["node", "boot", "device", "set", "ni", "pxe"]);
    assert!(bootparam().contains("BIOS PC Compatible (legacy) boot"));

    // Soft power off: the smoke OS sees the ACPI power button and powers off.
    let soft_off = |node: &str, bmc: &str| {
        let secs = ironic.power(&["node", "power", "off", "--soft"], node, "power off");
        assert_eq!(
            ipmi_at(bmc, ipmi_port, &["power", "status"]).trim(),
            "Chassis Power is off"
        );
        assert!(console(&u, node).contains("ACPI power button pressed"));
        secs
    };
    let ni_soft = soft_off("ni", &ni_bmc);

    // ipmi: power on, then reboot: a new boot of the VM (lab counts it); then a hard power off.
    ironic.power(&["node", "power", "on"], "ni", "power on");
    let boots = status_of(&t, "ni")["boots"].as_u64().expect("boots");
    ironic.power(&["node", "reboot"], "ni", "power on");
    let start = Instant::now();
    while status_of(&t, "ni")["boots"].as_u64() == Some(boots) {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "ni did not boot again"
        );
        std::thread::sleep(Duration::from_secs(1));
    }
    ironic.power(&["node", "power", "off"], "ni", "power off");
    assert_eq!(
        ipmi_at(&ni_bmc, ipmi_port, &["power", "status"]).trim(),
        "Chassis Power is off"
    );

    // redfish: the node booted the CD Ironic attached.
    let nr_up = lab_wait(&t, &["nr", "--phase", "up", "--boot-source", "cd"]);
    let s = status_of(&t, "nr");
    assert_eq!(
        (&s["power"], &s["boot_source"]),
        (&json!("on"), &json!("cd")),
        "{s}"
    );
    let nr_soft = soft_off("nr", &nr_bmc);

    // redfish: detaching the virtual media empties the CD drive.
    let (status, v) = ironic.api("DELETE", "/v1/nodes/nr/vmedia", None);
    assert_eq!(status, 204, "{v}");
    let start = Instant::now();
    loop {
        let cd = redfish_get(
            &nr_bmc,
            redfish_port,
            "/redfish/v1/Systems/1/VirtualMedia/CD",
        );
        if cd["Inserted"] == false {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "CD still inserted: {cd}"
        );
        std::thread::sleep(Duration::from_secs(1));
    }
    let (_, v) = ironic.api("GET", "/v1/nodes/nr/vmedia", None);
    assert!(
        v.as_array()
            .is_some_and(|l| l.iter().all(|d| d["inserted"] == false)),
        "{v}"
    );

    // Power off (hard) and on again through Ironic's redfish driver.
    let nr_on = ironic.power(&["node", "power", "on"], "nr", "power on");
    assert_eq!(
        ipmi_at(&nr_bmc, ipmi_port, &["power", "status"]).trim(),
        "Chassis Power is on"
    );
    let nr_off = ironic.power(&["node", "power", "off"], "nr", "power off");
    assert_eq!(
        ipmi_at(&nr_bmc, ipmi_port, &["power", "status"]).trim(),
        "Chassis Power is off"
    );

    eprintln!(
        "ironic: ni power on {ni_on:.1}s, up {ni_up:.1}s later, soft off {ni_soft:.1}s; \
         nr inspected in {inspect_secs:.1}s, up from the CD {nr_up:.1}s after ni's tests, soft off \
         {nr_soft:.1}s, power on {nr_on:.1}s, off {nr_off:.1}s; test {:.0}s",
        test_start.elapsed().as_secs_f64()
    );
    drop(ironic);
}
