//! Every input of the kept corpus (fuzz/corpus) and every seed document with
//! many edit seeds keeps every property (`vmclone_fuzz::check`) within a
//! time bound, and libxml2 (`xmllint`, the parser libvirt uses) reads every
//! source that is accepted and every clone's XML written as well-formed.

use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::Duration;

use vmclone_fuzz::{check, input, seeds, Outcome, Violation};

/// Far above what one input takes (milliseconds): reaching it means a loop.
const PER_INPUT: Duration = Duration::from_secs(10);

/// Runs `check` on a thread of its own, so that a panic or an endless loop
/// is reported as what it is.
fn bounded(data: Vec<u8>) -> Result<Result<Outcome, Violation>, String> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(check(&data));
    });
    match rx.recv_timeout(PER_INPUT) {
        Ok(r) => Ok(r),
        Err(mpsc::RecvTimeoutError::Timeout) => Err(format!("still running after {PER_INPUT:?}")),
        Err(mpsc::RecvTimeoutError::Disconnected) => Err("panicked".into()),
    }
}

#[derive(Default)]
struct Tally {
    accepted: usize,
    refused: usize,
    failures: Vec<String>,
    /// (name, source, clone) of accepted inputs, for xmllint.
    written: Vec<(String, String, String)>,
}

impl Tally {
    fn run(&mut self, name: String, data: Vec<u8>) {
        let (_, source) = input::split(&data);
        let source = source.into_owned();
        match bounded(data) {
            Ok(Ok(Outcome::Accepted { xml })) => {
                self.accepted += 1;
                self.written.push((name, source, xml));
            }
            Ok(Ok(Outcome::Refused(_))) => self.refused += 1,
            Ok(Err(v)) => self.failures.push(format!("{name}: {v}")),
            Err(e) => self.failures.push(format!("{name}: {e}")),
        }
    }

    fn assert_clean(&self, what: &str) {
        eprintln!(
            "{what}: {} accepted, {} refused, {} failures",
            self.accepted,
            self.refused,
            self.failures.len()
        );
        assert!(
            self.failures.is_empty(),
            "{what}: {} inputs broke a property:\n{}",
            self.failures.len(),
            self.failures.join("\n")
        );
        xmllint(&self.written);
    }
}

/// libxml2 reads every accepted source and every clone written.
fn xmllint(written: &[(String, String, String)]) {
    let dir = std::env::temp_dir().join(format!("vmclone-fuzz-xmllint-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let mut files: Vec<PathBuf> = Vec::new();
    for (i, (_, source, clone)) in written.iter().enumerate() {
        for (tag, xml) in [("source", source), ("clone", clone)] {
            let f = dir.join(format!("{i}-{tag}.xml"));
            std::fs::write(&f, xml).unwrap();
            files.push(f);
        }
    }
    let out = std::process::Command::new("xmllint")
        .args(["--noout", "--nonet"])
        .args(&files)
        .output()
        .unwrap_or_else(|e| {
            panic!(
                "this test needs xmllint (Debian package libxml2-utils, tools/setup-host.sh): {e}"
            )
        });
    std::fs::remove_dir_all(&dir).ok();
    let stderr = String::from_utf8_lossy(&out.stderr);
    let named = stderr.replace(&format!("{}/", dir.display()), "");
    // Its warnings and namespace "errors" (a relative namespace URI) do not
    // make libxml2 refuse a document; libvirt takes such XML.
    assert!(
        out.status.success(),
        "libxml2 refused XML that vmclone accepted or wrote (files are <input>-source/clone, \
         inputs in order: {:?}):\n{named}",
        written.iter().map(|w| &w.0).collect::<Vec<_>>()
    );
}

#[test]
fn the_kept_corpus_keeps_every_property() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.file_name().is_some_and(|n| n != "README.md"))
        .collect();
    files.sort();
    assert!(
        files.len() >= 50,
        "fuzz/corpus holds only {} inputs",
        files.len()
    );
    let mut tally = Tally::default();
    for f in files {
        let name = f.file_name().unwrap().to_string_lossy().into_owned();
        tally.run(name, std::fs::read(&f).unwrap());
    }
    assert!(
        tally.accepted >= 20,
        "only {} corpus inputs were accepted",
        tally.accepted
    );
    tally.assert_clean("fuzz/corpus");
}

#[test]
fn every_seed_with_many_edits_keeps_every_property() {
    let seeds = seeds::all().unwrap_or_else(|e| panic!("{e}"));
    assert!(seeds.len() >= 50, "only {} seed documents", seeds.len());
    let mut tally = Tally::default();
    for s in &seeds {
        for edits in 0..32u64 {
            tally.run(
                format!("{} (edits {edits})", s.name),
                input::join(edits, &s.xml),
            );
        }
    }
    assert!(tally.accepted >= 1000, "only {} accepted", tally.accepted);
    tally.assert_clean("seeds");
}
