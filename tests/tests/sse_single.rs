//! GraphQL over SSE in the single connection mode: `PUT` reserves a stream, `GET` opens it,
//! each `POST` (with `extensions.operationId`) runs an operation on it, `DELETE` stops one.
//! Every code by name, results posted before the stream opens, each operation's own
//! `Authorization`, the end of a stream stopping its operations, `complete` for each at
//! shutdown, and the pinned npm `graphql-sse` client in this mode.

use std::io::{BufRead, BufReader};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::sse::{parse_events, receives_changes_and_resumes, store_url};
use crate::support::server::{Server, admin_token, http_request, open_request};

const TOKEN_HEADER: &str = "x-graphql-event-stream-token";
const SUBSCRIPTION: &str = r#"subscription { reportChanged(reportId: "1") { revision } }"#;

fn reserve(addr: &str) -> String {
    let (status, head, token) = http_request(addr, "PUT", "/graphql", &[], None).expect("PUT");
    assert_eq!(status, 201, "{head}{token}");
    assert!(
        token.len() == 32 && token.chars().all(|c| c.is_ascii_hexdigit()),
        "{token}"
    );
    token
}

fn open_reserved(addr: &str, token: &str) -> (BufReader<TcpStream>, String) {
    let (reader, head) = open_request(
        addr,
        "GET",
        "/graphql",
        &[("Accept", "text/event-stream"), (TOKEN_HEADER, token)],
        None,
    )
    .expect("GET the stream");
    (reader, head.to_ascii_lowercase())
}

/// POSTs an operation on the reserved stream: the status and body.
fn post(
    addr: &str,
    token: &str,
    id: Option<&str>,
    query: &str,
    auth: Option<&str>,
) -> (u16, String) {
    let mut body = json!({ "query": query });
    if let Some(id) = id {
        body["extensions"] = json!({ "operationId": id });
    }
    let bearer = auth.map(|a| format!("Bearer {a}"));
    let mut headers = vec![("Content-Type", "application/json"), (TOKEN_HEADER, token)];
    if let Some(bearer) = &bearer {
        headers.push(("Authorization", bearer));
    }
    let (status, _, body) =
        http_request(addr, "POST", "/graphql", &headers, Some(&body.to_string())).expect("POST");
    (status, body)
}

fn delete(addr: &str, token: &str, id: Option<&str>) -> (u16, String) {
    let path = id.map_or_else(
        || "/graphql".to_owned(),
        |id| format!("/graphql?operationId={id}"),
    );
    let (status, _, body) =
        http_request(addr, "DELETE", &path, &[(TOKEN_HEADER, token)], None).expect("DELETE");
    (status, body)
}

fn code_of(body: &str) -> String {
    serde_json::from_str::<Value>(body).expect("a JSON error")["errors"][0]["extensions"]["code"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

/// Reads events (name, data as JSON) from a live stream until `done` holds of them.
fn read_until(
    reader: &mut BufReader<TcpStream>,
    done: impl Fn(&[(String, Value)]) -> bool,
) -> Vec<(String, Value)> {
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut text = String::new();
    loop {
        let events: Vec<(String, Value)> = parse_events(&text)
            .into_iter()
            .map(|(name, data)| (name, serde_json::from_str(&data).unwrap_or(Value::Null)))
            .collect();
        if done(&events) {
            return events;
        }
        assert!(Instant::now() < deadline, "not seen in time: {text}");
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            panic!("the stream ended: {text}");
        }
        text.push_str(&line);
    }
}

/// The events of operation `id`.
fn of<'a>(events: &'a [(String, Value)], id: &str) -> Vec<&'a (String, Value)> {
    events.iter().filter(|(_, data)| data["id"] == id).collect()
}

fn metric(server: &Server, name: &str) -> f64 {
    let (_, _, text) = http_request(&server.addr, "GET", "/metrics", &[], None).expect("metrics");
    text.lines()
        .find_map(|line| line.strip_prefix(&format!("{name} ")))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(f64::NAN)
}

