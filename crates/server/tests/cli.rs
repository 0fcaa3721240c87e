//! The `plangraph` binary as a user runs it: import, serve, schema, in one working directory
//! with the default store.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_plangraph");
const PERU: &str = include_str!("../../../reports/rmrp-2023-end-year-report-peru.txt");

fn plangraph(dir: &Path, args: &[&str]) -> std::process::Output {
    Command::new(BIN)
        .args(args)
        .current_dir(dir)
        .env_remove("DATABASE_URL")
        .env_remove("PLANGRAPH_LISTEN")
        .output()
        .expect("run plangraph")
}

fn db_bytes(dir: &Path) -> Vec<u8> {
    // Checkpointed content: every write goes through the WAL, so compare both files.
    let mut bytes = std::fs::read(dir.join("plangraph.db")).unwrap_or_default();
    bytes.extend(std::fs::read(dir.join("plangraph.db-wal")).unwrap_or_default());
    bytes
}

#[test]
fn a_corrupted_copy_fails_with_its_line_and_leaves_the_store_as_it_was() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("rmrp-2023-end-year-report-peru.txt"), PERU).unwrap();
    let ok = plangraph(
        dir.path(),
        &["import", "rmrp-2023-end-year-report-peru.txt"],
    );
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    assert!(String::from_utf8_lossy(&ok.stdout).contains("imported report 1 (PER 2023)"));

    let before = db_bytes(dir.path());
    let corrupted = PERU.replacen("$20.44 M", "$20.4.4 M", 1);
    std::fs::write(dir.path().join("broken-peru.txt"), corrupted).unwrap();
    let bad = plangraph(dir.path(), &["import", "broken-peru.txt"]);
    assert!(!bad.status.success());
    let stderr = String::from_utf8_lossy(&bad.stderr);
    assert!(
        stderr.contains(
            "error[REPORT_BAD_NUMBER]: broken-peru.txt:line 10: cannot read funding received"
        ),
        "{stderr}"
    );
    assert_eq!(db_bytes(dir.path()), before, "the store changed");

    let again = plangraph(
        dir.path(),
        &["import", "rmrp-2023-end-year-report-peru.txt"],
    );
    assert!(String::from_utf8_lossy(&again.stdout).contains("unchanged report 1 (PER 2023)"));
}

#[test]
fn a_missing_file_and_an_unknown_country_are_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let missing = plangraph(dir.path(), &["import", "nope.txt"]);
    assert!(!missing.status.success());
    assert!(
        String::from_utf8_lossy(&missing.stderr).contains("error[IO_ERROR]: cannot read nope.txt")
    );

    std::fs::write(dir.path().join("report.txt"), PERU).unwrap();
    let unknown = plangraph(dir.path(), &["import", "report.txt"]);
    assert!(String::from_utf8_lossy(&unknown.stderr).contains("error[IMPORT_UNKNOWN_COUNTRY]"));
    let named = plangraph(dir.path(), &["import", "report.txt", "--country", "PER"]);
    assert!(
        named.status.success(),
        "{}",
        String::from_utf8_lossy(&named.stderr)
    );
}

#[test]
fn schema_prints_the_checked_in_sdl() {
    let out = plangraph(Path::new("."), &["schema"]);
    let checked_in =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../schema.graphql"))
            .unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), checked_in);
}

fn http_get(addr: &str, path: &str) -> String {
    let mut stream = TcpStream::connect(addr).unwrap();
    // The preflight header a CSRF-aware client sends with a GET query.
    write!(
        stream,
        "GET {path} HTTP/1.0\r\nHost: {addr}\r\napollo-require-preflight: true\r\n\r\n"
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    response
}

/// A running `plangraph serve` in `dir` with the default store; killed when dropped.
struct Serving {
    child: Child,
    addr: String,
}

impl Drop for Serving {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `plangraph serve --listen 127.0.0.1:0` in `dir` and waits for the address it logs.
fn serve(dir: &Path) -> Serving {
    serve_with(dir, &[])
}

/// [`serve`] with more arguments.
fn serve_with(dir: &Path, args: &[&str]) -> Serving {
    let mut child = Command::new(BIN)
        .args(["serve", "--listen", "127.0.0.1:0"])
        .args(args)
        .current_dir(dir)
        .env_remove("DATABASE_URL")
        .env_remove("PLANGRAPH_LISTEN")
        .env("PLANGRAPH_LOG_FORMAT", "json")
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut tx = Some(tx);
        for line in BufReader::new(stderr).lines() {
            let Ok(line) = line else { break };
            let json: serde_json::Value = serde_json::from_str(&line).unwrap_or_default();
            if let Some(addr) = json["fields"]["addr"].as_str()
                && let Some(tx) = tx.take()
            {
                let _ = tx.send(addr.to_owned());
            }
        }
    });
    let mut serving = Serving {
        child,
        addr: String::new(),
    };
    serving.addr = rx
        .recv_timeout(Duration::from_secs(60))
        .expect("no listening line (the server exited or took over 60 s)");
    serving
}

