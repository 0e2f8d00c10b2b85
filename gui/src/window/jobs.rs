//! Clones the window started: a progress bar per job, Cancel, and the toasts
//! that tell how each ended.

use std::rc::Rc;

use adw::prelude::*;
use adw::subclass::prelude::*;
use gettextrs::gettext;
use gtk::glib;

use super::Window;
use crate::client::{ClientError, JobEvent, JobHandle, JobOutcome, Storage, VmInfo};
use crate::job_bar::JobBar;

impl Window {
    pub(super) fn start_clone(&self, source: &VmInfo, new_name: String, storage: Storage) {
        let client = self.client();
        let this = self.downgrade();
        let source = source.clone();
        glib::spawn_future_local(async move {
            let started = client.start_clone(&source.id, &new_name, storage).await;
            let Some(win) = this.upgrade() else { return };
            let job = match started {
                Ok(job) => Rc::new(job),
                Err(err) => {
                    win.clone_failed(&source.name, &err);
                    return;
                }
            };
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

    /// The Details of an error toast.
    pub(super) fn show_error(&self, heading: &str, message: &str) {
        let dialog = adw::MessageDialog::new(Some(self), Some(heading), Some(message));
        dialog.add_response("close", &gettext("_Close"));
        dialog.set_default_response(Some("close"));
        dialog.set_close_response("close");
        dialog.present();
    }

    fn add_toast(&self, toast: adw::Toast) {
        self.imp().toast_overlay.add_toast(toast);
    }
}

/// Toast titles are Pango markup in libadwaita 1.2; VM names may hold `&<>`.
fn markup(text: &str) -> String {
    glib::markup_escape_text(text).to_string()
}
