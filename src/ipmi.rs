//! A small IPMI 1.5 LAN client: a session-less ping (what `lab up` waits for), and one
//! authenticated session (MD5 authentication) to ask a BMC for its chassis power state. `lab status` uses it to ask every node's BMC directly at its address
//! on the lab network, which takes a few milliseconds, where running `ipmitool` inside each node
//! container costs a `docker exec` per node.
//!
//! UDP delivers late and duplicate datagrams: every request carries its own rqSeq, and a reply
//! counts only when it answers that request (response netFn, rqSeq, command and session id);
//! anything else is dropped while the request waits for its answer.

use std::net::SocketAddr;
use std::time::Duration;

use md5::{Digest, Md5};
use tokio::net::UdpSocket;
use tokio::time::{timeout, timeout_at, Instant};

const AUTH_MD5: u8 = 0x02;
pub const NETFN_APP: u8 = 0x06;
pub const NETFN_CHASSIS: u8 = 0x00;
const BMC_ADDR: u8 = 0x20;
const CONSOLE_ADDR: u8 = 0x81;
const PRIV_USER: u8 = 0x02;

/// How one IPMI 1.5 message travels: session fields and the credentials that sign it.
struct Session<'a> {
    auth: u8,
    seq: u32,
    id: u32,
    password: &'a [u8; 16],
}

fn checksum(bytes: &[u8]) -> u8 {
    bytes
        .iter()
        .fold(0u8, |a, b| a.wrapping_add(*b))
        .wrapping_neg()
}

/// The IPMI message: rsAddr, netFn/LUN, checksum, rqAddr, rqSeq/LUN, command, data, checksum.
fn message(netfn: u8, rq_seq: u8, cmd: u8, data: &[u8]) -> Vec<u8> {
    let head = [BMC_ADDR, netfn << 2];
    let mut body = vec![CONSOLE_ADDR, rq_seq << 2, cmd];
    body.extend_from_slice(data);
    let mut msg = head.to_vec();
    msg.push(checksum(&head));
    msg.extend_from_slice(&body);
    msg.push(checksum(&body));
    msg
}

/// IPMI 1.5 MD5 AuthCode: MD5(password, session id, message, session sequence, password).
fn md5_authcode(s: &Session, msg: &[u8]) -> [u8; 16] {
    let mut h = Md5::new();
    h.update(s.password);
    h.update(s.id.to_le_bytes());
    h.update(msg);
    h.update(s.seq.to_le_bytes());
    h.update(s.password);
    h.finalize().into()
}

/// RMCP header, IPMI 1.5 session header (with an AuthCode unless unauthenticated), the message.
fn packet(s: &Session, msg: &[u8]) -> Vec<u8> {
    let mut p = vec![0x06, 0x00, 0xff, 0x07, s.auth];
    p.extend_from_slice(&s.seq.to_le_bytes());
    p.extend_from_slice(&s.id.to_le_bytes());
    if s.auth != 0 {
        p.extend_from_slice(&md5_authcode(s, msg));
    }
    p.push(msg.len() as u8);
    p.extend_from_slice(msg);
    p
}

/// One request on the wire and what its reply must carry: the response netFn (the request's
/// plus one), the same rqSeq and command, and the session id the request was sent with (0
/// outside a session; a BMC answers Activate Session in the temporary session it was asked in).
struct Request {
    packet: Vec<u8>,
    netfn: u8,
    rq_seq: u8,
    cmd: u8,
    session_id: u32,
}

/// A reply's IPMI message, parsed.
#[derive(Debug, PartialEq)]
struct Reply {
    session_id: u32,
    netfn: u8,
    rq_seq: u8,
    cmd: u8,
    completion: u8,
    data: Vec<u8>,
}

