//! `monitor`: the service's signals, one line each, until Ctrl-C.

use std::collections::HashMap;

use futures_lite::StreamExt;
use gettextrs::gettext;
use serde_json::json;
use zbus::Connection;

use crate::bus::{self, text, BUS_NAME};
use crate::error::CliError;
use crate::follow::Interrupts;
use crate::vms::state_text;
use crate::Output;

pub async fn run(conn: &Connection, out: &Output, as_json: bool) -> Result<(), CliError> {
    let mut interrupts = Interrupts::catch()?;
    let manager = bus::manager(conn).await?;
    let mut cloned = manager.receive_vm_cloned().await?;
    let mut states = manager.receive_vm_state_changed().await?;
    let dbus = zbus::fdo::DBusProxy::new(conn).await?;
    let mut owner = dbus
        .receive_name_owner_changed_with_args(&[(0, BUS_NAME)])
        .await?;
    // State changes carry only the UUID: names come from this list and from
    // VmCloned, so even an undefined VM is printed by name.
    let mut names: HashMap<String, String> = manager
        .list_vms()
        .await?
        .iter()
        .map(|vm| (text(vm, "id"), text(vm, "name")))
        .collect();
    out.note(&gettext("Watching the vmclone service; Ctrl-C stops."));
    loop {
        tokio::select! {
            _ = interrupts.next() => return Ok(()),
            Some(signal) = cloned.next() => {
                let Ok(a) = signal.args() else { continue };
                names.insert(a.cloned_vm_id().to_string(), a.new_name().to_string());
                let source = names.get(*a.source_vm_id()).cloned().unwrap_or_else(|| a.source_vm_id().to_string());
                out.line(&if as_json {
                    json!({"event": "vm-cloned", "source-id": a.source_vm_id(), "source": source,
                           "id": a.cloned_vm_id(), "name": a.new_name(), "timestamp": a.timestamp}).to_string()
                } else {
                    gettext("{name}: cloned from {source} ({id})")
                        .replace("{name}", a.new_name())
                        .replace("{source}", &source)
                        .replace("{id}", a.cloned_vm_id())
                });
            }
            Some(signal) = states.next() => {
                let Ok(a) = signal.args() else { continue };
                let id = a.vm_id().to_string();
                let name = match names.get(&id) {
                    Some(n) => n.clone(),
                    None => {
                        // Defined since we started: ask for its name.
                        let n = manager.get_vm(&id).await.map(|vm| text(&vm, "name")).unwrap_or_else(|_| id.clone());
                        names.insert(id.clone(), n.clone());
                        n
                    }
                };
                out.line(&if as_json {
                    json!({"event": "vm-state-changed", "id": id, "name": name, "state": a.state()}).to_string()
                } else {
                    format!("{name}: {}", state_text(a.state()))
                });
            }
            Some(signal) = owner.next() => {
                let Ok(a) = signal.args() else { continue };
                let running = a.new_owner().is_some();
                out.line(&if as_json {
                    json!({"event": "service", "running": running}).to_string()
                } else if running {
                    gettext("The vmclone service started.")
                } else {
                    gettext("The vmclone service stopped.")
                });
            }
        }
    }
}
