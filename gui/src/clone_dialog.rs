//! "Clone “web01”?": the new name (checked live by the service) and the storage.

use adw::prelude::*;
use adw::subclass::prelude::*;
use gettextrs::gettext;
use gtk::glib;

use crate::client::{Client, Storage, VmInfo};

mod imp {
    use std::cell::{Cell, OnceCell};

    use adw::subclass::prelude::*;
    use gtk::glib;

    use crate::client::Client;

    #[derive(Default, gtk::CompositeTemplate)]
    #[template(resource = "/org/vmclone/VmClone/clone_dialog.ui")]
    pub struct CloneDialog {
        #[template_child]
        pub name_row: TemplateChild<adw::EntryRow>,
        #[template_child]
        pub storage_row: TemplateChild<adw::ComboRow>,
        #[template_child]
        pub problem_label: TemplateChild<gtk::Label>,
        pub client: OnceCell<Client>,
        /// Bumped on every edit, so a slow answer for an old text is ignored.
        pub generation: Cell<u64>,
    }

    #[glib::object_subclass]
    impl ObjectSubclass for CloneDialog {
        const NAME: &'static str = "VmCloneCloneDialog";
        type Type = super::CloneDialog;
        type ParentType = adw::MessageDialog;

        fn class_init(klass: &mut Self::Class) {
            klass.bind_template();
        }

        fn instance_init(obj: &glib::subclass::InitializingObject<Self>) {
            obj.init_template();
        }
    }

    impl ObjectImpl for CloneDialog {}
    impl WidgetImpl for CloneDialog {}
    impl WindowImpl for CloneDialog {}
    impl MessageDialogImpl for CloneDialog {}
}

glib::wrapper! {
    pub struct CloneDialog(ObjectSubclass<imp::CloneDialog>)
        @extends gtk::Widget, gtk::Window, adw::MessageDialog,
        @implements gtk::Buildable, gtk::ConstraintTarget, gtk::Native, gtk::Root,
            gtk::ShortcutManager;
}

const CLONE: &str = "clone";

impl CloneDialog {
    pub fn new(parent: &impl IsA<gtk::Window>, client: Client, vm: &VmInfo) -> CloneDialog {
        let dialog: CloneDialog = glib::Object::builder()
            .property("transient-for", parent)
            .build();
        let imp = dialog.imp();
        imp.client.set(client).ok();
        dialog.set_heading(Some(
            &gettext("Clone “{name}”?").replace("{name}", &vm.name),
        ));
        dialog.set_body(&if vm.is_template {
            gettext(
                "The clone is a new VM with its own name, UUID and network addresses. A full copy gets its own copy of every disk; a linked clone stores only its own changes and reads the rest from this template.",
            )
        } else {
            gettext(
                "The clone is a new VM with its own name, UUID and network addresses, and its own copy of every disk. The original stays as it is.",
            )
        });
        if vm.is_template {
            imp.storage_row.set_selected(1);
        } else {
            imp.storage_row.set_sensitive(false);
            imp.storage_row
                .set_subtitle(&gettext("Linked clones need a template"));
        }

        let this = dialog.downgrade();
        imp.name_row.connect_changed(move |_| {
            if let Some(dialog) = this.upgrade() {
                dialog.validate();
            }
        });
        // Enter in the name field presses Clone (the default response) through
        // the name row's activates-default, only while Clone is sensitive.
        // Not translated: VM names are identifiers. Setting the text runs the first check.
        imp.name_row.set_text(&format!("{}-clone", vm.name));
        dialog
    }

    pub fn new_name(&self) -> String {
        self.imp().name_row.text().to_string()
    }

    pub fn storage(&self) -> Storage {
        let row = &self.imp().storage_row;
        if row.is_sensitive() && row.selected() == 1 {
            Storage::Linked
        } else {
            Storage::Copy
        }
    }

    pub fn name_row(&self) -> adw::EntryRow {
        self.imp().name_row.get()
    }

    pub fn storage_row(&self) -> adw::ComboRow {
        self.imp().storage_row.get()
    }

    /// The reason the name is refused, as shown under the name.
    pub fn problem(&self) -> Option<String> {
        let label = &self.imp().problem_label;
        label.is_visible().then(|| label.label().to_string())
    }

    pub fn can_clone(&self) -> bool {
        self.is_response_enabled(CLONE)
    }

    fn validate(&self) {
        let imp = self.imp();
        let generation = imp.generation.get() + 1;
        imp.generation.set(generation);
        // Until the service has answered for this exact text, Enter must not clone.
        self.set_response_enabled(CLONE, false);
        let name = self.new_name();
        if name.is_empty() {
            self.show_problem(None);
            return;
        }
        let Some(client) = imp.client.get().cloned() else {
            return;
        };
        let this = self.downgrade();
        glib::spawn_future_local(async move {
            let result = client.check_name(&name).await;
            let Some(dialog) = this.upgrade() else { return };
            if dialog.imp().generation.get() != generation {
                return;
            }
            match result {
                Ok(()) => {
                    dialog.show_problem(None);
                    dialog.set_response_enabled(CLONE, true);
                }
                Err(err) => dialog.show_problem(Some(&err.user_message())),
            }
        });
    }

    fn show_problem(&self, problem: Option<&str>) {
        let imp = self.imp();
        imp.problem_label.set_label(problem.unwrap_or_default());
        imp.problem_label.set_visible(problem.is_some());
        if problem.is_some() {
            imp.name_row.add_css_class("error");
        } else {
            imp.name_row.remove_css_class("error");
        }
    }
}
