//! The details of one VM: what the list knows at once (state, vCPUs,
//! memory, template), then what `GetVm` adds (firmware, TPM, each disk and
//! each network interface) as soon as it answers. Rows for keys the service
//! does not report stay hidden.

use adw::prelude::*;
use adw::subclass::prelude::*;
use gettextrs::gettext;
use gtk::glib;

use crate::client::{DiskDetails, InterfaceDetails, VmDetails, VmInfo};
use crate::vm_row::{memory_text, state_label, vcpus_text};

mod imp {
    use std::cell::RefCell;

    use adw::subclass::prelude::*;
    use gtk::glib;

    #[derive(Default, gtk::CompositeTemplate)]
    #[template(resource = "/org/vmclone/VmClone/details_view.ui")]
    pub struct DetailsView {
        #[template_child]
        pub state_icon: TemplateChild<gtk::Image>,
        #[template_child]
        pub name_label: TemplateChild<gtk::Label>,
        #[template_child]
        pub template_badge: TemplateChild<gtk::Label>,
        #[template_child]
        pub state_value: TemplateChild<gtk::Label>,
        #[template_child]
        pub vcpus_value: TemplateChild<gtk::Label>,
        #[template_child]
        pub memory_value: TemplateChild<gtk::Label>,
        #[template_child]
        pub template_value: TemplateChild<gtk::Label>,
        #[template_child]
        pub firmware_row: TemplateChild<adw::ActionRow>,
        #[template_child]
        pub firmware_value: TemplateChild<gtk::Label>,
        #[template_child]
        pub tpm_row: TemplateChild<adw::ActionRow>,
        #[template_child]
        pub tpm_value: TemplateChild<gtk::Label>,
        #[template_child]
        pub agent_row: TemplateChild<adw::ActionRow>,
        #[template_child]
        pub agent_value: TemplateChild<gtk::Label>,
        #[template_child]
        pub disks_row: TemplateChild<adw::ActionRow>,
        #[template_child]
        pub disks_value: TemplateChild<gtk::Label>,
        #[template_child]
        pub interfaces_row: TemplateChild<adw::ActionRow>,
        #[template_child]
        pub interfaces_value: TemplateChild<gtk::Label>,
        #[template_child]
        pub uuid_row: TemplateChild<adw::ActionRow>,
        #[template_child]
        pub copy_uuid_button: TemplateChild<gtk::Button>,
        #[template_child]
        pub disks_group: TemplateChild<adw::PreferencesGroup>,
        #[template_child]
        pub interfaces_group: TemplateChild<adw::PreferencesGroup>,
        /// The rows made for `disk-details` and `interface-details`.
        pub device_rows: RefCell<Vec<(adw::PreferencesGroup, adw::ActionRow)>>,
    }

    #[glib::object_subclass]
    impl ObjectSubclass for DetailsView {
        const NAME: &'static str = "VmCloneDetailsView";
        type Type = super::DetailsView;
        type ParentType = gtk::Box;

        fn class_init(klass: &mut Self::Class) {
            klass.bind_template();
        }

        fn instance_init(obj: &glib::subclass::InitializingObject<Self>) {
            obj.init_template();
        }
    }

    impl ObjectImpl for DetailsView {}
    impl WidgetImpl for DetailsView {}
    impl BoxImpl for DetailsView {}
}

glib::wrapper! {
    pub struct DetailsView(ObjectSubclass<imp::DetailsView>)
        @extends gtk::Widget, gtk::Box,
        @implements gtk::Buildable, gtk::ConstraintTarget, gtk::Orientable;
}

impl Default for DetailsView {
    fn default() -> Self {
        glib::Object::new()
    }
}

fn yes_no(value: bool) -> String {
    match value {
        true => gettext("Yes"),
        false => gettext("No"),
    }
}

