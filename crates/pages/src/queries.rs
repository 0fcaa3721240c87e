//! The GraphQL documents the pages are rendered from. They run through the API's own pipeline
//! (loaders, caches, limits) as anonymous queries, so a page shows exactly what the API shows
//! anonymously, and a repeated page is answered from the kept answers.

/// The figures the page shows and `live.js` keeps up to date: one fragment, written once,
/// for both the page's query and the live subscription.
macro_rules! figures {
    () => {
        r#"
fragment Figures on Report {
  totals {
    fundedPercent
    printed { peopleInNeed peopleTargeted peopleReached requirementsUsd fundingUsd unmetUsd fundedPercent }
  }
  sectors {
    sector { code name parent { code } }
    reachedPercent
    fundedPercent
    printed { heading peopleTargeted peopleReached reachedPercent requirementsUsd fundingUsd fundedPercent }
  }
}"#
    };
}

/// Everything the report page shows. `$iso3` and `$year` name the report.
pub const REPORT: &str = concat!(
    r#"query ReportPage($iso3: String!, $year: Int!) {
  country(iso3: $iso3) {
    iso3
    name
    report(year: $year) {
      id
      title
      year
      synthetic
      revision
      fundingAsOf
      fundingSource
      fundingFootnoteMarker
      platform { code name }
      plan { code name startYear endYear }
      ...Figures
      populationTypes { position label printed basis }
      ageGender { position label printed }
      partnerCounts { role printed footnoteMarker }
      sections { kind title paragraphs }
      footnotes { marker text }
      sources { url label placement }
    }
  }
}"#,
    figures!()
);

/// The subscription the live page runs (in `live.js`): the same figures as the page, after
/// the revision it was rendered at.
pub const LIVE: &str = concat!(
    r#"subscription LiveReport($reportId: ID!, $afterRevision: Int!) {
  reportChanged(reportId: $reportId, afterRevision: $afterRevision) {
    revision
    report { ...Figures }
  }
}"#,
    figures!()
);

/// Everything the index shows.
pub const INDEX: &str = r#"query ReportIndex {
  countries {
    iso3
    name
    platform { name }
    reports { id year title synthetic }
  }
}"#;
