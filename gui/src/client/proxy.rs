//! The zbus proxies of `org.vmclone.Manager` and `org.vmclone.Job`; they mirror
//! `data/org.vmclone.Manager.xml` and `data/org.vmclone.Job.xml`
//! (tests/contract.rs checks them against those files).

use std::collections::HashMap;

use zbus::proxy;
use zbus::zvariant::{OwnedObjectPath, OwnedValue, Value};

pub const BUS_NAME: &str = "org.vmclone.Manager";

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
    fn list_vms(&self) -> zbus::Result<Vec<HashMap<String, OwnedValue>>>;

    #[zbus(allow_interactive_auth)]
    fn get_vm(&self, id_or_name: &str) -> zbus::Result<HashMap<String, OwnedValue>>;

    #[zbus(allow_interactive_auth)]
    fn check_name(&self, new_name: &str) -> zbus::Result<()>;

    #[zbus(allow_interactive_auth)]
    fn plan_clone(
        &self,
        source_vm_id: &str,
        new_name: &str,
        options: HashMap<&str, Value<'_>>,
    ) -> zbus::Result<HashMap<String, OwnedValue>>;

    #[zbus(allow_interactive_auth)]
    fn list_destinations(&self) -> zbus::Result<Vec<HashMap<String, OwnedValue>>>;

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
