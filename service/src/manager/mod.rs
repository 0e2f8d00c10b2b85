//! `org.vmclone.Manager` at `/org/vmclone/Manager`: the D-Bus face of the
//! clone engine. Every method checks polkit first; libvirt work runs on the
//! blocking pool so the bus stays responsive during long copies.

mod dicts;
mod jobs;
mod listing;
mod signals;

pub use signals::announce_state_changes;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Semaphore;
use zbus::message::Header;
use zbus::object_server::SignalEmitter;
use zbus::zvariant::{OwnedObjectPath, OwnedValue};
use zbus::{fdo, interface, Connection};

use crate::auth::{self, Action, Authorizer};
use crate::clone::{CloneRequest, Engine};
use crate::error::{Error, Result};
use crate::job;
use crate::naming;
use crate::options::CloneOptions;
use crate::template;
use jobs::{Jobs, Launch};
use listing::SharedListing;

pub const OBJECT_PATH: &str = "/org/vmclone/Manager";
pub const BUS_NAME: &str = "org.vmclone.Manager";

/// Reads of one VM (`GetVm`, `CheckName`) that may run at once.
const MAX_READS: usize = 4;

type Options = HashMap<String, OwnedValue>;

#[derive(Clone)]
pub struct Manager {
    engine: Arc<Engine>,
    auth: Authorizer,
    jobs: Arc<Jobs>,
    listing: Arc<SharedListing>,
    reads: Arc<Semaphore>,
}

/// Runs a blocking libvirt call off the async executor.
pub async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T> + Send + 'static,
) -> Result<T> {
    tokio::task::spawn_blocking(f)
        .await
        .unwrap_or_else(|e| Err(Error::Libvirt(format!("internal error: {e}"))))
}

impl Manager {
    /// The Manager over `engine`; at most `max_running` clones copy at once.
    pub fn new(engine: Arc<Engine>, auth: Authorizer, max_running: usize) -> Manager {
        Manager {
            jobs: Arc::new(Jobs::new(engine.clone(), auth.clone(), max_running)),
            engine,
            auth,
            listing: Arc::default(),
            reads: Arc::new(Semaphore::new(MAX_READS)),
        }
    }

    /// Cancels every unfinished clone and waits (up to `limit`) for their
    /// rollbacks, so that stopping the service leaves nothing behind.
    pub async fn cancel_all(&self, limit: Duration) {
        self.jobs.cancel_all(limit).await;
    }

    /// Checks that the caller may clone, then reads the request's options.
    async fn clone_request(
        &self,
        header: &Header<'_>,
        source: String,
        new_name: String,
        options: &Options,
    ) -> Result<CloneRequest> {
        self.auth.check(header, Action::CloneVm).await?;
        Ok(CloneRequest {
            source,
            new_name,
            options: CloneOptions::parse(options)?,
        })
    }

    /// How a clone the caller waits for starts: it belongs to the caller and
    /// is cancelled if the caller leaves the bus.
    async fn launch_for(
        &self,
        header: &Header<'_>,
        conn: &Connection,
        request: CloneRequest,
        waits: bool,
    ) -> Result<Launch> {
        let sender = header
            .sender()
            .ok_or_else(|| Error::NotAuthorized("The call has no sender.".into()))?;
        Ok(Launch {
            request,
            owner_uid: auth::caller_uid(conn, sender).await?,
            // The caller of a waiting call never sees the job's path.
            linger: if waits {
                Duration::ZERO
            } else {
                job::KEEP_FINISHED
            },
            caller: waits.then(|| sender.to_owned()),
        })
    }

    async fn clone_and_wait(
        &self,
        header: &Header<'_>,
        conn: &Connection,
        request: CloneRequest,
    ) -> Result<String> {
        let launch = self.launch_for(header, conn, request, true).await?;
        let (_, handle) = self.jobs.launch(conn, launch).await?;
        let outcome = handle
            .await
            .unwrap_or_else(|e| Err(Error::Libvirt(format!("internal error: {e}"))))?;
        Ok(outcome.uuid)
    }

