//! Shared helpers of the live tests: unique names, subnets and ports per test, running the `lab`
//! binary, and cleanup that runs even when a test fails.

#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{Ipv4Addr, TcpListener, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use metal_lab::engine::{DockerEngine, Engine};

/// The live tests need a Docker engine. Without one they fail, unless `LAB_SKIP_LIVE=1`, in which
/// case they say so and pass (CI never sets it).
pub fn engine_or_skip(test: &str) -> Option<DockerEngine> {
    let rt = tokio::runtime::Runtime::new().expect("tokio runtime");
    match rt.block_on(DockerEngine::connect()) {
        Ok(e) => Some(e),
        Err(err) if std::env::var("LAB_SKIP_LIVE").as_deref() == Ok("1") => {
            eprintln!("{test}: skipped (LAB_SKIP_LIVE=1 and no engine: {err})");
            None
        }
        Err(err) => panic!("{test}: this live test needs a Docker engine ({err}); start one or set LAB_SKIP_LIVE=1 to skip live tests"),
    }
}

static SEQ: AtomicU32 = AtomicU32::new(0);

/// A name, a /24 subnet in 10.200-249.x.0 and a block of free host ports unique to this test.
pub struct Unique {
    pub name: String,
    pub net: [u8; 2],
    pub port_base: u16,
}

pub fn unique(tag: &str) -> Unique {
    let pid = std::process::id();
    let seq = SEQ.fetch_add(1, Ordering::SeqCst);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    let mix = pid.wrapping_mul(2654435761) ^ nanos ^ (seq << 20);
    let net = {
        static NETS: std::sync::Mutex<Vec<[u8; 2]>> = std::sync::Mutex::new(Vec::new());
        let mut nets = NETS.lock().unwrap_or_else(|e| e.into_inner());
        let mut k = mix;
        let mut net = [200 + (k % 50) as u8, ((k >> 8) % 250) as u8 + 1];
        while nets.contains(&net) {
            k = k.wrapping_mul(2654435761).wrapping_add(1);
            net = [200 + (k % 50) as u8, ((k >> 8) % 250) as u8 + 1];
        }
        nets.push(net);
        net
    };
    let port_base = free_port_block(20000 + ((mix >> 3) % 400) as u16 * 100, 20);
    Unique {
        name: format!("lt{tag}{}{seq}", pid % 10000),
        net,
        port_base,
    }
}

/// Port blocks already handed to a test of this process: tests run in parallel and bind their
/// ports only later, so a block that is free now may be another test's.
static HANDED_OUT: std::sync::Mutex<Vec<u16>> = std::sync::Mutex::new(Vec::new());

/// The first block of `n` consecutive ports (TCP and UDP) that are free on 127.0.0.1 and not
/// handed to another test of this process.
fn free_port_block(start: u16, n: u16) -> u16 {
    let mut base = start;
    let mut handed = HANDED_OUT.lock().unwrap_or_else(|e| e.into_inner());
    loop {
        let free = !handed.contains(&base)
            && (base..base + n).all(|p| {
                TcpListener::bind(("127.0.0.1", p)).is_ok()
                    && UdpSocket::bind(("127.0.0.1", p)).is_ok()
            });
        if free {
            handed.push(base);
            return base;
        }
        base = if base > 60000 { 20000 } else { base + n };
    }
}

impl Unique {
    pub fn ip(&self, host: u8) -> Ipv4Addr {
        Ipv4Addr::new(10, self.net[0], self.net[1], host)
    }
    pub fn subnet(&self) -> String {
        format!("10.{}.{}.0/24", self.net[0], self.net[1])
    }
    pub fn prefix(&self) -> String {
        format!("10.{}.{}", self.net[0], self.net[1])
    }
}

/// A lab directory with a web root, and a guard that takes the lab down when dropped.
pub struct TestLab {
    pub dir: tempfile::TempDir,
    pub name: String,
}

impl TestLab {
    pub fn new(name: &str, toml: &str) -> TestLab {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir_all(dir.path().join("webroot")).expect("webroot");
        std::fs::write(
            dir.path().join("webroot/hello.txt"),
            "hello from the lab web root\n",
        )
        .expect("write");
        std::fs::write(dir.path().join("lab.toml"), toml).expect("write lab.toml");
        TestLab {
            dir,
            name: name.to_string(),
        }
    }

    pub fn file(&self) -> PathBuf {
        self.dir.path().join("lab.toml")
    }

    pub fn write(&self, toml: &str) {
        std::fs::write(self.file(), toml).expect("write lab.toml");
    }

