//! Live: phases that stay true and a server's power and console behaviour, on one node booting
//! the smoke OS under real QEMU. A reset through the BMC and a reboot typed in the guest are each
//! a new boot (`boots` + 1, phases start again, `wait --phase up` waits for the new boot); QEMU's
//! events name who caused them (`last_event`); `power diag` makes the guest kernel log an NMI;
//! Serial over LAN: a second session's first keystroke arrives, a live console is not taken over,
//! a killed client's session is freed; a `poweroff` typed in the guest and `power soft` (the ACPI
//! power button) power the node off cleanly, and the BMC's recorded power reads off; a hard
//! `power off` is the BMC's.

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use common::*;
use metal_lab::engine::Engine;
use metal_lab::phase::rfc3339_seconds;

/// How long a boot of the smoke OS may take under TCG on a busy host (about 25 s here).
const BOOT: &str = "300";

/// The node's entry of `status --json`.
fn node(t: &TestLab) -> serde_json::Value {
    let out = t.lab(&["status", "--json"]);
    assert!(out.status.success(), "status --json: {}", stderr(&out));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("status JSON");
    v["nodes"][0].clone()
}

fn secs(v: &serde_json::Value) -> f64 {
    v.as_str()
        .and_then(rfc3339_seconds)
        .unwrap_or_else(|| panic!("not a time: {v}"))
}

/// Polls `status --json` until `done` holds for the node, at most `deadline`.
fn node_until(
    t: &TestLab,
    deadline: Duration,
    what: &str,
    done: impl Fn(&serde_json::Value) -> bool,
) -> serde_json::Value {
    let start = Instant::now();
    loop {
        let n = node(t);
        if done(&n) {
            return n;
        }
        assert!(
            start.elapsed() < deadline,
            "{what}: not within {deadline:?}: {n}"
        );
        std::thread::sleep(Duration::from_millis(500));
    }
}

fn wait_up(t: &TestLab) {
    let out = t.lab(&["wait", "n", "--phase", "up", "--timeout", BOOT]);
    assert!(out.status.success(), "wait --phase up: {}", stderr(&out));
}

/// Types `text` on the node's serial console through `lab console`, which leaves when its
/// input ends.
fn type_on_console(t: &TestLab, text: &str) {
    let mut console = Interactive::spawn(
        Command::new(env!("CARGO_BIN_EXE_lab"))
            .current_dir(t.dir.path())
            .arg("-f")
            .arg(t.file())
            .args(["console", "n", "--lines", "1"]),
    );
    console.send(text);
    std::thread::sleep(Duration::from_millis(500));
    let _ = console.close_and_wait(Duration::from_secs(10));
}

fn console_log(t: &TestLab) -> String {
    let out = t.lab(&["console", "n", "--no-follow", "--lines", "0"]);
    assert!(
        out.status.success(),
        "console --no-follow: {}",
        stderr(&out)
    );
    stdout(&out)
}

/// An SOL session through the published BMC port, on a terminal (script(1)); the shell's pid,
/// which execs ipmitool, is printed first so the test can kill the client.
fn sol(port: u16) -> Interactive {
    let cmd = format!(
        "echo sol-client-pid=$$; exec ipmitool -I lanplus -H 127.0.0.1 -p {port} -U admin -P admin sol activate"
    );
    Interactive::spawn(Command::new("script").args(["-qfc", &cmd, "/dev/null"]))
}

fn sol_pid(s: &Interactive) -> u32 {
    s.text()
        .split("sol-client-pid=")
        .nth(1)
        .and_then(|r| r.split_whitespace().next())
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("no client pid: {}", s.text()))
}

const OPERATIONAL: &str = "SOL Session operational";

/// A new SOL session on `port` types `echo WORD-$((N*N))` and sees the shell's answer, then
/// leaves with `~.`; `what` names the step when it does not.
fn sol_round_trip(port: u16, word: &str, n: u32, what: &str) {
    let mut s = sol(port);
    assert!(
        s.wait_for(OPERATIONAL, Duration::from_secs(20)),
        "{what}: {}",
        s.text()
    );
    s.send(&format!("echo {word}-$(({n}*{n}))\n"));
    assert!(
        s.wait_for(&format!("{word}-{}", n * n), Duration::from_secs(15)),
        "{what}: {}",
        s.text()
    );
    s.send("~.");
    let _ = s.close_and_wait(Duration::from_secs(10));
}

