//! Partner writes: every change is one revision with its history; no token, a revoked token or
//! one for another country writes nothing; a stale revision is a conflict; every mutation
//! refuses bad input with its code and writes nothing.

use plangraph_domain::access::Role;
use serde_json::{Value, json};

use crate::on_both_databases;
use crate::support::writes::{error_code, execute_as, store_checksum, token};
use crate::support::{Backend, data, peru_store};

const SET_EDU: &str = r#"mutation($rev: Int!, $reached: String!) {
    setSectorFigures(reportId: "1", expectedRevision: $rev, sectorCode: "EDU",
                     figures: { peopleReached: $reached }) {
        changed revision
        report { revision sector(code: "EDU") { peopleReached printed { peopleReached } } }
        change { revision kind actor { label tokenId } changes { path before after } }
    } }"#;

async fn revision_of_peru(store: &plangraph_persistence::Store) -> i64 {
    data(store, r#"{ report(id: "1") { revision } }"#).await["report"]["revision"]
        .as_i64()
        .expect("the Peru report has a revision")
}

/// A figure changed through the API: one new revision, the value as written, and a history
/// entry naming who changed what from what to what. Writing the same value again changes
/// nothing and records nothing.
async fn a_figure_change_is_one_revision_with_its_history(backend: Backend) {
    let test = peru_store(backend).await;
    let store = &test.store;
    let secret = token(store, Role::Editor, &["PER"]).await;
    let before = revision_of_peru(store).await;

    let written = execute_as(
        store,
        Some(&secret),
        SET_EDU,
        json!({ "rev": before, "reached": "40.1 K" }),
    )
    .await;
    assert_eq!(error_code(&written), None, "{written:#}");
    let result = &written["data"]["setSectorFigures"];
    assert_eq!(result["changed"], true);
    assert_eq!(result["revision"], before + 1);
    assert_eq!(result["report"]["revision"], before + 1);
    assert_eq!(result["report"]["sector"]["peopleReached"], 40_100);
    assert_eq!(
        result["report"]["sector"]["printed"]["peopleReached"],
        "40.1 K"
    );
    assert_eq!(
        result["change"]["changes"],
        json!([{ "path": "sectors.EDU.peopleReached", "before": "37.4 K", "after": "40.1 K" }])
    );
    assert_eq!(result["change"]["kind"], "SECTOR_FIGURES");
    assert_eq!(result["change"]["actor"]["label"], "test token");
    assert!(result["change"]["actor"]["tokenId"].is_string());

    let history = data(
        store,
        r#"{ report(id: "1") { history(first: 5) { totalCount edges { node { revision kind changes { path } } } } } }"#,
    )
    .await;
    let entries = &history["report"]["history"];
    // The bundled import, then this change, newest first.
    assert_eq!(entries["totalCount"], 2);
    assert_eq!(entries["edges"][0]["node"]["revision"], before + 1);
    assert_eq!(entries["edges"][1]["node"]["kind"], "IMPORT");

    let checksum = store_checksum(store).await;
    let again = execute_as(
        store,
        Some(&secret),
        SET_EDU,
        json!({ "rev": before + 1, "reached": "40.1 K" }),
    )
    .await;
    assert_eq!(again["data"]["setSectorFigures"]["changed"], false);
    assert_eq!(again["data"]["setSectorFigures"]["revision"], before + 1);
    assert!(again["data"]["setSectorFigures"]["change"].is_null());
    assert_eq!(store_checksum(store).await, checksum, "a no-op wrote");
}
on_both_databases!(a_figure_change_is_one_revision_with_its_history);

/// No token, a malformed header, an unknown or revoked token, or an editor of another country:
/// the right code, and not one row of the store changed.
async fn writes_need_a_valid_token_in_scope(backend: Backend) {
    let test = peru_store(backend).await;
    let store = &test.store;
    let colombia = token(store, Role::Editor, &["COL"]).await;
    let revoked = token(store, Role::Admin, &[]).await;
    let revoked_id = store.tokens().await.unwrap().last().unwrap().id;
    assert!(store.revoke_token(revoked_id).await.unwrap());
    let rev = revision_of_peru(store).await;
    let before = store_checksum(store).await;

    let vars = json!({ "rev": rev, "reached": "40.1 K" });
    for (secret, code) in [
        (None, "UNAUTHENTICATED"),
        (Some("not-a-token"), "UNAUTHENTICATED"),
        (Some(revoked.as_str()), "UNAUTHENTICATED"),
        (Some(colombia.as_str()), "FORBIDDEN"),
    ] {
        let response = execute_as(store, secret, SET_EDU, vars.clone()).await;
        assert_eq!(error_code(&response).as_deref(), Some(code), "{response:#}");
        assert_eq!(store_checksum(store).await, before, "{code} wrote");
    }

    // An editor may not import another country's report, nor add or change shared
    // organisations (an admin adds them).
    let peru = plangraph_domain::PERU_2023_END_YEAR;
    let import = execute_as(
        store,
        Some(&colombia),
        r#"mutation($text: String!) { importReport(text: $text, country: "PER", expectedRevision: 1) { changed } }"#,
        json!({ "text": peru }),
    )
    .await;
    assert_eq!(error_code(&import).as_deref(), Some("FORBIDDEN"));
    let create = r#"mutation { createOrganization(organization: { name: "Encuentros SJM" }) { organization { id revision } } }"#;
    let refused = execute_as(store, Some(&colombia), create, json!({})).await;
    assert_eq!(
        error_code(&refused).as_deref(),
        Some("FORBIDDEN"),
        "{refused:#}"
    );
    let admin = token(store, Role::Admin, &[]).await;
    let created = execute_as(store, Some(&admin), create, json!({})).await;
    let org = created["data"]["createOrganization"]["organization"]["id"].clone();
    assert!(org.is_string(), "{created:#}");
    let renamed = execute_as(
        store,
        Some(&colombia),
        r#"mutation($id: ID!) { updateOrganization(id: $id, expectedRevision: 0, organization: { name: "x" }) { changed } }"#,
        json!({ "id": org }),
    )
    .await;
    assert_eq!(
        error_code(&renamed).as_deref(),
        Some("FORBIDDEN"),
        "{renamed:#}"
    );
}
on_both_databases!(writes_need_a_valid_token_in_scope);

/// A write based on a revision that is no longer current fails with `CONFLICT`, carrying the
/// current revision, and changes nothing. Two writes based on the same revision at once:
/// exactly one succeeds, and the history shows one revision.
async fn concurrent_writes_on_one_revision_give_one_change_and_one_conflict(backend: Backend) {
    let test = peru_store(backend).await;
    let store = &test.store;
    let secret = token(store, Role::Editor, &["PER"]).await;
    let rev = revision_of_peru(store).await;

    let writes: Vec<_> = ["40.1 K", "41.2 K"]
        .into_iter()
        .map(|reached| {
            let store = store.clone();
            let secret = secret.clone();
            tokio::spawn(async move {
                execute_as(
                    &store,
                    Some(&secret),
                    SET_EDU,
                    json!({ "rev": rev, "reached": reached }),
                )
                .await
            })
        })
        .collect();
    let mut results = Vec::new();
    for write in writes {
        results.push(write.await.expect("task"));
    }
    let ok: Vec<&Value> = results.iter().filter(|r| error_code(r).is_none()).collect();
    let conflicts: Vec<&Value> = results
        .iter()
        .filter(|r| error_code(r).as_deref() == Some("CONFLICT"))
        .collect();
    assert_eq!((ok.len(), conflicts.len()), (1, 1), "{results:#?}");
    assert_eq!(
        conflicts[0]["errors"][0]["extensions"]["currentRevision"],
        rev + 1
    );
    assert_eq!(
        conflicts[0]["errors"][0]["extensions"]["expectedRevision"],
        rev
    );

    let history = data(
        store,
        r#"{ report(id: "1") { revision history { totalCount edges { node { revision } } } } }"#,
    )
    .await;
    assert_eq!(history["report"]["revision"], rev + 1);
    assert_eq!(history["report"]["history"]["totalCount"], 2);

    // A stale write afterwards: CONFLICT again, nothing written.
    let before = store_checksum(store).await;
    let stale = execute_as(
        store,
        Some(&secret),
        SET_EDU,
        json!({ "rev": rev, "reached": "1 K" }),
    )
    .await;
    assert_eq!(error_code(&stale).as_deref(), Some("CONFLICT"));
    assert_eq!(store_checksum(store).await, before);
}
on_both_databases!(
    concurrent_writes_on_one_revision_give_one_change_and_one_conflict,
    multi_thread
);

/// Every mutation checks its input with the domain's types: a bad value gives its stable code
/// and the store is unchanged, row for row.
async fn every_mutation_refuses_bad_input_and_writes_nothing(backend: Backend) {
    let test = peru_store(backend).await;
    let store = &test.store;
    let secret = token(store, Role::Admin, &[]).await;
    let rev = revision_of_peru(store).await;
    let cases: Vec<(&str, String, &str)> = vec![
        (
            "a negative people count",
            format!(r#"mutation {{ updateTotals(reportId: "1", expectedRevision: {rev}, totals: {{ peopleReached: "-5" }}) {{ changed }} }}"#),
            "INVALID_FIGURE",
        ),
        (
            "a percent that does not parse",
            format!(r#"mutation {{ updateTotals(reportId: "1", expectedRevision: {rev}, totals: {{ fundedPercent: "about 20" }}) {{ changed }} }}"#),
            "INVALID_FIGURE",
        ),
        (
            "an amount without its dollar sign",
            format!(r#"mutation {{ setSectorFigures(reportId: "1", expectedRevision: {rev}, sectorCode: "EDU", figures: {{ fundingUsd: "6.9 M" }}) {{ changed }} }}"#),
            "INVALID_FIGURE",
        ),
        (
            "an unknown sector",
            format!(r#"mutation {{ setSectorFigures(reportId: "1", expectedRevision: {rev}, sectorCode: "XYZ", figures: {{ peopleReached: "1 K" }}) {{ changed }} }}"#),
            "UNKNOWN_SECTOR",
        ),
        (
            "removing an unknown sector",
            format!(r#"mutation {{ removeSectorFigures(reportId: "1", expectedRevision: {rev}, sectorCode: "NOPE") {{ changed }} }}"#),
            "UNKNOWN_SECTOR",
        ),
        (
            "a share without a percent sign",
            format!(r#"mutation {{ setShares(reportId: "1", expectedRevision: {rev}, dimension: AGE_GENDER, shares: [{{ percent: "30.9" }}]) {{ changed }} }}"#),
            "INVALID_FIGURE",
        ),
        (
            "a negative partner count",
            format!(r#"mutation {{ setPartnerCount(reportId: "1", expectedRevision: {rev}, role: DONOR, count: -1) {{ changed }} }}"#),
            "INVALID_FIGURE",
        ),
        (
            "an empty paragraph",
            format!(r#"mutation {{ setSection(reportId: "1", expectedRevision: {rev}, kind: RESPONSE, paragraphs: ["ok.", "  "]) {{ changed }} }}"#),
            "EMPTY_TEXT",
        ),
        (
            "a paragraph beyond the end",
            format!(r#"mutation {{ setParagraph(reportId: "1", expectedRevision: {rev}, kind: RESPONSE, position: 99, text: "x.") {{ changed }} }}"#),
            "POSITION_OUT_OF_RANGE",
        ),
        (
            "paragraph zero",
            format!(r#"mutation {{ setParagraph(reportId: "1", expectedRevision: {rev}, kind: RESPONSE, position: -1, text: "x.") {{ changed }} }}"#),
            "BAD_USER_INPUT",
        ),
        (
            "an empty footnote marker",
            format!(r#"mutation {{ setFootnotes(reportId: "1", expectedRevision: {rev}, footnotes: [{{ marker: "", text: "x" }}]) {{ changed }} }}"#),
            "EMPTY_TEXT",
        ),
        (
            "a source that is not a web URL",
            format!(r#"mutation {{ setSources(reportId: "1", expectedRevision: {rev}, sources: [{{ url: "ftp://example.org/a" }}]) {{ changed }} }}"#),
            "INVALID_URL",
        ),
        (
            "linking an unknown organisation",
            format!(r#"mutation {{ linkOrganization(reportId: "1", expectedRevision: {rev}, organizationId: "999", role: PARTNER) {{ changed }} }}"#),
            "NOT_FOUND",
        ),
        (
            "a report id that is not one",
            format!(r#"mutation {{ unlinkOrganization(reportId: "abc", expectedRevision: {rev}, organizationId: "1", role: DONOR) {{ changed }} }}"#),
            "BAD_USER_INPUT",
        ),
        (
            "an unknown report",
            format!(r#"mutation {{ removeSection(reportId: "999", expectedRevision: {rev}, kind: SITUATION) {{ changed }} }}"#),
            "NOT_FOUND",
        ),
        (
            "an organisation with an empty name",
            r#"mutation { createOrganization(organization: { name: " " }) { changed } }"#.to_owned(),
            "EMPTY_TEXT",
        ),
        (
            "a name with an escape sequence",
            r#"mutation { createOrganization(organization: { name: "Evil\u001b[2J" }) { changed } }"#.to_owned(),
            "INVALID_TEXT",
        ),
        (
            "a paragraph of zero-width spaces",
            format!(r#"mutation {{ setParagraph(reportId: "1", expectedRevision: {rev}, kind: RESPONSE, position: 1, text: "\u200b\u200b") {{ changed }} }}"#),
            "EMPTY_TEXT",
        ),
        (
            "more people than GraphQL's Int can serve",
            format!(r#"mutation {{ setSectorFigures(reportId: "1", expectedRevision: {rev}, sectorCode: "EDU", figures: {{ peopleReached: "2.2 B" }}) {{ changed }} }}"#),
            "INVALID_FIGURE",
        ),
        (
            "a file name with a line break",
            format!(r#"mutation {{ importReport(text: "x", country: "PER", expectedRevision: {rev}, fileName: "a\u0000b") {{ changed }} }}"#),
            "INVALID_TEXT",
        ),
        (
            "an unknown organisation",
            r#"mutation { updateOrganization(id: "999", expectedRevision: 0, organization: { name: "x" }) { changed } }"#.to_owned(),
            "NOT_FOUND",
        ),
        (
            "an import for an unknown country",
            format!(r#"mutation {{ importReport(text: "x", country: "XXX", expectedRevision: {rev}) {{ changed }} }}"#),
            "IMPORT_NOT_A_COUNTRY",
        ),
        (
            "an empty import",
            format!(r#"mutation {{ importReport(text: "", country: "PER", expectedRevision: {rev}) {{ changed }} }}"#),
            "REPORT_EMPTY",
        ),
    ];
    let before = store_checksum(store).await;
    for (name, query, code) in cases {
        let response = execute_as(store, Some(&secret), &query, json!({})).await;
        assert_eq!(
            error_code(&response).as_deref(),
            Some(code),
            "{name}: {response:#}"
        );
        assert_eq!(store_checksum(store).await, before, "{name} wrote");
    }

    // A new sector row needs every figure: remove a row, then try to add it back with one.
    let removed = execute_as(
        store,
        Some(&secret),
        &format!(r#"mutation {{ removeSectorFigures(reportId: "1", expectedRevision: {rev}, sectorCode: "MPC") {{ revision }} }}"#),
        json!({}),
    )
    .await;
    let rev = removed["data"]["removeSectorFigures"]["revision"]
        .as_i64()
        .unwrap();
    let before = store_checksum(store).await;
    let partial = execute_as(
        store,
        Some(&secret),
        &format!(r#"mutation {{ setSectorFigures(reportId: "1", expectedRevision: {rev}, sectorCode: "MPC", figures: {{ peopleReached: "1 K" }}) {{ changed }} }}"#),
        json!({}),
    )
    .await;
    assert_eq!(error_code(&partial).as_deref(), Some("INCOMPLETE_FIGURES"));
    assert_eq!(store_checksum(store).await, before);
}
on_both_databases!(every_mutation_refuses_bad_input_and_writes_nothing);

/// Every kind of write goes through and shows up in the history with what it changed.
async fn every_mutation_writes_what_it_says(backend: Backend) {
    let test = peru_store(backend).await;
    let store = &test.store;
    let secret = token(store, Role::Admin, &[]).await;
    let mut rev = revision_of_peru(store).await;
    let org = execute_as(
        store,
        Some(&secret),
        r#"mutation { createOrganization(organization: { name: "Encuentros Servicio Jesuita", acronym: "SJM", refugeeAndMigrantLed: false, ftsId: "FTS-1" }) { revision organization { id name ftsId } } }"#,
        json!({}),
    )
    .await;
    let org_id = org["data"]["createOrganization"]["organization"]["id"]
        .as_str()
        .expect("created")
        .to_owned();
    let org_rev = org["data"]["createOrganization"]["revision"]
        .as_i64()
        .unwrap();
    let duplicate = execute_as(
        store,
        Some(&secret),
        r#"mutation { createOrganization(organization: { name: "Other", ftsId: "fts-1" }) { changed } }"#,
        json!({}),
    )
    .await;
    assert_eq!(error_code(&duplicate).as_deref(), Some("DUPLICATE"));

    let steps: Vec<(String, &str)> = vec![
        (r#"updateTotals(reportId: "1", expectedRevision: REV, totals: { peopleReached: "520.0 K", fundingUsd: "$70.00 M" })"#.into(), "totals.peopleReached"),
        (r#"setShares(reportId: "1", expectedRevision: REV, dimension: POPULATION_TYPE, shares: [{ percent: "34.0%", label: "In-destination", basis: PEOPLE_TARGETED }])"#.into(), "populationTypes.2"),
        (r#"setPartnerCount(reportId: "1", expectedRevision: REV, role: DONOR, count: 24)"#.into(), "partnerCounts.DONOR"),
        (r#"setParagraph(reportId: "1", expectedRevision: REV, kind: LESSONS_LEARNED, position: 5, text: "A fifth lesson.")"#.into(), "sections.LESSONS_LEARNED.paragraphs.5"),
        (r#"setSection(reportId: "1", expectedRevision: REV, kind: SITUATION, title: "Situation overview", paragraphs: ["One paragraph."])"#.into(), "sections.SITUATION.title"),
        (r#"setFootnotes(reportId: "1", expectedRevision: REV, footnotes: [{ marker: "*", text: "Funding as reported to FTS." }])"#.into(), "footnotes.1.text"),
        (r#"setSources(reportId: "1", expectedRevision: REV, sources: [{ url: "https://www.r4v.info/en/peru", label: "R4V Peru" }])"#.into(), "sources.1.url"),
        (format!(r#"linkOrganization(reportId: "1", expectedRevision: REV, organizationId: "{org_id}", role: PARTNER)"#), "partners."),
        (format!(r#"unlinkOrganization(reportId: "1", expectedRevision: REV, organizationId: "{org_id}", role: PARTNER)"#), "partners."),
        (r#"removeSection(reportId: "1", expectedRevision: REV, kind: RESPONSE)"#.into(), "sections.RESPONSE.title"),
        (r#"removeSectorFigures(reportId: "1", expectedRevision: REV, sectorCode: "WSH")"#.into(), "sectors.WSH.peopleReached"),
    ];
    for (call, path) in steps {
        let query = format!(
            "mutation {{ {} {{ changed revision change {{ changes {{ path }} }} }} }}",
            call.replace("REV", &rev.to_string())
        );
        let response = execute_as(store, Some(&secret), &query, json!({})).await;
        assert_eq!(error_code(&response), None, "{call}: {response:#}");
        let result = response["data"]
            .as_object()
            .unwrap()
            .values()
            .next()
            .unwrap();
        assert_eq!(result["changed"], true, "{call}");
        let paths: Vec<&str> = result["change"]["changes"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|c| c["path"].as_str())
            .collect();
        assert!(
            paths.iter().any(|p| p.starts_with(path)),
            "{call}: {paths:?}"
        );
        rev = result["revision"].as_i64().unwrap();
    }
    let renamed = execute_as(
        store,
        Some(&secret),
        &format!(r#"mutation {{ updateOrganization(id: "{org_id}", expectedRevision: {org_rev}, organization: {{ acronym: "" }}) {{ changed organization {{ acronym revision history {{ totalCount }} }} }} }}"#),
        json!({}),
    )
    .await;
    assert_eq!(error_code(&renamed), None, "{renamed:#}");
    let org = &renamed["data"]["updateOrganization"]["organization"];
    assert!(org["acronym"].is_null());
    // Created, linked, unlinked, renamed.
    assert_eq!(org["history"]["totalCount"], 4);

    let report = data(
        store,
        r#"{ report(id: "1") { totals { peopleReached fundingUsd } populationTypes { percent label }
             partnerCounts { role count } sections { kind title paragraphs } footnotes { text }
             sources { url label } sectors { sector { code } } partners { id } } }"#,
    )
    .await;
    let r = &report["report"];
    assert_eq!(r["totals"]["peopleReached"], 520_000);
    assert_eq!(r["totals"]["fundingUsd"], 70_000_000.0);
    assert_eq!(
        r["populationTypes"],
        json!([{ "percent": 34.0, "label": "In-destination" }])
    );
    assert_eq!(
        r["sources"],
        json!([{ "url": "https://www.r4v.info/en/peru", "label": "R4V Peru" }])
    );
    assert_eq!(r["sections"].as_array().unwrap().len(), 2);
    assert_eq!(r["sections"][0]["title"], "Situation overview");
    assert_eq!(r["sectors"].as_array().unwrap().len(), 12);
    assert_eq!(r["partners"], json!([]));
}
on_both_databases!(every_mutation_writes_what_it_says);

/// Large changes are read a few megabytes at a time: a history page stops early (and says
/// there is more), a replay goes on page after page, and a change too large to record is
/// refused with `CHANGE_TOO_LARGE`, writing nothing.
async fn large_changes_are_paged_by_bytes_and_capped(backend: Backend) {
    use async_graphql::futures_util::StreamExt;

    let test = peru_store(backend).await;
    let store = &test.store;
    let secret = token(store, Role::Admin, &[]).await;
    let start = revision_of_peru(store).await;
    let set_section = r#"mutation($rev: Int!, $paragraphs: [String!]!) {
        setSection(reportId: "1", expectedRevision: $rev, kind: RESPONSE, paragraphs: $paragraphs) { revision } }"#;
    let paragraphs = |letter: char, count: usize| -> Vec<String> {
        (0..count)
            .map(|i| format!("{i} {}.", letter.to_string().repeat(19_000)))
            .collect()
    };
    let mut rev = start;
    for letter in ['a', 'b', 'c'] {
        let response = execute_as(
            store,
            Some(&secret),
            set_section,
            json!({ "rev": rev, "paragraphs": paragraphs(letter, 250) }),
        )
        .await;
        assert_eq!(
            error_code(&response),
            None,
            "{}",
            &response.to_string()[..200]
        );
        rev = response["data"]["setSection"]["revision"].as_i64().unwrap();
    }

    // Each of the last two changes records about 9.5 MB (every paragraph before and after).
    let page = data(
        store,
        r#"{ report(id: "1") { history(first: 3) { pageInfo { hasNextPage endCursor } edges { node { revision } } } } }"#,
    )
    .await;
    let history = &page["report"]["history"];
    assert_eq!(
        history["edges"].as_array().unwrap().len(),
        1,
        "{}",
        history["pageInfo"]
    );
    assert_eq!(history["pageInfo"]["hasNextPage"], true);
    let mut seen = vec![history["edges"][0]["node"]["revision"].as_i64().unwrap()];
    let mut cursor = history["pageInfo"]["endCursor"]
        .as_str()
        .unwrap()
        .to_owned();
    loop {
        let page = data(
            store,
            &format!(r#"{{ report(id: "1") {{ history(first: 3, after: "{cursor}") {{ pageInfo {{ hasNextPage endCursor }} edges {{ node {{ revision }} }} }} }} }}"#),
        )
        .await;
        let history = &page["report"]["history"];
        for edge in history["edges"].as_array().unwrap() {
            seen.push(edge["node"]["revision"].as_i64().unwrap());
        }
        if history["pageInfo"]["hasNextPage"] != true {
            break;
        }
        cursor = history["pageInfo"]["endCursor"]
            .as_str()
            .unwrap()
            .to_owned();
    }
    assert_eq!(seen, vec![rev, rev - 1, rev - 2, start]);

    // A replay from the start goes through all of them, in order, page by page.
    let replay = store.watch(plangraph_persistence::ChangeFilter::default(), Some(start));
    let replayed: Vec<i64> = replay
        .take(3)
        .map(|r| r.expect("a change").revision)
        .collect()
        .await;
    assert_eq!(replayed, vec![rev - 2, rev - 1, rev]);

    // 500 paragraphs replaced by 500 others: about 19 MB before and after, over the cap.
    let big = execute_as(
        store,
        Some(&secret),
        set_section,
        json!({ "rev": rev, "paragraphs": paragraphs('d', 500) }),
    )
    .await;
    assert_eq!(error_code(&big), None);
    let rev = big["data"]["setSection"]["revision"].as_i64().unwrap();
    let before = store_checksum(store).await;
    let too_big = execute_as(
        store,
        Some(&secret),
        set_section,
        json!({ "rev": rev, "paragraphs": paragraphs('e', 500) }),
    )
    .await;
    assert_eq!(error_code(&too_big).as_deref(), Some("CHANGE_TOO_LARGE"));
    assert_eq!(store_checksum(store).await, before);
}
on_both_databases!(large_changes_are_paged_by_bytes_and_capped);
