//! Compiles the message catalogs of po/ into OUT_DIR, so a plain `cargo build`
//! runs translated (`make` sets VMCLONE_LOCALEDIR to the installed folder).

#[path = "../po/catalogs.rs"]
mod catalogs;

fn main() {
    let out = std::path::PathBuf::from(std::env::var_os("OUT_DIR").expect("OUT_DIR"));
    catalogs::compile(&out);
    println!("cargo:rerun-if-env-changed=VMCLONE_LOCALEDIR");
}
