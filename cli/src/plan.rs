//! `plan`: what a clone would do, as `PlanClone` says, printed; nothing is
//! made. The exit status tells whether the clone would go through: the
//! clone's own status for a refusal, 11 when it would not fit.

use console::Style;
use gettextrs::{gettext, ngettext};
use serde_json::json;
use zbus::Connection;

use crate::args::CloneArgs;
use crate::bus::{self, dicts, flag, number, sub_dict, text, texts, Dict};
use crate::error::CliError;
use crate::size::bytes_text;
use crate::table::{key_values, or_dash, Table};
use crate::{json, request, Output};

pub async fn run(
    conn: &Connection,
    out: &Output,
    args: &CloneArgs,
    remote: bool,
) -> Result<(), CliError> {
    let manager = bus::manager(conn).await?;
    let options = request::options(args, remote)?;
    let names = request::names(&manager, args).await?;
    let mut plans = Vec::with_capacity(names.len());
    for name in names {
        let plan = manager.plan_clone(&args.source, &name, &options).await?;
        plans.push((name, plan));
    }
    let filesystems = Filesystem::of(&plans);
    let short = filesystems.iter().find(|f| !f.fits());
    let fits = short.is_none() && plans.iter().all(|(_, p)| flag(p, "fits"));
    if args.json {
        let shown = match args.copies {
            None => json::dict(&plans[0].1),
            Some(_) => serde_json::Value::Array(
                plans
                    .iter()
                    .map(|(name, plan)| json!({"name": name, "plan": json::dict(plan)}))
                    .collect(),
            ),
        };
        out.line(&shown.to_string());
    } else {
        out.write(&render(
            &args.source,
            &plans,
            &filesystems,
            fits,
            out.colour,
        ));
    }
    if fits {
        Ok(())
    } else {
        Err(CliError::DoesNotFit(does_not_fit(short, plans.len())))
    }
}

/// One filesystem the clones write to, over all of them: the bytes they
/// need there together, and its free space.
#[derive(Debug, PartialEq, Eq)]
struct Filesystem {
    folder: String,
    free: u64,
    needed: u64,
    /// The service's own verdict for each clone alone.
    each_fits: bool,
}

impl Filesystem {
    fn fits(&self) -> bool {
        self.each_fits && self.needed <= self.free
    }

    /// The filesystems of `plans` in the order the service lists them;
    /// several copies of one source need their bytes on the same ones.
    fn of(plans: &[(String, Dict)]) -> Vec<Filesystem> {
        let mut all: Vec<Filesystem> = Vec::new();
        for fs in plans
            .iter()
            .flat_map(|(_, plan)| dicts(plan, "filesystems"))
        {
            // A pool libvirt fills has no folder of ours.
            let folder = match text(&fs, "folder") {
                f if f.is_empty() => gettext("pool {pool}").replace("{pool}", &text(&fs, "pool")),
                f => f,
            };
            let (free, needed) = (number(&fs, "free-bytes"), number(&fs, "bytes-needed"));
            let fits = flag(&fs, "fits");
            match all.iter_mut().find(|f| f.folder == folder) {
                Some(f) => {
                    f.free = f.free.min(free);
                    f.needed += needed;
                    f.each_fits &= fits;
                }
                None => all.push(Filesystem {
                    folder,
                    free,
                    needed,
                    each_fits: fits,
                }),
            }
        }
        all
    }
}

/// The sentence for stderr when the clone (or the `count` clones) would not fit.
fn does_not_fit(short: Option<&Filesystem>, count: usize) -> String {
    let sentence = match (short, count) {
        (Some(_), 1) => {
            gettext("The clone does not fit: {folder} has {free} free but needs {needed}.")
        }
        (Some(_), _) => {
            gettext("The clones do not fit: {folder} has {free} free but need {needed}.")
        }
        (None, 1) => gettext("The clone does not fit in the free space."),
        (None, _) => gettext("The clones do not fit in the free space."),
    };
    let sentence = match short {
        Some(f) => sentence
            .replace("{folder}", &f.folder)
            .replace("{free}", &bytes_text(f.free))
            .replace("{needed}", &bytes_text(f.needed)),
        None => sentence,
    };
    format!(
        "{sentence} {}",
        gettext("Choose another --target-dir (see vmclonectl destinations) or free some space.")
    )
}

