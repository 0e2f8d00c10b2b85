//! The real `vmclonectl` binary against the real service on a private bus.

#![allow(dead_code)] // each test file uses its own part

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc::Receiver;
use std::time::Duration;

use vmclone_tests::{demo_host_uri, Client, PrivateBus, Service};

pub const CTL: &str = env!("CARGO_BIN_EXE_vmclonectl");

/// A private bus with the service on the demo host (libvirt's test driver).
pub struct Demo {
    pub service: Service,
    pub bus: PrivateBus,
}

impl Demo {
    pub fn start() -> Demo {
        let bus = PrivateBus::start();
        let service = Service::start(&bus, &demo_host_uri(), &[]);
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
