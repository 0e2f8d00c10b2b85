//! vmclone-service: clones libvirt VMs over D-Bus (shut off, or live).
//!
//! The library holds the clone engine and the D-Bus objects; the binary in
//! `main.rs` wires them to a bus and a libvirt connection.

pub mod auth;
pub mod backup;
pub mod clone;
pub mod domain_xml;
pub mod error;
pub mod events;
pub mod failpoint;
pub mod guest;
pub mod host;
pub mod ids;
pub mod job;
pub mod journal;
pub mod manager;
pub mod naming;
pub mod options;
pub mod pool_xml;
pub mod storage;
pub mod template;
