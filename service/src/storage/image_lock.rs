//! QEMU's own image locks, so that a VM cannot start on a disk while vmclone
//! copies it, and a disk some QEMU writes to is never copied.
//!
//! QEMU (block/file-posix.c) takes open-file-description (OFD) read locks on
//! single bytes of every image it opens: byte `100 + n` says "I hold
//! permission n", byte `200 + n` says "I do not let others have permission
//! n". Permission 1 is WRITE. Before taking a permission QEMU tests the
//! matching "do not share" byte, so a lock vmclone holds on byte 201 makes
//! `virsh start` fail with QEMU's "Failed to get "write" lock" for as long as
//! the copy runs, whichever libvirt connection starts the VM.

use std::fs::File;
use std::io;
use std::os::fd::AsRawFd;

const PERM_BASE: i64 = 100;
const SHARED_BASE: i64 = 200;
/// BLK_PERM_WRITE is bit 1.
const WRITE: i64 = 1;

fn lock_request(kind: libc::c_int, byte: i64) -> libc::flock {
    // SAFETY: flock is plain data; all-zero is a valid value.
    let mut fl: libc::flock = unsafe { std::mem::zeroed() };
    fl.l_type = kind as libc::c_short;
    fl.l_whence = libc::SEEK_SET as libc::c_short;
    fl.l_start = byte;
    fl.l_len = 1;
    fl
}

/// Whether some process holds the image open with write permission (a
/// running VM, on any libvirt connection).
pub fn has_writer(file: &File) -> io::Result<bool> {
    let mut fl = lock_request(libc::F_WRLCK, PERM_BASE + WRITE);
    // SAFETY: F_OFD_GETLK reads and writes the flock we pass, nothing else.
    if unsafe { libc::fcntl(file.as_raw_fd(), libc::F_OFD_GETLK, &mut fl) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(fl.l_type != libc::F_UNLCK as libc::c_short)
}

/// Forbids writers for as long as `file` stays open: QEMU then refuses to
/// open the image for writing.
pub fn forbid_writers(file: &File) -> io::Result<()> {
    let fl = lock_request(libc::F_RDLCK, SHARED_BASE + WRITE);
    // SAFETY: F_OFD_SETLK only reads the flock we pass.
    if unsafe { libc::fcntl(file.as_raw_fd(), libc::F_OFD_SETLK, &fl) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}
