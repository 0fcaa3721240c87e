//! GraphQL over Server-Sent Events (distinct connections mode) on `/graphql`: the pinned npm
//! `graphql-sse` client receives a change and resumes with `afterRevision`; queries, refusals
//! and limits come as `next` events; the `Authorization` header's token writes; the rate limit
//! answers before a stream opens; shutdown completes open streams.

use std::io::{BufReader, Read};
use std::net::TcpStream;
use std::time::Duration;

use serde_json::{Value, json};

use crate::support::server::{Server, Subscriber, admin_token, open_request, post_json};

/// Requests the pipeline refuses before executing them, with their codes (at `--max-depth 3`):
/// every stream transport must deliver these errors inside the stream.
pub const REFUSED: [(&str, &str); 3] = [
    ("{ nope }", "GRAPHQL_VALIDATION_FAILED"),
    (
        "{ countries { reports { country { reports { year } } } } }",
        "QUERY_TOO_DEEP",
    ),
    (
        r#"mutation { setSectorFigures(reportId: "1", sectorCode: "EDU", expectedRevision: 1, figures: { peopleReached: "37.5 K" }) { revision } }"#,
        "UNAUTHENTICATED",
    ),
];

/// Whether a [`REFUSED`] code stops a request before it runs (its answer then has no `data`).
pub fn refused_unrun(code: &str) -> bool {
    code != "UNAUTHENTICATED"
}

pub fn store_url(dir: &tempfile::TempDir) -> String {
    format!("sqlite://{}?mode=rwc", dir.path().join("sse.db").display())
}

/// Opens an event stream: POSTs `body` with `Accept: text/event-stream`; the reader after the
/// response head, and the head (lowercased).
fn open_stream(addr: &str, body: &Value, token: Option<&str>) -> (BufReader<TcpStream>, String) {
    let auth = token.map(|t| format!("Bearer {t}"));
    let mut headers = vec![
        ("Accept", "text/event-stream"),
        ("Content-Type", "application/json"),
    ];
    if let Some(auth) = &auth {
        headers.push(("Authorization", auth));
    }
    let (reader, head) = open_request(addr, "POST", "/graphql", &headers, Some(&body.to_string()))
        .expect("open a stream");
    (reader, head.to_ascii_lowercase())
}

/// The events read until the stream ends: (event name, data), chunk framing left out.
fn events(mut reader: BufReader<TcpStream>) -> Vec<(String, String)> {
    let mut text = String::new();
    let _ = reader.read_to_string(&mut text);
    parse_events(&text)
}

pub fn parse_events(text: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut name = None;
    for line in text.lines() {
        if let Some(n) = line.strip_prefix("event: ") {
            name = Some(n.trim().to_owned());
        } else if let Some(d) = line.strip_prefix("data:")
            && let Some(n) = name.take()
        {
            out.push((n, d.trim().to_owned()));
        }
    }
    out
}

