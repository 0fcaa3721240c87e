//! Storage of plangraph: sea-orm entities and the repository that reads and writes them.
//!
//! Every read takes a *set* of keys and answers in one statement, so the API's DataLoaders turn
//! a nested request into a number of statements bounded by its depth. Every write goes through
//! [`Store::write`], one transaction that records the change in the history and announces it on
//! the change feed.

pub mod entities;
mod error;
mod feed;
mod import;
mod reads;
mod rows;
mod snapshot;
mod store;
mod tokens;
mod version_gate;
mod weight;
mod write;

pub use error::{StoreError, WriteError};
pub use feed::{ChangeFilter, ChangeRecord, HistoryOwner, Version};
pub use import::{CountryRef, ImportOutcome, ReportImport};
pub use reads::{OrganizationQuery, ReportQuery, SectionWithParagraphs};
pub use rows::ReportRows;
pub use snapshot::FieldChange;
pub use store::{DEFAULT_DATABASE_URL, StatementCounter, Store, redact};
pub use tokens::{NewToken, TOKEN_PREFIX};
pub use weight::Weigh;
pub use write::{ImportOptions, WriteOutcome, WriteRequest};
