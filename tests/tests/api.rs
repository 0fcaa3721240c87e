//! Read-API behaviour beyond the figures: look-ups, connections, errors with stable codes.

use serde_json::json;

use crate::on_both_databases;
use crate::support::{Backend, data, execute, peru_store};

async fn lookups_by_key_answer_null_when_unknown(backend: Backend) {
    let test = peru_store(backend).await;
    let data = data(
        &test.store,
        r#"{ country(iso3: "XXX") { iso3 } sector(code: "NOPE") { code } report(id: "999") { id }
             bad: report(id: "not-a-number") { id } peru: country(iso3: "PER") { report(year: 1999) { id } } }"#,
    )
    .await;
    assert_eq!(
        data,
        json!({ "country": null, "sector": null, "report": null, "bad": null, "peru": { "report": null } })
    );
}
on_both_databases!(lookups_by_key_answer_null_when_unknown);

async fn codes_are_matched_whatever_their_case(backend: Backend) {
    let test = peru_store(backend).await;
    let data = data(
        &test.store,
        r#"{ country(iso3: "per") { iso3 report(year: 2023) { sector(code: "pro-gbv") { peopleReached } } }
             sector(code: "edu") { code } reports(filter: { countryIso3: "per" }) { totalCount } }"#,
    )
    .await;
    assert_eq!(
        data,
        json!({
            "country": { "iso3": "PER", "report": { "sector": { "peopleReached": 32_600 } } },
            "sector": { "code": "EDU" },
            "reports": { "totalCount": 1 }
        })
    );
}
on_both_databases!(codes_are_matched_whatever_their_case);

async fn reports_page_with_cursors_and_filters(backend: Backend) {
    let test = peru_store(backend).await;
    let page = data(
        &test.store,
        r#"{ reports(first: 1, filter: { countryIso3: "PER", year: 2023, kind: END_YEAR, planCode: "RMRP2023" }) {
               totalCount pageInfo { hasNextPage hasPreviousPage endCursor } edges { cursor node { id } } } }"#,
    )
    .await;
    let reports = &page["reports"];
    assert_eq!(reports["totalCount"], 1);
    assert_eq!(reports["pageInfo"]["hasNextPage"], false);
    let cursor = reports["pageInfo"]["endCursor"]
        .as_str()
        .expect("cursor")
        .to_owned();
    let next = data(
        &test.store,
        &format!(r#"{{ reports(after: "{cursor}") {{ totalCount edges {{ node {{ id }} }} pageInfo {{ hasPreviousPage }} }} }}"#),
    )
    .await;
    assert_eq!(next["reports"]["edges"], json!([]));
    assert_eq!(next["reports"]["pageInfo"]["hasPreviousPage"], true);

    let none = data(
        &test.store,
        r#"{ reports(filter: { countryIso3: "COL" }) { totalCount } organizations { totalCount edges { node { name } } } }"#,
    )
    .await;
    assert_eq!(none["reports"]["totalCount"], 0);
    assert_eq!(none["organizations"]["totalCount"], 0);
}
on_both_databases!(reports_page_with_cursors_and_filters);

async fn bad_arguments_get_stable_codes(backend: Backend) {
    let test = peru_store(backend).await;
    let cases = [
        ("{ reports(first: -1) { totalCount } }", "BAD_USER_INPUT"),
        ("{ reports(first: 1000) { totalCount } }", "BAD_USER_INPUT"),
        (
            r#"{ reports(after: "forged") { totalCount } }"#,
            "INVALID_CURSOR",
        ),
    ];
    for (query, code) in cases {
        let response = execute(&test.store, query).await;
        assert_eq!(
            response["errors"][0]["extensions"]["code"], code,
            "{query}: {response}"
        );
    }
    let too_deep = execute(
        &test.store,
        "{ sectors { parent { parent { parent { parent { parent { parent { parent { parent { parent { parent { parent { parent { code } } } } } } } } } } } } } }",
    )
    .await;
    assert!(
        too_deep["errors"][0]["message"]
            .as_str()
            .is_some_and(|m| m.contains("deep")),
        "{too_deep}"
    );
    let malformed = execute(&test.store, "{ reports( ").await;
    assert!(
        malformed["errors"]
            .as_array()
            .is_some_and(|e| !e.is_empty())
    );
}
on_both_databases!(bad_arguments_get_stable_codes);
