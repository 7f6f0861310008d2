//! The NVRAM of a UEFI node: OVMF's variable store (`uefi-vars.fd` in the node's volume), read
//! and, before a power on, set so that the node's next network boot is PXE again after a one-time
//! UEFI HTTP boot.
//!
//! Why: lab-vm HTTP-boots a UEFI node by starting QEMU with OVMF's PXE turned off (fw_cfg
//! `opt/org.tianocore/IPv4PXESupport=no`). OVMF then drops its PXE boot options from the store,
//! and at the next boot with PXE on it creates them again *after* the HTTP boot options. QEMU's
//! boot order names the NIC, not the protocol, and OVMF keeps the store's order among the options
//! of one NIC, so the node would go on HTTP-booting. [`prefer_pxe`] puts the order back, as the
//! firmware of a real server keeps its own order after a one-time boot:
//! - both kinds there, HTTP first: the entries of the network options in `BootOrder` are
//!   permuted in place (PXE before HTTP, each kind in its old order): same size, no re-layout;
//! - HTTP options and no PXE option (the boot before was an HTTP boot): the HTTP options are
//!   deleted (their state byte, as the firmware's variable driver deletes), so OVMF creates the
//!   NIC's options again in its own order, PXE first, as in a new NVRAM.
//!
//! The store (edk2's MdeModulePkg/Include/Guid/VariableFormat.h): a firmware volume
//! (EFI_FIRMWARE_VOLUME_HEADER), then a VARIABLE_STORE_HEADER whose signature is the
//! authenticated-variable GUID (Debian's OVMF_VARS_4M.fd), then the variables, each an
//! AUTHENTICATED_VARIABLE_HEADER (60 bytes), its UCS-2 name and its data, 4-byte aligned. Anything
//! unexpected is an error and the store is left as it is.

use std::path::Path;

/// gEfiAuthenticatedVariableGuid {aaf32c78-947b-439a-a180-2e144ec37792}, as stored.
const AUTH_STORE: [u8; 16] = [
    0x78, 0x2c, 0xf3, 0xaa, 0x7b, 0x94, 0x9a, 0x43, 0xa1, 0x80, 0x2e, 0x14, 0x4e, 0xc3, 0x77, 0x92,
];
/// EFI_GLOBAL_VARIABLE {8be4df61-93ca-11d2-aa0d-00e098032b8c}: BootOrder and Boot#### live there.
const GLOBAL: [u8; 16] = [
    0x61, 0xdf, 0xe4, 0x8b, 0xca, 0x93, 0xd2, 0x11, 0xaa, 0x0d, 0x00, 0xe0, 0x98, 0x03, 0x2b, 0x8c,
];
const FV_SIGNATURE: &[u8; 4] = b"_FVH";
const STORE_FORMATTED: u8 = 0x5a;
const STORE_HEALTHY: u8 = 0xfe;
const VARIABLE_DATA: u16 = 0x55aa;
const HEADER_LEN: usize = 60;
const STORE_HEADER_LEN: usize = 28;
/// Variable states (written by clearing bits).
const VAR_ADDED: u8 = 0x3f;
const VAR_HEADER_VALID_ONLY: u8 = 0x7f;
const VAR_DELETED: u8 = 0xfd;

/// Offset and length of a part of the file.
pub type Span = (usize, usize);

/// One variable record of the store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Variable {
    /// Offset of its header in the file.
    pub offset: usize,
    pub state: u8,
    pub attributes: u32,
    pub guid: [u8; 16],
    pub name: String,
    /// Its data in the file.
    pub data: Span,
}

impl Variable {
    /// Added and not deleted: what the firmware reads. A record in deleted transition (0x3e) is
    /// still the current one when no added copy follows; [`prefer_pxe`] refuses such stores.
    pub fn live(&self) -> bool {
        self.state == VAR_ADDED
    }
}

fn u16_at(b: &[u8], o: usize) -> Option<u16> {
    Some(u16::from_le_bytes(b.get(o..o + 2)?.try_into().ok()?))
}
fn u32_at(b: &[u8], o: usize) -> Option<u32> {
    Some(u32::from_le_bytes(b.get(o..o + 4)?.try_into().ok()?))
}
fn u64_at(b: &[u8], o: usize) -> Option<u64> {
    Some(u64::from_le_bytes(b.get(o..o + 8)?.try_into().ok()?))
}

