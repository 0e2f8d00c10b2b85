//! Storage work of a clone: byte copies ([`copy`]), qcow2 overlays for
//! linked clones ([`overlay`]) and copies of libvirt pool volumes ([`volume`]).

pub mod copy;
pub mod overlay;
pub mod volume;

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// Where libvirt keeps an emulated TPM's swtpm state, one folder per domain
/// UUID: system-wide for `qemu:///system` (and for root, whose session is the
/// system daemon), in the user's libvirt config folder for `qemu:///session`.
pub fn swtpm_state_dir(uri: &str) -> PathBuf {
    // SAFETY: geteuid cannot fail.
    let root = unsafe { libc::geteuid() } == 0;
    if !root && uri.starts_with("qemu") && uri.contains("/session") {
        let config = std::env::var_os("XDG_CONFIG_HOME")
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".config")));
        if let Some(config) = config {
            return config.join("libvirt/qemu/swtpm");
        }
    }
    PathBuf::from("/var/lib/libvirt/swtpm")
}

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn swtpm_state_is_where_libvirt_keeps_it() {
        let system = PathBuf::from("/var/lib/libvirt/swtpm");
        assert_eq!(swtpm_state_dir("qemu:///system"), system);
        let session = swtpm_state_dir("qemu:///session");
        // SAFETY: geteuid cannot fail.
        if unsafe { libc::geteuid() } == 0 {
            // root's session is the system daemon.
            assert_eq!(session, system);
        } else {
            assert!(
                session.ends_with("libvirt/qemu/swtpm"),
                "{}",
                session.display()
            );
            assert_ne!(session, system);
        }
    }
}
