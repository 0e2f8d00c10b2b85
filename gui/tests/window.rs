//! The real app in a real window (Xvfb) against the real service on a private
//! bus with libvirt's test driver: the list, search and filter, the clone
//! dialog, status pages and the service's changes; one scenario, ignored in
//! the quick run, uses the host's real libvirtd and QEMU instead. Keys are
//! pressed for real with xdotool (XTEST). Scenarios save screenshots under
//! target/screenshots/. Clones and their progress are in clones.rs, the
//! details, layouts and keyboard in layout.rs.

mod support;

use std::time::Duration;

use adw::prelude::*;
use gtk::glib;
use support::*;
use vmclone::window::{Page, Window};
use vmclone_tests::bus::BusConfig;
use vmclone_tests::libvirt::{disk_xml, qemu_img, virsh, Lab, SYSTEM_URI};
use vmclone_tests::test_host::many_vms_uri;
use vmclone_tests::{demo_host_uri, test_driver_uri, PrivateBus, Service, TempDir};

fn main() {
    let desktop = Desktop::start();
    let app = &desktop.app;
    let ok = run_scenarios(&[
        scenario(
            "rows_match_list_vms_and_running_vm_cannot_be_cloned",
            &|| rows_match_list_vms(app),
        ),
        scenario("search_matches_names_and_uuids", &|| search(app)),
        scenario("templates_filter_shows_only_templates", &|| {
            templates_filter(app)
        }),
        scenario(
            "clone_dialog_validates_the_name_enter_clones_and_esc_cancels",
            &|| clone_dialog(app),
        ),
        scenario("advanced_options_reach_the_clone", &|| {
            advanced_options(app)
        }),
        scenario("clone_made_with_busctl_appears_without_a_click", &|| {
            busctl_clone_appears(app)
        }),
        scenario("failed_clone_shows_the_service_message", &|| {
            failed_clone(app)
        }),
        scenario(
            "stopped_service_shows_unreachable_page_and_recovers",
            &|| service_stopped(app),
        ),
        scenario("host_without_vms_shows_empty_page", &|| empty_host(app)),
        scenario("a_thousand_vms_are_listed_with_recycled_rows", &|| {
            thousand_vms(app)
        }),
        scenario("about_window_opens_from_the_menu", &|| about_window(app)),
        scenario(
            "changes_before_the_rest_of_a_long_list_is_shown_keep_it_whole",
            &|| changes_before_the_deferred_rows(app),
        ),
        scenario(
            "a_change_while_the_first_list_is_in_flight_is_kept",
            &|| change_during_first_list(app),
        ),
        scenario("refused_calls_show_the_not_authorized_page", &|| {
            not_authorized(app)
        }),
        ignored(
            "real_vm_started_and_stopped_updates_its_row",
            "needs root and libvirtd (qemu:///system)",
            &|| live_state(app),
        ),
    ]);
    drop(desktop);
    if !ok {
        std::process::exit(1);
    }
}

