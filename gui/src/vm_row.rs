//! One line of the VM list: state, name, size, template badge and Clone.

use gettextrs::{gettext, ngettext};
use gtk::glib;
use gtk::prelude::*;
use gtk::subclass::prelude::*;

use crate::vm_object::VmObject;

mod imp {
    use std::cell::RefCell;

    use gtk::glib;
    use gtk::prelude::*;
    use gtk::subclass::prelude::*;

    #[derive(Default, gtk::CompositeTemplate)]
    #[template(resource = "/org/vmclone/VmClone/vm_row.ui")]
    pub struct VmRow {
        #[template_child]
        pub state_icon: TemplateChild<gtk::Image>,
        #[template_child]
        pub name_label: TemplateChild<gtk::Label>,
        #[template_child]
        pub template_badge: TemplateChild<gtk::Label>,
        #[template_child]
        pub details_label: TemplateChild<gtk::Label>,
        #[template_child]
        pub clone_button: TemplateChild<gtk::Button>,
        pub vm_id: RefCell<String>,
        /// The VM shown, and the handler that redraws the row when it changes.
        pub bound: RefCell<Option<(crate::vm_object::VmObject, glib::SignalHandlerId)>>,
    }

    #[glib::object_subclass]
    impl ObjectSubclass for VmRow {
        const NAME: &'static str = "VmCloneVmRow";
        type Type = super::VmRow;
        type ParentType = gtk::Box;

        fn class_init(klass: &mut Self::Class) {
            klass.bind_template();
        }

        fn instance_init(obj: &glib::subclass::InitializingObject<Self>) {
            obj.init_template();
        }
    }

    impl ObjectImpl for VmRow {
        fn constructed(&self) {
            self.parent_constructed();
            let row = self.obj().downgrade();
            self.clone_button.connect_clicked(move |_| {
                if let Some(row) = row.upgrade() {
                    let id = row.imp().vm_id.borrow().clone();
                    // The window owns the dialog; the row only names the VM.
                    let _ = row.activate_action("win.clone", Some(&id.to_variant()));
                }
            });
        }
    }
    impl WidgetImpl for VmRow {}
    impl BoxImpl for VmRow {}
}

glib::wrapper! {
    pub struct VmRow(ObjectSubclass<imp::VmRow>)
        @extends gtk::Widget, gtk::Box,
        @implements gtk::Buildable, gtk::ConstraintTarget, gtk::Orientable;
}

impl Default for VmRow {
    fn default() -> Self {
        glib::Object::new()
    }
}

/// The word and icon for a libvirt state as ListVms reports it.
pub fn state_label(state: &str) -> (String, &'static str) {
    match state {
        "running" => (gettext("Running"), "media-playback-start-symbolic"),
        "paused" => (gettext("Paused"), "media-playback-pause-symbolic"),
        "shutoff" => (gettext("Shut off"), "system-shutdown-symbolic"),
        "crashed" => (gettext("Crashed"), "dialog-error-symbolic"),
        "suspended" => (gettext("Suspended"), "weather-clear-night-symbolic"),
        _ => (gettext("Unknown state"), "dialog-question-symbolic"),
    }
}

/// Why Clone is not offered for a VM in `state`, or `None` when it is.
pub fn clone_blocked_reason(state: &str) -> Option<String> {
    match state {
        "shutoff" => None,
        "running" | "paused" | "suspended" => Some(gettext(
            "Shut the VM down to clone it: a running VM’s disks are still changing",
        )),
        _ => Some(gettext("Only a shut-off VM can be cloned")),
    }
}

/// Sets what assistive technologies call `widget`. gtk4-rs binds
/// `GtkAccessible` only from GTK 4.10 on; this C call is in GTK 4.0.
fn set_accessible_label(widget: &impl IsA<gtk::Widget>, label: &str) {
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

impl VmRow {
    /// Shows `vm`, and follows its changes until `unbind`.
    pub fn bind(&self, vm: &VmObject) {
        self.unbind();
        self.show(vm);
        let row = self.downgrade();
        let handler = vm.connect_changed(move |vm| {
            if let Some(row) = row.upgrade() {
                row.show(vm);
            }
        });
        self.imp().bound.replace(Some((vm.clone(), handler)));
    }

    pub fn unbind(&self) {
        if let Some((vm, handler)) = self.imp().bound.take() {
            vm.disconnect(handler);
        }
    }

    fn show(&self, vm: &VmObject) {
        let imp = self.imp();
        let info = vm.info();
        imp.vm_id.replace(info.id.clone());
        let (state, icon) = state_label(&info.state);
        imp.state_icon.set_icon_name(Some(icon));
        imp.state_icon.set_tooltip_text(Some(&state));
        imp.name_label.set_label(&info.name);
        imp.template_badge.set_visible(info.is_template);
        let vcpus =
            ngettext("{n} vCPU", "{n} vCPUs", info.vcpus).replace("{n}", &info.vcpus.to_string());
        let memory = glib::format_size_full(
            info.memory_mib.saturating_mul(1024 * 1024),
            glib::FormatSizeFlags::IEC_UNITS,
        );
        let disks =
            ngettext("{n} disk", "{n} disks", info.disks).replace("{n}", &info.disks.to_string());
        // Translators: a VM's summary under its name, e.g. "Shut off · 2 vCPUs · 2.0 GiB · 1 disk"
        let details = gettext("{state} · {vcpus} · {memory} · {disks}");
        imp.details_label.set_label(
            &details
                .replace("{state}", &state)
                .replace("{vcpus}", &vcpus)
                .replace("{memory}", &memory)
                .replace("{disks}", &disks),
        );
        let accessible = {
            // Translators: what a screen reader says for the Clone button of the VM {name}
            gettext("Clone “{name}”").replace("{name}", &info.name)
        };
        set_accessible_label(&*imp.clone_button, &accessible);
        let blocked = clone_blocked_reason(&info.state);
        imp.clone_button.set_sensitive(blocked.is_none());
        imp.clone_button.set_tooltip_text(Some(
            &blocked.unwrap_or_else(|| gettext("Make an independent copy of this VM")),
        ));
    }

    pub fn clone_button(&self) -> gtk::Button {
        self.imp().clone_button.get()
    }

    /// The id of the VM this row shows.
    pub fn vm_id(&self) -> String {
        self.imp().vm_id.borrow().clone()
    }

    pub fn name_text(&self) -> glib::GString {
        self.imp().name_label.label()
    }

    pub fn details_text(&self) -> glib::GString {
        self.imp().details_label.label()
    }

    pub fn is_template_shown(&self) -> bool {
        self.imp().template_badge.is_visible()
    }
}
