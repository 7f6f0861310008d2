//! The Redfish resources of one node's BMC: routing, authentication (HTTP Basic and sessions),
//! ETags, PATCH and actions, and errors in Redfish's `error` format with Base registry
//! messages. Pure request-in, reply-out logic over [`Bmc`], so it is tested with a fake BMC.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};

use super::bmc::{describe_sel, Bmc, Boot, BootEnabled, BootTarget, Control, Ipmi};
use super::media;
use crate::ipmi::CallError;

/// The node, as its node.env describes it (what IPMI does not know).
#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    pub name: String,
    pub mac: String,
    /// Every NIC's MAC, the boot NIC first (`NIC_MACS`, space-separated; `MAC` alone when unset).
    pub macs: Vec<String>,
    pub cpus: u32,
    pub memory_mb: u64,
    pub disk_bytes: u64,
    /// The first disk's serial (the first of `DISK_SERIALS`), as the guest sees it.
    pub disk_serial: Option<String>,
    pub user: String,
    pub password: String,
}

impl Node {
    /// Reads node.env (KEY=VALUE lines, read literally); keys lab-bmcd does not use are skipped.
    pub fn from_env(text: &str, file: &str) -> Result<Node, String> {
        let mut kv = BTreeMap::new();
        for line in text.lines() {
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            if let Some((k, v)) = line.split_once('=') {
                kv.insert(k.to_string(), v.to_string());
            }
        }
        let get = |k: &str| {
            kv.get(k)
                .filter(|v| !v.is_empty())
                .cloned()
                .ok_or_else(|| format!("{file}: {k} is not set"))
        };
        let num = |k: &str| -> Result<u64, String> {
            get(k)?
                .parse()
                .map_err(|_| format!("{file}: {k} is not a number"))
        };
        let mac = get("MAC")?;
        let macs = match kv.get("NIC_MACS").filter(|v| !v.is_empty()) {
            Some(list) => list.split_whitespace().map(str::to_string).collect(),
            None => vec![mac.clone()],
        };
        Ok(Node {
            name: get("NODE_NAME")?,
            mac,
            macs,
            cpus: num("CPUS")? as u32,
            memory_mb: num("MEMORY_MB")?,
            disk_bytes: num("DISK_BYTES")?,
            disk_serial: kv
                .get("DISK_SERIALS")
                .and_then(|v| v.split_whitespace().next())
                .map(str::to_string),
            user: get("BMC_USER")?,
            password: get("BMC_PASSWORD")?,
        })
    }
}

/// An HTTP request, as the service needs it.
pub struct Request {
    pub method: http::Method,
    /// The path, without the query.
    pub path: String,
    pub headers: http::HeaderMap,
    pub body: Vec<u8>,
}

/// An HTTP reply.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(&'static str, String)>,
    pub body: Vec<u8>,
}

impl Reply {
    fn json(status: u16, v: &Value) -> Reply {
        Reply {
            status,
            headers: vec![("content-type", "application/json; charset=utf-8".into())],
            body: serde_json::to_vec(v).unwrap_or_default(),
        }
    }

