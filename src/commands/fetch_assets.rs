//! `lab fetch-assets [NAME...]`: download and verify the lab's assets, or (`--check`) verify
//! what is on disk without any network.

use std::path::Path;

use crate::assets::{self, human_bytes, FileReport, Outcome};
use crate::error::Error;
use crate::lab::{Asset, Diag, Diagnostics, Lab};
use crate::ui::Progress;

pub struct Options {
    /// Only these assets (all when empty).
    pub names: Vec<String>,
    /// Fetch every file from `MIRROR/<file>` instead of `base_url`.
    pub mirror: Option<String>,
    /// Verify what is on disk; no network.
    pub check: bool,
}

pub fn run(file: &Path, opts: Options) -> crate::error::Result<()> {
    let lab = super::load(file)?;
    let selected = select(&lab, &opts.names)?;
    if selected.is_empty() {
        println!(
            "lab `{}` has no assets ([assets.NAME] tables): nothing to fetch",
            lab.name()
        );
        return Ok(());
    }
    let ui = Progress::auto();
    let reports = if opts.check {
        assets::check(&selected, &ui)
    } else {
        let fetch = assets::Options {
            mirror: opts.mirror.clone(),
            ..assets::Options::default()
        };
        assets::fetch(&selected, &fetch, &ui)
            .map_err(|e| Error::Fetch(anyhow::anyhow!("{e}\n  help: {}", e.help("", ""))))?
    };
    print_summary(&reports, opts.check);
    let failed: Vec<&FileReport> = reports.iter().filter(|r| !r.ok()).collect();
    if failed.is_empty() {
        return Ok(());
    }
    let mut msg = format!(
        "{} of {} files of lab `{}` {}:",
        failed.len(),
        reports.len(),
        lab.name(),
        if opts.check {
            "are missing or do not verify"
        } else {
            "failed"
        }
    );
    for r in failed {
        if let Err(e) = &r.result {
            let command = assets::fetch_command(&lab, &[r.asset.as_str()]);
            msg.push_str(&format!(
                "\n  asset `{}`, file `{}`: {e}\n    help: {}",
                r.asset,
                r.file,
                e.help(&r.asset, &command)
            ));
        }
    }
    Err(Error::Fetch(anyhow::anyhow!(msg)))
}

/// The assets named on the command line (all of them when none is), or what the lab has.
fn select<'a>(lab: &'a Lab, names: &[String]) -> Result<Vec<&'a Asset>, Diagnostics> {
    if names.is_empty() {
        return Ok(lab.assets().values().collect());
    }
    let mut out = Vec::new();
    let mut diags = Vec::new();
    for n in names {
        match lab.assets().get(n) {
            Some(a) if !out.iter().any(|o: &&Asset| o.name == a.name) => out.push(a),
            Some(_) => {}
            None => {
                let help = if lab.assets().is_empty() {
                    "add an [assets.NAME] table with base_url, files, checksums or sha256, and dest (see the README)".to_string()
                } else {
                    format!(
                        "use one of: {}",
                        lab.assets().keys().cloned().collect::<Vec<_>>().join(", ")
                    )
                };
                diags.push(Diag::file_level(
                    lab.file(),
                    format!("lab `{}` has no asset named `{n}`", lab.name()),
                    Some(help),
                ));
            }
        }
    }
    if diags.is_empty() {
        Ok(out)
    } else {
        Err(Diagnostics(diags))
    }
}

fn print_summary(reports: &[FileReport], check: bool) {
    let width = reports
        .iter()
        .map(|r| r.asset.len() + r.file.len() + 1)
        .max()
        .unwrap_or(0);
    let (mut downloaded, mut bytes, mut present, mut failed) = (0, 0u64, 0, 0);
    println!();
    for r in reports {
        let what = match &r.result {
            Ok(Outcome::Present) if check => "ok, sha256 verified".to_string(),
            Ok(Outcome::Present) => {
                present += 1;
                "already present, sha256 verified (not downloaded)".to_string()
            }
            Ok(Outcome::Downloaded(d)) => {
                downloaded += 1;
                bytes += d.size;
                format!("downloaded, {}", assets::downloaded_text(d))
            }
            Err(e) => {
                failed += 1;
                format!("FAILED: {e}")
            }
        };
        println!("  {:<width$}  {what}", format!("{}/{}", r.asset, r.file));
    }
    let files = match reports.len() {
        1 => "1 file".to_string(),
        n => format!("{n} files"),
    };
    if check {
        let verified = reports.len() - failed;
        println!("{files}: {verified} verified, {failed} missing or not verified");
    } else {
        let bytes = human_bytes(bytes);
        println!("{files}: {downloaded} downloaded ({bytes}), {present} already present, {failed} failed");
    }
}
