//! The CI smoke run (live): `labs/smoke.toml`, with its own name, subnet and host ports, comes
//! up; every node PXE-boots the smoke OS and reaches `up`; every node's reserved address answers
//! from the SSH jump host (a real SSH session through the published port); `status --json` shows
//! the phases; real `ipmitool` over the published BMC port (plain lanplus, no `-C`) powers a node
//! off (phase `off`) and on again (`up`), sets a one-time PXE boot that the next power on uses
//! and then forgets, and opens Serial over LAN; `lab console` shows the history and drives the
//! live console; `lab down` leaves nothing.

mod common;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::*;

/// labs/smoke.toml with this test's name, subnet and host ports. Every replaced text must be
/// there, so a change to the smoke lab shows up here.
fn smoke_lab(u: &Unique, repo: &Path) -> String {
    let mut toml = std::fs::read_to_string(repo.join("labs/smoke.toml")).expect("labs/smoke.toml");
    let p = u.port_base;
    let tftp = repo.join("tftproot");
    for (from, to) in [
        (
            "name = \"smoke\"".to_string(),
            format!("name = \"{}\"", u.name),
        ),
        ("192.168.26.".to_string(), format!("{}.", u.prefix())),
        ("\"2222:22\"".to_string(), format!("\"{p}:22\"")),
        (
            "vnc_port = 5901".to_string(),
            format!("vnc_port = {}", p + 1),
        ),
        (
            "vnc_port = 5902".to_string(),
            format!("vnc_port = {}", p + 2),
        ),
        (
            "ipmi_port = 623".to_string(),
            format!("ipmi_port = {}", p + 10),
        ),
        (
            "ipmi_port = 624".to_string(),
            format!("ipmi_port = {}", p + 11),
        ),
        (
            "\"../tftproot\"".to_string(),
            format!("{:?}", tftp.display().to_string()),
        ),
        ("\"../webroot\"".to_string(), "\"webroot\"".to_string()),
    ] {
        assert!(toml.contains(&from), "labs/smoke.toml no longer has {from}");
        toml = toml.replace(&from, &to);
    }
    toml
}

fn phases(t: &TestLab) -> serde_json::Value {
    let out = t.lab(&["status", "--json"]);
    assert!(out.status.success(), "status --json: {}", stderr(&out));
    serde_json::from_slice(&out.stdout).expect("status JSON")
}

fn node_phase(status: &serde_json::Value, node: &str) -> (String, Option<String>) {
    let n = status["nodes"]
        .as_array()
        .expect("nodes")
        .iter()
        .find(|n| n["name"] == node)
        .unwrap_or_else(|| panic!("node {node} in {status}"));
    (
        n["phase"].as_str().unwrap_or_default().to_string(),
        n["phase_since"].as_str().map(str::to_string),
    )
}

