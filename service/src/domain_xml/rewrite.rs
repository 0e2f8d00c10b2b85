//! Writing the clone's domain XML: the source XML streams from a quick-xml
//! reader to a writer; events we do not change are written exactly as read,
//! and even edited start tags keep their untouched attributes byte for byte.

use std::path::Path;

use quick_xml::escape::partial_escape;
use quick_xml::events::{BytesEnd, BytesStart, BytesText, Event};
use quick_xml::name::{Namespace, ResolveResult};
use quick_xml::{NsReader, Writer};

use super::tag::{self, attr, Bad, Edit};
use super::{
    parse, random_uuid, CloneEdits, DiskSource, DiskTarget, NewDisk, XmlError, METADATA_NS,
    TEMPLATE_LOCAL_NAME,
};
use crate::naming::rename_in_file_name;

/// Streams the inactive+secure source XML through a quick-xml Reader->Writer,
/// passing every untouched event through as it was. What changes:
///
/// - `<name>`, `<uuid>`; the `id` of `<domain>`, `<title>` and our template
///   metadata are dropped (an emptied `<metadata>` goes too);
/// - every `<interface>` gets its MAC (a `<mac>` is added if missing) and
///   loses `<target dev>`;
/// - `<sysinfo>` values equal to the old UUID take the new one; a non-empty
///   `<genid>` gets a new random value;
/// - `<graphics>` with fixed ports and a fixed vsock CID become automatic;
/// - unix channels with libvirt-generated socket paths lose the path;
///   serial/console/channel/parallel files and sockets named after the VM are
///   renamed;
/// - disks with a [`NewDisk`], the NVRAM path, vcpus and memory, as asked.
pub fn rewrite(xml: &str, edits: &CloneEdits) -> Result<String, XmlError> {
    let info = parse(xml)?;
    if edits.macs.len() != info.interfaces.len() {
        return Err(XmlError::MacCount {
            expected: info.interfaces.len(),
            given: edits.macs.len(),
        });
    }
    if edits.disks.len() != info.disks.len() {
        return Err(XmlError::DiskCount {
            expected: info.disks.len(),
            given: edits.disks.len(),
        });
    }
    for (index, (disk, edit)) in info.disks.iter().zip(edits.disks).enumerate() {
        let editable = matches!(
            disk.source,
            DiskSource::Empty
                | DiskSource::File(_)
                | DiskSource::Block(_)
                | DiskSource::Volume { .. }
        );
        if edit.is_some() && !editable {
            return Err(XmlError::UnsupportedDiskEdit {
                index,
                source_kind: disk.source.kind(),
            });
        }
    }
    let mut rw = Rewriter {
        reader: NsReader::from_str(xml),
        out: Writer::new(Vec::with_capacity(xml.len() + 256)),
        edits,
        old_name: info.name,
        old_uuid: info.uuid,
        vcpus_change: edits.vcpus.filter(|&n| n != info.vcpus),
        quote: '\'',
        stack: Vec::new(),
        pending_ws: None,
        skip: None,
        capture: None,
        metadata: None,
        disk_index: 0,
        iface_index: 0,
        disk: None,
        iface: None,
        chardev: None,
        nvram_is_file: false,
    };
    rw.run()?;
    String::from_utf8(rw.out.into_inner()).map_err(|e| XmlError::Malformed {
        position: 0,
        message: e.to_string(),
    })
}

struct Rewriter<'x, 'e> {
    reader: NsReader<&'x [u8]>,
    out: Writer<Vec<u8>>,
    edits: &'e CloneEdits<'e>,
    old_name: String,
    old_uuid: String,
    /// The new vcpu count when it differs from the source's.
    vcpus_change: Option<u32>,
    /// Quote character for attributes we add: the one `<domain>` uses.
    quote: char,
    /// Open elements we passed through, root first.
    stack: Vec<Frame>,
    /// Whitespace read but not yet written: it is dropped together with a
    /// dropped element that follows it, so no blank lines remain.
    pending_ws: Option<String>,
    /// Inside an element being dropped or whose content is being replaced.
    skip: Option<Skip>,
    /// Content of a leaf held back until we know whether to replace it.
    capture: Option<Capture>,
    /// `<metadata>` held back until something in it is kept.
    metadata: Option<Vec<Event<'static>>>,
    disk_index: usize,
    iface_index: usize,
    disk: Option<DiskState<'e>>,
    iface: Option<IfaceState>,
    chardev: Option<ChardevState>,
    nvram_is_file: bool,
}

