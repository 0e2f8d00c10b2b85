//! What a clone would do, as `PlanClone` answers: each disk's fate, the
//! bytes to copy, the free space where they go, warnings, a live clone's
//! consistency, and the folders the clone may be put in.

use std::collections::HashMap;

use gettextrs::gettext;
use zbus::zvariant::OwnedValue;

use super::error::ClientError;
use super::vm_details::{optional, optional_list, required};

type Dict = HashMap<String, OwnedValue>;

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ClonePlan {
    pub disks: Vec<PlannedDisk>,
    pub bytes_to_copy: u64,
    pub filesystems: Vec<Space>,
    /// The service's verdict for one clone.
    pub fits: bool,
    /// The UEFI variables and the TPM state; `None` when the VM has none.
    pub nvram: Option<StateCopy>,
    pub tpm: Option<StateCopy>,
    pub warnings: Vec<String>,
    /// A live clone's `filesystem` or `crash`; empty otherwise.
    pub consistency: String,
    /// The folders `target-dir` accepts for this source.
    pub destinations: Vec<Destination>,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PlannedDisk {
    pub target: String,
    pub source: String,
    /// `copy`, `reflink`, `live`, `overlay`, `volume` or `shared`.
    pub action: String,
    pub destination: String,
    pub allocated: u64,
    pub virtual_size: u64,
}

/// A file or folder of VM state the clone gets its own copy of.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct StateCopy {
    pub source: String,
    pub destination: String,
    /// The source has it now; otherwise it is made at the clone's first start.
    pub exists: bool,
}

/// One place the clone writes to.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Space {
    /// The folder, or for a pool libvirt fills "pool “name”".
    pub place: String,
    pub free_bytes: u64,
    pub bytes_needed: u64,
    pub fits: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Destination {
    pub path: String,
    /// The storage pool whose folder it is.
    pub pool: Option<String>,
    pub free_bytes: u64,
}

impl PlannedDisk {
    /// Whether the disk's bytes are copied (not linked, not shared).
    pub fn copies_bytes(&self) -> bool {
        matches!(self.action.as_str(), "copy" | "reflink" | "volume" | "live")
    }

    /// The bytes its copy walks: the allocation, or for a live copy (QEMU's
    /// backup job reads the whole disk, holes going fast) its virtual size.
    pub fn bytes_to_copy(&self) -> u64 {
        match self.action.as_str() {
            "live" => self.virtual_size,
            _ => self.allocated,
        }
    }
}

impl ClonePlan {
    pub(super) fn from_dict(dict: &Dict) -> Result<ClonePlan, ClientError> {
        let must = |key: &str| required::<u64>(dict, "plan", key);
        Ok(ClonePlan {
            disks: optional_list(dict, "disks", |d| {
                Ok(PlannedDisk {
                    target: required(d, "disks", "target")?,
                    source: required(d, "disks", "source")?,
                    action: required(d, "disks", "action")?,
                    destination: required(d, "disks", "destination")?,
                    allocated: required(d, "disks", "allocated")?,
                    virtual_size: required(d, "disks", "virtual-size")?,
                })
            })?
            .unwrap_or_default(),
            bytes_to_copy: must("bytes-to-copy")?,
            filesystems: optional_list(dict, "filesystems", |d| {
                let folder: String = required(d, "filesystems", "folder")?;
                let place = match folder.is_empty() {
                    true => gettext("pool “{pool}”").replace(
                        "{pool}",
                        &optional::<String>(d, "pool")?.unwrap_or_default(),
                    ),
                    false => folder,
                };
                Ok(Space {
                    place,
                    free_bytes: required(d, "filesystems", "free-bytes")?,
                    bytes_needed: required(d, "filesystems", "bytes-needed")?,
                    fits: required(d, "filesystems", "fits")?,
                })
            })?
            .unwrap_or_default(),
            fits: required(dict, "plan", "fits")?,
            nvram: state_copy(dict, "nvram")?,
            tpm: state_copy(dict, "tpm")?,
            warnings: optional(dict, "warnings")?.unwrap_or_default(),
            consistency: optional(dict, "consistency")?.unwrap_or_default(),
            destinations: optional_list(dict, "destinations", |d| {
                Ok(Destination {
                    path: required(d, "destinations", "path")?,
                    pool: optional(d, "pool")?,
                    free_bytes: required(d, "destinations", "free-bytes")?,
                })
            })?
            .unwrap_or_default(),
        })
    }

    /// The first place that cannot hold `copies` clones like this one (they
    /// all need their bytes on the same filesystems), or `None` when all fit.
    pub fn short_for(&self, copies: u32) -> Option<Space> {
        let copies = u64::from(copies.max(1));
        self.filesystems
            .iter()
            .find(|s| !s.fits || s.bytes_needed.saturating_mul(copies) > s.free_bytes)
            .map(|s| Space {
                bytes_needed: s.bytes_needed.saturating_mul(copies),
                ..s.clone()
            })
    }
}

/// `key`'s `{source, destination, exists}`; an empty dictionary is none.
fn state_copy(dict: &Dict, key: &str) -> Result<Option<StateCopy>, ClientError> {
    let Some(copy) = optional::<Dict>(dict, key)? else {
        return Ok(None);
    };
    if copy.is_empty() {
        return Ok(None);
    }
    Ok(Some(StateCopy {
        source: required(&copy, key, "source")?,
        destination: required(&copy, key, "destination")?,
        exists: required(&copy, key, "exists")?,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn space(needed: u64, free: u64) -> Space {
        Space {
            place: "/srv/vms".into(),
            free_bytes: free,
            bytes_needed: needed,
            fits: needed <= free,
        }
    }

    #[test]
    fn copies_need_their_bytes_together_on_each_filesystem() {
        let plan = ClonePlan {
            filesystems: vec![space(10, 35)],
            fits: true,
            ..ClonePlan::default()
        };
        assert_eq!(plan.short_for(1), None);
        assert_eq!(plan.short_for(3), None);
        let short = plan.short_for(4).expect("40 bytes do not fit in 35");
        assert_eq!((short.bytes_needed, short.free_bytes), (40, 35));
        let one_short = ClonePlan {
            filesystems: vec![space(50, 35)],
            ..ClonePlan::default()
        };
        assert!(one_short.short_for(1).is_some());
    }
}
