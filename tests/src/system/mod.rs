//! Root tests on the running system bus and polkitd: the project's policies installed,
//! users made for the test, files placed under /etc and /usr, polkitd stopped. Every change
//! is undone by a guard, and only one such test runs at a time, across test binaries.

mod files;
mod polkit;
mod users;

use std::fs::File;
use std::os::fd::AsRawFd;
use std::process::Output;

pub use files::{place_rules, reload_system_bus, PlacedFile, ProjectPolicies};
pub use polkit::{deny_rule, PolkitAdmin, PolkitDown, POLKIT_NAME};
pub use users::{TestGroup, TestUser};

use crate::client::{gdbus_error, Client, BUS_NAME};
use crate::process::require_root;

/// The lock every test that changes the system bus holds. Not the lock a person holds
/// around a whole root run (`/tmp/vmclone-root-tests.lock`): that one is held by the
/// `flock` that runs cargo, so taking it here would wait forever.
const SYSTEM_BUS_LOCK: &str = "/run/lock/vmclone-system-bus-tests.lock";

/// What every root test on the system bus starts with: no other such test running (in this
/// or another test binary), the system checked, the project's policies installed.
pub struct RootTest {
    // Fields drop in order: the policies go before the next test may start.
    _policies: ProjectPolicies,
    _lock: SystemBusLock,
}

impl RootTest {
    pub fn begin() -> RootTest {
        require_root("it installs the bus and polkit policies and creates users");
        let lock = SystemBusLock::acquire();
        require_system();
        RootTest {
            _policies: ProjectPolicies::install(),
            _lock: lock,
        }
    }
}

/// An exclusive `flock` on [`SYSTEM_BUS_LOCK`], held by every test that uses the system
/// bus: it conflicts with every other open of the file, in this process or another, and is
/// released when the file closes.
pub struct SystemBusLock {
    _file: File,
}

impl SystemBusLock {
    pub fn acquire() -> SystemBusLock {
        // Another user may have made the file; reading is enough for flock.
        let file = File::options()
            .create(true)
            .append(true)
            .open(SYSTEM_BUS_LOCK)
            .or_else(|_| File::open(SYSTEM_BUS_LOCK))
            .unwrap_or_else(|e| panic!("cannot open {SYSTEM_BUS_LOCK}: {e}"));
        // SAFETY: flock on a descriptor we own.
        let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX) };
        assert_eq!(
            rc,
            0,
            "flock {SYSTEM_BUS_LOCK}: {}",
            std::io::Error::last_os_error()
        );
        SystemBusLock { _file: file }
    }
}

/// The system bus and polkitd run.
fn require_system() {
    assert!(
        Client::system()
            .busctl(["status", "org.freedesktop.DBus"])
            .status
            .success(),
        "no system bus at /run/dbus/system_bus_socket: run tools/setup-host.sh"
    );
    assert!(
        Client::system().has_owner(POLKIT_NAME),
        "polkitd is not running on the system bus: run tools/setup-host.sh"
    );
}

/// Nobody owns org.vmclone.Manager on the system bus, so a test's service can.
pub fn require_bus_name_free() {
    assert!(
        !Client::system().has_owner(BUS_NAME),
        "{BUS_NAME} is already owned on the system bus (an installed vmclone?); stop it first"
    );
}

/// The message of a `gdbus call` that polkit refused (`org.vmclone.Error.NotAuthorized`).
pub fn not_authorized(out: &Output, what: &str) -> String {
    let (name, message) = gdbus_error(out);
    assert_eq!(name, "org.vmclone.Error.NotAuthorized", "{what}: {message}");
    message
}
