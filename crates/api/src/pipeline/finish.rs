//! The last stage of every answer: stable codes for request errors, errors bounded in number
//! and length, answers bounded in size, selection order, and the request counted in the
//! metrics.

use std::sync::Arc;
use std::time::Instant;

use async_graphql::parser::types::{ExecutableDocument, OperationType};
use async_graphql::{Response, SchemaEnv, ServerError, Value, Variables};

use crate::limits::QueryLimits;
use crate::order;

/// What one request's last stage needs from its first.
pub(crate) struct Seen {
    /// The request's id: in its log lines and in the masked error the client gets.
    pub(crate) request_id: String,
    pub(crate) operation_name: Option<String>,
    /// The request's variables: `_entities` names each representation's type in them.
    pub(crate) variables: Variables,
    /// The parsed document, kept to put the response in selection order (shared with the
    /// kept parses: no copy of a kept document per request).
    pub(crate) document: Option<Arc<ExecutableDocument>>,
    /// The operation's type, once known.
    pub(crate) ty: Option<OperationType>,
    /// How it came (a metrics label).
    pub(crate) transport: &'static str,
    pub(crate) started: Instant,
}

impl Seen {
    pub(crate) fn new(
        request_id: String,
        transport: &'static str,
        operation_name: Option<String>,
        variables: Variables,
    ) -> Self {
        Self {
            request_id,
            operation_name,
            variables,
            document: None,
            ty: None,
            transport,
            started: Instant::now(),
        }
    }
}

pub(crate) fn with_code(mut error: ServerError, code: &str) -> ServerError {
    let has_code = error
        .extensions
        .as_ref()
        .is_some_and(|ext| ext.get("code").is_some());
    if !has_code {
        error
            .extensions
            .get_or_insert_with(Default::default)
            .set("code", code);
    }
    error
}

/// The error of a request over its time budget.
pub(crate) fn timed_out(limits: &QueryLimits) -> ServerError {
    with_code(
        ServerError::new(
            format!(
                "the request ran longer than {:?} and was stopped",
                limits.timeout
            ),
            None,
        ),
        "QUERY_TIMEOUT",
    )
}

/// 16 random hex digits (a counter if the system has no randomness to give).
pub fn new_request_id() -> String {
    static FALLBACK: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let mut bytes = [0u8; 8];
    if getrandom::fill(&mut bytes).is_err() {
        bytes = FALLBACK
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst)
            .to_be_bytes();
    }
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The answer to a request the store failed before it could execute (reading the store's
/// version first): the masked error, request id and one log line an executing request's
/// failure gets, without trying the store a second time.
pub(crate) fn store_failure(err: &plangraph_persistence::StoreError) -> Response {
    tracing::error!(code = err.code(), error = %err, "store failure while loading");
    metrics::counter!("plangraph_store_errors_total", "code" => err.code()).increment(1);
    let mut error = async_graphql::Error::from(crate::error::ApiError::Internal {
        store_code: err.code(),
    })
    .into_server_error(async_graphql::Pos::default());
    error.locations.clear();
    Response::from_errors(vec![error])
}

/// The code of an error, if it has one.
pub(crate) fn code_of(error: &ServerError) -> Option<&str> {
    match error.extensions.as_ref()?.get("code")? {
        Value::String(code) => Some(code.as_str()),
        _ => None,
    }
}

fn operation_label(ty: Option<OperationType>) -> &'static str {
    match ty {
        Some(OperationType::Query) => "query",
        Some(OperationType::Mutation) => "mutation",
        Some(OperationType::Subscription) => "subscription",
        None => "unknown",
    }
}

/// Counts an answer: by transport, operation type and outcome (its first error's code, or
/// `ok`), with its time for queries and mutations (a subscription event's time since the
/// subscription began says nothing).
pub(crate) fn record(seen: &Seen, response: &Response) {
    let outcome = response
        .errors
        .first()
        .map_or("ok", |e| code_of(e).unwrap_or("ERROR"));
    // Codes come from a fixed set (ours and async-graphql's), so the label stays bounded; a
    // code built from input would not, so anything unexpected is counted as ERROR.
    let outcome = if outcome == "ok"
        || (outcome.len() <= 40 && outcome.bytes().all(|b| b.is_ascii_uppercase() || b == b'_'))
    {
        outcome.to_owned()
    } else {
        "ERROR".to_owned()
    };
    let operation = operation_label(seen.ty);
    metrics::counter!(
        "plangraph_requests_total",
        "transport" => seen.transport,
        "operation" => operation,
        "outcome" => outcome
    )
    .increment(1);
    if seen.ty != Some(OperationType::Subscription) {
        metrics::histogram!(
            "plangraph_request_duration_seconds",
            "transport" => seen.transport,
            "operation" => operation
        )
        .record(seen.started.elapsed().as_secs_f64());
    }
}

