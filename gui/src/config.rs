//! Build-time configuration.
//!
//! `VMCLONE_LOCALEDIR` is set by `make install` builds to the system locale
//! folder; a plain `cargo build` uses the catalogs build.rs compiled from po/,
//! so translations work straight from the build tree too.

pub const APP_ID: &str = "org.vmclone.VmClone";
pub const GETTEXT_PACKAGE: &str = "vmclone";
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
pub const RESOURCE_BASE: &str = "/org/vmclone/VmClone";

pub const LOCALEDIR: &str = match option_env!("VMCLONE_LOCALEDIR") {
    Some(dir) => dir,
    None => concat!(env!("OUT_DIR"), "/locale"),
};

/// Where build.rs compiled the GSettings schema, used when the system has none
/// (the app run from the build tree).
pub const BUILD_SCHEMA_DIR: &str = concat!(env!("OUT_DIR"), "/schemas");
