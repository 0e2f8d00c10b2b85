//! polkit's text agent for this process, started the way `systemctl` and
//! `pkexec` start it: when no desktop agent is registered, polkit asks for
//! the password on the terminal instead of refusing.

use std::io::{IsTerminal, Read};
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::bus::BusTarget;

/// Present while systemd-logind runs (what polkitd's session lookup needs).
const LOGIND_SEATS: &str = "/run/systemd/seats";
/// The descriptor on which the agent says it is registered (by closing it).
const NOTIFY_FD: i32 = 3;
/// How long to wait for the agent to register before calling without it.
const REGISTER_TIMEOUT: Duration = Duration::from_secs(10);

/// A running `pkttyagent` serving this process; stopped on drop.
pub struct TtyAgent(Child);

impl TtyAgent {
    /// Starts `pkttyagent --process <our pid> --notify-fd 3 [--fallback]` and
    /// waits until it has registered, when polkit could ask here: stdin is a
    /// terminal, the bus is this machine's system bus (polkit on another
    /// machine cannot reach this terminal), and we are not root (polkit lets
    /// root do everything). `None` when not useful or when pkttyagent cannot
    /// start: then polkit answers as it would without an agent.
    ///
    /// When polkitd can find a session for us, `--fallback` leaves the
    /// session's (desktop) agent in charge. Without one (no logind, a
    /// container, a service) polkitd never uses a fallback agent (it looks for
    /// the session's agent first and gives up when there is no session), and
    /// no desktop agent could serve us anyway.
    pub fn start_if_useful(bus: &BusTarget) -> Option<TtyAgent> {
        // SAFETY: geteuid has no preconditions.
        let root = unsafe { libc::geteuid() } == 0;
        if *bus != BusTarget::System || root || !std::io::stdin().is_terminal() {
            return None;
        }
        TtyAgent::start().ok()
    }

    fn start() -> std::io::Result<TtyAgent> {
        let (mut ours, theirs) = UnixStream::pair()?;
        let theirs_fd = theirs.as_raw_fd();
        // The prompt goes to the terminal even when our stdout is a pipe.
        let stdout = if std::io::stdout().is_terminal() {
            Stdio::inherit()
        } else {
            std::fs::OpenOptions::new()
                .write(true)
                .open("/dev/tty")
                .map_or_else(|_| Stdio::inherit(), Stdio::from)
        };
        let mut cmd = Command::new("pkttyagent");
        cmd.arg("--process")
            .arg(std::process::id().to_string())
            .args(["--notify-fd", &NOTIFY_FD.to_string()])
            .stdin(Stdio::inherit())
            .stdout(stdout);
        let cgroups = std::fs::read_to_string("/proc/self/cgroup").unwrap_or_default();
        let graphical = ["WAYLAND_DISPLAY", "DISPLAY"]
            .iter()
            .any(|v| std::env::var_os(v).is_some_and(|d| !d.is_empty()));
        if has_session(&cgroups, Path::new(LOGIND_SEATS).exists(), graphical) {
            cmd.arg("--fallback");
        }
        // SAFETY: between fork and exec only async-signal-safe calls (dup2,
        // prctl) on descriptors that stay open until spawn returns.
        unsafe {
            cmd.pre_exec(move || {
                // dup2 leaves the new descriptor without close-on-exec; the
                // descriptor may already be the one.
                let kept = if theirs_fd == NOTIFY_FD {
                    libc::fcntl(NOTIFY_FD, libc::F_SETFD, 0)
                } else {
                    libc::dup2(theirs_fd, NOTIFY_FD)
                };
                if kept < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                // The agent goes when we go, however we end.
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM);
                Ok(())
            });
        }
        let child = cmd.spawn()?;
        drop(theirs);
        let agent = TtyAgent(child);
        // The agent closes its end once polkitd knows it (or when it exits).
        ours.set_read_timeout(Some(REGISTER_TIMEOUT))?;
        let _ = ours.read(&mut [0u8; 1]);
        Ok(agent)
    }
}

impl Drop for TtyAgent {
    fn drop(&mut self) {
        // SIGTERM, not SIGKILL: an agent in the middle of a prompt puts the
        // terminal's echo back.
        if let Ok(pid) = i32::try_from(self.0.id()) {
            // SAFETY: kill has no memory-safety preconditions; the pid is our
            // child, not yet reaped.
            unsafe {
                libc::kill(pid, libc::SIGTERM);
            }
        }
        let _ = self.0.wait();
    }
}

/// Whether polkitd finds a login session for a process with these cgroups
/// (`/proc/PID/cgroup`): logind runs and the process is in a session's scope
/// (`session-ID.scope`), or, on a desktop (whose terminals run outside the
/// session's scope), polkitd takes the user's graphical session.
fn has_session(cgroups: &str, logind_runs: bool, graphical: bool) -> bool {
    let in_scope = cgroups.lines().any(|line| {
        let path = line.splitn(3, ':').nth(2).unwrap_or_default();
        path.split('/')
            .any(|unit| unit.starts_with("session-") && unit.ends_with(".scope"))
    });
    logind_runs && (in_scope || graphical)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_session_is_a_session_scope_or_a_desktop_with_logind() {
        let v2 = "0::/user.slice/user-1000.slice/session-3.scope\n";
        let v1 = "12:cpu,cpuacct:/user.slice\n1:name=systemd:/user.slice/user-1000.slice/session-c2.scope\n";
        let terminal =
            "0::/user.slice/user-1000.slice/user@1000.service/app.slice/vte-spawn-1.scope\n";
        assert!(has_session(v2, true, false));
        assert!(has_session(v1, true, false));
        assert!(has_session(terminal, true, true));
        // A service, a terminal without a display, a container, no logind.
        for (cgroups, logind, graphical) in [
            ("0::/system.slice/cron.service\n", true, false),
            (terminal, true, false),
            ("0::/\n", true, false),
            ("", true, false),
            (v2, false, true),
        ] {
            assert!(!has_session(cgroups, logind, graphical), "{cgroups:?}");
        }
    }
}
