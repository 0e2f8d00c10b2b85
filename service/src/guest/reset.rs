//! What `guest-identity=reset` does inside a Linux guest, as guestfish
//! commands run by the appliance on the guest's filesystems (never mounted
//! on the host). Users' files (`/home/*/.ssh`, `/root/.ssh`, histories, logs)
//! are never touched.

use std::ffi::OsStr;
use std::io::{Read, Write};
use std::time::Duration;

use super::fish::{quote, Fish};
use super::GuestError;
use crate::storage::folder::Folder;

const CALL: Duration = Duration::from_secs(600);
/// The largest text file (hosts, a connection profile) read back for editing.
const MAX_EDIT: u64 = 1 << 20;

/// DHCP client leases of every common client, and NetworkManager's.
const LEASES: &[&str] = &[
    "/var/lib/dhcp/*.leases",
    "/var/lib/dhcp/*.lease",
    "/var/lib/dhclient/*",
    "/var/lib/NetworkManager/*.lease",
    "/var/lib/NetworkManager/dhclient-*",
    "/var/lib/dhcpcd/*.lease",
    "/var/lib/dhcpcd/*.lease6",
    "/var/lib/dhcpcd5/*.lease",
    "/var/lib/wicked/lease-*",
    "/var/lib/systemd/network/*.lease",
];

/// Profiles that bind a connection to the old interfaces' MAC addresses,
/// and the keys that do it.
const MAC_BINDINGS: &[(&str, &str)] = &[
    ("/etc/NetworkManager/system-connections/*", "mac-address"),
    ("/etc/sysconfig/network-scripts/ifcfg-*", "HWADDR"),
];

/// The guest the appliance recognised.
#[derive(Debug, Clone)]
pub struct Recognised {
    pub root: String,
    pub product: String,
}

/// Finds the one Linux root on the disks, or says why this guest cannot be
/// reset.
pub fn recognise(fish: &mut Fish, vm: &str) -> Result<Recognised, GuestError> {
    let roots = fish.call("inspect-os", CALL)?;
    let root = match roots.as_slice() {
        [] => {
            return Err(GuestError::Unrecognised(format!(
                "No operating system was recognised on the disks of “{vm}” (an empty or encrypted disk, or an unknown system), so its identity cannot be reset. Clone it with guest-identity “keep”."
            )))
        }
        [one] => one.clone(),
        _ => {
            return Err(GuestError::Unrecognised(format!(
                "The disks of “{vm}” hold {} operating systems; vmclone resets the identity of a guest with one. Clone it with guest-identity “keep”.",
                roots.len()
            )))
        }
    };
    let r = arg(&root)?;
    let kind = one_line(fish.call(&format!("inspect-get-type {r}"), CALL)?);
    let product = one_line(fish.call(&format!("inspect-get-product-name {r}"), CALL)?);
    match kind.as_str() {
        "linux" => Ok(Recognised { root, product }),
        "windows" => Err(GuestError::Unrecognised(format!(
            "“{vm}” is a Windows guest ({product}); vmclone resets the identity of Linux guests only. Windows needs sysprep run inside the guest (sysprep /generalize) before it is cloned; clone it with guest-identity “keep”."
        ))),
        other => Err(GuestError::Unrecognised(format!(
            "“{vm}” runs {product} ({other}); vmclone resets the identity of Linux guests only. Clone it with guest-identity “keep”."
        ))),
    }
}

/// Mounts the guest's filesystems where it mounts them.
pub fn mount(fish: &mut Fish, guest: &Recognised) -> Result<(), GuestError> {
    let lines = fish.call(
        &format!("inspect-get-mountpoints {}", arg(&guest.root)?),
        CALL,
    )?;
    let mut points: Vec<(String, String)> = lines
        .iter()
        .filter_map(|l| l.split_once(": "))
        .map(|(mp, dev)| (mp.to_owned(), dev.to_owned()))
        .collect();
    // Parents first.
    points.sort_by_key(|(mp, _)| mp.len());
    for (mp, dev) in points {
        fish.call(&format!("mount {} {}", arg(&dev)?, arg(&mp)?), CALL)?;
    }
    Ok(())
}

