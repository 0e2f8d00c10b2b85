//! Clones through the real app in a real window (Xvfb) against the real
//! service: progress rows and Cancel, several clones at once, templates,
//! closing the window while clones run and the desktop notification; one
//! scenario, ignored in the quick run, on the host's real libvirtd and QEMU.

mod support;

use std::path::Path;
use std::time::Duration;

use adw::prelude::*;
use support::*;
use vmclone::window::Window;
use vmclone_tests::libvirt::{disk_xml, qemu_img, Lab, SYSTEM_URI};
use vmclone_tests::{names_in, test_driver_uri, PrivateBus, Service, TempDir};

fn main() {
    let desktop = Desktop::start();
    let app = &desktop.app;
    let ok = run_scenarios(&[
        scenario("progress_row_and_cancel_leave_nothing_behind", &|| {
            progress_and_cancel(app)
        }),
        scenario("three_copies_at_once_through_the_dialog", &|| {
            three_copies(app)
        }),
        scenario(
            "two_clones_in_parallel_one_cancelled_the_other_finishes",
            &|| parallel_clones_one_cancelled(app),
        ),
        scenario(
            "closing_the_window_keeps_clones_running_and_a_notification_brings_it_back",
            &|| notification_while_hidden(app),
        ),
        scenario(
            "a_clone_started_before_the_window_opened_gets_its_row",
            &|| clone_started_before(app),
        ),
        scenario("convert_to_template_through_the_menu", &|| {
            convert_to_template(app)
        }),
        scenario("template_gets_a_linked_clone_through_the_dialog", &|| {
            linked_clone(app)
        }),
        scenario("a_service_dying_mid_clone_ends_the_progress_row", &|| {
            service_dies_mid_clone(app)
        }),
        ignored(
            "real_vms_cloned_in_parallel_one_cancelled",
            "needs root and libvirtd (qemu:///system)",
            &|| real_parallel_clones_one_cancelled(app),
        ),
    ]);
    drop(desktop);
    if !ok {
        std::process::exit(1);
    }
}

fn job_row(window: &Window, name: &str) -> Option<vmclone::job_row::JobRow> {
    window
        .job_rows()
        .into_iter()
        .find(|row| row.new_name() == name)
}

fn progress_and_cancel(app: &adw::Application) {
    let dir = TempDir::new("gui-progress");
    let uri = host_with_big_disk(dir.path(), 4096);
    let before = names_in(dir.path());
    let bus = PrivateBus::start();
    let _service = Service::start(&bus, &uri, &[]);
    let window = open_window(app, &bus);

    let dialog = open_dialog_for(&window, "big01");
    wait_clone_offered(&dialog);
    confirm(&dialog);
    let mut row = None;
    wait_for(LONG, "the progress row to move", || {
        row = job_row(&window, "big01-clone");
        row.as_ref()
            .is_some_and(|r| r.progress_bar().fraction() > 0.0)
    });
    let row = row.unwrap();
    assert!(window.jobs_button().is_visible(), "the jobs button shows");
    wait_for(LONG, "a rate and the time left", || {
        row.status_text().contains("/s") && row.status_text().contains("left")
    });
    let fraction = row.progress_bar().fraction();
    assert!(fraction < 1.0, "caught mid-copy: {fraction}");
    let status = row.status_text();
    assert!(status.contains(" of "), "bytes done of total: {status}");
    assert!(
        status.starts_with("Copying the disks"),
        "the job's Phase: {status}"
    );
    window.jobs_popover().popup();
    screenshot_with_popovers(&window, &[&window.jobs_popover()], "progress");
    window.jobs_popover().popdown();
    // The progress is the window's: opening and closing the dialog again leaves it.
    let dialog = open_dialog_for(&window, "big01");
    wait_for(LONG, "the name being made to be refused", || {
        dialog.problem().is_some()
    });
    dialog.close();
    let so_far = row.progress_bar().fraction();
    wait_for(LONG, "the same row to go on", || {
        job_row(&window, "big01-clone").as_ref() == Some(&row)
            && row.progress_bar().fraction() > so_far
    });
    // The window stays responsive while the copy runs: search still filters.
    window.search_button().set_active(true);
    window.search_entry().set_text("big");
    wait_for(LONG, "search during the copy", || {
        names(&window) == ["big01"]
    });
    window.search_button().set_active(false);

    row.cancel_button().emit_clicked();
    wait_for(LONG, "the cancelled toast", || {
        toast_texts(&window).iter().any(|t| t.contains("cancelled"))
    });
    assert!(window.job_rows().is_empty(), "the row goes with the job");
    assert!(!window.jobs_button().is_visible(), "no clones, no button");
    assert_eq!(names(&window), ["big01"], "no clone row after cancel");
    assert_eq!(names_in(dir.path()), before, "nothing left behind");
}

