//! The app's remembered choices (GSettings `org.vmclone.VmClone`).

use gtk::gio;

use crate::config::{APP_ID, BUILD_SCHEMA_DIR};

/// The key the clone dialog's identity switch remembers.
pub const RESET_IDENTITY: &str = "reset-identity";

/// The app's settings: from the installed schema, else from the one build.rs
/// compiled; `None` when neither is there (nothing is remembered then).
pub fn settings() -> Option<gio::Settings> {
    thread_local! {
        static SETTINGS: Option<gio::Settings> = load();
    }
    SETTINGS.with(Clone::clone)
}

fn load() -> Option<gio::Settings> {
    let installed = gio::SettingsSchemaSource::default();
    let schema = match installed.as_ref().and_then(|s| s.lookup(APP_ID, true)) {
        Some(schema) => schema,
        None => {
            gio::SettingsSchemaSource::from_directory(BUILD_SCHEMA_DIR, installed.as_ref(), false)
                .ok()?
                .lookup(APP_ID, false)?
        }
    };
    Some(gio::Settings::new_full(
        &schema,
        None::<&gio::SettingsBackend>,
        None,
    ))
}
