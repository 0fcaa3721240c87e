//! WebSocket discipline with a real client (`ws` from npm, tests/interop/wsprobe.mjs): no
//! `connection_init` in time closes with 4408, a bad token with 4403, a second init with 4429,
//! a message over the cap (however fragmented) with 1009;
//! open connections are capped; on SIGTERM every socket is closed with 1001 and the server
//! exits cleanly; a crowd of subscriptions on stalled sockets leaves the pool to queries
//! (tests/interop/crowd.mjs).

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::Value;

use crate::support::server::{Server, interop_clients};
use crate::support::{Backend, database_url};

/// Starts a probe; its stdout lines come through the returned reader.
fn probe(
    server: &Server,
    scenario: &str,
    protocol: &str,
) -> (Child, BufReader<std::process::ChildStdout>) {
    let interop = interop_clients();
    let mut child = Command::new("node")
        .arg(interop.join("wsprobe.mjs"))
        .args([
            "--url",
            &server.ws_url(),
            "--scenario",
            scenario,
            "--protocol",
            protocol,
        ])
        .current_dir(&interop)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("run node wsprobe.mjs");
    let stdout = BufReader::new(child.stdout.take().expect("stdout"));
    (child, stdout)
}

/// The probe's result line (its last line).
fn outcome(mut probe: (Child, BufReader<std::process::ChildStdout>)) -> Value {
    let mut last = Value::Null;
    for line in (&mut probe.1).lines() {
        let Ok(line) = line else { break };
        if let Ok(json) = serde_json::from_str::<Value>(&line)
            && json.get("type").is_none()
        {
            last = json;
        }
    }
    let _ = probe.0.wait();
    last
}

/// Waits for the probe's `{"type":"open"}` line.
fn wait_open(probe: &mut (Child, BufReader<std::process::ChildStdout>)) {
    let mut line = String::new();
    probe.1.read_line(&mut line).expect("a line");
    assert!(line.contains("\"open\""), "{line}");
}

mod close_codes_follow_the_protocol {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sqlite() {
        let (url, _dir) = database_url(Backend::Sqlite).await;
        let server = Server::start_with(&url, &["--ws-init-timeout-ms", "500"]);
        for (scenario, code) in [("silent", 4408), ("bad-token", 4403), ("double-init", 4429)] {
            let result = outcome(probe(&server, scenario, "graphql-transport-ws"));
            assert_eq!(
                result["code"],
                code,
                "{scenario}: {result}\n{}",
                server.logs()
            );
        }
        // A message that never ends is cut at the cap (twice the report cap plus 1 MiB).
        let huge = outcome(probe(&server, "huge", "graphql-transport-ws"));
        assert_eq!(huge["code"], 1009, "{huge}");
        // The legacy protocol: a silent client is closed too.
        let legacy = outcome(probe(&server, "silent", "graphql-ws"));
        assert_eq!(legacy["code"], 4408, "{legacy}");
    }
}

mod open_connections_are_capped_and_closed_with_1001_on_sigterm {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sqlite() {
        let (url, _dir) = database_url(Backend::Sqlite).await;
        let mut server = Server::start_with(&url, &["--max-websockets", "2"]);
        let mut first = probe(&server, "hold", "graphql-transport-ws");
        wait_open(&mut first);
        let mut second = probe(&server, "hold", "graphql-ws");
        wait_open(&mut second);
        let third = outcome(probe(&server, "hold", "graphql-transport-ws"));
        assert_eq!(third["status"], 503, "{third}");
        assert_eq!(third["errorCode"], "TOO_MANY_CONNECTIONS", "{third}");

        let exited = server
            .terminate(Duration::from_secs(15))
            .expect("the server exits within 15 s of SIGTERM");
        assert!(exited.success(), "{exited:?}");
        for held in [first, second] {
            let result = outcome(held);
            assert_eq!(result["code"], 1001, "{result}");
        }
    }
}

/// A crowd of subscriptions (20 sockets, each sending 100 `subscribe` messages at once, more
/// than the per-socket input queue holds; then, in the second round, no longer reading) never
/// takes the pool: plain HTTP queries are still answered. Before the fix, on Postgres, every
/// pooled connection stayed checked out by operations their stalled sockets no longer polled,
/// and every query answered `STORE_UNAVAILABLE` until a restart.
async fn a_crowd_of_subscriptions_leaves_the_pool_to_queries(backend: Backend) {
    let (url, _dir) = database_url(backend).await;
    // One address sends all 2,000 operations at once: the per-address limit (which counts
    // socket operations) is off, as this is about the pool, not the limits.
    let server = Server::start_with(
        &url,
        &["--response-cache-bytes", "0", "--rate-per-address", "0"],
    );
    for pause in [false, true] {
        let interop = interop_clients();
        let mut command = Command::new("node");
        command.arg(interop.join("crowd.mjs")).args([
            "--url",
            &server.ws_url(),
            "--sockets",
            "20",
            "--subscriptions",
            "100",
        ]);
        if pause {
            command.arg("--pause");
        }
        let out = command
            .current_dir(&interop)
            .stdin(Stdio::null())
            .output()
            .expect("run node crowd.mjs");
        let stdout = String::from_utf8_lossy(&out.stdout);
        let result: Value = stdout
            .lines()
            .rev()
            .find_map(|line| serde_json::from_str(line).ok())
            .unwrap_or(Value::Null);
        assert_eq!(
            result["acks"],
            20,
            "pause {pause}: {result}\n{}",
            server.logs()
        );
        assert_eq!(result["subscriptionErrors"], 0, "pause {pause}: {result}");
        let answers = result["answers"].as_array().cloned().unwrap_or_default();
        assert_eq!(answers.len(), 5, "pause {pause}: {result}");
        for answer in answers {
            assert_eq!(
                answer["ok"],
                true,
                "pause {pause}: {result}\n{}",
                server.logs()
            );
        }
    }
}
crate::on_both_databases!(
    a_crowd_of_subscriptions_leaves_the_pool_to_queries,
    multi_thread
);
