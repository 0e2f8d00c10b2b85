//! The clone dialog's plan, live clones and the identity switch, in a real
//! window (Xvfb) against the real service on libvirt's test driver: the plan
//! shown is what `PlanClone` says and follows every option, a destination
//! without the space disables Clone with the reason, a running VM's dialog
//! says how it is copied, the identity switch is remembered and reaches the
//! clone's options.

mod support;

use std::time::{Duration, Instant};

use adw::prelude::*;
use support::*;
use vmclone::clone_dialog::CloneDialog;
use vmclone_tests::{big_volume_host, demo_host_uri, DetailedHost, PrivateBus, Service, TempDir};

fn main() {
    let desktop = Desktop::start();
    let app = &desktop.app;
    let ok = run_scenarios(&[
        scenario("the_plan_is_plan_clone_and_follows_the_options", &|| {
            plan_follows_options(app)
        }),
        scenario(
            "a_destination_without_space_disables_clone_with_the_reason",
            &|| no_space(app),
        ),
        scenario(
            "a_running_vm_is_cloned_live_and_the_dialog_says_so",
            &|| live_dialog(app),
        ),
        scenario("the_identity_switch_is_on_remembered_and_sent", &|| {
            identity_switch(app)
        }),
    ]);
    drop(desktop);
    if !ok {
        std::process::exit(1);
    }
}

/// Sizes as the dialog writes them (binary units).
fn size_text(bytes: u64) -> String {
    gtk::glib::format_size_full(bytes, gtk::glib::FormatSizeFlags::IEC_UNITS).to_string()
}

/// Waits until the dialog shows the plan for its options now.
fn settled_plan(dialog: &CloneDialog) -> vmclone::client::ClonePlan {
    let mut plan = None;
    wait_for(LONG, "the plan", || {
        plan = dialog.plan();
        plan.is_some()
    });
    plan.unwrap()
}

/// Milliseconds from `change` until the plan shown is the one for it.
fn plan_update_ms(dialog: &CloneDialog, change: impl FnOnce()) -> f64 {
    let start = Instant::now();
    change();
    assert!(!dialog.plan_settled(), "a change asks for a new plan");
    wait_for(LONG, "the new plan", || dialog.plan_settled());
    start.elapsed().as_secs_f64() * 1000.0
}

