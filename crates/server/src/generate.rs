//! `plangraph generate`: writes the domain's synthetic data set into a store, through the
//! store's one write path like every other write (revisions, history, change feed).
//!
//! Published reports keep their slots: the store refuses to write synthetic data over a
//! published report (`SYNTHETIC_MISMATCH`), and such slots are counted and skipped. Like
//! `serve`, generating into an empty store first loads the bundled Peru report, so the one
//! real document is never displaced by load-test data. Running again with the same plan finds
//! its organisations by their synthetic FTS ids and rewrites the same reports: nothing changes.

use plangraph_domain::access::Actor;
use plangraph_domain::checksum::sha256_hex;
use plangraph_domain::edit::{NewOrganization, OrganizationRole, Text};
use plangraph_domain::synthetic::{self, DataSet, Plan};
use plangraph_persistence::entities::organization;
use plangraph_persistence::{
    CountryRef, ImportOptions, ReportImport, Store, WriteError, WriteRequest,
};

use crate::error::CliError;
use crate::import::load_bundled_if_empty;

/// What a run wrote.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GenerateSummary {
    pub organizations_created: usize,
    pub organizations_reused: usize,
    pub reports_written: usize,
    /// Reports already stored exactly as generated.
    pub reports_unchanged: usize,
    /// Country-years held by published reports, left alone ("PER 2023").
    pub skipped_published: Vec<String>,
}

/// Generates `plan`'s data set and writes it into `store` (migrated).
pub async fn generate(store: &Store, plan: &Plan) -> Result<GenerateSummary, CliError> {
    let set = synthetic::generate(plan)?;
    load_bundled_if_empty(store).await?;
    let mut summary = GenerateSummary::default();
    let ids = organization_ids(store, &set, &mut summary).await?;
    let actor = Actor::local("plangraph generate");
    for report in &set.reports {
        let mut organizations: Vec<(i32, OrganizationRole)> = report
            .partners
            .iter()
            .map(|&i| (ids[i], OrganizationRole::Partner))
            .collect();
        organizations.extend(
            report
                .donors
                .iter()
                .map(|&i| (ids[i], OrganizationRole::Donor)),
        );
        // The document's own text stands in for a file: the same plan, the same checksum.
        let digest = sha256_hex(format!("{:?}{organizations:?}", report.document).as_bytes());
        let import = ReportImport {
            document: &report.document,
            country: CountryRef::from_reference(report.country),
            source_name: format!("plangraph generate --seed {}", plan.seed),
            source_sha256: digest,
            synthetic: true,
            organizations,
        };
        let written = store
            .write(
                &actor,
                WriteRequest::Import {
                    import,
                    options: ImportOptions {
                        allow_removals: true,
                        ..ImportOptions::default()
                    },
                },
            )
            .await;
        match written {
            Ok(outcome) if outcome.change.is_some() => summary.reports_written += 1,
            Ok(_) => summary.reports_unchanged += 1,
            Err(WriteError::MixesSynthetic {
                stored_synthetic: false,
                ..
            }) => summary
                .skipped_published
                .push(format!("{} {}", report.country.iso3, report.document.year)),
            Err(other) => return Err(other.into()),
        }
    }
    Ok(summary)
}

/// The store id of each generated organisation, creating the ones not stored yet. An FTS id
/// held by an organisation that is not synthetic is refused before anything is written:
/// generated data never takes over a real organisation.
async fn organization_ids(
    store: &Store,
    set: &DataSet,
    summary: &mut GenerateSummary,
) -> Result<Vec<i32>, CliError> {
    let mut stored = Vec::new();
    for chunk in set.organizations.chunks(500) {
        let keys: Vec<String> = chunk.iter().map(|o| o.fts_id.to_lowercase()).collect();
        stored.extend(store.organizations_by_fts_id(&keys).await?);
    }
    if let Some(real) = stored.iter().find(|s| !s.synthetic) {
        return Err(CliError::Generate(format!(
            "organisation {} ({}) holds the FTS id {}, which generated organisations use; nothing was generated",
            real.id,
            real.name,
            real.fts_id.as_deref().unwrap_or_default()
        )));
    }
    let stored: std::collections::HashMap<String, &organization::Model> = stored
        .iter()
        .filter_map(|o| o.fts_id.as_deref().map(|f| (f.to_lowercase(), o)))
        .collect();
    let actor = Actor::local("plangraph generate");
    let mut ids = Vec::with_capacity(set.organizations.len());
    for org in &set.organizations {
        let key = org.fts_id.to_lowercase();
        if let Some(found) = stored.get(&key) {
            summary.organizations_reused += 1;
            ids.push(found.id);
            continue;
        }
        let text = |field: &'static str, value: &str| {
            Text::parse(field, value).map_err(|e| CliError::Generate(e.to_string()))
        };
        let new = NewOrganization {
            name: text("name", &org.name)?,
            acronym: Some(text("acronym", &org.acronym)?),
            org_type: Some(text("type", &org.org_type)?),
            refugee_and_migrant_led: org.refugee_and_migrant_led,
            fts_id: Some(text("ftsId", &org.fts_id)?),
            synthetic: true,
        };
        let id = match store
            .write(&actor, WriteRequest::CreateOrganization(new))
            .await
        {
            Ok(outcome) => {
                summary.organizations_created += 1;
                outcome.organization_id
            }
            // Another `generate` on the same store created it since we looked: take theirs.
            Err(WriteError::Duplicate(_)) => {
                let theirs = store
                    .organizations_by_fts_id(std::slice::from_ref(&key))
                    .await?;
                match theirs.into_iter().next() {
                    Some(found) if found.synthetic => {
                        summary.organizations_reused += 1;
                        Some(found.id)
                    }
                    _ => {
                        return Err(CliError::Generate(format!(
                            "the FTS id {} was taken by an organisation that is not synthetic while generating; nothing more was generated",
                            org.fts_id
                        )));
                    }
                }
            }
            Err(other) => return Err(other.into()),
        };
        let id = id.ok_or_else(|| {
            CliError::Generate(format!("the store returned no id for {}", org.name))
        })?;
        ids.push(id);
    }
    Ok(ids)
}
