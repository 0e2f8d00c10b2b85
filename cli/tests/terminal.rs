//! vmclonectl on a pseudo-terminal (util-linux `script`): colour and the
//! progress bar; a real Ctrl-C typed into the terminal (the line discipline
//! sends SIGINT) cancels a long copy on the real libvirtd, and nothing is left.

mod support;

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use support::*;
use vmclone_tests::{PrivateBus, Service};

/// A command running on its own pseudo-terminal, 120 columns wide.
struct Terminal {
    child: Child,
    screen: Arc<Mutex<Vec<u8>>>,
}

impl Terminal {
    fn run(args: &[String]) -> Terminal {
        let quoted: Vec<String> = std::iter::once(CTL.to_string())
            .chain(args.iter().cloned())
            .map(|a| format!("'{}'", a.replace('\'', "'\\''")))
            .collect();
        let mut child = Command::new("script")
            .args(["-q", "-f", "-e", "-c"])
            .arg(format!("stty cols 120 rows 40; exec {}", quoted.join(" ")))
            .arg("/dev/null")
            .env_remove("LANGUAGE")
            .env("LC_ALL", "C.UTF-8")
            .env("TERM", "xterm")
            .env_remove("NO_COLOR")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("script is installed (package util-linux)");
        let mut out = child.stdout.take().unwrap();
        let screen = Arc::new(Mutex::new(Vec::new()));
        let sink = screen.clone();
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = out.read(&mut buf) {
                if n == 0 {
                    break;
                }
                sink.lock().unwrap().extend_from_slice(&buf[..n]);
            }
        });
        Terminal { child, screen }
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.screen.lock().unwrap()).into_owned()
    }

    /// Types Ctrl-C.
    fn ctrl_c(&mut self) {
        let stdin = self.child.stdin.as_mut().unwrap();
        stdin.write_all(b"\x03").unwrap();
        stdin.flush().unwrap();
    }

    fn wait(mut self, within: Duration) -> (i32, String) {
        let deadline = Instant::now() + within;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                // Let the reader take the last bytes.
                std::thread::sleep(Duration::from_millis(100));
                return (status.code().unwrap_or(-1), self.text());
            }
            assert!(
                Instant::now() < deadline,
                "still running after {within:?}:\n{}",
                self.text()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// The byte counts a progress bar showed, in order; its line reads
/// "Copying [===>  ] 1.25 GiB/4.00 GiB  812.5 MiB/s  3s left".
fn bar_values(screen: &str) -> Vec<f64> {
    let tokens: Vec<&str> = screen
        .split(|c: char| c.is_whitespace() || c == '\r' || c == '\u{1b}')
        .collect();
    let mut values = Vec::new();
    for pair in tokens.windows(2) {
        // "GiB/4.00" (bytes done, then the total), not "MiB/s" (the rate).
        let Some((unit, total)) = pair[1].split_once('/') else {
            continue;
        };
        if total.parse::<f64>().is_err() {
            continue;
        }
        let factor = match unit {
            "B" => 1.0,
            "KiB" => 1024.0,
            "MiB" => 1024.0 * 1024.0,
            "GiB" => 1024.0 * 1024.0 * 1024.0,
            _ => continue,
        };
        if let Ok(n) = pair[0]
            .trim_start_matches(|c: char| !c.is_ascii_digit())
            .parse::<f64>()
        {
            values.push(n * factor);
        }
    }
    values
}

#[test]
fn on_a_terminal_the_list_has_colour_and_a_clone_ends_with_its_line() {
    let demo = Demo::start();
    let address = format!("--address={}", demo.bus.address());
    let (code, screen) =
        Terminal::run(&["list".into(), address.clone()]).wait(Duration::from_secs(20));
    assert_eq!(code, 0, "{screen}");
    assert!(
        screen.contains("\u{1b}[32mrunning"),
        "running is green on a terminal: {screen:?}"
    );
    let (code, screen) =
        Terminal::run(&["clone".into(), "web01".into(), address]).wait(Duration::from_secs(20));
    assert_eq!(code, 0, "{screen}");
    let id = demo.bus.get_vm("web01-clone").id;
    assert!(
        screen.contains(&format!("Cloned web01 as web01-clone ({id}).")),
        "{screen:?}"
    );
}

// --- On the real libvirtd ---------------------------------------------------

const URI: &str = "qemu:///system";

fn virsh(args: &[&str]) -> String {
    let out = Command::new("virsh")
        .arg("-c")
        .arg(URI)
        .args(args)
        .output()
        .expect("virsh");
    assert!(out.status.success(), "virsh {args:?}: {}", stderr(&out));
    stdout(&out)
}

/// One folder of images under libvirt's image folder and the VMs named with
/// its prefix; both removed on drop.
struct Lab {
    dir: PathBuf,
    prefix: String,
}

impl Lab {
    fn new(tag: &str) -> Lab {
        let up = Command::new("virsh")
            .args(["-c", URI, "version"])
            .output()
            .is_ok_and(|o| o.status.success());
        assert!(
            up,
            "libvirtd is not reachable at {URI}: run `sudo tools/setup-host.sh`"
        );
        let prefix = format!("vmclonectl-e2e-{tag}-{}", std::process::id());
        let dir = Path::new("/var/lib/libvirt/images").join(&prefix);
        std::fs::create_dir_all(&dir).unwrap();
        Lab { dir, prefix }
    }

    fn vms(&self) -> Vec<String> {
        let mut v: Vec<String> = virsh(&["list", "--all", "--name"])
            .lines()
            .filter(|l| l.starts_with(&self.prefix))
            .map(str::to_string)
            .collect();
        v.sort();
        v
    }

    fn files(&self) -> BTreeMap<String, u64> {
        std::fs::read_dir(&self.dir)
            .unwrap()
            .map(|e| {
                let e = e.unwrap();
                (
                    e.file_name().to_string_lossy().into_owned(),
                    e.metadata().unwrap().len(),
                )
            })
            .collect()
    }

    /// A VM whose raw disk of `size_gib` GiB holds `data_gib` GiB of real data.
    fn big_vm(&self, name: &str, size_gib: u64, data_gib: u64) -> String {
        let name = format!("{}-{name}", self.prefix);
        let img = self.dir.join(format!("{name}.raw"));
        std::fs::File::create(&img)
            .unwrap()
            .set_len(size_gib << 30)
            .unwrap();
        // A non-zero pattern (zero blocks could be skipped); qemu-io writes at most 2 GiB at once.
        let mut qemu_io = Command::new("qemu-io");
        qemu_io.args(["-f", "raw"]);
        for at in 0..data_gib {
            qemu_io.arg("-c").arg(format!("write -P 0xa5 {at}G 1G"));
        }
        let out = qemu_io
            .arg(&img)
            .output()
            .expect("qemu-io (package qemu-utils)");
        assert!(out.status.success(), "qemu-io: {}", stderr(&out));
        let xml = format!(
            "<domain type='qemu'><name>{name}</name><memory unit='MiB'>64</memory><vcpu>1</vcpu>\
             <os><type arch='x86_64' machine='pc'>hvm</type></os><devices>\
             <disk type='file' device='disk'><driver name='qemu' type='raw'/><source file='{}'/>\
             <target dev='vda' bus='virtio'/></disk><interface type='user'><model type='virtio'/></interface>\
             </devices></domain>",
            img.display()
        );
        let file = self.dir.join(format!("{name}.xml"));
        std::fs::write(&file, xml).unwrap();
        virsh(&["define", file.to_str().unwrap()]);
        name
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        if let Ok(out) = Command::new("virsh")
            .args(["-c", URI, "list", "--all", "--name"])
            .output()
        {
            for name in String::from_utf8_lossy(&out.stdout)
                .lines()
                .filter(|l| l.starts_with(&self.prefix))
            {
                let _ = Command::new("virsh")
                    .args(["-c", URI, "undefine", name])
                    .output();
            }
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[test]
#[ignore = "needs root, libvirtd and QEMU"]
fn the_bar_advances_during_a_long_copy_and_ctrl_c_cancels_leaving_nothing() {
    let lab = Lab::new("pty");
    let src = lab.big_vm("big", 8, 6);
    let bus = PrivateBus::start();
    let _service = Service::start(&bus, URI, &[]);
    let (files, vms) = (lab.files(), lab.vms());
    let clone = format!("{src}-copy");
    let mut term = Terminal::run(&[
        "clone".into(),
        src.clone(),
        clone.clone(),
        format!("--address={}", bus.address()),
    ]);
    // Wait for the bar to show three different amounts, then type Ctrl-C.
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let mut seen = bar_values(&term.text());
        seen.dedup();
        if seen.iter().filter(|&&v| v > 0.0).count() >= 3 {
            assert!(
                seen.windows(2).all(|w| w[0] <= w[1]),
                "the bar only advances: {seen:?}"
            );
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no advancing bar:\n{:?}",
            term.text()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let screen = term.text();
    assert!(
        screen.contains(&format!("{src} → {clone}\r\n")),
        "{screen:?}"
    );
    assert!(
        screen.contains("Copying") && screen.contains("/6.00 GiB") && screen.contains("s left"),
        "total and time left: {screen:?}"
    );
    term.ctrl_c();
    let (code, screen) = term.wait(Duration::from_secs(120));
    assert_eq!(code, 8, "cancelled: {screen:?}");
    assert!(
        screen.contains(&format!("Cancelled: {clone} was not made")),
        "{screen:?}"
    );
    assert_eq!(lab.vms(), vms, "no domain left");
    assert_eq!(lab.files(), files, "no file left");
}
