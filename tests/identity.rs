//! Live: a node's hardware identity is the same everywhere. Two nodes boot the smoke OS, one with
//! lab's default identity, one with its own vendor (with a comma, which QEMU options must escape),
//! model, serial, UUID and `hide_hypervisor = true`. What each guest reads from SMBIOS and CPUID
//! (its report to the web service, shown by `status --json` as `guest`) must match the lab file,
//! and so must the BMC's FRU and System GUID.

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use common::*;

/// How long both nodes may take from `lab up` to their reports (about 40 s here).
const BOOT_DEADLINE: Duration = Duration::from_secs(240);

const UUID: &str = "4c4c4544-0042-3510-8052-b4c04f4e3132";

fn lab_file(u: &Unique) -> String {
    let p = u.prefix();
    let head = lab_with_services(u);
    format!(
        r#"{head}
[profiles.smoke]
kernel = "smoke/vmlinuz"
initrd = "smoke/initrd"
cmdline = "console=ttyS0,115200n8 no_timer_check lab.node={{{{ node.name }}}} lab.report={{{{ report_url }}}} quiet"

[node_defaults]
memory = "256M"
disk = "1G"
accel = "tcg"
boot = "pxe"
profile = "smoke"

[nodes.plain]
mac = "02:1d:00:00:00:01"
ip = "{p}.100"
bmc_ip = "{p}.6"

[nodes.hidden]
mac = "02:1d:00:00:00:02"
ip = "{p}.101"
bmc_ip = "{p}.7"
ipmi_port = {ipmi}
vendor = "Acme, Inc."
model = "RackPro 1000"
serial = "ACME-0042"
uuid = "{upper}"
asset_tag = "rack 4, U12"
hide_hypervisor = true
disk = ["1G", "2G"]
nics = 2
"#,
        ipmi = u.port_base,
        upper = UUID.to_uppercase(),
    )
}

fn status(t: &TestLab) -> serde_json::Value {
    let out = t.lab(&["status", "--json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    serde_json::from_str(&stdout(&out)).expect("status JSON")
}

fn node<'a>(status: &'a serde_json::Value, name: &str) -> &'a serde_json::Value {
    status["nodes"]
        .as_array()
        .and_then(|a| a.iter().find(|n| n["name"] == name))
        .unwrap_or_else(|| panic!("no node {name}: {status}"))
}

