//! The D-Bus contract of the vmclone service as zbus proxies of
//! `org.vmclone.Manager` and `org.vmclone.Job`, mirroring
//! `data/org.vmclone.Manager.xml` and `data/org.vmclone.Job.xml`
//! (`tests/contract.rs` checks them against those files). The app and
//! vmclonectl both use these; neither links libvirt. Every method allows
//! interactive authorization, so polkit may ask for a password through the
//! desktop's or the terminal's agent instead of refusing.

use std::collections::HashMap;

use zbus::proxy;
use zbus::zvariant::{OwnedObjectPath, OwnedValue, Value};

pub const BUS_NAME: &str = "org.vmclone.Manager";
pub const MANAGER_PATH: &str = "/org/vmclone/Manager";
/// Where the job objects live (`JOBS_PATH/N`).
pub const JOBS_PATH: &str = "/org/vmclone/Manager/jobs";
pub const JOB_INTERFACE: &str = "org.vmclone.Job";

/// A VM, plan or destination dictionary as the service sends it.
pub type Dict = HashMap<String, OwnedValue>;

#[proxy(
    interface = "org.vmclone.Manager",
    default_service = "org.vmclone.Manager",
    default_path = "/org/vmclone/Manager",
    gen_blocking = false
)]
pub trait Manager {
    #[zbus(allow_interactive_auth)]
    fn clone_vm(&self, source_vm_id: &str, new_name: &str) -> zbus::Result<String>;

    #[zbus(allow_interactive_auth)]
    fn clone_vm_with_options(
        &self,
        source_vm_id: &str,
        new_name: &str,
        options: HashMap<&str, Value<'_>>,
    ) -> zbus::Result<String>;

    #[zbus(allow_interactive_auth)]
    fn clone_vms(
        &self,
        source_vm_id: &str,
        new_names: &[&str],
        options: HashMap<&str, Value<'_>>,
    ) -> zbus::Result<Vec<String>>;

    #[zbus(allow_interactive_auth)]
    fn start_clone(
        &self,
        source_vm_id: &str,
        new_name: &str,
        options: HashMap<&str, Value<'_>>,
    ) -> zbus::Result<OwnedObjectPath>;

    #[zbus(allow_interactive_auth)]
    fn list_vms(&self) -> zbus::Result<Vec<Dict>>;

    #[zbus(allow_interactive_auth)]
    fn get_vm(&self, id_or_name: &str) -> zbus::Result<Dict>;

    #[zbus(allow_interactive_auth)]
    fn check_name(&self, new_name: &str) -> zbus::Result<()>;

    /// What `StartClone` with these arguments would do, changing nothing; the
    /// options by reference, as a plan of several copies asks once per name.
    #[zbus(allow_interactive_auth)]
    fn plan_clone(
        &self,
        source_vm_id: &str,
        new_name: &str,
        options: &HashMap<&str, Value<'_>>,
    ) -> zbus::Result<Dict>;

    /// The storage pools' folders a clone may be put in.
    #[zbus(allow_interactive_auth)]
    fn list_destinations(&self) -> zbus::Result<Vec<Dict>>;

    /// The caller's jobs (every job for root).
    #[zbus(allow_interactive_auth)]
    fn list_jobs(&self) -> zbus::Result<Vec<OwnedObjectPath>>;

    #[zbus(allow_interactive_auth)]
    fn convert_to_template(&self, vm_id: &str) -> zbus::Result<()>;

    #[zbus(signal)]
    fn vm_cloned(
        &self,
        source_vm_id: &str,
        cloned_vm_id: &str,
        new_name: &str,
        timestamp: u64,
    ) -> zbus::Result<()>;

    #[zbus(signal)]
    fn vm_state_changed(&self, vm_id: &str, state: &str) -> zbus::Result<()>;

    #[zbus(property(emits_changed_signal = "const"))]
    fn version(&self) -> zbus::Result<String>;

    #[zbus(property(emits_changed_signal = "const"))]
    fn libvirt_uri(&self) -> zbus::Result<String>;
}

#[proxy(
    interface = "org.vmclone.Job",
    default_service = "org.vmclone.Manager",
    gen_blocking = false
)]
pub trait Job {
    #[zbus(allow_interactive_auth)]
    fn cancel(&self) -> zbus::Result<()>;

    #[zbus(signal)]
    fn finished(&self, state: &str) -> zbus::Result<()>;

    #[zbus(property)]
    fn state(&self) -> zbus::Result<String>;
    /// While running: copying, customizing, defining.
    #[zbus(property)]
    fn phase(&self) -> zbus::Result<String>;
    #[zbus(property)]
    fn bytes_done(&self) -> zbus::Result<u64>;
    #[zbus(property)]
    fn bytes_total(&self) -> zbus::Result<u64>;
    #[zbus(property)]
    fn consistency(&self) -> zbus::Result<String>;
    #[zbus(property)]
    fn paused_ms(&self) -> zbus::Result<u64>;
    #[zbus(property)]
    fn source_vm_id(&self) -> zbus::Result<String>;
    #[zbus(property)]
    fn new_name(&self) -> zbus::Result<String>;
    #[zbus(property)]
    fn cloned_vm_id(&self) -> zbus::Result<String>;
    #[zbus(property)]
    fn error(&self) -> zbus::Result<String>;
    #[zbus(property)]
    fn error_name(&self) -> zbus::Result<String>;
}
