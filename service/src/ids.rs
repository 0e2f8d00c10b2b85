//! Identities of VMs: UUIDs and MAC addresses, parsed into the one form
//! libvirt reports, and generated fresh.

use std::collections::HashSet;

use rand::Rng;

/// Why a text is not a MAC address a network card can have.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum MacError {
    #[error("not a MAC address (expected six hex pairs like 52:54:00:12:34:56)")]
    Malformed,
    #[error("a multicast address; a network card needs a unicast one (even first byte)")]
    Multicast,
}

/// The UUID in canonical 8-4-4-4-12 lower-case form (as libvirt reports it
/// and names the swtpm folder), or None.
pub fn normalize_uuid(s: &str) -> Option<String> {
    let groups: Vec<&str> = s.split('-').collect();
    let lens = [8, 4, 4, 4, 12];
    (groups.len() == 5
        && groups
            .iter()
            .zip(lens)
            .all(|(g, n)| g.len() == n && g.chars().all(|c| c.is_ascii_hexdigit())))
    .then(|| s.to_ascii_lowercase())
}

/// A random version-4 UUID, lower case, for which `taken` is false.
pub fn new_uuid(taken: impl Fn(&str) -> bool) -> String {
    let mut rng = rand::rng();
    loop {
        let mut b: [u8; 16] = rng.random();
        b[6] = (b[6] & 0x0f) | 0x40;
        b[8] = (b[8] & 0x3f) | 0x80;
        let mut uuid = String::with_capacity(36);
        for (i, byte) in b.iter().enumerate() {
            if matches!(i, 4 | 6 | 8 | 10) {
                uuid.push('-');
            }
            uuid.push_str(&format!("{byte:02x}"));
        }
        if !taken(&uuid) {
            return uuid;
        }
    }
}

/// Lower-case `xx:xx:xx:xx:xx:xx` with a unicast first octet.
pub fn normalize_mac(mac: &str) -> Result<String, MacError> {
    let bytes: Vec<Option<u8>> = mac
        .split(':')
        .map(|p| {
            (p.len() == 2)
                .then(|| u8::from_str_radix(p, 16).ok())
                .flatten()
        })
        .collect();
    match bytes.as_slice() {
        [Some(first), rest @ ..] if rest.len() == 5 && rest.iter().all(Option::is_some) => {
            if first & 1 == 1 {
                return Err(MacError::Multicast);
            }
            Ok(mac.to_ascii_lowercase())
        }
        _ => Err(MacError::Malformed),
    }
}

/// `count` distinct random MACs in QEMU's `52:54:00` range, none of them in `in_use`.
pub fn new_macs(count: usize, in_use: &HashSet<String>) -> Vec<String> {
    let mut rng = rand::rng();
    let mut out: Vec<String> = Vec::with_capacity(count);
    while out.len() < count {
        let [a, b, c]: [u8; 3] = rng.random();
        let mac = format!("52:54:00:{a:02x}:{b:02x}:{c:02x}");
        if !in_use.contains(&mac) && !out.contains(&mac) {
            out.push(mac);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uuids_are_version_4_lower_case_and_avoid_taken_ones() {
        let first = new_uuid(|_| false);
        assert_eq!(first.len(), 36);
        assert_eq!(normalize_uuid(&first).as_deref(), Some(first.as_str()));
        assert_eq!(&first[14..15], "4");
        assert!(matches!(&first[19..20], "8" | "9" | "a" | "b"));
        let other = new_uuid(|u| u == first);
        assert_ne!(other, first);
    }

    #[test]
    fn uuids_are_normalised_to_lower_case_and_checked() {
        assert_eq!(
            normalize_uuid("12345678-12F4-1234-1234-123456789AFA").as_deref(),
            Some("12345678-12f4-1234-1234-123456789afa")
        );
        for bad in [
            "",
            "not-a-uuid",
            "12345678123412341234123456789abc",
            "1234567-1234-1234-1234-123456789abcd",
        ] {
            assert_eq!(normalize_uuid(bad), None, "{bad}");
        }
    }

    #[test]
    fn macs_are_normalised_and_multicast_is_refused() {
        assert_eq!(
            normalize_mac("52:54:00:AA:bb:01"),
            Ok("52:54:00:aa:bb:01".into())
        );
        assert_eq!(normalize_mac("01:00:5e:00:00:01"), Err(MacError::Multicast));
        for bad in [
            "52:54:00:00:01",
            "52:54:00:00:01:0g",
            "525400000001",
            "52-54-00-00-00-01",
        ] {
            assert_eq!(normalize_mac(bad), Err(MacError::Malformed), "{bad}");
        }
    }

    #[test]
    fn macs_are_distinct_unused_and_in_qemu_range() {
        let in_use: HashSet<String> = (0..=255u32)
            .flat_map(|b| (0..=255u32).map(move |c| format!("52:54:00:00:{b:02x}:{c:02x}")))
            .collect();
        let macs = new_macs(64, &in_use);
        assert_eq!(macs.len(), 64);
        let distinct: HashSet<&String> = macs.iter().collect();
        assert_eq!(distinct.len(), 64);
        for m in &macs {
            assert!(m.starts_with("52:54:00:"), "{m}");
            assert!(!in_use.contains(m));
        }
    }
}
