//! The clone journal: every artifact a clone creates is written down (and
//! synced) before it is created, and its identity right after, so that a
//! failure, a cancel or a crash can always be undone, and an undo removes
//! only what this clone made. Once the domain is defined a `committed` line
//! makes the clone final: nothing of a committed clone is ever removed.
//!
//! One file per clone under `<state dir>/journal/`, one event per line,
//! fields tab-separated and percent-encoded so any path survives:
//!
//! ```text
//! journal 2
//! file    N  FOLDER  FOLDER-ID  NAME     a file NAME will be made in FOLDER
//! tree    N  FOLDER  FOLDER-ID  NAME     a folder tree (TPM state)
//! volume  N  POOL    NAME                a storage-pool volume
//! domain  N  UUID                        the clone's domain definition
//! made    N  ID                          entry N exists: dev:ino, a volume key, or -
//! dropped N                              entry N was not made (nothing to undo)
//! committed                              the domain is defined: the clone is final
//! ```

use std::collections::HashSet;
use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::io::{self, Read, Write};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Path, PathBuf};

use crate::host::{Host, InUse};
use crate::storage::error::FileError;
use crate::storage::folder::{FileId, Folder, Removal};

const HEADER: &str = "journal\t2\n";
const SUFFIX: &str = ".journal";

/// Something a clone creates.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Artifact {
    /// A file (disk copy, overlay, NVRAM); `id` once it exists.
    File {
        folder: PathBuf,
        folder_id: FileId,
        name: OsString,
        id: Option<FileId>,
    },
    /// A folder tree (TPM state); `id` once it exists.
    Tree {
        folder: PathBuf,
        folder_id: FileId,
        name: OsString,
        id: Option<FileId>,
    },
    /// A storage-pool volume made through libvirt; `key` once it exists.
    Volume {
        pool: String,
        name: String,
        key: Option<String>,
    },
    /// The clone's domain.
    Domain { uuid: String },
    /// A file or tree recorded by vmclone 0.1, by path only.
    Legacy { path: PathBuf, tree: bool },
}

impl Artifact {
    /// The path a file or tree artifact occupies.
    pub fn path(&self) -> Option<PathBuf> {
        match self {
            Artifact::File { folder, name, .. } | Artifact::Tree { folder, name, .. } => {
                Some(folder.join(name))
            }
            Artifact::Legacy { path, .. } => Some(path.clone()),
            _ => None,
        }
    }
}

/// What made an artifact real, for `Journal::made`.
#[derive(Debug, Clone)]
pub enum Made {
    File(FileId),
    Volume(String),
    Domain,
}

/// An entry's number in its journal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Entry(usize);

#[derive(Debug, thiserror::Error)]
#[error("Cannot write the clone journal {path}: {source}")]
pub struct JournalError {
    path: PathBuf,
    source: io::Error,
}

impl From<FileError> for JournalError {
    fn from(e: FileError) -> Self {
        let path = match &e {
            FileError::Io { path, .. }
            | FileError::NoSpace { path }
            | FileError::Exists { path }
            | FileError::BadPath { path, .. }
            | FileError::Replaced { path }
            | FileError::Link { path }
            | FileError::UntrustedLink { path, .. }
            | FileError::NotADirectory { path }
            | FileError::Unsupported { path, .. } => path.clone(),
            FileError::Cancelled => PathBuf::new(),
        };
        JournalError {
            path,
            source: io::Error::other(e.to_string()),
        }
    }
}

/// The folder of the journals.
pub struct JournalDir {
    folder: Folder,
}

impl JournalDir {
    /// Opens (making it when missing) `<state dir>/journal`.
    pub fn open(state: &Folder) -> Result<JournalDir, JournalError> {
        let name = OsStr::new("journal");
        let folder = match state.open_dir(name) {
            Ok(f) => f,
            Err(FileError::Io { source, .. }) if source.kind() == io::ErrorKind::NotFound => {
                let f = state.make_dir(name)?;
                state.sync()?;
                f
            }
            Err(e) => return Err(e.into()),
        };
        Ok(JournalDir { folder })
    }

