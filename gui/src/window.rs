//! The main window: the live VM list, search, status pages, jobs and toasts.

use std::rc::Rc;

use adw::prelude::*;
use adw::subclass::prelude::*;
use gettextrs::gettext;
use gtk::{gio, glib};

use crate::client::{
    Client, ClientError, JobEvent, JobHandle, JobOutcome, ServiceEvent, Storage, VmInfo,
};
use crate::clone_dialog::CloneDialog;
use crate::job_bar::JobBar;
use crate::vm_object::VmObject;
use crate::vm_row::VmRow;

/// Rows enough to fill a tall window; see `set_vms`.
const FIRST_SCREENFUL: usize = 40;

mod imp {
    use std::cell::{Cell, OnceCell, RefCell};

    use adw::subclass::prelude::*;
    use gtk::{gio, glib};

    use crate::client::{Client, ServiceEvent};
    use crate::vm_object::VmObject;

    #[derive(Default, gtk::CompositeTemplate)]
    #[template(resource = "/org/vmclone/VmClone/window.ui")]
    pub struct Window {
        #[template_child]
        pub toast_overlay: TemplateChild<adw::ToastOverlay>,
        #[template_child]
        pub search_button: TemplateChild<gtk::ToggleButton>,
        #[template_child]
        pub search_bar: TemplateChild<gtk::SearchBar>,
        #[template_child]
        pub search_entry: TemplateChild<gtk::SearchEntry>,
        #[template_child]
        pub jobs_box: TemplateChild<gtk::Box>,
        #[template_child]
        pub stack: TemplateChild<gtk::Stack>,
        #[template_child]
        pub list_view: TemplateChild<gtk::ListView>,
        #[template_child]
        pub unreachable_page: TemplateChild<adw::StatusPage>,
        #[template_child]
        pub unauthorized_page: TemplateChild<adw::StatusPage>,
        pub client: OnceCell<Client>,
        pub store: OnceCell<gio::ListStore>,
        pub filter: OnceCell<gtk::StringFilter>,
        pub filtered: OnceCell<gtk::FilterListModel>,
        pub selection: OnceCell<gtk::SingleSelection>,
        /// The list arrived and no error page is up.
        pub loaded: Cell<bool>,
        /// The sorted tail of a first long list, not yet in the store; see `set_vms`.
        pub pending: RefCell<Option<Vec<VmObject>>>,
        /// Bumped by every reload, so only the newest list is shown.
        pub list_generation: Cell<u64>,
        /// A ListVms is in flight: changes wait in `queued` until it is shown.
        pub listing: Cell<bool>,
        pub queued: RefCell<Vec<ServiceEvent>>,
        /// The service (re)appeared while a list was in flight.
        pub appeared_while_listing: Cell<bool>,
    }

    #[glib::object_subclass]
    impl ObjectSubclass for Window {
        const NAME: &'static str = "VmCloneWindow";
        type Type = super::Window;
        type ParentType = adw::ApplicationWindow;

        fn class_init(klass: &mut Self::Class) {
            klass.bind_template();
            klass.install_action("win.reload", None, |win, _, _| win.reload());
            klass.install_action("win.clone", Some(glib::VariantTy::STRING), |win, _, id| {
                if let Some(id) = id.and_then(|v| v.str()) {
                    win.open_clone_dialog(id);
                }
            });
            klass.install_action(
                "win.select-vm",
                Some(glib::VariantTy::STRING),
                |win, _, id| {
                    if let Some(id) = id.and_then(|v| v.str()) {
                        win.select_vm(id);
                    }
                },
            );
            klass.install_action(
                "win.show-error",
                Some(glib::VariantTy::new("(ss)").expect("a valid type")),
                |win, _, details| {
                    if let Some((heading, message)) =
                        details.and_then(|v| v.get::<(String, String)>())
                    {
                        win.show_error(&heading, &message);
                    }
                },
            );
            klass.install_action("win.search", None, |win, _, _| {
                use gtk::prelude::ToggleButtonExt;
                let button = &win.imp().search_button;
                button.set_active(!button.is_active());
            });
            klass.add_binding_action(
                gtk::gdk::Key::f,
                gtk::gdk::ModifierType::CONTROL_MASK,
                "win.search",
            );
            klass.add_binding_action(
                gtk::gdk::Key::r,
                gtk::gdk::ModifierType::CONTROL_MASK,
                "win.reload",
            );
        }