#[test]
fn single_connection_mode_runs_operations_on_one_stream() {
    let dir = tempfile::tempdir().expect("a directory");
    let url = store_url(&dir);
    // Frequent heartbeats: a client that went is noticed at the next write.
    let server = Server::start_with(
        &url,
        &["--rate-per-address", "0", "--stream-heartbeat-ms", "200"],
    );
    let admin = admin_token(&url);
    let addr = server.addr.as_str();

    // A token that names no reservation.
    let (reader, head) = open_reserved(addr, "0123456789abcdef0123456789abcdef");
    assert!(head.starts_with("http/1.1 404"), "{head}");
    drop(reader);
    let (status, body) = post(addr, "nope", Some("a"), "{ __typename }", None);
    assert_eq!(
        (status, code_of(&body).as_str()),
        (404, "STREAM_NOT_FOUND"),
        "{body}"
    );
    let (status, body) = delete(addr, "nope", Some("a"));
    assert_eq!(
        (status, code_of(&body).as_str()),
        (404, "STREAM_NOT_FOUND"),
        "{body}"
    );

    let token = reserve(addr);
    // Posted before the stream opens: the result waits for it.
    let (status, body) = post(
        addr,
        &token,
        Some("q1"),
        r#"{ country(iso3: "PER") { name } }"#,
        None,
    );
    assert_eq!(status, 202, "{body}");
    let (mut stream, head) = open_reserved(addr, &token);
    assert!(head.starts_with("http/1.1 200"), "{head}");
    assert!(head.contains("content-type: text/event-stream"), "{head}");
    let (_, head) = open_reserved(addr, &token);
    assert!(head.starts_with("http/1.1 409"), "{head}");
    let (status, _, body) = http_request(
        addr,
        "GET",
        "/graphql",
        &[("Accept", "text/event-stream"), (TOKEN_HEADER, &token)],
        None,
    )
    .expect("a second GET");
    assert_eq!(
        (status, code_of(&body).as_str()),
        (409, "STREAM_ALREADY_OPEN"),
        "{body}"
    );

    let (status, body) = post(addr, &token, None, "{ __typename }", None);
    assert_eq!(
        (status, code_of(&body).as_str()),
        (400, "OPERATION_ID_MISSING"),
        "{body}"
    );
    let (status, body) = post(addr, &token, Some(&"x".repeat(129)), "{ __typename }", None);
    assert_eq!(
        (status, code_of(&body).as_str()),
        (400, "BAD_REQUEST"),
        "{body}"
    );
    assert_eq!(post(addr, &token, Some("s1"), SUBSCRIPTION, None).0, 202);
    let (status, body) = post(addr, &token, Some("s1"), SUBSCRIPTION, None);
    assert_eq!(
        (status, code_of(&body).as_str()),
        (409, "OPERATION_EXISTS"),
        "{body}"
    );
    // Each operation is authorised by its own POST's Authorization header.
    let write = r#"mutation { setSectorFigures(reportId: "1", sectorCode: "EDU", expectedRevision: 1, figures: { peopleReached: "37.5 K" }) { revision } }"#;
    assert_eq!(post(addr, &token, Some("anon"), write, None).0, 202);
    assert_eq!(post(addr, &token, Some("m1"), write, Some(&admin)).0, 202);

    let events = read_until(&mut stream, |events| {
        ["q1", "anon", "m1"]
            .iter()
            .all(|id| of(events, id).iter().any(|(name, _)| name == "complete"))
            && !of(events, "s1").is_empty()
    });
    let q1 = of(&events, "q1");
    assert_eq!(q1[0].0, "next");
    assert_eq!(q1[0].1["payload"]["data"]["country"]["name"], "Peru");
    assert_eq!(q1[1].0, "complete");
    assert_eq!(
        of(&events, "anon")[0].1["payload"]["errors"][0]["extensions"]["code"],
        "UNAUTHENTICATED"
    );
    assert_eq!(
        of(&events, "m1")[0].1["payload"]["data"]["setSectorFigures"]["revision"],
        2
    );
    // The subscription on the same stream sees the write.
    assert_eq!(
        of(&events, "s1")[0].1["payload"]["data"]["reportChanged"]["revision"],
        2
    );

    // DELETE stops an operation; its id is free again.
    let (status, body) = delete(addr, &token, None);
    assert_eq!(
        (status, code_of(&body).as_str()),
        (400, "OPERATION_ID_MISSING"),
        "{body}"
    );
    assert_eq!(delete(addr, &token, Some("s1")).0, 200);
    assert_eq!(post(addr, &token, Some("s1"), SUBSCRIPTION, None).0, 202);
    // At most as many operations as a WebSocket's subscriptions (s1 is one of them).
    for i in 1..100 {
        assert_eq!(
            post(addr, &token, Some(&format!("t{i}")), SUBSCRIPTION, None).0,
            202,
            "operation {i}"
        );
    }
    let (status, body) = post(addr, &token, Some("t100"), SUBSCRIPTION, None);
    assert_eq!(
        (status, code_of(&body).as_str()),
        (409, "TOO_MANY_OPERATIONS"),
        "{body}"
    );

    // The stream ends: its operations stop, its reservation and connection place go.
    drop(stream);
    let deadline = Instant::now() + Duration::from_secs(10);
    while metric(&server, "plangraph_subscriptions_active") != 0.0
        || metric(&server, "plangraph_websockets_open") != 0.0
    {
        assert!(Instant::now() < deadline, "operations still running");
        std::thread::sleep(Duration::from_millis(50));
    }
    let (status, body) = post(addr, &token, Some("late"), "{ __typename }", None);
    assert_eq!(
        (status, code_of(&body).as_str()),
        (404, "STREAM_NOT_FOUND"),
        "{body}"
    );
}

