//! vmclonectl against the service on the real libvirtd (`qemu:///system`), on a
//! private bus: `show` and `plan` of a UEFI VM with two disks and two NICs on
//! real images, the clone that follows doing what the plan said; `destinations`
//! listing a real pool; a plan that does not fit a small tmpfs pool saying so
//! with status 11, and the clone then failing as foretold, leaving nothing.
//!
//! Root only: `#[ignore]`d in the quick run, failing loudly without libvirtd.

mod support;

use std::os::unix::fs::MetadataExt;
use std::time::Duration;

use support::*;
use vmclone_tests::libvirt::{
    disk_paths_of, disk_xml, disk_xml_on, macs_of, qcow2_image, qemu_img, uefi_os, Lab, Pool,
    OVMF_VARS, SYSTEM_URI,
};
use vmclone_tests::mounts::{free_bytes, Mount};
use vmclone_tests::process::run;
use vmclone_tests::temp::file_sizes;
use vmclonectl::size::bytes_text;

#[test]
#[ignore = "needs root, libvirtd, QEMU and OVMF"]
fn show_and_plan_a_uefi_vm_with_two_disks_and_two_nics_and_the_clone_does_as_planned() {
    let lab = Lab::new("ctl-plan");
    let (root, data) = (lab.path("src-root.qcow2"), lab.path("src-data.raw"));
    qcow2_image(&root, "1G", "write -P 0x5a 1M 16M");
    qemu_img(&["create", "-q", "-f", "raw", data.to_str().unwrap(), "256M"]);
    run(
        "qemu-io",
        &[
            "-f",
            "raw",
            "-c",
            "write -P 0x11 0 8M",
            data.to_str().unwrap(),
        ],
    );
    let vars = lab.path("src_VARS.fd");
    std::fs::copy(OVMF_VARS, &vars).unwrap();
    let src = lab.name("src");
    let nics = "<interface type='user'><model type='virtio'/></interface>\
                <interface type='user'><model type='e1000'/></interface>";
    lab.define(
        &src,
        &uefi_os(&vars),
        &format!(
            "{}{}{nics}",
            disk_xml(&root, "qcow2"),
            disk_xml_on(&data, "raw", "vdb")
        ),
    );
    let demo = Demo::on(SYSTEM_URI);

    // show: firmware, TPM, each disk and each NIC.
    let text = ok(&demo.ctl(&["show", &src]));
    let value = |key: &str| value_of(&text, key);
    assert_eq!(value("Firmware"), "UEFI");
    assert_eq!(value("TPM"), "no");
    assert_eq!(value("Disks"), "2");
    assert_eq!(value("Network interfaces"), "2");
    let allocated = bytes_text(std::fs::metadata(&root).unwrap().blocks() * 512);
    let (number, unit) = allocated.split_once(' ').unwrap();
    assert_eq!(
        row(&text, "vda"),
        [
            "vda",
            "disk",
            "qcow2",
            "1.0",
            "GiB",
            number,
            unit,
            "no",
            root.to_str().unwrap()
        ],
        "{text}"
    );
    let vdb = row(&text, "vdb");
    assert_eq!(
        [vdb[0], vdb[1], vdb[2], vdb[3], vdb[4], vdb[7], vdb[8]],
        [
            "vdb",
            "disk",
            "raw",
            "256.0",
            "MiB",
            "no",
            data.to_str().unwrap()
        ],
        "{text}"
    );
    let macs = macs_of(&src);
    assert_eq!(macs.len(), 2);
    let nic_rows: Vec<Vec<&str>> = text
        .lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>())
        .filter(|words| words.first() == Some(&"user"))
        .collect();
    let expected: Vec<Vec<&str>> = macs
        .iter()
        .zip(["virtio", "e1000"])
        .map(|(mac, model)| vec!["user", "-", mac.as_str(), model])
        .collect();
    assert_eq!(nic_rows, expected, "{text}");
    let shown = json(&demo.ctl(&["show", &src, "--json"]));
    assert_eq!(
        shown,
        demo.bus.call_json("GetVm", "s", &[&src]),
        "--json is GetVm"
    );

    // plan: what the clone will do; nothing made.
    let (files, vms) = (lab.files(), lab.vms());
    let dst = lab.name("dst");
    let plan = json(&demo.ctl(&["plan", &src, &dst, "--json"]));
    assert_eq!(lab.files(), files, "a plan made no file");
    assert_eq!(lab.vms(), vms, "a plan made no VM");
    assert_eq!(plan["fits"], true);
    assert_about_free(&plan["free-bytes"], lab.dir());
    let disks = plan["disks"].as_array().unwrap();
    assert_eq!(
        disks.iter().map(|d| &d["action"]).collect::<Vec<_>>(),
        ["copy", "copy"]
    );
    assert_eq!(plan["nvram"]["source"], vars.to_str().unwrap());
    let text = ok(&demo.ctl(&["plan", &src, &dst]));
    for d in disks {
        let words = row(&text, d["target"].as_str().unwrap());
        assert_eq!(words[3], "copy", "{text}");
        assert_eq!(words.last(), Some(&d["destination"].as_str().unwrap()));
    }
    assert!(
        text.ends_with("The clone fits. Nothing was made.\n"),
        "{text}"
    );

    // The clone: the bytes, files and disks the plan named.
    let started = json(&demo.ctl(&["clone", &src, &dst, "--no-wait", "--json"]));
    let job = started["job"].as_str().unwrap();
    assert_eq!(
        demo.bus.wait_for_job_end(job, Duration::from_secs(120)),
        "succeeded"
    );
    assert_eq!(
        demo.bus.job_property(job, "BytesTotal"),
        format!("t {}", plan["bytes-to-copy"])
    );
    assert_eq!(new_files(&files, lab.dir()), planned_files(&plan));
    let planned: Vec<&str> = disks
        .iter()
        .map(|d| d["destination"].as_str().unwrap())
        .collect();
    assert_eq!(disk_paths_of(&dst), planned);
}

