//! Live clones on the real thing: libvirtd with QEMU (`qemu:///system`), the
//! real service on a private bus. The sources run without a guest OS (QEMU
//! runs its firmware). While a source's backup copies, the test writes new
//! bytes into its disks through its QEMU, as a guest would, and then proves
//! that the clone holds the disks as they were at the moment of the copy and
//! the source the new bytes. Where a copy must outlast what the test does,
//! libvirt throttles QEMU's reads of the source (`<blkiotune>`), and lifts
//! the throttle once the test has written.
//!
//! These tests need root and a running libvirtd; they are `#[ignore]`d in the
//! quick run and fail loudly when libvirtd is missing.

use std::collections::BTreeMap;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::json;

use vmclone_tests::libvirt::{
    disk_paths_of, qemu_img, virsh, wait_running, Lab, NIC, SWTPM_STATE, SYSTEM_URI as URI,
};
use vmclone_tests::live::{
    block_device_of, dom_id, holds_pattern, job_type, lift_read_throttle, qemu_block_jobs,
    read_throttle_xml, uncached_disk_xml, wait_for_backup_job, write_in_guest,
};
use vmclone_tests::pauses::Pauses;
use vmclone_tests::process::run;
use vmclone_tests::temp::file_sizes;
use vmclone_tests::*;

/// The raw disk: this much data (0xaa) at its start, in a 1 GiB file.
const RAW_DATA_MIB: u64 = 256;
/// The qcow2 disk: this much data (0xbb) at its start, 256 MiB virtual.
const QCOW2_DATA_MIB: u64 = 64;
/// QEMU's reads of a throttled source: the copy of both disks' data takes
/// about 20 s unless the test lifts the throttle.
const THROTTLE: u64 = 16 << 20;

fn start_service() -> (PrivateBus, Service) {
    let bus = PrivateBus::start();
    let service = Service::start(&bus, URI, &[]);
    (bus, service)
}

/// A running source VM with a raw and a qcow2 disk of known bytes, and
/// copies of both made before it started, to compare clones with.
struct Source {
    name: String,
    raw: PathBuf,
    qcow2: PathBuf,
    pristine_raw: PathBuf,
    pristine_qcow2: PathBuf,
    /// The block device QEMU's reads are throttled on, if they are.
    throttled: Option<String>,
}

impl Source {
    fn start(lab: &Lab, tag: &str, throttle: bool, os_extra: &str, devices_extra: &str) -> Source {
        let name = lab.name(tag);
        let raw = lab.path(&format!("{tag}.raw"));
        std::fs::File::create(&raw)
            .unwrap()
            .set_len(1 << 30)
            .unwrap();
        let qcow2 = lab.path(&format!("{tag}.qcow2"));
        let (r, q) = (raw.to_str().unwrap(), qcow2.to_str().unwrap());
        run(
            "qemu-io",
            &[
                "-f",
                "raw",
                "-c",
                &format!("write -P 0xaa 0 {RAW_DATA_MIB}M"),
                r,
            ],
        );
        qemu_img(&["create", "-q", "-f", "qcow2", q, "256M"]);
        run(
            "qemu-io",
            &[
                "-f",
                "qcow2",
                "-c",
                &format!("write -P 0xbb 0 {QCOW2_DATA_MIB}M"),
                q,
            ],
        );
        let pristine_raw = lab.path(&format!("{tag}-pristine.raw"));
        let pristine_qcow2 = lab.path(&format!("{tag}-pristine.qcow2"));
        run(
            "cp",
            &["--sparse=always", r, pristine_raw.to_str().unwrap()],
        );
        run("cp", &[q, pristine_qcow2.to_str().unwrap()]);
        let throttled = throttle.then(|| block_device_of(lab.dir()));
        let tune = throttled
            .as_deref()
            .map(|d| read_throttle_xml(d, THROTTLE))
            .unwrap_or_default();
        let devices = format!(
            "{}{}{NIC}{devices_extra}",
            uncached_disk_xml(&raw, "raw", "vda"),
            uncached_disk_xml(&qcow2, "qcow2", "vdb"),
        );
        lab.define(&name, os_extra, &devices);
        if !tune.is_empty() {
            // <blkiotune> goes into <domain>, which Lab::define does not write.
            let xml = virsh(&["dumpxml", "--inactive", &name]).replacen(
                "<memory",
                &format!("{tune}<memory"),
                1,
            );
            let file = lab.path(&format!("{tag}-tuned.xml"));
            std::fs::write(&file, xml).unwrap();
            virsh(&["define", file.to_str().unwrap()]);
        }
        virsh(&["start", &name]);
        wait_running(&name);
        Source {
            name,
            raw,
            qcow2,
            pristine_raw,
            pristine_qcow2,
            throttled,
        }
    }

