//! One libguestfs appliance, driven through `guestfish` reading commands on
//! its standard input: each command is followed by `echo MARKER` (a random
//! marker the guest cannot guess), so its output is what comes before the
//! marker, and guestfish ends at the first command that fails, with
//! libguestfs's message on stderr. The process and the appliance's QEMU run
//! in their own process group, which a cancel, a timeout or the end of the
//! session kills (and which dies with the service's thread).
//!
//! KVM or TCG: on some hosts the appliance's kernel hangs or aborts under
//! KVM. Unless `LIBGUESTFS_BACKEND_SETTINGS` already forces TCG, the first
//! launch tries KVM for [`KVM_LAUNCH`]; if it fails or takes longer (when
//! KVM works the appliance is up in a few seconds, and TCG takes about 20 s),
//! the appliance is started again under TCG, and the service keeps to TCG.

use std::ffi::OsString;
use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::GuestError;

/// How long a KVM launch may take before TCG is tried instead.
pub const KVM_LAUNCH: Duration = Duration::from_secs(20);
/// How long any one command may take (a TCG launch, `ssh-keygen -A`).
const COMMAND_LIMIT: Duration = Duration::from_secs(600);
/// How much of guestfish's stderr is kept for messages.
const STDERR_KEEP: usize = 16 << 10;

/// The Debian packages that bring guestfish and its appliance.
pub const PACKAGES: &str = "libguestfs-tools (guestfish, libguestfs0, supermin)";

/// Which accelerator the appliance uses, learnt at the first launch.
static ACCEL: AtomicU8 = AtomicU8::new(UNKNOWN);
const UNKNOWN: u8 = 0;
const KVM: u8 = 1;
const TCG: u8 = 2;

/// A disk for the appliance: a file and its format.
pub struct Drive {
    pub path: PathBuf,
    pub format: &'static str,
}

/// Finds `guestfish` on the service's `PATH`.
pub fn find() -> Result<PathBuf, GuestError> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|dir| dir.join("guestfish"))
        .find(|p| is_executable(p))
        .ok_or(GuestError::NotInstalled)
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// `LIBGUESTFS_BACKEND_SETTINGS` as the service was given it.
fn given_settings() -> String {
    std::env::var("LIBGUESTFS_BACKEND_SETTINGS").unwrap_or_default()
}

fn tcg_forced() -> bool {
    given_settings().split(':').any(|s| s == "force_tcg")
}

pub struct Fish {
    child: Child,
    stdin: ChildStdin,
    lines: Receiver<String>,
    stderr: Arc<Mutex<String>>,
    marker: String,
    cancelled: Arc<AtomicBool>,
}

impl Fish {
    /// Starts the appliance on `drives` (all writable), with its scratch
    /// files in `tmp`; KVM first unless TCG is known or forced (see above).
    pub fn launch(
        program: &Path,
        drives: &[Drive],
        tmp: &Path,
        cancelled: &Arc<AtomicBool>,
    ) -> Result<Fish, GuestError> {
        if ACCEL.load(Ordering::Relaxed) == UNKNOWN && tcg_forced() {
            ACCEL.store(TCG, Ordering::Relaxed);
        }
        if ACCEL.load(Ordering::Relaxed) != UNKNOWN {
            let tcg = ACCEL.load(Ordering::Relaxed) == TCG;
            let mut fish = Fish::spawn(program, drives, tmp, tcg, cancelled)?;
            fish.call("run", COMMAND_LIMIT)?;
            return Ok(fish);
        }
        let mut fish = Fish::spawn(program, drives, tmp, false, cancelled)?;
        match fish.call("run", KVM_LAUNCH) {
            Ok(_) => {
                tracing::info!("the libguestfs appliance runs under KVM");
                ACCEL.store(KVM, Ordering::Relaxed);
                return Ok(fish);
            }
            Err(GuestError::Cancelled) => return Err(GuestError::Cancelled),
            Err(e) => tracing::warn!(
                "the libguestfs appliance did not start under KVM ({e}); using TCG from now on"
            ),
        }
        drop(fish);
        ACCEL.store(TCG, Ordering::Relaxed);
        let mut fish = Fish::spawn(program, drives, tmp, true, cancelled)?;
        fish.call("run", COMMAND_LIMIT)?;
        Ok(fish)
    }

