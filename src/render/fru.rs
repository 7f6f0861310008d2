//! IPMI FRU inventory data (Platform Management FRU Information Storage Definition v1.0): the
//! `ipmi_fru` template function, which node.emu.j2 hands to ipmi_sim's `mc_add_fru_data`.

use minijinja::value::Kwargs;
use minijinja::{Error, ErrorKind};

/// The fields of a node's FRU, each printable ASCII of at most 63 characters.
#[derive(Debug, Default, Clone)]
pub struct Fru {
    pub chassis_part: String,
    pub chassis_serial: String,
    pub board_manufacturer: String,
    pub board_product: String,
    pub board_serial: String,
    pub board_part: String,
    pub product_manufacturer: String,
    pub product_name: String,
    pub product_part: String,
    pub product_version: String,
    pub product_serial: String,
    pub asset_tag: String,
}

/// Chassis type "rack mount chassis" (SMBIOS 0x17).
const RACK_MOUNT: u8 = 0x17;

fn field(out: &mut Vec<u8>, s: &str) -> Result<(), String> {
    if s.len() > 63 || !s.bytes().all(|b| (0x20..0x7f).contains(&b)) {
        return Err(format!(
            "FRU field `{s}` must be at most 63 printable ASCII characters"
        ));
    }
    out.push(0xc0 | s.len() as u8);
    out.extend_from_slice(s.as_bytes());
    Ok(())
}

fn checksum(bytes: &[u8]) -> u8 {
    0u8.wrapping_sub(bytes.iter().fold(0u8, |a, b| a.wrapping_add(*b)))
}

/// Closes an area: end-of-fields marker, padding to a multiple of 8 bytes, length, checksum.
fn area(mut a: Vec<u8>) -> Vec<u8> {
    a.push(0xc1);
    while !(a.len() + 1).is_multiple_of(8) {
        a.push(0);
    }
    a[1] = ((a.len() + 1) / 8) as u8;
    let c = checksum(&a);
    a.push(c);
    a
}

impl Fru {
    /// The FRU image: common header, chassis, board and product info areas.
    pub fn bytes(&self) -> Result<Vec<u8>, String> {
        let mut chassis = vec![1, 0, RACK_MOUNT];
        field(&mut chassis, &self.chassis_part)?;
        field(&mut chassis, &self.chassis_serial)?;
        let chassis = area(chassis);

        // Language 0 (English), manufacturing date 0 (unspecified).
        let mut board = vec![1, 0, 0, 0, 0, 0];
        field(&mut board, &self.board_manufacturer)?;
        field(&mut board, &self.board_product)?;
        field(&mut board, &self.board_serial)?;
        field(&mut board, &self.board_part)?;
        field(&mut board, "")?; // FRU file id
        let board = area(board);

        let mut product = vec![1, 0, 0];
        field(&mut product, &self.product_manufacturer)?;
        field(&mut product, &self.product_name)?;
        field(&mut product, &self.product_part)?;
        field(&mut product, &self.product_version)?;
        field(&mut product, &self.product_serial)?;
        field(&mut product, &self.asset_tag)?;
        field(&mut product, "")?; // FRU file id
        let product = area(product);

        let c_off = 1;
        let b_off = c_off + chassis.len() / 8;
        let p_off = b_off + board.len() / 8;
        let mut header = vec![1, 0, c_off as u8, b_off as u8, p_off as u8, 0, 0];
        header.push(checksum(&header));
        Ok([header, chassis, board, product].concat())
    }
}

/// `ipmi_fru(chassis_serial=..., board_manufacturer=..., ...)`: the FRU image as space-separated
/// `0xNN` bytes. Every field is a keyword argument; a missing one is empty.
pub fn ipmi_fru(kwargs: Kwargs) -> Result<String, Error> {
    let get = |k: &str| -> Result<String, Error> {
        Ok(kwargs.get::<Option<String>>(k)?.unwrap_or_default())
    };
    let fru = Fru {
        chassis_part: get("chassis_part")?,
        chassis_serial: get("chassis_serial")?,
        board_manufacturer: get("board_manufacturer")?,
        board_product: get("board_product")?,
        board_serial: get("board_serial")?,
        board_part: get("board_part")?,
        product_manufacturer: get("product_manufacturer")?,
        product_name: get("product_name")?,
        product_part: get("product_part")?,
        product_version: get("product_version")?,
        product_serial: get("product_serial")?,
        asset_tag: get("asset_tag")?,
    };
    kwargs.assert_all_used()?;
    let bytes = fru
        .bytes()
        .map_err(|e| Error::new(ErrorKind::InvalidOperation, e))?;
    Ok(bytes
        .iter()
        .map(|b| format!("0x{b:02x}"))
        .collect::<Vec<_>>()
        .join(" "))
}

