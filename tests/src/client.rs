//! Clients of a bus: `busctl` and `gdbus`, run as this process or as a test user,
//! and readings of their replies.

use std::ffi::OsStr;
use std::process::{Command, Output};
use std::time::Duration;

use crate::process::{output, stderr_of, stdout_ok, wait_until};

pub const BUS_NAME: &str = "org.vmclone.Manager";
pub const OBJECT_PATH: &str = "/org/vmclone/Manager";
pub const INTERFACE: &str = "org.vmclone.Manager";
pub const JOB_INTERFACE: &str = "org.vmclone.Job";

/// Which bus a client connects to.
#[derive(Clone, Debug)]
pub enum BusAddress {
    /// A private `dbus-daemon` at this address.
    Private(String),
    /// The running system bus.
    System,
}

/// Who runs the client programs: this process, or a user switched to with `setpriv`.
#[derive(Clone, Copy, Debug)]
struct Identity {
    uid: u32,
    gid: u32,
}

/// `busctl` and `gdbus` on one bus, as one identity.
#[derive(Clone, Debug)]
pub struct Client {
    bus: BusAddress,
    user: Option<Identity>,
}

impl Client {
    pub fn new(bus: BusAddress) -> Client {
        Client { bus, user: None }
    }

    /// This process (root, in the system tests) on the system bus.
    pub fn system() -> Client {
        Client::new(BusAddress::System)
    }

    /// The same bus, as the user `uid` with their groups.
    pub fn as_user(&self, uid: u32, gid: u32) -> Client {
        Client {
            bus: self.bus.clone(),
            user: Some(Identity { uid, gid }),
        }
    }

    /// `program`, run as this client's user.
    pub fn command(&self, program: &str) -> Command {
        let Some(Identity { uid, gid }) = self.user else {
            return Command::new(program);
        };
        let mut cmd = Command::new("setpriv");
        cmd.arg(format!("--reuid={uid}"))
            .arg(format!("--regid={gid}"))
            .arg("--init-groups")
            .arg("--")
            .arg(program)
            .env("HOME", "/")
            .env_remove("DBUS_SESSION_BUS_ADDRESS");
        cmd
    }

    /// `busctl --address=…|--system`, arguments to follow.
    pub fn busctl_command(&self) -> Command {
        let mut cmd = self.command("busctl");
        match &self.bus {
            BusAddress::Private(address) => cmd.arg(format!("--address={address}")),
            BusAddress::System => cmd.arg("--system"),
        };
        cmd
    }

    /// `gdbus SUBCOMMAND --address …|--system`, arguments to follow.
    pub fn gdbus_command(&self, subcommand: &str) -> Command {
        let mut cmd = self.command("gdbus");
        cmd.arg(subcommand);
        match &self.bus {
            BusAddress::Private(address) => cmd.args(["--address", address]),
            BusAddress::System => cmd.arg("--system"),
        };
        cmd
    }

