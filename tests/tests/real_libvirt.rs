//! End-to-end on the real thing: `libvirtd` with QEMU (`qemu:///system`),
//! real disk images made by `qemu-img`, the real service on a private bus,
//! `busctl`/`gdbus` as clients. VMs boot without a guest OS: QEMU runs its
//! firmware, which is enough to prove that a clone starts beside its source.
//!
//! These tests need root and a running libvirtd (`sudo make check` sets both
//! up); they are `#[ignore]`d in the quick run and fail loudly when libvirtd
//! is missing.

use std::collections::BTreeMap;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::json;

use vmclone_tests::libvirt::{
    disk_paths_of, disk_xml, macs_of, qcow2_image, qemu_img, raw_image, try_virsh, uefi_os, virsh,
    wait_running, Lab, Pool, NIC, OVMF_VARS, SWTPM_STATE, SYSTEM_URI as URI,
};
use vmclone_tests::mounts::{skip_without_loop, xfs_image, Mount};
use vmclone_tests::pauses::Pauses;
use vmclone_tests::process::run;
use vmclone_tests::signals::bytes_done_in;
use vmclone_tests::temp::file_sizes;
use vmclone_tests::*;

fn start_service() -> (PrivateBus, Service) {
    let bus = PrivateBus::start();
    let service = Service::start(&bus, URI, &[]);
    (bus, service)
}

#[test]
#[ignore = "needs root, libvirtd and QEMU"]
fn a_clone_boots_beside_its_source_with_its_own_disk_and_macs() {
    let lab = Lab::new("boot");
    let img = lab.path("src.qcow2");
    qcow2_image(&img, "256M", "write -P 0x5a 1M 8M");
    let src = lab.name("src");
    // A fixed VNC port: the clone's must become automatic, or the two could not run together.
    let devices = format!(
        "{}{NIC}{NIC}<graphics type='vnc' port='5999' autoport='no' listen='127.0.0.1'/>",
        disk_xml(&img, "qcow2")
    );
    lab.define(&src, "", &devices);
    let (bus, _service) = start_service();
    let clone = lab.name("clone");
    let uuid = reply_string(&bus.call("CloneVm", "ss", &[&src, &clone]));
    assert_eq!(virsh(&["domuuid", &clone]).trim(), uuid);

    let (src_disk, clone_disk) = (disk_paths_of(&src), disk_paths_of(&clone));
    assert_eq!(src_disk, [img.to_str().unwrap()]);
    assert_eq!(clone_disk.len(), 1);
    assert_ne!(clone_disk, src_disk, "the clone has its own disk");
    assert!(clone_disk[0].contains("clone"), "{clone_disk:?}");
    let compare = qemu_img(&["compare", &src_disk[0], &clone_disk[0]]);
    assert!(compare.contains("identical"), "{compare}");
    assert!(qemu_img(&["info", &clone_disk[0]]).contains("file format: qcow2"));

    let (src_macs, clone_macs) = (macs_of(&src), macs_of(&clone));
    assert_eq!((src_macs.len(), clone_macs.len()), (2, 2));
    assert!(clone_macs
        .iter()
        .all(|m| !src_macs.contains(m) && m.starts_with("52:54:00:")));
    assert_ne!(clone_macs[0], clone_macs[1]);
    // The fixed VNC port became automatic, so both can run.
    assert!(virsh(&["dumpxml", "--inactive", &clone]).contains("autoport='yes'"));

    virsh(&["start", &src]);
    virsh(&["start", &clone]);
    wait_running(&src);
    wait_running(&clone);
}

