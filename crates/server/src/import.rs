//! The importer: report text in, one transaction out, warnings beside.

use plangraph_domain::checksum::sha256_hex;
use plangraph_domain::codes::Iso3;
use plangraph_domain::reference;
use plangraph_domain::{Warning, parse_report, validate};
use plangraph_persistence::{CountryRef, ImportOutcome, ReportImport, Store};

use crate::error::CliError;

/// What an import did.
#[derive(Debug)]
pub struct ImportSummary {
    pub outcome: ImportOutcome,
    pub warnings: Vec<Warning>,
    pub country: String,
    pub year: i32,
}

/// Reads `bytes` as report text and stores it. The country comes from `country` or, failing
/// that, from the file name (`…-peru.txt`). A structural problem stops the import before any
/// write; consistency problems are returned as warnings.
pub async fn import_report(
    store: &Store,
    bytes: &[u8],
    source_name: &str,
    country: Option<&str>,
) -> Result<ImportSummary, CliError> {
    let document = parse_report(bytes).map_err(|source| CliError::Report {
        file: source_name.to_owned(),
        source,
    })?;
    let def = match country {
        Some(code) => {
            let iso3 = Iso3::parse(code).map_err(|_| CliError::NotACountry(code.to_owned()))?;
            reference::country_by_iso3(iso3.as_str())
                .ok_or_else(|| CliError::NotACountry(code.to_owned()))?
        }
        None => reference::country_from_file_name(source_name).ok_or_else(|| {
            CliError::UnknownCountry {
                file: source_name.to_owned(),
            }
        })?,
    };
    let warnings = validate(&document);
    let outcome = store
        .import_report(&ReportImport {
            document: &document,
            country: CountryRef::from_reference(def),
            source_name: source_name.to_owned(),
            source_sha256: sha256_hex(bytes),
            synthetic: false,
        })
        .await?;
    Ok(ImportSummary {
        outcome,
        warnings,
        country: def.iso3.to_owned(),
        year: document.year,
    })
}

/// Loads the bundled Peru report when the store holds no report yet, so a fresh install
/// serves real data.
pub async fn load_bundled_if_empty(store: &Store) -> Result<Option<ImportSummary>, CliError> {
    if store.has_reports().await? {
        return Ok(None);
    }
    let summary = import_report(
        store,
        plangraph_domain::PERU_2023_END_YEAR.as_bytes(),
        plangraph_domain::PERU_2023_END_YEAR_FILE,
        None,
    )
    .await?;
    Ok(Some(summary))
}
