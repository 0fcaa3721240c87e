//! plangraph as an Apollo Federation v2 subgraph: `_entities` resolves through the request's
//! loaders (one statement per entity type, whatever the number of representations), in
//! representation order, an unknown key null in its place, keys matched as the root fields
//! match them; fields in selection order even when the type conditions order them differently.

use async_graphql::{Request, Variables};
use plangraph_api::Api;
use serde_json::{Value, json};

use crate::on_both_databases;
use crate::support::writes::error_code;
use crate::support::{Backend, counted_store};

async fn run(api: &Api, query: &str, variables: Value) -> (Value, String) {
    let response = api
        .execute(Request::new(query).variables(Variables::from_json(variables)))
        .await;
    let raw = serde_json::to_string(&response).unwrap();
    (serde_json::to_value(&response).unwrap(), raw)
}

async fn entities_batch_per_type_in_representation_order(backend: Backend) {
    let (test, counter) = counted_store(backend).await;
    plangraph_server::load_bundled_if_empty(&test.store)
        .await
        .unwrap();
    let api = Api::new(test.store.clone());
    let mut representations = Vec::new();
    for n in 0..100 {
        // Report 1 exists; 2.. do not. Country PER exists (any letter case); others do not.
        representations.push(json!({ "__typename": "Report", "id": (n % 3 + 1).to_string() }));
        let iso3 = if n % 2 == 0 { "per" } else { "XXX" };
        representations.push(json!({ "__typename": "Country", "iso3": iso3 }));
    }
    let query = "query($r: [_Any!]!) { _entities(representations: $r) {
        ... on Report { id title }
        ... on Country { name iso3 } } }";
    counter.reset();
    let (answer, _) = run(&api, query, json!({ "r": representations })).await;
    assert_eq!(error_code(&answer), None, "{answer:#}");
    let statements = counter.get();
    println!("200 representations of 2 types: {statements} SQL statement(s)");
    assert!(statements <= 2, "{statements} statements");
    let entities = answer["data"]["_entities"].as_array().unwrap();
    assert_eq!(entities.len(), 200);
    for (n, entity) in entities.iter().enumerate() {
        let i = n / 2;
        if n % 2 == 0 {
            if i % 3 == 0 {
                assert_eq!(entity["id"], "1", "{n}");
            } else {
                assert!(entity.is_null(), "{n}: {entity}");
            }
        } else if i % 2 == 0 {
            assert_eq!(entity["iso3"], "PER", "{n}");
        } else {
            assert!(entity.is_null(), "{n}: {entity}");
        }
    }
    // Each type in its own selection order: `platform` is selected under both conditions, in
    // different places. (The platforms are batched too: one statement for each entity type's
    // objects, as the two entity batches may come back at different moments.)
    let ordered = "query($r: [_Any!]!) { _entities(representations: $r) {
        ... on Report { id platform { code } title }
        ... on Country { name platform { code } iso3 } } }";
    counter.reset();
    let (_, raw) = run(&api, ordered, json!({ "r": representations })).await;
    assert!(counter.get() <= 4, "{}", counter.get());
    assert!(
        raw.contains(r#"{"id":"1","platform":{"code":"GTRM"},"title":"END-YEAR REPORT 2023"}"#),
        "{raw}"
    );
    assert!(
        raw.contains(r#"{"name":"Peru","platform":{"code":"GTRM"},"iso3":"PER"}"#),
        "{raw}"
    );

    // Every entity type and key.
    let all = json!([
        { "__typename": "Platform", "code": "gtrm" },
        { "__typename": "Plan", "code": "RMRP2023" },
        { "__typename": "Sector", "code": "pro-gbv" },
        { "__typename": "Organization", "id": "1" },
        { "__typename": "Organization", "ftsId": "none" },
    ]);
    let (answer, _) = run(
        &api,
        "query($r: [_Any!]!) { _entities(representations: $r) {
            ... on Platform { code } ... on Plan { code } ... on Sector { code }
            ... on Organization { id } } }",
        json!({ "r": all }),
    )
    .await;
    assert_eq!(
        answer["data"]["_entities"],
        json!([{ "code": "GTRM" }, { "code": "RMRP2023" }, { "code": "PRO-GBV" }, null, null]),
        "{answer:#}"
    );
}
on_both_databases!(entities_batch_per_type_in_representation_order);

/// `--sdl-needs-token`: the federation SDL only for callers with a valid token (through a
/// fragment too); off by default, as gateways fetch it anonymously.
async fn the_service_sdl_can_require_a_token(backend: Backend) {
    use crate::support::writes::token;
    use plangraph_api::{Credentials, QueryLimits, WriteLimits};
    use plangraph_domain::access::Role;

    let (test, _) = counted_store(backend).await;
    let store = test.store.clone();
    let secret = token(&store, Role::Editor, &["PER"]).await;
    let ask = |api: Api, query: &'static str, secret: Option<String>| async move {
        let credentials =
            Credentials::from_authorization(secret.map(|s| format!("Bearer {s}")).as_deref());
        serde_json::to_value(api.execute(Request::new(query).data(credentials)).await).unwrap()
    };
    let plain = r#"{ _service { sdl } }"#;
    let spread = r#"query { ...F } fragment F on Query { _service { sdl } }"#;
    let open = Api::with_all_limits(
        store.clone(),
        WriteLimits::default(),
        QueryLimits::default(),
    );
    let answer = ask(open, plain, None).await;
    assert!(
        answer["data"]["_service"]["sdl"]
            .as_str()
            .is_some_and(|s| s.contains("@key"))
    );
    let guarded = || {
        Api::with_all_limits(
            store.clone(),
            WriteLimits::default(),
            QueryLimits {
                service_sdl_needs_token: true,
                ..QueryLimits::default()
            },
        )
    };
    for query in [plain, spread] {
        let anonymous = ask(guarded(), query, None).await;
        assert_eq!(
            error_code(&anonymous).as_deref(),
            Some("UNAUTHENTICATED"),
            "{anonymous}"
        );
        let wrong = ask(guarded(), query, Some("pg_not-a-token".into())).await;
        assert_eq!(
            error_code(&wrong).as_deref(),
            Some("UNAUTHENTICATED"),
            "{wrong}"
        );
        let with_token = ask(guarded(), query, Some(secret.clone())).await;
        assert!(
            with_token["data"]["_service"]["sdl"].as_str().is_some(),
            "{with_token}"
        );
    }
    // Everything else stays anonymous.
    let other = ask(guarded(), r#"{ countries { iso3 } }"#, None).await;
    assert!(other["errors"].is_null(), "{other}");
}
on_both_databases!(the_service_sdl_can_require_a_token);
