//! Live soak: 100 power cycles of one node over IPMI (`ipmitool chassis power cycle` against its
//! published BMC port, each cycle sent once the previous boot has started and the BMC says the
//! power is on, as a client would), while another thread polls `lab status --json` without
//! pause. Every cycle must be a new boot (one new "lab: power on" line of lab-vm, which runs once
//! per QEMU start, in the node container's log), and the node container's memory (less page
//! cache, which grows with the files the container reads and writes and which the kernel
//! reclaims), open files and processes after the last cycle must be where they were after the
//! first few cycles.

mod common;

use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::*;

const CYCLES: usize = 100;
/// Status polls that must have answered on or off while the cycles ran.
const MIN_POLLS: usize = 10;
/// Cycles before the first measurement: the first boots fill caches and lazily made state.
const WARMUP: usize = 5;
/// How long after a power on the container is measured: the VM's firmware has started and its
/// memory settled (see `measure`).
const SETTLE: Duration = Duration::from_secs(6);

fn lab_file(u: &Unique) -> String {
    let p = u.prefix();
    let node = format!(
        r#"
[nodes.n]
mac = "02:aa:bb:cc:df:01"
ip = "{p}.100"
bmc_ip = "{p}.6"
ipmi_port = {ipmi}
memory = "128M"
disk = "1G"
accel = "tcg"
power = "on"
"#,
        ipmi = u.port_base + 10,
    );
    lab_with_services(u) + &node
}

/// QEMU starts so far: lab-vm says "lab: power on: qemu ..." once per power on, just before it
/// execs QEMU. (lab-node's "lab: power on sent to the BMC" is not one.)
fn boots(container: &str) -> usize {
    container_log(container)
        .lines()
        .filter(|l| l.starts_with("lab: power on: qemu"))
        .count()
}

/// One process of the container, as the host sees it.
#[derive(Debug)]
struct Proc {
    pid: u32,
    comm: String,
    fds: usize,
    rss_kib: u64,
}

/// The node container measured from the host: its memory, and its processes with their open
/// files.
#[derive(Debug)]
struct Sample {
    memory: Memory,
    procs: Vec<Proc>,
}

/// A container's memory in bytes, from its cgroup (v1 or v2).
#[derive(Debug)]
struct Memory {
    /// As `docker stats` counts it: the cgroup's usage less its inactive file cache. Still in it:
    /// active page cache of files the container reads and writes, which the kernel may reclaim.
    stats: u64,
    /// The usage less all page cache: anonymous and kernel memory, what a leak would grow.
    unreclaimable: u64,
}

impl Sample {
    fn fds(&self) -> usize {
        self.procs.iter().map(|p| p.fds).sum()
    }
}

fn stat_value(stat: &str, key: &str) -> u64 {
    stat.lines()
        .find_map(|l| l.strip_prefix(key)?.strip_prefix(' ')?.trim().parse().ok())
        .unwrap_or(0)
}

/// The container's memory, from its cgroup (v1 or v2) found through its first process.
fn container_memory(container: &str) -> Memory {
    let out = docker(&["inspect", "-f", "{{.State.Pid}}", container]);
    let pid = stdout(&out).trim().to_string();
    let cgroups = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).expect("cgroup");
    let v1 = cgroups.lines().find_map(|l| {
        let mut f = l.splitn(3, ':');
        let (_, ctl, path) = (f.next()?, f.next()?, f.next()?);
        ctl.split(',')
            .any(|c| c == "memory")
            .then(|| path.to_string())
    });
    let read = |p: String| std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{p}: {e}"));
    if let Some(path) = v1 {
        let dir = format!("/sys/fs/cgroup/memory{path}");
        let usage: u64 = read(format!("{dir}/memory.usage_in_bytes"))
            .trim()
            .parse()
            .expect("memory.usage_in_bytes");
        let stat = read(format!("{dir}/memory.stat"));
        Memory {
            stats: usage.saturating_sub(stat_value(&stat, "total_inactive_file")),
            unreclaimable: usage.saturating_sub(stat_value(&stat, "total_cache")),
        }
    } else {
        let path = cgroups
            .lines()
            .find_map(|l| l.strip_prefix("0::"))
            .expect("a cgroup v2 path");
        let dir = format!("/sys/fs/cgroup{path}");
        let usage: u64 = read(format!("{dir}/memory.current"))
            .trim()
            .parse()
            .expect("memory.current");
        let stat = read(format!("{dir}/memory.stat"));
        Memory {
            stats: usage.saturating_sub(stat_value(&stat, "inactive_file")),
            unreclaimable: usage.saturating_sub(stat_value(&stat, "file")),
        }
    }
}

