//! Partners' edits to a stored report, checked at the edge: every value an edit carries is a
//! checked domain type, so a negative count, a percent that does not parse, an unknown sector
//! or an empty name is refused here, with a stable code, before anything is written.
//!
//! Figures are written as a report prints them ("40.1 K", "$6.90 M", "36.2%"; plain
//! "40100" and "$6900000" too) and kept with that text, as imported figures are.

use std::fmt;

use thiserror::Error;

use crate::reference::{self, CountryDef, SectorDef};
use crate::report::{
    Footnote, LinkPlacement, PartnerRole, SectionKind, ShareBasis, ShareDimension, SourceLink,
};
use crate::units::{PeopleCount, Percent, UnitError, Usd};

/// Longest text a single field takes (a paragraph, a footnote); the whole Peru report is 9.6 KB.
pub const MAX_TEXT_CHARS: usize = 20_000;
/// Longest URL kept (browsers and servers commonly stop near 2,000).
pub const MAX_URL_CHARS: usize = 2_048;
/// Largest partner count taken; R4V counts are in the hundreds.
pub const MAX_COUNT: i64 = 1_000_000;

/// Why an edit was refused. Nothing is written when any of its values is refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum EditError {
    #[error("{field}: {source}")]
    InvalidFigure {
        field: &'static str,
        source: UnitError,
    },
    #[error("{field}: {value} is not a count between 0 and {MAX_COUNT}")]
    InvalidCount { field: &'static str, value: i64 },
    #[error("{field} must not be empty")]
    EmptyText { field: &'static str },
    #[error("{field} is longer than {max} characters")]
    TextTooLong { field: &'static str, max: usize },
    #[error("{field} contains a control character (only line breaks and tabs are kept)")]
    ControlCharacter { field: &'static str },
    #[error("{field}: '{value}' is not an http(s) URL")]
    InvalidUrl { field: &'static str, value: String },
    #[error("'{0}' is not a sector of the RMRP template")]
    UnknownSector(String),
    #[error("'{0}' is not an R4V country code")]
    UnknownCountry(String),
}

impl EditError {
    /// Stable code for API clients.
    pub fn code(&self) -> &'static str {
        match self {
            Self::InvalidFigure { .. } | Self::InvalidCount { .. } => "INVALID_FIGURE",
            Self::EmptyText { .. } => "EMPTY_TEXT",
            Self::TextTooLong { .. } => "TEXT_TOO_LONG",
            Self::ControlCharacter { .. } => "INVALID_TEXT",
            Self::InvalidUrl { .. } => "INVALID_URL",
            Self::UnknownSector(_) => "UNKNOWN_SECTOR",
            Self::UnknownCountry(_) => "UNKNOWN_COUNTRY",
        }
    }
}

/// Text that is not empty once trimmed, and not longer than [`MAX_TEXT_CHARS`].
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Text(String);

/// Characters that take no room: white space, and the zero-width and direction marks a text
/// consisting only of would look empty.
fn is_invisible(c: char) -> bool {
    c.is_whitespace() || matches!(c, '\u{200B}'..='\u{200F}' | '\u{2060}' | '\u{FEFF}')
}

impl Text {
    /// Text that says something: not empty or invisible once trimmed, no control characters
    /// but line breaks and tabs (a terminal or a log would act on them), at most
    /// [`MAX_TEXT_CHARS`].
    pub fn parse(field: &'static str, raw: &str) -> Result<Self, EditError> {
        let trimmed = raw.trim();
        if trimmed.chars().all(is_invisible) {
            return Err(EditError::EmptyText { field });
        }
        if trimmed
            .chars()
            .any(|c| c.is_control() && c != '\n' && c != '\t')
        {
            return Err(EditError::ControlCharacter { field });
        }
        if trimmed.chars().count() > MAX_TEXT_CHARS {
            return Err(EditError::TextTooLong {
                field,
                max: MAX_TEXT_CHARS,
            });
        }
        Ok(Self(trimmed.to_owned()))
    }

    /// An optional field: absent stays absent (`None`), an empty string clears it
    /// (`Some(None)`), anything else is checked text.
    pub fn optional(
        field: &'static str,
        raw: Option<&str>,
    ) -> Result<Option<Option<Self>>, EditError> {
        match raw {
            None => Ok(None),
            Some(text) if text.trim().is_empty() => Ok(Some(None)),
            Some(text) => Self::parse(field, text).map(|t| Some(Some(t))),
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn into_string(self) -> String {
        self.0
    }
}

impl fmt::Display for Text {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// An absolute http(s) URL with a host and no white space.
pub fn url(field: &'static str, raw: &str) -> Result<String, EditError> {
    let trimmed = raw.trim();
    let bad = || EditError::InvalidUrl {
        field,
        value: trimmed.chars().take(80).collect(),
    };
    let rest = trimmed
        .strip_prefix("https://")
        .or_else(|| trimmed.strip_prefix("http://"))
        .ok_or_else(bad)?;
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    // The host, after any user information; it must name something.
    let host = authority.rsplit('@').next().unwrap_or_default();
    if host.is_empty()
        || !host
            .chars()
            .all(|c| c.is_alphanumeric() || matches!(c, '.' | '-' | ':' | '[' | ']'))
        || !host.chars().any(char::is_alphanumeric)
        || trimmed.chars().any(char::is_whitespace)
        || trimmed.chars().count() > MAX_URL_CHARS
    {
        return Err(bad());
    }
    Ok(trimmed.to_owned())
}

/// Largest number of people served: GraphQL's `Int` is 32-bit (the world has about 8 billion
/// people; an R4V country's figures are in the millions).
pub const MAX_PEOPLE: u64 = i32::MAX as u64;
/// Largest amount served exactly: money travels as `Float`, exact up to 2^53 dollars.
pub const MAX_USD: u64 = 1 << 53;
/// Largest percentage, in hundredths (10,000%): over 100% is real (Nutrition, 101.5% funded),
/// a hundred times over is not.
pub const MAX_PERCENT_HUNDREDTHS: u64 = 1_000_000;

fn too_large(field: &'static str, printed: &str) -> EditError {
    EditError::InvalidFigure {
        field,
        source: UnitError::TooLarge(printed.to_owned()),
    }
}

/// A count of people that the API can serve back.
pub fn people(field: &'static str, raw: &str) -> Result<PeopleCount, EditError> {
    let value =
        PeopleCount::parse(raw).map_err(|source| EditError::InvalidFigure { field, source })?;
    check_people(field, &value)?;
    Ok(value)
}

/// An amount of dollars that the API can serve back exactly.
pub fn usd(field: &'static str, raw: &str) -> Result<Usd, EditError> {
    let value = Usd::parse(raw).map_err(|source| EditError::InvalidFigure { field, source })?;
    check_usd(field, &value)?;
    Ok(value)
}

pub fn percent(field: &'static str, raw: &str) -> Result<Percent, EditError> {
    let value = Percent::parse(raw).map_err(|source| EditError::InvalidFigure { field, source })?;
    check_percent(field, &value)?;
    Ok(value)
}

pub fn check_people(field: &'static str, value: &PeopleCount) -> Result<(), EditError> {
    if value.value() > MAX_PEOPLE {
        return Err(too_large(field, value.printed()));
    }
    Ok(())
}

pub fn check_usd(field: &'static str, value: &Usd) -> Result<(), EditError> {
    if value.value() > MAX_USD {
        return Err(too_large(field, value.printed()));
    }
    Ok(())
}

pub fn check_percent(field: &'static str, value: &Percent) -> Result<(), EditError> {
    if value.hundredths() > MAX_PERCENT_HUNDREDTHS {
        return Err(too_large(field, value.printed()));
    }
    Ok(())
}

/// Every figure of a parsed report within what the API can serve: a report text is checked
/// with the same bounds as a partner's edit.
pub fn check_document(doc: &crate::report::ReportDocument) -> Result<(), EditError> {
    let t = &doc.totals;
    check_people("peopleInNeed", &t.people_in_need)?;
    check_people("peopleTargeted", &t.people_targeted)?;
    check_people("peopleReached", &t.people_reached)?;
    check_usd("requirementsUsd", &t.requirements)?;
    check_usd("fundingUsd", &t.funding_received)?;
    check_usd("unmetUsd", &t.unmet)?;
    check_percent("fundedPercent", &t.funded_percent)?;
    for row in &doc.sectors {
        check_people("peopleTargeted", &row.people_targeted)?;
        check_people("peopleReached", &row.people_reached)?;
        check_percent("reachedPercent", &row.reached_percent)?;
        check_usd("requirementsUsd", &row.requirements)?;
        check_usd("fundingUsd", &row.funding)?;
        check_percent("fundedPercent", &row.funded_percent)?;
    }
    for share in &doc.shares {
        check_percent("share", &share.percent)?;
    }
    Ok(())
}

/// A count of partners or donors: a whole number from 0 to [`MAX_COUNT`].
pub fn count(field: &'static str, value: i64) -> Result<u32, EditError> {
    if (0..=MAX_COUNT).contains(&value) {
        u32::try_from(value).map_err(|_| EditError::InvalidCount { field, value })
    } else {
        Err(EditError::InvalidCount { field, value })
    }
}

/// A sector of the template by code, in any letter case.
pub fn sector(code: &str) -> Result<&'static SectorDef, EditError> {
    reference::SECTORS
        .iter()
        .find(|s| s.code.eq_ignore_ascii_case(code.trim()))
        .ok_or_else(|| EditError::UnknownSector(code.chars().take(32).collect()))
}

/// An R4V country by ISO3 code, in any letter case.
pub fn country(code: &str) -> Result<&'static CountryDef, EditError> {
    reference::COUNTRIES
        .iter()
        .find(|c| c.iso3.eq_ignore_ascii_case(code.trim()))
        .ok_or_else(|| EditError::UnknownCountry(code.chars().take(32).collect()))
}

/// The report-wide totals an edit replaces; absent figures stay as they are.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TotalsPatch {
    pub people_in_need: Option<PeopleCount>,
    pub people_targeted: Option<PeopleCount>,
    pub people_reached: Option<PeopleCount>,
    pub requirements: Option<Usd>,
    pub funding_received: Option<Usd>,
    pub unmet: Option<Usd>,
    pub funded_percent: Option<Percent>,
}

/// One row of the key-figures table; absent figures stay as they are. A row the report does
/// not have yet needs all six figures.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SectorFiguresPatch {
    pub people_targeted: Option<PeopleCount>,
    pub people_reached: Option<PeopleCount>,
    pub reached_percent: Option<Percent>,
    pub requirements: Option<Usd>,
    pub funding: Option<Usd>,
    pub funded_percent: Option<Percent>,
}

impl SectorFiguresPatch {
    /// The names of the figures this patch leaves out.
    pub fn missing(&self) -> Vec<&'static str> {
        [
            ("peopleTargeted", self.people_targeted.is_none()),
            ("peopleReached", self.people_reached.is_none()),
            ("reachedPercent", self.reached_percent.is_none()),
            ("requirementsUsd", self.requirements.is_none()),
            ("fundingUsd", self.funding.is_none()),
            ("fundedPercent", self.funded_percent.is_none()),
        ]
        .into_iter()
        .filter_map(|(name, missing)| missing.then_some(name))
        .collect()
    }
}

/// One percentage of a breakdown, in the order given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShareEntry {
    pub label: Option<Text>,
    pub percent: Percent,
    pub basis: Option<ShareBasis>,
}

