//! The importer: report text in, one transaction out, warnings beside.

use plangraph_domain::checksum::sha256_hex;
use plangraph_domain::codes::Iso3;
use plangraph_domain::reference::{self, CountryDef};
use plangraph_domain::report::ReportDocument;
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

/// A report read, checked and ready to store: nothing has touched the store yet.
#[derive(Debug)]
pub struct PreparedImport {
    document: ReportDocument,
    country: &'static CountryDef,
    source_name: String,
    sha256: String,
    warnings: Vec<Warning>,
}

/// Reads `bytes` as report text. The country comes from `country` or, failing that, from the
/// file name (`…-peru.txt`). A structural problem is an error; consistency problems become
/// warnings.
pub fn prepare_import(
    bytes: &[u8],
    source_name: &str,
    country: Option<&str>,
) -> Result<PreparedImport, CliError> {
    let document = parse_report(bytes).map_err(|source| CliError::Report {
        file: source_name.to_owned(),
        source,
    })?;
    let country = match country {
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
    Ok(PreparedImport {
        warnings: validate(&document),
        document,
        country,
        source_name: source_name.to_owned(),
        sha256: sha256_hex(bytes),
    })
}

/// Stores a prepared report in one transaction.
pub async fn store_import(
    store: &Store,
    prepared: PreparedImport,
) -> Result<ImportSummary, CliError> {
    let outcome = store
        .import_report(&ReportImport {
            document: &prepared.document,
            country: CountryRef::from_reference(prepared.country),
            source_name: prepared.source_name,
            source_sha256: prepared.sha256,
            synthetic: false,
        })
        .await?;
    Ok(ImportSummary {
        outcome,
        warnings: prepared.warnings,
        country: prepared.country.iso3.to_owned(),
        year: prepared.document.year,
    })
}

/// Reads and stores a report: [`prepare_import`] then [`store_import`].
pub async fn import_report(
    store: &Store,
    bytes: &[u8],
    source_name: &str,
    country: Option<&str>,
) -> Result<ImportSummary, CliError> {
    store_import(store, prepare_import(bytes, source_name, country)?).await
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
