//! vmclonectl on the real system bus, with polkitd deciding: the built service as root
//! (`SystemService`), the project's bus policy and polkit actions installed
//! (`RootTest`), and vmclonectl run as root and as users made for the test. Reading is
//! everyone's; cloning, templates and cancelling are refused to a normal user with exit
//! status 6 and nothing made; a polkit rule or an admin's password typed into polkit's
//! terminal agent (which vmclonectl starts for itself) lets them.

mod support;

use std::collections::BTreeSet;
use std::process::Output;
use std::time::Duration;

use support::*;
use vmclone_tests::libvirt::{Lab, SYSTEM_URI};
use vmclone_tests::service::SystemService;
use vmclone_tests::system::{place_rules, PolkitAdmin, RootTest, TestGroup, TestUser};
use vmclone_tests::terminal::Terminal;
use vmclone_tests::{wait_until, workspace_root, Client};

/// The demo host (libvirt's test driver): web01, db01, debian12-template, win11 shut
/// off, build01 running.
fn demo_host_xml() -> String {
    std::fs::read_to_string(workspace_root().join("data/demo-host.xml")).unwrap()
}

fn as_root(args: &[&str]) -> Output {
    ctl_by(&Client::system(), args).output().unwrap()
}

fn as_user(user: &TestUser, args: &[&str]) -> Output {
    ctl_by(user, args).output().unwrap()
}

/// The polkit refusal: status 6, one sentence naming the action.
fn refused(out: &Output, action: &str) {
    let sentence = assert_fails(out, 6, action);
    assert!(sentence.contains("not authorized"), "{sentence}");
}

#[test]
#[ignore = "needs root, the system bus and polkitd"]
fn a_user_reads_everything_and_is_refused_every_change_with_status_6() {
    let system = RootTest::begin();
    let service = SystemService::on_test_host(&system, &demo_host_xml());
    let user = TestUser::create("vmclone-test-user", None);
    let names = service.vm_names();

    // Reading: list (table, names, JSON), show, check-name, jobs, monitor.
    let table = ok(&as_user(&user, &["list"]));
    assert!(table.starts_with("NAME "), "{table}");
    let listed: BTreeSet<String> = ok(&as_user(&user, &["list", "--names"]))
        .lines()
        .map(str::to_string)
        .collect();
    assert_eq!(listed, names, "list --names as the user");
    let j = json(&as_user(&user, &["list", "--json"]));
    assert_eq!(j.as_array().unwrap().len(), names.len(), "{j}");
    let web01 = Client::system().get_vm("web01");
    let shown = json(&as_user(&user, &["show", "web01", "--json"]));
    assert_eq!(shown["id"], web01.id.as_str());
    assert!(ok(&as_user(&user, &["show", "web01"])).contains(&web01.id));
    ok(&as_user(&user, &["check-name", "web01-new"]));
    // A plan and the destinations are reading too.
    let plan = json(&as_user(
        &user,
        &["plan", "web01", "web01-planned", "--json"],
    ));
    assert_eq!(plan["disks"][0]["action"], "volume", "{plan}");
    assert!(json(&as_user(&user, &["destinations", "--json"])).is_array());
    assert_fails(&as_user(&user, &["check-name", "db01"]), 4, "db01");
    json(&as_user(&user, &["jobs", "--json"]));
    // The user's monitor sees root's clone.
    let monitor = Monitor::start(ctl_by(&user, &["monitor"]));
    ok(&as_root(&["clone", "web01", "web01-by-root"]));
    let id = Client::system().get_vm("web01-by-root").id;
    let mut seen = vec![monitor.next(), monitor.next()];
    seen.sort();
    assert_eq!(
        seen,
        [
            format!("web01-by-root: cloned from web01 ({id})"),
            "web01-by-root: shut off".to_string()
        ]
    );
    monitor.interrupt();

    // Changing: refused with status 6 and one sentence; no terminal, so no agent.
    let before = service.vm_names();
    refused(&as_user(&user, &["clone", "web01"]), "org.vmclone.clone-vm");
    refused(
        &as_user(&user, &["clone", "web01", "web01-user", "--no-wait"]),
        "org.vmclone.clone-vm",
    );
    refused(
        &as_user(&user, &["clone", "web01", "web-user", "--copies", "2"]),
        "org.vmclone.clone-vm",
    );
    refused(
        &as_user(&user, &["template", "db01"]),
        "org.vmclone.manage-templates",
    );
    assert_eq!(service.vm_names(), before, "a refused command made a VM");
    assert!(!Client::system().get_vm("db01").is_template);
}

#[test]
#[ignore = "needs root, the system bus and polkitd"]
fn root_may_do_everything() {
    let system = RootTest::begin();
    let service = SystemService::on_test_host(&system, &demo_host_xml());
    let text = ok(&as_root(&["clone", "web01"]));
    let clone = Client::system().get_vm("web01-clone");
    assert_eq!(
        text,
        format!("Cloned web01 as web01-clone ({}).\n", clone.id)
    );
    let text = ok(&as_root(&["clone", "db01", "db", "--copies", "2"]));
    assert_eq!(text.lines().count(), 2, "{text}");
    let path = ok(&as_root(&["clone", "web01", "web01-job", "--no-wait"]));
    assert!(path.starts_with("/org/vmclone/Manager/jobs/"), "{path}");
    wait_until(Duration::from_secs(30), "the no-wait clone", || {
        service.vm_names().contains("web01-job")
    });
    let text = ok(&as_root(&["template", "db01"]));
    assert!(text.starts_with("db01 is now a template"), "{text}");
    assert!(Client::system().get_vm("db01").is_template);
    let names = service.vm_names();
    for name in ["web01-clone", "db-1", "db-2", "web01-job"] {
        assert!(names.contains(name), "{name} in {names:?}");
    }
}

