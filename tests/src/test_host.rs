//! Hosts on libvirt's test driver (`test:///path/to/host.xml`), which runs inside the
//! client (the service, virsh): no daemon needed.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::libvirt::{qcow2_image, OVMF_CODE};
use crate::paths::workspace_root;
use crate::process::{run, run_command};
use crate::temp::TempDir;

/// Writes a libvirt test-driver host description and returns its `test:///` URI.
pub fn test_driver_uri(dir: &Path, host_xml: &str) -> String {
    let path = dir.join("host.xml");
    std::fs::write(&path, host_xml).expect("write test host");
    format!("test://{}", path.display())
}

/// `data/demo-host.xml`, the libvirt test-driver host the demo uses.
pub fn demo_host_uri() -> String {
    format!(
        "test://{}",
        workspace_root().join("data/demo-host.xml").display()
    )
}

/// A host with `count` shut-off VMs named vm0001, vm0002, … (one disk and one NIC
/// each), made by `tools/lib/many-vms-host.sh`, which the benchmarks use too.
pub fn many_vms_uri(dir: &Path, count: u32) -> String {
    let script = workspace_root().join("tools/lib/many-vms-host.sh");
    let xml = run_command(Command::new("sh").arg(script).arg(count.to_string()));
    test_driver_uri(dir, &xml)
}

/// One domain to define.
pub struct Definition {
    /// File name in the scratch folder; also names the domain in failure messages.
    pub file: String,
    pub name: String,
    pub xml: String,
    /// Undefined again right after, so that a later definition may reuse the name.
    pub undefine: bool,
}

/// libvirt's own judgement of domain XML: defines each domain in order in one `virsh` run
/// on an empty test-driver host; panics unless virsh succeeded with nothing on stderr and
/// reported every one (and no other) as defined.
pub fn define_in_test_driver(tag: &str, definitions: &[Definition]) {
    let scratch = TempDir::new(tag);
    let uri = test_driver_uri(scratch.path(), "<node/>\n");
    let mut script = String::new();
    for d in definitions {
        let file = scratch.join(&d.file);
        std::fs::write(&file, &d.xml).unwrap();
        script.push_str(&format!("define {}; ", file.display()));
        if d.undefine {
            script.push_str(&format!("undefine {}; ", d.name));
        }
    }
    let out = Command::new("virsh")
        .args(["-c", &uri, &script])
        .output()
        .unwrap_or_else(|e| {
            panic!("this test needs virsh (Debian package libvirt-clients) to ask libvirt: {e}")
        });
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && stderr.trim().is_empty(),
        "libvirt refused a definition:\n{stderr}"
    );
    for d in definitions {
        assert!(
            stdout.contains(&format!("Domain '{}' defined from", d.name)),
            "{}: {} not defined:\n{stdout}",
            d.file,
            d.name
        );
    }
    // Several definitions may share a name: count them too.
    assert_eq!(
        stdout.matches(" defined from ").count(),
        definitions.len(),
        "{stdout}"
    );
}

/// A test-driver host on real files: `detailed01`, shut off, with two disks (qcow2 `vda`
/// of 10 GiB holding 8 MiB, raw `vdb` of 1 GiB holding 4 MiB), UEFI with a variables file
/// of 128 KiB, an emulated TPM and two NICs (network `default` with virtio, bridge `br0`
/// with e1000e); `running01`, running, with one raw disk of 64 MiB (no guest agent), for
/// live plans; and the dir pool `detailed-pool` on an empty folder. The service copies
/// these files for real.
pub struct DetailedHost {
    pub uri: String,
    /// The VM's disk images, `vda` and `vdb`.
    pub disks: [PathBuf; 2],
    pub nvram: PathBuf,
    pub pool_dir: PathBuf,
}

