//! UEFI firmware and the CD-ROM drive, live: OVMF nodes PXE-boot (an EFI iPXE over TFTP) and
//! HTTP-boot (the EFI iPXE's URL from DHCP) the smoke OS to `up` and keep their NVRAM across a
//! power cycle; a BIOS and a UEFI node boot the smoke OS's CD image, inserted with `lab-media`,
//! after `ipmitool chassis bootdev cdrom`.

mod common;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use common::*;
use metal_lab::engine::{DockerEngine, Engine};

/// OVMF under TCG is slow: a node takes about a minute from power on to `up` here (see README).
const BOOT_DEADLINE: Duration = Duration::from_secs(300);

fn lab_file(u: &Unique, nodes: &str) -> String {
    let p = u.prefix();
    format!(
        r#"
[lab]
name = "{name}"

[network]
subnet = "{subnet}"

[services.dhcp]
kind = "dnsmasq"
ip = "{p}.2"
dhcp_range = ["{p}.150", "{p}.200"]

[services.web]
kind = "httpd"
ip = "{p}.3"
root = "webroot"

[profiles.smoke]
kernel = "smoke/vmlinuz"
initrd = "smoke/initrd"
cmdline = "console=ttyS0,115200n8 no_timer_check lab.node={{{{ node.name }}}} lab.report={{{{ report_url }}}} quiet"

[node_defaults]
memory = "256M"
disk = "1G"
accel = "tcg"
profile = "smoke"
{nodes}"#,
        name = u.name,
        subnet = u.subnet(),
        nodes = nodes.replace("{p}", &p),
    )
}

fn ipmitool(port: u16, args: &[&str]) -> String {
    let out = Command::new("ipmitool")
        .args(["-I", "lanplus", "-C", "3", "-H", "127.0.0.1"])
        .args(["-p", &port.to_string(), "-U", "admin", "-P", "admin"])
        .args(args)
        .output()
        .expect("ipmitool (installed by .ci/run)");
    let text = format!("{}{}", stdout(&out), stderr(&out));
    eprintln!("$ ipmitool -p {port} {}\n{text}", args.join(" "));
    assert!(out.status.success(), "ipmitool {args:?} failed: {text}");
    text
}

struct Live {
    engine: DockerEngine,
    rt: tokio::runtime::Runtime,
    lab: String,
}

impl Live {
    /// `lab up` of `t`, which must succeed.
    fn up(engine: DockerEngine, t: &TestLab) -> Live {
        let out = t.lab(&["up", "--timeout", "600"]);
        assert!(out.status.success(), "lab up failed: {}", stderr(&out));
        Live {
            engine,
            rt: tokio::runtime::Runtime::new().expect("tokio runtime"),
            lab: t.name.clone(),
        }
    }

    fn exec(&self, container: &str, argv: &[&str]) -> (i64, String) {
        let argv: Vec<String> = argv.iter().map(|s| s.to_string()).collect();
        let o = self
            .rt
            .block_on(self.engine.exec(container, &argv))
            .expect("exec");
        eprintln!("$ docker exec {container} {}\n{}", argv.join(" "), o.output);
        (o.exit_code, o.output)
    }

    fn file(&self, node: &str, path: &str) -> Vec<u8> {
        self.rt
            .block_on(self.engine.read_file(&format!("{}-{node}", self.lab), path))
            .unwrap_or_default()
    }

    fn console(&self, node: &str) -> String {
        String::from_utf8_lossy(&self.file(node, "/var/lib/lab/console.log")).into_owned()
    }

    fn logs(&self, service: &str) -> String {
        self.rt
            .block_on(self.engine.logs(&format!("{}-{service}", self.lab), None))
            .unwrap_or_default()
    }

    /// Waits until `node` (MAC `mac`, address `ip`) has shown its banner `times` times in all on
    /// its console (kept in its volume; the smoke OS shows it once its report got an answer) and
    /// the web service has logged a report; returns the seconds since `started`.
    fn wait_up(&self, node: &str, mac: &str, ip: &str, times: usize, started: Instant) -> f64 {
        let report = format!("GET 204 0 /lab/report/{}", mac.replace(':', "-"));
        let banner = format!("lab-smoke: node {node} is up at {ip} ");
        loop {
            let web = self.logs("web");
            let reports = web
                .lines()
                .filter(|l| l.starts_with(&format!("{ip} ")) && l.contains(&report))
                .count();
            let console = self.console(node);
            if reports >= 1 && console.matches(&banner).count() >= times {
                let secs = started.elapsed().as_secs_f64();
                eprintln!("node {node} up (#{times}) after {secs:.1}s");
                return secs;
            }
            if started.elapsed() > BOOT_DEADLINE {
                let tail: String = console
                    .chars()
                    .skip(console.chars().count().saturating_sub(4000))
                    .collect();
                panic!(
                    "node {node} was not up (#{times}) within {}s ({reports} reports)\n--- web log ---\n{web}\n--- dhcp log ---\n{}\n--- console (end) ---\n{tail}",
                    BOOT_DEADLINE.as_secs(),
                    self.logs("dhcp")
                );
            }
            std::thread::sleep(Duration::from_millis(500));
        }
    }
}