/// Three copies with one CloneVms call: a progress row per copy, named
/// `-1` to `-3`, then three new VMs and one toast.
fn three_copies(app: &adw::Application) {
    let dir = TempDir::new("gui-copies");
    let uri = host_with_big_disk(dir.path(), 1536);
    let bus = PrivateBus::start();
    let _service = Service::start(&bus, &uri, &[]);
    let window = open_window(app, &bus);
    let dialog = open_dialog_for(&window, "big01");
    dialog.advanced_row().set_expanded(true);
    dialog.copies_spin().set_value(3.0);
    let expected = ["big01-clone-1", "big01-clone-2", "big01-clone-3"];
    assert_eq!(dialog.names(), expected);
    wait_for(LONG, "the three names to be accepted", || {
        dialog.can_clone()
    });
    screenshot(&dialog, "clone-dialog-copies");
    confirm(&dialog);
    wait_for(LONG, "three progress rows", || {
        let rows: Vec<String> = window
            .job_rows()
            .iter()
            .map(|r| r.new_name().to_string())
            .collect();
        rows == expected
    });
    wait_for(LONG, "the first copy's progress", || {
        job_row(&window, "big01-clone-1").is_some_and(|r| r.progress_bar().fraction() > 0.0)
    });
    // The others wait for it: the service copies one after the other.
    let second = job_row(&window, "big01-clone-2").expect("its row");
    assert!(
        second.status_text().contains("Waiting"),
        "{}",
        second.status_text()
    );
    window.jobs_popover().popup();
    screenshot_with_popovers(&window, &[&window.jobs_popover()], "progress-copies");
    wait_for(LONG, "three new rows", || {
        expected
            .iter()
            .all(|name| names(&window).contains(&name.to_string()))
    });
    wait_for(LONG, "one toast for the three", || {
        toast_texts(&window)
            .iter()
            .any(|t| t.contains("3 clones of “big01” are ready"))
    });
    assert!(
        window.job_rows().is_empty(),
        "the rows went with the clones"
    );
    let listed: Vec<String> = busctl_list_vms(&bus)
        .into_iter()
        .map(|vm| vm.name)
        .collect();
    for name in expected {
        assert!(listed.contains(&name.to_string()), "{name} in {listed:?}");
    }
}

/// A host with two VMs, each with a raw disk of `mib` MiB of data.
fn host_with_two_big_disks(dir: &Path, mib: u64) -> String {
    let one = vm_with_big_disk(dir, "big01", "0b5e1c2d-3e4f-4a5b-8c6d-7e8f9a0b1c2d", mib);
    let two = vm_with_big_disk(dir, "big02", "0b5e1c2d-3e4f-4a5b-8c6d-7e8f9a0b1c2e", mib);
    test_driver_uri(dir, &format!("<node>{one}{two}</node>"))
}

/// Starts a clone of `source` through its dialog; returns its new name.
fn start_clone(window: &Window, source: &str) -> String {
    let dialog = open_dialog_for(window, source);
    wait_for(LONG, "the plan", || dialog.plan_settled());
    let problem = dialog.plan_problem();
    assert_eq!(problem, None, "cloning {source}");
    wait_clone_offered(&dialog);
    let name = dialog.names().remove(0);
    confirm(&dialog);
    wait_for(LONG, "its progress row", || {
        job_row(window, &name).is_some()
    });
    name
}

