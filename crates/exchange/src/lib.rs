//! Reports in and out of plangraph, in the forms analysts and other systems use:
//!
//! - [`document`]: the lossless JSON document of a report (its schema in `schema/`), and
//!   `convert` between it and the store's rows and the domain's report;
//! - [`table`]: the sector figures table as CSV, or as HXL for the Humanitarian Data Exchange;
//! - [`workbook`]: an Excel workbook, a sheet per table;
//! - [`export`]: a selection of reports streamed out in any of them, a report at a time;
//! - [`apply`]: JSON documents and tables brought in through the store's one write path.
//!
//! The formats know the store's rows ([`plangraph_persistence::ReportRows`]) and the domain's
//! report; they know nothing of HTTP or the command line, which call them.

pub mod apply;
mod convert;
pub mod document;
pub mod error;
pub mod export;
pub mod table;
pub mod workbook;

pub use apply::{Applied, ApplyError, ApplyOptions, InputKind, detect};
pub use convert::References;
pub use error::{ExchangeError, Location, Problem};
pub use export::{Export, ExportError, Format, Selection};
