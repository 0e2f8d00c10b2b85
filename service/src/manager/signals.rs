//! The Manager's signals: `VmCloned` after each clone, `VmStateChanged` for
//! libvirt's lifecycle events.

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use tokio::sync::mpsc::UnboundedReceiver;
use zbus::object_server::SignalEmitter;
use zbus::Connection;

use super::{blocking, Manager, OBJECT_PATH};
use crate::clone::CloneOutcome;
use crate::events::LifecycleEvent;
use crate::host::Host;

/// Emits `VmCloned` for a finished clone.
pub async fn announce_clone(conn: &Connection, outcome: &CloneOutcome) {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let emitted = match SignalEmitter::new(conn, OBJECT_PATH) {
        Ok(emitter) => {
            Manager::vm_cloned(
                &emitter,
                &outcome.source_uuid,
                &outcome.uuid,
                &outcome.name,
                now,
            )
            .await
        }
        Err(e) => Err(e),
    };
    if let Err(e) = emitted {
        tracing::warn!("emitting VmCloned: {e}");
    }
}

/// Turns libvirt lifecycle events into `VmStateChanged` signals, for the
/// service's life.
pub async fn announce_state_changes(
    conn: Connection,
    host: Arc<Host>,
    mut events: UnboundedReceiver<LifecycleEvent>,
) {
    let Ok(emitter) = SignalEmitter::new(&conn, OBJECT_PATH) else {
        return;
    };
    while let Some(event) = events.recv().await {
        let state = match event.undefined {
            true => "undefined",
            false => {
                let host = host.clone();
                let uuid = event.uuid.clone();
                blocking(move || host.state(&host.lookup(&uuid)?))
                    .await
                    .unwrap_or("undefined")
            }
        };
        if let Err(e) = Manager::vm_state_changed(&emitter, &event.uuid, state).await {
            tracing::warn!("emitting VmStateChanged: {e}");
        }
    }
}
