//! One file: download to `<dest>.part`, resume with a Range request, retry with backoff, verify
//! SHA-256, then rename into place. The destination never holds a partial or unverified file.
//! A download holds an exclusive lock on its `.part` file (`flock`), so that a second `lab
//! fetch-assets` of the same file is refused at once instead of writing into it too.

use std::fs::{self, File, OpenOptions};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};

use super::http::{is_stall, transient, Client};
use super::{Expected, FetchError, Options};
use crate::ui::Progress;

/// Attempts in a row that move the `.part` file no further before giving up.
const MAX_TOTAL_ATTEMPTS: u32 = 100;
const BUF: usize = 1024 * 1024;
/// Chunks read but not hashed yet, at most.
const CHUNKS_IN_FLIGHT: usize = 8;

/// A file to download.
pub struct Job<'a> {
    /// Progress key, e.g. `rancheros/vmlinuz`.
    pub key: String,
    pub url: String,
    pub dest: PathBuf,
    pub expected: &'a Expected,
}

/// A finished download.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Downloaded {
    pub size: u64,
    /// Size of a `.part` file left by an earlier run that this one resumed (0: none).
    pub resumed_from: u64,
    /// Failed attempts before the one that finished.
    pub retries: u32,
    pub elapsed: Duration,
}

/// `vmlinuz` -> `vmlinuz.part`, beside it.
pub fn part_path(dest: &Path) -> PathBuf {
    let mut name = dest
        .file_name()
        .map(|n| n.to_os_string())
        .unwrap_or_default();
    name.push(".part");
    dest.with_file_name(name)
}

enum Failure {
    /// Worth another try; `progressed` when the `.part` file grew.
    Transient(FetchError, bool),
    Fatal(FetchError),
}

/// What one attempt ended with.
struct Attempt {
    hash: String,
    size: u64,
}

pub fn download(
    client: &Client,
    job: &Job,
    opts: &Options,
    ui: &Progress,
) -> Result<Downloaded, FetchError> {
    let start = Instant::now();
    let part = part_path(&job.dest);
    if let Some(dir) = job.dest.parent() {
        fs::create_dir_all(dir).map_err(|e| FetchError::io(dir, e))?;
    }
    // Held until the file is renamed into place or deleted.
    let _lock = lock_part(&part)?;
    let resumed_from = fs::metadata(&part).map(|m| m.len()).unwrap_or(0);
    // Set when an attempt had to empty the `.part` file: then nothing was resumed after all.
    let mut restarted = false;
    ui.start_bytes(&job.key, &format!("downloading {}", job.url), None);
    if resumed_from > 0 {
        ui.update(
            &job.key,
            &format!("resuming at {}", human_bytes(resumed_from)),
        );
    }
    let (mut fruitless, mut total) = (0u32, 0u32);
    let attempt = loop {
        total += 1;
        match attempt(client, job, &part, ui, &mut restarted) {
            Ok(a) => break a,
            Err(Failure::Fatal(e)) => return Err(e),
            Err(Failure::Transient(e, progressed)) => {
                fruitless = if progressed { 0 } else { fruitless + 1 };
                if fruitless >= opts.attempts || total >= MAX_TOTAL_ATTEMPTS {
                    return Err(e);
                }
                let wait = backoff(opts.backoff, fruitless);
                ui.update(
                    &job.key,
                    &format!("{e}; retrying in {:.1}s", wait.as_secs_f64()),
                );
                std::thread::sleep(wait);
            }
        }
    };
    if attempt.hash != job.expected.sha256 {
        let _ = fs::remove_file(&part);
        return Err(FetchError::Mismatch {
            what: job.url.clone(),
            expected: job.expected.sha256.clone(),
            actual: attempt.hash,
            from: job.expected.from.clone(),
            deleted: true,
        });
    }
    fs::rename(&part, &job.dest).map_err(|e| FetchError::io(&job.dest, e))?;
    Ok(Downloaded {
        size: attempt.size,
        resumed_from: if restarted { 0 } else { resumed_from },
        retries: total - 1,
        elapsed: start.elapsed(),
    })
}

/// Opens `part` (created if missing, never truncated) and locks it exclusively for as long as
/// the returned file stays open; [`FetchError::Busy`] when another process (or download) holds
/// it. The lock belongs to the file, not the name: a holder that just renamed or deleted the
/// file it locked leaves a lock on a file that is no longer `part`, so the file at `part` is
/// opened again until the locked one is the one there.
pub(super) fn lock_part(part: &Path) -> Result<File, FetchError> {
    loop {
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(part)
            .map_err(|e| FetchError::io(part, e))?;
        if !try_lock(&file).map_err(|e| FetchError::io(part, e))? {
            return Err(FetchError::Busy {
                path: part.to_path_buf(),
            });
        }
        if same_file(&file, part) {
            return Ok(file);
        }
    }
}

