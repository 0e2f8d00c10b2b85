//! Naming rules of a clone: which VM names are acceptable, where the
//! clone's own files go (disk copies, pool volumes, UEFI variables), and the
//! host name a guest gets when its identity is reset.
//!
//! Every rule works on raw bytes of file names, so non-UTF-8 paths survive,
//! and none of them can produce a path component of "." or "..".

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

/// Longest VM name we accept, in characters.
pub const MAX_NAME_CHARS: usize = 100;

/// Longest VM name we accept in UTF-8 bytes: the clone's file names are made
/// from it, and a file name can have at most 255 bytes.
pub const MAX_NAME_BYTES: usize = 200;

/// The extension a copy gets when the new VM name alone would be its name.
const FALLBACK_EXT: &[u8] = b".img";

/// Longest file-name suffix that still counts as an extension (as virt-clone).
const MAX_EXT_LEN: usize = 7;

/// Why a VM name was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    #[error("A VM name cannot be empty")]
    Empty,
    #[error("A VM name can have at most {max} characters; this one has {len}")]
    TooLong { len: usize, max: usize },
    #[error("A VM name cannot contain '/'")]
    Slash,
    #[error(
        "A VM name cannot contain control characters such as tabs or line breaks \
         (found U+{code:04X} at character {position})"
    )]
    ControlChar { code: u32, position: usize },
    #[error("A VM name cannot start or end with a space or other whitespace")]
    EdgeWhitespace,
    #[error(
        "A VM name can have at most {max} bytes in UTF-8, since the clone's files are named after it; this one has {len}"
    )]
    TooManyBytes { len: usize, max: usize },
    #[error(
        "A VM name cannot be a UUID: VMs are also found by UUID, so this name would find another VM (or none)"
    )]
    Uuid,
}

/// Checks a new VM name: 1 to 100 characters and at most 200 bytes, no '/',
/// no control characters, no leading or trailing whitespace, not a UUID.
/// Spaces, Unicode and `&<>'"` are fine.
pub fn validate_vm_name(name: &str) -> Result<(), NameError> {
    if name.is_empty() {
        return Err(NameError::Empty);
    }
    let len = name.chars().count();
    if len > MAX_NAME_CHARS {
        return Err(NameError::TooLong {
            len,
            max: MAX_NAME_CHARS,
        });
    }
    if name.len() > MAX_NAME_BYTES {
        return Err(NameError::TooManyBytes {
            len: name.len(),
            max: MAX_NAME_BYTES,
        });
    }
    if name.contains('/') {
        return Err(NameError::Slash);
    }
    if let Some((i, c)) = name.chars().enumerate().find(|(_, c)| c.is_control()) {
        return Err(NameError::ControlChar {
            code: u32::from(c),
            position: i + 1,
        });
    }
    let first = name.chars().next().is_some_and(char::is_whitespace);
    let last = name.chars().next_back().is_some_and(char::is_whitespace);
    if first || last {
        return Err(NameError::EdgeWhitespace);
    }
    if crate::ids::normalize_uuid(name).is_some() {
        return Err(NameError::Uuid);
    }
    Ok(())
}

/// Path for the copy of disk `src` made for clone `new_name` of VM `old_name`:
/// in `target_dir` if given, else beside src.
///
/// A basename containing old_name takes new_name instead; otherwise new_name
/// goes before the extension (data.raw -> data-web02.raw, default-vol ->
/// default-vol-web02). If that path is taken, the first free -2, -3, ...
/// before the extension (web02-2.qcow2). `taken` says whether a candidate is
/// in use (exists or reserved).
///
/// "Containing" means as a whole word: the name must not be glued to further
/// letters or digits, so VM `web` does not turn `webserver.img` into
/// `web02server.img`.
pub fn disk_clone_path(
    src: &Path,
    old_name: &str,
    new_name: &str,
    target_dir: Option<&Path>,
    taken: impl Fn(&Path) -> bool,
) -> PathBuf {
    let dir = target_dir
        .or_else(|| src.parent())
        .unwrap_or_else(|| Path::new("/"));
    let base = src.file_name().map(OsStr::as_bytes).unwrap_or_default();
    let (stem, ext) = clone_stem(base, old_name.as_bytes(), new_name.as_bytes());
    let name = first_free(&stem, ext, |cand| taken(&dir.join(OsStr::from_bytes(cand))));
    dir.join(OsStr::from_bytes(&name))
}

