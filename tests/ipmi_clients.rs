//! Live: the IPMI clients provisioning software uses (ipmitool, freeipmi, pyghmi), unchanged and
//! without workaround flags, against one lab node's published BMC; their answers are checked.
//! `.ci/run` installs the clients: freeipmi-tools from Debian, pyghmi in the venv LAB_VENV
//! (default /opt/lab-venv).

mod common;

use std::path::Path;
use std::process::Command;

use common::*;

fn lab_file(u: &Unique) -> String {
    let p = u.prefix();
    let head = lab_with_services(u);
    format!(
        r#"{head}
[nodes.n1]
mac = "02:1a:b0:00:00:01"
ip = "{p}.100"
bmc_ip = "{p}.6"
vnc_port = {vnc}
ipmi_port = {ipmi}
memory = "256M"
disk = "1G"
accel = "tcg"
uuid = "{UUID}"
"#,
        vnc = u.port_base,
        ipmi = u.port_base + 1,
    )
}

/// The node's system UUID, as the lab file sets it; its serial number is the default one.
const UUID: &str = "6f1e2d3c-4b5a-4978-8a6b-5c4d3e2f1a0b";

/// The node's serial number as lab derived it (`lab config --json`).
fn serial_of(t: &TestLab) -> String {
    let out = t.lab(&["config", "--json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let v: serde_json::Value = serde_json::from_str(&stdout(&out)).expect("config JSON");
    let serial = v["nodes"][0]["serial"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(serial.starts_with("LAB") && serial.len() == 13, "{v}");
    serial
}

fn tool(cmd: &str, args: &[&str]) -> String {
    tool_status(cmd, args, true)
}

fn tool_status(cmd: &str, args: &[&str], must_succeed: bool) -> String {
    let out = Command::new(cmd).args(args).output().unwrap_or_else(|e| {
        panic!("{cmd} is missing ({e}): `.ci/run` installs the IPMI clients the live tests use")
    });
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    eprintln!("$ {cmd} {}\n{text}", args.join(" "));
    assert!(
        out.status.success() || !must_succeed,
        "{cmd} {}: {text}",
        args.join(" ")
    );
    text
}

fn ipmitool(port: u16, cipher: Option<&str>, args: &[&str]) -> String {
    let port = port.to_string();
    let mut all = vec!["-I", "lanplus", "-H", "127.0.0.1", "-p", &port];
    all.extend(["-U", "admin", "-P", "admin"]);
    if let Some(c) = cipher {
        all.extend(["-C", c]);
    }
    all.extend(args);
    tool("ipmitool", &all)
}

fn freeipmi(cmd: &str, port: u16, privilege: &str, cache: &Path, args: &[&str]) -> String {
    let host = format!("127.0.0.1:{port}");
    let cache = cache.to_string_lossy().into_owned();
    let mut all = vec!["-h", &host, "-u", "admin", "-p", "admin", "-l", privilege];
    if cmd == "ipmi-sensors" || cmd == "ipmi-sel" {
        all.extend(["--sdr-cache-directory", &cache]);
    }
    all.extend(args);
    // ipmi_sim allows Get System Info Parameters (the firmware version bmc-info asks last) only
    // to admins: at user and operator privilege bmc-info prints everything else, then fails on that.
    tool_status(cmd, &all, !(cmd == "bmc-info" && privilege != "ADMIN"))
}

#[test]
fn real_ipmi_clients_get_inventory_sensors_sel_and_nmi() {
    let Some(_engine) = engine_or_skip("ipmi_clients") else {
        return;
    };
    for t in [
        "ipmitool",
        "bmc-info",
        "ipmi-sensors",
        "ipmi-fru",
        "ipmi-sel",
    ] {
        assert!(
            Command::new("sh")
                .args(["-c", &format!("command -v {t}")])
                .output()
                .map(|o| o.status.success())
                .unwrap_or(false),
            "{t} is missing: `.ci/run` installs the IPMI clients (ipmitool, freeipmi-tools)"
        );
    }
    let venv = std::env::var("LAB_VENV").unwrap_or_else(|_| "/opt/lab-venv".into());
    let python = Path::new(&venv).join("bin/python");
    assert!(
        python.exists(),
        "{} is missing: `.ci/run` makes the venv with pyghmi (set LAB_VENV to use another)",
        python.display()
    );

    let u = unique("ipmi");
    let t = TestLab::new(&u.name, &lab_file(&u));
    let up = t.lab(&["up"]);
    assert!(up.status.success(), "lab up failed: {}", stderr(&up));
    let port = u.port_base + 1;
    let serial = serial_of(&t);
    let status: serde_json::Value =
        serde_json::from_str(&stdout(&t.lab(&["status", "--json"]))).expect("status JSON");
    assert_eq!(status["nodes"][0]["serial"], serial.as_str(), "{status}");
    assert_eq!(status["nodes"][0]["uuid"], UUID, "{status}");
    assert_eq!(status["nodes"][0]["vendor"], "Metal Lab", "{status}");
    assert_eq!(status["nodes"][0]["model"], "LabServer 1U", "{status}");

    // ipmitool, plain lanplus and with cipher suite 3.
    for cipher in [None, Some("3")] {
        let fru = ipmitool(port, cipher, &["fru", "print", "0"]);
        assert!(
            fru.contains(&format!("Product Serial        : {serial}")),
            "{fru}"
        );
        for want in [
            "Board Mfg             : Metal Lab",
            "Board Product         : LabServer 1U",
            "Product Manufacturer  : Metal Lab",
            "Product Name          : LabServer 1U",
            "Product Asset Tag     : n1",
        ] {
            assert!(fru.contains(want), "{want}: {fru}");
        }
        let sdr = ipmitool(port, cipher, &["sdr", "list"]);
        for want in ["Inlet Temp", "CPU Temp", "Fan 1", "12V", "PSU1 Power"] {
            let line = sdr.lines().find(|l| l.starts_with(want)).unwrap_or("");
            assert!(line.ends_with("| ok"), "sensor {want}: {sdr}");
        }
        assert!(
            sdr.contains("4800 RPM") && sdr.contains("12 Volts"),
            "{sdr}"
        );
    }
    let info = ipmitool(port, Some("3"), &["mc", "info"]);
    assert!(info.contains("IPMI Version              : 2.0"), "{info}");
    // Get System GUID: the node's uuid, which ipmitool decodes (IPMI byte order, version 4).
    let guid = ipmitool(port, Some("3"), &["mc", "guid"]);
    assert!(guid.contains(&format!("System GUID   : {UUID}")), "{guid}");
    assert!(guid.contains("GUID Encoding : IPMI"), "{guid}");
    ipmitool(port, Some("3"), &["sel", "clear"]);
    let diag = ipmitool(port, Some("3"), &["power", "diag"]);
    assert!(diag.contains("Chassis Power Control: Diag"), "{diag}");
    let sel = ipmitool(port, Some("3"), &["sel", "elist"]);
    assert!(
        sel.contains("NMI/Diag Interrupt"),
        "the NMI is logged: {sel}"
    );
    let sel = ipmitool(port, Some("3"), &["sel", "list"]);
    assert!(sel.contains("Critical Interrupt"), "{sel}");
    let dcmi = ipmitool(port, Some("3"), &["dcmi", "power", "reading"]);
    assert!(dcmi.contains("Instantaneous power reading"), "{dcmi}");
    let policy = ipmitool(port, Some("3"), &["chassis", "policy", "list"]);
    assert!(policy.contains("always-on"), "{policy}");
    ipmitool(port, Some("3"), &["mc", "reset", "warm"]);
    let status = ipmitool(port, Some("3"), &["chassis", "status"]);
    assert!(status.contains("System Power         : on"), "{status}");
    let logs = t.lab(&["logs", "n1"]);
    assert!(
        stdout(&logs).contains("NMI sent to the VM")
            || stderr(&logs).contains("NMI sent to the VM"),
        "the BMC sent the NMI to the VM"
    );

    // freeipmi, as MAAS runs it: no workaround flags, at every privilege level.
    let cache = tempfile::tempdir().expect("tempdir");
    for privilege in ["USER", "OPERATOR", "ADMIN"] {
        let info = freeipmi("bmc-info", port, privilege, cache.path(), &[]);
        assert!(
            info.contains("IPMI Version") && info.contains("2.0"),
            "{info}"
        );
        let fru = freeipmi("ipmi-fru", port, privilege, cache.path(), &[]);
        assert!(
            fru.contains(&format!("FRU Product Serial Number: {serial}")),
            "{fru}"
        );
        for option in ["--get-system-guid", "--get-device-guid"] {
            let guid = freeipmi("bmc-info", port, privilege, cache.path(), &[option]);
            assert_eq!(guid.trim(), UUID, "bmc-info {option}");
        }
        let sensors = freeipmi("ipmi-sensors", port, privilege, cache.path(), &[]);
        assert!(
            sensors.contains("Inlet Temp") && sensors.contains("4800.00"),
            "{sensors}"
        );
        let sel = freeipmi("ipmi-sel", port, privilege, cache.path(), &[]);
        assert!(sel.contains("Critical Interrupt"), "{sel}");
    }

    // pyghmi (xCAT/confluent), from the venv.
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/support/pyghmi_inventory.py");
    let out = tool(
        &python.to_string_lossy(),
        &[
            &script.to_string_lossy(),
            "127.0.0.1",
            &port.to_string(),
            "admin",
            "admin",
        ],
    );
    let v: serde_json::Value = serde_json::from_str(out.lines().last().unwrap_or(""))
        .unwrap_or_else(|e| panic!("pyghmi printed no JSON ({e}): {out}"));
    assert_eq!(
        v["inventory"]["System"]["Serial Number"],
        serial.as_str(),
        "{v}"
    );
    assert_eq!(v["health"]["health"], 0, "{v}");
    let names: Vec<&str> = v["sensors"]
        .as_array()
        .map(|a| a.iter().filter_map(|s| s[0].as_str()).collect())
        .unwrap_or_default();
    assert_eq!(
        names,
        ["Inlet Temp", "CPU Temp", "Fan 1", "12V", "PSU1 Power"],
        "{v}"
    );
    assert_eq!(v["sensors"][2][1], 4800.0, "{v}");
}