/// The 32-bit value of the EFI variable `name` in an OVMF variable store, if it is there and
/// valid (state VAR_ADDED).
fn efi_variable_u32(store: &[u8], name: &str) -> Option<u32> {
    let vars = metal_lab::nvram::variables(store).expect("an OVMF variable store");
    let (at, len) = vars.iter().rev().find(|v| v.live() && v.name == name)?.data;
    (len == 4).then(|| u32::from_le_bytes(store[at..at + 4].try_into().unwrap()))
}

#[test]
fn uefi_nodes_pxe_boot_and_http_boot_the_smoke_os_and_keep_their_nvram() {
    let Some(engine) = engine_or_skip("uefi_boot") else {
        return;
    };
    let u = unique("uefi");
    let nodes = r#"
[nodes.p]
mac = "02:5e:00:00:00:01"
ip = "{p}.100"
bmc_ip = "{p}.6"
firmware = "uefi"
boot = "pxe"

[nodes.h]
mac = "02:5e:00:00:00:02"
ip = "{p}.101"
bmc_ip = "{p}.7"
firmware = "uefi"
boot = "http"
"#;
    let t = TestLab::new(&u.name, &lab_file(&u, nodes));
    let live = Live::up(engine, &t);
    let started = Instant::now();
    let pxe_secs = live.wait_up("p", "02:5e:00:00:00:01", &u.ip(100).to_string(), 1, started);
    let http_secs = live.wait_up("h", "02:5e:00:00:00:02", &u.ip(101).to_string(), 1, started);
    eprintln!("UEFI PXE node up {pxe_secs:.1}s, UEFI HTTP boot node up {http_secs:.1}s after lab up returned (both booting at once)");

    // What each firmware asked for and got: OVMF's PXE (architecture 7) an EFI iPXE over TFTP,
    // OVMF's HTTP boot (vendor class HTTPClient) the EFI iPXE's URL on the web service.
    let dhcp = live.logs("dhcp");
    assert!(
        dhcp.contains("vendor class: PXEClient:Arch:00007"),
        "{dhcp}"
    );
    assert!(
        dhcp.contains(&format!("sent /srv/tftp/snponly.efi to {}", u.ip(100))),
        "{dhcp}"
    );
    assert!(
        dhcp.contains("vendor class: HTTPClient:Arch:00016"),
        "{dhcp}"
    );
    let web = live.logs("web");
    assert!(
        web.lines()
            .any(|l| l.starts_with(&format!("{} ", u.ip(101)))
                && l.contains("GET 200 ")
                && l.ends_with(" /lab/ipxe/ipxe.efi")),
        "{web}"
    );
    assert!(
        !web.lines()
            .any(|l| l.starts_with(&format!("{} ", u.ip(100))) && l.contains("/lab/ipxe/")),
        "the PXE node loads its iPXE over TFTP: {web}"
    );
    // Both then ran the same boot script as BIOS nodes.
    for ip in [u.ip(100), u.ip(101)] {
        assert!(
            web.lines()
                .any(|l| l.starts_with(&format!("{ip} ")) && l.ends_with(" /lab/boot.ipxe")),
            "{web}"
        );
    }

    // The NVRAM is the node's own and survives a power cycle: OVMF counts its boots in the
    // variable MTC (the monotonic counter's high half), which grows only if the store is kept.
    // The cycle boots p over HTTP, once: the BMC's override `http` (what Redfish's UefiHttp
    // target writes; IPMI has no selector for it).
    let vars = "/var/lib/lab/uefi-vars.fd";
    let first = efi_variable_u32(&live.file("p", vars), "MTC").expect("MTC in the NVRAM");
    let p = format!("{}-p", u.name);
    let (code, _) = live.exec(&p, &["sh", "-c", "echo 'http once' > /var/lib/lab/bootdev"]);
    assert_eq!(code, 0);
    let out = t.lab(&["power", "p", "cycle"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let secs = live.wait_up(
        "p",
        "02:5e:00:00:00:01",
        &u.ip(100).to_string(),
        2,
        Instant::now(),
    );
    eprintln!("UEFI node p up again {secs:.1}s after its power cycle (HTTP boot by BMC override)");
    let web = live.logs("web");
    assert!(
        web.lines()
            .any(|l| l.starts_with(&format!("{} ", u.ip(100)))
                && l.contains("GET 200 ")
                && l.ends_with(" /lab/ipxe/ipxe.efi")),
        "the override made p HTTP-boot: {web}"
    );
    assert_eq!(
        String::from_utf8_lossy(&live.file("p", "/var/lib/lab/bootdev")).trim(),
        "none"
    );
    let second = efi_variable_u32(&live.file("p", vars), "MTC").expect("MTC in the NVRAM");
    assert!(
        second > first,
        "OVMF's boot counter went from {first} to {second}: the NVRAM was not kept"
    );
    eprintln!("OVMF's boot counter (MTC): {first}, then {second} after the power cycle");
    let node_log = live
        .rt
        .block_on(live.engine.logs(&p, None))
        .unwrap_or_default();
    assert_eq!(node_log.matches("uefi: new NVRAM").count(), 1, "{node_log}");

    // ... and `lab down` (volumes kept) and `lab up`: a new node container, the same NVRAM.
    let out = t.lab(&["down"]);
    assert!(out.status.success(), "lab down failed: {}", stderr(&out));
    let out = t.lab(&["up", "--timeout", "600"]);
    assert!(out.status.success(), "lab up failed: {}", stderr(&out));
    let p_ip = u.ip(100).to_string();
    live.wait_up("p", "02:5e:00:00:00:01", &p_ip, 3, Instant::now());
    let third = efi_variable_u32(&live.file("p", vars), "MTC").expect("MTC in the NVRAM");
    assert!(
        third > second,
        "OVMF's boot counter went from {second} to {third} across lab down/up"
    );
    let node_log = live
        .rt
        .block_on(live.engine.logs(&p, None))
        .unwrap_or_default();
    assert!(!node_log.contains("uefi: new NVRAM"), "{node_log}");
    eprintln!("OVMF's boot counter (MTC) after lab down and up: {third}");

    let out = t.lab(&["down", "--volumes"]);
    assert!(out.status.success(), "lab down failed: {}", stderr(&out));
    assert_eq!(leftovers(&live.engine, &u.name), (0, 0, 0));
}

#[test]
fn bios_and_uefi_nodes_boot_the_smoke_cd_after_bootdev_cdrom() {
    let Some(engine) = engine_or_skip("uefi_boot") else {
        return;
    };
    let u = unique("cdrom");
    let nodes = format!(
        r#"
[nodes.b]
mac = "02:5e:00:00:01:01"
ip = "{{p}}.100"
bmc_ip = "{{p}}.6"
ipmi_port = {b_port}
power = "off"

[nodes.e]
mac = "02:5e:00:00:01:02"
ip = "{{p}}.101"
bmc_ip = "{{p}}.7"
ipmi_port = {e_port}
power = "off"
firmware = "uefi"
memory = "512M"   # GRUB's EFI loader cannot load Debian's kernel and the initrd in 256M
"#,
        b_port = u.port_base,
        e_port = u.port_base + 1,
    );
    let t = TestLab::new(&u.name, &lab_file(&u, &nodes));
    let live = Live::up(engine, &t);
    let iso = std::fs::read(t.dir.path().join("webroot").join(metal_lab::smoke::ISO))
        .expect("smoke.iso exported");
    assert!(iso.len() > 1_000_000, "smoke.iso has {} bytes", iso.len());

    for (node, port, efi) in [("b", u.port_base, false), ("e", u.port_base + 1, true)] {
        let container = format!("{}-{node}", u.name);
        upload(&live, &container, &iso, "/var/lib/lab/media/smoke.iso");
        let (code, out) = live.exec(
            &container,
            &["lab-media", "insert", "/var/lib/lab/media/smoke.iso"],
        );
        assert_eq!(code, 0, "{out}");
        assert!(
            out.contains("the VM is off: attached at the next power on"),
            "{out}"
        );
        let (_, status) = live.exec(&container, &["lab-media", "status"]);
        assert_eq!(status.trim(), "inserted /var/lib/lab/media/smoke.iso");

        // Redfish's UefiHttp target reads over IPMI as PXE in UEFI mode; an IPMI override replaces it.
        let (code, _) = live.exec(
            &container,
            &["sh", "-c", "echo 'http persistent' > /var/lib/lab/bootdev"],
        );
        assert_eq!(code, 0);
        let flags = ipmitool(port, &["chassis", "bootparam", "get", "5"]);
        assert!(
            flags.contains("Options apply to all future boots"),
            "{flags}"
        );
        assert!(flags.contains("BIOS EFI boot"), "{flags}");
        assert!(flags.contains("Force PXE"), "{flags}");

        let mut bootdev = vec!["chassis", "bootdev", "cdrom"];
        if efi {
            bootdev.push("options=efiboot");
        }
        ipmitool(port, &bootdev);
        let flags = ipmitool(port, &["chassis", "bootparam", "get", "5"]);
        assert!(flags.contains("Force Boot from CD/DVD"), "{flags}");
        assert!(flags.contains("Options apply to only next boot"), "{flags}");
        let mode = if efi {
            "BIOS EFI boot"
        } else {
            "BIOS PC Compatible (legacy) boot"
        };
        assert!(flags.contains(mode), "{flags}");
        let want = if efi { "cdrom once efi" } else { "cdrom once" };
        assert_eq!(
            String::from_utf8_lossy(&live.file(node, "/var/lib/lab/bootdev")).trim(),
            want
        );
        ipmitool(port, &["chassis", "power", "on"]);
    }
    let started = Instant::now();
    let bios_secs = live.wait_up("b", "02:5e:00:00:01:01", &u.ip(100).to_string(), 1, started);
    let uefi_secs = live.wait_up("e", "02:5e:00:00:01:02", &u.ip(101).to_string(), 1, started);
    eprintln!("CD boot to up: BIOS node {bios_secs:.1}s, UEFI node {uefi_secs:.1}s after power on (both at once)");

    let dhcp = live.logs("dhcp");
    for (node, ip) in [("b", u.ip(100)), ("e", u.ip(101))] {
        let console = live.console(node);
        // The CD's command line names neither node nor report URL: both came from DHCP.
        assert!(
            console.contains(&format!(
                "no lab.node= on the kernel command line: node {node} (the DHCP host name)"
            )),
            "{console}"
        );
        assert!(
            console.contains(&format!("reporting to http://{}/lab/report/", u.ip(3))),
            "{console}"
        );
        // Booted from the CD, not the network: no iPXE was asked for.
        for ipxe in ["undionly.kpxe", "snponly.efi"] {
            assert!(
                !dhcp.contains(&format!("sent /srv/tftp/{ipxe} to {ip}")),
                "{dhcp}"
            );
        }
        // The one-time override is used up.
        assert_eq!(
            String::from_utf8_lossy(&live.file(node, "/var/lib/lab/bootdev")).trim(),
            "none"
        );
    }
    let web = live.logs("web");
    assert!(
        !web.contains("/lab/boot.ipxe"),
        "no node network-booted: {web}"
    );

    // The medium of a running VM changes at once (QEMU's QMP), and the record follows.
    let container = format!("{}-e", u.name);
    let (code, out) = live.exec(&container, &["lab-media", "eject"]);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("ejected /var/lib/lab/media/smoke.iso"),
        "{out}"
    );
    let (_, status) = live.exec(&container, &["lab-media", "status"]);
    assert_eq!(status.trim(), "empty");
    let (code, out) = live.exec(
        &container,
        &["lab-media", "insert", "/var/lib/lab/media/smoke.iso"],
    );
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("(in the running VM now)"), "{out}");
    let (code, out) = live.exec(&container, &["lab-media", "insert", "/nothing.iso"]);
    assert_ne!(code, 0);
    assert!(out.contains("/nothing.iso is not a readable file"), "{out}");

    let out = t.lab(&["down", "--volumes"]);
    assert!(out.status.success(), "lab down failed: {}", stderr(&out));
    assert_eq!(leftovers(&live.engine, &u.name), (0, 0, 0));
}

