//! Live: the Docker engine itself restarts under a running lab (dockerd stopped with SIGTERM, as
//! `systemctl restart docker` or a host shutdown does, and started again). Services and node
//! containers come back, every BMC answers IPMI again within 30 s, each node's power is what its
//! power restore policy says, `lab status --json` shows those powers, and the node disks keep
//! what was written into them.
//!
//! Only an engine this test may restart is restarted: one whose start `.ci/run` recorded in
//! `/run/lab-ci-dockerd` with `.ci/record-dockerd` (or whoever started a private dockerd, in the
//! file named by `LAB_TEST_DOCKERD`), that still runs as recorded and serves `DOCKER_HOST`. Any
//! other engine (under systemd, started by hand, shared with other work) makes the test skip,
//! saying why.

mod common;

use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;

/// Where `.ci/run` records the dockerd it started.
const CI_RECORD: &str = "/run/lab-ci-dockerd";
/// Where the Docker CLI and lab connect when DOCKER_HOST is unset.
const DEFAULT_HOST: &str = "unix:///var/run/docker.sock";

/// A dockerd as its starter recorded it: lines `pid N`, `log FILE` and one `arg A` per word of
/// its command line, in order (`#` starts a comment).
struct Dockerd {
    record: PathBuf,
    pid: i32,
    log: PathBuf,
    argv: Vec<String>,
}

fn cmdline(pid: i32) -> Option<Vec<String>> {
    let raw = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
    Some(
        raw.split(|b| *b == 0)
            .filter(|w| !w.is_empty())
            .map(|w| String::from_utf8_lossy(w).into_owned())
            .collect(),
    )
}

/// The process runs (exists and is not a zombie waiting for its parent).
fn alive(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => stat
            .rsplit_once(") ")
            .is_some_and(|(_, rest)| !rest.starts_with('Z')),
        Err(_) => false,
    }
}

/// The values of a dockerd option (`--host X`, `--host=X`, `-H X`) in `argv`.
fn option_values(argv: &[String], long: &str, short: Option<&str>) -> Vec<String> {
    let mut values = Vec::new();
    let mut words = argv.iter().skip(1);
    while let Some(w) = words.next() {
        if let Some(v) = w.strip_prefix(&format!("{long}=")) {
            values.push(v.to_string());
        } else if w == long || Some(w.as_str()) == short {
            values.extend(words.next().cloned());
        }
    }
    values
}

impl Dockerd {
    /// The recorded engine, if this test may restart it; else why not.
    fn recorded() -> Result<Dockerd, String> {
        let record = PathBuf::from(
            std::env::var("LAB_TEST_DOCKERD").unwrap_or_else(|_| CI_RECORD.to_string()),
        );
        let text = std::fs::read_to_string(&record).map_err(|e| {
            format!(
                "no record of a dockerd this test may restart ({}: {e}); .ci/run writes {CI_RECORD} \
                 when it starts dockerd itself, LAB_TEST_DOCKERD may name the record of a private one",
                record.display()
            )
        })?;
        let (mut pid, mut log, mut argv) = (None, None, Vec::new());
        for line in text.lines().map(str::trim) {
            match line.split_once(' ') {
                _ if line.is_empty() || line.starts_with('#') => {}
                Some(("pid", v)) => pid = v.trim().parse::<i32>().ok(),
                Some(("log", v)) => log = Some(PathBuf::from(v.trim())),
                Some(("arg", v)) => argv.push(v.to_string()),
                None if line == "arg" => argv.push(String::new()),
                _ => return Err(format!("{}: unknown line '{line}'", record.display())),
            }
        }
        let (Some(pid), Some(log)) = (pid, log) else {
            return Err(format!("{}: needs a pid and a log line", record.display()));
        };
        if !argv.first().is_some_and(|a| a.ends_with("dockerd")) {
            return Err(format!(
                "{}: the command line recorded is not dockerd's: {argv:?}",
                record.display()
            ));
        }
        if !alive(pid) || cmdline(pid).as_ref() != Some(&argv) {
            return Err(format!(
                "pid {pid} of {} is no longer the dockerd recorded there ({argv:?}); the engine \
                 was restarted some other way",
                record.display()
            ));
        }
        let hosts = option_values(&argv, "--host", Some("-H"));
        let serves: Vec<&str> = if hosts.is_empty() {
            vec![DEFAULT_HOST]
        } else {
            hosts.iter().map(String::as_str).collect()
        };
        let host = std::env::var("DOCKER_HOST").unwrap_or_else(|_| DEFAULT_HOST.to_string());
        if !serves.contains(&host.as_str()) {
            return Err(format!(
                "DOCKER_HOST {host} is not the recorded dockerd's (it serves {serves:?})"
            ));
        }
        let pidfile = option_values(&argv, "--pidfile", Some("-p"))
            .pop()
            .unwrap_or_else(|| "/var/run/docker.pid".to_string());
        let holds = std::fs::read_to_string(&pidfile).unwrap_or_default();
        if holds.trim() != pid.to_string() {
            return Err(format!(
                "{pidfile} holds '{}', not the recorded pid {pid}: another dockerd serves there",
                holds.trim()
            ));
        }
        std::fs::OpenOptions::new()
            .append(true)
            .open(&record)
            .map_err(|e| format!("cannot update {}: {e}", record.display()))?;
        Ok(Dockerd {
            record,
            pid,
            log,
            argv,
        })
    }

