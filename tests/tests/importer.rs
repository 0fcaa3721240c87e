//! The importer: broken reports are errors naming the line and change nothing; consistency
//! problems are warnings; importing again replaces in place.

use plangraph_domain::PERU_2023_END_YEAR;
use plangraph_domain::importer::ImportError;
use plangraph_server::{CliError, import_report};
use serde_json::Value;

use crate::on_both_databases;
use crate::support::{Backend, data, peru_store};

/// Everything the store serves about its reports, to compare before and after.
async fn snapshot(store: &plangraph_persistence::Store) -> Value {
    data(
        store,
        r#"{ reports(first: 100) { totalCount edges { node { id year title
              totals { peopleInNeed requirementsUsd }
              sectors { peopleTargeted peopleReached fundingUsd printed { heading } }
              ageGender { percent } populationTypes { percent } partnerCounts { role count }
              sections { paragraphs } footnotes { text } sources { url }
              provenance { sha256 } } } } countries { iso3 } }"#,
    )
    .await
}

/// The 1-based line of the first line equal to `text`.
fn line_of(text: &str) -> usize {
    PERU_2023_END_YEAR
        .lines()
        .position(|l| l.trim() == text)
        .map(|i| i + 1)
        .expect("line present in the report")
}

fn broken_copies() -> Vec<(&'static str, Vec<u8>, &'static str, usize)> {
    let lines: Vec<&str> = PERU_2023_END_YEAR.lines().collect();
    let truncated = lines[..40].join("\n");
    let garbled = PERU_2023_END_YEAR.replacen("$6.72 M", "$6.7x2 M", 1);
    let without_totals = PERU_2023_END_YEAR.replacen("2.06 M 990.2 K 513.6 K\n", "", 1);
    let mut junk: Vec<u8> = (0..=255u8).cycle().take(4096).collect();
    junk.splice(0..0, b"\x89PNG\r\n".iter().copied());
    vec![
        ("empty", Vec::new(), "REPORT_EMPTY", 1),
        ("binary junk", junk, "REPORT_NOT_TEXT", 1),
        (
            "truncated",
            truncated.into_bytes(),
            "REPORT_UNEXPECTED_TEXT",
            40,
        ),
        (
            "garbled number",
            garbled.into_bytes(),
            "REPORT_BAD_NUMBER",
            line_of("EDUCATION 103.3 K 37.4 K 36.2% $22.68 M $6.72 M 29.6%"),
        ),
        (
            "missing totals",
            without_totals.into_bytes(),
            "REPORT_UNEXPECTED_TEXT",
            // The line after the people-totals labels, where the figures should have been.
            line_of("AGE AND GENDER DISAGGREGATION") - 1,
        ),
    ]
}

async fn broken_reports_are_line_numbered_errors_and_change_nothing(backend: Backend) {
    let test = peru_store(backend).await;
    let before = snapshot(&test.store).await;
    for (name, bytes, code, line) in broken_copies() {
        let result = import_report(&test.store, &bytes, "copy-peru.txt", Some("PER")).await;
        match result {
            Err(CliError::Import(ImportError::Report { error: source, .. })) => {
                assert_eq!(source.kind.code(), code, "{name}: {source}");
                assert_eq!(source.line, line, "{name}: {source}");
                assert!(source.to_string().starts_with(&format!("line {line}: ")));
            }
            other => panic!("{name}: expected a report error, got {other:?}"),
        }
        assert_eq!(
            snapshot(&test.store).await,
            before,
            "{name} changed the store"
        );
    }
}
on_both_databases!(broken_reports_are_line_numbered_errors_and_change_nothing);

async fn an_altered_figure_gives_exactly_its_warning(backend: Backend) {
    let test = peru_store(backend).await;
    let line = line_of("EDUCATION 103.3 K 37.4 K 36.2% $22.68 M $6.72 M 29.6%");
    let altered =
        PERU_2023_END_YEAR.replacen("EDUCATION 103.3 K 37.4 K", "EDUCATION 103.3 K 57.4 K", 1);
    let summary = import_report(
        &test.store,
        altered.as_bytes(),
        "rmrp-2023-end-year-report-peru.txt",
        None,
    )
    .await
    .expect("an inconsistent figure is a warning, not an error");
    assert_eq!(summary.warnings.len(), 1, "{:?}", summary.warnings);
    let warning = &summary.warnings[0];
    assert_eq!(warning.check.code(), "REACHED_PERCENT_MISMATCH");
    assert_eq!(warning.line, line);
    assert_eq!(warning.subject, "EDUCATION");
    assert_eq!(warning.printed, "36.2%");
    assert_eq!(warning.computed, "55.6%");
    assert_eq!(warning.formula, "57.4 K ÷ 103.3 K");
}
on_both_databases!(an_altered_figure_gives_exactly_its_warning);

