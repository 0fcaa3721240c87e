//! Backup and restore (issue 14): `plangraph backup` copies a SQLite store while a writer
//! commits, `plangraph restore` brings a copy back under a running server (its queries and
//! subscribers follow), a bad backup is refused by code with the store unchanged, and the
//! README's `pg_dump`/`pg_restore` recipe is run for real on Postgres.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::time::Duration;

use plangraph_domain::access::{Actor, Role};
use plangraph_domain::edit::{NewOrganization, Text};
use plangraph_persistence::{Store, WriteRequest};
use sea_orm::{ConnectionTrait, Database, DatabaseConnection, Statement};
use serde_json::{Value, json};

use crate::support::server::{Server, Subscriber, admin_token, plangraph, post_json_with_head};
use crate::support::writes::{store_checksum, token};
use crate::support::{Backend, data, database_url};
use crate::write_safety::{count_edit, peru_at, report_revision};

fn admin() -> Actor {
    Actor::local("backup test")
}

/// The SQLite file behind a test store's URL (`sqlite://PATH?mode=rwc`).
fn file_of(url: &str) -> PathBuf {
    let rest = url.strip_prefix("sqlite://").expect("a SQLite URL");
    PathBuf::from(rest.split('?').next().unwrap_or(rest))
}

fn text(path: &Path) -> &str {
    path.to_str().expect("a UTF-8 path")
}

/// Runs `plangraph ARGS` on `url` off the runtime's threads.
async fn cli(url: &str, args: &[&str]) -> std::process::Output {
    let url = url.to_owned();
    let args: Vec<String> = args.iter().map(|a| (*a).to_owned()).collect();
    tokio::task::spawn_blocking(move || {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        plangraph(&url, &args)
    })
    .await
    .expect("the command's thread")
}

