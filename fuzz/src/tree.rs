//! An XML document as a tree of raw slices, read with `xmlparser` (not
//! quick-xml, which the code under test uses): every node keeps the exact
//! bytes it was written with, so two documents can be compared byte for byte.
//! Nodes live in one arena, so neither building nor dropping a deeply nested
//! document recurses.

use std::ops::Range;

use xmlparser::{ElementEnd, Token, Tokenizer};

pub struct Tree<'a> {
    pub nodes: Vec<Node<'a>>,
    /// Prolog, root element and epilog, in order.
    pub top: Vec<usize>,
}

pub enum Node<'a> {
    Element(Element<'a>),
    /// Character data as written, references unresolved.
    Text(&'a str),
    /// A comment, CDATA section, processing instruction, XML declaration,
    /// DOCTYPE or byte order mark, as written.
    Other(&'a str),
}

pub struct Element<'a> {
    /// The name as written, with its prefix.
    pub qname: &'a str,
    /// Position among all elements in document order.
    pub ordinal: usize,
    pub attrs: Vec<Attr<'a>>,
    /// Whitespace between the last attribute (or the name) and `>` or `/>`.
    pub tail: &'a str,
    /// Written as `<x/>`.
    pub empty: bool,
    pub children: Vec<usize>,
    /// The end tag as written (`</x >`); empty for `<x/>`.
    pub end: &'a str,
}

pub struct Attr<'a> {
    /// Whitespace before the name.
    pub lead: &'a str,
    pub qname: &'a str,
    /// `name = 'value'` as written.
    pub raw: &'a str,
    pub quote: char,
    /// The value between the quotes, references unresolved.
    pub value: &'a str,
}

impl Attr<'_> {
    /// The value with references resolved and whitespace normalised, as an
    /// XML processor reports it.
    pub fn text(&self) -> Option<String> {
        unescape(self.value, true)
    }
}

