//! Storage work of a clone, all of it through descriptors ([`folder`]): byte
//! copies ([`copy`]), qcow2 headers read ([`qcow2`]) and written by qemu-img
//! ([`overlay`]), QEMU's image locks ([`image_lock`]) and copies of libvirt
//! pool volumes ([`volume`]).

pub mod copy;
pub mod error;
pub mod folder;
pub mod image_lock;
pub mod overlay;
pub mod qcow2;
pub mod volume;

use std::path::PathBuf;

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
