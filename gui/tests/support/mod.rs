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

/// Runs the named scenarios, catching failures so every one reports; true
/// when all passed. Honours a name filter as the first non-flag argument, as
/// libtest does. Windows a scenario left open are closed after it.
pub fn run_scenarios(scenarios: &[(&str, &dyn Fn())]) -> bool {
    let filter = std::env::args()
        .skip(1)
        .find(|a| !a.starts_with('-'))
        .unwrap_or_default();
    let selected: Vec<_> = scenarios
        .iter()
        .filter(|(name, _)| name.contains(&filter))
        .collect();
    println!("\nrunning {} tests", selected.len());
    let (total, filtered_out) = (selected.len(), scenarios.len() - selected.len());
    let all_started = Instant::now();
    let mut failed = Vec::new();
    for (name, scenario) in selected {
        println!("test {name} ...");
        let started = Instant::now();
        match std::panic::catch_unwind(std::panic::AssertUnwindSafe(scenario)) {
            Ok(()) => println!("test {name} ... ok ({:.1?})", started.elapsed()),
            Err(_) => {
                println!("test {name} ... FAILED");
                failed.push(*name);
            }
        }
        close_all_windows();
    }
    // The closing line in libtest's words, so tools that read it count these tests.
    let summary = format!(
        "{} passed; {} failed; 0 ignored; 0 measured; {filtered_out} filtered out; finished in {:.2}s",
        total - failed.len(),
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
    open_window_at(app, bus.address())
}

/// As [`open_window`], for the bus at `address`.
pub fn open_window_at(app: &adw::Application, address: &str) -> vmclone::window::Window {
    let (client, events) = vmclone::client::Client::start(Some(address.to_string()));
    let window = vmclone::window::Window::new(app, client, events);
    window.present();
    wait_for(
        Duration::from_secs(20),
        "the first page after loading",
        || window.page() != vmclone::window::Page::Loading,
    );
    window
}

/// Every VM as `busctl call … ListVms` prints it, sorted by name: an
/// independent reading of the service's answer, not the app's client.
pub fn busctl_list_vms(bus: &PrivateBus) -> Vec<vmclone::client::VmInfo> {
    let out = vmclone_tests::stdout_ok(&bus.call("ListVms", "", &[]));
    let tokens = tokenize(&out);
    // aa{sv} COUNT, then per VM: ENTRIES, then ENTRIES × (KEY TYPE VALUE).
    assert_eq!(tokens[0], "aa{sv}", "ListVms output: {out}");
    let count: usize = tokens[1].parse().expect("VM count");
    let mut vms = Vec::new();
    let mut i = 2;
    for _ in 0..count {
        let entries: usize = tokens[i].parse().expect("entry count");
        i += 1;
        let mut vm = vmclone::client::VmInfo::default();
        for _ in 0..entries {
            let (key, value) = (tokens[i].as_str(), tokens[i + 2].as_str());
            let number = || value.parse().expect("a number");
            match key {
                "\"id\"" => vm.id = unquote(value),
                "\"name\"" => vm.name = unquote(value),
                "\"state\"" => vm.state = unquote(value),
                "\"vcpus\"" => vm.vcpus = number() as u32,
                "\"memory-mib\"" => vm.memory_mib = number(),
                "\"disks\"" => vm.disks = number() as u32,
                "\"is-template\"" => vm.is_template = value == "true",
                _ => {}
            }
            i += 3;
        }
        vms.push(vm);
    }
    vms.sort_by(|a, b| a.name.cmp(&b.name));
    vms
}

/// busctl's text output split into words, keeping quoted strings whole.
fn tokenize(text: &str) -> Vec<String> {
    let mut tokens = Vec::new();
    let mut chars = text.trim().chars().peekable();
    while let Some(&c) = chars.peek() {
        if c.is_whitespace() {
            chars.next();
        } else if c == '"' {
            let mut token = String::from(chars.next().unwrap());
            while let Some(c) = chars.next() {
                token.push(c);
                if c == '\\' {
                    token.extend(chars.next());
                } else if c == '"' {
                    break;
                }
            }
            tokens.push(token);
        } else {
            let mut token = String::new();
            while let Some(&c) = chars.peek() {
                if c.is_whitespace() {
                    break;
                }
                token.push(c);
                chars.next();
            }
            tokens.push(token);
        }
    }
    tokens
}

fn unquote(token: &str) -> String {
    token
        .trim_matches('"')
        .replace("\\\"", "\"")
        .replace("\\\\", "\\")
}
