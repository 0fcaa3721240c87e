//! Bringing files in through the store's one write path: JSON documents as whole reports, tables
//! as figures for reports the store holds. Every file is read and checked whole before the
//! first write, so a bad file writes nothing; each report is then its own write, with the
//! write path's revision check, removal consent, history and change feed.

use std::collections::{BTreeMap, HashMap, HashSet};

use plangraph_domain::access::Actor;
use plangraph_domain::edit::{NewOrganization, OrganizationRole, Text};
use plangraph_domain::reference;
use plangraph_persistence::entities::organization;
use plangraph_persistence::{
    CountryRef, ImportOptions, ReportImport, Store, StoreError, WriteError, WriteOutcome,
    WriteRequest,
};
use serde::Deserialize;
use thiserror::Error;

use crate::convert::References;
use crate::document::{
    COLLECTION_FORMAT, CollectionDoc, OrganizationDoc, REPORT_FORMAT, ReportDoc, SectorDoc,
};
use crate::error::{ExchangeError, Location, Problem};
use crate::table::{self, FigureRow, ReportKey};

/// Why an import stopped.
#[derive(Debug, Error)]
pub enum ApplyError {
    #[error(transparent)]
    File(#[from] ExchangeError),
    #[error("{report}: {error}")]
    Write { report: String, error: WriteError },
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl ApplyError {
    pub fn code(&self) -> &'static str {
        match self {
            Self::File(e) => e.code(),
            Self::Write { error, .. } => error.code(),
            Self::Store(e) => e.code(),
        }
    }
}

/// What one report's import did.
#[derive(Debug)]
pub struct Applied {
    /// `PER 2023 END_YEAR`.
    pub report: String,
    pub outcome: WriteOutcome,
}

/// How to import.
#[derive(Debug, Clone, Default)]
pub struct ApplyOptions {
    /// The only country the file's reports may be of.
    pub country: Option<String>,
    /// The stored report's revision the import expects (0: none stored yet); only for a file
    /// of one report.
    pub expected_revision: Option<i64>,
    pub allow_removals: bool,
    pub dry_run: bool,
}

/// Reads a JSON file: one report's document or a collection of them. A report of another
/// country than `country`, or the same report twice, is refused.
pub fn read_json(
    bytes: &[u8],
    source_name: &str,
    country: Option<&str>,
) -> Result<Vec<ReportDoc>, ExchangeError> {
    #[derive(Deserialize)]
    struct Head {
        format: Option<String>,
    }
    // A byte-order mark some editors write: not part of the JSON.
    let bytes = bytes.strip_prefix(b"\xef\xbb\xbf").unwrap_or(bytes);
    let head: Head =
        serde_json::from_slice(bytes).map_err(|e| ExchangeError::from_json(source_name, &e))?;
    let docs = match head.format.as_deref() {
        Some(REPORT_FORMAT) => vec![
            serde_json::from_slice::<ReportDoc>(bytes)
                .map_err(|e| ExchangeError::from_json(source_name, &e))?,
        ],
        Some(COLLECTION_FORMAT) => {
            serde_json::from_slice::<CollectionDoc>(bytes)
                .map_err(|e| ExchangeError::from_json(source_name, &e))?
                .reports
        }
        other => {
            return Err(ExchangeError::new(
                Problem::UnsupportedVersion,
                source_name,
                Some(Location { line: 1, column: 1 }),
                format!(
                    "format is {}, expected '{REPORT_FORMAT}' or '{COLLECTION_FORMAT}'",
                    other.map_or_else(|| "missing".to_owned(), |f| format!("'{f}'"))
                ),
            ));
        }
    };
    let mut seen = HashSet::new();
    for (i, doc) in docs.iter().enumerate() {
        let key = key_of(doc);
        if let Some(only) = country.filter(|c| !c.eq_ignore_ascii_case(&doc.country.iso3)) {
            return Err(ExchangeError::new(
                Problem::OtherCountry,
                source_name,
                None,
                format!(
                    "reports[{i}] is a report of {}, in an import for {}",
                    doc.country.iso3,
                    only.to_ascii_uppercase()
                ),
            ));
        }
        if !seen.insert(key.clone()) {
            return Err(ExchangeError::new(
                Problem::DuplicateRow,
                source_name,
                None,
                format!("reports[{i}] is {key} again"),
            ));
        }
        doc.to_domain().map_err(|(problem, message)| {
            ExchangeError::new(problem, source_name, None, format!("{key}: {message}"))
        })?;
        for org in &doc.organizations {
            new_organization(org).map_err(|message| {
                ExchangeError::new(
                    Problem::BadValue,
                    source_name,
                    None,
                    format!("{key}: {message}"),
                )
            })?;
        }
    }
    Ok(docs)
}

fn key_of(doc: &ReportDoc) -> String {
    format!(
        "{} {} {}",
        doc.country.iso3,
        doc.year,
        serde_json::to_value(doc.kind)
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_default()
    )
}

/// Imports documents read by [`read_json`], each report in its own write.
pub async fn apply_documents(
    store: &Store,
    actor: &Actor,
    source_name: &str,
    docs: &[ReportDoc],
    options: &ApplyOptions,
) -> Result<Vec<Applied>, ApplyError> {
    // A file of several reports is taken whole or not at all: each report first goes through
    // the write path as a dry run (authorisation, revision, removal consent, synthetic data),
    // and only when every one passes are they written. (A write landing between the two passes
    // can still refuse a later report: each report stays its own transaction.)
    if docs.len() > 1 && !options.dry_run {
        let trial = ApplyOptions {
            dry_run: true,
            ..options.clone()
        };
        for doc in docs {
            let tried = apply_document(store, actor, source_name, doc, &trial).await?;
            if !tried.outcome.removals.is_empty() && !options.allow_removals {
                return Err(ApplyError::Write {
                    report: tried.report,
                    error: WriteError::WouldRemove(tried.outcome.removals),
                });
            }
        }
    }
    let mut applied = Vec::with_capacity(docs.len());
    for doc in docs {
        applied.push(apply_document(store, actor, source_name, doc, options).await?);
    }
    Ok(applied)
}

/// Imports one document read by [`read_json`].
pub async fn apply_document(
    store: &Store,
    actor: &Actor,
    source_name: &str,
    doc: &ReportDoc,
    options: &ApplyOptions,
) -> Result<Applied, ApplyError> {
    let report = key_of(doc);
    let document = doc.to_domain().map_err(|(problem, message)| {
        ExchangeError::new(problem, source_name, None, format!("{report}: {message}"))
    })?;
    let country = doc.country_def().ok_or_else(|| {
        ExchangeError::new(
            Problem::UnknownCountry,
            source_name,
            None,
            format!("'{}' is not an R4V country code", doc.country.iso3),
        )
    })?;
    let write_error = |error| ApplyError::Write {
        report: report.clone(),
        error,
    };
    let (mut organizations, missing) = find_organizations(store, source_name, doc).await?;
    let import_options = ImportOptions {
        expected_revision: options.expected_revision,
        allow_removals: options.allow_removals,
        dry_run: options.dry_run,
    };
    let import = |organizations: Vec<(i32, OrganizationRole)>| ReportImport {
        document: &document,
        country: CountryRef::from_reference(country),
        source_name: doc.provenance.source_name.clone(),
        source_sha256: doc.provenance.sha256.clone(),
        synthetic: doc.synthetic,
        organizations,
    };
    if !missing.is_empty() && !actor.may_change_organizations() {
        return Err(write_error(WriteError::Forbidden(format!(
            "the document links {} organisation(s) this store does not hold, and adding organisations is an admin's (first: {})",
            missing.len(),
            missing[0].1.name
        ))));
    }
    if !missing.is_empty() {
        // Organisations are created only for a report the store will take: try it first.
        let trial = ImportOptions {
            dry_run: true,
            ..import_options
        };
        let outcome = store
            .write(
                actor,
                WriteRequest::Import {
                    import: import(organizations.clone()),
                    options: trial,
                },
            )
            .await
            .map_err(write_error)?;
        if !options.dry_run && !options.allow_removals && !outcome.removals.is_empty() {
            return Err(write_error(WriteError::WouldRemove(outcome.removals)));
        }
        if options.dry_run {
            return Ok(Applied { report, outcome });
        }
        for (position, org) in missing {
            let id = create_organization(store, actor, source_name, org).await?;
            organizations.insert(position, (id, org.role.domain()));
        }
    }
    let outcome = store
        .write(
            actor,
            WriteRequest::Import {
                import: import(organizations),
                options: import_options,
            },
        )
        .await
        .map_err(write_error)?;
    Ok(Applied { report, outcome })
}

/// The stored id of each of the document's organisations, in the document's order, and the
/// ones the store does not hold yet (with their position in that order).
async fn find_organizations<'d>(
    store: &Store,
    source_name: &str,
    doc: &'d ReportDoc,
) -> Result<
    (
        Vec<(i32, OrganizationRole)>,
        Vec<(usize, &'d OrganizationDoc)>,
    ),
    ApplyError,
> {
    let fts: Vec<String> = doc
        .organizations
        .iter()
        .filter_map(|o| o.fts_id.as_deref().map(str::to_lowercase))
        .collect();
    let names: Vec<String> = doc
        .organizations
        .iter()
        .filter(|o| o.fts_id.is_none())
        .map(|o| o.name.clone())
        .collect();
    let mut by_fts: HashMap<String, organization::Model> = HashMap::new();
    for chunk in fts.chunks(500) {
        for o in store.organizations_by_fts_id(chunk).await? {
            if let Some(key) = o.fts_id.as_deref().map(str::to_lowercase) {
                by_fts.entry(key).or_insert(o);
            }
        }
    }
    let mut by_name: HashMap<String, organization::Model> = HashMap::new();
    for chunk in names.chunks(500) {
        for o in store.organizations_by_name(chunk).await? {
            by_name.entry(o.name.clone()).or_insert(o);
        }
    }
    let mut found = Vec::new();
    let mut missing = Vec::new();
    for (i, org) in doc.organizations.iter().enumerate() {
        let stored = match &org.fts_id {
            Some(f) => by_fts.get(&f.to_lowercase()),
            None => by_name.get(&org.name),
        };
        match stored {
            Some(s) if s.synthetic != org.synthetic => {
                return Err(ExchangeError::new(
                    Problem::BadValue,
                    source_name,
                    None,
                    format!(
                        "organizations[{i}] ({}) is {} in the document but {} in the store: generated and real organisations never mix",
                        org.name,
                        if org.synthetic { "synthetic" } else { "real" },
                        if s.synthetic { "synthetic" } else { "real" },
                    ),
                )
                .into());
            }
            Some(s) => found.push((s.id, org.role.domain())),
            None => missing.push((i, org)),
        }
    }
    Ok((found, missing))
}

async fn create_organization(
    store: &Store,
    actor: &Actor,
    source_name: &str,
    org: &OrganizationDoc,
) -> Result<i32, ApplyError> {
    let new = new_organization(org)
        .map_err(|message| ExchangeError::new(Problem::BadValue, source_name, None, message))?;
    let outcome = store
        .write(actor, WriteRequest::CreateOrganization(new))
        .await
        .map_err(|error| ApplyError::Write {
            report: format!("organisation {}", org.name),
            error,
        })?;
    outcome.organization_id.ok_or_else(|| ApplyError::Write {
        report: format!("organisation {}", org.name),
        error: WriteError::NotFound {
            what: "organization",
            key: org.name.clone(),
        },
    })
}

/// The organisation as the write path takes it; a text it would refuse is an error.
fn new_organization(org: &OrganizationDoc) -> Result<NewOrganization, String> {
    let text = |field: &'static str, value: &str| {
        Text::parse(field, value).map_err(|e| format!("organisation '{}': {e}", org.name))
    };
    Ok(NewOrganization {
        name: text("name", &org.name)?,
        acronym: org
            .acronym
            .as_deref()
            .map(|a| text("acronym", a))
            .transpose()?,
        org_type: org
            .org_type
            .as_deref()
            .map(|t| text("type", t))
            .transpose()?,
        refugee_and_migrant_led: org.refugee_and_migrant_led,
        fts_id: org
            .fts_id
            .as_deref()
            .map(|f| text("ftsId", f))
            .transpose()?,
        synthetic: org.synthetic,
    })
}

