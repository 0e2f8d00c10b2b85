//! The system integration, on the real thing: the project's bus policy in the running
//! system `dbus-daemon`, its polkit actions in the running `polkitd`, the built
//! `vmclone-service` as root on the system bus, users created for the test, and
//! `busctl` as the client. Plus checks of the shipped files with the tools that read them
//! (`dbus-daemon`, polkit's DTD, `systemd-analyze`, `make install`).
//!
//! The root tests change system state (files under /etc and /usr/share, users, polkitd);
//! every change is undone by a guard, and they run one at a time.

use std::collections::BTreeSet;
use std::fs;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use vmclone_tests::{
    built_binary, gdbus_error, stderr_of, stdout_ok, test_driver_uri, wait_until, workspace_root,
    ChildGuard, TempDir, BUS_NAME, INTERFACE, OBJECT_PATH,
};

const BUS_POLICY: &str = "/etc/dbus-1/system.d/org.vmclone.Manager.conf";
const POLKIT_ACTIONS: &str = "/usr/share/polkit-1/actions/org.vmclone.policy";
const POLKIT_DTD: &str = "/usr/share/polkit-1/policyconfig-1.dtd";
const RULES_DIR: &str = "/etc/polkit-1/rules.d";
/// Read by the system bus before /usr/share/dbus-1/system-services.
const ACTIVATION_DIR: &str = "/usr/local/share/dbus-1/system-services";
const POLKITD: &str = "/usr/lib/polkit-1/polkitd";
const POLKIT_NAME: &str = "org.freedesktop.PolicyKit1";
/// A higher-precedence activation file than polkit's own in /usr/share: while it is in
/// place the bus cannot start polkitd on demand (as `systemctl mask polkit` would).
const POLKIT_ACTIVATION_OVERRIDE: &str =
    "/usr/local/share/dbus-1/system-services/org.freedesktop.PolicyKit1.service";

/// Two shut-off VMs on libvirt's test driver (no disks: authorization is what is tested).
const HOST_XML: &str = r#"<node>
  <domain type="test" xmlns:test="http://libvirt.org/schemas/domain/test/1.0">
    <name>h3-web</name>
    <uuid>5b2b5a3c-2f5e-4f43-9d8e-3c1e0a7f0b01</uuid>
    <memory unit="MiB">512</memory>
    <vcpu>1</vcpu>
    <os><type>hvm</type></os>
    <devices>
      <interface type="user"><mac address="52:54:00:3a:00:01"/></interface>
    </devices>
    <test:runstate>5</test:runstate>
  </domain>
  <domain type="test" xmlns:test="http://libvirt.org/schemas/domain/test/1.0">
    <name>h3-db</name>
    <uuid>5b2b5a3c-2f5e-4f43-9d8e-3c1e0a7f0b02</uuid>
    <memory unit="MiB">512</memory>
    <vcpu>1</vcpu>
    <os><type>hvm</type></os>
    <test:runstate>5</test:runstate>
  </domain>
</node>
"#;

// ---------------------------------------------------------------------------------------
// Tests on the running system bus and polkitd (root)
// ---------------------------------------------------------------------------------------

#[test]
#[ignore = "needs root, the system bus and polkitd"]
fn polkitd_reads_the_actions_with_their_defaults() {
    let _system = RootTest::begin();
    for (action, any, inactive, active) in [
        ("org.vmclone.list-vms", "yes", "yes", "yes"),
        (
            "org.vmclone.clone-vm",
            "auth_admin",
            "auth_admin",
            "auth_admin_keep",
        ),
        (
            "org.vmclone.manage-templates",
            "auth_admin",
            "auth_admin",
            "auth_admin_keep",
        ),
    ] {
        let out = stdout_ok(&run(Command::new("pkaction").args([
            "--verbose",
            "--action-id",
            action,
        ])));
        let field = |key: &str| {
            out.lines()
                .find_map(|l| l.trim().strip_prefix(key).map(|v| v.trim().to_string()))
                .unwrap_or_else(|| panic!("pkaction shows no '{key}' for {action}:\n{out}"))
        };
        assert_eq!(field("implicit any:"), any, "{action}");
        assert_eq!(field("implicit inactive:"), inactive, "{action}");
        assert_eq!(field("implicit active:"), active, "{action}");
        assert!(
            !field("description:").is_empty(),
            "{action} has no description"
        );
    }
}

