//! Consistency checks between figures a report prints side by side.
//!
//! Printed percentages come from unrounded data, so a percentage recomputed from two rounded
//! figures may differ a little: checks allow [`PERCENT_TOLERANCE`] points, and amount checks
//! allow the rounding of the printed amounts. A check that fails is a warning, never an error:
//! the document is what was published.

use std::fmt;

use crate::report::{ReportDocument, ShareDimension};
use crate::units::{PeopleCount, Percent, Usd};

/// Percentage points a recomputed percentage may differ from the printed one.
pub const PERCENT_TOLERANCE: f64 = 1.0;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Check {
    /// people reached ÷ people targeted against the printed % reached.
    ReachedPercent,
    /// funding ÷ requirements against the printed % funded.
    FundedPercent,
    /// requirements − received against the printed unmet amount.
    Unmet,
    /// population-type shares against people reached ÷ people targeted.
    PopulationTypeShares,
}

impl Check {
    /// Stable code for scripts and API clients.
    pub fn code(self) -> &'static str {
        match self {
            Self::ReachedPercent => "REACHED_PERCENT_MISMATCH",
            Self::FundedPercent => "FUNDED_PERCENT_MISMATCH",
            Self::Unmet => "UNMET_MISMATCH",
            Self::PopulationTypeShares => "POPULATION_SHARES_MISMATCH",
        }
    }
}

/// A figure that disagrees with the figures it should follow from.
#[derive(Debug, Clone, PartialEq)]
pub struct Warning {
    pub line: usize,
    pub check: Check,
    /// The row or block ("EDUCATION", "totals").
    pub subject: String,
    /// The printed value and the value computed from the other figures.
    pub printed: String,
    pub computed: String,
    /// How the computed value was obtained ("37.4 K ÷ 103.3 K").
    pub formula: String,
}

impl fmt::Display for Warning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "line {}: {} [{}]: printed {} but {} = {}",
            self.line,
            self.subject,
            self.check.code(),
            self.printed,
            self.formula,
            self.computed
        )
    }
}

fn ratio_percent(part: u64, whole: u64) -> Option<f64> {
    (whole != 0).then(|| part as f64 * 100.0 / whole as f64)
}

fn percent_check(
    line: usize,
    check: Check,
    subject: &str,
    printed: &Percent,
    part: (&str, u64),
    whole: (&str, u64),
) -> Option<Warning> {
    let computed = ratio_percent(part.1, whole.1)?;
    ((computed - printed.as_f64()).abs() > PERCENT_TOLERANCE).then(|| Warning {
        line,
        check,
        subject: subject.to_owned(),
        printed: printed.printed().to_owned(),
        computed: format!("{computed:.1}%"),
        formula: format!("{} ÷ {}", part.0, whole.0),
    })
}

fn people(p: &PeopleCount) -> (&str, u64) {
    (p.printed(), p.value())
}

fn usd(u: &Usd) -> (&str, u64) {
    (u.printed(), u.value())
}

/// Every check DESIGN.md describes, in document order.
pub fn validate(doc: &ReportDocument) -> Vec<Warning> {
    let mut warnings = Vec::new();
    for row in &doc.sectors {
        warnings.extend(percent_check(
            row.line,
            Check::ReachedPercent,
            &row.printed_heading,
            &row.reached_percent,
            people(&row.people_reached),
            people(&row.people_targeted),
        ));
        warnings.extend(percent_check(
            row.line,
            Check::FundedPercent,
            &row.printed_heading,
            &row.funded_percent,
            usd(&row.funding),
            usd(&row.requirements),
        ));
    }

    let t = &doc.totals;
    let expected_unmet = t.requirements.value().abs_diff(t.funding_received.value());
    let slack = t.requirements.rounding() + t.funding_received.rounding() + t.unmet.rounding();
    if t.requirements.value() < t.funding_received.value()
        || expected_unmet.abs_diff(t.unmet.value()) > slack
    {
        warnings.push(Warning {
            line: t.money_line,
            check: Check::Unmet,
            subject: "totals".to_owned(),
            printed: t.unmet.printed().to_owned(),
            computed: format!("${expected_unmet}"),
            formula: format!(
                "{} − {}",
                t.requirements.printed(),
                t.funding_received.printed()
            ),
        });
    }
    warnings.extend(percent_check(
        t.percent_line,
        Check::FundedPercent,
        "totals",
        &t.funded_percent,
        usd(&t.funding_received),
        usd(&t.requirements),
    ));

    let population: Vec<_> = doc
        .shares
        .iter()
        .filter(|s| s.dimension == ShareDimension::PopulationType)
        .collect();
    if let (false, Some(reach)) = (
        population.is_empty(),
        ratio_percent(t.people_reached.value(), t.people_targeted.value()),
    ) {
        let sum: u64 = population.iter().map(|s| s.percent.hundredths()).sum();
        let sum = sum as f64 / 100.0;
        if (sum - reach).abs() > PERCENT_TOLERANCE {
            warnings.push(Warning {
                line: t.people_line,
                check: Check::PopulationTypeShares,
                subject: "population types".to_owned(),
                printed: format!("{sum:.1}% in all"),
                computed: format!("{reach:.1}%"),
                formula: format!(
                    "{} ÷ {}",
                    t.people_reached.printed(),
                    t.people_targeted.printed()
                ),
            });
        }
    }
    warnings
}
