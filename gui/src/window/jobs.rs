//! Clones the window started: a progress row per clone in the jobs popover,
//! Cancel, and the toasts that tell how each request ended (one request is
//! one clone, or the copies of one `CloneVms`).

use std::cell::RefCell;
use std::rc::Rc;

use adw::prelude::*;
use adw::subclass::prelude::*;
use gettextrs::{gettext, ngettext};
use gtk::glib;

use super::Window;
use crate::client::{ClientError, JobEvent, JobHandle, JobOutcome, VmInfo};
use crate::clone_dialog::CloneRequest;
use crate::job_row::JobRow;

/// The clones of one request and how those that ended did.
pub(super) struct Batch {
    /// Names the request's notification, so later clones of it replace it.
    pub id: u64,
    pub source: VmInfo,
    pub size: usize,
    pub ended: RefCell<Ended>,
}

#[derive(Default)]
pub(super) struct Ended {
    /// (name, UUID) of each clone made.
    pub made: Vec<(String, String)>,
    pub cancelled: usize,
    /// (name, why) of each clone that failed.
    pub failed: Vec<(String, ClientError)>,
}

impl Ended {
    fn count(&self) -> usize {
        self.made.len() + self.cancelled + self.failed.len()
    }
}

impl Window {
    /// Starts what the clone dialog asked for: `StartClone` for one name,
    /// `CloneVms` for several.
    pub(super) fn start_clones(&self, request: CloneRequest) {
        let client = self.client();
        let this = self.downgrade();
        glib::spawn_future_local(async move {
            let CloneRequest {
                source,
                names,
                options,
            } = request;
            let started = match names.as_slice() {
                [name] => client
                    .start_clone(&source.id, name, &options)
                    .await
                    .map(|job| vec![job]),
                _ => client.clone_vms(&source.id, &names, &options).await,
            };
            let Some(win) = this.upgrade() else { return };
            let jobs = match started {
                Ok(jobs) => jobs,
                Err(err) => return win.clone_failed(&source.name, &err),
            };
            let imp = win.imp();
            imp.batches.set(imp.batches.get() + 1);
            let batch = Rc::new(Batch {
                id: imp.batches.get(),
                source,
                size: jobs.len(),
                ended: RefCell::default(),
            });
            for (name, job) in names.into_iter().zip(jobs) {
                win.follow_job(batch.clone(), name, job);
            }
            // Show where the progress is, as Files and Web do for their transfers.
            if win.is_active() {
                imp.jobs_popover.popup();
            }
        });
    }

    /// Rows for the clones this user already had going when the window
    /// opened (a `vmclonectl clone --no-wait`, an app that was quit), so
    /// they can be followed and cancelled here too. Once, after the first list.
    pub(super) fn adopt_running_jobs(&self) {
        let imp = self.imp();
        if imp.jobs_adopted.replace(true) {
            return;
        }
        let client = self.client();
        let this = self.downgrade();
        glib::spawn_future_local(async move {
            // Not knowing them is no reason to bother anyone: clones this
            // window starts are followed either way.
            let Ok(jobs) = client.running_jobs().await else {
                return;
            };
            let Some(win) = this.upgrade() else { return };
            for (source_id, name, job) in jobs {
                let imp = win.imp();
                let source = match imp.vms.find(&source_id) {
                    Some((_, vm)) => vm.info(),
                    None => VmInfo {
                        name: source_id.clone(),
                        id: source_id,
                        ..VmInfo::default()
                    },
                };
                imp.batches.set(imp.batches.get() + 1);
                let batch = Rc::new(Batch {
                    id: imp.batches.get(),
                    source,
                    size: 1,
                    ended: RefCell::default(),
                });
                win.follow_job(batch, name, job);
            }
        });
    }

    fn follow_job(&self, batch: Rc<Batch>, name: String, job: JobHandle) {
        let imp = self.imp();
        let job = Rc::new(job);
        // Clones go on when the window closes; see background.rs.
        let hold = imp.app.get().map(|app| app.hold());
        let events = job.events.clone();
        let this = self.downgrade();
        let row = JobRow::new(&batch.source.name, &name, {
            let (this, source) = (this.clone(), batch.source.name.clone());
            move |row| {
                if let Some(win) = this.upgrade() {
                    win.cancel_job(&job, row, &source);
                }
            }
        });
        imp.jobs_box.append(&row);
        self.jobs_changed(1);
        glib::spawn_future_local(async move {
            let outcome = loop {
                match events.recv().await {
                    Ok(JobEvent::Waiting) => row.set_waiting(),
                    Ok(JobEvent::Progress { done, total, phase }) => {
                        row.set_progress(done, total, &phase)
                    }
                    Ok(JobEvent::Finished(outcome)) => break outcome,
                    // The task following the job ended without a word.
                    Err(_) => {
                        break JobOutcome::Failed(ClientError::Unreachable(
                            "the job's progress stopped".into(),
                        ))
                    }
                }
            };
            let Some(win) = this.upgrade() else { return };
            win.imp().jobs_box.remove(&row);
            win.jobs_changed(-1);
            win.clone_ended(&batch, name, outcome);
            // Before this clone lets go of the app: a hidden window keeps it a while longer.
            win.after_job();
            drop(hold);
        });
    }

