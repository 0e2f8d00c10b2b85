//! qcow2 images written by `qemu-img` on a file vmclone already holds open:
//! new overlays for linked clones (backed by a template's image, O(1) in time
//! and space), empty images a live clone's backup fills, new backing
//! references for copied chains, and the scratch overlays of a guest
//! customization with their commit. qemu-img gets
//! the descriptor as `/proc/self/fd/3` and never opens a path of ours or the
//! backing file (`-u`), so nothing it touches can be swapped under it.

use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::os::fd::AsRawFd;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// qemu-img writes a header, or commits the few megabytes a customization
/// changed; it never needs long.
const TIMEOUT: Duration = Duration::from_secs(60);

#[derive(Debug, thiserror::Error)]
pub enum OverlayError {
    #[error("“{format}” is not an image format name qemu-img knows")]
    BadFormat { format: String },
    #[error("qemu-img could not write {path}: {detail}")]
    QemuImg { path: String, detail: String },
}

/// `format` if it is an image format name (lower-case letters and digits).
pub fn check_format(format: &str) -> Result<&str, OverlayError> {
    let ok = !format.is_empty()
        && format.len() <= 16
        && format
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
    match ok {
        true => Ok(format),
        false => Err(OverlayError::BadFormat {
            format: format.to_owned(),
        }),
    }
}

/// Writes a qcow2 overlay of `virtual_size` bytes into the empty `file`
/// (shown as `path`), backed by the absolute `backing` of format `backing_format`.
pub fn create(
    file: &File,
    path: &Path,
    backing: &Path,
    backing_format: &str,
    virtual_size: u64,
) -> Result<(), OverlayError> {
    let args = [
        "create",
        "-q",
        "-f",
        "qcow2",
        "-u",
        "-F",
        check_format(backing_format)?,
        "-b",
    ];
    let size = OsString::from(virtual_size.to_string());
    run(
        file,
        path,
        &args,
        &[backing.as_os_str(), "/proc/self/fd/3".as_ref(), &size],
    )
}

/// Writes an empty qcow2 image of `virtual_size` bytes, standing on nothing,
/// into the empty `file` (shown as `path`).
pub fn create_plain(file: &File, path: &Path, virtual_size: u64) -> Result<(), OverlayError> {
    let args = ["create", "-q", "-f", "qcow2"];
    let size = OsString::from(virtual_size.to_string());
    run(file, path, &args, &["/proc/self/fd/3".as_ref(), &size])
}

/// Writes a qcow2 overlay into the empty `file` over `backing` (a name qemu-img
/// may open: the service's own `json:` description of descriptors), as large
/// as the backing image.
pub fn create_sized_by_backing(
    file: &File,
    path: &Path,
    backing: &Path,
    backing_format: &str,
) -> Result<(), OverlayError> {
    let args = [
        "create",
        "-q",
        "-f",
        "qcow2",
        "-F",
        check_format(backing_format)?,
        "-b",
    ];
    run(
        file,
        path,
        &args,
        &[backing.as_os_str(), "/proc/self/fd/3".as_ref()],
    )
}

/// Writes the data of the qcow2 overlay open as `file` into its backing
/// image, leaving the overlay as it is (`qemu-img commit -d`).
pub fn commit(file: &File, path: &Path) -> Result<(), OverlayError> {
    let args = ["commit", "-q", "-d", "-f", "qcow2"];
    run(file, path, &args, &["/proc/self/fd/3".as_ref()])
}

/// Points the qcow2 image open as `file` at a new backing file, changing only
/// its header (`qemu-img rebase -u`).
pub fn rebase(
    file: &File,
    path: &Path,
    backing: &Path,
    backing_format: &str,
) -> Result<(), OverlayError> {
    let args = [
        "rebase",
        "-q",
        "-u",
        "-f",
        "qcow2",
        "-F",
        check_format(backing_format)?,
        "-b",
    ];
    run(
        file,
        path,
        &args,
        &[backing.as_os_str(), "/proc/self/fd/3".as_ref()],
    )
}

/// Runs qemu-img with `file` as its descriptor 3, bounded in time.
fn run(file: &File, path: &Path, args: &[&str], tail: &[&OsStr]) -> Result<(), OverlayError> {
    let failed = |detail: String| OverlayError::QemuImg {
        path: path.display().to_string(),
        detail,
    };
    let fd = file.as_raw_fd();
    let mut cmd = Command::new("qemu-img");
    cmd.args(args)
        .args(tail)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    // SAFETY: between fork and exec the child only calls dup2 or fcntl,
    // which are async-signal-safe; descriptor 3 ends up not close-on-exec.
    unsafe {
        cmd.pre_exec(move || {
            let done = match fd {
                3 => libc::fcntl(3, libc::F_SETFD, 0),
                _ => libc::dup2(fd, 3),
            };
            match done {
                -1 => Err(std::io::Error::last_os_error()),
                _ => Ok(()),
            }
        });
    }
    let mut child = cmd
        .spawn()
        .map_err(|e| failed(format!("cannot run qemu-img (package qemu-utils): {e}")))?;
    let deadline = Instant::now() + TIMEOUT;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(5)),
            Ok(None) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(failed(format!(
                    "it did not finish within {} s",
                    TIMEOUT.as_secs()
                )));
            }
            Err(e) => return Err(failed(e.to_string())),
        }
    };
    if status.success() {
        return Ok(());
    }
    let mut stderr = String::new();
    if let Some(mut err) = child.stderr.take() {
        let _ = std::io::Read::read_to_string(&mut err, &mut stderr);
    }
    Err(failed(stderr.trim().to_string()))
}
