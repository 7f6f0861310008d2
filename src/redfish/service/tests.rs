//! The Redfish service against a fake BMC that answers the IPMI commands lab-bmcd sends as
//! ipmi_sim and lab-bmc.so do (chassis, boot flags, FRU, GUID, SEL, SDR, sensor readings).

use std::sync::Mutex;

use super::*;

#[derive(Default)]
struct State {
    power: bool,
    boot: [u8; 2],
    controls: Vec<u8>,
    sel: Vec<[u8; 16]>,
    sel_time: u32,
}

struct FakeBmc {
    state: Mutex<State>,
    fru: Vec<u8>,
    sdrs: Vec<Vec<u8>>,
}

/// The UUID 6c61622d-6e6f-6465-0000-021ab0000001 as IPMI sends it: RFC 4122's bytes reversed.
const GUID: [u8; 16] = [
    1, 0, 0, 0xb0, 0x1a, 0x02, 0, 0, 0x65, 0x64, 0x6f, 0x6e, 0x2d, 0x62, 0x61, 0x6c,
];

/// A full sensor record as node.emu.j2 writes it: number, entity, type, unit, M, Rexp, name.
fn sdr(num: u8, stype: u8, unit: u8, m: u8, rexp: u8, name: &str) -> Vec<u8> {
    let mut r = vec![0u8; 48];
    r[1] = 0x51;
    r[3] = 0x01;
    r[4] = (43 + name.len()) as u8;
    r[7] = num;
    r[12] = stype;
    r[21] = unit;
    r[24] = m;
    r[29] = rexp;
    r[47] = 0xc0 | name.len() as u8;
    r.extend_from_slice(name.as_bytes());
    r
}

impl FakeBmc {
    fn new() -> FakeBmc {
        let fru = crate::render::fru::Fru {
            chassis_part: "LAB-1U-CH".into(),
            chassis_serial: "LAB021AB0000001".into(),
            board_manufacturer: "metal-lab".into(),
            board_product: "Lab Node Board".into(),
            board_serial: "LAB021AB0000001".into(),
            board_part: "LAB-MB-01".into(),
            product_manufacturer: "metal-lab".into(),
            product_name: "Lab Node 1U".into(),
            product_part: "LAB-1U".into(),
            product_version: "1.0".into(),
            product_serial: "LAB021AB0000001".into(),
            asset_tag: "n1".into(),
        }
        .bytes()
        .unwrap();
        FakeBmc {
            state: Mutex::new(State {
                power: true,
                ..State::default()
            }),
            fru,
            sdrs: vec![
                sdr(1, 0x01, 0x01, 1, 0x00, "CPU Temp"),
                sdr(4, 0x02, 0x04, 6, 0xe0, "12V"),
            ],
        }
    }

    fn log(s: &mut State, stype: u8, offset: u8) {
        let id = s.sel.len() as u16 + 1;
        let mut r = [0u8; 16];
        r[..2].copy_from_slice(&id.to_le_bytes());
        r[2] = 0x02;
        r[3..7].copy_from_slice(&s.sel_time.to_le_bytes());
        r[7] = 0x20;
        r[9] = 0x04;
        r[10] = stype;
        r[11] = 0x11;
        r[12] = 0x6f;
        r[13] = offset;
        s.sel.push(r);
    }
}

impl Ipmi for FakeBmc {
    async fn call(&self, netfn: u8, cmd: u8, d: &[u8]) -> Result<Vec<u8>, CallError> {
        let mut s = self.state.lock().unwrap();
        Ok(match (netfn, cmd) {
            (0x00, 0x01) => vec![u8::from(s.power), 0, 0, 0],
            (0x00, 0x02) => {
                let c = d[0];
                match c {
                    4 if !s.power => return Err(CallError::Completion(0xd5)),
                    0 | 5 => s.power = false,
                    1 => s.power = true,
                    _ => {}
                }
                s.controls.push(c);
                FakeBmc::log(&mut s, 0x1d, 0);
                vec![]
            }
            (0x00, 0x08) => {
                s.boot = [d[1], d[2]];
                vec![]
            }
            (0x00, 0x09) => vec![1, 5, s.boot[0], s.boot[1], 0, 0, 0],
            (0x06, 0x01) => vec![0x20, 0x81, 9, 8, 0x02, 0x9f],
            (0x06, 0x37) => GUID.to_vec(),
            (0x0a, 0x10) => {
                let n = self.fru.len() as u16;
                vec![n as u8, (n >> 8) as u8, 0]
            }
            (0x0a, 0x11) => {
                let off = usize::from(u16::from_le_bytes([d[1], d[2]]));
                let end = (off + usize::from(d[3])).min(self.fru.len());
                let mut out = vec![(end - off) as u8];
                out.extend_from_slice(&self.fru[off..end]);
                out
            }
            (0x0a, 0x40) => {
                let n = s.sel.len() as u16;
                vec![0x51, n as u8, (n >> 8) as u8, 0, 0x40]
            }
            (0x0a, 0x42) => vec![7, 0],
            (0x0a, 0x43) => {
                let want = u16::from_le_bytes([d[2], d[3]]);
                let i = if want == 0 { 0 } else { usize::from(want) - 1 };
                let Some(r) = s.sel.get(i) else {
                    return Err(CallError::Completion(0xcb));
                };
                let next = if i + 1 < s.sel.len() {
                    i as u16 + 2
                } else {
                    0xffff
                };
                let mut out = next.to_le_bytes().to_vec();
                out.extend_from_slice(r);
                out
            }
            (0x0a, 0x47) => {
                assert_eq!(
                    &d[..6],
                    &[7, 0, b'C', b'L', b'R', 0xaa],
                    "reservation and CLR"
                );
                s.sel.clear();
                vec![1]
            }
            (0x0a, 0x48) => s.sel_time.to_le_bytes().to_vec(),
            (0x0a, 0x49) => {
                s.sel_time = u32::from_le_bytes([d[0], d[1], d[2], d[3]]);
                vec![]
            }
            (0x0a, 0x23) => {
                let id = usize::from(u16::from_le_bytes([d[2], d[3]]));
                let rec = &self.sdrs[id];
                let next = if id + 1 < self.sdrs.len() {
                    id as u16 + 1
                } else {
                    0xffff
                };
                let (off, n) = (usize::from(d[4]), usize::from(d[5]));
                let mut out = next.to_le_bytes().to_vec();
                out.extend_from_slice(&rec[off..(off + n).min(rec.len())]);
                out
            }
            (0x04, 0x2d) => match d[0] {
                1 => vec![41, 0xc0, 0],
                4 => vec![0xc8, 0xc0, 0],
                _ => return Err(CallError::Completion(0xcb)),
            },
            _ => return Err(CallError::Completion(0xc1)),
        })
    }
}