struct Frame {
    name: String,
    /// Whitespace before the latest child element: the indentation to use
    /// for children we add.
    child_ws: Option<String>,
}

struct Skip {
    /// Open elements inside the skipped one, itself included.
    depth: usize,
    /// Text written instead of the skipped content, with the end tag.
    replacement: Option<String>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum CaptureKind {
    Sysinfo,
    Genid,
}

struct Capture {
    kind: CaptureKind,
    /// Stack depth of the captured element.
    depth: usize,
    events: Vec<Event<'static>>,
    text: String,
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

/// What to do with an element that starts.
enum Action {
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

impl<'x, 'e> Rewriter<'x, 'e> {
    fn run(&mut self) -> Result<(), XmlError> {
        loop {
            let ev = self.reader.read_event().map_err(|e| self.bad(e.into()))?;
            if self.skip.is_some() {
                self.skipping(ev)?;
                continue;
            }
            match ev {
                Event::Start(e) => self.on_start(e, false)?,
                Event::Empty(e) => self.on_start(e, true)?,
                Event::End(e) => self.on_end(e)?,
                Event::Eof => break,
                ev @ (Event::Text(_)
                | Event::CData(_)
                | Event::GeneralRef(_)
                | Event::Comment(_)
                | Event::PI(_)) => self.on_content(ev)?,
                ev => self.emit(ev)?,
            }
        }
        if let Some(ws) = self.pending_ws.take() {
            self.out
                .write_event(Event::Text(BytesText::from_escaped(ws)))?;
        }
        Ok(())
    }

    fn bad(&self, b: Bad) -> XmlError {
        XmlError::Malformed {
            position: self.reader.buffer_position(),
            message: b.to_string(),
        }
    }

    fn at(&self, path: &[&str]) -> bool {
        self.stack.len() == path.len() && self.stack.iter().zip(path).all(|(f, p)| f.name == *p)
    }

    fn under(&self, path: &[&str]) -> bool {
        self.stack.len() >= path.len() && self.stack.iter().zip(path).all(|(f, p)| f.name == *p)
    }

    /// Events inside a dropped or replaced element.
    fn skipping(&mut self, ev: Event) -> Result<(), XmlError> {
        let Some(skip) = &mut self.skip else {
            return Ok(());
        };
        match ev {
            Event::Start(_) => skip.depth += 1,
            Event::End(end) => {
                skip.depth -= 1;
                if skip.depth == 0 {
                    let replacement = self.skip.take().and_then(|s| s.replacement);
                    if let Some(text) = replacement {
                        self.emit(Event::Text(BytesText::from_escaped(partial_escape(text))))?;
                        self.emit(Event::End(end))?;
                    }
                }
            }
            Event::Eof => {
                return Err(self.bad(Bad::Msg("the document ends inside an element".into())))
            }
            _ => {}
        }
        Ok(())
    }

    fn on_content(&mut self, ev: Event) -> Result<(), XmlError> {
        if let Some(cap) = &mut self.capture {
            if cap.depth == self.stack.len() {
                tag::push_text(&mut cap.text, &ev).map_err(|b| XmlError::Malformed {
                    position: self.reader.buffer_position(),
                    message: b.to_string(),
                })?;
                cap.events.push(ev.into_owned());
                return Ok(());
            }
        }
        if let Event::Text(t) = &ev {
            if t.chars().all(|c| matches!(c, ' ' | '\t' | '\r' | '\n')) {
                self.pending_ws.get_or_insert_with(String::new).push_str(t);
                return Ok(());
            }
        }
        self.emit(ev)
    }

