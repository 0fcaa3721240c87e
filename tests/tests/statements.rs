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
    // Three reports: more than are read together (see `MAX_REPORTS_READ_TOGETHER`), so both
    // runs read their child tables the same way.
    let (one, one_reports) = statements_for(backend, 1, 3).await;
    let (many, many_reports) = statements_for(backend, 20, 3).await;
    println!(
        "{backend:?}: nested request cost {one} SQL statements for {one_reports} reports, \
         {many} for {many_reports} reports"
    );
    assert_eq!(one_reports, 3);
    assert_eq!(many_reports, 60);
    const { assert!(3 > plangraph_persistence::MAX_REPORTS_READ_TOGETHER) };
    // The same but for one statement: a report is read with its plan, country, platform and
    // totals joined to it, and `countries { platform reports }` asks for a platform beside the
    // reports that carry it, so the platform's own statement runs or not as the two loads of
    // that level happen to take turns on the connection. Growing with the rows would cost
    // statements per country or per report, far more than one.
    assert!(
        one.abs_diff(many) <= 1,
        "1 country × 3 reports cost {one} statements, 20 countries × 3 reports cost {many}"
    );
    // One per table the query reaches, a report's plan, country, platform and totals joined to
    // it (and its sections with their paragraphs, its organisations with their links, one
    // joined statement each): 11 or 12 on both databases, was 17. (A level of more than two
    // reports reads its child tables one by one on Postgres too: as JSON, thousands of rows
    // would cost more than the statements saved.)
    assert!(
        one.max(many) <= 12,
        "{one} / {many} statements for one nested request"
    );
}
on_both_databases!(nested_query_statements_do_not_grow_with_rows);