fn plan_follows_options(app: &adw::Application) {
    let dir = TempDir::new("gui-plan");
    let host = DetailedHost::create(dir.path());
    let bus = PrivateBus::start();
    let _service = Service::start(&bus, &host.uri, &[]);
    let window = open_window(app, &bus);
    let dialog = open_dialog_for(&window, DetailedHost::VM);
    let plan = settled_plan(&dialog);
    wait_for(LONG, "Clone to be offered", || dialog.can_clone());

    // What the dialog shows is what busctl's PlanClone says.
    let name = format!("{}-clone", DetailedHost::VM);
    let expected = bus.call_json("PlanClone", "ssa{sv}", &[DetailedHost::VM, &name, "0"]);
    assert_eq!(plan.bytes_to_copy, expected["bytes-to-copy"]);
    assert_eq!(plan.fits, expected["fits"] == true);
    let disks: Vec<(String, String, String)> = expected["disks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            let s = |k: &str| d[k].as_str().unwrap().to_string();
            (s("target"), s("action"), s("destination"))
        })
        .collect();
    let shown: Vec<(String, String, String)> = plan
        .disks
        .iter()
        .map(|d| (d.target.clone(), d.action.clone(), d.destination.clone()))
        .collect();
    assert_eq!(shown, disks);
    assert_eq!(shown.len(), 2, "two disks: {shown:?}");
    let texts = label_texts(dialog.upcast_ref());
    for (target, _, destination) in &disks {
        assert!(
            texts
                .iter()
                .any(|t| t.starts_with(&format!("{target}: copied"))),
            "{target} is shown copied: {texts:?}"
        );
        assert!(
            texts.iter().any(|t| t.contains(destination.as_str())),
            "{destination} is shown: {texts:?}"
        );
    }
    let size = size_text(plan.bytes_to_copy);
    assert!(
        texts.iter().any(|t| *t == format!("{size} to copy")),
        "{size} to copy: {texts:?}"
    );
    // The UEFI variables are copied; the TPM never ran, so it has no state
    // to copy yet (the service's plan says so among its warnings).
    let nvram = plan.nvram.as_ref().expect("a UEFI VM's variables");
    assert_eq!(nvram.destination, expected["nvram"]["destination"]);
    assert!(nvram.exists);
    assert_eq!(
        plan.tpm.is_some(),
        expected["tpm"].as_object().is_some_and(|o| !o.is_empty()),
        "{:?} against {}",
        plan.tpm,
        expected["tpm"]
    );
    assert!(
        texts
            .iter()
            .any(|t| *t == format!("copied to {}", nvram.destination)),
        "{texts:?}"
    );

    // The destinations are the pool's folder and the source's own.
    let pool = host.pool_dir.display().to_string();
    let source_dir = dir.path().display().to_string();
    let offered = dialog.destinations();
    assert!(
        offered.contains(&pool) && offered.contains(&source_dir),
        "{offered:?}"
    );
    dialog.advanced_row().set_expanded(true);
    let index = offered.iter().position(|d| *d == pool).unwrap() as u32 + 1;
    let ms_destination = plan_update_ms(&dialog, || dialog.destination_row().set_selected(index));
    let plan = settled_plan(&dialog);
    assert!(
        plan.disks.iter().all(|d| d.destination.starts_with(&pool)),
        "every copy goes to the pool chosen: {:?}",
        plan.disks
    );
    assert_eq!(dialog.options().target_dir.as_deref(), Some(pool.as_str()));

    // More memory than the host has: the service's warning shows.
    let ms_memory = plan_update_ms(&dialog, || dialog.memory_spin().set_value(1_048_576.0));
    let plan = settled_plan(&dialog);
    let warning = plan
        .warnings
        .iter()
        .find(|w| w.contains("1048576 MiB"))
        .unwrap_or_else(|| panic!("a memory warning: {:?}", plan.warnings));
    assert!(
        label_texts(dialog.upcast_ref())
            .iter()
            .any(|t| t.contains(warning.as_str())),
        "the warning is shown: {warning}"
    );
    dialog.memory_spin().set_value(2048.0);

    // Three copies need three times the bytes, and each name is checked.
    let ms_copies = plan_update_ms(&dialog, || dialog.copies_spin().set_value(3.0));
    let plan = settled_plan(&dialog);
    let size = size_text(plan.bytes_to_copy * 3);
    wait_for(LONG, "the copies' names to be accepted", || {
        dialog.can_clone()
    });
    let texts = label_texts(dialog.upcast_ref());
    assert!(
        texts
            .iter()
            .any(|t| *t == format!("{size} to copy for 3 clones")),
        "{size} for three: {texts:?}"
    );
    dialog.advanced_row().set_expanded(false);
    screenshot(&dialog, "clone-dialog-plan");
    let style = adw::StyleManager::default();
    style.set_color_scheme(adw::ColorScheme::ForceDark);
    wait_for(LONG, "dark style", || style.is_dark());
    screenshot(&dialog, "dark-clone-dialog-plan");
    style.set_color_scheme(adw::ColorScheme::Default);

    // Each change is shown within 100 ms (PlanClone on the test driver is fast).
    let mut times = Vec::new();
    for vcpus in [3.0, 4.0, 1.0, 2.0, 5.0] {
        times.push(plan_update_ms(&dialog, || {
            dialog.vcpus_spin().set_value(vcpus)
        }));
    }
    times.extend([ms_destination, ms_memory, ms_copies]);
    times.sort_by(f64::total_cmp);
    let median = times[times.len() / 2];
    println!("    plan updates (ms): {times:?}, median {median:.1}");
    assert!(
        median < 100.0,
        "the plan follows a change within 100 ms: {times:?}"
    );
    dialog.close();
}

fn no_space(app: &adw::Application) {
    // The test driver's pools hold 100 GiB: a clone of this 60 GiB volume
    // needs 60 GiB where only 40 are free.
    let dir = TempDir::new("gui-no-space");
    let uri = big_volume_host(dir.path(), 60);
    let bus = PrivateBus::start();
    let _service = Service::start(&bus, &uri, &[]);
    let window = open_window(app, &bus);
    let before = busctl_list_vms(&bus);
    let dialog = open_dialog_for(&window, "big");
    let plan = settled_plan(&dialog);
    let expected = bus.call_json("PlanClone", "ssa{sv}", &["big", "big-clone", "0"]);
    assert_eq!(expected["fits"], false, "{expected}");
    assert!(!plan.fits);
    // The name is fine; the space is not.
    wait_for(LONG, "the name check", || dialog.problem().is_none());
    settle(Duration::from_millis(300));
    assert!(
        !dialog.can_clone(),
        "Clone is insensitive when it does not fit"
    );
    let reason = dialog.plan_problem().expect("the reason is shown");
    assert!(
        reason.contains("Not enough space") && reason.contains("pool “small”"),
        "names the pool: {reason}"
    );
    let (needed, free) = (size_text(60 << 30), size_text(40 << 30));
    assert!(
        reason.contains(&needed) && reason.contains(&free),
        "names what it needs ({needed}) and what is free ({free}): {reason}"
    );
    screenshot(&dialog, "clone-dialog-no-space");
    confirm(&dialog);
    settle(Duration::from_millis(300));
    assert!(
        dialog.is_visible(),
        "Enter does nothing when it does not fit"
    );
    assert_eq!(busctl_list_vms(&bus), before, "nothing was cloned");
    dialog.close();
}

