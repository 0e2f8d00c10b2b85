//! "Clone “web01”": the new name (checked live by the service), the storage
//! and, under Advanced, vCPUs, memory and the number of copies.

use adw::prelude::*;
use adw::subclass::prelude::*;
use gettextrs::gettext;
use gtk::glib;

use crate::client::{Client, CloneOptions, Storage, VmInfo};

mod imp {
    use std::cell::{Cell, OnceCell, RefCell};

    use adw::subclass::prelude::*;
    use gtk::glib;

    use crate::client::{Client, VmInfo};

    #[derive(Default, gtk::CompositeTemplate)]
    #[template(resource = "/org/vmclone/VmClone/clone_dialog.ui")]
    pub struct CloneDialog {
        #[template_child]
        pub window_title: TemplateChild<adw::WindowTitle>,
        #[template_child]
        pub clone_button: TemplateChild<gtk::Button>,
        #[template_child]
        pub body_label: TemplateChild<gtk::Label>,
        #[template_child]
        pub name_row: TemplateChild<adw::EntryRow>,
        #[template_child]
        pub storage_row: TemplateChild<adw::ComboRow>,
        #[template_child]
        pub problem_label: TemplateChild<gtk::Label>,
        #[template_child]
        pub advanced_row: TemplateChild<adw::ExpanderRow>,
        #[template_child]
        pub vcpus_spin: TemplateChild<gtk::SpinButton>,
        #[template_child]
        pub memory_spin: TemplateChild<gtk::SpinButton>,
        #[template_child]
        pub copies_row: TemplateChild<adw::ActionRow>,
        #[template_child]
        pub copies_spin: TemplateChild<gtk::SpinButton>,
        pub client: OnceCell<Client>,
        pub source: RefCell<VmInfo>,
        /// Bumped on every edit, so a slow answer for an old text is ignored.
        pub generation: Cell<u64>,
    }

    #[glib::object_subclass]
    impl ObjectSubclass for CloneDialog {
        const NAME: &'static str = "VmCloneCloneDialog";
        type Type = super::CloneDialog;
        type ParentType = adw::Window;

        fn class_init(klass: &mut Self::Class) {
            klass.bind_template();
            klass.add_binding_action(
                gtk::gdk::Key::Escape,
                gtk::gdk::ModifierType::empty(),
                "window.close",
            );
        }

        fn instance_init(obj: &glib::subclass::InitializingObject<Self>) {
            obj.init_template();
        }
    }

    impl ObjectImpl for CloneDialog {}
    impl WidgetImpl for CloneDialog {}
    impl WindowImpl for CloneDialog {}
    impl AdwWindowImpl for CloneDialog {}
}

glib::wrapper! {
    pub struct CloneDialog(ObjectSubclass<imp::CloneDialog>)
        @extends gtk::Widget, gtk::Window, adw::Window,
        @implements gtk::Buildable, gtk::ConstraintTarget, gtk::Native,
            gtk::Root, gtk::ShortcutManager;
}

/// What Clone in the dialog asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CloneRequest {
    pub source: VmInfo,
    /// One name, or the names of the copies.
    pub names: Vec<String>,
    pub options: CloneOptions,
}

/// The names of `copies` clones called `name`: `name` itself for one,
/// `name-1` … `name-N` for more.
pub fn copy_names(name: &str, copies: u32) -> Vec<String> {
    match copies {
        0 | 1 => vec![name.to_owned()],
        n => (1..=n).map(|i| format!("{name}-{i}")).collect(),
    }
}

