//! The pure part of a clone's storage plan: from the parsed domain, the new
//! name, the destination folder and what is already taken, what happens to
//! each disk and where its copy goes. Nothing is opened or created here; a
//! [`Lookups`] answers the questions about the host, so the same decision
//! runs in the service (on libvirt and the filesystem) and in the
//! virt-clone conformance test (on virt-manager's test data).

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use crate::domain_xml::{Disk, DiskSource, DiskTarget, DomainInfo, NewDisk};
use crate::error::{Error, Result};
use crate::naming;
use crate::options::StorageMode;

/// How many names are tried for one copy before giving up.
const MAX_TRIES: usize = 1000;

/// A storage-pool volume, as the planner needs to know it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VolumeRef {
    pub pool: String,
    pub name: String,
    pub path: PathBuf,
    /// A plain file vmclone can copy itself (else libvirt copies it).
    pub is_file: bool,
}

/// What the decision asks about the host.
pub trait Lookups {
    /// The pool volume at `path`, if a pool holds it.
    fn volume_at(&self, path: &Path) -> Option<VolumeRef>;
    /// The volume `name` of pool `pool`.
    fn volume(&self, pool: &str, name: &str) -> Result<VolumeRef>;
    /// Whether a source image is at `path` (it is opened, by descriptor, later).
    fn exists(&self, path: &Path) -> bool;
    /// Claims `path` for this clone; false when something is there or
    /// another clone holds it.
    fn claim_path(&mut self, path: &Path) -> Result<bool>;
    /// Claims the volume name `name` in `pool`, as `claim_path`.
    fn claim_volume(&mut self, pool: &str, name: &str) -> Result<bool>;
}

/// What happens to one disk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DiskDecision {
    /// Shared with the source, unchanged.
    Share,
    /// A byte copy of the file `src` into `dst`; `volume` is the pool volume
    /// (pool, name) the copy becomes when the disk names volumes.
    CopyFile {
        src: PathBuf,
        dst: PathBuf,
        volume: Option<(String, String)>,
    },
    /// A copy made by libvirt's storage API: volume `source` of `pool` as `new_name`.
    CloneVolume {
        pool: String,
        source: String,
        new_name: String,
        /// The disk names the volume by pool/volume (else by path).
        by_name: bool,
    },
    /// A qcow2 overlay in `dst` backed by the template's image `backing`.
    Overlay { backing: PathBuf, dst: PathBuf },
}

impl DiskDecision {
    /// Where the clone's disk points, when that is known before anything is
    /// made (a volume libvirt copies by path gets its path only once made).
    pub fn target(&self, disk: &Disk) -> Option<DiskTarget> {
        match self {
            DiskDecision::Share => None,
            DiskDecision::CopyFile {
                volume: Some((pool, volume)),
                ..
            } => Some(DiskTarget::Volume {
                pool: pool.clone(),
                volume: volume.clone(),
            }),
            DiskDecision::CopyFile { dst, .. } => Some(match disk.source {
                DiskSource::Block(_) => DiskTarget::Block(dst.clone()),
                _ => DiskTarget::File(dst.clone()),
            }),
            DiskDecision::CloneVolume {
                pool,
                new_name,
                by_name: true,
                ..
            } => Some(DiskTarget::Volume {
                pool: pool.clone(),
                volume: new_name.clone(),
            }),
            DiskDecision::CloneVolume { .. } => None,
            DiskDecision::Overlay { dst, .. } => Some(DiskTarget::File(dst.clone())),
        }
    }

    /// The clone's disk as the rewrite needs it, when known before anything
    /// is made: a copy keeps its format, an overlay is a qcow2 whose chain
    /// libvirt probes anew.
    pub fn new_disk(&self, disk: &Disk) -> Option<NewDisk> {
        let target = self.target(disk)?;
        let overlay = matches!(self, DiskDecision::Overlay { .. });
        Some(NewDisk {
            target,
            driver_type: overlay.then(|| "qcow2".to_owned()),
            overlay,
        })
    }
}

/// The clone's disks and UEFI variables file, decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    /// One per disk, in order.
    pub disks: Vec<DiskDecision>,
    /// (source, copy) of the NVRAM file.
    pub nvram: Option<(PathBuf, PathBuf)>,
}

/// Decides every disk and the NVRAM file of a clone `new_name` of `info`.
pub fn decide(
    info: &DomainInfo,
    new_name: &str,
    target_dir: Option<&Path>,
    mode: StorageMode,
    lookups: &mut impl Lookups,
) -> Result<Decision> {
    let mut d = Decider {
        info,
        new_name,
        target_dir,
        lookups,
    };
    let mut disks = Vec::with_capacity(info.disks.len());
    for disk in &info.disks {
        disks.push(match (disk.is_shared(), mode) {
            (true, _) => DiskDecision::Share,
            (false, StorageMode::Copy) => d.copy(disk)?,
            (false, StorageMode::Linked) => d.overlay(disk)?,
        });
    }
    let nvram = match &info.nvram {
        Some(src) => {
            let src = PathBuf::from(src);
            let dst = naming::nvram_clone_path(&src, new_name);
            if !d.lookups.claim_path(&dst)? {
                return Err(Error::Storage(format!(
                    "The clone's UEFI variables file {} already exists. Remove it if it is left over from an old VM, or choose another name.",
                    dst.display()
                )));
            }
            Some((src, dst))
        }
        None => None,
    };
    Ok(Decision { disks, nvram })
}

