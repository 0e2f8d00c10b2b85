//! Every command of the real `vmclonectl` against the real service on a
//! private bus (libvirt's test driver, data/demo-host.xml): text output,
//! `--json` parsed, exit statuses. What the CLI did is checked with busctl.

mod support;

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::time::Duration;

use serde_json::Value as Json;
use support::*;
use vmclone_tests::temp::file_sizes;
use vmclone_tests::{DetailedHost, PrivateBus, TempDir};
use vmclonectl::size::bytes_text;

#[test]
fn list_prints_an_aligned_table_sorted_by_name_and_json_equal_to_list_vms() {
    let demo = Demo::start();
    let text = ok(&demo.ctl(&["list"]));
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(
        lines[0].split_whitespace().collect::<Vec<_>>(),
        ["NAME", "STATE", "VCPUS", "MEMORY", "DISKS", "NICS", "TEMPLATE"]
    );
    let names: Vec<&str> = lines[1..]
        .iter()
        .map(|l| l.split_whitespace().next().unwrap())
        .collect();
    assert_eq!(
        names,
        ["build01", "db01", "debian12-template", "web01", "win11"]
    );
    // Aligned: every row's STATE column starts where the header's does.
    let at = lines[0].find("STATE").unwrap();
    for l in &lines[1..] {
        assert!(
            l[..at].ends_with("  ") && !l[at..].starts_with(' '),
            "{l:?}"
        );
    }
    assert!(text.contains("running") && text.contains("shut off") && text.contains("template"));
    assert!(
        !text.contains('\u{1b}'),
        "no colour without a terminal: {text:?}"
    );
    let db01 = lines.iter().find(|l| l.starts_with("db01 ")).unwrap();
    assert_eq!(
        db01.split_whitespace().collect::<Vec<_>>(),
        ["db01", "shut", "off", "4", "4", "GiB", "2", "2"]
    );

    let listed = json(&demo.ctl(&["list", "--json"]));
    let from_busctl = demo.bus.list_vms();
    let listed = listed.as_array().expect("an array");
    assert_eq!(listed.len(), from_busctl.len());
    for (j, vm) in listed.iter().zip(&from_busctl) {
        assert_eq!(j["name"], vm.name.as_str());
        assert_eq!(j["id"], vm.id.as_str());
        assert_eq!(j["state"], vm.state.as_str());
        assert_eq!(j["vcpus"], vm.vcpus);
        assert_eq!(j["memory-mib"], vm.memory_mib);
        assert_eq!(j["disks"], vm.disks);
        assert_eq!(j["interfaces"], vm.interfaces);
        assert_eq!(j["is-template"], vm.is_template);
    }

    let names = ok(&demo.ctl(&["list", "--names"]));
    assert_eq!(names, "build01\ndb01\ndebian12-template\nweb01\nwin11\n");
}

#[test]
fn show_prints_what_get_vm_knows_and_json_parses() {
    let demo = Demo::start();
    let web01 = demo.bus.get_vm("web01");
    let text = ok(&demo.ctl(&["show", "web01"]));
    for (key, value) in [
        ("Name", "web01"),
        ("UUID", web01.id.as_str()),
        ("State", "shut off"),
        ("vCPUs", "2"),
        ("Memory", "2 GiB"),
        ("Disks", "2"),
        ("Network interfaces", "1"),
        ("Template", "no"),
        ("Firmware", "BIOS"),
        ("TPM", "no"),
    ] {
        assert_eq!(value_of(&text, key), value, "{key} in\n{text}");
    }
    // By UUID too, as JSON.
    let j = json(&demo.ctl(&["show", &web01.id, "--json"]));
    assert_eq!(j["name"], "web01");
    assert_eq!(j["memory-mib"], 2048);
    assert_eq!(j["is-template"], false);
    assert_eq!(j["firmware"], "bios");
    assert_eq!(j["disk-details"][1]["device"], "cdrom");
    // An empty cdrom drive: no source, shared.
    assert_eq!(
        row(&text, "sda"),
        ["sda", "cdrom", "-", "-", "-", "yes", "-"],
        "{text}"
    );

    // A shut-off VM has no agent to speak of; a running one says whether it answers.
    assert!(!text.contains("Guest agent"), "{text}");
    let running = ok(&demo.ctl(&["show", "build01"]));
    assert_eq!(
        value_of(&running, "Guest agent"),
        "not connected (a live clone is crash-consistent)",
        "{running}"
    );

    assert_fails(&demo.ctl(&["show", "nosuchvm"]), 3, "nosuchvm");
}

