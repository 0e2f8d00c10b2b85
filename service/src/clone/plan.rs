//! The storage plan of one clone: for every disk, whether it is shared,
//! copied, cloned as a pool volume or given an overlay, and where the result
//! goes; plus the NVRAM file and TPM state. Planning only reads and reserves;
//! nothing is created until the plan runs.

use std::path::{Path, PathBuf};

use virt::storage_vol::StorageVol;

use crate::clone::reserve::{path_key, volume_key, Reservation, Reservations};
use crate::domain_xml::{Disk, DiskSource, DomainInfo};
use crate::error::{Error, Result};
use crate::host::Host;
use crate::naming;
use crate::options::StorageMode;
use crate::storage::{occupied, swtpm_state_dir};

/// What happens to one disk.
pub enum DiskOp {
    /// Shared with the source, unchanged.
    Keep,
    /// A byte copy by our copy engine into `dst`; `volume` names the pool
    /// volume it becomes when the disk refers to volumes by name.
    CopyFile {
        src: PathBuf,
        dst: PathBuf,
        volume: Option<(String, String)>,
    },
    /// A copy made by libvirt's storage API in the source volume's pool.
    CloneVolume {
        source: StorageVol,
        pool: String,
        new_name: String,
        format: Option<String>,
        /// The disk names the volume by pool/volume (else by path).
        by_name: bool,
    },
    /// A qcow2 overlay in `dst` backed by `backing`.
    Overlay {
        backing: PathBuf,
        backing_format: String,
        dst: PathBuf,
    },
}

pub struct StoragePlan {
    pub disks: Vec<DiskOp>,
    /// (source, new path); the source may be missing: libvirt then recreates it.
    pub nvram: Option<(PathBuf, PathBuf)>,
    /// (source folder, new folder) of swtpm state.
    pub tpm: Option<(PathBuf, PathBuf)>,
}

pub struct Planner<'a> {
    pub host: &'a Host,
    pub reservations: &'a Reservations,
    pub reservation: &'a mut Reservation,
    pub info: &'a DomainInfo,
    pub new_name: &'a str,
    pub new_uuid: &'a str,
    pub target_dir: Option<&'a Path>,
    pub mode: StorageMode,
}

