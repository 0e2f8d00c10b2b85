//! libvirt domain lifecycle events (define, undefine, start, stop, ...),
//! forwarded to the async side, which announces them as `VmStateChanged`.
//! The `virt` crate does not wrap event callbacks, so this uses `virt::sys`.

use std::os::raw::{c_char, c_int, c_void};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, Weak};

use tokio::sync::mpsc::UnboundedSender;
use virt::connect::Connect;
use virt::sys;

/// A lifecycle event: the domain's UUID and whether it was undefined.
#[derive(Debug)]
pub struct LifecycleEvent {
    pub uuid: String,
    pub undefined: bool,
}

/// Where libvirt's lifecycle events go: to the async side (for
/// `VmStateChanged`), and to the clones watching their source.
pub struct EventSink {
    tx: UnboundedSender<LifecycleEvent>,
    watches: Mutex<Vec<Weak<StartWatch>>>,
}

/// A clone's watch on its source: set (and the clone's copies told to stop)
/// as soon as the source starts or resumes.
#[derive(Debug)]
pub struct StartWatch {
    uuid: String,
    started: AtomicBool,
    stop: Arc<AtomicBool>,
}

impl StartWatch {
    pub fn started(&self) -> bool {
        self.started.load(Ordering::SeqCst)
    }
}

impl EventSink {
    pub fn new(tx: UnboundedSender<LifecycleEvent>) -> Arc<EventSink> {
        Arc::new(EventSink {
            tx,
            watches: Mutex::new(Vec::new()),
        })
    }

    /// Watches the domain `uuid` for starts until the watch is dropped;
    /// a start also sets `stop`.
    pub fn watch_starts(&self, uuid: &str, stop: Arc<AtomicBool>) -> Arc<StartWatch> {
        let watch = Arc::new(StartWatch {
            uuid: uuid.to_ascii_lowercase(),
            started: AtomicBool::new(false),
            stop,
        });
        let mut watches = self.watches.lock().expect("watches lock");
        watches.retain(|w| w.strong_count() > 0);
        watches.push(Arc::downgrade(&watch));
        watch
    }

    fn deliver(&self, uuid: String, event: c_int) {
        let started = event == sys::VIR_DOMAIN_EVENT_STARTED as c_int
            || event == sys::VIR_DOMAIN_EVENT_RESUMED as c_int;
        if started {
            for watch in self.watches.lock().expect("watches lock").iter() {
                if let Some(w) = watch
                    .upgrade()
                    .filter(|w| w.uuid.eq_ignore_ascii_case(&uuid))
                {
                    w.started.store(true, Ordering::SeqCst);
                    w.stop.store(true, Ordering::SeqCst);
                }
            }
        }
        let _ = self.tx.send(LifecycleEvent {
            uuid,
            undefined: event == sys::VIR_DOMAIN_EVENT_UNDEFINED as c_int,
        });
    }
}

#[derive(Debug, thiserror::Error)]
#[error("Cannot watch libvirt domain events: {0}")]
pub struct EventError(String);

/// Installs libvirt's default event loop and runs it on its own thread. Must
/// be called before the connection is opened.
pub fn start_event_loop() -> Result<(), EventError> {
    virt::event::event_register_default_impl().map_err(|e| EventError(e.message().into()))?;
    std::thread::Builder::new()
        .name("libvirt-events".into())
        .spawn(|| loop {
            if let Err(e) = virt::event::event_run_default_impl() {
                tracing::error!("libvirt event loop: {}", e.message());
                std::thread::sleep(std::time::Duration::from_secs(1));
            }
        })
        .map_err(|e| EventError(e.to_string()))?;
    Ok(())
}

unsafe extern "C" fn on_lifecycle(
    _conn: sys::virConnectPtr,
    dom: sys::virDomainPtr,
    event: c_int,
    _detail: c_int,
    opaque: *mut c_void,
) -> c_int {
    let sink = &*(opaque as *const EventSink);
    let mut buf = [0 as c_char; sys::VIR_UUID_STRING_BUFLEN as usize];
    if sys::virDomainGetUUIDString(dom, buf.as_mut_ptr()) == 0 {
        let uuid = std::ffi::CStr::from_ptr(buf.as_ptr())
            .to_string_lossy()
            .into_owned();
        sink.deliver(uuid, event);
    }
    0
}

unsafe extern "C" fn free_sink(opaque: *mut c_void) {
    drop(Arc::from_raw(opaque as *const EventSink));
}

/// Sends every lifecycle event of every domain on `conn` to `sink`, for the
/// connection's lifetime.
pub fn watch_lifecycle(conn: &Connect, sink: Arc<EventSink>) -> Result<(), EventError> {
    let opaque = Arc::into_raw(sink) as *mut c_void;
    let callback: sys::virConnectDomainEventCallback = Some(on_lifecycle);
    // SAFETY: libvirt calls the lifecycle callback with the lifecycle
    // signature; the generic type is only how the API takes it. `opaque`
    // stays valid until libvirt calls `free_sink`.
    let id = unsafe {
        sys::virConnectDomainEventRegisterAny(
            conn.as_ptr(),
            std::ptr::null_mut(),
            sys::VIR_DOMAIN_EVENT_ID_LIFECYCLE as c_int,
            std::mem::transmute::<
                sys::virConnectDomainEventCallback,
                sys::virConnectDomainEventGenericCallback,
            >(callback),
            opaque,
            Some(free_sink),
        )
    };
    if id < 0 {
        // SAFETY: libvirt did not take ownership on failure.
        unsafe { free_sink(opaque) };
        return Err(EventError(
            virt::error::Error::last_error().message().into(),
        ));
    }
    Ok(())
}
