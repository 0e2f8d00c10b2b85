//! Reading a domain XML into [`DomainInfo`], in one streaming pass.

use std::path::PathBuf;

use quick_xml::events::{BytesStart, Event};
use quick_xml::NsReader;

use super::devices::Collector;
use super::tag::{self, attr, TagError};
use super::{Disk, DiskSource, DomainInfo, Interface, NumaCell, XmlError};

/// Reads what the service needs from a libvirt domain XML.
pub fn parse(xml: &str) -> Result<DomainInfo, XmlError> {
    let mut p = Parser {
        reader: NsReader::from_str(xml),
        stack: Vec::new(),
        text: None,
        name: None,
        uuid: None,
        vcpus: None,
        memory: None,
        disks: Vec::new(),
        disk: None,
        interfaces: Vec::new(),
        nvram: None,
        nvram_is_file: false,
        tpm_emulator: false,
        has_tpm: false,
        fixed_vsock_cid: false,
        fixed_graphics_ports: false,
        uefi: false,
        is_template: false,
        devices: Collector::default(),
        static_seclabel: None,
        numa_cells: Vec::new(),
        pinned_vcpus: Vec::new(),
        max_memory: None,
    };
    p.run()?;
    let memory_kib = match p.memory {
        Some((value, unit)) => memory_to_kib(&value, unit.as_deref())?,
        None => return Err(XmlError::Missing("memory")),
    };
    let vcpus = match p.vcpus {
        Some(v) => {
            v.trim()
                .parse::<u32>()
                .ok()
                .filter(|&n| n > 0)
                .ok_or(XmlError::InvalidValue {
                    element: "vcpu",
                    value: v,
                    reason: "not a positive whole number",
                })?
        }
        None => 1,
    };
    Ok(DomainInfo {
        name: p.name.ok_or(XmlError::Missing("name"))?,
        uuid: p
            .uuid
            .map(|u| u.trim().to_owned())
            .ok_or(XmlError::Missing("uuid"))?,
        vcpus,
        memory_kib,
        disks: p.disks,
        interfaces: p.interfaces,
        nvram: p.nvram.filter(|n| !n.trim().is_empty()),
        tpm_emulator: p.tpm_emulator,
        has_tpm: p.has_tpm,
        fixed_vsock_cid: p.fixed_vsock_cid,
        fixed_graphics_ports: p.fixed_graphics_ports,
        uefi: p.uefi,
        is_template: p.is_template,
        unsharable: p.devices.found,
        static_seclabel: p.static_seclabel,
        numa_cells: p.numa_cells,
        pinned_vcpus: p.pinned_vcpus,
        max_memory_kib: match p.max_memory {
            Some((value, unit)) => Some(memory_to_kib(&value, unit.as_deref())?),
            None => None,
        },
    })
}

/// Leaf elements whose text we keep.
#[derive(Clone, Copy)]
enum TextOf {
    Name,
    Uuid,
    Vcpu,
    Memory,
    MaxMemory,
    Nvram,
}

struct Parser<'x> {
    reader: NsReader<&'x [u8]>,
    /// Names of the open elements, root first.
    stack: Vec<String>,
    /// Text being collected: for which element, at which depth.
    text: Option<(TextOf, usize, String)>,
    name: Option<String>,
    uuid: Option<String>,
    vcpus: Option<String>,
    /// Value and unit of `<memory>`.
    memory: Option<(String, Option<String>)>,
    disks: Vec<Disk>,
    disk: Option<DiskBuilder>,
    interfaces: Vec<Interface>,
    nvram: Option<String>,
    nvram_is_file: bool,
    tpm_emulator: bool,
    has_tpm: bool,
    fixed_vsock_cid: bool,
    fixed_graphics_ports: bool,
    uefi: bool,
    is_template: bool,
    devices: Collector,
    static_seclabel: Option<String>,
    numa_cells: Vec<NumaCell>,
    pinned_vcpus: Vec<u32>,
    /// Value and unit of `<maxMemory>`.
    max_memory: Option<(String, Option<String>)>,
}

#[derive(Default)]
struct DiskBuilder {
    disk_type: String,
    device: String,
    file: Option<String>,
    dev: Option<String>,
    dir: Option<String>,
    pool: Option<String>,
    volume: Option<String>,
    protocol: Option<String>,
    has_source: bool,
    readonly: bool,
    shareable: bool,
    transient_share_backing: bool,
    driver_type: Option<String>,
    target_dev: Option<String>,
}