    fn spawn(
        program: &Path,
        drives: &[Drive],
        tmp: &Path,
        tcg: bool,
        cancelled: &Arc<AtomicBool>,
    ) -> Result<Fish, GuestError> {
        let mut cmd = Command::new(program);
        // No network in the appliance; libguestfs never prompts.
        cmd.arg("--no-progress-bars");
        for d in drives {
            cmd.arg(format!("--format={}", d.format))
                .arg("-a")
                .arg(&d.path);
        }
        let mut settings = given_settings();
        if tcg && !tcg_forced() {
            if !settings.is_empty() {
                settings.push(':');
            }
            settings.push_str("force_tcg");
        }
        // The direct backend: the appliance is never a libvirt domain that
        // would show up in ListVms. Scratch files (and guestfish's own) go to
        // the clone's private folder; the appliance cache stays shared.
        cmd.env("LIBGUESTFS_BACKEND", "direct")
            .env("LIBGUESTFS_BACKEND_SETTINGS", settings)
            .env("TMPDIR", tmp)
            .env(
                "LIBGUESTFS_CACHEDIR",
                std::env::var_os("LIBGUESTFS_CACHEDIR")
                    .unwrap_or_else(|| OsString::from("/var/tmp")),
            )
            .env_remove("LIBGUESTFS_DEBUG")
            .env_remove("LIBGUESTFS_TRACE")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0);
        // SAFETY: prctl is async-signal-safe; the child dies with the
        // service's thread that started it, so a killed service leaves no
        // appliance behind.
        unsafe {
            cmd.pre_exec(|| {
                match libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong) {
                    -1 => Err(std::io::Error::last_os_error()),
                    _ => Ok(()),
                }
            });
        }
        let mut child = cmd.spawn().map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => GuestError::NotInstalled,
            _ => GuestError::Tool(format!("cannot run {}: {e}", program.display())),
        })?;
        let stdin = child.stdin.take().expect("piped stdin");
        let stdout = child.stdout.take().expect("piped stdout");
        let mut stderr_pipe = child.stderr.take().expect("piped stderr");
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(l) = line else { break };
                if tx.send(l).is_err() {
                    break;
                }
            }
        });
        let stderr = Arc::new(Mutex::new(String::new()));
        let keep = stderr.clone();
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n @ 1..) = stderr_pipe.read(&mut buf) {
                let mut kept = keep.lock().expect("stderr lock");
                kept.push_str(&String::from_utf8_lossy(&buf[..n]));
                if kept.len() > STDERR_KEEP {
                    let cut = kept.len() - STDERR_KEEP;
                    let cut = (cut..kept.len())
                        .find(|&i| kept.is_char_boundary(i))
                        .unwrap_or(kept.len());
                    kept.drain(..cut);
                }
            }
        });
        Ok(Fish {
            child,
            stdin,
            lines,
            stderr,
            marker: format!("vmclone-{:032x}", rand::random::<u128>()),
            cancelled: cancelled.clone(),
        })
    }

    /// Runs one guestfish command line (made with [`quote`] for every
    /// argument) and returns its output lines.
    pub fn call(&mut self, line: &str, limit: Duration) -> Result<Vec<String>, GuestError> {
        debug_assert!(!line.contains('\n'));
        let sent =
            writeln!(self.stdin, "{line}\necho {}", self.marker).and_then(|()| self.stdin.flush());
        if sent.is_err() {
            return Err(self.failure(line));
        }
        let deadline = Instant::now() + limit;
        let mut out = Vec::new();
        loop {
            if self.cancelled.load(Ordering::Relaxed) {
                return Err(GuestError::Cancelled);
            }
            match self.lines.recv_timeout(Duration::from_millis(50)) {
                Ok(l) if l == self.marker => return Ok(out),
                Ok(l) => out.push(l),
                Err(RecvTimeoutError::Timeout) if Instant::now() < deadline => {}
                Err(RecvTimeoutError::Timeout) => {
                    return Err(GuestError::Tool(format!(
                        "guestfish did not finish “{}” within {} s",
                        command_name(line),
                        limit.as_secs()
                    )))
                }
                Err(RecvTimeoutError::Disconnected) => return Err(self.failure(line)),
            }
        }
    }

    /// Ends the session: unmounts, syncs and stops the appliance.
    pub fn finish(mut self) -> Result<(), GuestError> {
        self.call("umount-all", COMMAND_LIMIT)?;
        self.call("shutdown", COMMAND_LIMIT)?;
        let _ = writeln!(self.stdin, "exit");
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            match self.child.try_wait() {
                Ok(Some(s)) if s.success() => return Ok(()),
                Ok(Some(_)) => return Err(self.failure("exit")),
                Ok(None) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(20))
                }
                _ => return Err(GuestError::Tool("guestfish did not exit".into())),
            }
        }
    }

    /// What guestfish said when it stopped during `line`.
    fn failure(&mut self, line: &str) -> GuestError {
        // Its stderr closes with it: give the reader a moment to drain it.
        let deadline = Instant::now() + Duration::from_secs(2);
        while self.child.try_wait().ok().flatten().is_none() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        std::thread::sleep(Duration::from_millis(50));
        let stderr = self.stderr.lock().expect("stderr lock").clone();
        GuestError::Tool(message(&stderr, command_name(line)))
    }
}

