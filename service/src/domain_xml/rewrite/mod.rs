//! Writing the clone's domain XML: the source XML streams from a quick-xml
//! reader to a writer; events we do not change are written exactly as read,
//! and even edited start tags keep their untouched attributes byte for byte.
//! `rules.rs` says what changes, `stream.rs` does the streaming.

mod rules;
mod stream;

use super::{parse, well_formed, CloneEdits, DiskSource, XmlError};
use rules::Rules;
use stream::Rewriter;

/// Streams the inactive+secure source XML through a quick-xml Reader->Writer,
/// passing every untouched event through as it was. What changes:
///
/// - `<name>`, `<uuid>`; the `id` of `<domain>`, `<title>` and our template
///   metadata are dropped (an emptied `<metadata>` goes too);
/// - every `<interface>` gets its MAC (a `<mac>` is added if missing) and
///   loses `<target dev>`;
/// - `<sysinfo>` values equal to the old UUID take the new one; a non-empty
///   `<genid>` gets the given new value;
/// - `<graphics>` with fixed ports and a fixed vsock CID become automatic;
/// - unix channels with libvirt-generated socket paths lose the path;
///   serial/console/channel/parallel files and sockets named after the VM are
///   renamed;
/// - disks with a [`NewDisk`], the NVRAM path, vcpus and memory, as asked.
pub fn rewrite(xml: &str, edits: &CloneEdits) -> Result<String, XmlError> {
    well_formed::check(xml)?;
    let info = parse(xml)?;
    if edits.macs.len() != info.interfaces.len() {
        return Err(XmlError::MacCount {
            expected: info.interfaces.len(),
            given: edits.macs.len(),
        });
    }
    if edits.disks.len() != info.disks.len() {
        return Err(XmlError::DiskCount {
            expected: info.disks.len(),
            given: edits.disks.len(),
        });
    }
    for (index, (disk, edit)) in info.disks.iter().zip(edits.disks).enumerate() {
        let editable = matches!(
            disk.source,
            DiskSource::Empty
                | DiskSource::File(_)
                | DiskSource::Block(_)
                | DiskSource::Volume { .. }
        );
        if edit.is_some() && !editable {
            return Err(XmlError::UnsupportedDiskEdit {
                index,
                source_kind: disk.source.kind(),
            });
        }
    }
    let rules = Rules::new(edits, info.name, info.uuid, info.vcpus);
    let out = Rewriter::new(xml, rules).run()?;
    String::from_utf8(out).map_err(|e| XmlError::Malformed {
        position: 0,
        message: e.to_string(),
    })
}
