//! Writes that fail leave nothing behind: a full disk, a refused statement, a killed
//! connection, a lock held too long. Each is answered with its code, nothing it did is kept,
//! and the writes after it commit and are read back from another store, as another process
//! would. A refused writer is refused before it waits for anyone's lock.

use std::time::{Duration, Instant};

use plangraph_domain::access::{Actor, Role};
use plangraph_domain::codes::Iso3;
use plangraph_domain::edit::{NewOrganization, ReportEdit, Text};
use plangraph_domain::report::{PartnerRole, SectionKind};
use plangraph_persistence::{ImportOptions, ReportImport, Store, WriteRequest, WriteTimeouts};
use sea_orm::{
    ConnectionTrait, DatabaseTransaction, SqliteTransactionMode, TransactionOptions,
    TransactionTrait,
};
use tempfile::TempDir;

use crate::on_both_databases;
use crate::support::{Backend, database_url};

/// A store holding the bundled Peru report, and its URL (for other stores on it).
pub async fn peru_at(backend: Backend) -> (Store, String, Option<TempDir>) {
    let (url, dir) = database_url(backend).await;
    let store = Store::connect(&url).await.expect("connect");
    store.migrate().await.expect("migrate");
    plangraph_server::load_bundled_if_empty(&store)
        .await
        .expect("import the bundled report");
    (store, url, dir)
}

fn admin() -> Actor {
    Actor::local("write safety test")
}

fn editor_of(iso3: &str) -> Actor {
    Actor {
        token_id: None,
        label: format!("editor of {iso3}"),
        role: Role::Editor,
        countries: vec![Iso3::parse(iso3).unwrap()],
    }
}

/// The Peru report's revision, as `store` reads it.
pub async fn report_revision(store: &Store) -> i64 {
    store.reports_by_id(&[1]).await.unwrap()[0].revision
}

/// A small edit of the Peru report.
pub fn count_edit(count: u32, expected_revision: i64) -> WriteRequest<'static> {
    WriteRequest::Edit {
        report_id: 1,
        expected_revision,
        edit: ReportEdit::PartnerCount {
            role: PartnerRole::Donor,
            count,
        },
    }
}

/// An edit that takes room: the Response section becomes one 15,000-character paragraph.
fn section_edit(n: usize, expected_revision: i64) -> WriteRequest<'static> {
    let text = format!("{n} {}", "x".repeat(15_000));
    WriteRequest::Edit {
        report_id: 1,
        expected_revision,
        edit: ReportEdit::Section {
            kind: SectionKind::Response,
            title: None,
            paragraphs: vec![Text::parse("paragraph", &text).unwrap()],
        },
    }
}

fn organization(name: &str) -> WriteRequest<'static> {
    WriteRequest::CreateOrganization(NewOrganization {
        name: Text::parse("name", name).unwrap(),
        acronym: None,
        org_type: None,
        refugee_and_migrant_led: false,
        fts_id: None,
        synthetic: false,
    })
}

async fn scalar(store: &Store, sql: &str) -> i64 {
    let row = store
        .connection()
        .query_one_raw(sea_orm::Statement::from_string(
            store.connection().get_database_backend(),
            sql,
        ))
        .await
        .unwrap()
        .unwrap();
    row.try_get_by_index::<i64>(0).unwrap()
}

/// Holds the store's write lock from `holder`'s connection, as another process's long write
/// would: SQLite's file lock, or the Postgres revision counter's row lock.
pub async fn hold_write_lock(holder: &Store, backend: Backend) -> DatabaseTransaction {
    let txn = holder
        .connection()
        .begin_with_options(TransactionOptions {
            sqlite_transaction_mode: (backend == Backend::Sqlite)
                .then_some(SqliteTransactionMode::Immediate),
            ..Default::default()
        })
        .await
        .expect("begin");
    if backend == Backend::Postgres {
        txn.execute_unprepared("SELECT value FROM store_revision WHERE id = 1 FOR UPDATE")
            .await
            .expect("lock the revision counter");
    }
    txn
}

/// Reads `store`'s write back from a store opened afresh (another process's view) and from
/// `store`'s own readers: both see `revision` as the head and the report's revision.
async fn assert_committed(store: &Store, url: &str, revision: i64) {
    let fresh = Store::connect(url).await.expect("connect again");
    assert_eq!(
        fresh.head_revision().await.unwrap(),
        revision,
        "not in the file"
    );
    assert_eq!(report_revision(&fresh).await, revision);
    assert_eq!(store.head_revision().await.unwrap(), revision);
    assert_eq!(report_revision(store).await, revision);
}

