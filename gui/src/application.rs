//! The application: one main window, the About window, keyboard shortcuts.

use adw::prelude::*;
use gettextrs::gettext;
use gtk::{gio, glib};

use crate::client::{Client, ServiceEvent};
use crate::config;
use crate::window::Window;

/// Builds the application; activating it opens a window on `client`, which
/// main starts before GTK so the first ListVms overlaps start-up. Tests pass
/// `None` and make their windows themselves.
pub fn new(client: Option<(Client, async_channel::Receiver<ServiceEvent>)>) -> adw::Application {
    let app = adw::Application::builder()
        .application_id(config::APP_ID)
        .resource_base_path(config::RESOURCE_BASE)
        .build();
    let client = std::cell::RefCell::new(client);
    app.connect_activate(move |app| {
        if let Some(window) = app.active_window() {
            GtkWindowExt::present(&window);
            return;
        }
        let Some((client, events)) = client.borrow_mut().take() else {
            return;
        };
        let window = Window::new(app, client, events);
        if std::env::var_os("VMCLONE_BENCH_FIRST_FRAME").is_some() {
            report_first_frame_with_rows(app, &window);
        }
        GtkWindowExt::present(&window);
    });
    let about = gio::ActionEntry::builder("about")
        .activate(|app: &adw::Application, _, _| show_about(app))
        .build();
    let quit = gio::ActionEntry::builder("quit")
        .activate(|app: &adw::Application, _, _| app.quit())
        .build();
    app.add_action_entries([about, quit]);
    app.set_accels_for_action("app.quit", &["<Control>q"]);
    app.set_accels_for_action("window.close", &["<Control>w"]);
    app
}

fn show_about(app: &adw::Application) {
    let about = adw::AboutWindow::builder()
        .application_name(gettext("VM Clone"))
        .application_icon(config::APP_ID)
        .developer_name(gettext("The vmclone developers"))
        .version(config::VERSION)
        .comments(gettext(
            "Make independent, bootable copies of shut-off virtual machines",
        ))
        .license_type(gtk::License::Gpl20)
        // Translators: put your names here, one per line
        .translator_credits(gettext("translator-credits"))
        .modal(true)
        .build();
    if let Some(window) = app.active_window() {
        about.set_transient_for(Some(&window));
    }
    about.present();
}

/// For tools/bench-gui.sh: after the first frame whose paint included VM
/// rows, print the wall-clock time (µs since the epoch) and quit. The script
/// compares it with the time it launched the process.
fn report_first_frame_with_rows(app: &adw::Application, window: &Window) {
    let app = app.clone();
    // The first tick hands us the frame clock; rows exist once a layout made them,
    // and a row existing at after-paint was drawn in that same frame.
    window.add_tick_callback(move |window, clock| {
        let app = app.clone();
        let window = window.downgrade();
        let reported = std::cell::Cell::new(false);
        clock.connect_after_paint(move |_| {
            let Some(window) = window.upgrade() else {
                return;
            };
            let rows = window.visible_rows().len();
            if rows > 0 && !reported.replace(true) {
                println!("first-frame-with-rows {} rows={rows}", glib::real_time());
                app.quit();
            }
        });
        glib::ControlFlow::Break
    });
}