#[test]
fn serve_loads_the_bundled_report_logs_its_port_and_stops_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = serve(dir.path());
    let addr = server.addr.clone();

    assert!(http_get(&addr, "/healthz").contains("\"ok\""));
    let response = http_get(
        &addr,
        "/graphql?query=%7Bcountry(iso3:%22PER%22)%7Breport(year:2023)%7Btotals%7BpeopleInNeed%7D%7D%7D%7D",
    );
    assert!(response.contains("\"peopleInNeed\":2060000"), "{response}");

    Command::new("kill")
        .args(["-TERM", &server.child.id().to_string()])
        .status()
        .unwrap();
    let status = wait_bounded(&mut server.child, Duration::from_secs(30))
        .expect("the server stops within 30 s of SIGTERM");
    assert!(
        status.success(),
        "graceful shutdown exits 0, got {status:?}"
    );
}

/// Waits up to `timeout` for `child` to exit; kills it and returns `None` if it does not.
fn wait_bounded(child: &mut Child, timeout: Duration) -> Option<ExitStatus> {
    let deadline = Instant::now() + timeout;
    loop {
        match child.try_wait() {
            Ok(Some(status)) => return Some(status),
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(10)),
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                return None;
            }
        }
    }
}

/// Starts `plangraph ARGS` in `dir` with the default store, output piped.
fn spawn(dir: &Path, args: &[&str]) -> Child {
    Command::new(BIN)
        .args(args)
        .current_dir(dir)
        .env_remove("DATABASE_URL")
        .env_remove("PLANGRAPH_MAX_REPORT_BYTES")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run plangraph")
}

/// Collects a spawned command's output, killing it if it runs longer than `timeout`.
fn finish(mut child: Child, timeout: Duration) -> Option<Output> {
    let mut stdout = child.stdout.take().unwrap();
    let mut stderr = child.stderr.take().unwrap();
    let out = std::thread::spawn(move || {
        let mut text = Vec::new();
        let _ = stdout.read_to_end(&mut text);
        text
    });
    let err = std::thread::spawn(move || {
        let mut text = Vec::new();
        let _ = stderr.read_to_end(&mut text);
        text
    });
    let status = wait_bounded(&mut child, timeout)?;
    Some(Output {
        status,
        stdout: out.join().unwrap(),
        stderr: err.join().unwrap(),
    })
}

/// Rounds of the two-imports race: opening a new SQLite file goes wrong in a small fraction
/// of starts, so one round proves little.
const IMPORT_RACE_ROUNDS: usize = 50;

/// Two `plangraph import` processes started together on the same new SQLite file (as two
/// terminals, or a script and a person, would) both succeed: one imports the report, the
/// other finds it already there. Neither fails with "database is locked" while creating,
/// migrating or writing the store, and the report is not imported twice.
#[test]
fn two_imports_at_once_into_one_sqlite_file_both_succeed() {
    for round in 1..=IMPORT_RACE_ROUNDS {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("rmrp-2023-end-year-report-peru.txt"), PERU).unwrap();
        let args = ["import", "rmrp-2023-end-year-report-peru.txt"];
        let first = spawn(dir.path(), &args);
        let second = spawn(dir.path(), &args);
        let mut verbs = Vec::new();
        for child in [first, second] {
            let out = finish(child, Duration::from_secs(60)).expect("an import took over 60 s");
            let stdout = String::from_utf8_lossy(&out.stdout);
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert!(
                out.status.success() && !stderr.contains("database is locked"),
                "round {round}: an import failed ({:?}):\n{stdout}\n{stderr}",
                out.status
            );
            verbs.push(
                stdout
                    .split_whitespace()
                    .next()
                    .unwrap_or_default()
                    .to_owned(),
            );
        }
        verbs.sort();
        assert_eq!(
            verbs,
            ["imported", "unchanged"],
            "round {round}: exactly one import writes the report"
        );
    }
}

