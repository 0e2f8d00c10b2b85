//! The libvirt domain XML of a clone: reading what matters about the source
//! ([`parse`]) and writing the clone's XML ([`rewrite`]) by streaming the
//! source through quick-xml, so that everything not changed on purpose
//! stays byte for byte as it was.

mod agent;
mod devices;
mod parse;
mod rewrite;
mod tag;
#[cfg(test)]
mod tests;
mod well_formed;

use std::path::{Path, PathBuf};

pub use agent::guest_agent_connected;
pub use devices::{Unsharable, UnsharableKind};
pub use parse::parse;
pub use rewrite::rewrite;

/// Our libvirt `<metadata>` namespace.
pub const METADATA_NS: &str = "https://vmclone.org/xmlns/vmclone/1";
/// The prefix libvirt writes for [`METADATA_NS`].
pub const METADATA_PREFIX: &str = "vmclone";
/// What marks a VM as a template: set with
/// `virDomainSetMetadata(ELEMENT, TEMPLATE_ELEMENT, key=METADATA_PREFIX, uri=METADATA_NS)`.
pub const TEMPLATE_ELEMENT: &str = "<template/>";
/// Local name of the template element inside our namespace.
const TEMPLATE_LOCAL_NAME: &str = "template";

/// Why a domain XML could not be read or rewritten.
#[derive(Debug, thiserror::Error)]
pub enum XmlError {
    #[error("The domain XML is not well-formed (near byte {position}): {message}")]
    Malformed { position: u64, message: String },
    #[error("The XML describes <{0}>, not a libvirt <domain>")]
    NotADomain(String),
    #[error("The domain XML has no <{0}> element")]
    Missing(&'static str),
    #[error("The domain XML has an invalid <{element}> value {value:?}: {reason}")]
    InvalidValue {
        element: &'static str,
        value: String,
        reason: &'static str,
    },
    #[error(
        "The VM has {expected} network interface(s) but {given} MAC address(es) were given; \
         give exactly one per interface, in interface order"
    )]
    MacCount { expected: usize, given: usize },
    #[error("The VM has {expected} disk(s) but the clone plan covers {given}")]
    DiskCount { expected: usize, given: usize },
    #[error(
        "Disk {index} ({source_kind}) cannot be given a new source: only file, block and \
         pool-volume disks and empty drives can"
    )]
    UnsupportedDiskEdit {
        index: usize,
        source_kind: &'static str,
    },
    #[error("Could not write the clone's domain XML: {0}")]
    Write(#[from] std::io::Error),
}

/// What the service needs to know about a domain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DomainInfo {
    pub name: String,
    pub uuid: String,
    /// `<vcpu>` (the maximum count; libvirt's default is 1).
    pub vcpus: u32,
    /// `<memory>` converted to KiB (rounded up, as libvirt).
    pub memory_kib: u64,
    /// Every `<devices><disk>`, in document order.
    pub disks: Vec<Disk>,
    /// Every `<devices><interface>`, in document order.
    pub interfaces: Vec<Interface>,
    /// `<os><nvram>PATH</nvram>` or `<nvram type='file'><source file='PATH'/></nvram>`.
    pub nvram: Option<String>,
    /// An emulated TPM (`<tpm><backend type='emulator'>`): its swtpm state
    /// lives in `/var/lib/libvirt/swtpm/<uuid>/`.
    pub tpm_emulator: bool,
    /// Any `<tpm>` device (emulated or passed through).
    pub has_tpm: bool,
    /// A `<vsock>` with a fixed CID (the clone gets an automatic one).
    pub fixed_vsock_cid: bool,
    /// `<graphics>` with fixed ports (the clone's become automatic).
    pub fixed_graphics_ports: bool,
    /// UEFI firmware (`<os firmware='efi'>` or a pflash `<loader>`), else BIOS.
    pub uefi: bool,
    /// `<metadata>` holds our template element.
    pub is_template: bool,
    /// Devices a clone can neither share nor copy.
    pub unsharable: Vec<Unsharable>,
    /// The model of a fixed (static) sVirt `<seclabel>`: the clone gets a
    /// dynamic one, so two VMs never share a label.
    pub static_seclabel: Option<String>,
    /// `<cpu><numa><cell>`s.
    pub numa_cells: Vec<NumaCell>,
    /// The vCPUs `<cputune><vcpupin>` names.
    pub pinned_vcpus: Vec<u32>,
    /// `<maxMemory>` in KiB (the memory hotplug limit).
    pub max_memory_kib: Option<u64>,
}

