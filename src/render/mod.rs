//! Generated files: everything lab writes for a lab, rendered from the validated [`Lab`].
//!
//! [`render()`] is pure: it reads the lab model and the user's templates under the web root and
//! returns [`RenderedFile`]s, paths relative to [`Lab::state_dir`]. [`write()`] puts them there,
//! touching only files whose contents changed and removing what is no longer generated.
//! [`hash_files`] gives the planner one hash per container's inputs.
//!
//! Layout of the state dir (`.lab/<name>/` beside the lab file; the planner mounts these):
//!
//! | path                             | what                                                      |
//! |----------------------------------|-----------------------------------------------------------|
//! | `dnsmasq/dnsmasq.conf`           | the first dnsmasq service's config (`/etc/lab/dnsmasq.conf`)|
//! | `web/boot.ipxe`                  | `http://WEB_IP/lab/boot.ipxe`: chains the script per MAC  |
//! | `web/nodes/<mac-hyphenated>.ipxe`| a node's iPXE script, from its profile                    |
//! | `web/nodes/<node>/<file>`        | the node's cloud-configs (`http://WEB_IP/lab/nodes/<node>/<file>`) |
//! | `nodes/<node>/lan.conf`, `node.emu`, `node.env` | the node's BMC config (`/etc/lab/node/`) |
//!
//! # Template context
//!
//! The kernel command line, cloud-config and custom iPXE templates of a profile are rendered once
//! per node that boots the profile, with these variables:
//!
//! - `lab`: the lab (`name`, `publish`, `network` with `subnet`, `gateway`, `dns`, and also
//!   `services`, `nodes`, `profiles`, `vars`, `base_image`), as in `lab config --json`;
//! - `lab_file`: the lab file's name (e.g. `rancheros.toml`);
//! - `node`: the node being rendered (`name`, `group`, `mac`, `ip`, `bmc_ip`, `cpus`,
//!   `memory_mb`, `disks` (`bytes`, `serial`), `boot`, `power`, `power_restore`, `firmware`, `profile`, `vnc_port`, `ipmi_port`, ...);
//! - `nodes`: every node of the lab, in file order;
//! - `services`: a map from service name to service (`kind`, `ip`, `ports`, `env`, `volumes`,
//!   `command`, and its kind's own settings: `dhcp` and `tftp_root` for dnsmasq, `root` for httpd,
//!   `password` and `authorized_keys` for sshd, `image` for rancher and container);
//! - `vars`: the lab's `[vars]` table, `${ENV}` already interpolated;
//! - `profile`: the node's profile (`name`, `kernel`, `initrd`, `cmdline`, `cloud_configs`, `ipxe`);
//! - `web_url`: `http://WEB_IP`, the first httpd service (the web root is served at `/`);
//! - `node_url`: `http://WEB_IP/lab/nodes/<node>`, where the node's cloud-configs are served;
//! - `report_url`: `http://WEB_IP/lab/report/<mac-hyphenated>`: a booted OS GETs it to say it is up;
//! - `cloud_configs`: a map from each cloud-config's output name (template file name without
//!   `.j2`) to its URL, so that a bootstrap config can point at the final one;
//! - in a custom `ipxe` template also `kernel_url`, `initrd_url` (or none) and `cmdline` (the
//!   rendered kernel command line).
//!
//! Besides minijinja's built-in filters, `tojson` writes a value as JSON (a JSON string is a valid
//! YAML string, so `{{ vars.x | tojson }}` quotes a value safely in a cloud-config), and a
//! function `fail(message)` stops rendering with an error naming the template and line.
//! Undefined variables are errors (strict mode): test optional ones with `is defined`.
//! Whitespace: `trim_blocks` and `lstrip_blocks` are on (a line holding only a `{% ... %}` tag
//! leaves nothing behind) and a file's trailing newline is kept.
//!
//! The node templates (`templates/node/*.j2`, the BMC config) and lab's own templates get the same
//! variables.

pub(crate) mod fru;
mod write;

pub use write::{hash_files, write, write_under, WriteReport};

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Component, Path, PathBuf};

use minijinja::syntax::SyntaxConfig;
use minijinja::value::Serde;
use minijinja::{AutoEscape, Environment, ErrorKind, UndefinedBehavior, Value};
use serde::Serialize;

use crate::lab::{Lab, Node, Profile, ServiceKind};

