//! The clone's edits for one input, drawn from its seed: what the service
//! could ask for (names it accepts, its MAC and UUID forms, copies as files,
//! block devices or pool volumes, overlays, new NVRAM, vcpus and memory),
//! plus now and then a plan that does not fit the VM, which must be refused.

use std::path::PathBuf;

use vmclone_service::domain_xml::{CloneEdits, DiskSource, DiskTarget, DomainInfo, NewDisk};
use vmclone_service::naming::validate_vm_name;

/// Owns everything a [`CloneEdits`] borrows.
#[derive(Debug, Clone)]
pub struct Edits {
    pub new_name: String,
    pub new_uuid: String,
    pub new_genid: String,
    pub macs: Vec<String>,
    pub disks: Vec<Option<NewDisk>>,
    pub nvram: Option<PathBuf>,
    pub vcpus: Option<u32>,
    pub memory_kib: Option<u64>,
}

impl Edits {
    pub fn clone_edits(&self) -> CloneEdits<'_> {
        CloneEdits {
            new_name: &self.new_name,
            new_uuid: &self.new_uuid,
            new_genid: &self.new_genid,
            macs: &self.macs,
            disks: &self.disks,
            nvram: self.nvram.as_deref(),
            vcpus: self.vcpus,
            memory_kib: self.memory_kib,
        }
    }

    /// Edits for a source, drawn from `seed`; `source` is what `parse` read
    /// (None when it refused the XML: the counts are then made up).
    pub fn draw(seed: u64, source: Option<&DomainInfo>) -> Edits {
        let mut r = Rng(seed);
        let old = source.map_or("vm", |s| s.name.as_str());
        let new_name = draw_name(&mut r, old);
        let mut new_uuid = r.uuid();
        if r.one_in(4) {
            new_uuid.make_ascii_uppercase();
        }
        let new_genid = r.uuid();
        let interfaces = source.map_or(r.below(3) as usize, |s| s.interfaces.len());
        let macs = (0..miscount(&mut r, interfaces))
            .map(|i| {
                let given = source.and_then(|s| s.interfaces.get(i)?.mac.clone());
                match given {
                    Some(mac) if r.one_in(8) => mac,
                    _ => {
                        let b = r.next().to_le_bytes();
                        let mac = format!("52:54:00:{:02x}:{:02x}:{:02x}", b[0], b[1], b[2]);
                        if r.one_in(4) {
                            mac.to_ascii_uppercase()
                        } else {
                            mac
                        }
                    }
                }
            })
            .collect();
        let no_disks = Vec::new();
        let source_disks = source.map_or(&no_disks, |s| &s.disks);
        let disk_count = miscount(&mut r, source_disks.len());
        let disks = (0..disk_count)
            .map(|i| {
                let editable = source_disks.get(i).map_or(true, |d| {
                    matches!(
                        d.source,
                        DiskSource::Empty
                            | DiskSource::File(_)
                            | DiskSource::Block(_)
                            | DiskSource::Volume { .. }
                    )
                });
                // Now and then a new source for a disk that cannot take one.
                let edit = if editable { r.one_in(2) } else { r.one_in(32) };
                edit.then(|| draw_disk(&mut r, &new_name, i))
            })
            .collect();
        let has_nvram = source.is_some_and(|s| s.nvram.is_some());
        let nvram = (has_nvram || r.one_in(4)).then(|| {
            let dir = *r.pick(&["/var/lib/libvirt/qemu/nvram", "/srv/vm & co", "/n"]);
            PathBuf::from(format!("{dir}/{new_name}_VARS.fd"))
        });
        let old_vcpus = source.map_or(1, |s| s.vcpus);
        let vcpus = r
            .one_in(2)
            .then(|| *r.pick(&[1, 2, 3, 4, 6, 8, 64, old_vcpus, 4096]));
        let old_kib = source.map_or(1024, |s| s.memory_kib);
        let memory_kib = r
            .one_in(2)
            .then(|| *r.pick(&[1024, 524_288, 1_048_576, old_kib, 1 << 40]));
        Edits {
            new_name,
            new_uuid,
            new_genid,
            macs,
            disks,
            nvram,
            vcpus,
            memory_kib,
        }
    }
}

