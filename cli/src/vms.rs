//! `list`, `show`, `template`, `check-name`: one call each, printed.

use console::Style;
use gettextrs::gettext;

use crate::bus::{self, dicts, flag, number, text, Dict};
use crate::error::CliError;
use crate::size::{bytes_text, memory_text};
use crate::table::{key_values, or_dash, Table};
use crate::{json, Output};

/// The words for a VM state; the API's own token for states this version
/// does not know.
pub fn state_text(state: &str) -> String {
    match state {
        "running" => gettext("running"),
        "paused" => gettext("paused"),
        "shutoff" => gettext("shut off"),
        "crashed" => gettext("crashed"),
        "suspended" => gettext("suspended"),
        "other" => gettext("other"),
        "undefined" => gettext("undefined"),
        other => other.to_string(),
    }
}

fn state_style(state: &str) -> Style {
    match state {
        "running" => Style::new().green(),
        "paused" | "suspended" => Style::new().yellow(),
        "crashed" => Style::new().red(),
        _ => Style::new(),
    }
}

fn yes_no(b: bool) -> String {
    if b {
        gettext("yes")
    } else {
        gettext("no")
    }
}

fn is_template(vm: &Dict) -> bool {
    flag(vm, "is-template")
}

pub async fn list(
    conn: &zbus::Connection,
    out: &Output,
    as_json: bool,
    names: bool,
) -> Result<(), CliError> {
    let mut vms = bus::manager(conn).await?.list_vms().await?;
    vms.sort_by_key(|v| text(v, "name"));
    if as_json {
        let all: Vec<_> = vms.iter().map(json::dict).collect();
        out.line(&serde_json::Value::Array(all).to_string());
        return Ok(());
    }
    if names {
        let mut text_out = String::new();
        for vm in &vms {
            text_out.push_str(&text(vm, "name"));
            text_out.push('\n');
        }
        out.write(&text_out);
        return Ok(());
    }
    let mut table = Table::new(&[
        (gettext("NAME"), false),
        (gettext("STATE"), false),
        (gettext("VCPUS"), true),
        (gettext("MEMORY"), true),
        (gettext("DISKS"), true),
        (gettext("NICS"), true),
        (gettext("TEMPLATE"), false),
    ]);
    let plain = Style::new;
    for vm in &vms {
        let state = text(vm, "state");
        table.push(vec![
            (text(vm, "name"), plain()),
            (state_text(&state), state_style(&state)),
            (number(vm, "vcpus").to_string(), plain()),
            (memory_text(number(vm, "memory-mib")), plain()),
            (number(vm, "disks").to_string(), plain()),
            (number(vm, "interfaces").to_string(), plain()),
            (
                if is_template(vm) {
                    gettext("template")
                } else {
                    String::new()
                },
                Style::new().cyan(),
            ),
        ]);
    }
    out.write(&table.render(out.colour));
    Ok(())
}

/// The firmware as people call it.
fn firmware_text(firmware: &str) -> String {
    match firmware {
        "uefi" => "UEFI".into(),
        "bios" => "BIOS".into(),
        other => other.to_string(),
    }
}

/// A table under a `Key:` line, indented.
fn indented(table: &Table, colour: bool) -> String {
    table
        .render(colour)
        .lines()
        .map(|l| format!("  {l}\n"))
        .collect()
}

fn disks_table(disks: &[Dict]) -> Table {
    let mut table = Table::new(&[
        (gettext("TARGET"), false),
        (gettext("DEVICE"), false),
        (gettext("FORMAT"), false),
        (gettext("CAPACITY"), true),
        (gettext("ALLOCATED"), true),
        (gettext("SHARED"), false),
        (gettext("SOURCE"), false),
    ]);
    for d in disks {
        let source = text(d, "source");
        // An empty drive has no size.
        let size = |key: &str| {
            if source.is_empty() {
                "-".to_string()
            } else {
                bytes_text(number(d, key))
            }
        };
        table.push(vec![
            (text(d, "target"), Style::new()),
            (text(d, "device"), Style::new()),
            (or_dash(text(d, "format")), Style::new()),
            (size("capacity"), Style::new()),
            (size("allocation"), Style::new()),
            (yes_no(flag(d, "shared")), Style::new()),
            (or_dash(source), Style::new()),
        ]);
    }
    table
}

