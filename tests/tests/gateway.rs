//! plangraph behind a real federation gateway: Hive Gateway (from npm, pinned in
//! tests/interop) composes plangraph and a small test subgraph at run time; queries that join
//! both answer, for every field plangraph owns, exactly what plangraph answers directly; a
//! subscription passes through; `@theguild/federation-composition` composes the two subgraphs,
//! and reports a conflicting one as an error. Then Hive Gateway with no configuration at all
//! (`hive-gateway supergraph FILE`) answers the same and reaches plangraph's subscriptions over
//! SSE, its default. Hive Router is in [`crate::router`].

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::support::server::{Server, Subscriber, admin_token, interop_clients, post_json};
use crate::support::{Backend, database_url};

pub const NESTED: &str = include_str!("../../bench/nested.graphql");

/// A child process killed when dropped.
pub struct Process(pub Child);

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// The test subgraph on `port`, once it serves.
pub fn peer(port: u16) -> Process {
    let interop = interop_clients();
    let mut child = Command::new("node")
        .arg(interop.join("peer-subgraph.mjs"))
        .args(["--port", &port.to_string()])
        .current_dir(&interop)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("run the peer subgraph");
    let stdout = BufReader::new(child.stdout.take().expect("stdout"));
    let listening = stdout
        .lines()
        .map_while(Result::ok)
        .any(|line| line.contains("\"listening\""));
    assert!(listening, "the peer subgraph did not start");
    Process(child)
}

/// Where a gateway gets its supergraph.
enum Supergraph<'a> {
    /// Composed by the gateway at start-up from these subgraphs (`--dev-service`).
    Services(&'a [(&'a str, String)]),
    /// A supergraph file (composed by `compose.mjs --out`).
    File(&'a Path),
}

/// Hive Gateway on `port`, once it listens: with `config` (a file in tests/interop/gateway),
/// or with none at all, the plain `hive-gateway supergraph FILE`, run from a directory that
/// holds no configuration file either.
fn gateway(port: u16, config: Option<&str>, supergraph: Supergraph<'_>) -> Process {
    let interop = interop_clients();
    let mut command = Command::new("node");
    command.arg(interop.join("node_modules/@graphql-hive/gateway/dist/bin.js"));
    command.arg("supergraph");
    match supergraph {
        Supergraph::Services(services) => {
            for (name, url) in services {
                command.args(["--dev-service", &format!("{name}={url}")]);
            }
            command.current_dir(interop.join("gateway"));
        }
        Supergraph::File(file) => {
            command
                .arg(file)
                .current_dir(file.parent().expect("the file's directory"));
        }
    }
    if let Some(config) = config {
        command
            .args(["-c", config])
            .current_dir(interop.join("gateway"));
    }
    command.args(["-h", "127.0.0.1", "-p", &port.to_string()]);
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run hive-gateway");
    let out = child.stdout.take().expect("stdout");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(out).lines() {
            let Ok(line) = line else { break };
            if line.contains("Listening on") {
                let _ = tx.send(());
            }
        }
    });
    let err = child.stderr.take().expect("stderr");
    std::thread::spawn(move || for _ in BufReader::new(err).lines() {});
    rx.recv_timeout(Duration::from_secs(90))
        .expect("hive-gateway listens within 90 s");
    Process(child)
}

pub fn query(addr: &str, query: &str, token: Option<&str>) -> Value {
    let (status, body) =
        post_json(addr, "/graphql", &json!({ "query": query }), token).expect("an answer");
    assert_eq!(status, 200, "{body}");
    assert!(body.get("errors").is_none(), "{body:#}");
    body["data"].clone()
}

/// JSON numbers carry no integer/float distinction (`6720000.0` and `6720000` are one number;
/// the gateway, in JavaScript, writes the latter): compare every number as a float.
pub fn numbers_as_floats(value: &Value) -> Value {
    match value {
        Value::Number(n) => n
            .as_f64()
            .and_then(serde_json::Number::from_f64)
            .map_or(Value::Null, Value::Number),
        Value::Array(items) => Value::Array(items.iter().map(numbers_as_floats).collect()),
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| (k.clone(), numbers_as_floats(v)))
                .collect(),
        ),
        other => other.clone(),
    }
}

pub fn node_script(script: &str, args: &[&str]) -> Value {
    let interop = interop_clients();
    let out = Command::new("node")
        .arg(interop.join(script))
        .args(args)
        .current_dir(&interop)
        .stdin(Stdio::null())
        .output()
        .expect("run node");
    let stdout = String::from_utf8_lossy(&out.stdout);
    serde_json::from_str(stdout.lines().last().unwrap_or_default())
        .unwrap_or_else(|_| panic!("{stdout}\n{}", String::from_utf8_lossy(&out.stderr)))
}

