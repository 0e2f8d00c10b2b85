//! Following one clone job to its end: a progress bar on a terminal, a line
//! per phase otherwise; Ctrl-C cancels (and we wait for the rollback), a second
//! Ctrl-C stops waiting and leaves the job to the service.

use std::time::Duration;

use futures_lite::StreamExt;
use gettextrs::gettext;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use tokio::signal::unix::{signal, Signal, SignalKind};
use zbus::zvariant::OwnedObjectPath;
use zbus::Connection;

use crate::bus::{self, number, text, JobProxy, BUS_NAME};
use crate::error::CliError;
use crate::size::bytes_text;
use crate::Output;

/// Ctrl-C presses, caught from before the first call so none kills us mid-job.
pub struct Interrupts(Signal);

impl Interrupts {
    pub fn catch() -> Result<Interrupts, CliError> {
        signal(SignalKind::interrupt())
            .map(Interrupts)
            .map_err(|e| CliError::Failed(e.to_string()))
    }

    pub async fn next(&mut self) {
        self.0.recv().await;
    }
}

/// How a followed job ended.
#[derive(Debug)]
pub enum Outcome {
    Succeeded {
        cloned_vm_id: String,
    },
    /// Cancelled and rolled back; how far the copy had come.
    Cancelled {
        bytes_done: u64,
    },
    Failed(CliError),
}

/// What the user sees while a job runs.
enum View {
    Bar(ProgressBar),
    /// No terminal: one line (on stderr) each time the phase changes.
    Lines {
        last: Option<String>,
    },
}

impl View {
    fn new(title: &str, terminal: bool) -> View {
        if !terminal {
            return View::Lines { last: None };
        }
        // The names on a line of their own: the bar's line stays short enough
        // never to wrap.
        eprintln!("{title}");
        let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
        let template = format!(
            "{{msg:.bold}} [{{wide_bar}}] {{binary_bytes}}/{{binary_total_bytes}}  {{binary_bytes_per_sec}}  {}",
            gettext("{eta} left")
        );
        bar.set_style(
            ProgressStyle::with_template(&template)
                .expect("a valid progress template")
                .progress_chars("=> "),
        );
        bar.enable_steady_tick(Duration::from_millis(200));
        View::Bar(bar)
    }

    fn update(&mut self, phase: &str, done: u64, total: u64) {
        match self {
            View::Bar(bar) => {
                bar.set_length(total);
                bar.set_position(done);
                bar.set_message(phase.to_string());
            }
            View::Lines { last } => {
                // The size may not be known yet when a phase starts.
                if last.as_deref() != Some(phase) {
                    eprintln!("{phase}");
                    *last = Some(phase.to_string());
                }
            }
        }
    }

    fn finish(self) {
        if let View::Bar(bar) = self {
            bar.finish_and_clear();
        }
    }
}

/// A running job's phase in words: a word beside the bar, or a line of its
/// own that names the clone (`title`) without a terminal.
fn phase_text(phase: &str, title: &str, bar: bool) -> String {
    let (word, line) = match phase {
        "copying" => (gettext("Copying"), gettext("Copying the disks of {title}")),
        "customizing" => (gettext("Customizing"), gettext("Customizing {title}")),
        "defining" => (gettext("Defining"), gettext("Defining the new VM {title}")),
        // A phase newer than this client: its name.
        other => (other.to_string(), format!("{other}: {{title}}")),
    };
    if bar {
        word
    } else {
        line.replace("{title}", title)
    }
}

