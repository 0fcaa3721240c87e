//! Where reports are about: countries, platforms, plans, and the sectors of the template.

use super::*;

pub struct Country(pub Row<country::Model>);

#[Object]
impl Country {
    /// ISO 3166-1 alpha-3 code.
    async fn iso3(&self) -> &str {
        &self.0.iso3
    }

    async fn name(&self) -> &str {
        &self.0.name
    }

    /// False for Aruba and Curaçao, constituent countries of the Kingdom of the Netherlands.
    async fn sovereign(&self) -> bool {
        self.0.sovereign
    }

    async fn platform(&self, ctx: &Context<'_>) -> Result<Option<Platform>> {
        let Some(id) = self.0.platform_id else {
            return Ok(None);
        };
        Ok(loader(ctx)?.load_one(PlatformById(id)).await?.map(Platform))
    }

    /// Reports about this country, newest year first.
    async fn reports(
        &self,
        ctx: &Context<'_>,
        year: Option<i32>,
        kind: Option<ReportKind>,
    ) -> Result<Vec<Report>> {
        let reports: Vec<_> = rows(ctx, ReportsOfCountry(self.0.id))
            .await?
            .into_iter()
            .filter(|r| year.is_none_or(|y| r.year == y))
            .filter(|r| kind.is_none_or(|k| r.kind == k.as_stored()))
            .collect();
        let tables = child_tables(&ctx.look_ahead());
        let ids: Vec<i32> = reports.iter().map(|r| r.id).collect();
        load_children(ctx, ids, tables).await?;
        Ok(reports.into_iter().map(Report).collect())
    }

    async fn report(
        &self,
        ctx: &Context<'_>,
        year: i32,
        #[graphql(default_with = "ReportKind::EndYear")] kind: ReportKind,
    ) -> Result<Option<Report>> {
        let reports = rows(ctx, ReportsOfCountry(self.0.id)).await?;
        let Some(report) = reports
            .into_iter()
            .find(|r| r.year == year && r.kind == kind.as_stored())
        else {
            return Ok(None);
        };
        load_children(ctx, vec![report.id], child_tables(&ctx.look_ahead())).await?;
        Ok(Some(Report(report)))
    }
}

/// A coordination platform: national (GTRM in Peru), sub-regional or regional.
pub struct Platform(pub Row<platform::Model>);

#[Object]
impl Platform {
    async fn code(&self) -> &str {
        &self.0.code
    }

    async fn name(&self) -> &str {
        &self.0.name
    }

    async fn scope(&self) -> Result<PlatformScope> {
        Ok(PlatformScope::from_stored(&self.0.scope)?)
    }
}

/// A response plan (RMRP 2023).
pub struct Plan(pub Row<plan::Model>);

#[Object]
impl Plan {
    async fn code(&self) -> &str {
        &self.0.code
    }

    async fn name(&self) -> &str {
        &self.0.name
    }

    async fn start_year(&self) -> i32 {
        self.0.start_year
    }

    async fn end_year(&self) -> i32 {
        self.0.end_year
    }
}

/// A sector of the RMRP template; sub-sectors (Child Protection, GBV, Human Trafficking and
/// Smuggling) have Protection as parent.
pub struct Sector(pub Row<sector::Model>);

#[Object]
impl Sector {
    async fn code(&self) -> &str {
        &self.0.code
    }

    async fn name(&self) -> &str {
        &self.0.name
    }

    async fn parent(&self, ctx: &Context<'_>) -> Result<Option<Sector>> {
        let Some(id) = self.0.parent_id else {
            return Ok(None);
        };
        Ok(loader(ctx)?.load_one(SectorById(id)).await?.map(Sector))
    }

    async fn sub_sectors(&self, ctx: &Context<'_>) -> Result<Vec<Sector>> {
        Ok(rows(ctx, SubSectorsOf(self.0.id))
            .await?
            .into_iter()
            .map(Sector)
            .collect())
    }
}