/// Composes plangraph (at `plangraph_url`) and the test peer (on `peer_port`) with the pinned
/// composition library into `dir/supergraph.graphql`: the file a gateway with no configuration
/// and Hive Router serve.
pub fn compose_into(dir: &Path, plangraph_url: &str, peer_port: u16) -> std::path::PathBuf {
    let supergraph = dir.join("supergraph.graphql");
    let composed = node_script(
        "compose.mjs",
        &[
            "--plangraph",
            plangraph_url,
            "--peer",
            &format!("http://127.0.0.1:{peer_port}/"),
            "--out",
            supergraph.to_str().expect("a UTF-8 path"),
        ],
    );
    assert_eq!(composed["ok"], true, "{composed}");
    supergraph
}

/// A subscriber (`subscribe.mjs` at `url`, over `protocol`) to the Peru report's EDU figures
/// after `revision`, connected, waiting for one event.
fn edu_subscriber(url: &str, protocol: &str, revision: i64) -> Subscriber {
    let mut subscriber = Subscriber::start(&[
        "--url",
        url,
        "--protocol",
        protocol,
        "--query",
        &format!(
            r#"subscription {{ figuresChanged(reportId: "1", sectorCode: "EDU", afterRevision: {revision}) {{ revision figures {{ peopleReached }} }} }}"#
        ),
        "--count",
        "1",
        "--timeout-ms",
        "30000",
    ]);
    subscriber.expect_line("connected", Duration::from_secs(30));
    subscriber
}

/// A subscriber through a gateway (`url`, over `protocol` as `subscribe.mjs` names it) receives,
/// within a second, a change written to plangraph directly: the Peru report's EDU row to
/// `40.2 K`, on top of `revision`. `afterRevision` is the revision before the write, so a
/// gateway stream that opens late replays the change rather than missing it.
pub fn a_direct_change_reaches(
    url: &str,
    protocol: &str,
    plangraph: &str,
    token: &str,
    revision: i64,
    gateway: &str,
) {
    let mut subscriber = edu_subscriber(url, protocol, revision);
    let sent = Instant::now();
    let written = query(
        plangraph,
        &format!(
            r#"mutation {{ setSectorFigures(reportId: "1", expectedRevision: {revision}, sectorCode: "EDU", figures: {{ peopleReached: "40.2 K" }}) {{ revision }} }}"#
        ),
        Some(token),
    );
    assert_eq!(written["setSectorFigures"]["revision"], revision + 1);
    let event = subscriber.expect_line("next", Duration::from_secs(30));
    let took = sent.elapsed();
    let event: Value = serde_json::from_str(&event).expect("JSON");
    let change = &event["payload"]["data"]["figuresChanged"];
    assert_eq!(change["revision"], revision + 1, "{event}");
    assert_eq!(change["figures"][0]["peopleReached"], 40_200, "{event}");
    assert!(
        took < Duration::from_secs(1),
        "the change took {took:?} through {gateway}"
    );
    println!("a direct change reached a subscriber through {gateway} in {took:?}");
}

mod plangraph_composes_behind_hive_gateway {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sqlite() {
        let (url, _dir) = database_url(Backend::Sqlite).await;
        let plangraph = Server::start(&url);
        let plangraph_url = format!("http://{}/graphql", plangraph.addr);
        let peer_port = free_port();
        let _peer = peer(peer_port);

        // Composition with the real composition library: the pair composes; a subgraph with a
        // conflicting field type is an error.
        let composed = node_script("compose.mjs", &["--plangraph", &plangraph_url]);
        assert_eq!(composed["ok"], true, "{composed}");
        assert_eq!(composed["hasCountryJoin"], true, "{composed}");
        let broken = node_script("compose.mjs", &["--plangraph", &plangraph_url, "--broken"]);
        assert_eq!(broken["ok"], false, "{broken}");
        assert!(
            broken["errors"].to_string().contains("Country.iso3"),
            "{broken}"
        );

        let port = free_port();
        let started = Instant::now();
        let _gateway = gateway(
            port,
            Some("gateway.config.ts"),
            Supergraph::Services(&[
                ("plangraph", plangraph_url.clone()),
                ("peer", format!("http://127.0.0.1:{peer_port}/")),
            ]),
        );
        println!("hive-gateway up in {:?}", started.elapsed());
        let through = format!("127.0.0.1:{port}");