/// An exclusive `flock` without waiting: `false` when another open file holds one.
#[cfg(unix)]
fn try_lock(file: &File) -> std::io::Result<bool> {
    use std::os::unix::io::AsRawFd;
    loop {
        // SAFETY: the descriptor is open for the duration of the call.
        if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } == 0 {
            return Ok(true);
        }
        let e = std::io::Error::last_os_error();
        match e.raw_os_error() {
            Some(libc::EWOULDBLOCK) => return Ok(false),
            Some(libc::EINTR) => continue,
            _ => return Err(e),
        }
    }
}

#[cfg(not(unix))]
fn try_lock(_: &File) -> std::io::Result<bool> {
    Ok(true)
}

#[cfg(unix)]
fn same_file(file: &File, path: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    match (file.metadata(), fs::metadata(path)) {
        (Ok(a), Ok(b)) => a.dev() == b.dev() && a.ino() == b.ino(),
        _ => false,
    }
}

#[cfg(not(unix))]
fn same_file(_: &File, path: &Path) -> bool {
    path.exists()
}

/// 0.5 s, 1 s, 2 s, ... (from `base`), at most 8 s.
pub(super) fn backoff(base: Duration, failures: u32) -> Duration {
    let factor = 1u32 << failures.saturating_sub(1).min(4);
    (base * factor).min(Duration::from_secs(8).max(base))
}

