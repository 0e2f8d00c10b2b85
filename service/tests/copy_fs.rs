//! The copy engine (src/storage/copy.rs) on real files and filesystems: sparse files on the
//! temp filesystem, a real qcow2, cancel in the middle of a copy, a full tmpfs, reflinks on a
//! loop-mounted XFS, a loop block device as source, and directory trees.
//!
//! Tests that mount, use loop devices or chown need root and are ignored by default:
//! `cargo test -p vmclone-service --test copy_fs -- --include-ignored` (as root). Run without
//! root they fail saying so. VMCLONE_ALLOW_NO_LOOP=1 turns a failing loop setup into a loud skip.
//! Needs qemu-utils (qemu-img, qemu-io), xfsprogs (mkfs.xfs), e2fsprogs (filefrag), util-linux.

use std::ffi::CString;
use std::fs::{self, File};
use std::io::{self, Seek, SeekFrom};
use std::os::fd::AsRawFd;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{
    chown, lchown, symlink, FileExt, FileTypeExt, MetadataExt, PermissionsExt,
};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::OnceLock;
use std::thread;
use std::time::Instant;

use vmclone_service::storage::copy::{self, CopyControl, CopyMethod, FileError, Source};
use vmclone_service::storage::folder::{self, Folder};
use vmclone_tests::mounts::{skip_without_loop, LoopDevice, Mount};
use vmclone_tests::process::{is_root, require_root, run, try_run};
use vmclone_tests::temp::{names_in, TempDir};

const KIB: u64 = 1 << 10;
const MIB: u64 = 1 << 20;
const GIB: u64 = 1 << 30;
/// An owner no test file has by accident.
const TEST_ID: u32 = 65534;

// ---------------------------------------------------------------------------------------------
// The engine on paths, as the service drives it: the source opened with `Source::open`, the
// copy created in its folder opened with `Folder::open`.

fn copy_file(src: &Path, dst: &Path, ctl: &CopyControl) -> Result<CopyMethod, FileError> {
    copy_file_starting_at(src, dst, ctl, CopyMethod::Reflink)
}

fn copy_file_starting_at(
    src: &Path,
    dst: &Path,
    ctl: &CopyControl,
    first: CopyMethod,
) -> Result<CopyMethod, FileError> {
    let source = Source::open(src)?;
    let (dir, name) = folder::split(dst)?;
    copy::copy_file_starting_at(&source, &Folder::open(dir)?, name, ctl, &mut (), first)
}

fn copy_tree(src: &Path, dst: &Path, ctl: &CopyControl) -> Result<(), FileError> {
    let source = Folder::open(src)?;
    let (dir, name) = folder::split(dst)?;
    copy::copy_tree(&source, &Folder::open(dir)?, name, ctl, &mut ())
}

fn allocated_bytes(src: &Path) -> Result<u64, FileError> {
    Source::open(src)?.allocated()
}

// ---------------------------------------------------------------------------------------------
// Scratch space, commands, mounts (vmclone_tests): everything is undone by Drop, even when a
// test fails.

fn arg(path: &Path) -> &str {
    path.to_str().expect("test paths are UTF-8")
}

fn free_bytes(path: &Path) -> u64 {
    let c = CString::new(path.as_os_str().as_bytes()).unwrap();
    // SAFETY: statvfs writes into the zeroed struct we own.
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    let rc = unsafe { libc::statvfs(c.as_ptr(), &mut st) };
    assert_eq!(
        rc,
        0,
        "statvfs {}: {}",
        path.display(),
        io::Error::last_os_error()
    );
    st.f_bavail * st.f_frsize
}

fn assert_gone(path: &Path) {
    match fs::symlink_metadata(path) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        other => panic!("{} should not exist, but: {other:?}", path.display()),
    }
}

// ---------------------------------------------------------------------------------------------
// Test data: sparse files with known data ranges, checked by reading.

/// Byte `x` of every test file's data is `pattern()[x % len]`; the period is no power of two,
/// so data copied to the wrong offset shows.
fn pattern() -> &'static [u8] {
    static PATTERN: OnceLock<Vec<u8>> = OnceLock::new();
    PATTERN.get_or_init(|| {
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        (0..(MIB + 4099))
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                (state >> 24) as u8 | 1 // never zero: a data block must not look like a hole
            })
            .collect()
    })
}

