//! What went wrong, as one sentence for stderr and an exit status.

use gettextrs::gettext;

use crate::exit::ExitStatus;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CliError {
    /// The service (or the bus) answered with an error: its name decides the
    /// exit status, its message is what the user reads.
    #[error("{message}")]
    Service { name: String, message: String },
    /// No bus at that address, or nobody owns `org.vmclone.Manager`.
    #[error("{0}")]
    Unreachable(String),
    /// The service answered with something the contract does not allow.
    #[error("{0}")]
    BadReply(String),
    /// The command line asks for something that cannot work (found after clap's checks).
    #[error("{0}")]
    Usage(String),
    /// A job was asked for something it cannot do (e.g. cancel a finished job).
    #[error("{0}")]
    Failed(String),
    /// A second Ctrl-C: we stopped waiting, the job goes on.
    #[error("{0}")]
    Interrupted(String),
    /// `plan`: the clone would not fit in the free space (the sentence says where).
    #[error("{0}")]
    DoesNotFit(String),
    /// Already told on stderr (e.g. one line per failed copy); only the status is left.
    #[error("")]
    Reported(ExitStatus),
}

impl CliError {
    pub fn status(&self) -> ExitStatus {
        match self {
            CliError::Service { name, .. } => ExitStatus::for_error_name(name),
            CliError::Unreachable(_) => ExitStatus::Unreachable,
            CliError::BadReply(_) | CliError::Failed(_) => ExitStatus::Failure,
            CliError::Usage(_) => ExitStatus::Usage,
            CliError::Interrupted(_) => ExitStatus::Interrupted,
            CliError::DoesNotFit(_) => ExitStatus::DoesNotFit,
            CliError::Reported(status) => *status,
        }
    }

    /// The sentence for stderr: the service's own message when it sent one,
    /// otherwise one chosen by the error's name.
    pub fn sentence(&self) -> String {
        match self {
            CliError::Service { name, message } if message.is_empty() => by_name(name),
            CliError::Service { name, .. }
                if is_too_old(name) || name == "org.freedesktop.DBus.Error.UnknownObject" =>
            {
                by_name(name)
            }
            other => other.to_string(),
        }
    }

    /// A job's failure from its `ErrorName` and `Error` properties.
    pub fn from_job(name: String, message: String) -> CliError {
        CliError::Service { name, message }
    }
}

fn is_too_old(name: &str) -> bool {
    matches!(
        name,
        "org.freedesktop.DBus.Error.UnknownMethod"
            | "org.freedesktop.DBus.Error.UnknownInterface"
            | "org.freedesktop.DBus.Error.UnknownProperty"
    )
}

/// One translated sentence per error name, for errors without a message.
fn by_name(name: &str) -> String {
    if is_too_old(name) {
        return gettext(
            "The vmclone service is older than vmclonectl and cannot do this; update the service.",
        );
    }
    match name {
        "org.freedesktop.DBus.Error.ServiceUnknown"
        | "org.freedesktop.DBus.Error.NameHasNoOwner" => {
            return gettext("The vmclone service is not running on this bus.")
        }
        "org.freedesktop.DBus.Error.UnknownObject" => {
            return gettext("There is no such job (a finished job stays for 10 minutes).")
        }
        _ => {}
    }
    match name.strip_prefix("org.vmclone.Error.").unwrap_or_default() {
        "NotFound" => gettext("There is no virtual machine with that name or UUID."),
        "InvalidName" => gettext("The new name is not a valid VM name."),
        "NameExists" => gettext("Another virtual machine already has this name."),
        "SourceNotShutOff" => gettext("The virtual machine must be shut off to be cloned."),
        "InvalidOption" => gettext("The clone settings were refused."),
        "MacInUse" => gettext("A network address of the clone is already in use."),
        "Storage" => gettext("The disks could not be copied."),
        "Libvirt" => gettext("The virtualization service reported an error."),
        "NotAuthorized" => gettext("You are not allowed to do this."),
        "NotATemplate" => gettext("Linked clones can only be made from a template."),
        "GuestCustomization" => gettext("The clone's identity could not be reset."),
        "Cancelled" => gettext("Cloning was cancelled."),
        _ => gettext("The vmclone service reported an error."),
    }
}

impl From<zbus::Error> for CliError {
    fn from(err: zbus::Error) -> Self {
        match err {
            zbus::Error::MethodError(name, message, _) => {
                CliError::named(name.to_string(), message.unwrap_or_default())
            }
            zbus::Error::FDO(fdo) => {
                use zbus::DBusError;
                let message = fdo.description().unwrap_or_default().to_string();
                CliError::named(fdo.name().to_string(), message)
            }
            other => CliError::Unreachable(
                gettext("Lost the connection to the vmclone service: {error}")
                    .replace("{error}", &other.to_string()),
            ),
        }
    }
}

impl CliError {
    /// An error reply by its D-Bus name.
    fn named(name: String, message: String) -> CliError {
        match name.as_str() {
            "org.freedesktop.DBus.Error.ServiceUnknown"
            | "org.freedesktop.DBus.Error.NameHasNoOwner" => CliError::Unreachable(by_name(&name)),
            _ => CliError::Service { name, message },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reply(name: &str, message: Option<&str>) -> CliError {
        let call = zbus::Message::method_call("/org/vmclone/Manager", "ListVms")
            .and_then(|b| b.build(&()))
            .expect("call");
        let err = zbus::Message::error(&call.header(), name)
            .and_then(|b| b.build(&()))
            .expect("error");
        CliError::from(zbus::Error::MethodError(
            name.try_into().expect("error name"),
            message.map(str::to_string),
            err,
        ))
    }

    #[test]
    fn service_errors_keep_their_words_and_map_to_statuses() {
        let e = reply(
            "org.vmclone.Error.NameExists",
            Some("The name “db01” is taken."),
        );
        assert_eq!(e.sentence(), "The name “db01” is taken.");
        assert_eq!(e.status().code(), 4);
        let e = reply("org.vmclone.Error.Storage", None);
        assert_eq!(e.sentence(), "The disks could not be copied.");
        let e = reply(
            "org.freedesktop.DBus.Error.ServiceUnknown",
            Some("The name is not activatable"),
        );
        assert_eq!(e.status(), ExitStatus::Unreachable);
        assert_eq!(
            e.sentence(),
            "The vmclone service is not running on this bus."
        );
        let e = reply(
            "org.freedesktop.DBus.Error.UnknownMethod",
            Some("Unknown method ListJobs"),
        );
        assert!(
            e.sentence().contains("older than vmclonectl"),
            "{}",
            e.sentence()
        );
        assert_eq!(e.status(), ExitStatus::Unreachable);
    }

    #[test]
    fn fdo_errors_are_sorted_by_their_bus_name() {
        let e = CliError::from(zbus::Error::FDO(Box::new(zbus::fdo::Error::AccessDenied(
            "no".into(),
        ))));
        assert_eq!(e.status(), ExitStatus::NotAuthorized);
        let e = CliError::from(zbus::Error::FDO(Box::new(zbus::fdo::Error::UnknownMethod(
            "no ListJobs".into(),
        ))));
        assert_eq!(e.status(), ExitStatus::Unreachable);
    }
}
