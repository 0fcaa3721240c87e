//! The importer at the command line: the domain's checks, then the store's one write path.

use plangraph_domain::Warning;
use plangraph_domain::access::Actor;
use plangraph_domain::importer::{self, ImportRequest, PreparedImport};
use plangraph_persistence::{ImportOptions, ReportImport, Store, WriteOutcome, WriteRequest};

use crate::error::CliError;

/// What an import did.
#[derive(Debug)]
pub struct ImportSummary {
    pub outcome: WriteOutcome,
    pub warnings: Vec<Warning>,
    pub country: String,
    pub year: i32,
}

impl ImportSummary {
    /// The stored report's id (on a dry run of a new report: none).
    pub fn report_id(&self) -> Option<i32> {
        self.outcome.report_id
    }
}

/// How the command line imports.
#[derive(Debug, Clone, Copy)]
pub struct ImportFlags {
    pub allow_removals: bool,
    pub override_country_check: bool,
    pub dry_run: bool,
    pub max_bytes: usize,
}

impl Default for ImportFlags {
    fn default() -> Self {
        Self {
            allow_removals: false,
            override_country_check: false,
            dry_run: false,
            max_bytes: importer::DEFAULT_MAX_REPORT_BYTES,
        }
    }
}

/// Reads and checks `bytes` as report text; nothing touches the store.
pub fn prepare_import(
    bytes: &[u8],
    source_name: &str,
    country: Option<&str>,
    flags: ImportFlags,
) -> Result<PreparedImport, CliError> {
    Ok(importer::prepare(ImportRequest {
        bytes,
        source_name,
        country,
        override_country_check: flags.override_country_check,
        max_bytes: flags.max_bytes,
    })?)
}

/// Stores a prepared report through the store's write path, as the local operator.
pub async fn store_import(
    store: &Store,
    prepared: PreparedImport,
    flags: ImportFlags,
) -> Result<ImportSummary, CliError> {
    let outcome = store
        .write(
            &Actor::local("plangraph import"),
            WriteRequest::Import {
                import: ReportImport::published(&prepared),
                options: ImportOptions {
                    expected_revision: None,
                    allow_removals: flags.allow_removals,
                    dry_run: flags.dry_run,
                },
            },
        )
        .await?;
    Ok(ImportSummary {
        outcome,
        warnings: prepared.warnings,
        country: prepared.country.iso3.to_owned(),
        year: prepared.document.year,
    })
}

/// Reads and stores a report with the default flags: [`prepare_import`] then
/// [`store_import`].
pub async fn import_report(
    store: &Store,
    bytes: &[u8],
    source_name: &str,
    country: Option<&str>,
) -> Result<ImportSummary, CliError> {
    let flags = ImportFlags::default();
    store_import(
        store,
        prepare_import(bytes, source_name, country, flags)?,
        flags,
    )
    .await
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
