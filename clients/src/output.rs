//! How the CLI prints: a table for people, `--json` for scripts.

use comfy_table::{Table, presets::UTF8_BORDERS_ONLY};

/// A table with the given header and rows, ready to print.
pub fn table<I, R>(header: &[&str], rows: I) -> Table
where
    I: IntoIterator<Item = R>,
    R: IntoIterator<Item = String>,
{
    let mut table = Table::new();
    table.load_style(UTF8_BORDERS_ONLY).set_header(header.iter().copied());
    for row in rows {
        table.add_row(row.into_iter().collect::<Vec<_>>());
    }
    table
}

#[allow(clippy::expect_used, reason = "each expect names the invariant that makes it unreachable")]
pub fn print_json(value: &serde_json::Value) {
    println!("{}", serde_json::to_string_pretty(value).expect("JSON value serializes"));
}
