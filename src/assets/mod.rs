//! `lab fetch-assets`: download the files `[assets.NAME]` tables name, verify their SHA-256, and
//! check what is on disk.
//!
//! This module owns the transfer rules; the lab model only says what to fetch ([`Asset`]):
//! - a file is written to `<file>.part` and renamed into place only after its SHA-256 matched, so
//!   the destination never holds a partial or unverified file;
//! - a `.part` file left by an interrupted transfer is resumed with a Range request (and started
//!   over when the server answers 200 instead of 206);
//! - transient failures (connection errors, stalls, 5xx, 429) are retried with backoff;
//! - a file already present that matches its pinned hash, or the copy of the checksums file kept
//!   beside it, is skipped without any network traffic;
//! - the hash comes from the lab file (`sha256 = { file = "hex" }`) or else from the checksums file
//!   at `base_url`, which is stored beside the files once every file of the asset verified.
//!
//! [`missing_assets`] tells `lab up` and `lab status` which assets are not on disk yet.

mod checksums;
mod download;
mod http;
mod missing;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Duration;

pub use checksums::parse as parse_checksums;
pub use download::{human_bytes, part_path, sha256_file, Downloaded};
pub use missing::{fetch_command, missing_assets, MissingAsset};

use crate::lab::Asset;
use crate::ui::Progress;
use download::Job;
use http::{Client, Timeouts};

/// Largest checksums file lab reads (they are a few lines).
const MAX_CHECKSUMS_BYTES: u64 = 4 << 20;

/// How `fetch` transfers files.
#[derive(Debug, Clone)]
pub struct Options {
    /// Fetch every file, checksums included, from `MIRROR/<file>` instead of `base_url`.
    pub mirror: Option<String>,
    /// Files transferred at once.
    pub parallel: usize,
    pub connect_timeout: Duration,
    /// A transfer with no byte for this long is stalled: it is dropped and resumed.
    pub stall_timeout: Duration,
    /// Attempts in a row without progress before a file fails.
    pub attempts: u32,
    /// Wait after the first failure; it doubles after each further one (at most 8 s).
    pub backoff: Duration,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            mirror: None,
            parallel: 4,
            connect_timeout: Duration::from_secs(30),
            stall_timeout: Duration::from_secs(30),
            attempts: 5,
            backoff: Duration::from_millis(500),
        }
    }
}

/// The SHA-256 a file must have, and where that hash comes from (for messages).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Expected {
    pub sha256: String,
    /// e.g. `pinned in the lab file`, `checksums.txt at https://...`.
    pub from: String,
}

/// What happened to one file.
#[derive(Debug)]
pub enum Outcome {
    /// On disk already, and its SHA-256 matched.
    Present,
    Downloaded(Downloaded),
}

#[derive(Debug)]
pub struct FileReport {
    pub asset: String,
    pub file: String,
    /// Where it is (or would be) downloaded from.
    pub url: String,
    /// Where it is stored.
    pub path: PathBuf,
    pub result: Result<Outcome, FetchError>,
}

/// Why a file could not be fetched or verified.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error("HTTP {status}{} from {url}", if reason.is_empty() { String::new() } else { format!(" {reason}") })]
    Http {
        url: String,
        status: u16,
        reason: String,
    },
    #[error("cannot fetch {url}: {message}")]
    Network { url: String, message: String },
    #[error("the transfer from {url} stalled after {} (no data within the stall timeout)", human_bytes(*after))]
    Stalled { url: String, after: u64 },
    #[error("the transfer from {url} broke after {}: {message}", human_bytes(*after))]
    Broken {
        url: String,
        after: u64,
        message: String,
    },
    #[error("{url} answered the request for the bytes from {offset} on with another range")]
    BadRange { url: String, offset: u64 },
    #[error("SHA-256 mismatch for {what}: expected {expected} ({from}), got {actual}{}", if *deleted { "; the download was deleted" } else { "" })]
    Mismatch {
        what: String,
        expected: String,
        actual: String,
        from: String,
        deleted: bool,
    },
    #[error("{} is missing", path.display())]
    Missing { path: PathBuf },
    #[error("{checksums_url} lists no SHA-256 for `{file}`")]
    NotListed { file: String, checksums_url: String },
    #[error("not fetched: its SHA-256 comes from {url}, which could not be fetched")]
    NoChecksums { checksums: String, url: String },
    #[error("cannot verify it offline: no sha256 is pinned for it and {checksums} is not in {} yet", dest.display())]
    Unverifiable { checksums: String, dest: PathBuf },
    #[error("another lab process is downloading it (it holds {})", path.display())]
    Busy { path: PathBuf },
    #[error("{var}={value} is not a proxy URL: {message}")]
    Proxy {
        var: String,
        value: String,
        message: String,
    },
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

