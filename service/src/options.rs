//! Parsing of the `a{sv}` clone options. Unknown keys and wrong types are
//! errors naming the key: options are never silently ignored.

use std::collections::HashMap;
use std::path::PathBuf;

use zbus::zvariant::{OwnedValue, Value};

use crate::error::{Error, Result};
use crate::ids;

/// How the clone gets its writable disks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum StorageMode {
    /// Its own full copies (the default).
    #[default]
    Copy,
    /// A qcow2 overlay per disk, backed by a template's image.
    Linked,
}

/// What happens to the identity inside the guest (its disks' contents).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum GuestIdentity {
    /// The disks stay exact copies (the default).
    #[default]
    Keep,
    /// New machine ID, SSH host keys and host name; old leases and MAC
    /// bindings gone (see `guest::reset`).
    Reset,
}

#[derive(Debug, Clone, Default)]
pub struct CloneOptions {
    pub mac_addresses: Option<Vec<String>>,
    pub uuid: Option<String>,
    pub vcpus: Option<u32>,
    pub memory_mib: Option<u64>,
    pub target_dir: Option<PathBuf>,
    pub storage: StorageMode,
    /// Copy a running or paused source as it is at one moment.
    pub live: bool,
    /// What happens to the identity inside the guest.
    pub guest_identity: GuestIdentity,
}

const KEYS: &str = "mac-addresses (as), uuid (s), vcpus (u), memory-mib (t), target-dir (s), storage (s), live (b), guest-identity (s)";

impl CloneOptions {
    pub fn parse(options: &HashMap<String, OwnedValue>) -> Result<CloneOptions> {
        let mut parsed = CloneOptions::default();
        for (key, value) in options {
            let value: &Value<'_> = value;
            match key.as_str() {
                "mac-addresses" => {
                    let list = match value {
                        Value::Array(a) => a
                            .iter()
                            .map(|v| match v {
                                Value::Str(s) => Ok(normalize_mac(key, s)?),
                                _ => Err(wrong_type(key, "as")),
                            })
                            .collect::<Result<Vec<_>>>()?,
                        _ => return Err(wrong_type(key, "as")),
                    };
                    parsed.mac_addresses = Some(list);
                }
                "uuid" => {
                    let Value::Str(s) = value else {
                        return Err(wrong_type(key, "s"));
                    };
                    parsed.uuid = Some(ids::normalize_uuid(s).ok_or_else(|| {
                        Error::InvalidOption(format!(
                            "Option “uuid”: “{s}” is not a UUID (expected 8-4-4-4-12 hexadecimal digits)."
                        ))
                    })?);
                }
                "vcpus" => {
                    let Value::U32(n) = value else {
                        return Err(wrong_type(key, "u"));
                    };
                    if *n == 0 {
                        return Err(Error::InvalidOption(
                            "Option “vcpus” must be at least 1.".into(),
                        ));
                    }
                    parsed.vcpus = Some(*n);
                }
                "memory-mib" => {
                    let Value::U64(n) = value else {
                        return Err(wrong_type(key, "t"));
                    };
                    if *n == 0 || *n > u64::MAX / 1024 {
                        return Err(Error::InvalidOption(format!(
                            "Option “memory-mib” must be a positive number of MiB, not {n}."
                        )));
                    }
                    parsed.memory_mib = Some(*n);
                }
                "target-dir" => {
                    let Value::Str(s) = value else {
                        return Err(wrong_type(key, "s"));
                    };
                    // Only the form: whether it exists is the planner's
                    // question (off the executor, in words that do not tell a
                    // caller whether a folder it cannot read exists).
                    let dir = PathBuf::from(s.as_str());
                    if !dir.is_absolute() {
                        return Err(Error::InvalidOption(format!(
                            "Option “target-dir”: “{s}” is not an absolute path."
                        )));
                    }
                    parsed.target_dir = Some(dir);
                }
                "storage" => {
                    let Value::Str(s) = value else {
                        return Err(wrong_type(key, "s"));
                    };
                    parsed.storage = match s.as_str() {
                        "copy" => StorageMode::Copy,
                        "linked" => StorageMode::Linked,
                        other => {
                            return Err(Error::InvalidOption(format!(
                                "Option “storage” must be “copy” or “linked”, not “{other}”."
                            )))
                        }
                    };
                }
                "live" => {
                    let Value::Bool(b) = value else {
                        return Err(wrong_type(key, "b"));
                    };
                    parsed.live = *b;
                }
                "guest-identity" => {
                    let Value::Str(s) = value else {
                        return Err(wrong_type(key, "s"));
                    };
                    parsed.guest_identity = match s.as_str() {
                        "keep" => GuestIdentity::Keep,
                        "reset" => GuestIdentity::Reset,
                        other => {
                            return Err(Error::InvalidOption(format!(
                                "Option “guest-identity” must be “keep” or “reset”, not “{other}”."
                            )))
                        }
                    };
                }
                other => {
                    return Err(Error::InvalidOption(format!(
                        "Unknown option “{other}”. Known options: {KEYS}."
                    )))
                }
            }
        }
        if parsed.live && parsed.storage == StorageMode::Linked {
            return Err(Error::InvalidOption(
                "Options “live” and “storage” “linked” do not go together: linked clones are made of templates, and a template never runs. Make a full live copy, or a linked clone of the shut-off template.".into(),
            ));
        }
        Ok(parsed)
    }
}