#[test]
fn plan_names_a_pool_libvirt_fills_and_a_live_copy() {
    let demo = Demo::start();
    let text = ok(&demo.ctl(&["plan", "db01", "db02"]));
    assert!(
        text.lines()
            .any(|l| l.starts_with("pool demo-pool ") && l.ends_with("yes")),
        "{text}"
    );
    // A running VM on real files: a live plan says how, and how consistent the copy
    // will be.
    let (_dir, _host, demo) = detailed();
    let live = demo.ctl(&["plan", DetailedHost::RUNNING, "r2", "--live"]);
    let text = String::from_utf8_lossy(&live.stdout).to_string();
    assert_eq!(
        value_of(&text, "Consistency"),
        "as after a power cut (no guest agent answers)",
        "{text}{}",
        String::from_utf8_lossy(&live.stderr)
    );
}

#[test]
fn clone_names_itself_source_clone_then_clone_2_and_says_what_it_made() {
    let demo = Demo::start();
    let out = demo.ctl(&["clone", "web01"]);
    let text = ok(&out);
    let first = demo.bus.get_vm("web01-clone");
    assert_eq!(
        text,
        format!("Cloned web01 as web01-clone ({}).\n", first.id)
    );
    // Without a terminal: one line per phase on stderr, in their order; a
    // phase over before vmclonectl looked is not shown.
    let phases: Vec<String> = stderr(&out).lines().map(str::to_string).collect();
    let all = [
        "Copying the disks of web01 → web01-clone",
        "Defining the new VM web01 → web01-clone",
    ];
    let order: Vec<usize> = phases
        .iter()
        .map(|p| {
            all.iter()
                .position(|a| a == p)
                .unwrap_or_else(|| panic!("not a phase line: {p:?}"))
        })
        .collect();
    assert!(
        !order.is_empty() && order.windows(2).all(|w| w[0] < w[1]),
        "each phase at most once, in order: {phases:?}"
    );

    // By UUID, as JSON: the name follows the source's name.
    let uuid = demo.bus.get_vm("web01").id;
    let j = json(&demo.ctl(&["clone", &uuid, "--json"]));
    assert_eq!(j["name"], "web01-clone-2");
    assert_eq!(j["source"], uuid.as_str());
    assert_eq!(j["id"], demo.bus.get_vm("web01-clone-2").id.as_str());
    assert!(j["job"]
        .as_str()
        .unwrap()
        .starts_with("/org/vmclone/Manager/jobs/"));
}

#[test]
fn clone_options_reach_the_clone() {
    let demo = Demo::start();
    let uuid = "12345678-1234-4234-8234-123456789abc";
    ok(&demo.ctl(&[
        "clone",
        "web01",
        "web-big",
        "--vcpus",
        "4",
        "--memory",
        "1.5G",
        "--uuid",
        uuid,
        "--mac",
        "52:54:00:aa:bb:01",
    ]));
    let vm = demo.bus.get_vm("web-big");
    assert_eq!((vm.vcpus, vm.memory_mib, vm.id.as_str()), (4, 1536, uuid));
    // The MAC is in the clone's definition (the test driver's XML, over busctl is not
    // possible): a second clone asking for it is refused as in use.
    assert_fails(
        &demo.ctl(&["clone", "web01", "web-mac", "--mac", "52:54:00:aa:bb:01"]),
        9,
        "52:54:00:aa:bb:01",
    );
    ok(&demo.ctl(&["clone", "web01", "web-512", "--memory", "512M"]));
    assert_eq!(demo.bus.get_vm("web-512").memory_mib, 512);
    ok(&demo.ctl(&["clone", "web01", "web-4096", "--memory", "4096"]));
    assert_eq!(demo.bus.get_vm("web-4096").memory_mib, 4096);
}

