//! A command on a pseudo-terminal of its own (util-linux `script`): what a person at a
//! terminal sees (colour, progress bars, password prompts) and what they type (Ctrl-C, a
//! password).

use std::io::{Read, Write};
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A running command on a 120×40 pseudo-terminal; killed on drop if still running.
pub struct Terminal {
    child: Child,
    keyboard: ChildStdin,
    screen: Arc<Mutex<Vec<u8>>>,
}

impl Terminal {
    /// Runs `argv` on a new terminal, with `script` started by `script` (a
    /// `Command::new("script")`, or one that runs it as a test user).
    pub fn start(mut script: Command, argv: &[&str]) -> Terminal {
        let line: Vec<String> = argv.iter().map(|a| shell_quote(a)).collect();
        let mut child = script
            .args(["-q", "-f", "-e", "-c"])
            .arg(format!("stty cols 120 rows 40; exec {}", line.join(" ")))
            .arg("/dev/null")
            .env("TERM", "xterm")
            .env("SHELL", "/bin/sh")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("script is installed (package bsdutils)");
        let keyboard = child.stdin.take().unwrap();
        let mut out = child.stdout.take().unwrap();
        let screen = Arc::new(Mutex::new(Vec::new()));
        let sink = screen.clone();
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n @ 1..) = out.read(&mut buf) {
                sink.lock().unwrap().extend_from_slice(&buf[..n]);
            }
        });
        Terminal {
            child,
            keyboard,
            screen,
        }
    }

    /// Everything the terminal showed so far, escape sequences included.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.screen.lock().unwrap()).into_owned()
    }

    /// Types `keys` (`"\x03"` is Ctrl-C, `"\n"` Enter).
    pub fn type_keys(&mut self, keys: &str) {
        self.keyboard.write_all(keys.as_bytes()).unwrap();
        self.keyboard.flush().unwrap();
    }

    /// Waits until the screen shows `needle`; panics with the screen after `within`
    /// or when the command ends first.
    pub fn wait_for(&mut self, needle: &str, within: Duration) {
        let deadline = Instant::now() + within;
        while !self.text().contains(needle) {
            if let Some(status) = self.child.try_wait().unwrap() {
                panic!(
                    "ended ({status}) without showing {needle:?}:\n{}",
                    self.text()
                );
            }
            assert!(
                Instant::now() < deadline,
                "{needle:?} not shown within {within:?}:\n{}",
                self.text()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Waits until the command ends: its exit status and the whole screen.
    pub fn wait(mut self, within: Duration) -> (ExitStatus, String) {
        let deadline = Instant::now() + within;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                // Let the reader take the last bytes.
                std::thread::sleep(Duration::from_millis(100));
                return (status, self.text());
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

impl Drop for Terminal {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// `arg` as one word for sh.
pub fn shell_quote(arg: &str) -> String {
    format!("'{}'", arg.replace('\'', r"'\''"))
}
