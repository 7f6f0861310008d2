//! RawConfig -> Lab: interpolation, expansion of counts, allocation of what the file leaves out,
//! and every check, collecting all problems instead of stopping at the first.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};
use std::ops::Range;
use std::path::{Path, PathBuf};

use ipnet::Ipv4Net;
use toml::Spanned;

use super::{
    Dhcp, Diag, Diagnostics, Lab, Network, Node, PortMap, Profile, Proto, Service, ServiceConfig,
    ServiceKind, Source, VolumeMount,
};
use crate::config::interp::{interpolate, InterpError};
use crate::config::{Command, RawConfig, RawService, Str};

const DEFAULT_BASE_IMAGE: &str = "debian:bookworm-slim";
const DEFAULT_RANCHER_IMAGE: &str = "rancher/rancher:v2.8.5";
const MAX_COUNT: i64 = 250;
/// Defaults as in the seed labs; refused when published beyond loopback (`check_safe_defaults`).
const DEFAULT_BMC_USER: &str = "admin";
const DEFAULT_BMC_PASSWORD: &str = "admin";
const DEFAULT_ROOT_PASSWORD: &str = "labpassword";

/// Reads and validates a lab file, interpolating `${VAR}` from the process environment.
pub fn load(path: &Path) -> Result<Lab, Diagnostics> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        let help = if e.kind() == std::io::ErrorKind::NotFound {
            "create it (see labs/ for examples) or point to one with -f FILE / LAB_FILE"
        } else {
            "check the path and its permissions"
        };
        Diagnostics(vec![Diag::file_level(
            path,
            format!("cannot read the lab file: {e}"),
            Some(help.into()),
        )])
    })?;
    from_str(path, &text, &|name| std::env::var(name).ok())
}

/// Validates lab file text; `path` names the file in messages and anchors relative paths.
pub fn from_str(
    path: &Path,
    text: &str,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Lab, Diagnostics> {
    let source = Source::new(path, text);
    let raw: RawConfig = toml::from_str(text).map_err(|e| {
        // serde names integers by their Rust type; the user wrote TOML.
        let message = e
            .message()
            .trim_end()
            .replace("expected i64", "expected an integer");
        // serde names no key, only a span: find the key path at that span in the document.
        let key = e
            .span()
            .and_then(|s| keypath::key_path(text, &s))
            .unwrap_or_default();
        let mut diag = Diag::at(&source, e.span(), key).msg(
            message,
            "fix the TOML at that position (see the README for the file format)",
        );
        if diag.pos.is_none() {
            // A missing top-level table has no position to point at.
            diag.help = Some("add it (the README shows a complete lab file)".into());
        }
        Diagnostics(vec![diag])
    })?;
    // Relative paths are relative to the file itself; through a symlink (the repo's lab.toml),
    // to the file it points at.
    let real = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
    let dir = match real.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let dir = std::fs::canonicalize(&dir).unwrap_or(dir);
    let mut v = Validator {
        source,
        lab_name: String::new(),
        env,
        diags: Vec::new(),
        dir,
    };
    let lab = v.lab(&raw);
    match lab {
        Some(lab) if v.diags.is_empty() => Ok(lab),
        _ => Err(Diagnostics(v.diags)),
    }
}

struct Validator<'a> {
    source: Source,
    /// The lab's name once read (empty when invalid), for names scoped to the lab.
    lab_name: String,
    env: &'a dyn Fn(&str) -> Option<String>,
    diags: Vec<Diag>,
    dir: PathBuf,
}

/// A node address or port before allocation, with where it came from.
struct PendingNode {
    node: Node,
    key: String,
    mac_span: Option<Range<usize>>,
    ip_span: Option<Range<usize>>,
    bmc_span: Option<Range<usize>>,
    vnc_span: Option<Range<usize>>,
    ipmi_span: Option<Range<usize>>,
    serial_span: Option<Range<usize>>,
    uuid_span: Option<Range<usize>>,
    redfish_span: Option<Range<usize>>,
    /// `redfish_port` was left out and took `ipmi_port`'s number.
    redfish_from_ipmi: bool,
    bmc_publish_span: Option<Range<usize>>,
    ip_given: bool,
    bmc_given: bool,
    mac_given: bool,
}

impl<'a> Validator<'a> {
    fn err(
        &mut self,
        span: Option<Range<usize>>,
        key: impl Into<String>,
        msg: impl Into<String>,
        help: impl Into<String>,
    ) {
        let d = Diag::at(&self.source, span, key).msg(msg, help);
        self.diags.push(d);
    }

