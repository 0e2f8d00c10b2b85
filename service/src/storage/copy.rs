//! The file copy engine behind a full clone: byte-exact, sparse, reflink first, cancellable,
//! durable, with flat memory, and nothing left behind when it fails.
//!
//! Files are copied as bytes whatever their format (a qcow2 stays a qcow2 with its snapshots and
//! backing-file reference). Only data extents are moved (SEEK_DATA/SEEK_HOLE), so holes stay
//! holes. The fastest method the filesystems allow does the work: a FICLONE reflink, else
//! `copy_file_range`, else a read/write loop with one fixed buffer; each fallback is logged.
//! Everything goes through descriptors: sources are opened by [`Source`] without following a
//! link or opening anything but a file or block device, copies are created in an open
//! [`Folder`] and removed again (only if they are still ours) when anything fails.

use std::ffi::OsStr;
use std::fmt;
use std::fs::File;
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use rustix::fs::{FileType, Gid, Mode, SeekFrom, Stat, Uid};
use rustix::io::Errno;
use tracing::{debug, info, warn};

pub use super::error::FileError;
use super::error::{io_error, FileKind};
use super::folder::{self, FileId, Folder, Removal};

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

    fn check(&self) -> Result<(), FileError> {
        if self.is_cancelled() {
            Err(FileError::Cancelled)
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

/// An open copy source and what the copy needs to know about it.
#[derive(Debug)]
pub struct Source {
    path: PathBuf,
    file: File,
    st: Stat,
    /// The permission bits copies get.
    copy_mode: u32,
    len: u64,
    /// Block devices can't report holes: all of them is data.
    whole: bool,
}

impl Source {
    /// Opens the regular file or block device at the absolute `path` for reading (its folder
    /// is resolved by [`Folder::open`]'s rules; the file itself is never a link).
    pub fn open(path: &Path) -> Result<Source, FileError> {
        let (dir, name) = folder::split(path)?;
        Self::open_in(&Folder::open(dir)?, name)
    }

    /// Opens `name` in `folder` for reading.
    pub fn open_in(folder: &Folder, name: &OsStr) -> Result<Source, FileError> {
        let path = folder.join(name);
        let (file, st) = folder.open_readonly(name)?;
        let whole = FileType::from_raw_mode(st.st_mode) == FileType::BlockDevice;
        let len = if whole {
            rustix::fs::seek(&file, SeekFrom::End(0))
                .map_err(|e| io_error("find the size of", &path, e))?
        } else {
            st.st_size as u64
        };
        Ok(Source {
            path,
            file,
            copy_mode: st.st_mode & 0o7777,
            st,
            len,
            whole,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn file(&self) -> &File {
        &self.file
    }

    /// The size in bytes (a block device's whole size).
    pub fn len(&self) -> u64 {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn is_block_device(&self) -> bool {
        self.whole
    }

    /// Copies get owner write: a template's images are read-only, its full
    /// copies ordinary disks.
    pub fn make_copies_writable(&mut self) {
        self.copy_mode |= 0o200;
    }

    /// How many names (hard links) the file has.
    pub fn links(&self) -> u64 {
        self.st.st_nlink
    }

    pub fn owner(&self) -> (u32, u32) {
        (self.st.st_uid, self.st.st_gid)
    }

    /// The permission bits its copies get.
    pub fn copy_mode(&self) -> u32 {
        self.copy_mode
    }

    /// The permission bits.
    pub fn mode(&self) -> u32 {
        self.st.st_mode & 0o7777
    }

    fn extents(&self) -> DataExtents<'_> {
        DataExtents {
            file: &self.file,
            pos: 0,
            len: self.len,
            whole: self.whole,
        }
    }

    /// Bytes a copy moves when it can't reflink: the sum of the data extents; a block device
    /// counts whole.
    pub fn allocated(&self) -> Result<u64, FileError> {
        let mut total = 0;
        for extent in self.extents() {
            let (start, end) =
                extent.map_err(|e| io_error("find the data extents of", &self.path, e))?;
            total += end - start;
        }
        Ok(total)
    }
}

/// What the caller does at the steps of a copy.
pub trait CopyHooks {
    /// The new file or folder exists, with this identity; nothing is in it yet.
    fn created(&mut self, _id: FileId) -> Result<(), FileError> {
        Ok(())
    }

    /// A file's bytes are all there; its owner, mode and sync come next.
    fn copied(&mut self, _file: &File) -> Result<(), FileError> {
        Ok(())
    }
}

/// No hooks.
impl CopyHooks for () {}

/// Creates the new file `name` in `dst` (never overwriting: `FileError::Exists`) as a
/// byte-exact sparse copy of `source`, with its length, owner, group and mode (plus owner
/// write for [`Source::make_copies_writable`]). Tries a reflink, then `copy_file_range`, then
/// a read/write loop. The copy is synced, with its folder entry, before this returns; on any
/// error or cancel it is removed again.
pub fn copy_file(
    source: &Source,
    dst: &Folder,
    name: &OsStr,
    ctl: &CopyControl,
    hooks: &mut impl CopyHooks,
) -> Result<CopyMethod, FileError> {
    copy_file_starting_at(source, dst, name, ctl, hooks, CopyMethod::Reflink)
}

/// `copy_file`, but skipping the methods before `first` (tests use it to exercise each path).
#[doc(hidden)]
pub fn copy_file_starting_at(
    source: &Source,
    dst: &Folder,
    name: &OsStr,
    ctl: &CopyControl,
    hooks: &mut impl CopyHooks,
    first: CopyMethod,
) -> Result<CopyMethod, FileError> {
    ctl.check()?;
    let path = dst.join(name);
    let (out, id) = dst.create_file(name)?;
    let made = Made::file(dst, name, id);
    hooks.created(id)?;
    let method = copy_contents(source, &out, &path, ctl, first)?;
    hooks.copied(&out)?;
    set_owner_and_mode(&out, source.owner(), source.copy_mode, &path)?;
    out.sync_all().map_err(|e| io_error("sync", &path, e))?;
    dst.sync()?;
    made.keep();
    info!(
        src = %source.path.display(),
        dst = %path.display(),
        %method,
        bytes = source.len,
        "file copied"
    );
    Ok(method)
}

/// Recursively copies the folder `src` into the new folder `name` in `dst`, keeping the
/// owner, group and mode of every folder and file, and symlinks as symlinks (never followed).
/// The hooks hear of the new folder before anything is copied into it. On any
/// error or cancel, the new folder and everything under it are removed.
pub fn copy_tree(
    src: &Folder,
    dst: &Folder,
    name: &OsStr,
    ctl: &CopyControl,
    hooks: &mut impl CopyHooks,
) -> Result<(), FileError> {
    ctl.check()?;
    let top = dst.make_dir(name)?;
    let made = Made::tree(dst, name, top.id());
    hooks.created(top.id())?;
    let mut dirs = vec![(src.stat()?, top)];
    copy_entries(src, 0, ctl, &mut dirs)?;
    // Folders get their real mode last, deepest first, so a read-only one can be filled.
    for (st, dir) in dirs.iter().rev() {
        set_owner_and_mode(
            dir.fd(),
            (st.st_uid, st.st_gid),
            st.st_mode & 0o7777,
            dir.path(),
        )?;
        dir.sync()?;
    }
    dst.sync()?;
    made.keep();
    info!(src = %src.path().display(), dst = %dst.join(name).display(), "directory tree copied");
    Ok(())
}

/// Copies the entries of `src` into the folder `dirs[at]`, adding the folders it makes.
fn copy_entries(
    src: &Folder,
    at: usize,
    ctl: &CopyControl,
    dirs: &mut Vec<(Stat, Folder)>,
) -> Result<(), FileError> {
    for name in src.names()? {
        ctl.check()?;
        let Some(entry) = src.lookup(&name)? else {
            continue;
        };
        let to = &dirs[at].1;
        match entry.kind {
            FileKind::Directory => {
                let from = src.open_dir(&name)?;
                let made = to.make_dir(&name)?;
                let st = from.stat()?;
                dirs.push((st, made));
                let sub = dirs.len() - 1;
                copy_entries(&from, sub, ctl, dirs)?;
            }
            FileKind::Symlink => {
                let target = src.read_link(&name)?;
                to.symlink(&target, &name)?;
                to.chown_entry(&name, entry.uid, entry.gid)?;
            }
            _ if entry.is_file => {
                copy_file(&Source::open_in(src, &name)?, to, &name, ctl, &mut ())?;
            }
            kind => {
                return Err(FileError::Unsupported {
                    path: src.join(&name),
                    kind,
                })
            }
        }
    }
    Ok(())
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
        let start = match rustix::fs::seek(self.file, SeekFrom::Data(self.pos)) {
            Ok(start) => start,
            // No data after pos: the rest is a hole.
            Err(Errno::NXIO) => {
                self.pos = self.len;
                return None;
            }
            Err(Errno::INVAL) => {
                debug!("SEEK_DATA unsupported: treating the rest of the file as data");
                self.whole = true;
                return self.next();
            }
            Err(e) => return Some(Err(e.into())),
        };
        if start >= self.len {
            self.pos = self.len;
            return None;
        }
        let end = match rustix::fs::seek(self.file, SeekFrom::Hole(start)) {
            Ok(end) => end.min(self.len),
            Err(e) => return Some(Err(e.into())),
        };
        self.pos = end;
        Some(Ok((start, end)))
    }
}

/// Gives back the space of every range of `file` that reads as zeros yet
/// holds blocks (preallocated, "unwritten" extents: what QEMU's backup
/// leaves where the source had holes), so holes stay holes. Only ranges the
/// filesystem reports as holes are punched: the contents never change.
pub fn punch_holes(file: &File, path: &Path) -> Result<(), FileError> {
    let len = file
        .metadata()
        .map_err(|e| io_error("read", path, e))?
        .len();
    let extents = DataExtents {
        file,
        pos: 0,
        len,
        whole: false,
    };
    let mut hole_start = 0;
    let punch = |start: u64, end: u64| -> Result<(), FileError> {
        if start >= end {
            return Ok(());
        }
        let flags = rustix::fs::FallocateFlags::PUNCH_HOLE | rustix::fs::FallocateFlags::KEEP_SIZE;
        match rustix::fs::fallocate(file, flags, start, end - start) {
            // This filesystem cannot punch holes: the zeros keep their space.
            Err(Errno::OPNOTSUPP) => {
                debug!(path = %path.display(), "cannot punch holes here");
                Ok(())
            }
            r => r.map_err(|e| io_error("free the unused space of", path, e)),
        }
    };
    for extent in extents {
        let (start, end) = extent.map_err(|e| io_error("find the data extents of", path, e))?;
        punch(hole_start, start)?;
        hole_start = end;
    }
    punch(hole_start, len)
}

/// Moves src's bytes into the empty `out`, starting with `first`; returns the method that
/// finished the job.
fn copy_contents(
    source: &Source,
    out: &File,
    dst: &Path,
    ctl: &CopyControl,
    first: CopyMethod,
) -> Result<CopyMethod, FileError> {
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

/// Starts writing a range just copied to disk (in large pieces: small ones slow the copy down;
/// `len` 0: to the end of the file), so the final fsync has little left to wait for. Only a
/// hint: a failure here shows again, and is reported, at that fsync.
pub fn start_writeback(out: &File, pos: u64, len: u64) {
    let (Ok(pos), Ok(len)) = (i64::try_from(pos), i64::try_from(len)) else {
        return;
    };
    // SAFETY: sync_file_range on an open descriptor; it reads no memory of ours.
    unsafe { libc::sync_file_range(out.as_raw_fd(), pos, len, libc::SYNC_FILE_RANGE_WRITE) };
}

fn reflink(src: &File, dst: &File) -> io::Result<()> {
    loop {
        match rustix::fs::ioctl_ficlone(dst, src) {
            Err(rustix::io::Errno::INTR) => continue,
            r => return r.map_err(io::Error::from),
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
    let len = usize::try_from(len).map_err(|_| io::Error::from_raw_os_error(libc::EOVERFLOW))?;
    loop {
        let (mut off_in, mut off_out) = (pos, pos);
        match rustix::fs::copy_file_range(src, Some(&mut off_in), dst, Some(&mut off_out), len) {
            Err(rustix::io::Errno::INTR) => continue,
            r => return r.map(|n| n as u64).map_err(io::Error::from),
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
) -> Result<u64, FileError> {
    let read = loop {
        match source.file.read_at(buf, pos) {
            Ok(0) => {
                return Err(FileError::Io {
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

/// Gives the file or folder open as `fd` an owner, group and permission bits (through the
/// descriptor: a path could have been swapped meanwhile).
pub fn set_owner_and_mode(
    fd: impl std::os::fd::AsFd,
    (uid, gid): (u32, u32),
    mode: u32,
    path: &Path,
) -> Result<(), FileError> {
    let fd = fd.as_fd();
    let current = rustix::fs::fstat(fd).map_err(|e| io_error("read", path, e))?;
    // Owner first: chown clears setuid/setgid bits, which the mode then restores.
    if (current.st_uid, current.st_gid) != (uid, gid) {
        rustix::fs::fchown(fd, Some(Uid::from_raw(uid)), Some(Gid::from_raw(gid)))
            .map_err(|e| io_error("set the owner of", path, e))?;
    }
    rustix::fs::fchmod(fd, Mode::from_raw_mode(mode))
        .map_err(|e| io_error("set the mode of", path, e))
}

/// Removes a file or tree this module created unless `keep` is called: the cleanup on every
/// error and cancel path. Only the very file it made goes (checked by identity).
struct Made<'a> {
    folder: &'a Folder,
    name: &'a OsStr,
    id: FileId,
    tree: bool,
    armed: bool,
}

impl<'a> Made<'a> {
    fn file(folder: &'a Folder, name: &'a OsStr, id: FileId) -> Self {
        Made {
            folder,
            name,
            id,
            tree: false,
            armed: true,
        }
    }

    fn tree(folder: &'a Folder, name: &'a OsStr, id: FileId) -> Self {
        Made {
            tree: true,
            ..Made::file(folder, name, id)
        }
    }

    fn keep(mut self) {
        self.armed = false;
    }
}

impl Drop for Made<'_> {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        let path = self.folder.join(self.name);
        let removed = match self.tree {
            true => self.folder.remove_tree(self.name, self.id),
            false => self.folder.remove_file(self.name, self.id),
        };
        match removed {
            Ok(Removal::Removed) => debug!(path = %path.display(), "removed partial copy"),
            Ok(found) => warn!(path = %path.display(), "partial copy not removed: {found:?}"),
            Err(e) => warn!(path = %path.display(), "cannot remove partial copy: {e}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn punching_holes_frees_preallocated_zeros_and_keeps_the_bytes() {
        let path = std::env::temp_dir().join(format!("vmclone-punch-{}", std::process::id()));
        let file = File::options()
            .read(true)
            .write(true)
            .create_new(true)
            .open(&path)
            .unwrap();
        std::fs::remove_file(&path).unwrap();
        let mib = 1 << 20;
        file.write_all_at(&vec![7u8; mib], 0).unwrap();
        // Preallocated, never written: reads as zeros, yet holds blocks.
        rustix::fs::fallocate(
            &file,
            rustix::fs::FallocateFlags::empty(),
            mib as u64,
            8 * mib as u64,
        )
        .unwrap();
        file.write_all_at(&[9u8; 4096], 12 * mib as u64).unwrap();
        file.sync_all().unwrap();
        let blocks = |f: &File| std::os::unix::fs::MetadataExt::blocks(&f.metadata().unwrap());
        let before = blocks(&file);
        // Only where the filesystem reports the preallocation as a hole can it go.
        let reported = rustix::fs::seek(&file, SeekFrom::Hole(0)).unwrap() == mib as u64;
        punch_holes(&file, &path).unwrap();
        let mut bytes = vec![0u8; 13 * mib];
        file.read_exact_at(&mut bytes[..12 * mib + 4096], 0)
            .unwrap();
        assert!(bytes[..mib].iter().all(|&b| b == 7));
        assert!(bytes[mib..12 * mib].iter().all(|&b| b == 0));
        assert!(bytes[12 * mib..12 * mib + 4096].iter().all(|&b| b == 9));
        if reported {
            assert!(
                blocks(&file) + 8 * 2048 <= before,
                "{} -> {}",
                before,
                blocks(&file)
            );
        }
    }

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
}
