//! `plangraph generate`: the synthetic data set is marked synthetic everywhere, never written
//! over a published report or a real organisation, and the same seed gives the same data.

use plangraph_domain::access::Actor;
use plangraph_domain::edit::{NewOrganization, OrganizationRole, ReportEdit, Text};
use plangraph_domain::synthetic::Plan;
use plangraph_domain::{PERU_2023_END_YEAR, parse_report, reference};
use plangraph_persistence::{CountryRef, ImportOptions, ReportImport, WriteRequest};
use plangraph_server::generate::generate;
use serde_json::Value;

use crate::on_both_databases;
use crate::support::writes::store_checksum;
use crate::support::{Backend, data, empty_store, peru_store};

fn plan() -> Plan {
    Plan {
        countries: 17,
        years: 2,
        last_year: 2024,
        ..Plan::default()
    }
}

/// Everything a dashboard reads, without row ids (a rerun replaces rows in place).
const EVERYTHING: &str = r#"{
  countries { iso3 reports { year title synthetic fundingSource
    totals { peopleInNeed peopleTargeted peopleReached requirementsUsd fundingUsd unmetUsd fundedPercent }
    sectors { sector { code } peopleTargeted peopleReached reachedPercent requirementsUsd fundingUsd fundedPercent }
    ageGender { position percent } populationTypes { label percent basis }
    partnerCounts { role count } partners { name ftsId synthetic refugeeAndMigrantLed } donors { name synthetic }
    sections { kind title paragraphs } footnotes { marker text } sources { url placement } } }
}"#;

async fn generated_data_is_synthetic_and_leaves_the_published_report_alone(backend: Backend) {
    let test = peru_store(backend).await;
    let store = &test.store;
    let peru_before = data(
        store,
        r#"{ country(iso3: "PER") { reports { id year title synthetic totals { peopleInNeed unmetUsd } sectors { peopleReached } partners { name } } } }"#,
    )
    .await;

    let summary = generate(store, &plan()).await.expect("generate");
    assert_eq!(summary.skipped_published, vec!["PER 2023".to_owned()]);
    assert_eq!(summary.reports_written, 17 * 2 - 1);
    assert_eq!(summary.organizations_created, 200);

    // The published report is exactly as it was; Peru's other year is synthetic.
    let peru_after = data(
        store,
        r#"{ country(iso3: "PER") { reports { id year title synthetic totals { peopleInNeed unmetUsd } sectors { peopleReached } partners { name } } } }"#,
    )
    .await;
    let revisions = data(
        store,
        r#"{ country(iso3: "PER") { report(year: 2023) { revision } } }"#,
    )
    .await;
    let reports = peru_after["country"]["reports"].as_array().expect("list");
    let published: Vec<&Value> = reports.iter().filter(|r| r["year"] == 2023).collect();
    assert_eq!(published.len(), 1);
    assert_eq!(*published[0], peru_before["country"]["reports"][0]);
    assert_eq!(published[0]["synthetic"], false);
    assert_eq!(published[0]["totals"]["peopleInNeed"], 2_060_000);
    let generated = reports.iter().find(|r| r["year"] == 2024).expect("2024");
    assert_eq!(generated["synthetic"], true);
    assert_eq!(generated["title"], "END-YEAR REPORT 2024 (SYNTHETIC)");

    // Marked synthetic everywhere: reports (filterable), organisations, the funding source.
    let counts = data(
        store,
        r#"{ synthetic: reports(filter: { synthetic: true }) { totalCount }
             published: reports(filter: { synthetic: false }) { totalCount }
             organizations(first: 100) { totalCount nodes { synthetic name } } }"#,
    )
    .await;
    assert_eq!(counts["synthetic"]["totalCount"], 33);
    assert_eq!(counts["published"]["totalCount"], 1);
    assert_eq!(counts["organizations"]["totalCount"], 200);
    for org in counts["organizations"]["nodes"].as_array().expect("list") {
        assert_eq!(org["synthetic"], true);
        assert!(
            org["name"]
                .as_str()
                .is_some_and(|n| n.contains("(synthetic "))
        );
    }
    let all = data(store, EVERYTHING).await;
    let mut synthetic_reports = 0;
    for country in all["countries"].as_array().expect("list") {
        for report in country["reports"].as_array().expect("list") {
            if report["synthetic"] == false {
                continue;
            }
            synthetic_reports += 1;
            assert_eq!(report["sectors"].as_array().map(Vec::len), Some(13));
            assert_eq!(report["partners"].as_array().map(Vec::len), Some(40));
            assert_eq!(report["donors"].as_array().map(Vec::len), Some(12));
            assert_eq!(
                report["fundingSource"],
                "Synthetic funding source (plangraph generate)"
            );
            let first = &report["sections"][0]["paragraphs"][0];
            assert!(
                first
                    .as_str()
                    .is_some_and(|p| p.starts_with("This report is synthetic"))
            );
        }
    }
    assert_eq!(synthetic_reports, 33);

    // A generated organisation is never linked to the published report.
    let synthetic_org = data(store, "{ organizations(first: 1) { nodes { id } } }").await;
    let org_id: i32 = synthetic_org["organizations"]["nodes"][0]["id"]
        .as_str()
        .and_then(|id| id.parse().ok())
        .expect("an organisation id");
    let peru_revision = revisions["country"]["report"]["revision"]
        .as_i64()
        .expect("a revision");
    let refused = store
        .write(
            &Actor::local("test"),
            WriteRequest::Edit {
                report_id: 1,
                expected_revision: peru_revision,
                edit: ReportEdit::LinkOrganization {
                    organization_id: org_id,
                    role: OrganizationRole::Partner,
                },
            },
        )
        .await
        .expect_err("refused");
    assert_eq!(refused.code(), "SYNTHETIC_MISMATCH");

    // The same seed again: nothing changes, organisations are found again.
    let again = generate(store, &plan()).await.expect("generate again");
    assert_eq!(again.reports_written, 0);
    assert_eq!(again.reports_unchanged, 33);
    assert_eq!(again.organizations_reused, 200);
    assert_eq!(data(store, EVERYTHING).await, all);
}
on_both_databases!(generated_data_is_synthetic_and_leaves_the_published_report_alone);

