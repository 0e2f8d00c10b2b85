//! Exit statuses: one per kind of `org.vmclone.Error.*`, so scripts can tell
//! a taken name from a running source without reading messages. The table in
//! `--help` and the man page is made from [`ExitStatus::ALL`].

use gettextrs::gettext;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitStatus {
    Success,
    Failure,
    Usage,
    NotFound,
    Name,
    NotShutOff,
    NotAuthorized,
    Storage,
    Cancelled,
    OptionRefused,
    Unreachable,
    DoesNotFit,
    Interrupted,
}

impl ExitStatus {
    pub const ALL: [ExitStatus; 13] = [
        ExitStatus::Success,
        ExitStatus::Failure,
        ExitStatus::Usage,
        ExitStatus::NotFound,
        ExitStatus::Name,
        ExitStatus::NotShutOff,
        ExitStatus::NotAuthorized,
        ExitStatus::Storage,
        ExitStatus::Cancelled,
        ExitStatus::OptionRefused,
        ExitStatus::Unreachable,
        ExitStatus::DoesNotFit,
        ExitStatus::Interrupted,
    ];

    pub fn code(self) -> u8 {
        match self {
            ExitStatus::Success => 0,
            ExitStatus::Failure => 1,
            ExitStatus::Usage => 2,
            ExitStatus::NotFound => 3,
            ExitStatus::Name => 4,
            ExitStatus::NotShutOff => 5,
            ExitStatus::NotAuthorized => 6,
            ExitStatus::Storage => 7,
            ExitStatus::Cancelled => 8,
            ExitStatus::OptionRefused => 9,
            ExitStatus::Unreachable => 10,
            ExitStatus::DoesNotFit => 11,
            ExitStatus::Interrupted => 130,
        }
    }

    /// What the status says, for the table in `--help` and the man page.
    pub fn meaning(self) -> String {
        match self {
            ExitStatus::Success => gettext("done"),
            ExitStatus::Failure => gettext("another error (for example Libvirt)"),
            ExitStatus::Usage => gettext("wrong command line"),
            ExitStatus::NotFound => gettext("no such VM or job (NotFound)"),
            ExitStatus::Name => gettext("the name is taken or invalid (NameExists, InvalidName)"),
            ExitStatus::NotShutOff => gettext("the source VM is not shut off (SourceNotShutOff)"),
            ExitStatus::NotAuthorized => gettext("not authorized (NotAuthorized)"),
            ExitStatus::Storage => gettext("a disk could not be copied (Storage)"),
            ExitStatus::Cancelled => gettext("the clone was cancelled (Cancelled)"),
            ExitStatus::OptionRefused => {
                gettext("an option was refused (InvalidOption, MacInUse, NotATemplate)")
            }
            ExitStatus::Unreachable => {
                gettext("the service cannot be reached, or is too old for this command")
            }
            ExitStatus::DoesNotFit => gettext(
                "plan: the clone would not fit in the free space of a destination filesystem",
            ),
            ExitStatus::Interrupted => {
                gettext("interrupted by a second Ctrl-C; the job goes on in the service")
            }
        }
    }

    /// The status for a D-Bus error name.
    pub fn for_error_name(name: &str) -> ExitStatus {
        match name {
            "org.freedesktop.DBus.Error.AccessDenied"
            | "org.freedesktop.DBus.Error.InteractiveAuthorizationRequired" => {
                return ExitStatus::NotAuthorized
            }
            "org.freedesktop.DBus.Error.ServiceUnknown"
            | "org.freedesktop.DBus.Error.NameHasNoOwner"
            | "org.freedesktop.DBus.Error.NoReply"
            | "org.freedesktop.DBus.Error.Disconnected"
            | "org.freedesktop.DBus.Error.UnknownMethod"
            | "org.freedesktop.DBus.Error.UnknownInterface"
            | "org.freedesktop.DBus.Error.UnknownProperty" => return ExitStatus::Unreachable,
            "org.freedesktop.DBus.Error.UnknownObject" => return ExitStatus::NotFound,
            _ => {}
        }
        match name.strip_prefix("org.vmclone.Error.").unwrap_or_default() {
            "NotFound" => ExitStatus::NotFound,
            "NameExists" | "InvalidName" => ExitStatus::Name,
            "SourceNotShutOff" => ExitStatus::NotShutOff,
            "NotAuthorized" => ExitStatus::NotAuthorized,
            "Storage" => ExitStatus::Storage,
            "Cancelled" => ExitStatus::Cancelled,
            "InvalidOption" | "MacInUse" | "NotATemplate" => ExitStatus::OptionRefused,
            _ => ExitStatus::Failure,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_codes_the_issue_names_and_one_per_status() {
        let by = |n: &str| ExitStatus::for_error_name(&format!("org.vmclone.Error.{n}")).code();
        assert_eq!(
            [
                by("NotFound"),
                by("NameExists"),
                by("InvalidName"),
                by("SourceNotShutOff"),
                by("NotAuthorized"),
                by("Storage"),
                by("Cancelled"),
                by("Libvirt"),
                by("SomethingNew"),
            ],
            [3, 4, 4, 5, 6, 7, 8, 1, 1]
        );
        let codes: std::collections::BTreeSet<u8> =
            ExitStatus::ALL.iter().map(|s| s.code()).collect();
        assert_eq!(codes.len(), ExitStatus::ALL.len(), "codes are distinct");
    }
}
