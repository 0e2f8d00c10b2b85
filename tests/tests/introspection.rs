//! The live introspection of the running service equals the D-Bus contract
//! in `data/` (org.vmclone.Manager.xml and org.vmclone.Job.xml).

use quick_xml::events::Event;
use quick_xml::Reader;
use quick_xml::XmlVersion;
use vmclone_tests::*;

/// The members of interface `iface` in an introspection document, as a
/// sorted list of lines like `method CloneVm(in s source_vm_id, …)`.
fn members(xml: &str, iface: &str) -> Vec<String> {
    let mut reader = Reader::from_str(xml);
    reader.config_mut().trim_text(true);
    let mut inside = false;
    let mut out = Vec::new();
    let mut current: Option<String> = None;
    let attr = |e: &quick_xml::events::BytesStart<'_>, key: &str| -> String {
        e.attributes()
            .flatten()
            .find(|a| a.key.as_ref() == key)
            .map(|a| {
                a.normalized_value(XmlVersion::Implicit1_0)
                    .unwrap()
                    .into_owned()
            })
            .unwrap_or_default()
    };
    loop {
        let ev = reader.read_event().expect("well-formed introspection XML");
        match &ev {
            Event::Start(e) | Event::Empty(e) => {
                let tag = e.name().as_ref().to_string();
                match tag.as_str() {
                    "interface" => inside = attr(e, "name") == iface,
                    "method" | "signal" if inside => {
                        current = Some(format!("{tag} {}(", attr(e, "name")));
                    }
                    "property" if inside => {
                        current = Some(format!(
                            "property {} {} {}(",
                            attr(e, "name"),
                            attr(e, "type"),
                            attr(e, "access")
                        ));
                    }
                    "arg" if inside => {
                        if let Some(c) = current.as_mut() {
                            let dir = attr(e, "direction");
                            let dir = if dir.is_empty() && c.starts_with("method") {
                                "in".into()
                            } else {
                                dir
                            };
                            c.push_str(&format!("{dir} {} {}, ", attr(e, "type"), attr(e, "name")));
                        }
                    }
                    "annotation" if inside => {
                        if let Some(c) = current.as_mut() {
                            c.push_str(&format!("@{}={}, ", attr(e, "name"), attr(e, "value")));
                        }
                    }
                    _ => {}
                }
                if matches!(ev, Event::Empty(_))
                    && matches!(tag.as_str(), "method" | "signal" | "property")
                    && inside
                {
                    out.push(current.take().unwrap() + ")");
                }
            }
            Event::End(e) => {
                let tag = e.name().as_ref().to_string();
                match tag.as_str() {
                    "interface" => inside = false,
                    "method" | "signal" | "property" if inside => {
                        out.push(current.take().unwrap() + ")");
                    }
                    _ => {}
                }
            }
            Event::Eof => break,
            _ => {}
        }
    }
    out.sort();
    out
}

fn contract(file: &str, iface: &str) -> Vec<String> {
    let xml = std::fs::read_to_string(workspace_root().join("data").join(file)).unwrap();
    let m = members(&xml, iface);
    assert!(m.len() > 3, "{file} describes {iface}");
    m
}

fn live(bus: &PrivateBus, path: &str, iface: &str) -> Vec<String> {
    let xml = stdout_ok(&bus.busctl(["introspect", "--xml-interface", BUS_NAME, path]));
    members(&xml, iface)
}

#[test]
fn manager_introspection_equals_the_contract() {
    let bus = PrivateBus::start();
    let _service = Service::start(&bus, &demo_host_uri(), &[]);
    assert_eq!(
        live(&bus, OBJECT_PATH, INTERFACE),
        contract("org.vmclone.Manager.xml", INTERFACE)
    );
}

#[test]
fn job_introspection_equals_the_contract() {
    let bus = PrivateBus::start();
    let _service = Service::start(&bus, &demo_host_uri(), &[]);
    let out = stdout_ok(&bus.call("StartClone", "ssa{sv}", &["web01", "introspected", "0"]));
    let path = out
        .trim()
        .trim_start_matches("o \"")
        .trim_end_matches('"')
        .to_string();
    assert_eq!(
        live(&bus, &path, "org.vmclone.Job"),
        contract("org.vmclone.Job.xml", "org.vmclone.Job")
    );
}
