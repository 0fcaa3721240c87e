//! Who is writing: the bearer token a request carries, resolved against the store.
//!
//! Transports put what the client presented in the request data (HTTP: the `Authorization`
//! header) or the session data (WebSocket: the `connection_init` payload) as [`Credentials`];
//! only writes look at it, so reads stay open to everyone.

use async_graphql::Context;
use plangraph_domain::access::Actor;
use plangraph_persistence::Store;

use crate::error::ApiError;

/// What a client presented to authenticate, as it presented it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Credentials {
    /// Nothing.
    #[default]
    None,
    /// `Bearer SECRET`.
    Bearer(String),
    /// Something that is not a bearer token (kept only to say so).
    Malformed,
}

impl Credentials {
    /// Reads an `Authorization` value: `Bearer SECRET`, the scheme in any letter case.
    pub fn from_authorization(value: Option<&str>) -> Self {
        let Some(value) = value.map(str::trim).filter(|v| !v.is_empty()) else {
            return Self::None;
        };
        match value.split_once(char::is_whitespace) {
            Some((scheme, secret))
                if scheme.eq_ignore_ascii_case("bearer") && !secret.trim().is_empty() =>
            {
                Self::Bearer(secret.trim().to_owned())
            }
            _ => Self::Malformed,
        }
    }

    /// Reads a WebSocket `connection_init` payload: `{"Authorization": "Bearer SECRET"}` (any
    /// letter case of the key), or `{"token": "SECRET"}`.
    pub fn from_connection_params(params: &serde_json::Value) -> Self {
        let Some(map) = params.as_object() else {
            return Self::None;
        };
        for (key, value) in map {
            if key.eq_ignore_ascii_case("authorization") {
                return Self::from_authorization(value.as_str());
            }
            if key.eq_ignore_ascii_case("token") {
                return match value.as_str().map(str::trim) {
                    Some(secret) if !secret.is_empty() => Self::Bearer(secret.to_owned()),
                    _ => Self::Malformed,
                };
            }
        }
        Self::None
    }
}

/// The actor behind the request's token, or `UNAUTHENTICATED`.
pub(crate) async fn actor(ctx: &Context<'_>) -> Result<Actor, ApiError> {
    let credentials = ctx.data_opt::<Credentials>().cloned().unwrap_or_default();
    let secret = match credentials {
        Credentials::Bearer(secret) => secret,
        Credentials::None => {
            return Err(ApiError::Unauthenticated(
                "writes need a token: send `Authorization: Bearer TOKEN` (create one with `plangraph token create`)".to_owned(),
            ));
        }
        Credentials::Malformed => {
            return Err(ApiError::Unauthenticated(
                "the Authorization header is not `Bearer TOKEN`".to_owned(),
            ));
        }
    };
    let store = ctx.data::<Store>().map_err(|_| ApiError::Internal {
        store_code: "STORE_MISSING",
    })?;
    store
        .actor_for_secret(&secret)
        .await?
        .ok_or_else(|| ApiError::Unauthenticated("unknown or revoked token".to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_tokens_are_read_from_headers_and_connection_params() {
        assert_eq!(
            Credentials::from_authorization(Some("bearer pgt_abc")),
            Credentials::Bearer("pgt_abc".to_owned())
        );
        assert_eq!(Credentials::from_authorization(None), Credentials::None);
        assert_eq!(
            Credentials::from_authorization(Some("Basic dXNlcg==")),
            Credentials::Malformed
        );
        assert_eq!(
            Credentials::from_authorization(Some("Bearer ")),
            Credentials::Malformed
        );
        let params = serde_json::json!({ "Authorization": "Bearer pgt_x" });
        assert_eq!(
            Credentials::from_connection_params(&params),
            Credentials::Bearer("pgt_x".to_owned())
        );
        let params = serde_json::json!({ "token": "pgt_y" });
        assert_eq!(
            Credentials::from_connection_params(&params),
            Credentials::Bearer("pgt_y".to_owned())
        );
        assert_eq!(
            Credentials::from_connection_params(&serde_json::json!(null)),
            Credentials::None
        );
    }
}
