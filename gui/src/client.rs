//! The D-Bus client of the vmclone service.
//!
//! The proxies mirror `data/org.vmclone.Manager.xml` and `data/org.vmclone.Job.xml`
//! (tests/contract.rs checks them against those files). zbus runs on a tokio
//! runtime in its own thread; the GTK side talks to it only through
//! async-channel, so no D-Bus call ever runs on the GTK main loop.

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;
use std::sync::Arc;

use futures_lite::StreamExt;
use gettextrs::gettext;
use tokio::sync::Mutex;
use zbus::zvariant::{OwnedObjectPath, OwnedValue, Value};
use zbus::{proxy, Connection};

pub const BUS_NAME: &str = "org.vmclone.Manager";

#[proxy(
    interface = "org.vmclone.Manager",
    default_service = "org.vmclone.Manager",
    default_path = "/org/vmclone/Manager",
    gen_blocking = false
)]
pub trait Manager {
    #[zbus(allow_interactive_auth)]
    fn clone_vm(&self, source_vm_id: &str, new_name: &str) -> zbus::Result<String>;

    #[zbus(allow_interactive_auth)]
    fn clone_vm_with_options(
        &self,
        source_vm_id: &str,
        new_name: &str,
        options: HashMap<&str, Value<'_>>,
    ) -> zbus::Result<String>;

    #[zbus(allow_interactive_auth)]
    fn clone_vms(
        &self,
        source_vm_id: &str,
        new_names: &[&str],
        options: HashMap<&str, Value<'_>>,
    ) -> zbus::Result<Vec<String>>;

    #[zbus(allow_interactive_auth)]
    fn start_clone(
        &self,
        source_vm_id: &str,
        new_name: &str,
        options: HashMap<&str, Value<'_>>,
    ) -> zbus::Result<OwnedObjectPath>;

    #[zbus(allow_interactive_auth)]
    fn list_vms(&self) -> zbus::Result<Vec<HashMap<String, OwnedValue>>>;

    #[zbus(allow_interactive_auth)]
    fn get_vm(&self, id_or_name: &str) -> zbus::Result<HashMap<String, OwnedValue>>;

    #[zbus(allow_interactive_auth)]
    fn check_name(&self, new_name: &str) -> zbus::Result<()>;

    #[zbus(allow_interactive_auth)]
    fn convert_to_template(&self, vm_id: &str) -> zbus::Result<()>;

    #[zbus(signal)]
    fn vm_cloned(
        &self,
        source_vm_id: &str,
        cloned_vm_id: &str,
        new_name: &str,
        timestamp: u64,
    ) -> zbus::Result<()>;

    #[zbus(signal)]
    fn vm_state_changed(&self, vm_id: &str, state: &str) -> zbus::Result<()>;

    #[zbus(property(emits_changed_signal = "const"))]
    fn version(&self) -> zbus::Result<String>;

    #[zbus(property(emits_changed_signal = "const"))]
    fn libvirt_uri(&self) -> zbus::Result<String>;
}

#[proxy(
    interface = "org.vmclone.Job",
    default_service = "org.vmclone.Manager",
    gen_blocking = false
)]
pub trait Job {
    #[zbus(allow_interactive_auth)]
    fn cancel(&self) -> zbus::Result<()>;

    #[zbus(signal)]
    fn finished(&self, state: &str) -> zbus::Result<()>;

    #[zbus(property)]
    fn state(&self) -> zbus::Result<String>;
    #[zbus(property)]
    fn bytes_done(&self) -> zbus::Result<u64>;
    #[zbus(property)]
    fn bytes_total(&self) -> zbus::Result<u64>;
    #[zbus(property)]
    fn source_vm_id(&self) -> zbus::Result<String>;
    #[zbus(property)]
    fn new_name(&self) -> zbus::Result<String>;
    #[zbus(property)]
    fn cloned_vm_id(&self) -> zbus::Result<String>;
    #[zbus(property)]
    fn error(&self) -> zbus::Result<String>;
    #[zbus(property)]
    fn error_name(&self) -> zbus::Result<String>;
}

/// What went wrong talking to the service, sorted by what the window shows.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ClientError {
    /// No bus, or nobody owns `org.vmclone.Manager`.
    #[error("{0}")]
    Unreachable(String),
    /// polkit (or the bus policy) said no.
    #[error("{0}")]
    NotAuthorized(String),
    /// An `org.vmclone.Error.*` (or other) error with the service's message.
    #[error("{message}")]
    Service { name: String, message: String },
    /// The service answered with something the contract does not allow.
    #[error("{0}")]
    BadReply(String),
}

