//! `list`, `show`, `template`, `check-name`: one call each, printed.

use console::Style;
use gettextrs::gettext;

use crate::bus::{self, number, text, Dict};
use crate::error::CliError;
use crate::size::memory_text;
use crate::table::Table;
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
    vm.get("is-template")
        .is_some_and(|v| matches!(**v, zbus::zvariant::Value::Bool(true)))
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
        (gettext("Disks"), number(&vm, "disks").to_string()),
        (
            gettext("Network interfaces"),
            number(&vm, "interfaces").to_string(),
        ),
        (gettext("Template"), yes_no(is_template(&vm))),
    ];
    // Keys a newer service adds are shown as they come.
    const KNOWN: [&str; 8] = [
        "name",
        "id",
        "state",
        "vcpus",
        "memory-mib",
        "disks",
        "interfaces",
        "is-template",
    ];
    let mut extra: Vec<&String> = vm.keys().filter(|k| !KNOWN.contains(&k.as_str())).collect();
    extra.sort();
    for key in extra {
        rows.push((key.clone(), json::value(&vm[key]).to_string()));
    }
    let width = rows
        .iter()
        .map(|(k, _)| console::measure_text_width(k))
        .max()
        .unwrap_or(0);
    let mut text_out = String::new();
    for (key, value) in rows {
        let pad = " ".repeat(width - console::measure_text_width(&key));
        text_out.push_str(&format!("{key}:{pad}  {value}\n"));
    }
    out.write(&text_out);
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