#[test]
fn resets_reboots_nmi_sol_and_soft_off_behave_as_on_a_server() {
    let Some(engine) = engine_or_skip("phases") else {
        return;
    };
    let u = unique("phases");
    let t = TestLab::new(&u.name, &smoke_node_lab(&u, "02:5b:00:00:00:01"));
    let port = u.port_base;
    let rt = tokio::runtime::Runtime::new().expect("tokio runtime");
    let out = t.lab(&["up", "--timeout", BOOT]);
    assert!(out.status.success(), "lab up: {}", stderr(&out));
    wait_up(&t);
    let n = node(&t);
    assert_eq!(
        (n["phase"].as_str(), n["boots"].as_u64()),
        (Some("up"), Some(1)),
        "{n}"
    );
    let first_up = secs(&n["phase_since"]);

    // A reset through the BMC: `wait --phase up` right after it waits for the new boot.
    let out = t.lab(&["power", "n", "reset"]);
    assert!(out.status.success(), "power reset: {}", stderr(&out));
    wait_up(&t);
    let n = node(&t);
    assert_eq!(n["boots"], 2, "{n}");
    let reset_up = secs(&n["phase_since"]);
    assert!(reset_up > first_up, "up again after the reset: {n}");
    assert_eq!(n["last_event"]["event"], "reset", "{n}");
    assert_eq!(n["last_event"]["by"], "bmc", "{n}");
    assert_eq!(n["last_event"]["reason"], "host-qmp-system-reset", "{n}");
    assert!(secs(&n["last_event"]["at"]) < reset_up, "{n}");

    // A reboot typed in the guest: QEMU's reset, by the guest, is a new boot; the phases start
    // again at once, and `wait --phase up` waits for the new boot's report.
    type_on_console(&t, "reboot\n");
    let n = node_until(&t, Duration::from_secs(60), "the guest's reboot", |n| {
        n["boots"] == 3
    });
    assert_eq!(n["last_event"]["event"], "reset", "{n}");
    assert_eq!(n["last_event"]["by"], "guest", "{n}");
    assert_ne!(n["phase"], "up", "the new boot is not up yet: {n}");
    let rebooted_at = secs(&n["last_event"]["at"]);
    assert!(rebooted_at > reset_up, "{n}");
    wait_up(&t);
    let n = node(&t);
    assert!(
        secs(&n["phase_since"]) > rebooted_at,
        "up after the reboot: {n}"
    );
    assert_eq!(n["boots"], 3, "{n}");
    assert!(
        console_log(&t).contains("Requesting system reboot"),
        "the guest rebooted cleanly (busybox init)"
    );

    // power diag: the NMI reaches the guest, whose kernel says so on the console.
    let out = ipmitool(port, &["power", "diag"]);
    assert!(out.status.success(), "power diag");
    let start = Instant::now();
    while !console_log(&t).contains("NMI received for unknown reason") {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "no NMI on the console: {}",
            console_log(&t)
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    assert_eq!(node(&t)["boots"], 3, "an NMI is no new boot");

    // SOL: a session whose one keystroke packet was number 1, then a second session: its first
    // keystroke (one packet, number 1 too) arrives.
    let mut s1 = sol(port);
    assert!(
        s1.wait_for(OPERATIONAL, Duration::from_secs(20)),
        "{}",
        s1.text()
    );
    s1.send("echo one-$((2*2))\n");
    assert!(
        s1.wait_for("one-4", Duration::from_secs(20)),
        "{}",
        s1.text()
    );
    std::thread::sleep(Duration::from_millis(300));
    s1.send("~.");
    assert!(
        s1.close_and_wait(Duration::from_secs(10)).is_some(),
        "the first SOL session ends on ~."
    );
    let mut s2 = sol(port);
    assert!(
        s2.wait_for(OPERATIONAL, Duration::from_secs(20)),
        "{}",
        s2.text()
    );
    s2.send("echo two-$((3*3))\n");
    assert!(
        s2.wait_for("two-9", Duration::from_secs(15)),
        "the second session's first keystrokes were lost: {}",
        s2.text()
    );
    // A live console is not taken over.
    let s3 = sol(port);
    assert!(
        s3.wait_for("already active", Duration::from_secs(20)),
        "{}",
        s3.text()
    );
    let _ = s3.close_and_wait(Duration::from_secs(10));
    // Its client killed (no Deactivate Payload), the console is freed for the next session once
    // the BMC sees it does not acknowledge the VM's output.
    let pid = sol_pid(&s2);
    let killed = Command::new("kill")
        .args(["-9", &pid.to_string()])
        .status()
        .expect("kill");
    assert!(killed.success(), "kill -9 {pid}");
    let _ = s2.close_and_wait(Duration::from_secs(5));
    type_on_console(&t, "echo output-for-the-dead-console\n");
    std::thread::sleep(Duration::from_secs(4));
    sol_round_trip(
        port,
        "four",
        4,
        "a killed client's SOL session was not freed",
    );
    let log = stdout(&t.lab(&["logs", "n"]));
    assert!(
        log.contains("SOL: the console holding it does not answer"),
        "{log}"
    );

    // The shared console's process dies: the node starts it again, ipmi_sim's SOL connects to
    // it again (10 s after it lost it), and SOL shows the VM's output once more.
    let container = format!("{}-n", u.name);
    let killed = rt
        .block_on(engine.exec(
            &container,
            &["pkill".into(), "-f".into(), "bin/lab-serial".into()],
        ))
        .expect("exec pkill");
    assert_eq!(killed.exit_code, 0, "{}", killed.output);
    let restarted = std::time::Instant::now();
    while !stdout(&t.lab(&["logs", "n"])).contains("serial: the console process ended") {
        assert!(
            restarted.elapsed() < Duration::from_secs(10),
            "lab-serial was not started again"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    std::thread::sleep(Duration::from_secs(11));
    sol_round_trip(
        port,
        "five",
        5,
        "SOL after the console process was started again",
    );

    // `poweroff` typed in the guest: QEMU reports the guest's shutdown and exits; the BMC reads
    // off and its recorded power (for power_restore = "previous") is off.
    type_on_console(&t, "poweroff\n");
    let n = node_until(&t, Duration::from_secs(60), "the guest's poweroff", |n| {
        n["power"] == "off"
    });
    assert_eq!(n["phase"], "off", "{n}");
    assert_eq!(n["last_event"]["event"], "shutdown", "{n}");
    assert_eq!(n["last_event"]["by"], "guest", "{n}");
    assert_eq!(n["last_event"]["reason"], "guest-shutdown", "{n}");
    let state = rt
        .block_on(engine.read_file(&container, "/var/lib/lab/power-state"))
        .expect("power-state");
    assert_eq!(String::from_utf8_lossy(&state), "off\n");
    let out = ipmitool(port, &["power", "status"]);
    assert!(
        stdout(&out).contains("Chassis Power is off"),
        "{}",
        stdout(&out)
    );

    // On again, then `power soft`: the ACPI power button; the smoke OS powers off cleanly.
    assert!(ipmitool(port, &["power", "on"]).status.success());
    wait_up(&t);
    assert_eq!(
        String::from_utf8_lossy(
            &rt.block_on(engine.read_file(&container, "/var/lib/lab/power-state"))
                .expect("power-state")
        ),
        "on\n"
    );
    let out = ipmitool(port, &["power", "soft"]);
    assert!(out.status.success(), "power soft: {}", stderr(&out));
    let n = node_until(&t, Duration::from_secs(60), "soft off", |n| {
        n["power"] == "off"
    });
    assert_eq!(n["last_event"]["event"], "shutdown", "{n}");
    assert_eq!(n["last_event"]["by"], "guest", "{n}");
    let state = rt
        .block_on(engine.read_file(&container, "/var/lib/lab/power-state"))
        .expect("power-state");
    assert_eq!(String::from_utf8_lossy(&state), "off\n");
    assert!(
        console_log(&t).contains("lab-smoke: ACPI power button pressed: powering off"),
        "the guest saw the power button"
    );

    // A hard power off through the BMC is the BMC's, though QEMU's IPMI device calls it the
    // guest's shutdown.
    assert!(ipmitool(port, &["power", "on"]).status.success());
    node_until(&t, Duration::from_secs(60), "power on", |n| {
        n["power"] == "on"
    });
    std::thread::sleep(Duration::from_secs(3));
    assert!(ipmitool(port, &["power", "off"]).status.success());
    let n = node_until(&t, Duration::from_secs(30), "power off", |n| {
        n["power"] == "off" && n["last_event"]["event"] == "shutdown"
    });
    assert_eq!(n["last_event"]["by"], "bmc", "{n}");
    assert_eq!(n["last_event"]["reason"], "bmc-power-off", "{n}");

    let log = stdout(&t.lab(&["logs", "n"]));
    for want in [
        "lab: vm: powerdown by=bmc",
        "lab: vm: shutdown by=guest reason=guest-shutdown",
        "lab: vm: reset by=guest reason=guest-reset",
    ] {
        assert!(log.contains(want), "{want}: {log}");
    }
}
