//! The `lab` binary without a Docker engine: `validate` and `config` on the example labs and on
//! broken files, how the lab file is found (`-f`, `LAB_FILE`, `lab.toml`), and exit codes
//! (0 success, 2 invalid file or usage).

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

/// The package root: the example labs and the default `lab.toml` live here.
fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// `lab ARGS` in `dir`, with no `LAB_FILE` and none of the example labs' variables set.
fn lab_in(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_lab"));
    cmd.args(args).current_dir(dir);
    for var in [
        "LAB_FILE",
        "K3S_TOKEN",
        "SSH_PUBKEY",
        "RANCHER_TOKEN",
        "RANCHER_CA_CHECKSUM",
        "NOPE",
    ] {
        cmd.env_remove(var);
    }
    cmd.envs(env.iter().copied());
    cmd.output().expect("run the lab binary")
}

fn lab(args: &[&str]) -> Output {
    lab_in(&root(), args, &[])
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Asserts the exit code, showing the output when it differs.
fn assert_exit(o: &Output, code: i32, what: &str) {
    assert_eq!(
        o.status.code(),
        Some(code),
        "{what}: exit code\n--- stdout:\n{}\n--- stderr:\n{}",
        stdout(o),
        stderr(o)
    );
}

// --- validate ----------------------------------------------------------------------------------------

/// The example labs: every `labs/*.toml` (at least the three the README names).
fn example_labs() -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(root().join("labs"))
        .expect("labs/")
        .filter_map(|e| {
            e.ok()?
                .file_name()
                .into_string()
                .ok()?
                .strip_suffix(".toml")
                .map(str::to_string)
        })
        .collect();
    names.sort();
    for name in ["playground", "rancher", "rancheros"] {
        assert!(
            names.iter().any(|n| n == name),
            "labs/{name}.toml is missing: {names:?}"
        );
    }
    names
}

#[test]
fn every_example_lab_validates() {
    for name in example_labs() {
        let file = format!("labs/{name}.toml");
        let o = lab(&["validate", "-f", &file]);
        assert_exit(&o, 0, &file);
        assert!(
            stdout(&o).contains(&format!("lab `{name}` is valid")),
            "{file}: {}",
            stdout(&o)
        );
        assert!(
            stderr(&o).is_empty(),
            "{file}: nothing on stderr, got: {}",
            stderr(&o)
        );
    }
}

#[test]
fn the_default_file_is_lab_toml() {
    // lab.toml at the package root is a symlink to labs/rancheros.toml.
    let o = lab(&["validate"]);
    assert_exit(&o, 0, "lab validate");
    insta::assert_snapshot!(stdout(&o), @"lab.toml: lab `rancheros` is valid: 3 services, 3 nodes on 192.168.25.0/24");
}

#[test]
fn an_invalid_file_exits_2_with_the_diagnostics_on_stderr() {
    let dir = tempfile::tempdir().unwrap();
    let text = r#"[lab]
name = "broken"

[network]
subnet = "10.30.0.0/24"

[services.dhcp]
kind = "dnsmasq"
ip = "10.30.0.2"
dhcp_range = ["10.30.0.100", "10.30.0.200"]

[services.web]
kind = "httpd"
ip = "10.30.0.150"
root = "."

[nodes.a]
mac = "01:00:00:00:00:01"
vnc_port = 5901

[nodes.b]
vnc_port = 5901
"#;
    fs::write(dir.path().join("broken.toml"), text).unwrap();
    for args in [
        &["validate", "-f", "broken.toml"][..],
        &["config", "-f", "broken.toml"],
        &["config", "--json", "-f", "broken.toml"],
    ] {
        let o = lab_in(dir.path(), args, &[]);
        assert_exit(&o, 2, &args.join(" "));
        assert!(
            stdout(&o).is_empty(),
            "{}: nothing on stdout, got: {}",
            args.join(" "),
            stdout(&o)
        );
        insta::assert_snapshot!("invalid_file_stderr", stderr(&o));
    }
}

