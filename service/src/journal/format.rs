//! The journal's text: one event per line, fields tab-separated and
//! percent-encoded (see the module above for the events).

use std::ffi::OsString;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Path, PathBuf};

use super::{set_made, Artifact, Made, HEADER};
use crate::storage::folder::FileId;

pub(super) fn encode_intent(n: usize, a: &Artifact) -> String {
    let fields: Vec<String> = match a {
        Artifact::File {
            folder,
            folder_id,
            name,
            ..
        } => vec![
            "file".into(),
            n.to_string(),
            pct(folder.as_os_str().as_bytes()),
            folder_id.to_string(),
            pct(name.as_bytes()),
        ],
        Artifact::Tree {
            folder,
            folder_id,
            name,
            ..
        } => vec![
            "tree".into(),
            n.to_string(),
            pct(folder.as_os_str().as_bytes()),
            folder_id.to_string(),
            pct(name.as_bytes()),
        ],
        Artifact::Volume { pool, name, .. } => vec![
            "volume".into(),
            n.to_string(),
            pct(pool.as_bytes()),
            pct(name.as_bytes()),
        ],
        Artifact::Domain { uuid } => vec!["domain".into(), n.to_string(), pct(uuid.as_bytes())],
        Artifact::Backup {
            domain,
            staging,
            was_running,
            ..
        } => vec![
            "backup".into(),
            n.to_string(),
            pct(domain.as_bytes()),
            pct(staging.as_bytes()),
            if *was_running { "running" } else { "paused" }.into(),
        ],
        Artifact::Legacy { path, tree } => vec![
            if *tree { "legacy-tree" } else { "legacy-file" }.into(),
            n.to_string(),
            pct(path.as_os_str().as_bytes()),
        ],
    };
    fields.join("\t") + "\n"
}

pub(super) fn encode_made(n: usize, a: &Artifact) -> Option<String> {
    let ids = match a {
        Artifact::File { id: Some(id), .. } | Artifact::Tree { id: Some(id), .. } => {
            vec![id.to_string()]
        }
        Artifact::Volume { key: Some(key), .. } => vec![pct(key.as_bytes())],
        Artifact::Backup {
            frozen,
            paused,
            resumed,
            ..
        } => [(*frozen, "frozen"), (*paused, "paused"), (*resumed, "-")]
            .into_iter()
            .filter(|(set, _)| *set)
            .map(|(_, id)| id.to_owned())
            .collect(),
        _ => return None,
    };
    let lines: String = ids.iter().map(|id| format!("made\t{n}\t{id}\n")).collect();
    (!lines.is_empty()).then_some(lines)
}

/// A journal as read back.
#[derive(Debug, Default, PartialEq)]
pub(super) struct Decoded {
    pub(super) artifacts: Vec<Artifact>,
    pub(super) committed: bool,
}

pub(super) fn decode(text: &[u8], path: &Path) -> Decoded {
    let lines: Vec<&[u8]> = text
        .split(|b| *b == b'\n')
        .filter(|l| !l.is_empty())
        .collect();
    let v2 = lines.first().map(|l| *l == HEADER.trim_end().as_bytes()) == Some(true);
    let mut slots: Vec<Option<Artifact>> = Vec::new();
    let mut out = Decoded::default();
    for line in lines.iter().skip(usize::from(v2)) {
        let parsed = match v2 {
            true => decode_line(line, &mut slots, &mut out.committed),
            false => decode_legacy(line).map(|a| slots.push(Some(a))),
        };
        if parsed.is_none() {
            tracing::error!(
                "ignoring an unreadable line in {}: {}",
                path.display(),
                String::from_utf8_lossy(line)
            );
        }
    }
    out.artifacts = slots.into_iter().flatten().collect();
    out
}