fn expected(offset: u64, len: usize) -> Vec<u8> {
    let p = pattern();
    let mut out = Vec::with_capacity(len);
    let mut at = (offset % p.len() as u64) as usize;
    while out.len() < len {
        let n = (len - out.len()).min(p.len() - at);
        out.extend_from_slice(&p[at..at + n]);
        at = 0;
    }
    out
}

/// A sparse file: its apparent size and the ranges (offset, length) holding pattern data.
struct Layout {
    size: u64,
    data: Vec<(u64, u64)>,
}

impl Layout {
    fn data_bytes(&self) -> u64 {
        self.data.iter().map(|&(_, len)| len).sum()
    }

    fn create(&self, path: &Path) {
        let file = File::create(path).unwrap();
        file.set_len(self.size).unwrap();
        for &(offset, len) in &self.data {
            let mut done = 0;
            while done < len {
                let n = (len - done).min(4 * MIB);
                file.write_all_at(&expected(offset + done, n as usize), offset + done)
                    .unwrap();
                done += n;
            }
        }
        // Synced so st_blocks no longer counts delayed-allocation reservations.
        file.sync_all().unwrap();
    }

    /// Reads `path` and checks it holds exactly this layout: the data ranges byte for byte, and
    /// zeros everywhere else (whatever the file reports as data there is read; holes read as
    /// zeros by definition, which saves reading gigabytes of them).
    fn assert_matches(&self, path: &Path) {
        let file = File::open(path).unwrap();
        let len = file.metadata().unwrap().len();
        assert_eq!(len, self.size, "length of {}", path.display());
        let mut buf = vec![0u8; 4 * MIB as usize];
        for &(offset, len) in &self.data {
            let mut done = 0;
            while done < len {
                let n = (len - done).min(4 * MIB) as usize;
                file.read_exact_at(&mut buf[..n], offset + done).unwrap();
                let want = expected(offset + done, n);
                if buf[..n] != want[..] {
                    let i = (0..n).find(|&i| buf[i] != want[i]).unwrap();
                    panic!(
                        "{} differs at byte {}",
                        path.display(),
                        offset + done + i as u64
                    );
                }
                done += n as u64;
            }
        }
        for (start, end) in data_extents(&file, len) {
            for (gap_start, gap_end) in self.gaps() {
                let (from, to) = (start.max(gap_start), end.min(gap_end));
                let mut at = from;
                while at < to {
                    let n = (to - at).min(4 * MIB) as usize;
                    file.read_exact_at(&mut buf[..n], at).unwrap();
                    if let Some(i) = buf[..n].iter().position(|&b| b != 0) {
                        panic!(
                            "{} has data at byte {} of a hole",
                            path.display(),
                            at + i as u64
                        );
                    }
                    at += n as u64;
                }
            }
        }
    }

    fn gaps(&self) -> Vec<(u64, u64)> {
        let mut gaps = Vec::new();
        let mut at = 0;
        for &(offset, len) in &self.data {
            if offset > at {
                gaps.push((at, offset));
            }
            at = offset + len;
        }
        if at < self.size {
            gaps.push((at, self.size));
        }
        gaps
    }
}

/// The test's own SEEK_DATA/SEEK_HOLE walk, independent of the code under test.
fn data_extents(file: &File, len: u64) -> Vec<(u64, u64)> {
    let mut extents = Vec::new();
    let mut pos = 0i64;
    while (pos as u64) < len {
        // SAFETY: lseek64 on an open descriptor.
        let start = unsafe { libc::lseek64(file.as_raw_fd(), pos, libc::SEEK_DATA) };
        if start < 0 {
            let e = io::Error::last_os_error();
            assert_eq!(e.raw_os_error(), Some(libc::ENXIO), "SEEK_DATA: {e}");
            break;
        }
        let end = unsafe { libc::lseek64(file.as_raw_fd(), start, libc::SEEK_HOLE) };
        assert!(end >= start, "SEEK_HOLE: {}", io::Error::last_os_error());
        extents.push((start as u64, (end as u64).min(len)));
        pos = end;
    }
    extents
}

