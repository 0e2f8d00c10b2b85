//! `clone`: one clone through `StartClone` and its job (no call waits for the
//! copy, so no D-Bus timeout applies), or `--copies N` through `CloneVms`.

use std::collections::HashMap;
use std::time::Duration;

use futures_lite::StreamExt;
use gettextrs::gettext;
use serde_json::json;
use zbus::zvariant::Value;
use zbus::Connection;

use crate::args::CloneArgs;
use crate::bus::{self, text, ManagerProxy};
use crate::error::CliError;
use crate::follow::{self, Interrupts, Outcome};
use crate::Output;

/// How many names past the first taken one are tried before giving up.
const NAME_ATTEMPTS: u32 = 1000;

/// The `a{sv}` options of the service for these arguments; `remote`: the
/// service runs on another machine (`--host`).
fn options(
    args: &CloneArgs,
    remote: bool,
) -> Result<HashMap<&'static str, Value<'static>>, CliError> {
    let mut o = HashMap::new();
    if args.linked {
        o.insert("storage", Value::from("linked"));
    }
    if args.live {
        o.insert("live", Value::Bool(true));
    }
    if args.reset_identity {
        o.insert("guest-identity", Value::from("reset"));
    }
    if let Some(n) = args.vcpus {
        o.insert("vcpus", Value::U32(n));
    }
    if let Some(mib) = args.memory_mib {
        o.insert("memory-mib", Value::U64(mib));
    }
    if let Some(dir) = &args.target_dir {
        // Our folder means nothing on another machine.
        if remote && dir.is_relative() {
            return Err(CliError::Usage(gettext(
                "With --host, give --target-dir as an absolute folder on that machine.",
            )));
        }
        // The service has another working folder: a relative folder means ours.
        let dir = std::path::absolute(dir).map_err(|e| CliError::Failed(e.to_string()))?;
        let dir = dir.to_str().ok_or_else(|| {
            CliError::Failed(gettext("The target folder's name is not valid UTF-8."))
        })?;
        o.insert("target-dir", Value::from(dir.to_string()));
    }
    if !args.macs.is_empty() {
        o.insert("mac-addresses", Value::new(args.macs.clone()));
    }
    if let Some(uuid) = &args.uuid {
        o.insert("uuid", Value::from(uuid.clone()));
    }
    Ok(o)
}

/// `{base}`, `{base}-2`, `{base}-3`, …
fn candidate(base: &str, n: u32) -> String {
    if n == 1 {
        base.to_string()
    } else {
        format!("{base}-{n}")
    }
}

/// The names to clone to: the given one(s), or the first free
/// `{source}-clone`, `{source}-clone-2`, … as `CheckName` says.
async fn names(manager: &ManagerProxy<'_>, args: &CloneArgs) -> Result<Vec<String>, CliError> {
    let count = args.copies.unwrap_or(1);
    if let Some(name) = &args.new_name {
        return Ok(match args.copies {
            None => vec![name.clone()],
            Some(n) => (1..=n).map(|i| format!("{name}-{i}")).collect(),
        });
    }
    // The source may be given by UUID: the names follow its name.
    let source = manager.get_vm(&args.source).await?;
    let base = format!("{}-clone", text(&source, "name"));
    let mut found = Vec::new();
    for n in 1..=count + NAME_ATTEMPTS {
        let name = candidate(&base, n);
        match manager.check_name(&name).await.map_err(CliError::from) {
            Ok(()) => found.push(name),
            Err(CliError::Service { name: e, .. }) if e == "org.vmclone.Error.NameExists" => {}
            Err(e) => return Err(e),
        }
        if found.len() == count as usize {
            return Ok(found);
        }
    }
    Err(CliError::Failed(
        gettext("No free name found for a clone of {source}; give one.")
            .replace("{source}", &args.source),
    ))
}

pub async fn run(
    conn: &Connection,
    out: &Output,
    args: &CloneArgs,
    remote: bool,
) -> Result<(), CliError> {
    // Caught before the first call: Ctrl-C must cancel, never kill us mid-job.
    let mut interrupts = Interrupts::catch()?;
    let manager = bus::manager(conn).await?;
    let options = options(args, remote)?;
    let names = names(&manager, args).await?;
    if args.copies.is_some() {
        return copies(conn, out, &manager, args, &names, options, &mut interrupts).await;
    }
    let name = &names[0];
    let path = manager.start_clone(&args.source, name, options).await?;
    if args.no_wait {
        if args.json {
            out.line(
                &json!({"job": path.as_str(), "source": args.source, "name": name}).to_string(),
            );
        } else {
            out.line(path.as_str());
        }
        return Ok(());
    }
    let title = format!("{} → {name}", args.source);
    match follow::follow(conn, out, &path, &title, &mut interrupts, false).await? {
        Outcome::Succeeded { cloned_vm_id } => {
            if args.json {
                let v = json!({"source": args.source, "name": name, "id": cloned_vm_id, "job": path.as_str()});
                out.line(&v.to_string());
            } else {
                out.line(
                    &gettext("Cloned {source} as {name} ({id}).")
                        .replace("{source}", &args.source)
                        .replace("{name}", name)
                        .replace("{id}", &cloned_vm_id),
                );
            }
            Ok(())
        }
        Outcome::Cancelled { bytes_done } => Err(CliError::Service {
            name: "org.vmclone.Error.Cancelled".into(),
            message: follow::cancelled_sentence(name, bytes_done),
        }),
        Outcome::Failed(e) => Err(e),
    }
}

/// One result of `CloneVms`: the UUID, or `org.vmclone.Error.Name: message`.
fn parse_result(result: &str) -> Result<String, CliError> {
    match result.split_once(": ") {
        Some((name, message)) if name.starts_with("org.") && !name.contains(' ') => {
            Err(CliError::Service {
                name: name.to_string(),
                message: message.to_string(),
            })
        }
        _ => Ok(result.to_string()),
    }
}

