//! Disk images shown to QEMU through the service's own descriptors.
//!
//! libguestfs resolves a drive's path before QEMU opens it (`/proc/self/fd/N`
//! would become the path again), and QEMU opens backing files by the names in
//! their headers: both could lead into folders a user controls. So the
//! appliance never gets a path of ours or of the source: it gets a scratch
//! qcow2 overlay in the clone's private folder (root's, 0700) whose backing
//! is a `json:` description of the whole chain, each image named
//! `/proc/<service pid>/fd/<n>`, a descriptor the service holds open. After
//! the customization the scratch overlay is pointed the same way at the
//! clone's own images and committed into the top one (`qemu-img commit`).

use std::fs::File;
use std::os::fd::AsRawFd;
use std::path::Path;

use crate::storage::overlay::{self, OverlayError};

/// One image of a chain, top first.
pub struct Image<'a> {
    pub file: &'a File,
    /// The format libvirt or the overlay above names (`raw`, `qcow2`, …).
    pub format: &'a str,
    pub block_device: bool,
}

/// The `json:` name of `chain` (top first) for QEMU: every image by the
/// service's descriptor, every backing link given (the last image has none),
/// so QEMU reads no name from any header.
pub fn spec(chain: &[Image<'_>]) -> Result<String, OverlayError> {
    for image in chain {
        overlay::check_format(image.format)?;
    }
    Ok(format!("json:{}", node(std::process::id(), chain)))
}

fn node(pid: u32, chain: &[Image<'_>]) -> String {
    let (top, rest) = chain.split_first().expect("a chain has a top");
    let driver = match top.block_device {
        true => "host_device",
        false => "file",
    };
    let file = format!(
        r#"{{"driver":"{driver}","filename":"/proc/{pid}/fd/{}"}}"#,
        top.file.as_raw_fd()
    );
    // Formats are checked names ([a-z0-9]): nothing to escape.
    match (rest.is_empty(), top.format) {
        (true, "qcow2") => format!(r#"{{"driver":"qcow2","file":{file},"backing":null}}"#),
        (true, format) => format!(r#"{{"driver":"{format}","file":{file}}}"#),
        (false, format) => format!(
            r#"{{"driver":"{format}","file":{file},"backing":{}}}"#,
            node(pid, rest)
        ),
    }
}

/// Writes a scratch qcow2 overlay into the empty `scratch` (shown as `path`)
/// over `chain`; qemu-img reads the chain's size through the descriptors.
pub fn scratch_overlay(
    scratch: &File,
    path: &Path,
    chain: &[Image<'_>],
) -> Result<(), OverlayError> {
    overlay::create_sized_by_backing(scratch, path, Path::new(&spec(chain)?), chain[0].format)
}

/// Writes what the appliance changed in `scratch` into the top of `target`
/// (the clone's own chain, byte for byte the chain the scratch overlay
/// stood on), and syncs it.
pub fn apply(
    scratch: &File,
    path: &Path,
    target: &[Image<'_>],
    target_path: &Path,
) -> Result<(), OverlayError> {
    overlay::rebase(scratch, path, Path::new(&spec(target)?), target[0].format)?;
    overlay::commit(scratch, path)?;
    target[0]
        .file
        .sync_all()
        .map_err(|e| OverlayError::QemuImg {
            path: target_path.display().to_string(),
            detail: format!("cannot sync it: {e}"),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chains_name_every_image_by_descriptor() {
        let (a, b) = (tempfile_like(), tempfile_like());
        let (fa, fb) = (a.as_raw_fd(), b.as_raw_fd());
        let chain = [
            Image {
                file: &a,
                format: "qcow2",
                block_device: false,
            },
            Image {
                file: &b,
                format: "raw",
                block_device: true,
            },
        ];
        let pid = std::process::id();
        assert_eq!(
            spec(&chain).unwrap(),
            format!(
                r#"json:{{"driver":"qcow2","file":{{"driver":"file","filename":"/proc/{pid}/fd/{fa}"}},"backing":{{"driver":"raw","file":{{"driver":"host_device","filename":"/proc/{pid}/fd/{fb}"}}}}}}"#
            )
        );
        // A lone qcow2 image is told it has no backing, whatever its header says.
        assert!(spec(&chain[..1]).unwrap().ends_with(r#""backing":null}"#));
        let bad = [Image {
            file: &a,
            format: r#"raw","x":"#,
            block_device: false,
        }];
        assert!(spec(&bad).is_err(), "a format is never JSON");
    }

    fn tempfile_like() -> File {
        File::open("/dev/null").unwrap()
    }
}
