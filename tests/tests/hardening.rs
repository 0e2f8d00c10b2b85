//! Attacks on the root service, tried the way a local user would: the real
//! system bus with polkitd, the service as root on real libvirtd (QEMU), and
//! users made by the test — a member of a group that a polkit rule lets
//! clone (the README shows how to grant that), and plain users. Each test
//! compares what exists afterwards with what existed before.

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use vmclone_tests::client::gdbus_error;
use vmclone_tests::libvirt::{
    disk_paths_of, disk_xml, qcow2_image, qemu_img, virsh, wait_running, Lab, Pool, NIC,
    SYSTEM_URI as URI,
};
use vmclone_tests::pauses::Pauses;
use vmclone_tests::process::{run, ChildGuard};
use vmclone_tests::service::SystemService;
use vmclone_tests::signals::SignalWatch;
use vmclone_tests::system::{
    deny_rule, not_authorized, place_rules, PlacedFile, RootTest, TestGroup, TestUser,
};
use vmclone_tests::{reply_object_path, reply_string, stderr_of, stdout_ok, wait_until, Client};

/// A polkit rule that lets `group` clone and make templates without a password.
fn grant(group: &TestGroup, member: &TestUser) -> PlacedFile {
    let rule = place_rules(
        "60-vmclone-hardening.rules",
        format!(
            "polkit.addRule(function(action, subject) {{\n\
             \x20   if ((action.id == \"org.vmclone.clone-vm\" ||\n\
             \x20        action.id == \"org.vmclone.manage-templates\") &&\n\
             \x20       subject.isInGroup(\"{}\")) {{\n\
             \x20       return polkit.Result.YES;\n\
             \x20   }}\n\
             }});\n",
            group.name
        ),
    );
    wait_until(Duration::from_secs(10), "polkitd to load the rule", || {
        member.polkit_allows("org.vmclone.clone-vm")
    });
    rule
}

fn uid_gid(user: &TestUser) -> (u32, u32) {
    let id = |flag: &str| run("id", &[flag, &user.name]).trim().parse().unwrap();
    (id("-u"), id("-g"))
}

/// A folder in the lab that `user` owns and may write.
fn folder_of(lab: &Lab, user: &TestUser, name: &str) -> PathBuf {
    let dir = lab.path(name);
    fs::create_dir_all(&dir).unwrap();
    let (uid, gid) = uid_gid(user);
    std::os::unix::fs::chown(&dir, Some(uid), Some(gid)).unwrap();
    fs::set_permissions(&dir, fs::Permissions::from_mode(0o755)).unwrap();
    dir
}

/// A root-only file that must never change: its bytes, owner and mode.
struct Victim {
    path: PathBuf,
    bytes: Vec<u8>,
}

impl Victim {
    fn new(tag: &str) -> Victim {
        let path = PathBuf::from(format!("/root/vmclone-victim-{tag}-{}", std::process::id()));
        let bytes = format!("root's secret for {tag}\n").into_bytes();
        fs::write(&path, &bytes).unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).unwrap();
        Victim { path, bytes }
    }

    fn assert_untouched(&self) {
        let meta = fs::symlink_metadata(&self.path).unwrap();
        assert_eq!(
            fs::read(&self.path).unwrap(),
            self.bytes,
            "{} was written",
            self.path.display()
        );
        assert_eq!(
            meta.mode() & 0o7777,
            0o600,
            "{} changed mode",
            self.path.display()
        );
        assert_eq!(
            (meta.uid(), meta.gid()),
            (0, 0),
            "{} changed owner",
            self.path.display()
        );
    }
}

impl Drop for Victim {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.path);
    }
}

/// What is in `dir` (not following links): kind, owner, mode and size of each entry.
fn listing(dir: &Path) -> BTreeMap<PathBuf, String> {
    let mut out = BTreeMap::new();
    for entry in fs::read_dir(dir).into_iter().flatten().flatten() {
        let m = entry.metadata().unwrap();
        let kind = if m.file_type().is_symlink() {
            format!("link -> {}", fs::read_link(entry.path()).unwrap().display())
        } else if m.is_dir() {
            "dir".into()
        } else {
            format!("file {}", m.len())
        };
        out.insert(
            entry.path(),
            format!("{kind} {}:{} {:o}", m.uid(), m.gid(), m.mode() & 0o7777),
        );
    }
    out
}

/// The error name and message of a refused property read (`gdbus`: busctl
/// shows only a generic text for standard error names).
fn property_error(
    user: &TestUser,
    path: &str,
    interface: &str,
    property: &str,
) -> (String, String) {
    let out = user
        .gdbus_command("call")
        .args(["--dest", "org.vmclone.Manager", "--object-path", path])
        .args(["--method", "org.freedesktop.DBus.Properties.Get"])
        .args([interface, property])
        .output()
        .unwrap();
    gdbus_error(&out)
}

/// Runs `script` (sh) as `user` in the background until dropped.
fn as_user_in_background(user: &TestUser, script: &str, args: &[&OsStr]) -> ChildGuard {
    let child: Child = user
        .command("sh")
        .arg("-c")
        .arg(script)
        .arg("sh")
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    ChildGuard(child)
}

/// One attack set-up: the service as root on the system bus, a lab, a member
/// of a group allowed to clone.
struct Scene {
    // Fields drop in order: the service stops before the users go, and the
    // RootTest (the system bus lock and policies) last.
    _rule: PlacedFile,
    member: TestUser,
    _group: TestGroup,
    service: SystemService,
    lab: Lab,
    _root: RootTest,
}

impl Scene {
    fn new(tag: &str) -> Scene {
        Scene::with(tag, &[], None)
    }

    fn with(tag: &str, service_args: &[&str], pauses: Option<&Pauses>) -> Scene {
        let root = RootTest::begin();
        let lab = Lab::new(tag);
        let service = SystemService::start_with(&root, URI, service_args, pauses);
        let group = TestGroup::create("vmclone-h-cloners");
        let member = TestUser::create("vmclone-h-member", Some(&group));
        let rule = grant(&group, &member);
        Scene {
            _rule: rule,
            member,
            _group: group,
            service,
            lab,
            _root: root,
        }
    }
}