fn sample(container: &str) -> Sample {
    let out = docker(&["top", container, "-eo", "pid"]);
    let procs = stdout(&out)
        .lines()
        .skip(1)
        .filter_map(|l| l.trim().parse::<u32>().ok())
        .filter_map(|pid| {
            let fds = std::fs::read_dir(format!("/proc/{pid}/fd")).ok()?.count();
            let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).ok()?;
            let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
            let rss_kib = status
                .lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
                .unwrap_or(0);
            Some(Proc {
                pid,
                comm: comm.trim().to_string(),
                fds,
                rss_kib,
            })
        })
        .collect();
    Sample {
        memory: container_memory(container),
        procs,
    }
}

/// Measures the container `SETTLE` after the power on that made `booted` boots, with the
/// status poller held off (a poll may `docker exec` into the container).
fn measure(container: &str, booted: Instant, poll_lock: &Mutex<()>) -> Sample {
    std::thread::sleep(SETTLE.saturating_sub(booted.elapsed()));
    let _held = poll_lock.lock().unwrap_or_else(|e| e.into_inner());
    let s = sample(container);
    eprintln!(
        "soak: memory {:.1} MiB as docker stats counts it, {:.1} MiB without page cache, {} open \
         files, processes:",
        mib(s.memory.stats),
        mib(s.memory.unreclaimable),
        s.fds()
    );
    for p in &s.procs {
        eprintln!(
            "  {:>8} {:<18} {:>3} fds {:>7} KiB RSS",
            p.pid, p.comm, p.fds, p.rss_kib
        );
    }
    s
}

