//! The window's VM list: a `gio::ListStore` of [`VmObject`]s sorted by name,
//! kept equal to the service's list by whole reloads and single changes.

use std::cell::{Cell, RefCell};
use std::cmp::Ordering;
use std::rc::{Rc, Weak};

use gtk::prelude::*;
use gtk::{gio, glib};

use crate::client::{ClientError, VmInfo};
use crate::vm_object::VmObject;

/// Rows enough to fill a maximized window on a 1440-pixel-high screen
/// (rows are 56 pixels high); see `replace`.
const FIRST_SCREENFUL: usize = 24;

/// The list and what it waits for; in an `Rc` so that the idle which
/// appends a long list's tail holds it weakly.
pub struct VmList(Rc<State>);

struct State {
    store: gio::ListStore,
    /// A list arrived and no error came since: the store is current.
    loaded: Cell<bool>,
    /// The sorted tail of a first long list, not yet in the store; see `replace`.
    pending: RefCell<Option<Vec<VmObject>>>,
    /// Bumped by every listing, so only the newest list is shown.
    generation: Cell<u64>,
    /// A ListVms is in flight: changes wait in `queued` until it is shown.
    listing: Cell<bool>,
    queued: RefCell<Vec<Change>>,
    /// The service (re)appeared while a list was in flight.
    appeared_while_listing: Cell<bool>,
}

enum Change {
    Upsert(VmInfo),
    Remove(String),
}

/// One `ListVms` in flight, from [`VmList::start_listing`].
#[must_use = "the list answers through `finish_listing`"]
pub struct Listing(u64);

/// What the window does with the answer to a listing.
pub enum Listed {
    /// The store now holds the list: show it.
    Shown,
    /// A newer listing or the loss of the service made this answer moot.
    Outdated,
    /// It failed, but was asked before the service came back: ask again.
    Retry,
    /// Show the error instead of a list.
    Failed(ClientError),
}

impl Default for VmList {
    fn default() -> VmList {
        VmList(Rc::new(State {
            store: gio::ListStore::new::<VmObject>(),
            loaded: Cell::default(),
            pending: RefCell::default(),
            generation: Cell::default(),
            listing: Cell::default(),
            queued: RefCell::default(),
            appeared_while_listing: Cell::default(),
        }))
    }
}

impl VmList {
    /// The VMs shown so far, sorted by name (see `replace` for the rest).
    pub fn store(&self) -> &gio::ListStore {
        &self.0.store
    }

    /// True while the store mirrors the service (a list arrived, no error since).
    pub fn is_loaded(&self) -> bool {
        self.0.loaded.get()
    }

    /// A whole new list is asked for. Only the newest listing's answer
    /// counts; changes the service reports meanwhile are applied on top of
    /// it, in order, so a snapshot taken before them cannot undo them.
    pub fn start_listing(&self) -> Listing {
        let generation = self.0.generation.get() + 1;
        self.0.generation.set(generation);
        self.0.listing.set(true);
        Listing(generation)
    }

    pub fn finish_listing(
        &self,
        listing: Listing,
        result: Result<Vec<VmInfo>, ClientError>,
    ) -> Listed {
        let state = &self.0;
        if state.generation.get() != listing.0 {
            return Listed::Outdated;
        }
        state.listing.set(false);
        let queued = state.queued.take();
        let appeared = state.appeared_while_listing.replace(false);
        match result {
            Ok(vms) => {
                self.replace(vms);
                for change in queued {
                    self.apply(change);
                }
                Listed::Shown
            }
            Err(_) if appeared => Listed::Retry,
            Err(err) => {
                state.loaded.set(false);
                Listed::Failed(err)
            }
        }
    }

    /// The service left the bus: a list in flight answers for a service that
    /// is gone, and the store is no longer current. Its return reloads.
    pub fn service_lost(&self) {
        let state = &self.0;
        state.generation.set(state.generation.get() + 1);
        state.listing.set(false);
        state.queued.take();
        state.appeared_while_listing.set(false);
        state.loaded.set(false);
    }

    /// The service (re)appeared. True when a listing is in flight: it answers
    /// (or, failing, is asked again); false when a reload is due.
    pub fn service_appeared_while_listing(&self) -> bool {
        let listing = self.0.listing.get();
        if listing {
            self.0.appeared_while_listing.set(true);
        }
        listing
    }