#[test]
#[ignore = "needs root, libvirtd and QEMU"]
fn a_raw_sparse_disk_is_copied_byte_exact_and_stays_sparse() {
    let lab = Lab::new("sparse");
    let img = lab.path("data.raw");
    raw_image(
        &img,
        2 << 30,
        &[
            "write -P 0x11 0 4M",
            "write -P 0x22 1G 3M",
            "write -P 0x33 2047M 1M",
        ],
    );
    std::os::unix::fs::chown(&img, Some(65534), Some(65534)).unwrap();
    std::fs::set_permissions(&img, std::os::unix::fs::PermissionsExt::from_mode(0o640)).unwrap();
    let src = lab.name("src");
    lab.define(&src, "", &format!("{}{NIC}", disk_xml(&img, "raw")));
    let (bus, _service) = start_service();
    let clone = lab.name("data");
    reply_string(&bus.call("CloneVm", "ss", &[&src, &clone]));
    let copy = PathBuf::from(&disk_paths_of(&clone)[0]);
    // The basename did not contain the VM's name: the new name goes before the extension.
    assert_eq!(copy, lab.path(&format!("data-{clone}.raw")));
    let (a, b) = (img.metadata().unwrap(), copy.metadata().unwrap());
    assert_eq!(a.len(), b.len());
    assert!(
        b.blocks() <= a.blocks(),
        "holes stay holes: {} > {}",
        b.blocks(),
        a.blocks()
    );
    assert_eq!((b.uid(), b.gid(), b.mode() & 0o7777), (65534, 65534, 0o640));
    assert!(qemu_img(&[
        "compare",
        "-f",
        "raw",
        "-F",
        "raw",
        img.to_str().unwrap(),
        copy.to_str().unwrap()
    ])
    .contains("identical"));
    // Cloning again picks the next free path, never overwriting.
    let again = reply_string(&bus.call("CloneVm", "ss", &[&src, &lab.name("data2")]));
    assert!(!again.is_empty());
    assert_eq!(
        disk_paths_of(&lab.name("data2"))[0],
        lab.path(&format!("data-{}.raw", lab.name("data2")))
            .to_str()
            .unwrap()
    );
}

#[test]
#[ignore = "needs root, libvirtd and QEMU"]
fn uefi_vars_are_copied_and_the_clone_boots() {
    let lab = Lab::new("uefi");
    let img = lab.path("uefi.qcow2");
    qemu_img(&["create", "-q", "-f", "qcow2", img.to_str().unwrap(), "64M"]);
    let vars = lab.path("uefi-src_VARS.fd");
    std::fs::copy(OVMF_VARS, &vars).unwrap();
    // A marker the firmware does not care about, to prove these bytes travel.
    let mut bytes = std::fs::read(&vars).unwrap();
    let n = bytes.len();
    bytes[n - 16..].copy_from_slice(b"vmclone-nvram-ok");
    std::fs::write(&vars, &bytes).unwrap();
    let src = lab.name("uefi-src");
    // The newer <nvram type='file'><source file=...> form; the classic one is in the unit tests.
    lab.define(
        &src,
        &uefi_os(&vars),
        &format!("{}{NIC}", disk_xml(&img, "qcow2")),
    );
    let (bus, _service) = start_service();
    let clone = lab.name("uefi-dst");
    reply_string(&bus.call("CloneVm", "ss", &[&src, &clone]));
    let new_vars = lab.path(&format!("{clone}_VARS.fd"));
    assert_eq!(
        std::fs::read(&new_vars).unwrap(),
        bytes,
        "NVRAM bytes copied"
    );
    assert!(virsh(&["dumpxml", "--inactive", &clone]).contains(new_vars.to_str().unwrap()));
    virsh(&["start", &clone]);
    wait_running(&clone);
}

#[test]
#[ignore = "needs root, libvirtd, QEMU and swtpm"]
fn tpm_state_is_copied_to_the_new_uuid() {
    let lab = Lab::new("tpm");
    let img = lab.path("tpm.qcow2");
    qemu_img(&["create", "-q", "-f", "qcow2", img.to_str().unwrap(), "64M"]);
    let src = lab.name("tpm-src");
    let tpm = "<tpm model='tpm-tis'><backend type='emulator' version='2.0'/></tpm>";
    let src_uuid = lab.define(&src, "", &format!("{}{NIC}{tpm}", disk_xml(&img, "qcow2")));
    // One boot makes swtpm create the state.
    virsh(&["start", &src]);
    wait_running(&src);
    virsh(&["destroy", &src]);
    let src_state = Path::new(SWTPM_STATE).join(&src_uuid);
    let before = file_sizes(&src_state);
    assert!(
        !before.is_empty(),
        "swtpm made state in {}",
        src_state.display()
    );
    let (bus, _service) = start_service();
    let clone = lab.name("tpm-dst");
    let uuid = reply_string(&bus.call("CloneVm", "ss", &[&src, &clone]));
    let new_state = Path::new(SWTPM_STATE).join(&uuid);
    for (path, size) in &before {
        let rel = path.strip_prefix(&src_state).unwrap();
        let copy = new_state.join(rel);
        let (a, b) = (path.metadata().unwrap(), copy.metadata().unwrap());
        assert_eq!(b.len(), *size);
        assert_eq!(
            (a.uid(), a.gid(), a.mode()),
            (b.uid(), b.gid(), b.mode()),
            "{}",
            rel.display()
        );
        assert_eq!(std::fs::read(path).unwrap(), std::fs::read(&copy).unwrap());
    }
    virsh(&["start", &clone]);
    wait_running(&clone);
}

