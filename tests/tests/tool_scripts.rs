//! The scripts in `tools/` parse: most of them (benchmarks, soak, fuzzing) run by
//! hand, not in the suite, so a broken one would otherwise only show when someone
//! needs it (a merge once lost a closing brace of `tools/bench.sh`).

use vmclone_tests::workspace_root;

#[test]
fn every_script_in_tools_parses() {
    let tools = workspace_root().join("tools");
    let mut scripts = Vec::new();
    for dir in [tools.clone(), tools.join("lib")] {
        for entry in std::fs::read_dir(&dir).expect("read tools/") {
            let path = entry.expect("a tools/ entry").path();
            if path.extension().is_some_and(|e| e == "sh") {
                scripts.push(path);
            }
        }
    }
    assert!(scripts.len() >= 8, "the scripts of tools/: {scripts:?}");
    for script in scripts {
        let out = std::process::Command::new("bash")
            .arg("-n")
            .arg(&script)
            .output()
            .expect("run bash -n");
        assert!(
            out.status.success(),
            "{} does not parse: {}",
            script.display(),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}
