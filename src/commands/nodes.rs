//! Driving nodes like real servers: `lab power` through each node's BMC, and `lab wait` for boot
//! phases.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use futures_util::future::join_all;

use super::status::{self, Entry};
use crate::engine::{DockerEngine, Engine};
use crate::lab::Lab;
use crate::phase::Phase;

const POWER_ACTIONS: [&str; 5] = ["on", "off", "cycle", "reset", "status"];

/// `lab power NODE ACTION` or `lab power --all ACTION`.
pub async fn power(file: &Path, all: bool, words: &[String]) -> anyhow::Result<()> {
    let lab = super::load(file)?;
    let (nodes, action) = match (all, words) {
        (true, [action]) => (
            lab.nodes.iter().map(|n| n.name.clone()).collect(),
            action.as_str(),
        ),
        (false, [node, action]) => (vec![node.clone()], action.as_str()),
        _ => {
            return Err(usage(
                "power",
                "use `lab power NODE ACTION` or `lab power --all ACTION`",
            ))
        }
    };
    if !POWER_ACTIONS.contains(&action) {
        return Err(usage(
            "power",
            &format!(
                "unknown power action `{action}`: use one of {}",
                POWER_ACTIONS.join(", ")
            ),
        ));
    }
    for n in &nodes {
        known_node(&lab, n)?;
    }
    let engine = DockerEngine::connect().await?;
    let results = join_all(nodes.iter().map(|n| bmc(&engine, &lab, n, action))).await;
    let mut failed = 0;
    for (n, r) in nodes.iter().zip(results) {
        match r {
            Ok(text) => println!("{n}: {text}"),
            Err(e) => {
                failed += 1;
                eprintln!("{n}: {e:#}");
            }
        }
    }
    if failed > 0 {
        bail!(
            "{failed} of {} nodes did not answer; see `lab status`",
            nodes.len()
        );
    }
    Ok(())
}

fn usage(command: &str, msg: &str) -> anyhow::Error {
    crate::lab::Diagnostics(vec![crate::lab::Diag {
        file: "lab".into(),
        pos: None,
        key: command.into(),
        message: msg.into(),
        help: None,
    }])
    .into()
}

pub(crate) fn known_node(lab: &Lab, name: &str) -> anyhow::Result<()> {
    if lab.node(name).is_some() {
        return Ok(());
    }
    let names: Vec<&str> = lab.nodes.iter().map(|n| n.name.as_str()).collect();
    Err(super::unknown_name(
        lab,
        format!("lab `{}` has no node `{name}`", lab.name),
        &names,
    ))
}

/// Runs `ipmitool chassis power ACTION` against the node's BMC over IPMI (lanplus), from inside
/// its container, exactly as a user's ipmitool would talk to it.
async fn bmc<E: Engine>(engine: &E, lab: &Lab, node: &str, action: &str) -> anyhow::Result<String> {
    let n = lab.node(node).context("node vanished")?;
    let argv: Vec<String> = [
        "ipmitool",
        "-I",
        "lanplus",
        "-C",
        "3",
        "-H",
        "127.0.0.1",
        "-U",
        &n.bmc_user,
        "-P",
        &n.bmc_password,
        "chassis",
        "power",
        action,
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let container = lab.container_name(node);
    let out = engine.exec(&container, &argv).await.with_context(|| {
        format!("asking the BMC of `{node}` (container {container}); is the lab up?")
    })?;
    let text = out.output.trim().to_string();
    if out.exit_code != 0 {
        bail!("the BMC answered: {text}");
    }
    Ok(text)
}

/// `lab wait [NODE...] --phase P --timeout S`.
pub async fn wait(
    file: &Path,
    nodes: &[String],
    phase: &str,
    timeout: Duration,
) -> anyhow::Result<()> {
    let Some(target) = Phase::parse(phase) else {
        let all: Vec<&str> = Phase::ALL.iter().map(|p| p.as_str()).collect();
        return Err(usage(
            "wait",
            &format!("unknown phase `{phase}`: use one of {}", all.join(", ")),
        ));
    };
    let lab = super::load(file)?;
    for n in nodes {
        known_node(&lab, n)?;
    }
    let desired = super::up::desired(&lab, &[]);
    let boot = status::boot_files(&lab);
    let creds = status::bmc_credentials(&lab);
    let engine = DockerEngine::connect().await?;
    let wanted = |e: &Entry| nodes.is_empty() || nodes.contains(&e.name);
    let reached = |e: &Entry| match e.phase {
        Some(p) if target == Phase::Off => p == Phase::Off,
        Some(p) => p >= target,
        None => false,
    };
    let start = Instant::now();
    loop {
        let report = status::report(&engine, &lab.name, &desired.containers, &boot, &creds).await?;
        let selected: Vec<&Entry> = report.nodes.iter().filter(|e| wanted(e)).collect();
        if selected.iter().all(|e| reached(e)) {
            println!(
                "{} node(s) reached `{target}` after {:.1}s",
                selected.len(),
                start.elapsed().as_secs_f64()
            );
            return Ok(());
        }
        if start.elapsed() >= timeout {
            let mut lines = Vec::new();
            for e in selected {
                let phase = e.phase.map_or("unknown".to_string(), |p| p.to_string());
                lines.push(format!(
                    "  {}: {phase}{}",
                    e.name,
                    if reached(e) { "" } else { "  <- not there" }
                ));
                if !reached(e) {
                    lines.push(console_tail(&engine, &e.container).await);
                }
            }
            bail!(
                "not every node reached `{target}` within {}s:\n{}",
                timeout.as_secs(),
                lines.join("\n")
            );
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

/// The last lines of a node's serial console, which the node image logs to a file: as plain
/// text (no terminal escapes, no blank lines), for an error message.
async fn console_tail<E: Engine>(engine: &E, container: &str) -> String {
    let argv: Vec<String> = ["tail", "-n", "40", super::console::CONSOLE_LOG]
        .map(String::from)
        .to_vec();
    match engine.exec(container, &argv).await {
        Ok(out) if out.exit_code == 0 => {
            let lines: Vec<String> = out
                .output
                .lines()
                .map(plain_text)
                .filter(|l| !l.trim().is_empty())
                .collect();
            let text: Vec<String> = lines[lines.len().saturating_sub(10)..]
                .iter()
                .map(|l| format!("    | {l}"))
                .collect();
            format!("    last console lines:\n{}", text.join("\n"))
        }
        _ => "    (no console log)".to_string(),
    }
}

/// `line` without terminal escape sequences (colours, cursor moves) and control characters.
fn plain_text(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\u{1b}' => {
                // CSI: ESC [ parameters... final byte in @..~; other escapes: ESC and one char.
                if chars.next_if_eq(&'[').is_some() {
                    while let Some(p) = chars.next() {
                        if ('@'..='~').contains(&p) {
                            break;
                        }
                    }
                } else {
                    chars.next();
                }
            }
            '\t' => out.push(c),
            c if c.is_control() => {}
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::plain_text;

    #[test]
    fn console_lines_lose_terminal_escapes_and_control_characters() {
        assert_eq!(
            plain_text("\u{1b}[0;1miPXE 1.0.0\u{1b}[0m -- Open Source \u{1b}[0;36mhttp\r"),
            "iPXE 1.0.0 -- Open Source http"
        );
        assert_eq!(plain_text("worker-2:/# \u{1b}[6n"), "worker-2:/# ");
        assert_eq!(plain_text("a\tb\u{7}\u{1b}cX"), "a\tbX");
        assert_eq!(plain_text("ünïcode stays"), "ünïcode stays");
        assert_eq!(plain_text("\u{1b}["), "");
    }
}
