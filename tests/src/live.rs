//! Running source VMs for the live-clone tests: disks whose reads libvirt
//! throttles (so a backup lasts long enough for a test to write into the
//! guest meanwhile), writes into a running guest's disk through its QEMU,
//! and what QEMU and libvirt report about their jobs.

use std::os::unix::fs::FileTypeExt;
use std::path::Path;
use std::time::Duration;

use crate::libvirt::{try_virsh, virsh};
use crate::process::{run, wait_until};

/// The host block device that holds `dir`: the one QEMU's reads are throttled on.
pub fn block_device_of(dir: &Path) -> String {
    let dev = run(
        "findmnt",
        &["-n", "-o", "SOURCE", "--target", dir.to_str().unwrap()],
    )
    .trim()
    .to_string();
    let is_block = std::fs::metadata(&dev).is_ok_and(|m| m.file_type().is_block_device());
    assert!(
        is_block,
        "the live-clone tests throttle QEMU's reads from the block device holding {}, but it is on {dev:?}, which is not a block device",
        dir.display()
    );
    dev
}

/// `<blkiotune>` (inside `<domain>`) letting the VM's QEMU read at most
/// `bytes_per_s` from `device`: its backup jobs read the source that slowly.
pub fn read_throttle_xml(device: &str, bytes_per_s: u64) -> String {
    format!(
        "<blkiotune><device><path>{device}</path><read_bytes_sec>{bytes_per_s}</read_bytes_sec></device></blkiotune>"
    )
}

/// Lifts the read throttle of the running `name` on `device`.
pub fn lift_read_throttle(name: &str, device: &str) {
    virsh(&[
        "blkiotune",
        name,
        "--live",
        "--device-read-bytes-sec",
        &format!("{device},0"),
    ]);
}

/// A virtio disk `dev` on the image at `path` of `format`, read without the
/// host's page cache (`cache='none'`), so a read throttle sees every read.
pub fn uncached_disk_xml(path: &Path, format: &str, dev: &str) -> String {
    format!(
        "<disk type='file' device='disk'><driver name='qemu' type='{format}' cache='none'/>\
         <source file='{}'/><target dev='{dev}' bus='virtio'/></disk>",
        path.display()
    )
}

/// Writes the byte `pattern` over `len_mib` MiB at `at_mib` MiB of the running
/// `name`'s virtio disk number `index` (0 for the first), through its QEMU, as
/// the guest would.
pub fn write_in_guest(name: &str, index: usize, pattern: u8, at_mib: u64, len_mib: u64) {
    let cmd = format!(
        "qemu-io -d /machine/peripheral/virtio-disk{index}/virtio-backend \"write -P {pattern:#04x} {at_mib}M {len_mib}M\""
    );
    // The monitor prints nothing on success, and why otherwise.
    let out = virsh(&["qemu-monitor-command", name, "--hmp", &cmd]);
    assert!(out.trim().is_empty(), "{cmd}: {out}");
}

/// A block job QEMU runs for the domain (libvirt's backup runs one per disk).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlockJob {
    pub kind: String,
    pub offset: u64,
    pub len: u64,
    pub status: String,
}

/// QEMU's block jobs of the running `name` (its `query-block-jobs`).
pub fn qemu_block_jobs(name: &str) -> Vec<BlockJob> {
    let out = virsh(&[
        "qemu-monitor-command",
        name,
        r#"{"execute":"query-block-jobs"}"#,
    ]);
    let reply: serde_json::Value =
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"));
    reply["return"]
        .as_array()
        .unwrap_or_else(|| panic!("no job list in {out}"))
        .iter()
        .map(|j| BlockJob {
            kind: j["type"].as_str().unwrap_or_default().to_string(),
            offset: j["offset"].as_u64().unwrap_or(0),
            len: j["len"].as_u64().unwrap_or(0),
            status: j["status"].as_str().unwrap_or_default().to_string(),
        })
        .collect()
}

/// The type of libvirt's job on `name` (`virsh domjobinfo`): `None` when
/// no job runs, `Unbounded` for a backup.
pub fn job_type(name: &str) -> String {
    let info = virsh(&["domjobinfo", name]);
    info.lines()
        .find_map(|l| l.strip_prefix("Job type:"))
        .unwrap_or_else(|| panic!("no job type in {info}"))
        .trim()
        .to_string()
}

/// Waits until libvirt runs a backup job on `name`.
pub fn wait_for_backup_job(name: &str) {
    wait_until(Duration::from_secs(60), "a backup job", || {
        try_virsh(&["domjobinfo", name]).is_ok_and(|i| i.contains("Backup"))
    });
}

/// Whether `len_mib` MiB at `at_mib` MiB of the image at `path` (of
/// `format`) all hold the byte `pattern`; the image may be in use.
pub fn holds_pattern(path: &Path, format: &str, pattern: u8, at_mib: u64, len_mib: u64) -> bool {
    let out = run(
        "qemu-io",
        &[
            "-f",
            format,
            "-r",
            "-U",
            "-c",
            &format!("read -P {pattern:#04x} {at_mib}M {len_mib}M"),
            path.to_str().unwrap(),
        ],
    );
    assert!(out.contains("read "), "{out}");
    !out.contains("Pattern verification failed")
}

/// The domain ID of the running `name`.
pub fn dom_id(name: &str) -> String {
    virsh(&["domid", name]).trim().to_string()
}
