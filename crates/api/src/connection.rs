//! Relay connections: page sizes, opaque cursors with one spelling each, and the fields every
//! connection carries beside its edges.

use async_graphql::SimpleObject;
use async_graphql::connection::{Connection, CursorType, Edge};

use crate::error::ApiError;

/// Page size when `first` is not given, and the largest page a client may ask for.
pub const DEFAULT_PAGE: i32 = 20;
pub const MAX_PAGE: i32 = 100;

/// Position in a listing ordered by id. Opaque to clients; only the server reads it.
#[derive(Debug, Clone, Copy)]
pub struct IdCursor(i32);

/// A decimal number as this server writes it in cursors: digits only, no sign, no leading
/// zeros.
pub(crate) fn canonical_number(digits: &str) -> Option<i64> {
    let canonical = !digits.is_empty()
        && digits.bytes().all(|b| b.is_ascii_digit())
        && (digits == "0" || !digits.starts_with('0'));
    canonical.then(|| digits.parse().ok()).flatten()
}

/// A cursor this server did not issue.
#[derive(Debug)]
pub struct BadCursor;

impl std::fmt::Display for BadCursor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("not a cursor of this server")
    }
}

impl CursorType for IdCursor {
    type Error = BadCursor;

    /// Only the form this server writes: `id:` and a decimal id without sign or leading
    /// zeros, so one position has one cursor (pages are kept by their cursor, and `id:+07`
    /// beside `id:7` would only be a client minting keys).
    fn decode_cursor(s: &str) -> Result<Self, Self::Error> {
        s.strip_prefix("id:")
            .and_then(canonical_number)
            .and_then(|n| i32::try_from(n).ok())
            .map(IdCursor)
            .ok_or(BadCursor)
    }

    fn encode_cursor(&self) -> String {
        format!("id:{}", self.0)
    }
}

/// Fields every connection carries beside its edges.
#[derive(SimpleObject, Debug)]
pub struct ConnectionTotals {
    /// Number of nodes matching the filter, over all pages.
    total_count: i64,
}

impl ConnectionTotals {
    pub(crate) fn new(total: u64) -> Self {
        Self {
            total_count: i64::try_from(total).unwrap_or(i64::MAX),
        }
    }
}

pub(crate) fn page_size(first: Option<i32>) -> Result<u64, ApiError> {
    match first.unwrap_or(DEFAULT_PAGE) {
        n @ 0..=MAX_PAGE => Ok(n as u64),
        n => Err(ApiError::BadUserInput(format!(
            "`first` must be between 0 and {MAX_PAGE}, got {n}"
        ))),
    }
}

pub(crate) fn after_id(after: Option<String>) -> Result<Option<i32>, ApiError> {
    after
        .map(|c| {
            IdCursor::decode_cursor(&c)
                .map(|IdCursor(id)| id)
                .map_err(|_| ApiError::InvalidCursor(c.chars().take(64).collect()))
        })
        .transpose()
}

/// Builds a page from `limit + 1` rows: the extra row only says there is a next page.
pub(crate) fn page<M, N: async_graphql::OutputType>(
    mut rows: Vec<M>,
    limit: u64,
    has_previous: bool,
    total: u64,
    id: impl Fn(&M) -> i32,
    node: impl Fn(M) -> N,
) -> Connection<IdCursor, N, ConnectionTotals> {
    let has_next = rows.len() as u64 > limit;
    rows.truncate(usize::try_from(limit).unwrap_or(usize::MAX));
    let mut connection =
        Connection::with_additional_fields(has_previous, has_next, ConnectionTotals::new(total));
    connection.edges.extend(
        rows.into_iter()
            .map(|row| Edge::new(IdCursor(id(&row)), node(row))),
    );
    connection
}