/// At SIGTERM every operation of a reserved stream gets its `complete`, then the stream ends.
#[test]
fn shutdown_completes_each_operation_of_a_reserved_stream() {
    let dir = tempfile::tempdir().expect("a directory");
    let url = store_url(&dir);
    let mut server = Server::start_with(&url, &["--rate-per-address", "0"]);
    let token = reserve(&server.addr);
    let (mut stream, _) = open_reserved(&server.addr, &token);
    for id in ["a", "b"] {
        assert_eq!(
            post(&server.addr, &token, Some(id), SUBSCRIPTION, None).0,
            202
        );
    }
    assert!(
        server.terminate(Duration::from_secs(20)).is_some(),
        "the server stops"
    );
    let events = read_until(&mut stream, |events| {
        ["a", "b"]
            .iter()
            .all(|id| of(events, id).iter().any(|(name, _)| name == "complete"))
    });
    assert_eq!(events.len(), 2, "{events:?}");
    let mut rest = String::new();
    let _ = std::io::Read::read_to_string(&mut stream, &mut rest);
    assert!(parse_events(&rest).is_empty(), "{rest}");
}

/// Reservations waiting for their stream hold no connection place but are capped (a tenth of
/// `--max-websockets`); results posted before the stream opens wait for it, however long past
/// the send deadline; a waiting reservation does not hold up shutdown; a token only in the
/// query string of a POST, or an empty token header, is not the single connection mode.
#[test]
fn reservations_are_bounded_and_lose_nothing() {
    let dir = tempfile::tempdir().expect("a directory");
    let url = store_url(&dir);
    let mut server = Server::start_with(
        &url,
        &[
            "--rate-per-address",
            "0",
            "--max-websockets",
            "10",
            "--ws-send-timeout-ms",
            "300",
        ],
    );
    let addr = server.addr.clone();
    let token = reserve(&addr);
    let (status, _, body) = http_request(&addr, "PUT", "/graphql", &[], None).expect("PUT");
    assert_eq!(
        (status, code_of(&body).as_str()),
        (503, "TOO_MANY_CONNECTIONS"),
        "{body}"
    );

    // Twenty results posted before the stream opens (more than its queue), and a wait well
    // past the send deadline: every one arrives once the stream opens.
    for i in 0..20 {
        let (status, body) = post(
            &addr,
            &token,
            Some(&format!("q{i}")),
            "{ __typename }",
            None,
        );
        assert_eq!(status, 202, "{body}");
    }
    std::thread::sleep(Duration::from_millis(1000));
    let (mut stream, head) = open_reserved(&addr, &token);
    assert!(head.starts_with("http/1.1 200"), "{head}");
    let events = read_until(&mut stream, |events| {
        (0..20).all(|i| {
            of(events, &format!("q{i}"))
                .iter()
                .any(|(name, _)| name == "complete")
        })
    });
    assert_eq!(events.len(), 40, "{events:?}");
    // The opened stream no longer counts as waiting: another reservation may be made.
    let waiting = reserve(&addr);

    // Not the single connection mode: a POST with the token only in its query string, or an
    // empty token header.
    let (status, _, body) = http_request(
        &addr,
        "POST",
        &format!("/graphql?token={token}"),
        &[("Content-Type", "application/json")],
        Some(r#"{"query":"{ __typename }"}"#),
    )
    .expect("POST");
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("Query"), "{body}");
    let (status, _, body) = http_request(
        &addr,
        "POST",
        "/graphql",
        &[("Content-Type", "application/json"), (TOKEN_HEADER, "")],
        Some(r#"{"query":"{ __typename }"}"#),
    )
    .expect("POST");
    assert_eq!(status, 200, "{body}");

    // A reservation still waiting does not hold up shutdown.
    drop(stream);
    let started = Instant::now();
    assert!(
        server.terminate(Duration::from_secs(20)).is_some(),
        "the server stops"
    );
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "shutdown took {:?} with reservation {waiting} waiting",
        started.elapsed()
    );
}

/// The npm `graphql-sse` client in its single connection mode.
#[test]
fn the_graphql_sse_client_in_single_connection_mode() {
    receives_changes_and_resumes("graphql-sse-single");
}
