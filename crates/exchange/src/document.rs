//! The lossless form of a report: one self-describing JSON document with everything the graph
//! holds of it, figures as numbers *and* as printed. Its schema is published in
//! `crates/exchange/schema/report-v1.schema.json`.
//!
//! Reading checks as it goes, inside serde, so every problem keeps serde_json's line and
//! column: a printed figure that does not parse, a number that disagrees with its printed form
//! (the printed form decides, as everywhere in plangraph), an unknown sector or country, a
//! sector twice in one report. Store-local things are left out: row ids, the import time and
//! revisions (a report's revision is the store's own write counter, which another store counts
//! differently; the API's `Report.revision` is the one to send as `expectedRevision`). That is
//! what makes a document imported into an empty store export again as the same bytes.

use std::collections::HashSet;

use chrono::NaiveDate;
use plangraph_domain::reference;
use plangraph_domain::units::{PeopleCount, Percent, Usd};
use serde::{Deserialize, Deserializer, Serialize};

use crate::error::Problem;

/// The `format` of one report's document.
pub const REPORT_FORMAT: &str = "plangraph.report";
/// The `format` of a file of several reports (`{"format", "version", "reports": [...]}`).
pub const COLLECTION_FORMAT: &str = "plangraph.reports";
/// The version this build writes and reads.
pub const VERSION: u32 = 1;

/// One report, as exported.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ReportDoc {
    pub format: ReportTag,
    pub version: VersionTag,
    pub country: CountryDoc,
    pub plan: PlanDoc,
    pub kind: Kind,
    pub year: i32,
    pub title: String,
    /// Generated load-test data; published reports never are.
    pub synthetic: bool,
    pub provenance: Provenance,
    pub funding: Funding,
    pub totals: TotalsDoc,
    #[serde(deserialize_with = "unique_sectors")]
    pub sectors: Vec<SectorDoc>,
    pub shares: Vec<ShareDoc>,
    pub partner_counts: Vec<PartnerCountDoc>,
    pub sections: Vec<SectionDoc>,
    pub footnotes: Vec<FootnoteDoc>,
    pub sources: Vec<SourceDoc>,
    pub organizations: Vec<OrganizationDoc>,
}

/// A file of several reports.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CollectionDoc {
    pub format: CollectionTag,
    pub version: VersionTag,
    pub reports: Vec<ReportDoc>,
}

macro_rules! tag {
    ($name:ident, $text:expr) => {
        /// A format name that must be exactly this one.
        #[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
        pub struct $name;

        impl Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str($text)
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let text = String::deserialize(d)?;
                if text == $text {
                    Ok(Self)
                } else {
                    Err(serde::de::Error::custom(
                        Problem::UnsupportedVersion
                            .tag(format!("format is '{text}', expected '{}'", $text)),
                    ))
                }
            }
        }
    };
}

tag!(ReportTag, REPORT_FORMAT);
tag!(CollectionTag, COLLECTION_FORMAT);

/// The document version: [`VERSION`], nothing else.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct VersionTag;

impl Serialize for VersionTag {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u32(VERSION)
    }
}

