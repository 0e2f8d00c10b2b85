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
    // target/<profile>/deps/<test> (a test) or target/<profile>/<bin> (the soak)
    // -> target/<profile>/<name>
    let dir = exe.parent().expect("the binary lives in target/<profile>");
    let profile_dir = match dir.file_name().and_then(|n| n.to_str()) {
        Some("deps") => dir.parent().expect("deps has a parent"),
        _ => dir,
    };
    let bin = profile_dir.join(name);
    assert!(
        bin.exists(),
        "{} is not built; run `cargo build --workspace` (or `cargo test --workspace`) first",
        bin.display()
    );
    bin
}
