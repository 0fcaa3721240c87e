//! What operators see: `GET /metrics` from the real binary, checked by Prometheus's own
//! `promtool` (and its counters moving as requests are made), answered only to the clients it
//! is allowed to; a request id on every response and on the request's log lines; malformed
//! request heads logged at a rate a stranger cannot use to fill the disk.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use actix_web::{App, test};
use serde_json::{Value, json};

use crate::support::server::{Server, binary, post_json_with_head};
use crate::support::writes::error_code;
use crate::support::{Backend, database_url};
use crate::websocket_discipline::http_get;

/// The value of the sample `name` (with its labels, as rendered) in an exposition; 0 when
/// absent.
fn sample(exposition: &str, name: &str) -> f64 {
    exposition
        .lines()
        .find_map(|line| line.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or(0.0)
}

/// Runs `promtool check metrics` on an exposition; panics with its findings when it refuses.
fn promtool(exposition: &str) {
    let mut child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| {
            panic!(
                "cannot run `promtool` (Debian's `prometheus` package; .ci/run installs it): {e}"
            )
        });
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(exposition.as_bytes())
        .expect("write to promtool");
    let out = child.wait_with_output().expect("promtool");
    assert!(
        out.status.success(),
        "promtool check metrics refused the exposition:\n{}{}\n---\n{exposition}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_pass_promtool_and_move_as_requests_are_made() {
    let (url, _dir) = database_url(Backend::Sqlite).await;
    let server = Server::start_with(&url, &["--rate-per-token", "1"]);
    let query = r#"{ country(iso3: "PER") { name } }"#;
    // Reads are open: a token that is not known only counts against its rate.
    let over_the_rate = || {
        (0..4)
            .filter(|_| {
                server
                    .try_graphql(query, Some("pgt_not_a_known_token"))
                    .is_ok_and(|(status, _)| status == 429)
            })
            .count()
    };
    server.data(query, None);
    assert!(over_the_rate() >= 2);
    let (status, before) = http_get(&server.addr, "/metrics");
    assert_eq!(status, 200, "{before}");
    let limited = "plangraph_rate_limited_total{limit=\"token\"}";
    let refused = over_the_rate();
    server.data(query, None);
    let (_, after) = http_get(&server.addr, "/metrics");
    assert_eq!(
        sample(&after, limited) - sample(&before, limited),
        refused as f64,
        "before:\n{before}\nafter:\n{after}"
    );
    assert!(
        after.contains("# TYPE plangraph_rate_limited_total counter"),
        "{after}"
    );
    assert!(
        after.contains("# HELP plangraph_rate_limited_total "),
        "{after}"
    );
    assert!(
        after.contains("# TYPE plangraph_rate_limit_keys gauge"),
        "{after}"
    );
    // The pipeline's request counter: the queries answered between the two reads (the one
    // anonymous query, and those of the four the token's rate let through) are counted as `ok`
    // POST queries (the refused ones never reached the pipeline), and a query that fails is
    // counted under its code.
    let answered = |text: &str, outcome: &str| {
        text.lines()
            .filter(|l| l.starts_with("plangraph_requests_total{"))
            .filter(|l| {
                l.contains("transport=\"http_post\"")
                    && l.contains("operation=\"query\"")
                    && l.contains(&format!("outcome=\"{outcome}\""))
            })
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum::<f64>()
    };
    assert_eq!(
        answered(&after, "ok") - answered(&before, "ok"),
        1.0 + (4 - refused) as f64,
        "before:\n{before}\nafter:\n{after}"
    );
    let (_, failed) = server
        .try_graphql(r#"{ country(iso3: "PER") { nope } }"#, None)
        .expect("answered");
    assert!(
        failed.to_string().contains("GRAPHQL_VALIDATION_FAILED"),
        "{failed}"
    );
    let (_, last) = http_get(&server.addr, "/metrics");
    assert_eq!(
        answered(&last, "GRAPHQL_VALIDATION_FAILED")
            - answered(&after, "GRAPHQL_VALIDATION_FAILED"),
        1.0,
        "{last}"
    );
    promtool(&after);
}

/// The server's state for the in-process metrics tests.
async fn metrics_app_state(
    access: plangraph_server::metrics::MetricsAccess,
) -> (plangraph_server::AppState, crate::support::TestStore) {
    let test_store = crate::support::empty_store(Backend::Sqlite).await;
    let mut state = plangraph_server::AppState::new(test_store.store.clone());
    state.metrics = Arc::new(access);
    (state, test_store)
}

#[actix_web::test]
async fn metrics_are_answered_only_to_allowed_clients() {
    use plangraph_server::metrics::{MetricsAccess, loopback};

    let (state, _store) = metrics_app_state(MetricsAccess::default()).await;
    let app = test::init_service(App::new().configure(plangraph_server::configure(state))).await;
    let scrape = async |peer: &str, forwarded: Option<&str>| {
        let mut request = test::TestRequest::get()
            .uri("/metrics")
            .peer_addr(peer.parse().unwrap());
        if let Some(forwarded) = forwarded {
            request = request.insert_header(("x-forwarded-for", forwarded));
        }
        let response = test::call_service(&app, request.to_request()).await;
        let status = response.status().as_u16();
        let body = test::read_body(response).await;
        (
            status,
            serde_json::from_slice::<Value>(&body).unwrap_or(Value::Null),
        )
    };
    assert_eq!(scrape("127.0.0.1:5000", None).await.0, 200);
    assert_eq!(scrape("[::1]:5000", None).await.0, 200);
    let (status, body) = scrape("10.0.0.1:5000", None).await;
    assert_eq!(status, 403);
    assert_eq!(error_code(&body).as_deref(), Some("METRICS_NOT_ALLOWED"));
    // Through a proxy on the same host that is not a trusted proxy: the real client is
    // unknown, so not served.
    let (status, body) = scrape("127.0.0.1:5000", Some("203.0.113.9")).await;
    assert_eq!(status, 403);
    assert_eq!(error_code(&body).as_deref(), Some("METRICS_NOT_ALLOWED"));

    let wider = MetricsAccess {
        enabled: true,
        allow: [loopback(), vec!["10.0.0.0/8".parse().unwrap()]].concat(),
    };
    let (state, _store) = metrics_app_state(wider).await;
    let app = test::init_service(App::new().configure(plangraph_server::configure(state))).await;
    let request = test::TestRequest::get()
        .uri("/metrics")
        .peer_addr("10.0.0.1:5000".parse().unwrap())
        .to_request();
    assert_eq!(
        test::call_service(&app, request).await.status().as_u16(),
        200
    );

    let off = MetricsAccess {
        enabled: false,
        allow: loopback(),
    };
    let (state, _store) = metrics_app_state(off).await;
    let app = test::init_service(App::new().configure(plangraph_server::configure(state))).await;
    let request = test::TestRequest::get()
        .uri("/metrics")
        .peer_addr("127.0.0.1:5000".parse().unwrap())
        .to_request();
    let response = test::call_service(&app, request).await;
    assert_eq!(response.status().as_u16(), 404);
    let body: Value = test::read_body_json(response).await;
    assert_eq!(error_code(&body).as_deref(), Some("NOT_FOUND"));
}

/// `plangraph serve` with these arguments and `RUST_LOG`, JSON logs kept in full (the shared
/// harness keeps only the last lines); killed when dropped.
struct Logged {
    child: Child,
    addr: String,
    lines: Arc<Mutex<Vec<String>>>,
}

impl Logged {
    fn start(database_url: &str, rust_log: &str) -> Self {
        let mut child = Command::new(binary())
            .args(["serve", "--listen", "127.0.0.1:0"])
            .current_dir(std::env::temp_dir())
            .env("DATABASE_URL", database_url)
            .env("PLANGRAPH_LOG_FORMAT", "json")
            .env("RUST_LOG", rust_log)
            .env_remove("PLANGRAPH_LISTEN")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start plangraph serve");
        let stderr = child.stderr.take().expect("stderr");
        let lines = Arc::new(Mutex::new(Vec::new()));
        let kept = lines.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                kept.lock().unwrap().push(line);
            }
        });
        let deadline = Instant::now() + Duration::from_secs(60);
        let addr = loop {
            let found = lines.lock().unwrap().iter().find_map(|line| {
                let json: Value = serde_json::from_str(line).ok()?;
                json["fields"]["addr"].as_str().map(str::to_owned)
            });
            if let Some(addr) = found {
                break addr;
            }
            assert!(
                Instant::now() < deadline,
                "no address logged: {:?}",
                lines.lock().unwrap()
            );
            std::thread::sleep(Duration::from_millis(50));
        };
        Self { child, addr, lines }
    }

    fn lines(&self) -> Vec<String> {
        self.lines.lock().unwrap().clone()
    }
}

