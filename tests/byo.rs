//! Bring your own provisioner: a lab without lab's dnsmasq and httpd, whose nodes network-boot
//! from the user's own provisioner (`labs/byo-provisioner/`, a small Python DHCP/TFTP/HTTP server
//! built FROM lab's smoke image), with their boot phases taken from what each node itself puts
//! on the wire (`lab: wire: ...` lines of its container).

mod common;

use std::path::Path;
use std::time::Instant;

use common::*;
use metal_lab::engine::Engine;
use metal_lab::lab::ServiceKind;
use metal_lab::phase::{self, NodeTraffic, Phase};

#[test]
fn the_example_lab_has_no_lab_dhcp_and_builds_its_provisioner() {
    let lab = metal_lab::lab::load(Path::new("labs/byo-provisioner.toml"))
        .unwrap_or_else(|d| panic!("{d}"));
    let kinds: Vec<_> = lab.services().iter().map(|s| s.kind()).collect();
    assert_eq!(kinds, [ServiceKind::Container]);
    assert_eq!(lab.nodes().len(), 2);
    assert!(lab.nodes().iter().all(|n| n.profile.is_none()));
}

/// Removes the provisioner's image, which is this test's alone (its tag has the lab's unique name),
/// after the lab is down: the lab's guard is dropped first, as it was made after this one.
struct RemoveImage(String);

impl Drop for RemoveImage {
    fn drop(&mut self) {
        let _ = std::process::Command::new("docker")
            .args(["rmi", &self.0])
            .output();
    }
}

/// Copies the example provisioner's build directory into `dir`.
fn copy_provisioner(dir: &Path) {
    let from = Path::new(env!("CARGO_MANIFEST_DIR")).join("labs/byo-provisioner");
    std::fs::create_dir_all(dir).expect("mkdir");
    for entry in std::fs::read_dir(&from).expect("labs/byo-provisioner") {
        let entry = entry.expect("entry");
        std::fs::copy(entry.path(), dir.join(entry.file_name())).expect("copy");
    }
}

#[test]
fn a_node_boots_through_your_own_provisioner_with_phases_from_its_wire() {
    let Some(engine) = engine_or_skip("byo") else {
        return;
    };
    let u = unique("byo");
    let p = u.prefix();
    let mac = "02:b0:00:00:00:01";
    let toml = format!(
        r#"
[lab]
name = "{name}"
[network]
subnet = "{subnet}"

[services.provisioner]
kind = "container"
build = "provisioner"
ip = "{p}.2"
cap_add = ["NET_RAW"]
env = {{ SERVER_IP = "{p}.2", LEASES = "{mac}={p}.100=n" }}
"#,
        name = u.name,
        subnet = u.subnet(),
    ) + &tcg_node(&u, mac, "pxe");
    let _image = RemoveImage(format!("metal-lab/{}-provisioner:latest", u.name));
    let t = TestLab::new(&u.name, &toml);
    copy_provisioner(&t.dir.path().join("provisioner"));

    let dry = stdout(&t.lab(&["up", "--dry-run"]));
    assert!(
        dry.contains("metal-lab/smoke:latest"),
        "the provisioner's build FROM lab's smoke image is in the plan: {dry}"
    );
    let out = t.lab(&["up", "--timeout", "600"]);
    assert!(out.status.success(), "lab up failed: {}", stderr(&out));
    let started = Instant::now();
    let wait = t.lab(&["wait", "--phase", "up", "--timeout", "300"]);
    assert!(
        wait.status.success(),
        "node n did not come up through the provisioner: {}\n{}\nprovisioner log:\n{}",
        stdout(&wait),
        stderr(&wait),
        container_log(&format!("{}-provisioner", u.name))
    );
    eprintln!(
        "node n was up {:.1}s after lab up returned",
        started.elapsed().as_secs_f64()
    );

    // Nothing of lab's own DHCP or web service: the only service is the provisioner.
    let status = t.lab(&["status", "--json"]);
    assert!(status.status.success(), "{}", stderr(&status));
    let json: serde_json::Value = serde_json::from_str(&stdout(&status)).expect("status JSON");
    let kinds: Vec<&str> = json["services"]
        .as_array()
        .expect("services")
        .iter()
        .map(|s| s["kind"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(kinds, ["container"], "{json}");
    let node = &json["nodes"][0];
    assert_eq!(node["phase"], "up", "{node}");
    // The smoke OS's report, seen on the node's wire, says what the guest saw of its machine.
    assert_eq!(node["guest"]["serial"], node["serial"], "{node}");

    // The phases, as the node's own wire lines give them (no lab service logs), in the order they
    // were reached.
    let container = format!("{}-n", u.name);
    let rt = tokio::runtime::Runtime::new().expect("tokio runtime");
    let log = rt
        .block_on(engine.logs_since(&container, None))
        .expect("node log");
    let traffic = NodeTraffic {
        name: "n".into(),
        mac: mac.into(),
        ip: format!("{p}.100"),
        boot_files: Vec::new(),
    };
    let mut reached: Vec<Phase> = Vec::new();
    for (phase, _) in phase::phases_seen(&traffic, &log, "", "") {
        if reached.last().is_none_or(|last| phase > *last) {
            reached.push(phase);
        }
    }
    let wire: Vec<&str> = log.lines().filter(|l| l.contains("lab: wire: ")).collect();
    assert_eq!(
        reached,
        [Phase::Dhcp, Phase::Pxe, Phase::Kernel, Phase::Up],
        "wire lines:\n{}",
        wire.join("\n")
    );
    let has = |needle: &str| wire.iter().any(|l| l.contains(needle));
    let server = format!("server={p}.2");
    assert!(
        has(&format!("dhcp ack mac={mac} ip={p}.100 {server}")),
        "{wire:#?}"
    );
    assert!(has("vendor=PXEClient:"), "the PXE client's DHCP: {wire:#?}");
    assert!(
        has(&format!("tftp ok boot.ipxe mac={mac} {server}")),
        "{wire:#?}"
    );
    assert!(has("http reply 200 GET /boot/vmlinuz"), "{wire:#?}");
    assert!(
        has("http reply 204 GET /lab/report/02-b0-00-00-00-01?"),
        "{wire:#?}"
    );
    // `phase_since` is the time of the report on the wire.
    let report = wire
        .iter()
        .rev()
        .find(|l| l.contains("http reply 204 GET /lab/report/"))
        .and_then(|l| l.split(' ').next())
        .unwrap_or_default();
    assert_eq!(node["phase_since"], report, "{node}");
}