/// How an organisation is linked to a report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OrganizationRole {
    Partner,
    Donor,
}

impl OrganizationRole {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Partner => "PARTNER",
            Self::Donor => "DONOR",
        }
    }
}

/// A change to one stored report. Lists (shares of a breakdown, paragraphs of a section,
/// footnotes, sources) are replaced whole, so the result is exactly what the partner sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReportEdit {
    Totals(TotalsPatch),
    /// Updates a row, or adds it when the report has none for the sector.
    SectorFigures {
        sector: &'static SectorDef,
        patch: SectorFiguresPatch,
    },
    RemoveSectorFigures {
        sector: &'static SectorDef,
    },
    Shares {
        dimension: ShareDimension,
        shares: Vec<ShareEntry>,
    },
    PartnerCount {
        role: PartnerRole,
        count: u32,
    },
    /// Adds the section or replaces its title and paragraphs.
    Section {
        kind: SectionKind,
        title: Option<Text>,
        paragraphs: Vec<Text>,
    },
    /// Replaces the paragraph at `position` (1-based) or, one past the last, appends it.
    Paragraph {
        kind: SectionKind,
        position: u32,
        text: Text,
    },
    RemoveSection {
        kind: SectionKind,
    },
    Footnotes(Vec<Footnote>),
    Sources(Vec<SourceLink>),
    LinkOrganization {
        organization_id: i32,
        role: OrganizationRole,
    },
    UnlinkOrganization {
        organization_id: i32,
        role: OrganizationRole,
    },
}