impl FetchError {
    fn io(path: &Path, source: std::io::Error) -> FetchError {
        FetchError::Io {
            path: path.to_path_buf(),
            source,
        }
    }

    fn network(url: &str, e: &ureq::Error) -> FetchError {
        let message = if http::unknown_host(e) {
            "host not found (no network or DNS? an air-gapped lab can use --mirror URL)".to_string()
        } else {
            e.to_string()
        };
        FetchError::Network {
            url: url.to_string(),
            message,
        }
    }

    /// What to do about it. `asset` names the `[assets.NAME]` table, `fetch` is the exact
    /// `lab fetch-assets` command for it.
    /// The answer `resp` of `url` when it is not what lab asked for.
    pub(crate) fn http<B>(url: &str, resp: &ureq::http::Response<B>) -> FetchError {
        FetchError::Http {
            url: url.to_string(),
            status: resp.status().as_u16(),
            reason: resp.status().canonical_reason().unwrap_or("").to_string(),
        }
    }

    pub fn help(&self, asset: &str, fetch: &str) -> String {
        match self {
            FetchError::Http { status: 404 | 410, .. } => format!("check `base_url` and `files` of [assets.{asset}]; with --mirror (or LAB_ASSET_MIRROR), check that the mirror has the file"),
            FetchError::Http { status, .. } if retryable(*status) => format!("the server failed after every retry: try again later (`{fetch}` resumes), or use --mirror URL"),
            FetchError::Http { .. } => format!("the server refused the request: check `base_url` of [assets.{asset}] and any proxy settings, or use --mirror URL"),
            FetchError::Network { .. } | FetchError::Stalled { .. } | FetchError::Broken { .. } | FetchError::BadRange { .. } => {
                format!("check the network and proxy settings (HTTPS_PROXY, HTTP_PROXY, NO_PROXY), then run `{fetch}` again: it resumes where it stopped")
            }
            FetchError::Mismatch { deleted: true, .. } => format!("the file served is not the one expected: if the release was replaced and you trust the new one, update its hash (sha256 in [assets.{asset}] or the checksums file); otherwise try another mirror"),
            FetchError::Mismatch { deleted: false, .. } | FetchError::Missing { .. } => format!("run `{fetch}` to download it"),
            FetchError::NotListed { file, .. } => format!("pin its hash in the lab file: sha256 = {{ \"{file}\" = \"<64 hex digits>\" }} in [assets.{asset}], or check the file name"),
            FetchError::NoChecksums { checksums, .. } => format!("see the error for {checksums}"),
            FetchError::Unverifiable { checksums, .. } => format!("run `{fetch}` (it fetches {checksums} too), or pin the hash with sha256 in [assets.{asset}]"),
            FetchError::Busy { .. } => format!("wait for the other `lab fetch-assets` to finish, then run `{fetch}` again: it finds the file in place"),
            FetchError::Proxy { var, .. } => format!("fix or unset {var}"),
            FetchError::Io { .. } => "check that the directory is writable and the disk has room".to_string(),
        }
    }
}

impl FileReport {
    pub fn ok(&self) -> bool {
        self.result.is_ok()
    }
}

/// `base_url/<file>`, or `mirror/<file>`.
pub fn url_of(asset: &Asset, file: &str, mirror: Option<&str>) -> String {
    format!(
        "{}/{file}",
        mirror.unwrap_or(&asset.base_url).trim_end_matches('/')
    )
}

