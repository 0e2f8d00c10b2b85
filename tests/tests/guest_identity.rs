//! `guest-identity=reset` on the real thing: libvirtd with QEMU, guest disks
//! made in the test by `virt-make-fs` (Debian 12 as libguestfs inspects it),
//! the real service on a private bus, the clones' disks read back with
//! `guestfish --ro`. Each libguestfs appliance run takes about 20 s under
//! TCG, so each test makes as few as it can (reads of several disks share one).
//!
//! The root tests are `#[ignore]`d in the quick run and fail loudly without
//! libvirtd or libguestfs; the last test needs neither.

use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::{Duration, Instant};

use vmclone_tests::guest::{
    make_guest_disk, read_guest_files, AUTHORIZED_KEYS, FORCE_TCG, HOSTS, KEPT, MACHINE_ID,
    NM_PROFILE, REMOVED,
};
use vmclone_tests::libvirt::{
    disk_paths_of, disk_xml, qemu_img, virsh, wait_running, Lab, NIC, SYSTEM_URI as URI,
};
use vmclone_tests::live::dom_id;
use vmclone_tests::process::{output, run};
use vmclone_tests::*;

/// A reset clone through gdbus (busctl's 25 s timeout is shorter than an
/// appliance run).
fn clone_with(bus: &PrivateBus, src: &str, name: &str, options: &str) -> Output {
    bus.gdbus_call("CloneVmWithOptions", &[src, name, options])
}

fn cloned_uuid(out: &Output) -> String {
    let text = stdout_ok(out);
    text.trim()
        .strip_prefix("('")
        .and_then(|t| t.strip_suffix("',)"))
        .unwrap_or_else(|| panic!("not a UUID reply: {text}"))
        .to_string()
}

fn compare_identical(a: &Path, fa: &str, b: &Path, fb: &str) {
    let out = qemu_img(&[
        "compare",
        "-f",
        fa,
        "-F",
        fb,
        a.to_str().unwrap(),
        b.to_str().unwrap(),
    ]);
    assert!(out.contains("identical"), "{}: {out}", b.display());
}

fn require_libguestfs() {
    assert!(
        output(std::process::Command::new("guestfish").arg("--version"))
            .status
            .success(),
        "guestfish is missing: run `sudo tools/setup-host.sh` (it installs libguestfs-tools)"
    );
}

