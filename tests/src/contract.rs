//! The D-Bus contract (`data/org.vmclone.*.xml`) and live introspection, read by
//! `zbus_xml`.

pub use zbus_xml;
use zbus_xml::{Interface, Node};

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