#[test]
#[ignore = "needs root (tmpfs mount), libvirtd and QEMU"]
fn a_plan_that_does_not_fit_a_small_pool_says_so_with_status_11_and_the_clone_fails_so() {
    let lab = Lab::new("ctl-nofit");
    let src = lab.name("src");
    lab.big_vm(lab.dir(), &src, 1, 128);
    let small = lab.path("small");
    let _mount = Mount::tmpfs(&small, "48m");
    let pool = Pool::create(&lab.name("small"), &small);
    let small_text = small.to_str().unwrap();
    let demo = Demo::on(SYSTEM_URI);

    // destinations: the pool, with the tmpfs's free space.
    let listed = json(&demo.ctl(&["destinations", "--json"]));
    let ours = listed
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["path"] == small_text)
        .unwrap_or_else(|| panic!("{small_text} in {listed}"));
    assert_eq!(ours["pool"], pool.name.as_str());
    assert_eq!(ours["free-bytes"], free_bytes(&small));
    let text = ok(&demo.ctl(&["destinations"]));
    assert_eq!(
        row(&text, small_text),
        [small_text, pool.name.as_str(), "48.0", "MiB"],
        "{text}"
    );

    // The plan into it: status 11, the sentence names the folder and sizes.
    let (files, vms) = (lab.files(), lab.vms());
    let dst = lab.name("dst");
    let args = ["plan", &src, &dst, "--target-dir", small_text];
    let out = demo.ctl(&args);
    let as_json = demo.ctl(&[&args[..], &["--json"]].concat());
    let plan: serde_json::Value = serde_json::from_str(&stdout(&as_json)).expect("JSON");
    assert_eq!(plan["fits"], false);
    let fs = &plan["filesystems"][0];
    assert_eq!(
        (&fs["folder"], &fs["fits"]),
        (&small_text.into(), &false.into())
    );
    let sentence = format!(
        "{small_text} has {} free but needs {}.",
        bytes_text(fs["free-bytes"].as_u64().unwrap()),
        bytes_text(fs["bytes-needed"].as_u64().unwrap())
    );
    assert_fails(&out, 11, &sentence);
    assert_fails(&as_json, 11, &sentence);
    assert_eq!(row(&stdout(&out), small_text).last(), Some(&"no"));
    assert!(!stdout(&out).contains("The clone fits"));
    assert_eq!(lab.files(), files, "the plan made no file");
    assert_eq!(lab.vms(), vms);
    assert!(file_sizes(&small).is_empty());
    // Beside its source there is room.
    ok(&demo.ctl(&["plan", &src, &dst]));

    // The clone it foretold: refused for its storage, nothing left.
    let out = demo.ctl(&["clone", &src, &dst, "--target-dir", small_text]);
    assert_fails(&out, 7, "space");
    assert_eq!(lab.vms(), vms);
    assert!(file_sizes(&small).is_empty(), "the partial copy is gone");
}