/// The `error[CODE]` a failed command printed.
fn error_code(out: &std::process::Output) -> String {
    assert!(
        !out.status.success(),
        "the command succeeded: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    stderr
        .lines()
        .find_map(|line| line.strip_prefix("error[")?.split(']').next())
        .unwrap_or_else(|| panic!("no error[CODE] in {stderr}"))
        .to_owned()
}

fn succeeded(out: &std::process::Output) -> String {
    assert!(
        out.status.success(),
        "the command failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A backup file opened read-only, as a tool would.
async fn open_copy(path: &Path) -> DatabaseConnection {
    Database::connect(format!("sqlite://{}?mode=ro", text(path)))
        .await
        .expect("the backup opens as SQLite")
}

async fn scalar(db: &DatabaseConnection, sql: &str) -> i64 {
    db.query_one_raw(Statement::from_string(db.get_database_backend(), sql))
        .await
        .expect("a statement")
        .expect("a row")
        .try_get_by_index::<i64>(0)
        .expect("a number")
}

async fn integrity(db: &DatabaseConnection) -> Vec<String> {
    db.query_all_raw(Statement::from_string(
        db.get_database_backend(),
        "PRAGMA integrity_check",
    ))
    .await
    .expect("integrity_check runs")
    .iter()
    .map(|row| row.try_get_by_index::<String>(0).expect("text"))
    .collect()
}

/// (a) A backup taken while a writer commits in a loop through the write path: the copy opens,
/// passes `PRAGMA integrity_check`, holds every write committed before the backup started
/// (the history without a gap up to its revision, the report at that revision), and nothing
/// but the finished copy is left in the directory.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_backup_taken_while_a_writer_commits_holds_every_write_before_it() {
    let (store, url, dir) = peru_at(Backend::Sqlite).await;
    let dir = dir.expect("a SQLite store's directory");
    let start = report_revision(&store).await;
    let committed = Arc::new(AtomicI64::new(start));
    let stop = Arc::new(AtomicBool::new(false));
    let writer = tokio::spawn({
        let (store, committed, stop) = (store.clone(), committed.clone(), stop.clone());
        async move {
            let mut count = 1_000_u32;
            while !stop.load(Ordering::SeqCst) {
                count += 1;
                let expected = committed.load(Ordering::SeqCst);
                let outcome = store
                    .write(&admin(), count_edit(count, expected))
                    .await
                    .unwrap_or_else(|e| panic!("a write beside the backup failed: {e}"));
                committed.store(outcome.revision, Ordering::SeqCst);
            }
        }
    });
    while committed.load(Ordering::SeqCst) < start + 20 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }

    let target = dir.path().join("backup.db");
    let before = committed.load(Ordering::SeqCst);
    let out = cli(&url, &["backup", text(&target)]).await;
    let after = committed.load(Ordering::SeqCst);
    stop.store(true, Ordering::SeqCst);
    writer.await.expect("the writer");
    let line = succeeded(&out);
    assert!(
        after > before,
        "the writer committed nothing while the backup ran"
    );

    let copy = open_copy(&target).await;
    assert_eq!(integrity(&copy).await, ["ok"]);
    let revision = scalar(&copy, "SELECT value FROM store_revision WHERE id = 1").await;
    assert!(
        (before..=after).contains(&revision),
        "the copy is at revision {revision}, not between {before} (committed before it started) and {after}"
    );
    assert!(
        line.contains(&format!("revision {revision}, 1 report(s)")),
        "{line}"
    );
    // Every change up to the copy's revision, none after it, the report at it.
    assert_eq!(
        scalar(&copy, "SELECT COUNT(DISTINCT revision) FROM change").await,
        revision
    );
    assert_eq!(
        scalar(&copy, "SELECT MAX(revision) FROM change").await,
        revision
    );
    assert_eq!(
        scalar(&copy, "SELECT revision FROM report WHERE id = 1").await,
        revision
    );
    let donors = scalar(
        &copy,
        "SELECT count FROM partner_count WHERE report_id = 1 AND role = 'DONOR'",
    )
    .await;
    assert_eq!(
        donors,
        1_000 + revision - start,
        "the copy's figures are the ones written at its revision"
    );
    let bytes = std::fs::metadata(&target).expect("the backup").len();
    assert!(line.contains(&format!("{bytes} bytes")), "{line}");
    copy.close().await.expect("close the copy");

    let mut left: Vec<String> = std::fs::read_dir(dir.path())
        .expect("the directory")
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|name| !name.starts_with("test.db"))
        .collect();
    left.sort();
    assert_eq!(left, ["backup.db"], "a temporary file was left behind");
}

const EDU: &str =
    r#"{ country(iso3: "PER") { report(year: 2023) { sector(code: "EDU") { peopleReached } } } }"#;

/// EDU people reached, read anonymously through `server` (so from its kept answers when it
/// has one for the store's version), and the cache's verdict.
fn edu_reached(server: &Server) -> (i64, Option<String>) {
    let (status, head, body) =
        post_json_with_head(&server.addr, "/graphql", &json!({ "query": EDU }), None)
            .expect("POST /graphql");
    assert_eq!(status, 200, "{body}");
    let verdict = head.lines().find_map(|line| {
        line.to_ascii_lowercase()
            .strip_prefix("x-plangraph-cache:")
            .map(|v| v.trim().to_owned())
    });
    let reached = body["data"]["country"]["report"]["sector"]["peopleReached"]
        .as_i64()
        .unwrap_or_else(|| panic!("no EDU figure in {body}"));
    (reached, verdict)
}

/// Sets EDU people reached through `server` as of revision `expected`; the new revision.
fn set_edu(server: &Server, token: &str, expected: i64, reached: &str) -> i64 {
    let data = server.data(
        &format!(
            r#"mutation {{ setSectorFigures(reportId: "1", expectedRevision: {expected}, sectorCode: "EDU", figures: {{ peopleReached: "{reached}" }}) {{ changed revision }} }}"#
        ),
        Some(token),
    );
    assert_eq!(data["setSectorFigures"]["changed"], true, "{data}");
    data["setSectorFigures"]["revision"]
        .as_i64()
        .unwrap_or_else(|| panic!("no revision in {data}"))
}