/// The last stage of every response: codes for request errors, errors bounded in number and
/// length, the answer bounded in size, then selection order.
pub(crate) fn finish(
    seen: &Seen,
    limits: &QueryLimits,
    env: Option<&SchemaEnv>,
    response: &mut Response,
) {
    if response.errors.len() > limits.max_errors {
        let omitted = response.errors.len() - limits.max_errors;
        response.errors.truncate(limits.max_errors);
        response.errors.push(with_code(
            ServerError::new(format!("{omitted} more error(s) omitted"), None),
            "ERRORS_TRUNCATED",
        ));
    }
    for error in &mut response.errors {
        let internal = code_of(error) == Some("INTERNAL");
        if internal && !seen.request_id.is_empty() {
            error
                .extensions
                .get_or_insert_with(Default::default)
                .set("requestId", seen.request_id.as_str());
        }
        if error.message.chars().count() > limits.max_error_message {
            let kept: String = error
                .message
                .chars()
                .take(limits.max_error_message)
                .collect();
            error.message = format!("{kept}…");
        }
    }
    // Resolver errors come with data (at least `null` fields under it) and carry their own
    // code; errors before execution (validation, an unknown operation name) come without data.
    if response.data == Value::Null {
        for error in &mut response.errors {
            *error = with_code(
                std::mem::replace(error, ServerError::new("", None)),
                "GRAPHQL_VALIDATION_FAILED",
            );
        }
    }
    if written_size(&response.data, limits.max_response_bytes).is_none() {
        tracing::warn!(
            limit = limits.max_response_bytes,
            "an answer over the size limit was dropped"
        );
        *response = Response::from_errors(vec![with_code(
            ServerError::new(
                format!(
                    "the answer would be larger than {} bytes; ask for fewer items (smaller `first`, fewer fields)",
                    limits.max_response_bytes
                ),
                None,
            ),
            "RESPONSE_TOO_LARGE",
        )]);
        return;
    }
    if let (Some(document), Some(env)) = (&seen.document, env) {
        let is_object_type = |name: &str| {
            matches!(
                env.registry.types.get(name),
                Some(async_graphql::registry::MetaType::Object { .. })
            )
        };
        let ordering = order::Ordering {
            doc: document,
            variables: &seen.variables,
            is_object_type: &is_object_type,
        };
        order::in_selection_order(
            &mut response.data,
            &ordering,
            seen.operation_name.as_deref(),
        );
    }
}

/// The bytes `value` takes written as JSON (escapes aside, numbers at most 24 characters), or
/// `None` once past `max`: a walk with its own stack that stops at the bound, far cheaper than
/// writing the answer.
pub(crate) fn written_size(value: &Value, max: usize) -> Option<usize> {
    let mut total = 0usize;
    let mut stack = vec![value];
    while let Some(value) = stack.pop() {
        total = total.saturating_add(match value {
            Value::Null => 4,
            Value::Boolean(_) => 5,
            Value::Number(_) => 24,
            Value::String(text) => text.len() + 2,
            Value::Enum(name) => name.len() + 2,
            Value::Binary(bytes) => bytes.len() * 2,
            Value::List(items) => {
                stack.extend(items.iter());
                2 + items.len()
            }
            Value::Object(fields) => {
                stack.extend(fields.values());
                2 + fields.keys().map(|k| k.len() + 4).sum::<usize>()
            }
        });
        if total > max {
            return None;
        }
    }
    Some(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_written_size_is_bounded_by_the_writing() {
        let value = Value::from_json(serde_json::json!({
            "a": [1, 2, { "b": "text", "c": null, "d": true }],
            "e": "x".repeat(100),
        }))
        .unwrap_or_default();
        let written = serde_json::to_string(&value).unwrap_or_default().len();
        let estimated = written_size(&value, usize::MAX).unwrap_or_default();
        assert!(estimated >= written, "{estimated} < {written}");
        assert!(estimated < written * 2, "{estimated} vs {written}");
        assert_eq!(written_size(&value, 50), None);
    }
}
