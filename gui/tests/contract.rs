//! The GUI's zbus proxies agree with the D-Bus contract in data/*.xml.
//!
//! A stand-in owns `org.vmclone.Manager` on a private bus and answers from the
//! XML alone: it records every call the proxies make (member and argument
//! signature), replies with values of the XML's out types, serves properties
//! of the XML's types and emits every XML signal. Each proxy method, property
//! and signal is used once, so a proxy that drifts from the XML (a missing or
//! extra member, a wrong argument or return type) fails here. Every call to
//! the service also has to allow interactive authorization.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_lite::StreamExt;
use vmclone::client::{JobProxy, ManagerProxy};
use vmclone_tests::contract::contract;
use vmclone_tests::contract::zbus_xml::{Arg, ArgDirection};
use vmclone_tests::PrivateBus;
use zbus::message::Type;
use zbus::zvariant::{ObjectPath, OwnedValue, StructureBuilder, Value};
use zbus::{Connection, MessageStream};

const JOB_PATH: &str = "/org/vmclone/Manager/jobs/1";

#[derive(Debug, Default)]
struct Interface {
    /// name -> (in signature, out types)
    methods: BTreeMap<String, (String, Vec<String>)>,
    /// name -> argument types
    signals: BTreeMap<String, Vec<String>>,
    /// name -> type
    properties: BTreeMap<String, String>,
}

/// The one interface of a D-Bus contract file, by name.
fn load(file: &str) -> (String, Interface) {
    let node = contract(file);
    let [xml] = node.interfaces() else {
        panic!("data/{file} describes one interface");
    };
    // A method argument without a direction is an input; signal arguments have none.
    let types = |args: &[Arg], direction: Option<ArgDirection>| -> Vec<String> {
        args.iter()
            .filter(|a| {
                direction.is_none() || a.direction().or(Some(ArgDirection::In)) == direction
            })
            .map(|a| a.ty().to_string())
            .collect()
    };
    let iface = Interface {
        methods: xml
            .methods()
            .iter()
            .map(|m| {
                let ins = types(m.args(), Some(ArgDirection::In)).concat();
                let outs = types(m.args(), Some(ArgDirection::Out));
                (m.name().to_string(), (ins, outs))
            })
            .collect(),
        signals: xml
            .signals()
            .iter()
            .map(|s| (s.name().to_string(), types(s.args(), None)))
            .collect(),
        properties: xml
            .properties()
            .iter()
            .map(|p| (p.name().to_string(), p.ty().to_string()))
            .collect(),
    };
    (xml.name().to_string(), iface)
}

