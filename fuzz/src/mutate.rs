//! Structure-aware mutations of domain XML inputs: whole elements deleted,
//! duplicated, moved or taken from another input; libvirt elements the
//! rewrite has rules for, and devices the parser reads, inserted; attribute
//! values and texts set to values those rules look at (the VM's own name and
//! UUID, generated socket paths, fixed ports, units, sVirt label types,
//! entities); quotes, empty tags and names changed; the edits seed drawn
//! anew. libFuzzer's byte mutations do the rest.

use std::ops::Range;

use xmlparser::{ElementEnd, Token, Tokenizer};

use crate::input;

/// Elements the rewrite has rules for and devices the parser reads, as
/// libvirt writes them; `{name}` and `{uuid}` become the input's own.
const FRAGMENTS: &[&str] = &[
    "<name>{name}</name>",
    "<uuid>{uuid}</uuid>",
    "<title>{name} &amp; co</title>",
    "<description>d</description>",
    "<metadata><vmclone:template xmlns:vmclone='https://vmclone.org/xmlns/vmclone/1'/></metadata>",
    "<vmclone:template xmlns:vmclone=\"https://vmclone.org/xmlns/vmclone/1\"/>",
    "<template xmlns='https://vmclone.org/xmlns/vmclone/1'></template>",
    "<app:x xmlns:app='urn:app'>keep</app:x>",
    "<genid>a5a8e1d4-0c5b-4e7d-9f57-7d1e4a5c2b11</genid>",
    "<genid/>",
    "<vcpu placement='static' current='2'>4</vcpu>",
    "<vcpus><vcpu id='0' enabled='yes' hotpluggable='no'/></vcpus>",
    "<memory unit='GiB'>4</memory>",
    "<currentMemory unit='MiB'>512</currentMemory>",
    "<cpu mode='host-passthrough'><topology sockets='1' dies='1' clusters='1' cores='2' threads='2'/></cpu>",
    "<topology sockets='2' cores='2' threads='1'/>",
    "<sysinfo type='smbios'><system><entry name='uuid'>{uuid}</entry><entry name='serial'> {UUID} </entry></system></sysinfo>",
    "<entry name='uuid'>{uuid}</entry>",
    "<os><type arch='x86_64' machine='q35'>hvm</type><loader readonly='yes' type='pflash'>/usr/share/OVMF/OVMF_CODE.fd</loader><nvram>/var/lib/libvirt/qemu/nvram/{name}_VARS.fd</nvram></os>",
    "<nvram type='file'><source file='/var/lib/libvirt/qemu/nvram/{name}_VARS.fd'/></nvram>",
    "<nvram template='/usr/share/OVMF/OVMF_VARS.fd'/>",
    "<devices></devices>",
    "<disk type='file' device='disk'><driver name='qemu' type='qcow2'/><source file='/var/lib/libvirt/images/{name}.qcow2'/><backingStore type='file'><format type='raw'/><source file='/b.raw'/><backingStore/></backingStore><target dev='vda' bus='virtio'/></disk>",
    "<disk type='block' device='disk'><source dev='/dev/vg0/{name}'/><target dev='vdb'/></disk>",
    "<disk type='volume' device='disk'><source pool='default' volume='{name}.raw' mode='host'/><target dev='vdc'/></disk>",
    "<disk type='network' device='disk'><source protocol='rbd' name='pool/{name}'/><target dev='vdd'/></disk>",
    "<disk type='dir' device='disk'><source dir='/srv/{name}'/><target dev='hdb'/></disk>",
    "<disk type='file' device='cdrom'><readonly/><target dev='sda' bus='sata'/></disk>",
    "<disk type='file' device='disk'><shareable/><source file='/s.img'/></disk>",
    "<disk type='file' device='floppy'/>",
    "<interface type='network'><source network='default'/><target dev='vnet0'/><model type='virtio'/></interface>",
    "<interface type='bridge'><mac address='52:54:00:6a:1b:2c'/><source bridge='br0'/></interface>",
    "<interface type='user'/>",
    "<graphics type='vnc' port='5900' autoport='no' websocket='5700' listen='127.0.0.1'/>",
    "<graphics type='spice' port='5901' tlsPort='5902'><listen type='address'/></graphics>",
    "<channel type='unix'><source mode='bind' path='/var/lib/libvirt/qemu/channel/target/domain-1-{name}/org.qemu.guest_agent.0'/><target type='virtio' name='org.qemu.guest_agent.0'/></channel>",
    "<channel type='unix'><source mode='bind' path='/srv/{name}.sock'/><target type='virtio' name='x'/></channel>",
    "<serial type='file'><source path='/var/log/{name}.log'/><log file='/var/log/libvirt/qemu/{name}-serial0.log' append='on'/><target port='0'/></serial>",
    "<console type='unix'><source mode='bind' path='/run/{name}.console'/></console>",
    "<parallel type='file'><source path='/tmp/{name}'/></parallel>",
    "<vsock model='virtio'><cid auto='no' address='3'/></vsock>",
    "<tpm model='tpm-crb'><backend type='emulator' version='2.0'/></tpm>",
    "<seclabel type='static' model='selinux' relabel='yes'><label>system_u:system_r:svirt_t:s0:c1,c2</label><imagelabel>system_u:object_r:svirt_image_t:s0:c1,c2</imagelabel></seclabel>",
    "<seclabel type='static' model='apparmor' relabel='no'><label>libvirt-{uuid}</label><baselabel>b</baselabel></seclabel>",
    "<seclabel type='static' model='dac' relabel='no'><label>+107:+107</label></seclabel>",
    "<seclabel type='static'><label>x</label></seclabel>",
    "<seclabel type='dynamic' model='selinux'/>",
    "<label>system_u:system_r:svirt_t:s0</label>",
    "<hostdev mode='subsystem' type='pci'><source><address domain='0' bus='1' slot='0' function='0'/></source></hostdev>",
    "<filesystem type='mount'><source dir='/srv/{name}'/><target dir='share'/><readonly/></filesystem>",
    "<interface type='vhostuser'><source type='unix' path='/run/{name}.sock' mode='client'/></interface>",
    "<memory model='nvdimm'><source><path>/srv/{name}.nvdimm</path></source><target><size unit='MiB'>512</size></target></memory>",
    "<maxMemory slots='16' unit='GiB'>8</maxMemory>",
    "<cputune><vcpupin vcpu='3' cpuset='1'/></cputune>",
    "<numa><cell id='0' cpus='0-1' memory='1' unit='GiB'/></numa>",
    "<!-- {name} -->",
    "<![CDATA[{uuid}]]>",
    "<?pi {name}?>",
    "\n    ",
];

