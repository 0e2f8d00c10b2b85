//! `org.vmclone.Manager` at `/org/vmclone/Manager`: the D-Bus face of the
//! clone engine. Every method checks polkit first; libvirt work runs on the
//! blocking pool so the bus stays responsive during long copies.

mod dicts;
mod signals;

pub use signals::announce_state_changes;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use zbus::message::Header;
use zbus::object_server::SignalEmitter;
use zbus::zvariant::{OwnedObjectPath, OwnedValue};
use zbus::{interface, Connection};

use crate::auth::{Action, Authorizer};
use crate::clone::{CloneOutcome, CloneRequest, Engine};
use crate::error::{Error, Result};
use crate::job::{self, Job, JobRecord, JOBS_PATH};
use crate::naming;
use crate::options::CloneOptions;
use crate::template;

pub const OBJECT_PATH: &str = "/org/vmclone/Manager";
pub const BUS_NAME: &str = "org.vmclone.Manager";

type Options = HashMap<String, OwnedValue>;

#[derive(Clone)]
pub struct Manager {
    engine: Arc<Engine>,
    auth: Authorizer,
    next_job: Arc<AtomicU64>,
    running: Arc<Mutex<HashMap<u64, Arc<JobRecord>>>>,
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
    pub fn new(engine: Arc<Engine>, auth: Authorizer) -> Manager {
        Manager {
            engine,
            auth,
            next_job: Arc::new(AtomicU64::new(1)),
            running: Arc::default(),
        }
    }

    /// Cancels every running clone and waits (up to `limit`) for their
    /// rollbacks, so that stopping the service leaves nothing behind.
    pub async fn cancel_all(&self, limit: Duration) {
        let jobs: Vec<Arc<JobRecord>> = self
            .running
            .lock()
            .expect("jobs lock")
            .values()
            .cloned()
            .collect();
        for j in &jobs {
            j.cancel();
        }
        let deadline = tokio::time::Instant::now() + limit;
        while !self.running.lock().expect("jobs lock").is_empty()
            && tokio::time::Instant::now() < deadline
        {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Exports a job object and starts the clone; returns the job's path and
    /// a handle that yields the result.
    async fn launch(
        &self,
        conn: &Connection,
        request: CloneRequest,
        linger: Duration,
    ) -> Result<(
        OwnedObjectPath,
        tokio::task::JoinHandle<Result<CloneOutcome>>,
    )> {
        let n = self.next_job.fetch_add(1, Ordering::Relaxed);
        let path = format!("{JOBS_PATH}/{n}");
        let shared = JobRecord::new(&request.source, &request.new_name);
        conn.object_server()
            .at(path.as_str(), Job::new(shared.clone(), self.auth.clone()))
            .await?;
        self.running
            .lock()
            .expect("jobs lock")
            .insert(n, shared.clone());
        let publisher = tokio::spawn(job::publish_progress(
            conn.clone(),
            path.clone(),
            shared.clone(),
        ));

        let engine = self.engine.clone();
        let conn = conn.clone();
        let running = self.running.clone();
        let job_path = path.clone();
        let handle = tokio::spawn(async move {
            let progress = shared.progress.clone();
            let result = blocking(move || engine.clone_vm(&request, &progress)).await;
            let state = shared.finish(result.as_ref().map(|o| o.uuid.as_str()));
            running.lock().expect("jobs lock").remove(&n);
            let _ = publisher.await;
            if let Ok(outcome) = &result {
                signals::announce_clone(&conn, outcome).await;
            }
            job::announce_finish(conn, job_path, state, linger).await;
            result
        });
        let path = OwnedObjectPath::try_from(path).map_err(zbus::Error::from)?;
        Ok((path, handle))
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

    async fn clone_and_wait(&self, conn: &Connection, request: CloneRequest) -> Result<String> {
        // The caller never sees this job's path: it leaves the bus when done.
        let (_, handle) = self.launch(conn, request, Duration::ZERO).await?;
        let outcome = handle
            .await
            .unwrap_or_else(|e| Err(Error::Libvirt(format!("internal error: {e}"))))?;
        Ok(outcome.uuid)
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
        self.clone_and_wait(conn, request).await
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
            results.push(match self.clone_and_wait(conn, request).await {
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
        let (path, _) = self.launch(conn, request, job::KEEP_FINISHED).await?;
        Ok(path)
    }

    #[zbus(out_args("vms"))]
    async fn list_vms(
        &self,
        #[zbus(header)] header: Header<'_>,
    ) -> Result<Vec<HashMap<String, OwnedValue>>> {
        self.auth.check(&header, Action::ListVms).await?;
        let engine = self.engine.clone();
        let vms = blocking(move || engine.host().list()).await?;
        Ok(vms.iter().map(dicts::vm).collect())
    }

    #[zbus(out_args("vm"))]
    async fn get_vm(
        &self,
        id_or_name: String,
        #[zbus(header)] header: Header<'_>,
    ) -> Result<HashMap<String, OwnedValue>> {
        self.auth.check(&header, Action::ListVms).await?;
        let engine = self.engine.clone();
        let vm = blocking(move || {
            let host = engine.host();
            host.summary(&host.lookup(&id_or_name)?)
        })
        .await?;
        Ok(dicts::vm(&vm))
    }

    async fn check_name(&self, new_name: String, #[zbus(header)] header: Header<'_>) -> Result<()> {
        self.auth.check(&header, Action::ListVms).await?;
        let engine = self.engine.clone();
        blocking(move || engine.check_name(&new_name)).await
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

    #[zbus(property(emits_changed_signal = "const"))]
    fn libvirt_uri(&self) -> String {
        self.engine.host().uri().to_string()
    }
}
