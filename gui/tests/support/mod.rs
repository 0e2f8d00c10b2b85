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
use vmclone_tests::{ChildGuard, PrivateBus};

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
            std::env::set_var("GTK_A11Y", "none");
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
    let window = window.upcast_ref::<gtk::Window>();
    // Let pending layout and animations (toasts, crossfades) finish first.
    settle(Duration::from_millis(400));
    let (w, h) = (window.width(), window.height());
    assert!(w > 0 && h > 0, "{name}: the window is not laid out");
    let paintable = gtk::WidgetPaintable::new(Some(window));
    let snapshot = gtk::Snapshot::new();
    // An opaque background, as the desktop would show behind the window.
    snapshot.append_color(
        &gdk::RGBA::new(0.85, 0.85, 0.85, 1.0),
        &graphene::Rect::new(0.0, 0.0, w as f32, h as f32),
    );
    paintable.snapshot(&snapshot, w as f64, h as f64);
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
    let (client, events) = vmclone::client::Client::start(Some(bus.address().to_string()));
    let window = vmclone::window::Window::new(app, client, events);
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
