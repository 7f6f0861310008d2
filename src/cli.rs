//! Command-line interface definitions (clap).

use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueEnum};

use crate::phase::{BootSource, Phase};

/// A bare-metal provisioning lab on one machine: DHCP/TFTP, HTTP, SSH and QEMU servers with IPMI
/// BMCs that PXE-boot, from one lab.toml.
#[derive(Debug, Parser)]
#[command(name = "lab", version, about, max_term_width = 100)]
pub struct Cli {
    /// The lab file.
    #[arg(
        short = 'f',
        long = "file",
        global = true,
        env = "LAB_FILE",
        default_value = "lab.toml"
    )]
    pub file: PathBuf,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Check the lab file and report every problem with its line.
    Validate,
    /// Print the expanded lab: every node and service with its addresses and ports.
    Config {
        /// Print JSON instead of TOML.
        #[arg(long)]
        json: bool,
    },
    /// Create or update the lab: images, network, services and nodes.
    Up {
        /// Print what would be created, changed and removed, and change nothing.
        #[arg(long)]
        dry_run: bool,
        /// Return once containers are started, without waiting for services to answer.
        #[arg(long)]
        no_wait: bool,
        /// Do not download missing assets that nodes being started boot (warn instead).
        #[arg(long)]
        no_fetch: bool,
        /// Seconds to wait for every service and BMC to answer (and, before that, for another
        /// `lab` changing this lab to finish: it holds the lab's lock).
        #[arg(long, default_value_t = 120)]
        timeout: u64,
        /// Only these services or nodes (others are left as they are).
        names: Vec<String>,
    },
    /// Remove every container and the network of the lab.
    Down {
        /// Also remove node disks, service volumes and the generated files.
        #[arg(long)]
        volumes: bool,
        /// The lab's name, to remove it without its file.
        #[arg(long)]
        name: Option<String>,
        /// Seconds to wait for another `lab` changing this lab (it holds the lab's lock).
        #[arg(long, default_value_t = 120)]
        timeout: u64,
    },
    /// Show every service and node: state, addresses, endpoints, power.
    Status {
        /// Print JSON.
        #[arg(long)]
        json: bool,
        /// The lab's name, to inspect it without its file.
        #[arg(long)]
        name: Option<String>,
    },
    /// Power nodes on, off, cycle or reset through their BMCs (IPMI), or ask their power status.
    Power {
        /// Every node of the lab.
        #[arg(long)]
        all: bool,
        /// NODE ACTION, or just ACTION with --all; ACTION is on, off, cycle, reset or status.
        #[arg(num_args = 1..=2, required = true, value_name = "NODE ACTION")]
        words: Vec<String>,
        /// Seconds to wait for another `lab` changing this lab (it holds the lab's lock).
        #[arg(long, default_value_t = 120)]
        timeout: u64,
    },
    /// Wait until nodes reach a boot phase.
    Wait {
        /// Only these nodes (default: all).
        nodes: Vec<String>,
        #[arg(long, value_enum, default_value_t = Phase::Up)]
        phase: Phase,
        /// And the current boot came from this device (e.g. `disk`: an installed system is up).
        #[arg(long, value_enum)]
        boot_source: Option<BootSource>,
        /// Seconds before giving up (exit code 1, with each node's phase and console).
        #[arg(long, default_value_t = 300)]
        timeout: u64,
    },
    /// A node's serial console: its history, then live (Ctrl-] to leave). A node that stopped
    /// still shows its console log.
    Console {
        node: String,
        /// Lines of history to show first (0: the whole log).
        #[arg(long, default_value_t = 50)]
        lines: usize,
        /// Show the history and exit.
        #[arg(long)]
        no_follow: bool,
    },
    /// Show a service's or node container's logs (all of them without NAME).
    Logs {
        name: Option<String>,
        /// Keep following new lines (`-f` is the global lab file option, hence `-F`).
        #[arg(short = 'F', long)]
        follow: bool,
        /// Only the last N lines.
        #[arg(long)]
        tail: Option<usize>,
    },
    /// Print what a provisioner needs to enrol the nodes (MACs, hardware, identity, BMC
    /// endpoints and credentials), as lab's JSON or as Ironic, Metal3, Tinkerbell or MAAS input.
    /// Reads only the lab file: the lab need not be running.
    Inventory {
        /// Only these nodes (default: all).
        nodes: Vec<String>,
        /// What to print. [default: json]
        #[arg(long, value_enum)]
        format: Option<crate::inventory::Format>,
        /// The BMC protocol the provisioner uses (not for json). [default: ipmi]
        #[arg(long, value_enum)]
        driver: Option<crate::inventory::Driver>,
        /// Where the provisioner reaches the BMCs from (not for json). [default: lab]
        #[arg(long, value_enum)]
        from: Option<crate::inventory::Side>,
        /// Kubernetes namespace of the objects (metal3, tinkerbell). [default: default]
        #[arg(long)]
        namespace: Option<String>,
    },
    /// Download the lab's assets (OS kernels, initrds, ISOs) into their `dest`, verified by SHA-256.
    FetchAssets {
        /// Only these assets (default: all).
        names: Vec<String>,
        /// Fetch every file, checksums included, from URL/<file name> instead of base_url.
        #[arg(long, value_name = "URL", env = "LAB_ASSET_MIRROR", value_parser = crate::assets::parse_mirror)]
        mirror: Option<String>,
        /// Verify the files on disk against their hashes, without any network.
        #[arg(long)]
        check: bool,
    },
}

/// What `lab power` asks a BMC to do (`ipmitool chassis power ACTION`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum PowerAction {
    On,
    Off,
    Cycle,
    Reset,
    Status,
}

impl PowerAction {
    /// The word ipmitool takes.
    pub fn as_str(self) -> &'static str {
        match self {
            PowerAction::On => "on",
            PowerAction::Off => "off",
            PowerAction::Cycle => "cycle",
            PowerAction::Reset => "reset",
            PowerAction::Status => "status",
        }
    }
}

impl std::fmt::Display for PowerAction {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    /// clap checks option clashes only when a subcommand is parsed; check them all at once.
    #[test]
    fn the_command_line_is_consistent() {
        super::Cli::command().debug_assert();
    }
}
