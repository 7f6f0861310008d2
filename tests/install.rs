//! Install to disk, live: a BIOS and a UEFI node PXE-boot the smoke installer (`lab.install=`),
//! which writes the smoke OS's disk image to /dev/sda, asks its own BMC in-band (KCS) to boot
//! from the disk from now on, reports and reboots; the installed system comes up from the disk
//! (`boot_source` disk in `lab status --json`, `boot=disk` in its report). The installed disk
//! survives a second `lab up`, a power cycle through the BMC, and `lab down` + `lab up`;
//! `lab down --volumes` + `lab up` starts from an empty disk, which falls through to PXE.
//! The BIOS node boots the network first (`boot = "pxe"`), so its reboot after the install reaches
//! the disk only because the BMC's override changes the running VM's boot order, and the
//! override, kept in the node's volume, still holds after `lab down` + `lab up`.
//! One lab of two nodes for all of it (TCG is slow).

mod common;

use std::time::{Duration, Instant};

use common::*;

/// TCG on a loaded host: a PXE boot, the install and the boot from disk take a few minutes.
const DEADLINE: Duration = Duration::from_secs(900);

struct Node {
    name: &'static str,
    mac: &'static str,
    ip: String,
    ipmi: u16,
    firmware: &'static str,
    /// The node's own boot order: `pxe` (the network first, as MAAS and Ironic keep their
    /// machines) or `disk` (an empty disk falls through to the network).
    boot: &'static str,
}

fn lab_file(u: &Unique, nodes: &[Node]) -> String {
    let mut text = lab_with_services(u)
        + r#"
[profiles.smoke-install]
kernel = "smoke/vmlinuz"
initrd = "smoke/initrd"
cmdline = "console=ttyS0,115200n8 no_timer_check lab.node={{ node.name }} lab.report={{ report_url }} lab.install={{ web_url }}/smoke/disk.img.gz quiet"
"#;
    for (i, n) in nodes.iter().enumerate() {
        text += &format!(
            r#"
[nodes.{name}]
mac = "{mac}"
ip = "{ip}"
bmc_ip = "{bmc}"
ipmi_port = {ipmi}
firmware = "{firmware}"
memory = "512M"
disk = "1G"
accel = "tcg"
boot = "{boot}"
profile = "smoke-install"
"#,
            name = n.name,
            mac = n.mac,
            ip = n.ip,
            bmc = u.ip(6 + i as u8),
            ipmi = n.ipmi,
            firmware = n.firmware,
            boot = n.boot,
        );
    }
    text
}

fn status(t: &TestLab) -> serde_json::Value {
    let out = t.lab(&["status", "--json"]);
    assert!(out.status.success(), "lab status: {}", stderr(&out));
    serde_json::from_slice(&out.stdout).expect("status --json is JSON")
}

fn node_json<'a>(s: &'a serde_json::Value, name: &str) -> &'a serde_json::Value {
    s["nodes"]
        .as_array()
        .and_then(|a| a.iter().find(|n| n["name"] == name))
        .unwrap_or_else(|| panic!("no node {name} in {s}"))
}

/// Waits until every node is `up` from its disk in a boot after its `boots_before`-th, and
/// returns `status --json` then.
fn wait_disk_boot(t: &TestLab, nodes: &[Node], boots_before: &[u64]) -> serde_json::Value {
    let start = Instant::now();
    loop {
        let s = status(t);
        let ready = nodes.iter().zip(boots_before).all(|(n, before)| {
            let j = node_json(&s, n.name);
            j["boots"].as_u64().unwrap_or(0) > *before
                && j["phase"] == "up"
                && j["boot_source"] == "disk"
        });
        if ready {
            return s;
        }
        if start.elapsed() > DEADLINE {
            for n in nodes {
                let console = t.lab(&["console", n.name, "--no-follow", "--lines", "40"]);
                eprintln!("{}", stdout(&console));
            }
            panic!("not every node came up from its disk within {DEADLINE:?}: {s}");
        }
        std::thread::sleep(Duration::from_secs(3));
    }
}

fn boots(s: &serde_json::Value, nodes: &[Node]) -> Vec<u64> {
    nodes
        .iter()
        .map(|n| node_json(s, n.name)["boots"].as_u64().unwrap_or(0))
        .collect()
}

/// The web service's access lines of `ip` for `path` (the installer's downloads, reports).
fn web_hits(t: &TestLab, ip: &str, path: &str) -> Vec<String> {
    container_log(&format!("{}-web", t.name))
        .lines()
        .filter(|l| l.starts_with(&format!("{ip} ")) && l.contains(path))
        .map(str::to_string)
        .collect()
}