/// One generated file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RenderedFile {
    /// Relative to [`Lab::state_dir`], e.g. `web/nodes/master/cloud-config.yaml`.
    pub path: PathBuf,
    pub contents: String,
}

/// The directory of the dnsmasq config, relative to the state dir.
pub const DNSMASQ_DIR: &str = "dnsmasq";
/// The dnsmasq config, relative to the state dir.
pub const DNSMASQ_CONF: &str = "dnsmasq/dnsmasq.conf";
/// The directory the web service serves at `/lab/`, relative to the state dir.
pub const WEB_DIR: &str = "web";
/// The directory of the nodes' BMC configs, relative to the state dir.
pub const NODES_DIR: &str = "nodes";
/// The subdirectories of the state dir that lab generates; [`write()`] owns everything in them.
pub const GENERATED_DIRS: [&str; 3] = [DNSMASQ_DIR, WEB_DIR, NODES_DIR];

/// The directory of a node's BMC config, relative to the state dir (`nodes/<node>`).
pub fn node_dir(node: &str) -> PathBuf {
    Path::new(NODES_DIR).join(node)
}

/// Why rendering failed. Every message says which template (file and line), for which node or
/// service, and what to do.
///
/// Only what validation cannot know fails here: the contents of templates (an undefined
/// variable, a syntax error, `fail(...)`) and a template file gone since the lab was loaded. What
/// the lab file itself gets wrong (an unknown profile, a profile that boots nothing, nodes without
/// an httpd service, templates outside the web root, two cloud-configs rendering to one file) a
/// [`Lab`] cannot hold: validation refused it.
#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    /// A template did not compile or render: an undefined variable, a syntax error, `fail(...)`.
    #[error("{template}{}: {message}\n  while rendering {target}\n  help: {help}", line_suffix(.line))]
    Template {
        /// The template file (relative to the lab file's directory when under it), or the lab file
        /// and key of an inline template (`profiles.NAME.cmdline`).
        template: String,
        line: Option<usize>,
        message: String,
        /// What was being rendered, e.g. ``cloud-config `cloud-config.yaml` of node `master` ``.
        target: String,
        help: String,
    },
}

fn line_suffix(line: &Option<usize>) -> String {
    line.map(|l| format!(":{l}")).unwrap_or_default()
}

/// Lab's own templates, compiled into the binary.
const BUILTIN_TEMPLATES: [(&str, &str); 7] = [
    ("dnsmasq.conf.j2", include_str!("templates/dnsmasq.conf.j2")),
    ("boot.ipxe.j2", include_str!("templates/boot.ipxe.j2")),
    ("node.ipxe.j2", include_str!("templates/node.ipxe.j2")),
    (
        "no-profile.ipxe.j2",
        include_str!("templates/no-profile.ipxe.j2"),
    ),
    (
        "node/lan.conf.j2",
        include_str!("templates/node/lan.conf.j2"),
    ),
    (
        "node/node.emu.j2",
        include_str!("templates/node/node.emu.j2"),
    ),
    (
        "node/node.env.j2",
        include_str!("templates/node/node.env.j2"),
    ),
];

/// The BMC files of a node: built-in template -> file name under `nodes/<node>/`.
const NODE_FILES: [(&str, &str); 3] = [
    ("node/lan.conf.j2", "lan.conf"),
    ("node/node.emu.j2", "node.emu"),
    ("node/node.env.j2", "node.env"),
];

/// Renders every generated file of the lab, sorted by path.
pub fn render(lab: &Lab) -> Result<Vec<RenderedFile>, RenderError> {
    let r = Renderer::new(lab);
    let mut files = Vec::new();
    if let Some(dnsmasq) = lab.first_of(ServiceKind::Dnsmasq) {
        let mut ctx = r.base.clone();
        ctx.insert("service", ser(dnsmasq));
        ctx.insert(
            "netmask",
            Value::from(lab.network().subnet.netmask().to_string()),
        );
        let target = format!("the dnsmasq.conf of service `{}`", dnsmasq.name);
        files.push(RenderedFile {
            path: DNSMASQ_CONF.into(),
            contents: r.builtin("dnsmasq.conf.j2", &ctx, &target)?,
        });
    }
    if r.web_url.is_some() {
        let contents = r.builtin("boot.ipxe.j2", &r.base, "boot.ipxe")?;
        files.push(RenderedFile {
            path: Path::new(WEB_DIR).join("boot.ipxe"),
            contents,
        });
    }
    for node in lab.nodes() {
        r.node(node, &mut files)?;
    }
    files.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(files)
}