/// Gives the mounted guest a new identity with the host name `host_name`.
/// `scratch` is a private folder for files passed to and from the guest.
pub fn reset(
    fish: &mut Fish,
    host_name: &str,
    scratch: &Folder,
) -> Result<Vec<String>, GuestError> {
    debug_assert!(crate::naming::is_host_name(host_name));
    let mut done = Vec::new();
    let mut s = Session {
        fish,
        scratch,
        files: 0,
    };

    // Machine ID: an empty /etc/machine-id makes systemd create a new one
    // at first boot; D-Bus's own copy goes unless it is a link to it.
    if s.test("is-file", "/etc/machine-id")? && !s.test("is-symlink", "/etc/machine-id")? {
        s.run("truncate", &["/etc/machine-id"])?;
        done.push("emptied /etc/machine-id".into());
    }
    let dbus_id = "/var/lib/dbus/machine-id";
    if s.test("exists", dbus_id)? && !s.test("is-symlink", dbus_id)? {
        s.run("rm-f", &[dbus_id])?;
        done.push(format!("removed {dbus_id}"));
    }

    // SSH host keys: the old ones go, new ones are made now by the guest's
    // own ssh-keygen (Debian's sshd does not make missing keys at boot).
    let keys = s.glob("/etc/ssh/ssh_host_*")?;
    for key in &keys {
        s.run("rm-f", &[key])?;
    }
    let sshd = s.test("exists", "/usr/sbin/sshd")? || s.test("exists", "/etc/ssh/sshd_config")?;
    if !keys.is_empty() || sshd {
        let keygen = ["/usr/bin/ssh-keygen", "/bin/ssh-keygen"]
            .into_iter()
            .find_map(|p| s.test("is-file", p).map(|yes| yes.then_some(p)).transpose());
        let keygen = match keygen {
            Some(k) => k?,
            None => {
                return Err(GuestError::Tool(
                    "the guest has SSH host keys or an SSH server but no ssh-keygen to make new keys, so its keys cannot be renewed".into(),
                ))
            }
        };
        // One argument list: guestfish splits it at spaces.
        s.fish.call(&format!("command '{keygen} -A'"), CALL)?;
        done.push(format!(
            "removed {} SSH host key files and made new ones with {keygen} -A",
            keys.len()
        ));
    }

    // Host name.
    s.upload_text(&format!("{host_name}\n"), "/etc/hostname")?;
    done.push(format!("set /etc/hostname to {host_name}"));
    if s.test("is-file", "/etc/hosts")? {
        if let Some(text) = s.download_text("/etc/hosts")? {
            if let Some(new) = hosts_with_name(&text, host_name) {
                s.upload_text(&new, "/etc/hosts")?;
                done.push("renamed the 127.0.1.1 line of /etc/hosts".into());
            }
        }
    }

    // What bound the old interfaces or their addresses.
    for pattern in LEASES {
        for lease in s.glob(pattern)? {
            s.run("rm-f", &[&lease])?;
            done.push(format!("removed {lease}"));
        }
    }
    let rules = "/etc/udev/rules.d/70-persistent-net.rules";
    if s.test("exists", rules)? {
        s.run("rm-f", &[rules])?;
        done.push(format!("removed {rules}"));
    }
    for (pattern, key) in MAC_BINDINGS {
        for profile in s.glob(pattern)? {
            if !s.test("is-file", &profile)? {
                continue;
            }
            let Some(text) = s.download_text(&profile)? else {
                continue;
            };
            if let Some(new) = without_key(&text, key) {
                s.upload_text(&new, &profile)?;
                done.push(format!("removed {key} from {profile}"));
            }
        }
    }
    let seed = "/var/lib/systemd/random-seed";
    if s.test("exists", seed)? {
        s.run("rm-f", &[seed])?;
        done.push(format!("removed {seed}"));
    }

    // New files need their SELinux labels where the guest enforces them.
    if s.test("is-file", "/etc/selinux/config")? {
        if let Some(kind) = s
            .download_text("/etc/selinux/config")?
            .and_then(|t| selinux_type(&t))
        {
            let contexts = format!("/etc/selinux/{kind}/contexts/files/file_contexts");
            let can = one_line(s.fish.call("feature-available selinuxrelabel", CALL)?) == "true";
            if can && s.test("is-file", &contexts)? {
                s.run("selinux-relabel", &[&contexts, "/etc"])?;
                done.push("relabelled /etc for SELinux".into());
            } else {
                s.run("touch", &["/.autorelabel"])?;
                done.push("asked for an SELinux relabel at first boot".into());
            }
        }
    }
    Ok(done)
}