#[test]
fn clone_refusals_have_their_exit_status_and_leave_nothing() {
    let demo = Demo::start();
    let before = demo.bus.list_vms();
    assert_fails(&demo.ctl(&["clone", "build01"]), 5, "running");
    assert_fails(&demo.ctl(&["clone", "web01", "db01"]), 4, "db01");
    assert_fails(&demo.ctl(&["clone", "web01", "a/b"]), 4, "");
    assert_fails(&demo.ctl(&["clone", "nosuchvm", "x"]), 3, "nosuchvm");
    assert_fails(
        &demo.ctl(&["clone", "web01", "x", "--linked"]),
        9,
        "template",
    );
    assert_fails(
        &demo.ctl(&["clone", "web01", "x", "--mac", "nonsense"]),
        9,
        "",
    );
    assert_fails(
        &demo.ctl(&["clone", "web01", "x", "--target-dir", "/nonexistent-dir"]),
        9,
        "",
    );
    assert_eq!(demo.bus.list_vms(), before, "nothing was made");
    // Usage errors are clap's, status 2, before any call.
    for bad in [
        &["clone"][..],
        &["clone", "web01", "--memory", "lots"],
        &["clone", "web01", "--vcpus", "0"],
    ] {
        assert_eq!(code(&demo.ctl(bad)), 2, "{bad:?}");
    }
}

#[test]
fn copies_go_through_clone_vms_with_one_line_or_entry_per_name() {
    let demo = Demo::start();
    let text = ok(&demo.ctl(&["clone", "db01", "--copies", "2"]));
    let (a, b) = (
        demo.bus.get_vm("db01-clone"),
        demo.bus.get_vm("db01-clone-2"),
    );
    assert_eq!(
        text,
        format!(
            "Cloned db01 as db01-clone ({}).\nCloned db01 as db01-clone-2 ({}).\n",
            a.id, b.id
        )
    );
    // Taken names are skipped.
    let j = json(&demo.ctl(&["clone", "db01", "--copies", "2", "--json"]));
    let names: Vec<&str> = j
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["db01-clone-3", "db01-clone-4"]);
    assert_eq!(j[0]["id"], demo.bus.get_vm("db01-clone-3").id.as_str());
    // With a name: NAME-1 … NAME-N; all names are checked before any work.
    ok(&demo.ctl(&["clone", "web01", "batch", "--copies", "3", "--vcpus", "1"]));
    for n in 1..=3 {
        assert_eq!(demo.bus.get_vm(&format!("batch-{n}")).vcpus, 1);
    }
    let before = demo.bus.list_vms();
    assert_fails(
        &demo.ctl(&["clone", "web01", "batch", "--copies", "2"]),
        4,
        "batch-1",
    );
    assert_eq!(demo.bus.list_vms(), before);
}

#[test]
fn no_wait_prints_the_job_which_the_service_finishes() {
    let demo = Demo::start();
    let path = ok(&demo.ctl(&["clone", "db01", "db02", "--no-wait"]));
    let path = path.trim();
    assert!(path.starts_with("/org/vmclone/Manager/jobs/"), "{path}");
    assert_eq!(
        demo.bus.wait_for_job_end(path, Duration::from_secs(30)),
        "succeeded"
    );
    demo.bus.get_vm("db02");
    let j = json(&demo.ctl(&["clone", "db01", "db03", "--no-wait", "--json"]));
    assert!(j["job"]
        .as_str()
        .unwrap()
        .starts_with("/org/vmclone/Manager/jobs/"));
    assert_eq!(j["name"], "db03");
}