/// Parses an IPMI 1.5 reply: RMCP header, session header, then rqAddr, netFn/LUN, checksum,
/// rsAddr, rqSeq/LUN, command, completion code, data, checksum (both checksums checked).
fn parse_reply(reply: &[u8]) -> Result<Reply, String> {
    if reply.len() < 14 || reply[0] != 0x06 || reply[3] != 0x07 {
        return Err("not an IPMI reply".into());
    }
    let session_id = u32::from_le_bytes([reply[9], reply[10], reply[11], reply[12]]);
    let start = if reply[4] != 0 { 30 } else { 14 };
    let len = *reply.get(start - 1).ok_or("reply too short")? as usize;
    let msg = reply
        .get(start..start + len)
        .ok_or("reply shorter than its length")?;
    if msg.len() < 8 {
        return Err("reply too short".into());
    }
    let sums_to_zero = |b: &[u8]| b.iter().fold(0u8, |a, b| a.wrapping_add(*b)) == 0;
    if !sums_to_zero(&msg[..3]) || !sums_to_zero(&msg[3..]) {
        return Err("reply checksum mismatch".into());
    }
    Ok(Reply {
        session_id,
        netfn: msg[1] >> 2,
        rq_seq: msg[4] >> 2,
        cmd: msg[5],
        completion: msg[6],
        data: msg[7..msg.len() - 1].to_vec(),
    })
}

fn request(s: &Session, netfn: u8, rq_seq: u8, cmd: u8, data: &[u8]) -> Request {
    Request {
        packet: packet(s, &message(netfn, rq_seq, cmd, data)),
        netfn,
        rq_seq,
        cmd,
        session_id: s.id,
    }
}

impl Request {
    /// Whether `r` answers this request (and not an earlier one, or another client's).
    fn answered_by(&self, r: &Reply) -> bool {
        r.netfn == self.netfn + 1
            && r.rq_seq == self.rq_seq
            && r.cmd == self.cmd
            && r.session_id == self.session_id
    }
}

/// The data of a reply (after the completion code), or the failure it reports.
fn reply_data(r: Reply) -> Result<Vec<u8>, String> {
    if r.completion != 0 {
        return Err(format!(
            "command {:#04x} failed with code {:#04x}",
            r.cmd, r.completion
        ));
    }
    Ok(r.data)
}

const TRIES: usize = 3;
const PER_TRY: Duration = Duration::from_millis(500);

/// Sends the request and returns the data of its reply, resending it up to [`TRIES`] times.
/// Datagrams that do not answer it (a late reply to an earlier request, a foreign or garbled
/// packet) are dropped and the wait goes on until the try's time is up.
async fn call(sock: &UdpSocket, req: &Request) -> Result<Vec<u8>, String> {
    call_with(sock, req, TRIES, PER_TRY).await
}

/// [`call`] with `tries` sends, `per_try` apart.
async fn call_with(
    sock: &UdpSocket,
    req: &Request,
    tries: usize,
    per_try: Duration,
) -> Result<Vec<u8>, String> {
    let mut buf = [0u8; 512];
    for _ in 0..tries {
        sock.send(&req.packet).await.map_err(|e| e.to_string())?;
        let deadline = Instant::now() + per_try;
        while let Ok(r) = timeout_at(deadline, sock.recv(&mut buf)).await {
            let n = r.map_err(|e| e.to_string())?;
            match parse_reply(&buf[..n]) {
                Ok(reply) if req.answered_by(&reply) => return reply_data(reply),
                _ => continue,
            }
        }
    }
    Err(NO_REPLY.into())
}

const NO_REPLY: &str = "no reply";

/// A UDP socket connected to the BMC, and the rqSeq of the next request on it.
struct Client {
    sock: UdpSocket,
    seq: u8,
}

impl Client {
    async fn connect(addr: SocketAddr) -> Result<Client, String> {
        let any = if addr.is_ipv4() {
            "0.0.0.0:0"
        } else {
            "[::]:0"
        };
        let sock = UdpSocket::bind(any).await.map_err(|e| e.to_string())?;
        sock.connect(addr).await.map_err(|e| e.to_string())?;
        Ok(Client { sock, seq: 0 })
    }

