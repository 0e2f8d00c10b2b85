//! What is refused before any disk is copied: parts of the source a clone
//! can neither share nor copy, and vCPU or memory options libvirt would
//! reject (or silently override) for this domain.

use std::collections::BTreeSet;

use crate::domain_xml::{DomainInfo, UnsharableKind};
use crate::error::{Error, Result};
use crate::options::CloneOptions;

/// Fails when `info` cannot be cloned with `opts`, saying what to change.
pub fn check(info: &DomainInfo, opts: &CloneOptions) -> Result<()> {
    devices(info)?;
    if let Some(n) = opts.vcpus {
        vcpus(info, n)?;
    }
    if let Some(mib) = opts.memory_mib {
        memory(info, mib)?;
    }
    Ok(())
}

fn devices(info: &DomainInfo) -> Result<()> {
    let Some(u) = info.unsharable.first() else {
        return Ok(());
    };
    let (vm, what) = (&info.name, &u.detail);
    Err(match u.kind {
        UnsharableKind::NvramNotFile => Error::Storage(format!(
            "The UEFI variables of “{vm}” are kept on a {what} store, which vmclone cannot copy. Keep them in a file (<nvram> with a path) to clone the VM."
        )),
        UnsharableKind::PersistentMemory => Error::Storage(format!(
            "“{vm}” has a writable persistent-memory device backed by {what}; two VMs cannot share it and vmclone does not copy it. Mark it read-only or remove it from the VM first."
        )),
        UnsharableKind::Filesystem => Error::Storage(format!(
            "“{vm}” passes the host folder {what} through writable; a clone would write into the same folder. Mark it <readonly/> or remove it from the VM first."
        )),
        UnsharableKind::HostDevice => Error::InvalidOption(format!(
            "“{vm}” has a host device passed through ({what}); a host device belongs to one VM. Remove it from the VM (or mark it shareable) before cloning, and give the clone its own afterwards."
        )),
        UnsharableKind::VhostUser => Error::InvalidOption(format!(
            "“{vm}” uses the vhost-user socket {what}, which serves one VM only. Remove that device before cloning, and give the clone its own socket afterwards."
        )),
    })
}

fn vcpus(info: &DomainInfo, n: u32) -> Result<()> {
    let vm = &info.name;
    if let Some(pin) = info.pinned_vcpus.iter().find(|&&v| v >= n) {
        return Err(Error::InvalidOption(format!(
            "Option “vcpus”: “{vm}” pins vCPU {pin} (<cputune><vcpupin>), which a clone with {n} vCPUs would not have. Leave vcpus out, or change the pinning of the VM first."
        )));
    }
    if info.numa_cells.is_empty() {
        return Ok(());
    }
    let mut cpus = BTreeSet::new();
    for cell in &info.numa_cells {
        cpus.extend(cpu_list(&cell.cpus).ok_or_else(|| {
            Error::InvalidOption(format!(
                "Option “vcpus”: “{vm}” has a NUMA cell with the vCPU list “{}”, which vmclone cannot read, so it cannot change the vCPU count.",
                cell.cpus
            ))
        })?);
    }
    let wanted: BTreeSet<u32> = (0..n).collect();
    if cpus != wanted {
        return Err(Error::InvalidOption(format!(
            "Option “vcpus”: the NUMA cells of “{vm}” hold {} vCPUs; libvirt requires them to hold exactly the {n} of the clone. Leave vcpus out, or change the NUMA cells of the VM first.",
            cpus.len()
        )));
    }
    Ok(())
}

fn memory(info: &DomainInfo, mib: u64) -> Result<()> {
    let (vm, kib) = (&info.name, mib.saturating_mul(1024));
    if let Some(max) = info.max_memory_kib {
        if kib > max {
            return Err(Error::InvalidOption(format!(
                "Option “memory-mib”: {mib} MiB is above the memory limit of “{vm}” (<maxMemory>, {} MiB).",
                max / 1024
            )));
        }
    }
    if info.numa_cells.is_empty() {
        return Ok(());
    }
    let total: u64 = info.numa_cells.iter().map(|c| c.memory_kib).sum();
    if kib != total {
        return Err(Error::InvalidOption(format!(
            "Option “memory-mib”: the NUMA cells of “{vm}” hold {} MiB, and libvirt makes a VM's memory the sum of its cells, so {mib} MiB would not be used. Leave memory-mib out, or change the NUMA cells of the VM first.",
            total / 1024
        )));
    }
    Ok(())
}

