//! One line of the VM list: state, name, size, template badge and the VM's
//! menu (⋮).

use gettextrs::{gettext, ngettext};
use gtk::glib;
use gtk::prelude::*;
use gtk::subclass::prelude::*;

use crate::client::VmInfo;
use crate::vm_menu;
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
        pub menu_button: TemplateChild<gtk::MenuButton>,
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
            // The menu is made when it opens, for the VM as it is then: rows
            // are many and most menus are never opened.
            let row = self.obj().downgrade();
            self.menu_button.set_create_popup_func(move |button| {
                if let Some(vm) = row.upgrade().and_then(|row| row.vm()) {
                    button.set_menu_model(Some(&crate::vm_menu::menu(&vm.info())));
                }
            });
            // A click on the row (not on its menu, which claims the click)
            // opens the VM's details on a narrow window.
            let click = gtk::GestureClick::new();
            let row = self.obj().downgrade();
            click.connect_released(move |_, _, _, _| {
                if let Some(row) = row.upgrade() {
                    let _ = row.activate_action("win.show-details", None);
                }
            });
            self.obj().add_controller(click);
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

/// "2 vCPUs"
pub fn vcpus_text(vcpus: u32) -> String {
    ngettext("{n} vCPU", "{n} vCPUs", vcpus).replace("{n}", &vcpus.to_string())
}

/// "2.0 GiB"
pub fn memory_text(memory_mib: u64) -> String {
    glib::format_size_full(
        memory_mib.saturating_mul(1024 * 1024),
        glib::FormatSizeFlags::IEC_UNITS,
    )
    .to_string()
}

/// "Shut off · 2 vCPUs · 2.0 GiB · 1 disk"
pub fn summary(info: &VmInfo) -> String {
    let (state, _) = state_label(&info.state);
    let disks =
        ngettext("{n} disk", "{n} disks", info.disks).replace("{n}", &info.disks.to_string());
    // Translators: a VM's summary under its name, e.g. "Shut off · 2 vCPUs · 2.0 GiB · 1 disk"
    gettext("{state} · {vcpus} · {memory} · {disks}")
        .replace("{state}", &state)
        .replace("{vcpus}", &vcpus_text(info.vcpus))
        .replace("{memory}", &memory_text(info.memory_mib))
        .replace("{disks}", &disks)
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

    fn vm(&self) -> Option<VmObject> {
        self.imp().bound.borrow().as_ref().map(|(vm, _)| vm.clone())
    }

    fn show(&self, vm: &VmObject) {
        let imp = self.imp();
        let info = vm.info();
        let (state, icon) = state_label(&info.state);
        imp.state_icon.set_icon_name(Some(icon));
        imp.state_icon.set_tooltip_text(Some(&state));
        imp.name_label.set_label(&info.name);
        imp.template_badge.set_visible(info.is_template);
        imp.details_label.set_label(&summary(&info));
        crate::a11y::set_label(
            &*imp.menu_button,
            // Translators: what a screen reader says for the ⋮ button of the VM {name}
            &gettext("Actions for “{name}”").replace("{name}", &info.name),
        );
    }

    /// The id of the VM this row shows.
    pub fn vm_id(&self) -> String {
        self.vm().map(|vm| vm.id()).unwrap_or_default()
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

    pub fn menu_button(&self) -> gtk::MenuButton {
        self.imp().menu_button.get()
    }

    /// Whether the row's menu offers Clone for its VM now.
    pub fn offers_clone(&self) -> bool {
        self.vm()
            .is_some_and(|vm| vm_menu::clone_blocked_reason(&vm.info().state).is_none())
    }
}
