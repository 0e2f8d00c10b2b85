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

impl VmRow {
    pub fn bind(&self, vm: &VmObject) {
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
        imp.details_label
            .set_label(&format!("{state} · {vcpus} · {memory} · {disks}"));
        let blocked = clone_blocked_reason(&info.state);
        imp.clone_button.set_sensitive(blocked.is_none());
        imp.clone_button.set_tooltip_text(Some(
            &blocked.unwrap_or_else(|| gettext("Make an independent copy of this VM")),
        ));
    }

    pub fn clone_button(&self) -> gtk::Button {
        self.imp().clone_button.get()
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