/// Every variable record of the store, in file order.
pub fn variables(store: &[u8]) -> Result<Vec<Variable>, String> {
    if store.get(0x28..0x2c) != Some(FV_SIGNATURE) {
        return Err("not a firmware volume (no _FVH signature at 0x28)".into());
    }
    let fv_len = u64_at(store, 0x20).unwrap_or(0);
    if fv_len != store.len() as u64 {
        return Err(format!(
            "the firmware volume says {fv_len} bytes, the file has {}",
            store.len()
        ));
    }
    let vs = u16_at(store, 0x30).unwrap_or(0) as usize;
    if store.get(vs..vs + 16) != Some(&AUTH_STORE[..]) {
        return Err(format!(
            "no authenticated variable store at {vs:#x} (another OVMF build?)"
        ));
    }
    let size = u32_at(store, vs + 16).unwrap_or(0) as usize;
    let (format, state) = (store[vs + 20], store[vs + 21]);
    if format != STORE_FORMATTED || state != STORE_HEALTHY {
        return Err(format!(
            "the variable store is not formatted and healthy (format {format:#x}, state {state:#x})"
        ));
    }
    let end = vs + size;
    if size < STORE_HEADER_LEN || end > store.len() {
        return Err(format!(
            "the variable store's size {size:#x} does not fit the file"
        ));
    }
    let mut out = Vec::new();
    let mut o = (vs + STORE_HEADER_LEN + 3) & !3;
    while o + HEADER_LEN <= end && u16_at(store, o) == Some(VARIABLE_DATA) {
        let state = store[o + 2];
        let attributes = u32_at(store, o + 4).unwrap_or(0);
        let name_size = u32_at(store, o + 36).unwrap_or(0) as usize;
        let data_size = u32_at(store, o + 40).unwrap_or(0) as usize;
        let guid: [u8; 16] = store[o + 44..o + 60].try_into().unwrap_or_default();
        let name_at = o + HEADER_LEN;
        let data_at = name_at.checked_add(name_size).filter(|&a| a <= end);
        let data_end = data_at
            .and_then(|a| a.checked_add(data_size))
            .filter(|&e| e <= end);
        let (Some(data_at), Some(data_end)) = (data_at, data_end) else {
            return Err(format!(
                "the variable at {o:#x} runs past the store's end (name {name_size} bytes, data {data_size} bytes)"
            ));
        };
        if !name_size.is_multiple_of(2) {
            return Err(format!(
                "the variable at {o:#x} has a name of an odd size ({name_size})"
            ));
        }
        let units: Vec<u16> = store[name_at..data_at]
            .chunks_exact(2)
            .map(|c| u16::from_le_bytes([c[0], c[1]]))
            .take_while(|&c| c != 0)
            .collect();
        out.push(Variable {
            offset: o,
            state,
            attributes,
            guid,
            name: String::from_utf16_lossy(&units),
            data: (data_at, data_size),
        });
        o = (data_end + 3) & !3;
    }
    Ok(out)
}

/// The network boot kind of a boot option, from its device path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NetBoot {
    /// A MAC node and no URI node: PXE ("UEFI PXEv4 (MAC:...)").
    Pxe,
    /// A MAC node and a URI node (type 3, subtype 24): HTTP boot ("UEFI HTTPv4 (MAC:...)").
    Http,
}

/// A boot option (EFI_LOAD_OPTION): its description and, for a NIC's, the network boot kind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BootOption {
    pub number: u16,
    pub description: String,
    pub net: Option<NetBoot>,
}

/// Parses an EFI_LOAD_OPTION: Attributes (4), FilePathListLength (2), Description (UCS-2, NUL),
/// the device path (nodes of Type, SubType, Length), optional data.
pub fn boot_option(number: u16, data: &[u8]) -> Result<BootOption, String> {
    let path_len = u16_at(data, 4).ok_or("too short for a load option")? as usize;
    let mut o = 6;
    let mut units = Vec::new();
    loop {
        let c = u16_at(data, o).ok_or("its description has no end")?;
        o += 2;
        if c == 0 {
            break;
        }
        units.push(c);
    }
    let path = data
        .get(o..o + path_len)
        .ok_or("its device path runs past its data")?;
    let (mut mac, mut uri) = (false, false);
    let mut p = 0;
    while p + 4 <= path.len() {
        let (ty, sub) = (path[p], path[p + 1]);
        let len = u16_at(path, p + 2).unwrap_or(0) as usize;
        if len < 4 || p + len > path.len() {
            return Err(format!("a device path node at {p} has length {len}"));
        }
        match (ty, sub) {
            (0x7f, 0xff) => break,
            (3, 11) => mac = true,
            (3, 24) => uri = true,
            _ => {}
        }
        p += len;
    }
    Ok(BootOption {
        number,
        description: String::from_utf16_lossy(&units),
        net: mac.then_some(if uri { NetBoot::Http } else { NetBoot::Pxe }),
    })
}

