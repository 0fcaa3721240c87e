//! Exports over HTTP: `GET /export/{format}` in-process and through the real binary (CORS,
//! rates, the profile flag, a client that stops reading).

use std::io::Cursor;

use actix_web::App;
use actix_web::test as web;
use calamine::{Reader, Xlsx};
use plangraph_exchange::{Format, Selection};
use plangraph_server::{AppState, configure};

use crate::exchange::export;
use crate::on_both_databases;
use crate::support::{Backend, peru_store};

/// `GET /export/{format}`: content types and file names, the selection, and each refusal by
/// its code.
async fn export_over_http(backend: Backend) {
    let peru = peru_store(backend).await;
    let state = AppState::new(peru.store.clone());
    let exports = state.exports.clone();
    let app = web::init_service(App::new().configure(configure(state))).await;
    for (format, content_type, name) in [
        ("json", "application/json", "plangraph-PER-2023.json"),
        ("csv", "text/csv; charset=utf-8", "plangraph-PER-2023.csv"),
        (
            "hxl",
            "text/csv; charset=utf-8",
            "plangraph-PER-2023.hxl.csv",
        ),
        (
            "xlsx",
            "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
            "plangraph-PER-2023.xlsx",
        ),
    ] {
        let request = web::TestRequest::get()
            .uri(&format!("/export/{format}?country=per&year=2023"))
            .to_request();
        let response = web::call_service(&app, request).await;
        assert_eq!(response.status().as_u16(), 200, "{format}");
        let headers = response.headers().clone();
        assert_eq!(
            headers.get("content-type").expect("a content type"),
            content_type
        );
        assert_eq!(
            headers.get("content-disposition").expect("a file name"),
            format!("attachment; filename=\"{name}\"").as_str()
        );
        let body = web::read_body(response).await;
        let expected = export(
            &peru.store,
            &Selection {
                country_iso3: Some("PER".into()),
                year: Some(2023),
                ..Selection::default()
            },
            Format::parse(format).expect("a format"),
        )
        .await;
        if format == "xlsx" {
            // A zip's timestamps differ from one writing to the next: read both back.
            let cells = |bytes: Vec<u8>| {
                let mut book: Xlsx<_> = Xlsx::new(Cursor::new(bytes)).expect("xlsx");
                book.worksheet_range("Sectors")
                    .expect("Sectors")
                    .rows()
                    .map(|r| r.to_vec())
                    .collect::<Vec<_>>()
            };
            assert_eq!(cells(body.to_vec()), cells(expected));
        } else {
            assert_eq!(body.to_vec(), expected, "{format}");
        }
    }
    let refusal = |uri: &str| web::TestRequest::get().uri(uri).to_request();
    for (uri, status, code) in [
        ("/export/pdf", 404, "EXPORT_UNKNOWN_FORMAT"),
        ("/export/csv?country=FRA", 400, "BAD_REQUEST"),
        ("/export/csv?colour=red", 400, "BAD_REQUEST"),
        ("/export/csv?report=999999", 404, "NOT_FOUND"),
    ] {
        let response = web::call_service(&app, refusal(uri)).await;
        assert_eq!(response.status().as_u16(), status, "{uri}");
        let body: serde_json::Value = web::read_body_json(response).await;
        assert_eq!(body["errors"][0]["extensions"]["code"], code, "{uri}");
    }
    // Every export slot taken (by exports streaming to clients): the next one waits its turn.
    let held: Vec<_> = (0..exports.max_concurrent)
        .map(|_| exports.slots.clone().try_acquire_owned().expect("a slot"))
        .collect();
    let response = web::call_service(&app, refusal("/export/csv")).await;
    assert_eq!(response.status().as_u16(), 503);
    assert_eq!(
        response.headers().get("retry-after").expect("retry-after"),
        "1"
    );
    let body: serde_json::Value = web::read_body_json(response).await;
    assert_eq!(body["errors"][0]["extensions"]["code"], "EXPORT_BUSY");
    drop(held);
    let response = web::call_service(&app, refusal("/export/csv")).await;
    assert_eq!(response.status().as_u16(), 200);
}
on_both_databases!(export_over_http, actix);

