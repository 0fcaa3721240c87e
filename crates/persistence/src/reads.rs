//! Batched reads: each method takes a set of keys and answers with one statement (two for
//! sections with their paragraphs), whatever the number of keys.

use sea_orm::sea_query::{Expr, ExprTrait, Func, LikeExpr, Query};
use sea_orm::{
    ColumnTrait, Condition, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder, QuerySelect,
};

use crate::entities::{
    country, footnote, organization, partner_count, plan, platform, report, report_organization,
    report_totals, sector, sector_figures, share, source_link,
};
use crate::lookups::{SectionWithParagraphs, find_in, organizations_in, sections_in};
use crate::{Store, StoreError};

/// The escape character of `LIKE` patterns built from a client's text.
const LIKE_ESCAPE: char = '\\';

/// `text` as a `LIKE` pattern that matches exactly it: the wildcards `%` and `_`, and the
/// escape character itself, escaped with [`LIKE_ESCAPE`].
fn escape_like(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        if c == '%' || c == '_' || c == LIKE_ESCAPE {
            escaped.push(LIKE_ESCAPE);
        }
        escaped.push(c);
    }
    escaped
}

/// Filter of the `reports` listing; every set field must match.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct ReportQuery {
    pub country_iso3: Option<String>,
    pub plan_code: Option<String>,
    pub year: Option<i32>,
    pub kind: Option<String>,
    pub synthetic: Option<bool>,
}

/// Filter of the `organizations` listing.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OrganizationQuery {
    /// Case-insensitive substring of the name or acronym.
    pub name_contains: Option<String>,
    pub refugee_and_migrant_led: Option<bool>,
}

impl Store {
    /// All countries that have a report, by name.
    pub async fn countries(&self) -> Result<Vec<country::Model>, StoreError> {
        Ok(country::Entity::find()
            .order_by_asc(country::Column::Name)
            .all(&self.reader())
            .await?)
    }

    pub async fn countries_by_id(&self, ids: &[i32]) -> Result<Vec<country::Model>, StoreError> {
        find_in::<country::Entity, _>(&self.reader(), country::Column::Id, ids, &[]).await
    }

    pub async fn countries_by_iso3(
        &self,
        codes: &[String],
    ) -> Result<Vec<country::Model>, StoreError> {
        find_in::<country::Entity, _>(&self.reader(), country::Column::Iso3, codes, &[]).await
    }

    pub async fn platforms_by_id(&self, ids: &[i32]) -> Result<Vec<platform::Model>, StoreError> {
        find_in::<platform::Entity, _>(&self.reader(), platform::Column::Id, ids, &[]).await
    }

    pub async fn platforms_by_code(
        &self,
        codes: &[String],
    ) -> Result<Vec<platform::Model>, StoreError> {
        find_in::<platform::Entity, _>(&self.reader(), platform::Column::Code, codes, &[]).await
    }

    pub async fn plans_by_code(&self, codes: &[String]) -> Result<Vec<plan::Model>, StoreError> {
        find_in::<plan::Entity, _>(&self.reader(), plan::Column::Code, codes, &[]).await
    }

    /// Organisations by FTS id, whatever the letter case (keys given in lower case).
    pub async fn organizations_by_fts_id(
        &self,
        lower_ids: &[String],
    ) -> Result<Vec<organization::Model>, StoreError> {
        if lower_ids.is_empty() {
            return Ok(Vec::new());
        }
        Ok(organization::Entity::find()
            .filter(
                Expr::expr(Func::lower(Expr::col(organization::Column::FtsId)))
                    .is_in(lower_ids.iter().cloned()),
            )
            .all(&self.reader())
            .await?)
    }

    /// Organisations whose name is exactly one of `names` (for an imported document's
    /// organisations that have no FTS id).
    pub async fn organizations_by_name(
        &self,
        names: &[String],
    ) -> Result<Vec<organization::Model>, StoreError> {
        find_in::<organization::Entity, _>(
            &self.reader(),
            organization::Column::Name,
            names,
            &[organization::Column::Id],
        )
        .await
    }

    pub async fn organizations_by_id(
        &self,
        ids: &[i32],
    ) -> Result<Vec<organization::Model>, StoreError> {
        find_in::<organization::Entity, _>(&self.reader(), organization::Column::Id, ids, &[]).await
    }

