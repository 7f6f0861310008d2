//! A real installer: `labs/debian.toml` PXE-boots Debian 12's netboot installer, which installs
//! Debian to the node's disk from the preseed lab renders for it, through the lab's apt-cacher-ng;
//! the node reboots from its disk and the installed system reports `up`.
//!
//! The rendering test always runs. The install is opt-in (`LAB_SLOW_TESTS=1`): under TCG it
//! takes a long while and downloads a few hundred MB from the Debian mirror, so it is not part of
//! `cargo test` in CI; without the variable it says so and passes.

mod common;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::*;
use metal_lab::engine::Engine;

/// How long the install may take, from `lab up` to the installed system's report: generous, as
/// TCG on a shared 2-core machine is slow (see the README's benchmarks for measured times).
const INSTALL_DEADLINE: Duration = Duration::from_secs(4 * 3600);

const LAB_FILE: &str = "labs/debian.toml";

fn rendered(files: &[metal_lab::render::RenderedFile], path: &str) -> String {
    files
        .iter()
        .find(|f| f.path == Path::new(path))
        .unwrap_or_else(|| panic!("{path} is not rendered"))
        .contents
        .clone()
}

#[test]
fn the_debian_lab_renders_a_preseed_and_a_late_script_per_node() {
    let lab = metal_lab::lab::load(Path::new(LAB_FILE)).unwrap_or_else(|d| panic!("{d}"));
    let os = metal_lab::smoke::DEBIAN_INSTALLER;
    assert_eq!(
        metal_lab::smoke::profiles_booting(&lab, &os),
        ["debian-install"]
    );
    let asset = metal_lab::smoke::built(&lab, &os).expect("the installer is a built asset");
    assert_eq!(asset.image, "metal-lab/debian-installer:latest");
    assert!(
        asset.dest.ends_with("webroot/debian-installer"),
        "{asset:?}"
    );

    let files = metal_lab::render::render(&lab).expect("render");
    let script = rendered(&files, "web/nodes/02-de-b1-00-00-01.ipxe");
    for want in [
        "kernel http://192.168.27.3/debian-installer/linux initrd=initrd auto=true",
        "auto=true priority=critical url=http://192.168.27.3/lab/nodes/node-1/preseed.cfg",
        "hostname=node-1 domain=debian.lab",
        "initrd --name initrd http://192.168.27.3/debian-installer/initrd.gz",
    ] {
        assert!(script.contains(want), "no `{want}` in\n{script}");
    }
    let preseed = rendered(&files, "web/nodes/node-1/preseed.cfg");
    for want in [
        "d-i netcfg/hostname string node-1\n",
        // The mirror is the apt-cache service (by address), whatever it forwards to.
        "d-i mirror/http/hostname string 192.168.27.5:3142\n",
        "d-i mirror/http/directory string /debian\n",
        "d-i mirror/suite string bookworm\n",
        "d-i passwd/root-password password labpassword\n",
        "debconf-set partman-auto/disk \"$(list-devices disk | head -n1)\"",
        "d-i preseed/late_command string wget -q -O /tmp/lab-late.sh http://192.168.27.3/lab/nodes/node-1/late.sh && sh /tmp/lab-late.sh\n",
    ] {
        assert!(preseed.contains(want), "no `{want}` in\n{preseed}");
    }
    assert!(
        !preseed.contains("deb.debian.org"),
        "no mirror host is written into the preseed:\n{preseed}"
    );
    let late = rendered(&files, "web/nodes/node-1/late.sh");
    for want in [
        "url='http://192.168.27.3/lab/report/02-de-b1-00-00-01'",
        "in-target systemctl enable lab-report.service",
        "wget -q -O /dev/null 'http://192.168.27.3/lab/report/02-de-b1-00-00-01?phase=installed'",
    ] {
        assert!(late.contains(want), "no `{want}` in\n{late}");
    }
    // No key unless DEBIAN_SSH_KEY gives one.
    if std::env::var("DEBIAN_SSH_KEY")
        .unwrap_or_default()
        .is_empty()
    {
        assert!(!late.contains("authorized_keys"), "{late}");
    }
}

