//! The service's signals (`VmCloned`, `VmStateChanged`) and its comings and
//! goings on the bus, turned into [`ServiceEvent`]s by one task per connection.

use std::sync::Arc;

use futures_lite::StreamExt;
use tokio::sync::Mutex;
use zbus::Connection;

use super::error::ClientError;
use super::vm_info::VmInfo;
use vmclone_bus::{ManagerProxy, VmClonedStream, VmStateChangedStream, BUS_NAME};

/// Changes pushed by the service, without being asked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ServiceEvent {
    VmChanged(VmInfo),
    VmRemoved(String),
    /// The service left the bus (stopped or crashed).
    ServiceLost,
    /// The service (re)appeared on the bus.
    ServiceAppeared,
}

pub(super) struct Subscriptions {
    manager: ManagerProxy<'static>,
    cloned: VmClonedStream,
    state: VmStateChangedStream,
    owner: zbus::fdo::NameOwnerChangedStream,
}

impl Subscriptions {
    pub async fn new(conn: &Connection) -> Result<Subscriptions, ClientError> {
        let manager = ManagerProxy::builder(conn)
            .cache_properties(zbus::proxy::CacheProperties::No)
            .build()
            .await?;
        let bus = zbus::fdo::DBusProxy::new(conn).await?;
        Ok(Subscriptions {
            cloned: manager.receive_vm_cloned().await?,
            state: manager.receive_vm_state_changed().await?,
            owner: bus
                .receive_name_owner_changed_with_args(&[(0, BUS_NAME)])
                .await?,
            manager,
        })
    }
}

/// Sends the service's changes to `events` until the bus connection ends,
/// then forgets it (`slot`) so that the next call reconnects.
pub(super) async fn forward(
    mut subs: Subscriptions,
    events: async_channel::Sender<ServiceEvent>,
    slot: Arc<Mutex<Option<Connection>>>,
) {
    loop {
        let event = tokio::select! {
            Some(signal) = subs.cloned.next() => match signal.args() {
                Ok(args) => describe(&subs.manager, args.cloned_vm_id()).await,
                Err(_) => None,
            },
            Some(signal) = subs.state.next() => match signal.args() {
                Ok(args) if *args.state() == "undefined" => {
                    Some(ServiceEvent::VmRemoved(args.vm_id().to_string()))
                }
                Ok(args) => describe(&subs.manager, args.vm_id()).await,
                Err(_) => None,
            },
            Some(signal) = subs.owner.next() => match signal.args() {
                Ok(args) if args.new_owner().is_some() => Some(ServiceEvent::ServiceAppeared),
                Ok(_) => Some(ServiceEvent::ServiceLost),
                Err(_) => None,
            },
            else => break,
        };
        if let Some(event) = event {
            if events.send(event).await.is_err() {
                return;
            }
        }
    }
    slot.lock().await.take();
    let _ = events.send(ServiceEvent::ServiceLost).await;
}

/// The current description of `id`, or its removal when it is gone.
async fn describe(manager: &ManagerProxy<'_>, id: &str) -> Option<ServiceEvent> {
    match manager.get_vm(id).await.map_err(ClientError::from) {
        Ok(dict) => VmInfo::from_dict(&dict).ok().map(ServiceEvent::VmChanged),
        Err(ClientError::Service { name, .. }) if name == "org.vmclone.Error.NotFound" => {
            Some(ServiceEvent::VmRemoved(id.to_owned()))
        }
        Err(_) => None,
    }
}