        fn instance_init(obj: &glib::subclass::InitializingObject<Self>) {
            obj.init_template();
        }
    }

    impl ObjectImpl for Window {}
    impl WidgetImpl for Window {}
    impl WindowImpl for Window {}
    impl ApplicationWindowImpl for Window {}
    impl AdwApplicationWindowImpl for Window {}
}

glib::wrapper! {
    pub struct Window(ObjectSubclass<imp::Window>)
        @extends gtk::Widget, gtk::Window, gtk::ApplicationWindow, adw::ApplicationWindow,
        @implements gio::ActionGroup, gio::ActionMap, gtk::Buildable,
            gtk::ConstraintTarget, gtk::Native, gtk::Root, gtk::ShortcutManager;
}

/// Which page the window shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Page {
    Loading,
    List,
    Empty,
    NoResults,
    Unreachable,
    Unauthorized,
}

impl Page {
    fn name(self) -> &'static str {
        match self {
            Page::Loading => "loading",
            Page::List => "list",
            Page::Empty => "empty",
            Page::NoResults => "no-results",
            Page::Unreachable => "unreachable",
            Page::Unauthorized => "unauthorized",
        }
    }
}

impl Window {
    /// A window listing the VMs of the service `client` talks to; `events`
    /// are the service's signals, which keep the list current.
    pub fn new(
        app: &impl IsA<gtk::Application>,
        client: Client,
        events: async_channel::Receiver<ServiceEvent>,
    ) -> Window {
        let win: Window = glib::Object::builder().property("application", app).build();
        win.imp().client.set(client).ok();
        win.setup_list();
        win.setup_search();
        let this = win.downgrade();
        glib::spawn_future_local(async move {
            while let Ok(event) = events.recv().await {
                let Some(win) = this.upgrade() else { return };
                win.on_service_event(event);
            }
        });
        win.reload();
        win
    }

    fn client(&self) -> Client {
        self.imp()
            .client
            .get()
            .expect("client is set in new")
            .clone()
    }

    fn store(&self) -> &gio::ListStore {
        self.imp().store.get().expect("set up in new")
    }

    fn setup_list(&self) {
        let imp = self.imp();
        let store = gio::ListStore::new::<VmObject>();
        let filter = gtk::StringFilter::builder()
            .expression(gtk::PropertyExpression::new(
                VmObject::static_type(),
                gtk::Expression::NONE,
                "name",
            ))
            .ignore_case(true)
            .match_mode(gtk::StringFilterMatchMode::Substring)
            .build();
        let filtered = gtk::FilterListModel::new(Some(store.clone()), Some(filter.clone()));
        let selection = gtk::SingleSelection::builder()
            .model(&filtered)
            .autoselect(false)
            .can_unselect(true)
            .build();

        let factory = gtk::SignalListItemFactory::new();
        factory.connect_setup(|_, item| {
            let item = item.downcast_ref::<gtk::ListItem>().expect("a ListItem");
            item.set_child(Some(&VmRow::default()));
        });
        factory.connect_bind(|_, item| {
            let item = item.downcast_ref::<gtk::ListItem>().expect("a ListItem");
            let vm = item.item().and_downcast::<VmObject>().expect("a VmObject");
            let row = item.child().and_downcast::<VmRow>().expect("a VmRow");
            row.bind(&vm);
        });
        factory.connect_unbind(|_, item| {
            let item = item.downcast_ref::<gtk::ListItem>().expect("a ListItem");
            if let Some(row) = item.child().and_downcast::<VmRow>() {
                row.unbind();
            }
        });
        imp.list_view.set_factory(Some(&factory));
        imp.list_view.set_model(Some(&selection));
        // Enter (or a double click) on a row clones it, as its Clone button does.
        let this = self.downgrade();
        imp.list_view.connect_activate(move |_, position| {
            let Some(win) = this.upgrade() else { return };
            let vm = win.imp().filtered.get().and_then(|f| f.item(position));
            if let Some(vm) = vm.and_downcast::<VmObject>() {
                if crate::vm_row::clone_blocked_reason(&vm.info().state).is_none() {
                    win.open_clone_dialog(&vm.id());
                }
            }
        });

        let this = self.downgrade();
        filtered.connect_items_changed(move |_, _, _, _| {
            if let Some(win) = this.upgrade() {
                win.update_page();
            }
        });
        imp.store.set(store).ok();
        imp.filter.set(filter).ok();
        imp.filtered.set(filtered).ok();
        imp.selection.set(selection).ok();
    }