/// Two clones at the same time; the first is cancelled mid-copy: the
/// second still finishes, and nothing of the first remains.
fn parallel_clones_one_cancelled(app: &adw::Application) {
    let dir = TempDir::new("gui-parallel");
    let uri = host_with_two_big_disks(dir.path(), 3072);
    let before = names_in(dir.path());
    let bus = PrivateBus::start();
    let _service = Service::start(&bus, &uri, &[]);
    let window = open_window(app, &bus);
    let cancelled = start_clone(&window, "big01");
    let finished = start_clone(&window, "big02");
    wait_for(LONG, "both copying", || {
        [&cancelled, &finished]
            .iter()
            .all(|name| job_row(&window, name).is_some_and(|r| r.progress_bar().fraction() > 0.0))
    });
    window.jobs_popover().popup();
    screenshot_with_popovers(&window, &[&window.jobs_popover()], "progress-parallel");
    let other = job_row(&window, &finished).expect("the other clone runs");
    assert!(other.progress_bar().fraction() < 1.0, "and is not done yet");
    job_row(&window, &cancelled)
        .unwrap()
        .cancel_button()
        .emit_clicked();
    // The toasts come one after the other, in either order.
    let mut seen = std::collections::BTreeSet::new();
    let ready = format!("“{finished}” is ready");
    wait_for(LONG, "both toasts and the other clone's row", || {
        seen.extend(toast_texts(&window));
        seen.iter()
            .any(|t| t.contains("Cloning “big01” was cancelled"))
            && seen.iter().any(|t| t.contains(&ready))
            && names(&window).contains(&finished)
    });
    assert_eq!(names(&window), ["big01", "big02", &finished]);
    let listed: Vec<String> = busctl_list_vms(&bus)
        .into_iter()
        .map(|vm| vm.name)
        .collect();
    assert_eq!(listed, ["big01", "big02", &finished], "the service agrees");
    let files = names_in(dir.path());
    let new: Vec<&String> = files.iter().filter(|f| !before.contains(f)).collect();
    assert_eq!(
        new.len(),
        1,
        "only the finished clone's disk is new: {new:?}"
    );
    assert!(new[0].contains(&finished), "{new:?}");
}

/// A clone started with busctl before the window opened is found through
/// `ListJobs`: it gets a progress row whose Cancel stops it.
fn clone_started_before(app: &adw::Application) {
    let dir = TempDir::new("gui-adopt");
    let uri = host_with_big_disk(dir.path(), 4096);
    let before = names_in(dir.path());
    let bus = PrivateBus::start();
    let _service = Service::start(&bus, &uri, &[]);
    let path = vmclone_tests::reply_object_path(&bus.call(
        "StartClone",
        "ssa{sv}",
        &["big01", "big01-early", "0"],
    ));
    let window = open_window(app, &bus);
    let mut row = None;
    wait_for(LONG, "the earlier clone's row, moving", || {
        row = job_row(&window, "big01-early");
        row.as_ref()
            .is_some_and(|r| r.progress_bar().fraction() > 0.0)
    });
    assert_eq!(window.job_rows().len(), 1, "one row for the one clone");
    row.unwrap().cancel_button().emit_clicked();
    wait_for(LONG, "the cancelled toast", || {
        toast_texts(&window)
            .iter()
            .any(|t| t.contains("Cloning “big01” was cancelled"))
    });
    assert_eq!(bus.job_property(&path, "State"), "s \"cancelled\"");
    assert!(window.job_rows().is_empty());
    assert_eq!(names_in(dir.path()), before, "nothing of it is left");
    assert_eq!(names(&window), ["big01"]);
}

