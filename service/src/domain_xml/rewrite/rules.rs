//! What a clone changes in the domain XML, one function per element family,
//! in the order of the README's "What a clone changes". The streaming
//! machinery (`stream.rs`) asks these rules what to do with each element and
//! writes everything else through untouched.

use std::path::Path;

use quick_xml::events::BytesStart;

use super::super::tag::{self, attr, Edit, TagError};
use super::super::{CloneEdits, DiskTarget, NewDisk, XmlError};
use crate::naming::rename_in_file_name;

/// What to do with an element that starts.
pub(super) enum Decision {
    /// Write it (possibly edited) and go on inside.
    Keep(BytesStart<'static>),
    /// Write the start tag, then this text instead of the content.
    ReplaceText(BytesStart<'static>, String),
    /// Write the start tag and hold the content back.
    Capture(BytesStart<'static>, CaptureKind),
    /// Hold `<metadata>` back until something in it is kept.
    DeferMetadata(BytesStart<'static>),
    /// Leave it out with everything inside.
    Drop,
}

/// Leaf content held back until its text is known.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum CaptureKind {
    Sysinfo,
    Genid,
}

/// An element that starts, with what only the reader knows about it.
pub(super) struct Start<'a, 'b> {
    pub e: &'a BytesStart<'b>,
    /// vmclone's template marker in `<metadata>`.
    pub is_template_marker: bool,
}

struct DiskState<'e> {
    new: Option<&'e NewDisk>,
    seen_source: bool,
    seen_driver: bool,
}

struct IfaceState {
    index: usize,
    seen_mac: bool,
}

struct ChardevState {
    element: String,
    kind: String,
}

/// The rules and the little they remember between elements.
pub(super) struct Rules<'e> {
    edits: &'e CloneEdits<'e>,
    old_name: String,
    old_uuid: String,
    /// The new vcpu count when it differs from the source's.
    vcpus_change: Option<u32>,
    /// Quote character for attributes we add: the one `<domain>` uses.
    quote: char,
    disk_index: usize,
    iface_index: usize,
    disk: Option<DiskState<'e>>,
    iface: Option<IfaceState>,
    chardev: Option<ChardevState>,
    nvram_is_file: bool,
    /// Inside a `<seclabel>` that was static.
    seclabel_made_dynamic: bool,
    /// A `<domain><vcpu>` was seen.
    seen_vcpu: bool,
}

type Rule = Result<Decision, TagError>;

fn keep(e: &BytesStart) -> Rule {
    Ok(Decision::Keep(e.to_owned().into_owned()))
}

impl<'e> Rules<'e> {
    pub(super) fn new(
        edits: &'e CloneEdits<'e>,
        old_name: String,
        old_uuid: String,
        old_vcpus: u32,
    ) -> Self {
        Rules {
            edits,
            old_name,
            old_uuid,
            vcpus_change: edits.vcpus.filter(|&n| n != old_vcpus),
            quote: '\'',
            disk_index: 0,
            iface_index: 0,
            disk: None,
            iface: None,
            chardev: None,
            nvram_is_file: false,
            seclabel_made_dynamic: false,
            seen_vcpu: false,
        }
    }

    /// Decides what happens to the element `start` opened inside `stack`.
    pub(super) fn on_start<S: AsRef<str>>(&mut self, stack: &[S], start: Start) -> Rule {
        tag::check_attrs(start.e)?;
        let e = start.e;
        let name = tag::name(e);
        let at = |path: &[&str]| tag::at(stack, path);
        if stack.is_empty() {
            return self.domain(e);
        }
        if at(&["domain"]) {
            return self.domain_child(e, name);
        }
        if at(&["domain", "metadata"]) {
            return self.metadata_child(e, start.is_template_marker);
        }
        if at(&["domain", "seclabel"]) && self.seclabel_made_dynamic {
            // A dynamic label is libvirt's to choose.
            return match name {
                "label" | "imagelabel" => Ok(Decision::Drop),
                _ => keep(e),
            };
        }
        if tag::under(stack, &["domain", "sysinfo"]) {
            return Ok(Decision::Capture(
                e.to_owned().into_owned(),
                CaptureKind::Sysinfo,
            ));
        }
        if at(&["domain", "cpu"]) && name == "topology" {
            return self.cpu_topology(e);
        }
        if at(&["domain", "os"]) && name == "nvram" {
            return self.nvram(e);
        }
        if at(&["domain", "os", "nvram"]) && name == "source" && self.nvram_is_file {
            return self.nvram_source(e);
        }
        if at(&["domain", "devices"]) {
            return self.device(e, name);
        }
        if at(&["domain", "devices", "disk"]) {
            return self.disk_child(e, name);
        }
        if at(&["domain", "devices", "interface"]) {
            return self.interface_child(e, name);
        }
        if at(&["domain", "devices", "vsock"]) && name == "cid" {
            return vsock_cid(e, self.quote).map(Decision::Keep);
        }
        if stack.len() == 3 && tag::under(stack, &["domain", "devices"]) {
            if let Some(chr) = &self.chardev {
                return self.chardev_child(e, name, chr).map(Decision::Keep);
            }
        }
        keep(e)
    }

