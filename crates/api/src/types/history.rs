//! Pages of a report's or an organisation's history, newest first.

use async_graphql::connection::{Connection, CursorType, Edge};

use super::*;
use crate::connection::{ConnectionTotals, page_size};
use crate::loaders::{HistoryCount, HistoryPage};

/// Position in a history, newest first. Opaque to clients.
#[derive(Debug, Clone, Copy)]
pub struct RevisionCursor(i64);

impl CursorType for RevisionCursor {
    type Error = crate::connection::BadCursor;

    fn decode_cursor(s: &str) -> Result<Self, Self::Error> {
        s.strip_prefix("rev:")
            .and_then(crate::connection::canonical_number)
            .map(RevisionCursor)
            .ok_or(crate::connection::BadCursor)
    }

    fn encode_cursor(&self) -> String {
        format!("rev:{}", self.0)
    }
}

pub(crate) type HistoryConnection = Connection<RevisionCursor, Change, ConnectionTotals>;

/// A page of a report's or an organisation's history, newest first, through the request's
/// loaders (so a list of reports with their histories costs one statement, not one each).
pub(crate) async fn history_page(
    ctx: &Context<'_>,
    owner: HistoryOwner,
    id: i32,
    first: Option<i32>,
    after: Option<String>,
) -> Result<HistoryConnection> {
    let limit = page_size(first)?;
    let before = after
        .map(|c| {
            RevisionCursor::decode_cursor(&c)
                .map(|RevisionCursor(r)| r)
                .map_err(|_| ApiError::InvalidCursor(c.chars().take(64).collect()))
        })
        .transpose()?;
    let loaders = loader(ctx)?;
    let page = loaders
        .load_one(HistoryPage {
            owner,
            id,
            before,
            limit: limit + 1,
        })
        .await?
        .unwrap_or_default();
    // A page holds at most a few megabytes of recorded values, and all the pages of a request
    // together at most its history budget: a page cut by either is shorter than `first` (it
    // may be empty), and says there is more.
    let mut rows = page.changes;
    let has_next = page.cut || rows.len() as u64 > limit;
    rows.truncate(usize::try_from(limit).unwrap_or(usize::MAX));
    // Counted only when asked for: a count is a statement of its own.
    let total = if ctx.look_ahead().field("totalCount").exists() {
        loaders
            .load_one(HistoryCount { owner, id })
            .await?
            .unwrap_or_default()
    } else {
        0
    };
    let mut connection = Connection::with_additional_fields(
        before.is_some(),
        has_next,
        ConnectionTotals::new(total),
    );
    connection.edges.extend(
        rows.into_iter()
            .map(|r| Edge::new(RevisionCursor(r.revision), Change::new(r))),
    );
    Ok(connection)
}
