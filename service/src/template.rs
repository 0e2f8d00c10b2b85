//! Templates: VMs marked in our libvirt metadata namespace whose disk images
//! are made read-only, so that linked clones can safely stand on them.

use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;

use crate::domain_xml::{self, DiskSource};
use crate::error::{Error, Result};
use crate::host::Host;

/// Marks the shut-off VM `id_or_name` as a template; returns its UUID. Idempotent.
pub fn convert(host: &Host, id_or_name: &str) -> Result<String> {
    let dom = host.lookup(id_or_name)?;
    let info = domain_xml::parse(&host.inactive_xml(&dom)?)?;
    host.ensure_shut_off(&dom, &info.name)?;
    let mut images = Vec::new();
    for disk in info.disks.iter().filter(|d| !d.is_shared()) {
        let path = match &disk.source {
            DiskSource::File(p) | DiskSource::Block(p) => p.clone(),
            DiskSource::Volume { pool, volume } => {
                PathBuf::from(host.volume(pool, volume).and_then(|v| v.path())?)
            }
            _ => continue,
        };
        // Block devices keep their modes; the test driver's images are not files.
        if path.is_file() {
            images.push(path);
        }
    }
    let mut changed: Vec<(PathBuf, u32)> = Vec::new();
    let restore = |changed: &[(PathBuf, u32)]| {
        for (p, mode) in changed {
            let _ = std::fs::set_permissions(p, std::fs::Permissions::from_mode(*mode));
        }
    };
    for path in images {
        let mode = path.metadata().map(|m| m.permissions().mode() & 0o7777);
        let result = mode.and_then(|mode| {
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode & !0o222))?;
            Ok(mode)
        });
        match result {
            Ok(mode) => changed.push((path, mode)),
            Err(e) => {
                restore(&changed);
                return Err(Error::Storage(format!(
                    "Cannot make {} read-only: {e}",
                    path.display()
                )));
            }
        }
    }
    if let Err(e) = host.mark_template(&dom) {
        restore(&changed);
        return Err(e);
    }
    tracing::info!("“{}” is now a template", info.name);
    Ok(info.uuid)
}