#[test]
#[ignore = "needs root, libvirtd, QEMU and libguestfs"]
fn full_copies_and_a_linked_clone_get_their_own_identity_and_their_sources_stay_as_they_were() {
    require_libguestfs();
    let lab = Lab::new("ident");
    let raw = lab.path("guest.raw");
    make_guest_disk(&raw);
    // The full-copy source: qcow2. The template: raw.
    let qcow2 = lab.path("src.qcow2");
    qemu_img(&[
        "convert",
        "-O",
        "qcow2",
        raw.to_str().unwrap(),
        qcow2.to_str().unwrap(),
    ]);
    let before = lab.path("src-before.qcow2");
    std::fs::copy(&qcow2, &before).unwrap();
    let tpl_img = lab.path("tpl.raw");
    run(
        "cp",
        &[
            "--sparse=always",
            raw.to_str().unwrap(),
            tpl_img.to_str().unwrap(),
        ],
    );
    let (src, tpl) = (lab.name("src"), lab.name("tpl"));
    lab.define(&src, "", &format!("{}{NIC}", disk_xml(&qcow2, "qcow2")));
    lab.define(&tpl, "", &format!("{}{NIC}", disk_xml(&tpl_img, "raw")));

    let bus = PrivateBus::start();
    let service = Service::start_with_env(&bus, URI, &[], &FORCE_TCG);
    stdout_ok(&bus.call("ConvertToTemplate", "s", &[&tpl]));
    let reset = "{'guest-identity': <'reset'>}";
    let (a, b, c) = (lab.name("Web.A"), lab.name("web_b"), lab.name("linked"));
    let started = Instant::now();
    cloned_uuid(&clone_with(&bus, &src, &a, reset));
    let one_clone = started.elapsed();
    cloned_uuid(&clone_with(&bus, &src, &b, reset));
    cloned_uuid(&clone_with(
        &bus,
        &tpl,
        &c,
        "{'guest-identity': <'reset'>, 'storage': <'linked'>}",
    ));
    eprintln!("one clone with reset took {one_clone:?}");
    let log = service.log_text();
    assert!(log.contains("identity of the clone of"), "{log}");

    let disk = |vm: &str| PathBuf::from(&disk_paths_of(vm)[0]);
    let (da, db, dc) = (disk(&a), disk(&b), disk(&c));
    // The linked clone is an overlay on the template's image, which it did not change.
    let info = qemu_img(&["info", dc.to_str().unwrap()]);
    assert!(
        info.contains(&format!("backing file: {}", tpl_img.display())),
        "{info}"
    );
    compare_identical(&before, "qcow2", &qcow2, "qcow2");
    compare_identical(&raw, "raw", &tpl_img, "raw");

    let mut files = vec![
        "/etc/machine-id",
        "/etc/hostname",
        "/etc/hosts",
        "/etc/NetworkManager/system-connections/Wired.nmconnection",
    ];
    files.extend(KEPT.iter().map(|(p, _)| *p));
    files.extend(REMOVED);
    let disks = [
        (qcow2.clone(), "qcow2"),
        (da, "qcow2"),
        (db, "qcow2"),
        (dc, "qcow2"),
    ];
    let seen = read_guest_files(&disks, &files);
    let source = &seen[0];
    assert_eq!(source.text("/etc/machine-id"), Some(MACHINE_ID));
    assert_eq!(source.public_keys.len(), 2, "{source:?}");

    let names = [
        ("vmclone-e2e-ident", &a, &seen[1]),
        ("vmclone-e2e-ident", &b, &seen[2]),
        ("vmclone-e2e-ident", &c, &seen[3]),
    ];
    for (prefix, vm, g) in names {
        let host = vm.to_lowercase().replace(['.', '_'], "-");
        assert!(host.starts_with(prefix));
        assert_eq!(
            g.text("/etc/machine-id"),
            Some(""),
            "{vm}: machine-id emptied"
        );
        assert_eq!(
            g.text("/etc/hostname"),
            Some(format!("{host}\n").as_str()),
            "{vm}"
        );
        let hosts = HOSTS.replace("srcvm", &host);
        assert_eq!(g.text("/etc/hosts"), Some(hosts.as_str()), "{vm}");
        for (path, text) in KEPT {
            assert_eq!(g.text(path), Some(text), "{vm}: {path} untouched");
        }
        assert_eq!(g.text("/root/.ssh/authorized_keys"), Some(AUTHORIZED_KEYS));
        for path in REMOVED {
            assert_eq!(g.text(path), None, "{vm}: {path} removed");
        }
        let profile = NM_PROFILE.replace("mac-address=52:54:00:12:34:56\n", "");
        assert_eq!(
            g.text("/etc/NetworkManager/system-connections/Wired.nmconnection"),
            Some(profile.as_str()),
            "{vm}: the MAC binding went, the profile stayed"
        );
        // New host keys of every type ssh-keygen -A makes, none the source's.
        assert_eq!(
            g.public_keys.keys().map(String::as_str).collect::<Vec<_>>(),
            ["ecdsa", "ed25519", "rsa"],
            "{vm}: {:?}",
            g.host_keys
        );
        assert!(
            g.host_keys
                .iter()
                .any(|k| k == "/etc/ssh/ssh_host_ed25519_key"),
            "{vm}: the private keys are there too: {:?}",
            g.host_keys
        );
        for (kind, key) in &source.public_keys {
            assert_ne!(g.public_keys.get(kind), Some(key), "{vm}: new {kind} key");
        }
    }
    // No identity the guests use is shared between two clones.
    for (x, y) in [(1, 2), (1, 3), (2, 3)] {
        assert_ne!(seen[x].text("/etc/hostname"), seen[y].text("/etc/hostname"));
        for (kind, key) in &seen[x].public_keys {
            assert_ne!(
                seen[y].public_keys.get(kind),
                Some(key),
                "{kind} keys differ"
            );
        }
    }
    // Nothing of the customization is left in the state folder.
    let work = service.state_dir.join("work");
    assert_eq!(names_in(&work), Vec::<String>::new());
}

/// Processes whose command line mentions `needle` (an appliance of a clone
/// has its scratch folder on its command line).
fn processes_mentioning(needle: &str) -> Vec<String> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) else {
            continue;
        };
        let text = String::from_utf8_lossy(&cmdline).replace('\0', " ");
        if text.contains(needle) {
            found.push(text);
        }
    }
    found
}

