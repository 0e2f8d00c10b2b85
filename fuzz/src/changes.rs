//! An independent judge of a rewrite. It reads the source and the clone's XML
//! with other parsers than the code under test (xmlparser for the raw
//! tokens, roxmltree for namespaces), walks both trees side by side and
//! allows a difference only where README's "What a clone changes" lists one;
//! everything else must be the same bytes. Where the README names a value
//! (the new name, UUID, MACs, paths, `-1` ports, ...) the clone must hold
//! exactly that value.
//!
//! Formatting rules of the rewrite that the README leaves implicit: an element
//! that is left out takes the whitespace-only text just before it (its
//! indentation) along; an element added inside another (a `<mac>`, a disk's
//! `<driver>` or `<source>`) comes after the existing children, before the
//! whitespace ahead of the end tag, each after any whitespace; an empty
//! `<interface/>` or edited `<disk/>` is opened up to hold it.

use std::borrow::Cow;
use std::fmt::Write as _;

use vmclone_service::domain_xml::{CloneEdits, DiskTarget, NewDisk, METADATA_NS};

use crate::tree::{unescape, Attr, Element, Node, Tree};

/// Checks that `out` differs from `src` only as the README lists for `edits`.
pub fn check(src: &str, out: &str, edits: &CloneEdits) -> Result<(), String> {
    let a = Tree::parse(src).ok_or("the source is not XML xmlparser can read")?;
    let b = Tree::parse(out).ok_or("the clone's XML is not XML xmlparser can read")?;
    let doc = roxmltree::Document::parse_with_options(src, crate::strict_options())
        .map_err(|e| format!("the source is not well-formed: {e}"))?;
    let namespaces = doc
        .descendants()
        .filter(roxmltree::Node::is_element)
        .map(|n| n.tag_name().namespace().map(str::to_owned))
        .collect();
    let mut judge = Judge::new(&a, &b, edits, namespaces);
    judge.run()
}

/// What the source says about itself, read from the source tree.
struct Facts {
    old_name: String,
    old_uuid: String,
    old_vcpus: u32,
}

impl Facts {
    fn read(t: &Tree) -> Facts {
        let last_text = |name: &str| {
            t.root()
                .and_then(|r| t.children_named(r, name).last())
                .and_then(|n| t.text_of(n))
        };
        Facts {
            old_name: last_text("name").unwrap_or_default(),
            old_uuid: last_text("uuid").unwrap_or_default().trim().to_owned(),
            old_vcpus: last_text("vcpu")
                .and_then(|v| v.trim().parse().ok())
                .unwrap_or(1),
        }
    }
}

