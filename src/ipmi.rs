//! A small IPMI 1.5 LAN client: a session-less ping (what `lab up` waits for), and one
//! authenticated session (MD5 authentication) to ask a BMC for its chassis power state. `lab status` uses it to ask every node's BMC directly at its address
//! on the lab network, which takes a few milliseconds, where running `ipmitool` inside each node
//! container costs a `docker exec` per node.

use std::net::SocketAddr;
use std::time::Duration;

use md5::{Digest, Md5};
use tokio::net::UdpSocket;
use tokio::time::timeout;

const AUTH_MD5: u8 = 0x02;
const NETFN_APP: u8 = 0x06;
const NETFN_CHASSIS: u8 = 0x00;
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

/// An IPMI 1.5 packet outside any session (no authentication, sequence and session id 0).
fn sessionless(msg: &[u8]) -> Vec<u8> {
    let none = Session {
        auth: 0,
        seq: 0,
        id: 0,
        password: &[0; 16],
    };
    packet(&none, msg)
}

/// The data of a reply to `cmd` (after the completion code), or why there is none.
fn reply_data(reply: &[u8], cmd: u8) -> Result<Vec<u8>, String> {
    if reply.len() < 14 || reply[0] != 0x06 || reply[3] != 0x07 {
        return Err("not an IPMI reply".into());
    }
    let start = if reply[4] != 0 { 30 } else { 14 };
    let len = *reply.get(start - 1).ok_or("reply too short")? as usize;
    let msg = reply
        .get(start..start + len)
        .ok_or("reply shorter than its length")?;
    // rqAddr, netFn/LUN, checksum, rsAddr, rqSeq/LUN, command, completion code, data, checksum.
    if msg.len() < 8 || msg[5] != cmd {
        return Err(format!("reply is not for command {cmd:#04x}"));
    }
    if msg[6] != 0 {
        return Err(format!(
            "command {cmd:#04x} failed with code {:#04x}",
            msg[6]
        ));
    }
    Ok(msg[7..msg.len() - 1].to_vec())
}

async fn call(sock: &UdpSocket, pkt: &[u8], cmd: u8) -> Result<Vec<u8>, String> {
    let mut buf = [0u8; 512];
    for _ in 0..3 {
        sock.send(pkt).await.map_err(|e| e.to_string())?;
        if let Ok(r) = timeout(Duration::from_millis(500), sock.recv(&mut buf)).await {
            let n = r.map_err(|e| e.to_string())?;
            return reply_data(&buf[..n], cmd);
        }
    }
    Err(NO_REPLY.into())
}

const NO_REPLY: &str = "no reply";

/// A UDP socket connected to the BMC.
async fn socket(addr: SocketAddr) -> Result<UdpSocket, String> {
    let any = if addr.is_ipv4() {
        "0.0.0.0:0"
    } else {
        "[::]:0"
    };
    let sock = UdpSocket::bind(any).await.map_err(|e| e.to_string())?;
    sock.connect(addr).await.map_err(|e| e.to_string())?;
    Ok(sock)
}

/// The session-less "Get Channel Authentication Capabilities" (the first message any IPMI
/// client sends): this channel, IPMI v2.0 data, admin privilege.
fn channel_auth_request() -> Vec<u8> {
    sessionless(&message(NETFN_APP, 0, 0x38, &[0x8e, 0x04]))
}