struct Renderer<'a> {
    lab: &'a Lab,
    builtin: Environment<'static>,
    /// Built-in templates that did not compile, with why.
    broken: BTreeMap<&'static str, minijinja::Error>,
    /// Templates of the user, loaded from the web root of the first httpd service.
    user: Environment<'static>,
    web_root: Option<PathBuf>,
    web_url: Option<String>,
    /// The variables every template gets.
    base: BTreeMap<&'static str, Value>,
}

impl<'a> Renderer<'a> {
    fn new(lab: &'a Lab) -> Renderer<'a> {
        let mut builtin = environment();
        let mut broken = BTreeMap::new();
        for (name, source) in BUILTIN_TEMPLATES {
            // Unit tests check that they compile; a broken one is reported when it is used.
            if let Err(e) = builtin.add_template(name, source) {
                broken.insert(name, e);
            }
        }
        let httpd = lab.first_of(ServiceKind::Httpd);
        let web_root = lab.web_root().map(Path::to_path_buf);
        let mut user = environment();
        if let Some(root) = web_root.clone() {
            user.set_loader(move |name| load_template(&root, name));
        }
        let web_url = httpd.map(|s| format!("http://{}", s.ip));
        let services: BTreeMap<&str, Value> = lab
            .services()
            .iter()
            .map(|s| (s.name.as_str(), ser(s)))
            .collect();
        let mut base = BTreeMap::new();
        base.insert("lab", ser(lab));
        base.insert("lab_file", Value::from(file_name(lab.file())));
        base.insert("nodes", ser(&lab.nodes()));
        base.insert("services", ser(&services));
        base.insert("vars", ser(lab.vars()));
        if let Some(url) = &web_url {
            base.insert("web_url", Value::from(url.clone()));
        }
        Renderer {
            lab,
            builtin,
            broken,
            user,
            web_root,
            web_url,
            base,
        }
    }

    /// Renders one node's files: its iPXE script and cloud-configs under `web/`, its BMC config
    /// under `nodes/<node>/`.
    fn node(&self, node: &Node, files: &mut Vec<RenderedFile>) -> Result<(), RenderError> {
        let profile = self.lab.profile_of(node);
        let mut ctx = self.base.clone();
        ctx.insert("node", ser(node));
        // Validation refuses nodes in a lab without an httpd service: there is always a web URL.
        if let Some(web_url) = &self.web_url {
            let node_url = format!("{web_url}/lab/nodes/{}", node.name);
            ctx.insert(
                "report_url",
                Value::from(format!("{web_url}/lab/report/{}", node.mac.hyphenated())),
            );
            let outputs = profile.map_or_else(Vec::new, Profile::cloud_config_outputs);
            let urls: BTreeMap<&str, String> = outputs
                .iter()
                .map(|(_, out)| (out.as_str(), format!("{node_url}/{out}")))
                .collect();
            ctx.insert("cloud_configs", ser(&urls));
            ctx.insert("node_url", Value::from(node_url));
            let script = match profile {
                Some(p) => {
                    ctx.insert("profile", ser(p));
                    self.ipxe(node, p, web_url, &ctx)?
                }
                None => self.builtin(
                    "no-profile.ipxe.j2",
                    &ctx,
                    &format!("the iPXE script of node `{}`", node.name),
                )?,
            };
            let mac_file = format!("{}.ipxe", node.mac.hyphenated());
            files.push(RenderedFile {
                path: Path::new(WEB_DIR).join("nodes").join(mac_file),
                contents: script,
            });
            for (template, out) in &outputs {
                let p = profile.map(|p| p.name.as_str()).unwrap_or_default();
                let target = format!(
                    "cloud-config `{out}` of node `{}` (profile `{p}`)",
                    node.name
                );
                let contents = self.user_file(template, &ctx, &target)?;
                files.push(RenderedFile {
                    path: Path::new(WEB_DIR).join("nodes").join(&node.name).join(out),
                    contents,
                });
            }
        }
        ctx.insert("bmc_ports", ser(&node.bmc_ports()));
        for (template, out) in NODE_FILES {
            let target = format!("the BMC config {out} of node `{}`", node.name);
            let contents = self.builtin(template, &ctx, &target)?;
            files.push(RenderedFile {
                path: node_dir(&node.name).join(out),
                contents,
            });
        }
        Ok(())
    }

    /// The node's iPXE script: the profile's custom template, or the built-in one.
    fn ipxe(
        &self,
        node: &Node,
        profile: &Profile,
        web_url: &str,
        ctx: &BTreeMap<&'static str, Value>,
    ) -> Result<String, RenderError> {
        let of = format!("node `{}` (profile `{}`)", node.name, profile.name);
        let cmdline = self.cmdline(profile, ctx, &of)?;
        let mut ctx = ctx.clone();
        ctx.insert("cmdline", Value::from(cmdline));
        ctx.insert(
            "kernel_url",
            Value::from(profile.kernel.as_deref().map(|k| asset_url(web_url, k))),
        );
        ctx.insert(
            "initrd_url",
            Value::from(profile.initrd.as_deref().map(|i| asset_url(web_url, i))),
        );
        let target = format!("the iPXE script of {of}");
        // Validation made sure a profile without a custom template has a kernel.
        match &profile.ipxe {
            Some(template) => self.user_file(template, &ctx, &target),
            None => self.builtin("node.ipxe.j2", &ctx, &target),
        }
    }

    /// The profile's kernel command line, rendered and folded onto one line.
    fn cmdline(
        &self,
        profile: &Profile,
        ctx: &BTreeMap<&'static str, Value>,
        of: &str,
    ) -> Result<String, RenderError> {
        let origin = format!(
            "{}: profiles.{}.cmdline",
            self.lab.file().display(),
            profile.name
        );
        let target = format!("the kernel command line of {of}");
        let text = self
            .user
            .render_named_str(&origin, &profile.cmdline, context(ctx))
            .map_err(|e| self.error(&e, Origin::Inline(&origin), &target))?;
        Ok(text.split_whitespace().collect::<Vec<_>>().join(" "))
    }

    fn builtin(
        &self,
        name: &str,
        ctx: &BTreeMap<&'static str, Value>,
        target: &str,
    ) -> Result<String, RenderError> {
        if let Some(e) = self.broken.get(name) {
            return Err(self.error(e, Origin::Builtin, target));
        }
        self.builtin
            .get_template(name)
            .and_then(|t| t.render(context(ctx)))
            .map_err(|e| self.error(&e, Origin::Builtin, target))
    }

    /// Renders a template file of the user, named relative to the web root.
    fn user_file(
        &self,
        name: &str,
        ctx: &BTreeMap<&'static str, Value>,
        target: &str,
    ) -> Result<String, RenderError> {
        // Validation made sure the file is under the web root and was there; it may have gone
        // since, which only the disk can tell.
        let name = name.trim_start_matches("./");
        let template = self.user.get_template(name).map_err(|e| {
            if e.kind() == ErrorKind::TemplateNotFound {
                RenderError::Template {
                    template: self.user_path(name),
                    line: None,
                    message: "template file does not exist".into(),
                    target: target.to_string(),
                    help: "it was there when the lab file was checked: create it again, or fix the path in the profile (paths are relative to the web root)".into(),
                }
            } else {
                self.error(&e, Origin::User, target)
            }
        })?;
        template
            .render(context(ctx))
            .map_err(|e| self.error(&e, Origin::User, target))
    }

    /// How a template of the user is named in messages: as the lab file is (relative to the
    /// current directory when the lab file was given so), e.g. `webroot/templates/a.yaml.j2`.
    fn user_path(&self, name: &str) -> String {
        let Some(root) = &self.web_root else {
            return name.to_string();
        };
        let from_lab_dir = relative_to(&normalize(&root.join(name)), &normalize(self.lab.dir()));
        let lab_parent = self.lab.file().parent().unwrap_or(Path::new(""));
        normalize(&lab_parent.join(from_lab_dir))
            .display()
            .to_string()
    }

    fn error(&self, outer: &minijinja::Error, origin: Origin<'_>, target: &str) -> RenderError {
        // An error in an included template arrives wrapped ("could not render include"): report
        // the innermost template error, where the mistake is, and say where it was included.
        let mut chain = vec![outer];
        let mut source = std::error::Error::source(outer);
        while let Some(s) = source {
            if let Some(e) = s.downcast_ref::<minijinja::Error>() {
                chain.push(e);
            }
            source = s.source();
        }
        let e = chain
            .iter()
            .rev()
            .find(|e| e.name().is_some())
            .copied()
            .unwrap_or(outer);
        let kind = e.kind();
        let name_of = |e: &minijinja::Error| -> (String, Option<usize>) {
            match (origin, e.name()) {
                (Origin::Inline(name), Some(n)) if n == name => (name.to_string(), None),
                (Origin::Builtin, Some(n)) => (format!("lab's built-in template {n}"), e.line()),
                (_, Some(n)) => (self.user_path(n), e.line()),
                (Origin::Inline(name), None) => (name.to_string(), None),
                (Origin::Builtin, None) => ("lab's built-in templates".to_string(), None),
                (Origin::User, None) => ("a template".to_string(), None),
            }
        };
        let (template, line) = name_of(e);
        let mut message = match e.detail() {
            Some(detail)
                if kind == ErrorKind::InvalidOperation && detail.starts_with(FAIL_PREFIX) =>
            {
                detail[FAIL_PREFIX.len()..].to_string()
            }
            Some(detail) => format!("{kind}: {detail}"),
            None => kind.to_string(),
        };
        // Causes that are not template errors (e.g. a failed serialization).
        let mut source = std::error::Error::source(e);
        while let Some(s) = source {
            if s.downcast_ref::<minijinja::Error>().is_none() {
                let _ = write!(message, ": {s}");
            }
            source = s.source();
        }
        let mut target = target.to_string();
        for outer in chain
            .iter()
            .rev()
            .filter(|o| !std::ptr::eq(**o, e) && o.name().is_some())
        {
            let (t, l) = name_of(outer);
            let _ = write!(target, ", included from {t}{}", line_suffix(&l));
        }
        let help = match (origin, kind) {
            (Origin::Builtin, _) => "this is a bug in lab: please report it with the lab file".to_string(),
            (_, ErrorKind::UndefinedError) => "define it in the lab file's [vars] (templates see it as vars.NAME), or test it with `is defined`; webroot/README.md lists the variables".to_string(),
            (_, ErrorKind::SyntaxError) => "fix the template's syntax (Jinja2, as minijinja implements it)".to_string(),
            (_, ErrorKind::TemplateNotFound) => "paths of included templates are relative to the web root".to_string(),
            (_, ErrorKind::InvalidOperation) if e.detail().is_some_and(|d| d.starts_with(FAIL_PREFIX)) => {
                "the template stopped with fail(): see its message".to_string()
            }
            _ => "fix the template".to_string(),
        };
        RenderError::Template {
            template,
            line,
            message,
            target,
            help,
        }
    }
}

#[derive(Clone, Copy)]
enum Origin<'s> {
    Builtin,
    User,
    /// A template written in the lab file itself, named `FILE: KEY`.
    Inline(&'s str),
}

const FAIL_PREFIX: &str = "fail: ";

/// An environment with lab's settings: strict undefined, no HTML escaping, friendly whitespace.
fn environment() -> Environment<'static> {
    let mut env = Environment::new();
    env.set_undefined_behavior(UndefinedBehavior::Strict);
    env.set_debug(true);
    env.set_auto_escape_callback(|_| AutoEscape::None);
    if let Ok(syntax) = SyntaxConfig::builder()
        .trim_blocks(true)
        .lstrip_blocks(true)
        .keep_trailing_newline(true)
        .build()
    {
        env.set_syntax(syntax);
    }
    env.add_filter(
        "tojson",
        |value: Value| -> Result<String, minijinja::Error> {
            serde_json::to_string(&value)
                .map_err(|e| minijinja::Error::new(ErrorKind::BadSerialization, e.to_string()))
        },
    );
    env.add_function("ipmi_fru", fru::ipmi_fru);
    env.add_filter("ascii_bytes", fru::ascii_bytes);
    env.add_filter("ipmi_guid", fru::ipmi_guid);
    env.add_filter("iana_enterprise", fru::iana_enterprise);
    env.add_function(
        "fail",
        |message: String| -> Result<String, minijinja::Error> {
            Err(minijinja::Error::new(
                ErrorKind::InvalidOperation,
                format!("{FAIL_PREFIX}{message}"),
            ))
        },
    );
    env
}

