//! Helpers for write tests: tokens, requests with credentials, and a checksum of the whole
//! store to prove a refused write changed nothing.

use async_graphql::Request;
use plangraph_api::{Api, Credentials};
use plangraph_domain::access::Role;
use plangraph_domain::codes::Iso3;
use plangraph_persistence::Store;
use plangraph_persistence::entities::{
    api_token, change, country, footnote, narrative_paragraph, narrative_section, organization,
    partner_count, plan, platform, report, report_organization, report_totals, sector,
    sector_figures, share, source_link, store_revision,
};
use sea_orm::EntityTrait;
use serde_json::Value;

/// A new token's secret.
pub async fn token(store: &Store, role: Role, countries: &[&str]) -> String {
    let codes: Vec<Iso3> = countries.iter().map(|c| Iso3::parse(c).unwrap()).collect();
    store
        .create_token("test token", role, &codes)
        .await
        .expect("create a token")
        .secret
}

/// Runs `query` (with `variables`) as the holder of `secret` (none: anonymous).
pub async fn execute_as(
    store: &Store,
    secret: Option<&str>,
    query: &str,
    variables: Value,
) -> Value {
    let credentials =
        Credentials::from_authorization(secret.map(|s| format!("Bearer {s}")).as_deref());
    let request = Request::new(query)
        .variables(async_graphql::Variables::from_json(variables))
        .data(credentials);
    let response = Api::new(store.clone()).execute(request).await;
    serde_json::to_value(&response).expect("response is JSON")
}

/// The `extensions.code` of a response's first error, if any.
pub fn error_code(response: &Value) -> Option<String> {
    response["errors"][0]["extensions"]["code"]
        .as_str()
        .map(str::to_owned)
}

/// Every row of every table, in a stable order, as one string: equal before and after means the
/// store is unchanged, whatever table a bug would have written to.
pub async fn store_checksum(store: &Store) -> String {
    async fn rows<E>(store: &Store) -> Vec<String>
    where
        E: EntityTrait,
        E::Model: std::fmt::Debug,
    {
        let mut rows: Vec<String> = E::find()
            .all(store.connection())
            .await
            .expect("read a table")
            .iter()
            .map(|m| format!("{m:?}"))
            .collect();
        rows.sort();
        rows
    }
    let tables = [
        rows::<api_token::Entity>(store).await,
        rows::<change::Entity>(store).await,
        rows::<country::Entity>(store).await,
        rows::<footnote::Entity>(store).await,
        rows::<narrative_paragraph::Entity>(store).await,
        rows::<narrative_section::Entity>(store).await,
        rows::<organization::Entity>(store).await,
        rows::<partner_count::Entity>(store).await,
        rows::<plan::Entity>(store).await,
        rows::<platform::Entity>(store).await,
        rows::<report::Entity>(store).await,
        rows::<report_organization::Entity>(store).await,
        rows::<report_totals::Entity>(store).await,
        rows::<sector::Entity>(store).await,
        rows::<sector_figures::Entity>(store).await,
        rows::<share::Entity>(store).await,
        rows::<source_link::Entity>(store).await,
        rows::<store_revision::Entity>(store).await,
    ];
    plangraph_domain::checksum::sha256_hex(tables.concat().join("\n").as_bytes())
}