fn node() -> Node {
    Node::from_env(
        "LAB=l\nNODE_NAME=n1\nMAC=02:1a:b0:00:00:01\nNIC_MACS=02:1a:b0:00:00:01 02:1a:b0:00:00:02\nDISK_SERIALS=LDSER1 LDSER2\nCPUS=2\nMEMORY_MB=1536\nDISK_BYTES=1073741824\nBMC_USER=admin\nBMC_PASSWORD=secret\nOTHER=x\n",
        "node.env",
    )
    .unwrap()
}

/// A service whose files are all under `dir`: the drive's images in `dir/media`, attached by a
/// stand-in for the node's lab-media (same arguments, same status lines, record in the dir).
fn service(dir: &std::path::Path) -> Service<FakeBmc> {
    let mut s = Service::new(Bmc::new(FakeBmc::new()), node(), dir.to_path_buf());
    let tool = dir.join("lab-media");
    if !tool.exists() {
        let record = dir.join("inserted");
        std::fs::write(
            &tool,
            format!(
                r#"#!/bin/sh
case $1 in
insert) [ -r "$2" ] || {{ echo "media: $2 is not a readable file" >&2; exit 1; }}; echo "$2" > {r} ;;
eject) rm -f {r} ;;
status) if [ -s {r} ]; then echo "inserted $(cat {r})"; else echo empty; fi ;;
esac
"#,
                r = record.display()
            ),
        )
        .unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&tool, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    s.drive = crate::redfish::media::Drive {
        dir: dir.join("media"),
        tool,
    };
    s.bootdev = dir.join("bootdev");
    s
}

/// Serves `body` over HTTP on 127.0.0.1 to each request (its path ignored) with `status`;
/// returns the base URL.
fn http_server(status: u16, body: &'static [u8]) -> String {
    use std::io::{BufRead, Write};
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", l.local_addr().unwrap());
    std::thread::spawn(move || {
        for c in l.incoming().flatten() {
            let mut r = std::io::BufReader::new(c);
            let mut line = String::new();
            while r.read_line(&mut line).is_ok_and(|n| n > 2) {
                line.clear();
            }
            let mut c = r.into_inner();
            let _ = write!(
                c,
                "HTTP/1.1 {status} X\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                body.len()
            );
            let _ = c.write_all(body);
        }
    });
    url
}

const BASIC: &str = "Basic YWRtaW46c2VjcmV0"; // admin:secret

fn req(method: &str, path: &str, headers: &[(&str, &str)], body: &str) -> Request {
    let mut h = http::HeaderMap::new();
    for (k, v) in headers {
        h.insert(
            http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
            v.parse().unwrap(),
        );
    }
    Request {
        method: method.parse().unwrap(),
        path: path.into(),
        headers: h,
        body: body.as_bytes().to_vec(),
    }
}

async fn call(s: &Service<FakeBmc>, method: &str, path: &str, body: &str) -> (u16, Value, Reply) {
    let r = s
        .handle(req(method, path, &[("authorization", BASIC)], body))
        .await;
    let v = serde_json::from_slice(&r.body).unwrap_or(Value::Null);
    (r.status, v, r)
}

/// The MessageIds of an error reply's extended info, without the registry version.
fn ids(v: &Value) -> Vec<String> {
    v["error"]["@Message.ExtendedInfo"]
        .as_array()
        .unwrap_or_else(|| panic!("no extended info: {v}"))
        .iter()
        .map(|m| {
            let id = m["MessageId"].as_str().unwrap();
            assert!(id.starts_with("Base.1.19."), "{id}");
            id.rsplit('.').next().unwrap().to_string()
        })
        .collect()
}

#[test]
fn node_env_needs_what_the_service_shows() {
    assert_eq!(node().memory_mb, 1536);
    assert_eq!(
        Node::from_env("NODE_NAME=n1\n", "/etc/lab/node/node.env"),
        Err("/etc/lab/node/node.env: MAC is not set".into())
    );
    let bad =
        "NODE_NAME=n\nMAC=m\nCPUS=two\nMEMORY_MB=1\nDISK_BYTES=1\nBMC_USER=u\nBMC_PASSWORD=p\n";
    assert_eq!(
        Node::from_env(bad, "f"),
        Err("f: CPUS is not a number".into())
    );
}

