//! The smoke OS: a small operating system lab builds itself, offline, so that a lab's nodes have
//! something real to PXE-boot without downloading anything.
//!
//! It is a Debian cloud kernel and a busybox initramfs (`images/smoke/`): its `/init` loads the
//! virtio network modules, gets the node's address by DHCP, GETs the URL given as `lab.report=`
//! on the kernel command line, prints a banner on the serial console
//! (`lab-smoke: node NAME is up at ADDRESS (mac MAC)`) and keeps a shell there.
//!
//! The rule: a lab gets the smoke OS when one of its nodes boots a profile whose `kernel` or
//! `initrd` is [`KERNEL`] or [`INITRD`] (`smoke/vmlinuz`, `smoke/initrd`, under the web root).
//! [`ensure_smoke_os`] then builds the image `metal-lab/smoke:latest` when its build context
//! changed (as `lab up` does for lab's other images) and copies the two files into
//! `<web root>/smoke/` when they are missing or come from another build of the image. The
//! directory `smoke/` of the web root is lab's: what is there is replaced.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context};

use crate::apply::{self, Summary};
use crate::engine::Engine;
use crate::fsutil::write_atomically;
use crate::lab::Lab;
use crate::ui::Progress;

/// The image's name under `images/` (tag `metal-lab/smoke:latest`).
pub const IMAGE: &str = "smoke";
/// Where the boot files are inside the image.
pub const IMAGE_DIR: &str = "/out";
/// The directory of the web root lab copies them into.
pub const WEB_DIR: &str = "smoke";
/// A profile boots the smoke OS with these, relative to the web root.
pub const KERNEL: &str = "smoke/vmlinuz";
pub const INITRD: &str = "smoke/initrd";
/// The files of [`WEB_DIR`] that come from the image.
const FILES: [&str; 2] = ["vmlinuz", "initrd"];
/// Holds the id of the image the files were copied from: another id means they are stale.
const MARKER: &str = ".lab-image";

/// What [`ensure_smoke_os`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SmokeOs {
    /// Whether the lab boots the smoke OS at all (if not, nothing was done).
    pub needed: bool,
    /// The image was (re)built.
    pub built: bool,
    /// The files were copied into the web root (missing or stale before).
    pub copied: bool,
    /// `<web root>/smoke`, when needed.
    pub dir: Option<PathBuf>,
}

