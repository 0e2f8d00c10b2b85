//! Harness for the end-to-end tests: a private `dbus-daemon`, the real
//! `vmclone-service` binary on it, and `busctl` as the client.
//!
//! Nothing here is mocked: the tests talk to the same binaries a user runs.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

pub const BUS_NAME: &str = "org.vmclone.Manager";
pub const OBJECT_PATH: &str = "/org/vmclone/Manager";
pub const INTERFACE: &str = "org.vmclone.Manager";

/// The repository's top folder.
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ has a parent")
        .to_path_buf()
}

/// A binary built by `cargo test --workspace` / `cargo build` into the same
/// target folder as the running test.
pub fn built_binary(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("current_exe");
    // target/<profile>/deps/<test> -> target/<profile>/<name>
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("test binary lives in target/<profile>/deps");
    let bin = profile_dir.join(name);
    assert!(
        bin.exists(),
        "{} is not built; run `cargo build --workspace` (or `cargo test --workspace`) first",
        bin.display()
    );
    bin
}

/// A fresh temporary folder, removed on drop.
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        let base = std::env::var_os("VMCLONE_TEST_TMP")
            .map(PathBuf::from)
            .unwrap_or_else(std::env::temp_dir);
        let dir = base.join(format!(
            "vmclone-{tag}-{}-{}",
            std::process::id(),
            unique_counter()
        ));
        std::fs::create_dir_all(&dir).expect("create temp dir");
        TempDir(dir)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn unique_counter() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    N.fetch_add(1, Ordering::Relaxed)
}

/// Kills and reaps a child process on drop.
pub struct ChildGuard(pub Child);

impl Drop for ChildGuard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A private `dbus-daemon` (session configuration: everyone may call anything).
pub struct PrivateBus {
    _daemon: ChildGuard,
    address: String,
    _dir: TempDir,
}

impl PrivateBus {
    pub fn start() -> PrivateBus {
        let dir = TempDir::new("bus");
        let socket = dir.path().join("bus.sock");
        let address = format!("unix:path={}", socket.display());
        let daemon = Command::new("dbus-daemon")
            .args(["--session", "--nofork", "--nopidfile"])
            .arg(format!("--address={address}"))
            .stdout(Stdio::null())
            .spawn()
            .expect("dbus-daemon is installed (package dbus-daemon)");
        let daemon = ChildGuard(daemon);
        wait_until(Duration::from_secs(10), "the private dbus-daemon", || {
            socket.exists()
        });
        PrivateBus {
            _daemon: daemon,
            address,
            _dir: dir,
        }
    }

    pub fn address(&self) -> &str {
        &self.address
    }

    /// `busctl --address=… ARGS…`
    pub fn busctl<I, S>(&self, args: I) -> Output
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        Command::new("busctl")
            .arg(format!("--address={}", self.address))
            .args(args)
            .output()
            .expect("busctl is installed (package systemd)")
    }

    /// `busctl call org.vmclone.Manager /org/vmclone/Manager org.vmclone.Manager METHOD SIG ARGS…`
    pub fn call(&self, method: &str, signature: &str, args: &[&str]) -> Output {
        let mut argv: Vec<&str> = vec!["call", BUS_NAME, OBJECT_PATH, INTERFACE, method];
        if !signature.is_empty() {
            argv.push(signature);
        }
        argv.extend_from_slice(args);
        self.busctl(argv)
    }

    /// `gdbus call` on the manager: `method` is the bare method name and
    /// `args` are GVariant texts, e.g. `"{'storage': <'linked'>}"`.
    pub fn gdbus_call(&self, method: &str, args: &[&str]) -> Output {
        Command::new("gdbus")
            .args(["call", "--address", &self.address, "--dest", BUS_NAME])
            .args(["--object-path", OBJECT_PATH, "--timeout", "600", "--method"])
            .arg(format!("{INTERFACE}.{method}"))
            .args(args)
            .output()
            .expect("gdbus is installed (package libglib2.0-bin)")
    }

    /// Whether `name` has an owner on this bus.
    pub fn has_owner(&self, name: &str) -> bool {
        self.busctl(["status", name]).status.success()
    }
}

/// The real `vmclone-service` binary, serving on a private bus.
pub struct Service {
    child: ChildGuard,
    pub state_dir: TempDir,
    pub log: PathBuf,
}

