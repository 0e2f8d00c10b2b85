//! Small helpers over quick-xml events: reading attribute values and text,
//! and editing a start tag in place so that every attribute we do not touch
//! keeps its exact bytes, quote style and spacing.

use quick_xml::escape::resolve_predefined_entity;
use quick_xml::events::{BytesRef, BytesStart, Event};
use quick_xml::name::{Namespace, ResolveResult};
use quick_xml::{NsReader, XmlVersion};

use super::{XmlError, METADATA_NS, TEMPLATE_LOCAL_NAME};

/// A problem found while looking inside an event; the reader adds the position.
#[derive(Debug)]
pub(super) enum TagError {
    Xml(quick_xml::Error),
    Msg(String),
}

impl From<quick_xml::Error> for TagError {
    fn from(e: quick_xml::Error) -> Self {
        TagError::Xml(e)
    }
}

impl From<quick_xml::events::attributes::AttrError> for TagError {
    fn from(e: quick_xml::events::attributes::AttrError) -> Self {
        TagError::Xml(e.into())
    }
}

impl std::fmt::Display for TagError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TagError::Xml(e) => e.fmt(f),
            TagError::Msg(m) => f.write_str(m),
        }
    }
}

/// The error for a problem found at the reader's current position.
pub(super) fn malformed(reader: &NsReader<&[u8]>, e: TagError) -> XmlError {
    XmlError::Malformed {
        position: reader.buffer_position(),
        message: e.to_string(),
    }
}

/// Whether the open elements `stack` (root first) are exactly `path`.
pub(super) fn at<S: AsRef<str>>(stack: &[S], path: &[&str]) -> bool {
    stack.len() == path.len() && under(stack, path)
}

/// Whether the open elements `stack` (root first) are `path` or inside it.
pub(super) fn under<S: AsRef<str>>(stack: &[S], path: &[&str]) -> bool {
    stack.len() >= path.len() && stack.iter().zip(path).all(|(a, b)| a.as_ref() == *b)
}

/// Whether `e` is vmclone's template marker in `<metadata>` (by namespace,
/// whatever prefix the document binds to it).
pub(super) fn is_template_marker(reader: &NsReader<&[u8]>, e: &BytesStart) -> bool {
    let (ns, local) = reader.resolver().resolve_element(e.name());
    matches!(ns, ResolveResult::Bound(Namespace(n)) if n == METADATA_NS)
        && local.into_inner() == TEMPLATE_LOCAL_NAME
}

/// The qualified name of an element, as written (`disk`, `vmclone:template`).
pub(super) fn name<'a>(e: &'a BytesStart) -> &'a str {
    e.name().into_inner()
}

/// Checks every attribute of a tag (quotes, duplicates, entities).
pub(super) fn check_attrs(e: &BytesStart) -> Result<(), TagError> {
    for a in e.attributes() {
        a?.normalized_value(XmlVersion::Implicit1_0)?;
    }
    Ok(())
}

/// The value of attribute `key` with entities resolved.
pub(super) fn attr(e: &BytesStart, key: &str) -> Result<Option<String>, TagError> {
    match e.try_get_attribute(key)? {
        Some(a) => Ok(Some(
            a.normalized_value(XmlVersion::Implicit1_0)?.into_owned(),
        )),
        None => Ok(None),
    }
}

/// Appends the character data of a text, reference or CDATA event to `out`.
pub(super) fn push_text(out: &mut String, ev: &Event) -> Result<(), TagError> {
    match ev {
        Event::Text(t) => out.push_str(&t.xml10_content()),
        Event::CData(c) => out.push_str(&c.xml10_content()),
        Event::GeneralRef(r) => out.push_str(&resolve_ref(r)?),
        _ => {}
    }
    Ok(())
}

fn resolve_ref(r: &BytesRef) -> Result<String, TagError> {
    if let Some(c) = r.resolve_char_ref()? {
        return Ok(c.to_string());
    }
    resolve_predefined_entity(r)
        .map(str::to_owned)
        .ok_or_else(|| TagError::Msg(format!("unknown entity &{};", &**r)))
}

/// Escapes a value for an attribute quoted with `quote`. Tabs and line
/// breaks become character references so they survive attribute normalisation.
pub(super) fn escape_attr(value: &str, quote: char) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '"' if quote == '"' => out.push_str("&quot;"),
            '\'' if quote == '\'' => out.push_str("&apos;"),
            '\t' => out.push_str("&#9;"),
            '\n' => out.push_str("&#10;"),
            '\r' => out.push_str("&#13;"),
            c => out.push(c),
        }
    }
    out
}

