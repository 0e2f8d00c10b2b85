//! What a clone would do, said before it is done (`PlanClone`): each disk's
//! fate and destination, the bytes to move, the space on each destination
//! filesystem, and what the clone changes that a user may not expect.

use super::plan::decide::DiskDecision;
use super::plan::destinations::{self, Destination};
use super::plan::space::{reflinks, Space};
use super::plan::{DiskWork, StoragePlan};
use super::Consistency;
use crate::domain_xml::{DiskSource, DomainInfo};
use crate::error::Result;
use crate::host::Host;
use crate::options::{CloneOptions, GuestIdentity, StorageMode};

/// What happens to one disk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DiskReport {
    pub target: String,
    pub device: String,
    /// The image's path, or `pool/volume`.
    pub source: String,
    pub format: String,
    pub virtual_size: u64,
    pub allocated: u64,
    /// `copy`, `reflink`, `live` (QEMU's backup of the running disk, its
    /// chain flattened), `overlay`, `shared` or `volume`.
    pub action: &'static str,
    /// The copy's path, `pool/volume`, or empty when shared.
    pub destination: String,
    /// Backing images copied with it (a qcow2 chain).
    pub backing_images: u32,
}

/// A file or folder copied: where from, where to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CopyReport {
    pub source: String,
    pub destination: String,
    /// The source exists (else libvirt makes it at the clone's first start).
    pub exists: bool,
}

#[derive(Debug, Clone)]
pub struct PlanReport {
    pub disks: Vec<DiskReport>,
    pub nvram: Option<CopyReport>,
    pub tpm: Option<CopyReport>,
    /// What the job's BytesTotal will be: the allocated bytes the copies move.
    pub bytes_to_copy: u64,
    /// The room the clone takes where it writes.
    pub space: Vec<Space>,
    pub warnings: Vec<String>,
    /// Where `target-dir` may point for this source.
    pub destinations: Vec<Destination>,
    /// What a live copy is expected to be (the agent answers now; it may
    /// still fail to freeze at the moment of the copy).
    pub consistency: Consistency,
}

impl PlanReport {
    pub fn fits(&self) -> bool {
        self.space.iter().all(Space::fits)
    }

    /// The report of `plan`, made for `info` with `opts`.
    pub fn of(
        host: &Host,
        info: &DomainInfo,
        plan: &StoragePlan,
        opts: &CloneOptions,
    ) -> Result<PlanReport> {
        let mut disks = Vec::with_capacity(info.disks.len());
        let works = plan.disks.iter().zip(&plan.decision.disks).zip(&info.disks);
        for ((work, decision), disk) in works {
            let (virtual_size, allocated) = host.disk_sizes(disk);
            let mut report = DiskReport {
                target: disk.target_dev.clone().unwrap_or_default(),
                device: disk.device.clone(),
                source: source_text(&disk.source),
                format: disk.driver_type.clone().unwrap_or_else(|| "raw".into()),
                virtual_size,
                allocated,
                action: "shared",
                destination: String::new(),
                backing_images: 0,
            };
            match (work, decision) {
                (DiskWork::Copy { layers }, _) => {
                    let mut reflinked = !plan.live;
                    for layer in plan.copied_layers(layers) {
                        reflinked &= reflinks(&layer.source, &layer.dst.folder)?;
                    }
                    report.action = match (plan.live, reflinked) {
                        (true, _) => "live",
                        (false, true) => "reflink",
                        (false, false) => "copy",
                    };
                    report.destination = match decision.target(disk) {
                        Some(crate::domain_xml::DiskTarget::Volume { pool, volume }) => {
                            format!("{pool}/{volume}")
                        }
                        _ => layers[0].dst.path().display().to_string(),
                    };
                    report.backing_images = plan.copied_layers(layers).len() as u32 - 1;
                }
                (DiskWork::CloneVolume { pool, new_name, .. }, _) => {
                    report.action = "volume";
                    report.destination = format!("{pool}/{new_name}");
                }
                (DiskWork::Overlay { dst, .. }, _) => {
                    report.action = "overlay";
                    report.destination = dst.path().display().to_string();
                }
                (DiskWork::Share, DiskDecision::Share) | (DiskWork::Share, _) => {}
            }
            disks.push(report);
        }
        let nvram = plan.nvram.as_ref().map(|n| CopyReport {
            source: info.nvram.clone().unwrap_or_default(),
            destination: n.path.display().to_string(),
            exists: n.copy.is_some(),
        });
        let tpm = plan.tpm.as_ref().map(|t| CopyReport {
            source: t.source.path().display().to_string(),
            destination: t.dst.path().display().to_string(),
            exists: true,
        });
        Ok(PlanReport {
            disks,
            nvram,
            tpm,
            bytes_to_copy: plan.bytes_to_copy()?,
            space: plan.space(host)?,
            warnings: warnings(host, info, plan, opts),
            destinations: destinations::allowed(host, Some(info))?,
            consistency: Consistency::None,
        })
    }
}

