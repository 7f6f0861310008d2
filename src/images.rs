//! The images lab builds itself (dnsmasq, httpd, sshd, node, and the boot files of smoke, the
//! smoke OS, and debian-installer, see [`crate::smoke`]), embedded in the binary so that
//! `lab` works from any directory: their build contexts are written into the lab's state
//! directory and sent to the engine from there.

use std::io;
use std::path::{Path, PathBuf};

use include_dir::{include_dir, Dir};
use sha2::{Digest, Sha256};

use crate::fsutil;

static IMAGES: Dir<'static> = include_dir!("$CARGO_MANIFEST_DIR/images");

/// Docker tag of one of lab's own images.
pub fn tag(name: &str) -> String {
    format!("metal-lab/{name}:latest")
}

/// The name of lab's own image that `image` tags (`metal-lab/smoke:latest` -> `smoke`), if it
/// is one: a user's build `FROM` it makes lab build that image first.
pub fn own_image(image: &str) -> Option<&str> {
    let name = image.strip_prefix("metal-lab/")?;
    let name = name.strip_suffix(":latest").unwrap_or(name);
    (!name.is_empty() && !name.contains([':', '/', '@']) && IMAGES.get_dir(name).is_some())
        .then_some(name)
}

/// The files of an image's build context: (path inside the context, contents), sorted by path.
/// The node image's context also holds lab-bmcd, the executable beside `lab` ([`bmcd`]).
pub fn context_files(name: &str) -> Vec<(PathBuf, &'static [u8])> {
    let mut out = Vec::new();
    if let Some(dir) = IMAGES.get_dir(name) {
        collect(dir, Path::new(name), &mut out);
    }
    if name == "node" {
        if let Ok(exe) = bmcd() {
            out.push((PathBuf::from(BMCD), exe));
        }
    }
    out.sort();
    out
}

/// The Redfish daemon's executable name (src/bin/lab-bmcd.rs).
pub const BMCD: &str = "lab-bmcd";

/// lab-bmcd's executable, read once: the file beside the running `lab` (cargo builds both bins
/// into one directory, `cargo install` installs both; a test binary in `deps/` looks one
/// directory up). The node image runs it, so the image holds the very build of this `lab`.
pub fn bmcd() -> Result<&'static [u8], String> {
    static EXE: std::sync::OnceLock<Result<&'static [u8], String>> = std::sync::OnceLock::new();
    EXE.get_or_init(|| {
        let me = std::env::current_exe().map_err(|e| format!("cannot find the running lab executable: {e}"))?;
        let dir = me.parent().unwrap_or(Path::new("."));
        let mut tried = vec![dir.join(BMCD)];
        if dir.file_name().is_some_and(|n| n == "deps") {
            tried.extend(dir.parent().map(|d| d.join(BMCD)));
        }
        for path in &tried {
            if let Ok(data) = std::fs::read(path) {
                return Ok(&*Box::leak(data.into_boxed_slice()));
            }
        }
        Err(format!(
            "{} is missing: the node image needs lab-bmcd (the BMC's Redfish service) from beside the lab executable; build both with `cargo build --release --bins` (or install both with `cargo install --path .`)",
            tried[0].display()
        ))
    })
    .clone()
}

