//! `org.vmclone.Job`: one clone, as a D-Bus object with progress properties,
//! `Cancel()` and `Finished`. A job belongs to the user who started it: only
//! that user and root may read its properties or cancel it. A finished job
//! stays readable for [`KEEP_FINISHED`], then leaves the bus.

use std::collections::HashSet;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use zbus::message::Header;
use zbus::object_server::SignalEmitter;
use zbus::{fdo, interface, Connection};

use crate::auth::{self, Action, Authorizer};
use crate::clone::{Consistency, Phase, Progress};
use crate::error::{Error, Result};

/// How long a finished job stays on the bus.
pub const KEEP_FINISHED: Duration = Duration::from_secs(600);
/// Progress is published at least this often while bytes move.
pub const PROGRESS_INTERVAL: Duration = Duration::from_millis(200);

pub const JOBS_PATH: &str = "/org/vmclone/Manager/jobs";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobState {
    /// Waiting for a copy slot.
    Queued,
    Running,
    Succeeded,
    Failed,
    Cancelled,
}

impl JobState {
    pub fn as_str(self) -> &'static str {
        match self {
            JobState::Queued => "queued",
            JobState::Running => "running",
            JobState::Succeeded => "succeeded",
            JobState::Failed => "failed",
            JobState::Cancelled => "cancelled",
        }
    }

    pub fn is_over(self) -> bool {
        !matches!(self, JobState::Queued | JobState::Running)
    }
}

#[derive(Debug, Clone)]
struct Status {
    state: JobState,
    cloned_vm_id: String,
    error: String,
    error_name: String,
}

/// What a job's D-Bus object and its runner share.
pub struct JobRecord {
    pub progress: Progress,
    pub source_vm_id: String,
    pub new_name: String,
    /// The user who started the clone.
    pub owner_uid: u32,
    status: Mutex<Status>,
    /// Wakes the progress publisher as soon as the job ends.
    ended: tokio::sync::Notify,
    /// Wakes a queued job when it is cancelled.
    cancelled: tokio::sync::Notify,
}

impl JobRecord {
    pub fn new(source_vm_id: &str, new_name: &str, owner_uid: u32) -> Arc<JobRecord> {
        Arc::new(JobRecord {
            progress: Progress::default(),
            source_vm_id: source_vm_id.to_string(),
            new_name: new_name.to_string(),
            owner_uid,
            status: Mutex::new(Status {
                state: JobState::Queued,
                cloned_vm_id: String::new(),
                error: String::new(),
                error_name: String::new(),
            }),
            ended: tokio::sync::Notify::new(),
            cancelled: tokio::sync::Notify::new(),
        })
    }

    pub fn state(&self) -> JobState {
        self.status.lock().expect("job status lock").state
    }

    pub fn cancel(&self) {
        self.progress.ctl.cancel();
        self.cancelled.notify_waiters();
    }

    pub fn is_cancelled(&self) -> bool {
        self.progress.ctl.is_cancelled()
    }

    /// Returns once the job is cancelled.
    pub async fn wait_cancelled(&self) {
        loop {
            let woken = self.cancelled.notified();
            if self.is_cancelled() {
                return;
            }
            woken.await;
        }
    }

    /// The job got its copy slot.
    pub fn start(&self) {
        self.status.lock().expect("job status lock").state = JobState::Running;
        self.ended.notify_one();
    }

    /// Records the outcome; returns the final state.
    pub fn finish(&self, result: std::result::Result<&str, &Error>) -> JobState {
        let mut s = self.status.lock().expect("job status lock");
        match result {
            Ok(id) => {
                s.state = JobState::Succeeded;
                s.cloned_vm_id = id.to_string();
            }
            Err(e) => {
                s.state = match e {
                    Error::Cancelled => JobState::Cancelled,
                    _ => JobState::Failed,
                };
                s.error = e.to_string();
                s.error_name = e.dbus_name();
            }
        }
        self.ended.notify_one();
        s.state
    }

    /// Whether the user `uid` may see and cancel this job.
    pub fn belongs_to(&self, uid: u32) -> bool {
        uid == 0 || uid == self.owner_uid
    }
}

pub struct Job {
    record: Arc<JobRecord>,
    auth: Authorizer,
    /// Callers already found to be the owner (or root).
    readers: Mutex<HashSet<String>>,
}

impl Job {
    pub fn new(record: Arc<JobRecord>, auth: Authorizer) -> Job {
        Job {
            record,
            auth,
            readers: Mutex::new(HashSet::new()),
        }
    }

    fn status(&self) -> Status {
        self.record.status.lock().expect("job status lock").clone()
    }