fn source_text(source: &DiskSource) -> String {
    match source {
        DiskSource::Empty => String::new(),
        DiskSource::File(p) | DiskSource::Block(p) | DiskSource::Dir(p) => p.display().to_string(),
        DiskSource::Volume { pool, volume } => format!("{pool}/{volume}"),
        DiskSource::Network { protocol } => format!("{protocol} (network)"),
        DiskSource::Other { disk_type } => disk_type.clone(),
    }
}

/// What the clone changes, or meets, that a person may not expect.
fn warnings(
    host: &Host,
    info: &DomainInfo,
    plan: &StoragePlan,
    opts: &CloneOptions,
) -> Vec<String> {
    let mut out = Vec::new();
    if info.fixed_vsock_cid {
        out.push("The VM's fixed vsock CID is made automatic: two VMs cannot share one.".into());
    }
    if info.fixed_graphics_ports {
        out.push(
            "Fixed graphics (VNC/SPICE) ports are made automatic: two VMs cannot listen on one."
                .into(),
        );
    }
    if let Some(model) = &info.static_seclabel {
        out.push(format!(
            "The fixed {model} security label becomes dynamic, so that the clone gets its own."
        ));
    }
    if plan.nvram.as_ref().is_some_and(|n| n.copy.is_none()) {
        out.push("The VM has no UEFI variables file yet; libvirt makes the clone's from the template at its first start.".into());
    }
    if info.tpm_emulator && plan.tpm.is_none() {
        out.push(
            "The VM's TPM has no state yet (it never ran); the clone's is made at its first start."
                .into(),
        );
    }
    if plan.live {
        out.push("The VM runs: its disks are copied as they are at one moment, while the guest is held still for a fraction of a second (its filesystems frozen when its guest agent answers; otherwise the copy is crash-consistent, as after a power cut). Backing chains are flattened and internal snapshots are not kept.".into());
    }
    if opts.guest_identity == GuestIdentity::Reset {
        out.push("The guest's identity is reset (machine ID, SSH host keys, host name): libguestfs's appliance runs once, which takes about half a minute; anything but one Linux system is refused then.".into());
    }
    if opts.storage == StorageMode::Linked {
        out.push("A linked clone stands on the template's images: it works only while the template's disks exist.".into());
    }
    if let Ok(node) = host.node_info() {
        let vcpus = opts.vcpus.unwrap_or(info.vcpus);
        if vcpus > node.cpus {
            out.push(format!(
                "The clone has {vcpus} vCPUs but this host has {} CPUs: libvirt may refuse to start it.",
                node.cpus
            ));
        }
        let kib = opts.memory_mib.map_or(info.memory_kib, |m| m * 1024);
        if kib > node.memory {
            out.push(format!(
                "The clone has {} MiB of memory but this host has {} MiB: it may not start.",
                kib / 1024,
                node.memory / 1024
            ));
        }
    }
    out
}
