//! Folders the service reads from and writes into, handled only through
//! descriptors. A folder is resolved once, following symbolic links only when
//! root owns them (a link a user made could point anywhere), and opened;
//! every file or folder in it is then created, checked, changed and removed
//! relative to that descriptor (`openat`, `fstat`, `fchown`, `unlinkat`), so
//! no checked path is ever looked up again. Each created file is known by its
//! [`FileId`], and a removal takes away only the file with that identity.

use std::ffi::{OsStr, OsString};
use std::fmt;
use std::fs::File;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};
use std::str::FromStr;

use rustix::fs::{self as rfs, AtFlags, FileType, Mode, OFlags, Stat};
use rustix::io::Errno;

use super::error::{io_error, FileError, FileKind};

/// The most symbolic links one resolution follows (as the kernel's limit).
const MAX_LINKS: usize = 40;

/// A file's identity on the host: its device and inode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FileId {
    pub dev: u64,
    pub ino: u64,
}

impl FileId {
    pub fn of(st: &Stat) -> FileId {
        FileId {
            dev: st.st_dev,
            ino: st.st_ino,
        }
    }
}

impl fmt::Display for FileId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.dev, self.ino)
    }
}

impl FromStr for FileId {
    type Err = ();

    fn from_str(s: &str) -> Result<FileId, ()> {
        let (dev, ino) = s.split_once(':').ok_or(())?;
        Ok(FileId {
            dev: dev.parse().map_err(|_| ())?,
            ino: ino.parse().map_err(|_| ())?,
        })
    }
}

/// What is found under a name in a folder (not following a symlink).
#[derive(Debug, Clone, Copy)]
pub struct Entry {
    pub id: FileId,
    pub kind: FileKind,
    pub is_file: bool,
    pub uid: u32,
    pub gid: u32,
    pub mode: u32,
    pub size: u64,
    pub nlink: u64,
}

impl Entry {
    fn of(st: &Stat) -> Entry {
        let kind = FileType::from_raw_mode(st.st_mode);
        Entry {
            id: FileId::of(st),
            kind: FileKind::of(kind),
            is_file: kind == FileType::RegularFile,
            uid: st.st_uid,
            gid: st.st_gid,
            mode: st.st_mode & 0o7777,
            size: st.st_size as u64,
            nlink: st.st_nlink,
        }
    }
}

/// What a removal found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Removal {
    /// The file with the given identity was there and is gone.
    Removed,
    /// Nothing is under that name.
    Absent,
    /// Something else is under that name now; it was left alone.
    NotOurs,
}

/// An open folder.
#[derive(Debug)]
pub struct Folder {
    fd: OwnedFd,
    /// The path it was opened by, for messages and the journal.
    path: PathBuf,
    id: FileId,
}

/// A name that is one plain path component.
fn check_name<'a>(folder: &Path, name: &'a OsStr) -> Result<&'a OsStr, FileError> {
    let b = name.as_bytes();
    if b.is_empty() || b == b"." || b == b".." || b.contains(&b'/') || b.contains(&0) {
        return Err(FileError::BadPath {
            path: folder.join(name),
            why: "not a plain file name",
        });
    }
    Ok(name)
}

/// The folder and file name of an absolute path to a file.
pub fn split(path: &Path) -> Result<(&Path, &OsStr), FileError> {
    let bad = |why| FileError::BadPath {
        path: path.to_owned(),
        why,
    };
    if !path.is_absolute() {
        return Err(bad("not an absolute path"));
    }
    match (path.parent(), path.file_name()) {
        (Some(dir), Some(name)) => Ok((dir, name)),
        _ => Err(bad("it names no file")),
    }
}

/// Whom a resolution trusts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Trust {
    /// Root's links, and folders whoever owns them.
    RootLinks,
    /// Only folders and links nobody but root can change: what the path
    /// names can then be handed to another process (libvirtd, QEMU), which
    /// resolves it again.
    RootOnly,
}

