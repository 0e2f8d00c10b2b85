//! The file copy engine behind a full clone: byte-exact, sparse, reflink first, cancellable,
//! durable, with flat memory, and nothing left behind when it fails.
//!
//! Files are copied as bytes whatever their format (a qcow2 stays a qcow2 with its snapshots and
//! backing-file reference). Only data extents are moved (SEEK_DATA/SEEK_HOLE), so holes stay
//! holes. The fastest method the filesystems allow does the work: a FICLONE reflink, else
//! `copy_file_range`, else a read/write loop with one fixed buffer; each fallback is logged.

use std::fmt;
use std::fs::{self, DirBuilder, File, Metadata, OpenOptions, Permissions};
use std::io::{self, Seek, SeekFrom};
use std::os::fd::AsRawFd;
use std::os::unix::fs::{lchown, PermissionsExt};
use std::os::unix::fs::{DirBuilderExt, FileExt, FileTypeExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use tracing::{debug, info, warn};

/// Bytes handed to one `copy_file_range` call: bounds how long a cancel waits and how coarse
/// progress is.
const RANGE_CHUNK: u64 = 8 << 20;
/// The read/write loop's one buffer: small enough to stay in cache (1 MiB made it 2-3x slower).
const BUF_LEN: usize = 128 << 10;
/// Granularity at which the read/write loop leaves all-zero data as holes.
const ZERO_BLOCK: usize = 4096;

/// Shared between a clone job and its copies: the job sets `cancelled`, the copy adds every
/// byte it has moved to `bytes_done` (across all files of the job).
#[derive(Debug, Clone, Default)]
pub struct CopyControl {
    pub cancelled: Arc<AtomicBool>,
    pub bytes_done: Arc<AtomicU64>,
}

impl CopyControl {
    pub fn new() -> Self {
        Self::default()
    }

    /// Asks running copies to stop; they remove what they made and return `Cancelled`.
    pub fn cancel(&self) {
        self.cancelled.store(true, Ordering::Relaxed);
    }

    pub fn is_cancelled(&self) -> bool {
        self.cancelled.load(Ordering::Relaxed)
    }

    pub fn bytes_done(&self) -> u64 {
        self.bytes_done.load(Ordering::Relaxed)
    }

    fn check(&self) -> Result<(), CopyError> {
        if self.is_cancelled() {
            Err(CopyError::Cancelled)
        } else {
            Ok(())
        }
    }

    fn advance(&self, bytes: u64) {
        self.bytes_done.fetch_add(bytes, Ordering::Relaxed);
    }
}

/// How a file was copied: the method that finally did the work.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CopyMethod {
    /// FICLONE: the copy shares the source's extents until either is written.
    Reflink,
    /// In-kernel copy of each data extent.
    CopyFileRange,
    /// Plain read/write loop over each data extent.
    ReadWrite,
}

impl fmt::Display for CopyMethod {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            CopyMethod::Reflink => "reflink",
            CopyMethod::CopyFileRange => "copy_file_range",
            CopyMethod::ReadWrite => "read/write",
        })
    }
}