    /// SIGTERM, as a service manager stops the engine; waits until it has exited (it stops the
    /// containers first). Returns how long that took.
    fn stop(&self) -> Duration {
        let start = Instant::now();
        // SAFETY: kill(2) with a pid checked to be the recorded dockerd and a valid signal.
        let rc = unsafe { libc::kill(self.pid, libc::SIGTERM) };
        assert_eq!(rc, 0, "kill -TERM {}", self.pid);
        while alive(self.pid) {
            assert!(
                start.elapsed() < Duration::from_secs(90),
                "dockerd (pid {}) did not exit within 90 s of SIGTERM",
                self.pid
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        start.elapsed()
    }

    /// Starts the recorded command line again, detached (its own session, output appended to
    /// the recorded log), and records the new pid, so that the next run may restart it too.
    fn start(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .expect("open the dockerd log");
        let mut cmd = Command::new(&self.argv[0]);
        cmd.args(&self.argv[1..])
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("dup log"))
            .stderr(log);
        // SAFETY: setsid(2) is async-signal-safe; the child only calls it before exec.
        unsafe {
            cmd.pre_exec(|| {
                libc::setsid();
                Ok(())
            });
        }
        let mut child = cmd.spawn().expect("start dockerd");
        self.pid = child.id() as i32;
        // It outlives this test (init adopts it); should it exit before, it is reaped here.
        std::thread::spawn(move || child.wait());
        let mut text = format!(
            "# restarted by tests/engine_restart.rs\npid {}\nlog {}\n",
            self.pid,
            self.log.display()
        );
        for a in &self.argv {
            text.push_str(&format!("arg {a}\n"));
        }
        let tmp = self.record.with_extension("tmp");
        std::fs::write(&tmp, text).expect("write the dockerd record");
        std::fs::rename(&tmp, &self.record).expect("update the dockerd record");
    }
}

/// The engine answers (`docker version` through DOCKER_HOST).
fn engine_answers() -> bool {
    Command::new("docker")
        .args(["version", "--format", "{{.Server.Version}}"])
        .output()
        .is_ok_and(|o| o.status.success())
}

/// Stops the recorded engine and owns getting it back: if the test fails between the stop and
/// the start, dropping this starts the engine again, so that the rest of the suite has one.
struct Stopped(Dockerd);

impl Drop for Stopped {
    fn drop(&mut self) {
        if !alive(self.0.pid) {
            eprintln!("engine_restart: starting dockerd again after a failure");
            self.0.start();
        }
        let deadline = Instant::now() + Duration::from_secs(60);
        while !engine_answers() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

fn lab_file(u: &Unique) -> String {
    let p = u.prefix();
    let b = u.port_base;
    let nodes = format!(
        r#"
[node_defaults]
memory = "128M"
disk = "1G"
accel = "tcg"
power = "off"
[nodes.a]
mac = "02:aa:bb:cc:de:01"
ip = "{p}.101"
bmc_ip = "{p}.11"
ipmi_port = {a}
power_restore = "previous"
[nodes.b]
mac = "02:aa:bb:cc:de:02"
ip = "{p}.102"
bmc_ip = "{p}.12"
ipmi_port = {b_}
power_restore = "on"
[nodes.c]
mac = "02:aa:bb:cc:de:03"
ip = "{p}.103"
bmc_ip = "{p}.13"
ipmi_port = {c}
power_restore = "off"
"#,
        a = b + 10,
        b_ = b + 11,
        c = b + 12,
    );
    lab_with_services(u) + &nodes
}

/// The node's "lab: power restore: ..." lines (lab-node says one at each restarted start).
fn restore_lines(container: &str) -> Vec<String> {
    container_log(container)
        .lines()
        .filter(|l| l.contains("lab: power restore:"))
        .map(str::to_string)
        .collect()
}

const DISK: &str = "/var/lib/lab/disk.qcow2";

/// Reads 64 KiB at 1 MiB of the node's disk (shared with a running QEMU) and checks every byte
/// is `pattern`; true if so.
fn disk_holds(container: &str, pattern: u8) -> bool {
    let cmd = format!("read -P {pattern:#04x} 1M 64k");
    let out = Command::new("docker")
        .args([
            "exec", container, "qemu-io", "-r", "-U", "-f", "qcow2", "-c",
        ])
        .args([&cmd, DISK])
        .output()
        .expect("docker exec qemu-io");
    let text = format!("{}{}", stdout(&out), stderr(&out));
    assert!(
        text.contains("read 65536/65536 bytes"),
        "{container}: {cmd}: {text}"
    );
    out.status.success() && !text.contains("Pattern verification failed")
}

/// Status as `lab status --json` says: (container state, power) per node, and the services'
/// states.
fn status(lab: &TestLab) -> (Vec<(String, String, String)>, Vec<String>) {
    let out = lab.lab(&["status", "--json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("status json");
    let nodes = v["nodes"]
        .as_array()
        .expect("nodes")
        .iter()
        .map(|n| {
            let s = |k: &str| n[k].as_str().unwrap_or("").to_string();
            (s("name"), s("state"), s("power"))
        })
        .collect();
    let services = v["services"]
        .as_array()
        .expect("services")
        .iter()
        .map(|s| s["state"].as_str().unwrap_or("").to_string())
        .collect();
    (nodes, services)
}

#[test]
fn a_lab_comes_back_from_an_engine_restart() {
    let Some(_engine) = engine_or_skip("engine_restart") else {
        return;
    };
    let dockerd = match Dockerd::recorded() {
        Ok(d) => d,
        Err(why) => {
            eprintln!(
                "engine_restart: skipped: the engine is not one this test started, so it is \
                 not restarted: {why}"
            );
            return;
        }
    };
    let u = unique("er");
    let lab = TestLab::new(&u.name, &lab_file(&u));
    // (node, BMC port, disk pattern, power before, power after, what lab-node says at restart);
    // the policies are in lab_file: a previous, b on, c off.
    let nodes = [
        (
            "a",
            u.port_base + 10,
            0xa5u8,
            "on",
            "on",
            "policy previous, was on: powering on",
        ),
        (
            "b",
            u.port_base + 11,
            0xb5,
            "off",
            "on",
            "policy on, was off: powering on",
        ),
        (
            "c",
            u.port_base + 12,
            0xc5,
            "on",
            "off",
            "policy off, was on: staying off",
        ),
    ];
    let container = |n: &str| format!("{}-{n}", u.name);

    let up = lab.lab(&["up"]);
    assert!(up.status.success(), "{}", stderr(&up));
    for &(n, port, pattern, before, _, _) in &nodes {
        wait_power(port, "off", Duration::from_secs(20));
        // The disk is written while its VM is off (QEMU holds the image's write lock).
        let cmd = format!("write -P {pattern:#04x} 1M 64k");
        let out = docker(&[
            "exec",
            &container(n),
            "qemu-io",
            "-f",
            "qcow2",
            "-c",
            &cmd,
            DISK,
        ]);
        assert!(
            stdout(&out).contains("wrote 65536/65536 bytes"),
            "{}",
            stdout(&out)
        );
        assert!(disk_holds(&container(n), pattern));
        assert!(
            !disk_holds(&container(n), !pattern),
            "the disk check sees a wrong pattern"
        );
        if before == "on" {
            let on = ipmitool(port, &["chassis", "power", "on"]);
            assert!(on.status.success(), "{}", stderr(&on));
            wait_power(port, "on", Duration::from_secs(20));
        }
        assert!(restore_lines(&container(n)).is_empty());
    }
    let (seen, _) = status(&lab);
    let powers: Vec<_> = seen
        .iter()
        .map(|(n, _, p)| (n.as_str(), p.as_str()))
        .collect();
    assert_eq!(powers, [("a", "on"), ("b", "off"), ("c", "on")]);

    // The restart.
    let mut stopped = Stopped(dockerd);
    let stop_took = stopped.0.stop();
    assert!(
        !engine_answers(),
        "the engine still answers after its dockerd exited"
    );
    let started = Instant::now();
    stopped.0.start();
    while !engine_answers() {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "the engine did not answer within 60 s of its start"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let engine_took = started.elapsed();
    let mut answered = Vec::new();
    for &(n, port, ..) in &nodes {
        while power(port).is_none() {
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "the BMC of node {n} (port {port}) did not answer within 30 s of the engine's start"
            );
            std::thread::sleep(Duration::from_millis(200));
        }
        answered.push(started.elapsed());
    }
    let bmcs_took = answered.iter().max().copied().unwrap_or_default();
    eprintln!(
        "engine_restart: dockerd stopped (containers included) in {:.1} s; after its start the \
         engine answered in {:.1} s and all {} BMCs in {:.1} s",
        stop_took.as_secs_f64(),
        engine_took.as_secs_f64(),
        nodes.len(),
        bmcs_took.as_secs_f64()
    );
    drop(stopped);

    // Each node's power is what its policy says, lab-node said why, and status agrees.
    for &(n, port, _, _, after, line) in &nodes {
        let deadline = Instant::now() + Duration::from_secs(30);
        let lines = loop {
            let lines = restore_lines(&container(n));
            if !lines.is_empty() || Instant::now() > deadline {
                break lines;
            }
            std::thread::sleep(Duration::from_millis(300));
        };
        assert_eq!(lines.len(), 1, "node {n}: {lines:?}");
        assert!(lines[0].contains(line), "node {n}: {}", lines[0]);
        wait_power(port, after, Duration::from_secs(30));
    }
    std::thread::sleep(Duration::from_secs(2));
    for &(n, port, _, _, after, _) in &nodes {
        assert_eq!(
            power(port).as_deref(),
            Some(after),
            "node {n} changed its power"
        );
    }
    let (seen, services) = status(&lab);
    assert_eq!(services, ["running", "running"]);
    let want: Vec<_> = nodes
        .iter()
        .map(|&(n, _, _, _, after, _)| (n.to_string(), "running".to_string(), after.to_string()))
        .collect();
    assert_eq!(seen, want);

    // The disks are the same disks.
    for &(n, _, pattern, ..) in &nodes {
        assert!(
            disk_holds(&container(n), pattern),
            "node {n}'s disk lost what was written"
        );
    }
    let down = lab.lab(&["down", "--volumes"]);
    assert!(down.status.success(), "{}", stderr(&down));
}
