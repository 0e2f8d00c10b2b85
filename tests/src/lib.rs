//! The test-support layer of vmclone, shared by the end-to-end tests (`tests/tests/`),
//! the service's tests (`service/tests/`) and the app's (`gui/tests/`): private
//! `dbus-daemon`s, the real `vmclone-service` binary on them, `busctl`/`gdbus` as
//! clients, libvirt test-driver hosts, a lab on the real libvirtd, guest disks made and
//! read by libguestfs, mounts, and the root tests' system bus with polkitd, users and
//! placed files.
//!
//! Nothing here is mocked: the tests talk to the same binaries a user runs.

pub mod bus;
pub mod client;
pub mod contract;
pub mod dice;
pub mod guest;
pub mod libvirt;
pub mod live;
pub mod mounts;
pub mod paths;
pub mod pauses;
pub mod process;
pub mod service;
pub mod signals;
pub mod stand_in;
pub mod system;
pub mod temp;
pub mod terminal;
pub mod test_host;

// What nearly every test uses, for `use vmclone_tests::*`.
pub use bus::PrivateBus;
pub use client::{
    gdbus_error, pick, reply_object_path, reply_string, Client, Vm, BUS_NAME, INTERFACE,
    JOB_INTERFACE, OBJECT_PATH,
};
pub use paths::{built_binary, workspace_root};
pub use process::{stderr_of, stdout_ok, wait_until, ChildGuard};
pub use service::Service;
pub use signals::SignalWatch;
pub use temp::{names_in, TempDir};
pub use test_host::{big_volume_host, demo_host_uri, file_vm_xml, test_driver_uri, DetailedHost};
