//! SQL statements per nested request are bounded by the query's depth, never by its rows.

use plangraph_domain::{PERU_2023_END_YEAR, parse_report};
use plangraph_persistence::{CountryRef, ReportImport, StatementCounter, Store};

use crate::on_both_databases;
use crate::support::{Backend, counted_store, data};

/// The dashboard's full nested query: countries → reports → sectors → sector → parent, and
/// every other relationship of a report (shared with the benchmark in `bench/`).
const NESTED: &str = include_str!("../../bench/nested.graphql");

/// Imports `countries` made-up countries with `years` reports each, all built from the Peru
/// document and marked synthetic (they exist only in this test's throwaway store).
async fn fill(store: &Store, countries: usize, years: i32) {
    let peru = parse_report(PERU_2023_END_YEAR.as_bytes()).expect("the Peru report parses");
    for c in 0..countries {
        let letters = [b'T', b'A' + (c / 26) as u8, b'A' + (c % 26) as u8];
        let iso3 = String::from_utf8(letters.to_vec()).expect("ASCII");
        for year in 2023 - years + 1..=2023 {
            let mut doc = peru.clone();
            doc.year = year;
            doc.title = format!("END-YEAR REPORT {year}");
            store
                .import_report(&ReportImport {
                    document: &doc,
                    country: CountryRef {
                        iso3: iso3.clone(),
                        name: format!("Test country {iso3}"),
                        platform_code: Some("GTRM".to_owned()),
                        sovereign: true,
                    },
                    source_name: "statement-count test".to_owned(),
                    source_sha256: String::new(),
                    synthetic: true,
                    organizations: Vec::new(),
                })
                .await
                .expect("import");
        }
    }
}

async fn statements_for(backend: Backend, countries: usize, years: i32) -> (u64, usize) {
    let (test, counter): (_, StatementCounter) = counted_store(backend).await;
    fill(&test.store, countries, years).await;
    counter.reset();
    let result = data(&test.store, NESTED).await;
    let reports: usize = result["countries"]
        .as_array()
        .expect("countries")
        .iter()
        .map(|c| c["reports"].as_array().map_or(0, Vec::len))
        .sum();
    (counter.get(), reports)
}

async fn nested_query_statements_do_not_grow_with_rows(backend: Backend) {
    let (one, one_reports) = statements_for(backend, 1, 1).await;
    let (many, many_reports) = statements_for(backend, 20, 3).await;
    println!(
        "{backend:?}: nested request cost {one} SQL statements for {one_reports} report, \
         {many} for {many_reports} reports"
    );
    assert_eq!(one_reports, 1);
    assert_eq!(many_reports, 60);
    assert_eq!(
        one, many,
        "1 country cost {one} statements, 20 countries × 3 reports cost {many}"
    );
    // One per relationship level of the query (sections cost two: sections, paragraphs).
    assert!(one <= 20, "{one} statements for one nested request");
}
on_both_databases!(nested_query_statements_do_not_grow_with_rows);

/// A connection counts its rows only when `totalCount` is selected: the count is a statement of
/// its own.
async fn connections_count_only_when_asked(backend: Backend) {
    let (test, counter): (_, StatementCounter) = counted_store(backend).await;
    // Three countries with two reports each, every report with its import in the history.
    fill(&test.store, 3, 2).await;
    for (query, expected) in [
        ("{ reports(first: 5) { edges { node { id } } } }", 1),
        (
            "{ reports(first: 5) { totalCount edges { node { id } } } }",
            2,
        ),
        ("{ organizations { pageInfo { hasNextPage } } }", 1),
        // Root lists batch through the loaders: aliases of one list cost one statement.
        (
            "{ a: countries { iso3 } b: countries { name } c: sectors { code } d: sectors { name } }",
            2,
        ),
        ("{ organizations { totalCount } }", 2),
        // A history page: changes ranked on narrow columns, then the kept ones read whole.
        (
            r#"{ report(id: "1") { history { edges { node { revision } } } } }"#,
            3,
        ),
        (
            r#"{ report(id: "1") { history { totalCount edges { node { revision } } } } }"#,
            4,
        ),
        // Histories of six reports: two statements for the pages, one for the counts.
        (
            "{ countries { reports { history(first: 2) { totalCount edges { node { revision } } } } } }",
            5,
        ),
    ] {
        counter.reset();
        data(&test.store, query).await;
        assert_eq!(counter.get(), expected, "{query}");
    }
}
on_both_databases!(connections_count_only_when_asked);
