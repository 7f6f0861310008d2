//! One writer per lab: `up`, `down` and `power` hold the lab's lock while they change it.
//!
//! The lock is an exclusive `flock` on `/tmp/metal-lab-<uid>/<lab>.lock`, keyed by the lab's
//! name alone: the name is what scopes the lab's Docker objects (`<lab>-net`, `<lab>-web`, ...),
//! so `lab down --name LAB` (no file) and `lab up` of any file naming that lab take the same
//! lock. The holder writes its pid and command line into the file, so a second process can say
//! who it waits for. The kernel releases a `flock` when its holder exits, however it exits
//! (SIGKILL included): a lock of a dead process is free at once, and the file left behind is
//! harmless. Read-only commands (`status`, `wait`, `logs`, `console`) never take it.

use std::fs::File;
use std::io::{Read, Seek, Write};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::Context;

/// How often a waiting process tries again.
const POLL: Duration = Duration::from_millis(100);

/// The lab's lock, held until dropped (or the process ends).
#[derive(Debug)]
pub struct LabLock {
    // Kept open: closing the file releases the lock.
    _file: File,
}

/// The directory of lab locks: `/tmp/metal-lab-<uid>`, private to the user. Not `$TMPDIR` or
/// `$XDG_RUNTIME_DIR`, which differ between sessions of one user (sudo, ssh, CI steps): every
/// `lab` of one user must find the same lock.
pub fn dir() -> PathBuf {
    PathBuf::from(format!("/tmp/metal-lab-{}", uid()))
}

/// The lock file of lab `name`.
pub fn path(name: &str) -> PathBuf {
    dir().join(format!("{}.lock", name.replace('/', "_")))
}

/// Takes the lock of lab `name`, waiting up to `timeout` for another process that holds it;
/// `waiting` is told once who holds it. Fails when the wait times out or the lock file cannot
/// be opened.
pub fn acquire(
    name: &str,
    timeout: Duration,
    waiting: impl FnOnce(&str),
) -> anyhow::Result<LabLock> {
    let path = path(name);
    make_dir()?;
    let mut file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .with_context(|| format!("opening the lock file {} of lab `{name}`", path.display()))?;
    let start = Instant::now();
    let mut waiting = Some(waiting);
    while !try_lock(&file)? {
        let holder = read_holder(&mut file);
        if let Some(tell) = waiting.take() {
            tell(&format!(
                "lab `{name}` is busy: {holder} is changing it; waiting up to {}s for it (lock {})",
                timeout.as_secs(),
                path.display()
            ));
        }
        if start.elapsed() >= timeout {
            anyhow::bail!(
                "lab `{name}` is still busy after {}s: {holder} holds its lock {}\n\
                 let it finish (or stop it), then run this again; raise --timeout to wait longer",
                timeout.as_secs(),
                path.display()
            );
        }
        std::thread::sleep(POLL);
    }
    // Ours now: say who holds it. A failure to write only makes a waiter's message vaguer.
    let me = format!(
        "pid {} (`{}`)",
        std::process::id(),
        std::env::args().collect::<Vec<_>>().join(" ")
    );
    let _ = file
        .set_len(0)
        .and_then(|()| file.rewind())
        .and_then(|()| file.write_all(format!("{me}\n").as_bytes()));
    Ok(LabLock { _file: file })
}

/// Who holds the lock, as its holder wrote it.
fn read_holder(file: &mut File) -> String {
    let mut text = String::new();
    let _ = file.rewind().and_then(|_| file.read_to_string(&mut text));
    match text.trim() {
        "" => "another lab process".to_string(),
        who => who.to_string(),
    }
}

/// Creates the lock directory private to the user, and refuses one another user owns (in a
/// shared /tmp anyone may create the name first).
fn make_dir() -> anyhow::Result<()> {
    let dir = dir();
    match std::fs::create_dir(&dir) {
        Ok(()) => crate::fsutil::set_mode(&dir, 0o700)
            .with_context(|| format!("making {} private", dir.display()))?,
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(e).with_context(|| format!("creating {}", dir.display())),
    }
    let meta = std::fs::symlink_metadata(&dir)
        .with_context(|| format!("checking the lock directory {}", dir.display()))?;
    if !meta.is_dir() || !owned_by_me(&meta) {
        anyhow::bail!(
            "the lock directory {} is not a directory of yours: remove it and run this again",
            dir.display()
        );
    }
    Ok(())
}

#[cfg(unix)]
fn uid() -> u32 {
    // SAFETY: getuid(2) has no preconditions and cannot fail.
    unsafe { libc::getuid() }
}

#[cfg(not(unix))]
fn uid() -> u32 {
    0
}

#[cfg(unix)]
fn owned_by_me(meta: &std::fs::Metadata) -> bool {
    use std::os::unix::fs::MetadataExt;
    meta.uid() == uid()
}

#[cfg(not(unix))]
fn owned_by_me(_: &std::fs::Metadata) -> bool {
    true
}

/// An exclusive `flock` without waiting: `false` when another open file holds it.
#[cfg(unix)]
fn try_lock(file: &File) -> anyhow::Result<bool> {
    use std::os::unix::io::AsRawFd;
    // SAFETY: flock(2) on a file descriptor this `File` owns and keeps open.
    if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } == 0 {
        return Ok(true);
    }
    let e = std::io::Error::last_os_error();
    match e.raw_os_error() {
        Some(libc::EWOULDBLOCK) => Ok(false),
        Some(libc::EINTR) => Ok(false),
        _ => Err(e).context("locking the lab's lock file"),
    }
}

#[cfg(not(unix))]
fn try_lock(_: &File) -> anyhow::Result<bool> {
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name(tag: &str) -> String {
        format!("locktest-{tag}-{}", std::process::id())
    }

    #[test]
    fn a_second_taker_waits_names_the_holder_and_times_out() {
        let lab = name("busy");
        let held = acquire(&lab, Duration::ZERO, |_| panic!("free lock")).unwrap();
        let mut told = String::new();
        let err = acquire(&lab, Duration::from_millis(250), |m| told = m.to_string())
            .unwrap_err()
            .to_string();
        let me = format!("pid {}", std::process::id());
        assert!(told.contains(&me) && told.contains("is busy"), "{told}");
        assert!(
            err.contains("still busy after 0s") && err.contains(&me),
            "{err}"
        );
        drop(held);
        // Released: the next taker gets it at once.
        let again = acquire(&lab, Duration::ZERO, |m| panic!("{m}"));
        assert!(again.is_ok());
        drop(again);
        let _ = std::fs::remove_file(path(&lab));
    }

    #[test]
    fn a_waiter_gets_the_lock_once_the_holder_lets_go() {
        let lab = name("wait");
        let held = acquire(&lab, Duration::ZERO, |_| panic!("free lock")).unwrap();
        let t = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(300));
            drop(held);
        });
        let start = Instant::now();
        let got = acquire(&lab, Duration::from_secs(10), |_| {});
        assert!(got.is_ok(), "{got:?}");
        assert!(start.elapsed() >= Duration::from_millis(200));
        t.join().unwrap();
        drop(got);
        let _ = std::fs::remove_file(path(&lab));
    }
}