#[test]
#[ignore = "needs root, the system bus, polkitd and libvirtd"]
fn a_symlink_swapped_in_never_redirects_a_write() {
    let s = Scene::new("h-race");
    let victim = Victim::new("race");
    let dir = folder_of(&s.lab, &s.member, "member");
    // A template and a VM whose images root made in the member's folder.
    let tpl_img = dir.join("tpl.qcow2");
    qcow2_image(&tpl_img, "64M", "write -P 0x5a 0 1M");
    let tpl = s.lab.name("tpl");
    s.lab
        .define(&tpl, "", &format!("{}{NIC}", disk_xml(&tpl_img, "qcow2")));
    stdout_ok(&s.member.call("ConvertToTemplate", "s", &[&tpl]));
    let src_img = dir.join("src.raw");
    fs::write(&src_img, vec![0x3c; 4 << 20]).unwrap();
    let src = s.lab.name("src");
    s.lab
        .define(&src, "", &format!("{}{NIC}", disk_xml(&src_img, "raw")));

    // A link put in place beforehand: the clone takes another name.
    let first = s.lab.name("c0");
    let predicted = dir.join(format!("tpl-{first}.qcow2"));
    s.member
        .command("ln")
        .args(["-s"])
        .arg(&victim.path)
        .arg(&predicted)
        .status()
        .unwrap();
    stdout_ok(&s.member.gdbus_call(
        "CloneVmWithOptions",
        &[&tpl, &first, "{'storage': <'linked'>}"],
    ));
    let overlay = disk_paths_of(&first)[0].clone();
    assert_ne!(
        Path::new(&overlay),
        predicted,
        "the clone wrote through the link"
    );
    victim.assert_untouched();

    // Links swapped in and out as fast as a shell can, at the names the
    // next clones would take: every clone either gets a real file of its own
    // or fails cleanly, and the victim never changes.
    let mut made = Vec::new();
    for i in 1..=6 {
        for (linked, source, ext) in [(true, &tpl, "qcow2"), (false, &src, "raw")] {
            let name = s
                .lab
                .name(&format!("c{i}{}", if linked { "l" } else { "f" }));
            let stem = if linked { "tpl" } else { "src" };
            let target = dir.join(format!("{stem}-{name}.{ext}"));
            let _racer = as_user_in_background(
                &s.member,
                "while :; do ln -s \"$1\" \"$2\" 2>/dev/null; [ -L \"$2\" ] && rm -f \"$2\"; done",
                &[victim.path.as_os_str(), target.as_os_str()],
            );
            let opts = if linked {
                "{'storage': <'linked'>}"
            } else {
                "@a{sv} {}"
            };
            let out = s
                .member
                .gdbus_call("CloneVmWithOptions", &[source, &name, opts]);
            drop(_racer);
            // The racer's last `ln` may still run for a moment; then its link goes.
            std::thread::sleep(Duration::from_millis(300));
            if fs::symlink_metadata(&target).is_ok_and(|m| m.file_type().is_symlink()) {
                fs::remove_file(&target).unwrap();
            }
            if out.status.success() {
                made.push(name);
            } else {
                let (error, message) = gdbus_error(&out);
                assert_eq!(error, "org.vmclone.Error.Storage", "{message}");
            }
            victim.assert_untouched();
        }
    }
    assert!(!made.is_empty(), "no clone got through at all");
    // Every clone's disk is a real file root made, private where it is an overlay.
    for name in made.iter().chain([&first]) {
        let disk = PathBuf::from(&disk_paths_of(name)[0]);
        let meta = fs::symlink_metadata(&disk).unwrap();
        assert!(meta.is_file(), "{} is not a regular file", disk.display());
        assert_eq!(meta.uid(), 0, "{}", disk.display());
        if disk.extension() == Some(OsStr::new("qcow2")) {
            assert_eq!(
                meta.mode() & 0o777,
                0o600,
                "{} is readable by others",
                disk.display()
            );
        }
    }
    // Nothing is in the folder but the images, the clones' disks and the first link.
    let mut expected: Vec<PathBuf> = made
        .iter()
        .chain([&first])
        .map(|n| PathBuf::from(&disk_paths_of(n)[0]))
        .collect();
    expected.extend([tpl_img, src_img, predicted]);
    expected.sort();
    let found: Vec<PathBuf> = listing(&dir).into_keys().collect();
    assert_eq!(found, expected, "left behind: {:?}", listing(&dir));
}

#[test]
#[ignore = "needs root, the system bus, polkitd and libvirtd"]
fn a_symlink_swapped_in_never_redirects_a_live_copy() {
    let s = Scene::new("h-live");
    let victim = Victim::new("live");
    let dir = folder_of(&s.lab, &s.member, "member");
    // A running VM whose image root made in the member's folder: QEMU writes
    // the live copies, by path, as another user.
    let img = dir.join("run.raw");
    fs::write(&img, vec![0x3c; 8 << 20]).unwrap();
    let src = s.lab.name("run");
    s.lab
        .define(&src, "", &format!("{}{NIC}", disk_xml(&img, "raw")));
    virsh(&["start", &src]);
    wait_running(&src);

    let mut made = Vec::new();
    for i in 1..=6 {
        let name = s.lab.name(&format!("l{i}"));
        let target = dir.join(format!("run-{name}.raw"));
        let _racer = as_user_in_background(
            &s.member,
            "while :; do ln -s \"$1\" \"$2\" 2>/dev/null; [ -L \"$2\" ] && rm -f \"$2\"; done",
            &[victim.path.as_os_str(), target.as_os_str()],
        );
        let out = s
            .member
            .gdbus_call("CloneVmWithOptions", &[&src, &name, "{'live': <true>}"]);
        drop(_racer);
        std::thread::sleep(Duration::from_millis(300));
        if fs::symlink_metadata(&target).is_ok_and(|m| m.file_type().is_symlink()) {
            fs::remove_file(&target).unwrap();
        }
        if out.status.success() {
            made.push(name);
        } else {
            let (error, message) = gdbus_error(&out);
            assert_eq!(error, "org.vmclone.Error.Storage", "{message}");
        }
        victim.assert_untouched();
        // QEMU never got a path through the member's folder: the private
        // folder is in the lab's (root's), and gone again.
        let staged: Vec<_> = s
            .lab
            .files()
            .into_keys()
            .filter(|p| p.to_string_lossy().contains(".vmclone-live-"))
            .collect();
        assert!(staged.is_empty(), "left behind: {staged:?}");
    }
    assert!(!made.is_empty(), "no live clone got through at all");
    assert_eq!(virsh(&["domstate", &src]).trim(), "running");
    let mut expected: Vec<PathBuf> = made
        .iter()
        .map(|n| PathBuf::from(&disk_paths_of(n)[0]))
        .collect();
    for disk in &expected {
        let meta = fs::symlink_metadata(disk).unwrap();
        assert!(meta.is_file(), "{} is not a regular file", disk.display());
        assert_eq!(meta.uid(), 0, "{}", disk.display());
        assert_eq!(
            fs::read(disk).unwrap(),
            vec![0x3c; 8 << 20],
            "{}",
            disk.display()
        );
    }
    expected.push(img);
    expected.sort();
    let found: Vec<PathBuf> = listing(&dir).into_keys().collect();
    assert_eq!(found, expected, "left behind: {:?}", listing(&dir));
}