    fn empty(status: u16) -> Reply {
        Reply {
            status,
            headers: Vec::new(),
            body: Vec::new(),
        }
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// The Base message registry version the message ids name.
const BASE: &str = "Base.1.19";

/// One Base registry message of an error.
#[derive(Debug, Clone)]
struct Msg {
    id: &'static str,
    message: String,
    args: Vec<String>,
    props: Vec<String>,
    resolution: &'static str,
}

/// An error reply: its status and its messages (`@Message.ExtendedInfo`).
#[derive(Debug)]
pub struct RfError {
    status: u16,
    msgs: Vec<Msg>,
    allow: Option<&'static str>,
}

fn msg(id: &'static str, message: String, args: &[&str], resolution: &'static str) -> Msg {
    Msg {
        id,
        message,
        args: args.iter().map(|a| a.to_string()).collect(),
        props: Vec::new(),
        resolution,
    }
}

impl Msg {
    fn at(mut self, prop: &str) -> Msg {
        self.props.push(format!("#/{}", prop.replace('.', "/")));
        self
    }

    fn into_err(self, status: u16) -> RfError {
        RfError {
            status,
            msgs: vec![self],
            allow: None,
        }
    }
}

impl RfError {
    fn reply(&self) -> Reply {
        let info: Vec<Value> = self
            .msgs
            .iter()
            .map(|m| {
                let mut o = json!({
                    "@odata.type": "#Message.v1_3_0.Message",
                    "MessageId": format!("{BASE}.{}", m.id),
                    "Message": m.message,
                    "MessageArgs": m.args,
                    "MessageSeverity": if self.status >= 500 { "Critical" } else { "Warning" },
                    "Resolution": m.resolution,
                });
                if !m.props.is_empty() {
                    o["RelatedProperties"] = json!(m.props);
                }
                o
            })
            .collect();
        let first = &self.msgs[0];
        let mut r = Reply::json(
            self.status,
            &json!({"error": {
                "code": format!("{BASE}.{}", first.id),
                "message": first.message,
                "@Message.ExtendedInfo": info,
            }}),
        );
        if let Some(allow) = self.allow {
            r.headers.push(("allow", allow.into()));
        }
        if self.status == 401 {
            r.headers
                .push(("www-authenticate", "Basic realm=\"lab-bmcd\"".into()));
        }
        r
    }
}

fn not_found(path: &str) -> RfError {
    msg(
        "ResourceMissingAtURI",
        format!("The resource at the URI '{path}' was not found."),
        &[path],
        "Place a valid resource at the URI or correct the URI and resubmit the request.",
    )
    .into_err(404)
}

fn bmc_error(e: CallError) -> RfError {
    msg(
        "InternalError",
        format!("The request failed due to an internal service error: the BMC did not answer over IPMI ({e})."),
        &[],
        "Resubmit the request. If the problem persists, look at the node's log (`lab logs NODE`).",
    )
    .into_err(500)
}

fn malformed() -> RfError {
    msg(
        "MalformedJSON",
        "The request body submitted was malformed JSON and could not be parsed by the receiving service.".into(),
        &[],
        "Ensure that the request body is valid JSON and resubmit the request.",
    )
    .into_err(400)
}

fn unauthorized() -> RfError {
    msg(
        "NoValidSession",
        "There is no valid session established with the implementation.".into(),
        &[],
        "Establish a session (POST /redfish/v1/SessionService/Sessions) or send HTTP Basic credentials, then resubmit the request.",
    )
    .into_err(401)
}

fn type_error(value: &Value, prop: &str) -> Msg {
    let v = value.to_string();
    msg(
        "PropertyValueTypeError",
        format!("The value '{v}' for the property {prop} is not a type that the property can accept."),
        &[&v, prop],
        "Correct the value for the property in the request body and resubmit the request if the operation failed.",
    )
    .at(prop)
}

fn not_in_list(value: &str, prop: &str) -> Msg {
    msg(
        "PropertyValueNotInList",
        format!("The value '{value}' for the property {prop} is not in the list of acceptable values."),
        &[value, prop],
        "Choose a value from the enumeration list that the implementation can support and resubmit the request if the operation failed.",
    )
    .at(prop)
}

fn unknown_prop(prop: &str) -> Msg {
    msg(
        "PropertyUnknown",
        format!("The property {prop} is not in the list of valid properties for the resource."),
        &[prop],
        "Remove the unknown property from the request body and resubmit the request if the operation failed.",
    )
    .at(prop)
}

fn not_writable(prop: &str) -> Msg {
    msg(
        "PropertyNotWritable",
        format!("The property {prop} is a read-only property and cannot be assigned a value."),
        &[prop],
        "Remove the property from the request body and resubmit the request if the operation failed.",
    )
    .at(prop)
}

fn action_param_type(value: &Value, param: &str, action: &str) -> Msg {
    let v = value.to_string();
    msg(
        "ActionParameterValueTypeError",
        format!("The value '{v}' for the parameter {param} in the action {action} is not a type that the parameter can accept."),
        &[&v, param, action],
        "Correct the value for the parameter in the request body and resubmit the request if the operation failed.",
    )
}

fn action_param_unknown(action: &str, param: &str) -> Msg {
    msg(
        "ActionParameterUnknown",
        format!("The action {action} was submitted with the invalid parameter {param}."),
        &[action, param],
        "Correct the invalid parameter and resubmit the request if the operation failed.",
    )
}

fn action_param_missing(action: &str, param: &str) -> Msg {
    msg(
        "ActionParameterMissing",
        format!("The action {action} requires the parameter {param} to be present in the request body."),
        &[action, param],
        "Supply the action with the required parameter in the request body when the request is resubmitted.",
    )
}

fn action_value_not_in_list(value: &str, param: &str, action: &str) -> Msg {
    msg(
        "ActionParameterValueNotInList",
        format!("The value '{value}' for the parameter {param} in the action {action} is not in the list of acceptable values."),
        &[value, param, action],
        "Choose a value from the enumeration list that the implementation can support and resubmit the request if the operation failed.",
    )
}

fn bad(msgs: Vec<Msg>) -> RfError {
    RfError {
        status: 400,
        msgs,
        allow: None,
    }
}

/// A weak ETag of a representation.
fn etag(v: &Value) -> String {
    let h = Sha256::digest(serde_json::to_vec(v).unwrap_or_default());
    format!("W/\"{}\"", hex::encode(&h[..8]))
}

fn link(path: &str) -> Value {
    json!({ "@odata.id": path })
}

/// A resource's `@odata` fields: its path, type (`Namespace.vX_Y_Z.Type`) and context.
fn resource(path: &str, odata_type: &str, id: &str, name: &str) -> Value {
    let (ns, rest) = odata_type.split_once('.').unwrap_or((odata_type, ""));
    let ty = rest.rsplit('.').next().unwrap_or(rest);
    json!({
        "@odata.id": path,
        "@odata.type": format!("#{odata_type}"),
        "@odata.context": format!("/redfish/v1/$metadata#{ns}.{ty}"),
        "Id": id,
        "Name": name,
    })
}

fn collection(path: &str, ty: &str, name: &str, members: &[String]) -> Value {
    json!({
        "@odata.id": path,
        "@odata.type": format!("#{ty}.{ty}"),
        "@odata.context": format!("/redfish/v1/$metadata#{ty}.{ty}"),
        "Name": name,
        "Members": members.iter().map(|m| link(m)).collect::<Vec<_>>(),
        "Members@odata.count": members.len(),
    })
}

fn iso8601(secs: u64) -> String {
    let days = secs / 86400;
    let rem = secs % 86400;
    // Civil date from days since 1970 (Howard Hinnant's algorithm).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}+00:00",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// The reset types of `ComputerSystem.Reset`, in the order the ActionInfo lists them.
const RESET_TYPES: [&str; 7] = [
    "On",
    "ForceOff",
    "GracefulShutdown",
    "GracefulRestart",
    "ForceRestart",
    "PowerCycle",
    "Nmi",
];

/// The virtual CD as Redfish shows it, kept in the node's volume; the image itself is in the
/// drive's directory and attached by `lab-media` ([`media::Drive`]).
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Media {
    pub image: Option<String>,
    pub inserted: bool,
    pub write_protected: bool,
    pub transfer_method: Option<String>,
}

struct LoginSession {
    token: String,
    user: String,
    created: u64,
    last: Instant,
}

struct Sessions {
    timeout: u64,
    next: u64,
    by_id: BTreeMap<String, LoginSession>,
}

/// Session timeout bounds (SessionService.SessionTimeout, seconds).
const MIN_TIMEOUT: u64 = 30;
const MAX_TIMEOUT: u64 = 86400;

pub struct Service<I> {
    pub bmc: Arc<Bmc<I>>,
    node: Node,
    state_dir: PathBuf,
    sessions: std::sync::Mutex<Sessions>,
    media: std::sync::Mutex<Media>,
    /// One InsertMedia/EjectMedia at a time (a download may take a while).
    media_op: tokio::sync::Mutex<()>,
    /// Where images go and the tool that attaches them.
    pub drive: media::Drive,
    /// lab-bmc.so's boot override file (`<dev> once|persistent [efi]`), where UefiHttp is `http`.
    pub bootdev: PathBuf,
    /// How long a GracefulRestart waits for the soft-off before it gives up.
    pub graceful_wait: Duration,
}

/// lab-bmc.so's boot override file in the node container (lab-vm reads it at power on).
pub const BOOTDEV: &str = "/var/lib/lab/bootdev";
const MEDIA_FILE: &str = "virtual-media.json";

const SYSTEM: &str = "/redfish/v1/Systems/1";
const MANAGER: &str = "/redfish/v1/Managers/1";
const CHASSIS: &str = "/redfish/v1/Chassis/1";
const SEL: &str = "/redfish/v1/Systems/1/LogServices/SEL";
/// The node's disk: under the chassis (its URI under Storage is deprecated).
const DRIVE: &str = "/redfish/v1/Chassis/1/Drives/1";

impl<I: Ipmi> Service<I> {
    pub fn new(bmc: Bmc<I>, node: Node, state_dir: PathBuf) -> Service<I> {
        let media = std::fs::read(state_dir.join(MEDIA_FILE))
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default();
        Service {
            bmc: Arc::new(bmc),
            node,
            state_dir,
            sessions: std::sync::Mutex::new(Sessions {
                timeout: 1800,
                next: 1,
                by_id: BTreeMap::new(),
            }),
            media: std::sync::Mutex::new(media),
            media_op: tokio::sync::Mutex::new(()),
            drive: media::Drive::default(),
            bootdev: BOOTDEV.into(),
            graceful_wait: Duration::from_secs(120),
        }
    }

    pub async fn handle(&self, req: Request) -> Reply {
        match self.route(&req).await {
            Ok(r) => r,
            Err(e) => e.reply(),
        }
        .with_common()
    }

    async fn route(&self, req: &Request) -> Result<Reply, RfError> {
        let path = normalize(&req.path);
        let public = matches!(
            path.as_str(),
            "/redfish" | "/redfish/v1" | "/redfish/v1/$metadata" | "/redfish/v1/odata"
        );
        let login =
            path == "/redfish/v1/SessionService/Sessions" && req.method == http::Method::POST;
        if path == "/redfish" && req.method == http::Method::GET {
            return Ok(Reply::json(200, &json!({"v1": "/redfish/v1/"})));
        }
        if path == "/redfish/v1/$metadata" && req.method == http::Method::GET {
            return Ok(Reply {
                status: 200,
                headers: vec![("content-type", "application/xml".into())],
                body: super::metadata::metadata().into_bytes(),
            });
        }
        if path == "/redfish/v1/odata" && req.method == http::Method::GET {
            return Ok(Reply::json(200, &super::metadata::service_document()));
        }
        if !(public || login) {
            self.authenticate(&req.headers)?;
        }
        let segs: Vec<&str> = path
            .strip_prefix("/redfish/v1")
            .unwrap_or("")
            .split('/')
            .filter(|s| !s.is_empty())
            .collect();
        if path != "/redfish/v1" && !path.starts_with("/redfish/v1/") {
            return Err(not_found(&path));
        }
        let allow = self.allowed(&segs).await.ok_or_else(|| not_found(&path))?;
        let method = req.method.as_str();
        if !allow.split(", ").any(|m| m == method) {
            let mut e = msg(
                "OperationNotAllowed",
                format!("The HTTP method {method} is not allowed on {path}."),
                &[],
                "Use one of the methods in the Allow header.",
            )
            .into_err(405);
            e.allow = Some(allow);
            return Err(e);
        }
        match req.method {
            http::Method::GET | http::Method::HEAD => {
                let v = self.get(&segs, &path).await?;
                let mut r = Reply::json(200, &v);
                r.headers.push(("etag", etag(&v)));
                r.headers.push(("allow", allow.into()));
                if req.method == http::Method::HEAD {
                    r.body.clear();
                }
                Ok(r)
            }
            http::Method::PATCH => self.patch(&segs, &path, req).await,
            http::Method::POST => self.post(&segs, req).await,
            http::Method::DELETE => self.delete(&segs),
            _ => Err(not_found(&path)),
        }
    }

    /// The methods a path answers, or `None` when there is no such resource.
    async fn allowed(&self, segs: &[&str]) -> Option<&'static str> {
        const RO: &str = "GET, HEAD";
        const ACTION: &str = "POST";
        let vm = |rest: &[&str]| -> Option<&'static str> {
            match rest {
                [] => Some(RO),
                ["CD"] => Some(RO),
                ["CD", "Actions", "VirtualMedia.InsertMedia" | "VirtualMedia.EjectMedia"] => {
                    Some(ACTION)
                }
                _ => None,
            }
        };
        match segs {
            [] => Some(RO),
            ["Systems"] | ["Managers"] | ["Chassis"] | ["AccountService"] => Some(RO),
            ["Systems", "1"] => Some("GET, HEAD, PATCH"),
            ["Systems", "1", "ResetActionInfo"] => Some(RO),
            ["Systems", "1", "Actions", "ComputerSystem.Reset"] => Some(ACTION),
            ["Systems", "1", "EthernetInterfaces"] => Some(RO),
            ["Systems", "1", "EthernetInterfaces", id] => self.nic_index(id).map(|_| RO),
            ["Systems", "1", "Storage"] | ["Systems", "1", "Storage", "1"] => Some(RO),
            ["Systems", "1", "Processors"] | ["Systems", "1", "Processors", "1"] => Some(RO),
            ["Chassis", "1", "Drives"] | ["Chassis", "1", "Drives", "1"] => Some(RO),
            ["Systems", "1", "SimpleStorage"] | ["Systems", "1", "SimpleStorage", "1"] => Some(RO),
            ["Systems", "1", "LogServices"] | ["Systems", "1", "LogServices", "SEL"] => Some(RO),
            ["Systems", "1", "LogServices", "SEL", "Entries"] => Some(RO),
            ["Systems", "1", "LogServices", "SEL", "Entries", id] => {
                let id: u16 = id.parse().ok()?;
                let sel = self.bmc.sel().await.ok()?;
                sel.iter().any(|r| r.id == id).then_some(RO)
            }
            ["Systems", "1", "LogServices", "SEL", "Actions", "LogService.ClearLog"] => {
                Some(ACTION)
            }
            ["Systems", "1", "VirtualMedia", rest @ ..] => vm(rest),
            ["Managers", "1"] => Some(RO),
            ["Managers", "1", "VirtualMedia", rest @ ..] => vm(rest),
            ["Chassis", "1"] | ["Chassis", "1", "Sensors"] => Some(RO),
            ["Chassis", "1", "Sensors", id] => {
                let sensors = self.bmc.sensors().await.ok()?;
                sensors
                    .iter()
                    .any(|s| sensor_id(&s.name) == *id)
                    .then_some(RO)
            }
            ["SessionService"] => Some("GET, HEAD, PATCH"),
            ["SessionService", "Sessions"] => Some("GET, HEAD, POST"),
            ["SessionService", "Sessions", id] => {
                let s = self.sessions.lock().ok()?;
                s.by_id.contains_key(*id).then_some("GET, HEAD, DELETE")
            }
            ["AccountService", "Accounts"] | ["AccountService", "Accounts", "1"] => Some(RO),
            _ => None,
        }
    }

    fn authenticate(&self, headers: &http::HeaderMap) -> Result<(), RfError> {
        if let Some(token) = headers.get("x-auth-token").and_then(|v| v.to_str().ok()) {
            let mut s = self.sessions.lock().map_err(|_| unauthorized())?;
            let timeout = Duration::from_secs(s.timeout);
            s.by_id.retain(|_, l| l.last.elapsed() <= timeout);
            let found = s
                .by_id
                .iter_mut()
                .find(|(_, l)| constant_eq(l.token.as_bytes(), token.as_bytes()));
            return match found {
                Some((_, l)) => {
                    l.last = Instant::now();
                    Ok(())
                }
                None => Err(unauthorized()),
            };
        }
        let basic = headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Basic "))
            .and_then(|b| {
                use base64::Engine;
                base64::engine::general_purpose::STANDARD
                    .decode(b.trim())
                    .ok()
            })
            .and_then(|b| String::from_utf8(b).ok());
        match basic.as_deref().and_then(|b| b.split_once(':')) {
            Some((u, p)) if self.credentials_ok(u, p) => Ok(()),
            _ => Err(unauthorized()),
        }
    }

    fn credentials_ok(&self, user: &str, password: &str) -> bool {
        // Both compared, always: no early return that would tell a right user name apart.
        let u = constant_eq(user.as_bytes(), self.node.user.as_bytes());
        let p = constant_eq(password.as_bytes(), self.node.password.as_bytes());
        u & p
    }

    async fn get(&self, segs: &[&str], path: &str) -> Result<Value, RfError> {
        match segs {
            [] => Ok(self.service_root().await),
            ["Systems"] => Ok(collection(
                "/redfish/v1/Systems",
                "ComputerSystemCollection",
                "Computer System Collection",
                &[SYSTEM.into()],
            )),
            ["Systems", "1"] => self.system().await,
            ["Systems", "1", "ResetActionInfo"] => Ok(reset_action_info()),
            ["Systems", "1", "EthernetInterfaces"] => Ok(collection(
                &format!("{SYSTEM}/EthernetInterfaces"),
                "EthernetInterfaceCollection",
                "Ethernet Interface Collection",
                &(1..=self.node.macs.len())
                    .map(|i| format!("{SYSTEM}/EthernetInterfaces/{i}"))
                    .collect::<Vec<_>>(),
            )),
            ["Systems", "1", "EthernetInterfaces", id] => self
                .nic_index(id)
                .map(|i| self.nic(i))
                .ok_or_else(|| not_found(path)),
            ["Systems", "1", "Storage"] => Ok(collection(
                &format!("{SYSTEM}/Storage"),
                "StorageCollection",
                "Storage Collection",
                &[format!("{SYSTEM}/Storage/1")],
            )),
            ["Systems", "1", "Storage", "1"] => Ok(self.storage()),
            ["Systems", "1", "Processors"] => Ok(collection(
                &format!("{SYSTEM}/Processors"),
                "ProcessorCollection",
                "Processor Collection",
                &[format!("{SYSTEM}/Processors/1")],
            )),
            ["Systems", "1", "Processors", "1"] => Ok(self.processor()),
            ["Chassis", "1", "Drives"] => Ok(collection(
                &format!("{CHASSIS}/Drives"),
                "DriveCollection",
                "Drive Collection",
                &[DRIVE.into()],
            )),
            ["Chassis", "1", "Drives", "1"] => Ok(self.drive()),
            ["Systems", "1", "SimpleStorage"] => Ok(collection(
                &format!("{SYSTEM}/SimpleStorage"),
                "SimpleStorageCollection",
                "Simple Storage Collection",
                &[format!("{SYSTEM}/SimpleStorage/1")],
            )),
            ["Systems", "1", "SimpleStorage", "1"] => Ok(self.simple_storage()),
            ["Systems", "1", "LogServices"] => Ok(collection(
                &format!("{SYSTEM}/LogServices"),
                "LogServiceCollection",
                "Log Service Collection",
                &[SEL.into()],
            )),
            ["Systems", "1", "LogServices", "SEL"] => self.sel_service().await,
            ["Systems", "1", "LogServices", "SEL", "Entries"] => self.sel_entries().await,
            ["Systems", "1", "LogServices", "SEL", "Entries", id] => self.sel_entries().await?
                ["Members"]
                .as_array()
                .and_then(|m| m.iter().find(|e| e["Id"] == *id).cloned())
                .ok_or_else(|| not_found(path)),
            ["Systems", "1", "VirtualMedia"] => Ok(self.media_collection(SYSTEM)),
            ["Systems", "1", "VirtualMedia", "CD"] => Ok(self.cd(SYSTEM)),
            ["Managers"] => Ok(collection(
                "/redfish/v1/Managers",
                "ManagerCollection",
                "Manager Collection",
                &[MANAGER.into()],
            )),
            ["Managers", "1"] => self.manager().await,
            ["Managers", "1", "VirtualMedia"] => Ok(self.media_collection(MANAGER)),
            ["Managers", "1", "VirtualMedia", "CD"] => Ok(self.cd(MANAGER)),
            ["Chassis"] => Ok(collection(
                "/redfish/v1/Chassis",
                "ChassisCollection",
                "Chassis Collection",
                &[CHASSIS.into()],
            )),
            ["Chassis", "1"] => self.chassis().await,
            ["Chassis", "1", "Sensors"] => {
                let names: Vec<String> = self
                    .bmc
                    .sensors()
                    .await
                    .map_err(bmc_error)?
                    .iter()
                    .map(|s| format!("{CHASSIS}/Sensors/{}", sensor_id(&s.name)))
                    .collect();
                Ok(collection(
                    &format!("{CHASSIS}/Sensors"),
                    "SensorCollection",
                    "Sensor Collection",
                    &names,
                ))
            }
            ["Chassis", "1", "Sensors", id] => self.sensor(id, path).await,
            ["SessionService"] => Ok(self.session_service()),
            ["SessionService", "Sessions"] => {
                let ids: Vec<String> = self
                    .sessions
                    .lock()
                    .map(|s| {
                        s.by_id
                            .keys()
                            .map(|id| format!("/redfish/v1/SessionService/Sessions/{id}"))
                            .collect()
                    })
                    .unwrap_or_default();
                Ok(collection(
                    "/redfish/v1/SessionService/Sessions",
                    "SessionCollection",
                    "Session Collection",
                    &ids,
                ))
            }
            ["SessionService", "Sessions", id] => self.session(id).ok_or_else(|| not_found(path)),
            ["AccountService"] => Ok(self.account_service()),
            ["AccountService", "Accounts"] => Ok(collection(
                "/redfish/v1/AccountService/Accounts",
                "ManagerAccountCollection",
                "Accounts Collection",
                &["/redfish/v1/AccountService/Accounts/1".into()],
            )),
            ["AccountService", "Accounts", "1"] => Ok(self.account()),
            _ => Err(not_found(path)),
        }
    }

    async fn service_root(&self) -> Value {
        let mut v = resource(
            "/redfish/v1",
            "ServiceRoot.v1_20_0.ServiceRoot",
            "RootService",
            "Root Service",
        );
        v["RedfishVersion"] = json!("1.21.0");
        if let Ok(id) = self.bmc.identity().await {
            if let Some(uuid) = &id.uuid {
                v["UUID"] = json!(uuid);
            }
            if !id.manufacturer.is_empty() {
                v["Vendor"] = json!(id.manufacturer);
            }
            if !id.model.is_empty() {
                v["Product"] = json!(id.model);
            }
        }
        v["Systems"] = link("/redfish/v1/Systems");
        v["Chassis"] = link("/redfish/v1/Chassis");
        v["Managers"] = link("/redfish/v1/Managers");
        v["SessionService"] = link("/redfish/v1/SessionService");
        v["AccountService"] = link("/redfish/v1/AccountService");
        v["Links"] = json!({"Sessions": link("/redfish/v1/SessionService/Sessions")});
        v
    }

    /// The UEFI HTTP boot override the bootdev file holds (`http once|persistent efi`), as IPMI
    /// boot flags; None when it holds another device.
    fn http_boot(&self) -> Option<[u8; 2]> {
        let text = std::fs::read_to_string(&self.bootdev).ok()?;
        let mut words = text.split_whitespace();
        if words.next() != Some("http") {
            return None;
        }
        let enabled = match words.next() {
            Some("persistent") => BootEnabled::Continuous,
            _ => BootEnabled::Once,
        };
        Some(
            Boot {
                target: BootTarget::UefiHttp,
                enabled,
                uefi: true,
            }
            .to_ipmi(),
        )
    }

    pub async fn boot(&self) -> Result<Boot, RfError> {
        let flags = self.bmc.boot_flags().await.map_err(bmc_error)?;
        // lab-bmc.c answers `http` as PXE with the UEFI bit over IPMI: it counts as UEFI HTTP
        // boot while the flags are those.
        let http = self.http_boot() == Some(flags);
        Ok(Boot::from_ipmi(flags[0], flags[1], http))
    }

    async fn system(&self) -> Result<Value, RfError> {
        let id = self.bmc.identity().await.map_err(bmc_error)?.clone();
        let on = self.bmc.power_on().await.map_err(bmc_error)?;
        let boot = self.boot().await?;
        let mut v = resource(
            SYSTEM,
            "ComputerSystem.v1_27_0.ComputerSystem",
            "1",
            "System",
        );
        let o = v.as_object_mut().expect("an object");
        o.insert("SystemType".into(), json!("Physical"));
        o.insert("HostName".into(), json!(self.node.name));
        o.insert("Manufacturer".into(), json!(id.manufacturer));
        o.insert("Model".into(), json!(id.model));
        o.insert("SerialNumber".into(), json!(id.serial));
        o.insert("PartNumber".into(), json!(id.part_number));
        o.insert("AssetTag".into(), json!(id.asset_tag));
        if let Some(uuid) = &id.uuid {
            o.insert("UUID".into(), json!(uuid));
        }
        o.insert("PowerState".into(), json!(if on { "On" } else { "Off" }));
        o.insert("Status".into(), json!({"State": "Enabled", "Health": "OK"}));
        o.insert(
            "ProcessorSummary".into(),
            json!({"Count": 1, "LogicalProcessorCount": self.node.cpus}),
        );
        o.insert(
            "MemorySummary".into(),
            json!({"TotalSystemMemoryGiB": self.node.memory_mb as f64 / 1024.0}),
        );
        o.insert(
            "Boot".into(),
            json!({
                "BootSourceOverrideTarget": boot.target.as_str(),
                "BootSourceOverrideTarget@Redfish.AllowableValues":
                    BootTarget::ALL.iter().map(|t| t.as_str()).collect::<Vec<_>>(),
                "BootSourceOverrideEnabled": boot.enabled.as_str(),
                "BootSourceOverrideEnabled@Redfish.AllowableValues":
                    BootEnabled::ALL.iter().map(|t| t.as_str()).collect::<Vec<_>>(),
                "BootSourceOverrideMode": if boot.uefi { "UEFI" } else { "Legacy" },
                "BootSourceOverrideMode@Redfish.AllowableValues": ["Legacy", "UEFI"],
            }),
        );
        o.insert(
            "EthernetInterfaces".into(),
            link(&format!("{SYSTEM}/EthernetInterfaces")),
        );
        o.insert("Processors".into(), link(&format!("{SYSTEM}/Processors")));
        o.insert("Storage".into(), link(&format!("{SYSTEM}/Storage")));
        o.insert(
            "SimpleStorage".into(),
            link(&format!("{SYSTEM}/SimpleStorage")),
        );
        o.insert("LogServices".into(), link(&format!("{SYSTEM}/LogServices")));
        o.insert(
            "VirtualMedia".into(),
            link(&format!("{SYSTEM}/VirtualMedia")),
        );
        o.insert(
            "Links".into(),
            json!({"Chassis": [link(CHASSIS)], "ManagedBy": [link(MANAGER)]}),
        );
        o.insert(
            "Actions".into(),
            json!({"#ComputerSystem.Reset": {
                "target": format!("{SYSTEM}/Actions/ComputerSystem.Reset"),
                "@Redfish.ActionInfo": format!("{SYSTEM}/ResetActionInfo"),
            }}),
        );
        Ok(v)
    }

    /// The NIC an `EthernetInterfaces/{id}` names: 1 for the boot NIC, then the others in order.
    fn nic_index(&self, id: &str) -> Option<usize> {
        let i: usize = id.parse().ok()?;
        (id == i.to_string() && (1..=self.node.macs.len()).contains(&i)).then_some(i - 1)
    }

    fn nic(&self, i: usize) -> Value {
        let n = i + 1;
        let mut v = resource(
            &format!("{SYSTEM}/EthernetInterfaces/{n}"),
            "EthernetInterface.v1_12_4.EthernetInterface",
            &n.to_string(),
            &format!("Ethernet Interface {n}"),
        );
        v["MACAddress"] = json!(self.node.macs[i]);
        v["PermanentMACAddress"] = json!(self.node.macs[i]);
        v["InterfaceEnabled"] = json!(true);
        v["Status"] = json!({"State": "Enabled", "Health": "OK"});
        v
    }

    /// The VM's one socket: QEMU's `-smp N` gives it N cores of one thread each. Ironic's
    /// out-of-band inspection counts CPUs as the processors' `TotalThreads`.
    fn processor(&self) -> Value {
        let mut v = resource(
            &format!("{SYSTEM}/Processors/1"),
            "Processor.v1_22_0.Processor",
            "1",
            "Processor 1",
        );
        v["Socket"] = json!("CPU 1");
        v["ProcessorType"] = json!("CPU");
        v["ProcessorArchitecture"] = json!("x86");
        v["InstructionSet"] = json!("x86-64");
        v["TotalCores"] = json!(self.node.cpus);
        v["TotalEnabledCores"] = json!(self.node.cpus);
        v["TotalThreads"] = json!(self.node.cpus);
        v["Status"] = json!({"State": "Enabled", "Health": "OK"});
        v
    }

    fn storage(&self) -> Value {
        let mut v = resource(
            &format!("{SYSTEM}/Storage/1"),
            "Storage.v1_21_0.Storage",
            "1",
            "Local Storage",
        );
        v["Drives"] = json!([link(DRIVE)]);
        v["Drives@odata.count"] = json!(1);
        v["Status"] = json!({"State": "Enabled", "Health": "OK"});
        v
    }

    fn drive(&self) -> Value {
        let mut v = resource(DRIVE, "Drive.v1_22_0.Drive", "1", "Disk 1");
        v["CapacityBytes"] = json!(self.node.disk_bytes);
        if let Some(serial) = &self.node.disk_serial {
            v["SerialNumber"] = json!(serial);
        }
        v["MediaType"] = json!("HDD");
        v["Protocol"] = json!("SATA");
        v["Status"] = json!({"State": "Enabled", "Health": "OK"});
        v
    }

    fn simple_storage(&self) -> Value {
        let mut v = resource(
            &format!("{SYSTEM}/SimpleStorage/1"),
            "SimpleStorage.v1_3_2.SimpleStorage",
            "1",
            "Simple Storage Controller",
        );
        v["Devices"] = json!([{
            "Name": "Disk 1",
            "CapacityBytes": self.node.disk_bytes,
            "Status": {"State": "Enabled", "Health": "OK"},
        }]);
        v["Status"] = json!({"State": "Enabled", "Health": "OK"});
        v
    }

    async fn sel_service(&self) -> Result<Value, RfError> {
        let info = self
            .bmc
            .ipmi
            .call(crate::ipmi::NETFN_STORAGE, 0x40, &[])
            .await
            .map_err(bmc_error)?;
        let free = info
            .get(3..5)
            .map_or(0, |b| u16::from_le_bytes([b[0], b[1]]));
        let used = info
            .get(1..3)
            .map_or(0, |b| u16::from_le_bytes([b[0], b[1]]));
        let mut v = resource(
            SEL,
            "LogService.v1_9_0.LogService",
            "SEL",
            "System Event Log",
        );
        v["LogEntryType"] = json!("SEL");
        v["OverWritePolicy"] = json!("NeverOverWrites");
        v["MaxNumberOfRecords"] = json!(u32::from(used) + u32::from(free) / 16);
        v["ServiceEnabled"] = json!(true);
        v["DateTime"] = json!(iso8601(now_secs()));
        v["DateTimeLocalOffset"] = json!("+00:00");
        v["Entries"] = link(&format!("{SEL}/Entries"));
        v["Status"] = json!({"State": "Enabled", "Health": "OK"});
        v["Actions"] = json!({"#LogService.ClearLog": {
            "target": format!("{SEL}/Actions/LogService.ClearLog"),
        }});
        Ok(v)
    }

    async fn sel_entries(&self) -> Result<Value, RfError> {
        let records = self.bmc.sel().await.map_err(bmc_error)?;
        let entries: Vec<Value> = records
            .iter()
            .map(|r| {
                let (time, sensor_type, text) = describe_sel(r);
                let mut v = resource(
                    &format!("{SEL}/Entries/{}", r.id),
                    "LogEntry.v1_21_0.LogEntry",
                    &r.id.to_string(),
                    &format!("SEL entry {}", r.id),
                );
                v["EntryType"] = json!("SEL");
                v["Severity"] = json!(if sensor_type == "Critical Interrupt" {
                    "Warning"
                } else {
                    "OK"
                });
                v["Message"] = json!(text);
                if let Some(t) = time {
                    v["Created"] = json!(iso8601(u64::from(t)));
                }
                if r.data.len() >= 16 && r.data[2] == 0x02 {
                    v["SensorType"] = json!(sensor_type);
                    v["SensorNumber"] = json!(r.data[11]);
                    v["EntryCode"] = json!(if r.data[12] & 0x80 != 0 {
                        "Deassert"
                    } else {
                        "Assert"
                    });
                }
                v
            })
            .collect();
        let mut c = collection(
            &format!("{SEL}/Entries"),
            "LogEntryCollection",
            "System Event Log Entries",
            &[],
        );
        c["Members@odata.count"] = json!(entries.len());
        c["Members"] = json!(entries);
        Ok(c)
    }

    fn media_collection(&self, owner: &str) -> Value {
        collection(
            &format!("{owner}/VirtualMedia"),
            "VirtualMediaCollection",
            "Virtual Media Collection",
            &[format!("{owner}/VirtualMedia/CD")],
        )
    }

    fn cd(&self, owner: &str) -> Value {
        let m = self.media.lock().map(|m| m.clone()).unwrap_or_default();
        let path = format!("{owner}/VirtualMedia/CD");
        let mut v = resource(
            &path,
            "VirtualMedia.v1_6_5.VirtualMedia",
            "CD",
            "Virtual CD",
        );
        v["MediaTypes"] = json!(["CD", "DVD"]);
        v["Image"] = json!(m.image);
        v["ImageName"] = json!(m
            .image
            .as_deref()
            .map(|i| i.rsplit('/').next().unwrap_or(i)));
        v["Inserted"] = json!(m.inserted);
        v["WriteProtected"] = json!(m.write_protected);
        v["ConnectedVia"] = json!(if m.inserted { "URI" } else { "NotConnected" });
        v["TransferMethod"] = json!(m.transfer_method.as_deref().unwrap_or("Stream"));
        v["Actions"] = json!({
            "#VirtualMedia.InsertMedia": {"target": format!("{path}/Actions/VirtualMedia.InsertMedia")},
            "#VirtualMedia.EjectMedia": {"target": format!("{path}/Actions/VirtualMedia.EjectMedia")},
        });
        v
    }

    async fn manager(&self) -> Result<Value, RfError> {
        let fw = self.bmc.firmware().await.map_err(bmc_error)?;
        let id = self.bmc.identity().await.map_err(bmc_error)?;
        let mut v = resource(MANAGER, "Manager.v1_24_0.Manager", "1", "Manager");
        v["ManagerType"] = json!("BMC");
        v["Model"] = json!("lab BMC (ipmi_sim + lab-bmcd)");
        v["FirmwareVersion"] = json!(fw);
        if let Some(uuid) = &id.uuid {
            v["UUID"] = json!(uuid);
        }
        v["PowerState"] = json!("On");
        v["DateTime"] = json!(iso8601(now_secs()));
        v["DateTimeLocalOffset"] = json!("+00:00");
        v["Status"] = json!({"State": "Enabled", "Health": "OK"});
        // Managers/1/VirtualMedia answers too (older clients look there), but is not linked:
        // DMTF deprecated the manager's virtual media in favour of the system's.
        v["Links"] = json!({
            "ManagerForServers": [link(SYSTEM)],
            "ManagerForChassis": [link(CHASSIS)],
        });
        Ok(v)
    }

    async fn chassis(&self) -> Result<Value, RfError> {
        let id = self.bmc.identity().await.map_err(bmc_error)?.clone();
        let on = self.bmc.power_on().await.map_err(bmc_error)?;
        let mut v = resource(CHASSIS, "Chassis.v1_28_0.Chassis", "1", "Chassis");
        v["ChassisType"] = json!("RackMount");
        v["Manufacturer"] = json!(if id.board_manufacturer.is_empty() {
            &id.manufacturer
        } else {
            &id.board_manufacturer
        });
        v["Model"] = json!(id.model);
        v["SerialNumber"] = json!(id.chassis_serial);
        v["PartNumber"] = json!(id.chassis_part);
        v["PowerState"] = json!(if on { "On" } else { "Off" });
        v["Status"] = json!({"State": "Enabled", "Health": "OK"});
        v["Sensors"] = link(&format!("{CHASSIS}/Sensors"));
        v["Drives"] = link(&format!("{CHASSIS}/Drives"));
        v["Links"] = json!({
            "ComputerSystems": [link(SYSTEM)],
            "ManagedBy": [link(MANAGER)],
        });
        Ok(v)
    }

    async fn sensor(&self, id: &str, path: &str) -> Result<Value, RfError> {
        let readings = self.bmc.readings().await.map_err(bmc_error)?;
        let r = readings
            .iter()
            .find(|r| sensor_id(&r.sensor.name) == id)
            .ok_or_else(|| not_found(path))?;
        let (reading_type, units) = r.sensor.kind.redfish();
        let mut v = resource(
            &format!("{CHASSIS}/Sensors/{id}"),
            "Sensor.v1_12_0.Sensor",
            id,
            &r.sensor.name,
        );
        v["ReadingType"] = json!(reading_type);
        v["ReadingUnits"] = json!(units);
        v["Reading"] = json!(r.value);
        v["Status"] = json!({
            "State": if r.value.is_some() { "Enabled" } else { "UnavailableOffline" },
            "Health": "OK",
        });
        Ok(v)
    }

    fn session_service(&self) -> Value {
        let timeout = self.sessions.lock().map_or(1800, |s| s.timeout);
        let mut v = resource(
            "/redfish/v1/SessionService",
            "SessionService.v1_2_0.SessionService",
            "SessionService",
            "Session Service",
        );
        v["ServiceEnabled"] = json!(true);
        v["SessionTimeout"] = json!(timeout);
        v["Sessions"] = link("/redfish/v1/SessionService/Sessions");
        v["Status"] = json!({"State": "Enabled", "Health": "OK"});
        v
    }

    fn session(&self, id: &str) -> Option<Value> {
        let s = self.sessions.lock().ok()?;
        let l = s.by_id.get(id)?;
        let mut v = resource(
            &format!("/redfish/v1/SessionService/Sessions/{id}"),
            "Session.v1_8_0.Session",
            id,
            &format!("Session {id}"),
        );
        v["UserName"] = json!(l.user);
        v["Password"] = Value::Null;
        v["CreatedTime"] = json!(iso8601(l.created));
        v["SessionType"] = json!("Redfish");
        Some(v)
    }

    fn account_service(&self) -> Value {
        let mut v = resource(
            "/redfish/v1/AccountService",
            "AccountService.v1_18_1.AccountService",
            "AccountService",
            "Account Service",
        );
        v["Description"] = json!("The BMC's one account, the same as over IPMI (read-only).");
        v["ServiceEnabled"] = json!(true);
        v["Accounts"] = link("/redfish/v1/AccountService/Accounts");
        v["Status"] = json!({"State": "Enabled", "Health": "OK"});
        v
    }

    fn account(&self) -> Value {
        let mut v = resource(
            "/redfish/v1/AccountService/Accounts/1",
            "ManagerAccount.v1_14_1.ManagerAccount",
            "1",
            "BMC administrator",
        );
        v["UserName"] = json!(self.node.user);
        v["Password"] = Value::Null;
        v["RoleId"] = json!("Administrator");
        v["Enabled"] = json!(true);
        v["Locked"] = json!(false);
        v["AccountTypes"] = json!(["Redfish", "IPMI"]);
        v
    }

    async fn patch(&self, segs: &[&str], path: &str, req: &Request) -> Result<Reply, RfError> {
        let current = self.get(segs, path).await?;
        if let Some(want) = req.headers.get("if-match").and_then(|v| v.to_str().ok()) {
            let have = etag(&current);
            let strip = |t: &str| t.trim().trim_start_matches("W/").to_string();
            if want.trim() != "*" && !want.split(',').any(|t| strip(t) == strip(&have)) {
                return Err(msg(
                    "PreconditionFailed",
                    "The ETag supplied did not match the ETag required to change this resource."
                        .into(),
                    &[],
                    "Try the operation again using the appropriate ETag.",
                )
                .into_err(412));
            }
        }
        let body = parse_object(&req.body)?;
        match segs {
            ["Systems", "1"] => self.patch_system(&body, &current).await?,
            ["SessionService"] => self.patch_session_service(&body, &current)?,
            _ => return Err(not_found(path)),
        }
        let v = self.get(segs, path).await?;
        let mut r = Reply::json(200, &v);
        r.headers.push(("etag", etag(&v)));
        Ok(r)
    }

    async fn patch_system(
        &self,
        body: &Map<String, Value>,
        current: &Value,
    ) -> Result<(), RfError> {
        let mut errors = Vec::new();
        let mut boot = self.boot().await?;
        let mut target_given = false;
        let mut enabled_given = false;
        for (k, v) in body {
            if k.starts_with("@odata.") {
                continue;
            }
            if k != "Boot" {
                errors.push(if current.get(k).is_some() {
                    not_writable(k)
                } else {
                    unknown_prop(k)
                });
                continue;
            }
            let Some(b) = v.as_object() else {
                errors.push(type_error(v, "Boot"));
                continue;
            };
            for (bk, bv) in b {
                let prop = format!("Boot/{bk}");
                let text = bv.as_str();
                match bk.as_str() {
                    "BootSourceOverrideTarget" => match text.map(BootTarget::parse) {
                        Some(Some(t)) => {
                            boot.target = t;
                            target_given = true;
                        }
                        Some(None) => errors.push(not_in_list(text.unwrap_or(""), &prop)),
                        None => errors.push(type_error(bv, &prop)),
                    },
                    "BootSourceOverrideEnabled" => match text.map(BootEnabled::parse) {
                        Some(Some(e)) => {
                            boot.enabled = e;
                            enabled_given = true;
                        }
                        Some(None) => errors.push(not_in_list(text.unwrap_or(""), &prop)),
                        None => errors.push(type_error(bv, &prop)),
                    },
                    "BootSourceOverrideMode" => match text {
                        Some("UEFI") => boot.uefi = true,
                        Some("Legacy") => boot.uefi = false,
                        Some(other) => errors.push(not_in_list(other, &prop)),
                        None => errors.push(type_error(bv, &prop)),
                    },
                    _ if current["Boot"].get(bk.as_str()).is_some() => {
                        errors.push(not_writable(&prop))
                    }
                    _ => errors.push(unknown_prop(&prop)),
                }
            }
        }
        if !errors.is_empty() {
            return Err(bad(errors));
        }
        // A target set while the override is off turns it on for the next boot; target None
        // turns it off, as do real BMCs.
        if target_given && !enabled_given && boot.enabled == BootEnabled::Disabled {
            boot.enabled = BootEnabled::Once;
        }
        if boot.target == BootTarget::None {
            boot.enabled = BootEnabled::Disabled;
        }
        if boot.target == BootTarget::UefiHttp {
            boot.uefi = true;
        }
        let flags = boot.to_ipmi();
        self.bmc.set_boot_flags(flags).await.map_err(bmc_error)?;
        // IPMI has no HTTP boot device: lab-bmc.so wrote `pxe ... efi`; `http` makes lab-vm
        // HTTP-boot, and lab-bmc.so keeps it (and answers it as PXE + UEFI over IPMI).
        if boot.target == BootTarget::UefiHttp && boot.enabled != BootEnabled::Disabled {
            let mode = if boot.enabled == BootEnabled::Continuous {
                "persistent"
            } else {
                "once"
            };
            write_atomic(&self.bootdev, format!("http {mode} efi\n").as_bytes())
                .map_err(internal)?;
        }
        Ok(())
    }

    fn patch_session_service(
        &self,
        body: &Map<String, Value>,
        current: &Value,
    ) -> Result<(), RfError> {
        let mut errors = Vec::new();
        let mut timeout = None;
        for (k, v) in body {
            if k.starts_with("@odata.") {
                continue;
            }
            match k.as_str() {
                "SessionTimeout" => match v.as_u64() {
                    Some(t) if (MIN_TIMEOUT..=MAX_TIMEOUT).contains(&t) => timeout = Some(t),
                    Some(_) => {
                        let val = v.to_string();
                        errors.push(msg(
                            "PropertyValueOutOfRange",
                            format!("The value '{val}' for the property SessionTimeout is not in the supported range of acceptable values ({MIN_TIMEOUT} to {MAX_TIMEOUT})."),
                            &[&val, "SessionTimeout"],
                            "Correct the value for the property in the request body and resubmit the request if the operation failed.",
                        ).at("SessionTimeout"))
                    }
                    None => errors.push(type_error(v, "SessionTimeout")),
                },
                _ if current.get(k).is_some() => errors.push(not_writable(k)),
                _ => errors.push(unknown_prop(k)),
            }
        }
        if !errors.is_empty() {
            return Err(bad(errors));
        }
        if let (Some(t), Ok(mut s)) = (timeout, self.sessions.lock()) {
            s.timeout = t;
        }
        Ok(())
    }

    async fn post(&self, segs: &[&str], req: &Request) -> Result<Reply, RfError> {
        match segs {
            ["SessionService", "Sessions"] => self.login(&req.body),
            ["Systems", "1", "Actions", "ComputerSystem.Reset"] => {
                let body = parse_object(&req.body)?;
                let action = "ComputerSystem.Reset";
                let params = action_params(&body, action, &["ResetType"])?;
                let kind = match params.get("ResetType") {
                    None => return Err(bad(vec![action_param_missing(action, "ResetType")])),
                    Some(Value::String(s)) => s.clone(),
                    Some(v) => return Err(bad(vec![action_param_type(v, "ResetType", action)])),
                };
                if !RESET_TYPES.contains(&kind.as_str()) {
                    return Err(bad(vec![action_value_not_in_list(
                        &kind,
                        "ResetType",
                        action,
                    )]));
                }
                self.reset(&kind).await?;
                Ok(Reply::empty(204))
            }
            ["Systems", "1", "LogServices", "SEL", "Actions", "LogService.ClearLog"] => {
                let body = parse_object(&req.body)?;
                action_params(&body, "LogService.ClearLog", &[])?;
                self.bmc.clear_sel().await.map_err(bmc_error)?;
                Ok(Reply::empty(204))
            }
            [.., "VirtualMedia", "CD", "Actions", "VirtualMedia.InsertMedia"] => {
                let body = parse_object(&req.body)?;
                self.insert_media(&body).await?;
                Ok(Reply::empty(204))
            }
            [.., "VirtualMedia", "CD", "Actions", "VirtualMedia.EjectMedia"] => {
                let body = parse_object(&req.body)?;
                action_params(&body, "VirtualMedia.EjectMedia", &[])?;
                let _op = self.media_op.lock().await;
                let drive = self.drive.clone();
                let done = blocking(move || drive.run(&["eject"])).await?;
                self.sync_media(None)?;
                done.map_err(media_error)?;
                Ok(Reply::empty(204))
            }
            _ => Err(not_found(&req.path)),
        }
    }

    fn login(&self, body: &[u8]) -> Result<Reply, RfError> {
        let body = parse_object(body)?;
        let mut errors = Vec::new();
        let mut field = |name: &str| match body.get(name) {
            Some(Value::String(s)) => Some(s.clone()),
            Some(v) => {
                errors.push(type_error(v, name));
                None
            }
            None => {
                errors.push(
                    msg(
                        "PropertyMissing",
                        format!("The property {name} is a required property and must be included in the request."),
                        &[name],
                        "Ensure that the property is in the request body and has a valid value and resubmit the request if the operation failed.",
                    )
                    .at(name),
                );
                None
            }
        };
        let (user, password) = (field("UserName"), field("Password"));
        for k in body.keys() {
            if k != "UserName" && k != "Password" && !k.starts_with("@odata.") {
                errors.push(unknown_prop(k));
            }
        }
        if !errors.is_empty() {
            return Err(bad(errors));
        }
        let (user, password) = (user.unwrap_or_default(), password.unwrap_or_default());
        if !self.credentials_ok(&user, &password) {
            return Err(msg(
                "ResourceAtUriUnauthorized",
                "While accessing the resource at '/redfish/v1/SessionService/Sessions', the service received an authorization error: wrong user name or password.".into(),
                &["/redfish/v1/SessionService/Sessions", "wrong user name or password"],
                "Ensure that the appropriate access is provided for the service in order for it to access the URI.",
            )
            .into_err(401));
        }
        let token = random_hex(16);
        let id = {
            let mut s = self.sessions.lock().map_err(|_| unauthorized())?;
            // Sessions nobody used for SessionTimeout are gone, also when nobody logs out.
            let timeout = Duration::from_secs(s.timeout);
            s.by_id.retain(|_, l| l.last.elapsed() <= timeout);
            let id = s.next.to_string();
            s.next += 1;
            s.by_id.insert(
                id.clone(),
                LoginSession {
                    token: token.clone(),
                    user,
                    created: now_secs(),
                    last: Instant::now(),
                },
            );
            id
        };
        let v = self.session(&id).unwrap_or(Value::Null);
        let mut r = Reply::json(201, &v);
        r.headers.push(("x-auth-token", token));
        r.headers.push((
            "location",
            format!("/redfish/v1/SessionService/Sessions/{id}"),
        ));
        Ok(r)
    }

    fn delete(&self, segs: &[&str]) -> Result<Reply, RfError> {
        match segs {
            ["SessionService", "Sessions", id] => {
                let mut s = self.sessions.lock().map_err(|_| unauthorized())?;
                match s.by_id.remove(*id) {
                    Some(_) => Ok(Reply::empty(204)),
                    None => Err(not_found(&format!(
                        "/redfish/v1/SessionService/Sessions/{id}"
                    ))),
                }
            }
            _ => Err(not_found("")),
        }
    }

    async fn reset(&self, kind: &str) -> Result<(), RfError> {
        let on = self.bmc.power_on().await.map_err(bmc_error)?;
        let refused = |what: &str| {
            msg(
                "ActionNotSupported",
                format!("The action ComputerSystem.Reset with ResetType {what} is not supported by the resource in its present state (power {}).", if on { "on" } else { "off" }),
                &["ComputerSystem.Reset"],
                "Power the system on (ResetType On) first, then resubmit the request.",
            )
            .into_err(409)
        };
        let control = match kind {
            "On" => Control::On,
            "ForceOff" => Control::Off,
            "GracefulShutdown" => Control::Soft,
            "ForceRestart" if on => Control::Reset,
            "PowerCycle" if on => Control::Cycle,
            "ForceRestart" | "PowerCycle" => Control::On,
            "Nmi" if !on => return Err(refused(kind)),
            "Nmi" => Control::Diag,
            "GracefulRestart" if !on => return Err(refused(kind)),
            "GracefulRestart" => {
                self.bmc.control(Control::Soft).await.map_err(bmc_error)?;
                // The guest shuts down in its own time: power on again once it is off.
                let bmc = self.bmc.clone();
                let wait = self.graceful_wait;
                tokio::spawn(async move {
                    let until = Instant::now() + wait;
                    while Instant::now() < until {
                        tokio::time::sleep(Duration::from_millis(250)).await;
                        if let Ok(false) = bmc.power_on().await {
                            let _ = bmc.control(Control::On).await;
                            return;
                        }
                    }
                    println!("lab: redfish: GracefulRestart: the guest did not power off within {}s; left on", wait.as_secs());
                });
                return Ok(());
            }
            _ => return Err(refused(kind)),
        };
        match self.bmc.control(control).await {
            Ok(()) => Ok(()),
            Err(CallError::Completion(_)) => Err(refused(kind)),
            Err(e) => Err(bmc_error(e)),
        }
    }

    async fn insert_media(&self, body: &Map<String, Value>) -> Result<(), RfError> {
        let action = "VirtualMedia.InsertMedia";
        let params = action_params(
            body,
            action,
            &[
                "Image",
                "Inserted",
                "WriteProtected",
                "TransferMethod",
                "TransferProtocolType",
                "UserName",
                "Password",
            ],
        )?;
        let mut errors = Vec::new();
        let image = match params.get("Image") {
            Some(Value::String(s)) => Some(s.clone()),
            Some(v) => {
                errors.push(action_param_type(v, "Image", action));
                None
            }
            None => {
                errors.push(action_param_missing(action, "Image"));
                None
            }
        };
        let flag = |name: &str, dflt: bool, errors: &mut Vec<Msg>| match params.get(name) {
            None => dflt,
            Some(Value::Bool(b)) => *b,
            Some(v) => {
                errors.push(action_param_type(v, name, action));
                dflt
            }
        };
        let inserted = flag("Inserted", true, &mut errors);
        let write_protected = flag("WriteProtected", true, &mut errors);
        let transfer_method = match params.get("TransferMethod") {
            None => None,
            Some(Value::String(s)) if s == "Stream" || s == "Upload" => Some(s.clone()),
            Some(Value::String(s)) => {
                errors.push(action_value_not_in_list(s, "TransferMethod", action));
                None
            }
            Some(v) => {
                errors.push(action_param_type(v, "TransferMethod", action));
                None
            }
        };
        if let Some(p) = params.get("TransferProtocolType") {
            match p.as_str() {
                Some("HTTP" | "HTTPS") => {}
                Some(s) => errors.push(action_value_not_in_list(s, "TransferProtocolType", action)),
                None => errors.push(action_param_type(p, "TransferProtocolType", action)),
            }
        }
        if let Some(img) = &image {
            if !image_url_ok(img) {
                errors.push(msg(
                    "ActionParameterValueFormatError",
                    format!("The value '{img}' for the parameter Image in the action {action} is in a different format than the parameter can accept: an http:// or https:// URL of an ISO image."),
                    &[img, "Image", action],
                    "Correct the value for the parameter in the request body and resubmit the request if the operation failed.",
                ));
            }
        }
        if !errors.is_empty() {
            return Err(bad(errors));
        }
        let Some(url) = image else {
            return Err(bad(errors));
        };
        let _op = self.media_op.lock().await;
        let drive = self.drive.clone();
        let done = if inserted {
            let u = url.clone();
            let fetched = blocking(move || drive.download(&u)).await?;
            fetched.map_err(|e| fetch_error(&url, action, e))?;
            let drive = self.drive.clone();
            blocking(move || {
                let file = drive.image().display().to_string();
                drive.run(&["insert", &file])
            })
            .await?
        } else {
            blocking(move || drive.run(&["eject"])).await?
        };
        self.sync_media(Some(Media {
            image: Some(url),
            inserted,
            write_protected,
            transfer_method,
        }))?;
        done.map(|_| ()).map_err(media_error)
    }

    /// Stores `want` as the CD's state, with Inserted as `lab-media status` reports it: the drive
    /// holds our image or not. None: ejected.
    fn sync_media(&self, want: Option<Media>) -> Result<(), RfError> {
        let held = self.drive.status().map_err(media_error)?;
        let inserted = media::is_image(&self.drive, held.as_deref());
        let m = match want {
            Some(m) if inserted => Media { inserted, ..m },
            _ => Media::default(),
        };
        self.set_media(m)
    }

    fn set_media(&self, m: Media) -> Result<(), RfError> {
        let bytes =
            serde_json::to_vec_pretty(&m).map_err(|e| internal(std::io::Error::other(e)))?;
        write_atomic(&self.state_dir.join(MEDIA_FILE), &bytes).map_err(internal)?;
        if let Ok(mut cur) = self.media.lock() {
            *cur = m;
        }
        Ok(())
    }
}

impl Reply {
    /// Headers every Redfish reply carries.
    fn with_common(mut self) -> Reply {
        self.headers.push(("odata-version", "4.0".into()));
        self.headers.push(("cache-control", "no-cache".into()));
        self
    }
}

/// Runs blocking work (downloads, lab-media) off the server's thread.
async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> Result<T, RfError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| internal(std::io::Error::other(e)))
}