impl ClientError {
    pub fn name(&self) -> Option<&str> {
        match self {
            ClientError::Service { name, .. } => Some(name),
            _ => None,
        }
    }

    /// What to tell a person: the service's own message when it sent one,
    /// otherwise a sentence instead of a D-Bus error name.
    pub fn user_message(&self) -> String {
        match self {
            ClientError::Service { message, .. } | ClientError::BadReply(message)
                if !message.is_empty() =>
            {
                message.clone()
            }
            _ => self.summary(),
        }
    }

    /// One translated sentence saying what went wrong, chosen by the error's
    /// name; the service's own (English) words are `user_message`.
    pub fn summary(&self) -> String {
        let name = match self {
            ClientError::NotAuthorized(_) => {
                return gettext("You are not allowed to clone virtual machines on this computer.")
            }
            ClientError::Unreachable(_) => {
                return gettext("The vmclone service stopped or cannot be reached.")
            }
            ClientError::BadReply(_) => {
                return gettext("The vmclone service sent an answer this app does not understand.")
            }
            ClientError::Service { name, .. } => name.as_str(),
        };
        if matches!(
            name,
            "org.freedesktop.DBus.Error.UnknownMethod"
                | "org.freedesktop.DBus.Error.UnknownInterface"
                | "org.freedesktop.DBus.Error.UnknownProperty"
        ) {
            // The service answers, but not to what this version of the app asks.
            return gettext(
                "The vmclone service is older than this app. Update the service, then try again.",
            );
        }
        match name.strip_prefix("org.vmclone.Error.").unwrap_or_default() {
            "NotFound" => gettext("The virtual machine no longer exists."),
            "InvalidName" => gettext("The new name is not a valid VM name."),
            "NameExists" => gettext("Another virtual machine already has this name."),
            "SourceNotShutOff" => gettext("The virtual machine must be shut off to be cloned."),
            "InvalidOption" => gettext("The clone settings were refused."),
            "MacInUse" => gettext("A network address of the clone is already in use."),
            "Storage" => gettext("The disks could not be copied."),
            "Libvirt" => gettext("The virtualization service reported an error."),
            "NotAuthorized" => {
                gettext("You are not allowed to clone virtual machines on this computer.")
            }
            "NotATemplate" => gettext("Linked clones can only be made from a template."),
            "Cancelled" => gettext("Cloning was cancelled."),
            _ => gettext("The vmclone service reported an error."),
        }
    }
}

impl From<zbus::Error> for ClientError {
    fn from(err: zbus::Error) -> Self {
        match err {
            zbus::Error::MethodError(name, message, _) => {
                // Without a message, `summary` still has a sentence by name.
                let message = message.unwrap_or_default();
                match name.as_str() {
                    "org.vmclone.Error.NotAuthorized"
                    | "org.freedesktop.DBus.Error.AccessDenied"
                    | "org.freedesktop.DBus.Error.InteractiveAuthorizationRequired" => {
                        ClientError::NotAuthorized(message)
                    }
                    "org.freedesktop.DBus.Error.ServiceUnknown"
                    | "org.freedesktop.DBus.Error.NameHasNoOwner"
                    | "org.freedesktop.DBus.Error.NoReply"
                    | "org.freedesktop.DBus.Error.Disconnected"
                    | "org.freedesktop.DBus.Error.UnknownObject" => {
                        ClientError::Unreachable(message)
                    }
                    _ => ClientError::Service {
                        name: name.to_string(),
                        message,
                    },
                }
            }
            zbus::Error::FDO(fdo) => match *fdo {
                zbus::fdo::Error::AccessDenied(m)
                | zbus::fdo::Error::InteractiveAuthorizationRequired(m) => {
                    ClientError::NotAuthorized(m)
                }
                other => ClientError::Unreachable(other.to_string()),
            },
            other => ClientError::Unreachable(other.to_string()),
        }
    }
}

/// One VM as `ListVms`/`GetVm` describe it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct VmInfo {
    pub id: String,
    pub name: String,
    pub state: String,
    pub vcpus: u32,
    pub memory_mib: u64,
    pub disks: u32,
    pub is_template: bool,
}

