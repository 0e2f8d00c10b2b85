//! What went wrong talking to the service, sorted by what the window shows,
//! and the sentences that tell a person about it.

use gettextrs::gettext;

/// What went wrong talking to the service, sorted by what the window shows.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ClientError {
    /// No bus, or nobody owns `org.vmclone.Manager`.
    #[error("{0}")]
    Unreachable(String),
    /// polkit (or the bus policy) said no.
    #[error("{0}")]
    NotAuthorized(String),
    /// An `org.vmclone.Error.*` (or other) error with the service's message.
    #[error("{message}")]
    Service { name: String, message: String },
    /// The service answered with something the contract does not allow.
    #[error("{0}")]
    BadReply(String),
}

impl ClientError {
    pub fn name(&self) -> Option<&str> {
        match self {
            ClientError::Service { name, .. } => Some(name),
            _ => None,
        }
    }

    /// What to tell a person: the service's own message when it sent one,
    /// otherwise a sentence instead of a D-Bus error name.
    pub fn user_message(&self) -> String {
        match self {
            ClientError::Service { message, .. } | ClientError::BadReply(message)
                if !message.is_empty() =>
            {
                message.clone()
            }
            _ => self.summary(),
        }
    }

    /// One translated sentence saying what went wrong, chosen by the error's
    /// name; the service's own (English) words are `user_message`.
    pub fn summary(&self) -> String {
        let name = match self {
            ClientError::NotAuthorized(_) => {
                return gettext("You are not allowed to clone virtual machines on this computer.")
            }
            ClientError::Unreachable(_) => {
                return gettext("The vmclone service stopped or cannot be reached.")
            }
            ClientError::BadReply(_) => {
                return gettext("The vmclone service sent an answer this app does not understand.")
            }
            ClientError::Service { name, .. } => name.as_str(),
        };
        if matches!(
            name,
            "org.freedesktop.DBus.Error.UnknownMethod"
                | "org.freedesktop.DBus.Error.UnknownInterface"
                | "org.freedesktop.DBus.Error.UnknownProperty"
        ) {
            // The service answers, but not to what this version of the app asks.
            return gettext(
                "The vmclone service is older than this app. Update the service, then try again.",
            );
        }
        match name.strip_prefix("org.vmclone.Error.").unwrap_or_default() {
            "NotFound" => gettext("The virtual machine no longer exists."),
            "InvalidName" => gettext("The new name is not a valid VM name."),
            "NameExists" => gettext("Another virtual machine already has this name."),
            "SourceNotShutOff" => gettext("The virtual machine must be shut off to be cloned."),
            "InvalidOption" => gettext("The clone settings were refused."),
            "MacInUse" => gettext("A network address of the clone is already in use."),
            "Storage" => gettext("The disks could not be copied."),
            "Libvirt" => gettext("The virtualization service reported an error."),
            "NotAuthorized" => {
                gettext("You are not allowed to clone virtual machines on this computer.")
            }
            "NotATemplate" => gettext("Linked clones can only be made from a template."),
            "Cancelled" => gettext("Cloning was cancelled."),
            _ => gettext("The vmclone service reported an error."),
        }
    }
}

impl From<zbus::Error> for ClientError {
    fn from(err: zbus::Error) -> Self {
        match err {
            zbus::Error::MethodError(name, message, _) => {
                // Without a message, `summary` still has a sentence by name.
                let message = message.unwrap_or_default();
                match name.as_str() {
                    "org.vmclone.Error.NotAuthorized"
                    | "org.freedesktop.DBus.Error.AccessDenied"
                    | "org.freedesktop.DBus.Error.InteractiveAuthorizationRequired" => {
                        ClientError::NotAuthorized(message)
                    }
                    "org.freedesktop.DBus.Error.ServiceUnknown"
                    | "org.freedesktop.DBus.Error.NameHasNoOwner"
                    | "org.freedesktop.DBus.Error.NoReply"
                    | "org.freedesktop.DBus.Error.Disconnected"
                    | "org.freedesktop.DBus.Error.UnknownObject" => {
                        ClientError::Unreachable(message)
                    }
                    _ => ClientError::Service {
                        name: name.to_string(),
                        message,
                    },
                }
            }
            zbus::Error::FDO(fdo) => match *fdo {
                zbus::fdo::Error::AccessDenied(m)
                | zbus::fdo::Error::InteractiveAuthorizationRequired(m) => {
                    ClientError::NotAuthorized(m)
                }
                other => ClientError::Unreachable(other.to_string()),
            },
            other => ClientError::Unreachable(other.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bus_errors_sort_into_what_the_window_shows() {
        let reply = |name: &str| {
            let call = zbus::Message::method_call("/org/vmclone/Manager", "ListVms")
                .expect("call")
                .build(&())
                .expect("message");
            let err = zbus::Message::error(&call.header(), name)
                .expect("error")
                .build(&("the message",))
                .expect("message");
            ClientError::from(zbus::Error::MethodError(
                name.try_into().expect("error name"),
                Some("the message".into()),
                err,
            ))
        };
        assert!(matches!(
            reply("org.vmclone.Error.NotAuthorized"),
            ClientError::NotAuthorized(m) if m == "the message"
        ));
        assert!(matches!(
            reply("org.freedesktop.DBus.Error.AccessDenied"),
            ClientError::NotAuthorized(_)
        ));
        assert!(matches!(
            reply("org.freedesktop.DBus.Error.ServiceUnknown"),
            ClientError::Unreachable(_)
        ));
        let old_service = reply("org.freedesktop.DBus.Error.UnknownMethod");
        assert!(
            old_service.summary().contains("older than this app"),
            "{}",
            old_service.summary()
        );
        let exists = reply("org.vmclone.Error.NameExists");
        assert_eq!(exists.name(), Some("org.vmclone.Error.NameExists"));
        assert_eq!(exists.to_string(), "the message");
        // The toast's sentence comes from the name; Details keeps the service's words.
        assert_eq!(
            exists.summary(),
            "Another virtual machine already has this name."
        );
        assert_eq!(exists.user_message(), "the message");
    }

    #[test]
    fn an_error_without_a_message_reads_as_a_sentence_not_a_bus_name() {
        let call = zbus::Message::method_call("/org/vmclone/Manager", "StartClone")
            .expect("call")
            .build(&())
            .expect("message");
        let name = "org.vmclone.Error.Storage";
        let bare = zbus::Message::error(&call.header(), name)
            .expect("error")
            .build(&())
            .expect("message");
        let err = ClientError::from(zbus::Error::MethodError(
            name.try_into().expect("error name"),
            None,
            bare,
        ));
        assert_eq!(err.user_message(), "The disks could not be copied.");
        // A job that failed with an empty Error property, and an unknown name.
        let unknown = ClientError::Service {
            name: "org.vmclone.Error.SomethingNew".into(),
            message: String::new(),
        };
        assert_eq!(
            unknown.user_message(),
            "The vmclone service reported an error."
        );
        assert!(!unknown.user_message().contains("org."));
    }
}
