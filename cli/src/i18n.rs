//! gettext setup: the CLI shares the app's domain (`vmclone`) and catalogs.

use gettextrs::{bind_textdomain_codeset, bindtextdomain, setlocale, textdomain, LocaleCategory};

const GETTEXT_PACKAGE: &str = "vmclone";

/// `make` builds with the installed folder; a plain `cargo build` uses the
/// catalogs build.rs compiled from po/, so translations work from the build tree.
const LOCALEDIR: &str = match option_env!("VMCLONE_LOCALEDIR") {
    Some(dir) => dir,
    None => concat!(env!("OUT_DIR"), "/locale"),
};

/// Loads the catalog for the user's language. Call first thing in `main`,
/// before any other thread exists.
pub fn init() {
    // SAFETY: setlocale is not thread-safe; this runs before any other thread exists.
    unsafe {
        setlocale(LocaleCategory::LcAll, "");
    }
    // A missing catalog only means English; these fail just on allocation errors.
    let _ = bindtextdomain(GETTEXT_PACKAGE, LOCALEDIR);
    let _ = bind_textdomain_codeset(GETTEXT_PACKAGE, "UTF-8");
    let _ = textdomain(GETTEXT_PACKAGE);
}