impl VmInfo {
    fn from_dict(dict: &HashMap<String, OwnedValue>) -> Result<VmInfo, ClientError> {
        fn get<T>(dict: &HashMap<String, OwnedValue>, key: &str) -> Result<T, ClientError>
        where
            T: TryFrom<OwnedValue>,
        {
            dict.get(key)
                .and_then(|v| v.try_clone().ok())
                .and_then(|v| T::try_from(v).ok())
                .ok_or_else(|| {
                    ClientError::BadReply(
                        gettext("The service sent a VM without a valid “{key}”.")
                            .replace("{key}", key),
                    )
                })
        }
        Ok(VmInfo {
            id: get(dict, "id")?,
            name: get(dict, "name")?,
            state: get(dict, "state")?,
            vcpus: get(dict, "vcpus")?,
            memory_mib: get(dict, "memory-mib")?,
            disks: get(dict, "disks")?,
            // Older services do not know templates.
            is_template: get(dict, "is-template").unwrap_or(false),
        })
    }
}

/// Storage for a new clone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Storage {
    Copy,
    Linked,
}

/// Changes pushed by the service, without being asked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ServiceEvent {
    VmChanged(VmInfo),
    VmRemoved(String),
    /// The service left the bus (stopped or crashed).
    ServiceLost,
    /// The service (re)appeared on the bus.
    ServiceAppeared,
}

/// Progress of one clone job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JobEvent {
    Progress {
        done: u64,
        total: u64,
    },
    /// The service refused to cancel; the job goes on.
    CancelFailed(ClientError),
    Finished(JobOutcome),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JobOutcome {
    Succeeded { cloned_vm_id: String },
    Cancelled,
    Failed(ClientError),
}

/// A running clone, seen from GTK.
pub struct JobHandle {
    pub events: async_channel::Receiver<JobEvent>,
    cancel: async_channel::Sender<()>,
}

impl JobHandle {
    /// Asks the service to stop; the outcome still arrives as `Finished`.
    pub fn cancel(&self) {
        // The worker may already be gone when the job finished; nothing to cancel then.
        let _ = self.cancel.try_send(());
    }
}

type Reply<T> = async_channel::Sender<Result<T, ClientError>>;
type ListResult = Result<Vec<VmInfo>, ClientError>;

enum Request {
    ListVms(Reply<Vec<VmInfo>>),
    CheckName(String, Reply<()>),
    StartClone {
        source: String,
        name: String,
        storage: Storage,
        reply: Reply<JobHandle>,
    },
}

/// Handle used by the GTK side. Cheap to clone.
#[derive(Clone)]
pub struct Client {
    requests: async_channel::Sender<Request>,
    /// The first list, asked for as soon as the thread starts so the bus
    /// round trip overlaps GTK's start-up; the first `list_vms` takes it.
    first_list: Rc<RefCell<Option<async_channel::Receiver<ListResult>>>>,
}

impl Client {
    /// Starts the D-Bus thread. `address` is a bus address; `None` is the
    /// system bus (`DBUS_SYSTEM_BUS_ADDRESS` is honoured).
    pub fn start(address: Option<String>) -> (Client, async_channel::Receiver<ServiceEvent>) {
        let (requests, incoming) = async_channel::unbounded();
        let (events_tx, events) = async_channel::unbounded();
        std::thread::Builder::new()
            .name("vmclone-dbus".into())
            .spawn(move || {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("tokio runtime");
                runtime.block_on(Worker::new(address, events_tx).run(incoming));
            })
            .expect("spawn the D-Bus thread");
        let (tx, first) = async_channel::bounded(1);
        // Cannot fail: the channel is unbounded and its receiver is alive.
        let _ = requests.try_send(Request::ListVms(tx));
        let client = Client {
            requests,
            first_list: Rc::new(RefCell::new(Some(first))),
        };
        (client, events)
    }

    async fn ask<T>(&self, make: impl FnOnce(Reply<T>) -> Request) -> Result<T, ClientError> {
        let (tx, rx) = async_channel::bounded(1);
        let gone = || ClientError::Unreachable("The D-Bus thread stopped.".into());
        self.requests.send(make(tx)).await.map_err(|_| gone())?;
        rx.recv().await.map_err(|_| gone())?
    }

