//! A node's hardware identity: vendor, model, serial number, system UUID and asset tag, checked
//! so that every place it goes can hold it (an IPMI FRU field, an SMBIOS string, a QEMU option
//! value, a URL query), with stable defaults derived from the lab and node names.

use std::collections::HashMap;
use std::ops::Range;

use super::{PendingNode, Validator};
use crate::config::Str;
use sha1::Sha1;
use sha2::{Digest, Sha256};

/// What a lab node says it is unless the file says otherwise: a 1U rack server from a maker whose
/// name says it is a lab's.
pub const DEFAULT_VENDOR: &str = "Metal Lab";
pub const DEFAULT_MODEL: &str = "LabServer 1U";

/// The longest string every target holds: an IPMI FRU field has a 6-bit length (63 bytes).
const MAX_LEN: usize = 63;

/// RFC 9562's namespace for DNS names (`6ba7b810-9dad-11d1-80b4-00c04fd430c8`): a node's default
/// UUID is the name-based one of `<node>.<lab>`, which any UUID library can recompute.
const NAMESPACE_DNS: [u8; 16] = [
    0x6b, 0xa7, 0xb8, 0x10, 0x9d, 0xad, 0x11, 0xd1, 0x80, 0xb4, 0x00, 0xc0, 0x4f, 0xd4, 0x30, 0xc8,
];

impl Validator<'_> {
    /// A free-text identity field (vendor, model, asset tag): printable ASCII, at most 63 bytes,
    /// not blank and without spaces around it.
    pub(super) fn identity_text(&mut self, s: &Str, key: &str) -> Option<String> {
        let t = self.text(s, key)?;
        let why = if t.trim().is_empty() {
            Some("is empty")
        } else if t.len() > MAX_LEN {
            Some("is longer than 63 characters")
        } else if !t.bytes().all(|b| (0x20..0x7f).contains(&b)) {
            Some("has characters other than printable ASCII")
        } else if t.trim() != t {
            Some("starts or ends with a space")
        } else {
            None
        };
        match why {
            None => Some(t),
            Some(why) => {
                self.err(
                    Some(s.span()),
                    key,
                    format!("`{t}` {why}"),
                    "use 1 to 63 printable ASCII characters (an IPMI FRU field and an SMBIOS string must hold it)",
                );
                None
            }
        }
    }

    /// A serial number: 1 to 63 letters, digits, `-`, `.` and `_` (it also names the machine in
    /// URLs, labels and the guest's report).
    pub(super) fn serial(&mut self, s: &Str, key: &str) -> Option<String> {
        let t = self.text(s, key)?;
        let ok = !t.is_empty()
            && t.len() <= MAX_LEN
            && t.chars()
                .all(|c| c.is_ascii_alphanumeric() || "-._".contains(c));
        if !ok {
            self.err(
                Some(s.span()),
                key,
                format!("`{t}` is not a serial number"),
                "use 1 to 63 letters, digits, '-', '.' or '_', e.g. \"LAB0001\"",
            );
            return None;
        }
        Some(t)
    }

    /// A UUID in its hyphenated form, kept in lowercase; the nil and the max UUID are refused
    /// (firmware treats them as "not set").
    pub(super) fn uuid(&mut self, s: &Str, key: &str) -> Option<String> {
        let t = self.text(s, key)?;
        let lower = t.trim().to_ascii_lowercase();
        let groups: Vec<&str> = lower.split('-').collect();
        let shape = groups.iter().map(|g| g.len()).collect::<Vec<_>>() == [8, 4, 4, 4, 12]
            && groups
                .iter()
                .all(|g| g.chars().all(|c| c.is_ascii_hexdigit()));
        if !shape {
            self.err(
                Some(s.span()),
                key,
                format!("`{t}` is not a UUID"),
                "write 32 hex digits as 8-4-4-4-12, e.g. \"4c4c4544-0042-3510-8052-b4c04f4e3132\", or leave uuid out for one derived from the lab and node names",
            );
            return None;
        }
        let digits: String = groups.concat();
        if digits.chars().all(|c| c == '0') || digits.chars().all(|c| c == 'f') {
            self.err(
                Some(s.span()),
                key,
                format!("`{t}` is the nil or max UUID, which firmware reads as \"no UUID\""),
                "pick another UUID, or leave uuid out for one derived from the lab and node names",
            );
            return None;
        }
        Some(lower)
    }

    /// `serial` and `uuid` name one machine: a group of `count` members cannot share them.
    pub(super) fn refuse_shared_identity(
        &mut self,
        serial: Option<&Str>,
        uuid: Option<&Str>,
        key: &str,
    ) {
        for (field, s) in [("serial", serial), ("uuid", uuid)] {
            if let Some(s) = s {
                self.err(
                    Some(s.span()),
                    format!("{key}.{field}"),
                    format!("`{field}` identifies one machine, and this table has `count` members"),
                    format!("leave `{field}` out (each member gets its own, derived from the lab and node names), or write one [nodes.NAME] table per node"),
                );
            }
        }
    }

    /// Serial numbers (ignoring case) and UUIDs are unique in the lab, as an inventory expects.
    pub(super) fn check_identities(&mut self, nodes: &[PendingNode]) {
        let mut serials: HashMap<String, &str> = HashMap::new();
        let mut uuids: HashMap<&str, &str> = HashMap::new();
        for n in nodes {
            let serial = n.node.serial.to_ascii_lowercase();
            if let Some(first) = serials.get(&serial).filter(|f| **f != n.key) {
                let msg = format!("serial `{}` is already used by {first}", n.node.serial);
                self.duplicate(n.serial_span.clone(), &n.key, "serial", msg);
            } else {
                serials.insert(serial, &n.key);
            }
            if let Some(first) = uuids.get(n.node.uuid.as_str()).filter(|f| **f != n.key) {
                let msg = format!("uuid `{}` is already used by {first}", n.node.uuid);
                self.duplicate(n.uuid_span.clone(), &n.key, "uuid", msg);
            } else {
                uuids.insert(&n.node.uuid, &n.key);
            }
        }
    }

    fn duplicate(&mut self, span: Option<Range<usize>>, key: &str, field: &str, msg: String) {
        self.err(
            span,
            format!("{key}.{field}"),
            msg,
            format!("give every node its own {field}, or leave it out for one derived from the lab and node names"),
        );
    }
}