fn rows_match_list_vms(app: &adw::Application) {
    let bus = PrivateBus::start();
    let _service = Service::start(&bus, &demo_host_uri(), &[]);
    let window = open_window(app, &bus);
    assert_eq!(window.page(), Page::List);

    let expected = busctl_list_vms(&bus);
    assert!(expected.len() >= 3, "the demo host lists VMs: {expected:?}");
    let mut shown = window.shown_vms();
    shown.sort_by(|a, b| a.name.cmp(&b.name));
    assert_eq!(shown, expected, "the window lists what ListVms returns");

    // Every VM has a drawn row with its name, state word and size.
    wait_for(LONG, "a row per VM", || {
        window.visible_rows().len() == expected.len()
    });
    screenshot(&window, "main-window");
    for vm in &expected {
        let (name, state) = (&vm.name, &vm.state);
        let row = row_named(&window, name);
        let details = row.details_text();
        let (word, _) = vmclone::vm_row::state_label(state);
        assert!(
            details.contains(&word),
            "{name}: {details:?} names its state"
        );
        let vcpus = format!("{} vCPU", vm.vcpus);
        let disks = format!("{} disk", vm.disks);
        // glib puts a no-break space between number and unit.
        let memory = format!("{}.0\u{a0}GiB", vm.memory_mib / 1024);
        for part in [vcpus, disks, memory] {
            assert!(details.contains(&part), "{name}: {details:?} shows {part}");
        }
        assert_eq!(
            row.is_template_shown(),
            vm.is_template,
            "{name}: template badge"
        );
        // Clone is offered, in the row's menu and the details, for shut-off
        // VMs and (live) for running ones.
        let menu = open_menu(&row.menu_button());
        let offered = menu_item_sensitive(&menu, "Clone…");
        row.menu_button().popdown();
        select(&window, name);
        let button = window.details_clone_button();
        assert!(
            matches!(state.as_str(), "shutoff" | "running" | "paused"),
            "{name}: the demo host has no other state ({state})"
        );
        assert_eq!(
            offered,
            Some(true),
            "{name} is {state}: the menu offers Clone"
        );
        assert!(
            button.is_sensitive(),
            "{name} is {state}: Clone… is offered"
        );
    }
    assert!(
        expected.iter().any(|vm| vm.state == "running"),
        "the demo host has a running VM to check"
    );
    select(&window, "web01");
    screenshot(&window, "main-window-details");
}

/// The search matches a part of a name or of a UUID, ignoring case; no
/// match shows the no-results page.
fn search(app: &adw::Application) {
    let bus = PrivateBus::start();
    let _service = Service::start(&bus, &demo_host_uri(), &[]);
    let window = open_window(app, &bus);
    let expected = busctl_list_vms(&bus);
    let search = window.search_entry();
    window.search_button().set_active(true);
    search.set_text("DB");
    wait_for(LONG, "the search to filter", || names(&window) == ["db01"]);
    screenshot(&window, "search");
    let web01 = expected.iter().find(|vm| vm.name == "web01").unwrap();
    // The middle of web01's UUID, in upper case.
    let part = web01.id[9..18].to_uppercase();
    search.set_text(&part);
    wait_for(LONG, "the search by UUID", || names(&window) == ["web01"]);
    search.set_text("no such vm");
    wait_for(LONG, "the no-results page", || {
        window.page() == Page::NoResults
    });
    let page = window.status_page(Page::NoResults).unwrap();
    assert_eq!(page.title(), "No Results Found");
    window.search_button().set_active(false);
    wait_for(LONG, "the full list after search", || {
        names(&window).len() == expected.len() && window.page() == Page::List
    });
}

/// Templates lists the templates only; a host without templates says how to make one.
fn templates_filter(app: &adw::Application) {
    let bus = PrivateBus::start();
    let _service = Service::start(&bus, &demo_host_uri(), &[]);
    let window = open_window(app, &bus);
    let templates: Vec<String> = busctl_list_vms(&bus)
        .into_iter()
        .filter(|vm| vm.is_template)
        .map(|vm| vm.name)
        .collect();
    assert_eq!(templates, ["debian12-template"], "the demo host's template");
    window.templates_button().set_active(true);
    wait_for(LONG, "only templates", || names(&window) == templates);
    screenshot(&window, "templates-filter");
    // A search within the templates.
    window.search_button().set_active(true);
    window.search_entry().set_text("web");
    wait_for(LONG, "no template named web", || {
        window.page() == Page::NoResults
    });
    window.search_button().set_active(false);
    wait_for(LONG, "the templates again", || names(&window) == templates);

    let dir = TempDir::new("gui-no-templates");
    let uri = many_vms_uri(dir.path(), 3);
    let bus = PrivateBus::start();
    let _service = Service::start(&bus, &uri, &[]);
    let window = open_window(app, &bus);
    window.templates_button().set_active(true);
    wait_for(LONG, "the page for no templates", || {
        window.page() == Page::NoResults
    });
    let page = window.status_page(Page::NoResults).unwrap();
    assert_eq!(page.title(), "No Templates");
    let description = page.description().unwrap_or_default();
    assert!(
        description.contains("Convert to Template"),
        "it says how to make one: {description}"
    );
    screenshot(&window, "no-templates");
}

