//! What the window shows, read back: for the GUI tests in `gui/tests/` and
//! the first-frame benchmark. Nothing here changes the window.

use adw::prelude::*;
use adw::subclass::prelude::*;

use super::{Page, Window};
use crate::client::VmInfo;
use crate::clone_dialog::CloneDialog;
use crate::job_bar::JobBar;
use crate::vm_object::VmObject;
use crate::vm_row::VmRow;

impl Window {
    /// The page on screen.
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

    /// The VMs in list order (after search filtering).
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
        collect_rows(self.imp().list_view.upcast_ref(), &mut rows);
        rows
    }

    pub fn job_bars(&self) -> Vec<JobBar> {
        let mut bars = Vec::new();
        let mut child = self.imp().jobs_box.first_child();
        while let Some(widget) = child {
            child = widget.next_sibling();
            if let Ok(bar) = widget.downcast::<JobBar>() {
                bars.push(bar);
            }
        }
        bars
    }

    pub fn search_entry(&self) -> gtk::SearchEntry {
        self.imp().search_entry.get()
    }

    pub fn search_button(&self) -> gtk::ToggleButton {
        self.imp().search_button.get()
    }

    pub fn status_page(&self, page: Page) -> Option<adw::StatusPage> {
        self.imp()
            .stack
            .child_by_name(page.name())
            .and_downcast::<adw::StatusPage>()
    }
}

fn collect_rows(widget: &gtk::Widget, rows: &mut Vec<VmRow>) {
    let mut child = widget.first_child();
    while let Some(w) = child {
        child = w.next_sibling();
        match w.clone().downcast::<VmRow>() {
            Ok(row) => rows.push(row),
            Err(w) => collect_rows(&w, rows),
        }
    }
}