/// Attribute values the rules look at.
const VALUES: &[&str] = &[
    "-1",
    "0",
    "5900",
    "yes",
    "no",
    "file",
    "block",
    "volume",
    "network",
    "dir",
    "unix",
    "pty",
    "emulator",
    "static",
    "dynamic",
    "selinux",
    "apparmor",
    "dac",
    "disk",
    "cdrom",
    "floppy",
    "qcow2",
    "raw",
    "KiB",
    "MiB",
    "GiB",
    "bytes",
    "EB",
    "bind",
    "{name}",
    "{uuid}",
    "/var/lib/libvirt/images/{name}.qcow2",
    "/var/log/{name}.log",
    "/var/lib/libvirt/qemu/channel/target/domain-3-{name}/org.qemu.guest_agent.0",
    "/run/libvirt/qemu/domain-12-{name}/s",
    "",
    " ",
    "&amp;",
    "&lt;&gt;",
    "&#x41;",
    "&#10;&#9;",
    "a\tb\nc",
    "18446744073709551615",
    "4294967296",
    "https://vmclone.org/xmlns/vmclone/1",
];

/// Texts the rules look at.
const TEXTS: &[&str] = &[
    "{name}",
    "{uuid}",
    " {UUID} ",
    "",
    "\n  ",
    "1",
    "0",
    "4294967295",
    "99999999999999999999",
    "1024",
    "<![CDATA[{uuid}]]>",
    "&amp;x&#x2603;",
    "<!--c-->",
    "a]]>b",
];

/// Names to give an element.
const NAMES: &[&str] = &[
    "domain",
    "name",
    "uuid",
    "title",
    "metadata",
    "genid",
    "vcpu",
    "vcpus",
    "memory",
    "sysinfo",
    "os",
    "nvram",
    "cpu",
    "topology",
    "devices",
    "disk",
    "source",
    "driver",
    "backingStore",
    "interface",
    "mac",
    "target",
    "graphics",
    "channel",
    "serial",
    "log",
    "vsock",
    "cid",
    "seclabel",
    "label",
    "imagelabel",
    "vmclone:template",
];

