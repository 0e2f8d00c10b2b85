//! In-process reservations, so that concurrent clones never pick the same
//! name, path or volume: the second one sees it as taken.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};

type Keys = Arc<Mutex<HashSet<String>>>;

#[derive(Default, Clone)]
pub struct Reservations {
    held: Keys,
    /// A dry run's: the keys of real clones, seen but never taken.
    real: Option<Keys>,
}

/// Releases its keys when dropped.
pub struct Reservation {
    held: Keys,
    real: Option<Keys>,
    keys: Vec<String>,
}

fn holds(keys: &Keys, key: &str) -> bool {
    keys.lock().expect("reservations lock").contains(key)
}

impl Reservations {
    pub fn is_held(&self, key: &str) -> bool {
        holds(&self.held, key) || self.real.as_ref().is_some_and(|r| holds(r, key))
    }

    /// An empty reservation to add keys to.
    pub fn start(&self) -> Reservation {
        Reservation {
            held: self.held.clone(),
            real: self.real.clone(),
            keys: Vec::new(),
        }
    }

    /// Throwaway reservations for a dry run (`PlanClone`, which any reader
    /// may call): it sees what real clones hold, as they would, but what it
    /// takes blocks no real clone.
    pub fn dry_run(&self) -> Reservations {
        Reservations {
            held: Keys::default(),
            real: Some(self.held.clone()),
        }
    }
}

impl Reservation {
    /// Takes `key`; false when someone else holds it.
    pub fn take(&mut self, key: String) -> bool {
        if self.real.as_ref().is_some_and(|r| holds(r, &key)) {
            return false;
        }
        let fresh = self
            .held
            .lock()
            .expect("reservations lock")
            .insert(key.clone());
        if fresh {
            self.keys.push(key);
        }
        fresh
    }
}

impl Drop for Reservation {
    fn drop(&mut self) {
        let mut held = self.held.lock().expect("reservations lock");
        for k in &self.keys {
            held.remove(k);
        }
    }
}

pub fn name_key(name: &str) -> String {
    format!("name:{name}")
}

pub fn uuid_key(uuid: &str) -> String {
    format!("uuid:{}", uuid.to_ascii_lowercase())
}

pub fn mac_key(mac: &str) -> String {
    format!("mac:{mac}")
}

pub fn path_key(path: &std::path::Path) -> String {
    format!("path:{}", path.display())
}

/// A source copied live (libvirt runs one backup of a domain at a time).
pub fn live_key(uuid: &str) -> String {
    format!("live:{}", uuid.to_ascii_lowercase())
}

pub fn volume_key(pool: &str, volume: &str) -> String {
    format!("volume:{pool}/{volume}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_is_held_once_and_released_on_drop() {
        let r = Reservations::default();
        let mut a = r.start();
        assert!(a.take(name_key("web")));
        let mut b = r.start();
        assert!(!b.take(name_key("web")));
        assert!(r.is_held(&name_key("web")));
        drop(a);
        assert!(!r.is_held(&name_key("web")));
        assert!(b.take(name_key("web")));
    }

    #[test]
    fn a_dry_run_sees_real_clones_and_blocks_none() {
        let real = Reservations::default();
        let mut clone = real.start();
        assert!(clone.take(name_key("web")));
        let dry = real.dry_run();
        let mut plan = dry.start();
        assert!(dry.is_held(&name_key("web")));
        assert!(!plan.take(name_key("web")));
        assert!(plan.take(name_key("db")));
        assert!(!real.is_held(&name_key("db")));
        assert!(real.start().take(name_key("db")));
    }
}
