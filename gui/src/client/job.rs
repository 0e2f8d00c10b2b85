//! Following one clone job: its progress and its outcome, read from the
//! service's `org.vmclone.Job` object by a task of its own, and Cancel.

use std::sync::{Arc, Mutex};

use futures_lite::StreamExt;
use zbus::zvariant::OwnedObjectPath;
use zbus::Connection;

use super::error::ClientError;
use super::runtime;
use vmclone_bus::{JobProxy, BUS_NAME};

/// Progress of one clone job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JobEvent {
    /// Not copying yet: the service queued it (`State` is `queued`), or it
    /// waits in a batch for the clones before it.
    Waiting,
    Progress {
        done: u64,
        total: u64,
        /// The job's `Phase`: `copying`, `customizing`, `defining` (empty
        /// from a service that does not report it).
        phase: String,
    },
    Finished(JobOutcome),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JobOutcome {
    Succeeded { cloned_vm_id: String },
    Cancelled,
    Failed(ClientError),
}

/// The job object of one clone. `StartClone` names it at once; the jobs of
/// a `CloneVms` batch are found as they start, and a Cancel asked before
/// then is sent as soon as the job is found.
#[derive(Debug, Default)]
pub(super) struct JobTarget(Mutex<Target>);

#[derive(Debug, Default)]
struct Target {
    path: Option<OwnedObjectPath>,
    cancel_asked: bool,
}

impl JobTarget {
    pub fn known(path: OwnedObjectPath) -> Arc<JobTarget> {
        Arc::new(JobTarget(Mutex::new(Target {
            path: Some(path),
            cancel_asked: false,
        })))
    }

    /// Records the job's path; true when Cancel was asked before it was found.
    pub fn found(&self, path: OwnedObjectPath) -> bool {
        let mut target = self.0.lock().expect("never poisoned");
        target.path = Some(path);
        target.cancel_asked
    }

    /// The job's path, or `None` after noting that Cancel is asked for a
    /// job not found yet.
    fn path_or_ask_cancel(&self) -> Option<OwnedObjectPath> {
        let mut target = self.0.lock().expect("never poisoned");
        if target.path.is_none() {
            target.cancel_asked = true;
        }
        target.path.clone()
    }
}

/// A clone in progress, seen from GTK. It holds no proxy: dropping a zbus
/// proxy needs the runtime's context, which the GTK thread has not.
pub struct JobHandle {
    pub events: async_channel::Receiver<JobEvent>,
    conn: Connection,
    target: Arc<JobTarget>,
}

impl JobHandle {
    /// Starts following the job at `path`.
    pub(super) async fn follow(
        conn: &Connection,
        path: OwnedObjectPath,
    ) -> Result<JobHandle, ClientError> {
        let job = JobProxy::builder(conn).path(path.clone())?.build().await?;
        let (events_tx, events) = async_channel::unbounded();
        tokio::spawn(follow(job, events_tx));
        Ok(JobHandle::new(events, conn, JobTarget::known(path)))
    }

    pub(super) fn new(
        events: async_channel::Receiver<JobEvent>,
        conn: &Connection,
        target: Arc<JobTarget>,
    ) -> JobHandle {
        JobHandle {
            events,
            conn: conn.clone(),
            target,
        }
    }

    /// Asks the service to stop; the outcome still arrives as `Finished`. An
    /// error means the service refused, and the job goes on.
    pub async fn cancel(&self) -> Result<(), ClientError> {
        let Some(path) = self.target.path_or_ask_cancel() else {
            return Ok(());
        };
        let conn = self.conn.clone();
        runtime::run(async move { cancel(&conn, path).await }).await
    }
}

/// The source's UUID and the new name of the job at `path` while it is
/// queued or running; `None` once it ended.
pub(super) async fn unfinished(
    conn: &Connection,
    path: &OwnedObjectPath,
) -> Result<Option<(String, String)>, ClientError> {
    let job = JobProxy::builder(conn)
        .path(path.clone())?
        .cache_properties(zbus::proxy::CacheProperties::No)
        .build()
        .await?;
    if !matches!(job.state().await?.as_str(), "queued" | "running") {
        return Ok(None);
    }
    Ok(Some((job.source_vm_id().await?, job.new_name().await?)))
}

