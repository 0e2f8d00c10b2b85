//! Faults injected at every step of one clone, on real libvirtd with QEMU: the
//! service pauses at a step (`service/src/failpoint.rs`), the test injects one
//! fault (the target filesystem full, the journal's folder read-only, libvirtd
//! restarted, `kill -9` of the service, SIGTERM of the service) and lets it go
//! on. Afterwards the clone exists whole or nothing of it exists, the sources
//! are byte-identical and the service answers again. The matrix is printed.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::fs;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use vmclone_tests::guest::{make_guest_disk, FORCE_TCG};
use vmclone_tests::libvirt::{
    disk_paths_of, disk_xml, disk_xml_on, qcow2_image, qemu_img, raw_image, restart_libvirtd,
    try_virsh, uefi_os, virsh, wait_running, Lab, NIC, SWTPM_STATE, SYSTEM_URI as URI,
};
use vmclone_tests::mounts::Mount;
use vmclone_tests::pauses::Pauses;
use vmclone_tests::process::run;
use vmclone_tests::*;

/// Every step a clone may pause at here; the service pauses at each, and the
/// test lets it go on from the ones it does not test.
const ALL_STEPS: [&str; 9] = [
    "after-journal",
    "before-disk-0",
    "before-disk-1",
    "before-nvram",
    "before-tpm",
    "before-customize",
    "before-define",
    "after-define",
    "after-commit",
];

#[derive(Clone, Copy, PartialEq)]
enum Kind {
    /// A full clone of the UEFI+TPM source with two disks.
    Full,
    /// A linked clone of the template: one qcow2 overlay.
    Linked,
    /// A full clone with `guest-identity=reset` of a guest libguestfs knows.
    Reset,
}

/// The rows: (label, kind, the pause).
const ROWS: [(&str, Kind, &str); 10] = [
    ("journal written", Kind::Full, "after-journal"),
    ("disk 1 copy", Kind::Full, "before-disk-0"),
    ("disk 2 copy", Kind::Full, "before-disk-1"),
    ("NVRAM copy", Kind::Full, "before-nvram"),
    ("TPM state copy", Kind::Full, "before-tpm"),
    ("overlay (linked)", Kind::Linked, "before-disk-0"),
    ("identity reset", Kind::Reset, "before-customize"),
    ("define", Kind::Full, "before-define"),
    ("defined, not committed", Kind::Full, "after-define"),
    ("committed", Kind::Full, "after-commit"),
];

#[derive(Clone, Copy, PartialEq)]
enum Fault {
    Full,
    JournalReadOnly,
    Libvirtd,
    Kill9,
    Sigterm,
}

const FAULTS: [(Fault, &str); 5] = [
    (Fault::Full, "target full"),
    (Fault::JournalReadOnly, "journal read-only"),
    (Fault::Libvirtd, "libvirtd restart"),
    (Fault::Kill9, "kill -9"),
    (Fault::Sigterm, "SIGTERM"),
];

/// What one cell came to: an accepted outcome, or what was wrong.
enum Outcome {
    Whole,
    Nothing(String),
    NotApplicable(&'static str),
    Broken(String),
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        match self {
            Outcome::Whole => write!(f, "whole"),
            Outcome::Nothing(why) if why.is_empty() => write!(f, "nothing"),
            Outcome::Nothing(why) => write!(f, "nothing ({why})"),
            Outcome::NotApplicable(why) => write!(f, "n.a. ({why})"),
            Outcome::Broken(what) => write!(f, "BROKEN: {what}"),
        }
    }
}

/// The lab: sources on a small tmpfs (the target: copies go beside the
/// originals), libvirt's swtpm folder on a tmpfs of its own (so it can be
/// filled too), the service on a private bus pausing at every step.
struct World {
    service: Option<Service>,
    /// The journal's folder, its own ext4 (which the read-only fault aborts).
    journal: Option<Mount>,
    journal_image: PathBuf,
    // Mounts go before the lab (fields drop in order): unmounted first, then the
    // lab removes its VMs and folder.
    _swtpm: Mount,
    _target: Mount,
    lab: Lab,
    target: PathBuf,
    bus: PrivateBus,
    pauses: Pauses,
    src: String,
    tpl: String,
    guest: String,
    /// Every file of the sources (target and swtpm folders) with its bytes.
    baseline: BTreeMap<PathBuf, Vec<u8>>,
    vms: Vec<String>,
}

