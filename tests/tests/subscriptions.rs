//! Subscriptions in-process (the WebSocket clients are in `live.rs`): events carry exactly what
//! a query over HTTP answers, in selection order; each event is resolved with a loader of its
//! own; a subscriber that resumes with `afterRevision` gets every change it missed, in order,
//! once. And a mutation over GET is refused.

use std::time::Duration;

use actix_web::{App, test};
use async_graphql::futures_util::StreamExt;
use async_graphql::{Request, Response};
use plangraph_api::Api;
use plangraph_domain::access::Role;
use plangraph_server::{AppState, configure};
use serde_json::{Value, json};

use crate::on_both_databases;
use crate::support::writes::{error_code, execute_as, store_checksum, token};
use crate::support::{Backend, data, peru_store};

async fn next_event(
    stream: &mut (impl async_graphql::futures_util::Stream<Item = Response> + Unpin),
) -> Value {
    let response = tokio::time::timeout(Duration::from_secs(10), stream.next())
        .await
        .expect("an event within 10 s")
        .expect("the stream goes on");
    let json = serde_json::to_value(&response).unwrap();
    assert_eq!(error_code(&json), None, "{json:#}");
    json["data"].clone()
}

async fn set_edu(
    store: &plangraph_persistence::Store,
    secret: &str,
    rev: i64,
    reached: &str,
) -> i64 {
    let response = execute_as(
        store,
        Some(secret),
        r#"mutation($rev: Int!, $reached: String!) { setSectorFigures(reportId: "1",
            expectedRevision: $rev, sectorCode: "EDU", figures: { peopleReached: $reached }) { revision } }"#,
        json!({ "rev": rev, "reached": reached }),
    )
    .await;
    assert_eq!(error_code(&response), None, "{response:#}");
    response["data"]["setSectorFigures"]["revision"]
        .as_i64()
        .unwrap()
}