/// A small filesystem of the test's own (tmpfs), unmounted when dropped; `None` where the
/// test may not mount one.
struct SmallDisk {
    dir: TempDir,
}

impl SmallDisk {
    fn mount(bytes: u64) -> Option<Self> {
        let dir = tempfile::tempdir().ok()?;
        let mounted = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={bytes}")])
            .arg("plangraph-test")
            .arg(dir.path())
            .stderr(std::process::Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        mounted.then_some(Self { dir })
    }

    fn path(&self) -> &std::path::Path {
        self.dir.path()
    }

    /// Fills the disk with a ballast file but for `room` bytes.
    fn fill_but(&self, room: u64) {
        use std::io::Write;
        let mut ballast = std::fs::File::create(self.path().join("ballast")).unwrap();
        let block = vec![0u8; 4096];
        loop {
            let free = fs_free(self.path());
            if free <= room {
                break;
            }
            let n = usize::try_from((free - room).min(4096)).unwrap();
            if ballast.write_all(&block[..n]).is_err() {
                break;
            }
            ballast.flush().unwrap();
        }
    }

    fn empty_ballast(&self) {
        std::fs::remove_file(self.path().join("ballast")).unwrap();
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(self.dir.path())
            .status();
    }
}

/// Free bytes on the filesystem holding `path` (`df`'s figure).
fn fs_free(path: &std::path::Path) -> u64 {
    let out = std::process::Command::new("df")
        .args(["-B1", "--output=avail"])
        .arg(path)
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .nth(1)
        .and_then(|l| l.trim().parse().ok())
        .unwrap()
}

/// The finding: on a nearly full disk the first writes failed cleanly, then writes were
/// answered as committed that never reached the file, reads stuck at an old revision (every
/// write a CONFLICT), and other processes waited 30 s for a lock. The database sits on a small
/// filesystem of its own (a tmpfs; where the test may not mount one, SQLite's
/// `max_page_count` fills the database as the disk would), filled with ballast but for a
/// little room: every write past the room fails with its code and keeps nothing; once the
/// ballast is gone, every write answered as committed is in the file (read by another store),
/// the store's own reads see it, and another process writes at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_on_sqlite_fails_writes_cleanly_and_later_writes_commit() {
    let disk = SmallDisk::mount(16 * 1024 * 1024);
    let (store, url, _dir) = match &disk {
        Some(disk) => {
            let url = format!(
                "sqlite://{}?mode=rwc",
                disk.path().join("test.db").display()
            );
            let store = Store::connect(&url).await.expect("connect");
            store.migrate().await.expect("migrate");
            plangraph_server::load_bundled_if_empty(&store)
                .await
                .expect("import the bundled report");
            (store, url, None)
        }
        None => peru_at(Backend::Sqlite).await,
    };
    let other = Store::connect(&url).await.unwrap();
    match &disk {
        Some(disk) => disk.fill_but(160 * 1024),
        None => {
            let pages = scalar(&store, "PRAGMA page_count").await;
            store
                .set_sqlite_max_page_count(u64::try_from(pages).unwrap() + 30)
                .await
                .unwrap();
        }
    }

    let mut revision = report_revision(&other).await;
    let mut failures = 0;
    for n in 0..60 {
        match store.write(&admin(), section_edit(n, revision)).await {
            Ok(outcome) => {
                assert_committed(&store, &url, outcome.revision).await;
                revision = outcome.revision;
            }
            Err(err) => {
                assert_eq!(err.code(), "STORE_QUERY_FAILED", "{err}");
                assert_eq!(other.head_revision().await.unwrap(), revision);
                failures += 1;
                if failures == 4 {
                    break;
                }
            }
        }
    }
    assert_eq!(failures, 4, "the database never filled up");
    assert_eq!(report_revision(&other).await, revision);

    match &disk {
        Some(disk) => disk.empty_ballast(),
        None => store.set_sqlite_max_page_count(0).await.unwrap(),
    }
    // No lock was left behind: another process writes at once (the finding: 30 s).
    let started = Instant::now();
    let outcome = tokio::time::timeout(
        Duration::from_secs(5),
        other.write(&admin(), count_edit(99, revision)),
    )
    .await
    .expect("another process's write waited for a lock")
    .expect("another process's write");
    assert!(started.elapsed() < Duration::from_secs(2));
    revision = outcome.revision;
    assert_committed(&store, &url, revision).await;

