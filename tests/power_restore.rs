//! Live: a node's power after its container restarts follows its power restore policy, as a
//! real server's after a power loss. An engine restart restarts node containers (restart policy
//! unless-stopped); `docker restart` takes the same path in lab-node (container restarted, its
//! first-start marker present) without touching the engine, which other work shares.

mod common;

use std::time::{Duration, Instant};

use common::*;

fn lab_file(u: &Unique) -> String {
    let p = u.prefix();
    let node = format!(
        r#"
[nodes.n]
mac = "02:aa:bb:cc:dd:ef"
ip = "{p}.100"
bmc_ip = "{p}.6"
ipmi_port = {ipmi}
memory = "256M"
disk = "1G"
accel = "tcg"
power = "on"
power_restore = "previous"
"#,
        ipmi = u.port_base + 10,
    );
    lab_with_services(u) + &node
}

/// Restarts the node container and waits until its BMC answers again and lab-node has decided
/// the VM's power (its log line); returns that line.
fn restart(container: &str, port: u16) -> String {
    let seen = container_log(container)
        .matches("lab: power restore:")
        .count();
    docker(&["restart", "-t", "5", container]);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let all = container_log(container);
        let lines: Vec<&str> = all
            .lines()
            .filter(|l| l.contains("lab: power restore:"))
            .collect();
        if lines.len() > seen && power(port).is_some() {
            return lines[lines.len() - 1].to_string();
        }
        assert!(
            Instant::now() < deadline,
            "{container} not back within 30 s"
        );
        std::thread::sleep(Duration::from_millis(300));
    }
}

fn disk_size(container: &str) -> String {
    let out = docker(&[
        "exec",
        container,
        "stat",
        "-c",
        "%s",
        "/var/lib/lab/disk.qcow2",
    ]);
    stdout(&out).trim().to_string()
}

#[test]
fn power_after_a_node_restart_follows_the_policy() {
    let Some(_engine) = engine_or_skip("power_restore") else {
        return;
    };
    let u = unique("pr");
    let lab = TestLab::new(&u.name, &lab_file(&u));
    let port = u.port_base + 10;
    let container = format!("{}-n", u.name);
    let up = lab.lab(&["up"]);
    assert!(up.status.success(), "{}", stderr(&up));
    wait_power(port, "on", Duration::from_secs(20));
    let disk = disk_size(&container);

    // previous, powered off over IPMI: comes back off (and stays off).
    assert!(ipmitool(port, &["chassis", "power", "off"])
        .status
        .success());
    wait_power(port, "off", Duration::from_secs(10));
    let line = restart(&container, port);
    assert!(
        line.contains("policy previous, was off: staying off"),
        "{line}"
    );
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(power(port).as_deref(), Some("off"));

    // previous, powered on: comes back on.
    assert!(ipmitool(port, &["chassis", "power", "on"]).status.success());
    wait_power(port, "on", Duration::from_secs(10));
    let line = restart(&container, port);
    assert!(
        line.contains("policy previous, was on: powering on"),
        "{line}"
    );
    wait_power(port, "on", Duration::from_secs(30));

    // always-off over IPMI: kept in the volume, shown by chassis status, and followed.
    let status = ipmitool(port, &["chassis", "status"]);
    assert!(stdout(&status).contains("Power Restore Policy : previous"));
    assert!(ipmitool(port, &["chassis", "policy", "always-off"])
        .status
        .success());
    let line = restart(&container, port);
    assert!(line.contains("policy off, was on: staying off"), "{line}");
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(power(port).as_deref(), Some("off"));
    let status = ipmitool(port, &["chassis", "status"]);
    assert!(
        stdout(&status).contains("Power Restore Policy : always-off"),
        "{}",
        stdout(&status)
    );

    // The disk in the volume is the same disk.
    assert_eq!(disk_size(&container), disk, "the node's disk changed");
    let down = lab.lab(&["down", "--volumes"]);
    eprintln!("{}", stderr(&down));
}