    fn setup_search(&self) {
        let imp = self.imp();
        imp.search_bar.connect_entry(&*imp.search_entry);
        let filter = imp.filter.get().expect("set up").clone();
        imp.search_entry.connect_search_changed(move |entry| {
            filter.set_search(Some(&entry.text()));
        });
        let entry = imp.search_entry.get();
        imp.search_bar
            .connect_search_mode_enabled_notify(move |bar| {
                if !bar.is_search_mode() {
                    entry.set_text("");
                }
            });
    }

    /// Fetches the whole list again (at start, on Retry, when the service
    /// reappears). Only the newest reload's answer counts; changes the service
    /// reports meanwhile are applied on top of it, in order.
    pub fn reload(&self) {
        let imp = self.imp();
        if !imp.loaded.get() {
            self.show_page(Page::Loading);
        }
        let generation = imp.list_generation.get() + 1;
        imp.list_generation.set(generation);
        imp.listing.set(true);
        let client = self.client();
        let this = self.downgrade();
        glib::spawn_future_local(async move {
            let result = client.list_vms().await;
            let Some(win) = this.upgrade() else { return };
            let imp = win.imp();
            if imp.list_generation.get() != generation {
                return;
            }
            imp.listing.set(false);
            let queued = imp.queued.take();
            let appeared = imp.appeared_while_listing.replace(false);
            match result {
                Ok(vms) => {
                    win.set_vms(vms);
                    for event in queued {
                        win.on_service_event(event);
                    }
                }
                // The list was asked for before the service was back: ask again.
                Err(_) if appeared => win.reload(),
                Err(err) => win.show_error_page(&err),
            }
        });
    }

    fn show_error_page(&self, err: &ClientError) {
        let imp = self.imp();
        imp.loaded.set(false);
        match err {
            ClientError::NotAuthorized(_) => {
                imp.unauthorized_page.set_description(Some(&gettext(
                    "Your account may not manage virtual machines on this computer. Ask an administrator for access, then try again.",
                )));
                self.show_page(Page::Unauthorized);
            }
            ClientError::Unreachable(_) => {
                imp.unreachable_page.set_description(Some(&gettext(
                    "The vmclone service is not running or not installed. Start it with “systemctl start vmclone”, then retry.",
                )));
                self.show_page(Page::Unreachable);
            }
            ClientError::Service { .. } | ClientError::BadReply(_) => {
                let (summary, message) = (err.summary(), err.user_message());
                let description = match summary == message {
                    true => summary,
                    false => format!("{summary}\n\n{message}"),
                };
                imp.unreachable_page.set_description(Some(&description));
                self.show_page(Page::Unreachable);
            }
        }
    }

