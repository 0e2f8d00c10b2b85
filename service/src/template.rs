//! Templates: VMs marked in our libvirt metadata namespace whose disk images
//! are made read-only, so that linked clones can safely stand on them.

use std::path::PathBuf;

use crate::domain_xml::{self, DiskSource};
use crate::error::{Error, Result};
use crate::host::Host;
use crate::storage::copy::Source;
use crate::storage::error::FileKind;

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
        match Source::open(&path) {
            Ok(image) if !image.is_block_device() => images.push(image),
            Ok(_) => {}
            Err(crate::storage::error::FileError::Unsupported {
                kind: FileKind::BlockDevice,
                ..
            }) => {}
            Err(e) if is_missing(&e) => {}
            Err(e) => return Err(e.into()),
        }
    }
    // Through the open descriptors: a path swapped meanwhile changes nothing.
    let set = |image: &Source, mode: u32| {
        rustix::fs::fchmod(image.file(), rustix::fs::Mode::from_raw_mode(mode))
    };
    let mut changed: Vec<&Source> = Vec::new();
    for image in &images {
        if let Err(e) = set(image, image.mode() & !0o222) {
            for done in &changed {
                let _ = set(done, done.mode());
            }
            return Err(Error::Storage(format!(
                "Cannot make {} read-only: {e}",
                image.path().display()
            )));
        }
        changed.push(image);
    }
    if let Err(e) = host.mark_template(&dom) {
        for done in &changed {
            let _ = set(done, done.mode());
        }
        return Err(e);
    }
    tracing::info!("“{}” is now a template", info.name);
    Ok(info.uuid)
}

fn is_missing(e: &crate::storage::error::FileError) -> bool {
    matches!(e, crate::storage::error::FileError::Io { source, .. } if source.kind() == std::io::ErrorKind::NotFound)
}