    /// Runs `lab -f <file> ARGS` with CI-style plain output.
    pub fn lab(&self, args: &[&str]) -> Output {
        lab_in(self.dir.path(), &self.file(), args)
    }
}

pub fn lab_in(dir: &Path, file: &Path, args: &[&str]) -> Output {
    let out = Command::new(env!("CARGO_BIN_EXE_lab"))
        .current_dir(dir)
        .arg("-f")
        .arg(file)
        .args(args)
        .env("CI", "true")
        .output()
        .expect("run lab");
    eprintln!(
        "$ lab {}\n--- status {:?}\n--- stdout\n{}--- stderr\n{}",
        args.join(" "),
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

impl Drop for TestLab {
    fn drop(&mut self) {
        let _ = Command::new(env!("CARGO_BIN_EXE_lab"))
            .args(["down", "--volumes", "--name", &self.name])
            .output();
    }
}

/// The Python of the venv the tests' Python clients live in (`LAB_VENV`, default `/opt/lab-venv`:
/// pyghmi, sushy, DMTF's tools, python-ironicclient; `.ci/run` makes it); panics when missing.
pub fn venv_python() -> PathBuf {
    let venv = std::env::var("LAB_VENV").unwrap_or_else(|_| "/opt/lab-venv".into());
    let python = PathBuf::from(venv).join("bin/python");
    assert!(
        python.exists(),
        "{} is missing: `.ci/run` makes the venv with the Python clients (set LAB_VENV to use another)",
        python.display()
    );
    python
}

/// Runs a pyghmi script of tests/support with the venv's Python against the BMC on
/// 127.0.0.1:`port` (user and password admin) and returns the JSON of its last line; panics with
/// its output when it fails or prints none.
pub fn pyghmi_script(script: &str, port: u16) -> serde_json::Value {
    let script = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/support")
        .join(script);
    let out = Command::new(venv_python())
        .arg(&script)
        .args(["127.0.0.1", &port.to_string(), "admin", "admin"])
        .output()
        .unwrap_or_else(|e| panic!("{} cannot run: {e}", script.display()));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{}: {text}", script.display());
    serde_json::from_str(
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .last()
            .unwrap_or(""),
    )
    .unwrap_or_else(|e| panic!("pyghmi printed no JSON ({e}): {text}"))
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Everything on the engine carrying the lab's label: (containers, networks, volumes).
pub fn leftovers(engine: &DockerEngine, lab: &str) -> (usize, usize, usize) {
    use metal_lab::engine::LabelFilter;
    let rt = tokio::runtime::Runtime::new().expect("tokio runtime");
    let f = LabelFilter::lab(lab);
    rt.block_on(async {
        let c = engine
            .list_containers(&f)
            .await
            .expect("list containers")
            .len();
        let n = engine.find_networks(&f).await.expect("list networks").len();
        let v = engine.list_volumes(&f).await.expect("list volumes").len();
        (c, n, v)
    })
}

/// The head of a lab file for `u`: `[lab]`, `[network]`, and dhcp (.2) and web (.3) services;
/// a test adds its nodes.
pub fn lab_with_services(u: &Unique) -> String {
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
dhcp_range = ["{p}.100", "{p}.200"]
[services.web]
kind = "httpd"
ip = "{p}.3"
root = "webroot"
"#,
        name = u.name,
        subnet = u.subnet(),
    )
}

/// `ipmitool` (lanplus, cipher suite 3) against a BMC published on 127.0.0.1:`port`, as the
/// default admin/admin.
pub fn ipmitool(port: u16, args: &[&str]) -> Output {
    Command::new("ipmitool")
        .args(["-I", "lanplus", "-C", "3", "-H", "127.0.0.1"])
        .args(["-p", &port.to_string(), "-U", "admin", "-P", "admin"])
        .args(["-R", "2", "-N", "1"])
        .args(args)
        .output()
        .expect("ipmitool")
}

/// "on" or "off" as the BMC at `port` says, or None while it does not answer.
pub fn power(port: u16) -> Option<String> {
    let out = ipmitool(port, &["chassis", "power", "status"]);
    if !out.status.success() {
        return None;
    }
    stdout(&out)
        .trim()
        .strip_prefix("Chassis Power is ")
        .map(str::to_string)
}

pub fn wait_power(port: u16, want: &str, within: std::time::Duration) {
    let deadline = std::time::Instant::now() + within;
    while power(port).as_deref() != Some(want) {
        assert!(
            std::time::Instant::now() < deadline,
            "power at port {port} not {want} within {within:?}"
        );
        std::thread::sleep(std::time::Duration::from_millis(300));
    }
}

/// `docker ARGS` (through DOCKER_HOST), which must succeed.
pub fn docker(args: &[&str]) -> Output {
    let out = Command::new("docker").args(args).output().expect("docker");
    assert!(
        out.status.success(),
        "docker {}: {}",
        args.join(" "),
        stderr(&out)
    );
    out
}

/// A container's whole log, stdout and stderr.
pub fn container_log(container: &str) -> String {
    let out = docker(&["logs", container]);
    format!("{}{}", stdout(&out), stderr(&out))
}

/// A child process whose output is collected in the background, fed on its stdin until its
/// output shows `want`.
pub struct Interactive {
    pub child: Child,
    output: Arc<Mutex<Vec<u8>>>,
}

impl Interactive {
    pub fn spawn(cmd: &mut Command) -> Interactive {
        let mut child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn");
        let output = Arc::new(Mutex::new(Vec::new()));
        let mut out = child.stdout.take().expect("stdout");
        let sink = output.clone();
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = out.read(&mut buf) {
                if n == 0 {
                    break;
                }
                sink.lock().expect("lock").extend_from_slice(&buf[..n]);
            }
        });
        Interactive { child, output }
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.output.lock().expect("lock")).into_owned()
    }

    /// Types `line` (again every few seconds: the console may not be listening yet) until
    /// `want` shows up in the output.
    pub fn type_until(&mut self, line: &str, want: &str, deadline: Duration) -> bool {
        let start = Instant::now();
        while start.elapsed() < deadline {
            self.send(line);
            for _ in 0..30 {
                if self.text().contains(want) {
                    return true;
                }
                std::thread::sleep(Duration::from_millis(100));
            }
        }
        false
    }

    /// Waits up to `deadline` for `want` in the output, typing nothing.
    pub fn wait_for(&self, want: &str, deadline: Duration) -> bool {
        let start = Instant::now();
        while start.elapsed() < deadline {
            if self.text().contains(want) {
                return true;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        false
    }

    pub fn send(&mut self, bytes: &str) {
        let stdin = self.child.stdin.as_mut().expect("stdin");
        let _ = stdin.write_all(bytes.as_bytes());
        let _ = stdin.flush();
    }

    /// Closes stdin and waits up to `deadline` for the process to exit on its own.
    pub fn close_and_wait(mut self, deadline: Duration) -> Option<std::process::ExitStatus> {
        drop(self.child.stdin.take());
        let start = Instant::now();
        while start.elapsed() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        None
    }
}

/// The profile `smoke`: the smoke OS's kernel and initrd from the web root, reporting in.
pub const SMOKE_PROFILE: &str = r#"
[profiles.smoke]
kernel = "smoke/vmlinuz"
initrd = "smoke/initrd"
cmdline = "console=ttyS0,115200n8 no_timer_check lab.node={{ node.name }} lab.report={{ report_url }} quiet"
"#;

/// A lab of dnsmasq, httpd and one node `n` (MAC `mac`, BMC published on `port_base`) that
/// PXE-boots the smoke OS under TCG.
pub fn smoke_node_lab(u: &Unique, mac: &str) -> String {
    lab_with_services(u) + SMOKE_PROFILE + &tcg_node(u, mac, "disk") + "profile = \"smoke\"\n"
}

/// The table of a small TCG node `n` (MAC `mac`, address .100, BMC at .6 published on
/// `port_base`) that boots `boot`; more keys of it may follow.
pub fn tcg_node(u: &Unique, mac: &str, boot: &str) -> String {
    let p = u.prefix();
    format!(
        r#"
[nodes.n]
mac = "{mac}"
ip = "{p}.100"
bmc_ip = "{p}.6"
ipmi_port = {ipmi}
memory = "256M"
disk = "1G"
accel = "tcg"
boot = "{boot}"
"#,
        ipmi = u.port_base,
    )
}

/// An HTTPS client for a BMC's Redfish service: takes its self-signed certificate and hands back
/// every status; `timeout` for each whole request.
pub fn bmc_agent(timeout: Duration) -> ureq::Agent {
    ureq::Agent::config_builder()
        .tls_config(
            ureq::tls::TlsConfig::builder()
                .disable_verification(true)
                .build(),
        )
        .http_status_as_error(false)
        .timeout_global(Some(timeout))
        .build()
        .new_agent()
}