fn decode_line(line: &[u8], slots: &mut Vec<Option<Artifact>>, committed: &mut bool) -> Option<()> {
    let fields: Vec<Vec<u8>> = line
        .split(|b| *b == b'\t')
        .map(unpct)
        .collect::<Option<_>>()?;
    let text = |b: &Vec<u8>| String::from_utf8(b.clone()).ok();
    let os = |b: &Vec<u8>| OsString::from_vec(b.clone());
    let number = |b: &Vec<u8>| text(b)?.parse::<usize>().ok();
    let id = |b: &Vec<u8>| text(b)?.parse::<FileId>().ok();
    let mut add = |n: usize, a: Artifact| (n == slots.len()).then(|| slots.push(Some(a)));
    match fields.as_slice() {
        [k] if k == b"committed" => {
            *committed = true;
            Some(())
        }
        [k, n, folder, folder_id, name] if k == b"file" || k == b"tree" => {
            let (folder, folder_id, name) = (PathBuf::from(os(folder)), id(folder_id)?, os(name));
            let a = match k.as_slice() {
                b"file" => Artifact::File {
                    folder,
                    folder_id,
                    name,
                    id: None,
                },
                _ => Artifact::Tree {
                    folder,
                    folder_id,
                    name,
                    id: None,
                },
            };
            add(number(n)?, a)
        }
        [k, n, pool, name] if k == b"volume" => add(
            number(n)?,
            Artifact::Volume {
                pool: text(pool)?,
                name: text(name)?,
                key: None,
            },
        ),
        [k, n, uuid] if k == b"domain" => add(number(n)?, Artifact::Domain { uuid: text(uuid)? }),
        [k, n, domain, staging, state] if k == b"backup" => add(
            number(n)?,
            Artifact::Backup {
                domain: text(domain)?,
                staging: os(staging),
                was_running: match state.as_slice() {
                    b"running" => true,
                    b"paused" => false,
                    _ => return None,
                },
                frozen: false,
                paused: false,
                resumed: false,
            },
        ),
        [k, n, path] if k == b"legacy-file" || k == b"legacy-tree" => add(
            number(n)?,
            Artifact::Legacy {
                path: PathBuf::from(os(path)),
                tree: k == b"legacy-tree",
            },
        ),
        [k, n, made] if k == b"made" => {
            let a = slots.get_mut(number(n)?)?.as_mut()?;
            let made = match a {
                Artifact::File { .. } | Artifact::Tree { .. } => Made::File(id(made)?),
                Artifact::Volume { .. } => Made::Volume(text(made)?),
                Artifact::Backup { .. } => match made.as_slice() {
                    b"frozen" => Made::Frozen,
                    b"paused" => Made::Paused,
                    b"-" => Made::Resumed,
                    _ => return None,
                },
                _ => Made::Domain,
            };
            set_made(a, made);
            Some(())
        }
        [k, n] if k == b"dropped" => {
            *slots.get_mut(number(n)?)? = None;
            Some(())
        }
        _ => None,
    }
}

/// A line of a journal written by vmclone 0.1 (no identities, no numbers).
fn decode_legacy(line: &[u8]) -> Option<Artifact> {
    let fields: Vec<Vec<u8>> = line
        .split(|b| *b == b'\t')
        .map(unpct)
        .collect::<Option<_>>()?;
    let text = |b: &Vec<u8>| String::from_utf8(b.clone()).ok();
    let path = |b: &Vec<u8>| PathBuf::from(OsString::from_vec(b.clone()));
    match fields.as_slice() {
        [k, p] if k == b"file" => Some(Artifact::Legacy {
            path: path(p),
            tree: false,
        }),
        [k, p] if k == b"tree" => Some(Artifact::Legacy {
            path: path(p),
            tree: true,
        }),
        [k, pool, name] if k == b"volume" => Some(Artifact::Volume {
            pool: text(pool)?,
            name: text(name)?,
            key: None,
        }),
        [k, uuid] if k == b"domain" => Some(Artifact::Domain { uuid: text(uuid)? }),
        _ => None,
    }
}