#[derive(Debug, thiserror::Error)]
pub enum CopyError {
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
    Unsupported { path: PathBuf, kind: &'static str },
    #[error("cannot copy {} as a directory tree: it is not a directory", path.display())]
    NotADirectory { path: PathBuf },
    #[error("cannot {op} {}: {source}", path.display())]
    Io {
        op: &'static str,
        path: PathBuf,
        source: io::Error,
    },
}

/// Maps an I/O error to `CopyError`, making a full disk (or quota) `NoSpace` wherever it happens.
fn io_error(op: &'static str, path: &Path, source: io::Error) -> CopyError {
    match source.raw_os_error() {
        Some(libc::ENOSPC | libc::EDQUOT) => CopyError::NoSpace {
            path: path.to_owned(),
        },
        _ => CopyError::Io {
            op,
            path: path.to_owned(),
            source,
        },
    }
}

/// Bytes `copy_file` will move when it can't reflink: the sum of src's data extents; a block
/// device counts whole.
pub fn allocated_bytes(src: &Path) -> Result<u64, CopyError> {
    let source = Source::open(src)?;
    source.allocated()
}

/// Creates `dst` (never overwriting: `CopyError::Exists`) as a byte-exact sparse copy of `src`,
/// a regular file or block device, with src's length, owner, group and mode. Tries a reflink,
/// then `copy_file_range`, then a read/write loop. `dst` is synced, with its directory entry,
/// before this returns; on any error or cancel it is removed.
pub fn copy_file(src: &Path, dst: &Path, ctl: &CopyControl) -> Result<CopyMethod, CopyError> {
    copy_file_starting_at(src, dst, ctl, CopyMethod::Reflink)
}

/// `copy_file`, but skipping the methods before `first` (tests use it to exercise each path).
#[doc(hidden)]
pub fn copy_file_starting_at(
    src: &Path,
    dst: &Path,
    ctl: &CopyControl,
    first: CopyMethod,
) -> Result<CopyMethod, CopyError> {
    ctl.check()?;
    let source = Source::open(src)?;
    let out = OpenOptions::new()
        .write(true)
        .create_new(true)
        // Private until the copy is complete; src's mode is applied at the end.
        .mode(0o600)
        .open(dst)
        .map_err(|e| match e.kind() {
            io::ErrorKind::AlreadyExists => CopyError::Exists {
                path: dst.to_owned(),
            },
            _ => io_error("create", dst, e),
        })?;
    let created = RemoveOnDrop::file(dst);
    let method = copy_contents(&source, &out, dst, ctl, first)?;
    apply_owner_and_mode(&out, &source.meta, dst)?;
    out.sync_all().map_err(|e| io_error("sync", dst, e))?;
    sync_parent(dst)?;
    created.keep();
    info!(
        src = %src.display(),
        dst = %dst.display(),
        %method,
        bytes = source.len,
        "file copied"
    );
    Ok(method)
}

/// Recursively copies the directory `src` to `dst`, which must not exist, keeping the owner,
/// group and mode of every directory and file, and symlinks as symlinks. On any error or
/// cancel, `dst` and everything under it are removed.
pub fn copy_tree(src: &Path, dst: &Path, ctl: &CopyControl) -> Result<(), CopyError> {
    ctl.check()?;
    let meta = fs::metadata(src).map_err(|e| io_error("read", src, e))?;
    if !meta.is_dir() {
        return Err(CopyError::NotADirectory {
            path: src.to_owned(),
        });
    }
    make_private_dir(dst)?;
    let created = RemoveOnDrop::tree(dst);
    let mut dirs = vec![(dst.to_owned(), meta)];
    copy_dir_entries(src, dst, ctl, &mut dirs)?;
    // Directories get their real mode last, deepest first, so a read-only one can be filled.
    for (dir, meta) in dirs.iter().rev() {
        let handle = File::open(dir).map_err(|e| io_error("open", dir, e))?;
        apply_owner_and_mode(&handle, meta, dir)?;
        handle.sync_all().map_err(|e| io_error("sync", dir, e))?;
    }
    sync_parent(dst)?;
    created.keep();
    info!(src = %src.display(), dst = %dst.display(), "directory tree copied");
    Ok(())
}

fn copy_dir_entries(
    src: &Path,
    dst: &Path,
    ctl: &CopyControl,
    dirs: &mut Vec<(PathBuf, Metadata)>,
) -> Result<(), CopyError> {
    for entry in fs::read_dir(src).map_err(|e| io_error("list", src, e))? {
        ctl.check()?;
        let entry = entry.map_err(|e| io_error("list", src, e))?;
        let from = entry.path();
        let to = dst.join(entry.file_name());
        let meta = fs::symlink_metadata(&from).map_err(|e| io_error("read", &from, e))?;
        let kind = meta.file_type();
        if kind.is_dir() {
            make_private_dir(&to)?;
            dirs.push((to.clone(), meta));
            copy_dir_entries(&from, &to, ctl, dirs)?;
        } else if kind.is_symlink() {
            let target = fs::read_link(&from).map_err(|e| io_error("read link", &from, e))?;
            std::os::unix::fs::symlink(&target, &to)
                .map_err(|e| io_error("create symlink", &to, e))?;
            let current = fs::symlink_metadata(&to).map_err(|e| io_error("read", &to, e))?;
            if (current.uid(), current.gid()) != (meta.uid(), meta.gid()) {
                lchown(&to, Some(meta.uid()), Some(meta.gid()))
                    .map_err(|e| io_error("set the owner of", &to, e))?;
            }
        } else if kind.is_file() {
            copy_file(&from, &to, ctl)?;
        } else {
            return Err(CopyError::Unsupported {
                path: from,
                kind: describe(&kind),
            });
        }
    }
    Ok(())
}

fn make_private_dir(path: &Path) -> Result<(), CopyError> {
    DirBuilder::new()
        .mode(0o700)
        .create(path)
        .map_err(|e| match e.kind() {
            io::ErrorKind::AlreadyExists => CopyError::Exists {
                path: path.to_owned(),
            },
            _ => io_error("create", path, e),
        })
}

/// An open copy source and what the copy needs to know about it.
struct Source {
    path: PathBuf,
    file: File,
    meta: Metadata,
    len: u64,
    /// Block devices can't report holes: all of them is data.
    whole: bool,
}

impl Source {
    fn open(path: &Path) -> Result<Self, CopyError> {
        // Checked before opening: opening a FIFO would block.
        let kind = fs::metadata(path)
            .map_err(|e| io_error("read", path, e))?
            .file_type();
        if !kind.is_file() && !kind.is_block_device() {
            return Err(CopyError::Unsupported {
                path: path.to_owned(),
                kind: describe(&kind),
            });
        }
        let mut file = File::open(path).map_err(|e| io_error("open", path, e))?;
        let meta = file.metadata().map_err(|e| io_error("read", path, e))?;
        let whole = meta.file_type().is_block_device();
        let len = if whole {
            file.seek(SeekFrom::End(0))
                .map_err(|e| io_error("find the size of", path, e))?
        } else {
            meta.len()
        };
        Ok(Source {
            path: path.to_owned(),
            file,
            meta,
            len,
            whole,
        })
    }

