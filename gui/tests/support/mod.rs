//! A real window for the GUI tests: our own `Xvfb` display, a private session
//! bus, the real `vmclone-service` on a private "system" bus with libvirt's
//! test driver, and the app's own widgets driven in this process.
//!
//! GTK must live on the main thread, so these test binaries use
//! `harness = false` and run their scenarios one after the other.

#![allow(dead_code)] // each test binary uses a different part of this module

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use adw::prelude::*;
use gtk::{gdk, glib, graphene};
use vmclone_tests::process::run;
use vmclone_tests::{file_vm_xml, ChildGuard, PrivateBus};

/// The X server, session bus and GTK set up for this process.
pub struct Desktop {
    _xvfb: ChildGuard,
    _session_bus: PrivateBus,
    pub app: adw::Application,
}

impl Desktop {
    /// Starts `Xvfb` on a free display and a session bus, points GTK at them
    /// and initialises GTK, libadwaita, gettext and the app's resources.
    pub fn start() -> Desktop {
        let (display, xvfb) = start_xvfb();
        let session_bus = PrivateBus::start();
        // SAFETY: still single-threaded: nothing else runs before GTK starts.
        unsafe {
            std::env::set_var("DISPLAY", format!(":{display}"));
            std::env::set_var("GDK_BACKEND", "x11");
            // No GPU under Xvfb: the cairo renderer draws everything in software.
            std::env::set_var("GSK_RENDERER", "cairo");
            std::env::set_var("DBUS_SESSION_BUS_ADDRESS", session_bus.address());
            std::env::set_var("GSETTINGS_BACKEND", "memory");
            // GTK's own accessibility backend for tests: it keeps every
            // accessible property, which the tests read back, and talks to no bus.
            std::env::set_var("GTK_A11Y", "test");
            std::env::set_var("NO_AT_BRIDGE", "1");
            std::env::remove_var("WAYLAND_DISPLAY");
        }
        vmclone::i18n::init();
        gtk::init().expect("GTK starts on the Xvfb display");
        adw::init().expect("libadwaita starts");
        vmclone::register_resources();
        // The app's own Application (actions, accelerators); tests make their
        // windows themselves, each on its own bus, instead of activating it.
        let app = vmclone::application::new(None);
        app.register(None::<&gtk::gio::Cancellable>)
            .expect("the application registers on the private session bus");
        // The test driver's disks are no guest libguestfs could open: the
        // scenarios clone as a user who turned the identity switch off
        // (identity.rs turns it on).
        vmclone::settings::settings()
            .expect("the app's GSettings schema (build.rs compiles it)")
            .set_boolean(vmclone::settings::RESET_IDENTITY, false)
            .expect("the memory backend takes the key");
        Desktop {
            _xvfb: xvfb,
            _session_bus: session_bus,
            app,
        }
    }
}

