//! The response cache: a repeated query is answered from the answers kept for the store's
//! current revision, and a write through any process is read through every other at once.

use serde_json::{Value, json};

use crate::on_both_databases;
use crate::support::server::{Server, admin_token, post_json_with_head};
use crate::support::{Backend, database_url};

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
