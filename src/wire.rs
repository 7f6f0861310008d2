//! The node's own wire: what its VM puts on the network and what it gets back, seen on the VM's
//! tap device in the node container (`lab-bmcd wire`, started by the node image's entrypoint).
//!
//! A [`Watcher`] turns Ethernet frames into one `lab: wire: ...` line per step of a network boot:
//! the DHCP exchange (with the client's vendor class, PXE architecture and the server's answer),
//! TFTP read requests and whether they were answered with data or an error, and HTTP requests
//! with their reply's status. Only frames whose DHCP client or Ethernet source/destination is one
//! of the VM's MACs count. The lines go to the container's log, where [`crate::phase`] reads
//! them: so boot phases come from the node itself, whoever answers DHCP, TFTP and HTTP.
//!
//! Lines (values have bytes outside printable ASCII, and spaces and `\`, written as `\xHH`):
//!
//! ```text
//! lab: wire: dhcp discover mac=M [vendor=V] [arch=N] [user=U]
//! lab: wire: dhcp offer|ack mac=M ip=YIADDR [server=ID] [next=SIADDR] [file=F] [host=NAME] [www=IP]
//! lab: wire: dhcp request mac=M [ip=REQUESTED] [vendor=V] [arch=N] [user=U]
//! lab: wire: dhcp nak|decline|release|inform mac=M
//! lab: wire: tftp read FILE mac=M server=IP
//! lab: wire: tftp ok|error FILE mac=M server=IP [code=N message=TEXT]
//! lab: wire: http METHOD URI mac=M server=IP:PORT [host=HOST]
//! lab: wire: http reply STATUS METHOD URI mac=M server=IP:PORT
//! ```
//!
//! Parsing is pure; [`capture`] is the only part that touches a socket (Linux `AF_PACKET`).

use std::collections::VecDeque;
use std::fmt::Write as _;
use std::net::Ipv4Addr;

/// What every wire line starts with.
pub const PREFIX: &str = "lab: wire: ";

/// Exchanges waiting for their answer are forgotten beyond this many (oldest first).
const PENDING_MAX: usize = 64;

/// An Ethernet address.
pub type Mac = [u8; 6];

/// `00:aa:bb:cc:dd:ee` to bytes.
pub fn parse_mac(s: &str) -> Option<Mac> {
    let mut out = [0u8; 6];
    let mut parts = s.split(':');
    for b in &mut out {
        *b = u8::from_str_radix(parts.next()?, 16).ok()?;
    }
    parts.next().is_none().then_some(out)
}

fn mac_text(m: &Mac) -> String {
    m.iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// A value for a line: printable ASCII but space and `\` kept, others as `\xHH`; `-` if empty.
fn esc(bytes: &[u8]) -> String {
    if bytes.is_empty() {
        return "-".into();
    }
    let mut out = String::with_capacity(bytes.len());
    for &b in bytes {
        if (0x21..=0x7e).contains(&b) && b != b'\\' {
            out.push(b as char);
        } else {
            let _ = write!(out, "\\x{b:02x}");
        }
    }
    out
}

/// An IPv4 packet's addresses and its UDP or TCP segment.
struct Ip<'a> {
    src: Ipv4Addr,
    dst: Ipv4Addr,
    proto: u8,
    payload: &'a [u8],
}