/// Same rule as [`disk_clone_path`] for a storage-pool volume name.
pub fn volume_clone_name(
    vol: &str,
    old_name: &str,
    new_name: &str,
    taken: impl Fn(&str) -> bool,
) -> String {
    let (stem, ext) = clone_stem(vol.as_bytes(), old_name.as_bytes(), new_name.as_bytes());
    // Only ever split at ASCII bytes or whole UTF-8 names, so this stays valid UTF-8.
    let name = first_free(&stem, ext, |cand| taken(&String::from_utf8_lossy(cand)));
    String::from_utf8_lossy(&name).into_owned()
}

/// UEFI vars path of the clone, as virt-clone: `<same dir>/<new_name>_VARS<ext>`
/// where ext is the source's extension (any length, `.fakeext` stays), or
/// `.fd` when the source has none.
pub fn nvram_clone_path(src: &Path, new_name: &str) -> PathBuf {
    let dir = src.parent().unwrap_or_else(|| Path::new("/"));
    let base = src.file_name().map(OsStr::as_bytes).unwrap_or_default();
    let ext: &[u8] = match base.iter().rposition(|&b| b == b'.') {
        // A leading dot marks a hidden file, not an extension (as Python's splitext).
        Some(dot) if base[..dot].iter().any(|&b| b != b'.') && dot + 1 < base.len() => &base[dot..],
        _ => b".fd",
    };
    let mut name = new_name.as_bytes().to_vec();
    name.extend_from_slice(b"_VARS");
    name.extend_from_slice(ext);
    dir.join(OsStr::from_bytes(&name))
}

/// For auxiliary per-VM files (serial logs, sockets): the path with the old
/// VM name in its basename replaced by the new one, or None when the basename
/// does not contain the old name (or the result would be "." or "..").
pub fn rename_in_file_name(path: &str, old_name: &str, new_name: &str) -> Option<String> {
    let cut = path.rfind('/').map_or(0, |i| i + 1);
    let (dir, base) = path.split_at(cut);
    let pos = find_word(base.as_bytes(), old_name.as_bytes())?;
    let renamed = format!(
        "{}{}{}",
        &base[..pos],
        new_name,
        &base[pos + old_name.len()..]
    );
    if is_dot_name(renamed.as_bytes()) {
        return None;
    }
    Some(format!("{dir}{renamed}"))
}

/// Stem and extension of the clone's file name, before collision handling.
/// The new VM name alone is never the whole name (a name chosen by a caller
/// must not become, say, `authorized_keys`): it then gets [`FALLBACK_EXT`].
fn clone_stem<'b>(base: &'b [u8], old: &[u8], new: &[u8]) -> (Vec<u8>, &'b [u8]) {
    let (stem, ext) = clone_stem_of(base, old, new);
    match ext.is_empty() && stem == new {
        true => (stem, FALLBACK_EXT),
        false => (stem, ext),
    }
}

