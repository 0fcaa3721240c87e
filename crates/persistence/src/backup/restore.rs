//! The restore itself, on the live store's own connection: the backup checked again under the
//! lock, then every table's rows replaced in one transaction, in foreign-key order.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use sea_orm::sqlx::sqlite::SqliteConnection;
use sea_orm::sqlx::{AssertSqlSafe, Executor};

use super::{
    ATTACHED, BackupError, Facts, backup_file_error, check_backup, ident, migrations_of,
    random_i64, sql_text, store_error, strings, strings_bound, table_names, uri_path,
};

/// The restore on the live store's own connection: checks, then one transaction.
pub(super) async fn restore_into(
    live: &mut SqliteConnection,
    path: &Path,
) -> Result<Facts, BackupError> {
    let store_file = strings(
        live,
        "SELECT file FROM pragma_database_list WHERE name = 'main'",
    )
    .await
    .map_err(store_error)?;
    if let (Some(store_file), Ok(backup_file)) = (store_file.first(), path.canonicalize())
        && Path::new(store_file).canonicalize().ok() == Some(backup_file)
    {
        return Err(BackupError::SameFile(path.to_owned()));
    }
    let facts = check_backup(path).await?;
    let store_migrations = migrations_of(live, "main").await?;
    if facts.migrations != store_migrations {
        return Err(BackupError::Migrations {
            path: path.to_owned(),
            backup: facts.migrations,
            store: store_migrations,
        });
    }
    let plan = Plan::of(live).await?;
    let absolute = path
        .canonicalize()
        .map_err(|_| BackupError::Missing(path.to_owned()))?;
    let uri = format!("file:{}?mode=ro", uri_path(&absolute));
    live.execute(AssertSqlSafe(format!(
        "ATTACH DATABASE {} AS {ATTACHED}",
        sql_text(&uri)
    )))
    .await
    .map_err(|err| backup_file_error(path, &err))?;
    let result = replace_all(live, path, &plan, &facts).await;
    if let Err(err) = live
        .execute(AssertSqlSafe(format!("DETACH DATABASE {ATTACHED}")))
        .await
    {
        tracing::debug!(error = %err, "detaching the backup failed");
    }
    result.map(|()| facts)
}

/// Every table's rows replaced by the backup's, the revision set to the backup's with a new
/// epoch: one `BEGIN IMMEDIATE` transaction, rolled back on any failure.
async fn replace_all(
    live: &mut SqliteConnection,
    path: &Path,
    plan: &Plan,
    facts: &Facts,
) -> Result<(), BackupError> {
    live.execute("BEGIN IMMEDIATE").await.map_err(store_error)?;
    let result = replace_in_transaction(live, path, plan, facts).await;
    match result {
        Ok(()) => match live.execute("COMMIT").await {
            Ok(_) => Ok(()),
            Err(err) => {
                let _ = live.execute("ROLLBACK").await;
                Err(store_error(err))
            }
        },
        Err(err) => {
            if let Err(rollback) = live.execute("ROLLBACK").await {
                tracing::warn!(error = %rollback, "rolling back a failed restore failed");
            }
            Err(err)
        }
    }
}

