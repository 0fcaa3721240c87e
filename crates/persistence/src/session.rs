//! A query's reads on one pooled connection.
//!
//! On Postgres every pooled statement cost a pool checkout and two round trips: sqlx pings each
//! connection as it goes back into the pool (no setting turns that off), a `Sync` the server
//! answers. A report in full depth runs a dozen statements, so half its round trips, and a
//! large part of both processes' CPU (most of it in the loopback's send path), were pings. A
//! session borrows one connection on the query's first read and keeps it until the query has
//! executed: one checkout, one ping, however many statements. No transaction is opened (a
//! `BEGIN` and a `ROLLBACK` would be two more round trips), so each statement reads the
//! committed rows of its moment, as pooled statements did.
//!
//! The statements of a session run one after the other on its connection; the loaders of one
//! level, which ran side by side on several connections, now take turns on one. Measured on
//! the report in full depth (16 statements), that costs less than the checkouts and pings it
//! saves, and the pool's connections serve more queries at once.
//!
//! SQLite keeps the pool: its statements are calls into the process, with no round trip and
//! no ping to save.
//!
//! A session ends when its query has executed ([`Store::end_session`]), at the latest when its
//! last handle is dropped; a read after its end goes to the pool. It is for queries only: a
//! subscription keeps its loaders between events, and must not keep a connection with them.

use std::sync::Arc;

use sea_orm::sqlx::pool::PoolConnection;
use sea_orm::sqlx::{self, Postgres};
use sea_orm::{
    ConnAcquireErr, ConnectionTrait, DatabaseConnection, DbBackend, DbErr, ExecResult, QueryResult,
    RuntimeErr, Statement,
};
use sea_query_sqlx::SqlxValues;
use tokio::sync::Mutex;

use crate::Store;
use crate::statements::StatementCounter;

/// Where a session's reads go.
#[derive(Debug, Default)]
enum State {
    /// Nothing read yet: no connection taken.
    #[default]
    Idle,
    Open(PoolConnection<Postgres>),
    /// The query executed; reads go to the pool.
    Ended,
}

/// One query's connection, taken on its first read.
#[derive(Debug)]
pub(crate) struct Session {
    db: DatabaseConnection,
    counter: Option<StatementCounter>,
    state: Mutex<State>,
}

impl Store {
    /// A handle whose reads share one connection until [`Store::end_session`] (Postgres; on
    /// SQLite a plain clone). For one query's loaders.
    pub fn with_session(&self) -> Store {
        let mut store = self.clone();
        if self.db.get_database_backend() == DbBackend::Postgres {
            store.session = Some(Arc::new(Session {
                db: self.db.clone(),
                counter: self.shared.counter.clone(),
                state: Mutex::new(State::Idle),
            }));
        }
        store
    }

    /// Gives the session's connection back to the pool; later reads of this handle use the
    /// pool. No-op without a session.
    pub async fn end_session(&self) {
        if let Some(session) = &self.session {
            *session.state.lock().await = State::Ended;
        }
    }

    /// What the next read runs on: the session, or the pool.
    pub(crate) fn reader(&self) -> Reader<'_> {
        match &self.session {
            Some(session) => Reader::Session(session),
            None => Reader::Pool(&self.db),
        }
    }
}

/// The connection a read runs on.
pub(crate) enum Reader<'a> {
    Pool(&'a DatabaseConnection),
    Session(&'a Session),
}

impl Session {
    /// Runs `stmt` on the session's connection (taken now if this is the first read), or on
    /// the pool once the session ended.
    async fn fetch_all(&self, stmt: Statement) -> Result<Vec<QueryResult>, DbErr> {
        let mut state = self.state.lock().await;
        if matches!(*state, State::Ended) {
            drop(state);
            return self.db.query_all_raw(stmt).await;
        }
        if matches!(*state, State::Idle) {
            let pool = self.db.get_postgres_connection_pool();
            *state = State::Open(pool.acquire().await.map_err(acquire_failed)?);
        }
        let State::Open(conn) = &mut *state else {
            unreachable!("the state was set to Open above");
        };
        if let Some(counter) = &self.counter {
            counter.increment();
        }
        let values = stmt.values.unwrap_or(sea_orm::Values(Vec::new()));
        sqlx::query_with(sqlx::AssertSqlSafe(stmt.sql), SqlxValues(values))
            .fetch_all(&mut **conn)
            .await
            .map(|rows| rows.into_iter().map(QueryResult::from).collect())
            .map_err(|err| DbErr::Query(RuntimeErr::SqlxError(Arc::new(err))))
    }
}

/// A failed checkout, as sea-orm reports one (so the store's errors classify it alike).
fn acquire_failed(err: sqlx::Error) -> DbErr {
    match err {
        sqlx::Error::PoolTimedOut => DbErr::ConnectionAcquire(ConnAcquireErr::Timeout),
        sqlx::Error::PoolClosed => DbErr::ConnectionAcquire(ConnAcquireErr::ConnectionClosed),
        other => DbErr::Conn(RuntimeErr::SqlxError(Arc::new(other))),
    }
}

/// Reads only: the store's read methods select; anything else goes to the pool.
#[async_trait::async_trait]
impl ConnectionTrait for Reader<'_> {
    fn get_database_backend(&self) -> DbBackend {
        match self {
            Reader::Pool(db) => db.get_database_backend(),
            Reader::Session(_) => DbBackend::Postgres,
        }
    }

    async fn execute_raw(&self, stmt: Statement) -> Result<ExecResult, DbErr> {
        self.pool().execute_raw(stmt).await
    }

    async fn execute_unprepared(&self, sql: &str) -> Result<ExecResult, DbErr> {
        self.pool().execute_unprepared(sql).await
    }

    async fn query_one_raw(&self, stmt: Statement) -> Result<Option<QueryResult>, DbErr> {
        match self {
            Reader::Pool(db) => db.query_one_raw(stmt).await,
            Reader::Session(session) => Ok(session.fetch_all(stmt).await?.into_iter().next()),
        }
    }

    async fn query_all_raw(&self, stmt: Statement) -> Result<Vec<QueryResult>, DbErr> {
        match self {
            Reader::Pool(db) => db.query_all_raw(stmt).await,
            Reader::Session(session) => session.fetch_all(stmt).await,
        }
    }
}

impl Reader<'_> {
    fn pool(&self) -> &DatabaseConnection {
        match self {
            Reader::Pool(db) => db,
            Reader::Session(session) => &session.db,
        }
    }
}
