//! End-to-end: the real `vmclone-service` on a private `dbus-daemon`, backed
//! by libvirt's test driver loaded from `data/demo-host.xml`, driven with
//! `busctl` (and `gdbus` where the D-Bus error name must be seen).

use std::time::Duration;

use serde_json::json;

use vmclone_tests::system::SystemBusLock;
use vmclone_tests::*;

fn start() -> (PrivateBus, Service) {
    let bus = PrivateBus::start();
    let service = Service::start(&bus, &demo_host_uri(), &[]);
    (bus, service)
}

fn names(vms: &[Vm]) -> Vec<String> {
    vms.iter().map(|v| v.name.clone()).collect()
}

#[test]
fn list_vms_reports_the_demo_host() {
    let (bus, _service) = start();
    let vms = bus.list_vms();
    assert_eq!(
        names(&vms),
        ["build01", "db01", "debian12-template", "web01", "win11"]
    );
    let db01 = vms.iter().find(|v| v.name == "db01").unwrap();
    assert_eq!(
        db01,
        &Vm {
            id: "1c2d3e4f-5a6b-4c7d-8e9f-0a1b2c3d4e5f".into(),
            name: "db01".into(),
            state: "shutoff".into(),
            vcpus: 4,
            memory_mib: 4096,
            disks: 2,
            interfaces: 2,
            is_template: false,
        }
    );
    let build01 = vms.iter().find(|v| v.name == "build01").unwrap();
    assert_eq!(build01.state, "running");
    assert!(
        vms.iter()
            .find(|v| v.name == "debian12-template")
            .unwrap()
            .is_template
    );
    // GetVm answers by name and by UUID alike.
    assert_eq!(bus.get_vm("db01"), *db01);
    assert_eq!(bus.get_vm(&db01.id), *db01);
}

#[test]
fn clone_vm_defines_an_independent_copy_and_signals_it() {
    let (bus, _service) = start();
    let signals = SignalWatch::start(&bus);
    let before = bus.list_vms();
    let uuid = reply_string(&bus.call("CloneVm", "ss", &["web01", "web02"]));
    let web01 = before.iter().find(|v| v.name == "web01").unwrap();
    assert_ne!(uuid, web01.id);
    let clone = bus.get_vm("web02");
    assert_eq!(clone.id, uuid);
    assert_eq!(clone.state, "shutoff");
    assert_eq!(
        (clone.vcpus, clone.memory_mib, clone.disks, clone.interfaces),
        (web01.vcpus, web01.memory_mib, web01.disks, web01.interfaces)
    );
    let after = bus.list_vms();
    assert_eq!(after.len(), before.len() + 1);
    // The source is unchanged.
    assert_eq!(after.iter().find(|v| v.name == "web01").unwrap(), web01);
    let signal = signals.wait_for("VmCloned", Duration::from_secs(10));
    assert!(
        signal.contains(&web01.id) && signal.contains(&uuid) && signal.contains("'web02'"),
        "VmCloned carries source, clone and name: {signal}"
    );
    assert!(signal.contains("uint64"), "and a timestamp: {signal}");
    // Exactly once: after a full round trip through the service, no second one.
    reply_string(&bus.call("CloneVm", "ss", &["web01", "web-after"]));
    let mut later = signals.collect_until("'web-after'", Duration::from_secs(10));
    later.extend(signals.drain());
    let again: Vec<&String> = later
        .iter()
        .filter(|l| l.contains("VmCloned") && l.contains(&uuid))
        .collect();
    assert!(again.is_empty(), "VmCloned came again: {again:?}");
}