    pub fn path(&self) -> &Path {
        self.folder.path()
    }
}

pub struct Journal<'d> {
    dir: &'d JournalDir,
    name: OsString,
    file: File,
    /// Every entry in order; `None` once dropped.
    entries: Vec<Option<Artifact>>,
}

impl<'d> Journal<'d> {
    /// Starts the journal of the clone `clone_id`.
    pub fn create(dir: &'d JournalDir, clone_id: &str) -> Result<Journal<'d>, JournalError> {
        let name = OsString::from(format!("{clone_id}{SUFFIX}"));
        let (mut file, _) = dir.folder.create_file(&name)?;
        let path = dir.folder.join(&name);
        let err = |source| JournalError {
            path: path.clone(),
            source,
        };
        file.write_all(HEADER.as_bytes())
            .and_then(|_| file.sync_data())
            .map_err(err)?;
        dir.folder.sync()?;
        Ok(Journal {
            dir,
            name,
            file,
            entries: Vec::new(),
        })
    }

    fn path(&self) -> PathBuf {
        self.dir.folder.join(&self.name)
    }

    fn append(&mut self, line: &str) -> Result<(), JournalError> {
        self.file
            .write_all(line.as_bytes())
            .and_then(|_| self.file.sync_data())
            .map_err(|source| JournalError {
                path: self.path(),
                source,
            })
    }

    /// Writes down, durably, that `artifact` is about to be made.
    pub fn intend(&mut self, artifact: Artifact) -> Result<Entry, JournalError> {
        let n = self.entries.len();
        self.append(&encode_intent(n, &artifact))?;
        self.entries.push(Some(artifact));
        Ok(Entry(n))
    }

    /// Writes down, durably, what identifies the artifact of `entry` now that it exists.
    pub fn made(&mut self, entry: Entry, made: Made) -> Result<(), JournalError> {
        let id = match &made {
            Made::File(id) => id.to_string(),
            Made::Volume(key) => pct(key.as_bytes()),
            Made::Domain => "-".into(),
        };
        self.append(&format!("made\t{}\t{id}\n", entry.0))?;
        if let Some(a) = self.entries.get_mut(entry.0).and_then(Option::as_mut) {
            set_made(a, made);
        }
        Ok(())
    }

    /// The artifact of `entry` was not made at all (its creation failed
    /// cleanly, or found something already there that is not ours).
    pub fn dropped(&mut self, entry: Entry) -> Result<(), JournalError> {
        self.append(&format!("dropped\t{}\n", entry.0))?;
        if let Some(slot) = self.entries.get_mut(entry.0) {
            *slot = None;
        }
        Ok(())
    }

    /// The clone is final: durably marked committed, then the journal goes.
    /// Failing to write the mark is an error (the clone must then be undone);
    /// failing to remove a committed journal is harmless.
    pub fn commit(&mut self) -> Result<(), JournalError> {
        self.append("committed\n")?;
        let name = self.name.clone();
        let folder = &self.dir.folder;
        let removed =
            rustix::fs::unlinkat(folder.fd(), name.as_os_str(), rustix::fs::AtFlags::empty())
                .map_err(io::Error::from)
                .and_then(|_| folder.sync().map_err(io::Error::other));
        if let Err(e) = removed {
            tracing::error!(
                "the clone is complete, but its journal {} could not be removed ({e}); the next start removes it",
                self.path().display()
            );
        }
        Ok(())
    }

    /// Removes every artifact still recorded, newest first. What cannot be
    /// removed now stays in the journal for the next start; it is returned.
    pub fn roll_back(self, host: &Host) -> Vec<Artifact> {
        let made: Vec<Artifact> = self.entries.into_iter().flatten().collect();
        settle(self.dir, &self.name, &made, host, &mut None, Undo::Now)
    }
}

fn set_made(artifact: &mut Artifact, made: Made) {
    match (artifact, made) {
        (Artifact::File { id, .. } | Artifact::Tree { id, .. }, Made::File(new)) => *id = Some(new),
        (Artifact::Volume { key, .. }, Made::Volume(new)) => *key = Some(new),
        _ => {}
    }
}

/// Whether an undo happens in the clone's own run or at a later start.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Undo {
    Now,
    Recovery,
}

