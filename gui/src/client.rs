//! The D-Bus client of the vmclone service.
//!
//! zbus runs on one tokio runtime ([`runtime`]) in its own thread. Each call
//! is a task there that the GTK side awaits, so no D-Bus call ever runs on
//! the GTK main loop; only the service's signals and each job's progress have
//! a task that runs on by itself.

mod batch;
mod connection;
mod error;
mod job;
mod options;
mod plan;
mod runtime;
mod signals;
mod vm_details;
mod vm_info;

use std::cell::Cell;
use std::future::Future;
use std::rc::Rc;
use std::sync::Arc;

use tokio::task::JoinHandle;

use connection::Bus;
pub use error::ClientError;
pub use job::{JobEvent, JobHandle, JobOutcome};
pub use options::{CloneOptions, Storage};
pub use plan::{ClonePlan, Destination, PlannedDisk, Space, StateCopy};
use runtime::runtime;
pub use signals::ServiceEvent;
pub use vm_details::{DiskDetails, InterfaceDetails, VmDetails};
pub use vm_info::VmInfo;
pub use vmclone_bus::{JobProxy, ManagerProxy, BUS_NAME};

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

    /// For each of `names`, Ok when it is a valid, free name for a clone;
    /// the checks run at the same time.
    pub async fn check_names(&self, names: &[String]) -> Vec<Result<(), ClientError>> {
        let (bus, names) = (self.bus.clone(), names.to_vec());
        runtime::run(async move {
            let manager = match bus.manager().await {
                Ok(manager) => manager,
                Err(err) => return names.iter().map(|_| Err(err.clone())).collect(),
            };
            let checks: Vec<_> = names
                .into_iter()
                .map(|name| {
                    let manager = manager.clone();
                    tokio::spawn(async move { Ok(manager.check_name(&name).await?) })
                })
                .collect();
            let mut results = Vec::with_capacity(checks.len());
            for check in checks {
                results.push(runtime::join(check).await);
            }
            results
        })
        .await
    }

    /// Everything `GetVm` says about the VM `id`. The call starts at once,
    /// not when the answer is first awaited: it runs while GTK draws the
    /// list's facts about the VM.
    pub fn get_vm(&self, id: &str) -> impl Future<Output = Result<VmDetails, ClientError>> {
        let (bus, id) = (self.bus.clone(), id.to_owned());
        let call = runtime().spawn(async move {
            let dict = bus.manager().await?.get_vm(&id).await?;
            VmDetails::from_dict(&dict)
        });
        runtime::join(call)
    }

    /// What cloning `source` as `name` with `options` would do (`PlanClone`):
    /// checked as the clone is, nothing made.
    pub async fn plan_clone(
        &self,
        source: &str,
        name: &str,
        options: &CloneOptions,
    ) -> Result<ClonePlan, ClientError> {
        let bus = self.bus.clone();
        let (source, name, options) = (source.to_owned(), name.to_owned(), options.to_dict());
        runtime::run(async move {
            let dict = bus
                .manager()
                .await?
                .plan_clone(&source, &name, &options)
                .await?;
            ClonePlan::from_dict(&dict)
        })
        .await
    }

    /// Makes the shut-off VM `id` a template (its disks become read-only).
    pub async fn convert_to_template(&self, id: &str) -> Result<(), ClientError> {
        let (bus, id) = (self.bus.clone(), id.to_owned());
        runtime::run(async move { Ok(bus.manager().await?.convert_to_template(&id).await?) }).await
    }

    /// Starts cloning `source` (a UUID or name) as `name` and follows the job.
    pub async fn start_clone(
        &self,
        source: &str,
        name: &str,
        options: &CloneOptions,
    ) -> Result<JobHandle, ClientError> {
        let bus = self.bus.clone();
        let (source, name, options) = (source.to_owned(), name.to_owned(), options.to_dict());
        runtime::run(async move {
            let manager = bus.manager().await?;
            let path = manager.start_clone(&source, &name, options).await?;
            JobHandle::follow(manager.inner().connection(), path).await
        })
        .await
    }

    /// The caller's clones that are queued or running now (`ListJobs`), for
    /// instance started before this window opened: the source's UUID, the
    /// new name and a handle following each.
    pub async fn running_jobs(&self) -> Result<Vec<(String, String, JobHandle)>, ClientError> {
        let bus = self.bus.clone();
        runtime::run(async move {
            let manager = bus.manager().await?;
            let conn = manager.inner().connection().clone();
            let mut jobs = Vec::new();
            for path in manager.list_jobs().await? {
                // A job may end (and leave the bus) between the list and here.
                let Ok(Some((source, name))) = job::unfinished(&conn, &path).await else {
                    continue;
                };
                jobs.push((source, name, JobHandle::follow(&conn, path).await?));
            }
            Ok(jobs)
        })
        .await
    }

    /// Clones `source` once per name with one `CloneVms` call; a handle per
    /// name, in order, each with its own progress and Cancel.
    pub async fn clone_vms(
        &self,
        source: &str,
        names: &[String],
        options: &CloneOptions,
    ) -> Result<Vec<JobHandle>, ClientError> {
        let bus = self.bus.clone();
        let (source, names, options) = (source.to_owned(), names.to_vec(), options.to_dict());
        runtime::run(
            async move { batch::clone_vms(bus.manager().await?, source, names, options).await },
        )
        .await
    }
}
