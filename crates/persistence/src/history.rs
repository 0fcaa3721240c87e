//! Reading the history: every change after a revision, and pages of each report's or
//! organisation's history for the API, bounded in bytes per owner and per call.

use std::collections::HashMap;

use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect};

use crate::StoreError;
use crate::changes::{
    ChangeFilter, ChangeRecord, HistoryOwner, PAGE, PAGE_BYTES, page_of_changes, placeholder,
    within_budget,
};
use crate::entities::change;
use crate::store::Store;

/// One owner's page of history: its id, its changes (newest first), and whether a byte budget
/// cut the page short.
pub type HistoryPage = (i32, Vec<ChangeRecord>, bool);

impl Store {
    /// Every change matching `filter` after revision `after`, oldest first.
    pub async fn changes_after(
        &self,
        after: i64,
        filter: &ChangeFilter,
    ) -> Result<Vec<ChangeRecord>, StoreError> {
        let mut all = Vec::new();
        let mut cursor = after;
        loop {
            let page = page_of_changes(&self.reader(), cursor, None, filter).await?;
            let Some(last) = page.last() else { break };
            cursor = last.revision;
            let full = page.len() as u64 == PAGE;
            all.extend(page.into_iter().filter(|r| filter.matches(r)));
            if !full {
                break;
            }
        }
        Ok(all)
    }

    /// The newest changes of each of `ids` (reports' or organisations'), before revision
    /// `before` (exclusive), at most `limit` each, newest first, and the bytes of recorded
    /// values the call read. Bounded twice in bytes: each owner's page at a few megabytes, and
    /// the whole call at `max_bytes`, spent on the owners in the order of `ids`; a page a
    /// budget cut is marked `true` and may be empty (owners past the call's budget get empty
    /// pages). An owner with no change at all gets no page. Two statements for any number of
    /// owners: a window function ranks each owner's changes on narrow columns, then the kept
    /// changes are read whole. The records carry no country or year.
    pub async fn history_pages_within(
        &self,
        owner: HistoryOwner,
        ids: &[i32],
        before: Option<i64>,
        limit: u64,
        max_bytes: i64,
    ) -> Result<(Vec<HistoryPage>, i64), StoreError> {
        if ids.is_empty() {
            return Ok((Vec::new(), 0));
        }
        let backend = self.db.get_database_backend();
        let column = owner.column();
        let mut values: Vec<sea_orm::Value> = ids.iter().map(|&id| id.into()).collect();
        let marks: Vec<String> = (1..=ids.len()).map(|n| placeholder(backend, n)).collect();
        let mut condition = format!("c.{column} IN ({})", marks.join(", "));
        if let Some(before) = before {
            values.push(before.into());
            condition.push_str(&format!(
                " AND c.revision < {}",
                placeholder(backend, values.len())
            ));
        }
        values.push(i64::try_from(limit).unwrap_or(i64::MAX).into());
        let limit_mark = placeholder(backend, values.len());
        let sql = format!(
            "SELECT revision, owner_id, fields_bytes \
             FROM (SELECT c.revision, c.{column} AS owner_id, c.fields_bytes, \
                          ROW_NUMBER() OVER (PARTITION BY c.{column} ORDER BY c.revision DESC) AS rank_in_owner \
                   FROM change c WHERE {condition}) ranked \
             WHERE rank_in_owner <= {limit_mark} ORDER BY owner_id, revision DESC"
        );
        // Through the query's session like every read of a query: a second connection taken
        // while the session holds one could wait for a pool its peers hold (see `session`).
        let ranked = self
            .reader()
            .query_all_raw(sea_orm::Statement::from_sql_and_values(
                backend, sql, values,
            ))
            .await?;
        let mut per_owner: HashMap<i32, Vec<(i64, i64)>> = HashMap::new();
        for row in ranked {
            let revision: i64 = row.try_get("", "revision")?;
            let owner_id: i32 = row.try_get("", "owner_id")?;
            let bytes: i64 = row.try_get("", "fields_bytes")?;
            per_owner
                .entry(owner_id)
                .or_default()
                .push((revision, bytes));
        }
        // The owners in the caller's order, each once: the call's budget goes to them in turn.
        let mut order: Vec<i32> = Vec::with_capacity(per_owner.len());
        for id in ids {
            if per_owner.contains_key(id) && !order.contains(id) {
                order.push(*id);
            }
        }
        let mut used: i64 = 0;
        let mut pages: Vec<HistoryPage> = Vec::with_capacity(order.len());
        let mut wanted = Vec::new();
        for owner_id in order {
            let list = per_owner.get(&owner_id).map_or(&[][..], Vec::as_slice);
            let (kept, bytes) = within_budget(list, PAGE_BYTES, max_bytes.saturating_sub(used));
            used = used.saturating_add(bytes);
            pages.push((
                owner_id,
                Vec::with_capacity(kept.len()),
                kept.len() < list.len(),
            ));
            wanted.extend(kept);
        }
        let rows = if wanted.is_empty() {
            Vec::new()
        } else {
            change::Entity::find()
                .filter(change::Column::Revision.is_in(wanted))
                .order_by_desc(change::Column::Revision)
                .all(&self.reader())
                .await?
        };
        for row in rows {
            let key = match owner {
                HistoryOwner::Report => row.report_id,
                HistoryOwner::Organization => row.organization_id,
            };
            if let Some(page) = pages.iter_mut().find(|(id, _, _)| Some(*id) == key) {
                page.1.push(ChangeRecord::from_row(row, None, None));
            }
        }
        Ok((pages, used))
    }

    /// How many changes each of `ids` has; one statement.
    pub async fn history_counts(
        &self,
        owner: HistoryOwner,
        ids: &[i32],
    ) -> Result<Vec<(i32, u64)>, StoreError> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let column = match owner {
            HistoryOwner::Report => change::Column::ReportId,
            HistoryOwner::Organization => change::Column::OrganizationId,
        };
        let rows: Vec<(Option<i32>, i64)> = change::Entity::find()
            .select_only()
            .column(column)
            .column_as(change::Column::Revision.count(), "n")
            .filter(column.is_in(ids.iter().copied()))
            .group_by(column)
            .into_tuple()
            .all(&self.reader())
            .await?;
        Ok(rows
            .into_iter()
            .filter_map(|(id, n)| Some((id?, u64::try_from(n).unwrap_or_default())))
            .collect())
    }
}
