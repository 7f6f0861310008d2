//! Live: the Redfish service of a node's BMC (lab-bmcd) against real clients: DMTF's Redfish
//! Service Validator (Basic and session authentication), Ironic's sushy, DMTF's
//! redfish-utilities scripts, and bad input; IPMI (ipmitool) reads back what Redfish changed
//! and the other way round. `.ci/run` installs the Python tools into the venv LAB_VENV
//! (default /opt/lab-venv) and points LAB_REDFISH_SCHEMAS at DMTF's CSDL (the validator cannot
//! download it here).

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use common::*;
use serde_json::Value;

fn lab_file(u: &Unique) -> String {
    let p = u.prefix();
    lab_with_services(u)
        + &format!(
            r#"
[nodes.n1]
mac = "02:1a:b0:00:00:07"
ip = "{p}.100"
bmc_ip = "{p}.6"
ipmi_port = {ipmi}
redfish_port = {redfish}
memory = "256M"
disk = "1G"
accel = "tcg"
bmc_password = "rf-secret"
"#,
            ipmi = u.port_base,
            redfish = u.port_base + 1,
        )
}

const PASSWORD: &str = "rf-secret";

fn venv() -> PathBuf {
    PathBuf::from(std::env::var("LAB_VENV").unwrap_or_else(|_| "/opt/lab-venv".into()))
}

/// Runs a program and returns its stdout and stderr; panics (with both) when it fails.
fn run(cmd: &Path, args: &[&str], envs: &[(&str, &str)]) -> String {
    let out = Command::new(cmd)
        .args(args)
        .envs(envs.iter().copied())
        .output()
        .unwrap_or_else(|e| panic!("{} cannot run ({e}): `.ci/run` installs it", cmd.display()));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    eprintln!("$ {} {}\n{text}", cmd.display(), args.join(" "));
    assert!(
        out.status.success(),
        "{} {}: {text}",
        cmd.display(),
        args.join(" ")
    );
    text
}

fn ipmitool(port: u16, args: &[&str]) -> String {
    let port = port.to_string();
    let mut all = vec![
        "-I",
        "lanplus",
        "-C",
        "3",
        "-H",
        "127.0.0.1",
        "-p",
        &port,
        "-U",
        "admin",
    ];
    all.extend(["-P", PASSWORD]);
    all.extend(args);
    run(Path::new("ipmitool"), &all, &[])
}

struct Rf {
    agent: ureq::Agent,
    base: String,
    auth: String,
}

struct Answer {
    status: u16,
    etag: Option<String>,
    headers: Vec<(String, String)>,
    body: Value,
}

impl Rf {
    fn new(port: u16, user: &str, password: &str) -> Rf {
        use base64::Engine;
        let auth = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
        Rf {
            agent: bmc_agent(Duration::from_secs(20)),
            base: format!("https://127.0.0.1:{port}"),
            auth: format!("Basic {auth}"),
        }
    }

    fn send(&self, method: &str, path: &str, body: Option<&str>, extra: &[(&str, &str)]) -> Answer {
        let url = format!("{}{path}", self.base);
        let mut req = ureq::http::Request::builder()
            .method(method)
            .uri(&url)
            .header("authorization", &self.auth);
        for (k, v) in extra {
            req = req.header(*k, *v);
        }
        let result = match body {
            Some(b) => self.agent.run(
                req.header("content-type", "application/json")
                    .body(b.to_string())
                    .unwrap(),
            ),
            None => self.agent.run(req.body(()).unwrap()),
        };
        let mut r = result.unwrap_or_else(|e| panic!("{method} {url}: {e}"));
        let headers = r
            .headers()
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or("").to_string()))
            .collect();
        let etag = r
            .headers()
            .get("etag")
            .and_then(|v| v.to_str().ok())
            .map(String::from);
        let text = r.body_mut().read_to_string().unwrap_or_default();
        Answer {
            status: r.status().as_u16(),
            etag,
            headers,
            body: serde_json::from_str(&text).unwrap_or(Value::Null),
        }
    }

    fn get(&self, path: &str) -> Answer {
        self.send("GET", path, None, &[])
    }
}