    /// A request with its own rqSeq (6 bits: 1..=63, then around again).
    fn request(&mut self, s: &Session, netfn: u8, cmd: u8, data: &[u8]) -> Request {
        self.seq = self.seq % 63 + 1;
        request(s, netfn, self.seq, cmd, data)
    }

    async fn call(
        &mut self,
        s: &Session<'_>,
        netfn: u8,
        cmd: u8,
        data: &[u8],
    ) -> Result<Vec<u8>, String> {
        let req = self.request(s, netfn, cmd, data);
        call(&self.sock, &req).await
    }
}

/// Outside any session: no authentication, sequence and session id 0.
const NO_SESSION: Session = Session {
    auth: 0,
    seq: 0,
    id: 0,
    password: &[0; 16],
};

/// Whether the BMC at `addr` answers IPMI: a well-formed reply to the session-less "Get Channel
/// Authentication Capabilities" (the first message any IPMI client sends: this channel, IPMI
/// v2.0 data, admin privilege) means it is up. Asked again every 100 ms for 2 s: a BMC still
/// starting drops the request (the ICMP error that would say so is rate-limited) and answers
/// the next one as soon as it listens; a late answer to an earlier send counts too.
pub async fn ping(addr: SocketAddr) -> Result<(), String> {
    let asked = async {
        let mut client = Client::connect(addr).await?;
        let req = client.request(&NO_SESSION, NETFN_APP, 0x38, &[0x8e, 0x04]);
        call_with(&client.sock, &req, 20, Duration::from_millis(100)).await
    };
    match timeout(Duration::from_secs(2), asked).await {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(e)) if e == NO_REPLY => Err(format!("{addr}: no IPMI reply")),
        Ok(Err(e)) => Err(format!("{addr}: {e}")),
        Err(_) => Err(format!("{addr}: no IPMI reply")),
    }
}

fn padded<const N: usize>(s: &str) -> Result<[u8; N], String> {
    let b = s.as_bytes();
    if b.len() > N {
        return Err(format!("longer than {N} bytes"));
    }
    let mut out = [0u8; N];
    out[..b.len()].copy_from_slice(b);
    Ok(out)
}

/// Whether the chassis is powered on, asked over IPMI 1.5 with MD5 authentication: get a
/// challenge, activate a session at user privilege, Get Chassis Status, close the session.
pub async fn power_is_on(addr: SocketAddr, user: &str, password: &str) -> Result<bool, String> {
    let mut conn = Connection::open(addr, user, password, PRIV_USER).await?;
    let status = conn.call(NETFN_CHASSIS, 0x01, &[]).await;
    conn.close().await;
    let status = status.map_err(|e| e.to_string())?;
    let power = status.first().ok_or("empty chassis status")?;
    Ok(power & 1 == 1)
}

/// Why a command over a [`Connection`] failed: the BMC answered with a completion code (the
/// session is fine), or the session is gone (no reply, a refused message): reconnect.
#[derive(Debug, Clone, PartialEq)]
pub enum CallError {
    Completion(u8),
    Session(String),
}

impl std::fmt::Display for CallError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CallError::Completion(cc) => {
                write!(f, "the BMC answered with completion code {cc:#04x}")
            }
            CallError::Session(e) => write!(f, "IPMI session: {e}"),
        }
    }
}

/// Network functions of the commands a [`Connection`] sends.
pub const NETFN_STORAGE: u8 = 0x0a;
pub const NETFN_SENSOR: u8 = 0x04;
/// Administrator privilege, what lab-bmcd's session needs for power and boot flags.
pub const PRIV_ADMIN: u8 = 0x04;

/// One IPMI 1.5 session (MD5 authentication), kept open for many commands: lab-bmcd speaks to its own BMC through it, so that Redfish and IPMI see one state.
/// Each message carries the next session sequence number; a lost session is not recovered
/// here: the caller opens a new one (see [`CallError::Session`]).
pub struct Connection {
    client: Client,
    id: u32,
    seq: u32,
    password: [u8; 16],
}