/// lab-media failed: the drive could not be changed.
fn media_error(e: String) -> RfError {
    msg(
        "InternalError",
        format!("The request failed due to an internal service error: the virtual CD drive: {e}."),
        &[],
        "Resubmit the request. If the problem persists, look at the node's log (`lab logs NODE`).",
    )
    .into_err(500)
}

/// The image could not be fetched: the client's URL is at fault (4xx), the volume is not (5xx).
fn fetch_error(url: &str, action: &str, e: media::FetchError) -> RfError {
    use media::FetchError as F;
    match e {
        F::Unauthorized(code) => {
            let code = code.to_string();
            msg(
                "ResourceAtUriUnauthorized",
                format!("While accessing the resource at '{url}', the service received an authorization error '{code}'."),
                &[url, &code],
                "Ensure that the appropriate access is provided for the service in order for it to access the URI.",
            )
            .into_err(400)
        }
        F::Missing(code) => msg(
            "ResourceMissingAtURI",
            format!("The resource at the URI '{url}' was not found (HTTP status {code})."),
            &[url],
            "Place a valid resource at the URI or correct the URI and resubmit the request.",
        )
        .into_err(400),
        F::Unreachable(why) => msg(
            "CouldNotEstablishConnection",
            format!("The service failed to establish a connection with the URI '{url}' ({why})."),
            &[url],
            "Ensure that the URI contains a valid and reachable node name, protocol information and other URI components.",
        )
        .into_err(400),
        F::TooLarge => msg(
            "ActionParameterValueError",
            format!("The value for the parameter Image in the action {action} is invalid: the image at '{url}' is larger than {} GiB.", media::MAX_IMAGE >> 30),
            &["Image", action],
            "Correct the value for the parameter in the request body and resubmit the request if the operation failed.",
        )
        .into_err(400),
        F::Local(e) => internal(e),
    }
}

