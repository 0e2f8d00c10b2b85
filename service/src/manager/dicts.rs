//! The `a{sv}` dictionaries the Manager returns, built from what the engine
//! and the libvirt layer report.

use std::collections::HashMap;

use zbus::zvariant::{OwnedValue, Value};

use crate::clone::plan::destinations::Destination;
use crate::clone::plan::space::Place;
use crate::clone::report::{CopyReport, PlanReport};
use crate::domain_xml::DomainInfo;
use crate::error::Result;
use crate::host::VmSummary;

pub type Dict = HashMap<String, OwnedValue>;

/// A dictionary of plain values (no file descriptors).
pub fn dict<'a>(entries: impl IntoIterator<Item = (&'a str, Value<'a>)>) -> Dict {
    entries
        .into_iter()
        .map(|(k, v)| {
            (
                k.to_string(),
                OwnedValue::try_from(v).expect("plain values have no fds"),
            )
        })
        .collect()
}

/// One VM as `ListVms` and `GetVm` report it.
pub fn vm(vm: &VmSummary) -> Dict {
    dict([
        ("id", vm.id.as_str().into()),
        ("name", vm.name.as_str().into()),
        ("state", vm.state.into()),
        ("vcpus", vm.vcpus.into()),
        ("memory-mib", vm.memory_mib.into()),
        ("disks", vm.disks.into()),
        ("interfaces", vm.interfaces.into()),
        ("is-template", vm.is_template.into()),
    ])
}

/// One VM as `GetVm` reports it: the summary, and its firmware, TPM, disks
/// (with `sizes`: virtual and allocated bytes, one pair per disk), NICs and
/// whether its guest agent is connected now.
pub fn vm_details(
    vm: &VmSummary,
    info: &DomainInfo,
    sizes: &[(u64, u64)],
    guest_agent: bool,
) -> Dict {
    let disks: Vec<Dict> = info
        .disks
        .iter()
        .zip(sizes)
        .map(|(d, &(capacity, allocation))| {
            dict([
                ("target", d.target_dev.clone().unwrap_or_default().into()),
                ("device", d.device.as_str().into()),
                ("source", disk_source(&d.source).into()),
                ("format", d.driver_type.clone().unwrap_or_default().into()),
                ("capacity", capacity.into()),
                ("allocation", allocation.into()),
                ("shared", d.is_shared().into()),
            ])
        })
        .collect();
    let nics: Vec<Dict> = info
        .interfaces
        .iter()
        .map(|i| {
            dict([
                ("type", i.kind.as_str().into()),
                ("source", i.source.clone().unwrap_or_default().into()),
                ("mac", i.mac.clone().unwrap_or_default().into()),
                ("model", i.model.clone().unwrap_or_default().into()),
            ])
        })
        .collect();
    let mut out = self::vm(vm);
    out.extend(dict([
        ("firmware", if info.uefi { "uefi" } else { "bios" }.into()),
        ("tpm", info.has_tpm.into()),
        ("guest-agent", guest_agent.into()),
        ("disk-details", disks.into()),
        ("interface-details", nics.into()),
    ]));
    out
}

fn disk_source(source: &crate::domain_xml::DiskSource) -> String {
    use crate::domain_xml::DiskSource as S;
    match source {
        S::Empty => String::new(),
        S::File(p) | S::Block(p) | S::Dir(p) => p.display().to_string(),
        S::Volume { pool, volume } => format!("{pool}/{volume}"),
        S::Network { protocol } => format!("{protocol} (network)"),
        S::Other { disk_type } => disk_type.clone(),
    }
}

/// A folder a clone may be put in.
pub fn destination(d: &Destination) -> Result<Dict> {
    let mut out = dict([
        ("path", d.path().display().to_string().into()),
        ("free-bytes", d.free_bytes()?.into()),
    ]);
    if let Some(pool) = &d.pool {
        out.extend(dict([("pool", pool.as_str().into())]));
    }
    Ok(out)
}

fn copy_report(c: &Option<CopyReport>) -> Dict {
    match c {
        Some(c) => dict([
            ("source", c.source.as_str().into()),
            ("destination", c.destination.as_str().into()),
            ("exists", c.exists.into()),
        ]),
        None => Dict::new(),
    }
}

/// What a clone would do (`PlanClone`).
pub fn plan(p: &PlanReport) -> Result<Dict> {
    let disks: Vec<Dict> = p
        .disks
        .iter()
        .map(|d| {
            dict([
                ("target", d.target.as_str().into()),
                ("device", d.device.as_str().into()),
                ("source", d.source.as_str().into()),
                ("format", d.format.as_str().into()),
                ("virtual-size", d.virtual_size.into()),
                ("allocated", d.allocated.into()),
                ("action", d.action.into()),
                ("destination", d.destination.as_str().into()),
                ("backing-images", d.backing_images.into()),
            ])
        })
        .collect();
    let space: Vec<Dict> = p
        .space
        .iter()
        .map(|s| {
            let mut out = dict([
                ("free-bytes", s.free_bytes.into()),
                ("bytes-needed", s.bytes_needed.into()),
                ("fits", s.fits().into()),
            ]);
            out.extend(match &s.place {
                Place::Filesystem(folder) => {
                    dict([("folder", folder.display().to_string().into())])
                }
                Place::Pool(pool) => dict([("folder", "".into()), ("pool", pool.as_str().into())]),
            });
            out
        })
        .collect();
    let destinations = p
        .destinations
        .iter()
        .map(destination)
        .collect::<Result<Vec<Dict>>>()?;
    let free = p.space.iter().map(|f| f.free_bytes).min().unwrap_or(0);
    Ok(dict([
        ("disks", disks.into()),
        ("nvram", copy_report(&p.nvram).into()),
        ("tpm", copy_report(&p.tpm).into()),
        ("bytes-to-copy", p.bytes_to_copy.into()),
        ("free-bytes", free.into()),
        ("fits", p.fits().into()),
        ("filesystems", space.into()),
        ("warnings", p.warnings.clone().into()),
        ("consistency", p.consistency.as_str().into()),
        ("destinations", destinations.into()),
    ]))
}