    /// `<domain>`: its quote style is used for added attributes; the `id` of
    /// a running source goes.
    fn domain(&mut self, e: &BytesStart) -> Rule {
        if let Some(q) = e.attributes_raw().chars().find(|&c| c == '\'' || c == '"') {
            self.quote = q;
        }
        Ok(Decision::Keep(tag::edit(
            e,
            &[Edit::Remove("id")],
            self.quote,
        )?))
    }

    /// `<name>`, `<uuid>` and `<genid>` take the clone's; `<title>` goes;
    /// vcpus and memory as asked.
    fn domain_child(&mut self, e: &BytesStart, name: &str) -> Rule {
        let edits = self.edits;
        let own = || e.to_owned().into_owned();
        self.seen_vcpu |= name == "vcpu";
        match name {
            "name" => Ok(Decision::ReplaceText(own(), edits.new_name.to_owned())),
            "uuid" => Ok(Decision::ReplaceText(own(), edits.new_uuid.to_owned())),
            "title" => Ok(Decision::Drop),
            "metadata" => Ok(Decision::DeferMetadata(own())),
            "genid" => Ok(Decision::Capture(own(), CaptureKind::Genid)),
            // The new count is the current count too: every vCPU is online.
            "vcpu" => match edits.vcpus {
                Some(n) => Ok(Decision::ReplaceText(
                    tag::edit(e, &[Edit::Remove("current")], self.quote)?,
                    n.to_string(),
                )),
                None => keep(e),
            },
            "seclabel" => self.seclabel(e),
            // Per-vcpu settings describe the old count; libvirt fills in defaults.
            "vcpus" if self.vcpus_change.is_some() => Ok(Decision::Drop),
            "memory" | "currentMemory" => match edits.memory_kib {
                Some(kib) => {
                    let start = match attr(e, "unit")?.as_deref() {
                        None | Some("KiB") => own(),
                        Some(_) => tag::edit(e, &[Edit::Set("unit", "KiB")], self.quote)?,
                    };
                    Ok(Decision::ReplaceText(start, kib.to_string()))
                }
                None => keep(e),
            },
            _ => keep(e),
        }
    }

    /// A fixed sVirt label (SELinux, AppArmor) becomes dynamic, so that the
    /// clone never shares the source's label; a fixed DAC label is only the
    /// user to run as and stays.
    fn seclabel(&mut self, e: &BytesStart) -> Rule {
        let fixed = attr(e, "type")?.as_deref() == Some("static")
            && attr(e, "model")?.as_deref() != Some("dac");
        self.seclabel_made_dynamic = fixed;
        match fixed {
            true => Ok(Decision::Keep(tag::edit(
                e,
                &[Edit::Set("type", "dynamic"), Edit::Remove("relabel")],
                self.quote,
            )?)),
            false => keep(e),
        }
    }

    /// No template marker: a clone of a template is a normal VM.
    fn metadata_child(&self, e: &BytesStart, is_template_marker: bool) -> Rule {
        match is_template_marker {
            true => Ok(Decision::Drop),
            false => keep(e),
        }
    }

