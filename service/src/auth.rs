//! Who may call what: every method asks polkit about the *caller* before doing anything.
//!
//! On the system bus the polkit subject is the caller's unique bus name (`system-bus-name`),
//! so polkit itself resolves the caller's process, user and session; the service's own PID is
//! never used. polkit only lives on the system bus, so a run on a session or private bus
//! identifies the caller as a `unix-process` (pid, start time, uid from the bus daemon's
//! `GetConnectionCredentials`) and still asks the system bus's polkit.
//!
//! Any failure to get a yes from polkit refuses the request (fail closed).

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use zbus::fdo::DBusProxy;
use zbus::message::{Flags, Header};
use zbus::names::BusName;
use zbus::proxy::CacheProperties;
use zbus_polkit::policykit1::{AuthorityProxy, CheckAuthorizationFlags, Subject};

/// The polkit actions declared in `data/org.vmclone.policy`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    /// Read-only: list and inspect domains, check names.
    ListVms,
    /// Clone a VM (creates domains and disk images), cancel a clone job.
    CloneVm,
    /// Turn a VM into a template for linked clones.
    ManageTemplates,
}

impl Action {
    /// The polkit action id.
    pub fn id(self) -> &'static str {
        match self {
            Action::ListVms => "org.vmclone.list-vms",
            Action::CloneVm => "org.vmclone.clone-vm",
            Action::ManageTemplates => "org.vmclone.manage-templates",
        }
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.id())
    }
}

/// Why a call was refused. The service answers both with `org.vmclone.Error.NotAuthorized`.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error(
        "not authorized: polkit denied the action {action}. Retry allowing interactive \
         authorization (busctl --allow-interactive-authorization=yes) with a polkit \
         authentication agent running, or ask an administrator to grant {action} to you or \
         your group with a polkit rule in /etc/polkit-1/rules.d/"
    )]
    Denied { action: &'static str },
    #[error(
        "not authorized: the request needs the polkit action {action} and was refused \
         because authorization could not be checked: {reason}"
    )]
    Unavailable {
        action: &'static str,
        reason: String,
    },
}

/// Checks callers against polkit, or (session/private bus only) lets everything through.
#[derive(Clone)]
pub struct Authorizer {
    mode: Mode,
    refusals: Arc<Mutex<RefusalLog>>,
}

/// Refusals logged at info or warn per [`REFUSAL_WINDOW`]; the rest at debug,
/// so a caller looping refused calls cannot flood the journal.
const REFUSALS_LOGGED: u32 = 10;
const REFUSAL_WINDOW: Duration = Duration::from_secs(60);

struct RefusalLog {
    window: Instant,
    count: u32,
}

impl RefusalLog {
    fn new() -> Arc<Mutex<RefusalLog>> {
        Arc::new(Mutex::new(RefusalLog {
            window: Instant::now(),
            count: 0,
        }))
    }

    /// Whether the next refusal is logged loudly; says once when the rest of
    /// the window is not.
    fn loud(&mut self) -> bool {
        if self.window.elapsed() >= REFUSAL_WINDOW {
            self.window = Instant::now();
            self.count = 0;
        }
        self.count += 1;
        if self.count == REFUSALS_LOGGED + 1 {
            tracing::info!(
                "more than {REFUSALS_LOGGED} refused calls within {} s; further ones are logged at debug level until then",
                REFUSAL_WINDOW.as_secs()
            );
        }
        self.count <= REFUSALS_LOGGED
    }
}

#[derive(Clone)]
enum Mode {
    Disabled,
    Polkit {
        authority: AuthorityProxy<'static>,
        /// The bus the service serves on; asked for callers' credentials when it is not the
        /// system bus.
        bus: zbus::Connection,
        on_system_bus: bool,
    },
}

impl Authorizer {
    /// polkit checks. `bus` is the connection the service serves on; `on_system_bus` says
    /// whether it is the system bus (otherwise a separate system bus connection reaches polkit).
    /// polkitd need not be running yet: it is looked up (and bus-activated) on every check.
    pub async fn polkit(bus: &zbus::Connection, on_system_bus: bool) -> zbus::Result<Self> {
        let system = if on_system_bus {
            bus.clone()
        } else {
            zbus::Connection::system().await?
        };
        let authority = AuthorityProxy::builder(&system)
            .cache_properties(CacheProperties::No)
            .build()
            .await?;
        Ok(Self {
            mode: Mode::Polkit {
                authority,
                bus: bus.clone(),
                on_system_bus,
            },
            refusals: RefusalLog::new(),
        })
    }

    /// No checks at all. Only for session/private bus runs (the binary refuses it on the system
    /// bus); every call says so loudly in the log.
    pub fn disabled() -> Self {
        Self {
            mode: Mode::Disabled,
            refusals: RefusalLog::new(),
        }
    }

