//! Readiness: each service and BMC answers its own protocol, checked the way a client would,
//! from the host over the lab network. [`probe`] chooses what "ready" means for each container
//! and [`wait`] polls them all until they are, or says which are not and why.

use std::net::{Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::timeout;

use crate::engine::Engine;
use crate::lab::{Lab, Power, ServiceKind, IPMI_PORT};
use crate::observe::{bmc_power, PowerState};
use crate::plan::{ContainerSpec, Desired, Role};
use crate::ui::Progress;

/// Which containers `lab up` has running so far (started now, or kept), and whether it is done
/// starting them; what [`wait`] watches.
#[derive(Debug, Clone, Default)]
pub struct Running {
    pub names: Vec<String>,
    pub done: bool,
}

/// Polls every (named) service and BMC of `desired` until it answers, concurrently, each from
/// the moment its container runs (one that does not start is left to apply's report), for at
/// most `limit`. Nodes in `started` (just made or started) must also reach the power their file
/// asks for; a node kept as it was stays as the user last left it through its BMC. On timeout,
/// the message names the ones that did not answer, with what was wanted, the last answer and
/// their last log lines.
#[allow(clippy::too_many_arguments)]
pub async fn wait<E: Engine>(
    engine: &E,
    lab: &Lab,
    desired: &Desired,
    only: &[String],
    started: &[&str],
    running: &tokio::sync::watch::Receiver<Running>,
    limit: Duration,
    ui: &Progress,
) -> Result<(), String> {
    let probes: Vec<(&ContainerSpec, Probe)> = desired
        .containers
        .iter()
        .filter(|c| only.is_empty() || only.contains(&c.lab_name))
        .map(|c| (c, probe(lab, c, started.contains(&c.name.as_str()))))
        .collect();
    let results = futures_util::future::join_all(probes.iter().map(|(c, p)| async move {
        let mut running = running.clone();
        let runs = running
            .wait_for(|r| r.done || r.names.contains(&c.name))
            .await
            .is_ok_and(|r| r.names.contains(&c.name));
        if !runs {
            return Ok(());
        }
        let deadline = Instant::now() + limit;
        let key = format!("ready {}", c.lab_name);
        ui.start(&key, &format!("waiting: {}", p.describe()));
        loop {
            let last = match p.check(engine, &c.name).await {
                Ok(()) => {
                    ui.finish(&key, true, &p.describe());
                    return Ok(());
                }
                Err(e) => e,
            };
            if Instant::now() >= deadline {
                ui.finish(&key, false, &last);
                return Err((c.name.clone(), p.describe(), last));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }))
    .await;
    let mut failures = Vec::new();
    for (name, what, why) in results.into_iter().filter_map(Result::err) {
        let logs = engine
            .logs(&name, Some(15))
            .await
            .unwrap_or_else(|e| format!("(no logs: {e})"));
        failures.push(format!(
            "container {name} is not ready after {}s (wanted: {what}; last: {why})\n--- last log lines of {name} ---\n{}",
            limit.as_secs(),
            logs.trim_end()
        ));
    }
    if failures.is_empty() {
        return Ok(());
    }
    Err(failures.join("\n"))
}

/// What "ready" means for a container of the lab.
pub fn probe(lab: &Lab, c: &ContainerSpec, started: bool) -> Probe {
    match c.role {
        Role::Node => {
            let node = lab.node(&c.lab_name);
            Probe::Ipmi {
                ip: c.ip,
                port: IPMI_PORT,
                power_on: started && node.is_some_and(|n| n.power == Power::On),
                credentials: node.map(|n| (n.bmc_user.clone(), n.bmc_password.clone())),
            }
        }
        Role::Service => lab
            .service(&c.lab_name)
            .map_or(Probe::Running, |s| Probe::for_service(s.kind(), s.ip)),
    }
}

/// What "ready" means for one container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Probe {
    /// dnsmasq has its DHCP socket (UDP 67) open.
    Dhcp,
    /// An HTTP server answers a request with a status line.
    Http { ip: Ipv4Addr, port: u16 },
    /// An SSH server sends its banner.
    Ssh { ip: Ipv4Addr, port: u16 },
    /// A BMC answers IPMI "Get Channel Authentication Capabilities" over RMCP, and, when the node
    /// is to be powered on at `up`, reports its power on.
    Ipmi {
        ip: Ipv4Addr,
        port: u16,
        power_on: bool,
        /// The BMC's user and password, to ask it for the power state directly.
        credentials: Option<(String, String)>,
    },
    /// Running is all we know to check.
    Running,
}

impl Probe {
    pub fn for_service(kind: ServiceKind, ip: Ipv4Addr) -> Probe {
        match kind {
            ServiceKind::Dnsmasq => Probe::Dhcp,
            ServiceKind::Httpd => Probe::Http { ip, port: 80 },
            ServiceKind::Sshd => Probe::Ssh { ip, port: 22 },
            ServiceKind::Rancher | ServiceKind::Container => Probe::Running,
        }
    }

    pub fn describe(&self) -> String {
        match self {
            Probe::Dhcp => "DHCP socket open".into(),
            Probe::Http { ip, port } => format!("HTTP answers on {ip}:{port}"),
            Probe::Ssh { ip, port } => format!("SSH banner on {ip}:{port}"),
            Probe::Ipmi {
                ip,
                port,
                power_on: false,
                ..
            } => format!("IPMI answers on {ip}:{port}/udp"),
            Probe::Ipmi {
                ip,
                port,
                power_on: true,
                ..
            } => format!("IPMI answers on {ip}:{port}/udp, power on"),
            Probe::Running => "running".into(),
        }
    }

    /// One attempt: Ok(()) when ready, Err(why not) otherwise.
    pub async fn check<E: Engine>(&self, engine: &E, container: &str) -> Result<(), String> {
        match self {
            Probe::Dhcp => {
                if let Some(open) = local_udp_open(engine, container, 67).await {
                    return open
                        .then_some(())
                        .ok_or_else(|| "dnsmasq is not listening on UDP 67 yet".into());
                }
                let argv: Vec<String> = ["grep", "-q", ":0043 ", "/proc/net/udp"]
                    .map(String::from)
                    .to_vec();
                match engine.exec(container, &argv).await {
                    Ok(out) if out.exit_code == 0 => Ok(()),
                    Ok(_) => Err("dnsmasq is not listening on UDP 67 yet".into()),
                    Err(e) => Err(e.to_string()),
                }
            }
            Probe::Http { ip, port } => http(SocketAddr::from((*ip, *port))).await,
            Probe::Ssh { ip, port } => ssh_banner(SocketAddr::from((*ip, *port))).await.map(|_| ()),
            Probe::Ipmi {
                ip,
                port,
                power_on,
                credentials,
            } => {
                let at = SocketAddr::from((*ip, *port));
                crate::ipmi::ping(at).await?;
                if !*power_on {
                    return Ok(());
                }
                match bmc_power(engine, container, Some(at), credentials.as_ref()).await {
                    PowerState::On => Ok(()),
                    other => Err(format!("the BMC reports power {other}")),
                }
            }
            Probe::Running => Ok(()),
        }
    }
}

/// Whether the container listens on UDP `port`, read from `/proc/PID/net/udp` when lab runs on
/// the engine's host (milliseconds, where a docker exec takes a tenth of a second or more on a
/// busy host); `None` when that cannot be told from here: another host or PID namespace (the
/// engine's PID must be a process of this container: its cgroup names the container's id).
async fn local_udp_open<E: Engine>(engine: &E, container: &str, port: u16) -> Option<bool> {
    let (id, pid) = engine.container_pid(container).await.ok().flatten()?;
    let cgroup = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).ok()?;
    if !cgroup.contains(&id) {
        return None;
    }
    let udp = std::fs::read_to_string(format!("/proc/{pid}/net/udp")).ok()?;
    Some(udp.contains(&format!(":{port:04X} ")))
}

const IO_TIMEOUT: Duration = Duration::from_secs(2);

async fn http(addr: SocketAddr) -> Result<(), String> {
    let reply = exchange(addr, b"HEAD / HTTP/1.0\r\n\r\n", 12).await?;
    if reply.starts_with(b"HTTP/") {
        Ok(())
    } else {
        Err(format!("{addr} did not answer HTTP"))
    }
}

/// Reads the SSH identification line a server sends first.
pub async fn ssh_banner(addr: SocketAddr) -> Result<String, String> {
    let reply = exchange(addr, b"", 64).await?;
    let text = String::from_utf8_lossy(&reply).to_string();
    if text.starts_with("SSH-") {
        Ok(text.lines().next().unwrap_or_default().to_string())
    } else {
        Err(format!("{addr} sent no SSH banner"))
    }
}

async fn exchange(addr: SocketAddr, send: &[u8], want: usize) -> Result<Vec<u8>, String> {
    let io = async {
        let mut s = TcpStream::connect(addr).await?;
        if !send.is_empty() {
            s.write_all(send).await?;
        }
        let mut buf = vec![0u8; want];
        let mut got = 0;
        while got < want {
            let n = s.read(&mut buf[got..]).await?;
            if n == 0 {
                break;
            }
            got += n;
            // A status line or banner is all we want; servers wait for us after it.
            if buf[..got].contains(&b'\n') {
                break;
            }
        }
        buf.truncate(got);
        Ok::<_, std::io::Error>(buf)
    };
    match timeout(IO_TIMEOUT, io).await {
        Ok(Ok(buf)) => Ok(buf),
        Ok(Err(e)) => Err(format!("{addr}: {e}")),
        Err(_) => Err(format!(
            "{addr}: no answer within {}s",
            IO_TIMEOUT.as_secs()
        )),
    }
}
