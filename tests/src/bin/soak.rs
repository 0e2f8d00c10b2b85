//! The soak run (`tools/soak.sh [--minutes N]`): the built service as root on the
//! system bus with polkit, on the real libvirtd with QEMU, for N minutes (default
//! 10): parallel full, linked and live clones (and now and then one with
//! `guest-identity=reset`) from several sources, cancels at random moments, an
//! unprivileged user listing VMs, `virsh start`/`destroy` of a source. Then a
//! table, and the leak check: every clone whole, nothing left that no domain uses,
//! memory and descriptors flat. Exits 1 when a check fails.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use vmclone_tests::dice::Dice;
use vmclone_tests::guest::{make_guest_disk, FORCE_TCG};
use vmclone_tests::libvirt::{
    disk_paths_of, disk_xml, disk_xml_on, qcow2_image, qemu_img, raw_image, try_virsh, uefi_os,
    virsh, wait_running, Lab, NIC, OVMF_VARS, SWTPM_STATE, SYSTEM_URI as URI,
};
use vmclone_tests::service::SystemService;
use vmclone_tests::system::{RootTest, TestUser};
use vmclone_tests::*;

#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug)]
enum Kind {
    Full,
    Linked,
    Live,
    Reset,
}

/// A VM the soak clones.
struct Source {
    name: String,
    kind: Kind,
    /// Its disks with their formats.
    disks: Vec<(PathBuf, &'static str)>,
    nvram: Option<PathBuf>,
    tpm: bool,
}

/// What the clones came to, by kind.
#[derive(Default)]
struct Tally {
    made: BTreeMap<Kind, u32>,
    cancelled: BTreeMap<Kind, u32>,
    /// By kind and error name: how many, and the first message.
    failed: BTreeMap<(Kind, String), (u32, String)>,
    /// Each clone made, with the index of its source.
    clones: Vec<(String, usize)>,
}

impl Tally {
    fn failed(&mut self, kind: Kind, error: String, message: String) {
        let entry = self.failed.entry((kind, error)).or_insert((0, message));
        entry.0 += 1;
    }
}

/// The service's resident memory (KiB) and open descriptors.
fn usage(pid: u32) -> (u64, usize) {
    let status = fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let rss = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let fds = fs::read_dir(format!("/proc/{pid}/fd")).unwrap().count();
    (rss, fds)
}

/// Median and p99 of `times`, in milliseconds.
fn percentiles(times: &mut [Duration]) -> (f64, f64) {
    if times.is_empty() {
        return (0.0, 0.0);
    }
    times.sort();
    let at = |q: f64| times[((times.len() - 1) as f64 * q).round() as usize].as_secs_f64() * 1e3;
    (at(0.5), at(0.99))
}

fn make_sources(lab: &Lab, with_reset: bool) -> Vec<Source> {
    let mut sources = Vec::new();
    let raw = lab.path("s-raw.raw");
    raw_image(
        &raw,
        16 << 20,
        &["write -P 0x11 0 3M", "write -P 0x12 9M 2M"],
    );
    let name = lab.name("s-raw");
    lab.define(&name, "", &format!("{}{NIC}", disk_xml(&raw, "raw")));
    sources.push(Source {
        name,
        kind: Kind::Full,
        disks: vec![(raw, "raw")],
        nvram: None,
        tpm: false,
    });

    let (q0, q1) = (lab.path("s-qcow2-0.qcow2"), lab.path("s-qcow2-1.qcow2"));
    qcow2_image(&q0, "16M", "write -P 0x21 0 4M");
    qcow2_image(&q1, "8M", "write -P 0x22 2M 2M");
    let name = lab.name("s-qcow2");
    let devices = format!(
        "{}{}{NIC}",
        disk_xml(&q0, "qcow2"),
        disk_xml_on(&q1, "qcow2", "vdb")
    );
    lab.define(&name, "", &devices);
    sources.push(Source {
        name,
        kind: Kind::Full,
        disks: vec![(q0, "qcow2"), (q1, "qcow2")],
        nvram: None,
        tpm: false,
    });

    // UEFI and TPM, if swtpm works here: one boot makes the TPM state.
    let disk = lab.path("s-uefi.raw");
    raw_image(&disk, 8 << 20, &["write -P 0x31 0 2M"]);
    let vars = lab.path("s-uefi_VARS.fd");
    fs::copy(OVMF_VARS, &vars).unwrap();
    let name = lab.name("s-uefi");
    let tpm = "<tpm model='tpm-tis'><backend type='emulator' version='2.0'/></tpm>";
    let devices = format!("{}{NIC}", disk_xml(&disk, "raw"));
    lab.define(&name, &uefi_os(&vars), &format!("{devices}{tpm}"));
    let has_tpm = try_virsh(&["start", &name]).is_ok();
    if has_tpm {
        wait_running(&name);
        virsh(&["destroy", &name]);
    } else {
        eprintln!("soak: swtpm does not work here; the UEFI source has no TPM");
        lab.define(&name, &uefi_os(&vars), &devices);
    }
    sources.push(Source {
        name,
        kind: Kind::Full,
        disks: vec![(disk, "raw")],
        nvram: Some(vars),
        tpm: has_tpm,
    });

    let t = lab.path("s-tpl.qcow2");
    qcow2_image(&t, "16M", "write -P 0x41 0 4M");
    let name = lab.name("s-tpl");
    lab.define(&name, "", &format!("{}{NIC}", disk_xml(&t, "qcow2")));
    sources.push(Source {
        name,
        kind: Kind::Linked,
        disks: vec![(t, "qcow2")],
        nvram: None,
        tpm: false,
    });

    let l = lab.path("s-live.raw");
    raw_image(&l, 16 << 20, &["write -P 0x51 0 4M"]);
    let name = lab.name("s-live");
    lab.define(&name, "", &format!("{}{NIC}", disk_xml(&l, "raw")));
    virsh(&["start", &name]);
    wait_running(&name);
    sources.push(Source {
        name,
        kind: Kind::Live,
        disks: vec![(l, "raw")],
        nvram: None,
        tpm: false,
    });

    if with_reset {
        let g = lab.path("s-guest.raw");
        make_guest_disk(&g);
        let name = lab.name("s-guest");
        lab.define(&name, "", &format!("{}{NIC}", disk_xml(&g, "raw")));
        sources.push(Source {
            name,
            kind: Kind::Reset,
            disks: vec![(g, "raw")],
            nvram: None,
            tpm: false,
        });
    }
    sources
}

/// The bytes of every offline source's files (its TPM state too).
fn source_bytes(sources: &[Source]) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut out = BTreeMap::new();
    for s in sources.iter().filter(|s| s.kind != Kind::Live) {
        let mut files: Vec<PathBuf> = s.disks.iter().map(|(p, _)| p.clone()).collect();
        files.extend(s.nvram.clone());
        if s.tpm {
            let dir = Path::new(SWTPM_STATE).join(virsh(&["domuuid", &s.name]).trim());
            files.extend(vmclone_tests::temp::file_sizes(&dir).into_keys());
        }
        for f in files {
            let bytes = fs::read(&f).unwrap();
            out.insert(f, bytes);
        }
    }
    out
}