fn clone_stem_of<'b>(base: &'b [u8], old: &[u8], new: &[u8]) -> (Vec<u8>, &'b [u8]) {
    let (stem, ext) = split_ext(base);
    match find_word(base, old) {
        Some(pos) => {
            let end = pos + old.len();
            // When the old name runs into what looked like the extension
            // (VM "web01.example.com", file "web01.example.com"), the whole
            // basename is the stem.
            let (head, ext) = if end <= stem.len() {
                (stem, ext)
            } else {
                (base, &base[base.len()..])
            };
            let mut out = head[..pos].to_vec();
            out.extend_from_slice(new);
            out.extend_from_slice(&head[end..]);
            (out, ext)
        }
        None if stem.is_empty() => (new.to_vec(), ext),
        None => {
            let mut out = stem.to_vec();
            out.push(b'-');
            out.extend_from_slice(new);
            (out, ext)
        }
    }
}

/// `stem + ext`, or the first free `stem-N + ext` for N = 2, 3, ...
fn first_free(stem: &[u8], ext: &[u8], taken: impl Fn(&[u8]) -> bool) -> Vec<u8> {
    let join = |suffix: &[u8]| [stem, suffix, ext].concat();
    let plain = join(b"");
    if !is_dot_name(&plain) && !taken(&plain) {
        return plain;
    }
    (2u64..)
        .map(|n| join(format!("-{n}").as_bytes()))
        .find(|cand| !taken(cand))
        .unwrap_or(plain)
}

/// Splits a file name into stem and extension (with its dot). An extension
/// is 1 to 7 ASCII letters/digits with at least one letter, after a dot that
/// is not the first byte: `disk.qcow2`, `seed.iso`; not `ubuntu-22.04`,
/// `.hidden` or `host.example-net`.
fn split_ext(base: &[u8]) -> (&[u8], &[u8]) {
    match base.iter().rposition(|&b| b == b'.') {
        Some(dot) if dot > 0 => {
            let ext = &base[dot + 1..];
            let ok = !ext.is_empty()
                && ext.len() <= MAX_EXT_LEN
                && ext.iter().all(u8::is_ascii_alphanumeric)
                && ext.iter().any(u8::is_ascii_alphabetic);
            if ok {
                base.split_at(dot)
            } else {
                (base, &base[base.len()..])
            }
        }
        _ => (base, &base[base.len()..]),
    }
}

/// Position of the first occurrence of `needle` in `hay` that is not glued to
/// further letters or digits on either side.
fn find_word(hay: &[u8], needle: &[u8]) -> Option<usize> {
    if needle.is_empty() || needle.len() > hay.len() {
        return None;
    }
    // Non-ASCII bytes count as letters: they belong to a multi-byte character.
    let is_word = |b: u8| b.is_ascii_alphanumeric() || b >= 0x80;
    (0..=hay.len() - needle.len()).find(|&pos| {
        let end = pos + needle.len();
        hay[pos..end] == *needle
            && (pos == 0 || !is_word(hay[pos - 1]))
            && (end == hay.len() || !is_word(hay[end]))
    })
}

fn is_dot_name(name: &[u8]) -> bool {
    name.is_empty() || name == b"." || name == b".."
}

/// Longest host name (one DNS label, RFC 1123).
pub const MAX_HOST_NAME: usize = 63;

/// The guest host name made from a VM name (RFC 1123, one label): ASCII
/// letters lower-cased, digits kept, every run of anything else (spaces,
/// dots, underscores, non-ASCII letters) one `-`, no `-` at either end, at
/// most 63 characters. A name with no ASCII letter or digit at all becomes
/// `vm-` and the first 8 hexadecimal digits of the clone's UUID.
pub fn host_name(vm_name: &str, uuid: &str) -> String {
    let mut out = String::with_capacity(vm_name.len().min(MAX_HOST_NAME));
    for c in vm_name.chars() {
        match c.to_ascii_lowercase() {
            c @ ('a'..='z' | '0'..='9') => out.push(c),
            _ if out.ends_with('-') || out.is_empty() => {}
            _ => out.push('-'),
        }
    }
    out.truncate(MAX_HOST_NAME);
    let trimmed = out.trim_end_matches('-');
    if trimmed.is_empty() {
        let hex: String = uuid
            .chars()
            .filter(char::is_ascii_hexdigit)
            .take(8)
            .collect();
        return format!("vm-{}", hex.to_ascii_lowercase());
    }
    trimmed.to_owned()
}