    /// Interpolates `${VAR}` in a string from the file.
    fn text(&mut self, s: &Str, key: &str) -> Option<String> {
        match interpolate(s.get_ref(), self.env) {
            Ok(v) => Some(v),
            Err(e) => {
                let help = match &e {
                    InterpError::Missing { name, .. } => {
                        format!(
                            "export {name}=... before running lab, or write ${{{name}:-default}}"
                        )
                    }
                    _ => {
                        "write ${NAME} with a name of letters, digits and _, or $$ for a literal $"
                            .into()
                    }
                };
                self.err(Some(s.span()), key, e.to_string(), help);
                None
            }
        }
    }

    fn opt_text(&mut self, s: &Option<Str>, key: &str) -> Option<String> {
        s.as_ref().and_then(|s| self.text(s, key))
    }

    fn ip(&mut self, s: &Str, key: &str) -> Option<Ipv4Addr> {
        let t = self.text(s, key)?;
        match t.trim().parse::<Ipv4Addr>() {
            Ok(ip) => Some(ip),
            Err(_) => {
                self.err(
                    Some(s.span()),
                    key,
                    format!("`{t}` is not an IPv4 address"),
                    "write it as four numbers, e.g. 192.168.25.10",
                );
                None
            }
        }
    }

    fn lab(&mut self, raw: &RawConfig) -> Option<Lab> {
        let lab = raw.lab.get_ref();
        let name = self.text(&lab.name, "lab.name");
        if let Some(n) = &name {
            self.dns_label(n, Some(lab.name.span()), "lab.name");
            self.lab_name = n.clone();
        }
        let publish = match &lab.publish {
            None => Some(IpAddr::V4(Ipv4Addr::LOCALHOST)),
            // No early return: the rest of the file is still checked.
            Some(p) => self.text(p, "lab.publish").and_then(|t| match t.parse::<IpAddr>() {
                Ok(ip) => Some(ip),
                Err(_) => {
                    self.err(Some(p.span()), "lab.publish", format!("`{t}` is not an IP address"), "use a host address such as 127.0.0.1 (default) or 0.0.0.0 for all interfaces");
                    None
                }
            }),
        };
        let base_image = self
            .opt_text(&lab.base_image, "lab.base_image")
            .unwrap_or_else(|| DEFAULT_BASE_IMAGE.into());
        let network = self.network(raw);
        let mut vars = BTreeMap::new();
        for (k, v) in &raw.vars {
            if let Some(t) = self.text(v, &format!("vars.{k}")) {
                vars.insert(k.clone(), t);
            }
        }
        let profiles = self.profiles(raw);
        let assets = self.assets(raw);
        let network = network?;
        let mut services = self.services(raw, &network);
        let mut nodes = self.nodes(raw, &network, &profiles);
        self.allocate(&network, &mut services, &mut nodes);
        self.check_addresses(&network, &services, &nodes);
        let publish_at = publish.unwrap_or(IpAddr::V4(Ipv4Addr::LOCALHOST));
        self.check_ports(publish_at, &services, &nodes);
        self.check_names(raw, &services, &nodes);
        self.check_identities(&nodes);
        let lab = Lab {
            name: name?,
            file: self.source.path.clone(),
            dir: self.dir.clone(),
            publish: publish?,
            base_image,
            network,
            vars,
            services: services.into_iter().map(|(s, _)| s).collect(),
            nodes: nodes.into_iter().map(|p| p.node).collect(),
            profiles,
            assets,
        };
        self.check_boot_services(raw, &lab);
        self.check_safe_defaults(raw, &lab);
        Some(lab)
    }

    fn dns_label(&mut self, name: &str, span: Option<Range<usize>>, key: &str) -> bool {
        let ok = !name.is_empty()
            && name.len() <= 63
            && name
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
            && !name.starts_with('-')
            && !name.ends_with('-');
        if !ok {
            self.err(span, key, format!("`{name}` is not a valid name"), "use 1-63 lowercase letters, digits and '-', not starting or ending with '-' (it becomes a DNS hostname and a container name)");
        }
        ok
    }

