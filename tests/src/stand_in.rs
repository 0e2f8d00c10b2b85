//! A stand-in for the service that knows only the D-Bus contract (`data/*.xml`),
//! for the clients' contract tests (the app's and vmclonectl's proxies).
//!
//! It owns `org.vmclone.Manager` on a private bus and answers from the XML alone:
//! members the XML has get replies of its out types (which a proxy must decode),
//! properties are served with the XML's types, anything else gets `UnknownMethod`
//! or `UnknownProperty`. It records every call, so a test can compare what its
//! proxies used with the XML, and it emits every signal of the XML on request.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex};

use futures_lite::StreamExt;
use zbus::message::Type;
use zbus::zvariant::{ObjectPath, OwnedValue, StructureBuilder, Value};
use zbus::{Connection, MessageStream};

use crate::contract::{signatures, Signatures};
use crate::PrivateBus;

/// The one job object the stand-in hands out.
pub const JOB_PATH: &str = "/org/vmclone/Manager/jobs/1";
const MANAGER_PATH: &str = "/org/vmclone/Manager";
const PROPERTIES: &str = "org.freedesktop.DBus.Properties";

/// One call the stand-in received.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Call {
    pub interface: String,
    /// The member; for property reads `Get IFACE.PROP` or `GetAll IFACE`.
    pub member: String,
    /// The body's signature, without parentheses.
    pub signature: String,
    /// Whether the caller allowed interactive authorization (a polkit prompt).
    pub interactive: bool,
}

pub struct StandIn {
    /// Kept so that the bus lives as long as the stand-in.
    _bus: PrivateBus,
    server: Connection,
    /// A client connection on the same bus, for the proxies under test.
    pub client: Connection,
    /// Interface name -> the XML's members and their types.
    pub interfaces: Arc<BTreeMap<String, Signatures>>,
    calls: Arc<Mutex<BTreeSet<Call>>>,
}

impl StandIn {
    /// A private bus with the stand-in serving `org.vmclone.Manager` and the job at
    /// [`JOB_PATH`], and a client connection.
    pub async fn start() -> StandIn {
        let (manager_name, manager) = signatures("org.vmclone.Manager.xml");
        let (job_name, job) = signatures("org.vmclone.Job.xml");
        assert_eq!(
            (manager_name.as_str(), job_name.as_str()),
            ("org.vmclone.Manager", "org.vmclone.Job")
        );
        let interfaces = Arc::new(BTreeMap::from([(manager_name, manager), (job_name, job)]));
        let bus = PrivateBus::start();
        let connect = || async {
            zbus::connection::Builder::address(bus.address())
                .unwrap()
                .build()
                .await
                .unwrap()
        };
        let server = connect().await;
        let calls: Arc<Mutex<BTreeSet<Call>>> = Arc::default();
        tokio::spawn(answer(server.clone(), interfaces.clone(), calls.clone()));
        server.request_name("org.vmclone.Manager").await.unwrap();
        let client = connect().await;
        StandIn {
            _bus: bus,
            server,
            client,
            interfaces,
            calls,
        }
    }

    /// Emits every signal of the XML once, with sample arguments of its types.
    pub async fn emit_every_signal(&self) {
        for (iface, def) in self.interfaces.iter() {
            let path = if iface.ends_with(".Job") {
                JOB_PATH
            } else {
                MANAGER_PATH
            };
            for (signal, types) in &def.signals {
                let msg = zbus::Message::signal(path, iface.as_str(), signal.as_str()).unwrap();
                self.server.send(&body(msg, types)).await.unwrap();
            }
        }
    }

    /// The calls received so far (not those of the bus itself).
    pub fn calls(&self) -> BTreeSet<Call> {
        self.calls
            .lock()
            .unwrap()
            .iter()
            .filter(|c| c.interface != "org.freedesktop.DBus.Peer")
            .cloned()
            .collect()
    }