#[test]
#[ignore = "needs root, the system bus, polkitd and libvirtd"]
fn sources_that_are_links_fifos_or_behind_a_users_link_are_refused() {
    let s = Scene::new("h-source");
    let victim = Victim::new("source");
    let dir = folder_of(&s.lab, &s.member, "member");
    let img = dir.join("own.raw");
    fs::write(&img, vec![1u8; 1 << 20]).unwrap();
    let vm = s.lab.name("own");
    s.lab.define(&vm, "", &disk_xml(&img, "raw"));
    let before = (s.lab.vms(), listing(&dir));

    // The image replaced by a link to a root-only file.
    fs::remove_file(&img).unwrap();
    s.member
        .command("ln")
        .arg("-s")
        .arg(&victim.path)
        .arg(&img)
        .status()
        .unwrap();
    let (error, message) = gdbus_error(&s.member.gdbus_call("CloneVm", &[&vm, &s.lab.name("x1")]));
    assert_eq!(error, "org.vmclone.Error.Storage", "{message}");
    assert!(message.contains("symbolic link"), "{message}");

    // A FIFO: refused at once, no thread waits for a writer.
    s.member.command("rm").arg(&img).status().unwrap();
    s.member.command("mkfifo").arg(&img).status().unwrap();
    let t0 = Instant::now();
    let (error, message) = gdbus_error(&s.member.gdbus_call("CloneVm", &[&vm, &s.lab.name("x2")]));
    assert!(
        t0.elapsed() < Duration::from_secs(10),
        "the clone waited on the FIFO"
    );
    assert_eq!(error, "org.vmclone.Error.Storage", "{message}");
    assert!(message.contains("FIFO"), "{message}");

    // The image's folder made a link (by the user) to a root-only folder.
    let secret = PathBuf::from(format!("/root/vmclone-h-secret-{}", std::process::id()));
    fs::create_dir_all(&secret).unwrap();
    fs::write(secret.join("deep.raw"), b"root only").unwrap();
    let via = dir.join("via");
    s.member
        .command("ln")
        .arg("-s")
        .arg(&secret)
        .arg(&via)
        .status()
        .unwrap();
    let vm2 = s.lab.name("deep");
    s.lab
        .define(&vm2, "", &disk_xml(&via.join("deep.raw"), "raw"));
    let secret_before = listing(&secret);
    let (error, message) = gdbus_error(&s.member.gdbus_call("CloneVm", &[&vm2, &s.lab.name("x3")]));
    assert_eq!(error, "org.vmclone.Error.Storage", "{message}");
    assert!(message.contains("owned by user"), "{message}");
    assert_eq!(
        listing(&secret),
        secret_before,
        "something was written beside root's file"
    );
    fs::remove_dir_all(&secret).unwrap();

    victim.assert_untouched();
    s.member.command("rm").arg(&img).arg(&via).status().unwrap();
    fs::write(&img, vec![1u8; 1 << 20]).unwrap();
    let mut vms = before.0.clone();
    vms.push(vm2);
    vms.sort();
    assert_eq!(s.lab.vms(), vms, "a refused clone defined a VM");
    assert_eq!(listing(&dir).len(), before.1.len(), "{:?}", listing(&dir));
}

#[test]
#[ignore = "needs root, the system bus, polkitd and libvirtd"]
fn target_dir_is_only_a_pool_or_the_sources_own_folder() {
    let s = Scene::new("h-target");
    // An image without extension, named after its VM.
    let vm = s.lab.name("web");
    let img = s.lab.path(&vm);
    fs::write(&img, vec![7u8; 1 << 20]).unwrap();
    s.lab.define(&vm, "", &disk_xml(&img, "raw"));
    let forbidden: Vec<&str> = [
        "/root/.ssh",
        "/root",
        "/var/spool/cron/crontabs",
        "/etc/cron.d",
        "/run",
        "/dev/shm",
        "/tmp",
        "/etc",
    ]
    .into_iter()
    .filter(|d| Path::new(d).is_dir())
    .collect();
    assert!(forbidden.len() >= 5, "{forbidden:?}");
    let clone = s.lab.name("authorized_keys");
    for forbidden in forbidden {
        let before = listing(Path::new(forbidden));
        let opts = format!("{{'target-dir': <'{forbidden}'>}}");
        let (error, message) = gdbus_error(
            &s.member
                .gdbus_call("CloneVmWithOptions", &[&vm, &clone, &opts]),
        );
        assert_eq!(
            error, "org.vmclone.Error.InvalidOption",
            "{forbidden}: {message}"
        );
        assert!(
            message.contains(s.lab.dir().to_str().unwrap()),
            "the message lists the allowed folders: {message}"
        );
        assert_eq!(listing(Path::new(forbidden)), before, "{forbidden} changed");
    }
    assert!(!virsh(&["list", "--all", "--name"]).contains("authorized_keys"));

    // A storage pool's folder is a destination; the name alone names no file.
    let pool_dir = s.lab.path("pool");
    let _pool = Pool::create(&s.lab.name("pool"), &pool_dir);
    let opts = format!("{{'target-dir': <'{}'>}}", pool_dir.display());
    stdout_ok(
        &s.member
            .gdbus_call("CloneVmWithOptions", &[&vm, &clone, &opts]),
    );
    let copy = PathBuf::from(&disk_paths_of(&clone)[0]);
    assert_eq!(copy, pool_dir.join(format!("{clone}.img")));
}

