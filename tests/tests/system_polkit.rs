//! The system integration, on the real thing: the project's bus policy in the running
//! system `dbus-daemon`, its polkit actions in the running `polkitd`, the built
//! `vmclone-service` as root on the system bus, users created for the test, and
//! `busctl` as the client. Plus checks of the shipped files with the tools that read them
//! (`dbus-daemon`, polkit's DTD, `systemd-analyze`, `make install`).
//!
//! The root tests change system state (files under /etc and /usr/share, users, polkitd);
//! every change is undone by a guard (`vmclone_tests::system`), and they run one at a time,
//! also against the system-bus tests of other test binaries.

use std::collections::BTreeSet;
use std::fs;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use vmclone_tests::bus::BusConfig;
use vmclone_tests::client::call_args;
use vmclone_tests::process::{output, run, run_command, terminate};
use vmclone_tests::service::SystemService;
use vmclone_tests::system::{
    not_authorized, place_rules, require_bus_name_free, PlacedFile, PolkitAdmin, PolkitDown,
    RootTest, TestGroup, TestUser,
};
use vmclone_tests::temp::file_sizes;
use vmclone_tests::{
    built_binary, gdbus_error, names_in, stderr_of, stdout_ok, test_driver_uri, wait_until,
    workspace_root, Client, PrivateBus, TempDir, BUS_NAME, INTERFACE, OBJECT_PATH,
};

const POLKIT_DTD: &str = "/usr/share/polkit-1/policyconfig-1.dtd";
/// Read by the system bus before /usr/share/dbus-1/system-services.
const ACTIVATION_DIR: &str = "/usr/local/share/dbus-1/system-services";

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
        let out = run("pkaction", &["--verbose", "--action-id", action]);
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
    let system = RootTest::begin();
    let service = SystemService::on_test_host(&system, HOST_XML);
    let user = TestUser::create("vmclone-test-user", None);

    // root: polkit authorizes uid 0 for every action.
    assert!(service.vm_names().contains("h3-web"), "ListVms as root");
    let reply = stdout_ok(&Client::system().call("CloneVm", "ss", &["h3-web", "h3-web-root"]));
    assert!(reply.starts_with("s \""), "CloneVm reply: {reply}");
    assert!(service.vm_names().contains("h3-web-root"));

    // The normal user may read: the method, introspection, properties, Peer.
    let before = user.list_vms();
    assert!(
        before.iter().any(|vm| vm.name == "h3-web-root"),
        "ListVms as user: {before:?}"
    );
    stdout_ok(&user.busctl(["introspect", BUS_NAME, OBJECT_PATH]));
    let version = user.property(OBJECT_PATH, INTERFACE, "Version");
    assert!(version.starts_with("s "), "Version as user: {version}");
    stdout_ok(&user.busctl([
        "call",
        BUS_NAME,
        OBJECT_PATH,
        "org.freedesktop.DBus.Peer",
        "Ping",
    ]));

    // ... but not clone, with or without interactive authorization (no agent runs).
    let err = stderr_of(&user.call("CloneVm", "ss", &["h3-web", "h3-web-user"]));
    assert!(
        err.contains("org.vmclone.clone-vm") && err.contains("not authorized"),
        "busctl CloneVm as a normal user: {err}"
    );
    let mut interactive = vec!["--allow-interactive-authorization=yes"];
    interactive.extend(call_args("CloneVm", "ss", &["h3-web", "h3-web-user"]));
    let err = stderr_of(&user.busctl(interactive));
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
    let after = user.list_vms();
    assert_eq!(before, after, "a refused call changed the VM list");
    let log = service.log_text();
    assert!(log.contains("denied by polkit"), "service log:\n{log}");
}

