//! qcow2 overlays for linked clones: a new, empty image whose backing file is
//! the template's image. Creating one costs O(1) in time and space.

use std::fs::OpenOptions;
use std::path::Path;
use std::process::Command;

#[derive(Debug, thiserror::Error)]
pub enum OverlayError {
    #[error("{path} already exists; vmclone never overwrites a file")]
    Exists { path: String },
    #[error("Cannot create the overlay {path}: {source}")]
    Create {
        path: String,
        source: std::io::Error,
    },
    #[error("qemu-img could not create the overlay {path} on {backing}: {detail}")]
    QemuImg {
        path: String,
        backing: String,
        detail: String,
    },
}

/// Creates `path` (which must not exist) as a qcow2 overlay of `backing`
/// (absolute path, format `backing_format`).
pub fn create(path: &Path, backing: &Path, backing_format: &str) -> Result<(), OverlayError> {
    let shown = path.display().to_string();
    // Claim the name atomically first: qemu-img itself would truncate an existing file.
    OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
        .map_err(|source| match source.kind() {
            std::io::ErrorKind::AlreadyExists => OverlayError::Exists {
                path: shown.clone(),
            },
            _ => OverlayError::Create {
                path: shown.clone(),
                source,
            },
        })?;
    let out = Command::new("qemu-img")
        .args(["create", "-q", "-f", "qcow2", "-F", backing_format, "-b"])
        .arg(backing)
        .arg(path)
        .output();
    let failure = match out {
        Ok(o) if o.status.success() => return Ok(()),
        Ok(o) => String::from_utf8_lossy(&o.stderr).trim().to_string(),
        Err(e) => format!("cannot run qemu-img (package qemu-utils): {e}"),
    };
    let _ = std::fs::remove_file(path);
    Err(OverlayError::QemuImg {
        path: shown,
        backing: backing.display().to_string(),
        detail: failure,
    })
}
