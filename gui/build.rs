//! Compiles the GResource bundle (UI files, style, icons) and the message
//! catalogs of po/ into OUT_DIR, so a plain `cargo build` runs translated.

use std::path::{Path, PathBuf};
use std::process::Command;

#[path = "../po/catalogs.rs"]
mod catalogs;

fn main() {
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("OUT_DIR"));
    compile_resources(&out);
    compile_schemas(&out);
    catalogs::compile(&out);
    println!("cargo:rerun-if-env-changed=VMCLONE_LOCALEDIR");
}

fn run(cmd: &mut Command, what: &str) {
    let status = cmd
        .status()
        .unwrap_or_else(|e| panic!("cannot run {what} ({e}); install it (Debian: {what})"));
    assert!(status.success(), "{what} failed: {status}");
}

fn compile_resources(out: &Path) {
    let src = Path::new("src");
    let manifest = src.join("vmclone.gresource.xml");
    println!("cargo:rerun-if-changed={}", manifest.display());
    let deps = Command::new("glib-compile-resources")
        .arg("--sourcedir")
        .arg(src)
        .arg("--generate-dependencies")
        .arg(&manifest)
        .output()
        .expect("glib-compile-resources (package libglib2.0-dev-bin)");
    assert!(
        deps.status.success(),
        "glib-compile-resources: bad manifest"
    );
    for dep in String::from_utf8_lossy(&deps.stdout).lines() {
        println!("cargo:rerun-if-changed={dep}");
    }
    run(
        Command::new("glib-compile-resources")
            .arg("--sourcedir")
            .arg(src)
            .arg("--target")
            .arg(out.join("vmclone.gresource"))
            .arg(&manifest),
        "glib-compile-resources",
    );
}

/// The app's GSettings schema, for builds run from the tree (tests, demos);
/// `make install` puts it in the system's schema folder instead.
fn compile_schemas(out: &Path) {
    let schema = Path::new("../data/org.vmclone.VmClone.gschema.xml");
    println!("cargo:rerun-if-changed={}", schema.display());
    let dir = out.join("schemas");
    std::fs::create_dir_all(&dir).expect("create OUT_DIR/schemas");
    std::fs::copy(schema, dir.join("org.vmclone.VmClone.gschema.xml")).expect("copy the schema");
    run(
        Command::new("glib-compile-schemas")
            .arg("--strict")
            .arg(&dir),
        "glib-compile-schemas",
    );
}
