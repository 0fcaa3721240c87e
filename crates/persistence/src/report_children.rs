//! A report's child tables, every one a query asks for, in one statement (Postgres).
//!
//! Each child table of a report (its sector rows, shares, partner counts, organisations,
//! sections, footnotes, sources) is keyed by the report. Read table by table, a report in full
//! depth is nine statements (the sectors of its rows a round later, their sub-sectors a round
//! after that); on Postgres each costs a round trip and a statement's fixed work on both sides,
//! more than reading its few rows. Here every table the query asks for is one column of one
//! statement, its rows aggregated as JSON arrays (`json_agg(json_build_array(…) ORDER BY …)`,
//! in the order its own look-up gives). The loaders of a query (`plangraph-api`) hand the rows
//! to the loaders that would have read each table.
//!
//! The report itself, with the rows it points to ([`ReportWithParts`]), can be read in the same
//! statement ([`ChildTables::REPORT`]): a report in full depth is then one statement, as it is
//! for PostGraphile.
//!
//! Only for one or two reports ([`MAX_REPORTS_READ_TOGETHER`]): rows cost Postgres more as
//! JSON than as plain rows, so a longer list is read table by table. SQLite answers [`None`]
//! too: its statements are calls into the process, with no round trip to save.

use std::collections::HashMap;
use std::sync::{LazyLock, Mutex, PoisonError};

use sea_orm::{
    ConnectionTrait, DbBackend, DbErr, EntityTrait, FromQueryResult, IdenStatic, Iterable,
    QueryResult, QueryTrait, Statement, Value,
};
use serde::de::DeserializeOwned;

use crate::entities::{
    footnote, narrative_section, organization, partner_count, report_organization, sector,
    sector_figures, share, source_link,
};
use crate::lookups::SectionWithParagraphs;
use crate::report_parts::{self, ReportWithParts};
use crate::{Store, StoreError};

/// Which of a report's child tables to read (a set; `|` joins two).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct ChildTables(u16);

impl ChildTables {
    pub const NONE: Self = Self(0);
    /// The sector rows.
    pub const SECTORS: Self = Self(1);
    /// The sectors the sector rows are rows of, their parents and their sub-sectors.
    pub const ROW_SECTORS: Self = Self(1 << 7);
    /// Age and gender, and population type shares.
    pub const SHARES: Self = Self(1 << 1);
    pub const PARTNER_COUNTS: Self = Self(1 << 2);
    /// Partners and donors, with the links' roles.
    pub const ORGANIZATIONS: Self = Self(1 << 3);
    /// Narrative sections with their paragraphs.
    pub const SECTIONS: Self = Self(1 << 4);
    pub const FOOTNOTES: Self = Self(1 << 5);
    pub const SOURCES: Self = Self(1 << 6);
    /// The report's own row, with its plan, country, platform and totals joined: not a child
    /// table, but read with them it saves the report's statement.
    pub const REPORT: Self = Self(1 << 8);

    pub fn contains(self, other: Self) -> bool {
        self.0 & other.0 == other.0
    }

    /// Each table of the set, alone.
    pub fn each(self) -> impl Iterator<Item = Self> {
        (0..9)
            .map(|bit| Self(1 << bit))
            .filter(move |table| self.contains(*table))
    }

    /// Statements these tables cost read one by one.
    fn statements(self) -> u32 {
        self.0.count_ones()
    }

    /// Whether reading these tables together for `reports` reports costs less than reading
    /// them one by one (on Postgres; see [`MAX_REPORTS_READ_TOGETHER`]).
    pub fn worth_reading_together(self, reports: usize) -> bool {
        (1..=MAX_REPORTS_READ_TOGETHER).contains(&reports) && self.statements() >= 2
    }
}

/// Most reports whose child tables are read together. Rows as JSON cost Postgres more than
/// plain rows (1,326 sector rows: 4.9 ms as JSON arrays, 0.9 ms plain, so about 3 µs a row).
/// A statement saved is worth more than its execution: read table by table, the report in
/// full depth cost Postgres 2.1 ms of CPU a request, of which its ten statements executed
/// 0.7 ms; and the server its own share per statement. A report in full depth (a hundred-odd
/// rows, seven statements saved) gains; a dashboard's hundred reports (a statement saved
/// for thousands of rows) would lose.
pub const MAX_REPORTS_READ_TOGETHER: usize = 2;

impl std::ops::BitOr for ChildTables {
    type Output = Self;
    fn bitor(self, other: Self) -> Self {
        Self(self.0 | other.0)
    }
}

impl std::ops::BitOrAssign for ChildTables {
    fn bitor_assign(&mut self, other: Self) {
        self.0 |= other.0;
    }
}