    pub async fn plans_by_id(&self, ids: &[i32]) -> Result<Vec<plan::Model>, StoreError> {
        find_in::<plan::Entity, _>(&self.reader(), plan::Column::Id, ids, &[]).await
    }

    pub async fn reports_by_id(&self, ids: &[i32]) -> Result<Vec<report::Model>, StoreError> {
        find_in::<report::Entity, _>(&self.reader(), report::Column::Id, ids, &[]).await
    }

    pub(crate) fn report_condition(filter: &ReportQuery) -> Condition {
        let mut cond = Condition::all();
        if let Some(iso3) = &filter.country_iso3 {
            cond = cond.add(
                report::Column::CountryId.in_subquery(
                    Query::select()
                        .column(country::Column::Id)
                        .from(country::Entity)
                        .and_where(Expr::col(country::Column::Iso3).eq(iso3.as_str()))
                        .to_owned(),
                ),
            );
        }
        if let Some(code) = &filter.plan_code {
            cond = cond.add(
                report::Column::PlanId.in_subquery(
                    Query::select()
                        .column(plan::Column::Id)
                        .from(plan::Entity)
                        .and_where(Expr::col(plan::Column::Code).eq(code.as_str()))
                        .to_owned(),
                ),
            );
        }
        if let Some(year) = filter.year {
            cond = cond.add(report::Column::Year.eq(year));
        }
        if let Some(kind) = &filter.kind {
            cond = cond.add(report::Column::Kind.eq(kind.as_str()));
        }
        if let Some(synthetic) = filter.synthetic {
            cond = cond.add(report::Column::Synthetic.eq(synthetic));
        }
        cond
    }

    /// Every report's natural key and id: (country code, year, kind, id); two statements.
    pub async fn report_keys(&self) -> Result<Vec<(String, i32, String, i32)>, StoreError> {
        let countries: std::collections::HashMap<i32, String> = country::Entity::find()
            .all(&self.reader())
            .await?
            .into_iter()
            .map(|c| (c.id, c.iso3))
            .collect();
        Ok(report::Entity::find()
            .all(&self.reader())
            .await?
            .into_iter()
            .filter_map(|r| {
                let iso3 = countries.get(&r.country_id?)?.clone();
                Some((iso3, r.year, r.kind, r.id))
            })
            .collect())
    }

    pub async fn reports_count(&self, filter: &ReportQuery) -> Result<u64, StoreError> {
        Ok(report::Entity::find()
            .filter(Self::report_condition(filter))
            .count(&self.reader())
            .await?)
    }

    pub async fn totals_by_report(
        &self,
        ids: &[i32],
    ) -> Result<Vec<report_totals::Model>, StoreError> {
        find_in::<report_totals::Entity, _>(
            &self.reader(),
            report_totals::Column::ReportId,
            ids,
            &[],
        )
        .await
    }

    pub async fn sector_figures_by_report(
        &self,
        ids: &[i32],
    ) -> Result<Vec<sector_figures::Model>, StoreError> {
        find_in::<sector_figures::Entity, _>(
            &self.reader(),
            sector_figures::Column::ReportId,
            ids,
            &[
                sector_figures::Column::ReportId,
                sector_figures::Column::Position,
            ],
        )
        .await
    }

    /// Every sector and sub-sector, in template order.
    pub async fn sectors(&self) -> Result<Vec<sector::Model>, StoreError> {
        Ok(sector::Entity::find()
            .order_by_asc(sector::Column::Position)
            .all(&self.reader())
            .await?)
    }

    pub async fn sectors_by_id(&self, ids: &[i32]) -> Result<Vec<sector::Model>, StoreError> {
        find_in::<sector::Entity, _>(&self.reader(), sector::Column::Id, ids, &[]).await
    }

    pub async fn sectors_by_code(
        &self,
        codes: &[String],
    ) -> Result<Vec<sector::Model>, StoreError> {
        find_in::<sector::Entity, _>(&self.reader(), sector::Column::Code, codes, &[]).await
    }

    pub async fn sectors_by_parent(
        &self,
        parent_ids: &[i32],
    ) -> Result<Vec<sector::Model>, StoreError> {
        find_in::<sector::Entity, _>(
            &self.reader(),
            sector::Column::ParentId,
            parent_ids,
            &[sector::Column::Position],
        )
        .await
    }