fn wrong_type(key: &str, signature: &str) -> Error {
    Error::InvalidOption(format!(
        "Option “{key}” has the wrong type; it takes a value of D-Bus type “{signature}”."
    ))
}

/// A MAC address of option `key`, lower case, or an error naming the key.
fn normalize_mac(key: &str, mac: &str) -> Result<String> {
    ids::normalize_mac(mac)
        .map_err(|e| Error::InvalidOption(format!("Option “{key}”: “{mac}” is {e}.")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts(pairs: Vec<(&str, Value<'static>)>) -> HashMap<String, OwnedValue> {
        pairs
            .into_iter()
            .map(|(k, v)| (k.to_string(), OwnedValue::try_from(v).unwrap()))
            .collect()
    }

    #[test]
    fn parses_every_known_option() {
        let o = CloneOptions::parse(&opts(vec![
            ("mac-addresses", Value::from(vec!["52:54:00:AA:bb:01"])),
            ("uuid", Value::from("12345678-12F4-1234-1234-123456789AFA")),
            ("vcpus", Value::from(4u32)),
            ("memory-mib", Value::from(2048u64)),
            ("target-dir", Value::from("/tmp")),
            ("storage", Value::from("linked")),
            ("guest-identity", Value::from("reset")),
        ]))
        .unwrap();
        assert!(!o.live);
        assert_eq!(o.mac_addresses.unwrap(), vec!["52:54:00:aa:bb:01"]);
        assert_eq!(o.uuid.unwrap(), "12345678-12f4-1234-1234-123456789afa");
        assert_eq!(o.vcpus, Some(4));
        assert_eq!(o.memory_mib, Some(2048));
        assert_eq!(o.target_dir.unwrap(), PathBuf::from("/tmp"));
        assert_eq!(o.storage, StorageMode::Linked);
        assert_eq!(o.guest_identity, GuestIdentity::Reset);
        let default = CloneOptions::parse(&HashMap::new()).unwrap();
        assert_eq!(default.guest_identity, GuestIdentity::Keep);
        let live = CloneOptions::parse(&opts(vec![("live", Value::from(true))])).unwrap();
        assert!(live.live);
    }

    #[test]
    fn a_live_linked_clone_is_refused() {
        let m = err_of(vec![
            ("live", Value::from(true)),
            ("storage", Value::from("linked")),
        ]);
        assert!(m.contains("“live”") && m.contains("template"), "{m}");
        assert!(err_of(vec![("live", Value::from("yes"))]).contains("“b”"));
    }

    fn err_of(pairs: Vec<(&str, Value<'static>)>) -> String {
        match CloneOptions::parse(&opts(pairs)) {
            Err(Error::InvalidOption(m)) => m,
            other => panic!("expected InvalidOption, got {other:?}"),
        }
    }

    #[test]
    fn unknown_key_and_wrong_types_name_the_key() {
        assert!(err_of(vec![("colour", Value::from("red"))]).contains("“colour”"));
        assert!(err_of(vec![("vcpus", Value::from(4u64))]).contains("“vcpus”"));
        assert!(err_of(vec![("memory-mib", Value::from(4u32))]).contains("“memory-mib”"));
        assert!(
            err_of(vec![("mac-addresses", Value::from("52:54:00:00:00:01"))])
                .contains("“mac-addresses”")
        );
        assert!(err_of(vec![("storage", Value::from("thin"))]).contains("“storage”"));
        assert!(
            err_of(vec![("guest-identity", Value::from("sysprep"))]).contains("“guest-identity”")
        );
        assert!(err_of(vec![("guest-identity", Value::from(true))]).contains("“guest-identity”"));
    }

    #[test]
    fn rejects_bad_values() {
        assert!(err_of(vec![(
            "mac-addresses",
            Value::from(vec!["01:00:5e:00:00:01"])
        )])
        .contains("multicast"));
        assert!(
            err_of(vec![("mac-addresses", Value::from(vec!["52:54:00:00:01"]))])
                .contains("not a MAC")
        );
        assert!(err_of(vec![("uuid", Value::from("not-a-uuid"))]).contains("not a UUID"));
        assert!(err_of(vec![("vcpus", Value::from(0u32))]).contains("at least 1"));
        assert!(err_of(vec![("target-dir", Value::from("relative/dir"))]).contains("absolute"));
    }
}
