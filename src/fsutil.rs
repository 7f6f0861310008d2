//! Files and directories that appear whole or not at all, even when several `lab` processes
//! (or threads of one) write the same ones at once: each writer uses its own temporary name
//! beside the target (`.<name>.<pid>.<n>.tmp`) and renames it into place.

use std::ffi::OsStr;
use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

static COUNTER: AtomicU64 = AtomicU64::new(0);

const TEMP_SUFFIX: &str = ".tmp";

/// A temporary sibling of `path` that no other writer uses: `.<name>.<pid>.<n>.tmp`, with a
/// counter unique within this process.
pub fn temp_path(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    path.with_file_name(format!(".{name}.{}.{n}{TEMP_SUFFIX}", std::process::id()))
}

/// The process id in a name made by [`temp_path`], if it is one.
fn temp_owner(name: &OsStr) -> Option<u32> {
    let name = name
        .to_str()?
        .strip_prefix('.')?
        .strip_suffix(TEMP_SUFFIX)?;
    let mut parts = name.rsplitn(3, '.');
    let (_n, pid) = (parts.next()?.parse::<u64>().ok()?, parts.next()?);
    parts.next().filter(|rest| !rest.is_empty())?;
    pid.parse().ok()
}

/// Whether `name` is a temporary name of [`temp_path`]'s (of any process).
pub fn is_temp(name: &OsStr) -> bool {
    temp_owner(name).is_some()
}

/// Whether `name` is a temporary name whose process is gone (left by a crash): safe to remove.
/// Another live process's temporary file is still being written and must be left alone.
pub fn is_stale_temp(name: &OsStr) -> bool {
    temp_owner(name).is_some_and(|pid| !process_alive(pid))
}

#[cfg(unix)]
fn process_alive(pid: u32) -> bool {
    let Ok(pid) = libc::pid_t::try_from(pid) else {
        return false;
    };
    // Signal 0 only checks that the process exists (EPERM: it does, owned by someone else).
    // SAFETY: kill with signal 0 sends nothing.
    let rc = unsafe { libc::kill(pid, 0) };
    rc == 0 || io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
}

#[cfg(not(unix))]
fn process_alive(_: u32) -> bool {
    true
}

/// Writes `path` (its directory created if missing) with permission bits `mode`, through a
/// temporary file beside it that is renamed over it: a reader sees the old contents or the new
/// ones, never part of them, and concurrent writers never share a temporary file. The
/// temporary file is removed when anything fails.
pub fn write_atomically(path: &Path, data: &[u8], mode: u32) -> io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    fs::create_dir_all(dir)?;
    let tmp = temp_path(path);
    let result = (|| {
        let mut f = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&tmp)?;
        f.write_all(data)?;
        set_mode(&tmp, mode)?;
        fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

#[cfg(unix)]
pub fn set_mode(path: &Path, mode: u32) -> io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(path, fs::Permissions::from_mode(mode & 0o7777))
}

#[cfg(not(unix))]
pub fn set_mode(_: &Path, _: u32) -> io::Result<()> {
    Ok(())
}

/// Puts the directory tree `tmp` (made by the caller, e.g. at [`temp_path`]`(dir)`) in place at
/// `dir`. When `dir` is absent it is a rename. When `dir` exists and `keep(dir)` says it already
/// holds what is wanted (another process just put the same tree there), `tmp` is discarded and
/// `dir` left alone, so a reader of it is never disturbed. Otherwise the two are exchanged in one
/// step (Linux `renameat2(RENAME_EXCHANGE)`) and the old tree removed: readers of `dir` see the
/// old tree or the new one, never a missing or half-written one. `tmp` is gone afterwards.
pub fn install_dir(tmp: &Path, dir: &Path, keep: impl Fn(&Path) -> bool) -> io::Result<()> {
    let result = match fs::rename(tmp, dir) {
        Ok(()) => return Ok(()),
        Err(e) if fs::symlink_metadata(dir).is_ok() => {
            if keep(dir) {
                Ok(())
            } else {
                exchange(tmp, dir).map_err(|x| io::Error::new(x.kind(), format!("{e}; {x}")))
            }
        }
        Err(e) => Err(e),
    };
    // `tmp` now holds our unused tree or the replaced one.
    let _ = fs::remove_dir_all(tmp);
    result
}

