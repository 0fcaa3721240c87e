//! What the socket loop needs to know of a client message before the protocol machine sees it:
//! whether it starts an operation (to count it against the rate limits) or initialises the
//! connection (to learn the token the limits count), whether it holds more values than a
//! request may (the machine would build them all), and the error message that answers an
//! operation refused by the limits, in each protocol's shape.

use async_graphql::http::WebSocketProtocols as Protocols;
use plangraph_api::Credentials;
use plangraph_api::limits::{LimitError, QueryLimits};
use serde::Deserialize;
use serde_json::json;

use crate::rate_limit::Refusal;

/// A client message, as far as the socket loop cares.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Inspected {
    /// `connection_init`, with what it presented.
    Init(Credentials),
    /// `subscribe` (or the legacy `start`; async-graphql takes either name in both protocols),
    /// with the operation's id.
    Operation(String),
    /// A message over the values limit (`TOO_MANY_VALUES`), never to be built: the id of the
    /// operation it starts, if it starts one.
    TooWide {
        operation: Option<String>,
        error: LimitError,
    },
    /// Anything else, malformed messages included (the machine answers those).
    Other,
}

/// The fields every message of both protocols has; the rest (a payload up to the message cap)
/// is skipped, not built.
#[derive(Deserialize)]
struct Envelope {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    id: Option<String>,
}

fn starts_operation(kind: &str) -> bool {
    matches!(kind, "subscribe" | "start")
}

/// What `message` is; its values are counted before anything builds them.
pub(super) fn inspect(message: &[u8], limits: &QueryLimits) -> Inspected {
    let wide = plangraph_api::limits::check_json(message, limits).err();
    let envelope = serde_json::from_slice::<Envelope>(message).ok();
    if let Some(error) = wide {
        let operation = envelope
            .filter(|envelope| starts_operation(&envelope.kind))
            .and_then(|envelope| envelope.id);
        return Inspected::TooWide { operation, error };
    }
    let Some(envelope) = envelope else {
        return Inspected::Other;
    };
    match (envelope.kind.as_str(), envelope.id) {
        (kind, Some(id)) if starts_operation(kind) => Inspected::Operation(id),
        ("connection_init", _) => {
            let payload = serde_json::from_slice::<serde_json::Value>(message)
                .ok()
                .and_then(|mut message| message.get_mut("payload").map(serde_json::Value::take))
                .unwrap_or_default();
            Inspected::Init(Credentials::from_connection_params(&payload))
        }
        _ => Inspected::Other,
    }
}

/// The answer to operation `id` refused by a rate limit: `error` with the GraphQL errors as an
/// array in `graphql-transport-ws`, with one error object in the legacy protocol (what
/// subscriptions-transport-ws reads). Either ends the operation on the client.
pub(super) fn refusal(protocol: Protocols, id: &str, refusal: &Refusal) -> String {
    let seconds = refusal.retry_after_secs();
    let error = json!({
        "message": format!("too many requests; try again in {seconds} s"),
        "extensions": {
            "code": "RATE_LIMITED",
            "limit": refusal.limit.label(),
            "retryAfter": seconds,
        },
    });
    error_message(protocol, id, error)
}

/// The answer to operation `id` refused by a request limit, in the shape of [`refusal`].
pub(super) fn limit_refusal(protocol: Protocols, id: &str, error: &LimitError) -> String {
    let error = json!({ "message": error.message, "extensions": { "code": error.code } });
    error_message(protocol, id, error)
}

fn error_message(protocol: Protocols, id: &str, error: serde_json::Value) -> String {
    let payload = match protocol {
        Protocols::GraphQLWS => json!([error]),
        Protocols::SubscriptionsTransportWS => error,
    };
    json!({ "type": "error", "id": id, "payload": payload }).to_string()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::rate_limit::Limit;

    #[test]
    fn operations_and_tokens_are_read_without_building_payloads() {
        assert_eq!(
            inspect_default(br#"{"id":"7","type":"subscribe","payload":{"query":"{ a }"}}"#),
            Inspected::Operation("7".to_owned())
        );
        assert_eq!(
            inspect_default(br#"{"type":"start","id":"1","payload":{}}"#),
            Inspected::Operation("1".to_owned())
        );
        assert_eq!(
            inspect_default(
                br#"{"type":"connection_init","payload":{"Authorization":"Bearer pgt_x"}}"#
            ),
            Inspected::Init(Credentials::bearer("pgt_x"))
        );
        assert_eq!(
            inspect_default(br#"{"type":"connection_init"}"#),
            Inspected::Init(Credentials::None)
        );
        assert_eq!(
            inspect_default(br#"{"type":"complete","id":"1"}"#),
            Inspected::Other
        );
        assert_eq!(inspect_default(b"not json"), Inspected::Other);
    }

    fn inspect_default(message: &[u8]) -> Inspected {
        inspect(message, &QueryLimits::default())
    }

    #[test]
    fn wide_messages_are_refused_unbuilt_with_their_operation() {
        let limits = QueryLimits {
            max_input_values: 10,
            ..QueryLimits::default()
        };
        let wide = |kind: &str| {
            format!(
                r#"{{"id":"9","type":"{kind}","payload":{{"query":"{{ a }}","variables":{{"v":[{}]}}}}}}"#,
                vec!["{}"; 100].join(",")
            )
        };
        let Inspected::TooWide { operation, error } =
            inspect(wide("subscribe").as_bytes(), &limits)
        else {
            panic!("a wide operation passed");
        };
        assert_eq!(operation.as_deref(), Some("9"));
        assert_eq!(error.code, "TOO_MANY_VALUES");
        let answer: serde_json::Value =
            serde_json::from_str(&limit_refusal(Protocols::GraphQLWS, "9", &error)).unwrap();
        assert_eq!(
            answer["payload"][0]["extensions"]["code"],
            "TOO_MANY_VALUES"
        );
        assert!(matches!(
            inspect(wide("connection_init").as_bytes(), &limits),
            Inspected::TooWide {
                operation: None,
                ..
            }
        ));
        // Cut short, so no envelope can be read: still refused, not handed on.
        let cut = wide("subscribe");
        assert!(matches!(
            inspect(&cut.as_bytes()[..cut.len() / 2], &limits),
            Inspected::TooWide {
                operation: None,
                ..
            }
        ));
    }

    #[test]
    fn refusals_take_each_protocols_error_shape() {
        let limited = Refusal {
            limit: Limit::Address,
            wait: Duration::from_millis(1500),
        };
        let current: serde_json::Value =
            serde_json::from_str(&refusal(Protocols::GraphQLWS, "3", &limited)).unwrap();
        assert_eq!(current["type"], "error");
        assert_eq!(current["id"], "3");
        assert_eq!(current["payload"][0]["extensions"]["code"], "RATE_LIMITED");
        assert_eq!(current["payload"][0]["extensions"]["retryAfter"], 2);
        let legacy: serde_json::Value =
            serde_json::from_str(&refusal(Protocols::SubscriptionsTransportWS, "3", &limited))
                .unwrap();
        assert_eq!(legacy["payload"]["extensions"]["code"], "RATE_LIMITED");
    }
}
