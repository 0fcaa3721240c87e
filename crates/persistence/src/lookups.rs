//! Rows by sets of keys, one statement per table whatever the number of keys: the look-ups
//! every read is made of (the store's read methods, a report's rows for a write, the history's
//! records), apart from the [`crate::Store`] methods that use them.

use sea_orm::sea_query::{Expr, ExprTrait, IntoCondition, PgFunc, ValueType};
use sea_orm::{
    Condition, ConnectionTrait, DbBackend, EntityTrait, IdenStatic, Iterable, JoinType,
    PrimaryKeyToColumn, QueryFilter, QueryOrder, QuerySelect, Select, Value,
};

use crate::StoreError;
use crate::entities::{narrative_paragraph, narrative_section, organization, report_organization};
use crate::positional::{ByPosition, Positional};

/// A narrative section with its paragraphs in printed order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SectionWithParagraphs {
    pub section: narrative_section::Model,
    pub paragraphs: Vec<String>,
}

/// Rows of `E` whose `column` is one of `keys`, in `order` (ties broken by the primary key, so
/// every read of a list gives one order, as the JSON read of `report_children` does); no
/// statement for no keys.
pub(crate) async fn find_in<E, V>(
    db: &impl ConnectionTrait,
    column: E::Column,
    keys: &[V],
    order: &[E::Column],
) -> Result<Vec<E::Model>, StoreError>
where
    E: EntityTrait,
    E::Model: Positional,
    V: Into<Value> + Clone + ValueType,
{
    if keys.is_empty() {
        return Ok(Vec::new());
    }
    let condition = key_condition::<E, V>(db.get_database_backend(), column, keys);
    let mut select: Select<E> = E::find().filter(condition);
    for col in order {
        select = select.order_by_asc(*col);
    }
    if !order.is_empty() {
        let named = |key: &E::Column| order.iter().any(|col| col.as_str() == key.as_str());
        for key in E::PrimaryKey::iter().map(PrimaryKeyToColumn::into_column) {
            if !named(&key) {
                select = select.order_by_asc(key);
            }
        }
    }
    let rows = select.into_model::<ByPosition<E::Model>>().all(db).await?;
    Ok(rows.into_iter().map(|row| row.0).collect())
}

/// `E.column` is one of `keys`, qualified by its table (so it holds in a join too).
///
/// On Postgres the keys go as one array parameter (`= ANY($1)`), so the statement's text is the
/// same whatever the number of keys and the connection's prepared statement is reused; an
/// `IN ($1, …, $n)` list would be a new statement to parse and plan for every length. SQLite
/// has no arrays and keeps the list.
pub(crate) fn key_condition<E, V>(backend: DbBackend, column: E::Column, keys: &[V]) -> Condition
where
    E: EntityTrait,
    V: Into<Value> + Clone + ValueType,
{
    let column = Expr::col((E::default(), column));
    if backend == DbBackend::Postgres {
        let array = Value::Array(
            V::array_type(),
            Some(Box::new(keys.iter().cloned().map(Into::into).collect())),
        );
        column.eq(PgFunc::any(Expr::val(array))).into_condition()
    } else {
        column.is_in(keys.iter().cloned()).into_condition()
    }
}

/// Sections of each report with their paragraphs, in printed order: one statement (the
/// sections joined with their paragraphs) for any number of reports.
pub(crate) async fn sections_in(
    db: &impl ConnectionTrait,
    ids: &[i32],
) -> Result<Vec<SectionWithParagraphs>, StoreError> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let paragraph_of = narrative_paragraph::Entity::belongs_to(narrative_section::Entity)
        .from(narrative_paragraph::Column::SectionId)
        .to(narrative_section::Column::Id)
        .into();
    let rows = narrative_section::Entity::find()
        .filter(key_condition::<narrative_section::Entity, _>(
            db.get_database_backend(),
            narrative_section::Column::ReportId,
            ids,
        ))
        .join_rev(JoinType::LeftJoin, paragraph_of)
        .select_also(narrative_paragraph::Entity)
        .order_by_asc(narrative_section::Column::ReportId)
        .order_by_asc(narrative_section::Column::Position)
        .order_by_asc(narrative_section::Column::Id)
        .order_by_asc(narrative_paragraph::Column::Position)
        .order_by_asc(narrative_paragraph::Column::Id)
        .all(db)
        .await?;
    let mut sections: Vec<SectionWithParagraphs> = Vec::new();
    for (section, paragraph) in rows {
        let same = sections
            .last()
            .is_some_and(|last| last.section.id == section.id);
        if !same {
            sections.push(SectionWithParagraphs {
                section,
                paragraphs: Vec::new(),
            });
        }
        if let (Some(last), Some(paragraph)) = (sections.last_mut(), paragraph) {
            last.paragraphs.push(paragraph.body);
        }
    }
    Ok(sections)
}

/// Organizations linked to each report, with the link's role (PARTNER or DONOR), in the order
/// they were linked: one statement (the links joined with their organisations).
pub(crate) async fn organizations_in(
    db: &impl ConnectionTrait,
    ids: &[i32],
) -> Result<Vec<(report_organization::Model, organization::Model)>, StoreError> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let link_to = report_organization::Entity::belongs_to(organization::Entity)
        .from(report_organization::Column::OrganizationId)
        .to(organization::Column::Id)
        .into();
    let rows = report_organization::Entity::find()
        .filter(key_condition::<report_organization::Entity, _>(
            db.get_database_backend(),
            report_organization::Column::ReportId,
            ids,
        ))
        .join(JoinType::InnerJoin, link_to)
        .select_also(organization::Entity)
        .order_by_asc(report_organization::Column::Id)
        .all(db)
        .await?;
    Ok(rows
        .into_iter()
        .filter_map(|(link, organization)| organization.map(|o| (link, o)))
        .collect())
}
