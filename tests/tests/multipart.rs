//! Multipart HTTP subscriptions (Apollo's protocol, `Accept:
//! multipart/mixed;subscriptionSpec="1.0"`) on `/graphql`: results as `{"payload": …}` parts,
//! refusals inside the payload, the `Authorization` header's token, `{}` heartbeats, the closing
//! boundary at the end and at shutdown; Apollo Client (pinned npm) receives a change and
//! resumes with `afterRevision`.

use std::io::BufReader;
use std::net::TcpStream;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::sse::{REFUSED, receives_changes_and_resumes, refused_unrun, store_url};
use crate::support::server::{Server, admin_token, http_request, open_request, read_chunk};

/// What Apollo Client sends for a subscription.
const ACCEPT: &str = "multipart/mixed;boundary=\"graphql\";subscriptionSpec=1.0,application/json";

/// POSTs `body` asking for a multipart answer: the reader at the body, and the head
/// (lowercased).
fn open_multipart(addr: &str, body: &Value, token: Option<&str>) -> (BufReader<TcpStream>, String) {
    let auth = token.map(|t| format!("Bearer {t}"));
    let mut headers = vec![("Accept", ACCEPT), ("Content-Type", "application/json")];
    if let Some(auth) = &auth {
        headers.push(("Authorization", auth));
    }
    let (reader, head) = open_request(addr, "POST", "/graphql", &headers, Some(&body.to_string()))
        .expect("open a multipart stream");
    (reader, head.to_ascii_lowercase())
}

/// The JSON bodies of the parts in `text`. Each part is written as one chunk with its JSON on
/// one line, so chunk framing never splits one.
fn parts(text: &str) -> Vec<Value> {
    text.lines()
        .filter(|line| line.starts_with('{'))
        .map(|line| serde_json::from_str(line).expect("a JSON part"))
        .collect()
}

/// The body from here to its end, chunk framing taken off.
fn read_all(mut reader: BufReader<TcpStream>) -> String {
    let mut body = Vec::new();
    while let Some(chunk) = read_chunk(&mut reader) {
        body.extend(chunk);
    }
    String::from_utf8(body).expect("UTF-8")
}

