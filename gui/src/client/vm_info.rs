//! The VM dictionaries of `ListVms` and `GetVm`, read into [`VmInfo`].

use std::collections::HashMap;

use gettextrs::gettext;
use zbus::zvariant::OwnedValue;

use super::error::ClientError;

/// One VM as `ListVms`/`GetVm` describe it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct VmInfo {
    pub id: String,
    pub name: String,
    pub state: String,
    pub vcpus: u32,
    pub memory_mib: u64,
    pub disks: u32,
    pub interfaces: u32,
    pub is_template: bool,
}

impl VmInfo {
    pub(super) fn from_dict(dict: &HashMap<String, OwnedValue>) -> Result<VmInfo, ClientError> {
        fn get<T>(dict: &HashMap<String, OwnedValue>, key: &str) -> Result<T, ClientError>
        where
            T: TryFrom<OwnedValue>,
        {
            dict.get(key)
                .and_then(|v| v.try_clone().ok())
                .and_then(|v| T::try_from(v).ok())
                .ok_or_else(|| {
                    ClientError::BadReply(
                        gettext("The service sent a VM without a valid “{key}”.")
                            .replace("{key}", key),
                    )
                })
        }
        Ok(VmInfo {
            id: get(dict, "id")?,
            name: get(dict, "name")?,
            state: get(dict, "state")?,
            vcpus: get(dict, "vcpus")?,
            memory_mib: get(dict, "memory-mib")?,
            disks: get(dict, "disks")?,
            interfaces: get(dict, "interfaces")?,
            // Older services do not know templates.
            is_template: get(dict, "is-template").unwrap_or(false),
        })
    }
}

#[cfg(test)]
mod tests {
    use zbus::zvariant::Value;

    use super::*;

    fn dict(entries: &[(&str, Value<'_>)]) -> HashMap<String, OwnedValue> {
        entries
            .iter()
            .map(|(k, v)| (k.to_string(), v.try_to_owned().expect("owned value")))
            .collect()
    }

    #[test]
    fn vm_dictionaries_become_vm_info() {
        let vm = dict(&[
            ("id", Value::from("6f0e2d1c-5b4a-4c3d-9e8f-7a6b5c4d3e21")),
            ("name", Value::from("web01")),
            ("state", Value::from("shutoff")),
            ("vcpus", Value::U32(2)),
            ("memory-mib", Value::U64(2048)),
            ("disks", Value::U32(1)),
            ("interfaces", Value::U32(1)),
            ("is-template", Value::Bool(true)),
        ]);
        let info = VmInfo::from_dict(&vm).expect("a valid VM");
        assert_eq!(info.name, "web01");
        assert_eq!((info.vcpus, info.memory_mib, info.disks), (2, 2048, 1));
        assert!(info.is_template);
    }

    #[test]
    fn a_vm_with_a_wrong_type_is_refused_by_name() {
        let vm = dict(&[
            ("id", Value::from("x")),
            ("name", Value::from("web01")),
            ("state", Value::from("shutoff")),
            ("vcpus", Value::from("two")),
            ("memory-mib", Value::U64(2048)),
            ("disks", Value::U32(1)),
            ("interfaces", Value::U32(1)),
        ]);
        let err = VmInfo::from_dict(&vm).expect_err("vcpus is not a u32");
        assert!(matches!(err, ClientError::BadReply(_)));
        assert!(err.to_string().contains("vcpus"), "{err}");
    }
}
