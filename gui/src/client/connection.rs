//! The bus connection of one client: made on first use, made again after it
//! broke, and subscribed to the service's signals before anything else uses it.

use std::sync::{Arc, Mutex as SyncMutex};

use tokio::sync::Mutex;
use tokio::task::AbortHandle;
use zbus::Connection;

use super::error::ClientError;
use super::signals::{self, ServiceEvent};
use super::vm_info::VmInfo;
use vmclone_bus::ManagerProxy;

/// Shared by a client's calls, which run as tasks on the runtime.
pub(super) struct Bus {
    /// A bus address; `None` is the system bus (`DBUS_SYSTEM_BUS_ADDRESS` is honoured).
    address: Option<String>,
    /// The connection in use; the signal task forgets it when it ends.
    connection: Arc<Mutex<Option<Connection>>>,
    events: async_channel::Sender<ServiceEvent>,
    /// The task forwarding the signals of `connection`; it goes with the client.
    signal_task: SyncMutex<Option<AbortHandle>>,
}

impl Bus {
    pub fn new(address: Option<String>, events: async_channel::Sender<ServiceEvent>) -> Bus {
        Bus {
            address,
            connection: Arc::default(),
            events,
            signal_task: SyncMutex::default(),
        }
    }

    async fn connection(&self) -> Result<Connection, ClientError> {
        let mut slot = self.connection.lock().await;
        if let Some(conn) = slot.as_ref() {
            return Ok(conn.clone());
        }
        let conn = match &self.address {
            Some(address) => {
                zbus::connection::Builder::address(address.as_str())?
                    .build()
                    .await
            }
            None => Connection::system().await,
        }
        .map_err(|e| ClientError::Unreachable(e.to_string()))?;
        // Subscribe before anyone uses the connection, so no change slips through.
        let subscriptions = signals::Subscriptions::new(&conn).await?;
        let task = tokio::spawn(signals::forward(
            subscriptions,
            self.events.clone(),
            self.connection.clone(),
        ));
        // A task from before ended with its connection: that is why there is none.
        *self.signal_task.lock().expect("never poisoned") = Some(task.abort_handle());
        *slot = Some(conn.clone());
        Ok(conn)
    }

    pub async fn manager(&self) -> Result<ManagerProxy<'static>, ClientError> {
        let conn = self.connection().await?;
        Ok(ManagerProxy::builder(&conn)
            .cache_properties(zbus::proxy::CacheProperties::No)
            .build()
            .await?)
    }

    pub async fn list_vms(&self) -> Result<Vec<VmInfo>, ClientError> {
        let dicts = self.manager().await?.list_vms().await?;
        dicts.iter().map(VmInfo::from_dict).collect()
    }
}

impl Drop for Bus {
    fn drop(&mut self) {
        // The signal task holds nothing of the client: without this it would
        // run on, and keep its connection open, until the bus went away.
        if let Some(task) = self.signal_task.get_mut().ok().and_then(Option::take) {
            task.abort();
        }
    }
}
