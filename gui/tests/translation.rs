//! With LANGUAGE=de the window speaks German: the catalog is compiled by
//! build.rs from po/de.po and loaded through gettext at run time, for strings
//! from the Rust code and from the .ui templates alike.

mod support;

use std::time::Duration;

use adw::prelude::*;
use support::*;
use vmclone::window::Page;
use vmclone_tests::{demo_host_uri, PrivateBus, Service};

fn main() {
    // SAFETY: single-threaded; before gettext and GTK read the environment.
    unsafe {
        std::env::set_var("LANGUAGE", "de");
        // gettext ignores LANGUAGE in the "C" locale; C.UTF-8 is always present.
        std::env::set_var("LC_ALL", "C.UTF-8");
    }
    let desktop = Desktop::start();
    let app = &desktop.app;
    let ok = run_scenarios(&[scenario("window_speaks_german_with_language_de", &|| {
        german_window(app)
    })]);
    drop(desktop);
    if !ok {
        std::process::exit(1);
    }
}

fn german_window(app: &adw::Application) {
    let bus = PrivateBus::start();
    let service = Service::start(&bus, &demo_host_uri(), &[]);
    let window = open_window(app, &bus);
    assert_eq!(window.page(), Page::List);

    // From the .ui template.
    assert_eq!(window.title().as_deref(), Some("VM-Klon"));
    // From Rust code, with plurals.
    wait_for(Duration::from_secs(30), "rows", || {
        !window.visible_rows().is_empty()
    });
    let details: Vec<String> = window
        .visible_rows()
        .iter()
        .map(|r| r.details_text().to_string())
        .collect();
    assert!(
        details.iter().any(|d| d.contains("Ausgeschaltet")),
        "state words are German: {details:?}"
    );
    assert!(
        details.iter().any(|d| d.contains("Datenträger")),
        "disk counts are German: {details:?}"
    );
    assert_eq!(
        window.templates_button().label().as_deref(),
        Some("_Vorlagen")
    );
    // The details and the VM's menu.
    select(&window, "web01");
    assert_eq!(
        window.details_clone_button().label().as_deref(),
        Some("_Klonen …"),
        "the Clone button is German"
    );
    let rows = window.details_view().unwrap().rows();
    assert!(
        rows.iter()
            .any(|(title, _, value)| title == "Zustand" && value == "Ausgeschaltet"),
        "the details are German: {rows:?}"
    );
    let menu = open_menu(&window.vm_menu_button());
    for item in ["Klonen …", "In Vorlage umwandeln …", "UUID kopieren"] {
        assert_eq!(menu_item_sensitive(&menu, item), Some(true), "{item}");
    }
    window.vm_menu_button().popdown();
    screenshot(&window, "main-window-de");
    window.details_clone_button().emit_clicked();
    let mut dialog = None;
    wait_for(Duration::from_secs(30), "the clone dialog", || {
        dialog = window.clone_dialog();
        dialog.is_some()
    });
    let dialog = dialog.unwrap();
    // The plan's rows are made in code: wait for them.
    wait_for(Duration::from_secs(30), "the plan", || {
        dialog.plan().is_some()
    });
    let labels = label_texts(dialog.upcast_ref());
    for text in [
        "Anzahl der Kopien",
        "Dem Klon eine eigene Identität geben",
        "Was der Klon tut",
        "vda: kopiert",
    ] {
        assert!(
            labels.iter().any(|l| l == text),
            "the clone dialog is German ({text}): {labels:?}"
        );
    }
    assert!(
        labels.iter().any(|l| l.ends_with(" zu kopieren")),
        "the plan's size is German: {labels:?}"
    );
    screenshot(&dialog, "clone-dialog-de");
    dialog.close();

    drop(service);
    wait_for(Duration::from_secs(30), "the unreachable page", || {
        window.page() == Page::Unreachable
    });
    let page = window.status_page(Page::Unreachable).unwrap();
    assert_eq!(page.title(), "Klon-Dienst nicht erreichbar");
    screenshot(&window, "unreachable-de");
}
