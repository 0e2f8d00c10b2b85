//! Several clones of one source with one `CloneVms` call. The service checks
//! every name first, then clones them one after the other, each as a job on
//! the bus whose path the caller is never given: each job is found by the
//! `PropertiesChanged` signals it sends (its `SourceVmId` and `NewName` say
//! which clone it is), so every clone has its own progress and Cancel.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use futures_lite::StreamExt;
use zbus::message::Type;
use zbus::zvariant::{OwnedObjectPath, OwnedValue, Value};
use zbus::{Connection, MatchRule, Message, MessageStream};

use super::error::ClientError;
use super::job::{self, JobEvent, JobHandle, JobOutcome, JobTarget};
use vmclone_bus::{ManagerProxy, BUS_NAME};

const JOBS_PATH: &str = "/org/vmclone/Manager/jobs";
const JOB_INTERFACE: &str = "org.vmclone.Job";

/// Starts `CloneVms` for `names` and returns a handle per name, in order.
/// The signals are subscribed to before the call, so no job's start is missed.
pub(super) async fn clone_vms(
    manager: ManagerProxy<'static>,
    source: String,
    names: Vec<String>,
    options: HashMap<&'static str, Value<'static>>,
) -> Result<Vec<JobHandle>, ClientError> {
    let conn = manager.inner().connection().clone();
    let changes = subscribe(
        &conn,
        "org.freedesktop.DBus.Properties",
        "PropertiesChanged",
    )
    .await?;
    let finished = subscribe(&conn, JOB_INTERFACE, "Finished").await?;
    let mut handles = Vec::with_capacity(names.len());
    let mut clones = Vec::with_capacity(names.len());
    for name in &names {
        let (events, receiver) = async_channel::unbounded();
        let target = Arc::new(JobTarget::default());
        handles.push(JobHandle::new(receiver, &conn, target.clone()));
        let _ = events.send(JobEvent::Waiting).await;
        clones.push(Member {
            name: name.clone(),
            events,
            target,
            path: None,
            progress: (0, 0),
            phase: String::new(),
            cloned_vm_id: None,
            ended: false,
        });
    }
    let batch = Batch {
        conn,
        source: source.clone(),
        clones,
        foreign: HashSet::new(),
    };
    tokio::spawn(batch.run(manager, names, options, changes, finished));
    Ok(handles)
}

async fn subscribe(
    conn: &Connection,
    interface: &'static str,
    member: &'static str,
) -> Result<MessageStream, ClientError> {
    let rule = MatchRule::builder()
        .msg_type(Type::Signal)
        .sender(BUS_NAME)?
        .interface(interface)?
        .member(member)?
        .path_namespace(JOBS_PATH)?
        .build();
    Ok(MessageStream::for_match_rule(rule, conn, None).await?)
}

/// One clone of the batch.
struct Member {
    name: String,
    events: async_channel::Sender<JobEvent>,
    target: Arc<JobTarget>,
    /// Its job, once found.
    path: Option<OwnedObjectPath>,
    progress: (u64, u64),
    phase: String,
    cloned_vm_id: Option<String>,
    /// Its outcome was sent.
    ended: bool,
}

impl Member {
    async fn send(&self, event: JobEvent) {
        let _ = self.events.send(event).await;
    }

    async fn end(&mut self, outcome: JobOutcome) {
        if !self.ended {
            self.ended = true;
            self.send(JobEvent::Finished(outcome)).await;
        }
    }

    /// Reads the job's properties from a `PropertiesChanged` or `GetAll`.
    async fn update(&mut self, props: &HashMap<String, OwnedValue>) {
        let number = |key: &str| props.get(key).and_then(|v| u64::try_from(v).ok());
        if let Some(done) = number("BytesDone") {
            self.progress.0 = done;
        }
        if let Some(total) = number("BytesTotal") {
            self.progress.1 = total;
        }
        if let Some(phase) = text(props, "Phase") {
            self.phase = phase;
        }
        if let Some(id) = text(props, "ClonedVmId").filter(|id| !id.is_empty()) {
            self.cloned_vm_id = Some(id);
        }
        match text(props, "State").as_deref() {
            Some("queued") => self.send(JobEvent::Waiting).await,
            Some("running") | None if !self.ended => {
                let (done, total) = self.progress;
                let phase = self.phase.clone();
                self.send(JobEvent::Progress { done, total, phase }).await;
            }
            _ => {}
        }
    }
}

fn text(props: &HashMap<String, OwnedValue>, key: &str) -> Option<String> {
    props
        .get(key)
        .and_then(|v| v.try_clone().ok())
        .and_then(|v| String::try_from(v).ok())
}

struct Batch {
    conn: Connection,
    source: String,
    clones: Vec<Member>,
    /// Jobs of other clones (other batches, other clients): ignored.
    foreign: HashSet<OwnedObjectPath>,
}

impl Batch {
    async fn run(
        mut self,
        manager: ManagerProxy<'static>,
        names: Vec<String>,
        options: HashMap<&'static str, Value<'static>>,
        mut changes: MessageStream,
        mut finished: MessageStream,
    ) {
        let source = self.source.clone();
        let names: Vec<&str> = names.iter().map(String::as_str).collect();
        let call = manager.clone_vms(&source, &names, options);
        futures_lite::pin!(call);
        loop {
            tokio::select! {
                results = &mut call => break self.end(results.map_err(ClientError::from)).await,
                Some(Ok(msg)) = changes.next() => self.properties_changed(&msg).await,
                Some(Ok(msg)) = finished.next() => self.job_finished(&msg).await,
            }
        }
    }