/// What [`prefer_pxe`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// Nothing to do: no HTTP boot option ahead of a PXE one.
    None,
    /// BootOrder's network entries permuted: PXE first. Old and new order.
    Reordered { before: Vec<u16>, after: Vec<u16> },
    /// These HTTP boot options deleted (no PXE option was left).
    Deleted(Vec<BootOption>),
}

/// The live global variable `name`, if any; an error if the store holds it in a state other than
/// added or deleted (an interrupted write), which only the firmware should sort out.
fn global<'a>(vars: &'a [Variable], name: &str) -> Result<Option<&'a Variable>, String> {
    let mut live = None;
    for v in vars.iter().filter(|v| v.guid == GLOBAL && v.name == name) {
        match v.state {
            VAR_ADDED if live.is_none() => live = Some(v),
            VAR_ADDED => return Err(format!("{name} is in the store twice")),
            // Deleted (the VAR_DELETED bit cleared), or a header whose data never came.
            s if s & !VAR_DELETED == 0 => {}
            VAR_HEADER_VALID_ONLY => {}
            s => {
                return Err(format!(
                    "{name} at {:#x} is in state {s:#x} (an interrupted write)",
                    v.offset
                ))
            }
        }
    }
    Ok(live)
}

/// The boot options `BootOrder` names, in its order (numbers without a live Boot#### are left
/// out), with BootOrder's data range.
pub fn boot_order(store: &[u8]) -> Result<(Vec<BootOption>, Option<Span>), String> {
    let vars = variables(store)?;
    let Some(order) = global(&vars, "BootOrder")? else {
        return Ok((Vec::new(), None));
    };
    let (at, len) = order.data;
    if !len.is_multiple_of(2) {
        return Err(format!("BootOrder has an odd size ({len})"));
    }
    let mut options = Vec::new();
    for c in store[at..at + len].chunks_exact(2) {
        let number = u16::from_le_bytes([c[0], c[1]]);
        let name = format!("Boot{number:04X}");
        if let Some(v) = global(&vars, &name)? {
            let (d, l) = v.data;
            options
                .push(boot_option(number, &store[d..d + l]).map_err(|e| format!("{name}: {e}"))?);
        }
    }
    Ok((options, Some(order.data)))
}

/// Sets the store so that the next network boot of the node is PXE (see the module's text).
/// Changes `store` in place only when the whole store parsed.
pub fn prefer_pxe(store: &mut [u8]) -> Result<Change, String> {
    let vars = variables(store)?;
    let (options, order) = boot_order(store)?;
    let Some((at, len)) = order else {
        return Ok(Change::None);
    };
    let numbers: Vec<u16> = store[at..at + len]
        .chunks_exact(2)
        .map(|c| u16::from_le_bytes([c[0], c[1]]))
        .collect();
    let kind = |n: u16| options.iter().find(|o| o.number == n).and_then(|o| o.net);
    let has = |k: NetBoot| options.iter().any(|o| o.net == Some(k));
    if !has(NetBoot::Http) {
        return Ok(Change::None);
    }
    if !has(NetBoot::Pxe) {
        let mut deleted = Vec::new();
        for o in options.iter().filter(|o| o.net == Some(NetBoot::Http)) {
            let v =
                global(&vars, &format!("Boot{:04X}", o.number))?.ok_or("a boot option vanished")?;
            deleted.push((v.offset, o.clone()));
        }
        for (offset, _) in &deleted {
            store[offset + 2] &= VAR_DELETED;
        }
        return Ok(Change::Deleted(
            deleted.into_iter().map(|(_, o)| o).collect(),
        ));
    }
    // The positions of network options keep holding network options: PXE ones first.
    let slots: Vec<usize> = (0..numbers.len())
        .filter(|&i| kind(numbers[i]).is_some())
        .collect();
    let mut net: Vec<u16> = slots.iter().map(|&i| numbers[i]).collect();
    net.sort_by_key(|&n| kind(n) != Some(NetBoot::Pxe));
    let mut after = numbers.clone();
    for (&i, &n) in slots.iter().zip(&net) {
        after[i] = n;
    }
    if after == numbers {
        return Ok(Change::None);
    }
    for (i, n) in after.iter().enumerate() {
        store[at + 2 * i..at + 2 * i + 2].copy_from_slice(&n.to_le_bytes());
    }
    Ok(Change::Reordered {
        before: numbers,
        after,
    })
}

