//! WebSocket discipline under greedy and slow clients, against the real binary with the real
//! `ws` client (tests/interop/discipline.mjs): every operation counts against the rate limits
//! (the address, and the token of `connection_init`), a refused one is answered with its
//! `error` (`RATE_LIMITED`) in both protocols' shapes, a client that keeps going is closed with
//! 4429; a socket that stops reading while the server answers others is dropped at its send
//! deadline (its place freed, counted as a 1008 close), and the server still exits promptly
//! on SIGTERM with that client holding its connection.

use std::io::{BufRead, BufReader};
use std::process::{Child, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::support::server::{Server, admin_token, interop_clients};
use crate::support::{Backend, database_url};

/// Starts `discipline.mjs` against `server` with these arguments.
fn discipline(server: &Server, args: &[&str]) -> (Child, BufReader<ChildStdout>) {
    let interop = interop_clients();
    let mut child = Command::new("node")
        .arg(interop.join("discipline.mjs"))
        .args(["--url", &server.ws_url()])
        .args(args)
        .current_dir(&interop)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("run node discipline.mjs");
    let stdout = BufReader::new(child.stdout.take().expect("stdout"));
    (child, stdout)
}

/// Runs a flood to its end: the client's result line.
fn flood(server: &Server, args: &[&str]) -> Value {
    outcome(server, "flood", args)
}

/// Runs a scenario to its end: the client's result line.
fn outcome(server: &Server, scenario: &str, args: &[&str]) -> Value {
    let (child, stdout) = discipline(server, &[&["--scenario", scenario], args].concat());
    let mut child = Killed(child);
    let mut last = Value::Null;
    for line in stdout.lines() {
        let Ok(line) = line else { break };
        if let Ok(json) = serde_json::from_str::<Value>(&line) {
            last = json;
        }
    }
    let _ = child.0.wait();
    last
}

/// The answers' error codes, by operation id.
fn codes(result: &Value) -> Vec<(String, Value)> {
    let mut codes: Vec<(String, Value)> = result["answers"]
        .as_object()
        .map(|answers| {
            answers
                .iter()
                .map(|(id, answer)| (id.clone(), answer["code"].clone()))
                .collect()
        })
        .unwrap_or_default();
    codes.sort_by_key(|(id, _)| id.parse::<u32>().unwrap_or(u32::MAX));
    codes
}

fn limited(result: &Value) -> usize {
    codes(result)
        .iter()
        .filter(|(_, code)| *code == "RATE_LIMITED")
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn websocket_operations_are_rate_limited() {
    let (url, _dir) = database_url(Backend::Sqlite).await;
    let token = admin_token(&url);
    // Per token: the upgrade carries no token, so only the operations count.
    let server = Server::start_with(&url, &["--rate-per-address", "0", "--rate-per-token", "1"]);
    let first = flood(
        &server,
        &[
            "--operations",
            "5",
            "--token",
            &token,
            "--timeout-ms",
            "3000",
        ],
    );
    assert_eq!(first["acked"], true, "{first}\n{}", server.logs());
    assert_eq!(first["answers"]["0"]["type"], "next", "{first}");
    assert!(limited(&first) >= 3, "{first}");
    // The legacy protocol's error shape (one error object) carries the same code.
    let legacy = flood(
        &server,
        &[
            "--protocol",
            "graphql-ws",
            "--operations",
            "4",
            "--token",
            &token,
            "--timeout-ms",
            "3000",
        ],
    );
    assert_eq!(legacy["acked"], true, "{legacy}");
    assert!(limited(&legacy) >= 2, "{legacy}");
    // A client that keeps going past ten refusals in a row is closed with 4429.
    let greedy = flood(&server, &["--operations", "40", "--token", &token]);
    assert_eq!(greedy["code"], 4429, "{greedy}");
    drop(server);

    // Per address: the upgrade takes one request of the burst of two, the first operation the
    // other.
    let server = Server::start_with(&url, &["--rate-per-address", "1"]);
    let anonymous = flood(&server, &["--operations", "4", "--timeout-ms", "3000"]);
    assert_eq!(anonymous["answers"]["0"]["type"], "next", "{anonymous}");
    assert!(limited(&anonymous) >= 2, "{anonymous}");
}

/// A socket message is counted before it is built: an operation with 600,000 empty objects in
/// a variable it never uses is answered with `TOO_MANY_VALUES` (the next operation still runs),
/// a `connection_init` as wide closes the socket with 4400.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wide_socket_messages_are_refused_unbuilt() {
    let (url, _dir) = database_url(Backend::Sqlite).await;
    let server = Server::start(&url);
    let wide = flood(
        &server,
        &[
            "--operations",
            "2",
            "--wide",
            "600000",
            "--timeout-ms",
            "3000",
        ],
    );
    assert_eq!(wide["acked"], true, "{wide}\n{}", server.logs());
    let refused: Vec<_> = codes(&wide).into_iter().map(|(_, code)| code).collect();
    assert_eq!(refused, ["TOO_MANY_VALUES", "TOO_MANY_VALUES"], "{wide}");
    let after = flood(&server, &["--operations", "1", "--timeout-ms", "3000"]);
    assert_eq!(after["answers"]["0"]["type"], "next", "{after}");
    let init = flood(
        &server,
        &["--operations", "1", "--wide", "600000", "--wide-init"],
    );
    assert_eq!(init["code"], 4400, "{init}");
    assert_eq!(init["acked"], false, "{init}");
}

/// A query whose answer is large (about 270 KB: forty copies of the Peru report's narrative,
/// within the alias and root-field limits), so a few hundred of them fill every buffer between
/// the server and a client that does not read.
fn large_query() -> String {
    let sections: Vec<String> = (0..10)
        .map(|m| format!("s{m}: sections {{ title paragraphs }}"))
        .collect();
    let reports: Vec<String> = (0..4)
        .map(|n| format!("r{n}: report(id: \"1\") {{ {} }}", sections.join(" ")))
        .collect();
    format!("{{ {} }}", reports.join(" "))
}

/// A child process killed when dropped, so a failing test leaves none behind.
struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// GET `path` over HTTP/1.1: the status and the body.
pub fn http_get(addr: &str, path: &str) -> (u16, String) {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(addr).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .expect("write");
    let mut raw = String::new();
    let _ = stream.read_to_string(&mut raw);
    let status = raw
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body = raw
        .split_once("\r\n\r\n")
        .map(|(_, body)| body.to_owned())
        .unwrap_or_default();
    (status, body)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_socket_that_stops_reading_is_dropped_and_the_server_shuts_down_cleanly() {
    let (url, _dir) = database_url(Backend::Sqlite).await;
    let mut server = Server::start_with(
        &url,
        &[
            "--max-websockets",
            "1",
            "--ws-send-timeout-ms",
            "1000",
            "--rate-per-address",
            "0",
        ],
    );
    let query = large_query();
    let (stalled, mut stdout) = discipline(
        &server,
        &[
            "--scenario",
            "stall",
            "--operations",
            "300",
            "--query",
            &query,
        ],
    );
    let mut stalled = Killed(stalled);
    let mut line = String::new();
    stdout.read_line(&mut line).expect("a line");
    assert!(line.contains("stalled"), "{line}\n{}", server.logs());

    // Others are answered promptly while the socket is stuck.
    for _ in 0..10 {
        let started = Instant::now();
        server.data(r#"{ country(iso3: "PER") { name } }"#, None);
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "a query took {:?} beside a stalled socket",
            started.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // The stalled socket's place is freed at its send deadline: a new socket opens (only one
    // place is configured).
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let probe = flood(&server, &["--operations", "1", "--timeout-ms", "2000"]);
        if probe["acked"] == true {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the stalled socket still holds the only place: {probe}\n{}",
            server.logs()
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    // Counted as a 1008 close, and no socket left open (the probes have closed theirs).
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let (status, metrics) = http_get(&server.addr, "/metrics");
        assert_eq!(status, 200, "{metrics}");
        if metrics.contains("plangraph_websocket_closes_total{code=\"1008\"} 1")
            && metrics.contains("plangraph_websockets_open 0")
        {
            break;
        }
        assert!(Instant::now() < deadline, "{metrics}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // The stalled client still holds its connection, unread; SIGTERM still ends the server
    // within seconds, cleanly.
    assert!(
        stalled.0.try_wait().expect("try_wait").is_none(),
        "the stalled client exited"
    );
    let started = Instant::now();
    let exited = server
        .terminate(Duration::from_secs(6))
        .unwrap_or_else(|| panic!("the server did not exit within 6 s of SIGTERM"));
    assert!(exited.success(), "{exited:?}");
    assert!(started.elapsed() < Duration::from_secs(6));
}

/// Pings go out at the configured interval, and a client that answers none (it reads, but its
/// automatic pong is off) is closed with 1001 once the silence timeout has passed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_answers_no_ping_is_closed_after_the_silence_timeout() {
    let (url, _dir) = database_url(Backend::Sqlite).await;
    let server = Server::start_with(
        &url,
        &[
            "--ws-ping-interval-ms",
            "200",
            "--ws-silence-timeout-ms",
            "700",
        ],
    );
    let started = Instant::now();
    let mute = outcome(&server, "mute", &["--timeout-ms", "10000"]);
    assert_eq!(mute["acked"], true, "{mute}");
    assert_eq!(mute["code"], 1001, "{mute}");
    assert_eq!(mute["reason"], "no answer to pings", "{mute}");
    assert!(mute["pings"].as_u64().is_some_and(|n| n >= 2), "{mute}");
    assert!(started.elapsed() < Duration::from_secs(5), "{mute}");
}

/// `plangraph_subscriptions_active` counts the subscriptions open over sockets, and falls back
/// when their socket goes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn open_subscriptions_are_counted_in_the_metrics() {
    let (url, _dir) = database_url(Backend::Sqlite).await;
    let server = Server::start(&url);
    let active = || {
        let (_, text) = http_get(&server.addr, "/metrics");
        text.lines()
            .find(|l| l.starts_with("plangraph_subscriptions_active "))
            .and_then(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    let settle = |want: f64| {
        let deadline = Instant::now() + Duration::from_secs(10);
        while active() != want && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
        active()
    };
    let (client, mut stdout) = discipline(
        &server,
        &[
            "--scenario",
            "stall",
            "--operations",
            "3",
            "--query",
            "subscription { reportChanged { revision } }",
        ],
    );
    let client = Killed(client);
    let mut line = String::new();
    stdout.read_line(&mut line).expect("a line");
    assert!(line.contains("stalled"), "{line}\n{}", server.logs());
    assert_eq!(settle(3.0), 3.0, "{}", server.logs());
    drop(client);
    assert_eq!(settle(0.0), 0.0, "{}", server.logs());
}
