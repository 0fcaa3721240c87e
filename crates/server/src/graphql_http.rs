//! GraphQL over HTTP, our own handler (the GraphQL-over-HTTP specification, checked by the
//! `graphql-http` audit): `Accept` negotiation, the body read in bounded chunks, and a status
//! and a code for every way a request can be wrong before it reaches the schema.
//!
//! | status | code | when |
//! |---|---|---|
//! | 400 | `BAD_REQUEST` | a body that is not JSON, parameters of the wrong shape, no `query`, a batch |
//! | 400 | `CSRF_PREVENTED` | a GET with a query, or a form or text POST, without a preflight header |
//! | 405 | `METHOD_NOT_ALLOWED` | a mutation over GET (the schema's pipeline decides) |
//! | 406 | `NOT_ACCEPTABLE` | `Accept` names neither JSON media type nor `text/event-stream` |
//! | 413 | `PAYLOAD_TOO_LARGE` | a body over the limit (never read past it) |
//! | 429 | `RATE_LIMITED` | over the client address's or the token's rate (with `Retry-After`) |
//! | 415 | `UNSUPPORTED_MEDIA_TYPE` | a POST that is not JSON, plain text (JSON) or a form |
//!
//! With `application/graphql-response+json` a request the schema refused before executing it
//! (parse, validation, limits) is a 400 without `data`; with `application/json` it is a 200, as
//! the specification asks for that media type. With `text/event-stream` the answer is a
//! GraphQL-over-SSE stream, with `multipart/mixed;subscriptionSpec="1.0"` a multipart one
//! ([`crate::stream`]): queries, mutations and subscriptions alike. A request that carries an
//! SSE reservation token belongs to the single connection mode
//! ([`crate::stream::reservations`]).

use actix_web::http::{StatusCode, header};
use actix_web::{HttpMessage, HttpRequest, HttpResponse, web};
use async_graphql::futures_util::StreamExt;
use async_graphql::{Request, Response, Variables};
use plangraph_api::{Answer, Credentials, RequestId, Transport};
use serde_json::{Map, Value, json};

use crate::chunked::Chunks;
pub use crate::media::{Media, negotiate};
use crate::state::AppState;
pub use crate::state::{DEFAULT_MAX_BODY_BYTES, HttpLimits};
use crate::stream::{self, Framing, reservations};

/// An error the transport answers itself, before the schema sees the request.
fn refuse(media: Media, status: StatusCode, code: &str, message: &str) -> HttpResponse {
    let mut reply = HttpResponse::build(status);
    reply.content_type(media.content_type());
    if status == StatusCode::METHOD_NOT_ALLOWED {
        reply.insert_header((header::ALLOW, "GET, POST"));
    }
    reply.body(
        json!({ "errors": [{ "message": message, "extensions": { "code": code } }] }).to_string(),
    )
}

/// Codes of errors that stop a request before it executes (with every limit's,
/// [`plangraph_api::limits::CODES`]): such a response has no `data`.
const REQUEST_ERROR_CODES: &[&str] = &[
    "GRAPHQL_PARSE_FAILED",
    "GRAPHQL_VALIDATION_FAILED",
    "METHOD_NOT_ALLOWED",
];

fn is_request_error(code: &str) -> bool {
    REQUEST_ERROR_CODES.contains(&code) || plangraph_api::limits::CODES.contains(&code)
}

/// A request whose JSON holds more values than its variables may (`TOO_MANY_VALUES`), refused
/// before the text is built into a tree (see [`plangraph_api::limits::json`]).
fn too_wide(state: &AppState, media: Media, text: &[u8]) -> Option<HttpResponse> {
    let error = plangraph_api::limits::check_json(text, state.api.query_limits()).err()?;
    Some(answer(media, Response::from_errors(vec![error.into()])))
}

fn code_of(error: &async_graphql::ServerError) -> Option<String> {
    match error.extensions.as_ref()?.get("code")? {
        async_graphql::Value::String(code) => Some(code.clone()),
        _ => None,
    }
}

/// Writes the schema's response: statuses by media type, no `data` for a request error. The
/// body is written in chunks ([`Chunks`]) and the response's tree dropped before it is sent.
fn answer(media: Media, response: Response) -> HttpResponse {
    let mut body = Chunks::new();
    let (status, written) = write(media, &response, &mut body);
    drop(response);
    if written {
        reply(media, status, body.into_body())
    } else {
        reply(media, status, INTERNAL_BODY)
    }
}

