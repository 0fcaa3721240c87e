//! The report pages over HTTP: `GET /reports` (the index), `GET /reports/{ISO3}/{YEAR}` (a
//! report as its PDF shows it, kept live by its script) and `GET /assets/{name}` (the pages'
//! own stylesheet and script, from the binary); each answers `HEAD` too.
//!
//! A page is rendered from the answer to an anonymous query run through the API's pipeline
//! ([`plangraph_pages::queries`]): the same loaders, caches, limits and single store-version
//! read as `/graphql`, and nothing a token would add. Its `ETag` is a hash (XXH3) of the page's
//! address, that answer and the assets: a reload of an unchanged report is a `304` without any
//! rendering, and a page rendered once for an answer is kept ([`Rendered`]) and served again
//! while the answer stays the same (the answer itself comes from the kept answers). Pages
//! follow `/graphql`'s rate limits and CORS, and are served in both profiles (they show what
//! anonymous queries show); `--pages false` answers them 404.

use actix_web::http::{StatusCode, header};
use actix_web::{HttpRequest, HttpResponse, web};
use async_graphql::{Request, Variables};
use plangraph_api::{Answer, Transport};
use plangraph_pages::{self as pages, assets};
use serde_json::{Value, json};
use std::hash::Hasher;

use crate::state::AppState;

/// `GET /reports`.
pub async fn index(state: web::Data<AppState>, http: HttpRequest) -> HttpResponse {
    if let Some(refused) = gate(&state, &http) {
        return refused;
    }
    let request = Request::new(pages::queries::INDEX);
    serve(&state, &http, "/reports", request, |answer| {
        Some(pages::index_page(answer))
    })
    .await
    .unwrap_or_else(|| not_found("there is no index"))
}

/// `GET /reports/{iso3}/{year}`.
pub async fn report(
    state: web::Data<AppState>,
    http: HttpRequest,
    path: web::Path<(String, String)>,
) -> HttpResponse {
    if let Some(refused) = gate(&state, &http) {
        return refused;
    }
    let (iso3, year) = path.into_inner();
    let year = year
        .parse::<i32>()
        .ok()
        .filter(|y| (1900..=2200).contains(y));
    let (true, Some(year)) = (
        iso3.len() == 3 && iso3.chars().all(|c| c.is_ascii_alphabetic()),
        year,
    ) else {
        return not_found(
            "there is no such report: a report's address is /reports/ISO3/YEAR, as /reports/PER/2023",
        );
    };
    let iso3 = iso3.to_ascii_uppercase();
    let request = Request::new(pages::queries::REPORT).variables(Variables::from_json(json!({
        "iso3": iso3,
        "year": year,
    })));
    let key = format!("/reports/{iso3}/{year}");
    serve(&state, &http, &key, request, |answer| {
        pages::report_page(answer)
    })
    .await
    .unwrap_or_else(|| {
        not_found(&format!(
            "plangraph holds no end-year report for {iso3} in {year}"
        ))
    })
}

/// Pages rendered, by their address and the hash of their address, answer and assets (their
/// `ETag`): a page is rendered once per answer, however often and however many at once ask
/// for it, and at most [`RENDERS`] different pages render at once (a page can be several times
/// its answer, which the pipeline bounds by `--max-response-bytes`). Bounded in bytes.
#[derive(Debug)]
pub struct Rendered {
    pages: moka::future::Cache<(String, u64), web::Bytes>,
    renders: tokio::sync::Semaphore,
}

/// Bytes of rendered pages kept.
const RENDERED_BYTES: u64 = 16 * 1024 * 1024;
/// Pages rendering at once.
const RENDERS: usize = 2;

impl Default for Rendered {
    fn default() -> Self {
        Self {
            pages: moka::future::Cache::builder()
                .max_capacity(RENDERED_BYTES)
                .weigher(|_, page: &web::Bytes| u32::try_from(page.len()).unwrap_or(u32::MAX))
                .build(),
            renders: tokio::sync::Semaphore::new(RENDERS),
        }
    }
}

/// Why no page was rendered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Miss {
    NothingToShow,
    Failed,
}