/// An empty element `<name key='value' .../>` with escaped values.
pub(super) fn empty_element(
    name: &str,
    attrs: &[(&str, &str)],
    quote: char,
) -> BytesStart<'static> {
    let mut content = name.to_owned();
    for (k, v) in attrs {
        content.push_str(&format!(" {k}={quote}{}{quote}", escape_attr(v, quote)));
    }
    BytesStart::from_content(content, name.len())
}

/// One change to a start tag.
#[derive(Debug, Clone, Copy)]
pub(super) enum Edit<'a> {
    /// Replace the value (keeping its quotes), or append the attribute.
    Set(&'a str, &'a str),
    /// Remove the attribute and the whitespace before it, if present.
    Remove(&'a str),
}

/// Where one attribute sits in the tag content.
struct Span {
    /// Start of the whitespace before the key.
    lead: usize,
    key: (usize, usize),
    value: (usize, usize),
    quote: char,
    /// Just after the closing quote.
    end: usize,
}

/// Applies `edits` to a start tag. Only the edited attributes change; new
/// ones are appended after the last attribute, quoted like the tag's first
/// attribute (or with `default_quote`).
pub(super) fn edit(
    e: &BytesStart,
    edits: &[Edit],
    default_quote: char,
) -> Result<BytesStart<'static>, TagError> {
    check_attrs(e)?;
    let content: &str = e;
    let name_len = name(e).len();
    let spans = scan(content, name_len)?;
    let quote = spans.first().map_or(default_quote, |s| s.quote);
    let edit_for = |key: &str| {
        edits.iter().rev().find(|ed| match ed {
            Edit::Set(k, _) | Edit::Remove(k) => *k == key,
        })
    };

    let mut out = String::with_capacity(content.len() + 32);
    let mut cursor = 0;
    for s in &spans {
        match edit_for(&content[s.key.0..s.key.1]) {
            Some(Edit::Remove(_)) => {
                out.push_str(&content[cursor..s.lead]);
                cursor = s.end;
            }
            Some(Edit::Set(_, v)) => {
                out.push_str(&content[cursor..s.value.0]);
                out.push_str(&escape_attr(v, s.quote));
                cursor = s.value.1;
            }
            None => {}
        }
    }
    let tail = spans.last().map_or(name_len, |s| s.end);
    out.push_str(&content[cursor..tail]);
    for (i, ed) in edits.iter().enumerate() {
        if let Edit::Set(k, v) = ed {
            let present = spans.iter().any(|s| &content[s.key.0..s.key.1] == *k);
            let repeated = edits[i + 1..]
                .iter()
                .any(|later| matches!(later, Edit::Set(k2, _) if k2 == k));
            if !present && !repeated {
                out.push_str(&format!(" {k}={quote}{}{quote}", escape_attr(v, quote)));
            }
        }
    }
    out.push_str(&content[tail..]);
    Ok(BytesStart::from_content(out, name_len))
}

/// Finds the attribute spans of a tag whose attributes quick-xml has
/// already accepted (so the grammar is known to be right).
fn scan(content: &str, name_len: usize) -> Result<Vec<Span>, TagError> {
    let b = content.as_bytes();
    let ws = |c: u8| matches!(c, b' ' | b'\t' | b'\r' | b'\n');
    let bad = || TagError::Msg(format!("cannot read the attributes of <{content}>"));
    let mut spans = Vec::new();
    let mut i = name_len;
    loop {
        let lead = i;
        while i < b.len() && ws(b[i]) {
            i += 1;
        }
        if i == b.len() {
            return Ok(spans);
        }
        let key_start = i;
        while i < b.len() && !ws(b[i]) && b[i] != b'=' {
            i += 1;
        }
        let key = (key_start, i);
        while i < b.len() && ws(b[i]) {
            i += 1;
        }
        if b.get(i) != Some(&b'=') {
            return Err(bad());
        }
        i += 1;
        while i < b.len() && ws(b[i]) {
            i += 1;
        }
        let quote = match b.get(i) {
            Some(&q @ (b'\'' | b'"')) => q,
            _ => return Err(bad()),
        };
        let value_start = i + 1;
        let value_len = b[value_start..]
            .iter()
            .position(|&c| c == quote)
            .ok_or_else(bad)?;
        let value_end = value_start + value_len;
        i = value_end + 1;
        spans.push(Span {
            lead,
            key,
            value: (value_start, value_end),
            quote: char::from(quote),
            end: i,
        });
    }
}
