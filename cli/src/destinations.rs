//! `destinations`: the storage pools' folders a clone may be put in
//! (`ListDestinations`), with their free space.

use gettextrs::gettext;
use zbus::Connection;

use crate::bus::{self, number, text};
use crate::error::CliError;
use crate::size::bytes_text;
use crate::table::Table;
use crate::{json, Output};

pub async fn list(conn: &Connection, out: &Output, as_json: bool) -> Result<(), CliError> {
    let folders = bus::manager(conn).await?.list_destinations().await?;
    if as_json {
        let all: Vec<_> = folders.iter().map(json::dict).collect();
        out.line(&serde_json::Value::Array(all).to_string());
        return Ok(());
    }
    if folders.is_empty() {
        out.note(&gettext(
            "No active storage pool has a folder; clones go beside their source's disks.",
        ));
        return Ok(());
    }
    let mut table = Table::new(&[
        (gettext("FOLDER"), false),
        (gettext("POOL"), false),
        (gettext("FREE"), true),
    ]);
    let plain = console::Style::new;
    for f in &folders {
        table.push(vec![
            (text(f, "path"), plain()),
            (text(f, "pool"), plain()),
            (bytes_text(number(f, "free-bytes")), plain()),
        ]);
    }
    out.write(&table.render(out.colour));
    Ok(())
}