async fn revision(store: &plangraph_persistence::Store) -> i64 {
    data(store, r#"{ report(id: "1") { revision } }"#).await["report"]["revision"]
        .as_i64()
        .unwrap()
}

/// The same selection, once as a subscription event's payload and once as a query over HTTP:
/// the same values, in the same (selection) order, byte for byte.
async fn an_event_carries_what_http_answers_in_selection_order(backend: Backend) {
    let test_store = peru_store(backend).await;
    let store = &test_store.store;
    let secret = token(store, Role::Editor, &["PER"]).await;
    let rev = revision(store).await;
    // Deliberately not alphabetical, nor in resolution order.
    let selection = r#"{ title revision totals { unmetUsd peopleReached }
        sector(code: "EDU") { printed { peopleReached } peopleReached sector { name code } }
        country { platform { name code } iso3 } }"#;
    let api = Api::new(store.clone());
    let mut events = api.execute_stream(Request::new(format!(
        r#"subscription {{ reportChanged(countryIso3: "PER", afterRevision: {rev}) {{ revision report {selection} }} }}"#
    )), None);
    let new_rev = set_edu(store, &secret, rev, "40.1 K").await;
    let response = tokio::time::timeout(Duration::from_secs(10), events.next())
        .await
        .expect("an event within 10 s")
        .expect("the stream goes on");
    assert!(response.errors.is_empty(), "{:?}", response.errors);
    // async_graphql's Value keeps the order the server wrote; serde_json's would sort it.
    let raw_event = serde_json::to_string(&response.data).unwrap();
    let prefix = format!(r#"{{"reportChanged":{{"revision":{new_rev},"report":"#);
    let in_event = raw_event
        .strip_prefix(&prefix)
        .and_then(|rest| rest.strip_suffix("}}"))
        .unwrap_or_else(|| panic!("{raw_event}"));

    let app =
        test::init_service(App::new().configure(configure(AppState::new(store.clone())))).await;
    let post = test::TestRequest::post()
        .uri("/graphql")
        .set_json(json!({ "query": format!(r#"{{ report(id: "1") {selection} }}"#) }))
        .to_request();
    let raw_http = String::from_utf8(test::call_and_read_body(&app, post).await.to_vec()).unwrap();
    let over_http = raw_http
        .strip_prefix(r#"{"data":{"report":"#)
        .and_then(|rest| rest.strip_suffix("}}"))
        .unwrap_or_else(|| panic!("{raw_http}"));
    assert_eq!(in_event, over_http);
    assert!(
        over_http.starts_with(r#"{"title":"END-YEAR REPORT 2023","revision":"#),
        "{over_http}"
    );
    assert!(over_http.contains(r#""sector":{"printed":{"peopleReached":"40.1 K"},"peopleReached":40100,"sector":{"name":"Education","code":"EDU"}}"#), "{over_http}");
}
on_both_databases!(an_event_carries_what_http_answers_in_selection_order, actix);

/// Each event is resolved with a loader of its own: two changes to one figure come out as two
/// events with their own values (a loader kept across events would repeat the first value).
async fn each_event_reads_the_store_after_its_change(backend: Backend) {
    let test_store = peru_store(backend).await;
    let store = &test_store.store;
    let secret = token(store, Role::Editor, &["PER"]).await;
    let rev = revision(store).await;
    let api = Api::new(store.clone());
    let mut events = api.execute_stream(Request::new(format!(
        r#"subscription {{ figuresChanged(reportId: "1", sectorCode: "edu", afterRevision: {rev}) {{
            revision sectorCode figures {{ peopleReached }} changes {{ path before after }} }} }}"#
    )), None);
    // Each change is made once the previous event arrived, so every event is resolved right
    // after its own change, with the figure as that change left it.
    let mut seen = Vec::new();
    let mut rev = rev;
    for reached in ["40.1 K", "41.2 K", "OTHER", "42.3 K"] {
        if reached == "OTHER" {
            // A change elsewhere is not a figure change of EDU: no event.
            let other = execute_as(
                store,
                Some(&secret),
                &format!(r#"mutation {{ setPartnerCount(reportId: "1", expectedRevision: {rev}, role: DONOR, count: 24) {{ revision }} }}"#),
                json!({}),
            )
            .await;
            rev = other["data"]["setPartnerCount"]["revision"]
                .as_i64()
                .unwrap();
            continue;
        }
        rev = set_edu(store, &secret, rev, reached).await;
        let event = next_event(&mut events).await;
        let e = &event["figuresChanged"];
        assert_eq!(e["sectorCode"], "EDU");
        seen.push((
            e["revision"].as_i64().unwrap(),
            e["figures"][0]["peopleReached"].as_i64().unwrap(),
            e["changes"][0]["after"].as_str().unwrap().to_owned(),
        ));
    }
    assert_eq!(
        seen,
        vec![
            (rev - 3, 40_100, "40.1 K".to_owned()),
            (rev - 2, 41_200, "41.2 K".to_owned()),
            (rev, 42_300, "42.3 K".to_owned()),
        ]
    );
}
on_both_databases!(each_event_reads_the_store_after_its_change);

/// A subscriber that drops and resumes with the last revision it saw receives every change made
/// meanwhile, in order, once each, then the live ones, with no duplicate.
async fn resuming_after_a_revision_loses_nothing_and_repeats_nothing(backend: Backend) {
    let test_store = peru_store(backend).await;
    let store = &test_store.store;
    let secret = token(store, Role::Editor, &["PER"]).await;
    let start = revision(store).await;
    let api = Api::new(store.clone());
    let subscribe = |after: i64| {
        api.execute_stream(Request::new(format!(
            r#"subscription {{ reportChanged(countryIso3: "PER", year: 2023, afterRevision: {after}) {{ revision changes {{ after }} }} }}"#
        )), None)
    };

    let mut first = subscribe(start);
    let r1 = set_edu(store, &secret, start, "40.1 K").await;
    assert_eq!(
        next_event(&mut first).await["reportChanged"]["revision"],
        r1
    );
    drop(first);

    let mut missed = Vec::new();
    let mut rev = r1;
    for reached in ["41.0 K", "42.0 K", "43.0 K"] {
        rev = set_edu(store, &secret, rev, reached).await;
        missed.push(rev);
    }
    let mut resumed = subscribe(r1);
    for expected in &missed {
        let event = next_event(&mut resumed).await;
        assert_eq!(event["reportChanged"]["revision"], *expected);
    }
    let live = set_edu(store, &secret, rev, "44.0 K").await;
    let event = next_event(&mut resumed).await;
    assert_eq!(event["reportChanged"]["revision"], live);
    assert_eq!(event["reportChanged"]["changes"][0]["after"], "44.0 K");
    let nothing_more = tokio::time::timeout(Duration::from_millis(700), resumed.next()).await;
    assert!(
        nothing_more.is_err(),
        "an event arrived twice: {nothing_more:?}"
    );
}
on_both_databases!(resuming_after_a_revision_loses_nothing_and_repeats_nothing);

/// A mutation sent over GET is refused with 405 and `METHOD_NOT_ALLOWED`, even with a valid
/// token, and writes nothing; a query over GET still answers.
async fn a_mutation_over_get_is_refused(backend: Backend) {
    let test_store = peru_store(backend).await;
    let store = &test_store.store;
    let secret = token(store, Role::Admin, &[]).await;
    let before = store_checksum(store).await;
    let app =
        test::init_service(App::new().configure(configure(AppState::new(store.clone())))).await;
    let query = r#"mutation { setPartnerCount(reportId: "1", expectedRevision: 1, role: DONOR, count: 99) { revision } }"#;
    let get = test::TestRequest::get()
        .uri(&format!("/graphql?query={}", urlencode(query)))
        .insert_header(("authorization", format!("Bearer {secret}")))
        .insert_header(("apollo-require-preflight", "true"))
        .to_request();
    let response = test::call_service(&app, get).await;
    assert_eq!(response.status().as_u16(), 405);
    let body: Value = test::read_body_json(response).await;
    assert_eq!(
        error_code(&body).as_deref(),
        Some("METHOD_NOT_ALLOWED"),
        "{body:#}"
    );
    assert_eq!(store_checksum(store).await, before);
}
on_both_databases!(a_mutation_over_get_is_refused, actix);

fn urlencode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// What a subscription cannot honour is refused up front with its code: a revision ahead of
/// the store (following "live from there" would skip changes), an unknown report, country or
/// sector, and more than one root field.
async fn subscriptions_refuse_what_they_cannot_honour(backend: Backend) {
    let test_store = peru_store(backend).await;
    let store = &test_store.store;
    let head = revision(store).await;
    let api = Api::new(store.clone());
    for (query, code) in [
        (
            format!(r#"subscription {{ reportChanged(afterRevision: {}) {{ revision }} }}"#, head + 5),
            "BAD_USER_INPUT",
        ),
        (
            r#"subscription { reportChanged(afterRevision: -1) { revision } }"#.to_owned(),
            "BAD_USER_INPUT",
        ),
        (
            r#"subscription { figuresChanged(reportId: "999") { revision } }"#.to_owned(),
            "NOT_FOUND",
        ),
        (
            r#"subscription { reportChanged(reportId: "999") { revision } }"#.to_owned(),
            "NOT_FOUND",
        ),
        (
            r#"subscription { reportChanged(countryIso3: "XXX") { revision } }"#.to_owned(),
            "UNKNOWN_COUNTRY",
        ),
        (
            r#"subscription { figuresChanged(reportId: "1", sectorCode: "NOPE") { revision } }"#.to_owned(),
            "UNKNOWN_SECTOR",
        ),
        (
            r#"subscription { a: reportChanged { revision } b: reportChanged { revision } }"#.to_owned(),
            "GRAPHQL_VALIDATION_FAILED",
        ),
        (
            r#"subscription { ...Both } fragment Both on Subscription { reportChanged { revision } figuresChanged(reportId: "1") { revision } }"#.to_owned(),
            "GRAPHQL_VALIDATION_FAILED",
        ),
    ] {
        let mut stream = api.execute_stream(Request::new(query.clone()), None);
        let response = tokio::time::timeout(Duration::from_secs(10), stream.next())
            .await
            .expect("an answer")
            .expect("one response");
        let json = serde_json::to_value(&response).unwrap();
        assert_eq!(error_code(&json).as_deref(), Some(code), "{query}: {json:#}");
    }
    // At the head itself is fine: nothing to replay, live from here.
    let mut at_head = api.execute_stream(
        Request::new(format!(
            r#"subscription {{ reportChanged(afterRevision: {head}) {{ revision }} }}"#
        )),
        None,
    );
    let nothing = tokio::time::timeout(Duration::from_millis(300), at_head.next()).await;
    assert!(nothing.is_err(), "{nothing:?}");
}
on_both_databases!(subscriptions_refuse_what_they_cannot_honour);

/// A WebSocket connection holds at most `MAX_SUBSCRIPTIONS_PER_SOCKET` subscriptions: one more
/// is refused with `TOO_MANY_SUBSCRIPTIONS`, and ending one frees its place.
async fn a_connection_holds_a_bounded_number_of_subscriptions(backend: Backend) {
    use std::sync::Arc;

    use plangraph_api::{MAX_SUBSCRIPTIONS_PER_SOCKET, SubscriptionQuota};

    let test_store = peru_store(backend).await;
    let api = Api::new(test_store.store.clone());
    let mut session = async_graphql::Data::default();
    session.insert(SubscriptionQuota::per_socket());
    let session = Arc::new(session);
    let subscribe = || {
        api.execute_stream(
            Request::new(r#"subscription { reportChanged(countryIso3: "PER") { revision } }"#),
            Some(session.clone()),
        )
    };
    let mut held = Vec::new();
    for _ in 0..MAX_SUBSCRIPTIONS_PER_SOCKET {
        let mut stream = subscribe();
        // Polled once: the subscription is set up and waits for a change.
        let pending = tokio::time::timeout(Duration::from_millis(20), stream.next()).await;
        assert!(pending.is_err(), "{pending:?}");
        held.push(stream);
    }
    let mut one_more = subscribe();
    let refused = tokio::time::timeout(Duration::from_secs(5), one_more.next())
        .await
        .expect("an answer")
        .expect("a response");
    let json = serde_json::to_value(&refused).unwrap();
    assert_eq!(
        error_code(&json).as_deref(),
        Some("TOO_MANY_SUBSCRIPTIONS"),
        "{json:#}"
    );

    drop(held.pop());
    let mut again = subscribe();
    let pending = tokio::time::timeout(Duration::from_millis(200), again.next()).await;
    assert!(
        pending.is_err(),
        "a freed place is usable again: {pending:?}"
    );
}
on_both_databases!(a_connection_holds_a_bounded_number_of_subscriptions);