/// Ethernet source and destination, and the IPv4 packet inside (VLAN tags skipped); `None` for
/// anything else and for fragments after the first.
fn ethernet_ipv4(frame: &[u8]) -> Option<(Mac, Mac, Ip<'_>)> {
    let dst: Mac = frame.get(0..6)?.try_into().ok()?;
    let src: Mac = frame.get(6..12)?.try_into().ok()?;
    let mut at = 12;
    let mut ethertype = u16::from_be_bytes([*frame.get(at)?, *frame.get(at + 1)?]);
    while ethertype == 0x8100 || ethertype == 0x88a8 {
        at += 4;
        ethertype = u16::from_be_bytes([*frame.get(at)?, *frame.get(at + 1)?]);
    }
    if ethertype != 0x0800 {
        return None;
    }
    let ip = frame.get(at + 2..)?;
    let ihl = usize::from(*ip.first()? & 0x0f) * 4;
    if *ip.first()? >> 4 != 4 || ihl < 20 {
        return None;
    }
    let total = usize::from(u16::from_be_bytes([*ip.get(2)?, *ip.get(3)?]));
    let fragment_offset = u16::from_be_bytes([*ip.get(6)?, *ip.get(7)?]) & 0x1fff;
    if fragment_offset != 0 {
        return None;
    }
    // Offloaded segments can carry a total length of 0; padding follows short packets.
    let end = if total >= ihl {
        total.min(ip.len())
    } else {
        ip.len()
    };
    let addr = |i: usize| -> Option<Ipv4Addr> {
        let b: [u8; 4] = ip.get(i..i + 4)?.try_into().ok()?;
        Some(Ipv4Addr::from(b))
    };
    Some((
        dst,
        src,
        Ip {
            src: addr(12)?,
            dst: addr(16)?,
            proto: ip[9],
            payload: ip.get(ihl..end)?,
        },
    ))
}

/// A TCP or UDP endpoint pair as seen from the VM: (VM address, VM port, peer address, peer port).
type Flow = (Ipv4Addr, u16, Ipv4Addr, u16);

struct TftpPending {
    flow_vm: (Ipv4Addr, u16),
    file: String,
    server: Ipv4Addr,
    mac: Mac,
}

struct HttpPending {
    flow: Flow,
    seq: u32,
    method: String,
    uri: String,
    mac: Mac,
}

/// Turns frames seen on the VM's tap into wire lines; remembers the TFTP and HTTP requests
/// whose answer has not come yet.
pub struct Watcher {
    macs: Vec<Mac>,
    tftp: VecDeque<TftpPending>,
    http: VecDeque<HttpPending>,
}

impl Watcher {
    /// Watches the traffic of the VM NICs with these MACs.
    pub fn new(macs: Vec<Mac>) -> Watcher {
        Watcher {
            macs,
            tftp: VecDeque::new(),
            http: VecDeque::new(),
        }
    }

    fn ours(&self, mac: &Mac) -> bool {
        self.macs.contains(mac)
    }

    /// The lines this frame makes (most frames make none).
    pub fn frame(&mut self, frame: &[u8]) -> Vec<String> {
        let Some((dst_mac, src_mac, ip)) = ethernet_ipv4(frame) else {
            return Vec::new();
        };
        let from_vm = self.ours(&src_mac);
        let to_vm = self.ours(&dst_mac);
        let out = match ip.proto {
            17 => self.udp(&ip, src_mac, dst_mac, from_vm, to_vm),
            6 if from_vm || to_vm => self.tcp(&ip, src_mac, dst_mac, from_vm),
            _ => None,
        };
        out.into_iter().map(|l| format!("{PREFIX}{l}")).collect()
    }

