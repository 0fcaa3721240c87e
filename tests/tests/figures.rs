//! Every published figure of the Peru End-Year Report 2023, read back through GraphQL, equals
//! the document.

use serde_json::{Value, json};

use crate::on_both_databases;
use crate::support::{Backend, data, peru_store};

/// One printed row of the key-figures table: code, parent, printed heading, then each figure
/// as printed and as a number.
pub(crate) struct Row {
    pub(crate) code: &'static str,
    pub(crate) parent: Option<&'static str>,
    pub(crate) heading: &'static str,
    pub(crate) targeted: (&'static str, i64),
    pub(crate) reached: (&'static str, i64),
    pub(crate) reached_pct: (&'static str, f64),
    pub(crate) requirements: (&'static str, f64),
    pub(crate) funding: (&'static str, f64),
    pub(crate) funded_pct: (&'static str, f64),
}

#[rustfmt::skip]
pub(crate) const ROWS: [Row; 13] = [
    Row { code: "EDU", parent: None, heading: "EDUCATION", targeted: ("103.3 K", 103_300), reached: ("37.4 K", 37_400), reached_pct: ("36.2%", 36.2), requirements: ("$22.68 M", 22_680_000.0), funding: ("$6.72 M", 6_720_000.0), funded_pct: ("29.6%", 29.6) },
    Row { code: "FSC", parent: None, heading: "FOOD SECURITY", targeted: ("284.9 K", 284_900), reached: ("190.6 K", 190_600), reached_pct: ("66.9%", 66.9), requirements: ("$26.02 M", 26_020_000.0), funding: ("$20.44 M", 20_440_000.0), funded_pct: ("78.5%", 78.5) },
    Row { code: "HEA", parent: None, heading: "HEALTH", targeted: ("320.0 K", 320_000), reached: ("127.0 K", 127_000), reached_pct: ("39.7%", 39.7), requirements: ("$36.44 M", 36_440_000.0), funding: ("$3.76 M", 3_760_000.0), funded_pct: ("10.3%", 10.3) },
    Row { code: "HTR", parent: None, heading: "HUMANITARIAN TRANSPORTATION", targeted: ("11.2 K", 11_200), reached: ("2.1 K", 2_100), reached_pct: ("19.2%", 19.2), requirements: ("$1.35 M", 1_350_000.0), funding: ("$31.6 K", 31_600.0), funded_pct: ("2.3%", 2.3) },
    Row { code: "INT", parent: None, heading: "INTEGRATION", targeted: ("381.1 K", 381_100), reached: ("63.5 K", 63_500), reached_pct: ("16.7%", 16.7), requirements: ("$71.08 M", 71_080_000.0), funding: ("$12.65 M", 12_650_000.0), funded_pct: ("17.8%", 17.8) },
    Row { code: "NUT", parent: None, heading: "NUTRITION", targeted: ("65.0 K", 65_000), reached: ("29.0 K", 29_000), reached_pct: ("44.6%", 44.6), requirements: ("$2.01 M", 2_010_000.0), funding: ("$2.04 M", 2_040_000.0), funded_pct: ("101.5%", 101.5) },
    Row { code: "PRO", parent: None, heading: "PROTECTION", targeted: ("823.4 K", 823_400), reached: ("305.5 K", 305_500), reached_pct: ("37.1%", 37.1), requirements: ("$48.84 M", 48_840_000.0), funding: ("$7.33 M", 7_330_000.0), funded_pct: ("15.0%", 15.0) },
    Row { code: "PRO-CPN", parent: Some("PRO"), heading: "CHILD PROTECTION", targeted: ("67.1 K", 67_100), reached: ("25.6 K", 25_600), reached_pct: ("38.1%", 38.1), requirements: ("$15.62 M", 15_620_000.0), funding: ("$1.78 M", 1_780_000.0), funded_pct: ("11.4%", 11.4) },
    Row { code: "PRO-GBV", parent: Some("PRO"), heading: "GENDER-BASED VIOLENCE (GBV)", targeted: ("103.6 K", 103_600), reached: ("32.6 K", 32_600), reached_pct: ("31.5%", 31.5), requirements: ("$15.23 M", 15_230_000.0), funding: ("$488.5 K", 488_500.0), funded_pct: ("3.2%", 3.2) },
    Row { code: "PRO-HTS", parent: Some("PRO"), heading: "HUMAN TRAFFICKING AND SMUGGLING", targeted: ("8.0 K", 8_000), reached: ("3.0 K", 3_000), reached_pct: ("38.2%", 38.2), requirements: ("$7.38 M", 7_380_000.0), funding: ("$168.9 K", 168_900.0), funded_pct: ("2.3%", 2.3) },
    Row { code: "SHL", parent: None, heading: "SHELTER", targeted: ("191.7 K", 191_700), reached: ("29.4 K", 29_400), reached_pct: ("15.3%", 15.3), requirements: ("$17.69 M", 17_690_000.0), funding: ("$3.16 M", 3_160_000.0), funded_pct: ("17.9%", 17.9) },
    Row { code: "WSH", parent: None, heading: "WASH", targeted: ("131.8 K", 131_800), reached: ("29.1 K", 29_100), reached_pct: ("22.1%", 22.1), requirements: ("$9.40 M", 9_400_000.0), funding: ("$1.63 M", 1_630_000.0), funded_pct: ("17.4%", 17.4) },
    Row { code: "MPC", parent: None, heading: "MULTIPURPOSE CASH ASSISTANCE (MPC)", targeted: ("162.8 K", 162_800), reached: ("69.8 K", 69_800), reached_pct: ("42.8%", 42.8), requirements: ("$34.70 M", 34_700_000.0), funding: ("$5.06 M", 5_060_000.0), funded_pct: ("14.6%", 14.6) },
];

const REPORT_QUERY: &str = r#"{
  country(iso3: "PER") {
    iso3 name platform { code scope }
    report(year: 2023) {
      id year kind title fundingAsOf fundingSource fundingFootnoteMarker synthetic
      country { iso3 }
      plan { code startYear endYear }
      totals {
        peopleInNeed peopleTargeted peopleReached requirementsUsd fundingUsd unmetUsd fundedPercent
        printed { peopleInNeed peopleTargeted peopleReached requirementsUsd fundingUsd unmetUsd fundedPercent }
      }
      sectors {
        sector { code parent { code } }
        peopleTargeted peopleReached reachedPercent requirementsUsd fundingUsd fundedPercent
        printed { heading peopleTargeted peopleReached reachedPercent requirementsUsd fundingUsd fundedPercent }
      }
      ageGender { position label percent printed basis }
      populationTypes { position label percent printed basis }
      partnerCounts { role count footnoteMarker }
      partners { name }
      donors { name }
      sections { kind title paragraphs }
      footnotes { marker text }
      sources { url label placement }
      provenance { sourceName sha256 }
    }
  }
}"#;

async fn every_sector_row_is_as_published(backend: Backend) {
    let test = peru_store(backend).await;
    let data = data(&test.store, REPORT_QUERY).await;
    let sectors = data["country"]["report"]["sectors"]
        .as_array()
        .expect("sectors");
    assert_eq!(sectors.len(), ROWS.len(), "every printed row, no more");
    for (row, got) in ROWS.iter().zip(sectors) {
        let want = json!({
            "sector": { "code": row.code, "parent": row.parent.map(|p| json!({ "code": p })) },
            "peopleTargeted": row.targeted.1,
            "peopleReached": row.reached.1,
            "reachedPercent": row.reached_pct.1,
            "requirementsUsd": row.requirements.1,
            "fundingUsd": row.funding.1,
            "fundedPercent": row.funded_pct.1,
            "printed": {
                "heading": row.heading,
                "peopleTargeted": row.targeted.0,
                "peopleReached": row.reached.0,
                "reachedPercent": row.reached_pct.0,
                "requirementsUsd": row.requirements.0,
                "fundingUsd": row.funding.0,
                "fundedPercent": row.funded_pct.0,
            }
        });
        assert_eq!(got, &want, "row {}", row.code);
    }
}
on_both_databases!(every_sector_row_is_as_published);

async fn totals_shares_counts_and_dates_are_as_published(backend: Backend) {
    let test = peru_store(backend).await;
    let data = data(&test.store, REPORT_QUERY).await;
    let country = &data["country"];
    assert_eq!(country["name"], "Peru");
    assert_eq!(
        country["platform"],
        json!({ "code": "GTRM", "scope": "NATIONAL" })
    );
    let report = &country["report"];
    assert_eq!(report["year"], 2023);
    assert_eq!(report["kind"], "END_YEAR");
    assert_eq!(report["title"], "END-YEAR REPORT 2023");
    assert_eq!(report["fundingAsOf"], "2024-04-01");
    assert_eq!(report["fundingSource"], "Financial Tracking Service (FTS)");
    assert_eq!(report["fundingFootnoteMarker"], "*");
    assert_eq!(report["synthetic"], false);
    assert_eq!(report["country"]["iso3"], "PER");
    assert_eq!(
        report["plan"],
        json!({ "code": "RMRP2023", "startYear": 2023, "endYear": 2023 })
    );
    assert_eq!(
        report["totals"],
        json!({
            "peopleInNeed": 2_060_000,
            "peopleTargeted": 990_200,
            "peopleReached": 513_600,
            "requirementsUsd": 318_700_000.0,
            "fundingUsd": 69_360_000.0,
            "unmetUsd": 249_340_000.0,
            "fundedPercent": 21.8,
            "printed": {
                "peopleInNeed": "2.06 M",
                "peopleTargeted": "990.2 K",
                "peopleReached": "513.6 K",
                "requirementsUsd": "$318.70 M",
                "fundingUsd": "$69.36 M",
                "unmetUsd": "$249.34 M",
                "fundedPercent": "21.8%",
            }
        })
    );
    let age_gender: Vec<Value> = [("30.9%", 30.9), ("39.3%", 39.3), ("14.5%", 14.5), ("15.2%", 15.2)]
        .iter()
        .zip(1..)
        .map(|((printed, percent), position)| {
            json!({ "position": position, "label": null, "percent": percent, "printed": printed, "basis": null })
        })
        .collect();
    assert_eq!(report["ageGender"], Value::Array(age_gender));
    assert_eq!(
        report["populationTypes"],
        json!([
            { "position": 1, "label": "In-destination", "percent": 33.0, "printed": "33.0%", "basis": "PEOPLE_TARGETED" },
            { "position": 2, "label": "In-transit", "percent": 10.5, "printed": "10.5%", "basis": "PEOPLE_TARGETED" },
            { "position": 3, "label": "Affected host communities", "percent": 8.4, "printed": "8.4%", "basis": "PEOPLE_TARGETED" },
        ])
    );
    assert_eq!(
        report["partnerCounts"],
        json!([
            { "role": "REPORTING", "count": 54, "footnoteMarker": null },
            { "role": "IMPLEMENTING", "count": 62, "footnoteMarker": "**" },
            { "role": "REFUGEE_AND_MIGRANT_LED", "count": 12, "footnoteMarker": null },
            { "role": "DONOR", "count": 23, "footnoteMarker": null },
        ])
    );
    // The Peru text names no partner or donor organization, only counts.
    assert_eq!(report["partners"], json!([]));
    assert_eq!(report["donors"], json!([]));
    assert_eq!(
        report["provenance"]["sourceName"],
        "rmrp-2023-end-year-report-peru.txt"
    );
    assert_eq!(
        report["provenance"]["sha256"].as_str().map(str::len),
        Some(64)
    );
}
on_both_databases!(totals_shares_counts_and_dates_are_as_published);

async fn footnotes_links_and_sections_are_as_published(backend: Backend) {
    let test = peru_store(backend).await;
    let data = data(&test.store, REPORT_QUERY).await;
    let report = &data["country"]["report"];

    let notes = report["footnotes"].as_array().expect("footnotes");
    assert_eq!(notes.len(), 2);
    assert_eq!(notes[0]["marker"], "*");
    let star = notes[0]["text"].as_str().unwrap_or_default();
    assert!(star.starts_with("Funding information as reported to the Financial Tracking Service (FTS) as of 1 April 2024."));
    assert!(star.ends_with("please refer to this link."));
    assert_eq!(star.matches("\n\n").count(), 1, "two paragraphs");
    assert_eq!(notes[1]["marker"], "**");
    assert!(
        notes[1]["text"]
            .as_str()
            .unwrap_or_default()
            .contains("not sum the number of partners")
    );

    let urls: Vec<(&str, &str)> = report["sources"]
        .as_array()
        .expect("sources")
        .iter()
        .map(|s| {
            (
                s["url"].as_str().unwrap_or_default(),
                s["placement"].as_str().unwrap_or_default(),
            )
        })
        .collect();
    assert_eq!(urls.len(), 6);
    assert!(urls[0].0.starts_with("https://app.powerbi.com/view?r="));
    assert_eq!(urls[0].1, "FOOTNOTES");
    assert_eq!(
        &urls[1..],
        &[
            (
                "https://www.gob.pe/institucion/migraciones/noticias/864684-migraciones-registro-un-total-de-214-633-solicitudes-de-permiso-temporal-de-permanencia",
                "END_NOTES"
            ),
            (
                "https://busquedas.elperuano.pe/dispositivo/NL/2222143-2",
                "END_NOTES"
            ),
            (
                "https://busquedas.elperuano.pe/dispositivo/NL/2234429-1",
                "END_NOTES"
            ),
            (
                "https://www.congreso.gob.pe/Docs/comisiones2023/Constitucion/files/dl-1574-2023-of.pdf",
                "END_NOTES"
            ),
            (
                "https://www.r4v.info/es/document/SOP_Trata_RyM_Peru",
                "END_NOTES"
            ),
        ]
    );

    let sections = report["sections"].as_array().expect("sections");
    let outline: Vec<(&str, &str, usize)> = sections
        .iter()
        .map(|s| {
            (
                s["kind"].as_str().unwrap_or_default(),
                s["title"].as_str().unwrap_or_default(),
                s["paragraphs"].as_array().map_or(0, Vec::len),
            )
        })
        .collect();
    assert_eq!(
        outline,
        vec![
            ("SITUATION", "Situation", 4),
            ("RESPONSE", "Response", 7),
            ("LESSONS_LEARNED", "Lessons Learned", 4),
        ]
    );
    let paragraph = |s: usize, p: usize| sections[s]["paragraphs"][p].as_str().unwrap_or_default();
    // The repeated fragment of the Situation section is kept as published.
    assert_eq!(
        paragraph(0, 0)
            .matches("remain in an irregular situation in Peru")
            .count(),
        2
    );
    // A hyphenated compound broken over lines is one word again.
    assert!(paragraph(0, 1).contains("recent environment-related factors"));
    // The paragraph the PDF's columns broke is joined again.
    assert!(
        paragraph(1, 4)
            .contains("accompanied by technical and financial support. Additionally, 27K")
    );
    // The narrative's own count (13) stands beside the partner box's 12.
    assert!(paragraph(1, 6).contains("13 Venezuelan refugee- and migrant-led organizations"));
    assert!(paragraph(2, 3).ends_with("stronger coordination with key stakeholders."));
}
on_both_databases!(footnotes_links_and_sections_are_as_published);

async fn sectors_know_their_sub_sectors(backend: Backend) {
    let test = peru_store(backend).await;
    let data = data(
        &test.store,
        r#"{ sectors { code } sector(code: "PRO") { name subSectors { code name parent { code } } } }"#,
    )
    .await;
    assert_eq!(data["sectors"].as_array().map(Vec::len), Some(13));
    assert_eq!(
        data["sector"],
        json!({
            "name": "Protection",
            "subSectors": [
                { "code": "PRO-CPN", "name": "Child Protection", "parent": { "code": "PRO" } },
                { "code": "PRO-GBV", "name": "Gender-Based Violence (GBV)", "parent": { "code": "PRO" } },
                { "code": "PRO-HTS", "name": "Human Trafficking and Smuggling", "parent": { "code": "PRO" } },
            ]
        })
    );
}
on_both_databases!(sectors_know_their_sub_sectors);
