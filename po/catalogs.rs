//! Compiles the message catalogs of po/ for a build script: po/LINGUAS lists the
//! languages; each po/LANG.po becomes OUT_DIR/locale/LANG/LC_MESSAGES/vmclone.mo,
//! so a plain `cargo build` runs translated. Shared by gui/build.rs and
//! cli/build.rs (`#[path = "../po/catalogs.rs"] mod catalogs;`).

use std::path::Path;
use std::process::Command;

pub fn compile(out: &Path) {
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
        let status = Command::new("msgfmt")
            .arg("--check")
            .arg("-o")
            .arg(dir.join("vmclone.mo"))
            .arg(&source)
            .status()
            .unwrap_or_else(|e| panic!("cannot run msgfmt ({e}); install it (Debian: gettext)"));
        assert!(
            status.success(),
            "msgfmt {} failed: {status}",
            source.display()
        );
    }
}