#[test]
#[ignore = "needs root, the system bus and polkitd"]
fn root_lists_and_clones_a_normal_user_lists_but_may_not_clone() {
    let _system = RootTest::begin();
    let service = SystemService::start();
    let user = TestUser::create("vmclone-test-user", None);

    // root: polkit authorizes uid 0 for every action.
    assert!(vm_names(&service).contains("h3-web"), "ListVms as root");
    let reply = stdout_ok(&root_call("CloneVm", "ss", &["h3-web", "h3-web-root"]));
    assert!(reply.starts_with("s \""), "CloneVm reply: {reply}");
    assert!(vm_names(&service).contains("h3-web-root"));

    // The normal user may read: the method, introspection, properties, Peer.
    let before = vms(&user.busctl(&list_args()));
    assert!(
        before.iter().any(|(_, name)| name == "h3-web-root"),
        "ListVms as user: {before:?}"
    );
    stdout_ok(&user.busctl(&["introspect", BUS_NAME, OBJECT_PATH]));
    let version =
        stdout_ok(&user.busctl(&["get-property", BUS_NAME, OBJECT_PATH, INTERFACE, "Version"]));
    assert!(version.starts_with("s "), "Version as user: {version}");
    stdout_ok(&user.busctl(&[
        "call",
        BUS_NAME,
        OBJECT_PATH,
        "org.freedesktop.DBus.Peer",
        "Ping",
    ]));

    // ... but not clone, with or without interactive authorization (no agent runs).
    let err = stderr_of(&user.busctl(&call_args("CloneVm", "ss", &["h3-web", "h3-web-user"])));
    assert!(
        err.contains("org.vmclone.clone-vm") && err.contains("not authorized"),
        "busctl CloneVm as a normal user: {err}"
    );
    let mut interactive = vec!["--allow-interactive-authorization=yes"];
    interactive.extend(call_args("CloneVm", "ss", &["h3-web", "h3-web-user"]));
    let err = stderr_of(&user.busctl(&interactive));
    assert!(
        err.contains("org.vmclone.clone-vm"),
        "interactive CloneVm: {err}"
    );
    let message = not_authorized(
        &user.gdbus_call("CloneVm", &["h3-web", "h3-web-user"]),
        "CloneVm",
    );
    assert!(message.contains("org.vmclone.clone-vm"), "{message}");
    not_authorized(
        &user.gdbus_call("StartClone", &["h3-web", "h3-web-job", "@a{sv} {}"]),
        "StartClone",
    );
    let message = not_authorized(
        &user.gdbus_call("ConvertToTemplate", &["h3-db"]),
        "ConvertToTemplate",
    );
    assert!(
        message.contains("org.vmclone.manage-templates"),
        "{message}"
    );

    // Nothing was created.
    let after = vms(&user.busctl(&list_args()));
    assert_eq!(before, after, "a refused call changed the VM list");
    let log = service.log_text();
    assert!(log.contains("denied by polkit"), "service log:\n{log}");
}

#[test]
#[ignore = "needs root, the system bus and polkitd"]
fn a_polkit_rule_grants_cloning_to_a_group() {
    let _system = RootTest::begin();
    let service = SystemService::start();
    let group = TestGroup::create("vmclone-test-cloners");
    let member = TestUser::create("vmclone-test-cloner", Some(&group));
    let outsider = TestUser::create("vmclone-test-user", None);

    assert!(
        !member.polkit_allows("org.vmclone.clone-vm"),
        "clone-vm allowed before any rule"
    );
    let rule = place_rules(
        "60-vmclone-test.rules",
        format!(
            "polkit.addRule(function(action, subject) {{\n\
             \x20   if (action.id == \"org.vmclone.clone-vm\" && subject.isInGroup(\"{}\")) {{\n\
             \x20       return polkit.Result.YES;\n\
             \x20   }}\n\
             }});\n",
            group.name
        ),
    );
    wait_until(Duration::from_secs(10), "polkitd to load the rule", || {
        member.polkit_allows("org.vmclone.clone-vm")
    });

    let reply =
        stdout_ok(&member.busctl(&call_args("CloneVm", "ss", &["h3-web", "h3-web-member"])));
    assert!(
        reply.starts_with("s \""),
        "CloneVm as a group member: {reply}"
    );
    assert!(vm_names(&service).contains("h3-web-member"));

    not_authorized(
        &outsider.gdbus_call("CloneVm", &["h3-web", "h3-web-outsider"]),
        "non-member",
    );
    assert!(!vm_names(&service).contains("h3-web-outsider"));

    // Without the rule the member is an ordinary user again.
    drop(rule);
    wait_until(Duration::from_secs(10), "polkitd to drop the rule", || {
        !member.polkit_allows("org.vmclone.clone-vm")
    });
    not_authorized(
        &member.gdbus_call("CloneVm", &["h3-web", "h3-web-member2"]),
        "member without the rule",
    );
    assert!(!vm_names(&service).contains("h3-web-member2"));
}

#[test]
#[ignore = "needs root, the system bus and polkitd"]
fn interactive_authorization_asks_the_agent_for_an_admin_password() {
    let _system = RootTest::begin();
    let service = SystemService::start();
    let user = TestUser::create("vmclone-test-user", None);
    let admin = TestUser::create("vmclone-test-admin", None);
    let password = format!("pw-{}-{:?}", std::process::id(), Instant::now());
    admin.set_password(&password);
    // The admin polkit asks for (only this one, so the agent asks no questions), and a
    // canary that shows the file is loaded.
    let _admin_rule = place_rules(
        "40-vmclone-test-admin.rules",
        format!(
            "polkit.addAdminRule(function(action, subject) {{\n\
             \x20   return [\"unix-user:{0}\"];\n\
             }});\n\
             polkit.addRule(function(action, subject) {{\n\
             \x20   if (action.id == \"org.vmclone.list-vms\" && subject.user == \"{0}\") {{\n\
             \x20       return polkit.Result.NO;\n\
             \x20   }}\n\
             }});\n",
            admin.name
        ),
    );
    wait_until(
        Duration::from_secs(10),
        "polkitd to load the admin rule",
        || !admin.polkit_allows("org.vmclone.list-vms"),
    );

    // An agent runs, but the call does not allow interaction: polkit must not ask.
    let (ok, transcript) = user.call_with_agent(false, "h3-web-noflag", Some(&password));
    assert!(!ok, "cloned without authentication:\n{transcript}");
    assert!(!transcript.contains("AUTHENTICATING"), "{transcript}");
    assert!(transcript.contains("org.vmclone.clone-vm"), "{transcript}");

    // Interaction allowed, wrong password: refused.
    let (ok, transcript) = user.call_with_agent(true, "h3-web-wrongpw", Some("not-the-password"));
    assert!(!ok, "cloned with a wrong password:\n{transcript}");
    assert!(
        transcript.contains("AUTHENTICATING FOR org.vmclone.clone-vm")
            && transcript.contains(&format!("Authenticating as: {}", admin.name)),
        "the agent was not asked for the admin's password:\n{transcript}"
    );
    assert!(transcript.contains("not authorized"), "{transcript}");

    // Interaction allowed, the admin's password: the clone is made.
    let (ok, transcript) = user.call_with_agent(true, "h3-web-interactive", Some(&password));
    assert!(ok, "interactive authorization failed:\n{transcript}");
    assert!(
        transcript.contains("AUTHENTICATION COMPLETE"),
        "{transcript}"
    );

    let names = vm_names(&service);
    assert!(names.contains("h3-web-interactive"), "{names:?}");
    assert!(
        !names.contains("h3-web-noflag") && !names.contains("h3-web-wrongpw"),
        "{names:?}"
    );
}

