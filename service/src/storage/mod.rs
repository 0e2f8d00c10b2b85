//! Storage work of a clone: byte copies ([`copy`]), qcow2 overlays for
//! linked clones ([`overlay`]) and copies of libvirt pool volumes ([`volume`]).

pub mod copy;
pub mod overlay;
pub mod volume;

use std::os::unix::fs::MetadataExt;
use std::path::Path;

/// Where an emulated TPM's swtpm state lives, one folder per domain UUID.
pub const SWTPM_STATE_DIR: &str = "/var/lib/libvirt/swtpm";

/// Whether anything (even a dangling symlink) is at `path`.
pub fn occupied(path: &Path) -> bool {
    path.symlink_metadata().is_ok()
}

/// Gives `path` the owner and group of `like`, and `mode`.
pub fn set_owner_and_mode(path: &Path, like: &Path, mode: u32) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let meta = like.metadata()?;
    std::os::unix::fs::chown(path, Some(meta.uid()), Some(meta.gid()))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
}