        // Every field plangraph owns: the full nested dashboard query through the gateway equals
        // the direct answer.
        let direct = query(&plangraph.addr, NESTED, None);
        let gatewayed = query(&through, NESTED, None);
        assert!(
            numbers_as_floats(&gatewayed) == numbers_as_floats(&direct),
            "the gateway's answer differs from plangraph's"
        );

        // A join: plangraph's country and report, the peer's fields on them, and plangraph's
        // sectors under the peer's programmes (resolved through plangraph's `_entities`).
        let joined = query(
            &through,
            r#"{ country(iso3: "PER") { iso3 name peerLabel report(year: 2023) { id title
                 peerProgrammes { name sector { code name parent { code } } } totals { peopleReached } } } }"#,
            None,
        );
        let country = &joined["country"];
        assert_eq!(country["peerLabel"], "test label for PER");
        let plain = query(
            &plangraph.addr,
            r#"{ country(iso3: "PER") { iso3 name report(year: 2023) { id title totals { peopleReached } } } }"#,
            None,
        );
        for field in ["iso3", "name"] {
            assert_eq!(country[field], plain["country"][field], "{field}");
        }
        for field in ["id", "title", "totals"] {
            assert_eq!(
                country["report"][field], plain["country"]["report"][field],
                "{field}"
            );
        }
        for programme in country["report"]["peerProgrammes"].as_array().unwrap() {
            let code = programme["sector"]["code"].as_str().unwrap();
            let sector = query(
                &plangraph.addr,
                &format!(r#"{{ sector(code: "{code}") {{ code name parent {{ code }} }} }}"#),
                None,
            );
            assert_eq!(programme["sector"], sector["sector"], "{code}");
        }

        // A subscription through the gateway receives a change written through the gateway.
        let token = admin_token(&url);
        let revision = plangraph.peru_revision();
        let mut subscriber = edu_subscriber(
            &format!("ws://{through}/graphql"),
            "graphql-transport-ws",
            revision,
        );
        let written = query(
            &through,
            &format!(
                r#"mutation {{ setSectorFigures(reportId: "1", expectedRevision: {revision}, sectorCode: "EDU", figures: {{ peopleReached: "40.1 K" }}) {{ revision }} }}"#
            ),
            Some(&token),
        );
        assert_eq!(written["setSectorFigures"]["revision"], revision + 1);
        let event = subscriber.expect_line("next", Duration::from_secs(30));
        let event: Value = serde_json::from_str(&event).unwrap();
        let change = &event["payload"]["data"]["figuresChanged"];
        assert_eq!(change["revision"], revision + 1, "{event}");
        assert_eq!(change["figures"][0]["peopleReached"], 40_100, "{event}");

        // Hive Gateway with no configuration at all: `hive-gateway supergraph FILE`, the file
        // composed by the pinned composition library. It answers the same, and reaches
        // plangraph's subscriptions by its default transport, GraphQL over SSE.
        let dir = tempfile::tempdir().expect("a directory");
        let supergraph = compose_into(dir.path(), &plangraph_url, peer_port);
        let sse_port = free_port();
        let _plain_gateway = gateway(sse_port, None, Supergraph::File(&supergraph));
        let plain = format!("127.0.0.1:{sse_port}");
        let direct = query(&plangraph.addr, NESTED, None);
        assert!(
            numbers_as_floats(&query(&plain, NESTED, None)) == numbers_as_floats(&direct),
            "the unconfigured gateway's answer differs from plangraph's"
        );
        let joined_plain = query(
            &plain,
            r#"{ country(iso3: "PER") { iso3 name peerLabel report(year: 2023) { id title
                 peerProgrammes { name sector { code name parent { code } } } totals { peopleReached } } } }"#,
            None,
        );
        assert_eq!(
            joined_plain, joined,
            "the join differs between the two gateways"
        );
        // Without configuration the gateway passes no client header on: a write with a token
        // arrives without it and is refused, as it should be. Writes through Hive Gateway need
        // the header propagation of gateway.config.ts (above).
        let (_, refused) = post_json(
            &plain,
            "/graphql",
            &json!({ "query": format!(r#"mutation {{ setSectorFigures(reportId: "1", expectedRevision: {}, sectorCode: "EDU", figures: {{ peopleReached: "40.2 K" }}) {{ revision }} }}"#, revision + 1) }),
            Some(&token),
        )
        .expect("an answer");
        assert_eq!(
            refused["errors"][0]["extensions"]["code"], "UNAUTHENTICATED",
            "{refused}"
        );
        a_direct_change_reaches(
            &format!("ws://127.0.0.1:{sse_port}/graphql"),
            "graphql-transport-ws",
            &plangraph.addr,
            &token,
            revision + 1,
            "hive-gateway (over SSE to plangraph)",
        );
    }
}