#[test]
#[ignore = "needs root, the system bus, polkitd and libvirtd"]
fn folders_of_shared_disks_are_no_destinations() {
    let s = Scene::new("h-shared-dirs");
    let img = s.lab.path("disk.raw");
    fs::write(&img, vec![5u8; 1 << 20]).unwrap();
    // A read-only image in a root folder, a host cdrom drive in /dev.
    let ro_dir = PathBuf::from(format!("/root/vmclone-h-ro-{}", std::process::id()));
    fs::create_dir_all(&ro_dir).unwrap();
    let ro = ro_dir.join("data.img");
    fs::write(&ro, vec![6u8; 1 << 20]).unwrap();
    let vm = s.lab.name("shared");
    s.lab.define(
        &vm,
        "",
        &format!(
            "{}<disk type='file' device='disk'><driver name='qemu' type='raw'/><source file='{}'/><target dev='vdb' bus='virtio'/><readonly/></disk>\
             <disk type='file' device='cdrom'><driver name='qemu' type='raw'/><source file='/dev/sr0'/><target dev='sda' bus='sata'/><readonly/></disk>",
            disk_xml(&img, "raw"),
            ro.display()
        ),
    );
    for dir in [ro_dir.as_path(), Path::new("/dev")] {
        let before = listing(dir);
        let opts = format!("{{'target-dir': <'{}'>}}", dir.display());
        for method in ["PlanClone", "CloneVmWithOptions"] {
            let (error, message) =
                gdbus_error(&s.member.gdbus_call(method, &[&vm, &s.lab.name("c"), &opts]));
            assert_eq!(
                error,
                "org.vmclone.Error.InvalidOption",
                "{} {method}: {message}",
                dir.display()
            );
            assert!(
                message.contains(s.lab.dir().to_str().unwrap()),
                "the writable disk's folder is allowed: {message}"
            );
        }
        assert_eq!(listing(dir), before, "{} changed", dir.display());
    }
    // The writable disk's own folder is a destination.
    let opts = format!("{{'target-dir': <'{}'>}}", s.lab.dir().display());
    stdout_ok(
        &s.member
            .gdbus_call("PlanClone", &[&vm, &s.lab.name("c"), &opts]),
    );
    fs::remove_dir_all(&ro_dir).unwrap();
}

#[test]
#[ignore = "needs root, the system bus, polkitd and libvirtd"]
fn target_dir_refusals_do_not_tell_whether_a_hidden_folder_exists() {
    let s = Scene::new("h-probe");
    let reader = TestUser::create("vmclone-h-reader", None);
    let img = s.lab.path("disk.raw");
    fs::write(&img, vec![4u8; 1 << 20]).unwrap();
    let vm = s.lab.name("probe");
    s.lab.define(&vm, "", &disk_xml(&img, "raw"));
    let hidden = PathBuf::from(format!("/root/vmclone-h-hidden-{}", std::process::id()));
    fs::create_dir_all(hidden.join("inner")).unwrap();
    let refusal = |user: &TestUser, method: &str, dir: &Path| {
        let opts = format!("{{'target-dir': <'{}'>}}", dir.display());
        let (error, message) =
            gdbus_error(&user.gdbus_call(method, &[&vm, &s.lab.name("c"), &opts]));
        assert_eq!(error, "org.vmclone.Error.InvalidOption", "{message}");
        message.replace(dir.to_str().unwrap(), "DIR")
    };
    for (user, method) in [(&reader, "PlanClone"), (&s.member, "CloneVmWithOptions")] {
        let existing = refusal(user, method, &hidden.join("inner"));
        let missing = refusal(user, method, &hidden.join("nothing-here"));
        assert_eq!(existing, missing, "{method} tells them apart");
        assert_eq!(refusal(user, method, &hidden), existing);
    }
    fs::remove_dir_all(&hidden).unwrap();
}

