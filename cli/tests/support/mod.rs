//! The real `vmclonectl` binary against the real service on a private bus.

#![allow(dead_code)] // each test file uses its own part

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc::Receiver;
use std::time::Duration;

use serde_json::Value as Json;
use vmclone_tests::mounts::free_bytes;
use vmclone_tests::temp::file_sizes;
use vmclone_tests::{demo_host_uri, Client, PrivateBus, Service};

pub const CTL: &str = env!("CARGO_BIN_EXE_vmclonectl");

/// A private bus with the service on the demo host (libvirt's test driver), or
/// on another connection.
pub struct Demo {
    pub service: Service,
    pub bus: PrivateBus,
}

impl Demo {
    pub fn start() -> Demo {
        Demo::on(&demo_host_uri())
    }

    /// The service on another libvirt connection (a test-driver host, qemu:///system).
    pub fn on(uri: &str) -> Demo {
        let bus = PrivateBus::start();
        let service = Service::start(&bus, uri, &[]);
        Demo { service, bus }
    }

    /// `vmclonectl --address=BUS ARGS…` in English.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut cmd = ctl(args);
        cmd.arg(format!("--address={}", self.bus.address()));
        cmd
    }

    pub fn ctl(&self, args: &[&str]) -> Output {
        self.command(args).output().expect("run vmclonectl")
    }
}

/// `vmclonectl ARGS…` with English messages.
pub fn ctl(args: &[&str]) -> Command {
    let mut cmd = Command::new(CTL);
    english(cmd.args(args));
    cmd
}

/// `vmclonectl ARGS…` run by `client`'s user (root, or a test user), in English.
pub fn ctl_by(client: &Client, args: &[&str]) -> Command {
    let mut cmd = client.command(CTL);
    english(cmd.args(args));
    cmd
}

/// English messages, colour allowed: the environment the tests read output in.
pub fn english(cmd: &mut Command) -> &mut Command {
    cmd.env_remove("LANGUAGE")
        .env("LC_ALL", "C.UTF-8")
        .env_remove("NO_COLOR")
}

pub fn code(out: &Output) -> i32 {
    out.status.code().expect("exited, not killed")
}

pub fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// A run that failed with `status` and ended with one sentence on stderr
/// (after the phase lines a clone prints without a terminal).
pub fn assert_fails(out: &Output, status: i32, needle: &str) -> String {
    let err = stderr(out);
    assert_eq!(
        code(out),
        status,
        "exit status; stderr: {err} stdout: {}",
        stdout(out)
    );
    let lines: Vec<&str> = err.trim_end().lines().collect();
    let (last, phases) = lines.split_last().expect("a sentence on stderr");
    assert!(last.starts_with("vmclonectl: "), "{err}");
    assert!(
        phases.iter().all(|l| !l.starts_with("vmclonectl:")),
        "one error sentence: {err}"
    );
    assert!(
        last.contains(needle),
        "stderr {err:?} should contain {needle:?}"
    );
    last.to_string()
}

/// stdout of a run that succeeded.
pub fn ok(out: &Output) -> String {
    assert_eq!(code(out), 0, "stderr: {}", stderr(out));
    stdout(out)
}

/// stdout of a run that succeeded, parsed as JSON.
pub fn json(out: &Output) -> Json {
    let text = ok(out);
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
}

/// `value` without its `free-bytes` (anywhere): the free space of a shared
/// machine's /tmp moves between two readings.
pub fn without_free_bytes(value: &Json) -> Json {
    match value {
        Json::Object(o) => Json::Object(
            o.iter()
                .filter(|(k, _)| k.as_str() != "free-bytes")
                .map(|(k, v)| (k.clone(), without_free_bytes(v)))
                .collect(),
        ),
        Json::Array(a) => Json::Array(a.iter().map(without_free_bytes).collect()),
        other => other.clone(),
    }
}

/// Free space read at two moments on a shared machine: close, not equal.
pub fn assert_about_free(reported: &Json, dir: &Path) {
    let reported = reported.as_u64().expect("free-bytes is a number");
    let now = free_bytes(dir);
    assert!(
        reported.abs_diff(now) < 512 << 20,
        "free space of {}: the service said {reported}, df says {now}",
        dir.display()
    );
}

/// The plan's disk destinations and NVRAM destination: the files a clone makes.
pub fn planned_files(plan: &Json) -> BTreeSet<PathBuf> {
    let mut files: BTreeSet<PathBuf> = plan["disks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| PathBuf::from(d["destination"].as_str().unwrap()))
        .collect();
    files.insert(PathBuf::from(
        plan["nvram"]["destination"].as_str().unwrap(),
    ));
    files
}

/// The files below `dir` that are not in `before`.
pub fn new_files(before: &BTreeMap<PathBuf, u64>, dir: &Path) -> BTreeSet<PathBuf> {
    file_sizes(dir)
        .into_keys()
        .filter(|p| !before.contains_key(p))
        .collect()
}

/// The words of the line of `text` that starts with `first`.
pub fn row<'t>(text: &'t str, first: &str) -> Vec<&'t str> {
    text.lines()
        .find(|l| l.split_whitespace().next() == Some(first))
        .unwrap_or_else(|| panic!("no row {first} in\n{text}"))
        .split_whitespace()
        .collect()
}

/// The value of the `Key:  value` line of `text` for `key`.
pub fn value_of(text: &str, key: &str) -> String {
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("{key}:")))
        .unwrap_or_else(|| panic!("no {key} in\n{text}"))
        .trim()
        .to_string()
}

/// `vmclonectl monitor` running in the background, read line by line.
pub struct Monitor {
    child: Child,
    lines: Receiver<String>,
}

impl Monitor {
    /// Spawns `monitor` (a vmclonectl command with its arguments) and waits
    /// until it says it is watching.
    pub fn start(mut monitor: Command) -> Monitor {
        let mut child = monitor
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn monitor");
        let mut err = BufReader::new(child.stderr.take().unwrap());
        let mut first = String::new();
        err.read_line(&mut first).unwrap();
        assert_eq!(first, "Watching the vmclone service; Ctrl-C stops.\n");
        let out = child.stdout.take().unwrap();
        let (tx, lines) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        Monitor { child, lines }
    }

    pub fn next(&self) -> String {
        self.lines
            .recv_timeout(Duration::from_secs(20))
            .expect("a monitor line")
    }

    /// Ctrl-C ends it with status 0.
    pub fn interrupt(mut self) {
        let pid = self.child.id().to_string();
        let sent = Command::new("kill").args(["-INT", &pid]).status().unwrap();
        assert!(sent.success());
        let status = self.child.wait().unwrap();
        assert_eq!(status.code(), Some(0), "monitor after SIGINT");
    }
}

impl Drop for Monitor {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}
