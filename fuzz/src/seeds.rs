//! The real domain XML the fuzzer starts from: the domain XML unit-test
//! fixtures, the demo host's domains and virt-manager's virt-clone
//! conformance data (every XML file under
//! `$VMCLONE_SHARED_DIR/conformance/virt-manager`, default
//! `<repo>/../shared`; see its INDEX.md), each `<domain>` of a host file
//! taken out as a document of its own.

use std::path::{Path, PathBuf};

/// One seed document.
pub struct Seed {
    /// Where it came from, e.g. `testdriver.xml#test-clone`.
    pub name: String,
    pub xml: String,
}

/// The repository this crate is part of.
pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// virt-manager's conformance data folder.
pub fn conformance_dir() -> PathBuf {
    match std::env::var_os("VMCLONE_SHARED_DIR") {
        Some(shared) => PathBuf::from(shared).join("conformance/virt-manager"),
        None => repo().join("../shared/conformance/virt-manager"),
    }
}

/// Every seed; an error names what is missing (the conformance data is
/// required: without it the fuzzer would start from far less).
pub fn all() -> Result<Vec<Seed>, String> {
    let conformance = conformance_dir();
    if !conformance.join("INDEX.md").is_file() {
        return Err(format!(
            "the virt-manager conformance data is missing: expected {}/INDEX.md \
             (put the shared folder beside the repository or set VMCLONE_SHARED_DIR \
             to the folder holding conformance/)",
            conformance.display()
        ));
    }
    let mut files = xml_files(&repo().join("service/src/domain_xml/testdata"))?;
    files.push(repo().join("data/demo-host.xml"));
    files.extend(xml_files(&conformance)?);
    let mut seeds = Vec::new();
    for f in files {
        let xml = std::fs::read_to_string(&f).map_err(|e| format!("{}: {e}", f.display()))?;
        let file = f.file_name().unwrap_or_default().to_string_lossy();
        seeds.extend(domains_in(&file, &xml));
    }
    Ok(seeds)
}

/// Writes every seed as fuzz inputs into `dir`, each with a few edit seeds;
/// returns how many.
pub fn write_inputs(dir: &Path) -> Result<usize, String> {
    let seeds = all()?;
    std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let mut n = 0;
    for (i, seed) in seeds.iter().enumerate() {
        for edits in 0..4u64 {
            let file = dir.join(format!("seed-{i:03}-{edits}"));
            let data = crate::input::join(edits << 32 | i as u64, &seed.xml);
            std::fs::write(&file, data).map_err(|e| format!("{}: {e}", file.display()))?;
            n += 1;
        }
    }
    Ok(n)
}

/// The XML files under `dir`, sorted, recursively.
fn xml_files(dir: &Path) -> Result<Vec<PathBuf>, String> {
    let mut out = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        let entries = std::fs::read_dir(&d).map_err(|e| format!("{}: {e}", d.display()))?;
        for entry in entries {
            let path = entry.map_err(|e| e.to_string())?.path();
            if path.is_dir() {
                todo.push(path);
            } else if path.extension().is_some_and(|e| e == "xml") {
                out.push(path);
            }
        }
    }
    out.sort();
    Ok(out)
}

/// A file whose root is not a `<domain>` gives each `<domain>` with a
/// `<name>` in it, with
/// the namespaces in scope declared on it; other files are one seed.
fn domains_in(file: &str, xml: &str) -> Vec<Seed> {
    let whole = || Seed {
        name: file.to_owned(),
        xml: xml.to_owned(),
    };
    let Ok(doc) = roxmltree::Document::parse_with_options(xml, crate::strict_options()) else {
        return vec![whole()];
    };
    if doc.root_element().has_tag_name("domain") {
        return vec![whole()];
    }
    let domains: Vec<Seed> = doc
        .descendants()
        // A domain definition, not a PCI address's <domain>0</domain>.
        .filter(|n| n.has_tag_name("domain") && n.children().any(|c| c.has_tag_name("name")))
        .map(|d| {
            let mut text = xml[d.range()].to_owned();
            let head_end = text.find('>').unwrap_or(0);
            let mut decls = String::new();
            for ns in d.namespaces() {
                let attr = match ns.name() {
                    Some("xml") => continue,
                    Some(prefix) => format!("xmlns:{prefix}="),
                    None => "xmlns=".to_owned(),
                };
                if !text[..head_end].contains(&attr) {
                    decls.push_str(&format!(" {attr}'{}'", ns.uri()));
                }
            }
            text.insert_str("<domain".len(), &decls);
            let name = d
                .children()
                .find(|c| c.has_tag_name("name"))
                .and_then(|n| n.text())
                .unwrap_or("?");
            Seed {
                name: format!("{file}#{name}"),
                xml: text,
            }
        })
        .collect();
    if domains.is_empty() {
        vec![whole()]
    } else {
        domains
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_files_give_each_domain_with_its_namespaces() {
        let host = "<node xmlns:test='urn:t'><domain type='test'><name>a</name>\
                    <test:x/></domain><pool/><domain><name>b</name></domain></node>";
        let seeds = domains_in("host.xml", host);
        let names: Vec<&str> = seeds.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["host.xml#a", "host.xml#b"]);
        assert_eq!(
            seeds[0].xml,
            "<domain xmlns:test='urn:t' type='test'><name>a</name><test:x/></domain>"
        );
        crate::well_formed(&seeds[0].xml).unwrap();
        assert_eq!(domains_in("d.xml", "<domain/>")[0].xml, "<domain/>");
    }
}
