//! Reports in and out: the JSON round trip, the published figures in every table format, every
//! bad file refused by code and place with the store unchanged, bulk loads, `GET /export`.

use std::io::Cursor;

use actix_web::App;
use actix_web::test as web;
use calamine::{Data, Reader, Xlsx};
use plangraph_domain::access::Actor;
use plangraph_domain::synthetic::Plan;
use plangraph_exchange::apply::{self, ApplyOptions};
use plangraph_exchange::{ApplyError, Export, Format, Selection};
use plangraph_persistence::Store;
use plangraph_server::{AppState, configure};

use crate::figures::ROWS;
use crate::on_both_databases;
use crate::support::server::{binary, plangraph};
use crate::support::writes::store_checksum;
use crate::support::{Backend, data, empty_store, peru_store};

async fn export(store: &Store, selection: &Selection, format: Format) -> Vec<u8> {
    let mut running = Export::start(store, selection, format)
        .await
        .expect("start the export");
    let mut out = Vec::new();
    while let Some(chunk) = running.next_chunk().await.expect("a chunk") {
        out.extend(chunk);
    }
    out
}

fn everything() -> Selection {
    Selection::default()
}

/// Imports a JSON file through the write path, as the operator.
async fn import_json(
    store: &Store,
    bytes: &[u8],
    options: &ApplyOptions,
) -> Result<Vec<apply::Applied>, ApplyError> {
    let docs = apply::read_json(bytes, "test.json", options.country.as_deref())?;
    apply::apply_documents(store, &Actor::local("test"), "test.json", &docs, options).await
}

async fn import_table(
    store: &Store,
    bytes: &[u8],
    options: &ApplyOptions,
) -> Result<(), ApplyError> {
    let reports = apply::read_table(store, bytes, "test.csv", options.country.as_deref()).await?;
    apply::apply_table(store, &Actor::local("test"), "test.csv", reports, options).await?;
    Ok(())
}