fn internal(e: std::io::Error) -> RfError {
    msg(
        "InternalError",
        format!("The request failed due to an internal service error: {e}."),
        &[],
        "Resubmit the request. If the problem persists, look at the node's log.",
    )
    .into_err(500)
}

/// The body as a JSON object: malformed JSON, or JSON that is not an object, is a 400.
fn parse_object(body: &[u8]) -> Result<Map<String, Value>, RfError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(Map::new());
    }
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(o)) => Ok(o),
        Ok(other) => Err(bad(vec![msg(
            "MalformedJSON",
            format!("The request body submitted was malformed JSON and could not be parsed by the receiving service: a JSON object was expected, not {other}."),
            &[],
            "Ensure that the request body is valid JSON and resubmit the request.",
        )])),
        Err(_) => Err(malformed()),
    }
}

/// An action's parameters: an unknown one is a 400 (annotations are ignored).
fn action_params(
    body: &Map<String, Value>,
    action: &str,
    known: &[&str],
) -> Result<Map<String, Value>, RfError> {
    let unknown: Vec<Msg> = body
        .keys()
        .filter(|k| !known.contains(&k.as_str()) && !k.contains('@'))
        .map(|k| action_param_unknown(action, k))
        .collect();
    if unknown.is_empty() {
        Ok(body.clone())
    } else {
        Err(bad(unknown))
    }
}

