//! Putting rendered files into the state dir, and hashing them for the planner.
//!
//! [`write()`] owns the generated subdirectories of the state dir ([`GENERATED_DIRS`]) and nothing
//! else: it refuses any path outside them, rewrites a file only when its contents changed (so
//! mtimes and inotify watchers see real changes only), replaces files atomically (a temporary file
//! renamed over the old one, so a service never reads half a file), and removes what it no longer
//! generates. It never follows a symlink inside those directories: a link is removed, never its
//! target. Two `lab` processes may write the same lab's files at once: each writes through its
//! own temporary files, leaves the other's alone, and takes a directory or removal the other
//! made first as done.

use std::collections::BTreeSet;
use std::fs;
use std::io;
use std::path::{Component, Path, PathBuf};

use sha2::{Digest, Sha256};

use super::{RenderedFile, GENERATED_DIRS};
use crate::lab::Lab;

/// What [`write()`] did, each path relative to the state dir, sorted.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WriteReport {
    /// Created or rewritten because the contents changed.
    pub written: Vec<PathBuf>,
    /// Already there with the same contents: left alone.
    pub unchanged: Vec<PathBuf>,
    /// Generated before and not any more (files, links and emptied directories).
    pub removed: Vec<PathBuf>,
}

/// Writes `files` under [`Lab::state_dir`] and removes stale generated files there.
pub fn write(lab: &Lab, files: &[RenderedFile]) -> io::Result<WriteReport> {
    write_under(&lab.state_dir(), files)
}

/// [`write()`] for a given state dir.
pub fn write_under(state: &Path, files: &[RenderedFile]) -> io::Result<WriteReport> {
    let mut wanted = BTreeSet::new();
    for f in files {
        check_path(&f.path)?;
        if !wanted.insert(f.path.clone()) {
            return Err(invalid(&f.path, "is rendered twice"));
        }
    }
    fs::create_dir_all(state).map_err(|e| at(state, e))?;
    for dir in GENERATED_DIRS {
        ensure_dir(&state.join(dir))?;
    }
    let mut report = WriteReport::default();
    for f in files {
        ensure_parents(state, &f.path)?;
        let path = state.join(&f.path);
        match fs::symlink_metadata(&path) {
            Ok(m) if m.is_file() => {
                if fs::read(&path).map_err(|e| at(&path, e))? == f.contents.as_bytes() {
                    report.unchanged.push(f.path.clone());
                    continue;
                }
            }
            Ok(m) if m.is_dir() => fs::remove_dir_all(&path).map_err(|e| at(&path, e))?,
            Ok(_) => fs::remove_file(&path).map_err(|e| at(&path, e))?,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(at(&path, e)),
        }
        crate::fsutil::write_atomically(&path, f.contents.as_bytes(), 0o644)
            .map_err(|e| at(&path, e))?;
        report.written.push(f.path.clone());
    }
    let keep_dirs: BTreeSet<PathBuf> = wanted
        .iter()
        .flat_map(|p| {
            p.ancestors()
                .skip(1)
                .map(Path::to_path_buf)
                .collect::<Vec<_>>()
        })
        .collect();
    for dir in GENERATED_DIRS {
        sweep(
            state,
            Path::new(dir),
            &wanted,
            &keep_dirs,
            &mut report.removed,
        )?;
    }
    report.written.sort();
    report.unchanged.sort();
    report.removed.sort();
    Ok(report)
}

/// A SHA-256 (hex) of the files under `prefix` (e.g. `nodes/master`, or `dnsmasq`): their paths
/// and contents, in path order. The planner puts it in a container's labels, so that a changed
/// input recreates the container and an unchanged one keeps it.
pub fn hash_files(files: &[RenderedFile], prefix: &Path) -> String {
    let mut selected: Vec<&RenderedFile> = files
        .iter()
        .filter(|f| f.path.starts_with(prefix))
        .collect();
    selected.sort_by(|a, b| a.path.cmp(&b.path));
    let mut h = Sha256::new();
    for f in selected {
        let path = f.path.to_string_lossy();
        h.update((path.len() as u64).to_le_bytes());
        h.update(path.as_bytes());
        h.update((f.contents.len() as u64).to_le_bytes());
        h.update(f.contents.as_bytes());
    }
    format!("{:x}", h.finalize())
}

/// Relative, without `.`/`..`, and inside one of the generated directories.
fn check_path(path: &Path) -> io::Result<()> {
    let mut parts = path.components();
    let top_ok = matches!(parts.next(), Some(Component::Normal(top)) if GENERATED_DIRS.iter().any(|d| top == *d));
    let rest: Vec<_> = parts.collect();
    if !top_ok || rest.is_empty() || !rest.iter().all(|c| matches!(c, Component::Normal(_))) {
        let dirs = GENERATED_DIRS.join("/, ");
        return Err(invalid(
            path,
            &format!("is not a path inside the generated directories ({dirs}/) of the state dir"),
        ));
    }
    Ok(())
}

