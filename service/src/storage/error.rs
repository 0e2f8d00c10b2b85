//! Why a file operation of the storage layer failed, with the path a person
//! needs to act on.

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum FileError {
    #[error("the copy was cancelled")]
    Cancelled,
    #[error(
        "no space left for {}: its filesystem (or your quota on it) is full; free some space there or clone to another storage pool",
        path.display()
    )]
    NoSpace { path: PathBuf },
    #[error(
        "{} already exists and vmclone never overwrites files: remove it or choose another name",
        path.display()
    )]
    Exists { path: PathBuf },
    #[error(
        "{} is {kind}: vmclone copies only regular files, block devices, directories and symlinks",
        path.display()
    )]
    Unsupported { path: PathBuf, kind: FileKind },
    #[error("{} is not a directory", path.display())]
    NotADirectory { path: PathBuf },
    #[error(
        "{} is a symbolic link owned by user {owner}; vmclone (running as root) follows only links owned by root. Use the real path instead",
        path.display()
    )]
    UntrustedLink { path: PathBuf, owner: u32 },
    #[error(
        "{} is a symbolic link; vmclone opens disk images only by their real path, never through a link",
        path.display()
    )]
    Link { path: PathBuf },
    #[error(
        "{} can be changed by users other than root (it, or a folder on the way to it, is writable by them), so vmclone does not let libvirt or QEMU open files through it",
        path.display()
    )]
    NotRootControlled { path: PathBuf },
    #[error("{} is not a usable path: {why}", path.display())]
    BadPath { path: PathBuf, why: &'static str },
    #[error(
        "{} was replaced or moved while the clone was being made, so it is not the file vmclone wrote; try again",
        path.display()
    )]
    Replaced { path: PathBuf },
    #[error("cannot {op} {}: {source}", path.display())]
    Io {
        op: &'static str,
        path: PathBuf,
        source: io::Error,
    },
}

impl FileError {
    /// The path the error is about (none for a cancel).
    pub fn path(&self) -> Option<&Path> {
        match self {
            FileError::Cancelled => None,
            FileError::NoSpace { path }
            | FileError::Exists { path }
            | FileError::Unsupported { path, .. }
            | FileError::NotADirectory { path }
            | FileError::UntrustedLink { path, .. }
            | FileError::Link { path }
            | FileError::NotRootControlled { path }
            | FileError::BadPath { path, .. }
            | FileError::Replaced { path }
            | FileError::Io { path, .. } => Some(path),
        }
    }
}

/// What a path holds, for messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileKind {
    Directory,
    Symlink,
    Fifo,
    Socket,
    CharDevice,
    BlockDevice,
    Other,
}

impl fmt::Display for FileKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            FileKind::Directory => "a directory",
            FileKind::Symlink => "a symlink",
            FileKind::Fifo => "a FIFO",
            FileKind::Socket => "a socket",
            FileKind::CharDevice => "a character device",
            FileKind::BlockDevice => "a block device",
            FileKind::Other => "not a regular file",
        })
    }
}

impl FileKind {
    pub fn of(kind: rustix::fs::FileType) -> FileKind {
        use rustix::fs::FileType as T;
        match kind {
            T::Directory => FileKind::Directory,
            T::Symlink => FileKind::Symlink,
            T::Fifo => FileKind::Fifo,
            T::Socket => FileKind::Socket,
            T::CharacterDevice => FileKind::CharDevice,
            T::BlockDevice => FileKind::BlockDevice,
            _ => FileKind::Other,
        }
    }
}

/// Maps an I/O error to `FileError`, making a full disk (or quota) `NoSpace`
/// wherever it happens.
pub fn io_error(op: &'static str, path: &Path, source: impl Into<io::Error>) -> FileError {
    let source = source.into();
    match source.raw_os_error() {
        Some(libc::ENOSPC | libc::EDQUOT) => FileError::NoSpace {
            path: path.to_owned(),
        },
        _ => FileError::Io {
            op,
            path: path.to_owned(),
            source,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_space_is_recognised_whatever_the_operation() {
        let e = io_error(
            "write",
            Path::new("/pool/x.img"),
            io::Error::from_raw_os_error(libc::ENOSPC),
        );
        assert!(matches!(e, FileError::NoSpace { ref path } if path == Path::new("/pool/x.img")));
        assert!(e.to_string().contains("/pool/x.img"), "{e}");
        let e = io_error("sync", Path::new("/q"), rustix::io::Errno::DQUOT);
        assert!(matches!(e, FileError::NoSpace { .. }));
    }
}