fn collect(dir: &'static Dir<'static>, prefix: &Path, out: &mut Vec<(PathBuf, &'static [u8])>) {
    for file in dir.files() {
        if let Ok(rel) = file.path().strip_prefix(prefix) {
            out.push((rel.to_path_buf(), file.contents()));
        }
    }
    for sub in dir.dirs() {
        collect(sub, prefix, out);
    }
}

/// Hash of everything that goes into a build: the context files and the base image.
pub fn context_hash(name: &str, base_image: &str) -> String {
    let mut h = Sha256::new();
    h.update(base_image.as_bytes());
    if name == "node" {
        if let Err(e) = bmcd() {
            // No image can be built without it: a hash no image has, so `up` tries and says why.
            h.update(e.as_bytes());
        }
    }
    for (path, data) in context_files(name) {
        h.update([0]);
        h.update(path.to_string_lossy().as_bytes());
        h.update([0]);
        h.update((data.len() as u64).to_le_bytes());
        h.update(data);
    }
    hex::encode(h.finalize())
}

/// Hash of a build directory of the user's: every file's path, mode and contents, in path order
/// (symlinks followed, as the build context tar follows them), so that any change rebuilds.
pub fn dir_hash(dir: &Path) -> io::Result<String> {
    let mut files = Vec::new();
    list_files(dir, Path::new(""), &mut files)?;
    files.sort();
    let mut h = Sha256::new();
    for rel in files {
        let path = dir.join(&rel);
        let meta = std::fs::metadata(&path)?;
        #[cfg(unix)]
        let mode = std::os::unix::fs::PermissionsExt::mode(&meta.permissions());
        #[cfg(not(unix))]
        let mode = u32::from(meta.permissions().readonly());
        let data = std::fs::read(&path)?;
        h.update([0]);
        h.update(rel.to_string_lossy().as_bytes());
        h.update([0]);
        h.update(mode.to_le_bytes());
        h.update((data.len() as u64).to_le_bytes());
        h.update(&data);
    }
    Ok(hex::encode(h.finalize()))
}

fn list_files(root: &Path, rel: &Path, out: &mut Vec<PathBuf>) -> io::Result<()> {
    for entry in std::fs::read_dir(root.join(rel))? {
        let rel = rel.join(entry?.file_name());
        if root.join(&rel).is_dir() {
            list_files(root, &rel, out)?;
        } else {
            out.push(rel);
        }
    }
    Ok(())
}

/// Writes an image's context under `dir/<name>/` (scripts executable) and returns that path.
///
/// The tree appears whole or not at all, because two `lab up` may run at once and one may be
/// sending the context to the engine while the other writes it: a context that already holds
/// exactly these files is left alone; otherwise the files are written into a temporary directory
/// beside it that then takes its place ([`crate::fsutil::install_dir`]).
pub fn write_context(dir: &Path, name: &str) -> io::Result<PathBuf> {
    if name == "node" {
        bmcd().map_err(io::Error::other)?;
    }
    let root = dir.join(name);
    let files = context_files(name);
    if holds(&root, &files) {
        return Ok(root);
    }
    std::fs::create_dir_all(dir)?;
    remove_stale_temps(dir);
    let tmp = fsutil::temp_path(&root);
    if let Err(e) = write_tree(&tmp, &files) {
        let _ = std::fs::remove_dir_all(&tmp);
        return Err(e);
    }
    fsutil::install_dir(&tmp, &root, |d| holds(d, &files))?;
    Ok(root)
}

fn write_tree(root: &Path, files: &[(PathBuf, &[u8])]) -> io::Result<()> {
    std::fs::create_dir(root)?;
    for (rel, data) in files {
        let path = root.join(rel);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::write(&path, data)?;
        fsutil::set_mode(&path, 0o755)?;
    }
    Ok(())
}

/// Whether `root` holds exactly `files`: the same paths and contents, executable, nothing else.
fn holds(root: &Path, files: &[(PathBuf, &[u8])]) -> bool {
    let mut found = Vec::new();
    if list(root, Path::new(""), &mut found).is_err() {
        return false;
    }
    found.sort();
    found.len() == files.len()
        && files.iter().zip(&found).all(|((rel, data), f)| {
            let path = root.join(rel);
            rel == f && executable(&path) && std::fs::read(&path).is_ok_and(|d| d == *data)
        })
}

/// The regular files below `dir`, relative to the top; an entry of another kind is an error.
fn list(dir: &Path, rel: &Path, out: &mut Vec<PathBuf>) -> io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let kind = entry.file_type()?;
        let child = rel.join(entry.file_name());
        if kind.is_dir() {
            list(&entry.path(), &child, out)?;
        } else if kind.is_file() {
            out.push(child);
        } else {
            return Err(io::Error::other("not a regular file"));
        }
    }
    Ok(())
}

#[cfg(unix)]
fn executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).is_ok_and(|m| m.permissions().mode() & 0o111 == 0o111)
}

#[cfg(not(unix))]
fn executable(_: &Path) -> bool {
    true
}

