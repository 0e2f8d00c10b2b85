//! libvirt domain lifecycle events (define, undefine, start, stop, ...),
//! forwarded to the async side, which announces them as `VmStateChanged`.
//! The `virt` crate does not wrap event callbacks, so this uses `virt::sys`.

use std::os::raw::{c_char, c_int, c_void};

use tokio::sync::mpsc::UnboundedSender;
use virt::connect::Connect;
use virt::sys;

/// A lifecycle event: the domain's UUID and whether it was undefined.
#[derive(Debug)]
pub struct LifecycleEvent {
    pub uuid: String,
    pub undefined: bool,
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
    let tx = &*(opaque as *const UnboundedSender<LifecycleEvent>);
    let mut buf = [0 as c_char; sys::VIR_UUID_STRING_BUFLEN as usize];
    if sys::virDomainGetUUIDString(dom, buf.as_mut_ptr()) == 0 {
        let uuid = std::ffi::CStr::from_ptr(buf.as_ptr())
            .to_string_lossy()
            .into_owned();
        let _ = tx.send(LifecycleEvent {
            uuid,
            undefined: event == sys::VIR_DOMAIN_EVENT_UNDEFINED as c_int,
        });
    }
    0
}

unsafe extern "C" fn free_sender(opaque: *mut c_void) {
    drop(Box::from_raw(
        opaque as *mut UnboundedSender<LifecycleEvent>,
    ));
}

/// Sends every lifecycle event of every domain on `conn` to `tx`, for the
/// connection's lifetime.
pub fn watch_lifecycle(
    conn: &Connect,
    tx: UnboundedSender<LifecycleEvent>,
) -> Result<(), EventError> {
    let opaque = Box::into_raw(Box::new(tx)) as *mut c_void;
    let callback: sys::virConnectDomainEventCallback = Some(on_lifecycle);
    // SAFETY: libvirt calls the lifecycle callback with the lifecycle
    // signature; the generic type is only how the API takes it. `opaque`
    // stays valid until libvirt calls `free_sender`.
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
            Some(free_sender),
        )
    };
    if id < 0 {
        // SAFETY: libvirt did not take ownership on failure.
        unsafe { free_sender(opaque) };
        return Err(EventError(
            virt::error::Error::last_error().message().into(),
        ));
    }
    Ok(())
}
