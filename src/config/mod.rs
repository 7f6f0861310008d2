//! The lab file as written: serde types that mirror `lab.toml` one to one, with source positions.
//!
//! Nothing here checks meaning. [`crate::lab`] turns a [`RawConfig`] into the validated
//! [`crate::lab::Lab`]; every string a user can write is a [`Str`] so that a later check, or the
//! `${VAR}` interpolation in [`interp`], can point at the exact line and column.

pub mod interp;

use indexmap::IndexMap;
use serde::Deserialize;
use toml::Spanned;

/// A string from the file, with its byte span. `${VAR}` is resolved during validation.
pub type Str = Spanned<String>;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    pub lab: Spanned<RawLab>,
    pub network: Spanned<RawNetwork>,
    /// Lab variables, available to every template as `vars.NAME`.
    #[serde(default)]
    pub vars: IndexMap<String, Str>,
    #[serde(default)]
    pub services: IndexMap<Spanned<String>, Spanned<RawService>>,
    #[serde(default = "default_spanned")]
    pub node_defaults: Spanned<RawNode>,
    #[serde(default)]
    pub nodes: IndexMap<Spanned<String>, Spanned<RawNode>>,
    #[serde(default)]
    pub profiles: IndexMap<Spanned<String>, Spanned<RawProfile>>,
    /// Files downloaded by `lab fetch-assets` (OS kernels, initrds, ISOs).
    #[serde(default)]
    pub assets: IndexMap<Spanned<String>, Spanned<RawAsset>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawLab {
    pub name: Str,
    pub publish: Option<Str>,
    /// Base image that lab's own images are built `FROM`.
    pub base_image: Option<Str>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawNetwork {
    pub subnet: Str,
    pub gateway: Option<Str>,
    /// DNS servers handed out by DHCP (default: none; the lab network has no DNS of its own).
    #[serde(default)]
    pub dns: Vec<Str>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawService {
    pub kind: Str,
    pub ip: Option<Str>,
    #[serde(default)]
    pub ports: Vec<Str>,
    /// `container` and `rancher`: the image to run.
    pub image: Option<Str>,
    /// `container`: a Dockerfile context directory (relative to the file) to build instead of
    /// `image`, like compose's `build:`.
    pub build: Option<Str>,
    /// `container`: Linux capabilities to add, e.g. `NET_ADMIN`.
    #[serde(default)]
    pub cap_add: Vec<Str>,
    #[serde(default)]
    pub env: IndexMap<String, Str>,
    /// compose-style `SOURCE:TARGET[:ro]`; SOURCE is a path (relative to the file) or a volume name.
    #[serde(default)]
    pub volumes: Vec<Str>,
    pub command: Option<Spanned<Command>>,
    /// `dnsmasq`: first and last address of the dynamic range.
    pub dhcp_range: Option<Vec<Str>>,
    /// `dnsmasq`: lease time, dnsmasq syntax (`2h`, `30m`, `infinite`).
    pub lease_time: Option<Str>,
    /// `dnsmasq`: directory served over TFTP besides the built-in iPXE loader.
    pub tftp_root: Option<Str>,
    /// `httpd`: directory served at `/`.
    pub root: Option<Str>,
    /// `sshd`: root password (default `labpassword`, as the seed labs used).
    pub password: Option<Str>,
    /// `sshd`: a public key file to authorize for root.
    pub authorized_keys: Option<Str>,
}

/// A command as a list of arguments, or one string split on whitespace.
///
/// Deserialized by hand: serde's `untagged` buffers the value, and a buffered value can no
/// longer be read as a `toml::Spanned`, so no command at all would parse.
#[derive(Debug)]
pub enum Command {
    Line(String),
    Args(Vec<String>),
}

impl<'de> Deserialize<'de> for Command {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Command, D::Error> {
        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = Command;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a command: a string, or an array of strings")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Command, E> {
                Ok(Command::Line(v.to_string()))
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> Result<Command, A::Error> {
                let mut args = Vec::new();
                while let Some(arg) = seq.next_element::<String>()? {
                    args.push(arg);
                }
                Ok(Command::Args(args))
            }
        }
        d.deserialize_any(Visitor)
    }
}

/// One size (`"8G"`) or a list of them (`["8G", "100G"]`); deserialized by hand for the reason
/// [`Command`] is.
#[derive(Debug)]
pub enum Sizes {
    One(String),
    Many(Vec<String>),
}

impl<'de> Deserialize<'de> for Sizes {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Sizes, D::Error> {
        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = Sizes;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a size such as \"8G\", or an array of sizes")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Sizes, E> {
                Ok(Sizes::One(v.to_string()))
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> Result<Sizes, A::Error> {
                let mut sizes = Vec::new();
                while let Some(s) = seq.next_element::<String>()? {
                    sizes.push(s);
                }
                Ok(Sizes::Many(sizes))
            }
        }
        d.deserialize_any(Visitor)
    }
}