    /// A blocking read of the host, a few at a time.
    async fn read<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Engine) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        let _slot = self
            .reads
            .acquire()
            .await
            .map_err(|e| Error::Libvirt(e.to_string()))?;
        let engine = self.engine.clone();
        blocking(move || f(&engine)).await
    }
}

#[interface(name = "org.vmclone.Manager")]
impl Manager {
    #[zbus(out_args("cloned_vm_id"))]
    async fn clone_vm(
        &self,
        source_vm_id: String,
        new_name: String,
        #[zbus(header)] header: Header<'_>,
        #[zbus(connection)] conn: &Connection,
    ) -> Result<String> {
        self.clone_vm_with_options(source_vm_id, new_name, Options::new(), header, conn)
            .await
    }

    #[zbus(out_args("cloned_vm_id"))]
    async fn clone_vm_with_options(
        &self,
        source_vm_id: String,
        new_name: String,
        options: Options,
        #[zbus(header)] header: Header<'_>,
        #[zbus(connection)] conn: &Connection,
    ) -> Result<String> {
        let request = self
            .clone_request(&header, source_vm_id, new_name, &options)
            .await?;
        self.clone_and_wait(&header, conn, request).await
    }

    #[zbus(out_args("results"))]
    async fn clone_vms(
        &self,
        source_vm_id: String,
        new_names: Vec<String>,
        options: Options,
        #[zbus(header)] header: Header<'_>,
        #[zbus(connection)] conn: &Connection,
    ) -> Result<Vec<String>> {
        self.auth.check(&header, Action::CloneVm).await?;
        let options = CloneOptions::parse(&options)?;
        let engine = self.engine.clone();
        let (source, names, opts) = (source_vm_id.clone(), new_names.clone(), options.clone());
        blocking(move || engine.check_batch(&source, &names, &opts)).await?;
        let mut results = Vec::with_capacity(new_names.len());
        for new_name in new_names {
            let request = CloneRequest {
                source: source_vm_id.clone(),
                new_name,
                options: options.clone(),
            };
            results.push(match self.clone_and_wait(&header, conn, request).await {
                Ok(uuid) => uuid,
                Err(e) => format!("{}: {e}", e.dbus_name()),
            });
        }
        Ok(results)
    }

    #[zbus(out_args("job"))]
    async fn start_clone(
        &self,
        source_vm_id: String,
        new_name: String,
        options: Options,
        #[zbus(header)] header: Header<'_>,
        #[zbus(connection)] conn: &Connection,
    ) -> Result<OwnedObjectPath> {
        let request = self
            .clone_request(&header, source_vm_id, new_name, &options)
            .await?;
        // Fail a bad name now, not in the job.
        naming::validate_vm_name(&request.new_name)?;
        let launch = self.launch_for(&header, conn, request, false).await?;
        let (path, _) = self.jobs.launch(conn, launch).await?;
        Ok(path)
    }

    /// The jobs on the bus the caller may see: their own (every job for root).
    #[zbus(out_args("jobs"))]
    async fn list_jobs(
        &self,
        #[zbus(header)] header: Header<'_>,
        #[zbus(connection)] conn: &Connection,
    ) -> Result<Vec<OwnedObjectPath>> {
        self.auth.check(&header, Action::ListVms).await?;
        let sender = header
            .sender()
            .ok_or_else(|| Error::NotAuthorized("The call has no sender.".into()))?;
        let uid = auth::caller_uid(conn, sender).await?;
        Ok(self.jobs.visible_to(uid))
    }

    #[zbus(out_args("vms"))]
    async fn list_vms(
        &self,
        #[zbus(header)] header: Header<'_>,
    ) -> Result<Vec<HashMap<String, OwnedValue>>> {
        self.auth.check(&header, Action::ListVms).await?;
        let vms = self.listing.get(&self.engine).await?;
        Ok(vms.iter().map(dicts::vm).collect())
    }