/// Where things are in an input's XML part, as far as it tokenizes.
#[derive(Default)]
struct Map {
    /// Whole elements, `<` to the end of their end tag.
    elements: Vec<Range<usize>>,
    /// Start tags of elements that have an end tag: name range, tag end (the `>`).
    open_tags: Vec<(Range<usize>, usize)>,
    /// End tags' name ranges, paired with `open_tags` by index.
    close_names: Vec<Option<Range<usize>>>,
    /// Empty elements: name range and the position of their `/>`.
    empty_tags: Vec<(Range<usize>, usize)>,
    /// Attribute values, without quotes, and their quote.
    values: Vec<(Range<usize>, u8)>,
    texts: Vec<Range<usize>>,
    /// Where an element may go: after a start tag or after an element.
    gaps: Vec<usize>,
}

fn map(xml: &str) -> Map {
    let mut m = Map::default();
    let mut open: Vec<(usize, usize)> = Vec::new(); // (start, index in open_tags)
    let mut name = 0..0;
    let mut start = 0;
    for token in Tokenizer::from(xml) {
        let Ok(token) = token else { break };
        match token {
            Token::ElementStart {
                prefix,
                local,
                span,
            } => {
                start = span.start();
                name = if prefix.is_empty() {
                    local.range()
                } else {
                    prefix.start()..local.end()
                };
            }
            Token::Attribute { value, .. } => {
                let quote = xml.as_bytes()[value.start() - 1];
                m.values.push((value.range(), quote));
            }
            Token::ElementEnd { end, span } => match end {
                ElementEnd::Open => {
                    m.open_tags.push((name.clone(), span.start()));
                    m.close_names.push(None);
                    open.push((start, m.open_tags.len() - 1));
                    m.gaps.push(span.end());
                }
                ElementEnd::Empty => {
                    m.empty_tags.push((name.clone(), span.start()));
                    m.elements.push(start..span.end());
                    m.gaps.push(span.end());
                }
                ElementEnd::Close(prefix, local) => {
                    if let Some((s, i)) = open.pop() {
                        let n = if prefix.is_empty() {
                            local.range()
                        } else {
                            prefix.start()..local.end()
                        };
                        m.close_names[i] = Some(n);
                        m.elements.push(s..span.end());
                        m.gaps.push(span.end());
                    }
                }
            },
            Token::Text { text } => m.texts.push(text.range()),
            _ => {}
        }
    }
    m
}

/// A mutated input, or None when this input offers nothing to work on
/// (the caller then mutates bytes).
pub fn mutate(data: &[u8], seed: u32) -> Option<Vec<u8>> {
    let mut r = Rng(u64::from(seed) | 1 << 32);
    let (edit_seed, xml) = input::split(data);
    let xml = xml.into_owned();
    let m = map(&xml);
    let (name, uuid) = own_name_and_uuid(&xml);
    let fill = |s: &str| {
        s.replace("{name}", &name)
            .replace("{uuid}", &uuid)
            .replace("{UUID}", &uuid.to_uppercase())
    };
    let mut out = xml.clone();
    match r.below(12) {
        0 => return Some(input::join(r.next(), &xml)),
        1 => {
            let e = r.pick(&m.elements)?.clone();
            out.replace_range(e, "");
        }
        2 => {
            let e = r.pick(&m.elements)?.clone();
            out.insert_str(e.end, &xml[e]);
        }
        3 => {
            let e = r.pick(&m.elements)?.clone();
            let to = *r.pick(&m.gaps)?;
            if e.contains(&to) || to == e.start {
                return None;
            }
            let piece = xml[e.clone()].to_owned();
            if to > e.start {
                out.insert_str(to, &piece);
                out.replace_range(e, "");
            } else {
                out.replace_range(e, "");
                out.insert_str(to, &piece);
            }
        }
        4 | 5 => {
            let to = *r.pick(&m.gaps)?;
            out.insert_str(to, &fill(r.word(FRAGMENTS)));
        }
        6 | 7 => {
            let (v, quote) = r.pick(&m.values)?.clone();
            let value = fill(r.word(VALUES)).replace(char::from(quote), "&quot;");
            out.replace_range(v, &value);
        }
        8 => {
            let t = r.pick(&m.texts)?.clone();
            out.replace_range(t, &fill(r.word(TEXTS)));
        }
        9 => {
            // Swap the quotes of one attribute value.
            let (v, quote) = r.pick(&m.values)?.clone();
            let other = if quote == b'\'' { b'"' } else { b'\'' };
            if xml.as_bytes()[v.clone()].contains(&other) {
                return None;
            }
            let q = char::from(other).to_string();
            out.replace_range(v.end..v.end + 1, &q);
            out.replace_range(v.start - 1..v.start, &q);
        }
        10 => {
            // `<x/>` becomes `<x></x>`, or `<x>...</x>` loses its name to another.
            if r.one_in(2) {
                let (n, slash) = r.pick(&m.empty_tags)?.clone();
                let end = format!("></{}>", &xml[n]);
                out.replace_range(slash..slash + 2, &end);
            } else {
                let i = r.below(m.open_tags.len().max(1) as u64) as usize;
                let (open, _) = m.open_tags.get(i)?.clone();
                let close = m.close_names.get(i)?.clone()?;
                let new = r.word(NAMES);
                out.replace_range(close, new);
                out.replace_range(open, new);
            }
        }
        _ => {
            // An attribute added to a start tag.
            let (_, tag_end) = r.pick(&m.open_tags)?.clone();
            let key = r.word(&[
                "id",
                "type",
                "port",
                "autoport",
                "unit",
                "current",
                "model",
                "relabel",
                "path",
                "file",
                "auto",
                "address",
                "xmlns:vmclone",
                "xmlns",
            ]);
            let value = fill(r.word(VALUES)).replace('\'', "&apos;");
            out.insert_str(tag_end, &format!(" {key}='{value}'"));
        }
    }
    Some(input::join(edit_seed, &out))
}