/// Compares two files by reading every byte of both.
fn assert_same_bytes(a: &Path, b: &Path) {
    let (mut fa, mut fb) = (File::open(a).unwrap(), File::open(b).unwrap());
    // Seeking to the end measures block devices too.
    let len = fa.seek(SeekFrom::End(0)).unwrap();
    assert_eq!(
        len,
        fb.seek(SeekFrom::End(0)).unwrap(),
        "lengths of {} and {}",
        a.display(),
        b.display()
    );
    let (mut ba, mut bb) = (vec![0u8; 4 * MIB as usize], vec![0u8; 4 * MIB as usize]);
    let mut at = 0;
    while at < len {
        let n = (len - at).min(4 * MIB) as usize;
        fa.read_exact_at(&mut ba[..n], at).unwrap();
        fb.read_exact_at(&mut bb[..n], at).unwrap();
        if ba[..n] != bb[..n] {
            let i = (0..n).find(|&i| ba[i] != bb[i]).unwrap();
            panic!(
                "{} and {} differ at byte {}",
                a.display(),
                b.display(),
                at + i as u64
            );
        }
        at += n as u64;
    }
}

fn assert_same_owner_and_mode(src: &Path, dst: &Path) {
    let (s, d) = (fs::metadata(src).unwrap(), fs::metadata(dst).unwrap());
    assert_eq!(
        (d.uid(), d.gid(), d.mode() & 0o7777),
        (s.uid(), s.gid(), s.mode() & 0o7777),
        "owner, group and mode of {} vs {}",
        dst.display(),
        src.display()
    );
}

/// Over 4 GiB, data at the start, straddling the middle, past 4 GiB with unaligned ends, and a
/// trailing hole up to an unaligned size.
fn awkward_sparse_layout() -> Layout {
    Layout {
        size: 5 * GIB + 777,
        data: vec![
            (0, MIB + 123),
            (2 * GIB - 4 * KIB + 17, 3 * MIB),
            (4 * GIB + 5 * MIB + 1, 2 * MIB + 999),
        ],
    }
}

/// Copies the awkward sparse file in `dir` starting with `first`, checks everything a user
/// cares about, and returns the method that did the work.
fn check_sparse_copy(dir: &Path, first: CopyMethod) -> CopyMethod {
    check_sparse_copy_to(dir, dir, first)
}

/// `check_sparse_copy` with the copy made in `dst_dir`.
fn check_sparse_copy_to(dir: &Path, dst_dir: &Path, first: CopyMethod) -> CopyMethod {
    let layout = awkward_sparse_layout();
    let (src, dst) = (
        dir.join(format!("src-{first}.img").replace('/', "-")),
        dst_dir.join("copy.img"),
    );
    let src = src.as_path();
    layout.create(src);
    fs::set_permissions(src, fs::Permissions::from_mode(0o640)).unwrap();
    if is_root() {
        chown(src, Some(TEST_ID), Some(TEST_ID)).unwrap();
    }
    let before = fs::metadata(src).unwrap();
    let ctl = CopyControl::new();

    let method = copy_file_starting_at(src, &dst, &ctl, first)
        .unwrap_or_else(|e| panic!("copy starting at {first}: {e}"));

    layout.assert_matches(&dst);
    let copy = fs::metadata(&dst).unwrap();
    assert!(copy.file_type().is_file());
    assert!(
        copy.blocks() <= before.blocks(),
        "copy by {method} uses {} blocks, source {}: holes were filled",
        copy.blocks(),
        before.blocks()
    );
    assert_same_owner_and_mode(src, &dst);
    assert_eq!(
        ctl.bytes_done(),
        allocated_bytes(src).unwrap(),
        "progress ends at the total"
    );
    assert!(allocated_bytes(src).unwrap() >= layout.data_bytes());
    assert!(allocated_bytes(src).unwrap() < layout.data_bytes() + 64 * KIB);
    layout.assert_matches(src);
    let after = fs::metadata(src).unwrap();
    assert_eq!(
        (
            after.len(),
            after.blocks(),
            after.mtime(),
            after.mtime_nsec()
        ),
        (
            before.len(),
            before.blocks(),
            before.mtime(),
            before.mtime_nsec()
        ),
        "source changed"
    );
    fs::remove_file(&dst).unwrap();
    fs::remove_file(src).unwrap();
    method
}

// ---------------------------------------------------------------------------------------------
// Full copies on the temp filesystem.

#[test]
fn sparse_copy_by_copy_file_range_is_exact_and_stays_sparse() {
    let dir = TempDir::new("cfr");
    assert_eq!(
        check_sparse_copy(dir.path(), CopyMethod::CopyFileRange),
        CopyMethod::CopyFileRange
    );
}

#[test]
fn sparse_copy_by_read_write_is_exact_and_stays_sparse() {
    let dir = TempDir::new("rw");
    assert_eq!(
        check_sparse_copy(dir.path(), CopyMethod::ReadWrite),
        CopyMethod::ReadWrite
    );
}

