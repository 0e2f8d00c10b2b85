//! The streaming machinery of the rewrite: events go from a quick-xml reader
//! to a writer exactly as read, unless the rules (`rules.rs`) decide to drop
//! an element, replace its text, hold it back, or add children to it.

use quick_xml::escape::partial_escape;
use quick_xml::events::{BytesEnd, BytesStart, BytesText, Event};
use quick_xml::{NsReader, Writer};

use super::super::tag::{self, TagError};
use super::super::XmlError;
use super::rules::{CaptureKind, Decision, Rules, Start};

pub(super) struct Rewriter<'x, 'e> {
    reader: NsReader<&'x [u8]>,
    /// The source, for what quick-xml does not hand over as written.
    xml: &'x str,
    out: Writer<Vec<u8>>,
    rules: Rules<'e>,
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
    /// The last event read was a reference (`&quot;`).
    after_ref: bool,
}

struct Frame {
    name: String,
    /// Whitespace before the latest child element: the indentation to use
    /// for children we add.
    child_ws: Option<String>,
}

impl AsRef<str> for Frame {
    fn as_ref(&self) -> &str {
        &self.name
    }
}

struct Skip {
    /// Open elements inside the skipped one, itself included.
    depth: usize,
    /// Text written instead of the skipped content, with the end tag.
    replacement: Option<String>,
}

struct Capture {
    kind: CaptureKind,
    /// Stack depth of the captured element.
    depth: usize,
    events: Vec<Event<'static>>,
    text: String,
}

impl<'x, 'e> Rewriter<'x, 'e> {
    pub(super) fn new(xml: &'x str, rules: Rules<'e>) -> Self {
        // quick-xml skips a byte order mark and counts positions after it:
        // set it aside so end tags are read from the right bytes, and write
        // it back first.
        let (bom, xml) = match xml.strip_prefix('\u{feff}') {
            Some(rest) => ("\u{feff}", rest),
            None => ("", xml),
        };
        let mut out = Vec::with_capacity(bom.len() + xml.len() + 256);
        out.extend_from_slice(bom.as_bytes());
        Rewriter {
            reader: NsReader::from_str(xml),
            xml,
            out: Writer::new(out),
            rules,
            stack: Vec::new(),
            pending_ws: None,
            skip: None,
            capture: None,
            metadata: None,
            after_ref: false,
        }
    }

    /// Streams the whole document; returns the written bytes.
    pub(super) fn run(mut self) -> Result<Vec<u8>, XmlError> {
        loop {
            let ev = self.read()?;
            let after_ref =
                std::mem::replace(&mut self.after_ref, matches!(ev, Event::GeneralRef(_)));
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
                | Event::PI(_)) => self.on_content(ev, after_ref)?,
                ev => self.emit(ev)?,
            }
        }
        if let Some(ws) = self.pending_ws.take() {
            self.out
                .write_event(Event::Text(BytesText::from_escaped(ws)))?;
        }
        self.rules.finish()?;
        Ok(self.out.into_inner())
    }

    /// The next event; end tags as written, since quick-xml trims the
    /// whitespace in `</disk >`.
    fn read(&mut self) -> Result<Event<'x>, XmlError> {
        let start = self.reader.buffer_position() as usize;
        match self.reader.read_event().map_err(|e| self.bad(e.into()))? {
            Event::End(_) => {
                let end = self.reader.buffer_position() as usize;
                Ok(Event::End(BytesEnd::new(&self.xml[start + 2..end - 1])))
            }
            ev => Ok(ev),
        }
    }

    fn bad(&self, e: TagError) -> XmlError {
        tag::malformed(&self.reader, e)
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
                return Err(self.bad(TagError::Msg("the document ends inside an element".into())))
            }
            _ => {}
        }
        Ok(())
    }

    /// Text, references, CDATA, comments, PIs; `after_ref`: the event before
    /// was a reference.
    fn on_content(&mut self, ev: Event, after_ref: bool) -> Result<(), XmlError> {
        if let Some(cap) = &mut self.capture {
            if cap.depth == self.stack.len() {
                tag::push_text(&mut cap.text, &ev).map_err(|b| tag::malformed(&self.reader, b))?;
                cap.events.push(ev.into_owned());
                return Ok(());
            }
        }
        if let Event::Text(t) = &ev {
            // Whitespace after a reference is the end of a text, not indentation.
            if !after_ref && t.chars().all(|c| matches!(c, ' ' | '\t' | '\r' | '\n')) {
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
        let start = Start {
            e: &e,
            is_template_marker: tag::is_template_marker(&self.reader, &e),
        };
        let decision = self
            .rules
            .on_start(&self.stack, start)
            .map_err(|b| self.bad(b))?;
        if !matches!(decision, Decision::Drop) {
            if let Some(parent) = self.stack.last_mut() {
                parent.child_ws = self.pending_ws.clone();
            }
        }
        let name = tag::name(&e).to_owned();
        match decision {
            Decision::Drop => {
                self.pending_ws = None;
                if !empty {
                    self.skip = Some(Skip {
                        depth: 1,
                        replacement: None,
                    });
                }
            }
            Decision::ReplaceText(start, text) => {
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
            Decision::Capture(start, kind) if !empty => {
                self.emit(Event::Start(start))?;
                self.push(name);
                self.capture = Some(Capture {
                    kind,
                    depth: self.stack.len(),
                    events: Vec::new(),
                    text: String::new(),
                });
            }
            Decision::DeferMetadata(start) if !empty => {
                // Whitespace before <metadata> goes with it.
                let mut held = Vec::new();
                if let Some(ws) = self.pending_ws.take() {
                    held.push(Event::Text(BytesText::from_escaped(ws)));
                }
                held.push(Event::Start(start));
                self.metadata = Some(held);
                self.push(name);
            }
            Decision::Keep(start)
            | Decision::Capture(start, _)
            | Decision::DeferMetadata(start) => {
                if !empty {
                    self.emit(Event::Start(start))?;
                    self.push(name);
                    return Ok(());
                }
                let open_up = self.rules.needs_children_on_empty(&self.stack, &name);
                if open_up {
                    self.emit(Event::Start(start))?;
                } else {
                    self.emit(Event::Empty(start))?;
                }
                self.push(name.clone());
                if open_up {
                    self.finish_element()?;
                } else {
                    self.rules.forget(&self.stack);
                }
                self.stack.pop();
                if open_up {
                    self.emit(Event::End(BytesEnd::new(name)))?;
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
            match self.rules.captured(cap.kind, &cap.text) {
                Some(text) => {
                    self.emit(Event::Text(BytesText::from_escaped(partial_escape(text))))?
                }
                None => {
                    for e in cap.events {
                        self.emit(e)?;
                    }
                }
            }
        }
        if tag::at(&self.stack, &["domain", "metadata"]) && self.metadata.is_some() {
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

    /// Adds the children the rules ask for before the end tag of the
    /// current element, indented like its other children; the whitespace
    /// before the end tag stays where it was.
    fn finish_element(&mut self) -> Result<(), XmlError> {
        let add = self
            .rules
            .missing_children(&self.stack)
            .map_err(|b| self.bad(b))?;
        if add.is_empty() {
            return Ok(());
        }
        let before_end = self.pending_ws.take();
        let indent = self
            .stack
            .last()
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
}