    /// The text of a captured `<sysinfo>` value or `<genid>`, if it changes.
    pub(super) fn captured(&self, kind: CaptureKind, text: &str) -> Option<String> {
        let value = text.trim();
        match kind {
            CaptureKind::Sysinfo if value.eq_ignore_ascii_case(&self.old_uuid) => {
                Some(self.edits.new_uuid.to_owned())
            }
            // An empty <genid/> asks libvirt to generate one: keep it so.
            CaptureKind::Genid if !value.is_empty() => Some(self.edits.new_genid.to_owned()),
            _ => None,
        }
    }

    /// `<cpu><topology>` follows a new vcpu count.
    fn cpu_topology(&self, e: &BytesStart) -> Rule {
        match self.edits.vcpus {
            Some(n) => topology(e, n, self.quote).map(Decision::Keep),
            None => keep(e),
        }
    }

    /// `<os><nvram>PATH</nvram>` points at the clone's copy.
    fn nvram(&mut self, e: &BytesStart) -> Rule {
        let kind = attr(e, "type")?;
        self.nvram_is_file = kind.as_deref() == Some("file");
        match (self.edits.nvram, kind) {
            (Some(path), None) => Ok(Decision::ReplaceText(
                e.to_owned().into_owned(),
                path_str(path)?,
            )),
            _ => keep(e),
        }
    }

    /// `<nvram type='file'><source file=…/>` points at the clone's copy.
    fn nvram_source(&self, e: &BytesStart) -> Rule {
        match self.edits.nvram {
            Some(path) => {
                let path = path_str(path)?;
                Ok(Decision::Keep(tag::edit(
                    e,
                    &[Edit::Set("file", &path)],
                    self.quote,
                )?))
            }
            None => keep(e),
        }
    }

    /// A device: disks and interfaces are counted to match their edits,
    /// graphics lose fixed ports, character devices are remembered for
    /// their children.
    fn device(&mut self, e: &BytesStart, name: &str) -> Rule {
        match name {
            "disk" => {
                let new = self
                    .edits
                    .disks
                    .get(self.disk_index)
                    .and_then(Option::as_ref);
                self.disk_index += 1;
                self.disk = Some(DiskState {
                    new,
                    seen_source: false,
                    seen_driver: false,
                });
                match new {
                    Some(n) => Ok(Decision::Keep(tag::edit(
                        e,
                        &[Edit::Set("type", target_kind(&n.target))],
                        self.quote,
                    )?)),
                    None => keep(e),
                }
            }
            "interface" => {
                self.iface = Some(IfaceState {
                    index: self.iface_index,
                    seen_mac: false,
                });
                self.iface_index += 1;
                keep(e)
            }
            "graphics" => graphics(e, self.quote).map(Decision::Keep),
            "serial" | "console" | "channel" | "parallel" => {
                self.chardev = Some(ChardevState {
                    element: name.to_owned(),
                    kind: attr(e, "type")?.unwrap_or_default(),
                });
                keep(e)
            }
            _ => keep(e),
        }
    }

    /// Inside a copied disk: `<source>` and `<driver>` describe the copy; a
    /// linked overlay's chain is probed anew by libvirt.
    fn disk_child(&mut self, e: &BytesStart, name: &str) -> Rule {
        let quote = self.quote;
        let Some(disk) = &mut self.disk else {
            return keep(e);
        };
        let Some(new) = disk.new else {
            return keep(e);
        };
        match name {
            "source" => {
                disk.seen_source = true;
                let set = target_attrs(&new.target)?;
                // Drop the other kinds' source attributes; `mode` only
                // means something for volumes.
                let volume = matches!(new.target, DiskTarget::Volume { .. });
                let mut ed: Vec<Edit> = ["file", "dev", "dir", "pool", "volume", "mode"]
                    .into_iter()
                    .filter(|&k| !set.iter().any(|&(s, _)| s == k))
                    .filter(|&k| !(volume && k == "mode"))
                    .map(Edit::Remove)
                    .collect();
                ed.extend(set.iter().map(|(k, v)| Edit::Set(k, v.as_str())));
                Ok(Decision::Keep(tag::edit(e, &ed, quote)?))
            }
            "driver" => {
                disk.seen_driver = true;
                match &new.driver_type {
                    Some(t) => Ok(Decision::Keep(tag::edit(
                        e,
                        &[Edit::Set("type", t)],
                        quote,
                    )?)),
                    None => keep(e),
                }
            }
            "backingStore" if new.overlay => Ok(Decision::Drop),
            _ => keep(e),
        }
    }