/// Undoes `artifacts`; removes the journal `name` when all went, or rewrites
/// it with what is left. Returns what is left. `in_use` caches what defined
/// domains use (read when first needed).
fn settle(
    dir: &JournalDir,
    name: &OsStr,
    artifacts: &[Artifact],
    host: &Host,
    in_use: &mut Option<InUse>,
    when: Undo,
) -> Vec<Artifact> {
    let left = undo(artifacts, host, in_use, when);
    let path = dir.folder.join(name);
    let result = match left.is_empty() {
        true => rustix::fs::unlinkat(dir.folder.fd(), name, rustix::fs::AtFlags::empty())
            .map_err(io::Error::from)
            .and_then(|_| dir.folder.sync().map_err(io::Error::other)),
        false => {
            tracing::error!(
                "{} artifact(s) could not be removed; {} keeps them for the next start",
                left.len(),
                path.display()
            );
            rewrite(dir, name, &left)
        }
    };
    if let Err(e) = result {
        tracing::error!("updating journal {}: {e}", path.display());
    }
    left
}

/// Replaces the journal `name` with `entries`, atomically and durably.
fn rewrite(dir: &JournalDir, name: &OsStr, entries: &[Artifact]) -> io::Result<()> {
    let mut text = String::from(HEADER);
    for (n, a) in entries.iter().enumerate() {
        text.push_str(&encode_intent(n, a));
        if let Some(made) = encode_made(n, a) {
            text.push_str(&made);
        }
    }
    let mut tmp = name.to_owned();
    tmp.push(".tmp");
    let folder = &dir.folder;
    let _ = rustix::fs::unlinkat(folder.fd(), tmp.as_os_str(), rustix::fs::AtFlags::empty());
    let (mut file, _) = folder.create_file(&tmp).map_err(io::Error::other)?;
    file.write_all(text.as_bytes())?;
    file.sync_all()?;
    rustix::fs::renameat(folder.fd(), tmp.as_os_str(), folder.fd(), name)?;
    folder.sync().map_err(io::Error::other)
}

/// What recovery found at start.
#[derive(Debug, Default)]
pub struct Recovered {
    /// Unfinished clones rolled back.
    pub rolled_back: usize,
    /// Finished clones whose journal was only removed.
    pub committed: usize,
    /// What could not be removed (kept in journals for the next start).
    pub left: Vec<Artifact>,
}

/// Settles every journal left by a service that stopped mid-clone: a clone
/// whose domain exists (or that was marked committed) is final and keeps
/// everything; any other is rolled back.
pub fn recover(dir: &JournalDir, host: &Host) -> Result<Recovered, JournalError> {
    let mut out = Recovered::default();
    let folder = &dir.folder;
    let mut in_use: Option<InUse> = None;
    for name in folder.names()? {
        let bytes = name.as_bytes();
        if bytes.ends_with(b".journal.tmp") {
            // A rewrite that did not finish; the journal itself is intact.
            let _ =
                rustix::fs::unlinkat(folder.fd(), name.as_os_str(), rustix::fs::AtFlags::empty());
            continue;
        }
        if !bytes.ends_with(SUFFIX.as_bytes()) {
            continue;
        }
        let path = folder.join(&name);
        let text = match read(folder, &name) {
            Ok(t) => t,
            Err(e) => {
                tracing::error!("cannot read journal {}: {e}; skipping it", path.display());
                continue;
            }
        };
        let journal = decode(&text, &path);
        let clone_id = std::str::from_utf8(&bytes[..bytes.len() - SUFFIX.len()]).unwrap_or("");
        let domain = journal
            .artifacts
            .iter()
            .find_map(|a| match a {
                Artifact::Domain { uuid } => Some(uuid.as_str()),
                _ => None,
            })
            .unwrap_or(clone_id);
        let defined = match host.domain_exists(domain) {
            Ok(d) => d,
            Err(e) => {
                tracing::error!(
                    "cannot tell whether the clone {domain} of {} was defined ({e}); keeping it for the next start",
                    path.display()
                );
                continue;
            }
        };
        if journal.committed || defined {
            tracing::info!(
                "the clone {domain} of {} was completed; removing only its journal",
                path.display()
            );
            let _ =
                rustix::fs::unlinkat(folder.fd(), name.as_os_str(), rustix::fs::AtFlags::empty());
            let _ = folder.sync();
            out.committed += 1;
            continue;
        }
        tracing::warn!(
            "rolling back an unfinished clone from {} ({} artifacts)",
            path.display(),
            journal.artifacts.len()
        );
        out.left.extend(settle(
            dir,
            &name,
            &journal.artifacts,
            host,
            &mut in_use,
            Undo::Recovery,
        ));
        out.rolled_back += 1;
    }
    Ok(out)
}

