//! Subscriptions end to end: the real `plangraph serve` process, the real npm WebSocket clients
//! (`tests/interop/subscribe.mjs`), writes over HTTP with a bearer token, one or two server
//! processes on one store, and a Postgres restart in between.
//!
//! Every subscription asks for `afterRevision` = the revision read before the write, so it
//! cannot miss the write whichever comes first: its subscribe message or the commit. Where a
//! test must prove that an event came live (not from the history replay), it writes twice and
//! checks the second event, which can only come live once the first has arrived.

use std::time::{Duration, Instant};

use serde_json::Value;

use crate::on_both_databases;
use crate::support::postgres::{self, Cluster};
use crate::support::server::{Server, Subscriber, admin_token};
use crate::support::{Backend, database_url};

/// How long a client may wait for the server's `connection_ack`.
const CONNECT: Duration = Duration::from_secs(20);

/// How long an event may take to arrive once its write committed.
const EVENT: Duration = Duration::from_secs(20);

/// Sets the Peru report's EDU people reached through `server`, as of revision `expected`;
/// the write must succeed and commit as `expected + 1`.
fn set_edu_reached(server: &Server, token: &str, expected: i64, reached: &str) {
    let data = server.data(&set_edu_mutation(expected, reached), Some(token));
    assert_eq!(data["setSectorFigures"]["changed"], true, "{data}");
    assert_eq!(
        data["setSectorFigures"]["revision"],
        expected + 1,
        "store-wide revisions go up by one per write: {data}"
    );
}

fn set_edu_mutation(expected: i64, reached: &str) -> String {
    format!(
        r#"mutation {{ setSectorFigures(reportId: "1", expectedRevision: {expected}, sectorCode: "EDU", figures: {{ peopleReached: "{reached}" }}) {{ changed revision }} }}"#
    )
}

/// A `next` line's `payload.data.FIELD`, requiring that the event carries no errors.
fn event<'a>(json: &'a Value, field: &str, line: &str) -> &'a Value {
    assert_eq!(json["type"], "next", "{line}");
    assert!(
        json["payload"].get("errors").is_none(),
        "the event carries errors: {line}"
    );
    &json["payload"]["data"][field]
}

fn parse(line: &str) -> Value {
    serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"))
}

/// Positions of `"key"` (quoted, so `"figures"` is not found in `"figuresChanged"`) in a raw
/// line, which must appear in this order.
fn assert_key_order(line: &str, keys: &[&str]) {
    let positions: Vec<usize> = keys
        .iter()
        .map(|key| {
            line.find(&format!("\"{key}\""))
                .unwrap_or_else(|| panic!("no key {key:?} in {line}"))
        })
        .collect();
    assert!(
        positions.windows(2).all(|w| w[0] < w[1]),
        "the event's keys are not in selection order {keys:?}: {line}"
    );
}

/// The client's own timeout for the "exactly once" tests: long enough for the event to
/// arrive, and then to leave a window in which a second copy would show.
const ONCE_TIMEOUT_MS: &str = "8000";

/// A duplicate (a SQLite store polls for other processes' writes every second; a process
/// also announces its own commits) would arrive within this window after the first copy.
const DUPLICATE_WINDOW: Duration = Duration::from_millis(1500);