fn reset_action_info() -> Value {
    let mut v = resource(
        &format!("{SYSTEM}/ResetActionInfo"),
        "ActionInfo.v1_5_0.ActionInfo",
        "ResetActionInfo",
        "Reset Action Info",
    );
    v["Parameters"] = json!([{
        "Name": "ResetType",
        "Required": true,
        "DataType": "String",
        "AllowableValues": RESET_TYPES,
    }]);
    v
}

/// A sensor's id in its URI: its name without spaces.
fn sensor_id(name: &str) -> String {
    name.chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect()
}

/// `/redfish/v1/` and `/redfish/v1` are one resource; so are `.../Systems/` and `.../Systems`.
fn normalize(path: &str) -> String {
    let p = path.split('?').next().unwrap_or("");
    let p = p.trim_end_matches('/');
    if p.is_empty() {
        "/".into()
    } else {
        p.to_string()
    }
}

fn constant_eq(a: &[u8], b: &[u8]) -> bool {
    let mut diff = a.len() ^ b.len();
    for (i, x) in a.iter().enumerate() {
        diff |= usize::from(x ^ b.get(i).copied().unwrap_or(0));
    }
    diff == 0
}

fn random_hex(n: usize) -> String {
    use ring::rand::SecureRandom;
    let mut b = vec![0u8; n];
    ring::rand::SystemRandom::new()
        .fill(&mut b)
        .expect("the system's random source works");
    hex::encode(b)
}

/// Writes a file through a temporary file and a rename.
fn write_atomic(path: &std::path::Path, data: &[u8]) -> std::io::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, data)?;
    std::fs::rename(&tmp, path)
}

/// An InsertMedia `Image` lab-bmcd can fetch: an http(s) URL with a host and, if it names a port,
/// a number. What fails here (a bad IPv6 literal, a space, `web:port`) is the client's format
/// error, not a connection the service failed to make.
fn image_url_ok(img: &str) -> bool {
    let Ok(uri) = img.parse::<http::Uri>() else {
        return false;
    };
    let web = uri
        .scheme_str()
        .is_some_and(|s| s.eq_ignore_ascii_case("http") || s.eq_ignore_ascii_case("https"));
    let Some(authority) = uri.authority().filter(|_| web) else {
        return false;
    };
    // http::Uri keeps any text after the host's colon as the port; port_u16() reads only numbers.
    let port = authority
        .as_str()
        .rsplit_once(':')
        .map(|(_, p)| p)
        .filter(|p| !p.contains([']', '@']));
    !authority.host().is_empty()
        && port.is_none_or(|p| p.is_empty() || authority.port_u16().is_some())
}

#[cfg(test)]
mod tests;