impl Connection {
    /// Opens a session: challenge, activate, and (above user) set the session's privilege.
    pub async fn open(
        addr: SocketAddr,
        user: &str,
        password: &str,
        privilege: u8,
    ) -> Result<Connection, String> {
        let name: [u8; 16] = padded(user).map_err(|e| format!("BMC user {e}"))?;
        let pw: [u8; 16] = padded(password).map_err(|e| format!("BMC password {e}"))?;
        let mut client = Client::connect(addr).await?;
        let mut data = vec![AUTH_MD5];
        data.extend_from_slice(&name);
        let challenge = client.call(&NO_SESSION, NETFN_APP, 0x39, &data).await?;
        if challenge.len() < 20 {
            return Err("short session challenge".into());
        }
        let temp = Session {
            auth: AUTH_MD5,
            seq: 0,
            id: u32::from_le_bytes([challenge[0], challenge[1], challenge[2], challenge[3]]),
            password: &pw,
        };
        let mut data = vec![AUTH_MD5, privilege];
        data.extend_from_slice(&challenge[4..20]);
        data.extend_from_slice(&1u32.to_le_bytes()); // our first outbound sequence number
        let activated = client.call(&temp, NETFN_APP, 0x3a, &data).await?;
        if activated.len() < 9 {
            return Err("short activate-session reply".into());
        }
        let id = u32::from_le_bytes([activated[1], activated[2], activated[3], activated[4]]);
        let seq = u32::from_le_bytes([activated[5], activated[6], activated[7], activated[8]]);
        let mut conn = Connection {
            client,
            id,
            seq,
            password: pw,
        };
        if privilege > PRIV_USER {
            conn.call(NETFN_APP, 0x3b, &[privilege])
                .await
                .map_err(|e| format!("set session privilege: {e}"))?;
        }
        Ok(conn)
    }

    /// Sends one command in the session and returns its reply's data (after the completion code).
    pub async fn call(&mut self, netfn: u8, cmd: u8, data: &[u8]) -> Result<Vec<u8>, CallError> {
        let s = Session {
            auth: AUTH_MD5,
            seq: self.seq,
            id: self.id,
            password: &self.password,
        };
        self.seq = self.seq.wrapping_add(1);
        let req = self.client.request(&s, netfn, cmd, data);
        let mut buf = [0u8; 512];
        for _ in 0..TRIES {
            self.client
                .sock
                .send(&req.packet)
                .await
                .map_err(|e| CallError::Session(e.to_string()))?;
            let deadline = Instant::now() + PER_TRY;
            while let Ok(r) = timeout_at(deadline, self.client.sock.recv(&mut buf)).await {
                let n = r.map_err(|e| CallError::Session(e.to_string()))?;
                match parse_reply(&buf[..n]) {
                    Ok(reply) if req.answered_by(&reply) => {
                        return match reply.completion {
                            0 => Ok(reply.data),
                            cc => Err(CallError::Completion(cc)),
                        }
                    }
                    _ => continue,
                }
            }
        }
        Err(CallError::Session(NO_REPLY.into()))
    }

