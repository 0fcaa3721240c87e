//! GraphiQL for browsers: `GET /graphql` asking for HTML gets the page
//! ([`plangraph_graphiql::PAGE`]), and `GET /graphiql/{file}` its files, all from the binary.
//! On in the development profile; in production only with `--graphiql true`. Off, both answer
//! 404 `NOT_FOUND`.

use actix_web::http::{StatusCode, header};
use actix_web::{HttpRequest, HttpResponse, web};
use plangraph_graphiql as graphiql;
use serde_json::json;

use crate::state::AppState;

/// The tag of every GraphiQL file: they change only with the Ruru release and this binary.
fn etag() -> String {
    format!(
        "\"ruru-{}-plangraph-{}\"",
        graphiql::RURU_VERSION,
        env!("CARGO_PKG_VERSION")
    )
}

fn off() -> HttpResponse {
    HttpResponse::build(StatusCode::NOT_FOUND)
        .content_type("application/json; charset=utf-8")
        .insert_header((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .body(
            json!({ "errors": [{
                "message": "GraphiQL is off (the production profile turns it off; --graphiql true turns it on)",
                "extensions": { "code": "NOT_FOUND" }
            }] })
            .to_string(),
        )
}

/// The page, for `GET /graphql` from a browser.
pub fn page(state: &AppState) -> HttpResponse {
    if !state.http.console {
        return off();
    }
    HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .insert_header((
            header::CONTENT_SECURITY_POLICY,
            graphiql::CONTENT_SECURITY_POLICY,
        ))
        .insert_header((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .insert_header((header::CACHE_CONTROL, "no-cache"))
        .body(graphiql::PAGE)
}

/// `GET /graphiql/{file}`.
pub async fn file(
    state: web::Data<AppState>,
    http: HttpRequest,
    name: web::Path<String>,
) -> HttpResponse {
    if !state.http.console {
        return off();
    }
    let Some((bytes, kind)) = graphiql::file(&name) else {
        return HttpResponse::NotFound().finish();
    };
    let etag = etag();
    if crate::pages_http::client_holds(&http, &etag) {
        return crate::pages_http::not_modified(etag);
    }
    HttpResponse::Ok()
        .insert_header((header::ETAG, etag))
        .insert_header((header::CACHE_CONTROL, "no-cache"))
        .insert_header((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .content_type(kind)
        .body(bytes)
}