#[test]
fn copy_file_falls_back_by_itself_and_the_copy_is_identical() {
    let dir = TempDir::new("auto");
    let method = check_sparse_copy(dir.path(), CopyMethod::Reflink);
    eprintln!(
        "copy_file on {} used {method}",
        std::env::temp_dir().display()
    );

    // Once more, compared byte for byte over the whole length, holes included.
    let layout = awkward_sparse_layout();
    let (src, dst) = (dir.join("src.img"), dir.join("dst.img"));
    layout.create(&src);
    copy_file(&src, &dst, &CopyControl::new()).unwrap();
    assert_same_bytes(&src, &dst);
}

#[test]
fn files_ending_in_data_at_an_unaligned_size_and_empty_files_are_copied_by_each_method() {
    let dir = TempDir::new("unaligned");
    for layout in [
        Layout {
            size: 3 * MIB + 5,
            data: vec![(0, 3 * MIB + 5)],
        },
        Layout {
            size: 10 * MIB + 1,
            data: vec![(7 * MIB + 3, 3 * MIB - 2)],
        },
        Layout {
            size: 0,
            data: vec![],
        },
    ] {
        let src = dir.join("src");
        layout.create(&src);
        for first in [
            CopyMethod::Reflink,
            CopyMethod::CopyFileRange,
            CopyMethod::ReadWrite,
        ] {
            let dst = dir.join("dst");
            let ctl = CopyControl::new();
            copy_file_starting_at(&src, &dst, &ctl, first).unwrap();
            layout.assert_matches(&dst);
            assert_same_bytes(&src, &dst);
            assert_eq!(ctl.bytes_done(), allocated_bytes(&src).unwrap());
            fs::remove_file(&dst).unwrap();
        }
        fs::remove_file(&src).unwrap();
    }
}

