//! Rows by sets of keys, one statement per table whatever the number of keys: the look-ups
//! every read is made of (the store's read methods, a report's rows for a write, the history's
//! records), apart from the [`crate::Store`] methods that use them.

use std::collections::HashMap;

use sea_orm::sea_query::{Expr, ExprTrait, IntoCondition, PgFunc, ValueType};
use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder, Select, Value};

use crate::StoreError;
use crate::entities::{narrative_paragraph, narrative_section, organization, report_organization};

/// A narrative section with its paragraphs in printed order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SectionWithParagraphs {
    pub section: narrative_section::Model,
    pub paragraphs: Vec<String>,
}

/// Rows of `E` whose `column` is one of `keys`, in `order`; no statement for no keys.
///
/// On Postgres the keys go as one array parameter (`= ANY($1)`), so the statement's text is the
/// same whatever the number of keys and the connection's prepared statement is reused; an
/// `IN ($1, …, $n)` list would be a new statement to parse and plan for every length. SQLite
/// has no arrays and keeps the list.
pub(crate) async fn find_in<E, V>(
    db: &impl ConnectionTrait,
    column: E::Column,
    keys: &[V],
    order: &[E::Column],
) -> Result<Vec<E::Model>, StoreError>
where
    E: EntityTrait,
    V: Into<Value> + Clone + ValueType,
{
    if keys.is_empty() {
        return Ok(Vec::new());
    }
    let condition = if db.get_database_backend() == sea_orm::DatabaseBackend::Postgres {
        let array = Value::Array(
            V::array_type(),
            Some(Box::new(keys.iter().cloned().map(Into::into).collect())),
        );
        Expr::col(column)
            .eq(PgFunc::any(Expr::val(array)))
            .into_condition()
    } else {
        column.is_in(keys.iter().cloned()).into_condition()
    };
    let mut select: Select<E> = E::find().filter(condition);
    for col in order {
        select = select.order_by_asc(*col);
    }
    Ok(select.all(db).await?)
}

/// Sections of each report with their paragraphs: two statements for any number of reports.
pub(crate) async fn sections_in(
    db: &impl ConnectionTrait,
    ids: &[i32],
) -> Result<Vec<SectionWithParagraphs>, StoreError> {
    let sections = find_in::<narrative_section::Entity, _>(
        db,
        narrative_section::Column::ReportId,
        ids,
        &[
            narrative_section::Column::ReportId,
            narrative_section::Column::Position,
        ],
    )
    .await?;
    let section_ids: Vec<i32> = sections.iter().map(|s| s.id).collect();
    let paragraphs = find_in::<narrative_paragraph::Entity, _>(
        db,
        narrative_paragraph::Column::SectionId,
        &section_ids,
        &[
            narrative_paragraph::Column::SectionId,
            narrative_paragraph::Column::Position,
        ],
    )
    .await?;
    let mut by_section: HashMap<i32, Vec<String>> = HashMap::new();
    for p in paragraphs {
        by_section.entry(p.section_id).or_default().push(p.body);
    }
    Ok(sections
        .into_iter()
        .map(|section| SectionWithParagraphs {
            paragraphs: by_section.remove(&section.id).unwrap_or_default(),
            section,
        })
        .collect())
}

/// Organizations linked to each report, with the link's role (PARTNER or DONOR).
pub(crate) async fn organizations_in(
    db: &impl ConnectionTrait,
    ids: &[i32],
) -> Result<Vec<(report_organization::Model, organization::Model)>, StoreError> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let rows = report_organization::Entity::find()
        .filter(report_organization::Column::ReportId.is_in(ids.iter().copied()))
        .order_by_asc(report_organization::Column::Id)
        .all(db)
        .await?;
    let org_ids: Vec<i32> = rows.iter().map(|r| r.organization_id).collect();
    let orgs: HashMap<i32, organization::Model> =
        find_in::<organization::Entity, _>(db, organization::Column::Id, &org_ids, &[])
            .await?
            .into_iter()
            .map(|o| (o.id, o))
            .collect();
    Ok(rows
        .into_iter()
        .filter_map(|r| orgs.get(&r.organization_id).cloned().map(|o| (r, o)))
        .collect())
}
