//! The `plangraph` binary as a user runs it: import, serve, schema, in one working directory
//! with the default store.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Command, Stdio};
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
    write!(stream, "GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n").unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    response
}

#[test]
fn serve_loads_the_bundled_report_logs_its_port_and_stops_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(BIN)
        .args(["serve", "--listen", "127.0.0.1:0"])
        .current_dir(dir.path())
        .env_remove("DATABASE_URL")
        .env("PLANGRAPH_LOG_FORMAT", "json")
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let mut lines = BufReader::new(stderr).lines();
    let deadline = Instant::now() + Duration::from_secs(60);
    let addr = loop {
        assert!(Instant::now() < deadline, "no listening line");
        let line = lines.next().expect("server exited early").unwrap();
        let json: serde_json::Value = serde_json::from_str(&line).unwrap_or_default();
        if let Some(addr) = json["fields"]["addr"].as_str() {
            break addr.to_owned();
        }
    };
    std::thread::spawn(move || for _ in lines {});

    assert!(http_get(&addr, "/healthz").contains("\"ok\""));
    let response = http_get(
        &addr,
        "/graphql?query=%7Bcountry(iso3:%22PER%22)%7Breport(year:2023)%7Btotals%7BpeopleInNeed%7D%7D%7D%7D",
    );
    assert!(response.contains("\"peopleInNeed\":2060000"), "{response}");

    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    let status = child.wait().unwrap();
    assert!(
        status.success(),
        "graceful shutdown exits 0, got {status:?}"
    );
}