/// The real count, or now and then one off (a plan that must be refused).
fn miscount(r: &mut Rng, n: usize) -> usize {
    match r.below(32) {
        0 => n + 1,
        1 => n.saturating_sub(1),
        _ => n,
    }
}

/// A name the service accepts (`validate_vm_name`), often one that holds
/// the old name or characters XML must escape.
fn draw_name(r: &mut Rng, old: &str) -> String {
    let candidates = [
        format!("{old}-clone"),
        format!("{old} copy"),
        format!("{old}{old}"),
        format!("new-{old}"),
        "web02".to_owned(),
        "clone".to_owned(),
        r#"a&b <"x'>"#.to_owned(),
        "☃ snow\u{a0}man".to_owned(),
        "x]]>y".to_owned(),
        "--x--".to_owned(),
        "&amp;".to_owned(),
        "v".repeat(100),
        // The longest name in bytes the service takes (200).
        "é".repeat(100),
    ];
    let name = r.pick(&candidates).clone();
    if validate_vm_name(&name).is_ok() {
        name
    } else {
        "clone".to_owned()
    }
}

fn draw_disk(r: &mut Rng, new_name: &str, index: usize) -> NewDisk {
    let target = match r.below(3) {
        0 => {
            let dir = *r.pick(&["/var/lib/libvirt/images", "/srv/a&b <\"'>", "/i"]);
            DiskTarget::File(format!("{dir}/{new_name}-{index}.qcow2").into())
        }
        1 => DiskTarget::Block(format!("/dev/vg0/{new_name}-{index}").into()),
        _ => DiskTarget::Volume {
            pool: (*r.pick(&["default", "p&<'\""])).to_owned(),
            volume: format!("{new_name}-{index}.raw"),
        },
    };
    let driver_type = match r.below(3) {
        0 => None,
        1 => Some("qcow2".to_owned()),
        _ => Some("raw".to_owned()),
    };
    NewDisk {
        target,
        overlay: driver_type.as_deref() == Some("qcow2") && r.one_in(2),
        driver_type,
    }
}

/// SplitMix64: small, fast, and the same draws for the same seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    fn one_in(&mut self, n: u64) -> bool {
        self.below(n) == 0
    }

    fn pick<'t, T>(&mut self, items: &'t [T]) -> &'t T {
        &items[self.below(items.len() as u64) as usize]
    }

    /// A version 4 UUID in libvirt's lower-case form.
    fn uuid(&mut self) -> String {
        let mut b = [0u8; 16];
        b[..8].copy_from_slice(&self.next().to_le_bytes());
        b[8..].copy_from_slice(&self.next().to_le_bytes());
        b[6] = (b[6] & 0x0f) | 0x40;
        b[8] = (b[8] & 0x3f) | 0x80;
        let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
        format!(
            "{}-{}-{}-{}-{}",
            &hex[..8],
            &hex[8..12],
            &hex[12..16],
            &hex[16..20],
            &hex[20..]
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn edits_fit_the_source_and_repeat_for_a_seed() {
        let xml = include_str!("../../service/src/domain_xml/testdata/web01-q35-uefi.xml");
        let info = vmclone_service::domain_xml::parse(xml).unwrap();
        let mut fitting = 0;
        for seed in 0..200 {
            let e = Edits::draw(seed, Some(&info));
            assert_eq!(
                format!("{e:?}"),
                format!("{:?}", Edits::draw(seed, Some(&info)))
            );
            validate_vm_name(&e.new_name).unwrap();
            if e.macs.len() == 2 && e.disks.len() == 3 {
                fitting += 1;
            }
        }
        assert!((150..200).contains(&fitting), "{fitting} of 200 fit");
    }
}
