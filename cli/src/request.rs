//! What a clone asks the service for, read from the command line once and
//! shared by `clone` and `plan`: the names to clone to and the `a{sv}`
//! options.

use std::collections::HashMap;

use gettextrs::gettext;
use zbus::zvariant::Value;

use crate::args::CloneArgs;
use crate::bus::{text, ManagerProxy};
use crate::error::CliError;

/// How many names past the first taken one are tried before giving up.
const NAME_ATTEMPTS: u32 = 1000;

/// The service's clone options.
pub type Options = HashMap<&'static str, Value<'static>>;

/// The `a{sv}` options of the service for these arguments; `remote`: the
/// service runs on another machine (`--host`).
pub fn options(args: &CloneArgs, remote: bool) -> Result<Options, CliError> {
    let mut o = HashMap::new();
    if args.linked {
        o.insert("storage", Value::from("linked"));
    }
    if args.live {
        o.insert("live", Value::Bool(true));
    }
    if args.reset_identity {
        o.insert("guest-identity", Value::from("reset"));
    }
    if let Some(n) = args.vcpus {
        o.insert("vcpus", Value::U32(n));
    }
    if let Some(mib) = args.memory_mib {
        o.insert("memory-mib", Value::U64(mib));
    }
    if let Some(dir) = &args.target_dir {
        // Our folder means nothing on another machine.
        if remote && dir.is_relative() {
            return Err(CliError::Usage(gettext(
                "With --host, give --target-dir as an absolute folder on that machine.",
            )));
        }
        // The service has another working folder: a relative folder means ours.
        let dir = std::path::absolute(dir).map_err(|e| CliError::Failed(e.to_string()))?;
        let dir = dir.to_str().ok_or_else(|| {
            CliError::Failed(gettext("The target folder's name is not valid UTF-8."))
        })?;
        o.insert("target-dir", Value::from(dir.to_string()));
    }
    if !args.macs.is_empty() {
        o.insert("mac-addresses", Value::new(args.macs.clone()));
    }
    if let Some(uuid) = &args.uuid {
        o.insert("uuid", Value::from(uuid.clone()));
    }
    Ok(o)
}

/// `{base}`, `{base}-2`, `{base}-3`, …
fn candidate(base: &str, n: u32) -> String {
    if n == 1 {
        base.to_string()
    } else {
        format!("{base}-{n}")
    }
}

/// The names to clone to: the given one(s), or the first free
/// `{source}-clone`, `{source}-clone-2`, … as `CheckName` says.
pub async fn names(manager: &ManagerProxy<'_>, args: &CloneArgs) -> Result<Vec<String>, CliError> {
    let count = args.copies.unwrap_or(1);
    if let Some(name) = &args.new_name {
        return Ok(match args.copies {
            None => vec![name.clone()],
            Some(n) => (1..=n).map(|i| format!("{name}-{i}")).collect(),
        });
    }
    // The source may be given by UUID: the names follow its name.
    let source = manager.get_vm(&args.source).await?;
    let base = format!("{}-clone", text(&source, "name"));
    let mut found = Vec::new();
    for n in 1..=count + NAME_ATTEMPTS {
        let name = candidate(&base, n);
        match manager.check_name(&name).await.map_err(CliError::from) {
            Ok(()) => found.push(name),
            Err(CliError::Service { name: e, .. }) if e == "org.vmclone.Error.NameExists" => {}
            Err(e) => return Err(e),
        }
        if found.len() == count as usize {
            return Ok(found);
        }
    }
    Err(CliError::Failed(
        gettext("No free name found for a clone of {source}; give one.")
            .replace("{source}", &args.source),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exit::ExitStatus;

    #[test]
    fn automatic_names_count_from_two() {
        assert_eq!(candidate("web01-clone", 1), "web01-clone");
        assert_eq!(candidate("web01-clone", 2), "web01-clone-2");
    }

    #[test]
    fn options_use_the_service_keys_and_types() {
        let args = CloneArgs {
            linked: true,
            reset_identity: true,
            vcpus: Some(2),
            memory_mib: Some(1024),
            target_dir: Some("relative".into()),
            macs: vec!["52:54:00:00:00:01".into()],
            ..CloneArgs::default()
        };
        let o = options(&args, false).expect("options");
        assert_eq!(o["storage"], Value::from("linked"));
        assert_eq!(o["guest-identity"], Value::from("reset"));
        assert!(!o.contains_key("live"));
        let live = CloneArgs {
            live: true,
            ..CloneArgs::default()
        };
        assert_eq!(
            options(&live, false).expect("options")["live"],
            Value::Bool(true)
        );
        assert_eq!(o["vcpus"], Value::U32(2));
        assert_eq!(o["memory-mib"], Value::U64(1024));
        let dir = String::try_from(o["target-dir"].try_clone().expect("clone")).expect("a string");
        assert!(dir.starts_with('/') && dir.ends_with("/relative"), "{dir}");
        assert!(!o.contains_key("uuid"));
        let e = options(&args, true).expect_err("a relative folder on another machine");
        assert_eq!(e.status(), ExitStatus::Usage);
        let args = CloneArgs {
            target_dir: Some("/srv/vms".into()),
            ..CloneArgs::default()
        };
        assert_eq!(
            options(&args, true).expect("absolute")["target-dir"],
            Value::from("/srv/vms")
        );
    }
}
