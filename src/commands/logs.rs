//! `lab logs [NAME] [-f]`: a service's or node container's logs.

use std::io::Write;
use std::path::Path;

use anyhow::Context;

use crate::engine::{DockerEngine, Engine};

pub async fn run(
    file: &Path,
    name: Option<String>,
    follow: bool,
    tail: Option<usize>,
) -> anyhow::Result<()> {
    let lab = super::load(file)?;
    let names: Vec<String> = match name {
        Some(n) => {
            super::check_names(&lab, std::slice::from_ref(&n))?;
            vec![n]
        }
        None => lab
            .services
            .iter()
            .map(|s| s.name.clone())
            .chain(lab.nodes.iter().map(|n| n.name.clone()))
            .collect(),
    };
    let engine = DockerEngine::connect().await?;
    if follow {
        if names.len() != 1 {
            anyhow::bail!("`lab logs -f` follows one container: name a service or node");
        }
        let container = lab.container_name(&names[0]);
        let mut out = std::io::stdout();
        return Ok(engine
            .follow_logs(&container, tail, |chunk| {
                let _ = out.write_all(chunk.as_bytes());
                let _ = out.flush();
            })
            .await
            .with_context(|| format!("following the logs of {container}"))?);
    }
    let many = names.len() > 1;
    for n in &names {
        let container = lab.container_name(n);
        let text = engine
            .logs(&container, tail.or(if many { Some(20) } else { None }))
            .await
            .with_context(|| format!("reading the logs of {container}; is the lab up?"))?;
        for line in text.lines() {
            if many {
                println!("{n:>10} | {line}");
            } else {
                println!("{line}");
            }
        }
    }
    Ok(())
}
