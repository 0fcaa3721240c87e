//! `GET /export/{format}?country=ISO3&year=Y&report=ID`: the command line's export over HTTP,
//! under `/graphql`'s rules (the same CORS layer, the same per-address and per-token rates;
//! it shows only what anonymous queries show, so both profiles serve it unless
//! `--exports false`).
//!
//! The file is streamed a report at a time from one read transaction. The reading runs in its
//! own task that hands chunks to the response through a two-chunk channel: a client that
//! stops reading makes the task wait, and after [`ExportAccess::send_deadline`] it gives up,
//! ending the read (its pooled connection and its export slot come back) and cutting the
//! response short. At most [`ExportAccess::max_concurrent`] exports run at once; more get 503
//! with `Retry-After`, so exports never take every connection from queries.

use std::sync::Arc;
use std::time::Duration;

use actix_web::http::{StatusCode, header};
use actix_web::{HttpRequest, HttpResponse, web};
use plangraph_exchange::{Export, ExportError, Format, Selection};
use serde_json::json;
use tokio::sync::{Semaphore, mpsc};

use crate::graphql_http::rate_limited;
use crate::state::AppState;

/// Who may export, and how many at once (clones share the slots).
#[derive(Debug, Clone)]
pub struct ExportAccess {
    pub enabled: bool,
    pub slots: Arc<Semaphore>,
    pub max_concurrent: usize,
    /// How long a chunk may wait for the client to take it.
    pub send_deadline: Duration,
}

/// Exports running at once by default: each holds one read connection while it runs.
pub const DEFAULT_MAX_CONCURRENT_EXPORTS: usize = 2;

impl ExportAccess {
    pub fn new(enabled: bool, max_concurrent: usize, send_deadline: Duration) -> Self {
        let max_concurrent = max_concurrent.max(1);
        Self {
            enabled,
            slots: Arc::new(Semaphore::new(max_concurrent)),
            max_concurrent,
            send_deadline,
        }
    }
}

impl Default for ExportAccess {
    fn default() -> Self {
        Self::new(
            true,
            DEFAULT_MAX_CONCURRENT_EXPORTS,
            Duration::from_secs(30),
        )
    }
}

fn refuse(status: StatusCode, code: &str, message: &str) -> HttpResponse {
    HttpResponse::build(status)
        .content_type("application/json")
        .body(
            json!({ "errors": [{ "message": message, "extensions": { "code": code } }] })
                .to_string(),
        )
}

/// The selection from the query string; any other parameter is refused by name.
fn selection(http: &HttpRequest) -> Result<Selection, String> {
    let mut selection = Selection::default();
    let pairs = web::Query::<Vec<(String, String)>>::from_query(http.query_string())
        .map_err(|e| format!("the query string does not parse: {e}"))?;
    let mut seen = std::collections::HashSet::new();
    for (key, value) in pairs.into_inner() {
        if !seen.insert(key.clone()) {
            return Err(format!(
                "'{key}' is given twice; an export takes one of each"
            ));
        }
        match key.as_str() {
            "country" => {
                let def = plangraph_domain::edit::country(&value).map_err(|e| e.to_string())?;
                selection.country_iso3 = Some(def.iso3.to_owned());
            }
            "year" => {
                selection.year = Some(
                    value
                        .parse()
                        .map_err(|_| format!("year '{value}' is not a year"))?,
                );
            }
            "report" => {
                selection.report_id = Some(
                    value
                        .parse()
                        .map_err(|_| format!("report '{value}' is not a report id"))?,
                );
            }
            other => {
                return Err(format!(
                    "'{other}' is not a parameter of an export (country, year, report)"
                ));
            }
        }
    }
    Ok(selection)
}

/// `GET /export/{format}`.
pub async fn export(
    state: web::Data<AppState>,
    http: HttpRequest,
    format: web::Path<String>,
) -> HttpResponse {
    if !state.exports.enabled {
        return refuse(
            StatusCode::NOT_FOUND,
            "NOT_FOUND",
            "exports are off (--exports false)",
        );
    }
    if let Some(refused) = rate_limited(&state, &http) {
        return refused;
    }
    let Some(format) = Format::parse(&format) else {
        return refuse(
            StatusCode::NOT_FOUND,
            "EXPORT_UNKNOWN_FORMAT",
            "exports are /export/json, /export/csv, /export/hxl and /export/xlsx",
        );
    };
    let selection = match selection(&http) {
        Ok(selection) => selection,
        Err(message) => return refuse(StatusCode::BAD_REQUEST, "BAD_REQUEST", &message),
    };
    let Ok(slot) = state.exports.slots.clone().try_acquire_owned() else {
        let mut reply = refuse(
            StatusCode::SERVICE_UNAVAILABLE,
            "EXPORT_BUSY",
            &format!(
                "{} exports are running, the most this server runs at once; try again shortly",
                state.exports.max_concurrent
            ),
        );
        reply
            .headers_mut()
            .insert(header::RETRY_AFTER, header::HeaderValue::from(1));
        return reply;
    };
    let mut running = match Export::start(state.api.store(), &selection, format).await {
        Ok(export) => export,
        Err(error) => {
            let status = match &error {
                ExportError::NotFound(_) => StatusCode::NOT_FOUND,
                ExportError::Store(e) if e.code() == "STORE_UNAVAILABLE" => {
                    StatusCode::SERVICE_UNAVAILABLE
                }
                _ => StatusCode::INTERNAL_SERVER_ERROR,
            };
            return refuse(status, error.code(), &error.to_string());
        }
    };
    let (tx, mut rx) = mpsc::channel::<Result<web::Bytes, std::io::Error>>(2);
    let deadline = state.exports.send_deadline;
    // Set when the file is whole: a stream that ends without it was cut short, and the response
    // must end in an error (a broken chunked body) rather than look complete.
    let whole = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let finished = whole.clone();
    actix_web::rt::spawn(async move {
        let _slot = slot;
        loop {
            let item = match running.next_chunk().await {
                Ok(Some(chunk)) => Ok(web::Bytes::from(chunk)),
                Ok(None) => {
                    finished.store(true, std::sync::atomic::Ordering::SeqCst);
                    break;
                }
                Err(error) => {
                    tracing::warn!(code = error.code(), %error, "export failed mid-stream");
                    Err(std::io::Error::other(error.to_string()))
                }
            };
            let failed = item.is_err();
            match tokio::time::timeout(deadline, tx.send(item)).await {
                Ok(Ok(())) if !failed => {}
                Ok(Ok(())) => break,
                // The client went away.
                Ok(Err(_)) => break,
                Err(_) => {
                    tracing::info!(
                        deadline_ms = deadline.as_millis() as u64,
                        "export cut short: the client did not read it"
                    );
                    break;
                }
            }
        }
    });
    let body = async_stream::stream! {
        while let Some(item) = rx.recv().await {
            yield item;
        }
        if !whole.load(std::sync::atomic::Ordering::SeqCst) {
            yield Err(std::io::Error::other("the export was cut short"));
        }
    };
    HttpResponse::Ok()
        .content_type(format.content_type())
        .insert_header((
            header::CONTENT_DISPOSITION,
            format!("attachment; filename=\"{}\"", selection.file_name(format)),
        ))
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .streaming(body)
}
