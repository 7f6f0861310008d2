//! The smoke OS: a small operating system lab builds itself, offline, so that a lab's nodes have
//! something real to PXE-boot without downloading anything.
//!
//! It is Debian's kernel and a busybox initramfs (`images/smoke/`), also as a bootable CD image
//! (`smoke.iso`, BIOS and UEFI) and as a bootable disk image (`disk.img.gz`, GPT, BIOS and UEFI),
//! which the same OS writes to a node's first disk when its command line has `lab.install=URL`
//! (the `smoke-install` profile). Its `/init` loads its modules, gets the node's address by DHCP,
//! GETs the URL given as `lab.report=` on the kernel command line, prints a banner on the serial
//! console (`lab-smoke: node NAME is up at ADDRESS (mac MAC)`) and keeps a shell there.
//!
//! The rule: a lab gets the smoke OS when one of its nodes boots a profile whose `kernel` or
//! `initrd` is [`KERNEL`] or [`INITRD`] (`smoke/vmlinuz`, `smoke/initrd`, under the web root).
//! [`asset`] then adds it to the lab's desired state as a [`BuiltAsset`]: the plan builds the
//! image `metal-lab/smoke:latest` when its build context changed (as for lab's other images), and
//! [`crate::apply`] copies the files into `<web root>/smoke/` when they are missing or come
//! from another build of the image. The directory `smoke/` of the web root is lab's: what is there
//! is replaced.

use std::path::Path;

use anyhow::{bail, Context};

use crate::engine::Engine;
use crate::fsutil::write_atomically;
use crate::lab::Lab;
use crate::plan::BuiltAsset;

/// The image's name under `images/` (tag `metal-lab/smoke:latest`).
pub const IMAGE: &str = "smoke";
/// Where the boot files are inside the image.
pub const IMAGE_DIR: &str = "/out";
/// The directory of the web root lab copies them into.
pub const WEB_DIR: &str = "smoke";
/// A profile boots the smoke OS with these, relative to the web root.
pub const KERNEL: &str = "smoke/vmlinuz";
pub const INITRD: &str = "smoke/initrd";
/// A bootable CD of the smoke OS (BIOS and UEFI), relative to the web root: for a node's CD-ROM
/// drive (`lab-media insert`, virtual media). Booted from it, the smoke OS takes its name and the
/// web service to report to from DHCP, as its command line cannot know them.
pub const ISO: &str = "smoke/smoke.iso";
/// The smoke OS installed: a gzipped raw disk image, relative to the web root. The installer
/// (`lab.install=<web>/smoke/disk.img.gz`) writes it to the node's first disk; it boots on BIOS
/// (GRUB in the MBR and a BIOS boot partition) and UEFI (GRUB on an EFI system partition) with
/// `lab.boot=disk` on its command line.
pub const DISK_IMAGE: &str = "smoke/disk.img.gz";
/// The files of [`WEB_DIR`] that come from the image.
const FILES: [&str; 4] = ["vmlinuz", "initrd", "smoke.iso", "disk.img.gz"];

/// The profiles of `lab` that boot the smoke OS and are booted by a node.
pub fn profiles(lab: &Lab) -> Vec<&str> {
    let mut names: Vec<&str> = lab
        .nodes()
        .iter()
        .filter(|n| lab.profile_of(n).is_some_and(boots_smoke))
        .filter_map(|n| n.profile.as_deref())
        .collect();
    names.sort_unstable();
    names.dedup();
    names
}

fn boots_smoke(profile: &crate::lab::Profile) -> bool {
    let is = |path: &Option<String>, want: &str| {
        path.as_deref().and_then(crate::lab::web_path) == Some(want)
    };
    is(&profile.kernel, KERNEL) || is(&profile.initrd, INITRD)
}

/// The smoke OS as a built asset of `lab`, if a node boots it and the lab has a web root to
/// serve it from (validation requires one where nodes boot from the web service).
pub fn asset(lab: &Lab) -> Option<BuiltAsset> {
    let users = profiles(lab);
    let web_root = lab.web_root()?;
    if users.is_empty() {
        return None;
    }
    Some(BuiltAsset {
        name: "smoke OS".into(),
        image: crate::images::tag(IMAGE),
        path: IMAGE_DIR.into(),
        files: FILES.map(String::from).to_vec(),
        dest: web_root.join(WEB_DIR),
        users: users.into_iter().map(String::from).collect(),
    })
}

/// Copies an asset's files out of its image (whose id is `image_id`) into its directory, then
/// marks them as that image's. The marker is written last: a half copy is copied again.
pub async fn export<E: Engine>(
    engine: &E,
    asset: &BuiltAsset,
    image_id: &str,
) -> anyhow::Result<()> {
    let dir = &asset.dest;
    let files = engine
        .copy_from_image(&asset.image, &asset.path, dir)
        .await
        .with_context(|| {
            format!(
                "copying the {} from image {} into {}",
                asset.name,
                asset.image,
                dir.display()
            )
        })?;
    for f in &asset.files {
        if !files.iter().any(|p| p == Path::new(f)) {
            bail!(
                "image {} has no {}/{f}; its Dockerfile (images/{IMAGE}) must produce it",
                asset.image,
                asset.path
            );
        }
    }
    let marker = dir.join(BuiltAsset::MARKER);
    write_atomically(&marker, format!("{image_id}\n").as_bytes(), 0o644)
        .with_context(|| format!("writing {}", marker.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lab(dir: &Path, kernel: &str, profile: &str) -> Lab {
        std::fs::create_dir_all(dir.join("webroot")).unwrap();
        let text = format!(
            r#"
[lab]
name = "s"
[network]
subnet = "10.1.2.0/24"
[services.dhcp]
kind = "dnsmasq"
dhcp_range = ["10.1.2.100", "10.1.2.150"]
[services.web]
kind = "httpd"
root = "webroot"
[profiles.smoke]
kernel = "{kernel}"
initrd = "smoke/initrd"
[profiles.other]
kernel = "other/vmlinuz"
[nodes.n]
mac = "02:00:00:00:00:01"
profile = "{profile}"
"#
        );
        crate::lab::from_str(&dir.join("lab.toml"), &text, &|_| None).expect("valid lab")
    }

    #[test]
    fn only_profiles_with_the_smoke_files_that_a_node_boots_count() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(
            profiles(&lab(dir.path(), "smoke/vmlinuz", "smoke")),
            ["smoke"]
        );
        // The initrd alone is enough.
        assert_eq!(
            profiles(&lab(dir.path(), "mine/vmlinuz", "smoke")),
            ["smoke"]
        );
        let other = lab(dir.path(), "smoke/vmlinuz", "other");
        assert!(profiles(&other).is_empty());
        assert_eq!(asset(&other), None);
        let a = asset(&lab(dir.path(), "smoke/vmlinuz", "smoke")).unwrap();
        assert_eq!(a.dest, dir.path().join("webroot/smoke"));
        assert_eq!(a.files, ["vmlinuz", "initrd", "smoke.iso", "disk.img.gz"]);
    }
}
