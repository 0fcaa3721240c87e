//! Abusive documents are refused before they cost anything: each limit with its code, no SQL
//! run, the fragment-doubling document refused in milliseconds; documents just under the
//! limits run, within the statement bound.

use std::time::{Duration, Instant};

use async_graphql::futures_util::StreamExt;
use plangraph_api::{Api, QueryLimits, WriteLimits};
use serde_json::Value;

use crate::on_both_databases;
use crate::support::writes::error_code;
use crate::support::{Backend, counted_store};

const NESTED: &str = include_str!("../../bench/nested.graphql");

/// `{ f0 }` … a document whose fragment n spreads fragment n-1 twice: 2^levels fields expanded.
fn doubling(levels: usize) -> String {
    let mut doc = String::from("query { countries { ...F");
    doc.push_str(&levels.to_string());
    doc.push_str(" } }\nfragment F0 on Country { iso3 }\n");
    for n in 1..=levels {
        doc.push_str(&format!(
            "fragment F{n} on Country {{ ...F{} ...F{} }}\n",
            n - 1,
            n - 1
        ));
    }
    doc
}

fn nested_sectors(levels: usize) -> String {
    let mut doc = String::from(r#"{ sector(code: "PRO-GBV") { "#);
    for _ in 0..levels {
        doc.push_str("parent { ");
    }
    doc.push_str("code");
    for _ in 0..levels {
        doc.push_str(" }");
    }
    doc.push_str(" } }");
    doc
}

async fn run(api: &Api, query: &str) -> (Value, Duration) {
    let started = Instant::now();
    let response = api.execute(query).await;
    let elapsed = started.elapsed();
    (serde_json::to_value(&response).unwrap(), elapsed)
}

/// Every document just over a limit is refused with that limit's code, and not one SQL
/// statement runs for any of them.
async fn documents_over_a_limit_are_refused_with_their_code_and_no_sql(backend: Backend) {
    let (test, counter) = counted_store(backend).await;
    plangraph_server::load_bundled_if_empty(&test.store)
        .await
        .unwrap();
    let api = Api::new(test.store.clone());
    let limits = QueryLimits::default();
    let aliases: String = (0..=limits.max_aliases)
        .map(|n| format!("a{n}: __typename "))
        .collect();
    let root_fields = "__typename ".repeat(usize::try_from(limits.max_root_fields).unwrap() + 1);
    let directives = "code @skip(if: false) ".repeat(limits.max_directives + 1);
    let spreads = "...F ".repeat(limits.max_fragment_spreads + 1);
    let tokens = "code ".repeat(limits.max_tokens);
    let cases: Vec<(&str, String, &str)> = vec![
        ("aliases", format!("{{ {aliases} }}"), "TOO_MANY_ALIASES"),
        ("root fields", format!("{{ {root_fields} }}"), "TOO_MANY_ROOT_FIELDS"),
        ("directives", format!("{{ sectors {{ {directives} }} }}"), "TOO_MANY_DIRECTIVES"),
        (
            "fragment spreads",
            format!("{{ sectors {{ {spreads} }} }} fragment F on Sector {{ code }}"),
            "TOO_MANY_FRAGMENT_SPREADS",
        ),
        ("tokens", format!("{{ sectors {{ {tokens} }} }}"), "TOO_MANY_TOKENS"),
        (
            "depth",
            nested_sectors(usize::try_from(limits.max_depth).unwrap()),
            "QUERY_TOO_DEEP",
        ),
        (
            "complexity",
            r#"{ countries { reports { history(first: 100) { edges { node { report { sectors { sector { code name subSectors { code } } } } } } } } } }"#.to_owned(),
            "QUERY_TOO_COMPLEX",
        ),
        ("doubling fragments, 29 levels", doubling(29), "QUERY_TOO_COMPLEX"),
        ("doubling fragments, 60 levels", doubling(60), "TOO_MANY_FRAGMENT_SPREADS"),
        (
            "introspection recursing through fields and their types",
            r#"{ __type(name: "Report") { fields { type { fields { type { fields { type { fields { type { fields { type { fields { name } } } } } } } } } } } } }"#.to_owned(),
            "QUERY_TOO_DEEP",
        ),
        (
            "a fragment spreading itself",
            "{ countries { ...A } } fragment A on Country { ...B } fragment B on Country { ...A }".to_owned(),
            "GRAPHQL_VALIDATION_FAILED",
        ),
    ];
    for (name, query, code) in cases {
        counter.reset();
        let (response, elapsed) = run(&api, &query).await;
        assert_eq!(
            error_code(&response).as_deref(),
            Some(code),
            "{name}: {response:#}"
        );
        assert_eq!(counter.get(), 0, "{name} ran SQL");
        if name.starts_with("doubling") {
            assert!(
                elapsed < Duration::from_millis(50),
                "{name} took {elapsed:?}"
            );
            println!("{name}: refused in {elapsed:?}");
        }
    }
}
on_both_databases!(documents_over_a_limit_are_refused_with_their_code_and_no_sql);

/// The standard introspection query (the one GraphiQL sends, `ofType` nested seven deep) is
/// within the limits: unwrapping a type reference adds no depth.
async fn graphiql_introspection_is_within_the_limits(backend: Backend) {
    let (test, _counter) = counted_store(backend).await;
    let api = Api::new(test.store.clone());
    let type_ref = "kind name ofType { kind name ofType { kind name ofType { kind name ofType { kind name ofType { kind name ofType { kind name ofType { kind name } } } } } } }";
    let query = format!(
        "query IntrospectionQuery {{ __schema {{ queryType {{ name }} mutationType {{ name }} subscriptionType {{ name }} \
         types {{ kind name description fields(includeDeprecated: true) {{ name description args {{ name description type {{ {type_ref} }} defaultValue }} \
         type {{ {type_ref} }} isDeprecated deprecationReason }} inputFields {{ name type {{ {type_ref} }} defaultValue }} \
         interfaces {{ {type_ref} }} enumValues(includeDeprecated: true) {{ name isDeprecated }} possibleTypes {{ {type_ref} }} }} \
         directives {{ name locations args {{ name type {{ {type_ref} }} }} }} }} }}"
    );
    let (response, _) = run(&api, &query).await;
    assert!(response.get("errors").is_none(), "{response:#}");
    assert!(
        response["data"]["__schema"]["types"]
            .as_array()
            .is_some_and(|t| t.len() > 10)
    );
}
on_both_databases!(graphiql_introspection_is_within_the_limits);

/// Documents just under each limit run, and cost no more statements than their depth allows.
async fn documents_just_under_the_limits_run_within_the_statement_bound(backend: Backend) {
    let (test, counter) = counted_store(backend).await;
    plangraph_server::load_bundled_if_empty(&test.store)
        .await
        .unwrap();
    let api = Api::new(test.store.clone());
    let limits = QueryLimits::default();
    let aliases: String = (0..limits.max_aliases)
        .map(|n| format!("a{n}: code "))
        .collect();
    let directives = "code @skip(if: false) ".repeat(limits.max_directives);
    let spreads = "...F ".repeat(limits.max_fragment_spreads);
    let cases: Vec<(&str, String, u64)> = vec![
        ("aliases", format!("{{ sectors {{ {aliases} }} }}"), 1),
        ("directives", format!("{{ sectors {{ {directives} }} }}"), 1),
        (
            "fragment spreads",
            format!("{{ sectors {{ {spreads} }} }} fragment F on Sector {{ code }}"),
            1,
        ),
        (
            "depth",
            nested_sectors(usize::try_from(limits.max_depth).unwrap() - 2),
            limits.max_depth,
        ),
        ("doubling fragments, 10 levels", doubling(10), 1),
        ("the nested dashboard query", NESTED.to_owned(), 12),
    ];
    for (name, query, bound) in cases {
        counter.reset();
        let (response, _) = run(&api, &query).await;
        assert_eq!(error_code(&response), None, "{name}: {response:#}");
        let statements = counter.get();
        println!("{name}: {statements} statement(s), bound {bound}");
        assert!(statements <= bound, "{name}: {statements} statements");
    }

    // How much room the dashboard query leaves: the smallest complexity limit that admits it.
    let (mut low, mut high) = (1u64, limits.max_complexity);
    while low < high {
        let mid = low + (high - low) / 2;
        let api = Api::with_all_limits(
            test.store.clone(),
            WriteLimits::default(),
            QueryLimits {
                max_complexity: mid,
                ..limits
            },
        );
        let (response, _) = run(&api, NESTED).await;
        if error_code(&response).as_deref() == Some("QUERY_TOO_COMPLEX") {
            low = mid + 1;
        } else {
            high = mid;
        }
    }
    println!(
        "the nested dashboard query counts {low} against a limit of {}",
        limits.max_complexity
    );
    assert!(low * 3 / 2 <= limits.max_complexity, "{low}");
}
on_both_databases!(documents_just_under_the_limits_run_within_the_statement_bound);

/// A request over the execution timeout is answered with `QUERY_TIMEOUT`; a response with more
/// errors than the limit keeps the first ones and says how many more with `ERRORS_TRUNCATED`.
async fn timeouts_and_error_floods_are_bounded(backend: Backend) {
    let (test, _counter) = counted_store(backend).await;
    plangraph_server::load_bundled_if_empty(&test.store)
        .await
        .unwrap();
    let strict = Api::with_all_limits(
        test.store.clone(),
        WriteLimits::default(),
        QueryLimits {
            timeout: Duration::from_micros(1),
            max_errors: 2,
            ..QueryLimits::default()
        },
    );
    let (slow, _) = run(&strict, NESTED).await;
    assert_eq!(
        error_code(&slow).as_deref(),
        Some("QUERY_TIMEOUT"),
        "{slow:#}"
    );
    // A query sent over a WebSocket (what the socket runs: one answer from the stream) has the
    // same budget.
    let mut answers = strict.execute_stream(async_graphql::Request::new(NESTED), None);
    let answer = answers.next().await.expect("one answer");
    let answer = serde_json::to_value(&answer).expect("JSON");
    assert_eq!(
        error_code(&answer).as_deref(),
        Some("QUERY_TIMEOUT"),
        "{answer:#}"
    );
    assert!(answers.next().await.is_none(), "one answer only");

    let relaxed = Api::with_all_limits(
        test.store.clone(),
        WriteLimits::default(),
        QueryLimits {
            max_errors: 2,
            ..QueryLimits::default()
        },
    );
    let (many, _) = run(&relaxed, "{ a b c d e }").await;
    let errors = many["errors"].as_array().unwrap();
    assert_eq!(errors.len(), 3, "{many:#}");
    assert_eq!(errors[2]["extensions"]["code"], "ERRORS_TRUNCATED");
    assert!(
        errors[2]["message"].as_str().unwrap().starts_with("3 more"),
        "{many:#}"
    );
}
on_both_databases!(timeouts_and_error_floods_are_bounded);

/// A document's parse is kept by its text, but its limits are checked on every request with
/// that request's variables: the same text, once answered, is refused when `$n` makes it too
/// complex, and answered again after.
async fn a_kept_document_is_checked_with_each_requests_variables(backend: Backend) {
    let (test, counter) = counted_store(backend).await;
    plangraph_server::load_bundled_if_empty(&test.store)
        .await
        .unwrap();
    let api = Api::new(test.store.clone());
    let text = "query($n: Int) { countries { reports { history(first: $n) { edges { node { \
                report { sectors { sector { code name subSectors { code } } } } } } } } } }";
    let ask = |n: i64| {
        async_graphql::Request::new(text).variables(async_graphql::Variables::from_json(
            serde_json::json!({ "n": n }),
        ))
    };
    let small = serde_json::to_value(api.execute(ask(1)).await).unwrap();
    assert_eq!(error_code(&small), None, "{small:#}");
    counter.reset();
    let large = serde_json::to_value(api.execute(ask(100)).await).unwrap();
    assert_eq!(
        error_code(&large).as_deref(),
        Some("QUERY_TOO_COMPLEX"),
        "{large:#}"
    );
    assert_eq!(counter.get(), 0, "a refused request runs no SQL");
    let again = serde_json::to_value(api.execute(ask(1)).await).unwrap();
    assert_eq!(again, small);
}
on_both_databases!(a_kept_document_is_checked_with_each_requests_variables);