struct Session<'f, 's> {
    fish: &'f mut Fish,
    scratch: &'s Folder,
    files: u32,
}

impl Session<'_, '_> {
    fn run(&mut self, command: &str, args: &[&str]) -> Result<Vec<String>, GuestError> {
        let mut line = command.to_owned();
        for a in args {
            line.push(' ');
            line.push_str(&arg(a)?);
        }
        self.fish.call(&line, CALL)
    }

    fn test(&mut self, command: &str, path: &str) -> Result<bool, GuestError> {
        Ok(one_line(self.run(command, &[path])?) == "true")
    }

    /// The guest's paths matching `pattern`; names that cannot be passed
    /// back to guestfish safely are left alone.
    fn glob(&mut self, pattern: &str) -> Result<Vec<String>, GuestError> {
        let found = self.run("glob-expand", &[pattern])?;
        Ok(found
            .into_iter()
            .filter(|p| match quote(p) {
                Some(_) => true,
                None => {
                    tracing::warn!("left the guest's file {p:?} alone: its name cannot be quoted");
                    false
                }
            })
            .collect())
    }

    fn scratch_name(&mut self) -> String {
        self.files += 1;
        format!("file-{}", self.files)
    }

    /// A small text file of the guest (None when it is too large to edit).
    fn download_text(&mut self, guest_path: &str) -> Result<Option<String>, GuestError> {
        let size = one_line(self.run("filesize", &[guest_path])?);
        if size.parse::<u64>().map_or(true, |n| n > MAX_EDIT) {
            tracing::warn!(
                "left {guest_path} of the guest alone: {size} bytes is too large to edit"
            );
            return Ok(None);
        }
        let name = self.scratch_name();
        let host = self.scratch.join(OsStr::new(&name));
        let host_text = host.to_str().ok_or_else(|| scratch_path_error(&host))?;
        self.run("download", &[guest_path, host_text])?;
        let (mut file, _) = self.scratch.open_readonly(OsStr::new(&name))?;
        let mut bytes = Vec::new();
        Read::by_ref(&mut file)
            .take(MAX_EDIT + 1)
            .read_to_end(&mut bytes)
            .map_err(|e| GuestError::Tool(format!("cannot read {}: {e}", host.display())))?;
        Ok(Some(String::from_utf8_lossy(&bytes).into_owned()))
    }

    fn upload_text(&mut self, text: &str, guest_path: &str) -> Result<(), GuestError> {
        let name = self.scratch_name();
        let (mut file, _) = self.scratch.create_file(OsStr::new(&name))?;
        let host = self.scratch.join(OsStr::new(&name));
        file.write_all(text.as_bytes())
            .map_err(|e| GuestError::Tool(format!("cannot write {}: {e}", host.display())))?;
        drop(file);
        let host_text = host.to_str().ok_or_else(|| scratch_path_error(&host))?;
        self.run("upload", &[host_text, guest_path])?;
        Ok(())
    }
}

fn scratch_path_error(path: &std::path::Path) -> GuestError {
    GuestError::Tool(format!(
        "the scratch folder {} is not a UTF-8 path guestfish can be given",
        path.display()
    ))
}

fn arg(text: &str) -> Result<String, GuestError> {
    quote(text).ok_or_else(|| {
        GuestError::Tool(format!(
            "“{}” cannot be passed to guestfish safely",
            text.escape_debug()
        ))
    })
}

fn one_line(lines: Vec<String>) -> String {
    lines
        .into_iter()
        .next()
        .unwrap_or_default()
        .trim()
        .to_owned()
}