#[test]
#[ignore = "needs root, the system bus and polkitd"]
fn with_polkitd_stopped_every_call_is_refused() {
    let _system = RootTest::begin();
    let service = SystemService::start();
    let before = vms(&root_busctl(&list_args()));

    {
        let _down = PolkitDown::stop();
        let out = root_call("CloneVm", "ss", &["h3-web", "h3-web-nopolkit"]);
        let err = stderr_of(&out);
        assert!(
            err.contains("polkit is unreachable") && err.contains("org.vmclone.clone-vm"),
            "CloneVm as root with polkitd stopped: {err}"
        );
        not_authorized(
            &run(Command::new("gdbus").args(gdbus_args("CloneVm", &["h3-web", "h3-web-nopolkit"]))),
            "CloneVm as root with polkitd stopped",
        );
        // Fail closed for reading too.
        let err = stderr_of(&root_call("ListVms", "", &[]));
        assert!(err.contains("polkit is unreachable"), "ListVms: {err}");
    }

    // polkitd is back (restarted as tools/setup-host.sh starts it): nothing was created.
    assert_eq!(vms(&root_busctl(&list_args())), before);
    assert!(!vm_names(&service).contains("h3-web-nopolkit"));
}

/// The activation file as shipped (only `Exec=` pointed at the built binary and the test
/// host, as `make install` points it at $(libexecdir)): the first call starts the service.
#[test]
#[ignore = "needs root, the system bus and polkitd"]
fn the_bus_starts_the_service_on_first_call() {
    let _system = RootTest::begin();
    require_bus_name_free();
    let host = TempDir::new("h3-host");
    let state = TempDir::new("h3-state");
    let shipped =
        fs::read_to_string(workspace_root().join("data/org.vmclone.Manager.service")).unwrap();
    let exec = format!(
        "Exec={} --uri {} --state-dir {}",
        built_binary("vmclone-service").display(),
        test_driver_uri(host.path(), HOST_XML),
        state.path().display()
    );
    let activation: String = shipped
        .lines()
        .map(|l| {
            if l.starts_with("Exec=") {
                exec.as_str()
            } else {
                l
            }
        })
        .map(|l| format!("{l}\n"))
        .collect();
    let _activation = PlacedFile::put(
        Path::new(ACTIVATION_DIR).join("org.vmclone.Manager.service"),
        activation,
        true,
    );
    let activatable = stdout_ok(&bus_driver_call("ListActivatableNames", &[]));
    assert!(
        activatable.contains(&format!("\"{BUS_NAME}\"")),
        "{activatable}"
    );

    let out = root_busctl(&list_args());
    // Stop what the bus started (by its pid) whatever the outcome.
    if name_has_owner(BUS_NAME) {
        terminate(owner_pid(BUS_NAME));
        wait_until(
            Duration::from_secs(70),
            "the activated service to stop",
            || !name_has_owner(BUS_NAME),
        );
    }
    let names: BTreeSet<String> = vms(&out).into_iter().map(|(_, name)| name).collect();
    assert!(
        names.contains("h3-web"),
        "ListVms through activation: {names:?}"
    );
}

#[test]
#[ignore = "needs root, the system bus and polkitd"]
fn only_root_may_own_the_bus_name() {
    let _system = RootTest::begin();
    require_bus_name_free();
    let user = TestUser::create("vmclone-test-user", None);
    let request = [
        "call",
        "org.freedesktop.DBus",
        "/org/freedesktop/DBus",
        "org.freedesktop.DBus",
        "RequestName",
        "su",
        BUS_NAME,
        "0",
    ];
    // busctl shows only "Access denied"; gdbus shows the bus's reason.
    let (name, message) = gdbus_error(&run(user.command("gdbus").args([
        "call",
        "--system",
        "--dest",
        "org.freedesktop.DBus",
        "--object-path",
        "/org/freedesktop/DBus",
        "--method",
        "org.freedesktop.DBus.RequestName",
        BUS_NAME,
        "0",
    ])));
    assert_eq!(name, "org.freedesktop.DBus.Error.AccessDenied", "{message}");
    assert!(message.contains("not allowed to own"), "{message}");
    stderr_of(&user.busctl(&request));
    // root may (1 = primary owner; the name goes when busctl exits).
    let out = stdout_ok(&root_busctl(&request));
    assert_eq!(out.trim(), "u 1", "RequestName as root");
}

#[test]
#[ignore = "needs root and the system bus"]
fn the_service_refuses_to_run_without_authorization_on_the_system_bus() {
    let _system = RootTest::begin();
    let host = TempDir::new("h3-host");
    let state = TempDir::new("h3-state");
    let mut child = Command::new(built_binary("vmclone-service"))
        .args(["--no-authorization", "--uri"])
        .arg(test_driver_uri(host.path(), HOST_XML))
        .arg("--state-dir")
        .arg(state.path())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn vmclone-service");
    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("vmclone-service --no-authorization kept running on the system bus");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut err = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut err).unwrap();
    assert!(!status.success(), "exit status {status}");
    assert!(
        err.contains("--no-authorization"),
        "no explanation on stderr: {err}"
    );
    assert!(!name_has_owner(BUS_NAME));
}

