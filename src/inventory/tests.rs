//! The `json` format field by field against the lab file it comes from, and every way the
//! options can be wrong. (The other formats are checked against their tools' own schemas and
//! syntax in tests/inventory.rs.)

use serde_json::{json, Value};

use super::{render, Driver, Format, Options, Side};
use crate::lab::Lab;

const LAB: &str = r#"
[lab]
name = "inv"
publish = "0.0.0.0"
[network]
subnet = "10.7.0.0/24"
dns = ["10.7.0.1"]
[services.dhcp]
kind = "dnsmasq"
dhcp_range = ["10.7.0.150", "10.7.0.200"]
[services.web]
kind = "httpd"
root = "."
[node_defaults]
cpus = 2
memory = "1G"
disk = ["3G", "512M"]
bmc_user = "root"
bmc_password = "s3cret$it's"
firmware = "uefi"
[nodes.master]
mac = "02:00:00:00:00:10"
nics = 2
ip = "10.7.0.100"
bmc_ip = "10.7.0.6"
ipmi_port = 16230
redfish_port = 18443
serial = "SER-1"
uuid = "6f1c1d2e-3a4b-4c5d-8e9f-0a1b2c3d4e5f"
[nodes.worker]
count = 2
mac = "02:00:00:00:00:20"
ip = "10.7.0.102"
bmc_ip = "10.7.0.7"
firmware = "bios"
power = "off"
"#;

fn lab() -> Lab {
    let dir = std::env::temp_dir();
    crate::lab::from_str(&dir.join("inventory-test.toml"), LAB, &|_| None).expect("valid lab")
}

fn json_of(opts: &Options) -> Value {
    serde_json::from_str(&render(&lab(), opts).expect("renders")).expect("JSON")
}