impl Planner<'_> {
    pub fn plan(mut self) -> Result<StoragePlan> {
        let mut disks = Vec::with_capacity(self.info.disks.len());
        for disk in &self.info.disks {
            let op = if disk.is_shared() {
                DiskOp::Keep
            } else {
                match self.mode {
                    StorageMode::Copy => self.plan_copy(disk)?,
                    StorageMode::Linked => self.plan_overlay(disk)?,
                }
            };
            disks.push(op);
        }
        let nvram = match &self.info.nvram {
            Some(src) => {
                let src = PathBuf::from(src);
                let dst = naming::nvram_clone_path(&src, self.new_name);
                if occupied(&dst) || !self.reservation.take(path_key(&dst)) {
                    return Err(Error::Storage(format!(
                        "The clone's UEFI variables file {} already exists. Remove it if it is left over from an old VM, or choose another name.",
                        dst.display()
                    )));
                }
                Some((src, dst))
            }
            None => None,
        };
        let tpm = match self.info.tpm_emulator {
            true => {
                let dir = swtpm_state_dir(self.host.uri());
                let src = dir.join(&self.info.uuid);
                let dst = dir.join(self.new_uuid);
                if occupied(&dst) {
                    return Err(Error::Storage(format!(
                        "TPM state for the clone's UUID already exists in {}. Remove it if it is left over from a deleted VM, or give another uuid.",
                        dst.display()
                    )));
                }
                // No state yet (never started): libvirt creates it at first start.
                src.is_dir().then_some((src, dst))
            }
            false => None,
        };
        Ok(StoragePlan { disks, nvram, tpm })
    }

    /// A free path for a copy of `src`, reserved.
    fn free_path(&mut self, src: &Path) -> PathBuf {
        let reservations = self.reservations;
        loop {
            let dst = naming::disk_clone_path(
                src,
                &self.info.name,
                self.new_name,
                self.target_dir,
                |p: &Path| occupied(p) || reservations.is_held(&path_key(p)),
            );
            // Lost a race with a concurrent clone between the check and the
            // reservation: ask again, the path is now held.
            if self.reservation.take(path_key(&dst)) {
                return dst;
            }
        }
    }

    fn plan_copy(&mut self, disk: &Disk) -> Result<DiskOp> {
        match &disk.source {
            DiskSource::File(path) | DiskSource::Block(path) => {
                let is_block = matches!(disk.source, DiskSource::Block(_));
                if self.target_dir.is_none() {
                    if let Some(vol) = self.host.volume_at(&path.to_string_lossy()) {
                        return self.plan_volume(disk, vol, false);
                    }
                    if is_block {
                        return Err(Error::Storage(format!(
                            "The block device {} is not a volume of a libvirt storage pool, so vmclone cannot make a new one for the clone. Use the target-dir option to copy it into a file instead.",
                            path.display()
                        )));
                    }
                }
                if !path.exists() {
                    return Err(Error::Storage(format!(
                        "The disk image {} of “{}” does not exist, so it cannot be copied.",
                        path.display(),
                        self.info.name
                    )));
                }
                Ok(DiskOp::CopyFile {
                    src: path.clone(),
                    dst: self.free_path(path),
                    volume: None,
                })
            }
            DiskSource::Volume { pool, volume } if self.target_dir.is_some() => {
                let path = self
                    .host
                    .volume(pool, volume)
                    .and_then(|v| v.path())
                    .map(PathBuf::from)
                    .ok()
                    .filter(|p| p.is_file())
                    .ok_or_else(|| {
                        Error::InvalidOption(format!(
                            "Option “target-dir” cannot take a copy of volume “{volume}” of pool “{pool}”: it is not a file vmclone can copy. Leave target-dir out to copy it inside its pool."
                        ))
                    })?;
                Ok(DiskOp::CopyFile {
                    dst: self.free_path(&path),
                    src: path,
                    volume: None,
                })
            }
            DiskSource::Volume { pool, volume } => {
                let vol = self.host.volume(pool, volume).map_err(|e| {
                    Error::Storage(format!(
                        "The disk volume “{volume}” in pool “{pool}” cannot be found: {}",
                        e.message()
                    ))
                })?;
                self.plan_volume(disk, vol, true)
            }
            other => Err(not_cloneable(other, disk, &self.info.name)),
        }
    }

    fn plan_volume(&mut self, disk: &Disk, vol: StorageVol, by_name: bool) -> Result<DiskOp> {
        let pool = vol.lookup_storage_pool()?;
        let pool_name = pool.name()?;
        let src_name = vol.name()?;
        let host = self.host;
        let reservations = self.reservations;
        loop {
            let new_name =
                naming::volume_clone_name(&src_name, &self.info.name, self.new_name, |n| {
                    host.volume_exists(&pool, n) || reservations.is_held(&volume_key(&pool_name, n))
                });
            if self.reservation.take(volume_key(&pool_name, &new_name)) {
                // A volume that is a plain file we can read is copied by our
                // engine (sparse, reflinked, cancellable) into the pool's folder.
                let src_path = PathBuf::from(vol.path()?);
                if src_path.is_file() {
                    let dst = src_path.with_file_name(&new_name);
                    if !occupied(&dst) && self.reservation.take(path_key(&dst)) {
                        return Ok(DiskOp::CopyFile {
                            src: src_path,
                            dst,
                            volume: by_name.then(|| (pool_name.clone(), new_name.clone())),
                        });
                    }
                    continue;
                }
                return Ok(DiskOp::CloneVolume {
                    source: vol,
                    pool: pool_name,
                    new_name,
                    format: disk.driver_type.clone(),
                    by_name,
                });
            }
        }
    }

    fn plan_overlay(&mut self, disk: &Disk) -> Result<DiskOp> {
        let backing = match &disk.source {
            DiskSource::File(p) | DiskSource::Block(p) => p.clone(),
            DiskSource::Volume { pool, volume } => {
                PathBuf::from(self.host.volume(pool, volume).and_then(|v| v.path())?)
            }
            other => return Err(not_cloneable(other, disk, &self.info.name)),
        };
        if !backing.exists() {
            return Err(Error::Storage(format!(
                "The template's disk image {} does not exist, so no linked clone can be made from it.",
                backing.display()
            )));
        }
        if matches!(disk.source, DiskSource::Block(_)) && self.target_dir.is_none() {
            return Err(Error::Storage(format!(
                "The template's disk {} is a block device; give the target-dir option to say where the linked clone's overlay file goes.",
                backing.display()
            )));
        }
        let backing_format = disk.driver_type.clone().unwrap_or_else(|| "raw".into());
        // Named as if the image were a .qcow2 file: the overlay is one.
        let dst = self.free_path(&backing.with_extension("qcow2"));
        Ok(DiskOp::Overlay {
            backing,
            backing_format,
            dst,
        })
    }
}

fn not_cloneable(source: &DiskSource, disk: &Disk, vm: &str) -> Error {
    let target = disk.target_dev.as_deref().unwrap_or("?");
    let what = match source {
        DiskSource::Network { protocol } => format!("a network disk ({protocol})"),
        DiskSource::Dir(p) => format!("a host folder ({})", p.display()),
        _ => "of a kind vmclone cannot copy".into(),
    };
    Error::Storage(format!(
        "Disk {target} of “{vm}” is {what} and cannot be cloned. Mark it read-only or shareable to share it with the clone, or remove it from the VM first."
    ))
}
