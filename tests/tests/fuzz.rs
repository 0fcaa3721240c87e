//! A property-based fuzz of the request pipeline: generated documents (nesting of selections
//! and values, fragments that spread each other, aliases, directives known and unknown,
//! variables, odd Unicode, broken syntax) must each be answered, within the time budget, with
//! data or with errors that carry a stable code, and never bring the process down.
//!
//! Five thousand cases run in-process (a few seconds); a few hundred go to the real binary over HTTP, which
//! must still answer a plain query afterwards. The cases are drawn from a fixed seed so CI is
//! repeatable; `PLANGRAPH_FUZZ_SEED=N` draws another set and `PLANGRAPH_FUZZ_CASES=N` more of
//! them, and `PLANGRAPH_FUZZ_TRACE=1` prints each case before it runs (the last one printed is
//! the one that failed, should the process itself fail).

use std::time::{Duration, Instant};

use async_graphql::{Request, Variables};
use plangraph_api::{Api, Profile, QueryLimits, WriteLimits};
use proptest::prelude::*;
use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};
use serde_json::{Value, json};

use crate::support::server::{Server, post_json};
use crate::support::{Backend, database_url, peru_store};

/// Field names: the schema's own, so some documents run for real, and some that are not.
const FIELDS: &[&str] = &[
    "countries",
    "country",
    "sectors",
    "sector",
    "report",
    "reports",
    "organizations",
    "name",
    "iso3",
    "code",
    "title",
    "year",
    "totals",
    "peopleReached",
    "partners",
    "sections",
    "paragraphs",
    "history",
    "nodes",
    "edges",
    "node",
    "subSectors",
    "parent",
    "__typename",
    "__schema",
    "_entities",
    "_service",
    "zz",
    "é",
];