    /// Every method and property of the XML as a call of it would be recorded:
    /// methods allowing interactive authorization (so the desktop's polkit agent
    /// may prompt), property reads not (polkit is not asked for them).
    pub fn every_member(&self) -> BTreeSet<Call> {
        let call = |interface: &str, member: String, signature: &str, interactive| Call {
            interface: interface.into(),
            member,
            signature: signature.into(),
            interactive,
        };
        let mut all = BTreeSet::new();
        for (iface, def) in self.interfaces.iter() {
            for (method, (ins, _)) in &def.methods {
                all.insert(call(iface, method.clone(), ins, true));
            }
            for property in def.properties.keys() {
                let get = format!("Get {iface}.{property}");
                all.insert(call(PROPERTIES, get, "ss", false));
            }
        }
        all
    }

    /// The names of the XML's signals.
    pub fn signal_names(&self) -> BTreeSet<&str> {
        self.interfaces
            .values()
            .flat_map(|i| i.signals.keys().map(String::as_str))
            .collect()
    }
}

/// A value of D-Bus type `ty`.
fn sample(ty: &str) -> Value<'static> {
    let path = || ObjectPath::from_static_str_unchecked(JOB_PATH);
    match ty {
        "s" => Value::from("sample"),
        "o" => Value::from(path()),
        "ao" => Value::new(vec![path()]),
        "t" => Value::U64(7),
        "u" => Value::U32(7),
        "b" => Value::Bool(true),
        "as" => Value::new(vec!["sample".to_string()]),
        "a{sv}" => Value::new(HashMap::<String, OwnedValue>::new()),
        "aa{sv}" => Value::new(Vec::<HashMap<String, OwnedValue>>::new()),
        other => panic!("the contract uses type {other}: teach the stand-in about it"),
    }
}

/// A message body with one sample value of each of `types`.
fn body(builder: zbus::message::Builder<'_>, types: &[String]) -> zbus::Message {
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

/// Answers every call as the XML says the service would, recording each.
async fn answer(
    conn: Connection,
    interfaces: Arc<BTreeMap<String, Signatures>>,
    calls: Arc<Mutex<BTreeSet<Call>>>,
) {
    let mut stream = MessageStream::from(&conn);
    while let Some(Ok(msg)) = stream.next().await {
        if msg.message_type() != Type::MethodCall {
            continue;
        }
        let header = msg.header();
        let mut call = Call {
            interface: header
                .interface()
                .map(|i| i.to_string())
                .unwrap_or_default(),
            member: header.member().map(|m| m.to_string()).unwrap_or_default(),
            signature: msg.body().signature().to_string_no_parens(),
            interactive: msg
                .primary_header()
                .flags()
                .contains(zbus::message::Flags::AllowInteractiveAuth),
        };
        let reply = zbus::Message::method_return(&header).expect("reply builder");
        let error = |name: &str, text: String| {
            zbus::Message::error(&header, name)
                .expect("error builder")
                .build(&(format!("{text} is not in the contract"),))
                .expect("error reply")
        };
        let reply = match (call.interface.as_str(), call.member.as_str()) {
            (PROPERTIES, "Get") => {
                let (of, prop): (String, String) = msg.body().deserialize().expect("Get args");
                call.member = format!("Get {of}.{prop}");
                match interfaces.get(&of).and_then(|i| i.properties.get(&prop)) {
                    Some(ty) => reply.build(&(sample(ty),)).expect("Get reply"),
                    None => error(
                        "org.freedesktop.DBus.Error.UnknownProperty",
                        format!("{of}.{prop}"),
                    ),
                }
            }
            (PROPERTIES, "GetAll") => {
                let (of,): (String,) = msg.body().deserialize().expect("GetAll args");
                call.member = format!("GetAll {of}");
                let all: HashMap<String, Value> = interfaces
                    .get(&of)
                    .into_iter()
                    .flat_map(|i| i.properties.iter())
                    .map(|(name, ty)| (name.clone(), sample(ty)))
                    .collect();
                reply.build(&(all,)).expect("GetAll reply")
            }
            (iface, member) => match interfaces.get(iface).and_then(|i| i.methods.get(member)) {
                Some((_, out)) => body(reply, out),
                None => error(
                    "org.freedesktop.DBus.Error.UnknownMethod",
                    format!("{iface}.{member}"),
                ),
            },
        };
        calls.lock().unwrap().insert(call);
        conn.send(&reply).await.expect("send reply");
    }
}
