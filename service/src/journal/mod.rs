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
//! backup  N  UUID  STAGING  STATE        a live clone's backup job on the source UUID,
//!                                        into the folders named STAGING; STATE is the
//!                                        source's, running or paused, when it began
//! made    N  ID                          entry N exists: dev:ino, a volume key, or -
//!                                        (a backup: the guest runs again as before)
//! dropped N                              entry N was not made (nothing to undo)
//! committed                              the domain is defined: the clone is final
//! ```

mod format;
mod recovery;
mod state;
mod undo;

use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use crate::host::Host;
use crate::storage::error::FileError;
use crate::storage::folder::{FileId, Folder};

use format::{encode_intent, pct};
use undo::{settle, Undo};

pub use crate::error::JournalError;
pub use recovery::{recover, Recovered};
pub use state::{lock_state_dir, open_state_dir};

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
    /// A live clone's backup job on the source `domain`, writing into the
    /// clone's private folders named `staging`. While the job starts the
    /// service may freeze the guest's filesystems (`frozen`, written before
    /// the freeze: an agent may freeze after its answer timed out) and pause
    /// it when it ran (`paused`, written once libvirt paused it: a guest
    /// someone else paused is never resumed); `resumed` once the guest is
    /// back as it was.
    Backup {
        domain: String,
        staging: OsString,
        was_running: bool,
        frozen: bool,
        paused: bool,
        resumed: bool,
    },
    /// A file or tree recorded by vmclone 0.1, by path only.
    Legacy { path: PathBuf, tree: bool },
}

impl Artifact {
    /// The file `name` in `folder`, about to be made.
    pub fn file_in(folder: &Folder, name: &OsStr) -> Artifact {
        Artifact::File {
            folder: folder.path().to_owned(),
            folder_id: folder.id(),
            name: name.to_owned(),
            id: None,
        }
    }

    /// The folder tree `name` in `folder`, about to be made.
    pub fn tree_in(folder: &Folder, name: &OsStr) -> Artifact {
        Artifact::Tree {
            folder: folder.path().to_owned(),
            folder_id: folder.id(),
            name: name.to_owned(),
            id: None,
        }
    }

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
    /// A backup's guest is about to be frozen through its agent.
    Frozen,
    /// A backup's guest was paused by the clone.
    Paused,
    /// A backup's guest runs again as before the clone paused it.
    Resumed,
}

/// An entry's number in its journal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Entry(usize);

/// The folder of the journals, and beside it the scratch folder where
/// running clones keep private files (journaled like any artifact).
pub struct JournalDir {
    folder: Folder,
    work: Folder,
}

impl JournalDir {
    /// Opens (making them when missing) `<state dir>/journal` and
    /// `<state dir>/work`.
    pub fn open(state: &Folder) -> Result<JournalDir, JournalError> {
        Ok(JournalDir {
            folder: open_or_make(state, "journal")?,
            work: open_or_make(state, "work")?,
        })
    }

    pub fn path(&self) -> &Path {
        self.folder.path()
    }

    /// `<state dir>/work`: root's alone, like the state folder.
    pub fn work(&self) -> &Folder {
        &self.work
    }
}

fn open_or_make(state: &Folder, name: &str) -> Result<Folder, JournalError> {
    let name = OsStr::new(name);
    match state.open_dir(name) {
        Ok(f) => Ok(f),
        Err(FileError::Io { source, .. }) if source.kind() == io::ErrorKind::NotFound => {
            let f = state.make_dir(name)?;
            state.sync()?;
            Ok(f)
        }
        Err(e) => Err(e.into()),
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
            Made::Frozen => "frozen".into(),
            Made::Paused => "paused".into(),
            Made::Domain | Made::Resumed => "-".into(),
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

pub(super) fn set_made(artifact: &mut Artifact, made: Made) {
    match (artifact, made) {
        (Artifact::File { id, .. } | Artifact::Tree { id, .. }, Made::File(new)) => *id = Some(new),
        (Artifact::Volume { key, .. }, Made::Volume(new)) => *key = Some(new),
        (Artifact::Backup { frozen, .. }, Made::Frozen) => *frozen = true,
        (Artifact::Backup { paused, .. }, Made::Paused) => *paused = true,
        (Artifact::Backup { resumed, .. }, Made::Resumed) => *resumed = true,
        _ => {}
    }
}
