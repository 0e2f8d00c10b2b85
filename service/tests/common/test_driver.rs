//! libvirt's own judgement of domain XML: `virsh` on the test driver over an empty host
//! (the driver runs inside virsh, so no daemon is needed). Shared by the domain XML unit
//! tests and the virt-clone conformance tests.

use std::path::PathBuf;

/// One domain to define.
pub struct Definition {
    /// File name in the scratch folder; also names the domain in failure messages.
    pub file: String,
    pub name: String,
    pub xml: String,
    /// Undefined again right after, so that a later definition may reuse the name.
    pub undefine: bool,
}

/// Defines each domain in order in one `virsh` run; panics unless virsh succeeded with
/// nothing on stderr and reported every one (and no other) as defined.
pub fn define_in_test_driver(tag: &str, definitions: &[Definition]) {
    let scratch =
        Scratch(std::env::temp_dir().join(format!("vmclone-{tag}-{}", std::process::id())));
    std::fs::create_dir_all(&scratch.0).unwrap();
    let node = scratch.0.join("node.xml");
    std::fs::write(&node, "<node/>\n").unwrap();
    let mut script = String::new();
    for d in definitions {
        let file = scratch.0.join(&d.file);
        std::fs::write(&file, &d.xml).unwrap();
        script.push_str(&format!("define {}; ", file.display()));
        if d.undefine {
            script.push_str(&format!("undefine {}; ", d.name));
        }
    }
    let out = std::process::Command::new("virsh")
        .arg("-c")
        .arg(format!("test://{}", node.display()))
        .arg(&script)
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

/// The folder for the domain files, removed again whatever the outcome.
struct Scratch(PathBuf);

impl Drop for Scratch {
    fn drop(&mut self) {
        std::fs::remove_dir_all(&self.0).ok();
    }
}