fn live_dialog(app: &adw::Application) {
    // A running VM on real files (a live copy of a test-driver volume is refused).
    let dir = TempDir::new("gui-live");
    let host = DetailedHost::create(dir.path());
    let bus = PrivateBus::start();
    let _service = Service::start(&bus, &host.uri, &[]);
    let window = open_window(app, &bus);
    let vm = busctl_list_vms(&bus)
        .into_iter()
        .find(|vm| vm.state == "running")
        .expect("the host has a running VM");
    assert_eq!(vm.name, DetailedHost::RUNNING);
    let details = busctl_get_vm(&bus, &vm.id);
    assert_eq!(details["guest-agent"], false, "no agent on the test driver");
    // The details say the agent is not connected; the dialog, what that means.
    select(&window, &vm.name);
    let rows = window.details_view().expect("the details").rows();
    assert!(
        rows.iter()
            .any(|(title, _, value)| title == "Guest Agent" && value == "Not connected"),
        "{rows:?}"
    );
    let dialog = open_dialog_for(&window, &vm.name);
    let plan = settled_plan(&dialog);
    assert_eq!(plan.consistency, "crash");
    wait_for(LONG, "Clone to be offered", || dialog.can_clone());
    let text = dialog
        .live_text()
        .expect("the dialog tells about the live copy");
    assert!(
        text.contains("keeps running") && text.contains("at this moment"),
        "{text}"
    );
    assert!(
        text.contains("crash-consistent"),
        "no agent answers: {text}"
    );
    assert!(dialog.options().live, "the clone is asked for live");
    assert!(
        !dialog.storage_row().is_sensitive(),
        "a live clone cannot be linked"
    );
    screenshot(&dialog, "clone-dialog-live");
    // A phone-sized screen: the dialog fits 360 px.
    dialog.set_default_size(360, 640);
    wait_for(LONG, "the narrow size", || dialog.width() <= 360);
    screenshot(&dialog, "narrow-clone-dialog-live");
    dialog.close();

    // A shut-off VM is not cloned live and its dialog says nothing of it.
    let dialog = open_dialog_for(&window, DetailedHost::VM);
    settled_plan(&dialog);
    assert_eq!(dialog.live_text(), None);
    assert!(!dialog.options().live);
    dialog.close();
}

fn identity_switch(app: &adw::Application) {
    let settings = vmclone::settings::settings().expect("the schema");
    let key = vmclone::settings::RESET_IDENTITY;
    // A first run: the key at its default.
    settings.reset(key);
    let bus = PrivateBus::start();
    let _service = Service::start(&bus, &demo_host_uri(), &[]);
    let window = open_window(app, &bus);
    let dialog = open_dialog_for(&window, "web01");
    let switch = dialog.identity_switch();
    assert!(switch.is_active(), "on by default");
    assert!(dialog.options().reset_identity);
    let plan = settled_plan(&dialog);
    assert!(
        plan.warnings.iter().any(|w| w.contains("identity")),
        "the service's plan for a reset: {:?}",
        plan.warnings
    );
    let texts = label_texts(dialog.upcast_ref());
    assert!(texts.contains(&"Give the clone its own identity".to_string()));
    assert!(
        texts.contains(&"A new machine ID, SSH host keys and host name".to_string()),
        "{texts:?}"
    );
    assert!(
        has_accessible_labelled_by(&switch),
        "the switch is labelled"
    );
    screenshot(&dialog, "clone-dialog-identity");

    switch.set_active(false);
    assert!(!settings.boolean(key), "the choice is remembered");
    let plan = settled_plan(&dialog);
    assert!(!plan.warnings.iter().any(|w| w.contains("identity")));
    assert!(!dialog.options().reset_identity);
    dialog.close();
    let dialog = open_dialog_for(&window, "web01");
    assert!(
        !dialog.identity_switch().is_active(),
        "the next dialog starts as the last one was left"
    );
    dialog.close();
}