/// The child rows of one report; `None` for a table not asked for, an empty list for one
/// asked for where the report has no rows.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReportChildren {
    pub report_id: i32,
    /// The report with its parts, when [`ChildTables::REPORT`] was asked for.
    pub report: Option<ReportWithParts>,
    pub sector_figures: Option<Vec<sector_figures::Model>>,
    /// The sectors the sector rows are rows of, their parents and their sub-sectors.
    pub sectors: Option<Vec<sector::Model>>,
    pub shares: Option<Vec<share::Model>>,
    pub partner_counts: Option<Vec<partner_count::Model>>,
    pub organizations: Option<Vec<(report_organization::Model, organization::Model)>>,
    pub sections: Option<Vec<SectionWithParagraphs>>,
    pub footnotes: Option<Vec<footnote::Model>>,
    pub sources: Option<Vec<source_link::Model>>,
}

/// A row of `E` (aliased `alias`) as a JSON array of its columns in the model's field order,
/// which is how serde reads the model from a sequence: no column names in every row, which
/// made `row_to_json` the costliest part of the statement.
fn row<E: EntityTrait>(alias: &str) -> String {
    let columns: Vec<String> = E::Column::iter()
        .map(|column| format!("{alias}.\"{}\"", column.as_str()))
        .collect();
    format!("json_build_array({})", columns.join(", "))
}

/// The rows of `E` (a table keyed by `report_id`) of report `r`, as one JSON array, in
/// `order` (columns of the alias `t`).
fn of_report<E: EntityTrait>(order: &str) -> String {
    format!(
        "SELECT json_agg({} ORDER BY {order}) FROM {} t WHERE t.report_id = r.id",
        row::<E>("t"),
        E::default().table_name()
    )
}

/// Each table's column: its flag, its name in the statement, and the JSON aggregate of a
/// report `r`'s rows, ordered as the table's own look-up (`reads.rs`) orders them. Built once:
/// the text depends on the entities alone.
static AGGREGATES: LazyLock<[(ChildTables, &str, String); 8]> = LazyLock::new(|| {
    [
        (
            ChildTables::SECTORS,
            "sector_figures",
            of_report::<sector_figures::Entity>("t.position, t.id"),
        ),
        (
            ChildTables::ROW_SECTORS,
            "sectors",
            format!(
                "SELECT json_agg({} ORDER BY s.id) FROM sector s WHERE s.id IN \
                 (SELECT f.sector_id FROM sector_figures f WHERE f.report_id = r.id \
                 UNION SELECT p.parent_id FROM sector_figures f \
                 JOIN sector p ON p.id = f.sector_id WHERE f.report_id = r.id \
                 UNION SELECT c.id FROM sector_figures f \
                 JOIN sector c ON c.parent_id = f.sector_id WHERE f.report_id = r.id)",
                row::<sector::Entity>("s")
            ),
        ),
        (
            ChildTables::SHARES,
            "shares",
            of_report::<share::Entity>("t.dimension, t.position, t.id"),
        ),
        (
            ChildTables::PARTNER_COUNTS,
            "partner_counts",
            of_report::<partner_count::Entity>("t.id"),
        ),
        (
            ChildTables::ORGANIZATIONS,
            "organizations",
            format!(
                "SELECT json_agg(json_build_array({}, {}) ORDER BY l.id) \
                 FROM report_organization l JOIN organization o ON o.id = l.organization_id \
                 WHERE l.report_id = r.id",
                row::<report_organization::Entity>("l"),
                row::<organization::Entity>("o")
            ),
        ),
        (
            ChildTables::SECTIONS,
            "sections",
            format!(
                "SELECT json_agg(json_build_array({}, (SELECT coalesce(json_agg(p.body \
                 ORDER BY p.position, p.id), '[]') FROM narrative_paragraph p \
                 WHERE p.section_id = s.id)) ORDER BY s.position, s.id) \
                 FROM narrative_section s WHERE s.report_id = r.id",
                row::<narrative_section::Entity>("s")
            ),
        ),
        (
            ChildTables::FOOTNOTES,
            "footnotes",
            of_report::<footnote::Entity>("t.position, t.id"),
        ),
        (
            ChildTables::SOURCES,
            "sources",
            of_report::<source_link::Entity>("t.position, t.id"),
        ),
    ]
});

/// The statement reading `tables` for `reports` reports, one row each, their ids bound as
/// `$1`, `$2`, …; with [`ChildTables::REPORT`], each row starts with the report's own columns
/// and its parts' (as [`ReportWithParts`] reads them), and a report that does not exist has
/// no row.
///
/// One parameter per report (a `VALUES` list), not one array: Postgres plans a prepared
/// statement afresh for each execution while a plan made for the bound values looks cheaper
/// than the generic one. Over an array, the bound array's length (one) makes the generic
/// plan's guess of ten reports look ten times dearer, so each execution was planned again;
/// planning this statement of eight sub-queries took more than a third of Postgres's CPU on a
/// report in full depth (perf, 16 connections). A `VALUES` list of the same length gives both
/// plans the same estimate, so the plan is made once per connection.
fn statement(tables: ChildTables, reports: usize) -> String {
    // Built once per set of tables and number of reports, not per request (the report's part
    // joins alone are forty-odd aliased columns), and copied out for the statement, which owns
    // its text: the keys are bounded by the flags, 2^9 sets times `MAX_REPORTS_READ_TOGETHER`
    // (`worth_reading_together` refuses more), whatever the queries ask.
    type Built = HashMap<(ChildTables, usize), String>;
    static BUILT: LazyLock<Mutex<Built>> = LazyLock::new(Mutex::default);
    let mut built = BUILT.lock().unwrap_or_else(PoisonError::into_inner);
    built
        .entry((tables, reports))
        .or_insert_with(|| build_statement(tables, reports))
        .clone()
}

