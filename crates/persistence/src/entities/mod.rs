//! Storage models, one module per table. These are not GraphQL types: the API crate maps them.

pub mod api_token;
pub mod change;
pub mod country;
pub mod footnote;
pub mod narrative_paragraph;
pub mod narrative_section;
pub mod organization;
pub mod partner_count;
pub mod plan;
pub mod platform;
pub mod report;
pub mod report_organization;
pub mod report_totals;
pub mod sector;
pub mod sector_figures;
pub mod share;
pub mod source_link;
pub mod store_revision;