/// Writes `data` to `path` in a running container (through `cat` on an attached exec's stdin).
fn upload(live: &Live, container: &str, data: &[u8], path: &str) {
    let dir = Path::new(path)
        .parent()
        .expect("a directory")
        .display()
        .to_string();
    let argv = vec![
        "sh".to_string(),
        "-c".to_string(),
        format!("mkdir -p {dir} && cat > {path}.part && mv {path}.part {path}"),
    ];
    let (tx, rx) = tokio::sync::mpsc::channel(16);
    let chunks: Vec<Vec<u8>> = data.chunks(1 << 20).map(<[u8]>::to_vec).collect();
    let code = live.rt.block_on(async {
        let send = async move {
            for c in chunks {
                if tx.send(c).await.is_err() {
                    break;
                }
            }
        };
        let run = live.engine.exec_attached(container, &argv, rx, |_| {});
        let (code, ()) = tokio::join!(run, send);
        code
    });
    assert_eq!(code.expect("exec"), 0, "upload to {container}:{path}");
    let size = live.file_size(container, path);
    assert_eq!(size, data.len() as u64, "{container}:{path}");
}

impl Live {
    fn file_size(&self, container: &str, path: &str) -> u64 {
        let (_, out) = self.exec(container, &["stat", "-c", "%s", path]);
        out.trim().parse().unwrap_or(0)
    }
}