fn clone_dialog(app: &adw::Application) {
    let bus = PrivateBus::start();
    let _service = Service::start(&bus, &demo_host_uri(), &[]);
    let window = open_window(app, &bus);
    let vms_before = busctl_list_vms(&bus);

    let dialog = open_dialog_for(&window, "web01");
    assert_eq!(dialog.name_row().text(), "web01-clone", "pre-filled");
    wait_for(LONG, "the service to accept web01-clone", || {
        dialog.can_clone()
    });
    assert!(
        !dialog.storage_row().is_sensitive(),
        "linked storage is only offered for templates"
    );
    assert!(
        !dialog.advanced_row().is_expanded(),
        "the advanced options start folded"
    );
    screenshot(&dialog, "clone-dialog");

    // Keys are real X key presses (XTEST) into the dialog's window.
    type_name(&dialog, "");
    assert!(!dialog.can_clone(), "an empty name disables Clone at once");
    assert_eq!(dialog.problem(), None);
    press_key(&dialog, "Return");
    settle(Duration::from_millis(300));
    assert!(dialog.is_visible(), "Enter does nothing with an empty name");
    assert!(window.job_rows().is_empty(), "no clone started");

    type_name(&dialog, "db01");
    assert!(!dialog.can_clone(), "Clone waits for the service's verdict");
    wait_for(LONG, "the taken name to be refused", || {
        dialog.problem().is_some()
    });
    assert!(!dialog.can_clone(), "a taken name disables Clone");
    let problem = dialog.problem().unwrap();
    assert!(
        problem.contains("db01"),
        "the reason names the VM: {problem}"
    );
    screenshot(&dialog, "clone-dialog-name-taken");
    press_key(&dialog, "Return");
    settle(Duration::from_millis(300));
    assert!(dialog.is_visible(), "Enter does nothing with a taken name");
    assert!(window.job_rows().is_empty(), "no clone started");
    assert!(
        toast_texts(&window).is_empty(),
        "no toast: {:?}",
        toast_texts(&window)
    );
    assert_eq!(
        busctl_list_vms(&bus),
        vms_before,
        "Enter with an empty or taken name clones nothing"
    );

    type_name(&dialog, "bad/name");
    wait_for(LONG, "the invalid name to be refused", || {
        dialog.problem().is_some_and(|p| p != problem)
    });
    assert!(!dialog.can_clone(), "an invalid name disables Clone");

    type_name(&dialog, "web01-copy");
    wait_for(LONG, "the new name to be accepted", || dialog.can_clone());
    assert_eq!(dialog.problem(), None);
    let requests = std::rc::Rc::new(std::cell::RefCell::new(Vec::new()));
    let seen = requests.clone();
    dialog.connect_clone(move |request| seen.borrow_mut().push(request.names));
    press_key(&dialog, "Return");
    wait_for(LONG, "the dialog to close on Enter", || {
        !dialog.is_visible()
    });
    assert_eq!(
        *requests.borrow(),
        [vec!["web01-copy".to_string()]],
        "Enter clones, once, with the name typed"
    );
    wait_for(LONG, "the success toast", || {
        toast_texts(&window)
            .iter()
            .any(|t| t.contains("web01-copy"))
    });
    wait_for(LONG, "the new row", || {
        names(&window).contains(&"web01-copy".to_string())
    });
    assert!(
        busctl_list_vms(&bus)
            .iter()
            .any(|vm| vm.name == "web01-copy"),
        "the service has the clone"
    );
    screenshot(&window, "clone-done");

    // The toast's button selects the new VM and shows its details.
    let button = toast_button(&window, "web01-copy").expect("the toast has a button");
    button.emit_clicked();
    wait_for(LONG, "the new VM to be selected", || {
        window
            .selected_vm()
            .is_some_and(|vm| vm.name == "web01-copy")
    });
    wait_for(LONG, "its details", || {
        window.details_title() == "web01-copy"
    });

    // Esc cancels: the dialog closes and nothing is cloned, even with a
    // name the service accepts.
    let vms_before = busctl_list_vms(&bus);
    let dialog = open_dialog_for(&window, "web01");
    wait_for(LONG, "the proposed name to be checked", || {
        dialog.can_clone()
    });
    press_key(&dialog, "Escape");
    wait_for(LONG, "the dialog to close on Esc", || !dialog.is_visible());
    settle(Duration::from_millis(500));
    assert!(window.job_rows().is_empty(), "no clone started");
    assert_eq!(
        busctl_list_vms(&bus),
        vms_before,
        "cancelling the dialog with Esc clones nothing"
    );
}