async fn copies(
    conn: &Connection,
    out: &Output,
    manager: &ManagerProxy<'_>,
    args: &CloneArgs,
    names: &[String],
    options: HashMap<&'static str, Value<'static>>,
    interrupts: &mut Interrupts,
) -> Result<(), CliError> {
    let refs: Vec<&str> = names.iter().map(String::as_str).collect();
    // Subscribed before the call, so no clone of ours goes unseen.
    let mut cloned = manager.receive_vm_cloned().await?;
    let spinner = out.spinner();
    let say = |done: usize| {
        if let Some(s) = &spinner {
            s.set_message(
                gettext("Cloning {source}: {done} of {count} made")
                    .replace("{source}", &args.source)
                    .replace("{done}", &done.to_string())
                    .replace("{count}", &names.len().to_string()),
            );
        }
    };
    say(0);
    let mut made = 0;
    let mut cancelling = false;
    let mut tick = tokio::time::interval(Duration::from_millis(200));
    let call = manager.clone_vms(&args.source, &refs, options);
    futures_lite::pin!(call);
    let results = loop {
        tokio::select! {
            r = &mut call => break r?,
            Some(signal) = cloned.next() => {
                if signal.args().is_ok_and(|a| refs.contains(a.new_name())) {
                    made += 1;
                    say(made);
                }
            }
            _ = interrupts.next() => {
                if cancelling {
                    if let Some(s) = &spinner { s.finish_and_clear(); }
                    return Err(CliError::Interrupted(gettext(
                        "Stopped waiting; the service goes on with the copies.",
                    )));
                }
                cancelling = true;
                if let Some(s) = &spinner { s.set_message(gettext("Cancelling, removing what was made")); }
            }
            _ = tick.tick(), if cancelling => {
                if let Err(e) = crate::jobs::cancel_named(conn, &refs).await {
                    // Too old to list jobs: say so once, then only wait.
                    cancelling = false;
                    out.note(&e.sentence());
                }
            }
        }
    };
    if let Some(s) = &spinner {
        s.finish_and_clear();
    }
    if results.len() != names.len() {
        return Err(CliError::BadReply(gettext(
            "The service sent a wrong number of results.",
        )));
    }
    let mut first_error: Option<CliError> = None;
    let mut rows = Vec::new();
    for (name, result) in names.iter().zip(&results) {
        match parse_result(result) {
            Ok(id) => {
                rows.push(json!({"name": name, "id": id}));
                if !args.json {
                    out.line(
                        &gettext("Cloned {source} as {name} ({id}).")
                            .replace("{source}", &args.source)
                            .replace("{name}", name)
                            .replace("{id}", &id),
                    );
                }
            }
            Err(e) => {
                if let CliError::Service {
                    name: error_name,
                    message,
                } = &e
                {
                    rows.push(json!({"name": name, "error-name": error_name, "error": message}));
                }
                if !args.json {
                    out.note(&format!("{name}: {}", e.sentence()));
                }
                first_error.get_or_insert(e);
            }
        }
    }
    if args.json {
        out.line(&serde_json::Value::Array(rows).to_string());
    }
    match first_error {
        // Each failure is printed above; the status is the first one's.
        Some(e) => Err(CliError::Reported(e.status())),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exit::ExitStatus;

    #[test]
    fn automatic_names_count_from_two() {
        assert_eq!(candidate("web01-clone", 1), "web01-clone");
        assert_eq!(candidate("web01-clone", 2), "web01-clone-2");
    }

    #[test]
    fn batch_results_are_ids_or_named_errors() {
        assert_eq!(
            parse_result("6f0e2d1c-5b4a-4c3d-9e8f-7a6b5c4d3e21")
                .ok()
                .as_deref(),
            Some("6f0e2d1c-5b4a-4c3d-9e8f-7a6b5c4d3e21")
        );
        let e = parse_result("org.vmclone.Error.Storage: No space left: /var/x.qcow2")
            .expect_err("an error");
        assert_eq!(e.status(), ExitStatus::Storage);
        assert_eq!(e.sentence(), "No space left: /var/x.qcow2");
    }

    #[test]
    fn options_use_the_service_keys_and_types() {
        let args = CloneArgs {
            linked: true,
            reset_identity: true,
            vcpus: Some(2),
            memory_mib: Some(1024),
            target_dir: Some("relative".into()),
            macs: vec!["52:54:00:00:00:01".into()],
            ..CloneArgs::default()
        };
        let o = options(&args, false).expect("options");
        assert_eq!(o["storage"], Value::from("linked"));
        assert_eq!(o["guest-identity"], Value::from("reset"));
        assert!(!o.contains_key("live"));
        let live = CloneArgs {
            live: true,
            ..CloneArgs::default()
        };
        assert_eq!(
            options(&live, false).expect("options")["live"],
            Value::Bool(true)
        );
        assert_eq!(o["vcpus"], Value::U32(2));
        assert_eq!(o["memory-mib"], Value::U64(1024));
        let dir = String::try_from(o["target-dir"].try_clone().expect("clone")).expect("a string");
        assert!(dir.starts_with('/') && dir.ends_with("/relative"), "{dir}");
        assert!(!o.contains_key("uuid"));
        let e = options(&args, true).expect_err("a relative folder on another machine");
        assert_eq!(e.status(), ExitStatus::Usage);
        let args = CloneArgs {
            target_dir: Some("/srv/vms".into()),
            ..CloneArgs::default()
        };
        assert_eq!(
            options(&args, true).expect("absolute")["target-dir"],
            Value::from("/srv/vms")
        );
    }
}