impl DetailsView {
    /// Shows what the list knows of `info`; the rows only `GetVm` fills are
    /// hidden until `show_details`.
    pub fn show_info(&self, info: &VmInfo) {
        let imp = self.imp();
        let previous = self.vm_id();
        let (state, icon) = state_label(&info.state);
        imp.state_icon.set_icon_name(Some(icon));
        imp.name_label.set_label(&info.name);
        imp.template_badge.set_visible(info.is_template);
        imp.state_value.set_label(&state);
        imp.vcpus_value.set_label(&vcpus_text(info.vcpus));
        imp.memory_value.set_label(&memory_text(info.memory_mib));
        imp.template_value.set_label(&yes_no(info.is_template));
        imp.disks_value.set_label(&info.disks.to_string());
        imp.interfaces_value.set_label(&info.interfaces.to_string());
        imp.uuid_row.set_subtitle(&info.id);
        imp.copy_uuid_button
            .set_action_target_value(Some(&info.id.to_variant()));
        imp.copy_uuid_button.set_action_name(Some("win.copy-uuid"));
        if previous != info.id {
            // Another VM: nothing of the last one's GetVm stays.
            imp.firmware_row.set_visible(false);
            imp.tpm_row.set_visible(false);
            imp.agent_row.set_visible(false);
            self.clear_devices();
        }
    }

    /// Shows everything `GetVm` reported.
    pub fn show_details(&self, details: &VmDetails) {
        let imp = self.imp();
        self.show_info(&details.info);
        imp.firmware_row.set_visible(details.firmware.is_some());
        if let Some(firmware) = &details.firmware {
            imp.firmware_value.set_label(&match firmware.as_str() {
                "bios" => gettext("BIOS"),
                "uefi" => gettext("UEFI"),
                other => other.to_owned(),
            });
        }
        imp.tpm_row.set_visible(details.tpm.is_some());
        if let Some(tpm) = details.tpm {
            imp.tpm_value.set_label(&yes_no(tpm));
        }
        // Only a running guest's agent can answer (and freeze for a live clone).
        let running = matches!(details.info.state.as_str(), "running" | "paused");
        let agent = details.guest_agent.filter(|_| running);
        imp.agent_row.set_visible(agent.is_some());
        if let Some(agent) = agent {
            imp.agent_value.set_label(&match agent {
                true => gettext("Connected"),
                false => gettext("Not connected"),
            });
        }
        self.clear_devices();
        // A list of the devices replaces the bare count.
        imp.disks_row.set_visible(details.disks.is_none());
        imp.interfaces_row.set_visible(details.interfaces.is_none());
        for disk in details.disks.iter().flatten() {
            self.add_device(&imp.disks_group, disk_row(disk));
        }
        for nic in details.interfaces.iter().flatten() {
            self.add_device(&imp.interfaces_group, interface_row(nic));
        }
        imp.disks_group
            .set_visible(details.disks.as_ref().is_some_and(|d| !d.is_empty()));
        imp.interfaces_group
            .set_visible(details.interfaces.as_ref().is_some_and(|i| !i.is_empty()));
    }

    fn add_device(&self, group: &adw::PreferencesGroup, row: adw::ActionRow) {
        group.add(&row);
        self.imp()
            .device_rows
            .borrow_mut()
            .push((group.clone(), row));
    }

    fn clear_devices(&self) {
        let imp = self.imp();
        for (group, row) in imp.device_rows.take() {
            group.remove(&row);
        }
        imp.disks_group.set_visible(false);
        imp.interfaces_group.set_visible(false);
        imp.disks_row.set_visible(true);
        imp.interfaces_row.set_visible(true);
    }

    /// The VM's name, the heading.
    pub fn name(&self) -> String {
        self.imp().name_label.label().to_string()
    }

    /// The UUID shown.
    pub fn vm_id(&self) -> String {
        self.imp()
            .uuid_row
            .subtitle()
            .unwrap_or_default()
            .to_string()
    }

    /// Every row shown, in order, as (title, subtitle, value).
    pub fn rows(&self) -> Vec<(String, String, String)> {
        let mut rows = Vec::new();
        let mut groups = self.first_child();
        while let Some(group) = groups {
            groups = group.next_sibling();
            if group.is_visible() {
                collect_rows(&group, &mut rows);
            }
        }
        rows
    }
}