    /// `busctl ARGS…`
    pub fn busctl<I, S>(&self, args: I) -> Output
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        output(self.busctl_command().args(args))
    }

    /// `busctl call org.vmclone.Manager /org/vmclone/Manager org.vmclone.Manager METHOD SIG ARGS…`
    pub fn call(&self, method: &str, signature: &str, args: &[&str]) -> Output {
        self.busctl(call_args(method, signature, args))
    }

    /// `gdbus call` on the manager: `method` is the bare method name and
    /// `args` are GVariant texts, e.g. `"{'storage': <'linked'>}"`.
    pub fn gdbus_call(&self, method: &str, args: &[&str]) -> Output {
        output(
            self.gdbus_command("call")
                .args(["--dest", BUS_NAME, "--object-path", OBJECT_PATH])
                .args(["--timeout", "600", "--method"])
                .arg(format!("{INTERFACE}.{method}"))
                .args(args),
        )
    }

    /// A property as busctl prints it, e.g. `s "succeeded"`.
    pub fn property(&self, path: &str, interface: &str, name: &str) -> String {
        stdout_ok(&self.busctl(["get-property", BUS_NAME, path, interface, name]))
            .trim()
            .to_string()
    }

    /// A property of the job at `path`, as busctl prints it.
    pub fn job_property(&self, path: &str, name: &str) -> String {
        self.property(path, JOB_INTERFACE, name)
    }

    /// Waits (at most `timeout`) until the job at `path` has ended; its last state
    /// (`succeeded`, `failed`, `cancelled`).
    pub fn wait_for_job_end(&self, path: &str, timeout: Duration) -> String {
        let mut state = String::new();
        wait_until(timeout, &format!("the job {path} to end"), || {
            state = self.job_property(path, "State");
            !(state.contains("\"running\"") || state.contains("\"queued\""))
        });
        state
            .strip_prefix("s \"")
            .and_then(|s| s.strip_suffix('"'))
            .unwrap_or(&state)
            .to_string()
    }

    /// `METHOD ARGS` of the bus itself (`org.freedesktop.DBus`).
    pub fn bus_driver_call(&self, method: &str, args: &[&str]) -> Output {
        self.busctl(
            [
                "call",
                "org.freedesktop.DBus",
                "/org/freedesktop/DBus",
                "org.freedesktop.DBus",
                method,
            ]
            .iter()
            .chain(args),
        )
    }

    /// Whether `name` has an owner on this bus.
    pub fn has_owner(&self, name: &str) -> bool {
        self.bus_driver_call("NameHasOwner", &["s", name]).stdout == b"b true\n"
    }

    /// The pid of the process that owns `name`.
    pub fn owner_pid(&self, name: &str) -> i32 {
        let reply = stdout_ok(&self.bus_driver_call("GetConnectionUnixProcessID", &["s", name]));
        reply
            .trim()
            .strip_prefix("u ")
            .and_then(|pid| pid.parse().ok())
            .unwrap_or_else(|| panic!("not a pid reply: {reply}"))
    }

    /// `ListVms`, sorted by name.
    pub fn list_vms(&self) -> Vec<Vm> {
        self.try_list_vms().unwrap_or_else(|e| panic!("{e}"))
    }

    /// `ListVms`, sorted by name, or Err with busctl's complaint when the call fails.
    pub fn try_list_vms(&self) -> Result<Vec<Vm>, String> {
        let mut vms = self.call_vms("ListVms", "", &[])?;
        vms.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(vms)
    }

    /// `GetVm`.
    pub fn get_vm(&self, id: &str) -> Vm {
        let vms = self
            .call_vms("GetVm", "s", &[id])
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(vms.len(), 1, "GetVm gave {vms:?}");
        vms.into_iter().next().expect("one VM")
    }

    /// The reply of `method` (one out argument) as plain JSON: busctl's typed
    /// JSON with every `{"type": …, "data": …}` variant replaced by its value,
    /// nested dictionaries too. An independent reading of what a client shows.
    pub fn call_json(&self, method: &str, signature: &str, args: &[&str]) -> serde_json::Value {
        self.try_call_json(method, signature, args)
            .unwrap_or_else(|e| panic!("{method} failed: {e}"))
    }

    /// [`Client::call_json`], or Err with busctl's complaint when the call fails.
    pub fn try_call_json(
        &self,
        method: &str,
        signature: &str,
        args: &[&str],
    ) -> Result<serde_json::Value, String> {
        let mut argv = vec!["--json=short"];
        argv.extend(call_args(method, signature, args));
        let out = self.busctl(argv);
        if !out.status.success() {
            return Err(stderr_of(&out));
        }
        let v: serde_json::Value =
            serde_json::from_slice(&out.stdout).map_err(|e| format!("busctl JSON: {e}"))?;
        Ok(plain_json(&v["data"][0]))
    }

    fn call_vms(&self, method: &str, signature: &str, args: &[&str]) -> Result<Vec<Vm>, String> {
        let mut argv = vec!["--json=short"];
        argv.extend(call_args(method, signature, args));
        let out = self.busctl(argv);
        if !out.status.success() {
            return Err(format!(
                "{method} failed ({}): {}",
                out.status,
                String::from_utf8_lossy(&out.stderr)
            ));
        }
        Ok(parse_vm_dicts(&String::from_utf8_lossy(&out.stdout)))
    }
}

/// busctl's arguments for `call` on the manager: `call BUS OBJECT INTERFACE METHOD [SIG ARGS…]`.
pub fn call_args<'a>(method: &'a str, signature: &'a str, args: &[&'a str]) -> Vec<&'a str> {
    let mut argv = vec!["call", BUS_NAME, OBJECT_PATH, INTERFACE, method];
    if !signature.is_empty() {
        argv.push(signature);
    }
    argv.extend_from_slice(args);
    argv
}