// ---------------------------------------------------------------------------------------
// The shipped files, checked by the programs that read them (no root needed)
// ---------------------------------------------------------------------------------------

/// A bus configured like the system bus, including our policy, must start; a broken copy of
/// the policy must stop it (so the check can fail).
#[test]
fn dbus_daemon_loads_the_bus_policy() {
    let dir = TempDir::new("h3-busconf");
    let policy = workspace_root().join("data/org.vmclone.Manager.conf");
    let address = start_bus_with(&dir, &policy).expect("dbus-daemon rejected the bus policy");
    assert!(address.starts_with("unix:path="), "address: {address}");

    let broken = dir.path().join("broken.conf");
    let text = fs::read_to_string(&policy).unwrap();
    fs::write(&broken, text.replace("</busconfig>", "")).unwrap();
    assert!(
        start_bus_with(&dir, &broken).is_err(),
        "dbus-daemon accepted a truncated policy: the check proves nothing"
    );
}

#[test]
#[ignore = "needs xmllint (libxml2-utils) and polkit's DTD (polkitd)"]
fn polkit_policy_is_valid_against_polkits_dtd() {
    assert!(
        Path::new(POLKIT_DTD).exists(),
        "{POLKIT_DTD} is missing: install polkitd"
    );
    let policy = workspace_root().join("data/org.vmclone.policy");
    assert_valid_against_polkits_dtd(&policy, "the shipped policy");
    let text = fs::read_to_string(&policy).unwrap();
    for id in [
        "org.vmclone.list-vms",
        "org.vmclone.clone-vm",
        "org.vmclone.manage-templates",
    ] {
        assert!(
            text.contains(&format!("<action id=\"{id}\">")),
            "{id} missing"
        );
    }
    assert_eq!(
        text.matches("gettext-domain=\"vmclone\"").count(),
        6,
        "every description and message is translatable in the vmclone domain"
    );

    // What `make install` installs: the translations from po/ merged in.
    let root = workspace_root();
    assert!(
        !linguas(&root).is_empty(),
        "po/LINGUAS names the translations"
    );
    let dir = TempDir::new("h3-policy");
    let merged = dir.path().join("org.vmclone.policy");
    stdout_ok(&run(Command::new("msgfmt")
        .arg("--xml")
        .arg(format!("--template={}", policy.display()))
        .arg("-d")
        .arg(root.join("po"))
        .arg("-o")
        .arg(&merged)));
    assert_valid_against_polkits_dtd(&merged, "the policy with translations merged");
}