impl DiskBuilder {
    fn build(self) -> Disk {
        let nonempty = |s: Option<String>| s.filter(|s| !s.is_empty());
        let source = match self.disk_type.as_str() {
            "file" => nonempty(self.file).map(|f| DiskSource::File(PathBuf::from(f))),
            "block" => nonempty(self.dev).map(|d| DiskSource::Block(PathBuf::from(d))),
            "dir" => nonempty(self.dir).map(|d| DiskSource::Dir(PathBuf::from(d))),
            "volume" => match (nonempty(self.pool), nonempty(self.volume)) {
                (Some(pool), Some(volume)) => Some(DiskSource::Volume { pool, volume }),
                _ => None,
            },
            "network" if self.has_source => Some(DiskSource::Network {
                protocol: self.protocol.unwrap_or_default(),
            }),
            "network" => None,
            other => Some(DiskSource::Other {
                disk_type: other.to_owned(),
            }),
        };
        Disk {
            device: self.device,
            source: source.unwrap_or(DiskSource::Empty),
            readonly: self.readonly,
            shareable: self.shareable,
            transient_share_backing: self.transient_share_backing,
            driver_type: self.driver_type,
            target_dev: self.target_dev,
        }
    }
}

impl Parser<'_> {
    fn run(&mut self) -> Result<(), XmlError> {
        let mut seen_root = false;
        loop {
            let ev = self.reader.read_event().map_err(|e| self.bad(e.into()))?;
            match &ev {
                Event::Start(e) | Event::Empty(e) => {
                    let empty = matches!(ev, Event::Empty(_));
                    if self.stack.is_empty() {
                        if seen_root {
                            return Err(
                                self.bad(TagError::Msg("more than one root element".into()))
                            );
                        }
                        seen_root = true;
                        if tag::name(e) != "domain" {
                            return Err(XmlError::NotADomain(tag::name(e).to_owned()));
                        }
                    }
                    if let Some((_, depth, _)) = &self.text {
                        if *depth == self.stack.len() {
                            // An element inside a leaf we read: not libvirt's schema.
                            return Err(self.bad(TagError::Msg(format!(
                                "unexpected <{}> inside a text element",
                                tag::name(e)
                            ))));
                        }
                    }
                    self.on_element(e, empty).map_err(|b| self.bad(b))?;
                    if !empty {
                        self.stack.push(tag::name(e).to_owned());
                    }
                }
                Event::End(_) => {
                    self.on_end();
                    self.stack.pop();
                }
                Event::Text(_) | Event::CData(_) | Event::GeneralRef(_) => {
                    if self.devices.wants_text(self.stack.len()) {
                        let mut text = String::new();
                        tag::push_text(&mut text, &ev)
                            .map_err(|b| tag::malformed(&self.reader, b))?;
                        self.devices.on_text(&self.stack, &text);
                    }
                    if let Some((_, depth, buf)) = &mut self.text {
                        if *depth == self.stack.len() {
                            tag::push_text(buf, &ev)
                                .map_err(|b| tag::malformed(&self.reader, b))?;
                        }
                    }
                }
                Event::Eof => break,
                _ => {}
            }
        }
        if let Some(open) = self.stack.last() {
            return Err(self.bad(TagError::Msg(format!("the document ends inside <{open}>"))));
        }
        if !seen_root {
            return Err(self.bad(TagError::Msg("the document has no root element".into())));
        }
        Ok(())
    }

    fn bad(&self, b: TagError) -> XmlError {
        tag::malformed(&self.reader, b)
    }

    fn at(&self, path: &[&str]) -> bool {
        tag::at(&self.stack, path)
    }

    fn on_element(&mut self, e: &BytesStart, empty: bool) -> Result<(), TagError> {
        tag::check_attrs(e)?;
        let name = tag::name(e);
        let depth = self.stack.len() + 1;
        let collect = |what| (!empty).then(|| (what, depth, String::new()));
        self.devices.on_start(&self.stack, e, empty)?;
        if self.at(&["domain"]) {
            match name {
                "name" => self.text = collect(TextOf::Name),
                "uuid" => self.text = collect(TextOf::Uuid),
                "vcpu" => self.text = collect(TextOf::Vcpu),
                "memory" => {
                    self.memory = Some((String::new(), attr(e, "unit")?));
                    self.text = collect(TextOf::Memory);
                }
                "maxMemory" => {
                    self.max_memory = Some((String::new(), attr(e, "unit")?));
                    self.text = collect(TextOf::MaxMemory);
                }
                "os" if attr(e, "firmware")?.as_deref() == Some("efi") => self.uefi = true,
                "seclabel" => {
                    let model = attr(e, "model")?.unwrap_or_default();
                    // A fixed DAC label is a user to run as, which clones may share.
                    if attr(e, "type")?.as_deref() == Some("static") && model != "dac" {
                        self.static_seclabel = Some(model);
                    }
                }
                _ => {}
            }
        } else if self.at(&["domain", "cpu", "numa"]) && name == "cell" {
            let memory = attr(e, "memory")?.unwrap_or_default();
            self.numa_cells.push(NumaCell {
                cpus: attr(e, "cpus")?.unwrap_or_default(),
                memory_kib: memory_to_kib(&memory, attr(e, "unit")?.as_deref())
                    .map_err(|e| TagError::Msg(e.to_string()))?,
            });
        } else if self.at(&["domain", "cputune"]) && name == "vcpupin" {
            if let Some(n) = attr(e, "vcpu")?.and_then(|v| v.trim().parse().ok()) {
                self.pinned_vcpus.push(n);
            }
        } else if self.at(&["domain", "metadata"]) {
            if tag::is_template_marker(&self.reader, e) {
                self.is_template = true;
            }
        } else if self.at(&["domain", "os"]) && name == "nvram" {
            match attr(e, "type")?.as_deref() {
                None => self.text = collect(TextOf::Nvram),
                Some("file") => self.nvram_is_file = true,
                Some(_) => {}
            }
        } else if self.at(&["domain", "os", "nvram"]) && name == "source" && self.nvram_is_file {
            self.nvram = attr(e, "file")?;
        } else if self.at(&["domain", "devices"]) {
            match name {
                "disk" => {
                    let b = DiskBuilder {
                        disk_type: attr(e, "type")?.unwrap_or_else(|| "file".into()),
                        device: attr(e, "device")?.unwrap_or_else(|| "disk".into()),
                        ..DiskBuilder::default()
                    };
                    if empty {
                        self.disks.push(b.build());
                    } else {
                        self.disk = Some(b);
                    }
                }
                "interface" => self.interfaces.push(Interface {
                    mac: None,
                    kind: attr(e, "type")?.unwrap_or_default(),
                    source: None,
                    model: None,
                }),
                "tpm" => self.has_tpm = true,
                "graphics" => {
                    for key in ["port", "tlsPort", "websocket"] {
                        if attr(e, key)?.is_some_and(|v| v.trim() != "-1") {
                            self.fixed_graphics_ports = true;
                        }
                    }
                }
                _ => {}
            }
        } else if self.at(&["domain", "devices", "disk"]) {
            if let Some(d) = &mut self.disk {
                match name {
                    "source" => {
                        d.has_source = true;
                        d.file = attr(e, "file")?;
                        d.dev = attr(e, "dev")?;
                        d.dir = attr(e, "dir")?;
                        d.pool = attr(e, "pool")?;
                        d.volume = attr(e, "volume")?;
                        d.protocol = attr(e, "protocol")?;
                    }
                    "readonly" => d.readonly = true,
                    "shareable" => d.shareable = true,
                    "transient" => {
                        d.transient_share_backing =
                            attr(e, "shareBacking")?.as_deref() == Some("yes")
                    }
                    "driver" => d.driver_type = attr(e, "type")?,
                    "target" => d.target_dev = attr(e, "dev")?,
                    _ => {}
                }
            }
        } else if self.at(&["domain", "devices", "interface"]) {
            if let Some(i) = self.interfaces.last_mut() {
                match name {
                    "mac" => i.mac = attr(e, "address")?,
                    "model" => i.model = attr(e, "type")?,
                    "source" => {
                        i.source = ["network", "bridge", "dev", "path", "socket"]
                            .iter()
                            .find_map(|k| attr(e, k).ok().flatten())
                    }
                    _ => {}
                }
            }
        } else if self.at(&["domain", "devices", "vsock"]) && name == "cid" {
            self.fixed_vsock_cid |= attr(e, "auto")?.as_deref() != Some("yes");
        } else if self.at(&["domain", "os"]) && name == "loader" {
            if attr(e, "type")?.as_deref() == Some("pflash") {
                self.uefi = true;
            }
        } else if self.at(&["domain", "devices", "tpm"])
            && name == "backend"
            && attr(e, "type")?.as_deref() == Some("emulator")
        {
            self.tpm_emulator = true;
        }
        Ok(())
    }

    fn on_end(&mut self) {
        self.devices.on_end(&self.stack);
        let depth = self.stack.len();
        if let Some((what, d, _)) = &self.text {
            if *d == depth {
                let what = *what;
                let text = self.text.take().map(|t| t.2).unwrap_or_default();
                match what {
                    TextOf::Name => self.name = Some(text),
                    TextOf::Uuid => self.uuid = Some(text),
                    TextOf::Vcpu => self.vcpus = Some(text),
                    TextOf::Memory => {
                        if let Some(m) = &mut self.memory {
                            m.0 = text;
                        }
                    }
                    TextOf::MaxMemory => {
                        if let Some(m) = &mut self.max_memory {
                            m.0 = text;
                        }
                    }
                    TextOf::Nvram => self.nvram = Some(text.trim().to_owned()),
                }
            }
        }
        if self.at(&["domain", "devices", "disk"]) {
            if let Some(b) = self.disk.take() {
                self.disks.push(b.build());
            }
        }
        if self.at(&["domain", "os", "nvram"]) {
            self.nvram_is_file = false;
        }
    }
}