    fn network(&mut self, raw: &RawConfig) -> Option<Network> {
        let net = raw.network.get_ref();
        let text = self.text(&net.subnet, "network.subnet")?;
        let subnet: Ipv4Net = match text.parse() {
            Ok(s) => s,
            Err(_) => {
                self.err(
                    Some(net.subnet.span()),
                    "network.subnet",
                    format!("`{text}` is not an IPv4 subnet"),
                    "write it in CIDR form, e.g. 192.168.25.0/24",
                );
                return None;
            }
        };
        if subnet.trunc() != subnet {
            self.err(
                Some(net.subnet.span()),
                "network.subnet",
                format!("`{text}` has host bits set"),
                format!("write the network address: {}", subnet.trunc()),
            );
            return None;
        }
        if subnet.prefix_len() > 29 {
            self.err(
                Some(net.subnet.span()),
                "network.subnet",
                format!("`{text}` is too small for a lab"),
                "use a /29 or larger subnet, e.g. a /24",
            );
            return None;
        }
        let gateway = match &net.gateway {
            None => Some(first_host(subnet)),
            Some(g) => self.ip(g, "network.gateway").filter(|&ip| {
                if !is_host_of(subnet, ip) {
                    self.err(
                        Some(g.span()),
                        "network.gateway",
                        format!("{ip} is not a host address of {subnet}"),
                        format!(
                            "pick an address between {} and {}, or leave gateway out to use {}",
                            first_host(subnet),
                            last_host(subnet),
                            first_host(subnet)
                        ),
                    );
                }
                is_host_of(subnet, ip)
            }),
        };
        let mut dns = Vec::new();
        for (i, d) in net.dns.iter().enumerate() {
            if let Some(ip) = self.ip(d, &format!("network.dns[{i}]")) {
                dns.push(ip);
            }
        }
        Some(Network {
            subnet,
            gateway: gateway?,
            dns,
        })
    }

    fn profiles(&mut self, raw: &RawConfig) -> BTreeMap<String, Profile> {
        let mut out = BTreeMap::new();
        for (name, p) in &raw.profiles {
            let key = format!("profiles.{}", name.get_ref());
            self.dns_label(name.get_ref(), Some(name.span()), &key);
            let p = p.get_ref();
            let mut cloud_configs: Vec<String> = Vec::new();
            for c in &p.cloud_configs {
                let ckey = format!("{key}.cloud_configs");
                let Some(t) = self.text(c, &ckey) else {
                    continue;
                };
                let output = super::cloud_config_output(&t);
                if let Some(first) = cloud_configs
                    .iter()
                    .find(|f| super::cloud_config_output(f) == output)
                {
                    let msg = format!("`{first}` and `{t}` both render to `{output}`");
                    self.err(
                        Some(c.span()),
                        ckey,
                        msg,
                        "rename one of the templates (a node's file is the template's file name without `.j2`)",
                    );
                }
                cloud_configs.push(t);
            }
            let profile = Profile {
                name: name.get_ref().clone(),
                kernel: self.opt_text(&p.kernel, &format!("{key}.kernel")),
                initrd: self.opt_text(&p.initrd, &format!("{key}.initrd")),
                cmdline: self
                    .opt_text(&p.cmdline, &format!("{key}.cmdline"))
                    .unwrap_or_default(),
                cloud_configs,
                ipxe: self.opt_text(&p.ipxe, &format!("{key}.ipxe")),
            };
            if profile.kernel.is_none() && profile.ipxe.is_none() {
                self.err(
                    Some(name.span()),
                    &key,
                    "the profile boots nothing",
                    "give it a `kernel` (and `initrd`), or a custom `ipxe` script template",
                );
            }
            out.insert(profile.name.clone(), profile);
        }
        out
    }

    fn services(&mut self, raw: &RawConfig, net: &Network) -> Vec<(Service, ServiceSpans)> {
        let mut out = Vec::new();
        for (name, s) in &raw.services {
            let key = format!("services.{}", name.get_ref());
            self.dns_label(name.get_ref(), Some(name.span()), &key);
            if let Some(svc) = self.service(name.get_ref(), s, &key, net) {
                out.push(svc);
            }
        }
        let dnsmasq: Vec<_> = out
            .iter()
            .filter(|(s, _)| s.kind() == ServiceKind::Dnsmasq)
            .map(|(s, sp)| (s.name.clone(), sp.table.clone()))
            .collect();
        if let Some((second, span)) = dnsmasq.get(1) {
            self.err(
                Some(span.clone()),
                format!("services.{second}"),
                format!(
                    "a second dnsmasq service (after `{}`) would answer DHCP on the same network",
                    dnsmasq[0].0
                ),
                "keep one dnsmasq service per lab",
            );
        }
        out
    }