#[test]
fn options_change_what_was_asked_and_nothing_else() {
    let (bus, _service) = start();
    let out = bus.gdbus_call(
        "CloneVmWithOptions",
        &[
            "db01",
            "db02",
            "{'vcpus': <uint32 2>, 'memory-mib': <uint64 1024>, 'uuid': <'12345678-1234-4234-8234-123456789abc'>, 'mac-addresses': <['52:54:00:aa:00:01', '52:54:00:aa:00:02']>}",
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let clone = bus.get_vm("db02");
    assert_eq!(clone.id, "12345678-1234-4234-8234-123456789abc");
    assert_eq!(
        (clone.vcpus, clone.memory_mib, clone.disks, clone.interfaces),
        (2, 1024, 2, 2)
    );
    // The given MACs are now in use: a second clone asking for one is refused.
    let again = bus.gdbus_call(
        "CloneVmWithOptions",
        &[
            "db01",
            "db03",
            "{'mac-addresses': <['52:54:00:aa:00:02', '52:54:00:aa:00:03']>}",
        ],
    );
    let (name, message) = gdbus_error(&again);
    assert_eq!(name, "org.vmclone.Error.MacInUse");
    assert!(message.contains("52:54:00:aa:00:02"), "{message}");
}

#[test]
fn errors_are_named_and_explain_themselves() {
    let (bus, _service) = start();
    let before = bus.list_vms();
    let cases: &[(&str, &[&str], &str, &str)] = &[
        (
            "CloneVm",
            &["nope", "x"],
            "org.vmclone.Error.NotFound",
            "nope",
        ),
        (
            "CloneVm",
            &["web01", "a/b"],
            "org.vmclone.Error.InvalidName",
            "/",
        ),
        (
            "CloneVm",
            &["web01", ""],
            "org.vmclone.Error.InvalidName",
            "",
        ),
        (
            "CloneVm",
            &["web01", " lead"],
            "org.vmclone.Error.InvalidName",
            "space",
        ),
        (
            "CloneVm",
            &["web01", "db01"],
            "org.vmclone.Error.NameExists",
            "db01",
        ),
        (
            "CloneVm",
            &["build01", "build02"],
            "org.vmclone.Error.SourceNotShutOff",
            "running",
        ),
        (
            // The way out: a live clone.
            "CloneVm",
            &["build01", "build02"],
            "org.vmclone.Error.SourceNotShutOff",
            "“live”",
        ),
        (
            "CloneVmWithOptions",
            &[
                "debian12-template",
                "w3",
                "{'live': <true>, 'storage': <'linked'>}",
            ],
            "org.vmclone.Error.InvalidOption",
            "“live”",
        ),
        (
            // The demo host's disks are test-driver volumes, which QEMU's backup cannot write:
            // the plan refuses them as the clone does.
            "PlanClone",
            &["build01", "build02", "{'live': <true>}"],
            "org.vmclone.Error.Storage",
            "only while the VM is shut off",
        ),
        (
            "CloneVmWithOptions",
            &["build01", "build02", "{'live': <true>}"],
            "org.vmclone.Error.Storage",
            "only while the VM is shut off",
        ),
        (
            "CloneVmWithOptions",
            &["web01", "w3", "{'colour': <'red'>}"],
            "org.vmclone.Error.InvalidOption",
            "colour",
        ),
        (
            "CloneVmWithOptions",
            &["web01", "w3", "{'vcpus': <'four'>}"],
            "org.vmclone.Error.InvalidOption",
            "vcpus",
        ),
        (
            "CloneVmWithOptions",
            &["web01", "w3", "{'mac-addresses': <['52:54:00:1e:02:01']>}"],
            "org.vmclone.Error.MacInUse",
            "52:54:00:1e:02:01",
        ),
        (
            "CloneVmWithOptions",
            &["web01", "w3", "{'storage': <'linked'>}"],
            "org.vmclone.Error.NotATemplate",
            "template",
        ),
        ("GetVm", &["nope"], "org.vmclone.Error.NotFound", "nope"),
        (
            "CheckName",
            &["db01"],
            "org.vmclone.Error.NameExists",
            "db01",
        ),
    ];
    for (method, args, want, mention) in cases {
        let out = bus.gdbus_call(method, args);
        let (name, message) = gdbus_error(&out);
        assert_eq!(&name, want, "{method} {args:?}: {message}");
        assert!(
            message.len() > 20,
            "a message a person can act on: {message:?}"
        );
        assert!(
            message.contains(mention),
            "{method} {args:?}: {message:?} should mention {mention:?}"
        );
    }
    // A 101-character name is too long; 100 is fine.
    let long = "x".repeat(101);
    let (name, _) = gdbus_error(&bus.gdbus_call("CheckName", &[&long]));
    assert_eq!(name, "org.vmclone.Error.InvalidName");
    assert!(bus
        .gdbus_call("CheckName", &[&"x".repeat(100)])
        .status
        .success());
    // Nothing was created by any of the failures.
    assert_eq!(bus.list_vms(), before);
}

#[test]
fn awkward_names_round_trip() {
    let (bus, _service) = start();
    for name in ["a&b <\"x'>", "Ünïcødé VM ☃", "with  inner  spaces"] {
        let uuid = reply_string(&bus.call("CloneVm", "ss", &["web01", name]));
        let vm = bus.get_vm(name);
        assert_eq!(vm.name, name);
        assert_eq!(vm.id, uuid);
    }
}

#[test]
fn same_source_cloned_again_and_again() {
    let (bus, _service) = start();
    for n in 0..3 {
        reply_string(&bus.call("CloneVm", "ss", &["db01", &format!("db01-copy{n}")]));
    }
    let vms = bus.list_vms();
    assert!(["db01-copy0", "db01-copy1", "db01-copy2"]
        .iter()
        .all(|n| vms.iter().any(|v| &v.name == n)));
}

#[test]
fn two_concurrent_clones_to_one_name_exactly_one_wins() {
    let (bus, _service) = start();
    let before = bus.list_vms().len();
    let outs: Vec<std::process::Output> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..2)
            .map(|_| s.spawn(|| bus.gdbus_call("CloneVm", &["db01", "twin"])))
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let ok = outs.iter().filter(|o| o.status.success()).count();
    assert_eq!(ok, 1, "exactly one clone succeeds");
    let failed = outs.iter().find(|o| !o.status.success()).unwrap();
    assert_eq!(gdbus_error(failed).0, "org.vmclone.Error.NameExists");
    let vms = bus.list_vms();
    assert_eq!(vms.len(), before + 1);
    assert_eq!(vms.iter().filter(|v| v.name == "twin").count(), 1);
}

#[test]
fn batch_validates_every_name_first_then_reports_per_name() {
    let (bus, _service) = start();
    let before = bus.list_vms();
    // One bad name: nothing at all is made.
    let (name, message) =
        gdbus_error(&bus.gdbus_call("CloneVms", &["web01", "['ok1', 'db01', 'ok2']", "{}"]));
    assert_eq!(name, "org.vmclone.Error.NameExists");
    assert!(message.contains("db01"), "{message}");
    assert_eq!(bus.list_vms(), before);
    let out =
        stdout_ok(&bus.gdbus_call("CloneVms", &["web01", "['web-a', 'web-b', 'web-c']", "{}"]));
    for n in ["web-a", "web-b", "web-c"] {
        let vm = bus.get_vm(n);
        assert!(out.contains(&vm.id), "{out} lists {n}'s UUID");
    }
}

#[test]
fn a_failing_clone_leaves_the_host_as_it_was() {
    let dir = TempDir::new("fail");
    let disk = dir.path().join("ok.raw");
    std::fs::write(&disk, vec![7u8; 1 << 20]).unwrap();
    // The second disk is a network disk, which cannot be copied.
    let host = format!(
        r#"<node>
  <domain type='test' xmlns:test='http://libvirt.org/schemas/domain/test/1.0'>
    <test:runstate>5</test:runstate>
    <name>mixed</name>
    <memory>65536</memory>
    <os><type>hvm</type></os>
    <devices>
      <disk type='file' device='disk'><source file='{}'/><target dev='vda'/></disk>
      <disk type='network' device='disk'>
        <source protocol='http' name='/disk.img'><host name='example.org' port='80'/></source>
        <target dev='vdb'/>
      </disk>
    </devices>
  </domain>
</node>"#,
        disk.display()
    );
    let uri = test_driver_uri(dir.path(), &host);
    let bus = PrivateBus::start();
    let _service = Service::start(&bus, &uri, &[]);
    let files_before = names_in(dir.path());
    let vms_before = bus.list_vms();
    let (name, message) = gdbus_error(&bus.gdbus_call("CloneVm", &["mixed", "mixed2"]));
    assert_eq!(name, "org.vmclone.Error.Storage");
    assert!(
        message.contains("vdb") && message.contains("network"),
        "{message}"
    );
    assert_eq!(names_in(dir.path()), files_before);
    assert_eq!(bus.list_vms(), vms_before);
}

#[test]
fn start_clone_returns_a_job_that_reports_and_finishes() {
    let (bus, _service) = start();
    let signals = SignalWatch::start(&bus);
    let path = reply_object_path(&bus.call("StartClone", "ssa{sv}", &["db01", "db-job", "0"]));
    assert!(path.starts_with("/org/vmclone/Manager/jobs/"), "{path}");
    let finished = signals.wait_for("org.vmclone.Job.Finished", Duration::from_secs(20));
    assert!(
        finished.contains(&path) && finished.contains("'succeeded'"),
        "{finished}"
    );
    let prop = |name: &str| bus.job_property(&path, name);
    assert_eq!(prop("State"), "s \"succeeded\"");
    assert_eq!(prop("NewName"), "s \"db-job\"");
    assert_eq!(prop("SourceVmId"), "s \"db01\"");
    let id = bus.get_vm("db-job").id;
    assert_eq!(prop("ClonedVmId"), format!("s \"{id}\""));
    assert_eq!(prop("Error"), "s \"\"");
    // db01's volumes hold 400 + 1200 MiB in the demo pool; the job counted them.
    assert_eq!(prop("BytesTotal"), format!("t {}", 1600u64 << 20));
    assert_eq!(prop("BytesDone"), prop("BytesTotal"));
    // A failing job says why, by name.
    let path = reply_object_path(&bus.call("StartClone", "ssa{sv}", &["build01", "nope", "0"]));
    let finished = signals.wait_for(
        &format!("{path}: org.vmclone.Job.Finished"),
        Duration::from_secs(20),
    );
    assert!(finished.contains("'failed'"), "{finished}");
    assert_eq!(
        bus.job_property(&path, "ErrorName"),
        "s \"org.vmclone.Error.SourceNotShutOff\""
    );
}

#[test]
fn the_service_answers_while_a_clone_runs() {
    // ListVms is answered while CloneVms works through several clones.
    let (bus, _service) = start();
    std::thread::scope(|s| {
        let batch =
            s.spawn(|| bus.gdbus_call("CloneVms", &["db01", "['b1', 'b2', 'b3', 'b4']", "{}"]));
        for _ in 0..5 {
            assert!(!bus.list_vms().is_empty());
        }
        assert!(batch.join().unwrap().status.success());
    });
}

#[test]
fn lifecycle_events_become_vm_state_changed() {
    let (bus, _service) = start();
    let signals = SignalWatch::start(&bus);
    let uuid = reply_string(&bus.call("CloneVm", "ss", &["web01", "web-events"]));
    let line = signals.wait_for("VmStateChanged", Duration::from_secs(10));
    assert!(line.contains(&uuid) && line.contains("'shutoff'"), "{line}");
}

#[test]
fn properties_tell_version_and_uri() {
    let (bus, _service) = start();
    assert_eq!(
        bus.property(OBJECT_PATH, INTERFACE, "Version"),
        format!("s \"{}\"", env!("CARGO_PKG_VERSION"))
    );
    assert_eq!(
        bus.property(OBJECT_PATH, INTERFACE, "LibvirtUri"),
        format!("s \"{}\"", demo_host_uri())
    );
}

#[test]
fn templates_are_reported_and_made() {
    let (bus, _service) = start();
    let signals = SignalWatch::start(&bus);
    let db01 = bus.get_vm("db01");
    assert!(!db01.is_template);
    stdout_ok(&bus.call("ConvertToTemplate", "s", &["db01"]));
    assert!(bus.get_vm("db01").is_template);
    // Clients hear of it (libvirt has no lifecycle event for this).
    let line = signals.wait_for("VmStateChanged", Duration::from_secs(10));
    assert!(line.contains(&db01.id), "{line}");
    // A running VM cannot become a template.
    let (name, _) = gdbus_error(&bus.gdbus_call("ConvertToTemplate", &["build01"]));
    assert_eq!(name, "org.vmclone.Error.SourceNotShutOff");
    // A full copy of a template is an ordinary VM.
    reply_string(&bus.call("CloneVm", "ss", &["debian12-template", "deb-full"]));
    assert!(!bus.get_vm("deb-full").is_template);
}

#[test]
fn a_given_uuid_is_used_in_libvirts_lower_case() {
    let (bus, _service) = start();
    let out = bus.gdbus_call(
        "CloneVmWithOptions",
        &[
            "web01",
            "upper",
            "{'uuid': <'ABCDEF01-2345-4678-89AB-CDEF01234567'>}",
        ],
    );
    assert!(stdout_ok(&out).contains("'abcdef01-2345-4678-89ab-cdef01234567'"));
    assert_eq!(
        bus.get_vm("upper").id,
        "abcdef01-2345-4678-89ab-cdef01234567"
    );
}

#[test]
fn a_second_service_on_the_same_state_folder_refuses_to_start() {
    let bus = PrivateBus::start();
    let first = Service::start(&bus, &demo_host_uri(), &[]);
    let other_bus = PrivateBus::start();
    let out = std::process::Command::new(built_binary("vmclone-service"))
        .args(["--address", other_bus.address(), "--no-authorization"])
        .args(["--uri", &demo_host_uri(), "--state-dir"])
        .arg(first.state_dir.path())
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("another vmclone-service"), "{err}");
    // The first one is unharmed.
    assert!(!bus.list_vms().is_empty());
}