/// A node, or a group of `count` nodes. `[node_defaults]` has the same shape; there only the
/// settings shared by many nodes are allowed (validation says which keys are per node).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawNode {
    pub count: Option<Spanned<i64>>,
    pub mac: Option<Str>,
    /// A group's MACs, one per member in order, instead of `mac` stepped up by one per member.
    pub macs: Option<Spanned<Vec<Str>>>,
    pub ip: Option<Str>,
    pub bmc_ip: Option<Str>,
    pub vnc_port: Option<Spanned<i64>>,
    pub ipmi_port: Option<Spanned<i64>>,
    pub redfish_port: Option<Spanned<i64>>,
    /// A host address of its own where the node's BMC publishes IPMI and Redfish (standard
    /// ports by default), stepped up by one per member of a group.
    pub bmc_publish: Option<Str>,
    pub cpus: Option<Spanned<i64>>,
    pub memory: Option<Str>,
    /// Number of NICs on the lab network, with consecutive MACs from `mac`; the first PXE-boots.
    pub nics: Option<Spanned<i64>>,
    /// A size, or a list of sizes: one disk each.
    pub disk: Option<Spanned<Sizes>>,
    pub boot: Option<Str>,
    pub power: Option<Str>,
    /// The VM's power after its node container restarts: `previous`, `on` or `off`.
    pub power_restore: Option<Str>,
    pub profile: Option<Str>,
    pub bmc_user: Option<Str>,
    pub bmc_password: Option<Str>,
    /// `auto` (KVM when it really works, else TCG), `kvm` or `tcg`.
    pub accel: Option<Str>,
    /// The server's identity, the same in SMBIOS, the FRU, IPMI and `status`: manufacturer,
    /// model, serial number, system UUID and asset tag.
    pub vendor: Option<Str>,
    pub model: Option<Str>,
    pub serial: Option<Str>,
    pub uuid: Option<Str>,
    pub asset_tag: Option<Str>,
    /// Hide the hypervisor from the guest: no CPUID hypervisor bit, no VM bit or QEMU strings in
    /// SMBIOS.
    pub hide_hypervisor: Option<Spanned<bool>>,
    /// `bios` (SeaBIOS) or `uefi` (OVMF with a per-node NVRAM).
    pub firmware: Option<Str>,
}

/// What a node boots: a kernel, an initrd and a command line served by the web service, and the
/// cloud-configs rendered for each node that boots it.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawProfile {
    /// Path under the web root, or an absolute URL.
    pub kernel: Option<Str>,
    pub initrd: Option<Str>,
    /// Kernel command line; a template with the same variables as cloud-configs.
    pub cmdline: Option<Str>,
    /// Cloud-config templates (paths relative to the web root) rendered per node.
    #[serde(default)]
    pub cloud_configs: Vec<Str>,
    /// A custom iPXE script template (relative to the web root) instead of the built-in one.
    pub ipxe: Option<Str>,
}

/// Files that `lab fetch-assets` downloads from `base_url` into `dest`, verified by SHA-256.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawAsset {
    /// The directory URL the files are downloaded from (`base_url/<file>`).
    pub base_url: Str,
    /// File names under `base_url`.
    pub files: Vec<Str>,
    /// A file under `base_url` listing SHA-256 hashes (`sha256: <hex>  <file>` or `<hex>  <file>`).
    pub checksums: Option<Str>,
    /// Pinned hashes per file; they win over the checksums file. A value, not a string, so that
    /// an unquoted dotted name (`rancheros.iso = ...`, a nested table to TOML) gets a clear error.
    #[serde(default)]
    pub sha256: IndexMap<Spanned<String>, Spanned<toml::Value>>,
    /// Directory the files are stored in, relative to the lab file.
    pub dest: Str,
}

fn default_spanned<T: Default>() -> Spanned<T> {
    Spanned::new(0..0, T::default())
}