    fn jobs_changed(&self, by: isize) {
        let imp = self.imp();
        let running = imp.running_jobs.get().saturating_add_signed(by);
        imp.running_jobs.set(running);
        imp.jobs_button.set_visible(running > 0);
        if running == 0 {
            imp.jobs_popover.popdown();
        }
    }

    /// Cancel on `row` was pressed: ask the service to stop `job`. The
    /// outcome comes as the job's end; a refusal lets Cancel be tried again.
    fn cancel_job(&self, job: &Rc<JobHandle>, row: &JobRow, source: &str) {
        let this = self.downgrade();
        let (job, row, source) = (job.clone(), row.clone(), source.to_owned());
        glib::spawn_future_local(async move {
            let Err(err) = job.cancel().await else { return };
            row.cancel_failed();
            if let Some(win) = this.upgrade() {
                win.show_error_toast(
                    gettext("Could not cancel cloning “{name}”").replace("{name}", &source),
                    &err,
                );
            }
        });
    }

    fn clone_ended(&self, batch: &Batch, name: String, outcome: JobOutcome) {
        let mut ended = batch.ended.borrow_mut();
        match outcome {
            JobOutcome::Succeeded { cloned_vm_id } => {
                ended.made.push((name, cloned_vm_id));
                self.notify_made(batch, &ended);
            }
            JobOutcome::Cancelled => ended.cancelled += 1,
            JobOutcome::Failed(err) => ended.failed.push((name, err)),
        }
        if ended.count() == batch.size {
            drop(ended);
            self.batch_ended(batch);
        }
    }

    /// Every clone of `batch` ended: one toast for those made, one for those
    /// cancelled, one for those that failed.
    fn batch_ended(&self, batch: &Batch) {
        let ended = batch.ended.borrow();
        let source = &batch.source.name;
        if let Some((name, id)) = ended.made.first() {
            let title = match batch.size {
                1 => gettext("“{name}” is ready").replace("{name}", name),
                _ => ngettext(
                    "{n} clone of “{source}” is ready",
                    "{n} clones of “{source}” are ready",
                    ended.made.len() as u32,
                )
                .replace("{n}", &ended.made.len().to_string())
                .replace("{source}", source),
            };
            let toast = adw::Toast::new(&markup(&title));
            toast.set_button_label(Some(&gettext("_Show")));
            toast.set_action_name(Some("win.select-vm"));
            toast.set_action_target_value(Some(&id.to_variant()));
            self.add_toast(toast);
        }
        if ended.cancelled > 0 {
            let title = match batch.size {
                1 => gettext("Cloning “{name}” was cancelled; nothing was left behind")
                    .replace("{name}", source),
                _ => ngettext(
                    "{n} clone of “{source}” was cancelled; nothing of it was left behind",
                    "{n} clones of “{source}” were cancelled; nothing of them was left behind",
                    ended.cancelled as u32,
                )
                .replace("{n}", &ended.cancelled.to_string())
                .replace("{source}", source),
            };
            self.add_toast(adw::Toast::new(&markup(&title)));
        }
        match ended.failed.as_slice() {
            [] => {}
            [(_, err)] => self.clone_failed(source, err),
            [(_, first), ..] => {
                // Details lists each clone with the service's words for it.
                let message = ended
                    .failed
                    .iter()
                    .map(|(name, err)| format!("{name}: {}", err.user_message()))
                    .collect::<Vec<_>>()
                    .join("\n");
                let err = ClientError::Service {
                    name: first.name().unwrap_or_default().to_owned(),
                    message,
                };
                self.clone_failed(source, &err);
            }
        }
        if let [(_, err), ..] = ended.failed.as_slice() {
            self.notify_failed(batch, err);
        }
    }

    pub(super) fn clone_failed(&self, source: &str, err: &ClientError) {
        let heading = gettext("Could not clone “{name}”").replace("{name}", source);
        self.show_error_toast(heading, err);
    }

    /// A toast saying what went wrong in a translated sentence; Details shows
    /// `heading` and the service's own, fuller words.
    pub(super) fn show_error_toast(&self, heading: String, err: &ClientError) {
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

    pub(super) fn add_toast(&self, toast: adw::Toast) {
        self.imp().toast_overlay.add_toast(toast);
    }
}

/// Toast titles are Pango markup in libadwaita 1.2; VM names may hold `&<>`.
pub(super) fn markup(text: &str) -> String {
    glib::markup_escape_text(text).to_string()
}
