//! Bounded by design: the documents an attacker found could abort the process or take
//! gigabytes are refused with a stable code before they cost anything, and what the process
//! keeps stays within its bytes whatever keys a client mints.

use std::time::{Duration, Instant};

use async_graphql::futures_util::StreamExt;
use async_graphql::{Request, Variables};
use plangraph_api::kept::Which;
use plangraph_api::{Answer, Api, Credentials, Profile, QueryLimits, WriteLimits};
use plangraph_domain::access::Role;
use serde_json::{Value, json};

use crate::on_both_databases;
use crate::support::server::{Server, post_json};
use crate::support::writes::{error_code, token};
use crate::support::{Backend, counted_store, database_url, peru_store};

/// `{ country(iso3: [[[…"PER"…]]]) { name } }`, nested `levels` deep.
fn nested_list(levels: usize) -> String {
    format!(
        "{{ country(iso3: {}\"PER\"{}) {{ name }} }}",
        "[".repeat(levels),
        "]".repeat(levels)
    )
}

/// The same with input objects: `{a: {a: …}}`.
fn nested_object(levels: usize) -> String {
    format!(
        "{{ country(iso3: {}\"PER\"{}) {{ name }} }}",
        "{a: ".repeat(levels),
        "}".repeat(levels)
    )
}

fn api_with(store: &plangraph_persistence::Store, limits: QueryLimits) -> Api {
    Api::configured(
        store.clone(),
        WriteLimits::default(),
        limits,
        Profile::Development,
    )
}

async fn run(api: &Api, request: impl Into<Request>) -> (Value, Duration) {
    let started = Instant::now();
    let response = api.execute(request).await;
    (serde_json::to_value(&response).unwrap(), started.elapsed())
}

