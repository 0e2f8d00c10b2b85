//! The live introspection of the running service equals the D-Bus contract
//! in `data/` (org.vmclone.Manager.xml and org.vmclone.Job.xml).

use vmclone_tests::contract::zbus_xml::{Annotation, Arg, ArgDirection, Interface};
use vmclone_tests::contract::{contract, interface, parse_introspection};
use vmclone_tests::*;

/// The members of `iface`, as a sorted list of lines like
/// `method CloneVm(in s source_vm_id, …, @annotation=value, )`.
fn members(iface: &Interface) -> Vec<String> {
    let methods = iface
        .methods()
        .iter()
        .map(|m| member("method", &m.name(), m.args(), m.annotations()));
    let signals = iface
        .signals()
        .iter()
        .map(|s| member("signal", &s.name(), s.args(), s.annotations()));
    let properties = iface.properties().iter().map(|p| {
        format!(
            "property {} {} {:?}({})",
            p.name(),
            p.ty().to_string(),
            p.access(),
            annotations(p.annotations())
        )
    });
    let mut out: Vec<String> = methods.chain(signals).chain(properties).collect();
    out.sort();
    out
}

/// `KIND NAME(DIRECTION TYPE NAME, @ANNOTATION=VALUE, …)`
fn member(kind: &str, name: &str, args: &[Arg], member_annotations: &[Annotation]) -> String {
    let args: String = args
        .iter()
        .map(|a| {
            let direction = match a.direction() {
                Some(ArgDirection::In) => "in",
                Some(ArgDirection::Out) => "out",
                // A method argument without a direction is an input.
                None if kind == "method" => "in",
                None => "",
            };
            format!(
                "{direction} {} {}, {}",
                a.ty().to_string(),
                a.name().unwrap_or_default(),
                annotations(a.annotations())
            )
        })
        .collect();
    format!("{kind} {name}({args}{})", annotations(member_annotations))
}

fn annotations(list: &[Annotation]) -> String {
    list.iter()
        .map(|a| format!("@{}={}, ", a.name(), a.value()))
        .collect()
}

fn contract_members(file: &str, iface: &str) -> Vec<String> {
    let m = members(interface(&contract(file), iface));
    assert!(m.len() > 3, "{file} describes {iface}");
    m
}

fn live(bus: &PrivateBus, path: &str, iface: &str) -> Vec<String> {
    let xml = stdout_ok(&bus.busctl(["introspect", "--xml-interface", BUS_NAME, path]));
    members(interface(&parse_introspection(&xml), iface))
}

#[test]
fn manager_introspection_equals_the_contract() {
    let bus = PrivateBus::start();
    let _service = Service::start(&bus, &demo_host_uri(), &[]);
    assert_eq!(
        live(&bus, OBJECT_PATH, INTERFACE),
        contract_members("org.vmclone.Manager.xml", INTERFACE)
    );
}

#[test]
fn job_introspection_equals_the_contract() {
    let bus = PrivateBus::start();
    let _service = Service::start(&bus, &demo_host_uri(), &[]);
    let path =
        reply_object_path(&bus.call("StartClone", "ssa{sv}", &["web01", "introspected", "0"]));
    assert_eq!(
        live(&bus, &path, JOB_INTERFACE),
        contract_members("org.vmclone.Job.xml", JOB_INTERFACE)
    );
}