/// The importer never reads more than its limit: an endless input (`/dev/zero`) is refused
/// with `REPORT_TOO_LARGE` within seconds instead of filling memory, and so is the real report
/// under a 1,000-byte `--max-report-bytes`; neither creates the store.
#[test]
fn an_oversized_report_is_refused_without_being_read() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("rmrp-2023-end-year-report-peru.txt"), PERU).unwrap();
    let started = Instant::now();
    let endless = finish(
        spawn(dir.path(), &["import", "/dev/zero", "--country", "PER"]),
        Duration::from_secs(10),
    )
    .expect("importing /dev/zero did not stop within 10 s: it reads past the limit");
    let elapsed = started.elapsed();
    let stderr = String::from_utf8_lossy(&endless.stderr);
    assert!(!endless.status.success(), "{stderr}");
    assert!(stderr.contains("error[REPORT_TOO_LARGE]"), "{stderr}");
    assert!(elapsed < Duration::from_secs(5), "took {elapsed:?}");

    let capped = finish(
        spawn(
            dir.path(),
            &[
                "import",
                "rmrp-2023-end-year-report-peru.txt",
                "--max-report-bytes",
                "1000",
            ],
        ),
        Duration::from_secs(10),
    )
    .expect("import finished");
    let stderr = String::from_utf8_lossy(&capped.stderr);
    assert!(!capped.status.success(), "{stderr}");
    assert!(
        stderr.contains("error[REPORT_TOO_LARGE]") && stderr.contains("1000 bytes"),
        "{stderr}"
    );
    assert!(
        !dir.path().join("plangraph.db").exists(),
        "a refused file created the store"
    );
}

/// A report imported by absolute path records its file name as its source, never the
/// directory it was imported from (a path on the importer's machine is not the public's
/// business, and it would change with every checkout).
#[test]
fn an_import_by_absolute_path_records_only_the_file_name() {
    let dir = tempfile::tempdir().unwrap();
    let source = tempfile::tempdir().unwrap();
    let file = source.path().join("rmrp-2023-end-year-report-peru.txt");
    std::fs::write(&file, PERU).unwrap();
    let imported = plangraph(dir.path(), &["import", file.to_str().unwrap()]);
    assert!(
        imported.status.success(),
        "{}",
        String::from_utf8_lossy(&imported.stderr)
    );
    assert!(
        String::from_utf8_lossy(&imported.stdout).starts_with("imported report 1 (PER 2023)"),
        "{}",
        String::from_utf8_lossy(&imported.stdout)
    );

    let server = serve(dir.path());
    let response = http_get(
        &server.addr,
        "/graphql?query=%7Breports%7Bedges%7Bnode%7Bprovenance%7BsourceName%7D%7D%7D%7D%7D",
    );
    assert!(
        response.contains(
            r#"{"data":{"reports":{"edges":[{"node":{"provenance":{"sourceName":"rmrp-2023-end-year-report-peru.txt"}}}]}}}"#
        ),
        "{response}"
    );
    let source_dir = source.path().to_string_lossy();
    assert!(!response.contains(source_dir.as_ref()), "{response}");
}

/// Tokens at the command line: `create` prints the secret once (the store keeps only a hash),
/// `list` shows the token without it, `revoke` stops it; bad scopes are usage errors.
#[test]
fn tokens_are_created_listed_and_revoked() {
    let dir = tempfile::tempdir().unwrap();
    let created = plangraph(
        dir.path(),
        &[
            "token",
            "create",
            "--role",
            "editor",
            "--country",
            "per",
            "--name",
            "GTRM IM team",
        ],
    );
    assert!(
        created.status.success(),
        "{}",
        String::from_utf8_lossy(&created.stderr)
    );
    let secret = String::from_utf8_lossy(&created.stdout).trim().to_owned();
    assert!(secret.starts_with("pgt_") && secret.len() == 68, "{secret}");

    let listed =
        String::from_utf8_lossy(&plangraph(dir.path(), &["token", "list"]).stdout).into_owned();
    assert!(
        listed.contains("1\tEDITOR\tPER\tGTRM IM team\t"),
        "{listed}"
    );
    assert!(!listed.contains(&secret[4..]), "the secret is listed");
    let stored = db_bytes(dir.path());
    assert!(
        !stored.windows(secret.len()).any(|w| w == secret.as_bytes()),
        "the secret is stored in the clear"
    );

    let revoked = plangraph(dir.path(), &["token", "revoke", "1"]);
    assert!(revoked.status.success());
    let listed =
        String::from_utf8_lossy(&plangraph(dir.path(), &["token", "list"]).stdout).into_owned();
    assert!(!listed.trim_end().ends_with("\t-"), "{listed}");

    let unknown = plangraph(dir.path(), &["token", "revoke", "99"]);
    assert!(String::from_utf8_lossy(&unknown.stderr).contains("error[NOT_FOUND]"));
    let editor_of_nothing = plangraph(dir.path(), &["token", "create", "--role", "editor"]);
    assert!(String::from_utf8_lossy(&editor_of_nothing.stderr).contains("error[USAGE]"));
    let admin_of_one = plangraph(
        dir.path(),
        &["token", "create", "--role", "admin", "--country", "PER"],
    );
    assert!(String::from_utf8_lossy(&admin_of_one.stderr).contains("error[USAGE]"));
    let not_a_country = plangraph(
        dir.path(),
        &["token", "create", "--role", "editor", "--country", "VEN"],
    );
    assert!(String::from_utf8_lossy(&not_a_country.stderr).contains("error[USAGE]"));
}