impl<'a> Tree<'a> {
    /// Reads a document; None if xmlparser cannot read it as XML.
    pub fn parse(src: &'a str) -> Option<Tree<'a>> {
        let mut t = Tree {
            nodes: Vec::new(),
            top: Vec::new(),
        };
        // A byte order mark is no token, but its bytes count too.
        let src = match src.strip_prefix('\u{feff}') {
            Some(rest) => {
                t.add(&[], Node::Other(&src[..3]));
                rest
            }
            None => src,
        };
        let mut open: Vec<usize> = Vec::new();
        let mut dtd_start: Option<usize> = None;
        let mut ordinal = 0;
        // End of the last token of the current start tag.
        let mut tag_pos = 0;
        // End of the last token: xmlparser reports no whitespace outside the
        // root, so the gaps between top-level nodes become texts here.
        let mut pos = 0;
        for token in Tokenizer::from(src) {
            let token = token.ok()?;
            let span = span_of(&token);
            if open.is_empty() && dtd_start.is_none() && span.start > pos {
                t.add(&open, Node::Text(&src[pos..span.start]));
            }
            pos = span.end;
            let other = match token {
                Token::Declaration { span, .. }
                | Token::ProcessingInstruction { span, .. }
                | Token::Comment { span, .. }
                | Token::Cdata { span, .. }
                | Token::EmptyDtd { span, .. } => Some(Node::Other(span.as_str())),
                Token::DtdStart { span, .. } => {
                    dtd_start = Some(span.start());
                    None
                }
                Token::EntityDeclaration { .. } => None,
                Token::DtdEnd { span } => Some(Node::Other(&src[dtd_start.take()?..span.end()])),
                Token::Text { text } => Some(Node::Text(text.as_str())),
                Token::ElementStart {
                    prefix,
                    local,
                    span,
                } => {
                    let qname = if prefix.is_empty() {
                        local.as_str()
                    } else {
                        &src[prefix.start()..local.end()]
                    };
                    t.add(
                        &open,
                        Node::Element(Element {
                            qname,
                            ordinal,
                            attrs: Vec::new(),
                            tail: "",
                            empty: false,
                            children: Vec::new(),
                            end: "",
                        }),
                    );
                    ordinal += 1;
                    open.push(t.nodes.len() - 1);
                    tag_pos = span.end();
                    None
                }
                Token::Attribute {
                    prefix,
                    local,
                    value,
                    span,
                } => {
                    let el = t.element_mut(*open.last()?)?;
                    let qname = if prefix.is_empty() {
                        local.as_str()
                    } else {
                        &src[prefix.start()..local.end()]
                    };
                    el.attrs.push(Attr {
                        lead: &src[tag_pos..span.start()],
                        qname,
                        raw: span.as_str(),
                        quote: src[..value.start()].chars().next_back()?,
                        value: value.as_str(),
                    });
                    tag_pos = span.end();
                    None
                }
                Token::ElementEnd { end, span } => {
                    match end {
                        ElementEnd::Open => {
                            let el = t.element_mut(*open.last()?)?;
                            el.tail = &src[tag_pos..span.start()];
                        }
                        ElementEnd::Empty => {
                            let el = t.element_mut(open.pop()?)?;
                            el.tail = &src[tag_pos..span.start()];
                            el.empty = true;
                        }
                        ElementEnd::Close(prefix, local) => {
                            let el = t.element_mut(open.pop()?)?;
                            let name = if prefix.is_empty() {
                                local.as_str()
                            } else {
                                &src[prefix.start()..local.end()]
                            };
                            if name != el.qname {
                                return None;
                            }
                            el.end = span.as_str();
                        }
                    }
                    None
                }
            };
            if let Some(node) = other {
                t.add(&open, node);
            }
        }
        if pos < src.len() {
            t.add(&open, Node::Text(&src[pos..]));
        }
        open.is_empty().then_some(t)
    }

    fn add(&mut self, open: &[usize], node: Node<'a>) {
        let id = self.nodes.len();
        self.nodes.push(node);
        match open.last() {
            Some(&parent) => {
                if let Node::Element(p) = &mut self.nodes[parent] {
                    p.children.push(id);
                }
            }
            None => self.top.push(id),
        }
    }

    fn element_mut(&mut self, id: usize) -> Option<&mut Element<'a>> {
        match &mut self.nodes[id] {
            Node::Element(e) => Some(e),
            _ => None,
        }
    }

    pub fn element(&self, id: usize) -> Option<&Element<'a>> {
        match &self.nodes[id] {
            Node::Element(e) => Some(e),
            _ => None,
        }
    }

    /// The root element.
    pub fn root(&self) -> Option<usize> {
        self.top
            .iter()
            .copied()
            .find(|&i| self.element(i).is_some())
    }

    /// Child elements of `id` named `qname`.
    pub fn children_named<'t>(
        &'t self,
        id: usize,
        qname: &'t str,
    ) -> impl Iterator<Item = usize> + 't {
        let kids = self.element(id).map_or(&[][..], |e| &e.children[..]);
        kids.iter()
            .copied()
            .filter(move |&c| self.element(c).is_some_and(|e| e.qname == qname))
    }

    /// Whether `id` has element children.
    pub fn has_child_elements(&self, id: usize) -> bool {
        self.element(id)
            .is_some_and(|e| e.children.iter().any(|&c| self.element(c).is_some()))
    }

    /// The character data directly inside `id` (text and CDATA, references
    /// resolved); None if a reference cannot be resolved.
    pub fn text_of(&self, id: usize) -> Option<String> {
        let mut s = String::new();
        for &c in self.element(id).map_or(&[][..], |e| &e.children[..]) {
            match &self.nodes[c] {
                Node::Text(t) => s.push_str(&unescape(t, false)?),
                Node::Other(o) if o.starts_with("<![CDATA[") => {
                    s.push_str(&o[9..o.len() - 3]);
                }
                _ => {}
            }
        }
        Some(s)
    }
}

