//! What the socket loop needs to know of a client message before the protocol machine sees it:
//! whether it starts an operation (to count it against the rate limits) or initialises the
//! connection (to learn the token the limits count), and the error message that answers an
//! operation refused by the limits, in each protocol's shape.

use async_graphql::http::WebSocketProtocols as Protocols;
use plangraph_api::Credentials;
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

pub(super) fn inspect(message: &[u8]) -> Inspected {
    let Ok(envelope) = serde_json::from_slice::<Envelope>(message) else {
        return Inspected::Other;
    };
    match (envelope.kind.as_str(), envelope.id) {
        ("subscribe" | "start", Some(id)) => Inspected::Operation(id),
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
            inspect(br#"{"id":"7","type":"subscribe","payload":{"query":"{ a }"}}"#),
            Inspected::Operation("7".to_owned())
        );
        assert_eq!(
            inspect(br#"{"type":"start","id":"1","payload":{}}"#),
            Inspected::Operation("1".to_owned())
        );
        assert_eq!(
            inspect(br#"{"type":"connection_init","payload":{"Authorization":"Bearer pgt_x"}}"#),
            Inspected::Init(Credentials::bearer("pgt_x"))
        );
        assert_eq!(
            inspect(br#"{"type":"connection_init"}"#),
            Inspected::Init(Credentials::None)
        );
        assert_eq!(
            inspect(br#"{"type":"complete","id":"1"}"#),
            Inspected::Other
        );
        assert_eq!(inspect(b"not json"), Inspected::Other);
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