/// vCPUs and memory under Advanced reach the clone; unchanged values are
/// not sent, so the clone keeps the source's.
fn advanced_options(app: &adw::Application) {
    let bus = PrivateBus::start();
    let _service = Service::start(&bus, &demo_host_uri(), &[]);
    let window = open_window(app, &bus);
    let web01 = busctl_list_vms(&bus)
        .into_iter()
        .find(|vm| vm.name == "web01")
        .unwrap();
    let dialog = open_dialog_for(&window, "web01");
    assert_eq!(
        dialog.vcpus_spin().value_as_int() as u32,
        web01.vcpus,
        "pre-filled"
    );
    assert_eq!(dialog.memory_spin().value() as u64, web01.memory_mib);
    assert_eq!(dialog.options(), vmclone::client::CloneOptions::default());
    dialog.advanced_row().set_expanded(true);
    dialog.vcpus_spin().set_value(4.0);
    dialog.memory_spin().set_value(3072.0);
    type_name(&dialog, "web01-big");
    wait_clone_offered(&dialog);
    screenshot(&dialog, "clone-dialog-advanced");
    confirm(&dialog);
    wait_for(LONG, "the clone's row", || {
        names(&window).contains(&"web01-big".to_string())
    });
    let clone = busctl_list_vms(&bus)
        .into_iter()
        .find(|vm| vm.name == "web01-big")
        .expect("the service has the clone");
    assert_eq!((clone.vcpus, clone.memory_mib), (4, 3072), "{clone:?}");
    assert_eq!(clone.disks, web01.disks);
}

fn busctl_clone_appears(app: &adw::Application) {
    let bus = PrivateBus::start();
    let _service = Service::start(&bus, &demo_host_uri(), &[]);
    let window = open_window(app, &bus);
    assert!(!names(&window).contains(&"web01-by-busctl".to_string()));
    vmclone_tests::stdout_ok(&bus.call("CloneVm", "ss", &["web01", "web01-by-busctl"]));
    // No click, no reload: the VmCloned signal alone brings the row.
    wait_for(LONG, "the clone made with busctl to appear", || {
        names(&window).contains(&"web01-by-busctl".to_string())
    });
    assert_eq!(window.page(), Page::List);
}

fn failed_clone(app: &adw::Application) {
    let bus = PrivateBus::start();
    let _service = Service::start(&bus, &demo_host_uri(), &[]);
    let window = open_window(app, &bus);
    let dialog = open_dialog_for(&window, "web01");
    type_name(&dialog, "taken-meanwhile");
    wait_clone_offered(&dialog);
    // Someone else takes the name between the check and the click.
    vmclone_tests::stdout_ok(&bus.call("CloneVm", "ss", &["web01", "taken-meanwhile"]));
    let (error, message) =
        vmclone_tests::gdbus_error(&bus.gdbus_call("CheckName", &["taken-meanwhile"]));
    assert_eq!(error, "org.vmclone.Error.NameExists");
    confirm(&dialog);
    // The toast says it in a sentence chosen by the error's name.
    let summary = "Another virtual machine already has this name.";
    wait_for(LONG, "the error toast", || {
        toast_texts(&window).iter().any(|t| t.contains(summary))
    });
    screenshot(&window, "error");
    // Details shows the service's own message in full.
    toast_button(&window, summary)
        .expect("the error toast has a Details button")
        .emit_clicked();
    let mut details = None;
    wait_for(LONG, "the error details", || {
        details = visible_dialogs().into_iter().find(|d| d.body() == message);
        details.is_some()
    });
    let details = details.unwrap();
    let heading = details.heading().unwrap_or_default();
    assert!(
        heading.contains("web01"),
        "the heading names the VM: {heading}"
    );
    screenshot(&details, "error-details");
    details.close();
}

