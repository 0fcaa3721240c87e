//! The database goes away and comes back: the server stays up and honest, and recovers by
//! itself. Also: a server started while its database is down waits for it, and ten servers
//! started together on a fresh database all come up.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::support::postgres::{self, Cluster};
use crate::support::server::{Server, admin_token};

/// `GET path` on `addr`: the whole response, empty when the server did not answer in time.
fn get(addr: &str, path: &str) -> String {
    let Ok(mut stream) = TcpStream::connect(addr) else {
        return String::new();
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
    if write!(stream, "GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n").is_err() {
        return String::new();
    }
    let mut response = String::new();
    let _ = stream.read_to_string(&mut response);
    response
}

/// `GET path` on `addr`: the status, or 0 when the server did not answer in time.
fn get_status(addr: &str, path: &str) -> u16 {
    get(addr, path)
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0)
}

/// Polls `path` until it answers `status`; how long that took, or `None` within `within`.
fn until_status(addr: &str, path: &str, status: u16, within: Duration) -> Option<Duration> {
    let started = Instant::now();
    while started.elapsed() < within {
        if get_status(addr, path) == status {
            return Some(started.elapsed());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    None
}

const PERU_REACHED: &str =
    r#"{ report(id: "1") { revision sector(code: "EDU") { peopleReached } } }"#;

/// Stop the database under light load: `/readyz` says 503 within 5 s while `/healthz` stays
/// 200; queries answer within seconds with a masked error; one log line per failed request,
/// not one per field; no panic. Start it again: ready within 5 s, queries answer, and the
/// change written before the outage is there.
mod the_server_survives_a_postgres_outage {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn postgres() {
        let cluster = Cluster::private();
        let url = cluster.create_database().await;
        let server = Server::start(&url);
        let token = admin_token(&url);
        let before = server.data(PERU_REACHED, None);
        let revision = before["report"]["revision"].as_i64().unwrap();
        let written = server.data(
            &format!(r#"mutation {{ setSectorFigures(reportId: "1", expectedRevision: {revision}, sectorCode: "EDU", figures: {{ peopleReached: "40.1 K" }}) {{ revision }} }}"#),
            Some(&token),
        );
        assert_eq!(written["setSectorFigures"]["revision"], revision + 1);

        // Light load throughout: a nested query every 100 ms.
        let load_addr = server.addr.clone();
        let stop_load = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let stop = stop_load.clone();
        let load = std::thread::spawn(move || {
            let mut failed = 0u32;
            while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                let body = serde_json::json!({ "query": "{ countries { reports { sectors { peopleReached } sections { paragraphs } } } }" });
                match crate::support::server::post_json(&load_addr, "/graphql", &body, None) {
                    Ok((_, json)) if json.get("errors").is_some() => failed += 1,
                    _ => {}
                }
                std::thread::sleep(Duration::from_millis(100));
            }
            failed
        });
        std::thread::sleep(Duration::from_millis(500));

        cluster.stop();
        let unready = until_status(&server.addr, "/readyz", 503, Duration::from_secs(5));
        assert!(
            unready.is_some(),
            "readyz did not turn 503 within 5 s:\n{}",
            server.logs()
        );
        assert_eq!(get_status(&server.addr, "/healthz"), 200);
        let started = Instant::now();
        let (_, answer) = server.try_graphql(PERU_REACHED, None).expect("an answer");
        let took = started.elapsed();
        assert!(took < Duration::from_secs(5), "a query hung for {took:?}");
        let error = &answer["errors"][0];
        assert_eq!(error["extensions"]["code"], "INTERNAL", "{answer}");
        assert_eq!(
            error["extensions"]["storeCode"], "STORE_UNAVAILABLE",
            "{answer}"
        );
        assert_eq!(
            error["message"], "internal error",
            "store details are never sent"
        );
        std::thread::sleep(Duration::from_secs(1));

        cluster.start();
        let recovered = until_status(&server.addr, "/readyz", 200, Duration::from_secs(5));
        assert!(
            recovered.is_some(),
            "not ready within 5 s of the database returning:\n{}",
            server.logs()
        );
        let after = server.data(PERU_REACHED, None);
        assert_eq!(after["report"]["revision"], revision + 1);
        assert_eq!(after["report"]["sector"]["peopleReached"], 40_100);

        stop_load.store(true, std::sync::atomic::Ordering::SeqCst);
        let failed_requests = load.join().expect("load thread");
        let logs = server.logs();
        assert!(!logs.contains("panicked"), "{logs}");
        let failure_lines = logs
            .lines()
            .filter(|l| l.contains("store failure while loading"))
            .count();
        // At most one line per failed request (the extra one is the probe query above).
        assert!(
            failure_lines <= usize::try_from(failed_requests).unwrap() + 1,
            "{failure_lines} failure lines for {failed_requests} failed requests"
        );
        println!(
            "readyz 503 after {unready:?}, ready again {recovered:?} after restart; \
             {failed_requests} failed requests, {failure_lines} failure log lines"
        );
    }
}

/// A server started while its database is down listens, says it is not ready, and becomes
/// ready by itself once the database is up.
mod a_server_started_before_its_database_waits_for_it {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn postgres() {
        let cluster = Cluster::private();
        let url = cluster.create_database().await;
        cluster.stop();
        let server = Server::start(&url);
        assert_eq!(get_status(&server.addr, "/healthz"), 200);
        let waiting = get(&server.addr, "/readyz");
        assert!(
            waiting.starts_with("HTTP/1.0 503") || waiting.starts_with("HTTP/1.1 503"),
            "{waiting}"
        );
        assert!(waiting.contains("STORE_NOT_READY"), "{waiting}");
        cluster.start();
        let ready = until_status(&server.addr, "/readyz", 200, Duration::from_secs(10));
        assert!(ready.is_some(), "never became ready:\n{}", server.logs());
        let data: Value = server.data(PERU_REACHED, None);
        assert_eq!(data["report"]["sector"]["peopleReached"], 37_400);
    }
}

/// Ten servers started at once against a fresh database all come up: the migrations run once,
/// under an advisory lock, and the bundled report is imported once.
mod ten_servers_start_together_on_a_fresh_database {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn postgres() {
        let url = postgres::fresh_database().await;
        let starters: Vec<_> = (0..10)
            .map(|_| {
                let url = url.clone();
                std::thread::spawn(move || Server::start(&url))
            })
            .collect();
        let servers: Vec<Server> = starters
            .into_iter()
            .map(|s| s.join().expect("a server started"))
            .collect();
        for server in &servers {
            let ready = until_status(&server.addr, "/readyz", 200, Duration::from_secs(20));
            assert!(ready.is_some(), "{}", server.logs());
        }
        let reports = servers[0].data("{ reports { totalCount } }", None);
        assert_eq!(reports["reports"]["totalCount"], 1);
    }
}