/// The vCPU numbers of a libvirt CPU list such as `0-3,6,^2`.
fn cpu_list(text: &str) -> Option<BTreeSet<u32>> {
    let mut set = BTreeSet::new();
    let mut removed = BTreeSet::new();
    for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (into, part) = match part.strip_prefix('^') {
            Some(rest) => (&mut removed, rest),
            None => (&mut set, part),
        };
        match part.split_once('-') {
            Some((a, b)) => {
                let (a, b): (u32, u32) = (a.trim().parse().ok()?, b.trim().parse().ok()?);
                if b < a || b - a > 4096 {
                    return None;
                }
                into.extend(a..=b);
            }
            None => {
                into.insert(part.parse().ok()?);
            }
        }
    }
    Some(set.difference(&removed).copied().collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain_xml::parse;

    fn domain(inner: &str) -> DomainInfo {
        parse(&format!(
            "<domain type='kvm'><name>v</name><uuid>6b3c2a4e-8f3d-4c1e-9a7b-2f5d8e9c1a3b</uuid>\
             <memory unit='MiB'>4096</memory><vcpu>4</vcpu>{inner}</domain>"
        ))
        .unwrap()
    }

    fn opts(vcpus: Option<u32>, memory_mib: Option<u64>) -> CloneOptions {
        CloneOptions {
            vcpus,
            memory_mib,
            ..CloneOptions::default()
        }
    }

    fn refusal(info: &DomainInfo, o: &CloneOptions) -> (&'static str, String) {
        let e = check(info, o).unwrap_err();
        (e.short_name(), e.to_string())
    }

    #[test]
    fn cpu_lists_read_like_libvirt() {
        assert_eq!(cpu_list("0-3,6,^2"), Some([0, 1, 3, 6].into()));
        assert_eq!(cpu_list("5"), Some([5].into()));
        assert_eq!(cpu_list("3-1"), None);
        assert_eq!(cpu_list("a"), None);
    }

    #[test]
    fn devices_a_clone_cannot_share_are_refused_unless_read_only() {
        let cases = [
            ("<os><type>hvm</type><nvram type='block'><source dev='/dev/sdb1'/></nvram></os>", "Storage", "UEFI"),
            ("<devices><hostdev mode='subsystem' type='pci'><source><address bus='0x01'/></source></hostdev></devices>", "InvalidOption", "host device"),
            ("<devices><interface type='hostdev'><source><address bus='0x02'/></source></interface></devices>", "InvalidOption", "host device"),
            ("<devices><interface type='vhostuser'><source type='unix' path='/run/vhu.sock' mode='client'/></interface></devices>", "InvalidOption", "/run/vhu.sock"),
            ("<devices><filesystem type='mount'><source dir='/srv/share'/><target dir='share'/></filesystem></devices>", "Storage", "/srv/share"),
            ("<devices><memory model='nvdimm'><source><path>/var/lib/pmem.img</path></source><target><size unit='MiB'>128</size></target></memory></devices>", "Storage", "/var/lib/pmem.img"),
            ("<devices><memory model='virtio-pmem' access='shared'><source><path>/pmem</path></source></memory></devices>", "Storage", "/pmem"),
        ];
        for (xml, name, needle) in cases {
            let (got, message) = refusal(&domain(xml), &opts(None, None));
            assert_eq!(got, name, "{xml}");
            assert!(message.contains(needle), "{xml}: {message}");
        }
        for shared in [
            "<devices><filesystem type='mount'><source dir='/srv/iso'/><target dir='iso'/><readonly/></filesystem></devices>",
            "<devices><memory model='nvdimm'><source><path>/ro.img</path></source><target><readonly/></target></memory></devices>",
            "<devices><hostdev mode='subsystem' type='scsi'><source><adapter name='scsi_host0'/></source><readonly/><shareable/></hostdev></devices>",
            "<devices><memory model='dimm'><target><size unit='MiB'>512</size><node>0</node></target></memory></devices>",
        ] {
            assert!(check(&domain(shared), &opts(None, None)).is_ok(), "{shared}");
        }
    }

    #[test]
    fn vcpus_libvirt_would_reject_are_refused_before_copying() {
        let pinned = domain("<cputune><vcpupin vcpu='3' cpuset='1'/></cputune>");
        assert!(check(&pinned, &opts(Some(4), None)).is_ok());
        let (name, message) = refusal(&pinned, &opts(Some(2), None));
        assert_eq!(name, "InvalidOption");
        assert!(message.contains("vCPU 3"), "{message}");

        let numa = domain(
            "<cpu><numa><cell id='0' cpus='0-1' memory='2048' unit='MiB'/>\
             <cell id='1' cpus='2-3' memory='2048' unit='MiB'/></numa></cpu>",
        );
        assert!(check(&numa, &opts(Some(4), Some(4096))).is_ok());
        assert_eq!(refusal(&numa, &opts(Some(8), None)).0, "InvalidOption");
        let (_, message) = refusal(&numa, &opts(None, Some(2048)));
        assert!(message.contains("NUMA"), "{message}");
        assert_eq!(refusal(&numa, &opts(None, Some(8192))).0, "InvalidOption");
    }

    #[test]
    fn memory_above_the_hotplug_limit_is_refused() {
        let info = domain("<maxMemory slots='4' unit='MiB'>8192</maxMemory>");
        assert!(check(&info, &opts(None, Some(8192))).is_ok());
        let (name, message) = refusal(&info, &opts(None, Some(9000)));
        assert_eq!(name, "InvalidOption");
        assert!(message.contains("8192 MiB"), "{message}");
    }
}