/// Whether nobody but root can change which entry (owned by `entry_uid`) a
/// name in the folder `dir` names: root's folder, writable by nobody else,
/// or sticky with a root-owned entry (others cannot rename or remove it).
fn root_controls(dir: &Stat, entry_uid: u32) -> bool {
    let writable_by_others = dir.st_mode & 0o022 != 0;
    let sticky = dir.st_mode & 0o1000 != 0;
    dir.st_uid == 0 && (!writable_by_others || (sticky && entry_uid == 0))
}

/// An `O_PATH` descriptor of what `path` names, resolved from the root one
/// component at a time: `..` goes to the folder really above, and a symbolic
/// link is followed only when root owns it. With [`Trust::RootOnly`] every
/// step must also be one only root controls.
fn resolve(path: &Path, trust: Trust) -> Result<OwnedFd, FileError> {
    let io = |op, e: Errno| io_error(op, path, e);
    if !path.is_absolute() {
        return Err(FileError::BadPath {
            path: path.to_owned(),
            why: "not an absolute path",
        });
    }
    let root = || {
        rfs::open(
            "/",
            OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| io("open", e))
    };
    // Folders walked so far, the root first; `..` pops.
    let mut stack: Vec<OwnedFd> = vec![root()?];
    let mut todo: Vec<OsString> = components(path);
    todo.reverse();
    let mut links = 0;
    // Where the walk is, for messages.
    let mut shown = PathBuf::from("/");
    while let Some(name) = todo.pop() {
        match name.as_bytes() {
            b"." => continue,
            b".." => {
                if stack.len() > 1 {
                    stack.pop();
                    shown.pop();
                }
                continue;
            }
            _ => {}
        }
        shown.push(&name);
        let here = stack.last().expect("the root stays");
        let fd = rfs::openat(
            here,
            name.as_os_str(),
            OFlags::PATH | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| io("open", e))?;
        let st = rfs::fstat(&fd).map_err(|e| io("read", e))?;
        if trust == Trust::RootOnly {
            let dir = rfs::fstat(here).map_err(|e| io("read", e))?;
            if !root_controls(&dir, st.st_uid) {
                return Err(FileError::NotRootControlled { path: shown });
            }
        }
        match FileType::from_raw_mode(st.st_mode) {
            FileType::Symlink => {
                follow(&shown, &fd, &st, &mut links, &mut todo, &mut stack, &root)?;
                shown.pop();
                if stack.len() == 1 {
                    shown = PathBuf::from("/");
                }
            }
            FileType::Directory => stack.push(fd),
            _ if todo.is_empty() => return Ok(fd),
            _ => return Err(FileError::NotADirectory { path: shown }),
        }
    }
    Ok(stack.pop().expect("the root stays"))
}

/// Queues the target of the root-owned symlink `fd` (at `path`) for resolution.
fn follow(
    path: &Path,
    fd: &OwnedFd,
    st: &Stat,
    links: &mut usize,
    todo: &mut Vec<OsString>,
    stack: &mut Vec<OwnedFd>,
    root: &dyn Fn() -> Result<OwnedFd, FileError>,
) -> Result<(), FileError> {
    if st.st_uid != 0 {
        return Err(FileError::UntrustedLink {
            path: path.to_owned(),
            owner: st.st_uid,
        });
    }
    *links += 1;
    if *links > MAX_LINKS {
        return Err(io_error("resolve", path, Errno::LOOP));
    }
    let target = rfs::readlinkat(fd, "", Vec::new()).map_err(|e| io_error("read", path, e))?;
    let target = PathBuf::from(OsStr::from_bytes(target.as_bytes()));
    if target.is_absolute() {
        stack.clear();
        stack.push(root()?);
    }
    let mut parts = components(&target);
    parts.reverse();
    todo.extend(parts);
    Ok(())
}

