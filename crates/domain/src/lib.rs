//! The domain of plangraph: response-plan reports as their publishers print them.
//!
//! Pure types and rules, free of storage and transport: checked units ([`units`]), codes
//! ([`codes`]), template reference data ([`reference`]), the report model ([`report`]), the
//! report-text reader ([`parser`]) and its consistency checks ([`validation`]), and the
//! importer's check that a text is about the country it is imported for ([`country_check`]).

/// Who may write what: roles, and the actor every change is recorded with.
pub mod access;
pub mod checksum;
pub mod codes;
/// Refuses a text that names another R4V country far more often than the one asked for.
pub mod country_check;
/// Partners' edits to a stored report, each value checked before anything is written.
pub mod edit;
/// The importer's checks: size cap, parse, country, warnings; shared by the CLI and the API.
pub mod importer;
pub mod parser;
pub mod reference;
pub mod report;
/// `plangraph generate`'s load-test data: reports and organisations, all marked synthetic.
pub mod synthetic;
pub mod units;
pub mod validation;

pub use parser::{ParseError, ParseErrorKind, TruncationSign, parse_report};
pub use validation::{Warning, validate};

/// The text of the RMRP End-Year Report 2023 for Peru, as extracted from the published PDF.
/// Bundled so a fresh install serves a real report with no download.
pub const PERU_2023_END_YEAR: &str =
    include_str!("../../../reports/rmrp-2023-end-year-report-peru.txt");

/// The file name the bundled report is stored under in provenance.
pub const PERU_2023_END_YEAR_FILE: &str = "rmrp-2023-end-year-report-peru.txt";

#[cfg(test)]
mod peru_tests {
    use super::*;
    use crate::report::{LinkPlacement, PartnerRole, SectionKind};

    #[test]
    fn the_bundled_peru_report_reads_without_warnings() {
        let doc = parse_report(PERU_2023_END_YEAR.as_bytes());
        let doc = match doc {
            Ok(doc) => doc,
            Err(e) => panic!("{e}"),
        };
        assert_eq!(doc.sectors.len(), 13);
        assert_eq!(doc.year, 2023);
        assert_eq!(doc.totals.people_in_need.value(), 2_060_000);
        assert_eq!(doc.totals.unmet.value(), 249_340_000);
        assert_eq!(doc.shares.len(), 7);
        let counts: Vec<(PartnerRole, u32)> = doc
            .partner_counts
            .iter()
            .map(|p| (p.role, p.count))
            .collect();
        assert_eq!(
            counts,
            vec![
                (PartnerRole::Reporting, 54),
                (PartnerRole::Implementing, 62),
                (PartnerRole::RefugeeAndMigrantLed, 12),
                (PartnerRole::Donor, 23)
            ]
        );
        assert_eq!(doc.footnotes.len(), 2);
        assert_eq!(
            doc.funding_source.as_deref(),
            Some("Financial Tracking Service (FTS)")
        );
        assert_eq!(
            doc.sources
                .iter()
                .filter(|s| s.placement == LinkPlacement::EndNotes)
                .count(),
            5
        );
        let kinds: Vec<SectionKind> = doc.sections.iter().map(|s| s.kind).collect();
        assert_eq!(kinds, SectionKind::ALL.to_vec());
        assert_eq!(validate(&doc), vec![]);
    }
}