/// Every file below `dir` with its bytes.
fn contents(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    vmclone_tests::temp::file_sizes(dir)
        .into_keys()
        .map(|p| {
            let bytes = fs::read(&p).unwrap_or_else(|e| panic!("read {}: {e}", p.display()));
            (p, bytes)
        })
        .collect()
}

/// Fills the filesystem of `dir` until it refuses another byte.
fn fill(dir: &Path) -> PathBuf {
    let path = dir.join("zz-filler");
    let mut f = fs::File::create(&path).unwrap();
    let chunk = vec![0x5a; 1 << 20];
    while f.write_all(&chunk).is_ok() {}
    while f.write_all(&chunk[..4096]).is_ok() {}
    while f.write_all(&[0]).is_ok() {}
    path
}

fn names_or_none(dir: &Path) -> Vec<String> {
    match dir.exists() {
        true => names_in(dir),
        false => Vec::new(),
    }
}

impl World {
    fn new() -> World {
        let lab = Lab::new("faults");
        let target = lab.path("target");
        let target_mount = Mount::tmpfs(&target, "160m");
        // Empty on this host when no VM has a TPM; covered for the test's run.
        let swtpm = Mount::tmpfs(Path::new(SWTPM_STATE), "16m");
        // The UEFI+TPM source with two raw disks.
        let (d0, d1) = (target.join("src-0.raw"), target.join("src-1.raw"));
        raw_image(&d0, 4 << 20, &["write -P 0xa1 0 3M"]);
        raw_image(&d1, 4 << 20, &["write -P 0xb2 1M 2M"]);
        let vars = target.join("src_VARS.fd");
        fs::copy(vmclone_tests::libvirt::OVMF_VARS, &vars).unwrap();
        let src = lab.name("src");
        let tpm = "<tpm model='tpm-tis'><backend type='emulator' version='2.0'/></tpm>";
        lab.define(
            &src,
            &uefi_os(&vars),
            &format!(
                "{}{}{NIC}{tpm}",
                disk_xml(&d0, "raw"),
                disk_xml_on(&d1, "raw", "vdb")
            ),
        );
        // One boot makes swtpm create the TPM state.
        virsh(&["start", &src]);
        wait_running(&src);
        virsh(&["destroy", &src]);
        // The template for the linked clone.
        let t = target.join("tpl.qcow2");
        qcow2_image(&t, "4M", "write -P 0xc3 0 2M");
        let tpl = lab.name("tpl");
        lab.define(&tpl, "", &format!("{}{NIC}", disk_xml(&t, "qcow2")));
        // A guest libguestfs recognises, for the identity reset.
        let g = target.join("guest.raw");
        make_guest_disk(&g);
        let guest = lab.name("guest");
        lab.define(&guest, "", &format!("{}{NIC}", disk_xml(&g, "raw")));

        let bus = PrivateBus::start();
        let pauses = Pauses::at(&ALL_STEPS);
        let state = TempDir::new("faults-state");
        let journal_image = lab.path("journal.ext4");
        fs::File::create(&journal_image)
            .and_then(|f| f.set_len(64 << 20))
            .unwrap();
        run("mkfs.ext4", &["-q", journal_image.to_str().unwrap()]);
        let journal = Self::mount_journal(&journal_image, &state.join("journal"));
        let service = Service::start_paused(&bus, URI, &[], state, Some(&pauses));
        stdout_ok(&bus.call("ConvertToTemplate", "s", &[&tpl]));
        let mut baseline = contents(&target);
        baseline.extend(contents(Path::new(SWTPM_STATE)));
        assert!(
            baseline.keys().any(|p| p.starts_with(SWTPM_STATE)),
            "the source has TPM state"
        );
        let vms = lab.vms();
        World {
            service: Some(service),
            journal: Some(journal),
            journal_image,
            _swtpm: swtpm,
            _target: target_mount,
            lab,
            target,
            bus,
            pauses,
            src,
            tpl,
            guest,
            baseline,
            vms,
        }
    }

