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
/// from its seed and checks every property of an accepted rewrite: the
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
        Err(e) => return Ok(Outcome::Refused(e.to_string())),
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