/// One guest NUMA cell.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NumaCell {
    /// The vCPUs in it, as libvirt writes them (`0-3,6`).
    pub cpus: String,
    pub memory_kib: u64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Disk {
    /// disk, cdrom, floppy or lun.
    pub device: String,
    pub source: DiskSource,
    pub readonly: bool,
    pub shareable: bool,
    /// `<transient shareBacking='yes'/>`: the image is only ever read, by
    /// several VMs at once.
    pub transient_share_backing: bool,
    /// `<driver type=...>`, e.g. qcow2 or raw.
    pub driver_type: Option<String>,
    /// `<target dev=...>`, e.g. vda.
    pub target_dev: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DiskSource {
    /// No medium (an empty cdrom or floppy drive).
    Empty,
    File(PathBuf),
    Block(PathBuf),
    Volume {
        pool: String,
        volume: String,
    },
    /// type='network' (rbd, iscsi, nbd, http, ...): not ours to copy.
    Network {
        protocol: String,
    },
    /// type='dir': a host directory shown as a FAT disk.
    Dir(PathBuf),
    /// Any other disk type (nvme, vhostuser, vhostvdpa): not ours to copy.
    Other {
        disk_type: String,
    },
}

impl DiskSource {
    /// Short name of the kind of source, for messages.
    pub fn kind(&self) -> &'static str {
        match self {
            DiskSource::Empty => "empty",
            DiskSource::File(_) => "file",
            DiskSource::Block(_) => "block device",
            DiskSource::Volume { .. } => "pool volume",
            DiskSource::Network { .. } => "network disk",
            DiskSource::Dir(_) => "directory",
            DiskSource::Other { .. } => "unsupported disk type",
        }
    }
}

impl Disk {
    /// Stays shared with the source (not copied): readonly, `<shareable/>`
    /// (or a transient disk with a shared backing image), cdrom, floppy, or no
    /// source. Every other disk is writable by one VM only and must be copied.
    pub fn is_shared(&self) -> bool {
        self.readonly
            || self.shareable
            || self.transient_share_backing
            || self.device == "cdrom"
            || self.device == "floppy"
            || self.source == DiskSource::Empty
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Interface {
    /// `<mac address=...>` as written in the XML.
    pub mac: Option<String>,
    /// `<interface type=...>`: network, bridge, user, direct, ...
    pub kind: String,
    /// What it connects to: the network, bridge or device name.
    pub source: Option<String>,
    /// `<model type=...>`, e.g. virtio.
    pub model: Option<String>,
}

/// Where a copied disk of the clone lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DiskTarget {
    File(PathBuf),
    Block(PathBuf),
    Volume { pool: String, volume: String },
}

/// A clone's disk that is not the source's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewDisk {
    pub target: DiskTarget,
    /// `<driver type>` to set, e.g. Some("qcow2") for linked overlays; None
    /// keeps the source's.
    pub driver_type: Option<String>,
    /// A linked overlay: drop `<backingStore>`, libvirt probes the overlay's
    /// chain anew.
    pub overlay: bool,
}

/// Everything [`rewrite`] changes besides the fixed rules.
#[derive(Debug, Clone)]
pub struct CloneEdits<'a> {
    pub new_name: &'a str,
    pub new_uuid: &'a str,
    /// The value a non-empty `<genid>` takes (a fresh UUID), so that the
    /// guest sees it was cloned.
    pub new_genid: &'a str,
    /// Exactly one per `<interface>`, in order.
    pub macs: &'a [String],
    /// Exactly one per `<disk>`, in order; None = unchanged (shared).
    pub disks: &'a [Option<NewDisk>],
    /// New NVRAM path.
    pub nvram: Option<&'a Path>,
    pub vcpus: Option<u32>,
    pub memory_kib: Option<u64>,
}
