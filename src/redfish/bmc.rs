//! The BMC as lab-bmcd sees it: IPMI commands to its own ipmi_sim, decoded into what Redfish
//! shows (power, boot flags, FRU identity, GUID, SEL, sensors). Everything goes through one
//! method, [`Ipmi::call`], so the decoding is tested against a fake BMC and runs against the
//! real one through [`IpmiBmc`], which keeps one session open.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{Mutex, OnceCell};

use crate::ipmi::{
    CallError, Connection, NETFN_APP, NETFN_CHASSIS, NETFN_SENSOR, NETFN_STORAGE, PRIV_ADMIN,
};

/// Something that answers IPMI commands: the BMC over a session, or a fake in tests.
pub trait Ipmi: Send + Sync + 'static {
    fn call(
        &self,
        netfn: u8,
        cmd: u8,
        data: &[u8],
    ) -> impl Future<Output = Result<Vec<u8>, CallError>> + Send;
}

impl<T: Ipmi> Ipmi for Arc<T> {
    fn call(
        &self,
        netfn: u8,
        cmd: u8,
        data: &[u8],
    ) -> impl Future<Output = Result<Vec<u8>, CallError>> + Send {
        (**self).call(netfn, cmd, data)
    }
}

/// The node's BMC over one IPMI session at 127.0.0.1:623, opened on first use and opened again
/// when it is lost (the BMC restarted, or timed it out).
pub struct IpmiBmc {
    addr: SocketAddr,
    user: String,
    password: String,
    conn: Mutex<Option<Connection>>,
}

impl IpmiBmc {
    pub fn new(addr: SocketAddr, user: &str, password: &str) -> IpmiBmc {
        IpmiBmc {
            addr,
            user: user.into(),
            password: password.into(),
            conn: Mutex::new(None),
        }
    }

    /// Keeps the session alive: a Get Chassis Status every `every` (ipmi_sim drops an idle one).
    pub fn keep_alive(self: &Arc<Self>, every: Duration) {
        let me = self.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            loop {
                tick.tick().await;
                let _ = me.call(NETFN_CHASSIS, 0x01, &[]).await;
            }
        });
    }
}

impl Ipmi for IpmiBmc {
    async fn call(&self, netfn: u8, cmd: u8, data: &[u8]) -> Result<Vec<u8>, CallError> {
        let mut conn = self.conn.lock().await;
        for attempt in 0..2 {
            if conn.is_none() {
                match Connection::open(self.addr, &self.user, &self.password, PRIV_ADMIN).await {
                    Ok(c) => *conn = Some(c),
                    Err(e) if attempt == 1 => return Err(CallError::Session(e)),
                    Err(_) => continue,
                }
            }
            let Some(c) = conn.as_mut() else { continue };
            match c.call(netfn, cmd, data).await {
                Err(CallError::Session(e)) => {
                    *conn = None;
                    if attempt == 1 {
                        return Err(CallError::Session(e));
                    }
                }
                other => return other,
            }
        }
        Err(CallError::Session("cannot open an IPMI session".into()))
    }
}

/// Where the next boot goes, as Redfish names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BootTarget {
    None,
    Pxe,
    Hdd,
    Cd,
    UefiHttp,
    BiosSetup,
}

