//! What a VM's menu does: open the clone dialog, convert the VM to a
//! template after a confirmation, copy its UUID; and the shortcuts window.

use adw::prelude::*;
use adw::subclass::prelude::*;
use gettextrs::gettext;
use gtk::glib;

use super::jobs::markup;
use super::Window;
use crate::clone_dialog::CloneDialog;
use crate::vm_menu;

const CONVERT: &str = "convert";

impl Window {
    pub(super) fn open_clone_dialog(&self, id: &str) {
        let Some((_, vm)) = self.imp().vms.find(id) else {
            return;
        };
        let info = vm.info();
        if vm_menu::clone_blocked_reason(&info.state).is_some() {
            return;
        }
        let dialog = CloneDialog::new(self, self.client(), &info);
        let this = self.downgrade();
        dialog.connect_clone(move |request| {
            if let Some(win) = this.upgrade() {
                win.start_clones(request);
            }
        });
        dialog.present();
        dialog.name_row().grab_focus();
    }

    /// Asks before `ConvertToTemplate`: the VM's disks become read-only.
    pub(super) fn confirm_convert_to_template(&self, id: &str) {
        let Some((_, vm)) = self.imp().vms.find(id) else {
            return;
        };
        let info = vm.info();
        if !vm_menu::can_convert(&info) {
            return;
        }
        let dialog = adw::MessageDialog::new(
            Some(self),
            Some(&gettext("Convert “{name}” to a Template?").replace("{name}", &info.name)),
            Some(&gettext(
                "Its disk images become read-only, so the VM itself can no longer be started. Clones of a template can be linked: they store only their own changes and read the rest from the template’s disks.",
            )),
        );
        dialog.add_response("cancel", &gettext("_Cancel"));
        dialog.add_response(CONVERT, &gettext("C_onvert"));
        dialog.set_response_appearance(CONVERT, adw::ResponseAppearance::Suggested);
        dialog.set_default_response(Some("cancel"));
        dialog.set_close_response("cancel");
        let this = self.downgrade();
        dialog.connect_response(Some(CONVERT), move |_, _| {
            if let Some(win) = this.upgrade() {
                win.convert_to_template(&info.id, &info.name);
            }
        });
        dialog.present();
    }

    fn convert_to_template(&self, id: &str, name: &str) {
        let client = self.client();
        let this = self.downgrade();
        let (id, name) = (id.to_owned(), name.to_owned());
        glib::spawn_future_local(async move {
            let result = client.convert_to_template(&id).await;
            let Some(win) = this.upgrade() else { return };
            // The row and details follow the service's VmStateChanged.
            match result {
                Ok(()) => win.add_toast(adw::Toast::new(&markup(
                    &gettext("“{name}” is now a template").replace("{name}", &name),
                ))),
                Err(err) => win.show_error_toast(
                    gettext("Could not convert “{name}” to a template").replace("{name}", &name),
                    &err,
                ),
            }
        });
    }

    pub(super) fn copy_uuid(&self, id: &str) {
        self.clipboard().set_text(id);
        let name = self
            .imp()
            .vms
            .find(id)
            .map(|(_, vm)| vm.name())
            .unwrap_or_default();
        self.add_toast(adw::Toast::new(&markup(
            &gettext("UUID of “{name}” copied").replace("{name}", &name),
        )));
    }

    pub(super) fn show_shortcuts(&self) {
        let builder = gtk::Builder::from_resource("/org/vmclone/VmClone/shortcuts.ui");
        let window: gtk::ShortcutsWindow = builder.object("shortcuts").expect("shortcuts.ui");
        window.set_transient_for(Some(self));
        window.present();
    }
}