/// Strings with what breaks naive code: quotes, escapes, controls, surrogate escapes, emoji,
/// right-to-left marks, long runs.
fn string_literal() -> BoxedStrategy<String> {
    prop_oneof![
        Just(r#""PER""#.to_owned()),
        Just(r#""\u0000\u001f\"\\""#.to_owned()),
        Just(r#""\uD800""#.to_owned()),
        Just(r#""\q""#.to_owned()),
        Just("\"\u{202e}\u{1F600}\u{FEFF}ñ\"".to_owned()),
        Just(r#""""block "" \""" string""""#.to_owned()),
        Just("\"unterminated".to_owned()),
        "[a-zA-Z0-9 _\\-]{0,12}".prop_map(|s| format!("\"{s}\"")),
        (1usize..5_000).prop_map(|n| format!("\"{}\"", "x".repeat(n))),
    ]
    .boxed()
}

fn scalar_literal() -> BoxedStrategy<String> {
    prop_oneof![
        string_literal(),
        any::<i64>().prop_map(|n| n.to_string()),
        any::<f64>().prop_map(|n| format!("{n:e}")),
        (1usize..200).prop_map(|n| "9".repeat(n)),
        Just("true".to_owned()),
        Just("null".to_owned()),
        Just("END_YEAR".to_owned()),
        Just("$v".to_owned()),
    ]
    .boxed()
}

/// Values nested as lists and input objects, sometimes far past any limit.
fn value_literal() -> BoxedStrategy<String> {
    (
        scalar_literal(),
        prop::collection::vec(0u8..2, 0..6),
        0usize..4,
    )
        .prop_map(|(inner, shape, extra)| {
            let mut value = inner;
            let levels = if extra == 3 && shape.len() == 5 {
                3_000
            } else {
                shape.len()
            };
            for level in 0..levels {
                value = if shape.get(level).copied().unwrap_or(0) == 0 {
                    format!("[{value}]")
                } else {
                    format!("{{a: {value}}}")
                };
            }
            value
        })
        .boxed()
}

fn directive() -> BoxedStrategy<String> {
    prop_oneof![
        Just(String::new()),
        Just(String::new()),
        Just(" @skip(if: false)".to_owned()),
        Just(" @include(if: $b)".to_owned()),
        Just(" @zzz".to_owned()),
        Just(" @skip".to_owned()),
        value_literal().prop_map(|v| format!(" @include(if: {v})")),
    ]
    .boxed()
}

fn field() -> BoxedStrategy<String> {
    (
        prop::sample::select(FIELDS),
        prop::option::of("[a-z]{1,4}"),
        prop::option::of(prop::collection::vec(
            (
                prop::sample::select(
                    &[
                        "iso3",
                        "code",
                        "first",
                        "after",
                        "year",
                        "id",
                        "filter",
                        "representations",
                    ][..],
                ),
                value_literal(),
            ),
            1..3,
        )),
        directive(),
    )
        .prop_map(|(name, alias, arguments, directive)| {
            let alias = alias.map_or_else(String::new, |a| format!("{a}: "));
            let arguments = arguments.map_or_else(String::new, |args| {
                let args: Vec<String> = args.iter().map(|(n, v)| format!("{n}: {v}")).collect();
                format!("({})", args.join(", "))
            });
            format!("{alias}{name}{arguments}{directive}")
        })
        .boxed()
}

/// A selection set of fields, spreads and inline fragments, nested.
fn selection() -> BoxedStrategy<String> {
    let leaf = prop::collection::vec(field(), 1..4).prop_map(|fields| fields.join(" "));
    leaf.prop_recursive(6, 64, 4, |inner| {
        prop::collection::vec(
            prop_oneof![
                (field(), inner.clone()).prop_map(|(f, s)| format!("{f} {{ {s} }}")),
                inner
                    .clone()
                    .prop_map(|s| format!("... on Query {{ {s} }}")),
                inner.prop_map(|s| format!("... {{ {s} }}")),
                (0usize..4).prop_map(|n| format!("...F{n}")),
                field(),
            ],
            1..4,
        )
        .prop_map(|items| items.join(" "))
    })
    .boxed()
}

/// Documents of the real schema with random arguments, aliases, directives and fragments, so a
/// good share of the cases runs all the way through execution.
fn schema_document() -> BoxedStrategy<String> {
    let argument = prop_oneof![
        Just(r#""PER""#.to_owned()),
        Just(r#""per""#.to_owned()),
        Just(r#""COL""#.to_owned()),
        string_literal(),
        scalar_literal(),
    ];
    let body = prop_oneof![
        Just("iso3 name platform { code name }".to_owned()),
        Just("name reports { id year title totals { peopleReached fundingUsd fundedPercent } }".to_owned()),
        Just("report(year: 2023) { title sectors { sector { code parent { code } } peopleReached printed { fundingUsd } } sections { title paragraphs } footnotes { marker text } sources { url } partnerCounts { role count } }".to_owned()),
        Just("report(year: 2023) { history(first: 3) { totalCount edges { cursor node { revision changes { path before after } } } } }".to_owned()),
    ];
    let alias = prop_oneof![
        Just(String::new()),
        "[a-z]{1,3}".prop_map(|a| format!("{a}: "))
    ];
    let first = prop_oneof![
        Just(String::new()),
        (-5i32..130).prop_map(|n| format!("first: {n}"))
    ];
    let after = prop_oneof![
        Just(String::new()),
        Just(r#"after: "id:1""#.to_owned()),
        Just(r#"after: "id:01""#.to_owned()),
        string_literal().prop_map(|s| format!("after: {s}")),
    ];
    prop_oneof![
        (alias.clone(), argument, body, directive(), prop::bool::ANY).prop_map(
            |(alias, iso3, body, directive, fragment)| {
                if fragment {
                    format!("query {{ {alias}country(iso3: {iso3}){directive} {{ ...C }} }} fragment C on Country {{ {body} }}")
                } else {
                    format!("{{ {alias}country(iso3: {iso3}){directive} {{ {body} }} }}")
                }
            }
        ),
        (alias.clone(), first, after).prop_map(|(alias, first, after)| {
            let args = [first, after].into_iter().filter(|a| !a.is_empty()).collect::<Vec<_>>().join(", ");
            let args = if args.is_empty() { String::new() } else { format!("({args})") };
            format!("{{ {alias}reports{args} {{ totalCount pageInfo {{ hasNextPage endCursor }} nodes {{ id year country {{ iso3 }} }} }} }}")
        }),
        (alias, 0usize..60).prop_map(|(alias, n)| {
            let reps = vec![r#"{__typename: "Report", id: "1"}"#; n].join(", ");
            format!("{{ {alias}_entities(representations: [{reps}]) {{ ... on Report {{ id title }} }} }}")
        }),
        Just("{ sectors { code name subSectors { code } } countries { iso3 } }".to_owned()),
        Just("{ _service { sdl } }".to_owned()),
        Just("{ __schema { types { name } } }".to_owned()),
    ]
    .boxed()
}

/// Whole documents: operations, fragments (doubling, cycles, unknown types), variables, and
/// now and then plain garbage or a huge nesting of braces.
fn document() -> BoxedStrategy<String> {
    let operation = (
        prop::sample::select(
            &[
                "",
                "query",
                "query Q",
                "mutation",
                "subscription",
                "query Q($v: [[String]] = null, $b: Boolean = true)",
            ][..],
        ),
        selection(),
    )
        .prop_map(|(head, body)| format!("{head} {{ {body} }}"));
    let fragments = prop::collection::vec(
        (
            0usize..4,
            prop::sample::select(&["Query", "Country", "Report", "Nope"][..]),
            0usize..4,
            selection(),
        ),
        0..4,
    )
    .prop_map(|fragments| {
        fragments
            .iter()
            .map(|(n, on, spread, body)| {
                format!("fragment F{n} on {on} {{ ...F{spread} ...F{spread} {body} }}")
            })
            .collect::<Vec<_>>()
            .join("\n")
    });
    prop_oneof![
        8 => schema_document(),
        8 => (operation, fragments).prop_map(|(op, fragments)| format!("{op}\n{fragments}")),
        1 => "\\PC{0,200}",
        1 => (1usize..20_000).prop_map(|n| format!("{}a{}", "{".repeat(n), "}".repeat(n))),
        1 => prop::collection::vec(any::<u8>(), 0..300)
            .prop_map(|bytes| String::from_utf8_lossy(&bytes).into_owned()),
    ]
    .boxed()
}

fn variables() -> BoxedStrategy<Value> {
    prop_oneof![
        Just(json!({})),
        Just(json!({ "v": [["PER"]], "b": true })),
        Just(json!({ "v": "x".repeat(10_000) })),
        (1usize..120).prop_map(|n| {
            let mut value = json!(1);
            for _ in 0..n {
                value = json!([value]);
            }
            json!({ "v": value })
        }),
    ]
    .boxed()
}

fn runner(default_cases: u32) -> TestRunner {
    let cases = std::env::var("PLANGRAPH_FUZZ_CASES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(default_cases);
    let seed: u64 = std::env::var("PLANGRAPH_FUZZ_SEED")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(13);
    let mut bytes = [0u8; 32];
    bytes[..8].copy_from_slice(&seed.to_le_bytes());
    let config = Config {
        cases,
        failure_persistence: None,
        // Shrinking a case that hung would take as long again, case after case.
        max_shrink_iters: 64,
        ..Config::default()
    };
    TestRunner::new_with_rng(config, TestRng::from_seed(RngAlgorithm::ChaCha, &bytes))
}

/// Every error carries a stable code (`SCREAMING_SNAKE_CASE`).
fn every_error_has_a_code(response: &Value) -> Result<(), String> {
    for error in response["errors"].as_array().into_iter().flatten() {
        let code = error["extensions"]["code"].as_str().unwrap_or_default();
        if code.is_empty() || !code.bytes().all(|b| b.is_ascii_uppercase() || b == b'_') {
            return Err(format!("an error without a stable code: {error}"));
        }
    }
    if response.get("data").is_none() && response.get("errors").is_none() {
        return Err(format!("neither data nor errors: {response}"));
    }
    Ok(())
}

#[test]
fn generated_documents_are_answered_within_budget_in_process() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a runtime");
    let test = runtime.block_on(peru_store(Backend::Sqlite));
    let limits = QueryLimits {
        timeout: Duration::from_secs(2),
        response_cache_bytes: 1 << 20,
        row_cache_bytes: 1 << 20,
        ..QueryLimits::default()
    };
    let api = Api::configured(
        test.store.clone(),
        WriteLimits::default(),
        limits,
        Profile::Production,
    );
    let slowest = std::cell::Cell::new(Duration::ZERO);
    let refused = std::cell::RefCell::new(std::collections::BTreeMap::<String, usize>::new());
    runner(5_000)
        .run(&(document(), variables()), |(document, variables)| {
            if std::env::var_os("PLANGRAPH_FUZZ_TRACE").is_some() {
                eprintln!("case: {document:?} {variables}");
            }
            let request = Request::new(document).variables(Variables::from_json(variables));
            let started = Instant::now();
            let response = runtime.block_on(async {
                tokio::time::timeout(Duration::from_secs(5), api.execute(request)).await
            });
            let elapsed = started.elapsed();
            slowest.set(slowest.get().max(elapsed));
            let response = response.map_err(|_| TestCaseError::fail("no answer within 5 s"))?;
            let response =
                serde_json::to_value(&response).map_err(|e| TestCaseError::fail(e.to_string()))?;
            every_error_has_a_code(&response).map_err(TestCaseError::fail)?;
            let code = response["errors"][0]["extensions"]["code"]
                .as_str()
                .unwrap_or("ok (no error)");
            *refused.borrow_mut().entry(code.to_owned()).or_default() += 1;
            prop_assert!(elapsed < Duration::from_secs(3), "answered in {elapsed:?}");
            Ok(())
        })
        .unwrap_or_else(|failure| panic!("{failure}"));
    println!(
        "slowest answer {:?}; outcomes (first error's code): {:?}",
        slowest.get(),
        refused.borrow()
    );
}

#[test]
fn generated_documents_over_http_leave_the_server_serving() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    let (url, _dir) = runtime.block_on(database_url(Backend::Sqlite));
    let server = Server::start_with(
        &url,
        &["--rate-per-address", "0", "--query-timeout-ms", "2000"],
    );
    runner(300)
        .run(&(document(), variables()), |(document, variables)| {
            let started = Instant::now();
            let (status, body) = post_json(
                &server.addr,
                "/graphql",
                &json!({ "query": document, "variables": variables }),
                None,
            )
            .map_err(|e| TestCaseError::fail(format!("{e}\n{}", server.logs())))?;
            prop_assert!(status == 200 || status == 400, "status {status}: {body}");
            every_error_has_a_code(&body).map_err(TestCaseError::fail)?;
            prop_assert!(
                started.elapsed() < Duration::from_secs(5),
                "{:?}",
                started.elapsed()
            );
            Ok(())
        })
        .unwrap_or_else(|failure| panic!("{failure}\n{}", server.logs()));
    let alive = server.data(r#"{ country(iso3: "PER") { name } }"#, None);
    assert_eq!(alive["country"]["name"], "Peru");
}