    fn udp(
        &mut self,
        ip: &Ip,
        src_mac: Mac,
        dst_mac: Mac,
        from_vm: bool,
        to_vm: bool,
    ) -> Option<String> {
        let p = ip.payload;
        let sport = u16::from_be_bytes([*p.first()?, *p.get(1)?]);
        let dport = u16::from_be_bytes([*p.get(2)?, *p.get(3)?]);
        let data = p.get(8..)?;
        match (sport, dport) {
            // DHCP either way: the client is named inside (answers may be broadcast).
            (68, 67) | (67, 68) => {
                let d = Dhcp::parse(data)?;
                self.ours(&d.chaddr).then(|| d.line())
            }
            (_, 69) if from_vm => {
                let (op, rest) = (
                    u16::from_be_bytes([*data.first()?, *data.get(1)?]),
                    data.get(2..)?,
                );
                let file = rest.split(|&b| b == 0).next()?;
                let verb = match op {
                    1 => "read",
                    2 => "write",
                    _ => return None,
                };
                let file = esc(file);
                if self.tftp.len() >= PENDING_MAX {
                    self.tftp.pop_front();
                }
                self.tftp.retain(|t| t.flow_vm != (ip.src, sport));
                self.tftp.push_back(TftpPending {
                    flow_vm: (ip.src, sport),
                    file: file.clone(),
                    server: ip.dst,
                    mac: src_mac,
                });
                Some(format!(
                    "tftp {verb} {file} mac={} server={}",
                    mac_text(&src_mac),
                    ip.dst
                ))
            }
            _ if to_vm => {
                let i = self
                    .tftp
                    .iter()
                    .position(|t| t.flow_vm == (ip.dst, dport) && t.mac == dst_mac)?;
                let op = u16::from_be_bytes([*data.first()?, *data.get(1)?]);
                let t = &self.tftp[i];
                let head = format!("{} mac={} server={}", t.file, mac_text(&t.mac), t.server);
                let line = match op {
                    // DATA, ACK (of a write) or OACK: the server took the request.
                    3..=4 | 6 => format!("tftp ok {head}"),
                    5 => {
                        let code = u16::from_be_bytes([*data.get(2)?, *data.get(3)?]);
                        let msg = data.get(4..)?.split(|&b| b == 0).next()?;
                        format!("tftp error {head} code={code} message={}", esc(msg))
                    }
                    _ => return None,
                };
                self.tftp.remove(i);
                Some(line)
            }
            _ => None,
        }
    }

    fn tcp(&mut self, ip: &Ip, src_mac: Mac, dst_mac: Mac, from_vm: bool) -> Option<String> {
        let p = ip.payload;
        let sport = u16::from_be_bytes([*p.first()?, *p.get(1)?]);
        let dport = u16::from_be_bytes([*p.get(2)?, *p.get(3)?]);
        let seq = u32::from_be_bytes(p.get(4..8)?.try_into().ok()?);
        let offset = usize::from(*p.get(12)? >> 4) * 4;
        let data = p.get(offset..)?;
        if data.is_empty() {
            return None;
        }
        if from_vm {
            let req = HttpRequest::parse(data)?;
            let flow = (ip.src, sport, ip.dst, dport);
            if self.http.iter().any(|h| h.flow == flow && h.seq == seq) {
                return None; // a retransmission
            }
            self.http.retain(|h| h.flow != flow);
            if self.http.len() >= PENDING_MAX {
                self.http.pop_front();
            }
            let (method, uri) = (esc(req.method), esc(req.uri));
            let mut line = format!(
                "http {method} {uri} mac={} server={}:{dport}",
                mac_text(&src_mac),
                ip.dst
            );
            if let Some(host) = req.host {
                let _ = write!(line, " host={}", esc(host));
            }
            self.http.push_back(HttpPending {
                flow,
                seq,
                method,
                uri,
                mac: src_mac,
            });
            Some(line)
        } else {
            let status = data
                .strip_prefix(b"HTTP/1.")
                .and_then(|r| r.get(2..5))
                .and_then(|s| std::str::from_utf8(s).ok())
                .and_then(|s| s.parse::<u16>().ok())?;
            let flow = (ip.dst, dport, ip.src, sport);
            let i = self
                .http
                .iter()
                .position(|h| h.flow == flow && h.mac == dst_mac)?;
            let h = self.http.remove(i)?;
            Some(format!(
                "http reply {status} {} {} mac={} server={}:{sport}",
                h.method,
                h.uri,
                mac_text(&h.mac),
                ip.src
            ))
        }
    }
}

/// The start of an HTTP request: its request line and Host header (if in the same segment).
struct HttpRequest<'a> {
    method: &'a [u8],
    uri: &'a [u8],
    host: Option<&'a [u8]>,
}

