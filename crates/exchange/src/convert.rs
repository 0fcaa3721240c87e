//! Between the document and the rest of plangraph: a stored report's rows become a document
//! (export), and a document becomes the domain's report for the write path (import).

use std::collections::HashMap;

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

use crate::document::{
    Basis, CountryDoc, Dimension, Dollars, FootnoteDoc, Funding, Kind, LinkRole, OrganizationDoc,
    PartnerCountDoc, Pct, People, Placement, PlanDoc, Provenance, ReportDoc, ReportTag, Role,
    Section, SectionDoc, SectorDoc, ShareDoc, SourceDoc, TotalsDoc, VersionTag,
};
use crate::error::Problem;

impl People {
    pub(crate) fn of(value: i64, printed: &str) -> Self {
        Self {
            value: u64::try_from(value).unwrap_or_default(),
            printed: printed.to_owned(),
        }
    }

    pub(crate) fn domain(&self) -> Result<PeopleCount, String> {
        PeopleCount::parse(&self.printed).map_err(|e| e.to_string())
    }
}

impl Dollars {
    pub(crate) fn of(value: i64, printed: &str) -> Self {
        Self {
            value: u64::try_from(value).unwrap_or_default(),
            printed: printed.to_owned(),
        }
    }

    pub(crate) fn domain(&self) -> Result<Usd, String> {
        Usd::parse(&self.printed).map_err(|e| e.to_string())
    }
}

impl Pct {
    pub(crate) fn of(hundredths: i64, printed: &str) -> Self {
        Self {
            value: hundredths as f64 / 100.0,
            printed: printed.to_owned(),
        }
    }

    pub(crate) fn domain(&self) -> Result<Percent, String> {
        Percent::parse(&self.printed).map_err(|e| e.to_string())
    }
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
        check_texts(&document).map_err(|e| (Problem::BadValue, e.to_string()))?;
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

/// The checks the edit mutations give the same values: every link an absolute http(s) URL,
/// every text something to read (no control characters, at most
/// [`plangraph_domain::edit::MAX_TEXT_CHARS`]). A document must not store what a partner's
/// `setSources` or `setParagraph` would refuse.
fn check_texts(document: &ReportDocument) -> Result<(), plangraph_domain::edit::EditError> {
    use plangraph_domain::edit::{Text, url};
    Text::parse("title", &document.title)?;
    for source in &document.sources {
        url("sources.url", &source.url)?;
        if let Some(label) = &source.label {
            Text::parse("sources.label", label)?;
        }
    }
    for section in &document.sections {
        Text::parse("sections.title", &section.title)?;
        for paragraph in &section.paragraphs {
            Text::parse("sections.paragraphs", paragraph)?;
        }
    }
    for footnote in &document.footnotes {
        Text::parse("footnotes.text", &footnote.text)?;
    }
    if let Some(source) = &document.funding_source {
        Text::parse("funding.source", source)?;
    }
    Ok(())
}