/// "vda", "sda · CD-ROM"; the image and "qcow2 · 10.0 GiB, 2.1 GiB allocated".
fn disk_row(disk: &DiskDetails) -> adw::ActionRow {
    let size = |n| glib::format_size_full(n, glib::FormatSizeFlags::IEC_UNITS).to_string();
    let device = match disk.device.as_str() {
        "disk" => None,
        "cdrom" => Some(gettext("CD-ROM")),
        "floppy" => Some(gettext("Floppy")),
        other => Some(other.to_owned()),
    };
    let title = match device {
        // Translators: a disk's device name and kind, e.g. "sda · CD-ROM"
        Some(kind) => gettext("{target} · {kind}")
            .replace("{target}", &disk.target)
            .replace("{kind}", &kind),
        None => disk.target.clone(),
    };
    let source = match disk.source.is_empty() {
        true => gettext("Empty drive"),
        false => disk.source.clone(),
    };
    let mut subtitle = source;
    if !disk.source.is_empty() {
        // Translators: a disk's format and sizes, e.g. "qcow2 · 10.0 GiB, 2.1 GiB allocated"
        let sizes = gettext("{format} · {capacity}, {allocation} allocated")
            .replace("{format}", &disk.format)
            .replace("{capacity}", &size(disk.capacity))
            .replace("{allocation}", &size(disk.allocation));
        subtitle = format!("{subtitle}\n{sizes}");
    }
    let row = adw::ActionRow::builder()
        .title(glib::markup_escape_text(&title))
        .subtitle(glib::markup_escape_text(&subtitle))
        .build();
    if disk.shared {
        let badge = gtk::Label::new(Some(&gettext("Shared")));
        badge.set_valign(gtk::Align::Center);
        badge.set_tooltip_text(Some(&gettext(
            "Read-only or shareable: a clone uses this disk as it is",
        )));
        badge.add_css_class("template-badge");
        row.add_suffix(&badge);
    }
    row
}

/// "52:54:00:12:34:56"; "Network “default” · virtio".
fn interface_row(nic: &InterfaceDetails) -> adw::ActionRow {
    let source = match nic.kind.as_str() {
        "network" => gettext("Network “{source}”").replace("{source}", &nic.source),
        "bridge" => gettext("Bridge “{source}”").replace("{source}", &nic.source),
        "user" => gettext("User-mode networking"),
        kind if nic.source.is_empty() => kind.to_owned(),
        // Translators: an interface type libvirt knows and this app does not, and what it connects to
        kind => gettext("{type} “{source}”")
            .replace("{type}", kind)
            .replace("{source}", &nic.source),
    };
    let subtitle = match nic.model.is_empty() {
        true => source,
        // Translators: what a network interface connects to, and its model, e.g. "Network “default” · virtio"
        false => gettext("{source} · {model}")
            .replace("{source}", &source)
            .replace("{model}", &nic.model),
    };
    adw::ActionRow::builder()
        .title(glib::markup_escape_text(&nic.mac))
        .subtitle(glib::markup_escape_text(&subtitle))
        .build()
}

fn collect_rows(widget: &gtk::Widget, rows: &mut Vec<(String, String, String)>) {
    let mut child = widget.first_child();
    while let Some(w) = child {
        child = w.next_sibling();
        if !w.is_visible() {
            continue;
        }
        match w.downcast_ref::<adw::ActionRow>() {
            Some(row) => {
                let value = suffix_labels(row.upcast_ref()).join(" ");
                let subtitle = row.subtitle().map(|s| plain(&s)).unwrap_or_default();
                rows.push((plain(&row.title()), subtitle, value));
            }
            None => collect_rows(&w, rows),
        }
    }
}

/// The text a row shows for its title or subtitle (Pango markup in libadwaita 1.2).
fn plain(markup: &str) -> String {
    gtk::pango::parse_markup(markup, '\0')
        .map(|(_, text, _)| text.to_string())
        .unwrap_or_else(|_| markup.to_owned())
}

/// The texts of the labels in a row's suffix box (libadwaita names it "suffixes").
fn suffix_labels(row: &gtk::Widget) -> Vec<String> {
    let mut texts = Vec::new();
    let mut stack = vec![row.clone()];
    while let Some(w) = stack.pop() {
        if w.has_css_class("suffixes") {
            let mut child = w.first_child();
            while let Some(c) = child {
                child = c.next_sibling();
                if let Some(label) = c.downcast_ref::<gtk::Label>() {
                    texts.push(label.label().to_string());
                }
            }
            continue;
        }
        let mut child = w.last_child();
        while let Some(c) = child {
            child = c.prev_sibling();
            stack.push(c);
        }
    }
    texts
}
