//! Report edits: the statements each [`ReportEdit`] runs inside the write's transaction, and
//! the before-and-after reads that make its recorded change.

use plangraph_domain::access::Actor;
use plangraph_domain::edit::{ReportEdit, SectorFiguresPatch, TotalsPatch};
use plangraph_domain::reference::SectorDef;
use plangraph_domain::report::{Footnote, SectionKind, SourceLink};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, DatabaseTransaction, EntityTrait, QueryFilter, QueryOrder, Set,
};

use crate::StoreError;
use crate::entities::{
    footnote, narrative_paragraph, narrative_section, organization, partner_count, report,
    report_organization, report_totals, sector, sector_figures, share, source_link,
};
use crate::error::WriteError;
use crate::import::{footnote_rows, source_rows};
use crate::rows::ReportRows;
use crate::snapshot::{Compared, compare};
use crate::write::staged::{Staged, Target, authorize_country, check_revision, describe};

/// Applies `edit` to report `report_id`, checked against the revision the client read.
pub(crate) async fn edit(
    txn: &DatabaseTransaction,
    actor: &Actor,
    report_id: i32,
    expected: i64,
    edit: &ReportEdit,
) -> Result<Staged, WriteError> {
    let report = report::Entity::find_by_id(report_id)
        .one(txn)
        .await
        .map_err(StoreError::from)?
        .ok_or_else(|| WriteError::NotFound {
            what: "report",
            key: report_id.to_string(),
        })?;
    let before = ReportRows::load(txn, report).await?;
    // Checked before the lock already; checked again on what the transaction reads.
    authorize_country(actor, before.country.as_ref().map(|c| c.iso3.as_str()))?;
    check_revision(expected, before.report.revision)?;
    apply(txn, &before.report, edit).await?;
    let after = ReportRows::load(txn, before.report.clone()).await?;
    let Compared { after, fields, .. } = compare(Some(before), after, false).await?;
    let linked_organization = match edit {
        ReportEdit::LinkOrganization {
            organization_id, ..
        }
        | ReportEdit::UnlinkOrganization {
            organization_id, ..
        } => Some(*organization_id),
        _ => None,
    };
    Ok(Staged {
        target: Target::Report(after.report),
        linked_organization,
        kind: edit.kind(),
        summary: format!("{}: {}", edit.kind(), describe(&fields)),
        fields,
        replaced: false,
        removals: Vec::new(),
    })
}

fn big(value: u64, what: &str) -> Result<i64, StoreError> {
    i64::try_from(value).map_err(|_| StoreError::Overflow(what.to_owned()))
}

fn position(index: usize) -> Result<i32, StoreError> {
    i32::try_from(index).map_err(|_| StoreError::Overflow("position".to_owned()))
}

async fn sector_id(txn: &DatabaseTransaction, def: &SectorDef) -> Result<i32, WriteError> {
    Ok(sector::Entity::find()
        .filter(sector::Column::Code.eq(def.code))
        .one(txn)
        .await
        .map_err(StoreError::from)?
        .ok_or_else(|| StoreError::MissingReference(format!("sector {}", def.code)))?
        .id)
}

async fn section_of(
    txn: &DatabaseTransaction,
    report_id: i32,
    kind: SectionKind,
) -> Result<Option<narrative_section::Model>, StoreError> {
    Ok(narrative_section::Entity::find()
        .filter(narrative_section::Column::ReportId.eq(report_id))
        .filter(narrative_section::Column::Kind.eq(kind.as_str()))
        .one(txn)
        .await?)
}