/// Checks `document` against the published JSON Schema with Python's `jsonschema` (a
/// validator written by others, so the schema file is held to what the exporter writes).
fn conforms_to_the_published_schema(document: &[u8]) {
    let dir = tempfile::tempdir().expect("a directory");
    let path = dir.path().join("export.json");
    std::fs::write(&path, document).expect("write");
    let schema =
        crate::support::server::repo_root().join("crates/exchange/schema/report-v1.schema.json");
    let python = std::env::var("PLANGRAPH_PYTHON").unwrap_or_else(|_| "python3".to_owned());
    let check = "import json, sys, jsonschema\n\
schema = json.load(open(sys.argv[1]))\n\
doc = json.load(open(sys.argv[2]))\n\
jsonschema.Draft202012Validator.check_schema(schema)\n\
jsonschema.validate(doc, schema, format_checker=jsonschema.FormatChecker())\n\
for report in doc['reports']:\n    jsonschema.validate(report, schema)\n";
    let out = std::process::Command::new(&python)
        .args(["-c", check])
        .arg(&schema)
        .arg(&path)
        .output()
        .unwrap_or_else(|e| panic!("run {python} (PLANGRAPH_PYTHON) with jsonschema: {e}"));
    assert!(
        out.status.success(),
        "the export does not conform to the published schema: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// JSON out of a store, into an empty one, out again: the same bytes, for the Peru report and
/// for a generated data set (organisations and all); both conform to the published schema.
async fn json_round_trip_is_byte_equal(backend: Backend) {
    let peru = peru_store(backend).await;
    let first = export(&peru.store, &everything(), Format::Json).await;
    conforms_to_the_published_schema(&first);
    let empty = empty_store(backend).await;
    let applied = import_json(&empty.store, &first, &ApplyOptions::default())
        .await
        .expect("import the export");
    assert_eq!(applied.len(), 1);
    let again = export(&empty.store, &everything(), Format::Json).await;
    assert_eq!(
        String::from_utf8_lossy(&first),
        String::from_utf8_lossy(&again)
    );

    let generated = empty_store(backend).await;
    let plan = Plan {
        countries: 3,
        years: 2,
        last_year: 2024,
        organizations: 30,
        partners_per_report: 8,
        donors_per_report: 3,
        ..Plan::default()
    };
    plangraph_server::generate::generate(&generated.store, &plan)
        .await
        .expect("generate");
    let first = export(&generated.store, &everything(), Format::Json).await;
    conforms_to_the_published_schema(&first);
    let text = String::from_utf8_lossy(&first);
    assert!(
        text.contains("\"synthetic\": true"),
        "generated reports say so"
    );
    assert!(
        text.contains("\"organizations\": [\n    {"),
        "with their organisations"
    );
    let empty = empty_store(backend).await;
    let applied = import_json(&empty.store, &first, &ApplyOptions::default())
        .await
        .expect("import the generated export");
    assert_eq!(
        applied.len(),
        7,
        "6 generated reports and the bundled Peru report"
    );
    let again = export(&empty.store, &everything(), Format::Json).await;
    assert_eq!(text, String::from_utf8_lossy(&again));
    // Imported again: every report unchanged, nothing recorded.
    let applied = import_json(&empty.store, &first, &ApplyOptions::default())
        .await
        .expect("re-import");
    assert!(applied.iter().all(|a| a.outcome.change.is_none()));
}
on_both_databases!(json_round_trip_is_byte_equal);

/// The figure a CSV row holds, by column name.
fn column(header: &csv::StringRecord, row: &csv::StringRecord, name: &str) -> String {
    let i = header
        .iter()
        .position(|h| h == name)
        .unwrap_or_else(|| panic!("no column {name}"));
    row[i].to_owned()
}

fn percent(value: f64) -> String {
    plangraph_exchange::table::percent_text(value)
}

fn check_table(text: &str, hxl: bool) {
    let mut reader = csv::ReaderBuilder::new().from_reader(text.as_bytes());
    let header = reader.headers().expect("a header").clone();
    let mut records: Vec<csv::StringRecord> = reader.records().map(|r| r.expect("a row")).collect();
    if hxl {
        let tags = records.remove(0);
        assert_eq!(column(&header, &tags, "country_code"), "#country+code");
        assert_eq!(column(&header, &tags, "people_targeted"), "#targeted");
        assert_eq!(
            column(&header, &tags, "requirements_usd"),
            "#value+required+usd"
        );
        assert_eq!(column(&header, &tags, "funding_usd"), "#value+funding+usd");
        assert_eq!(column(&header, &tags, "sector_code"), "#sector+code");
    }
    assert_eq!(records.len(), ROWS.len(), "one row per printed sector");
    for (row, expected) in records.iter().zip(ROWS.iter()) {
        let c = |name| column(&header, row, name);
        assert_eq!(
            (c("country_code"), c("year"), c("report_kind")),
            ("PER".into(), "2023".into(), "END_YEAR".into())
        );
        assert_eq!(c("sector_code"), expected.code);
        assert_eq!(c("parent_sector_code"), expected.parent.unwrap_or(""));
        assert_eq!(c("people_targeted_printed"), expected.targeted.0);
        assert_eq!(c("people_targeted"), expected.targeted.1.to_string());
        assert_eq!(c("people_reached_printed"), expected.reached.0);
        assert_eq!(c("people_reached"), expected.reached.1.to_string());
        assert_eq!(c("reached_percent_printed"), expected.reached_pct.0);
        assert_eq!(c("reached_percent"), percent(expected.reached_pct.1));
        assert_eq!(c("requirements_printed"), expected.requirements.0);
        assert_eq!(
            c("requirements_usd"),
            (expected.requirements.1 as i64).to_string()
        );
        assert_eq!(c("funding_printed"), expected.funding.0);
        assert_eq!(c("funding_usd"), (expected.funding.1 as i64).to_string());
        assert_eq!(c("funded_percent_printed"), expected.funded_pct.0);
        assert_eq!(c("funded_percent"), percent(expected.funded_pct.1));
        assert_eq!(c("synthetic"), "false");
    }
}

/// The CSV, HXL and xlsx exports of the Peru report carry exactly the published figures (the
/// same table the API's figures test reads), the workbook read back with calamine.
async fn tables_carry_the_published_figures(backend: Backend) {
    let peru = peru_store(backend).await;
    let selection = Selection {
        country_iso3: Some("PER".into()),
        year: Some(2023),
        ..Selection::default()
    };
    let csv = export(&peru.store, &selection, Format::Csv).await;
    check_table(&String::from_utf8(csv).expect("UTF-8"), false);
    let hxl = export(&peru.store, &selection, Format::Hxl).await;
    check_table(&String::from_utf8(hxl).expect("UTF-8"), true);

    let xlsx = export(&peru.store, &selection, Format::Xlsx).await;
    let mut book: Xlsx<_> = Xlsx::new(Cursor::new(xlsx)).expect("a workbook calamine reads");
    assert_eq!(
        book.sheet_names(),
        ["Totals", "Sectors", "Shares", "Partner counts", "Sources"]
    );
    let sectors = book.worksheet_range("Sectors").expect("the Sectors sheet");
    let rows: Vec<&[Data]> = sectors.rows().collect();
    let header: Vec<String> = rows[0].iter().map(|c| c.to_string()).collect();
    let at = |name: &str| header.iter().position(|h| h == name).expect(name);
    assert_eq!(rows.len() - 1, ROWS.len());
    for (row, expected) in rows[1..].iter().zip(ROWS.iter()) {
        assert_eq!(row[at("sector_code")], Data::String(expected.code.into()));
        // Typed numeric cells, exactly the published numbers.
        assert_eq!(
            row[at("people_targeted")],
            Data::Float(expected.targeted.1 as f64)
        );
        assert_eq!(
            row[at("people_reached")],
            Data::Float(expected.reached.1 as f64)
        );
        assert_eq!(
            row[at("reached_percent")],
            Data::Float(expected.reached_pct.1)
        );
        assert_eq!(
            row[at("requirements_usd")],
            Data::Float(expected.requirements.1)
        );
        assert_eq!(row[at("funding_usd")], Data::Float(expected.funding.1));
        assert_eq!(
            row[at("funded_percent")],
            Data::Float(expected.funded_pct.1)
        );
        assert_eq!(
            row[at("funding_printed")],
            Data::String(expected.funding.0.into())
        );
    }
    let totals = book.worksheet_range("Totals").expect("the Totals sheet");
    let rows: Vec<&[Data]> = totals.rows().collect();
    let header: Vec<String> = rows[0].iter().map(|c| c.to_string()).collect();
    let at = |name: &str| header.iter().position(|h| h == name).expect(name);
    let api = data(
        &peru.store,
        r#"{ country(iso3: "PER") { report(year: 2023) { totals { peopleInNeed peopleReached requirementsUsd fundingUsd fundedPercent } } } }"#,
    )
    .await;
    let t = &api["country"]["report"]["totals"];
    for (column, field) in [
        ("people_in_need", "peopleInNeed"),
        ("people_reached", "peopleReached"),
        ("requirements_usd", "requirementsUsd"),
        ("funding_usd", "fundingUsd"),
        ("funded_percent", "fundedPercent"),
    ] {
        assert_eq!(
            rows[1][at(column)],
            Data::Float(t[field].as_f64().expect(field)),
            "{column}"
        );
    }
}
on_both_databases!(tables_carry_the_published_figures);

/// The 1-based line of the first line of `text` holding `needle`.
fn line_of(text: &str, needle: &str) -> u64 {
    text.lines()
        .position(|l| l.contains(needle))
        .map(|i| i as u64 + 1)
        .unwrap_or_else(|| panic!("{needle} not in the file"))
}

/// Every bad file: its code, its line (and column), and the store exactly as it was.
async fn bad_files_are_refused_by_code_and_place(backend: Backend) {
    let peru = peru_store(backend).await;
    let store = &peru.store;
    let json = String::from_utf8(export(store, &everything(), Format::Json).await).expect("UTF-8");
    let csv = String::from_utf8(export(store, &everything(), Format::Csv).await).expect("UTF-8");
    let hxl = String::from_utf8(export(store, &everything(), Format::Hxl).await).expect("UTF-8");
    let before = store_checksum(store).await;
    let options = ApplyOptions::default();

    // JSON: (what, the file, code, the line the error must name, or a range after it).
    let one_report = json.clone();
    let doubled = json.replacen(
        "\n]}\n",
        &format!(
            ",{}\n]}}\n",
            &json[json.find("\n{").expect("a report")..json.rfind("\n]}").expect("the end")]
        ),
        1,
    );
    let edu = line_of(&json, "\"code\": \"EDU\"");
    let json_cases: Vec<(&str, String, &str, Option<(u64, u64)>)> = vec![
        (
            "cut short",
            json[..json.len() * 9 / 10].to_owned(),
            "EXCHANGE_BAD_JSON",
            None,
        ),
        (
            "not JSON",
            "{ nope".to_owned(),
            "EXCHANGE_BAD_JSON",
            Some((1, 1)),
        ),
        (
            "a later version",
            json.replacen("\"version\": 1", "\"version\": 2", 1),
            "EXCHANGE_UNSUPPORTED_VERSION",
            Some((
                line_of(&json, "\"version\": 1"),
                line_of(&json, "\"version\": 1"),
            )),
        ),
        (
            "another format",
            json.replacen("plangraph.reports", "other.things", 1),
            "EXCHANGE_UNSUPPORTED_VERSION",
            Some((1, 1)),
        ),
        (
            "an unknown sector",
            json.replacen("\"code\": \"EDU\"", "\"code\": \"XYZ\"", 1),
            "EXCHANGE_UNKNOWN_SECTOR",
            Some((edu, edu)),
        ),
        (
            "a printed figure that does not parse",
            json.replacen("\"printed\": \"37.4 K\"", "\"printed\": \"37.4 Q\"", 1),
            "EXCHANGE_BAD_NUMBER",
            Some((
                line_of(&json, "\"printed\": \"37.4 K\""),
                line_of(&json, "\"printed\": \"37.4 K\"") + 1,
            )),
        ),
        (
            "a number that disagrees with its printed form",
            json.replacen("\"value\": 37400,", "\"value\": 37401,", 1),
            "EXCHANGE_VALUE_MISMATCH",
            Some((
                line_of(&json, "\"value\": 37400,"),
                line_of(&json, "\"value\": 37400,") + 2,
            )),
        ),
        (
            "a sector twice",
            json.replacen("\"code\": \"FSC\"", "\"code\": \"EDU\"", 1),
            "EXCHANGE_DUPLICATE_ROW",
            None,
        ),
        (
            "the same report twice",
            doubled,
            "EXCHANGE_DUPLICATE_ROW",
            None,
        ),
        (
            "not an R4V country",
            json.replacen("\"iso3\": \"PER\"", "\"iso3\": \"FRA\"", 1),
            "EXCHANGE_UNKNOWN_COUNTRY",
            Some((
                line_of(&json, "\"iso3\": \"PER\""),
                line_of(&json, "\"iso3\": \"PER\""),
            )),
        ),
        (
            "an empty title",
            json.replacen("\"title\": \"END-YEAR REPORT 2023\"", "\"title\": \" \"", 1),
            "EXCHANGE_BAD_VALUE",
            None,
        ),
        (
            "an unknown field",
            json.replacen(
                "\"synthetic\": false",
                "\"synthetic\": false, \"extra\": 1",
                1,
            ),
            "EXCHANGE_BAD_JSON",
            None,
        ),
    ];
    for (what, file, code, line) in json_cases {
        let error = import_json(store, file.as_bytes(), &options)
            .await
            .expect_err(what);
        assert_eq!(error.code(), code, "{what}: {error}");
        if let (Some((from, to)), ApplyError::File(e)) = (line, &error) {
            let at = e
                .location
                .unwrap_or_else(|| panic!("{what}: no location in {e}"));
            assert!(
                (from..=to).contains(&at.line) && at.column > 0,
                "{what}: line {} not in {from}..={to}: {e}",
                at.line
            );
        }
    }
    let error = import_json(
        store,
        one_report.as_bytes(),
        &ApplyOptions {
            country: Some("COL".into()),
            ..ApplyOptions::default()
        },
    )
    .await
    .expect_err("a report of another country");
    assert_eq!(error.code(), "EXCHANGE_OTHER_COUNTRY");

    // Tables: (what, the file, code, line, column).
    let header_end = csv.find('\n').expect("a header") + 1;
    let edu_row = csv.lines().nth(1).expect("a row").to_owned();
    let table_cases: Vec<(&str, String, &str, u64, u64)> = vec![
        (
            "a wrong header",
            csv.replacen("people_reached,", "people_helped,", 1),
            "EXCHANGE_BAD_HEADER",
            1,
            9,
        ),
        (
            "a missing column",
            csv.lines()
                .map(|l| l.rsplit_once(',').map_or(l, |(head, _)| head).to_owned() + "\n")
                .collect(),
            "EXCHANGE_BAD_HEADER",
            1,
            20,
        ),
        (
            "a wrong hashtag",
            hxl.replacen("#targeted,", "#people,", 1),
            "EXCHANGE_BAD_HEADER",
            2,
            8,
        ),
        (
            "an unknown sector",
            csv.replacen(",EDU,", ",XYZ,", 1),
            "EXCHANGE_UNKNOWN_SECTOR",
            2,
            5,
        ),
        (
            "a printed figure that does not parse",
            csv.replacen(",37.4 K,", ",lots,", 1),
            "EXCHANGE_BAD_NUMBER",
            2,
            15,
        ),
        (
            "a number that does not parse",
            csv.replacen(",37400,", ",3x7400,", 1),
            "EXCHANGE_BAD_NUMBER",
            2,
            9,
        ),
        (
            "a number that disagrees with its printed form",
            csv.replacen(",37400,", ",37500,", 1),
            "EXCHANGE_VALUE_MISMATCH",
            2,
            9,
        ),
        (
            "a percentage that disagrees",
            csv.replacen(",36.2,", ",36.3,", 1),
            "EXCHANGE_VALUE_MISMATCH",
            2,
            10,
        ),
        (
            "a duplicate row",
            format!("{csv}{edu_row}\n"),
            "EXCHANGE_DUPLICATE_ROW",
            15,
            5,
        ),
        (
            "a report the store does not hold",
            csv.replacen("PER,Peru,2023,", "PER,Peru,2019,", 1),
            "EXCHANGE_UNKNOWN_REPORT",
            2,
            1,
        ),
        (
            "not an R4V country",
            csv.replacen("PER,Peru,2023,", "FRA,France,2023,", 1),
            "EXCHANGE_UNKNOWN_COUNTRY",
            2,
            1,
        ),
        (
            "a row of the wrong width",
            format!("{}{edu_row},extra\n", &csv[..header_end]),
            "EXCHANGE_BAD_CSV",
            2,
            1,
        ),
        (
            "an unknown report kind",
            csv.replacen(",END_YEAR,", ",ANNUAL,", 1),
            "EXCHANGE_BAD_VALUE",
            2,
            4,
        ),
    ];
    for (what, file, code, line, col) in table_cases {
        let error = import_table(store, file.as_bytes(), &options)
            .await
            .expect_err(what);
        assert_eq!(error.code(), code, "{what}: {error}");
        let ApplyError::File(e) = &error else {
            panic!("{what}: not a file error: {error}");
        };
        let at = e.location.unwrap_or_else(|| panic!("{what}: no location"));
        assert_eq!((at.line, at.column), (line, col), "{what}: {e}");
        assert!(
            e.to_string().contains(&format!("test.csv:{line}:{col}:")),
            "{e}"
        );
    }
    let error = import_table(
        store,
        csv.as_bytes(),
        &ApplyOptions {
            country: Some("COL".into()),
            ..ApplyOptions::default()
        },
    )
    .await
    .expect_err("rows of another country");
    assert_eq!(error.code(), "EXCHANGE_OTHER_COUNTRY");

    assert_eq!(
        before,
        store_checksum(store).await,
        "no bad file changed the store"
    );

    // The good table, changed as an analyst would (number and printed form), goes through the
    // write path: one change, the figure served, the revision moved.
    let edited = csv.replacen(",37400,36.2,", ",37500,36.3,", 1).replacen(
        ",37.4 K,36.2%,",
        ",37.5 K,36.3%,",
        1,
    );
    import_table(store, edited.as_bytes(), &options)
        .await
        .expect("a good table");
    let api = data(
        store,
        r#"{ country(iso3: "PER") { report(year: 2023) { revision sectors { sector { code } peopleReached reachedPercent printed { peopleReached } } } } }"#,
    )
    .await;
    let edu = &api["country"]["report"]["sectors"][0];
    assert_eq!(edu["sector"]["code"], "EDU");
    assert_eq!(edu["peopleReached"], 37500);
    assert_eq!(edu["printed"]["peopleReached"], "37.5 K");
    assert_eq!(edu["reachedPercent"], 36.3);
    let history = data(
        store,
        r#"{ country(iso3: "PER") { report(year: 2023) { history(first: 1) { nodes { kind changes { path } } } } } }"#,
    )
    .await;
    let latest = &history["country"]["report"]["history"]["nodes"][0];
    assert_eq!(latest["kind"], "IMPORT");
    let paths: Vec<&str> = latest["changes"]
        .as_array()
        .expect("changes")
        .iter()
        .filter_map(|f| f["path"].as_str())
        .collect();
    assert_eq!(
        paths,
        ["sectors.EDU.peopleReached", "sectors.EDU.reachedPercent"],
        "{latest}"
    );
}
on_both_databases!(bad_files_are_refused_by_code_and_place);

/// `plangraph import DIR`: a directory with one broken report loads the others, names the
/// broken one, exits non-zero, and prints a progress line per file when not on a terminal.
#[test]
fn bulk_import_of_a_directory() {
    let dir = tempfile::tempdir().expect("a directory");
    let db = dir.path().join("bulk.db");
    let url = format!("sqlite://{}?mode=rwc", db.display());
    let files = dir.path().join("reports");
    std::fs::create_dir(&files).expect("mkdir");
    let text = plangraph_domain::PERU_2023_END_YEAR;
    std::fs::write(files.join("01-rmrp-2023-end-year-report-peru.txt"), text).expect("write");
    // The same report cut at 90%: refused as truncated, whatever else loads.
    let cut = &text[..text.len() * 9 / 10];
    std::fs::write(files.join("02-cut-report-peru.txt"), cut).expect("write");
    // A table changing one figure of the report the first file loads.
    let source = dir.path().join("source.db");
    let source_url = format!("sqlite://{}?mode=rwc", source.display());
    let out = plangraph(&source_url, &["import", "-"]);
    assert!(!out.status.success(), "stdin is empty: refused");
    let seed = plangraph(&source_url, &["migrate"]);
    assert!(seed.status.success());
    let loaded = std::process::Command::new(binary())
        .args([
            "import",
            files
                .join("01-rmrp-2023-end-year-report-peru.txt")
                .to_str()
                .expect("path"),
        ])
        .env("DATABASE_URL", &source_url)
        .output()
        .expect("run");
    assert!(
        loaded.status.success(),
        "{}",
        String::from_utf8_lossy(&loaded.stderr)
    );
    let table = plangraph(&source_url, &["export", "--format", "hxl"]);
    assert!(table.status.success());
    let table = String::from_utf8(table.stdout)
        .expect("UTF-8")
        .replacen(
            ",29000,44.6,2010000,2040000,101.5,65.0 K,29.0 K,",
            ",29100,44.8,2010000,2040000,101.5,65.0 K,29.1 K,",
            1,
        )
        .replacen(",44.6%,", ",44.8%,", 1);
    std::fs::write(files.join("03-figures.hxl.csv"), &table).expect("write");
    std::fs::write(
        files.join("04-broken.json"),
        "{\"format\": \"plangraph.reports\", \"version\": 1, \"reports\": [",
    )
    .expect("write");

    let out = plangraph(&url, &["import", files.to_str().expect("path")]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "a rejected file fails the run");
    assert!(
        stderr.contains("error[IMPORT_REJECTED]: 2 of 4 file(s)"),
        "{stderr}"
    );
    for n in 1..=4 {
        assert!(
            stderr.contains(&format!("[{n}/4] ")),
            "a progress line per file: {stderr}"
        );
    }
    assert!(stderr.contains("REPORT_TRUNCATED"), "{stderr}");
    assert!(
        stdout.contains("4 file(s) into")
            && stdout.contains("1 created, 1 replaced, 0 unchanged, 0 previewed, 2 rejected"),
        "{stdout}"
    );
    assert!(
        stdout.contains("rejected ")
            && stdout.contains("02-cut-report-peru.txt (REPORT_TRUNCATED)"),
        "{stdout}"
    );
    assert!(
        stdout.contains("04-broken.json (EXCHANGE_BAD_JSON)"),
        "{stdout}"
    );
    // What loaded is served: the table's figure over the report's.
    let csv = plangraph(&url, &["export", "--format", "csv", "--country", "per"]);
    let csv = String::from_utf8_lossy(&csv.stdout);
    assert!(csv.contains("NUT,Nutrition,,65000,29100,44.8,"), "{csv}");
}

/// `GET /export/{format}`: content types and file names, the selection, and each refusal by
/// its code.
async fn export_over_http(backend: Backend) {
    let peru = peru_store(backend).await;
    let state = AppState::new(peru.store.clone());
    let exports = state.exports.clone();
    let app = web::init_service(App::new().configure(configure(state))).await;
    for (format, content_type, name) in [
        ("json", "application/json", "plangraph-PER-2023.json"),
        ("csv", "text/csv; charset=utf-8", "plangraph-PER-2023.csv"),
        (
            "hxl",
            "text/csv; charset=utf-8",
            "plangraph-PER-2023.hxl.csv",
        ),
        (
            "xlsx",
            "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
            "plangraph-PER-2023.xlsx",
        ),
    ] {
        let request = web::TestRequest::get()
            .uri(&format!("/export/{format}?country=per&year=2023"))
            .to_request();
        let response = web::call_service(&app, request).await;
        assert_eq!(response.status().as_u16(), 200, "{format}");
        let headers = response.headers().clone();
        assert_eq!(
            headers.get("content-type").expect("a content type"),
            content_type
        );
        assert_eq!(
            headers.get("content-disposition").expect("a file name"),
            format!("attachment; filename=\"{name}\"").as_str()
        );
        let body = web::read_body(response).await;
        let expected = export(
            &peru.store,
            &Selection {
                country_iso3: Some("PER".into()),
                year: Some(2023),
                ..Selection::default()
            },
            Format::parse(format).expect("a format"),
        )
        .await;
        if format == "xlsx" {
            // A zip's timestamps differ from one writing to the next: read both back.
            let cells = |bytes: Vec<u8>| {
                let mut book: Xlsx<_> = Xlsx::new(Cursor::new(bytes)).expect("xlsx");
                book.worksheet_range("Sectors")
                    .expect("Sectors")
                    .rows()
                    .map(|r| r.to_vec())
                    .collect::<Vec<_>>()
            };
            assert_eq!(cells(body.to_vec()), cells(expected));
        } else {
            assert_eq!(body.to_vec(), expected, "{format}");
        }
    }
    let refusal = |uri: &str| web::TestRequest::get().uri(uri).to_request();
    for (uri, status, code) in [
        ("/export/pdf", 404, "EXPORT_UNKNOWN_FORMAT"),
        ("/export/csv?country=FRA", 400, "BAD_REQUEST"),
        ("/export/csv?colour=red", 400, "BAD_REQUEST"),
        ("/export/csv?report=999999", 404, "NOT_FOUND"),
    ] {
        let response = web::call_service(&app, refusal(uri)).await;
        assert_eq!(response.status().as_u16(), status, "{uri}");
        let body: serde_json::Value = web::read_body_json(response).await;
        assert_eq!(body["errors"][0]["extensions"]["code"], code, "{uri}");
    }
    // Every export slot taken (by exports streaming to clients): the next one waits its turn.
    let held: Vec<_> = (0..exports.max_concurrent)
        .map(|_| exports.slots.clone().try_acquire_owned().expect("a slot"))
        .collect();
    let response = web::call_service(&app, refusal("/export/csv")).await;
    assert_eq!(response.status().as_u16(), 503);
    assert_eq!(
        response.headers().get("retry-after").expect("retry-after"),
        "1"
    );
    let body: serde_json::Value = web::read_body_json(response).await;
    assert_eq!(body["errors"][0]["extensions"]["code"], "EXPORT_BUSY");
    drop(held);
    let response = web::call_service(&app, refusal("/export/csv")).await;
    assert_eq!(response.status().as_u16(), 200);
}
on_both_databases!(export_over_http, actix);

/// The export's write failure has its own code (a workbook or document the writer refused).
#[test]
fn export_write_failure_has_its_code() {
    let error = plangraph_exchange::ExportError::Write {
        format: Format::Xlsx,
        message: "disk full".into(),
    };
    assert_eq!(error.code(), "EXPORT_WRITE_FAILED");
}

const IMPORT_DOCUMENT: &str = r#"mutation($format: DocumentFormat!, $content: String!, $country: String, $expected: Int, $dry: Boolean! = false) {
  importDocument(format: $format, content: $content, country: $country, expectedRevision: $expected, dryRun: $dry) {
    changed replaced revision dryRun report { country { iso3 } year }
  }
}"#;

/// `importDocument` with a token: the same files, checks and codes over the API, scoped by
/// the token's countries, a bad file's place in `extensions`.
async fn import_document_over_the_api(backend: Backend) {
    use crate::support::writes::{error_code, execute_as, token};
    use plangraph_domain::access::Role;
    use serde_json::json;

    let peru = peru_store(backend).await;
    let store = &peru.store;
    let csv = String::from_utf8(export(store, &everything(), Format::Csv).await).expect("UTF-8");
    let json = String::from_utf8(export(store, &everything(), Format::Json).await).expect("UTF-8");
    let editor = token(store, Role::Editor, &["PER"]).await;
    let other = token(store, Role::Editor, &["COL"]).await;
    let edited = csv.replacen(",37400,36.2,", ",37500,36.3,", 1).replacen(
        ",37.4 K,36.2%,",
        ",37.5 K,36.3%,",
        1,
    );
    let vars = |format: &str, content: &str| json!({ "format": format, "content": content });

    let anonymous = execute_as(store, None, IMPORT_DOCUMENT, vars("CSV", &edited)).await;
    assert_eq!(error_code(&anonymous).as_deref(), Some("UNAUTHENTICATED"));
    let elsewhere = execute_as(store, Some(&other), IMPORT_DOCUMENT, vars("CSV", &edited)).await;
    assert_eq!(
        error_code(&elsewhere).as_deref(),
        Some("FORBIDDEN"),
        "{elsewhere}"
    );
    let before = store_checksum(store).await;
    let bad = execute_as(
        store,
        Some(&editor),
        IMPORT_DOCUMENT,
        vars("CSV", &csv.replacen(",EDU,", ",XYZ,", 1)),
    )
    .await;
    assert_eq!(error_code(&bad).as_deref(), Some("EXCHANGE_UNKNOWN_SECTOR"));
    assert_eq!(bad["errors"][0]["extensions"]["line"], 2);
    assert_eq!(bad["errors"][0]["extensions"]["column"], 5);
    let stale = execute_as(
        store,
        Some(&editor),
        IMPORT_DOCUMENT,
        json!({ "format": "CSV", "content": edited, "expected": 999 }),
    )
    .await;
    assert_eq!(error_code(&stale).as_deref(), Some("CONFLICT"), "{stale}");
    assert_eq!(before, store_checksum(store).await);

    let dry = execute_as(
        store,
        Some(&editor),
        IMPORT_DOCUMENT,
        json!({ "format": "CSV", "content": edited, "dry": true }),
    )
    .await;
    assert_eq!(dry["data"]["importDocument"][0]["dryRun"], true, "{dry}");
    assert_eq!(
        before,
        store_checksum(store).await,
        "a dry run writes nothing"
    );
    let done = execute_as(store, Some(&editor), IMPORT_DOCUMENT, vars("CSV", &edited)).await;
    let result = &done["data"]["importDocument"][0];
    assert_eq!(result["changed"], true, "{done}");
    assert_eq!(result["report"]["country"]["iso3"], "PER");

    // A whole report into an empty store, from the JSON an export wrote.
    let empty = empty_store(backend).await;
    let admin_there = token(&empty.store, Role::Admin, &[]).await;
    let created = execute_as(
        &empty.store,
        Some(&admin_there),
        IMPORT_DOCUMENT,
        vars("JSON", &json),
    )
    .await;
    let result = &created["data"]["importDocument"][0];
    assert_eq!(
        (result["changed"].clone(), result["replaced"].clone()),
        (json!(true), json!(false)),
        "{created}"
    );
    assert_eq!(
        export(&empty.store, &everything(), Format::Json).await,
        json.as_bytes(),
        "the API's import gives back the same document"
    );
}
on_both_databases!(import_document_over_the_api);

/// One raw `GET` with an `Origin`; the status line and the lower-cased head.
fn get_with_origin(addr: &str, path: &str, origin: &str) -> (u16, String) {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(addr).expect("connect");
    stream
        .set_read_timeout(Some(std::time::Duration::from_secs(30)))
        .expect("timeout");
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nOrigin: {origin}\r\nConnection: close\r\n\r\n"
    )
    .expect("send");
    let mut text = Vec::new();
    let _ = stream.read_to_end(&mut text);
    let text = String::from_utf8_lossy(&text).to_lowercase();
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    (status, text)
}

