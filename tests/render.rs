//! Rendering: the generated files of the example labs (snapshots), and the errors a user sees
//! when a template is wrong.
//!
//! The example labs in `labs/` go through validation (`lab::from_str`) with an empty environment,
//! so every `${VAR:-default}` takes its default. Error cases build a lab in a temporary directory
//! with its own web root.

use std::fs;
use std::path::Path;

use metal_lab::lab::{self, Lab};
use metal_lab::render::{self, RenderError, RenderedFile};

/// Validates a lab file's text, as if it were at `path` (relative to the package root, which
/// is the current directory of integration tests).
fn lab_at(path: &str, text: &str, env: &[(&str, &str)]) -> Lab {
    let env: Vec<(String, String)> = env
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let lookup = move |name: &str| env.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone());
    lab::from_str(Path::new(path), text, &lookup)
        .unwrap_or_else(|d| panic!("{path} is invalid:\n{d}"))
}

fn example(name: &str) -> Lab {
    let path = format!("labs/{name}.toml");
    let text = fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    lab_at(&path, &text, &[])
}

fn rendered(lab: &Lab) -> Vec<RenderedFile> {
    render::render(lab).unwrap_or_else(|e| panic!("render failed:\n{e}"))
}

fn get<'a>(files: &'a [RenderedFile], path: &str) -> &'a str {
    let found = files.iter().find(|f| f.path == Path::new(path));
    let paths: Vec<_> = files.iter().map(|f| f.path.display().to_string()).collect();
    &found
        .unwrap_or_else(|| panic!("{path} was not rendered; rendered: {paths:#?}"))
        .contents
}

fn paths(files: &[RenderedFile]) -> String {
    files
        .iter()
        .map(|f| format!("{}\n", f.path.display()))
        .collect()
}

// --- the example labs -------------------------------------------------------------------------

#[test]
fn rancheros_layout() {
    // The planner mounts these paths: the layout is part of the contract.
    insta::assert_snapshot!(paths(&rendered(&example("rancheros"))));
}

#[test]
fn rancheros_dnsmasq_conf() {
    insta::assert_snapshot!(get(
        &rendered(&example("rancheros")),
        "dnsmasq/dnsmasq.conf"
    ));
}

/// The seed playground's reservations (rancherserver, ranchernode1, ranchernode2): every example
/// lab of its topology gives its three nodes exactly these MACs, at .100, .101 and .102.
#[test]
fn example_reservations_match_the_seed() {
    for (name, net) in [
        ("rancheros", "192.168.25"),
        ("rancher", "192.168.25"),
        ("smoke", "192.168.26"),
    ] {
        let conf = get(&rendered(&example(name)), "dnsmasq/dnsmasq.conf").to_string();
        let hosts: Vec<&str> = conf
            .lines()
            .filter(|l| l.starts_with("dhcp-host="))
            .collect();
        assert_eq!(
            hosts,
            [
                format!("dhcp-host=00:aa:bb:cc:dd:ee,master,{net}.100"),
                format!("dhcp-host=00:aa:bb:cc:dd:ef,worker-1,{net}.101"),
                format!("dhcp-host=00:aa:bb:cc:dd:ff,worker-2,{net}.102"),
            ],
            "labs/{name}.toml"
        );
    }
}

#[test]
fn rancheros_boot_ipxe() {
    insta::assert_snapshot!(get(&rendered(&example("rancheros")), "web/boot.ipxe"));
}

#[test]
fn rancheros_master_ipxe() {
    insta::assert_snapshot!(get(
        &rendered(&example("rancheros")),
        "web/nodes/00-aa-bb-cc-dd-ee.ipxe"
    ));
}

#[test]
fn rancheros_master_cloud_configs() {
    let files = rendered(&example("rancheros"));
    insta::assert_snapshot!(
        "rancheros_master_bootstrap",
        get(&files, "web/nodes/master/cloud-config.bootstrap.yaml")
    );
    insta::assert_snapshot!(
        "rancheros_master_final",
        get(&files, "web/nodes/master/cloud-config.yaml")
    );
}

