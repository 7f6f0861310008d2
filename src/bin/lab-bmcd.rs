//! lab-bmcd: the Redfish service of a node's BMC, run by lab-node in the node container.
//! It speaks IPMI to the node's ipmi_sim (one session, kept open) and HTTPS to clients; see
//! [`metal_lab::redfish`].
//!
//! `lab-bmcd wire` is its other task in the node container: it watches the VM's tap and logs each
//! step of the VM's network boots (DHCP, TFTP, HTTP) as `lab: wire: ...` lines; see
//! [`metal_lab::wire`].
//!
//! `lab-bmcd nvram FILE` shows a UEFI node's boot order from its NVRAM; with `--pxe-first`
//! (lab-vm, before a power on that is no HTTP boot) it puts PXE ahead of HTTP boot there; see
//! [`metal_lab::nvram`].

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::Parser;
use metal_lab::redfish::bmc::{Bmc, IpmiBmc};
use metal_lab::redfish::server;
use metal_lab::redfish::service::{Node, Service};

#[derive(Parser)]
#[command(
    name = "lab-bmcd",
    version,
    about = "Redfish service of a lab node's BMC"
)]
struct Args {
    #[command(subcommand)]
    task: Option<Task>,
    /// The node's settings (KEY=VALUE lines), as lab renders them.
    #[arg(long, default_value = "/etc/lab/node/node.env")]
    env: PathBuf,
    /// Where to listen for HTTPS.
    #[arg(long, default_value = "0.0.0.0:443")]
    listen: SocketAddr,
    /// The BMC's IPMI LAN address (ipmi_sim in the same container).
    #[arg(long, default_value = "127.0.0.1:623")]
    bmc: SocketAddr,
    /// Where the certificate and the virtual media state are kept (the node's volume).
    #[arg(long, default_value = metal_lab::redfish::STATE_DIR)]
    state: PathBuf,
}

#[derive(clap::Subcommand)]
enum Task {
    /// Log what the VM puts on the wire (its DHCP, TFTP and HTTP exchanges), watched on its tap.
    Wire {
        /// The VM's tap device (its first NIC, the one that network-boots).
        #[arg(long, default_value = "tap0")]
        interface: String,
        /// The node's settings: the VM's MACs are `NIC_MACS` (else `MAC`).
        #[arg(long, default_value = "/etc/lab/node/node.env")]
        env: PathBuf,
    },
    /// Show the boot order in a UEFI node's NVRAM (OVMF's variable store), or set it.
    Nvram {
        /// The variable store (the node's uefi-vars.fd).
        file: PathBuf,
        /// Make the next network boot PXE: PXE boot options ahead of HTTP boot ones (an HTTP
        /// boot before left only HTTP ones: those are deleted, OVMF makes both again).
        #[arg(long)]
        pxe_first: bool,
    },
}

