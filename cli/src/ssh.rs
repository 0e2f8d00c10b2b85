//! `--host`: the service on another machine, reached the way `busctl --host`
//! reaches it: `ssh -xT [-p PORT] -- [USER@]HOST systemd-stdio-bridge`, whose
//! stdin and stdout carry the remote system bus. zbus runs the command itself
//! (a D-Bus `unixexec:` transport, as sd-bus does); ssh asks for passwords and
//! host keys on the terminal, and its own complaints go to our stderr.

use std::ffi::OsString;
use std::fmt;

use gettextrs::gettext;
use zbus::address::transport::{Transport, Unixexec};
use zbus::Address;

/// The environment variable that replaces the `ssh` command (words split at
/// spaces), like systemd's `SYSTEMD_SSH` or git's `GIT_SSH_COMMAND`.
pub const SSH_COMMAND_VAR: &str = "VMCLONECTL_SSH";

/// `[USER@]HOST[:PORT]` as given to `--host` (an IPv6 address with a port
/// goes in brackets: `[::1]:2222`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Remote {
    /// What ssh logs in to: `USER@HOST` or `HOST`.
    destination: String,
    port: Option<u16>,
    /// As the user wrote it, for messages.
    text: String,
}

impl Remote {
    /// Parses `--host`'s value; the error is a sentence for clap.
    pub fn parse(text: &str) -> Result<Remote, String> {
        let invalid = || gettext("“{host}” is not [USER@]HOST[:PORT]").replace("{host}", text);
        let (user, rest) = match text.rsplit_once('@') {
            Some((user, rest)) => (Some(user), rest),
            None => (None, text),
        };
        let (host, port) = if let Some(bracketed) = rest.strip_prefix('[') {
            let (host, after) = bracketed.split_once(']').ok_or_else(invalid)?;
            match after {
                "" => (host, None),
                _ => (host, Some(after.strip_prefix(':').ok_or_else(invalid)?)),
            }
        } else {
            match rest.split_once(':') {
                // More than one colon: an IPv6 address without a port.
                Some((host, port)) if !port.contains(':') => (host, Some(port)),
                _ => (rest, None),
            }
        };
        let port = match port {
            None => None,
            Some(p) => Some(
                p.parse::<u16>()
                    .ok()
                    .filter(|&p| p > 0)
                    .ok_or_else(invalid)?,
            ),
        };
        // ssh would read a leading '-' as an option; whitespace and control
        // characters are never part of a host or user name.
        let bad = |s: &str| {
            s.is_empty()
                || s.starts_with('-')
                || s.chars().any(|c| c.is_whitespace() || c.is_control())
        };
        if bad(host) || user.is_some_and(bad) {
            return Err(invalid());
        }
        let destination = match user {
            Some(user) => format!("{user}@{host}"),
            None => host.to_string(),
        };
        Ok(Remote {
            destination,
            port,
            text: text.to_string(),
        })
    }

    /// The command line that connects: the ssh command (`ssh`, or the words
    /// of `ssh_command`), then its arguments.
    pub fn command_line(&self, ssh_command: Option<&str>) -> (String, Vec<String>) {
        let mut words = ssh_command
            .map(|c| c.split_whitespace().map(str::to_string).collect::<Vec<_>>())
            .filter(|w| !w.is_empty())
            .unwrap_or_else(|| vec!["ssh".to_string()]);
        let program = words.remove(0);
        let mut args = words;
        args.push("-xT".into());
        if let Some(port) = self.port {
            args.extend(["-p".into(), port.to_string()]);
        }
        args.extend([
            "--".into(),
            self.destination.clone(),
            "systemd-stdio-bridge".into(),
        ]);
        (program, args)
    }

    /// The D-Bus address of the remote system bus: a `unixexec:` transport
    /// running [`Remote::command_line`] with `$VMCLONECTL_SSH`.
    pub fn address(&self) -> Address {
        let ssh = std::env::var(SSH_COMMAND_VAR).ok();
        let (program, args) = self.command_line(ssh.as_deref());
        Address::from(Transport::Unixexec(Unixexec::new(
            program.into(),
            None,
            args.into_iter().map(OsString::from).collect(),
        )))
    }
}

impl fmt::Display for Remote {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parsed(text: &str) -> (String, Option<u16>) {
        let r = Remote::parse(text).unwrap_or_else(|e| panic!("{text}: {e}"));
        (r.destination, r.port)
    }

    #[test]
    fn hosts_users_and_ports_as_busctl_takes_them() {
        assert_eq!(parsed("kvm1"), ("kvm1".into(), None));
        assert_eq!(parsed("root@kvm1"), ("root@kvm1".into(), None));
        assert_eq!(
            parsed("root@127.0.0.1:2222"),
            ("root@127.0.0.1".into(), Some(2222))
        );
        assert_eq!(parsed("[::1]:2222"), ("::1".into(), Some(2222)));
        assert_eq!(parsed("admin@[fe80::1]"), ("admin@fe80::1".into(), None));
        assert_eq!(parsed("fe80::1"), ("fe80::1".into(), None));
        for bad in [
            "",
            "@kvm1",
            "root@",
            "-oProxyCommand=evil",
            "root@-oProxyCommand=evil",
            "kvm1:",
            "kvm1:0",
            "kvm1:99999",
            "kvm1:ssh",
            "[::1",
            "[::1]2222",
            "kvm 1",
        ] {
            assert!(Remote::parse(bad).is_err(), "{bad:?} is refused");
        }
    }

    #[test]
    fn the_command_is_the_one_busctl_runs() {
        let r = Remote::parse("root@127.0.0.1:2222").unwrap();
        let (program, args) = r.command_line(None);
        assert_eq!(program, "ssh");
        assert_eq!(
            args,
            [
                "-xT",
                "-p",
                "2222",
                "--",
                "root@127.0.0.1",
                "systemd-stdio-bridge"
            ]
        );
        let (program, args) = Remote::parse("kvm1")
            .unwrap()
            .command_line(Some("  /opt/ssh -F /etc/lab.conf "));
        assert_eq!(program, "/opt/ssh");
        assert_eq!(
            args,
            [
                "-F",
                "/etc/lab.conf",
                "-xT",
                "--",
                "kvm1",
                "systemd-stdio-bridge"
            ]
        );
        assert_eq!(
            Remote::parse("kvm1").unwrap().command_line(Some(" ")).0,
            "ssh"
        );
    }

    #[test]
    fn the_address_is_a_unixexec_transport_with_that_command() {
        let r = Remote::parse("root@kvm1").unwrap();
        let Transport::Unixexec(exec) = r.address().transport().clone() else {
            panic!("not unixexec: {}", r.address());
        };
        // The test process's environment may name another ssh.
        let (program, args) = r.command_line(std::env::var(SSH_COMMAND_VAR).ok().as_deref());
        assert_eq!(exec.path().to_str(), Some(program.as_str()));
        let got: Vec<&str> = exec.args().iter().map(|a| a.to_str().unwrap()).collect();
        assert_eq!(got, args);
    }
}