#[test]
fn template_then_linked_clones() {
    let demo = Demo::start();
    let text = ok(&demo.ctl(&["template", "db01"]));
    assert!(text.starts_with("db01 is now a template"), "{text}");
    assert!(demo.bus.get_vm("db01").is_template);
    // The demo host's pool folder does not exist: the service takes the request
    // as a linked clone of a template and refuses it for its storage, naming
    // the folder (a linked clone of a VM that is not a template would be
    // status 9, as above).
    assert_fails(
        &demo.ctl(&["clone", "db01", "db-linked", "--linked"]),
        7,
        "/vmclone-demo-pool",
    );
    assert!(ok(&demo.ctl(&["list"]))
        .lines()
        .any(|l| l.starts_with("db01 ") && l.ends_with("template")));
    assert_fails(&demo.ctl(&["template", "build01"]), 5, "");
    assert_fails(&demo.ctl(&["template", "nosuchvm"]), 3, "");
}

#[test]
fn check_name_answers_by_exit_status() {
    let demo = Demo::start();
    assert_eq!(
        ok(&demo.ctl(&["check-name", "db02"])),
        "“db02” is a valid name, and no VM has it.\n"
    );
    assert_fails(&demo.ctl(&["check-name", "db01"]), 4, "db01");
    assert_fails(&demo.ctl(&["check-name", " padded"]), 4, "");
}

#[test]
fn jobs_lists_the_callers_jobs() {
    let demo = Demo::start();
    let path = ok(&demo.ctl(&["clone", "web01", "web09", "--no-wait"]));
    let path = path.trim();
    let j = json(&demo.ctl(&["jobs", "--json"]));
    let job = j
        .as_array()
        .unwrap()
        .iter()
        .find(|j| j["Path"] == path)
        .expect("our job");
    assert_eq!(job["NewName"], "web09");
    let text = ok(&demo.ctl(&["jobs"]));
    assert!(text.lines().any(|l| l.contains("web09")), "{text}");
}

#[test]
fn cancel_refuses_ended_and_unknown_jobs() {
    let demo = Demo::start();
    let path = ok(&demo.ctl(&["clone", "web01", "web09", "--no-wait"]));
    let n = path.trim().rsplit('/').next().unwrap().to_string();
    assert_eq!(
        demo.bus
            .wait_for_job_end(path.trim(), Duration::from_secs(30)),
        "succeeded"
    );
    assert_fails(&demo.ctl(&["cancel", &n]), 1, "already ended: succeeded");
    assert_fails(&demo.ctl(&["cancel", path.trim()]), 1, "already ended");
    assert_fails(&demo.ctl(&["cancel", "999"]), 3, "no such job");
    assert_eq!(code(&demo.ctl(&["cancel", "/not/a/job"])), 3);
}

#[test]
fn monitor_prints_clones_and_state_changes_as_text_and_json_lines() {
    let demo = Demo::start();
    let text = Monitor::start(demo.command(&["monitor"]));
    let json_lines = Monitor::start(demo.command(&["monitor", "--json"]));
    ok(&demo.ctl(&["clone", "web01", "web-mon"]));
    let id = demo.bus.get_vm("web-mon").id;
    // libvirt's define event, then VmCloned.
    let mut seen = vec![text.next(), text.next()];
    seen.sort();
    assert_eq!(
        seen,
        [
            format!("web-mon: cloned from web01 ({id})"),
            "web-mon: shut off".to_string()
        ]
    );
    let mut events: Vec<Json> = (0..2)
        .map(|_| serde_json::from_str(&json_lines.next()).unwrap())
        .collect();
    events.sort_by_key(|e| e["event"].as_str().unwrap().to_string());
    assert_eq!(events[0]["event"], "vm-cloned");
    assert_eq!(
        (events[0]["name"].as_str(), events[0]["id"].as_str()),
        (Some("web-mon"), Some(id.as_str()))
    );
    assert_eq!(events[0]["source"], "web01");
    assert!(events[0]["timestamp"].as_u64().unwrap() > 1_600_000_000);
    assert_eq!(events[1]["event"], "vm-state-changed");
    assert_eq!(
        (events[1]["name"].as_str(), events[1]["state"].as_str()),
        (Some("web-mon"), Some("shutoff"))
    );
    text.interrupt();
    json_lines.interrupt();
}