fn build_statement(tables: ChildTables, reports: usize) -> String {
    let mut sql = String::from("SELECT ");
    if tables.contains(ChildTables::REPORT) {
        sql.push_str("p.*, ");
    }
    sql.push_str("r.id AS report_id");
    for (flag, name, aggregate) in AGGREGATES.iter() {
        if tables.contains(*flag) {
            sql.push_str(&format!(", ({aggregate})::text AS {name}"));
        }
    }
    if tables.contains(ChildTables::REPORT) {
        // The reports' own statement (`report IN ($1, …)`, its plan the same whatever the ids,
        // as above), each row's id then naming the report its child tables are read for. Only
        // its text is used, built here over stand-in ids: the caller binds the real ones, in
        // the same order.
        let ids: Vec<i32> = (1..=reports).map(|n| n as i32).collect();
        let parts = report_parts::select_by_ids(&ids).build(DbBackend::Postgres);
        sql.push_str(&format!(
            " FROM ({}) AS p CROSS JOIN LATERAL (VALUES (p.\"id\")) AS r(id)",
            parts.sql
        ));
    } else {
        let values: Vec<String> = (1..=reports).map(|n| format!("(${n}::int4)")).collect();
        sql.push_str(&format!(" FROM (VALUES {}) AS r(id)", values.join(", ")));
    }
    sql
}

/// Column `name` of `row` as rows of `T`: `None` when not asked for, empty when the report
/// has none (`json_agg` of no rows is null).
fn column<T: DeserializeOwned>(
    row: &QueryResult,
    tables: ChildTables,
    flag: ChildTables,
    name: &str,
) -> Result<Option<Vec<T>>, StoreError> {
    if !tables.contains(flag) {
        return Ok(None);
    }
    let text: Option<String> = row.try_get("", name)?;
    let Some(text) = text else {
        return Ok(Some(Vec::new()));
    };
    serde_json::from_str(&text)
        .map(Some)
        .map_err(|e| StoreError::Query(DbErr::Type(format!("{name} of a report: {e}"))))
}

impl Store {
    /// Whether [`Store::report_children`] reads `tables` of `reports` reports in one
    /// statement: on Postgres only (see the module's doc), and only where it saves statements
    /// and the reports are few ([`ChildTables::worth_reading_together`]). Elsewhere each
    /// table is read by its own look-up, and a caller need not ask.
    pub fn reads_children_together(&self, tables: ChildTables, reports: usize) -> bool {
        self.db.get_database_backend() == DbBackend::Postgres
            && tables.worth_reading_together(reports)
    }

    /// The child rows in `tables` of each report in `ids` (one statement), or `None` where
    /// each table is better read by its own look-up
    /// ([`Store::reads_children_together`]).
    pub async fn report_children(
        &self,
        ids: &[i32],
        tables: ChildTables,
    ) -> Result<Option<Vec<ReportChildren>>, StoreError> {
        if !self.reads_children_together(tables, ids.len()) {
            return Ok(None);
        }
        let reader = self.reader();
        let rows = reader
            .query_all_raw(Statement::from_sql_and_values(
                DbBackend::Postgres,
                statement(tables, ids.len()),
                ids.iter().map(|&id| Value::from(id)),
            ))
            .await?;
        let mut children = Vec::with_capacity(rows.len());
        for row in rows {
            let sections: Option<Vec<(narrative_section::Model, Vec<String>)>> =
                column(&row, tables, ChildTables::SECTIONS, "sections")?;
            let report = match tables.contains(ChildTables::REPORT) {
                true => Some(ReportWithParts::from_query_result(&row, "")?),
                false => None,
            };
            children.push(ReportChildren {
                report_id: row.try_get("", "report_id")?,
                report,
                sector_figures: column(&row, tables, ChildTables::SECTORS, "sector_figures")?,
                sectors: column(&row, tables, ChildTables::ROW_SECTORS, "sectors")?,
                shares: column(&row, tables, ChildTables::SHARES, "shares")?,
                partner_counts: column(
                    &row,
                    tables,
                    ChildTables::PARTNER_COUNTS,
                    "partner_counts",
                )?,
                organizations: column(&row, tables, ChildTables::ORGANIZATIONS, "organizations")?,
                sections: sections.map(|sections| {
                    sections
                        .into_iter()
                        .map(|(section, paragraphs)| SectionWithParagraphs {
                            section,
                            paragraphs,
                        })
                        .collect()
                }),
                footnotes: column(&row, tables, ChildTables::FOOTNOTES, "footnotes")?,
                sources: column(&row, tables, ChildTables::SOURCES, "sources")?,
            });
        }
        Ok(Some(children))
    }
}