    fn extents(&self) -> DataExtents<'_> {
        DataExtents {
            file: &self.file,
            pos: 0,
            len: self.len,
            whole: self.whole,
        }
    }

    fn allocated(&self) -> Result<u64, CopyError> {
        let mut total = 0;
        for extent in self.extents() {
            let (start, end) =
                extent.map_err(|e| io_error("find the data extents of", &self.path, e))?;
            total += end - start;
        }
        Ok(total)
    }
}

/// The data extents `(start, end)` of a file, from SEEK_DATA/SEEK_HOLE; all of it when the
/// file can't tell its holes.
struct DataExtents<'a> {
    file: &'a File,
    pos: u64,
    len: u64,
    whole: bool,
}

impl Iterator for DataExtents<'_> {
    type Item = io::Result<(u64, u64)>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.pos >= self.len {
            return None;
        }
        if self.whole {
            let extent = (self.pos, self.len);
            self.pos = self.len;
            return Some(Ok(extent));
        }
        let start = match seek(self.file, self.pos, libc::SEEK_DATA) {
            Ok(start) => start,
            // No data after pos: the rest is a hole.
            Err(e) if e.raw_os_error() == Some(libc::ENXIO) => {
                self.pos = self.len;
                return None;
            }
            Err(e) if e.raw_os_error() == Some(libc::EINVAL) => {
                debug!("SEEK_DATA unsupported: treating the rest of the file as data");
                self.whole = true;
                return self.next();
            }
            Err(e) => return Some(Err(e)),
        };
        if start >= self.len {
            self.pos = self.len;
            return None;
        }
        let end = match seek(self.file, start, libc::SEEK_HOLE) {
            Ok(end) => end.min(self.len),
            Err(e) => return Some(Err(e)),
        };
        self.pos = end;
        Some(Ok((start, end)))
    }
}