/// Closing the window while a clone runs hides it and keeps the clone going;
/// its end sends a notification through org.freedesktop.Notifications,
/// whose action brings the window back with the new VM selected.
fn notification_while_hidden(app: &adw::Application) {
    let notifications = NotificationServer::start();
    let dir = TempDir::new("gui-notify");
    let uri = host_with_big_disk(dir.path(), 3072);
    let bus = PrivateBus::start();
    let _service = Service::start(&bus, &uri, &[]);
    let window = open_window(app, &bus);
    let name = start_clone(&window, "big01");
    window.close();
    settle(Duration::from_millis(200));
    assert!(!window.is_visible(), "closing hides the window");
    assert!(
        job_row(&window, &name).is_some(),
        "the clone still runs, and its window with it"
    );
    assert_eq!(
        Window::in_background().as_ref(),
        Some(&window),
        "the app keeps the window for when the clone ends"
    );
    let mut notified = None;
    wait_for(LONG, "a notification that the clone is ready", || {
        notified = notifications
            .received()
            .into_iter()
            .find(|n| n.summary.contains(&name));
        notified.is_some()
    });
    let notified = notified.unwrap();
    assert_eq!(notified.summary, format!("“{name}” is ready"));
    assert!(notified.body.contains("big01"), "{}", notified.body);
    assert!(
        notified.actions.iter().any(|a| a == "default"),
        "a click on it opens the VM: {:?}",
        notified.actions
    );
    assert!(
        busctl_list_vms(&bus).iter().any(|vm| vm.name == name),
        "the clone was made while the window was closed"
    );
    // A click on the notification.
    notifications.invoke(notified.id, "default");
    wait_for(LONG, "the window to come back", || window.is_visible());
    wait_for(LONG, "the new VM selected", || {
        window.selected_vm().is_some_and(|vm| vm.name == name)
    });
    assert!(window.application().is_some(), "back in the application");
    screenshot(&window, "back-from-notification");
}

/// A VM with a real qcow2 disk becomes a template through its menu and a
/// confirmation: the row shows the badge, the image is read-only, and the
/// dialog offers a linked clone.
fn convert_to_template(app: &adw::Application) {
    let dir = TempDir::new("gui-convert");
    let disk = dir.path().join("conv01.qcow2");
    qemu_img(&["create", "-q", "-f", "qcow2", disk.to_str().unwrap(), "64M"]);
    let uri = test_driver_uri(
        dir.path(),
        &format!(
            "<node>
  <domain type='test' xmlns:test='http://libvirt.org/schemas/domain/test/1.0'>
    <test:runstate>5</test:runstate>
    <name>conv01</name>
    <uuid>0b5e1c2d-3e4f-4a5b-8c6d-7e8f9a0b1c3a</uuid>
    <memory unit='MiB'>512</memory>
    <vcpu>1</vcpu>
    <os><type arch='x86_64'>hvm</type></os>
    <devices>
      <disk type='file' device='disk'>
        <driver name='qemu' type='qcow2'/>
        <source file='{}'/>
        <target dev='vda' bus='virtio'/>
      </disk>
    </devices>
  </domain>
</node>",
            disk.display()
        ),
    );
    let bus = PrivateBus::start();
    let _service = Service::start(&bus, &uri, &[]);
    let window = open_window(app, &bus);
    wait_for(LONG, "the row", || {
        window
            .visible_rows()
            .iter()
            .any(|r| r.name_text() == "conv01")
    });
    assert!(!row_named(&window, "conv01").is_template_shown());
    let dialog = open_dialog_for(&window, "conv01");
    assert!(!dialog.storage_row().is_sensitive(), "no linked clone yet");
    dialog.close();

    let menu = open_menu(&row_named(&window, "conv01").menu_button());
    activate_menu_item(&menu, "Convert to Template…");
    let mut confirmation = None;
    wait_for(LONG, "the confirmation", || {
        confirmation = visible_dialogs().into_iter().next();
        confirmation.is_some()
    });
    let confirmation = confirmation.unwrap();
    let heading = confirmation.heading().unwrap_or_default();
    assert!(heading.contains("conv01"), "{heading}");
    let body = confirmation.body();
    assert!(
        body.contains("read-only"),
        "it says the disks become read-only: {body}"
    );
    screenshot(&confirmation, "convert-to-template");
    assert!(
        busctl_list_vms(&bus).iter().all(|vm| !vm.is_template),
        "nothing changed before the confirmation"
    );
    button_labelled(&confirmation, "Convert").emit_clicked();
    wait_for(LONG, "the template badge", || {
        window
            .visible_rows()
            .iter()
            .any(|r| r.name_text() == "conv01" && r.is_template_shown())
    });
    assert!(busctl_list_vms(&bus)[0].is_template, "the service agrees");
    let mode = std::fs::metadata(&disk).unwrap().permissions();
    assert!(mode.readonly(), "the disk image is read-only: {mode:?}");
    wait_for(LONG, "the toast", || {
        toast_texts(&window)
            .iter()
            .any(|t| t.contains("“conv01” is now a template"))
    });
    let menu = open_menu(&row_named(&window, "conv01").menu_button());
    assert_eq!(
        menu_item_sensitive(&menu, "Convert to Template…"),
        None,
        "a template is not offered the conversion again"
    );
    row_named(&window, "conv01").menu_button().popdown();
    window.templates_button().set_active(true);
    wait_for(LONG, "the templates filter to list it", || {
        names(&window) == ["conv01"]
    });
    let dialog = open_dialog_for(&window, "conv01");
    assert!(dialog.storage_row().is_sensitive(), "Linked is offered now");
    assert_eq!(dialog.storage(), vmclone::client::Storage::Linked);
}