fn reply(
    media: Media,
    status: StatusCode,
    body: impl actix_web::body::MessageBody + 'static,
) -> HttpResponse {
    let mut reply = HttpResponse::build(status);
    reply.content_type(media.content_type());
    if status == StatusCode::METHOD_NOT_ALLOWED {
        reply.insert_header((header::ALLOW, "POST"));
    }
    reply.body(body)
}

/// The status and body of the schema's response (one buffer: a stream's events).
pub(crate) fn render(media: Media, response: &Response) -> (StatusCode, String) {
    let mut body = Vec::new();
    let (status, written) = write(media, response, &mut body);
    // serde_json writes UTF-8 only.
    match String::from_utf8(body) {
        Ok(body) if written => (status, body),
        _ => (status, INTERNAL_BODY.to_owned()),
    }
}

/// The body of an answer that could not be written.
const INTERNAL_BODY: &str =
    r#"{"errors":[{"message":"internal error","extensions":{"code":"INTERNAL"}}]}"#;

/// Writes the schema's response to `out`; says its status, and whether it was written whole
/// (if not, the caller sends [`INTERNAL_BODY`] instead).
fn write(media: Media, response: &Response, out: &mut impl std::io::Write) -> (StatusCode, bool) {
    let codes: Vec<String> = response.errors.iter().filter_map(code_of).collect();
    let request_error = response.data == async_graphql::Value::Null
        && !response.errors.is_empty()
        && codes.iter().any(|c| is_request_error(c));
    let status = if codes.iter().any(|c| c == "METHOD_NOT_ALLOWED") {
        StatusCode::METHOD_NOT_ALLOWED
    } else if request_error && media == Media::GraphqlResponse {
        StatusCode::BAD_REQUEST
    } else {
        StatusCode::OK
    };
    let written = if request_error {
        serde_json::to_writer(&mut *out, &json!({ "errors": response.errors }))
    } else {
        serde_json::to_writer(&mut *out, &response)
    };
    if let Err(e) = &written {
        tracing::error!(error = %e, "a response could not be written");
    }
    (status, written.is_ok())
}

/// Executes `params`: an anonymous query's answer may come from, or be kept in, the answers
/// the pipeline keeps at the store's current version (`x-plangraph-cache: hit` or `miss`).
async fn respond(
    state: &AppState,
    media: Media,
    params: Params,
    http: &HttpRequest,
    get: bool,
) -> HttpResponse {
    // A POST with a reservation token is an operation of the single connection mode (the
    // stream itself is opened by a GET).
    if let Some(token) = reservations::token_of(http, get) {
        if get && media == Media::EventStream {
            return reservations::connect(state, &token);
        }
        let operation_id = params
            .extensions
            .as_ref()
            .and_then(|e| e.get("operationId"))
            .and_then(|id| match id {
                Value::String(id) => Some(id.clone()),
                Value::Number(id) => Some(id.to_string()),
                _ => None,
            });
        return reservations::execute(state, &token, operation_id, build(params, http, get)).await;
    }
    match media {
        Media::EventStream => {
            return stream::respond(state, build(params, http, get), Framing::Sse).await;
        }
        Media::Multipart => {
            return stream::respond(state, build(params, http, get), Framing::Multipart).await;
        }
        Media::GraphqlResponse | Media::Json => {}
    }
    match state.api.answer(build(params, http, get)).await {
        Answer::Written { body, fresh } => cached(
            reply(media, StatusCode::OK, body),
            if fresh { "miss" } else { "hit" },
        ),
        Answer::Response(response) => answer(media, response),
    }
}

/// Says whether an answer came from the kept answers (`hit`) or was computed and kept
/// (`miss`), as HTTP caches do; answers that are not kept carry no such header.
fn cached(mut reply: HttpResponse, outcome: &'static str) -> HttpResponse {
    reply.headers_mut().insert(
        header::HeaderName::from_static("x-plangraph-cache"),
        header::HeaderValue::from_static(outcome),
    );
    reply
}

fn build(params: Params, http: &HttpRequest, get: bool) -> Request {
    let request = request(params, http).data(if get {
        Transport::HttpGet
    } else {
        Transport::HttpPost
    });
    // The id the request's log lines carry (the request-id middleware's, when it ran).
    match http.extensions().get::<RequestId>().cloned() {
        Some(id) => request.data(id),
        None => request,
    }
}

/// What the client presented in `Authorization`, for the schema to check on writes.
fn credentials(http: &HttpRequest) -> Credentials {
    Credentials::from_authorization(
        http.headers()
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok()),
    )
}

fn header_value(http: &HttpRequest, name: header::HeaderName) -> Option<&str> {
    http.headers().get(name).and_then(|v| v.to_str().ok())
}