fn seek(file: &File, pos: u64, whence: libc::c_int) -> io::Result<u64> {
    let pos = i64::try_from(pos).map_err(|_| io::Error::from_raw_os_error(libc::EOVERFLOW))?;
    // SAFETY: lseek64 on an open descriptor; it reads no memory of ours.
    let at = unsafe { libc::lseek64(file.as_raw_fd(), pos, whence) };
    u64::try_from(at).map_err(|_| io::Error::last_os_error())
}

/// Moves src's bytes into the empty `out`, starting with `first`; returns the method that
/// finished the job.
fn copy_contents(
    source: &Source,
    out: &File,
    dst: &Path,
    ctl: &CopyControl,
    first: CopyMethod,
) -> Result<CopyMethod, CopyError> {
    let mut method = first;
    if method == CopyMethod::Reflink {
        if source.whole {
            debug!(src = %source.path.display(), "block device source: not trying a reflink");
            method = CopyMethod::CopyFileRange;
        } else {
            match reflink(&source.file, out) {
                Ok(()) => {
                    ctl.advance(source.allocated()?);
                    return Ok(CopyMethod::Reflink);
                }
                Err(e) if reflink_unsupported(&e) => {
                    info!(
                        src = %source.path.display(),
                        dst = %dst.display(),
                        "reflink not possible ({e}): falling back to copy_file_range"
                    );
                    method = CopyMethod::CopyFileRange;
                }
                Err(e) => return Err(io_error("reflink (FICLONE) into", dst, e)),
            }
        }
    }
    if method == CopyMethod::CopyFileRange && source.whole {
        // The kernel only copies ranges between regular files.
        debug!(src = %source.path.display(), "block device source: using read/write");
        method = CopyMethod::ReadWrite;
    }
    // Sizing first leaves every range not written below, including a trailing hole, a hole.
    out.set_len(source.len)
        .map_err(|e| io_error("set the size of", dst, e))?;
    let mut buf = Vec::new();
    // Start of the copied bytes not yet handed to writeback.
    let mut unflushed = 0;
    for extent in source.extents() {
        let (mut pos, end) =
            extent.map_err(|e| io_error("find the data extents of", &source.path, e))?;
        while pos < end {
            ctl.check()?;
            let moved = if method == CopyMethod::ReadWrite {
                if buf.is_empty() {
                    buf = vec![0; BUF_LEN];
                }
                let want = (end - pos).min(BUF_LEN as u64) as usize;
                read_write(source, out, dst, pos, &mut buf[..want])?
            } else {
                match copy_range(&source.file, out, pos, (end - pos).min(RANGE_CHUNK)) {
                    Ok(0) => {
                        info!(
                            src = %source.path.display(),
                            dst = %dst.display(),
                            "copy_file_range copied nothing at offset {pos}: falling back to read/write"
                        );
                        method = CopyMethod::ReadWrite;
                        continue;
                    }
                    Ok(n) => n,
                    Err(e) if copy_range_unsupported(&e) => {
                        info!(
                            src = %source.path.display(),
                            dst = %dst.display(),
                            "copy_file_range not possible ({e}): falling back to read/write"
                        );
                        method = CopyMethod::ReadWrite;
                        continue;
                    }
                    Err(e) => return Err(io_error("copy data into", dst, e)),
                }
            };
            pos += moved;
            ctl.advance(moved);
            if pos - unflushed >= RANGE_CHUNK {
                start_writeback(out, unflushed, pos - unflushed);
                unflushed = pos;
            }
        }
    }
    Ok(method)
}

