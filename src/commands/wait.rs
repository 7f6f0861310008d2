//! `lab wait [NODE...] --phase P [--boot-source S] --timeout S`: until every (named) node reached
//! a boot phase (in a boot from that device).

use std::path::Path;
use std::time::{Duration, Instant};

use crate::engine::Engine;
use crate::error::{Error, Result};
use crate::observe::{self, Expected, Member, Observer};
use crate::phase::{BootSource, Phase};
use crate::plan::{self, Host};

/// What `wait` waits for: a phase, and if given, in a boot from this device.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Target {
    pub phase: Phase,
    pub boot_source: Option<BootSource>,
}

impl std::fmt::Display for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.boot_source {
            Some(s) => write!(f, "{} (boot source {s})", self.phase),
            None => write!(f, "{}", self.phase),
        }
    }
}

pub async fn run(file: &Path, nodes: &[String], target: Target, timeout: Duration) -> Result<()> {
    if let (Phase::Off, Some(s)) = (target.phase, target.boot_source) {
        return Err(Error::Usage {
            message: format!("`--phase off --boot-source {s}` cannot be reached: a node that is off is not booted from anything"),
            help: "leave out --boot-source, or wait for a phase of a running node (e.g. --phase up)".into(),
        });
    }
    let lab = super::load(file)?;
    for n in nodes {
        super::check_node(&lab, n)?;
    }
    let expected = Expected::from_lab(&lab, &plan::desired(&lab, Vec::new(), Host::detect()));
    let engine = super::engine().await?;
    let mut observer = Observer::new(&engine, expected);
    let wanted = |m: &&Member| nodes.is_empty() || nodes.contains(&m.name);
    let start = Instant::now();
    loop {
        let observed = observer.observe().await?;
        let selected: Vec<&Member> = observed.nodes.iter().filter(wanted).collect();
        if selected.iter().all(|m| reached(m, target)) {
            println!(
                "{} node(s) reached `{target}` after {:.1}s",
                selected.len(),
                start.elapsed().as_secs_f64()
            );
            return Ok(());
        }
        if start.elapsed() >= timeout {
            let mut lines = Vec::new();
            for m in selected {
                let mut phase = m.phase.map_or("unknown".to_string(), |p| p.to_string());
                if target.boot_source.is_some() {
                    let from = m.boot_source.map_or("unknown", |s| s.as_str());
                    phase = format!("{phase}, boot source {from}");
                }
                let there = reached(m, target);
                lines.push(format!(
                    "  {}: {phase}{}",
                    m.name,
                    if there { "" } else { "  <- not there" }
                ));
                if !there {
                    lines.push(console_tail(&engine, &m.container).await);
                }
            }
            return Err(Error::NotReady(format!(
                "not every node reached `{target}` within {}s:\n{}",
                timeout.as_secs(),
                lines.join("\n")
            )));
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

/// `off` is reached only by being off; every other phase by being there or further, and with a
/// boot source, in a boot from there.
fn reached(m: &Member, target: Target) -> bool {
    let phase = match m.phase {
        Some(p) if target.phase == Phase::Off => p == Phase::Off,
        Some(p) => p >= target.phase,
        None => false,
    };
    phase && target.boot_source.is_none_or(|s| m.boot_source == Some(s))
}

/// The last lines of a node's serial console, for an error message: as plain text (no
/// terminal escapes, no blank lines). The log is in the node's volume, so a node whose container
/// stopped still has it, as `lab console` shows.
async fn console_tail<E: Engine>(engine: &E, container: &str) -> String {
    match observe::console_log(engine, container, 0).await {
        Ok(log) => {
            let text = String::from_utf8_lossy(&log);
            let lines: Vec<String> = text
                .lines()
                .map(plain_text)
                .filter(|l| !l.trim().is_empty())
                .collect();
            let tail: Vec<String> = lines[lines.len().saturating_sub(10)..]
                .iter()
                .map(|l| format!("    | {l}"))
                .collect();
            format!("    last console lines:\n{}", tail.join("\n"))
        }
        Err(e) => format!("    (no console log: {e})"),
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
                    for p in chars.by_ref() {
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
    use super::*;
    use crate::engine::{ContainerState, FakeEngine};

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

    /// The console log of a node whose container stopped is read as `lab console` reads it
    /// (from the volume), not by running `tail` in a container that cannot run it.
    #[tokio::test]
    async fn the_console_tail_of_a_stopped_node_comes_from_its_log() {
        let engine = FakeEngine::new();
        engine.add_container("t-n", ContainerState::Exited);
        engine.set_container_file(
            "t-n",
            observe::CONSOLE_LOG,
            b"\x1b[0;1miPXE\x1b[0m starting\n\nlab-smoke: node n is up\n",
        );
        let tail = console_tail(&engine, "t-n").await;
        assert_eq!(
            tail,
            "    last console lines:\n    | iPXE starting\n    | lab-smoke: node n is up"
        );
        assert!(console_tail(&engine, "t-missing")
            .await
            .starts_with("    (no console log: "));
    }
}