/// One raw `GET` with an `Origin`; the status line and the lower-cased head.
fn get_with_origin(addr: &str, path: &str, origin: &str) -> (u16, String) {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(addr).expect("connect");
    stream
        .set_read_timeout(Some(std::time::Duration::from_secs(30)))
        .expect("timeout");
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nOrigin: {origin}\r\nConnection: close\r\n\r\n"
    )
    .expect("send");
    let mut text = Vec::new();
    let _ = stream.read_to_end(&mut text);
    let text = String::from_utf8_lossy(&text).to_lowercase();
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    (status, text)
}

/// `GET /export` under `/graphql`'s rules in the production profile: the configured CORS
/// origin only, the per-address rate (`RATE_LIMITED`), and `--exports false` turning it off.
#[test]
fn export_follows_the_cors_rate_and_profile_rules() {
    use crate::support::server::Server;
    let dir = tempfile::tempdir().expect("a directory");
    let url = format!(
        "sqlite://{}?mode=rwc",
        dir.path().join("rules.db").display()
    );
    let server = Server::start_with(
        &url,
        &[
            "--profile",
            "production",
            "--cors-origin",
            "https://dashboard.example",
            "--rate-per-address",
            "1",
        ],
    );
    let (status, head) = get_with_origin(
        &server.addr,
        "/export/csv?country=PER",
        "https://dashboard.example",
    );
    assert_eq!(status, 200, "{head}");
    assert!(
        head.contains("access-control-allow-origin: https://dashboard.example"),
        "{head}"
    );
    assert!(head.contains("nut,nutrition,,65000,29000,44.6,"), "{head}");
    // Requests over the address's rate (1 a second, bursts of 2) are refused by code.
    let mut limited = None;
    for _ in 0..5 {
        let (status, text) =
            get_with_origin(&server.addr, "/export/csv", "https://dashboard.example");
        if status == 429 {
            limited = Some(text);
            break;
        }
    }
    let limited = limited.expect("the rate limit applies to exports");
    assert!(
        limited.contains("rate_limited") && limited.contains("retry-after"),
        "{limited}"
    );
    std::thread::sleep(std::time::Duration::from_millis(2_100));
    let (status, head) = get_with_origin(&server.addr, "/export/csv", "https://elsewhere.example");
    assert!(
        !head.contains("access-control-allow-origin: https://elsewhere.example"),
        "another origin is not allowed: {status} {head}"
    );
    drop(server);

    let off = Server::start_with(&url, &["--exports", "false"]);
    let (status, text) = get_with_origin(&off.addr, "/export/json", "https://dashboard.example");
    assert_eq!(status, 404, "{text}");
    assert!(text.contains("exports are off"), "{text}");
}

/// A client that stops reading an export: after `--export-send-timeout-ms` the export is cut
/// short (the chunked body never ends, so the file cannot pass for whole), its read and its
/// slot come back, and the next exports run.
#[test]
fn an_export_nobody_reads_is_cut_short() {
    use crate::support::server::Server;
    let dir = tempfile::tempdir().expect("a directory");
    let url = format!("sqlite://{}?mode=rwc", dir.path().join("big.db").display());
    crate::support::server::generate(&url, 17, 6);
    let server = Server::start_with(
        &url,
        &[
            "--export-send-timeout-ms",
            "300",
            "--max-concurrent-exports",
            "1",
            "--rate-per-address",
            "0",
        ],
    );
    // A small receive window set before connecting, then no reading for 2 s: several MB of
    // JSON cannot all be sent meanwhile.
    let client = r#"
import socket, sys, time
host, port = sys.argv[1].rsplit(":", 1)
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 2048)
s.connect((host, int(port)))
s.sendall(b"GET /export/json HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
time.sleep(2)
s.settimeout(20)
data = b""
while True:
    chunk = s.recv(65536)
    if not chunk:
        break
    data += chunk
print(len(data), data.endswith(b"\r\n0\r\n\r\n"))
"#;
    let out = crate::support::server::python(client, &[server.addr.as_ref()]);
    let printed = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{printed} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        printed.trim().ends_with("False"),
        "the cut export must not end like a whole one: {printed}"
    );
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !server.logs().contains("export cut short") {
        assert!(
            std::time::Instant::now() < deadline,
            "no cut logged: {}",
            server.logs()
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    // The one slot is free again: whole exports follow.
    for _ in 0..2 {
        let (status, text) =
            get_with_origin(&server.addr, "/export/csv?country=PER", "https://x.example");
        assert_eq!(status, 200, "{text}");
        assert!(
            text.ends_with("\r\n0\r\n\r\n"),
            "a whole export ends its chunked body"
        );
    }
}