impl Drop for Logged {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The value of header `name` in a response head.
fn header<'a>(head: &'a str, name: &str) -> Option<&'a str> {
    head.lines().find_map(|line| {
        let (key, value) = line.split_once(':')?;
        key.trim().eq_ignore_ascii_case(name).then(|| value.trim())
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_id_names_the_response_and_the_requests_log_lines() {
    let (url, _dir) = database_url(Backend::Sqlite).await;
    let server = Logged::start(&url, "info,plangraph_server=debug");
    let body = json!({ "query": "{ __typename }" });
    let with_id = |id: &str| {
        let socket: std::net::SocketAddr = server.addr.parse().unwrap();
        let mut stream = TcpStream::connect(socket).unwrap();
        let text = body.to_string();
        write!(
            stream,
            "POST /graphql HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\
             x-request-id: {id}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{text}",
            text.len()
        )
        .unwrap();
        let mut raw = String::new();
        stream.read_to_string(&mut raw).unwrap();
        raw.split_once("\r\n\r\n")
            .map(|(head, _)| head.to_owned())
            .unwrap()
    };
    // A safe id is taken as given, and names the request's log line.
    let head = with_id("trace-4711.a_b");
    assert_eq!(
        header(&head, "x-request-id"),
        Some("trace-4711.a_b"),
        "{head}"
    );
    // An unsafe one is replaced by a fresh id.
    let head = with_id("bad\"id");
    let fresh = header(&head, "x-request-id").unwrap_or_default().to_owned();
    assert!(
        fresh.len() == 16 && fresh.chars().all(|c| c.is_ascii_hexdigit()),
        "{head}"
    );
    // No id given: one is made.
    let (_, head, _) = post_json_with_head(&server.addr, "/graphql", &body, None).unwrap();
    assert!(
        header(&head, "x-request-id").is_some_and(|id| id.len() == 16),
        "{head}"
    );

    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let named = server.lines().iter().any(|line| {
            serde_json::from_str::<Value>(line).is_ok_and(|json| {
                json["fields"]["message"] == "request" && json["span"]["id"] == "trace-4711.a_b"
            })
        });
        if named {
            break;
        }
        assert!(Instant::now() < deadline, "{:#?}", server.lines());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_request_heads_are_logged_at_a_bounded_rate() {
    let (url, _dir) = database_url(Backend::Sqlite).await;
    let server = Logged::start(&url, "info");
    let socket: std::net::SocketAddr = server.addr.parse().unwrap();
    let heads = 3_000;
    for n in 0..heads {
        let Ok(mut stream) = TcpStream::connect(socket) else {
            continue;
        };
        let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
        let _ = write!(
            stream,
            "GET / HTTP/1.1\r\nHost: x\r\nBad Header {n}\r\n\r\n"
        );
        let mut answer = Vec::new();
        let _ = stream.read_to_end(&mut answer);
    }
    // The server still answers, and counted every one.
    let (status, metrics) = http_get(&server.addr, "/metrics");
    assert_eq!(status, 200);
    let counted = sample(&metrics, "plangraph_malformed_requests_total");
    assert!(counted >= f64::from(heads), "counted {counted}:\n{metrics}");
    std::thread::sleep(Duration::from_millis(300));
    let lines = server.lines();
    let about_them: Vec<&String> = lines
        .iter()
        .filter(|line| line.contains("actix_http") || line.contains("malformed"))
        .collect();
    assert!(
        !about_them.is_empty() && about_them.len() <= 2,
        "{} lines about {heads} malformed heads:\n{about_them:#?}",
        about_them.len()
    );
}