#[test]
#[ignore = "needs root, the system bus and polkitd"]
fn a_group_that_a_polkit_rule_lets_clone_can_clone_but_not_make_templates() {
    let system = RootTest::begin();
    let service = SystemService::on_test_host(&system, &demo_host_xml());
    let group = TestGroup::create("vmclone-test-cloners");
    let member = TestUser::create("vmclone-test-cloner", Some(&group));
    let outsider = TestUser::create("vmclone-test-user", None);
    let _rule = place_rules(
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

    let text = ok(&as_user(&member, &["clone", "web01", "web01-member"]));
    let made = Client::system().get_vm("web01-member");
    assert_eq!(
        text,
        format!("Cloned web01 as web01-member ({}).\n", made.id)
    );
    refused(
        &as_user(&member, &["template", "db01"]),
        "org.vmclone.manage-templates",
    );
    refused(
        &as_user(&outsider, &["clone", "web01", "web01-outsider"]),
        "org.vmclone.clone-vm",
    );
    let names = service.vm_names();
    assert!(!names.contains("web01-outsider"), "{names:?}");
    assert!(!Client::system().get_vm("db01").is_template);
}

#[test]
#[ignore = "needs root, the system bus, polkitd, libvirtd and QEMU"]
fn only_an_authorized_caller_may_cancel_a_running_clone() {
    let system = RootTest::begin();
    let lab = Lab::new("ctl-cancel");
    let src = lab.name("big");
    // Copying 6 GiB takes seconds: time for the user's attempt while it runs.
    lab.big_vm(lab.dir(), &src, 8, 6 << 10);
    let _service = SystemService::start(&system, SYSTEM_URI);
    let user = TestUser::create("vmclone-test-user", None);
    let (files, vms) = (lab.files(), lab.vms());
    let clone = format!("{src}-copy");

    let path = ok(&as_root(&["clone", &src, &clone, "--no-wait"]));
    let path = path.trim();
    let n = path.rsplit('/').next().unwrap();
    refused(&as_user(&user, &["cancel", n]), "org.vmclone.clone-vm");
    let state = Client::system().job_property(path, "State");
    assert_eq!(
        state, "s \"running\"",
        "the refused cancel left the job running"
    );

    let text = ok(&as_root(&["cancel", path]));
    assert!(
        text.starts_with(&format!("Cancelled: {clone} was not made")),
        "{text}"
    );
    assert_eq!(lab.vms(), vms, "no domain left");
    assert_eq!(lab.files(), files, "no file left");
}

#[test]
#[ignore = "needs root, the system bus and polkitd"]
fn on_a_terminal_polkit_asks_for_an_admin_password_through_the_agent_vmclonectl_starts() {
    let system = RootTest::begin();
    let service = SystemService::on_test_host(&system, &demo_host_xml());
    let user = TestUser::create("vmclone-test-user", None);
    let admin = PolkitAdmin::create("vmclone-test-admin");
    // vmclonectl as the user on a terminal of their own, no agent of ours.
    let on_terminal = |args: &[&str]| {
        let mut argv = vec![CTL];
        argv.extend_from_slice(args);
        let mut script = user.command("script");
        english(&mut script);
        Terminal::start(script, &argv)
    };
    let asked = |screen: &str| {
        screen.contains("AUTHENTICATING FOR org.vmclone.clone-vm")
            && screen.contains(&format!("Authenticating as: {}", admin.user.name))
    };

    // A wrong password: refused, status 6, nothing made.
    let mut term = on_terminal(&["clone", "web01", "web01-wrongpw"]);
    term.wait_for("Password:", Duration::from_secs(30));
    term.type_keys("not-the-password\n");
    let (status, screen) = term.wait(Duration::from_secs(60));
    assert_eq!(status.code(), Some(6), "{screen}");
    assert!(asked(&screen), "the agent did not ask:\n{screen}");
    assert!(
        screen.contains("vmclonectl: ") && screen.contains("not authorized"),
        "{screen}"
    );

    // The admin's password: the clone is made.
    let mut term = on_terminal(&["clone", "web01", "web01-interactive"]);
    term.wait_for("Password:", Duration::from_secs(30));
    term.type_keys(&format!("{}\n", admin.password));
    let (status, screen) = term.wait(Duration::from_secs(60));
    assert!(status.success(), "{screen}");
    assert!(asked(&screen), "{screen}");
    assert!(screen.contains("AUTHENTICATION COMPLETE"), "{screen}");
    let made = Client::system().get_vm("web01-interactive");
    assert!(
        screen.contains(&format!("Cloned web01 as web01-interactive ({}).", made.id)),
        "{screen}"
    );

    let names = service.vm_names();
    assert!(!names.contains("web01-wrongpw"), "{names:?}");
    // Each agent ended with its vmclonectl.
    let agents = std::process::Command::new("pgrep")
        .args(["-u", &user.name, "pkttyagent"])
        .output()
        .unwrap();
    assert!(
        agents.stdout.is_empty(),
        "pkttyagent left running: {}",
        String::from_utf8_lossy(&agents.stdout)
    );
}
