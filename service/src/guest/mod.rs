//! Changes inside a guest's disks, made by libguestfs: its appliance (a
//! small VM under QEMU) mounts the guest's filesystems, so nothing of the
//! guest is ever mounted or parsed by the host kernel or the service.
//!
//! The service drives `guestfish` as a child process (see [`fish`]) rather
//! than linking libguestfs: it starts and serves without libguestfs installed
//! (and then refuses `guest-identity=reset` naming the package), a cancel
//! kills the appliance's process group at any moment, and nothing libguestfs
//! does can crash the root service.

pub mod fish;
pub mod image;
pub mod reset;

use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use crate::storage::error::FileError;
use crate::storage::folder::Folder;
use crate::storage::overlay::OverlayError;
use fish::{Drive, Fish};

#[derive(Debug, thiserror::Error)]
pub enum GuestError {
    #[error(
        "guest-identity “reset” needs libguestfs, which is not installed on this host: install the Debian package {} (apt install libguestfs-tools), then try again",
        fish::PACKAGES
    )]
    NotInstalled,
    /// Not a guest vmclone can reset: refused before any copy.
    #[error("{0}")]
    Unrecognised(String),
    /// The appliance or a command in it failed; libguestfs's message.
    #[error("{0}")]
    Tool(String),
    #[error("the customization was cancelled")]
    Cancelled,
    #[error(transparent)]
    File(#[from] FileError),
    #[error(transparent)]
    Image(#[from] OverlayError),
}

/// guestfish, or why `reset` cannot be done on this host.
pub fn installed() -> Result<PathBuf, GuestError> {
    fish::find()
}

/// Resets the identity of the guest on `drives` (its disks, in order, all
/// of them writable scratch overlays) to `host_name`: one appliance run that
/// first recognises the guest (refusing anything but one Linux system) and
/// then changes it. `scratch` is the clone's private folder. Returns what
/// was done, for the log.
pub fn customize(
    program: &std::path::Path,
    drives: &[Drive],
    scratch: &Folder,
    vm: &str,
    host_name: &str,
    cancelled: &Arc<AtomicBool>,
) -> Result<Vec<String>, GuestError> {
    let mut fish = Fish::launch(program, drives, scratch.path(), cancelled)?;
    let guest = reset::recognise(&mut fish, vm)?;
    tracing::info!("customizing “{vm}”: {} on {}", guest.product, guest.root);
    reset::mount(&mut fish, &guest)?;
    let done = reset::reset(&mut fish, host_name, scratch)?;
    fish.finish()?;
    Ok(done)
}
