//! The clone journal: every artifact a clone creates is written down (and
//! synced) *before* it is created, so that a failure, a cancel or a crash of
//! the service can always be undone. A journal file that exists means
//! "this clone did not finish"; the next start rolls it back.
//!
//! One file per clone under `<state dir>/journal/`, one artifact per line:
//! `file\tPATH`, `tree\tPATH`, `volume\tPOOL\tNAME`, `domain\tUUID`.
//! Fields are percent-encoded so any path survives.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Path, PathBuf};

use crate::host::Host;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Artifact {
    /// A file we create (disk copy, overlay, NVRAM).
    File(PathBuf),
    /// A folder tree we create (TPM state).
    Tree(PathBuf),
    /// A storage-pool volume we create through libvirt.
    Volume { pool: String, name: String },
    /// The clone's domain definition.
    Domain { uuid: String },
}

pub struct Journal {
    path: PathBuf,
    file: File,
    entries: Vec<Artifact>,
}

#[derive(Debug, thiserror::Error)]
#[error("Cannot write the clone journal {path}: {source}")]
pub struct JournalError {
    path: PathBuf,
    source: io::Error,
}

fn journal_dir(state_dir: &Path) -> PathBuf {
    state_dir.join("journal")
}

impl Journal {
    /// Starts the journal of one clone.
    pub fn create(state_dir: &Path, clone_id: &str) -> Result<Journal, JournalError> {
        let dir = journal_dir(state_dir);
        let err = |path: &Path| {
            let path = path.to_path_buf();
            move |source| JournalError { path, source }
        };
        fs::create_dir_all(&dir).map_err(err(&dir))?;
        let path = dir.join(format!("{clone_id}.journal"));
        let file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)
            .map_err(err(&path))?;
        sync_dir(&dir).map_err(err(&dir))?;
        Ok(Journal {
            path,
            file,
            entries: Vec::new(),
        })
    }

    /// Writes the artifact down durably; call before creating it.
    pub fn record(&mut self, artifact: Artifact) -> Result<(), JournalError> {
        let line = encode(&artifact);
        self.file
            .write_all(line.as_bytes())
            .and_then(|_| self.file.sync_data())
            .map_err(|source| JournalError {
                path: self.path.clone(),
                source,
            })?;
        self.entries.push(artifact);
        Ok(())
    }

    /// Forgets the artifact recorded last: its creation failed and left
    /// nothing (or found something already there that is not ours).
    pub fn forget_last(&mut self) -> Result<(), JournalError> {
        self.entries.pop();
        let err = |source| JournalError {
            path: self.path.clone(),
            source,
        };
        write_entries(&self.path, &self.entries).map_err(err)?;
        self.file = OpenOptions::new()
            .append(true)
            .open(&self.path)
            .map_err(err)?;
        Ok(())
    }

    /// The clone succeeded: its artifacts are kept.
    pub fn commit(self) {
        let done = fs::remove_file(&self.path).and_then(|_| sync_dir(parent(&self.path)));
        if let Err(e) = done {
            tracing::error!("removing finished journal {}: {e}", self.path.display());
        }
    }

    /// Removes every recorded artifact, newest first. What cannot be removed
    /// now stays in the journal for the next start to retry.
    pub fn roll_back(self, host: &Host) {
        settle(&self.path, &self.entries, host);
    }
}

fn parent(path: &Path) -> &Path {
    path.parent().unwrap_or(Path::new("/"))
}

/// Undoes `artifacts`; removes the journal at `path` when all went, or
/// rewrites it with what is left.
fn settle(path: &Path, artifacts: &[Artifact], host: &Host) {
    let left = undo(artifacts, host);
    let result = match left.is_empty() {
        true => fs::remove_file(path).and_then(|_| sync_dir(parent(path))),
        false => {
            tracing::error!(
                "{} artifact(s) could not be removed; {} keeps them for the next start",
                left.len(),
                path.display()
            );
            write_entries(path, &left)
        }
    };
    if let Err(e) = result {
        tracing::error!("updating journal {}: {e}", path.display());
    }
}

/// Replaces the journal at `path` with `entries`, atomically and durably.
fn write_entries(path: &Path, entries: &[Artifact]) -> io::Result<()> {
    let text: String = entries.iter().map(encode).collect();
    let tmp = path.with_extension("journal.tmp");
    fs::write(&tmp, text)?;
    File::open(&tmp)?.sync_all()?;
    fs::rename(&tmp, path)?;
    sync_dir(parent(path))
}

/// An exclusive lock on `<state dir>/lock`, held for the process's life.
pub fn lock_state_dir(dir: &Path) -> Result<std::fs::File, String> {
    use std::os::unix::io::AsRawFd;
    std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let path = dir.join("lock");
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|e| format!("cannot open {}: {e}", path.display()))?;
    // SAFETY: flock on a file descriptor we own.
    if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
        return Err(format!(
            "another vmclone-service is running with the state folder {}; stop it first or give --state-dir",
            dir.display()
        ));
    }
    Ok(file)
}