fn main() -> ExitCode {
    let mut args = Args::parse();
    match args.task.take() {
        Some(Task::Wire { interface, env }) => return wire(&interface, &env),
        Some(Task::Nvram { file, pxe_first }) => return nvram(&file, pxe_first),
        None => {}
    }
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("lab: error: redfish: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match rt.block_on(run(args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("lab: error: redfish: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run(args: Args) -> Result<(), String> {
    let file = args.env.display().to_string();
    let text =
        std::fs::read_to_string(&args.env).map_err(|e| format!("cannot read {file}: {e}"))?;
    let node = Node::from_env(&text, &file)?;
    let mut names = vec![node.name.clone(), "localhost".into(), "127.0.0.1".into()];
    if let Some(ip) = text.lines().find_map(|l| l.strip_prefix("BMC_IP=")) {
        if !ip.is_empty() && ip != "0.0.0.0" {
            names.push(ip.to_string());
        }
    }
    let (cert, key) = server::certificate(&args.state, names)?;
    let fingerprint = server::fingerprint(&cert);
    let tls = server::tls_acceptor(cert, key)?;
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .map_err(|e| format!("cannot listen on {}: {e}", args.listen))?;
    let ipmi = Arc::new(IpmiBmc::new(args.bmc, &node.user, &node.password));
    ipmi.keep_alive(Duration::from_secs(15));
    let service = Arc::new(Service::new(Bmc::new(ipmi), node, args.state.clone()));
    let bmc = service.bmc.clone();
    tokio::spawn(async move {
        // ipmi_sim starts after lab-bmcd: ask until it answers (a minute at most).
        for _ in 0..60 {
            if bmc.sync_sel_time().await.is_ok() {
                return;
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    });
    println!(
        "lab: redfish: https on {} (BMC {}), certificate SHA-256 {fingerprint}",
        args.listen, args.bmc
    );
    server::serve(listener, tls, service, server::Timeouts::default()).await;
    Ok(())
}

/// `lab-bmcd nvram`: one line per boot option in BootOrder's order (`Boot0001 pxe "UEFI PXEv4
/// (MAC:...)"`), or with `pxe_first` a line saying what changed. On any error the file is left
/// as it is.
fn nvram(file: &std::path::Path, pxe_first: bool) -> ExitCode {
    use metal_lab::nvram::{self, Change, NetBoot};
    let name = file.display();
    if !pxe_first {
        let listed = std::fs::read(file)
            .map_err(|e| format!("cannot read {name}: {e}"))
            .and_then(|store| nvram::boot_order(&store).map_err(|e| format!("{name}: {e}")));
        return match listed {
            Ok((options, _)) => {
                for o in options {
                    let kind = match o.net {
                        Some(NetBoot::Pxe) => "pxe",
                        Some(NetBoot::Http) => "http",
                        None => "other",
                    };
                    println!("Boot{:04X} {kind} \"{}\"", o.number, o.description);
                }
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("lab: error: uefi: {e}");
                ExitCode::FAILURE
            }
        };
    }
    match nvram::prefer_pxe_file(file) {
        Ok(Change::None) => ExitCode::SUCCESS,
        Ok(Change::Reordered { before, after }) => {
            let hex = |v: &[u16]| {
                v.iter()
                    .map(|n| format!("{n:04X}"))
                    .collect::<Vec<_>>()
                    .join(",")
            };
            println!(
                "lab: uefi: NVRAM boot order {} -> {}: PXE ahead of HTTP boot (a one-time HTTP boot is over)",
                hex(&before),
                hex(&after)
            );
            ExitCode::SUCCESS
        }
        Ok(Change::Deleted(options)) => {
            println!(
                "lab: uefi: NVRAM: deleted {} (the HTTP boot before left no PXE option): OVMF makes the NIC's boot options again, PXE first",
                nvram::describe(&options)
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("lab: error: uefi: {e}; the NVRAM is left as it is");
            ExitCode::FAILURE
        }
    }
}

/// `lab-bmcd wire`: runs until the tap goes away or the container stops.
fn wire(interface: &str, env: &std::path::Path) -> ExitCode {
    let file = env.display();
    let text = match std::fs::read_to_string(env) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("lab: error: wire: cannot read {file}: {e}");
            return ExitCode::FAILURE;
        }
    };
    let value = |key: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(key)?.strip_prefix('='))
            .filter(|v| !v.trim().is_empty())
    };
    let Some(list) = value("NIC_MACS").or_else(|| value("MAC")) else {
        eprintln!("lab: error: wire: {file} has neither NIC_MACS nor MAC");
        return ExitCode::FAILURE;
    };
    let mut macs = Vec::new();
    for m in list.split_whitespace() {
        match metal_lab::wire::parse_mac(m) {
            Some(mac) => macs.push(mac),
            None => {
                eprintln!("lab: error: wire: {file}: `{m}` is not a MAC address");
                return ExitCode::FAILURE;
            }
        }
    }
    println!("lab: wire: watching {interface} for {list}");
    match run_capture(interface, macs) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("lab: error: wire: {interface}: {e}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(target_os = "linux")]
fn run_capture(interface: &str, macs: Vec<metal_lab::wire::Mac>) -> std::io::Result<()> {
    metal_lab::wire::capture(interface, macs)
}

#[cfg(not(target_os = "linux"))]
fn run_capture(_: &str, _: Vec<metal_lab::wire::Mac>) -> std::io::Result<()> {
    Err(std::io::Error::other("packet capture needs Linux"))
}
