//! `lab inventory` in every format, checked by each provisioner's own schema or CLI syntax (the
//! checks are in tests/support/inventory_check.py, the upstream schemas in
//! tests/fixtures/inventory/), and what the tool would receive compared with the lab as
//! `lab config --json` expands it. No engine is needed: every run gets a DOCKER_HOST that does not
//! exist, so a command that asked the engine would fail.
//!
//! `.ci/run` puts python-ironicclient, jsonschema and PyYAML into the venv LAB_VENV.

use std::path::Path;
use std::process::{Command, Output};

use serde_json::Value;

mod common;
use common::venv_python;

const LAB: &str = r#"
[lab]
name = "invtest"
publish = "127.0.0.1"

[network]
subnet = "10.231.7.0/24"
dns = ["10.231.7.1"]

[services.dhcp]
kind = "dnsmasq"
dhcp_range = ["10.231.7.150", "10.231.7.200"]

[services.web]
kind = "httpd"
root = "."

[node_defaults]
cpus = 2
memory = "1536M"
disk = ["5G", "2G"]
bmc_user = "enrol"
bmc_password = "pa$s'wd&x"

[nodes.master]
mac = "02:aa:00:00:00:10"
nics = 2
ip = "10.231.7.100"
bmc_ip = "10.231.7.6"
ipmi_port = 26230
redfish_port = 26443
firmware = "uefi"

[nodes.worker]
count = 2
mac = "02:aa:00:00:00:20"
ip = "10.231.7.102"
bmc_ip = "10.231.7.7"
ipmi_port = 26231
redfish_port = 26444
power = "off"
"#;

struct Fixture {
    dir: tempfile::TempDir,
}

impl Fixture {
    fn new(text: &str) -> Fixture {
        let dir = tempfile::tempdir().expect("a temporary directory");
        std::fs::write(dir.path().join("lab.toml"), text).expect("write the lab file");
        Fixture { dir }
    }

    fn lab(&self, args: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_lab"))
            .arg("-f")
            .arg(self.dir.path().join("lab.toml"))
            .args(args)
            .env("DOCKER_HOST", "unix:///nonexistent/lab-inventory-test.sock")
            .env_remove("LAB_FILE")
            .output()
            .expect("run the lab binary")
    }

    /// `lab ARGS`, which must succeed; its stdout.
    fn ok(&self, args: &[&str]) -> String {
        let o = self.lab(args);
        assert!(
            o.status.success(),
            "lab {}: {}\n{}",
            args.join(" "),
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        );
        String::from_utf8(o.stdout).expect("UTF-8 output")
    }

    /// The lab as `lab config --json` expands it: its nodes by name.
    fn config_nodes(&self) -> Vec<Value> {
        let v: Value = serde_json::from_str(&self.ok(&["config", "--json"])).expect("JSON");
        v["nodes"].as_array().expect("nodes").clone()
    }

    /// `lab inventory ARGS` saved as `name`, then checked by inventory_check.py's `check`.
    fn check(&self, args: &[&str], name: &str, check: &[&str]) -> Value {
        let mut all = vec!["inventory"];
        all.extend_from_slice(args);
        let text = self.ok(&all);
        let path = self.dir.path().join(name);
        std::fs::write(&path, &text).expect("write the inventory");
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/support/inventory_check.py");
        let o = Command::new(venv_python())
            .arg(script)
            .arg(check[0])
            .arg(&path)
            .args(&check[1..])
            .output()
            .expect("run the venv's python");
        assert!(
            o.status.success(),
            "lab {}: the {} check failed:\n{}{}\n--- the output:\n{text}",
            all.join(" "),
            check[0],
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        );
        serde_json::from_slice(&o.stdout).expect("the check's JSON summary")
    }
}

fn s(v: &Value) -> &str {
    v.as_str().unwrap_or_else(|| panic!("not a string: {v}"))
}