    pub async fn shares_by_report(&self, ids: &[i32]) -> Result<Vec<share::Model>, StoreError> {
        find_in::<share::Entity, _>(
            &self.reader(),
            share::Column::ReportId,
            ids,
            &[
                share::Column::ReportId,
                share::Column::Dimension,
                share::Column::Position,
            ],
        )
        .await
    }

    pub async fn partner_counts_by_report(
        &self,
        ids: &[i32],
    ) -> Result<Vec<partner_count::Model>, StoreError> {
        find_in::<partner_count::Entity, _>(
            &self.reader(),
            partner_count::Column::ReportId,
            ids,
            &[partner_count::Column::ReportId, partner_count::Column::Id],
        )
        .await
    }

    pub async fn footnotes_by_report(
        &self,
        ids: &[i32],
    ) -> Result<Vec<footnote::Model>, StoreError> {
        find_in::<footnote::Entity, _>(
            &self.reader(),
            footnote::Column::ReportId,
            ids,
            &[footnote::Column::ReportId, footnote::Column::Position],
        )
        .await
    }

    pub async fn sources_by_report(
        &self,
        ids: &[i32],
    ) -> Result<Vec<source_link::Model>, StoreError> {
        find_in::<source_link::Entity, _>(
            &self.reader(),
            source_link::Column::ReportId,
            ids,
            &[source_link::Column::ReportId, source_link::Column::Position],
        )
        .await
    }

    /// Sections of each report with their paragraphs: two statements for any number of reports.
    pub async fn sections_by_report(
        &self,
        ids: &[i32],
    ) -> Result<Vec<SectionWithParagraphs>, StoreError> {
        sections_in(&self.reader(), ids).await
    }

    /// Organizations linked to each report, with the link's role (PARTNER or DONOR).
    pub async fn organizations_by_report(
        &self,
        ids: &[i32],
    ) -> Result<Vec<(report_organization::Model, organization::Model)>, StoreError> {
        organizations_in(&self.reader(), ids).await
    }

    fn organization_condition(filter: &OrganizationQuery) -> Condition {
        let mut cond = Condition::all();
        if let Some(text) = &filter.name_contains {
            // The text is matched as typed: `%` and `_` in it are themselves, not wildcards.
            let pattern = format!("%{}%", escape_like(&text.to_lowercase()));
            cond = cond.add(
                Condition::any()
                    .add(
                        Expr::expr(Func::lower(Expr::col(organization::Column::Name)))
                            .like(LikeExpr::new(pattern.clone()).escape(LIKE_ESCAPE)),
                    )
                    .add(
                        Expr::expr(Func::lower(Expr::col(organization::Column::Acronym)))
                            .like(LikeExpr::new(pattern).escape(LIKE_ESCAPE)),
                    ),
            );
        }
        if let Some(led) = filter.refugee_and_migrant_led {
            cond = cond.add(organization::Column::RefugeeAndMigrantLed.eq(led));
        }
        cond
    }

    pub async fn organizations_page(
        &self,
        filter: &OrganizationQuery,
        after: Option<i32>,
        limit: u64,
    ) -> Result<Vec<organization::Model>, StoreError> {
        let mut cond = Self::organization_condition(filter);
        if let Some(after) = after {
            cond = cond.add(organization::Column::Id.gt(after));
        }
        Ok(organization::Entity::find()
            .filter(cond)
            .order_by_asc(organization::Column::Id)
            .limit(limit)
            .all(&self.reader())
            .await?)
    }

    pub async fn organizations_count(&self, filter: &OrganizationQuery) -> Result<u64, StoreError> {
        Ok(organization::Entity::find()
            .filter(Self::organization_condition(filter))
            .count(&self.reader())
            .await?)
    }

    /// True when no report is stored yet (the server then loads the bundled one).
    pub async fn has_reports(&self) -> Result<bool, StoreError> {
        Ok(report::Entity::find()
            .limit(1)
            .count(&self.reader())
            .await?
            > 0)
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn like_wildcards_in_a_clients_text_are_escaped() {
        assert_eq!(super::escape_like("50%_a\\b"), "50\\%\\_a\\\\b");
        assert_eq!(super::escape_like("plain"), "plain");
    }
}