#[test]
fn rancheros_worker_cloud_configs() {
    let files = rendered(&example("rancheros"));
    insta::assert_snapshot!(
        "rancheros_worker_bootstrap",
        get(
            &files,
            "web/nodes/worker-1/cloud-config.bootstrap.node.yaml"
        )
    );
    insta::assert_snapshot!(
        "rancheros_worker_final",
        get(&files, "web/nodes/worker-1/cloud-config.node.yaml")
    );
}

#[test]
fn rancheros_cloud_configs_are_yaml() {
    // Every rendered cloud-config parses as YAML and starts with the #cloud-config marker.
    let files = rendered(&example("rancheros"));
    let mut seen = 0;
    for f in files
        .iter()
        .filter(|f| f.path.extension().is_some_and(|e| e == "yaml"))
    {
        assert!(
            f.contents.starts_with("#cloud-config\n"),
            "{}",
            f.path.display()
        );
        let _: serde_json::Value = yaml_value(&f.contents)
            .unwrap_or_else(|e| panic!("{}: {e}\n{}", f.path.display(), f.contents));
        seen += 1;
    }
    assert_eq!(seen, 6, "two cloud-configs for each of the three nodes");
}

#[test]
fn rancheros_master_bmc_files() {
    let files = rendered(&example("rancheros"));
    insta::assert_snapshot!(
        "rancheros_master_lan_conf",
        get(&files, "nodes/master/lan.conf")
    );
    insta::assert_snapshot!(
        "rancheros_master_node_emu",
        get(&files, "nodes/master/node.emu")
    );
    insta::assert_snapshot!(
        "rancheros_master_node_env",
        get(&files, "nodes/master/node.env")
    );
}

#[test]
fn rancheros_with_environment() {
    // Join data and keys come from the environment through [vars], never from the templates.
    let text = fs::read_to_string("labs/rancheros.toml").unwrap();
    let env = [
        ("K3S_TOKEN", "s3cret: with colon"),
        ("SSH_PUBKEY", "ssh-ed25519 AAAAC3Nza lab@example"),
    ];
    let files = rendered(&lab_at("labs/rancheros.toml", &text, &env));
    let master = get(&files, "web/nodes/master/cloud-config.yaml");
    assert!(
        master.contains("ssh_authorized_keys:\n  - \"ssh-ed25519 AAAAC3Nza lab@example\"\n"),
        "{master}"
    );
    assert!(
        master.contains("- \"K3S_TOKEN=s3cret: with colon\"\n"),
        "{master}"
    );
    let worker = get(&files, "web/nodes/worker-2/cloud-config.node.yaml");
    assert!(
        worker.contains("- \"K3S_TOKEN=s3cret: with colon\"\n"),
        "{worker}"
    );
    assert!(
        worker.contains("- K3S_URL=https://192.168.25.100:6443\n"),
        "{worker}"
    );
}

#[test]
fn rancher_agent_variant() {
    let text = fs::read_to_string("labs/rancher.toml").unwrap();
    let env = [
        ("RANCHER_TOKEN", "tok123"),
        ("RANCHER_CA_CHECKSUM", "abc123"),
    ];
    let files = rendered(&lab_at("labs/rancher.toml", &text, &env));
    insta::assert_snapshot!(
        "rancher_master_final",
        get(&files, "web/nodes/master/cloud-config.yaml")
    );
    insta::assert_snapshot!(
        "rancher_worker_final",
        get(&files, "web/nodes/worker-1/cloud-config.node.yaml")
    );
}

#[test]
fn rancher_agent_without_token_says_what_to_do() {
    let files = rendered(&example("rancher"));
    let master = get(&files, "web/nodes/master/cloud-config.yaml");
    assert!(!master.contains("rancher-agent:"), "{master}");
    assert!(master.contains("# vars.rancher_token is empty: create a custom cluster in the Rancher UI at https://192.168.25.5,"), "{master}");
}