/// The TPM state folder of `vm`, file by file (paths relative to it).
fn tpm_tree(vm: &str) -> BTreeMap<PathBuf, Vec<u8>> {
    let dir = Path::new(SWTPM_STATE).join(virsh(&["domuuid", vm]).trim());
    vmclone_tests::temp::file_sizes(&dir)
        .into_keys()
        .map(|p| {
            let bytes = fs::read(&p).unwrap();
            (p.strip_prefix(&dir).unwrap().to_owned(), bytes)
        })
        .collect()
}

/// What is wrong with the clone `vm` of `source`: a missing or different disk,
/// NVRAM or TPM state. A live clone's source moved on, so its copies are only
/// checked to be there and readable.
fn clone_problems(vm: &str, source: &Source) -> Vec<String> {
    let mut problems = Vec::new();
    let disks = disk_paths_of(vm);
    if disks.len() != source.disks.len() {
        problems.push(format!("{vm}: disks {disks:?}"));
        return problems;
    }
    for ((src, format), copy) in source.disks.iter().zip(&disks) {
        let same = match source.kind {
            Kind::Full => {
                let out = qemu_img(&[
                    "compare",
                    "-f",
                    format,
                    "-F",
                    format,
                    src.to_str().unwrap(),
                    copy,
                ]);
                out.contains("identical")
            }
            Kind::Linked => qemu_img(&["compare", "-F", "qcow2", src.to_str().unwrap(), copy])
                .contains("identical"),
            Kind::Live | Kind::Reset => Path::new(copy).exists(),
        };
        if !same {
            problems.push(format!("{vm}: {copy} is not {}", src.display()));
        }
    }
    if let Some(vars) = &source.nvram {
        let xml = virsh(&["dumpxml", "--inactive", vm]);
        let copy = PathBuf::from(vars.parent().unwrap()).join(format!("{vm}_VARS.fd"));
        if !xml.contains(copy.to_str().unwrap()) || fs::read(&copy).ok() != fs::read(vars).ok() {
            problems.push(format!(
                "{vm}: NVRAM {} missing or different",
                copy.display()
            ));
        }
    }
    if source.tpm {
        let copy = tpm_tree(vm);
        if copy.is_empty() || copy != tpm_tree(&source.name) {
            problems.push(format!("{vm}: TPM state missing or different"));
        }
    }
    problems
}