/// The node's published port, or the lab network's, and the address, as the side sees it.
fn endpoint(node: &Value, side: &str, driver: &str) -> (String, u64) {
    match (side, driver) {
        ("lab", "ipmi") => (s(&node["bmc_ip"]).to_string(), 623),
        ("lab", _) => (s(&node["bmc_ip"]).to_string(), 443),
        (_, "ipmi") => ("127.0.0.1".into(), node["ipmi_port"].as_u64().unwrap()),
        _ => ("127.0.0.1".into(), node["redfish_port"].as_u64().unwrap()),
    }
}

/// Every protocol from every side.
const VARIANTS: [(&str, &str); 4] = [
    ("ipmi", "lab"),
    ("ipmi", "host"),
    ("redfish", "lab"),
    ("redfish", "host"),
];

fn macs(node: &Value) -> Vec<String> {
    node["nic_macs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| s(m).to_string())
        .collect()
}

#[test]
fn ironic_nodes_load_through_ironicclient_and_match_ironics_api_schemas() {
    let f = Fixture::new(LAB);
    let config = f.config_nodes();
    for (driver, side) in VARIANTS {
        let args = ["--format", "ironic", "--driver", driver, "--from", side];
        let sum = f.check(&args, "nodes.json", &["ironic", driver]);
        let nodes = sum["nodes"].as_array().unwrap();
        assert_eq!(nodes.len(), config.len(), "{args:?}");
        for (n, c) in nodes.iter().zip(&config) {
            assert_eq!(n["name"], c["name"]);
            let (addr, port) = endpoint(c, side, driver);
            let di = &n["driver_info"];
            if driver == "ipmi" {
                assert_eq!(di["ipmi_address"], addr.as_str(), "{args:?}");
                assert_eq!(di["ipmi_port"], port, "{args:?}");
                assert_eq!(di["ipmi_username"], c["bmc_user"]);
                assert_eq!(di["ipmi_password"], c["bmc_password"]);
            } else {
                assert_eq!(di["redfish_address"], format!("https://{addr}:{port}"));
                assert_eq!(di["redfish_system_id"], "/redfish/v1/Systems/1");
                assert_eq!(di["redfish_username"], c["bmc_user"]);
                assert_eq!(di["redfish_password"], c["bmc_password"]);
                assert_eq!(di["redfish_verify_ca"], false);
            }
            let p = &n["properties"];
            assert_eq!(p["cpus"], c["cpus"]);
            assert_eq!(p["memory_mb"], c["memory_mb"]);
            assert_eq!(
                p["local_gb"],
                c["disks"][0]["bytes"].as_u64().unwrap() >> 30
            );
            assert_eq!(p["cpu_arch"], "x86_64");
            let mode = if c["firmware"] == "uefi" {
                "uefi"
            } else {
                "bios"
            };
            assert_eq!(p["capabilities"], format!("boot_mode:{mode}"));
            assert_eq!(p["root_device"]["serial"], c["disks"][0]["serial"]);
            assert_eq!(n["extra"]["system_uuid"], c["uuid"]);
            assert_eq!(n["extra"]["serial"], c["serial"]);
            let ports: Vec<(String, bool)> = sum["ports"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|p| p["node"] == c["name"])
                .map(|p| (s(&p["address"]).to_string(), p["pxe_enabled"] == true))
                .collect();
            let want: Vec<(String, bool)> = macs(c)
                .into_iter()
                .enumerate()
                .map(|(i, m)| (m, i == 0))
                .collect();
            assert_eq!(
                ports, want,
                "{}: a port per NIC, PXE on the first",
                c["name"]
            );
        }
    }
}

#[test]
fn metal3_hosts_match_the_baremetalhost_crd() {
    let f = Fixture::new(LAB);
    let config = f.config_nodes();
    for (driver, side) in VARIANTS {
        let args = [
            "--format",
            "metal3",
            "--driver",
            driver,
            "--from",
            side,
            "--namespace",
            "metal3",
        ];
        let sum = f.check(&args, "hosts.yaml", &["kube"]);
        let hosts = sum["BareMetalHost"].as_array().unwrap();
        assert_eq!(hosts.len(), config.len());
        assert_eq!(sum["Secret"].as_array().unwrap().len(), config.len());
        for (h, c) in hosts.iter().zip(&config) {
            assert_eq!(h["metadata"]["name"], c["name"]);
            assert_eq!(h["metadata"]["namespace"], "metal3");
            let spec = &h["spec"];
            let (addr, port) = endpoint(c, side, driver);
            let want = if driver == "ipmi" {
                format!("ipmi://{addr}:{port}")
            } else {
                format!("redfish-virtualmedia://{addr}:{port}/redfish/v1/Systems/1")
            };
            assert_eq!(spec["bmc"]["address"], want.as_str());
            assert_eq!(
                spec["bmc"]["disableCertificateVerification"] == true,
                driver == "redfish"
            );
            assert_eq!(spec["bootMACAddress"], c["mac"]);
            let mode = if c["firmware"] == "uefi" {
                "UEFI"
            } else {
                "legacy"
            };
            assert_eq!(spec["bootMode"], mode);
            assert_eq!(spec["online"], c["power"] == "on");
            assert_eq!(
                spec["rootDeviceHints"]["serialNumber"],
                c["disks"][0]["serial"]
            );
            let secret = sum["Secret"]
                .as_array()
                .unwrap()
                .iter()
                .find(|x| x["metadata"]["name"] == spec["bmc"]["credentialsName"])
                .expect("the host's secret");
            assert_eq!(secret["stringData"]["username"], c["bmc_user"]);
            assert_eq!(secret["stringData"]["password"], c["bmc_password"]);
        }
    }
}

#[test]
fn tinkerbell_hardware_and_rufio_machines_match_their_crds() {
    let f = Fixture::new(LAB);
    let config = f.config_nodes();
    for (driver, side) in VARIANTS {
        let args = ["--format", "tinkerbell", "--driver", driver, "--from", side];
        let sum = f.check(&args, "tink.yaml", &["kube"]);
        let hw = sum["Hardware"].as_array().unwrap();
        let machines = sum["Machine"].as_array().unwrap();
        assert_eq!(hw.len(), config.len());
        assert_eq!(machines.len(), config.len());
        for ((h, m), c) in hw.iter().zip(machines).zip(&config) {
            assert_eq!(h["metadata"]["namespace"], "default");
            let dhcp = &h["spec"]["interfaces"][0]["dhcp"];
            assert_eq!(dhcp["mac"], c["mac"]);
            assert_eq!(dhcp["ip"]["address"], c["ip"]);
            assert_eq!(dhcp["ip"]["netmask"], "255.255.255.0");
            assert_eq!(dhcp["ip"]["gateway"], "10.231.7.1");
            assert_eq!(dhcp["uefi"], c["firmware"] == "uefi");
            assert_eq!(dhcp["hostname"], c["name"]);
            assert_eq!(h["spec"]["resources"]["cpu"], c["cpus"].to_string());
            assert_eq!(
                h["spec"]["resources"]["memory"],
                format!("{}Mi", c["memory_mb"])
            );
            assert_eq!(h["spec"]["disks"][1]["device"], "/dev/sdb");
            assert_eq!(
                h["metadata"]["annotations"]["metal-lab.io/macs"],
                macs(c).join(",")
            );
            assert_eq!(h["spec"]["bmcRef"]["name"], m["metadata"]["name"]);
            let conn = &m["spec"]["connection"];
            let (addr, port) = endpoint(c, side, driver);
            assert_eq!(conn["host"], addr.as_str());
            assert_eq!(conn["port"], port);
            let order = if driver == "ipmi" {
                "ipmitool"
            } else {
                "gofish"
            };
            assert_eq!(conn["providerOptions"]["preferredOrder"][0], order);
        }
    }
}

#[test]
fn maas_commands_use_only_parameters_maas_declares() {
    let f = Fixture::new(LAB);
    let config = f.config_nodes();
    for (driver, side) in VARIANTS {
        let args = ["--format", "maas", "--driver", driver, "--from", side];
        let sum = f.check(&args, "enrol.sh", &["maas"]);
        let machines = sum["machines"].as_array().unwrap();
        assert_eq!(machines.len(), config.len());
        for (m, c) in machines.iter().zip(&config) {
            let one = |k: &str| s(&m[k][0]).to_string();
            assert_eq!(one("hostname"), s(&c["name"]));
            assert_eq!(one("architecture"), "amd64/generic");
            let got: Vec<String> = m["mac_addresses"]
                .as_array()
                .unwrap()
                .iter()
                .map(|x| s(x).to_string())
                .collect();
            assert_eq!(got, macs(c));
            assert_eq!(one("power_type"), driver);
            let (addr, port) = endpoint(c, side, driver);
            let want = match (driver, port) {
                ("ipmi", 623) => addr.clone(),
                ("ipmi", p) => format!("{addr}:{p}"),
                (_, p) => format!("https://{addr}:{p}"),
            };
            assert_eq!(one("power_parameters_power_address"), want);
            // The password's `$`, quote and `&` came through the shell intact.
            assert_eq!(one("power_parameters_power_pass"), s(&c["bmc_password"]));
            assert_eq!(one("power_parameters_power_user"), s(&c["bmc_user"]));
            if driver == "ipmi" {
                let boot = if c["firmware"] == "uefi" {
                    "efi"
                } else {
                    "legacy"
                };
                assert_eq!(one("power_parameters_power_boot_type"), boot);
            }
        }
    }
}

#[test]
fn json_matches_the_lab_file_without_an_engine() {
    let f = Fixture::new(LAB);
    let config = f.config_nodes();
    let v: Value = serde_json::from_str(&f.ok(&["inventory"])).expect("JSON");
    let nodes = v["nodes"].as_array().unwrap();
    assert_eq!(nodes.len(), 3);
    for (n, c) in nodes.iter().zip(&config) {
        assert_eq!(n["name"], c["name"]);
        assert_eq!(n["macs"], c["nic_macs"]);
        assert_eq!(n["bmc"]["lab"]["address"], c["bmc_ip"]);
        assert_eq!(n["bmc"]["host"]["ipmi_port"], c["ipmi_port"]);
        assert_eq!(n["bmc"]["host"]["redfish_port"], c["redfish_port"]);
        assert_eq!(n["identity"]["uuid"], c["uuid"]);
    }
    // One node, by name.
    let v: Value = serde_json::from_str(&f.ok(&["inventory", "worker-2"])).expect("JSON");
    assert_eq!(v["nodes"].as_array().unwrap().len(), 1);
    assert_eq!(v["nodes"][0]["name"], "worker-2");
}

#[test]
fn bad_input_is_refused_with_exit_2_and_what_to_do() {
    let no_ports = LAB.replace("ipmi_port = 26231\n", "");
    let f = Fixture::new(&no_ports);
    let cases: [(&[&str], &str, &str); 4] = [
        (
            &["inventory", "nope"],
            "error: lab `invtest` has no node `nope`",
            "use one of: master, worker-1, worker-2",
        ),
        (
            &["inventory", "--format", "maas", "--from", "host"],
            "--from host needs each node's published ipmi_port, and node(s) worker-1, worker-2 publish none",
            "in [nodes.worker] of",
        ),
        (
            &["inventory", "--driver", "redfish"],
            "error: --driver and --from do not apply to --format json",
            "the JSON lists both protocols",
        ),
        (
            &["inventory", "--format", "metal3", "--namespace", "Bad_NS"],
            "error: --namespace `Bad_NS` is not a Kubernetes namespace name",
            "lowercase letters",
        ),
    ];
    for (args, message, help) in cases {
        let o = f.lab(args);
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {err}");
        assert!(o.stdout.is_empty(), "{args:?}: nothing on stdout");
        assert!(err.contains(message), "{args:?}: {err}");
        assert!(err.contains(help), "{args:?}: {err}");
    }
    // Redfish from the host works: every node publishes redfish_port.
    f.ok(&[
        "inventory",
        "--format",
        "ironic",
        "--driver",
        "redfish",
        "--from",
        "host",
    ]);
    // An unknown format is clap's to refuse, with the list.
    let o = f.lab(&["inventory", "--format", "xml"]);
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("json, ironic, metal3, tinkerbell, maas"),
        "{err}"
    );
    // A broken lab file is reported as by `lab validate`.
    let f = Fixture::new(&LAB.replace("cpus = 2", "cpus = \"two\""));
    let o = f.lab(&["inventory"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("lab.toml:"));
}