#[test]
fn the_system_bus_never_runs_without_authorization() {
    let out = std::process::Command::new(built_binary("vmclone-service"))
        .args(["--system", "--no-authorization", "--uri", &demo_host_uri()])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("refused on the system bus"));
}

#[test]
#[ignore = "needs the system bus (sudo tools/setup-host.sh)"]
fn the_system_bus_reached_by_address_never_runs_without_authorization() {
    let _system_bus = SystemBusLock::acquire();
    let socket = "/run/dbus/system_bus_socket";
    assert!(
        std::path::Path::new(socket).exists(),
        "the system bus is not running: sudo tools/setup-host.sh"
    );
    let state = TempDir::new("sysaddr");
    let out = std::process::Command::new(built_binary("vmclone-service"))
        .args([
            "--address",
            &format!("unix:path={socket}"),
            "--no-authorization",
        ])
        .args(["--uri", &demo_host_uri(), "--state-dir"])
        .arg(state.path())
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("refused on the system bus"), "{err}");
}

#[test]
fn a_batch_reports_each_failure_and_keeps_the_clones_that_worked() {
    // The test driver's pools hold 100 GiB: the first clone of this 45 GiB
    // volume fits, the next ones do not (a libvirt error mid-batch).
    let dir = TempDir::new("batch");
    let uri = big_volume_host(dir.path(), 45);
    let bus = PrivateBus::start();
    let _service = Service::start(&bus, &uri, &[]);
    let out = stdout_ok(&bus.gdbus_call("CloneVms", &["big", "['b1', 'b2', 'b3']", "{}"]));
    let b1 = bus.get_vm("b1");
    assert!(out.contains(&format!("'{}'", b1.id)), "{out}");
    assert_eq!(
        out.matches("org.vmclone.Error.Storage: ").count(),
        2,
        "b2 and b3 fail, each reported: {out}"
    );
    assert!(out.contains("space"), "{out}");
    let names: Vec<String> = bus.list_vms().into_iter().map(|v| v.name).collect();
    assert_eq!(names, ["b1", "big"], "only the clone that worked is kept");
}

