//! What `GetVm` tells beyond a list entry: firmware, TPM, each disk and each
//! network interface. Services that do not report a key yet leave it `None`,
//! and the details view leaves its rows out.

use std::collections::HashMap;

use gettextrs::gettext;
use zbus::zvariant::OwnedValue;

use super::error::ClientError;
use super::vm_info::VmInfo;

type Dict = HashMap<String, OwnedValue>;

/// One VM as `GetVm` describes it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct VmDetails {
    pub info: VmInfo,
    /// `bios` or `uefi`.
    pub firmware: Option<String>,
    pub tpm: Option<bool>,
    /// A running VM's guest agent is connected (a live clone can freeze
    /// its filesystems).
    pub guest_agent: Option<bool>,
    pub disks: Option<Vec<DiskDetails>>,
    pub interfaces: Option<Vec<InterfaceDetails>>,
}

/// One entry of `disk-details`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DiskDetails {
    /// The guest's device name (`vda`).
    pub target: String,
    /// `disk`, `cdrom`, `floppy`, `lun`.
    pub device: String,
    /// The image path or `pool/volume`; empty for an empty drive.
    pub source: String,
    pub format: String,
    /// Virtual size in bytes.
    pub capacity: u64,
    /// Bytes allocated on the host.
    pub allocation: u64,
    /// Read-only or shareable: a clone uses it as it is.
    pub shared: bool,
}

/// One entry of `interface-details`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct InterfaceDetails {
    /// libvirt's interface type (`network`, `bridge`, `user`, ...).
    pub kind: String,
    /// The network or bridge it is attached to.
    pub source: String,
    pub mac: String,
    pub model: String,
}

impl VmDetails {
    pub(super) fn from_dict(dict: &Dict) -> Result<VmDetails, ClientError> {
        Ok(VmDetails {
            info: VmInfo::from_dict(dict)?,
            firmware: optional(dict, "firmware")?,
            tpm: optional(dict, "tpm")?,
            guest_agent: optional(dict, "guest-agent")?,
            disks: optional_list(dict, "disk-details", |d| {
                Ok(DiskDetails {
                    target: required(d, "disk-details", "target")?,
                    device: required(d, "disk-details", "device")?,
                    source: required(d, "disk-details", "source")?,
                    format: required(d, "disk-details", "format")?,
                    capacity: required(d, "disk-details", "capacity")?,
                    allocation: required(d, "disk-details", "allocation")?,
                    shared: required(d, "disk-details", "shared")?,
                })
            })?,
            interfaces: optional_list(dict, "interface-details", |d| {
                Ok(InterfaceDetails {
                    kind: required(d, "interface-details", "type")?,
                    source: required(d, "interface-details", "source")?,
                    mac: required(d, "interface-details", "mac")?,
                    model: required(d, "interface-details", "model")?,
                })
            })?,
        })
    }
}

fn bad_key(key: &str) -> ClientError {
    ClientError::BadReply(
        gettext("The service sent a VM without a valid “{key}”.").replace("{key}", key),
    )
}

/// `key` when present; present with another type is a bad reply.
pub(super) fn optional<T: TryFrom<OwnedValue>>(
    dict: &Dict,
    key: &str,
) -> Result<Option<T>, ClientError> {
    dict.get(key)
        .map(|v| {
            v.try_clone()
                .ok()
                .and_then(|v| T::try_from(v).ok())
                .ok_or_else(|| bad_key(key))
        })
        .transpose()
}

/// `key` of an entry of the list `list`, which every entry must have.
pub(super) fn required<T: TryFrom<OwnedValue>>(
    dict: &Dict,
    list: &str,
    key: &str,
) -> Result<T, ClientError> {
    optional(dict, key)?.ok_or_else(|| bad_key(&format!("{list}.{key}")))
}

pub(super) fn optional_list<T>(
    dict: &Dict,
    key: &str,
    entry: impl Fn(&Dict) -> Result<T, ClientError>,
) -> Result<Option<Vec<T>>, ClientError> {
    let Some(list) = optional::<Vec<Dict>>(dict, key)? else {
        return Ok(None);
    };
    list.iter().map(entry).collect::<Result<_, _>>().map(Some)
}