impl Answer {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The MessageIds of an error, registry version left out ("PropertyUnknown").
    fn message_ids(&self) -> Vec<String> {
        self.body["error"]["@Message.ExtendedInfo"]
            .as_array()
            .unwrap_or_else(|| panic!("no @Message.ExtendedInfo in {}", self.body))
            .iter()
            .map(|m| {
                m["MessageId"]
                    .as_str()
                    .unwrap_or("")
                    .rsplit('.')
                    .next()
                    .unwrap_or("")
                    .to_string()
            })
            .collect()
    }
}

fn wait_for(what: &str, secs: u64, mut ok: impl FnMut() -> bool) {
    let until = Instant::now() + Duration::from_secs(secs);
    while Instant::now() < until {
        if ok() {
            return;
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    panic!("{what}: not within {secs} s");
}

fn power_is(port: u16, state: &str) -> bool {
    ipmitool(port, &["power", "status"]).contains(&format!("is {state}"))
}

/// DMTF's schemas: LAB_REDFISH_SCHEMAS, or the shared copy beside the repository, copied to a
/// temporary directory (the validator may write into it).
fn schemas(tmp: &Path) -> PathBuf {
    let src = std::env::var("LAB_REDFISH_SCHEMAS")
        .map(PathBuf::from)
        .unwrap_or_else(|_| Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/redfish/csdl"));
    let entries = std::fs::read_dir(&src).unwrap_or_else(|e| {
        panic!(
            "DMTF's Redfish schemas (CSDL of DSP8010) are not at {} ({e}): set LAB_REDFISH_SCHEMAS to a directory holding them (`.ci/run` does)",
            src.display()
        )
    });
    let dst = tmp.join("csdl");
    std::fs::create_dir_all(&dst).unwrap();
    for e in entries.flatten() {
        std::fs::copy(e.path(), dst.join(e.file_name())).unwrap();
    }
    dst
}

/// Runs the Redfish Service Validator and returns (pass, warn, fail) from its summary table.
fn validate(port: u16, auth: &str, schemas: &Path, logdir: &Path) -> (u64, u64, u64) {
    let ip = format!("https://127.0.0.1:{port}");
    let out = run(
        &venv().join("bin/rf_service_validator"),
        &[
            "--ip",
            &ip,
            "-u",
            "admin",
            "-p",
            PASSWORD,
            "--authtype",
            auth,
            "--schema_directory",
            &schemas.to_string_lossy(),
            "--logdir",
            &logdir.to_string_lossy(),
        ],
        &[],
    );
    // |     PASS     |     WARN     |     FAIL     |  NOT TESTED  |  then the figures' row.
    let lines: Vec<&str> = out.lines().collect();
    let head = lines
        .iter()
        .position(|l| l.contains("PASS") && l.contains("FAIL"))
        .unwrap_or_else(|| panic!("no summary table in the validator's output"));
    let nums: Vec<u64> = lines[head + 2]
        .split('|')
        .filter_map(|c| c.trim().parse().ok())
        .collect();
    assert!(nums.len() >= 3, "summary row: {}", lines[head + 2]);
    (nums[0], nums[1], nums[2])
}

/// Runs a Python snippet with sushy in the venv; the snippet prints one JSON object.
fn sushy(port: u16, code: &str) -> Value {
    let script = format!(
        "import json, sushy, urllib3\nurllib3.disable_warnings()\n\
         root = sushy.Sushy('https://127.0.0.1:{port}/redfish/v1', username='admin', password='{PASSWORD}', verify=False)\n\
         system = root.get_system('/redfish/v1/Systems/1')\n{code}\n"
    );
    let out = run(&venv().join("bin/python"), &["-c", &script], &[]);
    let last = out
        .lines()
        .rev()
        .find(|l| l.starts_with('{'))
        .unwrap_or("{}");
    serde_json::from_str(last).unwrap_or_else(|e| panic!("sushy printed no JSON ({e}): {out}"))
}

fn bootparam(ipmi: u16) -> String {
    let out = ipmitool(ipmi, &["chassis", "bootparam", "get", "5"]);
    out.lines()
        .find_map(|l| l.strip_prefix("Boot parameter data: "))
        .unwrap_or_else(|| panic!("no boot parameter data: {out}"))
        .trim()
        .to_string()
}

#[test]
fn redfish_bmc_passes_the_validator_and_drives_the_same_bmc_as_ipmi() {
    let Some(_engine) = engine_or_skip("redfish") else {
        return;
    };
    let u = unique("rf");
    let (ipmi, redfish) = (u.port_base, u.port_base + 1);
    let lab = TestLab::new(&u.name, &lab_file(&u));
    let up = lab.lab(&["up"]);
    assert!(up.status.success(), "lab up: {}", stderr(&up));
    let rf = Rf::new(redfish, "admin", PASSWORD);
    wait_for("the Redfish service answers", 60, || {
        rf.get("/redfish/v1/Systems/1").status == 200
    });

    // status: the curl line, and the certificate's fingerprint as lab-bmcd logged it.
    let status: Value = serde_json::from_str(&stdout(&lab.lab(&["status", "--json"]))).unwrap();
    let node = status["nodes"]
        .as_array()
        .and_then(|n| n.iter().find(|n| n["name"] == "n1"))
        .unwrap_or_else(|| panic!("no node n1 in {status}"));
    let curl =
        format!("curl -k -u admin:<password> https://127.0.0.1:{redfish}/redfish/v1/Systems/1");
    assert!(
        node["endpoints"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e == curl.as_str()),
        "{node}"
    );
    let fingerprint = node["redfish_cert_sha256"]
        .as_str()
        .unwrap_or_else(|| panic!("{node}"));
    let logs = stdout(&lab.lab(&["logs", "n1"]));
    assert!(
        logs.contains(&format!("certificate SHA-256 {fingerprint}")),
        "status shows {fingerprint}, the log says otherwise:\n{logs}"
    );

    // 1. DMTF's validator, with both authentication types: no failure, no warning.
    let tmp = tempfile::tempdir().unwrap();
    let csdl = schemas(tmp.path());
    for auth in ["Basic", "Session"] {
        let (pass, warn, fail) = validate(redfish, auth, &csdl, &tmp.path().join(auth));
        assert_eq!((warn, fail), (0, 0), "validator with {auth}: {pass} pass");
        assert!(
            pass > 400,
            "validator with {auth} checked only {pass} properties"
        );
    }

    // 2. Identity: what Redfish says is what the FRU and the GUID say over IPMI.
    let fru = ipmitool(ipmi, &["fru", "print", "0"]);
    let fru_field = |name: &str| {
        fru.lines()
            .find_map(|l| {
                l.split_once(':')
                    .filter(|(k, _)| k.trim() == name)
                    .map(|(_, v)| v.trim().to_string())
            })
            .unwrap_or_else(|| panic!("no {name} in the FRU: {fru}"))
    };
    let guid = ipmitool(ipmi, &["mc", "guid"]);
    let guid = guid
        .lines()
        .find_map(|l| {
            l.split_once(':')
                .map(|(_, g)| g.trim().to_lowercase().replace('-', ""))
        })
        .unwrap();
    let inv = sushy(
        redfish,
        "print(json.dumps({'serial': system.serial_number, 'uuid': system.uuid, \
         'manufacturer': system.manufacturer, 'model': system.model}))",
    );
    assert_eq!(inv["serial"], fru_field("Product Serial").as_str());
    assert_eq!(
        inv["manufacturer"],
        fru_field("Product Manufacturer").as_str()
    );
    assert_eq!(inv["model"], fru_field("Product Name").as_str());
    assert_eq!(
        inv["uuid"].as_str().unwrap().replace('-', ""),
        guid,
        "UUID = System GUID"
    );
    assert_eq!(
        inv["uuid"], node["uuid"],
        "Redfish's UUID is the node's uuid as lab status shows it"
    );

    // 3. Power through sushy, seen by ipmitool.
    sushy(
        redfish,
        "system.reset_system(sushy.ResetType.FORCE_OFF)\nprint('{}')",
    );
    wait_for("ipmitool sees the power off", 30, || power_is(ipmi, "off"));
    let off = sushy(
        redfish,
        "system.refresh()\nprint(json.dumps({'power': str(system.power_state)}))",
    );
    assert!(off["power"].as_str().unwrap().ends_with("OFF"), "{off}");
    sushy(
        redfish,
        "system.reset_system(sushy.ResetType.ON)\nprint('{}')",
    );
    wait_for("ipmitool sees the power on", 30, || power_is(ipmi, "on"));
    sushy(
        redfish,
        "system.reset_system(sushy.ResetType.FORCE_RESTART)\nprint('{}')",
    );
    let sel = ipmitool(ipmi, &["sel", "list"]);
    assert!(
        sel.contains("Initiated by hard reset"),
        "the reset is in the SEL: {sel}"
    );
    let entries = rf.get("/redfish/v1/Systems/1/LogServices/SEL/Entries");
    let messages: Vec<&str> = entries.body["Members"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["Message"].as_str())
        .collect();
    assert!(
        messages.contains(&"System boot initiated by hard reset"),
        "{messages:?}"
    );

    // 4. Boot override: sushy sets it, ipmitool reads it; ipmitool sets it, sushy reads it.
    sushy(
        redfish,
        "system.set_system_boot_options(sushy.BootSource.PXE, enabled=sushy.BootSourceOverrideEnabled.ONCE, mode=sushy.BootSourceOverrideMode.LEGACY)\nprint('{}')",
    );
    assert!(bootparam(ipmi).starts_with("8004"), "PXE once, legacy");
    sushy(
        redfish,
        "system.set_system_boot_options(sushy.BootSource.HDD, enabled=sushy.BootSourceOverrideEnabled.CONTINUOUS, mode=sushy.BootSourceOverrideMode.UEFI)\nprint('{}')",
    );
    assert!(bootparam(ipmi).starts_with("e008"), "disk, persistent, EFI");
    ipmitool(
        ipmi,
        &["chassis", "bootdev", "cdrom", "options=persistent,efiboot"],
    );
    let boot = sushy(
        redfish,
        "b = system.boot\nprint(json.dumps({'target': str(b.target), 'enabled': str(b.enabled), 'mode': str(b.mode)}))",
    );
    assert!(boot["target"].as_str().unwrap().ends_with("CD"), "{boot}");
    assert!(
        boot["enabled"].as_str().unwrap().ends_with("CONTINUOUS"),
        "{boot}"
    );
    assert!(boot["mode"].as_str().unwrap().ends_with("UEFI"), "{boot}");
    ipmitool(ipmi, &["chassis", "bootdev", "pxe"]);
    let b = rf.get("/redfish/v1/Systems/1").body["Boot"].clone();
    assert_eq!(
        (
            b["BootSourceOverrideTarget"].as_str(),
            b["BootSourceOverrideEnabled"].as_str()
        ),
        (Some("Pxe"), Some("Once"))
    );

    // 5. DMTF's own scripts as a second client.
    let rhost = format!("https://127.0.0.1:{redfish}");
    let common = ["-u", "admin", "-p", PASSWORD, "-r", &rhost];
    let tool = |name: &str, extra: &[&str]| {
        let mut a = common.to_vec();
        a.extend(extra);
        run(&venv().join("bin").join(name), &a, &[])
    };
    tool("rf_boot_override.py", &["-t", "Hdd"]);
    assert!(bootparam(ipmi).starts_with("8008"), "disk, next boot");
    tool("rf_power_reset.py", &["-t", "ForceOff"]);
    wait_for("ipmitool sees rf_power_reset's ForceOff", 30, || {
        power_is(ipmi, "off")
    });
    tool("rf_power_reset.py", &["-t", "On"]);
    wait_for("ipmitool sees rf_power_reset's On", 30, || {
        power_is(ipmi, "on")
    });
    let inventory = tool("rf_sys_inventory.py", &[]);
    assert!(
        inventory.contains("1GB"),
        "the disk is in the inventory: {inventory}"
    );

    // Virtual media: DMTF's script inserts (the BMC downloads the image from the web service and
    // puts it in the running VM's drive), sushy reads and ejects; lab-media follows.
    std::fs::write(lab.dir.path().join("webroot/cd.iso"), b"a CD image").unwrap();
    let iso = format!("http://{}/cd.iso", u.ip(3));
    tool("rf_virtual_media.py", &["insert", "--image", &iso]);
    let container = format!("{}-n1", u.name);
    let media = |args: &[&str]| {
        let mut a = vec!["exec", &container, "lab-media"];
        a.extend(args);
        stdout(&docker(&a)).trim().to_string()
    };
    assert_eq!(media(&["status"]), "inserted /var/lib/lab/media/cd.iso");
    let cat = docker(&["exec", &container, "cat", "/var/lib/lab/media/cd.iso"]);
    assert_eq!(stdout(&cat), "a CD image");
    let vm = sushy(
        redfish,
        "vm = system.virtual_media.get_members()[0]\nseen = (vm.image, vm.inserted)\nvm.eject_media()\nvm.refresh()\n\
         print(json.dumps({'seen': seen, 'after': (vm.image, vm.inserted)}))",
    );
    assert_eq!(vm["seen"], serde_json::json!([iso, true]), "{vm}");
    assert_eq!(vm["after"], serde_json::json!([null, false]), "{vm}");
    let cd = rf.get("/redfish/v1/Managers/1/VirtualMedia/CD");
    assert_eq!(
        (cd.status, cd.body["Inserted"].as_bool()),
        (200, Some(false))
    );
    assert_eq!(media(&["status"]), "empty");

    // 6. Bad input: the right 4xx with Base registry messages, and the BMC keeps answering.
    let sys = "/redfish/v1/Systems/1";
    let reset = "/redfish/v1/Systems/1/Actions/ComputerSystem.Reset";
    let cases: &[(&str, &str, &str, u16, &str)] = &[
        ("PATCH", sys, "{\"Boot\": {", 400, "MalformedJSON"),
        (
            "PATCH",
            sys,
            r#"{"Boot":{"BootSourceOverrideEnabled":true}}"#,
            400,
            "PropertyValueTypeError",
        ),
        (
            "PATCH",
            sys,
            r#"{"Boot":{"BootSourceOverrideTarget":"Tape"}}"#,
            400,
            "PropertyValueNotInList",
        ),
        ("PATCH", sys, r#"{"Frobnicate":1}"#, 400, "PropertyUnknown"),
        (
            "PATCH",
            sys,
            r#"{"SerialNumber":"X"}"#,
            400,
            "PropertyNotWritable",
        ),
        (
            "POST",
            reset,
            r#"{"ResetType":"Explode"}"#,
            400,
            "ActionParameterValueNotInList",
        ),
        ("DELETE", sys, "", 405, "OperationNotAllowed"),
        (
            "GET",
            "/redfish/v1/Systems/9",
            "",
            404,
            "ResourceMissingAtURI",
        ),
    ];
    for (method, path, body, status, id) in cases {
        let body = (!body.is_empty()).then_some(*body);
        let a = rf.send(method, path, body, &[]);
        assert_eq!(a.status, *status, "{method} {path} {body:?}: {}", a.body);
        assert_eq!(a.message_ids(), [id.to_string()], "{method} {path}");
    }
    let wrong = Rf::new(redfish, "admin", "not-it").get(sys);
    assert_eq!(
        (wrong.status, wrong.message_ids()),
        (401, vec!["NoValidSession".to_string()])
    );
    assert!(wrong.header("www-authenticate").is_some());
    let login = rf.send(
        "POST",
        "/redfish/v1/SessionService/Sessions",
        Some(r#"{"UserName":"admin","Password":"x"}"#),
        &[],
    );
    assert_eq!(login.status, 401);
    let current = rf.get(sys).etag.expect("an ETag");
    let patch = r#"{"Boot":{"BootSourceOverrideTarget":"Pxe"}}"#;
    assert_eq!(
        rf.send("PATCH", sys, Some(patch), &[("if-match", &current)])
            .status,
        200
    );
    let stale = rf.send("PATCH", sys, Some(patch), &[("if-match", &current)]);
    assert_eq!(
        (stale.status, stale.message_ids()),
        (412, vec!["PreconditionFailed".to_string()])
    );
    assert_eq!(rf.get(sys).status, 200, "the BMC still answers");
    assert!(power_is(ipmi, "on"), "and still over IPMI");
}

/// `bmc_publish`: each BMC of a group on a loopback address of its own, at the standard ports
/// (623/udp, 443/tcp); each address reaches that node's BMC, over IPMI and Redfish, and
/// `status` shows the addresses.
#[test]
fn bmcs_published_on_their_own_host_addresses_answer_at_the_standard_ports() {
    let Some(engine) = engine_or_skip("redfish") else {
        return;
    };
    let u = unique("bmcpub");
    let p = u.prefix();
    // An address range of this test's own: 127.<its subnet's 2nd and 3rd bytes>.10 and .11.
    let base = format!("127.{}.{}", u.net[0], u.net[1]);
    let file = lab_with_services(&u)
        + &format!(
            r#"
[nodes.w]
count = 2
mac = "02:1a:b0:00:01:00"
ip = "{p}.100"
bmc_ip = "{p}.6"
bmc_publish = "{base}.10"
memory = "128M"
disk = "1G"
accel = "tcg"
power = "off"
bmc_password = "{PASSWORD}"
"#
        );
    let lab = TestLab::new(&u.name, &file);
    let out = lab.lab(&["up", "--timeout", "300"]);
    assert!(out.status.success(), "lab up: {}", stderr(&out));
    let status: Value = serde_json::from_str(&stdout(&lab.lab(&["status", "--json"]))).unwrap();
    let agent = bmc_agent(Duration::from_secs(10));
    let auth = {
        use base64::Engine;
        let b64 = base64::engine::general_purpose::STANDARD.encode(format!("admin:{PASSWORD}"));
        format!("Basic {b64}")
    };
    for (name, host) in [("w-1", format!("{base}.10")), ("w-2", format!("{base}.11"))] {
        let node = status["nodes"]
            .as_array()
            .and_then(|n| n.iter().find(|n| n["name"] == name))
            .unwrap_or_else(|| panic!("no node {name} in {status}"));
        let mut endpoints: Vec<&str> = node["endpoints"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(Value::as_str)
            .collect();
        endpoints.sort();
        assert_eq!(
            endpoints,
            [
                format!("curl -k -u admin:<password> https://{host}:443/redfish/v1/Systems/1"),
                format!("ipmitool -I lanplus -H {host} -p 623 -U admin -P <password>"),
            ],
            "{node}"
        );
        let serial = node["serial"].as_str().expect("serial");
        // IPMI at the address, default port: this node's FRU.
        let out = Command::new("ipmitool")
            .args(["-I", "lanplus", "-C", "3", "-H", &host, "-U", "admin"])
            .args(["-P", PASSWORD, "fru", "print", "0"])
            .output()
            .expect("ipmitool");
        let fru = format!("{}{}", stdout(&out), stderr(&out));
        assert!(
            out.status.success() && fru.contains(&format!("Product Serial        : {serial}")),
            "{host}: {fru}"
        );
        // Redfish at the address, no port: the same node.
        let url = format!("https://{host}/redfish/v1/Systems/1");
        let until = Instant::now() + Duration::from_secs(60);
        let system: Value = loop {
            let r = agent.get(&url).header("authorization", &auth).call();
            if let Ok(mut r) = r {
                if r.status() == 200 {
                    break serde_json::from_str(&r.body_mut().read_to_string().unwrap()).unwrap();
                }
            }
            assert!(Instant::now() < until, "{url} did not answer");
            std::thread::sleep(Duration::from_secs(1));
        };
        assert_eq!(system["SerialNumber"], serial, "{system}");
        assert_eq!(system["PowerState"], "Off", "{system}");
    }
    let out = lab.lab(&["down", "--volumes"]);
    assert!(out.status.success(), "lab down: {}", stderr(&out));
    assert_eq!(leftovers(&engine, &u.name), (0, 0, 0));
}