    /// Inside an interface: the clone's MAC; the host-side tap device name
    /// belongs to the source VM.
    fn interface_child(&mut self, e: &BytesStart, name: &str) -> Rule {
        match name {
            "mac" => {
                let Some(iface) = &mut self.iface else {
                    return keep(e);
                };
                iface.seen_mac = true;
                let mac = self.edits.macs[iface.index].as_str();
                Ok(Decision::Keep(tag::edit(
                    e,
                    &[Edit::Set("address", mac)],
                    self.quote,
                )?))
            }
            "target" => Ok(Decision::Drop),
            _ => keep(e),
        }
    }

    /// `<source path>` and `<log file>` of a serial/console/channel/parallel.
    ///
    /// virt-clone also renames every other serial/console file by adding
    /// `-clone`; we deliberately rename only files named after the VM and
    /// leave shared log files like /tmp/foo.log as the user set them.
    fn chardev_child(
        &self,
        e: &BytesStart,
        name: &str,
        chr: &ChardevState,
    ) -> Result<BytesStart<'static>, TagError> {
        let unchanged = || Ok(e.to_owned().into_owned());
        let (key, renamable) = match name {
            "source" => ("path", matches!(chr.kind.as_str(), "file" | "unix")),
            "log" => ("file", true),
            _ => return unchanged(),
        };
        let Some(path) = attr(e, key)? else {
            return unchanged();
        };
        if name == "source"
            && chr.element == "channel"
            && chr.kind == "unix"
            && is_generated_socket(&path)
        {
            // libvirt makes a fresh socket path for the clone when it starts.
            return tag::edit(e, &[Edit::Remove("path")], self.quote);
        }
        if renamable {
            if let Some(new) = rename_in_file_name(&path, &self.old_name, self.edits.new_name)
                // The same name again: leave the attribute as written.
                .filter(|new| *new != path)
            {
                return tag::edit(e, &[Edit::Set(key, &new)], self.quote);
            }
        }
        unchanged()
    }

    /// Whether an empty element must be opened up to add children:
    /// `<interface type='user'/>` still needs its `<mac>`.
    pub(super) fn needs_children_on_empty<S: AsRef<str>>(&self, stack: &[S], name: &str) -> bool {
        if !tag::at(stack, &["domain", "devices"]) {
            return false;
        }
        match name {
            "interface" => true,
            "disk" => self.disk.as_ref().is_some_and(|d| d.new.is_some()),
            _ => false,
        }
    }

    /// The children that must be added before the end tag of the element
    /// at `stack` (a missing `<mac>`, a copied disk's missing `<driver>` or
    /// `<source>`); forgets the element's state.
    pub(super) fn missing_children<S: AsRef<str>>(
        &mut self,
        stack: &[S],
    ) -> Result<Vec<BytesStart<'static>>, TagError> {
        let mut add = Vec::new();
        if tag::at(stack, &["domain", "devices", "interface"]) {
            if let Some(iface) = self.iface.take() {
                if !iface.seen_mac {
                    let mac = self.edits.macs[iface.index].as_str();
                    add.push(tag::empty_element("mac", &[("address", mac)], self.quote));
                }
            }
        } else if tag::at(stack, &["domain", "devices", "disk"]) {
            if let Some(DiskState {
                new: Some(new),
                seen_source,
                seen_driver,
            }) = self.disk.take()
            {
                if let (false, Some(t)) = (seen_driver, &new.driver_type) {
                    add.push(tag::empty_element(
                        "driver",
                        &[("name", "qemu"), ("type", t)],
                        self.quote,
                    ));
                }
                if !seen_source {
                    let attrs = target_attrs(&new.target)?;
                    let attrs: Vec<(&str, &str)> =
                        attrs.iter().map(|(k, v)| (*k, v.as_str())).collect();
                    add.push(tag::empty_element("source", &attrs, self.quote));
                }
            }
        } else {
            self.forget(stack);
        }
        Ok(add)
    }

    /// The document ended: a vcpu count asked for must have had its `<vcpu>`
    /// (else the clone would silently keep one vCPU; libvirt always writes it).
    pub(super) fn finish(&self) -> Result<(), XmlError> {
        match self.edits.vcpus.is_some() && !self.seen_vcpu {
            true => Err(XmlError::Missing("vcpu")),
            false => Ok(()),
        }
    }

    /// An element at `stack` ended (or was empty): its state goes.
    pub(super) fn forget<S: AsRef<str>>(&mut self, stack: &[S]) {
        if stack.len() == 3 && tag::under(stack, &["domain", "devices"]) {
            match stack[2].as_ref() {
                "disk" => self.disk = None,
                "interface" => self.iface = None,
                _ => self.chardev = None,
            }
        } else if tag::at(stack, &["domain", "os", "nvram"]) {
            self.nvram_is_file = false;
        } else if tag::at(stack, &["domain", "seclabel"]) {
            self.seclabel_made_dynamic = false;
        }
    }
}