#[cfg(test)]
mod tests {
    use zbus::zvariant::Value;

    use super::*;

    fn owned(v: Value<'_>) -> OwnedValue {
        v.try_to_owned().expect("owned value")
    }

    fn dict(entries: Vec<(&str, Value<'_>)>) -> Dict {
        entries
            .into_iter()
            .map(|(k, v)| (k.to_string(), owned(v)))
            .collect()
    }

    fn base() -> Vec<(&'static str, Value<'static>)> {
        vec![
            ("id", Value::from("6f0e2d1c-5b4a-4c3d-9e8f-7a6b5c4d3e21")),
            ("name", Value::from("web01")),
            ("state", Value::from("shutoff")),
            ("vcpus", Value::U32(2)),
            ("memory-mib", Value::U64(2048)),
            ("disks", Value::U32(2)),
            ("interfaces", Value::U32(1)),
            ("is-template", Value::Bool(false)),
        ]
    }

    /// An `aa{sv}` value as the contract describes it.
    fn list(entries: Vec<Vec<(&str, Value<'_>)>>) -> Value<'static> {
        let dicts: Vec<HashMap<String, OwnedValue>> = entries.into_iter().map(dict).collect();
        Value::from(dicts).try_to_owned().expect("owned").into()
    }

    #[test]
    fn a_service_without_the_detail_keys_gives_the_list_entry_only() {
        let details = VmDetails::from_dict(&dict(base())).expect("valid");
        assert_eq!(details.info.name, "web01");
        assert_eq!(details.info.interfaces, 1);
        assert_eq!(
            (
                details.firmware,
                details.tpm,
                details.disks,
                details.interfaces
            ),
            (None, None, None, None)
        );
    }

    #[test]
    fn the_detail_keys_of_the_contract_are_read() {
        let mut entries = base();
        entries.push(("firmware", Value::from("uefi")));
        entries.push(("tpm", Value::Bool(true)));
        entries.push((
            "disk-details",
            list(vec![vec![
                ("target", Value::from("vda")),
                ("device", Value::from("disk")),
                ("source", Value::from("/var/lib/libvirt/images/web01.qcow2")),
                ("format", Value::from("qcow2")),
                ("capacity", Value::U64(10 << 30)),
                ("allocation", Value::U64(1 << 30)),
                ("shared", Value::Bool(false)),
            ]]),
        ));
        entries.push((
            "interface-details",
            list(vec![vec![
                ("type", Value::from("network")),
                ("source", Value::from("default")),
                ("mac", Value::from("52:54:00:12:34:56")),
                ("model", Value::from("virtio")),
            ]]),
        ));
        let details = VmDetails::from_dict(&dict(entries)).expect("valid");
        assert_eq!(details.firmware.as_deref(), Some("uefi"));
        assert_eq!(details.tpm, Some(true));
        let disks = details.disks.expect("disks");
        assert_eq!(disks.len(), 1);
        assert_eq!(disks[0].target, "vda");
        assert_eq!(disks[0].source, "/var/lib/libvirt/images/web01.qcow2");
        assert_eq!(
            (disks[0].capacity, disks[0].allocation),
            (10 << 30, 1 << 30)
        );
        assert!(!disks[0].shared);
        let nics = details.interfaces.expect("interfaces");
        assert_eq!(nics[0].kind, "network");
        assert_eq!(nics[0].mac, "52:54:00:12:34:56");
    }

    #[test]
    fn a_detail_of_the_wrong_type_is_refused_by_name() {
        let mut entries = base();
        entries.push(("tpm", Value::from("yes")));
        let err = VmDetails::from_dict(&dict(entries)).expect_err("tpm is a b");
        assert!(err.to_string().contains("tpm"), "{err}");

        let mut entries = base();
        entries.push((
            "interface-details",
            list(vec![vec![("type", Value::from("network"))]]),
        ));
        let err = VmDetails::from_dict(&dict(entries)).expect_err("mac is missing");
        assert!(
            err.to_string().contains("interface-details.source"),
            "{err}"
        );
    }
}
