//! `vmclonectl --host`: the service on "another machine", reached the way `busctl --host`
//! reaches it. A real `sshd` started by the test on 127.0.0.1 (its own port, config and
//! host key, a user key made by the test), the built service as root on the system bus;
//! vmclonectl runs `ssh … systemd-stdio-bridge` with the test's ssh configuration
//! (`VMCLONECTL_SSH`) and its own system bus pointed nowhere, so only the SSH path works.

mod support;

use std::collections::BTreeSet;
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use support::*;
use vmclone_tests::process::run;
use vmclone_tests::service::SystemService;
use vmclone_tests::system::RootTest;
use vmclone_tests::{workspace_root, ChildGuard, Client, TempDir};

/// What sshd needs for privilege separation (Debian's sshd refuses to start without it).
const PRIVSEP_DIR: &str = "/run/sshd";

/// A port nothing listens on right now.
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// `sshd -D` on 127.0.0.1 with its own configuration; root may log in with the test's
/// key only. Stopped (and its folder removed) on drop.
struct Sshd {
    port: u16,
    dir: TempDir,
    child: ChildGuard,
    /// Made for this sshd, removed again.
    privsep_made: bool,
}

impl Sshd {
    fn start() -> Sshd {
        let dir = TempDir::new("sshd");
        let path = |f: &str| dir.join(f).display().to_string();
        for key in ["host_key", "user_key"] {
            run(
                "ssh-keygen",
                &["-q", "-t", "ed25519", "-N", "", "-C", key, "-f", &path(key)],
            );
        }
        std::fs::copy(dir.join("user_key.pub"), dir.join("authorized_keys")).unwrap();
        let port = free_port();
        std::fs::write(
            dir.join("sshd_config"),
            format!(
                "ListenAddress 127.0.0.1:{port}\n\
                 HostKey {host_key}\n\
                 AuthorizedKeysFile {keys}\n\
                 PermitRootLogin prohibit-password\n\
                 AllowUsers root\n\
                 PasswordAuthentication no\n\
                 KbdInteractiveAuthentication no\n\
                 # A container's PAM may refuse sessions (pam_loginuid); keys are all we need.\n\
                 UsePAM no\n\
                 # The files live in a folder under /tmp, which StrictModes would refuse.\n\
                 StrictModes no\n\
                 PidFile none\n\
                 PrintMotd no\n\
                 LogLevel VERBOSE\n",
                host_key = path("host_key"),
                keys = path("authorized_keys"),
            ),
        )
        .unwrap();
        let host_key = std::fs::read_to_string(dir.join("host_key.pub")).unwrap();
        let key: Vec<&str> = host_key.split_whitespace().take(2).collect();
        std::fs::write(
            dir.join("known_hosts"),
            format!("[127.0.0.1]:{port} {}\n", key.join(" ")),
        )
        .unwrap();
        std::fs::write(
            dir.join("ssh_config"),
            format!(
                "Host *\n\
                 \x20   IdentityFile {key}\n\
                 \x20   IdentitiesOnly yes\n\
                 \x20   UserKnownHostsFile {known}\n\
                 \x20   GlobalKnownHostsFile /dev/null\n\
                 \x20   StrictHostKeyChecking yes\n\
                 \x20   BatchMode yes\n\
                 \x20   LogLevel ERROR\n",
                key = path("user_key"),
                known = path("known_hosts"),
            ),
        )
        .unwrap();

        let privsep_made = !Path::new(PRIVSEP_DIR).exists();
        if privsep_made {
            std::fs::create_dir(PRIVSEP_DIR).unwrap();
        }
        let log = std::fs::File::create(dir.join("sshd.log")).unwrap();
        // sshd re-executes itself, which needs its absolute path.
        let child = Command::new("/usr/sbin/sshd")
            .args(["-D", "-e", "-f", &path("sshd_config")])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("/usr/sbin/sshd: install openssh-server (tools/setup-host.sh)");
        let mut sshd = Sshd {
            port,
            dir,
            child: ChildGuard(child),
            privsep_made,
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            if let Ok(Some(status)) = sshd.child.0.try_wait() {
                panic!("sshd exited ({status}):\n{}", sshd.log());
            }
            assert!(
                Instant::now() < deadline,
                "sshd does not listen:\n{}",
                sshd.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        sshd
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("sshd.log")).unwrap_or_default()
    }

    fn file(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    /// `ssh` with the test's configuration: its key, its known host, no questions.
    fn ssh_command(&self) -> String {
        format!("ssh -F {}", self.file("ssh_config").display())
    }
}

impl Drop for Sshd {
    fn drop(&mut self) {
        if self.privsep_made {
            let _ = std::fs::remove_dir(PRIVSEP_DIR);
        }
    }
}

/// `vmclonectl ARGS…` with `ssh` as `ssh_command`, and no local system bus to fall back on.
fn remote_ctl(ssh_command: &str, args: &[&str]) -> Output {
    let mut cmd = ctl(args);
    cmd.env("VMCLONECTL_SSH", ssh_command).env(
        "DBUS_SYSTEM_BUS_ADDRESS",
        "unix:path=/nonexistent/system_bus_socket",
    );
    cmd.output().unwrap()
}

#[test]
#[ignore = "needs root, the system bus, polkitd and sshd (openssh-server)"]
fn over_ssh_vmclonectl_lists_and_clones_on_the_remote_service() {
    let system = RootTest::begin();
    let host_xml = std::fs::read_to_string(workspace_root().join("data/demo-host.xml")).unwrap();
    let service = SystemService::on_test_host(&system, &host_xml);
    let sshd = Sshd::start();
    let ssh = sshd.ssh_command();
    let host = format!("root@127.0.0.1:{}", sshd.port);

    // The local bus really is out of reach.
    assert_fails(&remote_ctl(&ssh, &["list"]), 10, "system bus");

    let listed: BTreeSet<String> = ok(&remote_ctl(&ssh, &["--host", &host, "list", "--names"]))
        .lines()
        .map(str::to_string)
        .collect();
    assert_eq!(listed, service.vm_names(), "list over ssh");
    let table = ok(&remote_ctl(&ssh, &["list", "-H", &host]));
    assert!(
        table.starts_with("NAME ") && table.contains("web01"),
        "{table}"
    );
    assert!(
        sshd.log()
            .contains("Accepted publickey for root from 127.0.0.1"),
        "{}",
        sshd.log()
    );

    let text = ok(&remote_ctl(
        &ssh,
        &["--host", &host, "clone", "web01", "web01-remote"],
    ));
    let made = Client::system().get_vm("web01-remote");
    assert_eq!(
        text,
        format!("Cloned web01 as web01-remote ({}).\n", made.id)
    );
    assert!(service.vm_names().contains("web01-remote"));

    // A host whose key is not the one known: ssh refuses, vmclonectl says where it failed.
    std::fs::write(sshd.file("known_hosts"), "").unwrap();
    let out = remote_ctl(&ssh, &["--host", &host, "list"]);
    let sentence = assert_fails(&out, 10, &format!("Cannot reach the system bus of {host}"));
    assert!(sentence.contains("ssh"), "{sentence}");
    assert!(
        stderr(&out).contains("Host key verification failed."),
        "ssh's own reason: {}",
        stderr(&out)
    );
}

#[test]
fn a_host_nobody_answers_on_or_no_ssh_is_status_10() {
    // Nothing listens on the port: ssh's refusal above one sentence naming the host.
    let host = format!("root@127.0.0.1:{}", free_port());
    let out = remote_ctl("ssh -o BatchMode=yes", &["--host", &host, "list"]);
    assert_fails(&out, 10, &format!("Cannot reach the system bus of {host}"));
    assert!(
        stderr(&out).contains("Connection refused"),
        "{}",
        stderr(&out)
    );
    let out = remote_ctl("/nonexistent/ssh", &["--host", "kvm1", "clone", "web01"]);
    assert_fails(&out, 10, "No such file");
    // Not a host: a usage error before anything runs.
    let out = remote_ctl("/nonexistent/ssh", &["--host=-oProxyCommand=x", "list"]);
    assert_eq!(code(&out), 2, "{}", stderr(&out));
}