    fn lift_throttle(&self) {
        if let Some(dev) = &self.throttled {
            lift_read_throttle(&self.name, dev);
        }
    }

    /// The clone `name`'s disks hold exactly what this source's disks held
    /// when it started.
    fn assert_copied_as_it_was(&self, clone: &str) {
        let disks = disk_paths_of(clone);
        assert_eq!(disks.len(), 2, "{disks:?}");
        for (copy, pristine, format) in [
            (&disks[0], &self.pristine_raw, "raw"),
            (&disks[1], &self.pristine_qcow2, "qcow2"),
        ] {
            assert!(qemu_img(&["info", copy]).contains(&format!("file format: {format}")));
            let compare = qemu_img(&[
                "compare",
                "-f",
                format,
                "-F",
                format,
                copy,
                pristine.to_str().unwrap(),
            ]);
            assert!(compare.contains("identical"), "{copy}: {compare}");
            assert!(
                !qemu_img(&["info", copy]).contains("backing file"),
                "{copy} stands on nothing"
            );
        }
    }
}

/// `StartClone` of `src` to `clone` with `live`; the job's path.
fn start_live(bus: &PrivateBus, src: &str, clone: &str) -> String {
    reply_object_path(&bus.call(
        "StartClone",
        "ssa{sv}",
        &[src, clone, "1", "live", "b", "true"],
    ))
}

fn job_u64(bus: &PrivateBus, path: &str, name: &str) -> u64 {
    bus.job_property(path, name)
        .trim_start_matches("t ")
        .parse()
        .unwrap()
}

fn finished(signals: &SignalWatch, path: &str) -> String {
    signals.wait_for(
        &format!("{path}: org.vmclone.Job.Finished"),
        Duration::from_secs(180),
    )
}

/// Asserts that the job ended `state`, showing its error otherwise.
fn assert_ended(bus: &PrivateBus, signals: &SignalWatch, path: &str, state: &str) {
    let line = finished(signals, path);
    assert!(
        line.contains(&format!("'{state}'")),
        "{line}: {}",
        bus.job_property(path, "Error")
    );
}

/// No private folder of a live clone is left in the lab.
fn assert_no_staging(files: &BTreeMap<PathBuf, u64>) {
    let staged: Vec<&PathBuf> = files
        .keys()
        .filter(|p| p.to_string_lossy().contains(".vmclone-live-"))
        .collect();
    assert!(staged.is_empty(), "left behind: {staged:?}");
}

