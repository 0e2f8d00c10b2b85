//! What one fuzz input holds: an optional first line of 16 hex digits that
//! seeds the clone's edits, then the domain XML. Any bytes are an input (a
//! missing or different first line is seed 0 and all of it is XML), and
//! corpus files stay readable XML.

use std::borrow::Cow;

/// Splits an input into the edits seed and the XML (invalid UTF-8 replaced,
/// since the service only ever sees the `String`s libvirt hands it).
pub fn split(data: &[u8]) -> (u64, Cow<'_, str>) {
    let header = data
        .get(..17)
        .filter(|h| h[16] == b'\n' && h[..16].iter().all(u8::is_ascii_hexdigit));
    match header {
        Some(h) => {
            let hex = std::str::from_utf8(&h[..16]).unwrap_or("0");
            let seed = u64::from_str_radix(hex, 16).unwrap_or(0);
            (seed, String::from_utf8_lossy(&data[17..]))
        }
        None => (0, String::from_utf8_lossy(data)),
    }
}

/// An input with the given seed line.
pub fn join(seed: u64, xml: &str) -> Vec<u8> {
    format!("{seed:016x}\n{xml}").into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_seed_line_is_optional() {
        assert_eq!(split(b"00000000000000ff\n<a/>"), (255, "<a/>".into()));
        assert_eq!(split(b"<a/>"), (0, "<a/>".into()));
        assert_eq!(split(b"00000000000000fg\n<a/>").0, 0);
        assert_eq!(split(&join(7, "<x/>")), (7, "<x/>".into()));
        assert_eq!(split(b"\xff<a/>").1, "\u{fffd}<a/>");
    }
}
