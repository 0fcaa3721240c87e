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

use std::collections::{HashMap, HashSet};

use chrono::NaiveDate;
use plangraph_domain::codes::SectorCode;
use plangraph_domain::edit::OrganizationRole;
use plangraph_domain::reference::{self, CountryDef};
use plangraph_domain::report::{
    Footnote, LinkPlacement, NarrativeSection, PartnerCount, PartnerRole, ReportDocument,
    ReportKind, SectionKind, SectorRow, Share, ShareBasis, ShareDimension, SourceLink, Totals,
};
use plangraph_domain::units::{PeopleCount, Percent, Usd};
use plangraph_persistence::ReportRows;
use plangraph_persistence::entities::{platform, sector};
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

impl People {
    fn of(value: i64, printed: &str) -> Self {
        Self {
            value: u64::try_from(value).unwrap_or_default(),
            printed: printed.to_owned(),
        }
    }

    fn domain(&self) -> Result<PeopleCount, String> {
        PeopleCount::parse(&self.printed).map_err(|e| e.to_string())
    }
}

impl Dollars {
    fn of(value: i64, printed: &str) -> Self {
        Self {
            value: u64::try_from(value).unwrap_or_default(),
            printed: printed.to_owned(),
        }
    }

    fn domain(&self) -> Result<Usd, String> {
        Usd::parse(&self.printed).map_err(|e| e.to_string())
    }
}

impl Pct {
    fn of(hundredths: i64, printed: &str) -> Self {
        Self {
            value: hundredths as f64 / 100.0,
            printed: printed.to_owned(),
        }
    }

