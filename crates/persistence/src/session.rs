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
//! the report in full depth (then 16 statements, engine alone, 16 connections), the rate went
//! from 275 to 496 requests a second: the turns cost less than the checkouts and pings saved.
//!
//! SQLite keeps the pool: its statements are calls into the process, with no round trip and
//! no ping to save.
//!
//! A session ends when its query has executed or was cut short ([`Store::end_session`], called
//! by the pipeline from a guard, so a timed-out query's pending batches do not keep running on
//! the connection), at the latest when its last handle is dropped; a read after its end goes
//! to the pool. It is for queries only: a subscription keeps its loaders between events, and
//! must not keep a connection with them.
//!
//! A held connection must never wait for another: a query that holds one and then asks the
//! pool (a read outside the session) could wait for connections its peers hold, each waiting
//! for the same. So sessions hold at most the pool's connections less [`SPARE_CONNECTIONS`]
//! (six of eight); a query that finds no room reads through the pool, a statement at a time,
//! and tries again at its next statement. A connection that failed (not a database error: the socket or
//! the protocol) is dropped from the session, and the next read takes a fresh one.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use sea_orm::sqlx::pool::PoolConnection;
use sea_orm::sqlx::{self, Postgres};
use sea_orm::{
    ConnAcquireErr, ConnectionTrait, DatabaseConnection, DbBackend, DbErr, ExecResult, QueryResult,
    RuntimeErr, Statement,
};
use sea_query_sqlx::SqlxValues;
use tokio::sync::{Mutex, OwnedSemaphorePermit, Semaphore};

use crate::Store;
use crate::statements::StatementCounter;

/// Connections of the readers' pool that sessions never hold, so reads outside the sessions
/// always find one within a statement's time.
pub(crate) const SPARE_CONNECTIONS: usize = 2;

/// A connection a session holds, and its room (given back with it).
#[derive(Debug)]
struct Held {
    conn: PoolConnection<Postgres>,
    _room: OwnedSemaphorePermit,
}

/// One query's connection, taken on its first read.
#[derive(Debug)]
pub(crate) struct Session {
    db: DatabaseConnection,
    counter: Option<StatementCounter>,
    /// The room for held connections, shared by the store's sessions.
    room: Arc<Semaphore>,
    /// Set once the query has executed (or was cut short): from then on reads go to the pool.
    ended: AtomicBool,
    /// None: nothing read yet, no room, or the last connection failed or was given back.
    held: Mutex<Option<Held>>,
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
                room: self.shared.sessions.clone(),
                ended: AtomicBool::new(false),
                held: Mutex::new(None),
            }));
        }
        store
    }

    /// Gives the session's connection back to the pool, now or, when a statement is running
    /// on it, as soon as that statement ends; later reads of this handle use the pool. No-op
    /// without a session. Not async, so a guard's `Drop` can call it.
    pub fn end_session(&self) {
        if let Some(session) = &self.session {
            session.ended.store(true, Ordering::SeqCst);
            if let Ok(mut held) = session.held.try_lock() {
                *held = None;
            }
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
        let mut held = self.held.lock().await;
        if self.ended.load(Ordering::SeqCst) {
            *held = None;
        } else if held.is_none()
            && let Ok(room) = self.room.clone().try_acquire_owned()
        {
            let pool = self.db.get_postgres_connection_pool();
            let conn = pool.acquire().await.map_err(acquire_failed)?;
            *held = Some(Held { conn, _room: room });
        }
        let Some(Held { conn, .. }) = held.as_mut() else {
            // Ended (the query has executed), or no room: a pooled connection for this read.
            drop(held);
            return self.db.query_all_raw(stmt).await;
        };
        if let Some(counter) = &self.counter {
            counter.increment();
        }
        let values = stmt.values.unwrap_or(sea_orm::Values(Vec::new()));
        let result = sqlx::query_with(sqlx::AssertSqlSafe(stmt.sql), SqlxValues(values))
            .fetch_all(&mut **conn)
            .await;
        let broken = matches!(&result, Err(err) if !matches!(err, sqlx::Error::Database(_)));
        if broken || self.ended.load(Ordering::SeqCst) {
            // Ended while this statement ran: the connection goes back now. Or the socket or
            // the protocol failed: the next read takes a fresh one (the pool closes this one
            // when its release ping fails).
            *held = None;
        }
        result
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