#[test]
#[ignore = "needs root, libvirtd and QEMU"]
fn a_template_gives_linked_clones_that_run_together() {
    let lab = Lab::new("linked");
    let img = lab.path("base.qcow2");
    qcow2_image(&img, "1G", "write -P 0x42 0 2M");
    let tpl = lab.name("tpl");
    lab.define(&tpl, "", &format!("{}{NIC}", disk_xml(&img, "qcow2")));
    let (bus, _service) = start_service();
    // Not a template yet: a linked clone is refused, with the way out.
    let (name, message) = gdbus_error(&bus.gdbus_call(
        "CloneVmWithOptions",
        &[&tpl, &lab.name("early"), "{'storage': <'linked'>}"],
    ));
    assert_eq!(name, "org.vmclone.Error.NotATemplate");
    assert!(message.contains("ConvertToTemplate"), "{message}");

    stdout_ok(&bus.call("ConvertToTemplate", "s", &[&tpl]));
    assert!(bus.get_vm(&tpl).is_template);
    assert_eq!(
        img.metadata().unwrap().mode() & 0o222,
        0,
        "template image is read-only"
    );

    let mut clones = Vec::new();
    for n in ["l1", "l2"] {
        let name = lab.name(n);
        let out = bus.gdbus_call(
            "CloneVmWithOptions",
            &[&tpl, &name, "{'storage': <'linked'>}"],
        );
        stdout_ok(&out);
        let overlay = disk_paths_of(&name)[0].clone();
        let info = qemu_img(&["info", "--output=json", &overlay]);
        assert!(
            info.contains(&format!("\"backing-filename\": \"{}\"", img.display())),
            "{info}"
        );
        assert!(
            info.contains("\"backing-filename-format\": \"qcow2\""),
            "{info}"
        );
        // O(1): the overlay holds no data of its own.
        assert!(std::fs::metadata(&overlay).unwrap().len() < 1 << 20);
        assert!(!bus.get_vm(&name).is_template);
        clones.push(name);
    }
    for c in &clones {
        virsh(&["start", c]);
    }
    for c in &clones {
        wait_running(c);
    }
}

#[test]
#[ignore = "needs root, libvirtd and QEMU"]
fn progress_is_published_while_bytes_move() {
    let lab = Lab::new("progress");
    let src = lab.name("big");
    lab.big_vm(lab.dir(), &src, 4, 1536);
    let (bus, service) = start_service();
    let signals = SignalWatch::start(&bus);
    let path =
        reply_object_path(&bus.call("StartClone", "ssa{sv}", &[&src, &lab.name("big2"), "0"]));
    let lines = signals.collect_until_timed(
        &format!("{path}: org.vmclone.Job.Finished"),
        Duration::from_secs(120),
    );
    assert!(lines.last().unwrap().1.contains("'succeeded'"), "{lines:?}");
    let progress: Vec<(std::time::Instant, u64)> = lines
        .iter()
        .filter(|(_, l)| l.starts_with(&format!("{path}:")))
        .filter_map(|(at, l)| Some((*at, bytes_done_in(l)?)))
        .filter(|&(_, b)| b > 0)
        .collect();
    let done: Vec<u64> = progress.iter().map(|&(_, b)| b).collect();
    // "At least every 250 ms while bytes move": over the whole copy, about
    // one update per 250 ms (one short, for where the copy began and ended).
    let moving = progress.last().unwrap().0 - progress[0].0;
    let expected = (moving.as_millis() / 250) as usize;
    assert!(
        done.len() + 1 >= expected,
        "{} updates in {moving:?} of copying, expected at least {expected}",
        done.len()
    );
    let total: u64 = bus
        .job_property(&path, "BytesTotal")
        .trim_start_matches("t ")
        .parse()
        .unwrap();
    assert_eq!(
        total,
        1536 << 20,
        "BytesTotal counts allocated data, not the 4 GiB apparent size"
    );
    assert!(
        done.len() >= 3,
        "several progress updates while copying: {done:?}"
    );
    assert!(
        done.windows(2).all(|w| w[0] < w[1]),
        "BytesDone only grows: {done:?}"
    );
    assert_eq!(*done.last().unwrap(), total);
    // Memory stays flat: copying 1.5 GiB did not grow the service.
    let status = std::fs::read_to_string(format!("/proc/{}/status", service.pid())).unwrap();
    let peak_kib: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmHWM in /proc/PID/status");
    assert!(peak_kib < 50 << 10, "service peak RSS {peak_kib} KiB");
}