#[tokio::test]
async fn only_the_root_metadata_and_odata_answer_without_credentials() {
    let dir = tempfile::tempdir().unwrap();
    let s = service(dir.path());
    for path in [
        "/redfish",
        "/redfish/v1",
        "/redfish/v1/",
        "/redfish/v1/$metadata",
        "/redfish/v1/odata",
    ] {
        let r = s.handle(req("GET", path, &[], "")).await;
        assert_eq!(r.status, 200, "{path}");
        assert_eq!(r.header("odata-version"), Some("4.0"));
    }
    for path in [
        "/redfish/v1/Systems/1",
        "/redfish/v1/Systems",
        "/redfish/v1/SessionService/Sessions",
    ] {
        let r = s.handle(req("GET", path, &[], "")).await;
        assert_eq!(r.status, 401, "{path}");
        assert_eq!(
            r.header("www-authenticate"),
            Some("Basic realm=\"lab-bmcd\"")
        );
        let v: Value = serde_json::from_slice(&r.body).unwrap();
        assert_eq!(ids(&v), ["NoValidSession"]);
    }
    let wrong = s
        .handle(req(
            "GET",
            "/redfish/v1/Systems/1",
            &[("authorization", "Basic YWRtaW46YWRtaW4=")],
            "",
        ))
        .await;
    assert_eq!(wrong.status, 401, "admin:admin is not this BMC's password");
    let garbage = s
        .handle(req(
            "GET",
            "/redfish/v1/Systems/1",
            &[("authorization", "Basic !!!")],
            "",
        ))
        .await;
    assert_eq!(garbage.status, 401);
    let (status, v, _) = call(&s, "GET", "/redfish/v1/Systems/1", "").await;
    assert_eq!(status, 200, "{v}");
}

