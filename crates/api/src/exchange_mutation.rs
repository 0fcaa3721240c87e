//! `importDocument`: the exchange formats through the API, for partner systems that move whole
//! reports (the JSON document `GET /export/json` writes) or figures (a CSV or HXL table) with a
//! token, through the same write path, checks and history as every other write.

use async_graphql::{Context, Enum, Object, Result};
use plangraph_exchange::ApplyError;
use plangraph_exchange::apply::{self, ApplyOptions};

use crate::auth;
use crate::error::ApiError;
use crate::mutation::{
    ImportResult, WriteLimits, api, expected, renew_loaders, serve_preview, store,
};

/// What `importDocument` reads.
#[derive(Enum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum DocumentFormat {
    /// A report document or a collection of them (`format` plangraph.report or
    /// plangraph.reports): whole reports.
    Json,
    /// The sector figures table: figures for reports the store holds.
    Csv,
    /// The same table with its HXL hashtag row.
    Hxl,
}

#[derive(Debug, Default)]
pub struct ExchangeMutation;

/// `importDocument`s running at once: a file of up to the body limit is parsed and written,
/// so many at once would hold many files' worth of memory and every write slot.
pub const MAX_CONCURRENT_IMPORTS: usize = 2;

/// The slots of [`MAX_CONCURRENT_IMPORTS`], one set per schema.
#[derive(Debug, Clone)]
pub struct ImportSlots(pub std::sync::Arc<tokio::sync::Semaphore>);

impl Default for ImportSlots {
    fn default() -> Self {
        Self(std::sync::Arc::new(tokio::sync::Semaphore::new(
            MAX_CONCURRENT_IMPORTS,
        )))
    }
}

impl From<ApplyError> for ApiError {
    fn from(error: ApplyError) -> Self {
        match error {
            ApplyError::File(e) => ApiError::Exchange(e),
            ApplyError::Write { error, .. } => ApiError::Write(error),
            ApplyError::Store(e) => ApiError::store(&e),
        }
    }
}

#[Object]
impl ExchangeMutation {
    /// Imports a JSON document (whole reports) or a figures table (CSV or HXL; each row the
    /// figures of one sector of a stored report, its printed forms deciding the numbers).
    /// The whole file is checked before anything is written: a bad one is refused with an
    /// `EXCHANGE_*` code naming its line and column, and writes nothing. Each report is then
    /// one write, in file order. `country` limits the file to one country's reports;
    /// `expectedRevision` (for a file of one report) is the stored report's revision, 0 for
    /// a new one. A JSON document's organisations are found by FTS id, else by name; one the
    /// store lacks is created, which is an admin's write.
    #[allow(clippy::too_many_arguments)]
    async fn import_document(
        &self,
        ctx: &Context<'_>,
        format: DocumentFormat,
        content: String,
        country: Option<String>,
        expected_revision: Option<i32>,
        file_name: Option<String>,
        #[graphql(default)] dry_run: bool,
        #[graphql(default)] allow_removals: bool,
    ) -> Result<Vec<ImportResult>> {
        api(async move {
            let actor = auth::actor(ctx).await?;
            let _slot = match ctx.data_opt::<ImportSlots>() {
                Some(slots) => Some(
                    slots
                        .0
                        .clone()
                        .try_acquire_owned()
                        .map_err(|_| ApiError::ImportBusy(MAX_CONCURRENT_IMPORTS))?,
                ),
                None => None,
            };
            let limits = ctx.data_opt::<WriteLimits>().copied().unwrap_or_default();
            if content.len() > limits.max_report_bytes {
                return Err(ApiError::BadUserInput(format!(
                    "the document is larger than the limit of {} bytes",
                    limits.max_report_bytes
                )));
            }
            let country = country
                .as_deref()
                .map(|c| {
                    plangraph_domain::edit::country(c)
                        .map(|def| def.iso3.to_owned())
                        .map_err(ApiError::Edit)
                })
                .transpose()?;
            let name = file_name.unwrap_or_else(|| "importDocument".to_owned());
            let options = ApplyOptions {
                country: country.clone(),
                expected_revision: expected_revision.map(expected),
                allow_removals,
                dry_run,
            };
            let store = store(ctx)?;
            let applied = match format {
                DocumentFormat::Json => {
                    // Reading megabytes of JSON is CPU work: a blocking thread, not the worker.
                    let source = name.clone();
                    let docs = tokio::task::spawn_blocking(move || {
                        apply::read_json(content.as_bytes(), &source, country.as_deref())
                    })
                    .await
                    .map_err(|_| ApiError::Internal {
                        store_code: "IMPORT_TASK_FAILED",
                    })?
                    .map_err(ApiError::Exchange)?;
                    if docs.len() > 1 && options.expected_revision.is_some() {
                        return Err(ApiError::BadUserInput(
                            "expectedRevision is for a document of one report".to_owned(),
                        ));
                    }
                    apply::apply_documents(store, &actor, &name, &docs, &options).await?
                }
                DocumentFormat::Csv | DocumentFormat::Hxl => {
                    let reports =
                        apply::read_table(store, content.as_bytes(), &name, country.as_deref())
                            .await?;
                    if reports.len() > 1 && options.expected_revision.is_some() {
                        return Err(ApiError::BadUserInput(
                            "expectedRevision is for a table of one report".to_owned(),
                        ));
                    }
                    apply::apply_table(store, &actor, &name, reports, &options).await?
                }
            };
            match applied.as_slice() {
                [one] if one.outcome.preview.is_some() => {
                    if let Some(rows) = &one.outcome.preview {
                        serve_preview(ctx, rows).await?;
                    }
                }
                _ => renew_loaders(ctx)?,
            }
            Ok(applied
                .into_iter()
                .map(|a| ImportResult {
                    outcome: a.outcome,
                    dry_run,
                    warnings: Vec::new(),
                })
                .collect())
        })
        .await
    }
}
