//! The state folder: where the journals live, locked by one service.

use std::ffi::OsStr;
use std::fs::File;
use std::path::Path;

use crate::storage::folder::Folder;

/// The state folder (journals, the lock), made when missing and refused when
/// anyone but its owner could write into it.
pub fn open_state_dir(path: &Path) -> Result<Folder, String> {
    std::fs::create_dir_all(path).map_err(|e| format!("cannot create {}: {e}", path.display()))?;
    let folder = Folder::open(path).map_err(|e| e.to_string())?;
    let st = folder.stat().map_err(|e| e.to_string())?;
    if st.st_mode & 0o022 != 0 || st.st_uid != rustix::process::geteuid().as_raw() {
        return Err(format!(
            "the state folder {} must belong to the service's user and be writable by it alone (it holds the clone journals)",
            path.display()
        ));
    }
    Ok(folder)
}

/// An exclusive lock on `<state dir>/lock`, held for the process's life:
/// one service per state folder, so that a second one never rolls back the
/// first one's clones in progress.
pub fn lock_state_dir(state: &Folder) -> Result<File, String> {
    let name = OsStr::new("lock");
    let path = state.join(name);
    let fd = rustix::fs::openat(
        state.fd(),
        name,
        rustix::fs::OFlags::RDWR
            | rustix::fs::OFlags::CREATE
            | rustix::fs::OFlags::NOFOLLOW
            | rustix::fs::OFlags::CLOEXEC,
        rustix::fs::Mode::from_raw_mode(0o600),
    )
    .map_err(|e| format!("cannot open {}: {e}", path.display()))?;
    rustix::fs::flock(&fd, rustix::fs::FlockOperation::NonBlockingLockExclusive).map_err(|_| {
        format!(
            "another vmclone-service is running with the state folder {}; stop it first or give --state-dir",
            state.path().display()
        )
    })?;
    Ok(File::from(fd))
}
