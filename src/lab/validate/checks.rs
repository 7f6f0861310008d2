//! Checks across the whole lab: address allocation and uniqueness, the DHCP range, host ports,
//! names, and what booting nodes needs.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr};
use std::ops::Range;

use super::{
    first_host, is_host_of, PendingNode, ServiceSpans, Validator, DEFAULT_BMC_PASSWORD,
    DEFAULT_BMC_USER, DEFAULT_ROOT_PASSWORD,
};
use crate::config::RawConfig;
use crate::lab::{Lab, Network, Proto, Service, ServiceConfig, ServiceKind};

/// Who holds an address or port, for messages that name both sides of a clash.
struct Holder {
    key: String,
}

fn dhcp_range(services: &[(Service, ServiceSpans)]) -> Option<(Ipv4Addr, Ipv4Addr)> {
    services.iter().find_map(|(s, _)| match &s.config {
        ServiceConfig::Dnsmasq { dhcp, .. } if !dhcp.range.0.is_unspecified() => Some(dhcp.range),
        _ => None,
    })
}

impl Validator<'_> {
    /// Gives an address to every service and node that has none: the lowest free host address
    /// outside the DHCP range.
    pub(super) fn allocate(
        &mut self,
        net: &Network,
        services: &mut [(Service, ServiceSpans)],
        nodes: &mut [PendingNode],
    ) {
        let range = dhcp_range(services);
        let mut used: Vec<Ipv4Addr> = vec![net.gateway];
        used.extend(
            services
                .iter()
                .map(|(s, _)| s.ip)
                .filter(|ip| !ip.is_unspecified()),
        );
        used.extend(
            nodes
                .iter()
                .filter(|n| n.ip_given)
                .flat_map(|n| n.node.nic_ips.iter().copied()),
        );
        used.extend(nodes.iter().filter(|n| n.bmc_given).map(|n| n.node.bmc_ip));
        let mut next = u32::from(first_host(net.subnet));
        let mut take = |v: &mut Validator, key: &str, span: Range<usize>| -> Ipv4Addr {
            loop {
                let ip = Ipv4Addr::from(next);
                if !is_host_of(net.subnet, ip) {
                    v.err(
                        Some(span),
                        key,
                        format!("no free address left in {} to give it", net.subnet),
                        "set its ip explicitly, or use a larger subnet",
                    );
                    return Ipv4Addr::UNSPECIFIED;
                }
                // Jump over the DHCP range at once: it can span most of a large subnet.
                if let Some((_, b)) = range.filter(|(a, b)| (*a..=*b).contains(&ip)) {
                    next = u32::from(b) + 1;
                    continue;
                }
                next += 1;
                if !used.contains(&ip) {
                    used.push(ip);
                    return ip;
                }
            }
        };
        for (s, spans) in services.iter_mut().filter(|(s, _)| s.ip.is_unspecified()) {
            s.ip = take(
                self,
                &format!("services.{}.ip", s.name),
                spans.table.clone(),
            );
        }
        for n in nodes.iter_mut() {
            if !n.bmc_given {
                n.node.bmc_ip = take(
                    self,
                    &format!("{}.bmc_ip", n.key),
                    n.bmc_span.clone().unwrap_or(0..0),
                );
            }
            if !n.ip_given {
                let key = format!("{}.ip", n.key);
                let span = n.ip_span.clone().unwrap_or(0..0);
                n.node.nic_ips = (0..n.node.nic_macs.len().max(1))
                    .map(|_| take(self, &key, span.clone()))
                    .collect();
                n.node.ip = n.node.nic_ips[0];
            }
        }
    }

    pub(super) fn check_addresses(
        &mut self,
        net: &Network,
        services: &[(Service, ServiceSpans)],
        nodes: &[PendingNode],
    ) {
        let range = dhcp_range(services);
        let mut seen: HashMap<Ipv4Addr, Holder> = HashMap::new();
        let mut statics = Vec::new();
        // (address, key, span, outside the DHCP range, NIC number for a node's later NICs)
        for (s, sp) in services {
            statics.push((
                s.ip,
                format!("services.{}.ip", s.name),
                sp.ip.clone().or(Some(sp.table.clone())),
                true,
                None,
            ));
        }
        for n in nodes {
            statics.push((
                n.node.bmc_ip,
                format!("{}.bmc_ip", n.key),
                n.bmc_span.clone(),
                true,
                None,
            ));
            statics.push((
                n.node.ip,
                format!("{}.ip", n.key),
                n.ip_span.clone(),
                false,
                None,
            ));
            for (k, ip) in n.node.nic_ips.iter().enumerate().skip(1) {
                let key = format!("{}.ip", n.key);
                statics.push((*ip, key, n.ip_span.clone(), false, Some(k + 1)));
            }
        }
        for (ip, key, span, outside_range, nic) in statics {
            if ip.is_unspecified() {
                continue; // allocation already reported it
            }
            // A later NIC's address is not in the file: say where it came from.
            let (what, room) = match nic {
                Some(k) => (
                    format!("{ip} (the reservation of NIC {k}: nics = N reserves N consecutive addresses from ip)"),
                    "; leave room after ip for every NIC, or leave ip out to have each NIC's address allocated",
                ),
                None => (ip.to_string(), ""),
            };
            if !is_host_of(net.subnet, ip) {
                self.err(span, &key, format!("{what} is not a host address of the lab subnet {}", net.subnet), format!("pick an address inside the subnet, other than its network and broadcast addresses{room}"));
                continue;
            }
            if ip == net.gateway {
                self.err(
                    span,
                    &key,
                    format!("{what} is the gateway address"),
                    format!("the gateway belongs to the Docker bridge on the host: pick another address{room}"),
                );
                continue;
            }
            if let (true, Some((a, b))) = (outside_range, range) {
                if (a..=b).contains(&ip) {
                    self.err(span.clone(), &key, format!("{ip} is inside the DHCP range {a}-{b}"), "dnsmasq could lease it to another machine: pick an address outside the range, or shrink dhcp_range");
                }
            }
            if let Some(first) = seen.get(&ip) {
                let msg = format!("{what} is already used by {}", first.key);
                self.err(
                    span,
                    &key,
                    msg,
                    format!("give every service, BMC and node reservation its own address{room}"),
                );
            } else {
                let key = match nic {
                    Some(k) => format!(
                        "{}'s NIC {k} (nics = N reserves N consecutive addresses from ip)",
                        key.trim_end_matches(".ip")
                    ),
                    None => key,
                };
                seen.insert(ip, Holder { key });
            }
        }
        // Every NIC's MAC (a node with `nics = N` has N consecutive ones), with who has it.
        let mut macs: HashMap<_, (String, usize)> = HashMap::new();
        for n in nodes {
            for (i, mac) in n.node.nic_macs.iter().enumerate() {
                if let Some((first, nic)) = macs.get(mac) {
                    if !n.mac_given && *first == n.key {
                        continue; // two nodes of the same name derive the same MAC: check_names says so
                    }
                    let help = if n.mac_given {
                        "give every node its own MAC"
                    } else {
                        "the derived MAC clashes: set `mac` explicitly"
                    };
                    let whose = |key: &str, nic: usize| match nic {
                        0 => key.to_string(),
                        _ => format!(
                            "{key}'s NIC {} (nics = N takes N consecutive MACs)",
                            nic + 1
                        ),
                    };
                    let msg = format!("MAC {mac} is already used by {}", whose(first, *nic));
                    let key = format!("{}.{}", n.key, if i == 0 { "mac" } else { "nics" });
                    self.err(n.mac_span.clone(), key, msg, help);
                } else {
                    macs.insert(*mac, (n.key.clone(), i));
                }
            }
        }
    }

    pub(super) fn check_ports(
        &mut self,
        publish: IpAddr,
        services: &[(Service, ServiceSpans)],
        nodes: &[PendingNode],
    ) {
        // Each BMC's own address: one node each (then its ports cannot clash with another's).
        let mut bmc_addrs: HashMap<Ipv4Addr, &str> = HashMap::new();
        let mut shared = Vec::new();
        for n in nodes {
            let Some(a) = n.node.bmc_publish else {
                continue;
            };
            if let Some(first) = bmc_addrs.get(&a) {
                let msg = format!("{a} is already the BMC address of {first}");
                self.err(n.bmc_publish_span.clone(), format!("{}.bmc_publish", n.key), msg, "give each BMC its own host address (a group steps bmc_publish up by one per member)");
                shared.push(n.key.as_str());
            } else {
                bmc_addrs.insert(a, n.key.as_str());
            }
        }
        let mut all = Vec::new();
        for (s, sp) in services {
            for (p, span) in s.ports.iter().zip(sp.ports.iter()) {
                all.push((
                    publish,
                    p.protocol,
                    p.host,
                    format!("services.{}.ports", s.name),
                    Some(span.clone()),
                ));
            }
        }
        for n in nodes {
            if let Some(p) = n.node.vnc_port {
                all.push((
                    publish,
                    Proto::Tcp,
                    p,
                    format!("{}.vnc_port", n.key),
                    n.vnc_span.clone(),
                ));
            }
            if shared.contains(&n.key.as_str()) {
                continue; // its BMC address is reported
            }
            // Ports the file does not give (a bmc_publish's standard ports, a Redfish port
            // that took ipmi_port's number) point at what they came from.
            let at = n.node.bmc_publish.map_or(publish, IpAddr::V4);
            let or_publish =
                |span: &Option<Range<usize>>| span.clone().or(n.bmc_publish_span.clone());
            if let Some(p) = n.node.ipmi_port {
                let key = format!("{}.ipmi_port", n.key);
                all.push((at, Proto::Udp, p, key, or_publish(&n.ipmi_span)));
            }
            if let Some(p) = n.node.redfish_port {
                let span = if n.redfish_from_ipmi {
                    n.ipmi_span.clone()
                } else {
                    or_publish(&n.redfish_span)
                };
                all.push((at, Proto::Tcp, p, format!("{}.redfish_port", n.key), span));
            }
        }
        let derived: Vec<String> = nodes
            .iter()
            .filter(|n| n.redfish_from_ipmi)
            .map(|n| format!("{}.redfish_port", n.key))
            .collect();
        const TAKEN: &str = " (left out: ipmi_port's number over TCP)";
        // Two bindings of a port clash on the same address, or when either is a wildcard.
        let mut seen: Vec<(IpAddr, Proto, u16, String)> = Vec::new();
        for (addr, proto, port, key, span) in all {
            let is_derived = derived.contains(&key);
            let clash = seen.iter().find(|(a, p, n, _)| {
                *p == proto
                    && *n == port
                    && (*a == addr || a.is_unspecified() || addr.is_unspecified())
            });
            if let Some((first_addr, _, _, first)) = clash {
                if is_derived && first.ends_with(TAKEN) {
                    continue; // both took their ipmi_port's number: that clash is reported
                }
                // Say the address when it is not everyone's lab.publish.
                let on = if addr == publish && *first_addr == publish {
                    String::new()
                } else {
                    format!(" on {addr}")
                };
                let mut msg = format!(
                    "host port {port}/{}{on} is already published by {first}",
                    proto.as_str()
                );
                let help = if is_derived {
                    msg +=
                        "; redfish_port is left out, so Redfish takes ipmi_port's number over TCP";
                    "set redfish_port for this node to a free TCP port"
                } else if on.is_empty() {
                    "every published host port must be unique per protocol: pick another port"
                } else {
                    "a host port is published once per protocol and address (0.0.0.0 is every address): pick another port or address"
                };
                self.err(span, &key, msg, help);
            } else if is_derived {
                seen.push((addr, proto, port, format!("{key}{TAKEN}")));
            } else {
                seen.push((addr, proto, port, key));
            }
        }
    }

    pub(super) fn check_names(
        &mut self,
        raw: &RawConfig,
        services: &[(Service, ServiceSpans)],
        nodes: &[PendingNode],
    ) {
        let mut seen: HashMap<&str, String> = HashMap::new();
        for (s, _) in services {
            seen.insert(&s.name, format!("services.{}", s.name));
        }
        for n in nodes {
            if let Some(first) = seen.get(n.node.name.as_str()) {
                let span = raw
                    .nodes
                    .iter()
                    .find(|(g, _)| *g.get_ref() == n.node.group)
                    .map(|(g, _)| g.span());
                let msg = format!("the name `{}` is already taken by {first}", n.node.name);
                self.err(
                    span,
                    &n.key,
                    msg,
                    "service and node names (after count expansion) must be unique: rename one",
                );
            } else if n.node.group != n.node.name {
                // Say where an expanded name comes from: `nodes.worker-1` is not in the file.
                seen.insert(
                    &n.node.name,
                    format!("{} (count expansion of [nodes.{}])", n.key, n.node.group),
                );
            } else {
                seen.insert(&n.node.name, n.key.clone());
            }
        }
    }

    /// Published on an address other hosts reach, a BMC with lab's default credential
    /// (admin/admin) or an sshd with the default root password (`labpassword`) is an open door:
    /// refused, saying what to set. Loopback (the default `lab.publish`) keeps the defaults.
    pub(super) fn check_safe_defaults(&mut self, raw: &RawConfig, lab: &Lab) {
        let span = raw.lab.get_ref().publish.as_ref().map(|p| p.span());
        let publish = lab.publish;
        let mut groups = Vec::new();
        for node in &lab.nodes {
            let default =
                node.bmc_user == DEFAULT_BMC_USER && node.bmc_password == DEFAULT_BMC_PASSWORD;
            let published = node.ipmi_port.is_some() || node.redfish_port.is_some();
            let at = node.bmc_publish.map_or(publish, IpAddr::V4);
            if default
                && published
                && !at.is_loopback()
                && !groups.iter().any(|(g, _)| *g == node.group)
            {
                groups.push((node.group.clone(), node.bmc_publish));
            }
        }
        for (group, own) in groups {
            let (span, on, instead) = match own {
                Some(a) => {
                    let span = raw
                        .nodes
                        .iter()
                        .find(|(g, _)| *g.get_ref() == group)
                        .and_then(|(_, t)| t.get_ref().bmc_publish.as_ref().map(|p| p.span()));
                    (
                        span,
                        format!("bmc_publish = {a}"),
                        "or publish it on a loopback address such as 127.0.0.10",
                    )
                }
                None => (
                    span.clone(),
                    format!("lab.publish = {publish}"),
                    "or publish on 127.0.0.1",
                ),
            };
            self.err(
                span,
                format!("nodes.{group}.bmc_password"),
                format!("the BMC of nodes.{group} is published on {on} with the default credential admin/admin"),
                format!("set bmc_password in [nodes.{group}] or [node_defaults], e.g. from the environment: bmc_password = \"${{LAB_BMC_PASSWORD}}\"; {instead}"),
            );
        }
        if publish.is_loopback() {
            return;
        }
        for service in &lab.services {
            if let ServiceConfig::Sshd { password, .. } = &service.config {
                if password == DEFAULT_ROOT_PASSWORD && !service.ports.is_empty() {
                    let name = &service.name;
                    self.err(
                        span.clone(),
                        format!("services.{name}.password"),
                        format!("the sshd service {name} is published on lab.publish = {publish} with the default root password"),
                        format!("set password in [services.{name}], e.g. from the environment: password = \"${{LAB_SSH_PASSWORD}}\"; or publish on 127.0.0.1"),
                    );
                }
            }
        }
    }

    /// Nodes network-boot from the lab's dnsmasq and httpd services, or from the user's own
    /// provisioner (a `container` service that answers DHCP; then lab's dnsmasq is left out, and
    /// httpd is needed only to serve profiles). Profiles' templates live under the httpd root.
    pub(super) fn check_boot_services(&mut self, raw: &RawConfig, lab: &Lab) {
        if lab.nodes.is_empty() {
            return;
        }
        let node_span = raw.nodes.first().map(|(g, _)| g.span());
        // A service whose kind is unknown was reported and left out: it may be the one missing.
        if lab.services.len() < raw.services.len() {
            return;
        }
        let dnsmasq = lab.first_of(ServiceKind::Dnsmasq).is_some();
        let provisioner = lab.first_of(ServiceKind::Container).is_some();
        if !dnsmasq && !provisioner {
            self.err(
                node_span.clone(),
                "nodes",
                "nodes need a dnsmasq service for DHCP and TFTP, and the lab has none",
                "add a [services.NAME] table with kind = \"dnsmasq\", or bring your own provisioner: a service with kind = \"container\" that answers DHCP on the lab network",
            );
        }
        let profiled = lab.nodes.iter().find(|n| n.profile.is_some());
        if lab.first_of(ServiceKind::Httpd).is_none() && (!provisioner || profiled.is_some()) {
            let why = match profiled {
                Some(n) if !dnsmasq => format!(
                    "node {} boots profile `{}`, which lab serves over HTTP, and the lab has no httpd service",
                    n.name,
                    n.profile.as_deref().unwrap_or_default()
                ),
                _ => "nodes need a httpd service for boot scripts over HTTP, and the lab has none"
                    .to_string(),
            };
            let help = if dnsmasq || !provisioner {
                "add a [services.NAME] table with kind = \"httpd\""
            } else {
                "add a [services.NAME] table with kind = \"httpd\", or leave `profile` out: your provisioner decides what the nodes boot"
            };
            self.err(node_span.clone(), "nodes", why, help);
        }
        let Some(root) = lab.web_root() else {
            return;
        };
        for (name, p) in &raw.profiles {
            let Some(profile) = lab.profiles.get(name.get_ref()) else {
                continue;
            };
            // Point at the entry itself; the raw list lines up with the model's unless an entry
            // failed interpolation (already reported), then at the profile.
            let raw_p = p.get_ref();
            let aligned = raw_p.cloud_configs.len() == profile.cloud_configs.len();
            let spans = raw_p
                .cloud_configs
                .iter()
                .map(|c| Some(c.span()).filter(|_| aligned))
                .chain([raw_p.ipxe.as_ref().map(|c| c.span())]);
            let templates = profile
                .cloud_configs
                .iter()
                .map(|c| ("cloud_configs", c))
                .chain(profile.ipxe.iter().map(|c| ("ipxe", c)));
            for ((field, rel), span) in templates.zip(spans) {
                let key = format!("profiles.{}.{field}", name.get_ref());
                if !crate::render::is_relative_inside(rel.trim_start_matches("./")) {
                    self.err(
                        span.or(Some(p.span())),
                        key,
                        format!("template `{rel}` is not inside the web root"),
                        "name templates by a path relative to the web root, without `..`",
                    );
                    continue;
                }
                let path = root.join(rel);
                if !path.is_file() {
                    let msg = format!("template `{rel}` does not exist ({})", path.display());
                    self.err(
                        span.or(Some(p.span())),
                        key,
                        msg,
                        "paths are relative to the web root: create the file or fix the path",
                    );
                }
            }
        }
    }
}