/// A value of D-Bus type `ty`.
fn sample(ty: &str) -> Value<'static> {
    match ty {
        "s" => Value::from("sample"),
        "o" => Value::from(ObjectPath::from_static_str_unchecked(JOB_PATH)),
        "ao" => Value::new(vec![ObjectPath::from_static_str_unchecked(JOB_PATH)]),
        "t" => Value::U64(7),
        "u" => Value::U32(7),
        "b" => Value::Bool(true),
        "as" => Value::new(vec!["sample".to_string()]),
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

type Calls = Arc<Mutex<BTreeSet<(String, String, String)>>>;

/// Answers every call as the XML says the service would, recording
/// (interface, member, signature) of each.
async fn stand_in(conn: Connection, interfaces: Arc<BTreeMap<String, Interface>>, calls: Calls) {
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
        let signature = msg.body().signature().to_string_no_parens();
        let mut record = (iface.clone(), member.clone(), signature);
        // So the desktop's polkit agent may prompt instead of a flat refusal.
        let interactive = msg
            .primary_header()
            .flags()
            .contains(zbus::message::Flags::AllowInteractiveAuth);
        if iface.starts_with("org.vmclone.") && !interactive {
            record.1 = format!("{member} WITHOUT allow-interactive-authorization");
        }
        let reply = zbus::Message::method_return(&header).expect("reply builder");
        let reply = match (iface.as_str(), member.as_str()) {
            ("org.freedesktop.DBus.Properties", "Get") => {
                let (of, prop): (String, String) = msg.body().deserialize().expect("Get args");
                record.1 = format!("Get {of}.{prop}");
                match interfaces.get(&of).and_then(|i| i.properties.get(&prop)) {
                    Some(ty) => reply.build(&(sample(ty),)).expect("Get reply"),
                    None => {
                        zbus::Message::error(&header, "org.freedesktop.DBus.Error.UnknownProperty")
                            .expect("error builder")
                            .build(&(format!("{of}.{prop} is not in the contract"),))
                            .expect("error reply")
                    }
                }
            }
            ("org.freedesktop.DBus.Properties", "GetAll") => {
                let (of,): (String,) = msg.body().deserialize().expect("GetAll args");
                let all: HashMap<String, Value> = interfaces
                    .get(&of)
                    .map(|i| i.properties.iter())
                    .into_iter()
                    .flatten()
                    .map(|(name, ty)| (name.clone(), sample(ty)))
                    .collect();
                reply.build(&(all,)).expect("GetAll reply")
            }
            _ => match interfaces.get(&iface).and_then(|i| i.methods.get(&member)) {
                Some((_, out)) => build(reply, out),
                None => zbus::Message::error(&header, "org.freedesktop.DBus.Error.UnknownMethod")
                    .expect("error builder")
                    .build(&(format!("{iface}.{member} is not in the contract"),))
                    .expect("error reply"),
            },
        };
        calls.lock().unwrap().insert(record);
        conn.send(&reply).await.expect("send reply");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn proxies_match_the_xml_contract() {
    let (manager_name, manager) = load("org.vmclone.Manager.xml");
    let (job_name, job) = load("org.vmclone.Job.xml");
    assert_eq!(manager_name, "org.vmclone.Manager");
    assert_eq!(job_name, "org.vmclone.Job");
    assert!(manager.methods.contains_key("StartClone") && job.properties.contains_key("BytesDone"));
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
    m.plan_clone("a", "b", options()).await.expect("PlanClone");
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

    for (iface, path) in [
        (&manager_name, "/org/vmclone/Manager"),
        (&job_name, JOB_PATH),
    ] {
        for (signal, signature) in &interfaces[iface].signals {
            let msg = zbus::Message::signal(path, iface.as_str(), signal.as_str()).unwrap();
            server.send(&build(msg, signature)).await.unwrap();
        }
    }
    let signal = next_within(&mut cloned, "VmCloned").await;
    let args = signal.args().expect("VmCloned args decode");
    assert_eq!((*args.new_name(), args.timestamp), ("sample", 7));
    let signal = next_within(&mut state, "VmStateChanged").await;
    signal.args().expect("VmStateChanged args decode");
    let signal = next_within(&mut finished, "Finished").await;
    signal.args().expect("Finished args decode");

    // Exactly the contract's methods and properties were used, with its signatures.
    let mut expected = BTreeSet::new();
    for (iface, def) in interfaces.iter() {
        for (method, (ins, _)) in &def.methods {
            expected.insert((iface.clone(), method.clone(), ins.clone()));
        }
        for property in def.properties.keys() {
            let props = "org.freedesktop.DBus.Properties".to_string();
            expected.insert((props, format!("Get {iface}.{property}"), "ss".into()));
        }
    }
    let seen: BTreeSet<_> = calls
        .lock()
        .unwrap()
        .iter()
        // The bus's own calls (AddMatch, …) go to org.freedesktop.DBus, not here.
        .filter(|(iface, _, _)| iface != "org.freedesktop.DBus.Peer")
        .cloned()
        .collect();
    assert_eq!(seen, expected, "proxy calls vs. data/*.xml");

    // Every XML signal has a proxy stream (the three above) and nothing else exists.
    let signals: BTreeSet<&str> = interfaces
        .values()
        .flat_map(|i| i.signals.keys().map(String::as_str))
        .collect();
    assert_eq!(
        signals,
        BTreeSet::from(["Finished", "VmCloned", "VmStateChanged"])
    );
}

async fn next_within<S: futures_lite::Stream + Unpin>(stream: &mut S, what: &str) -> S::Item {
    tokio::time::timeout(Duration::from_secs(10), stream.next())
        .await
        .unwrap_or_else(|_| panic!("no {what} signal arrived"))
        .unwrap_or_else(|| panic!("the {what} stream ended"))
}