    fn clone_at(&mut self, path: &OwnedObjectPath) -> Option<&mut Member> {
        self.clones
            .iter_mut()
            .find(|c| c.path.as_ref() == Some(path))
    }

    async fn properties_changed(&mut self, msg: &Message) {
        let Some(path) = msg
            .header()
            .path()
            .map(|p| OwnedObjectPath::from(p.to_owned()))
        else {
            return;
        };
        let Ok((interface, changed, _)) =
            msg.body()
                .deserialize::<(String, HashMap<String, OwnedValue>, Vec<String>)>()
        else {
            return;
        };
        if interface != JOB_INTERFACE || self.foreign.contains(&path) {
            return;
        }
        if let Some(clone) = self.clone_at(&path) {
            return clone.update(&changed).await;
        }
        self.identify(path).await;
    }

    /// A job not seen before: one of ours when its source and new name are.
    async fn identify(&mut self, path: OwnedObjectPath) {
        let Some(all) = job_properties(&self.conn, &path).await else {
            return;
        };
        let ours = text(&all, "SourceVmId").as_deref() == Some(self.source.as_str());
        let name = text(&all, "NewName").unwrap_or_default();
        let clone = self
            .clones
            .iter_mut()
            .find(|c| ours && c.path.is_none() && !c.ended && c.name == name);
        let Some(clone) = clone else {
            self.foreign.insert(path);
            return;
        };
        clone.path = Some(path.clone());
        if clone.target.found(path.clone()) {
            // Cancel was pressed while this clone was waiting its turn.
            let conn = self.conn.clone();
            tokio::spawn(async move { job::cancel(&conn, path).await });
        }
        clone.update(&all).await;
    }

    async fn job_finished(&mut self, msg: &Message) {
        let Some(path) = msg
            .header()
            .path()
            .map(|p| OwnedObjectPath::from(p.to_owned()))
        else {
            return;
        };
        let Ok(state) = msg.body().deserialize::<String>() else {
            return;
        };
        let Some(clone) = self.clone_at(&path) else {
            return;
        };
        // A failure's message comes with the call's results.
        match (state.as_str(), clone.cloned_vm_id.clone()) {
            ("succeeded", Some(cloned_vm_id)) => {
                clone.end(JobOutcome::Succeeded { cloned_vm_id }).await
            }
            ("cancelled", _) => clone.end(JobOutcome::Cancelled).await,
            _ => {}
        }
    }

    /// The call returned: every clone not ended yet ends as its result says.
    async fn end(mut self, results: Result<Vec<String>, ClientError>) {
        for (i, clone) in self.clones.iter_mut().enumerate() {
            let outcome = match &results {
                Ok(results) => match results.get(i) {
                    Some(result) => outcome_of_result(result),
                    None => JobOutcome::Failed(ClientError::BadReply(
                        "CloneVms returned fewer results than names".into(),
                    )),
                },
                Err(err) => JobOutcome::Failed(err.clone()),
            };
            clone.end(outcome).await;
        }
    }
}

async fn job_properties(
    conn: &Connection,
    path: &OwnedObjectPath,
) -> Option<HashMap<String, OwnedValue>> {
    let props = zbus::fdo::PropertiesProxy::builder(conn)
        .destination(BUS_NAME)
        .ok()?
        .path(path.clone())
        .ok()?
        .cache_properties(zbus::proxy::CacheProperties::No)
        .build()
        .await
        .ok()?;
    props
        .get_all(zbus::names::InterfaceName::from_static_str_unchecked(
            JOB_INTERFACE,
        ))
        .await
        .ok()
}

/// One entry of `CloneVms`' results: the clone's UUID, or
/// `org.vmclone.Error.Name: message`.
fn outcome_of_result(result: &str) -> JobOutcome {
    match result.split_once(": ") {
        Some(("org.vmclone.Error.Cancelled", _)) => JobOutcome::Cancelled,
        Some((name, message)) if name.starts_with("org.") && !name.contains(' ') => {
            JobOutcome::Failed(ClientError::Service {
                name: name.to_owned(),
                message: message.to_owned(),
            })
        }
        _ => JobOutcome::Succeeded {
            cloned_vm_id: result.to_owned(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn results_read_as_outcomes() {
        assert_eq!(
            outcome_of_result("6f0e2d1c-5b4a-4c3d-9e8f-7a6b5c4d3e21"),
            JobOutcome::Succeeded {
                cloned_vm_id: "6f0e2d1c-5b4a-4c3d-9e8f-7a6b5c4d3e21".into()
            }
        );
        assert_eq!(
            outcome_of_result("org.vmclone.Error.Cancelled: Cloning was cancelled."),
            JobOutcome::Cancelled
        );
        let JobOutcome::Failed(err) =
            outcome_of_result("org.vmclone.Error.Storage: No space left on /srv: 2 GiB needed")
        else {
            panic!("an error result is a failure");
        };
        assert_eq!(err.name(), Some("org.vmclone.Error.Storage"));
        assert_eq!(err.user_message(), "No space left on /srv: 2 GiB needed");
    }
}
