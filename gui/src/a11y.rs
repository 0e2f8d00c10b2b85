//! Accessible names for widgets whose label is only an icon, or only makes
//! sense next to its row ("Cancel" of which clone?).

use gtk::glib;
use gtk::prelude::*;

/// Sets what assistive technologies call `widget`. gtk4-rs binds
/// `GtkAccessible` only from GTK 4.10 on; this C call is in GTK 4.0.
pub fn set_label(widget: &impl IsA<gtk::Widget>, label: &str) {
    use glib::translate::ToGlibPtr;
    extern "C" {
        fn gtk_accessible_update_property_value(
            accessible: *mut gtk::ffi::GtkWidget,
            n_properties: std::ffi::c_int,
            properties: *const gtk::ffi::GtkAccessibleProperty,
            values: *const glib::gobject_ffi::GValue,
        );
    }
    let properties = [gtk::ffi::GTK_ACCESSIBLE_PROPERTY_LABEL];
    let values = [label.to_value()];
    // SAFETY: every widget is a GtkAccessible; one property with one value
    // of the type GTK expects for a label (a string), which GTK copies.
    unsafe {
        gtk_accessible_update_property_value(
            widget.as_ref().to_glib_none().0,
            1,
            properties.as_ptr(),
            values.as_ptr() as *const glib::gobject_ffi::GValue,
        );
    }
}