/// Checks a download base URL (`[assets] base_url` or `--mirror`): `http(s)://HOST[:PORT][/PATH]`.
/// Returns it without a trailing `/`, or why it is not one.
pub fn parse_base_url(text: &str) -> Result<String, String> {
    let t = text.trim();
    let rest = match t.split_once("://") {
        Some((scheme, rest))
            if scheme.eq_ignore_ascii_case("http") || scheme.eq_ignore_ascii_case("https") =>
        {
            rest
        }
        Some((scheme, _)) => {
            return Err(format!("lab downloads over http and https, not `{scheme}`"))
        }
        None => return Err("it does not start with https:// or http://".into()),
    };
    let host = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let host = host.rsplit_once('@').map_or(host, |(_, h)| h);
    if host.is_empty() || host.starts_with(':') {
        return Err("it has no host".into());
    }
    if t.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err("it contains spaces".into());
    }
    if t.contains(['?', '#']) {
        return Err(
            "a base URL has no query or fragment (`?`, `#`): lab appends /FILE to it".into(),
        );
    }
    Ok(t.trim_end_matches('/').to_string())
}

/// `--mirror URL` as clap parses it: a base URL, or a usage error (exit code 2).
pub fn parse_mirror(text: &str) -> Result<String, String> {
    parse_base_url(text).map_err(|why| format!("`{text}` is not a mirror URL: {why}"))
}

fn key(asset: &str, file: &str) -> String {
    format!("{asset}/{file}")
}

/// Hashes known without the network: pinned ones, then the copy of the checksums file in `dest`.
fn local_hashes(asset: &Asset) -> BTreeMap<String, Expected> {
    let mut out = BTreeMap::new();
    if let Some(c) = &asset.checksums {
        let path = asset.path(c);
        if let Ok(text) = std::fs::read_to_string(&path) {
            for (file, sha256) in parse_checksums(&text) {
                out.insert(
                    file,
                    Expected {
                        sha256,
                        from: format!("{}", path.display()),
                    },
                );
            }
        }
    }
    for (file, sha256) in &asset.sha256 {
        out.insert(
            file.clone(),
            Expected {
                sha256: sha256.clone(),
                from: "pinned in the lab file".into(),
            },
        );
    }
    out
}

/// Whether the file on disk has the expected hash; `Err` for I/O errors other than absence.
fn verify_on_disk(path: &Path, expected: &Expected) -> Result<Option<String>, FetchError> {
    match sha256_file(path) {
        Ok(actual) if actual == expected.sha256 => Ok(None),
        Ok(actual) => Ok(Some(actual)),
        Err(e) => Err(FetchError::io(path, e)),
    }
}

/// Verifies what is on disk, without any network: every file must be present and match its
/// pinned hash or the local copy of the checksums file.
pub fn check(assets: &[&Asset], ui: &Progress) -> Vec<FileReport> {
    let mut files = Vec::new();
    for asset in assets {
        let known = local_hashes(asset);
        for file in &asset.files {
            files.push((*asset, file.clone(), known.get(file).cloned()));
        }
    }
    // Several files are hashed at once: one core hashes one file at SHA-256's rate.
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
    parallel(&files, cores, |(asset, file, expected)| {
        let path = asset.path(file);
        let k = key(&asset.name, file);
        ui.start(&k, "verifying");
        let result = if !path.is_file() {
            Err(FetchError::Missing { path: path.clone() })
        } else {
            match expected {
                None => Err(FetchError::Unverifiable {
                    checksums: asset.checksums.clone().unwrap_or_default(),
                    dest: asset.dest.clone(),
                }),
                Some(exp) => match verify_on_disk(&path, exp) {
                    Ok(None) => Ok(Outcome::Present),
                    Ok(Some(actual)) => Err(FetchError::Mismatch {
                        what: path.display().to_string(),
                        expected: exp.sha256.clone(),
                        actual,
                        from: exp.from.clone(),
                        deleted: false,
                    }),
                    Err(e) => Err(e),
                },
            }
        };
        match &result {
            Ok(_) => ui.finish(&k, true, "present, sha256 verified"),
            Err(e) => ui.finish(&k, false, &e.to_string()),
        }
        FileReport {
            asset: asset.name.clone(),
            file: file.clone(),
            url: url_of(asset, file, None),
            path,
            result,
        }
    })
}

/// A file that needs the network: to learn its hash, to be downloaded, or both.
struct Pending<'a> {
    asset: &'a Asset,
    file: String,
    /// Its report row, filled in later.
    row: usize,
    expected: Option<Expected>,
}