/// A clone of an 8 GiB VM holding some GiB, started as a job and caught while
/// its bytes move, with what the lab held before it started.
/// (Fields drop in order: the service stops before the lab is cleaned.)
struct CopyUnderWay {
    signals: SignalWatch,
    service: Service,
    bus: PrivateBus,
    src: String,
    path: String,
    files: BTreeMap<PathBuf, u64>,
    vms: Vec<String>,
    lab: Lab,
}

impl CopyUnderWay {
    /// The source holds `data_mib` MiB: enough for the copy to outlast what the
    /// test does meanwhile.
    fn start(tag: &str, data_mib: u64) -> CopyUnderWay {
        let lab = Lab::new(tag);
        let src = lab.name("big");
        lab.big_vm(lab.dir(), &src, 8, data_mib);
        let bus = PrivateBus::start();
        let service = Service::start(&bus, URI, &[]);
        let (files, vms) = (lab.files(), lab.vms());
        let signals = SignalWatch::start(&bus);
        let args = [src.as_str(), &lab.name("clone"), "0"];
        let path = reply_object_path(&bus.call("StartClone", "ssa{sv}", &args));
        signals.wait_for_bytes(&path);
        CopyUnderWay {
            lab,
            src,
            signals,
            service,
            bus,
            path,
            files,
            vms,
        }
    }

    /// The `Finished` signal of the job.
    fn finished(&self) -> String {
        let needle = format!("{}: org.vmclone.Job.Finished", self.path);
        self.signals.wait_for(&needle, Duration::from_secs(120))
    }

    /// The host holds what it held before the clone started.
    fn assert_nothing_left(&self) {
        assert_eq!(self.lab.files(), self.files, "no file left behind");
        assert_eq!(self.lab.vms(), self.vms, "no domain left behind");
    }
}

#[test]
#[ignore = "needs root, libvirtd and QEMU"]
fn cancel_mid_copy_leaves_the_host_as_it_was() {
    let job = CopyUnderWay::start("cancel", 2048);
    let (bus, path) = (&job.bus, &job.path);
    stdout_ok(&bus.busctl(["call", BUS_NAME, path, "org.vmclone.Job", "Cancel"]));
    let finished = job.finished();
    assert!(finished.contains("'cancelled'"), "{finished}");
    let done: u64 = bus
        .job_property(path, "BytesDone")
        .trim_start_matches("t ")
        .parse()
        .unwrap();
    assert!(done < 2048 << 20, "cancelled before the end ({done} bytes)");
    assert_eq!(
        bus.job_property(path, "ErrorName"),
        "s \"org.vmclone.Error.Cancelled\""
    );
    job.assert_nothing_left();
}