fn ser<T: Serialize>(value: &T) -> Value {
    Value::from(Serde(value))
}

fn context(vars: &BTreeMap<&'static str, Value>) -> Value {
    Value::from_pairs(vars.iter().map(|(k, v)| (*k, v.clone())))
}

/// The loader of user templates: a path relative to the web root, never outside it.
fn load_template(root: &Path, name: &str) -> Result<Option<String>, minijinja::Error> {
    let name = name.trim_start_matches("./");
    if !is_relative_inside(name) {
        return Err(minijinja::Error::new(
            ErrorKind::TemplateNotFound,
            format!("template `{name}` is not a path inside the web root"),
        ));
    }
    match std::fs::read_to_string(root.join(name)) {
        Ok(text) => Ok(Some(text)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(minijinja::Error::new(
            ErrorKind::InvalidOperation,
            format!("cannot read template `{name}`: {e}"),
        )),
    }
}

/// A kernel or initrd of a profile: an absolute URL as it is, a path under the web root served
/// by the web service.
fn asset_url(web_url: &str, path: &str) -> String {
    match crate::lab::web_path(path) {
        Some(p) => format!("{web_url}/{p}"),
        None => path.to_string(),
    }
}

/// Relative, and without `..`: a path that stays under the directory it is joined to.
pub(crate) fn is_relative_inside(name: &str) -> bool {
    !name.is_empty()
        && Path::new(name)
            .components()
            .all(|c| matches!(c, Component::Normal(_) | Component::CurDir))
}

fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|f| f.to_string_lossy().into_owned())
        .unwrap_or_else(|| path.display().to_string())
}