#[test]
#[ignore = "needs root, libvirtd and QEMU"]
fn a_running_vm_is_cloned_as_it_was_while_its_guest_writes() {
    let lab = Lab::new("live");
    let src = Source::start(&lab, "src", true, "", "");
    let id = dom_id(&src.name);
    let (bus, _service) = start_service();
    let signals = SignalWatch::start(&bus);
    let clone = lab.name("clone");
    // The plan says how: both disks copied live, whole.
    let plan = bus.call_json(
        "PlanClone",
        "ssa{sv}",
        &[&src.name, &clone, "1", "live", "b", "true"],
    );
    assert_eq!(
        pick(&plan["disks"], &["action"]),
        [json!(["live"]), json!(["live"])]
    );
    let virtual_sizes: u64 = plan["disks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["virtual-size"].as_u64().unwrap())
        .sum();
    assert_eq!(plan["bytes-to-copy"], virtual_sizes);
    assert!(plan["warnings"]
        .to_string()
        .contains("copied as they are at one moment"));
    let path = start_live(&bus, &src.name, &clone);
    signals.wait_for_bytes(&path);
    assert_eq!(job_u64(&bus, &path, "BytesTotal"), virtual_sizes);

    // The backup (one QEMU job per copied disk) has not reached the ranges
    // the guest now overwrites: copy-before-write must keep the old bytes.
    let jobs = qemu_block_jobs(&src.name);
    assert_eq!(jobs.len(), 2, "{jobs:?}");
    for job in &jobs {
        assert_eq!(job.kind, "backup", "{jobs:?}");
        assert!(
            job.offset < (QCOW2_DATA_MIB - 8) << 20,
            "already copied: {jobs:?}"
        );
    }
    write_in_guest(&src.name, 0, 0xcc, RAW_DATA_MIB - 8, 8);
    write_in_guest(&src.name, 1, 0xdd, QCOW2_DATA_MIB - 8, 8);
    // And where the source had a hole.
    write_in_guest(&src.name, 0, 0xee, 512, 8);
    assert!(
        qemu_block_jobs(&src.name)
            .iter()
            .any(|j| j.status == "running"),
        "the backup still runs after the writes"
    );
    src.lift_throttle();
    assert_ended(&bus, &signals, &path, "succeeded");

    src.assert_copied_as_it_was(&clone);
    let disks = disk_paths_of(&clone);
    assert!(holds_pattern(
        Path::new(&disks[0]),
        "raw",
        0xaa,
        RAW_DATA_MIB - 8,
        8
    ));
    assert!(holds_pattern(Path::new(&disks[0]), "raw", 0x00, 512, 8));
    assert!(holds_pattern(
        Path::new(&disks[1]),
        "qcow2",
        0xbb,
        QCOW2_DATA_MIB - 8,
        8
    ));
    assert!(holds_pattern(&src.raw, "raw", 0xcc, RAW_DATA_MIB - 8, 8));
    assert!(holds_pattern(&src.raw, "raw", 0xee, 512, 8));
    assert!(holds_pattern(
        &src.qcow2,
        "qcow2",
        0xdd,
        QCOW2_DATA_MIB - 8,
        8
    ));

    // Holes stay holes, and the copies are the source's as it is when shut off.
    let (copy, pristine) = (
        Path::new(&disks[0]).metadata().unwrap(),
        src.pristine_raw.metadata().unwrap(),
    );
    assert!(
        copy.blocks() <= pristine.blocks() + (16 << 20) / 512,
        "the copy is not sparse: {} blocks against {}",
        copy.blocks(),
        pristine.blocks()
    );
    for disk in &disks {
        let m = Path::new(disk).metadata().unwrap();
        assert_eq!((m.uid(), m.gid()), (0, 0), "{disk}");
    }

    assert_eq!(bus.job_property(&path, "Consistency"), "s \"crash\"");
    let paused = job_u64(&bus, &path, "PausedMs");
    assert!(paused > 0 && paused < 10_000, "paused {paused} ms");
    let total = job_u64(&bus, &path, "BytesTotal");
    assert_eq!(job_u64(&bus, &path, "BytesDone"), total);
    assert_eq!(
        total,
        (1 << 30) + (256 << 20),
        "the backup walks both disks whole"
    );

    // The source ran the whole time, and nothing of the backup is left.
    assert_eq!(dom_id(&src.name), id, "the source was never restarted");
    assert_eq!(virsh(&["domstate", &src.name]).trim(), "running");
    assert_eq!(job_type(&src.name), "None");
    assert_no_staging(&lab.files());
    let uuid = bus.job_property(&path, "ClonedVmId");
    assert!(uuid.len() > 30, "{uuid}");

    // Clone and source run side by side.
    virsh(&["start", &clone]);
    wait_running(&clone);
    assert_eq!(virsh(&["domstate", &src.name]).trim(), "running");
}

#[test]
#[ignore = "needs root, libvirtd and QEMU"]
fn a_paused_source_stays_paused() {
    let lab = Lab::new("live-paused");
    let src = Source::start(&lab, "src", false, "", "");
    virsh(&["suspend", &src.name]);
    let id = dom_id(&src.name);
    let (bus, _service) = start_service();
    let signals = SignalWatch::start(&bus);
    let clone = lab.name("clone");
    let path = start_live(&bus, &src.name, &clone);
    assert_ended(&bus, &signals, &path, "succeeded");
    assert_eq!(virsh(&["domstate", &src.name]).trim(), "paused");
    assert_eq!(dom_id(&src.name), id);
    assert_eq!(
        job_u64(&bus, &path, "PausedMs"),
        0,
        "vmclone did not pause it"
    );
    assert_eq!(bus.job_property(&path, "Consistency"), "s \"crash\"");
    src.assert_copied_as_it_was(&clone);
    assert_eq!(job_type(&src.name), "None");
    assert_no_staging(&lab.files());
}

#[test]
#[ignore = "needs root, libvirtd and QEMU"]
fn a_live_copy_under_the_units_capabilities_has_the_owner_and_mode_of_a_full_copy() {
    let lab = Lab::new("live-owner");
    let img = lab.path("owned.raw");
    std::fs::File::create(&img)
        .unwrap()
        .set_len(64 << 20)
        .unwrap();
    // A user's image, group-readable: libvirt hands it to QEMU's user while
    // the VM runs and remembers this owner.
    std::os::unix::fs::chown(&img, Some(4242), Some(4343)).unwrap();
    std::fs::set_permissions(&img, std::fs::Permissions::from_mode(0o640)).unwrap();
    let name = lab.name("src");
    lab.define(&name, "", &uncached_disk_xml(&img, "raw", "vda"));
    virsh(&["start", &name]);
    wait_running(&name);
    assert_ne!(
        img.metadata().unwrap().uid(),
        4242,
        "libvirt did not take the image"
    );
    let bus = PrivateBus::start();
    let service = Service::start_confined(&bus, URI);
    let signals = SignalWatch::start(&bus);
    let live = lab.name("live");
    let path = start_live(&bus, &name, &live);
    assert_ended(&bus, &signals, &path, "succeeded");
    virsh(&["destroy", &name]);
    let full = lab.name("full");
    stdout_ok(&bus.call("CloneVm", "ss", &[&name, &full]));
    let owner_mode = |vm: &str| {
        let m = Path::new(&disk_paths_of(vm)[0]).metadata().unwrap();
        (m.uid(), m.gid(), m.mode() & 0o7777)
    };
    assert_eq!(
        owner_mode(&full),
        (4242, 4343, 0o640),
        "{}",
        service.log_text()
    );
    assert_eq!(
        owner_mode(&live),
        owner_mode(&full),
        "{}",
        service.log_text()
    );
}

/// Every file below `dir`, relative to it, with its bytes and mode.
fn tree_of(dir: &Path) -> BTreeMap<PathBuf, (Vec<u8>, u32)> {
    file_sizes(dir)
        .into_keys()
        .map(|p| {
            let mode = p.metadata().unwrap().mode();
            let bytes = std::fs::read(&p).unwrap();
            (p.strip_prefix(dir).unwrap().to_owned(), (bytes, mode))
        })
        .collect()
}

#[test]
#[ignore = "needs root, libvirtd, QEMU, OVMF and swtpm"]
fn uefi_vars_and_tpm_state_are_taken_at_the_moment_of_the_copy() {
    let lab = Lab::new("live-uefi");
    let vars = lab.path("src_VARS.fd");
    std::fs::copy("/usr/share/OVMF/OVMF_VARS_4M.fd", &vars).unwrap();
    let os = format!(
        "<loader readonly='yes' type='pflash'>/usr/share/OVMF/OVMF_CODE_4M.fd</loader>\
         <nvram template='/usr/share/OVMF/OVMF_VARS_4M.fd'>{}</nvram>",
        vars.display()
    );
    let tpm = "<tpm model='tpm-tis'><backend type='emulator' version='2.0'/></tpm>";
    let src = Source::start(&lab, "src", false, &os, tpm);
    let src_uuid = virsh(&["domuuid", &src.name]).trim().to_string();
    let src_state = Path::new(SWTPM_STATE).join(&src_uuid);
    let pauses = Pauses::at(&["backup-started"]);
    let bus = PrivateBus::start();
    let _service = Service::start_paused(&bus, URI, &[], TempDir::new("state"), Some(&pauses));
    let signals = SignalWatch::start(&bus);
    let clone = lab.name("clone");
    let path = start_live(&bus, &src.name, &clone);

    // The moment of the copy: the guest is held still while the backup
    // starts; what its UEFI variables and TPM hold now is what the clone gets.
    pauses.wait("backup-started", Duration::from_secs(60));
    assert_eq!(virsh(&["domstate", &src.name]).trim(), "paused");
    let nvram_then = std::fs::read(&vars).unwrap();
    let tpm_then = tree_of(&src_state);
    assert!(
        !tpm_then.is_empty(),
        "swtpm keeps state in {}",
        src_state.display()
    );
    pauses.release("backup-started");
    assert_ended(&bus, &signals, &path, "succeeded");

    let new_vars = lab.path(&format!("{clone}_VARS.fd"));
    assert_eq!(
        std::fs::read(&new_vars).unwrap(),
        nvram_then,
        "NVRAM as it was"
    );
    let uuid = bus.job_property(&path, "ClonedVmId");
    let uuid = uuid.trim_start_matches("s ").trim_matches('"');
    assert_eq!(
        tree_of(&Path::new(SWTPM_STATE).join(uuid)),
        tpm_then,
        "TPM state as it was"
    );
    assert!(job_u64(&bus, &path, "PausedMs") > 0);
    src.assert_copied_as_it_was(&clone);
    assert_eq!(virsh(&["domstate", &src.name]).trim(), "running");
    assert_eq!(job_type(&src.name), "None");
    virsh(&["start", &clone]);
    wait_running(&clone);
}

/// A throttled running source whose live clone is under way, with what the
/// lab held before the clone started.
/// (Fields drop in order: the service stops before the lab is cleaned.)
struct LiveCopyUnderWay {
    signals: SignalWatch,
    service: Service,
    bus: PrivateBus,
    src: Source,
    id: String,
    path: String,
    files: BTreeMap<PathBuf, u64>,
    vms: Vec<String>,
    lab: Lab,
}

impl LiveCopyUnderWay {
    fn start(tag: &str) -> LiveCopyUnderWay {
        let lab = Lab::new(tag);
        let src = Source::start(&lab, "src", true, "", "");
        let id = dom_id(&src.name);
        let (bus, service) = start_service();
        let (files, vms) = (lab.files(), lab.vms());
        let signals = SignalWatch::start(&bus);
        let path = start_live(&bus, &src.name, &lab.name("clone"));
        signals.wait_for_bytes(&path);
        wait_for_backup_job(&src.name);
        LiveCopyUnderWay {
            signals,
            service,
            bus,
            src,
            id,
            path,
            files,
            vms,
            lab,
        }
    }

    /// The source still runs as before, no backup job is left on it, and the
    /// lab holds what it held before the clone started.
    fn assert_source_untouched_and_nothing_left(&self) {
        assert_eq!(virsh(&["domstate", &self.src.name]).trim(), "running");
        assert_eq!(dom_id(&self.src.name), self.id);
        assert_eq!(job_type(&self.src.name), "None", "a backup job is left");
        assert_eq!(self.lab.files(), self.files, "no file left behind");
        assert_eq!(self.lab.vms(), self.vms, "no domain left behind");
    }
}

#[test]
#[ignore = "needs root, libvirtd and QEMU"]
fn cancel_mid_copy_aborts_the_backup_and_leaves_nothing() {
    let job = LiveCopyUnderWay::start("live-cancel");
    let (bus, path) = (&job.bus, &job.path);
    stdout_ok(&bus.busctl(["call", BUS_NAME, path, "org.vmclone.Job", "Cancel"]));
    assert_ended(bus, &job.signals, path, "cancelled");
    assert_eq!(
        bus.job_property(path, "ErrorName"),
        "s \"org.vmclone.Error.Cancelled\""
    );
    assert!(job_u64(bus, path, "BytesDone") < job_u64(bus, path, "BytesTotal"));
    job.assert_source_untouched_and_nothing_left();
}

#[test]
#[ignore = "needs root, libvirtd and QEMU"]
fn a_service_killed_mid_copy_aborts_the_backup_at_its_next_start() {
    let LiveCopyUnderWay {
        signals: _signals,
        service,
        bus,
        src,
        id,
        path: _,
        files,
        vms,
        lab,
    } = LiveCopyUnderWay::start("live-kill9");
    let state = service.kill9();
    assert_eq!(
        job_type(&src.name),
        "Unbounded",
        "the backup outlived the service"
    );
    assert_ne!(lab.files(), files, "the copies were under way");
    let service = Service::start_with_state(&bus, URI, &[], state);
    let restarted = LiveCopyUnderWay {
        signals: SignalWatch::start(&bus),
        service,
        bus,
        src,
        id,
        path: String::new(),
        files,
        vms,
        lab,
    };
    restarted.assert_source_untouched_and_nothing_left();
    let log = restarted.service.log_text();
    assert!(log.contains("backup job aborted"), "{log}");
    assert!(file_sizes(&restarted.service.state_dir.path().join("journal")).is_empty());
}

#[test]
#[ignore = "needs root, libvirtd and QEMU"]
fn a_service_killed_while_the_guest_is_held_still_resumes_it_at_its_next_start() {
    let lab = Lab::new("live-held");
    let src = Source::start(&lab, "src", false, "", "");
    let id = dom_id(&src.name);
    let (files, vms) = (lab.files(), lab.vms());
    let pauses = Pauses::at(&["backup-started"]);
    let bus = PrivateBus::start();
    let service = Service::start_paused(&bus, URI, &[], TempDir::new("state"), Some(&pauses));
    let _path = start_live(&bus, &src.name, &lab.name("clone"));
    pauses.wait("backup-started", Duration::from_secs(60));
    assert_eq!(virsh(&["domstate", &src.name]).trim(), "paused");
    let state = service.kill9();
    let service = Service::start_with_state(&bus, URI, &[], state);
    assert_eq!(
        virsh(&["domstate", &src.name]).trim(),
        "running",
        "{}",
        service.log_text()
    );
    assert_eq!(dom_id(&src.name), id);
    assert_eq!(job_type(&src.name), "None");
    assert_eq!(lab.files(), files, "no file left behind");
    assert_eq!(lab.vms(), vms);
}

#[test]
#[ignore = "needs root, libvirtd and QEMU"]
fn a_guest_its_user_paused_after_the_service_died_stays_paused_at_the_next_start() {
    let lab = Lab::new("live-userpause");
    let src = Source::start(&lab, "src", false, "", "");
    let (files, vms) = (lab.files(), lab.vms());
    // The journal holds the backup job; the guest is not paused yet.
    let pauses = Pauses::at(&["before-backup"]);
    let bus = PrivateBus::start();
    let service = Service::start_paused(&bus, URI, &[], TempDir::new("state"), Some(&pauses));
    let _path = start_live(&bus, &src.name, &lab.name("clone"));
    pauses.wait("before-backup", Duration::from_secs(60));
    assert_eq!(virsh(&["domstate", &src.name]).trim(), "running");
    let state = service.kill9();
    // Its user pauses it: the recovery must not resume what it never paused.
    virsh(&["suspend", &src.name]);
    let service = Service::start_with_state(&bus, URI, &[], state);
    assert_eq!(
        virsh(&["domstate", &src.name]).trim(),
        "paused",
        "{}",
        service.log_text()
    );
    assert_eq!(job_type(&src.name), "None");
    assert_eq!(lab.files(), files, "no file left behind");
    assert_eq!(lab.vms(), vms);
}

#[test]
#[ignore = "needs root, libvirtd and QEMU"]
fn a_source_that_stops_mid_copy_fails_the_clone_and_leaves_nothing() {
    let job = LiveCopyUnderWay::start("live-stop");
    virsh(&["destroy", &job.src.name]);
    assert_ended(&job.bus, &job.signals, &job.path, "failed");
    let error = job.bus.job_property(&job.path, "Error");
    assert!(error.contains("stopped"), "{error}");
    assert_eq!(
        job.bus.job_property(&job.path, "ErrorName"),
        "s \"org.vmclone.Error.Libvirt\""
    );
    assert_eq!(job.lab.files(), job.files, "no file left behind");
    assert_eq!(job.lab.vms(), job.vms, "no domain left behind");
    assert!(job.service.log_text().contains("rolling back"));
}