    fn show_page(&self, page: Page) {
        let imp = self.imp();
        // Searching only makes sense while there is a list to search.
        let searchable = matches!(page, Page::List | Page::NoResults);
        imp.search_button.set_sensitive(searchable);
        if !searchable {
            imp.search_button.set_active(false);
        }
        // Typing starts a search only where there is a list to search.
        imp.search_bar
            .set_key_capture_widget(searchable.then_some(self.upcast_ref::<gtk::Widget>()));
        imp.stack.set_visible_child_name(page.name());
    }

    /// The page on screen.
    pub fn page(&self) -> Page {
        let name = self.imp().stack.visible_child_name().unwrap_or_default();
        [
            Page::Loading,
            Page::List,
            Page::Empty,
            Page::NoResults,
            Page::Unreachable,
            Page::Unauthorized,
        ]
        .into_iter()
        .find(|p| p.name() == name)
        .unwrap_or(Page::Loading)
    }

    fn update_page(&self) {
        let imp = self.imp();
        if !imp.loaded.get() {
            return;
        }
        let filtered = imp.filtered.get().expect("set up");
        let page = if self.store().n_items() == 0 {
            Page::Empty
        } else if filtered.n_items() == 0 {
            Page::NoResults
        } else {
            Page::List
        };
        self.show_page(page);
    }

