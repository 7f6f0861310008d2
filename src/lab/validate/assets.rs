//! `[assets.NAME]`: where files are downloaded from, how they are verified, where they go.

use std::collections::{BTreeMap, HashMap};
use std::path::{Component, Path, PathBuf};

use super::Validator;
use crate::assets::parse_base_url;
use crate::config::{RawAsset, RawConfig, Str};
use crate::lab::Asset;

impl Validator<'_> {
    pub(super) fn assets(&mut self, raw: &RawConfig) -> BTreeMap<String, Asset> {
        let mut out = BTreeMap::new();
        // Stored file (checksums included) -> its asset, so two assets do not write one file.
        let mut stored: HashMap<PathBuf, String> = HashMap::new();
        for (name, a) in &raw.assets {
            let key = format!("assets.{}", name.get_ref());
            self.asset_name(name.get_ref(), name.span(), &key);
            let Some(asset) = self.asset(name.get_ref(), a.get_ref(), &key, a.span()) else {
                continue;
            };
            let raw = a.get_ref();
            let names = raw.files.iter().chain(raw.checksums.iter());
            for file in asset.files.iter().chain(asset.checksums.iter()) {
                let span = names
                    .clone()
                    .find(|f| f.get_ref() == file)
                    .map(|f| f.span());
                let path = asset.path(file);
                if let Some(other) = stored.insert(path.clone(), asset.name.clone()) {
                    let msg = format!(
                        "`{file}` is stored at {} by asset `{other}` too",
                        path.display()
                    );
                    self.err(
                        span,
                        &key,
                        msg,
                        "give the assets different `dest` directories",
                    );
                }
            }
            out.insert(asset.name.clone(), asset);
        }
        out
    }

    fn asset(
        &mut self,
        name: &str,
        a: &RawAsset,
        key: &str,
        table: std::ops::Range<usize>,
    ) -> Option<Asset> {
        let base_url = self.asset_url(&a.base_url, &format!("{key}.base_url"));
        let mut files = Vec::new();
        let mut spans = Vec::new();
        for f in &a.files {
            let Some(file) = self.file_name(f, &format!("{key}.files")) else {
                continue;
            };
            if files.contains(&file) {
                self.err(
                    Some(f.span()),
                    format!("{key}.files"),
                    format!("`{file}` is listed twice"),
                    "list each file once",
                );
                continue;
            }
            files.push(file);
            spans.push(f.span());
        }
        if a.files.is_empty() {
            self.err(
                Some(table.clone()),
                format!("{key}.files"),
                "the asset lists no files",
                "add files = [\"NAME\", ...]: file names under base_url",
            );
        }
        let checksums = a
            .checksums
            .as_ref()
            .and_then(|c| self.file_name(c, &format!("{key}.checksums")));
        if let (Some(c), Some(span)) = (&checksums, a.checksums.as_ref().map(|c| c.span())) {
            if files.contains(c) {
                self.err(
                    Some(span),
                    format!("{key}.checksums"),
                    format!("`{c}` is listed in `files` too"),
                    "keep the checksums file out of `files`: lab downloads it anyway",
                );
            }
        }
        let mut sha256 = BTreeMap::new();
        // Names the file pins, even wrongly: a file with a bad pin is not also "unverifiable".
        let mut pinned: Vec<String> = Vec::new();
        for (file, hash) in &a.sha256 {
            let k = format!("{key}.sha256.{}", file.get_ref());
            let hash = match hash.get_ref() {
                toml::Value::String(h) => Str::new(hash.span(), h.clone()),
                toml::Value::Table(t) => {
                    // `rancheros.iso = "..."` is the table `rancheros` with the key `iso` to TOML.
                    let dotted = t.keys().next().map_or(file.get_ref().clone(), |k| {
                        format!("{}.{k}", file.get_ref())
                    });
                    let msg = format!("`{dotted}` needs quotes: unquoted, TOML reads a dotted name as a nested table");
                    self.err(
                        Some(file.span()),
                        format!("{key}.sha256"),
                        msg,
                        format!("write sha256 = {{ \"{dotted}\" = \"<64 hex digits>\" }}"),
                    );
                    pinned.push(dotted);
                    continue;
                }
                other => {
                    let msg = format!("the hash is a {}, not a string", other.type_str());
                    self.err(
                        Some(hash.span()),
                        &k,
                        msg,
                        "write the 64 hex digits in quotes",
                    );
                    pinned.push(file.get_ref().clone());
                    continue;
                }
            };
            pinned.push(file.get_ref().clone());
            if !a.files.iter().any(|f| f.get_ref() == file.get_ref()) {
                let listed: Vec<&str> = a.files.iter().map(|f| f.get_ref().as_str()).collect();
                let msg = format!(
                    "`{}` is not one of the files of this asset ({})",
                    file.get_ref(),
                    listed.join(", ")
                );
                self.err(
                    Some(file.span()),
                    &k,
                    msg,
                    "pin only files listed in `files`, or add the file to `files`",
                );
                continue;
            }
            let Some(h) = self.text(&hash, &k) else {
                continue;
            };
            let h = h.trim().to_ascii_lowercase();
            if h.len() != 64 || !h.chars().all(|c| c.is_ascii_hexdigit()) {
                let msg = format!("`{}` is not a SHA-256 hash", hash.get_ref());
                self.err(
                    Some(hash.span()),
                    &k,
                    msg,
                    "write the 64 hex digits `sha256sum FILE` prints",
                );
                continue;
            }
            sha256.insert(file.get_ref().clone(), h);
        }
        if checksums.is_none() && a.checksums.is_none() {
            for (f, span) in files.iter().zip(&spans) {
                if !pinned.contains(f) {
                    let msg = format!("`{f}` has no pinned sha256 and the asset names no checksums file, so it cannot be verified");
                    let help = format!("add checksums = \"FILE\" (a sha256sum list under base_url), or pin it: sha256 = {{ \"{f}\" = \"<64 hex digits>\" }}");
                    self.err(Some(span.clone()), format!("{key}.files"), msg, help);
                }
            }
        }
        let dest = self.asset_dest(&a.dest, &format!("{key}.dest"));
        Some(Asset {
            name: name.to_string(),
            base_url: base_url?,
            files,
            checksums,
            sha256,
            dest: dest?,
        })
    }

    /// Asset names are typed on the command line (`lab fetch-assets NAME`): keep them plain.
    fn asset_name(&mut self, name: &str, span: std::ops::Range<usize>, key: &str) {
        let ok = name.len() <= 63
            && name.starts_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
            && name
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "-_.".contains(c));
        if !ok {
            let msg = format!("`{name}` is not a valid asset name");
            self.err(Some(span), key, msg, "use up to 63 lowercase letters, digits, '-', '_' and '.', starting with a letter or digit (you type it after `lab fetch-assets`)");
        }
    }

    /// An `http://` or `https://` URL with a host; returned without a trailing `/`.
    fn asset_url(&mut self, s: &Str, key: &str) -> Option<String> {
        let t = self.text(s, key)?;
        match parse_base_url(&t) {
            Ok(url) => Some(url),
            Err(why) => {
                let msg = format!("`{t}` is not a download URL: {why}");
                self.err(Some(s.span()), key, msg, "write the directory the files are in, e.g. https://github.com/rancher/os/releases/download/v1.5.8");
                None
            }
        }
    }

    /// A plain file name under base_url: no directories, nothing a URL would need to escape.
    fn file_name(&mut self, s: &Str, key: &str) -> Option<String> {
        let t = self.text(s, key)?;
        let ok = !t.is_empty()
            && t != "."
            && t != ".."
            && !t.ends_with(".part")
            && t.chars()
                .all(|c| c.is_ascii_graphic() && !"/\\?#%".contains(c));
        if !ok {
            let msg = format!("`{t}` is not a file name");
            self.err(Some(s.span()), key, msg, "write a plain file name as it appears under base_url (no `/`, `?`, `#`, `%`, spaces, or a `.part` ending)");
            return None;
        }
        Some(t)
    }

    /// The directory files are stored in, relative to the lab file; created by `lab fetch-assets`.
    fn asset_dest(&mut self, s: &Str, key: &str) -> Option<PathBuf> {
        let t = self.text(s, key)?;
        if t.trim().is_empty() {
            self.err(
                Some(s.span()),
                key,
                "`dest` is empty",
                "name a directory relative to the lab file, e.g. webroot/rancheros",
            );
            return None;
        }
        let path = resolve(&self.dir.join(&t));
        if path.exists() && !path.is_dir() {
            let msg = format!("`{t}` is not a directory ({})", path.display());
            self.err(
                Some(s.span()),
                key,
                msg,
                "point `dest` at a directory (lab creates it when it is missing)",
            );
            return None;
        }
        Some(path)
    }
}

/// The canonical form of the longest existing ancestor, with the rest appended after removing
/// `.` and `..`: `labs/../webroot/rancheros` becomes `/x/webroot/rancheros` before it exists.
fn resolve(path: &Path) -> PathBuf {
    let mut clean = PathBuf::new();
    for c in path.components() {
        match c {
            Component::ParentDir => {
                clean.pop();
            }
            Component::CurDir => {}
            other => clean.push(other),
        }
    }
    let mut existing = clean.as_path();
    let mut rest = Vec::new();
    loop {
        if let Ok(real) = std::fs::canonicalize(existing) {
            return rest.iter().rev().fold(real, |p, c| p.join(c));
        }
        match (existing.parent(), existing.file_name()) {
            (Some(parent), Some(name)) => {
                rest.push(name.to_os_string());
                existing = parent;
            }
            _ => return clean,
        }
    }
}