#[test]
fn without_a_service_or_bus_it_says_so_with_status_10() {
    let bus = PrivateBus::start();
    let out = ctl(&["list", &format!("--address={}", bus.address())])
        .output()
        .unwrap();
    assert_fails(&out, 10, "not running on this bus");
    let out = ctl(&["list", "--address=unix:path=/nonexistent/bus.sock"])
        .output()
        .unwrap();
    assert_fails(&out, 10, "/nonexistent/bus.sock");
}

#[test]
fn every_command_has_help_and_the_exit_statuses_are_listed() {
    let root = ok(&ctl(&["--help"]).output().unwrap());
    assert!(
        root.contains("Usage: vmclonectl [OPTIONS] <COMMAND>"),
        "{root}"
    );
    for (code, words) in [
        (3, "NotFound"),
        (4, "NameExists"),
        (5, "SourceNotShutOff"),
        (6, "NotAuthorized"),
        (7, "Storage"),
        (8, "Cancelled"),
        (11, "would not fit"),
    ] {
        assert!(
            root.lines()
                .any(|l| l.trim_start().starts_with(&format!("{code}  ")) && l.contains(words)),
            "exit status {code} ({words}) in --help:\n{root}"
        );
    }
    for sub in [
        "list",
        "show",
        "clone",
        "plan",
        "destinations",
        "template",
        "jobs",
        "cancel",
        "check-name",
        "monitor",
    ] {
        let help = ok(&ctl(&[sub, "--help"]).output().unwrap());
        assert!(help.contains(&format!("Usage: vmclonectl {sub}")), "{help}");
        assert!(help.contains("--address"), "{help}");
    }
    let version = ok(&ctl(&["--version"]).output().unwrap());
    assert_eq!(
        version,
        format!("vmclonectl {}\n", env!("CARGO_PKG_VERSION"))
    );
}

#[test]
fn german_with_language_de() {
    let demo = Demo::start();
    let de = |args: &[&str]| demo.command(args).env("LANGUAGE", "de").output().unwrap();
    let help = ok(&de(&["clone", "--help"]));
    assert!(
        help.contains("Aufruf:") && help.contains("Optionen:"),
        "{help}"
    );
    let table = ok(&de(&["list"]));
    assert!(
        table.starts_with("NAME") && table.contains("ausgeschaltet"),
        "{table}"
    );
    let out = de(&["clone", "build01"]);
    assert_eq!(code(&out), 5);
    let plan = ok(&de(&["plan", "web01", "web-de"]));
    assert!(
        plan.contains("neues Volume")
            && plan.ends_with("Der Klon passt. Es wurde nichts erstellt.\n"),
        "{plan}"
    );
    let help = ok(&de(&["plan", "--help"]));
    assert!(help.contains("oder 11, wenn er nicht"), "{help}");
    let show = ok(&de(&["show", "web01"]));
    assert!(
        show.contains("KAPAZITÄT") && show.contains("MODELL"),
        "{show}"
    );
    let out = de(&["check-name", "frei"]);
    assert!(
        stdout(&out).contains("ist ein gültiger Name"),
        "{}",
        stdout(&out)
    );
}

// --- plan, destinations, show with details: the detailed host's real files -----

/// The detailed host (two disks, UEFI, TPM, two NICs, a pool) on real files
/// in a scratch folder, with the service on it.
fn detailed() -> (TempDir, DetailedHost, Demo) {
    let dir = TempDir::new("cli-detailed");
    let host = DetailedHost::create(dir.path());
    let demo = Demo::on(&host.uri);
    (dir, host, demo)
}