#[test]
fn qcow2_is_copied_as_bytes_with_its_snapshot_and_backing_file() {
    let dir = TempDir::new("qcow2");
    let (base, src, dst) = (
        dir.join("base.qcow2"),
        dir.join("src.qcow2"),
        dir.join("copy.qcow2"),
    );
    let qemu_img = |args: &[&str]| {
        try_run("qemu-img", args).unwrap_or_else(|e| panic!("{e}\n(this test needs qemu-utils)"))
    };
    let qemu_io = |image: &Path, cmd: &str| {
        try_run("qemu-io", &["-f", "qcow2", "-c", cmd, arg(image)])
            .unwrap_or_else(|e| panic!("{e}\n(this test needs qemu-utils)"))
    };
    qemu_img(&["create", "-q", "-f", "qcow2", arg(&base), "64M"]);
    qemu_io(&base, "write -P 0x11 0 1M");
    qemu_img(&[
        "create",
        "-q",
        "-f",
        "qcow2",
        "-b",
        arg(&base),
        "-F",
        "qcow2",
        arg(&src),
        "1G",
    ]);
    qemu_io(&src, "write -P 0xab 0 4M");
    qemu_img(&["snapshot", "-c", "before-clone", arg(&src)]);
    qemu_io(&src, "write -P 0xcd 512M 1M");
    let src_bytes = fs::read(&src).unwrap();

    copy_file(&src, &dst, &CopyControl::new()).unwrap();

    assert_same_bytes(&src, &dst);
    let compare = qemu_img(&["compare", arg(&src), arg(&dst)]);
    assert!(
        compare.contains("Images are identical"),
        "qemu-img compare: {compare}"
    );
    let info = qemu_img(&["info", "--output=json", arg(&dst)]);
    assert!(
        info.contains(r#""format": "qcow2""#),
        "not a qcow2 any more: {info}"
    );
    assert!(
        info.contains(&format!(r#""backing-filename": "{}""#, base.display())),
        "backing file lost: {info}"
    );
    assert!(
        info.contains(r#""name": "before-clone""#),
        "snapshot lost: {info}"
    );
    qemu_img(&["check", arg(&dst)]);
    assert_eq!(fs::read(&src).unwrap(), src_bytes, "source changed");
    assert!(qemu_io(&dst, "read -P 0xcd 512M 1M").contains("read 1048576/1048576"));
}

// ---------------------------------------------------------------------------------------------
// Cancel, full disks, existing destinations: nothing left behind, nothing overwritten.

#[test]
fn cancel_in_the_middle_of_a_multi_gib_copy_removes_the_partial_copy() {
    let dir = TempDir::new("cancel");
    let layout = Layout {
        size: 4 * GIB,
        data: (0..8).map(|i| (i * 512 * MIB, 128 * MIB)).collect(),
    };
    let src = dir.join("src.img");
    layout.create(&src);
    let before = fs::metadata(&src).unwrap();
    let total = allocated_bytes(&src).unwrap();

    // A reflink is one uncancellable call; the byte-moving methods are what a cancel must stop.
    for first in [CopyMethod::CopyFileRange, CopyMethod::ReadWrite] {
        let dst = dir.join("dst.img");
        let ctl = CopyControl::new();
        let finished = AtomicBool::new(false);
        let result = thread::scope(|s| {
            s.spawn(|| {
                while ctl.bytes_done() == 0 && !finished.load(Ordering::Relaxed) {
                    thread::yield_now();
                }
                ctl.cancel();
            });
            let result = copy_file_starting_at(&src, &dst, &ctl, first);
            finished.store(true, Ordering::Relaxed);
            result
        });
        assert!(
            matches!(result, Err(FileError::Cancelled)),
            "starting at {first}: {result:?}"
        );
        let done = ctl.bytes_done();
        assert!(
            done > 0 && done < total,
            "stopped after {done} of {total} bytes"
        );
        assert_gone(&dst);
        assert_eq!(names_in(dir.path()), ["src.img"], "left behind");
    }
    let after = fs::metadata(&src).unwrap();
    assert_eq!(
        (
            after.len(),
            after.blocks(),
            after.mtime(),
            after.mtime_nsec(),
            after.mode()
        ),
        (
            before.len(),
            before.blocks(),
            before.mtime(),
            before.mtime_nsec(),
            before.mode()
        ),
    );
    layout.assert_matches(&src);
}

#[test]
fn a_cancelled_control_creates_nothing() {
    let dir = TempDir::new("precancel");
    let src = dir.join("src");
    fs::write(&src, b"data").unwrap();
    let ctl = CopyControl::new();
    ctl.cancel();
    assert!(matches!(
        copy_file(&src, &dir.join("dst"), &ctl),
        Err(FileError::Cancelled)
    ));
    assert!(matches!(
        copy_tree(dir.path(), &dir.join("tree"), &ctl),
        Err(FileError::Cancelled)
    ));
    assert_eq!(names_in(dir.path()), ["src"]);
}

#[test]
#[ignore = "needs root: mounts"]
fn a_full_filesystem_gives_no_space_and_leaves_nothing_behind() {
    require_root("mounts a tmpfs");
    let dir = TempDir::new("enospc");
    let src = dir.join("big.img");
    let layout = Layout {
        size: 100 * MIB,
        data: vec![(MIB, 64 * MIB)],
    };
    layout.create(&src);
    let tree = dir.join("tree");
    fs::create_dir_all(tree.join("sub")).unwrap();
    fs::write(tree.join("small"), b"fits").unwrap();
    Layout {
        size: 40 * MIB,
        data: vec![(0, 40 * MIB)],
    }
    .create(&tree.join("sub/big"));

    let mnt = dir.join("mnt");
    let _mount = Mount::tmpfs(&mnt, "32m");
    let free = free_bytes(&mnt);

    for first in [
        CopyMethod::Reflink,
        CopyMethod::CopyFileRange,
        CopyMethod::ReadWrite,
    ] {
        let dst = mnt.join("copy.img");
        match copy_file_starting_at(&src, &dst, &CopyControl::new(), first) {
            Err(FileError::NoSpace { path }) => assert_eq!(path, dst),
            other => panic!("starting at {first}: expected NoSpace, got {other:?}"),
        }
        assert_gone(&dst);
        assert!(
            names_in(&mnt).is_empty(),
            "left behind: {:?}",
            names_in(&mnt)
        );
        assert_eq!(free_bytes(&mnt), free, "space not given back");
    }

    let err = copy_tree(&tree, &mnt.join("tree"), &CopyControl::new()).unwrap_err();
    assert!(matches!(err, FileError::NoSpace { .. }), "{err:?}");
    assert!(
        err.to_string().contains(arg(&mnt)),
        "message names the place: {err}"
    );
    assert!(
        names_in(&mnt).is_empty(),
        "left behind: {:?}",
        names_in(&mnt)
    );
    assert_eq!(free_bytes(&mnt), free, "space not given back");
    layout.assert_matches(&src);
}

#[test]
#[ignore = "needs root: mounts"]
fn a_copy_to_another_filesystem_falls_back_by_itself() {
    require_root("mounts a tmpfs");
    let dir = TempDir::new("crossfs");
    let mnt = dir.join("mnt");
    let _mount = Mount::tmpfs(&mnt, "64m");
    // No filesystem reflinks across filesystems: the kernel answers EXDEV, and the copy goes on.
    let method = check_sparse_copy_to(dir.path(), &mnt, CopyMethod::Reflink);
    eprintln!(
        "copy from {} to a tmpfs used {method}",
        std::env::temp_dir().display()
    );
    assert_ne!(method, CopyMethod::Reflink);
    assert!(names_in(&mnt).is_empty());
}

#[test]
fn an_existing_destination_is_never_overwritten() {
    let dir = TempDir::new("exists");
    let src = dir.join("src");
    fs::write(&src, b"new data").unwrap();

    let dst = dir.join("dst");
    fs::write(&dst, b"precious").unwrap();
    let err = copy_file(&src, &dst, &CopyControl::new()).unwrap_err();
    assert!(
        matches!(err, FileError::Exists { ref path } if *path == dst),
        "{err:?}"
    );
    assert!(
        err.to_string().contains(arg(&dst)),
        "message names the file: {err}"
    );
    assert_eq!(fs::read(&dst).unwrap(), b"precious");

    // A symlink in the way is not followed.
    let link = dir.join("link");
    symlink(dir.join("target"), &link).unwrap();
    let err = copy_file(&src, &link, &CopyControl::new()).unwrap_err();
    assert!(matches!(err, FileError::Exists { .. }), "{err:?}");
    assert_gone(&dir.join("target"));

    let tree_src = dir.join("tree-src");
    fs::create_dir(&tree_src).unwrap();
    fs::write(tree_src.join("f"), b"new").unwrap();
    let tree_dst = dir.join("tree-dst");
    fs::create_dir(&tree_dst).unwrap();
    fs::write(tree_dst.join("f"), b"precious").unwrap();
    let err = copy_tree(&tree_src, &tree_dst, &CopyControl::new()).unwrap_err();
    assert!(matches!(err, FileError::Exists { .. }), "{err:?}");
    assert_eq!(fs::read(tree_dst.join("f")).unwrap(), b"precious");
    assert_eq!(names_in(&tree_dst), ["f"]);
}

#[test]
fn sources_of_the_wrong_kind_are_refused_by_name() {
    let dir = TempDir::new("fifo");
    let fifo = dir.join("fifo");
    let c = CString::new(fifo.as_os_str().as_bytes()).unwrap();
    // SAFETY: mkfifo with a valid NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
    let dst = dir.join("dst");
    let err = copy_file(&fifo, &dst, &CopyControl::new()).unwrap_err();
    assert!(matches!(err, FileError::Unsupported { .. }), "{err:?}");
    assert!(err.to_string().contains(arg(&fifo)), "{err}");
    assert_gone(&dst);
    let err = copy_file(dir.path(), &dst, &CopyControl::new()).unwrap_err();
    assert!(matches!(err, FileError::Unsupported { .. }), "{err:?}");
    assert_gone(&dst);
    let err = copy_tree(&fifo, &dst, &CopyControl::new()).unwrap_err();
    assert!(
        matches!(err, FileError::NotADirectory { ref path } if *path == fifo),
        "{err:?}"
    );
    assert_gone(&dst);
}

// ---------------------------------------------------------------------------------------------
// Reflinks and block devices (loop devices).

#[test]
#[ignore = "needs root: loop mounts"]
fn reflink_on_xfs_shares_the_extents_of_an_8_gib_sparse_file() {
    require_root("makes and loop-mounts an XFS filesystem");
    let dir = TempDir::new("xfs");
    let image = dir.join("xfs.img");
    File::create(&image).unwrap().set_len(3 * GIB).unwrap();
    try_run("mkfs.xfs", &["-q", "-m", "reflink=1", arg(&image)])
        .unwrap_or_else(|e| panic!("{e}\n(this test needs xfsprogs)"));
    let mnt = dir.join("mnt");
    let _mount = match Mount::loop_image(&image, &mnt) {
        Ok(m) => m,
        Err(e) => {
            return skip_without_loop(
                "reflink_on_xfs_shares_the_extents_of_an_8_gib_sparse_file",
                &e,
            )
        }
    };

    assert_eq!(
        check_sparse_copy(&mnt, CopyMethod::Reflink),
        CopyMethod::Reflink
    );

    let layout = Layout {
        size: 8 * GIB,
        data: (0..8).map(|i| (i * GIB, 128 * MIB)).collect(),
    };
    let (src, dst) = (mnt.join("disk.img"), mnt.join("clone.img"));
    layout.create(&src);
    fs::set_permissions(&src, fs::Permissions::from_mode(0o600)).unwrap();
    chown(&src, Some(TEST_ID), Some(TEST_ID)).unwrap();
    let free = free_bytes(&mnt);
    let ctl = CopyControl::new();
    let started = Instant::now();
    let method = copy_file(&src, &dst, &ctl).unwrap();
    let took = started.elapsed();
    eprintln!("reflink of an 8 GiB file holding 1 GiB: {took:?}");

    assert_eq!(method, CopyMethod::Reflink);
    assert_eq!(ctl.bytes_done(), GIB);
    let used = free - free_bytes(&mnt);
    assert!(
        used < 16 * MIB,
        "the reflink used {used} bytes: extents not shared"
    );
    let extents = run("filefrag", &["-v", arg(&dst)]);
    assert!(
        extents.contains("shared"),
        "no shared extents in the copy:\n{extents}"
    );
    layout.assert_matches(&dst);
    assert_same_owner_and_mode(&src, &dst);

    // The clone is independent: writing it leaves the source as it was.
    File::options()
        .write(true)
        .open(&dst)
        .unwrap()
        .write_all_at(b"guest writes", 4096)
        .unwrap();
    layout.assert_matches(&src);
}

#[test]
#[ignore = "needs root: loop devices"]
fn a_block_device_source_becomes_a_sparse_regular_file() {
    require_root("attaches a loop device");
    let dir = TempDir::new("blockdev");
    let backing = dir.join("disk.raw");
    let layout = Layout {
        size: 64 * MIB,
        data: vec![(0, MIB + 3), (40 * MIB, 2 * MIB)],
    };
    layout.create(&backing);
    let device = match LoopDevice::attach(&backing) {
        Ok(d) => d,
        Err(e) => {
            return skip_without_loop("a_block_device_source_becomes_a_sparse_regular_file", &e)
        }
    };
    let dev = device.path();
    assert!(fs::metadata(dev).unwrap().file_type().is_block_device());
    assert_eq!(
        allocated_bytes(dev).unwrap(),
        64 * MIB,
        "a block device counts whole"
    );

    let dst = dir.join("copy.raw");
    let ctl = CopyControl::new();
    let method = copy_file(dev, &dst, &ctl).unwrap();

    assert_eq!(method, CopyMethod::ReadWrite);
    assert_eq!(ctl.bytes_done(), 64 * MIB);
    let copy = fs::metadata(&dst).unwrap();
    assert!(copy.file_type().is_file());
    layout.assert_matches(&dst);
    assert_same_bytes(dev, &dst);
    assert!(
        copy.blocks() * 512 <= 4 * MIB,
        "zeros were written: {} blocks",
        copy.blocks()
    );
    assert_same_owner_and_mode(dev, &dst);
}

// ---------------------------------------------------------------------------------------------
// Directory trees (swtpm state).

/// A small swtpm-like state tree: nested dirs, odd modes (one read-only dir), a symlink.
fn make_tree(root: &Path) {
    fs::create_dir(root).unwrap();
    fs::create_dir(root.join("tpm2")).unwrap();
    Layout {
        size: 20 * KIB + 3,
        data: vec![(0, 20 * KIB + 3)],
    }
    .create(&root.join("tpm2/tpm2-00.permall"));
    fs::write(root.join("tpm2/.lock"), b"").unwrap();
    symlink("tpm2/tpm2-00.permall", root.join("state")).unwrap();
    symlink("/nonexistent/dangling", root.join("dangling")).unwrap();
    fs::create_dir(root.join("sealed")).unwrap();
    fs::write(root.join("sealed/key"), b"k").unwrap();
    for (path, mode) in [
        ("tpm2/tpm2-00.permall", 0o600),
        ("tpm2/.lock", 0o644),
        ("sealed/key", 0o400),
        ("sealed", 0o500),
        ("tpm2", 0o750),
        (".", 0o711),
    ] {
        fs::set_permissions(root.join(path), fs::Permissions::from_mode(mode)).unwrap();
    }
}

/// Checks every entry of `dst` against `src`: kind, mode, owner, contents, link target.
fn assert_same_tree(src: &Path, dst: &Path) {
    let (s, d) = (
        fs::symlink_metadata(src).unwrap(),
        fs::symlink_metadata(dst).unwrap(),
    );
    assert_eq!(s.file_type(), d.file_type(), "{}", dst.display());
    assert_eq!(
        (d.uid(), d.gid()),
        (s.uid(), s.gid()),
        "owner of {}",
        dst.display()
    );
    if s.file_type().is_symlink() {
        assert_eq!(fs::read_link(dst).unwrap(), fs::read_link(src).unwrap());
        return;
    }
    assert_eq!(
        d.mode() & 0o7777,
        s.mode() & 0o7777,
        "mode of {}",
        dst.display()
    );
    if s.is_dir() {
        assert_eq!(names_in(src), names_in(dst), "entries of {}", dst.display());
        for name in names_in(src) {
            assert_same_tree(&src.join(&name), &dst.join(&name));
        }
    } else {
        assert_eq!(
            fs::read(src).unwrap(),
            fs::read(dst).unwrap(),
            "{}",
            dst.display()
        );
    }
}

#[test]
fn copy_tree_keeps_contents_modes_and_symlinks() {
    let dir = TempDir::new("tree");
    let (src, dst) = (dir.join("0f8c-uuid"), dir.join("77aa-new-uuid"));
    make_tree(&src);
    let ctl = CopyControl::new();
    copy_tree(&src, &dst, &ctl).unwrap();
    assert_same_tree(&src, &dst);
    assert_eq!(ctl.bytes_done(), 20 * KIB + 3 + 1);
    fix_modes_for_cleanup(dir.path());
}

#[test]
#[ignore = "needs root: chown"]
fn copy_tree_keeps_owners() {
    require_root("gives files to another user");
    let dir = TempDir::new("tree-owners");
    let (src, dst) = (dir.join("src"), dir.join("dst"));
    make_tree(&src);
    for (path, uid, gid) in [
        (".", TEST_ID, TEST_ID),
        ("tpm2", TEST_ID, 0),
        ("tpm2/tpm2-00.permall", TEST_ID, TEST_ID),
        ("tpm2/.lock", 0, TEST_ID),
        ("sealed", TEST_ID, TEST_ID),
        ("sealed/key", TEST_ID, TEST_ID),
    ] {
        chown(src.join(path), Some(uid), Some(gid)).unwrap();
    }
    lchown(src.join("state"), Some(TEST_ID), Some(TEST_ID)).unwrap();
    // chown cleared them; a setgid directory must stay one.
    fs::set_permissions(src.join("tpm2"), fs::Permissions::from_mode(0o2750)).unwrap();

    copy_tree(&src, &dst, &CopyControl::new()).unwrap();

    assert_same_tree(&src, &dst);
    assert_eq!(
        fs::symlink_metadata(dst.join("state")).unwrap().uid(),
        TEST_ID
    );
}

#[test]
fn a_failed_tree_copy_removes_everything_it_made() {
    let dir = TempDir::new("tree-fail");
    let src = dir.join("src");
    make_tree(&src);
    fs::set_permissions(&src, fs::Permissions::from_mode(0o755)).unwrap();
    let fifo = src.join("zz-fifo");
    let c = CString::new(fifo.as_os_str().as_bytes()).unwrap();
    // SAFETY: mkfifo with a valid NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
    let dst = dir.join("dst");

    let err = copy_tree(&src, &dst, &CopyControl::new()).unwrap_err();

    assert!(
        matches!(err, FileError::Unsupported { ref path, .. } if *path == fifo),
        "{err:?}"
    );
    assert_gone(&dst);
    assert_eq!(names_in(dir.path()), ["src"]);
    fix_modes_for_cleanup(dir.path());
}

/// Lets a non-root TempDir drop remove read-only directories.
fn fix_modes_for_cleanup(root: &Path) {
    for entry in fs::read_dir(root).unwrap() {
        let path = entry.unwrap().path();
        let meta = fs::symlink_metadata(&path).unwrap();
        if meta.is_dir() {
            fs::set_permissions(&path, fs::Permissions::from_mode(0o700)).unwrap();
            fix_modes_for_cleanup(&path);
        }
    }
}