/// What happens to a disk, in words.
fn action_text(action: &str, backing_images: u64) -> String {
    let word = match action {
        "copy" => gettext("copy"),
        "reflink" => gettext("reflink"),
        "overlay" => gettext("linked overlay"),
        "shared" => gettext("shared"),
        "volume" => gettext("new volume"),
        "live" => gettext("live copy"),
        other => other.to_string(),
    };
    if backing_images == 0 {
        return word;
    }
    ngettext(
        "{action} with {n} backing image",
        "{action} with {n} backing images",
        backing_images as u32,
    )
    .replace("{action}", &word)
    .replace("{n}", &backing_images.to_string())
}

/// Actions that move the disk's bytes.
fn copies_bytes(action: &str) -> bool {
    matches!(action, "copy" | "reflink" | "volume")
}

/// The NVRAM or TPM line of a plan: `source → destination`, or none.
fn copy_text(copy: &Dict, made_later: &str) -> String {
    let (source, destination) = (text(copy, "source"), text(copy, "destination"));
    if destination.is_empty() {
        gettext("none")
    } else if !flag(copy, "exists") {
        format!("{destination} ({made_later})")
    } else {
        format!("{source} → {destination}")
    }
}

/// One clone's disks, NVRAM, TPM and bytes.
fn render_one(source: &str, name: &str, plan: &Dict, colour: bool) -> String {
    let mut out = format!("{source} → {name}\n");
    let mut table = Table::new(&[
        (gettext("TARGET"), false),
        (gettext("DEVICE"), false),
        (gettext("FORMAT"), false),
        (gettext("ACTION"), false),
        (gettext("TO COPY"), true),
        (gettext("DESTINATION"), false),
    ]);
    let plain = Style::new;
    for disk in dicts(plan, "disks") {
        let action = text(&disk, "action");
        let to_copy = if copies_bytes(&action) {
            bytes_text(number(&disk, "allocated"))
        } else {
            "-".into()
        };
        // A shared disk stays where it is.
        let destination = match action.as_str() {
            "shared" => text(&disk, "source"),
            _ => text(&disk, "destination"),
        };
        table.push(vec![
            (text(&disk, "target"), plain()),
            (text(&disk, "device"), plain()),
            (text(&disk, "format"), plain()),
            (
                action_text(&action, number(&disk, "backing-images")),
                plain(),
            ),
            (to_copy, plain()),
            (or_dash(destination), plain()),
        ]);
    }
    out.push_str(&table.render(colour));
    let mut rows = Vec::new();
    // A live clone: how consistent its copy will be.
    match text(plan, "consistency").as_str() {
        "filesystem" => rows.push((
            gettext("Consistency"),
            gettext("filesystems frozen by the guest agent"),
        )),
        "crash" => rows.push((
            gettext("Consistency"),
            gettext("as after a power cut (no guest agent answers)"),
        )),
        _ => {}
    }
    rows.extend([
        (
            gettext("UEFI variables"),
            copy_text(
                &sub_dict(plan, "nvram"),
                &gettext("made from the firmware's template at the first start"),
            ),
        ),
        (
            gettext("TPM state"),
            copy_text(&sub_dict(plan, "tpm"), &gettext("made at the first start")),
        ),
        (
            gettext("To copy"),
            bytes_text(number(plan, "bytes-to-copy")),
        ),
    ]);
    out.push_str(&key_values(&rows));
    out
}

