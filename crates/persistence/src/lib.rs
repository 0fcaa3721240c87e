//! Storage of plangraph: sea-orm entities and the repository that reads and writes them.
//!
//! Every read takes a *set* of keys and answers in one statement, so the API's DataLoaders turn
//! a nested request into a number of statements bounded by its depth. Every write goes through
//! [`Store`], one transaction per import.

pub mod entities;
mod error;
mod import;
mod reads;
mod store;

pub use error::StoreError;
pub use import::{CountryRef, ImportOutcome, ReportImport};
pub use reads::{OrganizationQuery, ReportQuery, SectionWithParagraphs};
pub use store::{DEFAULT_DATABASE_URL, StatementCounter, Store, redact};
