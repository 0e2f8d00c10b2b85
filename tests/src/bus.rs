//! Private `dbus-daemon`s: the distribution's session configuration, or one written
//! for the test (a bus like the system bus, a bus that refuses calls).

use std::io::{BufRead, BufReader};
use std::ops::Deref;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::client::{BusAddress, Client};
use crate::process::ChildGuard;
use crate::temp::TempDir;

/// A private `dbus-daemon`, used through its [`Client`] (`bus.call(…)`, `bus.list_vms()`).
pub struct PrivateBus {
    client: Client,
    address: String,
    _daemon: ChildGuard,
    _dir: TempDir,
}

impl PrivateBus {
    /// A bus with the session configuration: everyone may own and call anything.
    pub fn start() -> PrivateBus {
        let dir = TempDir::new("bus");
        let socket = dir.join("bus.sock");
        let mut cmd = Command::new("dbus-daemon");
        cmd.arg("--session")
            .arg(format!("--address=unix:path={}", socket.display()));
        PrivateBus::spawn(cmd, dir, &socket)
            .unwrap_or_else(|e| panic!("dbus-daemon did not start: {e}"))
    }

    /// A bus with `config`; Err with the daemon's complaint when it refuses the configuration.
    pub fn start_with(config: &BusConfig) -> Result<PrivateBus, String> {
        let dir = TempDir::new("bus");
        let (file, socket) = (dir.join("bus.conf"), dir.join("bus.sock"));
        std::fs::write(&file, config.render(&socket)).expect("write bus config");
        let mut cmd = Command::new("dbus-daemon");
        cmd.arg(format!("--config-file={}", file.display()));
        PrivateBus::spawn(cmd, dir, &socket)
    }

    /// Runs the daemon until it prints its address (it listens on `socket` then), or fails.
    fn spawn(mut cmd: Command, dir: TempDir, socket: &Path) -> Result<PrivateBus, String> {
        let log = dir.join("dbus-daemon.log");
        let mut child = cmd
            .args(["--nofork", "--nopidfile", "--print-address"])
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&log).expect("create dbus-daemon log"))
            .spawn()
            .expect("dbus-daemon is installed (package dbus-daemon)");
        let mut printed = String::new();
        let stdout = child.stdout.take().expect("piped stdout");
        let _ = BufReader::new(stdout).read_line(&mut printed);
        let daemon = ChildGuard(child);
        if printed.trim().is_empty() {
            drop(daemon);
            return Err(std::fs::read_to_string(&log).unwrap_or_default());
        }
        let address = format!("unix:path={}", socket.display());
        Ok(PrivateBus {
            client: Client::new(BusAddress::Private(address.clone())),
            address,
            _daemon: daemon,
            _dir: dir,
        })
    }

    pub fn address(&self) -> &str {
        &self.address
    }
}

impl Deref for PrivateBus {
    type Target = Client;

    fn deref(&self) -> &Client {
        &self.client
    }
}

/// A `dbus-daemon` configuration written for a test.
pub struct BusConfig {
    bus_type: &'static str,
    /// The body of `<policy context="default">`.
    default_policy: String,
    include: Option<PathBuf>,
}

impl BusConfig {
    /// As the system bus: nobody may own a name or call a method unless an included
    /// policy allows it; replies and signals flow.
    pub fn system_like() -> BusConfig {
        BusConfig {
            bus_type: "system",
            default_policy: r#"<allow user="*"/>
    <deny own="*"/>
    <deny send_type="method_call"/>
    <allow send_type="signal"/>
    <allow send_requested_reply="true" send_type="method_return"/>
    <allow send_requested_reply="true" send_type="error"/>
    <allow receive_type="method_call"/>
    <allow receive_type="method_return"/>
    <allow receive_type="error"/>
    <allow receive_type="signal"/>
    <allow send_destination="org.freedesktop.DBus" send_interface="org.freedesktop.DBus"/>"#
                .into(),
            include: None,
        }
    }

    /// A session bus with this default policy (the rules inside `<policy context="default">`).
    pub fn session_with_policy(default_policy: &str) -> BusConfig {
        BusConfig {
            bus_type: "session",
            default_policy: default_policy.into(),
            include: None,
        }
    }

    /// Includes a policy file, as the system bus includes those in `system.d`.
    pub fn include(mut self, file: &Path) -> BusConfig {
        self.include = Some(file.to_path_buf());
        self
    }

    fn render(&self, socket: &Path) -> String {
        let include = self
            .include
            .as_ref()
            .map(|f| format!("  <include>{}</include>\n", f.display()))
            .unwrap_or_default();
        format!(
            r#"<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>{}</type>
  <listen>unix:path={}</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    {}
  </policy>
{include}</busconfig>
"#,
            self.bus_type,
            socket.display(),
            self.default_policy
        )
    }
}