/// `plangraph watch` prints a change another process commits, then stops at `--limit`.
#[test]
fn watch_prints_a_change_made_by_another_process() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("rmrp-2023-end-year-report-peru.txt"), PERU).unwrap();
    assert!(
        plangraph(
            dir.path(),
            &["import", "rmrp-2023-end-year-report-peru.txt"]
        )
        .status
        .success()
    );
    let watcher = spawn(
        dir.path(),
        &[
            "watch",
            "--country",
            "PER",
            "--after-revision",
            "1",
            "--limit",
            "1",
        ],
    );
    // A re-import with a paragraph rewritten (which needs consent), by another process:
    // revision 2.
    let edited = PERU.replacen("Finally, R4V partners", "Finally, the R4V partners", 1);
    std::fs::write(dir.path().join("edited-peru.txt"), edited).unwrap();
    let import = plangraph(
        dir.path(),
        &[
            "import",
            "edited-peru.txt",
            "--country",
            "PER",
            "--allow-removals",
        ],
    );
    assert!(
        import.status.success(),
        "{}",
        String::from_utf8_lossy(&import.stderr)
    );
    let out = finish(watcher, Duration::from_secs(20)).expect("watch stops after one change");
    let printed = String::from_utf8_lossy(&out.stdout);
    assert!(printed.starts_with("revision 2 at "), "{printed}");
    assert!(
        printed.contains("sections.LESSONS_LEARNED.paragraphs.4: \"Finally, R4V partners"),
        "{printed}"
    );
    assert!(printed.contains("\"Finally, the R4V partners"), "{printed}");
}

/// The query limits are the server's to set: `--max-depth 3` refuses a document four levels
/// deep that the default admits.
#[test]
fn query_limits_are_set_on_the_command_line() {
    let dir = tempfile::tempdir().unwrap();
    let strict = serve_with(dir.path(), &["--max-depth", "3"]);
    let deep = "/graphql?query=%7Bcountry(iso3:%22PER%22)%7Breport(year:2023)%7Bsector(code:%22EDU%22)%7Bsector%7Bcode%7D%7D%7D%7D%7D";
    let refused = http_get(&strict.addr, deep);
    assert!(refused.contains("QUERY_TOO_DEEP"), "{refused}");
    drop(strict);
    let default = serve(dir.path());
    let answered = http_get(&default.addr, deep);
    assert!(answered.contains("\"code\":\"EDU\""), "{answered}");
}

/// An address already in use is a clear error with its code, not a panic.
#[test]
fn an_address_in_use_is_listen_failed() {
    let dir = tempfile::tempdir().unwrap();
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let out = plangraph(dir.path(), &["serve", "--listen", &addr]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("error[LISTEN_FAILED]"), "{stderr}");
}

#[test]
fn generate_writes_synthetic_reports_beside_the_bundled_one_and_refuses_impossible_plans() {
    let dir = tempfile::tempdir().unwrap();
    let impossible = plangraph(dir.path(), &["generate", "--countries", "18"]);
    assert!(!impossible.status.success());
    let stderr = String::from_utf8_lossy(&impossible.stderr);
    assert!(
        stderr.contains("error[GENERATE_INVALID_PLAN]: --countries must be between 1 and 17"),
        "{stderr}"
    );
    assert!(
        !dir.path().join("plangraph.db").exists(),
        "a refused plan created the store"
    );

    let args = [
        "generate",
        "--countries",
        "2",
        "--years",
        "1",
        "--last-year",
        "2023",
        "--organizations",
        "20",
        "--partners-per-report",
        "5",
        "--donors-per-report",
        "2",
    ];
    let first = plangraph(dir.path(), &args);
    let stdout = String::from_utf8_lossy(&first.stdout);
    assert!(
        first.status.success(),
        "{}",
        String::from_utf8_lossy(&first.stderr)
    );
    assert!(
        stdout.contains("2 report(s) written, 0 unchanged; organisations: 20 created, 0 reused"),
        "{stdout}"
    );
    let again = plangraph(dir.path(), &args);
    let stdout = String::from_utf8_lossy(&again.stdout);
    assert!(
        stdout.contains("0 report(s) written, 2 unchanged; organisations: 0 created, 20 reused"),
        "{stdout}"
    );
}
