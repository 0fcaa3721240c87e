//! A response-plan report as read from its published text: figures keep their printed form,
//! narrative keeps its paragraphs, nothing is derived.

use chrono::NaiveDate;

use crate::codes::SectorCode;
use crate::units::{PeopleCount, Percent, Usd};

/// Which report of a plan cycle this is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ReportKind {
    EndYear,
    MidYear,
    Plan,
}

impl ReportKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::EndYear => "END_YEAR",
            Self::MidYear => "MID_YEAR",
            Self::Plan => "PLAN",
        }
    }

    pub fn from_stored(text: &str) -> Option<Self> {
        [Self::EndYear, Self::MidYear, Self::Plan]
            .into_iter()
            .find(|k| k.as_str() == text)
    }
}

/// One printed row of the key-figures-by-sector table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SectorRow {
    /// 1-based line of the source text, for warnings.
    pub line: usize,
    pub sector: SectorCode,
    pub printed_heading: String,
    pub people_targeted: PeopleCount,
    pub people_reached: PeopleCount,
    pub reached_percent: Percent,
    pub requirements: Usd,
    pub funding: Usd,
    pub funded_percent: Percent,
}

/// The report-wide totals, as printed (never the sum of the sector rows).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Totals {
    pub people_in_need: PeopleCount,
    pub people_targeted: PeopleCount,
    pub people_reached: PeopleCount,
    pub requirements: Usd,
    pub funding_received: Usd,
    pub unmet: Usd,
    pub funded_percent: Percent,
    /// Lines of the people and the money figures, for warnings.
    pub people_line: usize,
    pub money_line: usize,
    pub percent_line: usize,
}

/// Which breakdown a share belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ShareDimension {
    AgeGender,
    PopulationType,
}

impl ShareDimension {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::AgeGender => "AGE_GENDER",
            Self::PopulationType => "POPULATION_TYPE",
        }
    }
}

/// What a share is a share of, when the document lets us say.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ShareBasis {
    PeopleTargeted,
    PeopleReached,
}

impl ShareBasis {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::PeopleTargeted => "PEOPLE_TARGETED",
            Self::PeopleReached => "PEOPLE_REACHED",
        }
    }
}

/// One printed percentage of a breakdown, in printed order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Share {
    pub dimension: ShareDimension,
    /// 1-based position in printed order.
    pub position: u32,
    /// The label as printed, or `None` where the text carries none (the age/gender labels were
    /// icons in the PDF): never guessed.
    pub label: Option<String>,
    pub percent: Percent,
    /// `None` where the document does not say what the percentage is of.
    pub basis: Option<ShareBasis>,
}

/// Roles whose partner counts a report publishes. Counts are never summed across roles.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PartnerRole {
    Reporting,
    Implementing,
    RefugeeAndMigrantLed,
    Donor,
}

impl PartnerRole {
    pub const ALL: [Self; 4] = [
        Self::Reporting,
        Self::Implementing,
        Self::RefugeeAndMigrantLed,
        Self::Donor,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Reporting => "REPORTING",
            Self::Implementing => "IMPLEMENTING",
            Self::RefugeeAndMigrantLed => "REFUGEE_AND_MIGRANT_LED",
            Self::Donor => "DONOR",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartnerCount {
    pub role: PartnerRole,
    pub count: u32,
    /// The footnote marker printed beside the figure ("**" on implementing partners).
    pub footnote_marker: Option<String>,
    /// The printed line the count was read from.
    pub printed: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Footnote {
    pub marker: String,
    /// Paragraphs of the note joined by a blank line, lines re-joined with spaces.
    pub text: String,
}

/// Where in the document a link was printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LinkPlacement {
    /// Under the footnotes of the key-figures page (the funding dashboard link).
    Footnotes,
    /// The list of cited URLs that closes the report.
    EndNotes,
}

impl LinkPlacement {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Footnotes => "FOOTNOTES",
            Self::EndNotes => "END_NOTES",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceLink {
    pub url: String,
    /// The text printed as the link's label; the Peru report prints bare URLs, so `None`.
    pub label: Option<String>,
    pub placement: LinkPlacement,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SectionKind {
    Situation,
    Response,
    LessonsLearned,
}

impl SectionKind {
    pub const ALL: [Self; 3] = [Self::Situation, Self::Response, Self::LessonsLearned];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Situation => "SITUATION",
            Self::Response => "RESPONSE",
            Self::LessonsLearned => "LESSONS_LEARNED",
        }
    }

    /// The heading the template prints.
    pub fn heading(self) -> &'static str {
        match self {
            Self::Situation => "Situation",
            Self::Response => "Response",
            Self::LessonsLearned => "Lessons Learned",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NarrativeSection {
    pub kind: SectionKind,
    pub title: String,
    pub paragraphs: Vec<String>,
}

/// Everything a report's text holds, as published.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReportDocument {
    pub kind: ReportKind,
    pub year: i32,
    /// The title line as printed ("END-YEAR REPORT 2023").
    pub title: String,
    pub sectors: Vec<SectorRow>,
    pub totals: Totals,
    pub shares: Vec<Share>,
    pub partner_counts: Vec<PartnerCount>,
    pub footnotes: Vec<Footnote>,
    /// The funding source the `*` footnote names ("Financial Tracking Service (FTS)").
    pub funding_source: Option<String>,
    pub funding_as_of: Option<NaiveDate>,
    /// The footnote marker printed beside "BUDGET RECEIVED".
    pub funding_footnote_marker: Option<String>,
    pub sources: Vec<SourceLink>,
    pub sections: Vec<NarrativeSection>,
}

impl ReportDocument {
    /// The code of the plan the report belongs to: RMRP plans run per calendar year.
    pub fn plan_code(&self) -> String {
        format!("RMRP{}", self.year)
    }
}
