//! The boot files lab builds itself from Debian packages, offline from anything but the base
//! image's apt sources, so that a lab's nodes have something real to PXE-boot without a download
//! step: lab's smoke OS, and Debian's netboot installer.
//!
//! - The smoke OS (`images/smoke/`): Debian's kernel and a busybox initramfs, also as a bootable
//!   CD image (`smoke.iso`, BIOS and UEFI) and as a bootable disk image (`disk.img.gz`, GPT, BIOS
//!   and UEFI), which the same OS writes to a node's first disk when its command line has
//!   `lab.install=URL` (the `smoke-install` profile). Its `/init` loads its modules, gets the
//!   node's address by DHCP, GETs the URL given as `lab.report=` on the kernel command line,
//!   prints a banner on the serial console (`lab-smoke: node NAME is up at ADDRESS (mac MAC)`)
//!   and keeps a shell there.
//! - Debian's installer (`images/debian-installer/`): the kernel and initrd of the package
//!   `debian-installer-12-netboot-amd64` (`labs/debian.toml` boots them with a preseed).
//!
//! The rule: a lab gets one of them when one of its nodes boots a profile whose `kernel` or
//! `initrd` is one of that OS's boot files ([`SMOKE`]: `smoke/vmlinuz`, `smoke/initrd`;
//! [`DEBIAN_INSTALLER`]: `debian-installer/linux`, `debian-installer/initrd.gz`, under the web
//! root). [`built`] then adds it to the lab's desired state as a [`BuiltAsset`]: the plan builds
//! its image (`metal-lab/<image>:latest`) when its build context changed (as for lab's other
//! images), and [`crate::apply`] copies the files into `<web root>/<dir>/` when they are missing
//! or come from another build of the image. That directory of the web root is lab's: what is
//! there is replaced.

use std::path::Path;

use anyhow::{bail, Context};

use crate::engine::Engine;
use crate::fsutil::write_atomically;
use crate::lab::Lab;
use crate::plan::BuiltAsset;

/// A set of boot files made by one of lab's images and served from one directory of the web root.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BuiltOs {
    /// What it is, for messages: `smoke OS`.
    pub name: &'static str,
    /// The image's name under `images/` (tag `metal-lab/<image>:latest`).
    pub image: &'static str,
    /// The directory of the web root lab copies the files into.
    pub web_dir: &'static str,
    /// The files of [`IMAGE_DIR`] in the image, copied into [`Self::web_dir`].
    pub files: &'static [&'static str],
    /// Its kernel and initrd, relative to the web root: a profile that boots either gets it.
    pub boot_files: [&'static str; 2],
}

/// Where the boot files are inside every such image.
pub const IMAGE_DIR: &str = "/out";

/// lab's smoke OS.
pub const SMOKE: BuiltOs = BuiltOs {
    name: "smoke OS",
    image: "smoke",
    web_dir: "smoke",
    files: &["vmlinuz", "initrd", "smoke.iso", "disk.img.gz"],
    boot_files: [KERNEL, INITRD],
};

/// Debian 12's netboot installer (d-i), from the package `debian-installer-12-netboot-amd64`;
/// `version` holds the package's version.
pub const DEBIAN_INSTALLER: BuiltOs = BuiltOs {
    name: "Debian installer",
    image: "debian-installer",
    web_dir: "debian-installer",
    files: &["linux", "initrd.gz", "version"],
    boot_files: ["debian-installer/linux", "debian-installer/initrd.gz"],
};

/// Every OS lab builds, in the order the plan lists them.
pub const ALL: [BuiltOs; 2] = [SMOKE, DEBIAN_INSTALLER];

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

/// The profiles of `lab` that boot the smoke OS and are booted by a node.
pub fn profiles(lab: &Lab) -> Vec<&str> {
    profiles_booting(lab, &SMOKE)
}

/// The profiles of `lab` that boot `os` and are booted by a node.
pub fn profiles_booting<'a>(lab: &'a Lab, os: &BuiltOs) -> Vec<&'a str> {
    let mut names: Vec<&str> = lab
        .nodes()
        .iter()
        .filter(|n| lab.profile_of(n).is_some_and(|p| boots(p, os)))
        .filter_map(|n| n.profile.as_deref())
        .collect();
    names.sort_unstable();
    names.dedup();
    names
}

fn boots(profile: &crate::lab::Profile, os: &BuiltOs) -> bool {
    let is = |path: &Option<String>| {
        path.as_deref()
            .and_then(crate::lab::web_path)
            .is_some_and(|p| os.boot_files.contains(&p))
    };
    is(&profile.kernel) || is(&profile.initrd)
}

/// The smoke OS as a built asset of `lab`, if a node boots it and the lab has a web root to
/// serve it from (validation requires one where nodes boot from the web service).
pub fn asset(lab: &Lab) -> Option<BuiltAsset> {
    built(lab, &SMOKE)
}

/// `os` as a built asset of `lab`, if a node boots it and the lab has a web root.
pub fn built(lab: &Lab, os: &BuiltOs) -> Option<BuiltAsset> {
    let users = profiles_booting(lab, os);
    let web_root = lab.web_root()?;
    if users.is_empty() {
        return None;
    }
    Some(BuiltAsset {
        name: os.name.into(),
        image: crate::images::tag(os.image),
        path: IMAGE_DIR.into(),
        files: os.files.iter().map(|f| f.to_string()).collect(),
        dest: web_root.join(os.web_dir),
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
                "image {} has no {}/{f}; its Dockerfile (under images/) must produce it",
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

    #[test]
    fn a_profile_booting_the_debian_installer_gets_it_and_not_the_smoke_os() {
        let dir = tempfile::tempdir().unwrap();
        let both_lab = lab(dir.path(), "debian-installer/linux", "smoke");
        assert_eq!(profiles_booting(&both_lab, &DEBIAN_INSTALLER), ["smoke"]);
        // The profile's initrd is still smoke/initrd: both are built.
        let both: Vec<_> = ALL.iter().filter_map(|os| built(&both_lab, os)).collect();
        assert_eq!(both.len(), 2);
        let d = &both[1];
        assert_eq!(d.name, "Debian installer");
        assert_eq!(d.image, "metal-lab/debian-installer:latest");
        assert_eq!(d.dest, dir.path().join("webroot/debian-installer"));
        assert_eq!(d.files, ["linux", "initrd.gz", "version"]);
        let other = lab(dir.path(), "debian-installer/vmlinuz", "other");
        assert_eq!(built(&other, &DEBIAN_INSTALLER), None);
    }
}
