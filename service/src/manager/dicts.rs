//! The `a{sv}` dictionaries the Manager returns, built from what the engine
//! and the libvirt layer report.

use std::collections::HashMap;

use zbus::zvariant::{OwnedValue, Value};

use crate::host::VmSummary;

pub type Dict = HashMap<String, OwnedValue>;

/// A dictionary of plain values (no file descriptors).
pub fn dict<'a>(entries: impl IntoIterator<Item = (&'a str, Value<'a>)>) -> Dict {
    entries
        .into_iter()
        .map(|(k, v)| {
            (
                k.to_string(),
                OwnedValue::try_from(v).expect("plain values have no fds"),
            )
        })
        .collect()
}

/// One VM as `ListVms` and `GetVm` report it.
pub fn vm(vm: &VmSummary) -> Dict {
    dict([
        ("id", vm.id.as_str().into()),
        ("name", vm.name.as_str().into()),
        ("state", vm.state.into()),
        ("vcpus", vm.vcpus.into()),
        ("memory-mib", vm.memory_mib.into()),
        ("disks", vm.disks.into()),
        ("interfaces", vm.interfaces.into()),
        ("is-template", vm.is_template.into()),
    ])
}
