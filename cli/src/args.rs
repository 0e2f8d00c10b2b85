//! The command line: one clap definition, translated at run time, from which
//! `--help`, the man pages and the shell completions are all made.

use std::path::PathBuf;

use clap::builder::{NonEmptyStringValueParser, RangedU64ValueParser};
use clap::{value_parser, Arg, ArgAction, ArgMatches, Command, ValueHint};
use gettextrs::gettext;

use crate::bus::BusTarget;
use crate::exit::ExitStatus;
use crate::size::parse_memory_mib;
use crate::ssh::Remote;

pub const PROGRAM: &str = "vmclonectl";

/// Argument ids that name a VM: the shell completions offer the names `ListVms` gives.
pub const VM_ARGS: &[&str] = &["vm", "source"];

/// What the user asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invocation {
    pub bus: BusTarget,
    pub action: Action,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    List { json: bool, names: bool },
    Show { vm: String, json: bool },
    Clone(CloneArgs),
    Plan(CloneArgs),
    Destinations { json: bool },
    Template { vm: String },
    Jobs { json: bool },
    Cancel { job: String },
    CheckName { name: String },
    Monitor { json: bool },
}

impl Action {
    /// Whether polkit may ask for a password (the calls of `org.vmclone.clone-vm`
    /// and `org.vmclone.manage-templates`); reading is allowed to everyone.
    pub fn needs_authorization(&self) -> bool {
        matches!(
            self,
            Action::Clone(_) | Action::Template { .. } | Action::Cancel { .. }
        )
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CloneArgs {
    pub source: String,
    pub new_name: Option<String>,
    pub linked: bool,
    pub live: bool,
    pub reset_identity: bool,
    pub vcpus: Option<u32>,
    pub memory_mib: Option<u64>,
    pub target_dir: Option<PathBuf>,
    pub macs: Vec<String>,
    pub uuid: Option<String>,
    pub copies: Option<u32>,
    pub json: bool,
    pub no_wait: bool,
}

/// Help for `--help` and the man page: our own headings and help flag, so
/// every word clap prints there goes through gettext. Call it after the
/// command's own arguments are added.
fn translated(cmd: Command) -> Command {
    let template = format!(
        "{{about-with-newline}}\n{} {{usage}}\n\n{{all-args}}{{after-help}}\n",
        gettext("Usage:")
    );
    let options = gettext("Options");
    cmd.help_template(template)
        .disable_help_flag(true)
        .disable_help_subcommand(true)
        .subcommand_help_heading(gettext("Commands"))
        .subcommand_value_name(gettext("COMMAND"))
        .arg(
            Arg::new("help")
                .short('h')
                .long("help")
                .action(ArgAction::Help)
                .help(gettext("Show this help")),
        )
        .mut_args(move |a| {
            if a.is_positional() || a.get_help_heading().is_some() {
                a
            } else {
                a.help_heading(options.clone())
            }
        })
}

fn positional(id: &'static str, value_name: String, help: String) -> Arg {
    Arg::new(id)
        .value_name(value_name)
        .help(help)
        .required(true)
        .value_parser(NonEmptyStringValueParser::new())
        .help_heading(gettext("Arguments"))
}

fn flag(id: &'static str, help: String) -> Arg {
    Arg::new(id).long(id).action(ArgAction::SetTrue).help(help)
}

fn json_flag() -> Arg {
    flag("json", gettext("Print JSON instead of text"))
}

fn vm_arg(help: String) -> Arg {
    positional("vm", gettext("VM"), help).value_hint(ValueHint::Other)
}

/// A subcommand with its own arguments, translated.
fn sub(name: &'static str, about: String, args: impl IntoIterator<Item = Arg>) -> Command {
    translated(Command::new(name).about(about).args(args))
}

/// The whole command line, with every subcommand.
pub fn command() -> Command {
    let exit_codes = ExitStatus::ALL
        .iter()
        .map(|s| format!("  {:>3}  {}", s.code(), s.meaning()))
        .collect::<Vec<_>>()
        .join("\n");
    let vm = || vm_arg(gettext("The VM's name or UUID"));
    let root = Command::new(PROGRAM)
        .version(env!("CARGO_PKG_VERSION"))
        .disable_version_flag(true)
        .about(gettext(
            "List and clone libvirt virtual machines through the vmclone service",
        ))
        .long_about(gettext(
            "vmclonectl talks to the vmclone service (org.vmclone.Manager) on the D-Bus system bus, on the bus given with --address, or on another machine's system bus over SSH with --host. Clones are exact, independent copies of VMs (shut off, or running with clone --live) with a new name, UUID and MAC addresses; a cancelled or failed clone leaves nothing behind.",
        ))
        .after_help(format!("{}\n{exit_codes}", gettext("Exit status:")))
        .subcommand_required(true)
        .arg(
            Arg::new("version")
                .short('V')
                .long("version")
                .action(ArgAction::Version)
                .help(gettext("Show the version")),
        )
        .arg(
            Arg::new("address")
                .long("address")
                .value_name(gettext("ADDRESS"))
                .global(true)
                .display_order(900)
                .value_parser(NonEmptyStringValueParser::new())
                .help(gettext(
                    "Use the bus at this D-Bus address (e.g. unix:path=/run/bus.sock) instead of the system bus",
                )),
        )
        .arg(
            Arg::new("host")
                .short('H')
                .long("host")
                .value_name(gettext("HOST"))
                .global(true)
                .display_order(901)
                .conflicts_with("address")
                .value_hint(ValueHint::Hostname)
                .value_parser(Remote::parse)
                .help(gettext(
                    "Use the system bus of another machine, [USER@]HOST[:PORT], over SSH (ssh -xT HOST systemd-stdio-bridge, as busctl --host)",
                )),
        )
        .subcommand(sub(
            "list",
            gettext("List the virtual machines"),
            [
                json_flag().conflicts_with("names"),
                flag("names", gettext("Print only the names, one per line")),
            ],
        ))
        .subcommand(sub(
            "show",
            gettext("Show everything the service knows about a virtual machine"),
            [vm(), json_flag()],
        ))
        .subcommand(clone_command())
        .subcommand(
            sub(
                "plan",
                gettext("Show what a clone would do and whether it fits, without making anything"),
                clone_args(),
            )
            .long_about(gettext(
                "Show what vmclonectl clone with the same arguments would do, checked exactly as the clone checks it: what happens to each disk and where its copy goes, the UEFI variables and TPM state, the space each destination filesystem needs and has, and warnings. Nothing is made. The exit status is that of the clone (0 when it would succeed), or 11 when it would not fit in the free space.",
            )),
        )
        .subcommand(sub(
            "destinations",
            gettext("List the storage pools' folders a clone may be put in, with their free space"),
            [json_flag()],
        ))
        .subcommand(sub(
            "template",
            gettext(
                "Make a shut-off VM a template: its disk images become read-only, and linked clones can be made from it",
            ),
            [vm()],
        ))
        .subcommand(sub("jobs", gettext("List the clone jobs you may see"), [json_flag()]))
        .subcommand(sub(
            "cancel",
            gettext("Cancel a clone job and wait until everything it made is removed"),
            [positional(
                "job",
                gettext("JOB"),
                gettext("The job's number or object path, as `vmclonectl jobs` shows it"),
            )],
        ))
        .subcommand(sub(
            "check-name",
            gettext("Check that a name is valid and free for a new VM (exit status 0 if it is)"),
            [positional("name", gettext("NAME"), gettext("The name to check"))],
        ))
        .subcommand(sub(
            "monitor",
            gettext("Print clones and VM state changes as they happen, one line each, until Ctrl-C"),
            [flag("json", gettext("Print one JSON object per line"))],
        ));
    translated(root)
}

/// The arguments `clone` and `plan` share: the source, the name and every
/// option of the clone.
fn clone_args() -> Vec<Arg> {
    vec![
        positional("source", gettext("SOURCE"), gettext("The VM to clone: name or UUID"))
            .value_hint(ValueHint::Other)
            .display_order(0),
        Arg::new("new_name")
            .value_name(gettext("NEW_NAME"))
            .help(gettext("The clone's name (default: SOURCE-clone)"))
            .value_parser(NonEmptyStringValueParser::new())
            .help_heading(gettext("Arguments"))
            .display_order(1),
        flag(
            "linked",
            gettext("Make a linked clone: qcow2 overlays on a template's disks instead of copies"),
        ),
        flag(
            "live",
            gettext("Copy a running or paused VM as it is at this moment, without stopping it"),
        )
        .conflicts_with("linked"),
        flag(
            "reset_identity",
            gettext("Give the clone its own identity inside a Linux guest: new machine ID, SSH host keys and host name"),
        )
        .long("reset-identity"),
        Arg::new("vcpus")
            .long("vcpus")
            .value_name("N")
            .value_parser(value_parser!(u32).range(1..))
            .help(gettext("Give the clone N virtual CPUs")),
        Arg::new("memory")
            .long("memory")
            .value_name(gettext("SIZE"))
            .value_parser(parse_memory_mib)
            .help(gettext("Give the clone this much memory: 4G, 512M, or a number of MiB")),
        Arg::new("target_dir")
            .long("target-dir")
            .value_name(gettext("DIR"))
            .value_parser(value_parser!(PathBuf))
            .value_hint(ValueHint::DirPath)
            .help(gettext("Put the disk copies and overlays in this folder")),
        Arg::new("mac")
            .long("mac")
            .value_name("MAC")
            .action(ArgAction::Append)
            .value_parser(NonEmptyStringValueParser::new())
            .help(gettext(
                "MAC address for the clone's network interfaces, one per interface in order (repeat the option)",
            )),
        Arg::new("uuid")
            .long("uuid")
            .value_name("UUID")
            .value_parser(NonEmptyStringValueParser::new())
            .help(gettext("The clone's UUID (default: a new random one)")),
        Arg::new("copies")
            .long("copies")
            .value_name("N")
            .value_parser(RangedU64ValueParser::<u32>::new().range(1..=100))
            .conflicts_with_all(["mac", "uuid"])
            .help(gettext(
                "Make N clones in one go: NEW_NAME-1 … NEW_NAME-N, or the next N free SOURCE-clone names",
            )),
        json_flag(),
    ]
}

fn clone_command() -> Command {
    let no_wait = Arg::new("no_wait")
        .long("no-wait")
        .action(ArgAction::SetTrue)
        .conflicts_with("copies")
        .help(gettext(
            "Start the clone and print its job's path without waiting for it",
        ));
    let args = clone_args().into_iter().chain([no_wait]);
    sub("clone", gettext("Clone a virtual machine"), args).long_about(gettext(
        "Clone a virtual machine: a shut-off one, or with --live a running or paused one as it is at this moment. Without NEW_NAME the clone is called SOURCE-clone (SOURCE-clone-2, … when taken). On a terminal a progress bar shows the copy; Ctrl-C cancels the clone and waits until everything it made is removed, a second Ctrl-C stops waiting and leaves the job running.",
    ))
}

/// What `clone_args` read (`no_wait` is `clone`'s own).
fn read_clone_args(sub: &ArgMatches) -> CloneArgs {
    let text = |id: &str| sub.get_one::<String>(id).cloned();
    CloneArgs {
        source: text("source").expect("required"),
        new_name: text("new_name"),
        linked: sub.get_flag("linked"),
        live: sub.get_flag("live"),
        reset_identity: sub.get_flag("reset_identity"),
        vcpus: sub.get_one::<u32>("vcpus").copied(),
        memory_mib: sub.get_one::<u64>("memory").copied(),
        target_dir: sub.get_one::<PathBuf>("target_dir").cloned(),
        macs: sub
            .get_many::<String>("mac")
            .map(|m| m.cloned().collect())
            .unwrap_or_default(),
        uuid: text("uuid"),
        copies: sub.get_one::<u32>("copies").copied(),
        json: sub.get_flag("json"),
        no_wait: false,
    }
}

impl Invocation {
    /// Parses the process's arguments; prints help, version or a usage error
    /// and exits (status 2 for usage errors) as clap does.
    pub fn from_env() -> Invocation {
        Invocation::from_matches(&command().get_matches())
    }

    pub fn from_matches(m: &ArgMatches) -> Invocation {
        let (name, sub) = m.subcommand().expect("a subcommand is required");
        // `--address` and `--host` are global: clap gives them to the subcommand's matches.
        fn global<'m, T: Clone + Send + Sync + 'static>(
            m: &'m ArgMatches,
            sub: &'m ArgMatches,
            id: &str,
        ) -> Option<&'m T> {
            sub.get_one::<T>(id).or_else(|| m.get_one::<T>(id))
        }
        let bus = if let Some(a) = global::<String>(m, sub, "address") {
            BusTarget::Address(a.clone())
        } else if let Some(r) = global::<Remote>(m, sub, "host") {
            BusTarget::Host(r.clone())
        } else {
            BusTarget::System
        };
        let text = |id: &str| sub.get_one::<String>(id).cloned();
        let has = |id: &str| sub.get_flag(id);
        let action = match name {
            "list" => Action::List {
                json: has("json"),
                names: has("names"),
            },
            "show" => Action::Show {
                vm: text("vm").expect("required"),
                json: has("json"),
            },
            "clone" => Action::Clone(CloneArgs {
                no_wait: has("no_wait"),
                ..read_clone_args(sub)
            }),
            "plan" => Action::Plan(read_clone_args(sub)),
            "destinations" => Action::Destinations { json: has("json") },
            "template" => Action::Template {
                vm: text("vm").expect("required"),
            },
            "jobs" => Action::Jobs { json: has("json") },
            "cancel" => Action::Cancel {
                job: text("job").expect("required"),
            },
            "check-name" => Action::CheckName {
                name: text("name").expect("required"),
            },
            "monitor" => Action::Monitor { json: has("json") },
            other => unreachable!("subcommand {other} is not defined"),
        };
        Invocation { bus, action }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Invocation, clap::Error> {
        let mut argv = vec![PROGRAM];
        argv.extend_from_slice(args);
        command()
            .try_get_matches_from(argv)
            .map(|m| Invocation::from_matches(&m))
    }

    #[test]
    fn the_definition_is_consistent() {
        command().debug_assert();
    }

    #[test]
    fn clone_options_are_read_with_their_types() {
        let inv = parse(&[
            "clone",
            "web01",
            "web02",
            "--linked",
            "--reset-identity",
            "--vcpus",
            "4",
            "--memory",
            "4G",
            "--mac",
            "52:54:00:00:00:01",
            "--mac",
            "52:54:00:00:00:02",
            "--address",
            "unix:path=/x",
        ])
        .expect("valid");
        assert_eq!(inv.bus, BusTarget::Address("unix:path=/x".into()));
        let Action::Clone(c) = inv.action else {
            panic!("not a clone: {inv:?}")
        };
        assert_eq!(
            (c.source.as_str(), c.new_name.as_deref()),
            ("web01", Some("web02"))
        );
        assert!(c.linked && !c.live && !c.json && !c.no_wait);
        assert!(c.reset_identity);
        assert_eq!((c.vcpus, c.memory_mib), (Some(4), Some(4096)));
        assert_eq!(c.macs, ["52:54:00:00:00:01", "52:54:00:00:00:02"]);
        let Action::Clone(c) = parse(&["clone", "web01", "--live"]).expect("valid").action else {
            panic!("not a clone")
        };
        assert!(c.live && !c.linked);
        assert!(parse(&["clone", "web01", "--live", "--linked"]).is_err());
    }

    #[test]
    fn plan_reads_the_same_options_as_clone() {
        let common = [
            "web01",
            "web02",
            "--linked",
            "--vcpus",
            "4",
            "--memory",
            "4G",
            "--mac",
            "52:54:00:00:00:01",
            "--target-dir",
            "/srv/vms",
            "--json",
        ];
        let clone = parse(&[&["clone"][..], &common].concat()).expect("valid");
        let plan = parse(&[&["plan"][..], &common].concat()).expect("valid");
        let (Action::Clone(c), Action::Plan(p)) = (clone.action, plan.action) else {
            panic!("not a clone and a plan")
        };
        assert_eq!(c, p);
        assert_eq!(
            p.target_dir.as_deref(),
            Some(std::path::Path::new("/srv/vms"))
        );
        let Action::Plan(p) = parse(&["plan", "db01", "--copies", "3"]).unwrap().action else {
            panic!("not a plan")
        };
        assert_eq!((p.copies, p.new_name), (Some(3), None));
    }

    #[test]
    fn host_before_or_after_the_command_and_never_with_address() {
        for args in [
            &["--host", "root@kvm1:2222", "list"][..],
            &["list", "-H", "root@kvm1:2222"],
        ] {
            let inv = parse(args).expect("valid");
            assert_eq!(
                inv.bus,
                BusTarget::Host(Remote::parse("root@kvm1:2222").unwrap()),
                "{args:?}"
            );
        }
        assert_eq!(parse(&["list"]).unwrap().bus, BusTarget::System);
        for bad in [
            &["--host", "kvm1", "--address", "unix:path=/x", "list"][..],
            &["list", "--host", "-oProxyCommand=x"],
        ] {
            let err = parse(bad).expect_err(&format!("{bad:?} is a usage error"));
            assert_eq!(err.exit_code(), 2, "{bad:?}: {err}");
        }
    }

    #[test]
    fn usage_errors_are_clap_errors_with_status_2() {
        for bad in [
            &["clone"][..],
            &["clone", "web01", "--vcpus", "0"],
            &["clone", "web01", "--memory", "lots"],
            &["clone", "web01", "--copies", "3", "--uuid", "x"],
            &["clone", "web01", "--copies", "101"],
            &["clone", "web01", "--copies", "2", "--no-wait"],
            &["plan"],
            &["plan", "web01", "--no-wait"],
            &[
                "plan",
                "web01",
                "--copies",
                "2",
                "--mac",
                "52:54:00:00:00:01",
            ],
            &["destinations", "web01"],
            &["list", "--json", "--names"],
            &["show", ""],
            &["frobnicate"],
            &[],
        ] {
            let err = parse(bad).expect_err(&format!("{bad:?} is a usage error"));
            assert_eq!(err.exit_code(), 2, "{bad:?}: {err}");
        }
    }
}
