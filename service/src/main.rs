//! `vmclone-service`: serves `org.vmclone.Manager` on the system bus (or a
//! session/private bus for development and tests).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::signal::unix::{signal, SignalKind};
use vmclone_service::auth::{self, Authorizer};
use vmclone_service::clone::Engine;
use vmclone_service::events;
use vmclone_service::host::{self, Host};
use vmclone_service::journal;
use vmclone_service::manager::{announce_state_changes, blocking, Manager, BUS_NAME, OBJECT_PATH};

const USAGE: &str = "\
Usage: vmclone-service [OPTIONS]

Serves org.vmclone.Manager, which clones shut-off libvirt VMs.

Options:
  --uri URI           libvirt connection (default: qemu:///system)
  --system            serve on the system bus (default; honours DBUS_SYSTEM_BUS_ADDRESS)
  --session           serve on the session bus
  --address ADDRESS   serve on the bus at this D-Bus address (a private bus)
  --no-authorization  skip polkit checks; only with --session or --address
  --state-dir DIR     where clone journals live (default: /var/lib/vmclone on the
                      system bus, $XDG_STATE_HOME/vmclone otherwise)
  --max-copies N      clones that copy at once; more wait in a queue (default: 2)
  --version           print the version
  -h, --help          print this help";

#[derive(Debug, PartialEq)]
enum Bus {
    System,
    Session,
    Address(String),
}

struct Args {
    uri: String,
    bus: Bus,
    no_authorization: bool,
    state_dir: Option<PathBuf>,
    max_copies: usize,
}

impl Args {
    fn state_dir(&self) -> PathBuf {
        if let Some(dir) = &self.state_dir {
            return dir.clone();
        }
        if self.bus == Bus::System {
            return PathBuf::from("/var/lib/vmclone");
        }
        let base = std::env::var_os("XDG_STATE_HOME")
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/state")))
            .unwrap_or_else(|| PathBuf::from("/var/lib"));
        base.join("vmclone")
    }
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        uri: "qemu:///system".into(),
        bus: Bus::System,
        no_authorization: false,
        state_dir: None,
        max_copies: 2,
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        let mut value = |name: &str| it.next().ok_or(format!("{name} needs a value"));
        match arg.as_str() {
            "--uri" => args.uri = value("--uri")?,
            "--system" => args.bus = Bus::System,
            "--session" => args.bus = Bus::Session,
            "--address" => args.bus = Bus::Address(value("--address")?),
            "--no-authorization" => args.no_authorization = true,
            "--state-dir" => args.state_dir = Some(PathBuf::from(value("--state-dir")?)),
            "--max-copies" => {
                let v = value("--max-copies")?;
                args.max_copies = v.parse().ok().filter(|&n| n > 0).ok_or(format!(
                    "--max-copies takes a number of clones (1 or more), not “{v}”"
                ))?;
            }
            "--version" => {
                println!("vmclone-service {}", env!("CARGO_PKG_VERSION"));
                std::process::exit(0);
            }
            "-h" | "--help" => {
                println!("{USAGE}");
                std::process::exit(0);
            }
            other => return Err(format!("unknown argument “{other}”")),
        }
    }
    if args.no_authorization && args.bus == Bus::System {
        return Err(
            "--no-authorization is refused on the system bus; polkit always decides there".into(),
        );
    }
    Ok(args)
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("vmclone-service: {e}\n\n{USAGE}");
            return std::process::ExitCode::from(2);
        }
    };
    match run(args).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run(args: Args) -> Result<(), Box<dyn std::error::Error>> {
    // libvirt prints every error to stderr by default; we report them ourselves.
    virt::error::clear_error_callback();
    let state = journal::open_state_dir(&args.state_dir())?;
    let _lock = journal::lock_state_dir(&state)?;
    let journals = journal::JournalDir::open(&state)?;
    events::start_event_loop()?;
    let uri = args.uri.clone();
    let host = Arc::new(blocking(move || Host::open(&uri)).await?);
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    let watching = host.clone();
    blocking(move || watching.watch_events(events::EventSink::new(tx))).await?;

    let recovering = host.clone();
    let (journals, recovered) = tokio::task::spawn_blocking(move || {
        let recovered = journal::recover(&journals, &recovering);
        (journals, recovered)
    })
    .await?;
    let recovered = recovered?;
    if recovered.rolled_back > 0 || recovered.committed > 0 {
        tracing::warn!(
            "journals of an earlier run: {} unfinished clone(s) rolled back, {} finished clone(s) kept",
            recovered.rolled_back,
            recovered.committed
        );
    }

    let builder = match &args.bus {
        Bus::System => zbus::connection::Builder::system()?,
        Bus::Session => zbus::connection::Builder::session()?,
        Bus::Address(a) => zbus::connection::Builder::address(a.as_str())?,
    };
    let conn = builder.build().await?;
    if args.no_authorization && auth::is_the_system_bus(&conn).await {
        return Err("--no-authorization is refused on the system bus (the given bus address is the system bus); polkit always decides there".into());
    }
    let auth = if args.no_authorization {
        tracing::warn!("AUTHORIZATION IS DISABLED: every caller on this bus may clone VMs");
        Authorizer::disabled()
    } else {
        Authorizer::polkit(&conn, args.bus == Bus::System).await?
    };
    let engine = Arc::new(Engine::new(host.clone(), journals, &recovered.left));
    let manager = Manager::new(engine, auth, args.max_copies);
    conn.object_server()
        .at(OBJECT_PATH, manager.clone())
        .await?;
    tokio::spawn(announce_state_changes(conn.clone(), host.clone(), rx));
    tokio::spawn(host::keep_connected(host.clone()));
    // Take the name last: a client that sees it finds the service ready.
    conn.request_name(BUS_NAME).await?;
    tracing::info!(
        "serving {BUS_NAME} on {:?} for libvirt {}",
        args.bus,
        host.uri()
    );

    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    tokio::select! {
        _ = term.recv() => {},
        _ = int.recv() => {},
    }
    tracing::info!("stopping: cancelling running clones");
    let _ = conn.release_name(BUS_NAME).await;
    manager.cancel_all(Duration::from_secs(60)).await;
    // Blocking work that cannot be cancelled (a libvirt volume copy) must not
    // hold the exit: its journal is rolled back at the next start.
    std::process::exit(0);
}