impl Service {
    /// Starts the service with authorization disabled (private bus) on the
    /// libvirt connection `uri`, and waits until it owns its bus name.
    pub fn start(bus: &PrivateBus, uri: &str, extra_args: &[&str]) -> Service {
        let state_dir = TempDir::new("state");
        Self::start_with_state(bus, uri, extra_args, state_dir)
    }

    /// As [`Service::start`], with a given state folder (the journal lives there),
    /// so a test can restart the service on the same state.
    pub fn start_with_state(
        bus: &PrivateBus,
        uri: &str,
        extra_args: &[&str],
        state_dir: TempDir,
    ) -> Service {
        let log = state_dir.path().join("service.log");
        let log_file = std::fs::File::create(&log).expect("create service log");
        let child = Command::new(built_binary("vmclone-service"))
            .arg("--address")
            .arg(bus.address())
            .arg("--no-authorization")
            .arg("--uri")
            .arg(uri)
            .arg("--state-dir")
            .arg(state_dir.path())
            .args(extra_args)
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
        let deadline = Instant::now() + Duration::from_secs(20);
        while !bus.has_owner(BUS_NAME) {
            if let Ok(Some(status)) = service.child.0.try_wait() {
                panic!(
                    "vmclone-service exited with {status} before owning its name:\n{}",
                    service.log_text()
                );
            }
            assert!(
                Instant::now() < deadline,
                "vmclone-service did not own {BUS_NAME} within 20 s:\n{}",
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
    pub fn kill9(mut self) -> TempDir {
        unsafe {
            libc::kill(self.child.0.id() as libc::pid_t, libc::SIGKILL);
        }
        let _ = self.child.0.wait();
        let dir = TempDir(std::mem::take(&mut self.state_dir.0));
        std::mem::forget(self.state_dir);
        dir
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

/// Polls `cond` every 20 ms until it holds; panics naming `what` after `timeout`.
pub fn wait_until(timeout: Duration, what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// stdout of a successful command, or a panic with its stderr.
pub fn stdout_ok(out: &Output) -> String {
    assert!(
        out.status.success(),
        "command failed ({}): {}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// stderr of a command that must have failed.
pub fn stderr_of(out: &Output) -> String {
    assert!(
        !out.status.success(),
        "expected the call to fail, it succeeded: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// The D-Bus error name and message of a failed `gdbus call`
/// (busctl prints only the message, so error names are checked with gdbus).
pub fn gdbus_error(out: &Output) -> (String, String) {
    let err = stderr_of(out);
    let rest = err
        .split("GDBus.Error:")
        .nth(1)
        .unwrap_or_else(|| panic!("not a D-Bus error: {err}"));
    let (name, message) = rest.split_once(": ").unwrap_or((rest, ""));
    (name.trim().to_string(), message.trim().to_string())
}

/// Writes a libvirt test-driver host description and returns its `test:///` URI.
pub fn test_driver_uri(dir: &Path, host_xml: &str) -> String {
    let path = dir.join("host.xml");
    std::fs::write(&path, host_xml).expect("write test host");
    format!("test://{}", path.display())
}

/// `data/demo-host.xml`, the libvirt test-driver host the demo uses.
pub fn demo_host_uri() -> String {
    format!(
        "test://{}",
        workspace_root().join("data/demo-host.xml").display()
    )
}

/// Signals on the bus, read by `gdbus monitor` in the background: each line
/// is one signal as gdbus prints it.
pub struct SignalWatch {
    _child: ChildGuard,
    /// Each line with the moment it was read.
    lines: std::sync::mpsc::Receiver<(Instant, String)>,
}

impl SignalWatch {
    /// Watches everything `org.vmclone.Manager` emits. Returns once gdbus is
    /// subscribed.
    pub fn start(bus: &PrivateBus) -> SignalWatch {
        use std::io::BufRead;
        let mut child = Command::new("gdbus")
            .args(["monitor", "--address", bus.address(), "--dest", BUS_NAME])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("gdbus is installed (package libglib2.0-bin)");
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stdout)
                .lines()
                .map_while(Result::ok)
            {
                if tx.send((Instant::now(), line)).is_err() {
                    break;
                }
            }
        });
        // gdbus prints "Monitoring signals from all objects owned by …" once subscribed.
        let (_, first) = rx
            .recv_timeout(Duration::from_secs(10))
            .expect("gdbus monitor started");
        assert!(
            first.contains("Monitoring"),
            "unexpected gdbus output: {first}"
        );
        SignalWatch {
            _child: ChildGuard(child),
            lines: rx,
        }
    }

    /// The next line containing `needle`, waiting up to `timeout`.
    pub fn wait_for(&self, needle: &str, timeout: Duration) -> String {
        let mut lines = self.collect_until_timed(needle, timeout);
        lines.pop().expect("the matching line").1
    }

    /// Every line up to and including the first one containing `needle`.
    pub fn collect_until(&self, needle: &str, timeout: Duration) -> Vec<String> {
        self.collect_until_timed(needle, timeout)
            .into_iter()
            .map(|(_, l)| l)
            .collect()
    }

    /// As [`SignalWatch::collect_until`], with the moment each line was read.
    pub fn collect_until_timed(&self, needle: &str, timeout: Duration) -> Vec<(Instant, String)> {
        let deadline = Instant::now() + timeout;
        let mut out = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok((at, line)) => {
                    let done = line.contains(needle);
                    out.push((at, line));
                    if done {
                        return out;
                    }
                }
                Err(_) => {
                    let seen: Vec<&String> = out.iter().map(|(_, l)| l).collect();
                    panic!("no signal containing {needle:?} within {timeout:?}; saw {seen:?}")
                }
            }
        }
    }

    /// Every line seen so far (without waiting).
    pub fn drain(&self) -> Vec<String> {
        self.lines.try_iter().map(|(_, l)| l).collect()
    }
}

/// One VM as `ListVms` reports it, parsed from `busctl --json=short` output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Vm {
    pub id: String,
    pub name: String,
    pub state: String,
    pub vcpus: u64,
    pub memory_mib: u64,
    pub disks: u64,
    pub interfaces: u64,
    pub is_template: bool,
}

impl PrivateBus {
    /// `ListVms` through busctl, sorted by name.
    pub fn list_vms(&self) -> Vec<Vm> {
        let mut vms = self.call_vms(&["ListVms"]);
        vms.sort_by(|a, b| a.name.cmp(&b.name));
        vms
    }

    /// `GetVm` through busctl.
    pub fn get_vm(&self, id: &str) -> Vm {
        let vms = self.call_vms(&["GetVm", "s", id]);
        assert_eq!(vms.len(), 1, "GetVm gave {vms:?}");
        vms.into_iter().next().expect("one VM")
    }

    fn call_vms(&self, method_and_args: &[&str]) -> Vec<Vm> {
        let mut argv = vec!["--json=short", "call", BUS_NAME, OBJECT_PATH, INTERFACE];
        argv.extend_from_slice(method_and_args);
        parse_vm_dicts(&stdout_ok(&self.busctl(argv)))
    }
}

/// Reads the VM dictionaries out of busctl's JSON output
/// (`{"type":"aa{sv}","data":[[{key:{"type":..,"data":..}}]]}`).
fn parse_vm_dicts(json: &str) -> Vec<Vm> {
    let v: serde_json::Value = serde_json::from_str(json).expect("busctl JSON");
    let data = &v["data"][0];
    let dicts: Vec<&serde_json::Value> = match data {
        serde_json::Value::Array(a) => a.iter().collect(),
        obj @ serde_json::Value::Object(_) => vec![obj],
        other => panic!("unexpected ListVms/GetVm JSON: {other}"),
    };
    dicts
        .into_iter()
        .map(|d| {
            let s = |k: &str| {
                d[k]["data"]
                    .as_str()
                    .unwrap_or_else(|| panic!("{k} in {d}"))
                    .to_string()
            };
            let n = |k: &str| {
                d[k]["data"]
                    .as_u64()
                    .unwrap_or_else(|| panic!("{k} in {d}"))
            };
            Vm {
                id: s("id"),
                name: s("name"),
                state: s("state"),
                vcpus: n("vcpus"),
                memory_mib: n("memory-mib"),
                disks: n("disks"),
                interfaces: n("interfaces"),
                is_template: d["is-template"]["data"].as_bool().expect("is-template"),
            }
        })
        .collect()
}