/// What a file already on disk turned out to be.
enum OnDisk {
    Verified,
    /// Its SHA-256 differs (and it was removed, if the hash is to be trusted).
    Mismatch,
    Failed(FetchError),
}

/// Verifies the file at `path` against `exp`, reporting under `k`. With `trusted`, a file that
/// does not match is removed so that it is downloaded again; without, it is left for a hash
/// from the source to decide.
fn verify_present(path: &Path, exp: &Expected, k: &str, trusted: bool, ui: &Progress) -> OnDisk {
    ui.start(k, "verifying the file on disk");
    match verify_on_disk(path, exp) {
        Ok(None) => {
            ui.finish(k, true, "already present, sha256 verified");
            OnDisk::Verified
        }
        Ok(Some(_)) if !trusted => {
            ui.update(
                k,
                "on disk, but not as the local checksums copy says: asking the source",
            );
            OnDisk::Mismatch
        }
        Ok(Some(_)) => {
            ui.update(
                k,
                "on disk, but its SHA-256 does not match: downloading it again",
            );
            match std::fs::remove_file(path) {
                Ok(()) => OnDisk::Mismatch,
                Err(e) => {
                    ui.finish(k, false, "cannot remove it");
                    OnDisk::Failed(FetchError::io(path, e))
                }
            }
        }
        Err(e) => {
            ui.finish(k, false, &e.to_string());
            OnDisk::Failed(e)
        }
    }
}