#[test]
fn queries_refusals_and_writes_over_sse() {
    let dir = tempfile::tempdir().expect("a directory");
    let url = store_url(&dir);
    let server = Server::start_with(&url, &["--max-depth", "3", "--rate-per-address", "0"]);
    let token = admin_token(&url);

    let (reader, head) = open_stream(
        &server.addr,
        &json!({ "query": r#"{ country(iso3: "PER") { name } }"# }),
        None,
    );
    assert!(head.starts_with("http/1.1 200"), "{head}");
    assert!(head.contains("content-type: text/event-stream"), "{head}");
    let got = events(reader);
    assert_eq!(got.len(), 2, "{got:?}");
    assert_eq!(got[0].0, "next");
    let first: Value = serde_json::from_str(&got[0].1).expect("JSON");
    assert_eq!(first["data"]["country"]["name"], "Peru");
    assert_eq!(got[1].0, "complete");

    // Refused before executing: the errors as a `next` event, as the protocol asks.
    for (query, code) in REFUSED {
        let (reader, head) = open_stream(&server.addr, &json!({ "query": query }), None);
        assert!(head.starts_with("http/1.1 200"), "{query}: {head}");
        let got = events(reader);
        let next: Value = serde_json::from_str(&got[0].1).expect("JSON");
        assert_eq!(
            next["errors"][0]["extensions"]["code"], code,
            "{query}: {got:?}"
        );
        // As `/graphql` writes them: a request refused before it ran has no `data`.
        assert_eq!(
            next.get("data").is_none(),
            refused_unrun(code),
            "{query}: {got:?}"
        );
        assert_eq!(got.last().map(|e| e.0.as_str()), Some("complete"));
    }

    // The Authorization header's token writes.
    let (reader, _) = open_stream(
        &server.addr,
        &json!({ "query": r#"mutation { setSectorFigures(reportId: "1", sectorCode: "EDU", expectedRevision: 1, figures: { peopleReached: "37.5 K" }) { revision } }"# }),
        Some(&token),
    );
    let got = events(reader);
    let next: Value = serde_json::from_str(&got[0].1).expect("JSON");
    assert_eq!(next["data"]["setSectorFigures"]["revision"], 2, "{got:?}");
}

/// The npm `graphql-sse` client (pinned): a live change within a second, and a resume from
/// `afterRevision` that loses nothing.
#[test]
fn the_graphql_sse_client_receives_changes_and_resumes() {
    receives_changes_and_resumes("graphql-sse");
}

/// A real client over HTTP (`protocol`, as `subscribe.mjs` names it) receives a change within
/// a second, and a resume from `afterRevision` loses nothing.
pub fn receives_changes_and_resumes(protocol: &str) {
    let dir = tempfile::tempdir().expect("a directory");
    let url = store_url(&dir);
    let server = Server::start_with(&url, &["--rate-per-address", "0"]);
    let token = admin_token(&url);
    let http = format!("http://{}/graphql", server.addr);
    let mut live = Subscriber::start(&[
        "--url",
        &http,
        "--protocol",
        protocol,
        "--query",
        // No `afterRevision`: the write below goes out as soon as the client says
        // "connected" (the response's headers), and the server sends those only once the
        // stream follows the feed, so the change is not lost in between.
        r#"subscription { reportChanged(reportId: "1") { revision } }"#,
        "--count",
        "1",
        "--timeout-ms",
        "20000",
    ]);
    live.expect_line("connected", Duration::from_secs(20));
    let write = |revision: i64, reached: &str| {
        let (status, body) = post_json(
            &server.addr,
            "/graphql",
            &json!({ "query": format!(r#"mutation {{ setSectorFigures(reportId: "1", sectorCode: "EDU", expectedRevision: {revision}, figures: {{ peopleReached: "{reached}" }}) {{ revision }} }}"#) }),
            Some(&token),
        )
        .expect("a write");
        assert_eq!(status, 200, "{body}");
        body["data"]["setSectorFigures"]["revision"]
            .as_i64()
            .expect("a revision")
    };
    let started = std::time::Instant::now();
    let second = write(1, "37.5 K");
    let line = live.expect_line("next", Duration::from_secs(5));
    let received = started.elapsed();
    let event: Value = serde_json::from_str(&line).expect("JSON");
    assert_eq!(
        event["payload"]["data"]["reportChanged"]["revision"],
        second
    );
    assert!(received < Duration::from_secs(1), "took {received:?}");
    let (code, _) = live.finish(Duration::from_secs(10));
    assert_eq!(code, Some(0), "{protocol}: {}", live.transcript());

    // A stream dropped after revision `second` resumes from it: the change made meanwhile
    // arrives, nothing before it again.
    let third = write(second, "37.6 K");
    let mut resumed = Subscriber::start(&[
        "--url",
        &http,
        "--protocol",
        protocol,
        "--query",
        &format!(
            r#"subscription {{ reportChanged(reportId: "1", afterRevision: {second}) {{ revision }} }}"#
        ),
        "--count",
        "1",
        "--timeout-ms",
        "20000",
    ]);
    resumed.expect_line("connected", Duration::from_secs(20));
    let line = resumed.expect_line("next", Duration::from_secs(20));
    let event: Value = serde_json::from_str(&line).expect("JSON");
    assert_eq!(event["payload"]["data"]["reportChanged"]["revision"], third);
}

/// Over the address's rate, a stream is refused before it opens (429 `RATE_LIMITED`); at
/// SIGTERM an open stream gets `complete` and ends.
#[test]
fn rate_limits_and_shutdown_end_streams_cleanly() {
    let dir = tempfile::tempdir().expect("a directory");
    let url = store_url(&dir);
    let mut server = Server::start_with(&url, &["--rate-per-address", "1"]);
    let subscription =
        json!({ "query": r#"subscription { reportChanged(reportId: "1") { revision } }"# });
    let (mut open, head) = open_stream(&server.addr, &subscription, None);
    assert!(head.starts_with("http/1.1 200"), "{head}");
    let mut limited = None;
    for _ in 0..5 {
        let (mut reader, head) = open_stream(&server.addr, &subscription, None);
        if head.starts_with("http/1.1 429") {
            let mut body = String::new();
            let _ = reader.read_to_string(&mut body);
            limited = Some(body);
            break;
        }
    }
    let limited = limited.expect("the rate limit applies to streams");
    assert!(limited.contains("RATE_LIMITED"), "{limited}");

    assert!(
        server.terminate(Duration::from_secs(20)).is_some(),
        "the server stops"
    );
    let mut rest = String::new();
    let _ = open.read_to_string(&mut rest);
    let got = parse_events(&rest);
    assert_eq!(got.last().map(|e| e.0.as_str()), Some("complete"), "{rest}");
}

/// A client that stops reading its event stream: once an event waits longer than
/// `--ws-send-timeout-ms`, the stream is given up (cut short, at most a part left waiting for
/// it); its connection keeps its place until it closes, and then the place comes back.
#[test]
fn a_stream_nobody_reads_is_dropped() {
    let dir = tempfile::tempdir().expect("a directory");
    let url = store_url(&dir);
    crate::support::server::generate(&url, 17, 6);
    let server = Server::start_with(
        &url,
        &[
            "--ws-send-timeout-ms",
            "300",
            "--max-websockets",
            "1",
            "--rate-per-address",
            "0",
        ],
    );
    // Every change replayed, each with a report's narrative twenty times over: megabytes the
    // client never reads, through a small receive window set before connecting.
    let client = r#"
import json, socket, sys, time
host, port = sys.argv[1].rsplit(":", 1)
fields = " ".join(f"a{i}: report {{ sections {{ paragraphs }} }}" for i in range(20))
body = json.dumps({"query": "subscription { reportChanged(afterRevision: 0) { revision " + fields + " } }"}).encode()
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 2048)
s.connect((host, int(port)))
s.sendall(b"POST /graphql HTTP/1.1\r\nHost: x\r\nAccept: text/event-stream\r\nContent-Type: application/json\r\nContent-Length: " + str(len(body)).encode() + b"\r\nConnection: close\r\n\r\n" + body)
time.sleep(2.5)
# The connection still holds the only place while it is open: a second stream is refused.
t = socket.create_connection((host, int(port)))
small = b'{"query":"{ __typename }"}'
t.sendall(b"POST /graphql HTTP/1.1\r\nHost: x\r\nAccept: text/event-stream\r\nContent-Type: application/json\r\nContent-Length: " + str(len(small)).encode() + b"\r\nConnection: close\r\n\r\n" + small)
print(t.recv(200).split(b"\r\n")[0].decode())
t.close()
time.sleep(1.5)
s.close()
"#;
    let out = crate::support::server::python(client, &[server.addr.as_ref()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "HTTP/1.1 503 Service Unavailable",
        "a client that stops reading keeps its place until its connection closes"
    );
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while !server.logs().contains("stream dropped") {
        assert!(
            std::time::Instant::now() < deadline,
            "no drop logged: {}",
            server.logs()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    // The one connection place is free again.
    let (reader, head) = open_stream(
        &server.addr,
        &json!({ "query": "{ countries { iso3 } }" }),
        None,
    );
    assert!(head.starts_with("http/1.1 200"), "{head}");
    assert_eq!(
        events(reader).last().map(|e| e.0.clone()),
        Some("complete".to_owned())
    );
}