impl BootTarget {
    pub const ALL: [BootTarget; 6] = [
        BootTarget::None,
        BootTarget::Pxe,
        BootTarget::Hdd,
        BootTarget::Cd,
        BootTarget::UefiHttp,
        BootTarget::BiosSetup,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            BootTarget::None => "None",
            BootTarget::Pxe => "Pxe",
            BootTarget::Hdd => "Hdd",
            BootTarget::Cd => "Cd",
            BootTarget::UefiHttp => "UefiHttp",
            BootTarget::BiosSetup => "BiosSetup",
        }
    }

    pub fn parse(s: &str) -> Option<BootTarget> {
        BootTarget::ALL.into_iter().find(|t| t.as_str() == s)
    }

    /// The IPMI boot device selector (System Boot Options parameter 5, data 2 bits 5:2).
    /// IPMI has no HTTP boot device: UefiHttp is PXE with the UEFI bit, told apart by `http`
    /// in lab-bmc.so's boot override file ([`Boot::from_ipmi`]).
    fn ipmi_device(self) -> u8 {
        match self {
            BootTarget::None => 0,
            BootTarget::Pxe | BootTarget::UefiHttp => 1,
            BootTarget::Hdd => 2,
            BootTarget::Cd => 5,
            BootTarget::BiosSetup => 6,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BootEnabled {
    Disabled,
    Once,
    Continuous,
}

impl BootEnabled {
    pub const ALL: [BootEnabled; 3] = [
        BootEnabled::Disabled,
        BootEnabled::Once,
        BootEnabled::Continuous,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            BootEnabled::Disabled => "Disabled",
            BootEnabled::Once => "Once",
            BootEnabled::Continuous => "Continuous",
        }
    }

    pub fn parse(s: &str) -> Option<BootEnabled> {
        BootEnabled::ALL.into_iter().find(|t| t.as_str() == s)
    }
}

/// The boot override: IPMI's boot flags (System Boot Options parameter 5).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Boot {
    pub target: BootTarget,
    pub enabled: BootEnabled,
    pub uefi: bool,
}

impl Boot {
    /// Parameter 5's data 1 and 2: valid (bit 7), persistent (6), UEFI (5); device (bits 5:2).
    pub fn to_ipmi(self) -> [u8; 2] {
        let device = if self.enabled == BootEnabled::Disabled {
            0
        } else {
            self.target.ipmi_device()
        };
        let valid = device != 0;
        let d1 = (u8::from(valid) << 7)
            | (u8::from(self.enabled == BootEnabled::Continuous) << 6)
            | (u8::from(self.uefi) << 5);
        [d1, device << 2]
    }

    /// Reads parameter 5's first two data bytes back; `http` says PXE was set as UefiHttp.
    pub fn from_ipmi(d1: u8, d2: u8, http: bool) -> Boot {
        let valid = d1 & 0x80 != 0;
        let uefi = d1 & 0x20 != 0;
        let target = match (d2 >> 2) & 0xf {
            1 if http && uefi => BootTarget::UefiHttp,
            1 => BootTarget::Pxe,
            2 | 3 => BootTarget::Hdd,
            5 => BootTarget::Cd,
            6 => BootTarget::BiosSetup,
            _ => BootTarget::None,
        };
        let enabled = match (valid && target != BootTarget::None, d1 & 0x40 != 0) {
            (false, _) => BootEnabled::Disabled,
            (true, false) => BootEnabled::Once,
            (true, true) => BootEnabled::Continuous,
        };
        Boot {
            target: if enabled == BootEnabled::Disabled {
                BootTarget::None
            } else {
                target
            },
            enabled,
            uefi,
        }
    }
}

/// What the FRU and the GUID say the server is.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Identity {
    pub manufacturer: String,
    pub model: String,
    pub part_number: String,
    pub version: String,
    pub serial: String,
    pub asset_tag: String,
    pub board_manufacturer: String,
    pub chassis_part: String,
    pub chassis_serial: String,
    pub uuid: Option<String>,
}

/// One SEL record: its id and the 16 bytes of a system event record.
#[derive(Debug, Clone, PartialEq)]
pub struct SelRecord {
    pub id: u16,
    pub data: Vec<u8>,
}

/// What kind of reading a sensor gives (its IPMI sensor type), as Redfish names the reading.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReadingKind {
    Temperature,
    Voltage,
    Current,
    Fan,
    Power,
}

impl ReadingKind {
    fn from_ipmi(sensor_type: u8, unit: u8) -> Option<ReadingKind> {
        match (sensor_type, unit) {
            (0x01, _) => Some(ReadingKind::Temperature),
            (0x02, _) => Some(ReadingKind::Voltage),
            (0x03, _) => Some(ReadingKind::Current),
            (0x04, _) => Some(ReadingKind::Fan),
            (_, 0x06) => Some(ReadingKind::Power),
            (0x08 | 0x0b, _) if unit == 0x06 => Some(ReadingKind::Power),
            _ => None,
        }
    }

    /// Redfish ReadingType and ReadingUnits.
    pub fn redfish(self) -> (&'static str, &'static str) {
        match self {
            ReadingKind::Temperature => ("Temperature", "Cel"),
            ReadingKind::Voltage => ("Voltage", "V"),
            ReadingKind::Current => ("Current", "A"),
            ReadingKind::Fan => ("Rotational", "{rev}/min"),
            ReadingKind::Power => ("Power", "W"),
        }
    }
}