impl ReportEdit {
    /// The kind of change, as the history names it.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Totals(_) => "TOTALS",
            Self::SectorFigures { .. } => "SECTOR_FIGURES",
            Self::RemoveSectorFigures { .. } => "SECTOR_FIGURES_REMOVED",
            Self::Shares { .. } => "SHARES",
            Self::PartnerCount { .. } => "PARTNER_COUNT",
            Self::Section { .. } | Self::Paragraph { .. } => "SECTION",
            Self::RemoveSection { .. } => "SECTION_REMOVED",
            Self::Footnotes(_) => "FOOTNOTES",
            Self::Sources(_) => "SOURCES",
            Self::LinkOrganization { .. } => "ORGANIZATION_LINKED",
            Self::UnlinkOrganization { .. } => "ORGANIZATION_UNLINKED",
        }
    }
}

/// A footnote as a partner writes it.
pub fn footnote(marker: &str, text: &str) -> Result<Footnote, EditError> {
    Ok(Footnote {
        marker: Text::parse("footnote marker", marker)?.into_string(),
        text: Text::parse("footnote text", text)?.into_string(),
    })
}

/// A cited link as a partner writes it.
pub fn source(
    raw_url: &str,
    label: Option<&str>,
    placement: LinkPlacement,
) -> Result<SourceLink, EditError> {
    Ok(SourceLink {
        url: url("source url", raw_url)?,
        label: Text::optional("source label", label)?
            .flatten()
            .map(Text::into_string),
        placement,
    })
}

