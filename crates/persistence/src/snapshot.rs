//! A report as a flat list of `path = value` pairs, and the difference of two such lists.
//!
//! Every write compares the report before and after it in this form, inside its transaction,
//! so the history records what the store really changed (not what a client said it sent),
//! an unchanged write is recognised and recorded as nothing, and a re-import that would
//! remove content is recognised before it commits.
//!
//! Paths name things by their natural keys (`sectors.EDU.peopleReached`,
//! `sections.RESPONSE.paragraphs.3`, `partnerCounts.DONOR`), so the diff of a changed figure is
//! one line whatever else moved. Figures are compared as printed: the printed text decides the
//! number.

use std::collections::HashMap;

use crate::entities::organization;
use crate::field_change::FieldChange;
use crate::rows::ReportRows;

/// A report's rows before and after a write, and what changed between them.
pub(crate) struct Compared {
    pub before: Option<ReportRows>,
    pub after: ReportRows,
    /// [`Snapshot::diff`].
    pub fields: Vec<FieldChange>,
    /// [`Snapshot::removals`], when asked for.
    pub removals: Vec<FieldChange>,
}

/// Compares a report before and after a write on a blocking thread: two whole-report
/// snapshots and their diff cost CPU in proportion to the report's size (not measured here),
/// which a request worker, serving every other request on its thread, should not spend.
pub(crate) async fn compare(
    before: Option<ReportRows>,
    after: ReportRows,
    with_removals: bool,
) -> Result<Compared, crate::StoreError> {
    tokio::task::spawn_blocking(move || {
        let old = before.as_ref().map(Snapshot::of_report).unwrap_or_default();
        let new = Snapshot::of_report(&after);
        Compared {
            fields: old.diff(&new),
            removals: if with_removals {
                old.removals(&new)
            } else {
                Vec::new()
            },
            before,
            after,
        }
    })
    .await
    .map_err(|e| crate::StoreError::Unavailable(format!("comparing a report's versions: {e}")))
}

/// The list a text item belongs to, for paths whose items are texts a reader would miss:
/// `sections.K.paragraphs.N` → `sections.K.paragraphs`, `sources.N.url` → `sources.url`,
/// `footnotes.N.text` → `footnotes.text`.
fn text_list(path: &str) -> Option<String> {
    let parts: Vec<&str> = path.split('.').collect();
    match parts.as_slice() {
        ["sections", kind, "paragraphs", _] => Some(format!("sections.{kind}.paragraphs")),
        ["sources", _, "url"] => Some("sources.url".to_owned()),
        ["footnotes", _, "text"] => Some("footnotes.text".to_owned()),
        _ => None,
    }
}

/// Ordered `path = value` pairs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Snapshot(Vec<(String, String)>);

impl Snapshot {
    fn put(&mut self, path: String, value: impl Into<String>) {
        self.0.push((path, value.into()));
    }

    fn put_opt(&mut self, path: String, value: Option<&str>) {
        if let Some(value) = value {
            self.put(path, value);
        }
    }

