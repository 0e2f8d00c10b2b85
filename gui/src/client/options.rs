//! What a clone changes from its source: the `a{sv}` options of `StartClone`
//! and `CloneVms` that the app offers.

use std::collections::HashMap;

use zbus::zvariant::Value;

/// Storage for a new clone.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Storage {
    /// Its own copy of every writable disk (the service's default).
    #[default]
    Copy,
    /// A qcow2 overlay per disk on the template's images.
    Linked,
}

/// The options of one clone request; `None` keeps the source's value.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CloneOptions {
    pub storage: Storage,
    pub vcpus: Option<u32>,
    pub memory_mib: Option<u64>,
    /// One of the folders `PlanClone` lists in `destinations`; `None` lets
    /// the service put the files beside the source's.
    pub target_dir: Option<String>,
    /// Copy a running or paused source as it is now (`live`).
    pub live: bool,
    /// A new machine ID, SSH host keys and host name (`guest-identity=reset`).
    pub reset_identity: bool,
}

impl CloneOptions {
    /// As the service reads them; only what differs from the defaults, so a
    /// plain clone sends an empty dictionary.
    pub(super) fn to_dict(&self) -> HashMap<&'static str, Value<'static>> {
        let mut dict = HashMap::new();
        if self.storage == Storage::Linked {
            dict.insert("storage", Value::from("linked"));
        }
        if let Some(vcpus) = self.vcpus {
            dict.insert("vcpus", Value::U32(vcpus));
        }
        if let Some(mib) = self.memory_mib {
            dict.insert("memory-mib", Value::U64(mib));
        }
        if let Some(dir) = &self.target_dir {
            dict.insert("target-dir", Value::from(dir.clone()));
        }
        if self.live {
            dict.insert("live", Value::Bool(true));
        }
        if self.reset_identity {
            dict.insert("guest-identity", Value::from("reset"));
        }
        dict
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_carry_only_what_changes_with_the_contract_types() {
        assert!(CloneOptions::default().to_dict().is_empty());
        let dict = CloneOptions {
            storage: Storage::Linked,
            vcpus: Some(4),
            memory_mib: Some(4096),
            target_dir: Some("/srv/vms".into()),
            live: true,
            reset_identity: true,
        }
        .to_dict();
        assert_eq!(dict.len(), 6);
        assert_eq!(dict["storage"], Value::from("linked"));
        assert_eq!(dict["vcpus"], Value::U32(4), "vcpus is a u");
        assert_eq!(dict["memory-mib"], Value::U64(4096), "memory-mib is a t");
        assert_eq!(dict["target-dir"], Value::from("/srv/vms"));
        assert_eq!(dict["live"], Value::Bool(true), "live is a b");
        assert_eq!(dict["guest-identity"], Value::from("reset"));
    }
}