#[test]
#[ignore = "needs root (tmpfs mount), libvirtd and QEMU"]
fn a_clone_that_cannot_fit_is_refused_before_a_byte_moves() {
    let lab = Lab::new("nofit");
    let src = lab.name("src");
    lab.big_vm(lab.dir(), &src, 1, 128);
    let small = lab.path("small");
    let _mount = Mount::tmpfs(&small, "48m");
    // A clone may only go into a storage pool's folder (or beside the source).
    let pool = Pool::create(&lab.name("small"), &small);
    let (bus, _service) = start_service();
    let opts = format!("{{'target-dir': <'{}'>}}", small.display());
    let dst = lab.name("dst");

    // The plan says so, and where.
    let small_dir = small.to_str().unwrap();
    let plan = bus.call_json(
        "PlanClone",
        "ssa{sv}",
        &[&src, &dst, "1", "target-dir", "s", small_dir],
    );
    assert_eq!(plan["fits"], false, "{plan}");
    let fs = &plan["filesystems"][0];
    assert_eq!(fs["folder"], small.display().to_string(), "{plan}");
    assert_eq!(fs["bytes-needed"], 128u64 << 20, "the data, not the 1 GiB");
    assert!(fs["free-bytes"].as_u64().unwrap() <= 48 << 20, "{plan}");
    let listed = bus.call_json("ListDestinations", "", &[]);
    let ours = listed
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["path"] == small.display().to_string())
        .unwrap_or_else(|| panic!("the pool's folder in {listed}"));
    assert_eq!(ours["pool"], pool.name.as_str());
    assert_eq!(ours["free-bytes"], fs["free-bytes"]);

    // The clone is refused up front: nothing was written to the small disk.
    let vms = lab.vms();
    let (name, message) = gdbus_error(&bus.gdbus_call("CloneVmWithOptions", &[&src, &dst, &opts]));
    assert_eq!(name, "org.vmclone.Error.Storage");
    assert!(
        message.contains("128.0 MiB") && message.contains("free"),
        "{message}"
    );
    assert!(message.contains(small.to_str().unwrap()), "{message}");
    assert!(file_sizes(&small).is_empty());
    assert_eq!(lab.vms(), vms);
}

#[test]
#[ignore = "needs root (tmpfs mount), libvirtd and QEMU"]
fn a_filesystem_filled_during_the_clone_fails_it_and_leaves_nothing() {
    let lab = Lab::new("enospc");
    let src = lab.name("src");
    lab.big_vm(lab.dir(), &src, 1, 128);
    let small = lab.path("small");
    let _mount = Mount::tmpfs(&small, "160m");
    let _pool = Pool::create(&lab.name("small"), &small);
    // The clone fits when it starts; someone else fills the disk before its copy.
    let bus = PrivateBus::start();
    let pauses = Pauses::at(&["before-disk-0"]);
    let _service = Service::start_paused(&bus, URI, &[], TempDir::new("enospc"), Some(&pauses));
    let vms = lab.vms();
    let dst = lab.name("dst");
    let args = [
        &src[..],
        &dst[..],
        "1",
        "target-dir",
        "s",
        small.to_str().unwrap(),
    ];
    let path = reply_object_path(&bus.call("StartClone", "ssa{sv}", &args));
    pauses.wait("before-disk-0", Duration::from_secs(60));
    let filler = small.join("someone-elses.bin");
    std::fs::write(&filler, vec![1u8; 100 << 20]).unwrap();
    pauses.release("before-disk-0");
    wait_until(Duration::from_secs(60), "the job to end", || {
        bus.job_property(&path, "State") != "s \"running\""
    });
    assert_eq!(
        bus.job_property(&path, "ErrorName"),
        "s \"org.vmclone.Error.Storage\""
    );
    assert!(bus
        .job_property(&path, "Error")
        .to_lowercase()
        .contains("space"));
    // The partial copy is gone; what was there before stays.
    assert_eq!(file_sizes(&small).into_keys().collect::<Vec<_>>(), [filler]);
    assert_eq!(lab.vms(), vms);
}

#[test]
#[ignore = "needs root, libvirtd and QEMU"]
fn a_service_killed_mid_copy_cleans_up_at_next_start() {
    let CopyUnderWay {
        lab,
        service,
        bus,
        files,
        vms,
        ..
    } = CopyUnderWay::start("kill9", 2048);
    let state = service.kill9();
    assert_ne!(
        lab.files(),
        files,
        "the copy was under way when the service died"
    );
    let journals = file_sizes(&state.path().join("journal"));
    assert_eq!(
        journals.len(),
        1,
        "one unfinished clone in the journal: {journals:?}"
    );
    let service = Service::start_with_state(&bus, URI, &[], state);
    assert_eq!(lab.files(), files, "the restart removed the partial copy");
    assert_eq!(lab.vms(), vms);
    assert!(file_sizes(&service.state_dir.path().join("journal")).is_empty());
    assert!(
        service.log_text().contains("rolled back"),
        "{}",
        service.log_text()
    );
}

