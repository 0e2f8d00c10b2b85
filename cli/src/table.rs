//! Aligned text tables; colour only when stdout is a terminal.

use console::{measure_text_width, Style};

pub struct Table {
    headers: Vec<String>,
    rows: Vec<Vec<(String, Style)>>,
    /// Columns aligned right (numbers).
    right: Vec<bool>,
}

impl Table {
    pub fn new(headers: &[(String, bool)]) -> Table {
        Table {
            headers: headers.iter().map(|(h, _)| h.clone()).collect(),
            rows: Vec::new(),
            right: headers.iter().map(|&(_, r)| r).collect(),
        }
    }

    pub fn push(&mut self, row: Vec<(String, Style)>) {
        self.rows.push(row);
    }

    /// The table as text; `colour` applies the cells' styles and a bold header.
    pub fn render(&self, colour: bool) -> String {
        let widths: Vec<usize> = (0..self.headers.len())
            .map(|c| {
                self.rows
                    .iter()
                    .map(|r| measure_text_width(&r[c].0))
                    .chain([measure_text_width(&self.headers[c])])
                    .max()
                    .unwrap_or(0)
            })
            .collect();
        let mut out = String::new();
        let header_style = Style::new().bold();
        let header: Vec<(String, Style)> = self
            .headers
            .iter()
            .map(|h| (h.clone(), header_style.clone()))
            .collect();
        for row in std::iter::once(&header).chain(&self.rows) {
            let cells: Vec<String> = row
                .iter()
                .enumerate()
                .map(|(c, (text, style))| {
                    let pad = " ".repeat(widths[c] - measure_text_width(text));
                    let shown = if colour {
                        style.apply_to(text).force_styling(true).to_string()
                    } else {
                        text.clone()
                    };
                    match (self.right[c], c + 1 == row.len()) {
                        (true, _) => format!("{pad}{shown}"),
                        (false, true) => shown,
                        (false, false) => format!("{shown}{pad}"),
                    }
                })
                .collect();
            out.push_str(cells.join("  ").trim_end());
            out.push('\n');
        }
        out
    }
}

/// A cell's text, or `-` for nothing (an empty cell would shift the words of its row).
pub fn or_dash(text: String) -> String {
    if text.is_empty() {
        "-".into()
    } else {
        text
    }
}

/// `Key:  value` lines with the values aligned (a value may go on over
/// more lines, e.g. an indented table).
pub fn key_values(rows: &[(String, String)]) -> String {
    let width = rows
        .iter()
        .map(|(k, _)| console::measure_text_width(k))
        .max()
        .unwrap_or(0);
    rows.iter()
        .map(|(key, value)| {
            let pad = " ".repeat(width - console::measure_text_width(key));
            format!("{key}:{pad}  {value}\n")
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_line_up_and_plain_text_has_no_escapes() {
        let mut t = Table::new(&[
            ("NAME".into(), false),
            ("N".into(), true),
            ("X".into(), false),
        ]);
        t.push(vec![
            ("größer".into(), Style::new()),
            ("10".into(), Style::new()),
            ("a".into(), Style::new().red()),
        ]);
        t.push(vec![
            ("b".into(), Style::new()),
            ("2".into(), Style::new()),
            ("".into(), Style::new()),
        ]);
        assert_eq!(
            t.render(false),
            "NAME     N  X\ngrößer  10  a\nb        2\n"
        );
        assert!(t.render(true).contains("\u{1b}["));
    }
}
