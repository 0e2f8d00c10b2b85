//! The host's real libvirtd (`qemu:///system`): virsh, and a lab of test VMs and
//! images that is removed again, whatever the test did.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use crate::process::{daemon, require_root, run, try_run, try_run_command, wait_until};
use crate::temp::{file_sizes, names_in};

pub const SYSTEM_URI: &str = "qemu:///system";
/// Where libvirt keeps swtpm's state of each VM, by UUID.
pub const SWTPM_STATE: &str = "/var/lib/libvirt/swtpm";
/// OVMF, the UEFI firmware QEMU boots (Debian's package ovmf): its code and the
/// template of its variables.
pub const OVMF_CODE: &str = "/usr/share/OVMF/OVMF_CODE_4M.fd";
pub const OVMF_VARS: &str = "/usr/share/OVMF/OVMF_VARS_4M.fd";
/// A user-mode NIC, for `<devices>`.
pub const NIC: &str = "<interface type='user'><model type='virtio'/></interface>";

/// `virsh -c qemu:///system ARGS…`, which must succeed; its stdout.
pub fn virsh(args: &[&str]) -> String {
    try_virsh(args).unwrap_or_else(|e| panic!("{e}"))
}

/// Whether `virsh -c qemu:///system ARGS…` succeeds.
pub fn virsh_ok(args: &[&str]) -> bool {
    try_virsh(args).is_ok()
}

/// `virsh -c qemu:///system ARGS…`: its stdout, or Err with what it printed.
pub fn try_virsh(args: &[&str]) -> Result<String, String> {
    try_run_command(Command::new("virsh").args(["-c", SYSTEM_URI]).args(args))
}

/// Fails, saying what to do, unless this runs as root with libvirtd reachable.
pub fn require_libvirtd() {
    require_root("it defines VMs on qemu:///system and writes /var/lib/libvirt/images");
    assert!(
        virsh_ok(&["version"]),
        "libvirtd is not reachable at {SYSTEM_URI}: run `sudo tools/setup-host.sh` (or `sudo make check`)"
    );
}

/// A folder for one test's images, under libvirt's image folder so QEMU may open
/// them; removed (with every VM named with its prefix, their NVRAM and TPM state)
/// on drop.
pub struct Lab {
    dir: PathBuf,
    prefix: String,
}