    #[zbus(out_args("vm"))]
    async fn get_vm(
        &self,
        id_or_name: String,
        #[zbus(header)] header: Header<'_>,
    ) -> Result<HashMap<String, OwnedValue>> {
        self.auth.check(&header, Action::ListVms).await?;
        let (vm, info, sizes, agent) = self
            .read(move |engine| {
                let host = engine.host();
                let dom = host.lookup(&id_or_name)?;
                let (vm, info) = host.details(&dom)?;
                let sizes: Vec<(u64, u64)> =
                    info.disks.iter().map(|d| host.disk_sizes(d)).collect();
                Ok((vm, info, sizes, host.guest_agent_connected(&dom)))
            })
            .await?;
        Ok(dicts::vm_details(&vm, &info, &sizes, agent))
    }

    /// What a clone with these options would do, checked as the clone checks
    /// it, without doing it.
    #[zbus(out_args("plan"))]
    async fn plan_clone(
        &self,
        source_vm_id: String,
        new_name: String,
        options: Options,
        #[zbus(header)] header: Header<'_>,
    ) -> Result<HashMap<String, OwnedValue>> {
        self.auth.check(&header, Action::ListVms).await?;
        let request = CloneRequest {
            source: source_vm_id,
            new_name,
            options: CloneOptions::parse(&options)?,
        };
        self.read(move |engine| dicts::plan(&engine.plan_clone(&request)?))
            .await
    }

    /// The storage pools' folders, where a clone of any VM may go (a clone may
    /// also go into a folder of its source's disks).
    #[zbus(out_args("destinations"))]
    async fn list_destinations(
        &self,
        #[zbus(header)] header: Header<'_>,
    ) -> Result<Vec<HashMap<String, OwnedValue>>> {
        self.auth.check(&header, Action::ListVms).await?;
        self.read(|engine| {
            crate::clone::plan::destinations::allowed(engine.host(), None)?
                .iter()
                .map(dicts::destination)
                .collect()
        })
        .await
    }

    async fn check_name(&self, new_name: String, #[zbus(header)] header: Header<'_>) -> Result<()> {
        self.auth.check(&header, Action::ListVms).await?;
        self.read(move |engine| engine.check_name(&new_name)).await
    }

    async fn convert_to_template(
        &self,
        vm_id: String,
        #[zbus(header)] header: Header<'_>,
        #[zbus(signal_emitter)] emitter: SignalEmitter<'_>,
    ) -> Result<()> {
        self.auth.check(&header, Action::ManageTemplates).await?;
        let engine = self.engine.clone();
        let uuid = blocking(move || template::convert(engine.host(), &vm_id)).await?;
        // libvirt sends no lifecycle event for a metadata change; tell clients
        // the VM changed so they show it as a template.
        Manager::vm_state_changed(&emitter, &uuid, "shutoff").await?;
        Ok(())
    }

    #[zbus(signal)]
    pub async fn vm_cloned(
        emitter: &SignalEmitter<'_>,
        source_vm_id: &str,
        cloned_vm_id: &str,
        new_name: &str,
        timestamp: u64,
    ) -> zbus::Result<()>;

    #[zbus(signal)]
    pub async fn vm_state_changed(
        emitter: &SignalEmitter<'_>,
        vm_id: &str,
        state: &str,
    ) -> zbus::Result<()>;

    #[zbus(property(emits_changed_signal = "const"))]
    fn version(&self) -> String {
        env!("CARGO_PKG_VERSION").to_string()
    }

    /// The libvirt connection, without credentials; for callers allowed to
    /// list VMs only.
    #[zbus(property(emits_changed_signal = "const"))]
    async fn libvirt_uri(&self, #[zbus(header)] header: Option<Header<'_>>) -> fdo::Result<String> {
        if let Some(header) = &header {
            self.auth
                .check(header, Action::ListVms)
                .await
                .map_err(|e| {
                    fdo::Error::AccessDenied(format!("org.vmclone.Error.NotAuthorized: {e}"))
                })?;
        }
        Ok(crate::host::uri_without_credentials(
            self.engine.host().uri(),
        ))
    }
}
