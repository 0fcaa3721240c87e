//! Reports with the rows they point to, in one statement.
//!
//! A report's plan, country and platform, and its totals, are at most one row each: joined to
//! the report, they cost a few columns more in the statement that reads the report instead of
//! four statements of their own in the next round. The loaders of a query (`plangraph-api`)
//! read reports this way and hand the joined rows to the loaders that would have read them.

use sea_orm::sea_query::{Expr, SimpleExpr};
use sea_orm::{
    ColumnTrait, Condition, DbErr, EntityTrait, FromQueryResult, IdenStatic, Iterable, JoinType,
    QueryFilter, QueryOrder, QueryResult, QuerySelect, QueryTrait, Select,
};

use crate::entities::{country, plan, platform, report, report_totals};
use crate::lookups::key_condition;
use crate::positional::Positional;
use crate::{ReportQuery, Store, StoreError};

/// A report and the rows it points to; `None` where the report has none (a regional report
/// has no country) or the row is missing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReportWithParts {
    pub report: report::Model,
    pub plan: Option<plan::Model>,
    pub country: Option<country::Model>,
    pub platform: Option<platform::Model>,
    pub totals: Option<report_totals::Model>,
}

// Column prefixes of the joined tables: a double underscore, which no column name holds, so
// `plan__id` never meets the report's own `plan_id`.
const PLAN: &str = "plan__";
const COUNTRY: &str = "country__";
const PLATFORM: &str = "platform__";
const TOTALS: &str = "totals__";

/// A joined row that does not decode (a missing one is all nulls) is `None`: its loader then
/// reads it with a statement of its own, so a broken join costs a statement, never a wrong
/// answer.
impl FromQueryResult for ReportWithParts {
    fn from_query_result(row: &QueryResult, _prefix: &str) -> Result<Self, DbErr> {
        let report = report::Model::at(row, 0).map_err(DbErr::from)?;
        let mut offset = report::Model::FIELDS.len();
        let mut joined = |fields: usize| {
            let at = offset;
            offset += fields;
            at
        };
        let plan = plan::Model::at(row, joined(plan::Model::FIELDS.len())).ok();
        let country = country::Model::at(row, joined(country::Model::FIELDS.len())).ok();
        let platform = platform::Model::at(row, joined(platform::Model::FIELDS.len())).ok();
        let totals = report_totals::Model::at(row, joined(report_totals::Model::FIELDS.len())).ok();
        Ok(Self {
            report,
            plan,
            country,
            platform,
            totals,
        })
    }
}

/// `select` (of reports) with the joined rows' columns, prefixed.
fn with_parts(select: Select<report::Entity>) -> Select<report::Entity> {
    fn columns<E: EntityTrait>(
        mut select: Select<report::Entity>,
        prefix: &str,
    ) -> Select<report::Entity> {
        for column in E::Column::iter() {
            select = select.column_as(
                Expr::col((E::default(), column)),
                format!("{prefix}{}", column.as_str()),
            );
        }
        select
    }
    /// The row the report's `from` column points to, joined (none: nulls).
    fn pointed_to<E: EntityTrait>(
        select: Select<report::Entity>,
        from: report::Column,
        to: E::Column,
    ) -> Select<report::Entity> {
        let relation = report::Entity::belongs_to(E::default()).from(from).to(to);
        select.join(JoinType::LeftJoin, relation.into())
    }
    let select = pointed_to::<plan::Entity>(select, report::Column::PlanId, plan::Column::Id);
    let select =
        pointed_to::<country::Entity>(select, report::Column::CountryId, country::Column::Id);
    let select =
        pointed_to::<platform::Entity>(select, report::Column::PlatformId, platform::Column::Id);
    let select = select.join_rev(
        JoinType::LeftJoin,
        report_totals::Entity::belongs_to(report::Entity)
            .from(report_totals::Column::ReportId)
            .to(report::Column::Id)
            .into(),
    );
    let select = columns::<plan::Entity>(select, PLAN);
    let select = columns::<country::Entity>(select, COUNTRY);
    let select = columns::<platform::Entity>(select, PLATFORM);
    columns::<report_totals::Entity>(select, TOTALS)
}