fn start_xvfb() -> (u32, ChildGuard) {
    let display = (90..200)
        .find(|n| {
            !Path::new(&format!("/tmp/.X11-unix/X{n}")).exists()
                && !Path::new(&format!("/tmp/.X{n}-lock")).exists()
        })
        .expect("a free X display number between :90 and :199");
    let child = Command::new("Xvfb")
        .arg(format!(":{display}"))
        .args(["-screen", "0", "1280x1024x24", "-nolisten", "tcp"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("Xvfb is installed (Debian package xvfb)");
    let guard = ChildGuard(child);
    let socket = PathBuf::from(format!("/tmp/.X11-unix/X{display}"));
    vmclone_tests::wait_until(Duration::from_secs(20), "Xvfb to listen", || {
        socket.exists()
    });
    (display, guard)
}

/// Runs the main loop until `cond` holds; panics naming `what` after `timeout`.
pub fn wait_for(timeout: Duration, what: &str, mut cond: impl FnMut() -> bool) {
    let ctx = glib::MainContext::default();
    let deadline = Instant::now() + timeout;
    loop {
        while ctx.iteration(false) {}
        if cond() {
            return;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Lets the main loop run for `duration` (layout, frames, signals).
pub fn settle(duration: Duration) {
    let deadline = Instant::now() + duration;
    wait_for(duration + Duration::from_secs(1), "time to pass", || {
        Instant::now() >= deadline
    });
}

/// Where screenshots go: `target/screenshots/` of the target folder in use.
pub fn screenshot_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("current_exe");
    // target/<profile>/deps/<test>
    let target = exe
        .ancestors()
        .nth(3)
        .expect("test binary lives in target/<profile>/deps");
    let dir = target.join("screenshots");
    std::fs::create_dir_all(&dir).expect("create target/screenshots");
    dir
}

/// Renders `window` as it is on screen to `target/screenshots/<name>.png`.
pub fn screenshot(window: &impl IsA<gtk::Window>, name: &str) -> PathBuf {
    screenshot_with_popovers(window, &[], name)
}

/// Renders `window` and the open `popovers` over it (they are surfaces of
/// their own, which a window's paintable leaves out) to one PNG.
pub fn screenshot_with_popovers(
    window: &impl IsA<gtk::Window>,
    popovers: &[&gtk::Popover],
    name: &str,
) -> PathBuf {
    let window = window.upcast_ref::<gtk::Window>();
    // Let pending layout and animations (toasts, crossfades) finish first.
    settle(Duration::from_millis(400));
    let (w, h) = (window.width(), window.height());
    assert!(w > 0 && h > 0, "{name}: the window is not laid out");
    let snapshot = gtk::Snapshot::new();
    // An opaque background, as the desktop would show behind the window.
    snapshot.append_color(
        &gdk::RGBA::new(0.85, 0.85, 0.85, 1.0),
        &graphene::Rect::new(0.0, 0.0, w as f32, h as f32),
    );
    gtk::WidgetPaintable::new(Some(window)).snapshot(&snapshot, w as f64, h as f64);
    for popover in popovers.iter().filter(|p| p.is_visible()) {
        let (pw, ph) = (popover.width() as f64, popover.height() as f64);
        let at = popover
            .compute_point(window, &graphene::Point::new(0.0, 0.0))
            .expect("the popover belongs to the window");
        snapshot.save();
        snapshot.translate(&at);
        gtk::WidgetPaintable::new(Some(*popover)).snapshot(&snapshot, pw, ph);
        snapshot.restore();
    }
    let node = snapshot.to_node().expect("the window drew something");
    let renderer = window.renderer().expect("a realized window has a renderer");
    let texture = renderer.render_texture(
        &node,
        Some(&graphene::Rect::new(0.0, 0.0, w as f32, h as f32)),
    );
    let path = screenshot_dir().join(format!("{name}.png"));
    texture.save_to_png(&path).expect("write the screenshot");
    println!("    screenshot: {}", path.display());
    path
}

/// Every label text inside `widget`, depth first.
pub fn label_texts(widget: &gtk::Widget) -> Vec<String> {
    let mut texts = Vec::new();
    let mut stack = vec![widget.clone()];
    while let Some(w) = stack.pop() {
        if let Some(label) = w.downcast_ref::<gtk::Label>() {
            texts.push(label.label().to_string());
        }
        let mut child = w.last_child();
        while let Some(c) = child {
            child = c.prev_sibling();
            stack.push(c);
        }
    }
    texts
}

/// The first widget inside `widget` whose GType is named `type_name`.
pub fn find_by_type(widget: &gtk::Widget, type_name: &str) -> Option<gtk::Widget> {
    let mut stack = vec![widget.clone()];
    while let Some(w) = stack.pop() {
        if w.type_().name() == type_name {
            return Some(w);
        }
        let mut child = w.last_child();
        while let Some(c) = child {
            child = c.prev_sibling();
            stack.push(c);
        }
    }
    None
}

/// The texts of the toasts on screen (libadwaita 1.2 has no API listing them).
pub fn toast_texts(window: &vmclone::window::Window) -> Vec<String> {
    let mut texts = Vec::new();
    let mut stack = vec![window.clone().upcast::<gtk::Widget>()];
    while let Some(w) = stack.pop() {
        if w.type_().name() == "AdwToastWidget" {
            texts.push(label_texts(&w).join(" "));
            continue;
        }
        let mut child = w.first_child();
        while let Some(c) = child {
            child = c.next_sibling();
            stack.push(c);
        }
    }
    texts
}

/// The button of the toast whose text contains `text`.
pub fn toast_button(window: &vmclone::window::Window, text: &str) -> Option<gtk::Button> {
    let mut stack = vec![window.clone().upcast::<gtk::Widget>()];
    while let Some(w) = stack.pop() {
        if w.type_().name() == "AdwToastWidget" && label_texts(&w).join(" ").contains(text) {
            return find_by_type(&w, "GtkButton")
                .and_then(|b| b.downcast::<gtk::Button>().ok())
                .filter(|b| b.label().is_some());
        }
        let mut child = w.first_child();
        while let Some(c) = child {
            child = c.next_sibling();
            stack.push(c);
        }
    }
    None
}

/// One scenario of a test binary: a name, and for scenarios that need what
/// the quick run lacks (root, libvirtd), the reason they are ignored there.
pub struct Scenario<'a> {
    pub name: &'a str,
    pub ignore: Option<&'a str>,
    pub run: &'a dyn Fn(),
}

/// A scenario run in every test run.
pub fn scenario<'a>(name: &'a str, run: &'a dyn Fn()) -> Scenario<'a> {
    Scenario {
        name,
        ignore: None,
        run,
    }
}

/// A scenario run only with `--ignored` or `--include-ignored`, as libtest
/// does for `#[ignore = "reason"]`; it must fail when its need is not met.
pub fn ignored<'a>(name: &'a str, reason: &'a str, run: &'a dyn Fn()) -> Scenario<'a> {
    Scenario {
        name,
        ignore: Some(reason),
        run,
    }
}

/// Runs the scenarios, catching failures so every one reports; true when all
/// passed. Reads libtest's arguments: a name filter (the first non-flag
/// argument), `--ignored` (only ignored scenarios) and `--include-ignored`.
pub fn run_scenarios(scenarios: &[Scenario]) -> bool {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let filter = args
        .iter()
        .find(|a| !a.starts_with('-'))
        .cloned()
        .unwrap_or_default();
    let only_ignored = args.iter().any(|a| a == "--ignored");
    let include_ignored = args.iter().any(|a| a == "--include-ignored");
    // As libtest: `--ignored` leaves the other scenarios out of the run.
    let selected: Vec<_> = scenarios
        .iter()
        .filter(|s| s.name.contains(&filter) && (s.ignore.is_some() || !only_ignored))
        .collect();
    println!("\nrunning {} tests", selected.len());
    let filtered_out = scenarios.len() - selected.len();
    let all_started = Instant::now();
    let (mut passed, mut skipped, mut failed) = (0, 0, Vec::new());
    for s in selected {
        if let Some(reason) = s.ignore.filter(|_| !only_ignored && !include_ignored) {
            println!("test {} ... ignored, {reason}", s.name);
            skipped += 1;
            continue;
        }
        println!("test {} ...", s.name);
        let started = Instant::now();
        match std::panic::catch_unwind(std::panic::AssertUnwindSafe(s.run)) {
            Ok(()) => {
                println!("test {} ... ok ({:.1?})", s.name, started.elapsed());
                passed += 1;
            }
            Err(_) => {
                println!("test {} ... FAILED", s.name);
                failed.push(s.name);
            }
        }
        close_all_windows();
    }
    // The closing line in libtest's words, so tools that read it count these tests.
    let summary = format!(
        "{passed} passed; {} failed; {skipped} ignored; 0 measured; {filtered_out} filtered out; finished in {:.2}s",
        failed.len(),
        all_started.elapsed().as_secs_f64()
    );
    if failed.is_empty() {
        println!("\ntest result: ok. {summary}");
    } else {
        println!("\nfailures: {failed:?}\ntest result: FAILED. {summary}");
    }
    failed.is_empty()
}

fn close_all_windows() {
    let toplevels = gtk::Window::toplevels();
    let windows: Vec<gtk::Window> = (0..toplevels.n_items())
        .filter_map(|i| toplevels.item(i).and_downcast::<gtk::Window>())
        .collect();
    // Dialogs before the windows they belong to.
    let (dialogs, mains): (Vec<_>, Vec<_>) = windows
        .into_iter()
        .partition(|w| w.transient_for().is_some());
    for window in dialogs.into_iter().chain(mains) {
        window.destroy();
    }
    settle(Duration::from_millis(50));
}

/// A shown window on a service at `bus`, with the list loaded or an error page up.
pub fn open_window(app: &adw::Application, bus: &PrivateBus) -> vmclone::window::Window {
    open_window_sized(app, bus, None)
}

/// The same, `width` × `height` pixels large.
pub fn open_window_sized(
    app: &adw::Application,
    bus: &PrivateBus,
    size: Option<(i32, i32)>,
) -> vmclone::window::Window {
    let (client, events) = vmclone::client::Client::start(Some(bus.address().to_string()));
    let window = vmclone::window::Window::new(app, client, events);
    if let Some((width, height)) = size {
        window.set_default_size(width, height);
    }
    window.present();
    wait_for(
        Duration::from_secs(20),
        "the first page after loading",
        || window.page() != vmclone::window::Page::Loading,
    );
    window
}

/// Every VM as `busctl call … ListVms` reports it, sorted by name: an
/// independent reading of the service's answer, not the app's client.
pub fn busctl_list_vms(bus: &PrivateBus) -> Vec<vmclone::client::VmInfo> {
    bus.list_vms()
        .into_iter()
        .map(|vm| vmclone::client::VmInfo {
            id: vm.id,
            name: vm.name,
            state: vm.state,
            vcpus: vm.vcpus,
            memory_mib: vm.memory_mib,
            disks: vm.disks,
            interfaces: vm.interfaces,
            is_template: vm.is_template,
        })
        .collect()
}

/// The X window id of `window`, found from outside as a window manager or
/// an accessibility tool would: the one visible X window of this process
/// (`_NET_WM_PID`) whose title (`_NET_WM_NAME`) is exactly the window's title.
pub fn x_window_id(window: &impl IsA<gtk::Window>) -> String {
    let title = window
        .upcast_ref::<gtk::Window>()
        .title()
        .expect("the window has a title to be found by");
    // xdotool matches names with a POSIX extended regex.
    let mut pattern = String::from("^");
    for c in title.chars() {
        if "\\^$.|?*+()[]{}".contains(c) {
            pattern.push('\\');
        }
        pattern.push(c);
    }
    pattern.push('$');
    let pid = std::process::id().to_string();
    let found = run(
        "xdotool",
        &[
            "search",
            "--all",
            "--onlyvisible",
            "--pid",
            &pid,
            "--name",
            &pattern,
        ],
    );
    let ids: Vec<&str> = found.split_whitespace().collect();
    assert_eq!(
        ids.len(),
        1,
        "one visible X window of ours is titled {title:?}: {ids:?}"
    );
    ids[0].to_string()
}

/// Presses `key` (an X keysym name such as `Return`) on the keyboard of the
/// X server, as a person would: xdotool gives `window` the X input focus
/// (there is no window manager to do it) and sends the key through XTEST, so
/// GTK receives an ordinary key event from the server. The main loop runs
/// until the press and release have been handled.
pub fn press_key(window: &impl IsA<gtk::Window>, key: &str) {
    let window = window.upcast_ref::<gtk::Window>();
    let xid = x_window_id(window);
    run("xdotool", &["windowfocus", "--sync", &xid]);
    wait_for(
        Duration::from_secs(10),
        "the window to get the keyboard focus",
        || window.is_active(),
    );
    run("xdotool", &["key", "--clearmodifiers", key]);
    // The events are queued in the X server; let GTK read and dispatch them.
    settle(Duration::from_millis(200));
}

/// `GetVm` as busctl's JSON reports it, every key with its value: an
/// independent reading of what the details view must show.
pub fn busctl_get_vm(bus: &PrivateBus, id: &str) -> serde_json::Map<String, serde_json::Value> {
    let out = bus.busctl([
        "--json=short",
        "call",
        vmclone_tests::BUS_NAME,
        vmclone_tests::OBJECT_PATH,
        vmclone_tests::INTERFACE,
        "GetVm",
        "s",
        id,
    ]);
    let text = vmclone_tests::stdout_ok(&out);
    let json: serde_json::Value = serde_json::from_str(&text).expect("busctl JSON");
    let serde_json::Value::Object(dict) = json["data"][0].clone() else {
        panic!("GetVm answered no dictionary: {text}");
    };
    // {"key": {"type": "s", "data": value}} -> {"key": value}
    dict.into_iter()
        .map(|(k, v)| (k, v["data"].clone()))
        .collect()
}

// GTK 4.0's test API for accessibles; gtk4-rs binds it only from 4.10 on.
extern "C" {
    fn gtk_test_accessible_has_property(
        accessible: *mut gtk::ffi::GtkWidget,
        property: gtk::ffi::GtkAccessibleProperty,
    ) -> glib::ffi::gboolean;
    fn gtk_test_accessible_has_relation(
        accessible: *mut gtk::ffi::GtkWidget,
        relation: gtk::ffi::GtkAccessibleRelation,
    ) -> glib::ffi::gboolean;
}

/// Whether `widget` has an accessible label (GTK's test backend keeps them).
pub fn has_accessible_label(widget: &impl IsA<gtk::Widget>) -> bool {
    use glib::translate::ToGlibPtr;
    // SAFETY: every widget is a GtkAccessible; the call only reads.
    unsafe {
        gtk_test_accessible_has_property(
            widget.as_ref().to_glib_none().0,
            gtk::ffi::GTK_ACCESSIBLE_PROPERTY_LABEL,
        ) != 0
    }
}

/// Whether `widget` is labelled for assistive technologies by another widget.
pub fn has_accessible_labelled_by(widget: &impl IsA<gtk::Widget>) -> bool {
    use glib::translate::ToGlibPtr;
    // SAFETY: as above.
    unsafe {
        gtk_test_accessible_has_relation(
            widget.as_ref().to_glib_none().0,
            gtk::ffi::GTK_ACCESSIBLE_RELATION_LABELLED_BY,
        ) != 0
    }
}

/// Every widget inside `widget` (itself included), depth first.
pub fn descendants(widget: &gtk::Widget) -> Vec<gtk::Widget> {
    let mut all = Vec::new();
    let mut stack = vec![widget.clone()];
    while let Some(w) = stack.pop() {
        let mut child = w.last_child();
        while let Some(c) = child {
            child = c.prev_sibling();
            stack.push(c);
        }
        all.push(w);
    }
    all
}

/// The item labelled `label` (mnemonic underscores left out) of the open
/// menu `popover`, activated as a click or Enter on it would.
pub fn activate_menu_item(popover: &gtk::Widget, label: &str) {
    let item = descendants(popover)
        .into_iter()
        .find(|w| {
            w.type_().name() == "GtkModelButton"
                && label_texts(w).iter().any(|t| t.replace('_', "") == label)
        })
        .unwrap_or_else(|| panic!("the menu has no item {label:?}: {:?}", label_texts(popover)));
    assert!(item.is_sensitive(), "the menu item {label:?} is sensitive");
    item.activate();
}

/// Whether the open menu `popover` has a sensitive item labelled `label`.
pub fn menu_item_sensitive(popover: &gtk::Widget, label: &str) -> Option<bool> {
    descendants(popover)
        .into_iter()
        .find(|w| {
            w.type_().name() == "GtkModelButton"
                && label_texts(w).iter().any(|t| t.replace('_', "") == label)
        })
        .map(|w| w.is_sensitive())
}

/// Opens `button`'s menu and returns its popover.
pub fn open_menu(button: &gtk::MenuButton) -> gtk::Widget {
    button.popup();
    let mut popover = None;
    wait_for(Duration::from_secs(10), "the menu to open", || {
        popover = button.popover().filter(|p| p.is_visible());
        popover.is_some()
    });
    popover.unwrap().upcast()
}

/// One call of `Notify` that the fake notification server received.
#[derive(Debug, Clone)]
pub struct Notified {
    pub id: u32,
    pub summary: String,
    pub body: String,
    /// Pairs of action key and label, as the specification sends them.
    pub actions: Vec<String>,
}

/// A desktop notification server (`org.freedesktop.Notifications`) on the
/// test's session bus: it records what the app asks to show, as GNOME
/// Shell or any other server would receive it, and can invoke an action as
/// a click on the notification does. GLib's own backend does the sending.
pub struct NotificationServer {
    runtime: tokio::runtime::Runtime,
    /// Dropped in the runtime's context, which zbus needs.
    connection: Option<zbus::Connection>,
    received: std::sync::Arc<std::sync::Mutex<Vec<Notified>>>,
}

struct Notifications {
    received: std::sync::Arc<std::sync::Mutex<Vec<Notified>>>,
}

#[zbus::interface(name = "org.freedesktop.Notifications")]
impl Notifications {
    #[allow(clippy::too_many_arguments)]
    fn notify(
        &self,
        _app_name: String,
        replaces_id: u32,
        _app_icon: String,
        summary: String,
        body: String,
        actions: Vec<String>,
        _hints: std::collections::HashMap<String, zbus::zvariant::OwnedValue>,
        _expire_timeout: i32,
    ) -> u32 {
        let mut received = self.received.lock().unwrap();
        let id = match replaces_id {
            0 => received.len() as u32 + 1,
            id => id,
        };
        received.push(Notified {
            id,
            summary,
            body,
            actions,
        });
        id
    }

    fn close_notification(&self, _id: u32) {}

    fn get_capabilities(&self) -> Vec<String> {
        vec!["actions".into(), "body".into()]
    }

    fn get_server_information(&self) -> (String, String, String, String) {
        (
            "vmclone-tests".into(),
            "vmclone".into(),
            "1".into(),
            "1.2".into(),
        )
    }

    #[zbus(signal)]
    async fn action_invoked(
        emitter: &zbus::object_server::SignalEmitter<'_>,
        id: u32,
        action_key: &str,
    ) -> zbus::Result<()>;
}

impl NotificationServer {
    /// Owns `org.freedesktop.Notifications` on this process's session bus.
    pub fn start() -> NotificationServer {
        let address = std::env::var("DBUS_SESSION_BUS_ADDRESS").expect("Desktop::start set it");
        // Its own thread serves the calls while GTK's main loop runs here.
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("a runtime");
        let received = std::sync::Arc::default();
        let server = Notifications {
            received: std::sync::Arc::clone(&received),
        };
        let connection = runtime.block_on(async {
            zbus::connection::Builder::address(address.as_str())
                .expect("the session bus address")
                .name("org.freedesktop.Notifications")
                .expect("a well-known name")
                .serve_at("/org/freedesktop/Notifications", server)
                .expect("a path")
                .build()
                .await
                .expect("the notification server owns its name")
        });
        NotificationServer {
            runtime,
            connection: Some(connection),
            received,
        }
    }

    /// What the app asked to show so far.
    pub fn received(&self) -> Vec<Notified> {
        self.received.lock().unwrap().clone()
    }

    /// A click on the action `key` of the notification `id`.
    pub fn invoke(&self, id: u32, key: &str) {
        self.runtime.block_on(async {
            let connection = self.connection.as_ref().expect("open until drop");
            let emitter = zbus::object_server::SignalEmitter::new(
                connection,
                "/org/freedesktop/Notifications",
            )
            .expect("the path");
            Notifications::action_invoked(&emitter, id, key)
                .await
                .expect("the signal goes out");
        });
    }
}

impl Drop for NotificationServer {
    fn drop(&mut self) {
        let _context = self.runtime.enter();
        self.connection.take();
    }
}

/// How long any one thing may take in these tests.
pub const LONG: Duration = Duration::from_secs(30);

/// The names the list shows, in order.
pub fn names(window: &vmclone::window::Window) -> Vec<String> {
    window.shown_vms().into_iter().map(|vm| vm.name).collect()
}

/// The row built for the VM `name`.
pub fn row_named(window: &vmclone::window::Window, name: &str) -> vmclone::vm_row::VmRow {
    window
        .visible_rows()
        .into_iter()
        .find(|row| row.name_text() == name)
        .unwrap_or_else(|| panic!("no row shows {name}"))
}

/// Selects the VM `name` and waits until its details show `GetVm`'s answer.
pub fn select(window: &vmclone::window::Window, name: &str) -> vmclone::client::VmInfo {
    let vm = window
        .shown_vms()
        .into_iter()
        .find(|vm| vm.name == name)
        .unwrap_or_else(|| panic!("{name} is not listed"));
    window.select_vm(&vm.id);
    wait_for(LONG, "the details of the selected VM", || {
        window.details_loaded_id().as_deref() == Some(vm.id.as_str())
    });
    vm
}

/// The clone dialog for `name`, opened with Clone… of the VM's row menu.
pub fn open_dialog_for(
    window: &vmclone::window::Window,
    name: &str,
) -> vmclone::clone_dialog::CloneDialog {
    wait_for(LONG, "the row to be drawn", || {
        window.visible_rows().iter().any(|r| r.name_text() == name)
    });
    let menu = open_menu(&row_named(window, name).menu_button());
    activate_menu_item(&menu, "Clone…");
    let mut dialog = None;
    wait_for(LONG, "the clone dialog", || {
        dialog = window.clone_dialog();
        dialog.is_some()
    });
    dialog.unwrap()
}

/// Waits until Clone is offered in `dialog`; a timeout says what the dialog
/// showed (the name's problem, the plan's).
pub fn wait_clone_offered(dialog: &vmclone::clone_dialog::CloneDialog) {
    let deadline = Instant::now() + LONG;
    while !dialog.can_clone() {
        assert!(
            Instant::now() < deadline,
            "Clone was not offered: name {:?}, plan settled {}, plan {:?}",
            dialog.problem(),
            dialog.plan_settled(),
            dialog.plan_problem()
        );
        settle(Duration::from_millis(20));
    }
}

pub fn type_name(dialog: &vmclone::clone_dialog::CloneDialog, text: &str) {
    dialog.name_row().set_text(text);
}

/// Confirms the dialog with a real Enter in the name field.
pub fn confirm(dialog: &vmclone::clone_dialog::CloneDialog) {
    dialog.name_row().grab_focus();
    press_key(dialog, "Return");
}

/// The message dialogs on screen.
pub fn visible_dialogs() -> Vec<adw::MessageDialog> {
    let toplevels = gtk::Window::toplevels();
    (0..toplevels.n_items())
        .filter_map(|i| toplevels.item(i).and_downcast::<adw::MessageDialog>())
        .filter(|d| d.is_visible())
        .collect()
}

/// The button labelled `label` (mnemonic underscores left out) inside `widget`.
pub fn button_labelled(widget: &impl IsA<gtk::Widget>, label: &str) -> gtk::Button {
    descendants(widget.upcast_ref())
        .into_iter()
        .filter_map(|w| w.downcast::<gtk::Button>().ok())
        .find(|b| b.label().is_some_and(|l| l.replace('_', "") == label))
        .unwrap_or_else(|| panic!("no button {label:?}"))
}

/// A shut-off test-driver VM `name` whose one disk is a real raw file of
/// `mib` MiB of data in `dir`, as XML for a `<node>`.
pub fn vm_with_big_disk(dir: &Path, name: &str, uuid: &str, mib: u64) -> String {
    use std::io::Write;
    let disk = dir.join(format!("{name}.raw"));
    let mut file = std::fs::File::create(&disk).expect("create the disk image");
    let block = vec![0xa5u8; 1 << 20];
    for _ in 0..mib {
        file.write_all(&block).expect("write the disk image");
    }
    file.sync_all().expect("sync the disk image");
    file_vm_xml(name, uuid, 5, &disk)
}

/// A test-driver host whose one VM, big01, has a raw disk of `mib` MiB of data.
pub fn host_with_big_disk(dir: &Path, mib: u64) -> String {
    let vm = vm_with_big_disk(dir, "big01", "0b5e1c2d-3e4f-4a5b-8c6d-7e8f9a0b1c2d", mib);
    vmclone_tests::test_driver_uri(dir, &format!("<node>{vm}</node>"))
}