/// One power cycle; waits for the new boot (a new lab-vm "power on" line) and for the BMC to
/// say the power is on. Returns when the new boot was seen.
fn cycle(port: u16, container: &str, n: usize) -> Instant {
    let before = boots(container);
    let out = ipmitool(port, &["chassis", "power", "cycle"]);
    assert!(
        out.status.success() && stdout(&out).contains("Cycle"),
        "cycle {n}: {}{}",
        stdout(&out),
        stderr(&out)
    );
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut booted = None;
    loop {
        let now = boots(container);
        assert!(now <= before + 1, "cycle {n} started {} VMs", now - before);
        if now == before + 1 {
            let at = *booted.get_or_insert_with(Instant::now);
            if power(port).as_deref() == Some("on") {
                return at;
            }
        }
        assert!(
            Instant::now() < deadline,
            "cycle {n}: no new boot with power on within 60 s ({} boots, {before} before)",
            now
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn mib(bytes: u64) -> f64 {
    bytes as f64 / 1048576.0
}

fn within_10_percent(before: f64, after: f64) -> bool {
    (after - before).abs() <= 0.10 * before
}

#[test]
fn a_hundred_power_cycles_leak_nothing() {
    let Some(_engine) = engine_or_skip("soak") else {
        return;
    };
    let u = unique("sk");
    let lab = TestLab::new(&u.name, &lab_file(&u));
    let port = u.port_base + 10;
    let container = format!("{}-n", u.name);
    let up = lab.lab(&["up"]);
    assert!(up.status.success(), "{}", stderr(&up));

    // `lab status --json` in a loop, counting what it says.
    let stop = Arc::new(AtomicBool::new(false));
    let poll_lock = Arc::new(Mutex::new(()));
    let polls = Arc::new(AtomicUsize::new(0));
    let poller = {
        let (stop, poll_lock, polls) = (stop.clone(), poll_lock.clone(), polls.clone());
        let (dir, file) = (lab.dir.path().to_path_buf(), lab.file());
        std::thread::spawn(move || {
            let mut powers: Vec<String> = Vec::new();
            let mut failures: Vec<String> = Vec::new();
            while !stop.load(Ordering::SeqCst) {
                // Out of the lock between polls, so that `measure` gets it.
                std::thread::sleep(Duration::from_millis(50));
                let _held = poll_lock.lock().unwrap_or_else(|e| e.into_inner());
                let out = Command::new(env!("CARGO_BIN_EXE_lab"))
                    .current_dir(&dir)
                    .arg("-f")
                    .arg(&file)
                    .args(["status", "--json"])
                    .env("CI", "true")
                    .output()
                    .expect("run lab status");
                polls.fetch_add(1, Ordering::SeqCst);
                let parsed = serde_json::from_slice::<serde_json::Value>(&out.stdout);
                match parsed {
                    Ok(v) if out.status.success() => {
                        powers.push(v["nodes"][0]["power"].as_str().unwrap_or("").to_string())
                    }
                    _ => failures.push(format!("{:?}: {}", out.status.code(), stderr(&out))),
                }
            }
            (powers, failures)
        })
    };

    // `up` returns once the BMC says the power is on; lab-vm logs QEMU's start a moment later.
    let waited = Instant::now();
    let mut boots_at_start = boots(&container);
    while boots_at_start == 0 && waited.elapsed() < Duration::from_secs(60) {
        std::thread::sleep(Duration::from_millis(200));
        boots_at_start = boots(&container);
    }
    assert!(boots_at_start >= 1, "the node did not power on at up");
    let mut cycles_took = Duration::ZERO;
    let mut cycles = |from: usize, to: usize| {
        let mut last = Instant::now();
        for n in from..=to {
            let sent = Instant::now();
            last = cycle(port, &container, n);
            cycles_took += sent.elapsed();
        }
        last
    };
    let first = measure(&container, cycles(1, WARMUP), &poll_lock);
    let end = measure(&container, cycles(WARMUP + 1, CYCLES), &poll_lock);
    stop.store(true, Ordering::SeqCst);
    let (powers, failures) = poller.join().expect("poller");
    let booted = boots(&container) - boots_at_start;

    let count = |p: &str| powers.iter().filter(|x| *x == p).count();
    let (on, off, unknown) = (count("on"), count("off"), count("unknown"));
    eprintln!(
        "soak: {CYCLES} cycles in {:.0} s ({:.1} s each), {booted} new boots; {} status polls \
         (power on {on}, off {off}, unknown {unknown}, failed {}); memory {:.1} -> {:.1} MiB \
         without page cache, {:.1} -> {:.1} MiB as docker stats counts it, open files {} -> {}, processes {} -> {} (first measured after {WARMUP} cycles, {} s \
         after the power on)",
        cycles_took.as_secs_f64(),
        cycles_took.as_secs_f64() / CYCLES as f64,
        polls.load(Ordering::SeqCst),
        failures.len(),
        mib(first.memory.unreclaimable),
        mib(end.memory.unreclaimable),
        mib(first.memory.stats),
        mib(end.memory.stats),
        first.fds(),
        end.fds(),
        first.procs.len(),
        end.procs.len(),
        SETTLE.as_secs(),
    );
    assert_eq!(booted, CYCLES, "every cycle is one new boot");
    assert!(failures.is_empty(), "status failed: {failures:#?}");
    // How many polls fit in the run depends on the build and the machine's load (a debug `lab`
    // and lab-bmcd polled 28 times in 135 s on a loaded CI machine, a release build about 1,800
    // times): what counts is that status was asked all through the cycles and never failed.
    assert!(
        on + off >= MIN_POLLS,
        "fewer than {MIN_POLLS} status polls during the cycles: {powers:?}"
    );
    assert_eq!(unknown, 0, "status lost the BMC during a cycle");
    assert!(
        within_10_percent(
            first.memory.unreclaimable as f64,
            end.memory.unreclaimable as f64
        ),
        "memory grew: {first:#?} -> {end:#?}"
    );
    assert!(
        within_10_percent(first.fds() as f64, end.fds() as f64),
        "open files grew: {first:#?} -> {end:#?}"
    );
    let comms = |s: &Sample| {
        let mut c: Vec<String> = s.procs.iter().map(|p| p.comm.clone()).collect();
        c.sort();
        c
    };
    assert_eq!(
        comms(&first),
        comms(&end),
        "the container's processes changed"
    );
    let down = lab.lab(&["down", "--volumes"]);
    assert!(down.status.success(), "{}", stderr(&down));
}
