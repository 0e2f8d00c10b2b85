//! New identities for a clone: UUIDs and MAC addresses that clash with nothing.

use std::collections::HashSet;

use rand::Rng;

/// A random version-4 UUID for which `taken` is false.
pub fn new_uuid(taken: impl Fn(&str) -> bool) -> String {
    let mut rng = rand::rng();
    loop {
        let mut b: [u8; 16] = rng.random();
        b[6] = (b[6] & 0x0f) | 0x40;
        b[8] = (b[8] & 0x3f) | 0x80;
        let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
        let uuid = format!(
            "{}-{}-{}-{}-{}",
            &hex[0..8],
            &hex[8..12],
            &hex[12..16],
            &hex[16..20],
            &hex[20..32]
        );
        if !taken(&uuid) {
            return uuid;
        }
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
    fn uuids_are_version_4_and_avoid_taken_ones() {
        let first = new_uuid(|_| false);
        assert_eq!(first.len(), 36);
        assert_eq!(&first[14..15], "4");
        assert!(matches!(&first[19..20], "8" | "9" | "a" | "b"));
        let other = new_uuid(|u| u == first);
        assert_ne!(other, first);
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
