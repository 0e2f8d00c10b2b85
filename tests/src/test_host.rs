//! Hosts on libvirt's test driver (`test:///path/to/host.xml`), which runs inside the
//! client (the service, virsh): no daemon needed.

use std::path::Path;
use std::process::Command;

use crate::paths::workspace_root;
use crate::process::run_command;
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
