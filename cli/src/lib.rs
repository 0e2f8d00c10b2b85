//! vmclonectl: the command-line client of the vmclone service. A D-Bus
//! client only, like the app: it never links libvirt.

mod agent;
pub mod args;
pub mod bus;
mod clone;
pub mod complete;
mod destinations;
pub mod error;
pub mod exit;
mod follow;
pub mod i18n;
mod jobs;
mod json;
mod monitor;
mod plan;
mod request;
pub mod size;
pub mod ssh;
mod table;
mod vms;

use std::io::{IsTerminal, Write};

use args::{Action, Invocation};
use error::CliError;

/// Where text goes: results on stdout, notes and errors on stderr.
pub struct Output {
    /// stdout is a terminal: tables may use colour.
    pub colour: bool,
    /// stderr is a terminal: progress may be drawn.
    pub progress: bool,
}

impl Output {
    pub fn from_env() -> Output {
        Output {
            colour: std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none(),
            progress: std::io::stderr().is_terminal(),
        }
    }

    pub fn write(&self, text: &str) {
        let mut out = std::io::stdout().lock();
        // A closed pipe (`vmclonectl list | head`) is not an error worth a word.
        let _ = out.write_all(text.as_bytes()).and_then(|()| out.flush());
    }

    pub fn line(&self, text: &str) {
        self.write(&format!("{text}\n"));
    }

    pub fn note(&self, text: &str) {
        eprintln!("{text}");
    }

    /// A spinner on stderr when it is a terminal.
    fn spinner(&self) -> Option<indicatif::ProgressBar> {
        self.progress.then(|| {
            let s = indicatif::ProgressBar::new_spinner();
            s.enable_steady_tick(std::time::Duration::from_millis(120));
            s
        })
    }
}

/// Runs one invocation to its end.
pub async fn run(inv: &Invocation, out: &Output) -> Result<(), CliError> {
    // Registered before the first call, so polkit finds it when it asks.
    let _agent = inv
        .action
        .needs_authorization()
        .then(|| agent::TtyAgent::start_if_useful(&inv.bus))
        .flatten();
    let conn = bus::connect(&inv.bus).await?;
    match &inv.action {
        Action::List { json, names } => vms::list(&conn, out, *json, *names).await,
        Action::Show { vm, json } => vms::show(&conn, out, vm, *json).await,
        Action::Clone(args) => {
            let remote = matches!(inv.bus, bus::BusTarget::Host(_));
            clone::run(&conn, out, args, remote).await
        }
        Action::Plan(args) => {
            let remote = matches!(inv.bus, bus::BusTarget::Host(_));
            plan::run(&conn, out, args, remote).await
        }
        Action::Destinations { json } => destinations::list(&conn, out, *json).await,
        Action::Template { vm } => vms::template(&conn, out, vm).await,
        Action::Jobs { json } => jobs::list(&conn, out, *json).await,
        Action::Cancel { job } => jobs::cancel(&conn, out, job).await,
        Action::CheckName { name } => vms::check_name(&conn, out, name).await,
        Action::Monitor { json } => monitor::run(&conn, out, *json).await,
    }
}