fn service_stopped(app: &adw::Application) {
    let bus = PrivateBus::start();
    let service = Service::start(&bus, &demo_host_uri(), &[]);
    let window = open_window(app, &bus);
    assert_eq!(window.page(), Page::List);
    drop(service);
    // No click: the service leaving the bus is enough.
    wait_for(LONG, "the unreachable page", || {
        window.page() == Page::Unreachable
    });
    screenshot(&window, "unreachable");
    let _service = Service::start(&bus, &demo_host_uri(), &[]);
    wait_for(
        LONG,
        "the list to come back when the service returns",
        || window.page() == Page::List,
    );
    // The new service process's signals reach the window too.
    vmclone_tests::stdout_ok(&bus.call("CloneVm", "ss", &["web01", "after-restart"]));
    wait_for(LONG, "a clone by the restarted service to appear", || {
        names(&window).contains(&"after-restart".to_string())
    });

    // Started while nothing serves: the unreachable page, then Retry works.
    let empty_bus = PrivateBus::start();
    let window = open_window(app, &empty_bus);
    assert_eq!(window.page(), Page::Unreachable);
    let page = window.status_page(Page::Unreachable).unwrap();
    let _service = Service::start(&empty_bus, &demo_host_uri(), &[]);
    // The service appearing reloads by itself; Retry must work as well.
    let retry = find_by_type(page.upcast_ref(), "GtkButton")
        .and_downcast::<gtk::Button>()
        .expect("the page has a Retry button");
    retry.emit_clicked();
    wait_for(LONG, "the list after Retry", || window.page() == Page::List);
}

fn empty_host(app: &adw::Application) {
    let dir = TempDir::new("gui-empty");
    let uri = test_driver_uri(dir.path(), "<node></node>");
    let bus = PrivateBus::start();
    let _service = Service::start(&bus, &uri, &[]);
    let window = open_window(app, &bus);
    assert_eq!(window.page(), Page::Empty);
    screenshot(&window, "empty-state");
    // Typing on a page without a list starts no search.
    press_key(&window, "a");
    assert!(!window.search_button().is_active(), "no search bar");
    assert_eq!(window.search_entry().text(), "", "nothing typed into it");
}

/// A bus whose policy lets the service own its name but refuses every call
/// to it, as a system bus does for a caller it does not trust.
fn not_authorized(app: &adw::Application) {
    let bus = PrivateBus::start_with(&BusConfig::session_with_policy(
        r#"<allow send_destination="*" eavesdrop="true"/>
    <allow eavesdrop="true"/>
    <allow own="*"/>
    <deny send_destination="org.vmclone.Manager" send_interface="org.vmclone.Manager"/>"#,
    ))
    .unwrap_or_else(|e| panic!("dbus-daemon refused the strict configuration: {e}"));
    let _service = Service::start(&bus, &demo_host_uri(), &[]);

    let window = open_window(app, &bus);
    assert_eq!(window.page(), Page::Unauthorized);
    let page = window.status_page(Page::Unauthorized).unwrap();
    let description = page.description().unwrap_or_default();
    assert!(
        description.contains("administrator"),
        "the page says what to do: {description}"
    );
    screenshot(&window, "not-authorized");
}

fn about_window(app: &adw::Application) {
    let bus = PrivateBus::start();
    let _service = Service::start(&bus, &demo_host_uri(), &[]);
    let window = open_window(app, &bus);
    // The primary menu's About item activates app.about.
    app.activate_action("about", None);
    let mut about = None;
    wait_for(LONG, "the About window", || {
        let toplevels = gtk::Window::toplevels();
        about = (0..toplevels.n_items())
            .filter_map(|i| toplevels.item(i).and_downcast::<adw::AboutWindow>())
            .find(|w| w.is_visible());
        about.is_some()
    });
    let about = about.unwrap();
    assert_eq!(about.application_name(), "VM Clone");
    assert_eq!(about.version(), env!("CARGO_PKG_VERSION"));
    assert_eq!(about.transient_for().as_ref(), Some(window.upcast_ref()));
    screenshot(&about, "about");
}