/// One request: from the end of the `.part` file when it has data, else from the start.
fn attempt(
    client: &Client,
    job: &Job,
    part: &Path,
    ui: &Progress,
    restarted: &mut bool,
) -> Result<Attempt, Failure> {
    let url = job.url.as_str();
    let offset = fs::metadata(part).map(|m| m.len()).unwrap_or(0);
    let mut req = client.agent(url).get(url);
    if offset > 0 {
        req = req.header("Range", format!("bytes={offset}-"));
    }
    let resp = match req.call() {
        Ok(r) => r,
        Err(e) if transient(&e) => {
            return Err(Failure::Transient(FetchError::network(url, &e), false))
        }
        Err(e) => return Err(Failure::Fatal(FetchError::network(url, &e))),
    };
    let status = resp.status().as_u16();
    let header = |name: &str| {
        resp.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    let length = header("content-length").and_then(|v| v.trim().parse::<u64>().ok());
    let range = header("content-range").and_then(|v| content_range(&v));
    let (start, size) = match status {
        206 if offset > 0 => match range {
            Some((Some(first), total)) if first == offset => {
                (offset, total.or(length.map(|l| offset + l)))
            }
            _ => {
                // A range we did not ask for: start over rather than splice the wrong bytes in.
                truncate(part)?;
                *restarted = true;
                let e = FetchError::BadRange {
                    url: url.to_string(),
                    offset,
                };
                return Err(Failure::Transient(e, false));
            }
        },
        200 | 206 => {
            if offset > 0 {
                *restarted = true;
                ui.update(
                    &job.key,
                    &format!(
                        "the server ignored the range request; starting over ({} discarded)",
                        human_bytes(offset)
                    ),
                );
            }
            (0, length)
        }
        416 if offset > 0 => {
            // Nothing past the end: the `.part` file may already be complete.
            if range.and_then(|(_, total)| total) == Some(offset) {
                let hash = super::sha256_file(part)
                    .map_err(|e| Failure::Fatal(FetchError::io(part, e)))?;
                return Ok(Attempt { hash, size: offset });
            }
            truncate(part)?;
            *restarted = true;
            return Err(Failure::Transient(
                FetchError::BadRange {
                    url: url.to_string(),
                    offset,
                },
                false,
            ));
        }
        _ => {
            let e = FetchError::http(url, &resp);
            return Err(if super::retryable(status) {
                Failure::Transient(e, false)
            } else {
                Failure::Fatal(e)
            });
        }
    };
    ui.set_bytes(&job.key, start, size);
    let mut file = if start > 0 {
        OpenOptions::new().append(true).open(part)
    } else {
        File::create(part)
    }
    .map_err(|e| Failure::Fatal(FetchError::io(part, e)))?;
    let mut body = resp.into_body().into_reader();
    // Hashing runs beside the transfer (SHA-256 and the socket are each about as fast as the
    // other on loopback): chunks go to a hashing thread and come back to be reused. It first
    // hashes the `start` bytes already in the `.part` file.
    let (done, hash) = std::thread::scope(|s| {
        let (to_hash, chunks) = mpsc::sync_channel::<Chunk>(CHUNKS_IN_FLIGHT);
        let (recycle, free) = mpsc::channel::<Vec<u8>>();
        let hashing = s.spawn(move || -> std::io::Result<String> {
            let mut hasher = Sha256::new();
            if start > 0 {
                hash_into(part, Some(start), &mut hasher)?;
            }
            for (chunk, len) in chunks {
                hasher.update(&chunk[..len]);
                let _ = recycle.send(chunk);
            }
            Ok(hex::encode(hasher.finalize()))
        });
        let copied = copy(&mut body, &mut file, &to_hash, &free, start, |done| {
            ui.set_bytes(&job.key, done, size)
        });
        drop(to_hash);
        let hash = match hashing.join() {
            Ok(Ok(h)) => Ok(h),
            Ok(Err(e)) => Err(FetchError::io(part, e)),
            Err(_) => Err(FetchError::io(
                part,
                std::io::Error::other("the hashing thread failed"),
            )),
        };
        (copied, hash)
    });
    let done = match done {
        Ok(done) => done,
        Err(CopyError::Write(e)) => return Err(Failure::Fatal(FetchError::io(part, e))),
        Err(CopyError::Read(e, done)) => {
            let err = if is_stall(&e) {
                FetchError::Stalled {
                    url: url.to_string(),
                    after: done,
                }
            } else {
                FetchError::Broken {
                    url: url.to_string(),
                    after: done,
                    message: e.to_string(),
                }
            };
            return Err(Failure::Transient(err, done > offset));
        }
    };
    let hash = hash.map_err(Failure::Fatal)?;
    if let Some(size) = size {
        if done != size {
            let e = FetchError::Broken {
                url: url.to_string(),
                after: done,
                message: format!("the connection closed after {done} of {size} bytes"),
            };
            return Err(Failure::Transient(e, done > offset));
        }
    }
    Ok(Attempt { hash, size: done })
}

/// A buffer and how many of its bytes are data.
type Chunk = (Vec<u8>, usize);

enum CopyError {
    /// Reading the body failed after this many bytes (offset in the file).
    Read(std::io::Error, u64),
    Write(std::io::Error),
}

/// Body -> file, in chunks of `BUF` bytes (the last may be shorter), each also sent to the
/// hashing thread with its length; returns the file's new length. Buffers come back from the
/// hashing thread full length, so they are never cleared again.
fn copy(
    body: &mut impl Read,
    file: &mut File,
    to_hash: &mpsc::SyncSender<Chunk>,
    free: &mpsc::Receiver<Vec<u8>>,
    start: u64,
    progress: impl Fn(u64),
) -> Result<u64, CopyError> {
    let mut done = start;
    loop {
        let mut buf = free.try_recv().unwrap_or_else(|_| vec![0u8; BUF]);
        let mut filled = 0;
        let mut failed = None;
        while filled < buf.len() {
            match body.read(&mut buf[filled..]) {
                Ok(0) => break,
                Ok(n) => {
                    filled += n;
                    progress(done + filled as u64);
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => {
                    failed = Some(e);
                    break;
                }
            }
        }
        // What arrived is kept even when the read failed: the next attempt resumes after it.
        file.write_all(&buf[..filled]).map_err(CopyError::Write)?;
        done += filled as u64;
        if let Some(e) = failed {
            return Err(CopyError::Read(e, done));
        }
        let last = filled < buf.len();
        if to_hash.send((buf, filled)).is_err() {
            // The hashing thread stopped (it failed reading the `.part` file): its error is
            // reported after the join.
            return Ok(done);
        }
        if last {
            return Ok(done);
        }
    }
}

/// Empties the `.part` file (the locked file itself: it is not replaced by another).
fn truncate(part: &Path) -> Result<(), Failure> {
    match OpenOptions::new().write(true).truncate(true).open(part) {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(Failure::Fatal(FetchError::io(part, e))),
    }
}

/// Hashes a file, or its first `limit` bytes.
fn hash_into(path: &Path, limit: Option<u64>, hasher: &mut Sha256) -> std::io::Result<()> {
    let mut f = File::open(path)?.take(limit.unwrap_or(u64::MAX));
    let mut buf = vec![0u8; 1 << 20];
    loop {
        match f.read(&mut buf)? {
            0 => return Ok(()),
            n => hasher.update(&buf[..n]),
        }
    }
}

/// SHA-256 of a file, lowercase hex. A second thread reads ahead while this one hashes, so the
/// rate is SHA-256's own rather than SHA-256's plus the copies out of the page cache.
pub fn sha256_file(path: &Path) -> std::io::Result<String> {
    let mut file = File::open(path)?;
    std::thread::scope(|s| {
        let (to_hash, chunks) = mpsc::sync_channel::<Chunk>(CHUNKS_IN_FLIGHT);
        let (recycle, free) = mpsc::channel::<Vec<u8>>();
        let reader = s.spawn(move || -> std::io::Result<()> {
            loop {
                let mut buf = free.try_recv().unwrap_or_else(|_| vec![0u8; BUF]);
                let mut filled = 0;
                while filled < buf.len() {
                    match file.read(&mut buf[filled..]) {
                        Ok(0) => break,
                        Ok(n) => filled += n,
                        Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                        Err(e) => return Err(e),
                    }
                }
                let last = filled < buf.len();
                if to_hash.send((buf, filled)).is_err() || last {
                    return Ok(());
                }
            }
        });
        let mut hasher = Sha256::new();
        for (chunk, len) in chunks {
            hasher.update(&chunk[..len]);
            let _ = recycle.send(chunk);
        }
        match reader.join() {
            Ok(Ok(())) => Ok(hex::encode(hasher.finalize())),
            Ok(Err(e)) => Err(e),
            Err(_) => Err(std::io::Error::other("the reading thread failed")),
        }
    })
}

/// `Content-Range: bytes 100-199/200` -> (Some(100), Some(200)); `bytes */200` -> (None, Some(200)).
fn content_range(v: &str) -> Option<(Option<u64>, Option<u64>)> {
    let rest = v.trim().strip_prefix("bytes")?.trim_start();
    let (range, total) = rest.split_once('/')?;
    let total = total.trim().parse::<u64>().ok();
    let first = range
        .split_once('-')
        .and_then(|(a, _)| a.trim().parse::<u64>().ok());
    Some((first, total))
}

/// `1536` -> `1.5 KiB`.
pub fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut unit = 0;
    while v >= 1024.0 && unit < UNITS.len() - 1 {
        v /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[unit])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_ranges() {
        assert_eq!(
            content_range("bytes 100-199/200"),
            Some((Some(100), Some(200)))
        );
        assert_eq!(content_range("bytes */200"), Some((None, Some(200))));
        assert_eq!(content_range("bytes 0-9/*"), Some((Some(0), None)));
        assert_eq!(content_range("items 1-2/3"), None);
    }

    #[test]
    fn backoff_doubles_up_to_a_cap() {
        let b = Duration::from_millis(500);
        let waits: Vec<u64> = (1..=7).map(|n| backoff(b, n).as_millis() as u64).collect();
        assert_eq!(waits, [500, 1000, 2000, 4000, 8000, 8000, 8000]);
    }

    #[test]
    fn a_part_file_is_locked_by_one_download_at_a_time() {
        let dir = tempfile::tempdir().unwrap();
        let part = dir.path().join("vmlinuz.part");
        std::fs::write(&part, b"first half").unwrap();
        let held = lock_part(&part).unwrap();
        match lock_part(&part) {
            Err(FetchError::Busy { path }) => assert_eq!(path, part),
            other => panic!("a second lock: {other:?}"),
        }
        assert_eq!(
            std::fs::read(&part).unwrap(),
            b"first half",
            "neither lock truncated it"
        );
        drop(held);
        let again = lock_part(&part).unwrap();
        // The holder renames its file into place: the name now holds a new, unlocked file.
        std::fs::rename(&part, dir.path().join("vmlinuz")).unwrap();
        let next = lock_part(&part).unwrap();
        assert!(same_file(&next, &part));
        assert_eq!(std::fs::metadata(&part).unwrap().len(), 0);
        drop(again);
    }

    #[test]
    fn part_names_and_sizes() {
        assert_eq!(
            part_path(Path::new("/w/rancheros/vmlinuz")),
            PathBuf::from("/w/rancheros/vmlinuz.part")
        );
        assert_eq!(human_bytes(512), "512 B");
        assert_eq!(human_bytes(1536), "1.5 KiB");
        assert_eq!(human_bytes(200 << 20), "200.0 MiB");
    }
}