async fn generated_and_published_data_never_share_a_report(backend: Backend) {
    let peru = parse_report(PERU_2023_END_YEAR.as_bytes()).expect("parses");
    let country = CountryRef::from_reference(reference::country_by_iso3("PER").expect("PER"));
    let import = |synthetic: bool| ReportImport {
        document: &peru,
        country: country.clone(),
        source_name: "test".to_owned(),
        source_sha256: String::new(),
        synthetic,
        organizations: Vec::new(),
    };
    let write = |synthetic: bool| WriteRequest::Import {
        import: import(synthetic),
        options: ImportOptions {
            allow_removals: true,
            ..ImportOptions::default()
        },
    };
    let operator = Actor::local("test");

    // Synthetic data over the published report: refused, nothing written.
    let test = peru_store(backend).await;
    let before = store_checksum(&test.store).await;
    let err = test
        .store
        .write(&operator, write(true))
        .await
        .expect_err("refused");
    assert_eq!(err.code(), "SYNTHETIC_MISMATCH");
    assert!(err.to_string().contains("published report"), "{err}");
    assert_eq!(store_checksum(&test.store).await, before);

    // A published report over synthetic data: refused too.
    let test = empty_store(backend).await;
    test.store
        .write(&operator, write(true))
        .await
        .expect("synthetic copy");
    let before = store_checksum(&test.store).await;
    let err = test
        .store
        .write(&operator, write(false))
        .await
        .expect_err("refused");
    assert_eq!(err.code(), "SYNTHETIC_MISMATCH");
    assert!(
        err.to_string().contains("synthetic load-test data"),
        "{err}"
    );
    assert_eq!(store_checksum(&test.store).await, before);
}
on_both_databases!(generated_and_published_data_never_share_a_report);

async fn generate_never_takes_over_a_real_organisation(backend: Backend) {
    let test = peru_store(backend).await;
    let name = |t: &str| Text::parse("name", t).expect("text");
    test.store
        .write(
            &Actor::local("test"),
            WriteRequest::CreateOrganization(NewOrganization {
                name: name("A real partner"),
                acronym: None,
                org_type: None,
                refugee_and_migrant_led: false,
                fts_id: Some(name("syn-1-00007")),
                synthetic: false,
            }),
        )
        .await
        .expect("create");
    let before = store_checksum(&test.store).await;
    let err = generate(&test.store, &plan()).await.expect_err("refused");
    assert_eq!(err.code(), "GENERATE_REFUSED");
    assert!(err.to_string().contains("A real partner"), "{err}");
    assert_eq!(store_checksum(&test.store).await, before);
}
on_both_databases!(generate_never_takes_over_a_real_organisation);