    /// Whether the sender of `header` is the job's owner or root. No header:
    /// the service reads its own property for a change signal.
    async fn caller_owns(&self, header: Option<&Header<'_>>, conn: &Connection) -> Result<bool> {
        let Some(sender) = header.and_then(|h| h.sender()) else {
            return Ok(header.is_none());
        };
        if self
            .readers
            .lock()
            .expect("readers lock")
            .contains(sender.as_str())
        {
            return Ok(true);
        }
        let uid = auth::caller_uid(conn, sender).await?;
        let owns = self.record.belongs_to(uid);
        if owns {
            self.readers
                .lock()
                .expect("readers lock")
                .insert(sender.to_string());
        }
        Ok(owns)
    }

    /// Property reads: the owner and root only. (D-Bus property errors can
    /// only carry the standard names, so this is AccessDenied.)
    async fn readable(&self, header: Option<Header<'_>>, conn: &Connection) -> fdo::Result<()> {
        match self.caller_owns(header.as_ref(), conn).await {
            Ok(true) => Ok(()),
            Ok(false) => Err(fdo::Error::AccessDenied(not_yours(self.record.owner_uid))),
            Err(e) => Err(fdo::Error::AccessDenied(e.to_string())),
        }
    }
}

fn not_yours(owner: u32) -> String {
    format!(
        "org.vmclone.Error.NotAuthorized: this clone belongs to the user with uid {owner}; only that user and root may read or cancel it"
    )
}

#[interface(name = "org.vmclone.Job")]
impl Job {
    /// Stops the clone; everything it created so far is removed.
    async fn cancel(
        &self,
        #[zbus(header)] header: Header<'_>,
        #[zbus(connection)] conn: &Connection,
    ) -> Result<()> {
        self.auth.check(&header, Action::CloneVm).await?;
        if !self.caller_owns(Some(&header), conn).await? {
            return Err(Error::NotAuthorized(
                not_yours(self.record.owner_uid)
                    .trim_start_matches("org.vmclone.Error.NotAuthorized: ")
                    .to_string(),
            ));
        }
        self.record.cancel();
        Ok(())
    }