#[test]
#[ignore = "needs systemd-analyze (package systemd)"]
fn systemd_unit_verifies() {
    let unit = fs::read_to_string(workspace_root().join("data/vmclone.service")).unwrap();
    for line in [
        "Type=dbus",
        "BusName=org.vmclone.Manager",
        "StateDirectory=vmclone",
    ] {
        assert!(unit.lines().any(|l| l == line), "the unit lacks {line}");
    }
    assert!(
        unit.lines().any(|l| l.starts_with("After=")
            && l.split_whitespace()
                .any(|u| u.ends_with("libvirtd.service"))),
        "the unit is not ordered after libvirtd.service"
    );
    let activation =
        fs::read_to_string(workspace_root().join("data/org.vmclone.Manager.service")).unwrap();
    assert!(activation
        .lines()
        .any(|l| l == "SystemdService=vmclone.service"));
    assert!(activation.lines().any(|l| l == "Name=org.vmclone.Manager"));

    // verify also checks that ExecStart= exists: point it at the built binary, as
    // `make install` points it at $(libexecdir).
    let dir = TempDir::new("h3-unit");
    let path = dir.path().join("vmclone.service");
    let service_bin = built_binary("vmclone-service");
    fs::write(
        &path,
        unit.replace(
            "/usr/libexec/vmclone-service",
            &service_bin.display().to_string(),
        ),
    )
    .unwrap();
    let out = Command::new("systemd-analyze")
        .arg("verify")
        .arg(&path)
        .output()
        .unwrap_or_else(|e| {
            panic!("systemd-analyze is NOT available ({e}): the unit was NOT verified; install the systemd package")
        });
    assert!(
        out.status.success() && out.stderr.is_empty(),
        "systemd-analyze verify: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn make_install_puts_every_file_in_place() {
    let root = workspace_root();
    // `make install` installs what `make` built; stand in the test build's binaries.
    let target = TempDir::new("h3-target");
    fs::create_dir(target.path().join("release")).unwrap();
    for bin in ["vmclone-service", "vmclone"] {
        std::os::unix::fs::symlink(built_binary(bin), target.path().join("release").join(bin))
            .unwrap();
    }
    let linguas = linguas(&root);
    assert!(!linguas.is_empty(), "po/LINGUAS names the translations");

    for prefix in ["/usr", "/usr/local"] {
        let dest = TempDir::new("h3-destdir");
        let make = |target_name: &str| {
            let out = Command::new("make")
                .current_dir(&root)
                .arg("-s")
                .arg(target_name)
                .arg(format!("DESTDIR={}", dest.path().display()))
                .arg(format!("prefix={prefix}"))
                .arg(format!("TARGET_DIR={}", target.path().display()))
                .output()
                .expect("make is not installed (package make)");
            assert!(
                out.status.success(),
                "make {target_name} prefix={prefix}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        };
        make("install");

        let p = prefix.trim_start_matches('/');
        let policy_dir = if prefix == "/usr" {
            "usr/share/dbus-1/system.d"
        } else {
            "etc/dbus-1/system.d"
        };
        let mut expected: BTreeSet<String> = [
            format!("{p}/libexec/vmclone-service"),
            format!("{p}/bin/vmclone"),
            format!("{policy_dir}/org.vmclone.Manager.conf"),
            format!("{p}/share/dbus-1/system-services/org.vmclone.Manager.service"),
            format!("{p}/lib/systemd/system/vmclone.service"),
            "usr/share/polkit-1/actions/org.vmclone.policy".to_string(),
            format!("{p}/share/dbus-1/interfaces/org.vmclone.Manager.xml"),
            format!("{p}/share/dbus-1/interfaces/org.vmclone.Job.xml"),
            format!("{p}/share/applications/org.vmclone.VmClone.desktop"),
            format!("{p}/share/metainfo/org.vmclone.VmClone.metainfo.xml"),
            format!("{p}/share/doc/vmclone/README.md"),
        ]
        .into_iter()
        .collect();
        for icon in files_under(&root.join("data/icons")) {
            expected.insert(format!("{p}/share/icons/{icon}"));
        }
        for lang in &linguas {
            expected.insert(format!("{p}/share/locale/{lang}/LC_MESSAGES/vmclone.mo"));
        }
        let installed: BTreeSet<String> = files_under(dest.path()).into_iter().collect();
        assert_eq!(installed, expected, "make install prefix={prefix}");
        let policy = fs::read_to_string(
            dest.path()
                .join("usr/share/polkit-1/actions/org.vmclone.policy"),
        )
        .unwrap();
        for lang in &linguas {
            assert!(
                policy.contains(&format!("xml:lang=\"{lang}\"")),
                "the installed polkit policy lacks the {lang} translation"
            );
        }

        let exec = format!("{prefix}/libexec/vmclone-service");
        let activation = fs::read_to_string(dest.path().join(format!(
            "{p}/share/dbus-1/system-services/org.vmclone.Manager.service"
        )))
        .unwrap();
        assert!(
            activation.lines().any(|l| l == format!("Exec={exec}")),
            "{activation}"
        );
        let unit = fs::read_to_string(
            dest.path()
                .join(format!("{p}/lib/systemd/system/vmclone.service")),
        )
        .unwrap();
        assert!(
            unit.lines()
                .any(|l| l.starts_with(&format!("ExecStart={exec} "))),
            "{unit}"
        );
        let mode = |rel: &str| {
            use std::os::unix::fs::PermissionsExt;
            fs::metadata(dest.path().join(rel))
                .unwrap()
                .permissions()
                .mode()
                & 0o7777
        };
        assert_eq!(mode(&format!("{p}/libexec/vmclone-service")), 0o755);
        assert_eq!(mode("usr/share/polkit-1/actions/org.vmclone.policy"), 0o644);
        assert_eq!(
            mode(&format!("{policy_dir}/org.vmclone.Manager.conf")),
            0o644
        );

        make("uninstall");
        let left = files_under(dest.path());
        assert!(
            left.is_empty(),
            "make uninstall prefix={prefix} left {left:?}"
        );
    }
}

// ---------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------

/// What every root test starts with: the system checked, the project's policies installed,
/// and no other root test running (they share the system bus, polkitd and the test users).
struct RootTest {
    // Fields drop in order: the policies go before the next test may start.
    _policies: ProjectPolicies,
    _serial: MutexGuard<'static, ()>,
}

impl RootTest {
    fn begin() -> RootTest {
        static LOCK: Mutex<()> = Mutex::new(());
        let serial = LOCK.lock().unwrap_or_else(|e| e.into_inner());
        require_system();
        RootTest {
            _policies: ProjectPolicies::install(),
            _serial: serial,
        }
    }
}

fn require_system() {
    assert_eq!(
        unsafe { libc::geteuid() },
        0,
        "this test needs root: it installs the bus and polkit policies and creates users"
    );
    assert!(
        run(Command::new("busctl").args(["--system", "status", "org.freedesktop.DBus"]))
            .status
            .success(),
        "no system bus at /run/dbus/system_bus_socket: run tools/setup-host.sh"
    );
    assert!(
        name_has_owner(POLKIT_NAME),
        "polkitd is not running on the system bus: run tools/setup-host.sh"
    );
}

fn run(cmd: &mut Command) -> Output {
    cmd.output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"))
}

/// `METHOD ARGS` of the system bus itself, as root.
fn bus_driver_call(method: &str, args: &[&str]) -> Output {
    let mut argv = vec![
        "call",
        "org.freedesktop.DBus",
        "/org/freedesktop/DBus",
        "org.freedesktop.DBus",
        method,
    ];
    argv.extend_from_slice(args);
    root_busctl(&argv)
}

fn name_has_owner(name: &str) -> bool {
    bus_driver_call("NameHasOwner", &["s", name]).stdout == b"b true\n"
}

fn require_bus_name_free() {
    assert!(
        !name_has_owner(BUS_NAME),
        "{BUS_NAME} is already owned on the system bus (an installed vmclone?); stop it first"
    );
}

/// The pid of the process that owns `name` on the system bus.
fn owner_pid(name: &str) -> i32 {
    let reply = stdout_ok(&bus_driver_call("GetConnectionUnixProcessID", &["s", name]));
    reply.trim().trim_start_matches("u ").parse().unwrap()
}

fn terminate(pid: i32) {
    unsafe {
        libc::kill(pid, libc::SIGTERM);
    }
}

fn reload_system_bus() {
    stdout_ok(&bus_driver_call("ReloadConfig", &[]));
}

fn call_args<'a>(method: &'a str, signature: &'a str, args: &[&'a str]) -> Vec<&'a str> {
    let mut argv = vec!["call", BUS_NAME, OBJECT_PATH, INTERFACE, method];
    if !signature.is_empty() {
        argv.push(signature);
    }
    argv.extend_from_slice(args);
    argv
}