/// A template whose disk is a real qcow2 image: the dialog offers a linked
/// clone by default, and the clone's disk is an overlay backed by the template.
fn linked_clone(app: &adw::Application) {
    let dir = TempDir::new("gui-linked");
    let base = dir.path().join("base.qcow2");
    qemu_img(&["create", "-q", "-f", "qcow2", base.to_str().unwrap(), "1G"]);
    let uri = test_driver_uri(
        dir.path(),
        &format!(
            "<node>
  <domain type='test' xmlns:test='http://libvirt.org/schemas/domain/test/1.0'>
    <test:runstate>5</test:runstate>
    <name>debian-template</name>
    <uuid>0b5e1c2d-3e4f-4a5b-8c6d-7e8f9a0b1c2e</uuid>
    <metadata><vmclone:template xmlns:vmclone='https://vmclone.org/xmlns/vmclone/1'/></metadata>
    <memory unit='MiB'>512</memory>
    <vcpu>1</vcpu>
    <os><type arch='x86_64'>hvm</type></os>
    <devices>
      <disk type='file' device='disk'>
        <driver name='qemu' type='qcow2'/>
        <source file='{}'/>
        <target dev='vda' bus='virtio'/>
      </disk>
    </devices>
  </domain>
</node>",
            base.display()
        ),
    );
    let bus = PrivateBus::start();
    let _service = Service::start(&bus, &uri, &[]);
    let window = open_window(app, &bus);
    wait_for(LONG, "the template row", || {
        window
            .visible_rows()
            .iter()
            .any(|r| r.name_text() == "debian-template" && r.is_template_shown())
    });
    let dialog = open_dialog_for(&window, "debian-template");
    assert!(
        dialog.storage_row().is_sensitive(),
        "templates offer linked clones"
    );
    assert_eq!(dialog.storage(), vmclone::client::Storage::Linked);
    wait_for(LONG, "the proposed name to be accepted", || {
        dialog.can_clone()
    });
    screenshot(&dialog, "clone-dialog-template");
    confirm(&dialog);
    wait_for(LONG, "the success toast", || {
        toast_texts(&window)
            .iter()
            .any(|t| t.contains("debian-template-clone"))
    });
    let overlay = names_in(dir.path())
        .into_iter()
        .find(|f| f.contains("debian-template-clone"))
        .expect("the clone has its own overlay file");
    let info = qemu_img(&["info", "-U", dir.path().join(&overlay).to_str().unwrap()]);
    assert!(
        info.contains(&format!("backing file: {}", base.display())),
        "{overlay} is linked to the template: {info}"
    );
}