/// Follows the job at `path` until it ends, with a bar when stderr is a
/// terminal. `title` names the clone; `cancelling` is true when the caller
/// already asked it to stop.
pub async fn follow(
    conn: &Connection,
    out: &Output,
    path: &OwnedObjectPath,
    title: &str,
    interrupts: &mut Interrupts,
    mut cancelling: bool,
) -> Result<Outcome, CliError> {
    // The proxy caches properties from after it subscribed to their changes,
    // so a job that ended before we looked is still seen as ended.
    let job = JobProxy::builder(conn).path(path.clone())?.build().await?;
    let mut finished = job.receive_finished().await?;
    let bus = zbus::fdo::DBusProxy::new(conn).await?;
    let mut owner = bus
        .receive_name_owner_changed_with_args(&[(0, BUS_NAME)])
        .await?;
    let mut state_changes = job.receive_state_changed().await;
    let mut done_changes = job.receive_bytes_done_changed().await;
    let mut total_changes = job.receive_bytes_total_changed().await;
    let mut phase_changes = job.receive_phase_changed().await;
    let mut view = View::new(title, out.progress);
    loop {
        let state = job.state().await?;
        let phase = match state.as_str() {
            "running" | "queued" if cancelling => gettext("Cancelling, removing what was made"),
            "queued" => gettext("Waiting for a free copy slot"),
            // Older services have no Phase: they only copy.
            "running" => {
                let phase = job.phase().await.unwrap_or_else(|_| "copying".into());
                phase_text(&phase, title, out.progress)
            }
            _ => break,
        };
        view.update(&phase, job.bytes_done().await?, job.bytes_total().await?);
        tokio::select! {
            _ = finished.next() => break,
            Some(_) = state_changes.next() => {}
            Some(_) = done_changes.next() => {}
            Some(_) = total_changes.next() => {}
            Some(_) = phase_changes.next() => {}
            Some(signal) = owner.next() => {
                if signal.args().is_ok_and(|a| a.new_owner().is_none()) {
                    view.finish();
                    return Err(CliError::Unreachable(gettext(
                        "The vmclone service stopped while cloning; at its next start it removes what the clone had made.",
                    )));
                }
            }
            _ = interrupts.next() => {
                let stop_waiting = || CliError::Interrupted(
                    gettext("Stopped waiting; the job goes on: {path}").replace("{path}", path.as_str()),
                );
                if cancelling {
                    view.finish();
                    return Err(stop_waiting());
                }
                cancelling = true;
                // A service that does not answer must not make the second Ctrl-C wait.
                tokio::select! {
                    result = job.cancel() => if let Err(e) = result {
                        view.finish();
                        return Err(e.into());
                    },
                    _ = interrupts.next() => {
                        view.finish();
                        return Err(stop_waiting());
                    }
                }
            }
        }
    }
    view.finish();
    outcome(conn, path).await
}

/// The job's end as the service reports it (read fresh, not from a cache that
/// may lag one change behind `Finished`).
pub async fn outcome(conn: &Connection, path: &OwnedObjectPath) -> Result<Outcome, CliError> {
    let all = bus::job_properties(conn, path).await?;
    Ok(match text(&all, "State").as_str() {
        "succeeded" => Outcome::Succeeded {
            cloned_vm_id: text(&all, "ClonedVmId"),
        },
        "cancelled" => Outcome::Cancelled {
            bytes_done: number(&all, "BytesDone"),
        },
        _ => Outcome::Failed(CliError::from_job(
            text(&all, "ErrorName"),
            text(&all, "Error"),
        )),
    })
}

/// What a cancelled clone left: nothing; says how much was copied and removed.
pub fn cancelled_sentence(name: &str, bytes_done: u64) -> String {
    gettext("Cancelled: {name} was not made; the service removed everything the clone had made ({bytes} copied).")
        .replace("{name}", name)
        .replace("{bytes}", &bytes_text(bytes_done))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phases_in_words_beside_the_bar_and_on_lines_of_their_own() {
        let title = "web01 → web02";
        assert_eq!(phase_text("copying", title, true), "Copying");
        assert_eq!(
            phase_text("copying", title, false),
            "Copying the disks of web01 → web02"
        );
        assert_eq!(phase_text("customizing", title, true), "Customizing");
        assert_eq!(
            phase_text("defining", title, false),
            "Defining the new VM web01 → web02"
        );
        assert_eq!(phase_text("snapshotting", title, true), "snapshotting");
        assert_eq!(
            phase_text("snapshotting", title, false),
            "snapshotting: web01 → web02"
        );
    }
}
