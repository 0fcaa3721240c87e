//! Importing a report: the rows a document becomes. The transaction around them is
//! [`crate::Store::write`]'s (see `write::imports`).

use chrono::Utc;
use plangraph_domain::edit::OrganizationRole;
use plangraph_domain::importer::PreparedImport;
use plangraph_domain::reference;
use plangraph_domain::report::{Footnote, ReportDocument, SourceLink};
use sea_orm::sea_query::{Expr, ExprTrait, IntoCondition, Query};
use sea_orm::{ActiveModelTrait, ColumnTrait, DatabaseTransaction, EntityTrait, QueryFilter, Set};

use crate::StoreError;
use crate::entities::{
    country, footnote, narrative_paragraph, narrative_section, partner_count, plan, platform,
    report, report_organization, report_totals, sector, sector_figures, share, source_link,
};

/// The country a report is about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CountryRef {
    pub iso3: String,
    pub name: String,
    pub platform_code: Option<String>,
    pub sovereign: bool,
}

impl CountryRef {
    /// The reference entry for an R4V country.
    pub fn from_reference(def: &reference::CountryDef) -> Self {
        Self {
            iso3: def.iso3.to_owned(),
            name: def.name.to_owned(),
            platform_code: def.platform.map(str::to_owned),
            sovereign: def.sovereign,
        }
    }
}

/// What to import: the document, whom it is about and where it came from.
#[derive(Debug, Clone)]
pub struct ReportImport<'a> {
    pub document: &'a ReportDocument,
    pub country: CountryRef,
    pub source_name: String,
    pub source_sha256: String,
    /// True only for generated load-test data, so it is never mistaken for a published report.
    pub synthetic: bool,
    /// Organisations (by id) to link to the report, in order: the importer reads none from a
    /// published text, `plangraph generate` links its synthetic partners and donors.
    pub organizations: Vec<(i32, OrganizationRole)>,
}