fn root_busctl(args: &[&str]) -> Output {
    run(Command::new("busctl").arg("--system").args(args))
}

fn root_call(method: &str, signature: &str, args: &[&str]) -> Output {
    root_busctl(&call_args(method, signature, args))
}

fn gdbus_args(method: &str, args: &[&str]) -> Vec<String> {
    let mut argv: Vec<String> = [
        "call",
        "--system",
        "--dest",
        BUS_NAME,
        "--object-path",
        OBJECT_PATH,
        "--method",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    argv.push(format!("{INTERFACE}.{method}"));
    argv.extend(args.iter().map(|s| s.to_string()));
    argv
}

/// The message of an error gdbus reports for a call polkit refused.
fn not_authorized(out: &Output, what: &str) -> String {
    let (name, message) = gdbus_error(out);
    assert_eq!(name, "org.vmclone.Error.NotAuthorized", "{what}: {message}");
    message
}

/// A polkit rules file for the duration of a test (polkitd rereads the folder by itself).
fn place_rules(file: &str, rules: String) -> PlacedFile {
    PlacedFile::put(
        Path::new(RULES_DIR).join(file),
        format!("// vmclone test rule (removed by the test)\n{rules}"),
        false,
    )
}

fn assert_valid_against_polkits_dtd(policy: &Path, what: &str) {
    let out = Command::new("xmllint")
        .args(["--noout", "--dtdvalid", POLKIT_DTD])
        .arg(policy)
        .output()
        .expect("xmllint is not installed: install libxml2-utils");
    assert!(
        out.status.success(),
        "{what} ({}) does not validate against {POLKIT_DTD}:\n{}",
        policy.display(),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `busctl` arguments for ListVms with JSON output.
fn list_args() -> Vec<&'static str> {
    let mut argv = vec!["--json=short"];
    argv.extend(call_args("ListVms", "", &[]));
    argv
}

/// (id, name) of every VM in `busctl --json=short call … ListVms` output.
fn vms(out: &Output) -> BTreeSet<(String, String)> {
    let json: serde_json::Value = serde_json::from_str(&stdout_ok(out)).expect("busctl JSON");
    let list = json["data"][0]
        .as_array()
        .expect("ListVms returns an array");
    list.iter()
        .map(|vm| {
            let field = |key: &str| vm[key]["data"].as_str().unwrap_or_default().to_string();
            (field("id"), field("name"))
        })
        .collect()
}

/// The VM names the service sees (asked as root).
fn vm_names(service: &SystemService) -> BTreeSet<String> {
    let out = root_busctl(&list_args());
    assert!(
        out.status.success(),
        "ListVms as root failed: {}\nservice log:\n{}",
        String::from_utf8_lossy(&out.stderr),
        service.log_text()
    );
    vms(&out).into_iter().map(|(_, name)| name).collect()
}

/// Writes a file for the duration of a test, restoring what was there before.
struct PlacedFile {
    path: PathBuf,
    previous: Option<Vec<u8>>,
    /// Folders made for the file, innermost first; removed again.
    created_dirs: Vec<PathBuf>,
    reload_bus: bool,
}

impl PlacedFile {
    fn put(path: PathBuf, contents: impl AsRef<[u8]>, reload_bus: bool) -> PlacedFile {
        let previous = fs::read(&path).ok();
        let created_dirs: Vec<PathBuf> = path
            .ancestors()
            .skip(1)
            .take_while(|dir| !dir.exists())
            .map(Path::to_path_buf)
            .collect();
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(&path, contents).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
        if reload_bus {
            reload_system_bus();
        }
        PlacedFile {
            path,
            previous,
            created_dirs,
            reload_bus,
        }
    }
}

impl Drop for PlacedFile {
    fn drop(&mut self) {
        let _ = match &self.previous {
            Some(bytes) => fs::write(&self.path, bytes),
            None => fs::remove_file(&self.path),
        };
        for dir in &self.created_dirs {
            let _ = fs::remove_dir(dir);
        }
        if self.reload_bus {
            reload_system_bus();
        }
    }
}

/// The project's bus policy in the system bus and its actions in polkitd.
struct ProjectPolicies {
    _bus: PlacedFile,
    _polkit: PlacedFile,
}

impl ProjectPolicies {
    fn install() -> ProjectPolicies {
        let data = workspace_root().join("data");
        let bus = PlacedFile::put(
            BUS_POLICY.into(),
            fs::read(data.join("org.vmclone.Manager.conf")).unwrap(),
            true,
        );
        let polkit = PlacedFile::put(
            POLKIT_ACTIONS.into(),
            fs::read(data.join("org.vmclone.policy")).unwrap(),
            false,
        );
        // polkitd notices new action files by itself (inotify).
        wait_until(
            Duration::from_secs(10),
            "polkitd to load org.vmclone.policy",
            || {
                Command::new("pkaction")
                    .args(["--action-id", "org.vmclone.manage-templates"])
                    .output()
                    .map(|o| o.status.success())
                    .unwrap_or(false)
            },
        );
        ProjectPolicies {
            _bus: bus,
            _polkit: polkit,
        }
    }
}

/// The built service as root on the system bus, on libvirt's test driver with HOST_XML.
struct SystemService {
    _child: ChildGuard,
    log: PathBuf,
    _state: TempDir,
    _host: TempDir,
}

impl SystemService {
    fn start() -> SystemService {
        require_bus_name_free();
        let host = TempDir::new("h3-host");
        let uri = test_driver_uri(host.path(), HOST_XML);
        let state = TempDir::new("h3-state");
        let log = state.path().join("service.log");
        let child = Command::new(built_binary("vmclone-service"))
            .args(["--uri", &uri, "--state-dir"])
            .arg(state.path())
            .env("RUST_LOG", "vmclone_service=debug,info")
            .stdout(Stdio::null())
            .stderr(fs::File::create(&log).unwrap())
            .spawn()
            .expect("spawn vmclone-service");
        let mut child = ChildGuard(child);
        let deadline = Instant::now() + Duration::from_secs(20);
        while !name_has_owner(BUS_NAME) {
            let text = || fs::read_to_string(&log).unwrap_or_default();
            if let Ok(Some(status)) = child.0.try_wait() {
                panic!(
                    "vmclone-service exited with {status} on the system bus:\n{}",
                    text()
                );
            }
            assert!(
                Instant::now() < deadline,
                "vmclone-service did not own {BUS_NAME} on the system bus within 20 s:\n{}",
                text()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        SystemService {
            _child: child,
            log,
            _state: state,
            _host: host,
        }
    }

    fn log_text(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }
}

struct TestGroup {
    name: String,
}

impl TestGroup {
    fn create(name: &str) -> TestGroup {
        let _ = Command::new("groupdel").arg(name).output(); // left over from a killed run
        stdout_ok(&run(Command::new("groupadd").arg(name)));
        TestGroup { name: name.into() }
    }
}

impl Drop for TestGroup {
    fn drop(&mut self) {
        let _ = Command::new("groupdel").arg(&self.name).output();
    }
}

/// A normal user (no home, no login shell), deleted afterwards.
struct TestUser {
    name: String,
    uid: u32,
    gid: u32,
}

impl TestUser {
    fn create(name: &str, group: Option<&TestGroup>) -> TestUser {
        let _ = Command::new("userdel").arg(name).output(); // left over from a killed run
        let mut cmd = Command::new("useradd");
        cmd.args([
            "--no-create-home",
            "--user-group",
            "--shell",
            "/usr/sbin/nologin",
        ]);
        if let Some(group) = group {
            cmd.args(["--groups", &group.name]);
        }
        stdout_ok(&run(cmd.arg(name)));
        let id = |flag: &str| -> u32 {
            stdout_ok(&run(Command::new("id").args([flag, name])))
                .trim()
                .parse()
                .unwrap()
        };
        TestUser {
            name: name.into(),
            uid: id("-u"),
            gid: id("-g"),
        }
    }

    /// `program ARGS` as this user, with their groups.
    fn command(&self, program: &str) -> Command {
        let mut cmd = Command::new("setpriv");
        cmd.arg(format!("--reuid={}", self.uid))
            .arg(format!("--regid={}", self.gid))
            .arg("--init-groups")
            .arg("--")
            .arg(program)
            .env("HOME", "/")
            .env_remove("DBUS_SESSION_BUS_ADDRESS");
        cmd
    }

    fn busctl(&self, args: &[&str]) -> Output {
        run(self.command("busctl").arg("--system").args(args))
    }

    fn gdbus_call(&self, method: &str, args: &[&str]) -> Output {
        run(self.command("gdbus").args(gdbus_args(method, args)))
    }

    /// Sets the user's login password (for polkit's admin authentication).
    fn set_password(&self, password: &str) {
        let mut child = Command::new("chpasswd")
            .stdin(Stdio::piped())
            .spawn()
            .expect("chpasswd");
        std::io::Write::write_all(
            child.stdin.as_mut().unwrap(),
            format!("{}:{password}\n", self.name).as_bytes(),
        )
        .unwrap();
        drop(child.stdin.take());
        assert!(child.wait().unwrap().success(), "chpasswd failed");
    }

    /// `busctl CloneVm h3-web NEW_NAME` as this user, with a polkit text agent (pkttyagent)
    /// registered for the busctl process, on a pseudo-terminal (`script`); types `password`
    /// when the agent asks. Returns whether the call succeeded and what the terminal showed.
    fn call_with_agent(
        &self,
        interactive: bool,
        new_name: &str,
        password: Option<&str>,
    ) -> (bool, String) {
        // `exec` keeps the shell's pid and start time, the process the agent serves.
        let script = format!(
            "d=$(mktemp -d) && mkfifo \"$d/ready\" || exit 90\n\
             pkttyagent --process $$ --notify-fd 3 3>\"$d/ready\" &\n\
             echo \"agent-pid=$!\"\n\
             cat \"$d/ready\" >/dev/null; rm -r \"$d\"\n\
             exec busctl --system --allow-interactive-authorization={} call {BUS_NAME} \
             {OBJECT_PATH} {INTERFACE} CloneVm ss h3-web {new_name}\n",
            if interactive { "yes" } else { "no" }
        );
        let mut child = self
            .command("script")
            .args(["-q", "-e", "-c", &script, "/dev/null"])
            .env("SHELL", "/bin/sh")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("script is installed (package bsdutils)");
        let (tx, rx) = std::sync::mpsc::channel();
        let mut stdout = child.stdout.take().unwrap();
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n @ 1..) = std::io::Read::read(&mut stdout, &mut buf) {
                if tx.send(buf[..n].to_vec()).is_err() {
                    break;
                }
            }
        });
        let mut stdin = child.stdin.take();
        let mut transcript = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(60);
        let status = loop {
            while let Ok(chunk) = rx.try_recv() {
                transcript.extend_from_slice(&chunk);
            }
            if let (Some(pw), true) = (
                password,
                String::from_utf8_lossy(&transcript).contains("Password:"),
            ) {
                if let Some(mut input) = stdin.take() {
                    std::io::Write::write_all(&mut input, format!("{pw}\n").as_bytes()).unwrap();
                }
            }
            if let Some(status) = child.try_wait().unwrap() {
                break status;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "busctl with a polkit agent hung:\n{}",
                    String::from_utf8_lossy(&transcript)
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        drop(stdin);
        std::thread::sleep(Duration::from_millis(100));
        while let Ok(chunk) = rx.try_recv() {
            transcript.extend_from_slice(&chunk);
        }
        let transcript = String::from_utf8_lossy(&transcript).into_owned();
        // The agent outlives the call it served; stop it (by its pid) before userdel.
        if let Some(pid) = transcript
            .split("agent-pid=")
            .nth(1)
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|pid| pid.parse::<i32>().ok())
        {
            let comm = fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
            if comm.trim() == "pkttyagent" {
                terminate(pid);
            }
        }
        (status.success(), transcript)
    }

    /// What polkit answers for a process of this user (`pkcheck` on itself).
    fn polkit_allows(&self, action: &str) -> bool {
        run(self
            .command("sh")
            .args(["-c", "exec pkcheck --action-id \"$0\" --process $$", action]))
        .status
        .success()
    }
}

impl Drop for TestUser {
    fn drop(&mut self) {
        let _ = Command::new("userdel").arg(&self.name).output();
    }
}

/// polkitd stopped and not startable by the bus; on drop it is started again the way
/// tools/setup-host.sh starts it.
struct PolkitDown {
    mask: Option<PlacedFile>,
}

impl PolkitDown {
    fn stop() -> PolkitDown {
        let mask = PlacedFile::put(
            POLKIT_ACTIVATION_OVERRIDE.into(),
            "# vmclone test: polkitd is stopped on purpose (removed by the test)\n\
             [D-BUS Service]\nName=org.freedesktop.PolicyKit1\nExec=/bin/false\nUser=root\n",
            true,
        );
        let pid = owner_pid(POLKIT_NAME);
        let down = PolkitDown { mask: Some(mask) };
        terminate(pid);
        wait_until(Duration::from_secs(10), "polkitd to stop", || {
            !name_has_owner(POLKIT_NAME)
        });
        down
    }
}

impl Drop for PolkitDown {
    fn drop(&mut self) {
        // As tools/setup-host.sh: `/usr/lib/polkit-1/polkitd --no-debug >/var/log/polkitd.log 2>&1 &`
        // (in its own session, so it outlives this test).
        let started = Command::new("setsid")
            .args(["-f", "sh", "-c"])
            .arg(format!(
                "exec {POLKITD} --no-debug >/var/log/polkitd.log 2>&1 </dev/null"
            ))
            .status();
        let deadline = Instant::now() + Duration::from_secs(10);
        while !name_has_owner(POLKIT_NAME) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
        // Unmask only once it runs, so the bus does not start a second one meanwhile.
        self.mask.take();
        if !std::thread::panicking() {
            assert!(
                started.is_ok() && name_has_owner(POLKIT_NAME),
                "could not restart polkitd ({started:?}); run tools/setup-host.sh"
            );
        }
    }
}

/// Starts a `dbus-daemon` with a system-like configuration including `policy`; its
/// address, or the daemon's complaint.
fn start_bus_with(dir: &TempDir, policy: &Path) -> Result<String, String> {
    let socket = dir.path().join(format!(
        "bus-{}.sock",
        policy.file_stem().unwrap().to_string_lossy()
    ));
    let config = dir.path().join("bus.conf");
    fs::write(
        &config,
        format!(
            r#"<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>system</type>
  <listen>unix:path={}</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow user="*"/>
    <deny own="*"/>
    <deny send_type="method_call"/>
    <allow send_type="signal"/>
    <allow send_requested_reply="true" send_type="method_return"/>
    <allow send_requested_reply="true" send_type="error"/>
    <allow receive_type="method_call"/>
    <allow receive_type="method_return"/>
    <allow receive_type="error"/>
    <allow receive_type="signal"/>
    <allow send_destination="org.freedesktop.DBus" send_interface="org.freedesktop.DBus"/>
  </policy>
  <include>{}</include>
</busconfig>
"#,
            socket.display(),
            policy.display()
        ),
    )
    .unwrap();
    let mut child = Command::new("dbus-daemon")
        .arg(format!("--config-file={}", config.display()))
        .args(["--nofork", "--nopidfile", "--print-address"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("dbus-daemon is installed (package dbus-daemon)");
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let _ = child.kill();
    let out = child.wait_with_output().unwrap();
    if line.trim().is_empty() {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    } else {
        Ok(line.trim().to_string())
    }
}

/// Files under `dir`, relative to it, sorted.
fn files_under(dir: &Path) -> Vec<String> {
    fn walk(base: &Path, dir: &Path, out: &mut Vec<String>) {
        let Ok(entries) = fs::read_dir(dir) else {
            return;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if entry.file_type().unwrap().is_dir() {
                walk(base, &path, out);
            } else {
                out.push(path.strip_prefix(base).unwrap().display().to_string());
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, dir, &mut out);
    out.sort();
    out
}

/// The languages in po/LINGUAS.
fn linguas(root: &Path) -> Vec<String> {
    fs::read_to_string(root.join("po/LINGUAS"))
        .unwrap_or_default()
        .lines()
        .map(|l| l.split('#').next().unwrap().trim().to_string())
        .filter(|l| !l.is_empty())
        .collect()
}