/// Reads a table and checks every row against the store: each names a stored report (refused
/// at the first row that does not). Nothing is written.
pub async fn read_table(
    store: &Store,
    bytes: &[u8],
    source_name: &str,
    country: Option<&str>,
) -> Result<BTreeMap<ReportKey, (i32, Vec<FigureRow>)>, ApplyError> {
    let stored: HashMap<ReportKey, i32> = store
        .report_keys()
        .await?
        .into_iter()
        .filter_map(|(iso3, year, kind, id)| {
            Some((
                ReportKey {
                    iso3,
                    year,
                    kind: table::kind_of(&kind)?,
                },
                id,
            ))
        })
        .collect();
    let rows = table::read(bytes, source_name, country, Some(&stored))?;
    let mut reports: BTreeMap<ReportKey, (i32, Vec<FigureRow>)> = BTreeMap::new();
    for row in rows {
        let id = stored.get(&row.report).copied().unwrap_or_default();
        reports
            .entry(row.report.clone())
            .or_insert_with(|| (id, Vec::new()))
            .1
            .push(row);
    }
    Ok(reports)
}

/// One report of a table, ready to write: the stored report with the table's figures.
struct TableReport {
    label: String,
    document: plangraph_domain::report::ReportDocument,
    country: &'static reference::CountryDef,
    stored: plangraph_persistence::ReportRows,
}