/// (b) A restore under a running server: the server's kept answer for the state after the
/// backup is not served (a query shows the restored figure), and a subscriber that subscribed
/// before the restore receives the next change, although it comes at the revision the undone
/// write had.
#[test]
fn a_restore_under_a_running_server_reaches_its_queries_and_subscribers() {
    let runtime = tokio::runtime::Runtime::new().expect("a runtime");
    let (url, dir) = runtime.block_on(database_url(Backend::Sqlite));
    let dir = dir.expect("a SQLite store's directory");
    let server = Server::start(&url);
    let secret = admin_token(&url);
    let first = set_edu(&server, &secret, server.peru_revision(), "41.0 K");

    let backup = dir.path().join("before.db");
    let line = succeeded(&plangraph(&url, &["backup", text(&backup)]));
    assert!(line.contains(&format!("revision {first},")), "{line}");

    let undone = set_edu(&server, &secret, first, "42.0 K");
    assert_eq!(edu_reached(&server).0, 42_000);
    assert_eq!(
        edu_reached(&server),
        (42_000, Some("hit".to_owned())),
        "the answer is kept before the restore"
    );

    let query = format!(
        r#"subscription {{ figuresChanged(reportId: "1", sectorCode: "EDU", afterRevision: {undone}) {{ revision figures {{ peopleReached }} }} }}"#
    );
    let mut subscriber = Subscriber::start(&[
        "--url",
        &server.ws_url(),
        "--protocol",
        "graphql-transport-ws",
        "--query",
        &query,
        "--count",
        "1",
        "--timeout-ms",
        "30000",
    ]);
    subscriber.expect_line("connected", Duration::from_secs(20));
    // The server's feed is running (its SQLite poller looks once a second) before the restore.
    std::thread::sleep(Duration::from_millis(1500));

    let line = succeeded(&plangraph(&url, &["restore", text(&backup)]));
    assert!(line.contains(&format!("revision {first},")), "{line}");
    assert_eq!(
        edu_reached(&server).0,
        41_000,
        "a kept answer of the state before the restore was served\nserver log:\n{}",
        server.logs()
    );
    assert_eq!(server.peru_revision(), first);

    let next = set_edu(&server, &secret, first, "43.0 K");
    assert_eq!(
        next, undone,
        "the next write takes the undone write's revision"
    );
    let event = subscriber.expect_line("next", Duration::from_secs(20));
    let event: Value = serde_json::from_str(&event).expect("JSON");
    assert_eq!(
        event["payload"]["data"]["figuresChanged"],
        json!({ "revision": next, "figures": [{ "peopleReached": 43_000 }] }),
        "{}\nserver log:\n{}",
        subscriber.transcript(),
        server.logs()
    );
    let (code, _) = subscriber.finish(Duration::from_secs(10));
    assert_eq!(code, Some(0), "{}", subscriber.transcript());
    assert_eq!(edu_reached(&server).0, 43_000);
}

/// A valid backup of a Peru store at `url`, written by the library beside it.
async fn valid_backup(store: &Store, dir: &Path, name: &str) -> PathBuf {
    let path = dir.join(name);
    store.backup(&path).await.expect("a backup");
    path
}

