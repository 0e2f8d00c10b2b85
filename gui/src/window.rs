//! The main window: the live VM list, search, status pages and the clone
//! dialog. The list's data is `window/vm_list.rs`, the clones it runs and
//! their toasts `window/jobs.rs`, what tests read back `window/inspection.rs`.

mod inspection;
mod jobs;
mod vm_list;

use adw::prelude::*;
use adw::subclass::prelude::*;
use gettextrs::gettext;
use gtk::{gio, glib};

use crate::client::{Client, ClientError, ServiceEvent};
use crate::clone_dialog::CloneDialog;
use crate::vm_object::VmObject;
use crate::vm_row::VmRow;
use vm_list::Listed;

mod imp {
    use std::cell::OnceCell;

    use adw::subclass::prelude::*;
    use gtk::glib;

    use super::vm_list::VmList;
    use crate::client::Client;

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
        pub vms: VmList,
        pub filter: OnceCell<gtk::StringFilter>,
        pub filtered: OnceCell<gtk::FilterListModel>,
        pub selection: OnceCell<gtk::SingleSelection>,
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

    fn setup_list(&self) {
        let imp = self.imp();
        let filter = gtk::StringFilter::builder()
            .expression(gtk::PropertyExpression::new(
                VmObject::static_type(),
                gtk::Expression::NONE,
                "name",
            ))
            .ignore_case(true)
            .match_mode(gtk::StringFilterMatchMode::Substring)
            .build();
        let filtered =
            gtk::FilterListModel::new(Some(imp.vms.store().clone()), Some(filter.clone()));
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
                Listed::Shown => win.update_page(),
                Listed::Outdated => {}
                Listed::Retry => win.reload(),
                Listed::Failed(err) => win.show_error_page(&err),
            }
        });
    }

    /// A change the service pushed.
    pub fn on_service_event(&self, event: ServiceEvent) {
        let vms = &self.imp().vms;
        match event {
            ServiceEvent::VmChanged(info) => vms.changed(info),
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

    fn open_clone_dialog(&self, id: &str) {
        let Some((_, vm)) = self.imp().vms.find(id) else {
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

    /// Shows and selects the VM `id` (the success toast's button).
    pub fn select_vm(&self, id: &str) {
        let imp = self.imp();
        imp.vms.flush_pending();
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
}
