//! Fuzzing of vmclone's domain XML layer (`vmclone_service::domain_xml`):
//! the properties every input must keep ([`check`]), the clone edits drawn
//! for an input ([`edits`]), an independent judge of what a rewrite changed
//! ([`changes`]), structure-aware mutations of domain XML ([`mutate`]) and
//! the seed inputs from real domain XML ([`seeds`]). The coverage-guided
//! libFuzzer target (`src/bin/fuzz_rewrite.rs`) and the tests run the same
//! [`check`].

pub mod changes;
pub mod edits;
pub mod input;
pub mod mutate;
pub mod seeds;
pub mod tree;

use vmclone_service::domain_xml::{parse, rewrite, CloneEdits, DiskSource, DiskTarget, DomainInfo};

use edits::Edits;

/// A broken property, with what it saw.
#[derive(Debug, thiserror::Error)]
pub enum Violation {
    #[error("rewrite accepted a source that is not well-formed XML ({0}); it must refuse it")]
    SourceNotWellFormed(String),
    #[error("rewrite wrote XML that is not well-formed: {0}")]
    OutputNotWellFormed(String),
    #[error("rewrite changed what README's \"What a clone changes\" does not list: {0}")]
    Unlisted(String),
    #[error("the clone's XML does not read back as the clone: {0}")]
    ReadBack(String),
    #[error("a second rewrite with the same edits changed the XML again: {0}")]
    NotIdempotent(String),
    #[error("rewrite refused a well-formed domain XML with edits that fit it: {0}")]
    WronglyRefused(String),
}

/// What [`check`] saw when every property held.
#[derive(Debug)]
pub enum Outcome {
    /// `rewrite` refused the input, with this message.
    Refused(String),
    /// `rewrite` accepted it and wrote this.
    Accepted { xml: String },
}

/// Runs `parse` and `rewrite` on one input (see [`input`]) with edits drawn
/// from its seed. A refusal must have one of the reasons [`may_refuse`]
/// lists; an accepted rewrite must keep every property: the
/// source and the output are well-formed (roxmltree, a strict reader), the
/// output differs only as README lists ([`changes`]), reads back as the clone,
/// and a second rewrite with the same edits changes nothing (the rewrite is
/// deterministic: even the new `<genid>` comes with the edits). Panics and
/// endless loops are the caller's to catch (libFuzzer, or the test watchdog).
pub fn check(data: &[u8]) -> Result<Outcome, Violation> {
    let (seed, xml) = input::split(data);
    let source = parse(&xml);
    let edits = Edits::draw(seed, source.as_ref().ok());
    let clone_edits = edits.clone_edits();
    let out = match rewrite(&xml, &clone_edits) {
        Ok(out) => out,
        Err(e) if may_refuse(&xml, source.as_ref().ok(), &clone_edits) => {
            return Ok(Outcome::Refused(e.to_string()))
        }
        Err(e) => return Err(Violation::WronglyRefused(e.to_string())),
    };
    let Ok(source) = source else {
        return Err(Violation::ReadBack(
            "rewrite accepted what parse refused".into(),
        ));
    };
    well_formed(&xml).map_err(Violation::SourceNotWellFormed)?;
    well_formed(&out).map_err(Violation::OutputNotWellFormed)?;
    changes::check(&xml, &out, &clone_edits).map_err(Violation::Unlisted)?;
    reads_back(&out, &source, &clone_edits).map_err(Violation::ReadBack)?;
    let again = rewrite(&out, &clone_edits)
        .map_err(|e| Violation::NotIdempotent(format!("the second rewrite failed: {e}")))?;
    if again != out {
        return Err(Violation::NotIdempotent(first_difference(&out, &again)));
    }
    Ok(Outcome::Accepted { xml: out })
}

/// Whether `rewrite` may refuse `xml` with `edits`: the XML is not
/// well-formed (or has a DTD, or declares another encoding than UTF-8),
/// `parse` could not read the VM from it (`source` is None), the edits do not
/// fit it (a MAC per interface, an entry per disk, new sources only for file,
/// block, volume and empty disks), or a vcpu count is asked of a domain
/// without `<vcpu>`. Anything else must be cloned.
fn may_refuse(xml: &str, source: Option<&DomainInfo>, edits: &CloneEdits) -> bool {
    let Some(source) = source else {
        return true;
    };
    let Some(tree) = tree::Tree::parse(xml) else {
        return true;
    };
    if roxmltree::Document::parse(xml).is_err() || declares_other_encoding(xml) {
        return true;
    }
    let editable = |d: &vmclone_service::domain_xml::Disk| {
        matches!(
            d.source,
            DiskSource::Empty
                | DiskSource::File(_)
                | DiskSource::Block(_)
                | DiskSource::Volume { .. }
        )
    };
    let has_vcpu = tree
        .root()
        .is_some_and(|r| tree.children_named(r, "vcpu").next().is_some());
    edits.macs.len() != source.interfaces.len()
        || edits.disks.len() != source.disks.len()
        || source
            .disks
            .iter()
            .zip(edits.disks)
            .any(|(d, e)| e.is_some() && !editable(d))
        || (edits.vcpus.is_some() && !has_vcpu)
}

/// An XML declaration naming an encoding other than UTF-8, the one the
/// XML is in (as a Rust string).
fn declares_other_encoding(xml: &str) -> bool {
    let xml = xml.strip_prefix('\u{feff}').unwrap_or(xml);
    match xmlparser::Tokenizer::from(xml).next() {
        Some(Ok(xmlparser::Token::Declaration {
            encoding: Some(e), ..
        })) => !e.as_str().eq_ignore_ascii_case("UTF-8"),
        _ => false,
    }
}