/// Whether the BMC at `addr` answers IPMI: a well-formed reply to Get Channel Authentication
/// Capabilities means it is up. Asked again every 100 ms on the same socket, for 2 s: a BMC
/// still starting drops the request (the ICMP error that would say so is rate-limited), and
/// answers the next one as soon as it listens; a late answer to an earlier one counts too.
pub async fn ping(addr: SocketAddr) -> Result<(), String> {
    let asked = async {
        let sock = socket(addr).await?;
        let request = channel_auth_request();
        let mut buf = [0u8; 512];
        loop {
            sock.send(&request).await.map_err(|e| e.to_string())?;
            if let Ok(r) = timeout(Duration::from_millis(100), sock.recv(&mut buf)).await {
                let n = r.map_err(|e| e.to_string())?;
                return reply_data(&buf[..n], 0x38);
            }
        }
    };
    match timeout(Duration::from_secs(2), asked).await {
        Ok(Ok(_)) => Ok(()),
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
    let name: [u8; 16] = padded(user).map_err(|e| format!("BMC user {e}"))?;
    let pw: [u8; 16] = padded(password).map_err(|e| format!("BMC password {e}"))?;
    let sock = socket(addr).await?;
    let none = Session {
        auth: 0,
        seq: 0,
        id: 0,
        password: &pw,
    };
    let mut data = vec![AUTH_MD5];
    data.extend_from_slice(&name);
    let challenge = call(
        &sock,
        &packet(&none, &message(NETFN_APP, 1, 0x39, &data)),
        0x39,
    )
    .await?;
    if challenge.len() < 20 {
        return Err("short session challenge".into());
    }
    let temp = Session {
        auth: AUTH_MD5,
        seq: 0,
        id: u32::from_le_bytes([challenge[0], challenge[1], challenge[2], challenge[3]]),
        password: &pw,
    };
    let mut data = vec![AUTH_MD5, PRIV_USER];
    data.extend_from_slice(&challenge[4..20]);
    data.extend_from_slice(&1u32.to_le_bytes()); // our first outbound sequence number
    let activated = call(
        &sock,
        &packet(&temp, &message(NETFN_APP, 2, 0x3a, &data)),
        0x3a,
    )
    .await?;
    if activated.len() < 9 {
        return Err("short activate-session reply".into());
    }
    let id = u32::from_le_bytes([activated[1], activated[2], activated[3], activated[4]]);
    let seq = u32::from_le_bytes([activated[5], activated[6], activated[7], activated[8]]);
    let session = Session {
        auth: AUTH_MD5,
        seq,
        id,
        password: &pw,
    };
    let status = call(
        &sock,
        &packet(&session, &message(NETFN_CHASSIS, 3, 0x01, &[])),
        0x01,
    )
    .await;
    let close = Session {
        seq: seq.wrapping_add(1),
        ..session
    };
    let _ = sock
        .send(&packet(
            &close,
            &message(NETFN_APP, 4, 0x3c, &id.to_le_bytes()),
        ))
        .await;
    let status = status?;
    let power = status.first().ok_or("empty chassis status")?;
    Ok(power & 1 == 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn channel_auth_request_is_well_formed() {
        let p = channel_auth_request();
        assert_eq!(&p[..4], &[0x06, 0x00, 0xff, 0x07]);
        assert_eq!(p[13] as usize, p.len() - 14);
        // both IPMI checksums make their spans sum to zero
        assert_eq!(p[14..17].iter().fold(0u8, |a, b| a.wrapping_add(*b)), 0);
        assert_eq!(p[17..].iter().fold(0u8, |a, b| a.wrapping_add(*b)), 0);
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

    #[test]
    fn replies_are_checked_and_their_data_returned() {
        // Unauthenticated reply to Get Session Challenge: cc 0, then 4 bytes of data.
        let body = [0x20u8, 0x04, 0x39, 0x00, 9, 8, 7, 6];
        let mut msg = vec![CONSOLE_ADDR, (NETFN_APP + 1) << 2];
        msg.push(checksum(&msg));
        msg.extend_from_slice(&body);
        msg.push(checksum(&body));
        let mut reply = vec![0x06, 0x00, 0xff, 0x07, 0, 0, 0, 0, 0, 0, 0, 0, 0];
        reply.push(msg.len() as u8);
        reply.extend_from_slice(&msg);
        assert_eq!(reply_data(&reply, 0x39), Ok(vec![9, 8, 7, 6]));
        assert!(reply_data(&reply, 0x3a).is_err(), "another command's reply");
        let mut failed = reply.clone();
        failed[14 + 6] = 0xd4;
        assert_eq!(
            reply_data(&failed, 0x39),
            Err("command 0x39 failed with code 0xd4".to_string())
        );
        assert!(reply_data(&reply[..16], 0x39).is_err(), "truncated");
        assert!(reply_data(b"HTTP/1.0 200", 0x39).is_err());
    }

    #[test]
    fn credentials_longer_than_the_fields_are_refused() {
        assert!(padded::<16>("a-user-name-of-17").is_err());
        assert_eq!(&padded::<16>("admin").unwrap()[..6], b"admin\0");
    }
}
