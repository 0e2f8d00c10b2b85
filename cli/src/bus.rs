//! The D-Bus side: proxies mirroring `data/org.vmclone.Manager.xml` and
//! `data/org.vmclone.Job.xml` (tests/contract.rs checks them against those
//! files), and the connection. Every call allows interactive authorization, so
//! polkit may ask for a password instead of refusing.

use std::collections::HashMap;

use gettextrs::gettext;
use zbus::zvariant::{OwnedObjectPath, OwnedValue, Value};
use zbus::{proxy, Connection};

use crate::error::CliError;
use crate::ssh::Remote;

pub const BUS_NAME: &str = "org.vmclone.Manager";
pub const JOBS_PATH: &str = "/org/vmclone/Manager/jobs";
pub const JOB_INTERFACE: &str = "org.vmclone.Job";

/// A VM or job dictionary as the service sends it.
pub type Dict = HashMap<String, OwnedValue>;

#[proxy(
    interface = "org.vmclone.Manager",
    default_service = "org.vmclone.Manager",
    default_path = "/org/vmclone/Manager",
    gen_blocking = false
)]
pub trait Manager {
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

    #[zbus(allow_interactive_auth)]
    fn convert_to_template(&self, vm_id: &str) -> zbus::Result<()>;

    /// Newer services only (issue 8): the caller's jobs (all of them for root).
    #[zbus(allow_interactive_auth)]
    fn list_jobs(&self) -> zbus::Result<Vec<OwnedObjectPath>>;

    /// What `StartClone` with these arguments would do; the options by
    /// reference, as `plan --copies` asks once per name.
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
    /// While running: copying, customizing, defining (older services lack it).
    #[zbus(property)]
    fn phase(&self) -> zbus::Result<String>;
    #[zbus(property)]
    fn bytes_done(&self) -> zbus::Result<u64>;
    #[zbus(property)]
    fn bytes_total(&self) -> zbus::Result<u64>;
}

/// Where the service is: this machine's system bus, a bus address
/// (`--address`), or another machine's system bus over SSH (`--host`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BusTarget {
    System,
    Address(String),
    Host(Remote),
}

/// Connects to the bus of `target`; the system bus honours
/// `DBUS_SYSTEM_BUS_ADDRESS`. zbus sets no method timeout by default, so a
/// call that runs for an hour (`CloneVms` of big disks) is waited for.
pub async fn connect(target: &BusTarget) -> Result<Connection, CliError> {
    let conn = match target {
        BusTarget::System => Connection::system().await,
        BusTarget::Address(address) => match zbus::connection::Builder::address(address.as_str()) {
            Ok(builder) => builder.build().await,
            Err(e) => Err(e),
        },
        BusTarget::Host(remote) => match zbus::connection::Builder::address(remote.address()) {
            Ok(builder) => builder.build().await,
            Err(e) => Err(e),
        },
    };
    conn.map_err(|e| no_bus(target, &e))
}

/// Why the bus of `target` could not be reached.
fn no_bus(target: &BusTarget, err: &zbus::Error) -> CliError {
    let msg = match target {
        BusTarget::System => gettext("Cannot connect to the D-Bus system bus: {error}"),
        BusTarget::Address(a) => {
            gettext("Cannot connect to the D-Bus bus at {address}: {error}").replace("{address}", a)
        }
        BusTarget::Host(remote) => gettext(
            "Cannot reach the system bus of {host} through ssh and systemd-stdio-bridge: {error}",
        )
        .replace("{host}", &remote.to_string()),
    };
    CliError::Unreachable(msg.replace("{error}", &err.to_string()))
}

pub async fn manager(conn: &Connection) -> Result<ManagerProxy<'static>, CliError> {
    Ok(ManagerProxy::builder(conn)
        .cache_properties(zbus::proxy::CacheProperties::No)
        .build()
        .await?)
}

/// A job's path from what a user types: `3` or `/org/vmclone/Manager/jobs/3`.
pub fn job_path(text: &str) -> Option<OwnedObjectPath> {
    let path = if text.bytes().all(|b| b.is_ascii_digit()) {
        format!("{JOBS_PATH}/{text}")
    } else {
        text.to_string()
    };
    let n = path.strip_prefix(JOBS_PATH)?.strip_prefix('/')?;
    if n.is_empty() || !n.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    OwnedObjectPath::try_from(path).ok()
}

/// Every property of the job at `path`, read from the service (not a cache),
/// so newer properties (`Phase`, …) come along too.
pub async fn job_properties(conn: &Connection, path: &OwnedObjectPath) -> Result<Dict, CliError> {
    let props = zbus::fdo::PropertiesProxy::builder(conn)
        .destination(BUS_NAME)?
        .path(path.clone())?
        .cache_properties(zbus::proxy::CacheProperties::No)
        .build()
        .await?;
    let iface = zbus::names::InterfaceName::from_static_str_unchecked(JOB_INTERFACE);
    props
        .get_all(iface)
        .await
        .map_err(|e| CliError::from(zbus::Error::from(e)))
}

/// A text value of a dictionary, or "".
pub fn text(dict: &Dict, key: &str) -> String {
    dict.get(key)
        .and_then(|v| v.try_clone().ok())
        .and_then(|v| String::try_from(v).ok())
        .unwrap_or_default()
}

/// A boolean of a dictionary, or false.
pub fn flag(dict: &Dict, key: &str) -> bool {
    matches!(dict.get(key).map(|v| &**v), Some(Value::Bool(true)))
}

/// A list of dictionaries in a dictionary (`aa{sv}`), or none.
pub fn dicts(dict: &Dict, key: &str) -> Vec<Dict> {
    dict.get(key)
        .and_then(|v| v.try_clone().ok())
        .and_then(|v| Vec::<Dict>::try_from(v).ok())
        .unwrap_or_default()
}

/// A dictionary in a dictionary (`a{sv}`), or an empty one.
pub fn sub_dict(dict: &Dict, key: &str) -> Dict {
    dict.get(key)
        .and_then(|v| v.try_clone().ok())
        .and_then(|v| Dict::try_from(v).ok())
        .unwrap_or_default()
}

/// A list of texts in a dictionary (`as`), or none.
pub fn texts(dict: &Dict, key: &str) -> Vec<String> {
    dict.get(key)
        .and_then(|v| v.try_clone().ok())
        .and_then(|v| Vec::<String>::try_from(v).ok())
        .unwrap_or_default()
}

/// A number of a dictionary (any unsigned type), or 0.
pub fn number(dict: &Dict, key: &str) -> u64 {
    match dict.get(key).map(|v| &**v) {
        Some(Value::U8(n)) => u64::from(*n),
        Some(Value::U16(n)) => u64::from(*n),
        Some(Value::U32(n)) => u64::from(*n),
        Some(Value::U64(n)) => *n,
        _ => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn job_paths_from_what_users_type() {
        let p = |t: &str| job_path(t).map(|p| p.to_string());
        assert_eq!(p("3").as_deref(), Some("/org/vmclone/Manager/jobs/3"));
        assert_eq!(
            p("/org/vmclone/Manager/jobs/12").as_deref(),
            Some("/org/vmclone/Manager/jobs/12")
        );
        for bad in [
            "",
            "x",
            "/org/vmclone/Manager",
            "/org/vmclone/Manager/jobs/",
            "/a/b/3",
        ] {
            assert_eq!(p(bad), None, "{bad}");
        }
    }
}
