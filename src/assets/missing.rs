//! Which assets are not on disk yet, and which nodes boot them: for `lab up` to warn before it
//! starts nodes that would fail to boot, and for `lab status` to say why a node is stuck.

use std::fmt;
use std::path::{Path, PathBuf};

use crate::lab::Lab;

/// An asset with files missing from its `dest`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MissingAsset {
    pub asset: String,
    /// Missing file names, in the order of the asset's `files`.
    pub files: Vec<String>,
    /// Nodes whose profile boots one of those files (kernel or initrd), in the lab's order.
    pub nodes: Vec<String>,
    /// The exact command that fetches it, e.g. `lab fetch-assets -f labs/rancheros.toml rancheros`.
    pub command: String,
}

impl fmt::Display for MissingAsset {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "asset `{}` is not downloaded yet ({} missing)",
            self.asset,
            self.files.join(", ")
        )?;
        if !self.nodes.is_empty() {
            write!(f, "; {} cannot boot until it is", self.nodes.join(", "))?;
        }
        write!(f, ": run `{}`", self.command)
    }
}

/// Every asset of the lab with a file that is not in its `dest`. Only looks at the disk (whether
/// each file exists; `lab fetch-assets` never leaves an unverified file there), never the network.
pub fn missing_assets(lab: &Lab) -> Vec<MissingAsset> {
    let web_root = lab.web_root();
    let mut out = Vec::new();
    for asset in lab.assets().values() {
        let files: Vec<String> = asset
            .files
            .iter()
            .filter(|f| !asset.path(f).is_file())
            .cloned()
            .collect();
        if files.is_empty() {
            continue;
        }
        let paths: Vec<PathBuf> = files.iter().map(|f| asset.path(f)).collect();
        let nodes = lab
            .nodes()
            .iter()
            .filter(|n| {
                let profile = lab.profile_of(n);
                let boots = profile
                    .into_iter()
                    .flat_map(|p| p.kernel.iter().chain(p.initrd.iter()));
                boots
                    .filter_map(|f| crate::lab::web_path(f))
                    .filter_map(|rel| Some(web_root?.join(rel)))
                    .any(|p| paths.iter().any(|m| same_file(m, &p)))
            })
            .map(|n| n.name.clone())
            .collect();
        out.push(MissingAsset {
            asset: asset.name.clone(),
            files,
            nodes,
            command: fetch_command(lab, &[asset.name.as_str()]),
        });
    }
    out
}

/// `lab fetch-assets [-f FILE] NAME...`: `-f` only when the lab file is not the default `lab.toml`.
pub fn fetch_command(lab: &Lab, names: &[&str]) -> String {
    let mut cmd = String::from("lab fetch-assets");
    if lab.file() != Path::new("lab.toml") {
        cmd.push_str(" -f ");
        cmd.push_str(&shell_word(&lab.file().display().to_string()));
    }
    for n in names {
        cmd.push(' ');
        cmd.push_str(n);
    }
    cmd
}

/// Quotes a word for a POSIX shell when it needs it.
fn shell_word(s: &str) -> String {
    if !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./=:,+@%".contains(c))
    {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', "'\\''"))
    }
}

/// The same path once `.` and `..` are resolved lexically (the files may not exist).
fn same_file(a: &Path, b: &Path) -> bool {
    fn clean(p: &Path) -> PathBuf {
        let mut out = PathBuf::new();
        for c in p.components() {
            match c {
                std::path::Component::ParentDir => {
                    out.pop();
                }
                std::path::Component::CurDir => {}
                other => out.push(other),
            }
        }
        out
    }
    clean(a) == clean(b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_are_quoted_only_when_needed() {
        assert_eq!(shell_word("labs/rancheros.toml"), "labs/rancheros.toml");
        assert_eq!(shell_word("my labs/a.toml"), "'my labs/a.toml'");
        assert_eq!(shell_word("it's"), "'it'\\''s'");
    }

    #[test]
    fn paths_compare_after_dot_dot() {
        assert!(same_file(
            Path::new("/x/labs/../webroot/a"),
            Path::new("/x/webroot/./a")
        ));
        assert!(!same_file(
            Path::new("/x/webroot/a"),
            Path::new("/x/webroot/b")
        ));
    }
}