    fn service(
        &mut self,
        name: &str,
        s: &Spanned<RawService>,
        key: &str,
        net: &Network,
    ) -> Option<(Service, ServiceSpans)> {
        let table = s.span();
        let s = s.get_ref();
        let kind_text = self.text(&s.kind, &format!("{key}.kind"))?;
        let Some(kind) = ServiceKind::ALL
            .into_iter()
            .find(|k| k.as_str() == kind_text)
        else {
            self.err(
                Some(s.kind.span()),
                format!("{key}.kind"),
                format!("unknown service kind `{kind_text}`"),
                "use one of: dnsmasq, httpd, sshd, rancher, container",
            );
            return None;
        };
        self.only_for(
            kind,
            ServiceKind::Dnsmasq,
            key,
            "dhcp_range",
            s.dhcp_range
                .as_ref()
                .and_then(|v| v.first())
                .map(Spanned::span)
                .or(s.dhcp_range.as_ref().map(|_| table.clone())),
        );
        self.only_for(
            kind,
            ServiceKind::Dnsmasq,
            key,
            "lease_time",
            s.lease_time.as_ref().map(Spanned::span),
        );
        self.only_for(
            kind,
            ServiceKind::Dnsmasq,
            key,
            "tftp_root",
            s.tftp_root.as_ref().map(Spanned::span),
        );
        self.only_for(
            kind,
            ServiceKind::Httpd,
            key,
            "root",
            s.root.as_ref().map(Spanned::span),
        );
        self.only_for(
            kind,
            ServiceKind::Sshd,
            key,
            "password",
            s.password.as_ref().map(Spanned::span),
        );
        self.only_for(
            kind,
            ServiceKind::Sshd,
            key,
            "authorized_keys",
            s.authorized_keys.as_ref().map(Spanned::span),
        );
        self.only_for(
            kind,
            ServiceKind::Container,
            key,
            "build",
            s.build.as_ref().map(Spanned::span),
        );
        self.only_for(
            kind,
            ServiceKind::Container,
            key,
            "cap_add",
            s.cap_add.first().map(Spanned::span),
        );
        let build = match (kind, &s.build) {
            (ServiceKind::Container, Some(b)) => self.build(b, &table, key, name),
            _ => None,
        };
        let image = match (kind, &s.image) {
            (ServiceKind::Container, None) if s.build.is_some() => {
                build.as_ref().map(|_| self.build_tag(name))
            }
            (ServiceKind::Container, Some(i)) if s.build.is_some() => {
                self.err(
                    Some(i.span()),
                    format!("{key}.image"),
                    "a `container` service gives either `image` or `build`, not both",
                    "keep image = \"NAME:TAG\" to run an image, or build = \"DIR\" to build one",
                );
                None
            }
            (ServiceKind::Container, None) => {
                self.err(
                    Some(table.clone()),
                    key,
                    "a `container` service needs an `image` or a `build` directory",
                    "add image = \"NAME:TAG\", or build = \"DIR\" (a directory with a Dockerfile)",
                );
                None
            }
            (ServiceKind::Rancher, None) => Some(DEFAULT_RANCHER_IMAGE.to_string()),
            (ServiceKind::Container | ServiceKind::Rancher, Some(i)) => {
                self.text(i, &format!("{key}.image"))
            }
            (_, Some(i)) => {
                self.err(
                    Some(i.span()),
                    format!("{key}.image"),
                    format!("lab builds the image of a `{kind}` service itself"),
                    "remove `image`, or use kind = \"container\" to run an image of your own",
                );
                None
            }
            (_, None) => None,
        };
        let ip = match &s.ip {
            Some(ip) => self.ip(ip, &format!("{key}.ip")),
            None => None,
        };
        let mut ports = Vec::new();
        for p in &s.ports {
            if let Some(pm) = self.port_map(p, &format!("{key}.ports")) {
                ports.push((pm, p.span()));
            }
        }
        if kind == ServiceKind::Rancher && s.ports.is_empty() {
            ports = vec![
                (
                    PortMap {
                        host: 80,
                        container: 80,
                        protocol: Proto::Tcp,
                        host_ip: None,
                    },
                    table.clone(),
                ),
                (
                    PortMap {
                        host: 443,
                        container: 443,
                        protocol: Proto::Tcp,
                        host_ip: None,
                    },
                    table.clone(),
                ),
            ];
        }
        let mut env = BTreeMap::new();
        for (k, v) in &s.env {
            if let Some(t) = self.text(v, &format!("{key}.env.{k}")) {
                env.insert(k.clone(), t);
            }
        }
        let mut volumes = Vec::new();
        for v in &s.volumes {
            if let Some(m) = self.volume(v, &format!("{key}.volumes")) {
                volumes.push(m);
            }
        }
        if kind == ServiceKind::Rancher && s.volumes.is_empty() {
            volumes.push(VolumeMount::Volume {
                name: format!("{name}-data"),
                target: "/var/lib/rancher".into(),
                read_only: false,
            });
        }
        let command = s.command.as_ref().and_then(|c| {
            let k = format!("{key}.command");
            let at = |t: &String| Spanned::new(c.span(), t.clone());
            match c.get_ref() {
                Command::Line(l) => self
                    .text(&at(l), &k)
                    .map(|t| t.split_whitespace().map(str::to_string).collect()),
                Command::Args(a) => a.iter().map(|x| self.text(&at(x), &k)).collect(),
            }
        });
        // A setting that failed was reported: the lab is not returned, and the placeholder
        // (an empty image or path, an empty DHCP range) only lets the other checks run.
        let config = match kind {
            ServiceKind::Dnsmasq => ServiceConfig::Dnsmasq {
                dhcp: self.dhcp(s, &table, key, net).unwrap_or(Dhcp {
                    range: (Ipv4Addr::UNSPECIFIED, Ipv4Addr::UNSPECIFIED),
                    lease_time: String::new(),
                }),
                tftp_root: s
                    .tftp_root
                    .as_ref()
                    .and_then(|t| self.dir_path(Some(t), "", &table, &format!("{key}.tftp_root"))),
            },
            ServiceKind::Httpd => ServiceConfig::Httpd {
                root: self
                    .dir_path(s.root.as_ref(), "webroot", &table, &format!("{key}.root"))
                    .unwrap_or_default(),
            },
            ServiceKind::Sshd => {
                let authorized_keys = s
                    .authorized_keys
                    .as_ref()
                    .and_then(|p| self.file_path(p, &format!("{key}.authorized_keys")));
                let password = self
                    .opt_text(&s.password, &format!("{key}.password"))
                    .unwrap_or_else(|| DEFAULT_ROOT_PASSWORD.into());
                ServiceConfig::Sshd {
                    password,
                    authorized_keys,
                }
            }
            ServiceKind::Rancher => ServiceConfig::Rancher {
                image: image.unwrap_or_default(),
            },
            ServiceKind::Container => ServiceConfig::Container {
                image: image.unwrap_or_default(),
                build,
                cap_add: self.cap_add(&s.cap_add, key),
            },
        };
        let spans = ServiceSpans {
            table,
            ip: s.ip.as_ref().map(Spanned::span),
            ports: ports.iter().map(|(_, sp)| sp.clone()).collect(),
        };
        let service = Service {
            name: name.to_string(),
            ip: ip.unwrap_or(Ipv4Addr::UNSPECIFIED),
            ports: ports.into_iter().map(|(p, _)| p).collect(),
            env,
            volumes,
            command,
            config,
        };
        Some((service, spans))
    }

