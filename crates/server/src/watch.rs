//! `plangraph watch`: committed changes, as they commit, printed for a person at a terminal.
//! It follows the store's own change feed, so it sees every process's writes (Postgres: LISTEN;
//! SQLite: the file, polled), and `--after-revision` replays the history first.

use std::io::Write;

use async_graphql::futures_util::{StreamExt, pin_mut};
use plangraph_persistence::{ChangeFilter, ChangeRecord, Store};

use crate::error::CliError;

/// Values printed per change; an import changes hundreds.
const MAX_LINES: usize = 20;

/// Text from the store as one safe line: control characters (escape sequences, line breaks)
/// are shown escaped, so a stored value can neither drive the terminal nor forge a line.
fn safe(text: &str) -> String {
    text.chars()
        .flat_map(|c| {
            let escaped: Vec<char> = if c.is_control() {
                c.escape_default().collect()
            } else {
                vec![c]
            };
            escaped
        })
        .collect()
}

/// One change as lines of text: a header, then each value before → after.
pub fn format_change(record: &ChangeRecord) -> String {
    let mut out = format!(
        "revision {} at {} by {}{}: {}\n",
        record.revision,
        record.at.to_rfc3339(),
        safe(&record.actor_label),
        record
            .token_id
            .map(|id| format!(" (token {id})"))
            .unwrap_or_default(),
        safe(&record.summary)
    );
    for f in record.fields.iter().take(MAX_LINES) {
        let show = |v: &Option<String>| match v {
            Some(text) if text.chars().count() > 80 => {
                format!("\"{}…\"", safe(&text.chars().take(80).collect::<String>()))
            }
            Some(text) => format!("\"{}\"", safe(text)),
            None => "(none)".to_owned(),
        };
        out.push_str(&format!(
            "  {}: {} -> {}\n",
            safe(&f.path),
            show(&f.before),
            show(&f.after)
        ));
    }
    if record.fields.len() > MAX_LINES {
        out.push_str(&format!(
            "  … and {} more (the API's history has every one)\n",
            record.fields.len() - MAX_LINES
        ));
    }
    out
}

/// Prints matching changes until interrupted (or until `limit` changes when given).
pub async fn watch(
    store: &Store,
    filter: ChangeFilter,
    after: Option<i64>,
    limit: Option<usize>,
) -> Result<(), CliError> {
    let stream = store.watch(filter, after);
    pin_mut!(stream);
    let mut seen = 0;
    let mut out = std::io::stdout();
    while let Some(item) = stream.next().await {
        let record = item?;
        out.write_all(format_change(&record).as_bytes())
            .and_then(|()| out.flush())
            .map_err(|e| CliError::Watch(format!("cannot write to standard output: {e}")))?;
        seen += 1;
        if limit.is_some_and(|l| seen >= l) {
            break;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn stored_text_cannot_drive_the_terminal_or_forge_a_line() {
        assert_eq!(
            super::safe("Evil\u{1b}[2J\nrevision 999"),
            "Evil\\u{1b}[2J\\nrevision 999"
        );
        assert_eq!(super::safe("Perú – 54"), "Perú – 54");
    }
}