/// 1,000 VMs: all in the model, but only the rows near the visible area are
/// built (GTK recycles them while scrolling), and the last one can be reached.
fn thousand_vms(app: &adw::Application) {
    let dir = TempDir::new("gui-1000");
    let uri = many_vms_uri(dir.path(), 1000);
    let bus = PrivateBus::start();
    let _service = Service::start(&bus, &uri, &[]);
    let window = open_window(app, &bus);
    assert_eq!(window.shown_vms().len(), 1000);
    wait_for(LONG, "rows", || !window.visible_rows().is_empty());
    let built = window.visible_rows().len();
    assert!(
        built < 300,
        "{built} rows built for 1,000 VMs: the list is not recycling"
    );
    let last = window.shown_vms().last().unwrap().id.clone();
    window.select_vm(&last);
    wait_for(LONG, "the last VM's row", || {
        window
            .visible_rows()
            .iter()
            .any(|r| r.name_text() == "vm1000")
    });
    assert!(
        window.visible_rows().len() < 300,
        "still recycling at the end"
    );
    screenshot(&window, "thousand-vms-end");
}

/// A real QEMU VM on the host's libvirtd, started and destroyed with virsh:
/// its row follows without any click, from the service's VmStateChanged.
fn live_state(app: &adw::Application) {
    let lab = Lab::new("gui-live");
    let vm = lab.name("vm");
    let disk = lab.path("disk.qcow2");
    qemu_img(&["create", "-q", "-f", "qcow2", disk.to_str().unwrap(), "16M"]);
    lab.define(&vm, "", &disk_xml(&disk, "qcow2"));
    let bus = PrivateBus::start();
    let _service = Service::start(&bus, SYSTEM_URI, &[]);
    let window = open_window(app, &bus);
    assert_eq!(window.page(), Page::List);
    // The host may hold other VMs: show only this one.
    window.search_button().set_active(true);
    window.search_entry().set_text(&vm);
    let row_state = |state: &str| {
        let (word, _) = vmclone::vm_row::state_label(state);
        window
            .visible_rows()
            .into_iter()
            .find(|r| r.name_text() == vm)
            .is_some_and(|r| r.details_text().starts_with(&word))
    };
    wait_for(LONG, "the new VM's row, shut off", || row_state("shutoff"));
    select(&window, &vm);
    assert!(
        window.details_clone_button().is_sensitive(),
        "shut off: Clone offered"
    );

    virsh(&["start", &vm]);
    wait_for(LONG, "the row to say Running after virsh start", || {
        row_state("running")
    });
    // A running VM is cloned live: Clone stays offered.
    wait_for(LONG, "the details to say Running", || {
        window.selected_vm().is_some_and(|vm| vm.state == "running")
    });
    assert!(
        window.details_clone_button().is_sensitive(),
        "running: Clone offered (live)"
    );
    screenshot(&window, "live-state");
    // Its dialog plans a live copy of the running QEMU guest: no agent
    // answers (no guest OS), so the copy would be crash-consistent.
    let dialog = open_dialog_for(&window, &vm);
    let mut plan = None;
    wait_for(LONG, "the live plan", || {
        plan = dialog.plan();
        plan.is_some() || dialog.plan_problem().is_some()
    });
    assert_eq!(dialog.plan_problem(), None);
    let plan = plan.unwrap();
    assert_eq!(plan.consistency, "crash");
    // A live copy walks the whole disk: its row and the total say the same.
    let disk = &plan.disks[0];
    assert_eq!(disk.action, "live");
    assert_eq!(disk.bytes_to_copy(), plan.bytes_to_copy);
    let text = dialog.live_text().expect("the live text");
    assert!(
        text.contains("keeps running") && text.contains("crash-consistent"),
        "{text}"
    );
    assert!(dialog.options().live);
    screenshot(&dialog, "clone-dialog-live-qemu");
    dialog.close();

    virsh(&["destroy", &vm]);
    wait_for(LONG, "the row to say Shut off after virsh destroy", || {
        row_state("shutoff")
    });
    wait_for(LONG, "Clone offered again when shut off", || {
        window.details_clone_button().is_sensitive()
    });
    screenshot(&window, "live-state-stopped");
}