/// The profiles of `lab` that boot the smoke OS and are booted by a node.
pub fn profiles(lab: &Lab) -> Vec<&str> {
    let mut names: Vec<&str> = lab
        .nodes
        .iter()
        .filter_map(|n| n.profile.as_deref())
        .filter(|p| lab.profiles.get(*p).is_some_and(boots_smoke))
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

/// Makes sure the smoke OS's kernel and initrd are in the lab's web root if a node boots them:
/// builds `metal-lab/smoke:latest` if its build context changed, and copies the files if they are
/// missing or from another image. Does nothing for a lab that does not boot the smoke OS.
/// Call it before the lab's nodes start (they fetch the files within seconds).
pub async fn ensure_smoke_os<E: Engine>(
    engine: &E,
    lab: &Lab,
    ui: &Progress,
) -> anyhow::Result<SmokeOs> {
    let users = profiles(lab);
    if users.is_empty() {
        return Ok(SmokeOs::default());
    }
    let Some(web_root) = lab.web_root().map(Path::to_path_buf) else {
        bail!(
            "profile `{}` boots lab's smoke OS from the web root, but lab `{}` has no httpd service with a root\n  \
             help: add a [services.web] table with kind = \"httpd\"",
            users[0],
            lab.name
        );
    };
    let state_dir = lab.state_dir();
    let spec = crate::plan::image_spec(lab, IMAGE, &state_dir);
    crate::images::write_context(&state_dir.join("images"), IMAGE).with_context(|| {
        format!(
            "writing the build context of {} under {}",
            spec.tag,
            state_dir.display()
        )
    })?;
    let mut summary = Summary::default();
    apply::images(engine, std::slice::from_ref(&spec), ui, &mut summary)
        .await
        .with_context(|| {
            format!(
                "building the smoke OS (image {}) for profile `{}`",
                spec.tag,
                users.join("`, `")
            )
        })?;
    let image = engine.image_info(&spec.tag).await?.with_context(|| {
        format!(
            "image {} is gone right after it was checked or built; run `lab up` again",
            spec.tag
        )
    })?;

    let dir = web_root.join(WEB_DIR);
    let mut done = SmokeOs {
        needed: true,
        built: !summary.images_built.is_empty(),
        copied: false,
        dir: Some(dir.clone()),
    };
    if current(&dir, &image.id) {
        return Ok(done);
    }
    let key = format!("smoke OS {}", dir.display());
    ui.start(
        &key,
        &format!("copying vmlinuz and initrd from {}", spec.tag),
    );
    let copied = copy(engine, &spec.tag, &image.id, &dir).await;
    match &copied {
        Ok(()) => ui.finish(&key, true, &format!("vmlinuz and initrd from {}", spec.tag)),
        Err(e) => ui.finish(&key, false, &format!("{e:#}")),
    }
    copied?;
    done.copied = true;
    Ok(done)
}

async fn copy<E: Engine>(engine: &E, tag: &str, image_id: &str, dir: &Path) -> anyhow::Result<()> {
    let files = engine
        .copy_from_image(tag, IMAGE_DIR, dir)
        .await
        .with_context(|| {
            format!(
                "copying the smoke OS from image {tag} into {}",
                dir.display()
            )
        })?;
    for f in FILES {
        if !files.iter().any(|p| p == Path::new(f)) {
            bail!(
                "image {tag} has no {IMAGE_DIR}/{f}; its Dockerfile (images/smoke) must produce it"
            );
        }
    }
    write_atomically(&dir.join(MARKER), format!("{image_id}\n").as_bytes(), 0o644)
        .with_context(|| format!("writing {}", dir.join(MARKER).display()))
}

/// Whether `dir` holds both files, copied from image `image_id`.
fn current(dir: &Path, image_id: &str) -> bool {
    let marker = std::fs::read_to_string(dir.join(MARKER)).unwrap_or_default();
    marker.trim() == image_id
        && FILES.iter().all(|f| {
            dir.join(f)
                .metadata()
                .is_ok_and(|m| m.is_file() && m.len() > 0)
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::FakeEngine;

    const BASE: &str = "debian:bookworm-slim";

    fn lab(dir: &Path, kernel: &str) -> Lab {
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
profile = "smoke"
"#
        );
        crate::lab::from_str(&dir.join("lab.toml"), &text, &|_| None).expect("valid lab")
    }

    fn engine() -> FakeEngine {
        let engine = FakeEngine::new().with_image(BASE, Default::default());
        engine.set_image_files(
            "metal-lab/smoke:latest",
            "/out",
            &[("vmlinuz", b"kernel"), ("initrd", b"ramfs")],
        );
        engine
    }

    #[test]
    fn only_profiles_with_the_smoke_files_that_a_node_boots_count() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(profiles(&lab(dir.path(), "smoke/vmlinuz")), ["smoke"]);
        // The initrd alone is enough.
        assert_eq!(profiles(&lab(dir.path(), "mine/vmlinuz")), ["smoke"]);
        let other = lab(dir.path(), "smoke/vmlinuz");
        let mut other = other.clone();
        other.nodes[0].profile = Some("other".into());
        assert!(profiles(&other).is_empty());
    }

    #[tokio::test]
    async fn builds_once_copies_once_and_again_when_the_image_changes() {
        let dir = tempfile::tempdir().unwrap();
        let lab = lab(dir.path(), "smoke/vmlinuz");
        let engine = engine();
        let ui = Progress::quiet();

        let first = ensure_smoke_os(&engine, &lab, &ui).await.unwrap();
        assert!(first.needed && first.built && first.copied, "{first:?}");
        let web = dir.path().join("webroot/smoke");
        assert_eq!(std::fs::read(web.join("vmlinuz")).unwrap(), b"kernel");
        assert_eq!(std::fs::read(web.join("initrd")).unwrap(), b"ramfs");
        assert!(dir.path().join(".lab/s/images/smoke/Dockerfile").is_file());

        engine.take_calls();
        let second = ensure_smoke_os(&engine, &lab, &ui).await.unwrap();
        assert!(
            second.needed && !second.built && !second.copied,
            "{second:?}"
        );
        assert!(!engine
            .calls()
            .iter()
            .any(|c| c.starts_with("build_image") || c.starts_with("copy_from_image")));

        // A deleted file is copied again.
        std::fs::remove_file(web.join("initrd")).unwrap();
        assert!(ensure_smoke_os(&engine, &lab, &ui).await.unwrap().copied);

        // Another image (same context hash, another id: e.g. rebuilt by hand) replaces the files.
        let labels = engine
            .image_info("metal-lab/smoke:latest")
            .await
            .unwrap()
            .unwrap()
            .labels;
        engine.add_image("metal-lab/smoke:latest", labels);
        let again = ensure_smoke_os(&engine, &lab, &ui).await.unwrap();
        assert!(!again.built && again.copied, "{again:?}");
    }

    #[tokio::test]
    async fn a_lab_without_the_smoke_os_touches_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let mut lab = lab(dir.path(), "smoke/vmlinuz");
        lab.nodes[0].profile = Some("other".into());
        let engine = engine();
        assert_eq!(
            ensure_smoke_os(&engine, &lab, &Progress::quiet())
                .await
                .unwrap(),
            SmokeOs::default()
        );
        assert!(engine.calls().is_empty());
        assert!(!dir.path().join("webroot/smoke").exists());
    }

    #[tokio::test]
    async fn an_image_without_the_files_is_an_error_naming_them() {
        let dir = tempfile::tempdir().unwrap();
        let lab = lab(dir.path(), "smoke/vmlinuz");
        let engine = FakeEngine::new().with_image(BASE, Default::default());
        engine.set_image_files("metal-lab/smoke:latest", "/out", &[("vmlinuz", b"kernel")]);
        let err = ensure_smoke_os(&engine, &lab, &Progress::quiet())
            .await
            .unwrap_err();
        assert!(format!("{err:#}").contains("has no /out/initrd"), "{err:#}");
        // Nothing marks the half copy as current: the next run copies again.
        assert!(!current(&dir.path().join("webroot/smoke"), "any"));
    }
}