    /// The service described `info` anew. Without a current list (error
    /// page) the next reload brings it.
    pub fn changed(&self, info: VmInfo) {
        self.apply(Change::Upsert(info));
    }

    /// The VM `id` is gone.
    pub fn removed(&self, id: String) {
        self.apply(Change::Remove(id));
    }

    fn apply(&self, change: Change) {
        if self.0.listing.get() {
            self.0.queued.borrow_mut().push(change);
            return;
        }
        match change {
            Change::Upsert(info) if self.is_loaded() => self.upsert(info),
            Change::Upsert(_) => {}
            Change::Remove(id) => {
                if let Some((position, _)) = self.find(&id) {
                    self.store().remove(position);
                }
            }
        }
    }

    /// Replaces the list with `vms`. A reload that finds the same VMs leaves
    /// the store alone, so rows, selection and scroll position stay put;
    /// single changes arrive as signals and go through `upsert`.
    fn replace(&self, mut vms: Vec<VmInfo>) {
        let state = &self.0;
        let store = self.store();
        // A tail still waiting for its idle is part of the old list; the new one replaces it.
        let had_pending = state.pending.take().is_some();
        vms.sort_by_cached_key(|vm| sort_key(&vm.name));
        let unchanged = !had_pending
            && store.n_items() as usize == vms.len()
            && vms
                .iter()
                .enumerate()
                .all(|(i, vm)| self.vm_at(i as u32).is_some_and(|o| o.info() == *vm));
        if !unchanged {
            let mut objects: Vec<VmObject> = vms.into_iter().map(VmObject::new).collect();
            // A first, long list shows a screenful at once and the rest right
            // after: GTK 4.8's ListView builds up to 200 rows for its first frame.
            // Until then the tail waits in `pending`, and everything that
            // reads or changes the store appends it first (`flush_pending`).
            if store.n_items() == 0 && objects.len() > FIRST_SCREENFUL {
                state
                    .pending
                    .replace(Some(objects.split_off(FIRST_SCREENFUL)));
                let this: Weak<State> = Rc::downgrade(&self.0);
                glib::idle_add_local_once(move || {
                    if let Some(state) = this.upgrade() {
                        VmList(state).flush_pending();
                    }
                });
            }
            store.splice(0, store.n_items(), &objects);
        }
        state.loaded.set(true);
    }

    /// Appends the tail of a first long list that `replace` left for later.
    pub fn flush_pending(&self) {
        let pending = self.0.pending.take();
        if let Some(rest) = pending {
            let store = self.store();
            store.splice(store.n_items(), 0, &rest);
        }
    }

    /// Adds or updates one VM, keeping the list sorted. A VM whose place in
    /// the order stays is updated in place (the same item), so its row keeps
    /// focus and selection.
    fn upsert(&self, info: VmInfo) {
        let store = self.store();
        if let Some((position, vm)) = self.find(&info.id) {
            if vm.info() == info {
                return;
            }
            let key = sort_key(&info.name);
            let key_at = |p: u32| self.vm_at(p).map(|vm| sort_key(&vm.name()));
            let after_previous = position
                .checked_sub(1)
                .and_then(key_at)
                .map_or(true, |previous| previous <= key);
            let before_next = key_at(position + 1).map_or(true, |next| next >= key);
            if after_previous && before_next {
                vm.set_info(info);
                return;
            }
            store.remove(position);
        }
        store.insert_sorted(&VmObject::new(info), by_name);
    }

    /// The VM `id` and its position in the store.
    pub fn find(&self, id: &str) -> Option<(u32, VmObject)> {
        self.flush_pending();
        let position = self.store().find_with_equal_func(|item| {
            item.downcast_ref::<VmObject>()
                .is_some_and(|vm| vm.id() == id)
        })?;
        Some((position, self.vm_at(position)?))
    }

    fn vm_at(&self, position: u32) -> Option<VmObject> {
        self.store().item(position).and_downcast::<VmObject>()
    }
}