fn read(folder: &Folder, name: &OsStr) -> io::Result<Vec<u8>> {
    let (mut file, _) = folder.open_readonly(name).map_err(io::Error::other)?;
    let mut text = Vec::new();
    file.read_to_end(&mut text)?;
    Ok(text)
}

/// Removes `artifacts`, newest first; returns those that could not be
/// removed, in journal order. What defined domains use is read after the
/// clone's own domain is gone (it is the newest entry), and only once.
fn undo(
    artifacts: &[Artifact],
    host: &Host,
    in_use: &mut Option<InUse>,
    when: Undo,
) -> Vec<Artifact> {
    let mut left = Vec::new();
    for artifact in artifacts.iter().rev() {
        let needs_in_use = !matches!(artifact, Artifact::Domain { .. });
        if needs_in_use && in_use.is_none() {
            match host.storage_in_use() {
                Ok(u) => *in_use = Some(u),
                Err(e) => {
                    tracing::error!("cannot tell which files defined VMs use ({e}); {artifact:?} is kept for the next start");
                    left.push(artifact.clone());
                    continue;
                }
            }
        }
        let empty = InUse::default();
        let used = in_use.as_ref().unwrap_or(&empty);
        match undo_one(artifact, host, used, when) {
            Ok(what) => tracing::info!("rolled back {artifact:?}: {what}"),
            Err(e) => {
                tracing::error!("could not roll back {artifact:?}: {e}");
                left.push(artifact.clone());
            }
        }
    }
    left.reverse();
    left
}

/// Removes one artifact if it is this clone's and nothing defined uses it;
/// says what happened.
fn undo_one(
    artifact: &Artifact,
    host: &Host,
    in_use: &InUse,
    when: Undo,
) -> Result<&'static str, String> {
    if let Some(path) = artifact.path() {
        if in_use.paths.contains(&path) {
            return Ok("left: a defined VM uses it");
        }
    }
    match artifact {
        Artifact::Domain { uuid } => match when {
            Undo::Now => host.undefine_inactive(uuid).map_err(|e| e.to_string()),
            // Recovery only gets here when no domain has the UUID.
            Undo::Recovery => Ok("not defined"),
        },
        Artifact::Volume { pool, name, key } => {
            if in_use.volumes.contains(&(pool.clone(), name.clone())) {
                return Ok("left: a defined VM uses it");
            }
            host.delete_volume_if(pool, name, key.as_deref(), &in_use.paths)
                .map_err(|e| e.to_string())
        }
        Artifact::File {
            folder,
            folder_id,
            name,
            id,
        }
        | Artifact::Tree {
            folder,
            folder_id,
            name,
            id,
        } => {
            let tree = matches!(artifact, Artifact::Tree { .. });
            let dir = match Folder::open(folder) {
                Ok(d) if d.id() == *folder_id => d,
                Ok(_) => return Ok("absent: its folder was replaced"),
                Err(FileError::Io { source, .. }) if source.kind() == io::ErrorKind::NotFound => {
                    return Ok("absent")
                }
                Err(e) => return Err(e.to_string()),
            };
            let removal = match id {
                Some(id) if tree => dir.remove_tree(name, *id),
                Some(id) => dir.remove_file(name, *id),
                None => remove_unrecorded(&dir, name, tree),
            }
            .map_err(|e| e.to_string())?;
            if !tree {
                host.refresh_pool_of(&dir.join(name));
            }
            Ok(describe(removal))
        }
        Artifact::Legacy { path, tree } => {
            let (Some(parent), Some(name)) = (path.parent(), path.file_name()) else {
                return Ok("absent");
            };
            let dir = match Folder::open(parent) {
                Ok(d) => d,
                Err(FileError::Io { source, .. }) if source.kind() == io::ErrorKind::NotFound => {
                    return Ok("absent")
                }
                Err(e) => return Err(e.to_string()),
            };
            let Some(found) = dir.lookup(name).map_err(|e| e.to_string())? else {
                return Ok("absent");
            };
            let removal = match tree {
                true => dir.remove_tree(name, found.id),
                false if found.is_file => dir.remove_file(name, found.id),
                false => Ok(Removal::NotOurs),
            }
            .map_err(|e| e.to_string())?;
            Ok(describe(removal))
        }
    }
}