/// Runs `request`, and answers with the page `render` makes of its answer: `304` when the
/// client holds it, the kept page when one was rendered for this answer, a new one otherwise;
/// `None` when `render` finds nothing to show.
async fn serve(
    state: &AppState,
    http: &HttpRequest,
    key: &str,
    request: Request,
    render: impl FnOnce(&Value) -> Option<String>,
) -> Option<HttpResponse> {
    let bytes = match run(state, request).await {
        Ok(bytes) => bytes,
        Err(refused) => return Some(refused),
    };
    let mut hash = twox_hash::XxHash3_64::new();
    hash.write(key.as_bytes());
    hash.write(&bytes);
    hash.write(assets::version().as_bytes());
    let digest = hash.finish();
    let etag = format!("\"{digest:016x}\"");
    if client_holds(http, &etag) {
        return Some(not_modified(etag));
    }
    let rendered = &state.rendered;
    let page = rendered
        .pages
        .try_get_with((key.to_owned(), digest), async {
            let _turn = rendered.renders.acquire().await.map_err(|_| Miss::Failed)?;
            let answer = serde_json::from_slice::<Value>(&bytes).map_err(|_| Miss::Failed)?;
            render(&answer)
                .map(web::Bytes::from)
                .ok_or(Miss::NothingToShow)
        })
        .await;
    let page = match page {
        Ok(page) => page,
        Err(miss) if *miss == Miss::NothingToShow => return None,
        Err(_) => return Some(unavailable("INTERNAL")),
    };
    let mut reply = HttpResponse::Ok();
    reply
        .insert_header((header::ETAG, etag))
        .insert_header((header::CACHE_CONTROL, "no-cache"));
    Some(html_headers(&mut reply).body(page))
}

/// `GET` (or `HEAD`) `/assets/{name}`: immutable for a year when asked for by the URL the pages use (with
/// the content hash), revalidated otherwise.
pub async fn asset(
    state: web::Data<AppState>,
    http: HttpRequest,
    name: web::Path<String>,
) -> HttpResponse {
    if let Some(refused) = gate(&state, &http) {
        return refused;
    }
    let Some(asset) = assets::get(&name) else {
        return not_found("there is no such file");
    };
    let current = web::Query::<Vec<(String, String)>>::from_query(http.query_string())
        .map(|q| q.iter().any(|(k, v)| k == "v" && v == assets::version()))
        .unwrap_or(false);
    let etag = format!("\"{}\"", assets::version());
    if client_holds(&http, &etag) {
        return not_modified(etag);
    }
    HttpResponse::Ok()
        .content_type(asset.content_type)
        .insert_header((header::ETAG, etag))
        .insert_header((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .insert_header((
            header::CACHE_CONTROL,
            if current {
                "public, max-age=31536000, immutable"
            } else {
                "no-cache"
            },
        ))
        .body(asset.bytes)
}

/// Whether the client holds `etag` already: any item of any `If-None-Match` header, weak or
/// strong, or `*`.
pub(crate) fn client_holds(http: &HttpRequest, etag: &str) -> bool {
    http.headers()
        .get_all(header::IF_NONE_MATCH)
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .any(|t| t == "*" || t.trim_start_matches("W/") == etag)
}

/// `304`: the client's copy, tagged `etag`, is current.
pub(crate) fn not_modified(etag: String) -> HttpResponse {
    HttpResponse::NotModified()
        .insert_header((header::ETAG, etag))
        .insert_header((header::CACHE_CONTROL, "no-cache"))
        .finish()
}

/// Pages turned off, or the client over its rate: answered before any work.
fn gate(state: &AppState, http: &HttpRequest) -> Option<HttpResponse> {
    if !state.http.pages {
        return Some(not_found(
            "the report pages are off on this server (--pages false)",
        ));
    }
    crate::graphql_http::rate_limited(state, http)
}

/// Runs a page's query anonymously through the pipeline: the answer as written JSON, or the
/// page that says why there is none.
async fn run(state: &AppState, request: Request) -> Result<web::Bytes, HttpResponse> {
    match state.api.answer(request.data(Transport::HttpGet)).await {
        Answer::Written { body, .. } => Ok(body),
        Answer::Response(response) => {
            if let Some(error) = response.errors.first() {
                let code = error
                    .extensions
                    .as_ref()
                    .and_then(|e| e.get("code"))
                    .map(|c| c.to_string().trim_matches('"').to_owned())
                    .unwrap_or_else(|| "INTERNAL".to_owned());
                tracing::warn!(code, message = %error.message, "a page's query failed");
                return Err(unavailable(&code));
            }
            serde_json::to_vec(&response)
                .map(web::Bytes::from)
                .map_err(|_| unavailable("INTERNAL"))
        }
    }
}

fn html_headers(reply: &mut actix_web::HttpResponseBuilder) -> &mut actix_web::HttpResponseBuilder {
    reply
        .content_type("text/html; charset=utf-8")
        .insert_header((
            header::CONTENT_SECURITY_POLICY,
            pages::CONTENT_SECURITY_POLICY,
        ))
        .insert_header((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .insert_header((header::REFERRER_POLICY, "same-origin"))
}

fn not_found(message: &str) -> HttpResponse {
    html_headers(&mut HttpResponse::NotFound()).body(pages::message_page("Not found", message))
}

fn unavailable(code: &str) -> HttpResponse {
    let mut reply = HttpResponse::build(StatusCode::SERVICE_UNAVAILABLE);
    reply.insert_header((header::RETRY_AFTER, "5"));
    html_headers(&mut reply).body(pages::message_page(
        "The report is not available right now",
        &format!("The store did not answer ({code}). Try again in a few seconds."),
    ))
}