/// The parameters of one GraphQL request, whichever way they came.
struct Params {
    query: String,
    operation_name: Option<String>,
    variables: Option<Map<String, Value>>,
    extensions: Option<Map<String, Value>>,
}

/// Reads the parameters from a JSON object; a wrong shape is a message for a 400.
fn params_from_json(body: Value) -> Result<Params, String> {
    let Value::Object(mut map) = body else {
        return Err(match body {
            Value::Array(_) => "batched requests are not accepted: send one request per body",
            _ => "the body must be a JSON object with a `query`",
        }
        .to_owned());
    };
    let query = match map.remove("query") {
        Some(Value::String(query)) => query,
        Some(_) => return Err("`query` must be a string".to_owned()),
        None => return Err("`query` is required".to_owned()),
    };
    let operation_name = match map.remove("operationName") {
        None | Some(Value::Null) => None,
        Some(Value::String(name)) => Some(name),
        Some(_) => return Err("`operationName` must be a string".to_owned()),
    };
    let object = |name: &str, value: Option<Value>| match value {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Object(object)) => Ok(Some(object)),
        Some(_) => Err(format!("`{name}` must be an object")),
    };
    Ok(Params {
        variables: object("variables", map.remove("variables"))?,
        extensions: object("extensions", map.remove("extensions"))?,
        query,
        operation_name,
    })
}

/// [`too_wide`] for the JSON parameters of a query string or a form.
fn too_wide_pairs(
    state: &AppState,
    media: Media,
    pairs: &[(String, String)],
) -> Option<HttpResponse> {
    pairs
        .iter()
        .filter(|(key, _)| key == "variables" || key == "extensions")
        .find_map(|(_, value)| too_wide(state, media, value.as_bytes()))
}

/// Reads the parameters from a GET query string (`variables` and `extensions` as JSON).
fn params_from_query(pairs: Vec<(String, String)>) -> Result<Option<Params>, String> {
    let mut query = None;
    let mut operation_name = None;
    let mut variables = None;
    let mut extensions = None;
    for (key, value) in pairs {
        match key.as_str() {
            "query" => query = Some(value),
            "operationName" if !value.is_empty() => operation_name = Some(value),
            "variables" | "extensions" if !value.is_empty() => {
                let parsed = match serde_json::from_str::<Value>(&value) {
                    Ok(Value::Object(object)) => Some(object),
                    Ok(Value::Null) => None,
                    _ => return Err(format!("`{key}` must be a JSON object")),
                };
                if key == "variables" {
                    variables = parsed;
                } else {
                    extensions = parsed;
                }
            }
            _ => {}
        }
    }
    Ok(query.map(|query| Params {
        query,
        operation_name,
        variables,
        extensions,
    }))
}

fn request(params: Params, http: &HttpRequest) -> Request {
    let mut request = Request::new(params.query).data(credentials(http));
    if let Some(name) = params.operation_name {
        request = request.operation_name(name);
    }
    if let Some(variables) = params.variables {
        request = request.variables(Variables::from_json(Value::Object(variables)));
    }
    if let Some(extensions) = params.extensions {
        for (key, value) in extensions {
            if let Ok(value) = async_graphql::Value::from_json(value) {
                request.extensions.insert(key, value);
            }
        }
    }
    request
}

/// The media type of a `Content-Type`, lower case, without parameters.
fn essence(content_type: Option<&str>) -> Option<String> {
    content_type
        .and_then(|ct| ct.split(';').next())
        .map(|e| e.trim().to_ascii_lowercase())
}

/// Is `content_type` `application/json` (any parameters, any letter case)?
fn is_json(content_type: Option<&str>) -> bool {
    essence(content_type).as_deref() == Some("application/json")
}

/// How a POST body is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum BodyKind {
    Json,
    Form,
}

/// Did the client send a header a cross-site form or link cannot send? A browser sends a
/// "simple" request (a GET, or a POST of a form or plain text) to any site without asking it
/// first; one with a custom header only after a CORS preflight the site must allow. So a simple
/// request that executes must carry a non-empty `x-apollo-operation-name` or
/// `apollo-require-preflight` (Apollo Router's rule; `application/json` is never simple).
fn preflighted(http: &HttpRequest) -> bool {
    ["x-apollo-operation-name", "apollo-require-preflight"]
        .iter()
        .any(|name| {
            http.headers()
                .get(*name)
                .and_then(|v| v.to_str().ok())
                .is_some_and(|v| !v.trim().is_empty())
        })
}

fn csrf_refusal(media: Media) -> HttpResponse {
    refuse(
        media,
        StatusCode::BAD_REQUEST,
        "CSRF_PREVENTED",
        "this request could have come from another site's page: send it with a non-empty \
         `apollo-require-preflight` (or `x-apollo-operation-name`) header, or POST it as \
         application/json",
    )
}

