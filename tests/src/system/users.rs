//! Users and groups made for a test (no home, no login), deleted afterwards.

use std::fs;
use std::ops::Deref;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::client::{Client, BUS_NAME, INTERFACE, OBJECT_PATH};
use crate::process::{output, run, terminate};

pub struct TestGroup {
    pub name: String,
}

impl TestGroup {
    pub fn create(name: &str) -> TestGroup {
        let _ = Command::new("groupdel").arg(name).output(); // left over from a killed run
        run("groupadd", &[name]);
        TestGroup { name: name.into() }
    }
}

impl Drop for TestGroup {
    fn drop(&mut self) {
        let _ = Command::new("groupdel").arg(&self.name).output();
    }
}

/// A normal user (no home, no login shell), deleted afterwards; a [`Client`] of the
/// system bus as that user (`user.call(…)`, `user.gdbus_call(…)`).
pub struct TestUser {
    pub name: String,
    client: Client,
}

impl TestUser {
    pub fn create(name: &str, group: Option<&TestGroup>) -> TestUser {
        let _ = Command::new("userdel").arg(name).output(); // left over from a killed run
        let mut args = vec![
            "--no-create-home",
            "--user-group",
            "--shell",
            "/usr/sbin/nologin",
        ];
        if let Some(group) = group {
            args.extend(["--groups", group.name.as_str()]);
        }
        args.push(name);
        run("useradd", &args);
        let id = |flag: &str| -> u32 { run("id", &[flag, name]).trim().parse().unwrap() };
        TestUser {
            name: name.into(),
            client: Client::system().as_user(id("-u"), id("-g")),
        }
    }

    /// Sets the user's login password (for polkit's admin authentication).
    pub fn set_password(&self, password: &str) {
        let mut child = Command::new("chpasswd")
            .stdin(Stdio::piped())
            .spawn()
            .expect("chpasswd");
        std::io::Write::write_all(
            child.stdin.as_mut().unwrap(),
            format!("{}:{password}\n", self.name).as_bytes(),
        )
        .unwrap();
        drop(child.stdin.take());
        assert!(child.wait().unwrap().success(), "chpasswd failed");
    }

    /// `busctl call` on the manager (`method_and_args`: METHOD [SIGNATURE ARGS…]) as this
    /// user, with a polkit text agent (pkttyagent) registered for the busctl process, on a
    /// pseudo-terminal (`script`); types `password` when the agent asks. Returns whether
    /// the call succeeded and what the terminal showed.
    pub fn call_with_agent(
        &self,
        interactive: bool,
        method_and_args: &[&str],
        password: Option<&str>,
    ) -> (bool, String) {
        let call: Vec<String> = method_and_args.iter().map(|a| shell_quote(a)).collect();
        // `exec` keeps the shell's pid and start time, the process the agent serves.
        let script = format!(
            "d=$(mktemp -d) && mkfifo \"$d/ready\" || exit 90\n\
             pkttyagent --process $$ --notify-fd 3 3>\"$d/ready\" &\n\
             echo \"agent-pid=$!\"\n\
             cat \"$d/ready\" >/dev/null; rm -r \"$d\"\n\
             exec busctl --system --allow-interactive-authorization={} call {BUS_NAME} \
             {OBJECT_PATH} {INTERFACE} {}\n",
            if interactive { "yes" } else { "no" },
            call.join(" ")
        );
        let mut child = self
            .command("script")
            .args(["-q", "-e", "-c", &script, "/dev/null"])
            .env("SHELL", "/bin/sh")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("script is installed (package bsdutils)");
        let (tx, rx) = std::sync::mpsc::channel();
        let mut stdout = child.stdout.take().unwrap();
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n @ 1..) = std::io::Read::read(&mut stdout, &mut buf) {
                if tx.send(buf[..n].to_vec()).is_err() {
                    break;
                }
            }
        });
        let mut stdin = child.stdin.take();
        let mut transcript = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(60);
        let status = loop {
            while let Ok(chunk) = rx.try_recv() {
                transcript.extend_from_slice(&chunk);
            }
            if let (Some(pw), true) = (
                password,
                String::from_utf8_lossy(&transcript).contains("Password:"),
            ) {
                if let Some(mut input) = stdin.take() {
                    std::io::Write::write_all(&mut input, format!("{pw}\n").as_bytes()).unwrap();
                }
            }
            if let Some(status) = child.try_wait().unwrap() {
                break status;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "busctl with a polkit agent hung:\n{}",
                    String::from_utf8_lossy(&transcript)
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        drop(stdin);
        std::thread::sleep(Duration::from_millis(100));
        while let Ok(chunk) = rx.try_recv() {
            transcript.extend_from_slice(&chunk);
        }
        let transcript = String::from_utf8_lossy(&transcript).into_owned();
        // The agent outlives the call it served; stop it (by its pid) before userdel.
        if let Some(pid) = transcript
            .split("agent-pid=")
            .nth(1)
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|pid| pid.parse::<i32>().ok())
        {
            let comm = fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
            if comm.trim() == "pkttyagent" {
                terminate(pid);
            }
        }
        (status.success(), transcript)
    }

    /// What polkit answers for a process of this user (`pkcheck` on itself).
    pub fn polkit_allows(&self, action: &str) -> bool {
        output(self.command("sh").args([
            "-c",
            "exec pkcheck --action-id \"$0\" --process $$",
            action,
        ]))
        .status
        .success()
    }
}

impl Deref for TestUser {
    type Target = Client;

    fn deref(&self) -> &Client {
        &self.client
    }
}

impl Drop for TestUser {
    fn drop(&mut self) {
        let _ = Command::new("userdel").arg(&self.name).output();
    }
}

/// `arg` as one word for sh.
fn shell_quote(arg: &str) -> String {
    format!("'{}'", arg.replace('\'', r"'\''"))
}