    /// Closes the session: one Close Session sent, no answer awaited (the BMC times out a
    /// session whose close was lost).
    pub async fn close(mut self) {
        let s = Session {
            auth: AUTH_MD5,
            seq: self.seq,
            id: self.id,
            password: &self.password,
        };
        let bye = self
            .client
            .request(&s, NETFN_APP, 0x3c, &self.id.to_le_bytes());
        let _ = self.client.sock.send(&bye.packet).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn channel_auth_request_is_well_formed() {
        let p = request(&NO_SESSION, NETFN_APP, 1, 0x38, &[0x8e, 0x04]).packet;
        assert_eq!(&p[..4], &[0x06, 0x00, 0xff, 0x07]);
        assert_eq!(p[13] as usize, p.len() - 14);
        // both IPMI checksums make their spans sum to zero
        assert_eq!(p[14..17].iter().fold(0u8, |a, b| a.wrapping_add(*b)), 0);
        assert_eq!(p[17..].iter().fold(0u8, |a, b| a.wrapping_add(*b)), 0);
        assert_eq!(p[18] >> 2, 1, "rqSeq");
    }

    #[test]
    fn messages_carry_both_checksums() {
        let m = message(NETFN_CHASSIS, 3, 0x01, &[]);
        assert_eq!(m, [0x20, 0x00, 0xe0, 0x81, 0x0c, 0x01, 0x72]);
        assert_eq!(m[..3].iter().fold(0u8, |a, b| a.wrapping_add(*b)), 0);
        assert_eq!(m[3..].iter().fold(0u8, |a, b| a.wrapping_add(*b)), 0);
    }

    #[test]
    fn authenticated_packets_sign_the_message_with_md5() {
        let pw = padded::<16>("admin").unwrap();
        let s = Session {
            auth: AUTH_MD5,
            seq: 7,
            id: 0x0102_0304,
            password: &pw,
        };
        let msg = message(NETFN_APP, 2, 0x3a, &[1, 2, 3]);
        let p = packet(&s, &msg);
        assert_eq!(&p[..5], &[0x06, 0x00, 0xff, 0x07, AUTH_MD5]);
        assert_eq!(&p[5..9], &7u32.to_le_bytes());
        assert_eq!(&p[9..13], &[0x04, 0x03, 0x02, 0x01]);
        let mut input = pw.to_vec();
        input.extend_from_slice(&0x0102_0304u32.to_le_bytes());
        input.extend_from_slice(&msg);
        input.extend_from_slice(&7u32.to_le_bytes());
        input.extend_from_slice(&pw);
        assert_eq!(&p[13..29], Md5::digest(&input).as_slice());
        assert_eq!(p[29] as usize, msg.len());
        assert_eq!(&p[30..], &msg[..]);
    }

    /// An unauthenticated IPMI 1.5 reply as a BMC sends it.
    fn reply(session_id: u32, netfn: u8, rq_seq: u8, cmd: u8, cc: u8, data: &[u8]) -> Vec<u8> {
        let mut msg = vec![CONSOLE_ADDR, netfn << 2];
        msg.push(checksum(&msg));
        let mut body = vec![BMC_ADDR, rq_seq << 2, cmd, cc];
        body.extend_from_slice(data);
        msg.extend_from_slice(&body);
        msg.push(checksum(&body));
        let mut p = vec![0x06, 0x00, 0xff, 0x07, 0, 0, 0, 0, 0];
        p.extend_from_slice(&session_id.to_le_bytes());
        p.push(msg.len() as u8);
        p.extend_from_slice(&msg);
        p
    }

    #[test]
    fn replies_are_checked_and_their_data_returned() {
        // Unauthenticated reply to Get Session Challenge (rqSeq 1): cc 0, then 4 bytes of data.
        let r = reply(0, NETFN_APP + 1, 1, 0x39, 0, &[9, 8, 7, 6]);
        let req = request(&NO_SESSION, NETFN_APP, 1, 0x39, &[]);
        let parsed = parse_reply(&r).unwrap();
        assert!(req.answered_by(&parsed));
        assert_eq!(reply_data(parsed), Ok(vec![9, 8, 7, 6]));
        let mut failed = r.clone();
        failed[14 + 6] = 0xd4;
        failed[14 + 11] = failed[14 + 11].wrapping_sub(0xd4);
        assert_eq!(
            reply_data(parse_reply(&failed).unwrap()),
            Err("command 0x39 failed with code 0xd4".to_string())
        );
        let mut garbled = r.clone();
        garbled[14 + 8] ^= 0xff;
        assert!(parse_reply(&garbled).is_err(), "checksum mismatch");
        assert!(parse_reply(&r[..16]).is_err(), "truncated");
        assert!(parse_reply(b"HTTP/1.0 200").is_err());
    }

    #[test]
    fn a_reply_answers_only_its_own_request() {
        let pw = [0; 16];
        let in_session = Session {
            auth: AUTH_MD5,
            seq: 5,
            id: 0x0a0b_0c0d,
            password: &pw,
        };
        let req = request(&in_session, NETFN_CHASSIS, 7, 0x01, &[]);
        let answers = |r: Vec<u8>| req.answered_by(&parse_reply(&r).unwrap());
        assert!(answers(reply(
            0x0a0b_0c0d,
            NETFN_CHASSIS + 1,
            7,
            0x01,
            0,
            &[1]
        )));
        assert!(
            !answers(reply(0x0a0b_0c0d, NETFN_CHASSIS + 1, 6, 0x01, 0, &[1])),
            "another rqSeq"
        );
        assert!(
            !answers(reply(0x0a0b_0c0d, NETFN_CHASSIS + 1, 7, 0x02, 0, &[1])),
            "another command"
        );
        assert!(
            !answers(reply(0x0a0b_0c0d, NETFN_APP + 1, 7, 0x01, 0, &[1])),
            "another netFn"
        );
        assert!(
            !answers(reply(0x0a0b_0c0d, NETFN_CHASSIS, 7, 0x01, 0, &[1])),
            "a request, not a response"
        );
        assert!(
            !answers(reply(0, NETFN_CHASSIS + 1, 7, 0x01, 0, &[1])),
            "another session"
        );
    }

    #[tokio::test]
    async fn each_request_gets_its_own_rq_seq() {
        let mut client = Client::connect("127.0.0.1:9".parse().unwrap())
            .await
            .unwrap();
        let seqs: Vec<u8> = (0..130)
            .map(|_| client.request(&NO_SESSION, NETFN_APP, 0x38, &[]).rq_seq)
            .collect();
        assert_eq!(&seqs[..3], &[1, 2, 3]);
        assert!(
            seqs.iter().all(|s| (1..=63).contains(s)),
            "6-bit, never 0: {seqs:?}"
        );
        assert!(seqs.windows(2).all(|w| w[0] != w[1]));
        assert_eq!(seqs[63], 1, "wraps after 63");
    }

    /// What a fake BMC read from one request.
    #[derive(Debug, Clone, Copy)]
    struct Asked {
        session_id: u32,
        netfn: u8,
        rq_seq: u8,
        cmd: u8,
    }

    fn parse_request(p: &[u8]) -> Asked {
        let start = if p[4] != 0 { 30 } else { 14 };
        let msg = &p[start..];
        Asked {
            session_id: u32::from_le_bytes([p[9], p[10], p[11], p[12]]),
            netfn: msg[1] >> 2,
            rq_seq: msg[4] >> 2,
            cmd: msg[5],
        }
    }

    /// A pause of 200 ms in a fake BMC's answer, instead of a datagram.
    const PAUSE: Vec<u8> = Vec::new();

    /// A BMC on 127.0.0.1 that answers each request with the datagrams `answer` returns, in
    /// order ([`PAUSE`] waits a little); it records every request it read.
    async fn fake_bmc(
        mut answer: impl FnMut(&Asked) -> Vec<Vec<u8>> + Send + 'static,
    ) -> (SocketAddr, std::sync::Arc<std::sync::Mutex<Vec<Asked>>>) {
        let sock = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let addr = sock.local_addr().unwrap();
        let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let log = seen.clone();
        tokio::spawn(async move {
            let mut buf = [0u8; 512];
            while let Ok((n, from)) = sock.recv_from(&mut buf).await {
                let asked = parse_request(&buf[..n]);
                log.lock().unwrap().push(asked);
                for d in answer(&asked) {
                    if d.is_empty() {
                        tokio::time::sleep(Duration::from_millis(200)).await;
                    } else {
                        sock.send_to(&d, from).await.unwrap();
                    }
                }
            }
        });
        (addr, seen)
    }

    const TEMP_ID: u32 = 0x1111_0001;
    const SESSION_ID: u32 = 0x2222_0002;

    #[tokio::test]
    async fn stale_and_foreign_replies_are_dropped_and_the_matching_one_taken() {
        // Before each right answer the BMC sends what a client must not take for it: a late
        // reply to the request before (or to a ping), a reply in another session, one with
        // another rqSeq, and garbage. Each wrong one says "power off" or fails.
        let mut prev: Option<Asked> = None;
        let (addr, seen) = fake_bmc(move |q| {
            let rs = q.netfn + 1;
            let mut out = vec![match prev {
                Some(p) => reply(p.session_id, p.netfn + 1, p.rq_seq, p.cmd, 0, &[0; 20]),
                None => reply(0, NETFN_APP + 1, 0, 0x38, 0xc1, &[]),
            }];
            out.push(reply(q.session_id ^ 0xff, rs, q.rq_seq, q.cmd, 0, &[0; 20]));
            out.push(reply(
                q.session_id,
                rs,
                (q.rq_seq + 1) % 64,
                q.cmd,
                0,
                &[0; 20],
            ));
            out.push(b"garbage".to_vec());
            let right = match q.cmd {
                0x39 => {
                    let mut d = TEMP_ID.to_le_bytes().to_vec();
                    d.extend_from_slice(&[0x5a; 16]);
                    d
                }
                0x3a => {
                    let mut d = vec![AUTH_MD5];
                    d.extend_from_slice(&SESSION_ID.to_le_bytes());
                    d.extend_from_slice(&42u32.to_le_bytes());
                    d.push(PRIV_USER);
                    d
                }
                0x01 => vec![0x01, 0, 0, 0],
                _ => return vec![],
            };
            out.push(reply(q.session_id, rs, q.rq_seq, q.cmd, 0, &right));
            prev = Some(*q);
            out
        })
        .await;
        assert_eq!(power_is_on(addr, "admin", "admin").await, Ok(true));
        tokio::time::sleep(Duration::from_millis(50)).await; // the close request
        let seen = seen.lock().unwrap().clone();
        let cmds: Vec<u8> = seen.iter().map(|a| a.cmd).collect();
        assert_eq!(cmds, [0x39, 0x3a, 0x01, 0x3c], "one try each, no resend");
        let sessions: Vec<u32> = seen.iter().map(|a| a.session_id).collect();
        assert_eq!(sessions, [0, TEMP_ID, SESSION_ID, SESSION_ID]);
        let seqs: Vec<u8> = seen.iter().map(|a| a.rq_seq).collect();
        assert_eq!(seqs, [1, 2, 3, 4], "each request its own rqSeq");
    }

    #[tokio::test]
    async fn a_try_waits_past_wrong_replies_and_gives_up_without_a_right_one() {
        // Only wrong replies: each try (100 ms for the ping) waits its whole time, then the
        // request is sent again, for the ping's 2 s.
        let (addr, seen) =
            fake_bmc(|q| vec![reply(0, q.netfn + 1, q.rq_seq ^ 1, q.cmd, 0xc1, &[])]).await;
        let started = std::time::Instant::now();
        assert_eq!(
            ping(addr).await,
            Err(format!("{addr}: no IPMI reply")),
            "a wrong reply is no answer"
        );
        assert!(
            started.elapsed() >= Duration::from_millis(1900),
            "{:?}",
            started.elapsed()
        );
        let sent = seen.lock().unwrap().len();
        assert!((15..=20).contains(&sent), "resent each try: {sent}");

        // The right reply comes 200 ms after a wrong one: after the ping's 100 ms try, so the
        // request was sent again, and the late answer to the first send counts (same rqSeq).
        let (addr, seen) = fake_bmc(|q| {
            let wrong = reply(0, q.netfn + 1, q.rq_seq ^ 1, q.cmd, 0xc1, &[]);
            let right = reply(0, q.netfn + 1, q.rq_seq, q.cmd, 0, &[1, 0x80]);
            vec![wrong, PAUSE, right]
        })
        .await;
        assert_eq!(ping(addr).await, Ok(()));
        let sent = seen.lock().unwrap().len();
        assert!((2..=3).contains(&sent), "{sent}");
    }

    #[test]
    fn credentials_longer_than_the_fields_are_refused() {
        assert!(padded::<16>("a-user-name-of-17").is_err());
        assert_eq!(&padded::<16>("admin").unwrap()[..6], b"admin\0");
    }
}