/// `Cancel()` on the job at `path`.
pub(super) async fn cancel(conn: &Connection, path: OwnedObjectPath) -> Result<(), ClientError> {
    let job = JobProxy::builder(conn)
        .path(path)?
        .cache_properties(zbus::proxy::CacheProperties::No)
        .build()
        .await?;
    Ok(job.cancel().await?)
}

/// Forwards a job's progress until it finishes. The proxy caches properties:
/// it fetched them after subscribing to PropertiesChanged, so a job that
/// finished before we looked is still seen as finished.
async fn follow(job: JobProxy<'static>, events: async_channel::Sender<JobEvent>) {
    let finish = |outcome| {
        let events = events.clone();
        async move {
            let _ = events.send(JobEvent::Finished(outcome)).await;
        }
    };
    let mut finished = match job.receive_finished().await {
        Ok(stream) => stream,
        Err(e) => return finish(JobOutcome::Failed(e.into())).await,
    };
    // A service that dies mid-copy sends no Finished and its property
    // streams never end: its name losing its owner ends the job instead.
    let owner = match zbus::fdo::DBusProxy::new(job.inner().connection()).await {
        Ok(bus) => bus
            .receive_name_owner_changed_with_args(&[(0, BUS_NAME)])
            .await
            .map_err(ClientError::from),
        Err(e) => Err(e.into()),
    };
    let mut owner = match owner {
        Ok(stream) => stream,
        Err(e) => return finish(JobOutcome::Failed(e)).await,
    };
    let mut done_changes = job.receive_bytes_done_changed().await;
    let mut total_changes = job.receive_bytes_total_changed().await;
    let mut state_changes = job.receive_state_changed().await;
    let mut phase_changes = job.receive_phase_changed().await;
    loop {
        let event = match job.state().await.as_deref() {
            Ok("running") => JobEvent::Progress {
                done: job.bytes_done().await.unwrap_or(0),
                total: job.bytes_total().await.unwrap_or(0),
                phase: job.phase().await.unwrap_or_default(),
            },
            // Waiting for a copy slot: the service's hardening queues clones.
            Ok("queued") => JobEvent::Waiting,
            Ok(_) => break,
            Err(e) => return finish(JobOutcome::Failed(e.clone().into())).await,
        };
        if events.send(event).await.is_err() {
            return;
        }
        tokio::select! {
            _ = finished.next() => break,
            Some(_) = done_changes.next() => {}
            Some(_) = total_changes.next() => {}
            Some(_) = state_changes.next() => {}
            Some(_) = phase_changes.next() => {}
            Some(signal) = owner.next() => {
                if signal.args().is_ok_and(|a| a.new_owner().is_none()) {
                    let lost = ClientError::Unreachable("the service left the bus".into());
                    return finish(JobOutcome::Failed(lost)).await;
                }
            }
            else => break,
        }
    }
    finish(outcome_of(&job).await).await
}

async fn outcome_of(job: &JobProxy<'_>) -> JobOutcome {
    // Read the final values from the service rather than the cache, which may
    // lag one PropertiesChanged behind the Finished signal.
    let props = zbus::fdo::PropertiesProxy::builder(job.inner().connection())
        .destination(BUS_NAME)
        .and_then(|b| b.path(job.inner().path().to_owned()));
    let all = match props {
        Ok(builder) => match builder.build().await {
            Ok(props) => props
                .get_all(zbus::names::InterfaceName::from_static_str_unchecked(
                    "org.vmclone.Job",
                ))
                .await
                .map_err(|e| ClientError::from(zbus::Error::from(e))),
            Err(e) => Err(e.into()),
        },
        Err(e) => Err(e.into()),
    };
    let all = match all {
        Ok(all) => all,
        Err(e) => return JobOutcome::Failed(e),
    };
    let text = |key: &str| {
        all.get(key)
            .and_then(|v| v.try_clone().ok())
            .and_then(|v| String::try_from(v).ok())
            .unwrap_or_default()
    };
    match text("State").as_str() {
        "succeeded" => JobOutcome::Succeeded {
            cloned_vm_id: text("ClonedVmId"),
        },
        "cancelled" => JobOutcome::Cancelled,
        _ => JobOutcome::Failed(ClientError::Service {
            name: text("ErrorName"),
            message: text("Error"),
        }),
    }
}
