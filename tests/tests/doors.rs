//! The importer as a door on the network (`importReport`): a text cut short never replaces a
//! complete report without an explicit `allowRemovals`, an oversized text is refused before it
//! is parsed, a text about another country is refused unless overridden, and provenance keeps a
//! file name, never a path.

use plangraph_api::{Api, Credentials, WriteLimits};
use plangraph_domain::PERU_2023_END_YEAR;
use plangraph_domain::access::Role;
use serde_json::{Value, json};

use crate::on_both_databases;
use crate::support::writes::{error_code, execute_as, store_checksum, token};
use crate::support::{Backend, data, peru_store};

const IMPORT: &str = r#"mutation($text: String!, $country: String!, $rev: Int!, $allow: Boolean! = false,
        $dry: Boolean! = false, $override: Boolean! = false, $file: String) {
    importReport(text: $text, country: $country, expectedRevision: $rev, allowRemovals: $allow,
                 dryRun: $dry, overrideCountryCheck: $override, fileName: $file) {
        dryRun changed replaced revision
        removals { path before after }
        changes { path }
        warnings { code }
        report { id title provenance { sourceName } sections { paragraphs } sources { url } }
    } }"#;

async fn peru_revision(store: &plangraph_persistence::Store) -> i64 {
    data(store, r#"{ report(id: "1") { revision } }"#).await["report"]["revision"]
        .as_i64()
        .expect("a revision")
}

/// Copies of the Peru text cut at every line boundary of its last quarter, and at 99% of its
/// bytes: each is refused (as truncated, or because it would remove content) and changes
/// nothing, or, if accepted, removes nothing (only its provenance, a new checksum, changes).
/// The stored report is intact after all of them.
async fn cut_copies_never_remove_content_without_allow_removals(backend: Backend) {
    let test = peru_store(backend).await;
    let store = &test.store;
    let secret = token(store, Role::Editor, &["PER"]).await;
    let mut before = store_checksum(store).await;
    let text = PERU_2023_END_YEAR;
    let quarter = text.len() * 3 / 4;
    let mut cuts: Vec<usize> = text
        .char_indices()
        .filter(|(i, c)| *c == '\n' && *i >= quarter)
        .map(|(i, _)| i + 1)
        .collect();
    cuts.push(text.len() * 99 / 100);
    let mut refused = 0;
    for cut in cuts {
        let Some(copy) = text.get(..cut) else {
            continue;
        };
        let rev = peru_revision(store).await;
        let response = execute_as(
            store,
            Some(&secret),
            IMPORT,
            json!({ "text": copy, "country": "PER", "rev": rev }),
        )
        .await;
        let accepted = error_code(&response).is_none();
        match error_code(&response) {
            Some(code) => {
                assert!(
                    code == "REPORT_TRUNCATED"
                        || code == "IMPORT_WOULD_REMOVE"
                        || code.starts_with("REPORT_"),
                    "cut at {cut}: {response:#}"
                );
                refused += 1;
            }
            None => {
                let result = &response["data"]["importReport"];
                assert_eq!(result["removals"], json!([]), "cut at {cut}");
                let changed: Vec<&str> = result["changes"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .filter_map(|c| c["path"].as_str())
                    .collect();
                assert!(
                    changed.iter().all(|p| p.starts_with("provenance.")),
                    "cut at {cut} changed {changed:?}"
                );
            }
        }
        if accepted {
            before = store_checksum(store).await;
        } else {
            assert_eq!(
                store_checksum(store).await,
                before,
                "the refused copy cut at byte {cut} changed the store"
            );
        }
    }
    assert!(refused > 0);
    let intact = data(
        store,
        r#"{ report(id: "1") { sections { paragraphs } sources { url } } }"#,
    )
    .await;
    let paragraphs: usize = intact["report"]["sections"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["paragraphs"].as_array().unwrap().len())
        .sum();
    assert_eq!(paragraphs, 15);
    assert_eq!(intact["report"]["sources"].as_array().unwrap().len(), 6);
}
on_both_databases!(cut_copies_never_remove_content_without_allow_removals);

/// A shorter report that is complete in itself (it ends after a whole paragraph) is refused as
/// removing content, says what it would remove, shows it on a dry run, goes in with
/// `allowRemovals`, and what it replaced stays in the history.
async fn removals_need_consent_and_stay_in_the_history(backend: Backend) {
    let test = peru_store(backend).await;
    let store = &test.store;
    let secret = token(store, Role::Editor, &["PER"]).await;
    // Everything up to the end of the Lessons Learned section's third paragraph: no end notes.
    let cut = PERU_2023_END_YEAR
        .find("Finally, R4V partners will promote")
        .expect("the last paragraph");
    let shorter = &PERU_2023_END_YEAR[..cut];
    let rev = peru_revision(store).await;
    let before = store_checksum(store).await;

    let refused = execute_as(
        store,
        Some(&secret),
        IMPORT,
        json!({ "text": shorter, "country": "PER", "rev": rev }),
    )
    .await;
    assert_eq!(
        error_code(&refused).as_deref(),
        Some("IMPORT_WOULD_REMOVE"),
        "{refused:#}"
    );
    let removals = &refused["errors"][0]["extensions"]["removals"];
    let paths: Vec<&str> = removals
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|r| r["path"].as_str())
        .collect();
    assert!(
        paths.contains(&"sections.LESSONS_LEARNED.paragraphs.4"),
        "{paths:?}"
    );
    assert!(paths.contains(&"sources.6.url"), "{paths:?}");
    assert_eq!(store_checksum(store).await, before);

    let dry = execute_as(
        store,
        Some(&secret),
        IMPORT,
        json!({ "text": shorter, "country": "PER", "rev": rev, "dry": true }),
    )
    .await;
    assert_eq!(error_code(&dry), None, "{dry:#}");
    let preview = &dry["data"]["importReport"];
    assert_eq!(preview["dryRun"], true);
    assert_eq!(preview["changed"], false);
    assert!(!preview["removals"].as_array().unwrap().is_empty());
    // The preview is the report as it would be stored.
    assert_eq!(
        preview["report"]["sources"].as_array().unwrap().len(),
        1,
        "{preview:#}"
    );
    assert_eq!(store_checksum(store).await, before, "a dry run wrote");

    let allowed = execute_as(
        store,
        Some(&secret),
        IMPORT,
        json!({ "text": shorter, "country": "PER", "rev": rev, "allow": true }),
    )
    .await;
    assert_eq!(error_code(&allowed), None, "{allowed:#}");
    assert_eq!(allowed["data"]["importReport"]["revision"], rev + 1);
    let history = data(
        store,
        r#"{ report(id: "1") { history(first: 1) { edges { node { kind changes { path before after } } } } } }"#,
    )
    .await;
    let node = &history["report"]["history"]["edges"][0]["node"];
    assert_eq!(node["kind"], "IMPORT");
    let kept = node["changes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["path"] == "sections.LESSONS_LEARNED.paragraphs.4")
        .expect("the removed paragraph is in the history");
    assert!(
        kept["before"]
            .as_str()
            .unwrap()
            .starts_with("Finally, R4V partners will promote")
    );
    assert!(kept["after"].is_null());
}
on_both_databases!(removals_need_consent_and_stay_in_the_history);

/// A text over the configured cap is refused before it is parsed; the Peru text as Colombia's
/// is refused unless overridden; the source name is a file name, never a path; a new report's
/// expected revision is 0.
async fn import_doors_refuse_oversized_and_misfiled_texts(backend: Backend) {
    let test = peru_store(backend).await;
    let store = &test.store;
    let secret = token(store, Role::Admin, &[]).await;
    let before = store_checksum(store).await;

    let small = Api::with_limits(
        store.clone(),
        WriteLimits {
            max_report_bytes: 1_000,
        },
    );
    let request = async_graphql::Request::new(IMPORT)
        .variables(async_graphql::Variables::from_json(
            json!({ "text": PERU_2023_END_YEAR, "country": "PER", "rev": 1 }),
        ))
        .data(Credentials::from_authorization(Some(&format!(
            "Bearer {secret}"
        ))));
    let response: Value = serde_json::to_value(small.execute(request).await).unwrap();
    assert_eq!(error_code(&response).as_deref(), Some("REPORT_TOO_LARGE"));

    let colombia = execute_as(
        store,
        Some(&secret),
        IMPORT,
        json!({ "text": PERU_2023_END_YEAR, "country": "COL", "rev": 0 }),
    )
    .await;
    assert_eq!(
        error_code(&colombia).as_deref(),
        Some("IMPORT_COUNTRY_MISMATCH"),
        "{colombia:#}"
    );
    assert_eq!(store_checksum(store).await, before);

    let stale_new = execute_as(
        store,
        Some(&secret),
        IMPORT,
        json!({ "text": PERU_2023_END_YEAR, "country": "COL", "rev": 5, "override": true }),
    )
    .await;
    assert_eq!(error_code(&stale_new).as_deref(), Some("CONFLICT"));
    assert_eq!(store_checksum(store).await, before);

    let forced = execute_as(
        store,
        Some(&secret),
        IMPORT,
        json!({ "text": PERU_2023_END_YEAR, "country": "COL", "rev": 0, "override": true,
                "file": "/home/im-team/uploads/peru.txt" }),
    )
    .await;
    assert_eq!(error_code(&forced), None, "{forced:#}");
    let result = &forced["data"]["importReport"];
    assert_eq!(result["replaced"], false);
    assert_eq!(result["report"]["provenance"]["sourceName"], "peru.txt");
}
on_both_databases!(import_doors_refuse_oversized_and_misfiled_texts);

/// Dropping one paragraph and adding another keeps the count the same, and replacing one cited
/// link by another too: both still need consent, since the dropped text is no longer there.
async fn a_swapped_paragraph_or_source_still_needs_consent(backend: Backend) {
    let test = peru_store(backend).await;
    let store = &test.store;
    let secret = token(store, Role::Editor, &["PER"]).await;
    let rev = peru_revision(store).await;
    let second = "Refugees and migrants face increased risks due to the difficulty to \naccess the country in a regular manner. Additionally, the lack of a \nregularization pathway for those arriving after May 2023 hindered \ntheir integration. In 2024, R4V partners will continue advocating for \nmechanisms to promote regular pathways.\n\n";
    assert!(PERU_2023_END_YEAR.contains(second));
    let swapped_paragraph = PERU_2023_END_YEAR.replacen(second, "", 1).replacen(
        "and stronger coordination with key stakeholders.\n",
        "and stronger coordination with key stakeholders.\n\nA new closing lesson.\n",
        1,
    );
    let swapped_source = PERU_2023_END_YEAR.replacen(
        "https://busquedas.elperuano.pe/dispositivo/NL/2222143-2",
        "https://www.r4v.info/en/peru",
        1,
    );
    let before = store_checksum(store).await;
    for (name, text, path) in [
        (
            "a paragraph",
            swapped_paragraph,
            "sections.LESSONS_LEARNED.paragraphs.2",
        ),
        ("a source", swapped_source, "sources.3.url"),
    ] {
        let dry = execute_as(
            store,
            Some(&secret),
            IMPORT,
            json!({ "text": text, "country": "PER", "rev": rev, "dry": true }),
        )
        .await;
        assert_eq!(error_code(&dry), None, "{name}: {dry:#}");
        let removals: Vec<&str> = dry["data"]["importReport"]["removals"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|r| r["path"].as_str())
            .collect();
        assert!(removals.contains(&path), "{name}: {removals:?}");
        let refused = execute_as(
            store,
            Some(&secret),
            IMPORT,
            json!({ "text": text, "country": "PER", "rev": rev }),
        )
        .await;
        assert_eq!(
            error_code(&refused).as_deref(),
            Some("IMPORT_WOULD_REMOVE"),
            "{name}: {refused:#}"
        );
        assert_eq!(store_checksum(store).await, before, "{name} wrote");
    }
}
on_both_databases!(a_swapped_paragraph_or_source_still_needs_consent);