#[test]
#[ignore = "needs root, the system bus, polkitd and libvirtd"]
fn devices_a_clone_cannot_share_are_refused_with_nothing_made() {
    let s = Scene::new("h-devices");
    let img = s.lab.path("disk.raw");
    fs::write(&img, vec![2u8; 1 << 20]).unwrap();
    let cases = [
        ("hostdev", "<hostdev mode='subsystem' type='pci' managed='yes'><source><address domain='0x0000' bus='0x09' slot='0x00' function='0x0'/></source></hostdev>", "org.vmclone.Error.InvalidOption", "host device"),
        ("nichostdev", "<interface type='hostdev' managed='yes'><source><address type='pci' domain='0x0000' bus='0x09' slot='0x00' function='0x1'/></source></interface>", "org.vmclone.Error.InvalidOption", "host device"),
        ("vhostuser", "<interface type='vhostuser'><source type='unix' path='/run/vmclone-vhu.sock' mode='client'/><model type='virtio'/></interface>", "org.vmclone.Error.InvalidOption", "/run/vmclone-vhu.sock"),
        ("share", "<filesystem type='mount' accessmode='passthrough'><source dir='/srv'/><target dir='share'/></filesystem>", "org.vmclone.Error.Storage", "/srv"),
    ];
    for (tag, device, want, needle) in cases {
        let vm = s.lab.name(tag);
        s.lab
            .define(&vm, "", &format!("{}{device}", disk_xml(&img, "raw")));
        let before = (s.lab.vms(), s.lab.files());
        let (error, message) = gdbus_error(
            &s.member
                .gdbus_call("CloneVm", &[&vm, &s.lab.name(&format!("{tag}-c"))]),
        );
        assert_eq!(error, want, "{tag}: {message}");
        assert!(message.contains(needle), "{tag}: {message}");
        assert_eq!(
            (s.lab.vms(), s.lab.files()),
            before,
            "{tag}: something was made"
        );
    }
    // UEFI variables on a block device.
    let vm = s.lab.name("nvblock");
    s.lab.define(
        &vm,
        "<loader readonly='yes' type='pflash'>/usr/share/OVMF/OVMF_CODE_4M.fd</loader><nvram type='block'><source dev='/dev/vmclone-test-no-such-device'/></nvram>",
        &disk_xml(&img, "raw"),
    );
    let (error, message) = gdbus_error(
        &s.member
            .gdbus_call("CloneVm", &[&vm, &s.lab.name("nvblock-c")]),
    );
    assert_eq!(error, "org.vmclone.Error.Storage", "{message}");
    assert!(message.contains("UEFI"), "{message}");
    // A read-only folder is shared like a read-only disk.
    let vm = s.lab.name("roshare");
    s.lab.define(&vm, "", &format!("{}<filesystem type='mount' accessmode='passthrough'><source dir='/srv'/><target dir='share'/><readonly/></filesystem>", disk_xml(&img, "raw")));
    stdout_ok(
        &s.member
            .gdbus_call("CloneVm", &[&vm, &s.lab.name("roshare-c")]),
    );
}