/// roxmltree's reading of XML 1.0 well-formedness, DOCTYPEs allowed.
pub fn strict_options<'x>() -> roxmltree::ParsingOptions<'x> {
    roxmltree::ParsingOptions {
        allow_dtd: true,
        ..roxmltree::ParsingOptions::default()
    }
}

/// Whether a strict XML reader accepts `xml`.
pub fn well_formed(xml: &str) -> Result<(), String> {
    roxmltree::Document::parse_with_options(xml, strict_options())
        .map(drop)
        .map_err(|e| e.to_string())
}

/// `parse` of the clone's XML says what the edits asked for.
fn reads_back(out: &str, source: &DomainInfo, edits: &CloneEdits) -> Result<(), String> {
    let clone = parse(out).map_err(|e| format!("parse refused it: {e}"))?;
    let differ = |what: &str, got: &dyn std::fmt::Debug, want: &dyn std::fmt::Debug| {
        Err(format!("{what} is {got:?}, not {want:?}"))
    };
    if clone.name != edits.new_name {
        return differ("the name", &clone.name, &edits.new_name);
    }
    if !clone.uuid.eq_ignore_ascii_case(edits.new_uuid) {
        return differ("the UUID", &clone.uuid, &edits.new_uuid);
    }
    let macs: Vec<Option<&str>> = clone.interfaces.iter().map(|i| i.mac.as_deref()).collect();
    let want: Vec<Option<&str>> = edits.macs.iter().map(|m| Some(m.as_str())).collect();
    if macs != want {
        return differ("the MACs", &macs, &want);
    }
    if clone.is_template {
        return Err("the clone is still a template".into());
    }
    if let Some(model) = clone.static_seclabel {
        return Err(format!("the clone still has a fixed {model} label"));
    }
    if let Some(n) = edits.vcpus {
        if clone.vcpus != n {
            return differ("vcpus", &clone.vcpus, &n);
        }
    }
    if let Some(kib) = edits.memory_kib {
        if clone.memory_kib != kib {
            return differ("memory", &clone.memory_kib, &kib);
        }
    }
    if clone.disks.len() != source.disks.len() {
        return differ("the disk count", &clone.disks.len(), &source.disks.len());
    }
    for (i, (disk, new)) in clone.disks.iter().zip(edits.disks).enumerate() {
        let Some(new) = new else { continue };
        let want = match &new.target {
            DiskTarget::File(p) => DiskSource::File(p.clone()),
            DiskTarget::Block(p) => DiskSource::Block(p.clone()),
            DiskTarget::Volume { pool, volume } => DiskSource::Volume {
                pool: pool.clone(),
                volume: volume.clone(),
            },
        };
        if disk.source != want {
            return differ(&format!("disk {i}"), &disk.source, &want);
        }
        if new.driver_type.is_some() && disk.driver_type != new.driver_type {
            return differ(
                &format!("disk {i}'s format"),
                &disk.driver_type,
                &new.driver_type,
            );
        }
    }
    Ok(())
}

fn first_difference(a: &str, b: &str) -> String {
    let at = a
        .bytes()
        .zip(b.bytes())
        .position(|(x, y)| x != y)
        .unwrap_or(a.len().min(b.len()));
    let from = at.saturating_sub(40);
    let show = |s: &str| {
        let end = (at + 40).min(s.len());
        String::from_utf8_lossy(&s.as_bytes()[from.min(end)..end]).into_owned()
    };
    format!("first at byte {at}: {:?} became {:?}", show(a), show(b))
}

/// The fuzz target: a broken property panics, which libFuzzer reports as a
/// crash and saves the input of.
pub fn fuzz_one(data: &[u8]) {
    if let Err(v) = check(data) {
        panic!("{v}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const WEB01: &str = include_str!("../../service/src/domain_xml/testdata/web01-q35-uefi.xml");

    /// Only the listed reasons excuse a refusal of web01.
    #[test]
    fn a_refusal_needs_a_reason() {
        let info = parse(WEB01).unwrap();
        let macs = vec!["52:54:00:01:02:03".to_string(), "52:54:00:04:05:06".into()];
        let disks = vec![None; info.disks.len()];
        let fits = CloneEdits {
            new_name: "web02",
            new_uuid: "11111111-2222-4333-8444-555555555555",
            new_genid: "99999999-8888-4777-8666-555555555555",
            macs: &macs,
            disks: &disks,
            nvram: None,
            vcpus: Some(2),
            memory_kib: None,
        };
        assert!(!may_refuse(WEB01, Some(&info), &fits));
        assert!(may_refuse(WEB01, None, &fits), "parse refused it");
        let no_vcpu = WEB01.replace("<vcpu placement='static' current='2'>4</vcpu>", "");
        assert!(may_refuse(&no_vcpu, Some(&info), &fits));
        let no_vcpus = CloneEdits {
            vcpus: None,
            ..fits.clone()
        };
        assert!(!may_refuse(&no_vcpu, Some(&info), &no_vcpus));
        for bad in [
            format!("junk{WEB01}"),
            format!("<!DOCTYPE domain>{WEB01}"),
            format!("<?xml version='1.0' encoding='ISO-8859-1'?>{WEB01}"),
            format!("<?xml version='2.0'?>{WEB01}"),
        ] {
            assert!(may_refuse(&bad, Some(&info), &fits), "{}", &bad[..50]);
        }
        let one_mac = CloneEdits {
            macs: &macs[..1],
            ..fits.clone()
        };
        assert!(may_refuse(WEB01, Some(&info), &one_mac));
        let no_disks = CloneEdits {
            disks: &[],
            ..fits.clone()
        };
        assert!(may_refuse(WEB01, Some(&info), &no_disks));
    }
}
