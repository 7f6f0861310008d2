//! lab-bmcd: the Redfish service of a node's BMC (src/bin/lab-bmcd.rs runs it in the node
//! container). It keeps no state of its own for power, boot override, identity, sensors or the
//! SEL: each request asks the node's ipmi_sim over one IPMI session ([`bmc`]), so IPMI and
//! Redfish are two faces of one BMC. Only what IPMI cannot hold lives in the node's volume
//! (`/var/lib/lab/redfish`): the TLS certificate, the virtual media state, and the mark that a
//! PXE override was set as UEFI HTTP boot.
//!
//! - [`bmc`]: IPMI commands and their decoding (FRU, GUID, SEL, SDR, boot flags).
//! - [`service`]: resources, authentication, sessions, errors: a request in, a reply out.
//! - [`metadata`]: `$metadata` and the OData service document.
//! - [`server`]: HTTPS (hyper + rustls) and the self-signed certificate.

pub mod bmc;
pub mod metadata;
pub mod server;
pub mod service;

/// Where lab-bmcd keeps its files in the node's volume.
pub const STATE_DIR: &str = "/var/lib/lab/redfish";
/// The port lab-bmcd listens on inside the node container (all addresses).
pub const REDFISH_PORT: u16 = 443;