/// Rolls back every journal left by a service that died mid-clone.
pub fn recover(state_dir: &Path, host: &Host) -> io::Result<usize> {
    let dir = journal_dir(state_dir);
    let entries = match fs::read_dir(&dir) {
        Ok(e) => e,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(e),
    };
    let mut n = 0;
    for entry in entries.flatten() {
        let path = entry.path();
        let name = path.file_name().map(|n| n.as_bytes()).unwrap_or_default();
        if name.ends_with(b".journal.tmp") {
            // A rewrite that did not finish; the journal itself is intact.
            let _ = fs::remove_file(&path);
            continue;
        }
        if !name.ends_with(b".journal") {
            continue;
        }
        let text = match fs::read(&path) {
            Ok(t) => t,
            Err(e) => {
                tracing::error!("cannot read journal {}: {e}; skipping it", path.display());
                continue;
            }
        };
        let artifacts: Vec<Artifact> = text
            .split(|b| *b == b'\n')
            .filter(|l| !l.is_empty())
            .filter_map(|l| {
                let parsed = decode(l);
                if parsed.is_none() {
                    tracing::error!(
                        "ignoring an unreadable line in {}: {}",
                        path.display(),
                        String::from_utf8_lossy(l)
                    );
                }
                parsed
            })
            .collect();
        tracing::warn!(
            "rolling back an unfinished clone from {} ({} artifacts)",
            path.display(),
            artifacts.len()
        );
        settle(&path, &artifacts, host);
        n += 1;
    }
    Ok(n)
}

/// Removes `artifacts`, newest first; returns those that could not be
/// removed, in journal order.
fn undo(artifacts: &[Artifact], host: &Host) -> Vec<Artifact> {
    let mut left = Vec::new();
    for artifact in artifacts.iter().rev() {
        let result = match artifact {
            Artifact::Domain { uuid } => host.undefine_uuid(uuid).map_err(|e| e.to_string()),
            Artifact::Volume { pool, name } => {
                host.delete_volume(pool, name).map_err(|e| e.to_string())
            }
            Artifact::File(path) => {
                let r = remove(fs::remove_file(path));
                host.refresh_pool_of(path);
                r
            }
            Artifact::Tree(path) => remove(fs::remove_dir_all(path)),
        };
        match result {
            Ok(()) => tracing::info!("rolled back {artifact:?}"),
            Err(e) => {
                tracing::error!("could not roll back {artifact:?}: {e}");
                left.push(artifact.clone());
            }
        }
    }
    left.reverse();
    left
}

fn remove(r: io::Result<()>) -> Result<(), String> {
    match r {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e.to_string()),
        _ => Ok(()),
    }
}

fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

fn encode(a: &Artifact) -> String {
    let fields: Vec<String> = match a {
        Artifact::File(p) => vec!["file".into(), pct(p.as_os_str().as_bytes())],
        Artifact::Tree(p) => vec!["tree".into(), pct(p.as_os_str().as_bytes())],
        Artifact::Volume { pool, name } => {
            vec!["volume".into(), pct(pool.as_bytes()), pct(name.as_bytes())]
        }
        Artifact::Domain { uuid } => vec!["domain".into(), pct(uuid.as_bytes())],
    };
    fields.join("\t") + "\n"
}

fn decode(line: &[u8]) -> Option<Artifact> {
    let fields: Vec<Vec<u8>> = line
        .split(|b| *b == b'\t')
        .map(unpct)
        .collect::<Option<_>>()?;
    let text = |b: &Vec<u8>| String::from_utf8(b.clone()).ok();
    let path = |b: &Vec<u8>| PathBuf::from(std::ffi::OsString::from_vec(b.clone()));
    match fields.as_slice() {
        [k, p] if k == b"file" => Some(Artifact::File(path(p))),
        [k, p] if k == b"tree" => Some(Artifact::Tree(path(p))),
        [k, pool, name] if k == b"volume" => Some(Artifact::Volume {
            pool: text(pool)?,
            name: text(name)?,
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_artifact_round_trips_through_a_line() {
        let odd = PathBuf::from(std::ffi::OsString::from_vec(
            b"/var/lib/images/a\tb\nc%d \xff.qcow2".to_vec(),
        ));
        for a in [
            Artifact::File(odd.clone()),
            Artifact::Tree(odd),
            Artifact::Volume {
                pool: "default pool".into(),
                name: "web 01 & <x>.qcow2".into(),
            },
            Artifact::Domain {
                uuid: "12345678-1234-1234-1234-123456789abc".into(),
            },
        ] {
            let line = encode(&a);
            assert_eq!(line.matches('\n').count(), 1, "one line: {line:?}");
            assert_eq!(decode(line.trim_end().as_bytes()), Some(a));
        }
    }

    #[test]
    fn garbage_lines_are_rejected_not_misread() {
        assert_eq!(decode(b"file"), None);
        assert_eq!(decode(b"disk\t/x"), None);
        assert_eq!(decode(b"file\t/x%4"), None);
    }
}
