//! Storage of plangraph: sea-orm entities and the repository that reads and writes them.
//!
//! Every read takes a *set* of keys and answers in one statement, so the API's DataLoaders turn
//! a nested request into a number of statements bounded by its depth. Every write goes through
//! [`Store::write`], one transaction that records the change in the history and announces it on
//! the change feed.
//!
//! Modules depend on each other without a circle. `store` (the handle and what its clones
//! share) uses `feed`, `version_gate`, `pool` and `write::writer`, and none of them uses
//! `store`; leaves such as `field_change`, `version`, `lookups`, `background` and `telemetry`
//! use no other module of the crate but `error` and `entities`; the modules that add methods
//! to [`Store`] (`reads`, `history`, `watch`, `tokens`, `write`, `backup`) come last.

mod background;
mod backup;
mod changes;
pub mod entities;
mod error;
mod feed;
mod field_change;
mod history;
mod import;
mod lookups;
mod pool;
mod positional;
mod reads;
mod replay;
mod report_children;
mod report_parts;
mod rows;
mod session;
mod snapshot;
mod statements;
mod store;
mod telemetry;
mod tokens;
mod version;
mod version_gate;
mod watch;
mod weight;
mod whole;
mod write;

pub use backup::{BackupError, BackupSummary};
pub use changes::{ChangeFilter, ChangeRecord, HistoryOwner};
pub use error::{StoreError, WriteError};
pub use field_change::FieldChange;
pub use import::{CountryRef, ImportOutcome, ReportImport};
pub use lookups::SectionWithParagraphs;
pub use reads::{OrganizationQuery, ReportQuery};
pub use replay::{REPLAY_BYTES, REPLAY_READS, ReplayStats, replay_stats};
pub use report_children::{ChildTables, MAX_REPORTS_READ_TOGETHER, ReportChildren};
pub use report_parts::ReportWithParts;
pub use rows::ReportRows;
pub use statements::StatementCounter;
pub use store::{DEFAULT_DATABASE_URL, Store, redact};
pub use tokens::{NewToken, TOKEN_PREFIX};
pub use version::Version;
pub use weight::Weigh;
pub use whole::WholeReports;
pub use write::request::{ImportOptions, WriteOutcome, WriteRequest};
pub use write::writer::{DEFAULT_LOCK_TIMEOUT, DEFAULT_WRITE_TIMEOUT, WriteTimeouts};
