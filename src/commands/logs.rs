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
    let engine = DockerEngine::connect().await?;
    let names: Vec<String> = match name {
        Some(n) if lab.service(&n).is_some() || lab.node(&n).is_some() => vec![n],
        Some(n) => {
            let all: Vec<&str> = lab
                .services
                .iter()
                .map(|s| s.name.as_str())
                .chain(lab.nodes.iter().map(|n| n.name.as_str()))
                .collect();
            return Err(crate::lab::Diagnostics(vec![crate::lab::Diag::file_level(
                &lab.file,
                format!("lab `{}` has no service or node `{n}`", lab.name),
                Some(format!("use one of: {}", all.join(", "))),
            )])
            .into());
        }
        None => lab
            .services
            .iter()
            .map(|s| s.name.clone())
            .chain(lab.nodes.iter().map(|n| n.name.clone()))
            .collect(),
    };
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