impl<'a> HttpRequest<'a> {
    fn parse(data: &'a [u8]) -> Option<HttpRequest<'a>> {
        const METHODS: [&[u8]; 7] = [
            b"GET", b"HEAD", b"POST", b"PUT", b"DELETE", b"OPTIONS", b"PATCH",
        ];
        let line_end = data
            .windows(2)
            .position(|w| w == b"\r\n")
            .unwrap_or(data.len());
        let mut words = data[..line_end].split(|&b| b == b' ');
        let method = words.next()?;
        let uri = words.next()?;
        let version = words.next()?;
        if !METHODS.contains(&method) || !version.starts_with(b"HTTP/1.") || uri.is_empty() {
            return None;
        }
        let host = data[line_end..]
            .split(|&b| b == b'\n')
            .map(|l| l.strip_suffix(b"\r").unwrap_or(l))
            .find_map(|l| {
                let (name, value) = l.split_at(l.iter().position(|&b| b == b':')?);
                name.eq_ignore_ascii_case(b"host")
                    .then(|| value[1..].trim_ascii())
            });
        Some(HttpRequest { method, uri, host })
    }
}

/// The parts of a DHCP message a boot's story needs.
#[derive(Debug, PartialEq, Eq)]
struct Dhcp {
    kind: u8,
    chaddr: Mac,
    yiaddr: Ipv4Addr,
    siaddr: Ipv4Addr,
    file: Vec<u8>,
    server: Option<Ipv4Addr>,
    requested: Option<Ipv4Addr>,
    vendor: Option<Vec<u8>>,
    user: Option<Vec<u8>>,
    arch: Option<u16>,
    hostname: Option<Vec<u8>>,
    www: Option<Ipv4Addr>,
}

impl Dhcp {
    fn parse(b: &[u8]) -> Option<Dhcp> {
        if b.len() < 240 || b[1] != 1 || b[2] != 6 || b[236..240] != [99, 130, 83, 99] {
            return None;
        }
        let addr = |i: usize| Ipv4Addr::new(b[i], b[i + 1], b[i + 2], b[i + 3]);
        let cstr = |s: &[u8]| s.split(|&c| c == 0).next().unwrap_or_default().to_vec();
        let mut d = Dhcp {
            kind: 0,
            chaddr: b[28..34].try_into().ok()?,
            yiaddr: addr(16),
            siaddr: addr(20),
            file: cstr(&b[108..236]),
            server: None,
            requested: None,
            vendor: None,
            user: None,
            arch: None,
            hostname: None,
            www: None,
        };
        let mut i = 240;
        while i < b.len() {
            let code = b[i];
            if code == 0 {
                i += 1;
                continue;
            }
            if code == 255 {
                break;
            }
            let len = usize::from(*b.get(i + 1)?);
            let v = b.get(i + 2..i + 2 + len)?;
            let ip = || (len >= 4).then(|| Ipv4Addr::new(v[0], v[1], v[2], v[3]));
            match code {
                53 if len == 1 => d.kind = v[0],
                54 => d.server = ip(),
                50 => d.requested = ip(),
                60 => d.vendor = Some(v.to_vec()),
                77 => d.user = Some(v.to_vec()),
                93 if len >= 2 => d.arch = Some(u16::from_be_bytes([v[0], v[1]])),
                12 => d.hostname = Some(v.to_vec()),
                67 => d.file = cstr(v),
                72 => d.www = ip(),
                _ => {}
            }
            i += 2 + len;
        }
        (d.kind != 0).then_some(d)
    }

