//! Aligned columns with a header line, as doctl prints them.

use anyhow::Result;
use serde_json::Value;

const COLUMN_GAP: &str = "   ";

pub struct Table {
    header: Vec<&'static str>,
    rows: Vec<Vec<String>>,
}

impl Table {
    pub fn new(header: &[&'static str]) -> Table {
        Table { header: header.to_vec(), rows: Vec::new() }
    }

    pub fn row(&mut self, cells: Vec<String>) {
        debug_assert_eq!(cells.len(), self.header.len(), "one cell per column");
        self.rows.push(cells);
    }

    pub fn print(&self) -> Result<()> {
        let header: Vec<String> = self.header.iter().map(|h| h.to_string()).collect();
        let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
        for row in &self.rows {
            for (width, cell) in widths.iter_mut().zip(row) {
                *width = (*width).max(cell.chars().count());
            }
        }
        for row in std::iter::once(&header).chain(&self.rows) {
            let mut line = String::new();
            for (index, (cell, width)) in row.iter().zip(&widths).enumerate() {
                if index + 1 == row.len() {
                    line.push_str(cell);
                } else {
                    line.push_str(&format!("{cell:<width$}{COLUMN_GAP}"));
                }
            }
            outln!("{}", line.trim_end());
        }
        Ok(())
    }
}

/// A JSON value as a table cell: strings bare, null empty, arrays joined with commas.
pub fn cell(value: &Value) -> String {
    match value {
        Value::Null => String::new(),
        Value::String(text) => text.clone(),
        Value::Array(items) => items.iter().map(cell).collect::<Vec<_>>().join(","),
        other => other.to_string(),
    }
}

/// A byte count from the API (`drydock.disk.size_bytes`) as "1.5 GiB".
pub fn bytes(value: &Value) -> String {
    value.as_u64().map(crate::view::bytes).unwrap_or_default()
}

/// DigitalOcean's whole or fractional gigabytes (`min_disk_size`, `size_gigabytes`).
pub fn gigabytes(value: &Value) -> String {
    match value {
        Value::Null => String::new(),
        other => format!("{} GiB", cell(other)),
    }
}

/// "2026-11-22T03:52:32Z" → "2026-11-22 03:52:32".
pub fn time(value: &Value) -> String {
    let text = cell(value);
    text.split(['.', 'Z']).next().unwrap_or(&text).replacen('T', " ", 1)
}
