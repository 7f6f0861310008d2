//! `lab logs [NAME] [-F]`: a service's or node container's logs; without NAME, the last lines of
//! every container the lab has (a missing one is noted, not fatal).

use std::io::Write;
use std::path::Path;

use anyhow::Context;

use crate::engine::{Engine, EngineError};
use crate::error::{Error, Result};

pub async fn run(
    file: &Path,
    name: Option<String>,
    follow: bool,
    tail: Option<usize>,
) -> Result<()> {
    let lab = super::load(file)?;
    if let Some(n) = &name {
        super::check_names(&lab, std::slice::from_ref(n))?;
    }
    let engine = super::engine().await?;
    match name {
        Some(n) if follow => {
            let container = lab.container_name(&n);
            let mut out = std::io::stdout();
            engine
                .follow_logs(&container, tail, |chunk| {
                    let _ = out.write_all(chunk.as_bytes());
                    let _ = out.flush();
                })
                .await
                .with_context(|| format!("following the logs of {container}"))?;
            Ok(())
        }
        Some(n) => {
            let container = lab.container_name(&n);
            let text = engine
                .logs(&container, tail)
                .await
                .with_context(|| format!("reading the logs of {container}; is the lab up?"))?;
            print!("{text}");
            Ok(())
        }
        None if follow => Err(Error::usage(
            "`lab logs -F` follows one container",
            "name a service or node: `lab logs NAME -F`",
        )),
        None => {
            let names: Vec<&str> = lab
                .services()
                .iter()
                .map(|s| s.name.as_str())
                .chain(lab.nodes().iter().map(|n| n.name.as_str()))
                .collect();
            all(&engine, &lab, &names, tail.unwrap_or(20)).await
        }
    }
}

/// The last `tail` lines of each container, prefixed with its name; one that is missing or
/// unreadable is said so in its place. Fails only if none could be read.
async fn all<E: Engine>(
    engine: &E,
    lab: &crate::lab::Lab,
    names: &[&str],
    tail: usize,
) -> Result<()> {
    let texts = futures_util::future::join_all(names.iter().map(|n| {
        let container = lab.container_name(n);
        async move { engine.logs(&container, Some(tail)).await }
    }))
    .await;
    let width = names.iter().map(|n| n.len()).max().unwrap_or(0);
    let mut read = 0;
    let mut out = std::io::stdout().lock();
    for (n, text) in names.iter().zip(texts) {
        match text {
            Ok(text) => {
                read += 1;
                for line in text.lines() {
                    writeln!(out, "{n:>width$} | {line}")?;
                }
            }
            Err(EngineError::NotFound { .. }) => {
                writeln!(out, "{n:>width$} | (no container: run `lab up`)")?
            }
            Err(e) => writeln!(out, "{n:>width$} | (cannot read its logs: {e})")?,
        }
    }
    if read == 0 && !names.is_empty() {
        return Err(Error::Failed(anyhow::anyhow!(
            "lab `{}` has no containers to show logs of; is it up? (`lab up`)",
            lab.name()
        )));
    }
    Ok(())
}
