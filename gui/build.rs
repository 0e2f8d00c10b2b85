//! Compiles the GResource bundle (UI files, style, icons) and the message
//! catalogs of po/ into OUT_DIR, so a plain `cargo build` runs translated.

use std::path::{Path, PathBuf};
use std::process::Command;

fn main() {
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("OUT_DIR"));
    compile_resources(&out);
    compile_catalogs(&out);
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

/// po/LINGUAS lists the languages; each po/LANG.po becomes
/// OUT_DIR/locale/LANG/LC_MESSAGES/vmclone.mo.
fn compile_catalogs(out: &Path) {
    let po = Path::new("../po");
    let linguas = po.join("LINGUAS");
    println!("cargo:rerun-if-changed={}", linguas.display());
    let list = std::fs::read_to_string(&linguas).expect("po/LINGUAS");
    for lang in list
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
    {
        let source = po.join(format!("{lang}.po"));
        println!("cargo:rerun-if-changed={}", source.display());
        let dir = out.join("locale").join(lang).join("LC_MESSAGES");
        std::fs::create_dir_all(&dir).expect("create locale dir");
        run(
            Command::new("msgfmt")
                .arg("--check")
                .arg("-o")
                .arg(dir.join("vmclone.mo"))
                .arg(&source),
            "msgfmt (package gettext)",
        );
    }
}