fn describe(removal: Removal) -> &'static str {
    match removal {
        Removal::Removed => "removed",
        Removal::Absent => "absent",
        Removal::NotOurs => "left: something else is there now",
    }
}

/// A file or folder whose creation was recorded but whose identity was not:
/// the service stopped between the two. It is ours only if it is exactly
/// what vmclone creates (root's, private, still empty); nobody else can make
/// such a thing, so anything else is left alone.
fn remove_unrecorded(dir: &Folder, name: &OsStr, tree: bool) -> Result<Removal, FileError> {
    let Some(e) = dir.lookup(name)? else {
        return Ok(Removal::Absent);
    };
    let ours = e.uid == rustix::process::geteuid().as_raw() && e.nlink <= 2;
    if tree && ours && e.mode == 0o700 && dir.open_dir(name)?.names()?.is_empty() {
        return dir.remove_tree(name, e.id);
    }
    if !tree && ours && e.is_file && e.mode == 0o600 && e.size == 0 && e.nlink == 1 {
        return dir.remove_file(name, e.id);
    }
    Ok(Removal::NotOurs)
}

// ------------------------------------------------------------ encoding ---

fn encode_intent(n: usize, a: &Artifact) -> String {
    let fields: Vec<String> = match a {
        Artifact::File {
            folder,
            folder_id,
            name,
            ..
        } => vec![
            "file".into(),
            n.to_string(),
            pct(folder.as_os_str().as_bytes()),
            folder_id.to_string(),
            pct(name.as_bytes()),
        ],
        Artifact::Tree {
            folder,
            folder_id,
            name,
            ..
        } => vec![
            "tree".into(),
            n.to_string(),
            pct(folder.as_os_str().as_bytes()),
            folder_id.to_string(),
            pct(name.as_bytes()),
        ],
        Artifact::Volume { pool, name, .. } => vec![
            "volume".into(),
            n.to_string(),
            pct(pool.as_bytes()),
            pct(name.as_bytes()),
        ],
        Artifact::Domain { uuid } => vec!["domain".into(), n.to_string(), pct(uuid.as_bytes())],
        Artifact::Legacy { path, tree } => vec![
            if *tree { "legacy-tree" } else { "legacy-file" }.into(),
            n.to_string(),
            pct(path.as_os_str().as_bytes()),
        ],
    };
    fields.join("\t") + "\n"
}

fn encode_made(n: usize, a: &Artifact) -> Option<String> {
    let id = match a {
        Artifact::File { id: Some(id), .. } | Artifact::Tree { id: Some(id), .. } => id.to_string(),
        Artifact::Volume { key: Some(key), .. } => pct(key.as_bytes()),
        _ => return None,
    };
    Some(format!("made\t{n}\t{id}\n"))
}

/// A journal as read back.
#[derive(Debug, Default, PartialEq)]
struct Decoded {
    artifacts: Vec<Artifact>,
    committed: bool,
}

