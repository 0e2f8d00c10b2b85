//! `jobs` and `cancel`: the service's job objects.

use gettextrs::gettext;
use zbus::zvariant::OwnedObjectPath;
use zbus::Connection;

use crate::bus::{self, number, text, JobProxy};
use crate::error::CliError;
use crate::follow::{self, Interrupts, Outcome};
use crate::size::bytes_text;
use crate::table::Table;
use crate::{json, Output};

/// A job still at work (newer services also queue jobs).
fn is_active(state: &str) -> bool {
    matches!(state, "running" | "queued")
}

/// `ListJobs`, with every job's properties. Older services do not have it.
async fn list_all(conn: &Connection) -> Result<Vec<(OwnedObjectPath, bus::Dict)>, CliError> {
    let paths = bus::manager(conn).await?.list_jobs().await?;
    let mut jobs = Vec::with_capacity(paths.len());
    for path in paths {
        match bus::job_properties(conn, &path).await {
            Ok(props) => jobs.push((path, props)),
            // Gone between the list and the read (finished jobs expire).
            Err(e) if e.status() == crate::exit::ExitStatus::NotFound => {}
            Err(e) => return Err(e),
        }
    }
    Ok(jobs)
}

pub async fn list(conn: &Connection, out: &Output, as_json: bool) -> Result<(), CliError> {
    let jobs = list_all(conn).await?;
    if as_json {
        let all: Vec<_> = jobs
            .iter()
            .map(|(path, props)| {
                let mut v = json::dict(props);
                v["Path"] = serde_json::Value::from(path.as_str());
                v
            })
            .collect();
        out.line(&serde_json::Value::Array(all).to_string());
        return Ok(());
    }
    let mut table = Table::new(&[
        (gettext("JOB"), false),
        (gettext("STATE"), false),
        (gettext("SOURCE"), false),
        (gettext("NEW NAME"), false),
        (gettext("COPIED"), false),
    ]);
    let plain = console::Style::new;
    for (path, props) in &jobs {
        let n = path
            .as_str()
            .rsplit('/')
            .next()
            .unwrap_or_default()
            .to_string();
        let copied = format!(
            "{} / {}",
            bytes_text(number(props, "BytesDone")),
            bytes_text(number(props, "BytesTotal"))
        );
        table.push(vec![
            (n, plain()),
            (state_text(&text(props, "State")), plain()),
            (text(props, "SourceVmId"), plain()),
            (text(props, "NewName"), plain()),
            (copied, plain()),
        ]);
    }
    out.write(&table.render(out.colour));
    Ok(())
}

fn state_text(state: &str) -> String {
    match state {
        "running" => gettext("running"),
        "queued" => gettext("queued"),
        "succeeded" => gettext("succeeded"),
        "failed" => gettext("failed"),
        "cancelled" => gettext("cancelled"),
        other => other.to_string(),
    }
}

pub async fn cancel(conn: &Connection, out: &Output, job: &str) -> Result<(), CliError> {
    let mut interrupts = Interrupts::catch()?;
    let path = bus::job_path(job).ok_or_else(|| CliError::Service {
        name: "org.freedesktop.DBus.Error.UnknownObject".into(),
        message: String::new(),
    })?;
    let props = bus::job_properties(conn, &path).await?;
    let (state, name) = (text(&props, "State"), text(&props, "NewName"));
    // Another user's job: GetAll leaves out the properties we may not read
    // (zbus skips a getter that fails), so there is no State to judge; Cancel
    // then says why it refuses.
    if props.contains_key("State") && !is_active(&state) {
        return Err(CliError::Failed(
            gettext("Job {job} has already ended: {state}.")
                .replace("{job}", job)
                .replace("{state}", &state_text(&state)),
        ));
    }
    JobProxy::builder(conn)
        .path(path.clone())?
        .build()
        .await?
        .cancel()
        .await?;
    let title = format!("{} → {name}", text(&props, "SourceVmId"));
    match follow::follow(conn, out, &path, &title, &mut interrupts, true).await? {
        Outcome::Cancelled { bytes_done } => {
            out.line(&follow::cancelled_sentence(&name, bytes_done));
            Ok(())
        }
        Outcome::Succeeded { cloned_vm_id } => Err(CliError::Failed(
            gettext("Too late: the clone {name} ({id}) was finished before it could be cancelled.")
                .replace("{name}", &name)
                .replace("{id}", &cloned_vm_id),
        )),
        Outcome::Failed(e) => Err(e),
    }
}

/// Cancels every active job of the caller that makes one of `names` (the
/// jobs behind one `CloneVms` call have no path the caller was given).
pub async fn cancel_named(conn: &Connection, names: &[&str]) -> Result<(), CliError> {
    for (path, props) in list_all(conn).await? {
        if is_active(&text(&props, "State")) && names.contains(&text(&props, "NewName").as_str()) {
            JobProxy::builder(conn)
                .path(path)?
                .build()
                .await?
                .cancel()
                .await?;
        }
    }
    Ok(())
}