/// 429 with `Retry-After` when the client (its address, as [`crate::client`] works it out) or
/// its token is over its rate.
pub fn rate_limited(state: &AppState, http: &HttpRequest) -> Option<HttpResponse> {
    let credentials = credentials(http);
    let refusal = state
        .rate
        .check(state.proxies.of(http), credentials.secret())
        .err()?;
    let seconds = refusal.retry_after_secs();
    let mut reply = refuse(
        Media::Json,
        StatusCode::TOO_MANY_REQUESTS,
        "RATE_LIMITED",
        &format!("too many requests; try again in {seconds} s"),
    );
    reply
        .headers_mut()
        .insert(header::RETRY_AFTER, header::HeaderValue::from(seconds));
    Some(reply)
}

/// POST /graphql.
pub async fn post(
    state: web::Data<AppState>,
    http: HttpRequest,
    mut payload: web::Payload,
) -> HttpResponse {
    if let Some(refused) = rate_limited(&state, &http) {
        return refused;
    }
    let Some(media) = negotiate(header_value(&http, header::ACCEPT)) else {
        return refuse(
            Media::Json,
            StatusCode::NOT_ACCEPTABLE,
            "NOT_ACCEPTABLE",
            "answers are application/graphql-response+json, application/json, text/event-stream or multipart/mixed;subscriptionSpec=\"1.0\"; Accept names none of them",
        );
    };
    let content_type = header_value(&http, header::CONTENT_TYPE);
    let body_kind = match essence(content_type).as_deref() {
        Some("application/json") => BodyKind::Json,
        // A browser sends these cross-site without asking first: taken only with the header
        // that proves the sender could have been asked (Apollo's CSRF rule).
        Some("text/plain") => BodyKind::Json,
        Some("application/x-www-form-urlencoded") => BodyKind::Form,
        _ => {
            return refuse(
                media,
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "UNSUPPORTED_MEDIA_TYPE",
                "a GraphQL request is posted as application/json",
            );
        }
    };
    if !is_json(content_type) && state.http.csrf_prevention && !preflighted(&http) {
        return csrf_refusal(media);
    }
    let limit = state.http.max_body_bytes;
    let too_large = || {
        refuse(
            media,
            StatusCode::PAYLOAD_TOO_LARGE,
            "PAYLOAD_TOO_LARGE",
            &format!("the body is larger than the limit of {limit} bytes"),
        )
    };
    let declared =
        header_value(&http, header::CONTENT_LENGTH).and_then(|l| l.parse::<usize>().ok());
    if declared.is_some_and(|length| length > limit) {
        return too_large();
    }
    let mut body = web::BytesMut::new();
    while let Some(chunk) = payload.next().await {
        let Ok(chunk) = chunk else {
            return refuse(
                media,
                StatusCode::BAD_REQUEST,
                "BAD_REQUEST",
                "the body could not be read",
            );
        };
        if body.len() + chunk.len() > limit {
            return too_large();
        }
        body.extend_from_slice(&chunk);
    }
    if body_kind == BodyKind::Form {
        let pairs = match web::Query::<Vec<(String, String)>>::from_query(
            std::str::from_utf8(&body).unwrap_or_default(),
        ) {
            Ok(pairs) => pairs.into_inner(),
            Err(_) => {
                return refuse(
                    media,
                    StatusCode::BAD_REQUEST,
                    "BAD_REQUEST",
                    "the form is not form-encoded",
                );
            }
        };
        if let Some(refused) = too_wide_pairs(&state, media, &pairs) {
            return refused;
        }
        return match params_from_query(pairs) {
            Ok(Some(params)) => respond(&state, media, params, &http, false).await,
            Ok(None) => refuse(
                media,
                StatusCode::BAD_REQUEST,
                "BAD_REQUEST",
                "`query` is required",
            ),
            Err(message) => refuse(media, StatusCode::BAD_REQUEST, "BAD_REQUEST", &message),
        };
    }
    if let Some(refused) = too_wide(&state, media, &body) {
        return refused;
    }
    let json = match serde_json::from_slice::<Value>(&body) {
        Ok(json) => json,
        Err(e) => {
            return refuse(
                media,
                StatusCode::BAD_REQUEST,
                "BAD_REQUEST",
                &format!("the body is not JSON: {e}"),
            );
        }
    };
    let params = match params_from_json(json) {
        Ok(params) => params,
        Err(message) => return refuse(media, StatusCode::BAD_REQUEST, "BAD_REQUEST", &message),
    };
    respond(&state, media, params, &http, false).await
}