fn decode(text: &[u8], path: &Path) -> Decoded {
    let lines: Vec<&[u8]> = text
        .split(|b| *b == b'\n')
        .filter(|l| !l.is_empty())
        .collect();
    let v2 = lines.first().map(|l| *l == HEADER.trim_end().as_bytes()) == Some(true);
    let mut slots: Vec<Option<Artifact>> = Vec::new();
    let mut out = Decoded::default();
    for line in lines.iter().skip(usize::from(v2)) {
        let parsed = match v2 {
            true => decode_line(line, &mut slots, &mut out.committed),
            false => decode_legacy(line).map(|a| slots.push(Some(a))),
        };
        if parsed.is_none() {
            tracing::error!(
                "ignoring an unreadable line in {}: {}",
                path.display(),
                String::from_utf8_lossy(line)
            );
        }
    }
    out.artifacts = slots.into_iter().flatten().collect();
    out
}

fn decode_line(line: &[u8], slots: &mut Vec<Option<Artifact>>, committed: &mut bool) -> Option<()> {
    let fields: Vec<Vec<u8>> = line
        .split(|b| *b == b'\t')
        .map(unpct)
        .collect::<Option<_>>()?;
    let text = |b: &Vec<u8>| String::from_utf8(b.clone()).ok();
    let os = |b: &Vec<u8>| OsString::from_vec(b.clone());
    let number = |b: &Vec<u8>| text(b)?.parse::<usize>().ok();
    let id = |b: &Vec<u8>| text(b)?.parse::<FileId>().ok();
    let mut add = |n: usize, a: Artifact| (n == slots.len()).then(|| slots.push(Some(a)));
    match fields.as_slice() {
        [k] if k == b"committed" => {
            *committed = true;
            Some(())
        }
        [k, n, folder, folder_id, name] if k == b"file" || k == b"tree" => {
            let (folder, folder_id, name) = (PathBuf::from(os(folder)), id(folder_id)?, os(name));
            let a = match k.as_slice() {
                b"file" => Artifact::File {
                    folder,
                    folder_id,
                    name,
                    id: None,
                },
                _ => Artifact::Tree {
                    folder,
                    folder_id,
                    name,
                    id: None,
                },
            };
            add(number(n)?, a)
        }
        [k, n, pool, name] if k == b"volume" => add(
            number(n)?,
            Artifact::Volume {
                pool: text(pool)?,
                name: text(name)?,
                key: None,
            },
        ),
        [k, n, uuid] if k == b"domain" => add(number(n)?, Artifact::Domain { uuid: text(uuid)? }),
        [k, n, path] if k == b"legacy-file" || k == b"legacy-tree" => add(
            number(n)?,
            Artifact::Legacy {
                path: PathBuf::from(os(path)),
                tree: k == b"legacy-tree",
            },
        ),
        [k, n, made] if k == b"made" => {
            let a = slots.get_mut(number(n)?)?.as_mut()?;
            let made = match a {
                Artifact::File { .. } | Artifact::Tree { .. } => Made::File(id(made)?),
                Artifact::Volume { .. } => Made::Volume(text(made)?),
                _ => Made::Domain,
            };
            set_made(a, made);
            Some(())
        }
        [k, n] if k == b"dropped" => {
            *slots.get_mut(number(n)?)? = None;
            Some(())
        }
        _ => None,
    }
}

/// A line of a journal written by vmclone 0.1 (no identities, no numbers).
fn decode_legacy(line: &[u8]) -> Option<Artifact> {
    let fields: Vec<Vec<u8>> = line
        .split(|b| *b == b'\t')
        .map(unpct)
        .collect::<Option<_>>()?;
    let text = |b: &Vec<u8>| String::from_utf8(b.clone()).ok();
    let path = |b: &Vec<u8>| PathBuf::from(OsString::from_vec(b.clone()));
    match fields.as_slice() {
        [k, p] if k == b"file" => Some(Artifact::Legacy {
            path: path(p),
            tree: false,
        }),
        [k, p] if k == b"tree" => Some(Artifact::Legacy {
            path: path(p),
            tree: true,
        }),
        [k, pool, name] if k == b"volume" => Some(Artifact::Volume {
            pool: text(pool)?,
            name: text(name)?,
            key: None,
        }),
        [k, uuid] if k == b"domain" => Some(Artifact::Domain { uuid: text(uuid)? }),
        _ => None,
    }
}

