//! GraphQL object types. Each wraps a storage model and resolves its relationships through the
//! request's DataLoader, never with a query of its own.
//!
//! One room, several files: the places (countries, platforms, plans, sectors), a report and
//! what it prints, organisations, changes, and history pages. They refer to each other as the
//! graph does (a report has a history of changes, a change names its report), which is why
//! they share this module rather than import each other across the crate.

mod change;
mod history;
mod organizations;
mod places;
mod reports;

pub use change::{Change, FieldChangeObject, FiguresChange};
pub(crate) use history::{HistoryConnection, history_page};
pub use organizations::Organization;
pub use places::{Country, Plan, Platform, Sector};
pub use reports::{Report, ReportTotals, SectorFigures};
pub(crate) use reports::{child_tables, load_children};

use std::sync::Arc;

use async_graphql::{Context, ID, Lookahead, Object, Result, SimpleObject};
use plangraph_persistence::entities::{
    country, footnote, organization, partner_count, plan, platform, report, report_totals, sector,
    sector_figures, share, source_link,
};
use plangraph_persistence::{ChildTables, HistoryOwner, SectionWithParagraphs, Store};

use crate::enums::{
    LinkPlacement, OrganizationRole, PartnerRole, PlatformScope, ReportKind, SectionKind,
    ShareBasis, ShareDimension,
};
use crate::error::ApiError;
use crate::loaders::{
    ChildrenOf, CountryById, FootnotesOfReport, OrganizationsOfReport, PartnerCountsOfReport,
    PlanById, PlatformById, ReportsOfCountry, Row, SectionsOfReport, SectorById,
    SectorFiguresOfReport, SharesOfReport, SourcesOfReport, SubSectorsOf, TotalsOfReport,
};
use crate::loaders::{loader, rows};
use crate::scalars::{Date, revision};

/// People counts fit GraphQL's 32-bit `Int`; a larger stored value is a corrupt store.
fn people(value: i64) -> Result<i32> {
    i32::try_from(value).map_err(|_| ApiError::corrupt("people count", &value.to_string()).into())
}

/// Money travels as `Float` (whole dollars; exact up to 2^53).
fn money(value: i64) -> f64 {
    value as f64
}

fn percent(hundredths: i64) -> f64 {
    hundredths as f64 / 100.0
}

/// A ratio as a percentage rounded to one decimal, as reports print them.
fn computed_percent(part: i64, whole: i64) -> Option<f64> {
    (whole != 0).then(|| (part as f64 * 1000.0 / whole as f64).round() / 10.0)
}