#[test]
#[ignore = "needs root, the system bus and polkitd"]
fn a_polkit_rule_grants_cloning_to_a_group() {
    let system = RootTest::begin();
    let service = SystemService::on_test_host(&system, HOST_XML);
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

    let reply = stdout_ok(&member.call("CloneVm", "ss", &["h3-web", "h3-web-member"]));
    assert!(
        reply.starts_with("s \""),
        "CloneVm as a group member: {reply}"
    );
    assert!(service.vm_names().contains("h3-web-member"));

    not_authorized(
        &outsider.gdbus_call("CloneVm", &["h3-web", "h3-web-outsider"]),
        "non-member",
    );
    assert!(!service.vm_names().contains("h3-web-outsider"));

    // Without the rule the member is an ordinary user again.
    drop(rule);
    wait_until(Duration::from_secs(10), "polkitd to drop the rule", || {
        !member.polkit_allows("org.vmclone.clone-vm")
    });
    not_authorized(
        &member.gdbus_call("CloneVm", &["h3-web", "h3-web-member2"]),
        "member without the rule",
    );
    assert!(!service.vm_names().contains("h3-web-member2"));
}

#[test]
#[ignore = "needs root, the system bus and polkitd"]
fn interactive_authorization_asks_the_agent_for_an_admin_password() {
    let system = RootTest::begin();
    let service = SystemService::on_test_host(&system, HOST_XML);
    let user = TestUser::create("vmclone-test-user", None);
    let admin = PolkitAdmin::create("vmclone-test-admin");

    // An agent runs, but the call does not allow interaction: polkit must not ask.
    let (ok, transcript) = user.call_with_agent(
        false,
        &["CloneVm", "ss", "h3-web", "h3-web-noflag"],
        Some(&admin.password),
    );
    assert!(!ok, "cloned without authentication:\n{transcript}");
    assert!(!transcript.contains("AUTHENTICATING"), "{transcript}");
    assert!(transcript.contains("org.vmclone.clone-vm"), "{transcript}");

    // Interaction allowed, wrong password: refused.
    let (ok, transcript) = user.call_with_agent(
        true,
        &["CloneVm", "ss", "h3-web", "h3-web-wrongpw"],
        Some("not-the-password"),
    );
    assert!(!ok, "cloned with a wrong password:\n{transcript}");
    assert!(
        transcript.contains("AUTHENTICATING FOR org.vmclone.clone-vm")
            && transcript.contains(&format!("Authenticating as: {}", admin.user.name)),
        "the agent was not asked for the admin's password:\n{transcript}"
    );
    assert!(transcript.contains("not authorized"), "{transcript}");

    // Interaction allowed, the admin's password: the clone is made.
    let (ok, transcript) = user.call_with_agent(
        true,
        &["CloneVm", "ss", "h3-web", "h3-web-interactive"],
        Some(&admin.password),
    );
    assert!(ok, "interactive authorization failed:\n{transcript}");
    assert!(
        transcript.contains("AUTHENTICATION COMPLETE"),
        "{transcript}"
    );

    let names = service.vm_names();
    assert!(names.contains("h3-web-interactive"), "{names:?}");
    assert!(
        !names.contains("h3-web-noflag") && !names.contains("h3-web-wrongpw"),
        "{names:?}"
    );
}