fn components(path: &Path) -> Vec<OsString> {
    path.components()
        .filter_map(|c| match c {
            Component::Normal(n) => Some(n.to_owned()),
            Component::ParentDir => Some("..".into()),
            Component::CurDir => Some(".".into()),
            Component::RootDir | Component::Prefix(_) => None,
        })
        .collect()
}

impl Folder {
    /// Opens the folder at the absolute `path` (see the module's rules).
    pub fn open(path: &Path) -> Result<Folder, FileError> {
        let fd = resolve(path, Trust::RootLinks)?;
        Self::from_path_fd(path.to_owned(), &fd)
    }

    /// Opens the folder at the absolute `path` only if nobody but root can
    /// change what the path, or a root-owned entry made in the folder,
    /// resolves to: such a path may be given to libvirt and QEMU.
    pub fn open_root_controlled(path: &Path) -> Result<Folder, FileError> {
        let fd = resolve(path, Trust::RootOnly)?;
        let folder = Self::from_path_fd(path.to_owned(), &fd)?;
        match root_controls(&folder.stat()?, 0) {
            true => Ok(folder),
            false => Err(FileError::NotRootControlled {
                path: path.to_owned(),
            }),
        }
    }

    /// The mount this folder is on (a rename works only within one).
    pub fn mount_id(&self) -> Result<u64, FileError> {
        let stx = rfs::statx(&self.fd, "", AtFlags::EMPTY_PATH, rfs::StatxFlags::MNT_ID)
            .map_err(|e| io_error("read", &self.path, e))?;
        Ok(stx.stx_mnt_id)
    }

    /// Moves the file `name` of `from` to `name` here, never replacing
    /// anything (`FileError::Exists`); both folders are on one mount.
    pub fn move_in(&self, from: &Folder, name: &OsStr) -> Result<(), FileError> {
        let name = check_name(&self.path, name)?;
        rfs::renameat_with(&from.fd, name, &self.fd, name, rfs::RenameFlags::NOREPLACE).map_err(
            |e| match e {
                Errno::EXIST => FileError::Exists {
                    path: self.join(name),
                },
                e => io_error("move into place", &self.join(name), e),
            },
        )
    }

