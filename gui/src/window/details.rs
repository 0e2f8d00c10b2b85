//! The details pane: the selected VM at once from the list, then from its
//! `GetVm`; its header's Clone… and menu; going to it and back when the
//! leaflet is folded (a narrow window shows one pane at a time).

use adw::prelude::*;
use adw::subclass::prelude::*;
use gettextrs::gettext;
use gtk::glib;

use super::{Page, Window};
use crate::details_view::DetailsView;
use crate::vm_menu;

impl Window {
    pub(super) fn setup_details(&self) {
        let imp = self.imp();
        // The header's menu is made when it opens, for the VM as it is then.
        let this = self.downgrade();
        imp.vm_menu_button.set_create_popup_func(move |button| {
            if let Some(vm) = this.upgrade().and_then(|win| win.selected_vm()) {
                button.set_menu_model(Some(&vm_menu::menu(&vm)));
            }
        });
        self.action_set_enabled("win.clone-selected", false);
    }

    /// Makes the details view once the list is drawn and nothing else is
    /// to do, so the first selection does not wait for it: its template,
    /// styles and text layout take longer than showing a VM in it.
    pub(super) fn prepare_details(&self) {
        if self.imp().details_view.get().is_some() {
            return;
        }
        // After the next frame, which shows the list: made before, while the
        // frame clock waits for its time, it would delay that frame.
        self.add_tick_callback(|win, _| {
            let this = win.downgrade();
            glib::idle_add_local_full(glib::Priority::LOW, move || {
                if let Some(win) = this.upgrade() {
                    let view = win.details();
                    let width = win.imp().details_pane.width().max(360);
                    let _ = view.measure(gtk::Orientation::Vertical, width);
                }
                glib::ControlFlow::Break
            });
            glib::ControlFlow::Break
        });
    }

    fn details(&self) -> &DetailsView {
        let imp = self.imp();
        imp.details_view.get_or_init(|| {
            let view = DetailsView::default();
            let clamp = adw::Clamp::builder().maximum_size(640).child(&view).build();
            imp.details_scroller.set_child(Some(&clamp));
            view
        })
    }

    /// Shows the selected VM in the details pane, or that none is.
    pub(super) fn show_selected(&self) {
        let imp = self.imp();
        let vm = match self.page() {
            Page::List => self.selected_vm(),
            _ => None,
        };
        imp.details_generation.set(imp.details_generation.get() + 1);
        let Some(vm) = vm else {
            imp.details_loaded.take();
            imp.details_stack.set_visible_child_name("none");
            // Nothing to act on: the header offers nothing.
            imp.vm_menu_button.set_visible(false);
            imp.details_clone_button.set_visible(false);
            self.action_set_enabled("win.clone-selected", false);
            if imp.leaflet.is_folded()
                && imp.leaflet.visible_child().as_ref() == Some(imp.details_pane.upcast_ref())
            {
                self.navigate_to_list();
            }
            return;
        };
        let view = self.details();
        if view.vm_id() != vm.id {
            imp.details_loaded.take();
        }
        view.show_info(&vm);
        imp.details_stack.set_visible_child_name("vm");
        imp.vm_menu_button.set_visible(true);
        imp.details_clone_button.set_visible(true);
        let blocked = vm_menu::clone_blocked_reason(&vm.state);
        self.action_set_enabled("win.clone-selected", blocked.is_none());
        imp.details_clone_button.set_tooltip_text(Some(
            &blocked.unwrap_or_else(|| gettext("Make an independent copy of this VM (Ctrl+N)")),
        ));
        self.load_details(vm.id);
    }

    /// Asks `GetVm` for what the list does not say; shows it if the VM is
    /// still the one selected when the answer comes.
    fn load_details(&self, id: String) {
        let generation = self.imp().details_generation.get();
        let answer = self.client().get_vm(&id);
        let this = self.downgrade();
        glib::spawn_future_local(async move {
            // An error (the VM went meanwhile) leaves what the list said;
            // the list's own change follows.
            let Ok(details) = answer.await else {
                return;
            };
            let Some(win) = this.upgrade() else { return };
            let imp = win.imp();
            if imp.details_generation.get() != generation {
                return;
            }
            win.details().show_details(&details);
            imp.details_loaded.replace(Some(id));
        });
    }

    /// On a folded leaflet, shows the details of the selected VM.
    pub(super) fn navigate_to_details(&self) {
        let imp = self.imp();
        if imp.leaflet.is_folded() && self.selected_vm().is_some() {
            imp.leaflet.set_visible_child(&*imp.details_pane);
        }
    }

    /// Back to the list, with the focus on the selected VM's row.
    pub(super) fn navigate_to_list(&self) {
        let imp = self.imp();
        imp.leaflet.set_visible_child(&*imp.list_pane);
        let id = self.selected_vm().map(|vm| vm.id);
        let row = self
            .visible_rows()
            .into_iter()
            .find(|row| Some(row.vm_id()) == id);
        match row.and_then(|row| row.parent()) {
            Some(item) => item.grab_focus(),
            None => imp.list_view.grab_focus(),
        };
    }

    /// Enter on a row: the details, and the keyboard focus on what they
    /// offer (Clone… when it can, the menu otherwise).
    pub(super) fn enter_details(&self) {
        let imp = self.imp();
        if self.selected_vm().is_none() {
            return;
        }
        self.navigate_to_details();
        if imp.details_clone_button.is_sensitive() {
            imp.details_clone_button.grab_focus();
        } else {
            imp.vm_menu_button.grab_focus();
        }
    }
}