fn names(v: &Value) -> Vec<&str> {
    v["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["name"].as_str().unwrap())
        .collect()
}

#[test]
fn json_lists_every_node_with_nics_hardware_identity_and_both_viewpoints() {
    let v = json_of(&Options::default());
    assert_eq!(v["lab"], "inv");
    assert_eq!(
        v["network"],
        json!({"subnet": "10.7.0.0/24", "netmask": "255.255.255.0", "gateway": "10.7.0.1", "dns": ["10.7.0.1"]})
    );
    assert_eq!(names(&v), ["master", "worker-1", "worker-2"]);
    let m = &v["nodes"][0];
    assert_eq!(m["group"], "master");
    assert_eq!(m["boot_mac"], "02:00:00:00:00:10");
    assert_eq!(m["macs"], json!(["02:00:00:00:00:10", "02:00:00:00:00:11"]));
    assert_eq!(m["ip"], "10.7.0.100");
    assert_eq!(m["ips"], json!(["10.7.0.100", "10.7.0.101"]));
    assert_eq!(m["arch"], "x86_64");
    assert_eq!(m["cpus"], 2);
    assert_eq!(m["memory_mb"], 1024);
    assert_eq!(m["disks"][0]["device"], "/dev/sda");
    assert_eq!(m["disks"][0]["bytes"], 3u64 << 30);
    assert_eq!(m["disks"][1]["device"], "/dev/sdb");
    assert_eq!(m["disks"][1]["bytes"], 512u64 << 20);
    assert_ne!(m["disks"][0]["serial"], m["disks"][1]["serial"]);
    assert_eq!(m["firmware"], "uefi");
    assert_eq!(m["power"], "on");
    assert_eq!(m["identity"]["serial"], "SER-1");
    assert_eq!(
        m["identity"]["uuid"],
        "6f1c1d2e-3a4b-4c5d-8e9f-0a1b2c3d4e5f"
    );
    assert_eq!(m["identity"]["vendor"], "Metal Lab");
    // publish = 0.0.0.0: the host reaches the published ports on loopback.
    assert_eq!(
        m["bmc"],
        json!({
            "username": "root",
            "password": "s3cret$it's",
            "redfish_system": "/redfish/v1/Systems/1",
            "lab": {
                "address": "10.7.0.6", "ipmi_port": 623, "redfish_port": 443,
                "redfish_url": "https://10.7.0.6:443/redfish/v1/Systems/1"
            },
            "host": {
                "address": "127.0.0.1", "ipmi_port": 16230, "redfish_port": 18443,
                "redfish_url": "https://127.0.0.1:18443/redfish/v1/Systems/1"
            }
        })
    );
    let w = &v["nodes"][2];
    assert_eq!(w["group"], "worker");
    assert_eq!(w["macs"], json!(["02:00:00:00:00:21"]));
    assert_eq!(w["firmware"], "bios");
    assert_eq!(w["power"], "off");
    assert_eq!(w["bmc"]["lab"]["address"], "10.7.0.8");
    assert_eq!(
        w["bmc"]["host"],
        json!({"address": "127.0.0.1", "ipmi_port": null, "redfish_port": null, "redfish_url": null})
    );
}

#[test]
fn json_of_named_nodes_only() {
    let v = json_of(&Options {
        nodes: vec!["worker-2".into(), "master".into()],
        ..Options::default()
    });
    assert_eq!(names(&v), ["master", "worker-2"], "in the lab's order");
}

fn problem(opts: Options) -> super::Problem {
    render(&lab(), &opts).expect_err("a problem")
}

#[test]
fn an_unknown_node_is_refused_with_the_known_ones() {
    let p = problem(Options {
        nodes: vec!["nope".into()],
        ..Options::default()
    });
    assert_eq!(p.message, "lab `inv` has no node `nope`");
    assert_eq!(p.help, "use one of: master, worker-1, worker-2");
}

#[test]
fn from_host_needs_the_published_port_of_every_node() {
    let p = problem(Options {
        format: Some(Format::Ironic),
        from: Some(Side::Host),
        ..Options::default()
    });
    assert!(
        p.message.ends_with(
            "inventory-test.toml: --from host needs each node's published ipmi_port, and node(s) worker-1, worker-2 publish none"
        ),
        "{}",
        p.message
    );
    assert!(
        p.help.starts_with(
            "set `ipmi_port` (the host port for the BMC's 623/udp) in [nodes.worker] of "
        ),
        "{}",
        p.help
    );
    assert!(
        p.help.ends_with(
            "or use --from lab (the BMC's own address on the lab network, e.g. 10.7.0.7:623)"
        ),
        "{}",
        p.help
    );
    // master alone publishes both: fine.
    let ok = render(
        &lab(),
        &Options {
            format: Some(Format::Ironic),
            driver: Some(Driver::Redfish),
            from: Some(Side::Host),
            nodes: vec!["master".into()],
            ..Options::default()
        },
    )
    .expect("master publishes redfish_port");
    assert!(
        ok.contains("\"redfish_address\": \"https://127.0.0.1:18443\""),
        "{ok}"
    );
}

#[test]
fn options_that_do_not_apply_are_refused() {
    for (format, driver, from) in [
        (None, Some(Driver::Redfish), None),
        (Some(Format::Json), None, Some(Side::Host)),
    ] {
        let p = problem(Options {
            format,
            driver,
            from,
            ..Options::default()
        });
        assert_eq!(
            p.message,
            "--driver and --from do not apply to --format json"
        );
    }
    let p = problem(Options {
        format: Some(Format::Maas),
        namespace: Some("metal3".into()),
        ..Options::default()
    });
    assert_eq!(p.message, "--namespace does not apply to --format maas");
    for bad in ["Metal3", "-a", "a_b", ""] {
        let p = problem(Options {
            format: Some(Format::Metal3),
            namespace: Some(bad.into()),
            ..Options::default()
        });
        assert_eq!(
            p.message,
            format!("--namespace `{bad}` is not a Kubernetes namespace name")
        );
    }
}

#[test]
fn a_lab_without_nodes_has_nothing_to_enrol() {
    let text = "[lab]\nname = \"empty\"\n[network]\nsubnet = \"10.7.1.0/24\"\n";
    let lab = crate::lab::from_str(&std::env::temp_dir().join("e.toml"), text, &|_| None)
        .expect("valid lab");
    let p = render(&lab, &Options::default()).expect_err("no nodes");
    assert!(
        p.message
            .ends_with("e.toml: lab `empty` has no nodes: there is nothing to enrol"),
        "{}",
        p.message
    );
}

#[test]
fn from_host_a_node_with_bmc_publish_is_reached_on_that_address() {
    // As `lab up` publishes it (Node::ports): IPMI and Redfish on bmc_publish, not lab.publish.
    let text = LAB.replace(
        "serial = \"SER-1\"",
        "serial = \"SER-1\"\nbmc_publish = \"127.0.0.61\"",
    );
    let dir = std::env::temp_dir();
    let lab = crate::lab::from_str(&dir.join("inventory-test.toml"), &text, &|_| None)
        .expect("valid lab");
    let v: Value = serde_json::from_str(
        &render(
            &lab,
            &Options {
                nodes: vec!["master".into()],
                ..Options::default()
            },
        )
        .expect("renders"),
    )
    .expect("JSON");
    assert_eq!(
        v["nodes"][0]["bmc"]["host"],
        json!({
            "address": "127.0.0.61", "ipmi_port": 16230, "redfish_port": 18443,
            "redfish_url": "https://127.0.0.61:18443/redfish/v1/Systems/1"
        })
    );
}