#[test]
#[ignore = "needs root (loop mount), libvirtd and QEMU"]
fn on_xfs_a_big_disk_is_reflinked() {
    let lab = Lab::new("reflink");
    let mnt = lab.path("xfs");
    let image = lab.path("xfs.img");
    xfs_image(&image, 20 << 30);
    let _mount = match Mount::loop_image(&image, &mnt) {
        Ok(mount) => mount,
        Err(e) => return skip_without_loop("on_xfs_a_big_disk_is_reflinked", &e),
    };
    let src = lab.name("big");
    let img = lab.big_vm(&mnt, &src, 8, 1024);
    let (bus, service) = start_service();
    let clone = lab.name("big-reflink");
    reply_string(&bus.call("CloneVm", "ss", &[&src, &clone]));
    let copy = disk_paths_of(&clone)[0].clone();
    assert!(copy.starts_with(mnt.to_str().unwrap()));
    assert!(
        service.log_text().contains("Reflink"),
        "{}",
        service.log_text()
    );
    // Shared extents: the filesystem's used space did not grow by the 1 GiB of data.
    let used = |p: &Path| -> u64 {
        run("df", &["--output=used", "-B1", p.to_str().unwrap()])
            .lines()
            .nth(1)
            .unwrap()
            .trim()
            .parse()
            .unwrap()
    };
    assert!(used(&mnt) < (1024 + 512) << 20, "used {} bytes", used(&mnt));
    assert!(qemu_img(&[
        "compare",
        "-f",
        "raw",
        "-F",
        "raw",
        img.to_str().unwrap(),
        &copy
    ])
    .contains("identical"));
}

#[test]
#[ignore = "needs root, libvirtd and QEMU"]
fn a_libvirt_error_after_the_copies_removes_them() {
    let lab = Lab::new("virterr");
    let src = lab.name("src");
    lab.big_vm(lab.dir(), &src, 1, 64);
    let (bus, _service) = start_service();
    let (files, vms) = (lab.files(), lab.vms());
    // QEMU's "pc" machine allows far fewer than 4096 vCPUs: libvirt refuses the
    // definition, which vmclone makes only after the disk was copied.
    let (name, message) = gdbus_error(&bus.gdbus_call(
        "CloneVmWithOptions",
        &[&src, &lab.name("dst"), "{'vcpus': <uint32 4096>}"],
    ));
    assert_eq!(name, "org.vmclone.Error.Libvirt", "{message}");
    assert!(message.contains("libvirt"), "{message}");
    assert_eq!(lab.files(), files, "the copied disk was removed");
    assert_eq!(lab.vms(), vms);
}

#[test]
#[ignore = "needs root, libvirtd and QEMU"]
fn a_source_cannot_start_while_its_disks_are_copied() {
    // 4 GiB to copy: seconds longer than `virsh start` takes.
    let job = CopyUnderWay::start("started", 4096);
    // vmclone holds QEMU's own image lock: QEMU refuses to open the disk for writing.
    let err = try_virsh(&["start", &job.src]).expect_err("the source started mid-copy");
    assert!(err.contains("lock"), "{err}");
    assert!(
        try_virsh(&["destroy", &job.src]).is_err(),
        "there was nothing to destroy"
    );
    let finished = job.finished();
    assert!(finished.contains("'succeeded'"), "{finished}");
    assert_eq!(virsh(&["domstate", &job.src]).trim(), "shut off");
    // The copy is the disk as it was: the guest never ran on it.
    let clone = job.lab.name("clone");
    let src_disk = job.lab.dir().join(format!("{}.raw", job.src));
    let copy = disk_paths_of(&clone)[0].clone();
    assert!(qemu_img(&[
        "compare",
        "-f",
        "raw",
        "-F",
        "raw",
        src_disk.to_str().unwrap(),
        &copy
    ])
    .contains("identical"));
    // Once the clone is done the source starts again.
    virsh(&["start", &job.src]);
    wait_running(&job.src);
}

