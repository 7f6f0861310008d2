//! Readiness: each service and BMC answers its own protocol, checked the way a client would,
//! from the host over the lab network.

use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::timeout;

use crate::engine::Engine;
use crate::lab::ServiceKind;

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
                match power_state(engine, container, Some(at), credentials.as_ref())
                    .await
                    .as_str()
                {
                    "on" => Ok(()),
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

/// The node's power state (`on`, `off` or `unknown`) from its BMC: asked over IPMI at `bmc`
/// when the credentials are known (milliseconds), else (or if that fails) by `ipmitool` in the
/// node container (a `docker exec`).
pub async fn power_state<E: Engine>(
    engine: &E,
    container: &str,
    bmc: Option<SocketAddr>,
    credentials: Option<&(String, String)>,
) -> String {
    if let (Some(at), Some((user, password))) = (bmc, credentials) {
        if let Ok(on) = crate::ipmi::power_is_on(at, user, password).await {
            return if on { "on" } else { "off" }.to_string();
        }
    }
    bmc_power(engine, container).await
}

/// The node's power state (`on`, `off` or `unknown`) as its BMC reports it over IPMI (lanplus),
/// asked from inside the node container with the credentials of its rendered settings.
async fn bmc_power<E: Engine>(engine: &E, container: &str) -> String {
    let script = "u=$(sed -n 's/^BMC_USER=//p' /etc/lab/node/node.env); p=$(sed -n 's/^BMC_PASSWORD=//p' /etc/lab/node/node.env); \
                  exec ipmitool -I lanplus -C 3 -H 127.0.0.1 -U \"$u\" -P \"$p\" power status";
    let argv = vec!["sh".to_string(), "-c".to_string(), script.to_string()];
    match engine.exec(container, &argv).await {
        Ok(out) if out.output.contains("is on") => "on".into(),
        Ok(out) if out.output.contains("is off") => "off".into(),
        _ => "unknown".into(),
    }
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