/// A socket path libvirt made for the VM (guest agent and other channels).
fn is_generated_socket(path: &str) -> bool {
    let domain_dir = |c: &str| {
        c.strip_prefix("domain-").is_some_and(|rest| {
            let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
            digits > 0 && rest.as_bytes().get(digits) == Some(&b'-')
        })
    };
    path.contains("/libvirt/qemu/channel/")
        || path.contains("/libvirt/qemu/lib/channel/")
        || path.split('/').any(domain_dir)
}

/// `<vsock><cid>`: a fixed CID is unique per host, so the clone gets an
/// automatic one (or it could never run next to its source).
fn vsock_cid(e: &BytesStart, quote: char) -> Result<BytesStart<'static>, TagError> {
    if attr(e, "auto")?.as_deref() == Some("yes") {
        return Ok(e.to_owned().into_owned());
    }
    tag::edit(
        e,
        &[Edit::Set("auto", "yes"), Edit::Remove("address")],
        quote,
    )
}

/// `<graphics>`: fixed ports become automatic.
fn graphics(e: &BytesStart, quote: char) -> Result<BytesStart<'static>, TagError> {
    let mut ed = Vec::new();
    for key in ["port", "tlsPort", "websocket"] {
        if let Some(v) = attr(e, key)? {
            if v.trim() != "-1" {
                ed.push(Edit::Set(key, "-1"));
            }
        }
    }
    if ed.is_empty() {
        return Ok(e.to_owned().into_owned());
    }
    ed.push(Edit::Set("autoport", "yes"));
    tag::edit(e, &ed, quote)
}

/// `<cpu><topology>` that no longer multiplies to `n` becomes n sockets.
fn topology(e: &BytesStart, n: u32, quote: char) -> Result<BytesStart<'static>, TagError> {
    let mut product: u64 = 1;
    for key in ["sockets", "dies", "clusters", "cores", "threads"] {
        if let Some(v) = attr(e, key)? {
            product = product.saturating_mul(v.trim().parse::<u64>().unwrap_or(0));
        }
    }
    if product == u64::from(n) {
        return Ok(e.to_owned().into_owned());
    }
    let n = n.to_string();
    let mut ed = vec![
        Edit::Set("sockets", &n),
        Edit::Set("cores", "1"),
        Edit::Set("threads", "1"),
    ];
    for key in ["dies", "clusters"] {
        if attr(e, key)?.is_some() {
            ed.push(Edit::Set(key, "1"));
        }
    }
    tag::edit(e, &ed, quote)
}

fn target_kind(t: &DiskTarget) -> &'static str {
    match t {
        DiskTarget::File(_) => "file",
        DiskTarget::Block(_) => "block",
        DiskTarget::Volume { .. } => "volume",
    }
}

/// The `<source>` attributes of a disk target.
fn target_attrs(t: &DiskTarget) -> Result<Vec<(&'static str, String)>, TagError> {
    Ok(match t {
        DiskTarget::File(p) => vec![("file", path_str(p)?)],
        DiskTarget::Block(p) => vec![("dev", path_str(p)?)],
        DiskTarget::Volume { pool, volume } => {
            vec![("pool", pool.clone()), ("volume", volume.clone())]
        }
    })
}

/// A path for the XML, which can only hold UTF-8.
fn path_str(p: &Path) -> Result<String, TagError> {
    p.to_str()
        .map(str::to_owned)
        .ok_or_else(|| TagError::Msg(format!("the path {p:?} is not valid UTF-8")))
}
