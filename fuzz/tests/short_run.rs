//! The short coverage-guided run of the full test command: tools/fuzz.sh
//! builds the libFuzzer target with sanitizer coverage and fuzzes
//! `domain_xml::parse` and `rewrite` for 60 s from the kept corpus and the
//! seeds only (`--fresh`: what earlier long runs collected does not slow
//! it). Any finding (a broken property, a panic, an input that runs over
//! 5 s) fails it; the input is in target/fuzz/findings/.

use std::path::Path;
use std::process::Command;

#[test]
#[ignore = "builds the instrumented fuzzer (minutes) and fuzzes for 60 s: in the full suite"]
fn sixty_seconds_of_coverage_guided_fuzzing_find_nothing() {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let out = Command::new("bash")
        .arg(repo.join("tools/fuzz.sh"))
        .args(["--fresh", "60"])
        .current_dir(&repo)
        .output()
        .expect("run tools/fuzz.sh");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    eprintln!("{stdout}");
    assert!(
        out.status.success(),
        "tools/fuzz.sh --fresh 60 failed ({}):\n{stdout}\n{stderr}",
        out.status
    );
    let figure = |name: &str| -> u64 {
        stdout
            .lines()
            .find_map(|l| l.trim().strip_prefix(name))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or_else(|| panic!("no {name:?} figure in:\n{stdout}"))
    };
    assert_eq!(figure("findings"), 0);
    // A run that hardly ran proves nothing (2 cores shared: thousands per second here).
    let executions = figure("executions");
    assert!(executions >= 10_000, "only {executions} executions in 60 s");
    assert!(figure("coverage (edges)") >= 1000);
}