#[test]
#[ignore = "needs root, libvirtd, QEMU and libguestfs"]
fn cancel_while_customizing_leaves_nothing_and_stops_the_appliance() {
    require_libguestfs();
    let lab = Lab::new("ident-cancel");
    let img = lab.path("disk.raw");
    std::fs::File::create(&img)
        .unwrap()
        .set_len(256 << 20)
        .unwrap();
    let src = lab.name("src");
    lab.define(&src, "", &format!("{}{NIC}", disk_xml(&img, "raw")));
    let bus = PrivateBus::start();
    let service = Service::start_with_env(&bus, URI, &[], &FORCE_TCG);
    // The appliance's sockets are in the clone's scratch folder.
    let scratch = format!("{}/work/", service.state_dir.path().display());
    let (files, vms) = (lab.files(), lab.vms());
    let signals = SignalWatch::start(&bus);
    let args = [
        src.as_str(),
        &lab.name("clone"),
        "1",
        "guest-identity",
        "s",
        "reset",
    ];
    let path = reply_object_path(&bus.call("StartClone", "ssa{sv}", &args));
    wait_until(Duration::from_secs(30), "the job to customize", || {
        bus.job_property(&path, "Phase") == "s \"customizing\""
    });
    // The appliance is booting.
    wait_until(Duration::from_secs(30), "the appliance to start", || {
        processes_mentioning(&scratch)
            .iter()
            .any(|p| p.contains("qemu-system"))
    });
    std::thread::sleep(Duration::from_secs(2));
    stdout_ok(&bus.busctl(["call", BUS_NAME, &path, JOB_INTERFACE, "Cancel"]));
    let finished = signals.wait_for(
        &format!("{path}: org.vmclone.Job.Finished"),
        Duration::from_secs(60),
    );
    assert!(finished.contains("'cancelled'"), "{finished}");
    assert_eq!(
        bus.job_property(&path, "ErrorName"),
        "s \"org.vmclone.Error.Cancelled\""
    );
    assert_eq!(lab.files(), files, "no file left behind");
    assert_eq!(lab.vms(), vms, "no domain left behind");
    assert_eq!(
        names_in(&service.state_dir.join("work")),
        Vec::<String>::new()
    );
    wait_until(Duration::from_secs(10), "the appliance to be gone", || {
        processes_mentioning(&scratch).is_empty()
    });
}

#[test]
#[ignore = "needs root, libvirtd, QEMU and libguestfs"]
fn an_unrecognised_guest_is_refused_before_any_copy_with_kvm_tried_first() {
    require_libguestfs();
    let lab = Lab::new("ident-noos");
    // 64 MiB of data and no operating system.
    let img = lab.path("data.raw");
    std::fs::File::create(&img)
        .unwrap()
        .set_len(256 << 20)
        .unwrap();
    run(
        "qemu-io",
        &[
            "-f",
            "raw",
            "-c",
            "write -P 0x5a 0 64M",
            img.to_str().unwrap(),
        ],
    );
    let src = lab.name("src");
    lab.define(&src, "", &format!("{}{NIC}", disk_xml(&img, "raw")));
    // No TCG forced: the service tries KVM and falls back where it fails.
    let bus = PrivateBus::start();
    let service = Service::start(&bus, URI, &[]);
    let (files, vms) = (lab.files(), lab.vms());
    let out = clone_with(
        &bus,
        &src,
        &lab.name("clone"),
        "{'guest-identity': <'reset'>}",
    );
    let (name, message) = gdbus_error(&out);
    assert_eq!(name, "org.vmclone.Error.InvalidOption", "{message}");
    assert!(
        message.contains("No operating system was recognised"),
        "{message}"
    );
    assert!(message.contains("keep"), "it says what to do: {message}");
    assert_eq!(lab.files(), files, "nothing was copied");
    assert_eq!(lab.vms(), vms);
    let log = service.log_text();
    assert!(
        log.contains("the libguestfs appliance runs under KVM")
            || log.contains("did not start under KVM"),
        "KVM was tried first: {log}"
    );
    assert!(!log.contains("copied "), "no disk was copied: {log}");
}

