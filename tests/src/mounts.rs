//! Filesystems: the free space of one, and filesystems and loop devices made for one
//! test (root only), undone on drop.

use std::path::{Path, PathBuf};

use crate::process::{run, try_run};

/// A mounted filesystem, unmounted on drop.
pub struct Mount(PathBuf);

impl Mount {
    /// A tmpfs of `size` (e.g. `48m`) at `dir`, readable by everyone (QEMU too).
    pub fn tmpfs(dir: &Path, size: &str) -> Mount {
        std::fs::create_dir_all(dir).expect("create mount point");
        let opts = format!("size={size},mode=0755");
        run(
            "mount",
            &["-t", "tmpfs", "-o", &opts, "tmpfs", path_arg(dir)],
        );
        Mount(dir.to_owned())
    }

    /// `dir` made read-only in place (a read-only bind mount of itself): even root
    /// cannot write there until the mount goes.
    pub fn read_only_bind(dir: &Path) -> Mount {
        run("mount", &["--bind", path_arg(dir), path_arg(dir)]);
        let mount = Mount(dir.to_owned());
        run("mount", &["-o", "remount,ro,bind", path_arg(dir)]);
        mount
    }

    /// The filesystem in the file `image`, loop-mounted at `dir`; Err when the host
    /// cannot (no loop devices).
    pub fn loop_image(image: &Path, dir: &Path) -> Result<Mount, String> {
        std::fs::create_dir_all(dir).expect("create mount point");
        try_run("mount", &["-o", "loop", path_arg(image), path_arg(dir)])?;
        Ok(Mount(dir.to_owned()))
    }
}

impl Drop for Mount {
    fn drop(&mut self) {
        let dir = path_arg(&self.0);
        if let Err(e) = try_run("umount", &[dir]) {
            eprintln!("warning: {e}; unmounting lazily");
            if let Err(e) = try_run("umount", &["-l", dir]) {
                eprintln!("warning: {e}");
            }
        }
    }
}

/// A loop block device over a file, detached on drop.
pub struct LoopDevice(PathBuf);

impl LoopDevice {
    pub fn attach(backing: &Path) -> Result<LoopDevice, String> {
        let dev = try_run("losetup", &["--find", "--show", path_arg(backing)])?;
        Ok(LoopDevice(PathBuf::from(dev.trim())))
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for LoopDevice {
    fn drop(&mut self) {
        if let Err(e) = try_run("losetup", &["-d", path_arg(&self.0)]) {
            eprintln!("warning: {e}");
        }
    }
}

/// A sparse file of `size` bytes at `image`, formatted as XFS with reflink.
pub fn xfs_image(image: &Path, size: u64) {
    std::fs::File::create(image)
        .and_then(|f| f.set_len(size))
        .unwrap_or_else(|e| panic!("cannot make {}: {e}", image.display()));
    try_run("mkfs.xfs", &["-q", "-m", "reflink=1", path_arg(image)])
        .unwrap_or_else(|e| panic!("{e}\n(this test needs xfsprogs)"));
}

/// A loop device or loop mount could not be set up: fail, or with VMCLONE_ALLOW_NO_LOOP=1
/// skip loudly. Returns normally only for the skip.
pub fn skip_without_loop(test: &str, why: &str) {
    if std::env::var("VMCLONE_ALLOW_NO_LOOP").as_deref() == Ok("1") {
        let bar = "!".repeat(90);
        eprintln!(
            "\n{bar}\n!!! SKIPPED {test}: no loop devices here ({why})\n\
             !!! This test did NOT run. Unset VMCLONE_ALLOW_NO_LOOP to make it fail instead.\n{bar}\n"
        );
    } else {
        panic!(
            "{test} needs a loop device, which failed: {why}\n\
             Run as root on a host with loop devices, or set VMCLONE_ALLOW_NO_LOOP=1 to skip it loudly."
        );
    }
}

/// The bytes an unprivileged writer may still put on the filesystem of `dir`, as `df`
/// reports them (`f_bavail` blocks).
pub fn free_bytes(dir: &Path) -> u64 {
    let out = run("df", &["-B1", "--output=avail", path_arg(dir)]);
    out.lines()
        .nth(1)
        .and_then(|l| l.trim().parse().ok())
        .unwrap_or_else(|| panic!("df gave no free space for {}: {out}", dir.display()))
}

fn path_arg(path: &Path) -> &str {
    path.to_str().expect("test paths are UTF-8")
}
