//! `lab status`: every service and node with state, addresses, endpoints, power and phase.

use std::path::Path;

use crate::error::{Error, Result};
use crate::observe::{Expected, Observer};
use crate::plan::{self, Host};

pub async fn run(file: &Path, json: bool, name: Option<String>) -> Result<()> {
    // With a file, list what it defines (absent ones too); with --name, what the labels say.
    let expected = match name {
        Some(n) => Expected::named(&n),
        None => {
            let lab = super::load(file)?;
            // Names, addresses and ports are all status needs: no rendering (a broken
            // cloud-config template is `up`'s to report).
            Expected::from_lab(&lab, &plan::desired(&lab, Vec::new(), Host::detect()))
        }
    };
    let engine = super::engine().await?;
    let observed = Observer::new(&engine, expected).observe().await?;
    if json {
        let text = serde_json::to_string_pretty(&observed).map_err(|e| Error::Failed(e.into()))?;
        println!("{text}");
    } else {
        print!("{}", crate::report::status(&observed));
    }
    Ok(())
}