/// (c) Every bad restore is refused by its code and leaves the store as it was: a missing
/// file, a text file, a damaged copy, a SQLite file that is not a plangraph store, a copy with
/// other migrations, the store itself; and a backup over an existing file or into a missing
/// directory.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn bad_backups_and_restores_are_refused_by_code_and_change_nothing() {
    let (store, url, dir) = peru_at(Backend::Sqlite).await;
    let dir = dir.expect("a SQLite store's directory");
    let here = dir.path();
    let good = valid_backup(&store, here, "good.db").await;
    // A token after the backup: a refused restore must not take it away.
    token(&store, Role::Admin, &[]).await;
    store
        .write(&admin(), count_edit(77, report_revision(&store).await))
        .await
        .expect("a write after the backup");
    let before = store_checksum(&store).await;

    let text_file = here.join("notes.txt");
    std::fs::write(&text_file, "not a database, only words\n".repeat(200)).expect("write");

    let damaged = here.join("damaged.db");
    let mut bytes = std::fs::read(&good).expect("read the backup");
    let page = 4096;
    let pages = bytes.len() / page;
    for byte in &mut bytes[page * (pages / 3)..page * (2 * pages / 3)] {
        *byte = 0xA5;
    }
    std::fs::write(&damaged, bytes).expect("write");

    let other = here.join("other.db");
    let foreign = Database::connect(format!("sqlite://{}?mode=rwc", text(&other)))
        .await
        .expect("a new SQLite file");
    foreign
        .execute_unprepared("CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT)")
        .await
        .expect("a table");
    foreign.close().await.expect("close");

    let newer = valid_backup(&store, here, "newer.db").await;
    let edit = Database::connect(format!("sqlite://{}?mode=rw", text(&newer)))
        .await
        .expect("open the copy");
    edit.execute_unprepared(
        "INSERT INTO seaql_migrations (version, applied_at) VALUES ('m20991231_000001_from_the_future', 0)",
    )
    .await
    .expect("a migration this binary does not know");
    edit.close().await.expect("close");

    let missing = here.join("nowhere.db");
    let store_file = file_of(&url);
    let cases: [(&Path, &str); 6] = [
        (&missing, "BACKUP_FILE_MISSING"),
        (&text_file, "BACKUP_NOT_SQLITE"),
        (&damaged, "BACKUP_CORRUPT"),
        (&other, "BACKUP_NOT_PLANGRAPH"),
        (&newer, "BACKUP_MIGRATIONS_MISMATCH"),
        (&store_file, "BACKUP_IS_THE_STORE"),
    ];
    for (file, code) in cases {
        let out = cli(&url, &["restore", text(file)]).await;
        assert_eq!(error_code(&out), code, "restoring {}", file.display());
        assert_eq!(
            store_checksum(&store).await,
            before,
            "restoring {} changed the store",
            file.display()
        );
    }

    let out = cli(&url, &["backup", text(&good)]).await;
    assert_eq!(error_code(&out), "BACKUP_TARGET_EXISTS");
    let out = cli(
        &url,
        &["backup", text(&here.join("no-such-dir").join("b.db"))],
    )
    .await;
    assert_eq!(error_code(&out), "BACKUP_WRITE_FAILED");
    assert!(!here.join("no-such-dir").exists());

    // An in-memory store has no file to restore into.
    let memory = Store::connect("sqlite::memory:").await.expect("connect");
    memory.migrate().await.expect("migrate");
    let refused = memory.restore(&good).await.expect_err("refused");
    assert_eq!(refused.code(), "BACKUP_IN_MEMORY_STORE");

    // And the good backup restores: the token and the write after it are gone.
    let line = succeeded(&cli(&url, &["restore", text(&good)]).await);
    assert!(line.contains("1 report(s)"), "{line}");
    assert_ne!(store_checksum(&store).await, before);
    assert_eq!(
        scalar(store.connection(), "SELECT COUNT(*) FROM api_token").await,
        0,
        "tokens come back as they were at the backup"
    );
}