    #[zbus(signal)]
    pub async fn finished(emitter: &SignalEmitter<'_>, state: &str) -> zbus::Result<()>;

    #[zbus(property)]
    async fn state(
        &self,
        #[zbus(header)] header: Option<Header<'_>>,
        #[zbus(connection)] conn: &Connection,
    ) -> fdo::Result<String> {
        self.readable(header, conn).await?;
        Ok(self.status().state.as_str().to_string())
    }

    #[zbus(property)]
    async fn phase(
        &self,
        #[zbus(header)] header: Option<Header<'_>>,
        #[zbus(connection)] conn: &Connection,
    ) -> fdo::Result<String> {
        self.readable(header, conn).await?;
        Ok(self.record.progress.phase().as_str().to_string())
    }

    #[zbus(property)]
    async fn bytes_done(
        &self,
        #[zbus(header)] header: Option<Header<'_>>,
        #[zbus(connection)] conn: &Connection,
    ) -> fdo::Result<u64> {
        self.readable(header, conn).await?;
        Ok(self.record.progress.ctl.bytes_done.load(Ordering::Relaxed))
    }

    #[zbus(property)]
    async fn bytes_total(
        &self,
        #[zbus(header)] header: Option<Header<'_>>,
        #[zbus(connection)] conn: &Connection,
    ) -> fdo::Result<u64> {
        self.readable(header, conn).await?;
        Ok(self.record.progress.bytes_total.load(Ordering::Relaxed))
    }

    /// A live clone's: `filesystem` (the guest agent froze the filesystems)
    /// or `crash`; empty for a clone of a shut-off VM.
    #[zbus(property)]
    async fn consistency(
        &self,
        #[zbus(header)] header: Option<Header<'_>>,
        #[zbus(connection)] conn: &Connection,
    ) -> fdo::Result<String> {
        self.readable(header, conn).await?;
        Ok(self.record.progress.consistency().as_str().to_string())
    }

    /// How long a live clone kept the guest paused, in milliseconds.
    #[zbus(property)]
    async fn paused_ms(
        &self,
        #[zbus(header)] header: Option<Header<'_>>,
        #[zbus(connection)] conn: &Connection,
    ) -> fdo::Result<u64> {
        self.readable(header, conn).await?;
        Ok(self.record.progress.paused_ms.load(Ordering::Relaxed))
    }

    #[zbus(property(emits_changed_signal = "const"))]
    async fn source_vm_id(
        &self,
        #[zbus(header)] header: Option<Header<'_>>,
        #[zbus(connection)] conn: &Connection,
    ) -> fdo::Result<String> {
        self.readable(header, conn).await?;
        Ok(self.record.source_vm_id.clone())
    }

    #[zbus(property(emits_changed_signal = "const"))]
    async fn new_name(
        &self,
        #[zbus(header)] header: Option<Header<'_>>,
        #[zbus(connection)] conn: &Connection,
    ) -> fdo::Result<String> {
        self.readable(header, conn).await?;
        Ok(self.record.new_name.clone())
    }

    #[zbus(property)]
    async fn cloned_vm_id(
        &self,
        #[zbus(header)] header: Option<Header<'_>>,
        #[zbus(connection)] conn: &Connection,
    ) -> fdo::Result<String> {
        self.readable(header, conn).await?;
        Ok(self.status().cloned_vm_id)
    }

    // Error messages can name disk paths, which ListVms does not show; the
    // change signal only says that they changed (the owner Gets them).
    #[zbus(property(emits_changed_signal = "invalidates"))]
    async fn error(
        &self,
        #[zbus(header)] header: Option<Header<'_>>,
        #[zbus(connection)] conn: &Connection,
    ) -> fdo::Result<String> {
        self.readable(header, conn).await?;
        Ok(self.status().error)
    }

    #[zbus(property(emits_changed_signal = "invalidates"))]
    async fn error_name(
        &self,
        #[zbus(header)] header: Option<Header<'_>>,
        #[zbus(connection)] conn: &Connection,
    ) -> fdo::Result<String> {
        self.readable(header, conn).await?;
        Ok(self.status().error_name)
    }
}

/// Publishes `State`, `Phase`, `BytesDone`, `BytesTotal`, `Consistency` and
/// `PausedMs` while the job runs, every [`PROGRESS_INTERVAL`] when they
/// changed, and once more at the end.
pub async fn publish_progress(conn: Connection, path: String, record: Arc<JobRecord>) {
    let Ok(iface) = conn
        .object_server()
        .interface::<_, Job>(path.as_str())
        .await
    else {
        return;
    };
    let mut last = (0, 0, Phase::Copying, JobState::Queued, Consistency::None, 0);
    let mut tick = tokio::time::interval(PROGRESS_INTERVAL);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = record.ended.notified() => {}
        }
        let state = record.state();
        let now = (
            record.progress.ctl.bytes_done.load(Ordering::Relaxed),
            record.progress.bytes_total.load(Ordering::Relaxed),
            record.progress.phase(),
            state,
            record.progress.consistency(),
            record.progress.paused_ms.load(Ordering::Relaxed),
        );
        if now != last {
            let job = iface.get().await;
            let emitter = iface.signal_emitter();
            if now.1 != last.1 {
                let _ = job.bytes_total_changed(emitter).await;
            }
            if now.0 != last.0 {
                let _ = job.bytes_done_changed(emitter).await;
            }
            if now.2 != last.2 {
                let _ = job.phase_changed(emitter).await;
            }
            if now.4 != last.4 {
                let _ = job.consistency_changed(emitter).await;
            }
            if now.5 != last.5 {
                let _ = job.paused_ms_changed(emitter).await;
            }
            // The final state goes out with the end of the job.
            if now.3 != last.3 && !state.is_over() {
                let _ = job.state_changed(emitter).await;
            }
            last = now;
        }
        if state.is_over() {
            return;
        }
    }
}

/// Announces the end of a job (after its progress publisher has finished):
/// final properties, then `Finished`; and takes the object off the bus after
/// `linger` ([`KEEP_FINISHED`] for jobs whose path the caller was given).
/// `gone` runs once the object has left the bus.
pub async fn announce_finish(
    conn: Connection,
    path: String,
    state: JobState,
    linger: Duration,
    gone: impl FnOnce() + Send + 'static,
) {
    if let Ok(iface) = conn
        .object_server()
        .interface::<_, Job>(path.as_str())
        .await
    {
        let job = iface.get().await;
        let emitter = iface.signal_emitter();
        let _ = job.cloned_vm_id_changed(emitter).await;
        let _ = job.error_invalidate(emitter).await;
        let _ = job.error_name_invalidate(emitter).await;
        let _ = job.state_changed(emitter).await;
        let _ = Job::finished(emitter, state.as_str()).await;
    }
    tokio::spawn(async move {
        tokio::time::sleep(linger).await;
        let _ = conn.object_server().remove::<Job, _>(path.as_str()).await;
        gone();
    });
}
