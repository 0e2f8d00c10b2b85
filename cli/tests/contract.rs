//! vmclonectl's zbus proxies agree with the D-Bus contract in data/*.xml.
//!
//! A stand-in owns `org.vmclone.Manager` on a private bus and answers from the
//! XML alone: calls of members the XML has get replies of the XML's out types
//! (which the proxies must decode), others `UnknownMethod`. Every proxy
//! method, property and signal is used once, and the calls are checked against
//! the XML's names and in-signatures; every call must allow interactive
//! authorization. `ListJobs` is the one member the CLI may use before the XML
//! has it (issue 8 adds it): then the stand-in says UnknownMethod, which the CLI
//! must report as a service too old (exit status 10).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_lite::StreamExt;
use vmclone_tests::contract::{signatures, Signatures};
use vmclone_tests::PrivateBus;
use vmclonectl::bus::{JobProxy, ManagerProxy};
use vmclonectl::error::CliError;
use vmclonectl::exit::ExitStatus;
use zbus::message::Type;
use zbus::zvariant::{ObjectPath, OwnedValue, StructureBuilder, Value};
use zbus::{Connection, MessageStream};

const JOB_PATH: &str = "/org/vmclone/Manager/jobs/1";

/// A value of D-Bus type `ty`.
fn sample(ty: &str) -> Value<'static> {
    let path = || ObjectPath::from_static_str_unchecked(JOB_PATH);
    match ty {
        "s" => Value::from("sample"),
        "o" => Value::from(path()),
        "t" => Value::U64(7),
        "u" => Value::U32(7),
        "b" => Value::Bool(true),
        "as" => Value::new(vec!["sample".to_string()]),
        "ao" => Value::new(vec![path()]),
        "a{sv}" => Value::new(HashMap::<String, OwnedValue>::new()),
        "aa{sv}" => Value::new(Vec::<HashMap<String, OwnedValue>>::new()),
        other => panic!("the contract uses type {other}: teach this test about it"),
    }
}

/// A message body with one sample value of each of `types`.
fn build(builder: zbus::message::Builder<'_>, types: &[String]) -> zbus::Message {
    if types.is_empty() {
        return builder.build(&()).expect("empty body");
    }
    let mut fields = StructureBuilder::new();
    for ty in types {
        fields.push_value(sample(ty));
    }
    builder
        .build(&fields.build().expect("a structure"))
        .expect("body")
}

/// (interface, member or "Get Iface.Prop", signature, allowed interactive auth)
type Calls = Arc<Mutex<BTreeSet<(String, String, String, bool)>>>;