/// A new organisation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewOrganization {
    pub name: Text,
    pub acronym: Option<Text>,
    pub org_type: Option<Text>,
    pub refugee_and_migrant_led: bool,
    /// Its id in OCHA's Financial Tracking Service, when known.
    pub fts_id: Option<Text>,
    /// True only for organisations `plangraph generate` makes for load tests; nothing a partner
    /// writes is synthetic.
    pub synthetic: bool,
}

/// Changes to an organisation; `None` leaves a field, `Some(None)` clears an optional one.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OrganizationPatch {
    pub name: Option<Text>,
    pub acronym: Option<Option<Text>>,
    pub org_type: Option<Option<Text>>,
    pub refugee_and_migrant_led: Option<bool>,
    pub fts_id: Option<Option<Text>>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn figures_are_read_as_printed_and_refused_when_they_do_not_parse() {
        assert_eq!(
            people("peopleReached", "40.1 K").map(|p| p.value()),
            Ok(40_100)
        );
        assert_eq!(
            people("peopleReached", "40100").map(|p| p.value()),
            Ok(40_100)
        );
        assert_eq!(
            usd("fundingUsd", "$6.90 M").map(|u| u.value()),
            Ok(6_900_000)
        );
        assert_eq!(
            percent("fundedPercent", "101.5%").map(|p| p.hundredths()),
            Ok(10_150)
        );
        for bad in [
            people("peopleReached", "-5").map(|_| ()),
            usd("fundingUsd", "6.9 M").map(|_| ()),
            percent("fundedPercent", "36.2").map(|_| ()),
            percent("fundedPercent", "abc%").map(|_| ()),
        ] {
            assert_eq!(bad.map_err(|e| e.code()), Err("INVALID_FIGURE"));
        }
    }

    #[test]
    fn figures_the_api_cannot_serve_back_are_refused() {
        for bad in [
            people("peopleReached", "2.2 B").map(|_| ()),
            people("peopleReached", "2200000000").map(|_| ()),
            people("peopleReached", "9223372036854775808").map(|_| ()),
            usd("fundingUsd", "$18446744073709551615").map(|_| ()),
            usd("fundingUsd", "$9007199254740993").map(|_| ()),
            percent("fundedPercent", "99999999999999999%").map(|_| ()),
            percent("fundedPercent", "10000.01%").map(|_| ()),
        ] {
            assert_eq!(bad.map_err(|e| e.code()), Err("INVALID_FIGURE"));
        }
        assert!(people("peopleInNeed", "2147483647").is_ok());
        assert!(usd("requirementsUsd", "$9007199254740992").is_ok());
        assert!(percent("fundedPercent", "101.5%").is_ok());
    }

    #[test]
    fn text_with_control_characters_or_nothing_visible_is_refused() {
        assert_eq!(
            Text::parse("name", "Evil\u{1b}[2J").map_err(|e| e.code()),
            Err("INVALID_TEXT")
        );
        assert_eq!(
            Text::parse("name", "a\u{0}b").map_err(|e| e.code()),
            Err("INVALID_TEXT")
        );
        assert_eq!(
            Text::parse("paragraph", "\u{200B}\u{FEFF}").map_err(|e| e.code()),
            Err("EMPTY_TEXT")
        );
        assert!(Text::parse("footnote", "First part.\n\nSecond\tpart.").is_ok());
    }

    #[test]
    fn counts_are_whole_and_not_negative() {
        assert_eq!(count("count", 54), Ok(54));
        assert_eq!(
            count("count", -1).map_err(|e| e.code()),
            Err("INVALID_FIGURE")
        );
        assert_eq!(
            count("count", MAX_COUNT + 1).map_err(|e| e.code()),
            Err("INVALID_FIGURE")
        );
    }

    #[test]
    fn names_and_paragraphs_must_say_something() {
        assert_eq!(
            Text::parse("name", "  ").map_err(|e| e.code()),
            Err("EMPTY_TEXT")
        );
        assert_eq!(
            Text::parse("name", " UNHCR ").map(Text::into_string),
            Ok("UNHCR".to_owned())
        );
        let long = "x".repeat(MAX_TEXT_CHARS + 1);
        assert_eq!(
            Text::parse("paragraph", &long).map_err(|e| e.code()),
            Err("TEXT_TOO_LONG")
        );
        assert_eq!(Text::optional("acronym", Some("")), Ok(Some(None)));
        assert_eq!(Text::optional("acronym", None), Ok(None));
    }

    #[test]
    fn sources_are_absolute_web_urls() {
        assert!(url("url", "https://www.r4v.info/es/document/SOP_Trata_RyM_Peru").is_ok());
        for bad in [
            "ftp://x.org/a",
            "https:///path",
            "www.r4v.info",
            "https://a b.org",
            "",
        ] {
            assert_eq!(
                url("url", bad).map_err(|e| e.code()),
                Err("INVALID_URL"),
                "{bad}"
            );
        }
    }

    #[test]
    fn sectors_and_countries_are_found_in_any_letter_case_or_refused() {
        assert_eq!(sector("pro-gbv").map(|s| s.code), Ok("PRO-GBV"));
        assert_eq!(sector("XYZ").map_err(|e| e.code()), Err("UNKNOWN_SECTOR"));
        assert_eq!(country("per").map(|c| c.iso3), Ok("PER"));
        assert_eq!(country("VEN").map_err(|e| e.code()), Err("UNKNOWN_COUNTRY"));
    }

    #[test]
    fn a_new_row_lists_the_figures_it_lacks() {
        let patch = SectorFiguresPatch {
            people_reached: people("peopleReached", "1 K").ok(),
            ..Default::default()
        };
        assert_eq!(patch.missing().len(), 5);
        assert!(!patch.missing().contains(&"peopleReached"));
    }
}
