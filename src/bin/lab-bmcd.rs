//! lab-bmcd: the Redfish service of a node's BMC, run by lab-node in the node container.
//! It speaks IPMI to the node's ipmi_sim (one session, kept open) and HTTPS to clients; see
//! [`metal_lab::redfish`].

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

fn main() -> ExitCode {
    let args = Args::parse();
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
    server::serve(listener, tls, service).await;
    Ok(())
}