/// One Redfish request to the node's BMC at 127.0.0.1:`port` (admin/admin, its self-signed
/// certificate taken): the status and the JSON body (Null when none).
fn redfish(port: u16, method: &str, path: &str, body: Option<&str>) -> (u16, serde_json::Value) {
    let agent = bmc_agent(Duration::from_secs(120));
    let url = format!("https://127.0.0.1:{port}{path}");
    let req = ureq::http::Request::builder()
        .method(method)
        .uri(&url)
        .header("authorization", "Basic YWRtaW46YWRtaW4=") // admin:admin
        .header("content-type", "application/json");
    let mut r = agent
        .run(req.body(body.unwrap_or("").to_string()).unwrap())
        .unwrap_or_else(|e| panic!("{method} {url}: {e}"));
    let text = r.body_mut().read_to_string().unwrap_or_default();
    eprintln!(
        "{method} {path} {}: {} {text}",
        body.unwrap_or(""),
        r.status()
    );
    (
        r.status().as_u16(),
        serde_json::from_str(&text).unwrap_or_default(),
    )
}

#[test]
fn redfish_virtual_media_boots_the_smoke_cd() {
    let Some(engine) = engine_or_skip("uefi_boot") else {
        return;
    };
    let u = unique("rfcd");
    let nodes = format!(
        r#"
[nodes.v]
mac = "02:5e:00:00:02:01"
ip = "{{p}}.100"
bmc_ip = "{{p}}.6"
ipmi_port = {ipmi}
redfish_port = {rf}
power = "off"

[nodes.w]
mac = "02:5e:00:00:02:02"
ip = "{{p}}.101"
bmc_ip = "{{p}}.7"
redfish_port = {w_rf}
power = "off"
firmware = "uefi"
memory = "512M"   # GRUB's EFI loader cannot load Debian's kernel and the initrd in 256M
"#,
        ipmi = u.port_base,
        rf = u.port_base + 1,
        w_rf = u.port_base + 2,
    );
    let (ipmi, rf, w_rf) = (u.port_base, u.port_base + 1, u.port_base + 2);
    let t = TestLab::new(&u.name, &lab_file(&u, &nodes));
    let live = Live::up(engine, &t);
    let container = format!("{}-v", u.name);
    let until = Instant::now() + Duration::from_secs(60);
    while redfish(rf, "GET", "/redfish/v1/Systems/1", None).0 != 200
        || redfish(w_rf, "GET", "/redfish/v1/Systems/1", None).0 != 200
    {
        assert!(Instant::now() < until, "lab-bmcd did not answer");
        std::thread::sleep(Duration::from_secs(1));
    }
    let cd = "/redfish/v1/Systems/1/VirtualMedia/CD";
    let insert = format!("{cd}/Actions/VirtualMedia.InsertMedia");

    // InsertMedia: the BMC fetches the smoke CD from the web service into the node's volume and
    // puts it in the drive with lab-media.
    let image = format!("http://{}/{}", u.ip(3), metal_lab::smoke::ISO);
    let body = format!(r#"{{"Image":"{image}","Inserted":true,"WriteProtected":true}}"#);
    assert_eq!(redfish(rf, "POST", &insert, Some(&body)).0, 204);
    let (_, status) = live.exec(&container, &["lab-media", "status"]);
    assert_eq!(status.trim(), "inserted /var/lib/lab/media/cd.iso");
    let iso = std::fs::read(t.dir.path().join("webroot").join(metal_lab::smoke::ISO)).unwrap();
    assert_eq!(live.file("v", "/var/lib/lab/media/cd.iso"), iso);

    // An image that cannot be fetched: a 400 naming the URL, and the drive keeps its CD.
    for (url, id) in [
        (
            format!("http://{}/smoke/none.iso", u.ip(3)),
            "ResourceMissingAtURI",
        ),
        (
            format!("http://{}:81/smoke.iso", u.ip(3)),
            "CouldNotEstablishConnection",
        ),
    ] {
        let (status, v) = redfish(
            rf,
            "POST",
            &insert,
            Some(&format!(r#"{{"Image":"{url}"}}"#)),
        );
        let info = &v["error"]["@Message.ExtendedInfo"][0];
        assert_eq!(status, 400, "{v}");
        assert!(info["MessageId"].as_str().unwrap().ends_with(id), "{v}");
        assert_eq!(info["MessageArgs"][0], url.as_str(), "{v}");
    }
    let (_, v) = redfish(rf, "GET", cd, None);
    assert_eq!(
        (v["Image"].as_str(), v["Inserted"].as_bool()),
        (Some(image.as_str()), Some(true))
    );
    let (_, status) = live.exec(&container, &["lab-media", "status"]);
    assert_eq!(status.trim(), "inserted /var/lib/lab/media/cd.iso");

    // UefiHttp is `http` in the BMC's boot override file, PXE + UEFI over IPMI.
    let sys = "/redfish/v1/Systems/1";
    let (_, v) = redfish(
        rf,
        "PATCH",
        sys,
        Some(
            r#"{"Boot":{"BootSourceOverrideTarget":"UefiHttp","BootSourceOverrideEnabled":"Once"}}"#,
        ),
    );
    assert_eq!(v["Boot"]["BootSourceOverrideTarget"], "UefiHttp", "{v}");
    assert_eq!(
        String::from_utf8_lossy(&live.file("v", "/var/lib/lab/bootdev")).trim(),
        "http once efi"
    );
    let flags = ipmitool(ipmi, &["chassis", "bootparam", "get", "5"]);
    assert!(
        flags.contains("Force PXE") && flags.contains("BIOS EFI boot"),
        "{flags}"
    );

    // Cd once, then On: the VM boots the CD to `up`.
    let (_, v) = redfish(
        rf,
        "PATCH",
        sys,
        Some(
            r#"{"Boot":{"BootSourceOverrideTarget":"Cd","BootSourceOverrideEnabled":"Once","BootSourceOverrideMode":"Legacy"}}"#,
        ),
    );
    assert_eq!(v["Boot"]["BootSourceOverrideTarget"], "Cd", "{v}");
    assert_eq!(
        String::from_utf8_lossy(&live.file("v", "/var/lib/lab/bootdev")).trim(),
        "cdrom once"
    );
    let reset = "/redfish/v1/Systems/1/Actions/ComputerSystem.Reset";
    assert_eq!(
        redfish(rf, "POST", reset, Some(r#"{"ResetType":"On"}"#)).0,
        204
    );
    let started = Instant::now();

    // The same on the UEFI node, in UEFI mode: OVMF boots the CD.
    assert_eq!(redfish(w_rf, "POST", &insert, Some(&body)).0, 204);
    let (_, v) = redfish(
        w_rf,
        "PATCH",
        sys,
        Some(
            r#"{"Boot":{"BootSourceOverrideTarget":"Cd","BootSourceOverrideEnabled":"Once","BootSourceOverrideMode":"UEFI"}}"#,
        ),
    );
    assert_eq!(
        (
            &v["Boot"]["BootSourceOverrideTarget"],
            &v["Boot"]["BootSourceOverrideMode"]
        ),
        (&serde_json::json!("Cd"), &serde_json::json!("UEFI")),
        "{v}"
    );
    assert_eq!(
        String::from_utf8_lossy(&live.file("w", "/var/lib/lab/bootdev")).trim(),
        "cdrom once efi"
    );
    assert_eq!(
        redfish(w_rf, "POST", reset, Some(r#"{"ResetType":"On"}"#)).0,
        204
    );
    let w_started = Instant::now();

    for (node, mac, ip, port, firmware, since) in [
        ("v", "02:5e:00:00:02:01", u.ip(100), rf, "bios", started),
        ("w", "02:5e:00:00:02:02", u.ip(101), w_rf, "uefi", w_started),
    ] {
        let container = format!("{}-{node}", u.name);
        let secs = live.wait_up(node, mac, &ip.to_string(), 1, since);
        eprintln!(
            "Redfish virtual media: {firmware} node's CD boot to up {secs:.1}s after power on"
        );
        let log = container_log(&container);
        assert!(
            log.lines().any(|l| l.contains("power on: qemu")
                && l.contains(&format!("firmware={firmware}"))
                && l.contains("boot=cdrom")
                && l.contains("cd=/var/lib/lab/media/cd.iso")),
            "{log}"
        );
        let console = live.console(node);
        let want =
            format!("no lab.node= on the kernel command line: node {node} (the DHCP host name)");
        assert!(console.contains(&want), "{console}");

        // EjectMedia takes it out of the running VM.
        let eject = format!("{cd}/Actions/VirtualMedia.EjectMedia");
        assert_eq!(redfish(port, "POST", &eject, Some("{}")).0, 204);
        let (_, status) = live.exec(&container, &["lab-media", "status"]);
        assert_eq!(status.trim(), "empty");
        let (_, v) = redfish(port, "GET", cd, None);
        assert_eq!(v["Inserted"], false, "{v}");
    }
    assert!(
        !live.logs("web").contains("/lab/boot.ipxe"),
        "no network boot"
    );

    let out = t.lab(&["down", "--volumes"]);
    assert!(out.status.success(), "lab down failed: {}", stderr(&out));
    assert_eq!(leftovers(&live.engine, &u.name), (0, 0, 0));
}

/// The node's `power on: qemu ...` lines in its log, oldest first.
fn power_ons(container: &str) -> Vec<String> {
    container_log(container)
        .lines()
        .filter(|l| l.contains("power on: qemu"))
        .map(str::to_string)
        .collect()
}

/// The node's boot source and boots, from `lab status --json`.
fn boot_source(t: &TestLab) -> (Option<String>, Option<u64>) {
    let status = t.lab(&["status", "--json"]);
    let json: serde_json::Value = serde_json::from_slice(&status.stdout).expect("status JSON");
    let node = &json["nodes"][0];
    (
        node["boot_source"].as_str().map(str::to_string),
        node["boots"].as_u64(),
    )
}

/// Waits for `lab status` to tell the source of boot number `boots` (it comes from the logs a
/// moment after the node is up).
fn wait_boot_source(t: &TestLab, boots: u64) -> String {
    let until = Instant::now() + Duration::from_secs(60);
    loop {
        let (source, n) = boot_source(t);
        if let (Some(source), Some(n)) = (&source, n) {
            if n == boots {
                return source.clone();
            }
        }
        assert!(
            Instant::now() < until,
            "boot #{boots}: lab status says boot_source {source:?}, boots {n:?}"
        );
        std::thread::sleep(Duration::from_secs(1));
    }
}

#[test]
fn redfish_uefi_http_once_boots_a_uefi_node_over_http_then_its_own_order_again() {
    let Some(engine) = engine_or_skip("uefi_boot") else {
        return;
    };
    let u = unique("rfhttp");
    // No redfish_port: Redfish is published on the IPMI port's number over TCP.
    let nodes = format!(
        r#"
[nodes.u]
mac = "02:5e:00:00:03:01"
ip = "{{p}}.100"
bmc_ip = "{{p}}.6"
ipmi_port = {ipmi}
firmware = "uefi"
boot = "pxe"
"#,
        ipmi = u.port_base,
    );
    let rf = u.port_base;
    let t = TestLab::new(&u.name, &lab_file(&u, &nodes));
    let live = Live::up(engine, &t);
    let container = format!("{}-u", u.name);
    let until = Instant::now() + Duration::from_secs(60);
    while redfish(rf, "GET", "/redfish/v1/Systems/1", None).0 != 200 {
        assert!(
            Instant::now() < until,
            "lab-bmcd did not answer on {rf}/tcp"
        );
        std::thread::sleep(Duration::from_secs(1));
    }
    let mac = "02:5e:00:00:03:01";
    let ip = u.ip(100).to_string();
    let sys = "/redfish/v1/Systems/1";
    let reset = "/redfish/v1/Systems/1/Actions/ComputerSystem.Reset";
    let efi_fetches = |web: &str| {
        web.lines()
            .filter(|l| {
                l.starts_with(&format!("{ip} "))
                    && l.contains("GET 200 ")
                    && l.ends_with(" /lab/ipxe/ipxe.efi")
            })
            .count()
    };
    let nvram = || {
        live.exec(
            &container,
            &["lab-bmcd", "nvram", "/var/lib/lab/uefi-vars.fd"],
        )
        .1
    };
    // The NIC's network boot options in the NVRAM's order: "pxe", "http".
    let net_order = |listing: &str| -> Vec<String> {
        listing
            .lines()
            .filter_map(|l| l.split_whitespace().nth(1))
            .filter(|k| *k != "other")
            .map(str::to_string)
            .collect()
    };

    // 1. The node's own boot: PXE (a new NVRAM: OVMF makes the NIC's PXE option first).
    let secs = live.wait_up("u", mac, &ip, 1, Instant::now());
    eprintln!("UEFI node up {secs:.1}s after lab up (PXE)");
    assert_eq!(wait_boot_source(&t, 1), "pxe");
    assert_eq!(net_order(&nvram())[0], "pxe", "{}", nvram());

    // 2. UefiHttp once, as Ironic's redfish-uefihttp sets it, while the VM runs, then
    // ForceRestart: the running VM has OVMF's PXE on, so the BMC's reset is a power cycle
    // (lab-vm starts QEMU again with PXE off) and the node HTTP-boots.
    let (status, v) = redfish(
        rf,
        "PATCH",
        sys,
        Some(
            r#"{"Boot":{"BootSourceOverrideTarget":"UefiHttp","BootSourceOverrideEnabled":"Once","BootSourceOverrideMode":"UEFI"}}"#,
        ),
    );
    assert_eq!(status, 200, "{v}");
    assert_eq!(
        (
            v["Boot"]["BootSourceOverrideTarget"].as_str(),
            v["Boot"]["BootSourceOverrideEnabled"].as_str()
        ),
        (Some("UefiHttp"), Some("Once")),
        "{v}"
    );
    // Redfish's ForceRestart, then the node's boot number `boots` up, from `source`.
    let force_restart = |boots: usize, source: &str| {
        assert_eq!(
            redfish(rf, "POST", reset, Some(r#"{"ResetType":"ForceRestart"}"#)).0,
            204
        );
        let secs = live.wait_up("u", mac, &ip, boots, Instant::now());
        assert_eq!(wait_boot_source(&t, boots as u64), source);
        secs
    };
    let secs = force_restart(2, "http");
    eprintln!("Redfish UefiHttp once + ForceRestart: HTTP boot to up {secs:.1}s");
    let dhcp = live.logs("dhcp");
    assert!(
        dhcp.contains("vendor class: HTTPClient:Arch:00016"),
        "{dhcp}"
    );
    assert_eq!(efi_fetches(&live.logs("web")), 1, "{}", live.logs("web"));
    let log = container_log(&container);
    assert!(
        log.contains("lab: bmc: power on: power reset as a power cycle"),
        "{log}"
    );
    let ons = power_ons(&container);
    assert!(
        ons.len() == 2 && ons[1].contains("boot=http (BMC override (once))"),
        "{ons:?}"
    );
    // The boot used the override up: Redfish reads it back as none.
    let (_, v) = redfish(rf, "GET", sys, None);
    assert_eq!(v["Boot"]["BootSourceOverrideTarget"], "None", "{v}");
    // (OVMF's HTTP boot makes an IPv6 option too.)
    let order = net_order(&nvram());
    assert!(
        !order.is_empty() && order.iter().all(|k| k == "http"),
        "the HTTP boot left only HTTP boot options: {order:?}"
    );

    // 3. The next reset (the BMC's, over IPMI) is the node's own boot again: PXE. The running VM
    // has PXE off, so it is a power cycle too; lab-vm sets the NVRAM (the HTTP boot left no PXE
    // option) so that OVMF's PXE comes first again.
    ipmitool(u.port_base, &["power", "reset"]);
    let secs = live.wait_up("u", mac, &ip, 3, Instant::now());
    eprintln!("BMC power reset after the HTTP boot: PXE boot to up {secs:.1}s");
    assert_eq!(wait_boot_source(&t, 3), "pxe");
    assert_eq!(efi_fetches(&live.logs("web")), 1, "no second HTTP boot");
    let log = container_log(&container);
    assert!(log.contains("lab: uefi: NVRAM: deleted Boot"), "{log}");
    let ons = power_ons(&container);
    assert!(
        ons.len() == 3 && ons[2].contains("boot=pxe (the node's boot setting)"),
        "{ons:?}"
    );
    assert_eq!(net_order(&nvram())[0], "pxe", "{}", nvram());

    // 4. A warm reset now stays a reset (no firmware change), and boots PXE again.
    let secs = force_restart(4, "pxe");
    eprintln!("ForceRestart: PXE boot to up {secs:.1}s");
    assert_eq!(power_ons(&container).len(), 3, "a reset, not a power on");
    assert_eq!(efi_fetches(&live.logs("web")), 1, "no second HTTP boot");

    let out = t.lab(&["down", "--volumes"]);
    assert!(out.status.success(), "lab down failed: {}", stderr(&out));
    assert_eq!(leftovers(&live.engine, &u.name), (0, 0, 0));
}
