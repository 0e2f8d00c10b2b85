//! gettext setup. GtkBuilder templates translate through the same domain
//! (`<interface domain="vmclone">`).

use gettextrs::{bind_textdomain_codeset, bindtextdomain, setlocale, textdomain, LocaleCategory};

use crate::config::{GETTEXT_PACKAGE, LOCALEDIR};

/// Loads the catalog for the user's language. Call first thing in `main`,
/// before GTK or the D-Bus thread start.
pub fn init() {
    // SAFETY: setlocale is not thread-safe; this runs before any other thread exists.
    unsafe {
        setlocale(LocaleCategory::LcAll, "");
    }
    // A missing catalog only means English; these calls fail just on allocation errors.
    bindtextdomain(GETTEXT_PACKAGE, LOCALEDIR).expect("bindtextdomain");
    bind_textdomain_codeset(GETTEXT_PACKAGE, "UTF-8").expect("bind_textdomain_codeset");
    textdomain(GETTEXT_PACKAGE).expect("textdomain");
}