    // Every write now commits, is in the file, and its revision is what the next one reads:
    // no CONFLICT storm.
    for n in 100..106 {
        let outcome = store
            .write(&admin(), section_edit(n, revision))
            .await
            .expect("a write once the disk has room");
        assert_eq!(outcome.revision, revision + 1);
        assert!(outcome.change.is_some());
        assert_committed(&store, &url, outcome.revision).await;
        revision = outcome.revision;
    }
    drop((store, other));
}

/// A statement the database refuses in the middle of a write (here a change row already at
/// the revision the write takes) fails the write with its code and keeps nothing; the writes
/// after it commit, on both databases.
async fn a_write_refused_mid_way_leaves_the_writer_healthy(backend: Backend) {
    let (store, url, _dir) = peru_at(backend).await;
    let other = Store::connect(&url).await.unwrap();
    let revision = report_revision(&store).await;
    let head = store.head_revision().await.unwrap();
    other
        .connection()
        .execute_unprepared(&format!(
            "INSERT INTO change (revision, report_id, organization_id, kind, summary, token_id, actor_label, at, fields_bytes, fields) \
             VALUES ({}, NULL, NULL, 'STRAY', 'in the way', NULL, 'test', CURRENT_TIMESTAMP, 2, '[]')",
            head + 1
        ))
        .await
        .unwrap();
    let err = store
        .write(&admin(), count_edit(41, revision))
        .await
        .expect_err("the change row is taken");
    assert_eq!(err.code(), "STORE_QUERY_FAILED", "{err}");
    assert_eq!(other.head_revision().await.unwrap(), head);
    assert_eq!(report_revision(&other).await, revision);
    other
        .connection()
        .execute_unprepared(&format!("DELETE FROM change WHERE revision = {}", head + 1))
        .await
        .unwrap();

    let mut revision = revision;
    for count in 42..45 {
        let outcome = store
            .write(&admin(), count_edit(count, revision))
            .await
            .expect("a write after a refused one");
        assert_committed(&store, &url, outcome.revision).await;
        revision = outcome.revision;
    }
}
on_both_databases!(
    a_write_refused_mid_way_leaves_the_writer_healthy,
    multi_thread
);

/// Postgres: the writer's connection killed while its write waits (`pg_terminate_backend`)
/// fails that write as unavailable, and the next writes commit on a new connection.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_writer_connection_on_postgres_is_replaced() {
    let (store, url, _dir) = peru_at(Backend::Postgres).await;
    let other = Store::connect(&url).await.unwrap();
    store.set_write_timeouts(WriteTimeouts {
        lock: Duration::from_secs(20),
        write: Duration::from_secs(20),
    });
    let revision = report_revision(&store).await;
    let holder = hold_write_lock(&other, Backend::Postgres).await;
    let write = tokio::spawn({
        let store = store.clone();
        async move { store.write(&admin(), count_edit(7, revision)).await }
    });
    // The write waits on the counter's row lock: find its connection and end it.
    let mut killed = 0;
    for _ in 0..100 {
        tokio::time::sleep(Duration::from_millis(50)).await;
        killed = scalar(
            &other,
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity \
             WHERE wait_event_type = 'Lock' AND query LIKE 'UPDATE store_revision%'",
        )
        .await;
        if killed > 0 {
            break;
        }
    }
    assert_eq!(killed, 1, "the waiting write was not found");
    let err = write.await.unwrap().expect_err("its connection was killed");
    assert_eq!(err.code(), "STORE_UNAVAILABLE", "{err}");
    holder.rollback().await.unwrap();

    let mut revision = revision;
    for count in 8..11 {
        let outcome = store
            .write(&admin(), count_edit(count, revision))
            .await
            .expect("a write after the killed one");
        assert_committed(&store, &url, outcome.revision).await;
        revision = outcome.revision;
    }
}