/// One cloner: clones from random sources until `stop`, cancelling some.
fn cloner(
    id: usize,
    bus: Client,
    lab: &Lab,
    sources: &[Source],
    tally: &Mutex<Tally>,
    stop: &AtomicBool,
) {
    let mut dice = Dice::new("VMCLONE_SOAK_SEED");
    // The cloners' sequences differ even with one seed given.
    for _ in 0..id {
        dice.below(2);
    }
    let mut n = 0;
    while !stop.load(Ordering::Relaxed) {
        n += 1;
        // A reset runs the libguestfs appliance (~25 s): about one clone in fifty.
        let pick = loop {
            let i = dice.below(sources.len() as u64) as usize;
            if sources[i].kind != Kind::Reset || dice.below(8) == 0 {
                break i;
            }
        };
        let source = &sources[pick];
        let name = lab.name(&format!("c{id}-{n}"));
        let opts: &[&str] = match source.kind {
            Kind::Full => &["0"],
            Kind::Linked => &["1", "storage", "s", "linked"],
            Kind::Live => &["1", "live", "b", "true"],
            Kind::Reset => &["1", "guest-identity", "s", "reset"],
        };
        let mut args = vec![source.name.as_str(), name.as_str()];
        args.extend(opts);
        let out = bus.call("StartClone", "ssa{sv}", &args);
        if !out.status.success() {
            let (error, message) = gdbus_error(&out);
            tally.lock().unwrap().failed(source.kind, error, message);
            continue;
        }
        let job = reply_object_path(&out);
        if dice.below(4) == 0 {
            std::thread::sleep(Duration::from_millis(dice.below(1500)));
            // It may have ended already: then the cancel is refused, which is fine.
            let _ = bus.busctl(["call", BUS_NAME, &job, JOB_INTERFACE, "Cancel"]);
        }
        let state = bus.wait_for_job_end(&job, Duration::from_secs(600));
        let mut t = tally.lock().unwrap();
        match state.as_str() {
            "succeeded" => {
                *t.made.entry(source.kind).or_default() += 1;
                t.clones.push((name, pick));
            }
            "cancelled" => *t.cancelled.entry(source.kind).or_default() += 1,
            _ => {
                let error = bus.job_property(&job, "ErrorName");
                let error = error
                    .trim_start_matches("s \"org.vmclone.Error.")
                    .trim_end_matches('"')
                    .to_string();
                t.failed(source.kind, error, bus.job_property(&job, "Error"));
            }
        }
    }
}