    pub async fn list_vms(&self) -> Result<Vec<VmInfo>, ClientError> {
        let first = self.first_list.borrow_mut().take();
        match first {
            Some(first) => first
                .recv()
                .await
                .map_err(|_| ClientError::Unreachable("The D-Bus thread stopped.".into()))?,
            None => self.ask(Request::ListVms).await,
        }
    }

    /// Ok when `name` is a valid, free name for a clone.
    pub async fn check_name(&self, name: &str) -> Result<(), ClientError> {
        let name = name.to_owned();
        self.ask(|reply| Request::CheckName(name, reply)).await
    }

    pub async fn start_clone(
        &self,
        source: &str,
        name: &str,
        storage: Storage,
    ) -> Result<JobHandle, ClientError> {
        let (source, name) = (source.to_owned(), name.to_owned());
        self.ask(|reply| Request::StartClone {
            source,
            name,
            storage,
            reply,
        })
        .await
    }
}

struct Worker {
    address: Option<String>,
    connection: Mutex<Option<Connection>>,
    events: async_channel::Sender<ServiceEvent>,
}

impl Worker {
    fn new(address: Option<String>, events: async_channel::Sender<ServiceEvent>) -> Worker {
        Worker {
            address,
            connection: Mutex::default(),
            events,
        }
    }

    async fn run(self, incoming: async_channel::Receiver<Request>) {
        let this = Arc::new(self);
        while let Ok(request) = incoming.recv().await {
            let this = this.clone();
            // Each request on its own task, so a long call never blocks a quick one.
            tokio::spawn(async move { this.handle(request).await });
        }
    }

    async fn handle(self: Arc<Self>, request: Request) {
        match request {
            Request::ListVms(reply) => {
                let result = self.list_vms().await;
                let _ = reply.send(result).await;
            }
            Request::CheckName(name, reply) => {
                let result = async {
                    self.manager().await?.check_name(&name).await?;
                    Ok(())
                }
                .await;
                let _ = reply.send(result).await;
            }
            Request::StartClone {
                source,
                name,
                storage,
                reply,
            } => {
                let result = self.start_clone(&source, &name, storage).await;
                let _ = reply.send(result).await;
            }
        }
    }

    /// The bus connection, made on first use (and again after it broke); the
    /// first use also subscribes to the service's signals.
    async fn connection(self: &Arc<Self>) -> Result<Connection, ClientError> {
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
        let watcher = self.clone();
        let watched = conn.clone();
        // Subscribe before anyone uses the connection, so no change slips through.
        let ready = watcher.subscribe(&watched).await?;
        tokio::spawn(async move { watcher.watch(watched, ready).await });
        *slot = Some(conn.clone());
        Ok(conn)
    }