/// `"CPU Temp" | ascii_bytes`: a printable ASCII string as space-separated `0xNN` bytes (an SDR's
/// ID string).
pub fn ascii_bytes(s: String) -> Result<String, Error> {
    if !s.bytes().all(|b| (0x20..0x7f).contains(&b)) {
        return Err(Error::new(
            ErrorKind::InvalidOperation,
            format!("`{s}` is not printable ASCII"),
        ));
    }
    Ok(s.bytes()
        .map(|b| format!("0x{b:02x}"))
        .collect::<Vec<_>>()
        .join(" "))
}

/// `uuid | ipmi_guid`: a hyphenated UUID as the 32 hex digits ipmi_sim's `guid` (lan.conf) and
/// `mc_set_guid` take, in the byte order of IPMI's GUID format (IPMI 2.0 section 20.8: the
/// UUID's 16 bytes least significant first, so the whole RFC 4122 byte string reversed).
/// Clients (ipmitool `mc guid`, freeipmi `bmc-info --get-system-guid`) print it back as the UUID.
pub fn ipmi_guid(uuid: String) -> Result<String, Error> {
    let digits: String = uuid.chars().filter(|c| *c != '-').collect();
    let bytes = hex::decode(&digits)
        .ok()
        .filter(|b| b.len() == 16)
        .ok_or_else(|| {
            Error::new(
                ErrorKind::InvalidOperation,
                format!("`{uuid}` is not a UUID"),
            )
        })?;
    Ok(bytes.iter().rev().map(|b| format!("{b:02x}")).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn areas_are_aligned_and_checksummed() {
        let fru = Fru {
            chassis_serial: "LAB0001".into(),
            board_manufacturer: "metal-lab".into(),
            product_name: "Lab Node".into(),
            product_serial: "LAB0001".into(),
            ..Fru::default()
        };
        let b = fru.bytes().unwrap();
        assert_eq!(b.len() % 8, 0);
        assert_eq!(checksum(&b[..8]), 0);
        for off in [b[2], b[3], b[4]] {
            let start = off as usize * 8;
            let len = b[start + 1] as usize * 8;
            assert_eq!(checksum(&b[start..start + len]), 0, "area at {start}");
        }
        let text = String::from_utf8_lossy(&b);
        assert!(text.contains("LAB0001") && text.contains("Lab Node"));
    }

    #[test]
    fn guids_are_uuids_least_significant_byte_first() {
        assert_eq!(
            ipmi_guid("00112233-4455-6677-8899-aabbccddeeff".into()).unwrap(),
            "ffeeddccbbaa99887766554433221100"
        );
        assert!(ipmi_guid("0011".into()).is_err());
    }

    #[test]
    fn refuses_fields_a_fru_cannot_hold() {
        let fru = Fru {
            product_name: "x".repeat(64),
            ..Fru::default()
        };
        assert!(fru.bytes().is_err());
        let fru = Fru {
            product_name: "caf\u{e9}".into(),
            ..Fru::default()
        };
        assert!(fru.bytes().is_err());
    }
}

/// `node.vendor | iana_enterprise`: the IANA Private Enterprise Number a BMC of that vendor gives
/// as its manufacturer in Get Device ID (what `ipmitool mc info`, freeipmi's `bmc-info` and
/// Ironic's vendor detection read), for the server makers provisioning software knows; any other
/// vendor (lab's own "Metal Lab") gets 32473, the number RFC 5612 reserves for documentation,
/// rather than claim a real company's.
pub fn iana_enterprise(vendor: String) -> u32 {
    let v = vendor.to_ascii_lowercase();
    const MAKERS: [(&str, u32); 11] = [
        ("dell", 674),
        ("hewlett packard enterprise", 47196),
        ("hpe", 47196),
        ("hewlett", 11),
        ("supermicro", 10876),
        ("super micro", 10876),
        ("lenovo", 19046),
        ("intel", 343),
        ("cisco", 9),
        ("quanta", 7244),
        ("huawei", 2011),
    ];
    let word = |k: &str| {
        v.split(|c: char| !c.is_ascii_alphanumeric())
            .collect::<Vec<_>>()
            .windows(k.split(' ').count())
            .any(|w| w.join(" ") == k)
    };
    MAKERS
        .iter()
        .find(|(k, _)| word(k))
        .map_or(32473, |(_, n)| *n)
}

#[cfg(test)]
mod iana_tests {
    use super::iana_enterprise;

    #[test]
    fn known_server_makers_get_their_enterprise_number_others_the_documentation_one() {
        for (vendor, n) in [
            ("Dell Inc.", 674),
            ("HPE", 47196),
            ("Hewlett Packard Enterprise", 47196),
            ("Hewlett-Packard", 11),
            ("Supermicro", 10876),
            ("Super Micro Computer, Inc.", 10876),
            ("LENOVO", 19046),
            ("Intel Corporation", 343),
            ("Metal Lab", 32473),
            ("Acme, Inc.", 32473),
            ("Intellicorp", 32473),
        ] {
            assert_eq!(iana_enterprise(vendor.into()), n, "{vendor}");
        }
    }
}