fn main() {
    let mut args = std::env::args().skip(1);
    let mut minutes: f64 = 10.0;
    while let Some(a) = args.next() {
        match a.as_str() {
            "--minutes" => {
                minutes = args
                    .next()
                    .and_then(|m| m.parse().ok())
                    .expect("--minutes N")
            }
            other => panic!("soak: unknown argument {other} (usage: soak [--minutes N])"),
        }
    }
    let with_reset = Command::new("virt-customize")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if with_reset {
        // The service inherits this: the appliance without KVM.
        for (k, v) in FORCE_TCG {
            std::env::set_var(k, v);
        }
    }
    let root = RootTest::begin();
    let lab = Lab::new("soak");
    // Before the sources: their own TPM state counts as made by the soak.
    let tpm_before: BTreeSet<String> = names_in(Path::new(SWTPM_STATE)).into_iter().collect();
    eprintln!("soak: making the sources…");
    let sources = make_sources(&lab, with_reset);
    let meta = lab.name("s-meta");
    lab.define(&meta, "", NIC);
    let before = source_bytes(&sources);
    let service = SystemService::start(&root, URI);
    let bus = Client::system();
    let tpl = &sources
        .iter()
        .find(|s| s.kind == Kind::Linked)
        .unwrap()
        .name;
    stdout_ok(&bus.call("ConvertToTemplate", "s", &[tpl]));
    let user = TestUser::create("vmclone-soak", None);
    // Warm: the first calls open what the service keeps open.
    let _ = bus.list_vms();
    let start_usage = usage(service.pid());
    eprintln!("soak: running for {minutes} min…");

    let tally = Mutex::new(Tally::default());
    let stop = AtomicBool::new(false);
    let list_times = Mutex::new(Vec::new());
    let meta_times = Mutex::new(Vec::new());
    let meta_clones = Mutex::new(Vec::new());
    let starts = Mutex::new((0u32, 0u32));
    let mid_usage = Mutex::new(None);
    std::thread::scope(|s| {
        for id in 0..3 {
            let (bus, lab, sources, tally, stop) = (bus.clone(), &lab, &sources, &tally, &stop);
            s.spawn(move || cloner(id, bus, lab, sources, tally, stop));
        }
        // The unprivileged user, listing and reading VMs without a pause.
        s.spawn(|| {
            while !stop.load(Ordering::Relaxed) {
                let t = Instant::now();
                let vms = user.try_list_vms();
                list_times.lock().unwrap().push(t.elapsed());
                if let Some(vm) = vms.ok().and_then(|v| v.into_iter().next()) {
                    let _ = user.call("GetVm", "s", &[&vm.name]);
                }
            }
        });
        // A metadata-only clone (no disks) now and then, timed.
        s.spawn(|| {
            let mut n = 0;
            while !stop.load(Ordering::Relaxed) {
                n += 1;
                let name = lab.name(&format!("m{n}"));
                let t = Instant::now();
                let out = bus.call("CloneVm", "ss", &[&meta, &name]);
                if out.status.success() {
                    meta_times.lock().unwrap().push(t.elapsed());
                    meta_clones.lock().unwrap().push(name);
                }
                std::thread::sleep(Duration::from_secs(1));
            }
        });
        // Starts and stops of a source: a clone of it that runs meanwhile must fail.
        s.spawn(|| {
            let src = &sources[0].name;
            while !stop.load(Ordering::Relaxed) {
                std::thread::sleep(Duration::from_secs(7));
                let ok = try_virsh(&["start", src]).is_ok();
                let mut st = starts.lock().unwrap();
                match ok {
                    true => st.0 += 1,
                    false => st.1 += 1,
                }
                drop(st);
                std::thread::sleep(Duration::from_secs(2));
                let _ = try_virsh(&["destroy", src]);
            }
        });
        let deadline = Instant::now() + Duration::from_secs_f64(minutes * 60.0);
        let half = Instant::now() + Duration::from_secs_f64(minutes * 30.0);
        while Instant::now() < deadline {
            if Instant::now() >= half && mid_usage.lock().unwrap().is_none() {
                let clones = tally.lock().unwrap().clones.len() + meta_clones.lock().unwrap().len();
                *mid_usage.lock().unwrap() = Some((usage(service.pid()), clones));
            }
            std::thread::sleep(Duration::from_secs(1));
        }
        stop.store(true, Ordering::Relaxed);
    });
    let _ = try_virsh(&["destroy", &sources[0].name]);
    let end_usage = usage(service.pid());

    // The leak check.
    let tally = tally.into_inner().unwrap();
    let meta_clones = meta_clones.into_inner().unwrap();
    let mut problems = Vec::new();
    for (vm, i) in &tally.clones {
        problems.extend(clone_problems(vm, &sources[*i]));
    }
    let vms: BTreeSet<String> = lab.vms().into_iter().collect();
    for vm in tally.clones.iter().map(|(v, _)| v).chain(&meta_clones) {
        if !vms.contains(vm) {
            problems.push(format!("{vm} was made but is gone"));
        }
    }
    if source_bytes(&sources) != before {
        problems.push("a source's files changed".into());
    }
    let (orphans, missing) = lab.orphans_and_missing(&tpm_before);
    if !orphans.is_empty() {
        problems.push(format!("left behind: {orphans:?}"));
    }
    if !missing.is_empty() {
        problems.push(format!("used but missing: {missing:?}"));
    }
    let journal = service.state_dir().join("journal");
    let left: Vec<String> = match journal.exists() {
        true => names_in(&journal),
        false => Vec::new(),
    };
    if !left.is_empty() {
        problems.push(format!("journal entries left: {left:?}"));
    }
    let ((rss0, fds0), (rss1, fds1)) = (start_usage, end_usage);
    let mid = *mid_usage.lock().unwrap();
    if let Some(((rss_mid, fds_mid), _)) = mid {
        // Flat from the middle on: a leak per clone would keep growing.
        if rss1 > rss_mid + rss_mid / 5 + 8192 {
            problems.push(format!(
                "RSS grew from {rss_mid} KiB at half time to {rss1} KiB"
            ));
        }
        if fds1 > fds_mid + 4 {
            problems.push(format!(
                "descriptors grew from {fds_mid} at half time to {fds1}"
            ));
        }
    }

    let mut list = list_times.into_inner().unwrap();
    let mut meta_t = meta_times.into_inner().unwrap();
    let (l50, l99) = percentiles(&mut list);
    let (m50, m99) = percentiles(&mut meta_t);
    let starts = starts.into_inner().unwrap();
    println!(
        "\nsoak: {minutes} min, 3 cloners, 1 unprivileged lister, virsh start/destroy every 9 s\n"
    );
    println!("| clones | made | cancelled | failed (error) |");
    println!("|---|---|---|---|");
    for kind in [Kind::Full, Kind::Linked, Kind::Live, Kind::Reset] {
        let failed: Vec<String> = tally
            .failed
            .iter()
            .filter(|((k, _), _)| *k == kind)
            .map(|((_, e), (n, _))| format!("{n} {e}"))
            .collect();
        println!(
            "| {kind:?} | {} | {} | {} |",
            tally.made.get(&kind).unwrap_or(&0),
            tally.cancelled.get(&kind).unwrap_or(&0),
            match failed.is_empty() {
                true => "0".to_string(),
                false => failed.join(", "),
            }
        );
    }
    println!(
        "| metadata-only (CloneVm) | {} | – | – |",
        meta_clones.len()
    );
    for ((kind, error), (_, message)) in &tally.failed {
        println!("  {kind:?} {error}, e.g.: {message}");
    }
    println!();
    println!("| under load | calls | median | p99 |");
    println!("|---|---|---|---|");
    println!(
        "| ListVms (unprivileged) | {} | {l50:.1} ms | {l99:.1} ms |",
        list.len()
    );
    println!(
        "| metadata-only clone | {} | {m50:.1} ms | {m99:.1} ms |",
        meta_t.len()
    );
    println!();
    let mid_text = match mid {
        Some(((r, f), n)) => format!("{} MiB, {f} fds after {n} clones", r / 1024),
        None => "–".into(),
    };
    println!("| service | start | half time | end |");
    println!("|---|---|---|---|");
    println!(
        "| RSS, open fds | {} MiB, {fds0} | {mid_text} | {} MiB, {fds1} after {} clones |",
        rss0 / 1024,
        rss1 / 1024,
        tally.clones.len() + meta_clones.len()
    );
    println!(
        "\nvirsh start of the source: {} started, {} refused (a clone held its disk); leak check: {}",
        starts.0,
        starts.1,
        match problems.is_empty() {
            true => "every clone whole, nothing left behind".to_string(),
            false => format!("{} problems", problems.len()),
        }
    );
    for p in &problems {
        println!("  - {p}");
    }
    if !problems.is_empty() {
        let log = service.log_text();
        let tail: Vec<&str> = log
            .lines()
            .rev()
            .filter(|l| !l.contains("DEBUG"))
            .take(60)
            .collect();
        eprintln!("the service log's end:");
        for l in tail.into_iter().rev() {
            eprintln!("{l}");
        }
    }
    // Everything the soak made goes with the lab (its VMs, files, NVRAM, TPM state).
    drop(service);
    drop(user);
    drop(lab);
    drop(root);
    std::process::exit(i32::from(!problems.is_empty()));
}
