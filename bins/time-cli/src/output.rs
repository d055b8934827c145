//! What a command prints: its JSON with `--json`, else aligned `key  value` lines.

use std::io::Write;

use anyhow::Result;
use serde_json::Value;

/// Prints `value` as pretty JSON.
pub fn json(value: &Value) -> Result<()> {
    let mut out = std::io::stdout().lock();
    writeln!(out, "{}", serde_json::to_string_pretty(value)?)?;
    Ok(())
}

/// Prints `rows` as `key  value` lines with the values aligned.
pub fn table(rows: &[(&str, String)]) -> Result<()> {
    let width = rows.iter().map(|(k, _)| k.len()).max().unwrap_or(0);
    let mut out = std::io::stdout().lock();
    for (key, value) in rows {
        writeln!(out, "{key:<width$}  {value}")?;
    }
    Ok(())
}

/// Prints `value` as JSON when `as_json`, else `rows` as a table.
pub fn either(as_json: bool, value: &Value, rows: &[(&str, String)]) -> Result<()> {
    if as_json { json(value) } else { table(rows) }
}

/// Prints one line of text.
pub fn line(text: &str) -> Result<()> {
    writeln!(std::io::stdout().lock(), "{text}")?;
    Ok(())
}

/// The member `key` of a JSON object, or `null` when absent (indexing without a panic path).
pub fn at<'a>(value: &'a Value, key: &str) -> &'a Value {
    static NULL: Value = Value::Null;
    value.get(key).unwrap_or(&NULL)
}
