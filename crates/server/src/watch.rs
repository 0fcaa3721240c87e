//! `plangraph watch`: committed changes, as they commit, printed for a person at a terminal.
//! It follows the store's own change feed, so it sees every process's writes (Postgres: LISTEN;
//! SQLite: the file, polled), and `--after-revision` replays the history first.

use std::io::Write;

use async_graphql::futures_util::{StreamExt, pin_mut};
use plangraph_persistence::{ChangeFilter, ChangeRecord, Store};

use crate::error::CliError;

/// Values printed per change; an import changes hundreds.
const MAX_LINES: usize = 20;

/// One change as lines of text: a header, then each value before → after.
pub fn format_change(record: &ChangeRecord) -> String {
    let mut out = format!(
        "revision {} at {} by {}{}: {}\n",
        record.revision,
        record.at.to_rfc3339(),
        record.actor_label,
        record
            .token_id
            .map(|id| format!(" (token {id})"))
            .unwrap_or_default(),
        record.summary
    );
    for f in record.fields.iter().take(MAX_LINES) {
        let show = |v: &Option<String>| match v {
            Some(text) if text.chars().count() > 80 => {
                format!("\"{}…\"", text.chars().take(80).collect::<String>())
            }
            Some(text) => format!("\"{text}\""),
            None => "(none)".to_owned(),
        };
        out.push_str(&format!(
            "  {}: {} -> {}\n",
            f.path,
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
