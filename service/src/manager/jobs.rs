//! The Manager's jobs: every clone runs as an `org.vmclone.Job`, waits for
//! one of a few copy slots (so clones cannot starve each other or the host),
//! is cancelled when the caller that waits for it leaves the bus (nobody
//! could learn its result), and belongs to the user who started it.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_lite::StreamExt;
use tokio::sync::Semaphore;
use tokio::task::JoinHandle;
use zbus::fdo::DBusProxy;
use zbus::names::{BusName, UniqueName};
use zbus::zvariant::OwnedObjectPath;
use zbus::Connection;

use super::{blocking, signals};
use crate::auth::Authorizer;
use crate::clone::{CloneOutcome, CloneRequest, Engine};
use crate::error::{Error, Result};
use crate::job::{self, Job, JobRecord, JOBS_PATH};

pub struct Jobs {
    engine: Arc<Engine>,
    auth: Authorizer,
    next: AtomicU64,
    /// Clones that may run at once; the others are queued.
    slots: Arc<Semaphore>,
    /// Every job on the bus, by number.
    all: Arc<Mutex<BTreeMap<u64, Arc<JobRecord>>>>,
}

/// A job's start: what it clones, for whom, and how long it stays.
pub struct Launch {
    pub request: CloneRequest,
    pub owner_uid: u32,
    /// How long the finished job stays on the bus.
    pub linger: Duration,
    /// The caller whose leaving the bus cancels the job (for calls that
    /// return only when the clone is done).
    pub caller: Option<UniqueName<'static>>,
}

impl Jobs {
    pub fn new(engine: Arc<Engine>, auth: Authorizer, max_running: usize) -> Jobs {
        Jobs {
            engine,
            auth,
            next: AtomicU64::new(1),
            slots: Arc::new(Semaphore::new(max_running.max(1))),
            all: Arc::default(),
        }
    }

    /// Exports a job object and starts the clone; returns the job's path and
    /// a handle that yields the result.
    pub async fn launch(
        &self,
        conn: &Connection,
        launch: Launch,
    ) -> Result<(OwnedObjectPath, JoinHandle<Result<CloneOutcome>>)> {
        let Launch {
            request,
            owner_uid,
            linger,
            caller,
        } = launch;
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        let path = format!("{JOBS_PATH}/{n}");
        let record = JobRecord::new(&request.source, &request.new_name, owner_uid);
        conn.object_server()
            .at(path.as_str(), Job::new(record.clone(), self.auth.clone()))
            .await?;
        self.all
            .lock()
            .expect("jobs lock")
            .insert(n, record.clone());
        let publisher = tokio::spawn(job::publish_progress(
            conn.clone(),
            path.clone(),
            record.clone(),
        ));
        let watcher =
            caller.map(|c| tokio::spawn(cancel_when_gone(conn.clone(), c, record.clone())));
        let (engine, slots, all) = (self.engine.clone(), self.slots.clone(), self.all.clone());
        let (conn, job_path) = (conn.clone(), path.clone());
        let handle = tokio::spawn(async move {
            let slot = tokio::select! {
                slot = slots.acquire_owned() => slot.ok(),
                _ = record.wait_cancelled() => None,
            };
            let result = match slot {
                Some(_slot) => {
                    record.start();
                    let progress = record.progress.clone();
                    blocking(move || engine.clone_vm(&request, &progress)).await
                }
                None => Err(Error::Cancelled),
            };
            if let Some(w) = watcher {
                w.abort();
            }
            let state = record.finish(result.as_ref().map(|o| o.uuid.as_str()));
            let _ = publisher.await;
            if let Ok(outcome) = &result {
                signals::announce_clone(&conn, outcome).await;
            }
            let gone = move || {
                all.lock().expect("jobs lock").remove(&n);
            };
            job::announce_finish(conn, job_path, state, linger, gone).await;
            result
        });
        let path = OwnedObjectPath::try_from(path).map_err(zbus::Error::from)?;
        Ok((path, handle))
    }

    /// The paths of the jobs on the bus that the user `uid` may see.
    pub fn visible_to(&self, uid: u32) -> Vec<OwnedObjectPath> {
        self.all
            .lock()
            .expect("jobs lock")
            .iter()
            .filter(|(_, r)| r.belongs_to(uid))
            .filter_map(|(n, _)| OwnedObjectPath::try_from(format!("{JOBS_PATH}/{n}")).ok())
            .collect()
    }

    /// Cancels every clone not yet finished and waits (up to `limit`) for
    /// their rollbacks, so that stopping the service leaves nothing behind.
    pub async fn cancel_all(&self, limit: Duration) {
        let unfinished = || -> Vec<Arc<JobRecord>> {
            self.all
                .lock()
                .expect("jobs lock")
                .values()
                .filter(|r| !r.state().is_over())
                .cloned()
                .collect()
        };
        for record in unfinished() {
            record.cancel();
        }
        let deadline = tokio::time::Instant::now() + limit;
        while !unfinished().is_empty() && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// Cancels `record` once `caller` has left the bus.
async fn cancel_when_gone(conn: Connection, caller: UniqueName<'static>, record: Arc<JobRecord>) {
    let Ok(bus) = DBusProxy::new(&conn).await else {
        return;
    };
    let Ok(mut changes) = bus
        .receive_name_owner_changed_with_args(&[(0, caller.as_str())])
        .await
    else {
        return;
    };
    // It may have left before the subscription was made.
    let here = bus
        .name_has_owner(BusName::Unique(caller.clone()))
        .await
        .unwrap_or(true);
    if here {
        while let Some(change) = changes.next().await {
            if change.args().is_ok_and(|a| a.new_owner().is_none()) {
                break;
            }
        }
    }
    tracing::warn!(
        "{caller} left the bus while its clone of “{}” ran: nobody can learn the result, so it is cancelled",
        record.source_vm_id
    );
    record.cancel();
}
