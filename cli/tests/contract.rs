//! vmclonectl's zbus proxies agree with the D-Bus contract in data/*.xml.
//!
//! A stand-in that knows only the XML (`vmclone_tests::stand_in`) owns
//! `org.vmclone.Manager` on a private bus and records every call. Every proxy
//! method, property and signal the CLI has is used once, and the calls are
//! checked against the XML's names and in-signatures; every method call must
//! allow interactive authorization (the terminal's polkit agent may prompt).

use std::collections::{BTreeSet, HashMap};
use std::time::Duration;

use futures_lite::StreamExt;
use vmclone_tests::stand_in::{StandIn, JOB_PATH};
use vmclonectl::bus::{JobProxy, ManagerProxy};
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
    let mut cloned = m.receive_vm_cloned().await.unwrap();
    let mut state = m.receive_vm_state_changed().await.unwrap();
    let mut finished = j.receive_finished().await.unwrap();

    let options = || HashMap::from([("storage", Value::from("copy"))]);
    m.clone_vms("a", &["b", "c"], options())
        .await
        .expect("CloneVms");
    assert_eq!(
        m.start_clone("a", "b", options())
            .await
            .expect("StartClone")
            .as_str(),
        JOB_PATH
    );
    m.list_vms().await.expect("ListVms");
    m.get_vm("a").await.expect("GetVm");
    m.check_name("b").await.expect("CheckName");
    m.plan_clone("a", "b", &options()).await.expect("PlanClone");
    m.list_destinations().await.expect("ListDestinations");
    m.convert_to_template("a").await.expect("ConvertToTemplate");
    assert_eq!(m.list_jobs().await.expect("ListJobs")[0].as_str(), JOB_PATH);
    j.cancel().await.expect("Cancel");
    j.state().await.expect("State");
    j.phase().await.expect("Phase");
    j.bytes_done().await.expect("BytesDone");
    j.bytes_total().await.expect("BytesTotal");
    vmclonectl::bus::job_properties(client, &JOB_PATH.try_into().unwrap())
        .await
        .expect("GetAll");

    stand_in.emit_every_signal().await;
    let within = Duration::from_secs(10);
    let signal = tokio::time::timeout(within, cloned.next())
        .await
        .expect("VmCloned")
        .unwrap();
    assert_eq!(signal.args().expect("VmCloned args decode").timestamp, 7);
    let signal = tokio::time::timeout(within, state.next())
        .await
        .expect("VmStateChanged")
        .unwrap();
    signal.args().expect("VmStateChanged args decode");
    let signal = tokio::time::timeout(within, finished.next())
        .await
        .expect("Finished")
        .unwrap();
    signal.args().expect("Finished args decode");

    // Every call names a member of the XML with its in-signature and allows
    // interactive authorization; property reads name the XML's properties.
    let contract = stand_in.every_member();
    let mut used = BTreeSet::new();
    for call in stand_in.calls() {
        if let Some(of) = call.member.strip_prefix("GetAll ") {
            assert!(stand_in.interfaces.contains_key(of), "{call:?}");
        } else if call.member.starts_with("Get ") {
            assert!(contract.contains(&call), "{call:?} is not in the contract");
        } else {
            assert!(
                contract.contains(&call),
                "{call:?}: not in the contract, another in-signature, or not interactive"
            );
            used.insert(call.member);
        }
    }
    assert_eq!(
        used,
        BTreeSet::from(
            [
                "Cancel",
                "CheckName",
                "CloneVms",
                "ConvertToTemplate",
                "GetVm",
                "ListDestinations",
                "ListJobs",
                "ListVms",
                "PlanClone",
                "StartClone"
            ]
            .map(String::from)
        )
    );
    // The CLI's signal streams are the contract's three signals.
    assert_eq!(
        stand_in.signal_names(),
        BTreeSet::from(["Finished", "VmCloned", "VmStateChanged"])
    );
}