    /// Writes an event, after any held-back whitespace; a held-back
    /// `<metadata>` is written first, since something in it is kept.
    fn emit(&mut self, ev: Event) -> Result<(), XmlError> {
        if let Some(held) = self.metadata.take() {
            for e in held {
                self.out.write_event(e)?;
            }
        }
        if let Some(ws) = self.pending_ws.take() {
            self.out
                .write_event(Event::Text(BytesText::from_escaped(ws)))?;
        }
        self.out.write_event(ev)?;
        Ok(())
    }

    /// Writes held-back leaf content unchanged.
    fn release_capture(&mut self) -> Result<(), XmlError> {
        if let Some(cap) = self.capture.take() {
            for e in cap.events {
                self.emit(e)?;
            }
        }
        Ok(())
    }

    fn on_start(&mut self, e: BytesStart, empty: bool) -> Result<(), XmlError> {
        // An element inside a captured leaf: it was not a leaf after all.
        self.release_capture()?;
        let action = self.classify(&e).map_err(|b| self.bad(b))?;
        if !matches!(action, Action::Drop) {
            if let Some(parent) = self.stack.last_mut() {
                parent.child_ws = self.pending_ws.clone();
            }
        }
        let name = tag::name(&e).to_owned();
        match action {
            Action::Drop => {
                self.pending_ws = None;
                if !empty {
                    self.skip = Some(Skip {
                        depth: 1,
                        replacement: None,
                    });
                }
            }
            Action::ReplaceText(start, text) => {
                self.emit(Event::Start(start))?;
                let text_ev = Event::Text(BytesText::from_escaped(partial_escape(text.as_str())));
                if empty {
                    self.emit(text_ev)?;
                    self.emit(Event::End(BytesEnd::new(name)))?;
                } else {
                    self.skip = Some(Skip {
                        depth: 1,
                        replacement: Some(text),
                    });
                }
            }
            Action::Capture(start, kind) if !empty => {
                self.emit(Event::Start(start))?;
                self.push(name);
                self.capture = Some(Capture {
                    kind,
                    depth: self.stack.len(),
                    events: Vec::new(),
                    text: String::new(),
                });
            }
            Action::DeferMetadata(start) if !empty => {
                // Whitespace before <metadata> goes with it.
                let mut held = Vec::new();
                if let Some(ws) = self.pending_ws.take() {
                    held.push(Event::Text(BytesText::from_escaped(ws)));
                }
                held.push(Event::Start(start));
                self.metadata = Some(held);
                self.push(name);
            }
            Action::Keep(start) | Action::Capture(start, _) | Action::DeferMetadata(start) => {
                if empty {
                    if self.needs_children_on_empty(&name) {
                        // `<interface type='user'/>` still needs its <mac>.
                        self.emit(Event::Start(start))?;
                        self.push(name.clone());
                        self.finish_element()?;
                        self.stack.pop();
                        self.emit(Event::End(BytesEnd::new(name.clone())))?;
                    } else {
                        self.emit(Event::Empty(start))?;
                    }
                    self.after_empty(&name);
                } else {
                    self.emit(Event::Start(start))?;
                    self.push(name);
                }
            }
        }
        Ok(())
    }

    fn push(&mut self, name: String) {
        self.stack.push(Frame {
            name,
            child_ws: None,
        });
    }

    fn on_end(&mut self, end: BytesEnd) -> Result<(), XmlError> {
        if let Some(cap) = self.capture.take_if(|c| c.depth == self.stack.len()) {
            self.finish_capture(cap)?;
        }
        if self.at(&["domain", "metadata"]) && self.metadata.is_some() {
            // Nothing in <metadata> was kept: leave it out entirely.
            self.metadata = None;
            self.pending_ws = None;
            self.stack.pop();
            return Ok(());
        }
        self.finish_element()?;
        self.stack.pop();
        self.emit(Event::End(end))
    }