impl<'a> ReportImport<'a> {
    /// A report the importer read and checked: a published report, never synthetic.
    pub fn published(prepared: &'a PreparedImport) -> Self {
        Self {
            document: &prepared.document,
            country: CountryRef::from_reference(prepared.country),
            source_name: prepared.source_name.clone(),
            source_sha256: prepared.sha256.clone(),
            synthetic: false,
            organizations: Vec::new(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ImportOutcome {
    pub report_id: i32,
    /// True when an earlier import of the same report was replaced in place.
    pub replaced: bool,
}

fn big(value: u64, what: &str) -> Result<i64, StoreError> {
    i64::try_from(value).map_err(|_| StoreError::Overflow(what.to_owned()))
}

fn small(value: usize, what: &str) -> Result<i32, StoreError> {
    i32::try_from(value).map_err(|_| StoreError::Overflow(what.to_owned()))
}

async fn platform_id(
    txn: &DatabaseTransaction,
    code: Option<&str>,
) -> Result<Option<i32>, StoreError> {
    let Some(code) = code else { return Ok(None) };
    let found = platform::Entity::find()
        .filter(platform::Column::Code.eq(code))
        .one(txn)
        .await?
        .ok_or_else(|| StoreError::MissingReference(format!("platform {code}")))?;
    Ok(Some(found.id))
}

async fn upsert_country(
    txn: &DatabaseTransaction,
    c: &CountryRef,
) -> Result<country::Model, StoreError> {
    let platform_id = platform_id(txn, c.platform_code.as_deref()).await?;
    let existing = country::Entity::find()
        .filter(country::Column::Iso3.eq(&c.iso3))
        .one(txn)
        .await?;
    let model = match existing {
        Some(found) => {
            let mut active: country::ActiveModel = found.into();
            active.name = Set(c.name.clone());
            active.platform_id = Set(platform_id);
            active.sovereign = Set(c.sovereign);
            active.update(txn).await?
        }
        None => {
            country::ActiveModel {
                iso3: Set(c.iso3.clone()),
                name: Set(c.name.clone()),
                platform_id: Set(platform_id),
                sovereign: Set(c.sovereign),
                ..Default::default()
            }
            .insert(txn)
            .await?
        }
    };
    Ok(model)
}

async fn upsert_plan(
    txn: &DatabaseTransaction,
    doc: &ReportDocument,
) -> Result<plan::Model, StoreError> {
    let code = doc.plan_code();
    if let Some(found) = plan::Entity::find()
        .filter(plan::Column::Code.eq(&code))
        .one(txn)
        .await?
    {
        return Ok(found);
    }
    Ok(plan::ActiveModel {
        code: Set(code),
        name: Set(format!("Refugee and Migrant Response Plan {}", doc.year)),
        start_year: Set(doc.year),
        end_year: Set(doc.year),
        ..Default::default()
    }
    .insert(txn)
    .await?)
}

/// The stored report `import` would replace, if any.
pub(crate) async fn find_existing(
    txn: &DatabaseTransaction,
    import: &ReportImport<'_>,
) -> Result<Option<report::Model>, StoreError> {
    let doc = import.document;
    let Some(country) = country::Entity::find()
        .filter(country::Column::Iso3.eq(&import.country.iso3))
        .one(txn)
        .await?
    else {
        return Ok(None);
    };
    let Some(plan) = plan::Entity::find()
        .filter(plan::Column::Code.eq(doc.plan_code()))
        .one(txn)
        .await?
    else {
        return Ok(None);
    };
    Ok(report::Entity::find()
        .filter(report::Column::CountryId.eq(country.id))
        .filter(report::Column::PlanId.eq(plan.id))
        .filter(report::Column::Kind.eq(doc.kind.as_str()))
        .filter(report::Column::Year.eq(doc.year))
        .one(txn)
        .await?)
}

/// Writes the document: into `existing` (its rows replaced, its id and revision kept) or as a
/// new report.
pub(crate) async fn write_report(
    txn: &DatabaseTransaction,
    import: &ReportImport<'_>,
    existing: Option<&report::Model>,
) -> Result<ImportOutcome, StoreError> {
    let doc = import.document;
    let country = upsert_country(txn, &import.country).await?;
    let plan = upsert_plan(txn, doc).await?;
    let replaced = existing.is_some();
    let mut active: report::ActiveModel = match existing {
        Some(found) => {
            delete_children(txn, found.id).await?;
            found.clone().into()
        }
        None => report::ActiveModel {
            revision: Set(0),
            ..Default::default()
        },
    };
    active.plan_id = Set(plan.id);
    active.platform_id = Set(country.platform_id);
    active.country_id = Set(Some(country.id));
    active.kind = Set(doc.kind.as_str().to_owned());
    active.year = Set(doc.year);
    active.title = Set(doc.title.clone());
    active.funding_source = Set(doc.funding_source.clone());
    active.funding_as_of = Set(doc.funding_as_of);
    active.funding_footnote_marker = Set(doc.funding_footnote_marker.clone());
    active.source_name = Set(import.source_name.clone());
    active.source_sha256 = Set(import.source_sha256.clone());
    active.imported_at = Set(Utc::now());
    active.synthetic = Set(import.synthetic);
    let report = if replaced {
        active.update(txn).await?
    } else {
        active.insert(txn).await?
    };
    let report_id = report.id;

    insert_children(txn, report_id, doc).await?;
    let links = import
        .organizations
        .iter()
        .map(|(organization_id, role)| report_organization::ActiveModel {
            report_id: Set(report_id),
            organization_id: Set(*organization_id),
            role: Set(role.as_str().to_owned()),
            ..Default::default()
        })
        .collect();
    insert_all(txn, links).await?;
    Ok(ImportOutcome {
        report_id,
        replaced,
    })
}

/// A report's footnotes as rows, in the order given.
pub(crate) fn footnote_rows(
    report_id: i32,
    notes: &[Footnote],
) -> Result<Vec<footnote::ActiveModel>, StoreError> {
    notes
        .iter()
        .enumerate()
        .map(|(position, f)| {
            Ok(footnote::ActiveModel {
                report_id: Set(report_id),
                position: Set(small(position, "position")?),
                marker: Set(f.marker.clone()),
                body: Set(f.text.clone()),
                ..Default::default()
            })
        })
        .collect()
}

/// A report's cited links as rows, in the order given.
pub(crate) fn source_rows(
    report_id: i32,
    links: &[SourceLink],
) -> Result<Vec<source_link::ActiveModel>, StoreError> {
    links
        .iter()
        .enumerate()
        .map(|(position, s)| {
            Ok(source_link::ActiveModel {
                report_id: Set(report_id),
                position: Set(small(position, "position")?),
                url: Set(s.url.clone()),
                label: Set(s.label.clone()),
                placement: Set(s.placement.as_str().to_owned()),
                ..Default::default()
            })
        })
        .collect()
}

/// Inserts rows in one statement; nothing to insert is no statement at all.
pub(crate) async fn insert_all<A>(txn: &DatabaseTransaction, rows: Vec<A>) -> Result<(), StoreError>
where
    A: ActiveModelTrait + Send,
{
    if rows.is_empty() {
        return Ok(());
    }
    A::Entity::insert_many(rows)
        .exec_without_returning(txn)
        .await?;
    Ok(())
}

/// Deletes the rows of `E` that `condition` selects.
async fn delete_where<E: EntityTrait>(
    txn: &DatabaseTransaction,
    condition: impl IntoCondition,
) -> Result<(), StoreError> {
    E::delete_many().filter(condition).exec(txn).await?;
    Ok(())
}

async fn delete_children(txn: &DatabaseTransaction, report_id: i32) -> Result<(), StoreError> {
    let sections_of_report = Query::select()
        .column(narrative_section::Column::Id)
        .from(narrative_section::Entity)
        .and_where(Expr::col(narrative_section::Column::ReportId).eq(report_id))
        .to_owned();
    delete_where::<narrative_paragraph::Entity>(
        txn,
        narrative_paragraph::Column::SectionId.in_subquery(sections_of_report),
    )
    .await?;
    delete_where::<narrative_section::Entity>(
        txn,
        narrative_section::Column::ReportId.eq(report_id),
    )
    .await?;
    delete_where::<report_totals::Entity>(txn, report_totals::Column::ReportId.eq(report_id))
        .await?;
    delete_where::<sector_figures::Entity>(txn, sector_figures::Column::ReportId.eq(report_id))
        .await?;
    delete_where::<share::Entity>(txn, share::Column::ReportId.eq(report_id)).await?;
    delete_where::<partner_count::Entity>(txn, partner_count::Column::ReportId.eq(report_id))
        .await?;
    delete_where::<footnote::Entity>(txn, footnote::Column::ReportId.eq(report_id)).await?;
    delete_where::<source_link::Entity>(txn, source_link::Column::ReportId.eq(report_id)).await?;
    delete_where::<report_organization::Entity>(
        txn,
        report_organization::Column::ReportId.eq(report_id),
    )
    .await
}

async fn insert_children(
    txn: &DatabaseTransaction,
    report_id: i32,
    doc: &ReportDocument,
) -> Result<(), StoreError> {
    let t = &doc.totals;
    report_totals::ActiveModel {
        report_id: Set(report_id),
        people_in_need: Set(big(t.people_in_need.value(), "people in need")?),
        people_in_need_printed: Set(t.people_in_need.printed().to_owned()),
        people_targeted: Set(big(t.people_targeted.value(), "people targeted")?),
        people_targeted_printed: Set(t.people_targeted.printed().to_owned()),
        people_reached: Set(big(t.people_reached.value(), "people reached")?),
        people_reached_printed: Set(t.people_reached.printed().to_owned()),
        requirements_usd: Set(big(t.requirements.value(), "requirements")?),
        requirements_printed: Set(t.requirements.printed().to_owned()),
        funding_usd: Set(big(t.funding_received.value(), "funding")?),
        funding_printed: Set(t.funding_received.printed().to_owned()),
        unmet_usd: Set(big(t.unmet.value(), "unmet")?),
        unmet_printed: Set(t.unmet.printed().to_owned()),
        funded_percent_hundredths: Set(big(t.funded_percent.hundredths(), "% funded")?),
        funded_percent_printed: Set(t.funded_percent.printed().to_owned()),
    }
    .insert(txn)
    .await?;

    let codes: Vec<&str> = doc.sectors.iter().map(|r| r.sector.as_str()).collect();
    let sectors = sector::Entity::find()
        .filter(sector::Column::Code.is_in(codes))
        .all(txn)
        .await?;
    let mut rows = Vec::with_capacity(doc.sectors.len());
    for (position, row) in doc.sectors.iter().enumerate() {
        let sector_id = sectors
            .iter()
            .find(|s| s.code == row.sector.as_str())
            .ok_or_else(|| StoreError::MissingReference(format!("sector {}", row.sector)))?
            .id;
        rows.push(sector_figures::ActiveModel {
            report_id: Set(report_id),
            sector_id: Set(sector_id),
            position: Set(small(position, "position")?),
            printed_heading: Set(row.printed_heading.clone()),
            people_targeted: Set(big(row.people_targeted.value(), "people targeted")?),
            people_targeted_printed: Set(row.people_targeted.printed().to_owned()),
            people_reached: Set(big(row.people_reached.value(), "people reached")?),
            people_reached_printed: Set(row.people_reached.printed().to_owned()),
            reached_percent_hundredths: Set(big(row.reached_percent.hundredths(), "% reached")?),
            reached_percent_printed: Set(row.reached_percent.printed().to_owned()),
            requirements_usd: Set(big(row.requirements.value(), "requirements")?),
            requirements_printed: Set(row.requirements.printed().to_owned()),
            funding_usd: Set(big(row.funding.value(), "funding")?),
            funding_printed: Set(row.funding.printed().to_owned()),
            funded_percent_hundredths: Set(big(row.funded_percent.hundredths(), "% funded")?),
            funded_percent_printed: Set(row.funded_percent.printed().to_owned()),
            ..Default::default()
        });
    }
    insert_all(txn, rows).await?;

    let mut shares = Vec::with_capacity(doc.shares.len());
    for s in &doc.shares {
        shares.push(share::ActiveModel {
            report_id: Set(report_id),
            dimension: Set(s.dimension.as_str().to_owned()),
            position: Set(
                i32::try_from(s.position).map_err(|_| StoreError::Overflow("position".into()))?
            ),
            label: Set(s.label.clone()),
            percent_hundredths: Set(big(s.percent.hundredths(), "share")?),
            percent_printed: Set(s.percent.printed().to_owned()),
            basis: Set(s.basis.map(|b| b.as_str().to_owned())),
            ..Default::default()
        });
    }
    insert_all(txn, shares).await?;

    let mut counts = Vec::with_capacity(doc.partner_counts.len());
    for p in &doc.partner_counts {
        counts.push(partner_count::ActiveModel {
            report_id: Set(report_id),
            role: Set(p.role.as_str().to_owned()),
            count: Set(
                i32::try_from(p.count).map_err(|_| StoreError::Overflow("partner count".into()))?
            ),
            footnote_marker: Set(p.footnote_marker.clone()),
            printed: Set(p.printed.clone()),
            ..Default::default()
        });
    }
    insert_all(txn, counts).await?;

    insert_all(txn, footnote_rows(report_id, &doc.footnotes)?).await?;
    insert_all(txn, source_rows(report_id, &doc.sources)?).await?;

    for (position, section) in doc.sections.iter().enumerate() {
        let saved = narrative_section::ActiveModel {
            report_id: Set(report_id),
            kind: Set(section.kind.as_str().to_owned()),
            title: Set(section.title.clone()),
            position: Set(small(position, "position")?),
            ..Default::default()
        }
        .insert(txn)
        .await?;
        let mut paragraphs = Vec::with_capacity(section.paragraphs.len());
        for (position, body) in section.paragraphs.iter().enumerate() {
            paragraphs.push(narrative_paragraph::ActiveModel {
                section_id: Set(saved.id),
                position: Set(small(position, "position")?),
                body: Set(body.clone()),
                ..Default::default()
            });
        }
        insert_all(txn, paragraphs).await?;
    }
    Ok(())
}
