//! Running programs: outputs checked, children reaped, waits bounded.

use std::ffi::OsStr;
use std::process::{Child, Command, Output};
use std::time::{Duration, Instant};

/// Kills and reaps a child process on drop.
pub struct ChildGuard(pub Child);

impl Drop for ChildGuard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The output of `cmd`, whether it succeeded or not; panics when it cannot start.
pub fn output(cmd: &mut Command) -> Output {
    cmd.output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?} (is it installed?): {e}"))
}

/// The stdout of `cmd`, or Err saying what it printed when it cannot start or fails.
pub fn try_run_command(cmd: &mut Command) -> Result<String, String> {
    let out = cmd
        .output()
        .map_err(|e| format!("cannot run {cmd:?} (is it installed?): {e}"))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(format!(
            "{cmd:?} failed ({}): {}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}

/// The stdout of `cmd`, which must succeed.
pub fn run_command(cmd: &mut Command) -> String {
    try_run_command(cmd).unwrap_or_else(|e| panic!("{e}"))
}

/// `program ARGS…`: its stdout, or Err with what it printed.
pub fn try_run<S: AsRef<OsStr>>(program: &str, args: &[S]) -> Result<String, String> {
    try_run_command(Command::new(program).args(args))
}

/// `program ARGS…`, which must succeed; its stdout.
pub fn run<S: AsRef<OsStr>>(program: &str, args: &[S]) -> String {
    try_run(program, args).unwrap_or_else(|e| panic!("{e}"))
}

/// stdout of a successful command, or a panic with its stderr.
pub fn stdout_ok(out: &Output) -> String {
    assert!(
        out.status.success(),
        "command failed ({}): {}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// stderr of a command that must have failed.
pub fn stderr_of(out: &Output) -> String {
    assert!(
        !out.status.success(),
        "expected the call to fail, it succeeded: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Polls `cond` every 20 ms until it holds; panics naming `what` after `timeout`.
pub fn wait_until(timeout: Duration, what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A command starting the shell command line `script` as a daemon of its own: in a
/// new session, holding none of this process's descriptors beyond 0-2. Otherwise the
/// daemon keeps the root-test lock that `flock` hands down for as long as it runs,
/// and every later root test waits for it.
pub fn daemon(script: &str) -> Command {
    let mut cmd = Command::new("setsid");
    cmd.args(["-f", "bash", "-c"]).arg(format!(
        "for fd in /proc/$$/fd/*; do fd=${{fd##*/}}; [ \"$fd\" -gt 2 ] && eval \"exec $fd>&-\"; done; exec {script}"
    ));
    cmd
}

/// Sends SIGTERM to `pid`.
pub fn terminate(pid: i32) {
    // SAFETY: kill has no memory-safety preconditions.
    unsafe {
        libc::kill(pid, libc::SIGTERM);
    }
}

pub fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

/// Fails, saying why, unless this runs as root.
pub fn require_root(why: &str) {
    assert!(
        is_root(),
        "this test needs root ({why}): run it as root, e.g. `sudo cargo test … -- --include-ignored`"
    );
}
