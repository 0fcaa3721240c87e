//! Whole reports for an export: the selection's reports in a stable order, then each report's
//! rows, all read inside one read-only transaction so an export of many reports is one
//! committed state of the store (a write landing half-way through shows in none of it).
//!
//! One report's rows are read at a time: an exporter holds one report in memory whatever the
//! size of the selection.

use std::collections::HashMap;

use sea_orm::{
    AccessMode, DatabaseTransaction, EntityTrait, IsolationLevel, QueryFilter, TransactionTrait,
};

use crate::entities::{country, platform, report, sector};
use crate::rows::ReportRows;
use crate::version::{Version, head_version};
use crate::{ReportQuery, Store, StoreError};

/// A read transaction an export reads every report through.
#[derive(Debug)]
pub struct WholeReports {
    txn: DatabaseTransaction,
    version: Version,
}

impl Store {
    /// Opens a read transaction for an export: what every later read sees is the store as it
    /// was committed when this returns.
    pub async fn whole_reports(&self) -> Result<WholeReports, StoreError> {
        let txn = if self.backend() == "postgres" {
            // A snapshot for the whole transaction, not per statement.
            self.db
                .begin_with_config(
                    Some(IsolationLevel::RepeatableRead),
                    Some(AccessMode::ReadOnly),
                )
                .await?
        } else {
            // SQLite's deferred transaction takes its snapshot at its first read, just below.
            self.db.begin().await?
        };
        let version = head_version(&txn).await?;
        Ok(WholeReports { txn, version })
    }
}

impl WholeReports {
    /// The store version every read of this export sees.
    pub fn version(&self) -> Version {
        self.version
    }

    /// Ids of the reports `filter` selects (or just `report_id`, when given and selected), by
    /// country code, year, kind and id: the order every export writes them in.
    pub async fn report_ids(
        &self,
        filter: &ReportQuery,
        report_id: Option<i32>,
    ) -> Result<Vec<i32>, StoreError> {
        let mut select = report::Entity::find().filter(Store::report_condition(filter));
        if let Some(id) = report_id {
            select = select.filter(sea_orm::ColumnTrait::eq(&report::Column::Id, id));
        }
        let reports = select.all(&self.txn).await?;
        let countries: HashMap<i32, String> = country::Entity::find()
            .all(&self.txn)
            .await?
            .into_iter()
            .map(|c| (c.id, c.iso3))
            .collect();
        let mut keyed: Vec<(&str, i32, &str, i32)> = reports
            .iter()
            .map(|r| {
                let iso3 = r
                    .country_id
                    .and_then(|c| countries.get(&c))
                    .map_or("", String::as_str);
                (iso3, r.year, r.kind.as_str(), r.id)
            })
            .collect();
        keyed.sort_unstable();
        Ok(keyed.into_iter().map(|k| k.3).collect())
    }

    /// Every row of one report, or `None` when it is not stored.
    pub async fn report(&self, id: i32) -> Result<Option<ReportRows>, StoreError> {
        match report::Entity::find_by_id(id).one(&self.txn).await? {
            Some(found) => Ok(Some(ReportRows::load(&self.txn, found).await?)),
            None => Ok(None),
        }
    }

    /// The sector reference (names and parents), by id.
    pub async fn sectors(&self) -> Result<HashMap<i32, sector::Model>, StoreError> {
        Ok(sector::Entity::find()
            .all(&self.txn)
            .await?
            .into_iter()
            .map(|s| (s.id, s))
            .collect())
    }

    /// The platforms, by id.
    pub async fn platforms(&self) -> Result<HashMap<i32, platform::Model>, StoreError> {
        Ok(platform::Entity::find()
            .all(&self.txn)
            .await?
            .into_iter()
            .map(|p| (p.id, p))
            .collect())
    }

    /// Ends the read (a read-only transaction: nothing to commit).
    pub async fn finish(self) -> Result<(), StoreError> {
        self.txn.rollback().await?;
        Ok(())
    }
}
