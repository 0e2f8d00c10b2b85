//! The service's error type: one variant per `org.vmclone.Error.*` name, each
//! with a message a person can act on.

use zbus::message::{Header, Message};
use zbus::names::ErrorName;

pub const ERROR_PREFIX: &str = "org.vmclone.Error";

#[derive(Debug, Clone, thiserror::Error)]
pub enum Error {
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    InvalidName(String),
    #[error("{0}")]
    NameExists(String),
    #[error("{0}")]
    SourceNotShutOff(String),
    #[error("{0}")]
    InvalidOption(String),
    #[error("{0}")]
    MacInUse(String),
    #[error("{0}")]
    Storage(String),
    #[error("{0}")]
    Libvirt(String),
    #[error("{0}")]
    NotAuthorized(String),
    #[error("{0}")]
    NotATemplate(String),
    #[error("{0}")]
    GuestCustomization(String),
    #[error("The clone was cancelled; nothing was kept.")]
    Cancelled,
    #[error("D-Bus failure: {0}")]
    Bus(#[from] zbus::Error),
}

impl Error {
    /// The bare error name, e.g. `NotFound`.
    pub fn short_name(&self) -> &'static str {
        match self {
            Error::NotFound(_) => "NotFound",
            Error::InvalidName(_) => "InvalidName",
            Error::NameExists(_) => "NameExists",
            Error::SourceNotShutOff(_) => "SourceNotShutOff",
            Error::InvalidOption(_) => "InvalidOption",
            Error::MacInUse(_) => "MacInUse",
            Error::Storage(_) => "Storage",
            Error::Libvirt(_) => "Libvirt",
            Error::NotAuthorized(_) => "NotAuthorized",
            Error::NotATemplate(_) => "NotATemplate",
            Error::GuestCustomization(_) => "GuestCustomization",
            Error::Cancelled => "Cancelled",
            Error::Bus(_) => "Bus",
        }
    }

    /// The full D-Bus error name, e.g. `org.vmclone.Error.NotFound`; an
    /// internal bus failure is the generic `org.freedesktop.DBus.Error.Failed`.
    pub fn dbus_name(&self) -> String {
        match self {
            Error::Bus(_) => "org.freedesktop.DBus.Error.Failed".into(),
            other => format!("{ERROR_PREFIX}.{}", other.short_name()),
        }
    }
}

impl From<virt::error::Error> for Error {
    fn from(e: virt::error::Error) -> Self {
        Error::Libvirt(format!("libvirt: {}", e.message()))
    }
}

impl From<crate::auth::AuthError> for Error {
    fn from(e: crate::auth::AuthError) -> Self {
        Error::NotAuthorized(e.to_string())
    }
}

impl From<crate::naming::NameError> for Error {
    fn from(e: crate::naming::NameError) -> Self {
        Error::InvalidName(e.to_string())
    }
}

impl From<crate::domain_xml::XmlError> for Error {
    fn from(e: crate::domain_xml::XmlError) -> Self {
        Error::Libvirt(format!("Unexpected domain XML from libvirt: {e}"))
    }
}

impl From<crate::storage::error::FileError> for Error {
    fn from(e: crate::storage::error::FileError) -> Self {
        match e {
            crate::storage::error::FileError::Cancelled => Error::Cancelled,
            other => Error::Storage(other.to_string()),
        }
    }
}

/// The clone journal could not be written.
#[derive(Debug, thiserror::Error)]
#[error("Cannot write the clone journal {path}: {source}")]
pub struct JournalError {
    pub path: std::path::PathBuf,
    pub source: std::io::Error,
}

impl From<crate::storage::error::FileError> for JournalError {
    fn from(e: crate::storage::error::FileError) -> Self {
        JournalError {
            path: e.path().map(ToOwned::to_owned).unwrap_or_default(),
            source: std::io::Error::other(e.to_string()),
        }
    }
}

impl From<JournalError> for Error {
    fn from(e: JournalError) -> Self {
        Error::Storage(e.to_string())
    }
}

impl From<crate::storage::overlay::OverlayError> for Error {
    fn from(e: crate::storage::overlay::OverlayError) -> Self {
        Error::Storage(e.to_string())
    }
}

impl From<crate::guest::GuestError> for Error {
    fn from(e: crate::guest::GuestError) -> Self {
        use crate::guest::GuestError as G;
        match e {
            G::NotInstalled => Error::GuestCustomization(e.to_string()),
            G::Unrecognised(m) => Error::InvalidOption(m),
            G::Tool(m) => Error::GuestCustomization(format!(
                "The guest's identity could not be reset, so the clone was removed: {m}"
            )),
            G::Cancelled => Error::Cancelled,
            G::File(f) => f.into(),
            G::Image(i) => Error::Storage(i.to_string()),
        }
    }
}

impl From<crate::events::EventError> for Error {
    fn from(e: crate::events::EventError) -> Self {
        Error::Libvirt(e.to_string())
    }
}

impl zbus::DBusError for Error {
    fn name(&self) -> ErrorName<'_> {
        ErrorName::try_from(self.dbus_name()).expect("valid error name")
    }

    fn description(&self) -> Option<&str> {
        None
    }

    fn create_reply(&self, call: &Header<'_>) -> zbus::Result<Message> {
        Message::error(call, self.name())?.build(&(self.to_string(),))
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
