//! Reading the API's JSON answer: every value the pages show is a string as printed or a
//! number the API gives; a missing one shows as "—", never as a figure made up here.

use serde_json::Value;

/// The text of `value` (a string, or a number written as JSON writes it), or `None`.
pub fn text(value: &Value) -> Option<String> {
    match value {
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// [`text`], or "—" for a value the report does not have.
pub fn shown(value: &Value) -> String {
    text(value).unwrap_or_else(|| "—".to_owned())
}

/// A percentage for a bar: the printed one as a number, kept within 0–100 for the bar only
/// (the text next to it keeps what was printed, 101.5% included).
pub fn bar(value: &Value) -> Option<f64> {
    value.as_f64().map(|p| p.clamp(0.0, 100.0))
}

/// Words for an enum value as the API writes it (`REFUGEE_AND_MIGRANT_LED`).
pub fn words(value: &Value) -> String {
    let raw = value
        .as_str()
        .unwrap_or_default()
        .to_lowercase()
        .replace('_', " ");
    let mut chars = raw.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// A list in the answer, or none.
pub fn list(value: &Value) -> &[Value] {
    value.as_array().map_or(&[], Vec::as_slice)
}
