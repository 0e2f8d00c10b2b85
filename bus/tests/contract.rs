//! The shared zbus proxies agree with the D-Bus contract in data/*.xml.
//!
//! A stand-in that knows only the XML (`vmclone_tests::stand_in`) owns
//! `org.vmclone.Manager` on a private bus and records every call the proxies make.
//! Each proxy method, property and signal is used once, so a proxy that drifts
//! from the XML (a missing or extra member, a wrong argument or return type)
//! fails here. Every call to the service also has to allow interactive
//! authorization.

use std::collections::{BTreeSet, HashMap};
use std::time::Duration;

use futures_lite::StreamExt;
use vmclone_bus::{JobProxy, ManagerProxy};
use vmclone_tests::stand_in::{StandIn, JOB_PATH};
use zbus::zvariant::Value;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn proxies_match_the_xml_contract() {
    let stand_in = StandIn::start().await;
    let client = &stand_in.client;
    let m = ManagerProxy::builder(client)
        .cache_properties(zbus::proxy::CacheProperties::No)
        .build()
        .await
        .unwrap();
    let j = JobProxy::builder(client)
        .path(JOB_PATH)
        .unwrap()
        .cache_properties(zbus::proxy::CacheProperties::No)
        .build()
        .await
        .unwrap();

    // Signals: subscribe, then have the stand-in emit each with XML-typed args.
    let mut cloned = m.receive_vm_cloned().await.unwrap();
    let mut state = m.receive_vm_state_changed().await.unwrap();
    let mut finished = j.receive_finished().await.unwrap();

    // Every method and property, once; each reply is decoded into the proxy's type.
    let options = || HashMap::from([("storage", Value::from("copy"))]);
    m.clone_vm("a", "b").await.expect("CloneVm");
    m.clone_vm_with_options("a", "b", options())
        .await
        .expect("CloneVmWithOptions");
    m.clone_vms("a", &["b", "c"], options())
        .await
        .expect("CloneVms");
    let path = m
        .start_clone("a", "b", options())
        .await
        .expect("StartClone");
    assert_eq!(path.as_str(), JOB_PATH);
    m.list_vms().await.expect("ListVms");
    m.get_vm("a").await.expect("GetVm");
    m.check_name("b").await.expect("CheckName");
    m.plan_clone("a", "b", &options()).await.expect("PlanClone");
    m.list_destinations().await.expect("ListDestinations");
    m.list_jobs().await.expect("ListJobs");
    m.convert_to_template("a").await.expect("ConvertToTemplate");
    m.version().await.expect("Version");
    m.libvirt_uri().await.expect("LibvirtUri");
    j.cancel().await.expect("Cancel");
    j.state().await.expect("State");
    j.phase().await.expect("Phase");
    j.bytes_done().await.expect("BytesDone");
    j.bytes_total().await.expect("BytesTotal");
    j.consistency().await.expect("Consistency");
    j.paused_ms().await.expect("PausedMs");
    j.source_vm_id().await.expect("SourceVmId");
    j.new_name().await.expect("NewName");
    j.cloned_vm_id().await.expect("ClonedVmId");
    j.error().await.expect("Error");
    j.error_name().await.expect("ErrorName");

    stand_in.emit_every_signal().await;
    let signal = next_within(&mut cloned, "VmCloned").await;
    let args = signal.args().expect("VmCloned args decode");
    assert_eq!((*args.new_name(), args.timestamp), ("sample", 7));
    let signal = next_within(&mut state, "VmStateChanged").await;
    signal.args().expect("VmStateChanged args decode");
    let signal = next_within(&mut finished, "Finished").await;
    signal.args().expect("Finished args decode");

    // Exactly the contract's methods and properties were used, with its signatures.
    assert_eq!(
        stand_in.calls(),
        stand_in.every_member(),
        "proxy calls vs. data/*.xml"
    );

    // Every XML signal has a proxy stream (the three above) and nothing else exists.
    assert_eq!(
        stand_in.signal_names(),
        BTreeSet::from(["Finished", "VmCloned", "VmStateChanged"])
    );
}

async fn next_within<S: futures_lite::Stream + Unpin>(stream: &mut S, what: &str) -> S::Item {
    tokio::time::timeout(Duration::from_secs(10), stream.next())
        .await
        .unwrap_or_else(|_| panic!("no {what} signal arrived"))
        .unwrap_or_else(|| panic!("the {what} stream ended"))
}
