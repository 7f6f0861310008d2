//! Live: faults a lab survives. `lab up` killed (SIGKILL) at several points, then one `lab up`
//! converges; two `lab up`s of one lab at once both succeed with one network; an `up` racing a
//! `down` leaves the lab fully up or fully down, and a final `up` converges.

mod common;

use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::*;

/// dhcp, web, ssh and one powered-on node with published VNC and IPMI (UDP) ports.
fn node_lab(u: &Unique) -> String {
    let p = u.prefix();
    let b = u.port_base;
    let rest = format!(
        r#"
[services.ssh]
kind = "sshd"
ip = "{p}.4"
ports = ["{ssh}:22"]
[node_defaults]
memory = "256M"
disk = "1G"
accel = "tcg"
power = "on"
[nodes.n]
mac = "02:aa:bb:cc:dd:ee"
ip = "{p}.100"
bmc_ip = "{p}.6"
vnc_port = {vnc}
ipmi_port = {ipmi}
"#,
        ssh = b,
        vnc = b + 1,
        ipmi = b + 10,
    );
    lab_with_services(u) + &rest
}

/// `lab -f FILE ARGS` started in the background, its output captured.
fn spawn(lab: &TestLab, args: &[&str]) -> Child {
    Command::new(env!("CARGO_BIN_EXE_lab"))
        .current_dir(lab.dir.path())
        .arg("-f")
        .arg(lab.file())
        .args(args)
        .env("CI", "true")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run lab")
}

fn finish(what: &str, child: Child) -> Output {
    let out = child.wait_with_output().expect("wait for lab");
    eprintln!(
        "$ {what}\n--- status {:?}\n--- stdout\n{}--- stderr\n{}",
        out.status.code(),
        stdout(&out),
        stderr(&out)
    );
    out
}

/// Every container of the lab runs and the node is powered on, as `status --json` says. A node
/// container a killed `up` started powers its VM on by itself, so power may lag a few seconds.
fn assert_all_running(lab: &TestLab) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let out = lab.lab(&["status", "--json"]);
        assert!(out.status.success(), "{}", stderr(&out));
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("status json");
        let services = v["services"].as_array().expect("services");
        let nodes = v["nodes"].as_array().expect("nodes");
        assert_eq!((services.len(), nodes.len()), (3, 1), "{v:#}");
        for c in services.iter().chain(nodes) {
            assert_eq!(c["state"], "running", "{v:#}");
        }
        if nodes[0]["power"] == "on" {
            return;
        }
        assert!(Instant::now() < deadline, "node not powered on: {v:#}");
        std::thread::sleep(Duration::from_millis(500));
    }
}

/// SIGKILL of `lab up` 0.3 s, 0.8 s and 1.5 s in (while the engine is still creating and
/// starting containers that publish the node's UDP port): the next single `lab up` converges.
#[test]
fn a_killed_up_is_finished_by_the_next_up() {
    let Some(engine) = engine_or_skip("killed_up") else {
        return;
    };
    let u = unique("ku");
    let lab = TestLab::new(&u.name, &node_lab(&u));
    for delay in [300, 800, 1500] {
        let mut child = spawn(&lab, &["up"]);
        std::thread::sleep(Duration::from_millis(delay));
        // SAFETY: kill(2) on our own child's pid with a valid signal number.
        unsafe { libc::kill(child.id() as i32, libc::SIGKILL) };
        let _ = child.wait();
        let again = lab.lab(&["up"]);
        assert!(
            again.status.success(),
            "up after a kill at {delay} ms failed:\n{}",
            stderr(&again)
        );
        assert_all_running(&lab);
        assert_eq!(leftovers(&engine, &u.name).1, 1, "one network");
        assert!(lab.lab(&["down"]).status.success());
    }
}

/// Two `lab up`s of one lab at once: the second waits for the first (it says who holds the
/// lab) and then finds nothing or little to do; both succeed, and there is one network.
#[test]
fn two_ups_at_once_both_succeed_with_one_network() {
    let Some(engine) = engine_or_skip("two_ups") else {
        return;
    };
    let u = unique("tu");
    let lab = TestLab::new(&u.name, &node_lab(&u));
    let start = Instant::now();
    let a = spawn(&lab, &["up"]);
    let b = spawn(&lab, &["up"]);
    let (a, b) = (finish("lab up (a)", a), finish("lab up (b)", b));
    eprintln!("both done in {:.1}s", start.elapsed().as_secs_f64());
    for o in [&a, &b] {
        assert!(o.status.success(), "{}", stderr(o));
        assert!(!stderr(o).contains("error"), "{}", stderr(o));
    }
    let waited = [&a, &b]
        .iter()
        .filter(|o| stderr(o).contains("is busy"))
        .count();
    assert_eq!(waited, 1, "exactly one waited for the other");
    assert_eq!(leftovers(&engine, &u.name).1, 1, "one network");
    assert_all_running(&lab);
}

/// `lab up` and, 0.2 s, 0.5 s or 0.9 s later, `lab down` of the same lab: both succeed and the
/// lab is then fully up (down ran first and found nothing) or fully down; a final `up`
/// converges.
#[test]
fn an_up_racing_a_down_leaves_a_consistent_lab() {
    let Some(engine) = engine_or_skip("up_down") else {
        return;
    };
    let u = unique("ud");
    let lab = TestLab::new(&u.name, &node_lab(&u));
    for delay in [200, 500, 900] {
        let up = spawn(&lab, &["up"]);
        std::thread::sleep(Duration::from_millis(delay));
        let down = spawn(&lab, &["down"]);
        let (up, down) = (finish("lab up", up), finish("lab down", down));
        assert!(up.status.success(), "down at {delay} ms: {}", stderr(&up));
        assert!(
            down.status.success(),
            "down at {delay} ms: {}",
            stderr(&down)
        );
        let (containers, networks, _) = leftovers(&engine, &u.name);
        assert!(
            (containers, networks) == (0, 0) || (containers, networks) == (4, 1),
            "down at {delay} ms left half a lab: {containers} containers, {networks} networks"
        );
        assert!(lab.lab(&["down"]).status.success());
    }
    let again = lab.lab(&["up"]);
    assert!(again.status.success(), "{}", stderr(&again));
    assert_all_running(&lab);
    assert_eq!(leftovers(&engine, &u.name).1, 1, "one network");
}