impl<'de> Deserialize<'de> for VersionTag {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let version = u64::deserialize(d)?;
        if version == u64::from(VERSION) {
            Ok(Self)
        } else {
            Err(serde::de::Error::custom(Problem::UnsupportedVersion.tag(
                format!("version {version} is not one this build reads (it reads {VERSION})"),
            )))
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CountryDoc {
    #[serde(deserialize_with = "r4v_country")]
    pub iso3: String,
    pub name: String,
    pub platform: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PlanDoc {
    pub code: String,
    pub name: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Kind {
    EndYear,
    MidYear,
    Plan,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Provenance {
    /// The file the report's text was read from.
    pub source_name: String,
    /// SHA-256 of that text.
    pub sha256: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Funding {
    /// The source the funding figures are from ("Financial Tracking Service (FTS)").
    pub source: Option<String>,
    pub as_of: Option<NaiveDate>,
    pub footnote_marker: Option<String>,
}

/// A count of people: the number and the printed form it was read from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "RawCount")]
pub struct People {
    pub value: u64,
    pub printed: String,
}

/// An amount of US dollars, whole dollars and as printed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "RawCount")]
pub struct Dollars {
    pub value: u64,
    pub printed: String,
}

/// A percentage: the number (36.2 for "36.2%") and as printed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "RawPercent")]
pub struct Pct {
    pub value: f64,
    pub printed: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCount {
    value: u64,
    printed: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPercent {
    value: f64,
    printed: String,
}

fn mismatch(value: impl std::fmt::Display, printed: &str, read: impl std::fmt::Display) -> String {
    Problem::ValueMismatch.tag(format!(
        "value {value} disagrees with its printed form '{printed}', which reads {read} (the printed form decides: change both)"
    ))
}

impl TryFrom<RawCount> for People {
    type Error = String;
    fn try_from(raw: RawCount) -> Result<Self, String> {
        let parsed = PeopleCount::parse(&raw.printed).map_err(|e| Problem::BadNumber.tag(e))?;
        if parsed.value() != raw.value {
            return Err(mismatch(raw.value, &raw.printed, parsed.value()));
        }
        Ok(Self {
            value: parsed.value(),
            printed: parsed.printed().to_owned(),
        })
    }
}

impl TryFrom<RawCount> for Dollars {
    type Error = String;
    fn try_from(raw: RawCount) -> Result<Self, String> {
        let parsed = Usd::parse(&raw.printed).map_err(|e| Problem::BadNumber.tag(e))?;
        if parsed.value() != raw.value {
            return Err(mismatch(raw.value, &raw.printed, parsed.value()));
        }
        Ok(Self {
            value: parsed.value(),
            printed: parsed.printed().to_owned(),
        })
    }
}

impl TryFrom<RawPercent> for Pct {
    type Error = String;
    fn try_from(raw: RawPercent) -> Result<Self, String> {
        let parsed = Percent::parse(&raw.printed).map_err(|e| Problem::BadNumber.tag(e))?;
        if !raw.value.is_finite() || (raw.value * 100.0).round() != parsed.hundredths() as f64 {
            return Err(mismatch(raw.value, &raw.printed, parsed.as_f64()));
        }
        Ok(Self {
            value: parsed.as_f64(),
            printed: parsed.printed().to_owned(),
        })
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TotalsDoc {
    pub people_in_need: People,
    pub people_targeted: People,
    pub people_reached: People,
    pub requirements_usd: Dollars,
    pub funding_usd: Dollars,
    pub unmet_usd: Dollars,
    pub funded_percent: Pct,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SectorDoc {
    #[serde(deserialize_with = "known_sector")]
    pub code: String,
    /// The reference's name and parent, for readers; an import takes them from the reference.
    pub name: String,
    pub parent: Option<String>,
    pub printed_heading: String,
    pub people_targeted: People,
    pub people_reached: People,
    pub reached_percent: Pct,
    pub requirements_usd: Dollars,
    pub funding_usd: Dollars,
    pub funded_percent: Pct,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Dimension {
    AgeGender,
    PopulationType,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Basis {
    PeopleTargeted,
    PeopleReached,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ShareDoc {
    pub dimension: Dimension,
    pub position: u32,
    pub label: Option<String>,
    pub percent: Pct,
    pub basis: Option<Basis>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Role {
    Reporting,
    Implementing,
    RefugeeAndMigrantLed,
    Donor,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PartnerCountDoc {
    pub role: Role,
    pub count: u32,
    pub footnote_marker: Option<String>,
    pub printed: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Section {
    Situation,
    Response,
    LessonsLearned,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SectionDoc {
    pub kind: Section,
    pub title: String,
    pub paragraphs: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct FootnoteDoc {
    pub marker: String,
    pub text: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Placement {
    Footnotes,
    EndNotes,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SourceDoc {
    pub url: String,
    pub label: Option<String>,
    pub placement: Placement,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum LinkRole {
    Partner,
    Donor,
}

/// An organisation linked to the report, by what identifies it in any store: its FTS id when
/// it has one, else its name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct OrganizationDoc {
    pub role: LinkRole,
    pub name: String,
    pub acronym: Option<String>,
    #[serde(rename = "type")]
    pub org_type: Option<String>,
    pub refugee_and_migrant_led: bool,
    pub fts_id: Option<String>,
    pub synthetic: bool,
}

fn r4v_country<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    let iso3 = String::deserialize(d)?;
    match reference::country_by_iso3(&iso3) {
        Some(_) => Ok(iso3),
        None => Err(serde::de::Error::custom(
            Problem::UnknownCountry.tag(format!("'{iso3}' is not an R4V country code")),
        )),
    }
}

fn known_sector<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    let code = String::deserialize(d)?;
    match reference::SECTORS.iter().find(|s| s.code == code) {
        Some(_) => Ok(code),
        None => Err(serde::de::Error::custom(
            Problem::UnknownSector.tag(format!("'{code}' is not a sector code of the reference")),
        )),
    }
}

/// The sectors of a report, read one at a time: a sector twice is refused where it appears
/// again (its line and column), without reading the rest of the list.
fn unique_sectors<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<SectorDoc>, D::Error> {
    struct Unique;

    impl<'de> serde::de::Visitor<'de> for Unique {
        type Value = Vec<SectorDoc>;

        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("a list of sectors")
        }

        fn visit_seq<A: serde::de::SeqAccess<'de>>(
            self,
            mut seq: A,
        ) -> Result<Self::Value, A::Error> {
            let mut rows: Vec<SectorDoc> = Vec::new();
            let mut seen = HashSet::new();
            while let Some(row) = seq.next_element::<SectorDoc>()? {
                if !seen.insert(row.code.clone()) {
                    return Err(serde::de::Error::custom(Problem::DuplicateRow.tag(
                        format!(
                            "sector {} appears twice (again as sectors[{}])",
                            row.code,
                            rows.len()
                        ),
                    )));
                }
                rows.push(row);
            }
            Ok(rows)
        }
    }

    d.deserialize_seq(Unique)
}
