//! "Clone “web01”": the new name (checked live by the service), the storage,
//! the identity switch and, under Advanced, vCPUs, memory, the destination
//! folder and the number of copies; under them what the clone will do
//! (`PlanClone`), asked again whenever an option changes. A running or
//! paused source is cloned live.

use adw::prelude::*;
use adw::subclass::prelude::*;
use gettextrs::{gettext, ngettext};
use gtk::glib;

use std::time::Duration;

use crate::client::{Client, ClientError, CloneOptions, ClonePlan, PlannedDisk, Storage, VmInfo};
use crate::settings::{settings, RESET_IDENTITY};

/// How long the plan waits for more changes (typing, a spin held down)
/// before it asks the service: short enough to follow within 100 ms.
const PLAN_DEBOUNCE: Duration = Duration::from_millis(20);

mod imp {
    use std::cell::{Cell, OnceCell, RefCell};

    use adw::subclass::prelude::*;
    use gtk::glib;

    use crate::client::{Client, ClonePlan, VmInfo};

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
        #[template_child]
        pub live_label: TemplateChild<gtk::Label>,
        #[template_child]
        pub identity_switch: TemplateChild<gtk::Switch>,
        #[template_child]
        pub destination_row: TemplateChild<adw::ComboRow>,
        #[template_child]
        pub destination_list: TemplateChild<gtk::StringList>,
        #[template_child]
        pub plan_list: TemplateChild<gtk::ListBox>,
        #[template_child]
        pub plan_problem_label: TemplateChild<gtk::Label>,
        #[template_child]
        pub warnings_label: TemplateChild<gtk::Label>,
        pub client: OnceCell<Client>,
        pub source: RefCell<VmInfo>,
        /// Bumped on every change of a name or an option, so a slow answer
        /// for older ones is ignored.
        pub generation: Cell<u64>,
        /// The service accepted every name (for the current `generation`).
        pub names_ok: Cell<bool>,
        /// The plan shown is the one for the options now, and it fits.
        pub plan_ok: Cell<bool>,
        /// A plan is asked for or about to be.
        pub plan_pending: Cell<bool>,
        pub plan_timer: RefCell<Option<glib::SourceId>>,
        pub plan: RefCell<Option<ClonePlan>>,
        /// The `target-dir` of each destination item after the first (the default).
        pub destinations: RefCell<Vec<String>>,
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
        if is_live(vm) {
            // The service refuses a live linked clone: its overlays would
            // stand on images the running guest writes.
            imp.storage_row.set_sensitive(false);
            imp.storage_row
                .set_subtitle(&gettext("A running VM is cloned as a full copy"));
            dialog.show_live(None);
        } else if vm.is_template {
            imp.storage_row.set_selected(1);
        } else {
            imp.storage_row.set_sensitive(false);
            imp.storage_row
                .set_subtitle(&gettext("Linked clones need a template"));
        }
        imp.vcpus_spin.set_value(vm.vcpus.into());
        imp.memory_spin.set_value(vm.memory_mib as f64);
        imp.destination_list
            .append(&gettext("Beside the source’s disks"));
        // GetVm tells no guest OS: on unless the user turned it off before.
        let reset = settings().map_or(true, |s| s.boolean(RESET_IDENTITY));
        imp.identity_switch.set_active(reset);
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
        let replan = {
            let this = dialog.downgrade();
            move || {
                if let Some(dialog) = this.upgrade() {
                    dialog.schedule_plan();
                }
            }
        };
        imp.vcpus_spin.connect_value_changed({
            let replan = replan.clone();
            move |_| replan()
        });
        imp.memory_spin.connect_value_changed({
            let replan = replan.clone();
            move |_| replan()
        });
        imp.storage_row.connect_selected_notify({
            let replan = replan.clone();
            move |_| replan()
        });
        imp.destination_row.connect_selected_notify({
            let replan = replan.clone();
            move |_| replan()
        });
        imp.identity_switch.connect_active_notify(move |switch| {
            if let Some(settings) = settings() {
                // Remembered for the next clone; a read-only key just is not.
                let _ = settings.set_boolean(RESET_IDENTITY, switch.is_active());
            }
            replan();
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
        let target_dir = match imp.destination_row.selected() {
            0 | gtk::INVALID_LIST_POSITION => None,
            n => imp.destinations.borrow().get(n as usize - 1).cloned(),
        };
        CloneOptions {
            storage: self.storage(),
            vcpus: (vcpus != source.vcpus).then_some(vcpus),
            memory_mib: (memory_mib != source.memory_mib).then_some(memory_mib),
            target_dir,
            live: is_live(&source),
            reset_identity: imp.identity_switch.is_active(),
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

    pub fn identity_switch(&self) -> gtk::Switch {
        self.imp().identity_switch.get()
    }

    pub fn destination_row(&self) -> adw::ComboRow {
        self.imp().destination_row.get()
    }

    /// The folders offered under Destination Folder after the default.
    pub fn destinations(&self) -> Vec<String> {
        self.imp().destinations.borrow().clone()
    }

    pub fn clone_button(&self) -> gtk::Button {
        self.imp().clone_button.get()
    }

    /// The reason the name is refused, as shown under the name.
    pub fn problem(&self) -> Option<String> {
        let label = &self.imp().problem_label;
        label.is_visible().then(|| label.label().to_string())
    }

    /// Why the clone cannot be made as planned (no space, an option the
    /// service refuses), as shown under the plan.
    pub fn plan_problem(&self) -> Option<String> {
        let label = &self.imp().plan_problem_label;
        label.is_visible().then(|| label.label().to_string())
    }

    /// The plan shown, once it is the one for the options now.
    pub fn plan(&self) -> Option<ClonePlan> {
        let imp = self.imp();
        (!imp.plan_pending.get())
            .then(|| imp.plan.borrow().clone())
            .flatten()
    }

    /// No plan is asked for: what the dialog shows is for the options now.
    pub fn plan_settled(&self) -> bool {
        !self.imp().plan_pending.get()
    }

    /// What a live clone's source is told: it keeps running, and how
    /// consistent the copy will be.
    pub fn live_text(&self) -> Option<String> {
        let label = &self.imp().live_label;
        label.is_visible().then(|| label.label().to_string())
    }

    pub fn can_clone(&self) -> bool {
        self.imp().clone_button.is_sensitive()
    }

    /// The name or the number of copies changed.
    fn validate(&self) {
        let imp = self.imp();
        self.show_names(&self.names());
        if imp.name_row.text().is_empty() {
            // An empty name only disables Clone; it needs no words.
            self.show_problem(None);
        }
        self.schedule_plan();
    }

    fn update_clone_button(&self) {
        let imp = self.imp();
        imp.clone_button
            .set_sensitive(imp.names_ok.get() && imp.plan_ok.get());
    }

    /// Asks again, once the names and options stop changing; until the
    /// answer for these exact ones has come, Enter must not clone.
    fn schedule_plan(&self) {
        let imp = self.imp();
        imp.generation.set(imp.generation.get() + 1);
        imp.names_ok.set(false);
        imp.plan_ok.set(false);
        imp.plan_pending.set(true);
        self.update_clone_button();
        if let Some(timer) = imp.plan_timer.take() {
            timer.remove();
        }
        let this = self.downgrade();
        let timer = glib::timeout_add_local_once(PLAN_DEBOUNCE, move || {
            if let Some(dialog) = this.upgrade() {
                dialog.imp().plan_timer.take();
                dialog.ask_plan();
            }
        });
        imp.plan_timer.replace(Some(timer));
    }

    /// `PlanClone` for the first name, which checks it as the clone would,
    /// and `CheckName` for the other copies' names, all at once. The first
    /// name is not checked apart: the service holds a name while it plans,
    /// so a check beside the plan would see it as being made.
    fn ask_plan(&self) {
        let imp = self.imp();
        let generation = imp.generation.get();
        let names = self.names();
        let Some(client) = imp.client.get().cloned() else {
            return;
        };
        if imp.name_row.text().is_empty() {
            // Nothing to ask: Clone stays insensitive, the plan shown stays.
            imp.plan_pending.set(false);
            return;
        }
        let (source, options) = (imp.source.borrow().id.clone(), self.options());
        let this = self.downgrade();
        glib::spawn_future_local(async move {
            let (plan, checks) = futures_lite::future::zip(
                client.plan_clone(&source, &names[0], &options),
                client.check_names(&names[1..]),
            )
            .await;
            let Some(dialog) = this.upgrade() else { return };
            let imp = dialog.imp();
            if imp.generation.get() != generation {
                return;
            }
            imp.plan_pending.set(false);
            let name_error = match &plan {
                Err(err) if is_name_error(err) => Some(err.clone()),
                _ => checks.into_iter().find_map(Result::err),
            };
            match name_error {
                Some(err) => {
                    // The plan shown stays until a name is accepted.
                    dialog.show_problem(Some(&err.user_message()));
                    dialog.show_plan_problem(None);
                }
                None => {
                    dialog.show_problem(None);
                    imp.names_ok.set(true);
                    match plan {
                        Ok(plan) => dialog.show_plan(plan, names.len() as u32),
                        Err(err) => dialog.show_plan_problem(Some(&err.user_message())),
                    }
                }
            }
            dialog.update_clone_button();
        });
    }

    fn show_plan(&self, plan: ClonePlan, copies: u32) {
        let imp = self.imp();
        self.offer_destinations(&plan);
        let list = &imp.plan_list;
        while let Some(row) = list.first_child() {
            list.remove(&row);
        }
        for disk in &plan.disks {
            let row = adw::ActionRow::builder()
                .title(glib::markup_escape_text(&disk_title(disk)))
                .subtitle(glib::markup_escape_text(&disk_subtitle(disk)))
                .build();
            list.append(&row);
        }
        for (title, copy) in [
            (gettext("UEFI variables"), &plan.nvram),
            (gettext("TPM state"), &plan.tpm),
        ] {
            let Some(copy) = copy else { continue };
            let subtitle = match copy.exists {
                // Translators: where the clone's copy of its UEFI variables or TPM state goes
                true => {
                    gettext("copied to {destination}").replace("{destination}", &copy.destination)
                }
                false => gettext("made at the clone’s first start, as the source has none yet"),
            };
            list.append(
                &adw::ActionRow::builder()
                    .title(glib::markup_escape_text(&title))
                    .subtitle(glib::markup_escape_text(&subtitle))
                    .build(),
            );
        }
        let size = size_text;
        let total = plan.bytes_to_copy.saturating_mul(u64::from(copies));
        let title = match copies {
            1 => gettext("{size} to copy"),
            _ => ngettext(
                "{size} to copy for {n} clone",
                "{size} to copy for {n} clones",
                copies,
            )
            .replace("{n}", &copies.to_string()),
        }
        .replace("{size}", &size(total));
        let subtitle = plan
            .filesystems
            .iter()
            .map(|s| {
                // Translators: the free space where a clone's files go, e.g. "93 GB free in /srv/vms"
                gettext("{free} free in {place}")
                    .replace("{free}", &size(s.free_bytes))
                    .replace("{place}", &s.place)
            })
            .collect::<Vec<_>>()
            .join("\n");
        list.append(
            &adw::ActionRow::builder()
                .title(glib::markup_escape_text(&title))
                .subtitle(glib::markup_escape_text(&subtitle))
                .build(),
        );
        let warnings = plan.warnings.join("\n");
        imp.warnings_label.set_label(&warnings);
        imp.warnings_label.set_visible(!warnings.is_empty());
        if is_live(&imp.source.borrow()) {
            self.show_live(Some(&plan.consistency));
        }
        let short = plan.short_for(copies);
        match &short {
            Some(space) => {
                let text = match copies {
                    1 => gettext(
                        "Not enough space: {place} has {free} free, the clone needs {needed}. Choose another destination folder or free some space.",
                    ),
                    _ => gettext(
                        "Not enough space: {place} has {free} free, the clones need {needed}. Choose another destination folder, fewer copies, or free some space.",
                    ),
                }
                .replace("{place}", &space.place)
                .replace("{free}", &size(space.free_bytes))
                .replace("{needed}", &size(space.bytes_needed));
                self.show_plan_problem(Some(&text));
            }
            None => self.show_plan_problem(None),
        }
        imp.plan_ok.set(short.is_none() && plan.fits);
        imp.plan.replace(Some(plan));
    }

    /// Fills Destination Folder from the first plan; later plans list the same.
    fn offer_destinations(&self, plan: &ClonePlan) {
        let imp = self.imp();
        if !imp.destinations.borrow().is_empty() {
            return;
        }
        for d in &plan.destinations {
            let label = match &d.pool {
                // Translators: a destination folder, e.g. "/srv/vms (pool “vms”, 93 GB free)"
                Some(pool) => {
                    gettext("{path} (pool “{pool}”, {free} free)").replace("{pool}", pool)
                }
                None => gettext("{path} ({free} free)"),
            }
            .replace("{path}", &d.path)
            .replace("{free}", &size_text(d.free_bytes));
            imp.destination_list.append(&label);
        }
        imp.destinations
            .replace(plan.destinations.iter().map(|d| d.path.clone()).collect());
    }

    fn show_plan_problem(&self, problem: Option<&str>) {
        let imp = self.imp();
        imp.plan_problem_label
            .set_label(problem.unwrap_or_default());
        imp.plan_problem_label.set_visible(problem.is_some());
        if problem.is_some() {
            imp.plan_ok.set(false);
        }
    }

    /// The source runs: it keeps running and is copied as it is now;
    /// `consistency` is the plan's, once it came.
    fn show_live(&self, consistency: Option<&str>) {
        let imp = self.imp();
        let name = imp.source.borrow().name.clone();
        let mut text = match imp.source.borrow().state.as_str() {
            "paused" => gettext(
                "“{name}” is paused and stays paused: it is copied as it is at this moment.",
            ),
            _ => gettext(
                "“{name}” keeps running: it is copied as it is at this moment, without stopping it.",
            ),
        }
        .replace("{name}", &name);
        let more = match consistency {
            Some("filesystem") => gettext(
                "Its guest agent answers, so its filesystems are frozen for that moment: the copy is filesystem-consistent.",
            ),
            Some("crash") => gettext(
                "No guest agent answers, so the copy is crash-consistent, as after a power cut: install and start the QEMU guest agent in the VM for a filesystem-consistent copy.",
            ),
            _ => String::new(),
        };
        if !more.is_empty() {
            text = format!("{text} {more}");
        }
        imp.live_label.set_label(&text);
        imp.live_label.set_visible(true);
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

/// "8.7 MiB": binary units, as the details view and vmclonectl show sizes.
fn size_text(bytes: u64) -> String {
    glib::format_size_full(bytes, glib::FormatSizeFlags::IEC_UNITS).to_string()
}

/// A running or paused source is cloned live.
fn is_live(vm: &VmInfo) -> bool {
    matches!(vm.state.as_str(), "running" | "paused")
}

fn is_name_error(err: &ClientError) -> bool {
    matches!(
        err.name(),
        Some("org.vmclone.Error.NameExists" | "org.vmclone.Error.InvalidName")
    )
}

/// "vda: copied", "sda: shared with the source", …
fn disk_title(disk: &PlannedDisk) -> String {
    let what = match disk.action.as_str() {
        "copy" | "volume" => gettext("copied"),
        "reflink" => gettext("copied by reflink (instantly, sharing blocks until changed)"),
        "live" => gettext("copied as it is at this moment"),
        "overlay" => gettext("linked to the template’s disk"),
        "shared" => gettext("shared with the source (read-only or shareable)"),
        other => other.to_owned(),
    };
    // Translators: a disk of the plan, e.g. "vda: copied"
    gettext("{disk}: {what}")
        .replace("{disk}", &disk.target)
        .replace("{what}", &what)
}

fn disk_subtitle(disk: &PlannedDisk) -> String {
    if disk.action == "shared" {
        return disk.source.clone();
    }
    if !disk.copies_bytes() {
        return disk.destination.clone();
    }
    // Translators: how much of a disk is copied where, e.g. "300 MB to /srv/vms/web02.qcow2"
    gettext("{size} to {destination}")
        .replace("{size}", &size_text(disk.bytes_to_copy()))
        .replace("{destination}", &disk.destination)
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