/// A write behind another process's held lock gives up after its lock timeout with
/// `WRITE_LOCK_TIMEOUT` (this process's writers queued behind it too), one whose statement
/// runs past its time limit gets `WRITE_TIMEOUT`; neither writes anything, and once the lock
/// is released writes commit again.
async fn writes_are_bounded_in_time_with_their_own_codes(backend: Backend) {
    let (store, url, _dir) = peru_at(backend).await;
    let other = Store::connect(&url).await.unwrap();
    let revision = report_revision(&store).await;
    store.set_write_timeouts(WriteTimeouts {
        lock: Duration::from_millis(300),
        write: Duration::from_secs(30),
    });

    let holder = hold_write_lock(&other, backend).await;
    let started = Instant::now();
    let err = store
        .write(&admin(), count_edit(5, revision))
        .await
        .expect_err("the lock is held");
    assert_eq!(err.code(), "WRITE_LOCK_TIMEOUT", "{err}");
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    // Two writers of this process at once: the second waits for its turn, bounded too.
    let started = Instant::now();
    let actor = admin();
    let (first, second) = tokio::join!(
        store.write(&actor, count_edit(6, revision)),
        store.write(&actor, count_edit(7, revision)),
    );
    for result in [first, second] {
        assert_eq!(
            result.expect_err("the lock is held").code(),
            "WRITE_LOCK_TIMEOUT"
        );
    }
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    holder.rollback().await.unwrap();
    assert_eq!(other.head_revision().await.unwrap(), revision);

    // A write whose statements run past its limit.
    store.set_write_timeouts(WriteTimeouts {
        lock: Duration::from_secs(10),
        write: Duration::from_millis(if backend == Backend::Postgres { 300 } else { 1 }),
    });
    let holder = if backend == Backend::Postgres {
        // The report's row held: the write's stamp of the report waits on it, past its limit.
        let txn = other.connection().begin().await.unwrap();
        txn.execute_unprepared("SELECT id FROM report WHERE id = 1 FOR UPDATE")
            .await
            .unwrap();
        Some(txn)
    } else {
        // SQLite has no row locks: a 1 ms limit cuts any write short.
        None
    };
    let started = Instant::now();
    let err = store
        .write(&admin(), count_edit(8, revision))
        .await
        .expect_err("the write runs too long");
    assert_eq!(err.code(), "WRITE_TIMEOUT", "{err}");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    if let Some(holder) = holder {
        holder.rollback().await.unwrap();
    }
    assert_eq!(other.head_revision().await.unwrap(), revision);
    assert_eq!(report_revision(&other).await, revision);

    store.set_write_timeouts(WriteTimeouts::default());
    let outcome = store
        .write(&admin(), count_edit(9, revision))
        .await
        .expect("a write once the locks are gone");
    assert_committed(&store, &url, outcome.revision).await;
}
on_both_databases!(
    writes_are_bounded_in_time_with_their_own_codes,
    multi_thread
);

/// A writer who may not write the target is refused at once, while another process holds
/// the write lock: before the lock, with one small read at most. Adding an organisation takes
/// an admin, like changing one.
async fn refused_writers_are_refused_before_the_write_lock(backend: Backend) {
    let (store, url, _dir) = peru_at(backend).await;
    let other = Store::connect(&url).await.unwrap();
    let revision = report_revision(&store).await;
    let colombia = editor_of("COL");
    let holder = hold_write_lock(&other, backend).await;

    let peru = plangraph_domain::PERU_2023_END_YEAR;
    let document = plangraph_domain::parse_report(peru.as_bytes()).unwrap();
    let import = ReportImport {
        document: &document,
        country: plangraph_persistence::CountryRef::from_reference(
            plangraph_domain::reference::country_by_iso3("PER").unwrap(),
        ),
        source_name: "peru.txt".to_owned(),
        source_sha256: "0".repeat(64),
        synthetic: false,
        organizations: Vec::new(),
    };
    let refused = [
        count_edit(3, revision),
        organization("Encuentros SJM"),
        WriteRequest::UpdateOrganization {
            organization_id: 1,
            expected_revision: 0,
            patch: Default::default(),
        },
        WriteRequest::Import {
            import,
            options: ImportOptions::default(),
        },
    ];
    for request in refused {
        let started = Instant::now();
        let err = tokio::time::timeout(Duration::from_secs(2), store.write(&colombia, request))
            .await
            .expect("a refused writer waited for the lock")
            .expect_err("an editor of Colombia");
        assert_eq!(err.code(), "FORBIDDEN", "{err}");
        assert!(started.elapsed() < Duration::from_secs(1));
    }
    holder.rollback().await.unwrap();

    // Not the editor of Peru's organisation either; an admin's, and Peru's report is Peru's.
    let err = store
        .write(&editor_of("PER"), organization("Encuentros SJM"))
        .await
        .expect_err("an editor adds no organisation");
    assert_eq!(err.code(), "FORBIDDEN");
    store
        .write(&admin(), organization("Encuentros SJM"))
        .await
        .expect("an admin adds one");
    let revision = report_revision(&store).await;
    let outcome = store
        .write(&editor_of("PER"), count_edit(4, revision))
        .await
        .expect("Peru's editor writes Peru's report");
    assert_committed(&store, &url, outcome.revision).await;
}
on_both_databases!(
    refused_writers_are_refused_before_the_write_lock,
    multi_thread
);