#[test]
fn without_libguestfs_reset_is_refused_naming_the_package_and_keep_still_works() {
    let empty = TempDir::new("no-guestfs");
    let bus = PrivateBus::start();
    // A PATH that holds no guestfish (nor anything else): libguestfs is not installed.
    let path = empty.path().to_str().unwrap();
    let _service = Service::start_with_env(&bus, &demo_host_uri(), &[], &[("PATH", path)]);
    let out = bus.gdbus_call(
        "CloneVmWithOptions",
        &["web01", "web01-reset", "{'guest-identity': <'reset'>}"],
    );
    let (name, message) = gdbus_error(&out);
    assert_eq!(name, "org.vmclone.Error.GuestCustomization", "{message}");
    assert!(message.contains("libguestfs-tools"), "{message}");
    assert!(bus
        .try_list_vms()
        .unwrap()
        .iter()
        .all(|v| v.name != "web01-reset"));
    // PlanClone says so too, as the clone would.
    let (name, message) = gdbus_error(&bus.gdbus_call(
        "PlanClone",
        &["web01", "web01-reset", "{'guest-identity': <'reset'>}"],
    ));
    assert_eq!(name, "org.vmclone.Error.GuestCustomization", "{message}");
    // CloneVms refuses the whole batch before any clone starts; a StartClone job fails so.
    let (name, _) = gdbus_error(&bus.gdbus_call(
        "CloneVms",
        &[
            "web01",
            "['web01-r1', 'web01-r2']",
            "{'guest-identity': <'reset'>}",
        ],
    ));
    assert_eq!(name, "org.vmclone.Error.GuestCustomization");
    let signals = SignalWatch::start(&bus);
    let args = ["web01", "web01-job", "1", "guest-identity", "s", "reset"];
    let job = reply_object_path(&bus.call("StartClone", "ssa{sv}", &args));
    signals.wait_for(
        &format!("{job}: org.vmclone.Job.Finished"),
        Duration::from_secs(30),
    );
    assert_eq!(
        bus.job_property(&job, "ErrorName"),
        "s \"org.vmclone.Error.GuestCustomization\""
    );
    // keep (the default, and given) clones as before.
    let keep = bus.gdbus_call(
        "CloneVmWithOptions",
        &["web01", "web01-kept", "{'guest-identity': <'keep'>}"],
    );
    stdout_ok(&keep);
    // vmclonectl's flag asks for the same and reports the service's words.
    let ctl = output(
        std::process::Command::new(built_binary("vmclonectl"))
            .args([
                "--address",
                bus.address(),
                "clone",
                "web01",
                "web01-ctl",
                "--reset-identity",
            ])
            .env("LANGUAGE", "en"),
    );
    assert_eq!(ctl.status.code(), Some(1), "{}", stderr_of(&ctl));
    assert!(
        stderr_of(&ctl).contains("libguestfs-tools"),
        "{}",
        stderr_of(&ctl)
    );
}

#[test]
#[ignore = "needs root, libvirtd, QEMU and libguestfs"]
fn a_live_clone_gets_its_own_identity_and_its_running_source_keeps_its_own() {
    require_libguestfs();
    let lab = Lab::new("ident-live");
    let img = lab.path("guest.raw");
    make_guest_disk(&img);
    let before = lab.path("before.raw");
    run(
        "cp",
        &[
            "--sparse=always",
            img.to_str().unwrap(),
            before.to_str().unwrap(),
        ],
    );
    let src = lab.name("src");
    lab.define(&src, "", &format!("{}{NIC}", disk_xml(&img, "raw")));
    virsh(&["start", &src]);
    wait_running(&src);
    let id = dom_id(&src);

    let bus = PrivateBus::start();
    let _service = Service::start_with_env(&bus, URI, &[], &FORCE_TCG);
    let clone = lab.name("clone");
    let out = clone_with(
        &bus,
        &src,
        &clone,
        "{'live': <true>, 'guest-identity': <'reset'>}",
    );
    cloned_uuid(&out);
    // The source ran the whole time, and its disk is as it was.
    assert_eq!(dom_id(&src), id);
    virsh(&["destroy", &src]);
    compare_identical(&before, "raw", &img, "raw");
    let copy = PathBuf::from(&disk_paths_of(&clone)[0]);
    let seen = read_guest_files(
        &[(img.clone(), "raw"), (copy, "raw")],
        &["/etc/machine-id", "/etc/hostname"],
    );
    assert_eq!(seen[0].text("/etc/machine-id"), Some(MACHINE_ID));
    assert_eq!(seen[1].text("/etc/machine-id"), Some(""));
    let host = clone.to_lowercase();
    assert_eq!(
        seen[1].text("/etc/hostname"),
        Some(format!("{host}\n").as_str())
    );
    for (kind, key) in &seen[0].public_keys {
        assert_ne!(seen[1].public_keys.get(kind), Some(key), "new {kind} key");
    }
}
