//! What vmclone reads from a libvirt storage pool's XML: its type and the
//! folder it keeps its volumes in.

use std::path::PathBuf;

use quick_xml::events::Event;
use quick_xml::{Reader, XmlVersion};

/// `<pool type='…'>` and `<target><path>…</path></target>`, when both are there.
pub fn type_and_target(xml: &str) -> Option<(String, PathBuf)> {
    let mut reader = Reader::from_str(xml);
    let mut stack: Vec<String> = Vec::new();
    let mut kind = None;
    let mut path = None;
    loop {
        match reader.read_event().ok()? {
            Event::Start(e) => {
                if stack.is_empty() && e.name().into_inner() == "pool" {
                    kind = e.try_get_attribute("type").ok().flatten().and_then(|a| {
                        a.normalized_value(XmlVersion::Implicit1_0)
                            .ok()
                            .map(|v| v.into_owned())
                    });
                }
                stack.push(e.name().into_inner().to_owned());
            }
            Event::End(_) => {
                stack.pop();
            }
            Event::Text(t) if stack == ["pool", "target", "path"] => {
                path = Some(PathBuf::from(t.xml10_content().trim().to_owned()));
            }
            Event::Eof => break,
            _ => {}
        }
    }
    Some((kind?, path?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_type_and_target_path() {
        let xml = "<pool type='dir'>\n  <name>default</name>\n  <target>\n    <path>/var/lib/libvirt/images</path>\n  </target>\n</pool>";
        assert_eq!(
            type_and_target(xml),
            Some(("dir".into(), PathBuf::from("/var/lib/libvirt/images")))
        );
        assert_eq!(
            type_and_target("<pool type='rbd'><name>x</name></pool>"),
            None
        );
    }
}