    fn finish_capture(&mut self, cap: Capture) -> Result<(), XmlError> {
        let value = cap.text.trim();
        let replacement = match cap.kind {
            CaptureKind::Sysinfo if value.eq_ignore_ascii_case(&self.old_uuid) => {
                Some(self.edits.new_uuid.to_owned())
            }
            // An empty <genid/> asks libvirt to generate one: keep it so.
            CaptureKind::Genid if !value.is_empty() => Some(random_uuid()),
            _ => None,
        };
        match replacement {
            Some(text) => self.emit(Event::Text(BytesText::from_escaped(partial_escape(text)))),
            None => {
                for e in cap.events {
                    self.emit(e)?;
                }
                Ok(())
            }
        }
    }

    /// Whether an empty element must be opened up to add children.
    fn needs_children_on_empty(&self, name: &str) -> bool {
        if !self.at(&["domain", "devices"]) {
            return false;
        }
        match name {
            "interface" => true,
            "disk" => self.disk.as_ref().is_some_and(|d| d.new.is_some()),
            _ => false,
        }
    }

    /// Bookkeeping after an empty element (which has no end event).
    fn after_empty(&mut self, name: &str) {
        if self.at(&["domain", "devices"]) {
            match name {
                "disk" => self.disk = None,
                "interface" => self.iface = None,
                _ => self.chardev = None,
            }
        }
    }

    /// Adds missing children before the end tag of the current element.
    fn finish_element(&mut self) -> Result<(), XmlError> {
        let mut add: Vec<BytesStart<'static>> = Vec::new();
        if self.at(&["domain", "devices", "interface"]) {
            if let Some(iface) = self.iface.take() {
                if !iface.seen_mac {
                    let mac = self.edits.macs[iface.index].as_str();
                    add.push(tag::empty_element("mac", &[("address", mac)], self.quote));
                }
            }
        } else if self.at(&["domain", "devices", "disk"]) {
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
                    let attrs = target_attrs(&new.target).map_err(|b| self.bad(b))?;
                    let attrs: Vec<(&str, &str)> =
                        attrs.iter().map(|(k, v)| (*k, v.as_str())).collect();
                    add.push(tag::empty_element("source", &attrs, self.quote));
                }
            }
        } else if self.stack.len() == 3 && self.under(&["domain", "devices"]) {
            self.chardev = None;
        } else if self.at(&["domain", "os", "nvram"]) {
            self.nvram_is_file = false;
        }
        if add.is_empty() {
            return Ok(());
        }
        // Indent like the element's other children; keep the whitespace
        // before the end tag where it was.
        let before_end = self.pending_ws.take();
        let frame = self.stack.last();
        let indent = frame
            .and_then(|f| f.child_ws.clone())
            .or_else(|| before_end.as_ref().map(|ws| format!("{ws}  ")))
            .unwrap_or_default();
        for el in add {
            self.pending_ws = Some(indent.clone()).filter(|s| !s.is_empty());
            self.emit(Event::Empty(el))?;
        }
        self.pending_ws = before_end;
        Ok(())
    }

