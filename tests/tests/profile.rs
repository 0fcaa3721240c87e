//! The production profile: the schema is not mapped for anonymous callers (no introspection, no
//! suggestions), no query console, and an internal error names a request id that the log line
//! holding its details names too.

use actix_web::http::header;
use actix_web::{App, test};
use plangraph_api::{Profile, WriteLimits};
use plangraph_domain::access::Role;
use plangraph_server::AppState;
use plangraph_server::graphql_http::HttpLimits;
use sea_orm::ConnectionTrait;
use serde_json::{Value, json};

use crate::on_both_databases;
use crate::support::server::Server;
use crate::support::writes::{error_code, token};
use crate::support::{Backend, database_url, peru_store};

const INTROSPECTION: &str = "{ __schema { queryType { name } } }";

async fn production_hides_the_schema_from_anonymous_callers(backend: Backend) {
    let test_store = peru_store(backend).await;
    let secret = token(&test_store.store, Role::Editor, &["PER"]).await;
    let app_for = |profile: Profile| {
        let http = HttpLimits {
            console: profile == Profile::Development,
            ..HttpLimits::default()
        };
        AppState::configured(
            test_store.store.clone(),
            WriteLimits::default(),
            http,
            profile,
        )
    };
    let production = test::init_service(
        App::new().configure(plangraph_server::configure(app_for(Profile::Production))),
    )
    .await;
    let development = test::init_service(
        App::new().configure(plangraph_server::configure(app_for(Profile::Development))),
    )
    .await;
    let post = |query: &str, bearer: Option<&str>| {
        let mut request = test::TestRequest::post()
            .uri("/graphql")
            .set_json(json!({ "query": query }));
        if let Some(secret) = bearer {
            request = request.insert_header((header::AUTHORIZATION, format!("Bearer {secret}")));
        }
        request.to_request()
    };

    let anonymous: Value =
        test::call_and_read_body_json(&production, post(INTROSPECTION, None)).await;
    assert!(
        anonymous["data"]["__schema"].is_null() || anonymous.get("errors").is_some(),
        "{anonymous}"
    );
    assert_ne!(
        anonymous["data"]["__schema"]["queryType"]["name"], "Query",
        "{anonymous}"
    );
    let with_token: Value =
        test::call_and_read_body_json(&production, post(INTROSPECTION, Some(&secret))).await;
    assert_eq!(
        with_token["data"]["__schema"]["queryType"]["name"], "Query",
        "{with_token}"
    );
    let revoked_or_wrong: Value =
        test::call_and_read_body_json(&production, post(INTROSPECTION, Some("pgt_wrong"))).await;
    assert_ne!(
        revoked_or_wrong["data"]["__schema"]["queryType"]["name"],
        "Query"
    );
    let in_development: Value =
        test::call_and_read_body_json(&development, post(INTROSPECTION, None)).await;
    assert_eq!(
        in_development["data"]["__schema"]["queryType"]["name"],
        "Query"
    );

    // "Did you mean" maps field names for whoever asks.
    let typo = "{ sectorz { code } }";
    let hinted: Value = test::call_and_read_body_json(&development, post(typo, None)).await;
    assert!(hinted.to_string().contains("Did you mean"), "{hinted}");
    let plain: Value = test::call_and_read_body_json(&production, post(typo, None)).await;
    assert_eq!(
        error_code(&plain).as_deref(),
        Some("GRAPHQL_VALIDATION_FAILED")
    );
    assert!(!plain.to_string().contains("Did you mean"), "{plain}");

    // GraphiQL: built into the binary, on in development, absent in production.
    let page = |app_uri: &str| {
        test::TestRequest::get()
            .uri(app_uri)
            .insert_header((header::ACCEPT, "text/html"))
            .to_request()
    };
    let console = test::call_service(&development, page("/graphql")).await;
    assert_eq!(console.status().as_u16(), 200);
    let html = String::from_utf8(test::read_body(console).await.to_vec()).unwrap();
    assert!(html.contains("plangraph"));
    assert!(
        !html.contains("https://"),
        "GraphiQL loads nothing from elsewhere"
    );
    let off = test::call_service(&production, page("/graphql")).await;
    assert_eq!(off.status().as_u16(), 404);
    let file = |app_uri: &str| test::TestRequest::get().uri(app_uri).to_request();
    let ruru = test::call_service(&development, file("/graphiql/ruru.js")).await;
    assert_eq!(ruru.status().as_u16(), 200);
    let off = test::call_service(&production, file("/graphiql/ruru.js")).await;
    assert_eq!(off.status().as_u16(), 404);
}
on_both_databases!(production_hides_the_schema_from_anonymous_callers, actix);

/// A store failure reaches the client as `INTERNAL` with a request id; the server's log line
/// with the failure's details names the same id (and nothing else of it reaches the client).
mod an_internal_error_names_its_request_id_in_the_log {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sqlite() {
        let (url, _dir) = database_url(Backend::Sqlite).await;
        let server = Server::start(&url);
        let store = plangraph_persistence::Store::connect(&url).await.unwrap();
        store
            .connection()
            .execute_unprepared("DROP TABLE share")
            .await
            .unwrap();
        let (_, answer) = server
            .try_graphql(r#"{ report(id: "1") { ageGender { percent } } }"#, None)
            .unwrap();
        let error = &answer["errors"][0];
        assert_eq!(error["extensions"]["code"], "INTERNAL", "{answer}");
        assert_eq!(
            error["extensions"]["storeCode"], "STORE_QUERY_FAILED",
            "{answer}"
        );
        assert_eq!(error["message"], "internal error");
        assert!(
            !answer.to_string().contains("share"),
            "store details leaked: {answer}"
        );
        let id = error["extensions"]["requestId"]
            .as_str()
            .expect("a request id");
        assert_eq!(id.len(), 16, "{id}");
        // The server's stderr is read by another thread: the line may land a moment after the
        // answer.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        let line = loop {
            let logs = server.logs();
            if let Some(line) = logs.lines().find(|l| l.contains(id)) {
                break line.to_owned();
            }
            assert!(
                std::time::Instant::now() < deadline,
                "no log line names {id}:\n{logs}"
            );
            std::thread::sleep(std::time::Duration::from_millis(20));
        };
        assert!(
            line.contains("share"),
            "the log line has the details: {line}"
        );
    }
}