/// Step 3's middle: the statements of one edit.
async fn apply(
    txn: &DatabaseTransaction,
    report: &report::Model,
    edit: &ReportEdit,
) -> Result<(), WriteError> {
    let rid = report.id;
    match edit {
        ReportEdit::Totals(patch) => apply_totals(txn, rid, patch).await,
        ReportEdit::SectorFigures { sector, patch } => {
            apply_sector_figures(txn, rid, sector, patch).await
        }
        ReportEdit::RemoveSectorFigures { sector } => {
            let sid = sector_id(txn, sector).await?;
            let removed = sector_figures::Entity::delete_many()
                .filter(sector_figures::Column::ReportId.eq(rid))
                .filter(sector_figures::Column::SectorId.eq(sid))
                .exec(txn)
                .await
                .map_err(StoreError::from)?;
            if removed.rows_affected == 0 {
                return Err(WriteError::NotFound {
                    what: "sector row",
                    key: sector.code.to_owned(),
                });
            }
            Ok(())
        }
        ReportEdit::Shares { dimension, shares } => {
            share::Entity::delete_many()
                .filter(share::Column::ReportId.eq(rid))
                .filter(share::Column::Dimension.eq(dimension.as_str()))
                .exec(txn)
                .await
                .map_err(StoreError::from)?;
            let mut rows = Vec::with_capacity(shares.len());
            for (i, s) in shares.iter().enumerate() {
                rows.push(share::ActiveModel {
                    report_id: Set(rid),
                    dimension: Set(dimension.as_str().to_owned()),
                    position: Set(position(i + 1)?),
                    label: Set(s.label.as_ref().map(|l| l.as_str().to_owned())),
                    percent_hundredths: Set(big(s.percent.hundredths(), "share")?),
                    percent_printed: Set(s.percent.printed().to_owned()),
                    basis: Set(s.basis.map(|b| b.as_str().to_owned())),
                    ..Default::default()
                });
            }
            insert_all(txn, rows).await
        }
        ReportEdit::PartnerCount { role, count } => {
            let count = i32::try_from(*count)
                .map_err(|_| StoreError::Overflow("partner count".to_owned()))?;
            let found = partner_count::Entity::find()
                .filter(partner_count::Column::ReportId.eq(rid))
                .filter(partner_count::Column::Role.eq(role.as_str()))
                .one(txn)
                .await
                .map_err(StoreError::from)?;
            match found {
                Some(row) => {
                    let mut active: partner_count::ActiveModel = row.into();
                    active.count = Set(count);
                    active.printed = Set(count.to_string());
                    active.update(txn).await.map_err(StoreError::from)?;
                }
                None => {
                    partner_count::ActiveModel {
                        report_id: Set(rid),
                        role: Set(role.as_str().to_owned()),
                        count: Set(count),
                        footnote_marker: Set(None),
                        printed: Set(count.to_string()),
                        ..Default::default()
                    }
                    .insert(txn)
                    .await
                    .map_err(StoreError::from)?;
                }
            }
            Ok(())
        }
        ReportEdit::Section {
            kind,
            title,
            paragraphs,
        } => {
            let section = match section_of(txn, rid, *kind).await? {
                Some(found) => {
                    delete_paragraphs(txn, found.id).await?;
                    if let Some(title) = title {
                        let mut active: narrative_section::ActiveModel = found.into();
                        active.title = Set(title.as_str().to_owned());
                        active.update(txn).await.map_err(StoreError::from)?
                    } else {
                        found
                    }
                }
                None => {
                    let next = narrative_section::Entity::find()
                        .filter(narrative_section::Column::ReportId.eq(rid))
                        .order_by_desc(narrative_section::Column::Position)
                        .one(txn)
                        .await
                        .map_err(StoreError::from)?
                        .map_or(0, |s| s.position + 1);
                    narrative_section::ActiveModel {
                        report_id: Set(rid),
                        kind: Set(kind.as_str().to_owned()),
                        title: Set(title
                            .as_ref()
                            .map_or(kind.heading(), |t| t.as_str())
                            .to_owned()),
                        position: Set(next),
                        ..Default::default()
                    }
                    .insert(txn)
                    .await
                    .map_err(StoreError::from)?
                }
            };
            let mut rows = Vec::with_capacity(paragraphs.len());
            for (i, text) in paragraphs.iter().enumerate() {
                rows.push(narrative_paragraph::ActiveModel {
                    section_id: Set(section.id),
                    position: Set(position(i)?),
                    body: Set(text.as_str().to_owned()),
                    ..Default::default()
                });
            }
            insert_all(txn, rows).await
        }
        ReportEdit::Paragraph {
            kind,
            position: at,
            text,
        } => {
            let section =
                section_of(txn, rid, *kind)
                    .await?
                    .ok_or_else(|| WriteError::NotFound {
                        what: "section",
                        key: kind.as_str().to_owned(),
                    })?;
            let paragraphs = narrative_paragraph::Entity::find()
                .filter(narrative_paragraph::Column::SectionId.eq(section.id))
                .order_by_asc(narrative_paragraph::Column::Position)
                .all(txn)
                .await
                .map_err(StoreError::from)?;
            let index = usize::try_from(*at).unwrap_or(usize::MAX);
            if index >= 1 && index <= paragraphs.len() {
                let mut active: narrative_paragraph::ActiveModel =
                    paragraphs[index - 1].clone().into();
                active.body = Set(text.as_str().to_owned());
                active.update(txn).await.map_err(StoreError::from)?;
                Ok(())
            } else if index == paragraphs.len() + 1 {
                narrative_paragraph::ActiveModel {
                    section_id: Set(section.id),
                    position: Set(paragraphs.last().map_or(0, |p| p.position + 1)),
                    body: Set(text.as_str().to_owned()),
                    ..Default::default()
                }
                .insert(txn)
                .await
                .map_err(StoreError::from)?;
                Ok(())
            } else {
                Err(WriteError::PositionOutOfRange {
                    position: *at,
                    len: paragraphs.len(),
                })
            }
        }
        ReportEdit::RemoveSection { kind } => {
            let section =
                section_of(txn, rid, *kind)
                    .await?
                    .ok_or_else(|| WriteError::NotFound {
                        what: "section",
                        key: kind.as_str().to_owned(),
                    })?;
            delete_paragraphs(txn, section.id).await?;
            narrative_section::Entity::delete_by_id(section.id)
                .exec(txn)
                .await
                .map_err(StoreError::from)?;
            Ok(())
        }
        ReportEdit::Footnotes(notes) => replace_footnotes(txn, rid, notes).await,
        ReportEdit::Sources(links) => replace_sources(txn, rid, links).await,
        ReportEdit::LinkOrganization {
            organization_id,
            role,
        } => {
            let organization = organization::Entity::find_by_id(*organization_id)
                .one(txn)
                .await
                .map_err(StoreError::from)?
                .ok_or_else(|| WriteError::NotFound {
                    what: "organization",
                    key: organization_id.to_string(),
                })?;
            // Generated organisations belong to generated reports only, and real ones to real
            // reports: load-test data never shows up in a published report.
            if organization.synthetic != report.synthetic {
                return Err(WriteError::MixesSynthetic {
                    report_id: rid,
                    stored_synthetic: report.synthetic,
                });
            }
            let linked = report_organization::Entity::find()
                .filter(report_organization::Column::ReportId.eq(rid))
                .filter(report_organization::Column::OrganizationId.eq(*organization_id))
                .filter(report_organization::Column::Role.eq(role.as_str()))
                .one(txn)
                .await
                .map_err(StoreError::from)?;
            if linked.is_none() {
                report_organization::ActiveModel {
                    report_id: Set(rid),
                    organization_id: Set(*organization_id),
                    role: Set(role.as_str().to_owned()),
                    ..Default::default()
                }
                .insert(txn)
                .await
                .map_err(StoreError::from)?;
            }
            Ok(())
        }
        ReportEdit::UnlinkOrganization {
            organization_id,
            role,
        } => {
            report_organization::Entity::delete_many()
                .filter(report_organization::Column::ReportId.eq(rid))
                .filter(report_organization::Column::OrganizationId.eq(*organization_id))
                .filter(report_organization::Column::Role.eq(role.as_str()))
                .exec(txn)
                .await
                .map_err(StoreError::from)?;
            Ok(())
        }
    }
}

