//! The real `vmclone-service` binary: on a private bus without authorization, or as root
//! on the system bus with polkit.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::bus::PrivateBus;
use crate::client::{Client, BUS_NAME};
use crate::paths::{built_binary, workspace_root};
use crate::pauses::Pauses;
use crate::process::ChildGuard;
use crate::system::{require_bus_name_free, RootTest};
use crate::temp::TempDir;
use crate::test_host::test_driver_uri;

/// How long the service may take to own its name.
const START_TIMEOUT: Duration = Duration::from_secs(20);

/// A running `vmclone-service`, stopped (SIGKILL) on drop.
pub struct Service {
    child: ChildGuard,
    pub state_dir: TempDir,
    pub log: PathBuf,
}

impl Service {
    /// Starts the service with authorization disabled (private bus) on the
    /// libvirt connection `uri`, and waits until it owns its bus name.
    pub fn start(bus: &PrivateBus, uri: &str, extra_args: &[&str]) -> Service {
        Self::start_with_state(bus, uri, extra_args, TempDir::new("state"))
    }

    /// As [`Service::start`], with a given state folder (the journal lives there),
    /// so a test can restart the service on the same state.
    pub fn start_with_state(
        bus: &PrivateBus,
        uri: &str,
        extra_args: &[&str],
        state_dir: TempDir,
    ) -> Service {
        Self::start_paused(bus, uri, extra_args, state_dir, None)
    }

    /// As [`Service::start`], with `env` set in the service's environment
    /// (a PATH without libguestfs, `LIBGUESTFS_BACKEND_SETTINGS`, …).
    pub fn start_with_env(
        bus: &PrivateBus,
        uri: &str,
        extra_args: &[&str],
        env: &[(&str, &str)],
    ) -> Service {
        let mut cmd = Command::new(built_binary("vmclone-service"));
        cmd.args(["--address", bus.address(), "--no-authorization"])
            .args(extra_args)
            .envs(env.iter().copied());
        Service::launch(cmd, uri, TempDir::new("state"), bus, "its private bus")
    }

    /// As [`Service::start`], with only the capabilities the systemd unit
    /// (`data/vmclone.service`: `CapabilityBoundingSet=`, `NoNewPrivileges=`)
    /// leaves it, so a test sees what the confined service can do. (The unit's
    /// other settings are not applied.)
    pub fn start_confined(bus: &PrivateBus, uri: &str) -> Service {
        let unit = std::fs::read_to_string(workspace_root().join("data/vmclone.service"))
            .expect("data/vmclone.service");
        let caps: Vec<String> = unit
            .lines()
            .find_map(|l| l.strip_prefix("CapabilityBoundingSet="))
            .expect("the unit bounds the capabilities")
            .split_whitespace()
            .map(|c| format!("+{}", c.trim_start_matches("CAP_").to_ascii_lowercase()))
            .collect();
        let mut cmd = Command::new("setpriv");
        cmd.arg(format!("--bounding-set=-all,{}", caps.join(",")))
            .args(["--inh-caps=-all", "--no-new-privs", "--"])
            .arg(built_binary("vmclone-service"))
            .args(["--address", bus.address(), "--no-authorization"]);
        Service::launch(cmd, uri, TempDir::new("state"), bus, "its private bus")
    }

    /// As [`Service::start_with_state`], pausing at the clone steps of `pauses`.
    pub fn start_paused(
        bus: &PrivateBus,
        uri: &str,
        extra_args: &[&str],
        state_dir: TempDir,
        pauses: Option<&Pauses>,
    ) -> Service {
        let mut cmd = Command::new(built_binary("vmclone-service"));
        cmd.args(["--address", bus.address(), "--no-authorization"])
            .args(extra_args);
        if let Some(p) = pauses {
            cmd.envs(p.env());
        }
        Service::launch(cmd, uri, state_dir, bus, "its private bus")
    }