/// Restoring into the running store, in process: the store version's epoch is new, though
/// the revision is the backup's, and the restored rows are exactly the backup's.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_restore_brings_back_the_backup_with_a_new_epoch() {
    let (store, _url, dir) = peru_at(Backend::Sqlite).await;
    let dir = dir.expect("a SQLite store's directory");
    let at_backup = store.head_version().await.expect("version");
    let checksum = store_checksum(&store).await;
    let path = valid_backup(&store, dir.path(), "b.db").await;
    for count in [5, 6, 7] {
        let revision = report_revision(&store).await;
        store
            .write(&admin(), count_edit(count, revision))
            .await
            .expect("a write");
    }
    store
        .write(
            &admin(),
            WriteRequest::CreateOrganization(NewOrganization {
                name: Text::parse("name", "Written after the backup").expect("a name"),
                acronym: None,
                org_type: None,
                refugee_and_migrant_led: false,
                fts_id: None,
                synthetic: false,
            }),
        )
        .await
        .expect("an organisation");

    let summary = store.restore(&path).await.expect("restore");
    assert_eq!(summary.revision, at_backup.revision);
    let restored = store.head_version().await.expect("version");
    assert_eq!(restored.revision, at_backup.revision);
    assert_ne!(
        restored.epoch, at_backup.epoch,
        "the restored store has a new epoch"
    );
    // Equal but for the epoch.
    assert_eq!(checksum_at_epoch(&store, at_backup.epoch).await, checksum);
    // Writes go on from the backup's revision.
    let outcome = store
        .write(&admin(), count_edit(9, at_backup.revision))
        .await
        .expect("a write after the restore");
    assert_eq!(outcome.revision, at_backup.revision + 1);

    // Onto a new machine: `plangraph restore` into a file that does not exist yet.
    let fresh_url = format!("sqlite://{}?mode=rwc", text(&dir.path().join("fresh.db")));
    let line = succeeded(&cli(&fresh_url, &["restore", text(&path)]).await);
    assert!(
        line.contains(&format!("revision {}, 1 report(s)", at_backup.revision)),
        "{line}"
    );
    let fresh = Store::connect(&fresh_url).await.expect("connect");
    assert_eq!(
        data(&fresh, PERU).await["country"]["report"]["revision"],
        at_backup.revision
    );
    assert_eq!(checksum_at_epoch(&fresh, at_backup.epoch).await, checksum);
}

/// The store's checksum with its epoch set to `epoch`: a restore draws a new one, and the rest
/// must equal the backup's.
async fn checksum_at_epoch(store: &Store, epoch: i64) -> String {
    store
        .connection()
        .execute_unprepared(&format!(
            "UPDATE store_revision SET epoch = {epoch} WHERE id = 1"
        ))
        .await
        .expect("set the epoch back for the comparison");
    store_checksum(store).await
}

/// A Postgres tool where the test cluster finds its binaries.
fn pg_bin(tool: &str) -> PathBuf {
    crate::support::postgres::bin_dir().join(tool)
}