/// `labs/debian.toml` for this test: its own name, subnet and host ports, a web root and the
/// apt-cache build context in the test's directory, a fresh root password and `key` for root.
fn test_lab_file(u: &Unique, password: &str, key: &str) -> String {
    let text = std::fs::read_to_string(LAB_FILE).expect("read labs/debian.toml");
    let replace = |text: String, from: &str, to: &str| {
        assert!(text.contains(from), "{LAB_FILE} has no `{from}`");
        text.replace(from, to)
    };
    let mut t = replace(text, "name = \"debian\"", &format!("name = \"{}\"", u.name));
    t = replace(t, "192.168.27.", &format!("{}.", u.prefix()));
    t = replace(t, "root = \"../webroot\"", "root = \"webroot\"");
    t = replace(t, "\"2223:22\"", &format!("\"{}:22\"", u.port_base));
    t = replace(
        t,
        "vnc_port = 5911",
        &format!("vnc_port = {}", u.port_base + 1),
    );
    t = replace(
        t,
        "ipmi_port = 633",
        &format!("ipmi_port = {}", u.port_base + 2),
    );
    t = replace(
        t,
        "\"${DEBIAN_ROOT_PASSWORD:-labpassword}\"",
        &format!("\"{password}\""),
    );
    replace(t, "\"${DEBIAN_SSH_KEY:-}\"", &format!("\"{key}\""))
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for e in std::fs::read_dir(from).expect("read dir") {
        let e = e.expect("dir entry");
        let dest = to.join(e.file_name());
        if e.file_type().expect("file type").is_dir() {
            copy_dir(&e.path(), &dest);
        } else {
            std::fs::copy(e.path(), &dest).expect("copy");
        }
    }
}

/// The web service's access log lines of `ip` (`CLIENT TIME METHOD STATUS BYTES PATH`) as
/// (status, path).
fn requests_of(web_log: &str, ip: &str) -> Vec<(String, String)> {
    web_log
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.splitn(6, ' ').collect();
            (f.len() == 6 && f[0] == ip).then(|| (f[3].to_string(), f[5].to_string()))
        })
        .collect()
}

/// Why the install cannot go on, if the mirror failed it: a file the apt-cache could not get
/// (`|E|` in its log, e.g. a udeb the mirror answers 404 for), once the installer says so on the
/// console (it then waits for someone to pick Retry).
fn mirror_failure(
    rt: &tokio::runtime::Runtime,
    engine: &metal_lab::engine::DockerEngine,
    lab: &str,
    node: &str,
) -> Option<String> {
    let tail = [
        "tail".to_string(),
        "-c".into(),
        "6000".into(),
        "/var/lib/lab/console.log".into(),
    ];
    let console = rt.block_on(engine.exec(node, &tail)).ok()?.output;
    if !console.contains("The installer failed to download a file from the mirror") {
        return None;
    }
    let cache = std::process::Command::new("docker")
        .args([
            "exec",
            &format!("{lab}-apt-cache"),
            "cat",
            "/var/log/apt-cacher-ng/apt-cacher.log",
        ])
        .output()
        .ok()?;
    let failed: Vec<String> = stdout(&cache)
        .lines()
        .filter(|l| l.contains("|E|"))
        .map(str::to_string)
        .collect();
    Some(format!(
        "the installer failed to download a file; apt-cacher-ng's failed requests:\n{}",
        failed.join("\n")
    ))
}

