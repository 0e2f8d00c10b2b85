//! libvirt accepts what vmclone writes: every corpus input and seed document
//! whose source the real libvirtd (`qemu:///system`) defines with validation
//! (`virDomainDefineXMLFlags` + `VIR_DOMAIN_DEFINE_VALIDATE`, the schema and
//! the QEMU driver's checks) is cloned by `rewrite` with drawn edits, and
//! the clone must be defined with validation too. Every domain is named
//! `vmclone-fuzz-*` and undefined again right away. Run it under the
//! global lock: `flock -o /tmp/vmclone-root-tests.lock cargo test -p vmclone-fuzz
//! --test libvirtd -- --include-ignored`.

use std::ops::Range;
use std::path::PathBuf;

use virt::connect::Connect;
use virt::sys;
use vmclone_fuzz::edits::Edits;
use vmclone_fuzz::{input, seeds};
use vmclone_service::domain_xml::{parse, rewrite};
use vmclone_service::ids::new_uuid;
use vmclone_service::naming::validate_vm_name;

const PREFIX: &str = "vmclone-fuzz-";

/// Undefines every domain this test may have left, also when it fails.
struct Cleanup<'c>(&'c Connect);

impl Cleanup<'_> {
    fn run(&self) {
        let names = self.0.list_defined_domains().unwrap_or_default();
        for name in names.iter().filter(|n| n.starts_with(PREFIX)) {
            if let Ok(d) = self.0.lookup_domain_by_name(name) {
                undefine(&d);
            }
        }
    }
}

impl Drop for Cleanup<'_> {
    fn drop(&mut self) {
        self.run();
    }
}

fn undefine(d: &virt::domain::Domain) {
    let flags = sys::VIR_DOMAIN_UNDEFINE_KEEP_NVRAM | sys::VIR_DOMAIN_UNDEFINE_KEEP_TPM;
    d.undefine_flags(flags)
        .unwrap_or_else(|e| panic!("could not undefine {:?}: {e}", d.name()));
}

/// Defines with validation and undefines again; libvirt's refusal otherwise.
fn define_and_undefine(conn: &Connect, xml: &str) -> Result<(), String> {
    let d = conn
        .define_domain_xml_flags(xml, sys::VIR_DOMAIN_DEFINE_VALIDATE)
        .map_err(|e| e.to_string())?;
    undefine(&d);
    Ok(())
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// A source made definable here: a QEMU (TCG) domain with a `vmclone-fuzz-`
/// name, a fresh UUID and this host's emulator. None if it is no domain.
fn for_this_host(xml: &str, name: &str) -> Option<String> {
    let doc = roxmltree::Document::parse(xml).ok()?;
    let root = doc.root_element();
    if !root.has_tag_name("domain") {
        return None;
    }
    let text_range =
        |n: roxmltree::Node| n.first_child().filter(|t| t.is_text()).map(|t| t.range());
    let mut cuts: Vec<(Range<usize>, String)> = Vec::new();
    cuts.push((root.attribute_node("type")?.range_value(), "qemu".into()));
    for c in root.children().filter(roxmltree::Node::is_element) {
        match c.tag_name().name() {
            "name" => cuts.push((text_range(c)?, escape(name))),
            "uuid" => cuts.push((text_range(c)?, new_uuid(|_| false))),
            "devices" => {
                for e in c.children().filter(|e| e.has_tag_name("emulator")) {
                    cuts.push((text_range(e)?, "/usr/bin/qemu-system-x86_64".into()));
                }
            }
            _ => {}
        }
    }
    cuts.sort_by_key(|c| std::cmp::Reverse(c.0.start));
    let mut out = xml.to_owned();
    for (r, s) in cuts {
        out.replace_range(r, &s);
    }
    Some(out)
}

/// The inputs to sample: the kept corpus and every seed with 8 edit seeds.
fn sample() -> Vec<(String, Vec<u8>)> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("corpus");
    let mut inputs: Vec<(String, Vec<u8>)> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.file_name().is_some_and(|n| n != "README.md"))
        .map(|p| (p.display().to_string(), std::fs::read(&p).unwrap()))
        .collect();
    inputs.sort();
    for s in seeds::all().unwrap_or_else(|e| panic!("{e}")) {
        for edits in 0..8u64 {
            inputs.push((
                format!("{} (edits {edits})", s.name),
                input::join(edits, &s.xml),
            ));
        }
    }
    inputs
}

#[test]
#[ignore = "needs root and libvirtd"]
fn libvirt_defines_the_clones_of_every_source_it_defines() {
    // Refused sources are expected; their messages would only be noise.
    virt::error::clear_error_callback();
    let conn = Connect::open(Some("qemu:///system"))
        .unwrap_or_else(|e| panic!("this test needs libvirtd on qemu:///system as root: {e}"));
    let cleanup = Cleanup(&conn);
    cleanup.run();
    let (mut sources, mut clones, mut refused_sources) = (0, 0, 0);
    let mut failures = Vec::new();
    for (i, (what, data)) in sample().into_iter().enumerate() {
        let (seed, xml) = input::split(&data);
        let Some(source) = for_this_host(&xml, &format!("{PREFIX}source-{i}")) else {
            continue;
        };
        if define_and_undefine(&conn, &source).is_err() {
            refused_sources += 1;
            continue;
        }
        sources += 1;
        let Ok(info) = parse(&source) else { continue };
        let mut edits = Edits::draw(seed, Some(&info));
        // Names the service accepts, under our prefix.
        edits.new_name = format!("{PREFIX}{i} {}", edits.new_name);
        if validate_vm_name(&edits.new_name).is_err() {
            edits.new_name = format!("{PREFIX}{i}");
        }
        // libvirt rightly refuses more vcpus than QEMU's machine takes, or
        // petabytes of memory: those are not the XML's fault.
        edits.vcpus = edits.vcpus.map(|n| n.min(8));
        edits.memory_kib = edits.memory_kib.map(|k| k.min(16 << 20));
        let Ok(clone) = rewrite(&source, &edits.clone_edits()) else {
            continue;
        };
        match define_and_undefine(&conn, &clone) {
            Ok(()) => clones += 1,
            Err(e) => failures.push(format!("{what}: {e}\n--- clone:\n{clone}\n---")),
        }
    }
    eprintln!(
        "libvirtd: {sources} sources defined ({refused_sources} refused), {clones} clones \
         defined, {} clones refused",
        failures.len()
    );
    assert!(
        failures.is_empty(),
        "libvirt refused {} clones of sources it accepts:\n{}",
        failures.len(),
        failures.join("\n")
    );
    assert!(
        clones >= 20,
        "only {clones} clones were defined: the sample proves little"
    );
    drop(cleanup);
}