#[test]
fn a_missing_variable_is_named_and_the_environment_is_used() {
    let dir = tempfile::tempdir().unwrap();
    let text = "[lab]\nname = \"${NOPE}\"\n\n[network]\nsubnet = \"10.30.0.0/24\"\n";
    fs::write(dir.path().join("lab.toml"), text).unwrap();
    let o = lab_in(dir.path(), &["validate"], &[]);
    assert_exit(&o, 2, "unset variable");
    insta::assert_snapshot!(stderr(&o), @r"
    error: lab.toml:2:8: lab.name: environment variable `NOPE` is not set
      help: export NOPE=... before running lab, or write ${NOPE:-default}
    ");
    let o = lab_in(dir.path(), &["validate"], &[("NOPE", "fromenv")]);
    assert_exit(&o, 0, "variable set");
    assert!(
        stdout(&o).contains("lab `fromenv` is valid"),
        "{}",
        stdout(&o)
    );
}

#[test]
fn a_missing_file_exits_2_and_says_how_to_point_at_one() {
    let o = lab(&["validate", "-f", "labs/no-such-lab.toml"]);
    assert_exit(&o, 2, "missing -f file");
    insta::assert_snapshot!(stderr(&o), @r"
    error: labs/no-such-lab.toml: cannot read the lab file: No such file or directory (os error 2)
      help: create it (see labs/ for examples) or point to one with -f FILE / LAB_FILE
    ");
    // Without -f, in a directory with no lab.toml.
    let empty = tempfile::tempdir().unwrap();
    let o = lab_in(empty.path(), &["validate"], &[]);
    assert_exit(&o, 2, "no lab.toml");
    let err = stderr(&o);
    assert!(
        err.starts_with("error: lab.toml: cannot read the lab file"),
        "{err}"
    );
    assert!(err.contains("-f FILE / LAB_FILE"), "{err}");
}

// --- finding the file: -f and LAB_FILE ------------------------------------------------------------------

#[test]
fn dash_f_before_or_after_the_subcommand() {
    for args in [
        &["-f", "labs/playground.toml", "validate"][..],
        &["validate", "-f", "labs/playground.toml"],
        &["validate", "--file=labs/playground.toml"],
    ] {
        let o = lab(args);
        assert_exit(&o, 0, &args.join(" "));
        assert!(
            stdout(&o).contains("lab `playground` is valid"),
            "{}: {}",
            args.join(" "),
            stdout(&o)
        );
    }
}

#[test]
fn lab_file_names_the_file() {
    let o = lab_in(
        &root(),
        &["validate"],
        &[("LAB_FILE", "labs/playground.toml")],
    );
    assert_exit(&o, 0, "LAB_FILE");
    assert!(
        stdout(&o).contains("lab `playground` is valid"),
        "{}",
        stdout(&o)
    );
    // -f wins over LAB_FILE.
    let o = lab_in(
        &root(),
        &["validate", "-f", "labs/rancher.toml"],
        &[("LAB_FILE", "labs/playground.toml")],
    );
    assert_exit(&o, 0, "-f with LAB_FILE");
    assert!(
        stdout(&o).contains("lab `rancher` is valid"),
        "{}",
        stdout(&o)
    );
    // A LAB_FILE that does not exist is reported like -f.
    let o = lab_in(&root(), &["config"], &[("LAB_FILE", "labs/gone.toml")]);
    assert_exit(&o, 2, "missing LAB_FILE");
    assert!(
        stderr(&o).contains("labs/gone.toml: cannot read the lab file"),
        "{}",
        stderr(&o)
    );
}

// --- config -------------------------------------------------------------------------------------------

fn config_json() -> Value {
    let o = lab(&["config", "--json", "-f", "labs/rancheros.toml"]);
    assert_exit(&o, 0, "lab config --json");
    serde_json::from_str(&stdout(&o))
        .unwrap_or_else(|e| panic!("lab config --json is not JSON ({e}):\n{}", stdout(&o)))
}

#[test]
fn config_json_lists_every_node() {
    let cfg = config_json();
    let nodes = cfg["nodes"].as_array().expect("nodes is an array");
    let fields = ["name", "mac", "ip", "bmc_ip", "vnc_port", "ipmi_port"];
    let got: Vec<Vec<String>> = nodes
        .iter()
        .map(|n| {
            fields
                .iter()
                .map(|f| n[*f].to_string().trim_matches('"').to_string())
                .collect()
        })
        .collect();
    let want: Vec<Vec<&str>> = vec![
        vec![
            "master",
            "00:aa:bb:cc:dd:ee",
            "192.168.25.100",
            "192.168.25.6",
            "5901",
            "623",
        ],
        vec![
            "worker-1",
            "00:aa:bb:cc:dd:ef",
            "192.168.25.101",
            "192.168.25.7",
            "5902",
            "624",
        ],
        vec![
            "worker-2",
            "00:aa:bb:cc:dd:ff",
            "192.168.25.102",
            "192.168.25.8",
            "5903",
            "625",
        ],
    ];
    assert_eq!(got, want);
    assert!(
        nodes
            .iter()
            .all(|n| n["vnc_port"].is_u64() && n["ipmi_port"].is_u64()),
        "ports are numbers: {nodes:#?}"
    );
    let worker2 = &nodes[2];
    assert_eq!(worker2["group"], "worker");
    assert_eq!(worker2["profile"], "rancheros-node");
    assert_eq!(worker2["memory_mb"], 2048);
}

#[test]
fn config_json_lists_every_service() {
    let cfg = config_json();
    let services = cfg["services"].as_array().expect("services is an array");
    let got: Vec<(String, String, String, Value)> = services
        .iter()
        .map(|s| {
            (
                s["name"].as_str().unwrap().into(),
                s["kind"].as_str().unwrap().into(),
                s["ip"].as_str().unwrap().into(),
                s["ports"].clone(),
            )
        })
        .collect();
    let no_ports = serde_json::json!([]);
    assert_eq!(
        got,
        vec![
            (
                "dhcp".into(),
                "dnsmasq".into(),
                "192.168.25.2".into(),
                no_ports.clone()
            ),
            (
                "web".into(),
                "httpd".into(),
                "192.168.25.3".into(),
                no_ports
            ),
            (
                "ssh".into(),
                "sshd".into(),
                "192.168.25.4".into(),
                serde_json::json!([{ "host": 2222, "container": 22, "protocol": "tcp" }])
            ),
        ]
    );
    assert_eq!(
        cfg["services"][0]["dhcp"]["range"],
        serde_json::json!(["192.168.25.100", "192.168.25.200"])
    );
    assert_eq!(cfg["network"]["subnet"], "192.168.25.0/24");
    assert_eq!(cfg["network"]["gateway"], "192.168.25.1");
}

#[test]
fn config_toml_reads_back_as_toml() {
    let o = lab(&["config", "-f", "labs/rancheros.toml"]);
    assert_exit(&o, 0, "lab config");
    let text = stdout(&o);
    assert!(
        text.contains("[nodes.worker-2]"),
        "no [nodes.worker-2] table:\n{text}"
    );
    let cfg: toml::Table =
        toml::from_str(&text).unwrap_or_else(|e| panic!("lab config is not TOML ({e}):\n{text}"));
    let w2 = &cfg["nodes"]["worker-2"];
    assert_eq!(w2["mac"].as_str(), Some("00:aa:bb:cc:dd:ff"));
    assert_eq!(w2["ip"].as_str(), Some("192.168.25.102"));
    assert_eq!(w2["bmc_ip"].as_str(), Some("192.168.25.8"));
    assert_eq!(w2["vnc_port"].as_integer(), Some(5903));
    assert_eq!(w2["ipmi_port"].as_integer(), Some(625));
    let nodes: Vec<&String> = cfg["nodes"].as_table().unwrap().keys().collect();
    assert_eq!(nodes, ["master", "worker-1", "worker-2"]);
    assert_eq!(
        cfg["services"]["ssh"]["ports"].as_array().unwrap()[0].as_str(),
        Some("2222:22/tcp")
    );
    assert_eq!(cfg["lab"]["name"].as_str(), Some("rancheros"));
}

// --- usage errors ---------------------------------------------------------------------------------------

#[test]
fn usage_errors_exit_2() {
    for args in [
        &["frobnicate"][..],
        &[],
        &["validate", "--bogus"],
        &["config", "--json=maybe"],
    ] {
        let o = lab(args);
        assert_exit(&o, 2, &format!("lab {}", args.join(" ")));
        assert!(
            stderr(&o).contains("Usage:") || stderr(&o).contains("error:"),
            "lab {}: {}",
            args.join(" "),
            stderr(&o)
        );
    }
    let o = lab(&["frobnicate"]);
    assert!(
        stderr(&o).contains("unrecognized subcommand 'frobnicate'"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn power_and_wait_name_their_own_bad_words() {
    let o = lab(&["wait", "--phase", "booting"]);
    assert_exit(&o, 2, "lab wait --phase booting");
    assert_eq!(
        stderr(&o).trim(),
        "error: invalid value 'booting' for '--phase <PHASE>'\n  [possible values: off, firmware, dhcp, pxe, kernel, provisioning, up]\n\nFor more information, try '--help'."
    );
    let o = lab(&["-f", "labs/smoke.toml", "console", "nope"]);
    assert_exit(&o, 2, "lab console nope");
    assert_eq!(
        stderr(&o).trim(),
        "error: labs/smoke.toml: lab `smoke` has no node `nope`\n  help: use one of: master, worker-1, worker-2"
    );
    let o = lab(&["power", "master", "explode"]);
    assert_exit(&o, 2, "lab power master explode");
    assert_eq!(
        stderr(&o).trim(),
        "error: lab power: unknown power action `explode`\n  help: use one of on, off, cycle, reset, status"
    );
    let o = lab(&["power", "--all", "on", "off"]);
    assert_exit(&o, 2, "lab power --all on off");
    assert_eq!(
        stderr(&o).trim(),
        "error: lab power takes NODE ACTION, or ACTION with --all\n  help: use `lab power NODE ACTION` or `lab power --all ACTION`"
    );
}

/// `lab logs -F` follows one container: without a name it is a usage error, before any engine.
#[test]
fn logs_follow_needs_a_name() {
    let o = lab(&["-f", "labs/smoke.toml", "logs", "-F"]);
    assert_exit(&o, 2, "lab logs -F");
    assert_eq!(
        stderr(&o).trim(),
        "error: `lab logs -F` follows one container\n  help: name a service or node: `lab logs NAME -F`"
    );
}

/// `lab down` works without the lab file when the lab is named; a missing file says so, with
/// the file's own error first (exit code 2, not a runtime failure).
#[test]
fn down_without_its_file_shows_the_name_hint() {
    let dir = tempfile::tempdir().unwrap();
    let o = Command::new(env!("CARGO_BIN_EXE_lab"))
        .current_dir(dir.path())
        .args(["down"])
        .output()
        .unwrap();
    assert_exit(&o, 2, "lab down without lab.toml");
    let err = stderr(&o);
    assert!(err.starts_with("error: lab.toml: cannot read"), "{err}");
    assert!(
        err.trim_end()
            .ends_with("help: to take a lab down without its file, name it: `lab down --name LAB`"),
        "{err}"
    );
}

#[test]
fn help_and_version_exit_0() {
    let o = lab(&["--help"]);
    assert_exit(&o, 0, "lab --help");
    for sub in ["validate", "config", "up", "down", "status"] {
        assert!(
            stdout(&o).contains(sub),
            "--help lists {sub}:\n{}",
            stdout(&o)
        );
    }
    let o = lab(&["--version"]);
    assert_exit(&o, 0, "lab --version");
    assert!(stdout(&o).starts_with("lab "), "{}", stdout(&o));
}

/// Names that are not in the lab are usage errors, found before any engine is asked.
#[test]
fn unknown_service_or_node_names_are_invalid_usage() {
    for args in [
        ["-f", "labs/playground.toml", "logs", "nope"],
        ["-f", "labs/playground.toml", "up", "nope"],
    ] {
        let out = lab(&args);
        assert_exit(&out, 2, &args.join(" "));
        let err = stderr(&out);
        assert!(
            err.contains("lab `playground` has no service or node named `nope`"),
            "{err}"
        );
        assert!(err.contains("use one of: dhcp, web, ssh, server"), "{err}");
    }
}

#[test]
fn a_closed_output_pipe_ends_lab_quietly() {
    // `lab config | head -0`: the reader is gone before lab prints.
    let (reader, writer) = std::io::pipe().expect("pipe");
    drop(reader);
    let out = Command::new(env!("CARGO_BIN_EXE_lab"))
        .current_dir(root())
        .args(["-f", "labs/smoke.toml", "config"])
        .stdout(writer)
        .output()
        .expect("run the lab binary");
    let err = stderr(&out);
    assert!(!err.contains("panicked"), "{err}");
    #[cfg(unix)]
    {
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(
            out.status.signal(),
            Some(13),
            "ends by SIGPIPE: {:?}",
            out.status
        );
    }
}
