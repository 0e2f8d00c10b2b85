//! Signals on a bus, read by `gdbus monitor` in the background.

use std::io::BufRead;
use std::process::Stdio;
use std::sync::mpsc::Receiver;
use std::time::{Duration, Instant};

use crate::client::{Client, BUS_NAME};
use crate::process::ChildGuard;

/// What `org.vmclone.Manager` emits: each line is one signal as gdbus prints it.
pub struct SignalWatch {
    _child: ChildGuard,
    /// Each line with the moment it was read.
    lines: Receiver<(Instant, String)>,
}

impl SignalWatch {
    /// Watches everything `org.vmclone.Manager` emits. Returns once gdbus is subscribed.
    pub fn start(bus: &Client) -> SignalWatch {
        let mut child = bus
            .gdbus_command("monitor")
            .args(["--dest", BUS_NAME])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("gdbus is installed (package libglib2.0-bin)");
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stdout)
                .lines()
                .map_while(Result::ok)
            {
                if tx.send((Instant::now(), line)).is_err() {
                    break;
                }
            }
        });
        // gdbus prints "Monitoring signals from all objects owned by …" once subscribed.
        let (_, first) = rx
            .recv_timeout(Duration::from_secs(10))
            .expect("gdbus monitor started");
        assert!(
            first.contains("Monitoring"),
            "unexpected gdbus output: {first}"
        );
        SignalWatch {
            _child: ChildGuard(child),
            lines: rx,
        }
    }

    /// The next line containing `needle`, waiting up to `timeout`.
    pub fn wait_for(&self, needle: &str, timeout: Duration) -> String {
        let mut lines = self.collect_until_timed(needle, timeout);
        lines.pop().expect("the matching line").1
    }

    /// Every line up to and including the first one containing `needle`.
    pub fn collect_until(&self, needle: &str, timeout: Duration) -> Vec<String> {
        self.collect_until_timed(needle, timeout)
            .into_iter()
            .map(|(_, l)| l)
            .collect()
    }

    /// As [`SignalWatch::collect_until`], with the moment each line was read.
    pub fn collect_until_timed(&self, needle: &str, timeout: Duration) -> Vec<(Instant, String)> {
        let deadline = Instant::now() + timeout;
        let mut out = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok((at, line)) => {
                    let done = line.contains(needle);
                    out.push((at, line));
                    if done {
                        return out;
                    }
                }
                Err(_) => {
                    let seen: Vec<&String> = out.iter().map(|(_, l)| l).collect();
                    panic!("no signal containing {needle:?} within {timeout:?}; saw {seen:?}")
                }
            }
        }
    }

    /// Waits until the job at `path` reports that bytes have moved.
    pub fn wait_for_bytes(&self, path: &str) {
        let needle = format!("{path}: org.freedesktop.DBus.Properties.PropertiesChanged");
        loop {
            let line = self.wait_for(&needle, Duration::from_secs(60));
            if bytes_done_in(&line).is_some_and(|b| b > 0) {
                return;
            }
        }
    }

    /// Every line seen so far (without waiting).
    pub fn drain(&self) -> Vec<String> {
        self.lines.try_iter().map(|(_, l)| l).collect()
    }
}

/// The BytesDone value in a PropertiesChanged line of a job.
pub fn bytes_done_in(line: &str) -> Option<u64> {
    let at = line.find("'BytesDone': <uint64 ")? + "'BytesDone': <uint64 ".len();
    line[at..].split('>').next()?.parse().ok()
}
