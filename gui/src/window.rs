//! The main window: the live VM list (search, templates filter, status
//! pages) beside the details of the selected VM, in a leaflet that folds on
//! narrow windows. The list's data is `window/vm_list.rs` and its filter
//! `window/vm_filter.rs`; the details pane `window/details.rs`; what the
//! per-VM menu does `window/vm_actions.rs`; the clones it runs, their
//! progress and toasts `window/jobs.rs`; closing while clones run and the
//! notifications `window/background.rs`; what tests read back
//! `window/inspection.rs`.

mod background;
mod details;
mod inspection;
mod jobs;
mod vm_actions;
mod vm_filter;
mod vm_list;

use adw::prelude::*;
use adw::subclass::prelude::*;
use gettextrs::gettext;
use gtk::{gio, glib};

use crate::client::{Client, ClientError, ServiceEvent};
use crate::vm_object::VmObject;
use crate::vm_row::VmRow;
use vm_list::Listed;

mod imp {
    use std::cell::{Cell, OnceCell, RefCell};

    use adw::subclass::prelude::*;
    use gtk::glib;

    use super::vm_filter::VmFilter;
    use super::vm_list::VmList;
    use crate::client::Client;
    use crate::details_view::DetailsView;

    #[derive(Default, gtk::CompositeTemplate)]
    #[template(resource = "/org/vmclone/VmClone/window.ui")]
    pub struct Window {
        #[template_child]
        pub toast_overlay: TemplateChild<adw::ToastOverlay>,
        #[template_child]
        pub leaflet: TemplateChild<adw::Leaflet>,
        #[template_child]
        pub list_pane: TemplateChild<gtk::Box>,
        #[template_child]
        pub all_button: TemplateChild<gtk::ToggleButton>,
        #[template_child]
        pub templates_button: TemplateChild<gtk::ToggleButton>,
        #[template_child]
        pub search_button: TemplateChild<gtk::ToggleButton>,
        #[template_child]
        pub menu_button: TemplateChild<gtk::MenuButton>,
        #[template_child]
        pub jobs_button: TemplateChild<gtk::MenuButton>,
        #[template_child]
        pub jobs_popover: TemplateChild<gtk::Popover>,
        #[template_child]
        pub jobs_box: TemplateChild<gtk::Box>,
        #[template_child]
        pub search_bar: TemplateChild<gtk::SearchBar>,
        #[template_child]
        pub search_entry: TemplateChild<gtk::SearchEntry>,
        #[template_child]
        pub stack: TemplateChild<gtk::Stack>,
        #[template_child]
        pub list_view: TemplateChild<gtk::ListView>,
        #[template_child]
        pub no_results_page: TemplateChild<adw::StatusPage>,
        #[template_child]
        pub unreachable_page: TemplateChild<adw::StatusPage>,
        #[template_child]
        pub unauthorized_page: TemplateChild<adw::StatusPage>,
        #[template_child]
        pub details_pane: TemplateChild<gtk::Box>,
        #[template_child]
        pub back_button: TemplateChild<gtk::Button>,
        #[template_child]
        pub vm_menu_button: TemplateChild<gtk::MenuButton>,
        #[template_child]
        pub details_clone_button: TemplateChild<gtk::Button>,
        #[template_child]
        pub details_stack: TemplateChild<gtk::Stack>,
        #[template_child]
        pub details_scroller: TemplateChild<gtk::ScrolledWindow>,
        /// Made on the first selection: most starts never need it before the first frame.
        pub details_view: OnceCell<DetailsView>,
        /// Bumped on every selection, so GetVm answers for an older one are dropped.
        pub details_generation: Cell<u64>,
        /// The VM whose `GetVm` answer the details show.
        pub details_loaded: RefCell<Option<String>>,
        pub client: OnceCell<Client>,
        /// The application, also while the window waits in the background
        /// without one (see `background.rs`).
        pub app: OnceCell<gtk::Application>,
        pub vms: VmList,
        pub filter: VmFilter,
        pub filtered: OnceCell<gtk::FilterListModel>,
        pub selection: OnceCell<gtk::SingleSelection>,
        /// Clones followed by this window and not finished yet.
        pub running_jobs: Cell<usize>,
        /// Numbers the batches, for their notifications' ids.
        pub batches: Cell<u64>,
        /// The clones running before the window opened have their rows.
        pub jobs_adopted: Cell<bool>,
    }

