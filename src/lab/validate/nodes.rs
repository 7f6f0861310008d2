//! Nodes: `[node_defaults]` merged in, `count` expanded, MACs (listed per member or stepped
//! up), addresses and ports stepped up.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::ops::Range;

use toml::Spanned;

use super::{
    identity, parse_size, PendingNode, Validator, DEFAULT_BMC_PASSWORD, DEFAULT_BMC_USER, MAX_COUNT,
};
use crate::config::{RawConfig, RawNode, Sizes, Str};
use crate::lab::{
    Accel, BootDevice, Disk, Firmware, Mac, Network, Node, Power, PowerRestore, Profile, IPMI_PORT,
    MAX_DISKS, MAX_NICS, REDFISH_PORT,
};

/// Keys that identify one machine and so cannot be shared through `[node_defaults]`.
const PER_NODE_KEYS: [&str; 11] = [
    "count",
    "mac",
    "macs",
    "ip",
    "bmc_ip",
    "vnc_port",
    "ipmi_port",
    "serial",
    "uuid",
    "redfish_port",
    "bmc_publish",
];

fn pick<'r, T>(node: &'r Option<T>, dflt: &'r Option<T>) -> Option<&'r T> {
    node.as_ref().or(dflt.as_ref())
}

impl Validator<'_> {
    pub(super) fn nodes(
        &mut self,
        raw: &RawConfig,
        _net: &Network,
        profiles: &BTreeMap<String, Profile>,
    ) -> Vec<PendingNode> {
        let defaults = raw.node_defaults.get_ref();
        self.check_defaults(defaults);
        let mut out = Vec::new();
        for (group, table) in &raw.nodes {
            let key = format!("nodes.{}", group.get_ref());
            if !self.dns_label(group.get_ref(), Some(group.span()), &key) {
                continue;
            }
            out.extend(self.group(group.get_ref(), table, defaults, profiles, &key));
        }
        out
    }

    fn check_defaults(&mut self, d: &RawNode) {
        let spans = [
            d.count.as_ref().map(Spanned::span),
            d.mac.as_ref().map(Spanned::span),
            d.macs.as_ref().map(Spanned::span),
            d.ip.as_ref().map(Spanned::span),
            d.bmc_ip.as_ref().map(Spanned::span),
            d.vnc_port.as_ref().map(Spanned::span),
            d.ipmi_port.as_ref().map(Spanned::span),
            d.serial.as_ref().map(Spanned::span),
            d.uuid.as_ref().map(Spanned::span),
            d.redfish_port.as_ref().map(Spanned::span),
            d.bmc_publish.as_ref().map(Spanned::span),
        ];
        for (k, span) in PER_NODE_KEYS.iter().zip(spans) {
            if span.is_some() {
                self.err(
                    span,
                    format!("node_defaults.{k}"),
                    format!("`{k}` identifies one node and cannot be a default"),
                    format!("set `{k}` in each [nodes.NAME] table"),
                );
            }
        }
    }

    fn group(
        &mut self,
        group: &str,
        table: &Spanned<RawNode>,
        d: &RawNode,
        profiles: &BTreeMap<String, Profile>,
        key: &str,
    ) -> Vec<PendingNode> {
        let n = table.get_ref();
        let count = match &n.count {
            None => None,
            Some(c) if (1..=MAX_COUNT).contains(c.get_ref()) => Some(*c.get_ref() as u32),
            Some(c) => {
                self.err(
                    Some(c.span()),
                    format!("{key}.count"),
                    format!("count {} is out of range", c.get_ref()),
                    format!("use a count from 1 to {MAX_COUNT}"),
                );
                return Vec::new();
            }
        };
        // The last name is the longest; report it once, not once per node.
        if let Some(last) = count
            .map(|c| format!("{group}-{c}"))
            .filter(|l| l.len() > 63)
        {
            self.err(
                Some(table.span()),
                key,
                format!("the node name `{last}` is longer than 63 characters"),
                "shorten the group name",
            );
            return Vec::new();
        }
        let template = self.node_settings(group, n, d, profiles, key);
        let mac = n
            .mac
            .as_ref()
            .and_then(|m| self.mac(m, &format!("{key}.mac")));
        let listed = self.listed_macs(n, count, key);
        let ip = n.ip.as_ref().and_then(|s| self.ip(s, &format!("{key}.ip")));
        let bmc_ip = n
            .bmc_ip
            .as_ref()
            .and_then(|s| self.ip(s, &format!("{key}.bmc_ip")));
        let vnc = n
            .vnc_port
            .as_ref()
            .and_then(|p| self.port_number(p, &format!("{key}.vnc_port")));
        let ipmi = n
            .ipmi_port
            .as_ref()
            .and_then(|p| self.port_number(p, &format!("{key}.ipmi_port")));
        let (serial, uuid) = if count.is_some() {
            self.refuse_shared_identity(n.serial.as_ref(), n.uuid.as_ref(), key);
            (None, None)
        } else {
            (
                n.serial
                    .as_ref()
                    .and_then(|s| self.serial(s, &format!("{key}.serial"))),
                n.uuid
                    .as_ref()
                    .and_then(|s| self.uuid(s, &format!("{key}.uuid"))),
            )
        };
        let asset_tag_given = pick(&n.asset_tag, &d.asset_tag).is_some();
        let nics = match pick(&n.nics, &d.nics) {
            None => 1,
            Some(c) if (1..=MAX_NICS).contains(c.get_ref()) => *c.get_ref() as u32,
            Some(c) => {
                self.err(
                    Some(c.span()),
                    format!("{key}.nics"),
                    format!("nics = {} is out of range", c.get_ref()),
                    format!("use 1 to {MAX_NICS}"),
                );
                1
            }
        };
        let redfish = n
            .redfish_port
            .as_ref()
            .and_then(|p| self.port_number(p, &format!("{key}.redfish_port")));
        let bmc_publish = n
            .bmc_publish
            .as_ref()
            .and_then(|s| self.ip(s, &format!("{key}.bmc_publish")));
        let mut out = Vec::new();
        for i in 0..count.unwrap_or(1) {
            let name = match count {
                Some(_) => format!("{group}-{}", i + 1),
                None => group.to_string(),
            };
            let node_key = format!("nodes.{name}");
            let mut node = template.clone();
            node.name = name.clone();
            let listed_mac = listed.as_ref().map(|l| l[i as usize].clone());
            node.mac = match (&listed_mac, mac) {
                (Some((Some(m), _)), _) => *m,
                // Not a MAC address: reported already.
                (Some((None, _)), _) => continue,
                // A member's NICs take consecutive MACs, so members step by the NIC count.
                (None, Some(m)) => match step_mac(m, i * nics) {
                    Some(m) => m,
                    None => {
                        let step = i * nics;
                        self.err(n.mac.as_ref().map(Spanned::span), format!("{node_key}.mac"), format!("{m} + {step} is not a unicast MAC address"), "start the group at a MAC whose last bytes leave room for the count, e.g. ...:00, or list each member's MAC in `macs`");
                        continue;
                    }
                },
                (None, None) => derived_mac(&name),
            };
            node.nic_macs = (0..nics).filter_map(|k| step_mac(node.mac, k)).collect();
            if node.nic_macs.len() != nics as usize {
                self.err(
                    n.nics.as_ref().map(Spanned::span),
                    format!("{node_key}.nics"),
                    format!("{} + {} is not a unicast MAC address", node.mac, nics - 1),
                    "start at a MAC whose last bytes leave room for every NIC, e.g. ...:00",
                );
                continue;
            }
            node.serial = serial
                .clone()
                .unwrap_or_else(|| identity::derived_serial(&self.lab_name, &name));
            node.uuid = uuid
                .clone()
                .unwrap_or_else(|| identity::derived_uuid(&self.lab_name, &name));
            for (i, d) in node.disks.iter_mut().enumerate() {
                d.serial = identity::derived_disk_serial(&self.lab_name, &name, i);
            }
            if !asset_tag_given {
                node.asset_tag = name.clone();
            }
            // A member's NICs take consecutive addresses, so members step by the NIC count (as
            // their MACs do); without `ip`, allocation gives each NIC one.
            node.nic_ips = ip.map_or(Vec::new(), |a| {
                (0..nics).map(|k| step_ip(a, i * nics + k)).collect()
            });
            node.ip = node
                .nic_ips
                .first()
                .copied()
                .unwrap_or(Ipv4Addr::UNSPECIFIED);
            node.bmc_ip = bmc_ip.map_or(Ipv4Addr::UNSPECIFIED, |a| step_ip(a, i));
            node.bmc_publish = bmc_publish.and_then(|a| {
                let span = n.bmc_publish.as_ref().map(Spanned::span);
                self.bmc_address(a, i, span, &format!("{node_key}.bmc_publish"))
            });
            node.vnc_port = vnc.and_then(|p| {
                self.step_port(p, i, n.vnc_port.as_ref(), &format!("{node_key}.vnc_port"))
            });
            if bmc_publish.is_some() && node.bmc_publish.is_none() {
                // Not a host address (reported): nothing to publish the BMC on.
                node.ipmi_port = None;
                node.redfish_port = None;
            } else if bmc_publish.is_some() {
                // A BMC with a host address of its own, as in a rack: the standard ports unless
                // the file says otherwise, the same for every member (each has its address).
                node.ipmi_port = Some(ipmi.unwrap_or(IPMI_PORT));
                node.redfish_port = Some(redfish.unwrap_or(REDFISH_PORT));
            } else {
                node.ipmi_port = ipmi.and_then(|p| {
                    self.step_port(p, i, n.ipmi_port.as_ref(), &format!("{node_key}.ipmi_port"))
                });
                // A BMC published on the host shows both faces: without `redfish_port`, Redfish
                // takes the IPMI port's number over TCP.
                node.redfish_port = match redfish {
                    Some(p) => {
                        let key = format!("{node_key}.redfish_port");
                        self.step_port(p, i, n.redfish_port.as_ref(), &key)
                    }
                    None => node.ipmi_port,
                };
            }
            out.push(PendingNode {
                node,
                key: node_key,
                mac_span: listed_mac
                    .map(|(_, span)| span)
                    .or(n.mac.as_ref().map(Spanned::span))
                    .or(Some(table.span())),
                ip_span: n.ip.as_ref().map(Spanned::span).or(Some(table.span())),
                bmc_span: n.bmc_ip.as_ref().map(Spanned::span).or(Some(table.span())),
                vnc_span: n.vnc_port.as_ref().map(Spanned::span),
                ipmi_span: n.ipmi_port.as_ref().map(Spanned::span),
                serial_span: Some(n.serial.as_ref().map_or(table.span(), Spanned::span)),
                uuid_span: Some(n.uuid.as_ref().map_or(table.span(), Spanned::span)),
                redfish_span: n.redfish_port.as_ref().map(Spanned::span),
                redfish_from_ipmi: redfish.is_none() && bmc_publish.is_none(),
                bmc_publish_span: n.bmc_publish.as_ref().map(Spanned::span),
                ip_given: ip.is_some(),
                bmc_given: bmc_ip.is_some(),
                mac_given: mac.is_some() || listed.is_some(),
            });
        }
        out
    }

    /// The MAC of each member of a group that lists them in `macs` (`None` for an entry that is
    /// not a MAC address), with the entry's span; `None` when the group has no usable `macs`.
    /// Uniqueness is checked with every other node's MAC later.
    fn listed_macs(
        &mut self,
        n: &RawNode,
        count: Option<u32>,
        key: &str,
    ) -> Option<Vec<(Option<Mac>, Range<usize>)>> {
        let list = n.macs.as_ref()?;
        let k = format!("{key}.macs");
        if n.mac.is_some() {
            self.err(
                Some(list.span()),
                k,
                "`mac` and `macs` are both set",
                "keep one: `mac` is the first member's MAC and the others step up from it by one; `macs` lists every member's MAC",
            );
            return None;
        }
        let Some(count) = count else {
            self.err(
                Some(list.span()),
                k,
                "`macs` lists the MACs of a group's members, but this table has no `count`",
                "set `count` to the number of MACs listed, or write `mac = \"...\"` for a single node",
            );
            return None;
        };
        let listed = list.get_ref().len();
        if listed != count as usize {
            let group = key.strip_prefix("nodes.").unwrap_or(key);
            let names = if count == 1 {
                format!("{group}-1")
            } else {
                format!("{group}-1 to {group}-{count}")
            };
            self.err(
                Some(list.span()),
                k,
                format!(
                    "`macs` lists {listed} MAC address{} but count is {count}",
                    if listed == 1 { "" } else { "es" }
                ),
                format!("list one MAC per member, in order ({names})"),
            );
            return None;
        }
        Some(
            list.get_ref()
                .iter()
                .enumerate()
                .map(|(i, s)| (self.mac(s, &format!("{k}[{i}]")), s.span()))
                .collect(),
        )
    }

    /// The settings a node shares with its group, from the node table or `[node_defaults]`.
    /// A bad setting is reported and replaced by its default, so that the node's addresses,
    /// MAC and ports are still checked.
    fn node_settings(
        &mut self,
        group: &str,
        n: &RawNode,
        d: &RawNode,
        profiles: &BTreeMap<String, Profile>,
        key: &str,
    ) -> Node {
        let cpus = match pick(&n.cpus, &d.cpus) {
            None => 1,
            Some(c) if (1..=64).contains(c.get_ref()) => *c.get_ref() as u32,
            Some(c) => {
                self.err(
                    Some(c.span()),
                    format!("{key}.cpus"),
                    format!("cpus = {} is out of range", c.get_ref()),
                    "use 1 to 64",
                );
                1
            }
        };
        let memory = self
            .size(
                pick(&n.memory, &d.memory),
                "2G",
                64 << 20,
                &format!("{key}.memory"),
            )
            .unwrap_or(2 << 30);
        let disks = self.disks(pick(&n.disk, &d.disk), &format!("{key}.disk"));
        let boot = self
            .choice(
                pick(&n.boot, &d.boot),
                &format!("{key}.boot"),
                &[
                    ("pxe", BootDevice::Pxe),
                    ("disk", BootDevice::Disk),
                    ("http", BootDevice::Http),
                ],
                BootDevice::Disk,
            )
            .unwrap_or(BootDevice::Disk);
        let firmware = self.choice(
            pick(&n.firmware, &d.firmware),
            &format!("{key}.firmware"),
            &[("bios", Firmware::Bios), ("uefi", Firmware::Uefi)],
            Firmware::Bios,
        );
        if boot == BootDevice::Http && firmware == Some(Firmware::Bios) {
            self.err(
                pick(&n.boot, &d.boot).map(Spanned::span),
                format!("{key}.boot"),
                "boot = \"http\" (UEFI HTTP boot) needs firmware = \"uefi\"",
                "set firmware = \"uefi\" for this node (or in [node_defaults]), or use boot = \"pxe\"",
            );
        }
        let power = self
            .choice(
                pick(&n.power, &d.power),
                &format!("{key}.power"),
                &[("on", Power::On), ("off", Power::Off)],
                Power::On,
            )
            .unwrap_or(Power::On);
        let power_restore = self
            .choice(
                pick(&n.power_restore, &d.power_restore),
                &format!("{key}.power_restore"),
                &[
                    ("previous", PowerRestore::Previous),
                    ("on", PowerRestore::On),
                    ("off", PowerRestore::Off),
                ],
                PowerRestore::Previous,
            )
            .unwrap_or(PowerRestore::Previous);
        let accel = self
            .choice(
                pick(&n.accel, &d.accel),
                &format!("{key}.accel"),
                &[
                    ("auto", Accel::Auto),
                    ("kvm", Accel::Kvm),
                    ("tcg", Accel::Tcg),
                ],
                Accel::Auto,
            )
            .unwrap_or(Accel::Auto);
        let profile = match pick(&n.profile, &d.profile) {
            None => None,
            Some(p) => self.text(p, &format!("{key}.profile")).filter(|name| {
                if !profiles.contains_key(name) {
                    let known: Vec<&str> = profiles.keys().map(String::as_str).collect();
                    let help = if known.is_empty() {
                        "define it in a [profiles.NAME] table".to_string()
                    } else {
                        format!(
                            "use one of: {}, or define [profiles.{name}]",
                            known.join(", ")
                        )
                    };
                    self.err(
                        Some(p.span()),
                        format!("{key}.profile"),
                        format!("no profile named `{name}`"),
                        help,
                    );
                }
                profiles.contains_key(name)
            }),
        };
        let bmc_user = pick(&n.bmc_user, &d.bmc_user)
            .map_or(Some(DEFAULT_BMC_USER.into()), |s| {
                self.text(s, &format!("{key}.bmc_user"))
            })
            .unwrap_or_else(|| DEFAULT_BMC_USER.into());
        let bmc_password = pick(&n.bmc_password, &d.bmc_password)
            .map_or(Some(DEFAULT_BMC_PASSWORD.into()), |s| {
                self.text(s, &format!("{key}.bmc_password"))
            })
            .unwrap_or_else(|| DEFAULT_BMC_PASSWORD.into());
        // The BMC (ipmi_sim) reads user names of at most 15 bytes; passwords are kept to IPMI 1.5's 16.
        for (field, value, span, max) in [
            ("bmc_user", &bmc_user, pick(&n.bmc_user, &d.bmc_user), 15),
            (
                "bmc_password",
                &bmc_password,
                pick(&n.bmc_password, &d.bmc_password),
                16,
            ),
        ] {
            // ipmi_sim's config parser has no escapes: a '"' would end the quoted value.
            if value.is_empty()
                || value.len() > max
                || !value.chars().all(|c| c.is_ascii_graphic() && c != '"')
            {
                self.err(
                    span.map(Spanned::span),
                    format!("{key}.{field}"),
                    format!("{field} must be 1 to {max} printable ASCII characters without spaces or '\"'"),
                    format!("the node's BMC (ipmi_sim) reads at most {max} bytes here, and no spaces or quotes"),
                );
            }
        }
        let mut identity = |field: &str, raw: Option<&Str>, default: &str| {
            raw.and_then(|s| self.identity_text(s, &format!("{key}.{field}")))
                .unwrap_or_else(|| default.to_string())
        };
        let vendor = identity(
            "vendor",
            pick(&n.vendor, &d.vendor),
            identity::DEFAULT_VENDOR,
        );
        let model = identity("model", pick(&n.model, &d.model), identity::DEFAULT_MODEL);
        // Each member's own name when the file sets none (see `group`).
        let asset_tag = identity("asset_tag", pick(&n.asset_tag, &d.asset_tag), group);
        let hide_hypervisor =
            pick(&n.hide_hypervisor, &d.hide_hypervisor).is_some_and(|h| *h.get_ref());
        Node {
            name: group.to_string(),
            group: group.to_string(),
            mac: Mac([0; 6]),
            nic_macs: Vec::new(),
            nic_ips: Vec::new(),
            ip: Ipv4Addr::UNSPECIFIED,
            bmc_ip: Ipv4Addr::UNSPECIFIED,
            vnc_port: None,
            ipmi_port: None,
            redfish_port: None,
            bmc_publish: None,
            cpus,
            memory_mb: memory >> 20,
            disks,
            boot,
            power,
            power_restore,
            profile,
            bmc_user,
            bmc_password,
            accel,
            vendor,
            model,
            serial: String::new(),
            uuid: String::new(),
            asset_tag,
            hide_hypervisor,
            firmware: firmware.unwrap_or(Firmware::Bios),
        }
    }

    /// `disk`: one size or a list of sizes (each at least 1M), at most [`MAX_DISKS`]; serials
    /// are set per member (see `group`).
    fn disks(&mut self, s: Option<&Spanned<Sizes>>, key: &str) -> Vec<Disk> {
        let disk = |bytes| Disk {
            bytes,
            serial: String::new(),
        };
        let Some(s) = s else {
            return vec![disk(8 << 30)];
        };
        let at = |t: &String| Spanned::new(s.span(), t.clone());
        let sizes: Vec<(String, Str)> = match s.get_ref() {
            Sizes::One(t) => vec![(key.to_string(), at(t))],
            Sizes::Many(list) => list
                .iter()
                .enumerate()
                .map(|(i, t)| (format!("{key}[{i}]"), at(t)))
                .collect(),
        };
        if sizes.is_empty() || sizes.len() > MAX_DISKS {
            self.err(
                Some(s.span()),
                key,
                format!("{} disks listed", sizes.len()),
                format!("give 1 to {MAX_DISKS} sizes (the AHCI controller has {} ports and the CD-ROM takes one)", MAX_DISKS + 1),
            );
            return vec![disk(8 << 30)];
        }
        sizes
            .iter()
            .map(|(k, t)| disk(self.size(Some(t), "8G", 1 << 20, k).unwrap_or(8 << 30)))
            .collect()
    }

    fn size(&mut self, s: Option<&Str>, default: &str, min: u64, key: &str) -> Option<u64> {
        let Some(s) = s else {
            return parse_size(default);
        };
        let t = self.text(s, key)?;
        match parse_size(&t) {
            Some(b) if b >= min => Some(b),
            Some(_) => {
                self.err(
                    Some(s.span()),
                    key,
                    format!("`{t}` is too small"),
                    format!("use at least {}M", min >> 20),
                );
                None
            }
            None => {
                self.err(
                    Some(s.span()),
                    key,
                    format!("`{t}` is not a size"),
                    "write a number with a unit: 512M, 2G, 8G (K, M, G, T; powers of 1024)",
                );
                None
            }
        }
    }

    fn choice<T: Copy>(
        &mut self,
        s: Option<&Str>,
        key: &str,
        options: &[(&str, T)],
        default: T,
    ) -> Option<T> {
        let Some(s) = s else { return Some(default) };
        let t = self.text(s, key)?;
        if let Some((_, v)) = options.iter().find(|(name, _)| *name == t) {
            return Some(*v);
        }
        let names: Vec<&str> = options.iter().map(|(n, _)| *n).collect();
        self.err(
            Some(s.span()),
            key,
            format!("`{t}` is not a valid value"),
            format!("use one of: {}", names.join(", ")),
        );
        None
    }

    fn mac(&mut self, s: &Str, key: &str) -> Option<Mac> {
        let t = self.text(s, key)?;
        let parts: Vec<&str> = t.split([':', '-']).collect();
        // Two hex digits each: from_str_radix alone would also take a sign, as in `+2`.
        let hex_pair = |p: &str| p.len() == 2 && p.chars().all(|c| c.is_ascii_hexdigit());
        let bytes: Option<Vec<u8>> = parts
            .iter()
            .map(|p| {
                if hex_pair(p) {
                    u8::from_str_radix(p, 16).ok()
                } else {
                    None
                }
            })
            .collect();
        let mac = match bytes {
            Some(b) if b.len() == 6 => Mac([b[0], b[1], b[2], b[3], b[4], b[5]]),
            _ => {
                self.err(
                    Some(s.span()),
                    key,
                    format!("`{t}` is not a MAC address"),
                    "write six hex pairs, e.g. 00:aa:bb:cc:dd:ee",
                );
                return None;
            }
        };
        if mac.0[0] & 1 == 1 || mac.0 == [0; 6] {
            self.err(
                Some(s.span()),
                key,
                format!("{mac} is not a unicast MAC address"),
                "the lowest bit of the first byte must be 0 (e.g. 00:..., 02:..., 52:...)",
            );
            return None;
        }
        Some(mac)
    }

    fn port_number(&mut self, p: &Spanned<i64>, key: &str) -> Option<u16> {
        match u16::try_from(*p.get_ref()) {
            Ok(v) if v > 0 => Some(v),
            _ => {
                self.err(
                    Some(p.span()),
                    key,
                    format!("port {} is out of range", p.get_ref()),
                    "use a port from 1 to 65535",
                );
                None
            }
        }
    }

    /// The `i`-th member's `bmc_publish`: one host address (not a wildcard, broadcast or
    /// multicast address), and still a loopback address when the group starts on one.
    fn bmc_address(
        &mut self,
        base: Ipv4Addr,
        i: u32,
        span: Option<Range<usize>>,
        key: &str,
    ) -> Option<Ipv4Addr> {
        let a = step_ip(base, i);
        let host = !(a.is_unspecified() || a.is_broadcast() || a.is_multicast());
        if host
            && (a.is_loopback() || !base.is_loopback())
            && u32::from(base).checked_add(i).is_some()
        {
            return Some(a);
        }
        let what = if i == 0 {
            format!("{a} is not a single host address")
        } else {
            format!("{base} + {i} is {a}, not a host address like the first")
        };
        self.err(
            span,
            key,
            what,
            "use an address of this host for each BMC, e.g. 127.0.0.10 (Linux answers on all of 127.0.0.0/8; a group steps it up by one per member)",
        );
        None
    }

    fn step_port(
        &mut self,
        base: u16,
        i: u32,
        span: Option<&Spanned<i64>>,
        key: &str,
    ) -> Option<u16> {
        match u16::try_from(u32::from(base) + i) {
            Ok(p) => Some(p),
            Err(_) => {
                self.err(
                    span.map(Spanned::span),
                    key,
                    format!("port {base} + {i} is past 65535"),
                    "start the group at a lower port",
                );
                None
            }
        }
    }
}

/// The `i`-th MAC after `m`, if it is still a unicast MAC: a carry into the first byte can set
/// its multicast bit (00:ff:ff:ff:ff:ff + 1 is 01:00:00:00:00:00).
fn step_mac(m: Mac, i: u32) -> Option<Mac> {
    let v = m.to_u64() + u64::from(i);
    let stepped = Mac::from_u64(v);
    (v < 1 << 48 && stepped.0[0] & 1 == 0).then_some(stepped)
}

fn step_ip(a: Ipv4Addr, i: u32) -> Ipv4Addr {
    Ipv4Addr::from(u32::from(a).saturating_add(i))
}

/// A stable, locally administered MAC for a node the file gives none: QEMU's 52:54:00 prefix and
/// three bytes of an FNV-1a hash of the node name (collisions are caught by the uniqueness check).
fn derived_mac(name: &str) -> Mac {
    let h = name.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    });
    let b = h.to_be_bytes();
    Mac([0x52, 0x54, 0x00, b[5], b[6], b[7]])
}