/// `GET /export` under `/graphql`'s rules in the production profile: the configured CORS
/// origin only, the per-address rate (`RATE_LIMITED`), and `--exports false` turning it off.
#[test]
fn export_follows_the_cors_rate_and_profile_rules() {
    use crate::support::server::Server;
    let dir = tempfile::tempdir().expect("a directory");
    let url = format!(
        "sqlite://{}?mode=rwc",
        dir.path().join("rules.db").display()
    );
    let server = Server::start_with(
        &url,
        &[
            "--profile",
            "production",
            "--cors-origin",
            "https://dashboard.example",
            "--rate-per-address",
            "1",
        ],
    );
    let (status, head) = get_with_origin(
        &server.addr,
        "/export/csv?country=PER",
        "https://dashboard.example",
    );
    assert_eq!(status, 200, "{head}");
    assert!(
        head.contains("access-control-allow-origin: https://dashboard.example"),
        "{head}"
    );
    assert!(head.contains("nut,nutrition,,65000,29000,44.6,"), "{head}");
    // Requests over the address's rate (1 a second, bursts of 2) are refused by code.
    let mut limited = None;
    for _ in 0..5 {
        let (status, text) =
            get_with_origin(&server.addr, "/export/csv", "https://dashboard.example");
        if status == 429 {
            limited = Some(text);
            break;
        }
    }
    let limited = limited.expect("the rate limit applies to exports");
    assert!(
        limited.contains("rate_limited") && limited.contains("retry-after"),
        "{limited}"
    );
    std::thread::sleep(std::time::Duration::from_millis(2_100));
    let (status, head) = get_with_origin(&server.addr, "/export/csv", "https://elsewhere.example");
    assert!(
        !head.contains("access-control-allow-origin: https://elsewhere.example"),
        "another origin is not allowed: {status} {head}"
    );
    drop(server);

    let off = Server::start_with(&url, &["--exports", "false"]);
    let (status, text) = get_with_origin(&off.addr, "/export/json", "https://dashboard.example");
    assert_eq!(status, 404, "{text}");
    assert!(text.contains("exports are off"), "{text}");
}