    pub fn of_report(rows: &ReportRows) -> Self {
        let mut s = Self::default();
        let r = &rows.report;
        s.put("report.title".into(), r.title.as_str());
        s.put("report.kind".into(), r.kind.as_str());
        s.put("report.year".into(), r.year.to_string());
        s.put_opt("report.fundingSource".into(), r.funding_source.as_deref());
        s.put_opt(
            "report.fundingAsOf".into(),
            r.funding_as_of.map(|d| d.to_string()).as_deref(),
        );
        s.put_opt(
            "report.fundingFootnoteMarker".into(),
            r.funding_footnote_marker.as_deref(),
        );
        s.put("provenance.sourceName".into(), r.source_name.as_str());
        s.put("provenance.sha256".into(), r.source_sha256.as_str());
        if let Some(t) = &rows.totals {
            for (name, printed) in [
                ("peopleInNeed", &t.people_in_need_printed),
                ("peopleTargeted", &t.people_targeted_printed),
                ("peopleReached", &t.people_reached_printed),
                ("requirementsUsd", &t.requirements_printed),
                ("fundingUsd", &t.funding_printed),
                ("unmetUsd", &t.unmet_printed),
                ("fundedPercent", &t.funded_percent_printed),
            ] {
                s.put(format!("totals.{name}"), printed.as_str());
            }
        }
        let order: Vec<&str> = rows
            .sectors
            .iter()
            .map(|f| rows.sector_code(f.sector_id))
            .collect();
        if !order.is_empty() {
            s.put("sectors.order".into(), order.join(" "));
        }
        for f in &rows.sectors {
            let code = rows.sector_code(f.sector_id);
            s.put(
                format!("sectors.{code}.heading"),
                f.printed_heading.as_str(),
            );
            for (name, printed) in [
                ("peopleTargeted", &f.people_targeted_printed),
                ("peopleReached", &f.people_reached_printed),
                ("reachedPercent", &f.reached_percent_printed),
                ("requirementsUsd", &f.requirements_printed),
                ("fundingUsd", &f.funding_printed),
                ("fundedPercent", &f.funded_percent_printed),
            ] {
                s.put(format!("sectors.{code}.{name}"), printed.as_str());
            }
        }
        for sh in &rows.shares {
            let dim = match sh.dimension.as_str() {
                "AGE_GENDER" => "ageGender",
                "POPULATION_TYPE" => "populationTypes",
                other => other,
            };
            let at = format!("{dim}.{}", sh.position);
            s.put(at.clone(), sh.percent_printed.as_str());
            s.put_opt(format!("{at}.label"), sh.label.as_deref());
            s.put_opt(format!("{at}.basis"), sh.basis.as_deref());
        }
        for p in &rows.partner_counts {
            let at = format!("partnerCounts.{}", p.role);
            s.put(at.clone(), p.count.to_string());
            s.put(format!("{at}.printed"), p.printed.as_str());
            s.put_opt(format!("{at}.footnoteMarker"), p.footnote_marker.as_deref());
        }
        for section in &rows.sections {
            let at = format!("sections.{}", section.section.kind);
            s.put(format!("{at}.title"), section.section.title.as_str());
            for (n, paragraph) in (1..).zip(&section.paragraphs) {
                s.put(format!("{at}.paragraphs.{n}"), paragraph.as_str());
            }
        }
        for (n, f) in (1..).zip(&rows.footnotes) {
            s.put(format!("footnotes.{n}.marker"), f.marker.as_str());
            s.put(format!("footnotes.{n}.text"), f.body.as_str());
        }
        for (n, l) in (1..).zip(&rows.sources) {
            s.put(format!("sources.{n}.url"), l.url.as_str());
            s.put_opt(format!("sources.{n}.label"), l.label.as_deref());
            s.put(format!("sources.{n}.placement"), l.placement.as_str());
        }
        for (link, org) in &rows.organizations {
            let list = if link.role == "DONOR" {
                "donors"
            } else {
                "partners"
            };
            s.put(format!("{list}.{}", org.id), org.name.as_str());
        }
        s
    }

    pub fn of_organization(org: &organization::Model) -> Self {
        let mut s = Self::default();
        s.put("organization.name".into(), org.name.as_str());
        s.put_opt("organization.acronym".into(), org.acronym.as_deref());
        s.put_opt("organization.type".into(), org.org_type.as_deref());
        s.put(
            "organization.refugeeAndMigrantLed".into(),
            org.refugee_and_migrant_led.to_string(),
        );
        s.put_opt("organization.ftsId".into(), org.fts_id.as_deref());
        if org.synthetic {
            s.put("organization.synthetic".into(), "true");
        }
        s
    }

    /// What going from `self` to `after` takes away, for an import's consent check: a value
    /// gone, a text cut short, and a paragraph, footnote or source whose text is no longer
    /// anywhere in its list (dropped or rewritten: paths are positions, so dropping one item and
    /// adding another would otherwise look like two edits).
    pub fn removals(&self, after: &Snapshot) -> Vec<FieldChange> {
        let now: HashMap<&str, &str> = after
            .0
            .iter()
            .map(|(p, v)| (p.as_str(), v.as_str()))
            .collect();
        let mut lists: HashMap<String, Vec<&str>> = HashMap::new();
        for (path, value) in &after.0 {
            if let Some(list) = text_list(path) {
                lists.entry(list).or_default().push(value.as_str());
            }
        }
        let mut removals = Vec::new();
        for (path, before) in &self.0 {
            let after_value = now.get(path.as_str()).copied();
            let removed = match after_value {
                None => true,
                Some(a) if a == before => false,
                Some(a) => {
                    let cut = a.len() < before.len() && before.starts_with(a);
                    let gone_from_list = text_list(path).is_some_and(|list| {
                        !lists
                            .get(&list)
                            .is_some_and(|values| values.contains(&before.as_str()))
                    });
                    cut || gone_from_list
                }
            };
            if removed {
                removals.push(FieldChange {
                    path: path.clone(),
                    before: Some(before.clone()),
                    after: after_value.map(str::to_owned),
                });
            }
        }
        removals
    }