#[test]
#[ignore = "needs root, libvirtd and QEMU"]
fn a_vm_with_a_saved_state_is_not_cloned() {
    let lab = Lab::new("saved");
    let img = lab.path("saved.qcow2");
    qcow2_image(&img, "64M", "write -P 0x01 0 1M");
    let src = lab.name("saved");
    lab.define(&src, "", &format!("{}{NIC}", disk_xml(&img, "qcow2")));
    virsh(&["start", &src]);
    wait_running(&src);
    virsh(&["managedsave", &src]);
    let (bus, _service) = start_service();
    assert_eq!(bus.get_vm(&src).state, "shutoff");
    let (name, message) = gdbus_error(&bus.gdbus_call("CloneVm", &[&src, &lab.name("nope")]));
    assert_eq!(name, "org.vmclone.Error.SourceNotShutOff");
    assert!(message.contains("saved state"), "{message}");
    virsh(&["managedsave-remove", &src]);
}

#[test]
#[ignore = "needs root, libvirtd and QEMU"]
fn linked_clones_with_dotted_names_of_an_image_without_extension() {
    let lab = Lab::new("dotted");
    let img = lab.path("tmpl");
    qcow2_image(&img, "64M", "write -P 0x07 0 1M");
    let tpl = lab.name("tpl");
    lab.define(&tpl, "", &format!("{}{NIC}", disk_xml(&img, "qcow2")));
    let (bus, _service) = start_service();
    stdout_ok(&bus.call("ConvertToTemplate", "s", &[&tpl]));
    let mut overlays = Vec::new();
    for n in ["web.example.com", "web.example.org"] {
        let name = lab.name(n);
        stdout_ok(&bus.gdbus_call(
            "CloneVmWithOptions",
            &[&tpl, &name, "{'storage': <'linked'>}"],
        ));
        overlays.push(disk_paths_of(&name)[0].clone());
    }
    assert_ne!(overlays[0], overlays[1], "{overlays:?}");
    assert!(
        overlays.iter().all(|o| o.ends_with(".qcow2")),
        "{overlays:?}"
    );
}

#[test]
#[ignore = "needs root, libvirtd and QEMU"]
fn pool_volumes_become_new_volumes_of_their_pool() {
    let lab = Lab::new("pool");
    let pool = lab.name("pool");
    let target = lab.path("pool");
    let _pool = Pool::create(&pool, &target);
    virsh(&[
        "vol-create-as",
        &pool,
        "sys.qcow2",
        "128M",
        "--format",
        "qcow2",
    ]);
    virsh(&["vol-create-as", &pool, "data.raw", "64M", "--format", "raw"]);
    let sys = target.join("sys.qcow2");
    run(
        "qemu-io",
        &[
            "-f",
            "qcow2",
            "-c",
            "write -P 0x3c 0 4M",
            sys.to_str().unwrap(),
        ],
    );
    let src = lab.name("vols");
    // One disk names its volume by pool/volume, one by path inside the pool.
    let disks = format!(
        "<disk type='file' device='disk'><driver name='qemu' type='qcow2'/>\
           <source file='{}'/><target dev='vda' bus='virtio'/></disk>\
         <disk type='volume' device='disk'><driver name='qemu' type='raw'/>\
           <source pool='{pool}' volume='data.raw'/><target dev='vdb' bus='virtio'/></disk>",
        sys.display()
    );
    lab.define(&src, "", &format!("{disks}{NIC}"));
    let (bus, _service) = start_service();
    let clone = lab.name("volc");
    reply_string(&bus.call("CloneVm", "ss", &[&src, &clone]));
    let vols = virsh(&["vol-list", &pool]);
    let sys_copy = format!("sys-{clone}.qcow2");
    let data_copy = format!("data-{clone}.raw");
    assert!(
        vols.contains(&sys_copy) && vols.contains(&data_copy),
        "{vols}"
    );
    let xml = virsh(&["dumpxml", "--inactive", &clone]);
    assert!(
        xml.contains(&format!("<source pool='{pool}' volume='{data_copy}'/>")),
        "a disk naming a volume still names one: {xml}"
    );
    assert!(
        xml.contains(&target.join(&sys_copy).display().to_string()),
        "{xml}"
    );
    let compare = qemu_img(&[
        "compare",
        sys.to_str().unwrap(),
        target.join(&sys_copy).to_str().unwrap(),
    ]);
    assert!(compare.contains("identical"), "{compare}");
    virsh(&["start", &clone]);
    wait_running(&clone);
}

