//! The application: one main window (kept while clones run after it was
//! closed), the About window, keyboard shortcuts, and the action the
//! notifications use to show a VM.

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
        if let Some(window) = main_window(app) {
            window.restore();
            return;
        }
        let Some((client, events)) = client.borrow_mut().take() else {
            return;
        };
        let window = Window::new(app, client, events);
        match std::env::var("VMCLONE_BENCH").as_deref() {
            Ok("first-frame") => bench::first_frame_with_rows(app, &window),
            Ok("details") => bench::details_shown(app, &window),
            Ok("plan") => bench::plan_updated(app, &window),
            _ => {}
        }
        GtkWindowExt::present(&window);
    });
    let about = gio::ActionEntry::builder("about")
        .activate(|app: &adw::Application, _, _| show_about(app))
        .build();
    let quit = gio::ActionEntry::builder("quit")
        .activate(|app: &adw::Application, _, _| app.quit())
        .build();
    // A notification's action: the window (back from the background) with the VM.
    let show_vm = gio::ActionEntry::builder("show-vm")
        .parameter_type(Some(glib::VariantTy::STRING))
        .activate(|app: &adw::Application, _, id| {
            let id = id.and_then(|v| v.str()).unwrap_or_default();
            if let Some(window) = main_window(app) {
                window.restore();
                window.select_vm(id);
            }
        })
        .build();
    app.add_action_entries([about, quit, show_vm]);
    for (action, accels) in [
        ("app.quit", &["<Control>q"][..]),
        ("window.close", &["<Control>w"]),
        ("win.search", &["<Control>f"]),
        ("win.reload", &["<Control>r"]),
        ("win.clone-selected", &["<Control>n"]),
        ("win.shortcuts", &["<Control>question"]),
    ] {
        app.set_accels_for_action(action, accels);
    }
    app
}

/// The app's window: shown, or hidden while its clones run.
fn main_window(app: &adw::Application) -> Option<Window> {
    app.windows()
        .into_iter()
        .find_map(|w| w.downcast::<Window>().ok())
        .or_else(Window::in_background)
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

/// For tools/bench-gui.sh (`VMCLONE_BENCH=first-frame`, `details` or `plan`): print
/// a time once a frame shows what is measured, then quit.
mod bench {
    use std::cell::Cell;
    use std::rc::Rc;

    use adw::prelude::*;
    use gtk::glib;

    use crate::window::Window;

    /// Calls `f` after every painted frame of `window` until it returns true.
    fn after_each_frame<W: IsA<gtk::Widget>>(window: &W, f: impl Fn(&W) -> bool + 'static) {
        let f = Rc::new(f);
        // The first tick hands us the frame clock.
        window.add_tick_callback(move |window, clock| {
            let (window, f) = (window.downgrade(), f.clone());
            let done = Cell::new(false);
            clock.connect_after_paint(move |_| {
                if let Some(window) = window.upgrade() {
                    if !done.get() && f(&window) {
                        done.set(true);
                    }
                }
            });
            glib::ControlFlow::Break
        });
    }

    /// The wall-clock time (µs since the epoch) of the end of the first
    /// frame whose paint included VM rows; the script compares it with the
    /// time it launched the process. Rows exist once a layout made them,
    /// and a row existing at after-paint was drawn in that same frame.
    pub fn first_frame_with_rows(app: &adw::Application, window: &Window) {
        let app = app.clone();
        after_each_frame(window, move |window| {
            let rows = window.visible_rows().len();
            if rows == 0 {
                return false;
            }
            println!("first-frame-with-rows {} rows={rows}", glib::real_time());
            app.quit();
            true
        });
    }

    /// A second after the list is shown (as a person would click), selects
    /// the third VM, then the sixth, and prints how long each took (µs)
    /// until a painted frame showed that VM's details from `GetVm`. The
    /// first selection also shows the details view for the first time.
    pub fn details_shown(app: &adw::Application, window: &Window) {
        let app = app.clone();
        let scheduled = Cell::new(false);
        let times: Rc<std::cell::RefCell<Vec<i64>>> = Rc::default();
        let selected: Rc<Cell<Option<(String, i64)>>> = Rc::default();
        // A VM whose row is on screen, as for a click.
        let select = |window: &Window, selected: &Cell<Option<(String, i64)>>, n: usize| {
            let id = window.shown_vms()[n].id.clone();
            let started = glib::monotonic_time();
            window.select_vm(&id);
            selected.set(Some((id, started)));
        };
        after_each_frame(window, move |window| {
            if !scheduled.get() {
                if window.visible_rows().len() < 6 {
                    return false;
                }
                scheduled.set(true);
                let (window, selected) = (window.downgrade(), selected.clone());
                glib::timeout_add_local_once(std::time::Duration::from_secs(1), move || {
                    if let Some(window) = window.upgrade() {
                        select(&window, &selected, 2);
                    }
                });
                return false;
            }
            let Some((id, started)) = selected.take() else {
                return false;
            };
            if window.details_loaded_id().as_deref() != Some(id.as_str()) {
                selected.set(Some((id, started)));
                return false;
            }
            times.borrow_mut().push(glib::monotonic_time() - started);
            if times.borrow().len() == 1 {
                select(window, &selected, 5);
                return false;
            }
            let times = times.borrow();
            println!("details-shown {} {}", times[0], times[1]);
            app.quit();
            true
        });
    }

    /// A second after the list is shown, opens the clone dialog of the first
    /// shut-off VM that is no template; once its first plan is shown, changes
    /// the vCPUs, then the number of copies, and prints how long each took
    /// (µs) until a painted frame showed the plan for the change.
    pub fn plan_updated(app: &adw::Application, window: &Window) {
        let app = app.clone();
        let opened = Cell::new(false);
        after_each_frame(window, move |window| {
            if opened.get() || window.visible_rows().len() < 3 {
                return false;
            }
            opened.set(true);
            let (window, app) = (window.downgrade(), app.clone());
            glib::timeout_add_local_once(std::time::Duration::from_secs(1), move || {
                let Some(window) = window.upgrade() else {
                    return;
                };
                let Some(vm) = window
                    .shown_vms()
                    .into_iter()
                    .find(|vm| vm.state == "shutoff" && !vm.is_template)
                else {
                    return;
                };
                let id = vm.id;
                let _ = WidgetExt::activate_action(&window, "win.clone", Some(&id.to_variant()));
                if let Some(dialog) = window.clone_dialog() {
                    measure_plans(app, &dialog);
                }
            });
            true
        });
    }

    fn measure_plans(app: adw::Application, dialog: &crate::clone_dialog::CloneDialog) {
        let times: Rc<std::cell::RefCell<Vec<i64>>> = Rc::default();
        let started: Rc<Cell<Option<i64>>> = Rc::default();
        after_each_frame(dialog, move |dialog| {
            if dialog.plan().is_none() {
                return false;
            }
            if let Some(start) = started.take() {
                times.borrow_mut().push(glib::monotonic_time() - start);
            }
            let change = times.borrow().len();
            started.set(Some(glib::monotonic_time()));
            match change {
                0 => dialog
                    .vcpus_spin()
                    .set_value(dialog.vcpus_spin().value() + 1.0),
                1 => dialog.copies_spin().set_value(3.0),
                _ => {
                    let times = times.borrow();
                    println!("plan-updated {} {}", times[0], times[1]);
                    app.quit();
                    return true;
                }
            }
            false
        });
    }
}