impl Lab {
    pub fn new(tag: &str) -> Lab {
        require_libvirtd();
        let prefix = format!("vmclone-e2e-{tag}-{}", std::process::id());
        let dir = PathBuf::from("/var/lib/libvirt/images").join(&prefix);
        std::fs::create_dir_all(&dir).unwrap();
        Lab { dir, prefix }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// A VM name of this lab (removed with it).
    pub fn name(&self, n: &str) -> String {
        format!("{}-{n}", self.prefix)
    }

    pub fn path(&self, file: &str) -> PathBuf {
        self.dir.join(file)
    }

    /// Defines a small QEMU VM from `devices` (XML inside `<devices>`) and `os_extra`
    /// (XML inside `<os>`); its UUID.
    pub fn define(&self, name: &str, os_extra: &str, devices: &str) -> String {
        let xml = format!(
            "<domain type='qemu'>
  <name>{name}</name>
  <memory unit='MiB'>64</memory>
  <vcpu>1</vcpu>
  <os><type arch='x86_64' machine='pc'>hvm</type>{os_extra}<boot dev='hd'/></os>
  <features><acpi/></features>
  <devices>
    {devices}
  </devices>
</domain>"
        );
        let file = self.dir.join(format!("{name}.xml"));
        std::fs::write(&file, xml).unwrap();
        virsh(&["define", file.to_str().unwrap()]);
        virsh(&["domuuid", name]).trim().to_string()
    }

    /// Defines `name`, a VM with one raw disk in `dir` (its path returned): a file of
    /// `size_gib` GiB holding `data_mib` MiB of real data, for copies that take a while.
    pub fn big_vm(&self, dir: &Path, name: &str, size_gib: u64, data_mib: u64) -> PathBuf {
        let img = dir.join(format!("{name}.raw"));
        // A non-zero pattern: zero blocks could legitimately be skipped by a copy.
        // qemu-io writes at most 2 GiB at once.
        let writes: Vec<String> = (0..data_mib)
            .step_by(1024)
            .map(|at| format!("write -P 0xa5 {at}M {}M", (data_mib - at).min(1024)))
            .collect();
        let writes: Vec<&str> = writes.iter().map(String::as_str).collect();
        raw_image(&img, size_gib << 30, &writes);
        self.define(name, "", &format!("{}{NIC}", disk_xml(&img, "raw")));
        img
    }

    /// This lab's VMs, sorted.
    pub fn vms(&self) -> Vec<String> {
        let mut v: Vec<String> = virsh(&["list", "--all", "--name"])
            .lines()
            .filter(|l| l.starts_with(&self.prefix))
            .map(str::to_string)
            .collect();
        v.sort();
        v
    }

    /// What the lab's domains use that is missing, and what is in the lab's folder
    /// or is new TPM state (not in `tpm_before`) that no domain uses.
    pub fn orphans_and_missing(
        &self,
        tpm_before: &BTreeSet<String>,
    ) -> (BTreeSet<PathBuf>, BTreeSet<PathBuf>) {
        let mut used = BTreeSet::new();
        for vm in self.vms() {
            let xml = virsh(&["dumpxml", "--inactive", &vm]);
            for part in xml.split("file='").skip(1) {
                used.insert(PathBuf::from(part.split('\'').next().unwrap()));
            }
            for part in xml.split("<nvram>").skip(1) {
                used.insert(PathBuf::from(part.split('<').next().unwrap()));
            }
            if xml.contains("<tpm ") {
                used.insert(Path::new(SWTPM_STATE).join(virsh(&["domuuid", &vm]).trim()));
            }
        }
        let mut present: BTreeSet<PathBuf> = std::fs::read_dir(&self.dir)
            .unwrap()
            .flatten()
            .map(|e| e.path())
            // The definitions written to define the lab's VMs.
            .filter(|p| p.extension().and_then(|e| e.to_str()) != Some("xml"))
            .collect();
        let is_new_state = |n: &String| !tpm_before.contains(n);
        present.extend(
            names_in(Path::new(SWTPM_STATE))
                .into_iter()
                .filter(is_new_state)
                .map(|n| Path::new(SWTPM_STATE).join(n)),
        );
        let orphans = present.difference(&used).cloned().collect();
        let missing = used.difference(&present).cloned().collect();
        (orphans, missing)
    }

    /// Every file below the lab folder with its size.
    pub fn files(&self) -> BTreeMap<PathBuf, u64> {
        file_sizes(&self.dir)
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        // Best effort: whatever the test left, running or not.
        let names = try_virsh(&["list", "--all", "--name"]).unwrap_or_default();
        for name in names.lines().filter(|l| l.starts_with(&self.prefix)) {
            let uuid = try_virsh(&["domuuid", name]).unwrap_or_default();
            let _ = try_virsh(&["destroy", name]);
            let _ = try_virsh(&["undefine", name, "--nvram", "--tpm"]);
            if !uuid.trim().is_empty() {
                let _ = std::fs::remove_dir_all(Path::new(SWTPM_STATE).join(uuid.trim()));
            }
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A transient libvirt dir pool on a folder, for one test; destroyed (its
/// files stay) on drop.
pub struct Pool {
    pub name: String,
}

impl Pool {
    /// The pool `name` with its volumes in `dir` (made when missing).
    pub fn create(name: &str, dir: &Path) -> Pool {
        std::fs::create_dir_all(dir).unwrap();
        let xml = std::env::temp_dir().join(format!("{name}-pool.xml"));
        std::fs::write(
            &xml,
            format!(
                "<pool type='dir'><name>{name}</name><target><path>{}</path></target></pool>",
                dir.display()
            ),
        )
        .unwrap();
        virsh(&["pool-create", xml.to_str().unwrap()]);
        let _ = std::fs::remove_file(&xml);
        Pool { name: name.into() }
    }
}

impl Drop for Pool {
    fn drop(&mut self) {
        let _ = try_virsh(&["pool-destroy", &self.name]);
    }
}

/// `qemu-img ARGS…`, which must succeed; its stdout.
pub fn qemu_img(args: &[&str]) -> String {
    run("qemu-img", args)
}

/// A qcow2 image of `size` at `path`, with data written by the qemu-io command `write`.
pub fn qcow2_image(path: &Path, size: &str, write: &str) {
    let p = path.to_str().unwrap();
    qemu_img(&["create", "-q", "-f", "qcow2", p, size]);
    run("qemu-io", &["-f", "qcow2", "-c", write, p]);
}

/// A sparse raw image of `size` bytes at `path`, with data written by the qemu-io
/// commands `writes`.
pub fn raw_image(path: &Path, size: u64, writes: &[&str]) {
    std::fs::File::create(path).unwrap().set_len(size).unwrap();
    let mut args = vec!["-f", "raw"];
    for w in writes {
        args.extend(["-c", w]);
    }
    args.push(path.to_str().unwrap());
    run("qemu-io", &args);
}

/// A virtio disk `vda` on the image at `path` of `format`, for `<devices>`.
pub fn disk_xml(path: &Path, format: &str) -> String {
    disk_xml_on(path, format, "vda")
}

/// A virtio disk `dev` (`vdb`, …) on the image at `path` of `format`, for `<devices>`.
pub fn disk_xml_on(path: &Path, format: &str, dev: &str) -> String {
    format!(
        "<disk type='file' device='disk'><driver name='qemu' type='{format}'/>\
         <source file='{}'/><target dev='{dev}' bus='virtio'/></disk>",
        path.display()
    )
}

/// UEFI for `<os>`: OVMF's code, and `vars` (a copy of [`OVMF_VARS`]) as the VM's
/// variables file, in libvirt's newer `<nvram type='file'><source file=…/>` form.
pub fn uefi_os(vars: &Path) -> String {
    format!(
        "<loader readonly='yes' type='pflash'>{OVMF_CODE}</loader>\
         <nvram template='{OVMF_VARS}' type='file'><source file='{}'/></nvram>",
        vars.display()
    )
}

/// The MAC addresses of domain `name`, in interface order.
pub fn macs_of(name: &str) -> Vec<String> {
    virsh(&["domiflist", name])
        .lines()
        .filter_map(|l| {
            l.split_whitespace()
                .find(|w| w.matches(':').count() == 5)
                .map(str::to_string)
        })
        .collect()
}

/// The sources of domain `name`'s disks (not cdroms), in order.
pub fn disk_paths_of(name: &str) -> Vec<String> {
    virsh(&["domblklist", name, "--details"])
        .lines()
        .filter(|l| l.contains(" disk "))
        .filter_map(|l| l.split_whitespace().last().map(str::to_string))
        .collect()
}

/// Kills libvirtd (SIGTERM, as a package upgrade does) and starts it again; returns
/// once it answers.
pub fn restart_libvirtd() {
    let pids = run("pgrep", &["-x", "libvirtd"]);
    let pids: Vec<&str> = pids.split_whitespace().collect();
    assert!(!pids.is_empty(), "libvirtd runs");
    run("kill", &pids);
    // Gone, not only deaf: until it exits it holds its pidfile.
    wait_until(Duration::from_secs(30), "libvirtd to exit", || {
        try_run("pgrep", &["-x", "libvirtd"]).is_err()
    });
    std::fs::create_dir_all("/run/libvirt").unwrap();
    let started = daemon("libvirtd -d").status();
    assert!(started.is_ok_and(|s| s.success()), "cannot start libvirtd");
    wait_until(Duration::from_secs(20), "libvirtd to come back", || {
        virsh_ok(&["version"])
    });
}

/// Waits until domain `name` runs.
pub fn wait_running(name: &str) {
    wait_until(Duration::from_secs(30), &format!("{name} running"), || {
        virsh(&["domstate", name]).trim() == "running"
    });
}