    fn only_for(
        &mut self,
        kind: ServiceKind,
        wanted: ServiceKind,
        key: &str,
        field: &str,
        span: Option<Range<usize>>,
    ) {
        if kind != wanted && span.is_some() {
            self.err(
                span,
                format!("{key}.{field}"),
                format!("`{field}` applies only to {wanted} services, and this one is {kind}"),
                format!("remove `{field}` from {key}"),
            );
        }
    }

    fn dhcp(
        &mut self,
        s: &RawService,
        table: &Range<usize>,
        key: &str,
        net: &Network,
    ) -> Option<Dhcp> {
        let Some(range) = &s.dhcp_range else {
            self.err(
                Some(table.clone()),
                key,
                "a dnsmasq service needs a `dhcp_range`",
                "add dhcp_range = [\"FIRST\", \"LAST\"] with two addresses of the subnet",
            );
            return None;
        };
        if range.len() != 2 {
            let span = range.first().map_or(table.clone(), Spanned::span);
            let n = match range.len() {
                1 => "one address".to_string(),
                n => format!("{n} addresses"),
            };
            self.err(
                Some(span),
                format!("{key}.dhcp_range"),
                format!("dhcp_range has {n}, not two"),
                "give exactly two: [\"FIRST\", \"LAST\"]",
            );
            return None;
        }
        let k = format!("{key}.dhcp_range");
        let (a, b) = (self.ip(&range[0], &k)?, self.ip(&range[1], &k)?);
        for (ip, sp) in [(a, range[0].span()), (b, range[1].span())] {
            if !is_host_of(net.subnet, ip) {
                self.err(
                    Some(sp),
                    &k,
                    format!("{ip} is not a host address of {}", net.subnet),
                    format!(
                        "pick addresses between {} and {}",
                        first_host(net.subnet),
                        last_host(net.subnet)
                    ),
                );
                return None;
            }
        }
        if a > b {
            self.err(
                Some(range[0].span()),
                &k,
                format!("the range starts at {a}, after its end {b}"),
                "write the lower address first",
            );
            return None;
        }
        if (a..=b).contains(&net.gateway) {
            self.err(
                Some(range[0].span()),
                &k,
                format!("the range {a}-{b} contains the gateway {}", net.gateway),
                "move the range or the gateway",
            );
        }
        let lease_time = self
            .opt_text(&s.lease_time, &format!("{key}.lease_time"))
            .unwrap_or_else(|| "2h".into());
        if !valid_lease(&lease_time) {
            self.err(
                s.lease_time.as_ref().map(Spanned::span),
                format!("{key}.lease_time"),
                format!("`{lease_time}` is not a lease time"),
                "write seconds or a number with s, m, h, d or w (e.g. 2h), or `infinite`",
            );
        }
        Some(Dhcp {
            range: (a, b),
            lease_time,
        })
    }

