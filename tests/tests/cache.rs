//! The response cache and the kept rows: a repeated query is answered from what was kept for
//! the store's current revision, and a write through any process is read through every other
//! at once.

use serde_json::{Value, json};

use plangraph_api::{Api, Profile, QueryLimits, WriteLimits};
use plangraph_domain::access::Role;

use crate::on_both_databases;
use crate::support::server::{Server, admin_token, post_json_with_head};
use crate::support::writes::{execute_as, token};
use crate::support::{Backend, counted_store, database_url};

const EDU: &str = r#"{ country(iso3: "PER") { report(year: 2023) { revision sectors { sector { code } peopleReached } } } }"#;

/// Reads [`EDU`] through `server` anonymously: the cache's verdict (`hit`, `miss` or none)
/// and the answer's `data`.
fn read(server: &Server, token: Option<&str>) -> (Option<String>, Value) {
    let (status, head, body) =
        post_json_with_head(&server.addr, "/graphql", &json!({ "query": EDU }), token)
            .expect("POST /graphql");
    assert_eq!(status, 200, "{body}");
    assert!(body.get("errors").is_none(), "{body}");
    let verdict = head.lines().find_map(|line| {
        let lower = line.to_ascii_lowercase();
        lower
            .strip_prefix("x-plangraph-cache:")
            .map(|v| v.trim().to_owned())
    });
    (verdict, body["data"].clone())
}

fn edu_reached(data: &Value) -> i64 {
    data["country"]["report"]["sectors"]
        .as_array()
        .and_then(|rows| rows.iter().find(|r| r["sector"]["code"] == "EDU"))
        .and_then(|r| r["peopleReached"].as_i64())
        .unwrap_or_else(|| panic!("no EDU row in {data}"))
}

async fn a_write_through_one_process_is_read_through_another_at_once(backend: Backend) {
    let (url, _dir) = database_url(backend).await;
    let writer = Server::start(&url);
    let reader = Server::start(&url);
    let token = admin_token(&url);

    let (verdict, first) = read(&reader, None);
    assert_eq!(verdict.as_deref(), Some("miss"));
    let (verdict, again) = read(&reader, None);
    assert_eq!(verdict.as_deref(), Some("hit"), "a repeated query is kept");
    assert_eq!(again, first);
    assert_eq!(edu_reached(&first), 37_400);
    // A request with a token is never answered from (or kept in) the cache.
    let (verdict, with_token) = read(&reader, Some(&token));
    assert_eq!(verdict, None);
    assert_eq!(with_token, first);

    for n in 0..10_i64 {
        let expected = writer.peru_revision();
        let reached = format!("{}.{} K", 40 + n, n);
        let written = writer.data(
            &format!(
                r#"mutation {{ setSectorFigures(reportId: "1", expectedRevision: {expected}, sectorCode: "EDU", figures: {{ peopleReached: "{reached}" }}) {{ changed revision }} }}"#
            ),
            Some(&token),
        );
        assert_eq!(written["setSectorFigures"]["changed"], true, "{written}");
        // At once, through the other process: the new value, never the kept one.
        let (verdict, now) = read(&reader, None);
        assert_eq!(verdict.as_deref(), Some("miss"), "round {n}");
        assert_eq!(edu_reached(&now), (40 + n) * 1000 + n * 100, "round {n}");
        assert_eq!(
            now["country"]["report"]["revision"],
            written["setSectorFigures"]["revision"]
        );
        let (verdict, kept) = read(&reader, None);
        assert_eq!(verdict.as_deref(), Some("hit"), "round {n}");
        assert_eq!(kept, now);
    }
}
on_both_databases!(a_write_through_one_process_is_read_through_another_at_once);

/// The nested dashboard query: every relationship of the graph.
const NESTED: &str = include_str!("../../bench/nested.graphql");

