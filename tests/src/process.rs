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

/// A command for a daemon a test starts again (polkitd, libvirtd): it inherits
/// no descriptor beyond stdin, stdout and stderr, so it never goes on holding
/// what the test run holds, such as the lock the root tests run under
/// (`flock /tmp/vmclone-root-tests.lock cargo test …`).
pub fn daemon_command(program: &str) -> Command {
    use std::os::unix::process::CommandExt;
    let mut cmd = Command::new(program);
    // SAFETY: close_range is async-signal-safe and touches only this child.
    unsafe {
        cmd.pre_exec(|| match libc::close_range(3, libc::c_uint::MAX, 0) {
            0 => Ok(()),
            _ => Err(std::io::Error::last_os_error()),
        });
    }
    cmd
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