fn run(program: &Path, args: &[&str]) {
    let out = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", program.display()));
    assert!(
        out.status.success(),
        "{} {args:?} failed: {}{}",
        program.display(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

const PERU: &str = r#"{ country(iso3: "PER") { report(year: 2023) { revision title totals { peopleInNeed peopleReached fundingUsd } sectors { sector { code } peopleTargeted peopleReached requirementsUsd fundingUsd } partnerCounts { role count } } } }"#;

/// (d) Postgres: the README's recipe, run as written: `pg_dump --format=custom` of a store
/// with history and a token, `pg_restore --no-owner --exit-on-error` into a new database;
/// the restored store has the same rows, answers the same Peru query, and takes writes on
/// from there (sequences included). `plangraph backup`/`restore` on Postgres refuse with
/// `BACKUP_USE_PG_DUMP`, before connecting.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_postgres_recipe_restores_the_same_store() {
    let (store, url, _) = peru_at(Backend::Postgres).await;
    token(&store, Role::Admin, &[]).await;
    store
        .write(&admin(), count_edit(88, report_revision(&store).await))
        .await
        .expect("a write");
    let dir = tempfile::tempdir().expect("a directory");
    let dump = dir.path().join("plangraph.dump");

    let (pg_dump, source) = (pg_bin("pg_dump"), url.clone());
    let dump_arg = text(&dump).to_owned();
    tokio::task::spawn_blocking(move || {
        run(
            &pg_dump,
            &["--format=custom", "--file", &dump_arg, "--dbname", &source],
        );
    })
    .await
    .expect("pg_dump");

    let (restored_url, _) = database_url(Backend::Postgres).await;
    let (pg_restore, target) = (pg_bin("pg_restore"), restored_url.clone());
    let dump_arg = text(&dump).to_owned();
    tokio::task::spawn_blocking(move || {
        run(
            &pg_restore,
            &[
                "--no-owner",
                "--exit-on-error",
                "--dbname",
                &target,
                &dump_arg,
            ],
        );
    })
    .await
    .expect("pg_restore");

    let restored = Store::connect(&restored_url).await.expect("connect");
    restored.migrate().await.expect("nothing left to migrate");
    assert_eq!(
        store_checksum(&restored).await,
        store_checksum(&store).await
    );
    assert_eq!(data(&restored, PERU).await, data(&store, PERU).await);
    assert_eq!(
        restored.head_version().await.expect("version"),
        store.head_version().await.expect("version")
    );
    // Writes go on, new rows take new ids.
    let revision = report_revision(&restored).await;
    let outcome = restored
        .write(&admin(), count_edit(89, revision))
        .await
        .expect("a write on the restored database");
    assert_eq!(outcome.revision, revision + 1);
    token(&restored, Role::Admin, &[]).await;

    for command in ["backup", "restore"] {
        let out = cli(&restored_url, &[command, text(&dump)]).await;
        assert_eq!(
            error_code(&out),
            "BACKUP_USE_PG_DUMP",
            "plangraph {command}"
        );
    }
    let refused = store
        .backup(&dir.path().join("x.db"))
        .await
        .expect_err("refused");
    assert_eq!(refused.code(), "BACKUP_USE_PG_DUMP");
}

/// Tokens are restored as they were at the backup, through a running server: one created
/// after the backup stops working, one revoked after it works again.
#[test]
fn tokens_are_restored_as_they_were_at_the_backup() {
    let runtime = tokio::runtime::Runtime::new().expect("a runtime");
    let (url, dir) = runtime.block_on(database_url(Backend::Sqlite));
    let dir = dir.expect("a SQLite store's directory");
    let server = Server::start(&url);
    let kept = admin_token(&url);
    let revoked_later = admin_token(&url);
    let backup = dir.path().join("tokens.db");
    succeeded(&plangraph(&url, &["backup", text(&backup)]));
    let later = admin_token(&url);
    succeeded(&plangraph(&url, &["token", "revoke", "2"]));
    let write = |secret: &str| {
        let revision = server.peru_revision();
        let (status, body) = server
            .try_graphql(
                &format!(
                    r#"mutation {{ setSectorFigures(reportId: "1", expectedRevision: {revision}, sectorCode: "EDU", figures: {{ peopleReached: "{}.0 K" }}) {{ revision }} }}"#,
                    40 + revision
                ),
                Some(secret),
            )
            .expect("POST /graphql");
        (
            status,
            body["errors"][0]["extensions"]["code"]
                .as_str()
                .map(str::to_owned),
        )
    };
    assert_eq!(write(&later).1, None, "the new token writes");
    assert!(
        write(&revoked_later).1.is_some(),
        "the revoked token still writes"
    );

    succeeded(&plangraph(&url, &["restore", text(&backup)]));
    assert_eq!(
        write(&later).1.as_deref(),
        Some("UNAUTHENTICATED"),
        "a token created after the backup still writes"
    );
    assert_eq!(
        write(&revoked_later).1,
        None,
        "a token revoked after the backup is back"
    );
    assert_eq!(write(&kept).1, None);
}
