//! VM Clone, the GNOME app of vmclone: lists libvirt VMs through the vmclone
//! service, shows their details and clones them, with live updates,
//! progress, cancel and notifications.

mod a11y;
pub mod application;
pub mod client;
pub mod clone_dialog;
pub mod config;
pub mod details_view;
pub mod i18n;
pub mod job_row;
pub mod settings;
pub mod transfer_rate;
pub mod vm_menu;
pub mod vm_object;
pub mod vm_row;
pub mod window;

use gtk::gio;

/// Registers the compiled-in UI files, style and icons. Idempotent.
pub fn register_resources() {
    use std::sync::Once;
    static ONCE: Once = Once::new();
    ONCE.call_once(|| gio::resources_register_include!("vmclone.gresource").expect("resources"));
}