fn nics_table(nics: &[Dict]) -> Table {
    let mut table = Table::new(&[
        (gettext("TYPE"), false),
        (gettext("SOURCE"), false),
        (gettext("MAC"), false),
        (gettext("MODEL"), false),
    ]);
    for n in nics {
        table.push(
            ["type", "source", "mac", "model"]
                .iter()
                .map(|k| (or_dash(text(n, k)), Style::new()))
                .collect(),
        );
    }
    table
}

pub async fn show(
    conn: &zbus::Connection,
    out: &Output,
    vm: &str,
    as_json: bool,
) -> Result<(), CliError> {
    let vm = bus::manager(conn).await?.get_vm(vm).await?;
    if as_json {
        out.line(&json::dict(&vm).to_string());
        return Ok(());
    }
    let state = text(&vm, "state");
    let mut rows = vec![
        (gettext("Name"), text(&vm, "name")),
        (gettext("UUID"), text(&vm, "id")),
        (gettext("State"), state_text(&state)),
        (gettext("vCPUs"), number(&vm, "vcpus").to_string()),
        (gettext("Memory"), memory_text(number(&vm, "memory-mib"))),
        (gettext("Template"), yes_no(is_template(&vm))),
    ];
    // Older services send no details: only what they send is shown.
    if vm.contains_key("firmware") {
        rows.push((gettext("Firmware"), firmware_text(&text(&vm, "firmware"))));
    }
    if vm.contains_key("tpm") {
        rows.push((gettext("TPM"), yes_no(flag(&vm, "tpm"))));
    }
    // Only a running VM's agent can answer: a live clone then freezes its filesystems.
    if vm.contains_key("guest-agent") && state != "shutoff" {
        let agent = match flag(&vm, "guest-agent") {
            true => gettext("connected (a live clone is filesystem-consistent)"),
            false => gettext("not connected (a live clone is crash-consistent)"),
        };
        rows.push((gettext("Guest agent"), agent));
    }
    let lists = [
        (
            gettext("Disks"),
            "disks",
            vm.get("disk-details")
                .map(|_| disks_table(&dicts(&vm, "disk-details"))),
        ),
        (
            gettext("Network interfaces"),
            "interfaces",
            vm.get("interface-details")
                .map(|_| nics_table(&dicts(&vm, "interface-details"))),
        ),
    ];
    for (title, count_key, table) in lists {
        let count = number(&vm, count_key);
        // The count, and the table of them on the lines below.
        let mut value = count.to_string();
        if let Some(table) = table.filter(|_| count > 0) {
            value.push('\n');
            value.push_str(indented(&table, out.colour).trim_end_matches('\n'));
        }
        rows.push((title, value));
    }
    // Keys a newer service adds are shown as they come.
    const KNOWN: [&str; 13] = [
        "name",
        "id",
        "state",
        "vcpus",
        "memory-mib",
        "disks",
        "interfaces",
        "is-template",
        "firmware",
        "tpm",
        "guest-agent",
        "disk-details",
        "interface-details",
    ];
    let mut extra: Vec<&String> = vm.keys().filter(|k| !KNOWN.contains(&k.as_str())).collect();
    extra.sort();
    for key in extra {
        rows.push((key.clone(), json::value(&vm[key]).to_string()));
    }
    out.write(&key_values(&rows));
    Ok(())
}

pub async fn template(conn: &zbus::Connection, out: &Output, vm: &str) -> Result<(), CliError> {
    bus::manager(conn).await?.convert_to_template(vm).await?;
    out.line(
        &gettext("{vm} is now a template: its disk images are read-only. Linked clones: vmclonectl clone --linked {vm}")
            .replace("{vm}", vm),
    );
    Ok(())
}

pub async fn check_name(conn: &zbus::Connection, out: &Output, name: &str) -> Result<(), CliError> {
    bus::manager(conn).await?.check_name(name).await?;
    out.line(&gettext("“{name}” is a valid name, and no VM has it.").replace("{name}", name));
    Ok(())
}
