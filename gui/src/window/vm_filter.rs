//! Which VMs the list shows: those whose name or UUID contains the search
//! text (ignoring case), and only templates when that filter is on.

use std::cell::RefCell;
use std::rc::Rc;

use gtk::prelude::*;

use crate::client::VmInfo;
use crate::vm_object::VmObject;

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Query {
    /// Lower case; empty matches every VM.
    text: String,
    templates_only: bool,
}

impl Query {
    pub fn matches(&self, vm: &VmInfo) -> bool {
        if self.templates_only && !vm.is_template {
            return false;
        }
        self.text.is_empty()
            || vm.name.to_lowercase().contains(&self.text)
            || vm.id.to_lowercase().contains(&self.text)
    }
}

/// The list's filter and the query it applies.
pub struct VmFilter {
    filter: gtk::CustomFilter,
    query: Rc<RefCell<Query>>,
}

impl Default for VmFilter {
    fn default() -> VmFilter {
        let query = Rc::new(RefCell::new(Query::default()));
        let filter = gtk::CustomFilter::new({
            let query = query.clone();
            move |item| {
                item.downcast_ref::<VmObject>()
                    .is_some_and(|vm| vm.with_info(|info| query.borrow().matches(info)))
            }
        });
        VmFilter { filter, query }
    }
}

impl VmFilter {
    pub fn filter(&self) -> &gtk::CustomFilter {
        &self.filter
    }

    pub fn set_text(&self, text: &str) {
        self.update(|q| q.text = text.trim().to_lowercase());
    }

    pub fn set_templates_only(&self, templates_only: bool) {
        self.update(|q| q.templates_only = templates_only);
    }

    pub fn query(&self) -> Query {
        self.query.borrow().clone()
    }

    pub fn is_searching(&self) -> bool {
        !self.query.borrow().text.is_empty()
    }

    pub fn templates_only(&self) -> bool {
        self.query.borrow().templates_only
    }

    /// A VM changed in place: whether it matches may have changed too.
    pub fn refilter(&self) {
        if *self.query.borrow() != Query::default() {
            self.filter.changed(gtk::FilterChange::Different);
        }
    }

    fn update(&self, change: impl FnOnce(&mut Query)) {
        let before = self.query();
        change(&mut self.query.borrow_mut());
        if self.query() != before {
            self.filter.changed(gtk::FilterChange::Different);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vm(name: &str, id: &str, is_template: bool) -> VmInfo {
        VmInfo {
            id: id.into(),
            name: name.into(),
            is_template,
            ..VmInfo::default()
        }
    }

    #[test]
    fn the_search_matches_names_and_uuids_ignoring_case() {
        let web = vm("Web01", "6F0E2D1C-5b4a-4c3d-9e8f-7a6b5c4d3e21", false);
        let query = |text: &str| Query {
            text: text.to_lowercase(),
            templates_only: false,
        };
        assert!(query("").matches(&web));
        assert!(query("web").matches(&web), "a part of the name");
        assert!(query("6f0e2d1c").matches(&web), "the start of the UUID");
        assert!(query("9E8F-7A6B").matches(&web), "any part of the UUID");
        assert!(!query("db").matches(&web));
    }

    #[test]
    fn the_templates_filter_leaves_only_templates() {
        let query = Query {
            text: String::new(),
            templates_only: true,
        };
        assert!(query.matches(&vm("debian12", "1", true)));
        assert!(!query.matches(&vm("web01", "2", false)));
    }
}
