//! The root `Query` type: the public read contract of DESIGN.md.

use std::sync::Arc;

use async_graphql::connection::Connection;
use async_graphql::{Context, ID, InputObject, Object, Result};
use plangraph_persistence::{ChildTables, OrganizationQuery, ReportQuery, Store};

use crate::connection::{ConnectionTotals, IdCursor, after_id, page, page_size};
use crate::enums::ReportKind;
use crate::error::ApiError;
use crate::loaders::loader;
use crate::loaders::{
    AllCountries, AllSectors, CountryByIso3, OrganizationByFtsId, OrganizationById, PageOfReports,
    PlanByCode, PlatformByCode, ReportById, ReportCount, ReportPage, SectorByCode,
};
use crate::types::{
    Country, Organization, Plan, Platform, Report, Sector, child_tables, load_children,
};

fn store<'a>(ctx: &Context<'a>) -> Result<&'a Store> {
    ctx.data::<Store>()
}

#[derive(InputObject, Debug, Default)]
pub struct ReportFilter {
    /// ISO3 code of the country the report is about.
    country_iso3: Option<String>,
    /// Plan code, e.g. `RMRP2023`.
    plan_code: Option<String>,
    year: Option<i32>,
    kind: Option<ReportKind>,
    /// Restrict to generated (true) or published (false) reports.
    synthetic: Option<bool>,
}

#[derive(InputObject, Debug, Default)]
pub struct OrganizationFilter {
    /// Case-insensitive part of the name or acronym.
    name_contains: Option<String>,
    refugee_and_migrant_led: Option<bool>,
}

#[derive(Debug, Default)]
pub struct Query;

#[Object]
impl Query {
    /// Countries that have at least one report, by name.
    async fn countries(&self, ctx: &Context<'_>) -> Result<Vec<Country>> {
        let rows = loader(ctx)?.load_one(AllCountries(())).await?;
        Ok(rows.unwrap_or_default().into_iter().map(Country).collect())
    }

    /// A country by ISO3 code (`PER`; letter case does not matter).
    async fn country(&self, ctx: &Context<'_>, iso3: String) -> Result<Option<Country>> {
        Ok(loader(ctx)?
            .load_one(CountryByIso3(iso3.to_ascii_uppercase()))
            .await?
            .map(Country))
    }

    /// Every sector and sub-sector of the RMRP template, in template order.
    async fn sectors(&self, ctx: &Context<'_>) -> Result<Vec<Sector>> {
        let rows = loader(ctx)?.load_one(AllSectors(())).await?;
        Ok(rows.unwrap_or_default().into_iter().map(Sector).collect())
    }

    /// A sector by code (`EDU`, `PRO-GBV`; letter case does not matter).
    async fn sector(&self, ctx: &Context<'_>, code: String) -> Result<Option<Sector>> {
        Ok(loader(ctx)?
            .load_one(SectorByCode(code.to_ascii_uppercase()))
            .await?
            .map(Sector))
    }

    /// A report by id; null when no report has that id.
    async fn report(&self, ctx: &Context<'_>, id: ID) -> Result<Option<Report>> {
        let Ok(id) = id.parse::<i32>() else {
            return Ok(None);
        };
        // The child tables its selection asks for with the report itself: one statement where
        // they are read together (the report's loader then takes it), else the report's own.
        let tables = child_tables(&ctx.look_ahead());
        if tables != ChildTables::NONE {
            load_children(ctx, vec![id], tables | ChildTables::REPORT).await?;
        }
        Ok(loader(ctx)?.load_one(ReportById(id)).await?.map(Report))
    }

    /// Reports in id order, filtered, a page at a time.
    async fn reports(
        &self,
        ctx: &Context<'_>,
        filter: Option<ReportFilter>,
        first: Option<i32>,
        after: Option<String>,
    ) -> Result<Connection<IdCursor, Report, ConnectionTotals>> {
        let limit = page_size(first)?;
        let after = after_id(after)?;
        let filter = filter.unwrap_or_default();
        let query = ReportQuery {
            country_iso3: filter.country_iso3.map(|c| c.to_ascii_uppercase()),
            plan_code: filter.plan_code,
            year: filter.year,
            kind: filter.kind.map(|k| k.as_stored().to_owned()),
            synthetic: filter.synthetic,
        };
        let loaders = loader(ctx)?;
        // The count only when asked for, read in the page's statement; its loader then takes
        // it (and reads it alone only for an empty page, which has no row to carry it).
        let count = ctx.look_ahead().field("totalCount").exists();
        let rows = loaders
            .load_one(ReportPage(PageOfReports {
                filter: query.clone(),
                after,
                limit: limit + 1,
                with_count: count,
            }))
            .await?
            .unwrap_or_default();
        let total = match count {
            true => loaders.load_one(ReportCount(query.clone())).await?,
            false => None,
        };
        let total = total.unwrap_or_default();
        let ahead = ctx.look_ahead();
        let tables =
            child_tables(&ahead.field("nodes")) | child_tables(&ahead.field("edges").field("node"));
        let shown: Vec<i32> = rows
            .iter()
            .take(usize::try_from(limit).unwrap_or(usize::MAX))
            .map(|r| r.id)
            .collect();
        load_children(ctx, shown, tables).await?;
        Ok(page(rows, limit, after.is_some(), total, |r| r.id, Report))
    }