impl TableReport {
    fn import(&self) -> ReportImport<'_> {
        ReportImport {
            document: &self.document,
            country: CountryRef::from_reference(self.country),
            source_name: self.stored.report.source_name.clone(),
            source_sha256: self.stored.report.source_sha256.clone(),
            synthetic: self.stored.report.synthetic,
            organizations: self
                .stored
                .organizations
                .iter()
                .map(|(link, o)| {
                    (
                        o.id,
                        if link.role == "DONOR" {
                            OrganizationRole::Donor
                        } else {
                            OrganizationRole::Partner
                        },
                    )
                })
                .collect(),
        }
    }
}

/// One table report through the write path, expecting the revision it was read at.
async fn write_table_report(
    store: &Store,
    actor: &Actor,
    report: &TableReport,
    allow_removals: bool,
    dry_run: bool,
) -> Result<WriteOutcome, WriteError> {
    store
        .write(
            actor,
            WriteRequest::Import {
                import: report.import(),
                options: ImportOptions {
                    expected_revision: Some(report.stored.report.revision),
                    allow_removals,
                    dry_run,
                },
            },
        )
        .await
}

/// Writes a table's figures: each report re-written with its rows' sectors replaced (or added,
/// after the printed ones), everything else as stored. Every report is built and checked
/// first, then (for several) tried as a dry run, and only then written, one write per report
/// expecting the revision its rows were read at: a refused table writes nothing.
pub async fn apply_table(
    store: &Store,
    actor: &Actor,
    source_name: &str,
    reports: BTreeMap<ReportKey, (i32, Vec<FigureRow>)>,
    options: &ApplyOptions,
) -> Result<Vec<Applied>, ApplyError> {
    let reader = store.whole_reports().await?;
    let refs = References {
        sectors: reader.sectors().await?,
        platforms: reader.platforms().await?,
    };
    let mut prepared = Vec::with_capacity(reports.len());
    for (key, (id, rows)) in reports {
        let label = format!("{} {} {}", key.iso3, key.year, key.kind);
        let Some(stored) = reader.report(id).await? else {
            return Err(ApplyError::Write {
                report: label,
                error: WriteError::NotFound {
                    what: "report",
                    key: id.to_string(),
                },
            });
        };
        if let Some(expected) = options
            .expected_revision
            .filter(|e| *e != stored.report.revision)
        {
            return Err(ApplyError::Write {
                report: label,
                error: WriteError::Conflict {
                    expected,
                    current: stored.report.revision,
                },
            });
        }
        let mut doc = ReportDoc::from_rows(&stored, &refs);
        for row in &rows {
            let figures = SectorDoc {
                code: row.sector.code.to_owned(),
                name: row.sector.name.to_owned(),
                parent: row.sector.parent.map(str::to_owned),
                printed_heading: row.sector.printed_heading.to_owned(),
                people_targeted: row.people_targeted.clone(),
                people_reached: row.people_reached.clone(),
                reached_percent: row.reached_percent.clone(),
                requirements_usd: row.requirements_usd.clone(),
                funding_usd: row.funding_usd.clone(),
                funded_percent: row.funded_percent.clone(),
            };
            match doc.sectors.iter_mut().find(|s| s.code == row.sector.code) {
                Some(existing) => {
                    // The heading stays as printed in the report.
                    let heading = std::mem::take(&mut existing.printed_heading);
                    *existing = SectorDoc {
                        printed_heading: heading,
                        ..figures
                    };
                }
                None => doc.sectors.push(figures),
            }
        }
        let first_line = rows.first().map_or(0, |r| r.line);
        let document = doc.to_domain().map_err(|(problem, message)| {
            ExchangeError::new(
                problem,
                source_name,
                Some(Location {
                    line: first_line,
                    column: 1,
                }),
                format!("{label}: {message}"),
            )
        })?;
        let country = reference::country_by_iso3(&key.iso3).ok_or_else(|| {
            ExchangeError::new(
                Problem::UnknownCountry,
                source_name,
                None,
                format!("'{}' is not an R4V country code", key.iso3),
            )
        })?;
        prepared.push(TableReport {
            label,
            document,
            country,
            stored,
        });
    }
    reader.finish().await?;
    if prepared.len() > 1 && !options.dry_run {
        for report in &prepared {
            write_table_report(store, actor, report, options.allow_removals, true)
                .await
                .map_err(|error| ApplyError::Write {
                    report: report.label.clone(),
                    error,
                })?;
        }
    }
    let mut applied = Vec::with_capacity(prepared.len());
    for report in &prepared {
        let outcome = write_table_report(
            store,
            actor,
            report,
            options.allow_removals,
            options.dry_run,
        )
        .await
        .map_err(|error| ApplyError::Write {
            report: report.label.clone(),
            error,
        })?;
        applied.push(Applied {
            report: report.label.clone(),
            outcome,
        });
    }
    Ok(applied)
}

/// What a file is, from its first bytes: a JSON document, a figures table, or report text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InputKind {
    Json,
    Table,
    ReportText,
}

pub fn detect(bytes: &[u8]) -> InputKind {
    let text = bytes.strip_prefix(b"\xef\xbb\xbf").unwrap_or(bytes);
    let start = text.iter().position(|b| !b.is_ascii_whitespace());
    match start.map(|i| text[i]) {
        Some(b'{') => InputKind::Json,
        _ if first_line(text).contains(table::COLUMNS[0].0) => InputKind::Table,
        _ => InputKind::ReportText,
    }
}

fn first_line(text: &[u8]) -> String {
    let end = text.iter().position(|b| *b == b'\n').unwrap_or(text.len());
    String::from_utf8_lossy(&text[..end.min(4096)]).into_owned()
}
