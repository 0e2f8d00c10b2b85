//! `org.vmclone.Job`: one clone in progress, as a D-Bus object with progress
//! properties, `Cancel()` and `Finished`. A finished job stays readable for
//! [`KEEP_FINISHED`], then leaves the bus.

use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use zbus::message::Header;
use zbus::object_server::SignalEmitter;
use zbus::{interface, Connection};

use crate::auth::{Action, Authorizer};
use crate::clone::Progress;
use crate::error::{Error, Result};

/// How long a finished job stays on the bus.
pub const KEEP_FINISHED: Duration = Duration::from_secs(600);
/// Progress is published at least this often while bytes move.
pub const PROGRESS_INTERVAL: Duration = Duration::from_millis(200);

pub const JOBS_PATH: &str = "/org/vmclone/Manager/jobs";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobState {
    Running,
    Succeeded,
    Failed,
    Cancelled,
}

impl JobState {
    pub fn as_str(self) -> &'static str {
        match self {
            JobState::Running => "running",
            JobState::Succeeded => "succeeded",
            JobState::Failed => "failed",
            JobState::Cancelled => "cancelled",
        }
    }
}

#[derive(Debug, Clone)]
struct Status {
    state: JobState,
    cloned_vm_id: String,
    error: String,
    error_name: String,
}

/// The state a job's D-Bus object and its runner share.
pub struct JobRecord {
    pub progress: Progress,
    pub source_vm_id: String,
    pub new_name: String,
    status: Mutex<Status>,
    /// Wakes the progress publisher as soon as the job ends.
    ended: tokio::sync::Notify,
}

impl JobRecord {
    pub fn new(source_vm_id: &str, new_name: &str) -> Arc<JobRecord> {
        Arc::new(JobRecord {
            progress: Progress::default(),
            source_vm_id: source_vm_id.to_string(),
            new_name: new_name.to_string(),
            status: Mutex::new(Status {
                state: JobState::Running,
                cloned_vm_id: String::new(),
                error: String::new(),
                error_name: String::new(),
            }),
            ended: tokio::sync::Notify::new(),
        })
    }

    pub fn state(&self) -> JobState {
        self.status.lock().expect("job status lock").state
    }

    pub fn cancel(&self) {
        self.progress.ctl.cancel();
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
}

pub struct Job {
    shared: Arc<JobRecord>,
    auth: Authorizer,
}

impl Job {
    pub fn new(shared: Arc<JobRecord>, auth: Authorizer) -> Job {
        Job { shared, auth }
    }

    fn status(&self) -> Status {
        self.shared.status.lock().expect("job status lock").clone()
    }
}

#[interface(name = "org.vmclone.Job")]
impl Job {
    /// Stops the clone; everything it created so far is removed.
    async fn cancel(&self, #[zbus(header)] header: Header<'_>) -> Result<()> {
        self.auth.check(&header, Action::CloneVm).await?;
        self.shared.cancel();
        Ok(())
    }

    #[zbus(signal)]
    pub async fn finished(emitter: &SignalEmitter<'_>, state: &str) -> zbus::Result<()>;

    #[zbus(property)]
    fn state(&self) -> String {
        self.status().state.as_str().to_string()
    }

    #[zbus(property)]
    fn bytes_done(&self) -> u64 {
        self.shared.progress.ctl.bytes_done.load(Ordering::Relaxed)
    }

    #[zbus(property)]
    fn bytes_total(&self) -> u64 {
        self.shared.progress.bytes_total.load(Ordering::Relaxed)
    }

    #[zbus(property)]
    fn source_vm_id(&self) -> String {
        self.shared.source_vm_id.clone()
    }

    #[zbus(property)]
    fn new_name(&self) -> String {
        self.shared.new_name.clone()
    }

    #[zbus(property)]
    fn cloned_vm_id(&self) -> String {
        self.status().cloned_vm_id
    }

    // Error messages can name disk paths, which ListVms does not show; the
    // change signal only says that they changed (readers Get them).
    #[zbus(property(emits_changed_signal = "invalidates"))]
    fn error(&self) -> String {
        self.status().error
    }

    #[zbus(property(emits_changed_signal = "invalidates"))]
    fn error_name(&self) -> String {
        self.status().error_name
    }
}

/// Publishes `BytesDone`/`BytesTotal` while the job runs, every
/// [`PROGRESS_INTERVAL`] when they changed, and once more at the end.
pub async fn publish_progress(conn: Connection, path: String, shared: Arc<JobRecord>) {
    let Ok(iface) = conn
        .object_server()
        .interface::<_, Job>(path.as_str())
        .await
    else {
        return;
    };
    let mut last = (0, 0);
    let mut tick = tokio::time::interval(PROGRESS_INTERVAL);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = shared.ended.notified() => {}
        }
        let running = shared.state() == JobState::Running;
        let now = (
            shared.progress.ctl.bytes_done.load(Ordering::Relaxed),
            shared.progress.bytes_total.load(Ordering::Relaxed),
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
            last = now;
        }
        if !running {
            return;
        }
    }
}

/// Announces the end of a job (after its progress publisher has finished):
/// final properties, then `Finished`; and takes the object off the bus after
/// `linger` ([`KEEP_FINISHED`] for jobs whose path the caller was given).
pub async fn announce_finish(conn: Connection, path: String, state: JobState, linger: Duration) {
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
    });
}
