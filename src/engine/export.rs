//! Unpacking what [`super::Engine::copy_from_image`] downloads: the engine's archive of a path
//! in an image (a tar whose top entry is named after the path's last component) into a host
//! directory, each file written under a temporary name and renamed into place, so a reader (the
//! web service) sees the old file or the new one, never half of one.

use std::io::{self, Read};
use std::path::{Component, Path, PathBuf};

use crate::fsutil::write_atomically;

/// Unpacks the regular files of `archive` into `dest` (created if missing), keeping their paths
/// below the archived directory and their permission bits; returns those relative paths, in
/// archive order. A file archived on its own lands as `dest/<its name>`. Links and special files
/// are skipped; a path leaving `dest` is an error.
pub fn unpack_files(archive: &[u8], dest: &Path) -> io::Result<Vec<PathBuf>> {
    std::fs::create_dir_all(dest)?;
    let mut tar = tar::Archive::new(archive);
    let mut root: Option<PathBuf> = None;
    let mut written = Vec::new();
    for entry in tar.entries()? {
        let mut entry = entry?;
        let path = entry.path()?.into_owned();
        let kind = entry.header().entry_type();
        if root.is_none() {
            // The first entry is the archived path itself: a directory whose name prefixes the
            // rest, or the one file.
            root = Some(if kind.is_dir() {
                path.clone()
            } else {
                PathBuf::new()
            });
        }
        if !kind.is_file() {
            continue;
        }
        let rel = relative(&path, root.as_deref().unwrap_or(Path::new("")))?;
        let mode = entry.header().mode().unwrap_or(0o644);
        let mut data = Vec::with_capacity(entry.size() as usize);
        entry.read_to_end(&mut data)?;
        write_atomically(&dest.join(&rel), &data, mode)?;
        written.push(rel);
    }
    Ok(written)
}

/// The contents of the first regular file in `archive` (the engine's archive of one file), or
/// `None` if it holds none (the path was a directory).
pub fn first_file(archive: &[u8]) -> io::Result<Option<Vec<u8>>> {
    let mut tar = tar::Archive::new(archive);
    for entry in tar.entries()? {
        let mut entry = entry?;
        if entry.header().entry_type().is_file() {
            let mut data = Vec::with_capacity(entry.size() as usize);
            entry.read_to_end(&mut data)?;
            return Ok(Some(data));
        }
    }
    Ok(None)
}

/// `path` below `root`, refusing anything that would leave the destination.
fn relative(path: &Path, root: &Path) -> io::Result<PathBuf> {
    let rel = path.strip_prefix(root).unwrap_or(path);
    let clean = rel
        .components()
        .all(|c| matches!(c, Component::Normal(_) | Component::CurDir));
    if !clean || rel.as_os_str().is_empty() {
        let msg = format!(
            "the archive holds {}, which does not lie below {}",
            path.display(),
            root.display()
        );
        return Err(io::Error::new(io::ErrorKind::InvalidData, msg));
    }
    Ok(rel.to_path_buf())
}

/// A tar as the engine sends it for `path`: a directory entry named after the path's last
/// component, then `(relative path, contents)` files below it (the fake engine uses this).
pub fn archive(path: &str, files: &[(String, Vec<u8>)]) -> io::Result<Vec<u8>> {
    let top = Path::new(path)
        .file_name()
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("."));
    let mut builder = tar::Builder::new(Vec::new());
    let mut dir = tar::Header::new_gnu();
    dir.set_entry_type(tar::EntryType::Directory);
    dir.set_mode(0o755);
    dir.set_size(0);
    builder.append_data(&mut dir, &top, io::empty())?;
    for (name, data) in files {
        let mut header = tar::Header::new_gnu();
        header.set_mode(0o644);
        header.set_size(data.len() as u64);
        builder.append_data(&mut header, top.join(name), data.as_slice())?;
    }
    builder.into_inner()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file_tar(name: &str, data: &[u8]) -> Vec<u8> {
        let mut builder = tar::Builder::new(Vec::new());
        let mut header = tar::Header::new_gnu();
        header.set_mode(0o755);
        header.set_size(data.len() as u64);
        builder.append_data(&mut header, name, data).unwrap();
        builder.into_inner().unwrap()
    }

    #[test]
    fn first_file_reads_a_single_file_archive_and_skips_directories() {
        assert_eq!(
            first_file(&file_tar("console.log", b"boot\n")).unwrap(),
            Some(b"boot\n".to_vec())
        );
        let dir_only = {
            let mut builder = tar::Builder::new(Vec::new());
            let mut header = tar::Header::new_gnu();
            header.set_entry_type(tar::EntryType::Directory);
            header.set_size(0);
            builder.append_data(&mut header, "lab/", &[][..]).unwrap();
            builder.into_inner().unwrap()
        };
        assert_eq!(first_file(&dir_only).unwrap(), None);
    }

    #[test]
    fn a_directory_is_unpacked_below_its_own_name() {
        let dir = tempfile::tempdir().unwrap();
        let tar = archive(
            "/out",
            &[
                ("vmlinuz".into(), b"kernel".to_vec()),
                ("sub/initrd".into(), b"ramfs".to_vec()),
            ],
        )
        .unwrap();
        let written = unpack_files(&tar, &dir.path().join("smoke")).unwrap();
        assert_eq!(
            written,
            [PathBuf::from("vmlinuz"), PathBuf::from("sub/initrd")]
        );
        assert_eq!(
            std::fs::read(dir.path().join("smoke/vmlinuz")).unwrap(),
            b"kernel"
        );
        assert_eq!(
            std::fs::read(dir.path().join("smoke/sub/initrd")).unwrap(),
            b"ramfs"
        );
        let names: Vec<_> = std::fs::read_dir(dir.path().join("smoke"))
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names.len(), 2, "no temporary files are left: {names:?}");
    }

    #[test]
    fn a_single_file_lands_under_its_name_with_its_mode() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("tool"), b"old").unwrap();
        let written = unpack_files(&file_tar("tool", b"new"), dir.path()).unwrap();
        assert_eq!(written, [PathBuf::from("tool")]);
        assert_eq!(std::fs::read(dir.path().join("tool")).unwrap(), b"new");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.path().join("tool"))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o755);
        }
    }

    #[test]
    fn paths_leaving_the_destination_are_refused() {
        assert!(relative(Path::new("out/../../etc/passwd"), Path::new("out")).is_err());
        assert!(relative(Path::new("/etc/passwd"), Path::new("")).is_err());
        assert_eq!(
            relative(Path::new("out/a/b"), Path::new("out")).unwrap(),
            PathBuf::from("a/b")
        );
    }
}
