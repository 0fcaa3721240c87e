//! The server in-process: `/graphql` over POST and GET, GraphiQL's page, health and readiness.

use actix_web::http::header;
use actix_web::{App, test};
use plangraph_server::{AppState, configure};
use serde_json::{Value, json};

use crate::on_both_databases;
use crate::support::{Backend, peru_store};

async fn graphql_health_and_readiness_over_http(backend: Backend) {
    let test_store = peru_store(backend).await;
    let app = test::init_service(
        App::new().configure(configure(AppState::new(test_store.store.clone()))),
    )
    .await;

    let post = test::TestRequest::post()
        .uri("/graphql")
        .set_json(json!({ "query": r#"{ country(iso3: "PER") { report(year: 2023) { totals { peopleReached } } } }"# }))
        .to_request();
    let body: Value = test::call_and_read_body_json(&app, post).await;
    assert_eq!(
        body["data"]["country"]["report"]["totals"]["peopleReached"],
        513_600
    );

    // Fields come back in the order the query selected them, whatever order they resolve in.
    let ordered = test::TestRequest::post()
        .uri("/graphql")
        .set_json(json!({ "query": r#"{ country(iso3: "PER") { report(year: 2023) {
            title gbv: sector(code: "PRO-GBV") { fundingUsd sector { code } } sections { title } totals { unmetUsd } } } }"# }))
        .to_request();
    let raw = String::from_utf8(test::call_and_read_body(&app, ordered).await.to_vec()).unwrap();
    let positions: Vec<usize> = [
        "\"title\"",
        "\"gbv\"",
        "\"fundingUsd\"",
        "\"sector\"",
        "\"sections\"",
        "\"totals\"",
    ]
    .iter()
    .map(|key| raw.find(key).unwrap_or(usize::MAX))
    .collect();
    assert!(positions.windows(2).all(|w| w[0] < w[1]), "{raw}");

    let get = test::TestRequest::get()
        .uri("/graphql?query=%7Bsectors%7Bcode%7D%7D")
        .insert_header(("apollo-require-preflight", "true"))
        .to_request();
    let body: Value = test::call_and_read_body_json(&app, get).await;
    assert_eq!(body["data"]["sectors"][0]["code"], "EDU");

    let page = test::TestRequest::get()
        .uri("/graphql")
        .insert_header((header::ACCEPT, "text/html"))
        .to_request();
    let response = test::call_service(&app, page).await;
    assert!(response.status().is_success());
    let html = test::read_body(response).await;
    assert!(String::from_utf8_lossy(&html).contains("/graphiql/start.js"));

    let bare = test::TestRequest::get().uri("/graphql").to_request();
    assert_eq!(test::call_service(&app, bare).await.status().as_u16(), 400);

    let health: Value =
        test::call_and_read_body_json(&app, test::TestRequest::get().uri("/healthz").to_request())
            .await;
    assert_eq!(health["status"], "ok");
    let ready: Value =
        test::call_and_read_body_json(&app, test::TestRequest::get().uri("/readyz").to_request())
            .await;
    assert_eq!(ready["status"], "ready");
}
on_both_databases!(graphql_health_and_readiness_over_http, actix);