/// [`prefer_pxe`] on the file: rewritten (through a temporary file and a rename) only when it
/// changed; untouched on any error.
pub fn prefer_pxe_file(path: &Path) -> Result<Change, String> {
    let file = path.display();
    let mut store = std::fs::read(path).map_err(|e| format!("cannot read {file}: {e}"))?;
    let change = prefer_pxe(&mut store).map_err(|e| format!("{file}: {e}"))?;
    if change != Change::None {
        crate::fsutil::write_atomically(path, &store, 0o644)
            .map_err(|e| format!("cannot write {file}: {e}"))?;
    }
    Ok(change)
}

/// The described boot options, for a log line: `0001 "UEFI PXEv4 (MAC:...)"`.
pub fn describe(options: &[BootOption]) -> String {
    options
        .iter()
        .map(|o| format!("Boot{:04X} \"{}\"", o.number, o.description))
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A real store (see tests/fixtures/nvram/README.md), padded to its full length.
    fn fixture(name: &str) -> Vec<u8> {
        let path = format!("{}/tests/fixtures/nvram/{name}", env!("CARGO_MANIFEST_DIR"));
        let mut store = std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
        let full = u64_at(&store, 0x20).expect("FV length") as usize;
        store.resize(full, 0xff);
        store
    }

    fn order(store: &[u8]) -> Vec<(u16, Option<NetBoot>)> {
        boot_order(store)
            .expect("parses")
            .0
            .iter()
            .map(|o| (o.number, o.net))
            .collect()
    }

    /// The offsets where two stores differ.
    fn diff(a: &[u8], b: &[u8]) -> Vec<usize> {
        (0..a.len()).filter(|&i| a[i] != b[i]).collect()
    }

    use NetBoot::{Http, Pxe};

    #[test]
    fn a_real_store_reads_with_its_boot_options() {
        let store = fixture("after-pxe-boot.head");
        let vars = variables(&store).unwrap();
        assert!(vars.len() > 50, "{}", vars.len());
        assert!(vars.iter().any(|v| v.live() && v.name == "MTC"));
        let (options, _) = boot_order(&store).unwrap();
        let described: Vec<_> = options
            .iter()
            .map(|o| (o.number, o.description.as_str(), o.net))
            .collect();
        assert_eq!(
            described,
            [
                (3, "UEFI PXEv4 (MAC:025E00000301)", Some(Pxe)),
                (4, "UEFI HTTPv4 (MAC:025E00000301)", Some(Http)),
                (5, "UEFI HTTPv6 (MAC:025E00000301)", Some(Http)),
                (2, "UEFI Metal Lab Disk LD3NXZT4G4CN ", None),
                (1, "UEFI QEMU DVD-ROM QM00011 ", None),
                (0, "UiApp", None),
                (6, "EFI Internal Shell", None),
            ]
        );
    }

    /// [`prefer_pxe`] finds nothing to do and leaves every byte.
    fn left_alone(mut store: Vec<u8>) {
        let before = store.clone();
        assert_eq!(prefer_pxe(&mut store), Ok(Change::None));
        assert_eq!(store, before);
    }

    #[test]
    fn pxe_first_already_is_left_alone() {
        left_alone(fixture("after-pxe-boot.head"));
    }

    #[test]
    fn after_an_http_boot_the_http_options_are_deleted_and_nothing_else_changes() {
        let mut store = fixture("after-http-boot.head");
        let before = store.clone();
        assert_eq!(
            order(&store),
            [
                (4, Some(Http)),
                (5, Some(Http)),
                (2, None),
                (1, None),
                (0, None),
                (6, None)
            ]
        );
        let Ok(Change::Deleted(deleted)) = prefer_pxe(&mut store) else {
            panic!("not deleted");
        };
        assert_eq!(deleted.iter().map(|o| o.number).collect::<Vec<_>>(), [4, 5]);
        // Only the two records' state bytes changed, to VAR_ADDED & VAR_DELETED.
        let vars = variables(&store).unwrap();
        let states: Vec<usize> = vars
            .iter()
            .filter(|v| v.name == "Boot0004" || v.name == "Boot0005")
            .inspect(|v| assert_eq!(v.state, 0x3d, "{}", v.name))
            .map(|v| v.offset + 2)
            .collect();
        assert_eq!(diff(&before, &store), states);
        // BootOrder still names them: the firmware skips a number without a Boot####, and
        // OVMF writes BootOrder anew at each boot (seen live: 3,4,5,2,1,0,6 again, PXE first).
        // The store reads, and a second run does nothing.
        assert_eq!(order(&store), [(2, None), (1, None), (0, None), (6, None)]);
        left_alone(store);
    }

    #[test]
    fn http_ahead_of_pxe_is_permuted_in_place() {
        // The order an HTTP boot left before this fix (the PXE option made again after it).
        let mut store = fixture("after-pxe-boot.head");
        let (_, range) = boot_order(&store).unwrap();
        let (at, len) = range.unwrap();
        let http_first: [u16; 7] = [4, 5, 2, 3, 1, 0, 6];
        for (i, n) in http_first.iter().enumerate() {
            store[at + 2 * i..at + 2 * i + 2].copy_from_slice(&n.to_le_bytes());
        }
        let before = store.clone();
        // The network options' places (0, 1 and 3) hold PXE, then HTTP, each in its old order.
        assert_eq!(
            prefer_pxe(&mut store),
            Ok(Change::Reordered {
                before: http_first.to_vec(),
                after: vec![3, 4, 2, 5, 1, 0, 6],
            })
        );
        assert!(diff(&before, &store)
            .iter()
            .all(|&i| i >= at && i < at + len));
        assert_eq!(
            order(&store).iter().map(|o| o.0).collect::<Vec<_>>(),
            [3, 4, 2, 5, 1, 0, 6]
        );
    }

    #[test]
    fn anything_unexpected_is_an_error_and_the_store_stays() {
        let good = fixture("after-http-boot.head");
        let check = |mut store: Vec<u8>, want: &str| {
            let before = store.clone();
            let err = prefer_pxe(&mut store).expect_err(want);
            assert!(err.contains(want), "{err}");
            assert_eq!(store, before);
        };
        // Not a firmware volume; cut short; another store format; not healthy.
        let mut s = good.clone();
        s[0x28] = b'X';
        check(s, "not a firmware volume");
        check(good[..good.len() - 4096].to_vec(), "the file has");
        let mut s = good.clone();
        s[0x48] ^= 1;
        check(s, "no authenticated variable store");
        let mut s = good.clone();
        s[0x48 + 21] = 0xfc;
        check(s, "not formatted and healthy");
        // A variable whose data would run past the store.
        let vars = variables(&good).unwrap();
        let mut s = good.clone();
        let v = &vars[3];
        s[v.offset + 40..v.offset + 44].copy_from_slice(&0x7fff_0000u32.to_le_bytes());
        check(s, "runs past the store's end");
        // BootOrder in the middle of an update (in deleted transition).
        let order = vars
            .iter()
            .find(|v| v.live() && v.name == "BootOrder")
            .unwrap();
        let mut s = good.clone();
        s[order.offset + 2] = 0x3e;
        check(s, "an interrupted write");
        // A boot option whose device path runs past its data.
        let boot = vars
            .iter()
            .find(|v| v.live() && v.name == "Boot0004")
            .unwrap();
        let mut s = good.clone();
        s[boot.data.0 + 4..boot.data.0 + 6].copy_from_slice(&0xfff0u16.to_le_bytes());
        check(s, "Boot0004: its device path runs past its data");
    }

    #[test]
    fn load_options_tell_pxe_from_http_by_a_uri_node() {
        // Attributes, FilePathListLength, "N\0", MAC node (3/11, 37 bytes), [URI (3/24, 4)], end.
        let option = |uri: bool| {
            let mut path = vec![3, 11, 37, 0];
            path.extend([0u8; 33]);
            if uri {
                path.extend([3, 24, 4, 0]);
            }
            path.extend([0x7f, 0xff, 4, 0]);
            let mut d = vec![1, 0, 0, 0];
            d.extend((path.len() as u16).to_le_bytes());
            d.extend([b'N', 0, 0, 0]);
            d.extend(path);
            d
        };
        assert_eq!(boot_option(1, &option(false)).unwrap().net, Some(Pxe));
        assert_eq!(boot_option(1, &option(true)).unwrap().net, Some(Http));
        assert_eq!(boot_option(1, &option(true)).unwrap().description, "N");
        let mut bad = option(true);
        bad[10 + 2] = 2; // the MAC node (after 4 + 2 + 4 bytes) of length 2
        assert!(boot_option(1, &bad).is_err());
        assert!(boot_option(1, &[1, 0, 0, 0, 4, 0, b'N', 0]).is_err());
    }
}