    /// `HOST:CONTAINER[/udp]`, compose style; a bare `PORT` publishes the same port.
    fn port_map(&mut self, s: &Str, key: &str) -> Option<PortMap> {
        let t = self.text(s, key)?;
        let (ports, proto) = match t.rsplit_once('/') {
            Some((p, "tcp")) => (p, Proto::Tcp),
            Some((p, "udp")) => (p, Proto::Udp),
            Some((_, other)) => {
                self.err(
                    Some(s.span()),
                    key,
                    format!("`{t}`: unknown protocol `{other}`"),
                    "use /tcp (default) or /udp",
                );
                return None;
            }
            None => (t.as_str(), Proto::Tcp),
        };
        let (h, c) = ports.split_once(':').unwrap_or((ports, ports));
        match (parse_port(h), parse_port(c)) {
            (Some(host), Some(container)) => Some(PortMap {
                host,
                container,
                protocol: proto,
                host_ip: None,
            }),
            _ => {
                self.err(Some(s.span()), key, format!("`{t}` is not a port mapping"), "write \"HOST:CONTAINER\" or \"HOST:CONTAINER/udp\" with ports from 1 to 65535, e.g. \"2222:22\"");
                None
            }
        }
    }

    /// `SOURCE:TARGET[:ro|:rw]`: a path source (absolute, or starting with `.`) is a bind mount,
    /// anything else a named volume of the lab.
    fn volume(&mut self, s: &Str, key: &str) -> Option<VolumeMount> {
        let t = self.text(s, key)?;
        let parts: Vec<&str> = t.split(':').collect();
        let (src, target, read_only) = match parts.as_slice() {
            [src, target] => (*src, *target, false),
            [src, target, "ro"] => (*src, *target, true),
            [src, target, "rw"] => (*src, *target, false),
            _ => {
                self.err(Some(s.span()), key, format!("`{t}` is not a volume"), "write \"SOURCE:TARGET\" or \"SOURCE:TARGET:ro\"; SOURCE is a path (./data, /srv/x) or a volume name");
                return None;
            }
        };
        if !target.starts_with('/') {
            self.err(
                Some(s.span()),
                key,
                format!("`{t}`: the target `{target}` is not an absolute path"),
                "mount at an absolute path inside the container, e.g. /data",
            );
            return None;
        }
        if src.starts_with('/') || src.starts_with('.') {
            let path = absolute(&self.dir.join(src));
            if !path.exists() {
                self.err(
                    Some(s.span()),
                    key,
                    format!("`{src}` does not exist ({})", path.display()),
                    "create it, or fix the path (relative paths are relative to the lab file)",
                );
                return None;
            }
            return Some(VolumeMount::Bind {
                source: path,
                target: target.into(),
                read_only,
            });
        }
        if src.is_empty()
            || !src
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c))
        {
            self.err(
                Some(s.span()),
                key,
                format!("`{src}` is neither a path nor a volume name"),
                "start a path with / or ./; a volume name uses letters, digits, _ . -",
            );
            return None;
        }
        Some(VolumeMount::Volume {
            name: src.into(),
            target: target.into(),
            read_only,
        })
    }

    fn dir_path(
        &mut self,
        s: Option<&Str>,
        default: &str,
        table: &Range<usize>,
        key: &str,
    ) -> Option<PathBuf> {
        let (rel, span) = match s {
            Some(s) => (self.text(s, key)?, s.span()),
            None => (default.to_string(), table.clone()),
        };
        let path = absolute(&self.dir.join(&rel));
        if !path.is_dir() {
            let msg = if path.exists() {
                format!("`{rel}` is not a directory ({})", path.display())
            } else {
                format!("directory `{rel}` does not exist ({})", path.display())
            };
            self.err(
                Some(span),
                key,
                msg,
                "create it, or fix the path (relative paths are relative to the lab file)",
            );
            return None;
        }
        Some(path)
    }

    /// A file relative to the lab file, or to the home directory with `~/` (as the README's
    /// `authorized_keys = "~/.ssh/id_ed25519.pub"`).
    fn file_path(&mut self, s: &Str, key: &str) -> Option<PathBuf> {
        let rel = self.text(s, key)?;
        let base = match rel.strip_prefix("~/") {
            None => self.dir.join(&rel),
            Some(rest) => match (self.env)("HOME").filter(|h| !h.is_empty()) {
                Some(home) => Path::new(&home).join(rest),
                None => {
                    self.err(
                        Some(s.span()),
                        key,
                        format!("`{rel}` starts with ~/ but HOME is not set"),
                        "set HOME, or write the path out",
                    );
                    return None;
                }
            },
        };
        let path = absolute(&base);
        if !path.is_file() {
            let msg = if path.exists() {
                format!("`{rel}` is not a file ({})", path.display())
            } else {
                format!("file `{rel}` does not exist ({})", path.display())
            };
            self.err(
                Some(s.span()),
                key,
                msg,
                "create it, or fix the path (relative paths are relative to the lab file)",
            );
            return None;
        }
        Some(path)
    }
}