    fn line(&self) -> String {
        let kind = match self.kind {
            1 => "discover",
            2 => "offer",
            3 => "request",
            4 => "decline",
            5 => "ack",
            6 => "nak",
            7 => "release",
            8 => "inform",
            _ => "other",
        };
        let mut l = format!("dhcp {kind} mac={}", mac_text(&self.chaddr));
        let mut add = |k: &str, v: String| {
            let _ = write!(l, " {k}={v}");
        };
        match self.kind {
            2 | 5 => {
                add("ip", self.yiaddr.to_string());
                if let Some(s) = self.server {
                    add("server", s.to_string());
                }
                if !self.siaddr.is_unspecified() {
                    add("next", self.siaddr.to_string());
                }
                if !self.file.is_empty() {
                    add("file", esc(&self.file));
                }
                if let Some(h) = &self.hostname {
                    add("host", esc(h));
                }
                if let Some(w) = self.www {
                    add("www", w.to_string());
                }
            }
            1 | 3 => {
                if let Some(r) = self.requested {
                    add("ip", r.to_string());
                }
                if let Some(v) = &self.vendor {
                    add("vendor", esc(v));
                }
                if let Some(a) = self.arch {
                    add("arch", a.to_string());
                }
                if let Some(u) = &self.user {
                    add("user", esc(u));
                }
            }
            _ => {}
        }
        l
    }
}

/// One parsed wire line, as [`crate::phase`] reads it back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Line<'a> {
    /// `dhcp KIND mac=...`
    Dhcp { kind: &'a str, mac: &'a str },
    /// `tftp ok FILE ...`: the server answered the read with data.
    TftpOk { file: &'a str, mac: &'a str },
    /// `http reply STATUS METHOD URI ...`
    HttpReply {
        status: u16,
        uri: &'a str,
        mac: &'a str,
    },
    /// Any other wire line (requests, errors).
    Other,
}