/// Downloads and verifies every file of `assets` that is not on disk and verified yet.
///
/// Returns one report per file (plus one for a checksums file that could not be fetched), in the
/// order of the assets and their files. `Err` only when the proxy settings are unusable.
pub fn fetch(
    assets: &[&Asset],
    opts: &Options,
    ui: &Progress,
) -> Result<Vec<FileReport>, FetchError> {
    let mirror = opts.mirror.as_deref();
    let mut rows: Vec<Option<FileReport>> = Vec::new();
    let mut pending: Vec<Pending> = Vec::new();
    // 1. Without network: what is present and verifies against a hash known locally.
    for asset in assets {
        let known = local_hashes(asset);
        for file in &asset.files {
            let path = asset.path(file);
            let row = rows.len();
            rows.push(None);
            let report = |result| {
                Some(FileReport {
                    asset: asset.name.clone(),
                    file: file.clone(),
                    url: url_of(asset, file, mirror),
                    path: path.clone(),
                    result,
                })
            };
            let expected = known.get(file).cloned();
            // A hash from the local checksums copy is not trusted to condemn a file or check a
            // new download: the checksums file at the source is fetched again below (pins
            // always hold), and a file that does not match the copy is verified against it.
            let pinned = asset.sha256.contains_key(file);
            if let Some(exp) = expected.as_ref().filter(|_| path.is_file()) {
                let k = key(&asset.name, file);
                match verify_present(&path, exp, &k, pinned, ui) {
                    OnDisk::Verified => {
                        rows[row] = report(Ok(Outcome::Present));
                        continue;
                    }
                    OnDisk::Failed(e) => {
                        rows[row] = report(Err(e));
                        continue;
                    }
                    OnDisk::Mismatch => {}
                }
            }
            let expected = expected.filter(|_| pinned);
            pending.push(Pending {
                asset,
                file: file.clone(),
                row,
                expected,
            });
        }
    }
    if pending.is_empty() {
        return Ok(rows.into_iter().flatten().collect());
    }
    let client = Client::from_env(Timeouts {
        connect: opts.connect_timeout,
        stall: opts.stall_timeout,
    })?;

    // 2. The checksums file of every asset with a file whose hash is not pinned.
    let mut fetched_sums: BTreeMap<String, String> = BTreeMap::new();
    let mut failed_sums: Vec<FileReport> = Vec::new();
    let mut needs: Vec<&Asset> = Vec::new();
    for p in pending.iter().filter(|p| p.expected.is_none()) {
        if !needs.iter().any(|a| a.name == p.asset.name) {
            needs.push(p.asset);
        }
    }
    for asset in needs {
        let Some(name) = &asset.checksums else {
            continue;
        };
        let url = url_of(asset, name, mirror);
        match get_checksums(&client, &key(&asset.name, name), &url, opts, ui) {
            Ok(text) => {
                let sums = parse_checksums(&text);
                for p in pending
                    .iter_mut()
                    .filter(|p| p.asset.name == asset.name && p.expected.is_none())
                {
                    p.expected = sums.get(&p.file).map(|h| Expected {
                        sha256: h.clone(),
                        from: format!("{name} at {url}"),
                    });
                }
                fetched_sums.insert(asset.name.clone(), text);
            }
            Err(e) => failed_sums.push(FileReport {
                asset: asset.name.clone(),
                file: name.clone(),
                url,
                path: asset.path(name),
                result: Err(e),
            }),
        }
    }

    // 3. Files present without a local hash may verify now; the rest are downloaded, at once.
    let mut jobs: Vec<(usize, Job)> = Vec::new();
    for p in &pending {
        let path = p.asset.path(&p.file);
        let url = url_of(p.asset, &p.file, mirror);
        let report = |result| {
            Some(FileReport {
                asset: p.asset.name.clone(),
                file: p.file.clone(),
                url: url.clone(),
                path: path.clone(),
                result,
            })
        };
        let Some(exp) = &p.expected else {
            let checksums = p.asset.checksums.clone().unwrap_or_default();
            let sums_url = url_of(p.asset, &checksums, mirror);
            let err = if fetched_sums.contains_key(&p.asset.name) {
                FetchError::NotListed {
                    file: p.file.clone(),
                    checksums_url: sums_url,
                }
            } else {
                FetchError::NoChecksums {
                    checksums,
                    url: sums_url,
                }
            };
            ui.finish(&key(&p.asset.name, &p.file), false, &err.to_string());
            rows[p.row] = report(Err(err));
            continue;
        };
        if path.is_file() {
            match verify_present(&path, exp, &key(&p.asset.name, &p.file), true, ui) {
                OnDisk::Verified => {
                    rows[p.row] = report(Ok(Outcome::Present));
                    continue;
                }
                OnDisk::Failed(e) => {
                    rows[p.row] = report(Err(e));
                    continue;
                }
                OnDisk::Mismatch => {}
            }
        }
        jobs.push((
            p.row,
            Job {
                key: key(&p.asset.name, &p.file),
                url,
                dest: path,
                expected: exp,
            },
        ));
    }
    let results = parallel(&jobs, opts.parallel, |(_, job)| {
        let r = download::download(&client, job, opts, ui);
        match &r {
            Ok(d) => ui.finish(&job.key, true, &downloaded_text(d)),
            Err(e) => ui.finish(&job.key, false, &e.to_string()),
        }
        r
    });
    for ((row, job), result) in jobs.iter().zip(results) {
        let p = pending.iter().find(|p| p.row == *row);
        if let Some(p) = p {
            rows[*row] = Some(FileReport {
                asset: p.asset.name.clone(),
                file: p.file.clone(),
                url: job.url.clone(),
                path: job.dest.clone(),
                result: result.map(Outcome::Downloaded),
            });
        }
    }

    // 4. Keep the checksums file beside files that all verified, for offline checks and skips.
    let mut extra = Vec::new();
    for asset in assets {
        let (Some(name), Some(text)) = (&asset.checksums, fetched_sums.get(&asset.name)) else {
            continue;
        };
        let all_ok = rows
            .iter()
            .flatten()
            .filter(|r| r.asset == asset.name)
            .all(FileReport::ok);
        if all_ok {
            let path = asset.path(name);
            if let Err(e) = crate::fsutil::write_atomically(&path, text.as_bytes(), 0o644) {
                extra.push(FileReport {
                    asset: asset.name.clone(),
                    file: name.clone(),
                    url: url_of(asset, name, mirror),
                    result: Err(FetchError::io(&path, e)),
                    path,
                });
            }
        }
    }
    let mut out = failed_sums;
    out.extend(rows.into_iter().flatten());
    out.extend(extra);
    Ok(out)
}

/// `8.0 MiB in 0.4s (20.1 MiB/s)`, with resumes and retries.
pub fn downloaded_text(d: &Downloaded) -> String {
    let secs = d.elapsed.as_secs_f64().max(0.001);
    let moved = d.size.saturating_sub(d.resumed_from);
    let mut s = format!(
        "{} in {secs:.1}s ({}/s), sha256 verified",
        human_bytes(d.size),
        human_bytes((moved as f64 / secs) as u64)
    );
    if d.resumed_from > 0 {
        s.push_str(&format!(", resumed at {}", human_bytes(d.resumed_from)));
    }
    if d.retries > 0 {
        s.push_str(&format!(
            ", after {} {}",
            d.retries,
            if d.retries == 1 { "retry" } else { "retries" }
        ));
    }
    s
}

