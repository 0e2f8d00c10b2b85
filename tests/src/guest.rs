//! Guest disks for the identity tests, made and read with libguestfs's own
//! tools: `virt-make-fs` builds an ext4 disk from a folder that libguestfs
//! inspects as Debian 12 (no OS needed, but the guest's own `/bin/sh` and
//! `ssh-keygen`, copied from this Debian host with their libraries; see
//! `tools/lib/guest-tree.sh`), and one
//! `guestfish --ro` session reads files from several disks at once (each
//! appliance run takes about 20 s under TCG, so the tests combine their reads).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::process::run_command;
use crate::temp::TempDir;

/// The environment that makes libguestfs run its appliance under TCG (on
/// this kind of host KVM's appliance hangs); tests set it, the service does
/// not need it.
pub const FORCE_TCG: [(&str, &str); 2] = [
    ("LIBGUESTFS_BACKEND", "direct"),
    ("LIBGUESTFS_BACKEND_SETTINGS", "force_tcg"),
];

/// What the source guest holds, and the tests compare against.
pub const MACHINE_ID: &str = "0123456789abcdef0123456789abcdef\n";
pub const HOSTNAME: &str = "srcvm\n";
pub const HOSTS: &str =
    "127.0.0.1\tlocalhost\n127.0.1.1\tsrcvm.example.org\tsrcvm\n::1\tlocalhost ip6-localhost\n";
pub const AUTHORIZED_KEYS: &str = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIB3x0CqIVnXhq8L2h1y0JvM8nV3cT4Jx3Yp3b9dQ2K0f alice@laptop\n";
pub const NM_PROFILE: &str = "[connection]\nid=Wired\ntype=ethernet\n\n[ethernet]\nmac-address=52:54:00:12:34:56\n\n[ipv4]\nmethod=auto\n";
/// Files of the guest that stay as they are (users' files, logs, histories).
pub const KEPT: [(&str, &str); 4] = [
    ("/root/.ssh/authorized_keys", AUTHORIZED_KEYS),
    ("/home/alice/.ssh/authorized_keys", AUTHORIZED_KEYS),
    ("/root/.bash_history", "ls -l\n"),
    ("/var/log/syslog", "Dec  1 10:00:00 srcvm kernel: booted\n"),
];
/// Files the reset removes.
pub const REMOVED: [&str; 4] = [
    "/var/lib/dbus/machine-id",
    "/var/lib/dhcp/dhclient.enp1s0.leases",
    "/etc/udev/rules.d/70-persistent-net.rules",
    "/var/lib/systemd/random-seed",
];

/// Writes the folder of a minimal Debian 12 guest into `root`
/// (`tools/lib/guest-tree.sh`, which the benchmark uses too; the constants
/// above are what it writes).
pub fn guest_tree(root: &Path) {
    let script = crate::paths::workspace_root().join("tools/lib/guest-tree.sh");
    run_command(Command::new("sh").arg(script).arg(root));
}

/// A raw ext4 guest disk at `path`, made by `virt-make-fs` from [`guest_tree`].
pub fn make_guest_disk(path: &Path) {
    let tree = TempDir::new("guest-tree");
    guest_tree(tree.path());
    run_command(
        Command::new("virt-make-fs")
            .envs(FORCE_TCG)
            .args(["--type=ext4", "--format=raw", "--size=+32M"])
            .arg(tree.path())
            .arg(path),
    );
}

/// What one disk holds: each asked file's bytes as text (None when it is
/// not there), the SSH host key files, and the public host keys.
#[derive(Debug, Clone, Default)]
pub struct GuestFiles {
    pub files: BTreeMap<String, Option<String>>,
    pub host_keys: Vec<String>,
    pub public_keys: BTreeMap<String, String>,
}

impl GuestFiles {
    pub fn text(&self, path: &str) -> Option<&str> {
        self.files.get(path).and_then(|t| t.as_deref())
    }
}

/// The key types `ssh-keygen -A` makes on Debian 12.
const KEY_TYPES: [&str; 3] = ["rsa", "ecdsa", "ed25519"];

/// Reads `files` and the SSH host keys from each of `disks` (path, format),
/// in one read-only appliance run (`guestfish --ro`, which never writes them).
pub fn read_guest_files(disks: &[(PathBuf, &str)], files: &[&str]) -> Vec<GuestFiles> {
    let out = TempDir::new("guest-read");
    let local = |i: usize, path: &str| out.join(&format!("{i}{}", path.replace('/', "%")));
    let mut script = String::from("run\n");
    for (i, _) in disks.iter().enumerate() {
        let dev = format!("/dev/sd{}", (b'a' + i as u8) as char);
        script.push_str(&format!("mount-ro {dev} /\necho @@keys {i}\n"));
        script.push_str("glob-expand /etc/ssh/ssh_host_*\n");
        let pubs = KEY_TYPES.map(|k| format!("/etc/ssh/ssh_host_{k}_key.pub"));
        for f in files.iter().copied().chain(pubs.iter().map(String::as_str)) {
            // "-": a missing file is no error.
            script.push_str(&format!("-download {f} {}\n", local(i, f).display()));
        }
        script.push_str("umount /\n");
    }
    script.push_str("echo @@end\n");
    let mut cmd = Command::new("guestfish");
    cmd.envs(FORCE_TCG).arg("--ro");
    for (i, (path, format)) in disks.iter().enumerate() {
        // guestfish splits `-a` at spaces: give it a plain name.
        let link = out.join(&format!("disk-{i}"));
        std::os::unix::fs::symlink(path, &link).unwrap();
        cmd.arg(format!("--format={format}")).arg("-a").arg(link);
    }
    let listing = run_script(cmd, &script);
    let mut result = vec![GuestFiles::default(); disks.len()];
    let mut current = None;
    for line in listing.lines() {
        match line.strip_prefix("@@keys ") {
            Some(i) => current = i.parse::<usize>().ok(),
            None if line == "@@end" => current = None,
            None => {
                if let Some(i) = current {
                    result[i].host_keys.push(line.to_owned());
                }
            }
        }
    }
    let read = |p: PathBuf| {
        std::fs::read(p)
            .ok()
            .map(|b| String::from_utf8_lossy(&b).into_owned())
    };
    for (i, found) in result.iter_mut().enumerate() {
        for f in files {
            found.files.insert(f.to_string(), read(local(i, f)));
        }
        for k in KEY_TYPES {
            let f = format!("/etc/ssh/ssh_host_{k}_key.pub");
            if let Some(text) = read(local(i, &f)) {
                let key: Vec<&str> = text.split_whitespace().take(2).collect();
                found.public_keys.insert(k.to_owned(), key.join(" "));
            }
        }
    }
    result
}

fn run_script(mut cmd: Command, script: &str) -> String {
    use std::io::Write;
    let mut child = cmd
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run guestfish");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(script.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "guestfish failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}