    #[glib::object_subclass]
    impl ObjectSubclass for Window {
        const NAME: &'static str = "VmCloneWindow";
        type Type = super::Window;
        type ParentType = adw::ApplicationWindow;

        fn class_init(klass: &mut Self::Class) {
            klass.bind_template();
            super::install_actions(klass);
        }

        fn instance_init(obj: &glib::subclass::InitializingObject<Self>) {
            obj.init_template();
        }
    }

    impl ObjectImpl for Window {}
    impl WidgetImpl for Window {}
    impl WindowImpl for Window {
        fn close_request(&self) -> glib::Propagation {
            self.obj().close_to_background()
        }
    }
    impl ApplicationWindowImpl for Window {}
    impl AdwApplicationWindowImpl for Window {}
}

glib::wrapper! {
    pub struct Window(ObjectSubclass<imp::Window>)
        @extends gtk::Widget, gtk::Window, gtk::ApplicationWindow, adw::ApplicationWindow,
        @implements gio::ActionGroup, gio::ActionMap, gtk::Buildable,
            gtk::ConstraintTarget, gtk::Native, gtk::Root, gtk::ShortcutManager;
}

/// The window's actions; the application gives some of them accelerators.
fn install_actions(klass: &mut <imp::Window as ObjectSubclass>::Class) {
    let string = Some(glib::VariantTy::STRING);
    let id_of = |v: Option<&glib::Variant>| v.and_then(|v| v.str()).map(str::to_owned);
    klass.install_action("win.reload", None, |win, _, _| win.reload());
    klass.install_action("win.search", None, |win, _, _| {
        let button = &win.imp().search_button;
        button.set_active(!button.is_active());
    });
    klass.install_action("win.clone", string, move |win, _, id| {
        if let Some(id) = id_of(id) {
            win.open_clone_dialog(&id);
        }
    });
    klass.install_action("win.clone-selected", None, |win, _, _| {
        if let Some(vm) = win.selected_vm() {
            win.open_clone_dialog(&vm.id);
        }
    });
    klass.install_action("win.convert-to-template", string, move |win, _, id| {
        if let Some(id) = id_of(id) {
            win.confirm_convert_to_template(&id);
        }
    });
    klass.install_action("win.copy-uuid", string, move |win, _, id| {
        if let Some(id) = id_of(id) {
            win.copy_uuid(&id);
        }
    });
    klass.install_action(crate::vm_menu::UNAVAILABLE, None, |_, _, _| {});
    klass.install_action("win.select-vm", string, move |win, _, id| {
        if let Some(id) = id_of(id) {
            win.select_vm(&id);
        }
    });
    klass.install_action("win.show-details", None, |win, _, _| {
        // After the click that selected the row (a touch selects on release).
        let win = win.downgrade();
        glib::idle_add_local_once(move || {
            if let Some(win) = win.upgrade() {
                win.navigate_to_details();
            }
        });
    });
    klass.install_action("win.back", None, |win, _, _| win.navigate_to_list());
    klass.install_action("win.shortcuts", None, |win, _, _| win.show_shortcuts());
    klass.install_action(
        "win.show-error",
        Some(glib::VariantTy::new("(ss)").expect("a valid type")),
        |win, _, details| {
            if let Some((heading, message)) = details.and_then(|v| v.get::<(String, String)>()) {
                win.show_error(&heading, &message);
            }
        },
    );
}

