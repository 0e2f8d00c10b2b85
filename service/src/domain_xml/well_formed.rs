//! What the rewrite refuses as not XML. quick-xml, which streams the
//! rewrite, lets much through that libvirt's libxml2 refuses (text outside
//! the root, control characters, bad names, unbound prefixes, undefined
//! entities, ...), and the rewrite would copy it into the clone's XML, which
//! libvirt would then refuse after the disks were copied.

use super::XmlError;

/// Refuses what is not well-formed XML 1.0 with namespaces, by the strict
/// reader roxmltree. libvirt never writes a DTD; one is refused too.
pub(super) fn check(xml: &str) -> Result<(), XmlError> {
    if !declaration_values_ok(xml) {
        return Err(XmlError::Malformed {
            position: 0,
            message: "the XML declaration must say version 1.x, encoding UTF-8 and \
                      standalone yes or no"
                .into(),
        });
    }
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

/// roxmltree checks the form of an XML declaration, not its values. Only
/// UTF-8 is right: the XML is a Rust string, and libvirt would decode the
/// bytes as whatever encoding the declaration names.
fn declaration_values_ok(xml: &str) -> bool {
    let xml = xml.strip_prefix('\u{feff}').unwrap_or(xml);
    let Some(mut rest) = xml
        .strip_prefix("<?xml")
        .filter(|r| r.starts_with([' ', '\t', '\r', '\n']))
        .and_then(|r| r.split_once("?>"))
        .map(|(decl, _)| decl)
    else {
        return true;
    };
    loop {
        rest = rest.trim_start();
        let Some((key, value)) = rest.split_once('=') else {
            return true;
        };
        let value = value.trim_start();
        let Some(quote) = value.chars().next().filter(|q| matches!(q, '\'' | '"')) else {
            return false;
        };
        let Some((value, tail)) = value[1..].split_once(quote) else {
            return false;
        };
        let ok = match key.trim_end() {
            "version" => value
                .strip_prefix("1.")
                .is_some_and(|d| !d.is_empty() && d.bytes().all(|b| b.is_ascii_digit())),
            "encoding" => value.eq_ignore_ascii_case("UTF-8"),
            "standalone" => matches!(value, "yes" | "no"),
            _ => false,
        };
        if !ok {
            return false;
        }
        rest = tail;
    }
}