    /// Asks polkit whether the sender of the message with `header` may do `action`. The
    /// message's ALLOW_INTERACTIVE_AUTHORIZATION flag lets polkit ask the caller's
    /// authentication agent for a password.
    pub async fn check(&self, header: &Header<'_>, action: Action) -> Result<(), AuthError> {
        let sender = header.sender().map(|s| s.to_string());
        let sender = sender.as_deref().unwrap_or("(unknown sender)");
        let (authority, bus, on_system_bus) = match &self.mode {
            Mode::Disabled => {
                tracing::warn!(
                    action = action.id(),
                    sender,
                    "AUTHORIZATION IS DISABLED (--no-authorization): allowing without asking polkit"
                );
                return Ok(());
            }
            Mode::Polkit {
                authority,
                bus,
                on_system_bus,
            } => (authority, bus, *on_system_bus),
        };
        let loud = || self.refusals.lock().expect("refusal log lock").loud();
        let unavailable = |reason: String| {
            match loud() {
                true => {
                    tracing::warn!(action = action.id(), sender, %reason, "refused: cannot check authorization")
                }
                false => {
                    tracing::debug!(action = action.id(), sender, %reason, "refused: cannot check authorization")
                }
            }
            AuthError::Unavailable {
                action: action.id(),
                reason,
            }
        };

        let subject = if on_system_bus {
            Subject::new_for_message_header(header)
                .map_err(|e| unavailable(format!("cannot identify the caller: {e}")))?
        } else {
            caller_process(bus, header)
                .await
                .map_err(|e| unavailable(format!("cannot identify the caller: {e}")))?
        };
        let flags = if header
            .primary()
            .flags()
            .contains(Flags::AllowInteractiveAuth)
        {
            CheckAuthorizationFlags::AllowUserInteraction.into()
        } else {
            Default::default()
        };

        let result = authority
            .check_authorization(&subject, action.id(), &HashMap::new(), flags, "")
            .await
            .map_err(|e| unavailable(polkit_failure(&e)))?;
        if result.is_authorized {
            tracing::debug!(action = action.id(), sender, "authorized by polkit");
            Ok(())
        } else {
            match loud() {
                true => tracing::info!(
                    action = action.id(),
                    sender,
                    challenge = result.is_challenge,
                    "denied by polkit"
                ),
                false => tracing::debug!(
                    action = action.id(),
                    sender,
                    challenge = result.is_challenge,
                    "denied by polkit"
                ),
            }
            Err(AuthError::Denied {
                action: action.id(),
            })
        }
    }
}

/// Whether `conn` is connected to the system bus, whatever address reached it.
pub async fn is_the_system_bus(conn: &zbus::Connection) -> bool {
    async fn bus_id(conn: &zbus::Connection) -> zbus::Result<String> {
        Ok(zbus::fdo::DBusProxy::new(conn)
            .await?
            .get_id()
            .await?
            .to_string())
    }
    let Ok(system) = zbus::Connection::system().await else {
        return false;
    };
    matches!((bus_id(conn).await, bus_id(&system).await), (Ok(a), Ok(b)) if a == b)
}

/// The user id of the bus connection `sender`, as the bus daemon knows it.
pub async fn caller_uid(
    bus: &zbus::Connection,
    sender: &zbus::names::UniqueName<'_>,
) -> Result<u32, AuthError> {
    let unavailable = |reason: String| AuthError::Unavailable {
        action: "(the caller's identity)",
        reason,
    };
    DBusProxy::new(bus)
        .await
        .map_err(|e| unavailable(e.to_string()))?
        .get_connection_unix_user(BusName::Unique(sender.clone()))
        .await
        .map_err(|e| unavailable(format!("the bus does not know who the caller is: {e}")))
}

/// The caller as a `unix-process` subject, from what the bus daemon knows about its connection.
async fn caller_process(bus: &zbus::Connection, header: &Header<'_>) -> Result<Subject, String> {
    let sender = header
        .sender()
        .ok_or("the message has no sender".to_string())?;
    let creds = DBusProxy::new(bus)
        .await
        .map_err(|e| e.to_string())?
        .get_connection_credentials(BusName::Unique(sender.clone()))
        .await
        .map_err(|e| e.to_string())?;
    let pid = creds
        .process_id()
        .ok_or("the bus does not know the caller's process id".to_string())?;
    let uid = creds
        .unix_user_id()
        .ok_or("the bus does not know the caller's user id".to_string())?;
    Subject::new_for_owner(pid, None, Some(uid)).map_err(|e| e.to_string())
}

/// Says whether polkit answered with an error of its own or could not be reached at all.
fn polkit_failure(e: &zbus::Error) -> String {
    match e {
        zbus::Error::MethodError(name, ..) if name.starts_with("org.freedesktop.PolicyKit1.") => {
            format!("polkit could not decide: {e}")
        }
        _ => format!(
            "polkit is unreachable on the system bus ({e}); make sure polkitd is running \
             (systemctl start polkit)"
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALL: [Action; 3] = [Action::ListVms, Action::CloneVm, Action::ManageTemplates];

    #[test]
    fn every_action_is_declared_in_the_polkit_policy() {
        let policy = include_str!("../../data/org.vmclone.policy");
        for action in ALL {
            assert!(
                policy.contains(&format!("<action id=\"{}\">", action.id())),
                "{} is not in data/org.vmclone.policy",
                action.id()
            );
        }
    }

    #[test]
    fn refusals_are_logged_loudly_only_a_few_times_a_minute() {
        let log = RefusalLog::new();
        let mut log = log.lock().unwrap();
        let loud = (0..100).filter(|_| log.loud()).count();
        assert_eq!(loud, REFUSALS_LOGGED as usize);
        log.window -= REFUSAL_WINDOW;
        assert!(log.loud());
    }

    #[test]
    fn refusals_name_the_action() {
        for action in ALL {
            let denied = AuthError::Denied {
                action: action.id(),
            }
            .to_string();
            assert!(
                denied.contains(action.id()) && denied.contains("rules.d"),
                "{denied}"
            );
            let unavailable = AuthError::Unavailable {
                action: action.id(),
                reason: "polkit is unreachable".into(),
            }
            .to_string();
            assert!(unavailable.contains(action.id()), "{unavailable}");
        }
    }

    #[tokio::test]
    async fn disabled_allows_every_action() {
        let msg = zbus::Message::method_call("/org/vmclone/Manager", "CloneVm")
            .unwrap()
            .sender(":1.42")
            .unwrap()
            .build(&())
            .unwrap();
        for action in ALL {
            assert!(Authorizer::disabled()
                .check(&msg.header(), action)
                .await
                .is_ok());
        }
    }
}
