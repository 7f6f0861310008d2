//! `lab down`: removes everything of a lab, found by its labels alone.

use std::path::Path;
use std::time::Duration;

use anyhow::Context;

use crate::error::{Error, Result};

pub async fn run(
    file: &Path,
    volumes: bool,
    name: Option<String>,
    timeout: Duration,
) -> Result<()> {
    let (lab, state_dir) = match name {
        Some(n) => (n, None),
        None => {
            let lab = crate::lab::load(file).map_err(|d| {
                Error::invalid_with(
                    d,
                    "to take a lab down without its file, name it: `lab down --name LAB`",
                )
            })?;
            (lab.name().to_string(), Some(lab.state_dir()))
        }
    };
    let _lock = super::lock(&lab, timeout)?;
    let engine = super::engine().await?;
    let done = crate::apply::teardown(&engine, &lab, volumes).await?;
    if !done.errors.is_empty() {
        return Err(Error::Failed(anyhow::anyhow!(
            "could not remove everything of lab `{lab}`:\n  {}\nrun `lab down` again once the cause is fixed",
            done.errors.join("\n  ")
        )));
    }
    if volumes {
        if let Some(dir) = state_dir.filter(|d| d.exists()) {
            std::fs::remove_dir_all(&dir)
                .with_context(|| format!("removing generated files in {}", dir.display()))?;
        }
    }
    if done.removed.is_empty() {
        println!("lab `{lab}` is not up: nothing to remove");
    } else {
        println!("lab `{lab}` is down: removed {}", done.removed.join(", "));
    }
    Ok(())
}