/// A client that stops reading an export: after `--export-send-timeout-ms` the export is cut
/// short (the chunked body never ends, so the file cannot pass for whole), its read and its
/// slot come back, and the next exports run.
#[test]
fn an_export_nobody_reads_is_cut_short() {
    use crate::support::server::Server;
    let dir = tempfile::tempdir().expect("a directory");
    let url = format!("sqlite://{}?mode=rwc", dir.path().join("big.db").display());
    let generated = plangraph(&url, &["generate", "--countries", "17", "--years", "6"]);
    assert!(
        generated.status.success(),
        "{}",
        String::from_utf8_lossy(&generated.stderr)
    );
    let server = Server::start_with(
        &url,
        &[
            "--export-send-timeout-ms",
            "300",
            "--max-concurrent-exports",
            "1",
            "--rate-per-address",
            "0",
        ],
    );
    // A small receive window set before connecting, then no reading for 2 s: several MB of
    // JSON cannot all be sent meanwhile.
    let client = r#"
import socket, sys, time
host, port = sys.argv[1].rsplit(":", 1)
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 2048)
s.connect((host, int(port)))
s.sendall(b"GET /export/json HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
time.sleep(2)
s.settimeout(20)
data = b""
while True:
    chunk = s.recv(65536)
    if not chunk:
        break
    data += chunk
print(len(data), data.endswith(b"\r\n0\r\n\r\n"))
"#;
    let python = std::env::var("PLANGRAPH_PYTHON").unwrap_or_else(|_| "python3".to_owned());
    let out = std::process::Command::new(&python)
        .args(["-c", client, &server.addr])
        .output()
        .expect("run the client");
    let printed = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{printed} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        printed.trim().ends_with("False"),
        "the cut export must not end like a whole one: {printed}"
    );
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !server.logs().contains("export cut short") {
        assert!(
            std::time::Instant::now() < deadline,
            "no cut logged: {}",
            server.logs()
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    // The one slot is free again: whole exports follow.
    for _ in 0..2 {
        let (status, text) =
            get_with_origin(&server.addr, "/export/csv?country=PER", "https://x.example");
        assert_eq!(status, 200, "{text}");
        assert!(
            text.ends_with("\r\n0\r\n\r\n"),
            "a whole export ends its chunked body"
        );
    }
}
