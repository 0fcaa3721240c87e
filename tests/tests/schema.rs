//! The store's schema: migrations go down and up again, and every foreign key has an index
//! (sea-orm does not add one by itself).

use plangraph_migrations::{Migrator, MigratorTrait};
use sea_orm::{ConnectionTrait, DatabaseConnection, Statement};

use crate::on_both_databases;
use crate::support::{Backend, data, empty_store, peru_store};

/// Foreign-key columns that are not the leading column of an index, as "table.column".
async fn unindexed_foreign_keys(db: &DatabaseConnection, backend: Backend) -> Vec<String> {
    let rows = |sql: &str| {
        let stmt = Statement::from_string(db.get_database_backend(), sql.to_owned());
        async move { db.query_all_raw(stmt).await.expect("catalog query") }
    };
    match backend {
        Backend::Postgres => rows(
            "SELECT c.conrelid::regclass::text || '.' || a.attname
               FROM pg_constraint c
               JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = c.conkey[1]
              WHERE c.contype = 'f'
                AND NOT EXISTS (SELECT 1 FROM pg_index i
                                 WHERE i.indrelid = c.conrelid AND i.indkey[0] = c.conkey[1])",
        )
        .await
        .iter()
        .map(|r| r.try_get_by_index::<String>(0).expect("name"))
        .collect(),
        Backend::Sqlite => {
            let tables: Vec<String> = rows(
                "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'",
            )
            .await
            .iter()
            .map(|r| r.try_get_by_index::<String>(0).expect("table"))
            .collect();
            let mut missing = Vec::new();
            for table in tables {
                // Leading columns of the table's indexes, and its rowid-alias primary key.
                let mut leading: Vec<String> = rows(&format!(
                    "SELECT ii.name FROM pragma_index_list('{table}') il
                       JOIN pragma_index_info(il.name) ii ON ii.seqno = 0"
                ))
                .await
                .iter()
                .map(|r| r.try_get_by_index::<String>(0).expect("column"))
                .collect();
                leading.extend(
                    rows(&format!(
                        "SELECT name FROM pragma_table_info('{table}') WHERE pk = 1"
                    ))
                    .await
                    .iter()
                    .map(|r| r.try_get_by_index::<String>(0).expect("pk")),
                );
                for fk in rows(&format!(
                    "SELECT \"from\" FROM pragma_foreign_key_list('{table}')"
                ))
                .await
                {
                    let column: String = fk.try_get_by_index(0).expect("fk column");
                    if !leading.contains(&column) {
                        missing.push(format!("{table}.{column}"));
                    }
                }
            }
            missing
        }
    }
}

async fn every_foreign_key_has_an_index(backend: Backend) {
    let test = empty_store(backend).await;
    let missing = unindexed_foreign_keys(test.store.connection(), backend).await;
    assert_eq!(
        missing,
        Vec::<String>::new(),
        "foreign keys without an index"
    );
}
on_both_databases!(every_foreign_key_has_an_index);

async fn migrations_go_down_and_up_again(backend: Backend) {
    let test = peru_store(backend).await;
    let db = test.store.connection();
    Migrator::down(db, None).await.expect("down");
    let tables = Statement::from_string(
        db.get_database_backend(),
        match backend {
            Backend::Sqlite => {
                "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'report'"
            }
            Backend::Postgres => {
                "SELECT count(*) FROM information_schema.tables WHERE table_name = 'report'"
            }
        }
        .to_owned(),
    );
    let left: i64 = db
        .query_one_raw(tables)
        .await
        .expect("count")
        .expect("a row")
        .try_get_by_index(0)
        .expect("an integer");
    assert_eq!(left, 0, "down dropped the report table");
    test.store.migrate().await.expect("up again");
    plangraph_server::load_bundled_if_empty(&test.store)
        .await
        .expect("reload");
    let again = data(
        &test.store,
        r#"{ reports { totalCount } sectors { code } }"#,
    )
    .await;
    assert_eq!(again["reports"]["totalCount"], 1);
    assert_eq!(again["sectors"].as_array().map(Vec::len), Some(13));
}
on_both_databases!(migrations_go_down_and_up_again);
