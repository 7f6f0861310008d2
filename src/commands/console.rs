//! `lab console NODE`: the node's serial console, as a BMC's Serial over LAN shows it.
//!
//! History first (the last lines of the console log that QEMU keeps in the node's volume,
//! `/var/lib/lab/console.log`, across power cycles and restarts), then the live console: the VM's
//! output on stdout, keystrokes to the VM, until Ctrl-] (on a terminal) or the end of stdin.
//! The node container's `lab-console` does the work on its side, through `lab-serial`, which
//! shares the serial port with ipmitool's `sol activate`, so both can be open at once.
//! A node whose container has stopped still shows its console log.

use std::io::{IsTerminal, Read, Write};
use std::path::Path;

use anyhow::Context;

use crate::engine::{Engine, EngineError};
use crate::error::{Error, Result};
use crate::observe::{self, CONSOLE_LOG};
/// Ctrl-], as telnet and `virsh console` use it.
const ESCAPE: u8 = 0x1d;

pub struct Options {
    pub node: String,
    /// Lines of history to show first; 0 shows the whole log.
    pub lines: usize,
    /// Only the history, then exit.
    pub no_follow: bool,
}

pub async fn run(file: &Path, opts: Options) -> Result<()> {
    let lab = super::load(file)?;
    super::check_node(&lab, &opts.node)?;
    let container = lab.container_name(&opts.node);
    let engine = super::engine().await?;
    let mut out = std::io::stdout();
    let follow = !opts.no_follow;
    let interactive = follow && std::io::stdin().is_terminal();
    let argv = vec![
        "lab-console".to_string(),
        opts.lines.to_string(),
        if follow { "1" } else { "0" }.to_string(),
    ];
    let (tx, rx) = tokio::sync::mpsc::channel::<Vec<u8>>(64);
    if follow {
        if interactive {
            eprintln!(
                "lab: console of node `{}` (Ctrl-] to leave); its log is {CONSOLE_LOG} in {container}",
                opts.node
            );
        }
        std::thread::spawn(move || feed_stdin(tx, interactive));
    } else {
        drop(tx);
    }
    let raw = if interactive { RawMode::enable() } else { None };
    let result = engine
        .exec_attached(&container, &argv, rx, |bytes| {
            let _ = out.write_all(bytes);
            let _ = out.flush();
        })
        .await;
    drop(raw);
    if interactive {
        eprintln!("\r\nlab: left the console of node `{}`", opts.node);
    }
    match result {
        Ok(0) => Ok(()),
        Ok(126 | 127) => Err(Error::Failed(anyhow::anyhow!(
            "node `{}` runs a node image without the console helper (made by an older lab): run `lab up` to update it",
            opts.node
        ))),
        Ok(code) => Err(Error::Failed(anyhow::anyhow!(
            "the console of node `{}` failed (lab-console exited with {code}); see `lab logs {}`",
            opts.node,
            opts.node
        ))),
        // The container exists but does not run (stopped, or its BMC died): its log remains.
        Err(EngineError::NotRunning { .. }) => {
            let log = observe::console_log(&engine, &container, opts.lines)
                .await
                .with_context(|| {
                    format!("node `{}` is not running and has no console log", opts.node)
                })?;
            eprintln!(
                "lab: node `{}` is not running (container {container} stopped); its console log:",
                opts.node
            );
            out.write_all(&log)?;
            out.flush()?;
            Ok(())
        }
        Err(e @ EngineError::NotFound { .. }) => Err(Error::Engine(anyhow::Error::new(e).context(
            format!("node `{}` has no container: run `lab up` first", opts.node),
        ))),
        Err(e) => Err(Error::Engine(
            anyhow::Error::new(e).context(format!("the console of node `{}`", opts.node)),
        )),
    }
}

/// Copies stdin to `tx` until it ends or, on a terminal, until Ctrl-]; dropping `tx` then
/// closes the console's input, and `lab-console` leaves.
fn feed_stdin(tx: tokio::sync::mpsc::Sender<Vec<u8>>, watch_escape: bool) {
    let mut stdin = std::io::stdin().lock();
    let mut buf = [0u8; 1024];
    loop {
        let n = match stdin.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        let (data, leave) = split_at_escape(&buf[..n], watch_escape);
        if !data.is_empty() && tx.blocking_send(data.to_vec()).is_err() {
            return;
        }
        if leave {
            return;
        }
    }
}

/// The bytes to send before the escape key, and whether it was pressed.
fn split_at_escape(buf: &[u8], watch_escape: bool) -> (&[u8], bool) {
    match buf.iter().position(|b| watch_escape && *b == ESCAPE) {
        Some(i) => (&buf[..i], true),
        None => (buf, false),
    }
}

/// The terminal in raw mode while the console is open: keys go to the VM as typed (Ctrl-C
/// included), and the VM's output is shown as it sends it.
struct RawMode;

impl RawMode {
    fn enable() -> Option<RawMode> {
        crossterm::terminal::enable_raw_mode().ok().map(|_| RawMode)
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        let _ = crossterm::terminal::disable_raw_mode();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escape_ends_input_and_is_not_sent() {
        assert_eq!(split_at_escape(b"ls\r\x1dmore", true), (&b"ls\r"[..], true));
        assert_eq!(split_at_escape(b"\x1d", true), (&b""[..], true));
        assert_eq!(split_at_escape(b"plain", true), (&b"plain"[..], false));
        // From a pipe, every byte is data.
        assert_eq!(split_at_escape(b"a\x1db", false), (&b"a\x1db"[..], false));
    }
}
