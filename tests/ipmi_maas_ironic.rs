//! Live: the IPMI calls MAAS (freeipmi: its power driver and its commissioning script
//! bmc_config.py) and Ironic (ipmitool driver) make, and pyghmi's power and boot calls, against
//! one lab node's published BMC, with the command lines those programs build; each result is
//! read back (the BMC's answers, `chassis bootparam get 5`, the node's log), not only exit codes.
//! tests/ipmi_clients.rs covers the inventory, sensor and SEL calls.

mod common;

use std::process::Command;
use std::time::Duration;

use common::*;

/// The lab: dnsmasq, httpd and one small TCG node `n`, its BMC published on `port_base`.
fn lab_file(u: &Unique) -> String {
    lab_with_services(u) + &tcg_node(u, "02:1a:b0:00:00:01", "disk")
}

/// Runs `cmd ARGS`; returns (exited 0, stdout and stderr).
fn run(cmd: &str, args: &[&str]) -> (bool, String) {
    let out = Command::new(cmd)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{cmd} is missing ({e}): `.ci/run` installs the IPMI clients"));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    eprintln!("$ {cmd} {}\n{text}", args.join(" "));
    (out.status.success(), text)
}

/// Runs `cmd ARGS`, which must succeed; its output.
fn ok(cmd: &str, args: &[&str]) -> String {
    let (success, text) = run(cmd, args);
    assert!(success, "{cmd} {}: {text}", args.join(" "));
    text
}

/// ipmitool as Ironic's driver runs it: lanplus, cipher suite 3, admin.
fn ipmitool(port: u16, args: &[&str]) -> String {
    let (success, text) = ipmitool_any(port, &args.join(" "));
    assert!(success, "ipmitool {}: {text}", args.join(" "));
    text
}

/// ipmitool with the words of `args`, which may fail: (exited 0, output).
fn ipmitool_any(port: u16, args: &str) -> (bool, String) {
    let line = format!("-I lanplus -H 127.0.0.1 -p {port} -C 3 -U admin -P admin {args}");
    run("ipmitool", &line.split_whitespace().collect::<Vec<_>>())
}

/// The node container's log.
fn node_log(u: &Unique) -> String {
    container_log(&format!("{}-n", u.name))
}