pub(super) fn pct(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len());
    for &b in bytes {
        if b.is_ascii_graphic() && b != b'%' || b == b' ' {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn unpct(field: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(field.len());
    let mut i = 0;
    while i < field.len() {
        if field[i] == b'%' {
            let hex = std::str::from_utf8(field.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(field[i]);
            i += 1;
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn odd() -> OsString {
        OsString::from_vec(b"a\tb\nc%d \xff.qcow2".to_vec())
    }

    #[test]
    fn every_event_round_trips_through_the_journal_text() {
        let fid = FileId { dev: 8, ino: 12 };
        let artifacts = vec![
            Artifact::File {
                folder: PathBuf::from("/var/lib/images/x y"),
                folder_id: FileId { dev: 8, ino: 2 },
                name: odd(),
                id: Some(fid),
            },
            Artifact::Tree {
                folder: PathBuf::from("/var/lib/libvirt/swtpm"),
                folder_id: FileId { dev: 8, ino: 3 },
                name: "6b3c2a4e-8f3d-4c1e-9a7b-2f5d8e9c1a3b".into(),
                id: None,
            },
            Artifact::Volume {
                pool: "default pool".into(),
                name: "web 01 & <x>.qcow2".into(),
                key: Some("/pool/web 01 & <x>.qcow2".into()),
            },
            Artifact::Domain {
                uuid: "12345678-1234-1234-1234-123456789abc".into(),
            },
            Artifact::Backup {
                domain: "0f1e2d3c-4b5a-4968-8776-655443322110".into(),
                staging: ".vmclone-live-12345678".into(),
                was_running: true,
                frozen: true,
                paused: true,
                resumed: true,
            },
            Artifact::Backup {
                domain: "0f1e2d3c-4b5a-4968-8776-655443322110".into(),
                staging: odd(),
                was_running: false,
                frozen: false,
                paused: false,
                resumed: false,
            },
            Artifact::Backup {
                domain: "0f1e2d3c-4b5a-4968-8776-655443322110".into(),
                staging: ".vmclone-live-2".into(),
                was_running: true,
                frozen: true,
                paused: false,
                resumed: false,
            },
        ];
        let mut text = String::from(HEADER);
        for (n, a) in artifacts.iter().enumerate() {
            text += &encode_intent(n, a);
            text += &encode_made(n, a).unwrap_or_default();
        }
        text += "committed\n";
        let back = decode(text.as_bytes(), Path::new("/j"));
        assert_eq!(back.artifacts, artifacts);
        assert!(back.committed);
    }

    #[test]
    fn a_dropped_entry_is_not_undone_and_garbage_is_not_misread() {
        let text = format!(
            "{HEADER}file\t0\t/i\t1:2\tx.img\nfile\t1\t/i\t1:2\ty.img\ndropped\t0\nmade\t1\t1:9\nfile\t7\t/i\t1:2\tz\nmade\t1\nbogus\n"
        );
        let back = decode(text.as_bytes(), Path::new("/j"));
        assert_eq!(
            back.artifacts,
            vec![Artifact::File {
                folder: "/i".into(),
                folder_id: FileId { dev: 1, ino: 2 },
                name: "y.img".into(),
                id: Some(FileId { dev: 1, ino: 9 }),
            }]
        );
        assert!(!back.committed);
    }

    #[test]
    fn journals_of_vmclone_0_1_are_read_by_path() {
        let text = b"file\t/i/web02.qcow2\ntree\t/var/lib/libvirt/swtpm/u\nvolume\tdefault\tweb02.img\ndomain\tu\n";
        let back = decode(text, Path::new("/j"));
        assert_eq!(
            back.artifacts,
            vec![
                Artifact::Legacy {
                    path: "/i/web02.qcow2".into(),
                    tree: false
                },
                Artifact::Legacy {
                    path: "/var/lib/libvirt/swtpm/u".into(),
                    tree: true
                },
                Artifact::Volume {
                    pool: "default".into(),
                    name: "web02.img".into(),
                    key: None
                },
                Artifact::Domain { uuid: "u".into() },
            ]
        );
    }
}