fn pct(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len());
    for &b in bytes {
        if b.is_ascii_graphic() && b != b'%' || b == b' ' {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn unpct(field: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(field.len());
    let mut i = 0;
    while i < field.len() {
        if field[i] == b'%' {
            let hex = std::str::from_utf8(field.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(field[i]);
            i += 1;
        }
    }
    Some(out)
}

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

/// The paths every journal left behind still holds, which no new clone may take.
pub fn held_paths(left: &[Artifact]) -> HashSet<PathBuf> {
    left.iter().filter_map(Artifact::path).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn odd() -> OsString {
        OsString::from_vec(b"a\tb\nc%d \xff.qcow2".to_vec())
    }

    #[test]
    fn every_event_round_trips_through_the_journal_text() {
        let fid = FileId { dev: 8, ino: 12 };
        let artifacts = vec![
            Artifact::File {
                folder: PathBuf::from("/var/lib/images/x y"),
                folder_id: FileId { dev: 8, ino: 2 },
                name: odd(),
                id: Some(fid),
            },
            Artifact::Tree {
                folder: PathBuf::from("/var/lib/libvirt/swtpm"),
                folder_id: FileId { dev: 8, ino: 3 },
                name: "6b3c2a4e-8f3d-4c1e-9a7b-2f5d8e9c1a3b".into(),
                id: None,
            },
            Artifact::Volume {
                pool: "default pool".into(),
                name: "web 01 & <x>.qcow2".into(),
                key: Some("/pool/web 01 & <x>.qcow2".into()),
            },
            Artifact::Domain {
                uuid: "12345678-1234-1234-1234-123456789abc".into(),
            },
        ];
        let mut text = String::from(HEADER);
        for (n, a) in artifacts.iter().enumerate() {
            text += &encode_intent(n, a);
            text += &encode_made(n, a).unwrap_or_default();
        }
        text += "committed\n";
        let back = decode(text.as_bytes(), Path::new("/j"));
        assert_eq!(back.artifacts, artifacts);
        assert!(back.committed);
    }

    #[test]
    fn a_dropped_entry_is_not_undone_and_garbage_is_not_misread() {
        let text = format!(
            "{HEADER}file\t0\t/i\t1:2\tx.img\nfile\t1\t/i\t1:2\ty.img\ndropped\t0\nmade\t1\t1:9\nfile\t7\t/i\t1:2\tz\nmade\t1\nbogus\n"
        );
        let back = decode(text.as_bytes(), Path::new("/j"));
        assert_eq!(
            back.artifacts,
            vec![Artifact::File {
                folder: "/i".into(),
                folder_id: FileId { dev: 1, ino: 2 },
                name: "y.img".into(),
                id: Some(FileId { dev: 1, ino: 9 }),
            }]
        );
        assert!(!back.committed);
    }

    #[test]
    fn journals_of_vmclone_0_1_are_read_by_path() {
        let text = b"file\t/i/web02.qcow2\ntree\t/var/lib/libvirt/swtpm/u\nvolume\tdefault\tweb02.img\ndomain\tu\n";
        let back = decode(text, Path::new("/j"));
        assert_eq!(
            back.artifacts,
            vec![
                Artifact::Legacy {
                    path: "/i/web02.qcow2".into(),
                    tree: false
                },
                Artifact::Legacy {
                    path: "/var/lib/libvirt/swtpm/u".into(),
                    tree: true
                },
                Artifact::Volume {
                    pool: "default".into(),
                    name: "web02.img".into(),
                    key: None
                },
                Artifact::Domain { uuid: "u".into() },
            ]
        );
    }
}
