//! Readers and writers side by side: reads never queue behind a write, writers take turns.

use std::time::Duration;

use sea_orm::{ConnectionTrait, SqliteTransactionMode, TransactionOptions, TransactionTrait};

use crate::on_both_databases;
use crate::support::{Backend, data, peru_store};

/// A write transaction holds one of the store's own connections for as long as it runs (as a
/// large import does); meanwhile the read API keeps answering from the other connections.
async fn queries_keep_answering_while_a_long_write_is_in_progress(backend: Backend) {
    let test = peru_store(backend).await;
    let store = &test.store;
    let txn = store
        .connection()
        .begin_with_options(TransactionOptions {
            sqlite_transaction_mode: (backend == Backend::Sqlite)
                .then_some(SqliteTransactionMode::Immediate),
            ..Default::default()
        })
        .await
        .expect("begin a write");
    txn.execute_unprepared("UPDATE report SET title = title || ' (being edited)'")
        .await
        .expect("write inside the transaction");

    for _ in 0..5 {
        let answered = tokio::time::timeout(
            Duration::from_secs(3),
            data(
                store,
                r#"{ countries { iso3 reports { title totals { peopleReached } sectors { sector { code } } } } }"#,
            ),
        )
        .await
        .expect("a query answered while the write was open");
        // The uncommitted title is not visible to readers.
        assert_eq!(
            answered["countries"][0]["reports"][0]["title"],
            "END-YEAR REPORT 2023"
        );
    }
    txn.commit().await.expect("commit");
    let after = data(store, r#"{ countries { reports { title } } }"#).await;
    assert_eq!(
        after["countries"][0]["reports"][0]["title"],
        "END-YEAR REPORT 2023 (being edited)"
    );
}
on_both_databases!(
    queries_keep_answering_while_a_long_write_is_in_progress,
    multi_thread
);
