//! Where a clone's files may go: the target folders of the connection's
//! active file-based storage pools and the folders that already hold the
//! source's own disks. Nothing else — a caller allowed to clone must not be
//! able to make root write guest-controlled bytes into `/root/.ssh` or a
//! crontab folder. Folders are compared by identity, not by path text.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::domain_xml::{DiskSource, DomainInfo};
use crate::error::{Error, Result};
use crate::host::Host;
use crate::storage::folder::{self, Folder};

/// A folder a clone may be put in.
#[derive(Debug, Clone)]
pub struct Destination {
    pub folder: Arc<Folder>,
    /// The storage pool whose target it is.
    pub pool: Option<String>,
}

impl Destination {
    pub fn path(&self) -> &Path {
        self.folder.path()
    }

    /// Bytes free on its filesystem.
    pub fn free_bytes(&self) -> Result<u64> {
        Ok(self.folder.free_bytes()?)
    }
}

/// Every folder a clone of `info` may be put in, each once.
pub fn allowed(host: &Host, info: Option<&DomainInfo>) -> Result<Vec<Destination>> {
    let mut out: Vec<Destination> = Vec::new();
    let mut add = |path: &Path, pool: Option<String>| match Folder::open(path) {
        Ok(folder) => {
            if let Some(known) = out.iter_mut().find(|d| d.folder.id() == folder.id()) {
                known.pool = known.pool.take().or(pool);
            } else {
                out.push(Destination {
                    folder: Arc::new(folder),
                    pool,
                });
            }
        }
        Err(e) => tracing::debug!("{} is not a destination: {e}", path.display()),
    };
    for (pool, target) in host.file_pools()? {
        add(&target, Some(pool));
    }
    if let Some(info) = info {
        for dir in source_folders(info) {
            add(&dir, None);
        }
    }
    Ok(out)
}

/// The folders of the source's own writable file disks. A shared disk's
/// folder is not the VM's own (an ISO library, `/dev` for a host cdrom, a
/// root folder holding a read-only image), nor is a block device's (`/dev`);
/// a volume's folder counts as its pool's, which is listed when active.
fn source_folders(info: &DomainInfo) -> Vec<PathBuf> {
    info.disks
        .iter()
        .filter(|d| !d.is_shared())
        .filter_map(|d| match &d.source {
            DiskSource::File(p) => folder::split(p).ok().map(|(dir, _)| dir.to_owned()),
            _ => None,
        })
        .collect()
}

/// The allowed destination the caller named as `target_dir`.
pub fn choose(allowed: &[Destination], target_dir: &Path) -> Result<Arc<Folder>> {
    let refuse = |why: String| {
        let list: Vec<String> = allowed
            .iter()
            .map(|d| d.path().display().to_string())
            .collect();
        Error::InvalidOption(format!(
            "Option “target-dir”: {why}. A clone may go into the folder of a storage pool or a folder that holds the VM's disks: {}.",
            match list.is_empty() {
                true => "(none here)".to_string(),
                false => list.join(", "),
            }
        ))
    };
    // One answer whether the folder is missing, unreadable to the caller or
    // just not allowed: root's view must not tell a caller what exists.
    let not_allowed = || refuse(format!("“{}” is not one of them", target_dir.display()));
    let folder = Folder::open(target_dir).map_err(|e| {
        tracing::debug!("target-dir {}: {e}", target_dir.display());
        not_allowed()
    })?;
    allowed
        .iter()
        .find(|d| d.folder.id() == folder.id())
        .map(|d| d.folder.clone())
        .ok_or_else(not_allowed)
}
