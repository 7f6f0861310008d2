//! Virtual media that boots: InsertMedia fetches the image into the node's volume and hands it
//! to the node's `lab-media`, which attaches it to the VM's CD-ROM (now over QMP if the VM runs,
//! and at every power on).

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

/// Where the images are kept in the node's volume (one per drive).
pub const MEDIA_DIR: &str = "/var/lib/lab/media";
/// The largest image accepted (a DVD image fits; a disk-filling download does not).
pub const MAX_IMAGE: u64 = 8 << 30;
/// No connection within this, or no byte for this long: the download fails.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
const STALL_TIMEOUT: Duration = Duration::from_secs(30);

/// Where InsertMedia's images go and the tool that attaches them.
#[derive(Debug, Clone)]
pub struct Drive {
    pub dir: PathBuf,
    /// `lab-media` (insert FILE | eject | status).
    pub tool: PathBuf,
}

impl Default for Drive {
    fn default() -> Drive {
        Drive {
            dir: MEDIA_DIR.into(),
            tool: "/usr/local/bin/lab-media".into(),
        }
    }
}

/// Why a download failed.
#[derive(Debug)]
pub enum FetchError {
    /// The server answered 401 or 403.
    Unauthorized(u16),
    /// The server answered 404 or 410.
    Missing(u16),
    /// No connection, another HTTP error status, or the transfer broke off.
    Unreachable(String),
    /// The image is larger than [`MAX_IMAGE`].
    TooLarge,
    /// Writing it into the volume failed.
    Local(std::io::Error),
}

impl Drive {
    /// The CD's image file.
    pub fn image(&self) -> PathBuf {
        self.dir.join("cd.iso")
    }

    /// Downloads `url` to [`Drive::image`] through a `.part` file and a rename: a failure leaves
    /// the image that was there. Returns the size. Blocking.
    pub fn download(&self, url: &str) -> Result<u64, FetchError> {
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_connect(Some(CONNECT_TIMEOUT))
            .timeout_per_read(Some(STALL_TIMEOUT))
            .user_agent(format!("lab-bmcd/{}", env!("CARGO_PKG_VERSION")))
            .build()
            .new_agent();
        let resp = agent
            .get(url)
            .call()
            .map_err(|e| FetchError::Unreachable(e.to_string()))?;
        let status = resp.status().as_u16();
        match status {
            200..=299 => {}
            401 | 403 => return Err(FetchError::Unauthorized(status)),
            404 | 410 => return Err(FetchError::Missing(status)),
            _ => return Err(FetchError::Unreachable(format!("HTTP status {status}"))),
        }
        let body = resp.into_body();
        if body.content_length().is_some_and(|n| n > MAX_IMAGE) {
            return Err(FetchError::TooLarge);
        }
        std::fs::create_dir_all(&self.dir).map_err(FetchError::Local)?;
        let dest = self.image();
        let part = dest.with_extension("iso.part");
        let result = (|| {
            let mut out = std::fs::File::create(&part).map_err(FetchError::Local)?;
            let mut reader = body.into_reader().take(MAX_IMAGE + 1);
            let mut buf = vec![0u8; 1 << 20];
            let mut total = 0u64;
            loop {
                let n = match reader.read(&mut buf) {
                    Ok(0) => break,
                    Ok(n) => n,
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                    Err(e) => return Err(FetchError::Unreachable(e.to_string())),
                };
                total += n as u64;
                if total > MAX_IMAGE {
                    return Err(FetchError::TooLarge);
                }
                out.write_all(&buf[..n]).map_err(FetchError::Local)?;
            }
            out.sync_all().map_err(FetchError::Local)?;
            std::fs::rename(&part, &dest).map_err(FetchError::Local)?;
            Ok(total)
        })();
        if result.is_err() {
            let _ = std::fs::remove_file(&part);
        }
        result
    }

    /// Runs the tool with `args`; Err is its message (stderr, or how it failed to run).
    pub fn run(&self, args: &[&str]) -> Result<String, String> {
        let out = Command::new(&self.tool)
            .args(args)
            .output()
            .map_err(|e| format!("cannot run {}: {e}", self.tool.display()))?;
        let text = |b: &[u8]| String::from_utf8_lossy(b).trim().to_string();
        if out.status.success() {
            Ok(text(&out.stdout))
        } else {
            let err = text(&out.stderr);
            Err(if err.is_empty() {
                format!(
                    "{} {} failed ({})",
                    self.tool.display(),
                    args.join(" "),
                    out.status
                )
            } else {
                err
            })
        }
    }

    /// The file in the drive as `lab-media status` reports it, None when empty.
    pub fn status(&self) -> Result<Option<PathBuf>, String> {
        let s = self.run(&["status"])?;
        Ok(s.strip_prefix("inserted ").map(PathBuf::from))
    }
}

/// Whether `path` is the drive's image (the status names it).
pub fn is_image(drive: &Drive, path: Option<&Path>) -> bool {
    path == Some(drive.image().as_path())
}
