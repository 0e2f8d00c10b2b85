//! The D-Bus side: the connection to the service's bus, and reading the
//! dictionaries it sends; the proxies are the contract's (`vmclone-bus`).

use gettextrs::gettext;
use zbus::zvariant::{OwnedObjectPath, Value};
use zbus::Connection;

use crate::error::CliError;
use crate::ssh::Remote;

pub use vmclone_bus::{Dict, JobProxy, ManagerProxy, BUS_NAME, JOBS_PATH, JOB_INTERFACE};

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