/// A connection counts its rows only when `totalCount` is selected: the reports' count is read
/// in the page's statement, the organisations' is a statement of its own.
async fn connections_count_only_when_asked(backend: Backend) {
    let (test, counter): (_, StatementCounter) = counted_store(backend).await;
    // Three countries with two reports each, every report with its import in the history.
    fill(&test.store, 3, 2).await;
    for (query, expected) in [
        ("{ reports(first: 5) { edges { node { id } } } }", 1),
        (
            "{ reports(first: 5) { totalCount edges { node { id } } } }",
            1,
        ),
        // An empty page has no row to carry the count: it is counted apart.
        (
            r#"{ reports(first: 5, after: "id:1000") { totalCount edges { node { id } } } }"#,
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

/// The benchmark's report in full depth (`bench/queries/report.plangraph.graphql`).
const REPORT: &str = include_str!("../../bench/queries/report.plangraph.graphql");

/// Every cache off: what the engine alone runs for one report in full depth, none for a store
/// version. On SQLite one statement per table the selection reaches, the rows a report points
/// to joined to it (and its sections with their paragraphs, its organisations with their
/// links); on Postgres all of it in one statement.
async fn a_report_in_full_depth_costs_one_statement_on_postgres(backend: Backend) {
    let (test, counter): (_, StatementCounter) = counted_store(backend).await;
    fill(&test.store, 1, 1).await;
    let api = engine_alone(&test.store, plangraph_api::QueryLimits::default().timeout);
    let request = async_graphql::Request::new(REPORT).variables(
        async_graphql::Variables::from_json(serde_json::json!({"id": "1"})),
    );
    counter.reset();
    let response = serde_json::to_value(api.execute(request).await).expect("JSON");
    assert!(response.get("errors").is_none(), "{response:#}");
    let sections = &response["data"]["report"]["sections"];
    assert!(
        sections.as_array().is_some_and(|s| !s.is_empty()),
        "{response:#}"
    );
    let statements = counter.get();
    println!("{backend:?}: the report in full depth cost {statements} statements");
    let most = match backend {
        // One statement: the report with its plan, country, platform and totals, and every
        // child table the selection asks for (sector rows with their sectors, parents and
        // sub-sectors, shares, partner counts, organisations, sections, footnotes, sources).
        Backend::Postgres => 1,
        // Table by table (no round trips to save): the report with its parts; sector rows,
        // sectors, sub-sectors, shares, partner counts, organisations, sections, footnotes,
        // sources.
        Backend::Sqlite => 10,
    };
    assert!(statements <= most, "{statements} statements");
}
on_both_databases!(a_report_in_full_depth_costs_one_statement_on_postgres);

/// A report id no report has, asked for in full depth: null, no error, on both databases;
/// on Postgres the statement reading the report with its child tables finds no row, and the
/// report's own loader looks once more (two statements).
async fn an_unknown_report_in_full_depth_is_null(backend: Backend) {
    let (test, counter): (_, StatementCounter) = counted_store(backend).await;
    fill(&test.store, 1, 1).await;
    let api = engine_alone(&test.store, plangraph_api::QueryLimits::default().timeout);
    counter.reset();
    let request = async_graphql::Request::new(REPORT).variables(
        async_graphql::Variables::from_json(serde_json::json!({"id": "4242"})),
    );
    let response = serde_json::to_value(api.execute(request).await).expect("JSON");
    assert_eq!(response, serde_json::json!({"data": {"report": null}}));
    assert!(counter.get() <= 2, "{} statements", counter.get());
}
on_both_databases!(an_unknown_report_in_full_depth_is_null);

/// Postgres: the statement reading a report's child tables is planned once per connection,
/// not at every execution. Prepared with the report's id in an array, Postgres planned it
/// again for each request (the plan for the bound array looked cheaper than the generic one),
/// which took more than a third of its CPU on a report in full depth.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_report_children_statement_is_planned_once() {
    let (test, _counter): (_, StatementCounter) = counted_store(Backend::Postgres).await;
    fill(&test.store, 1, 1).await;
    let api = engine_alone(&test.store, plangraph_api::QueryLimits::default().timeout);
    const RUNS: i64 = 20;
    for _ in 0..RUNS {
        let request = async_graphql::Request::new(REPORT).variables(
            async_graphql::Variables::from_json(serde_json::json!({"id": "1"})),
        );
        let response = api.execute(request).await;
        assert!(response.errors.is_empty(), "{:?}", response.errors);
    }
    every_connection_idle(Backend::Postgres, &test.store).await;
    // Every connection of the pool at once, so each one's prepared statements are read.
    let pool = test.store.connection().get_postgres_connection_pool();
    let mut connections = Vec::new();
    for _ in 0..pool.size() {
        connections.push(pool.acquire().await.expect("a pooled connection"));
    }
    let (mut generic, mut custom) = (0, 0);
    for connection in &mut connections {
        let (g, c): (i64, i64) = sea_orm::sqlx::query_as(
            "SELECT coalesce(sum(generic_plans), 0)::int8, coalesce(sum(custom_plans), 0)::int8 \
             FROM pg_prepared_statements WHERE statement LIKE '%AS report_id%'",
        )
        .fetch_one(&mut **connection)
        .await
        .expect("pg_prepared_statements");
        generic += g;
        custom += c;
    }
    println!(
        "{RUNS} reports on {} connections: {generic} generic plans, {custom} custom",
        connections.len()
    );
    assert!(
        generic + custom >= RUNS,
        "every run reads the child tables together: {generic} generic plans, {custom} custom"
    );
    // Postgres makes five plans for the bound values before it weighs the generic one.
    assert!(
        custom <= 5 * connections.len() as i64 && generic > 0,
        "planned again at each run: {generic} generic plans, {custom} custom"
    );
}

/// A query's reads share one pooled connection (Postgres) and give it back when the query has
/// executed: after many queries at once, however they ended, every connection is idle again.
async fn a_query_gives_its_connection_back(backend: Backend) {
    let (test, _counter): (_, StatementCounter) = counted_store(backend).await;
    fill(&test.store, 2, 2).await;
    let api = plangraph_api::Api::new(test.store.clone());
    let queries = (0..40).map(|n| {
        let api = api.clone();
        async move {
            // A third ask for a sector no report has (null); a third read histories and the
            // organisations listing, whose reads once took a second connection beside the
            // held one (with more such queries than connections, they waited on each other
            // until the pool's timeout).
            let query = match n % 3 {
                0 => NESTED.to_owned(),
                1 => r#"{ countries { reports { sector(code: "NOPE") { peopleReached } } } }"#
                    .to_owned(),
                _ => concat!(
                    "{ countries { reports { history(first: 1) { edges { node { revision } } } } } ",
                    "organizations { totalCount } }"
                )
                    .to_owned(),
            };
            api.execute(query).await
        }
    });
    for response in async_graphql::futures_util::future::join_all(queries).await {
        assert!(response.errors.is_empty(), "{:?}", response.errors);
    }
    every_connection_idle(backend, &test.store).await;
    // And the store still answers.
    let data = crate::support::data(&test.store, "{ countries { iso3 } }").await;
    assert_eq!(data["countries"].as_array().map(Vec::len), Some(2));
}
on_both_databases!(a_query_gives_its_connection_back);

/// `{ __typename }` reads nothing from the store: once its parse is kept, not even the store
/// version (the response cache and kept rows on, as shipped).
async fn typename_reads_no_version(backend: Backend) {
    let (test, counter): (_, StatementCounter) = counted_store(backend).await;
    let api = plangraph_api::Api::new(test.store.clone());
    api.execute("{ __typename }").await;
    counter.reset();
    for _ in 0..3 {
        let response = api.execute("{ __typename }").await;
        assert!(response.errors.is_empty());
    }
    assert_eq!(counter.get(), 0, "statements for {{ __typename }}");
    // A query that reads does read the version (and its rows).
    api.execute("{ countries { iso3 } }").await;
    assert!(counter.get() >= 1);
}
on_both_databases!(typename_reads_no_version);

/// A query cut short by its time budget (1 ms) does not keep its held connection: once the
/// cut-short queries are answered, every connection of the pool is idle again within seconds.
async fn a_timed_out_query_gives_its_connection_back(backend: Backend) {
    let (test, _counter): (_, StatementCounter) = counted_store(backend).await;
    fill(&test.store, 3, 2).await;
    let api = engine_alone(&test.store, std::time::Duration::from_millis(1));
    let queries = (0..16).map(|_| api.execute(NESTED));
    let responses = async_graphql::futures_util::future::join_all(queries).await;
    let timed_out = responses
        .iter()
        .filter(|r| {
            r.errors.iter().any(|e| {
                e.extensions
                    .as_ref()
                    .and_then(|x| x.get("code"))
                    .is_some_and(|c| c.to_string().contains("QUERY_TIMEOUT"))
            })
        })
        .count();
    assert!(timed_out > 0, "no query was cut short");
    every_connection_idle(backend, &test.store).await;
}
on_both_databases!(a_timed_out_query_gives_its_connection_back);

/// Postgres reads a level of reports' child tables in one statement of JSON aggregates,
/// SQLite table by table: on the same generated data (partners and donors, sections,
/// footnotes, sources, sub-sectors) both answer every shape alike, in the same order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn child_tables_read_together_answer_as_read_apart() {
    let plan = plangraph_domain::synthetic::Plan {
        countries: 3,
        years: 2,
        organizations: 30,
        partners_per_report: 8,
        donors_per_report: 3,
        ..plangraph_domain::synthetic::Plan::default()
    };
    let mut answers = Vec::new();
    for backend in [Backend::Sqlite, Backend::Postgres] {
        let test = crate::support::empty_store(backend).await;
        plangraph_server::generate::generate(&test.store, &plan)
            .await
            .expect("generate");
        let api = engine_alone(&test.store, plangraph_api::QueryLimits::default().timeout);
        let mut shapes = Vec::new();
        for (query, variables) in [
            (REPORT, serde_json::json!({"id": "1"})),
            (REPORT, serde_json::json!({"id": "2"})),
            (REPORT, serde_json::json!({"id": "999"})),
            (NESTED, serde_json::json!({})),
            (CHILDREN_THROUGH_FRAGMENTS, serde_json::json!({})),
        ] {
            let request = async_graphql::Request::new(query)
                .variables(async_graphql::Variables::from_json(variables));
            let response = serde_json::to_value(api.execute(request).await).expect("JSON");
            assert!(response.get("errors").is_none(), "{response:#}");
            shapes.push(response);
        }
        answers.push(shapes);
    }
    let report = &answers[1][1]["data"]["report"];
    for list in [
        "sectors",
        "partners",
        "donors",
        "sections",
        "footnotes",
        "sources",
    ] {
        assert!(
            report[list].as_array().is_some_and(|l| !l.is_empty()),
            "report 2 has {list}: {report:#}"
        );
    }
    // Sub-sectors handed over from the statement that reads the rows: both kinds of row are
    // compared, a sector with sub-sectors and one without.
    let subs: Vec<usize> = report["sectors"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|row| row["sector"]["subSectors"].as_array().map(Vec::len))
        .collect();
    assert!(
        subs.iter().any(|n| *n > 0) && subs.contains(&0),
        "report 2's rows have sectors with and without sub-sectors: {subs:?}"
    );
    // The fragments' query reaches every path it names (none of them null or missing).
    let fragments = &answers[1][4]["data"];
    for (path, what) in [
        (
            "/reports/nodes/1/sections/0/paragraphs/0",
            "a page's paragraphs",
        ),
        ("/reports/nodes/1/partners/0/name", "a page's partners"),
        ("/reports/edges/1/node/sources/0/url", "a page's sources"),
        (
            "/country/report/ageGender/0/percent",
            "a country's report's shares",
        ),
        ("/country/report/sector/peopleReached", "a sector by code"),
        (
            "/country/reports/0/sectors/0/sector/code",
            "a year's sector rows",
        ),
        (
            "/two/reports/1/sectors/0/peopleReached",
            "a country's two reports' rows",
        ),
        (
            "/two/reports/1/footnotes/0/marker",
            "a country's two reports' footnotes",
        ),
    ] {
        assert!(
            fragments.pointer(path).is_some_and(|v| !v.is_null()),
            "{what} ({path}): {fragments:#}"
        );
    }
    assert_eq!(answers[0], answers[1]);
}

/// Child tables asked for through fragments, on a page of two reports and a country's two
/// reports (read together on Postgres), and on one country's report of a year.
const CHILDREN_THROUGH_FRAGMENTS: &str = r#"
fragment Printed on Report { sections { kind title paragraphs } footnotes { marker text } }
query {
  reports(first: 2) {
    nodes { id ...Printed ... on Report { partners { name } donors { acronym } } }
    edges { node { sources { url } partnerCounts { role count } } }
  }
  country(iso3: "ARG") {
    report(year: 2023) { ageGender { percent } populationTypes { label } sector(code: "EDU") { peopleReached } }
    reports(year: 2024) { id sectors { sector { code parent { code } subSectors { code } } } }
  }
  two: country(iso3: "ABW") {
    reports { id ...Printed partners { name } sources { url } sectors { peopleReached sector { code } } }
  }
}
"#;

/// The API over `store` with every cache off (the engine alone), within `timeout`.
fn engine_alone(store: &Store, timeout: std::time::Duration) -> plangraph_api::Api {
    let limits = plangraph_api::QueryLimits {
        timeout,
        response_cache_bytes: 0,
        row_cache_bytes: 0,
        ..plangraph_api::QueryLimits::default()
    };
    plangraph_api::Api::with_all_limits(
        store.clone(),
        plangraph_api::WriteLimits::default(),
        limits,
    )
}

/// On Postgres: waits up to 5 s for every connection of the readers' pool to be idle, and fails
/// if one is still held then (SQLite holds none).
async fn every_connection_idle(backend: Backend, store: &Store) {
    if backend != Backend::Postgres {
        return;
    }
    let pool = store.connection().get_postgres_connection_pool();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while pool.num_idle() < pool.size() as usize && std::time::Instant::now() < deadline {
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert_eq!(
        pool.num_idle(),
        pool.size() as usize,
        "connections still held"
    );
}