/// Sort by name the way people read, then exactly, so the order is total.
fn sort_key(name: &str) -> (String, String) {
    (name.to_lowercase(), name.to_owned())
}

/// The store's order, for `insert_sorted`.
fn by_name(a: &glib::Object, b: &glib::Object) -> Ordering {
    let key = |o: &glib::Object| o.downcast_ref::<VmObject>().map(|vm| sort_key(&vm.name()));
    key(a).cmp(&key(b))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vm(id: &str, name: &str) -> VmInfo {
        VmInfo {
            id: id.into(),
            name: name.into(),
            state: "shutoff".into(),
            ..VmInfo::default()
        }
    }

    fn names(list: &VmList) -> Vec<String> {
        (0..list.store().n_items())
            .filter_map(|i| list.vm_at(i))
            .map(|vm| vm.name())
            .collect()
    }

    fn listed(vms: Vec<VmInfo>) -> VmList {
        let list = VmList::default();
        let listing = list.start_listing();
        assert!(matches!(
            list.finish_listing(listing, Ok(vms)),
            Listed::Shown
        ));
        list
    }

    #[test]
    fn changes_keep_the_list_sorted_and_update_items_in_place_where_they_can() {
        let list = listed(vec![vm("3", "web02"), vm("1", "Alpha"), vm("2", "beta")]);
        assert_eq!(names(&list), ["Alpha", "beta", "web02"]);

        let (_, beta) = list.find("2").expect("listed");
        let mut running = vm("2", "beta");
        running.state = "running".into();
        list.changed(running.clone());
        let (position, item) = list.find("2").expect("still listed");
        assert_eq!((position, &item), (1, &beta), "the same item, in place");
        assert_eq!(item.info(), running);

        list.changed(vm("2", "zeta"));
        assert_eq!(names(&list), ["Alpha", "web02", "zeta"], "a rename moves");
        list.changed(vm("4", "alpha"));
        assert_eq!(
            names(&list),
            ["Alpha", "alpha", "web02", "zeta"],
            "by name as people read it, then exactly"
        );
        list.removed("3".into());
        assert_eq!(names(&list), ["Alpha", "alpha", "zeta"]);
    }

    #[test]
    fn changes_during_a_listing_are_applied_on_top_of_its_answer() {
        let list = listed(vec![vm("1", "a"), vm("2", "b")]);
        let listing = list.start_listing();
        list.changed(vm("3", "made-meanwhile"));
        list.removed("2".into());
        assert_eq!(names(&list), ["a", "b"], "they wait for the list");
        // The service read its list before the changes.
        let answer = vec![vm("1", "a"), vm("2", "b")];
        assert!(matches!(
            list.finish_listing(listing, Ok(answer)),
            Listed::Shown
        ));
        assert_eq!(names(&list), ["a", "made-meanwhile"]);
    }

    #[test]
    fn only_the_newest_listing_counts() {
        let list = listed(vec![vm("1", "a")]);
        let old = list.start_listing();
        let new = list.start_listing();
        assert!(matches!(
            list.finish_listing(old, Ok(vec![])),
            Listed::Outdated
        ));
        assert_eq!(names(&list), ["a"]);
        assert!(matches!(
            list.finish_listing(new, Ok(vec![vm("2", "b")])),
            Listed::Shown
        ));
        assert_eq!(names(&list), ["b"]);
    }

    #[test]
    fn a_service_that_left_outdates_its_listing_and_one_that_came_back_retries() {
        let list = listed(vec![vm("1", "a")]);
        let listing = list.start_listing();
        list.service_lost();
        assert!(!list.is_loaded(), "the list is no longer current");
        assert!(matches!(
            list.finish_listing(listing, Ok(vec![])),
            Listed::Outdated
        ));

        let listing = list.start_listing();
        assert!(list.service_appeared_while_listing());
        let gone = ClientError::Unreachable("asked before it was back".into());
        assert!(matches!(
            list.finish_listing(listing, Err(gone.clone())),
            Listed::Retry
        ));
        assert!(!list.service_appeared_while_listing(), "nothing in flight");
        let listing = list.start_listing();
        assert!(matches!(
            list.finish_listing(listing, Err(gone)),
            Listed::Failed(ClientError::Unreachable(_))
        ));
    }
}