    /// Replaces the list with `vms`. A reload that finds the same VMs leaves
    /// the model alone, so rows, selection and scroll position stay put;
    /// single changes arrive as signals and go through `upsert`.
    fn set_vms(&self, mut vms: Vec<VmInfo>) {
        let imp = self.imp();
        let store = self.store();
        // A tail still waiting for its idle is part of the old list; the new one replaces it.
        let had_pending = imp.pending.take().is_some();
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
                imp.pending
                    .replace(Some(objects.split_off(FIRST_SCREENFUL)));
                let this = self.downgrade();
                glib::idle_add_local_once(move || {
                    if let Some(win) = this.upgrade() {
                        win.flush_pending();
                    }
                });
            }
            store.splice(0, store.n_items(), &objects);
        }
        imp.loaded.set(true);
        self.update_page();
    }

    /// Appends the tail of a first long list that `set_vms` left for later.
    fn flush_pending(&self) {
        let pending = self.imp().pending.take();
        if let Some(rest) = pending {
            let store = self.store();
            store.splice(store.n_items(), 0, &rest);
        }
    }

    fn vm_at(&self, position: u32) -> Option<VmObject> {
        self.store().item(position).and_downcast::<VmObject>()
    }

    fn position_of(&self, id: &str) -> Option<u32> {
        self.flush_pending();
        (0..self.store().n_items()).find(|&i| self.vm_at(i).is_some_and(|vm| vm.id() == id))
    }

    /// A change the service pushed. While a list is in flight, changes wait
    /// and are applied after it, so a snapshot taken before them cannot undo
    /// them; without a list (error page) the next reload brings them.
    pub fn on_service_event(&self, event: ServiceEvent) {
        let imp = self.imp();
        match event {
            ServiceEvent::VmChanged(_) | ServiceEvent::VmRemoved(_) if imp.listing.get() => {
                imp.queued.borrow_mut().push(event);
            }
            ServiceEvent::VmChanged(info) => {
                if imp.loaded.get() {
                    self.upsert(info);
                }
            }
            ServiceEvent::VmRemoved(id) => {
                if let Some(pos) = self.position_of(&id) {
                    self.store().remove(pos);
                }
            }
            ServiceEvent::ServiceLost => {
                // A list in flight answers for a service that is gone; the
                // service's return reloads.
                imp.list_generation.set(imp.list_generation.get() + 1);
                imp.listing.set(false);
                imp.queued.take();
                imp.appeared_while_listing.set(false);
                self.show_error_page(&ClientError::Unreachable("the service left the bus".into()))
            }
            ServiceEvent::ServiceAppeared if imp.listing.get() => {
                imp.appeared_while_listing.set(true);
            }
            ServiceEvent::ServiceAppeared => self.reload(),
        }
    }

    /// Adds or updates one VM, keeping the list sorted. A VM whose place in
    /// the order stays is updated in place (the same item), so its row keeps
    /// focus and selection.
    fn upsert(&self, info: VmInfo) {
        let store = self.store();
        let key = sort_key(&info.name);
        let object = VmObject::new(info);
        if let Some(pos) = self.position_of(&object.id()) {
            let old = self.vm_at(pos).map(|vm| vm.info());
            if old.as_ref() == Some(&object.info()) {
                return;
            }
            let fits = |p: Option<u32>, after: bool| match p.and_then(|p| self.vm_at(p)) {
                None => true,
                Some(vm) if after => sort_key(&vm.info().name) >= key,
                Some(vm) => sort_key(&vm.info().name) <= key,
            };
            if fits(pos.checked_sub(1), false) && fits(Some(pos + 1), true) {
                if let Some(vm) = self.vm_at(pos) {
                    vm.set_info(object.info());
                }
                return;
            }
            store.remove(pos);
        }
        // Binary search for the first row sorting after the new one.
        let (mut lo, mut hi) = (0, store.n_items());
        while lo < hi {
            let mid = (lo + hi) / 2;
            let after = self
                .vm_at(mid)
                .is_some_and(|vm| sort_key(&vm.info().name) > key);
            if after {
                hi = mid;
            } else {
                lo = mid + 1;
            }
        }
        store.insert(lo, &object);
    }

    fn open_clone_dialog(&self, id: &str) {
        let Some(vm) = self.position_of(id).and_then(|p| self.vm_at(p)) else {
            return;
        };
        let info = vm.info();
        let dialog = CloneDialog::new(self, self.client(), &info);
        let this = self.downgrade();
        dialog.connect_response(Some("clone"), move |dialog, _| {
            if let Some(win) = this.upgrade() {
                win.start_clone(&info, dialog.new_name(), dialog.storage());
            }
        });
        dialog.present();
        dialog.name_row().grab_focus();
    }

    /// The clone dialog on screen, if any.
    pub fn clone_dialog(&self) -> Option<CloneDialog> {
        let toplevels = gtk::Window::toplevels();
        (0..toplevels.n_items())
            .filter_map(|i| toplevels.item(i).and_downcast::<CloneDialog>())
            .find(|d| d.is_visible() && d.transient_for().as_ref() == Some(self.upcast_ref()))
    }

    fn start_clone(&self, source: &VmInfo, new_name: String, storage: Storage) {
        let client = self.client();
        let this = self.downgrade();
        let source = source.clone();
        glib::spawn_future_local(async move {
            let started = client.start_clone(&source.id, &new_name, storage).await;
            let Some(win) = this.upgrade() else { return };
            let job = match started {
                Ok(job) => job,
                Err(err) => {
                    win.clone_failed(&source.name, &err);
                    return;
                }
            };
            let job = Rc::new(job);
            let events = job.events.clone();
            let bar = JobBar::new(&source.name, &new_name, {
                let (this, source) = (this.clone(), source.name.clone());
                move |bar| {
                    if let Some(win) = this.upgrade() {
                        win.cancel_job(&job, bar, &source);
                    }
                }
            });
            win.imp().jobs_box.append(&bar);
            drop(win);
            while let Ok(event) = events.recv().await {
                let Some(win) = this.upgrade() else { return };
                match event {
                    JobEvent::Progress { done, total } => bar.set_progress(done, total),
                    JobEvent::Finished(outcome) => {
                        win.imp().jobs_box.remove(&bar);
                        win.job_finished(&source.name, &new_name, outcome);
                        return;
                    }
                }
            }
        });
    }

    /// Cancel on `bar` was pressed: ask the service to stop `job`. The
    /// outcome comes as the job's end; a refusal lets Cancel be tried again.
    fn cancel_job(&self, job: &Rc<JobHandle>, bar: &JobBar, source: &str) {
        let this = self.downgrade();
        let (job, bar, source) = (job.clone(), bar.clone(), source.to_owned());
        glib::spawn_future_local(async move {
            let Err(err) = job.cancel().await else { return };
            bar.cancel_failed();
            if let Some(win) = this.upgrade() {
                win.show_error_toast(
                    gettext("Could not cancel cloning “{name}”").replace("{name}", &source),
                    &err,
                );
            }
        });
    }

    fn job_finished(&self, source: &str, new_name: &str, outcome: JobOutcome) {
        match outcome {
            JobOutcome::Succeeded { cloned_vm_id } => {
                let toast = adw::Toast::new(&markup(
                    &gettext("“{name}” is ready").replace("{name}", new_name),
                ));
                toast.set_button_label(Some(&gettext("_Show")));
                toast.set_action_name(Some("win.select-vm"));
                toast.set_action_target_value(Some(&cloned_vm_id.to_variant()));
                self.add_toast(toast);
            }
            JobOutcome::Cancelled => {
                self.add_toast(adw::Toast::new(&markup(
                    &gettext("Cloning “{name}” was cancelled; nothing was left behind")
                        .replace("{name}", source),
                )));
            }
            JobOutcome::Failed(err) => self.clone_failed(source, &err),
        }
    }

    fn clone_failed(&self, source: &str, err: &ClientError) {
        let heading = gettext("Could not clone “{name}”").replace("{name}", source);
        self.show_error_toast(heading, err);
    }

    /// A toast saying what went wrong in a translated sentence; Details shows
    /// `heading` and the service's own, fuller words.
    fn show_error_toast(&self, heading: String, err: &ClientError) {
        let toast = adw::Toast::new(&markup(&err.summary()));
        toast.set_button_label(Some(&gettext("_Details")));
        toast.set_action_name(Some("win.show-error"));
        toast.set_action_target_value(Some(&(heading, err.user_message()).to_variant()));
        // An error stays until it has been read.
        toast.set_timeout(0);
        self.add_toast(toast);
    }

    fn show_error(&self, heading: &str, message: &str) {
        let dialog = adw::MessageDialog::new(Some(self), Some(heading), Some(message));
        dialog.add_response("close", &gettext("_Close"));
        dialog.set_default_response(Some("close"));
        dialog.set_close_response("close");
        dialog.present();
    }

    fn add_toast(&self, toast: adw::Toast) {
        self.imp().toast_overlay.add_toast(toast);
    }

    /// Shows and selects the VM `id` (the success toast's button).
    pub fn select_vm(&self, id: &str) {
        self.flush_pending();
        let imp = self.imp();
        imp.search_button.set_active(false);
        let selection = imp.selection.get().expect("set up");
        let Some(pos) = (0..selection.n_items()).find(|&i| {
            selection
                .item(i)
                .and_downcast::<VmObject>()
                .is_some_and(|vm| vm.id() == id)
        }) else {
            return;
        };
        selection.set_selected(pos);
        let _ = imp
            .list_view
            .activate_action("list.scroll-to-item", Some(&pos.to_variant()));
        // Keyboard focus on that row too, so Enter acts on the VM shown
        // selected (GTK 4.8 cannot scroll with focus); the scroll built its row.
        let row = self
            .visible_rows()
            .into_iter()
            .find(|row| row.vm_id() == id);
        match row.and_then(|row| row.parent()) {
            Some(item) => item.grab_focus(),
            None => imp.list_view.grab_focus(),
        };
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

/// Sort by name the way people read, then exactly, so the order is total.
fn sort_key(name: &str) -> (String, String) {
    (name.to_lowercase(), name.to_owned())
}

/// Toast titles are Pango markup in libadwaita 1.2; VM names may hold `&<>`.
fn markup(text: &str) -> String {
    glib::markup_escape_text(text).to_string()
}