fn render(
    source: &str,
    plans: &[(String, Dict)],
    filesystems: &[Filesystem],
    fits: bool,
    colour: bool,
) -> String {
    let mut parts: Vec<String> = plans
        .iter()
        .map(|(name, plan)| render_one(source, name, plan, colour))
        .collect();
    if !filesystems.is_empty() {
        let mut table = Table::new(&[
            (gettext("FOLDER"), false),
            (gettext("NEEDED"), true),
            (gettext("FREE"), true),
            (gettext("FITS"), false),
        ]);
        for f in filesystems {
            let (fits, style) = if f.fits() {
                (gettext("yes"), Style::new().green())
            } else {
                (gettext("no"), Style::new().red().bold())
            };
            table.push(vec![
                (f.folder.clone(), Style::new()),
                (bytes_text(f.needed), Style::new()),
                (bytes_text(f.free), Style::new()),
                (fits, style),
            ]);
        }
        parts.push(format!(
            "{}\n{}",
            gettext("Space on the destination filesystems:"),
            table.render(colour)
        ));
    }
    // The same warning for every copy is said once.
    let mut warnings: Vec<String> = Vec::new();
    for w in plans.iter().flat_map(|(_, p)| texts(p, "warnings")) {
        if !warnings.contains(&w) {
            warnings.push(w);
        }
    }
    if !warnings.is_empty() {
        let mut w = format!("{}\n", gettext("Warnings:"));
        for line in warnings {
            w.push_str(&format!("  - {line}\n"));
        }
        parts.push(w);
    }
    let destinations = plans
        .first()
        .map(|(_, p)| dicts(p, "destinations"))
        .unwrap_or_default();
    if !destinations.is_empty() {
        let mut d = format!("{}\n", gettext("Folders --target-dir accepts:"));
        for dest in destinations {
            let pool = text(&dest, "pool");
            let about = if pool.is_empty() {
                gettext("{free} free")
            } else {
                gettext("pool {pool}, {free} free").replace("{pool}", &pool)
            }
            .replace("{free}", &bytes_text(number(&dest, "free-bytes")));
            d.push_str(&format!("  {} ({about})\n", text(&dest, "path")));
        }
        parts.push(d);
    }
    if fits {
        parts.push(format!(
            "{}\n",
            if plans.len() == 1 {
                gettext("The clone fits. Nothing was made.")
            } else {
                gettext("The clones fit. Nothing was made.")
            }
        ));
    }
    parts.join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;
    use zbus::zvariant::{OwnedValue, Value};

    fn dict(entries: Vec<(&str, Value<'_>)>) -> Dict {
        entries
            .into_iter()
            .map(|(k, v)| (k.to_string(), OwnedValue::try_from(v).expect("plain")))
            .collect()
    }

    fn plan(fits: bool, filesystems: Vec<(&str, u64, u64)>) -> Dict {
        let fs: Vec<Dict> = filesystems
            .into_iter()
            .map(|(folder, free, needed)| {
                dict(vec![
                    ("folder", folder.into()),
                    ("free-bytes", free.into()),
                    ("bytes-needed", needed.into()),
                    ("fits", (needed <= free).into()),
                ])
            })
            .collect();
        dict(vec![("fits", fits.into()), ("filesystems", fs.into())])
    }

    #[test]
    fn copies_add_up_their_bytes_on_each_filesystem() {
        let one = plan(true, vec![("/a", 100, 40), ("/b", 1000, 1)]);
        let plans = vec![
            ("x-1".to_string(), one.clone()),
            ("x-2".to_string(), one.clone()),
        ];
        let fs = Filesystem::of(&plans);
        assert_eq!(fs.len(), 2);
        assert_eq!(
            (fs[0].folder.as_str(), fs[0].needed, fs[0].free),
            ("/a", 80, 100)
        );
        assert!(fs.iter().all(Filesystem::fits));
        // Three of them need 120 bytes where 100 are free: they do not fit,
        // though each alone would.
        let plans = vec![
            ("x-1".to_string(), one.clone()),
            ("x-2".to_string(), one.clone()),
            ("x-3".to_string(), one),
        ];
        let fs = Filesystem::of(&plans);
        assert!(!fs[0].fits() && fs[1].fits());
        let sentence = does_not_fit(fs.iter().find(|f| !f.fits()), 3);
        assert!(
            sentence.starts_with("The clones do not fit: /a has 100 B free but need 120 B."),
            "{sentence}"
        );
    }

    #[test]
    fn the_services_verdict_on_a_filesystem_counts_too() {
        // The service says no though the bytes alone would fit (it may know
        // more, such as reserved space): vmclonectl does not overrule it.
        let fs = dict(vec![
            ("folder", "/a".into()),
            ("free-bytes", 100u64.into()),
            ("bytes-needed", 20u64.into()),
            ("fits", false.into()),
        ]);
        let plan = dict(vec![
            ("fits", false.into()),
            ("filesystems", vec![fs].into()),
        ]);
        let plans = vec![("x".to_string(), plan)];
        let fs = Filesystem::of(&plans);
        assert!(!fs[0].fits());
        let text = render("src", &plans, &fs, false, false);
        let row = text
            .lines()
            .find(|l| l.starts_with("/a "))
            .expect("its row");
        assert_eq!(
            row.split_whitespace().collect::<Vec<_>>(),
            ["/a", "20", "B", "100", "B", "no"]
        );
    }

    #[test]
    fn disk_actions_in_words() {
        assert_eq!(action_text("copy", 0), "copy");
        assert_eq!(action_text("copy", 1), "copy with 1 backing image");
        assert_eq!(action_text("reflink", 2), "reflink with 2 backing images");
        assert_eq!(action_text("overlay", 0), "linked overlay");
        assert_eq!(action_text("something-new", 0), "something-new");
    }
}
