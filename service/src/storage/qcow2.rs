//! What the header of a qcow2 image says about its backing file and size,
//! read by vmclone itself (asking qemu-img would make it open whatever the
//! header names).

use std::fs::File;
use std::os::unix::fs::FileExt;

/// "QFI\xfb".
const MAGIC: [u8; 4] = *b"QFI\xfb";
/// Header extension holding the backing file's format.
const EXT_BACKING_FORMAT: u32 = 0xE279_2ACA;
/// Header extension naming an external data file ("DATA").
const EXT_DATA_FILE: u32 = 0x4441_5441;
/// v3 incompatible feature: the guest data lives in an external file.
const FEATURE_DATA_FILE: u64 = 1 << 2;
/// v3 incompatible features QEMU 7.2 knows: dirty, corrupt, external data
/// file, compression type, extended L2 entries.
const KNOWN_FEATURES: u64 = 0b1_1111;
/// QEMU refuses longer backing file names.
const MAX_BACKING_NAME: u32 = 1023;
/// Header extensions end within the first cluster; we read at most this much.
const MAX_HEADER: usize = 64 << 10;

/// A qcow2 image's backing file, as its header names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Backing {
    /// As written: absolute, relative to the image's folder, or a
    /// protocol/`json:` name.
    pub name: Vec<u8>,
    pub format: Option<String>,
}

/// What the header says; None when the file is not a qcow2 image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    pub virtual_size: u64,
    pub backing: Option<Backing>,
}

