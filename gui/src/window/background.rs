//! Clones outlive the window: closing it while clones run only hides it;
//! every running clone holds the application (`gio::Application::hold`),
//! so the app ends once they are done. A clone that ends while the window
//! is hidden or not focused sends a desktop notification whose action
//! brings the window back with the new VM selected (`app.show-vm`).

use std::time::Duration;

use adw::prelude::*;
use adw::subclass::prelude::*;
use gettextrs::{gettext, ngettext};
use gtk::{gio, glib};

use super::jobs::{Batch, Ended};
use super::Window;
use crate::client::ClientError;

/// How long a hidden window stays after its last clone, so that the
/// notification's action can still open it; then the app ends.
const LINGER: Duration = Duration::from_secs(5 * 60);

impl Window {
    /// The window's close request: while clones run, hide instead, and
    /// leave the application to the clones' holds.
    pub(super) fn close_to_background(&self) -> glib::Propagation {
        if self.imp().running_jobs.get() == 0 {
            return glib::Propagation::Proceed;
        }
        self.set_visible(false);
        self.set_application(None::<&gtk::Application>);
        glib::Propagation::Stop
    }

    /// A clone ended. A hidden window with no clone left closes after
    /// [`LINGER`] unless it is brought back by then.
    pub(super) fn after_job(&self) {
        if self.imp().running_jobs.get() > 0 || self.application().is_some() {
            return;
        }
        let Some(app) = self.imp().app.get() else {
            return;
        };
        let hold = app.hold();
        let this = self.downgrade();
        glib::timeout_add_local_once(LINGER, move || {
            if let Some(win) = this.upgrade() {
                if win.application().is_none() && win.imp().running_jobs.get() == 0 {
                    win.destroy();
                }
            }
            drop(hold);
        });
    }

    /// Shows the window again, back in its application when it was hidden.
    pub fn restore(&self) {
        if self.application().is_none() {
            self.set_application(self.imp().app.get());
        }
        self.present();
    }

    /// A window hidden while its clones run (or just ended), if any.
    pub fn in_background() -> Option<Window> {
        let toplevels = gtk::Window::toplevels();
        (0..toplevels.n_items())
            .filter_map(|i| toplevels.item(i).and_downcast::<Window>())
            .find(|win| win.application().is_none() && !win.is_visible())
    }

    /// Whether the person looks elsewhere: a notification tells them then.
    fn is_away(&self) -> bool {
        !self.is_visible() || !self.is_active()
    }

    fn notify(&self, id: &str, notification: &gio::Notification) {
        if let Some(app) = self.imp().app.get() {
            app.send_notification(Some(id), notification);
        }
    }

    /// A clone of `batch` was made; the request's notification says how many.
    pub(super) fn notify_made(&self, batch: &Batch, ended: &Ended) {
        let Some((name, id)) = ended.made.last().filter(|_| self.is_away()) else {
            return;
        };
        let source = &batch.source.name;
        let title = match batch.size {
            1 => gettext("“{name}” is ready").replace("{name}", name),
            n => ngettext(
                "{made} of {n} clone of “{source}” is ready",
                "{made} of {n} clones of “{source}” are ready",
                n as u32,
            )
            .replace("{made}", &ended.made.len().to_string())
            .replace("{n}", &n.to_string())
            .replace("{source}", source),
        };
        let notification = gio::Notification::new(&title);
        notification.set_body(Some(
            &gettext("“{name}” is a new clone of “{source}”.")
                .replace("{name}", name)
                .replace("{source}", source),
        ));
        let target = id.to_variant();
        notification.set_default_action_and_target_value("app.show-vm", Some(&target));
        notification.add_button_with_target_value(&gettext("Show"), "app.show-vm", Some(&target));
        self.notify(&format!("clone-{}", batch.id), &notification);
    }

    /// Clones of `batch` failed; `err` is the first one's reason.
    pub(super) fn notify_failed(&self, batch: &Batch, err: &ClientError) {
        if !self.is_away() {
            return;
        }
        let source = &batch.source;
        let notification = gio::Notification::new(
            &gettext("Could not clone “{name}”").replace("{name}", &source.name),
        );
        notification.set_body(Some(&err.summary()));
        notification
            .set_default_action_and_target_value("app.show-vm", Some(&source.id.to_variant()));
        self.notify(&format!("clone-{}-failed", batch.id), &notification);
    }
}
