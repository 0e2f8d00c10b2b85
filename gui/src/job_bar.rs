//! A running clone above the list: what is copied, how far, and Cancel.

use gettextrs::gettext;
use gtk::glib;
use gtk::prelude::*;
use gtk::subclass::prelude::*;

mod imp {
    use gtk::glib;
    use gtk::subclass::prelude::*;

    #[derive(Default, gtk::CompositeTemplate)]
    #[template(resource = "/org/vmclone/VmClone/job_bar.ui")]
    pub struct JobBar {
        #[template_child]
        pub title_label: TemplateChild<gtk::Label>,
        #[template_child]
        pub progress_bar: TemplateChild<gtk::ProgressBar>,
        #[template_child]
        pub cancel_button: TemplateChild<gtk::Button>,
    }

    #[glib::object_subclass]
    impl ObjectSubclass for JobBar {
        const NAME: &'static str = "VmCloneJobBar";
        type Type = super::JobBar;
        type ParentType = gtk::Box;

        fn class_init(klass: &mut Self::Class) {
            klass.bind_template();
        }

        fn instance_init(obj: &glib::subclass::InitializingObject<Self>) {
            obj.init_template();
        }
    }

    impl ObjectImpl for JobBar {}
    impl WidgetImpl for JobBar {}
    impl BoxImpl for JobBar {}
}

glib::wrapper! {
    pub struct JobBar(ObjectSubclass<imp::JobBar>)
        @extends gtk::Widget, gtk::Box,
        @implements gtk::Buildable, gtk::ConstraintTarget, gtk::Orientable;
}

impl JobBar {
    /// A bar for cloning `source` as `new_name`; Cancel turns insensitive
    /// and calls `on_cancel`, until `cancel_failed`.
    pub fn new(source: &str, new_name: &str, on_cancel: impl Fn(&JobBar) + 'static) -> JobBar {
        let bar: JobBar = glib::Object::new();
        let imp = bar.imp();
        imp.title_label.set_label(
            &gettext("Cloning “{source}” to “{name}”…")
                .replace("{source}", source)
                .replace("{name}", new_name),
        );
        imp.progress_bar.set_text(Some(&gettext("Starting…")));
        let this = bar.downgrade();
        imp.cancel_button.connect_clicked(move |button| {
            button.set_sensitive(false);
            if let Some(bar) = this.upgrade() {
                on_cancel(&bar);
            }
        });
        bar
    }

    pub fn set_progress(&self, done: u64, total: u64) {
        let bar = &self.imp().progress_bar;
        if total == 0 {
            bar.pulse();
            return;
        }
        bar.set_fraction((done as f64 / total as f64).clamp(0.0, 1.0));
        let size = |n| glib::format_size_full(n, glib::FormatSizeFlags::IEC_UNITS);
        // Translators: progress of a copy, e.g. "1.2 GiB of 8.0 GiB"
        bar.set_text(Some(
            &gettext("{done} of {total}")
                .replace("{done}", &size(done))
                .replace("{total}", &size(total)),
        ));
    }

    /// The service refused to cancel: the job goes on and Cancel can be tried again.
    pub fn cancel_failed(&self) {
        self.imp().cancel_button.set_sensitive(true);
    }

    pub fn progress_bar(&self) -> gtk::ProgressBar {
        self.imp().progress_bar.get()
    }

    pub fn cancel_button(&self) -> gtk::Button {
        self.imp().cancel_button.get()
    }
}
