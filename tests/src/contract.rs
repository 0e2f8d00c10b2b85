//! The D-Bus contract (`data/org.vmclone.*.xml`) and live introspection, read by
//! `zbus_xml`.

use std::collections::BTreeMap;

pub use zbus_xml;
use zbus_xml::{Arg, ArgDirection, Interface, Node};

use crate::paths::workspace_root;

/// `data/<file>`, a file of the D-Bus contract, parsed.
pub fn contract(file: &str) -> Node<'static> {
    let path = workspace_root().join("data").join(file);
    let xml =
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    parse_introspection(&xml)
}

/// Introspection XML, parsed.
pub fn parse_introspection(xml: &str) -> Node<'static> {
    Node::from_reader(xml.as_bytes())
        .unwrap_or_else(|e| panic!("not introspection XML ({e}):\n{xml}"))
}

/// The interface called `name` in `node`.
pub fn interface<'n, 'a>(node: &'n Node<'a>, name: &str) -> &'n Interface<'a> {
    node.interfaces()
        .iter()
        .find(|i| i.name().as_str() == name)
        .unwrap_or_else(|| panic!("no interface {name} in the introspection XML"))
}

/// The D-Bus types of one interface's members: what a client's proxies must agree with.
#[derive(Debug, Default)]
pub struct Signatures {
    /// method -> (in signature, out types)
    pub methods: BTreeMap<String, (String, Vec<String>)>,
    /// signal -> argument types
    pub signals: BTreeMap<String, Vec<String>>,
    /// property -> type
    pub properties: BTreeMap<String, String>,
}

/// The one interface of `data/<file>`: its name and its members' types.
pub fn signatures(file: &str) -> (String, Signatures) {
    let node = contract(file);
    let [iface] = node.interfaces() else {
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
    let signatures = Signatures {
        methods: iface
            .methods()
            .iter()
            .map(|m| {
                let ins = types(m.args(), Some(ArgDirection::In)).concat();
                (
                    m.name().to_string(),
                    (ins, types(m.args(), Some(ArgDirection::Out))),
                )
            })
            .collect(),
        signals: iface
            .signals()
            .iter()
            .map(|s| (s.name().to_string(), types(s.args(), None)))
            .collect(),
        properties: iface
            .properties()
            .iter()
            .map(|p| (p.name().to_string(), p.ty().to_string()))
            .collect(),
    };
    (iface.name().to_string(), signatures)
}