    // Federation: each entity type's look-up by its key, through the request's loaders, so a
    // gateway's `_entities` with many representations of one type costs one statement.
    // async-graphql resolves the representations concurrently; an unknown key is null in place.

    #[graphql(entity)]
    async fn find_country_by_iso3(
        &self,
        ctx: &Context<'_>,
        #[graphql(key)] iso3: String,
    ) -> Result<Option<Country>> {
        self.country(ctx, iso3).await
    }

    #[graphql(entity)]
    async fn find_platform_by_code(
        &self,
        ctx: &Context<'_>,
        #[graphql(key)] code: String,
    ) -> Result<Option<Platform>> {
        Ok(loader(ctx)?
            .load_one(PlatformByCode(code.to_ascii_uppercase()))
            .await?
            .map(Platform))
    }

    #[graphql(entity)]
    async fn find_plan_by_code(
        &self,
        ctx: &Context<'_>,
        #[graphql(key)] code: String,
    ) -> Result<Option<Plan>> {
        Ok(loader(ctx)?
            .load_one(PlanByCode(code.to_ascii_uppercase()))
            .await?
            .map(Plan))
    }

    #[graphql(entity)]
    async fn find_report_by_id(
        &self,
        ctx: &Context<'_>,
        #[graphql(key)] id: ID,
    ) -> Result<Option<Report>> {
        self.report(ctx, id).await
    }

    #[graphql(entity)]
    async fn find_sector_by_code(
        &self,
        ctx: &Context<'_>,
        #[graphql(key)] code: String,
    ) -> Result<Option<Sector>> {
        self.sector(ctx, code).await
    }

    #[graphql(entity)]
    async fn find_organization_by_id(
        &self,
        ctx: &Context<'_>,
        #[graphql(key)] id: ID,
    ) -> Result<Option<Organization>> {
        let Ok(id) = id.parse::<i32>() else {
            return Ok(None);
        };
        Ok(loader(ctx)?
            .load_one(OrganizationById(id))
            .await?
            .map(Organization))
    }

    /// An organisation by its OCHA FTS id (whatever the letter case), so a funding-flows graph
    /// that knows only FTS ids can join.
    #[graphql(entity)]
    async fn find_organization_by_fts_id(
        &self,
        ctx: &Context<'_>,
        #[graphql(key)] fts_id: String,
    ) -> Result<Option<Organization>> {
        Ok(loader(ctx)?
            .load_one(OrganizationByFtsId(fts_id.to_lowercase()))
            .await?
            .map(Organization))
    }

    /// Organizations in id order, filtered, a page at a time.
    async fn organizations(
        &self,
        ctx: &Context<'_>,
        filter: Option<OrganizationFilter>,
        first: Option<i32>,
        after: Option<String>,
    ) -> Result<Connection<IdCursor, Organization, ConnectionTotals>> {
        let limit = page_size(first)?;
        let after = after_id(after)?;
        let filter = filter.unwrap_or_default();
        let query = OrganizationQuery {
            name_contains: filter.name_contains,
            refugee_and_migrant_led: filter.refugee_and_migrant_led,
        };
        let store = store(ctx)?;
        let rows = store
            .organizations_page(&query, after, limit + 1)
            .await
            .map_err(ApiError::from)?;
        let total = if ctx.look_ahead().field("totalCount").exists() {
            store
                .organizations_count(&query)
                .await
                .map_err(ApiError::from)?
        } else {
            0
        };
        Ok(page(
            rows,
            limit,
            after.is_some(),
            total,
            |o| o.id,
            |o| Organization(Arc::new(o)),
        ))
    }
}