    async fn manager(self: &Arc<Self>) -> Result<ManagerProxy<'static>, ClientError> {
        let conn = self.connection().await?;
        Ok(ManagerProxy::builder(&conn)
            .cache_properties(zbus::proxy::CacheProperties::No)
            .build()
            .await?)
    }

    async fn list_vms(self: &Arc<Self>) -> Result<Vec<VmInfo>, ClientError> {
        let dicts = self.manager().await?.list_vms().await?;
        dicts.iter().map(VmInfo::from_dict).collect()
    }

    async fn subscribe(&self, conn: &Connection) -> Result<Subscriptions, ClientError> {
        let manager = ManagerProxy::builder(conn)
            .cache_properties(zbus::proxy::CacheProperties::No)
            .build()
            .await?;
        let bus = zbus::fdo::DBusProxy::new(conn).await?;
        Ok(Subscriptions {
            cloned: manager.receive_vm_cloned().await?,
            state: manager.receive_vm_state_changed().await?,
            owner: bus
                .receive_name_owner_changed_with_args(&[(0, BUS_NAME)])
                .await?,
            manager,
        })
    }

    /// Turns the service's signals into [`ServiceEvent`]s until the bus goes
    /// away. Holds `_conn` so the subscriptions outlive every request.
    async fn watch(self: Arc<Self>, _conn: Connection, mut subs: Subscriptions) {
        loop {
            let event = tokio::select! {
                Some(signal) = subs.cloned.next() => match signal.args() {
                    Ok(args) => self.describe(&subs.manager, args.cloned_vm_id()).await,
                    Err(_) => None,
                },
                Some(signal) = subs.state.next() => match signal.args() {
                    Ok(args) if *args.state() == "undefined" => {
                        Some(ServiceEvent::VmRemoved(args.vm_id().to_string()))
                    }
                    Ok(args) => self.describe(&subs.manager, args.vm_id()).await,
                    Err(_) => None,
                },
                Some(signal) = subs.owner.next() => match signal.args() {
                    Ok(args) if args.new_owner().is_some() => Some(ServiceEvent::ServiceAppeared),
                    Ok(_) => Some(ServiceEvent::ServiceLost),
                    Err(_) => None,
                },
                else => break,
            };
            if let Some(event) = event {
                if self.events.send(event).await.is_err() {
                    return;
                }
            }
        }
        // The bus connection ended: forget it so the next request reconnects.
        self.connection.lock().await.take();
        let _ = self.events.send(ServiceEvent::ServiceLost).await;
    }

    /// The current description of `id`, or its removal when it is gone.
    async fn describe(&self, manager: &ManagerProxy<'_>, id: &str) -> Option<ServiceEvent> {
        match manager.get_vm(id).await.map_err(ClientError::from) {
            Ok(dict) => VmInfo::from_dict(&dict).ok().map(ServiceEvent::VmChanged),
            Err(ClientError::Service { name, .. }) if name == "org.vmclone.Error.NotFound" => {
                Some(ServiceEvent::VmRemoved(id.to_owned()))
            }
            Err(_) => None,
        }
    }

    async fn start_clone(
        self: &Arc<Self>,
        source: &str,
        name: &str,
        storage: Storage,
    ) -> Result<JobHandle, ClientError> {
        let manager = self.manager().await?;
        let mut options = HashMap::new();
        if storage == Storage::Linked {
            options.insert("storage", Value::from("linked"));
        }
        let path = manager.start_clone(source, name, options).await?;
        let job = JobProxy::builder(manager.inner().connection())
            .path(path)?
            .build()
            .await?;
        let (events_tx, events) = async_channel::unbounded();
        let (cancel, cancel_rx) = async_channel::bounded(1);
        tokio::spawn(follow_job(job, events_tx, cancel_rx));
        Ok(JobHandle { events, cancel })
    }
}

struct Subscriptions {
    manager: ManagerProxy<'static>,
    cloned: VmClonedStream,
    state: VmStateChangedStream,
    owner: zbus::fdo::NameOwnerChangedStream,
}