impl<'a> Line<'a> {
    /// The wire line in `text` (a log line, after its timestamp), if it is one.
    pub fn parse(text: &'a str) -> Option<Line<'a>> {
        let rest = &text[text.find(PREFIX)? + PREFIX.len()..];
        let words: Vec<&str> = rest.split(' ').collect();
        let mac = words
            .iter()
            .find_map(|w| w.strip_prefix("mac="))
            .unwrap_or_default();
        Some(match words.as_slice() {
            ["dhcp", kind, ..] => Line::Dhcp { kind, mac },
            ["tftp", "ok", file, ..] => Line::TftpOk { file, mac },
            ["http", "reply", status, _method, uri, ..] => Line::HttpReply {
                status: status.parse().ok()?,
                uri,
                mac,
            },
            _ => Line::Other,
        })
    }
}

/// Watches `interface` (the VM's tap) and prints a wire line for each step of the VM's network
/// boots, until an error. Linux only.
#[cfg(target_os = "linux")]
pub fn capture(interface: &str, macs: Vec<Mac>) -> std::io::Result<()> {
    use std::io::{Error, Write};
    let name = std::ffi::CString::new(interface).map_err(|_| Error::other("bad interface name"))?;
    // SAFETY: plain libc calls on a socket this function owns; buffers outlive the calls.
    unsafe {
        let index = libc::if_nametoindex(name.as_ptr());
        if index == 0 {
            return Err(Error::other(format!(
                "no interface {interface}: {}",
                Error::last_os_error()
            )));
        }
        let proto = (libc::ETH_P_ALL as u16).to_be();
        let fd = libc::socket(
            libc::AF_PACKET,
            libc::SOCK_RAW | libc::SOCK_CLOEXEC,
            i32::from(proto),
        );
        if fd < 0 {
            return Err(Error::other(format!(
                "cannot open a packet socket (cap NET_RAW): {}",
                Error::last_os_error()
            )));
        }
        let mut sll: libc::sockaddr_ll = std::mem::zeroed();
        sll.sll_family = libc::AF_PACKET as u16;
        sll.sll_protocol = proto;
        sll.sll_ifindex = index as i32;
        let len = std::mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t;
        if libc::bind(fd, std::ptr::addr_of!(sll).cast(), len) < 0 {
            let e = Error::last_os_error();
            libc::close(fd);
            return Err(Error::other(format!("cannot bind to {interface}: {e}")));
        }
        let mut watcher = Watcher::new(macs);
        let mut buf = vec![0u8; 65_600];
        let stdout = std::io::stdout();
        loop {
            let n = libc::recv(fd, buf.as_mut_ptr().cast(), buf.len(), 0);
            if n < 0 {
                let e = Error::last_os_error();
                if e.kind() == std::io::ErrorKind::Interrupted {
                    continue;
                }
                libc::close(fd);
                return Err(e);
            }
            for line in watcher.frame(&buf[..n as usize]) {
                let mut out = stdout.lock();
                writeln!(out, "{line}")?;
                out.flush()?;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const VM: Mac = [0x00, 0xaa, 0xbb, 0xcc, 0xdd, 0xee];
    const SRV: Mac = [0x02, 0x42, 0x0a, 0x00, 0x00, 0x02];
    const BCAST: Mac = [0xff; 6];

    fn ipv4(src: [u8; 4], dst: [u8; 4], proto: u8, l4: &[u8]) -> Vec<u8> {
        let mut p = vec![0x45, 0, 0, 0, 0, 1, 0x40, 0, 64, proto, 0, 0];
        let total = (20 + l4.len()) as u16;
        p[2..4].copy_from_slice(&total.to_be_bytes());
        p.extend_from_slice(&src);
        p.extend_from_slice(&dst);
        p.extend_from_slice(l4);
        p
    }

    fn frame(dst: Mac, src: Mac, ip: Vec<u8>) -> Vec<u8> {
        let mut f = Vec::new();
        f.extend_from_slice(&dst);
        f.extend_from_slice(&src);
        f.extend_from_slice(&[0x08, 0x00]);
        f.extend(ip);
        f.extend_from_slice(&[0; 6]); // Ethernet padding is not payload
        f
    }

    fn udp(sport: u16, dport: u16, data: &[u8]) -> Vec<u8> {
        let mut u = Vec::new();
        u.extend_from_slice(&sport.to_be_bytes());
        u.extend_from_slice(&dport.to_be_bytes());
        u.extend_from_slice(&((8 + data.len()) as u16).to_be_bytes());
        u.extend_from_slice(&[0, 0]);
        u.extend_from_slice(data);
        u
    }

    fn tcp(sport: u16, dport: u16, seq: u32, data: &[u8]) -> Vec<u8> {
        let mut t = Vec::new();
        t.extend_from_slice(&sport.to_be_bytes());
        t.extend_from_slice(&dport.to_be_bytes());
        t.extend_from_slice(&seq.to_be_bytes());
        t.extend_from_slice(&[0, 0, 0, 0, 0x50, 0x18, 0xff, 0xff, 0, 0, 0, 0]);
        t.extend_from_slice(data);
        t
    }

    fn dhcp(op: u8, kind: u8, chaddr: Mac, yiaddr: [u8; 4], options: &[(u8, &[u8])]) -> Vec<u8> {
        let mut b = vec![0u8; 240];
        b[0] = op;
        b[1] = 1;
        b[2] = 6;
        b[16..20].copy_from_slice(&yiaddr);
        b[28..34].copy_from_slice(&chaddr);
        b[236..240].copy_from_slice(&[99, 130, 83, 99]);
        b.extend_from_slice(&[53, 1, kind]);
        for (code, v) in options {
            b.push(*code);
            b.push(v.len() as u8);
            b.extend_from_slice(v);
        }
        b.push(255);
        b
    }

    fn line(w: &mut Watcher, f: &[u8]) -> Option<String> {
        let mut lines = w.frame(f);
        assert!(lines.len() <= 1, "{lines:?}");
        lines.pop()
    }

    #[test]
    fn a_pxe_clients_dhcp_exchange() {
        let mut w = Watcher::new(vec![VM]);
        let discover = dhcp(
            1,
            1,
            VM,
            [0; 4],
            &[
                (60, b"PXEClient:Arch:00000:UNDI:002001"),
                (93, &[0, 0]),
                (77, b"iPXE"),
            ],
        );
        let f = frame(
            BCAST,
            VM,
            ipv4([0; 4], [255; 4], 17, &udp(68, 67, &discover)),
        );
        assert_eq!(
            line(&mut w, &f).as_deref(),
            Some("lab: wire: dhcp discover mac=00:aa:bb:cc:dd:ee vendor=PXEClient:Arch:00000:UNDI:002001 arch=0 user=iPXE")
        );
        let mut ack = dhcp(
            2,
            5,
            VM,
            [10, 0, 0, 100],
            &[
                (54, &[10, 0, 0, 2]),
                (67, b"boot.ipxe\0"),
                (12, b"node 1"),
                (72, &[10, 0, 0, 2]),
            ],
        );
        ack[20..24].copy_from_slice(&[10, 0, 0, 2]);
        let f = frame(
            BCAST,
            SRV,
            ipv4([10, 0, 0, 2], [255; 4], 17, &udp(67, 68, &ack)),
        );
        assert_eq!(
            line(&mut w, &f).as_deref(),
            Some("lab: wire: dhcp ack mac=00:aa:bb:cc:dd:ee ip=10.0.0.100 server=10.0.0.2 next=10.0.0.2 file=boot.ipxe host=node\\x201 www=10.0.0.2")
        );
        // Another machine's exchange, broadcast past this tap, is not this node's.
        let other = dhcp(2, 5, SRV, [10, 0, 0, 101], &[]);
        let f = frame(
            BCAST,
            SRV,
            ipv4([10, 0, 0, 2], [255; 4], 17, &udp(67, 68, &other)),
        );
        assert_eq!(line(&mut w, &f), None);
        // Not DHCP: a bad magic cookie, a truncated message.
        let mut bad = discover.clone();
        bad[236] = 0;
        assert_eq!(
            w.frame(&frame(
                BCAST,
                VM,
                ipv4([0; 4], [255; 4], 17, &udp(68, 67, &bad))
            )),
            Vec::<String>::new()
        );
        assert_eq!(
            w.frame(&frame(
                BCAST,
                VM,
                ipv4([0; 4], [255; 4], 17, &udp(68, 67, &discover[..100]))
            )),
            Vec::<String>::new()
        );
    }

    #[test]
    fn tftp_reads_and_their_answers() {
        let mut w = Watcher::new(vec![VM]);
        let vm = [10, 0, 0, 100];
        let srv = [10, 0, 0, 2];
        let rrq = |file: &str| {
            let mut d = vec![0, 1];
            d.extend_from_slice(file.as_bytes());
            d.extend_from_slice(b"\0octet\0blksize\x001432\0");
            d
        };
        let f = frame(
            SRV,
            VM,
            ipv4(vm, srv, 17, &udp(2070, 69, &rrq("pxelinux.cfg/01-00-aa"))),
        );
        assert_eq!(
            line(&mut w, &f).as_deref(),
            Some(
                "lab: wire: tftp read pxelinux.cfg/01-00-aa mac=00:aa:bb:cc:dd:ee server=10.0.0.2"
            )
        );
        let err = b"\0\x05\0\x01File not found\0";
        let f = frame(VM, SRV, ipv4(srv, vm, 17, &udp(40000, 2070, err)));
        assert_eq!(
            line(&mut w, &f).as_deref(),
            Some("lab: wire: tftp error pxelinux.cfg/01-00-aa mac=00:aa:bb:cc:dd:ee server=10.0.0.2 code=1 message=File\\x20not\\x20found")
        );
        let f = frame(
            SRV,
            VM,
            ipv4(vm, srv, 17, &udp(2071, 69, &rrq("undionly.kpxe"))),
        );
        assert!(line(&mut w, &f).is_some());
        let oack = b"\0\x06blksize\x001432\0";
        let f = frame(VM, SRV, ipv4(srv, vm, 17, &udp(40001, 2071, oack)));
        assert_eq!(
            line(&mut w, &f).as_deref(),
            Some("lab: wire: tftp ok undionly.kpxe mac=00:aa:bb:cc:dd:ee server=10.0.0.2")
        );
        // The data that follows is no news.
        let data = b"\0\x03\0\x01abc";
        assert_eq!(
            line(
                &mut w,
                &frame(VM, SRV, ipv4(srv, vm, 17, &udp(40001, 2071, data)))
            ),
            None
        );
    }

    #[test]
    fn http_requests_and_their_replies() {
        let mut w = Watcher::new(vec![VM]);
        let vm = [10, 0, 0, 100];
        let srv = [10, 0, 0, 3];
        let get = b"GET /lab/report/00-aa-bb-cc-dd-ee?vendor=%4d HTTP/1.1\r\nUser-Agent: Wget\r\nhost: 10.0.0.3\r\n\r\n";
        let req = frame(SRV, VM, ipv4(vm, srv, 6, &tcp(50000, 80, 7, get)));
        assert_eq!(
            line(&mut w, &req).as_deref(),
            Some("lab: wire: http GET /lab/report/00-aa-bb-cc-dd-ee?vendor=%4d mac=00:aa:bb:cc:dd:ee server=10.0.0.3:80 host=10.0.0.3")
        );
        assert_eq!(line(&mut w, &req), None, "a retransmission");
        // A segment of the body, an ACK without data: nothing.
        assert_eq!(
            line(
                &mut w,
                &frame(VM, SRV, ipv4(srv, vm, 6, &tcp(80, 50000, 1, b"")))
            ),
            None
        );
        let reply = b"HTTP/1.1 204 No Content\r\nServer: x\r\n\r\n";
        let f = frame(VM, SRV, ipv4(srv, vm, 6, &tcp(80, 50000, 1, reply)));
        assert_eq!(
            line(&mut w, &f).as_deref(),
            Some("lab: wire: http reply 204 GET /lab/report/00-aa-bb-cc-dd-ee?vendor=%4d mac=00:aa:bb:cc:dd:ee server=10.0.0.3:80")
        );
        assert_eq!(line(&mut w, &f), None, "answered once");
        // Another machine's conversation, and a body that merely looks like a request.
        let other: Mac = [2, 0, 0, 0, 0, 9];
        assert_eq!(
            line(
                &mut w,
                &frame(SRV, other, ipv4([10, 0, 0, 9], srv, 6, &tcp(1, 80, 1, get)))
            ),
            None
        );
        assert_eq!(
            line(
                &mut w,
                &frame(SRV, VM, ipv4(vm, srv, 6, &tcp(50001, 80, 1, b"GET x\r\n")))
            ),
            None
        );
        // A frame that is not IPv4 at all.
        assert_eq!(w.frame(&[0u8; 10]), Vec::<String>::new());
    }

    #[test]
    fn wire_lines_read_back() {
        assert_eq!(
            Line::parse("lab: wire: dhcp ack mac=00:aa:bb:cc:dd:ee ip=10.0.0.100"),
            Some(Line::Dhcp {
                kind: "ack",
                mac: "00:aa:bb:cc:dd:ee"
            })
        );
        assert_eq!(
            Line::parse("lab: wire: http reply 200 GET /smoke/vmlinuz mac=00:aa:bb:cc:dd:ee server=10.0.0.3:80"),
            Some(Line::HttpReply { status: 200, uri: "/smoke/vmlinuz", mac: "00:aa:bb:cc:dd:ee" })
        );
        assert_eq!(
            Line::parse("lab: wire: tftp ok boot.ipxe mac=m server=10.0.0.2"),
            Some(Line::TftpOk {
                file: "boot.ipxe",
                mac: "m"
            })
        );
        assert_eq!(
            Line::parse("lab: wire: tftp read x mac=m"),
            Some(Line::Other)
        );
        assert_eq!(Line::parse("lab: power on"), None);
        assert_eq!(parse_mac("00:AA:bb:cc:dd:ee"), Some(VM));
        assert_eq!(parse_mac("00:aa:bb:cc:dd"), None);
        assert_eq!(esc(b""), "-");
    }
}
