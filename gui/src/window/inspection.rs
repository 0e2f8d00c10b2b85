//! What the window shows, read back: for the GUI tests in `gui/tests/` and
//! the benchmarks. Nothing here changes the window.

use adw::prelude::*;
use adw::subclass::prelude::*;

use super::{Page, Window};
use crate::client::VmInfo;
use crate::clone_dialog::CloneDialog;
use crate::details_view::DetailsView;
use crate::job_row::JobRow;
use crate::vm_object::VmObject;
use crate::vm_row::VmRow;

impl Window {
    /// The page the list pane shows.
    pub fn page(&self) -> Page {
        let name = self.imp().stack.visible_child_name().unwrap_or_default();
        Page::ALL
            .into_iter()
            .find(|p| p.name() == name)
            .unwrap_or(Page::Loading)
    }

    /// The clone dialog on screen, if any.
    pub fn clone_dialog(&self) -> Option<CloneDialog> {
        let toplevels = gtk::Window::toplevels();
        (0..toplevels.n_items())
            .filter_map(|i| toplevels.item(i).and_downcast::<CloneDialog>())
            .find(|d| d.is_visible() && d.transient_for().as_ref() == Some(self.upcast_ref()))
    }

    /// The VM currently selected, if any.
    pub fn selected_vm(&self) -> Option<VmInfo> {
        let selection = self.imp().selection.get()?;
        selection
            .selected_item()
            .and_downcast::<VmObject>()
            .map(|vm| vm.info())
    }

    /// The VMs in list order (after search and filter).
    pub fn shown_vms(&self) -> Vec<VmInfo> {
        let filtered = self.imp().filtered.get().expect("set up");
        (0..filtered.n_items())
            .filter_map(|i| filtered.item(i).and_downcast::<VmObject>())
            .map(|vm| vm.info())
            .collect()
    }

    /// The rows the list view has built (only those near the visible area).
    pub fn visible_rows(&self) -> Vec<VmRow> {
        let mut rows = Vec::new();
        collect(self.imp().list_view.upcast_ref(), &mut rows);
        rows
    }

    /// The progress rows of the clones running, in the jobs popover.
    pub fn job_rows(&self) -> Vec<JobRow> {
        let mut rows = Vec::new();
        collect(self.imp().jobs_box.upcast_ref(), &mut rows);
        rows
    }

    /// The details of the selected VM, once a VM was selected.
    pub fn details_view(&self) -> Option<DetailsView> {
        self.imp().details_view.get().cloned()
    }

    /// The VM whose `GetVm` the details show.
    pub fn details_loaded_id(&self) -> Option<String> {
        self.imp().details_loaded.borrow().clone()
    }

    /// The heading of the details pane (the selected VM's name), if shown.
    pub fn details_title(&self) -> String {
        let imp = self.imp();
        match imp.details_stack.visible_child_name().as_deref() {
            Some("vm") => imp
                .details_view
                .get()
                .map(|view| view.name())
                .unwrap_or_default(),
            _ => String::new(),
        }
    }

    /// Whether the window is narrow enough to show one pane at a time.
    pub fn is_folded(&self) -> bool {
        self.imp().leaflet.is_folded()
    }

    /// Whether the details pane is the one shown (always, when not folded).
    pub fn details_pane_shown(&self) -> bool {
        let imp = self.imp();
        !imp.leaflet.is_folded()
            || imp.leaflet.visible_child().as_ref() == Some(imp.details_pane.upcast_ref())
    }

    pub fn search_entry(&self) -> gtk::SearchEntry {
        self.imp().search_entry.get()
    }

    pub fn search_button(&self) -> gtk::ToggleButton {
        self.imp().search_button.get()
    }

    pub fn templates_button(&self) -> gtk::ToggleButton {
        self.imp().templates_button.get()
    }

    pub fn jobs_button(&self) -> gtk::MenuButton {
        self.imp().jobs_button.get()
    }

    pub fn jobs_popover(&self) -> gtk::Popover {
        self.imp().jobs_popover.get()
    }

    pub fn vm_menu_button(&self) -> gtk::MenuButton {
        self.imp().vm_menu_button.get()
    }

    pub fn details_clone_button(&self) -> gtk::Button {
        self.imp().details_clone_button.get()
    }

    pub fn back_button(&self) -> gtk::Button {
        self.imp().back_button.get()
    }

    pub fn status_page(&self, page: Page) -> Option<adw::StatusPage> {
        self.imp()
            .stack
            .child_by_name(page.name())
            .and_downcast::<adw::StatusPage>()
    }
}

/// Every `T` inside `widget`, in order.
fn collect<T: IsA<gtk::Widget>>(widget: &gtk::Widget, found: &mut Vec<T>) {
    let mut child = widget.first_child();
    while let Some(w) = child {
        child = w.next_sibling();
        match w.clone().downcast::<T>() {
            Ok(t) => found.push(t),
            Err(w) => collect(&w, found),
        }
    }
}