async fn importing_again_replaces_in_place(backend: Backend) {
    let test = peru_store(backend).await;
    let first = data(
        &test.store,
        r#"{ country(iso3: "PER") { report(year: 2023) { id } } }"#,
    )
    .await;
    let again = import_report(
        &test.store,
        PERU_2023_END_YEAR.as_bytes(),
        "rmrp-2023-end-year-report-peru.txt",
        None,
    )
    .await
    .expect("re-import");
    assert!(again.outcome.replaced);
    assert_eq!(
        first["country"]["report"]["id"],
        again
            .report_id()
            .map(|id| id.to_string())
            .unwrap_or_default()
    );
    let after = data(
        &test.store,
        r#"{ reports { totalCount } country(iso3: "PER") { reports { sectors { peopleTargeted } sections { kind } footnotes { marker } sources { url } } } }"#,
    )
    .await;
    assert_eq!(after["reports"]["totalCount"], 1);
    let report = &after["country"]["reports"][0];
    assert_eq!(report["sectors"].as_array().map(Vec::len), Some(13));
    assert_eq!(report["sections"].as_array().map(Vec::len), Some(3));
    assert_eq!(report["footnotes"].as_array().map(Vec::len), Some(2));
    assert_eq!(report["sources"].as_array().map(Vec::len), Some(6));
}
on_both_databases!(importing_again_replaces_in_place);

async fn concurrent_imports_of_one_report_leave_one_report(backend: Backend) {
    let test = crate::support::empty_store(backend).await;
    let imports: Vec<_> = (0..6)
        .map(|_| {
            let store = test.store.clone();
            tokio::spawn(async move {
                import_report(
                    &store,
                    PERU_2023_END_YEAR.as_bytes(),
                    "rmrp-2023-end-year-report-peru.txt",
                    None,
                )
                .await
                .map(|summary| summary.report_id())
            })
        })
        .collect();
    let mut ids = Vec::new();
    for import in imports {
        ids.push(import.await.expect("task").expect("every import succeeds"));
    }
    assert!(ids.iter().all(|id| *id == ids[0]), "{ids:?}");
    let after = data(
        &test.store,
        r#"{ reports { totalCount } country(iso3: "PER") { reports { sectors { peopleTargeted } ageGender { percent } sections { paragraphs } footnotes { marker } sources { url } partnerCounts { count } } } }"#,
    )
    .await;
    assert_eq!(after["reports"]["totalCount"], 1);
    let report = &after["country"]["reports"][0];
    let len = |field: &str| report[field].as_array().map(Vec::len);
    assert_eq!(
        [
            len("sectors"),
            len("ageGender"),
            len("sections"),
            len("footnotes"),
            len("sources"),
            len("partnerCounts")
        ],
        [Some(13), Some(4), Some(3), Some(2), Some(6), Some(4)]
    );
}
on_both_databases!(
    concurrent_imports_of_one_report_leave_one_report,
    multi_thread
);

async fn the_country_must_be_known(backend: Backend) {
    let test = peru_store(backend).await;
    let before = snapshot(&test.store).await;
    let unnamed = import_report(
        &test.store,
        PERU_2023_END_YEAR.as_bytes(),
        "report.txt",
        None,
    )
    .await;
    assert!(
        matches!(
            unnamed,
            Err(CliError::Import(ImportError::UnknownCountry { .. }))
        ),
        "{unnamed:?}"
    );
    let wrong = import_report(
        &test.store,
        PERU_2023_END_YEAR.as_bytes(),
        "report.txt",
        Some("XXX"),
    )
    .await;
    assert_eq!(
        wrong.map_err(|e| e.code()).err(),
        Some("IMPORT_NOT_A_COUNTRY")
    );
    assert_eq!(snapshot(&test.store).await, before);
}
on_both_databases!(the_country_must_be_known);
