//! The service survives a libvirtd restart (a package upgrade does one):
//! calls work again and lifecycle events flow again, without restarting
//! vmclone-service. A test binary of its own, since it restarts the daemon.

use std::time::Duration;

use vmclone_tests::libvirt::{require_libvirtd, restart_libvirtd, virsh_ok, SYSTEM_URI};
use vmclone_tests::*;

#[test]
#[ignore = "needs root and libvirtd (it restarts libvirtd)"]
fn calls_and_events_resume_after_libvirtd_restarts() {
    require_libvirtd();
    let bus = PrivateBus::start();
    let service = Service::start(&bus, SYSTEM_URI, &[]);
    let before = bus.list_vms();

    restart_libvirtd();

    // The first call after the restart reconnects (and re-subscribes to events).
    assert_eq!(bus.list_vms(), before);
    // Events flow again: define a domain with virsh and see VmStateChanged.
    let signals = SignalWatch::start(&bus);
    let dir = TempDir::new("restart");
    let xml = dir.path().join("d.xml");
    let name = format!("vmclone-e2e-restart-{}", std::process::id());
    std::fs::write(
        &xml,
        format!("<domain type='qemu'><name>{name}</name><memory unit='MiB'>64</memory><os><type arch='x86_64'>hvm</type></os></domain>"),
    )
    .unwrap();
    assert!(virsh_ok(&["define", xml.to_str().unwrap()]));
    let line = signals.wait_for("VmStateChanged", Duration::from_secs(20));
    let _ = virsh_ok(&["undefine", &name]);
    assert!(line.contains("'shutoff'"), "{line}");
    assert!(
        service.log_text().contains("reconnected"),
        "{}",
        service.log_text()
    );
}