struct ServiceSpans {
    table: Range<usize>,
    ip: Option<Range<usize>>,
    ports: Vec<Range<usize>>,
}

mod assets;
mod build;
mod checks;
mod identity;
mod keypath;
mod nodes;

pub(super) fn first_host(net: Ipv4Net) -> Ipv4Addr {
    Ipv4Addr::from(u32::from(net.network()) + 1)
}

pub(super) fn last_host(net: Ipv4Net) -> Ipv4Addr {
    Ipv4Addr::from(u32::from(net.broadcast()) - 1)
}

/// Inside the subnet, and neither its network nor its broadcast address.
pub(super) fn is_host_of(net: Ipv4Net, ip: Ipv4Addr) -> bool {
    net.contains(&ip) && ip != net.network() && ip != net.broadcast()
}

/// The canonical path when it exists, so messages and mounts show `/x/webroot`, not `/x/labs/../webroot`.
/// A missing path is only tidied: collecting its components drops the `.` of `/x/./data`.
fn absolute(p: &Path) -> PathBuf {
    std::fs::canonicalize(p).unwrap_or_else(|_| p.components().collect())
}

fn parse_port(s: &str) -> Option<u16> {
    s.trim().parse::<u16>().ok().filter(|p| *p > 0)
}

fn valid_lease(s: &str) -> bool {
    if s == "infinite" {
        return true;
    }
    let digits = s.trim_end_matches(['s', 'm', 'h', 'd', 'w']);
    !digits.is_empty() && digits.len() + 1 >= s.len() && digits.chars().all(|c| c.is_ascii_digit())
}

/// `512M`, `2G`, `2GiB`, `1024` (bytes) -> bytes.
pub fn parse_size(s: &str) -> Option<u64> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: u64 = num.parse().ok()?;
    let mult: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" | "kib" => 1 << 10,
        "m" | "mb" | "mib" => 1 << 20,
        "g" | "gb" | "gib" => 1 << 30,
        "t" | "tb" | "tib" => 1 << 40,
        _ => return None,
    };
    n.checked_mul(mult)
}