#[test]
fn ci_smoke_run_boots_drives_and_removes_the_smoke_lab() {
    let Some(engine) = engine_or_skip("ci_smoke") else {
        return;
    };
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    let u = unique("ci");
    let t = TestLab::new(&u.name, &smoke_lab(&u, repo));
    let nodes = ["master", "worker-1", "worker-2"];

    let out = t.lab(&["up", "--timeout", "300"]);
    assert!(out.status.success(), "lab up: {}", stderr(&out));
    let out = t.lab(&["wait", "--phase", "up", "--timeout", "300"]);
    assert!(
        out.status.success(),
        "lab wait --phase up: {}",
        stderr(&out)
    );

    // Every node's reserved address answers from the jump host, over a real SSH session.
    let askpass = t.dir.path().join("askpass");
    std::fs::write(&askpass, "#!/bin/sh\necho labpassword\n").expect("askpass");
    std::process::Command::new("chmod")
        .args(["+x"])
        .arg(&askpass)
        .status()
        .expect("chmod");
    let pings: Vec<String> = (100..=102)
        .map(|h| {
            format!(
                "ping -c 1 -W 3 {} >/dev/null && echo answers {}",
                u.ip(h),
                u.ip(h)
            )
        })
        .collect();
    let out = Command::new("ssh")
        .args(["-p", &u.port_base.to_string()])
        .args([
            "-o",
            "StrictHostKeyChecking=no",
            "-o",
            "UserKnownHostsFile=/dev/null",
        ])
        .args(["-o", "PubkeyAuthentication=no", "-o", "ConnectTimeout=10"])
        .args(["root@127.0.0.1", &pings.join(" && ")])
        .env("SSH_ASKPASS", &askpass)
        .env("SSH_ASKPASS_REQUIRE", "force")
        .env("DISPLAY", "lab-ci")
        .stdin(Stdio::null())
        .output()
        .expect("ssh (installed by .ci/run)");
    let said = stdout(&out);
    for h in 100..=102 {
        assert!(
            said.contains(&format!("answers {}", u.ip(h))),
            "{} from the jump host: {said}{}",
            u.ip(h),
            stderr(&out)
        );
    }

    // status --json: every node is up, with the time it got there.
    let status = phases(&t);
    for n in nodes {
        let (phase, since) = node_phase(&status, n);
        assert_eq!(phase, "up", "{n}: {status}");
        assert!(
            since.is_some_and(|s| s.contains('T')),
            "{n} phase_since: {status}"
        );
    }

    // A reset through the BMC is a new boot: `wait --phase up` waits for it instead of taking
    // the last boot's `up` (master: the others are driven below).
    let (_, before) = node_phase(&status, "master");
    let out = t.lab(&["power", "master", "reset"]);
    assert!(out.status.success(), "power reset: {}", stderr(&out));
    let out = t.lab(&["wait", "master", "--phase", "up", "--timeout", "300"]);
    assert!(out.status.success(), "wait after reset: {}", stderr(&out));
    let (phase, after) = node_phase(&phases(&t), "master");
    assert_eq!(phase, "up");
    let secs = |t: &Option<String>| t.as_deref().and_then(metal_lab::phase::rfc3339_seconds);
    assert!(
        secs(&after) > secs(&before),
        "up again after the reset, later than before: {before:?} -> {after:?}"
    );

    // Real ipmitool through the published port, plain lanplus: it finds the cipher suites at
    // once instead of giving up on them.
    let bmc = u.port_base + 11; // worker-1
    let out = ipmitool(bmc, &["power", "status"]);
    assert!(out.status.success() && stdout(&out).contains("Chassis Power is on"));
    assert!(
        !stderr(&out).contains("Unable to Get Channel Cipher Suites"),
        "cipher-suite discovery failed: {}",
        stderr(&out)
    );

    // No way in without the password: a wrong one, cipher suite 0 (RAKP-none), IPMI 1.5 "none".
    let wrong = |args: &[&str]| {
        let out = Command::new("ipmitool")
            .args([
                "-H",
                "127.0.0.1",
                "-p",
                &bmc.to_string(),
                "-U",
                "admin",
                "-P",
                "wrong",
            ])
            .args(args)
            .args(["power", "status"])
            .output()
            .expect("ipmitool");
        (
            out.status.success(),
            format!("{}{}", stdout(&out), stderr(&out)),
        )
    };
    for args in [
        &["-I", "lanplus"][..],
        &["-I", "lanplus", "-C", "0"],
        &["-I", "lan", "-A", "NONE"],
    ] {
        let (ok, said) = wrong(args);
        assert!(
            !ok && !said.contains("Chassis Power"),
            "{args:?} with a wrong password: {said}"
        );
    }

    // Power off -> `off`.
    assert!(ipmitool(bmc, &["power", "off"]).status.success());
    let out = t.lab(&["wait", "worker-1", "--phase", "off", "--timeout", "60"]);
    assert!(out.status.success(), "worker-1 to off: {}", stderr(&out));
    assert_eq!(node_phase(&phases(&t), "worker-1").0, "off");
    // lab's own IPMI 1.5 client (what `status` asks with) sees the same, and needs the password.
    let rt = tokio::runtime::Runtime::new().expect("tokio runtime");
    let at = std::net::SocketAddr::from((u.ip(7), 623));
    assert_eq!(
        rt.block_on(metal_lab::ipmi::power_is_on(at, "admin", "admin")),
        Ok(false)
    );
    assert!(rt
        .block_on(metal_lab::ipmi::power_is_on(at, "admin", "wrong"))
        .is_err());

    // A one-time PXE boot, then power on -> `up` again; the override is used up.
    let out = ipmitool(bmc, &["chassis", "bootdev", "pxe"]);
    assert!(out.status.success(), "bootdev pxe");
    let flags = stdout(&ipmitool(bmc, &["chassis", "bootparam", "get", "5"]));
    assert!(
        flags.contains("Force PXE") && flags.contains("only next boot"),
        "{flags}"
    );
    assert!(ipmitool(bmc, &["power", "on"]).status.success());
    let out = t.lab(&["wait", "worker-1", "--phase", "up", "--timeout", "300"]);
    assert!(
        out.status.success(),
        "worker-1 back to up: {}",
        stderr(&out)
    );
    let node_log = stdout(&t.lab(&["logs", "worker-1"]));
    assert!(
        node_log.contains("boot=pxe (BMC override (once))"),
        "power on used the override: {node_log}"
    );
    let flags = stdout(&ipmitool(bmc, &["chassis", "bootparam", "get", "5"]));
    assert!(
        flags.contains("Boot Flag Invalid") && flags.contains("No override"),
        "{flags}"
    );
    // A persistent choice stays.
    assert!(
        ipmitool(bmc, &["chassis", "bootdev", "disk", "options=persistent"])
            .status
            .success()
    );
    let flags = stdout(&ipmitool(bmc, &["chassis", "bootparam", "get", "5"]));
    assert!(
        flags.contains("all future boots") && flags.contains("Hard-Drive"),
        "{flags}"
    );

    // Serial over LAN through the published port reaches the node's shell (ipmitool wants a
    // terminal: script(1) gives it one).
    let sol_cmd =
        format!("ipmitool -I lanplus -H 127.0.0.1 -p {bmc} -U admin -P admin sol activate");
    let mut sol = Interactive::spawn(Command::new("script").args(["-qfc", &sol_cmd, "/dev/null"]));
    let reached = sol.type_until("echo sol-$((6*7))\n", "sol-42", Duration::from_secs(60));
    sol.send("\n~.");
    let sol_text = sol.text();
    let _ = sol.close_and_wait(Duration::from_secs(10));
    assert!(reached, "SOL did not reach the shell:\n{sol_text}");

    // lab console: the history (the banner), then the live console, until stdin ends.
    let out = t.lab(&["console", "master", "--no-follow", "--lines", "0"]);
    let history = stdout(&out);
    assert!(
        out.status.success(),
        "console --no-follow: {}",
        stderr(&out)
    );
    assert!(
        history.contains(&format!("lab-smoke: node master is up at {} ", u.ip(100))),
        "{history}"
    );
    let mut console = Interactive::spawn(
        Command::new(env!("CARGO_BIN_EXE_lab"))
            .current_dir(t.dir.path())
            .arg("-f")
            .arg(t.file())
            .args(["console", "worker-2", "--lines", "3"]),
    );
    let reached = console.type_until("echo con-$((7*7))\n", "con-49", Duration::from_secs(60));
    let text = console.text();
    let status = console.close_and_wait(Duration::from_secs(20));
    assert!(reached, "lab console did not reach the shell:\n{text}");
    assert!(
        status.is_some_and(|s| s.success()),
        "lab console leaves when its input ends: {status:?}"
    );

    // down leaves nothing.
    let out = t.lab(&["down", "--volumes"]);
    assert!(out.status.success(), "lab down: {}", stderr(&out));
    assert_eq!(leftovers(&engine, &u.name), (0, 0, 0));
}