#[test]
fn installs_to_disk_on_bios_and_uefi_and_boots_the_disk_until_its_volume_goes() {
    let Some(_engine) = engine_or_skip("installs_to_disk") else {
        return;
    };
    let u = unique("inst");
    let nodes = [
        Node {
            name: "bios",
            mac: "02:1a:b0:00:00:01",
            ip: u.ip(100).to_string(),
            ipmi: u.port_base,
            firmware: "bios",
            boot: "pxe",
        },
        Node {
            name: "uefi",
            mac: "02:1a:b0:00:00:02",
            ip: u.ip(101).to_string(),
            ipmi: u.port_base + 1,
            firmware: "uefi",
            boot: "disk",
        },
    ];
    let t = TestLab::new(&u.name, &lab_file(&u, &nodes));
    let up = t.lab(&["up", "--timeout", "900"]);
    assert!(up.status.success(), "lab up: {}", stderr(&up));
    assert!(
        t.dir.path().join("webroot/smoke/disk.img.gz").is_file(),
        "lab exports the disk image into the web root"
    );

    // 1. The installer runs once per node, then the node comes up from its disk.
    let s = wait_disk_boot(&t, &nodes, &[1, 1]);
    for n in &nodes {
        let j = node_json(&s, n.name);
        assert_eq!(j["guest"]["boot"], "disk", "{j}");
        assert_eq!(j["guest"]["firmware"], n.firmware, "{j}");
        let downloads = web_hits(&t, &n.ip, "GET 200 ");
        assert_eq!(
            downloads
                .iter()
                .filter(|l| l.ends_with(" /smoke/disk.img.gz"))
                .count(),
            1,
            "{}: one download of the image: {downloads:?}",
            n.name
        );
        let reports = web_hits(&t, &n.ip, "/lab/report/");
        let installed = reports.iter().position(|l| l.contains("installed=sda"));
        // (`guest.boot` above is its decoded value: the smoke OS sends every byte as %XX)
        let from_disk = reports.iter().rposition(|l| l.contains("&boot="));
        assert!(
            matches!((installed, from_disk), (Some(i), Some(d)) if i < d),
            "{}: the installer's report, then the installed system's: {reports:?}",
            n.name
        );
        // What the installer asked of its BMC over KCS, read back over LAN.
        let flags = stdout(&ipmitool(n.ipmi, &["chassis", "bootparam", "get", "5"]));
        assert!(
            flags.contains("Options apply to all future boots")
                && flags.contains("Force Boot from default Hard-Drive"),
            "{}: {flags}",
            n.name
        );
        let mode = if n.firmware == "uefi" {
            "BIOS EFI boot"
        } else {
            "BIOS PC Compatible (legacy) boot"
        };
        assert!(flags.contains(mode), "{}: {flags}", n.name);
    }
    // The network-first node rebooted (a reset, not a power on) into its disk: the override the
    // installer set over KCS changed the running VM's boot order for that reset.
    let log = container_log(&format!("{}-bios", t.name));
    assert!(
        log.contains("lab: boot order for the next reset: disk first"),
        "the override reached the running VM: {log}"
    );
    let w = t.lab(&[
        "wait",
        "--phase",
        "up",
        "--boot-source",
        "disk",
        "--timeout",
        "10",
    ]);
    assert!(w.status.success(), "lab wait --boot-source disk");
    let text = stdout(&t.lab(&["status"]));
    assert!(
        text.lines()
            .any(|l| l.starts_with("bios ") && l.contains(" disk ")),
        "the FROM column: {text}"
    );

    // 2. A second `lab up` keeps the nodes and their disks: still up from disk, no new install.
    let again = t.lab(&["up", "--timeout", "600"]);
    assert!(again.status.success(), "second lab up: {}", stderr(&again));
    let s = status(&t);
    for n in &nodes {
        let j = node_json(&s, n.name);
        assert!(j["phase"] == "up" && j["boot_source"] == "disk", "{j}");
    }

    // 3. A power cycle through the BMC: the persistent override boots the disk again.
    let before = boots(&s, &nodes);
    for n in &nodes {
        let out = t.lab(&["power", n.name, "cycle"]);
        assert!(out.status.success(), "power cycle {}", n.name);
    }
    wait_disk_boot(&t, &nodes, &before);
    for n in &nodes {
        let log = container_log(&format!("{}-{}", t.name, n.name));
        assert!(
            log.contains("boot=disk (BMC override (persistent))"),
            "{}: lab-vm took the installer's override at the power on",
            n.name
        );
        assert_eq!(
            web_hits(&t, &n.ip, " /smoke/disk.img.gz").len(),
            1,
            "{}: installed once",
            n.name
        );
    }

    // 4. `lab down` and `lab up` keep the volumes: the new containers boot the installed disk.
    let down = t.lab(&["down"]);
    assert!(down.status.success(), "lab down");
    let up = t.lab(&["up", "--timeout", "600"]);
    assert!(up.status.success(), "lab up after down: {}", stderr(&up));
    wait_disk_boot(&t, &nodes, &[0, 0]);
    for n in &nodes {
        assert!(
            web_hits(&t, &n.ip, "/smoke/disk.img.gz").is_empty(),
            "{}: no install after down/up",
            n.name
        );
    }

    // 5. `lab down --volumes`: empty disks again, which fall through to PXE: the installer.
    let down = t.lab(&["down", "--volumes"]);
    assert!(down.status.success(), "lab down --volumes");
    let up = t.lab(&["up", "--timeout", "600"]);
    assert!(
        up.status.success(),
        "lab up after down --volumes: {}",
        stderr(&up)
    );
    let w = t.lab(&[
        "wait",
        "--phase",
        "kernel",
        "--boot-source",
        "pxe",
        "--timeout",
        &DEADLINE.as_secs().to_string(),
    ]);
    assert!(
        w.status.success(),
        "empty disks boot the network: {}",
        stderr(&w)
    );
}