#[test]
#[ignore = "needs root, the system bus and polkitd"]
fn with_polkitd_stopped_every_call_is_refused() {
    let system = RootTest::begin();
    let service = SystemService::on_test_host(&system, HOST_XML);
    let root = Client::system();
    let before = root.list_vms();

    {
        let _down = PolkitDown::stop();
        let out = root.call("CloneVm", "ss", &["h3-web", "h3-web-nopolkit"]);
        let err = stderr_of(&out);
        assert!(
            err.contains("polkit is unreachable") && err.contains("org.vmclone.clone-vm"),
            "CloneVm as root with polkitd stopped: {err}"
        );
        not_authorized(
            &root.gdbus_call("CloneVm", &["h3-web", "h3-web-nopolkit"]),
            "CloneVm as root with polkitd stopped",
        );
        // Fail closed for reading too.
        let err = stderr_of(&root.call("ListVms", "", &[]));
        assert!(err.contains("polkit is unreachable"), "ListVms: {err}");
    }

    // polkitd is back (restarted as tools/setup-host.sh starts it): nothing was created.
    assert_eq!(root.list_vms(), before);
    assert!(!service.vm_names().contains("h3-web-nopolkit"));
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
    let root = Client::system();
    let activatable = stdout_ok(&root.bus_driver_call("ListActivatableNames", &[]));
    assert!(
        activatable.contains(&format!("\"{BUS_NAME}\"")),
        "{activatable}"
    );

    let listed = root.try_list_vms();
    // Stop what the bus started (by its pid) whatever the outcome.
    if root.has_owner(BUS_NAME) {
        terminate(root.owner_pid(BUS_NAME));
        wait_until(
            Duration::from_secs(70),
            "the activated service to stop",
            || !root.has_owner(BUS_NAME),
        );
    }
    let names: BTreeSet<String> = listed
        .unwrap_or_else(|e| panic!("ListVms through activation: {e}"))
        .into_iter()
        .map(|vm| vm.name)
        .collect();
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
    let (name, message) = gdbus_error(&output(user.gdbus_command("call").args([
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
    stderr_of(&user.busctl(request));
    // root may (1 = primary owner; the name goes when busctl exits).
    let out = stdout_ok(&Client::system().busctl(request));
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
    assert!(!Client::system().has_owner(BUS_NAME));
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
    let bus = PrivateBus::start_with(&BusConfig::system_like().include(&policy))
        .unwrap_or_else(|e| panic!("dbus-daemon rejected the bus policy: {e}"));
    assert!(bus.has_owner("org.freedesktop.DBus"), "the bus answers");

    let broken = dir.join("broken.conf");
    let text = fs::read_to_string(&policy).unwrap();
    fs::write(&broken, text.replace("</busconfig>", "")).unwrap();
    assert!(
        PrivateBus::start_with(&BusConfig::system_like().include(&broken)).is_err(),
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
    run_command(
        Command::new("msgfmt")
            .arg("--xml")
            .arg(format!("--template={}", policy.display()))
            .arg("-d")
            .arg(root.join("po"))
            .arg("-o")
            .arg(&merged),
    );
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
    // `make install` installs what `make` built; stand in the test build's binaries and
    // vmclonectl's man pages and completions (written by vmclonectl-gen).
    let target = TempDir::new("h3-target");
    fs::create_dir(target.path().join("release")).unwrap();
    for bin in ["vmclone-service", "vmclone", "vmclonectl"] {
        std::os::unix::fs::symlink(built_binary(bin), target.path().join("release").join(bin))
            .unwrap();
    }
    let cli_docs = target.path().join("vmclonectl");
    run_command(Command::new(built_binary("vmclonectl-gen")).arg(&cli_docs));
    let man_pages = names_in(&cli_docs.join("man"));
    assert!(man_pages.len() > 1, "vmclonectl-gen wrote {man_pages:?}");
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
        let (policy_dir, zsh_dir) = if prefix == "/usr" {
            (
                "usr/share/dbus-1/system.d",
                "usr/share/zsh/vendor-completions",
            )
        } else {
            ("etc/dbus-1/system.d", "usr/local/share/zsh/site-functions")
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
            format!("{p}/share/glib-2.0/schemas/org.vmclone.VmClone.gschema.xml"),
            format!("{p}/share/doc/vmclone/README.md"),
            format!("{p}/bin/vmclonectl"),
            format!("{p}/share/bash-completion/completions/vmclonectl"),
            format!("{zsh_dir}/_vmclonectl"),
            format!("{p}/share/fish/vendor_completions.d/vmclonectl.fish"),
        ]
        .into_iter()
        .collect();
        for page in &man_pages {
            expected.insert(format!("{p}/share/man/man1/{page}"));
        }
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
        assert_eq!(mode(&format!("{p}/bin/vmclonectl")), 0o755);
        assert_eq!(mode(&format!("{p}/share/man/man1/vmclonectl.1")), 0o644);
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

/// Files under `dir`, relative to it, sorted.
fn files_under(dir: &Path) -> Vec<String> {
    file_sizes(dir)
        .into_keys()
        .map(|path| path.strip_prefix(dir).unwrap().display().to_string())
        .collect()
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