#[test]
fn playground_node_without_profile() {
    let files = rendered(&example("playground"));
    insta::assert_snapshot!("playground_layout", paths(&files));
    insta::assert_snapshot!(
        "playground_no_profile_ipxe",
        get(&files, "web/nodes/00-aa-bb-cc-dd-ee.ipxe")
    );
}

#[test]
fn dnsmasq_conf_with_dns() {
    let text = fs::read_to_string("labs/rancheros.toml").unwrap().replace(
        "gateway = \"192.168.25.1\"\n",
        "gateway = \"192.168.25.1\"\ndns = [\"8.8.8.8\", \"1.1.1.1\"]\n",
    );
    let files = rendered(&lab_at("labs/rancheros.toml", &text, &[]));
    let conf = get(&files, "dnsmasq/dnsmasq.conf");
    assert!(
        conf.contains("\ndhcp-range=192.168.25.100,192.168.25.200,255.255.255.0,2h\n"),
        "{conf}"
    );
    assert!(
        conf.contains("\ndhcp-option=option:dns-server,8.8.8.8,1.1.1.1\n"),
        "{conf}"
    );
}

#[test]
fn dnsmasq_conf_reserves_every_nic() {
    let text = fs::read_to_string("labs/rancheros.toml")
        .unwrap()
        .replace("ipmi_port = 624\n", "ipmi_port = 624\nnics = 2\n")
        .replace(
            "macs = [\"00:aa:bb:cc:dd:ef\", \"00:aa:bb:cc:dd:ff\"]",
            "macs = [\"00:aa:bb:cc:dd:e0\", \"00:aa:bb:cc:dd:f0\"]",
        );
    let files = rendered(&lab_at("labs/rancheros.toml", &text, &[]));
    let conf = get(&files, "dnsmasq/dnsmasq.conf");
    // Each worker's NICs: consecutive MACs and consecutive addresses, members stepping past them.
    for line in [
        "dhcp-host=00:aa:bb:cc:dd:ee,master,192.168.25.100\n",
        "dhcp-host=00:aa:bb:cc:dd:e0,worker-1,192.168.25.101\ndhcp-host=00:aa:bb:cc:dd:e1,192.168.25.102\n",
        "dhcp-host=00:aa:bb:cc:dd:f0,worker-2,192.168.25.103\ndhcp-host=00:aa:bb:cc:dd:f1,192.168.25.104\n",
    ] {
        assert!(conf.contains(line), "{line} in\n{conf}");
    }
}

#[test]
fn rendering_is_deterministic() {
    let lab = example("rancheros");
    assert_eq!(rendered(&lab), rendered(&lab));
}

#[test]
fn hashes_follow_each_containers_inputs() {
    let text = fs::read_to_string("labs/rancheros.toml").unwrap();
    let a = rendered(&lab_at("labs/rancheros.toml", &text, &[]));
    let b = rendered(&lab_at(
        "labs/rancheros.toml",
        &text.replace("memory = \"2G\"", "memory = \"3G\""),
        &[],
    ));
    let h = |files: &[RenderedFile], p: &str| render::hash_files(files, Path::new(p));
    assert_ne!(
        h(&a, "nodes/master"),
        h(&b, "nodes/master"),
        "node.env has the memory"
    );
    assert_eq!(h(&a, "dnsmasq"), h(&b, "dnsmasq"));
    assert_eq!(h(&a, "web"), h(&b, "web"));
}