impl CloneDialog {
    pub fn new(parent: &impl IsA<gtk::Window>, client: Client, vm: &VmInfo) -> CloneDialog {
        let dialog: CloneDialog = glib::Object::builder()
            .property("transient-for", parent)
            .build();
        let imp = dialog.imp();
        imp.client.set(client).ok();
        imp.source.replace(vm.clone());
        let title = gettext("Clone “{name}”").replace("{name}", &vm.name);
        dialog.set_title(Some(&title));
        imp.window_title.set_title(&title);
        imp.body_label.set_label(&if vm.is_template {
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
        imp.vcpus_spin.set_value(vm.vcpus.into());
        imp.memory_spin.set_value(vm.memory_mib as f64);
        dialog.set_default_widget(Some(&*imp.clone_button));

        let this = dialog.downgrade();
        imp.name_row.connect_changed(move |_| {
            if let Some(dialog) = this.upgrade() {
                dialog.validate();
            }
        });
        let this = dialog.downgrade();
        imp.copies_spin.connect_value_changed(move |_| {
            if let Some(dialog) = this.upgrade() {
                dialog.validate();
            }
        });
        // Enter in the name field presses Clone (the default widget) through
        // the name row's activates-default, only while Clone is sensitive.
        // Not translated: VM names are identifiers. Setting the text runs the first check.
        imp.name_row.set_text(&format!("{}-clone", vm.name));
        dialog
    }

    /// Calls `f` with what the dialog asks for when Clone is pressed; the
    /// dialog closes then.
    pub fn connect_clone(&self, f: impl Fn(CloneRequest) + 'static) {
        let this = self.downgrade();
        self.imp().clone_button.connect_clicked(move |_| {
            if let Some(dialog) = this.upgrade() {
                f(dialog.request());
                dialog.close();
            }
        });
    }

    pub fn request(&self) -> CloneRequest {
        CloneRequest {
            source: self.imp().source.borrow().clone(),
            names: self.names(),
            options: self.options(),
        }
    }

    /// The names the clones get.
    pub fn names(&self) -> Vec<String> {
        let imp = self.imp();
        copy_names(&imp.name_row.text(), imp.copies_spin.value_as_int() as u32)
    }

    pub fn storage(&self) -> Storage {
        let row = &self.imp().storage_row;
        if row.is_sensitive() && row.selected() == 1 {
            Storage::Linked
        } else {
            Storage::Copy
        }
    }

    /// The options; vCPUs and memory only when they differ from the source's.
    pub fn options(&self) -> CloneOptions {
        let imp = self.imp();
        let source = imp.source.borrow();
        let vcpus = imp.vcpus_spin.value_as_int() as u32;
        let memory_mib = imp.memory_spin.value() as u64;
        CloneOptions {
            storage: self.storage(),
            vcpus: (vcpus != source.vcpus).then_some(vcpus),
            memory_mib: (memory_mib != source.memory_mib).then_some(memory_mib),
        }
    }

    pub fn name_row(&self) -> adw::EntryRow {
        self.imp().name_row.get()
    }

    pub fn storage_row(&self) -> adw::ComboRow {
        self.imp().storage_row.get()
    }

    pub fn advanced_row(&self) -> adw::ExpanderRow {
        self.imp().advanced_row.get()
    }

    pub fn vcpus_spin(&self) -> gtk::SpinButton {
        self.imp().vcpus_spin.get()
    }

    pub fn memory_spin(&self) -> gtk::SpinButton {
        self.imp().memory_spin.get()
    }

    pub fn copies_spin(&self) -> gtk::SpinButton {
        self.imp().copies_spin.get()
    }

    pub fn clone_button(&self) -> gtk::Button {
        self.imp().clone_button.get()
    }

    /// The reason the name is refused, as shown under the name.
    pub fn problem(&self) -> Option<String> {
        let label = &self.imp().problem_label;
        label.is_visible().then(|| label.label().to_string())
    }

    pub fn can_clone(&self) -> bool {
        self.imp().clone_button.is_sensitive()
    }

    fn validate(&self) {
        let imp = self.imp();
        let generation = imp.generation.get() + 1;
        imp.generation.set(generation);
        // Until the service has answered for these exact names, Enter must not clone.
        imp.clone_button.set_sensitive(false);
        let names = self.names();
        self.show_names(&names);
        if imp.name_row.text().is_empty() {
            self.show_problem(None);
            return;
        }
        let Some(client) = imp.client.get().cloned() else {
            return;
        };
        let this = self.downgrade();
        glib::spawn_future_local(async move {
            let results = client.check_names(&names).await;
            let Some(dialog) = this.upgrade() else { return };
            if dialog.imp().generation.get() != generation {
                return;
            }
            match results.into_iter().find_map(Result::err) {
                None => {
                    dialog.show_problem(None);
                    dialog.imp().clone_button.set_sensitive(true);
                }
                Some(err) => dialog.show_problem(Some(&err.user_message())),
            }
        });
    }

    /// Under the number of copies: what the copies will be called.
    fn show_names(&self, names: &[String]) {
        let row = &self.imp().copies_row;
        match names {
            [first, .., last] => row.set_subtitle(&glib::markup_escape_text(
                // Translators: the names of several copies, e.g. "web01-clone-1 to web01-clone-3"
                &gettext("{first} to {last}")
                    .replace("{first}", first)
                    .replace("{last}", last),
            )),
            _ => row.set_subtitle(""),
        }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copies_are_numbered_from_one_and_a_single_clone_keeps_the_name() {
        assert_eq!(copy_names("web01-clone", 1), ["web01-clone"]);
        assert_eq!(
            copy_names("web01-clone", 3),
            ["web01-clone-1", "web01-clone-2", "web01-clone-3"]
        );
    }
}