fn span_of(token: &Token) -> Range<usize> {
    match token {
        Token::Declaration { span, .. }
        | Token::ProcessingInstruction { span, .. }
        | Token::Comment { span, .. }
        | Token::DtdStart { span, .. }
        | Token::EmptyDtd { span, .. }
        | Token::EntityDeclaration { span, .. }
        | Token::DtdEnd { span }
        | Token::ElementStart { span, .. }
        | Token::Attribute { span, .. }
        | Token::ElementEnd { span, .. }
        | Token::Cdata { span, .. }
        | Token::Text { text: span } => span.range(),
    }
}

/// Resolves the predefined entities and character references of XML; in an
/// attribute value, whitespace characters become spaces (XML 1.0 §3.3.3).
pub fn unescape(raw: &str, attribute: bool) -> Option<String> {
    let mut out = String::with_capacity(raw.len());
    let mut rest = raw;
    while let Some(i) = rest.find(|c| c == '&' || (attribute && matches!(c, '\t' | '\n' | '\r'))) {
        out.push_str(&rest[..i]);
        if rest.as_bytes()[i] != b'&' {
            // "\r\n" is one line break, normalised to one space.
            let skip = if rest[i..].starts_with("\r\n") { 2 } else { 1 };
            out.push(' ');
            rest = &rest[i + skip..];
            continue;
        }
        let end = i + rest[i..].find(';')?;
        let name = &rest[i + 1..end];
        let c = match name {
            "lt" => '<',
            "gt" => '>',
            "amp" => '&',
            "apos" => '\'',
            "quot" => '"',
            _ => {
                let code = if let Some(hex) = name.strip_prefix("#x") {
                    u32::from_str_radix(hex, 16).ok()?
                } else {
                    name.strip_prefix('#')?.parse().ok()?
                };
                char::from_u32(code)?
            }
        };
        out.push(c);
        rest = &rest[end + 1..];
    }
    out.push_str(rest);
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_every_byte_of_tags_and_attributes() {
        let src = "<?xml version='1.0'?>\n<a x = \"1\"\n  y='&lt;2' ><b/><!--c--><c  /></a >\n";
        let t = Tree::parse(src).unwrap();
        let a = t.element(t.root().unwrap()).unwrap();
        assert_eq!(a.qname, "a");
        assert_eq!(a.attrs[0].lead, " ");
        assert_eq!(a.attrs[0].raw, "x = \"1\"");
        assert_eq!(a.attrs[1].lead, "\n  ");
        assert_eq!(a.attrs[1].quote, '\'');
        assert_eq!(a.attrs[1].text().as_deref(), Some("<2"));
        assert_eq!(a.tail, " ");
        assert_eq!(a.end, "</a >");
        let c = t.element(a.children[2]).unwrap();
        assert!(c.empty);
        assert_eq!(c.tail, "  ");
        assert_eq!(t.top.len(), 4, "declaration, text, root, text");
    }

    #[test]
    fn a_byte_order_mark_is_a_node() {
        let t = Tree::parse("\u{feff}<a/>").unwrap();
        assert!(matches!(t.nodes[t.top[0]], Node::Other("\u{feff}")));
        assert_eq!(t.element(t.root().unwrap()).unwrap().qname, "a");
    }

    #[test]
    fn unescapes_like_an_xml_processor() {
        assert_eq!(unescape("a&amp;b&#x41;&#66;", false).unwrap(), "a&bAB");
        assert_eq!(unescape("a\tb\r\nc", true).unwrap(), "a b c");
        assert_eq!(unescape("a\tb", false).unwrap(), "a\tb");
        assert!(unescape("&bogus;", false).is_none());
        assert!(unescape("&amp", false).is_none());
    }

    #[test]
    fn mismatched_end_tags_are_not_a_tree() {
        assert!(Tree::parse("<a><b></a></b>").is_none());
        assert!(Tree::parse("<a>").is_none());
    }
}