#[test]
fn write_into_the_state_dir() {
    // A copy of the example lab in a temporary directory, so that .lab/ lands there.
    let tmp = tempfile::tempdir().unwrap();
    let abs = |dir: &str| format!("{:?}", fs::canonicalize(dir).unwrap().display().to_string());
    let text = fs::read_to_string("labs/rancheros.toml")
        .unwrap()
        .replace("\"../webroot\"", &abs("webroot"))
        .replace("\"../tftproot\"", &abs("tftproot"));
    let file = tmp.path().join("lab.toml");
    fs::write(&file, &text).unwrap();
    let lab = lab_at(file.to_str().unwrap(), &text, &[]);
    let files = rendered(&lab);
    let first = render::write(&lab, &files).unwrap();
    assert_eq!(first.written.len(), files.len());
    let state = tmp.path().join(".lab/rancheros");
    assert_eq!(
        fs::read_to_string(state.join("dnsmasq/dnsmasq.conf")).unwrap(),
        get(&files, "dnsmasq/dnsmasq.conf")
    );
    let again = render::write(&lab, &files).unwrap();
    assert!(again.written.is_empty() && again.removed.is_empty());
    assert_eq!(again.unchanged.len(), files.len());
    // Nothing beside the lab file but the state dir.
    let mut top: Vec<_> = fs::read_dir(tmp.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    top.sort();
    assert_eq!(top, [".lab", "lab.toml"]);
}

// --- custom iPXE template, errors -------------------------------------------------------------

/// A lab in a temporary directory with one node `n1` booting profile `p`, whose web root holds
/// `templates` (path -> contents).
struct TmpLab {
    dir: tempfile::TempDir,
    lab: Lab,
}

fn tmp_lab(profile: &str, templates: &[(&str, &str)]) -> TmpLab {
    let dir = tempfile::tempdir().unwrap();
    fs::create_dir(dir.path().join("webroot")).unwrap();
    for (path, contents) in templates {
        let p = dir.path().join("webroot").join(path);
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(p, contents).unwrap();
    }
    let text = format!(
        r#"[lab]
name = "t"

[network]
subnet = "10.9.0.0/24"

[vars]
greeting = "hello"

[services.dhcp]
kind = "dnsmasq"
ip = "10.9.0.2"
dhcp_range = ["10.9.0.100", "10.9.0.200"]

[services.web]
kind = "httpd"
ip = "10.9.0.3"

[profiles.p]
{profile}

[nodes.n1]
mac = "52:54:00:00:00:01"
ip = "10.9.0.100"
bmc_ip = "10.9.0.10"
profile = "p"
"#
    );
    let file = dir.path().join("lab.toml");
    fs::write(&file, &text).unwrap();
    let lab = lab_at(file.to_str().unwrap(), &text, &[]);
    TmpLab { dir, lab }
}

impl TmpLab {
    /// The error message of rendering, with the temporary directory written as `<tmp>`.
    fn error(&self) -> String {
        let e: RenderError = render::render(&self.lab).expect_err("rendering should fail");
        e.to_string()
            .replace(&self.dir.path().display().to_string(), "<tmp>")
    }
}

#[test]
fn custom_ipxe_template() {
    let t = tmp_lab(
        "kernel = \"os/vmlinuz\"\ninitrd = \"https://example.org/initrd\"\ncmdline = \"console=ttyS0 greeting={{ vars.greeting }}\"\nipxe = \"boot/custom.ipxe.j2\"\ncloud_configs = [\"cc.yaml.j2\"]",
        &[
            ("boot/custom.ipxe.j2", "#!ipxe\n# {{ node.name }} {{ profile.name }}\nkernel {{ kernel_url }} {{ cmdline }}\ninitrd {{ initrd_url }}\nchain {{ cloud_configs['cc.yaml'] }}\n"),
            ("cc.yaml.j2", "#cloud-config\n"),
        ],
    );
    let files = rendered(&t.lab);
    insta::assert_snapshot!(get(&files, "web/nodes/52-54-00-00-00-01.ipxe"), @r"
    #!ipxe
    # n1 p
    kernel http://10.9.0.3/os/vmlinuz console=ttyS0 greeting=hello
    initrd https://example.org/initrd
    chain http://10.9.0.3/lab/nodes/n1/cc.yaml
    ");
}

#[test]
fn error_undefined_variable_in_cloud_config() {
    let t = tmp_lab(
        "kernel = \"vmlinuz\"\ncloud_configs = [\"templates/cc.yaml.j2\"]",
        &[(
            "templates/cc.yaml.j2",
            "#cloud-config\nhostname: {{ node.name }}\ntoken: {{ vars.k3s_token }}\n",
        )],
    );
    insta::assert_snapshot!(t.error(), @r"
    <tmp>/webroot/templates/cc.yaml.j2:3: undefined value: `vars.k3s_token` is undefined
      while rendering cloud-config `cc.yaml` of node `n1` (profile `p`)
      help: define it in the lab file's [vars] (templates see it as vars.NAME), or test it with `is defined`; webroot/README.md lists the variables
    ");
}

#[test]
fn error_undefined_variable_in_included_template() {
    let t = tmp_lab(
        "kernel = \"vmlinuz\"\ncloud_configs = [\"cc.yaml.j2\"]",
        &[
            (
                "cc.yaml.j2",
                "#cloud-config\n{% include 'parts/ssh.j2' %}\n",
            ),
            ("parts/ssh.j2", "\n\nkey: {{ sshkey }}\n"),
        ],
    );
    insta::assert_snapshot!(t.error(), @r"
    <tmp>/webroot/parts/ssh.j2:3: undefined value: `sshkey` is undefined
      while rendering cloud-config `cc.yaml` of node `n1` (profile `p`), included from <tmp>/webroot/cc.yaml.j2:2
      help: define it in the lab file's [vars] (templates see it as vars.NAME), or test it with `is defined`; webroot/README.md lists the variables
    ");
}

#[test]
fn error_undefined_variable_in_cmdline() {
    let t = tmp_lab(
        "kernel = \"vmlinuz\"\ncmdline = \"console=ttyS0 x={{ vars.nope }}\"",
        &[],
    );
    insta::assert_snapshot!(t.error(), @r"
    <tmp>/lab.toml: profiles.p.cmdline: undefined value: `vars.nope` is undefined
      while rendering the kernel command line of node `n1` (profile `p`)
      help: define it in the lab file's [vars] (templates see it as vars.NAME), or test it with `is defined`; webroot/README.md lists the variables
    ");
}

#[test]
fn error_template_syntax() {
    let t = tmp_lab(
        "kernel = \"vmlinuz\"\ncloud_configs = [\"cc.yaml.j2\"]",
        &[("cc.yaml.j2", "#cloud-config\n{% if node.name %}\nx: 1\n")],
    );
    insta::assert_snapshot!(t.error(), @r"
    <tmp>/webroot/cc.yaml.j2:3: syntax error: unexpected end of input, expected end of block
      while rendering cloud-config `cc.yaml` of node `n1` (profile `p`)
      help: fix the template's syntax (Jinja2, as minijinja implements it)
    ");
}

#[test]
fn error_missing_template_file() {
    // Validation checks that the files exist; one removed afterwards is caught while rendering.
    let t = tmp_lab(
        "kernel = \"vmlinuz\"\ncloud_configs = [\"templates/cc.yaml.j2\"]",
        &[("templates/cc.yaml.j2", "#cloud-config\n")],
    );
    fs::remove_file(t.dir.path().join("webroot/templates/cc.yaml.j2")).unwrap();
    insta::assert_snapshot!(t.error(), @r"
    <tmp>/webroot/templates/cc.yaml.j2: template file does not exist
      while rendering cloud-config `cc.yaml` of node `n1` (profile `p`)
      help: it was there when the lab file was checked: create it again, or fix the path in the profile (paths are relative to the web root)
    ");
}

#[test]
fn error_fail_in_worker_template_without_server() {
    let text = fs::read_to_string("labs/rancheros.toml")
        .unwrap()
        .replace("k3s_server = \"master\"", "k3s_server = \"control\"");
    let e = render::render(&lab_at("labs/rancheros.toml", &text, &[])).expect_err("no k3s server");
    insta::assert_snapshot!(e.to_string(), @r"
    webroot/templates/rancheros/cloud-config.node.yaml.j2:14: no node has the group or name `control` to run the k3s server: set vars.k3s_server to the server's group
      while rendering cloud-config `cloud-config.node.yaml` of node `worker-1` (profile `rancheros-node`)
      help: the template stopped with fail(): see its message
    ");
}

/// YAML -> JSON, to check that the rendered cloud-configs parse.
fn yaml_value(text: &str) -> Result<serde_json::Value, serde_yaml_ng::Error> {
    serde_yaml_ng::from_str(text)
}