impl DetailedHost {
    pub const VM: &'static str = "detailed01";
    pub const RUNNING: &'static str = "running01";
    pub const POOL: &'static str = "detailed-pool";
    pub const MACS: [&'static str; 2] = ["52:54:00:aa:00:01", "52:54:00:aa:00:02"];

    /// The host with its files in `dir`.
    pub fn create(dir: &Path) -> DetailedHost {
        let disks = [
            dir.join("detailed01.qcow2"),
            dir.join("detailed01-data.raw"),
        ];
        qcow2_image(&disks[0], "10G", "write -P 0x5a 1M 8M");
        std::fs::File::create(&disks[1])
            .and_then(|f| f.set_len(1 << 30))
            .expect("create the raw image");
        let raw = disks[1].to_str().expect("UTF-8 test paths");
        run("qemu-io", &["-f", "raw", "-c", "write -P 0x11 0 4M", raw]);
        let nvram = dir.join("detailed01_VARS.fd");
        std::fs::write(&nvram, vec![0x4e; 128 << 10]).expect("write the variables file");
        let running_disk = dir.join("running01.raw");
        std::fs::File::create(&running_disk)
            .and_then(|f| f.set_len(64 << 20))
            .expect("create the running VM's image");
        let pool_dir = dir.join("pool");
        std::fs::create_dir(&pool_dir).expect("create the pool folder");
        let [root, data] = &disks;
        let xml = format!(
            "<node>
  <pool type='dir'>
    <name>{pool}</name>
    <uuid>4d2e5f6a-1b2c-4d3e-8f90-a1b2c3d4e5f7</uuid>
    <source/>
    <target><path>{pool_dir}</path></target>
  </pool>
  <domain type='test' xmlns:test='http://libvirt.org/schemas/domain/test/1.0'>
    <test:runstate>5</test:runstate>
    <name>{vm}</name>
    <uuid>5a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4e</uuid>
    <memory unit='MiB'>2048</memory>
    <vcpu>2</vcpu>
    <os>
      <type arch='x86_64' machine='q35'>hvm</type>
      <loader readonly='yes' type='pflash'>{OVMF_CODE}</loader>
      <nvram>{nvram}</nvram>
    </os>
    <devices>
      <disk type='file' device='disk'>
        <driver name='qemu' type='qcow2'/>
        <source file='{root}'/>
        <target dev='vda' bus='virtio'/>
      </disk>
      <disk type='file' device='disk'>
        <driver name='qemu' type='raw'/>
        <source file='{data}'/>
        <target dev='vdb' bus='virtio'/>
      </disk>
      <interface type='network'>
        <mac address='{mac0}'/>
        <source network='default'/>
        <model type='virtio'/>
      </interface>
      <interface type='bridge'>
        <mac address='{mac1}'/>
        <source bridge='br0'/>
        <model type='e1000e'/>
      </interface>
      <tpm model='tpm-crb'><backend type='emulator' version='2.0'/></tpm>
    </devices>
  </domain>
  {running}
</node>
",
            running = file_vm_xml(
                Self::RUNNING,
                "5a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4f",
                1,
                &running_disk
            ),
            pool = Self::POOL,
            pool_dir = pool_dir.display(),
            vm = Self::VM,
            nvram = nvram.display(),
            root = root.display(),
            data = data.display(),
            mac0 = Self::MACS[0],
            mac1 = Self::MACS[1],
        );
        DetailedHost {
            uri: test_driver_uri(dir, &xml),
            disks,
            nvram,
            pool_dir,
        }
    }
}

/// A test-driver domain `name` whose one disk is the raw file `disk`, in libvirt's run
/// state `runstate` (1 running, 5 shut off), as XML for a `<node>`.
pub fn file_vm_xml(name: &str, uuid: &str, runstate: u8, disk: &Path) -> String {
    format!(
        "<domain type='test' xmlns:test='http://libvirt.org/schemas/domain/test/1.0'>
    <test:runstate>{runstate}</test:runstate>
    <name>{name}</name>
    <uuid>{uuid}</uuid>
    <memory unit='MiB'>512</memory>
    <vcpu>1</vcpu>
    <os><type arch='x86_64'>hvm</type></os>
    <devices>
      <disk type='file' device='disk'>
        <driver name='qemu' type='raw'/>
        <source file='{}'/>
        <target dev='vda' bus='virtio'/>
      </disk>
    </devices>
  </domain>",
        disk.display()
    )
}

/// The URI of a test-driver host (its state in `dir`) with the dir pool `small`, which
/// holds a fully allocated raw volume `big.raw` of `gib` GiB, and the shut-off VM `big`
/// on it. The test driver gives every pool 100 GiB, so its free space is what is left.
pub fn big_volume_host(dir: &Path, gib: u64) -> String {
    let xml = format!(
        "<node>
  <pool type='dir'>
    <name>small</name>
    <uuid>0b8e8f3a-8c1a-4f43-9d55-6f0f6a1f2b3c</uuid>
    <target><path>/vmclone-test-small-pool</path></target>
    <volume type='file'>
      <name>big.raw</name>
      <capacity unit='GiB'>{gib}</capacity>
      <allocation unit='GiB'>{gib}</allocation>
    </volume>
  </pool>
  <domain type='test' xmlns:test='http://libvirt.org/schemas/domain/test/1.0'>
    <test:runstate>5</test:runstate>
    <name>big</name>
    <memory>65536</memory>
    <os><type>hvm</type></os>
    <devices>
      <disk type='volume' device='disk'>
        <driver name='qemu' type='raw'/>
        <source pool='small' volume='big.raw'/>
        <target dev='vda'/>
      </disk>
    </devices>
  </domain>
</node>"
    );
    test_driver_uri(dir, &xml)
}