/// A full sensor record (SDR type 1) of a threshold sensor: what is needed to read it.
#[derive(Debug, Clone, PartialEq)]
pub struct SensorRecord {
    pub number: u8,
    pub name: String,
    pub kind: ReadingKind,
    m: i16,
    b: i16,
    b_exp: i8,
    r_exp: i8,
    signed: bool,
}

impl SensorRecord {
    /// IPMI 2.0 section 36.3: y = (M * x + B * 10^Bexp) * 10^Rexp.
    pub fn convert(&self, raw: u8) -> f64 {
        let x = if self.signed {
            f64::from(raw as i8)
        } else {
            f64::from(raw)
        };
        let v = (f64::from(self.m) * x + f64::from(self.b) * 10f64.powi(self.b_exp.into()))
            * 10f64.powi(self.r_exp.into());
        (v * 1000.0).round() / 1000.0
    }

    /// Parses a whole SDR (header included); `None` for other record types.
    pub fn parse(rec: &[u8]) -> Option<SensorRecord> {
        if rec.len() < 48 || rec[3] != 0x01 {
            return None;
        }
        let sign4 = |v: u8| {
            if v & 0x8 != 0 {
                (v | 0xf0) as i8
            } else {
                v as i8
            }
        };
        let sign10 = |lo: u8, hi2: u8| {
            let v = (u16::from(hi2 & 0x3) << 8) | u16::from(lo);
            if v & 0x200 != 0 {
                v as i16 - 0x400
            } else {
                v as i16
            }
        };
        let kind = ReadingKind::from_ipmi(rec[12], rec[21])?;
        let id_len = usize::from(rec[47] & 0x1f);
        let name = rec.get(48..48 + id_len)?;
        Some(SensorRecord {
            number: rec[7],
            name: String::from_utf8_lossy(name).trim().to_string(),
            kind,
            m: sign10(rec[24], rec[25] >> 6),
            b: sign10(rec[26], rec[27] >> 6),
            r_exp: sign4(rec[29] >> 4),
            b_exp: sign4(rec[29] & 0xf),
            signed: rec[20] >> 6 == 0b10,
        })
    }
}

/// A sensor's current reading (`None`: unavailable, e.g. scanning disabled).
#[derive(Debug, Clone, PartialEq)]
pub struct Reading {
    pub sensor: SensorRecord,
    pub value: Option<f64>,
}

/// Chassis Control commands (IPMI 2.0 section 28.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Control {
    Off = 0,
    On = 1,
    Cycle = 2,
    Reset = 3,
    Diag = 4,
    Soft = 5,
}

/// The BMC's state, read and changed over IPMI; FRU and SDRs are read once (node.emu sets them
/// at the BMC's start and nothing changes them).
pub struct Bmc<I> {
    pub ipmi: I,
    identity: OnceCell<Identity>,
    sdrs: OnceCell<Vec<SensorRecord>>,
}

/// An IPMI failure as the Redfish side reports it.
pub type BmcResult<T> = Result<T, CallError>;

impl<I: Ipmi> Bmc<I> {
    pub fn new(ipmi: I) -> Bmc<I> {
        Bmc {
            ipmi,
            identity: OnceCell::new(),
            sdrs: OnceCell::new(),
        }
    }

    pub async fn power_on(&self) -> BmcResult<bool> {
        let d = self.ipmi.call(NETFN_CHASSIS, 0x01, &[]).await?;
        Ok(d.first().is_some_and(|p| p & 1 == 1))
    }

    pub async fn control(&self, c: Control) -> BmcResult<()> {
        self.ipmi
            .call(NETFN_CHASSIS, 0x02, &[c as u8])
            .await
            .map(drop)
    }

    /// Parameter 5's data 1 and 2 (Get System Boot Options).
    pub async fn boot_flags(&self) -> BmcResult<[u8; 2]> {
        let d = self.ipmi.call(NETFN_CHASSIS, 0x09, &[5, 0, 0]).await?;
        match d.get(2..4) {
            Some(f) => Ok([f[0], f[1]]),
            None => Err(CallError::Session(
                "short Get System Boot Options reply".into(),
            )),
        }
    }

