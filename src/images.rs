//! The images lab builds itself (dnsmasq, httpd, sshd, node, and smoke: the smoke OS's boot
//! files, see [`crate::smoke`]), embedded in the binary so that
//! `lab` works from any directory: their build contexts are written into the lab's state
//! directory and sent to the engine from there.

use std::io;
use std::path::{Path, PathBuf};

use include_dir::{include_dir, Dir};
use sha2::{Digest, Sha256};

static IMAGES: Dir<'static> = include_dir!("$CARGO_MANIFEST_DIR/images");

/// Docker tag of one of lab's own images.
pub fn tag(name: &str) -> String {
    format!("metal-lab/{name}:latest")
}

/// The files of an image's build context: (path inside the context, contents), sorted by path.
pub fn context_files(name: &str) -> Vec<(PathBuf, &'static [u8])> {
    let mut out = Vec::new();
    if let Some(dir) = IMAGES.get_dir(name) {
        collect(dir, Path::new(name), &mut out);
    }
    out.sort();
    out
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
    for (path, data) in context_files(name) {
        h.update([0]);
        h.update(path.to_string_lossy().as_bytes());
        h.update([0]);
        h.update((data.len() as u64).to_le_bytes());
        h.update(data);
    }
    hex::encode(h.finalize())
}

/// Writes an image's context under `dir/<name>/` (scripts executable) and returns that path.
pub fn write_context(dir: &Path, name: &str) -> io::Result<PathBuf> {
    let root = dir.join(name);
    if root.exists() {
        std::fs::remove_dir_all(&root)?;
    }
    for (rel, data) in context_files(name) {
        let path = root.join(&rel);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::write(&path, data)?;
        set_executable(&path)?;
    }
    Ok(root)
}

#[cfg(unix)]
fn set_executable(path: &Path) -> io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755))
}

#[cfg(not(unix))]
fn set_executable(_: &Path) -> io::Result<()> {
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_built_image_is_embedded_with_a_dockerfile() {
        for name in ["dnsmasq", "httpd", "sshd", "node", "smoke"] {
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
}