/// Swaps two paths atomically.
#[cfg(any(target_os = "linux", target_os = "android"))]
fn exchange(a: &Path, b: &Path) -> io::Result<()> {
    use std::ffi::CString;
    use std::os::unix::ffi::OsStrExt;
    let c = |p: &Path| {
        CString::new(p.as_os_str().as_bytes())
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))
    };
    let (ca, cb) = (c(a)?, c(b)?);
    // SAFETY: both are valid NUL-terminated paths; AT_FDCWD makes them relative to the cwd.
    let rc = unsafe {
        libc::renameat2(
            libc::AT_FDCWD,
            ca.as_ptr(),
            libc::AT_FDCWD,
            cb.as_ptr(),
            libc::RENAME_EXCHANGE,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Without an atomic exchange: the old tree is moved aside first (a brief moment without one).
#[cfg(not(any(target_os = "linux", target_os = "android")))]
fn exchange(a: &Path, b: &Path) -> io::Result<()> {
    let aside = temp_path(b);
    fs::rename(b, &aside)?;
    fs::rename(a, b)?;
    fs::rename(&aside, a)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn temporary_names_are_unique_and_recognised() {
        let a = temp_path(Path::new("/s/web/boot.ipxe"));
        let b = temp_path(Path::new("/s/web/boot.ipxe"));
        assert_ne!(a, b);
        assert_eq!(a.parent(), Some(Path::new("/s/web")));
        let name = a.file_name().unwrap();
        assert!(name.to_str().unwrap().starts_with(".boot.ipxe."), "{a:?}");
        assert_eq!(temp_owner(name), Some(std::process::id()));
        assert!(is_temp(name));
        assert!(!is_stale_temp(name), "this process is alive");
        for other in [
            "boot.ipxe",
            ".boot.ipxe.tmp",
            ".x.12.tmp",
            "vmlinuz.part",
            ".a.b.c.tmp",
        ] {
            assert!(!is_temp(OsStr::new(other)), "{other}");
        }
        // A pid that cannot exist (above the kernel's pid_max limit).
        assert!(is_stale_temp(OsStr::new(".boot.ipxe.4194305.0.tmp")));
    }

    #[test]
    fn a_failed_write_leaves_no_temporary_file() {
        let dir = tempfile::tempdir().unwrap();
        // The target is a non-empty directory: the rename fails.
        fs::create_dir_all(dir.path().join("f/x")).unwrap();
        assert!(write_atomically(&dir.path().join("f"), b"data", 0o644).is_err());
        let names: Vec<_> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["f"]);
    }

    /// Two threads rewrite one file 200 times each with contents of their own while a third
    /// reads it: every read is one writer's whole contents, and no temporary file is left.
    #[test]
    fn concurrent_writers_never_show_a_partial_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = Arc::new(dir.path().join("dnsmasq.conf"));
        let contents = |c: u8| vec![c; 256 * 1024];
        write_atomically(&path, &contents(b'a'), 0o644).unwrap();
        let writers: Vec<_> = [b'a', b'b']
            .into_iter()
            .map(|c| {
                let path = path.clone();
                std::thread::spawn(move || {
                    for _ in 0..200 {
                        write_atomically(&path, &contents(c), 0o644).unwrap();
                    }
                })
            })
            .collect();
        let reader = {
            let path = path.clone();
            std::thread::spawn(move || {
                for _ in 0..400 {
                    let got = fs::read(&*path).unwrap();
                    assert!(
                        got == contents(b'a') || got == contents(b'b'),
                        "a partial file: {} bytes",
                        got.len()
                    );
                }
            })
        };
        for w in writers {
            w.join().expect("a writer failed");
        }
        reader.join().expect("the reader saw a partial file");
        let names: Vec<_> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["dnsmasq.conf"], "no temporary file is left");
    }

    #[test]
    fn install_dir_renames_keeps_or_exchanges() {
        let base = tempfile::tempdir().unwrap();
        let dir = base.path().join("ctx");
        let tree = |text: &str| {
            let t = temp_path(&dir);
            fs::create_dir(&t).unwrap();
            fs::write(t.join("Dockerfile"), text).unwrap();
            t
        };
        let read = || fs::read_to_string(dir.join("Dockerfile")).unwrap();
        install_dir(&tree("one"), &dir, |_| false).unwrap();
        assert_eq!(read(), "one");
        install_dir(&tree("two"), &dir, |_| true).unwrap();
        assert_eq!(read(), "one", "kept: it already holds what is wanted");
        install_dir(&tree("three"), &dir, |_| false).unwrap();
        assert_eq!(read(), "three", "exchanged");
        let names: Vec<_> = fs::read_dir(base.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["ctx"], "no temporary tree is left");
    }
}