#[test]
fn a_node_installs_debian_with_the_netboot_installer_and_boots_it_from_disk() {
    if std::env::var("LAB_SLOW_TESTS").as_deref() != Ok("1") {
        eprintln!(
            "debian_install: skipped: the Debian install takes a long time under TCG and downloads from the Debian mirror; run it with LAB_SLOW_TESTS=1"
        );
        return;
    }
    let Some(engine) = engine_or_skip("debian_install") else {
        return;
    };
    let rt = tokio::runtime::Runtime::new().expect("tokio runtime");
    let u = unique("deb");
    let dir = tempfile::tempdir().expect("tempdir");
    let key_file: PathBuf = dir.path().join("id_ed25519");
    let keygen = std::process::Command::new("ssh-keygen")
        .args([
            "-q",
            "-t",
            "ed25519",
            "-N",
            "",
            "-C",
            "lab-debian-test",
            "-f",
        ])
        .arg(&key_file)
        .output()
        .expect("ssh-keygen");
    assert!(keygen.status.success(), "{}", stderr(&keygen));
    let key = std::fs::read_to_string(key_file.with_extension("pub")).expect("public key");
    let password = format!("pw-{}", u.name);

    let t = TestLab::new(&u.name, &test_lab_file(&u, &password, key.trim()));
    copy_dir(
        Path::new("webroot/templates/debian"),
        &t.dir.path().join("webroot/templates/debian"),
    );
    copy_dir(Path::new("labs/debian"), &t.dir.path().join("debian"));

    let dry = t.lab(&["up", "--dry-run"]);
    assert!(dry.status.success(), "{}", stderr(&dry));
    assert!(
        stdout(&dry).contains("export Debian installer (linux, initrd.gz, version) from image metal-lab/debian-installer:latest:/out"),
        "{}",
        stdout(&dry)
    );
    let started = Instant::now();
    let out = t.lab(&["up", "--timeout", "900"]);
    assert!(out.status.success(), "lab up failed: {}", stderr(&out));
    let up_returned = started.elapsed();
    let version = std::fs::read_to_string(t.dir.path().join("webroot/debian-installer/version"))
        .expect("the installer's version beside its files");
    assert!(version.starts_with("2023"), "{version}");
    for f in ["linux", "initrd.gz"] {
        let size = std::fs::metadata(t.dir.path().join("webroot/debian-installer").join(f))
            .map(|m| m.len())
            .unwrap_or(0);
        assert!(
            size > 1_000_000,
            "webroot/debian-installer/{f} has {size} bytes"
        );
    }

    let ip = u.ip(100).to_string();
    let web = format!("{}-web", u.name);
    let node = format!("{}-node-1", u.name);
    let hyph = "02-de-b1-00-00-01";
    let report = format!("/lab/report/{hyph}?phase=");
    let mut installed_at = None;
    let mut last_print = Instant::now();
    let requests = loop {
        let log = rt.block_on(engine.logs(&web, None)).expect("web logs");
        let reqs = requests_of(&log, &ip);
        if installed_at.is_none()
            && reqs
                .iter()
                .any(|(_, p)| p.starts_with(&format!("{report}installed")))
        {
            installed_at = Some(started.elapsed());
            eprintln!(
                "the installer reported after {:.0}s",
                started.elapsed().as_secs_f64()
            );
        }
        if reqs
            .iter()
            .any(|(_, p)| p.starts_with(&format!("{report}up")))
        {
            break reqs;
        }
        if let Some(why) = mirror_failure(&rt, &engine, &u.name, &node) {
            panic!(
                "the installer cannot load its components from the mirror after {:.0}s: {why}\n\
                 (the mirror must serve the installer's udebs, e.g. DEBIAN_MIRROR=http://HOST/debian for a full Debian mirror)",
                started.elapsed().as_secs_f64()
            );
        }
        if last_print.elapsed() > Duration::from_secs(300) {
            last_print = Instant::now();
            let status = t.lab(&["status"]);
            eprintln!(
                "{:.0}s: {} requests from the node so far, last: {:?}\n{}",
                started.elapsed().as_secs_f64(),
                reqs.len(),
                reqs.last(),
                stdout(&status)
            );
        }
        if started.elapsed() > INSTALL_DEADLINE {
            let argv = [
                "tail".to_string(),
                "-c".into(),
                "4000".into(),
                "/var/lib/lab/console.log".into(),
            ];
            let console = rt
                .block_on(engine.exec(&node, &argv))
                .map(|o| o.output)
                .unwrap_or_default();
            panic!(
                "the installed system did not report within {}s\n--- web log ---\n{log}\n--- console (end) ---\n{console}",
                INSTALL_DEADLINE.as_secs()
            );
        }
        std::thread::sleep(Duration::from_secs(5));
    };
    let total = started.elapsed();
    eprintln!(
        "debian_install: lab up returned after {:.1}s; installer reported after {:.0}s; the installed system reported up after {:.0}s",
        up_returned.as_secs_f64(),
        installed_at.map_or(f64::NAN, |d| d.as_secs_f64()),
        total.as_secs_f64()
    );

    // The node's requests in order: the installer over PXE, its preseed and late script, the
    // installer's report, then the installed system's, and the installer fetched once only (the
    // second boot came from the disk).
    let paths: Vec<&str> = requests.iter().map(|(_, p)| p.as_str()).collect();
    let at = |want: &str| {
        paths
            .iter()
            .position(|p| p.starts_with(want))
            .unwrap_or_else(|| panic!("the node never requested {want}: {paths:#?}"))
    };
    let order = [
        at(&format!("/lab/nodes/{hyph}.ipxe")),
        at("/debian-installer/linux"),
        at("/debian-installer/initrd.gz"),
        at("/lab/nodes/node-1/preseed.cfg"),
        at("/lab/nodes/node-1/late.sh"),
        at(&format!("{report}installed")),
        at(&format!("{report}up")),
    ];
    assert!(
        order.windows(2).all(|w| w[0] < w[1]),
        "{order:?}: {paths:#?}"
    );
    assert_eq!(
        paths
            .iter()
            .filter(|p| p.starts_with("/debian-installer/linux"))
            .count(),
        1,
        "the node PXE-booted the installer again instead of its disk: {paths:#?}"
    );
    let up = paths[order[6]];
    assert!(
        up.contains("&boot=disk&hostname=node-1&os=debian-12."),
        "{up}"
    );
    assert!(
        requests.iter().all(|(status, _)| status.starts_with('2')),
        "{requests:#?}"
    );

    // The reboot between the two reports is the guest's own, as QEMU saw it.
    let node_log = container_log(&node);
    assert!(node_log.contains("lab: vm: reset by=guest"), "{node_log}");

    // lab sees the node up.
    let status = t.lab(&["status", "--json"]);
    assert!(status.status.success(), "{}", stderr(&status));
    let json: serde_json::Value = serde_json::from_slice(&status.stdout).expect("status json");
    let n = json["nodes"]
        .as_array()
        .and_then(|a| a.iter().find(|n| n["name"] == "node-1"))
        .unwrap_or_else(|| panic!("no node-1 in {json}"));
    assert_eq!(n["phase"], "up", "{n}");

    // Packages came through the lab's cache: files it fetched from the mirror (`I`).
    let cache_log = docker(&[
        "exec",
        &format!("{}-apt-cache", u.name),
        "cat",
        "/var/log/apt-cacher-ng/apt-cacher.log",
    ]);
    let fetched_debs = stdout(&cache_log)
        .lines()
        .filter(|l| l.contains("|I|") && l.ends_with(".deb"))
        .count();
    assert!(
        fetched_debs >= 50,
        "{fetched_debs} packages through apt-cacher-ng:\n{}",
        stdout(&cache_log)
    );

    // The installed system, over SSH from the host with the key the preseed installed.
    let ssh = std::process::Command::new("ssh")
        .args(["-i"])
        .arg(&key_file)
        .args([
            "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=no",
            "-o", "UserKnownHostsFile=/dev/null", "-o", "ConnectTimeout=30",
            &format!("root@{ip}"),
            "hostname; cat /etc/debian_version; findmnt -no SOURCE /; systemctl is-active lab-report; cat /etc/apt/sources.list",
        ])
        .output()
        .expect("ssh");
    let said = stdout(&ssh);
    assert!(ssh.status.success(), "ssh: {}\n{said}", stderr(&ssh));
    let lines: Vec<&str> = said.lines().collect();
    assert_eq!(lines[0], "node-1", "{said}");
    assert!(lines[1].starts_with("12."), "{said}");
    assert_eq!(lines[2], "/dev/sda1", "{said}");
    assert_eq!(lines[3], "active", "{said}");
    assert!(
        said.contains(&format!("http://{}.5:3142/debian", u.prefix())),
        "the installed system's apt uses the lab's cache: {said}"
    );
    eprintln!("debian_install: the installed system says:\n{said}");

    let out = t.lab(&["down", "--volumes"]);
    assert!(out.status.success(), "lab down failed: {}", stderr(&out));
    assert_eq!(leftovers(&engine, &u.name), (0, 0, 0));
}
