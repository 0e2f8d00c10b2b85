//! What the rewrite refuses as not XML. quick-xml, which streams the
//! rewrite, lets much through that libvirt's libxml2 refuses (text outside
//! the root, control characters, bad names, unbound prefixes, undefined
//! entities, ...), and the rewrite would copy it into the clone's XML, which
//! libvirt would then refuse after the disks were copied.

use super::XmlError;

/// Refuses what is not well-formed XML 1.0 with namespaces, by the strict
/// reader roxmltree. libvirt never writes a DTD; one is refused too.
pub(super) fn check(xml: &str) -> Result<(), XmlError> {
    roxmltree::Document::parse(xml).map(drop).map_err(|e| {
        let pos = e.pos();
        let line_start: usize = xml
            .split_inclusive('\n')
            .take(pos.row.saturating_sub(1) as usize)
            .map(str::len)
            .sum();
        let column: usize = xml[line_start..]
            .chars()
            .take(pos.col.saturating_sub(1) as usize)
            .map(char::len_utf8)
            .sum();
        XmlError::Malformed {
            position: (line_start + column) as u64,
            message: e.to_string(),
        }
    })
}