/// Drops `.` and folds `..` lexically, for messages (the web root is often `labs/../webroot`).
fn normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir
                if matches!(out.components().next_back(), Some(Component::Normal(_))) =>
            {
                out.pop();
            }
            c => out.push(c),
        }
    }
    out
}

/// `path` relative to `base` (with `..` as needed) when both are absolute or both relative.
fn relative_to(path: &Path, base: &Path) -> PathBuf {
    if path.is_absolute() != base.is_absolute() {
        return path.to_path_buf();
    }
    let (p, b): (Vec<_>, Vec<_>) = (path.components().collect(), base.components().collect());
    let common = p.iter().zip(&b).take_while(|(x, y)| x == y).count();
    let mut out = PathBuf::new();
    for _ in common..b.len() {
        out.push("..");
    }
    for c in &p[common..] {
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn asset_urls_keep_absolute_urls() {
        assert_eq!(
            asset_url("http://10.0.0.3", "rancheros/vmlinuz"),
            "http://10.0.0.3/rancheros/vmlinuz"
        );
        assert_eq!(
            asset_url("http://10.0.0.3", "/os/initrd"),
            "http://10.0.0.3/os/initrd"
        );
        assert_eq!(
            asset_url("http://10.0.0.3", "https://example.org/k"),
            "https://example.org/k"
        );
    }

    #[test]
    fn template_paths_stay_under_the_web_root() {
        assert!(is_relative_inside("templates/a.yaml.j2"));
        assert!(is_relative_inside("./a.j2"));
        assert!(!is_relative_inside("../a.j2"));
        assert!(!is_relative_inside("/etc/passwd"));
        assert!(!is_relative_inside(""));
    }

    #[test]
    fn normalize_folds_parent_dirs() {
        assert_eq!(
            normalize(Path::new("/w/labs/../webroot/./t.j2")),
            PathBuf::from("/w/webroot/t.j2")
        );
        assert_eq!(normalize(Path::new("../a/../b")), PathBuf::from("../b"));
        assert_eq!(
            relative_to(Path::new("/w/webroot/t.j2"), Path::new("/w/labs")),
            PathBuf::from("../webroot/t.j2")
        );
        assert_eq!(
            relative_to(Path::new("/w/labs/t.j2"), Path::new("/w/labs")),
            PathBuf::from("t.j2")
        );
    }

    #[test]
    fn builtin_templates_compile() {
        let mut env = environment();
        for (name, source) in BUILTIN_TEMPLATES {
            env.add_template(name, source)
                .unwrap_or_else(|e| panic!("{name}: {e:#}"));
        }
    }
}