async fn insert_all<A>(txn: &DatabaseTransaction, rows: Vec<A>) -> Result<(), WriteError>
where
    A: ActiveModelTrait + Send,
{
    Ok(crate::import::insert_all(txn, rows).await?)
}

async fn delete_paragraphs(txn: &DatabaseTransaction, section_id: i32) -> Result<(), StoreError> {
    narrative_paragraph::Entity::delete_many()
        .filter(narrative_paragraph::Column::SectionId.eq(section_id))
        .exec(txn)
        .await?;
    Ok(())
}

async fn apply_totals(
    txn: &DatabaseTransaction,
    rid: i32,
    patch: &TotalsPatch,
) -> Result<(), WriteError> {
    let row = report_totals::Entity::find_by_id(rid)
        .one(txn)
        .await
        .map_err(StoreError::from)?
        .ok_or_else(|| WriteError::NotFound {
            what: "totals of report",
            key: rid.to_string(),
        })?;
    let mut a: report_totals::ActiveModel = row.into();
    if let Some(p) = &patch.people_in_need {
        a.people_in_need = Set(big(p.value(), "people in need")?);
        a.people_in_need_printed = Set(p.printed().to_owned());
    }
    if let Some(p) = &patch.people_targeted {
        a.people_targeted = Set(big(p.value(), "people targeted")?);
        a.people_targeted_printed = Set(p.printed().to_owned());
    }
    if let Some(p) = &patch.people_reached {
        a.people_reached = Set(big(p.value(), "people reached")?);
        a.people_reached_printed = Set(p.printed().to_owned());
    }
    if let Some(u) = &patch.requirements {
        a.requirements_usd = Set(big(u.value(), "requirements")?);
        a.requirements_printed = Set(u.printed().to_owned());
    }
    if let Some(u) = &patch.funding_received {
        a.funding_usd = Set(big(u.value(), "funding")?);
        a.funding_printed = Set(u.printed().to_owned());
    }
    if let Some(u) = &patch.unmet {
        a.unmet_usd = Set(big(u.value(), "unmet")?);
        a.unmet_printed = Set(u.printed().to_owned());
    }
    if let Some(p) = &patch.funded_percent {
        a.funded_percent_hundredths = Set(big(p.hundredths(), "% funded")?);
        a.funded_percent_printed = Set(p.printed().to_owned());
    }
    if a.is_changed() {
        a.update(txn).await.map_err(StoreError::from)?;
    }
    Ok(())
}