/// The service is killed while it copies: no Finished signal ever comes, yet
/// the progress bar goes and a toast says what happened.
fn service_dies_mid_clone(app: &adw::Application) {
    let dir = TempDir::new("gui-dies");
    let uri = host_with_big_disk(dir.path(), 4096);
    let bus = PrivateBus::start();
    let service = Service::start(&bus, &uri, &[]);
    let window = open_window(app, &bus);
    let dialog = open_dialog_for(&window, "big01");
    wait_clone_offered(&dialog);
    confirm(&dialog);
    wait_for(LONG, "the progress row to move", || {
        window
            .job_rows()
            .first()
            .is_some_and(|r| r.progress_bar().fraction() > 0.0)
    });
    let _state = service.kill9();
    wait_for(LONG, "the progress row to go", || {
        window.job_rows().is_empty()
    });
    wait_for(LONG, "a toast saying the service stopped", || {
        toast_texts(&window)
            .iter()
            .any(|t| t.contains("service stopped"))
    });
    screenshot(&window, "service-died-mid-clone");
}

/// The same on the host's libvirtd: two QEMU VMs with raw disks of real
/// data, cloned at the same time; the first is cancelled mid-copy.
fn real_parallel_clones_one_cancelled(app: &adw::Application) {
    let lab = Lab::new("gui-parallel");
    let (one, two) = (lab.name("one"), lab.name("two"));
    for vm in [&one, &two] {
        let disk = lab.path(&format!("{vm}.raw"));
        vmclone_tests::process::run(
            "dd",
            &[
                "if=/dev/urandom",
                &format!("of={}", disk.display()),
                "bs=1M",
                "count=3072",
                "status=none",
            ],
        );
        lab.define(vm, "", &disk_xml(&disk, "raw"));
    }
    let before = lab.files();
    let bus = PrivateBus::start();
    let _service = Service::start(&bus, SYSTEM_URI, &[]);
    let window = open_window(app, &bus);
    // The host may hold other VMs: show only this lab's.
    window.search_button().set_active(true);
    window
        .search_entry()
        .set_text(lab.name("").trim_end_matches('-'));
    wait_for(LONG, "the lab's VMs", || {
        names(&window) == [one.clone(), two.clone()]
    });
    let cancelled = start_clone(&window, &one);
    let finished = start_clone(&window, &two);
    wait_for(LONG, "both copying", || {
        [&cancelled, &finished]
            .iter()
            .all(|name| job_row(&window, name).is_some_and(|r| r.progress_bar().fraction() > 0.0))
    });
    let other = job_row(&window, &finished).expect("the other clone runs");
    assert!(other.progress_bar().fraction() < 1.0, "and is not done yet");
    job_row(&window, &cancelled)
        .unwrap()
        .cancel_button()
        .emit_clicked();
    let mut seen = std::collections::BTreeSet::new();
    let ready = format!("“{finished}” is ready");
    wait_for(LONG, "both toasts", || {
        seen.extend(toast_texts(&window));
        seen.iter().any(|t| t.contains("was cancelled")) && seen.iter().any(|t| t.contains(&ready))
    });
    let mut vms = vec![one.clone(), two.clone(), finished.clone()];
    vms.sort();
    assert_eq!(lab.vms(), vms, "libvirt has the finished clone only");
    let files = lab.files();
    let new: Vec<_> = files.keys().filter(|f| !before.contains_key(*f)).collect();
    assert_eq!(
        new.len(),
        1,
        "only the finished clone's disk is new: {new:?}"
    );
    assert!(new[0].to_string_lossy().contains(&finished), "{new:?}");
    screenshot(&window, "real-parallel-clones");
}
