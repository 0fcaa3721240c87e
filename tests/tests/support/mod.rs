//! Test harness: one suite, both databases.
//!
//! Each test gets its own empty store: a SQLite file in a temporary directory, or a new
//! database in the process's throwaway Postgres cluster.

#![allow(clippy::unwrap_used, clippy::expect_used)]

pub mod postgres;
pub mod server;
pub mod writes;

use plangraph_persistence::{StatementCounter, Store};
use serde_json::Value;
use tempfile::TempDir;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// A test's store and what keeps it alive.
#[derive(Debug)]
pub struct TestStore {
    pub store: Store,
    _dir: Option<TempDir>,
}

pub async fn database_url(backend: Backend) -> (String, Option<TempDir>) {
    match backend {
        Backend::Sqlite => {
            let dir = tempfile::tempdir().expect("temp dir");
            let url = format!("sqlite://{}?mode=rwc", dir.path().join("test.db").display());
            (url, Some(dir))
        }
        Backend::Postgres => (postgres::fresh_database().await, None),
    }
}

/// An empty, migrated store.
pub async fn empty_store(backend: Backend) -> TestStore {
    let (url, dir) = database_url(backend).await;
    let store = Store::connect(&url).await.expect("connect");
    store.migrate().await.expect("migrate");
    TestStore { store, _dir: dir }
}

/// An empty, migrated store that counts its statements.
pub async fn counted_store(backend: Backend) -> (TestStore, StatementCounter) {
    let (url, dir) = database_url(backend).await;
    let counter = StatementCounter::default();
    let store = Store::connect_counted(&url, counter.clone())
        .await
        .expect("connect");
    store.migrate().await.expect("migrate");
    (TestStore { store, _dir: dir }, counter)
}

/// A store holding the bundled Peru report.
pub async fn peru_store(backend: Backend) -> TestStore {
    let test = empty_store(backend).await;
    plangraph_server::load_bundled_if_empty(&test.store)
        .await
        .expect("import the bundled report");
    test
}

/// Runs a query through the schema with the request's loaders; returns the whole response
/// (`data` and `errors`) as JSON.
pub async fn execute(store: &Store, query: &str) -> Value {
    let response = plangraph_api::Api::new(store.clone()).execute(query).await;
    serde_json::to_value(&response).expect("response is JSON")
}

/// Runs a query that must succeed; returns its `data`.
pub async fn data(store: &Store, query: &str) -> Value {
    let response = execute(store, query).await;
    assert!(
        response
            .get("errors")
            .is_none_or(|e| e.as_array().is_some_and(Vec::is_empty)),
        "query failed: {response:#}"
    );
    response["data"].clone()
}

/// Declares a test once and runs it on SQLite and on Postgres; `actix` runs it on actix's
/// runtime (needed by actix-web's test service), `multi_thread` on several worker threads.
#[macro_export]
macro_rules! on_both_databases {
    ($name:ident, multi_thread) => {
        mod $name {
            use $crate::support::Backend;

            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn sqlite() {
                super::$name(Backend::Sqlite).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn postgres() {
                super::$name(Backend::Postgres).await;
            }
        }
    };
    ($name:ident, actix) => {
        mod $name {
            use $crate::support::Backend;

            #[actix_web::test]
            async fn sqlite() {
                super::$name(Backend::Sqlite).await;
            }

            #[actix_web::test]
            async fn postgres() {
                super::$name(Backend::Postgres).await;
            }
        }
    };
    ($name:ident) => {
        mod $name {
            use $crate::support::Backend;

            #[tokio::test]
            async fn sqlite() {
                super::$name(Backend::Sqlite).await;
            }

            #[tokio::test]
            async fn postgres() {
                super::$name(Backend::Postgres).await;
            }
        }
    };
}
