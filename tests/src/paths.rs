//! Where the repository and the built binaries are.

use std::path::{Path, PathBuf};

/// The repository's top folder.
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ has a parent")
        .to_path_buf()
}

/// A binary built by `cargo test --workspace` / `cargo build` into the same
/// target folder as the running test.
pub fn built_binary(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("current_exe");
    // target/<profile>/deps/<test> -> target/<profile>/<name>
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("test binary lives in target/<profile>/deps");
    let bin = profile_dir.join(name);
    assert!(
        bin.exists(),
        "{} is not built; run `cargo build --workspace` (or `cargo test --workspace`) first",
        bin.display()
    );
    bin
}