async fn replace_in_transaction(
    live: &mut SqliteConnection,
    path: &Path,
    plan: &Plan,
    facts: &Facts,
) -> Result<(), BackupError> {
    // Checked again under the lock: a newer plangraph may have migrated the store meanwhile.
    let store_migrations = migrations_of(live, "main").await?;
    if facts.migrations != store_migrations {
        return Err(BackupError::Migrations {
            path: path.to_owned(),
            backup: facts.migrations.clone(),
            store: store_migrations,
        });
    }
    let attached = table_names(live, ATTACHED).await.map_err(store_error)?;
    if let Some(missing) = plan.order.iter().find(|t| !attached.contains(*t)) {
        return Err(BackupError::NotPlangraph {
            path: path.to_owned(),
            missing: missing.clone(),
        });
    }
    // A row pointing at another of its table (a sub-sector at its parent) is let go first:
    // SQLite applies `ON DELETE RESTRICT` at each row, not at the statement's end.
    for (table, column) in &plan.self_references {
        live.execute(AssertSqlSafe(format!(
            "UPDATE main.{table} SET {column} = NULL WHERE {column} IS NOT NULL",
            table = ident(table),
            column = ident(column)
        )))
        .await
        .map_err(store_error)?;
    }
    // Children before parents out, parents before children in.
    for table in plan.order.iter().rev() {
        live.execute(AssertSqlSafe(format!("DELETE FROM main.{}", ident(table))))
            .await
            .map_err(store_error)?;
    }
    for table in &plan.order {
        let columns = plan.columns.get(table).map_or(&[][..], Vec::as_slice);
        let list = columns
            .iter()
            .map(|c| ident(c))
            .collect::<Vec<_>>()
            .join(", ");
        live.execute(AssertSqlSafe(format!(
            "INSERT INTO main.{table} ({list}) SELECT {list} FROM {ATTACHED}.{table}",
            table = ident(table)
        )))
        .await
        .map_err(store_error)?;
    }
    // AUTOINCREMENT counters as they were, so ids go on from the backup's.
    if plan.has_sequence {
        live.execute("DELETE FROM main.sqlite_sequence")
            .await
            .map_err(store_error)?;
        if attached.contains("sqlite_sequence") {
            live.execute(AssertSqlSafe(format!(
                "INSERT INTO main.sqlite_sequence (name, seq) SELECT name, seq FROM {ATTACHED}.sqlite_sequence"
            )))
            .await
            .map_err(store_error)?;
        }
    }
    // The backup's revision, with an epoch no cache has seen.
    let old_epochs = strings(
        live,
        "SELECT CAST(epoch AS TEXT) FROM main.store_revision WHERE id = 1",
    )
    .await
    .map_err(store_error)?;
    let epoch = loop {
        let epoch = random_i64();
        if !old_epochs.contains(&epoch.to_string()) {
            break epoch;
        }
    };
    live.execute(AssertSqlSafe(format!(
        "UPDATE main.store_revision SET epoch = {epoch} WHERE id = 1"
    )))
    .await
    .map_err(store_error)?;
    Ok(())
}

/// Which tables to copy, in foreign-key order (parents first), with their columns.
#[derive(Debug)]
struct Plan {
    order: Vec<String>,
    columns: BTreeMap<String, Vec<String>>,
    /// Columns that point at a row of their own table: (table, column).
    self_references: Vec<(String, String)>,
    has_sequence: bool,
}

impl Plan {
    async fn of(live: &mut SqliteConnection) -> Result<Self, BackupError> {
        let all = table_names(live, "main").await.map_err(store_error)?;
        let has_sequence = all.contains("sqlite_sequence");
        let tables: BTreeSet<String> = all
            .into_iter()
            .filter(|t| !t.starts_with("sqlite_") && t != "seaql_migrations")
            .collect();
        let mut parents: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        let mut columns = BTreeMap::new();
        let mut self_references = Vec::new();
        for table in &tables {
            let own = strings_bound(
                live,
                "SELECT \"from\" FROM pragma_foreign_key_list(?1) WHERE \"table\" = ?1",
                table,
            )
            .await
            .map_err(store_error)?;
            self_references.extend(own.into_iter().map(|column| (table.clone(), column)));
            let referenced = strings_bound(
                live,
                "SELECT DISTINCT \"table\" FROM pragma_foreign_key_list(?1)",
                table,
            )
            .await
            .map_err(store_error)?;
            parents.insert(
                table.clone(),
                referenced
                    .into_iter()
                    .filter(|p| p != table && tables.contains(p))
                    .collect(),
            );
            let names = strings_bound(live, "SELECT name FROM pragma_table_info(?1)", table)
                .await
                .map_err(store_error)?;
            columns.insert(table.clone(), names);
        }
        let mut order: Vec<String> = Vec::with_capacity(tables.len());
        while order.len() < tables.len() {
            let before = order.len();
            for table in &tables {
                if !order.contains(table)
                    && parents
                        .get(table)
                        .is_none_or(|ps| ps.iter().all(|p| order.contains(p)))
                {
                    order.push(table.clone());
                }
            }
            if order.len() == before {
                // A cycle between tables (none in plangraph's schema): the rest in name order;
                // the foreign-key checks at each statement's end would then refuse the restore
                // rather than restore half.
                let rest: Vec<String> = tables
                    .iter()
                    .filter(|t| !order.contains(t))
                    .cloned()
                    .collect();
                order.extend(rest);
            }
        }
        Ok(Self {
            order,
            columns,
            self_references,
            has_sequence,
        })
    }
}