async fn apply_sector_figures(
    txn: &DatabaseTransaction,
    rid: i32,
    sector: &'static SectorDef,
    patch: &SectorFiguresPatch,
) -> Result<(), WriteError> {
    let sid = sector_id(txn, sector).await?;
    let found = sector_figures::Entity::find()
        .filter(sector_figures::Column::ReportId.eq(rid))
        .filter(sector_figures::Column::SectorId.eq(sid))
        .one(txn)
        .await
        .map_err(StoreError::from)?;
    let mut a: sector_figures::ActiveModel = match found {
        Some(row) => row.into(),
        None => {
            let missing = patch.missing();
            if !missing.is_empty() {
                return Err(WriteError::IncompleteFigures {
                    sector: sector.code,
                    missing,
                });
            }
            let next = sector_figures::Entity::find()
                .filter(sector_figures::Column::ReportId.eq(rid))
                .order_by_desc(sector_figures::Column::Position)
                .one(txn)
                .await
                .map_err(StoreError::from)?
                .map_or(0, |r| r.position + 1);
            sector_figures::ActiveModel {
                report_id: Set(rid),
                sector_id: Set(sid),
                position: Set(next),
                printed_heading: Set(sector.printed_heading.to_owned()),
                ..Default::default()
            }
        }
    };
    if let Some(p) = &patch.people_targeted {
        a.people_targeted = Set(big(p.value(), "people targeted")?);
        a.people_targeted_printed = Set(p.printed().to_owned());
    }
    if let Some(p) = &patch.people_reached {
        a.people_reached = Set(big(p.value(), "people reached")?);
        a.people_reached_printed = Set(p.printed().to_owned());
    }
    if let Some(p) = &patch.reached_percent {
        a.reached_percent_hundredths = Set(big(p.hundredths(), "% reached")?);
        a.reached_percent_printed = Set(p.printed().to_owned());
    }
    if let Some(u) = &patch.requirements {
        a.requirements_usd = Set(big(u.value(), "requirements")?);
        a.requirements_printed = Set(u.printed().to_owned());
    }
    if let Some(u) = &patch.funding {
        a.funding_usd = Set(big(u.value(), "funding")?);
        a.funding_printed = Set(u.printed().to_owned());
    }
    if let Some(p) = &patch.funded_percent {
        a.funded_percent_hundredths = Set(big(p.hundredths(), "% funded")?);
        a.funded_percent_printed = Set(p.printed().to_owned());
    }
    a.save(txn).await.map_err(StoreError::from)?;
    Ok(())
}

async fn replace_footnotes(
    txn: &DatabaseTransaction,
    rid: i32,
    notes: &[Footnote],
) -> Result<(), WriteError> {
    footnote::Entity::delete_many()
        .filter(footnote::Column::ReportId.eq(rid))
        .exec(txn)
        .await
        .map_err(StoreError::from)?;
    insert_all(txn, footnote_rows(rid, notes)?).await
}

async fn replace_sources(
    txn: &DatabaseTransaction,
    rid: i32,
    links: &[SourceLink],
) -> Result<(), WriteError> {
    source_link::Entity::delete_many()
        .filter(source_link::Column::ReportId.eq(rid))
        .exec(txn)
        .await
        .map_err(StoreError::from)?;
    insert_all(txn, source_rows(rid, links)?).await
}