/// Runs a subscriber with `--count 2` until its timeout and requires exactly one `next`
/// line, followed by nothing but the timeout; returns that line.
fn exactly_one_event(subscriber: &mut Subscriber, server: &Server) -> String {
    let first = subscriber.expect_line("next", EVENT);
    let arrived = Instant::now();
    let (code, lines) = subscriber.finish(Duration::from_secs(30));
    let window = arrived.elapsed();
    let nexts = lines
        .iter()
        .filter(|l| l.contains(r#""type":"next""#))
        .count();
    assert_eq!(
        (code, nexts, lines.last().map(String::as_str)),
        (Some(2), 1, Some(r#"{"type":"timeout"}"#)),
        "expected one event, then the client's timeout (exit 2)\n{}\nserver log:\n{}",
        subscriber.transcript(),
        server.logs()
    );
    assert!(
        window >= DUPLICATE_WINDOW,
        "the event came too late ({window:?} before the client's timeout) to tell whether a \
         second copy follows"
    );
    first
}

/// A sector write reaches a `graphql-transport-ws` subscriber (the graphql-ws npm client) of
/// the real server exactly once, with the new revision, the new figure, the change as printed
/// before and after, and the event's fields in the order the subscription selected them.
/// Fails if the write is not announced, announced twice (the process's own announcement and
/// the SQLite poller, or the history replay and the live feed), if the figures are read before
/// the commit, or if the event's fields come back in resolution order: `figures` needs the
/// store, so it is selected first and would otherwise come last.
async fn a_figure_change_reaches_a_graphql_transport_ws_subscriber_once(backend: Backend) {
    let (url, _dir) = database_url(backend).await;
    let server = Server::start(&url);
    let token = admin_token(&url);
    let revision = server.peru_revision();

    let query = format!(
        r#"subscription {{ figuresChanged(reportId: "1", sectorCode: "EDU", afterRevision: {revision}) {{ figures {{ peopleReached }} revision changes {{ path before after }} }} }}"#
    );
    let mut subscriber = Subscriber::start(&[
        "--url",
        &server.ws_url(),
        "--protocol",
        "graphql-transport-ws",
        "--query",
        &query,
        "--count",
        "2",
        "--timeout-ms",
        ONCE_TIMEOUT_MS,
    ]);
    subscriber.expect_line("connected", CONNECT);
    set_edu_reached(&server, &token, revision, "40.1 K");

    let line = exactly_one_event(&mut subscriber, &server);
    let json = parse(&line);
    let change = event(&json, "figuresChanged", &line);
    assert_eq!(change["revision"], revision + 1, "{line}");
    assert_eq!(
        change["figures"],
        serde_json::json!([{ "peopleReached": 40100 }]),
        "{line}"
    );
    assert_eq!(
        change["changes"],
        serde_json::json!([{ "path": "sectors.EDU.peopleReached", "before": "37.4 K", "after": "40.1 K" }]),
        "{line}"
    );
    assert_key_order(&line, &["figures", "revision", "changes"]);
}
on_both_databases!(
    a_figure_change_reaches_a_graphql_transport_ws_subscriber_once,
    multi_thread
);

/// The same through the legacy `graphql-ws` protocol, with the real subscriptions-transport-ws
/// client (which sends `start` before the server acknowledged the connection), on the
/// country-wide `reportChanged`: one event, the new revision, the report as it is after the
/// write, fields in selection order (`report` needs the store, so it is selected first).
async fn a_report_change_reaches_a_legacy_graphql_ws_subscriber_once(backend: Backend) {
    let (url, _dir) = database_url(backend).await;
    let server = Server::start(&url);
    let token = admin_token(&url);
    let revision = server.peru_revision();

    let query = format!(
        r#"subscription {{ reportChanged(countryIso3: "PER", afterRevision: {revision}) {{ report {{ sector(code: "EDU") {{ peopleReached }} }} revision summary }} }}"#
    );
    let mut subscriber = Subscriber::start(&[
        "--url",
        &server.ws_url(),
        "--protocol",
        "graphql-ws",
        "--query",
        &query,
        "--count",
        "2",
        "--timeout-ms",
        ONCE_TIMEOUT_MS,
    ]);
    subscriber.expect_line("connected", CONNECT);
    set_edu_reached(&server, &token, revision, "40.1 K");

    let line = exactly_one_event(&mut subscriber, &server);
    let json = parse(&line);
    let change = event(&json, "reportChanged", &line);
    assert_eq!(change["revision"], revision + 1, "{line}");
    assert_eq!(change["report"]["sector"]["peopleReached"], 40100, "{line}");
    assert!(
        change["summary"].as_str().is_some_and(|s| !s.is_empty()),
        "{line}"
    );
    assert_key_order(&line, &["report", "revision", "summary"]);
}
on_both_databases!(
    a_report_change_reaches_a_legacy_graphql_ws_subscriber_once,
    multi_thread
);

/// The EDU subscription of these tests, from `revision` on, for two events.
fn two_edu_events(server: &Server, revision: i64, timeout_ms: &str) -> Subscriber {
    let query = format!(
        r#"subscription {{ figuresChanged(reportId: "1", sectorCode: "EDU", afterRevision: {revision}) {{ revision figures {{ peopleReached }} }} }}"#
    );
    let mut subscriber = Subscriber::start(&[
        "--url",
        &server.ws_url(),
        "--protocol",
        "graphql-transport-ws",
        "--query",
        &query,
        "--count",
        "2",
        "--timeout-ms",
        timeout_ms,
    ]);
    subscriber.expect_line("connected", CONNECT);
    subscriber
}

/// The next EDU event: its revision and people reached.
fn next_edu_event(subscriber: &mut Subscriber, logs: &dyn Fn() -> String) -> (i64, i64) {
    let Some(line) = subscriber.next_line(EVENT) else {
        panic!(
            "no event within {EVENT:?}\n{}\n{}",
            subscriber.transcript(),
            logs()
        );
    };
    let json = parse(&line);
    if json["type"] != "next" {
        panic!(
            "expected an event: {line}\n{}\n{}",
            subscriber.transcript(),
            logs()
        );
    }
    let change = event(&json, "figuresChanged", &line);
    (
        change["revision"].as_i64().unwrap_or_default(),
        change["figures"][0]["peopleReached"]
            .as_i64()
            .unwrap_or_default(),
    )
}

/// Requires the client to exit 0 now that it has its two events.
fn finish_after_two(subscriber: &mut Subscriber) {
    let (code, _) = subscriber.finish(Duration::from_secs(10));
    assert_eq!(code, Some(0), "{}", subscriber.transcript());
}

/// Two server processes on one Postgres database: a write through process A reaches a
/// subscriber of process B, which never wrote anything itself, so the event can only come
/// through the database's NOTIFY and B's listener. The second write is the proof: by then the
/// subscription is live, so the history replay cannot be what delivers it.
mod a_change_through_one_process_reaches_subscribers_of_another {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn postgres() {
        let url = postgres::fresh_database().await;
        let a = Server::start(&url);
        let b = Server::start(&url);
        let token = admin_token(&url);
        let revision = a.peru_revision();
        let logs = || format!("A's log:\n{}\nB's log:\n{}", a.logs(), b.logs());

        let mut subscriber = two_edu_events(&b, revision, "60000");
        set_edu_reached(&a, &token, revision, "40.1 K");
        assert_eq!(
            next_edu_event(&mut subscriber, &logs),
            (revision + 1, 40_100)
        );
        set_edu_reached(&a, &token, revision + 1, "41.2 K");
        assert_eq!(
            next_edu_event(&mut subscriber, &logs),
            (revision + 2, 41_200)
        );
        finish_after_two(&mut subscriber);
    }
}

/// How long the private cluster stays down.
const OUTAGE: Duration = Duration::from_secs(3);

/// Writes `reached` through `server` as of `expected` while the database comes back: a
/// request that fails (the pool still holds connections the restart closed) is retried for
/// up to 30 s. A `CONFLICT` at `expected + 1` means an earlier attempt committed after all.
fn write_until_it_lands(server: &Server, token: &str, expected: i64, reached: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    let mutation = set_edu_mutation(expected, reached);
    let mut last = String::new();
    while Instant::now() < deadline {
        match server.try_graphql(&mutation, Some(token)) {
            Ok((200, body)) if body["data"]["setSectorFigures"]["revision"] == expected + 1 => {
                return;
            }
            Ok((_, body))
                if body["errors"][0]["extensions"]["code"] == "CONFLICT"
                    && body["errors"][0]["extensions"]["currentRevision"] == expected + 1 =>
            {
                return;
            }
            Ok((status, body)) => last = format!("{status} {body}"),
            Err(e) => last = e.to_string(),
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    panic!(
        "the write did not land within 30 s of the restart; last answer: {last}\nserver log:\n{}",
        server.logs()
    );
}

/// A Postgres restart does not end the live feed: two processes on a private cluster, a
/// subscriber on B; a write through A arrives; the cluster stops (`-m fast`, every connection
/// closed), stays down for a few seconds and starts again on the same port; a second write
/// through A (once A's pool has reconnected) arrives at B's subscriber with its revision.
/// Fails if B's listener does not reconnect by itself (the subscriber's WebSocket to B stays
/// up throughout, so nothing but the listener can bring the event), or if it reconnects but
/// does not catch up with what committed before it was back.
mod a_change_after_a_postgres_restart_still_arrives {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn postgres() {
        let cluster = Cluster::private();
        let url = cluster.create_database().await;
        let a = Server::start(&url);
        let b = Server::start(&url);
        let token = admin_token(&url);
        let revision = a.peru_revision();
        let logs = || {
            format!(
                "A's log:\n{}\nB's log:\n{}\nPostgres log:\n{}",
                a.logs(),
                b.logs(),
                cluster.log()
            )
        };

        let mut subscriber = two_edu_events(&b, revision, "120000");
        set_edu_reached(&a, &token, revision, "40.1 K");
        assert_eq!(
            next_edu_event(&mut subscriber, &logs),
            (revision + 1, 40_100)
        );

        // Down long enough for B's listener to fail a few reconnects and back off: the
        // second write may then commit before it is back, and must come with its catch-up.
        cluster.stop();
        std::thread::sleep(OUTAGE);
        cluster.start();

        write_until_it_lands(&a, &token, revision + 1, "41.2 K");
        assert_eq!(
            next_edu_event(&mut subscriber, &logs),
            (revision + 2, 41_200)
        );
        finish_after_two(&mut subscriber);
    }
}