    /// Decides what happens to an element that starts here.
    fn classify(&mut self, e: &BytesStart) -> Result<Action, Bad> {
        tag::check_attrs(e)?;
        let name = tag::name(e);
        let keep = || Ok(Action::Keep(e.to_owned().into_owned()));
        let edits = self.edits;

        if self.stack.is_empty() {
            // <domain>: the quote style for added attributes, and no id.
            if let Some(q) = e.attributes_raw().chars().find(|&c| c == '\'' || c == '"') {
                self.quote = q;
            }
            return Ok(Action::Keep(tag::edit(
                e,
                &[Edit::Remove("id")],
                self.quote,
            )?));
        }

        if self.at(&["domain"]) {
            return match name {
                "name" => Ok(Action::ReplaceText(
                    e.to_owned().into_owned(),
                    edits.new_name.to_owned(),
                )),
                "uuid" => Ok(Action::ReplaceText(
                    e.to_owned().into_owned(),
                    edits.new_uuid.to_owned(),
                )),
                "title" => Ok(Action::Drop),
                "metadata" => Ok(Action::DeferMetadata(e.to_owned().into_owned())),
                "genid" => Ok(Action::Capture(
                    e.to_owned().into_owned(),
                    CaptureKind::Genid,
                )),
                "vcpu" => match edits.vcpus {
                    Some(n) => {
                        let current =
                            attr(e, "current")?.and_then(|c| c.trim().parse::<u64>().ok());
                        let start = match current {
                            Some(c) if c > u64::from(n) => {
                                tag::edit(e, &[Edit::Remove("current")], self.quote)?
                            }
                            _ => e.to_owned().into_owned(),
                        };
                        Ok(Action::ReplaceText(start, n.to_string()))
                    }
                    None => keep(),
                },
                // Per-vcpu settings describe the old count; libvirt fills in defaults.
                "vcpus" if self.vcpus_change.is_some() => Ok(Action::Drop),
                "memory" | "currentMemory" => match edits.memory_kib {
                    Some(kib) => {
                        let start = match attr(e, "unit")?.as_deref() {
                            None | Some("KiB") => e.to_owned().into_owned(),
                            Some(_) => tag::edit(e, &[Edit::Set("unit", "KiB")], self.quote)?,
                        };
                        Ok(Action::ReplaceText(start, kib.to_string()))
                    }
                    None => keep(),
                },
                _ => keep(),
            };
        }

        if self.at(&["domain", "metadata"]) {
            let (ns, local) = self.reader.resolver().resolve_element(e.name());
            let ours = matches!(ns, ResolveResult::Bound(Namespace(n)) if n == METADATA_NS);
            if ours && local.into_inner() == TEMPLATE_LOCAL_NAME {
                // A clone of a template is a normal VM.
                return Ok(Action::Drop);
            }
            return keep();
        }

        if self.under(&["domain", "sysinfo"]) {
            return Ok(Action::Capture(
                e.to_owned().into_owned(),
                CaptureKind::Sysinfo,
            ));
        }

        if self.at(&["domain", "cpu"]) && name == "topology" {
            if let Some(n) = edits.vcpus {
                return Ok(Action::Keep(topology(e, n, self.quote)?));
            }
            return keep();
        }

        if self.at(&["domain", "os"]) && name == "nvram" {
            let kind = attr(e, "type")?;
            self.nvram_is_file = kind.as_deref() == Some("file");
            return match (edits.nvram, kind) {
                (Some(path), None) => Ok(Action::ReplaceText(
                    e.to_owned().into_owned(),
                    path_str(path)?,
                )),
                _ => keep(),
            };
        }
        if self.at(&["domain", "os", "nvram"]) && name == "source" && self.nvram_is_file {
            if let Some(path) = edits.nvram {
                let path = path_str(path)?;
                return Ok(Action::Keep(tag::edit(
                    e,
                    &[Edit::Set("file", &path)],
                    self.quote,
                )?));
            }
            return keep();
        }

        if self.at(&["domain", "devices"]) {
            return match name {
                "disk" => {
                    let index = self.disk_index;
                    self.disk_index += 1;
                    let new = edits.disks.get(index).and_then(Option::as_ref);
                    self.disk = Some(DiskState {
                        new,
                        seen_source: false,
                        seen_driver: false,
                    });
                    match new {
                        Some(n) => Ok(Action::Keep(tag::edit(
                            e,
                            &[Edit::Set("type", target_kind(&n.target))],
                            self.quote,
                        )?)),
                        None => keep(),
                    }
                }
                "interface" => {
                    let index = self.iface_index;
                    self.iface_index += 1;
                    self.iface = Some(IfaceState {
                        index,
                        seen_mac: false,
                    });
                    keep()
                }
                "graphics" => Ok(Action::Keep(graphics(e, self.quote)?)),
                "serial" | "console" | "channel" | "parallel" => {
                    self.chardev = Some(ChardevState {
                        element: name.to_owned(),
                        kind: attr(e, "type")?.unwrap_or_default(),
                    });
                    keep()
                }
                _ => keep(),
            };
        }

        if self.at(&["domain", "devices", "disk"]) {
            let Some(disk) = &mut self.disk else {
                return keep();
            };
            let Some(new) = disk.new else {
                return keep();
            };
            return match name {
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
                    Ok(Action::Keep(tag::edit(e, &ed, self.quote)?))
                }
                "driver" => {
                    disk.seen_driver = true;
                    match &new.driver_type {
                        Some(t) => Ok(Action::Keep(tag::edit(
                            e,
                            &[Edit::Set("type", t)],
                            self.quote,
                        )?)),
                        None => keep(),
                    }
                }
                // The overlay's chain is probed anew by libvirt.
                "backingStore" if new.overlay => Ok(Action::Drop),
                _ => keep(),
            };
        }

