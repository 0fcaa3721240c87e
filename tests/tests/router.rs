//! plangraph behind Hive Router, the Rust federation router (crates.io `hive-router`, pinned
//! in `.ci/run`, which builds it once into a cache): the supergraph composed by the pinned
//! `@theguild/federation-composition` from plangraph and the test peer; through the router the
//! nested dashboard query equals plangraph's own answer, the peer's join resolves through
//! `_entities`, a write passes the `Authorization` header through, and a subscriber through the
//! router (the `graphql-sse` client) receives, within a second, a change written to plangraph
//! directly. The router subscribes to plangraph by the transport it prefers, multipart HTTP.
//!
//! Not Apollo Client over multipart to the router: Hive Router 0.3.10 writes the boundary
//! before each part rather than after it, so that client takes an event only when the next
//! part (the router's 10 s heartbeat) arrives. Seen with curl; plangraph's own multipart
//! writes the boundary after each part.

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::json;

use crate::gateway::{
    NESTED, Process, a_direct_change_reaches, compose_into, free_port, numbers_as_floats, peer,
    query,
};
use crate::support::server::{Server, admin_token, post_json, repo_root};
use crate::support::{Backend, database_url};

/// The Hive Router version `.ci/run` builds.
pub const HIVE_ROUTER_VERSION: &str = "0.3.10";

/// The `hive_router` binary: `PLANGRAPH_HIVE_ROUTER`, or where `.ci/run` installs it. Missing,
/// the test fails (it does not skip) and says how to build it.
fn hive_router() -> PathBuf {
    let binary = std::env::var_os("PLANGRAPH_HIVE_ROUTER")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            let cache = std::env::var_os("PLANGRAPH_CACHE").map_or_else(
                || {
                    PathBuf::from(std::env::var_os("HOME").unwrap_or_default())
                        .join(".cache")
                        .join("plangraph")
                },
                PathBuf::from,
            );
            cache
                .join(format!("hive-router-{HIVE_ROUTER_VERSION}"))
                .join("bin")
                .join("hive_router")
        });
    assert!(
        binary.is_file(),
        "Hive Router is not at {}: run .ci/run, which builds it once (cargo install --locked \
         --ignore-rust-version hive-router@{HIVE_ROUTER_VERSION} --root \
         ~/.cache/plangraph/hive-router-{HIVE_ROUTER_VERSION}), or set PLANGRAPH_HIVE_ROUTER",
        binary.display()
    );
    binary
}

/// Hive Router serving `supergraph` on `port`, once it answers.
fn router(port: u16, supergraph: &std::path::Path) -> Process {
    let config = repo_root().join("tests/interop/router/router.config.yaml");
    let child = Command::new(hive_router())
        .env("ROUTER_CONFIG_FILE_PATH", &config)
        .env("SUPERGRAPH_FILE_PATH", supergraph)
        .env("HOST", "127.0.0.1")
        .env("PORT", port.to_string())
        .env("LOG_LEVEL", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("run hive_router");
    let process = Process(child);
    let addr = format!("127.0.0.1:{port}");
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Ok((200, body)) = post_json(
            &addr,
            "/graphql",
            &json!({ "query": "{ __typename }" }),
            None,
        ) && body["data"]["__typename"] == "Query"
        {
            return process;
        }
        assert!(
            Instant::now() < deadline,
            "hive_router did not answer within 60 s"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

mod plangraph_composes_behind_hive_router {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sqlite() {
        let (url, _dir) = database_url(Backend::Sqlite).await;
        let plangraph = Server::start_with(&url, &["--rate-per-address", "0"]);
        let plangraph_url = format!("http://{}/graphql", plangraph.addr);
        let peer_port = free_port();
        let _peer = peer(peer_port);
        let dir = tempfile::tempdir().expect("a directory");
        let supergraph = compose_into(dir.path(), &plangraph_url, peer_port);

        let port = free_port();
        let started = Instant::now();
        let _router = router(port, &supergraph);
        println!("hive_router up in {:?}", started.elapsed());
        let through = format!("127.0.0.1:{port}");

        let direct = query(&plangraph.addr, NESTED, None);
        let routed = query(&through, NESTED, None);
        assert!(
            numbers_as_floats(&routed) == numbers_as_floats(&direct),
            "the router's answer differs from plangraph's"
        );

        // The join: the peer's fields on plangraph's country, plangraph's sectors under the
        // peer's programmes (through plangraph's `_entities`).
        let joined = query(
            &through,
            r#"{ country(iso3: "PER") { iso3 name peerLabel report(year: 2023) { id
                 peerProgrammes { name sector { code name parent { code } } } } } }"#,
            None,
        );
        assert_eq!(joined["country"]["peerLabel"], "test label for PER");
        assert_eq!(joined["country"]["name"], "Peru");
        let programmes = joined["country"]["report"]["peerProgrammes"]
            .as_array()
            .expect("programmes");
        assert!(!programmes.is_empty(), "{joined}");
        for programme in programmes {
            let code = programme["sector"]["code"].as_str().expect("a code");
            let sector = query(
                &plangraph.addr,
                &format!(r#"{{ sector(code: "{code}") {{ code name parent {{ code }} }} }}"#),
                None,
            );
            assert_eq!(programme["sector"], sector["sector"], "{code}");
        }

        // A write through the router: the Authorization header goes on to plangraph.
        let token = admin_token(&url);
        let revision = plangraph.peru_revision();
        let written = query(
            &through,
            &format!(
                r#"mutation {{ setSectorFigures(reportId: "1", expectedRevision: {revision}, sectorCode: "EDU", figures: {{ peopleReached: "40.1 K" }}) {{ revision }} }}"#
            ),
            Some(&token),
        );
        assert_eq!(written["setSectorFigures"]["revision"], revision + 1);

        // A subscriber through the router (GraphQL over SSE) receives a change written to
        // plangraph directly within a second.
        a_direct_change_reaches(
            &format!("http://{through}/graphql"),
            "graphql-sse",
            &plangraph.addr,
            &token,
            revision + 1,
            "hive_router",
        );
    }
}
