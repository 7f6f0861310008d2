//! `lab inventory`: the nodes as a provisioner enrols them (see [`crate::inventory`]).

use std::io::Write;
use std::path::Path;

use anyhow::Context;

use crate::error::{Error, Result};
use crate::inventory::{self, Options};

pub fn run(file: &Path, opts: &Options) -> Result<()> {
    let lab = super::load(file)?;
    let text = inventory::render(&lab, opts).map_err(|p| Error::usage(p.message, p.help))?;
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes())
        .and_then(|()| out.flush())
        .context("writing the inventory to stdout")?;
    Ok(())
}