async fn kept_rows_serve_queries_until_the_next_write(backend: Backend) {
    let (test, counter) = counted_store(backend).await;
    plangraph_server::load_bundled_if_empty(&test.store)
        .await
        .expect("the bundled report");
    let limits = QueryLimits {
        row_cache_bytes: 16 * 1024 * 1024,
        ..QueryLimits::default()
    };
    let api = Api::configured(
        test.store.clone(),
        WriteLimits::default(),
        limits,
        Profile::Development,
    );
    let run = |query: &'static str| {
        let api = api.clone();
        async move {
            let response = serde_json::to_value(api.execute(query).await).expect("JSON");
            assert!(response.get("errors").is_none(), "{response}");
            response["data"].clone()
        }
    };
    let plain = crate::support::data(&test.store, NESTED).await;

    counter.reset();
    let first = run(NESTED).await;
    let cold = counter.get();
    assert_eq!(first, plain, "kept rows answer as the store does");
    counter.reset();
    let second = run(NESTED).await;
    assert_eq!(second, first);
    assert_eq!(
        counter.get(),
        1,
        "a repeated query reads only the revision (cold: {cold})"
    );
    // Another query: only what was not kept yet (the country by its code) is loaded.
    counter.reset();
    let edu = run(EDU).await;
    assert_eq!(
        counter.get(),
        2,
        "the revision and the country by ISO3 code"
    );
    assert_eq!(edu_reached(&edu), 37_400);
    counter.reset();
    assert_eq!(run(EDU).await, edu);
    assert_eq!(counter.get(), 1);
    // A page of the listing and its count are kept too.
    const PAGE: &str = "{ reports(first: 5) { totalCount nodes { id title } } }";
    counter.reset();
    let listing = run(PAGE).await;
    assert_eq!(listing["reports"]["totalCount"], 1, "{listing}");
    assert_eq!(counter.get(), 2, "the revision, the page with its count");
    counter.reset();
    assert_eq!(run(PAGE).await, listing);
    assert_eq!(counter.get(), 1, "a repeated page reads only the revision");

    // A write moves the revision: the next query loads again and sees it.
    let token = token(&test.store, Role::Admin, &[]).await;
    let expected = edu["country"]["report"]["revision"]
        .as_i64()
        .unwrap_or_else(|| panic!("no revision in {edu}"));
    let written = execute_as(
        &test.store,
        Some(&token),
        &format!(
            r#"mutation {{ setSectorFigures(reportId: "1", expectedRevision: {expected}, sectorCode: "EDU", figures: {{ peopleReached: "40.2 K" }}) {{ revision }} }}"#
        ),
        json!({}),
    )
    .await;
    assert!(written.get("errors").is_none(), "{written}");
    counter.reset();
    let after = run(EDU).await;
    assert_eq!(edu_reached(&after), 40_200);
    assert!(counter.get() > 1, "loaded again after the write");
}
on_both_databases!(kept_rows_serve_queries_until_the_next_write);

async fn kept_rows_never_hide_another_process_write(backend: Backend) {
    let (url, _dir) = database_url(backend).await;
    // Answers are computed every time, so the rows kept by the loaders are what is tested.
    let writer = Server::start_with(&url, &["--response-cache-bytes", "0"]);
    let reader = Server::start_with(&url, &["--response-cache-bytes", "0"]);
    let token = admin_token(&url);
    let (verdict, first) = read(&reader, None);
    assert_eq!(verdict, None, "the response cache is off");
    assert_eq!(edu_reached(&first), 37_400);
    for n in 0..10_i64 {
        let expected = writer.peru_revision();
        let reached = format!("{}.{} K", 50 + n, n);
        writer.data(
            &format!(
                r#"mutation {{ setSectorFigures(reportId: "1", expectedRevision: {expected}, sectorCode: "EDU", figures: {{ peopleReached: "{reached}" }}) {{ changed }} }}"#
            ),
            Some(&token),
        );
        let (_, now) = read(&reader, None);
        assert_eq!(edu_reached(&now), (50 + n) * 1000 + n * 100, "round {n}");
        let (_, again) = read(&reader, None);
        assert_eq!(again, now);
    }
}
on_both_databases!(kept_rows_never_hide_another_process_write);
