//! A tiny real QEMU VM on the host's libvirtd (`qemu:///system`) for tests
//! that watch live state changes. It boots no OS: QEMU runs its firmware,
//! which is enough to be "running". Needs root and a running libvirtd.

use std::path::PathBuf;
use std::process::Command;

pub const SYSTEM_URI: &str = "qemu:///system";

/// `virsh -c qemu:///system ARGS…`, which must succeed; returns stdout.
pub fn virsh(args: &[&str]) -> String {
    let out = Command::new("virsh")
        .args(["-c", SYSTEM_URI])
        .args(args)
        .output()
        .expect("virsh is installed (Debian package libvirt-clients)");
    assert!(
        out.status.success(),
        "virsh {args:?} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Fails, saying what to do, unless this runs as root with libvirtd reachable.
pub fn require_root_and_libvirtd() {
    let uid = Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default();
    assert_eq!(
        uid, "0",
        "this test defines VMs on qemu:///system and writes /var/lib/libvirt/images: run it as root"
    );
    let reachable = Command::new("virsh")
        .args(["-c", SYSTEM_URI, "version"])
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(
        reachable,
        "libvirtd is not reachable at {SYSTEM_URI}: run `sudo tools/setup-host.sh` first"
    );
}

/// A shut-off QEMU VM with a 64 MiB memory and one small qcow2 disk in its
/// own folder under /var/lib/libvirt/images. Dropping it destroys and
/// undefines the VM and removes the folder, whatever the test did.
pub struct LiveVm {
    pub name: String,
    dir: PathBuf,
}

impl LiveVm {
    pub fn define(tag: &str) -> LiveVm {
        require_root_and_libvirtd();
        let name = format!("vmclone-gui-{tag}-{}", std::process::id());
        let dir = PathBuf::from("/var/lib/libvirt/images").join(&name);
        std::fs::create_dir_all(&dir).expect("create the VM's image folder");
        // The guard exists before anything is defined, so a failure below cleans up too.
        let vm = LiveVm { name, dir };
        let disk = vm.dir.join("disk.qcow2");
        let made = Command::new("qemu-img")
            .args(["create", "-q", "-f", "qcow2"])
            .arg(&disk)
            .arg("16M")
            .status()
            .expect("qemu-img is installed (Debian package qemu-utils)");
        assert!(made.success(), "qemu-img create failed");
        let xml = format!(
            "<domain type='qemu'>
  <name>{}</name>
  <memory unit='MiB'>64</memory>
  <vcpu>1</vcpu>
  <os><type arch='x86_64' machine='pc'>hvm</type><boot dev='hd'/></os>
  <features><acpi/></features>
  <devices>
    <disk type='file' device='disk'>
      <driver name='qemu' type='qcow2'/>
      <source file='{}'/>
      <target dev='vda' bus='virtio'/>
    </disk>
  </devices>
</domain>",
            vm.name,
            disk.display()
        );
        let file = vm.dir.join("domain.xml");
        std::fs::write(&file, xml).expect("write the domain XML");
        virsh(&["define", file.to_str().expect("a UTF-8 path")]);
        vm
    }

    pub fn start(&self) {
        virsh(&["start", &self.name]);
    }

    pub fn destroy(&self) {
        virsh(&["destroy", &self.name]);
    }
}

impl Drop for LiveVm {
    fn drop(&mut self) {
        // Best effort and quiet: the VM may be shut off or not defined yet.
        for args in [["destroy", &self.name], ["undefine", &self.name]] {
            let _ = Command::new("virsh")
                .args(["-c", SYSTEM_URI])
                .args(args)
                .output();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
