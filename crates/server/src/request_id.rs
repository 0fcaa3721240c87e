//! A request id on every log line of a request: the middleware takes the client's
//! `x-request-id` when it is a safe token (`[A-Za-z0-9._-]{1,64}`, so a log line never carries
//! what a stranger wrote beyond that) or makes one, runs the handler inside a `request{id=…}`
//! tracing span (every line logged while handling it names the id, the socket task of a
//! WebSocket too), returns it in the `x-request-id` header, and leaves it in the request's
//! extensions as [`plangraph_api::RequestId`], for the GraphQL pipeline to name in its answers
//! and log lines.

use std::hash::BuildHasher;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use actix_web::HttpMessage;
use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::middleware::Next;
use plangraph_api::RequestId;
use tracing::Instrument;

/// The header a request id travels in, both ways.
pub const HEADER: &str = "x-request-id";

/// The client's id when it is safe to log and repeat: 1 to 64 of `[A-Za-z0-9._-]`.
pub fn accept(value: &str) -> Option<&str> {
    let safe = (1..=64).contains(&value.len())
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
    safe.then_some(value)
}

/// A new id: 16 hex digits, distinct within a process (a counter) and across processes (the
/// counter hashed under a key drawn at start).
pub fn fresh() -> String {
    static KEY: OnceLock<std::hash::RandomState> = OnceLock::new();
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    format!(
        "{:016x}",
        KEY.get_or_init(std::hash::RandomState::new).hash_one(n)
    )
}

/// The middleware (wrap it outermost, so every other layer's lines carry the id). It also logs
/// one line per request at debug level: at info, the line would cost more than a small query
/// (`RUST_LOG=info,plangraph_server=debug` shows them).
pub async fn middleware(
    request: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let id = request
        .headers()
        .get(HEADER)
        .and_then(|v| v.to_str().ok())
        .and_then(accept)
        .map_or_else(fresh, str::to_owned);
    request.extensions_mut().insert(RequestId(id.clone()));
    // At error level so the span is enabled whatever RUST_LOG lets through: a warning inside a
    // request must name its id even when info is filtered out.
    let span = tracing::error_span!("request", id = %id);
    let started = Instant::now();
    let method = request.method().clone();
    let path = request.path().to_owned();
    let mut response = next.call(request).instrument(span.clone()).await?;
    if let Ok(value) = HeaderValue::from_str(&id) {
        response
            .headers_mut()
            .insert(HeaderName::from_static(HEADER), value);
    }
    span.in_scope(|| {
        tracing::debug!(
            %method,
            path,
            status = response.status().as_u16(),
            elapsed_ms = started.elapsed().as_secs_f64() * 1000.0,
            "request"
        );
    });
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_safe_ids_are_taken_from_clients() {
        assert_eq!(accept("abc-123_X.y"), Some("abc-123_X.y"));
        assert_eq!(accept(""), None);
        assert_eq!(accept("a b"), None);
        assert_eq!(accept("line\nbreak"), None);
        assert_eq!(accept(&"x".repeat(64)).map(str::len), Some(64));
        assert_eq!(accept(&"x".repeat(65)), None);
        assert_ne!(fresh(), fresh());
        assert_eq!(fresh().len(), 16);
    }
}