/// A small file (a checksums list) into memory, with the same retries as downloads.
fn get_checksums(
    client: &Client,
    key: &str,
    url: &str,
    opts: &Options,
    ui: &Progress,
) -> Result<String, FetchError> {
    ui.start(key, &format!("fetching {url}"));
    let mut fruitless = 0;
    let result = loop {
        let e = match client.agent(url).get(url).call() {
            Ok(resp) if resp.status().as_u16() == 200 => {
                match resp
                    .into_body()
                    .with_config()
                    .limit(MAX_CHECKSUMS_BYTES)
                    .read_to_vec()
                {
                    Ok(bytes) => break Ok(String::from_utf8_lossy(&bytes).into_owned()),
                    Err(e) => (FetchError::network(url, &e), http::transient(&e)),
                }
            }
            Ok(resp) => {
                let status = resp.status().as_u16();
                (FetchError::http(url, &resp), retryable(status))
            }
            Err(e) => {
                let t = http::transient(&e);
                (FetchError::network(url, &e), t)
            }
        };
        fruitless += 1;
        if !e.1 || fruitless >= opts.attempts {
            break Err(e.0);
        }
        let wait = download::backoff(opts.backoff, fruitless);
        ui.update(
            key,
            &format!("{}; retrying in {:.1}s", e.0, wait.as_secs_f64()),
        );
        std::thread::sleep(wait);
    };
    match &result {
        Ok(text) => ui.finish(
            key,
            true,
            &format!("{} SHA-256 entries", parse_checksums(text).len()),
        ),
        Err(e) => ui.finish(key, false, &e.to_string()),
    }
    result
}

/// HTTP statuses worth another try: timeouts, too early, too many requests, server errors.
fn retryable(status: u16) -> bool {
    matches!(status, 408 | 425 | 429 | 500..=599)
}

/// Runs `f` on every item with at most `n` threads; results in the order of `items`.
fn parallel<T: Sync, R: Send>(items: &[T], n: usize, f: impl Fn(&T) -> R + Sync) -> Vec<R> {
    let next = AtomicUsize::new(0);
    let results: Mutex<Vec<Option<R>>> = Mutex::new((0..items.len()).map(|_| None).collect());
    std::thread::scope(|s| {
        for _ in 0..n.clamp(1, items.len().max(1)) {
            s.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::SeqCst);
                let Some(item) = items.get(i) else { break };
                let r = f(item);
                if let Ok(mut res) = results.lock() {
                    res[i] = Some(r);
                }
            });
        }
    });
    results
        .into_inner()
        .unwrap_or_else(|p| p.into_inner())
        .into_iter()
        .flatten()
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_urls() {
        assert_eq!(
            parse_base_url("https://github.com/rancher/os/releases/download/v1.5.8/").as_deref(),
            Ok("https://github.com/rancher/os/releases/download/v1.5.8")
        );
        assert_eq!(
            parse_base_url("http://127.0.0.1:8080").as_deref(),
            Ok("http://127.0.0.1:8080")
        );
        assert!(parse_base_url("ftp://x/y")
            .unwrap_err()
            .contains("not `ftp`"));
        assert!(parse_base_url("github.com/x")
            .unwrap_err()
            .contains("https://"));
        assert!(parse_base_url("https:///x")
            .unwrap_err()
            .contains("no host"));
        assert!(parse_base_url("https://x/a b")
            .unwrap_err()
            .contains("spaces"));
        assert!(parse_base_url("https://x/y?z=1")
            .unwrap_err()
            .contains("query"));
    }

    #[test]
    fn parallel_keeps_order() {
        let items: Vec<u32> = (0..20).collect();
        assert_eq!(
            parallel(&items, 3, |i| i * 2),
            (0..20).map(|i| i * 2).collect::<Vec<_>>()
        );
        assert!(parallel(&Vec::<u32>::new(), 3, |i| *i).is_empty());
    }
}
