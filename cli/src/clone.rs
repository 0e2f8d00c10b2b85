//! `clone`: one clone through `StartClone` and its job (no call waits for the
//! copy, so no D-Bus timeout applies), or `--copies N` through `CloneVms`.

use std::time::Duration;

use futures_lite::StreamExt;
use gettextrs::gettext;
use serde_json::json;
use zbus::Connection;

use crate::args::CloneArgs;
use crate::bus::{self, ManagerProxy};
use crate::error::CliError;
use crate::follow::{self, Interrupts, Outcome};
use crate::request::{self, Options};
use crate::Output;

pub async fn run(
    conn: &Connection,
    out: &Output,
    args: &CloneArgs,
    remote: bool,
) -> Result<(), CliError> {
    // Caught before the first call: Ctrl-C must cancel, never kill us mid-job.
    let mut interrupts = Interrupts::catch()?;
    let manager = bus::manager(conn).await?;
    let options = request::options(args, remote)?;
    let names = request::names(&manager, args).await?;
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
    options: Options,
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
}