/// The string of busctl's plain reply `s "…"`.
pub fn reply_string(out: &Output) -> String {
    reply_of_type(out, "s")
}

/// The object path of busctl's plain reply `o "…"`.
pub fn reply_object_path(out: &Output) -> String {
    reply_of_type(out, "o")
}

fn reply_of_type(out: &Output, ty: &str) -> String {
    let text = stdout_ok(out);
    text.trim()
        .strip_prefix(&format!("{ty} \""))
        .and_then(|t| t.strip_suffix('"'))
        .unwrap_or_else(|| panic!("not a {ty} reply: {text}"))
        .to_string()
}

/// The D-Bus error name and message of a failed `gdbus call`
/// (busctl prints only the message, so error names are checked with gdbus).
pub fn gdbus_error(out: &Output) -> (String, String) {
    let err = stderr_of(out);
    let rest = err
        .split("GDBus.Error:")
        .nth(1)
        .unwrap_or_else(|| panic!("not a D-Bus error: {err}"));
    let (name, message) = rest.split_once(": ").unwrap_or((rest, ""));
    (name.trim().to_string(), message.trim().to_string())
}

/// busctl's typed JSON without its variant wrappers.
fn plain_json(v: &serde_json::Value) -> serde_json::Value {
    use serde_json::Value as J;
    match v {
        J::Object(o) if o.len() == 2 && o.contains_key("type") && o.contains_key("data") => {
            plain_json(&o["data"])
        }
        J::Object(o) => J::Object(o.iter().map(|(k, v)| (k.clone(), plain_json(v))).collect()),
        J::Array(a) => J::Array(a.iter().map(plain_json).collect()),
        other => other.clone(),
    }
}

/// One VM as `ListVms`/`GetVm` report it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Vm {
    pub id: String,
    pub name: String,
    pub state: String,
    pub vcpus: u32,
    pub memory_mib: u64,
    pub disks: u32,
    pub interfaces: u32,
    pub is_template: bool,
}

/// Reads the VM dictionaries out of busctl's JSON output
/// (`{"type":"aa{sv}","data":[[{key:{"type":..,"data":..}}]]}`); every key must be there.
fn parse_vm_dicts(json: &str) -> Vec<Vm> {
    let v: serde_json::Value = serde_json::from_str(json).expect("busctl JSON");
    let data = &v["data"][0];
    let dicts: Vec<&serde_json::Value> = match data {
        serde_json::Value::Array(a) => a.iter().collect(),
        obj @ serde_json::Value::Object(_) => vec![obj],
        other => panic!("unexpected ListVms/GetVm JSON: {other}"),
    };
    dicts
        .into_iter()
        .map(|d| {
            let field = |k: &str, ty: &str| {
                let entry = &d[k];
                assert_eq!(entry["type"], ty, "{k} in {d}");
                &entry["data"]
            };
            let s = |k: &str| {
                field(k, "s")
                    .as_str()
                    .unwrap_or_else(|| panic!("{k} in {d}"))
                    .to_string()
            };
            let u = |k: &str| -> u32 {
                let n = field(k, "u").as_u64();
                n.and_then(|n| n.try_into().ok())
                    .unwrap_or_else(|| panic!("{k} in {d}"))
            };
            Vm {
                id: s("id"),
                name: s("name"),
                state: s("state"),
                vcpus: u("vcpus"),
                memory_mib: field("memory-mib", "t")
                    .as_u64()
                    .unwrap_or_else(|| panic!("memory-mib in {d}")),
                disks: u("disks"),
                interfaces: u("interfaces"),
                is_template: field("is-template", "b")
                    .as_bool()
                    .unwrap_or_else(|| panic!("is-template in {d}")),
            }
        })
        .collect()
}

/// The values of `keys` in each dictionary of the JSON array `list`, one array a
/// dictionary: a table of what a test compares.
pub fn pick(list: &serde_json::Value, keys: &[&str]) -> Vec<serde_json::Value> {
    list.as_array()
        .unwrap_or_else(|| panic!("not an array: {list}"))
        .iter()
        .map(|d| keys.iter().map(|k| d[*k].clone()).collect())
        .collect()
}
