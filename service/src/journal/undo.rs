//! Undoing what a clone made: only what still has the identity the journal
//! recorded, and nothing a defined domain uses; the journal keeps what could
//! not be undone.

use std::ffi::OsStr;
use std::io::{self, Write};

use super::format::{encode_intent, encode_made};
use super::{Artifact, JournalDir, HEADER};
use crate::host::{Host, InUse};
use crate::storage::error::FileError;
use crate::storage::folder::{Folder, Removal};

/// Whether an undo happens in the clone's own run or at a later start.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Undo {
    Now,
    Recovery,
}

/// Undoes `artifacts`; removes the journal `name` when all went, or rewrites
/// it with what is left. Returns what is left. `in_use` caches what defined
/// domains use (read when first needed).
pub(super) fn settle(
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
        let needs_in_use = !matches!(artifact, Artifact::Domain { .. } | Artifact::Backup { .. });
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
        // Before the folders it writes into go (they are older entries).
        // Only what this clone did to the guest is undone: a freeze it
        // tried, a pause libvirt made for it.
        Artifact::Backup {
            domain,
            staging,
            frozen,
            paused,
            resumed,
            ..
        } => host
            .end_backup(domain, staging, *frozen && !*resumed, *paused && !*resumed)
            .map_err(|e| e.to_string()),
        Artifact::Volume { pool, name, key } => {
            if in_use.volumes.contains(&(pool.clone(), name.clone())) {
                return Ok("left: a defined VM uses it");
            }
            // Without its key a volume of that name is not proven ours (the
            // creation failed ambiguously, or another program made it).
            let Some(key) = key else {
                return Ok(not_proven(artifact));
            };
            host.delete_volume_if(pool, name, key, &in_use.paths)
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
        // vmclone 0.1 recorded paths only: what is there now is not proven ours.
        Artifact::Legacy { .. } => Ok(not_proven(artifact)),
    }
}

/// An artifact vmclone cannot prove it made is left where it is, and said so
/// where the operator looks.
fn not_proven(artifact: &Artifact) -> &'static str {
    tracing::warn!(
        "{artifact:?} was recorded without its identity, so it is not proven to be this clone's; it is left in place (remove it by hand if it is)"
    );
    "left: not proven to be this clone's"
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