    fn domain(&self) -> Result<Percent, String> {
        Percent::parse(&self.printed).map_err(|e| e.to_string())
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

fn unique_sectors<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<SectorDoc>, D::Error> {
    let rows = Vec::<SectorDoc>::deserialize(d)?;
    let mut seen = HashSet::new();
    for (i, row) in rows.iter().enumerate() {
        if !seen.insert(row.code.as_str()) {
            return Err(serde::de::Error::custom(Problem::DuplicateRow.tag(
                format!("sector {} appears twice (again as sectors[{i}])", row.code),
            )));
        }
    }
    Ok(rows)
}

/// What the store needs besides the rows: sector names and parents, platform codes.
#[derive(Debug, Default)]
pub struct References {
    pub sectors: HashMap<i32, sector::Model>,
    pub platforms: HashMap<i32, platform::Model>,
}

impl ReportDoc {
    /// The document of a stored report.
    pub fn from_rows(rows: &ReportRows, refs: &References) -> Self {
        let r = &rows.report;
        let country = rows.country.as_ref();
        let platform = country
            .and_then(|c| c.platform_id)
            .and_then(|id| refs.platforms.get(&id))
            .map(|p| p.code.clone());
        let plan = rows.plan.as_ref();
        let sector_of = |id: i32| refs.sectors.get(&id);
        let t = rows.totals.as_ref();
        let people = |v: Option<(i64, &String)>| {
            v.map_or_else(|| People::of(0, ""), |(v, p)| People::of(v, p))
        };
        let dollars = |v: Option<(i64, &String)>| {
            v.map_or_else(|| Dollars::of(0, ""), |(v, p)| Dollars::of(v, p))
        };
        Self {
            format: ReportTag,
            version: VersionTag,
            country: CountryDoc {
                iso3: country.map(|c| c.iso3.clone()).unwrap_or_default(),
                name: country.map(|c| c.name.clone()).unwrap_or_default(),
                platform,
            },
            plan: PlanDoc {
                code: plan.map(|p| p.code.clone()).unwrap_or_default(),
                name: plan.map(|p| p.name.clone()).unwrap_or_default(),
            },
            kind: match r.kind.as_str() {
                "MID_YEAR" => Kind::MidYear,
                "PLAN" => Kind::Plan,
                _ => Kind::EndYear,
            },
            year: r.year,
            title: r.title.clone(),
            synthetic: r.synthetic,
            provenance: Provenance {
                source_name: r.source_name.clone(),
                sha256: r.source_sha256.clone(),
            },
            funding: Funding {
                source: r.funding_source.clone(),
                as_of: r.funding_as_of,
                footnote_marker: r.funding_footnote_marker.clone(),
            },
            totals: TotalsDoc {
                people_in_need: people(t.map(|t| (t.people_in_need, &t.people_in_need_printed))),
                people_targeted: people(t.map(|t| (t.people_targeted, &t.people_targeted_printed))),
                people_reached: people(t.map(|t| (t.people_reached, &t.people_reached_printed))),
                requirements_usd: dollars(t.map(|t| (t.requirements_usd, &t.requirements_printed))),
                funding_usd: dollars(t.map(|t| (t.funding_usd, &t.funding_printed))),
                unmet_usd: dollars(t.map(|t| (t.unmet_usd, &t.unmet_printed))),
                funded_percent: t.map_or_else(
                    || Pct::of(0, ""),
                    |t| Pct::of(t.funded_percent_hundredths, &t.funded_percent_printed),
                ),
            },
            sectors: rows
                .sectors
                .iter()
                .map(|f| {
                    let s = sector_of(f.sector_id);
                    SectorDoc {
                        code: rows.sector_code(f.sector_id).to_owned(),
                        name: s.map(|s| s.name.clone()).unwrap_or_default(),
                        parent: s
                            .and_then(|s| s.parent_id)
                            .and_then(sector_of)
                            .map(|p| p.code.clone()),
                        printed_heading: f.printed_heading.clone(),
                        people_targeted: People::of(f.people_targeted, &f.people_targeted_printed),
                        people_reached: People::of(f.people_reached, &f.people_reached_printed),
                        reached_percent: Pct::of(
                            f.reached_percent_hundredths,
                            &f.reached_percent_printed,
                        ),
                        requirements_usd: Dollars::of(f.requirements_usd, &f.requirements_printed),
                        funding_usd: Dollars::of(f.funding_usd, &f.funding_printed),
                        funded_percent: Pct::of(
                            f.funded_percent_hundredths,
                            &f.funded_percent_printed,
                        ),
                    }
                })
                .collect(),
            shares: rows
                .shares
                .iter()
                .map(|s| ShareDoc {
                    dimension: if s.dimension == "AGE_GENDER" {
                        Dimension::AgeGender
                    } else {
                        Dimension::PopulationType
                    },
                    position: u32::try_from(s.position).unwrap_or_default(),
                    label: s.label.clone(),
                    percent: Pct::of(s.percent_hundredths, &s.percent_printed),
                    basis: match s.basis.as_deref() {
                        Some("PEOPLE_TARGETED") => Some(Basis::PeopleTargeted),
                        Some("PEOPLE_REACHED") => Some(Basis::PeopleReached),
                        _ => None,
                    },
                })
                .collect(),
            partner_counts: rows
                .partner_counts
                .iter()
                .map(|p| PartnerCountDoc {
                    role: match p.role.as_str() {
                        "REPORTING" => Role::Reporting,
                        "IMPLEMENTING" => Role::Implementing,
                        "REFUGEE_AND_MIGRANT_LED" => Role::RefugeeAndMigrantLed,
                        _ => Role::Donor,
                    },
                    count: u32::try_from(p.count).unwrap_or_default(),
                    footnote_marker: p.footnote_marker.clone(),
                    printed: p.printed.clone(),
                })
                .collect(),
            sections: rows
                .sections
                .iter()
                .map(|s| SectionDoc {
                    kind: match s.section.kind.as_str() {
                        "SITUATION" => Section::Situation,
                        "RESPONSE" => Section::Response,
                        _ => Section::LessonsLearned,
                    },
                    title: s.section.title.clone(),
                    paragraphs: s.paragraphs.clone(),
                })
                .collect(),
            footnotes: rows
                .footnotes
                .iter()
                .map(|f| FootnoteDoc {
                    marker: f.marker.clone(),
                    text: f.body.clone(),
                })
                .collect(),
            sources: rows
                .sources
                .iter()
                .map(|s| SourceDoc {
                    url: s.url.clone(),
                    label: s.label.clone(),
                    placement: if s.placement == "FOOTNOTES" {
                        Placement::Footnotes
                    } else {
                        Placement::EndNotes
                    },
                })
                .collect(),
            organizations: rows
                .organizations
                .iter()
                .map(|(link, o)| OrganizationDoc {
                    role: if link.role == "DONOR" {
                        LinkRole::Donor
                    } else {
                        LinkRole::Partner
                    },
                    name: o.name.clone(),
                    acronym: o.acronym.clone(),
                    org_type: o.org_type.clone(),
                    refugee_and_migrant_led: o.refugee_and_migrant_led,
                    fts_id: o.fts_id.clone(),
                    synthetic: o.synthetic,
                })
                .collect(),
        }
    }

    /// The reference entry of the report's country (checked when read).
    pub fn country_def(&self) -> Option<&'static CountryDef> {
        reference::country_by_iso3(&self.country.iso3)
    }

    /// The report as the domain holds it, ready for the write path; a figure the API could
    /// not serve back, or a text the store refuses, is an error naming its place in the
    /// document.
    pub fn to_domain(&self) -> Result<ReportDocument, (Problem, String)> {
        let bad = |what: String| (Problem::BadNumber, what);
        let t = &self.totals;
        let totals = Totals {
            people_in_need: t.people_in_need.domain().map_err(bad)?,
            people_targeted: t.people_targeted.domain().map_err(bad)?,
            people_reached: t.people_reached.domain().map_err(bad)?,
            requirements: t.requirements_usd.domain().map_err(bad)?,
            funding_received: t.funding_usd.domain().map_err(bad)?,
            unmet: t.unmet_usd.domain().map_err(bad)?,
            funded_percent: t.funded_percent.domain().map_err(bad)?,
            people_line: 0,
            money_line: 0,
            percent_line: 0,
        };
        let mut sectors = Vec::with_capacity(self.sectors.len());
        for row in &self.sectors {
            let code = SectorCode::parse(&row.code)
                .map_err(|e| (Problem::UnknownSector, e.to_string()))?;
            sectors.push(SectorRow {
                line: 0,
                sector: code,
                printed_heading: row.printed_heading.clone(),
                people_targeted: row.people_targeted.domain().map_err(bad)?,
                people_reached: row.people_reached.domain().map_err(bad)?,
                reached_percent: row.reached_percent.domain().map_err(bad)?,
                requirements: row.requirements_usd.domain().map_err(bad)?,
                funding: row.funding_usd.domain().map_err(bad)?,
                funded_percent: row.funded_percent.domain().map_err(bad)?,
            });
        }
        let mut shares = Vec::with_capacity(self.shares.len());
        for s in &self.shares {
            shares.push(Share {
                dimension: match s.dimension {
                    Dimension::AgeGender => ShareDimension::AgeGender,
                    Dimension::PopulationType => ShareDimension::PopulationType,
                },
                position: s.position,
                label: s.label.clone(),
                percent: s.percent.domain().map_err(bad)?,
                basis: s.basis.map(|b| match b {
                    Basis::PeopleTargeted => ShareBasis::PeopleTargeted,
                    Basis::PeopleReached => ShareBasis::PeopleReached,
                }),
            });
        }
        let document = ReportDocument {
            kind: match self.kind {
                Kind::EndYear => ReportKind::EndYear,
                Kind::MidYear => ReportKind::MidYear,
                Kind::Plan => ReportKind::Plan,
            },
            year: self.year,
            title: self.title.clone(),
            sectors,
            totals,
            shares,
            partner_counts: self
                .partner_counts
                .iter()
                .map(|p| PartnerCount {
                    role: match p.role {
                        Role::Reporting => PartnerRole::Reporting,
                        Role::Implementing => PartnerRole::Implementing,
                        Role::RefugeeAndMigrantLed => PartnerRole::RefugeeAndMigrantLed,
                        Role::Donor => PartnerRole::Donor,
                    },
                    count: p.count,
                    footnote_marker: p.footnote_marker.clone(),
                    printed: p.printed.clone(),
                })
                .collect(),
            footnotes: self
                .footnotes
                .iter()
                .map(|f| Footnote {
                    marker: f.marker.clone(),
                    text: f.text.clone(),
                })
                .collect(),
            funding_source: self.funding.source.clone(),
            funding_as_of: self.funding.as_of,
            funding_footnote_marker: self.funding.footnote_marker.clone(),
            sources: self
                .sources
                .iter()
                .map(|s| SourceLink {
                    url: s.url.clone(),
                    label: s.label.clone(),
                    placement: match s.placement {
                        Placement::Footnotes => LinkPlacement::Footnotes,
                        Placement::EndNotes => LinkPlacement::EndNotes,
                    },
                })
                .collect(),
            sections: self
                .sections
                .iter()
                .map(|s| NarrativeSection {
                    kind: match s.kind {
                        Section::Situation => SectionKind::Situation,
                        Section::Response => SectionKind::Response,
                        Section::LessonsLearned => SectionKind::LessonsLearned,
                    },
                    title: s.title.clone(),
                    paragraphs: s.paragraphs.clone(),
                })
                .collect(),
        };
        plangraph_domain::edit::check_document(&document)
            .map_err(|e| (Problem::BadNumber, e.to_string()))?;
        if document.title.trim().is_empty() {
            return Err((Problem::BadValue, "the title is empty".to_owned()));
        }
        if document.plan_code() != self.plan.code {
            return Err((
                Problem::BadValue,
                format!(
                    "plan {} is not the plan of a {} report ({})",
                    self.plan.code,
                    self.year,
                    document.plan_code()
                ),
            ));
        }
        Ok(document)
    }
}

impl LinkRole {
    pub fn domain(self) -> OrganizationRole {
        match self {
            Self::Partner => OrganizationRole::Partner,
            Self::Donor => OrganizationRole::Donor,
        }
    }
}
