//! One clone in the jobs popover: its name, how far it is, how fast it goes,
//! the time left, and Cancel.

use std::time::{Duration, Instant};

use gettextrs::{gettext, ngettext};
use gtk::glib;
use gtk::prelude::*;
use gtk::subclass::prelude::*;

mod imp {
    use std::cell::RefCell;

    use gtk::glib;
    use gtk::subclass::prelude::*;

    use crate::transfer_rate::TransferRate;

    #[derive(Default, gtk::CompositeTemplate)]
    #[template(resource = "/org/vmclone/VmClone/job_row.ui")]
    pub struct JobRow {
        #[template_child]
        pub title_label: TemplateChild<gtk::Label>,
        #[template_child]
        pub status_label: TemplateChild<gtk::Label>,
        #[template_child]
        pub progress_bar: TemplateChild<gtk::ProgressBar>,
        #[template_child]
        pub cancel_button: TemplateChild<gtk::Button>,
        pub rate: RefCell<TransferRate>,
    }

    #[glib::object_subclass]
    impl ObjectSubclass for JobRow {
        const NAME: &'static str = "VmCloneJobRow";
        type Type = super::JobRow;
        type ParentType = gtk::Box;

        fn class_init(klass: &mut Self::Class) {
            klass.bind_template();
        }

        fn instance_init(obj: &glib::subclass::InitializingObject<Self>) {
            obj.init_template();
        }
    }

    impl ObjectImpl for JobRow {}
    impl WidgetImpl for JobRow {}
    impl BoxImpl for JobRow {}
}

glib::wrapper! {
    pub struct JobRow(ObjectSubclass<imp::JobRow>)
        @extends gtk::Widget, gtk::Box,
        @implements gtk::Buildable, gtk::ConstraintTarget, gtk::Orientable;
}

impl JobRow {
    /// A row for cloning `source` as `new_name`; Cancel turns insensitive
    /// and calls `on_cancel`, until `cancel_failed`.
    pub fn new(source: &str, new_name: &str, on_cancel: impl Fn(&JobRow) + 'static) -> JobRow {
        let row: JobRow = glib::Object::new();
        let imp = row.imp();
        imp.title_label.set_label(new_name);
        imp.title_label.set_tooltip_text(Some(
            &gettext("A clone of “{name}”").replace("{name}", source),
        ));
        imp.status_label.set_label(&gettext("Starting…"));
        crate::a11y::set_label(
            &*imp.cancel_button,
            // Translators: what a screen reader says for the Cancel button of one clone
            &gettext("Cancel cloning “{source}” as “{name}”")
                .replace("{source}", source)
                .replace("{name}", new_name),
        );
        let this = row.downgrade();
        imp.cancel_button.connect_clicked(move |button| {
            button.set_sensitive(false);
            if let Some(row) = this.upgrade() {
                on_cancel(&row);
            }
        });
        row
    }

    /// The clone waits: for the service's copy slot, or for the clones
    /// before it in a batch.
    pub fn set_waiting(&self) {
        let imp = self.imp();
        imp.status_label.set_label(&gettext("Waiting to start…"));
        imp.progress_bar.set_fraction(0.0);
    }

    /// `phase` is the job's `Phase`, shown before the bytes.
    pub fn set_progress(&self, done: u64, total: u64, phase: &str) {
        let imp = self.imp();
        let phase = phase_text(phase);
        if total == 0 || phase.as_ref().is_some_and(|_| done == 0) {
            imp.progress_bar.pulse();
            imp.status_label
                .set_label(&phase.unwrap_or_else(|| gettext("Starting…")));
            return;
        }
        imp.progress_bar
            .set_fraction((done as f64 / total as f64).clamp(0.0, 1.0));
        let mut rate = imp.rate.borrow_mut();
        rate.update(Instant::now(), done);
        let size = |n: u64| glib::format_size(n).to_string();
        // Translators: progress of a copy, e.g. "1.2 GB of 8.6 GB"
        let mut parts: Vec<String> = phase.into_iter().collect();
        parts.push(
            gettext("{done} of {total}")
                .replace("{done}", &size(done))
                .replace("{total}", &size(total)),
        );
        if let Some(bps) = rate.bytes_per_second() {
            // Translators: a copy's speed, e.g. "85.3 MB/s"
            parts.push(gettext("{size}/s").replace("{size}", &size(bps as u64)));
        }
        if let Some(left) = rate.time_left(done, total) {
            parts.push(time_left(left));
        }
        // Translators: the separator between the parts of a clone's progress
        imp.status_label.set_label(&parts.join(&gettext(" · ")));
    }

    /// The service refused to cancel: the clone goes on and Cancel can be tried again.
    pub fn cancel_failed(&self) {
        self.imp().cancel_button.set_sensitive(true);
    }

    pub fn new_name(&self) -> glib::GString {
        self.imp().title_label.label()
    }

    pub fn status_text(&self) -> glib::GString {
        self.imp().status_label.label()
    }

    pub fn progress_bar(&self) -> gtk::ProgressBar {
        self.imp().progress_bar.get()
    }

    pub fn cancel_button(&self) -> gtk::Button {
        self.imp().cancel_button.get()
    }
}

/// What the clone is doing now, in words; `None` for no or an unknown phase.
fn phase_text(phase: &str) -> Option<String> {
    match phase {
        "copying" => Some(gettext("Copying the disks")),
        "customizing" => Some(gettext("Giving the clone its own identity")),
        "defining" => Some(gettext("Defining the clone")),
        _ => None,
    }
}

/// "12 seconds left", "3 minutes left", "2 hours left", rounded up.
fn time_left(left: Duration) -> String {
    let secs = left.as_secs().max(1);
    let (n, text) = if secs < 60 {
        (
            secs,
            ngettext("{n} second left", "{n} seconds left", secs as u32),
        )
    } else if secs < 3600 {
        let n = secs.div_ceil(60);
        (n, ngettext("{n} minute left", "{n} minutes left", n as u32))
    } else {
        let n = secs.div_ceil(3600);
        (n, ngettext("{n} hour left", "{n} hours left", n as u32))
    };
    text.replace("{n}", &n.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn time_left_reads_in_the_largest_whole_unit_rounded_up() {
        assert_eq!(time_left(Duration::from_millis(300)), "1 second left");
        assert_eq!(time_left(Duration::from_secs(42)), "42 seconds left");
        assert_eq!(time_left(Duration::from_secs(61)), "2 minutes left");
        assert_eq!(time_left(Duration::from_secs(3600)), "1 hour left");
        assert_eq!(time_left(Duration::from_secs(3601)), "2 hours left");
    }
}