    /// Runs `cmd --uri URI --state-dir STATE` and waits until it owns its name on `bus`;
    /// panics with the service's log when it exits first or takes too long.
    fn launch(
        mut cmd: Command,
        uri: &str,
        state_dir: TempDir,
        bus: &Client,
        bus_name: &str,
    ) -> Service {
        let log = state_dir.join("service.log");
        let log_file = std::fs::File::create(&log).expect("create service log");
        let child = cmd
            .args(["--uri", uri, "--state-dir"])
            .arg(state_dir.path())
            .env("RUST_LOG", "vmclone_service=debug,info")
            .stdout(Stdio::null())
            .stderr(log_file)
            .spawn()
            .expect("spawn vmclone-service");
        let mut service = Service {
            child: ChildGuard(child),
            state_dir,
            log,
        };
        let deadline = Instant::now() + START_TIMEOUT;
        while !bus.has_owner(BUS_NAME) {
            if let Ok(Some(status)) = service.child.0.try_wait() {
                panic!(
                    "vmclone-service exited with {status} before owning {BUS_NAME} on {bus_name}:\n{}",
                    service.log_text()
                );
            }
            assert!(
                Instant::now() < deadline,
                "vmclone-service did not own {BUS_NAME} on {bus_name} within {START_TIMEOUT:?}:\n{}",
                service.log_text()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        service
    }

    pub fn pid(&self) -> u32 {
        self.child.0.id()
    }

    /// Sends SIGKILL and reaps the process; hands back the state folder.
    pub fn kill9(self) -> TempDir {
        // Dropping the guard kills (SIGKILL) and reaps.
        let Service {
            child, state_dir, ..
        } = self;
        drop(child);
        state_dir
    }

    /// Sends SIGTERM and waits (at most `timeout`) until the service has exited, as
    /// `systemctl stop` does; hands back the state folder.
    pub fn terminate(mut self, timeout: Duration) -> TempDir {
        crate::process::terminate(self.pid() as i32);
        let deadline = Instant::now() + timeout;
        while self
            .child
            .0
            .try_wait()
            .expect("wait for the service")
            .is_none()
        {
            assert!(
                Instant::now() < deadline,
                "vmclone-service did not exit within {timeout:?} of SIGTERM:\n{}",
                self.log_text()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        self.kill9()
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

/// The built service as root on the system bus (polkit decides), on libvirt `uri`.
/// Only inside a [`RootTest`], which holds the system bus for the test.
pub struct SystemService {
    service: Service,
    /// The test-driver host file, for [`SystemService::on_test_host`].
    _host: Option<TempDir>,
}

impl SystemService {
    pub fn start(root: &RootTest, uri: &str) -> SystemService {
        SystemService::launch(root, uri, None, &[], None)
    }

    /// As [`SystemService::start`], with more arguments and pausing at the clone
    /// steps of `pauses`.
    pub fn start_with(
        root: &RootTest,
        uri: &str,
        extra_args: &[&str],
        pauses: Option<&Pauses>,
    ) -> SystemService {
        SystemService::launch(root, uri, None, extra_args, pauses)
    }

    /// On libvirt's test driver loaded from `host_xml`.
    pub fn on_test_host(root: &RootTest, host_xml: &str) -> SystemService {
        let host = TempDir::new("system-host");
        let uri = test_driver_uri(host.path(), host_xml);
        SystemService::launch(root, &uri, Some(host), &[], None)
    }

    fn launch(
        _root: &RootTest,
        uri: &str,
        host: Option<TempDir>,
        extra_args: &[&str],
        pauses: Option<&Pauses>,
    ) -> SystemService {
        require_bus_name_free();
        let mut cmd = Command::new(built_binary("vmclone-service"));
        cmd.args(extra_args);
        if let Some(p) = pauses {
            cmd.envs(p.env());
        }
        let service = Service::launch(
            cmd,
            uri,
            TempDir::new("system-state"),
            &Client::system(),
            "the system bus",
        );
        SystemService {
            service,
            _host: host,
        }
    }

    pub fn log_text(&self) -> String {
        self.service.log_text()
    }

    pub fn pid(&self) -> u32 {
        self.service.pid()
    }

    pub fn state_dir(&self) -> &std::path::Path {
        self.service.state_dir.path()
    }

    /// The names of the VMs the service lists to root; a failed call shows the service's log.
    pub fn vm_names(&self) -> BTreeSet<String> {
        Client::system()
            .try_list_vms()
            .unwrap_or_else(|e| panic!("ListVms as root: {e}\nservice log:\n{}", self.log_text()))
            .into_iter()
            .map(|vm| vm.name)
            .collect()
    }
}