fn be32(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_be_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

fn be64(b: &[u8], at: usize) -> Option<u64> {
    Some(u64::from_be_bytes(b.get(at..at + 8)?.try_into().ok()?))
}

/// Reads the header of `file`; `Ok(None)` when it is not qcow2, `Err` with a
/// reason when it is but the header cannot be trusted.
pub fn read_header(file: &File) -> std::io::Result<Option<Header>> {
    let mut buf = vec![0u8; MAX_HEADER];
    let mut len = 0;
    while len < buf.len() {
        match file.read_at(&mut buf[len..], len as u64)? {
            0 => break,
            n => len += n,
        }
    }
    parse(&buf[..len]).map_err(|why| std::io::Error::new(std::io::ErrorKind::InvalidData, why))
}

fn parse(b: &[u8]) -> Result<Option<Header>, &'static str> {
    if b.len() < 72 || b[..4] != MAGIC {
        return Ok(None);
    }
    let bad = "its qcow2 header is damaged";
    // An external data file is opened (read-write, by qemu-img or QEMU
    // running as root) by the name the image's writer chose: it could be
    // any file on the host. Unknown features could mean anything.
    let data_file = "it keeps its data in an external file (qcow2 data-file), which vmclone does not follow. Make it a self-contained image first (qemu-img convert)";
    let version = be32(b, 4).ok_or(bad)?;
    let backing_offset = be64(b, 8).ok_or(bad)?;
    let backing_len = be32(b, 16).ok_or(bad)?;
    let virtual_size = be64(b, 24).ok_or(bad)?;
    let header_len = match version {
        2 => 72,
        3 => {
            let features = be64(b, 72).ok_or(bad)?;
            if features & FEATURE_DATA_FILE != 0 {
                return Err(data_file);
            }
            if features & !KNOWN_FEATURES != 0 {
                return Err("its qcow2 header uses features vmclone does not know");
            }
            be32(b, 100).ok_or(bad)? as usize
        }
        _ => return Err("it is a qcow2 version vmclone does not know"),
    };
    let mut format = None;
    let mut at = header_len;
    // Extensions: type, length, data padded to 8 bytes; type 0 ends them.
    while let (Some(kind), Some(ext_len)) = (be32(b, at), be32(b, at + 4)) {
        if kind == 0 {
            break;
        }
        let data = b.get(at + 8..at + 8 + ext_len as usize).ok_or(bad)?;
        match kind {
            EXT_BACKING_FORMAT => format = Some(String::from_utf8(data.to_vec()).map_err(|_| bad)?),
            EXT_DATA_FILE => return Err(data_file),
            _ => {}
        }
        at += 8 + (ext_len as usize).div_ceil(8) * 8;
    }
    if backing_offset == 0 {
        return Ok(Some(Header {
            virtual_size,
            backing: None,
        }));
    }
    if backing_len == 0 || backing_len > MAX_BACKING_NAME {
        return Err(bad);
    }
    let start = usize::try_from(backing_offset).map_err(|_| bad)?;
    let name = b
        .get(start..start + backing_len as usize)
        .ok_or(bad)?
        .to_vec();
    Ok(Some(Header {
        virtual_size,
        backing: Some(Backing { name, format }),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A v3 header as qemu-img writes it, with a backing file and format.
    fn header(backing: &[u8], format: Option<&str>) -> Vec<u8> {
        let mut b = vec![0u8; 512];
        b[..4].copy_from_slice(&MAGIC);
        b[4..8].copy_from_slice(&3u32.to_be_bytes());
        b[24..32].copy_from_slice(&(1u64 << 30).to_be_bytes());
        b[100..104].copy_from_slice(&112u32.to_be_bytes());
        let mut at = 112;
        if let Some(f) = format {
            b[at..at + 4].copy_from_slice(&EXT_BACKING_FORMAT.to_be_bytes());
            b[at + 4..at + 8].copy_from_slice(&(f.len() as u32).to_be_bytes());
            b[at + 8..at + 8 + f.len()].copy_from_slice(f.as_bytes());
            at += 8 + f.len().div_ceil(8) * 8;
        }
        at += 8; // the end extension: type 0
        if !backing.is_empty() {
            b[8..16].copy_from_slice(&(at as u64).to_be_bytes());
            b[16..20].copy_from_slice(&(backing.len() as u32).to_be_bytes());
            b[at..at + backing.len()].copy_from_slice(backing);
        }
        b
    }

    #[test]
    fn reads_backing_name_format_and_size() {
        let h = parse(&header(b"../base.qcow2", Some("qcow2")))
            .unwrap()
            .unwrap();
        assert_eq!(h.virtual_size, 1 << 30);
        assert_eq!(
            h.backing,
            Some(Backing {
                name: b"../base.qcow2".to_vec(),
                format: Some("qcow2".into())
            })
        );
        let h = parse(&header(b"", None)).unwrap().unwrap();
        assert_eq!(h.backing, None);
    }

    #[test]
    fn other_files_are_not_qcow2_and_damage_is_reported() {
        assert_eq!(
            parse(b"not an image at all, just some bytes here............................."),
            Ok(None)
        );
        let mut b = header(b"/base.img", None);
        b[16..20].copy_from_slice(&5000u32.to_be_bytes());
        assert!(parse(&b).is_err());
    }

    #[test]
    fn external_data_files_and_unknown_features_are_refused() {
        let mut b = header(b"", None);
        b[72..80].copy_from_slice(&FEATURE_DATA_FILE.to_be_bytes());
        assert!(parse(&b).unwrap_err().contains("external file"));
        let mut b = header(b"", None);
        b[72..80].copy_from_slice(&(1u64 << 5).to_be_bytes());
        assert!(parse(&b).unwrap_err().contains("features"));
        // Dirty, compression type and extended L2 are plain images.
        let mut b = header(b"", None);
        b[72..80].copy_from_slice(&0b1_1001u64.to_be_bytes());
        assert!(parse(&b).is_ok());
        // The data-file name extension alone is refused too.
        let mut b = header(b"/base.img", Some("raw"));
        b[112..116].copy_from_slice(&EXT_DATA_FILE.to_be_bytes());
        assert!(parse(&b).unwrap_err().contains("external file"));
    }

    /// qemu-img's own data-file image, read from a real file.
    #[test]
    fn a_real_image_with_a_data_file_is_refused() {
        let dir = std::env::temp_dir().join(format!("vmclone-qcow2-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let img = dir.join("d.qcow2");
        let status = std::process::Command::new("qemu-img")
            .args(["create", "-q", "-f", "qcow2", "-o"])
            .arg(format!("data_file={}", dir.join("d.data").display()))
            .arg(&img)
            .arg("1M")
            .status()
            .expect("qemu-img (package qemu-utils)");
        assert!(status.success());
        let err = read_header(&File::open(&img).unwrap()).unwrap_err();
        assert!(err.to_string().contains("external file"), "{err}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
