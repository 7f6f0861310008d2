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
    match &name {
        Some(n) => super::check_names(&lab, std::slice::from_ref(n))?,
        None if follow => {
            return Err(Error::usage(
                "`lab logs -F` follows one container",
                "name a service or node: `lab logs NAME -F`",
            ))
        }
        None => {}
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
        None => {
            let names = lab.member_names();
            let containers: Vec<String> = names.iter().map(|n| lab.container_name(n)).collect();
            let text = all(&engine, &names, &containers, tail.unwrap_or(20))
                .await
                .ok_or_else(|| {
                    Error::Failed(anyhow::anyhow!(
                        "lab `{}` has no containers to show logs of; is it up? (`lab up`)",
                        lab.name()
                    ))
                })?;
            print!("{text}");
            Ok(())
        }
    }
}

/// The last `tail` lines of each container (`containers[i]` of member `names[i]`), prefixed with
/// the member's name; one that is missing or unreadable is said so in its place. `None` if none
/// could be read.
async fn all<E: Engine>(
    engine: &E,
    names: &[&str],
    containers: &[String],
    tail: usize,
) -> Option<String> {
    let texts = futures_util::future::join_all(
        containers
            .iter()
            .map(|c| async move { engine.logs(c, Some(tail)).await }),
    )
    .await;
    let width = names.iter().map(|n| n.len()).max().unwrap_or(0);
    let mut read = 0;
    let mut out = String::new();
    for (n, text) in names.iter().zip(texts) {
        match text {
            Ok(text) => {
                read += 1;
                for line in text.lines() {
                    out.push_str(&format!("{n:>width$} | {line}\n"));
                }
            }
            Err(EngineError::NotFound { .. }) => {
                out.push_str(&format!("{n:>width$} | (no container: run `lab up`)\n"))
            }
            Err(e) => out.push_str(&format!("{n:>width$} | (cannot read its logs: {e})\n")),
        }
    }
    (read > 0 || names.is_empty()).then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::{ContainerState, FakeEngine};

    /// Without a name, every container that can be read is shown; a missing one is noted in its
    /// place instead of ending the command.
    #[tokio::test]
    async fn every_container_it_can_and_a_note_for_the_missing_one() {
        let engine = FakeEngine::new();
        engine.add_container("t-web", ContainerState::Running);
        engine.set_logs(
            "t-web",
            "2026-11-21T01:00:00Z GET /\n2026-11-21T01:00:01Z GET /x\n",
        );
        engine.add_container("t-n", ContainerState::Exited);
        engine.set_logs("t-n", "2026-11-21T01:00:02Z lab: power on\n");
        let names = ["dhcp", "web", "n"];
        let containers = ["t-dhcp", "t-web", "t-n"].map(String::from);
        let text = all(&engine, &names, &containers, 20).await.unwrap();
        assert_eq!(
            text,
            "dhcp | (no container: run `lab up`)\n web | GET /\n web | GET /x\n   n | lab: power on\n"
        );
        assert_eq!(all(&engine, &["x"], &["t-x".to_string()], 20).await, None);
    }
}