/// The default serial number: `LAB` and ten characters (Crockford base32) of a hash of the lab
/// and node names, so that it is stable across runs and differs between labs.
pub fn derived_serial(lab: &str, node: &str) -> String {
    hashed_serial("LAB", &format!("serial\0{lab}\0{node}"))
}

/// The serial number of a node's disk `index` (0 is the first): `LD` and ten characters of a
/// hash, well within ATA's 20.
pub fn derived_disk_serial(lab: &str, node: &str, index: usize) -> String {
    hashed_serial("LD", &format!("disk\0{lab}\0{node}\0{index}"))
}

/// `prefix` and ten Crockford base32 characters of SHA-256(`input`).
fn hashed_serial(prefix: &str, input: &str) -> String {
    const ALPHABET: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";
    let h = Sha256::digest(input.as_bytes());
    let mut v = u64::from_be_bytes([h[0], h[1], h[2], h[3], h[4], h[5], h[6], h[7]]);
    let mut s = String::from(prefix);
    for _ in 0..10 {
        s.push(ALPHABET[(v & 31) as usize] as char);
        v >>= 5;
    }
    s
}

/// The default system UUID: the version 5 (SHA-1, name-based) UUID of the DNS name
/// `<node>.<lab>` (RFC 9562 section 5.5), e.g. Python's `uuid.uuid5(uuid.NAMESPACE_DNS,
/// "master.lab")`. Version 5 is one IPMI clients recognise when they decode a GUID.
pub fn derived_uuid(lab: &str, node: &str) -> String {
    let mut h = Sha1::new();
    h.update(NAMESPACE_DNS);
    h.update(format!("{node}.{lab}").as_bytes());
    let d = h.finalize();
    let mut b = [0u8; 16];
    b.copy_from_slice(&d[..16]);
    b[6] = (b[6] & 0x0f) | 0x50;
    b[8] = (b[8] & 0x3f) | 0x80;
    let x = hex::encode(b);
    format!(
        "{}-{}-{}-{}-{}",
        &x[0..8],
        &x[8..12],
        &x[12..16],
        &x[16..20],
        &x[20..32]
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn derived_identities_are_stable_distinct_and_well_formed() {
        assert_eq!(derived_serial("a", "n1"), derived_serial("a", "n1"));
        assert_ne!(derived_serial("a", "n1"), derived_serial("b", "n1"));
        assert_ne!(derived_serial("a", "n1"), derived_serial("a", "n2"));
        let s = derived_serial("lab", "master");
        assert!(s.len() == 13 && s.starts_with("LAB"), "{s}");
        assert!(s
            .chars()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit()));
        // Python: uuid.uuid5(uuid.NAMESPACE_DNS, "master.lab")
        assert_eq!(
            derived_uuid("lab", "master"),
            "57a2349b-3be0-5ec4-aeab-0399b75a8e93"
        );
        assert_ne!(derived_uuid("lab", "master"), derived_uuid("lab", "worker"));
    }
}