/// Values nested 2,000 and 100,000 deep (which overflowed a worker's stack inside
/// async-graphql's value parser and aborted the process), selection sets 100,000 deep, deep
/// variables, long strings and numbers, and an undefined directive: each refused with its code,
/// at once, without one SQL statement.
async fn abusive_documents_are_refused_before_they_are_parsed(backend: Backend) {
    let (test, counter) = counted_store(backend).await;
    plangraph_server::load_bundled_if_empty(&test.store)
        .await
        .unwrap();
    let limits = QueryLimits {
        max_string_bytes: 1_000,
        ..QueryLimits::default()
    };
    let api = api_with(&test.store, limits);
    let deep_variable = {
        let mut value = json!("PER");
        for _ in 0..100 {
            value = json!([value]);
        }
        value
    };
    let cases: Vec<(&str, Request, &str)> = vec![
        (
            "a list 2,000 deep",
            Request::new(nested_list(2_000)),
            "VALUE_TOO_DEEP",
        ),
        (
            "a list 100,000 deep",
            Request::new(nested_list(100_000)),
            "VALUE_TOO_DEEP",
        ),
        (
            "an object 2,000 deep",
            Request::new(nested_object(2_000)),
            "VALUE_TOO_DEEP",
        ),
        (
            "an object 100,000 deep",
            Request::new(nested_object(100_000)),
            "VALUE_TOO_DEEP",
        ),
        (
            "a list type 2,000 deep",
            Request::new(format!(
                "query Q($a: {}String{}) {{ __typename }}",
                "[".repeat(2_000),
                "]".repeat(2_000)
            )),
            "VALUE_TOO_DEEP",
        ),
        (
            "selection sets 100,000 deep",
            Request::new(format!(
                "{}__typename{}",
                "{ ... on Query ".repeat(100_000),
                " }".repeat(100_000)
            )),
            "QUERY_TOO_DEEP",
        ),
        (
            "a variable 100 deep",
            Request::new("query($c: String!) { country(iso3: $c) { name } }")
                .variables(Variables::from_json(json!({ "c": deep_variable }))),
            "VALUE_TOO_DEEP",
        ),
        (
            "a long string",
            Request::new(format!(
                r#"{{ country(iso3: "{}") {{ name }} }}"#,
                "P".repeat(1_001)
            )),
            "VALUE_TOO_LONG",
        ),
        (
            "a long string in a variable",
            Request::new("query($c: String!) { country(iso3: $c) { name } }")
                .variables(Variables::from_json(json!({ "c": "P".repeat(1_001) }))),
            "VALUE_TOO_LONG",
        ),
        (
            "a long number",
            Request::new(format!(
                "{{ reports(first: {}) {{ totalCount }} }}",
                "9".repeat(65)
            )),
            "VALUE_TOO_LONG",
        ),
        (
            "an undefined directive",
            Request::new(r#"{ country(iso3: "PER") @zzz { name } }"#),
            "GRAPHQL_VALIDATION_FAILED",
        ),
    ];
    for (name, request, code) in cases {
        counter.reset();
        let (response, elapsed) = run(&api, request).await;
        assert_eq!(
            error_code(&response).as_deref(),
            Some(code),
            "{name}: {response:#}"
        );
        assert!(response["data"].is_null(), "{name}: {response:#}");
        assert_eq!(counter.get(), 0, "{name} ran SQL");
        assert!(
            elapsed < Duration::from_millis(200),
            "{name} took {elapsed:?}"
        );
    }
    // Just under the value limit, the document goes on to validation (no field takes a list
    // 31 deep, so validation is what answers).
    let (response, _) = run(
        &api,
        format!(
            "query($a: {}String{} = null) {{ country(iso3: \"PER\") {{ name }} }}",
            "[".repeat(31),
            "]".repeat(31)
        ),
    )
    .await;
    assert_eq!(
        error_code(&response).as_deref(),
        Some("GRAPHQL_VALIDATION_FAILED"),
        "{response:#}"
    );
    assert!(
        response["errors"][0]["message"]
            .as_str()
            .is_some_and(|m| m.contains("not used")),
        "{response:#}"
    );
}
on_both_databases!(abusive_documents_are_refused_before_they_are_parsed);

/// `_entities` counts its representations as the items they are: 20,000 of one report (a
/// ~700 KB body that answered 160 MB with the process at 846 MiB) are refused at once with
/// their own code, a wide selection over fewer is refused by complexity, and a gateway's
/// ordinary batch runs.
async fn entity_representations_are_counted_and_capped(backend: Backend) {
    let (test, counter) = counted_store(backend).await;
    plangraph_server::load_bundled_if_empty(&test.store)
        .await
        .unwrap();
    let api = api_with(&test.store, QueryLimits::default());
    let query = |selection: &str| {
        format!(
            "query($r: [_Any!]!) {{ _entities(representations: $r) {{ ... on Report {{ {selection} }} }} }}"
        )
    };
    let reps = |n: usize| {
        Variables::from_json(json!({ "r": vec![json!({ "__typename": "Report", "id": "1" }); n] }))
    };
    counter.reset();
    let started = Instant::now();
    let (response, _) = run(&api, Request::new(query("id")).variables(reps(20_000))).await;
    // 60,000 values: refused by their count before the document is looked at (over HTTP, in
    // the body's text before it is built).
    assert_eq!(
        error_code(&response).as_deref(),
        Some("TOO_MANY_VALUES"),
        "{response:#}"
    );
    assert_eq!(counter.get(), 0);
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "{:?}",
        started.elapsed()
    );
    let (response, _) = run(&api, Request::new(query("id")).variables(reps(1_001))).await;
    assert_eq!(
        error_code(&response).as_deref(),
        Some("TOO_MANY_REPRESENTATIONS"),
        "{response:#}"
    );
    assert_eq!(counter.get(), 0);
    // 1,000 representations of a report in full width: refused by complexity.
    let wide = query(
        "id title sectors { sector { code name subSectors { code } } peopleReached } partners { name } donors { name } sections { title paragraphs }",
    );
    let (response, _) = run(&api, Request::new(wide).variables(reps(1_000))).await;
    assert_eq!(
        error_code(&response).as_deref(),
        Some("QUERY_TOO_COMPLEX"),
        "{response:#}"
    );
    // A literal list counts the same way.
    let literal = format!(
        "{{ _entities(representations: [{}]) {{ ... on Report {{ id }} }} }}",
        vec![r#"{__typename: "Report", id: "1"}"#; 1_001].join(", ")
    );
    let (response, _) = run(&api, literal).await;
    assert_eq!(
        error_code(&response).as_deref(),
        Some("TOO_MANY_REPRESENTATIONS"),
        "{response:#}"
    );
    let (response, _) = run(&api, Request::new(query("id title")).variables(reps(500))).await;
    assert!(response.get("errors").is_none(), "{response:#}");
    assert_eq!(
        response["data"]["_entities"].as_array().map(Vec::len),
        Some(500)
    );
}
on_both_databases!(entity_representations_are_counted_and_capped);

/// An answer larger than the limit is not sent: `RESPONSE_TOO_LARGE`, over every transport.
async fn answers_over_the_size_limit_are_refused(backend: Backend) {
    let test = peru_store(backend).await;
    let api = api_with(
        &test.store,
        QueryLimits {
            max_response_bytes: 2_000,
            ..QueryLimits::default()
        },
    );
    let big = r#"{ country(iso3: "PER") { report(year: 2023) { sections { paragraphs } } } }"#;
    let (response, _) = run(&api, big).await;
    assert_eq!(
        error_code(&response).as_deref(),
        Some("RESPONSE_TOO_LARGE"),
        "{response:#}"
    );
    assert!(response["data"].is_null());
    let mut over_socket = api.execute_stream(Request::new(big), None);
    let answer = serde_json::to_value(over_socket.next().await.unwrap()).unwrap();
    assert_eq!(error_code(&answer).as_deref(), Some("RESPONSE_TOO_LARGE"));
    let (small, _) = run(&api, r#"{ country(iso3: "PER") { name } }"#).await;
    assert_eq!(small["data"]["country"]["name"], "Peru");
}
on_both_databases!(answers_over_the_size_limit_are_refused);

/// A cursor has one spelling: `id:07`, `id:+7` and `id:-1` are not cursors of this server
/// (each would be one more kept page for a client to mint).
async fn cursors_have_one_spelling(backend: Backend) {
    let test = peru_store(backend).await;
    let api = api_with(&test.store, QueryLimits::default());
    for cursor in ["id:07", "id:+7", "id:-1", "id:", "id:1e3", "id: 1"] {
        let (response, _) = run(
            &api,
            format!(r#"{{ reports(after: "{cursor}") {{ totalCount }} }}"#),
        )
        .await;
        assert_eq!(
            error_code(&response).as_deref(),
            Some("INVALID_CURSOR"),
            "{cursor}: {response:#}"
        );
    }
    let (response, _) = run(&api, r#"{ reports(after: "id:0") { totalCount } }"#).await;
    assert!(response.get("errors").is_none(), "{response:#}");
}
on_both_databases!(cursors_have_one_spelling);

/// A flood of distinct cursors, pages and filters (every `after: "id:N"` a new key, about
/// 41 KB of kept rows each on the generated data set, which let the old key-bounded cache grow
/// to gigabytes) leaves the kept rows within their bytes.
async fn kept_rows_stay_within_their_bytes_under_a_key_flood(backend: Backend) {
    let test = peru_store(backend).await;
    let plan = plangraph_domain::synthetic::Plan {
        countries: 4,
        years: 3,
        organizations: 40,
        partners_per_report: 10,
        donors_per_report: 4,
        ..Default::default()
    };
    plangraph_server::generate::generate(&test.store, &plan)
        .await
        .unwrap();
    const BUDGET: usize = 512 * 1024;
    let api = api_with(
        &test.store,
        QueryLimits {
            row_cache_bytes: BUDGET,
            response_cache_bytes: BUDGET,
            ..QueryLimits::default()
        },
    );
    for n in 0..400 {
        let first = 1 + n % 7;
        let query = format!(
            r#"{{ reports(first: {first}, after: "id:{n}") {{ nodes {{ id title sectors {{ peopleReached }} sections {{ paragraphs }} partners {{ name }} }} }} }}"#
        );
        let (response, _) = run(&api, query).await;
        assert!(response.get("errors").is_none(), "{response:#}");
    }
    api.kept().settle().await;
    let rows = api.kept().bytes(Which::Rows);
    let answers = api.kept().bytes(Which::Answers);
    println!("kept after the flood: {rows} bytes of rows, {answers} bytes of answers");
    assert!(rows as usize <= BUDGET, "{rows}");
    assert!(answers as usize <= BUDGET, "{answers}");
    assert!(rows > 0 && answers > 0);
}
on_both_databases!(
    kept_rows_stay_within_their_bytes_under_a_key_flood,
    multi_thread
);

/// HTTP and WebSocket share what is kept: an anonymous query answered over a socket is kept,
/// and the same text over HTTP is then given from it; a socket with a token is never served
/// from (or kept in) the shared answers.
async fn sockets_and_http_share_the_kept_answers(backend: Backend) {
    let test = peru_store(backend).await;
    let api = api_with(
        &test.store,
        QueryLimits {
            response_cache_bytes: 1 << 20,
            ..QueryLimits::default()
        },
    );
    let query = r#"{ country(iso3: "PER") { name report(year: 2023) { title } } }"#;
    let mut over_socket = api.execute_stream(Request::new(query), None);
    let first = serde_json::to_value(over_socket.next().await.unwrap()).unwrap();
    assert_eq!(first["data"]["country"]["name"], "Peru", "{first:#}");
    match api.answer(query).await {
        Answer::Written { fresh, body } => {
            assert!(!fresh, "kept by the socket's request");
            let body: Value = serde_json::from_slice(&body).unwrap();
            assert_eq!(body, first);
        }
        Answer::Response(response) => panic!("not kept: {response:?}"),
    }
    // Introspection over a socket with a valid token is answered in production, as over HTTP.
    let secret = token(&test.store, Role::Editor, &["PER"]).await;
    let production = Api::configured(
        test.store.clone(),
        WriteLimits::default(),
        QueryLimits::default(),
        Profile::Production,
    );
    let mut session = async_graphql::Data::default();
    session.insert(Credentials::from_authorization(Some(&format!(
        "Bearer {secret}"
    ))));
    let mut answers = production.execute_stream(
        Request::new("{ __schema { queryType { name } } }"),
        Some(std::sync::Arc::new(session)),
    );
    let schema = serde_json::to_value(answers.next().await.unwrap()).unwrap();
    assert_eq!(
        schema["data"]["__schema"]["queryType"]["name"], "Query",
        "{schema:#}"
    );
    let mut anonymous =
        production.execute_stream(Request::new("{ __schema { queryType { name } } }"), None);
    let hidden = serde_json::to_value(anonymous.next().await.unwrap()).unwrap();
    assert!(
        hidden["data"]["__schema"].is_null() || hidden.get("errors").is_some(),
        "{hidden:#}"
    );
}
on_both_databases!(sockets_and_http_share_the_kept_answers);

/// The release of the attacks above against the real binary over HTTP: the process answers
/// each with its code and keeps serving (2,000 nested brackets aborted it before).
async fn the_server_survives_nesting_attacks_over_http(backend: Backend) {
    let (url, _dir) = database_url(backend).await;
    let server = Server::start(&url);
    // Sends one body; it must be refused with `code`, and the time it took is printed.
    let refused = |name: &str, body: &Value, code: &str| {
        let started = Instant::now();
        let (status, answer) = post_json(&server.addr, "/graphql", body, None)
            .unwrap_or_else(|e| panic!("{name}: {e}\n{}", server.logs()));
        assert_eq!(status, 200, "{name}: {answer}");
        assert_eq!(
            error_code(&answer).as_deref(),
            Some(code),
            "{name}: {answer}"
        );
        println!("{name}: refused in {:?}", started.elapsed());
    };
    for (name, document) in [
        ("list 2,000", nested_list(2_000)),
        ("object 2,000", nested_object(2_000)),
        ("list 100,000", nested_list(100_000)),
        ("object 100,000", nested_object(100_000)),
    ] {
        refused(name, &json!({ "query": document }), "VALUE_TOO_DEEP");
        let alive = server.data(r#"{ country(iso3: "PER") { name } }"#, None);
        assert_eq!(alive["country"]["name"], "Peru");
    }
    // Wide rather than deep: 20,000 representations (a ~700 KB body that answered 160 MB) and
    // 600,000 empty objects in a variable the document never uses (690,000 took 328 MiB
    // to build), both refused by their count of values before the body is built.
    let entities = json!({
        "query": "query($r: [_Any!]!) { _entities(representations: $r) { ... on Report { id } } }",
        "variables": { "r": vec![json!({ "__typename": "Report", "id": "1" }); 20_000] },
    });
    let wide = json!({
        "query": "{ __typename }",
        "variables": { "unused": vec![json!({}); 600_000] },
    });
    refused("entities 20,000", &entities, "TOO_MANY_VALUES");
    refused("600,000 {}", &wide, "TOO_MANY_VALUES");
}
on_both_databases!(the_server_survives_nesting_attacks_over_http);

/// History is budgeted per request, not per report: `reports { history }` over many reports
/// reads at most the request's budget (each report's page was budgeted alone, so 100 reports
/// could load ~800 MB); the pages the budget cut say there is more.
async fn history_reads_are_budgeted_per_request(backend: Backend) {
    let test = peru_store(backend).await;
    let plan = plangraph_domain::synthetic::Plan {
        countries: 4,
        years: 3,
        organizations: 20,
        partners_per_report: 4,
        donors_per_report: 2,
        ..Default::default()
    };
    plangraph_server::generate::generate(&test.store, &plan)
        .await
        .unwrap();
    let query = "{ reports(first: 13) { nodes { id history(first: 5) { edges { node { revision changes { path } } } pageInfo { hasNextPage } } } } }";
    let count = |response: &Value| {
        let nodes = response["data"]["reports"]["nodes"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        let changes: usize = nodes
            .iter()
            .map(|n| n["history"]["edges"].as_array().map_or(0, Vec::len))
            .sum();
        let cut = nodes
            .iter()
            .filter(|n| n["history"]["pageInfo"]["hasNextPage"] == true)
            .count();
        (nodes.len(), changes, cut)
    };
    let generous = api_with(&test.store, QueryLimits::default());
    let (response, _) = run(&generous, query).await;
    assert!(response.get("errors").is_none(), "{response:#}");
    let (reports, changes, cut) = count(&response);
    assert_eq!((reports, changes, cut), (13, 13, 0), "one import each");
    // A budget of about two imports' worth: the first reports get their page, the rest are cut.
    use sea_orm::ConnectionTrait;
    let largest = test
        .store
        .connection()
        .query_one_raw(sea_orm::Statement::from_string(
            test.store.connection().get_database_backend(),
            "SELECT MAX(fields_bytes) AS largest FROM change WHERE report_id IS NOT NULL",
        ))
        .await
        .unwrap()
        .unwrap();
    let one = usize::try_from(largest.try_get::<i64>("", "largest").unwrap()).unwrap();
    let tight = api_with(
        &test.store,
        QueryLimits {
            history_bytes_per_request: one * 2,
            ..QueryLimits::default()
        },
    );
    let (response, _) = run(&tight, query).await;
    assert!(response.get("errors").is_none(), "{response:#}");
    let (reports, changes, cut) = count(&response);
    println!(
        "with a budget of {} bytes: {changes} changes read, {cut} pages cut",
        one * 2
    );
    assert_eq!(reports, 13);
    assert!((1..13).contains(&changes), "{changes}");
    assert_eq!(changes + cut, 13, "every page either read or cut");
}
on_both_databases!(history_reads_are_budgeted_per_request);
