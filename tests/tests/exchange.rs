//! Reports in and out: the JSON round trip, the published figures in every table format, every
//! bad file refused by code and place with the store unchanged, bulk loads, `importDocument`
//! (`GET /export` is `exchange_http`).

use std::io::Cursor;

use calamine::{Data, Reader, Xlsx};
use plangraph_domain::access::Actor;
use plangraph_domain::synthetic::Plan;
use plangraph_exchange::apply::{self, ApplyOptions};
use plangraph_exchange::{ApplyError, Export, Format, Selection};
use plangraph_persistence::Store;

use crate::figures::ROWS;
use crate::on_both_databases;
use crate::support::server::{binary, plangraph};
use crate::support::writes::store_checksum;
use crate::support::{Backend, data, empty_store, peru_store};

pub(crate) async fn export(store: &Store, selection: &Selection, format: Format) -> Vec<u8> {
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
    let check = "import json, sys, jsonschema\n\
schema = json.load(open(sys.argv[1]))\n\
doc = json.load(open(sys.argv[2]))\n\
jsonschema.Draft202012Validator.check_schema(schema)\n\
jsonschema.validate(doc, schema, format_checker=jsonschema.FormatChecker())\n\
for report in doc['reports']:\n    jsonschema.validate(report, schema)\n";
    let out = crate::support::server::python(check, &[schema.as_os_str(), path.as_os_str()]);
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

/// A bad JSON file: what it is, its text, its code, and the lines its error may name.
type JsonCase = (&'static str, String, &'static str, Option<(u64, u64)>);

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
    let json_cases: Vec<JsonCase> = vec![
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
            "a source that is not an http(s) link (setSources refuses it too)",
            {
                let start = json.find("\"url\": \"").expect("a source") + "\"url\": \"".len();
                let end = start + json[start..].find('"').expect("its end");
                format!("{}javascript:alert(1){}", &json[..start], &json[end..])
            },
            "EXCHANGE_BAD_VALUE",
            None,
        ),
        (
            "a paragraph with a control character",
            json.replacen(
                "\"paragraphs\": [\n",
                "\"paragraphs\": [\n\"a\\u0000b\",\n",
                1,
            ),
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

/// A file is taken whole or not at all: a collection whose second report the token may not
/// write, and a table whose later report fails its check, write nothing (not even the
/// reports before the refused one); an editor cannot bring organisations the store lacks.
async fn a_refused_file_writes_none_of_its_reports(backend: Backend) {
    use crate::support::writes::{error_code, execute_as, token};
    use plangraph_domain::access::Role;
    use serde_json::json;

    let store_test = empty_store(backend).await;
    let store = &store_test.store;
    let plan = Plan {
        countries: 3,
        years: 1,
        last_year: 2024,
        organizations: 10,
        partners_per_report: 3,
        donors_per_report: 1,
        ..Plan::default()
    };
    plangraph_server::generate::generate(store, &plan)
        .await
        .expect("generate");
    let json = String::from_utf8(export(store, &everything(), Format::Json).await).expect("UTF-8");
    let csv = String::from_utf8(export(store, &everything(), Format::Csv).await).expect("UTF-8");
    // An editor of the first report's country: the file's first report is theirs to write,
    // a later one is not.
    let first: serde_json::Value = serde_json::from_str(&json).expect("JSON");
    let first_country = first["reports"][0]["country"]["iso3"]
        .as_str()
        .expect("a country")
        .to_owned();
    assert_ne!(
        first["reports"][1]["country"]["iso3"], first_country,
        "the second report is another country's"
    );
    let editor = token(store, Role::Editor, &[&first_country]).await;
    let before = store_checksum(store).await;
    let changed = json.replace("(SYNTHETIC)\"", "(SYNTHETIC, edited)\"");
    assert_ne!(changed, json);
    let refused = execute_as(
        store,
        Some(&editor),
        IMPORT_DOCUMENT,
        json!({ "format": "JSON", "content": changed }),
    )
    .await;
    assert_eq!(
        error_code(&refused).as_deref(),
        Some("FORBIDDEN"),
        "{refused}"
    );
    assert_eq!(
        before,
        store_checksum(store).await,
        "the JSON's first report was not written"
    );
    // The same with a table: the first report's row and the last (another country's) changed.
    let mut rows: Vec<String> = csv.lines().map(str::to_owned).collect();
    let last_row = rows.len() - 1;
    for i in [1, last_row] {
        let mut c: Vec<String> = rows[i].split(',').map(str::to_owned).collect();
        c[8] = "1".into();
        c[14] = "1".into();
        rows[i] = c.join(",");
    }
    assert!(rows[1].starts_with(&first_country) && !rows[last_row].starts_with(&first_country));
    let refused = execute_as(
        store,
        Some(&editor),
        IMPORT_DOCUMENT,
        json!({ "format": "CSV", "content": rows.join("\n") + "\n" }),
    )
    .await;
    assert_eq!(
        error_code(&refused).as_deref(),
        Some("FORBIDDEN"),
        "{refused}"
    );
    assert_eq!(
        before,
        store_checksum(store).await,
        "the table's first report was not written"
    );
    // The table: the first report's row changed, a later report's row over what the API
    // serves back (the check that runs when the report is rebuilt, not when the row is read).
    let mut lines: Vec<String> = csv.lines().map(str::to_owned).collect();
    let last = lines.len() - 1;
    let huge = "99999999999999 K";
    let cells: Vec<&str> = lines[last].split(',').collect();
    let mut cells: Vec<String> = cells.iter().map(|c| (*c).to_owned()).collect();
    cells[7] = "99999999999999000".into();
    cells[13] = huge.into();
    lines[last] = cells.join(",");
    let edited_first = {
        let mut c: Vec<String> = lines[1].split(',').map(str::to_owned).collect();
        c[8] = "1".into();
        c[14] = "1".into();
        c.join(",")
    };
    lines[1] = edited_first;
    let table = lines.join("\n") + "\n";
    let error = import_table(store, table.as_bytes(), &ApplyOptions::default())
        .await
        .expect_err("a report over what the API serves back");
    assert!(
        error.code().starts_with("EXCHANGE_") || error.code() == "INVALID_FIGURE",
        "{error}"
    );
    assert_eq!(
        before,
        store_checksum(store).await,
        "no report of a refused file was written"
    );
}
on_both_databases!(a_refused_file_writes_none_of_its_reports);

/// `importDocument`s beyond the most that run at once are refused by code, not queued.
#[tokio::test]
async fn import_document_beyond_its_slots_is_import_busy() {
    use crate::support::writes::{error_code, token};
    use plangraph_domain::access::Role;

    let peru = peru_store(Backend::Sqlite).await;
    let admin = token(&peru.store, Role::Admin, &[]).await;
    let api = plangraph_api::Api::new(peru.store.clone());
    let held: Vec<_> = (0..plangraph_api::MAX_CONCURRENT_IMPORTS)
        .map(|_| {
            api.import_slots()
                .clone()
                .try_acquire_owned()
                .expect("a slot")
        })
        .collect();
    let csv =
        String::from_utf8(export(&peru.store, &everything(), Format::Csv).await).expect("UTF-8");
    let request = || {
        async_graphql::Request::new(IMPORT_DOCUMENT)
            .variables(async_graphql::Variables::from_json(
                serde_json::json!({ "format": "CSV", "content": csv }),
            ))
            .data(plangraph_api::Credentials::from_authorization(Some(
                &format!("Bearer {admin}"),
            )))
    };
    let busy = serde_json::to_value(api.execute(request()).await).expect("JSON");
    assert_eq!(error_code(&busy).as_deref(), Some("IMPORT_BUSY"), "{busy}");
    drop(held);
    let done = serde_json::to_value(api.execute(request()).await).expect("JSON");
    assert!(done["errors"].is_null(), "{done}");
}

/// A JSON file may start with a byte-order mark; a table's percentage must be a finite,
/// non-negative number that agrees with its printed form.
async fn byte_order_marks_and_impossible_percentages(backend: Backend) {
    let peru = peru_store(backend).await;
    let store = &peru.store;
    let json = export(store, &everything(), Format::Json).await;
    let mut marked = b"\xef\xbb\xbf".to_vec();
    marked.extend_from_slice(&json);
    let applied = import_json(store, &marked, &ApplyOptions::default())
        .await
        .expect("a JSON file with a BOM");
    assert!(applied[0].outcome.change.is_none());
    let csv = String::from_utf8(export(store, &everything(), Format::Csv).await).expect("UTF-8");
    for bad in ["NaN", "-36.2", "inf"] {
        let file = csv.replacen(",37400,36.2,", &format!(",37400,{bad},"), 1);
        let error = import_table(store, file.as_bytes(), &ApplyOptions::default())
            .await
            .expect_err(bad);
        assert_eq!(error.code(), "EXCHANGE_VALUE_MISMATCH", "{bad}: {error}");
    }
}
on_both_databases!(byte_order_marks_and_impossible_percentages);

/// `plangraph export --output` never writes over the store, nor over a file without
/// `--force`; a JSON document over `--max-document-bytes` is refused from its size, unread.
#[test]
fn export_targets_and_document_caps() {
    let dir = tempfile::tempdir().expect("a directory");
    let db = dir.path().join("store.db");
    let url = format!("sqlite://{}?mode=rwc", db.display());
    assert!(plangraph(&url, &["migrate"]).status.success());
    let out = plangraph(
        &url,
        &[
            "export",
            "--format",
            "csv",
            "--output",
            db.to_str().expect("path"),
        ],
    );
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("error[EXPORT_TARGET_IS_THE_STORE]"));
    let wal = format!("{}-wal", db.display());
    let out = plangraph(
        &url,
        &["export", "--format", "csv", "--force", "--output", &wal],
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("error[EXPORT_TARGET_IS_THE_STORE]"));
    let target = dir.path().join("figures.csv");
    std::fs::write(&target, "keep me").expect("write");
    let out = plangraph(
        &url,
        &[
            "export",
            "--format",
            "csv",
            "--output",
            target.to_str().expect("path"),
        ],
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("error[EXPORT_TARGET_EXISTS]"));
    assert_eq!(std::fs::read_to_string(&target).expect("read"), "keep me");
    let out = plangraph(
        &url,
        &[
            "export",
            "--format",
            "csv",
            "--force",
            "--output",
            target.to_str().expect("path"),
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        std::fs::read_to_string(&target)
            .expect("read")
            .starts_with("country_code,")
    );

    let big = dir.path().join("big.json");
    std::fs::write(
        &big,
        format!(
            "{{\"format\": \"plangraph.reports\", \"pad\": \"{}\"}}",
            "x".repeat(2_000)
        ),
    )
    .expect("write");
    let out = plangraph(
        &url,
        &[
            "import",
            big.to_str().expect("path"),
            "--max-document-bytes",
            "1000",
        ],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("error[DOCUMENT_TOO_LARGE]") && stderr.contains("--max-document-bytes"),
        "{stderr}"
    );
}
