//! Live: the IPMI clients provisioning software uses (ipmitool, freeipmi, pyghmi), unchanged and
//! without workaround flags, against one lab node's published BMC; their answers are checked.
//! `.ci/run` installs the clients: freeipmi-tools from Debian, pyghmi in the venv LAB_VENV
//! (default /opt/lab-venv).

mod common;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

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

fn tool<S: AsRef<str>>(cmd: &str, args: &[S]) -> String {
    tool_status(cmd, args, true)
}

fn tool_status<S: AsRef<str>>(cmd: &str, args: &[S], must_succeed: bool) -> String {
    let args: Vec<&str> = args.iter().map(|a| a.as_ref()).collect();
    let out = Command::new(cmd).args(&args).output().unwrap_or_else(|e| {
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
    tool("ipmitool", &ipmitool_args(port, cipher, args))
}

fn ipmitool_args(port: u16, cipher: Option<&str>, args: &[&str]) -> Vec<String> {
    let mut all: Vec<String> = ["-I", "lanplus", "-H", "127.0.0.1", "-p", &port.to_string()]
        .iter()
        .map(|s| s.to_string())
        .collect();
    all.extend(["-U", "admin", "-P", "admin"].map(String::from));
    if let Some(c) = cipher {
        all.extend(["-C".to_string(), c.to_string()]);
    }
    all.extend(args.iter().map(|s| s.to_string()));
    all
}

fn freeipmi(cmd: &str, port: u16, privilege: &str, cache: &Path, args: &[&str]) -> String {
    let host = format!("127.0.0.1:{port}");
    let cache = cache.to_string_lossy().into_owned();
    let mut all = vec!["-h", &host, "-u", "admin", "-p", "admin", "-l", privilege];
    // The SDR cache is the test's own: freeipmi's default one is per host and port, and a port
    // another lab used before would hand over that lab's stale cache.
    if cmd == "ipmi-sensors" || cmd == "ipmi-sel" || cmd == "ipmi-fru" {
        all.extend(["--sdr-cache-directory", &cache]);
    }
    all.extend(args);
    tool(cmd, &all)
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
    let python = venv_python();

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

    // ipmitool, plain lanplus (which picks cipher suite 17) and with cipher suites 3 and 17.
    for cipher in [None, Some("3"), Some("17")] {
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
        for want in SENSORS {
            let line = sdr.lines().find(|l| l.starts_with(want)).unwrap_or("");
            assert!(line.ends_with("| ok"), "sensor {want}: {sdr}");
        }
        assert_powered_on_readings(&sdr);
    }
    let sensor = ipmitool(port, Some("3"), &["sensor"]);
    // `sensor` shows the thresholds: Fan 1's lower critical 600 RPM, 12V's upper critical 13.2 V.
    let fan = sensor
        .lines()
        .find(|l| l.starts_with("Fan 1"))
        .unwrap_or("");
    assert!(fan.contains("| 600.000"), "{sensor}");
    let v12 = sensor.lines().find(|l| l.starts_with("12V")).unwrap_or("");
    assert!(v12.contains("| 13.200"), "{sensor}");
    let info = ipmitool(port, Some("3"), &["mc", "info"]);
    assert!(info.contains("IPMI Version              : 2.0"), "{info}");
    // The manufacturer: "Metal Lab" is no IANA enterprise, so RFC 5612's documentation number.
    assert!(info.contains("Manufacturer ID           : 32473"), "{info}");
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

    cipher_suite_17(&t, port, &serial, &python);

    // freeipmi, as MAAS runs it: no workaround flags, at every privilege level.
    let cache = tempfile::tempdir().expect("tempdir");
    for privilege in ["USER", "OPERATOR", "ADMIN"] {
        // bmc-info asks Get System Info Parameters last (ipmi_sim has none, and its privilege
        // table gave that command to admins only, so bmc-info failed below admin).
        let info = freeipmi("bmc-info", port, privilege, cache.path(), &[]);
        assert!(
            info.contains("IPMI Version") && info.contains("2.0"),
            "{info}"
        );
        assert!(
            info.contains("System Firmware Version       : 1.4.0"),
            "the firmware version of SMBIOS type 0: {info}"
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
        let fan = freeipmi_reading(&sensors, "Fan 1");
        assert!(fan.is_some_and(|v| v > 3000.0), "{sensors}");
        assert!(sensors.contains("'Presence detected'"), "{sensors}");
        let sel = freeipmi("ipmi-sel", port, privilege, cache.path(), &[]);
        assert!(sel.contains("Critical Interrupt"), "{sel}");
    }

    // IPMI 1.5 sessions (freeipmi's default): the answer after Activate Session carries the
    // next sequence number, so freeipmi takes it and sends no request twice (ipmi_sim alone
    // repeated the number, and freeipmi sent Set Session Privilege Level again after 1 s).
    let debug = freeipmi("ipmi-fru", port, "ADMIN", cache.path(), &["--debug"]);
    let set_priv = debug.matches("Set Session Privilege Level Request").count();
    assert_eq!(set_priv, 1, "{debug}");

    // pyghmi (xCAT/confluent), from the venv.
    let v = pyghmi_script("pyghmi_inventory.py", port);
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
    assert_eq!(names, SENSORS, "{v}");
    let on = pyghmi_values(&v);
    assert!(on["Fan 1"].is_some_and(|f| f > 3000.0), "{v}");
    assert!(on["12V"].is_some_and(|f| (11.5..12.5).contains(&f)), "{v}");

    // Power off: the sensors on the main rail stop reading, as a real server's do; the inlet
    // temperature, standby voltage and the PSU's standby draw still read. The SEL has the boot
    // device change and the power off; a cleared SEL keeps only "log area reset/cleared".
    ipmitool(port, Some("3"), &["sel", "clear"]);
    ipmitool(port, Some("3"), &["chassis", "bootdev", "pxe"]);
    ipmitool(port, Some("3"), &["power", "off"]);
    wait_power(port, "off");
    let sdr = ipmitool(port, Some("3"), &["sdr", "list"]);
    for gone in ["CPU Temp", "Fan 1", "Fan 2", "12V", "5V", "CPU Vcore"] {
        let line = sdr.lines().find(|l| l.starts_with(gone)).unwrap_or("");
        assert!(line.contains("| no reading"), "{gone} off: {sdr}");
    }
    let inlet = sdr_reading(&sdr, "Inlet Temp").unwrap_or(0.0);
    assert!((15.0..30.0).contains(&inlet), "{sdr}");
    assert_eq!(
        sdr_reading(&sdr, "3.3VSB").map(|v| v > 3.0),
        Some(true),
        "{sdr}"
    );
    assert_eq!(
        sdr_reading(&sdr, "PSU1 Power"),
        Some(8.0),
        "standby draw: {sdr}"
    );
    let dcmi = ipmitool(port, Some("3"), &["dcmi", "power", "reading"]);
    let instant = dcmi
        .lines()
        .find(|l| l.contains("Instantaneous power reading"));
    assert!(
        instant.is_some_and(|l| l.trim_end().ends_with(" 8 Watts")),
        "{dcmi}"
    );
    let sensors = freeipmi("ipmi-sensors", port, "USER", cache.path(), &[]);
    let fan = sensors
        .lines()
        .find(|l| l.contains("| Fan 1 "))
        .unwrap_or("");
    assert!(fan.contains("N/A"), "{sensors}");
    assert!(
        freeipmi_reading(&sensors, "Inlet Temp").is_some(),
        "{sensors}"
    );
    let v = pyghmi_script("pyghmi_inventory.py", port);
    let off = pyghmi_values(&v);
    assert_eq!(off["Fan 1"], None, "{v}");
    assert_eq!(off["CPU Temp"], None, "{v}");
    assert!(off["Inlet Temp"].is_some(), "{v}");
    assert_eq!(v["health"]["health"], 0, "no reading is not a fault: {v}");
    let sel = ipmitool(port, Some("3"), &["sel", "elist"]);
    let events: Vec<&str> = sel.lines().filter(|l| l.contains(" | ")).collect();
    assert!(events[0].contains("Log area reset/cleared"), "{sel}");
    assert!(
        events.iter().any(|l| l.contains("System Reconfigured")),
        "{sel}"
    );
    assert!(
        events.iter().any(|l| l.contains("S5: entered by override")),
        "{sel}"
    );
    // Each entry carries the BMC's clock, not "Pre-Init".
    assert!(!sel.contains("Pre-Init"), "{sel}");
    ipmitool(port, Some("3"), &["sel", "clear"]);
    let sel = ipmitool(port, Some("3"), &["sel", "elist"]);
    assert_eq!(
        sel.lines().filter(|l| l.contains(" | ")).count(),
        1,
        "{sel}"
    );

    // Power on again: the readings are back.
    ipmitool(port, Some("3"), &["power", "on"]);
    wait_power(port, "on");
    let sdr = ipmitool(port, Some("3"), &["sdr", "list"]);
    assert_powered_on_readings(&sdr);
    let sel = ipmitool(port, Some("3"), &["sel", "elist"]);
    assert!(sel.contains("Initiated by power up"), "{sel}");

    // freeipmi's SDR cache outlives a restart of the BMC: the SDR repository keeps its timestamp.
    let restart = Command::new("docker")
        .args(["restart", &format!("{}-n1", u.name)])
        .output()
        .expect("docker");
    assert!(restart.status.success(), "{}", stderr(&restart));
    for _ in 0..120 {
        if power(port).is_some() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(500));
    }
    let sensors = freeipmi("ipmi-sensors", port, "USER", cache.path(), &[]);
    assert!(
        freeipmi_reading(&sensors, "Inlet Temp").is_some(),
        "{sensors}"
    );
}

/// Cipher suite 17 (RAKP-HMAC-SHA256, HMAC-SHA256-128, AES-CBC-128): the BMC offers it, plain
/// lanplus and pyghmi choose it, and the command list of a provisioner works over it. ipmitool
/// and freeipmi check the BMC's RAKP 2 code and RAKP 4 value and every packet's integrity code,
/// so each answer below also proves the BMC derived SIK, K1 and K2 as they do.
fn cipher_suite_17(t: &TestLab, port: u16, serial: &str, python: &Path) {
    let c17 = Some("17");
    let ciphers = ipmitool(port, c17, &["channel", "getciphers", "ipmi"]);
    let row = ciphers.lines().find(|l| l.starts_with("17 ")).unwrap_or("");
    let algorithms: Vec<&str> = row.split_whitespace().skip(2).collect();
    assert_eq!(
        algorithms,
        ["hmac_sha256", "sha256_128", "aes_cbc_128"],
        "{ciphers}"
    );
    assert!(ciphers.lines().any(|l| l.starts_with("3 ")), "{ciphers}");
    let lan = ipmitool(port, c17, &["lan", "print"]);
    assert!(
        lan.contains("RMCP+ Cipher Suites     : 1,2,3,6,11,17"),
        "{lan}"
    );
    // Plain lanplus asks for the suites (outside a session) and takes the best: 17.
    let chosen = ipmitool(port, None, &["-v", "power", "status"]);
    assert!(
        chosen.contains("Using best available cipher suite 17"),
        "{chosen}"
    );
    // pyghmi asks for suite 17 first and keeps it (SHA-1 was its fallback).
    let hash = tool(
        &python.to_string_lossy(),
        &[
            "-c",
            &format!(
                "from pyghmi.ipmi import command\n\
                 c = command.Command(bmc='127.0.0.1', port={port}, userid='admin', password='admin')\n\
                 print('power', c.get_power()['powerstate'], 'hash', c.ipmi_session.currhashlib.__name__)"
            ),
        ],
    );
    assert!(hash.contains("power on hash openssl_sha256"), "{hash}");
    // freeipmi over IPMI 2.0 with suite 17.
    let host = format!("127.0.0.1:{port}");
    let free17 = [
        "-h", &host, "-u", "admin", "-p", "admin", "-D", "LAN_2_0", "-I", "17",
    ];
    let cache = tempfile::tempdir().expect("tempdir");
    let cache = cache.path().to_string_lossy().into_owned();
    let fru = tool(
        "ipmi-fru",
        &[&free17[..], &["--sdr-cache-directory", &cache]].concat(),
    );
    assert!(
        fru.contains(&format!("FRU Product Serial Number: {serial}")),
        "{fru}"
    );
    let stat = tool("ipmipower", &[&free17[..], &["--stat"]].concat());
    assert!(stat.contains(": on"), "{stat}");

    // A wrong password: ipmitool finds the BMC's RAKP 2 code wrong and stops at once.
    let mut args = ipmitool_args(port, c17, &["-v", "power", "status"]);
    let password = args
        .iter()
        .position(|a| a == "-P")
        .expect("ipmitool_args has -P")
        + 1;
    args[password] = "wrong".into();
    let wrong = tool_status("ipmitool", &args, false);
    assert!(wrong.contains("RAKP 2 HMAC is invalid"), "{wrong}");
    assert!(!wrong.contains("Chassis Power"), "{wrong}");

    // Issue 11's command list.
    let status = ipmitool(port, c17, &["chassis", "status"]);
    assert!(status.contains("System Power         : on"), "{status}");
    let policy = ipmitool(port, c17, &["chassis", "policy", "list"]);
    assert!(policy.contains("always-on"), "{policy}");
    let sensor = ipmitool(port, c17, &["sensor"]);
    let v12 = sensor.lines().find(|l| l.starts_with("12V")).unwrap_or("");
    assert!(v12.contains("| 13.200"), "{sensor}");
    let sdr = ipmitool(port, c17, &["sdr", "list", "-v"]);
    assert!(sdr.contains("Sensor ID              : Fan 1"), "{sdr}");
    let info = ipmitool(port, c17, &["mc", "info"]);
    assert!(info.contains("IPMI Version              : 2.0"), "{info}");
    let guid = ipmitool(port, c17, &["mc", "guid"]);
    assert!(guid.contains(&format!("System GUID   : {UUID}")), "{guid}");
    let users = ipmitool(port, c17, &["user", "list"]);
    assert!(
        users
            .lines()
            .any(|l| l.contains(" admin ") && l.contains("ADMINISTRATOR")),
        "{users}"
    );
    // Sixteen user slots, as on most real BMCs (ipmi_sim alone has 63).
    let ids: Vec<&str> = users
        .lines()
        .skip(1)
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    assert_eq!(ids.len(), 16, "{users}");
    assert_eq!(ids.last(), Some(&"16"), "{users}");
    let seventeen = Command::new("ipmitool")
        .args(ipmitool_args(
            port,
            c17,
            &["user", "set", "name", "17", "seventeen"],
        ))
        .output()
        .expect("ipmitool");
    // The BMC refuses the ID (0xCC), which ipmitool names.
    assert!(
        !seventeen.status.success() && stderr(&seventeen).contains("Invalid data field in request"),
        "there is no user 17: {}",
        stderr(&seventeen)
    );
    let dcmi = ipmitool(port, c17, &["dcmi", "power", "reading"]);
    assert!(dcmi.contains("Instantaneous power reading"), "{dcmi}");
    // DCMI's power reading needs user privilege only (DCMI 1.5), as ipmitool `-L USER` asks.
    let dcmi = ipmitool(port, c17, &["-L", "USER", "dcmi", "power", "reading"]);
    assert!(dcmi.contains("Instantaneous power reading"), "{dcmi}");
    ipmitool(port, c17, &["sel", "clear"]);
    let diag = ipmitool(port, c17, &["power", "diag"]);
    assert!(diag.contains("Chassis Power Control: Diag"), "{diag}");
    let sel = ipmitool(port, c17, &["sel", "elist"]);
    assert!(sel.contains("NMI/Diag Interrupt"), "{sel}");
    let sel = ipmitool(port, c17, &["sel", "list"]);
    assert!(sel.contains("Critical Interrupt"), "{sel}");

    // Serial over LAN, encrypted: the console shows the boot that a reset made over suite 17
    // starts (SeaBIOS, then the firmware's network boot reaching lab's boot script).
    let sol_cmd =
        format!("ipmitool -I lanplus -C 17 -H 127.0.0.1 -p {port} -U admin -P admin sol activate");
    let mut sol = Interactive::spawn(Command::new("script").args(["-qfc", &sol_cmd, "/dev/null"]));
    let open = sol.wait_for("SOL Session operational", Duration::from_secs(30));
    // A boot starts with SeaBIOS's banner: the reset's boot is the first banner after the ones
    // already shown, and it must go on to lab's boot script (what the VM printed before the
    // reset, e.g. the last boot's script line arriving late, does not count).
    let boots_before = sol.text().matches("SeaBIOS (version").count();
    let new_boot_fetched = |sol: &Interactive| {
        let text = sol.text();
        text.match_indices("SeaBIOS (version")
            .nth(boots_before)
            .is_some_and(|(at, _)| text[at..].contains("fetches its boot script"))
    };
    let reset = ipmitool(port, c17, &["power", "reset"]);
    assert!(reset.contains("Chassis Power Control: Reset"), "{reset}");
    let start = std::time::Instant::now();
    let mut seen = false;
    while open && !seen && start.elapsed() < Duration::from_secs(90) {
        std::thread::sleep(Duration::from_millis(200));
        seen = new_boot_fetched(&sol);
    }
    let deactivate = tool_status(
        "ipmitool",
        &ipmitool_args(port, c17, &["sol", "deactivate"]),
        false,
    );
    let again = tool_status(
        "ipmitool",
        &ipmitool_args(port, c17, &["sol", "deactivate"]),
        false,
    );
    sol.send("~.");
    let text = sol.text();
    let _ = sol.close_and_wait(Duration::from_secs(10));
    if !seen {
        // What the VM printed (QEMU's own console log) and what the node logged (QEMU's reset
        // event, the BMC's actions) tell a reset that did not happen from SOL losing output.
        let node = format!("{}-n1", t.name);
        let console = docker(&[
            "exec",
            &node,
            "tail",
            "-c",
            "3000",
            "/var/lib/lab/console.log",
        ]);
        let log = container_log(&node);
        let lines: Vec<&str> = log.lines().collect();
        let log_tail = lines[lines.len().saturating_sub(30)..].join("\n");
        let console = stdout(&console);
        // CI shows the end of a failure: the counts that tell the causes apart come last.
        panic!(
            "SOL (suite 17) did not show the firmware after the reset\n\
             --- node log (last 30 lines):\n{log_tail}\n\
             --- console.log (tail):\n{console}\n\
             --- SOL:\n{text}\n\
             --- SOL showed {} bytes and {} SeaBIOS banners ({boots_before} before the reset); \
             console.log's tail has {} banners",
            text.len(),
            text.matches("SeaBIOS (version").count(),
            console.matches("SeaBIOS (version").count(),
        );
    }
    assert!(!deactivate.contains("already de-activated"), "{deactivate}");
    assert!(
        again.contains("SOL payload already de-activated"),
        "{again}"
    );

    // Boot device, read back; power off and on.
    ipmitool(port, c17, &["chassis", "bootdev", "pxe"]);
    let flags = ipmitool(port, c17, &["chassis", "bootparam", "get", "5"]);
    assert!(
        flags.contains("Force PXE") && flags.contains("only next boot"),
        "{flags}"
    );
    ipmitool(port, c17, &["power", "off"]);
    wait_power(port, "off");
    let off = ipmitool(port, c17, &["power", "status"]);
    assert!(off.contains("Chassis Power is off"), "{off}");
    ipmitool(port, c17, &["power", "on"]);
    wait_power(port, "on");
    ipmitool(port, c17, &["mc", "reset", "cold"]);
    let status = ipmitool(port, c17, &["chassis", "status"]);
    assert!(status.contains("System Power         : on"), "{status}");
    let logs = t.lab(&["logs", "n1"]);
    let logs = format!("{}{}", stdout(&logs), stderr(&logs));
    assert!(logs.contains("NMI sent to the VM"), "{logs}");
}

/// The SDR's sensors, in order.
const SENSORS: [&str; 11] = [
    "Inlet Temp",
    "CPU Temp",
    "Fan 1",
    "Fan 2",
    "12V",
    "5V",
    "CPU Vcore",
    "3.3VSB",
    "VBAT",
    "PSU1 Power",
    "PSU1 Status",
];

/// The reading of `name` in `ipmitool sdr list` ("Fan 1 | 4680 RPM | ok"); None for "no reading".
fn sdr_reading(sdr: &str, name: &str) -> Option<f64> {
    let line = sdr.lines().find(|l| l.starts_with(name))?;
    line.split('|')
        .nth(1)?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// The reading of `name` in freeipmi's `ipmi-sensors` table ("3 | Fan 1 | Fan | 4920.00 | ...").
fn freeipmi_reading(sensors: &str, name: &str) -> Option<f64> {
    let line = sensors
        .lines()
        .find(|l| l.split('|').nth(1).map(str::trim) == Some(name))?;
    line.split('|').nth(3)?.trim().parse().ok()
}

/// What a powered-on server reads: every sensor has a plausible value.
fn assert_powered_on_readings(sdr: &str) {
    let want = [
        ("Inlet Temp", 15.0, 30.0),
        ("CPU Temp", 20.0, 60.0),
        ("Fan 1", 3000.0, 6000.0),
        ("Fan 2", 3000.0, 6000.0),
        ("12V", 11.5, 12.5),
        ("5V", 4.8, 5.2),
        ("CPU Vcore", 0.9, 1.2),
        ("3.3VSB", 3.1, 3.5),
        ("PSU1 Power", 90.0, 150.0),
    ];
    for (name, lo, hi) in want {
        let v = sdr_reading(sdr, name);
        assert!(v.is_some_and(|v| (lo..=hi).contains(&v)), "{name}: {sdr}");
    }
}

/// Waits (up to 60 s) until the BMC says the power is `want`.
fn wait_power(port: u16, want: &str) {
    for _ in 0..120 {
        if power(port).as_deref() == Some(want) {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(500));
    }
    panic!("the BMC never said power {want}");
}

/// pyghmi's sensor values by name (None: no reading).
fn pyghmi_values(v: &serde_json::Value) -> std::collections::HashMap<String, Option<f64>> {
    v["sensors"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|s| (s[0].as_str().unwrap_or("").to_string(), s[1].as_f64()))
                .collect()
        })
        .unwrap_or_default()
}