/// Waits (up to 60 s) until the node's log has `want` more often than `before` times.
fn wait_log(u: &Unique, want: &str, before: usize) {
    for _ in 0..120 {
        if node_log(u).matches(want).count() > before {
            return;
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    panic!("the node never logged `{want}`: {}", node_log(u));
}

/// bmc-config's checkout of one section, as MAAS reads it: the section must be there; the exit
/// code is not asked for (bmc-config exits 1 when a key of the section is not supported).
fn section_checkout(args: &[&str], section: &str) -> String {
    let (_, text) = run(
        "bmc-config",
        &[args, &["--checkout", "-S", section]].concat(),
    );
    assert!(text.contains(&format!("Section {section}\n")), "{text}");
    text
}

/// Asserts that `chassis bootparam get 5` shows each of `want`.
fn assert_bootparam(port: u16, want: &[&str]) {
    let param = ipmitool(port, &["chassis", "bootparam", "get", "5"]);
    for w in want {
        assert!(param.contains(w), "{w}: {param}");
    }
}

/// Waits for the VM's power on after the `starts`th and asserts that it boots `boot`
/// ("boot=pxe (BMC override (once))").
fn wait_power_on(u: &Unique, starts: usize, boot: &str) {
    wait_log(u, "lab: power on: qemu", starts);
    let log = node_log(u);
    let start = log
        .lines()
        .rfind(|l| l.contains("lab: power on: qemu"))
        .unwrap_or("");
    assert!(start.contains(boot), "{boot}: {log}");
}

/// Waits (up to 60 s) until `ipmipower --stat` with `args` says `want` ("on", "off").
fn wait_ipmipower(args: &[&str], want: &str) {
    let line = format!("127.0.0.1: {want}");
    for _ in 0..120 {
        let mut all = args.to_vec();
        all.push("--stat");
        if run("ipmipower", &all).1.trim() == line {
            return;
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    panic!("ipmipower never said {line}");
}

/// The Chassis_Boot_Flags section MAAS's power driver writes before it powers a machine on
/// (IPMI_CONFIG_WITH_BOOT_TYPE in src/provisioningserver/drivers/power/ipmi.py).
fn maas_boot_flags(persistent: &str, boot_type: &str, device: &str) -> String {
    format!(
        "Section Chassis_Boot_Flags\n        Boot_Flags_Persistent                         {persistent}\n        BIOS_Boot_Type                                {boot_type}\n        Boot_Device                                   {device}\nEndSection\n"
    )
}

/// The value of `key` in a freeipmi config section's checkout ("\tKey    Value").
fn config_value<'a>(checkout: &'a str, key: &str) -> Option<&'a str> {
    checkout.lines().find_map(|l| {
        let l = l.trim();
        let rest = l.strip_prefix(key)?;
        rest.starts_with([' ', '\t']).then(|| rest.trim())
    })
}

#[test]
fn maas_freeipmi_power_driver_and_commissioning() {
    let Some(_engine) = engine_or_skip("ipmi_maas_ironic") else {
        return;
    };
    let u = unique("maas");
    let t = TestLab::new(&u.name, &lab_file(&u));
    let up = t.lab(&["up"]);
    assert!(up.status.success(), "lab up failed: {}", stderr(&up));
    let port = u.port_base;
    let host = format!("127.0.0.1:{port}");
    let bmc_ip = format!("{}.6", u.prefix());

    // MAAS's power driver: `--driver-type LAN_2_0` (its default), cipher suite 3, operator
    // privilege, its default workaround flag `-W opensesspriv`; and plain freeipmi, no flags.
    let maas_line = format!(
        "-W opensesspriv --driver-type LAN_2_0 -h {host} -u admin -p admin -I 3 -l OPERATOR"
    );
    let maas: Vec<&str> = maas_line.split_whitespace().collect();
    let plain: Vec<&str> = vec!["-h", &host, "-u", "admin", "-p", "admin"];
    for args in [&maas, &plain] {
        let mut stat = args.to_vec();
        stat.push("--stat");
        assert_eq!(ok("ipmipower", &stat).trim(), "127.0.0.1: on");
    }

    // power_on: ipmi-chassis-config --commit of the boot flags (PXE, next boot only, EFI), then
    // `ipmipower --cycle --on-if-off`. The BMC keeps the flags and the VM's next power on
    // boots the network by that override.
    let dir = tempfile::tempdir().expect("tempdir");
    let flags = dir.path().join("boot-flags");
    std::fs::write(&flags, maas_boot_flags("No", "EFI", "PXE")).expect("write");
    let flags_arg = flags.to_string_lossy().into_owned();
    let mut commit = maas.clone();
    commit.extend(["--commit", "--filename", &flags_arg]);
    ok("ipmi-chassis-config", &commit);
    assert_bootparam(
        port,
        &[
            "Options apply to only next boot",
            "BIOS EFI boot",
            "Boot Device Selector : Force PXE",
        ],
    );
    let starts = node_log(&u).matches("lab: power on: qemu").count();
    let mut cycle = maas.clone();
    cycle.extend(["--cycle", "--on-if-off"]);
    assert_eq!(ok("ipmipower", &cycle).trim(), "127.0.0.1: ok");
    wait_power_on(&u, starts, "boot=pxe (BMC override (once))");
    wait_ipmipower(&maas, "on");

    // power_off (hard and soft), and the other ipmipower actions, each read back.
    let mut off = maas.clone();
    off.push("--off");
    assert_eq!(ok("ipmipower", &off).trim(), "127.0.0.1: ok");
    wait_ipmipower(&maas, "off");
    assert!(
        ipmitool(port, &["chassis", "power", "status"]).contains("Chassis Power is off"),
        "ipmitool agrees"
    );
    let status = ok("ipmi-chassis", &[&plain[..], &["--get-status"]].concat());
    let power = status
        .lines()
        .find(|l| l.starts_with("System Power"))
        .unwrap_or("");
    assert!(power.trim_end().ends_with(": off"), "{status}");
    let mut on = maas.clone();
    on.push("--on");
    assert_eq!(ok("ipmipower", &on).trim(), "127.0.0.1: ok");
    wait_ipmipower(&maas, "on");
    let status = ok("ipmi-chassis", &[&plain[..], &["--get-status"]].concat());
    assert!(
        status
            .lines()
            .any(|l| l.starts_with("System Power") && l.trim_end().ends_with(": on")),
        "{status}"
    );
    for (action, logged) in [
        ("--reset", "lab: bmc: power reset: the VM restarts"),
        ("--pulse", "NMI sent to the VM"),
        ("--soft", "lab: bmc: soft off: ACPI power button pressed"),
        ("--cycle", "lab: bmc: power on: power cycle"),
    ] {
        let before = node_log(&u).matches(logged).count();
        let mut args = maas.clone();
        args.push(action);
        assert_eq!(ok("ipmipower", &args).trim(), "127.0.0.1: ok", "{action}");
        wait_log(&u, logged, before);
    }
    // A power cycle keeps the power off for a moment, as a real one does (ipmi_sim starts the VM
    // again a few seconds later): it ends on.
    wait_ipmipower(&maas, "on");

    // ipmi-chassis-config: the persistent legacy disk boot, read back by freeipmi and ipmitool.
    std::fs::write(
        &flags,
        maas_boot_flags("Yes", "PC-COMPATIBLE", "HARD-DRIVE"),
    )
    .expect("write");
    ok(
        "ipmi-chassis-config",
        &[&plain[..], &["--commit", "--filename", &flags_arg]].concat(),
    );
    let checkout = ok(
        "ipmi-chassis-config",
        &[&plain[..], &["--checkout", "-S", "Chassis_Boot_Flags"]].concat(),
    );
    assert_eq!(
        config_value(&checkout, "Boot_Flags_Persistent"),
        Some("Yes"),
        "{checkout}"
    );
    assert_eq!(
        config_value(&checkout, "BIOS_Boot_Type"),
        Some("PC-COMPATIBLE"),
        "{checkout}"
    );
    assert_eq!(
        config_value(&checkout, "Boot_Device"),
        Some("HARD-DRIVE"),
        "{checkout}"
    );
    assert_bootparam(
        port,
        &[
            "Options apply to all future boots",
            "BIOS PC Compatible (legacy) boot",
            "Force Boot from default Hard-Drive",
        ],
    );

    // Commissioning (bmc_config.py): the whole checkout, which MAAS parses without asking for
    // exit 0 (bmc-config exits 1 for the parameters this BMC does not have, as on many real
    // ones). The BMC address it reports to MAAS is Lan_Conf's IP_Address: the node's bmc_ip.
    let admin: Vec<&str> = vec!["-h", &host, "-u", "admin", "-p", "admin", "-l", "ADMIN"];
    let (_, whole) = run("bmc-config", &[&admin[..], &["--checkout"]].concat());
    for section in [
        "Section User2",
        "Section User3",
        "Section Lan_Channel",
        "Section Lan_Conf",
        "Section Rmcpplus_Conf_Privilege",
        "Section SOL_Conf",
        "Section User16",
    ] {
        assert!(whole.contains(section), "{section}: {whole}");
    }
    // Sixteen user slots, as most real BMCs have (ipmi_sim alone has 63).
    assert!(!whole.contains("Section User17"), "{whole}");
    let lan = section_checkout(&admin, "Lan_Conf");
    assert_eq!(
        config_value(&lan, "IP_Address"),
        Some(bmc_ip.as_str()),
        "{lan}"
    );
    assert_eq!(
        config_value(&lan, "IP_Address_Source"),
        Some("Static"),
        "{lan}"
    );
    assert_eq!(
        config_value(&lan, "Subnet_Mask"),
        Some("255.255.255.0"),
        "{lan}"
    );
    let mac = config_value(&lan, "MAC_Address").unwrap_or("");
    assert!(mac.len() == 17 && mac != "00:00:00:00:00:00", "{lan}");
    let channel = section_checkout(&admin, "Lan_Channel");
    assert_eq!(
        config_value(&channel, "Volatile_Access_Mode"),
        Some("Always_Available"),
        "{channel}"
    );

    // The user MAAS adds, one key at a time in its order, then the sections it sets.
    for kv in [
        "User3:Username=maas",
        "User3:Password=Maas-Pass-42",
        "User3:Enable_User=Yes",
        "User3:Lan_Privilege_Limit=Administrator",
        "User3:Lan_Enable_IPMI_Msgs=Yes",
        "Lan_Channel:Volatile_Access_Mode=Always_Available",
        "Lan_Channel:Non_Volatile_Access_Mode=Always_Available",
        "SOL_Conf:Enable_SOL=Yes",
        "SOL_Conf:Force_SOL_Payload_Authentication=Yes",
        "SOL_Conf:Force_SOL_Payload_Encryption=Yes",
    ] {
        let pair = format!("--key-pair={kv}");
        ok("bmc-config", &[&admin[..], &["--commit", &pair]].concat());
    }
    let user = section_checkout(&admin, "User3");
    assert_eq!(config_value(&user, "Username"), Some("maas"), "{user}");
    assert_eq!(
        config_value(&user, "Lan_Enable_IPMI_Msgs"),
        Some("Yes"),
        "{user}"
    );
    assert_eq!(
        config_value(&user, "Lan_Privilege_Limit"),
        Some("Administrator"),
        "{user}"
    );
    let sol = section_checkout(&admin, "SOL_Conf");
    for (key, want) in [
        ("Enable_SOL", "Yes"),
        ("Force_SOL_Payload_Authentication", "Yes"),
        ("Force_SOL_Payload_Encryption", "Yes"),
        ("SOL_Privilege_Level", "User"),
        ("SOL_Retry_Count", "5"),
        ("SOL_Retry_Interval", "100"),
    ] {
        assert_eq!(config_value(&sol, key), Some(want), "{key}: {sol}");
    }
    // A commit of the section as checked out (its read-only values unchanged) is accepted; a
    // retry count this BMC does not do is refused.
    ok(
        "bmc-config",
        &[
            &admin[..],
            &["--commit", "--key-pair=SOL_Conf:SOL_Retry_Count=5"],
        ]
        .concat(),
    );
    let (changed, text) = run(
        "bmc-config",
        &[
            &admin[..],
            &["--commit", "--key-pair=SOL_Conf:SOL_Retry_Count=7"],
        ]
        .concat(),
    );
    // The BMC answers "read-only" (0x82), which freeipmi names, and keeps its value.
    assert!(
        !changed && text.contains("Read Only Field"),
        "a retry count of 7 is not this BMC's: {text}"
    );
    let sol = section_checkout(&admin, "SOL_Conf");
    assert_eq!(config_value(&sol, "SOL_Retry_Count"), Some("5"), "{sol}");
    // Forced encryption holds: a session without confidentiality (cipher suite 2) gets no
    // console, one with it (suite 3) does.
    let suite2 = format!("-I lanplus -C 2 -H 127.0.0.1 -p {port} -U admin -P admin sol activate");
    let suite2: Vec<&str> = suite2.split_whitespace().collect();
    let (activated, text) = run("ipmitool", &suite2);
    assert!(!activated && text.contains("without encryption"), "{text}");
    // Activate Payload (SOL, instance 1, encrypted and authenticated) over suite 3, raw: the
    // answer carries the payload sizes and the SOL port; the console is freed when ipmitool's
    // session ends.
    let active = ipmitool(
        port,
        &[
            "raw", "0x06", "0x48", "0x01", "0x01", "0xc0", "0x00", "0x00", "0x00",
        ],
    );
    let port_bytes = format!("{:02x} {:02x}", port & 0xff, port >> 8);
    assert!(
        active.split_whitespace().count() == 12 && active.contains(&port_bytes),
        "SOL activates over suite 3, on the port the client used ({port_bytes}): {active}"
    );
    let info = ipmitool(port, &["sol", "info"]);
    for want in [
        "Enabled                         : true",
        "Force Encryption                : true",
        "Force Authentication            : true",
        "Privilege Level                 : USER",
        "Payload Port                    : 623",
    ] {
        assert!(info.contains(want), "{want}: {info}");
    }

    // MAAS then drives the node as that user, with IPMI 2.0 and with 1.5.
    let as_maas_line =
        format!("--driver-type LAN_2_0 -h {host} -u maas -p Maas-Pass-42 -I 3 -l ADMIN");
    let as_maas: Vec<&str> = as_maas_line.split_whitespace().collect();
    let as_maas15: Vec<&str> = vec!["-h", &host, "-u", "maas", "-p", "Maas-Pass-42"];
    for args in [&as_maas, &as_maas15] {
        assert_eq!(
            ok("ipmipower", &[&args[..], &["--stat"]].concat()).trim(),
            "127.0.0.1: on"
        );
    }
    let (wrong, text) = run(
        "ipmipower",
        &["-h", &host, "-u", "maas", "-p", "wrong-password", "--stat"],
    );
    assert!(
        !text.contains("127.0.0.1: on") && (text.contains("password invalid") || !wrong),
        "a wrong password is refused: {text}"
    );
    let users = ipmitool(port, &["user", "list", "1"]);
    let row = users.lines().find(|l| l.starts_with("3 ")).unwrap_or("");
    assert!(
        row.contains("maas") && row.contains("ADMINISTRATOR"),
        "{users}"
    );

    // The user stays as a real BMC keeps it: over a cold reset of the BMC and a restart of the
    // node's container (ipmi_sim keeps users in its state directory, the node's volume).
    ipmitool(port, &["mc", "reset", "cold"]);
    wait_ipmipower(&as_maas, "on");
    let restart = Command::new("docker")
        .args(["restart", &format!("{}-n", u.name)])
        .output()
        .expect("docker");
    assert!(restart.status.success(), "{}", stderr(&restart));
    wait_ipmipower(&as_maas, "on");
    let sol = section_checkout(&admin, "SOL_Conf");
    assert_eq!(
        config_value(&sol, "Force_SOL_Payload_Encryption"),
        Some("Yes"),
        "kept over the restart: {sol}"
    );
    let lan = section_checkout(&admin, "Lan_Conf");
    assert_eq!(
        config_value(&lan, "IP_Address"),
        Some(bmc_ip.as_str()),
        "{lan}"
    );
}

#[test]
fn ironic_ipmitool_and_pyghmi_power_and_boot_calls() {
    let Some(_engine) = engine_or_skip("ipmi_maas_ironic") else {
        return;
    };
    // The venv must be there before the lab starts.
    venv_python();
    let u = unique("ironic");
    let t = TestLab::new(&u.name, &lab_file(&u));
    let up = t.lab(&["up"]);
    assert!(up.status.success(), "lab up failed: {}", stderr(&up));
    let port = u.port_base;
    let bmc_ip = format!("{}.6", u.prefix());

    // Ironic's set_boot_device(PXE, persistent=True) in UEFI mode: the raw Set System Boot
    // Options it sends (timer off, then flags 0xe0 = valid, persistent, EFI; device 0x04 = PXE),
    // read back with its raw Get and with `chassis bootparam get 5`.
    ipmitool(port, &["raw", "0x00", "0x08", "0x03", "0x08"]);
    ipmitool(
        port,
        &[
            "raw", "0x00", "0x08", "0x05", "0xe0", "0x04", "0x00", "0x00", "0x00",
        ],
    );
    let got = ipmitool(port, &["raw", "0x00", "0x09", "0x05", "0x00", "0x00"]);
    assert_eq!(got.trim(), "01 05 e0 04 00 00 00", "{got}");
    assert_bootparam(
        port,
        &[
            "Options apply to all future boots",
            "BIOS EFI boot",
            "Boot Device Selector : Force PXE",
        ],
    );
    // Ironic's get_boot_device for a disk: raw 0x08 0x05 0xe0 0x08 reads back as disk.
    ipmitool(
        port,
        &[
            "raw", "0x00", "0x08", "0x05", "0xe0", "0x08", "0x00", "0x00", "0x00",
        ],
    );
    let got = ipmitool(port, &["raw", "0x00", "0x09", "0x05", "0x00", "0x00"]);
    assert_eq!(got.trim(), "01 05 e0 08 00 00 00", "{got}");

    // sdr -v list, sdr dump and a listing from the dumped file.
    let verbose = ipmitool(port, &["sdr", "-v", "list"]);
    for want in [
        "Sensor ID              : Inlet Temp",
        "Sensor ID              : Fan 1",
        "Upper critical",
        "Lower critical",
    ] {
        assert!(verbose.contains(want), "{want}: {verbose}");
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let dump = dir.path().join("sdr.bin");
    let dump_arg = dump.to_string_lossy().into_owned();
    ipmitool(port, &["sdr", "dump", &dump_arg]);
    assert!(
        std::fs::metadata(&dump).map(|m| m.len()).unwrap_or(0) > 100,
        "the dump holds the SDR repository"
    );
    let cached = ipmitool(port, &["-S", &dump_arg, "sdr", "list"]);
    let live = ipmitool(port, &["sdr", "list"]);
    let names = |s: &str| -> Vec<String> {
        s.lines()
            .filter_map(|l| l.split('|').next().map(|n| n.trim().to_string()))
            .filter(|n| !n.is_empty())
            .collect()
    };
    assert_eq!(names(&cached), names(&live), "{cached}");
    assert!(names(&cached).iter().any(|n| n == "Fan 1"), "{cached}");

    // user list 1 and lan print 1: the BMC's address on the lab network and its MAC.
    let users = ipmitool(port, &["user", "list", "1"]);
    let admin = users.lines().find(|l| l.starts_with("2 ")).unwrap_or("");
    assert!(
        admin.contains("admin") && admin.contains("true") && admin.contains("ADMINISTRATOR"),
        "{users}"
    );
    let lan = ipmitool(port, &["lan", "print", "1"]);
    let field = |name: &str| -> String {
        lan.lines()
            .find(|l| l.split(':').next().map(str::trim) == Some(name))
            .and_then(|l| l.split_once(':'))
            .map(|(_, v)| v.trim().to_string())
            .unwrap_or_default()
    };
    assert_eq!(field("IP Address"), bmc_ip, "{lan}");
    assert_eq!(field("Subnet Mask"), "255.255.255.0", "{lan}");
    assert_eq!(field("IP Address Source"), "Static Address", "{lan}");
    let mac = field("MAC Address");
    assert!(mac.len() == 17 && mac != "00:00:00:00:00:00", "{lan}");
    assert_eq!(
        field("Default Gateway IP"),
        format!("{}.1", u.prefix()),
        "{lan}"
    );
    // Its network settings are lab.toml's: a change (ipmitool answers it) is not applied.
    let (_, set) = ipmitool_any(port, "lan set 1 ipaddr 10.9.9.9");
    let lan = ipmitool(port, &["lan", "print", "1"]);
    assert!(
        lan.contains(&format!("IP Address              : {bmc_ip}")),
        "{set}\n{lan}"
    );

    // sol deactivate with no SOL session: ipmitool says so (the BMC answers "not active").
    let (_, sol) = ipmitool_any(port, "sol deactivate");
    assert!(sol.contains("SOL payload already de-activated"), "{sol}");

    // chassis power soft: the ACPI power button.
    let before = node_log(&u)
        .matches("soft off: ACPI power button pressed")
        .count();
    let soft = ipmitool(port, &["chassis", "power", "soft"]);
    assert!(soft.contains("Chassis Power Control: Soft"), "{soft}");
    wait_log(&u, "soft off: ACPI power button pressed", before);

    // mc reset cold: the BMC comes back, the VM keeps running (the same QEMU process).
    let qemu_pid = || {
        let out = docker(&[
            "exec",
            &format!("{}-n", u.name),
            "pgrep",
            "-o",
            "qemu-system",
        ]);
        stdout(&out).trim().to_string()
    };
    let pid = qemu_pid();
    assert!(!pid.is_empty(), "QEMU runs");
    let cold = ipmitool(port, &["mc", "reset", "cold"]);
    assert!(cold.contains("Sent cold reset command to MC"), "{cold}");
    wait_power(port, "on", Duration::from_secs(60));
    assert_eq!(
        qemu_pid(),
        pid,
        "the VM kept running over the BMC's cold reset"
    );
    let info = ipmitool(port, &["mc", "info"]);
    assert!(info.contains("IPMI Version              : 2.0"), "{info}");

    // pyghmi: set_power(wait=True) returns the final state; set_bootdev(network, persist,
    // uefiboot) reads back over ipmitool and is honoured at the next power on.
    let starts = node_log(&u).matches("lab: power on: qemu").count();
    let v = pyghmi_script("pyghmi_power_boot.py", port);
    assert_eq!(v["off"]["powerstate"], "off", "{v}");
    assert_eq!(v["after_off"]["powerstate"], "off", "{v}");
    assert_eq!(v["bootdev"]["bootdev"], "network", "{v}");
    assert_eq!(v["get_bootdev"]["bootdev"], "network", "{v}");
    assert_eq!(v["get_bootdev"]["persistent"], true, "{v}");
    assert_eq!(v["get_bootdev"]["uefimode"], true, "{v}");
    assert_eq!(v["on"]["powerstate"], "on", "{v}");
    assert_eq!(v["after_on"]["powerstate"], "on", "{v}");
    assert_bootparam(
        port,
        &[
            "Options apply to all future boots",
            "BIOS EFI boot",
            "Boot Device Selector : Force PXE",
        ],
    );
    wait_power_on(&u, starts, "boot=pxe (BMC override (persistent))");
}