#[tokio::test]
async fn sessions_log_in_time_out_and_log_out() {
    let dir = tempfile::tempdir().unwrap();
    let s = service(dir.path());
    let login = |body: &'static str| {
        s.handle(req(
            "POST",
            "/redfish/v1/SessionService/Sessions",
            &[],
            body,
        ))
    };
    let bad = login(r#"{"UserName":"admin","Password":"nope"}"#).await;
    assert_eq!(bad.status, 401);
    let missing = login(r#"{"UserName":"admin"}"#).await;
    assert_eq!(missing.status, 400);
    assert_eq!(
        ids(&serde_json::from_slice(&missing.body).unwrap()),
        ["PropertyMissing"]
    );

    let r = login(r#"{"UserName":"admin","Password":"secret"}"#).await;
    assert_eq!(r.status, 201);
    let token = r.header("x-auth-token").unwrap().to_string();
    let location = r.header("location").unwrap().to_string();
    assert_eq!(location, "/redfish/v1/SessionService/Sessions/1");
    let v: Value = serde_json::from_slice(&r.body).unwrap();
    assert_eq!(
        (v["UserName"].as_str(), v["Id"].as_str()),
        (Some("admin"), Some("1"))
    );
    assert_eq!(token.len(), 32);

    let with_token =
        |m: &'static str, p: String| s.handle(req(m, &p, &[("x-auth-token", &token)], ""));
    assert_eq!(
        with_token("GET", "/redfish/v1/Systems/1".into())
            .await
            .status,
        200
    );
    let list = with_token("GET", "/redfish/v1/SessionService/Sessions".into()).await;
    let v: Value = serde_json::from_slice(&list.body).unwrap();
    assert_eq!(v["Members"][0]["@odata.id"], location.as_str());

    // Idle longer than SessionTimeout: the token no longer works.
    let (status, v, _) = call(
        &s,
        "PATCH",
        "/redfish/v1/SessionService",
        r#"{"SessionTimeout":30}"#,
    )
    .await;
    assert_eq!((status, v["SessionTimeout"].as_u64()), (200, Some(30)));
    s.sessions.lock().unwrap().by_id.get_mut("1").unwrap().last -= Duration::from_secs(31);
    assert_eq!(
        with_token("GET", "/redfish/v1/Systems/1".into())
            .await
            .status,
        401
    );

    // A new session, logged out with DELETE.
    let r = login(r#"{"UserName":"admin","Password":"secret"}"#).await;
    let token = r.header("x-auth-token").unwrap().to_string();
    let location = r.header("location").unwrap().to_string();
    let del = s
        .handle(req("DELETE", &location, &[("x-auth-token", &token)], ""))
        .await;
    assert_eq!(del.status, 204);
    let after = s
        .handle(req(
            "GET",
            "/redfish/v1/Systems/1",
            &[("x-auth-token", &token)],
            "",
        ))
        .await;
    assert_eq!(after.status, 401);
    let (status, _, _) = call(
        &s,
        "PATCH",
        "/redfish/v1/SessionService",
        r#"{"SessionTimeout":5}"#,
    )
    .await;
    assert_eq!(status, 400, "below the minimum");
}

#[tokio::test]
async fn the_system_shows_the_bmc_identity_and_the_node() {
    let dir = tempfile::tempdir().unwrap();
    let s = service(dir.path());
    let (status, v, r) = call(&s, "GET", "/redfish/v1/Systems/1", "").await;
    assert_eq!(status, 200);
    assert!(r.header("etag").is_some_and(|e| e.starts_with("W/\"")));
    assert_eq!(v["@odata.type"], "#ComputerSystem.v1_27_0.ComputerSystem");
    assert_eq!(
        v["@odata.context"],
        "/redfish/v1/$metadata#ComputerSystem.ComputerSystem"
    );
    assert_eq!(v["Manufacturer"], "metal-lab");
    assert_eq!(v["Model"], "Lab Node 1U");
    assert_eq!(v["SerialNumber"], "LAB021AB0000001");
    assert_eq!(v["UUID"], "6c61622d-6e6f-6465-0000-021ab0000001");
    assert_eq!(v["PowerState"], "On");
    assert_eq!(v["ProcessorSummary"]["LogicalProcessorCount"], 2);
    assert_eq!(v["MemorySummary"]["TotalSystemMemoryGiB"], 1.5);
    assert_eq!(v["Boot"]["BootSourceOverrideEnabled"], "Disabled");
    let (_, nic, _) = call(&s, "GET", "/redfish/v1/Systems/1/EthernetInterfaces/1", "").await;
    assert_eq!(nic["MACAddress"], "02:1a:b0:00:00:01");
    // Every NIC, the boot NIC first, as a real BMC lists the server's ports.
    let (_, nic2, _) = call(&s, "GET", "/redfish/v1/Systems/1/EthernetInterfaces/2", "").await;
    assert_eq!(nic2["MACAddress"], "02:1a:b0:00:00:02");
    let (status, _, _) = call(&s, "GET", "/redfish/v1/Systems/1/EthernetInterfaces/3", "").await;
    assert_eq!(status, 404);
    let (_, nics, _) = call(&s, "GET", "/redfish/v1/Systems/1/EthernetInterfaces", "").await;
    assert_eq!(nics["Members@odata.count"], 2);
    let (_, drive, _) = call(&s, "GET", "/redfish/v1/Chassis/1/Drives/1", "").await;
    assert_eq!(drive["CapacityBytes"], 1_073_741_824u64);
    assert_eq!(drive["SerialNumber"], "LDSER1");
    // One socket of `cpus` cores, as QEMU's -smp gives the VM; linked from the system.
    assert_eq!(
        v["Processors"]["@odata.id"],
        "/redfish/v1/Systems/1/Processors"
    );
    let (_, cpus, _) = call(&s, "GET", "/redfish/v1/Systems/1/Processors", "").await;
    assert_eq!(
        cpus["Members"],
        json!([{"@odata.id": "/redfish/v1/Systems/1/Processors/1"}])
    );
    let (_, cpu, _) = call(&s, "GET", "/redfish/v1/Systems/1/Processors/1", "").await;
    assert_eq!(
        (
            &cpu["TotalCores"],
            &cpu["TotalThreads"],
            &cpu["InstructionSet"]
        ),
        (&json!(2), &json!(2), &json!("x86-64"))
    );
    let (_, simple, _) = call(&s, "GET", "/redfish/v1/Systems/1/SimpleStorage/1", "").await;
    assert_eq!(simple["Devices"][0]["CapacityBytes"], 1_073_741_824u64);
    let (_, chassis, _) = call(&s, "GET", "/redfish/v1/Chassis/1", "").await;
    assert_eq!(
        (
            chassis["SerialNumber"].as_str(),
            chassis["PartNumber"].as_str()
        ),
        (Some("LAB021AB0000001"), Some("LAB-1U-CH"))
    );
    let (_, sensors, _) = call(&s, "GET", "/redfish/v1/Chassis/1/Sensors", "").await;
    assert_eq!(sensors["Members@odata.count"], 2);
    let (_, volts, _) = call(&s, "GET", "/redfish/v1/Chassis/1/Sensors/12V", "").await;
    assert_eq!(
        (volts["Reading"].as_f64(), volts["ReadingUnits"].as_str()),
        (Some(12.0), Some("V"))
    );
    let (_, temp, _) = call(&s, "GET", "/redfish/v1/Chassis/1/Sensors/CPU_Temp", "").await;
    assert_eq!(
        (temp["Reading"].as_f64(), temp["ReadingType"].as_str()),
        (Some(41.0), Some("Temperature"))
    );
    let (_, mgr, _) = call(&s, "GET", "/redfish/v1/Managers/1", "").await;
    assert_eq!(mgr["FirmwareVersion"], "9.08");
    let (_, acct, _) = call(&s, "GET", "/redfish/v1/AccountService/Accounts/1", "").await;
    assert_eq!(
        (acct["UserName"].as_str(), acct["Password"].clone()),
        (Some("admin"), Value::Null)
    );
}

#[tokio::test]
async fn boot_override_is_the_ipmi_boot_flags() {
    let dir = tempfile::tempdir().unwrap();
    let s = service(dir.path());
    let patch = r#"{"Boot":{"BootSourceOverrideTarget":"Pxe","BootSourceOverrideEnabled":"Continuous","BootSourceOverrideMode":"UEFI"}}"#;
    let (status, v, _) = call(&s, "PATCH", "/redfish/v1/Systems/1", patch).await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(
        s.bmc.ipmi.state.lock().unwrap().boot,
        [0xe0, 0x04],
        "valid, persistent, UEFI; PXE"
    );
    assert_eq!(v["Boot"]["BootSourceOverrideTarget"], "Pxe");

    // What `ipmitool chassis bootdev cdrom` sets reads back over Redfish.
    s.bmc.ipmi.state.lock().unwrap().boot = [0x80, 0x14];
    let (_, v, _) = call(&s, "GET", "/redfish/v1/Systems/1", "").await;
    assert_eq!(
        (
            &v["Boot"]["BootSourceOverrideTarget"],
            &v["Boot"]["BootSourceOverrideEnabled"],
            &v["Boot"]["BootSourceOverrideMode"]
        ),
        (&json!("Cd"), &json!("Once"), &json!("Legacy"))
    );

    // A target alone turns a disabled override on, once.
    s.bmc.ipmi.state.lock().unwrap().boot = [0, 0];
    let (_, v, _) = call(
        &s,
        "PATCH",
        "/redfish/v1/Systems/1",
        r#"{"Boot":{"BootSourceOverrideTarget":"Hdd"}}"#,
    )
    .await;
    assert_eq!(v["Boot"]["BootSourceOverrideEnabled"], "Once");
    assert_eq!(s.bmc.ipmi.state.lock().unwrap().boot, [0x80, 0x08]);

    // UefiHttp: PXE with the UEFI bit over IPMI, and `http` in the bootdev file (which lab-vm
    // reads); an IPMI change of the flags makes it stale.
    let (_, v, _) = call(
        &s,
        "PATCH",
        "/redfish/v1/Systems/1",
        r#"{"Boot":{"BootSourceOverrideTarget":"UefiHttp"}}"#,
    )
    .await;
    assert_eq!(
        (
            v["Boot"]["BootSourceOverrideTarget"].as_str(),
            v["Boot"]["BootSourceOverrideMode"].as_str()
        ),
        (Some("UefiHttp"), Some("UEFI"))
    );
    assert_eq!(s.bmc.ipmi.state.lock().unwrap().boot, [0xa0, 0x04]);
    assert_eq!(
        std::fs::read_to_string(dir.path().join("bootdev")).unwrap(),
        "http once efi\n"
    );
    let (_, v, _) = call(
        &s,
        "PATCH",
        "/redfish/v1/Systems/1",
        r#"{"Boot":{"BootSourceOverrideEnabled":"Continuous"}}"#,
    )
    .await;
    assert_eq!(v["Boot"]["BootSourceOverrideTarget"], "UefiHttp");
    assert_eq!(
        std::fs::read_to_string(dir.path().join("bootdev")).unwrap(),
        "http persistent efi\n"
    );
    s.bmc.ipmi.state.lock().unwrap().boot = [0xa0, 0x04];
    let (_, v, _) = call(&s, "GET", "/redfish/v1/Systems/1", "").await;
    assert_eq!(v["Boot"]["BootSourceOverrideTarget"], "Pxe");

    let (_, v, _) = call(
        &s,
        "PATCH",
        "/redfish/v1/Systems/1",
        r#"{"Boot":{"BootSourceOverrideEnabled":"Disabled"}}"#,
    )
    .await;
    assert_eq!(v["Boot"]["BootSourceOverrideTarget"], "None");
    assert_eq!(s.bmc.ipmi.state.lock().unwrap().boot[0] & 0x80, 0);
}

#[tokio::test]
async fn bad_input_gets_the_right_status_and_message() {
    let dir = tempfile::tempdir().unwrap();
    let s = service(dir.path());
    let sys = "/redfish/v1/Systems/1";
    let cases: &[(&str, &str, &str, u16, &[&str])] = &[
        ("PATCH", sys, "{\"Boot\": {", 400, &["MalformedJSON"]),
        ("PATCH", sys, "[1, 2]", 400, &["MalformedJSON"]),
        (
            "PATCH",
            sys,
            r#"{"Boot":{"BootSourceOverrideTarget":7}}"#,
            400,
            &["PropertyValueTypeError"],
        ),
        (
            "PATCH",
            sys,
            r#"{"Boot":"Pxe"}"#,
            400,
            &["PropertyValueTypeError"],
        ),
        (
            "PATCH",
            sys,
            r#"{"Boot":{"BootSourceOverrideTarget":"Floppy"}}"#,
            400,
            &["PropertyValueNotInList"],
        ),
        (
            "PATCH",
            sys,
            r#"{"Colour":"blue"}"#,
            400,
            &["PropertyUnknown"],
        ),
        (
            "PATCH",
            sys,
            r#"{"PowerState":"Off","SerialNumber":"x"}"#,
            400,
            &["PropertyNotWritable", "PropertyNotWritable"],
        ),
        (
            "PATCH",
            sys,
            r#"{"Boot":{"BootSourceOverrideTarget@Redfish.AllowableValues":[]}}"#,
            400,
            &["PropertyNotWritable"],
        ),
        (
            "POST",
            "/redfish/v1/Systems/1/Actions/ComputerSystem.Reset",
            r#"{"ResetType":"Explode"}"#,
            400,
            &["ActionParameterValueNotInList"],
        ),
        (
            "POST",
            "/redfish/v1/Systems/1/Actions/ComputerSystem.Reset",
            r#"{"ResetType":1}"#,
            400,
            &["ActionParameterValueTypeError"],
        ),
        (
            "POST",
            "/redfish/v1/Systems/1/Actions/ComputerSystem.Reset",
            r#"{}"#,
            400,
            &["ActionParameterMissing"],
        ),
        (
            "POST",
            "/redfish/v1/Systems/1/Actions/ComputerSystem.Reset",
            r#"{"ResetType":"On","Force":true}"#,
            400,
            &["ActionParameterUnknown"],
        ),
        (
            "POST",
            "/redfish/v1/Managers/1/VirtualMedia/CD/Actions/VirtualMedia.InsertMedia",
            r#"{"Image":"ftp://x/y.iso"}"#,
            400,
            &["ActionParameterValueFormatError"],
        ),
        (
            "POST",
            "/redfish/v1/Managers/1/VirtualMedia/CD/Actions/VirtualMedia.InsertMedia",
            r#"{"Image":"http://[::1:80/x.iso"}"#,
            400,
            &["ActionParameterValueFormatError"],
        ),
        (
            "POST",
            "/redfish/v1/Managers/1/VirtualMedia/CD/Actions/VirtualMedia.InsertMedia",
            r#"{"Image":"http://web:port/x.iso"}"#,
            400,
            &["ActionParameterValueFormatError"],
        ),
        (
            "POST",
            "/redfish/v1/Managers/1/VirtualMedia/CD/Actions/VirtualMedia.InsertMedia",
            r#"{"Image":"http:///x.iso"}"#,
            400,
            &["ActionParameterValueFormatError"],
        ),
        (
            "POST",
            "/redfish/v1/Managers/1/VirtualMedia/CD/Actions/VirtualMedia.InsertMedia",
            r#"{"Image":"https://web/a b.iso"}"#,
            400,
            &["ActionParameterValueFormatError"],
        ),
        (
            "POST",
            "/redfish/v1/Managers/1/VirtualMedia/CD/Actions/VirtualMedia.InsertMedia",
            r#"{"Image":"web/x.iso"}"#,
            400,
            &["ActionParameterValueFormatError"],
        ),
        ("DELETE", sys, "", 405, &["OperationNotAllowed"]),
        (
            "GET",
            "/redfish/v1/Systems/2",
            "",
            404,
            &["ResourceMissingAtURI"],
        ),
        (
            "GET",
            "/redfish/v1/Systems/1/Actions/ComputerSystem.Reset",
            "",
            405,
            &["OperationNotAllowed"],
        ),
    ];
    for (method, path, body, status, want) in cases {
        let (got, v, r) = call(&s, method, path, body).await;
        assert_eq!(got, *status, "{method} {path} {body}: {v}");
        assert_eq!(ids(&v), *want, "{method} {path} {body}");
        if got == 405 {
            assert!(r.header("allow").is_some());
        }
    }
    // A malformed Image is named, with what the parameter takes.
    let (_, v, _) = call(
        &s,
        "POST",
        "/redfish/v1/Managers/1/VirtualMedia/CD/Actions/VirtualMedia.InsertMedia",
        r#"{"Image":"http://web:port/x.iso"}"#,
    )
    .await;
    let info = &v["error"]["@Message.ExtendedInfo"][0];
    assert_eq!(info["MessageArgs"][0], "http://web:port/x.iso", "{v}");
    assert!(
        info["Message"]
            .as_str()
            .is_some_and(|m| m.contains("an http:// or https:// URL of an ISO image")),
        "{v}"
    );
    // Nothing of that changed the BMC.
    let st = s.bmc.ipmi.state.lock().unwrap();
    assert_eq!((st.boot, st.controls.len()), ([0, 0], 0));
}

#[tokio::test]
async fn a_stale_etag_is_refused_and_the_current_one_taken() {
    let dir = tempfile::tempdir().unwrap();
    let s = service(dir.path());
    let (_, _, r) = call(&s, "GET", "/redfish/v1/Systems/1", "").await;
    let etag = r.header("etag").unwrap().to_string();
    let body = r#"{"Boot":{"BootSourceOverrideTarget":"Pxe"}}"#;
    let patch = |tag: String| {
        s.handle(req(
            "PATCH",
            "/redfish/v1/Systems/1",
            &[("authorization", BASIC), ("if-match", &tag)],
            body,
        ))
    };
    let ok = patch(etag.clone()).await;
    assert_eq!(ok.status, 200);
    assert_ne!(
        ok.header("etag"),
        Some(etag.as_str()),
        "the resource changed"
    );
    let stale = patch(etag).await;
    assert_eq!(stale.status, 412);
    assert_eq!(
        ids(&serde_json::from_slice(&stale.body).unwrap()),
        ["PreconditionFailed"]
    );
}

#[tokio::test]
async fn reset_types_are_chassis_controls() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = service(dir.path());
    s.graceful_wait = Duration::from_secs(2);
    let reset = |t: &str| format!(r#"{{"ResetType":"{t}"}}"#);
    let path = "/redfish/v1/Systems/1/Actions/ComputerSystem.Reset";
    for (t, control) in [
        ("ForceRestart", 3),
        ("PowerCycle", 2),
        ("Nmi", 4),
        ("ForceOff", 0),
        ("On", 1),
        ("GracefulShutdown", 5),
    ] {
        let (status, v, _) = call(&s, "POST", path, &reset(t)).await;
        assert_eq!(status, 204, "{t}: {v}");
        assert_eq!(
            s.bmc.ipmi.state.lock().unwrap().controls.last(),
            Some(&control),
            "{t}"
        );
    }
    // Off now: an NMI has nothing to interrupt.
    let (status, v, _) = call(&s, "POST", path, &reset("Nmi")).await;
    assert_eq!(
        (status, ids(&v)),
        (409, vec!["ActionNotSupported".to_string()])
    );
    // GracefulRestart: soft off, then on once the guest is off (the fake is off at once).
    call(&s, "POST", path, &reset("On")).await;
    let (status, _, _) = call(&s, "POST", path, &reset("GracefulRestart")).await;
    assert_eq!(status, 204);
    tokio::time::sleep(Duration::from_millis(600)).await;
    {
        let st = s.bmc.ipmi.state.lock().unwrap();
        assert_eq!(&st.controls[st.controls.len() - 2..], &[5, 1]);
        assert!(st.power);
    }
    let (_, info, _) = call(&s, "GET", "/redfish/v1/Systems/1/ResetActionInfo", "").await;
    assert_eq!(info["Parameters"][0]["AllowableValues"], json!(RESET_TYPES));
}

#[tokio::test]
async fn the_sel_is_the_bmc_sel_and_clears() {
    let dir = tempfile::tempdir().unwrap();
    let s = service(dir.path());
    s.bmc.sync_sel_time().await.unwrap();
    assert!(
        s.bmc.ipmi.state.lock().unwrap().sel_time > 1_700_000_000,
        "the SEL clock was set"
    );
    call(
        &s,
        "POST",
        "/redfish/v1/Systems/1/Actions/ComputerSystem.Reset",
        r#"{"ResetType":"ForceRestart"}"#,
    )
    .await;
    call(
        &s,
        "POST",
        "/redfish/v1/Systems/1/Actions/ComputerSystem.Reset",
        r#"{"ResetType":"ForceOff"}"#,
    )
    .await;
    let (_, v, _) = call(
        &s,
        "GET",
        "/redfish/v1/Systems/1/LogServices/SEL/Entries",
        "",
    )
    .await;
    assert_eq!(v["Members@odata.count"], 2);
    assert_eq!(v["Members"][0]["SensorType"], "SystemBoot/Restart");
    assert_eq!(
        v["Members"][0]["Message"],
        "System boot initiated by power up"
    );
    assert!(v["Members"][0]["Created"]
        .as_str()
        .is_some_and(|c| c.starts_with("20")));
    let (status, e, _) = call(
        &s,
        "GET",
        "/redfish/v1/Systems/1/LogServices/SEL/Entries/2",
        "",
    )
    .await;
    assert_eq!((status, e["Id"].as_str()), (200, Some("2")));
    let (status, _, _) = call(
        &s,
        "POST",
        "/redfish/v1/Systems/1/LogServices/SEL/Actions/LogService.ClearLog",
        "{}",
    )
    .await;
    assert_eq!(status, 204);
    let (_, v, _) = call(
        &s,
        "GET",
        "/redfish/v1/Systems/1/LogServices/SEL/Entries",
        "",
    )
    .await;
    assert_eq!(v["Members@odata.count"], 0);
    assert_eq!(
        call(
            &s,
            "GET",
            "/redfish/v1/Systems/1/LogServices/SEL/Entries/2",
            ""
        )
        .await
        .0,
        404
    );
}

#[tokio::test]
async fn virtual_media_is_kept_in_the_volume() {
    let dir = tempfile::tempdir().unwrap();
    let s = service(dir.path());
    let insert = "/redfish/v1/Managers/1/VirtualMedia/CD/Actions/VirtualMedia.InsertMedia";
    let base = http_server(200, b"an ISO image");
    let image = format!("{base}/smoke.iso");
    let (status, v, _) = call(
        &s,
        "POST",
        insert,
        &format!(r#"{{"Image":"{image}","Inserted":true,"WriteProtected":true}}"#),
    )
    .await;
    assert_eq!(status, 204, "{v}");
    // Downloaded into the drive's directory and handed to lab-media.
    let file = dir.path().join("media/cd.iso");
    assert_eq!(std::fs::read(&file).unwrap(), b"an ISO image");
    assert_eq!(s.drive.status().unwrap().as_deref(), Some(file.as_path()));
    assert!(!dir.path().join("media/cd.iso.part").exists());

    // A URL that fails leaves the drive and the state as they were.
    let denied = http_server(403, b"no");
    let missing = http_server(404, b"no");
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}/x.iso", l.local_addr().unwrap())
    };
    for (url, id) in [
        (format!("{denied}/x.iso"), "ResourceAtUriUnauthorized"),
        (format!("{missing}/x.iso"), "ResourceMissingAtURI"),
        (closed, "CouldNotEstablishConnection"),
    ] {
        let (status, v, _) = call(&s, "POST", insert, &format!(r#"{{"Image":"{url}"}}"#)).await;
        assert_eq!((status, ids(&v)), (400, vec![id.to_string()]), "{v}");
        let info = &v["error"]["@Message.ExtendedInfo"][0];
        assert!(info["MessageArgs"][0] == url.as_str(), "{v}");
    }
    assert_eq!(std::fs::read(&file).unwrap(), b"an ISO image");
    for owner in ["Managers", "Systems"] {
        let (_, cd, _) = call(
            &s,
            "GET",
            &format!("/redfish/v1/{owner}/1/VirtualMedia/CD"),
            "",
        )
        .await;
        assert_eq!(cd["Image"], image.as_str());
        assert_eq!(
            (cd["Inserted"].as_bool(), cd["ImageName"].as_str()),
            (Some(true), Some("smoke.iso"))
        );
    }
    // A restarted daemon reads it back from the volume.
    let again = service(dir.path());
    let (_, cd, _) = call(&again, "GET", "/redfish/v1/Managers/1/VirtualMedia/CD", "").await;
    assert_eq!(cd["WriteProtected"], true);
    let eject = "/redfish/v1/Systems/1/VirtualMedia/CD/Actions/VirtualMedia.EjectMedia";
    assert_eq!(call(&again, "POST", eject, "{}").await.0, 204);
    let (_, cd, _) = call(&again, "GET", "/redfish/v1/Managers/1/VirtualMedia/CD", "").await;
    assert_eq!(
        (cd["Image"].clone(), cd["Inserted"].as_bool()),
        (Value::Null, Some(false))
    );
    assert_eq!(again.drive.status().unwrap(), None);
}

/// The HTTPS server over a real socket with short limits: a client that never handshakes, one
/// that stops in the middle of a body and one that idles are let go, and others are served
/// meanwhile and after.
#[tokio::test]
async fn stalled_clients_are_let_go_and_others_served() {
    use crate::redfish::server;
    use std::time::{Duration, Instant};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let dir = tempfile::tempdir().unwrap();
    let (cert, key) =
        server::certificate(&dir.path().join("tls"), vec!["127.0.0.1".into()]).unwrap();
    let tls = server::tls_acceptor(cert, key).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let limits = server::Timeouts {
        handshake: Duration::from_millis(400),
        headers: Duration::from_millis(600),
        body: Duration::from_millis(400),
    };
    let svc = std::sync::Arc::new(service(dir.path()));
    tokio::spawn(server::serve(listener, tls, svc, limits));
    let connector = server::trusting_connector().unwrap();
    let connect = || async {
        let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
        let name = tokio_rustls::rustls::pki_types::ServerName::from(addr.ip());
        connector.connect(name, tcp).await.unwrap()
    };
    let basic = format!("Authorization: {BASIC}");
    let get = format!("GET /redfish/v1/Systems/1 HTTP/1.1\r\nHost: x\r\n{basic}\r\n\r\n");
    // What a connection says until the server closes it (or 5 s pass), and when it closed.
    async fn until_closed<S: AsyncReadExt + Unpin>(s: &mut S) -> (String, Option<Instant>) {
        let mut all = Vec::new();
        let mut buf = [0u8; 4096];
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match tokio::time::timeout(left, s.read(&mut buf)).await {
                Ok(Ok(0)) | Ok(Err(_)) => {
                    return (String::from_utf8_lossy(&all).into(), Some(Instant::now()))
                }
                Ok(Ok(n)) => all.extend_from_slice(&buf[..n]),
                Err(_) => return (String::from_utf8_lossy(&all).into(), None),
            }
        }
    }

    // No handshake at all: closed after the handshake limit.
    let start = Instant::now();
    let mut silent = tokio::net::TcpStream::connect(addr).await.unwrap();
    // A body that stops halfway: 408, and the connection closes.
    let mut half = connect().await;
    half.write_all(
        format!("PATCH /redfish/v1/Systems/1 HTTP/1.1\r\nHost: x\r\n{basic}\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{{\"Boot\":")
            .as_bytes(),
    )
    .await
    .unwrap();
    // A connection that answers one GET and then idles: closed after the header limit.
    let mut idle = connect().await;
    idle.write_all(get.as_bytes()).await.unwrap();
    // Meanwhile another client is served.
    let mut other = connect().await;
    other.write_all(get.as_bytes()).await.unwrap();
    let mut first = vec![0u8; 8192];
    let n = other.read(&mut first).await.unwrap();
    let said = String::from_utf8_lossy(&first[..n]).into_owned();
    assert!(said.starts_with("HTTP/1.1 200"), "{said}");

    let (said, closed) = until_closed(&mut silent).await;
    assert_eq!(said, "");
    assert!(
        closed.is_some_and(|t| t - start < Duration::from_secs(3)),
        "the silent client was kept"
    );
    let (said, closed) = until_closed(&mut half).await;
    assert!(said.starts_with("HTTP/1.1 408"), "{said}");
    assert!(
        said.contains(r#""code":"Base.1.19.GeneralError","message":"The request body did not arrive within 0.4 s.""#),
        "{said}"
    );
    assert!(
        closed.is_some(),
        "the stalled body's connection was kept: {said}"
    );
    let (said, closed) = until_closed(&mut idle).await;
    assert!(said.starts_with("HTTP/1.1 200"), "{said}");
    assert!(closed.is_some(), "the idle connection was kept");

    // A body over 64 KiB: 413, named.
    let mut big = connect().await;
    let body = "x".repeat(70 * 1024);
    big.write_all(
        format!("PATCH /redfish/v1/Systems/1 HTTP/1.1\r\nHost: x\r\n{basic}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}", body.len())
            .as_bytes(),
    )
    .await
    .unwrap();
    let (said, _) = until_closed(&mut big).await;
    assert!(said.starts_with("HTTP/1.1 413"), "{said}");
    assert!(
        said.contains(r#""code":"Base.1.19.PayloadTooLarge","message":"The request body is larger than 64 KiB.""#),
        "{said}"
    );

    // The server still serves new clients.
    let mut after = connect().await;
    after.write_all(get.as_bytes()).await.unwrap();
    let n = after.read(&mut first).await.unwrap();
    assert!(String::from_utf8_lossy(&first[..n]).starts_with("HTTP/1.1 200"));
}
