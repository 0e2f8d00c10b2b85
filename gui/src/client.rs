//! The D-Bus client of the vmclone service.
//!
//! zbus runs on one tokio runtime ([`runtime`]) in its own thread. Each call
//! is a task there that the GTK side awaits, so no D-Bus call ever runs on
//! the GTK main loop; only the service's signals and each job's progress have
//! a task that runs on by itself.

mod connection;
mod error;
mod job;
mod proxy;
mod runtime;
mod signals;
mod vm_info;

use std::cell::Cell;
use std::collections::HashMap;
use std::rc::Rc;
use std::sync::Arc;

use tokio::task::JoinHandle;
use zbus::zvariant::Value;

use connection::Bus;
pub use error::ClientError;
pub use job::{JobEvent, JobHandle, JobOutcome};
pub use proxy::{JobProxy, ManagerProxy, BUS_NAME};
use runtime::runtime;
pub use signals::ServiceEvent;
pub use vm_info::VmInfo;

/// Storage for a new clone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Storage {
    Copy,
    Linked,
}

impl Storage {
    /// As `StartClone` options; a full copy is the service's default.
    fn options(self) -> HashMap<&'static str, Value<'static>> {
        match self {
            Storage::Copy => HashMap::new(),
            Storage::Linked => HashMap::from([("storage", Value::from("linked"))]),
        }
    }
}

type ListTask = JoinHandle<Result<Vec<VmInfo>, ClientError>>;

/// Handle used by the GTK side. Cheap to clone.
#[derive(Clone)]
pub struct Client {
    bus: Arc<Bus>,
    /// The first list, asked for as soon as the client starts so the bus
    /// round trip overlaps GTK's start-up; the first `list_vms` takes it.
    first_list: Rc<Cell<Option<ListTask>>>,
}

impl Client {
    /// A client of the service on the bus at `address`; `None` is the system
    /// bus (`DBUS_SYSTEM_BUS_ADDRESS` is honoured). The receiver hears the
    /// service's changes from the first call on.
    pub fn start(address: Option<String>) -> (Client, async_channel::Receiver<ServiceEvent>) {
        let (events_tx, events) = async_channel::unbounded();
        let bus = Arc::new(Bus::new(address, events_tx));
        let first = {
            let bus = bus.clone();
            runtime().spawn(async move { bus.list_vms().await })
        };
        let client = Client {
            bus,
            first_list: Rc::new(Cell::new(Some(first))),
        };
        (client, events)
    }

    pub async fn list_vms(&self) -> Result<Vec<VmInfo>, ClientError> {
        let task = self.first_list.take().unwrap_or_else(|| {
            let bus = self.bus.clone();
            runtime().spawn(async move { bus.list_vms().await })
        });
        runtime::join(task).await
    }

    /// Ok when `name` is a valid, free name for a clone.
    pub async fn check_name(&self, name: &str) -> Result<(), ClientError> {
        let (bus, name) = (self.bus.clone(), name.to_owned());
        runtime::run(async move { Ok(bus.manager().await?.check_name(&name).await?) }).await
    }

    /// Starts cloning `source` (a UUID or name) as `name` and follows the job.
    pub async fn start_clone(
        &self,
        source: &str,
        name: &str,
        storage: Storage,
    ) -> Result<JobHandle, ClientError> {
        let bus = self.bus.clone();
        let (source, name) = (source.to_owned(), name.to_owned());
        runtime::run(async move {
            let manager = bus.manager().await?;
            let path = manager
                .start_clone(&source, &name, storage.options())
                .await?;
            JobHandle::follow(manager.inner().connection(), path).await
        })
        .await
    }
}
