//! Parts of a domain that a clone can neither share with its source nor
//! copy: host devices, vhost-user sockets, writable host folders and memory
//! backing files, UEFI variables outside a file. Read during [`super::parse`].

use quick_xml::events::BytesStart;

use super::tag::{self, attr, TagError};

/// What a clone cannot take over.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unsharable {
    pub kind: UnsharableKind,
    /// The device's source (path, address or type), for the message.
    pub detail: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UnsharableKind {
    /// `<nvram type='block'>` or `type='network'`.
    NvramNotFile,
    /// A writable NVDIMM or virtio-pmem backing file.
    PersistentMemory,
    /// A writable `<filesystem>` passthrough.
    Filesystem,
    /// `<hostdev>` or `<interface type='hostdev'>`.
    HostDevice,
    /// A vhost-user socket (interface, disk backend, filesystem daemon).
    VhostUser,
}

/// A device being read: what it is and whether it is read-only.
struct Open {
    kind: UnsharableKind,
    depth: usize,
    detail: String,
    /// `<readonly/>` or `<shareable/>`: meant to be shared.
    readonly: bool,
    /// The depth of a `<source><path>` whose text is the detail.
    path_depth: Option<usize>,
}

/// Collects the unsharable parts of one domain.
#[derive(Default)]
pub(super) struct Collector {
    open: Option<Open>,
    pub(super) found: Vec<Unsharable>,
}

impl Collector {
    /// An element `e` starts inside `stack` (root first).
    pub(super) fn on_start(
        &mut self,
        stack: &[String],
        e: &BytesStart,
        empty: bool,
    ) -> Result<(), TagError> {
        let name = tag::name(e);
        if let Some(open) = &mut self.open {
            match name {
                "readonly" | "shareable" => open.readonly = true,
                "path" if open.detail.is_empty() && !empty => {
                    open.path_depth = Some(stack.len() + 1)
                }
                "source" if open.detail.is_empty() => {
                    open.detail = ["path", "file", "dir", "socket", "dev", "name"]
                        .iter()
                        .find_map(|k| attr(e, k).ok().flatten())
                        .unwrap_or_default();
                }
                _ => {}
            }
            return Ok(());
        }
        if tag::at(stack, &["domain", "os"]) && name == "nvram" {
            if let Some(kind @ ("block" | "network")) = attr(e, "type")?.as_deref() {
                self.found.push(Unsharable {
                    kind: UnsharableKind::NvramNotFile,
                    detail: kind.to_owned(),
                });
            }
            return Ok(());
        }
        if !tag::at(stack, &["domain", "devices"]) {
            return Ok(());
        }
        let kind = match (
            name,
            attr(e, "type")?.as_deref(),
            attr(e, "model")?.as_deref(),
        ) {
            ("hostdev", ..) => Some(UnsharableKind::HostDevice),
            ("interface", Some("hostdev"), _) => Some(UnsharableKind::HostDevice),
            ("interface" | "disk", Some("vhostuser"), _) => Some(UnsharableKind::VhostUser),
            ("filesystem", ..) => Some(UnsharableKind::Filesystem),
            ("memory", _, Some("nvdimm" | "virtio-pmem")) => Some(UnsharableKind::PersistentMemory),
            _ => None,
        };
        let Some(kind) = kind else {
            return Ok(());
        };
        let open = Open {
            kind,
            depth: stack.len() + 1,
            detail: String::new(),
            readonly: false,
            path_depth: None,
        };
        match empty {
            true => self.close(open),
            false => self.open = Some(open),
        }
        Ok(())
    }

    /// Text inside the element at `stack`; wanted only inside `<path>`.
    pub(super) fn on_text(&mut self, stack: &[String], text: &str) {
        if let Some(open) = &mut self.open {
            if open.path_depth == Some(stack.len()) {
                open.detail.push_str(text.trim());
            }
        }
    }

    /// Whether `on_text` wants the text at this depth.
    pub(super) fn wants_text(&self, depth: usize) -> bool {
        self.open
            .as_ref()
            .is_some_and(|o| o.path_depth == Some(depth))
    }

    /// The element at `stack` (itself included) ends.
    pub(super) fn on_end(&mut self, stack: &[String]) {
        if let Some(open) = self.open.take_if(|o| o.depth == stack.len()) {
            self.close(open);
        }
    }

    fn close(&mut self, open: Open) {
        // A read-only or shareable device is shared, as a read-only disk is;
        // a vhost-user socket serves one VM, whatever it says.
        let shared_when_readonly = open.kind != UnsharableKind::VhostUser;
        if open.readonly && shared_when_readonly {
            return;
        }
        self.found.push(Unsharable {
            kind: open.kind,
            detail: open.detail,
        });
    }
}
