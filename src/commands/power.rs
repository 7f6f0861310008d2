//! `lab power NODE ACTION` / `lab power --all ACTION`: a node's BMC, as `ipmitool` drives it.

use std::path::Path;
use std::time::Duration;

use anyhow::{bail, Context};
use clap::ValueEnum;
use futures_util::future::join_all;

use crate::cli::PowerAction;
use crate::engine::Engine;
use crate::error::{Error, Result};
use crate::lab::{Lab, Node};

pub async fn run(file: &Path, all: bool, words: &[String], timeout: Duration) -> Result<()> {
    let lab = super::load(file)?;
    let (nodes, action): (Vec<&Node>, _) = match (all, words) {
        (true, [action]) => (lab.nodes().iter().collect(), parse(action)?),
        (false, [node, action]) => {
            super::check_node(&lab, node)?;
            (lab.node(node).into_iter().collect(), parse(action)?)
        }
        _ => {
            return Err(Error::usage(
                "lab power takes NODE ACTION, or ACTION with --all",
                "use `lab power NODE ACTION` or `lab power --all ACTION`",
            ))
        }
    };
    // `power status` only asks; every other action changes the lab.
    let _lock = match action {
        PowerAction::Status => None,
        _ => Some(super::lock(lab.name(), timeout)?),
    };
    let engine = super::engine().await?;
    let results = join_all(nodes.iter().map(|n| bmc(&engine, &lab, n, action))).await;
    let mut failed = 0;
    for (n, r) in nodes.iter().zip(results) {
        match r {
            Ok(text) => println!("{}: {text}", n.name),
            Err(e) => {
                failed += 1;
                eprintln!("{}: {e:#}", n.name);
            }
        }
    }
    if failed > 0 {
        return Err(Error::Failed(anyhow::anyhow!(
            "{failed} of {} nodes did not answer; see `lab status`",
            nodes.len()
        )));
    }
    Ok(())
}

fn parse(word: &str) -> Result<PowerAction> {
    PowerAction::from_str(word, false).map_err(|_| {
        let all: Vec<String> = PowerAction::value_variants()
            .iter()
            .map(ToString::to_string)
            .collect();
        Error::usage(
            format!("lab power: unknown power action `{word}`"),
            format!("use one of {}", all.join(", ")),
        )
    })
}

/// Runs `ipmitool chassis power ACTION` against the node's BMC over IPMI (lanplus), from inside
/// its container, exactly as a user's ipmitool would talk to it.
async fn bmc<E: Engine>(
    engine: &E,
    lab: &Lab,
    n: &Node,
    action: PowerAction,
) -> anyhow::Result<String> {
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
        action.as_str(),
    ]
    .map(String::from)
    .to_vec();
    let container = lab.container_name(&n.name);
    let out = engine.exec(&container, &argv).await.with_context(|| {
        format!(
            "asking the BMC of `{}` (container {container}); is the lab up?",
            n.name
        )
    })?;
    let text = out.output.trim().to_string();
    if out.exit_code != 0 {
        bail!("the BMC answered: {text}");
    }
    Ok(text)
}