    fn mount_journal(image: &Path, dir: &Path) -> Mount {
        let mount = Mount::loop_image(image, dir)
            .unwrap_or_else(|e| panic!("the fault matrix needs a loop device: {e}"));
        fs::set_permissions(dir, fs::Permissions::from_mode(0o700)).unwrap();
        // The journal holds the service's entries only.
        let _ = fs::remove_dir(dir.join("lost+found"));
        mount
    }

    fn service(&self) -> &Service {
        self.service.as_ref().expect("the service runs")
    }

    fn state_dir(&self) -> PathBuf {
        self.service().state_dir.path().to_owned()
    }

    /// The service again on the state `state` left by the last one.
    fn restart(&mut self, state: TempDir) {
        self.service = Some(Service::start_paused(
            &self.bus,
            URI,
            &[],
            state,
            Some(&self.pauses),
        ));
    }

    fn release_all(&self) {
        for s in ALL_STEPS {
            if self.pauses.reached(s) {
                self.pauses.release(s);
            }
        }
    }

    /// Lets the clone go on past every other step until it stands at `step`.
    fn drive_to(&self, step: &str) {
        let deadline = Instant::now() + Duration::from_secs(120);
        while !self.pauses.reached(step) {
            for s in ALL_STEPS.iter().filter(|s| **s != step) {
                if self.pauses.reached(s) {
                    self.pauses.release(s);
                }
            }
            assert!(
                Instant::now() < deadline,
                "the clone did not reach {step}:\n{}",
                self.service().log_text()
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Lets the clone run to its end; its state and error name.
    fn finish(&self, job: &str) -> (String, String) {
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            self.release_all();
            let state = self.bus.job_property(job, "State");
            if !(state.contains("\"running\"") || state.contains("\"queued\"")) {
                let error = self.bus.job_property(job, "ErrorName");
                let short = error
                    .trim_start_matches("s \"")
                    .trim_end_matches('"')
                    .trim_start_matches("org.vmclone.Error.")
                    .to_string();
                return (state, short);
            }
            assert!(
                Instant::now() < deadline,
                "the job did not end:\n{}",
                self.service().log_text()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// One cell: a clone of `kind` stopped at `step`, hit by `fault`.
    fn cell(&mut self, kind: Kind, step: &str, fault: Fault, n: usize) -> Outcome {
        if kind == Kind::Reset && !matches!(fault, Fault::Kill9 | Fault::Sigterm) {
            return Outcome::NotApplicable("an appliance run, ~25 s");
        }
        let name = self.lab.name(&format!("c{n}"));
        let (source, opts) = match kind {
            Kind::Full => (&self.src, "0"),
            Kind::Linked => (&self.tpl, "1 storage s linked"),
            Kind::Reset => (&self.guest, "1 guest-identity s reset"),
        };
        let mut args = vec![source.as_str(), name.as_str()];
        args.extend(opts.split(' '));
        let job = reply_object_path(&self.bus.call("StartClone", "ssa{sv}", &args));
        self.drive_to(step);
        let mut note = String::new();
        match fault {
            Fault::Full => {
                let fillers = [fill(&self.target), fill(Path::new(SWTPM_STATE))];
                self.pauses.release(step);
                let (_, error) = self.finish(&job);
                note = error;
                for f in fillers {
                    fs::remove_file(f).unwrap();
                }
            }
            Fault::JournalReadOnly => {
                // As ext4 does on an error (errors=remount-ro): read-only at once,
                // for descriptors opened before too.
                let journal = self.state_dir().join("journal");
                run("mount", &["-o", "remount,abort", journal.to_str().unwrap()]);
                self.pauses.release(step);
                let (_, error) = self.finish(&job);
                // The disk comes back (mounted anew) under a new start of the
                // service, which settles what the journal kept (README, Storage).
                let state = self.service.take().unwrap().kill9();
                self.journal.take();
                self.journal = Some(Self::mount_journal(&self.journal_image, &journal));
                self.restart(state);
                note = format!("{error}, then a restart");
            }
            Fault::Libvirtd => {
                restart_libvirtd();
                self.pauses.release(step);
                let (_, error) = self.finish(&job);
                note = error;
            }
            Fault::Kill9 => {
                let state = self.service.take().unwrap().kill9();
                self.pauses.release(step);
                self.restart(state);
            }
            Fault::Sigterm => {
                let state = self
                    .service
                    .take()
                    .unwrap()
                    .terminate(Duration::from_secs(90));
                self.pauses.release(step);
                self.restart(state);
            }
        }
        let outcome = self.judge(kind, &name, note);
        // Each cell starts from the sources alone.
        self.remove_clone(&name);
        outcome
    }

    /// Whether the clone `name` exists whole or not at all.
    fn judge(&self, kind: Kind, name: &str, note: String) -> Outcome {
        let answers = (0..100).any(|_| {
            let ok = self.bus.try_list_vms().is_ok();
            if !ok {
                std::thread::sleep(Duration::from_millis(100));
            }
            ok
        });
        if !answers {
            return Outcome::Broken("the service does not answer ListVms".into());
        }
        let mut now = contents(&self.target);
        now.extend(contents(Path::new(SWTPM_STATE)));
        let mut problems = Vec::new();
        for (path, bytes) in &self.baseline {
            if now.get(path) != Some(bytes) {
                problems.push(format!("source file {} changed", path.display()));
            }
        }
        let new: BTreeSet<PathBuf> = now
            .keys()
            .filter(|p| !self.baseline.contains_key(*p))
            .cloned()
            .collect();
        let state = self.state_dir();
        let journal = names_or_none(&state.join("journal"));
        if !journal.is_empty() {
            problems.push(format!("journal entries left: {journal:?}"));
        }
        let work = names_or_none(&state.join("work"));
        if !work.is_empty() {
            problems.push(format!("scratch files left: {work:?}"));
        }
        let vms = self.lab.vms();
        let exists = vms.iter().any(|v| v == name);
        let others: Vec<&String> = vms
            .iter()
            .filter(|v| *v != name && !self.vms.contains(v))
            .collect();
        if !others.is_empty() {
            problems.push(format!("other domains: {others:?}"));
        }
        if exists {
            problems.extend(self.whole_problems(kind, name, &new));
        } else if !new.is_empty() {
            problems.push(format!("left behind: {new:?}"));
        }
        match (problems.is_empty(), exists) {
            (true, true) => Outcome::Whole,
            (true, false) => Outcome::Nothing(note),
            (false, _) => Outcome::Broken(format!(
                "{}\n--- service log:\n{}",
                problems.join("; "),
                self.service().log_text()
            )),
        }
    }

    /// What the existing clone `name` lacks, or has that no domain uses.
    fn whole_problems(&self, kind: Kind, name: &str, new: &BTreeSet<PathBuf>) -> Vec<String> {
        let mut problems = Vec::new();
        let mut used = BTreeSet::new();
        let (source, format) = match kind {
            Kind::Full => (&self.src, "raw"),
            Kind::Linked => (&self.tpl, "qcow2"),
            Kind::Reset => (&self.guest, "raw"),
        };
        let src_disks = disk_paths_of(source);
        let disks = disk_paths_of(name);
        if disks.len() != src_disks.len() {
            problems.push(format!("disks {disks:?} for {src_disks:?}"));
        }
        for (s, d) in src_disks.iter().zip(&disks) {
            used.insert(PathBuf::from(d));
            // A reset changes the guest's files (the guest-identity tests check
            // them): here its copy must only be there, as large as the source.
            let same = match kind {
                Kind::Reset => {
                    fs::metadata(d).map(|m| m.len()).ok() == fs::metadata(s).map(|m| m.len()).ok()
                }
                _ => qemu_img(&["compare", "-f", format, "-F", format, s, d]).contains("identical"),
            };
            if !same {
                problems.push(format!("{d} differs from {s}"));
            }
        }
        if kind == Kind::Full {
            let vars = self.target.join(format!("{name}_VARS.fd"));
            let src_vars = self.target.join("src_VARS.fd");
            if fs::read(&vars).ok() != fs::read(&src_vars).ok() {
                problems.push(format!("{} missing or different", vars.display()));
            }
            used.insert(vars);
            let uuid = virsh(&["domuuid", name]).trim().to_string();
            let src_uuid = virsh(&["domuuid", &self.src]).trim().to_string();
            let tree = |u: &str| -> BTreeMap<PathBuf, Vec<u8>> {
                let dir = Path::new(SWTPM_STATE).join(u);
                contents(&dir)
                    .into_iter()
                    .map(|(p, b)| (p.strip_prefix(&dir).unwrap().to_owned(), b))
                    .collect()
            };
            let (copy, original) = (tree(&uuid), tree(&src_uuid));
            if copy.is_empty() || copy != original {
                problems.push("TPM state missing or different".into());
            }
            used.extend(
                copy.keys()
                    .map(|p| Path::new(SWTPM_STATE).join(&uuid).join(p)),
            );
        }
        let unused: Vec<&PathBuf> = new.difference(&used).collect();
        if !unused.is_empty() {
            problems.push(format!("files no domain uses: {unused:?}"));
        }
        let missing: Vec<&PathBuf> = used.difference(new).collect();
        if !missing.is_empty() {
            problems.push(format!("missing: {missing:?}"));
        }
        problems
    }

    /// Removes the clone `name` and every file the sources did not have.
    fn remove_clone(&self, name: &str) {
        let _ = try_virsh(&["undefine", name, "--nvram", "--tpm"]);
        for dir in [self.target.as_path(), Path::new(SWTPM_STATE)] {
            for entry in fs::read_dir(dir).unwrap().flatten() {
                let p = entry.path();
                let keep = self.baseline.keys().any(|b| b.starts_with(&p));
                if !keep {
                    let _ = fs::remove_file(&p).or_else(|_| fs::remove_dir_all(&p));
                }
            }
        }
    }
}

impl Drop for World {
    fn drop(&mut self) {
        // The service first, so the journal's filesystem is free to unmount.
        let state = self.service.take().map(Service::kill9);
        self.journal.take();
        drop(state);
    }
}

/// The outcome a cell must have, where the README promises one (None: either).
fn required(step: &str, fault: Fault) -> Option<bool> {
    match (step, fault) {
        // Nothing defined yet: every fault stops the clone (a libvirtd restart
        // too, since events may have been missed).
        ("before-define", Fault::Full | Fault::Libvirtd) => Some(true),
        ("before-define", _) => Some(false),
        // Defined: a killed service keeps it; a journal that cannot commit removes it.
        ("after-define", Fault::Kill9) => Some(true),
        ("after-define", Fault::JournalReadOnly) => Some(false),
        ("after-define", _) => None,
        ("after-commit", _) => Some(true),
        _ => Some(false),
    }
}

#[test]
#[ignore = "needs root (tmpfs mounts), libvirtd, QEMU and libguestfs; restarts libvirtd"]
fn every_fault_at_every_step_leaves_a_whole_clone_or_nothing() {
    // The reset's appliance without KVM (the service inherits this).
    for (k, v) in FORCE_TCG {
        std::env::set_var(k, v);
    }
    let started = Instant::now();
    let mut world = World::new();
    let mut table = Vec::new();
    let mut broken = 0;
    let mut n = 0;
    for (label, kind, step) in ROWS {
        let mut row = Vec::new();
        for (fault, _) in FAULTS {
            n += 1;
            let mut outcome = world.cell(kind, step, fault, n);
            let whole = match &outcome {
                Outcome::Whole => Some(true),
                Outcome::Nothing(_) => Some(false),
                _ => None,
            };
            if let (Some(want), Some(got)) = (required(step, fault), whole) {
                if want != got {
                    outcome = Outcome::Broken(format!(
                        "{outcome} where the README promises {}",
                        if want { "a whole clone" } else { "nothing" }
                    ));
                }
            }
            if let Outcome::Broken(what) = &outcome {
                broken += 1;
                eprintln!("{label} × {}: {what}", FAULTS[row.len()].1);
            }
            row.push(outcome.to_string());
        }
        table.push((label, row));
    }
    let mut out = format!("| step | {} |\n|---|", FAULTS.map(|f| f.1).join(" | "));
    out.push_str(&"---|".repeat(FAULTS.len()));
    for (label, row) in &table {
        let cells: Vec<&str> = row.iter().map(|c| c.lines().next().unwrap()).collect();
        out.push_str(&format!("\n| {label} | {} |", cells.join(" | ")));
    }
    eprintln!(
        "\nfault matrix ({} cells in {:.0?}):\n{out}\n",
        n,
        started.elapsed()
    );
    assert_eq!(
        broken, 0,
        "cells with a half-made clone or a changed source"
    );
    drop(world);
}