#[test]
#[ignore = "needs root, the system bus, polkitd and libvirtd"]
fn a_backing_chain_is_copied_whole_and_the_copy_stands_on_copies_only() {
    let s = Scene::new("h-chain");
    let base = s.lab.path("base.qcow2");
    qcow2_image(&base, "64M", "write -P 0x11 0 1M");
    let top = s.lab.path("top.qcow2");
    // A relative backing name: it must never resolve into the target folder.
    run(
        "qemu-img",
        &[
            "create",
            "-q",
            "-f",
            "qcow2",
            "-F",
            "qcow2",
            "-b",
            "base.qcow2",
            top.to_str().unwrap(),
        ],
    );
    run(
        "qemu-io",
        &[
            "-f",
            "qcow2",
            "-c",
            "write -P 0x22 2M 1M",
            top.to_str().unwrap(),
        ],
    );
    let vm = s.lab.name("chain");
    s.lab
        .define(&vm, "", &format!("{}{NIC}", disk_xml(&top, "qcow2")));
    let pool_dir = s.lab.path("pool");
    let _pool = Pool::create(&s.lab.name("pool"), &pool_dir);
    // A file in the target folder named like the backing: the copy must not stand on it.
    fs::write(pool_dir.join("base.qcow2"), b"a decoy").unwrap();
    let clone = s.lab.name("chain-c");
    let opts = format!("{{'target-dir': <'{}'>}}", pool_dir.display());
    stdout_ok(
        &s.member
            .gdbus_call("CloneVmWithOptions", &[&vm, &clone, &opts]),
    );
    let copy = disk_paths_of(&clone)[0].clone();
    let info = qemu_img(&["info", "--backing-chain", "-U", "--output=json", &copy]);
    let chain: serde_json::Value = serde_json::from_str(&info).unwrap();
    let files: Vec<String> = chain
        .as_array()
        .unwrap()
        .iter()
        .map(|layer| layer["filename"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(files.len(), 2, "{info}");
    for f in &files {
        assert!(
            f.starts_with(pool_dir.to_str().unwrap()),
            "the copy stands on {f}: {info}"
        );
        assert!(
            !f.ends_with("/base.qcow2"),
            "the copy stands on the decoy: {info}"
        );
    }
    assert!(
        chain[0]["full-backing-filename"]
            .as_str()
            .unwrap()
            .starts_with('/'),
        "the backing reference is absolute: {info}"
    );
    let same = qemu_img(&["compare", "-U", top.to_str().unwrap(), &copy]);
    assert!(same.contains("identical"), "{same}");
}

#[test]
#[ignore = "needs root, the system bus, polkitd and libvirtd"]
fn a_users_image_naming_a_root_file_as_backing_is_never_followed() {
    let s = Scene::new("h-backing");
    let victim = Victim::new("backing");
    let dir = folder_of(&s.lab, &s.member, "member");
    let top = dir.join("top.qcow2");
    // The user writes the header (qemu-img -u does not open the backing).
    let header_naming = |backing: &Path| {
        s.member.command("rm").arg("-f").arg(&top).status().unwrap();
        let out = s
            .member
            .command("qemu-img")
            .args(["create", "-q", "-f", "qcow2", "-u", "-F", "raw", "-b"])
            .arg(backing)
            .arg(&top)
            .arg("1M")
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", stderr_of(&out));
    };
    let vm = s.lab.name("evil");
    s.lab.define(&vm, "", &disk_xml(&top, "qcow2"));
    let pool_dir = s.lab.path("pool");
    let _pool = Pool::create(&s.lab.name("pool"), &pool_dir);
    let to_pool = format!("{{'target-dir': <'{}'>}}", pool_dir.display());
    let relative = PathBuf::from("../../../../../..").join(victim.path.strip_prefix("/").unwrap());
    // A hard link to root's file in the user's folder (as where
    // fs.protected_hardlinks is off): an allowed folder, but not the user's file.
    let link = dir.join("base.raw");
    let cases: [(&str, &Path, &str); 3] = [
        ("absolute", &victim.path, "neither in a storage pool"),
        ("relative", &relative, "neither in a storage pool"),
        ("hardlink", &link, "hard link"),
    ];
    let root_before = listing(Path::new("/root"));
    for (tag, backing, needle) in cases {
        if tag == "hardlink" {
            fs::hard_link(&victim.path, &link).unwrap();
        }
        header_naming(backing);
        let before = (s.lab.vms(), s.lab.files());
        let clone = s.lab.name(&format!("{tag}-c"));
        for opts in ["@a{sv} {}", to_pool.as_str()] {
            for method in ["PlanClone", "CloneVmWithOptions"] {
                let (error, message) =
                    gdbus_error(&s.member.gdbus_call(method, &[&vm, &clone, opts]));
                assert_eq!(
                    error, "org.vmclone.Error.Storage",
                    "{tag} {method}: {message}"
                );
                assert!(
                    message.contains(needle) && message.contains("does not follow it"),
                    "{tag} {method}: {message}"
                );
            }
        }
        assert_eq!(
            (s.lab.vms(), s.lab.files()),
            before,
            "{tag}: something was made"
        );
        assert_eq!(
            listing(Path::new("/root")),
            root_before,
            "{tag}: /root changed"
        );
        victim.assert_untouched();
    }
    fs::remove_file(&link).unwrap();

    // A template whose image stands on root's file: no linked clone either.
    header_naming(&victim.path);
    stdout_ok(&s.member.call("ConvertToTemplate", "s", &[&vm]));
    let before = (s.lab.vms(), s.lab.files());
    let (error, message) = gdbus_error(&s.member.gdbus_call(
        "CloneVmWithOptions",
        &[&vm, &s.lab.name("linked-c"), "{'storage': <'linked'>}"],
    ));
    assert_eq!(error, "org.vmclone.Error.Storage", "{message}");
    assert!(message.contains("neither in a storage pool"), "{message}");
    assert_eq!(
        (s.lab.vms(), s.lab.files()),
        before,
        "linked: something was made"
    );
    assert_eq!(listing(Path::new("/root")), root_before);
    victim.assert_untouched();
}

#[test]
#[ignore = "needs root, the system bus, polkitd and libvirtd"]
fn an_image_with_an_external_data_file_is_refused_before_qemu_img_opens_it() {
    let s = Scene::new("h-datafile");
    let dir = folder_of(&s.lab, &s.member, "member");
    let top = dir.join("top.qcow2");
    let data = dir.join("top.data");
    // qemu-img (and QEMU) would open the data file the header names read-write, as root.
    let out = s
        .member
        .command("qemu-img")
        .args(["create", "-q", "-f", "qcow2", "-o"])
        .arg(format!("data_file={}", data.display()))
        .arg(&top)
        .arg("1M")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr_of(&out));
    let data_before = fs::metadata(&data).unwrap().modified().unwrap();
    let vm = s.lab.name("datafile");
    s.lab.define(&vm, "", &disk_xml(&top, "qcow2"));
    let before = (s.lab.vms(), s.lab.files());
    for (method, opts) in [
        ("PlanClone", "@a{sv} {}"),
        ("CloneVmWithOptions", "@a{sv} {}"),
        ("CloneVmWithOptions", "{'live': <true>}"),
    ] {
        let (error, message) =
            gdbus_error(&s.member.gdbus_call(method, &[&vm, &s.lab.name("c"), opts]));
        assert_eq!(
            error, "org.vmclone.Error.Storage",
            "{method} {opts}: {message}"
        );
        assert!(
            message.contains("external file"),
            "{method} {opts}: {message}"
        );
    }
    stdout_ok(&s.member.call("ConvertToTemplate", "s", &[&vm]));
    let (error, message) = gdbus_error(&s.member.gdbus_call(
        "CloneVmWithOptions",
        &[&vm, &s.lab.name("l"), "{'storage': <'linked'>}"],
    ));
    assert_eq!(error, "org.vmclone.Error.Storage", "linked: {message}");
    assert!(message.contains("external file"), "linked: {message}");
    assert_eq!((s.lab.vms(), s.lab.files()), before, "something was made");
    assert_eq!(
        fs::metadata(&data).unwrap().modified().unwrap(),
        data_before
    );
}

#[test]
#[ignore = "needs root, the system bus, polkitd and libvirtd"]
fn a_readers_plans_never_make_a_real_clone_fail() {
    // A plan stops after it has chosen names, paths and MACs, until let go.
    let pauses = Pauses::at(&["dry-run-planned"]);
    let s = Scene::with("h-plans", &[], Some(&pauses));
    let reader = TestUser::create("vmclone-h-reader", None);
    let img = s.lab.path("disk.raw");
    fs::write(&img, vec![3u8; 1 << 20]).unwrap();
    let vm = s.lab.name("src");
    s.lab
        .define(&vm, "", &format!("{}{NIC}", disk_xml(&img, "raw")));
    let clone = s.lab.name("wanted");
    // The reader (allowed list-vms only) plans the very clone root is about to make.
    let mut plan = ChildGuard(
        reader
            .gdbus_command("call")
            .args([
                "--dest",
                "org.vmclone.Manager",
                "--object-path",
                "/org/vmclone/Manager",
            ])
            .args([
                "--method",
                "org.vmclone.Manager.PlanClone",
                &vm,
                &clone,
                "@a{sv} {}",
            ])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    pauses.wait("dry-run-planned", Duration::from_secs(30));
    stdout_ok(&Client::system().gdbus_call("CloneVm", &[&vm, &clone]));
    // Its disk took the first name, not one after the plan's.
    assert_eq!(
        disk_paths_of(&clone),
        vec![s
            .lab
            .path(&format!("disk-{clone}.raw"))
            .display()
            .to_string()]
    );
    pauses.release("dry-run-planned");
    let status = plan.0.wait().unwrap();
    assert!(status.success(), "the plan itself failed");
}

#[test]
#[ignore = "needs root, the system bus, polkitd and libvirtd"]
fn a_job_belongs_to_the_user_who_started_it() {
    let root = RootTest::begin();
    let lab = Lab::new("h-jobs");
    // A URI with a query: no caller sees its parameters.
    let service = SystemService::start(
        &root,
        "qemu+unix:///system?socket=/run/libvirt/libvirt-sock",
    );
    let group = TestGroup::create("vmclone-h-cloners");
    let owner = TestUser::create("vmclone-h-owner", Some(&group));
    let other = TestUser::create("vmclone-h-other", Some(&group));
    let plain = TestUser::create("vmclone-h-plain", None);
    let _rule = grant(&group, &owner);
    let vm = lab.name("nodisk");
    lab.define(&vm, "", NIC);
    let path =
        reply_object_path(&owner.call("StartClone", "ssa{sv}", &[&vm, &lab.name("mine"), "0"]));
    wait_until(Duration::from_secs(30), "the job to finish", || {
        owner.job_property(&path, "State") == "s \"succeeded\""
    });
    assert!(owner.job_property(&path, "NewName").contains("mine"));
    // Another user, even one allowed to clone, reads nothing of it and cannot cancel it.
    for intruder in [&other, &plain] {
        for property in ["State", "NewName", "SourceVmId", "Error", "ClonedVmId"] {
            let (name, message) = property_error(intruder, &path, "org.vmclone.Job", property);
            assert_eq!(
                name, "org.freedesktop.DBus.Error.AccessDenied",
                "{property}: {message}"
            );
            assert!(
                message.contains("org.vmclone.Error.NotAuthorized") && message.contains("uid"),
                "{} read {property}: {message}",
                intruder.name
            );
        }
        let out = intruder.busctl(["introspect", "org.vmclone.Manager", &path]);
        assert!(
            !String::from_utf8_lossy(&out.stdout).contains("\"mine"),
            "introspection shows the values"
        );
        let jobs = stdout_ok(&intruder.call("ListJobs", "", &[]));
        assert!(
            !jobs.contains(&path),
            "{} lists another user's job: {jobs}",
            intruder.name
        );
    }
    not_authorized(
        &other
            .gdbus_command("call")
            .args([
                "--dest",
                "org.vmclone.Manager",
                "--object-path",
                &path,
                "--method",
                "org.vmclone.Job.Cancel",
            ])
            .output()
            .unwrap(),
        "Cancel by another member",
    );
    assert!(stdout_ok(&owner.call("ListJobs", "", &[])).contains(&path));
    assert!(stdout_ok(&Client::system().call("ListJobs", "", &[])).contains(&path));
    // The URI shows no parameters, and only to those who may list VMs.
    let uri = plain.property("/org/vmclone/Manager", "org.vmclone.Manager", "LibvirtUri");
    assert_eq!(uri, "s \"qemu+unix:///system\"");
    let _deny = deny_rule(
        "40-vmclone-hardening-deny.rules",
        &plain,
        "org.vmclone.list-vms",
    );
    let (name, message) = property_error(
        &plain,
        "/org/vmclone/Manager",
        "org.vmclone.Manager",
        "LibvirtUri",
    );
    assert_eq!(name, "org.freedesktop.DBus.Error.AccessDenied", "{message}");
    assert!(message.contains("org.vmclone.list-vms"), "{message}");
    drop(service);
}

#[test]
#[ignore = "needs root, the system bus, polkitd and libvirtd"]
fn a_jobs_signals_show_other_users_no_names_sources_or_errors() {
    let s = Scene::new("h-signals");
    let other = TestUser::create("vmclone-h-other", None);
    let img = s.lab.path("secret-disk-name.raw");
    fs::write(&img, vec![8u8; 4 << 20]).unwrap();
    let vm = s.lab.name("quiet");
    let uuid = s.lab.define(&vm, "", &disk_xml(&img, "raw"));
    let watch = SignalWatch::start(&other);
    let ok = s.lab.name("quiet-ok");
    let path = reply_object_path(&s.member.call("StartClone", "ssa{sv}", &[&vm, &ok, "0"]));
    let mut seen = watch.collect_until("Finished", Duration::from_secs(60));
    assert!(
        seen.iter().any(|l| l.contains(&path)),
        "the job's progress reaches every client, as documented: {seen:?}"
    );
    // A clone that fails names the disk in its Error.
    fs::remove_file(&img).unwrap();
    let bad = s.lab.name("quiet-bad");
    let out = s.member.call("StartClone", "ssa{sv}", &[&vm, &bad, "0"]);
    if out.status.success() {
        let path = reply_object_path(&out);
        seen.extend(watch.collect_until("Finished", Duration::from_secs(60)));
        assert!(s
            .member
            .job_property(&path, "Error")
            .contains("secret-disk-name"));
    }
    // (VmCloned, which names every new clone to everyone, is not a job's.)
    let job_lines: Vec<&String> = seen.iter().filter(|l| l.contains("/jobs/")).collect();
    for secret in [ok.as_str(), bad.as_str(), uuid.as_str(), "secret-disk-name"] {
        assert!(
            !job_lines.iter().any(|l| l.contains(secret)),
            "another user's monitor saw “{secret}” in a job's signal: {job_lines:?}"
        );
    }
}

#[test]
#[ignore = "needs root, the system bus, polkitd and libvirtd"]
fn a_user_looping_refused_calls_cannot_flood_the_log() {
    let s = Scene::new("h-flood");
    let plain = TestUser::create("vmclone-h-plain", None);
    let vm = s.lab.name("flood");
    s.lab.define(&vm, "", NIC);
    for _ in 0..40 {
        not_authorized(
            &plain.gdbus_call("ConvertToTemplate", &[&vm]),
            "a plain user's template",
        );
    }
    let log = s.service.log_text();
    let loud = log
        .lines()
        .filter(|l| l.contains("denied by polkit") && !l.contains("DEBUG"))
        .count();
    assert_eq!(loud, 10, "{log}");
    assert!(
        log.contains("further ones are logged at debug level"),
        "{log}"
    );
}

#[test]
#[ignore = "needs root, the system bus, polkitd and libvirtd"]
fn a_caller_that_leaves_cancels_its_clone_and_extra_clones_queue() {
    // Clones stop before their disk copy until the test lets them go on.
    let pauses = Pauses::at(&["before-disk-0"]);
    let s = Scene::with("h-limits", &["--max-copies", "1"], Some(&pauses));
    let img = s.lab.path("disk.raw");
    fs::write(&img, vec![9u8; 4 << 20]).unwrap();
    let vm = s.lab.name("src");
    s.lab
        .define(&vm, "", &format!("{}{NIC}", disk_xml(&img, "raw")));
    let before = (s.lab.vms(), s.lab.files());

    // busctl gives up after a second; the clone it waited for is removed.
    let out = s.member.busctl([
        "--timeout=1",
        "call",
        "org.vmclone.Manager",
        "/org/vmclone/Manager",
        "org.vmclone.Manager",
        "CloneVm",
        "ss",
        &vm,
        &s.lab.name("gone"),
    ]);
    assert!(!out.status.success(), "the call returned before the pause");
    wait_until(
        Duration::from_secs(30),
        "the abandoned clone to be rolled back",
        || s.service.log_text().contains("left the bus") && !pauses.reached("before-disk-0"),
    );
    wait_until(Duration::from_secs(30), "its rollback", || {
        (s.lab.vms(), s.lab.files()) == before
    });

    // One copy slot: the second clone waits, queued, and can be cancelled there.
    let first = reply_object_path(&s.member.call(
        "StartClone",
        "ssa{sv}",
        &[&vm, &s.lab.name("q1"), "0"],
    ));
    pauses.wait("before-disk-0", Duration::from_secs(30));
    let second = reply_object_path(&s.member.call(
        "StartClone",
        "ssa{sv}",
        &[&vm, &s.lab.name("q2"), "0"],
    ));
    assert_eq!(s.member.job_property(&first, "State"), "s \"running\"");
    assert_eq!(s.member.job_property(&second, "State"), "s \"queued\"");
    stdout_ok(&s.member.busctl([
        "call",
        "org.vmclone.Manager",
        &second,
        "org.vmclone.Job",
        "Cancel",
    ]));
    wait_until(
        Duration::from_secs(5),
        "the queued clone to be cancelled",
        || s.member.job_property(&second, "State") == "s \"cancelled\"",
    );
    assert_eq!(
        s.member.job_property(&first, "State"),
        "s \"running\"",
        "the first one goes on"
    );
    pauses.release("before-disk-0");
    wait_until(Duration::from_secs(60), "the first clone to finish", || {
        s.member.job_property(&first, "State") == "s \"succeeded\""
    });
    assert!(!s.lab.vms().contains(&s.lab.name("q2")));

    // A batch is at most 100 clones.
    let names: Vec<String> = (0..101)
        .map(|i| format!("{}-{i}", s.lab.name("n")))
        .collect();
    let mut args = vec![vm.clone(), names.len().to_string()];
    args.extend(names);
    args.push("0".into());
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let err = stderr_of(&s.member.call("CloneVms", "sasa{sv}", &args));
    assert!(err.contains("at most 100"), "{err}");
}

#[test]
#[ignore = "needs root, the system bus, polkitd and libvirtd"]
fn a_user_looping_list_vms_cannot_starve_clones() {
    let s = Scene::new("h-flood");
    let plain = TestUser::create("vmclone-h-plain", None);
    let vm = s.lab.name("small");
    s.lab.define(&vm, "", NIC);
    let floods: Vec<ChildGuard> = (0..8)
        .map(|_| {
            as_user_in_background(
                &plain,
                "while :; do busctl --system call org.vmclone.Manager /org/vmclone/Manager org.vmclone.Manager ListVms >/dev/null 2>&1; done",
                &[],
            )
        })
        .collect();
    std::thread::sleep(Duration::from_secs(1));
    for i in 0..5 {
        let t0 = Instant::now();
        reply_string(
            &s.member
                .call("CloneVm", "ss", &[&vm, &s.lab.name(&format!("f{i}"))]),
        );
        assert!(
            t0.elapsed() < Duration::from_secs(5),
            "a clone took {:?} under the flood",
            t0.elapsed()
        );
    }
    let t0 = Instant::now();
    let vms = plain.list_vms();
    assert!(t0.elapsed() < Duration::from_secs(5));
    assert!(vms.iter().any(|v| v.name == vm));
    drop(floods);
}

#[test]
#[ignore = "needs root, the system bus, polkitd and libvirtd"]
fn names_and_options_that_would_fail_late_fail_before_any_copy() {
    let s = Scene::new("h-names");
    for bad in [
        "日".repeat(67),
        "6b3c2a4e-8f3d-4c1e-9a7b-2f5d8e9c1a3b".to_string(),
    ] {
        let (error, _) = gdbus_error(&s.member.gdbus_call("CheckName", &[&bad]));
        assert_eq!(error, "org.vmclone.Error.InvalidName", "{bad}");
    }
    let img = s.lab.path("pinned.raw");
    fs::write(&img, vec![3u8; 8 << 20]).unwrap();
    let vm = s.lab.name("pinned");
    fs::write(
        s.lab.path("pinned.xml"),
        format!(
            "<domain type='qemu'><name>{vm}</name><memory unit='MiB'>64</memory><vcpu>2</vcpu>\
             <cputune><vcpupin vcpu='1' cpuset='0'/></cputune>\
             <os><type arch='x86_64' machine='pc'>hvm</type></os><devices>{}</devices></domain>",
            disk_xml(&img, "raw")
        ),
    )
    .unwrap();
    virsh(&["define", s.lab.path("pinned.xml").to_str().unwrap()]);
    let before = (s.lab.vms(), s.lab.files());
    let (error, message) = gdbus_error(&s.member.gdbus_call(
        "CloneVmWithOptions",
        &[&vm, &s.lab.name("one"), "{'vcpus': <uint32 1>}"],
    ));
    assert_eq!(error, "org.vmclone.Error.InvalidOption", "{message}");
    assert!(message.contains("vcpupin"), "{message}");
    assert_eq!(
        (s.lab.vms(), s.lab.files()),
        before,
        "the disk was copied first"
    );
    // vcpus sets the current count too.
    let clone = s.lab.name("two");
    stdout_ok(&s.member.gdbus_call(
        "CloneVmWithOptions",
        &[&vm, &clone, "{'vcpus': <uint32 2>}"],
    ));
    assert_eq!(
        virsh(&["vcpucount", &clone, "--config", "--active"]).trim(),
        "2"
    );
}