#[test]
fn plan_says_what_the_clone_then_does_and_makes_nothing() {
    let (dir, host, demo) = detailed();
    let vm = DetailedHost::VM;
    let (files, vms) = (file_sizes(dir.path()), demo.bus.list_vms());

    let plan = json(&demo.ctl(&["plan", vm, "copy1", "--json"]));
    let from_busctl = demo
        .bus
        .call_json("PlanClone", "ssa{sv}", &[vm, "copy1", "0"]);
    assert_eq!(
        without_free_bytes(&plan),
        without_free_bytes(&from_busctl),
        "--json prints the service's plan"
    );
    assert_about_free(&plan["free-bytes"], dir.path());
    assert_eq!(plan["fits"], true);
    let disks = plan["disks"].as_array().unwrap();
    assert_eq!(disks.len(), 2);
    for (disk, (target, source)) in disks
        .iter()
        .zip([("vda", &host.disks[0]), ("vdb", &host.disks[1])])
    {
        assert_eq!(disk["target"], target);
        assert_eq!(disk["source"], source.to_str().unwrap());
        assert_eq!(disk["action"], "copy");
    }
    assert_eq!(plan["nvram"]["source"], host.nvram.to_str().unwrap());

    let text = ok(&demo.ctl(&["plan", vm, "copy1"]));
    assert!(text.starts_with(&format!("{vm} → copy1\n")), "{text}");
    for disk in disks {
        let words = row(&text, disk["target"].as_str().unwrap());
        let to_copy = bytes_text(disk["allocated"].as_u64().unwrap());
        assert_eq!(
            words,
            [
                disk["target"].as_str().unwrap(),
                "disk",
                disk["format"].as_str().unwrap(),
                "copy",
                to_copy.split(' ').next().unwrap(),
                to_copy.split(' ').nth(1).unwrap(),
                disk["destination"].as_str().unwrap(),
            ],
            "{text}"
        );
    }
    let nvram_line = format!(
        "UEFI variables:  {} → {}",
        host.nvram.display(),
        plan["nvram"]["destination"].as_str().unwrap()
    );
    assert!(text.contains(&nvram_line), "{nvram_line} in\n{text}");
    assert!(text.contains("TPM state:       none\n"), "{text}");
    let total = bytes_text(plan["bytes-to-copy"].as_u64().unwrap());
    assert!(
        text.contains(&format!("To copy:         {total}\n")),
        "{text}"
    );
    let fs = &plan["filesystems"][0];
    let fs_row = row(&text, fs["folder"].as_str().unwrap());
    assert_eq!(fs_row.last(), Some(&"yes"), "{text}");
    assert!(
        fs_row.join(" ").starts_with(&format!(
            "{} {}",
            fs["folder"].as_str().unwrap(),
            bytes_text(fs["bytes-needed"].as_u64().unwrap())
        )),
        "{text}"
    );
    assert!(
        text.contains("  - The VM's TPM has no state yet"),
        "the service's warning: {text}"
    );
    assert!(
        text.contains(&format!(
            "  {} (pool {}, ",
            host.pool_dir.display(),
            DetailedHost::POOL
        )),
        "the folders --target-dir accepts: {text}"
    );
    assert!(
        text.ends_with("The clone fits. Nothing was made.\n"),
        "{text}"
    );

    assert_eq!(file_sizes(dir.path()), files, "a plan made no file");
    assert_eq!(demo.bus.list_vms(), vms, "a plan made no VM");
    ok(&demo.ctl(&["check-name", "copy1"]));

    // The clone that follows does what the plan said: the bytes its job
    // copies, the files it makes, the disks the new VM uses.
    let started = json(&demo.ctl(&["clone", vm, "copy1", "--no-wait", "--json"]));
    let job = started["job"].as_str().unwrap();
    assert_eq!(
        demo.bus.wait_for_job_end(job, Duration::from_secs(60)),
        "succeeded"
    );
    assert_eq!(
        demo.bus.job_property(job, "BytesTotal"),
        format!("t {}", plan["bytes-to-copy"])
    );
    assert_eq!(new_files(&files, dir.path()), planned_files(&plan));
    let clone = demo.bus.call_json("GetVm", "s", &["copy1"]);
    let used: Vec<&Json> = clone["disk-details"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| &d["source"])
        .collect();
    let planned: Vec<&Json> = disks.iter().map(|d| &d["destination"]).collect();
    assert_eq!(used, planned);

    // Into the pool's folder: the plan and the clone agree there too.
    let pool = host.pool_dir.to_str().unwrap();
    let files = file_sizes(dir.path());
    let plan = json(&demo.ctl(&["plan", vm, "copy2", "--target-dir", pool, "--json"]));
    for d in plan["disks"].as_array().unwrap() {
        assert!(d["destination"].as_str().unwrap().starts_with(pool), "{d}");
    }
    assert_eq!(plan["filesystems"][0]["folder"], pool);
    ok(&demo.ctl(&["clone", vm, "copy2", "--target-dir", pool]));
    assert_eq!(new_files(&files, dir.path()), planned_files(&plan));
}