    pub async fn set_boot_flags(&self, flags: [u8; 2]) -> BmcResult<()> {
        self.ipmi
            .call(NETFN_CHASSIS, 0x08, &[5, flags[0], flags[1], 0, 0, 0])
            .await
            .map(drop)
    }

    /// Get Device ID: firmware revision "major.minor".
    pub async fn firmware(&self) -> BmcResult<String> {
        let d = self.ipmi.call(NETFN_APP, 0x01, &[]).await?;
        if d.len() < 4 {
            return Err(CallError::Session("short Get Device ID reply".into()));
        }
        Ok(format!("{}.{:02x}", d[2] & 0x7f, d[3]))
    }

    pub async fn identity(&self) -> BmcResult<&Identity> {
        self.identity
            .get_or_try_init(|| async {
                let fru = self.read_fru().await?;
                let mut id = parse_fru(&fru);
                id.uuid = match self.ipmi.call(NETFN_APP, 0x37, &[]).await {
                    Ok(g) if g.len() >= 16 => Some(guid_string(&g[..16])),
                    _ => None,
                };
                Ok(id)
            })
            .await
    }

    async fn read_fru(&self) -> BmcResult<Vec<u8>> {
        let info = self.ipmi.call(NETFN_STORAGE, 0x10, &[0]).await?;
        let size = info
            .get(..2)
            .map_or(0, |s| usize::from(u16::from_le_bytes([s[0], s[1]])));
        let mut out = Vec::with_capacity(size);
        while out.len() < size {
            let off = out.len() as u16;
            let count = (size - out.len()).min(32) as u8;
            let d = self
                .ipmi
                .call(
                    NETFN_STORAGE,
                    0x11,
                    &[0, off as u8, (off >> 8) as u8, count],
                )
                .await?;
            match d.split_first() {
                Some((&n, data)) if n > 0 && data.len() >= usize::from(n) => {
                    out.extend_from_slice(&data[..usize::from(n)])
                }
                _ => break,
            }
        }
        Ok(out)
    }

    /// Sets the SEL clock to the system's time when it has never been set (ipmi_sim counts from
    /// its start), as a real BMC takes its time from its RTC or NTP: SEL records then carry
    /// real timestamps, over IPMI and Redfish. Returns whether the BMC answered.
    pub async fn sync_sel_time(&self) -> BmcResult<()> {
        let t = self.ipmi.call(NETFN_STORAGE, 0x48, &[]).await?;
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as u32);
        if t.len() >= 4 && u32::from_le_bytes([t[0], t[1], t[2], t[3]]) < 0x2000_0000 {
            self.ipmi
                .call(NETFN_STORAGE, 0x49, &now.to_le_bytes())
                .await?;
        }
        Ok(())
    }

    /// Every SEL record, oldest first.
    pub async fn sel(&self) -> BmcResult<Vec<SelRecord>> {
        let info = self.ipmi.call(NETFN_STORAGE, 0x40, &[]).await?;
        if info.get(1..3).is_none_or(|n| n == [0, 0]) {
            return Ok(Vec::new());
        }
        let mut out = Vec::new();
        let mut next = 0u16;
        while next != 0xffff && out.len() < 4096 {
            let [lo, hi] = next.to_le_bytes();
            let d = self
                .ipmi
                .call(NETFN_STORAGE, 0x43, &[0, 0, lo, hi, 0, 0xff])
                .await?;
            if d.len() < 18 {
                break;
            }
            let data = d[2..18].to_vec();
            out.push(SelRecord {
                id: u16::from_le_bytes([data[0], data[1]]),
                data,
            });
            next = u16::from_le_bytes([d[0], d[1]]);
        }
        Ok(out)
    }

    pub async fn clear_sel(&self) -> BmcResult<()> {
        let r = self.ipmi.call(NETFN_STORAGE, 0x42, &[]).await?;
        let (lo, hi) = (
            r.first().copied().unwrap_or(0),
            r.get(1).copied().unwrap_or(0),
        );
        self.ipmi
            .call(NETFN_STORAGE, 0x47, &[lo, hi, b'C', b'L', b'R', 0xaa])
            .await
            .map(drop)
    }

    /// The threshold sensors of the SDR repository.
    pub async fn sensors(&self) -> BmcResult<&[SensorRecord]> {
        self.sdrs
            .get_or_try_init(|| async {
                let mut out = Vec::new();
                let mut next = 0u16;
                let mut seen = 0;
                while next != 0xffff && seen < 256 {
                    seen += 1;
                    let [lo, hi] = next.to_le_bytes();
                    let head = self
                        .ipmi
                        .call(NETFN_STORAGE, 0x23, &[0, 0, lo, hi, 0, 5])
                        .await?;
                    if head.len() < 7 {
                        break;
                    }
                    let following = u16::from_le_bytes([head[0], head[1]]);
                    let total = 5 + usize::from(head[6]);
                    let mut rec = head[2..7].to_vec();
                    while rec.len() < total {
                        let n = (total - rec.len()).min(24) as u8;
                        let d = self
                            .ipmi
                            .call(NETFN_STORAGE, 0x23, &[0, 0, lo, hi, rec.len() as u8, n])
                            .await?;
                        if d.len() <= 2 {
                            break;
                        }
                        rec.extend_from_slice(&d[2..]);
                    }
                    out.extend(SensorRecord::parse(&rec));
                    next = following;
                }
                Ok(out)
            })
            .await
            .map(Vec::as_slice)
    }

    pub async fn readings(&self) -> BmcResult<Vec<Reading>> {
        let mut out = Vec::new();
        for s in self.sensors().await? {
            let value = match self.ipmi.call(NETFN_SENSOR, 0x2d, &[s.number]).await {
                // Byte 2: bit 5 set = reading unavailable.
                Ok(d) if d.len() >= 2 && d[1] & 0x20 == 0 => Some(s.convert(d[0])),
                Ok(_) | Err(CallError::Completion(_)) => None,
                Err(e) => return Err(e),
            };
            out.push(Reading {
                sensor: s.clone(),
                value,
            });
        }
        Ok(out)
    }
}