/// Reports whose id is one of `ids`, with their parts: an `IN` list, one parameter per id (the
/// child tables' statement reads one or two reports this way, see `report_children`).
pub(crate) fn select_by_ids(ids: &[i32]) -> Select<report::Entity> {
    with_parts(report::Entity::find().filter(report::Column::Id.is_in(ids.iter().copied())))
}

impl Store {
    /// Reports by id, with their parts: one statement.
    pub async fn reports_with_parts_by_id(
        &self,
        ids: &[i32],
    ) -> Result<Vec<ReportWithParts>, StoreError> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let reader = self.reader();
        let select = report::Entity::find().filter(key_condition::<report::Entity, _>(
            sea_orm::ConnectionTrait::get_database_backend(&reader),
            report::Column::Id,
            ids,
        ));
        Ok(with_parts(select)
            .into_model::<ReportWithParts>()
            .all(&reader)
            .await?)
    }

    /// Reports of each country, newest year first, with their parts: one statement.
    pub async fn reports_with_parts_by_country(
        &self,
        country_ids: &[i32],
    ) -> Result<Vec<ReportWithParts>, StoreError> {
        if country_ids.is_empty() {
            return Ok(Vec::new());
        }
        let reader = self.reader();
        let select = report::Entity::find()
            .filter(key_condition::<report::Entity, _>(
                sea_orm::ConnectionTrait::get_database_backend(&reader),
                report::Column::CountryId,
                country_ids,
            ))
            .order_by_desc(report::Column::Year)
            .order_by_asc(report::Column::Kind)
            .order_by_asc(report::Column::Id);
        Ok(with_parts(select)
            .into_model::<ReportWithParts>()
            .all(&reader)
            .await?)
    }

    /// One page of reports by id, after `after` (exclusive), at most `limit`, with their
    /// parts: one statement. With `with_count`, also how many reports the filter matches
    /// (`totalCount`), read in the same statement (a column of every row, so `None` when the
    /// page is empty).
    pub async fn reports_page_with_parts(
        &self,
        filter: &ReportQuery,
        after: Option<i32>,
        limit: u64,
        with_count: bool,
    ) -> Result<(Vec<ReportWithParts>, Option<u64>), StoreError> {
        let mut cond: Condition = Self::report_condition(filter);
        if let Some(after) = after {
            cond = cond.add(report::Column::Id.gt(after));
        }
        let select = report::Entity::find()
            .filter(cond)
            .order_by_asc(report::Column::Id)
            .limit(limit);
        if !with_count {
            let rows = with_parts(select)
                .into_model::<ReportWithParts>()
                .all(&self.reader())
                .await?;
            return Ok((rows, None));
        }
        // The count, a sub-query of its own (the filter without the cursor), evaluated once
        // for the statement: a statement and a round trip fewer than counting apart.
        let count = report::Entity::find()
            .select_only()
            .column_as(report::Column::Id.count(), "n")
            .filter(Self::report_condition(filter))
            .into_query();
        let select = with_parts(select).column_as(
            SimpleExpr::SubQuery(None, Box::new(count.into())),
            TOTAL_COUNT,
        );
        let rows = select.into_model::<WithCount>().all(&self.reader()).await?;
        let total = rows.first().map(|row| row.1);
        Ok((rows.into_iter().map(|row| row.0).collect(), total))
    }
}

/// The column of a page's rows that holds the filter's count.
const TOTAL_COUNT: &str = "total_count";

/// A report with its parts, and the count of the page it is on.
struct WithCount(ReportWithParts, u64);

impl FromQueryResult for WithCount {
    fn from_query_result(row: &QueryResult, prefix: &str) -> Result<Self, DbErr> {
        let report = ReportWithParts::from_query_result(row, prefix)?;
        let count: i64 = row.try_get("", TOTAL_COUNT)?;
        let count = u64::try_from(count).map_err(|e| DbErr::Type(format!("a count: {e}")))?;
        Ok(Self(report, count))
    }
}