async fn stand_in(conn: Connection, interfaces: Arc<BTreeMap<String, Signatures>>, calls: Calls) {
    let mut stream = MessageStream::from(&conn);
    while let Some(Ok(msg)) = stream.next().await {
        if msg.message_type() != Type::MethodCall {
            continue;
        }
        let header = msg.header();
        let iface = header
            .interface()
            .map(|i| i.to_string())
            .unwrap_or_default();
        let member = header.member().map(|m| m.to_string()).unwrap_or_default();
        let interactive = msg
            .primary_header()
            .flags()
            .contains(zbus::message::Flags::AllowInteractiveAuth);
        let signature = msg.body().signature().to_string_no_parens();
        let reply = zbus::Message::method_return(&header).expect("reply builder");
        let unknown = |name: &str, text: String| {
            zbus::Message::error(&header, name)
                .expect("error builder")
                .build(&(text,))
                .expect("error")
        };
        let (recorded, reply) = match (iface.as_str(), member.as_str()) {
            ("org.freedesktop.DBus.Properties", "Get") => {
                let (of, prop): (String, String) = msg.body().deserialize().expect("Get args");
                let reply = match interfaces.get(&of).and_then(|i| i.properties.get(&prop)) {
                    Some(ty) => reply.build(&(sample(ty),)).expect("Get reply"),
                    None => unknown(
                        "org.freedesktop.DBus.Error.UnknownProperty",
                        format!("{of}.{prop}"),
                    ),
                };
                (format!("Get {of} {prop}"), reply)
            }
            ("org.freedesktop.DBus.Properties", "GetAll") => {
                let (of,): (String,) = msg.body().deserialize().expect("GetAll args");
                let all: HashMap<String, Value> = interfaces[&of]
                    .properties
                    .iter()
                    .map(|(name, ty)| (name.clone(), sample(ty)))
                    .collect();
                (
                    format!("GetAll {of}"),
                    reply.build(&(all,)).expect("GetAll reply"),
                )
            }
            _ => match interfaces.get(&iface).and_then(|i| i.methods.get(&member)) {
                Some((_, out)) => (member.clone(), build(reply, out)),
                None => (
                    member.clone(),
                    unknown(
                        "org.freedesktop.DBus.Error.UnknownMethod",
                        format!("{iface}.{member}"),
                    ),
                ),
            },
        };
        // Property reads go to org.freedesktop.DBus.Properties: polkit is not asked.
        calls
            .lock()
            .unwrap()
            .insert((iface, recorded, signature, interactive));
        conn.send(&reply).await.expect("send reply");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn proxies_match_the_xml_contract() {
    let (manager_name, manager) = signatures("org.vmclone.Manager.xml");
    let (job_name, job) = signatures("org.vmclone.Job.xml");
    assert_eq!(
        (manager_name.as_str(), job_name.as_str()),
        ("org.vmclone.Manager", "org.vmclone.Job")
    );
    assert!(manager.methods.contains_key("StartClone") && job.properties.contains_key("BytesDone"));
    let list_jobs_in_xml = manager.methods.get("ListJobs").cloned();
    let interfaces = Arc::new(BTreeMap::from([
        (manager_name.clone(), manager),
        (job_name.clone(), job),
    ]));

    let bus = PrivateBus::start();
    let server = zbus::connection::Builder::address(bus.address())
        .unwrap()
        .build()
        .await
        .unwrap();
    let calls: Calls = Arc::default();
    tokio::spawn(stand_in(server.clone(), interfaces.clone(), calls.clone()));
    server.request_name("org.vmclone.Manager").await.unwrap();

    let client = zbus::connection::Builder::address(bus.address())
        .unwrap()
        .build()
        .await
        .unwrap();
    let m = ManagerProxy::builder(&client)
        .cache_properties(zbus::proxy::CacheProperties::No)
        .build()
        .await
        .unwrap();
    let j = JobProxy::builder(&client)
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
    match (m.list_jobs().await, &list_jobs_in_xml) {
        (Ok(paths), Some(_)) => assert_eq!(paths[0].as_str(), JOB_PATH),
        (Err(e), None) => {
            let e = CliError::from(e);
            assert_eq!(e.status(), ExitStatus::Unreachable);
            assert!(
                e.sentence().contains("older than vmclonectl"),
                "{}",
                e.sentence()
            );
        }
        (result, xml) => panic!("ListJobs gave {result:?} with the XML saying {xml:?}"),
    }
    j.cancel().await.expect("Cancel");
    j.state().await.expect("State");
    j.phase().await.expect("Phase");
    j.bytes_done().await.expect("BytesDone");
    j.bytes_total().await.expect("BytesTotal");
    vmclonectl::bus::job_properties(&client, &JOB_PATH.try_into().unwrap())
        .await
        .expect("GetAll");

    for (iface, path) in [
        (&manager_name, "/org/vmclone/Manager"),
        (&job_name, JOB_PATH),
    ] {
        for (signal, signature) in &interfaces[iface].signals {
            let msg = zbus::Message::signal(path, iface.as_str(), signal.as_str()).unwrap();
            server.send(&build(msg, signature)).await.unwrap();
        }
    }
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

    // Every call names a member of the XML with its in-signature (ListJobs
    // only once the XML has it) and allows interactive authorization.
    let seen = calls.lock().unwrap().clone();
    let props = "org.freedesktop.DBus.Properties";
    let mut used = BTreeSet::new();
    for (iface, member, signature, interactive) in &seen {
        if iface == props {
            // "Get IFACE PROP" or "GetAll IFACE".
            let words: Vec<&str> = member.split(' ').collect();
            let def = interfaces
                .get(words[1])
                .unwrap_or_else(|| panic!("{member}: no such interface"));
            if let Some(prop) = words.get(2) {
                assert!(
                    def.properties.contains_key(*prop),
                    "{member} is not in the contract"
                );
            }
            continue;
        }
        if member == "ListJobs" && list_jobs_in_xml.is_none() {
            assert_eq!(signature, "", "ListJobs() takes no arguments");
        } else {
            let (ins, _) = interfaces[iface]
                .methods
                .get(member)
                .unwrap_or_else(|| panic!("{iface}.{member} is not in the contract"));
            assert_eq!(signature, ins, "{iface}.{member} in-signature");
        }
        assert!(
            interactive,
            "{iface}.{member} allows interactive authorization"
        );
        used.insert(member.as_str());
    }
    assert_eq!(
        used,
        BTreeSet::from([
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
        ])
    );
    // The CLI's signal streams are the contract's three signals.
    let signals: BTreeSet<&str> = interfaces
        .values()
        .flat_map(|i| i.signals.keys().map(String::as_str))
        .collect();
    assert_eq!(
        signals,
        BTreeSet::from(["Finished", "VmCloned", "VmStateChanged"])
    );
}