/// The 16 GUID bytes as a UUID string. IPMI sends a GUID in the reverse of RFC 4122's byte order
/// (lab's lan.conf holds the node's uuid that way, and `ipmitool mc guid` reverses it back), so
/// the bytes are read back to front.
pub fn guid_string(g: &[u8]) -> String {
    let r: Vec<u8> = g.iter().rev().copied().collect();
    let h = |r: &[u8]| r.iter().map(|b| format!("{b:02x}")).collect::<String>();
    format!(
        "{}-{}-{}-{}-{}",
        h(&r[0..4]),
        h(&r[4..6]),
        h(&r[6..8]),
        h(&r[8..10]),
        h(&r[10..16])
    )
}

/// A FRU type/length field at `at`: its text and where the next field starts.
fn fru_field(area: &[u8], at: usize) -> Option<(String, usize)> {
    let tl = *area.get(at)?;
    if tl == 0xc1 {
        return None;
    }
    let len = usize::from(tl & 0x3f);
    let bytes = area.get(at + 1..at + 1 + len)?;
    let text = match tl >> 6 {
        0b11 => String::from_utf8_lossy(bytes).trim().to_string(),
        0b10 => six_bit_ascii(bytes),
        _ => bytes.iter().map(|b| format!("{b:02X}")).collect(),
    };
    Some((text, at + 1 + len))
}

/// Packed 6-bit ASCII (FRU spec 13.1): three bytes hold four characters from 0x20 up.
fn six_bit_ascii(bytes: &[u8]) -> String {
    let mut bits = 0u32;
    let mut n = 0;
    let mut out = String::new();
    for &b in bytes {
        bits |= u32::from(b) << n;
        n += 8;
        while n >= 6 {
            out.push(char::from(0x20 + (bits & 0x3f) as u8));
            bits >>= 6;
            n -= 6;
        }
    }
    out.trim().to_string()
}

/// The fields of an area, from byte `first` on, up to the end marker.
fn fru_fields(area: &[u8], first: usize) -> Vec<String> {
    let mut out = Vec::new();
    let mut at = first;
    while let Some((text, next)) = fru_field(area, at) {
        out.push(text);
        at = next;
    }
    out
}

