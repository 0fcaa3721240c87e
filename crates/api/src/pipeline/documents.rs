//! Parsed documents, kept by their text.
//!
//! Dashboards and partner systems send the same few documents again and again, with other
//! variables. Parsing one is a pest grammar run over every character (8–9% of the server's CPU
//! on the report in full depth with every other cache off); cloning a kept parse shares its
//! names and costs a fraction of that. PostGraphile keeps its parsed documents (and its
//! plans) the same way, so the engine-alone comparison keeps this on.
//!
//! Only queries that passed every limit are kept, weighed by their text's length, within
//! [`DOCUMENT_CACHE_BYTES`]: a client sending a new document with every request fills the
//! cache with nothing bigger than the limits allow and evicts only other documents.
//! Everything after the parse (the document's limits against the request's variables, the
//! operation's type) is checked on every request, kept or not.

use std::sync::Arc;

use async_graphql::parser::types::ExecutableDocument;
use moka::future::Cache;

/// Bytes the kept parses may take, each weighed at [`PARSE_BYTES_PER_TEXT_BYTE`] times its
/// text: a parse holds a node of a couple of hundred bytes per name, argument and selection,
/// each a few bytes of text. 32 MiB holds about 256 KB of text: hundreds of documents like the
/// benchmark's (85 bytes to 1.1 KB each).
pub(crate) const DOCUMENT_CACHE_BYTES: u64 = 32 * 1024 * 1024;

/// What a parse is taken to weigh per byte of its text (a reviewer's estimate from the AST's
/// types: a field is a ~190-byte `Positioned<Selection>` for a few bytes of text).
const PARSE_BYTES_PER_TEXT_BYTE: usize = 128;

/// The kept parses, by document text.
#[derive(Clone)]
pub(crate) struct Documents {
    parsed: Cache<Arc<str>, Arc<ExecutableDocument>>,
}

impl Documents {
    pub(crate) fn new() -> Self {
        Self {
            parsed: Cache::builder()
                .max_capacity(DOCUMENT_CACHE_BYTES)
                .weigher(|text: &Arc<str>, _| {
                    u32::try_from(text.len().saturating_mul(PARSE_BYTES_PER_TEXT_BYTE))
                        .unwrap_or(u32::MAX)
                })
                .build(),
        }
    }

    /// The kept parse of `text`: looked up once per request, by the pipeline's first stage.
    pub(crate) async fn get(&self, text: &str) -> Option<Arc<ExecutableDocument>> {
        self.parsed.get(text).await
    }

    /// Keeps the parse of `text`.
    pub(crate) async fn keep(&self, text: Arc<str>, document: Arc<ExecutableDocument>) {
        self.parsed.insert(text, document).await;
    }
}