#[test]
#[ignore = "needs root, libvirtd and QEMU"]
fn the_plan_is_what_the_clone_then_does() {
    let lab = Lab::new("plan");
    let sys = lab.path("sys.qcow2");
    qcow2_image(&sys, "256M", "write -P 0x5a 1M 8M");
    let data = lab.path("data.raw");
    raw_image(&data, 64 << 20, &["write -P 0x11 0 4M"]);
    let vars = lab.path("plan-src_VARS.fd");
    std::fs::copy("/usr/share/OVMF/OVMF_VARS_4M.fd", &vars).unwrap();
    let os = format!(
        "<loader readonly='yes' type='pflash'>/usr/share/OVMF/OVMF_CODE_4M.fd</loader>\
         <nvram>{}</nvram>",
        vars.display()
    );
    let data_disk = format!(
        "<disk type='file' device='disk'><driver name='qemu' type='raw'/>\
         <source file='{}'/><target dev='vdb' bus='virtio'/></disk>",
        data.display()
    );
    let src = lab.name("src");
    lab.define(
        &src,
        &os,
        &format!("{}{data_disk}{NIC}{NIC}", disk_xml(&sys, "qcow2")),
    );
    let (bus, _service) = start_service();

    // GetVm tells the VM's firmware, disks and NICs as libvirt has them.
    let vm = bus.call_json("GetVm", "s", &[&src]);
    assert_eq!(vm["firmware"], "uefi");
    assert_eq!(vm["tpm"], false);
    assert_eq!(
        pick(
            &vm["disk-details"],
            &["target", "format", "source", "capacity"]
        ),
        [
            json!(["vda", "qcow2", sys, 256 << 20]),
            json!(["vdb", "raw", data, 64 << 20]),
        ]
    );
    let macs: Vec<serde_json::Value> = macs_of(&src).into_iter().map(|m| json!([m])).collect();
    assert_eq!(pick(&vm["interface-details"], &["mac"]), macs);

    // The plan, with a fixed UUID so that the clone that follows is the one planned.
    let clone = lab.name("dst");
    let args = [
        &src[..],
        &clone[..],
        "1",
        "uuid",
        "s",
        "0b5e55ed-0000-4000-8000-00000000c10e",
    ];
    let files = lab.files();
    let plan = bus.call_json("PlanClone", "ssa{sv}", &args);
    assert_eq!(lab.files(), files, "a plan writes nothing");
    let planned: Vec<String> = plan["disks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            assert_eq!(d["action"], "copy", "{d}");
            d["destination"].as_str().unwrap().to_string()
        })
        .collect();
    assert_eq!(plan["nvram"]["source"], vars.display().to_string());
    assert_eq!(plan["nvram"]["exists"], true);
    assert_eq!(plan["fits"], true);
    let fs = plan["filesystems"].as_array().unwrap();
    assert_eq!(fs.len(), 1, "one filesystem: {plan}");
    assert_eq!(fs[0]["bytes-needed"], plan["bytes-to-copy"]);
    let dests: Vec<&str> = plan["destinations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["path"].as_str().unwrap())
        .collect();
    assert!(dests.contains(&lab.dir().to_str().unwrap()), "{dests:?}");

    let path = reply_object_path(&bus.call("StartClone", "ssa{sv}", &args));
    wait_until(Duration::from_secs(60), "the clone to end", || {
        bus.job_property(&path, "State") != "s \"running\""
    });
    assert_eq!(bus.job_property(&path, "State"), "s \"succeeded\"");
    assert_eq!(
        bus.job_property(&path, "BytesTotal"),
        format!("t {}", plan["bytes-to-copy"])
    );
    assert_eq!(disk_paths_of(&clone), planned);
    let nvram = plan["nvram"]["destination"].as_str().unwrap();
    assert!(Path::new(nvram).is_file(), "{nvram}");
    assert!(virsh(&["dumpxml", "--inactive", &clone]).contains(nvram));
    let data_copy = &planned[1];
    let compare = qemu_img(&[
        "compare",
        "-f",
        "raw",
        "-F",
        "raw",
        data.to_str().unwrap(),
        data_copy,
    ]);
    assert!(compare.contains("identical"), "{compare}");
}
