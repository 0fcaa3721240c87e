//! The report pages over HTTP: `GET /reports` (the index), `GET /reports/{ISO3}/{YEAR}` (a
//! report as its PDF shows it, kept live by its script) and `GET /assets/{name}` (the pages'
//! own stylesheet and script, from the binary).
//!
//! A page is rendered from the answer to an anonymous query run through the API's pipeline
//! ([`plangraph_pages::queries`]): the same loaders, caches, limits and single store-version
//! read as `/graphql`, and nothing a token would add. Its `ETag` is a hash of that answer and
//! of the assets, so a reload of an unchanged report is a `304` (the answer itself comes from
//! the kept answers). Pages follow `/graphql`'s rate limits and CORS, and are served in both
//! profiles (they show what anonymous queries show); `--pages false` answers them 404.

use actix_web::http::{StatusCode, header};
use actix_web::{HttpRequest, HttpResponse, web};
use async_graphql::{Request, Variables};
use plangraph_api::{Answer, Transport};
use plangraph_pages::{self as pages, assets};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::state::AppState;

/// `GET /reports`.
pub async fn index(state: web::Data<AppState>, http: HttpRequest) -> HttpResponse {
    if let Some(refused) = gate(&state, &http) {
        return refused;
    }
    match run(&state, Request::new(pages::queries::INDEX)).await {
        Ok((bytes, answer)) => page(&http, &bytes, pages::index_page(&answer)),
        Err(refused) => refused,
    }
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
    let request = Request::new(pages::queries::REPORT).variables(Variables::from_json(json!({
        "iso3": iso3.to_ascii_uppercase(),
        "year": year,
    })));
    match run(&state, request).await {
        Ok((bytes, answer)) => match pages::report_page(&answer) {
            Some(rendered) => page(&http, &bytes, rendered.html),
            None => not_found(&format!(
                "plangraph holds no end-year report for {} in {year}",
                iso3.to_ascii_uppercase()
            )),
        },
        Err(refused) => refused,
    }
}

/// `GET /assets/{name}`: immutable for a year when asked for by the URL the pages use (with
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
    HttpResponse::Ok()
        .content_type(asset.content_type)
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

/// Pages turned off, or the client over its rate: answered before any work.
fn gate(state: &AppState, http: &HttpRequest) -> Option<HttpResponse> {
    if !state.http.pages {
        return Some(not_found(
            "the report pages are off on this server (--pages false)",
        ));
    }
    crate::graphql_http::rate_limited(state, http)
}

/// Runs a page's query anonymously through the pipeline: the answer as written JSON and as a
/// tree, or the page that says why there is none.
async fn run(state: &AppState, request: Request) -> Result<(web::Bytes, Value), HttpResponse> {
    let bytes = match state.api.answer(request.data(Transport::HttpGet)).await {
        Answer::Written { body, .. } => body,
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
            match serde_json::to_vec(&response) {
                Ok(bytes) => web::Bytes::from(bytes),
                Err(_) => return Err(unavailable("INTERNAL")),
            }
        }
    };
    match serde_json::from_slice(&bytes) {
        Ok(answer) => Ok((bytes, answer)),
        Err(_) => Err(unavailable("INTERNAL")),
    }
}

/// A page, or `304` when the client holds this very one.
fn page(http: &HttpRequest, answer: &[u8], html: String) -> HttpResponse {
    let mut hash = Sha256::new();
    hash.update(answer);
    hash.update(assets::version().as_bytes());
    let tag: String = hash
        .finalize()
        .iter()
        .take(12)
        .map(|b| format!("{b:02x}"))
        .collect();
    let etag = format!("\"{tag}\"");
    let held = http
        .headers()
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.split(',')
                .any(|t| t.trim().trim_start_matches("W/") == etag)
        });
    let mut reply = if held {
        HttpResponse::NotModified()
    } else {
        HttpResponse::Ok()
    };
    reply
        .insert_header((header::ETAG, etag))
        .insert_header((header::CACHE_CONTROL, "no-cache"));
    if held {
        return reply.finish();
    }
    html_headers(&mut reply).body(html)
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