/// Removes temporary context trees that a `lab` process which is gone left in `dir`.
fn remove_stale_temps(dir: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        if fsutil::is_stale_temp(&entry.file_name()) {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_images_are_known_by_their_tag() {
        assert_eq!(own_image("metal-lab/smoke:latest"), Some("smoke"));
        assert_eq!(own_image("metal-lab/smoke"), Some("smoke"));
        assert_eq!(own_image("metal-lab/smoke:1.0"), None);
        assert_eq!(own_image("metal-lab/nothing:latest"), None);
        assert_eq!(own_image("debian:bookworm-slim"), None);
    }

    #[test]
    fn every_built_image_is_embedded_with_a_dockerfile() {
        for name in [
            "dnsmasq",
            "httpd",
            "sshd",
            "node",
            "smoke",
            "debian-installer",
        ] {
            let files = context_files(name);
            assert!(
                files.iter().any(|(p, _)| p == Path::new("Dockerfile")),
                "{name}: {files:?}"
            );
        }
    }

    #[test]
    fn context_hash_depends_on_base_image_and_image() {
        let a = context_hash("node", "debian:bookworm-slim");
        assert_eq!(a, context_hash("node", "debian:bookworm-slim"));
        assert_ne!(a, context_hash("node", "debian:trixie-slim"));
        assert_ne!(a, context_hash("sshd", "debian:bookworm-slim"));
    }

    fn names(dir: &Path) -> Vec<String> {
        let mut n: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        n.sort();
        n
    }

    #[test]
    fn a_context_is_written_once_then_left_alone_or_replaced_when_it_differs() {
        let state = tempfile::tempdir().unwrap();
        let dir = state.path().join("images");
        let root = write_context(&dir, "sshd").unwrap();
        assert_eq!(root, dir.join("sshd"));
        assert!(holds(&root, &context_files("sshd")));
        let dockerfile = root.join("Dockerfile");
        let before = std::fs::metadata(&dockerfile).unwrap().modified().unwrap();
        std::thread::sleep(std::time::Duration::from_millis(20));
        write_context(&dir, "sshd").unwrap();
        assert_eq!(
            std::fs::metadata(&dockerfile).unwrap().modified().unwrap(),
            before,
            "an up-to-date context is not rewritten"
        );
        // An older lab's context: a changed file and one too many; and a temporary tree that a
        // crashed lab left (its pid above any the kernel hands out).
        std::fs::write(&dockerfile, "FROM old\n").unwrap();
        std::fs::write(root.join("stale.sh"), "old").unwrap();
        std::fs::create_dir(dir.join(".sshd.4194305.0.tmp")).unwrap();
        assert!(!holds(&root, &context_files("sshd")));
        write_context(&dir, "sshd").unwrap();
        assert!(holds(&root, &context_files("sshd")));
        assert_eq!(names(&dir), ["sshd"], "no temporary tree is left");
    }

    /// Two `lab up` at once on a fresh state dir, 20 times over: two threads write the context
    /// while a third reads it the way the engine's build does. The context is absent or whole
    /// at every look, and both writers succeed.
    #[test]
    fn two_writers_at_once_never_show_a_partial_context() {
        let state = tempfile::tempdir().unwrap();
        let dir = std::sync::Arc::new(state.path().join("images"));
        let files = context_files("httpd");
        assert!(files.len() > 1);
        for _ in 0..20 {
            let _ = std::fs::remove_dir_all(&*dir);
            let done = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
            let writers: Vec<_> = (0..2)
                .map(|_| {
                    let (dir, done) = (dir.clone(), done.clone());
                    std::thread::spawn(move || {
                        let r = write_context(&dir, "httpd");
                        done.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                        r.unwrap()
                    })
                })
                .collect();
            let root = dir.join("httpd");
            while done.load(std::sync::atomic::Ordering::SeqCst) < 2 {
                if root.exists() {
                    assert!(holds(&root, &files), "a partial context");
                }
            }
            for w in writers {
                assert_eq!(w.join().expect("a writer failed"), root);
            }
            assert!(holds(&root, &files));
            assert_eq!(names(&dir), ["httpd"], "no temporary tree is left");
        }
    }
}