/// An element of `b` put into `a` at a gap between its elements.
pub fn crossover(a: &[u8], b: &[u8], seed: u32) -> Option<Vec<u8>> {
    let mut r = Rng(u64::from(seed) | 2 << 32);
    let (edit_seed, xa) = input::split(a);
    let (_, xb) = input::split(b);
    let to = *r.pick(&map(&xa).gaps)?;
    let piece = r.pick(&map(&xb).elements)?.clone();
    let mut out = xa.into_owned();
    out.insert_str(to, &xb[piece]);
    Some(input::join(edit_seed, &out))
}

/// The raw text of the input's `<name>` and `<uuid>`, for values the rules
/// compare with them.
fn own_name_and_uuid(xml: &str) -> (String, String) {
    let text_of = |tag: &str| {
        let open = format!("<{tag}>");
        let start = xml.find(&open)? + open.len();
        let len = xml[start..].find('<')?;
        Some(xml[start..start + len].to_owned())
    };
    (
        text_of("name").unwrap_or_else(|| "vm".into()),
        text_of("uuid").unwrap_or_else(|| "6b3c2a4e-8f3d-4c1e-9a7b-2f5d8e9c1a3b".into()),
    )
}

/// xorshift64*: enough randomness for choosing mutations.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    fn one_in(&mut self, n: u64) -> bool {
        self.below(n) == 0
    }

    /// One of a constant list (never empty).
    fn word(&mut self, words: &[&'static str]) -> &'static str {
        words[self.below(words.len() as u64) as usize]
    }

    fn pick<'t, T>(&mut self, items: &'t [T]) -> Option<&'t T> {
        if items.is_empty() {
            return None;
        }
        Some(&items[self.below(items.len() as u64) as usize])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const WEB01: &str = include_str!("../../service/src/domain_xml/testdata/web01-q35-uefi.xml");

    #[test]
    fn mutations_keep_the_seed_and_mostly_the_xml_shape() {
        let data = input::join(42, WEB01);
        let mut well_formed = 0;
        let mut changed = 0;
        for seed in 0..500 {
            let Some(out) = mutate(&data, seed) else {
                continue;
            };
            let (s, xml) = input::split(&out);
            if xml != WEB01 {
                changed += 1;
            }
            if s == 42 && crate::well_formed(&xml).is_ok() {
                well_formed += 1;
            }
        }
        assert!(changed > 400, "{changed} of 500 mutations changed the XML");
        assert!(well_formed > 250, "{well_formed} of 500 stayed well-formed");
    }

    #[test]
    fn crossover_moves_an_element_across() {
        let a = input::join(1, "<domain><devices></devices></domain>");
        let b = input::join(2, "<domain><x>y</x></domain>");
        let outs: Vec<String> = (0..50)
            .filter_map(|s| crossover(&a, &b, s))
            .map(|o| String::from_utf8(o).unwrap())
            .collect();
        assert!(outs
            .iter()
            .any(|o| o.contains("<devices><x>y</x></devices>")));
        assert!(outs.iter().all(|o| o.starts_with("0000000000000001\n")));
    }
}