/// Forwards a job's progress until it finishes. The proxy caches properties:
/// it fetched them after subscribing to PropertiesChanged, so a job that
/// finished before we looked is still seen as finished.
async fn follow_job(
    job: JobProxy<'static>,
    events: async_channel::Sender<JobEvent>,
    cancel: async_channel::Receiver<()>,
) {
    let mut finished = match job.receive_finished().await {
        Ok(stream) => stream,
        Err(e) => {
            let outcome = JobOutcome::Failed(e.into());
            let _ = events.send(JobEvent::Finished(outcome)).await;
            return;
        }
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
        Err(e) => {
            let _ = events.send(JobEvent::Finished(JobOutcome::Failed(e))).await;
            return;
        }
    };
    let mut done_changes = job.receive_bytes_done_changed().await;
    let mut total_changes = job.receive_bytes_total_changed().await;
    let mut cancelling = false;
    loop {
        match job.state().await.as_deref() {
            Ok("running") => {}
            Ok(_) => break,
            Err(e) => {
                let _ = events
                    .send(JobEvent::Finished(JobOutcome::Failed(e.clone().into())))
                    .await;
                return;
            }
        }
        let done = job.bytes_done().await.unwrap_or(0);
        let total = job.bytes_total().await.unwrap_or(0);
        if events
            .send(JobEvent::Progress { done, total })
            .await
            .is_err()
        {
            return;
        }
        tokio::select! {
            _ = finished.next() => break,
            Some(_) = done_changes.next() => {}
            Some(_) = total_changes.next() => {}
            Some(signal) = owner.next() => {
                if signal.args().is_ok_and(|a| a.new_owner().is_none()) {
                    let lost = ClientError::Unreachable("the service left the bus".into());
                    let _ = events.send(JobEvent::Finished(JobOutcome::Failed(lost))).await;
                    return;
                }
            }
            Ok(()) = cancel.recv(), if !cancelling => {
                cancelling = true;
                if let Err(e) = job.cancel().await {
                    cancelling = false;
                    if events.send(JobEvent::CancelFailed(e.into())).await.is_err() {
                        return;
                    }
                }
            }
            else => break,
        }
    }
    let outcome = outcome_of(&job).await;
    let _ = events.send(JobEvent::Finished(outcome)).await;
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

#[cfg(test)]
mod tests {
    use super::*;

    fn dict(entries: &[(&str, Value<'_>)]) -> HashMap<String, OwnedValue> {
        entries
            .iter()
            .map(|(k, v)| (k.to_string(), v.try_to_owned().expect("owned value")))
            .collect()
    }

    #[test]
    fn vm_dictionaries_become_vm_info() {
        let vm = dict(&[
            ("id", Value::from("6f0e2d1c-5b4a-4c3d-9e8f-7a6b5c4d3e21")),
            ("name", Value::from("web01")),
            ("state", Value::from("shutoff")),
            ("vcpus", Value::U32(2)),
            ("memory-mib", Value::U64(2048)),
            ("disks", Value::U32(1)),
            ("interfaces", Value::U32(1)),
            ("is-template", Value::Bool(true)),
        ]);
        let info = VmInfo::from_dict(&vm).expect("a valid VM");
        assert_eq!(info.name, "web01");
        assert_eq!((info.vcpus, info.memory_mib, info.disks), (2, 2048, 1));
        assert!(info.is_template);
    }

    #[test]
    fn a_vm_with_a_wrong_type_is_refused_by_name() {
        let vm = dict(&[
            ("id", Value::from("x")),
            ("name", Value::from("web01")),
            ("state", Value::from("shutoff")),
            ("vcpus", Value::from("two")),
            ("memory-mib", Value::U64(2048)),
            ("disks", Value::U32(1)),
        ]);
        let err = VmInfo::from_dict(&vm).expect_err("vcpus is not a u32");
        assert!(matches!(err, ClientError::BadReply(_)));
        assert!(err.to_string().contains("vcpus"), "{err}");
    }

    #[test]
    fn bus_errors_sort_into_what_the_window_shows() {
        let reply = |name: &str| {
            let call = zbus::Message::method_call("/org/vmclone/Manager", "ListVms")
                .expect("call")
                .build(&())
                .expect("message");
            let err = zbus::Message::error(&call.header(), name)
                .expect("error")
                .build(&("the message",))
                .expect("message");
            ClientError::from(zbus::Error::MethodError(
                name.try_into().expect("error name"),
                Some("the message".into()),
                err,
            ))
        };
        assert!(matches!(
            reply("org.vmclone.Error.NotAuthorized"),
            ClientError::NotAuthorized(m) if m == "the message"
        ));
        assert!(matches!(
            reply("org.freedesktop.DBus.Error.AccessDenied"),
            ClientError::NotAuthorized(_)
        ));
        assert!(matches!(
            reply("org.freedesktop.DBus.Error.ServiceUnknown"),
            ClientError::Unreachable(_)
        ));
        let old_service = reply("org.freedesktop.DBus.Error.UnknownMethod");
        assert!(
            old_service.summary().contains("older than this app"),
            "{}",
            old_service.summary()
        );
        let exists = reply("org.vmclone.Error.NameExists");
        assert_eq!(exists.name(), Some("org.vmclone.Error.NameExists"));
        assert_eq!(exists.to_string(), "the message");
        // The toast's sentence comes from the name; Details keeps the service's words.
        assert_eq!(
            exists.summary(),
            "Another virtual machine already has this name."
        );
        assert_eq!(exists.user_message(), "the message");
    }

    #[test]
    fn an_error_without_a_message_reads_as_a_sentence_not_a_bus_name() {
        let call = zbus::Message::method_call("/org/vmclone/Manager", "StartClone")
            .expect("call")
            .build(&())
            .expect("message");
        let name = "org.vmclone.Error.Storage";
        let bare = zbus::Message::error(&call.header(), name)
            .expect("error")
            .build(&())
            .expect("message");
        let err = ClientError::from(zbus::Error::MethodError(
            name.try_into().expect("error name"),
            None,
            bare,
        ));
        assert_eq!(err.user_message(), "The disks could not be copied.");
        // A job that failed with an empty Error property, and an unknown name.
        let unknown = ClientError::Service {
            name: "org.vmclone.Error.SomethingNew".into(),
            message: String::new(),
        };
        assert_eq!(
            unknown.user_message(),
            "The vmclone service reported an error."
        );
        assert!(!unknown.user_message().contains("org."));
    }
}