/// GET /graphql: a query in the query string; without one, the console for a browser.
pub async fn get(state: web::Data<AppState>, http: HttpRequest) -> HttpResponse {
    if let Some(refused) = rate_limited(&state, &http) {
        return refused;
    }
    let Some(media) = negotiate(header_value(&http, header::ACCEPT)) else {
        if header_value(&http, header::ACCEPT).is_some_and(|a| a.contains("text/html")) {
            return graphiql(&state);
        }
        return refuse(
            Media::Json,
            StatusCode::NOT_ACCEPTABLE,
            "NOT_ACCEPTABLE",
            "answers are application/graphql-response+json, application/json, text/event-stream or multipart/mixed;subscriptionSpec=\"1.0\"; Accept names none of them",
        );
    };
    // The stream of a single-connection reservation: the token is the whole request.
    if media == Media::EventStream
        && let Some(token) = reservations::token_of(&http, true)
    {
        return reservations::connect(&state, &token);
    }
    // An event stream over GET is what `EventSource` opens, which cannot send a preflight
    // header; it is let through, since plangraph authenticates only by the `Authorization`
    // header (never cookies), which a page on another site cannot attach, and a mutation over
    // GET is refused whatever the media type.
    if state.http.csrf_prevention
        && !http.query_string().is_empty()
        && media != Media::EventStream
        && !preflighted(&http)
    {
        return csrf_refusal(media);
    }
    let pairs = match web::Query::<Vec<(String, String)>>::from_query(http.query_string()) {
        Ok(pairs) => pairs.into_inner(),
        Err(_) => {
            return refuse(
                media,
                StatusCode::BAD_REQUEST,
                "BAD_REQUEST",
                "the query string is not form-encoded",
            );
        }
    };
    if let Some(refused) = too_wide_pairs(&state, media, &pairs) {
        return refused;
    }
    let params = match params_from_query(pairs) {
        Ok(Some(params)) => params,
        Ok(None)
            if header_value(&http, header::ACCEPT).is_some_and(|a| a.contains("text/html")) =>
        {
            return graphiql(&state);
        }
        Ok(None) => {
            return refuse(
                media,
                StatusCode::BAD_REQUEST,
                "BAD_REQUEST",
                "a GET request needs a `query` parameter",
            );
        }
        Err(message) => return refuse(media, StatusCode::BAD_REQUEST, "BAD_REQUEST", &message),
    };
    respond(&state, media, params, &http, true).await
}

/// The query console for browsers: a page built into the binary (nothing loaded from a CDN),
/// off in the production profile.
fn graphiql(state: &AppState) -> HttpResponse {
    crate::graphiql_http::page(state)
}

#[cfg(test)]
mod tests {
    use super::{Media, negotiate};

    #[test]
    fn accept_picks_the_preferred_supported_media_type() {
        assert_eq!(negotiate(None), Some(Media::Json));
        assert_eq!(negotiate(Some("*/*")), Some(Media::Json));
        assert_eq!(
            negotiate(Some(
                "application/graphql-response+json, application/json;q=0.9"
            )),
            Some(Media::GraphqlResponse)
        );
        assert_eq!(
            negotiate(Some("application/json, application/graphql-response+json")),
            Some(Media::Json)
        );
        assert_eq!(
            negotiate(Some(
                "application/graphql-response+json;q=0.5, application/json"
            )),
            Some(Media::Json)
        );
        assert_eq!(negotiate(Some("text/html")), None);
        assert_eq!(negotiate(Some("application/json;q=0")), None);
    }

    #[test]
    fn accept_takes_streams_and_skips_unreadable_qualities() {
        assert_eq!(
            negotiate(Some(
                "multipart/mixed;subscriptionSpec=\"1.0\", text/event-stream"
            )),
            Some(Media::Multipart)
        );
        assert_eq!(
            negotiate(Some("multipart/mixed; subscriptionspec = 1.0")),
            Some(Media::Multipart)
        );
        // Incremental delivery (`@defer`) is not served.
        assert_eq!(negotiate(Some("multipart/mixed")), None);
        assert_eq!(
            negotiate(Some(
                "multipart/mixed;subscriptionSpec=1.0;q=0.5, text/event-stream"
            )),
            Some(Media::EventStream)
        );
        // A quality that is not a number from 0 to 1 makes its item unreadable.
        assert_eq!(
            negotiate(Some("application/json;q=NaN, text/event-stream")),
            Some(Media::EventStream)
        );
        assert_eq!(
            negotiate(Some("text/event-stream;q=1e9, application/json;q=0.5")),
            Some(Media::Json)
        );
    }
}