        if self.at(&["domain", "devices", "vsock"]) && name == "cid" {
            return Ok(Action::Keep(vsock_cid(e, self.quote)?));
        }

        if self.at(&["domain", "devices", "interface"]) {
            return match name {
                "mac" => {
                    let Some(iface) = &mut self.iface else {
                        return keep();
                    };
                    iface.seen_mac = true;
                    let mac = edits.macs[iface.index].as_str();
                    Ok(Action::Keep(tag::edit(
                        e,
                        &[Edit::Set("address", mac)],
                        self.quote,
                    )?))
                }
                // The host-side tap device name belongs to the source VM.
                "target" => Ok(Action::Drop),
                _ => keep(),
            };
        }

        if let Some(chr) = &self.chardev {
            if self.stack.len() == 3 && self.under(&["domain", "devices"]) {
                return Ok(match self.chardev_child(e, name, chr)? {
                    Some(start) => Action::Keep(start),
                    None => Action::Keep(e.to_owned().into_owned()),
                });
            }
        }
        keep()
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
    ) -> Result<Option<BytesStart<'static>>, Bad> {
        let (key, renamable) = match name {
            "source" => ("path", matches!(chr.kind.as_str(), "file" | "unix")),
            "log" => ("file", true),
            _ => return Ok(None),
        };
        let Some(path) = attr(e, key)? else {
            return Ok(None);
        };
        if name == "source"
            && chr.element == "channel"
            && chr.kind == "unix"
            && is_generated_socket(&path)
        {
            // libvirt makes a fresh socket path for the clone when it starts.
            return Ok(Some(tag::edit(e, &[Edit::Remove("path")], self.quote)?));
        }
        if renamable {
            if let Some(new) = rename_in_file_name(&path, &self.old_name, self.edits.new_name) {
                return Ok(Some(tag::edit(e, &[Edit::Set(key, &new)], self.quote)?));
            }
        }
        Ok(None)
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
fn vsock_cid(e: &BytesStart, quote: char) -> Result<BytesStart<'static>, Bad> {
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
fn graphics(e: &BytesStart, quote: char) -> Result<BytesStart<'static>, Bad> {
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
fn topology(e: &BytesStart, n: u32, quote: char) -> Result<BytesStart<'static>, Bad> {
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
fn target_attrs(t: &DiskTarget) -> Result<Vec<(&'static str, String)>, Bad> {
    Ok(match t {
        DiskTarget::File(p) => vec![("file", path_str(p)?)],
        DiskTarget::Block(p) => vec![("dev", path_str(p)?)],
        DiskTarget::Volume { pool, volume } => {
            vec![("pool", pool.clone()), ("volume", volume.clone())]
        }
    })
}

/// A path for the XML, which can only hold UTF-8.
fn path_str(p: &Path) -> Result<String, Bad> {
    p.to_str()
        .map(str::to_owned)
        .ok_or_else(|| Bad::Msg(format!("the path {p:?} is not valid UTF-8")))
}