#[test]
fn busctl_alone_sees_error_names_and_signals() {
    // busctl prints only an error's message; `busctl monitor` shows its name,
    // and the signals, so a busctl user can see everything.
    use std::io::BufRead;
    let (bus, _service) = start();
    let mut monitor = bus
        .busctl_command()
        .args(["monitor", "--json=short", BUS_NAME])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let stdout = monitor.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
        {
            let _ = tx.send(line);
        }
    });
    let _monitor = ChildGuard(monitor);
    // busctl monitor subscribes asynchronously: call until it shows our calls.
    wait_until(
        Duration::from_secs(10),
        "busctl monitor to see calls",
        || {
            let _ = bus.call("CheckName", "s", &["probe"]);
            rx.try_iter()
                .any(|l| l.contains("\"member\":\"CheckName\""))
        },
    );
    let failed = bus.call("CloneVm", "ss", &["nope", "x"]);
    assert!(stderr_of(&failed).contains("nope"));
    let uuid = reply_string(&bus.call("CloneVm", "ss", &["web01", "seen-by-busctl"]));
    let (mut error_name, mut cloned) = (None, None);
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while (error_name.is_none() || cloned.is_none()) && std::time::Instant::now() < deadline {
        let Ok(line) = rx.recv_timeout(Duration::from_millis(200)) else {
            continue;
        };
        let Ok(msg) = serde_json::from_str::<serde_json::Value>(&line) else {
            continue;
        };
        if msg["type"] == "error" && msg["error_name"].is_string() {
            error_name = msg["error_name"].as_str().map(str::to_string);
        }
        if msg["member"] == "VmCloned" {
            cloned = Some(msg["payload"]["data"].clone());
        }
    }
    assert_eq!(error_name.as_deref(), Some("org.vmclone.Error.NotFound"));
    let cloned = cloned.expect("VmCloned seen by busctl monitor");
    assert_eq!(cloned[1], uuid.as_str());
    assert_eq!(cloned[2], "seen-by-busctl");
}

