//! Settling, at start, the journals of a service that stopped mid-clone.

use std::ffi::OsStr;
use std::io::{self, Read};
use std::os::unix::ffi::OsStrExt;

use super::format::decode;
use super::undo::{settle, Undo};
use super::{Artifact, JournalDir, JournalError, SUFFIX};
use crate::host::{Host, InUse};
use crate::storage::folder::Folder;

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
