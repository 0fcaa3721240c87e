//! GraphQL over HTTP: the real `graphql-http` audit against the real server, and a table of
//! every way a request can be wrong before the schema sees it, each with its status and code.

use std::process::{Command, Stdio};
use std::time::Duration;

use actix_web::http::header;
use actix_web::{App, test};
use serde_json::{Value, json};

use crate::on_both_databases;
use crate::support::server::{Server, interop_clients};
use crate::support::writes::error_code;
use crate::support::{Backend, database_url, peru_store};

/// The `graphql-http` audit (pinned in tests/interop) against `plangraph serve`: every one of
/// its audits ends `ok` (no error, no warning, no notice either).
async fn the_graphql_http_audit_passes(backend: Backend) {
    let (url, _dir) = database_url(backend).await;
    let server = Server::start(&url);
    let interop = interop_clients();
    let out = tokio::task::spawn_blocking(move || {
        let mut child = Command::new("node")
            .arg(interop.join("audit.mjs"))
            .args(["--url", &format!("http://{}/graphql", server.addr)])
            .current_dir(&interop)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run node audit.mjs");
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        while child.try_wait().expect("wait").is_none() {
            if std::time::Instant::now() > deadline {
                let _ = child.kill();
                panic!("the audit did not finish within 60 s");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let out = child.wait_with_output().expect("audit output");
        drop(server);
        out
    })
    .await
    .expect("audit task");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let summary: Value = stdout
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .find(|v| v["summary"] == true)
        .unwrap_or_else(|| {
            panic!(
                "no summary:\n{stdout}\n{}",
                String::from_utf8_lossy(&out.stderr)
            )
        });
    assert!(out.status.success(), "{stdout}");
    assert!(summary["audits"].as_u64().unwrap_or(0) >= 60, "{summary}");
    assert_eq!(summary["ok"], summary["audits"], "{stdout}");
}
on_both_databases!(the_graphql_http_audit_passes, multi_thread);

/// Each malformed request gets its status and its code, and a body that says what was wrong;
/// none reaches the schema.
async fn malformed_requests_get_their_status_and_code(backend: Backend) {
    let test_store = peru_store(backend).await;
    let app = test::init_service(App::new().configure(plangraph_server::configure(
        plangraph_server::AppState::new(test_store.store.clone()),
    )))
    .await;
    let query = json!({ "query": "{ sectors { code } }" }).to_string();
    let post = |content_type: Option<&str>, accept: Option<&str>, body: Vec<u8>| {
        let mut request = test::TestRequest::post().uri("/graphql").set_payload(body);
        if let Some(ct) = content_type {
            request = request.insert_header((header::CONTENT_TYPE, ct));
        }
        if let Some(accept) = accept {
            request = request.insert_header((header::ACCEPT, accept));
        }
        request.to_request()
    };
    let big = vec![b' '; plangraph_server::graphql_http::DEFAULT_MAX_BODY_BYTES + 1];
    // 1.8 MB of empty objects (690,000 of them took 328 MiB to build): refused by their count.
    let wide = format!(
        r#"{{"query": "{{ sectors {{ code }} }}", "variables": {{"unused": [{}]}}}}"#,
        vec!["{}"; 600_000].join(",")
    );
    let wide_cut = wide[..wide.len() * 9 / 10].to_owned();
    let cases: Vec<(&str, _, u16, &str)> = vec![
        (
            "text/plain without a preflight header",
            post(Some("text/plain"), None, query.clone().into_bytes()),
            400,
            "CSRF_PREVENTED",
        ),
        (
            "a form without a preflight header",
            post(
                Some("application/x-www-form-urlencoded"),
                None,
                b"query=%7Bsectors%7Bcode%7D%7D".to_vec(),
            ),
            400,
            "CSRF_PREVENTED",
        ),
        (
            "a GET query without a preflight header",
            test::TestRequest::get()
                .uri("/graphql?query=%7Bsectors%7Bcode%7D%7D")
                .to_request(),
            400,
            "CSRF_PREVENTED",
        ),
        (
            "multipart",
            post(
                Some("multipart/form-data; boundary=x"),
                None,
                b"--x--".to_vec(),
            ),
            415,
            "UNSUPPORTED_MEDIA_TYPE",
        ),
        (
            "no content type",
            post(None, None, query.clone().into_bytes()),
            415,
            "UNSUPPORTED_MEDIA_TYPE",
        ),
        (
            "foo/bar",
            post(Some("foo/bar"), None, query.clone().into_bytes()),
            415,
            "UNSUPPORTED_MEDIA_TYPE",
        ),
        (
            "not JSON",
            post(Some("application/json"), None, b"{query".to_vec()),
            400,
            "BAD_REQUEST",
        ),
        (
            "an array (a batch)",
            post(
                Some("application/json"),
                None,
                format!("[{query}]").into_bytes(),
            ),
            400,
            "BAD_REQUEST",
        ),
        (
            "no query",
            post(Some("application/json"), None, b"{}".to_vec()),
            400,
            "BAD_REQUEST",
        ),
        (
            "variables not an object",
            post(
                Some("application/json"),
                None,
                br#"{"query":"{ sectors { code } }","variables":[1]}"#.to_vec(),
            ),
            400,
            "BAD_REQUEST",
        ),
        (
            "a body one byte over the limit",
            post(Some("application/json"), None, big),
            413,
            "PAYLOAD_TOO_LARGE",
        ),
        (
            "an Accept it cannot serve",
            post(
                Some("application/json"),
                Some("application/xml"),
                query.clone().into_bytes(),
            ),
            406,
            "NOT_ACCEPTABLE",
        ),
        (
            "a parse error, graphql-response+json",
            post(
                Some("application/json"),
                Some("application/graphql-response+json"),
                br#"{"query":"{ sectors { "}"#.to_vec(),
            ),
            400,
            "GRAPHQL_PARSE_FAILED",
        ),
        (
            "a validation error, graphql-response+json",
            post(
                Some("application/json"),
                Some("application/graphql-response+json"),
                br#"{"query":"{ nope }"}"#.to_vec(),
            ),
            400,
            "GRAPHQL_VALIDATION_FAILED",
        ),
        (
            "a parse error, application/json",
            post(
                Some("application/json"),
                Some("application/json"),
                br#"{"query":"{ sectors { "}"#.to_vec(),
            ),
            200,
            "GRAPHQL_PARSE_FAILED",
        ),
        (
            "malformed variables over GET",
            test::TestRequest::get()
                .uri("/graphql?query=%7Bsectors%7Bcode%7D%7D&variables=%7Bnope")
                .insert_header(("apollo-require-preflight", "true"))
                .to_request(),
            400,
            "BAD_REQUEST",
        ),
        (
            "GET without a query",
            test::TestRequest::get().uri("/graphql").to_request(),
            400,
            "BAD_REQUEST",
        ),
        (
            "a limit's refusal, graphql-response+json",
            post(
                Some("application/json"),
                Some("application/graphql-response+json"),
                json!({ "query": format!("{{ country(iso3: {}\"PER\"{}) {{ name }} }}", "[".repeat(40), "]".repeat(40)) })
                    .to_string()
                    .into_bytes(),
            ),
            400,
            "VALUE_TOO_DEEP",
        ),
        (
            "600,000 empty objects in an unused variable",
            post(
                Some("application/json"),
                Some("application/graphql-response+json"),
                wide.clone().into_bytes(),
            ),
            400,
            "TOO_MANY_VALUES",
        ),
        (
            "the same, application/json",
            post(Some("application/json"), None, wide.into_bytes()),
            200,
            "TOO_MANY_VALUES",
        ),
        (
            "the same, cut short (not JSON, but never built)",
            post(Some("application/json"), None, wide_cut.into_bytes()),
            200,
            "TOO_MANY_VALUES",
        ),
        (
            "wide variables in a form",
            test::TestRequest::post()
                .uri("/graphql")
                .insert_header((header::CONTENT_TYPE, "application/x-www-form-urlencoded"))
                .insert_header(("apollo-require-preflight", "true"))
                .set_payload(format!(
                    "query=%7Bsectors%7Bcode%7D%7D&variables=%7B%22v%22%3A%5B{}%5D%7D",
                    vec!["1"; 30_000].join("%2C")
                ))
                .to_request(),
            200,
            "TOO_MANY_VALUES",
        ),
    ];
    for (name, request, status, code) in cases {
        let response = test::call_service(&app, request).await;
        assert_eq!(response.status().as_u16(), status, "{name}");
        let body: Value = test::read_body_json(response).await;
        assert_eq!(error_code(&body).as_deref(), Some(code), "{name}: {body}");
        assert!(
            body.get("data").is_none(),
            "{name}: a refused request has no data: {body}"
        );
        let message = body["errors"][0]["message"].as_str().unwrap_or_default();
        assert!(!message.contains("BatchRequest"), "{name}: {message}");
    }

    // A good request with each media type, and GET with variables and an operation name.
    let ok = test::call_service(
        &app,
        post(
            Some("application/json; charset=utf-8"),
            Some("application/graphql-response+json"),
            query.into_bytes(),
        ),
    )
    .await;
    assert_eq!(ok.status().as_u16(), 200);
    assert!(
        ok.headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|ct| ct.starts_with("application/graphql-response+json"))
    );
    let get = test::TestRequest::get()
        .insert_header(("x-apollo-operation-name", "A"))
        .uri("/graphql?query=query%20A(%24c%3AString!)%7Bsector(code%3A%24c)%7Bname%7D%7D%20query%20B%7Bsectors%7Bcode%7D%7D&operationName=A&variables=%7B%22c%22%3A%22EDU%22%7D")
        .to_request();
    let body: Value = test::call_and_read_body_json(&app, get).await;
    assert_eq!(body["data"]["sector"]["name"], "Education", "{body}");

    // Each simple-request shape is taken once it carries a preflight header; multipart never
    // (there are no uploads).
    let with_header = |request: test::TestRequest| {
        request
            .insert_header(("apollo-require-preflight", "true"))
            .to_request()
    };
    for (name, request) in [
        (
            "text/plain",
            with_header(
                test::TestRequest::post()
                    .uri("/graphql")
                    .insert_header((header::CONTENT_TYPE, "text/plain;charset=UTF-8"))
                    .set_payload(r#"{"query":"{ sectors { code } }"}"#),
            ),
        ),
        (
            "a form",
            with_header(
                test::TestRequest::post()
                    .uri("/graphql")
                    .insert_header((header::CONTENT_TYPE, "application/x-www-form-urlencoded"))
                    .set_payload("query=%7Bsectors%7Bcode%7D%7D"),
            ),
        ),
        (
            "GET",
            with_header(test::TestRequest::get().uri("/graphql?query=%7Bsectors%7Bcode%7D%7D")),
        ),
    ] {
        let body: Value = test::call_and_read_body_json(&app, request).await;
        assert_eq!(body["data"]["sectors"][0]["code"], "EDU", "{name}: {body}");
    }
    let multipart = with_header(
        test::TestRequest::post()
            .uri("/graphql")
            .insert_header((header::CONTENT_TYPE, "multipart/form-data; boundary=x"))
            .set_payload("--x--"),
    );
    assert_eq!(
        test::call_service(&app, multipart).await.status().as_u16(),
        415
    );
}
on_both_databases!(malformed_requests_get_their_status_and_code, actix);

/// CORS as configured: a listed origin's preflight is answered with its origin allowed, another
/// origin's is refused.
#[actix_web::test]
async fn cors_allows_the_configured_origins_only() {
    let test_store = crate::support::empty_store(Backend::Sqlite).await;
    let origins = vec!["https://dash.example.org".to_owned()];
    let app = test::init_service(
        App::new()
            .wrap(plangraph_server::app::cors(&origins))
            .configure(plangraph_server::configure(
                plangraph_server::AppState::new(test_store.store.clone()),
            )),
    )
    .await;
    let preflight = |origin: &str| {
        test::TestRequest::default()
            .method(actix_web::http::Method::OPTIONS)
            .uri("/graphql")
            .insert_header((header::ORIGIN, origin))
            .insert_header((header::ACCESS_CONTROL_REQUEST_METHOD, "POST"))
            .insert_header((
                header::ACCESS_CONTROL_REQUEST_HEADERS,
                "content-type,authorization",
            ))
            .to_request()
    };
    let allowed = test::call_service(&app, preflight("https://dash.example.org")).await;
    assert_eq!(allowed.status().as_u16(), 200);
    assert_eq!(
        allowed
            .headers()
            .get(header::ACCESS_CONTROL_ALLOW_ORIGIN)
            .and_then(|v| v.to_str().ok()),
        Some("https://dash.example.org")
    );
    let refused = test::call_service(&app, preflight("https://evil.example")).await;
    assert!(
        refused
            .headers()
            .get(header::ACCESS_CONTROL_ALLOW_ORIGIN)
            .is_none()
    );
    assert_eq!(refused.status().as_u16(), 400);
}

/// Over its rate, a client address gets 429 with `Retry-After` and `RATE_LIMITED` (another
/// address does not); a token is limited across every address it comes from.
#[actix_web::test]
async fn requests_over_the_rate_get_429_with_retry_after() {
    use std::sync::Arc;

    use plangraph_server::rate_limit::{Rate, RateLimits};

    let test_store = crate::support::empty_store(Backend::Sqlite).await;
    let mut state = plangraph_server::AppState::new(test_store.store.clone());
    let burst = Rate {
        per_second: 0.5,
        burst: 3.0,
    };
    state.rate = Arc::new(RateLimits::new(burst, burst));
    let app = test::init_service(App::new().configure(plangraph_server::configure(state))).await;
    let request = |address: &str, token: Option<&str>| {
        let mut request = test::TestRequest::post()
            .uri("/graphql")
            .peer_addr(address.parse().unwrap())
            .set_json(json!({ "query": "{ __typename }" }));
        if let Some(token) = token {
            request = request.insert_header((header::AUTHORIZATION, format!("Bearer {token}")));
        }
        request.to_request()
    };
    for _ in 0..3 {
        let ok = test::call_service(&app, request("10.0.0.1:4000", None)).await;
        assert_eq!(ok.status().as_u16(), 200);
    }
    let limited = test::call_service(&app, request("10.0.0.1:4001", None)).await;
    assert_eq!(limited.status().as_u16(), 429);
    let retry: u64 = limited
        .headers()
        .get(header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .expect("Retry-After in seconds");
    assert!((1..=2).contains(&retry), "{retry}");
    let body: Value = test::read_body_json(limited).await;
    assert_eq!(error_code(&body).as_deref(), Some("RATE_LIMITED"));
    let other = test::call_service(&app, request("10.0.0.2:4000", None)).await;
    assert_eq!(other.status().as_u16(), 200);

    // One token, three addresses: the token's own bucket runs out.
    for n in 0..3 {
        let ok =
            test::call_service(&app, request(&format!("10.0.1.{n}:4000"), Some("pgt_x"))).await;
        assert_eq!(ok.status().as_u16(), 200);
    }
    let token_limited = test::call_service(&app, request("10.0.1.9:4000", Some("pgt_x"))).await;
    assert_eq!(token_limited.status().as_u16(), 429);
}