/// The chassis, board and product areas of FRU data (Platform Management FRU Information
/// Storage Definition v1.0, sections 10-12).
pub fn parse_fru(fru: &[u8]) -> Identity {
    let mut id = Identity::default();
    if fru.len() < 8 || fru[0] & 0x0f != 1 {
        return id;
    }
    let area = |i: usize| {
        let off = usize::from(fru[i]) * 8;
        (off != 0).then(|| fru.get(off..)).flatten()
    };
    if let Some(a) = area(2) {
        let f = fru_fields(a, 3);
        id.chassis_part = f.first().cloned().unwrap_or_default();
        id.chassis_serial = f.get(1).cloned().unwrap_or_default();
    }
    if let Some(a) = area(3) {
        let f = fru_fields(a, 6);
        id.board_manufacturer = f.first().cloned().unwrap_or_default();
    }
    if let Some(a) = area(4) {
        let f = fru_fields(a, 3);
        let get = |i: usize| f.get(i).cloned().unwrap_or_default();
        id.manufacturer = get(0);
        id.model = get(1);
        id.part_number = get(2);
        id.version = get(3);
        id.serial = get(4);
        id.asset_tag = get(5);
    }
    id
}

/// What a SEL record says, in words: the sensor type and, for the events lab's BMC logs, the
/// event; the time as seconds since 1970 (`None`: before the BMC knew the time).
pub fn describe_sel(r: &SelRecord) -> (Option<u32>, String, String) {
    let d = &r.data;
    if d.len() < 16 {
        return (None, "Unknown".into(), "a short SEL record".into());
    }
    let ts = u32::from_le_bytes([d[3], d[4], d[5], d[6]]);
    let time = (ts > 0x2000_0000).then_some(ts);
    if d[2] != 0x02 {
        return (time, "OEM".into(), format!("OEM record type {:#04x}", d[2]));
    }
    let (stype, offset, deassert) = (d[10], d[13] & 0x0f, d[12] & 0x80 != 0);
    // LogEntry's SensorType names (IPMI 2.0 table 42-3).
    let type_name = match stype {
        0x01 => "Temperature",
        0x02 => "Voltage",
        0x03 => "Current",
        0x04 => "Fan",
        0x08 => "Power Supply / Converter",
        0x0c => "Memory",
        0x0f => "System Firmware Progress",
        0x10 => "Event Logging Disabled",
        0x12 => "System Event",
        0x13 => "Critical Interrupt",
        0x1d => "SystemBoot/Restart",
        0x22 => "System ACPI PowerState",
        0x23 => "Watchdog",
        _ => "OEM",
    };
    let what = match (stype, offset) {
        (0x1d, 0) => "System boot initiated by power up".to_string(),
        (0x1d, 1) => "System boot initiated by hard reset".to_string(),
        (0x1d, 2) => "System boot initiated by warm reset".to_string(),
        (0x22, 5) => "System ACPI power state S5/G2: soft off".to_string(),
        (0x22, 0x0a) => "System ACPI power state S5: entered by override (power off)".to_string(),
        (0x12, 0) => "System event: system reconfigured (boot device)".to_string(),
        (0x22, 0) => "System ACPI power state S0/G0: working".to_string(),
        (0x13, 0) => "Front panel NMI / diagnostic interrupt".to_string(),
        (0x10, 2) => "Log area reset/cleared".to_string(),
        _ => format!("{type_name} sensor {:#04x}: event offset {offset}", d[11]),
    };
    let what = if deassert {
        format!("{what} (deasserted)")
    } else {
        what
    };
    (time, type_name.to_string(), what)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn boot_flags_map_both_ways() {
        for target in BootTarget::ALL {
            for enabled in [BootEnabled::Once, BootEnabled::Continuous] {
                for uefi in [false, true] {
                    let b = Boot {
                        target,
                        enabled,
                        uefi,
                    };
                    let [d1, d2] = b.to_ipmi();
                    let back = Boot::from_ipmi(d1, d2, target == BootTarget::UefiHttp);
                    if target == BootTarget::None {
                        assert_eq!(back.enabled, BootEnabled::Disabled);
                    } else if target == BootTarget::UefiHttp && !uefi {
                        assert_eq!(back.target, BootTarget::Pxe, "HTTP boot is UEFI only");
                    } else {
                        assert_eq!(back, b);
                    }
                }
            }
        }
        // What `ipmitool chassis bootdev pxe options=persistent,efiboot` sets.
        let b = Boot::from_ipmi(0xe0, 0x04, false);
        assert_eq!(
            (b.target, b.enabled, b.uefi),
            (BootTarget::Pxe, BootEnabled::Continuous, true)
        );
        assert_eq!(Boot::from_ipmi(0x80, 0x14, false).target, BootTarget::Cd);
        assert_eq!(
            Boot::from_ipmi(0x00, 0x08, false).enabled,
            BootEnabled::Disabled
        );
        let off = Boot {
            target: BootTarget::Hdd,
            enabled: BootEnabled::Disabled,
            uefi: false,
        };
        assert_eq!(off.to_ipmi(), [0, 0]);
    }

    #[test]
    fn fru_areas_are_read_as_ipmitool_prints_them() {
        let fru = crate::render::fru::Fru {
            chassis_part: "LAB-1U-CH".into(),
            chassis_serial: "CS1".into(),
            board_manufacturer: "metal-lab".into(),
            board_product: "Lab Node Board".into(),
            board_serial: "BS1".into(),
            board_part: "LAB-MB-01".into(),
            product_manufacturer: "Example Corp".into(),
            product_name: "Lab Node 1U".into(),
            product_part: "LAB-1U".into(),
            product_version: "1.0".into(),
            product_serial: "LAB525400000001".into(),
            asset_tag: "node-1".into(),
        };
        let bytes = fru.bytes().unwrap();
        let id = parse_fru(&bytes);
        assert_eq!(id.manufacturer, "Example Corp");
        assert_eq!(id.model, "Lab Node 1U");
        assert_eq!(id.part_number, "LAB-1U");
        assert_eq!(id.version, "1.0");
        assert_eq!(id.serial, "LAB525400000001");
        assert_eq!(id.asset_tag, "node-1");
        assert_eq!(id.board_manufacturer, "metal-lab");
        assert_eq!(
            (id.chassis_part.as_str(), id.chassis_serial.as_str()),
            ("LAB-1U-CH", "CS1")
        );
        assert_eq!(
            parse_fru(&[0xff; 4]),
            Identity::default(),
            "garbage reads as nothing"
        );
        assert_eq!(
            six_bit_ascii(&[0x29, 0xdc, 0xa6]),
            "IPMI",
            "the FRU spec's example"
        );
    }

    #[test]
    fn guids_read_back_to_front_as_ipmitool_prints_them() {
        let g: Vec<u8> = (0u8..16).collect();
        assert_eq!(guid_string(&g), "0f0e0d0c-0b0a-0908-0706-050403020100");
    }

    #[test]
    fn sensor_records_convert_raw_readings() {
        // 12V: M = 6, Rexp = -2 (0xe0), raw 0xc8 = 200 -> 12.0 V; a name of 3 characters.
        let mut rec = vec![0u8; 48];
        rec[3] = 0x01;
        rec[7] = 0x04;
        rec[12] = 0x02;
        rec[21] = 0x04;
        rec[24] = 6;
        rec[29] = 0xe0;
        rec[47] = 0xc3;
        rec.extend_from_slice(b"12V");
        let s = SensorRecord::parse(&rec).unwrap();
        assert_eq!(
            (s.number, s.name.as_str(), s.kind),
            (4, "12V", ReadingKind::Voltage)
        );
        assert_eq!(s.convert(0xc8), 12.0);
        rec[3] = 0x02;
        assert_eq!(
            SensorRecord::parse(&rec),
            None,
            "compact records are not read"
        );
    }

    #[test]
    fn sel_records_are_described() {
        let mut d = vec![0u8; 16];
        d[2] = 0x02;
        d[3..7].copy_from_slice(&1_790_000_000u32.to_le_bytes());
        d[10] = 0x1d;
        d[12] = 0x6f;
        d[13] = 0x01;
        let (t, ty, what) = describe_sel(&SelRecord { id: 1, data: d });
        assert_eq!(t, Some(1_790_000_000));
        assert_eq!(ty, "SystemBoot/Restart");
        assert_eq!(what, "System boot initiated by hard reset");
    }
}