#[test]
fn plan_of_copies_adds_up_their_space_and_names_them_as_clone_does() {
    let (dir, _host, demo) = detailed();
    let vm = DetailedHost::VM;
    let plans = json(&demo.ctl(&["plan", vm, "--copies", "2", "--json"]));
    let plans = plans.as_array().expect("one entry per copy");
    let names: Vec<&str> = plans.iter().map(|p| p["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["detailed01-clone", "detailed01-clone-2"]);
    for p in plans {
        let alone = demo.bus.call_json(
            "PlanClone",
            "ssa{sv}",
            &[vm, p["name"].as_str().unwrap(), "0"],
        );
        assert_eq!(without_free_bytes(&p["plan"]), without_free_bytes(&alone));
    }
    let one = plans[0]["plan"]["filesystems"][0]["bytes-needed"]
        .as_u64()
        .unwrap();
    let text = ok(&demo.ctl(&["plan", vm, "--copies", "2"]));
    let folder = plans[0]["plan"]["filesystems"][0]["folder"]
        .as_str()
        .unwrap();
    let needed = bytes_text(2 * one);
    assert!(
        row(&text, folder)
            .join(" ")
            .starts_with(&format!("{folder} {needed}")),
        "both copies' bytes on their filesystem: {text}"
    );
    assert!(text.contains("detailed01 → detailed01-clone-2\n"), "{text}");
    assert!(
        text.ends_with("The clones fit. Nothing was made.\n"),
        "{text}"
    );

    let files = file_sizes(dir.path());
    ok(&demo.ctl(&["clone", vm, "--copies", "2"]));
    let planned: BTreeSet<PathBuf> = plans
        .iter()
        .flat_map(|p| planned_files(&p["plan"]))
        .collect();
    assert_eq!(new_files(&files, dir.path()), planned);
}

#[test]
fn plan_refusals_have_the_clones_exit_statuses_and_sentences() {
    let demo = Demo::start();
    let before = demo.bus.list_vms();
    for (args, status) in [
        (&["build01", "x"][..], 5),
        (&["web01", "db01"], 4),
        (&["web01", "a/b"], 4),
        (&["nosuchvm", "x"], 3),
        (&["nosuchvm"], 3),
        (&["web01", "x", "--linked"], 9),
        (&["web01", "x", "--mac", "nonsense"], 9),
        (&["web01", "x", "--target-dir", "/nonexistent-dir"], 9),
        (&["web01", "x", "--uuid", "not-a-uuid"], 9),
        (&["debian12-template", "x", "--linked"], 7),
        (&["web01", "batch", "--copies", "2", "--vcpus", "0"], 2),
    ] {
        let plan = demo.ctl(&[&["plan"][..], args].concat());
        let clone = demo.ctl(&[&["clone"][..], args].concat());
        assert_eq!(code(&plan), status, "plan {args:?}: {}", stderr(&plan));
        assert_eq!(code(&clone), status, "clone {args:?}: {}", stderr(&clone));
        if status != 2 {
            // The same one sentence (clone's stderr may have phase lines before it).
            let sentence = assert_fails(&plan, status, "");
            assert_eq!(sentence, assert_fails(&clone, status, ""), "{args:?}");
            assert!(stdout(&plan).is_empty(), "{args:?}: {}", stdout(&plan));
        }
    }
    assert_eq!(demo.bus.list_vms(), before, "nothing was made");
}

#[test]
fn destinations_lists_the_pools_folders_with_their_free_space() {
    let (dir, host, demo) = detailed();
    let listed = json(&demo.ctl(&["destinations", "--json"]));
    let from_busctl = demo.bus.call_json("ListDestinations", "", &[]);
    assert_eq!(
        without_free_bytes(&listed),
        without_free_bytes(&from_busctl)
    );
    let only = listed.as_array().expect("an array");
    assert_eq!(only.len(), 1, "{listed}");
    assert_eq!(only[0]["path"], host.pool_dir.to_str().unwrap());
    assert_eq!(only[0]["pool"], DetailedHost::POOL);
    assert_about_free(&only[0]["free-bytes"], dir.path());

    let text = ok(&demo.ctl(&["destinations"]));
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(
        lines[0].split_whitespace().collect::<Vec<_>>(),
        ["FOLDER", "POOL", "FREE"]
    );
    let words = row(&text, host.pool_dir.to_str().unwrap());
    assert_eq!(words[1], DetailedHost::POOL, "{text}");
    assert!(
        ["GiB", "MiB", "TiB"].contains(&words[3]),
        "a size people read: {text}"
    );
    assert_eq!(lines.len(), 2, "{text}");

    // The demo host's pool has no folder on this machine: none to offer.
    let demo = Demo::start();
    let out = demo.ctl(&["destinations"]);
    assert_eq!(ok(&out), "");
    assert!(
        stderr(&out).contains("No active storage pool has a folder"),
        "{}",
        stderr(&out)
    );
    assert_eq!(
        json(&demo.ctl(&["destinations", "--json"])),
        Json::Array(vec![])
    );
}

#[test]
fn show_lists_firmware_tpm_disks_and_nics() {
    let (_dir, host, demo) = detailed();
    let vm = DetailedHost::VM;
    let got = demo.bus.call_json("GetVm", "s", &[vm]);
    assert_eq!(json(&demo.ctl(&["show", vm, "--json"])), got);
    let text = ok(&demo.ctl(&["show", vm]));
    let value = |key: &str| value_of(&text, key);
    assert_eq!(value("Firmware"), "UEFI");
    assert_eq!(value("TPM"), "yes");
    assert_eq!(value("Disks"), "2");
    assert_eq!(value("Network interfaces"), "2");
    let lines: Vec<&str> = text.lines().collect();
    let disks_at = lines.iter().position(|l| l.starts_with("Disks:")).unwrap();
    assert_eq!(
        lines[disks_at + 1].split_whitespace().collect::<Vec<_>>(),
        [
            "TARGET",
            "DEVICE",
            "FORMAT",
            "CAPACITY",
            "ALLOCATED",
            "SHARED",
            "SOURCE"
        ]
    );
    for (i, (disk, path)) in got["disk-details"]
        .as_array()
        .unwrap()
        .iter()
        .zip(&host.disks)
        .enumerate()
    {
        let line = lines[disks_at + 2 + i];
        assert!(line.starts_with("  "), "indented under Disks: {line:?}");
        let capacity = bytes_text(disk["capacity"].as_u64().unwrap());
        let allocation = bytes_text(disk["allocation"].as_u64().unwrap());
        let expected = format!(
            "{} disk {} {capacity} {allocation} no {}",
            disk["target"].as_str().unwrap(),
            disk["format"].as_str().unwrap(),
            path.display()
        );
        assert_eq!(
            line.split_whitespace().collect::<Vec<_>>().join(" "),
            expected
        );
    }
    assert_eq!(got["disk-details"][0]["capacity"], 10u64 << 30);
    let nics_at = lines
        .iter()
        .position(|l| l.starts_with("Network interfaces:"))
        .unwrap();
    assert_eq!(
        lines[nics_at + 1].split_whitespace().collect::<Vec<_>>(),
        ["TYPE", "SOURCE", "MAC", "MODEL"]
    );
    for (i, expected) in [
        ["network", "default", DetailedHost::MACS[0], "virtio"],
        ["bridge", "br0", DetailedHost::MACS[1], "e1000e"],
    ]
    .iter()
    .enumerate()
    {
        assert_eq!(
            lines[nics_at + 2 + i]
                .split_whitespace()
                .collect::<Vec<_>>(),
            expected
        );
    }
}