    fn from_path_fd(path: PathBuf, fd: &OwnedFd) -> Result<Folder, FileError> {
        let st = rfs::fstat(fd).map_err(|e| io_error("read", &path, e))?;
        if FileType::from_raw_mode(st.st_mode) != FileType::Directory {
            return Err(FileError::NotADirectory { path });
        }
        let fd = rfs::openat(
            fd,
            ".",
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| io_error("open", &path, e))?;
        Ok(Folder {
            fd,
            path,
            id: FileId::of(&st),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn id(&self) -> FileId {
        self.id
    }

    pub fn fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }

    /// The path of `name` in this folder, for messages and the domain XML.
    pub fn join(&self, name: &OsStr) -> PathBuf {
        self.path.join(name)
    }

    /// What is under `name`, without following a symlink.
    pub fn lookup(&self, name: &OsStr) -> Result<Option<Entry>, FileError> {
        let name = check_name(&self.path, name)?;
        match rfs::statat(&self.fd, name, AtFlags::SYMLINK_NOFOLLOW) {
            Ok(st) => Ok(Some(Entry::of(&st))),
            Err(Errno::NOENT) => Ok(None),
            Err(e) => Err(io_error("read", &self.join(name), e)),
        }
    }

    /// Creates the new file `name` (never replacing anything), private to
    /// root until its owner and mode are set.
    pub fn create_file(&self, name: &OsStr) -> Result<(File, FileId), FileError> {
        let name = check_name(&self.path, name)?;
        let path = self.join(name);
        let fd = rfs::openat(
            &self.fd,
            name,
            OFlags::RDWR | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::from_raw_mode(0o600),
        )
        .map_err(|e| match e {
            Errno::EXIST => FileError::Exists { path: path.clone() },
            e => io_error("create", &path, e),
        })?;
        let st = rfs::fstat(&fd).map_err(|e| io_error("read", &path, e))?;
        Ok((File::from(fd), FileId::of(&st)))
    }

    /// Makes the new folder `name`, private to root, and opens it.
    pub fn make_dir(&self, name: &OsStr) -> Result<Folder, FileError> {
        let name = check_name(&self.path, name)?;
        let path = self.join(name);
        rfs::mkdirat(&self.fd, name, Mode::from_raw_mode(0o700)).map_err(|e| match e {
            Errno::EXIST => FileError::Exists { path: path.clone() },
            e => io_error("create", &path, e),
        })?;
        let folder = self.open_dir(name)?;
        // Between mkdir and open someone who can write here could have put
        // another folder in its place: ours is root's, private and empty.
        let st = rfs::fstat(&folder.fd).map_err(|e| io_error("read", &path, e))?;
        if st.st_uid != rustix::process::geteuid().as_raw()
            || st.st_mode & 0o7777 != 0o700
            || !folder.names()?.is_empty()
        {
            return Err(FileError::Replaced { path });
        }
        Ok(folder)
    }

    /// Opens the folder `name` in this folder, never through a symlink.
    pub fn open_dir(&self, name: &OsStr) -> Result<Folder, FileError> {
        let name = check_name(&self.path, name)?;
        let path = self.join(name);
        let fd = rfs::openat(
            &self.fd,
            name,
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| match e {
            Errno::LOOP => FileError::Link { path: path.clone() },
            Errno::NOTDIR => FileError::NotADirectory { path: path.clone() },
            e => io_error("open", &path, e),
        })?;
        let st = rfs::fstat(&fd).map_err(|e| io_error("read", &path, e))?;
        Ok(Folder {
            fd,
            path,
            id: FileId::of(&st),
        })
    }

    /// Opens `name` for reading without side effects: a symlink is refused,
    /// and only a regular file or a block device is opened for reading (a
    /// FIFO or a device swapped in never hangs or triggers anything).
    pub fn open_readonly(&self, name: &OsStr) -> Result<(File, Stat), FileError> {
        let name = check_name(&self.path, name)?;
        let path = self.join(name);
        let pathfd = rfs::openat(
            &self.fd,
            name,
            OFlags::PATH | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| io_error("open", &path, e))?;
        let st = rfs::fstat(&pathfd).map_err(|e| io_error("read", &path, e))?;
        match FileType::from_raw_mode(st.st_mode) {
            FileType::RegularFile | FileType::BlockDevice => {}
            FileType::Symlink => return Err(FileError::Link { path }),
            other => {
                return Err(FileError::Unsupported {
                    path,
                    kind: FileKind::of(other),
                })
            }
        }
        // Reopen that very inode (no lookup by name again) for reading.
        let proc = format!("/proc/self/fd/{}", std::os::fd::AsRawFd::as_raw_fd(&pathfd));
        let fd = rfs::open(
            proc.as_str(),
            OFlags::RDONLY | OFlags::NONBLOCK | OFlags::NOCTTY | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| io_error("open", &path, e))?;
        let st = rfs::fstat(&fd).map_err(|e| io_error("read", &path, e))?;
        Ok((File::from(fd), st))
    }

    /// Opens the regular file `name` for reading and writing if it is still
    /// the file `id` (never through a link, never anything else swapped in).
    pub fn open_rw_if(&self, name: &OsStr, id: FileId) -> Result<File, FileError> {
        let name = check_name(&self.path, name)?;
        let path = self.join(name);
        let pathfd = rfs::openat(
            &self.fd,
            name,
            OFlags::PATH | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| io_error("open", &path, e))?;
        let st = rfs::fstat(&pathfd).map_err(|e| io_error("read", &path, e))?;
        if FileId::of(&st) != id || FileType::from_raw_mode(st.st_mode) != FileType::RegularFile {
            return Err(FileError::Replaced { path });
        }
        let proc = format!("/proc/self/fd/{}", std::os::fd::AsRawFd::as_raw_fd(&pathfd));
        let fd = rfs::open(
            proc.as_str(),
            OFlags::RDWR | OFlags::NOCTTY | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| io_error("open", &path, e))?;
        Ok(File::from(fd))
    }

    /// Removes the file `name` if it is the file `id`.
    pub fn remove_file(&self, name: &OsStr, id: FileId) -> Result<Removal, FileError> {
        match self.lookup(name)? {
            None => Ok(Removal::Absent),
            Some(e) if e.id != id => Ok(Removal::NotOurs),
            Some(_) => match rfs::unlinkat(&self.fd, name, AtFlags::empty()) {
                Ok(()) | Err(Errno::NOENT) => Ok(Removal::Removed),
                Err(e) => Err(io_error("remove", &self.join(name), e)),
            },
        }
    }

    /// Removes the folder `name` and everything in it if it is the folder `id`.
    /// Nothing below it is followed: links inside are removed as links.
    pub fn remove_tree(&self, name: &OsStr, id: FileId) -> Result<Removal, FileError> {
        let sub = match self.lookup(name)? {
            None => return Ok(Removal::Absent),
            Some(e) if e.id != id || e.kind != FileKind::Directory => return Ok(Removal::NotOurs),
            Some(_) => match self.open_dir(name) {
                Ok(sub) => sub,
                Err(FileError::Link { .. } | FileError::NotADirectory { .. }) => {
                    return Ok(Removal::NotOurs)
                }
                Err(e) => return Err(e),
            },
        };
        if sub.id != id {
            return Ok(Removal::NotOurs);
        }
        sub.empty()?;
        match rfs::unlinkat(&self.fd, name, AtFlags::REMOVEDIR) {
            Ok(()) | Err(Errno::NOENT) => Ok(Removal::Removed),
            Err(e) => Err(io_error("remove", &self.join(name), e)),
        }
    }

    /// Removes everything in this folder.
    fn empty(&self) -> Result<(), FileError> {
        for name in self.names()? {
            let Some(entry) = self.lookup(&name)? else {
                continue;
            };
            let flags = if entry.kind == FileKind::Directory {
                self.open_dir(&name)?.empty()?;
                AtFlags::REMOVEDIR
            } else {
                AtFlags::empty()
            };
            match rfs::unlinkat(&self.fd, name.as_os_str(), flags) {
                Ok(()) | Err(Errno::NOENT) => {}
                Err(e) => return Err(io_error("remove", &self.join(&name), e)),
            }
        }
        Ok(())
    }

    /// The names in this folder (without `.` and `..`).
    pub fn names(&self) -> Result<Vec<OsString>, FileError> {
        let dir = rfs::Dir::read_from(&self.fd).map_err(|e| io_error("list", &self.path, e))?;
        let mut names = Vec::new();
        for entry in dir {
            let entry = entry.map_err(|e| io_error("list", &self.path, e))?;
            let name = OsStr::from_bytes(entry.file_name().to_bytes());
            if name != "." && name != ".." {
                names.push(name.to_owned());
            }
        }
        Ok(names)
    }

    /// Makes the folder's entries (files created, removed) durable.
    pub fn sync(&self) -> Result<(), FileError> {
        rfs::fsync(&self.fd).map_err(|e| io_error("sync", &self.path, e))
    }

    /// Bytes an unprivileged user could still write on this folder's filesystem.
    pub fn free_bytes(&self) -> Result<u64, FileError> {
        let st = rfs::fstatvfs(&self.fd).map_err(|e| io_error("read", &self.path, e))?;
        Ok(st.f_bavail.saturating_mul(st.f_frsize))
    }

    /// Gives the file `name` (a symlink is not followed) an owner and group.
    pub fn chown_entry(&self, name: &OsStr, uid: u32, gid: u32) -> Result<(), FileError> {
        let name = check_name(&self.path, name)?;
        rfs::chownat(
            &self.fd,
            name,
            Some(rustix::fs::Uid::from_raw(uid)),
            Some(rustix::fs::Gid::from_raw(gid)),
            AtFlags::SYMLINK_NOFOLLOW,
        )
        .map_err(|e| io_error("set the owner of", &self.join(name), e))
    }

    /// Makes the symlink `name` pointing at `target`.
    pub fn symlink(&self, target: &OsStr, name: &OsStr) -> Result<(), FileError> {
        let name = check_name(&self.path, name)?;
        rfs::symlinkat(target, &self.fd, name).map_err(|e| match e {
            Errno::EXIST => FileError::Exists {
                path: self.join(name),
            },
            e => io_error("create symlink", &self.join(name), e),
        })
    }

    /// Reads the target of the symlink `name`.
    pub fn read_link(&self, name: &OsStr) -> Result<OsString, FileError> {
        let name = check_name(&self.path, name)?;
        let target = rfs::readlinkat(&self.fd, name, Vec::new())
            .map_err(|e| io_error("read link", &self.join(name), e))?;
        Ok(OsStr::from_bytes(target.as_bytes()).to_owned())
    }

    /// This folder's own status.
    pub fn stat(&self) -> Result<Stat, FileError> {
        rfs::fstat(&self.fd).map_err(|e| io_error("read", &self.path, e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_ids_round_trip_as_text() {
        let id = FileId {
            dev: 2049,
            ino: 1234567,
        };
        assert_eq!(id.to_string(), "2049:1234567");
        assert_eq!("2049:1234567".parse(), Ok(id));
        assert!("2049".parse::<FileId>().is_err());
        assert!("a:b".parse::<FileId>().is_err());
    }

    #[test]
    fn only_plain_names_are_created() {
        let folder = Folder::open(&std::env::temp_dir()).unwrap();
        for bad in ["", ".", "..", "a/b"] {
            assert!(
                matches!(
                    folder.create_file(OsStr::new(bad)),
                    Err(FileError::BadPath { .. })
                ),
                "{bad:?}"
            );
        }
    }

    fn dir(uid: u32, mode: u32) -> Stat {
        // SAFETY: Stat is plain data; all-zero is a valid value.
        let mut st: Stat = unsafe { std::mem::zeroed() };
        st.st_uid = uid;
        st.st_mode = libc::S_IFDIR | mode;
        st
    }

    #[test]
    fn only_root_controls_a_name_in_roots_unshared_or_sticky_folder() {
        assert!(root_controls(&dir(0, 0o755), 1000));
        assert!(root_controls(&dir(0, 0o711), 0));
        // Others may write: they could rename the entry and put their own there.
        assert!(!root_controls(&dir(0, 0o775), 0));
        assert!(!root_controls(&dir(0, 0o757), 0));
        // Sticky: only the entry's owner may rename it.
        assert!(root_controls(&dir(0, 0o1777), 0));
        assert!(!root_controls(&dir(0, 0o1777), 1000));
        // A user's folder is the user's, whatever its mode.
        assert!(!root_controls(&dir(1000, 0o755), 0));
    }

    #[test]
    fn the_root_folder_is_root_controlled_and_a_shared_folder_is_not() {
        assert!(Folder::open_root_controlled(Path::new("/")).is_ok());
        let shared = std::env::temp_dir().join(format!("vmclone-shared-{}", std::process::id()));
        std::fs::create_dir(&shared).unwrap();
        std::fs::set_permissions(&shared, std::os::unix::fs::PermissionsExt::from_mode(0o777))
            .unwrap();
        let found = Folder::open_root_controlled(&shared);
        std::fs::remove_dir(&shared).unwrap();
        assert!(
            matches!(found, Err(FileError::NotRootControlled { .. })),
            "{found:?}"
        );
    }

    #[test]
    fn a_relative_path_is_refused() {
        assert!(matches!(
            Folder::open(Path::new("relative/dir")),
            Err(FileError::BadPath { .. })
        ));
    }
}
