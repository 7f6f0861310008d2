//! lab-bmcd: the Redfish service of a node's BMC (src/bin/lab-bmcd.rs runs it in the node
//! container). It keeps no state of its own for power, boot override, identity, sensors or the
//! SEL: each request asks the node's ipmi_sim over one IPMI session ([`bmc`]), so IPMI and
//! Redfish are two faces of one BMC. Only what IPMI cannot hold lives in the node's volume
//! (`/var/lib/lab/redfish`): the TLS certificate and the virtual media state. UEFI HTTP boot,
//! which IPMI cannot name, is `http` in lab-bmc.so's boot override file (/var/lib/lab/bootdev, in the node's volume).
//!
//! - [`bmc`]: IPMI commands and their decoding (FRU, GUID, SEL, SDR, boot flags).
//! - [`media`]: InsertMedia's download into the volume and `lab-media`, which attaches it.
//! - [`service`]: resources, authentication, sessions, errors: a request in, a reply out.
//! - [`metadata`]: `$metadata` and the OData service document.
//! - [`server`]: HTTPS (hyper + rustls) and the self-signed certificate.

pub mod bmc;
pub mod media;
pub mod metadata;
pub mod server;
pub mod service;

/// Where lab-bmcd keeps its files in the node's volume.
pub const STATE_DIR: &str = "/var/lib/lab/redfish";
/// The port lab-bmcd listens on inside the node container (all addresses).
pub const REDFISH_PORT: u16 = 443;