struct Decider<'a, L> {
    info: &'a DomainInfo,
    new_name: &'a str,
    target_dir: Option<&'a Path>,
    lookups: &'a mut L,
}

impl<L: Lookups> Decider<'_, L> {
    fn free_path(&mut self, src: &Path) -> Result<PathBuf> {
        free_copy_path(
            self.lookups,
            src,
            &self.info.name,
            self.new_name,
            self.target_dir,
        )
    }

    fn copy(&mut self, disk: &Disk) -> Result<DiskDecision> {
        match &disk.source {
            DiskSource::File(path) | DiskSource::Block(path) => {
                if self.target_dir.is_none() {
                    if let Some(vol) = self.lookups.volume_at(path) {
                        return self.volume(vol, false);
                    }
                    if matches!(disk.source, DiskSource::Block(_)) {
                        return Err(Error::Storage(format!(
                            "The block device {} is not a volume of a libvirt storage pool, so vmclone cannot make a new one for the clone. Use the target-dir option to copy it into a file instead.",
                            path.display()
                        )));
                    }
                }
                if !self.lookups.exists(path) {
                    return Err(Error::Storage(format!(
                        "The disk image {} of “{}” does not exist, so it cannot be copied.",
                        path.display(),
                        self.info.name
                    )));
                }
                Ok(DiskDecision::CopyFile {
                    src: path.clone(),
                    dst: self.free_path(path)?,
                    volume: None,
                })
            }
            DiskSource::Volume { pool, volume } if self.target_dir.is_some() => {
                let vol = self
                    .lookups
                    .volume(pool, volume)
                    .ok()
                    .filter(|v| v.is_file)
                    .ok_or_else(|| {
                        Error::InvalidOption(format!(
                            "Option “target-dir” cannot take a copy of volume “{volume}” of pool “{pool}”: it is not a file vmclone can copy. Leave target-dir out to copy it inside its pool."
                        ))
                    })?;
                Ok(DiskDecision::CopyFile {
                    dst: self.free_path(&vol.path)?,
                    src: vol.path,
                    volume: None,
                })
            }
            DiskSource::Volume { pool, volume } => {
                let vol = self.lookups.volume(pool, volume)?;
                self.volume(vol, true)
            }
            other => Err(not_cloneable(other, disk, &self.info.name)),
        }
    }

    /// A new volume in the source volume's pool: copied by vmclone when it
    /// is a plain file, else by libvirt.
    fn volume(&mut self, vol: VolumeRef, by_name: bool) -> Result<DiskDecision> {
        let mut refused = HashSet::new();
        for _ in 0..MAX_TRIES {
            let new_name =
                naming::volume_clone_name(&vol.name, &self.info.name, self.new_name, |n| {
                    refused.contains(n)
                });
            refused.insert(new_name.clone());
            if !self.lookups.claim_volume(&vol.pool, &new_name)? {
                continue;
            }
            if !vol.is_file {
                return Ok(DiskDecision::CloneVolume {
                    pool: vol.pool,
                    source: vol.name,
                    new_name,
                    by_name,
                });
            }
            let dst = vol.path.with_file_name(&new_name);
            if self.lookups.claim_path(&dst)? {
                return Ok(DiskDecision::CopyFile {
                    src: vol.path,
                    dst,
                    volume: by_name.then(|| (vol.pool.clone(), new_name)),
                });
            }
        }
        Err(no_free_name(&vol.path))
    }

    fn overlay(&mut self, disk: &Disk) -> Result<DiskDecision> {
        let backing = match &disk.source {
            DiskSource::File(p) | DiskSource::Block(p) => p.clone(),
            DiskSource::Volume { pool, volume } => self.lookups.volume(pool, volume)?.path,
            other => return Err(not_cloneable(other, disk, &self.info.name)),
        };
        if !self.lookups.exists(&backing) {
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
        // Named as if the image were a .qcow2 file: the overlay is one.
        let dst = self.free_path(&backing.with_extension("qcow2"))?;
        Ok(DiskDecision::Overlay { backing, dst })
    }
}

/// The first free path for a copy of `src` by the naming rules (beside it,
/// or in `target_dir`), claimed.
pub fn free_copy_path(
    lookups: &mut impl Lookups,
    src: &Path,
    old_name: &str,
    new_name: &str,
    target_dir: Option<&Path>,
) -> Result<PathBuf> {
    let mut refused = HashSet::new();
    for _ in 0..MAX_TRIES {
        let dst =
            naming::disk_clone_path(src, old_name, new_name, target_dir, |p| refused.contains(p));
        // Taken on the host or by another clone: ask for the next one.
        if lookups.claim_path(&dst)? {
            return Ok(dst);
        }
        refused.insert(dst);
    }
    Err(no_free_name(src))
}

fn no_free_name(src: &Path) -> Error {
    Error::Storage(format!(
        "No free file name was found for a copy of {} after {MAX_TRIES} tries; remove old copies from its folder.",
        src.display()
    ))
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