#[test]
fn multipart_answers_refuses_and_writes() {
    let dir = tempfile::tempdir().expect("a directory");
    let url = store_url(&dir);
    let server = Server::start_with(&url, &["--max-depth", "3", "--rate-per-address", "0"]);
    let token = admin_token(&url);

    let (reader, head) = open_multipart(
        &server.addr,
        &json!({ "query": r#"{ country(iso3: "PER") { name } }"# }),
        None,
    );
    assert!(head.starts_with("http/1.1 200"), "{head}");
    assert!(
        head.contains(
            "content-type: multipart/mixed; boundary=\"graphql\"; subscriptionspec=\"1.0\""
        ),
        "{head}"
    );
    let text = read_all(reader);
    assert_eq!(
        parts(&text),
        vec![json!({ "payload": { "data": { "country": { "name": "Peru" } } } })],
        "{text}"
    );
    assert!(
        text.contains("--graphql--\r\n"),
        "no closing boundary: {text:?}"
    );

    // Refused before executing: the errors inside the payload, then the end.
    for (query, code) in REFUSED {
        let (reader, head) = open_multipart(&server.addr, &json!({ "query": query }), None);
        assert!(head.starts_with("http/1.1 200"), "{query}: {head}");
        let text = read_all(reader);
        let got = parts(&text);
        assert_eq!(
            got[0]["payload"]["errors"][0]["extensions"]["code"], code,
            "{query}: {text}"
        );
        assert_eq!(
            got[0]["payload"].get("data").is_none(),
            refused_unrun(code),
            "{query}: {text}"
        );
        assert!(text.contains("--graphql--"), "{query}: {text:?}");
    }
    // A well-formed token the store does not know: refused as over every transport.
    let (reader, _) = open_multipart(
        &server.addr,
        &json!({ "query": r#"mutation { setSectorFigures(reportId: "1", sectorCode: "EDU", expectedRevision: 1, figures: { peopleReached: "37.5 K" }) { revision } }"# }),
        Some("pg_not-a-token"),
    );
    let got = parts(&read_all(reader));
    assert_eq!(
        got[0]["payload"]["errors"][0]["extensions"]["code"], "UNAUTHENTICATED",
        "{got:?}"
    );

    // The Authorization header's token writes.
    let (reader, _) = open_multipart(
        &server.addr,
        &json!({ "query": r#"mutation { setSectorFigures(reportId: "1", sectorCode: "EDU", expectedRevision: 1, figures: { peopleReached: "37.5 K" }) { revision } }"# }),
        Some(&token),
    );
    let got = parts(&read_all(reader));
    assert_eq!(
        got[0]["payload"]["data"]["setSectorFigures"]["revision"], 2,
        "{got:?}"
    );

    // `multipart/mixed` alone is incremental delivery (`@defer`), which plangraph does not
    // serve: 406, in JSON.
    let (status, _, body) = http_request(
        &server.addr,
        "POST",
        "/graphql",
        &[
            ("Accept", "multipart/mixed"),
            ("Content-Type", "application/json"),
        ],
        Some(r#"{"query":"{ __typename }"}"#),
    )
    .expect("a request");
    assert_eq!(status, 406, "{body}");
    assert!(body.contains("NOT_ACCEPTABLE"), "{body}");
}

/// A subscription with nothing to say sends `{}` parts every `--stream-heartbeat-ms`; at
/// SIGTERM the stream ends with the closing boundary.
#[test]
fn multipart_heartbeats_and_a_clean_end_at_shutdown() {
    let dir = tempfile::tempdir().expect("a directory");
    let url = store_url(&dir);
    let mut server = Server::start_with(
        &url,
        &["--stream-heartbeat-ms", "200", "--rate-per-address", "0"],
    );
    let (mut reader, head) = open_multipart(
        &server.addr,
        &json!({ "query": r#"subscription { reportChanged(reportId: "1") { revision } }"# }),
        None,
    );
    assert!(head.starts_with("http/1.1 200"), "{head}");
    let started = Instant::now();
    let mut text = String::new();
    while started.elapsed() < Duration::from_millis(1100) {
        let Some(chunk) = read_chunk(&mut reader) else {
            break;
        };
        text.push_str(&String::from_utf8(chunk).expect("UTF-8"));
    }
    let heartbeats = parts(&text).iter().filter(|p| **p == json!({})).count();
    assert!(
        heartbeats >= 3,
        "{heartbeats} heartbeats in 1.1 s: {text:?}"
    );
    assert!(
        parts(&text).iter().all(|p| *p == json!({})),
        "only heartbeats: {text:?}"
    );

    assert!(
        server.terminate(Duration::from_secs(20)).is_some(),
        "the server stops"
    );
    let whole = text + &read_all(reader);
    assert!(
        whole.ends_with("\r\n--graphql--\r\n"),
        "no closing boundary: {whole:?}"
    );
}

/// Apollo Client (pinned npm), the client this protocol was made for.
#[test]
fn apollo_client_receives_changes_over_multipart_and_resumes() {
    receives_changes_and_resumes("multipart");
}

/// Once shutdown has begun, a request that still reaches the server (a keep-alive connection in
/// the moment before it closes) gets no new stream, reservation or socket: 503 `SHUTTING_DOWN`.
/// In-process, since over TCP the server closes such connections as it stops.
#[actix_web::test]
async fn no_new_stream_once_shutdown_began() {
    use actix_web::{App, test};
    use plangraph_server::{AppState, configure};

    let store = crate::support::peru_store(crate::support::Backend::Sqlite).await;
    let state = AppState::new(store.store.clone());
    state.sockets.shut_down();
    let app = test::init_service(App::new().configure(configure(state))).await;
    let subscription =
        json!({ "query": r#"subscription { reportChanged(reportId: "1") { revision } }"# });
    let requests = [
        test::TestRequest::post()
            .uri("/graphql")
            .insert_header(("accept", "text/event-stream"))
            .set_json(&subscription),
        test::TestRequest::post()
            .uri("/graphql")
            .insert_header(("accept", ACCEPT))
            .set_json(&subscription),
        test::TestRequest::put().uri("/graphql"),
        test::TestRequest::get()
            .uri("/graphql")
            .insert_header(("upgrade", "websocket"))
            .insert_header(("connection", "upgrade"))
            .insert_header(("sec-websocket-version", "13"))
            .insert_header(("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ=="))
            .insert_header(("sec-websocket-protocol", "graphql-transport-ws")),
    ];
    for request in requests {
        let response = test::call_service(&app, request.to_request()).await;
        assert_eq!(response.status(), 503);
        let body: Value = test::read_body_json(response).await;
        assert_eq!(
            body["errors"][0]["extensions"]["code"], "SHUTTING_DOWN",
            "{body}"
        );
    }
}