/// A real directory at `path`: whatever else is there (a file, a link) is removed first. One
/// that another process made meanwhile will do.
fn ensure_dir(path: &Path) -> io::Result<()> {
    match fs::symlink_metadata(path) {
        Ok(m) if m.is_dir() => return Ok(()),
        Ok(_) => gone(fs::remove_file(path)).map_err(|e| at(path, e))?,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(at(path, e)),
    }
    match fs::create_dir(path) {
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists && path.is_dir() => Ok(()),
        r => r.map_err(|e| at(path, e)),
    }
}

/// A removal that found nothing to remove (another process removed it first) succeeded.
fn gone(r: io::Result<()>) -> io::Result<()> {
    match r {
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        r => r,
    }
}

fn ensure_parents(state: &Path, rel: &Path) -> io::Result<()> {
    let mut dir = state.to_path_buf();
    let parts: Vec<_> = rel.components().collect();
    for part in &parts[..parts.len().saturating_sub(1)] {
        dir.push(part);
        ensure_dir(&dir)?;
    }
    Ok(())
}

/// Removes everything under `state/rel` that is neither wanted nor on the way to a wanted file,
/// except the temporary files of a `lab` process still running (it renames them into place
/// shortly); those of a process that is gone are removed.
fn sweep(
    state: &Path,
    rel: &Path,
    wanted: &BTreeSet<PathBuf>,
    keep_dirs: &BTreeSet<PathBuf>,
    removed: &mut Vec<PathBuf>,
) -> io::Result<()> {
    let dir = state.join(rel);
    let mut entries: Vec<_> = match fs::read_dir(&dir) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        r => r
            .and_then(|d| d.collect::<io::Result<Vec<_>>>())
            .map_err(|e| at(&dir, e))?,
    };
    entries.sort_by_key(|e| e.file_name());
    for entry in entries {
        let child = rel.join(entry.file_name());
        let path = entry.path();
        let file_type = entry.file_type().map_err(|e| at(&path, e))?;
        let name = entry.file_name();
        if file_type.is_dir() {
            sweep(state, &child, wanted, keep_dirs, removed)?;
            if !keep_dirs.contains(&child) {
                gone(fs::remove_dir(&path)).map_err(|e| at(&path, e))?;
                removed.push(child);
            }
        } else if crate::fsutil::is_temp(&name) {
            if crate::fsutil::is_stale_temp(&name) {
                gone(fs::remove_file(&path)).map_err(|e| at(&path, e))?;
            }
        } else if !wanted.contains(&child) {
            gone(fs::remove_file(&path)).map_err(|e| at(&path, e))?;
            removed.push(child);
        }
    }
    Ok(())
}

fn at(path: &Path, e: io::Error) -> io::Error {
    io::Error::new(e.kind(), format!("{}: {e}", path.display()))
}