/// Starts writing a range just copied to disk (in large pieces: small ones slow the copy down),
/// so the final fsync has little left to wait for. Only a hint: a failure here shows again, and
/// is reported, at that fsync.
fn start_writeback(out: &File, pos: u64, len: u64) {
    let (Ok(pos), Ok(len)) = (i64::try_from(pos), i64::try_from(len)) else {
        return;
    };
    // SAFETY: sync_file_range on an open descriptor; it reads no memory of ours.
    unsafe { libc::sync_file_range(out.as_raw_fd(), pos, len, libc::SYNC_FILE_RANGE_WRITE) };
}

fn reflink(src: &File, dst: &File) -> io::Result<()> {
    loop {
        // SAFETY: FICLONE takes the source descriptor as its argument and touches no memory of ours.
        if unsafe { libc::ioctl(dst.as_raw_fd(), libc::FICLONE, src.as_raw_fd()) } == 0 {
            return Ok(());
        }
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
}

/// Errors by which FICLONE says "not here" (filesystem, pair of filesystems or file kind).
fn reflink_unsupported(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::EOPNOTSUPP | libc::EXDEV | libc::EINVAL | libc::ENOTTY)
    )
}

/// Errors by which copy_file_range says "not here".
fn copy_range_unsupported(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::EOPNOTSUPP | libc::EXDEV | libc::EINVAL | libc::ENOSYS)
    )
}

/// One `copy_file_range` call at the same offset in both files; returns the bytes copied.
fn copy_range(src: &File, dst: &File, pos: u64, len: u64) -> io::Result<u64> {
    let offset = i64::try_from(pos).map_err(|_| io::Error::from_raw_os_error(libc::EOVERFLOW))?;
    let len = usize::try_from(len).map_err(|_| io::Error::from_raw_os_error(libc::EOVERFLOW))?;
    loop {
        let (mut off_in, mut off_out) = (offset, offset);
        // SAFETY: both offsets point to live i64s; the descriptors are open.
        let copied = unsafe {
            libc::copy_file_range(
                src.as_raw_fd(),
                &mut off_in,
                dst.as_raw_fd(),
                &mut off_out,
                len,
                0,
            )
        };
        match u64::try_from(copied) {
            Ok(n) => return Ok(n),
            Err(_) => {
                let e = io::Error::last_os_error();
                if e.kind() != io::ErrorKind::Interrupted {
                    return Err(e);
                }
            }
        }
    }
}

/// Reads up to `buf.len()` bytes at `pos` and writes them at the same offset, leaving all-zero
/// blocks as holes (`dst` reads zero there already). Returns the bytes read.
fn read_write(
    source: &Source,
    out: &File,
    dst: &Path,
    pos: u64,
    buf: &mut [u8],
) -> Result<u64, CopyError> {
    let read = loop {
        match source.file.read_at(buf, pos) {
            Ok(0) => {
                return Err(CopyError::Io {
                    op: "read",
                    path: source.path.clone(),
                    source: io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        format!(
                            "it ended at {pos} bytes instead of {}: it changed during the copy",
                            source.len
                        ),
                    ),
                });
            }
            Ok(n) => break n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(io_error("read", &source.path, e)),
        }
    };
    let data = &buf[..read];
    let mut at = 0;
    while at < data.len() {
        while at < data.len() && is_zero(block_at(data, at)) {
            at += ZERO_BLOCK;
        }
        let start = at.min(data.len());
        while at < data.len() && !is_zero(block_at(data, at)) {
            at += ZERO_BLOCK;
        }
        let end = at.min(data.len());
        if start < end {
            out.write_all_at(&data[start..end], pos + start as u64)
                .map_err(|e| io_error("write", dst, e))?;
        }
    }
    Ok(read as u64)
}

fn block_at(data: &[u8], at: usize) -> &[u8] {
    &data[at..(at + ZERO_BLOCK).min(data.len())]
}