/// Whether `name` is a host name by the rule of [`host_name`].
pub fn is_host_name(name: &str) -> bool {
    (1..=MAX_HOST_NAME).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !name.starts_with('-')
        && !name.ends_with('-')
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::RefCell;
    use std::collections::HashSet;

    fn none_taken(_: &Path) -> bool {
        false
    }

    #[test]
    fn valid_names_include_spaces_unicode_and_markup_characters() {
        for name in [
            "web01",
            "a",
            "my web server",
            "Büro-Rechner ☃",
            "日本語のVM",
            r#"a&b <"x'>"#,
            "name.with.dots",
            "..",
            &"x".repeat(100),
            &"é".repeat(100), // 100 characters, 200 bytes
        ] {
            assert_eq!(validate_vm_name(name), Ok(()), "{name:?}");
        }
    }

    #[test]
    fn invalid_names_are_refused_with_a_reason() {
        assert_eq!(validate_vm_name(""), Err(NameError::Empty));
        assert_eq!(
            validate_vm_name(&"x".repeat(101)),
            Err(NameError::TooLong { len: 101, max: 100 })
        );
        assert_eq!(
            validate_vm_name(&"é".repeat(101)),
            Err(NameError::TooLong { len: 101, max: 100 })
        );
        assert_eq!(validate_vm_name("a/b"), Err(NameError::Slash));
        assert_eq!(validate_vm_name("/"), Err(NameError::Slash));
        assert_eq!(
            validate_vm_name("ab\ncd"),
            Err(NameError::ControlChar {
                code: 0x0a,
                position: 3
            })
        );
        assert_eq!(
            validate_vm_name("tab\there"),
            Err(NameError::ControlChar {
                code: 9,
                position: 4
            })
        );
        assert_eq!(
            validate_vm_name("del\u{7f}"),
            Err(NameError::ControlChar {
                code: 0x7f,
                position: 4
            })
        );
        assert_eq!(
            validate_vm_name("nul\0"),
            Err(NameError::ControlChar {
                code: 0,
                position: 4
            })
        );
        for name in [" web", "web ", " ", "web\u{a0}", "\u{3000}web"] {
            assert_eq!(
                validate_vm_name(name),
                Err(NameError::EdgeWhitespace),
                "{name:?}"
            );
        }
    }

    #[test]
    fn names_whose_files_could_not_exist_and_uuids_are_refused() {
        assert_eq!(validate_vm_name(&"é".repeat(100)), Ok(()));
        assert_eq!(
            validate_vm_name(&"日".repeat(67)),
            Err(NameError::TooManyBytes { len: 201, max: 200 })
        );
        for uuid in [
            "6b3c2a4e-8f3d-4c1e-9a7b-2f5d8e9c1a3b",
            "6B3C2A4E-8F3D-4C1E-9A7B-2F5D8E9C1A3B",
        ] {
            assert_eq!(validate_vm_name(uuid), Err(NameError::Uuid), "{uuid}");
        }
        // Not UUIDs: a name may still look technical.
        assert_eq!(validate_vm_name("6b3c2a4e-8f3d-4c1e-9a7b"), Ok(()));
    }

    #[test]
    fn a_callers_name_alone_never_names_a_file() {
        // An image without extension named after its VM: the new name gets one.
        for new in ["authorized_keys", "crontab", "root"] {
            let p = disk_clone_path(Path::new("/i/web01"), "web01", new, None, none_taken);
            assert_eq!(p, Path::new("/i").join(format!("{new}.img")));
            assert_eq!(
                volume_clone_name("web01", "web01", new, |_| false),
                format!("{new}.img")
            );
        }
        // A name with a part of the source's name or an extension stays as it was.
        assert_eq!(
            disk_clone_path(Path::new("/i/web01-root"), "web01", "x", None, none_taken),
            Path::new("/i/x-root")
        );
        assert_eq!(
            disk_clone_path(Path::new("/i/disk"), "web01", "x", None, none_taken),
            Path::new("/i/disk-x")
        );
    }

    #[test]
    fn name_errors_tell_the_user_what_to_change() {
        assert_eq!(NameError::Slash.to_string(), "A VM name cannot contain '/'");
        assert_eq!(
            validate_vm_name(&"x".repeat(120)).unwrap_err().to_string(),
            "A VM name can have at most 100 characters; this one has 120"
        );
        assert_eq!(
            validate_vm_name("a\tb").unwrap_err().to_string(),
            "A VM name cannot contain control characters such as tabs or line breaks \
             (found U+0009 at character 2)"
        );
    }

    #[test]
    fn disk_named_after_the_vm_takes_the_new_name() {
        let p = |src: &str| disk_clone_path(Path::new(src), "web01", "web02", None, none_taken);
        assert_eq!(
            p("/var/lib/libvirt/images/web01.qcow2"),
            Path::new("/var/lib/libvirt/images/web02.qcow2")
        );
        assert_eq!(
            p("/images/web01-1.qcow2"),
            Path::new("/images/web02-1.qcow2")
        );
        assert_eq!(
            p("/images/disk_web01.img"),
            Path::new("/images/disk_web02.img")
        );
        // The new name alone never makes a whole file name.
        assert_eq!(p("/images/web01"), Path::new("/images/web02.img"));
        assert_eq!(p("/dev/vg0/web01-root"), Path::new("/dev/vg0/web02-root"));
    }

    #[test]
    fn other_disks_get_the_new_name_before_the_extension() {
        let p = |src: &str| disk_clone_path(Path::new(src), "web01", "web02", None, none_taken);
        assert_eq!(p("/srv/data.raw"), Path::new("/srv/data-web02.raw"));
        assert_eq!(
            p("/pool-dir/default-vol"),
            Path::new("/pool-dir/default-vol-web02")
        );
        assert_eq!(
            p("/srv/disk.img.qcow2"),
            Path::new("/srv/disk.img-web02.qcow2")
        );
        // Not extensions: digits only, too long, or a leading dot.
        assert_eq!(p("/srv/ubuntu-22.04"), Path::new("/srv/ubuntu-22.04-web02"));
        assert_eq!(
            p("/srv/disk.longextension"),
            Path::new("/srv/disk.longextension-web02")
        );
        assert_eq!(p("/srv/.hidden"), Path::new("/srv/.hidden-web02"));
        // A name glued to other letters is not the VM's name.
        assert_eq!(p("/srv/web010.img"), Path::new("/srv/web010-web02.img"));
        assert_eq!(
            disk_clone_path(
                Path::new("/srv/webserver.img"),
                "web",
                "web02",
                None,
                none_taken
            ),
            Path::new("/srv/webserver-web02.img")
        );
    }

    #[test]
    fn a_dotted_vm_name_is_matched_across_the_extension() {
        let p = |src: &str| {
            disk_clone_path(
                Path::new(src),
                "web01.example.com",
                "web02",
                None,
                none_taken,
            )
        };
        assert_eq!(p("/i/web01.example.com.qcow2"), Path::new("/i/web02.qcow2"));
        assert_eq!(p("/i/web01.example.com"), Path::new("/i/web02.img"));
    }

    #[test]
    fn target_dir_replaces_the_source_directory() {
        assert_eq!(
            disk_clone_path(
                Path::new("/var/lib/libvirt/images/web01.qcow2"),
                "web01",
                "web02",
                Some(Path::new("/mnt/fast")),
                none_taken
            ),
            Path::new("/mnt/fast/web02.qcow2")
        );
    }

    #[test]
    fn taken_paths_get_the_first_free_number_before_the_extension() {
        let existing: HashSet<PathBuf> =
            ["/i/web02.qcow2", "/i/web02-2.qcow2", "/i/data-web02.raw"]
                .iter()
                .map(PathBuf::from)
                .collect();
        let taken = |p: &Path| existing.contains(p);
        assert_eq!(
            disk_clone_path(Path::new("/i/web01.qcow2"), "web01", "web02", None, taken),
            Path::new("/i/web02-3.qcow2")
        );
        assert_eq!(
            disk_clone_path(Path::new("/i/data.raw"), "web01", "web02", None, taken),
            Path::new("/i/data-web02-2.raw")
        );
        assert_eq!(
            disk_clone_path(Path::new("/i/default-vol"), "web01", "web02", None, taken),
            Path::new("/i/default-vol-web02")
        );
    }

    #[test]
    fn cloning_the_same_source_again_and_again_never_reuses_a_path() {
        // The caller reserves each result, as the service does.
        let reserved = RefCell::new(HashSet::new());
        let mut got = Vec::new();
        for _ in 0..4 {
            let p = disk_clone_path(Path::new("/i/web01.qcow2"), "web01", "web02", None, |p| {
                reserved.borrow().contains(p)
            });
            reserved.borrow_mut().insert(p.clone());
            got.push(p);
        }
        let want: Vec<PathBuf> = [
            "web02.qcow2",
            "web02-2.qcow2",
            "web02-3.qcow2",
            "web02-4.qcow2",
        ]
        .iter()
        .map(|n| Path::new("/i").join(n))
        .collect();
        assert_eq!(got, want);
    }

    #[test]
    fn spaces_and_unicode_in_names_stay_in_one_path_component() {
        let p = disk_clone_path(
            Path::new("/i/Büro PC.qcow2"),
            "Büro PC",
            "Büro PC (Kopie) ☃",
            None,
            none_taken,
        );
        assert_eq!(p, Path::new("/i/Büro PC (Kopie) ☃.qcow2"));
        assert_eq!(p.parent(), Some(Path::new("/i")));
        let p = disk_clone_path(
            Path::new("/i/data.raw"),
            "x",
            "a&b <\"x'>",
            None,
            none_taken,
        );
        assert_eq!(p, Path::new("/i/data-a&b <\"x'>.raw"));
    }

    #[test]
    fn dot_names_never_become_path_components() {
        for new in [".", ".."] {
            let p = disk_clone_path(Path::new("/i/web01"), "web01", new, None, none_taken);
            assert_eq!(p, Path::new("/i").join(format!("{new}.img")));
            assert_eq!(p.parent(), Some(Path::new("/i")));
            assert_eq!(
                volume_clone_name("web01", "web01", new, |_| false),
                format!("{new}.img")
            );
            let p = disk_clone_path(Path::new("/i/x.img"), "web01", new, None, none_taken);
            assert_eq!(p.parent(), Some(Path::new("/i")));
            assert_eq!(rename_in_file_name("/tmp/web01", "web01", new), None);
            let nv = nvram_clone_path(Path::new("/nvram/web01_VARS.fd"), new);
            assert_eq!(nv.parent(), Some(Path::new("/nvram")));
        }
        // Other names next to dots are ordinary file names.
        assert_eq!(
            disk_clone_path(Path::new("/i/data.raw"), "web01", "..", None, none_taken),
            Path::new("/i/data-...raw")
        );
    }

    #[test]
    fn non_utf8_paths_survive() {
        let src = Path::new(OsStr::from_bytes(b"/i/disk\xff.img"));
        let p = disk_clone_path(src, "web01", "web02", None, none_taken);
        assert_eq!(p.as_os_str().as_bytes(), b"/i/disk\xff-web02.img");
    }

    #[test]
    fn volume_names_follow_the_disk_rule() {
        assert_eq!(
            volume_clone_name("web01.qcow2", "web01", "web02", |_| false),
            "web02.qcow2"
        );
        assert_eq!(
            volume_clone_name("default-vol", "web01", "web02", |_| false),
            "default-vol-web02"
        );
        let taken = ["web02.qcow2".to_string(), "web02-2.qcow2".to_string()];
        assert_eq!(
            volume_clone_name("web01.qcow2", "web01", "web02", |n| taken
                .iter()
                .any(|t| t == n)),
            "web02-3.qcow2"
        );
        assert_eq!(
            volume_clone_name("Büro.img", "Büro", "Küche ☃", |_| false),
            "Küche ☃.img"
        );
    }

    #[test]
    fn nvram_goes_beside_the_source_as_name_vars_ext() {
        // The virt-clone conformance cases.
        assert_eq!(
            nvram_clone_path(
                Path::new("/nvram/clone-orig_VARS.fakeext"),
                "clone-orig-clone"
            ),
            Path::new("/nvram/clone-orig-clone_VARS.fakeext")
        );
        assert_eq!(
            nvram_clone_path(
                Path::new("/nvram-newpool/clone-orig-vars.fd"),
                "clone-orig-clone"
            ),
            Path::new("/nvram-newpool/clone-orig-clone_VARS.fd")
        );
        assert_eq!(
            nvram_clone_path(
                Path::new("/nvram/clone-orig-missing_VARS.fd"),
                "clone-orig-clone"
            ),
            Path::new("/nvram/clone-orig-clone_VARS.fd")
        );
        // No usable extension: .fd.
        for src in ["/nvram/vars", "/nvram/.vars", "/nvram/vars."] {
            assert_eq!(
                nvram_clone_path(Path::new(src), "web02"),
                Path::new("/nvram/web02_VARS.fd"),
                "{src}"
            );
        }
        assert_eq!(
            nvram_clone_path(
                Path::new("/var/lib/libvirt/qemu/nvram/web01_VARS.fd"),
                "my web ☃"
            ),
            Path::new("/var/lib/libvirt/qemu/nvram/my web ☃_VARS.fd")
        );
    }

    #[test]
    fn auxiliary_files_rename_only_when_they_carry_the_vm_name() {
        assert_eq!(
            rename_in_file_name("/var/log/web01-serial0.log", "web01", "web02").as_deref(),
            Some("/var/log/web02-serial0.log")
        );
        // Only the basename is considered.
        assert_eq!(
            rename_in_file_name("/srv/web01/serial.log", "web01", "web02"),
            None
        );
        assert_eq!(
            rename_in_file_name("/tmp/other.file", "web01", "web02"),
            None
        );
    }

    #[test]
    fn host_names_follow_rfc_1123() {
        let uuid = "6B3C2A4E-8f3d-4c1e-9a7b-2f5d8e9c1a3b";
        let cases = [
            ("web01-clone", "web01-clone"),
            ("Web 01 (Copy)", "web-01-copy"),
            ("db.prod_2", "db-prod-2"),
            ("--edge--", "edge"),
            ("Grüße an Zoë", "gr-e-an-zo"),
            ("2024", "2024"),
            ("日本語", "vm-6b3c2a4e"),
            ("&<>'\"", "vm-6b3c2a4e"),
        ];
        for (vm, want) in cases {
            let got = host_name(vm, uuid);
            assert_eq!(got, want, "{vm}");
            assert!(is_host_name(&got), "{got}");
        }
        let long = host_name(&format!("{}-tail", "a".repeat(62)), uuid);
        assert_eq!(long, "a".repeat(62), "cut to 63, then no trailing '-'");
        assert_eq!(host_name(&"b".repeat(100), uuid).len(), MAX_HOST_NAME);
        for bad in ["", "-a", "a-", "A", "a_b", "a.b", &"c".repeat(64)] {
            assert!(!is_host_name(bad), "{bad}");
        }
    }
}