/// A first long list shows a screenful at once and the rest on an idle.
/// Changes the service reports before that idle runs must land in the whole
/// list: no duplicate row, no row of a removed VM, still sorted by name.
fn changes_before_the_deferred_rows(app: &adw::Application) {
    let dir = TempDir::new("gui-300");
    let uri = many_vms_uri(dir.path(), 300);
    let bus = PrivateBus::start();
    let _service = Service::start(&bus, &uri, &[]);
    let listed = busctl_list_vms(&bus);
    let (client, events) = vmclone::client::Client::start(Some(bus.address().to_string()));
    let window = Window::new(app, client, events);
    window.present();
    // One main-loop step at a time, to stop right after the list is shown
    // and before the idle that brings the rest has run.
    let ctx = glib::MainContext::default();
    let deadline = std::time::Instant::now() + LONG;
    while window.page() == Page::Loading {
        assert!(std::time::Instant::now() < deadline, "timed out loading");
        if !ctx.iteration(false) {
            std::thread::sleep(Duration::from_millis(1));
        }
    }
    let shown = window.shown_vms().len();
    assert!(
        shown < 300,
        "caught before the rest of the list: {shown} rows"
    );

    // vm0200 and vm0250 are in the part not shown yet.
    let mut started = listed
        .iter()
        .find(|vm| vm.name == "vm0200")
        .unwrap()
        .clone();
    started.state = "running".into();
    let removed = listed
        .iter()
        .find(|vm| vm.name == "vm0250")
        .unwrap()
        .id
        .clone();
    window.on_service_event(vmclone::client::ServiceEvent::VmChanged(started.clone()));
    window.on_service_event(vmclone::client::ServiceEvent::VmRemoved(removed));
    settle(Duration::from_millis(300));

    let vms = window.shown_vms();
    let names: Vec<&str> = vms.iter().map(|vm| vm.name.as_str()).collect();
    let mut expected: Vec<&str> = listed.iter().map(|vm| vm.name.as_str()).collect();
    expected.retain(|name| *name != "vm0250");
    assert_eq!(
        names, expected,
        "every VM once, in order, without the removed one"
    );
    assert_eq!(
        vms.iter().find(|vm| vm.name == "vm0200"),
        Some(&started),
        "the change is shown"
    );

    // A state change in place keeps the selection on its VM.
    let first = vms[0].clone();
    window.select_vm(&first.id);
    let mut running = first.clone();
    running.state = "running".into();
    window.on_service_event(vmclone::client::ServiceEvent::VmChanged(running.clone()));
    settle(Duration::from_millis(100));
    assert_eq!(
        window.selected_vm(),
        Some(running),
        "the changed VM stays selected"
    );
}

/// A clone made while the app's first ListVms is on its way: the list was
/// read before the clone, its signal arrives before the list is shown. The
/// new VM must still be listed.
fn change_during_first_list(app: &adw::Application) {
    let bus = PrivateBus::start();
    let _service = Service::start(&bus, &demo_host_uri(), &[]);
    // The client asks for the list at once, on its own thread; GTK does not run meanwhile.
    let (client, events) = vmclone::client::Client::start(Some(bus.address().to_string()));
    std::thread::sleep(Duration::from_secs(1));
    vmclone_tests::stdout_ok(&bus.call("CloneVm", "ss", &["web01", "made-during-list"]));
    vmclone_tests::wait_until(LONG, "the clone's signal to reach the app", || {
        !events.is_empty()
    });
    std::thread::sleep(Duration::from_millis(300));
    let window = Window::new(app, client, events);
    window.present();
    wait_for(LONG, "the list", || window.page() == Page::List);
    settle(Duration::from_millis(300));
    assert!(
        names(&window).contains(&"made-during-list".to_string()),
        "the clone is listed: {:?}",
        names(&window)
    );
    assert_eq!(
        names(&window).len(),
        busctl_list_vms(&bus).len(),
        "one row per VM"
    );
}