/// Where an element sits, as far as the rules care.
#[derive(Clone, Copy)]
enum Where<'e> {
    Top,
    Domain,
    Metadata,
    /// Inside a fixed sVirt `<seclabel>` made dynamic.
    DynamicSeclabel,
    Sysinfo,
    Os,
    /// Inside `<nvram type='file'>`, with the clone's NVRAM path.
    NvramFile(&'e str),
    Cpu,
    Devices,
    Disk(&'e NewDisk),
    Interface(usize),
    Chardev {
        unix_channel: bool,
        renamable_source: bool,
    },
    Vsock,
    Plain,
}

/// What may happen to one attribute.
#[derive(Clone)]
enum Change {
    Remove,
    /// Must hold this value afterwards (added if it was missing).
    Set(String),
    /// A file named after the VM may take the new name.
    MayRename,
    /// A socket path libvirt made may go (or take the new name).
    MayRemoveOrRename,
}

/// An element the rewrite adds.
struct Added {
    name: &'static str,
    attrs: Vec<(&'static str, String)>,
}

/// The rules for one element that is kept.
struct Rule<'e> {
    inner: Where<'e>,
    attrs: Vec<(&'static str, Change)>,
    /// The text the element's whole content is replaced by.
    text: Option<String>,
    /// `<x/>` may be written `<x>...</x>`.
    may_open: bool,
    adds: Vec<Added>,
}

impl<'e> Rule<'e> {
    fn same(inner: Where<'e>) -> Self {
        Rule {
            inner,
            attrs: Vec::new(),
            text: None,
            may_open: false,
            adds: Vec::new(),
        }
    }

    fn text(text: String) -> Self {
        Rule {
            text: Some(text),
            may_open: true,
            ..Rule::same(Where::Plain)
        }
    }
}

enum Fate<'e> {
    Keep(Rule<'e>),
    Drop,
}

/// One expected child in the clone.
enum Want<'t, 'e> {
    Text(Cow<'t, str>),
    Other(&'t str),
    /// A source element, its rule and its trail entry.
    Element(usize, Rule<'e>, usize),
}

struct Job<'e> {
    a: usize,
    b: usize,
    rule: Rule<'e>,
    /// Index into `Judge::trail`, for messages.
    at: usize,
}

struct Judge<'t, 'e> {
    a: &'t Tree<'t>,
    b: &'t Tree<'t>,
    edits: &'e CloneEdits<'e>,
    facts: Facts,
    /// Namespace of each source element, by ordinal.
    namespaces: Vec<Option<String>>,
    disk_index: usize,
    iface_index: usize,
    /// (parent, element name, sibling position) of every element visited.
    trail: Vec<(usize, &'t str, usize)>,
}

impl<'t, 'e> Judge<'t, 'e> {
    fn new(
        a: &'t Tree<'t>,
        b: &'t Tree<'t>,
        edits: &'e CloneEdits<'e>,
        namespaces: Vec<Option<String>>,
    ) -> Self {
        Judge {
            a,
            b,
            edits,
            facts: Facts::read(a),
            namespaces,
            disk_index: 0,
            iface_index: 0,
            trail: vec![(usize::MAX, "", 0)],
        }
    }

    fn run(&mut self) -> Result<(), String> {
        let mut jobs = Vec::new();
        self.children(
            &self.a.top,
            &self.b.top,
            Rule::same(Where::Top),
            0,
            &mut jobs,
        )?;
        while let Some(job) = jobs.pop() {
            self.element(job, &mut jobs)?;
        }
        Ok(())
    }

    /// "/domain/devices/disk[2]" for messages.
    fn path(&self, mut at: usize) -> String {
        let mut parts = Vec::new();
        while at != 0 && at != usize::MAX {
            let (parent, name, pos) = self.trail[at];
            parts.push(format!("{name}[{pos}]"));
            at = parent;
        }
        parts.reverse();
        format!("/{}", parts.join("/"))
    }

    fn element(&mut self, job: Job<'e>, jobs: &mut Vec<Job<'e>>) -> Result<(), String> {
        let (a, b) = (self.a.element(job.a), self.b.element(job.b));
        let (Some(a), Some(b)) = (a, b) else {
            return Err(format!("{}: not an element", self.path(job.at)));
        };
        let here = |what: String| format!("{}: {what}", self.path(job.at));
        if a.qname != b.qname {
            return Err(here(format!("became <{}>", b.qname)));
        }
        self.attrs(a, b, &job.rule.attrs).map_err(&here)?;
        if a.tail != b.tail {
            return Err(here(
                "whitespace at the end of the start tag changed".into(),
            ));
        }
        match (a.empty, b.empty) {
            (true, false) if job.rule.may_open && b.end == format!("</{}>", a.qname) => {}
            (true, false) if job.rule.may_open => {
                return Err(here(format!("opened with the end tag {:?}", b.end)))
            }
            (true, false) => return Err(here("an empty element was opened".into())),
            (false, true) => return Err(here("an element was closed up".into())),
            _ if a.end != b.end => return Err(here(format!("end tag became {:?}", b.end))),
            _ => {}
        }
        if let Some(text) = &job.rule.text {
            return self.replaced_text(b, text).map_err(here);
        }
        self.children(&a.children, &b.children, job.rule, job.at, jobs)
    }

    fn attrs(&self, a: &Element, b: &Element, changes: &[(&str, Change)]) -> Result<(), String> {
        let change = |name: &str| changes.iter().find(|(k, _)| *k == name).map(|(_, c)| c);
        let mut rest = b.attrs.iter().peekable();
        for at in &a.attrs {
            let c = change(at.qname);
            let next_is_it = rest.peek().is_some_and(|bt| bt.qname == at.qname);
            match c {
                Some(Change::Remove) => continue,
                Some(Change::MayRemoveOrRename) if !next_is_it => continue,
                _ => {}
            }
            let Some(bt) = rest.next() else {
                return Err(format!("attribute {} is missing", at.qname));
            };
            if bt.lead != at.lead || bt.qname != at.qname {
                return Err(format!("attribute {} became {:?}", at.raw, bt.raw));
            }
            if bt.raw == at.raw && !matches!(c, Some(Change::Set(_))) {
                continue;
            }
            let new = bt
                .text()
                .ok_or_else(|| format!("attribute {:?} cannot be read", bt.raw))?;
            let ok = match c {
                None | Some(Change::Remove) => false,
                Some(Change::Set(v)) => bt.quote == at.quote && new == *v,
                Some(Change::MayRename | Change::MayRemoveOrRename) => {
                    bt.quote == at.quote && self.renamed(at, &new)
                }
            };
            if !ok {
                return Err(format!("attribute {} became {}", at.raw, bt.raw));
            }
        }
        // What is left was added: exactly the Set attributes that were missing.
        let mut missing: Vec<(&str, &str)> = changes
            .iter()
            .filter_map(|(k, c)| match c {
                Change::Set(v) if !a.attrs.iter().any(|at| at.qname == *k) => {
                    Some((*k, v.as_str()))
                }
                _ => None,
            })
            .collect();
        for bt in rest {
            let new = bt.text().unwrap_or_default();
            let Some(i) = missing
                .iter()
                .position(|(k, v)| *k == bt.qname && *v == new)
            else {
                return Err(format!("attribute {} was added", bt.raw));
            };
            missing.remove(i);
        }
        match missing.first() {
            Some((k, v)) => Err(format!("attribute {k}={v:?} was not set")),
            None => Ok(()),
        }
    }

    /// The old value with the old VM name in its file name replaced by the
    /// new one.
    fn renamed(&self, old: &Attr, new: &str) -> bool {
        let Some(old) = old.text() else {
            return false;
        };
        let (old_name, new_name) = (self.facts.old_name.as_str(), self.edits.new_name);
        let cut = old.rfind('/').map_or(0, |i| i + 1);
        let (dir, base) = old.split_at(cut);
        !old_name.is_empty()
            && base.match_indices(old_name).any(|(p, _)| {
                let mut s = String::from(dir);
                let _ = write!(s, "{}{new_name}{}", &base[..p], &base[p + old_name.len()..]);
                s == new
            })
    }

    fn replaced_text(&self, b: &Element, want: &str) -> Result<(), String> {
        let got = match b.children.as_slice() {
            [] => String::new(),
            [one] => match &self.b.nodes[*one] {
                Node::Text(t) => unescape(t, false).ok_or("unreadable text")?,
                _ => return Err("content is not one text".into()),
            },
            _ => return Err("content is not one text".into()),
        };
        if got == want {
            Ok(())
        } else {
            Err(format!("text became {got:?}"))
        }
    }

    /// Compares the children of a kept element (or of the document).
    fn children(
        &mut self,
        a_kids: &'t [usize],
        b_kids: &'t [usize],
        rule: Rule<'e>,
        at: usize,
        jobs: &mut Vec<Job<'e>>,
    ) -> Result<(), String> {
        let mut want: Vec<Want<'t, 'e>> = Vec::new();
        // Whether the last wanted item is the source node just before this one.
        let mut last_is_previous = false;
        let mut elements = 0;
        for &c in a_kids {
            match &self.a.nodes[c] {
                Node::Text(t) => {
                    want.push(Want::Text(Cow::Borrowed(t)));
                    last_is_previous = true;
                }
                Node::Other(o) => {
                    want.push(Want::Other(o));
                    last_is_previous = true;
                }
                Node::Element(e) => {
                    elements += 1;
                    let fate = self.fate(rule.inner, c, e);
                    match fate {
                        Fate::Drop => {
                            if last_is_previous
                                && matches!(want.last(), Some(Want::Text(t)) if is_ws(t))
                            {
                                want.pop();
                            }
                            last_is_previous = false;
                        }
                        Fate::Keep(r) => {
                            self.trail.push((at, e.qname, elements));
                            want.push(Want::Element(c, r, self.trail.len() - 1));
                            last_is_previous = true;
                        }
                    }
                }
            }
        }
        // Added elements go before the whitespace ahead of the end tag.
        let split = match want.last() {
            Some(Want::Text(t)) if is_ws(t) && !rule.adds.is_empty() => want.len() - 1,
            _ => want.len(),
        };
        let after = want.split_off(split);
        let mut b = b_kids.iter().copied().peekable();
        let mut pairs = Vec::new();
        // The indentation of a first added element runs into a text before it.
        let open_end = !rule.adds.is_empty();
        self.expect(merge(want), open_end, &mut b, &mut pairs, at)?;
        for add in &rule.adds {
            if let Some(&n) = b.peek() {
                if matches!(&self.b.nodes[n], Node::Text(t) if is_ws(t)) {
                    b.next();
                }
            }
            let n = b
                .next()
                .ok_or_else(|| format!("{}: <{}> was not added", self.path(at), add.name))?;
            self.added(n, add)
                .map_err(|e| format!("{}: {e}", self.path(at)))?;
        }
        self.expect(merge(after), false, &mut b, &mut pairs, at)?;
        if let Some(n) = b.next() {
            return Err(format!(
                "{}: unexpected {}",
                self.path(at),
                self.describe_b(n)
            ));
        }
        jobs.extend(pairs.into_iter().rev());
        Ok(())
    }

    /// Matches the wanted items with the next nodes of `b`; with `open_end`, a
    /// last text may go on with whitespace.
    fn expect(
        &self,
        want: Vec<Want<'_, 'e>>,
        open_end: bool,
        b: &mut std::iter::Peekable<impl Iterator<Item = usize>>,
        pairs: &mut Vec<Job<'e>>,
        at: usize,
    ) -> Result<(), String> {
        let count = want.len();
        for (i, w) in want.into_iter().enumerate() {
            let n = b.next();
            let got = n.map(|n| (n, &self.b.nodes[n]));
            let last = open_end && i + 1 == count;
            match (w, got) {
                (Want::Text(t), Some((_, Node::Text(u)))) if t == *u => {}
                (Want::Text(t), Some((_, Node::Text(u))))
                    if last && u.strip_prefix(&*t).is_some_and(is_ws) => {}
                (Want::Other(o), Some((_, Node::Other(u)))) if o == *u => {}
                (Want::Element(a, rule, trail), Some((n, Node::Element(be))))
                    if self.a.element(a).is_some_and(|ae| ae.qname == be.qname) =>
                {
                    pairs.push(Job {
                        a,
                        b: n,
                        rule,
                        at: trail,
                    });
                }
                (Want::Text(t), got) => {
                    let got = got.map_or("nothing".into(), |(n, _)| self.describe_b(n));
                    return Err(format!("{}: text {t:?} became {got}", self.path(at)));
                }
                (Want::Other(o), got) => {
                    let got = got.map_or("nothing".into(), |(n, _)| self.describe_b(n));
                    return Err(format!("{}: {o:?} became {got}", self.path(at)));
                }
                (Want::Element(a, ..), got) => {
                    let got = got.map_or("nothing".into(), |(n, _)| self.describe_b(n));
                    let name = self.a.element(a).map_or("?", |e| e.qname);
                    return Err(format!("{}: <{name}> became {got}", self.path(at)));
                }
            }
        }
        Ok(())
    }

    fn describe_b(&self, n: usize) -> String {
        match &self.b.nodes[n] {
            Node::Element(e) => format!("<{}>", e.qname),
            Node::Text(t) => format!("text {t:?}"),
            Node::Other(o) => format!("{o:?}"),
        }
    }

    fn added(&self, n: usize, add: &Added) -> Result<(), String> {
        let Some(e) = self.b.element(n) else {
            return Err(format!(
                "{} instead of an added <{}>",
                self.describe_b(n),
                add.name
            ));
        };
        let attrs: Vec<(&str, String)> = e
            .attrs
            .iter()
            .map(|a| (a.qname, a.text().unwrap_or_default()))
            .collect();
        let want: Vec<(&str, String)> = add.attrs.iter().map(|(k, v)| (*k, v.clone())).collect();
        if e.qname != add.name || !e.empty || attrs != want {
            return Err(format!(
                "added <{}> {attrs:?}, want <{}> {want:?}",
                e.qname, add.name
            ));
        }
        Ok(())
    }

    /// What happens to source element `id` (`e`) inside `parent`.
    fn fate(&mut self, parent: Where<'e>, id: usize, e: &Element) -> Fate<'e> {
        let edits = self.edits;
        let name = e.qname;
        let attr = |k: &str| e.attrs.iter().find(|a| a.qname == k).and_then(Attr::text);
        let keep = Fate::Keep;
        match parent {
            Where::Top => keep(Rule {
                attrs: vec![("id", Change::Remove)],
                ..Rule::same(Where::Domain)
            }),
            Where::Domain => match name {
                "name" => keep(Rule::text(edits.new_name.into())),
                "uuid" => keep(Rule::text(edits.new_uuid.into())),
                "title" => Fate::Drop,
                "metadata" => {
                    let kept = e.children.iter().any(|&c| match &self.a.nodes[c] {
                        Node::Text(t) => !is_ws(t),
                        Node::Other(_) => true,
                        Node::Element(m) => !self.is_template(m),
                    });
                    if e.empty || kept {
                        keep(Rule::same(Where::Metadata))
                    } else {
                        Fate::Drop
                    }
                }
                "genid" => {
                    let value = self.a.text_of(id).unwrap_or_default();
                    if e.empty || self.a.has_child_elements(id) || value.trim().is_empty() {
                        keep(Rule::same(Where::Plain))
                    } else {
                        keep(Rule::text(edits.new_genid.into()))
                    }
                }
                // The new count is the current count too: `current` goes.
                "vcpu" => match edits.vcpus {
                    Some(n) => keep(Rule {
                        attrs: vec![("current", Change::Remove)],
                        ..Rule::text(n.to_string())
                    }),
                    None => keep(Rule::same(Where::Plain)),
                },
                // A fixed SELinux or AppArmor label becomes dynamic (one
                // without a model is taken as such); a fixed DAC label, only
                // the user QEMU runs as, stays.
                "seclabel"
                    if attr("type").as_deref() == Some("static")
                        && attr("model").as_deref() != Some("dac") =>
                {
                    keep(Rule {
                        attrs: vec![
                            ("type", Change::Set("dynamic".into())),
                            ("relabel", Change::Remove),
                        ],
                        ..Rule::same(Where::DynamicSeclabel)
                    })
                }
                "vcpus" if edits.vcpus.is_some_and(|n| n != self.facts.old_vcpus) => Fate::Drop,
                "memory" | "currentMemory" => match edits.memory_kib {
                    Some(kib) => {
                        let mut r = Rule::text(kib.to_string());
                        if attr("unit").is_some_and(|u| u != "KiB") {
                            r.attrs.push(("unit", Change::Set("KiB".into())));
                        }
                        keep(r)
                    }
                    None => keep(Rule::same(Where::Plain)),
                },
                "sysinfo" => keep(Rule::same(Where::Sysinfo)),
                "os" => keep(Rule::same(Where::Os)),
                "cpu" => keep(Rule::same(Where::Cpu)),
                "devices" => keep(Rule::same(Where::Devices)),
                _ => keep(Rule::same(Where::Plain)),
            },
            Where::Metadata if self.is_template(e) => Fate::Drop,
            // A dynamic label is libvirt's to choose.
            Where::DynamicSeclabel if matches!(name, "label" | "imagelabel") => Fate::Drop,
            Where::Sysinfo => {
                let value = self.a.text_of(id).unwrap_or_default();
                let old = &self.facts.old_uuid;
                if !e.empty
                    && !self.a.has_child_elements(id)
                    && value.trim().eq_ignore_ascii_case(old)
                {
                    keep(Rule::text(edits.new_uuid.into()))
                } else {
                    keep(Rule::same(Where::Sysinfo))
                }
            }
            Where::Os if name == "nvram" => match (edits.nvram, attr("type").as_deref()) {
                (Some(p), None) => keep(Rule::text(path(p))),
                (Some(p), Some("file")) => {
                    let p: &'e str = p.to_str().unwrap_or_default();
                    keep(Rule::same(Where::NvramFile(p)))
                }
                _ => keep(Rule::same(Where::Plain)),
            },
            Where::NvramFile(p) if name == "source" => keep(Rule {
                attrs: vec![("file", Change::Set(p.into()))],
                ..Rule::same(Where::Plain)
            }),
            Where::Cpu if name == "topology" => match edits.vcpus {
                Some(n) => keep(topology(n, &attr)),
                None => keep(Rule::same(Where::Plain)),
            },
            Where::Devices => self.device(name, e, &attr),
            Where::Disk(new) => match name {
                "source" => {
                    let set = target_attrs(&new.target);
                    let volume = matches!(new.target, DiskTarget::Volume { .. });
                    let mut attrs: Vec<(&'static str, Change)> =
                        ["file", "dev", "dir", "pool", "volume", "mode"]
                            .into_iter()
                            .filter(|k| !set.iter().any(|(s, _)| s == k))
                            .filter(|&k| !(volume && k == "mode"))
                            .map(|k| (k, Change::Remove))
                            .collect();
                    attrs.extend(set.into_iter().map(|(k, v)| (k, Change::Set(v))));
                    keep(Rule {
                        attrs,
                        ..Rule::same(Where::Plain)
                    })
                }
                "driver" => keep(Rule {
                    attrs: new
                        .driver_type
                        .iter()
                        .map(|t| ("type", Change::Set(t.clone())))
                        .collect(),
                    ..Rule::same(Where::Plain)
                }),
                "backingStore" if new.overlay => Fate::Drop,
                _ => keep(Rule::same(Where::Plain)),
            },
            Where::Interface(index) => match name {
                "mac" => keep(Rule {
                    attrs: vec![("address", Change::Set(edits.macs[index].clone()))],
                    ..Rule::same(Where::Plain)
                }),
                "target" => Fate::Drop,
                _ => keep(Rule::same(Where::Plain)),
            },
            Where::Chardev {
                unix_channel,
                renamable_source,
            } => match name {
                "source" => {
                    let generated = attr("path").is_some_and(|p| looks_generated(&p));
                    let change = if unix_channel && generated {
                        Some(Change::MayRemoveOrRename)
                    } else {
                        renamable_source.then_some(Change::MayRename)
                    };
                    keep(Rule {
                        attrs: change.into_iter().map(|c| ("path", c)).collect(),
                        ..Rule::same(Where::Plain)
                    })
                }
                "log" => keep(Rule {
                    attrs: vec![("file", Change::MayRename)],
                    ..Rule::same(Where::Plain)
                }),
                _ => keep(Rule::same(Where::Plain)),
            },
            Where::Vsock if name == "cid" && attr("auto").as_deref() != Some("yes") => keep(Rule {
                attrs: vec![
                    ("auto", Change::Set("yes".into())),
                    ("address", Change::Remove),
                ],
                ..Rule::same(Where::Plain)
            }),
            Where::Metadata
            | Where::DynamicSeclabel
            | Where::Os
            | Where::NvramFile(_)
            | Where::Cpu
            | Where::Vsock
            | Where::Plain => keep(Rule::same(Where::Plain)),
        }
    }

    /// A child of `<devices>`.
    fn device(
        &mut self,
        name: &str,
        e: &Element,
        attr: &dyn Fn(&str) -> Option<String>,
    ) -> Fate<'e> {
        let has = |child: &str| {
            e.children
                .iter()
                .any(|&c| self.a.element(c).is_some_and(|k| k.qname == child))
        };
        match name {
            "disk" => {
                let index = self.disk_index;
                self.disk_index += 1;
                let Some(Some(new)) = self.edits.disks.get(index) else {
                    return Fate::Keep(Rule::same(Where::Plain));
                };
                let mut adds = Vec::new();
                if let (false, Some(t)) = (has("driver"), &new.driver_type) {
                    adds.push(Added {
                        name: "driver",
                        attrs: vec![("name", "qemu".into()), ("type", t.clone())],
                    });
                }
                if !has("source") {
                    adds.push(Added {
                        name: "source",
                        attrs: target_attrs(&new.target),
                    });
                }
                Fate::Keep(Rule {
                    inner: Where::Disk(new),
                    attrs: vec![("type", Change::Set(target_kind(&new.target).into()))],
                    text: None,
                    may_open: true,
                    adds,
                })
            }
            "interface" => {
                let index = self.iface_index;
                self.iface_index += 1;
                let mut adds = Vec::new();
                if !has("mac") {
                    adds.push(Added {
                        name: "mac",
                        attrs: vec![("address", self.edits.macs[index].clone())],
                    });
                }
                Fate::Keep(Rule {
                    inner: Where::Interface(index),
                    attrs: Vec::new(),
                    text: None,
                    may_open: true,
                    adds,
                })
            }
            "graphics" => {
                let mut attrs = Vec::new();
                for key in ["port", "tlsPort", "websocket"] {
                    if attr(key).is_some_and(|v| v.trim() != "-1") {
                        attrs.push((key, Change::Set("-1".into())));
                    }
                }
                if !attrs.is_empty() {
                    attrs.push(("autoport", Change::Set("yes".into())));
                }
                Fate::Keep(Rule {
                    attrs,
                    ..Rule::same(Where::Plain)
                })
            }
            "serial" | "console" | "channel" | "parallel" => {
                let kind = attr("type").unwrap_or_default();
                Fate::Keep(Rule::same(Where::Chardev {
                    unix_channel: name == "channel" && kind == "unix",
                    renamable_source: matches!(kind.as_str(), "file" | "unix"),
                }))
            }
            "vsock" => Fate::Keep(Rule::same(Where::Vsock)),
            _ => Fate::Keep(Rule::same(Where::Plain)),
        }
    }

    /// vmclone's template marker: `template` in our namespace, any prefix.
    fn is_template(&self, e: &Element) -> bool {
        let local = e.qname.rsplit(':').next().unwrap_or_default();
        local == "template"
            && self
                .namespaces
                .get(e.ordinal)
                .is_some_and(|ns| ns.as_deref() == Some(METADATA_NS))
    }
}

/// `<cpu><topology>` for `n` vcpus: unchanged if it multiplies to `n`, else
/// `n` sockets of one core and one thread.
fn topology<'e>(n: u32, attr: &dyn Fn(&str) -> Option<String>) -> Rule<'e> {
    let keys = ["sockets", "dies", "clusters", "cores", "threads"];
    let product = keys
        .iter()
        .filter_map(|k| attr(k))
        .map(|v| v.trim().parse::<u64>().unwrap_or(0))
        .fold(1u64, u64::saturating_mul);
    let mut attrs = Vec::new();
    if product != u64::from(n) {
        attrs.push(("sockets", Change::Set(n.to_string())));
        attrs.push(("cores", Change::Set("1".into())));
        attrs.push(("threads", Change::Set("1".into())));
        for k in ["dies", "clusters"] {
            if attr(k).is_some() {
                attrs.push((k, Change::Set("1".into())));
            }
        }
    }
    Rule {
        attrs,
        ..Rule::same(Where::Plain)
    }
}

fn target_kind(t: &DiskTarget) -> &'static str {
    match t {
        DiskTarget::File(_) => "file",
        DiskTarget::Block(_) => "block",
        DiskTarget::Volume { .. } => "volume",
    }
}

fn target_attrs(t: &DiskTarget) -> Vec<(&'static str, String)> {
    match t {
        DiskTarget::File(p) => vec![("file", path(p))],
        DiskTarget::Block(p) => vec![("dev", path(p))],
        DiskTarget::Volume { pool, volume } => {
            vec![("pool", pool.clone()), ("volume", volume.clone())]
        }
    }
}

fn path(p: &std::path::Path) -> String {
    p.to_string_lossy().into_owned()
}

/// A socket path that libvirt made (its channel folders, `domain-N-name`).
fn looks_generated(path: &str) -> bool {
    path.contains("/libvirt/")
        || path.split('/').any(|c| {
            c.strip_prefix("domain-")
                .is_some_and(|r| r.starts_with(|d: char| d.is_ascii_digit()))
        })
}

fn is_ws(t: &str) -> bool {
    t.chars().all(|c| matches!(c, ' ' | '\t' | '\r' | '\n'))
}

/// Joins adjacent texts, as they read once an element between them is gone.
fn merge<'t, 'e>(want: Vec<Want<'t, 'e>>) -> Vec<Want<'t, 'e>> {
    let mut out: Vec<Want> = Vec::with_capacity(want.len());
    for w in want {
        match (w, out.last_mut()) {
            (Want::Text(t), Some(Want::Text(prev))) => prev.to_mut().push_str(&t),
            (w, _) => out.push(w),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use vmclone_service::domain_xml::{parse, rewrite, CloneEdits, DiskTarget, NewDisk};

    use super::check;

    const WEB01: &str = include_str!("../../service/src/domain_xml/testdata/web01-q35-uefi.xml");
    const ODD: &str = include_str!("../../service/src/domain_xml/testdata/odd-name.xml");

    struct Case {
        macs: Vec<String>,
        disks: Vec<Option<NewDisk>>,
        nvram: PathBuf,
    }

    /// A full clone of web01: copies, an overlay, new NVRAM, vcpus, memory.
    fn web01() -> Case {
        Case {
            macs: vec!["52:54:00:01:02:03".into(), "52:54:00:04:05:06".into()],
            disks: vec![
                Some(NewDisk {
                    target: DiskTarget::File("/var/lib/libvirt/images/web02.qcow2".into()),
                    driver_type: Some("qcow2".into()),
                    overlay: true,
                }),
                Some(NewDisk {
                    target: DiskTarget::Block("/dev/vg0/web02".into()),
                    driver_type: None,
                    overlay: false,
                }),
                None,
            ],
            nvram: "/var/lib/libvirt/qemu/nvram/web02_VARS.fd".into(),
        }
    }

    impl Case {
        fn edits(&self) -> CloneEdits<'_> {
            CloneEdits {
                new_name: "web02",
                new_uuid: "11111111-2222-4333-8444-555555555555",
                new_genid: "99999999-8888-4777-8666-555555555555",
                macs: &self.macs,
                disks: &self.disks,
                nvram: Some(&self.nvram),
                vcpus: Some(8),
                memory_kib: Some(8_388_608),
            }
        }
    }

    fn tampered(out: &str, from: &str, to: &str) -> String {
        assert_eq!(
            out.matches(from).count(),
            1,
            "{from:?} is not in the output once"
        );
        out.replacen(from, to, 1)
    }

    #[test]
    fn real_rewrites_pass() {
        let case = web01();
        let out = rewrite(WEB01, &case.edits()).unwrap();
        check(WEB01, &out, &case.edits()).unwrap();
        // The hand-edited fixture: entities, CDATA, comments, empty elements
        // opened, a block device copy with a <driver> added.
        let info = parse(ODD).unwrap();
        let macs = vec!["52:54:00:aa:bb:00".to_string(), "52:54:00:aa:bb:01".into()];
        let mut disks = vec![None; info.disks.len()];
        disks[0] = Some(NewDisk {
            target: DiskTarget::Block(r#"/dev/vg0/b&a <'y"> ☃"#.into()),
            driver_type: Some("qcow2".into()),
            overlay: true,
        });
        let edits = CloneEdits {
            new_name: r#"b&a <'y"> ☃"#,
            macs: &macs,
            disks: &disks,
            ..case.edits()
        };
        let out = rewrite(ODD, &edits).unwrap();
        check(ODD, &out, &edits).unwrap();
    }

    /// Each deliberately wrong rewrite is caught, and the message says where.
    #[test]
    fn wrong_rewrites_fail() {
        let case = web01();
        let edits = case.edits();
        let out = rewrite(WEB01, &edits).unwrap();
        let wrong = [
            // Untouched content that changed.
            ("<target dev='vda' bus='virtio'/>", "<target dev='vda' bus='sata'/>", "bus='virtio'"),
            ("<input type='mouse' bus='ps2'/>", "<input type=\"mouse\" bus='ps2'/>", "type='mouse'"),
            ("<vmport state='off'/>", "<vmport  state='off'/>", "state='off'"),
            ("<vmport state='off'/>", "<vmport state='off' />", "end of the start tag"),
            ("<vmport state='off'/>", "<vmport state='off'></vmport>", "opened"),
            ("<acpi/>", "<acpi foo='1'/>", "foo='1' was added"),
            ("<on_crash>destroy</on_crash>", "<on_crash>restart</on_crash>", "on_crash"),
            ("Frontend &amp; cache", "Frontend &#38; cache", "description"),
            ("  <on_reboot>", "   <on_reboot>", r#"/domain[1]: text "\n  " became"#),
            ("</features>", "</features >", "end tag"),
            ("<timer name='rtc' tickpolicy='catchup'/>", "<timer tickpolicy='catchup' name='rtc'/>", "timer"),
            ("      <model type='virtio'/>\n      <address type='pci' domain='0x0000' bus='0x01'", "      <address type='pci' domain='0x0000' bus='0x01'", "interface"),
            ("<listen type='address' address='127.0.0.1'/>", "<listen type='address' address='0.0.0.0'/>", "listen"),
            ("<entry name='manufacturer'>vmclone test</entry>", "<entry name='manufacturer'>11111111-2222-4333-8444-555555555555</entry>", "system[1]/entry[1]: text \"vmclone test\""),
            ("uuid 6b3c2a4e", "uuid 11111111", "qemu:arg"),
            ("<suspend-to-mem enabled='no'/>", "<suspend-to-mem enabled='no'/><extra/>", "became <extra>"),
            // Listed changes done wrong.
            ("<name>web02</name>", "<name>web03</name>", "name"),
            ("<mac address='52:54:00:01:02:03'/>", "<mac address='52:54:00:01:02:04'/>", "address='52:54:00:6a:1b:2c'"),
            ("<domain type='kvm' xmlns", "<domain type='kvm' id='7' xmlns", "became \"id='7'\""),
            ("  <description>", "  <title>Web server 01</title>\n  <description>", "<description> became <title>"),
            ("<source file='/var/lib/libvirt/images/web02.qcow2'/>", "<source file='/var/lib/libvirt/images/web01.qcow2'/>", "file="),
            ("<graphics type='vnc' port='-1'", "<graphics type='vnc' port='5910'", "port="),
            ("<cid auto='yes'/>", "<cid auto='yes' address='3'/>", "address='3' was added"),
            ("<vcpu placement='static'>8</vcpu>", "<vcpu placement='static'>4</vcpu>", "vcpu"),
            ("<vcpu placement='static'>8</vcpu>", "<vcpu placement='static' current='2'>8</vcpu>", "current='2' was added"),
            ("<genid>99999999-8888-4777-8666-555555555555</genid>", "<genid>a5a8e1d4-0c5b-4e7d-9f57-7d1e4a5c2b11</genid>", "genid"),
            ("<genid>99999999-8888-4777-8666-555555555555</genid>", "<genid>11111111-2222-4333-8444-555555555555</genid>", "genid"),
            ("<memory unit='KiB'>8388608</memory>", "<memory unit='KiB'>4194304</memory>", "memory"),
            ("<source mode='bind'/>", "<source mode='bind' path='/elsewhere'/>", "became path='/elsewhere'"),
            ("/var/log/libvirt/qemu/web02-serial0.log", "/var/log/libvirt/qemu/other-serial0.log", "log"),
            ("/var/lib/libvirt/qemu/nvram/web02_VARS.fd", "/var/lib/libvirt/qemu/nvram/web01_VARS.fd", "nvram"),
        ];
        for (from, to, says) in wrong {
            let bad = tampered(&out, from, to);
            let err = check(WEB01, &bad, &edits).expect_err(to);
            assert!(err.contains(says), "{to}: {err}");
        }
        // Kept what must go: the template marker, the tap device, the overlay's backing chain.
        let src_line = |l: &str| {
            let bad = tampered(&out, "  </metadata>", &format!("{l}\n  </metadata>"));
            check(WEB01, &bad, &edits).unwrap_err()
        };
        let err = src_line(
            "    <vmclone:template xmlns:vmclone=\"https://vmclone.org/xmlns/vmclone/1\"/>",
        );
        assert!(err.contains("metadata"), "{err}");
        let bad = tampered(
            &out,
            "<source network='default'/>",
            "<source network='default'/>\n      <target dev='vnet3'/>",
        );
        assert!(check(WEB01, &bad, &edits)
            .unwrap_err()
            .contains("interface"));
        let bad = tampered(
            &out,
            "<source file='/var/lib/libvirt/images/web02.qcow2'/>",
            "<source file='/var/lib/libvirt/images/web02.qcow2'/>\n      <backingStore/>",
        );
        assert!(check(WEB01, &bad, &edits).unwrap_err().contains("disk"));
        // A byte order mark dropped or added.
        let with_bom = format!("\u{feff}{WEB01}");
        let err = check(&with_bom, &out, &edits).unwrap_err();
        assert!(err.contains("became <domain>"), "{err}");
        assert!(check(WEB01, &format!("\u{feff}{out}"), &edits).is_err());
        // And the source itself is no clone.
        assert!(check(WEB01, WEB01, &edits).is_err());
    }

    /// web01 with a fixed SELinux label and a fixed DAC one.
    fn with_labels() -> String {
        tampered(
            WEB01,
            "  </qemu:commandline>\n",
            "  </qemu:commandline>\n  \
             <seclabel type='static' model='selinux' relabel='yes'>\n    \
             <label>system_u:system_r:svirt_t:s0:c1,c2</label>\n    \
             <imagelabel>system_u:object_r:svirt_image_t:s0:c1,c2</imagelabel>\n    \
             <baselabel>system_u:system_r:svirt_t:s0</baselabel>\n  </seclabel>\n  \
             <seclabel type='static' model='dac' relabel='no'>\n    \
             <label>+107:+107</label>\n  </seclabel>\n",
        )
    }

    /// A fixed sVirt label becomes dynamic and loses its labels and
    /// `relabel`; the DAC label stays: each other way is caught.
    #[test]
    fn fixed_svirt_labels_become_dynamic() {
        let case = web01();
        let edits = case.edits();
        let src = with_labels();
        let out = rewrite(&src, &edits).unwrap();
        check(&src, &out, &edits).unwrap();
        let selinux = "<seclabel type='dynamic' model='selinux'>\n    \
                       <baselabel>system_u:system_r:svirt_t:s0</baselabel>\n  </seclabel>";
        let wrong = [
            (
                selinux,
                selinux.replace("dynamic", "static"),
                "type='static'",
            ),
            (
                selinux,
                selinux.replace("model='selinux'", "model='selinux' relabel='yes'"),
                "relabel='yes' was added",
            ),
            (
                selinux,
                selinux.replace(
                    "'>\n",
                    "'>\n    <label>system_u:system_r:svirt_t:s0:c1,c2</label>\n",
                ),
                "<baselabel> became <label>",
            ),
            (
                selinux,
                selinux.replace(
                    "\n    <baselabel>system_u:system_r:svirt_t:s0</baselabel>",
                    "",
                ),
                "/domain[1]/seclabel[21]",
            ),
            (
                "<seclabel type='static' model='dac' relabel='no'>",
                "<seclabel type='dynamic' model='dac' relabel='no'>".into(),
                "type='static'",
            ),
            (
                "    <label>+107:+107</label>\n",
                String::new(),
                "/domain[1]/seclabel[22]",
            ),
        ];
        for (from, to, says) in wrong {
            let bad = tampered(&out, from, &to);
            let err = check(&src, &bad, &edits).expect_err(&to);
            assert!(err.contains(says), "{to}: {err}");
        }
    }
}