/// `<memory unit=...>` in KiB, rounded up, with libvirt's units.
fn memory_to_kib(value: &str, unit: Option<&str>) -> Result<u64, XmlError> {
    let invalid = |reason| XmlError::InvalidValue {
        element: "memory",
        value: format!("{value} {}", unit.unwrap_or("KiB"))
            .trim()
            .to_owned(),
        reason,
    };
    let n: u64 = value
        .trim()
        .parse()
        .map_err(|_| invalid("not a whole number"))?;
    let bytes_per_unit: u64 = match unit.map(str::to_ascii_lowercase).as_deref() {
        None | Some("") => 1024,
        Some("b" | "bytes") => 1,
        Some(u) => {
            let power = match u.as_bytes()[0] {
                b'k' => 1,
                b'm' => 2,
                b'g' => 3,
                b't' => 4,
                b'p' => 5,
                b'e' => 6,
                _ => return Err(invalid("unknown unit")),
            };
            let base: u64 = match &u[1..] {
                "" | "ib" => 1024,
                "b" => 1000,
                _ => return Err(invalid("unknown unit")),
            };
            base.pow(power)
        }
    };
    let bytes = n
        .checked_mul(bytes_per_unit)
        .ok_or_else(|| invalid("too large"))?;
    Ok(bytes.div_ceil(1024))
}