fn invalid(path: &Path, what: &str) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidInput,
        format!("generated file `{}` {what}", path.display()),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, SystemTime};

    fn file(path: &str, contents: &str) -> RenderedFile {
        RenderedFile {
            path: path.into(),
            contents: contents.into(),
        }
    }

    fn mtime(path: &Path) -> SystemTime {
        fs::metadata(path).unwrap().modified().unwrap()
    }

    /// Every file and directory under `root`, relative, sorted.
    fn tree(root: &Path) -> Vec<String> {
        fn walk(root: &Path, dir: &Path, out: &mut Vec<String>) {
            for e in fs::read_dir(dir).unwrap() {
                let p = e.unwrap().path();
                let rel = p.strip_prefix(root).unwrap().display().to_string();
                if fs::symlink_metadata(&p).unwrap().is_dir() {
                    out.push(format!("{rel}/"));
                    walk(root, &p, out);
                } else {
                    out.push(rel);
                }
            }
        }
        let mut out = Vec::new();
        walk(root, root, &mut out);
        out.sort();
        out
    }

    #[test]
    fn writes_then_leaves_unchanged_files_alone() {
        let tmp = tempfile::tempdir().unwrap();
        let state = tmp.path().join(".lab/demo");
        let files = vec![
            file("dnsmasq/dnsmasq.conf", "port=0\n"),
            file("nodes/a/node.env", "A=1\n"),
        ];
        let r = write_under(&state, &files).unwrap();
        assert_eq!(r.written.len(), 2);
        assert!(r.unchanged.is_empty() && r.removed.is_empty());
        assert_eq!(
            fs::read_to_string(state.join("nodes/a/node.env")).unwrap(),
            "A=1\n"
        );

        // Age both files, then write again with one changed.
        let old = SystemTime::now() - Duration::from_secs(3600);
        for p in ["dnsmasq/dnsmasq.conf", "nodes/a/node.env"] {
            fs::File::options()
                .write(true)
                .open(state.join(p))
                .unwrap()
                .set_modified(old)
                .unwrap();
        }
        let files = vec![
            file("dnsmasq/dnsmasq.conf", "port=0\n"),
            file("nodes/a/node.env", "A=2\n"),
        ];
        let r = write_under(&state, &files).unwrap();
        assert_eq!(r.unchanged, [PathBuf::from("dnsmasq/dnsmasq.conf")]);
        assert_eq!(r.written, [PathBuf::from("nodes/a/node.env")]);
        assert_eq!(
            mtime(&state.join("dnsmasq/dnsmasq.conf")),
            old,
            "an unchanged file is not rewritten"
        );
        assert_ne!(mtime(&state.join("nodes/a/node.env")), old);
        assert_eq!(
            fs::read_to_string(state.join("nodes/a/node.env")).unwrap(),
            "A=2\n"
        );
    }

    #[test]
    fn removes_stale_generated_files_and_nothing_else() {
        let tmp = tempfile::tempdir().unwrap();
        let state = tmp.path().join("state");
        let files = vec![
            file("web/boot.ipxe", "#!ipxe\n"),
            file("web/nodes/a/cloud-config.yaml", "#cloud-config\n"),
            file("web/nodes/b/cloud-config.yaml", "#cloud-config\n"),
            file("nodes/b/lan.conf", "x\n"),
        ];
        write_under(&state, &files).unwrap();
        // Files lab does not generate: beside the state dir, and in the state dir outside the
        // generated subdirs.
        fs::write(tmp.path().join("user.txt"), "mine").unwrap();
        fs::create_dir_all(state.join("other")).unwrap();
        fs::write(state.join("other/keep"), "mine").unwrap();
        fs::write(state.join("top-level"), "mine").unwrap();
        // A stray file inside a generated dir is stale too.
        fs::write(state.join("web/stray"), "old").unwrap();

        let files = vec![
            file("web/boot.ipxe", "#!ipxe\n"),
            file("web/nodes/a/cloud-config.yaml", "#cloud-config\n"),
        ];
        let r = write_under(&state, &files).unwrap();
        let removed: Vec<_> = r.removed.iter().map(|p| p.display().to_string()).collect();
        assert_eq!(
            removed,
            [
                "nodes/b",
                "nodes/b/lan.conf",
                "web/nodes/b",
                "web/nodes/b/cloud-config.yaml",
                "web/stray"
            ]
        );
        assert_eq!(
            tree(tmp.path()),
            [
                "state/",
                "state/dnsmasq/",
                "state/nodes/",
                "state/other/",
                "state/other/keep",
                "state/top-level",
                "state/web/",
                "state/web/boot.ipxe",
                "state/web/nodes/",
                "state/web/nodes/a/",
                "state/web/nodes/a/cloud-config.yaml",
                "user.txt",
            ]
        );
    }

    /// Two "lab up" of one lab at once: two threads write the same paths (with contents of their
    /// own, so that a mix would show) 40 times each while a third reads them. Every write
    /// succeeds, every read is one writer's whole file, and no temporary file is left.
    #[test]
    fn two_writers_at_once_leave_whole_files() {
        let tmp = tempfile::tempdir().unwrap();
        let state = std::sync::Arc::new(tmp.path().join("state"));
        let paths = [
            "dnsmasq/dnsmasq.conf",
            "web/boot.ipxe",
            "web/nodes/a/cloud-config.yaml",
            "nodes/a/node.env",
        ];
        let set = move |c: char| -> Vec<RenderedFile> {
            paths
                .iter()
                .map(|p| file(p, &c.to_string().repeat(128 * 1024)))
                .collect()
        };
        write_under(&state, &set('a')).unwrap();
        let writers: Vec<_> = ['a', 'b']
            .into_iter()
            .map(|c| {
                let state = state.clone();
                std::thread::spawn(move || {
                    for _ in 0..40 {
                        write_under(&state, &set(c)).unwrap();
                    }
                })
            })
            .collect();
        let reader = {
            let state = state.clone();
            std::thread::spawn(move || {
                for _ in 0..100 {
                    for p in paths {
                        let got = fs::read_to_string(state.join(p)).unwrap();
                        let whole = got.len() == 128 * 1024
                            && (got.bytes().all(|b| b == b'a') || got.bytes().all(|b| b == b'b'));
                        assert!(whole, "{p}: a partial file of {} bytes", got.len());
                    }
                }
            })
        };
        for w in writers {
            w.join().expect("a writer failed");
        }
        reader.join().expect("the reader saw a partial file");
        write_under(&state, &set('b')).unwrap();
        assert_eq!(
            tree(&state),
            [
                "dnsmasq/",
                "dnsmasq/dnsmasq.conf",
                "nodes/",
                "nodes/a/",
                "nodes/a/node.env",
                "web/",
                "web/boot.ipxe",
                "web/nodes/",
                "web/nodes/a/",
                "web/nodes/a/cloud-config.yaml",
            ],
            "no temporary file is left"
        );
    }

    #[test]
    fn another_live_process_temp_file_is_left_and_a_dead_one_removed() {
        let tmp = tempfile::tempdir().unwrap();
        let state = tmp.path().join("state");
        let files = vec![file("web/boot.ipxe", "#!ipxe\n")];
        write_under(&state, &files).unwrap();
        // This process is alive; 4194305 is above any pid the kernel hands out.
        let live = format!(".boot.ipxe.{}.999999.tmp", std::process::id());
        let dead = ".boot.ipxe.4194305.0.tmp";
        fs::write(state.join("web").join(&live), "being written").unwrap();
        fs::write(state.join("web").join(dead), "left by a crash").unwrap();
        let r = write_under(&state, &files).unwrap();
        assert!(r.removed.is_empty(), "{:?}", r.removed);
        assert_eq!(
            tree(&state.join("web")),
            [live.as_str(), "boot.ipxe"],
            "the live one is kept, the dead one removed"
        );
    }

    #[test]
    fn refuses_paths_outside_the_generated_dirs() {
        let tmp = tempfile::tempdir().unwrap();
        let state = tmp.path().join("state");
        for bad in ["../x", "/etc/x", "other/x", "web", "web/../../x"] {
            let e = write_under(&state, &[file(bad, "x")]).unwrap_err();
            assert_eq!(e.kind(), io::ErrorKind::InvalidInput, "{bad}");
            assert!(
                e.to_string()
                    .contains("is not a path inside the generated directories"),
                "{e}"
            );
        }
        assert!(!state.exists(), "nothing is written when a path is refused");
        assert_eq!(tree(tmp.path()), Vec::<String>::new());
    }

    #[cfg(unix)]
    #[test]
    fn never_writes_through_symlinks() {
        let tmp = tempfile::tempdir().unwrap();
        let state = tmp.path().join("state");
        let outside = tmp.path().join("outside");
        fs::create_dir_all(&outside).unwrap();
        fs::write(outside.join("boot.ipxe"), "user file").unwrap();
        fs::create_dir_all(state.join("nodes")).unwrap();
        // web/ is a link to a user directory, nodes/a/node.env a link to a user file.
        std::os::unix::fs::symlink(&outside, state.join("web")).unwrap();
        fs::create_dir_all(state.join("nodes/a")).unwrap();
        std::os::unix::fs::symlink(outside.join("boot.ipxe"), state.join("nodes/a/node.env"))
            .unwrap();

        let files = vec![
            file("web/boot.ipxe", "#!ipxe\n"),
            file("nodes/a/node.env", "A=1\n"),
        ];
        write_under(&state, &files).unwrap();
        assert_eq!(
            fs::read_to_string(outside.join("boot.ipxe")).unwrap(),
            "user file"
        );
        assert!(fs::symlink_metadata(state.join("web")).unwrap().is_dir());
        assert_eq!(
            fs::read_to_string(state.join("web/boot.ipxe")).unwrap(),
            "#!ipxe\n"
        );
        assert!(fs::symlink_metadata(state.join("nodes/a/node.env"))
            .unwrap()
            .is_file());
    }

    #[test]
    fn hash_covers_paths_and_contents_under_the_prefix() {
        let a = vec![
            file("nodes/a/lan.conf", "1"),
            file("nodes/b/lan.conf", "2"),
            file("nodes/ab/x", "3"),
        ];
        let h = hash_files(&a, Path::new("nodes/a"));
        assert_eq!(h.len(), 64);
        // Other nodes (including `ab`, which shares a string prefix) do not count.
        let b = vec![
            file("nodes/a/lan.conf", "1"),
            file("nodes/b/lan.conf", "changed"),
            file("nodes/ab/x", "9"),
        ];
        assert_eq!(hash_files(&b, Path::new("nodes/a")), h);
        // Contents and names do; order does not.
        assert_ne!(
            hash_files(&[file("nodes/a/lan.conf", "1!")], Path::new("nodes/a")),
            h
        );
        assert_ne!(
            hash_files(&[file("nodes/a/lan2.conf", "1")], Path::new("nodes/a")),
            h
        );
        let mut rev = a.clone();
        rev.reverse();
        assert_eq!(hash_files(&rev, Path::new("nodes/a")), h);
    }
}