/// Which page the list pane shows.
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
    const ALL: [Page; 6] = [
        Page::Loading,
        Page::List,
        Page::Empty,
        Page::NoResults,
        Page::Unreachable,
        Page::Unauthorized,
    ];

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
        let imp = win.imp();
        imp.client.set(client).ok();
        imp.app.set(app.as_ref().clone()).ok();
        imp.unreachable_page.set_description(Some(&gettext(
            "The vmclone service is not running or not installed. Start it with “systemctl start vmclone”, then retry.",
        )));
        win.setup_list();
        win.setup_search();
        win.setup_details();
        win.action_set_enabled(crate::vm_menu::UNAVAILABLE, false);
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

    fn setup_list(&self) {
        let imp = self.imp();
        let filtered = gtk::FilterListModel::new(
            Some(imp.vms.store().clone()),
            Some(imp.filter.filter().clone()),
        );
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
        // Enter (or a double click) on a row opens its details.
        let this = self.downgrade();
        imp.list_view.connect_activate(move |_, _| {
            if let Some(win) = this.upgrade() {
                win.enter_details();
            }
        });
        // Shift+F10 or the Menu key opens the focused row's menu.
        let menu_keys = gtk::ShortcutController::new();
        let this = self.downgrade();
        menu_keys.add_shortcut(gtk::Shortcut::new(
            gtk::ShortcutTrigger::parse_string("<Shift>F10|Menu"),
            Some(gtk::CallbackAction::new(move |_, _| {
                this.upgrade()
                    .is_some_and(|win| win.popup_focused_row_menu())
                    .into()
            })),
        ));
        imp.list_view.add_controller(menu_keys);

        let this = self.downgrade();
        filtered.connect_items_changed(move |_, _, _, _| {
            if let Some(win) = this.upgrade() {
                win.update_page();
            }
        });
        let this = self.downgrade();
        selection.connect_selected_item_notify(move |_| {
            if let Some(win) = this.upgrade() {
                win.show_selected();
            }
        });
        imp.filtered.set(filtered).ok();
        imp.selection.set(selection).ok();
    }

    /// The menu of the row with the keyboard focus; false when none has it.
    fn popup_focused_row_menu(&self) -> bool {
        let row = self
            .imp()
            .list_view
            .focus_child()
            .and_then(|item| item.first_child())
            .and_downcast::<VmRow>();
        match row {
            Some(row) => {
                row.menu_button().popup();
                true
            }
            None => false,
        }
    }

    fn setup_search(&self) {
        let imp = self.imp();
        imp.search_bar.connect_entry(&*imp.search_entry);
        let this = self.downgrade();
        imp.search_entry.connect_search_changed(move |entry| {
            if let Some(win) = this.upgrade() {
                win.imp().filter.set_text(&entry.text());
                win.update_page();
            }
        });
        let entry = imp.search_entry.get();
        imp.search_bar
            .connect_search_mode_enabled_notify(move |bar| {
                if !bar.is_search_mode() {
                    entry.set_text("");
                }
            });
        let this = self.downgrade();
        imp.templates_button.connect_active_notify(move |button| {
            if let Some(win) = this.upgrade() {
                win.imp().filter.set_templates_only(button.is_active());
                win.update_page();
            }
        });
    }

    /// Fetches the whole list again (at start, on Retry, when the service
    /// reappears); see `VmList::start_listing`.
    pub fn reload(&self) {
        let imp = self.imp();
        if !imp.vms.is_loaded() {
            self.show_page(Page::Loading);
        }
        let listing = imp.vms.start_listing();
        let client = self.client();
        let this = self.downgrade();
        glib::spawn_future_local(async move {
            let result = client.list_vms().await;
            let Some(win) = this.upgrade() else { return };
            match win.imp().vms.finish_listing(listing, result) {
                Listed::Shown => {
                    win.update_page();
                    win.prepare_details();
                    win.adopt_running_jobs();
                }
                Listed::Outdated => {}
                Listed::Retry => win.reload(),
                Listed::Failed(err) => win.show_error_page(&err),
            }
        });
    }

    /// A change the service pushed.
    pub fn on_service_event(&self, event: ServiceEvent) {
        let imp = self.imp();
        let vms = &imp.vms;
        match event {
            ServiceEvent::VmChanged(info) => {
                let selected = self.selected_vm().is_some_and(|vm| vm.id == info.id);
                vms.changed(info);
                // A VM that became a template now passes the templates filter.
                imp.filter.refilter();
                if selected {
                    self.show_selected();
                }
            }
            ServiceEvent::VmRemoved(id) => vms.removed(id),
            ServiceEvent::ServiceLost => {
                vms.service_lost();
                self.show_error_page(&ClientError::Unreachable("the service left the bus".into()))
            }
            ServiceEvent::ServiceAppeared => {
                if !vms.service_appeared_while_listing() {
                    self.reload();
                }
            }
        }
    }

    fn show_error_page(&self, err: &ClientError) {
        let imp = self.imp();
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
        // Searching and filtering only make sense while there is a list.
        let searchable = matches!(page, Page::List | Page::NoResults);
        imp.search_button.set_sensitive(searchable);
        imp.all_button.set_sensitive(searchable);
        imp.templates_button.set_sensitive(searchable);
        if !searchable {
            imp.search_button.set_active(false);
        }
        // Typing starts a search only where there is a list to search.
        imp.search_bar
            .set_key_capture_widget(searchable.then_some(self.upcast_ref::<gtk::Widget>()));
        if page == Page::NoResults {
            self.describe_no_results();
        }
        let changed = imp.stack.visible_child_name().as_deref() != Some(page.name());
        imp.stack.set_visible_child_name(page.name());
        // The details pane shows a VM only beside the list.
        if changed {
            self.show_selected();
        }
    }

    /// The page for an empty filter says which filter is empty.
    fn describe_no_results(&self) {
        let imp = self.imp();
        let page = &imp.no_results_page;
        if imp.filter.templates_only() && !imp.filter.is_searching() {
            page.set_icon_name(Some("computer-symbolic"));
            page.set_title(&gettext("No Templates"));
            page.set_description(Some(&gettext(
                "Linked clones are made from templates. Make a shut-off VM a template with “Convert to Template…” in its menu.",
            )));
        } else {
            page.set_icon_name(Some("system-search-symbolic"));
            page.set_title(&gettext("No Results Found"));
            page.set_description(Some(&gettext("No VM name or UUID contains this text")));
        }
    }

    fn update_page(&self) {
        let imp = self.imp();
        if !imp.vms.is_loaded() {
            return;
        }
        let filtered = imp.filtered.get().expect("set up");
        let page = if imp.vms.store().n_items() == 0 {
            Page::Empty
        } else if filtered.n_items() == 0 {
            Page::NoResults
        } else {
            Page::List
        };
        self.show_page(page);
    }

    /// Shows and selects the VM `id` (the success toast's Show, the
    /// notification's action), with its details on a narrow window too.
    pub fn select_vm(&self, id: &str) {
        let imp = self.imp();
        imp.vms.flush_pending();
        let selection = imp.selection.get().expect("set up");
        let position = |selection: &gtk::SingleSelection| {
            (0..selection.n_items()).find(|&i| {
                selection
                    .item(i)
                    .and_downcast::<VmObject>()
                    .is_some_and(|vm| vm.id() == id)
            })
        };
        let pos = match position(selection) {
            Some(pos) => pos,
            // Filtered out: show every VM again.
            None => {
                imp.search_button.set_active(false);
                imp.all_button.set_active(true);
                let Some(pos) = position(selection) else {
                    return;
                };
                pos
            }
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
        self.navigate_to_details();
    }
}