#[test]
fn the_guest_the_bmc_and_status_show_the_same_identity() {
    let Some(engine) = engine_or_skip("identity") else {
        return;
    };
    let u = unique("ident");
    let t = TestLab::new(&u.name, &lab_file(&u));
    let up = t.lab(&["up", "--timeout", "300"]);
    assert!(up.status.success(), "lab up failed: {}", stderr(&up));

    let config: serde_json::Value =
        serde_json::from_str(&stdout(&t.lab(&["config", "--json"]))).expect("config JSON");
    let plain_serial = node(&config, "plain")["serial"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let plain_uuid = node(&config, "plain")["uuid"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(plain_serial.starts_with("LAB"), "{config}");

    // Both guests report what they see.
    let started = Instant::now();
    let s = loop {
        let s = status(&t);
        if ["plain", "hidden"]
            .iter()
            .all(|n| node(&s, n)["guest"]["uuid"].is_string())
        {
            break s;
        }
        assert!(
            started.elapsed() < BOOT_DEADLINE,
            "no report with the guest's identity within {}s: {s}",
            BOOT_DEADLINE.as_secs()
        );
        std::thread::sleep(Duration::from_secs(1));
    };
    eprintln!(
        "both guests reported in {:.1}s",
        started.elapsed().as_secs_f64()
    );

    let plain = node(&s, "plain");
    assert_eq!(plain["serial"], plain_serial.as_str(), "{plain}");
    assert_eq!(plain["uuid"], plain_uuid.as_str(), "{plain}");
    let g = &plain["guest"];
    assert_eq!(g["vendor"], "Metal Lab", "{plain}");
    assert_eq!(g["product"], "LabServer 1U", "{plain}");
    assert_eq!(g["serial"], plain_serial.as_str(), "{plain}");
    assert_eq!(g["uuid"], plain_uuid.as_str(), "{plain}");
    assert_eq!(g["bios_vendor"], "Metal Lab", "no SeaBIOS or QEMU: {plain}");
    // TCG's `-cpu max` sets the CPUID hypervisor bit, and the SMBIOS VM bit says so too.
    assert_eq!(g["hypervisor"], true, "{plain}");
    assert_eq!(g["smbios_vm"], true, "{plain}");

    let hidden = node(&s, "hidden");
    assert_eq!(hidden["serial"], "ACME-0042", "{hidden}");
    assert_eq!(hidden["uuid"], UUID, "{hidden}");
    assert_eq!(hidden["vendor"], "Acme, Inc.", "{hidden}");
    assert_eq!(hidden["model"], "RackPro 1000", "{hidden}");
    let g = &hidden["guest"];
    assert_eq!(g["vendor"], "Acme, Inc.", "{hidden}");
    assert_eq!(g["product"], "RackPro 1000", "{hidden}");
    assert_eq!(g["serial"], "ACME-0042", "{hidden}");
    assert_eq!(g["uuid"], UUID, "{hidden}");
    assert_eq!(g["bios_vendor"], "Acme, Inc.", "{hidden}");
    assert_eq!(g["hypervisor"], false, "{hidden}");
    assert_eq!(g["smbios_vm"], false, "{hidden}");
    assert_eq!(g["nics"], 2, "{hidden}");
    assert_eq!(plain["guest"]["nics"], 1, "{plain}");
    // Each NIC has its reservation, consecutive from ip, and status lists them.
    let p = u.prefix();
    assert_eq!(
        hidden["nics"],
        serde_json::json!([
            {"mac": "02:1d:00:00:00:02", "ip": format!("{p}.101")},
            {"mac": "02:1d:00:00:00:03", "ip": format!("{p}.102")}
        ]),
        "{hidden}"
    );
    assert!(plain.get("nics").is_none(), "one NIC: no list: {plain}");

    // The BMC tells the same: FRU product area and System GUID.
    let port = u.port_base.to_string();
    let ipmitool = |args: &[&str]| {
        let out = Command::new("ipmitool")
            .args(["-I", "lanplus", "-C", "3", "-H", "127.0.0.1", "-p", &port])
            .args(["-U", "admin", "-P", "admin"])
            .args(args)
            .output()
            .expect("ipmitool (`.ci/run` installs it)");
        assert!(out.status.success(), "ipmitool {args:?}: {out:?}");
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let fru = ipmitool(&["fru", "print", "0"]);
    for want in [
        "Product Manufacturer  : Acme, Inc.",
        "Product Name          : RackPro 1000",
        "Product Serial        : ACME-0042",
        "Product Asset Tag     : rack 4, U12",
        "Board Serial          : ACME-0042",
    ] {
        assert!(fru.contains(want), "{want}: {fru}");
    }
    let guid = ipmitool(&["mc", "guid"]);
    assert!(guid.contains(&format!("System GUID   : {UUID}")), "{guid}");

    // The second NIC takes the next MAC and has no option ROM, so only the first PXE-boots.
    assert_eq!(
        node(&config, "hidden")["nic_macs"],
        serde_json::json!(["02:1d:00:00:00:02", "02:1d:00:00:00:03"]),
        "{config}"
    );
    // Two disks: two qcow2 files of the sizes asked for in the node's volume, each an AHCI disk
    // of the running VM with its own serial. (The smoke OS's cloud kernel has no AHCI driver, so
    // the guest cannot list them.)
    let rt = tokio::runtime::Runtime::new().expect("tokio runtime");
    let container = format!("{}-hidden", u.name);
    let exec = |script: &str| {
        let argv = ["sh".to_string(), "-c".to_string(), script.to_string()];
        rt.block_on(metal_lab::engine::Engine::exec(&engine, &container, &argv))
            .map(|o| o.output)
            .unwrap_or_else(|e| panic!("exec in {container}: {e}"))
    };
    for (file, bytes) in [("disk.qcow2", 1u64 << 30), ("disk2.qcow2", 2 << 30)] {
        let info = exec(&format!(
            "qemu-img info -U --output=json /var/lib/lab/{file}"
        ));
        assert!(
            info.contains(&format!("\"virtual-size\": {bytes},")),
            "{file}: {info}"
        );
    }
    let cmdline = exec("tr '\\0' ' ' < /proc/$(pgrep -x qemu-system-x86)/cmdline");
    let serials: Vec<String> = node(&config, "hidden")["disks"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|d| d["serial"].as_str())
                .map(String::from)
                .collect()
        })
        .unwrap_or_default();
    assert_eq!(serials.len(), 2, "{config}");
    assert!(
        cmdline.contains("virtio-net-pci,netdev=net1,mac=02:1d:00:00:00:03,romfile= "),
        "{cmdline}"
    );
    for (i, serial) in serials.iter().enumerate() {
        // The first disk is the boot disk (a bootindex); the others have none.
        let boot = if i == 0 { ",bootindex=2" } else { "" };
        let device = format!(
            "ide-hd,drive=disk{i},id=hd{i},bus=ide.{i}{boot},serial={serial},model=Acme,, Inc. Disk"
        );
        assert!(cmdline.contains(&device), "{device}: {cmdline}");
    }

    let out = t.lab(&["down", "--volumes"]);
    assert!(out.status.success(), "lab down failed: {}", stderr(&out));
}