/// `/etc/hosts` with every name on its `127.0.1.1` lines (the Debian and
/// Ubuntu line for the machine's own name) replaced by `host_name`, keeping
/// a domain (`old.example.org old` becomes `new.example.org new`) and any
/// comment; None when there is no such line or nothing changes.
pub fn hosts_with_name(text: &str, host_name: &str) -> Option<String> {
    let mut changed = false;
    let mut out = String::with_capacity(text.len() + host_name.len());
    for line in text.split_inclusive('\n') {
        let (body, end) = match line.strip_suffix('\n') {
            Some(b) => (b, "\n"),
            None => (line, ""),
        };
        let (entry, comment) = match body.find('#') {
            Some(i) => (&body[..i], &body[i..]),
            None => (body, ""),
        };
        let mut fields = entry.split_whitespace();
        if fields.next() != Some("127.0.1.1") {
            out.push_str(line);
            continue;
        }
        let names: Vec<String> = fields
            .map(|name| match name.split_once('.') {
                Some((_, domain)) => format!("{host_name}.{domain}"),
                None => host_name.to_owned(),
            })
            .collect();
        let mut names_dedup: Vec<String> = Vec::new();
        for n in names {
            if !names_dedup.contains(&n) {
                names_dedup.push(n);
            }
        }
        if names_dedup.is_empty() {
            names_dedup.push(host_name.to_owned());
        }
        let new = format!(
            "127.0.1.1\t{}{}{comment}{end}",
            names_dedup.join("\t"),
            if comment.is_empty() { "" } else { "\t" }
        );
        changed |= new != line;
        out.push_str(&new);
    }
    changed.then_some(out)
}

/// `text` without its `key=` lines (`KEY=value` or `key=value`, spaces
/// allowed around `=`); None when there are none.
pub fn without_key(text: &str, key: &str) -> Option<String> {
    let mut changed = false;
    let kept: String = text
        .split_inclusive('\n')
        .filter(|line| {
            let binds = line.split_once('=').is_some_and(|(k, _)| k.trim() == key);
            changed |= binds;
            !binds
        })
        .collect();
    changed.then_some(kept)
}

/// The policy type of an SELinux config that is not disabled.
fn selinux_type(config: &str) -> Option<String> {
    let value = |key: &str| {
        config.lines().find_map(|l| {
            let (k, v) = l.split_once('=')?;
            (k.trim() == key).then(|| v.trim().trim_matches('"').to_owned())
        })
    };
    match value("SELINUX")?.as_str() {
        "enforcing" | "permissive" => {}
        _ => return None,
    }
    let kind = value("SELINUXTYPE").unwrap_or_else(|| "targeted".into());
    kind.bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
        .then_some(kind)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_hosts_line_of_the_machine_takes_the_new_name() {
        let hosts = "127.0.0.1\tlocalhost\n127.0.1.1\tweb01.example.org\tweb01\n\n# The following lines are desirable for IPv6\n::1 localhost ip6-localhost\n";
        assert_eq!(
            hosts_with_name(hosts, "web02").unwrap(),
            "127.0.0.1\tlocalhost\n127.0.1.1\tweb02.example.org\tweb02\n\n# The following lines are desirable for IPv6\n::1 localhost ip6-localhost\n"
        );
        assert_eq!(
            hosts_with_name("127.0.1.1 old # mine", "new").unwrap(),
            "127.0.1.1\tnew\t# mine"
        );
        assert_eq!(hosts_with_name("127.0.0.1 localhost\n", "new"), None);
        assert_eq!(hosts_with_name("127.0.1.1\tnew\n", "new"), None);
        // A line naming the same host twice keeps one.
        assert_eq!(
            hosts_with_name("127.0.1.1 a b\n", "n").unwrap(),
            "127.0.1.1\tn\n"
        );
    }

    #[test]
    fn mac_bindings_go_and_the_rest_stays() {
        let profile = "[connection]\nid=Wired\n\n[ethernet]\nmac-address=52:54:00:12:34:56\ncloned-mac-address=preserve\n";
        assert_eq!(
            without_key(profile, "mac-address").unwrap(),
            "[connection]\nid=Wired\n\n[ethernet]\ncloned-mac-address=preserve\n"
        );
        assert_eq!(
            without_key(
                "DEVICE=eth0\nHWADDR = 52:54:00:aa:bb:cc\nONBOOT=yes",
                "HWADDR"
            )
            .unwrap(),
            "DEVICE=eth0\nONBOOT=yes"
        );
        assert_eq!(without_key("id=x\n", "mac-address"), None);
    }

    #[test]
    fn selinux_policy_only_when_enabled() {
        assert_eq!(
            selinux_type("SELINUX=enforcing\nSELINUXTYPE=targeted\n").as_deref(),
            Some("targeted")
        );
        assert_eq!(
            selinux_type("SELINUX=permissive\n").as_deref(),
            Some("targeted")
        );
        assert_eq!(selinux_type("SELINUX=disabled\nSELINUXTYPE=mls\n"), None);
        assert_eq!(selinux_type("SELINUX=enforcing\nSELINUXTYPE=../x\n"), None);
    }
}