#[test]
fn plan_clone_tells_what_the_clone_then_does_and_changes_nothing() {
    let (bus, _service) = start();
    let signals = SignalWatch::start(&bus);
    let before = bus.list_vms();
    let plan = bus.call_json("PlanClone", "ssa{sv}", &["db01", "db02", "0"]);
    assert_eq!(bus.list_vms(), before, "a plan defines nothing");
    let disks = plan["disks"].as_array().unwrap();
    let fate: Vec<(&str, &str, &str)> = disks
        .iter()
        .map(|d| {
            (
                d["target"].as_str().unwrap(),
                d["action"].as_str().unwrap(),
                d["destination"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        fate,
        [
            ("vda", "volume", "demo-pool/db02-root.qcow2"),
            ("vdb", "volume", "demo-pool/db02-data.raw"),
        ]
    );
    // The bytes to copy are the disks' allocations: 400 + 1200 MiB in the demo pool.
    let allocated: u64 = disks.iter().map(|d| d["allocated"].as_u64().unwrap()).sum();
    assert_eq!(plan["bytes-to-copy"], allocated);
    assert_eq!(allocated, 1600 << 20);
    assert_eq!(plan["fits"], true);
    assert_eq!(plan["consistency"], "", "not a live clone");
    // The test host has less memory than db01 asks for: the plan warns.
    let warnings = plan["warnings"].as_array().unwrap();
    assert!(
        warnings
            .iter()
            .any(|w| w.as_str().unwrap().contains("4096 MiB")),
        "{warnings:?}"
    );

    // The clone that follows does what the plan said.
    let path = reply_object_path(&bus.call("StartClone", "ssa{sv}", &["db01", "db02", "0"]));
    signals.wait_for(
        &format!("{path}: org.vmclone.Job.Finished"),
        Duration::from_secs(20),
    );
    assert_eq!(bus.job_property(&path, "State"), "s \"succeeded\"");
    assert_eq!(
        bus.job_property(&path, "BytesTotal"),
        format!("t {}", plan["bytes-to-copy"])
    );
    let clone = bus.call_json("GetVm", "s", &["db02"]);
    let sizes: Vec<u64> = clone["disk-details"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["allocation"].as_u64().unwrap())
        .collect();
    let planned: Vec<u64> = disks
        .iter()
        .map(|d| d["allocated"].as_u64().unwrap())
        .collect();
    assert_eq!(sizes, planned, "the clone's disks are the copies planned");
}

#[test]
fn plan_clone_refuses_what_the_clone_refuses_by_the_same_name() {
    let (bus, _service) = start();
    let before = bus.list_vms();
    let cases: &[(&str, &str, &str, &str)] = &[
        ("build01", "b2", "{}", "org.vmclone.Error.SourceNotShutOff"),
        ("db01", "web01", "{}", "org.vmclone.Error.NameExists"),
        ("nosuchvm", "x", "{}", "org.vmclone.Error.NotFound"),
        ("db01", "a/b", "{}", "org.vmclone.Error.InvalidName"),
        (
            "db01",
            "x",
            "{'vcpus': <uint32 0>}",
            "org.vmclone.Error.InvalidOption",
        ),
        (
            "db01",
            "x",
            "{'colour': <'red'>}",
            "org.vmclone.Error.InvalidOption",
        ),
    ];
    for (source, name, options, expected) in cases {
        let (plan_error, message) =
            gdbus_error(&bus.gdbus_call("PlanClone", &[source, name, options]));
        let (clone_error, _) =
            gdbus_error(&bus.gdbus_call("CloneVmWithOptions", &[source, name, options]));
        assert_eq!(
            &plan_error, expected,
            "PlanClone {source} {name} {options}: {message}"
        );
        assert_eq!(clone_error, plan_error, "{source} {name} {options}");
        assert!(!message.is_empty());
    }
    assert_eq!(bus.list_vms(), before);
}

#[test]
fn get_vm_details_name_firmware_tpm_disks_and_nics() {
    let (bus, _service) = start();
    let db01 = bus.call_json("GetVm", "s", &["db01"]);
    assert_eq!(db01["firmware"], "bios");
    assert_eq!(db01["tpm"], false);
    assert_eq!(db01["guest-agent"], false, "shut off: no agent answers");
    let disks = pick(
        &db01["disk-details"],
        &["target", "format", "source", "capacity"],
    );
    assert_eq!(disks.len(), 2, "{disks:?}");
    assert_eq!(
        disks[1],
        json!(["vdb", "raw", "demo-pool/db01-data.raw", 100u64 << 30])
    );
    assert_eq!(disks[0][0], "vda");
    assert_eq!(
        pick(&db01["interface-details"], &["mac"]),
        [json!(["52:54:00:1e:02:01"]), json!(["52:54:00:1e:02:02"])]
    );
    let win11 = bus.call_json("GetVm", "s", &["win11"]);
    assert_eq!(
        (&win11["firmware"], &win11["tpm"]),
        (&"uefi".into(), &true.into())
    );
}

#[test]
fn a_uefi_vm_whose_variables_file_libvirt_has_not_made_yet_is_cloned() {
    // win11's NVRAM file (and its folder) do not exist: libvirt makes it from the
    // template at first start. The clone gets a path of its own in that folder.
    let (bus, _service) = start();
    let plan = bus.call_json("PlanClone", "ssa{sv}", &["win11", "win11-copy", "0"]);
    assert_eq!(
        plan["nvram"],
        json!({
            "source": "/vmclone-demo-nvram/win11_VARS.fd",
            "destination": "/vmclone-demo-nvram/win11-copy_VARS.fd",
            "exists": false,
        })
    );
    assert!(plan["warnings"]
        .to_string()
        .contains("no UEFI variables file yet"));
    reply_string(&bus.call("CloneVm", "ss", &["win11", "win11-copy"]));
    assert_eq!(
        bus.call_json("GetVm", "s", &["win11-copy"])["firmware"],
        "uefi"
    );
}
