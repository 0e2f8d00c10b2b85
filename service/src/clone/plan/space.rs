//! The room a plan takes where it writes, known before a byte moves: the
//! bytes each filesystem (or storage pool libvirt fills) must take, beside
//! what it has free. The clone refuses to start what cannot fit; the plan
//! report shows it.

use std::collections::BTreeMap;
use std::path::PathBuf;

use super::{DiskWork, StoragePlan};
use crate::error::{Error, Result};
use crate::host::Host;
use crate::storage::copy::Source;
use crate::storage::folder::Folder;

/// Where bytes land.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Place {
    /// A filesystem, named by a destination folder on it.
    Filesystem(PathBuf),
    /// A storage pool libvirt copies volumes into.
    Pool(String),
}

/// One place the clone writes to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Space {
    pub place: Place,
    pub free_bytes: u64,
    /// Bytes the clone adds there (reflinks and overlays take next to none).
    pub bytes_needed: u64,
}

impl Space {
    pub fn fits(&self) -> bool {
        self.bytes_needed <= self.free_bytes
    }
}

/// Whether a copy of `source` into `folder` will be a reflink: the same
/// filesystem, of a kind that shares extents (XFS, Btrfs). A forecast: the
/// copy tries a reflink first and falls back on its own.
pub fn reflinks(source: &Source, folder: &Folder) -> Result<bool> {
    const XFS: i64 = 0x5846_5342;
    const BTRFS: i64 = 0x9123_683e;
    let same =
        rustix::fs::fstat(source.file()).map(|st| st.st_dev).ok() == Some(folder.stat()?.st_dev);
    let kind = rustix::fs::fstatfs(folder.fd())
        .map(|st| st.f_type)
        .unwrap_or(0);
    Ok(same && !source.is_block_device() && matches!(kind, XFS | BTRFS))
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Key {
    Device(u64),
    Pool(String),
}

#[derive(Default)]
struct Tally(BTreeMap<Key, Space>);

impl Tally {
    fn folder(&mut self, folder: &Folder, bytes: u64) -> Result<()> {
        let key = Key::Device(folder.stat()?.st_dev);
        if !self.0.contains_key(&key) {
            let space = Space {
                place: Place::Filesystem(folder.path().to_owned()),
                free_bytes: folder.free_bytes()?,
                bytes_needed: 0,
            };
            self.0.insert(key.clone(), space);
        }
        self.add(&key, bytes);
        Ok(())
    }

    fn pool(&mut self, host: &Host, pool: &str, bytes: u64) -> Result<()> {
        let key = Key::Pool(pool.to_owned());
        if !self.0.contains_key(&key) {
            let space = Space {
                place: Place::Pool(pool.to_owned()),
                free_bytes: host.pool_available(pool)?,
                bytes_needed: 0,
            };
            self.0.insert(key.clone(), space);
        }
        self.add(&key, bytes);
        Ok(())
    }

    fn add(&mut self, key: &Key, bytes: u64) {
        if let Some(s) = self.0.get_mut(key) {
            s.bytes_needed += bytes;
        }
    }
}

impl StoragePlan {
    /// The room the plan takes, per filesystem or pool it writes to.
    pub fn space(&self, host: &Host) -> Result<Vec<Space>> {
        let mut tally = Tally::default();
        for work in &self.disks {
            match work {
                DiskWork::Copy { layers } => {
                    for layer in self.copied_layers(layers) {
                        let bytes = match !self.live && reflinks(&layer.source, &layer.dst.folder)?
                        {
                            true => 0,
                            false => self.layer_bytes(layer)?,
                        };
                        tally.folder(&layer.dst.folder, bytes)?;
                    }
                }
                DiskWork::CloneVolume { source, pool, .. } => {
                    let bytes = source.info().map_err(Error::from)?.allocation;
                    tally.pool(host, pool, bytes)?;
                }
                DiskWork::Overlay { dst, .. } => tally.folder(&dst.folder, 0)?,
                DiskWork::Share => {}
            }
        }
        if let Some((src, dst)) = self.nvram.as_ref().and_then(|n| n.copy.as_ref()) {
            tally.folder(&dst.folder, src.allocated()?)?;
        }
        Ok(tally.0.into_values().collect())
    }

    /// Refuses, naming the place, a plan that cannot fit where it writes.
    pub fn check_space(&self, host: &Host) -> Result<()> {
        match self.space(host)?.into_iter().find(|s| !s.fits()) {
            None => Ok(()),
            Some(s) => Err(Error::Storage(format!(
                "The clone needs {} on {} but only {} are free. Free some space or choose another destination.",
                human(s.bytes_needed),
                match &s.place {
                    Place::Filesystem(p) => format!("the filesystem of {}", p.display()),
                    Place::Pool(p) => format!("storage pool “{p}”"),
                },
                human(s.free_bytes),
            ))),
        }
    }
}

/// Bytes in binary units, one decimal: "1.5 GiB".
fn human(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["bytes", "KiB", "MiB", "GiB", "TiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    match unit {
        0 => format!("{bytes} bytes"),
        _ => format!("{value:.1} {}", UNITS[unit]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_read_as_people_write_them() {
        assert_eq!(human(512), "512 bytes");
        assert_eq!(human(1536), "1.5 KiB");
        assert_eq!(human(48 << 20), "48.0 MiB");
        assert_eq!(human(5 << 40), "5.0 TiB");
    }
}