impl Drop for Fish {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            // The whole group: guestfish, QEMU and libguestfs's helpers.
            let _ = rustix::process::kill_process_group(
                rustix::process::Pid::from_child(&self.child),
                rustix::process::Signal::KILL,
            );
        }
        let _ = self.child.wait();
    }
}

fn command_name(line: &str) -> &str {
    line.split_whitespace().next().unwrap_or(line)
}

/// The lines of guestfish's stderr that say what failed (its errors), or
/// its last lines.
fn message(stderr: &str, command: &str) -> String {
    let lines: Vec<&str> = stderr
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    let errors: Vec<&str> = lines
        .iter()
        .copied()
        .filter(|l| l.contains("error"))
        .collect();
    let chosen = match errors.is_empty() {
        true => &lines[lines.len().saturating_sub(3)..],
        false => &errors[errors.len().saturating_sub(3)..],
    };
    let text = chosen.join(" ");
    let text: String = text.chars().take(1000).collect();
    match text.is_empty() {
        true => format!("guestfish stopped during “{command}” without a message"),
        false => format!("guestfish stopped during “{command}”: {text}"),
    }
}

/// `arg` as one guestfish argument: single-quoted, which guestfish takes
/// literally. Text that cannot be quoted so (a `'`, a control character) is
/// refused: a guest's file name must never become a second command.
pub fn quote(arg: &str) -> Option<String> {
    match arg.chars().any(|c| c == '\'' || c.is_control()) {
        true => None,
        false => Some(format!("'{arg}'")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arguments_never_become_commands() {
        assert_eq!(
            quote("/etc/ssh/ssh_host_*").as_deref(),
            Some("'/etc/ssh/ssh_host_*'")
        );
        assert_eq!(quote("a \"b\" $c").as_deref(), Some("'a \"b\" $c'"));
        for bad in ["x'; !rm -rf /", "a\nb", "a\rb", "\u{7f}"] {
            assert_eq!(quote(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn messages_keep_the_errors() {
        let stderr = "*stdin*:6: libguestfs: error: is_file: you must call 'mount' first\n";
        assert_eq!(
            message(stderr, "is-file"),
            "guestfish stopped during “is-file”: *stdin*:6: libguestfs: error: is_file: you must call 'mount' first"
        );
        assert!(message("", "run").contains("without a message"));
        assert!(message("a\nb\nc\nd\n", "run").ends_with("b c d"));
    }
}