    /// What changed from `self` to `after`: changed and added values in `after`'s order, then
    /// removed ones in `self`'s order.
    pub fn diff(&self, after: &Snapshot) -> Vec<FieldChange> {
        let before: HashMap<&str, &str> = self
            .0
            .iter()
            .map(|(p, v)| (p.as_str(), v.as_str()))
            .collect();
        let now: HashMap<&str, &str> = after
            .0
            .iter()
            .map(|(p, v)| (p.as_str(), v.as_str()))
            .collect();
        let mut changes: Vec<FieldChange> = after
            .0
            .iter()
            .filter(|(p, v)| before.get(p.as_str()) != Some(&v.as_str()))
            .map(|(p, v)| FieldChange {
                path: p.clone(),
                before: before.get(p.as_str()).map(|b| (*b).to_owned()),
                after: Some(v.clone()),
            })
            .collect();
        changes.extend(
            self.0
                .iter()
                .filter(|(p, _)| !now.contains_key(p.as_str()))
                .map(|(p, v)| FieldChange {
                    path: p.clone(),
                    before: Some(v.clone()),
                    after: None,
                }),
        );
        changes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snap(pairs: &[(&str, &str)]) -> Snapshot {
        Snapshot(
            pairs
                .iter()
                .map(|(p, v)| ((*p).to_owned(), (*v).to_owned()))
                .collect(),
        )
    }

    #[test]
    fn the_diff_lists_changes_additions_then_removals() {
        let before = snap(&[("a", "1"), ("b", "2"), ("c", "3")]);
        let after = snap(&[("a", "1"), ("b", "20"), ("d", "4")]);
        let paths: Vec<(String, Option<String>, Option<String>)> = before
            .diff(&after)
            .into_iter()
            .map(|c| (c.path, c.before, c.after))
            .collect();
        assert_eq!(
            paths,
            vec![
                ("b".into(), Some("2".into()), Some("20".into())),
                ("d".into(), None, Some("4".into())),
                ("c".into(), Some("3".into()), None),
            ]
        );
        assert!(before.diff(&before).is_empty());
    }

    #[test]
    fn a_removal_is_a_value_gone_a_text_cut_short_or_a_list_item_dropped() {
        let before = snap(&[
            ("totals.peopleReached", "513.6 K"),
            ("sections.R.paragraphs.1", "First."),
            ("sections.R.paragraphs.2", "Second."),
            ("sections.R.paragraphs.3", "Third."),
            ("sources.1.url", "https://a.org/doc"),
            ("partnerCounts.DONOR", "23"),
        ]);
        let paths = |after: &Snapshot| -> Vec<String> {
            before.removals(after).into_iter().map(|r| r.path).collect()
        };
        // A figure changing is not a removal; an added paragraph neither.
        let edited = snap(&[
            ("totals.peopleReached", "520.0 K"),
            ("sections.R.paragraphs.1", "First."),
            ("sections.R.paragraphs.2", "Second."),
            ("sections.R.paragraphs.3", "Third."),
            ("sections.R.paragraphs.4", "Fourth."),
            ("sources.1.url", "https://a.org/doc"),
            ("partnerCounts.DONOR", "23"),
        ]);
        assert!(paths(&edited).is_empty());
        // Dropping the second paragraph and appending another keeps the count.
        let swapped = snap(&[
            ("totals.peopleReached", "513.6 K"),
            ("sections.R.paragraphs.1", "First."),
            ("sections.R.paragraphs.2", "Third."),
            ("sections.R.paragraphs.3", "New."),
            ("sources.1.url", "https://a.org/doc"),
            ("partnerCounts.DONOR", "23"),
        ]);
        assert_eq!(paths(&swapped), vec!["sections.R.paragraphs.2"]);
        // Cut short, and gone.
        let cut = snap(&[
            ("totals.peopleReached", "513.6 K"),
            ("sections.R.paragraphs.1", "First."),
            ("sections.R.paragraphs.2", "Second."),
            ("sections.R.paragraphs.3", "Thi"),
            ("sources.1.url", "https://a.org/d"),
        ]);
        assert_eq!(
            paths(&cut),
            vec![
                "sections.R.paragraphs.3",
                "sources.1.url",
                "partnerCounts.DONOR"
            ]
        );
    }
}