#[cfg(test)]
mod unit_tests {
    use super::memory_to_kib;

    #[test]
    fn memory_units_convert_like_libvirt() {
        assert_eq!(memory_to_kib("4194304", None).unwrap(), 4_194_304);
        assert_eq!(memory_to_kib("4194304", Some("KiB")).unwrap(), 4_194_304);
        assert_eq!(memory_to_kib("4", Some("GiB")).unwrap(), 4_194_304);
        assert_eq!(memory_to_kib("4", Some("G")).unwrap(), 4_194_304);
        assert_eq!(memory_to_kib("512", Some("MiB")).unwrap(), 524_288);
        assert_eq!(memory_to_kib("1", Some("MB")).unwrap(), 977); // 1e6 bytes, rounded up
        assert_eq!(memory_to_kib("1", Some("KB")).unwrap(), 1);
        assert_eq!(memory_to_kib("2048", Some("bytes")).unwrap(), 2);
        assert_eq!(memory_to_kib("1", Some("b")).unwrap(), 1);
        assert_eq!(memory_to_kib("1", Some("TiB")).unwrap(), 1 << 30);
        assert!(memory_to_kib("1", Some("parsecs")).is_err());
        assert!(memory_to_kib("lots", None).is_err());
        assert!(memory_to_kib("20000000", Some("EiB")).is_err());
    }
}