fn is_zero(block: &[u8]) -> bool {
    // No early exit: this form vectorises, and blocks are small.
    let chunks = block.chunks_exact(16);
    let tail = chunks.remainder().iter().fold(0u8, |acc, b| acc | b);
    let body = chunks.fold(0u128, |acc, c| {
        acc | u128::from_ne_bytes(c.try_into().expect("chunks_exact yields 16 bytes"))
    });
    body == 0 && tail == 0
}

/// Gives `target` (opened from `path`) the owner, group and permission bits of `like`.
fn apply_owner_and_mode(target: &File, like: &Metadata, path: &Path) -> Result<(), CopyError> {
    let current = target.metadata().map_err(|e| io_error("read", path, e))?;
    // Owner first: chown clears setuid/setgid bits, which the mode then restores.
    if (current.uid(), current.gid()) != (like.uid(), like.gid()) {
        std::os::unix::fs::fchown(target, Some(like.uid()), Some(like.gid()))
            .map_err(|e| io_error("set the owner of", path, e))?;
    }
    target
        .set_permissions(Permissions::from_mode(like.mode() & 0o7777))
        .map_err(|e| io_error("set the mode of", path, e))
}

/// Makes `path`'s directory entry durable.
fn sync_parent(path: &Path) -> Result<(), CopyError> {
    let parent = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    File::open(parent)
        .and_then(|dir| dir.sync_all())
        .map_err(|e| io_error("sync", parent, e))
}

fn describe(kind: &fs::FileType) -> &'static str {
    if kind.is_dir() {
        "a directory"
    } else if kind.is_symlink() {
        "a symlink"
    } else if kind.is_fifo() {
        "a FIFO"
    } else if kind.is_socket() {
        "a socket"
    } else if kind.is_char_device() {
        "a character device"
    } else if kind.is_block_device() {
        "a block device"
    } else {
        "not a regular file"
    }
}

/// Removes a file or tree this module created unless `keep` is called: the cleanup on every
/// error and cancel path.
struct RemoveOnDrop<'a> {
    path: &'a Path,
    tree: bool,
    armed: bool,
}

impl<'a> RemoveOnDrop<'a> {
    fn file(path: &'a Path) -> Self {
        RemoveOnDrop {
            path,
            tree: false,
            armed: true,
        }
    }

    fn tree(path: &'a Path) -> Self {
        RemoveOnDrop {
            path,
            tree: true,
            armed: true,
        }
    }

    fn keep(mut self) {
        self.armed = false;
    }
}

impl Drop for RemoveOnDrop<'_> {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        let removed = if self.tree {
            fs::remove_dir_all(self.path)
        } else {
            fs::remove_file(self.path)
        };
        match removed {
            Ok(()) => debug!(path = %self.path.display(), "removed partial copy"),
            Err(e) => warn!(path = %self.path.display(), "cannot remove partial copy: {e}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zero_detection_sees_a_single_set_byte() {
        let mut block = vec![0u8; ZERO_BLOCK + 7];
        assert!(is_zero(&block));
        for at in [0, 15, 16, 4095, ZERO_BLOCK + 6] {
            block[at] = 1;
            assert!(!is_zero(&block), "byte {at} set");
            block[at] = 0;
        }
    }

    #[test]
    fn no_space_is_recognised_whatever_the_operation() {
        let e = io_error(
            "write",
            Path::new("/pool/x.img"),
            io::Error::from_raw_os_error(libc::ENOSPC),
        );
        assert!(matches!(e, CopyError::NoSpace { ref path } if path == Path::new("/pool/x.img")));
        assert!(e.to_string().contains("/pool/x.img"), "{e}");
        let e = io_error(
            "sync",
            Path::new("/q"),
            io::Error::from_raw_os_error(libc::EDQUOT),
        );
        assert!(matches!(e, CopyError::NoSpace { .. }));
    }
}
