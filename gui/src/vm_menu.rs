//! The menu of one VM (its row's ⋮ button, the details header): Clone…,
//! Convert to Template…, Copy UUID. The items name window actions with the
//! VM's UUID as target; an item that does not apply to the VM now points
//! to `win.unavailable`, which is always disabled, so it shows insensitive.

use gettextrs::gettext;
use gtk::gio;
use gtk::prelude::*;

use crate::client::VmInfo;

/// Never enabled: menu items that do not apply point here.
pub const UNAVAILABLE: &str = "win.unavailable";

/// Why Clone is not offered for a VM in `state`, or `None` when it is.
pub fn clone_blocked_reason(state: &str) -> Option<String> {
    match state {
        // A running or paused VM is cloned live, as it is at one moment.
        "shutoff" | "running" | "paused" => None,
        _ => Some(gettext(
            "Only a shut-off, running or paused VM can be cloned: start or shut down this one first",
        )),
    }
}

/// Whether `vm` can become a template now (shut off, not one already).
pub fn can_convert(vm: &VmInfo) -> bool {
    vm.state == "shutoff" && !vm.is_template
}

pub fn menu(vm: &VmInfo) -> gio::Menu {
    let item = |label: &str, action: &str, enabled: bool| {
        let item = gio::MenuItem::new(Some(label), None);
        match enabled {
            true => item.set_action_and_target_value(Some(action), Some(&vm.id.to_variant())),
            false => item.set_action_and_target_value(Some(UNAVAILABLE), None),
        }
        item
    };
    let actions = gio::Menu::new();
    actions.append_item(&item(
        &gettext("_Clone…"),
        "win.clone",
        clone_blocked_reason(&vm.state).is_none(),
    ));
    if !vm.is_template {
        actions.append_item(&item(
            &gettext("Convert to _Template…"),
            "win.convert-to-template",
            can_convert(vm),
        ));
    }
    let copy = gio::Menu::new();
    copy.append_item(&item(&gettext("Copy _UUID"), "win.copy-uuid", true));
    let menu = gio::Menu::new();
    menu.append_section(None, &actions);
    menu.append_section(None, &copy);
    menu
}
